/* SPDX-License-Identifier: MIT */
/*
 * The core's private header: the structs behind daemon/core/core.h and the
 * calls between the core's own files.  Only daemon/core/ and the core's
 * unit tests include it.
 *
 * Calls inside the core go one way, top to bottom:
 *   ingest.c (events, resync)  ->  enforce.c (policy, timeouts, drains)
 *   -> pages.c (lifecycle, answers judged)  ->  emu.c (emulators, their
 *   invalidate queues)  ->  cmdq.c (commands)  ->  the ring (shim/ring.c)
 * api.c and query.c are the public calls on top of them all.
 *
 * Life of one removed page (docs/ARCHITECTURE.md):
 *   MAPPED        the tracker has (emulator, domain, gfn) bits set;
 *   INVALIDATING  PAGE_REMOVED moved those mappings into a struct page as
 *                 its holders; each holder gets an INVALIDATE_PAGE ioreq;
 *   FLUSHING      the last holder unmapped; cover_seq is the flush that
 *                 must complete (max of the unmaps' seq);
 *   RELEASED      max_done >= cover_seq: IOMAP_CMD_RELEASE is posted and the
 *                 struct page is freed.
 */
#ifndef IOMAP_CORE_PRIV_H
#define IOMAP_CORE_PRIV_H

#include <stdint.h>
#include <sys/queue.h>

#include "iomap.h"
#include "daemon/core/core.h"
#include "shim/ring.h"
#include "ioreq/channel.h"
#include "util/hmap.h"
#include "daemon/core/tracker.h"

#define IOMAPD_MAX_DOMID     CORE_MAX_DOMID
#define IOMAPD_MAX_EMUS      CORE_MAX_EMUS
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
    uint32_t count;         /* mappings of this page by that emulator (one
                               page may be mapped at 2^16 bfns and more) */
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
    uint8_t  unheld;        /* IOMAP_F_CPU: the shim holds nothing, no RELEASE */
    uint8_t  pad[1];
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
    uint16_t  target;           /* the domain its ioreq server serves */
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
    uint8_t   rs_seen;          /* named by the current resync's DUMP_EMU */
    uint64_t  global_sent_at;   /* removal clock when the global went out */
    uint64_t  held_pages;       /* pages where this emulator is a holder */
    uint64_t  invalidates_sent, answers, forced_unmaps, bad_unmaps;
};

struct answer {
    uint16_t emu;
    struct iomap_ioreq req;
};

/* An observer of the environment, if set: CORE_OBSERVE(d, emu_gone, &id, why). */
#define CORE_OBSERVE(d, fn, ...) \
    do { if ((d)->env.fn) (d)->env.fn((d)->env.arg, __VA_ARGS__); } while (0)

/* A drain of one emulator (core_drain, enforce.c). */
struct drain {
    struct core_emu_id  id;
    int                 unmap_all;
    uint64_t            t0, deadline, held0;
    core_drain_done_fn *done;
    void               *arg;
    LIST_ENTRY(drain)   link;
};

struct core {
    struct core_env    env;
    struct iomap_ring *ring;        /* env.ring */
    /* The policy in force (owned; never NULL after core_init). */
    struct policy     *policy;
    /* The pending-release quotas of the policy in force (0: none). */
    uint64_t           max_pending_per_emu, max_pending_per_dom;
    uint64_t           next_tick;   /* daemon clock of the next page scan */
    uint32_t           broken_seq;  /* highest flush reported as stuck */

    struct dom        *doms[IOMAPD_MAX_DOMID];
    struct emu        *emus[IOMAPD_MAX_EMUS];
    uint32_t           nemus;       /* high-water index */
    uint32_t           ndoms;       /* doms[] not NULL (status: no scan) */

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
    uint64_t           rs_id;       /* id of our current DUMP (random start) */
    int                rs_in_chunk; /* between our DUMP_BEGIN and DUMP_END */
    uint32_t           rs_chunks;   /* chunks of this dump applied */
    struct iomap_event *rs_maps;    /* DUMP_MAP records of the current chunk */
    uint32_t           rs_nmaps, rs_capmaps;

    int                resync_wanted;   /* out of memory: resync after the batch */

    LIST_HEAD(, drain) drains;

    struct core_stats  st;
};

/*
 * Flush sequences are 32-bit and wrap (the shim skips 0, which means "no
 * flush"): they are compared as serial numbers, as the Xen shim does.
 * seq_after(a, b): a comes after b.  seq_done(s, done): a page whose
 * covering flush is s may go once flush done completed.
 */
static inline int
seq_after(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) > 0;
}

static inline int
seq_done(uint32_t seq, uint32_t done)
{
    return seq == 0 || (int32_t)(seq - done) <= 0;
}

static inline uint64_t
core_clock(struct core *d)
{
    return d->env.clock(d->env.arg);
}

/* core_clock(d), or the reading of the current batch inside core_process(). */
static inline uint64_t
core_now(struct core *d)
{
    return d->now_valid ? d->now_ns : core_clock(d);
}

static inline struct core_emu_id
emu_id_of(const struct emu *e)
{
    return (struct core_emu_id){ e->emu_domid, e->target, e->ioservid };
}

/* For log messages: log_info("emulator " EMU_FMT " ...", EMU_ARGS(e)). */
#define EMU_FMT         CORE_EMU_FMT
#define EMU_ARGS(e)     (unsigned)(e)->emu_domid, (unsigned)(e)->target, \
                        (unsigned)(e)->ioservid
/* The identity an event or a command names. */
#define EV_EMU_ID(ev)   ((struct core_emu_id){ (ev)->emu_domid, (ev)->domid, (ev)->ioservid })

