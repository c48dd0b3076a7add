/* SPDX-License-Identifier: MIT */
/*
 * libiomap-emu across a daemon restart: a registration, a request answered,
 * a request taken and left pending, then the daemon dies; the caller is
 * woken and told (-ENOTCONN), the pending request is void (-ESTALE), a
 * reconnect fails while no daemon listens and succeeds once a new one
 * does, on the same fd, and requests flow again.
 *
 * The daemons are children that speak the registration protocol of
 * daemon/emusock.c with the daemon side of ioreq/channel.c (a real memfd
 * and eventfds handed over with SCM_RIGHTS), so the library is tested as
 * QEMU uses it, through <iomap/emu.h> only.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cunit_main.h"
#include "ioreq/channel.h"
#include "ioreq/iomap-emu.h"

#define EMU_DOMID 0
#define TARGET    5
#define IOSERVID  3

struct daemon {
    pid_t pid;
    int   die;      /* write a byte: the daemon exits */
};

static int
send_welcome(int c, struct ioreq_chan *ch)
{
    struct iomap_emu_welcome w = { IOMAP_EMU_PROTO_MAGIC, 0 };
    int fds[3] = { ch->shm_fd, ch->req_fd, ch->resp_fd };
    char cbuf[CMSG_SPACE(sizeof(fds))];
    struct iovec iov = { &w, sizeof(w) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

    memset(cbuf, 0, sizeof(cbuf));
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(fds));
    memcpy(CMSG_DATA(cm), fds, sizeof(fds));
    return sendmsg(c, &mh, 0) == (ssize_t)sizeof(w) ? 0 : -1;
}

static void
count_reaped(void *arg, const struct iomap_ioreq *req)
{
    (void)req;
    (*(int *)arg)++;
}

/*
 * The child: accept one registration of (EMU_DOMID, TARGET, IOSERVID),
 * send an invalidate of gfn 0x100+2 and wait for its answer, then an
 * invalidate of 0x200+1 that is never answered, and exit when told to.
 * Its exit status says what went wrong (0: nothing).
 */
