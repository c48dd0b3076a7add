/* SPDX-License-Identifier: MIT */
/*
 * The emulator registration socket: an emulator connects, says who it is
 * (struct iomap_emu_hello) and gets its IOREQ channel (a memfd and two
 * eventfds).  The connection stays open; when it closes, the emulator can
 * no longer be asked to invalidate, so what it holds of removed pages is
 * force-unmapped.
 *
 * Only root may register (SO_PEERCRED): a registered emulator receives
 * the gfns a guest gives back.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/iomapd.h"
#include "util/log.h"
#include "ioreq/iomap-emu.h"

struct emu_conn {
    struct iomapd *io;
    struct event  *ev;
    int            fd;
    pid_t          pid;     /* the peer, from SO_PEERCRED */
    struct emu    *emu;     /* once registered */
};

/*
 * The policy's "kill the emulator" step (core_tick): the process that
 * registered this identity gets SIGKILL.  Its mappings are force-unmapped
 * by the caller whatever happens to it.
 */
static void
kill_registered(struct core *d, uint16_t emu_domid, uint16_t ioservid)
{
    struct emu *e = emu_get(d, emu_domid, ioservid, 0);
    struct emu_conn *c = e ? e->conn : NULL;

    if (c == NULL || c->pid <= 1) {
        log_warnx("emulator %u:%u has no registered process to kill",
                  emu_domid, ioservid);
        return;
    }
    log_warnx("sending SIGKILL to emulator %u:%u (pid %ld)", emu_domid, ioservid,
              (long)c->pid);
    if (kill(c->pid, SIGKILL) < 0)
        log_warn("%s: kill %ld", __func__, (long)c->pid);
}

static void
on_answer_kick(evutil_socket_t fd, short what, void *arg)
{
    iomapd_process(arg);
}

static void
conn_close(struct emu_conn *c)
{
    struct iomapd *io = c->io;
    struct emu *e = c->emu;

    if (e) {
        log_info("emulator %u:%u closed its channel", e->emu_domid, e->ioservid);
        if (e->loop_ev) {
            event_free(e->loop_ev);
            e->loop_ev = NULL;
        }
        emu_unregister(&io->d, e);
        e->conn = NULL;
        CORE_OBSERVE(&io->d, emu_gone, e, "closed its channel");
        /* Invalidates it will never answer: the shim takes those back. */
        for (uint32_t pi = io->d.inv_head; pi != PAGE_NONE; pi = io->d.pages[pi].fl_next) {
            const struct page *p = &io->d.pages[pi];

            if (page_has_holder(p, e->idx))
                emu_queue_invalidate(&io->d, e, p->domid, p->gfn);
        }
        e->qlen = e->qhead = 0;
        iomapd_process(io);
    }
    event_free(c->ev);
    close(c->fd);
    free(c);
}

