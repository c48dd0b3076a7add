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
 *   while (iomap_emu_next(e, &r) > 0) {
 *       if (r.global)  drop every mapping (mapcache and IOMMU);
 *       else           drop mappings of r.domid gfns r.gfn .. r.gfn+r.nr-1;
 *       issue the iommu_op unmaps and one flush;
 *       iomap_emu_done(e, &r);
 *   }
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
 * ABI: libiomap-emu.so.1, symbols versioned IOMAP_EMU_1.0.
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
 * speaks another protocol.
 */
struct iomap_emu *iomap_emu_open(const char *path, uint16_t emu_domid,
                                 uint16_t target, uint16_t ioservid,
                                 uint32_t caps, int *err);
/* The fd to poll for POLLIN: readable when requests may be pending. */
int  iomap_emu_fd(const struct iomap_emu *e);
/* Take the next request: 1 if r was filled, 0 if none is pending. */
int  iomap_emu_next(struct iomap_emu *e, struct iomap_emu_req *r);
/* Answer r (taken by iomap_emu_next): 0, or -EINVAL if it is not pending. */
int  iomap_emu_done(struct iomap_emu *e, const struct iomap_emu_req *r);
/* Unregister and free e (NULL is accepted). */
void iomap_emu_close(struct iomap_emu *e);

#ifdef __cplusplus
}
#endif

#endif
