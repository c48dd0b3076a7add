/* SPDX-License-Identifier: MIT */
/* The sim backend's ring end, shared with sim-embedded (backend_simemb.c). */
#ifndef IOMAP_BACKEND_SIM_H
#define IOMAP_BACKEND_SIM_H

#include <stddef.h>

#include "daemon/backend.h"
#include "shim/ring.h"

struct sim_be {
    struct backend    be;       /* first */
    struct iomap_ring ring;
    void  *region;
    size_t len;
    int    shm_fd, ev_fd, cmd_fd;
};

void  sim_be_kick(struct backend *be);
struct iomap_ring *sim_be_ring(struct backend *be);
int   sim_be_notify_fd(struct backend *be);
void  sim_be_notified(struct backend *be);

#endif