static int
daemon_main(int l, int die)
{
    struct iomap_emu_hello h;
    struct ioreq_chan ch;
    struct pollfd p;
    int c, reaped = 0;
    char b;

    c = accept(l, NULL, NULL);
    if (c < 0 || recv(c, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
        return 2;
    if (h.magic != IOMAP_EMU_PROTO_MAGIC || h.emu_domid != EMU_DOMID ||
        h.target != TARGET || h.ioservid != IOSERVID ||
        h.caps != IOMAP_EMU_CAP_INVALIDATE_PAGE)
        return 3;
    if (ioreq_chan_create(&ch, h.emu_domid, h.ioservid, h.caps, 1) < 0 ||
        send_welcome(c, &ch) < 0)
        return 4;
    if (ioreq_chan_send(&ch, IOMAP_IOREQ_TYPE_INVALIDATE_PAGE, TARGET, 0x100, 2) < 0)
        return 5;
    ioreq_chan_kick(&ch);
    p.fd = ch.resp_fd;
    p.events = POLLIN;
    if (poll(&p, 1, 10000) != 1)
        return 6;
    ioreq_chan_drain_fd(ch.resp_fd);
    if (ioreq_chan_reap(&ch, count_reaped, &reaped) != 1 || reaped != 1)
        return 7;
    if (ioreq_chan_send(&ch, IOMAP_IOREQ_TYPE_INVALIDATE_PAGE, TARGET, 0x200, 1) < 0)
        return 8;
    ioreq_chan_kick(&ch);
    if (read(die, &b, 1) < 0)
        return 9;
    /* Nothing answered the second request, stale answers included. */
    if (ioreq_chan_reap(&ch, count_reaped, &reaped) != 0)
        return 10;
    return 0;
}

static int
daemon_start(const char *path, struct daemon *d)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int l = socket(AF_UNIX, SOCK_SEQPACKET, 0), pp[2];

    strcpy(sun.sun_path, path);
    if (l < 0 || bind(l, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        listen(l, 1) < 0 || pipe(pp) < 0)
        return -1;
    d->pid = fork();
    if (d->pid < 0)
        return -1;
    if (d->pid == 0) {
        close(pp[1]);
        _exit(daemon_main(l, pp[0]));
    }
    close(pp[0]);
    close(l);
    d->die = pp[1];
    return 0;
}

/* Tell the daemon to exit; returns its exit status, or -1. */
static int
daemon_stop(const char *path, struct daemon *d)
{
    int st = 0;

    if (write(d->die, "x", 1) != 1)
        kill(d->pid, SIGKILL);
    close(d->die);
    unlink(path);
    return waitpid(d->pid, &st, 0) == d->pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
readable(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };

    return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

/* One daemon's requests: the first answered, the second taken and kept. */
static void
serve(struct iomap_emu *e, int fd, struct iomap_emu_req *kept)
{
    struct iomap_emu_req r;

    CU_ASSERT_TRUE(readable(fd, 10000));
    CU_ASSERT_EQUAL_FATAL(iomap_emu_next(e, &r), 1);
    CU_ASSERT_FALSE(r.global);
    CU_ASSERT_EQUAL(r.domid, TARGET);
    CU_ASSERT_EQUAL(r.gfn, 0x100);
    CU_ASSERT_EQUAL(r.nr, 2);
    CU_ASSERT_EQUAL(iomap_emu_done(e, &r), 0);
    CU_ASSERT_TRUE(readable(fd, 10000));
    CU_ASSERT_EQUAL_FATAL(iomap_emu_next(e, kept), 1);
    CU_ASSERT_EQUAL(kept->gfn, 0x200);
    CU_ASSERT_EQUAL(iomap_emu_next(e, &r), 0);
}

static void
test_restart_between_requests(void)
{
    char dir[] = "/tmp/iomap-emu-reconnect.XXXXXX", path[128];
    struct iomap_emu_req stale, kept, r;
    struct daemon d;
    struct iomap_emu *e;
    int err = 0, fd, l;
    struct sockaddr_un sun = { .sun_family = AF_UNIX };

    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/emu.sock", dir);

    /* The first daemon. */
    CU_ASSERT_EQUAL_FATAL(daemon_start(path, &d), 0);
    e = iomap_emu_open(path, EMU_DOMID, TARGET, IOSERVID,
                       IOMAP_EMU_CAP_INVALIDATE_PAGE, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    fd = iomap_emu_fd(e);
    CU_ASSERT_TRUE(fd >= 0);
    CU_ASSERT_EQUAL(iomap_emu_reconnect(e), 0);     /* alive: nothing to do */
    CU_ASSERT_EQUAL(iomap_emu_fd(e), fd);
    serve(e, fd, &stale);

    /* It dies with a request pending: the fd wakes us, next says so. */
    CU_ASSERT_EQUAL(daemon_stop(path, &d), 0);
    CU_ASSERT_TRUE(readable(fd, 10000));
    CU_ASSERT_EQUAL(iomap_emu_next(e, &r), -ENOTCONN);
    CU_ASSERT_EQUAL(iomap_emu_next(e, &r), -ENOTCONN);
    CU_ASSERT_FALSE(readable(fd, 0));               /* and then is quiet */
    CU_ASSERT_EQUAL(iomap_emu_done(e, &stale), -ESTALE);

    /* No daemon: the reconnect fails and can be tried again. */
    CU_ASSERT_EQUAL(iomap_emu_reconnect(e), -ENOENT);
    l = socket(AF_UNIX, SOCK_SEQPACKET, 0);         /* bound, not listening */
    strcpy(sun.sun_path, path);
    CU_ASSERT_EQUAL_FATAL(bind(l, (struct sockaddr *)&sun, sizeof(sun)), 0);
    CU_ASSERT_EQUAL(iomap_emu_reconnect(e), -ECONNREFUSED);
    close(l);
    unlink(path);
    CU_ASSERT_EQUAL(iomap_emu_next(e, &r), -ENOTCONN);

    /* A new daemon: the same fd, requests again; the stale one stays void. */
    CU_ASSERT_EQUAL_FATAL(daemon_start(path, &d), 0);
    CU_ASSERT_EQUAL(iomap_emu_reconnect(e), 0);
    CU_ASSERT_EQUAL(iomap_emu_fd(e), fd);
    serve(e, fd, &kept);
    CU_ASSERT_EQUAL(iomap_emu_done(e, &stale), -ESTALE);
    CU_ASSERT_EQUAL(daemon_stop(path, &d), 0);     /* stale answer not seen */
    CU_ASSERT_TRUE(readable(fd, 10000));
    CU_ASSERT_EQUAL(iomap_emu_next(e, &r), -ENOTCONN);
    CU_ASSERT_EQUAL(iomap_emu_done(e, &kept), -ESTALE);

    iomap_emu_close(e);
    CU_ASSERT_EQUAL(iomap_emu_reconnect(NULL), -EINVAL);
    rmdir(dir);
}

int
main(void)
{
    static const struct test_case tests[] = {
        { "a daemon restart between requests", test_restart_between_requests },
        { NULL, NULL },
    };

    return run_tests("emu-reconnect", tests);
}
