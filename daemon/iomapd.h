/* SPDX-License-Identifier: MIT */
/*
 * The iomapd process: its event loop, its backend and its sockets, around
 * the books of daemon/core/core_priv.h.
 */
#ifndef IOMAPD_H
#define IOMAPD_H

#include <stdint.h>
#include <sys/queue.h>

#include "daemon/core/core_priv.h"

struct event_base;
struct event;
struct iomapd;

struct iomapd_backend {
    const char *name;
    /* Attach to the shim; fill d->ring; return 0 or -errno with err set. */
    int  (*open)(struct iomapd *io, char *err, size_t errlen);
    void (*close)(struct iomapd *io);
};

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
};

struct iomapd {
    struct iomapd_opts      opt;
    struct event_base      *base;
    struct core           d;
    const struct iomapd_backend *be;
    void                   *be_priv;
    int                     notify_fd;  /* shim -> daemon kick, or -1 */
    struct event           *ev_notify;
    struct event           *ev_tick;
    int                     emu_lfd;
    struct event           *ev_emu_accept;
    uint64_t                started_ns;
    void                   *ctl;        /* json-api control server */
    int                     stopping;   /* SIGTERM seen: draining */
    uint64_t                stop_deadline;
    uint64_t                wd_usec;    /* systemd watchdog, 0 if off */
    uint64_t                wd_last, status_last;
};

uint64_t iomapd_now_ns(void);
/*
 * (Re)load the policy from opt.config: 0 loaded, 1 no file (built-in
 * defaults), -1 refused (err says "path:line: why"; the old one stays).
 */
int      iomapd_load_policy(struct iomapd *io, char *err, size_t errlen);
/* Run the books after anything happened (ring, ioreq answers, sockets). */
void     iomapd_process(struct iomapd *io);

/* Emulator registration socket (daemon/emusock.c). */
int      emusock_init(struct iomapd *io, const char *path, char *err, size_t errlen);
void     emusock_fini(struct iomapd *io);

extern const struct iomapd_backend backend_sim;
extern const struct iomapd_backend backend_sim_embedded;
#ifdef HAVE_XEN_BACKEND
extern const struct iomapd_backend backend_xen;
#endif

#endif
