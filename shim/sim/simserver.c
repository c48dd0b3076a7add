/* SPDX-License-Identifier: MIT */
/*
 * The simulated hypervisor's sockets and timers on a libevent loop: the
 * daemon attach socket (ring memfd and eventfds by SCM_RIGHTS), the
 * simulated hypercall socket for emulators and drivers, the command
 * eventfd and the device-TLB flush timer.  Used by iomap-sim, and by
 * iomapd when it runs the simulated hypervisor embedded.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "shim/sim/simserver.h"
#include "util/listen.h"
#include "util/log.h"

struct hc_conn {
    struct simserver *ss;
    struct event     *ev;
    int               fd;
    int               emu;      /* emulator this connection created, or -1 */
    LIST_ENTRY(hc_conn) link;
};

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
arm_flush_timer(struct simserver *ss)
{
    uint64_t due = sim_next_flush_due(ss->sim), now = now_ns();
    struct timeval tv = { 0, 0 };

    if (due == UINT64_MAX)
        return;
    if (due > now) {
        tv.tv_sec = (time_t)((due - now) / 1000000000u);
        tv.tv_usec = (suseconds_t)(((due - now) % 1000000000u) / 1000u);
    }
    evtimer_add(ss->flush_timer, &tv);
}

static void
on_flush_timer(evutil_socket_t fd, short what, void *arg)
{
    struct simserver *ss = arg;

    sim_tick(ss->sim, now_ns());
    arm_flush_timer(ss);
}

void
simserver_report(const struct sim *sim, struct simhc_report *r)
{
    uint64_t maps = 0;

    for (int e = 0; e < SIM_MAX_EMUS; e++)
        if (sim->emus[e].used)
            maps += sim->emus[e].live;
    memset(r, 0, sizeof(*r));
    r->held_pages = sim_held_pages(sim);
    r->violations = sim_violations(sim);
    r->mappings = maps;
    r->free_pages = sim->nr_free;
    r->pages_removed = sim->st.pages_removed;
    r->pages_released = sim->st.pages_released;
    r->flushes_queued = sim->st.flushes_queued;
    r->flushes_done = sim->st.flushes_done;
    r->events_posted = sim->st.events_posted;
    r->events_lost = sim->st.events_lost;
    r->unmaps_refused = sim->st.unmaps_refused;
    r->forced_unmaps = sim->st.forced_unmaps;
    r->cmd_errors = sim->st.cmd_errors;
    snprintf(r->last_violation, sizeof(r->last_violation), "%.127s",
             sim->last_violation);
}

static int64_t
do_call(struct hc_conn *c, const struct simhc_req *q, struct simhc_resp *r)
{
    struct sim *sim = c->ss->sim;

    sim->now_ns = now_ns();
    switch (q->op) {
    case SIMHC_EMU_CREATE: {
        int rc;

        if (c->emu >= 0)
            return -EEXIST;
        /* As Xen's create_ioreq_server: the id comes back. */
        rc = sim_emu_create(sim, q->emu_domid, q->domid);
        if (rc < 0)
            return rc;
        c->emu = rc;
        return sim->emus[rc].ioservid;
    }
    case SIMHC_MAP:
        return c->emu < 0 ? -EPERM :
               sim_iommu_map(sim, c->emu, q->domid, q->gfn, q->bfn, q->nr,
                             (uint8_t)q->flags);
    case SIMHC_UNMAP:
        return c->emu < 0 ? -EPERM : sim_iommu_unmap(sim, c->emu, q->bfn, q->nr);
    case SIMHC_FLUSH:
        return c->emu < 0 ? -EPERM : sim_iommu_flush(sim, c->emu);
    case SIMHC_DOMAIN_CREATE:
        return sim_domain_create(sim, q->domid, q->nr);
    case SIMHC_DOMAIN_DESTROY:
        return sim_domain_destroy(sim, q->domid);
    case SIMHC_POPULATE:
        return sim_populate(sim, q->domid, q->gfn, q->nr);
    case SIMHC_DECREASE:
        return sim_decrease_reservation(sim, q->domid, q->gfn, q->nr);
    case SIMHC_QUERY:
        simserver_report(sim, &r->report);
        return 0;
    case SIMHC_CHECK: {
        int rc = sim_check_quiescent(sim);

        simserver_report(sim, &r->report);
        return rc < 0 ? -EBUSY : 0;
    }
    default:
        return -EOPNOTSUPP;
    }
}

/* The connection ends; an emulator's ioreq server goes with it. */
static void
hc_close(struct hc_conn *c)
{
    struct sim *sim = c->ss->sim;

    if (c->emu >= 0) {
        log_info("emulator %u:%u:%u disconnected: its ioreq server is gone",
                 sim->emus[c->emu].emu_domid, sim->emus[c->emu].target,
                 sim->emus[c->emu].ioservid);
        sim_emu_crash(sim, c->emu);
    }
    LIST_REMOVE(c, link);
    event_free(c->ev);
    close(c->fd);
    free(c);
}

