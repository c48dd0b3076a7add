/* SPDX-License-Identifier: MIT */
/*
 * The Xen backend: map the iomap shim's rings out of the hypervisor with
 * XENMEM_acquire_resource and take its notifications on an event channel.
 * See daemon/backend_xen.h for what is assumed of the shim, and
 * docs/XEN.md, "The daemon's Xen backend".
 *
 * Notifications: the shim raises VIRQ_IOMAP after posting events; the
 * daemon kicks the shim with the iomap_op hypercall after posting commands.
 * /dev/xen/evtchn masks a port once it has been read, until the reader
 * writes it back (xenevtchn_unmask).  The daemon's one loop watches the
 * event channel's fd itself (xenevtchn_fd) and, when it is readable, takes
 * the pending port and unmasks it (xen_notified) before running the core:
 * no thread, as in tools/xenstored.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xentoollog.h>

#include "daemon/backend_xen.h"
#include "util/log.h"

/* ---- the real libxen calls -------------------------------------------------- */

/* libxen's default loggers print to stderr; iomapd reports errors itself. */
static void
quiet_vmessage(struct xentoollog_logger *l, xentoollog_level level, int errnoval,
               const char *context, const char *format, va_list al)
{
}

static void
quiet_destroy(struct xentoollog_logger *l)
{
}

static struct xentoollog_logger quiet_logger = {
    .vmessage = quiet_vmessage,
    .progress = NULL,
    .destroy = quiet_destroy,
};

static int
lx_privcmd_present(void)
{
    return access(XENBE_PRIVCMD, F_OK);
}

static xc_interface *
lx_xc_open(void)
{
    return xc_interface_open(&quiet_logger, &quiet_logger, 0);
}

static int
lx_getinfolist(xc_interface *xch, uint32_t first, unsigned max, xc_domaininfo_t *info)
{
    return xc_domain_getinfolist(xch, first, max, info);
}

static xenforeignmemory_handle *
lx_fmem_open(void)
{
    return xenforeignmemory_open(&quiet_logger, 0);
}

static int
lx_resource_size(xenforeignmemory_handle *fmem, domid_t domid, unsigned type,
                 unsigned id, size_t *size)
{
    return xenforeignmemory_resource_size(fmem, domid, type, id, size);
}

static xenforeignmemory_resource_handle *
lx_map_resource(xenforeignmemory_handle *fmem, domid_t domid, unsigned type,
                unsigned id, unsigned long frame, unsigned long nr, void **addr,
                int prot, int flags)
{
    return xenforeignmemory_map_resource(fmem, domid, type, id, frame, nr,
                                         addr, prot, flags);
}

static xencall_handle *
lx_xcall_open(void)
{
    return xencall_open(&quiet_logger, 0);
}

static int
lx_kick(xencall_handle *xcall)
{
    return xencall3(xcall, __HYPERVISOR_iomap_op, XEN_IOMMUOP_kick, 0, 0);
}

static xenevtchn_handle *
lx_evtchn_open(void)
{
    return xenevtchn_open(&quiet_logger, 0);
}

static int
lx_bind_virq(xenevtchn_handle *xce, unsigned virq)
{
    return xenevtchn_bind_virq(xce, virq);
}

static int
lx_pending(xenevtchn_handle *xce)
{
    return xenevtchn_pending(xce);
}

static int
lx_crash_domain(xc_interface *xch, uint32_t domid)
{
    return xc_domain_shutdown(xch, domid, SHUTDOWN_crash);
}

