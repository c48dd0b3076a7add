/* SPDX-License-Identifier: MIT */
/*
 * The Xen backend: attach to the iomap shim inside a (patched) Xen 4.17.
 *
 *   ring         XENMEM_acquire_resource of type XENMEM_resource_iomap,
 *                id IOMAP_RESOURCE_RING, owned by DOMID_XEN, mapped with
 *                xenforeignmemory_map_resource();
 *   shim->daemon the global VIRQ_IOMAP (14), bound with libxenevtchn;
 *   daemon->shim the __HYPERVISOR_iomap_op hypercall (44), sub-op
 *                XEN_IOMMUOP_kick, NULL, 0 (libxencall), after cmd_prod;
 *   domains      libxenctrl: the daemon checks it runs in a privileged
 *                domain and can tell whether a domid exists.
 *
 * Everything that talks to Xen goes through struct xenbe_ops so that the
 * decoding and every error path can be tested without a hypervisor
 * (tests/test_xen_backend.c).  The numbers are those of the shim's patch
 * series (shim/xen/patches/0001, public/iommu_op.h and public/xen.h there);
 * docs/XEN.md, "ABI" and "Running iomapd on a real host".
 */
#ifndef IOMAPD_BACKEND_XEN_H
#define IOMAPD_BACKEND_XEN_H

#include <stddef.h>
#include <stdint.h>

#include <xencall.h>
#include <xenctrl.h>
#include <xenevtchn.h>
#include <xenforeignmemory.h>

#include "shim/ring.h"

#include "daemon/backend.h"

/* Where the shim lives (docs/XEN.md); one place to change if it moves. */
#define XENBE_PRIVCMD          "/dev/xen/privcmd"
#define XENBE_EVTCHN_DEV       "/dev/xen/evtchn"
#define XENBE_RESOURCE_DOMID   DOMID_XEN
#define XENBE_RESOURCE_TYPE    XENMEM_resource_iomap
#define XENBE_RESOURCE_ID      IOMAP_RESOURCE_RING
/* From the shim's public headers (not in Debian's libxen-dev). */
#ifndef VIRQ_IOMAP
#define VIRQ_IOMAP             14
#endif
#ifndef __HYPERVISOR_iomap_op
#define __HYPERVISOR_iomap_op  44
#endif
#ifndef XEN_IOMMUOP_kick
#define XEN_IOMMUOP_kick       0
#endif
#define XENBE_PAGE_SIZE        4096u
/* The shim's region is small; refuse to map anything absurd. */
#define XENBE_MAX_FRAMES       1024u

/* Each step of open that can fail; the message names what is missing. */
enum xenbe_step {
    XENBE_STEP_PRIVCMD,         /* /dev/xen/privcmd is there            */
    XENBE_STEP_XC_OPEN,         /* xc_interface_open                    */
    XENBE_STEP_DOMINFO,         /* xc_domain_getinfolist (privilege)    */
    XENBE_STEP_FMEM_OPEN,       /* xenforeignmemory_open                */
    XENBE_STEP_RES_SIZE,        /* xenforeignmemory_resource_size       */
    XENBE_STEP_RES_MAP,         /* xenforeignmemory_map_resource        */
    XENBE_STEP_XCALL_OPEN,      /* xencall_open                         */
    XENBE_STEP_KICK,            /* iomap_op(XEN_IOMMUOP_kick)           */
    XENBE_STEP_EVTCHN_OPEN,     /* xenevtchn_open                       */
    XENBE_STEP_BIND,            /* xenevtchn_bind_virq(VIRQ_IOMAP)      */
    XENBE_STEP_NOTIFY_FD,       /* the event channel fd                  */
    XENBE_STEP_MAX
};

/* The libxen calls, replaceable by tests.  All set errno on failure. */
struct xenbe_ops {
    int  (*privcmd_present)(void);      /* 0 or -1 with errno */
    xc_interface *(*xc_open)(void);
    int  (*xc_close)(xc_interface *xch);
    int  (*getinfolist)(xc_interface *xch, uint32_t first, unsigned max,
                        xc_domaininfo_t *info);
    xenforeignmemory_handle *(*fmem_open)(void);
    int  (*fmem_close)(xenforeignmemory_handle *fmem);
    int  (*resource_size)(xenforeignmemory_handle *fmem, domid_t domid,
                          unsigned type, unsigned id, size_t *size);
    xenforeignmemory_resource_handle *(*map_resource)(
        xenforeignmemory_handle *fmem, domid_t domid, unsigned type,
        unsigned id, unsigned long frame, unsigned long nr, void **addr,
        int prot, int flags);
    int  (*unmap_resource)(xenforeignmemory_handle *fmem,
                           xenforeignmemory_resource_handle *fres);
    xencall_handle *(*xcall_open)(void);
    int  (*xcall_close)(xencall_handle *xcall);
    int  (*kick)(xencall_handle *xcall);     /* iomap_op(kick, NULL, 0) */
    xenevtchn_handle *(*evtchn_open)(void);
    int  (*evtchn_close)(xenevtchn_handle *xce);
    int  (*evtchn_fd)(xenevtchn_handle *xce);
    int  (*bind_virq)(xenevtchn_handle *xce, unsigned virq);
    int  (*unbind)(xenevtchn_handle *xce, evtchn_port_t port);
    int  (*pending)(xenevtchn_handle *xce);
    int  (*unmask)(xenevtchn_handle *xce, evtchn_port_t port);
    /* The policy's last escalation step: SHUTDOWN_crash the guest. */
    int  (*crash_domain)(xc_interface *xch, uint32_t domid);
};

/* The real libxen calls (quiet: libxen's own logging is discarded). */
extern const struct xenbe_ops xenbe_libxen_ops;
/* The ops backend_xen uses; tests point it at fakes. */
extern const struct xenbe_ops *xenbe_ops;

/*
 * One line naming what is missing when step failed with errno err
 * (a positive errno).  Returns buf.
 */
const char *xenbe_strerror(enum xenbe_step step, int err, char *buf, size_t len);

/*
 * Check a mapped resource of nr_frames frames and attach the rings in it.
 * Returns 0, or -EINVAL / -EPROTO (iomap_ring_attach) / -E2BIG with err
 * set to one line.
 */
int  xenbe_attach_region(struct iomap_ring *r, void *mem, unsigned long nr_frames,
                         char *err, size_t errlen);
/* The resource size in bytes -> frames; 0 and err set if unusable. */
unsigned long xenbe_size_to_frames(size_t size, char *err, size_t errlen);

#endif
