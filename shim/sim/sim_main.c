/* SPDX-License-Identifier: MIT */
/*
 * iomap-sim: the simulated hypervisor as its own process.
 *
 *   iomap-sim [options]                 run the simulated host
 *   iomap-sim ctl SOCKET COMMAND ...    drive a running one (guest and
 *                                        toolstack actions, ground truth)
 *
 * iomapd attaches on --socket and receives the ring region and the two
 * eventfds; emulator processes and test drivers make "hypercalls" on
 * --hypercall-socket (shim/sim/simhc.h).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "shim/sim/sim.h"
#include "shim/sim/simhc.h"
#include "shim/sim/simserver.h"
#include "util/log.h"

static struct sim sim;
static struct event_base *base;

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    event_base_loopexit(base, NULL);
}

/* ---- iomap-sim ctl ----------------------------------------------------------- */

static uint64_t
num(const char *s)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno || *end || end == s)
        fatalx("not a number: '%s'", s);
    return v;
}

static int
usage_ctl(void)
{
    fprintf(stderr,
        "usage: iomap-sim ctl SOCKET COMMAND [ARGS]\n"
        "  domain-create DOMID PAGES | domain-destroy DOMID\n"
        "  populate DOMID GFN NR | balloon DOMID GFN ORDER\n"
        "  report | check\n"
        "  wait [FIELD VALUE] [SECONDS]   wait (default 10 s) until the simulator\n"
        "                                 answers, and its report has FIELD = VALUE\n");
    return 2;
}

/* A field of the report by name, or -1. */
static int
report_field(const struct simhc_report *p, const char *name, uint64_t *v)
{
    const struct { const char *n; uint64_t v; } f[] = {
        { "held_pages", p->held_pages }, { "violations", p->violations },
        { "mappings", p->mappings }, { "free_pages", p->free_pages },
        { "pages_removed", p->pages_removed }, { "pages_released", p->pages_released },
        { "flushes_queued", p->flushes_queued }, { "flushes_done", p->flushes_done },
        { "events_posted", p->events_posted }, { "events_lost", p->events_lost },
        { "unmaps_refused", p->unmaps_refused }, { "forced_unmaps", p->forced_unmaps },
        { "cmd_errors", p->cmd_errors },
    };

    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        if (!strcmp(f[i].n, name)) {
            *v = f[i].v;
            return 0;
        }
    return -1;
}

/*
 * iomap-sim ctl SOCK wait [FIELD VALUE] [SECONDS]: for scripts and the
 * README, which start the processes in the background: poll until the
 * simulator answers (and FIELD of its report is VALUE).  0, or 1 with
 * the last report on stderr at the deadline.
 */
static int
ctl_wait(const char *sock, int argc, char **argv)
{
    const char *field = NULL;
    uint64_t want = 0, have = 0, secs = 10;
    struct simhc_report last = { 0 };
    int answered = 0;

    if (argc >= 2) {
        struct simhc_report dummy = { 0 };

        field = argv[0];
        if (report_field(&dummy, field, &have) < 0) {
            fprintf(stderr, "iomap-sim ctl: wait: no field '%s' in the report\n", field);
            return 2;
        }
        want = num(argv[1]);
        argc -= 2;
        argv += 2;
    }
    if (argc == 1)
        secs = num(argv[0]);
    else if (argc != 0)
        return usage_ctl();
    for (uint64_t i = 0; i <= secs * 20; i++) {
        struct simhc_req q = { .op = SIMHC_QUERY };
        struct simhc_resp r;
        int fd = simhc_connect(sock);

        if (fd >= 0) {
            int64_t rc = simhc_call(fd, &q, &r);

            close(fd);
            if (rc >= 0) {
                answered = 1;
                last = r.report;
                if (field == NULL)
                    return 0;
                report_field(&last, field, &have);
                if (have == want)
                    return 0;
            }
        }
        if (i < secs * 20) {
            struct timespec ts = { 0, 50000000 };

            nanosleep(&ts, NULL);
        }
    }
    if (!answered)
        fprintf(stderr, "iomap-sim ctl: %s did not answer within %llu s\n", sock,
                (unsigned long long)secs);
    else
        fprintf(stderr, "iomap-sim ctl: %s is %llu, not %llu, after %llu s\n", field,
                (unsigned long long)have, (unsigned long long)want,
                (unsigned long long)secs);
    return 1;
}


