/* SPDX-License-Identifier: MIT */
/*
 * The emulator registration socket: an emulator connects, says who it is
 * (struct iomap_emu_hello) and gets its IOREQ channel (a memfd and two
 * eventfds).  The connection stays open; when it closes, the emulator can
 * no longer be asked to invalidate, so what it holds of removed pages is
 * force-unmapped.
 *
 * Only root may register (SO_PEERCRED): a registered emulator receives
 * the gfns a guest gives back.  The socket is made by util/listen.c (a
 * path that is not a socket, or a live daemon's socket, is refused; a
 * stale one replaced; accept backs off when descriptors run out).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/iomapd.h"
#include "util/listen.h"
#include "util/log.h"
#include "ioreq/iomap-emu.h"
#include "policy/policy.h"

/*
 * Bounds on what a peer can make the daemon hold (I4): connections that
 * have not said hello (in all, and per non-root uid), and how long they
 * may stay silent; registered ones are bounded by the emulator table.
 */
#define EMUSOCK_MAX_PENDING         32
#define EMUSOCK_MAX_PENDING_PER_UID 4
#define EMUSOCK_PENDING_ROOT        8       /* of those, kept for root */
#define EMUSOCK_MAX_REGISTERED_PER_UID 16   /* a non-root uid (a guest's QEMU) */
#define EMUSOCK_FDS_PER_EMULATOR    5       /* connection, its pidfd, memfd,
                                               two eventfds */
#define EMUSOCK_FDS_SPARE           128     /* for the rest of the daemon */
#define EMUSOCK_HELLO_TIMEOUT_MS    5000

struct emu_conn {
    struct emusock     *es;
    struct event       *ev;
    struct event       *ev_answer;  /* its response eventfd, once registered */
    struct event       *ev_hello;   /* the hello timeout, until registered */
    int                 fd;
    int                 pidfd;      /* the peer's process, or -1 (peer_pidfd) */
    pid_t               pid;        /* the peer, from SO_PEERCRED */
    uid_t               uid;
    int                 registered;
    int                 gone;       /* the shim said its server is gone */
    struct core_emu_id  id;
    LIST_ENTRY(emu_conn) link;
};

struct emusock {
    struct iomapd      *io;
    int                 lfd;
    struct acceptor    *acceptor;   /* util/listen.h */
    LIST_HEAD(, emu_conn) conns;
    unsigned            npending, nregistered;
    unsigned            max_registered; /* by the descriptors the daemon may open */
    struct event       *ev_sweep;   /* closes the connections of gone servers */
    uint64_t            refused, timed_out;
};

static struct emu_conn *
conn_of(struct emusock *es, const struct core_emu_id *id)
{
    struct emu_conn *c;

    LIST_FOREACH(c, &es->conns, link)
        if (c->registered && !c->gone && core_emu_id_eq(&c->id, id))
            return c;
    return NULL;
}

/*
 * The shim said this ioreq server is gone (the core's emu_gone observer,
 * from inside the core: the connection is closed from the loop, not
 * here).  Its process must register again: Xen may give its id to a new
 * server, which must not be refused as a duplicate.
 */
void
emusock_forget(struct emusock *es, const struct core_emu_id *id)
{
    struct emu_conn *c = es ? conn_of(es, id) : NULL;

    if (c == NULL)
        return;
    c->gone = 1;
    event_active(es->ev_sweep, EV_TIMEOUT, 0);
}

static void conn_close(struct emu_conn *c);

static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct emusock *es = arg;
    struct emu_conn *c, *next;

    (void)fd;
    (void)what;
    for (c = LIST_FIRST(&es->conns); c; c = next) {
        next = LIST_NEXT(c, link);
        if (c->gone) {
            log_info("emulator " CORE_EMU_FMT ": its ioreq server is gone: closing "
                     "the registration of pid %ld", CORE_EMU_ARGS(&c->id), (long)c->pid);
            conn_close(c);
        }
    }
}

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77         /* Linux 6.5 */
#endif

