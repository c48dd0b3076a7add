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

#include "bench/bench.h"
#include "util/log.h"

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

