/* SPDX-License-Identifier: MIT */
/*
 * The patched hw/i386/xen/xen-iomap.c, compiled on its own with QEMU's
 * flags (run-test-mapcache.sh) against fakes for xenstore, libiomap-emu,
 * libxencall, the main loop's timer and fd handlers and the mapcache.
 * It checks:
 *   - without a valid "domid" in xenstore QEMU does not register with
 *     iomapd (no guessed domain 0), and registers with the domid it reads;
 *   - when the hypercall that takes Xen's global invalidate back fails,
 *     QEMU's state follows Xen's: still opted out (so the retry timer
 *     tries again and succeeds), or opted in when Xen says the ioreq
 *     server is gone (-ENOENT), not asked again.
 * Exit status 0 when all hold; each failed check is printed.
 */
#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "block/aio.h"
#include "sysemu/xen-mapcache.h"
#include "hw/xen/xen_common.h"
#include <iomap/emu.h>
#include <xencall.h>

struct iomap_emu {
    int dummy;
};

static struct iomap_emu the_emu;
static const char *xs_domid;        /* what xenstore holds, NULL: nothing */
static int opens, open_emu_domid, next_rc, reconnect_rc;
static int xencall_errno;           /* the next hypercall fails with it */
static int global_invalidates;
static QEMUTimerCB *timer_cb;
static void *timer_opaque;
static int timer_armed;
static IOHandler *fd_read;
static void *fd_opaque;

static void *test_xs_read(struct xs_handle *h, xs_transaction_t t,
                          const char *path, unsigned int *len)
{
    (void)h;
    (void)t;
    if (strcmp(path, "domid") != 0 || !xs_domid) {
        return NULL;
    }
    *len = strlen(xs_domid);
    return strdup(xs_domid);
}

static struct iomap_emu *test_emu_open(const char *path, uint16_t emu_domid,
                                       uint16_t target, uint16_t ioservid,
                                       uint32_t caps, int *err)
{
    (void)path;
    (void)target;
    (void)ioservid;
    (void)caps;
    (void)err;
    opens++;
    open_emu_domid = emu_domid;
    return &the_emu;
}

static int test_emu_fd(const struct iomap_emu *e)
{
    (void)e;
    return 42;
}

static int test_emu_next(struct iomap_emu *e, struct iomap_emu_req *r)
{
    (void)e;
    (void)r;
    return next_rc;
}

static int test_emu_done(struct iomap_emu *e, const struct iomap_emu_req *r)
{
    (void)e;
    (void)r;
    return 0;
}

static int test_emu_reconnect(struct iomap_emu *e)
{
    (void)e;
    return reconnect_rc;
}

static xencall_handle *test_xencall_open(struct xentoollog_logger *l,
                                         unsigned f)
{
    (void)l;
    (void)f;
    return (xencall_handle *)&the_emu;
}

static void *test_xencall_alloc_buffer(xencall_handle *x, size_t size)
{
    (void)x;
    return g_malloc0(size);
}

static void test_xencall_free_buffer(xencall_handle *x, void *p)
{
    (void)x;
    g_free(p);
}

static int test_xencall3(xencall_handle *x, unsigned int op, uint64_t a1,
                         uint64_t a2, uint64_t a3)
{
    (void)x;
    (void)op;
    (void)a1;
    (void)a2;
    (void)a3;
    if (xencall_errno) {
        errno = xencall_errno;
        return -1;
    }
    return 0;
}

static QEMUTimer *test_timer_new_ms(QEMUClockType type, QEMUTimerCB *cb,
                                    void *opaque)
{
    (void)type;
    timer_cb = cb;
    timer_opaque = opaque;
    return g_new0(QEMUTimer, 1);
}

static void test_timer_mod(QEMUTimer *t, int64_t when)
{
    (void)t;
    (void)when;
    timer_armed++;
}

static void test_set_fd_handler(int fd, IOHandler *r, IOHandler *w,
                                void *opaque)
{
    (void)fd;
    (void)w;
    fd_read = r;
    fd_opaque = opaque;
}

