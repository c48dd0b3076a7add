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
#include "daemon/log.h"

struct hc_conn {
    struct event *ev;
    int           fd;
    int           emu;          /* emulator this connection created, or -1 */
};

static struct sim sim;
static struct event_base *base;
static struct event *flush_timer;

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
arm_flush_timer(void)
{
    uint64_t due = sim_next_flush_due(&sim), now = now_ns();
    struct timeval tv = { 0, 0 };

    if (due == UINT64_MAX)
        return;
    if (due > now) {
        tv.tv_sec = (time_t)((due - now) / 1000000000u);
        tv.tv_usec = (suseconds_t)(((due - now) % 1000000000u) / 1000u);
    }
    evtimer_add(flush_timer, &tv);
}

static void
on_flush_timer(evutil_socket_t fd, short what, void *arg)
{
    sim_tick(&sim, now_ns());
    arm_flush_timer();
}

static void
after_call(void)
{
    sim.now_ns = now_ns();
    arm_flush_timer();
}

static void
fill_report(struct simhc_report *r)
{
    uint64_t maps = 0;

    for (int e = 0; e < SIM_MAX_EMUS; e++)
        if (sim.emus[e].used)
            maps += sim.emus[e].live;
    memset(r, 0, sizeof(*r));
    r->held_pages = sim_held_pages(&sim);
    r->violations = sim_violations(&sim);
    r->mappings = maps;
    r->free_pages = sim.nr_free;
    r->pages_removed = sim.st.pages_removed;
    r->pages_released = sim.st.pages_released;
    r->flushes_queued = sim.st.flushes_queued;
    r->flushes_done = sim.st.flushes_done;
    r->events_posted = sim.st.events_posted;
    r->events_lost = sim.st.events_lost;
    r->unmaps_refused = sim.st.unmaps_refused;
    r->forced_unmaps = sim.st.forced_unmaps;
    r->cmd_errors = sim.st.cmd_errors;
    snprintf(r->last_violation, sizeof(r->last_violation), "%.127s", sim.last_violation);
}

static int64_t
do_call(struct hc_conn *c, const struct simhc_req *q, struct simhc_resp *r)
{
    sim.now_ns = now_ns();
    switch (q->op) {
    case SIMHC_EMU_CREATE: {
        int rc;

        if (c->emu >= 0)
            return -EEXIST;
        rc = sim_emu_create(&sim, q->emu_domid, q->ioservid);
        if (rc >= 0)
            c->emu = rc;
        return rc < 0 ? rc : 0;
    }
    case SIMHC_MAP:
        return c->emu < 0 ? -EPERM :
               sim_iommu_map(&sim, c->emu, q->domid, q->gfn, q->bfn, q->nr,
                             (uint8_t)q->flags);
    case SIMHC_UNMAP:
        return c->emu < 0 ? -EPERM : sim_iommu_unmap(&sim, c->emu, q->bfn, q->nr);
    case SIMHC_FLUSH:
        return c->emu < 0 ? -EPERM : sim_iommu_flush(&sim, c->emu);
    case SIMHC_DOMAIN_CREATE:
        return sim_domain_create(&sim, q->domid, q->nr);
    case SIMHC_DOMAIN_DESTROY:
        return sim_domain_destroy(&sim, q->domid);
    case SIMHC_POPULATE:
        return sim_populate(&sim, q->domid, q->gfn, q->nr);
    case SIMHC_DECREASE:
        return sim_decrease_reservation(&sim, q->domid, q->gfn, q->nr);
    case SIMHC_QUERY:
        fill_report(&r->report);
        return 0;
    case SIMHC_CHECK: {
        int rc = sim_check_quiescent(&sim);

        fill_report(&r->report);
        return rc < 0 ? -EBUSY : 0;
    }
    default:
        return -EOPNOTSUPP;
    }
}

