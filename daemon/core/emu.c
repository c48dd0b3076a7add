/* SPDX-License-Identifier: MIT */
/*
 * Emulators as the core sees them: identity (domain + ioreq server id),
 * their IOREQ channel, and the invalidates waiting for a free slot.  Below
 * the pages layer: it knows nothing of pages, only of ranges to ask for.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/core/core_priv.h"
#include "util/log.h"

struct emu *
emu_get(struct core *d, const struct core_emu_id *id, int create)
{
    struct emu *e;
    uint32_t slot = UINT32_MAX;

    for (uint32_t i = 0; i < d->nemus; i++) {
        e = d->emus[i];
        if (e == NULL) {
            if (slot == UINT32_MAX)
                slot = i;
            continue;
        }
        if (e->emu_domid == id->emu_domid && e->target == id->target &&
            e->ioservid == id->ioservid)
            return e;
    }
    if (!create)
        return NULL;
    if (slot == UINT32_MAX) {
        if (d->nemus == IOMAPD_MAX_EMUS) {
            log_warnx("%s: more than %d emulators: " CORE_EMU_FMT " not tracked",
                      __func__, IOMAPD_MAX_EMUS, CORE_EMU_ARGS(id));
            return NULL;
        }
        slot = d->nemus++;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->emu_domid = id->emu_domid;
    e->target = id->target;
    e->ioservid = id->ioservid;
    e->idx = (uint16_t)slot;
    e->alive = 1;
    e->chan.req_fd = e->chan.resp_fd = e->chan.shm_fd = -1;
    LIST_INIT(&e->maps);
    d->emus[slot] = e;
    return e;
}

int
emu_register(struct core *d, struct emu *e, uint32_t caps, int with_fds)
{
    int rc;

    if (e->has_chan)
        return -EEXIST;
    if (caps & ~IOMAP_EMU_CAP_MASK)
        return -EINVAL;
    rc = ioreq_chan_create(&e->chan, e->emu_domid, e->ioservid, caps, with_fds);
    if (rc < 0)
        return rc;
    e->caps = caps;
    e->has_chan = 1;
    e->killed = 0;
    /*
     * A registration is a new ioreq server of that name (Xen reuses ids).
     * What the shim said was gone stays gone: its leftover mappings are
     * taken back first (at the end of a resync, when one is running, so
     * that the dump's word on it is not lost).
     */
    if (!e->alive && d->resync == RS_NONE) {
        if (!LIST_EMPTY(&e->maps) || e->held_pages)
            emu_force_unmap_all(d, e);
        e->alive = 1;
    }
    log_info("emulator " EMU_FMT " registered (%s)", EMU_ARGS(e),
             caps & IOMAP_EMU_CAP_INVALIDATE_PAGE ? "per-page invalidate" :
             "legacy global invalidate");
    return 0;
}

/*
 * The emulator's channel closes.  What it was asked to drop is the pages
 * layer's business (pages_emu_left); later removals of its other mappings
 * are force-unmapped (emu_queue_invalidate without a channel).
 */
void
emu_unregister(struct core *d, struct emu *e)
{
    if (!e->has_chan)
        return;
    ioreq_chan_destroy(&e->chan);
    e->has_chan = 0;
    e->qlen = e->qhead = 0;
    e->need_global = 0;
    (void)d;
}

void
emu_force_unmap_gfn(struct core *d, struct emu *e, uint16_t domid,
                    uint64_t gfn, uint32_t nr)
{
    struct iomap_cmd c = { .type = IOMAP_CMD_FORCE_UNMAP, .domid = domid,
                           .emu_domid = e->emu_domid,
                           .ioservid = e->ioservid, .nr = nr, .gfn = gfn };
    struct iomap_cmd *prev = cmd_last(d);

    if (emu_is_cpu(e)) {
        d->st.cpu_unforceable += nr;
        return;
    }
    if (prev && prev->type == IOMAP_CMD_FORCE_UNMAP && prev->domid == domid &&
        prev->emu_domid == e->emu_domid && prev->ioservid == e->ioservid &&
        !(prev->flags & IOMAP_F_ALL) && prev->gfn + prev->nr == gfn &&
        prev->nr + nr <= IOMAP_MAX_NR) {
        prev->nr += nr;
        return;
    }
    cmd_post(d, &c);
}

/*
 * The CPU mappings of an emulator domain (IOMAP_IOSERVID_ANY: Xen does not
 * know which of its ioreq servers made them) are dropped by whichever of
 * its emulators for that guest holds them: ask every registered one.
 * With none registered there is nobody to ask and nothing to force (the
 * shim cannot take a CPU mapping back): the page stays in INVALIDATING
 * until the domain unmaps it, which Xen's global invalidate asks of any
 * emulator that did not opt out.
 */
