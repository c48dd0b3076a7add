/* SPDX-License-Identifier: MIT */
/*
 * The daemon's books: domains, emulators, the mapping tracker, the pages
 * between removal and release, and the state of the shim's flush queue.
 * Everything here runs on the one event-loop thread.
 *
 * Life of one removed page (DESIGN.md):
 *   MAPPED        the tracker has (emulator, domain, gfn) bits set;
 *   INVALIDATING  PAGE_REMOVED moved those mappings into a struct page as
 *                 its holders; each holder gets an INVALIDATE_PAGE ioreq;
 *   FLUSHING      the last holder unmapped; cover_seq is the flush that
 *                 must complete (max of the unmaps' seq);
 *   RELEASED      max_done >= cover_seq: IOMAP_CMD_RELEASE is posted and the
 *                 struct page is freed.
 */
#ifndef IOMAP_DAEMON_H
#define IOMAP_DAEMON_H

#include <stdint.h>
#include <sys/queue.h>

#include "iomap.h"
#include "shim/ring.h"
#include "ioreq/channel.h"
#include "util/hmap.h"
#include "daemon/core/tracker.h"

#define IOMAPD_MAX_DOMID     0x7ff0     /* DOMID_FIRST_RESERVED */
#define IOMAPD_MAX_EMUS      1024
#define IOMAPD_INLINE_HOLDERS 4
#define PAGE_NONE            UINT32_MAX

enum page_state {
    PAGE_FREE = 0,
    PAGE_INVALIDATING,
    PAGE_FLUSHING,
    PAGE_NEW,               /* allocated, not yet evaluated */
};

struct holder {
    uint16_t emu;           /* index in daemon.emus */
    uint16_t count;         /* mappings of this page by that emulator */
};

struct page {
    uint64_t gfn;
    uint64_t mfn;
    uint64_t t_removed;     /* ns, daemon clock */
    uint32_t cover_seq;     /* flush that must complete before release */
    uint32_t next;          /* same (domid, gfn) chain, or free list */
    uint32_t fl_prev, fl_next;  /* INVALIDATING or FLUSHING list, by state */
    uint16_t domid;
    uint8_t  state;
    uint8_t  nholders;
    uint8_t  resync_new;    /* created by a dump chunk, not yet evaluated */
    uint8_t  esc;           /* policy escalation steps taken (core_tick) */
    uint8_t  pad[2];
    struct holder h[IOMAPD_INLINE_HOLDERS];
    struct holder *more;    /* holders beyond the inline ones (rare) */
    uint16_t nmore;
    uint32_t flushing_ms;   /* ms after t_removed it entered FLUSHING */
};

struct emu;

/* One emulator's mappings of one domain. */
struct emu_map {
    struct emu       *emu;
    struct dom       *dom;
    struct fset       fs;
    LIST_ENTRY(emu_map) dom_link;
    LIST_ENTRY(emu_map) emu_link;
};

/*
 * The pages in flight of one domain, indexed by gfn: a radix like the
 * tracker's (daemon/core/tracker.h), so that consecutive gfns share a leaf.
 *   top     hmap: gfn >> 21 -> index in l2v        (one per 8 GiB of gfns)
 *   L2      4096 pointers -> leaf                  (32 KiB)
 *   leaf    512 page indexes (PAGE_NONE if none)   (2 KiB per 2 MiB of gfns)
 * A slot holds the first page of the gfn's chain (struct page.next).
 * Empty leaves go to a stash in struct core, to be reused warm.
 */
#define PIDX_LEAF_BITS  9
#define PIDX_L2_BITS    12

struct pidx_leaf {
    uint32_t used;                          /* slots != PAGE_NONE */
    uint32_t slot[1u << PIDX_LEAF_BITS];
};

struct pidx_l2 {
    struct pidx_leaf *leaf[1u << PIDX_L2_BITS];
};

struct dom {
    uint16_t  domid;
    LIST_HEAD(, emu_map) maps;
    struct hmap pidx_top;   /* gfn >> 21 -> index in pidx_l2v */
    struct pidx_l2 **pidx_l2v;
    uint32_t  pidx_nl2, pidx_capl2;
    uint64_t  pidx_last_key;            /* one-entry cache: gfn >> 9 + 1 */
    struct pidx_leaf *pidx_last_leaf;
    uint64_t  npending;
};

struct range {
    uint64_t gfn;
    uint32_t nr;
    uint16_t domid;
};

