/* SPDX-License-Identifier: MIT */
/*
 * The Xen backend without a hypervisor: its messages, the decoding of the
 * shim's region, and open/close driven through fake libxen calls that fail
 * at every step in turn (and must then leave nothing open behind).
 */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/cunit_main.h"
#include "daemon/backend_xen.h"

/* ---- fake libxen ----------------------------------------------------------- */

enum { F_PRIVCMD, F_XC_OPEN, F_DOMINFO, F_FMEM_OPEN, F_RES_SIZE, F_RES_MAP,
       F_XCALL_OPEN, F_KICK, F_EVTCHN_OPEN, F_BIND, F_MAX };

static struct {
    int   fail_at;              /* F_* to fail, or -1 */
    int   fail_errno;
    int   ndoms;                /* what getinfolist returns */
    size_t res_size;
    void *region;               /* what map_resource hands out */
    int   pipe[2];              /* the fake event channel device */
    int   opened, closed;       /* handles + mappings + bindings */
    int   kicks, unmasked;
    unsigned last_unmask_port;
    uint32_t bind_virq;
    unsigned map_type, map_id, map_domid;
    unsigned long map_nr;
} fk;

static int h_xch, h_fmem, h_fres, h_xcall, h_xce;

#define MAYBE_FAIL(step, ret) do {                                      \
        if (fk.fail_at == (step)) { errno = fk.fail_errno; return ret; } \
    } while (0)

static int f_privcmd(void) { MAYBE_FAIL(F_PRIVCMD, -1); return 0; }

static xc_interface *
f_xc_open(void)
{
    MAYBE_FAIL(F_XC_OPEN, NULL);
    fk.opened++;
    return (xc_interface *)&h_xch;
}

static int f_xc_close(xc_interface *x) { fk.closed++; return 0; }

static int
f_getinfolist(xc_interface *x, uint32_t first, unsigned max, xc_domaininfo_t *info)
{
    MAYBE_FAIL(F_DOMINFO, -1);
    if (fk.ndoms == 0 || first >= (uint32_t)fk.ndoms)
        return 0;
    memset(info, 0, sizeof(*info));
    info->domain = (domid_t)first;
    return 1;
}

static xenforeignmemory_handle *
f_fmem_open(void)
{
    MAYBE_FAIL(F_FMEM_OPEN, NULL);
    fk.opened++;
    return (xenforeignmemory_handle *)&h_fmem;
}

static int f_fmem_close(xenforeignmemory_handle *f) { fk.closed++; return 0; }

static int
f_resource_size(xenforeignmemory_handle *f, domid_t domid, unsigned type,
                unsigned id, size_t *size)
{
    MAYBE_FAIL(F_RES_SIZE, -1);
    *size = fk.res_size;
    return 0;
}

static xenforeignmemory_resource_handle *
f_map_resource(xenforeignmemory_handle *f, domid_t domid, unsigned type,
               unsigned id, unsigned long frame, unsigned long nr, void **addr,
               int prot, int flags)
{
    MAYBE_FAIL(F_RES_MAP, NULL);
    fk.map_domid = domid;
    fk.map_type = type;
    fk.map_id = id;
    fk.map_nr = nr;
    *addr = fk.region;
    fk.opened++;
    return (xenforeignmemory_resource_handle *)&h_fres;
}

static int
f_unmap_resource(xenforeignmemory_handle *f, xenforeignmemory_resource_handle *r)
{
    fk.closed++;
    return 0;
}

static xencall_handle *
f_xcall_open(void)
{
    MAYBE_FAIL(F_XCALL_OPEN, NULL);
    fk.opened++;
    return (xencall_handle *)&h_xcall;
}

static int f_xcall_close(xencall_handle *x) { fk.closed++; return 0; }

static int
f_kick(xencall_handle *x)
{
    MAYBE_FAIL(F_KICK, -1);
    fk.kicks++;
    return 0;
}

