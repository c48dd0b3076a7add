/* SPDX-License-Identifier: MIT */
/*
 * One safe UNIX-socket listen, SO_PEERCRED, and an accept that backs off
 * when descriptors run out (util/listen.h says what each promises).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "util/clock.h"
#include "util/listen.h"
#include "util/log.h"

/* ---- listen ------------------------------------------------------------------- */

/*
 * Is a live process answering on the socket at sun?  1 yes, 0 no (stale,
 * or gone meanwhile), -errno when we cannot tell.  The probe is
 * non-blocking: a listener with a full backlog (EAGAIN) is alive, and a
 * socket of another type bound there (EPROTOTYPE) belongs to someone.
 */
static int
probe_live(const struct sockaddr_un *sun, int type)
{
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int rc, e;

    if (fd < 0)
        return -errno;
    rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
    e = errno;
    close(fd);
    if (rc == 0)
        return 1;
    switch (e) {
    case ECONNREFUSED:      /* the file is there, nobody is bound to it */
    case ENOENT:            /* gone since lstat */
        return 0;
    case EAGAIN:            /* backlog full: a listener that is busy */
    case EINPROGRESS:
    case EPROTOTYPE:        /* a socket of another type is bound there */
        return 1;
    default:
        return -e;
    }
}

int
listen_unix(const char *path, const struct listen_opts *o, char *err, size_t errlen)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    const char *what = o->what ? o->what : "listen";
    struct stat st;
    mode_t old;
    int fd, rc;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "%s socket path too long: %s", what, path);
        return -ENAMETOOLONG;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);

    /* Probe first: nothing is touched until we know what is there. */
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "%s exists and is not a socket: not touching it", path);
            return -EEXIST;
        }
        rc = probe_live(&sun, o->type);
        if (rc > 0) {
            snprintf(err, errlen, "%s is in use by a running %s", path,
                     o->owner ? o->owner : "process");
            return -EADDRINUSE;
        }
        if (rc < 0) {
            snprintf(err, errlen, "cannot tell whether %s is in use: %s", path,
                     strerror(-rc));
            return -EEXIST;
        }
        log_info("%s: removing stale socket %s", what, path);
        if (unlink(path) < 0 && errno != ENOENT) {
            rc = -errno;
            snprintf(err, errlen, "cannot remove stale %s: %s", path, strerror(-rc));
            return rc;
        }
    } else if (errno != ENOENT) {
        rc = -errno;
        snprintf(err, errlen, "cannot look at %s: %s", path, strerror(-rc));
        return rc;
    }

    fd = socket(AF_UNIX, o->type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s socket: %s", what, strerror(-rc));
        return rc;
    }
    /* Owner only until it has its group and mode (umask: one thread). */
    old = umask(0177);
    rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (rc < 0) {
        rc = -errno;
        /* EADDRINUSE here: someone bound it since the probe; not ours. */
        snprintf(err, errlen, "cannot bind %s: %s", path, strerror(-rc));
        close(fd);
        return rc;
    }
    if ((o->have_gid && chown(path, (uid_t)-1, o->gid) < 0) ||
        chmod(path, o->mode) < 0 || listen(fd, o->backlog > 0 ? o->backlog : 64) < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot set up %s: %s", path, strerror(-rc));
        close(fd);
        unlink(path);
        return rc;
    }
    return fd;
}

int
listen_peer(int fd, struct listen_peer *p)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || len != sizeof(cr)) {
        int rc = errno ? -errno : -EINVAL;

        p->pid = 0;
        p->uid = (uid_t)-1;
        p->gid = (gid_t)-1;
        return rc;
    }
    p->pid = cr.pid;
    p->uid = cr.uid;
    p->gid = cr.gid;
    return 0;
}

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59        /* Linux 4.13 */
#endif

int
listen_peer_groups(int fd, gid_t *groups, int max)
{
    socklen_t len = (socklen_t)((size_t)max * sizeof(gid_t));

    if (max <= 0)
        return 0;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
        return -errno;         /* ERANGE: more groups than max */
    return (int)(len / sizeof(gid_t));
}

int
listen_peer_in_group(const struct listen_peer *p, const gid_t *groups, int n,
                     gid_t gid)
{
    if (p->gid == gid)
        return 1;
    for (int i = 0; i < n; i++)
        if (groups[i] == gid)
            return 1;
    return 0;
}

/* ---- the acceptor ------------------------------------------------------------- */

