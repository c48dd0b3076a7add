/* SPDX-License-Identifier: MIT */
/*
 * A simulated host in one process, on a virtual clock: the simulated
 * hypervisor, the daemon's books (the real daemon code), and model
 * emulators that talk to the daemon through the real IOREQ channel and
 * the emulator client library.  Used by the demo, the randomized test and
 * the lifecycle tests; the three-process set-up (iomapd, iomap-sim, an
 * emulator) is exercised by tests/test_integration.sh.
 */
#ifndef IOMAP_WORLD_H
#define IOMAP_WORLD_H

#include <stdint.h>

#include "shim/sim/sim.h"
#include "daemon/core/core.h"
#include "util/hmap.h"
#include "ioreq/iomap-emu.h"

#define WORLD_MAX_EMUS    8
#define WORLD_MAX_TARGETS 4

struct pending_answer {
    struct iomap_emu_req req;
    uint64_t due;
};

/* Misbehaviours a model emulator can be given. */
#define ME_IGNORE_INVALIDATES  (1u << 0)  /* never answers              */
#define ME_ANSWER_NO_UNMAP     (1u << 1)  /* answers, keeps its mappings */

struct model_emu {
    int       sim_idx;          /* index in sim.emus */
    uint16_t  emu_domid, ioservid;
    uint16_t  targets[WORLD_MAX_TARGETS];
    int       ntargets;
    int       legacy;           /* only knows the global invalidate */
    unsigned  misbehave;
    uint64_t  answer_delay_ns;
    struct iomap_emu *client;
    struct hmap mapped;         /* bfn -> 1 */
    struct pending_answer *pend;
    uint32_t  npend, pendcap;
    /* counted */
    uint64_t  maps, unmaps_invalidate, needless, answers;
};

struct world {
    struct sim    sim;
    struct core  *core;       /* the real books, on the virtual clock */
    uint64_t      now;
    struct model_emu emus[WORLD_MAX_EMUS];
    int           nemus;
    uint64_t      i5_mismatches;
};

int  world_init(struct world *w, uint64_t host_pages, uint64_t flush_latency_ns,
                uint32_t ev_slots);
void world_fini(struct world *w);
int  world_add_emu(struct world *w, uint16_t emu_domid, uint16_t ioservid,
                   int legacy, uint64_t answer_delay_ns);
int  world_emu_serves(struct world *w, int me, uint16_t domid);
/* bfn an emulator uses for a gfn of one of its targets. */
uint64_t world_bfn(const struct model_emu *m, uint16_t domid, uint64_t gfn);
/* Map (what is not mapped yet) / unmap (what is mapped) of a gfn range. */
int  world_map(struct world *w, int me, uint16_t domid, uint64_t gfn, uint32_t nr);
int  world_unmap(struct world *w, int me, uint16_t domid, uint64_t gfn, uint32_t nr);
int  world_is_mapped(const struct world *w, int me, uint16_t domid, uint64_t gfn);
/* Run daemon, shim commands and emulators until nothing moves. */
void world_settle(struct world *w);
/* Advance the clock by dt (completing due flushes and answers). */
void world_advance(struct world *w, uint64_t dt_ns);
/* The emulator process dies (its ioreq server goes; the shim keeps its
 * mappings until the daemon force-unmaps them). */
int  world_crash_emu(struct world *w, int me);
/* A new process takes the same identity and registers again. */
int  world_restart_emu(struct world *w, int me);
/* Restart the daemon's books from scratch (as after SIGKILL + restart). */
int  world_restart_daemon(struct world *w);
/* I5: the daemon's tracker equals the sim's truth; returns mismatches. */
uint64_t world_check_views(struct world *w, char *why, size_t whylen);

#endif