static void
cpu_queue_invalidate(struct core *d, const struct emu *w, uint16_t domid,
                     uint64_t gfn)
{
    for (uint32_t i = 0; i < d->nemus; i++) {
        struct emu *e = d->emus[i];

        if (e && e != w && e->emu_domid == w->emu_domid &&
            e->target == w->target && e->has_chan && e->alive)
            emu_queue_invalidate(d, e, domid, gfn);
    }
}

void
emu_queue_invalidate(struct core *d, struct emu *e, uint16_t domid,
                     uint64_t gfn)
{
    struct range *last;

    if (emu_is_cpu(e)) {
        cpu_queue_invalidate(d, e, domid, gfn);
        return;
    }
    if (!e->has_chan || !e->alive) {
        /* Nobody to ask: the shim takes the mapping back. */
        emu_force_unmap_gfn(d, e, domid, gfn, 1);
        return;
    }
    if (!(e->caps & IOMAP_EMU_CAP_INVALIDATE_PAGE)) {
        e->need_global = 1;
        return;
    }
    last = e->qlen ? &e->q[(e->qhead + e->qlen - 1) & (e->qcap - 1)] : NULL;
    if (last && last->domid == domid && last->gfn + last->nr == gfn &&
        last->nr < IOMAP_MAX_NR) {
        last->nr++;
        return;
    }
    if (e->qlen == e->qcap) {
        uint32_t ncap = e->qcap ? e->qcap * 2 : 64;
        struct range *nq = malloc(ncap * sizeof(*nq));

        if (nq == NULL) {
            log_warnx("%s: out of memory: emulator " EMU_FMT " gets a global invalidate",
                      __func__, EMU_ARGS(e));
            e->need_global = 1;
            return;
        }
        for (uint32_t i = 0; i < e->qlen; i++)
            nq[i] = e->q[(e->qhead + i) & (e->qcap - 1)];
        free(e->q);
        e->q = nq;
        e->qcap = ncap;
        e->qhead = 0;
    }
    e->q[(e->qhead + e->qlen) & (e->qcap - 1)] = (struct range){ .gfn = gfn, .nr = 1,
                                                          .domid = domid };
    e->qlen++;
}

void
emu_send_ioreqs(struct core *d)
{
    for (uint32_t i = 0; i < d->nemus; i++) {
        struct emu *e = d->emus[i];
        int sent = 0;

        if (e == NULL || !e->has_chan)
            continue;
        if (e->need_global &&
            ioreq_chan_send(&e->chan, IOMAP_IOREQ_TYPE_INVALIDATE, 0, 0, 0) >= 0) {
            e->need_global = 0;
            e->global_sent_at = core_clock(d);
            e->invalidates_sent++;
            d->st.global_invalidates_sent++;
            sent = 1;
        }
        while (e->qlen) {
            struct range *r = &e->q[e->qhead];

            if (ioreq_chan_send(&e->chan, IOMAP_IOREQ_TYPE_INVALIDATE_PAGE,
                                r->domid, r->gfn, r->nr) < 0)
                break;
            e->qhead = (e->qhead + 1) & (e->qcap - 1);
            e->qlen--;
            e->invalidates_sent++;
            d->st.invalidates_sent++;
            sent = 1;
        }
        if (sent)
            ioreq_chan_kick(&e->chan);
    }
}

struct collect_ctx {
    struct core *d;
    uint16_t       emu;
};

static void
collect(void *arg, const struct iomap_ioreq *req)
{
    struct collect_ctx *cc = arg;
    struct core *d = cc->d;

    if (d->ans_len == d->ans_cap) {
        uint32_t ncap = d->ans_cap ? d->ans_cap * 2 : 64;
        struct answer *n = realloc(d->ans, ncap * sizeof(*n));

        if (n == NULL)
            fatalx("%s: out of memory", __func__);
        d->ans = n;
        d->ans_cap = ncap;
    }
    d->ans[d->ans_len].emu = cc->emu;
    d->ans[d->ans_len].req = *req;
    d->ans_len++;
}

/*
 * Answers are collected before the event ring is drained and judged after:
 * an emulator unmaps (the shim posts the events) before it answers, so
 * every unmap it did is applied by the time its answer is looked at.
 */
void
emu_collect(struct core *d)
{
    for (uint32_t i = 0; i < d->nemus; i++) {
        struct emu *e = d->emus[i];
        struct collect_ctx cc = { d, (uint16_t)i };

        if (e == NULL || !e->has_chan || e->chan.busy == 0)
            continue;
        ioreq_chan_drain_fd(e->chan.resp_fd);
        ioreq_chan_reap(&e->chan, collect, &cc);
    }
}