struct acceptor {
    struct event       *ev;         /* the listening socket, while accepting */
    struct event       *timer;      /* the retry, while backing off */
    int                 lfd;
    int                 unix_peer;  /* an AF_UNIX socket: read SO_PEERCRED */
    char                what[32];
    acceptor_cb         cb;
    void               *arg;
    unsigned            delay_ms;   /* next retry */
    uint64_t            since_ns;   /* start of this episode */
    uint64_t            ep_retries;
    struct acceptor_stats st;
};

static void
arm_retry(struct acceptor *a)
{
    struct timeval tv = { (time_t)(a->delay_ms / 1000),
                          (suseconds_t)(a->delay_ms % 1000) * 1000 };

    evtimer_add(a->timer, &tv);
}

static void
episode_start(struct acceptor *a, int err)
{
    event_del(a->ev);
    a->st.backing_off = 1;
    a->st.episodes++;
    a->since_ns = clock_now_ns();
    a->ep_retries = 0;
    a->delay_ms = ACCEPTOR_BACKOFF_MIN_MS;
    log_warnx("%s: accept: %s: not accepting connections for now (retry in %u ms, "
              "backing off up to %u ms)", a->what, strerror(err), a->delay_ms,
              ACCEPTOR_BACKOFF_MAX_MS);
    arm_retry(a);
}

static void
episode_end(struct acceptor *a)
{
    uint64_t ms = (clock_now_ns() - a->since_ns) / 1000000u;

    a->st.backing_off = 0;
    evtimer_del(a->timer);
    event_add(a->ev, NULL);
    log_info("%s: accept: accepting connections again after %llu ms (%llu retries)",
             a->what, (unsigned long long)ms, (unsigned long long)a->ep_retries);
}

static void
try_accept(struct acceptor *a)
{
    struct listen_peer peer;
    int fd = accept4(a->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (fd < 0) {
        int e = errno;

        if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR || e == ECONNABORTED) {
            /* Nothing (more) waiting: whatever ran out, watch again. */
            if (a->st.backing_off)
                episode_end(a);
            return;
        }
        /*
         * Out of descriptors or memory, or anything else that would fail
         * again at once: the socket stays readable, so watching it would
         * spin.  Stop watching and retry on a timer.
         */
        if (!a->st.backing_off) {
            episode_start(a, e);
            return;
        }
        a->delay_ms = a->delay_ms * 2 > ACCEPTOR_BACKOFF_MAX_MS ?
                      ACCEPTOR_BACKOFF_MAX_MS : a->delay_ms * 2;
        arm_retry(a);
        return;
    }
    if (a->st.backing_off)
        episode_end(a);
    a->st.accepted++;
    if (!a->unix_peer) {
        peer.pid = 0;
        peer.uid = (uid_t)-1;
        peer.gid = (gid_t)-1;
    } else if (listen_peer(fd, &peer) < 0) {
        log_warn("%s: SO_PEERCRED", a->what);
        close(fd);
        return;
    }
    a->cb(fd, &peer, a->arg);
}

static void
on_listen(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    try_accept(arg);
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct acceptor *a = arg;

    (void)fd;
    (void)what;
    a->st.retries++;
    a->ep_retries++;
    try_accept(a);
}

struct acceptor *
acceptor_new(struct event_base *base, int lfd, const char *what, acceptor_cb cb,
             void *arg)
{
    struct acceptor *a = calloc(1, sizeof(*a));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    if (a == NULL)
        return NULL;
    a->lfd = lfd;
    a->unix_peer = getsockname(lfd, (struct sockaddr *)&ss, &sl) < 0 ||
                   ss.ss_family == AF_UNIX;
    a->cb = cb;
    a->arg = arg;
    snprintf(a->what, sizeof(a->what), "%s", what ? what : "listen");
    a->ev = event_new(base, lfd, EV_READ | EV_PERSIST, on_listen, a);
    a->timer = evtimer_new(base, on_retry, a);
    if (a->ev == NULL || a->timer == NULL || event_add(a->ev, NULL) < 0) {
        acceptor_free(a);
        errno = ENOMEM;
        return NULL;
    }
    return a;
}

void
acceptor_free(struct acceptor *a)
{
    if (a == NULL)
        return;
    if (a->ev)
        event_free(a->ev);
    if (a->timer)
        event_free(a->timer);
    free(a);
}

void
acceptor_stats(const struct acceptor *a, struct acceptor_stats *st)
{
    *st = a->st;
}
