/* SPDX-License-Identifier: MIT */
/*
 * iomapd: keeps the books of emulator mappings of guest pages and takes
 * removed pages through INVALIDATING -> FLUSHING -> RELEASED.
 * One libevent loop; everything runs on it.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "daemon/iomapd.h"
#include "util/clock.h"
#include "util/evlog.h"
#include "util/log.h"
#include "json-api/ctl.h"
#include "json-api/metrics.h"
#include "policy/policy.h"
#include "shim/ring.h"

static struct iomapd iomapd;

/* ---- the core's environment --------------------------------------------------- */

static uint64_t
env_clock(void *arg)
{
    (void)arg;
    return clock_now_ns();
}

static void
env_kick(void *arg)
{
    struct iomapd *io = arg;

    io->be->kick(io->bep);
}

static void
env_kill_emulator(void *arg, const struct core_emu_id *id)
{
    struct iomapd *io = arg;

    emusock_kill(io->emusock, id);
}

static void
env_crash_guest(void *arg, uint16_t domid)
{
    struct iomapd *io = arg;
    int rc = io->be->crash_guest ? io->be->crash_guest(io->bep, domid) : -EOPNOTSUPP;

    if (rc == -EOPNOTSUPP)
        log_warnx("policy: the %s backend cannot crash d%u", io->be->name, domid);
}

/* Observers: the control server's notifications, once it exists. */
static void
env_page_released(void *arg, uint16_t domid, uint64_t gfn, uint64_t mfn,
                  uint64_t lat_ns)
{
    struct iomapd *io = arg;

    if (io->ctl)
        ctl_page_released(io->ctl, domid, gfn, mfn, lat_ns);
}

static void
env_emu_gone(void *arg, const struct core_emu_id *id, const char *why)
{
    struct iomapd *io = arg;

    if (io->ctl)
        ctl_emu_gone(io->ctl, id, why);
    emusock_forget(io->emusock, id);
}

static void
env_timeout(void *arg, const struct core_emu_id *id, uint16_t domid, uint64_t gfn,
            const char *what)
{
    struct iomapd *io = arg;

    if (io->ctl)
        ctl_timeout(io->ctl, id, domid, gfn, what);
}

/* sd_notify(3) when running under systemd; a no-op otherwise. */
static void __attribute__((format(printf, 1, 2)))
notify(const char *fmt, ...)
{
#ifdef HAVE_SYSTEMD
    char buf[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    sd_notify(0, buf);
#else
    (void)fmt;
#endif
}

static void
notify_status(struct iomapd *io)
{
    struct core_status cs;

    core_status(io->core, &cs);
    notify("STATUS=%s: %u domains, %u emulators, %llu pages in flight, "
           "%llu released", io->stopping ? "draining" : "running",
           cs.domains, cs.emulators,
           (unsigned long long)(cs.invalidating + cs.flushing),
           (unsigned long long)core_stats(io->core)->pages_released);
}

static uint64_t
in_flight(const struct iomapd *io)
{
    struct core_status cs;

    core_status(io->core, &cs);
    return cs.invalidating + cs.flushing;
}

/* The one place the core is run from the loop. */
static void
on_run(evutil_socket_t fd, short what, void *arg)
{
    struct iomapd *io = arg;

    (void)fd;
    (void)what;
    if (core_process(io->core) < 0)
        fatalx("the shim's event ring is corrupt: refusing to guess what it "
               "holds (restart iomapd to resynchronise)");
    ctl_flush_notes(io->ctl);
    log_flush();            /* per-page messages of this pass, as ranges */
}

void
iomapd_request_run(struct iomapd *io)
{
    event_active(io->ev_run, EV_TIMEOUT, 0);
}

static void
on_notify(evutil_socket_t fd, short what, void *arg)
{
    struct iomapd *io = arg;

    (void)fd;
    (void)what;
    io->be->notified(io->bep);
    iomapd_request_run(io);
}

/* A periodic pass: catches a missed notification, and runs timeouts. */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct iomapd *io = arg;
    uint64_t now = clock_now_ns();

    core_tick(io->core);        /* the policy's timeouts, drain deadlines */
    log_flush();                /* their per-page messages, as ranges */
    iomapd_request_run(io);
    /* The watchdog is fed from the loop: a stuck loop gets restarted. */
    if (io->wd_usec && now - io->wd_last >= io->wd_usec * 1000 / 2) {
        notify("WATCHDOG=1");
        io->wd_last = now;
    }
    if (now - io->status_last >= 2000000000ull) {
        notify_status(io);
        io->status_last = now;
    }
    if (io->stopping) {
        uint64_t left = in_flight(io);

        if (left == 0 || now >= io->stop_deadline) {
            if (left)
                log_warnx("stop timeout: %llu pages still in flight, left to the "
                          "shim (the next iomapd picks them up)", (unsigned long long)left);
            event_base_loopexit(io->base, NULL);
        }
    }
}

