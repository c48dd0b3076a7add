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
#include "util/log.h"
#include "json-api/ctl.h"
#include "policy/policy.h"

static struct iomapd iomapd;

uint64_t
iomapd_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
daemon_clock(struct core *d)
{
    (void)d;
    return iomapd_now_ns();
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
    notify("STATUS=%s: %u domains, %u emulators, %llu pages in flight, "
           "%llu released", io->stopping ? "draining" : "running",
           core_domains(&io->d), core_emulators(&io->d),
           (unsigned long long)(io->d.n_invalidating + io->d.n_flushing),
           (unsigned long long)io->d.st.pages_released);
}

void
iomapd_process(struct iomapd *io)
{
    if (core_process(&io->d) < 0)
        fatalx("the shim's event ring is corrupt: refusing to guess what it "
               "holds (restart iomapd to resynchronise)");
    ctl_flush_notes(io);
}

static void
on_notify(evutil_socket_t fd, short what, void *arg)
{
    uint64_t v;

    if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        log_warn("%s: read", __func__);
    iomapd_process(arg);
}

/* A periodic pass: catches a missed notification, and runs timeouts. */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct iomapd *io = arg;
    uint64_t now = iomapd_now_ns();

    core_tick(&io->d);        /* the policy's timeouts */
    iomapd_process(io);
    ctl_tick(io);
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
        uint64_t left = io->d.n_invalidating + io->d.n_flushing;

        if (left == 0 || now >= io->stop_deadline) {
            if (left)
                log_warnx("stop timeout: %llu pages still in flight, left to the "
                          "shim (the next iomapd picks them up)", (unsigned long long)left);
            event_base_loopexit(io->base, NULL);
        }
    }
}

int
iomapd_load_policy(struct iomapd *io, char *err, size_t errlen)
{
    char buf[POLICY_ERRLEN];
    struct policy *p = NULL;

    if (access(io->opt.config, F_OK) < 0 && errno == ENOENT) {
        core_set_policy(&io->d, NULL);
        log_info("policy: no %s: built-in defaults", io->opt.config);
        return 1;
    }
    if (policy_load(io->opt.config, &p, buf) < 0) {
        snprintf(err, errlen, "%s", buf);
        return -1;
    }
    core_set_policy(&io->d, p);
    log_info("policy loaded from %s", io->opt.config);
    return 0;
}

static void
reload(struct iomapd *io)
{
    char err[POLICY_ERRLEN];

    notify("RELOADING=1");
    if (iomapd_load_policy(io, err, sizeof(err)) < 0)
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
    io->stop_deadline = iomapd_now_ns() + (uint64_t)io->opt.stop_timeout_ms * 1000000u;
    if (io->ctl)
        ((struct ctl *)io->ctl)->stopping = 1;
    notify("STOPPING=1");
    log_info("%s: stopping: %llu pages in flight get up to %u ms to finish",
             strsignal((int)sig),
             (unsigned long long)(io->d.n_invalidating + io->d.n_flushing),
             io->opt.stop_timeout_ms);
    notify_status(io);
}

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
        "  -e, --emu-socket PATH    emulator registration socket\n"
        "                           (default %s/iomapd/emulators.sock)\n"
        "  -s, --socket PATH        JSON-RPC control socket (default %s/iomapd/iomapd.sock)\n"
        "      --socket-group GROUP group of the control socket (mode 0660): may query\n"
        "      --admin-group GROUP  may also call mutating methods (drain, reload)\n"
        "      --stop-timeout MS    on SIGTERM, wait this long for pages in flight\n"
        "                           (default 5000)\n"
        "  -c, --config PATH        policy file (default %s/iomapd/iomapd.conf)\n"
        "  -l, --log-level LEVEL    error, warning, info (default) or debug\n"
        "  -v, --verbose            same as --log-level debug\n"
        "  -h, --help               this text\n"
        "  -V, --version            daemon, API and shim ABI versions\n"
        "\n"
        "Logs go to stderr (the journal, under systemd).  See iomapd(8).\n",
        RUNSTATEDIR, RUNSTATEDIR, RUNSTATEDIR, SYSCONFDIR);
}

static const struct iomapd_backend *
find_backend(const char *name)
{
    if (strcmp(name, "sim") == 0)
        return &backend_sim;
    if (strcmp(name, "sim-embedded") == 0)
        return &backend_sim_embedded;
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
        { "log-level", required_argument, NULL, 'l' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    struct iomapd *io = &iomapd;
    struct event *sigs[4];
    static const int signums[4] = { SIGINT, SIGTERM, SIGHUP, 0 };
    struct timeval tick = { 0, 100000 };
    char err[256];
    int c, rc;

    io->opt.sim_socket = RUNSTATEDIR "/iomapd/sim.sock";
    io->opt.emu_socket = RUNSTATEDIR "/iomapd/emulators.sock";
    io->opt.ctl_socket = RUNSTATEDIR "/iomapd/iomapd.sock";
    io->opt.config = SYSCONFDIR "/iomapd/iomapd.conf";
    io->opt.log_level = LOG_LVL_INFO;
    io->opt.stop_timeout_ms = 5000;
    io->emu_lfd = -1;
    io->notify_fd = -1;
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
        else
            fprintf(stderr, "iomapd: unknown backend '%s' (sim, sim-embedded or xen)\n",
                    io->opt.backend);
        return 2;
    }
    log_init("iomapd", io->opt.log_level);
    signal(SIGPIPE, SIG_IGN);

    core_init(&io->d, NULL, NULL, daemon_clock);
    io->d.backend = io;
    io->started_ns = iomapd_now_ns();
    io->base = event_base_new();
    if (io->base == NULL)
        fatalx("cannot create the event loop");
    /* The backend first: without a shim there is nothing to say but why. */
    rc = io->be->open(io, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "iomapd: %s backend: %s\n", io->be->name, err);
        return 1;
    }
    if (iomapd_load_policy(io, err, sizeof(err)) < 0) {
        fprintf(stderr, "iomapd: policy: %s\n", err);
        io->be->close(io);
        return 1;
    }
    if (emusock_init(io, io->opt.emu_socket, err, sizeof(err)) < 0) {
        fprintf(stderr, "iomapd: %s\n", err);
        return 1;
    }
    if (ctl_init(io, err, sizeof(err)) < 0) {
        fprintf(stderr, "iomapd: control socket: %s\n", err);
        emusock_fini(io);
        unlink(io->opt.emu_socket);
        return 1;
    }
    io->ev_notify = event_new(io->base, io->notify_fd, EV_READ | EV_PERSIST,
                              on_notify, io);
    io->ev_tick = event_new(io->base, -1, EV_PERSIST, on_tick, io);
    event_add(io->ev_notify, NULL);
    event_add(io->ev_tick, &tick);
    for (int i = 0; signums[i]; i++) {
        sigs[i] = evsignal_new(io->base, signums[i], on_signal, io);
        event_add(sigs[i], NULL);
    }
    /* Whatever happened before we came up, the dump tells. */
    core_resync(&io->d);
    iomapd_process(io);
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
    ctl_fini(io);
    emusock_fini(io);
    unlink(io->opt.emu_socket);
    for (int i = 0; signums[i]; i++)
        event_free(sigs[i]);
    event_free(io->ev_notify);
    event_free(io->ev_tick);
    log_info("stopped: %llu pages released, %llu in flight left to the shim",
             (unsigned long long)io->d.st.pages_released,
             (unsigned long long)(io->d.n_invalidating + io->d.n_flushing));
    core_fini(&io->d);
    io->be->close(io);
    event_base_free(io->base);
    return 0;
}
