/* SPDX-License-Identifier: MIT */
/*
 * The JSON-RPC API: requests per second against the real iomapd
 * (--backend sim, with iomap-sim) over its control socket, the machine's
 * floor for a UNIX-socket round trip, and the mapping.list figures of
 * api_list.c.  Needs ./iomapd and ./iomap-sim (or $top_builddir/...).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "bench/bench.h"
#include "util/log.h"

#define CTL_MAX_LIMIT_BENCH 10000       /* json-api/ctl.h CTL_MAX_LIMIT */

/* ---- api_rps: the real iomapd (--backend sim, iomap-sim) over its socket ---- */

/* Started by bench_api_rps: stopped at exit, also when a check fails (fatalx). */
static pid_t api_pids[2];
static char api_dir[64];

static void
api_cleanup(void)
{
    static const char *const f[] = { "sim.sock", "hc.sock", "emu.sock", "ctl.sock" };
    char path[128];

    for (int i = 1; i >= 0; i--)
        if (api_pids[i] > 0) {
            kill(api_pids[i], SIGTERM);
            waitpid(api_pids[i], NULL, 0);
            api_pids[i] = 0;
        }
    if (api_dir[0]) {
        for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
            snprintf(path, sizeof(path), "%s/%s", api_dir, f[i]);
            unlink(path);
        }
        rmdir(api_dir);
        api_dir[0] = 0;
    }
}

