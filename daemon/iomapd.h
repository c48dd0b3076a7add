/* SPDX-License-Identifier: MIT */
/*
 * The iomapd process: its one event loop, its backend, its sockets, around
 * the core of daemon/core/core.h.  Private to daemon/.
 */
#ifndef IOMAPD_H
#define IOMAPD_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/backend.h"
#include "daemon/core/core.h"

struct event_base;
struct event;
struct ctl;
struct emusock;

struct iomapd_opts {
    const char *backend;
    const char *sim_socket;
    int         sim_socket_set;     /* given on the command line */
    const char *emu_socket;
    const char *ctl_socket;
    const char *ctl_group;          /* --socket-group: may read */
    const char *ctl_admin_group;    /* --admin-group: may also change */
    unsigned    stop_timeout_ms;    /* SIGTERM: wait for pages in flight */
    const char *config;
    int         log_level;
    /* iomapd-sim only (daemon/benchhooks.c): make bench's hooks. */
    uint64_t    bench_preload;
    const char *bench_probe;
};

struct iomapd {
    struct iomapd_opts      opt;
    struct event_base      *base;
    struct core            *core;
    const struct backend_ops *be;
    struct backend         *bep;
    struct event           *ev_notify;
    struct event           *ev_tick;
    struct event           *ev_run;     /* deferred: run the core once */
    struct emusock         *emusock;
    struct ctl             *ctl;
    uint64_t                started_ns;
    int                     stopping;   /* SIGTERM seen: draining */
    uint64_t                stop_deadline;
    uint64_t                wd_usec;    /* systemd watchdog, 0 if off */
    uint64_t                wd_last, status_last;
};

/* Run the core soon: one deferred event, whoever asks and how often. */
void     iomapd_request_run(struct iomapd *io);

/* iomapd-sim's bench hooks (daemon/benchhooks.c): 0 or -ENOMEM. */
int      bench_hooks_start(struct iomapd *io, uint64_t preload, const char *probe_path);
void     bench_hooks_stop(void);

/* The emulator registration socket (daemon/emusock.c). */
struct emusock *emusock_new(struct iomapd *io, const char *path, char *err,
                            size_t errlen);
void     emusock_free(struct emusock *es);
/* The policy's kill-emulator step: SIGKILL to the registered process. */
void     emusock_kill(struct emusock *es, const struct core_emu_id *id);
/* Its ioreq server is gone: close its registration (from the loop). */
void     emusock_forget(struct emusock *es, const struct core_emu_id *id);

#endif