static xenevtchn_handle *
f_evtchn_open(void)
{
    MAYBE_FAIL(F_EVTCHN_OPEN, NULL);
    fk.opened++;
    return (xenevtchn_handle *)&h_xce;
}

static int f_evtchn_close(xenevtchn_handle *x) { fk.closed++; return 0; }
static int f_evtchn_fd(xenevtchn_handle *x) { return fk.pipe[0]; }

static int
f_bind_virq(xenevtchn_handle *x, unsigned virq)
{
    MAYBE_FAIL(F_BIND, -1);
    fk.bind_virq = virq;
    fk.opened++;
    return 43;
}

static int f_unbind(xenevtchn_handle *x, evtchn_port_t p) { fk.closed++; return 0; }

static int
f_pending(xenevtchn_handle *x)
{
    uint32_t port;

    if (read(fk.pipe[0], &port, sizeof(port)) != sizeof(port))
        return -1;
    return (int)port;
}

static int
f_unmask(xenevtchn_handle *x, evtchn_port_t p)
{
    fk.last_unmask_port = p;
    __atomic_add_fetch(&fk.unmasked, 1, __ATOMIC_SEQ_CST);
    return 0;
}

static const struct xenbe_ops fake_ops = {
    .privcmd_present = f_privcmd,
    .xc_open = f_xc_open,
    .xc_close = f_xc_close,
    .getinfolist = f_getinfolist,
    .fmem_open = f_fmem_open,
    .fmem_close = f_fmem_close,
    .resource_size = f_resource_size,
    .map_resource = f_map_resource,
    .unmap_resource = f_unmap_resource,
    .xcall_open = f_xcall_open,
    .xcall_close = f_xcall_close,
    .kick = f_kick,
    .evtchn_open = f_evtchn_open,
    .evtchn_close = f_evtchn_close,
    .evtchn_fd = f_evtchn_fd,
    .bind_virq = f_bind_virq,
    .unbind = f_unbind,
    .pending = f_pending,
    .unmask = f_unmask,
};

#define FRAMES 4

/* A shim-formatted region of FRAMES pages, as the Xen shim lays it out. */
static void
fake_reset(void)
{
    struct iomap_ring shim;

    if (fk.region)
        free(fk.region);
    memset(&fk, 0, sizeof(fk));
    fk.fail_at = -1;
    fk.ndoms = 3;
    fk.res_size = FRAMES * XENBE_PAGE_SIZE;
    CU_ASSERT_EQUAL_FATAL(posix_memalign(&fk.region, 4096, fk.res_size), 0);
    memset(fk.region, 0, fk.res_size);
    CU_ASSERT_EQUAL(iomap_ring_format(&shim, fk.region, fk.res_size, 64, 32), 0);
    CU_ASSERT_EQUAL_FATAL(pipe(fk.pipe), 0);
    xenbe_ops = &fake_ops;
}

static void
fake_done(void)
{
    close(fk.pipe[0]);
    close(fk.pipe[1]);
    free(fk.region);
    fk.region = NULL;
    xenbe_ops = &xenbe_libxen_ops;
}

static const struct backend_args no_args;

/* ---- messages ------------------------------------------------------------------ */

static void
test_messages_name_what_is_missing(void)
{
    char buf[256];

    xenbe_strerror(XENBE_STEP_PRIVCMD, ENOENT, buf, sizeof(buf));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "/dev/xen/privcmd missing"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "not a Xen dom0"));

    xenbe_strerror(XENBE_STEP_RES_SIZE, EOPNOTSUPP, buf, sizeof(buf));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "no iomap shim"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "0x4d41"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "EOPNOTSUPP"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "docs/XEN.md"));

    /* Stock Xen 4.17 refuses DOMID_XEN before it looks at the type. */
    xenbe_strerror(XENBE_STEP_RES_MAP, ESRCH, buf, sizeof(buf));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "no iomap shim"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "ESRCH"));

    xenbe_strerror(XENBE_STEP_RES_SIZE, ENOTTY, buf, sizeof(buf));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "Linux 4.18"));

    xenbe_strerror(XENBE_STEP_RES_MAP, EPERM, buf, sizeof(buf));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "XSM"));

    xenbe_strerror(XENBE_STEP_DOMINFO, EPERM, buf, sizeof(buf));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "dom0"));

    xenbe_strerror(XENBE_STEP_EVTCHN_OPEN, ENOENT, buf, sizeof(buf));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "/dev/xen/evtchn missing"));

    xenbe_strerror(XENBE_STEP_RES_MAP, EBUSY, buf, sizeof(buf));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "another iomapd"));
}

