/* SPDX-License-Identifier: MIT */
/*
 * The lifecycle of removed pages: INVALIDATING -> FLUSHING -> RELEASED.
 *
 * Pages live in one array (d->pages) with a free list, so that removing a
 * million pages allocates nothing per page once the array has grown.  A
 * (domid, gfn) may have more than one page in flight (the gfn was
 * repopulated and removed again while the old frame was still held): they
 * are chained through 'next' from dom->pending and told apart by mfn.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "daemon/log.h"
#include "policy/policy.h"

static void
fl_insert(struct daemon *d, uint32_t pi)
{
    struct page *p = &d->pages[pi];

    p->fl_next = PAGE_NONE;
    p->fl_prev = d->fl_tail;
    if (d->fl_tail != PAGE_NONE)
        d->pages[d->fl_tail].fl_next = pi;
    else
        d->fl_head = pi;
    d->fl_tail = pi;
}

static void
fl_remove(struct daemon *d, uint32_t pi)
{
    struct page *p = &d->pages[pi];

    if (p->fl_prev != PAGE_NONE)
        d->pages[p->fl_prev].fl_next = p->fl_next;
    else
        d->fl_head = p->fl_next;
    if (p->fl_next != PAGE_NONE)
        d->pages[p->fl_next].fl_prev = p->fl_prev;
    else
        d->fl_tail = p->fl_prev;
}

uint32_t
page_alloc(struct daemon *d, struct dom *dm, uint64_t gfn, uint64_t mfn)
{
    uint32_t pi, head;
    struct page *p;

    if (d->pages_free == PAGE_NONE) {
        uint32_t ncap = d->pages_cap ? d->pages_cap * 2 : 4096;
        struct page *np = realloc(d->pages, (size_t)ncap * sizeof(*np));

        if (np == NULL)
            return PAGE_NONE;
        d->pages = np;
        for (uint32_t i = d->pages_cap; i < ncap; i++) {
            np[i].state = PAGE_FREE;
            np[i].next = i + 1 < ncap ? i + 1 : PAGE_NONE;
        }
        d->pages_free = d->pages_cap;
        d->pages_cap = ncap;
    }
    head = hmap_get(&dm->pending, gfn);
    pi = d->pages_free;
    if (hmap_put(&dm->pending, gfn, pi) < 0)
        return PAGE_NONE;
    p = &d->pages[pi];
    d->pages_free = p->next;
    memset(p, 0, sizeof(*p));
    p->gfn = gfn;
    p->mfn = mfn;
    p->domid = dm->domid;
    p->next = head;
    p->fl_prev = p->fl_next = PAGE_NONE;
    p->t_removed = d->clock(d);
    p->state = PAGE_NEW;
    dm->npending++;
    return pi;
}

static void
page_free(struct daemon *d, uint32_t pi)
{
    struct page *p = &d->pages[pi];
    struct dom *dm = d->doms[p->domid];
    uint32_t head = hmap_get(&dm->pending, p->gfn);

    /* Unlink from the (domid, gfn) chain. */
    if (head == pi) {
        if (p->next == PAGE_NONE)
            hmap_del(&dm->pending, p->gfn);
        else
            hmap_put(&dm->pending, p->gfn, p->next);
    } else {
        for (uint32_t q = head; q != PAGE_NONE; q = d->pages[q].next)
            if (d->pages[q].next == pi) {
                d->pages[q].next = p->next;
                break;
            }
    }
    if (p->state == PAGE_FLUSHING) {
        fl_remove(d, pi);
        d->n_flushing--;
    } else if (p->state == PAGE_INVALIDATING) {
        d->n_invalidating--;
    }
    for (unsigned i = 0; i < p->nholders; i++) {
        const struct holder *h = i < IOMAPD_INLINE_HOLDERS ? &p->h[i] :
                                 &p->more[i - IOMAPD_INLINE_HOLDERS];
        if (d->emus[h->emu])
            d->emus[h->emu]->held_pages--;
    }
    free(p->more);
    dm->npending--;
    p->state = PAGE_FREE;
    p->more = NULL;
    p->next = d->pages_free;
    d->pages_free = pi;
}