const struct xenbe_ops xenbe_libxen_ops = {
    .privcmd_present = lx_privcmd_present,
    .xc_open = lx_xc_open,
    .xc_close = xc_interface_close,
    .getinfolist = lx_getinfolist,
    .fmem_open = lx_fmem_open,
    .fmem_close = xenforeignmemory_close,
    .resource_size = lx_resource_size,
    .map_resource = lx_map_resource,
    .unmap_resource = xenforeignmemory_unmap_resource,
    .xcall_open = lx_xcall_open,
    .xcall_close = xencall_close,
    .kick = lx_kick,
    .evtchn_open = lx_evtchn_open,
    .evtchn_close = xenevtchn_close,
    .evtchn_fd = xenevtchn_fd,
    .bind_virq = lx_bind_virq,
    .unbind = xenevtchn_unbind,
    .pending = lx_pending,
    .unmask = xenevtchn_unmask,
    .crash_domain = lx_crash_domain,
};

const struct xenbe_ops *xenbe_ops = &xenbe_libxen_ops;

/* ---- pure helpers: messages and decoding ------------------------------------- */

#define SHIM_MISSING \
    "the hypervisor has no iomap shim (XENMEM_acquire_resource type 0x%x: %s): " \
    "boot the patched Xen, see docs/XEN.md"

const char *
xenbe_strerror(enum xenbe_step step, int err, char *buf, size_t len)
{
    const char *es = strerrorname_np(err);

    if (es == NULL)
        es = "unknown error";
    switch (step) {
    case XENBE_STEP_PRIVCMD:
        if (err == ENOENT || err == ENOTDIR)
            snprintf(buf, len, "%s missing: not a Xen dom0 (or the xen-privcmd "
                     "driver is not loaded)", XENBE_PRIVCMD);
        else
            snprintf(buf, len, "%s: %s", XENBE_PRIVCMD, strerror(err));
        break;
    case XENBE_STEP_XC_OPEN:
        if (err == EACCES || err == EPERM)
            snprintf(buf, len, "cannot open %s: %s (iomapd must run as root in dom0)",
                     XENBE_PRIVCMD, strerror(err));
        else if (err == ENOENT || err == ENODEV || err == ENXIO)
            snprintf(buf, len, "libxenctrl cannot reach the hypervisor (%s): "
                     "not a Xen dom0", es);
        else
            snprintf(buf, len, "libxenctrl: xc_interface_open: %s", strerror(err));
        break;
    case XENBE_STEP_DOMINFO:
        if (err == EPERM || err == EACCES)
            snprintf(buf, len, "Xen refused to list domains (%s): iomapd must run "
                     "in dom0, the control domain", es);
        else if (err == ENOSYS)
            snprintf(buf, len, "no hypervisor answered the domctl (ENOSYS): "
                     "not running on Xen");
        else
            snprintf(buf, len, "xc_domain_getinfolist: %s", strerror(err));
        break;
    case XENBE_STEP_FMEM_OPEN:
        snprintf(buf, len, "libxenforeignmemory cannot open %s: %s",
                 XENBE_PRIVCMD, strerror(err));
        break;
    case XENBE_STEP_RES_SIZE:
    case XENBE_STEP_RES_MAP:
        switch (err) {
        case EOPNOTSUPP:
        case ESRCH:     /* stock Xen: DOMID_XEN owns no acquirable resource */
        case ENOENT:
            snprintf(buf, len, SHIM_MISSING, XENBE_RESOURCE_TYPE, es);
            break;
        case ENOTTY:
        case ENOSYS:
            snprintf(buf, len, "the dom0 kernel's privcmd cannot map resources "
                     "(IOCTL_PRIVCMD_MMAP_RESOURCE: %s): Linux 4.18 or later needed",
                     es);
            break;
        case EPERM:
        case EACCES:
            snprintf(buf, len, "Xen refused the iomap ring (XENMEM_acquire_resource "
                     "type 0x%x: %s): XSM policy, or not dom0", XENBE_RESOURCE_TYPE, es);
            break;
        case EBUSY:
            snprintf(buf, len, "the iomap ring is already mapped (%s): is another "
                     "iomapd running?", es);
            break;
        case EINVAL:
            if (step == XENBE_STEP_RES_SIZE) {
                snprintf(buf, len, "the hypervisor offers no iomap ring "
                         "(XENMEM_acquire_resource type 0x%x id %u: EINVAL): "
                         "booted with iomap=0? see docs/XEN.md",
                         XENBE_RESOURCE_TYPE, XENBE_RESOURCE_ID);
                break;
            }
            /* fall through */
        default:
            snprintf(buf, len, "%s of the iomap ring (XENMEM_acquire_resource "
                     "type 0x%x id %u): %s",
                     step == XENBE_STEP_RES_SIZE ? "sizing" : "mapping",
                     XENBE_RESOURCE_TYPE, XENBE_RESOURCE_ID, strerror(err));
            break;
        }
        break;
    case XENBE_STEP_XCALL_OPEN:
        snprintf(buf, len, "libxencall cannot open %s: %s", XENBE_PRIVCMD,
                 strerror(err));
        break;
    case XENBE_STEP_KICK:
        if (err == ENOSYS)
            snprintf(buf, len, "the hypervisor has the iomap ring but no iomap_op "
                     "hypercall (%d: ENOSYS): rebuild it with the whole series in "
                     "shim/xen/patches, see docs/XEN.md", __HYPERVISOR_iomap_op);
        else if (err == EOPNOTSUPP)
            snprintf(buf, len, "the hypervisor's iomap shim is disabled (iomap_op "
                     "kick: EOPNOTSUPP): remove iomap=0 from Xen's command line");
        else if (err == EPERM || err == EACCES)
            snprintf(buf, len, "Xen refused the iomap_op kick (%s): XSM policy, or "
                     "not dom0", es);
        else
            snprintf(buf, len, "iomap_op(XEN_IOMMUOP_kick): %s", strerror(err));
        break;
    case XENBE_STEP_EVTCHN_OPEN:
        if (err == ENOENT || err == ENODEV || err == ENXIO)
            snprintf(buf, len, "%s missing: the xen-evtchn driver is not loaded",
                     XENBE_EVTCHN_DEV);
        else
            snprintf(buf, len, "libxenevtchn cannot open %s: %s", XENBE_EVTCHN_DEV,
                     strerror(err));
        break;
    case XENBE_STEP_BIND:
        snprintf(buf, len, "cannot bind VIRQ_IOMAP (%d), the shim's notification: %s",
                 VIRQ_IOMAP, strerror(err));
        break;
    case XENBE_STEP_NOTIFY_FD:
        snprintf(buf, len, "the event channel has no fd to watch: %s", strerror(err));
        break;
    default:
        snprintf(buf, len, "Xen backend: %s", strerror(err));
    }
    return buf;
}

