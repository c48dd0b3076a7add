/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/cunit_main.h"
#include "ioreq/channel.h"
#include "ioreq/emu_priv.h"      /* the handle's struct: a white-box test */

static uint8_t
state_of(const struct iomap_ioreq *s)
{
    return s->state;
}

static void
test_types_do_not_clash(void)
{
    /* Xen's IOREQ types in 4.17: 0, 1, 2, 7, 8. */
    static const int xen[] = { 0, 1, 2, 7, 8 };

    for (size_t i = 0; i < sizeof(xen) / sizeof(xen[0]); i++)
        CU_ASSERT_NOT_EQUAL(IOMAP_IOREQ_TYPE_INVALIDATE_PAGE, xen[i]);
    CU_ASSERT_EQUAL(IOMAP_IOREQ_TYPE_INVALIDATE, 8);
    CU_ASSERT_EQUAL(sizeof(struct iomap_ioreq), 32);
}

static void
test_state_machine(void)
{
    struct ioreq_chan d, e;
    struct iomap_ioreq got;
    int slot, reaped = 0;

    CU_ASSERT_EQUAL_FATAL(ioreq_chan_create(&d, 0, 5, IOMAP_EMU_CAP_INVALIDATE_PAGE, 0), 0);
    memset(&e, 0, sizeof(e));
    e.page = d.page;
    e.req_fd = e.resp_fd = e.shm_fd = -1;

    slot = ioreq_chan_send(&d, IOMAP_IOREQ_TYPE_INVALIDATE_PAGE, 3, 0x1234, 16);
    CU_ASSERT_TRUE(slot >= 0);
    CU_ASSERT_EQUAL(state_of(&d.page->slot[slot]), IOMAP_STATE_IOREQ_READY);
    /* Answering a request not taken is refused. */
    CU_ASSERT_EQUAL(ioreq_chan_answer(&e, slot), -EINVAL);
    CU_ASSERT_EQUAL(ioreq_chan_take(&e, &got), slot);
    CU_ASSERT_EQUAL(state_of(&d.page->slot[slot]), IOMAP_STATE_IOREQ_INPROCESS);
    CU_ASSERT_EQUAL(got.type, IOMAP_IOREQ_TYPE_INVALIDATE_PAGE);
    CU_ASSERT_EQUAL(got.addr, 0x1234ull << 12);
    CU_ASSERT_EQUAL(got.count, 16);
    CU_ASSERT_EQUAL(got.data, 3);
    CU_ASSERT_EQUAL(got.size, 4096);
    CU_ASSERT_EQUAL(ioreq_chan_take(&e, &got), -1);     /* nothing else READY */
    /* Not answered yet: nothing to reap. */
    CU_ASSERT_EQUAL(ioreq_chan_reap(&d, NULL, NULL), 0);
    CU_ASSERT_EQUAL(ioreq_chan_answer(&e, slot), 0);
    CU_ASSERT_EQUAL(state_of(&d.page->slot[slot]), IOMAP_STATE_IORESP_READY);
    CU_ASSERT_EQUAL(ioreq_chan_answer(&e, slot), -EINVAL);  /* twice */
    reaped = (int)ioreq_chan_reap(&d, NULL, NULL);
    CU_ASSERT_EQUAL(reaped, 1);
    CU_ASSERT_EQUAL(state_of(&d.page->slot[slot]), IOMAP_STATE_IOREQ_NONE);
    CU_ASSERT_EQUAL(ioreq_chan_free_slots(&d), IOMAP_IOREQ_SLOTS);
    CU_ASSERT_EQUAL(ioreq_chan_answer(&e, -1), -EINVAL);
    CU_ASSERT_EQUAL(ioreq_chan_answer(&e, IOMAP_IOREQ_SLOTS), -EINVAL);
    ioreq_chan_destroy(&d);
}

static void
test_full(void)
{
    struct ioreq_chan d;

    ioreq_chan_create(&d, 0, 1, 0, 0);
    for (int i = 0; i < IOMAP_IOREQ_SLOTS; i++)
        CU_ASSERT_TRUE(ioreq_chan_send(&d, IOMAP_IOREQ_TYPE_INVALIDATE, 0, 0, 0) >= 0);
    CU_ASSERT_EQUAL(ioreq_chan_send(&d, IOMAP_IOREQ_TYPE_INVALIDATE, 0, 0, 0), -EBUSY);
    CU_ASSERT_EQUAL(ioreq_chan_free_slots(&d), 0);
    ioreq_chan_destroy(&d);
}

static void
collect(void *arg, const struct iomap_ioreq *req)
{
    (*(int *)arg) += (int)req->count;
}

