/* SPDX-License-Identifier: MIT */
/*
 * The port every backend implements: how the daemon reaches a shim.  A
 * backend hands over the shared ring, an fd that becomes readable when
 * the shim posted events (watched on the daemon's one loop: no thread),
 * and the few hypervisor operations the daemon needs.
 */
#ifndef IOMAP_BACKEND_H
#define IOMAP_BACKEND_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct iomap_ring;
struct backend_ops;

/* Each backend embeds this first in its own struct. */
struct backend {
    const struct backend_ops *ops;
};

struct backend_args {
    struct event_base *base;
    const char        *sim_socket;      /* sim: iomap-sim's daemon socket;
                                           sim-embedded: the hypercall socket */
    int                sim_socket_set;  /* given on the command line */
};

struct backend_ops {
    const char *name;
    /* Attach to the shim: 0 and *out, or -errno with a one-line err. */
    int   (*open)(const struct backend_args *a, struct backend **out,
                  char *err, size_t errlen);
    struct iomap_ring *(*ring)(struct backend *b);
    /* Readable when the shim posted events; notified() consumes it. */
    int   (*notify_fd)(struct backend *b);
    void  (*notified)(struct backend *b);
    /* Tell the shim that commands wait on the ring. */
    void  (*kick)(struct backend *b);
    /* The policy's last step: 0, or -errno (-EOPNOTSUPP: cannot). */
    int   (*crash_guest)(struct backend *b, uint16_t domid);
    /* 1, 0, or -errno (-EOPNOTSUPP: cannot tell). */
    int   (*domain_exists)(struct backend *b, uint16_t domid);
    void  (*close)(struct backend *b);
};

extern const struct backend_ops backend_sim;
#ifdef HAVE_SIM_EMBEDDED
extern const struct backend_ops backend_sim_embedded;
#endif
#ifdef HAVE_XEN_BACKEND
extern const struct backend_ops backend_xen;
#endif

#endif