unsigned long
xenbe_size_to_frames(size_t size, char *err, size_t errlen)
{
    if (size == 0) {
        /* The patched Xen sizes the resource 0 when booted with iomap=0. */
        snprintf(err, errlen, "the hypervisor's iomap shim is disabled (its ring "
                 "resource has no pages): remove iomap=0 from Xen's command line");
        return 0;
    }
    if (size < IOMAP_RING_HDR_SIZE || size % XENBE_PAGE_SIZE) {
        snprintf(err, errlen, "the shim reports a %zu-byte ring resource "
                 "(want whole pages, at least one)", size);
        return 0;
    }
    if (size / XENBE_PAGE_SIZE > XENBE_MAX_FRAMES) {
        snprintf(err, errlen, "the shim reports a %zu-byte ring resource "
                 "(more than %u pages)", size, XENBE_MAX_FRAMES);
        return 0;
    }
    return size / XENBE_PAGE_SIZE;
}

int
xenbe_attach_region(struct iomap_ring *r, void *mem, unsigned long nr_frames,
                    char *err, size_t errlen)
{
    char why[192];
    int rc;

    if (nr_frames == 0 || nr_frames > XENBE_MAX_FRAMES) {
        snprintf(err, errlen, "the shim's ring region: %lu pages", nr_frames);
        return -E2BIG;
    }
    rc = iomap_ring_attach(r, mem, (size_t)nr_frames * XENBE_PAGE_SIZE,
                           why, sizeof(why));
    if (rc < 0) {
        if (rc == -EPROTO)
            snprintf(err, errlen, "the shim speaks another ABI (%s): "
                     "rebuild iomapd or the hypervisor from the same tree", why);
        else
            snprintf(err, errlen, "the shim's ring region is malformed: %s", why);
    }
    return rc;
}

