/* SPDX-License-Identifier: MIT */
/*
 * Event ingestion: take the shim's events in batches, apply them to the
 * tracker and the page lifecycle in ring order (I5), and post commands.
 */
#include "config.h"

#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "daemon/core/core_priv.h"
#include "util/log.h"
#include "policy/policy.h"

#define BATCH 256

int
core_init(struct core *d, const struct core_env *env)
{
    memset(d, 0, sizeof(*d));
    d->env = *env;
    d->ring = env->ring;
    d->pages_free = PAGE_NONE;
    d->fl_head = d->fl_tail = PAGE_NONE;
    d->inv_head = d->inv_tail = PAGE_NONE;
    LIST_INIT(&d->drains);
    /*
     * Dump ids start at random: a daemon must not take a dead
     * predecessor's dump (left on the ring) for its own.
     */
    if (getrandom(&d->rs_id, sizeof(d->rs_id), GRND_NONBLOCK) != sizeof(d->rs_id))
        d->rs_id = core_clock(d) ^ ((uint64_t)getpid() << 32);
    return core_set_policy(d, NULL);
}

static void
emu_map_free(struct emu_map *em)
{
    LIST_REMOVE(em, dom_link);
    LIST_REMOVE(em, emu_link);
    fset_free(&em->fs);
    free(em);
}

static void
dom_free(struct core *d, struct dom *dm)
{
    struct emu_map *em;

    pages_drop_domain(d, dm);
    while ((em = LIST_FIRST(&dm->maps)) != NULL)
        emu_map_free(em);
    pidx_free(d, dm);
    d->doms[dm->domid] = NULL;
    d->ndoms--;
    free(dm);
}

void
core_fini(struct core *d)
{
    for (uint32_t i = 0; i < IOMAPD_MAX_DOMID; i++)
        if (d->doms[i])
            dom_free(d, d->doms[i]);
    for (uint32_t i = 0; i < d->nemus; i++)
        if (d->emus[i]) {
            emu_unregister(d, d->emus[i]);
            free(d->emus[i]->q);
            free(d->emus[i]);
        }
    drains_free(d);
    pages_fini(d);
    free(d->rs_new);
    free(d->rs_maps);
    free(d->out);
    free(d->ans);
    policy_free(d->policy);
    memset(d, 0, sizeof(*d));
}

/* ---- resync --------------------------------------------------------------- */

/*
 * Ask for the dump again from scratch, under a new id: chunks of any
 * earlier dump that are still on the ring (ours, or a dead predecessor's)
 * are then told apart by their DUMP_BEGIN and ignored.
 */
static void
rs_request(struct core *d)
{
    struct iomap_cmd ack = { .type = IOMAP_CMD_ACK, .nr = 1 };
    struct iomap_cmd dump = { .type = IOMAP_CMD_DUMP, .nr = 1 };

    d->rs_id++;
    d->rs_in_chunk = 0;
    d->rs_chunks = 0;
    d->rs_nmaps = 0;
    d->rs_domid = 0;
    d->rs_gfn = 0;
    dump.mfn = d->rs_id;
    if (iomap_ring_overflowed(d->ring))
        cmd_post(d, &ack);
    cmd_post(d, &dump);
}

void
core_resync(struct core *d)
{
    if (d->resync == RS_AWAIT)
        return;                     /* one is already on its way */
    log_info("resynchronising with the shim");
    d->st.resyncs++;
    /* Forget the books: the dump rebuilds them.  Queued ioreqs go too. */
    pages_drop_all(d);
    for (uint32_t i = 0; i < IOMAPD_MAX_DOMID; i++)
        if (d->doms[i])
            dom_free(d, d->doms[i]);
    for (uint32_t i = 0; i < d->nemus; i++)
        if (d->emus[i]) {
            d->emus[i]->qlen = d->emus[i]->qhead = 0;
            d->emus[i]->need_global = 0;
            d->emus[i]->held_pages = 0;
        }
    /* Releases and force-unmaps already queued stay valid and ordered. */
    d->resync = RS_AWAIT;
    for (uint32_t i = 0; i < d->nemus; i++)
        if (d->emus[i])
            d->emus[i]->rs_seen = 0;
    rs_request(d);
}

