/* SPDX-License-Identifier: MIT */
/*
 * The books of iomapd: which emulator maps which guest page, the pages
 * between their removal and their release, and the state of the shim's
 * flush queue.  This is the core's only public header; its structs are in
 * core_priv.h, which only daemon/core/ and the core's unit tests include.
 *
 * The core knows nothing of the event loop, sockets or JSON.  It is made
 * from an environment (struct core_env): the shared ring, a clock, a way
 * to kick the shim, the policy's escalation hooks and observers.  The
 * owner runs it: core_process() whenever the ring, an emulator's answers
 * or an attach/detach may have changed something, core_tick() about every
 * 100 ms.  Everything runs on one thread; no call blocks.
 *
 * Life of one removed page (docs/ARCHITECTURE.md):
 *   MAPPED -> INVALIDATING -> FLUSHING -> RELEASED
 */
#ifndef IOMAP_CORE_H
#define IOMAP_CORE_H

#include <stddef.h>
#include <stdint.h>

struct iomap_ring;
struct policy;
struct core;

#define CORE_MAX_DOMID  0x7ff0      /* DOMID_FIRST_RESERVED: domids below it */
#define CORE_MAX_EMUS   1024        /* emulators tracked at once */

/*
 * An emulator as Xen names its ioreq server: the emulator's domain, the
 * target domain the server serves, and the server's id, which Xen
 * allocates per target (every guest's dom0 QEMU may have id 0).  Written
 * "EMU_DOMID:TARGET:IOSERVID" in logs and the API.
 */
struct core_emu_id {
    uint16_t emu_domid;
    uint16_t target;
    uint16_t ioservid;
};
#define CORE_EMU_FMT        "%u:%u:%u"
#define CORE_EMU_ARGS(id)   (unsigned)(id)->emu_domid, (unsigned)(id)->target, \
                            (unsigned)(id)->ioservid

static inline int
core_emu_id_eq(const struct core_emu_id *a, const struct core_emu_id *b)
{
    return a->emu_domid == b->emu_domid && a->target == b->target &&
           a->ioservid == b->ioservid;
}

struct core_env {
    struct iomap_ring *ring;                /* shared with the shim */
    uint64_t (*clock)(void *arg);           /* ns, monotonic */
    void (*kick)(void *arg);                /* new commands on the ring */
    /* The policy's escalation steps (optional). */
    void (*kill_emulator)(void *arg, const struct core_emu_id *id);
    void (*crash_guest)(void *arg, uint16_t domid);
    /*
     * Observers (optional).  Called on the core's thread from inside a
     * core call: they must not call back into the core.
     */
    void (*page_released)(void *arg, uint16_t domid, uint64_t gfn,
                          uint64_t mfn, uint64_t lat_ns);
    void (*emu_gone)(void *arg, const struct core_emu_id *id, const char *why);
    /* id NULL: no emulator in particular. */
    void (*timeout)(void *arg, const struct core_emu_id *id, uint16_t domid,
                    uint64_t gfn, const char *what);
    void *arg;
};

/* NULL with errno set on failure.  The environment is copied. */
struct core *core_new(const struct core_env *env);
void     core_free(struct core *c);

/*
 * Take every event on the ring, apply it, judge answered ioreqs, send what
 * is due (ioreqs, commands), step the drains.  Returns the number of
 * events, or -EPROTO if the ring's indices are corrupt.
 */
int      core_process(struct core *c);
/* The policy's timeouts and the drains' deadlines; steps taken. */
int      core_tick(struct core *c);
/* Forget the books and rebuild them from a dump (start-up, overflow). */
void     core_resync(struct core *c);
/*
 * Replace the policy (one swap on the core's thread); the core owns p from
 * now on.  NULL: the built-in default.  Existing mappings are checked
 * against it.  0 or -ENOMEM.
 */
int      core_set_policy(struct core *c, struct policy *p);
const struct policy *core_policy(const struct core *c);

/*
 * What policy p would force-unmap of the existing mappings if it came into
 * force now (a dry run of core_set_policy; nothing changes): counts by
 * verdict and the first CORE_PREVIEW_RANGES runs of gfns.  0, or -EAGAIN
 * while the books are being rebuilt.
 */