/* ---- the backend ------------------------------------------------------------- */

struct xen_be {
    struct backend be;         /* first */
    struct iomap_ring ring;
    xc_interface *xch;
    xenforeignmemory_handle *fmem;
    xenforeignmemory_resource_handle *fres;
    void         *region;
    unsigned long nr_frames;
    xencall_handle *xcall;
    xenevtchn_handle *xce;
    evtchn_port_t lport;        /* our end of VIRQ_IOMAP */
    int           bound;
    uint64_t      kick_errors;
};

static void
xen_kick(struct backend *be)
{
    struct xen_be *b = (struct xen_be *)be;

    /* The shim also takes commands whenever it posts events: a lost kick
     * delays commands, it does not lose them. */
    if (xenbe_ops->kick(b->xcall) < 0 && b->kick_errors++ == 0)
        log_warn("iomap_op(XEN_IOMMUOP_kick)");
}

static struct iomap_ring *
xen_ring(struct backend *be)
{
    return &((struct xen_be *)be)->ring;
}

/* The event channel's own fd, watched on the daemon's loop: no thread. */
static int
xen_notify_fd(struct backend *be)
{
    return xenbe_ops->evtchn_fd(((struct xen_be *)be)->xce);
}

/* VIRQ_IOMAP fired: take the pending port and unmask it for the next one. */
static void
xen_notified(struct backend *be)
{
    struct xen_be *b = (struct xen_be *)be;
    int port = xenbe_ops->pending(b->xce);

    if (port >= 0)
        xenbe_ops->unmask(b->xce, (evtchn_port_t)port);
}

/* The policy gave up on a guest whose pages stay stuck: crash it. */
static int
xen_crash_guest(struct backend *be, uint16_t domid)
{
    struct xen_be *b = (struct xen_be *)be;

    if (domid == 0) {
        log_warnx("policy: refusing to crash dom0");
        return -EPERM;
    }
    if (xenbe_ops->crash_domain == NULL)
        return -EOPNOTSUPP;
    if (xenbe_ops->crash_domain(b->xch, domid) < 0) {
        int rc = -errno;

        log_warn("policy: cannot crash d%u", domid);
        return rc;
    }
    return 0;
}

static void
xen_teardown(struct xen_be *b)
{
    if (b->bound)
        xenbe_ops->unbind(b->xce, b->lport);
    if (b->xce)
        xenbe_ops->evtchn_close(b->xce);
    if (b->xcall)
        xenbe_ops->xcall_close(b->xcall);
    if (b->fres)
        xenbe_ops->unmap_resource(b->fmem, b->fres);
    if (b->fmem)
        xenbe_ops->fmem_close(b->fmem);
    if (b->xch)
        xenbe_ops->xc_close(b->xch);
    free(b);
}

#define FAIL(step) do {                                         \
        rc = -(errno ? errno : EIO);                            \
        xenbe_strerror((step), -rc, err, errlen);               \
        goto fail;                                              \
    } while (0)