static pid_t
spawn_quiet(char *const argv[])
{
    posix_spawn_file_actions_t fa;
    pid_t pid;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (posix_spawn(&pid, argv[0], &fa, NULL, argv, NULL) != 0)
        fatalx("cannot start %s", argv[0]);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

static int
wait_path(const char *path)
{
    struct stat st;

    for (int i = 0; i < 500; i++) {
        if (stat(path, &st) == 0)
            return 0;
        usleep(10000);
    }
    return -1;
}

/* One request, one response line; returns the response length. */
static ssize_t
rpc_round(int fd, const char *req, size_t reqlen, char *buf, size_t buflen)
{
    size_t got = 0;

    if (write(fd, req, reqlen) != (ssize_t)reqlen)
        return -1;
    for (;;) {
        ssize_t k = read(fd, buf + got, buflen - got);

        if (k <= 0)
            return -1;
        got += (size_t)k;
        if (buf[got - 1] == '\n')
            return (ssize_t)got;
        if (got == buflen)
            return -1;
    }
}

static void
bench_api_rps(void)
{
    const char *bd = getenv("top_builddir") ? getenv("top_builddir") : ".";
    char dir[] = "/tmp/iomap-bench-api.XXXXXX", sim[256], iomapd[256], simsock[300],
         hcsock[300], emusock[300], ctlsock[300], conf[300], buf[65536];
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    uint32_t n = small ? 5000 : 50000;
    int fd;

    if (mkdtemp(dir) == NULL)
        fatalx("mkdtemp: %s", strerror(errno));
    snprintf(api_dir, sizeof(api_dir), "%s", dir);
    atexit(api_cleanup);
    snprintf(sim, sizeof(sim), "%s/iomap-sim", bd);
    snprintf(iomapd, sizeof(iomapd), "%s/iomapd", bd);
    snprintf(simsock, sizeof(simsock), "%s/sim.sock", dir);
    snprintf(hcsock, sizeof(hcsock), "%s/hc.sock", dir);
    snprintf(emusock, sizeof(emusock), "%s/emu.sock", dir);
    snprintf(ctlsock, sizeof(ctlsock), "%s/ctl.sock", dir);
    snprintf(conf, sizeof(conf), "%s/none.conf", dir);
    {
        char *a[] = { sim, "-s", simsock, "-H", hcsock, "-g", "1", NULL };

        api_pids[0] = spawn_quiet(a);
    }
    if (wait_path(hcsock) < 0)
        fatalx("api: %s did not come up", sim);
    {
        char *a[] = { iomapd, "--backend", "sim", "--sim-socket", simsock, "-e", emusock,
                      "-s", ctlsock, "-c", conf, "-l", "error", NULL };

        api_pids[1] = spawn_quiet(a);
    }
    if (wait_path(ctlsock) < 0)
        fatalx("api: %s did not come up", iomapd);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (strlen(ctlsock) >= sizeof(sun.sun_path))
        fatalx("api: socket path too long: %s", ctlsock);
    memcpy(sun.sun_path, ctlsock, strlen(ctlsock) + 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
        fatalx("api: cannot connect to %s: %s", ctlsock, strerror(errno));
    for (int r = -1; r < reps; r++) {
        static const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\"}\n";
        uint64_t t0 = now_ns();

        for (uint32_t i = 0; i < (r < 0 ? n / 10 : n); i++) {
            ssize_t k = rpc_round(fd, req, sizeof(req) - 1, buf, sizeof(buf));

            if (k < 0 || memmem(buf, (size_t)k, "\"result\"", 8) == NULL)
                fatalx("api: status failed");
        }
        if (r >= 0)
            add(&M[M_API_RPS], (double)n / ((double)(now_ns() - t0) / 1e9));
    }
    close(fd);
    api_cleanup();
}

/*
 * The machine's floor for one round trip over a UNIX stream socket: a
 * child that echoes 64 bytes, no JSON, no event loop.
 */
static void
bench_socket_floor(void)
{
    uint32_t n = small ? 5000 : 50000;
    char buf[256];
    int sv[2];
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        fatalx("socketpair: %s", strerror(errno));
    pid = fork();
    if (pid == 0) {
        ssize_t k;

        close(sv[0]);
        while ((k = read(sv[1], buf, sizeof(buf))) > 0)
            if (write(sv[1], buf, (size_t)k) != k)
                _exit(1);
        _exit(0);
    }
    close(sv[1]);
    memset(buf, 'x', 64);
    for (int r = -1; r < reps; r++) {
        uint64_t t0 = now_ns();

        for (uint32_t i = 0; i < n; i++)
            if (write(sv[0], buf, 64) != 64 || read(sv[0], buf, sizeof(buf)) != 64)
                fatalx("socket floor: short round trip");
        if (r >= 0)
            add(&M[M_API_FLOOR], (double)n / ((double)(now_ns() - t0) / 1e9));
    }
    close(sv[0]);
    waitpid(pid, NULL, 0);
}

void
bench_api(void)
{
    for (int r = 0; r < (reps < 2 ? reps : 2); r++) {
        double v[6];

        if (in_child(api_stall_child, v, 6) < 0)
            fatalx("api: the mapping.list workload failed");
        add(&M[M_API_STALL], v[0]);
        add(&M[M_API_STALL_WALL], v[4]);
        add(&M[M_API_LIST_P999], v[5]);
        add(&M[M_API_LIST_P50], v[1]);
        add(&M[M_API_LIST_RATE], v[2]);
        add(&M[M_API_LIST_PAGE], v[3]);
    }
    bench_api_rps();
    bench_socket_floor();
}


/* ---- issue 15: the real daemon under many clients, against a constant server ---- */

/* A started iomapd-sim (sim-embedded), its control socket and its pid. */
struct realsrv {
    pid_t pid;
    char dir[64], ctl[128], probe[128];
};

static struct realsrv *live_srv;

static void
srv_stop(struct realsrv *s)
{
    char p[160];
    static const char *const f[] = { "ctl.sock", "emu.sock", "hc.sock", "probe", "probe.tmp",
                                     "none.conf" };

    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", s->dir, f[i]);
        unlink(p);
    }
    if (s->dir[0])
        rmdir(s->dir);
    s->dir[0] = 0;
    live_srv = NULL;
}

static void
srv_atexit(void)
{
    if (live_srv)
        srv_stop(live_srv);
}

static int
connect_to(const char *path)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (strlen(path) >= sizeof(sun.sun_path))
        fatalx("socket path too long: %s", path);
    memcpy(sun.sun_path, path, strlen(path) + 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
        fatalx("cannot connect to %s: %s", path, strerror(errno));
    return fd;
}

/* iomapd-sim --backend sim-embedded [--bench-preload N] --bench-probe. */
static void
srv_start(struct realsrv *s, uint64_t preload)
{
    const char *bd = getenv("top_builddir") ? getenv("top_builddir") : ".";
    char bin[256], hc[128], emu[128], conf[128], pre[32];

    snprintf(s->dir, sizeof(s->dir), "/tmp/iomap-bench15.XXXXXX");
    if (mkdtemp(s->dir) == NULL)
        fatalx("mkdtemp: %s", strerror(errno));
    live_srv = s;
    {
        static int once;

        if (!once++)
            atexit(srv_atexit);
    }
    snprintf(bin, sizeof(bin), "%s/iomapd-sim", bd);
    snprintf(hc, sizeof(hc), "%s/hc.sock", s->dir);
    snprintf(emu, sizeof(emu), "%s/emu.sock", s->dir);
    snprintf(s->ctl, sizeof(s->ctl), "%s/ctl.sock", s->dir);
    snprintf(s->probe, sizeof(s->probe), "%s/probe", s->dir);
    snprintf(conf, sizeof(conf), "%s/none.conf", s->dir);
    snprintf(pre, sizeof(pre), "%" PRIu64, preload);
    {
        char *a[] = { bin, "--backend", "sim-embedded", "--sim-socket", hc, "-e", emu,
                      "-s", s->ctl, "-c", conf, "-l", "error", "--bench-preload", pre,
                      "--bench-probe", s->probe, NULL };

        s->pid = spawn_quiet(a);
    }
    if (wait_path(s->ctl) < 0)
        fatalx("api: %s did not come up", bin);
}

/* utime + stime of pid, in us. */
static double
proc_cpu_us(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut = 0, st = 0;
    FILE *f;
    size_t k;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    k = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[k] = 0;
    p = strrchr(buf, ')');
    /* after ") ": state(3) ... utime is field 14, stime 15 */
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                            &ut, &st) != 2)
        return 0;
    return (double)(ut + st) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