uint32_t
page_find(struct daemon *d, struct dom *dm, uint64_t gfn, uint64_t mfn)
{
    uint32_t pi = dm->npending ? hmap_get(&dm->pending, gfn) : HMAP_NONE;

    for (; pi != PAGE_NONE && pi != HMAP_NONE; pi = d->pages[pi].next)
        if (d->pages[pi].mfn == mfn)
            return pi;
    return PAGE_NONE;
}

static struct holder *
holder_at(struct page *p, unsigned i)
{
    return i < IOMAPD_INLINE_HOLDERS ? &p->h[i] : &p->more[i - IOMAPD_INLINE_HOLDERS];
}

int
page_has_holder(const struct page *p, uint16_t emu)
{
    for (unsigned i = 0; i < p->nholders; i++)
        if (holder_at((struct page *)p, i)->emu == emu)
            return 1;
    return 0;
}

void
page_add_holder(struct daemon *d, uint32_t pi, struct emu *e, uint32_t count)
{
    struct page *p = &d->pages[pi];
    struct holder *h;

    for (unsigned i = 0; i < p->nholders; i++) {
        h = holder_at(p, i);
        if (h->emu == e->idx) {
            h->count = (uint16_t)(h->count + count);
            return;
        }
    }
    if (p->nholders >= IOMAPD_INLINE_HOLDERS) {
        unsigned k = p->nholders - IOMAPD_INLINE_HOLDERS;
        struct holder *nm = realloc(p->more, (k + 1) * sizeof(*nm));

        if (nm == NULL) {
            /*
             * Cannot record the holder: keep the page safe by never
             * letting it reach FLUSHING through this emulator's unmaps;
             * the emulator is force-unmapped, which is always safe.
             */
            log_warnx("%s: out of memory for holder of gfn %#llx", __func__,
                      (unsigned long long)p->gfn);
            emu_force_unmap_all(d, e);
            return;
        }
        p->more = nm;
    }
    h = holder_at(p, p->nholders++);
    h->emu = e->idx;
    h->count = (uint16_t)count;
    e->held_pages++;
}

static void
holder_remove(struct page *p, unsigned i)
{
    *holder_at(p, i) = *holder_at(p, p->nholders - 1);
    p->nholders--;
}

static void
release(struct daemon *d, uint32_t pi)
{
    struct page *p = &d->pages[pi];
    struct iomap_cmd c = { .type = IOMAP_CMD_RELEASE, .domid = p->domid,
                           .nr = 1, .gfn = p->gfn, .mfn = p->mfn };
    uint64_t lat = d->clock(d) - p->t_removed;

    cmd_post(d, &c);
    d->st.pages_released++;
    d->st.lat_count++;
    d->st.lat_sum_ns += lat;
    if (lat > d->st.lat_max_ns)
        d->st.lat_max_ns = lat;
    d->st.lat_hist[lat ? 63 - __builtin_clzll(lat) : 0]++;
    DAEMON_HOOK(d, page_released, p->domid, p->gfn, p->mfn, lat);
    page_free(d, pi);
}

/*
 * A page with no holders left: release it if its flush is done, else
 * wait in FLUSHING (asking the shim for a flush if none is queued that
 * covers it).
 */
static void
to_flushing(struct daemon *d, uint32_t pi)
{
    struct page *p = &d->pages[pi];

    if (p->state == PAGE_INVALIDATING)
        d->n_invalidating--;
    if (p->cover_seq == 0 || p->cover_seq <= d->max_done) {
        if (p->state == PAGE_FLUSHING) {
            fl_remove(d, pi);
            d->n_flushing--;
        }
        p->state = PAGE_FLUSHING;   /* so page_free's accounting matches */
        fl_insert(d, pi);
        d->n_flushing++;
        release(d, pi);
        return;
    }
    if (p->state != PAGE_FLUSHING) {
        uint64_t age = d->clock(d) - p->t_removed;

        p->state = PAGE_FLUSHING;
        p->esc = 0;             /* the flush timeout starts now */
        p->flushing_ms = age / 1000000 > UINT32_MAX ? UINT32_MAX :
                         (uint32_t)(age / 1000000);
        fl_insert(d, pi);
        d->n_flushing++;
    }
    if (d->max_queued < p->cover_seq)
        d->flush_wanted = 1;
}