#define CORE_PREVIEW_RANGES 64
struct core_preview_range {
    struct core_emu_id emu;
    uint16_t domid;
    uint64_t gfn;
    uint32_t nr;
    int      verdict;           /* enum policy_verdict */
};
struct core_policy_preview {
    uint64_t checked;           /* mappings looked at */
    uint64_t denied, reserved;  /* would be force-unmapped, by verdict */
    uint32_t nranges;
    int      truncated;         /* more runs than ranges[] holds */
    struct core_preview_range ranges[CORE_PREVIEW_RANGES];
};
int      core_policy_preview(const struct core *c, const struct policy *p,
                             struct core_policy_preview *out);
/* 1 when commands wait for room on the command ring. */
int      core_cmds_waiting(const struct core *c);

/* ---- emulators ------------------------------------------------------------ */

/* The emulator's end of its IOREQ channel (ioreq/channel.h). */
struct core_emu_chan {
    int   shm_fd, req_fd, resp_fd;      /* -1 for an in-process channel */
    void *page;                         /* the shared ioreq page */
};

/*
 * An emulator registers: it gets an IOREQ channel (with_fds: one another
 * process can map) and the invalidates of pages it already holds.
 * -EEXIST if it has a channel, -ENOSPC if the emulator table is full,
 * -EINVAL for unknown caps.
 */
int      core_emu_attach(struct core *c, const struct core_emu_id *id,
                         uint32_t caps, int with_fds, struct core_emu_chan *out);
/*
 * The emulator left (its connection closed).  Drain, not cancel: what it
 * was asked to drop is force-unmapped, so those pages still reach
 * RELEASED.  why is for the log and the emu_gone observer.
 */
void     core_emu_detach(struct core *c, const struct core_emu_id *id,
                         const char *why);

/* ---- drain ------------------------------------------------------------------ */

struct core_drain_result {
    const char *outcome;        /* "drained", "forced", "gone" */
    uint64_t    held_at_start;  /* pages it held when the drain began */
    uint64_t    forced;         /* pages force-unmapped at the deadline */
    uint64_t    mappings_left;  /* mappings it still has */
    uint64_t    elapsed_ns;
};
typedef void core_drain_done_fn(void *arg, const struct core_emu_id *id,
                                const struct core_drain_result *r);

/*
 * Drain an emulator: wait until it has unmapped every page it was asked
 * to drop; at the deadline force-unmap what it still holds.  unmap_all:
 * then drop its other mappings too.  done is called once (possibly from
 * inside this call).  0, -ENOENT (no such emulator), -EBUSY (a drain of
 * it is running) or -ENOMEM.
 */
int      core_drain(struct core *c, const struct core_emu_id *id,
                    uint64_t timeout_ns, int unmap_all,
                    core_drain_done_fn *done, void *arg);
/* Forget the drain of id without calling its done (its owner is going). */
void     core_drain_cancel(struct core *c, const struct core_emu_id *id);

/* ---- status and statistics ------------------------------------------------- */

struct core_status {
    int      resyncing;
    uint32_t domains, emulators;
    uint64_t mappings;
    uint64_t invalidating, flushing;    /* pages in flight */
    uint32_t flush_queued, flush_done;  /* highest flush seq seen */
};
void     core_status(const struct core *c, struct core_status *st);

#define CORE_LAT_BUCKETS 64
struct core_stats {
    uint64_t events, event_batches, unknown_events, bad_events;
    uint64_t maps, unmaps, unmatched_unmaps;
    /* pages_released: RELEASEs asked (a frame a failed flush leaked is
       counted here too; the shim keeps it: pages_leaked). */
    uint64_t pages_removed, pages_released, invalidates_sent;
    uint64_t global_invalidates_sent, forced_unmaps, flush_cmds;
    uint64_t release_cmds, cmd_errors, overflows, resyncs;
    uint64_t lat_count, lat_sum_ns, lat_max_ns;
    uint64_t lat_hist[CORE_LAT_BUCKETS];    /* log2 buckets, removed -> released ns */
    /* The policy and its timeouts. */
    uint64_t policy_denials, rmrr_maps, readonly_denials, quota_denials;
    uint64_t pending_quota_forced;
    uint64_t timeouts_invalidating, timeouts_flushing, devices_broken;
    uint64_t escalations, emu_kills, guest_crashes;
    /* Hostile or broken peers, and recovery. */
    uint64_t stale_dump_records;    /* DUMP_* not of our own dump: ignored */
    uint64_t release_refused;       /* RELEASE refused by the shim: resync */
    uint64_t untracked_forced;      /* emulator table full: force-unmapped */
    uint64_t emus_reclaimed;        /* emulator entries freed */
    uint64_t flushes_failed;        /* IOMAP_EV_FLUSH_FAILED received */
    uint64_t pages_leaked;          /* frames the shim keeps for ever */
    uint64_t release_leaked;        /* RELEASE commands answered -EIO */
    uint64_t cpu_unforceable;       /* force-unmaps of CPU mappings skipped */
};
const struct core_stats *core_stats(const struct core *c);

