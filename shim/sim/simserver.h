/* SPDX-License-Identifier: MIT */
/*
 * The simulated hypervisor's sockets and timers on a libevent loop.
 */
#ifndef IOMAP_SIMSERVER_H
#define IOMAP_SIMSERVER_H

#include <sys/queue.h>

#include "shim/sim/sim.h"
#include "shim/sim/simhc.h"

struct event_base;
struct event;
struct acceptor;
struct hc_conn;

struct simserver {
    struct sim        *sim;
    struct event_base *base;
    struct event      *flush_timer;
    struct acceptor   *acc_attach;  /* NULL when embedded (util/listen.h) */
    struct acceptor   *acc_hc;
    struct event      *ev_cmd;
    int                attach_fd, hc_fd;
    const char        *attach_path, *hc_path;
    LIST_HEAD(, hc_conn) conns;     /* hypercall connections (freed at fini) */
};

/*
 * Listen for emulators and drivers on hc_path and, unless attach_path is
 * NULL (embedded: the daemon shares the sim's memory), for daemons on
 * attach_path (util/listen.h: a path that is not a socket, or where a live
 * process answers, is refused and left alone; a stale socket replaced).
 * 0 or -errno with err set.
 */
int  simserver_init(struct simserver *ss, struct event_base *base,
                    struct sim *sim, const char *attach_path,
                    const char *hc_path, char *err, size_t errlen);
void simserver_fini(struct simserver *ss);
void simserver_report(const struct sim *sim, struct simhc_report *r);

#endif