static int
ctl_main(int argc, char **argv)
{
    struct simhc_req q = { 0 };
    struct simhc_resp r;
    const char *cmd;
    int fd;
    int64_t rc;

    if (argc < 2)
        return usage_ctl();
    cmd = argv[1];
    if (!strcmp(cmd, "wait"))
        return ctl_wait(argv[0], argc - 2, argv + 2);
    if (!strcmp(cmd, "domain-create") && argc == 4) {
        q.op = SIMHC_DOMAIN_CREATE; q.domid = (uint16_t)num(argv[2]); q.nr = (uint32_t)num(argv[3]);
    } else if (!strcmp(cmd, "domain-destroy") && argc == 3) {
        q.op = SIMHC_DOMAIN_DESTROY; q.domid = (uint16_t)num(argv[2]);
    } else if (!strcmp(cmd, "populate") && argc == 5) {
        q.op = SIMHC_POPULATE; q.domid = (uint16_t)num(argv[2]);
        q.gfn = num(argv[3]); q.nr = (uint32_t)num(argv[4]);
    } else if (!strcmp(cmd, "balloon") && argc == 5) {
        q.op = SIMHC_DECREASE; q.domid = (uint16_t)num(argv[2]);
        q.gfn = num(argv[3]); q.nr = (uint32_t)num(argv[4]);
    } else if (!strcmp(cmd, "report") && argc == 2) {
        q.op = SIMHC_QUERY;
    } else if (!strcmp(cmd, "check") && argc == 2) {
        q.op = SIMHC_CHECK;
    } else {
        return usage_ctl();
    }
    fd = simhc_connect(argv[0]);
    if (fd < 0) {
        fprintf(stderr, "iomap-sim ctl: cannot connect to %s: %s\n", argv[0], strerror(-fd));
        return 1;
    }
    rc = simhc_call(fd, &q, &r);
    close(fd);
    if (q.op == SIMHC_QUERY || q.op == SIMHC_CHECK) {
        const struct simhc_report *p = &r.report;

        printf("{\"held_pages\":%" PRIu64 ",\"violations\":%" PRIu64
               ",\"mappings\":%" PRIu64 ",\"free_pages\":%" PRIu64
               ",\"pages_removed\":%" PRIu64 ",\"pages_released\":%" PRIu64
               ",\"flushes_queued\":%" PRIu64 ",\"flushes_done\":%" PRIu64
               ",\"events_posted\":%" PRIu64 ",\"events_lost\":%" PRIu64
               ",\"unmaps_refused\":%" PRIu64 ",\"forced_unmaps\":%" PRIu64
               ",\"cmd_errors\":%" PRIu64 ",\"rc\":%" PRId64 "}\n",
               p->held_pages, p->violations, p->mappings, p->free_pages,
               p->pages_removed, p->pages_released, p->flushes_queued,
               p->flushes_done, p->events_posted, p->events_lost,
               p->unmaps_refused, p->forced_unmaps, p->cmd_errors, rc);
        if (p->violations)
            fprintf(stderr, "iomap-sim: last violation: %s\n", p->last_violation);
    } else {
        printf("%" PRId64 "\n", rc);
    }
    return rc < 0 ? 1 : 0;
}

