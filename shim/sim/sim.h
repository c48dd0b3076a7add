/* SPDX-License-Identifier: MIT */
/*
 * The simulated hypervisor: a model of the parts of Xen that iomapd deals
 * with, speaking the shim ABI of shim/public/iomap.h over a shared region.
 *
 * It keeps the ground truth (who owns each frame, its reference count, the
 * p2m, every emulator mapping, the device-TLB flush queue) and checks the
 * invariants (docs/ARCHITECTURE.md, "Invariants") against it:
 *   I1  a RELEASE naming a page that is still mapped, or whose last IOMMU
 *       unmap is not yet covered by a completed flush, is a violation (and
 *       is refused, as the real shim would);
 *   I2  sim_check_quiescent(): nothing held, every reference accounted for;
 *   I3  an unmap of a bfn the map op did not map is refused (-ENOENT) and
 *       changes nothing;
 *   I5  sim_mapping_count() is the truth the daemon's view is compared with.
 *
 * Hypercall entry points return 0 (or a count) or a negative errno, as the
 * hypervisor would.
 */
#ifndef IOMAP_SIM_H
#define IOMAP_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "iomap.h"
#include "shim/ring.h"
#include "util/hmap.h"

#define SIM_MAX_DOMAINS  64
#define SIM_MAX_EMUS     64
#define SIM_INVALID_MFN  UINT64_MAX

/* LEAKED: only the reference a failed flush leaked is left (no owner). */
enum sim_page_state { SIM_PAGE_FREE = 0, SIM_PAGE_ALLOC, SIM_PAGE_HELD,
                      SIM_PAGE_LEAKED };

struct sim_page {
    uint64_t gfn;           /* where it is (ALLOC) or was (HELD)          */
    uint32_t maps;          /* mappings made through the map op           */
    uint32_t refs;          /* allocation + maps + hold                    */
    uint32_t last_unmap_seq;/* flush seq covering its last IOMMU unmap    */
    uint16_t owner;
    uint8_t  state;         /* enum sim_page_state                         */
    uint8_t  leaked;        /* a failed flush covered its last unmap: the
                               frame never goes back to the free pool      */
};

struct sim_mapping {
    uint64_t bfn;
    uint64_t gfn;
    uint64_t mfn;
    uint16_t domid;
    uint8_t  flags;         /* IOMAP_F_READONLY | IOMAP_F_CPU              */
    uint8_t  live;
    uint32_t next_free;
};

/*
 * An ioreq server, as Xen has them: created by an emulator domain for one
 * target domain, with an id allocated per target (the lowest free one).
 * A dead server keeps its entry, and so its id, while its mappings wait
 * to be force-unmapped: no new server can take the id of one whose
 * mappings the shim still holds.
 */
struct sim_emu {
    int       used;
    int       alive;
    uint16_t  emu_domid;
    uint16_t  target;       /* the domain it serves                        */
    uint16_t  ioservid;     /* allocated per target                        */
    struct hmap by_bfn;     /* bfn -> index in maps                        */
    struct sim_mapping *maps;
    uint32_t  nmaps, cap, free_head, live;
};

struct sim_domain {
    int       used;
    uint16_t  domid;
    uint64_t  max_gfn;      /* p2m size                                    */
    uint64_t *p2m;          /* gfn -> mfn or SIM_INVALID_MFN               */
    uint64_t  tot_pages;
};

struct sim_flush {
    uint32_t seq;
    uint64_t due_ns;
};

struct sim_stats {
    uint64_t events_posted, events_lost;
    uint64_t maps, unmaps, unmaps_refused, forced_unmaps;
    uint64_t pages_removed, pages_held, pages_released, pages_freed;
    uint64_t flushes_queued, flushes_done;
    uint64_t cmds, cmd_errors;
    uint64_t violations_i1, violations_i2, violations_i3, violations_i5;
    uint64_t flushes_failed, pages_leaked;
};

