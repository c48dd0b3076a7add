/* SPDX-License-Identifier: MIT */
/*
 * util/listen.c: the safe UNIX-socket listen (what is at the path decides:
 * nothing, a file, a directory, a symlink, a live listener of either type
 * or with a full backlog, a stale socket), SO_PEERCRED, and the acceptor
 * that backs off instead of spinning when descriptors run out.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "tests/cunit_main.h"
#include "util/listen.h"
#include "util/log.h"

static char dir[64];

static const char *
at(const char *name)
{
    static char p[8][128];
    static int i;

    i = (i + 1) % 8;
    snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
    return p[i];
}

static struct listen_opts
opts(int type, mode_t mode)
{
    struct listen_opts o = { .type = type, .mode = mode, .backlog = 8,
                             .what = "test", .owner = "iomapd" };
    return o;
}

/* A listener made without listen_unix (the "other process"). */
static int
raw_listen(const char *path, int type, int backlog)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        (backlog >= 0 && listen(fd, backlog) < 0)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int
try_connect(const char *path, int type, int nonblock)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);

    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void
test_fresh(void)
{
    struct listen_opts o = opts(SOCK_SEQPACKET, 0600);
    const char *p = at("fresh.sock");
    char err[256] = "";
    struct stat st;
    mode_t old = umask(0);      /* the mode does not depend on the umask */
    int fd = listen_unix(p, &o, err, sizeof(err)), c, fl;

    umask(old);
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(lstat(p, &st), 0);
    CU_ASSERT_TRUE(S_ISSOCK(st.st_mode));
    CU_ASSERT_EQUAL(st.st_mode & 07777, 0600);
    fl = fcntl(fd, F_GETFL);
    CU_ASSERT_TRUE(fl >= 0 && (fl & O_NONBLOCK));
    CU_ASSERT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    c = try_connect(p, SOCK_SEQPACKET, 0);
    CU_ASSERT_TRUE(c >= 0);
    close(c);
    close(fd);
    unlink(p);

    o = opts(SOCK_STREAM, 0660);
    o.have_gid = 1;
    o.gid = getegid();
    old = umask(0);
    fd = listen_unix(p, &o, err, sizeof(err));
    umask(old);
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(lstat(p, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 07777, 0660);
    CU_ASSERT_EQUAL(st.st_gid, getegid());
    close(fd);
    unlink(p);
}

/* A file, a directory, a symlink (even to a live socket), a fifo. */
static void
test_not_a_socket(void)
{
    const char *live = at("live-for-link.sock");
    const char *paths[4] = { at("file"), at("dir"), at("link"), at("fifo") };
    int lfd = raw_listen(live, SOCK_STREAM, 4);
    FILE *f;
    char buf[32];

    CU_ASSERT_TRUE_FATAL(lfd >= 0);
    f = fopen(paths[0], "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("precious\n", f);
    fclose(f);
    CU_ASSERT_EQUAL(mkdir(paths[1], 0700), 0);
    CU_ASSERT_EQUAL(symlink(live, paths[2]), 0);
    CU_ASSERT_EQUAL(mkfifo(paths[3], 0600), 0);
    for (int i = 0; i < 4; i++) {
        for (int t = 0; t < 2; t++) {
            struct listen_opts o = opts(t ? SOCK_SEQPACKET : SOCK_STREAM, 0600);
            char err[256] = "";
            struct stat before, after;

            CU_ASSERT_EQUAL(lstat(paths[i], &before), 0);
            CU_ASSERT_EQUAL(listen_unix(paths[i], &o, err, sizeof(err)), -EEXIST);
            CU_ASSERT_PTR_NOT_NULL(strstr(err, "exists and is not a socket"));
            CU_ASSERT_PTR_NOT_NULL(strstr(err, paths[i]));
            CU_ASSERT_EQUAL(lstat(paths[i], &after), 0);
            CU_ASSERT_EQUAL(after.st_ino, before.st_ino);
            CU_ASSERT_EQUAL(after.st_mode, before.st_mode);
        }
    }
    f = fopen(paths[0], "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_PTR_NOT_NULL(fgets(buf, sizeof(buf), f));
    CU_ASSERT_STRING_EQUAL(buf, "precious\n");
    fclose(f);
    close(lfd);
    unlink(live);
    unlink(paths[0]);
    rmdir(paths[1]);
    unlink(paths[2]);
    unlink(paths[3]);
}

/* A live listener: of the same type, of another type, with a full backlog. */
static void
test_live(void)
{
    static const int types[][2] = {
        { SOCK_STREAM, SOCK_STREAM }, { SOCK_SEQPACKET, SOCK_SEQPACKET },
        { SOCK_STREAM, SOCK_SEQPACKET }, { SOCK_SEQPACKET, SOCK_STREAM },
        { SOCK_DGRAM, SOCK_SEQPACKET },
    };

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        const char *p = at("live.sock");
        int lfd = raw_listen(p, types[i][0], types[i][0] == SOCK_DGRAM ? -1 : 4);
        struct listen_opts o = opts(types[i][1], 0600);
        char err[256] = "";
        struct stat before, after;
        int c;

        CU_ASSERT_TRUE_FATAL(lfd >= 0);
        CU_ASSERT_EQUAL(lstat(p, &before), 0);
        CU_ASSERT_EQUAL(listen_unix(p, &o, err, sizeof(err)), -EADDRINUSE);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "is in use by a running iomapd"));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, p));
        CU_ASSERT_EQUAL(lstat(p, &after), 0);
        CU_ASSERT_EQUAL(after.st_ino, before.st_ino);
        if (types[i][0] != SOCK_DGRAM) {
            c = try_connect(p, types[i][0], 0);
            CU_ASSERT_TRUE(c >= 0);         /* still the live one's */
            if (c >= 0)
                close(c);
        }
        close(lfd);
        unlink(p);
    }
}

