/* SPDX-License-Identifier: MIT */
/*
 * sim-embedded: the simulated hypervisor runs in this process, on the
 * daemon's own loop.  The rings are the same shared memory and eventfds as
 * with iomap-sim (so the daemon code cannot tell the difference); emulators
 * and drivers use the simulated hypercall socket at --sim-socket.  The
 * host has 1 GiB of frames and device-TLB flushes of 100 us; guests are
 * created with `iomap-sim ctl SOCKET domain-create DOMID PAGES`.
 *
 * Only iomapd-sim links it: the production iomapd carries no simulator.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/backend_sim.h"
#include "util/log.h"
#include "shim/sim/sim.h"
#include "shim/sim/simserver.h"

struct sim_emb {
    struct sim_be    be;        /* first: the sim backend's calls use it */
    struct sim       sim;
    struct simserver ss;
};

static int
sim_embedded_open(const struct backend_args *args, struct backend **out,
                  char *err, size_t errlen)
{
    struct sim_config cfg = { .nr_pages = 262144, .ev_slots = 65536,
                              .cmd_slots = 4096, .flush_latency_ns = 100000,
                              .shared = 1 };
    struct sim_emb *b = calloc(1, sizeof(*b));
    const char *path = args->sim_socket_set ? args->sim_socket :
                       RUNSTATEDIR "/iomapd/sim-hc.sock";
    int rc;

    if (b == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    rc = sim_init(&b->sim, &cfg);
    if (rc < 0) {
        snprintf(err, errlen, "cannot set up the simulated host: %s", strerror(-rc));
        sim_fini(&b->sim);
        free(b);
        return rc;
    }
    rc = simserver_init(&b->ss, args->base, &b->sim, NULL, path, err, errlen);
    if (rc < 0) {
        sim_fini(&b->sim);
        free(b);
        return rc;
    }
    /* Attach as any daemon would: the header is checked the same way. */
    rc = iomap_ring_attach(&b->be.ring, b->sim.region, b->sim.region_len, err, errlen);
    if (rc < 0) {
        simserver_fini(&b->ss);
        sim_fini(&b->sim);
        free(b);
        return rc;
    }
    b->be.shm_fd = -1;
    b->be.ev_fd = b->sim.ev_fd;
    b->be.cmd_fd = b->sim.cmd_fd;
    b->be.be.ops = &backend_sim_embedded;
    *out = &b->be.be;
    log_info("simulated hypervisor embedded: %" PRIu64 " frames; hypercalls on %s",
             cfg.nr_pages, path);
    return 0;
}

static void
sim_embedded_close(struct backend *be)
{
    struct sim_emb *b = (struct sim_emb *)be;

    simserver_fini(&b->ss);
    sim_fini(&b->sim);
    free(b);
}

const struct backend_ops backend_sim_embedded = {
    .name = "sim-embedded",
    .open = sim_embedded_open,
    .ring = sim_be_ring,
    .notify_fd = sim_be_notify_fd,
    .notified = sim_be_notified,
    .kick = sim_be_kick,
    .close = sim_embedded_close,
};