/* Every message is one line and fits iomapd's 256-byte error buffer. */
static void
test_messages_one_line(void)
{
    static const int errs[] = { ENOENT, EACCES, EPERM, ENOSYS, ENOTTY, ESRCH,
                                EOPNOTSUPP, EINVAL, EBUSY, ENOMEM, EIO, ENODEV,
                                E2BIG, 4095 };
    char buf[256];

    for (int s = 0; s < XENBE_STEP_MAX; s++)
        for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
            xenbe_strerror(s, errs[i], buf, sizeof(buf));
            CU_ASSERT(strlen(buf) > 10);
            CU_ASSERT(strlen(buf) < sizeof(buf) - 1);
            CU_ASSERT_PTR_NULL(strchr(buf, '\n'));
        }
}

/* ---- decoding --------------------------------------------------------------------- */

static void
test_size_to_frames(void)
{
    char err[256];

    CU_ASSERT_EQUAL(xenbe_size_to_frames(0, err, sizeof(err)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "iomap=0"));
    CU_ASSERT_EQUAL(xenbe_size_to_frames(4095, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(xenbe_size_to_frames(4097, err, sizeof(err)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "4097-byte"));
    CU_ASSERT_EQUAL(xenbe_size_to_frames((size_t)(XENBE_MAX_FRAMES + 1) * 4096,
                                         err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(xenbe_size_to_frames(4096, err, sizeof(err)), 1);
    CU_ASSERT_EQUAL(xenbe_size_to_frames(3 * 4096, err, sizeof(err)), 3);
}

static void
test_attach_region(void)
{
    struct iomap_ring r;
    char err[256];
    struct iomap_ring_hdr *h;

    fake_reset();
    h = fk.region;
    CU_ASSERT_EQUAL(xenbe_attach_region(&r, fk.region, FRAMES, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(r.ev_slots, 64);
    CU_ASSERT_EQUAL(r.cmd_slots, 32);
    CU_ASSERT_EQUAL(r.len, FRAMES * 4096);

    CU_ASSERT_EQUAL(xenbe_attach_region(&r, fk.region, 0, err, sizeof(err)), -E2BIG);

    /* Rings that reach past the mapped frames. */
    CU_ASSERT_EQUAL(xenbe_attach_region(&r, fk.region, 1, err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "malformed"));

    h->version = htole32((IOMAP_ABI_VERSION_MAJOR + 1) << 16);
    CU_ASSERT_EQUAL(xenbe_attach_region(&r, fk.region, FRAMES, err, sizeof(err)),
                    -EPROTO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "another ABI"));

    h->version = htole32(IOMAP_ABI_VERSION);
    h->magic = 0;
    CU_ASSERT_EQUAL(xenbe_attach_region(&r, fk.region, FRAMES, err, sizeof(err)),
                    -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "bad magic"));
    fake_done();
}

/* ---- open / close through fakes ----------------------------------------------- */

static int
readable(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };

    return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

static void
test_open_kick_notify_close(void)
{
    struct backend *be = NULL;
    char err[256] = "";
    uint32_t port = 43;
    int nfd;

    fake_reset();
    CU_ASSERT_EQUAL_FATAL(backend_xen.open(&no_args, &be, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(fk.map_domid, DOMID_XEN);
    CU_ASSERT_EQUAL(fk.map_type, XENMEM_resource_iomap);
    CU_ASSERT_EQUAL(fk.map_id, IOMAP_RESOURCE_RING);
    CU_ASSERT_EQUAL(fk.map_nr, FRAMES);
    CU_ASSERT_EQUAL(fk.bind_virq, VIRQ_IOMAP);
    CU_ASSERT_EQUAL(fk.kicks, 1);   /* the probe at open */
    CU_ASSERT_PTR_NOT_NULL(backend_xen.ring(be));
    CU_ASSERT_EQUAL(backend_xen.ring(be)->ev_slots, 64);
    nfd = backend_xen.notify_fd(be);
    CU_ASSERT(nfd >= 0);
    CU_ASSERT_FALSE(readable(nfd, 0));

    /* daemon -> shim: the iomap_op kick. */
    backend_xen.kick(be);
    CU_ASSERT_EQUAL(fk.kicks, 2);
    /* A failing kick is logged once and does not stop the daemon. */
    fk.fail_at = F_KICK;
    fk.fail_errno = EIO;
    backend_xen.kick(be);
    backend_xen.kick(be);
    fk.fail_at = -1;
    backend_xen.kick(be);
    CU_ASSERT_EQUAL(fk.kicks, 3);

    /*
     * shim -> daemon: VIRQ_IOMAP fires; the event channel's own fd (watched
     * on the loop, no thread) becomes readable; notified() takes the port
     * and unmasks it, and the fd is quiet again.
     */
    CU_ASSERT_EQUAL(write(fk.pipe[1], &port, sizeof(port)), sizeof(port));
    CU_ASSERT(readable(nfd, 2000));
    backend_xen.notified(be);
    CU_ASSERT_EQUAL(__atomic_load_n(&fk.unmasked, __ATOMIC_SEQ_CST), 1);
    CU_ASSERT_EQUAL(fk.last_unmask_port, 43);
    CU_ASSERT_FALSE(readable(nfd, 0));
    /* ... and again. */
    CU_ASSERT_EQUAL(write(fk.pipe[1], &port, sizeof(port)), sizeof(port));
    CU_ASSERT(readable(nfd, 2000));
    backend_xen.notified(be);
    CU_ASSERT_EQUAL(__atomic_load_n(&fk.unmasked, __ATOMIC_SEQ_CST), 2);

    CU_ASSERT_EQUAL(backend_xen.domain_exists(be, 2), 1);
    CU_ASSERT_EQUAL(backend_xen.domain_exists(be, 9), 0);

    backend_xen.close(be);
    /* xc, fmem, resource, xencall, evtchn, binding */
    CU_ASSERT_EQUAL(fk.opened, 6);
    CU_ASSERT_EQUAL(fk.closed, fk.opened);
    fake_done();
}

/* Fail each step in turn: the right message, and nothing left open. */
static void
test_open_fails_cleanly(void)
{
    static const struct { int at, err; enum xenbe_step step; const char *want; } c[] = {
        { F_PRIVCMD, ENOENT, XENBE_STEP_PRIVCMD, "/dev/xen/privcmd missing" },
        { F_XC_OPEN, EACCES, XENBE_STEP_XC_OPEN, "root in dom0" },
        { F_DOMINFO, EPERM, XENBE_STEP_DOMINFO, "dom0" },
        { F_FMEM_OPEN, ENOMEM, XENBE_STEP_FMEM_OPEN, "libxenforeignmemory" },
        { F_RES_SIZE, EOPNOTSUPP, XENBE_STEP_RES_SIZE, "no iomap shim" },
        { F_RES_MAP, ESRCH, XENBE_STEP_RES_MAP, "no iomap shim" },
        { F_RES_SIZE, EINVAL, XENBE_STEP_RES_SIZE, "iomap=0" },
        { F_XCALL_OPEN, ENOMEM, XENBE_STEP_XCALL_OPEN, "libxencall" },
        { F_KICK, ENOSYS, XENBE_STEP_KICK, "no iomap_op" },
        { F_KICK, EOPNOTSUPP, XENBE_STEP_KICK, "iomap=0" },
        { F_EVTCHN_OPEN, ENOENT, XENBE_STEP_EVTCHN_OPEN, "/dev/xen/evtchn" },
        { F_BIND, EINVAL, XENBE_STEP_BIND, "VIRQ_IOMAP" },
    };
    char err[256], want[256];
    struct backend *be;

    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        fake_reset();
        fk.fail_at = c[i].at;
        fk.fail_errno = c[i].err;
        be = NULL;
        CU_ASSERT_EQUAL(backend_xen.open(&no_args, &be, err, sizeof(err)), -c[i].err);
        xenbe_strerror(c[i].step, c[i].err, want, sizeof(want));
        CU_ASSERT_STRING_EQUAL(err, want);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, c[i].want));
        CU_ASSERT_PTR_NULL(be);
        CU_ASSERT_EQUAL(fk.closed, fk.opened);
        fake_done();
    }
}

static void
test_open_rejects_bad_region(void)
{
    struct backend *be = NULL;
    char err[256];

    /* No domain 0 in the list. */
    fake_reset();
    fk.ndoms = 0;
    CU_ASSERT(backend_xen.open(&no_args, &be, err, sizeof(err)) < 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "dom0"));
    CU_ASSERT_EQUAL(fk.closed, fk.opened);
    fake_done();

    /* A resource of an odd size. */
    fake_reset();
    fk.res_size = 100;
    CU_ASSERT_EQUAL(backend_xen.open(&no_args, &be, err, sizeof(err)), -EPROTO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "100-byte"));
    CU_ASSERT_EQUAL(fk.closed, fk.opened);
    fake_done();

    /* A region that is not the shim's. */
    fake_reset();
    ((struct iomap_ring_hdr *)fk.region)->magic = htole32(0xdeadbeef);
    CU_ASSERT_EQUAL(backend_xen.open(&no_args, &be, err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "bad magic"));
    CU_ASSERT_PTR_NULL(be);
    CU_ASSERT_EQUAL(fk.closed, fk.opened);
    fake_done();

    /* Another ABI major. */
    fake_reset();
    ((struct iomap_ring_hdr *)fk.region)->version = htole32(7u << 16);
    CU_ASSERT_EQUAL(backend_xen.open(&no_args, &be, err, sizeof(err)), -EPROTO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "shim ABI 7.0"));
    CU_ASSERT_EQUAL(fk.closed, fk.opened);
    fake_done();
}

/* On this machine (no hypervisor), the real libxen path fails at once. */
static void
test_real_libxen_without_xen(void)
{
    struct backend *be = NULL;
    char err[256] = "";

    if (access(XENBE_PRIVCMD, F_OK) == 0)
        return;                 /* a Xen domain: the shell test covers it */
    CU_ASSERT_EQUAL(backend_xen.open(&no_args, &be, err, sizeof(err)), -ENOENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/dev/xen/privcmd missing"));
    CU_ASSERT_PTR_NULL(be);
}

int
main(void)
{
    static const struct test_case tests[] = {
        { "messages name what is missing", test_messages_name_what_is_missing },
        { "messages are one line", test_messages_one_line },
        { "resource size to frames", test_size_to_frames },
        { "attach the mapped region", test_attach_region },
        { "open, kick, VIRQ_IOMAP on the loop, close", test_open_kick_notify_close },
        { "open fails cleanly at every step", test_open_fails_cleanly },
        { "open rejects a bad region", test_open_rejects_bad_region },
        { "real libxen without a hypervisor", test_real_libxen_without_xen },
        { NULL, NULL },
    };

    return run_tests("xen backend", tests);
}