static void
usage(FILE *f)
{
    fprintf(f,
        "usage: iomap-sim [options]\n"
        "       iomap-sim ctl SOCKET COMMAND [ARGS]\n"
        "The simulated hypervisor of iomapd.\n"
        "  -s, --socket PATH            daemon attach socket (default %s/iomapd/sim.sock)\n"
        "  -H, --hypercall-socket PATH  emulator/driver socket (default %s/iomapd/sim-hc.sock)\n"
        "  -p, --pages N                host frames (default 262144)\n"
        "  -g, --guests N               create guests 1..N at start (default 0)\n"
        "  -G, --guest-pages N          pages per guest (default 16384)\n"
        "  -l, --flush-latency-us N     device-TLB flush latency (default 100)\n"
        "  -r, --ring-slots N           event ring slots, power of two (default 65536)\n"
        "  -v, --verbose                more logging\n"
        "  -h, --help | -V, --version\n", RUNSTATEDIR, RUNSTATEDIR);
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "socket", required_argument, NULL, 's' },
        { "hypercall-socket", required_argument, NULL, 'H' },
        { "pages", required_argument, NULL, 'p' },
        { "guests", required_argument, NULL, 'g' },
        { "guest-pages", required_argument, NULL, 'G' },
        { "flush-latency-us", required_argument, NULL, 'l' },
        { "ring-slots", required_argument, NULL, 'r' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *sock = RUNSTATEDIR "/iomapd/sim.sock";
    const char *hcsock = RUNSTATEDIR "/iomapd/sim-hc.sock";
    struct sim_config cfg = { .nr_pages = 262144, .ev_slots = 65536,
                              .cmd_slots = 4096, .flush_latency_ns = 100000,
                              .shared = 1 };
    unsigned guests = 0;
    uint64_t guest_pages = 16384;
    int c, level = LOG_LVL_INFO, rc;
    struct event *ev_int, *ev_term;
    struct simserver ss;
    char err[256];

    if (argc > 1 && strcmp(argv[1], "ctl") == 0)
        return ctl_main(argc - 2, argv + 2);
    while ((c = getopt_long(argc, argv, "s:H:p:g:G:l:r:vhV", opts, NULL)) != -1) {
        switch (c) {
        case 's': sock = optarg; break;
        case 'H': hcsock = optarg; break;
        case 'p': cfg.nr_pages = num(optarg); break;
        case 'g': guests = (unsigned)num(optarg); break;
        case 'G': guest_pages = num(optarg); break;
        case 'l': cfg.flush_latency_ns = num(optarg) * 1000; break;
        case 'r': cfg.ev_slots = (uint32_t)num(optarg); break;
        case 'v': level = LOG_LVL_DEBUG; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("iomap-sim %s (shim ABI %d.%d)\n", PACKAGE_VERSION,
                         IOMAP_ABI_VERSION_MAJOR, IOMAP_ABI_VERSION_MINOR); return 0;
        default:  usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "iomap-sim: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    log_init("iomap-sim", level);
    rc = sim_init(&sim, &cfg);
    if (rc < 0)
        fatalx("cannot set up the simulated host: %s", strerror(-rc));
    for (unsigned g = 1; g <= guests; g++)
        if ((rc = sim_domain_create(&sim, (uint16_t)g, guest_pages)) < 0)
            fatalx("cannot create guest %u: %s", g, strerror(-rc));
    base = event_base_new();
    if (base == NULL)
        fatalx("cannot create the event loop");
    if (simserver_init(&ss, base, &sim, sock, hcsock, err, sizeof(err)) < 0)
        fatalx("%s", err);
    ev_int = evsignal_new(base, SIGINT, on_signal, NULL);
    ev_term = evsignal_new(base, SIGTERM, on_signal, NULL);
    event_add(ev_int, NULL);
    event_add(ev_term, NULL);
    signal(SIGPIPE, SIG_IGN);
    log_info("simulated host: %" PRIu64 " frames, %u guests, flush latency %" PRIu64
             " us; daemon socket %s, hypercall socket %s", cfg.nr_pages, guests,
             cfg.flush_latency_ns / 1000, sock, hcsock);
    event_base_dispatch(base);
    log_info("exiting: %" PRIu64 " pages held, %" PRIu64 " violations",
             sim_held_pages(&sim), sim_violations(&sim));
    simserver_fini(&ss);
    event_free(ev_int);
    event_free(ev_term);
    event_base_free(base);
    sim_fini(&sim);
    return 0;
}
