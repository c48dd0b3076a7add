/* SPDX-License-Identifier: MIT */
/*
 * libiomap-emu: the emulator's end of iomapd (<iomap/emu.h>).  It uses the
 * emulator side of ioreq/channel.c and nothing else of the tree: no log,
 * no libevent, no jansson.  It never prints or exits: errors are returned.
 *
 * A remote handle (iomap_emu_open) outlives its registration: when iomapd
 * goes away, iomap_emu_next() says so (-ENOTCONN) and drops the channel;
 * iomap_emu_reconnect() registers the same ioreq server again.  The fd the
 * caller polls is an epoll set (the request eventfd and the registration
 * socket, whose hang-up wakes the caller), so it never changes.  Requests
 * carry the registration they came from in the high bits of their slot:
 * answering one from a previous registration is refused (-ESTALE) and
 * touches nothing.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ioreq/emu_priv.h"

/* How long a registration may wait for the daemon's welcome. */
#define HANDSHAKE_TIMEOUT_MS 2000

/* req.slot = gen << SLOT_BITS | index; a local handle has gen 0. */
#define SLOT_BITS 8
#define SLOT_MASK ((1u << SLOT_BITS) - 1)
#define GEN_MASK  ((1u << (31 - SLOT_BITS)) - 1)

_Static_assert(IOMAP_IOREQ_SLOTS <= (1 << SLOT_BITS), "slot index fits");

/* Close every descriptor an SCM_RIGHTS message of mh brought. */
static void
close_rights(struct msghdr *mh)
{
    struct cmsghdr *cm;

    for (cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm)) {
        size_t n;

        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
            cm->cmsg_len < CMSG_LEN(0))
            continue;
        n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;

            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
            close(fd);
        }
    }
}

/*
 * The welcome, and on status 0 exactly three descriptors in fds.  Whatever
 * else the daemon sent (descriptors with a refusal, two or four of them)
 * is closed: an error never leaves a descriptor behind.
 */
static int
recv_welcome(int s, struct iomap_emu_welcome *w, int fds[3])
{
    union {
        char           buf[CMSG_SPACE(4 * sizeof(int))];
        struct cmsghdr align;
    } cbuf;
    struct iovec iov = { w, sizeof(*w) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf) };
    struct cmsghdr *cm;
    ssize_t n = recvmsg(s, &mh, MSG_CMSG_CLOEXEC);
    int rc = 0;

    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
    cm = CMSG_FIRSTHDR(&mh);
    if (n != (ssize_t)sizeof(*w) || w->magic != IOMAP_EMU_PROTO_MAGIC)
        rc = -EPROTO;
    else if (w->status < 0)
        rc = w->status;
    else if (cm == NULL || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
             cm->cmsg_len != CMSG_LEN(3 * sizeof(int)) ||
             CMSG_NXTHDR(&mh, cm) != NULL || (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)))
        rc = -EPROTO;
    if (rc < 0) {
        close_rights(&mh);
        return rc;
    }
    memcpy(fds, CMSG_DATA(cm), 3 * sizeof(int));
    return 0;
}