struct sim {
    struct iomap_ring  ring;
    void              *region;
    size_t             region_len;
    int                shm_fd;      /* memfd of the region, or -1        */
    int                ev_fd;       /* eventfd: shim -> daemon, or -1    */
    int                cmd_fd;      /* eventfd: daemon -> shim, or -1    */
    int                kick_pending;

    struct sim_page   *pages;
    uint64_t           nr_pages;
    uint64_t          *free_mfns;   /* stack */
    uint64_t           nr_free;

    struct sim_domain  doms[SIM_MAX_DOMAINS];
    struct sim_emu     emus[SIM_MAX_EMUS];

    uint32_t           next_seq;    /* seq the next queued flush gets    */
    uint32_t           max_done;    /* highest completed flush seq       */
    struct sim_flush  *flushq;
    uint32_t           nflush, flushcap;
    uint64_t           flush_latency_ns;
    int                flush_stuck; /* fault: flushes never complete     */
    int                flush_fail;  /* fault: the next flushes to complete
                                       fail instead (IOMAP_EV_FLUSH_FAILED) */
    uint64_t           now_ns;

    struct sim_stats   st;
    char               last_violation[256];
};

struct sim_config {
    uint64_t nr_pages;          /* host frames                            */
    uint32_t ev_slots;          /* event ring slots (power of two)        */
    uint32_t cmd_slots;
    uint64_t flush_latency_ns;
    int      shared;            /* memfd + eventfds (for another process) */
};

int  sim_init(struct sim *s, const struct sim_config *cfg);
void sim_fini(struct sim *s);

/* Toolstack. */
int  sim_domain_create(struct sim *s, uint16_t domid, uint64_t nr_pages);
int  sim_domain_destroy(struct sim *s, uint16_t domid);
struct sim_domain *sim_domain(struct sim *s, uint16_t domid);
/*
 * A new ioreq server of emu_domid for target: its index in s->emus (its id
 * is s->emus[i].ioservid), or -errno (-ESRCH: no such target, -ENOSPC).
 */
int  sim_emu_create(struct sim *s, uint16_t emu_domid, uint16_t target);
int  sim_emu_find(const struct sim *s, uint16_t emu_domid, uint16_t target,
                  uint16_t ioservid);
/* The emulator process died: its mappings stay until force-unmapped. */
int  sim_emu_crash(struct sim *s, int emu);

/* Guest hypercalls. */
int  sim_populate(struct sim *s, uint16_t domid, uint64_t gfn, uint32_t nr);
/* XENMEM_decrease_reservation of one extent; returns pages removed. */
int  sim_decrease_reservation(struct sim *s, uint16_t domid, uint64_t gfn,
                              unsigned order);

/* Emulator hypercalls (the iommu_op); a server maps its target only (-EPERM). */
int  sim_iommu_map(struct sim *s, int emu, uint16_t domid, uint64_t gfn,
                   uint64_t bfn, uint32_t nr, uint8_t flags);
int  sim_iommu_unmap(struct sim *s, int emu, uint64_t bfn, uint32_t nr);
/* Queue a flush; returns its seq (> 0) or -errno. */
long sim_iommu_flush(struct sim *s, int emu);

/* Time and the device-TLB. */
void sim_tick(struct sim *s, uint64_t now_ns);
int  sim_complete_flush(struct sim *s, uint32_t seq);   /* out of order */
uint64_t sim_next_flush_due(const struct sim *s);        /* or UINT64_MAX */

/* Commands from the daemon; returns the number processed. */
unsigned sim_process_cmds(struct sim *s);
/* Kick the daemon if events were posted since the last kick. */
void sim_kick(struct sim *s);

/* Ground truth. */
uint32_t sim_mapping_count(const struct sim *s, int emu, uint16_t domid,
                           uint64_t gfn, uint64_t mfn);
uint64_t sim_held_pages(const struct sim *s);
/* Consistency of every frame; returns 0 or -1 with last_violation set. */
int  sim_check(struct sim *s);
/* I2 at rest: nothing held, no flush pending.  0 or -1. */
int  sim_check_quiescent(struct sim *s);
uint64_t sim_violations(const struct sim *s);

#endif