static void
on_hc(evutil_socket_t fd, short what, void *arg)
{
    struct hc_conn *c = arg;
    struct simhc_req q;
    struct simhc_resp r;
    ssize_t n = recv(fd, &q, sizeof(q), 0);

    if (n <= 0) {
        if (c->emu >= 0) {
            log_info("emulator %u:%u disconnected: its ioreq server is gone",
                     sim.emus[c->emu].emu_domid, sim.emus[c->emu].ioservid);
            sim_emu_crash(&sim, c->emu);
        }
        event_free(c->ev);
        close(c->fd);
        free(c);
        return;
    }
    memset(&r, 0, sizeof(r));
    r.magic = SIMHC_MAGIC;
    if (n != (ssize_t)sizeof(q) || q.magic != SIMHC_MAGIC)
        r.rc = -EINVAL;
    else
        r.rc = do_call(c, &q, &r);
    after_call();
    if (send(fd, &r, sizeof(r), MSG_NOSIGNAL) < 0)
        log_warn("%s: reply", __func__);
}

static void
on_hc_accept(evutil_socket_t lfd, short what, void *arg)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    struct hc_conn *c;

    if (fd < 0)
        return;
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return;
    }
    c->fd = fd;
    c->emu = -1;
    c->ev = event_new(base, fd, EV_READ | EV_PERSIST, on_hc, c);
    event_add(c->ev, NULL);
}

static void
on_attach(evutil_socket_t lfd, short what, void *arg)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    struct simhc_attach a = { SIMHC_MAGIC, (uint32_t)sim.region_len };
    int fds[3] = { sim.shm_fd, sim.ev_fd, sim.cmd_fd };
    char cbuf[CMSG_SPACE(sizeof(fds))];
    struct iovec iov = { &a, sizeof(a) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
    struct cmsghdr *cm;

    if (fd < 0)
        return;
    memset(cbuf, 0, sizeof(cbuf));
    cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(fds));
    memcpy(CMSG_DATA(cm), fds, sizeof(fds));
    if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
        log_warn("%s: sendmsg", __func__);
    else
        log_info("a daemon attached to the rings");
    close(fd);
}

static void
on_cmd(evutil_socket_t fd, short what, void *arg)
{
    sim.now_ns = now_ns();
    sim_process_cmds(&sim);
    arm_flush_timer();
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    event_base_loopexit(base, NULL);
}

static int
listen_on(const char *path)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(sun.sun_path))
        fatalx("socket path too long: %s", path);
    strcpy(sun.sun_path, path);
    unlink(path);
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        listen(fd, 16) < 0)
        fatal("cannot listen on %s", path);
    chmod(path, 0600);
    return fd;
}

/* ---- iomap-sim ctl ----------------------------------------------------------- */

static int
usage_ctl(void)
{
    fprintf(stderr,
        "usage: iomap-sim ctl SOCKET COMMAND [ARGS]\n"
        "  domain-create DOMID PAGES | domain-destroy DOMID\n"
        "  populate DOMID GFN NR | balloon DOMID GFN ORDER\n"
        "  report | check\n");
    return 2;
}

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
    struct event *ev_attach, *ev_hc, *ev_cmd, *ev_int, *ev_term;

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
    flush_timer = evtimer_new(base, on_flush_timer, NULL);
    ev_attach = event_new(base, listen_on(sock), EV_READ | EV_PERSIST, on_attach, NULL);
    ev_hc = event_new(base, listen_on(hcsock), EV_READ | EV_PERSIST, on_hc_accept, NULL);
    ev_cmd = event_new(base, sim.cmd_fd, EV_READ | EV_PERSIST, on_cmd, NULL);
    ev_int = evsignal_new(base, SIGINT, on_signal, NULL);
    ev_term = evsignal_new(base, SIGTERM, on_signal, NULL);
    event_add(ev_attach, NULL);
    event_add(ev_hc, NULL);
    event_add(ev_cmd, NULL);
    event_add(ev_int, NULL);
    event_add(ev_term, NULL);
    signal(SIGPIPE, SIG_IGN);
    log_info("simulated host: %" PRIu64 " frames, %u guests, flush latency %" PRIu64
             " us; daemon socket %s, hypercall socket %s", cfg.nr_pages, guests,
             cfg.flush_latency_ns / 1000, sock, hcsock);
    event_base_dispatch(base);
    unlink(sock);
    unlink(hcsock);
    log_info("exiting: %" PRIu64 " pages held, %" PRIu64 " violations",
             sim_held_pages(&sim), sim_violations(&sim));
    event_free(ev_attach);
    event_free(ev_hc);
    event_free(ev_cmd);
    event_free(ev_int);
    event_free(ev_term);
    event_free(flush_timer);
    event_base_free(base);
    sim_fini(&sim);
    return 0;
}