struct emu {
    uint16_t  emu_domid;
    uint16_t  ioservid;
    uint16_t  idx;
    uint8_t   alive;
    uint8_t   has_chan;
    uint32_t  caps;
    struct ioreq_chan chan;
    LIST_HEAD(, emu_map) maps;
    /* Invalidates waiting for a free slot, coalesced into ranges. */
    struct range *q;
    uint32_t  qhead, qlen, qcap;
    uint8_t   need_global;
    uint8_t   killed;           /* the policy's kill-emulator step ran */
    uint64_t  global_sent_at;   /* removal clock when the global went out */
    uint64_t  held_pages;       /* pages where this emulator is a holder */
    uint64_t  invalidates_sent, answers, forced_unmaps, bad_unmaps;
    void     *loop_ev;          /* libevent event for the resp eventfd */
    void     *conn;             /* registration connection, if any */
};

struct core_stats {
    uint64_t events, event_batches, unknown_events, bad_events;
    uint64_t maps, unmaps, unmatched_unmaps;
    uint64_t pages_removed, pages_released, invalidates_sent;
    uint64_t global_invalidates_sent, forced_unmaps, flush_cmds;
    uint64_t release_cmds, cmd_errors, overflows, resyncs;
    uint64_t lat_count, lat_sum_ns, lat_max_ns;
    uint64_t lat_hist[64];      /* log2 buckets of removed -> released ns */
    /* Policy (policy/policy.h) and its timeouts (core_tick). */
    uint64_t policy_denials, rmrr_maps, readonly_denials, quota_denials;
    uint64_t pending_quota_forced;
    uint64_t timeouts_invalidating, timeouts_flushing, devices_broken;
    uint64_t escalations, emu_kills, guest_crashes;
};

struct answer {
    uint16_t emu;
    struct iomap_ioreq req;
};

struct core;
struct policy;
typedef void core_kick_fn(struct core *d);
typedef uint64_t core_clock_fn(struct core *d);

/*
 * Observers of the lifecycle (the control socket's subscriptions).  Each
 * may be NULL; they are called on the loop thread and must not call back
 * into the books.
 */
struct core_hooks {
    void (*page_released)(void *arg, uint16_t domid, uint64_t gfn,
                          uint64_t mfn, uint64_t lat_ns);
    void (*emu_gone)(void *arg, const struct emu *e, const char *why);
    void (*timeout)(void *arg, const struct emu *e, uint16_t domid,
                    uint64_t gfn, const char *what);
};
#define CORE_OBSERVE(d, fn, ...) \
    do { if ((d)->hooks && (d)->hooks->fn) (d)->hooks->fn((d)->hooks_arg, __VA_ARGS__); } while (0)
/* Escalation hooks of the policy (kill-emulator, crash-guest steps). */
typedef void core_kill_emu_fn(struct core *d, uint16_t emu_domid,
                                uint16_t ioservid);
typedef void core_crash_guest_fn(struct core *d, uint16_t domid);

struct core {
    struct iomap_ring *ring;
    core_kick_fn    *kick_shim;   /* notify the shim of new commands */
    core_clock_fn   *clock;       /* ns; monotonic */
    void              *backend;     /* backend private */
    /* The policy in force (owned; never NULL after core_init). */
    struct policy     *policy;
    core_kill_emu_fn *kill_emulator;      /* optional */
    core_crash_guest_fn *crash_guest;     /* optional */
    uint64_t           next_tick;   /* daemon clock of the next page scan */
    uint32_t           broken_seq;  /* highest flush reported as stuck */

    struct dom        *doms[IOMAPD_MAX_DOMID];
    struct emu        *emus[IOMAPD_MAX_EMUS];
    uint32_t           nemus;       /* high-water index */

    /*
     * The page pool: an anonymous mapping grown with mremap (no copy).
     * Slots below pages_cap have been used (scanners stop there); the
     * ones up to pages_alloc are mapped, not yet touched.
     */
    struct page       *pages;
    uint32_t           pages_cap, pages_free;
    uint32_t           pages_alloc, pages_nfree;
    uint64_t           n_invalidating, n_flushing;
    uint32_t           fl_head, fl_tail;    /* FLUSHING list, by cover_seq */
    uint32_t           inv_head, inv_tail;  /* INVALIDATING list */
    /* Empty pending-index leaves kept for reuse (struct dom). */
    struct pidx_leaf **leaf_stash;
    uint32_t           leaf_nstash;

    uint32_t           max_queued, max_done;
    /*
     * The clock read once per batch of work (events, releases) while
     * core_process() runs (now_valid), instead of once per page.
     */
    uint64_t           now_ns;
    int                now_valid;
    int                flush_wanted;
    uint32_t           cmd_id;

    /* Commands waiting for room on the command ring (a ring itself). */
    struct iomap_cmd  *out;
    uint32_t           out_head, out_len, out_cap;
    int                shim_kick_pending;

    /* Answered ioreqs, judged once the ring is drained. */
    struct answer     *ans;
    uint32_t           ans_len, ans_cap;