/*
 * During a resync, an event about (domid, gfn) is applied only if that key
 * is below the cursor: keys at or after it are covered by a later chunk.
 * Returns how many of the nr frames from gfn to apply (a prefix).
 */
static uint32_t
rs_prefix(const struct core *d, uint16_t domid, uint64_t gfn, uint32_t nr)
{
    if (d->resync == RS_NONE)
        return nr;
    if (d->resync == RS_AWAIT)
        return 0;
    if (domid < d->rs_domid)
        return nr;
    if (domid > d->rs_domid || gfn >= d->rs_gfn)
        return 0;
    return d->rs_gfn - gfn < nr ? (uint32_t)(d->rs_gfn - gfn) : nr;
}

static int untrackable(struct core *d, const struct iomap_event *ev, uint32_t n);

/* A DUMP_MAP of the current chunk, applied at its end (rs_dump_end). */
static void
rs_note_map(struct core *d, const struct iomap_event *ev)
{
    if (d->rs_nmaps == d->rs_capmaps) {
        uint32_t ncap = d->rs_capmaps ? d->rs_capmaps * 2 : 256;
        struct iomap_event *n = realloc(d->rs_maps, ncap * sizeof(*n));

        if (n == NULL)
            fatalx("%s: out of memory rebuilding mappings", __func__);
        d->rs_maps = n;
        d->rs_capmaps = ncap;
    }
    d->rs_maps[d->rs_nmaps++] = *ev;
}

/* The chunk's mappings: of a held page (same frame) a holder, else live. */
static void
rs_apply_maps(struct core *d)
{
    for (uint32_t k = 0; k < d->rs_nmaps; k++) {
        const struct iomap_event *ev = &d->rs_maps[k];
        struct core_emu_id id = EV_EMU_ID(ev);
        struct emu *e;
        struct dom *dm;

        if (untrackable(d, ev, ev->nr))
            continue;
        e = emu_get(d, &id, 1);
        dm = dom_get(d, ev->domid, 1);
        for (uint32_t i = 0; e && dm && i < ev->nr; i++) {
            uint32_t pi = page_find(d, dm, ev->gfn + i, ev->arg + i);

            if (pi != PAGE_NONE) {
                page_add_holder(d, pi, e, 1);
            } else {
                struct emu_map *em = emu_map_get(d, e, dm, 1);

                if (em == NULL || fset_add(&em->fs, ev->gfn + i) < 0)
                    fatalx("%s: out of memory rebuilding mappings", __func__);
            }
        }
    }
    d->rs_nmaps = 0;
}

/* A page of the current dump chunk, evaluated at its end (rs_dump_end). */
static void
rs_note_new(struct core *d, uint32_t pi)
{
    if (d->rs_nnew == d->rs_capnew) {
        uint32_t ncap = d->rs_capnew ? d->rs_capnew * 2 : 256;
        uint32_t *n = realloc(d->rs_new, ncap * sizeof(*n));

        if (n == NULL)
            fatalx("%s: out of memory rebuilding pages in flight", __func__);
        d->rs_new = n;
        d->rs_capnew = ncap;
    }
    d->rs_new[d->rs_nnew++] = pi;
}