static int
send_welcome(int fd, int32_t status, const struct ioreq_chan *ch)
{
    struct iomap_emu_welcome w = { IOMAP_EMU_PROTO_MAGIC, status };
    int fds[3];
    char cbuf[CMSG_SPACE(sizeof(fds))];
    struct iovec iov = { &w, sizeof(w) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

    if (status == 0) {
        struct cmsghdr *cm;

        fds[0] = ch->shm_fd;
        fds[1] = ch->req_fd;
        fds[2] = ch->resp_fd;
        memset(cbuf, 0, sizeof(cbuf));
        mh.msg_control = cbuf;
        mh.msg_controllen = sizeof(cbuf);
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(fds));
        memcpy(CMSG_DATA(cm), fds, sizeof(fds));
    }
    return sendmsg(fd, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static void
on_conn(evutil_socket_t fd, short what, void *arg)
{
    struct emu_conn *c = arg;
    struct iomapd *io = c->io;
    struct iomap_emu_hello h;
    struct emu *e;
    ssize_t n = recv(fd, &h, sizeof(h), 0);
    int rc;

    if (n <= 0 || c->emu) {
        /* EOF, error, or talking after registration: close. */
        conn_close(c);
        return;
    }
    if (n != (ssize_t)sizeof(h) || h.magic != IOMAP_EMU_PROTO_MAGIC ||
        h.version != IOMAP_EMU_PROTO_VERSION) {
        log_warnx("%s: malformed registration (%zd bytes): refused", __func__, n);
        send_welcome(fd, -EPROTO, NULL);
        conn_close(c);
        return;
    }
    e = emu_get(&io->d, h.emu_domid, h.ioservid, 1);
    if (e == NULL) {
        send_welcome(fd, -ENOSPC, NULL);
        conn_close(c);
        return;
    }
    if (e->conn) {
        log_warnx("emulator %u:%u is already registered: second registration refused",
                  h.emu_domid, h.ioservid);
        send_welcome(fd, -EEXIST, NULL);
        conn_close(c);
        return;
    }
    rc = emu_register(&io->d, e, h.caps, 1);
    if (rc < 0) {
        log_warnx("emulator %u:%u: registration failed: %s", h.emu_domid,
                  h.ioservid, strerror(-rc));
        send_welcome(fd, rc, NULL);
        conn_close(c);
        return;
    }
    if (send_welcome(fd, 0, &e->chan) < 0) {
        emu_unregister(&io->d, e);
        conn_close(c);
        return;
    }
    c->emu = e;
    e->conn = c;
    e->loop_ev = event_new(io->base, e->chan.resp_fd, EV_READ | EV_PERSIST,
                           on_answer_kick, io);
    event_add(e->loop_ev, NULL);
    /* Pages it holds that wait for it get their invalidates now. */
    for (uint32_t pi = io->d.inv_head; pi != PAGE_NONE; pi = io->d.pages[pi].fl_next) {
        const struct page *p = &io->d.pages[pi];

        if (page_has_holder(p, e->idx))
            emu_queue_invalidate(&io->d, e, p->domid, p->gfn);
    }
    iomapd_process(io);
}

static void
on_accept(evutil_socket_t lfd, short what, void *arg)
{
    struct iomapd *io = arg;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    struct emu_conn *c;
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (fd < 0)
        return;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
        (cred.uid != 0 && cred.uid != geteuid())) {
        log_warnx("emulator registration from uid %u refused", (unsigned)cred.uid);
        send_welcome(fd, -EPERM, NULL);
        close(fd);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return;
    }
    c->io = io;
    c->fd = fd;
    c->pid = cred.pid;
    c->ev = event_new(io->base, fd, EV_READ | EV_PERSIST, on_conn, c);
    event_add(c->ev, NULL);
}

int
emusock_init(struct iomapd *io, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    mode_t old;
    int fd, probe;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "emulator socket path too long: %s", path);
        return -ENAMETOOLONG;
    }
    strcpy(sun.sun_path, path);
    /* A live daemon answers on it: do not steal its socket. */
    probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
        close(probe);
        snprintf(err, errlen, "%s is in use by another iomapd", path);
        return -EADDRINUSE;
    }
    if (probe >= 0)
        close(probe);
    unlink(path);
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    old = umask(0077);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        listen(fd, 64) < 0) {
        int rc = -errno;

        umask(old);
        snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    umask(old);
    io->emu_lfd = fd;
    io->d.kill_emulator = kill_registered;
    io->ev_emu_accept = event_new(io->base, fd, EV_READ | EV_PERSIST, on_accept, io);
    event_add(io->ev_emu_accept, NULL);
    return 0;
}

void
emusock_fini(struct iomapd *io)
{
    for (uint32_t i = 0; i < io->d.nemus; i++) {
        struct emu *e = io->d.emus[i];
        struct emu_conn *c = e ? e->conn : NULL;

        if (e && e->loop_ev) {
            event_free(e->loop_ev);
            e->loop_ev = NULL;
        }
        if (c) {
            event_free(c->ev);
            close(c->fd);
            free(c);
            e->conn = NULL;
        }
    }
    if (io->ev_emu_accept)
        event_free(io->ev_emu_accept);
    if (io->emu_lfd >= 0)
        close(io->emu_lfd);
    io->ev_emu_accept = NULL;
    io->emu_lfd = -1;
}