/* ---- ingest.c: events in ring order, resync by dump ------------------------- */
int   core_init(struct core *d, const struct core_env *env);
void  core_fini(struct core *d);

/* ---- enforce.c: the policy on new and existing mappings, timeouts, drains -- */
/* A map the shim made, against the policy: force-unmapped if forbidden. */
void  enforce_map(struct core *d, const struct iomap_event *ev, struct emu *e,
                  struct dom *dm, uint32_t n);
/*
 * Existing mappings against the policy's map rules: what it forbids is
 * force-unmapped and counted as for a new map.  Called when a policy comes
 * into force and at the end of a resync; returns gfns forced.
 */
uint64_t core_recheck_policy(struct core *d);
void  drains_step(struct core *d);
void  drains_free(struct core *d);

/* ---- pages.c: the lifecycle of removed pages -------------------------------- */
uint32_t page_find(struct core *d, struct dom *dm, uint64_t gfn, uint64_t mfn);
/* The first page of gfn's chain (through struct page.next), or PAGE_NONE. */
uint32_t page_head(struct dom *dm, uint64_t gfn);
/* Room for nr more pages in the pool; 0 or -ENOMEM. */
int   pages_reserve(struct core *d, uint32_t nr);
void  pages_removed(struct core *d, uint16_t domid, uint64_t gfn,
                    uint64_t mfn, uint32_t nr, uint32_t seq, int unheld);
int   page_unmapped(struct core *d, struct dom *dm, uint32_t pi, struct emu *e,
                    uint32_t seq);
void  pages_flush_done(struct core *d);
void  page_evaluate(struct core *d, uint32_t pi);
void  page_add_holder(struct core *d, uint32_t pi, struct emu *e, uint32_t count);
int   page_has_holder(const struct page *p, uint16_t emu);
const struct holder *page_holder(const struct page *p, unsigned i);
void  pages_drop_domain(struct core *d, struct dom *dm);
void  pages_drop_all(struct core *d);
void  pages_fini(struct core *d);
void  pidx_free(struct core *d, struct dom *dm);
uint32_t page_alloc(struct core *d, struct dom *dm, uint64_t gfn, uint64_t mfn);
/*
 * An emulator's part in the pages in flight, through the INVALIDATING list
 * (only those pages have holders), never the pool:
 *   pages_emu_requeue  queue its invalidates again (it registered);
 *   pages_emu_left     force-unmap what it holds (it left: drain);
 *   pages_emu_dropped  forget its holds (the shim dropped them with its
 *                      domain).
 */
void  pages_emu_requeue(struct core *d, struct emu *e);
void  pages_emu_left(struct core *d, struct emu *e);
void  pages_emu_dropped(struct core *d, struct emu *e);
/*
 * Judge the collected answers (emu_collect): whatever an emulator still
 * holds of what it said it dropped is force-unmapped.
 */
void  pages_judge_answers(struct core *d);

/* ---- emu.c: emulators, their IOREQ channels and invalidate queues ---------- */
/* The emulator of id, or (create) a new entry; NULL if none / table full. */
struct emu *emu_get(struct core *d, const struct core_emu_id *id, int create);
/*
 * The CPU (foreign) mappings of emulator domain e->emu_domid of guest
 * e->target (ABI 1.2): not an ioreq server, never registered; invalidates
 * fan out to that domain's emulators of the guest, force-unmaps are skipped.
 */
static inline int
emu_is_cpu(const struct emu *e)
{
    return e->ioservid == IOMAP_IOSERVID_ANY;
}
/* Give an emulator an ioreq channel; with_fds for another process. */
int   emu_register(struct core *d, struct emu *e, uint32_t caps, int with_fds);
/* Close its channel; its queued invalidates go. */
void  emu_unregister(struct core *d, struct emu *e);
void  emu_queue_invalidate(struct core *d, struct emu *e, uint16_t domid,
                           uint64_t gfn);
void  emu_send_ioreqs(struct core *d);
/* Answered ioreqs into d->ans (before the event ring is drained). */
void  emu_collect(struct core *d);
/* Force-unmap an emulator's mappings without an entry for it (table full). */
void  emu_force_unmap_id(struct core *d, const struct core_emu_id *id,
                         uint64_t gfn, uint32_t nr);
/* Free the entries of emulators that hold nothing and have no channel. */
void  emu_reclaim(struct core *d);
/* Force-unmap every mapping of e (emulator gone, drain). */
void  emu_force_unmap_all(struct core *d, struct emu *e);
/* Force-unmap e's mappings of one gfn (coalesced with the previous one). */
void  emu_force_unmap_gfn(struct core *d, struct emu *e, uint16_t domid,
                          uint64_t gfn, uint32_t nr);
/* A domain's books, an emulator's mappings of a domain (create: make them). */
struct dom *dom_get(struct core *d, uint16_t domid, int create);
struct emu_map *emu_map_get(struct core *d, struct emu *e, struct dom *dm,
                            int create);
/* Mappings of one emulator, of one domain (counting multiplicity). */
uint64_t emu_mappings(const struct emu *e);
uint64_t dom_mappings(const struct dom *dm);

/* ---- cmdq.c: commands to the shim, queued while the ring is full ----------- */
void  cmd_post(struct core *d, const struct iomap_cmd *c);
void  cmd_flush_out(struct core *d);
struct iomap_cmd *cmd_last(struct core *d);

/* Totals over the tables (emu.c). */
uint64_t core_mappings(const struct core *d);
uint32_t core_domains(const struct core *d);
uint32_t core_emulators(const struct core *d);

#endif