static int
pidfd_signal(int pidfd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/*
 * A pidfd for the process that connected, or -1 (it is gone, or runs as
 * someone else now): what the kill-emulator step signals, so that it
 * never reaches a process that was given the pid later.  SO_PEERPIDFD
 * (Linux 6.5) names that process exactly, whenever it is asked.  Before
 * it: pidfd_open of SO_PEERCRED's pid, kept only if the process it names
 * runs as the peer's uid (read from /proc, then confirmed alive through
 * the pidfd, so what was read is that process's): a pid reused since
 * connect by another user's process is never taken.  -errno when
 * descriptors or memory ran out.
 */
static int
peer_pidfd(int fd, const struct listen_peer *cred)
{
    int pidfd = -1, e;
    socklen_t len = sizeof(pidfd);
    char path[64], line[256];
    FILE *f;
    int ok = 0;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0) {
        if (len == sizeof(pidfd) && pidfd >= 0)
            return pidfd;
        return -1;
    }
    e = errno;
    if (e == EMFILE || e == ENFILE || e == ENOMEM)
        return -e;
    if (e == ESRCH || cred->pid <= 0)   /* gone already */
        return -1;
    /* ENOPROTOOPT (before 6.5): by its pid. */
    pidfd = (int)syscall(SYS_pidfd_open, cred->pid, 0);
    if (pidfd < 0) {
        e = errno;
        return e == EMFILE || e == ENFILE || e == ENOMEM ? -e : -1;
    }
    snprintf(path, sizeof(path), "/proc/%ld/status", (long)cred->pid);
    if ((f = fopen(path, "re")) != NULL) {
        while (fgets(line, sizeof(line), f) != NULL) {
            unsigned long r, eu;

            if (sscanf(line, "Uid: %lu %lu", &r, &eu) == 2) {
                ok = (uid_t)eu == cred->uid;
                break;
            }
        }
        fclose(f);
    }
    if (!ok || pidfd_signal(pidfd, 0) < 0) {
        close(pidfd);
        return -1;
    }
    return pidfd;
}

/*
 * The policy's "kill the emulator" step (core_tick): the process that
 * registered this identity gets SIGKILL, through the pidfd taken when it
 * connected; if that process is gone (its pid may belong to another one
 * now), nothing is signalled.  Its mappings are force-unmapped by the
 * caller whatever happens to it.
 */
void
emusock_kill(struct emusock *es, const struct core_emu_id *id)
{
    struct emu_conn *c = es ? conn_of(es, id) : NULL;

    if (c == NULL || c->pidfd < 0) {
        log_warnx("emulator " CORE_EMU_FMT " has no registered process to kill%s",
                  CORE_EMU_ARGS(id), c ? " (it was gone when it connected)" : "");
        return;
    }
    log_warnx("sending SIGKILL to emulator " CORE_EMU_FMT " (pid %ld)",
              CORE_EMU_ARGS(id), (long)c->pid);
    if (pidfd_signal(c->pidfd, SIGKILL) < 0) {
        if (errno == ESRCH)
            log_warnx("emulator " CORE_EMU_FMT ": the process that registered it (pid "
                      "%ld) is gone: nothing to kill", CORE_EMU_ARGS(id), (long)c->pid);
        else
            log_warn("%s: pidfd_send_signal (pid %ld)", __func__, (long)c->pid);
    }
}

/*
 * The emulator kicked its answer eventfd.  Read the kick here, whatever is
 * in flight: the core reaps by the slots' states and drains only channels
 * with requests in flight, so a kick that came with none (a late second
 * kick of a batch, or a peer writing the eventfd at will) would otherwise
 * stay readable and wake this persistent event again at once, forever.
 * An answer made before this read is seen by the pass it asks for; one
 * made after it kicks again.
 */
static void
on_answer_kick(evutil_socket_t fd, short what, void *arg)
{
    uint64_t v;

    (void)what;
    if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN && errno != EINTR)
        log_warn("%s: read of an emulator's answer eventfd", __func__);
    iomapd_request_run(arg);
}