static void
rs_dump_end(struct core *d, const struct iomap_event *ev)
{
    /*
     * The shim's own counters: the first chunk's are taken as they are (a
     * new daemon knows nothing yet), later ones only move them forward.
     */
    if (d->rs_chunks++ == 0) {
        d->max_queued = ev->seq;
        if (ev->arg <= UINT32_MAX)
            d->max_done = (uint32_t)ev->arg;
    } else {
        if (seq_after(ev->seq, d->max_queued))
            d->max_queued = ev->seq;
        if (ev->arg <= UINT32_MAX && seq_after((uint32_t)ev->arg, d->max_done))
            d->max_done = (uint32_t)ev->arg;
    }
    rs_apply_maps(d);
    /* Pages of this chunk: decide now that all their holders are known. */
    for (uint32_t i = 0; i < d->rs_nnew; i++) {
        uint32_t pi = d->rs_new[i];

        if (d->pages[pi].state == PAGE_NEW && d->pages[pi].resync_new)
            page_evaluate(d, pi);
    }
    d->rs_nnew = 0;
    d->rs_in_chunk = 0;
    if (ev->nr) {
        struct iomap_cmd dump = { .type = IOMAP_CMD_DUMP, .nr = 1,
                                  .domid = ev->domid, .gfn = ev->gfn,
                                  .mfn = d->rs_id };

        d->resync = RS_CHUNKS;
        d->rs_domid = ev->domid;
        d->rs_gfn = ev->gfn;
        cmd_post(d, &dump);
        return;
    }
    d->resync = RS_NONE;
    log_info("resync complete: %llu mappings, %llu pages in flight",
             (unsigned long long)core_mappings(d),
             (unsigned long long)(d->n_invalidating + d->n_flushing));
    /*
     * Emulators that died while we were away (their EMULATOR_GONE may have
     * been lost in an overflow): the first chunk named every ioreq server
     * the shim knows, and whether it still exists.  Take back what the
     * dead ones map.
     */
    for (uint32_t i = 0; i < d->nemus; i++) {
        struct emu *e = d->emus[i];

        if (e == NULL)
            continue;
        if (!e->rs_seen && e->alive) {
            log_info("emulator " EMU_FMT ": its ioreq server is gone (not in the dump)",
                     EMU_ARGS(e));
            e->alive = 0;
        }
        if (!e->alive && (!LIST_EMPTY(&e->maps) || e->held_pages))
            emu_force_unmap_all(d, e);
        if (!e->alive && e->has_chan) {
            /*
             * Its EMULATOR_GONE was lost: as if it had come.  Its channel
             * closes (a registration made meanwhile for that name goes
             * too: the process registers again once this is over).
             */
            struct core_emu_id id = emu_id_of(e);

            emu_unregister(d, e);
            CORE_OBSERVE(d, emu_gone, &id, "gone while the daemon was resynchronising");
        }
    }
    core_recheck_policy(d);   /* dumped mappings never met the map check */
    pages_flush_done(d);
}

/* ---- events ------------------------------------------------------------------ */

static int
valid_frames(uint64_t gfn, uint64_t mfn, uint32_t nr)
{
    return nr >= 1 && nr <= IOMAP_MAX_NR && gfn <= IOMAP_MAX_FRAME - nr &&
           mfn <= IOMAP_MAX_FRAME - nr;
}

/*
 * A mapping the books cannot hold (the emulator table is full: I4 bounds
 * it) is taken back through the shim rather than left untracked: an
 * untracked mapping of a page that is later removed would be released
 * while mapped.
 */
static int
untrackable(struct core *d, const struct iomap_event *ev, uint32_t n)
{
    struct core_emu_id id = EV_EMU_ID(ev);

    if (d->nemus < IOMAPD_MAX_EMUS || emu_get(d, &id, 0) != NULL)
        return 0;
    for (uint32_t i = 0; i < d->nemus; i++)
        if (d->emus[i] == NULL)
            return 0;
    d->st.untracked_forced += n;
    if (d->st.untracked_forced == n || (d->st.untracked_forced & 0xfff) < n)
        log_warnx("emulator table full (%d): mappings of " CORE_EMU_FMT
                  " force-unmapped (%llu so far)", IOMAPD_MAX_EMUS,
                  CORE_EMU_ARGS(&id), (unsigned long long)d->st.untracked_forced);
    emu_force_unmap_id(d, &id, ev->gfn, n);
    return 1;
}

