/* SPDX-License-Identifier: MIT */
/*
 * <iomap/emu.h>: libiomap-emu, what an emulator (QEMU, a vGPU mediator)
 * links to receive iomapd's invalidate requests.
 *
 *   cc ... $(pkg-config --cflags --libs iomap-emu)
 *
 *   int err;
 *   struct iomap_emu *e = iomap_emu_open("/run/iomapd/emulators.sock",
 *                                        my_domid, guest_domid, my_ioservid,
 *                                        IOMAP_EMU_CAP_INVALIDATE_PAGE, &err);
 *   add iomap_emu_fd(e) to your main loop; when it is readable:
 *   while ((n = iomap_emu_next(e, &r)) > 0) {
 *       if (r.global)  drop every mapping (mapcache and IOMMU);
 *       else           drop mappings of r.domid gfns r.gfn .. r.gfn+r.nr-1;
 *       issue the iommu_op unmaps and one flush;
 *       iomap_emu_done(e, &r);
 *   }
 *   if (n == -ENOTCONN)
 *       iomapd is gone: call iomap_emu_reconnect(e) from a timer until it
 *       returns 0 (the fd stays the same; keep it in the main loop);
 *   iomap_emu_close(e);
 *
 * Answer only after the unmap hypercalls returned: iomapd checks with the
 * hypervisor, and what is still mapped when you answer is force-unmapped.
 * A request may be answered later (asynchronously): keep r and call
 * iomap_emu_done() when the work is finished.
 *
 * The library never prints and never exits: every failure is a return
 * value (a negative errno).  A handle is not thread-safe: use it from one
 * thread at a time.  This header is self-contained (it needs only
 * <stdint.h>); the handle is opaque.
 *
 * When iomapd stops or restarts, the handle survives: iomap_emu_next()
 * returns -ENOTCONN (once the fd woke the caller), requests taken before
 * are void (iomap_emu_done() on them returns -ESTALE and does nothing),
 * and iomap_emu_reconnect() registers the same ioreq server again.  While
 * no iomapd is registered for it, the ioreq server is not opted out of
 * Xen's global IOREQ_TYPE_INVALIDATE, so the emulator must keep handling
 * that one as it always did.
 *
 * Deprivileged emulators (xl's dm_restrict: QEMU runs as a xen-qemuuser-*
 * user once set up).  The library sends nothing but the hello below; the
 * kernel gives iomapd the caller's uid, gid and pid (SO_PEERCRED, taken
 * at connect()).  The hello carries (emu_domid, target, ioservid, caps),
 * in iomapd's byte order, over a SOCK_SEQPACKET socket.  iomapd lets a
 * xen-qemuuser-range-base+N uid register only for target N (policy key
 * qemu_user_range_base), a xen-qemuuser-domidN uid only for what a policy
 * rule with its uid allows (iomapd.conf(5): emulators, uid), refuses the
 * shared xen-qemuuser-shared uid (it names no guest) and any other
 * unprivileged uid (-EPERM), and lets root register anything.  Within
 * its own guest a deprivileged QEMU may register any ioreq server id of
 * that guest: Xen records no process for an ioreq server, only its
 * domain, so iomapd cannot tell two servers of one guest apart by who
 * runs them; the harm stays inside that guest.  So, for a restricted
 * QEMU:
 *   - the first iomap_emu_open() may run before privileges are dropped
 *     (as root: allowed);
 *   - iomap_emu_reconnect() runs after the drop, with the uid of its own
 *     guest: it can register for its own guest and no other;
 *   - the emulator socket is mode 0666: who may register is decided by
 *     the uid, not by the socket's mode.
 *
 * ABI: libiomap-emu.so.1; symbols versioned IOMAP_EMU_1.0, and
 * iomap_emu_reconnect at IOMAP_EMU_1.1 (define IOMAP_EMU_HAVE_RECONNECT
 * tells a caller at compile time).
 */
#ifndef IOMAP_EMU_PUBLIC_H
#define IOMAP_EMU_PUBLIC_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Capabilities declared at registration (the caps argument of open). */
#define IOMAP_EMU_CAP_INVALIDATE_PAGE (1u << 0)   /* per-page invalidates */

/* A registration with iomapd and its IOREQ channel (opaque). */
struct iomap_emu;

/* One request, filled by iomap_emu_next(); hand it back to iomap_emu_done(). */
struct iomap_emu_req {
    int      slot;          /* the channel slot; the library's, do not change */
    int      global;        /* drop everything (an emulator without
                               IOMAP_EMU_CAP_INVALIDATE_PAGE gets only these) */
    uint16_t domid;         /* otherwise: drop mappings of this domain's */
    uint64_t gfn;           /*   guest frames gfn .. gfn + nr - 1        */
    uint32_t nr;
};

/*
 * Connect to iomapd's emulator socket at path and register ioreq server
 * ioservid of guest domain target, run by domain emu_domid: the three
 * numbers by which Xen names an ioreq server (Xen allocates ioservid per
 * guest, so every guest's QEMU may have the same one).  Returns the
 * handle, or NULL with *err set to a negative errno (err may be NULL):
 * -ECONNREFUSED or -ENOENT when iomapd is not running, -EPERM when iomapd
 * refuses the caller, -EEXIST when that ioreq server is registered
 * already, -EINVAL for unknown caps or domain ids, -EPROTO when the daemon
 * speaks another protocol, -ETIMEDOUT when it does not answer within two
 * seconds.
 */
struct iomap_emu *iomap_emu_open(const char *path, uint16_t emu_domid,
                                 uint16_t target, uint16_t ioservid,
                                 uint32_t caps, int *err);
/*
 * The fd to poll for POLLIN: readable when requests may be pending or the
 * daemon went away.  It is the same fd for the life of the handle, across
 * reconnects.
 */
int  iomap_emu_fd(const struct iomap_emu *e);
/*
 * Take the next request: 1 if r was filled, 0 if none is pending,
 * -ENOTCONN if iomapd is gone (the registration is dropped, and the fd
 * stays quiet until iomap_emu_reconnect() succeeds).
 */
int  iomap_emu_next(struct iomap_emu *e, struct iomap_emu_req *r);
/*
 * Answer r (taken by iomap_emu_next): 0, -EINVAL if it is not pending,
 * -ESTALE if it was taken before the daemon went away (nothing is done:
 * the daemon that sent it is gone).
 */
int  iomap_emu_done(struct iomap_emu *e, const struct iomap_emu_req *r);
/*
 * Register e's ioreq server again, with the path, ids and caps given to
 * iomap_emu_open(), after iomap_emu_next() returned -ENOTCONN (iomapd
 * stopped or restarted).  Returns 0 when registered (also when the
 * registration never broke), or the errors of iomap_emu_open(), e.g.
 * -ECONNREFUSED or -ENOENT while iomapd is still down: try again later.
 * It blocks for at most the handshake (two seconds).  Since IOMAP_EMU_1.1.
 */
#define IOMAP_EMU_HAVE_RECONNECT 1
int  iomap_emu_reconnect(struct iomap_emu *e);
/* Unregister and free e (NULL is accepted). */
void iomap_emu_close(struct iomap_emu *e);

#ifdef __cplusplus
}
#endif

#endif