static void
conn_free(struct emu_conn *c)
{
    LIST_REMOVE(c, link);
    if (c->registered)
        c->es->nregistered--;
    else
        c->es->npending--;
    if (c->ev_answer)
        event_free(c->ev_answer);
    if (c->ev_hello)
        event_free(c->ev_hello);
    event_free(c->ev);
    if (c->pidfd >= 0)
        close(c->pidfd);
    close(c->fd);
    free(c);
}

static void
on_hello_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct emu_conn *c = arg;

    (void)fd;
    (void)what;
    c->es->timed_out++;
    log_warnx("emulator connection of pid %ld (uid %u): no hello within %d ms: closed",
              (long)c->pid, (unsigned)c->uid, EMUSOCK_HELLO_TIMEOUT_MS);
    conn_free(c);
}

static void
conn_close(struct emu_conn *c)
{
    struct iomapd *io = c->es->io;

    if (c->registered) {
        /* The core drains what it asked of it: once, there. */
        core_emu_detach(io->core, &c->id, "closed its channel");
        iomapd_request_run(io);
    }
    conn_free(c);
}

static int
send_welcome(int fd, int32_t status, const struct core_emu_chan *ch)
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
    struct iomapd *io = c->es->io;
    struct iomap_emu_hello h;
    struct core_emu_id id;
    struct core_emu_chan ch;
    ssize_t n;
    int rc;

    (void)what;
    /*
     * One message, whole: MSG_TRUNC makes recv return its real length, so
     * a hello with trailing bytes is seen as such instead of cut short.
     */
    n = recv(fd, &h, sizeof(h), MSG_TRUNC);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0 || c->registered) {
        /* EOF (or an empty message), an error, or talking after registration. */
        if (!c->registered)
            log_info("emulator connection of pid %ld closed before its hello%s",
                     (long)c->pid, n == 0 ? " (or sent an empty message)" : "");
        conn_close(c);
        return;
    }
    if (n != (ssize_t)sizeof(h) || h.magic != IOMAP_EMU_PROTO_MAGIC ||
        h.version != IOMAP_EMU_PROTO_VERSION) {
        log_warnx("%s: malformed registration from pid %ld (%zd bytes, want %zu, "
                  "protocol %u): refused", __func__, (long)c->pid, n, sizeof(h),
                  n >= 6 ? (unsigned)h.version : 0u);
        send_welcome(fd, -EPROTO, NULL);
        conn_close(c);
        return;
    }
    id.emu_domid = h.emu_domid;
    id.target = h.target;
    id.ioservid = h.ioservid;
    if (id.emu_domid >= CORE_MAX_DOMID || id.target >= CORE_MAX_DOMID) {
        log_warnx("%s: registration from pid %ld names a reserved domain id ("
                  CORE_EMU_FMT "): refused", __func__, (long)c->pid, CORE_EMU_ARGS(&id));
        send_welcome(fd, -EINVAL, NULL);
        conn_close(c);
        return;
    }
    /*
     * The proof a registration rests on is the uid the kernel attests
     * (SO_PEERCRED): root may register as any ioreq server; a
     * deprivileged device model (xl.cfg dm_restrict, uid
     * xen-qemuuser-range-base + T) as dom0's servers of its own guest T
     * only; another uid as what an emulators entry with its uid covers.
     */
    if (!policy_may_register(core_policy(io->core), c->uid, id.emu_domid, id.target,
                             id.ioservid)) {
        log_warnx("emulator " CORE_EMU_FMT ": pid %ld (uid %u) may not register as "
                  "it: refused", CORE_EMU_ARGS(&id), (long)c->pid, (unsigned)c->uid);
        send_welcome(fd, -EPERM, NULL);
        conn_close(c);
        return;
    }
    if (conn_of(c->es, &id)) {
        log_warnx("emulator " CORE_EMU_FMT " is already registered: second "
                  "registration (pid %ld) refused", CORE_EMU_ARGS(&id), (long)c->pid);
        send_welcome(fd, -EEXIST, NULL);
        conn_close(c);
        return;
    }
    /*
     * The process to kill if the policy says so.  Taken here, not at
     * accept, so that a connection waiting for its hello holds one
     * descriptor (the pending bound is what keeps the table safe); the
     * uid check in peer_pidfd covers the longer window before it.
     */
    {
        struct listen_peer cred = { .pid = c->pid, .uid = c->uid, .gid = (gid_t)-1 };

        if ((c->pidfd = peer_pidfd(fd, &cred)) < -1) {
            log_warnx("emulator " CORE_EMU_FMT ": no pidfd for pid %ld: %s: refused",
                      CORE_EMU_ARGS(&id), (long)c->pid, strerror(-c->pidfd));
            c->pidfd = -1;
            send_welcome(fd, -EBUSY, NULL);
            conn_close(c);
            return;
        }
    }
    rc = core_emu_attach(io->core, &id, h.caps, 1, &ch);
    if (rc < 0) {
        log_warnx("emulator " CORE_EMU_FMT ": registration failed: %s",
                  CORE_EMU_ARGS(&id), strerror(-rc));
        send_welcome(fd, rc, NULL);
        conn_close(c);
        return;
    }
    c->registered = 1;
    c->es->npending--;
    c->es->nregistered++;
    if (c->ev_hello) {
        event_free(c->ev_hello);
        c->ev_hello = NULL;
    }
    c->id = id;
    if (send_welcome(fd, 0, &ch) < 0) {
        conn_close(c);
        return;
    }
    c->ev_answer = event_new(io->base, ch.resp_fd, EV_READ | EV_PERSIST,
                             on_answer_kick, io);
    event_add(c->ev_answer, NULL);
    iomapd_request_run(io);
}