static int
ev_map(struct core *d, const struct iomap_event *ev, uint32_t n)
{
    struct core_emu_id id = EV_EMU_ID(ev);
    struct emu *e;
    struct dom *dm;
    struct emu_map *em;

    if (untrackable(d, ev, n))
        return 0;
    e = emu_get(d, &id, 1);
    dm = dom_get(d, ev->domid, 1);
    em = e && dm ? emu_map_get(d, e, dm, 1) : NULL;
    if (em == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        if (fset_add(&em->fs, ev->gfn + i) < 0)
            return -ENOMEM;
    d->st.maps += n;
    enforce_map(d, ev, e, dm, n);
    return 0;
}

static int
ev_unmap(struct core *d, const struct iomap_event *ev, uint32_t n)
{
    struct core_emu_id id = EV_EMU_ID(ev);
    struct emu *e = emu_get(d, &id, 0);
    struct dom *dm = dom_get(d, ev->domid, 0);
    struct emu_map *em = e && dm ? emu_map_get(d, e, dm, 0) : NULL;
    int bad = 0;

    if (e == NULL || dm == NULL) {
        d->st.unmatched_unmaps += n;
        return -ENOENT;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint64_t gfn = ev->gfn + i;
        uint32_t pi = page_find(d, dm, gfn, ev->arg + i);

        if (pi != PAGE_NONE && page_unmapped(d, dm, pi, e, ev->seq) == 0)
            continue;
        if (em && fset_del(&em->fs, gfn) >= 0)
            continue;
        bad++;
    }
    d->st.unmaps += n;
    if (ev->flags & IOMAP_F_FORCED)
        d->st.forced_unmaps += n;
    if (bad) {
        d->st.unmatched_unmaps += (uint64_t)bad;
        e->bad_unmaps += (uint64_t)bad;
        return -ENOENT;
    }
    return 0;
}

static void
ev_domain_destroyed(struct core *d, uint16_t domid)
{
    struct dom *dm = dom_get(d, domid, 0);

    if (dm)
        dom_free(d, dm);
    /*
     * Emulators living in that domain are gone with it, and so are the
     * ioreq servers that served it.
     */
    for (uint32_t i = 0; i < d->nemus; i++) {
        struct emu *e = d->emus[i];
        struct emu_map *em, *next;
        struct core_emu_id id;

        if (e == NULL || (e->emu_domid != domid && e->target != domid))
            continue;
        e->alive = 0;
        id = emu_id_of(e);
        CORE_OBSERVE(d, emu_gone, &id, e->emu_domid == domid ?
                     "its domain was destroyed" : "its target domain was destroyed");
        for (em = LIST_FIRST(&e->maps); em; em = next) {
            next = LIST_NEXT(em, emu_link);
            emu_map_free(em);
        }
        /* Its holds on pages in flight went with the domain (the shim dropped them). */
        pages_emu_dropped(d, e);
    }
}

static void
apply(struct core *d, const struct iomap_event *ev)
{
    uint32_t n;

    switch (ev->type) {
    case IOMAP_EV_MAP:
    case IOMAP_EV_UNMAP:
    case IOMAP_EV_PAGE_REMOVED:
        if (!valid_frames(ev->gfn, ev->arg, ev->nr) || ev->domid >= IOMAPD_MAX_DOMID ||
            (ev->flags & ~IOMAP_F_VALID_MASK)) {
            d->st.bad_events++;
            log_warnx("%s: %s event with bad fields (d%u gfn %#llx nr %u): ignored",
                      __func__, iomap_event_name(ev->type), ev->domid,
                      (unsigned long long)ev->gfn, ev->nr);
            return;
        }
        n = rs_prefix(d, ev->domid, ev->gfn, ev->nr);
        if (n == 0)
            return;
        if (ev->type == IOMAP_EV_MAP) {
            if (ev_map(d, ev, n) < 0) {
                log_warnx("%s: out of memory tracking a mapping: resync", __func__);
                core_resync(d);
            }
        } else if (ev->type == IOMAP_EV_UNMAP) {
            if (ev_unmap(d, ev, n) < 0) {
                char who[32];

                snprintf(who, sizeof(who), "%u:%u:%u", ev->emu_domid, ev->domid,
                         ev->ioservid);
                log_pages(LOG_LVL_WARN, "unmap:", ev->domid, who, ev->gfn, n,
                          "matches no tracked mapping");
            }
        } else {
            pages_removed(d, ev->domid, ev->gfn, ev->arg, n, ev->seq,
                          !!(ev->flags & IOMAP_F_CPU));
        }
        return;
    case IOMAP_EV_FLUSH:
        if (seq_after(ev->seq, d->max_queued))
            d->max_queued = ev->seq;
        return;
    case IOMAP_EV_FLUSH_DONE:
        /*
         * A completion of a flush never queued would let pages go before
         * their flush (I1).  Outside a resync every queued flush was seen
         * (IOMAP_EV_FLUSH precedes its completion), so refuse it.
         */
        if (d->resync == RS_NONE && seq_after(ev->seq, d->max_queued)) {
            d->st.bad_events++;
            log_warnx("%s: completion of flush %u, but only %u were queued: ignored",
                      __func__, ev->seq, d->max_queued);
            return;
        }
        if (seq_after(ev->seq, d->max_done)) {
            d->max_done = ev->seq;
            if (seq_after(d->max_done, d->max_queued))
                d->max_queued = d->max_done;
            pages_flush_done(d);
        }
        return;
    case IOMAP_EV_FLUSH_FAILED:
        /*
         * The shim keeps the frames whose flush failed for ever (it
         * never returns a page a device may still translate through);
         * seq is not done.  Ask for another flush so that the pages
         * waiting on seq get a completion that covers them; RELEASE of a
         * leaked one is then answered -EIO, which is expected.
         */
        d->st.flushes_failed++;
        d->st.pages_leaked += ev->nr;
        d->flush_wanted = 1;
        log_warnx("%s: flush %u failed (error %d, emulator domain %u): "
                  "the shim leaks %u frame(s)", __func__, ev->seq,
                  (int)ev->arg, ev->emu_domid, ev->nr);
        return;
    case IOMAP_EV_DOMAIN_DESTROYED:
        if (ev->domid >= IOMAPD_MAX_DOMID) {
            d->st.bad_events++;
            return;
        }
        /*
         * The shim dropped everything of and by the domain: its pages, and
         * the mappings its emulators (a stub domain's QEMU) hold of other
         * domains, which a chunk applied already may have brought.  No
         * cursor says which of that the books have: mid-dump, start the
         * dump again (it will not show the domain).  Before the first
         * chunk, the dump reflects it already.
         */
        if (d->resync == RS_NONE) {
            ev_domain_destroyed(d, ev->domid);
        } else if (d->resync == RS_CHUNKS) {
            log_info("domain %u destroyed during a resync: starting it again", ev->domid);
            core_resync(d);
        }
        return;
    case IOMAP_EV_EMULATOR_GONE: {
        struct core_emu_id id = EV_EMU_ID(ev);
        struct emu *e = emu_get(d, &id, 0);

        if (e == NULL)
            return;
        log_info("emulator " EMU_FMT " gone: force-unmapping %llu pages",
                 EMU_ARGS(e), (unsigned long long)e->held_pages);
        e->alive = 0;
        emu_unregister(d, e);
        id = emu_id_of(e);
        CORE_OBSERVE(d, emu_gone, &id, "shim reported it gone");
        if (d->resync == RS_NONE)
            emu_force_unmap_all(d, e);
        return;
    }
    case IOMAP_EV_OVERFLOW:
        d->st.overflows++;
        core_resync(d);
        return;
    case IOMAP_EV_DUMP_BEGIN:
        if (d->resync == RS_NONE) {
            d->st.bad_events++;
            return;
        }
        if (ev->arg != d->rs_id) {
            d->st.stale_dump_records++;     /* an earlier dump's, or a predecessor's */
            return;
        }
        d->rs_in_chunk = 1;
        d->resync = RS_CHUNKS;
        return;
    case IOMAP_EV_DUMP_EMU:
    case IOMAP_EV_DUMP_HELD:
    case IOMAP_EV_DUMP_MAP:
    case IOMAP_EV_DUMP_END:
        if (d->resync == RS_NONE) {
            d->st.bad_events++;
            return;
        }
        if (!d->rs_in_chunk) {
            d->st.stale_dump_records++;     /* not between our BEGIN and END */
            return;
        }
        if (ev->type == IOMAP_EV_DUMP_END) {
            rs_dump_end(d, ev);
            return;
        }
        if (ev->domid >= IOMAPD_MAX_DOMID ||
            (ev->type != IOMAP_EV_DUMP_EMU && !valid_frames(ev->gfn, ev->arg, ev->nr))) {
            d->st.bad_events++;
            return;
        }
        if (ev->type == IOMAP_EV_DUMP_EMU) {
            struct core_emu_id id = EV_EMU_ID(ev);
            struct emu *e = emu_get(d, &id, 1);

            if (e) {
                e->rs_seen = 1;
                e->alive = ev->arg != 0;
            }
            return;
        }
        if (ev->type == IOMAP_EV_DUMP_HELD) {
            struct dom *dm = dom_get(d, ev->domid, 1);

            for (uint32_t i = 0; dm && i < ev->nr; i++) {
                uint32_t pi = page_alloc(d, dm, ev->gfn + i, ev->arg + i);

                if (pi == PAGE_NONE)
                    fatalx("%s: out of memory rebuilding pages in flight", __func__);
                d->pages[pi].cover_seq = ev->seq;
                d->pages[pi].unheld = !!(ev->flags & IOMAP_F_CPU);
                d->pages[pi].resync_new = 1;
                rs_note_new(d, pi);
            }
        } else {
            /*
             * A mapping: applied at the chunk's end, once all its held
             * pages are known, whatever order the records came in (a
             * DUMP_MAP of nr frames may start before a held page it
             * covers; the ABI promises no order within a chunk).
             */
            rs_note_map(d, ev);
        }
        return;
    case IOMAP_EV_CMD_RESULT:
        if (ev->flags == IOMAP_CMD_RELEASE && (int32_t)ev->seq == -EIO) {
            /* Leaked by a failed flush (above): the rest were released. */
            d->st.release_leaked++;
            return;
        }
        d->st.cmd_errors++;
        if (ev->flags == IOMAP_CMD_DUMP && d->resync != RS_NONE) {
            struct iomap_cmd dump = { .type = IOMAP_CMD_DUMP, .nr = 1,
                                      .domid = ev->domid, .gfn = ev->gfn,
                                      .mfn = d->rs_id };

            cmd_post(d, &dump);     /* the ring was busy: ask again */
            return;
        }
        log_warnx("shim refused %s command %llu (d%u gfn %#llx nr %u): error %d",
                  iomap_cmd_name(ev->flags), (unsigned long long)ev->arg,
                  ev->domid, (unsigned long long)ev->gfn, ev->nr, (int32_t)ev->seq);
        /*
         * A refused RELEASE means the books and the shim disagree (the
         * page is still mapped, or its flush is not done): the shim kept
         * its reference, which is safe, but nothing would ever ask again.
         * Rebuild the books from the shim so that the page gets released
         * once it really can be (I2).
         */
        if (ev->flags == IOMAP_CMD_RELEASE && d->resync == RS_NONE) {
            d->st.release_refused++;
            d->resync_wanted = 1;
        }
        return;
    default:
        d->st.unknown_events++;
        return;
    }
}

int
core_process(struct core *d)
{
    struct iomap_event batch[BATCH];
    int n, total = 0;

    d->now_valid = 0;
    emu_collect(d);
    for (;;) {
        n = iomap_ring_take_events(d->ring, batch, BATCH);
        if (n < 0) {
            log_warnx("%s: event ring indices are corrupt", __func__);
            d->now_valid = 0;
            return n;
        }
        if (n == 0)
            break;
        d->now_ns = core_clock(d);
        d->now_valid = 1;
        d->st.event_batches++;
        d->st.events += (uint64_t)n;
        for (int i = 0; i < n; i++)
            apply(d, &batch[i]);
        total += n;
        if (d->resync_wanted) {
            d->resync_wanted = 0;
            core_resync(d);
        }
    }
    if (iomap_ring_overflowed(d->ring)) {
        if (d->resync != RS_AWAIT) {
            d->st.overflows++;
            log_warnx("event ring overflowed (%u events lost): resync",
                      d->ring->hdr->lost);
            core_resync(d);
        } else if (d->out_len == 0 &&
                   iomap_ring_cmd_space(d->ring) == d->ring->cmd_slots) {
            /*
             * The shim took our ACK and DUMP, and overflowed again before
             * the chunk got through: that dump is lost.  Ask again under
             * a new id, or the resync would wait for ever.
             */
            d->st.overflows++;
            log_warnx("event ring overflowed again during a resync: asking again");
            rs_request(d);
        }
    }
    pages_judge_answers(d);
    emu_send_ioreqs(d);
    /* Releases that waited for room on the command ring. */
    if (d->fl_head != PAGE_NONE && seq_done(d->pages[d->fl_head].cover_seq, d->max_done)) {
        d->now_ns = core_clock(d);
        d->now_valid = 1;
        pages_flush_done(d);
    }
    d->now_valid = 0;
    drains_step(d);
    if (d->resync == RS_NONE)
        emu_reclaim(d);     /* not mid-resync: DUMP_EMU facts live in the entries */
    cmd_flush_out(d);
    return total;
}