/*
 * nclients connections, each keeping depth status requests in flight,
 * total requests in all.  Returns requests/s; *cpu_us the server's CPU
 * per request (from /proc/PID/stat).
 */
static double
drive(const char *path, pid_t pid, int nclients, int depth, uint32_t total, double *cpu_us)
{
    static const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\"}\n";
    struct pollfd pf[64];
    uint32_t sent[64] = { 0 }, done[64] = { 0 }, per = total / (uint32_t)nclients, all = 0;
    char buf[65536];
    double c0, t0;

    for (int i = 0; i < nclients; i++) {
        pf[i].fd = connect_to(path);
        pf[i].events = POLLIN;
    }
    c0 = proc_cpu_us(pid);
    t0 = (double)now_ns();
    for (int i = 0; i < nclients; i++)
        for (; sent[i] < (uint32_t)depth && sent[i] < per; sent[i]++)
            if (write(pf[i].fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1)
                fatalx("api: write");
    while (all < per * (uint32_t)nclients) {
        if (poll(pf, (nfds_t)nclients, 10000) <= 0)
            fatalx("api: the server stopped answering");
        for (int i = 0; i < nclients; i++) {
            ssize_t k;
            uint32_t lines = 0;

            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            k = read(pf[i].fd, buf, sizeof(buf));
            if (k <= 0)
                fatalx("api: the server hung up");
            for (ssize_t j = 0; j < k; j++)
                lines += buf[j] == '\n';
            done[i] += lines;
            all += lines;
            for (; sent[i] < done[i] + (uint32_t)depth && sent[i] < per; sent[i]++)
                if (write(pf[i].fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1)
                    fatalx("api: write");
        }
    }
    t0 = ((double)now_ns() - t0) / 1e9;
    *cpu_us = (proc_cpu_us(pid) - c0) / (double)all;
    for (int i = 0; i < nclients; i++)
        close(pf[i].fd);
    return (double)all / t0;
}

/*
 * The peer: a constant-reply libevent server (one bufferevent per client,
 * a fixed status-sized reply per request line), in a child process.
 */
static const char const_reply[] =
    "{\"jsonrpc\":\"2.0\",\"result\":{\"state\":\"running\",\"version\":\"0.1.0\","
    "\"uptime_s\":1.000000,\"backend\":\"sim-embedded\",\"resyncing\":false,\"domains\":0,"
    "\"emulators\":0,\"mappings\":0,\"pages\":{\"invalidating\":0,\"flushing\":0,"
    "\"removed\":0,\"released\":0},\"clients\":16},\"id\":1}\n";

static void
const_read(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n;
    char *line;

    (void)arg;
    while ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF)) != NULL) {
        free(line);
        bufferevent_write(bev, const_reply, sizeof(const_reply) - 1);
    }
}