static void
on_accept(int fd, const struct listen_peer *cred, void *arg)
{
    struct emusock *es = arg;
    struct iomapd *io = es->io;
    struct timeval tv = { EMUSOCK_HELLO_TIMEOUT_MS / 1000,
                          (EMUSOCK_HELLO_TIMEOUT_MS % 1000) * 1000 };
    struct emu_conn *c, *o;
    unsigned same_uid = 0, same_uid_reg = 0;

    /* Who may not register as anything is closed at once, holding nothing. */
    if (!policy_uid_may_connect(core_policy(io->core), cred->uid)) {
        if (es->refused++ % 1000 == 0)
            log_warnx("emulator registration from pid %ld (uid %u) refused (%llu so far)",
                      (long)cred->pid, (unsigned)cred->uid,
                      (unsigned long long)es->refused);
        send_welcome(fd, -EPERM, NULL);
        close(fd);
        return;
    }
    LIST_FOREACH(o, &es->conns, link) {
        same_uid += !o->registered && o->uid == cred->uid;
        same_uid_reg += o->registered && o->uid == cred->uid;
    }
    /*
     * Bounds (I4): a guest's deprivileged QEMU must not run the daemon out
     * of descriptors, or fill the emulator table, for everyone.
     */
    if (es->npending >= EMUSOCK_MAX_PENDING || es->nregistered >= es->max_registered ||
        (cred->uid != 0 && es->npending >= EMUSOCK_MAX_PENDING - EMUSOCK_PENDING_ROOT) ||
        (cred->uid != 0 && (same_uid >= EMUSOCK_MAX_PENDING_PER_UID ||
                            same_uid_reg >= EMUSOCK_MAX_REGISTERED_PER_UID))) {
        if (es->refused++ % 1000 == 0)
            log_warnx("emulator socket: %u connections wait for their hello, %u "
                      "registered: pid %ld (uid %u) refused (%llu so far)", es->npending,
                      es->nregistered, (long)cred->pid, (unsigned)cred->uid,
                      (unsigned long long)es->refused);
        send_welcome(fd, -EBUSY, NULL);
        close(fd);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return;
    }
    c->pidfd = -1;      /* taken with the hello (peer_pidfd) */
    c->es = es;
    c->fd = fd;
    c->pid = cred->pid;
    c->uid = cred->uid;
    c->ev = event_new(io->base, fd, EV_READ | EV_PERSIST, on_conn, c);
    c->ev_hello = evtimer_new(io->base, on_hello_timeout, c);
    if (c->ev == NULL || c->ev_hello == NULL) {
        if (c->ev)
            event_free(c->ev);
        if (c->ev_hello)
            event_free(c->ev_hello);
        close(fd);
        free(c);
        return;
    }
    es->npending++;
    LIST_INSERT_HEAD(&es->conns, c, link);
    event_add(c->ev, NULL);
    evtimer_add(c->ev_hello, &tv);
}