/*
 * Read the policy of opt.config: 0 read (*pp), 1 no file (*pp the
 * built-in defaults), -1 refused (err says "path:line: why").
 */
static int
parse_policy(void *arg, struct policy **pp, char *err, size_t errlen)
{
    struct iomapd *io = arg;
    char buf[POLICY_ERRLEN];
    struct policy *p = NULL;

    if (access(io->opt.config, F_OK) < 0 && errno == ENOENT) {
        p = policy_default();
        if (p == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        policy_resolve_users(p, NULL);
        *pp = p;
        return 1;
    }
    if (policy_load(io->opt.config, &p, buf) < 0) {
        snprintf(err, errlen, "%s", buf);
        return -1;
    }
    *pp = p;
    return 0;
}

/* (Re)load the policy and put it in force; the returns of parse_policy. */
static int
load_policy(void *arg, char *err, size_t errlen)
{
    struct iomapd *io = arg;
    struct policy *p = NULL;
    int rc = parse_policy(arg, &p, err, errlen);

    if (rc < 0)
        return rc;
    core_set_policy(io->core, p);
    if (rc == 1)
        log_info("policy: no %s: built-in defaults", io->opt.config);
    else
        log_info("policy loaded from %s", io->opt.config);
    return rc;
}

static void
reload(struct iomapd *io)
{
    char err[POLICY_ERRLEN];

    notify("RELOADING=1");
    if (load_policy(io, err, sizeof(err)) < 0)
        log_warnx("SIGHUP: policy refused, the old one stays: %s", err);
    notify("READY=1");
    notify_status(io);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct iomapd *io = arg;

    if (sig == SIGHUP) {
        reload(io);
        return;
    }
    if (io->stopping) {
        log_info("%s again: exiting now", strsignal((int)sig));
        event_base_loopexit(io->base, NULL);
        return;
    }
    /* Drain, do not cancel: let pages in flight finish, up to a deadline. */
    io->stopping = 1;
    io->stop_deadline = clock_now_ns() + (uint64_t)io->opt.stop_timeout_ms * 1000000u;
    if (io->ctl)
        io->ctl->stopping = 1;
    notify("STOPPING=1");
    log_info("%s: stopping: %llu pages in flight get up to %u ms to finish",
             strsignal((int)sig),
             (unsigned long long)in_flight(io), io->opt.stop_timeout_ms);
    notify_status(io);
}

/*
 * A start-up failure, exit 1: through the logger, so that the journal
 * records it at error priority; on a terminal one plain line,
 * "iomapd: what failed".
 */
#define die(...) log_die(__VA_ARGS__)

static void
usage(FILE *f)
{
    fprintf(f,
        "usage: iomapd --backend sim|sim-embedded|xen [options]\n"
        "Tracks which emulator maps which guest page and releases removed pages\n"
        "only once every emulator has unmapped them and their flush completed.\n"
        "\n"
        "  -b, --backend NAME       sim (a running iomap-sim), sim-embedded (the\n"
        "                           simulated hypervisor in this process) or xen\n"
        "      --sim-socket PATH    sim: iomap-sim's daemon socket (default\n"
        "                           %s/iomapd/sim.sock); sim-embedded: the simulated\n"
        "                           hypercall socket for emulators and iomap-sim ctl\n"
        "                           (default %s/iomapd/sim-hc.sock)\n"
        "  -e, --emu-socket PATH    emulator registration socket\n"
        "                           (default %s/iomapd/emulators.sock)\n"
        "  -s, --socket PATH        JSON-RPC control socket (default %s/iomapd/iomapd.sock)\n"
        "      --socket-group GROUP group of the control socket (mode 0660): may query\n"
        "      --admin-group GROUP  may also call mutating methods (drain, reload)\n"
        "      --stop-timeout MS    on SIGTERM, wait this long for pages in flight\n"
        "                           (default 5000)\n"
        "      --metrics ADDR:PORT  serve Prometheus/OpenMetrics text over HTTP at\n"
        "                           /metrics (e.g. 127.0.0.1:9477; off by default)\n"
        "  -c, --config PATH        policy file (default %s/iomapd/iomapd.conf)\n"
        "  -l, --log-level LEVEL    error, warning, info (default) or debug\n"
        "  -v, --verbose            same as --log-level debug\n"
        "  -h, --help               this text\n"
        "  -V, --version            daemon, API and shim ABI versions\n"
        "\n"
        "Logs go to stderr (the journal, under systemd).  See iomapd(8).\n",
        RUNSTATEDIR, RUNSTATEDIR, RUNSTATEDIR, RUNSTATEDIR, SYSCONFDIR);
}

static const struct backend_ops *
find_backend(const char *name)
{
    if (strcmp(name, "sim") == 0)
        return &backend_sim;
#ifdef HAVE_SIM_EMBEDDED
    if (strcmp(name, "sim-embedded") == 0)
        return &backend_sim_embedded;
#endif
#ifdef HAVE_XEN_BACKEND
    if (strcmp(name, "xen") == 0)
        return &backend_xen;
#endif
    return NULL;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "backend", required_argument, NULL, 'b' },
        { "sim-socket", required_argument, NULL, 'S' },
        { "emu-socket", required_argument, NULL, 'e' },
        { "socket", required_argument, NULL, 's' },
        { "socket-group", required_argument, NULL, 'G' },
        { "admin-group", required_argument, NULL, 'A' },
        { "stop-timeout", required_argument, NULL, 'T' },
        { "config", required_argument, NULL, 'c' },
        { "metrics", required_argument, NULL, 'M' },
        { "log-level", required_argument, NULL, 'l' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
#ifdef HAVE_SIM_EMBEDDED
        { "bench-preload", required_argument, NULL, 'P' },
        { "bench-probe", required_argument, NULL, 'Q' },
#endif
        { NULL, 0, NULL, 0 },
    };
    struct iomapd *io = &iomapd;
    struct event *sigs[4];
    static const int signums[4] = { SIGINT, SIGTERM, SIGHUP, 0 };
    struct timeval tick = { 0, 100000 };
    char err[256];
    const char *metrics_addr = NULL;
    struct metrics_http *metrics = NULL;
    int c, rc;

    io->opt.sim_socket = RUNSTATEDIR "/iomapd/sim.sock";
    io->opt.emu_socket = RUNSTATEDIR "/iomapd/emulators.sock";
    io->opt.ctl_socket = RUNSTATEDIR "/iomapd/iomapd.sock";
    io->opt.config = SYSCONFDIR "/iomapd/iomapd.conf";
    io->opt.log_level = LOG_LVL_INFO;
    io->opt.stop_timeout_ms = 5000;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":b:e:s:c:l:vhV", opts, NULL)) != -1) {
        switch (c) {
        case 'b': io->opt.backend = optarg; break;
        case 'S': io->opt.sim_socket = optarg; io->opt.sim_socket_set = 1; break;
        case 'e': io->opt.emu_socket = optarg; break;
        case 's': io->opt.ctl_socket = optarg; break;
        case 'G': io->opt.ctl_group = optarg; break;
        case 'A': io->opt.ctl_admin_group = optarg; break;
        case 'T': {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);

            if (*optarg == '\0' || *end || v > 3600000) {
                fprintf(stderr, "iomapd: --stop-timeout takes milliseconds (0 to 3600000)\n");
                return 2;
            }
            io->opt.stop_timeout_ms = (unsigned)v;
            break;
        }
        case 'c': io->opt.config = optarg; break;
#ifdef HAVE_SIM_EMBEDDED
        case 'P': {
            char *end;
            unsigned long long v = strtoull(optarg, &end, 10);

            if (*optarg == '\0' || *end || v > 1000000000ull) {
                fprintf(stderr, "iomapd: --bench-preload takes a number of mappings\n");
                return 2;
            }
            io->opt.bench_preload = v;
            break;
        }
        case 'Q': io->opt.bench_probe = optarg; break;
#endif
        case 'M':
            metrics_addr = optarg;
            if (metrics_addr_check(metrics_addr, err, sizeof(err)) < 0) {
                fprintf(stderr, "iomapd: %s\n", err);
                return 2;
            }
            break;
        case 'l':
            io->opt.log_level = log_parse_level(optarg);
            if (io->opt.log_level < 0) {
                fprintf(stderr, "iomapd: unknown log level '%s' "
                        "(error, warning, info, debug)\n", optarg);
                return 2;
            }
            break;
        case 'v': io->opt.log_level = LOG_LVL_DEBUG; break;
        case 'h': usage(stdout); return 0;
        case 'V':
            printf("iomapd %s (JSON-RPC API 1, shim ABI %d.%d)\n", PACKAGE_VERSION,
                   IOMAP_ABI_VERSION_MAJOR, IOMAP_ABI_VERSION_MINOR);
            return 0;
        case ':':
            fprintf(stderr, "iomapd: option '%s' needs an argument\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "iomapd: unknown option '%s' (see iomapd --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "iomapd: unexpected argument '%s' (see iomapd --help)\n",
                argv[optind]);
        return 2;
    }
    if (io->opt.backend == NULL) {
        fprintf(stderr, "iomapd: no backend given: use --backend sim or --backend xen\n");
        return 2;
    }
    io->be = find_backend(io->opt.backend);
    if (io->be == NULL) {
        if (strcmp(io->opt.backend, "xen") == 0)
            fprintf(stderr, "iomapd: this iomapd was built without the Xen backend "
                    "(configure --with-xen and libxen-dev)\n");
        else if (strcmp(io->opt.backend, "sim-embedded") == 0)
            fprintf(stderr, "iomapd: the simulated hypervisor is not in this iomapd: "
                    "use iomapd-sim --backend sim-embedded\n");
        else
            fprintf(stderr, "iomapd: unknown backend '%s' (sim, sim-embedded or xen)\n",
                    io->opt.backend);
        return 2;
    }
    log_init("iomapd", io->opt.log_level);
    /* libevent's own warnings through the logger, rate limited. */
    evlog_install();
    signal(SIGPIPE, SIG_IGN);

    io->started_ns = clock_now_ns();
    io->base = event_base_new();
    if (io->base == NULL)
        fatalx("cannot create the event loop");
    /* The backend first: without a shim there is nothing to say but why. */
    {
        struct backend_args ba = { .base = io->base, .sim_socket = io->opt.sim_socket,
                                   .sim_socket_set = io->opt.sim_socket_set };

        rc = io->be->open(&ba, &io->bep, err, sizeof(err));
    }
    if (rc < 0)
        die("%s backend: %s", io->be->name, err);
    {
        struct core_env env = {
            .ring = io->be->ring(io->bep), .clock = env_clock, .kick = env_kick,
            .kill_emulator = env_kill_emulator, .crash_guest = env_crash_guest,
            .page_released = env_page_released, .emu_gone = env_emu_gone,
            .timeout = env_timeout, .arg = io,
        };

        io->core = core_new(&env);
        if (io->core == NULL)
            fatal("cannot create the books");
    }
    io->ev_run = event_new(io->base, -1, 0, on_run, io);
    if (io->ev_run == NULL)
        fatalx("cannot create the event loop");
    if (load_policy(io, err, sizeof(err)) < 0) {
        io->be->close(io->bep);
        die("policy: %s", err);
    }
    io->emusock = emusock_new(io, io->opt.emu_socket, err, sizeof(err));
    if (io->emusock == NULL) {
        io->be->close(io->bep);     /* sim-embedded: its hypercall socket goes */
        die("%s", err);
    }
    {
        struct ctl_env cenv = {
            .base = io->base, .core = io->core, .socket_path = io->opt.ctl_socket,
            .socket_group = io->opt.ctl_group, .admin_group = io->opt.ctl_admin_group,
            .config_path = io->opt.config, .backend = io->be->name,
            .started_ns = io->started_ns, .reload_policy = load_policy,
            .parse_policy = parse_policy,
            .request_run = (void (*)(void *))iomapd_request_run, .arg = io,
        };

        io->ctl = ctl_create(&cenv);
        if (io->ctl == NULL || ctl_listen(io->ctl, err, sizeof(err)) < 0) {
            emusock_free(io->emusock);
            unlink(io->opt.emu_socket);
            io->be->close(io->bep);
            die("control socket: %s", io->ctl ? err : "out of memory");
        }
    }
    if (metrics_addr) {
        metrics = metrics_http_new(io->base, io->ctl, metrics_addr, err, sizeof(err));
        if (metrics == NULL) {
            ctl_free(io->ctl);
            emusock_free(io->emusock);
            unlink(io->opt.emu_socket);
            die("%s", err);
        }
    }
    io->ev_notify = event_new(io->base, io->be->notify_fd(io->bep), EV_READ | EV_PERSIST,
                              on_notify, io);
    io->ev_tick = event_new(io->base, -1, EV_PERSIST, on_tick, io);
    event_add(io->ev_notify, NULL);
    event_add(io->ev_tick, &tick);
    for (int i = 0; signums[i]; i++) {
        sigs[i] = evsignal_new(io->base, signums[i], on_signal, io);
        event_add(sigs[i], NULL);
    }
    /* Whatever happened before we came up, the dump tells. */
    core_resync(io->core);
    iomapd_request_run(io);
#ifdef HAVE_SIM_EMBEDDED
    if ((io->opt.bench_preload || io->opt.bench_probe) &&
        bench_hooks_start(io, io->opt.bench_preload, io->opt.bench_probe) < 0)
        fatalx("bench hooks: out of memory");
#endif
    log_info("iomapd %s running: backend %s, emulators on %s, control on %s",
             PACKAGE_VERSION, io->be->name, io->opt.emu_socket, io->opt.ctl_socket);
#ifdef HAVE_SYSTEMD
    {
        uint64_t usec;

        if (sd_watchdog_enabled(0, &usec) > 0)
            io->wd_usec = usec;
    }
#endif
    notify("READY=1");
    notify_status(io);

    event_base_dispatch(io->base);

    notify("STOPPING=1");
    evlog_flush();
    metrics_http_free(metrics);
    ctl_free(io->ctl);
    io->ctl = NULL;
    emusock_free(io->emusock);
    io->emusock = NULL;
    unlink(io->opt.emu_socket);
    for (int i = 0; signums[i]; i++)
        event_free(sigs[i]);
    event_free(io->ev_notify);
    event_free(io->ev_tick);
    event_free(io->ev_run);
#ifdef HAVE_SIM_EMBEDDED
    bench_hooks_stop();
#endif
    log_info("stopped: %llu pages released, %llu in flight left to the shim%s",
             (unsigned long long)core_stats(io->core)->pages_released,
             (unsigned long long)in_flight(io),
             core_stats(io->core)->pages_leaked ?
             " (the shim kept the frames of failed flushes: see pages_leaked)" : "");
    core_free(io->core);
    io->be->close(io->bep);
    event_base_free(io->base);
    return 0;
}
