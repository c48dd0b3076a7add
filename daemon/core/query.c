/* SPDX-License-Identifier: MIT */
/*
 * Read-only views of the books for the API, the simulated host and the
 * tests: status, statistics and cursor-based iterators.  The core owns the
 * data, so the core walks it (bgpd's rule); callers format what they get.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "daemon/core/core_priv.h"

void
core_status(const struct core *d, struct core_status *st)
{
    memset(st, 0, sizeof(*st));
    st->resyncing = d->resync != RS_NONE;
    st->domains = core_domains(d);
    st->emulators = core_emulators(d);
    st->mappings = core_mappings(d);
    st->invalidating = d->n_invalidating;
    st->flushing = d->n_flushing;
    st->flush_queued = d->max_queued;
    st->flush_done = d->max_done;
}

const struct core_stats *
core_stats(const struct core *d)
{
    return &d->st;
}

int
core_dom_next(const struct core *d, uint32_t *cursor, struct core_dom_info *out)
{
    for (uint32_t i = *cursor; i < IOMAPD_MAX_DOMID; i++) {
        const struct dom *dm = d->doms[i];
        const struct emu_map *em;

        if (dm == NULL)
            continue;
        memset(out, 0, sizeof(*out));
        out->domid = dm->domid;
        LIST_FOREACH(em, &dm->maps, dom_link) {
            out->mappings += em->fs.total;
            out->emulators += em->fs.total != 0;
        }
        out->pending_pages = dm->npending;
        *cursor = i + 1;
        return 1;
    }
    *cursor = IOMAPD_MAX_DOMID;
    return 0;
}

static void
emu_info(const struct emu *e, struct core_emu_info *out)
{
    const struct emu_map *em;

    memset(out, 0, sizeof(*out));
    out->id = emu_id_of(e);
    out->alive = e->alive;
    out->registered = e->has_chan;
    out->invalidate = !e->has_chan ? CORE_INV_NONE :
                      (e->caps & IOMAP_EMU_CAP_INVALIDATE_PAGE) ? CORE_INV_PER_PAGE :
                      CORE_INV_GLOBAL;
    LIST_FOREACH(em, &e->maps, emu_link) {
        out->mappings += em->fs.total;
        out->domains += em->fs.total != 0;
    }
    out->held_pages = e->held_pages;
    out->queued_ranges = e->qlen;
    out->in_flight = e->has_chan ? e->chan.busy : 0;
    out->invalidates_sent = e->invalidates_sent;
    out->answers = e->answers;
    out->forced_unmaps = e->forced_unmaps;
    out->bad_unmaps = e->bad_unmaps;
}

int
core_emu_next(const struct core *d, uint32_t *cursor, struct core_emu_info *out)
{
    for (uint32_t i = *cursor; i < d->nemus; i++)
        if (d->emus[i]) {
            emu_info(d->emus[i], out);
            *cursor = i + 1;
            return 1;
        }
    *cursor = d->nemus;
    return 0;
}

int
core_emu_find(const struct core *d, const struct core_emu_id *id,
              struct core_emu_info *out)
{
    for (uint32_t i = 0; i < d->nemus; i++) {
        const struct emu *e = d->emus[i];

        if (e && e->emu_domid == id->emu_domid && e->target == id->target &&
            e->ioservid == id->ioservid) {
            emu_info(e, out);
            return 0;
        }
    }
    return -ENOENT;
}

uint32_t
core_map_count(const struct core *d, const struct core_emu_id *id, uint16_t domid,
               uint64_t gfn)
{
    struct emu *e = emu_get((struct core *)d, id, 0);
    struct dom *dm = domid < IOMAPD_MAX_DOMID ? d->doms[domid] : NULL;
    struct emu_map *em = e && dm ? emu_map_get((struct core *)d, e, dm, 0) : NULL;

    return em ? fset_count(&em->fs, gfn) : 0;
}

/*
 * The emulator's map of the smallest domid >= from that has mappings (and
 * passes the filter), or NULL.  An emulator maps few domains: its list is
 * walked, not the domain table.
 */
static const struct emu_map *
map_from(const struct emu *e, const struct core_map_filter *f, uint32_t from)
{
    const struct emu_map *it, *best = NULL;

    LIST_FOREACH(it, &e->maps, emu_link) {
        uint32_t id = it->dom->domid;

        if (id < from || it->fs.total == 0 || (f->have_domid && id != f->domid))
            continue;
        if (best == NULL || id < best->dom->domid)
            best = it;
    }
    return best;
}