static void
set_timeout(int s, int ms)
{
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/*
 * Register e's ioreq server on e->path: connect, send the hello, take the
 * welcome and attach the channel it carries.  On success e->sock and
 * e->chan are the new registration's; on failure nothing of e changed.
 */
static int
do_register(struct iomap_emu *e)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    struct iomap_emu_hello h = { .magic = IOMAP_EMU_PROTO_MAGIC,
                                 .version = IOMAP_EMU_PROTO_VERSION,
                                 .emu_domid = e->emu_domid,
                                 .ioservid = e->ioservid,
                                 .target = e->target, .caps = e->caps };
    struct iomap_emu_welcome w;
    struct ioreq_chan chan;
    struct timespec t0, now;
    long left_ms;
    int s, fds[3], rc;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    strcpy(sun.sun_path, e->path);
    s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    set_timeout(s, HANDSHAKE_TIMEOUT_MS);
    errno = 0;
    if (connect(s, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        send(s, &h, sizeof(h), MSG_NOSIGNAL) != (ssize_t)sizeof(h)) {
        rc = errno ? -errno : -EIO;
        close(s);
        return rc == -EAGAIN ? -ETIMEDOUT : rc;
    }
    /* The welcome gets what is left of the two seconds, not two more. */
    clock_gettime(CLOCK_MONOTONIC, &now);
    left_ms = HANDSHAKE_TIMEOUT_MS - ((now.tv_sec - t0.tv_sec) * 1000 +
                                      (now.tv_nsec - t0.tv_nsec) / 1000000);
    if (left_ms <= 0) {
        close(s);
        return -ETIMEDOUT;
    }
    set_timeout(s, (int)left_ms);
    rc = recv_welcome(s, &w, fds);
    if (rc < 0) {
        close(s);
        return rc;
    }
    set_timeout(s, 0);
    rc = ioreq_chan_attach(&chan, fds[0], fds[1], fds[2]);
    if (rc < 0) {
        close(fds[0]);
        close(fds[1]);
        close(fds[2]);
        close(s);
        return rc;
    }
    e->chan = chan;
    e->sock = s;
    return 0;
}

/* Put the registration's socket and request eventfd into the epoll set. */
static int
watch(struct iomap_emu *e)
{
    struct epoll_event ev = { .events = EPOLLIN };

    if (epoll_ctl(e->pollfd, EPOLL_CTL_ADD, e->chan.req_fd, &ev) < 0 ||
        epoll_ctl(e->pollfd, EPOLL_CTL_ADD, e->sock, &ev) < 0)
        return -errno;
    return 0;
}

/* The registration is over: forget its channel and socket. */
static void
drop_registration(struct iomap_emu *e)
{
    if (e->sock < 0)
        return;
    /* Closing the fds removes them from the epoll set. */
    ioreq_chan_destroy(&e->chan);
    close(e->sock);
    e->sock = -1;
}

/*
 * Is the daemon still at the other end of the registration socket?  It
 * sends nothing after the welcome: end of file or an error means it is
 * gone; a message is read and ignored (a later protocol's notice).
 */
static int
daemon_alive(struct iomap_emu *e)
{
    char buf[64];
    ssize_t n = recv(e->sock, buf, sizeof(buf), MSG_DONTWAIT);

    if (n > 0)
        return 1;
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}

struct iomap_emu *
iomap_emu_open(const char *path, uint16_t emu_domid, uint16_t target,
               uint16_t ioservid, uint32_t caps, int *err)
{
    struct iomap_emu *e;
    int rc, dummy;

    if (err == NULL)
        err = &dummy;
    if (path == NULL) {
        *err = -EINVAL;
        return NULL;
    }
    if (strlen(path) >= sizeof(e->path)) {
        *err = -ENAMETOOLONG;
        return NULL;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    strcpy(e->path, path);
    e->emu_domid = emu_domid;
    e->target = target;
    e->ioservid = ioservid;
    e->caps = caps;
    e->remote = 1;
    e->gen = 1;
    e->sock = -1;
    e->pollfd = epoll_create1(EPOLL_CLOEXEC);
    if (e->pollfd < 0) {
        *err = -errno;
        free(e);
        return NULL;
    }
    rc = do_register(e);
    if (rc == 0) {
        rc = watch(e);
        if (rc < 0)
            drop_registration(e);
    }
    if (rc < 0) {
        *err = rc;
        close(e->pollfd);
        free(e);
        return NULL;
    }
    return e;
}

int
iomap_emu_reconnect(struct iomap_emu *e)
{
    int rc;

    if (e == NULL || !e->remote)
        return -EINVAL;
    if (e->sock >= 0) {
        if (daemon_alive(e))
            return 0;
        drop_registration(e);
    }
    rc = do_register(e);
    if (rc < 0)
        return rc;
    rc = watch(e);
    if (rc < 0) {
        drop_registration(e);
        return rc;
    }
    e->gen = (e->gen + 1) & GEN_MASK;
    if (e->gen == 0)
        e->gen = 1;
    return 0;
}

struct iomap_emu *
iomap_emu_open_local(struct iomap_ioreq_page *page, int req_fd, int resp_fd)
{
    struct iomap_emu *e = calloc(1, sizeof(*e));

    if (e == NULL)
        return NULL;
    e->chan.page = page;
    e->chan.req_fd = req_fd;
    e->chan.resp_fd = resp_fd;
    e->chan.shm_fd = -1;
    e->sock = -1;
    return e;
}

int
iomap_emu_fd(const struct iomap_emu *e)
{
    return e->remote ? e->pollfd : e->chan.req_fd;
}

int
iomap_emu_next(struct iomap_emu *e, struct iomap_emu_req *r)
{
    struct iomap_ioreq q;
    int slot;

    if (e->remote) {
        if (e->sock < 0)
            return -ENOTCONN;
        if (!daemon_alive(e)) {
            /* Requests still on the page have no one to answer to. */
            drop_registration(e);
            return -ENOTCONN;
        }
    }
    ioreq_chan_drain_fd(e->chan.req_fd);
    for (;;) {
        slot = ioreq_chan_take(&e->chan, &q);
        if (slot < 0)
            return 0;
        if (q.type == IOMAP_IOREQ_TYPE_INVALIDATE ||
            q.type == IOMAP_IOREQ_TYPE_INVALIDATE_PAGE)
            break;
        /* Not ours to understand: answer so the slot is not lost. */
        ioreq_chan_answer(&e->chan, slot);
    }
    r->slot = e->remote ? (int)(e->gen << SLOT_BITS | (unsigned)slot) : slot;
    r->global = q.type == IOMAP_IOREQ_TYPE_INVALIDATE;
    r->domid = (uint16_t)q.data;
    r->gfn = q.addr >> 12;
    r->nr = q.count;
    return 1;
}

int
iomap_emu_done(struct iomap_emu *e, const struct iomap_emu_req *r)
{
    unsigned s;

    if (!e->remote)
        return ioreq_chan_answer(&e->chan, r->slot);
    if (r->slot < 0)
        return -EINVAL;
    s = (unsigned)r->slot;
    if (e->sock < 0 || (s >> SLOT_BITS) != e->gen)
        return -ESTALE;
    return ioreq_chan_answer(&e->chan, (int)(s & SLOT_MASK));
}

void
iomap_emu_close(struct iomap_emu *e)
{
    if (e == NULL)
        return;
    if (e->remote) {
        drop_registration(e);   /* our mapping and fds */
        close(e->pollfd);
    }
    free(e);
}