void
emu_force_unmap_id(struct core *d, const struct core_emu_id *id, uint64_t gfn,
                   uint32_t nr)
{
    struct iomap_cmd c = { .type = IOMAP_CMD_FORCE_UNMAP, .domid = id->target,
                           .emu_domid = id->emu_domid, .ioservid = id->ioservid,
                           .nr = nr, .gfn = gfn };

    if (id->ioservid == IOMAP_IOSERVID_ANY) {
        d->st.cpu_unforceable += nr;
        return;
    }
    cmd_post(d, &c);
}

/*
 * Reclaim: an entry whose emulator has no channel, no mappings, no pages
 * it must still drop and no queued invalidates is freed, so that the
 * table holds only what is alive (stub domains get a new domid at every
 * guest restart; refused registrations leave nothing behind).  Pages
 * name holders by index: an entry is freed only with held_pages == 0.
 */
void
emu_reclaim(struct core *d)
{
    for (uint32_t i = 0; i < d->nemus; i++) {
        struct emu *e = d->emus[i];
        struct emu_map *em, *next;

        if (e == NULL || e->has_chan || e->held_pages || e->qlen || e->need_global)
            continue;
        for (em = LIST_FIRST(&e->maps); em; em = next) {
            next = LIST_NEXT(em, emu_link);
            if (em->fs.total == 0) {
                LIST_REMOVE(em, dom_link);
                LIST_REMOVE(em, emu_link);
                fset_free(&em->fs);
                free(em);
            }
        }
        if (!LIST_EMPTY(&e->maps))
            continue;
        d->emus[i] = NULL;
        free(e->q);
        free(e);
        d->st.emus_reclaimed++;
    }
    while (d->nemus && d->emus[d->nemus - 1] == NULL)
        d->nemus--;
}

void
emu_force_unmap_all(struct core *d, struct emu *e)
{
    struct iomap_cmd c = { .type = IOMAP_CMD_FORCE_UNMAP, .flags = IOMAP_F_ALL,
                           .domid = e->target, .emu_domid = e->emu_domid,
                           .ioservid = e->ioservid, .nr = 1 };

    e->qlen = e->qhead = 0;
    e->need_global = 0;
    if (emu_is_cpu(e)) {
        d->st.cpu_unforceable++;
        return;
    }
    cmd_post(d, &c);
}
uint64_t
emu_mappings(const struct emu *e)
{
    const struct emu_map *em;
    uint64_t n = 0;

    LIST_FOREACH(em, &e->maps, emu_link)
        n += em->fs.total;
    return n;
}

uint64_t
dom_mappings(const struct dom *dm)
{
    const struct emu_map *em;
    uint64_t n = 0;

    LIST_FOREACH(em, &dm->maps, dom_link)
        n += em->fs.total;
    return n;
}

/* ---- the domains and the emulators' mappings of them ------------------------ */

struct dom *
dom_get(struct core *d, uint16_t domid, int create)
{
    struct dom *dm;

    if (domid >= IOMAPD_MAX_DOMID)
        return NULL;
    dm = d->doms[domid];
    if (dm || !create)
        return dm;
    dm = calloc(1, sizeof(*dm));
    if (dm == NULL)
        return NULL;
    dm->domid = domid;
    LIST_INIT(&dm->maps);
    hmap_init(&dm->pidx_top);
    d->doms[domid] = dm;
    d->ndoms++;
    return dm;
}

struct emu_map *
emu_map_get(struct core *d, struct emu *e, struct dom *dm, int create)
{
    struct emu_map *em;

    (void)d;
    LIST_FOREACH(em, &e->maps, emu_link)
        if (em->dom == dm)
            return em;
    if (!create)
        return NULL;
    em = calloc(1, sizeof(*em));
    if (em == NULL)
        return NULL;
    em->emu = e;
    em->dom = dm;
    fset_init(&em->fs);
    LIST_INSERT_HEAD(&dm->maps, em, dom_link);
    LIST_INSERT_HEAD(&e->maps, em, emu_link);
    return em;
}

/* ---- totals over the emulator and domain tables ------------------------------ */

uint64_t
core_mappings(const struct core *d)
{
    uint64_t n = 0;

    for (uint32_t i = 0; i < d->nemus; i++)
        if (d->emus[i])
            n += emu_mappings(d->emus[i]);
    return n;
}

/* Kept by dom_get()/dom_free(): a status does not scan the domain table. */
uint32_t
core_domains(const struct core *d)
{
    return d->ndoms;
}

uint32_t
core_emulators(const struct core *d)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < d->nemus; i++)
        n += d->emus[i] != NULL;
    return n;
}