/* A listener whose backlog is full is alive, and the probe does not hang. */
static void
test_live_full_backlog(void)
{
    const char *p = at("busy.sock");
    int lfd = raw_listen(p, SOCK_STREAM, 0), cs[16], n = 0, c;
    struct listen_opts o = opts(SOCK_STREAM, 0600);
    char err[256] = "";

    CU_ASSERT_TRUE_FATAL(lfd >= 0);
    while (n < 16 && (c = try_connect(p, SOCK_STREAM, 1)) >= 0)
        cs[n++] = c;
    CU_ASSERT_TRUE(n < 16);                 /* the backlog filled up */
    alarm(10);                              /* a blocking probe would hang */
    CU_ASSERT_EQUAL(listen_unix(p, &o, err, sizeof(err)), -EADDRINUSE);
    alarm(0);
    for (int i = 0; i < n; i++)
        close(cs[i]);
    close(lfd);
    unlink(p);
}

static void
test_stale(void)
{
    for (int t = 0; t < 2; t++) {
        const char *p = at("stale.sock");
        int sfd = raw_listen(p, t ? SOCK_SEQPACKET : SOCK_STREAM, 4), fd, c;
        struct listen_opts o = opts(t ? SOCK_SEQPACKET : SOCK_STREAM, 0600);
        char err[256] = "";
        struct stat st;

        CU_ASSERT_TRUE_FATAL(sfd >= 0);
        close(sfd);                         /* the file stays, nobody listens */
        CU_ASSERT_EQUAL(lstat(p, &st), 0);
        fd = listen_unix(p, &o, err, sizeof(err));
        CU_ASSERT_TRUE_FATAL(fd >= 0);
        c = try_connect(p, o.type, 0);
        CU_ASSERT_TRUE(c >= 0);
        if (c >= 0)
            close(c);
        close(fd);
        unlink(p);
    }
}

static void
test_too_long(void)
{
    char p[200];
    struct listen_opts o = opts(SOCK_STREAM, 0600);
    char err[512] = "";

    memset(p, 'x', sizeof(p) - 1);
    p[sizeof(p) - 1] = 0;
    o.what = "control";
    CU_ASSERT_EQUAL(listen_unix(p, &o, err, sizeof(err)), -ENAMETOOLONG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "control socket path too long"));
}

static void
test_peer(void)
{
    int sv[2];
    struct listen_peer peer;

    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    CU_ASSERT_EQUAL(listen_peer(sv[0], &peer), 0);
    CU_ASSERT_EQUAL(peer.pid, getpid());
    CU_ASSERT_EQUAL(peer.uid, geteuid());
    CU_ASSERT_EQUAL(peer.gid, getegid());
    close(sv[0]);
    close(sv[1]);
    CU_ASSERT_EQUAL(listen_peer(sv[0], &peer), -EBADF);
    CU_ASSERT_EQUAL(peer.uid, (uid_t)-1);
}

/* ---- the acceptor ---------------------------------------------------------------- */