void
page_evaluate(struct daemon *d, uint32_t pi)
{
    struct page *p = &d->pages[pi];

    p->resync_new = 0;
    if (p->nholders == 0) {
        to_flushing(d, pi);
        return;
    }
    if (p->state != PAGE_INVALIDATING) {
        p->state = PAGE_INVALIDATING;
        d->n_invalidating++;
    }
    for (unsigned i = 0; i < p->nholders; i++) {
        struct emu *e = d->emus[holder_at(p, i)->emu];
        struct dom *dm = d->doms[p->domid];
        const struct policy *pol = d->policy;

        /*
         * Beyond a pending-release quota the emulator is not asked: its
         * mapping is taken back at once, so the books stop growing.
         */
        if ((pol->max_pending_per_emu && e->held_pages > pol->max_pending_per_emu) ||
            (pol->max_pending_per_dom && dm && dm->npending > pol->max_pending_per_dom)) {
            d->st.pending_quota_forced++;
            emu_force_unmap_gfn(d, e, p->domid, p->gfn, 1);
            continue;
        }
        emu_queue_invalidate(d, e, p->domid, p->gfn);
    }
}

void
pages_removed(struct daemon *d, uint16_t domid, uint64_t gfn, uint64_t mfn,
              uint32_t nr, uint32_t seq)
{
    struct dom *dm = dom_get(d, domid, 1);

    if (dm == NULL) {
        log_warnx("%s: out of memory for domain %u", __func__, domid);
        return;
    }
    for (uint32_t i = 0; i < nr; i++) {
        uint32_t pi = page_alloc(d, dm, gfn + i, mfn + i);
        struct emu_map *em;
        struct page *p;

        if (pi == PAGE_NONE) {
            /* The shim keeps holding the page; a resync will find it. */
            log_warnx("%s: out of memory tracking d%u gfn %#llx: resync",
                      __func__, domid, (unsigned long long)(gfn + i));
            daemon_resync(d);
            return;
        }
        p = &d->pages[pi];
        p->cover_seq = seq;
        d->st.pages_removed++;
        /* The gfn's mappings now belong to this (removed) frame. */
        LIST_FOREACH(em, &dm->maps, dom_link) {
            uint32_t n = em->fs.frames ? fset_take(&em->fs, gfn + i) : 0;

            if (n)
                page_add_holder(d, pi, em->emu, n);
        }
        page_evaluate(d, pi);
    }
}

int
page_unmapped(struct daemon *d, struct dom *dm, uint32_t pi, struct emu *e,
              uint32_t seq)
{
    struct page *p = &d->pages[pi];

    (void)dm;
    for (unsigned i = 0; i < p->nholders; i++) {
        struct holder *h = holder_at(p, i);

        if (h->emu != e->idx)
            continue;
        if (seq > p->cover_seq)
            p->cover_seq = seq;
        if (--h->count == 0) {
            holder_remove(p, i);
            e->held_pages--;
        }
        if (p->nholders == 0 && !p->resync_new)
            to_flushing(d, pi);
        return 0;
    }
    return -ENOENT;
}

void
pages_flush_done(struct daemon *d)
{
    uint32_t pi = d->fl_head;

    while (pi != PAGE_NONE) {
        uint32_t next = d->pages[pi].fl_next;

        if (d->pages[pi].cover_seq <= d->max_done)
            release(d, pi);
        pi = next;
    }
}

void
pages_drop_domain(struct daemon *d, struct dom *dm)
{
    for (uint32_t pi = 0; pi < d->pages_cap && dm->npending; pi++)
        if (d->pages[pi].state != PAGE_FREE && d->pages[pi].domid == dm->domid)
            page_free(d, pi);
}

void
pages_drop_all(struct daemon *d)
{
    for (uint32_t pi = 0; pi < d->pages_cap; pi++)
        if (d->pages[pi].state != PAGE_FREE)
            page_free(d, pi);
}