#define xs_read test_xs_read
#define iomap_emu_open test_emu_open
#define iomap_emu_fd test_emu_fd
#define iomap_emu_next test_emu_next
#define iomap_emu_done test_emu_done
#define iomap_emu_reconnect test_emu_reconnect
#define xencall_open test_xencall_open
#define xencall_alloc_buffer test_xencall_alloc_buffer
#define xencall_free_buffer test_xencall_free_buffer
#define xencall3 test_xencall3
#define timer_new_ms test_timer_new_ms
#define timer_mod test_timer_mod
#define qemu_set_fd_handler test_set_fd_handler
#undef aio_bh_schedule_oneshot
#define aio_bh_schedule_oneshot(ctx, cb, opaque) ((cb)(opaque))

#include "xen-iomap.c"

struct io_trace io_trace;
bool xen_domid_restrict;

void xen_invalidate_map_cache(void)
{
    global_invalidates++;
}

bool xen_invalidate_map_cache_range(hwaddr start, hwaddr size,
                                    XenMapCacheInvalidateDone *done,
                                    void *opaque)
{
    (void)start;
    (void)size;
    (void)done;
    (void)opaque;
    return true;
}

static int failures;

#define CHECK(cond) do { \
        if (!(cond)) { \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            failures++; \
        } \
    } while (0)

int main(void)
{
    struct xs_handle *xs = (struct xs_handle *)&the_emu;
    XenIOMap *s;

    /* 1. No domid in xenstore, or a bad one: no registration at all. */
    xs_domid = NULL;
    xen_iomap_init(xs, 5, 1);
    CHECK(opens == 0 && fd_read == NULL);
    xs_domid = "banana";
    xen_iomap_init(xs, 5, 1);
    xs_domid = "32752";             /* DOMID_FIRST_RESERVED */
    xen_iomap_init(xs, 5, 1);
    CHECK(opens == 0 && fd_read == NULL);
    CHECK(io_trace.set_invalidates == 0);

    /* With one, registered under it, and out of Xen's broadcast. */
    xs_domid = "7";
    xen_iomap_init(xs, 5, 1);
    CHECK(opens == 1 && open_emu_domid == 7 && fd_read != NULL);
    s = fd_opaque;
    CHECK(io_trace.set_invalidates == 1 && io_trace.set_invalidate_rc == 0);
    CHECK(s->opted_out);

    /* 2. iomapd goes away and Xen refuses the opt-in: still out. */
    next_rc = -ENOTCONN;
    xencall_errno = EFAULT;
    fd_read(fd_opaque);
    CHECK(io_trace.set_invalidates == 2);
    CHECK(io_trace.set_invalidate_mode == XEN_IOMAP_INVALIDATE_GLOBAL);
    CHECK(io_trace.set_invalidate_rc == -EFAULT);
    CHECK(s->opted_out);
    CHECK(global_invalidates == 1 && timer_armed == 1);
    /* iomapd still away: the retry asks Xen again; now it works. */
    reconnect_rc = -ECONNREFUSED;
    xencall_errno = 0;
    timer_cb(timer_opaque);
    CHECK(io_trace.set_invalidates == 3);
    CHECK(io_trace.set_invalidate_mode == XEN_IOMAP_INVALIDATE_GLOBAL);
    CHECK(!s->opted_out);
    CHECK(timer_armed == 2);
    /* Not asked again while it stays in. */
    timer_cb(timer_opaque);
    CHECK(io_trace.set_invalidates == 3);

    /* Back: out again. */
    reconnect_rc = 0;
    next_rc = 0;
    timer_cb(timer_opaque);
    CHECK(io_trace.set_invalidates == 4 && s->opted_out);

    /* 3. Xen no longer knows the ioreq server: nothing to opt in to. */
    next_rc = -ENOTCONN;
    xencall_errno = ENOENT;
    fd_read(fd_opaque);
    CHECK(io_trace.set_invalidates == 5);
    CHECK(!s->opted_out);
    reconnect_rc = -ECONNREFUSED;
    timer_cb(timer_opaque);
    CHECK(io_trace.set_invalidates == 5);

    printf("%s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
    return failures ? 1 : 0;
}