static void
const_event(struct bufferevent *bev, short what, void *arg)
{
    (void)what;
    (void)arg;
    bufferevent_free(bev);
}

static void
const_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
             void *arg)
{
    struct bufferevent *bev = bufferevent_socket_new(evconnlistener_get_base(l), fd,
                                                     BEV_OPT_CLOSE_ON_FREE);

    (void)sa;
    (void)len;
    (void)arg;
    bufferevent_setcb(bev, const_read, NULL, const_event, NULL);
    bufferevent_enable(bev, EV_READ);
}

static pid_t
const_start(const char *path)
{
    pid_t pid = fork();

    if (pid == 0) {
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        struct event_base *base = event_base_new();
        struct evconnlistener *l;

        memcpy(sun.sun_path, path, strlen(path) + 1);
        l = evconnlistener_new_bind(base, const_accept, NULL, LEV_OPT_CLOSE_ON_FREE, 64,
                                    (struct sockaddr *)&sun, sizeof(sun));
        if (l == NULL)
            _exit(1);
        event_base_dispatch(base);
        _exit(0);
    }
    if (pid < 0 || wait_path(path) < 0)
        fatalx("api: the constant server did not come up");
    return pid;
}

static const int mx_clients[MX_C] = { 1, 4, 16, 64 };
static const int mx_depth[MX_D] = { 1, 8, 32 };
double mx_rps[MX_C][MX_D][MAX_REPS], mx_const[MX_C][MX_D][MAX_REPS], mx_cpu[MX_C][MX_D][MAX_REPS];
int mx_n;

void
bench_api_matrix(void)
{
    struct realsrv s = { 0 };
    char cpath[160];
    pid_t cpid;
    uint32_t total = small ? 4000 : 100000;

    srv_start(&s, 0);
    snprintf(cpath, sizeof(cpath), "%s/const.sock", s.dir);
    cpid = const_start(cpath);
    for (int r = 0; r < reps && r < MAX_REPS; r++) {
        for (int ci = 0; ci < MX_C; ci++)
            for (int di = 0; di < MX_D; di++) {
                double cpu_a, cpu_b, a, b;

                /* A/B, the order flipped every repeat. */
                if (r & 1) {
                    b = drive(cpath, cpid, mx_clients[ci], mx_depth[di], total, &cpu_b);
                    a = drive(s.ctl, s.pid, mx_clients[ci], mx_depth[di], total, &cpu_a);
                } else {
                    a = drive(s.ctl, s.pid, mx_clients[ci], mx_depth[di], total, &cpu_a);
                    b = drive(cpath, cpid, mx_clients[ci], mx_depth[di], total, &cpu_b);
                }
                mx_rps[ci][di][r] = a;
                mx_const[ci][di][r] = b;
                mx_cpu[ci][di][r] = cpu_a;
                if (mx_clients[ci] == 16 && mx_depth[di] == 8) {
                    add(&M[M_API_CPU], cpu_a);
                    add(&M[M_API_CAP_RATIO], a / b);
                    add(&M[M_API_RPS_16x8], a);
                    add(&M[M_API_CONST_16x8], b);
                }
                if (mx_clients[ci] == 1 && mx_depth[di] == 1)
                    add(&M[M_API_1x1], a);
            }
        mx_n = r + 1;
    }
    kill(cpid, SIGTERM);
    waitpid(cpid, NULL, 0);
    unlink(cpath);
    srv_stop(&s);
}