struct got {
    int n;
    int fds[64];
    pid_t pid;
};

static void
on_conn(int fd, const struct listen_peer *peer, void *arg)
{
    struct got *g = arg;

    g->pid = peer->pid;
    if (g->n < 64)
        g->fds[g->n++] = fd;
    else
        close(fd);
}

static double
cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void
run_for(struct event_base *base, int ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

static void
test_acceptor_backoff(void)
{
    const char *p = at("acc.sock");
    struct listen_opts o = opts(SOCK_SEQPACKET, 0600);
    struct event_base *base = event_base_new();
    struct acceptor_stats st;
    struct acceptor *a;
    struct rlimit old, low;
    struct got g = { 0 };
    char err[256] = "";
    int lfd, cl[8], fill[256], nfill = 0, d;
    double c0, c1;

    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    lfd = listen_unix(p, &o, err, sizeof(err));
    CU_ASSERT_TRUE_FATAL(lfd >= 0);
    a = acceptor_new(base, lfd, "test", on_conn, &g);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);

    /* One connection goes through; its peer is us. */
    cl[0] = try_connect(p, SOCK_SEQPACKET, 0);
    CU_ASSERT_TRUE_FATAL(cl[0] >= 0);
    run_for(base, 50);
    CU_ASSERT_EQUAL(g.n, 1);
    CU_ASSERT_EQUAL(g.pid, getpid());

    /* Descriptors run out: the next connections wait in the backlog. */
    for (int i = 1; i < 8; i++) {
        cl[i] = try_connect(p, SOCK_SEQPACKET, 1);
        CU_ASSERT_TRUE(cl[i] >= 0);
    }
    CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_NOFILE, &old), 0);
    d = dup(0);
    CU_ASSERT_TRUE_FATAL(d >= 0);
    close(d);
    low = old;
    low.rlim_cur = (rlim_t)d + 32 < old.rlim_cur ? (rlim_t)d + 32 : old.rlim_cur;
    CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_NOFILE, &low), 0);
    while (nfill < 256 && (d = dup(0)) >= 0)
        fill[nfill++] = d;
    CU_ASSERT_EQUAL(errno, EMFILE);

    c0 = cpu_s();
    run_for(base, 400);
    c1 = cpu_s();
    acceptor_stats(a, &st);
    CU_ASSERT_EQUAL(g.n, 1);                /* nothing accepted meanwhile */
    CU_ASSERT_EQUAL(st.episodes, 1);
    CU_ASSERT_TRUE(st.backing_off);
    /* 50, 100, 200 ms: a few retries, not a spin. */
    CU_ASSERT_TRUE(st.retries >= 1 && st.retries <= 4);
    CU_ASSERT_TRUE(c1 - c0 < 0.1);

    /* Descriptors come back: the waiting connections are all accepted. */
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    CU_ASSERT_EQUAL(setrlimit(RLIMIT_NOFILE, &old), 0);
    run_for(base, ACCEPTOR_BACKOFF_MAX_MS + 300);
    acceptor_stats(a, &st);
    CU_ASSERT_EQUAL(g.n, 8);
    CU_ASSERT_FALSE(st.backing_off);
    CU_ASSERT_EQUAL(st.episodes, 1);
    CU_ASSERT_EQUAL(st.accepted, 8);

    for (int i = 0; i < 8; i++)
        close(cl[i]);
    for (int i = 0; i < g.n; i++)
        close(g.fds[i]);
    acceptor_free(a);
    close(lfd);
    unlink(p);
    event_base_free(base);
}

int
main(void)
{
    static const struct test_case tests[] = {
        { "a fresh path: a socket of its mode, non-blocking, close-on-exec", test_fresh },
        { "not a socket at the path: refused, left alone", test_not_a_socket },
        { "a live listener (any type): refused, left alone", test_live },
        { "a live listener with a full backlog: refused, no hang", test_live_full_backlog },
        { "a stale socket: replaced", test_stale },
        { "a path too long", test_too_long },
        { "SO_PEERCRED", test_peer },
        { "acceptor: backs off on EMFILE, resumes", test_acceptor_backoff },
        { NULL, NULL },
    };
    int rc;

    log_init("test_listen", getenv("LISTEN_VERBOSE") ? LOG_LVL_DEBUG : LOG_LVL_ERR);
    snprintf(dir, sizeof(dir), "/tmp/iomap-listen.XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 99;
    }
    rc = run_tests("listen", tests);
    rmdir(dir);
    return rc;
}