/* The client library over a real memfd and eventfds, as another process sees it. */
static void
test_client_over_memfd(void)
{
    struct ioreq_chan d;
    struct iomap_emu *e;
    struct iomap_emu_req r;
    struct pollfd p;
    int total = 0, shm, rq, rs;

    CU_ASSERT_EQUAL_FATAL(ioreq_chan_create(&d, 0, 9, IOMAP_EMU_CAP_INVALIDATE_PAGE, 1), 0);
    shm = dup(d.shm_fd);
    rq = dup(d.req_fd);
    rs = dup(d.resp_fd);
    e = calloc(1, sizeof(*e));
    CU_ASSERT_EQUAL_FATAL(ioreq_chan_attach(&e->chan, shm, rq, rs), 0);
    e->sock = -1;
    CU_ASSERT_PTR_NOT_EQUAL(e->chan.page, d.page);  /* a second mapping */

    ioreq_chan_send(&d, IOMAP_IOREQ_TYPE_INVALIDATE_PAGE, 2, 100, 4);
    ioreq_chan_send(&d, IOMAP_IOREQ_TYPE_INVALIDATE, 0, 0, 0);
    ioreq_chan_kick(&d);
    p.fd = iomap_emu_fd(e);
    p.events = POLLIN;
    CU_ASSERT_EQUAL(poll(&p, 1, 1000), 1);
    CU_ASSERT_EQUAL(iomap_emu_next(e, &r), 1);
    CU_ASSERT_FALSE(r.global);
    CU_ASSERT_EQUAL(r.gfn, 100);
    CU_ASSERT_EQUAL(r.nr, 4);
    CU_ASSERT_EQUAL(r.domid, 2);
    CU_ASSERT_EQUAL(iomap_emu_done(e, &r), 0);
    CU_ASSERT_EQUAL(iomap_emu_next(e, &r), 1);
    CU_ASSERT_TRUE(r.global);
    CU_ASSERT_EQUAL(iomap_emu_done(e, &r), 0);
    CU_ASSERT_EQUAL(iomap_emu_next(e, &r), 0);
    p.fd = d.resp_fd;
    CU_ASSERT_EQUAL(poll(&p, 1, 1000), 1);
    CU_ASSERT_EQUAL(ioreq_chan_reap(&d, collect, &total), 2);
    CU_ASSERT_EQUAL(total, 4);
    ioreq_chan_destroy(&e->chan);
    free(e);
    ioreq_chan_destroy(&d);
}

static void
test_attach_rejects_garbage(void)
{
    int fd = memfd_create("junk", 0);
    struct ioreq_chan c;

    CU_ASSERT_EQUAL_FATAL(ftruncate(fd, 4096), 0);
    CU_ASSERT_EQUAL(ioreq_chan_attach(&c, fd, -1, -1), -EPROTO);
    close(fd);
}

/*
 * A fake daemon in a child: accepts one registration on path and answers
 * it with welcome (no fds).  Returns the child's pid.
 */
static pid_t
fake_daemon(const char *path, uint32_t magic, int32_t status)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int l = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    pid_t pid;

    strcpy(sun.sun_path, path);
    if (l < 0 || bind(l, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(l, 1) < 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        struct iomap_emu_hello h;
        struct iomap_emu_welcome w = { magic, status };
        int c = accept(l, NULL, NULL);

        if (c < 0 || recv(c, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
            h.magic != IOMAP_EMU_PROTO_MAGIC || h.ioservid != 7)
            _exit(1);
        _exit(send(c, &w, sizeof(w), 0) == (ssize_t)sizeof(w) ? 0 : 1);
    }
    close(l);
    return pid;
}

static int
exit_status(pid_t pid)
{
    int st = 0;

    return waitpid(pid, &st, 0) == pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* open returns errors, prints nothing, and takes err == NULL. */
static void
test_open_errors(void)
{
    char dir[] = "/tmp/iomap-emu-test.XXXXXX", path[128], longpath[200];
    int err = 0;
    pid_t pid;

    CU_ASSERT_PTR_NULL(iomap_emu_open(NULL, 0, 1, 1, 0, &err));
    CU_ASSERT_EQUAL(err, -EINVAL);
    memset(longpath, 'x', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = 0;
    CU_ASSERT_PTR_NULL(iomap_emu_open(longpath, 0, 1, 1, 0, &err));
    CU_ASSERT_EQUAL(err, -ENAMETOOLONG);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/emu.sock", dir);
    CU_ASSERT_PTR_NULL(iomap_emu_open(path, 0, 1, 1, 0, &err));
    CU_ASSERT_EQUAL(err, -ENOENT);
    CU_ASSERT_PTR_NULL(iomap_emu_open(path, 0, 1, 1, 0, NULL));

    /* The daemon's refusal reaches the caller as it was sent. */
    pid = fake_daemon(path, IOMAP_EMU_PROTO_MAGIC, -EEXIST);
    CU_ASSERT_FATAL(pid > 0);
    CU_ASSERT_PTR_NULL(iomap_emu_open(path, 0, 1, 7, IOMAP_EMU_CAP_INVALIDATE_PAGE, &err));
    CU_ASSERT_EQUAL(err, -EEXIST);
    CU_ASSERT_EQUAL(exit_status(pid), 0);
    unlink(path);
    /* Another protocol: -EPROTO. */
    pid = fake_daemon(path, 0x12345678, 0);
    CU_ASSERT_FATAL(pid > 0);
    CU_ASSERT_PTR_NULL(iomap_emu_open(path, 0, 1, 7, 0, &err));
    CU_ASSERT_EQUAL(err, -EPROTO);
    CU_ASSERT_EQUAL(exit_status(pid), 0);
    unlink(path);
    rmdir(dir);
    iomap_emu_close(NULL);
}

int
main(void)
{
    static const struct test_case tests[] = {
        { "IOREQ types do not clash with Xen's", test_types_do_not_clash },
        { "READY -> INPROCESS -> IORESP_READY -> NONE", test_state_machine },
        { "all slots busy", test_full },
        { "client library over memfd and eventfds", test_client_over_memfd },
        { "attach rejects a page that is not a channel", test_attach_rejects_garbage },
        { "open returns the errors, err may be NULL", test_open_errors },
        { NULL, NULL },
    };

    return run_tests("ioreq", tests);
}