/* ---- iterators ------------------------------------------------------------
 * Each takes a cursor that starts at zero (memset or {0}) and moves past
 * what was returned; a cursor stays valid across core calls (the next call
 * resumes at the same key), so a client can page through a listing while
 * the books change.  Each returns 1 with *out filled, or 0 at the end.
 */

struct core_dom_info {
    uint16_t domid;
    uint32_t emulators;         /* emulators with mappings of it */
    uint64_t mappings;
    uint64_t pending_pages;     /* pages in flight */
};
int      core_dom_next(const struct core *c, uint32_t *cursor,
                       struct core_dom_info *out);

enum core_invalidate { CORE_INV_NONE, CORE_INV_PER_PAGE, CORE_INV_GLOBAL };

struct core_emu_info {
    struct core_emu_id id;
    int      alive, registered;
    enum core_invalidate invalidate;
    uint64_t mappings;
    uint32_t domains;           /* domains it maps */
    uint64_t held_pages;        /* removed pages waiting for it */
    uint32_t queued_ranges, in_flight;
    uint64_t invalidates_sent, answers, forced_unmaps, bad_unmaps;
};
int      core_emu_next(const struct core *c, uint32_t *cursor,
                       struct core_emu_info *out);
/* 0 or -ENOENT. */
int      core_emu_find(const struct core *c, const struct core_emu_id *id,
                       struct core_emu_info *out);

/* Mappings, in (emulator, domain, gfn) order. */
struct core_map_filter {
    int      have_domid, have_emu;
    uint16_t domid;
    struct core_emu_id emu;
    uint64_t gfn_lo, gfn_hi;    /* inclusive */
};
struct core_map_cursor {
    uint32_t slot, domid;
    uint64_t gfn;
};
struct core_map_info {
    struct core_emu_id emu;
    uint16_t domid;
    uint64_t gfn;
    uint32_t count;             /* mappings of that gfn by that emulator */
};
/* Up to max mappings into out[]; the number written (0: the end). */
size_t   core_map_list(const struct core *c, const struct core_map_filter *f,
                       struct core_map_cursor *cur, struct core_map_info *out,
                       size_t max);

/* Mappings of gfn by one emulator (0 if none, or while resyncing). */
uint32_t core_map_count(const struct core *c, const struct core_emu_id *emu,
                        uint16_t domid, uint64_t gfn);

/* Pages in flight. */
enum core_page_state {
    CORE_PAGE_INVALIDATING = 1,
    CORE_PAGE_FLUSHING,
    CORE_PAGE_NEW,              /* rebuilt by a resync, not yet evaluated */
};
struct core_page_filter {
    int      have_domid;
    uint16_t domid;
    int      state;             /* 0: any, else enum core_page_state */
};
struct core_page_info {
    uint32_t handle;            /* for core_page_holder, until the next core call */
    uint16_t domid;
    uint64_t gfn, mfn;
    enum core_page_state state;
    uint64_t age_ns;
    uint32_t cover_seq;         /* the flush that must complete first */
    int      flush_queued;      /* a flush >= cover_seq is queued */
    uint32_t nholders;          /* emulators that still map it */
};
struct core_holder {
    struct core_emu_id emu;
    uint32_t count;
};
/*
 * The next page in flight from *cursor, looking at no more than *budget
 * slots (decremented): 0 with *budget == 0 means "ask again from
 * *cursor", 0 with budget left means the end.
 */
int      core_page_next(const struct core *c, const struct core_page_filter *f,
                        uint64_t *cursor, uint32_t *budget,
                        struct core_page_info *out);
/* Holder i (< nholders) of the page of a core_page_info; 0 or -ENOENT. */
int      core_page_holder(const struct core *c, uint32_t handle, uint32_t i,
                          struct core_holder *out);
/* The page in flight of (domid, gfn) with frame mfn: 0 and *out, or -ENOENT. */
int      core_page_find(const struct core *c, uint16_t domid, uint64_t gfn,
                        uint64_t mfn, struct core_page_info *out);

#endif