    /* Resynchronisation with a dump (start-up, overflow). */
    enum { RS_NONE, RS_AWAIT, RS_CHUNKS } resync;
    uint16_t           rs_domid;
    uint64_t           rs_gfn;
    uint32_t          *rs_new;      /* pages of the current dump chunk */
    uint32_t           rs_nnew, rs_capnew;

    struct core_stats st;

    const struct core_hooks *hooks;
    void              *hooks_arg;
};

int   core_init(struct core *d, struct iomap_ring *ring,
                  core_kick_fn *kick, core_clock_fn *clock);
void  core_fini(struct core *d);
/*
 * Take every event on the ring, apply it, reap answered ioreqs, send what
 * is due (ioreqs, commands).  Returns the number of events or -EPROTO if
 * the ring is broken.
 */
int   core_process(struct core *d);
/* d->clock(d), or the reading of the current batch inside core_process(). */
static inline uint64_t
core_now(struct core *d)
{
    return d->now_valid ? d->now_ns : d->clock(d);
}
/* Start a resync (at start-up, after an overflow). */
void  core_resync(struct core *d);
/*
 * Replace the policy (atomically, from the event loop's point of view) and
 * free the old one; the daemon owns p from now on.  NULL: built-in default.
 */
int   core_set_policy(struct core *d, struct policy *p);
/*
 * Periodic: check the ages of pages in flight against the policy's
 * timeouts and take the escalation steps due.  Call it from the event loop
 * (every 100 ms or so); cheap when nothing is in flight.  Returns the
 * number of steps taken.
 */
int   core_tick(struct core *d);
/*
 * Existing mappings against the policy's map rules (daemon/tick.c): what
 * it forbids is force-unmapped and counted as for a new map.  Called by
 * core_set_policy() and at the end of a resync; returns gfns forced.
 */
uint64_t core_recheck_policy(struct core *d);

/* Emulators (daemon/emu.c). */
struct emu *emu_get(struct core *d, uint16_t emu_domid, uint16_t ioservid,
                    int create);
/* Give an emulator an ioreq channel; with_fds for another process. */
int   emu_register(struct core *d, struct emu *e, uint32_t caps, int with_fds);
void  emu_unregister(struct core *d, struct emu *e);
void  emu_queue_invalidate(struct core *d, struct emu *e, uint16_t domid,
                           uint64_t gfn);
void  emu_send_ioreqs(struct core *d);
void  emu_collect(struct core *d);
void  emu_judge(struct core *d);
/* Force-unmap every mapping of e (emulator gone, drain). */
void  emu_force_unmap_all(struct core *d, struct emu *e);
/* Force-unmap e's mappings of one gfn (coalesced with the previous one). */
void  emu_force_unmap_gfn(struct core *d, struct emu *e, uint16_t domid,
                          uint64_t gfn, uint32_t nr);

/* Pages (daemon/pages.c). */
uint32_t page_find(struct core *d, struct dom *dm, uint64_t gfn, uint64_t mfn);
/* The first page of gfn's chain (through struct page.next), or PAGE_NONE. */
uint32_t page_head(struct dom *dm, uint64_t gfn);
/* Room for nr more pages in the pool; 0 or -ENOMEM. */
int   pages_reserve(struct core *d, uint32_t nr);
void  pages_removed(struct core *d, uint16_t domid, uint64_t gfn,
                    uint64_t mfn, uint32_t nr, uint32_t seq);
int   page_unmapped(struct core *d, struct dom *dm, uint32_t pi, struct emu *e,
                    uint32_t seq);
void  pages_flush_done(struct core *d);
void  page_evaluate(struct core *d, uint32_t pi);
void  page_add_holder(struct core *d, uint32_t pi, struct emu *e, uint32_t count);
int   page_has_holder(const struct page *p, uint16_t emu);
void  pages_drop_domain(struct core *d, struct dom *dm);
void  pages_drop_all(struct core *d);
void  pages_fini(struct core *d);
void  pidx_free(struct core *d, struct dom *dm);
uint32_t page_alloc(struct core *d, struct dom *dm, uint64_t gfn, uint64_t mfn);

/* Commands (daemon/daemon.c). */
void  cmd_post(struct core *d, const struct iomap_cmd *c);
void  cmd_flush_out(struct core *d);
struct iomap_cmd *cmd_last(struct core *d);
struct dom *dom_get(struct core *d, uint16_t domid, int create);
struct emu_map *emu_map_get(struct core *d, struct emu *e, struct dom *dm,
                            int create);

/* Mappings of one emulator, of one domain (counting multiplicity). */
uint64_t emu_mappings(const struct emu *e);
uint64_t dom_mappings(const struct dom *dm);
/* Totals for status output. */
uint64_t core_mappings(const struct core *d);
uint32_t core_domains(const struct core *d);
uint32_t core_emulators(const struct core *d);

#endif
