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
    int      srv;               /* the server (index in model_emu.srv) */
    uint64_t due;
};

/* Misbehaviours a model emulator can be given. */
#define ME_IGNORE_INVALIDATES  (1u << 0)  /* never answers              */
#define ME_ANSWER_NO_UNMAP     (1u << 1)  /* answers, keeps its mappings */

/*
 * One ioreq server of a model emulator, as Xen has them: for one target
 * domain, with the id the simulated hypervisor allocated for that target.
 */
struct model_srv {
    uint16_t  target;
    uint16_t  ioservid;
    int       sim_idx;          /* index in sim.emus */
    struct iomap_emu *client;   /* its IOREQ channel with the daemon */
};

/*
 * A model emulator process (a QEMU, a vGPU mediator) in emulator domain
 * emu_domid: one ioreq server per guest it serves (world_emu_serves).
 */
struct model_emu {
    uint16_t  emu_domid;
    struct model_srv srv[WORLD_MAX_TARGETS];
    int       nsrv;
    int       legacy;           /* only knows the global invalidate */
    unsigned  misbehave;
    uint64_t  answer_delay_ns;
    int       dead;             /* crashed, not restarted */
    struct hmap mapped;         /* bfn -> 1 */
    struct pending_answer *pend;
    uint32_t  npend, pendcap;
    /* counted */
    uint64_t  maps, unmaps_invalidate, needless, answers;
};

struct world {
    struct sim    sim;
    struct core  *core;         /* the real books, on the virtual clock */
    uint64_t      now;
    struct model_emu emus[WORLD_MAX_EMUS];
    int           nemus;
    uint64_t      i5_mismatches;
};

/* Command slots of the rings world_init() makes (default 4096). */
extern uint32_t world_cmd_slots;
int  world_init(struct world *w, uint64_t host_pages, uint64_t flush_latency_ns,
                uint32_t ev_slots);
void world_fini(struct world *w);
/* A model emulator process in emu_domid; its index, or -errno. */
int  world_add_emu(struct world *w, uint16_t emu_domid, int legacy,
                   uint64_t answer_delay_ns);
/*
 * It serves domid: the simulated hypervisor creates an ioreq server for
 * it (the id is the lowest free one of domid, as in Xen) and the model
 * registers it with the daemon.  0 or -errno.
 */
int  world_emu_serves(struct world *w, int me, uint16_t domid);
/* Live mappings of model me's servers, by the simulated hypervisor. */
uint64_t world_live(const struct world *w, int me);
/* The simulated hypervisor's index of model me's server for domid, or -1. */
int  world_sim_idx(const struct world *w, int me, uint16_t domid);
/* The daemon's name of model me's server for domid (for core_* lookups). */
struct core_emu_id world_emu_id(const struct world *w, int me, uint16_t domid);
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
/* The emulator process dies (its ioreq servers go; the shim keeps their
 * mappings until the daemon force-unmaps them). */
int  world_crash_emu(struct world *w, int me);
/* A new process in the same domain serves the same guests again: new
 * ioreq servers (Xen picks their ids) registered with the daemon. */
int  world_restart_emu(struct world *w, int me);
/*
 * The daemon is killed and a new one starts: new books, which ask the shim
 * for a dump, and the emulators register again; nothing runs yet (the
 * caller decides when the shim and the new daemon get to run).
 */
int  world_crash_daemon(struct world *w);
/* Restart the daemon's books from scratch (as after SIGKILL + restart). */
int  world_restart_daemon(struct world *w);
/* I5: the daemon's tracker equals the sim's truth; returns mismatches. */
uint64_t world_check_views(struct world *w, char *why, size_t whylen);

#endif