static int
xen_open(const struct backend_args *args, struct backend **out, char *err,
         size_t errlen)
{
    const struct xenbe_ops *o = xenbe_ops;
    struct xen_be *b;
    xc_domaininfo_t info;
    size_t size = 0;
    int rc;

    b = calloc(1, sizeof(*b));
    if (b == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    (void)args;

    /* Are we in a Xen domain that may talk to the hypervisor at all? */
    errno = 0;
    if (o->privcmd_present() < 0)
        FAIL(XENBE_STEP_PRIVCMD);
    errno = 0;
    if ((b->xch = o->xc_open()) == NULL)
        FAIL(XENBE_STEP_XC_OPEN);
    errno = 0;
    rc = o->getinfolist(b->xch, 0, 1, &info);
    if (rc < 0)
        FAIL(XENBE_STEP_DOMINFO);
    if (rc == 0) {
        snprintf(err, errlen, "Xen lists no domain 0: iomapd must run in dom0");
        rc = -ESRCH;
        goto fail;
    }

    /* Is the shim there?  Size its ring resource, then map it. */
    errno = 0;
    if ((b->fmem = o->fmem_open()) == NULL)
        FAIL(XENBE_STEP_FMEM_OPEN);
    errno = 0;
    if (o->resource_size(b->fmem, XENBE_RESOURCE_DOMID, XENBE_RESOURCE_TYPE,
                         XENBE_RESOURCE_ID, &size) < 0)
        FAIL(XENBE_STEP_RES_SIZE);
    b->nr_frames = xenbe_size_to_frames(size, err, errlen);
    if (b->nr_frames == 0) {
        rc = -EPROTO;
        goto fail;
    }
    errno = 0;
    b->fres = o->map_resource(b->fmem, XENBE_RESOURCE_DOMID, XENBE_RESOURCE_TYPE,
                              XENBE_RESOURCE_ID, 0, b->nr_frames, &b->region,
                              PROT_READ | PROT_WRITE, 0);
    if (b->fres == NULL)
        FAIL(XENBE_STEP_RES_MAP);
    rc = xenbe_attach_region(&b->ring, b->region, b->nr_frames, err, errlen);
    if (rc < 0)
        goto fail;

    /* daemon -> shim: one kick now proves the hypercall is there. */
    errno = 0;
    if ((b->xcall = o->xcall_open()) == NULL)
        FAIL(XENBE_STEP_XCALL_OPEN);
    errno = 0;
    if (o->kick(b->xcall) < 0)
        FAIL(XENBE_STEP_KICK);

    /* shim -> daemon. */
    errno = 0;
    if ((b->xce = o->evtchn_open()) == NULL)
        FAIL(XENBE_STEP_EVTCHN_OPEN);
    errno = 0;
    rc = o->bind_virq(b->xce, VIRQ_IOMAP);
    if (rc < 0)
        FAIL(XENBE_STEP_BIND);
    b->lport = (evtchn_port_t)rc;
    b->bound = 1;
    errno = 0;
    if (o->evtchn_fd(b->xce) < 0)
        FAIL(XENBE_STEP_NOTIFY_FD);

    b->be.ops = &backend_xen;
    *out = &b->be;
    log_debug("xen: shim ring of %lu pages (%u events, %u commands), "
              "VIRQ_IOMAP on port %u", b->nr_frames, b->ring.ev_slots,
              b->ring.cmd_slots, b->lport);
    return 0;

fail:
    xen_teardown(b);
    return rc;
}

static void
xen_close(struct backend *be)
{
    xen_teardown((struct xen_be *)be);
}

static int
xen_domain_exists(struct backend *be, uint16_t domid)
{
    struct xen_be *b = (struct xen_be *)be;
    xc_domaininfo_t info;
    int n;

    n = xenbe_ops->getinfolist(b->xch, domid, 1, &info);
    if (n < 0)
        return -errno;
    return n == 1 && info.domain == domid;
}

const struct backend_ops backend_xen = {
    .name = "xen",
    .open = xen_open,
    .ring = xen_ring,
    .notify_fd = xen_notify_fd,
    .notified = xen_notified,
    .kick = xen_kick,
    .crash_guest = xen_crash_guest,
    .domain_exists = xen_domain_exists,
    .close = xen_close,
};