struct emusock *
emusock_new(struct iomapd *io, const char *path, char *err, size_t errlen)
{
    /*
     * Deprivileged device models register too, so anyone may connect: the
     * peer's uid (SO_PEERCRED) is checked at accept, before anything is
     * held for it, and again against the identity its hello names.
     */
    struct listen_opts o = {
        .type = SOCK_SEQPACKET, .mode = 0666, .backlog = 64,
        .what = "emulator", .owner = "iomapd",
    };
    struct emusock *es;
    int fd;

    /* A regular file, a live daemon's socket: refused; a stale one: replaced. */
    fd = listen_unix(path, &o, err, errlen);
    if (fd < 0)
        return NULL;
    es = calloc(1, sizeof(*es));
    if (es == NULL) {
        snprintf(err, errlen, "out of memory");
        close(fd);
        unlink(path);
        return NULL;
    }
    es->io = io;
    es->lfd = fd;
    {
        struct rlimit rl;
        uint64_t budget = CORE_MAX_EMUS;

        /*
         * Raise the soft limit up to the hard one as far as a full
         * emulator table needs (the unit sets the hard limit).
         */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
            rlim_t want = (rlim_t)CORE_MAX_EMUS * EMUSOCK_FDS_PER_EMULATOR +
                          EMUSOCK_FDS_SPARE;

            if (rl.rlim_cur < want && rl.rlim_cur < rl.rlim_max) {
                struct rlimit nr = rl;

                nr.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ?
                              want : rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &nr) == 0)
                    rl = nr;
                else
                    log_warn("%s: setrlimit(RLIMIT_NOFILE, %llu)", __func__,
                             (unsigned long long)nr.rlim_cur);
            }
            budget = rl.rlim_cur > EMUSOCK_FDS_SPARE ?
                     (rl.rlim_cur - EMUSOCK_FDS_SPARE) / EMUSOCK_FDS_PER_EMULATOR : 1;
        }
        es->max_registered = budget < CORE_MAX_EMUS ? (unsigned)budget : CORE_MAX_EMUS;
        if (es->max_registered < CORE_MAX_EMUS)
            log_info("emulator socket: at most %u registrations (RLIMIT_NOFILE %llu; "
                     "raise it for %d)", es->max_registered,
                     (unsigned long long)rl.rlim_cur, CORE_MAX_EMUS);
    }
    es->ev_sweep = event_new(io->base, -1, 0, on_sweep, es);
    LIST_INIT(&es->conns);
    /* Backs off (not spins) when descriptors run out. */
    es->acceptor = acceptor_new(io->base, fd, "emulator", on_accept, es);
    if (es->acceptor == NULL) {
        snprintf(err, errlen, "out of memory");
        close(fd);
        unlink(path);
        free(es);
        return NULL;
    }
    return es;
}

void
emusock_free(struct emusock *es)
{
    struct emu_conn *c;

    if (es == NULL)
        return;
    if (es->ev_sweep)
        event_free(es->ev_sweep);
    while ((c = LIST_FIRST(&es->conns)) != NULL)
        conn_free(c);
    acceptor_free(es->acceptor);
    close(es->lfd);
    free(es);
}