/*
 * Order: emulator slot, then domid, then gfn; the cursor is the next key.
 * A call costs what it returns plus a walk of the emulators' domain
 * lists: fset_next() resumes at the cursor's leaf.
 */
size_t
core_map_list(const struct core *d, const struct core_map_filter *f,
              struct core_map_cursor *cur, struct core_map_info *out, size_t max)
{
    size_t n = 0;

    for (; cur->slot < d->nemus && n < max; cur->slot++, cur->domid = 0, cur->gfn = 0) {
        const struct emu *e = d->emus[cur->slot];
        struct core_emu_id eid;

        if (e == NULL)
            continue;
        eid = emu_id_of(e);
        if (f->have_emu && !core_emu_id_eq(&eid, &f->emu))
            continue;
        for (;;) {
            const struct emu_map *em = map_from(e, f, cur->domid);
            uint64_t g;

            if (em == NULL)
                break;
            if (em->dom->domid != cur->domid) {
                cur->domid = em->dom->domid;
                cur->gfn = 0;
            }
            g = cur->gfn > f->gfn_lo ? cur->gfn : f->gfn_lo;
            for (g = fset_next(&em->fs, g); g != UINT64_MAX && g <= f->gfn_hi;
                 g = g == UINT64_MAX - 1 ? UINT64_MAX : fset_next(&em->fs, g + 1)) {
                if (n == max) {
                    cur->gfn = g;
                    return n;
                }
                out[n].emu = eid;
                out[n].domid = (uint16_t)cur->domid;
                out[n].gfn = g;
                out[n].count = fset_count(&em->fs, g);
                n++;
            }
            cur->domid++;
            cur->gfn = 0;
            if (cur->domid >= IOMAPD_MAX_DOMID)
                break;
        }
    }
    return n;
}

static void
page_info(const struct core *d, uint32_t pi, struct core_page_info *out)
{
    const struct page *p = &d->pages[pi];
    uint64_t now = d->env.clock(d->env.arg);

    memset(out, 0, sizeof(*out));
    out->handle = pi;
    out->domid = p->domid;
    out->gfn = p->gfn;
    out->mfn = p->mfn;
    out->state = p->state == PAGE_INVALIDATING ? CORE_PAGE_INVALIDATING :
                 p->state == PAGE_FLUSHING ? CORE_PAGE_FLUSHING : CORE_PAGE_NEW;
    out->age_ns = now > p->t_removed ? now - p->t_removed : 0;
    out->cover_seq = p->cover_seq;
    out->flush_queued = !seq_after(p->cover_seq, d->max_queued);
    out->nholders = p->nholders;
}

/* The pool is walked by slot here, inside the core, and nowhere else. */
int
core_page_next(const struct core *d, const struct core_page_filter *f,
               uint64_t *cursor, uint32_t *budget, struct core_page_info *out)
{
    for (; *cursor < d->pages_cap && *budget; (*cursor)++) {
        const struct page *p = &d->pages[*cursor];

        (*budget)--;
        if (p->state == PAGE_FREE)
            continue;
        if ((f->state == CORE_PAGE_INVALIDATING && p->state != PAGE_INVALIDATING) ||
            (f->state == CORE_PAGE_FLUSHING && p->state != PAGE_FLUSHING) ||
            (f->have_domid && p->domid != f->domid))
            continue;
        page_info(d, (uint32_t)*cursor, out);
        (*cursor)++;
        return 1;
    }
    return 0;
}

int
core_page_holder(const struct core *d, uint32_t handle, uint32_t i,
                 struct core_holder *out)
{
    const struct page *p;
    const struct holder *h;
    const struct emu *e;

    if (handle >= d->pages_cap)
        return -ENOENT;
    p = &d->pages[handle];
    if (i >= p->nholders)
        return -ENOENT;
    h = page_holder(p, i);
    e = d->emus[h->emu];
    if (e == NULL)
        return -ENOENT;
    out->emu = emu_id_of(e);
    out->count = h->count;
    return 0;
}

int
core_page_find(const struct core *d, uint16_t domid, uint64_t gfn, uint64_t mfn,
               struct core_page_info *out)
{
    struct dom *dm = domid < IOMAPD_MAX_DOMID ? d->doms[domid] : NULL;
    uint32_t pi;

    if (dm == NULL)
        return -ENOENT;
    pi = page_find((struct core *)d, dm, gfn, mfn);
    if (pi == PAGE_NONE)
        return -ENOENT;
    page_info(d, pi, out);
    return 0;
}