/* The probe's histogram (lines "lateness_us count"): the p999 in ms. */
static double
probe_p999(const struct realsrv *s)
{
    unsigned us, cnt;
    uint64_t tot = 0, acc = 0;
    FILE *f;
    static unsigned v[100000], c[100000];
    int n = 0;

    for (int i = 0; i < 500; i++) {
        if ((f = fopen(s->probe, "r")) != NULL)
            break;
        usleep(10000);
    }
    if (f == NULL)
        fatalx("list: no probe output");
    while (n < 100000 && fscanf(f, "%u %u", &us, &cnt) == 2) {
        v[n] = us;
        c[n++] = cnt;
        tot += cnt;
    }
    fclose(f);
    unlink(s->probe);
    for (int i = 0; i < n; i++) {
        acc += c[i];
        if (acc * 1000 >= tot * 999)
            return v[i] / 1e3;
    }
    return 0;
}

/*
 * mapping.list of 10 M mappings in the real daemon: the lateness of the
 * daemon's 1 ms timer (--bench-probe) while one client pages through
 * everything at the largest page size, and entries per second.
 */
void
bench_list_real(void)
{
    uint64_t n = small ? 200000 : 10000000;
    struct realsrv s = { 0 };
    static char buf[4 << 20];

    srv_start(&s, n);
    for (int i = 0;; i++) {         /* wait for the preload */
        char st[4096];
        int fd = connect_to(s.ctl);
        static const char q[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\"}\n";
        ssize_t k = rpc_round(fd, q, sizeof(q) - 1, st, sizeof(st) - 1);
        char want[64];

        close(fd);
        snprintf(want, sizeof(want), "\"mappings\":%" PRIu64 ",", n);
        if (k > 0 && (st[k] = 0, strstr(st, want)))
            break;
        if (i > 3000)
            fatalx("list: preload of %" PRIu64 " did not finish", n);
        usleep(20000);
    }
    for (int r = 0; r < (reps < 3 ? reps : 3); r++) {
        int fd = connect_to(s.ctl);
        char cursor[80] = "", req[256];
        uint64_t listed = 0, counted = 0, t0;

        kill(s.pid, SIGUSR1);       /* reset the probe */
        (void)probe_p999(&s);
        t0 = now_ns();
        for (uint32_t id = 0;; id++) {
            size_t got = 0;
            int l = snprintf(req, sizeof(req), "{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":"
                             "\"mapping.list\",\"params\":{\"limit\":%d%s%s%s}}\n", id,
                             CTL_MAX_LIMIT_BENCH, cursor[0] ? ",\"cursor\":\"" : "",
                             cursor, cursor[0] ? "\"" : "");
            char *c, *e;

            if (write(fd, req, (size_t)l) != l)
                fatalx("list: write");
            for (;;) {
                ssize_t k = read(fd, buf + got, sizeof(buf) - 1 - got);

                if (k <= 0)
                    fatalx("list: read");
                got += (size_t)k;
                if (buf[got - 1] == '\n')
                    break;
                if (got == sizeof(buf) - 1)
                    fatalx("list: reply too long");
            }
            buf[got] = 0;
            /* Entries (one per gfn), and mappings (their counts) for the check. */
            for (c = buf; (c = strstr(c, "\"count\":")) != NULL; c += 8) {
                listed++;
                counted += strtoull(c + 8, NULL, 10);
            }
            c = strstr(buf, "\"next_cursor\":\"");
            if (c == NULL) {
                if (strstr(buf, "\"next_cursor\":null") == NULL)
                    fatalx("list: %.200s", buf);
                break;
            }
            c += 15;
            e = strchr(c, '"');
            if (e == NULL || e - c >= (long)sizeof(cursor))
                fatalx("list: bad cursor");
            memcpy(cursor, c, (size_t)(e - c));
            cursor[e - c] = 0;
        }
        add(&M[M_LIST_RATE], (double)listed / ((double)(now_ns() - t0) / 1e9));
        kill(s.pid, SIGUSR1);
        add(&M[M_LIST_LATE], probe_p999(&s));
        close(fd);
        if (counted != n)
            fatalx("list: %" PRIu64 " mappings listed of %" PRIu64, counted, n);
    }
    srv_stop(&s);
}