static void
on_hc(evutil_socket_t fd, short what, void *arg)
{
    struct hc_conn *c = arg;
    struct sim *sim = c->ss->sim;
    struct simhc_req q;
    struct simhc_resp r;
    ssize_t n = recv(fd, &q, sizeof(q), 0);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;                 /* the socket is non-blocking */
    if (n <= 0) {
        hc_close(c);
        return;
    }
    memset(&r, 0, sizeof(r));
    r.magic = SIMHC_MAGIC;
    if (n != (ssize_t)sizeof(q) || q.magic != SIMHC_MAGIC)
        r.rc = -EINVAL;
    else
        r.rc = do_call(c, &q, &r);
    sim->now_ns = now_ns();
    arm_flush_timer(c->ss);
    /*
     * Non-blocking: a caller that never reads its replies (about a
     * thousand of them queued) cannot stop the loop; it is hung up on.
     */
    if (send(fd, &r, sizeof(r), MSG_NOSIGNAL) < 0) {
        log_warn("%s: reply", __func__);
        if (errno == EAGAIN)
            hc_close(c);
    }
}

static void
on_hc_accept(int fd, const struct listen_peer *peer, void *arg)
{
    struct simserver *ss = arg;
    struct hc_conn *c;

    (void)peer;
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return;
    }
    c->ss = ss;
    c->fd = fd;
    c->emu = -1;
    c->ev = event_new(ss->base, fd, EV_READ | EV_PERSIST, on_hc, c);
    if (c->ev == NULL) {
        close(fd);
        free(c);
        return;
    }
    event_add(c->ev, NULL);
    LIST_INSERT_HEAD(&ss->conns, c, link);
}

static void
on_attach(int fd, const struct listen_peer *peer, void *arg)
{
    struct simserver *ss = arg;
    struct sim *sim = ss->sim;
    struct simhc_attach a = { SIMHC_MAGIC, (uint32_t)sim->region_len };
    int fds[3] = { sim->shm_fd, sim->ev_fd, sim->cmd_fd };
    char cbuf[CMSG_SPACE(sizeof(fds))];
    struct iovec iov = { &a, sizeof(a) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
    struct cmsghdr *cm;

    (void)peer;
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
    struct simserver *ss = arg;

    ss->sim->now_ns = now_ns();
    sim_process_cmds(ss->sim);
    arm_flush_timer(ss);
}

/* A regular file, a live socket: refused; a stale one: replaced. */
static int
listen_on(const char *path, const char *what, char *err, size_t errlen)
{
    struct listen_opts o = {
        .type = SOCK_SEQPACKET, .mode = 0600, .backlog = 16, .what = what,
        .owner = "simulated hypervisor",
    };

    return listen_unix(path, &o, err, errlen);
}

int
simserver_init(struct simserver *ss, struct event_base *base, struct sim *sim,
               const char *attach_path, const char *hc_path, char *err,
               size_t errlen)
{
    int rc;

    memset(ss, 0, sizeof(*ss));
    ss->sim = sim;
    ss->base = base;
    ss->attach_fd = ss->hc_fd = -1;
    LIST_INIT(&ss->conns);
    ss->hc_fd = listen_on(hc_path, "hypercall", err, errlen);
    if (ss->hc_fd < 0) {
        rc = ss->hc_fd;
        ss->hc_fd = -1;
        return rc;
    }
    ss->hc_path = hc_path;
    if (attach_path) {
        ss->attach_fd = listen_on(attach_path, "daemon attach", err, errlen);
        if (ss->attach_fd < 0) {
            rc = ss->attach_fd;
            ss->attach_fd = -1;
            simserver_fini(ss);     /* removes the hypercall socket: ours */
            return rc;
        }
        ss->attach_path = attach_path;
        /* Backs off (not spins) when descriptors run out. */
        ss->acc_attach = acceptor_new(base, ss->attach_fd, "daemon attach",
                                      on_attach, ss);
        if (ss->acc_attach == NULL)
            goto nomem;
    }
    ss->flush_timer = evtimer_new(base, on_flush_timer, ss);
    ss->acc_hc = acceptor_new(base, ss->hc_fd, "hypercall", on_hc_accept, ss);
    ss->ev_cmd = event_new(base, sim->cmd_fd, EV_READ | EV_PERSIST, on_cmd, ss);
    if (ss->flush_timer == NULL || ss->acc_hc == NULL || ss->ev_cmd == NULL)
        goto nomem;
    event_add(ss->ev_cmd, NULL);
    return 0;

nomem:
    snprintf(err, errlen, "out of memory");
    simserver_fini(ss);
    return -ENOMEM;
}

void
simserver_fini(struct simserver *ss)
{
    struct hc_conn *c;

    while ((c = LIST_FIRST(&ss->conns)) != NULL) {
        LIST_REMOVE(c, link);
        event_free(c->ev);
        close(c->fd);
        free(c);
    }
    acceptor_free(ss->acc_attach);
    acceptor_free(ss->acc_hc);
    if (ss->ev_cmd)
        event_free(ss->ev_cmd);
    if (ss->flush_timer)
        event_free(ss->flush_timer);
    if (ss->attach_fd >= 0) {
        close(ss->attach_fd);
        unlink(ss->attach_path);
    }
    if (ss->hc_fd >= 0) {
        close(ss->hc_fd);
        unlink(ss->hc_path);
    }
    memset(ss, 0, sizeof(*ss));
    ss->attach_fd = ss->hc_fd = -1;
}
