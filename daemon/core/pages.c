/* SPDX-License-Identifier: MIT */
/*
 * The lifecycle of removed pages: INVALIDATING -> FLUSHING -> RELEASED.
 *
 * Pages live in one array (d->pages) with a free list, so that removing a
 * million pages allocates nothing per page once the array has grown; it
 * grows geometrically, by one mremap per removed range at most.  Each
 * domain indexes its pages by gfn in a radix (struct dom, pidx_*), whose
 * leaves keep consecutive gfns together.  A (domid, gfn) may have more
 * than one page in flight (the gfn was repopulated and removed again while
 * the old frame was still held): they are chained through 'next' from the
 * index slot and told apart by mfn.
 *
 * INVALIDATING pages are on one list and FLUSHING pages (in cover_seq
 * order) on another, through fl_prev/fl_next: walks over the pages with
 * holders or over releasable pages never scan the pool.
 */
#include "config.h"

#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/core/core_priv.h"
#include "util/log.h"

/* ---- the pending index (struct dom, pidx_*) ------------------------------------ */

#define PIDX_LEAF_N     (1u << PIDX_LEAF_BITS)
#define PIDX_L2_N       (1u << PIDX_L2_BITS)
#define LEAF_STASH_MAX  1024u           /* 2 MiB of leaves kept warm */

static struct pidx_leaf *
pidx_leaf(struct dom *dm, uint64_t gfn)
{
    uint64_t key = gfn >> PIDX_LEAF_BITS;
    uint32_t l2i;

    if (dm->pidx_last_key == key + 1)
        return dm->pidx_last_leaf;
    l2i = hmap_get(&dm->pidx_top, gfn >> (PIDX_LEAF_BITS + PIDX_L2_BITS));
    if (l2i == HMAP_NONE)
        return NULL;
    dm->pidx_last_key = key + 1;
    dm->pidx_last_leaf = dm->pidx_l2v[l2i]->leaf[key & (PIDX_L2_N - 1)];
    return dm->pidx_last_leaf;
}

static struct pidx_leaf *
pidx_leaf_make(struct core *d, struct dom *dm, uint64_t gfn)
{
    uint64_t key = gfn >> PIDX_LEAF_BITS, top = gfn >> (PIDX_LEAF_BITS + PIDX_L2_BITS);
    struct pidx_leaf *lf = pidx_leaf(dm, gfn);
    struct pidx_l2 *l2;
    uint32_t l2i;

    if (lf)
        return lf;
    l2i = hmap_get(&dm->pidx_top, top);
    if (l2i == HMAP_NONE) {
        if (dm->pidx_nl2 == dm->pidx_capl2) {
            uint32_t ncap = dm->pidx_capl2 ? dm->pidx_capl2 * 2 : 4;
            struct pidx_l2 **nv = realloc(dm->pidx_l2v, ncap * sizeof(*nv));

            if (nv == NULL)
                return NULL;
            dm->pidx_l2v = nv;
            dm->pidx_capl2 = ncap;
        }
        l2 = calloc(1, sizeof(*l2));
        if (l2 == NULL)
            return NULL;
        if (hmap_put(&dm->pidx_top, top, dm->pidx_nl2) < 0) {
            free(l2);
            return NULL;
        }
        l2i = dm->pidx_nl2++;
        dm->pidx_l2v[l2i] = l2;
    }
    l2 = dm->pidx_l2v[l2i];
    if (d->leaf_nstash) {
        lf = d->leaf_stash[--d->leaf_nstash];   /* empty: all PAGE_NONE */
    } else {
        lf = malloc(sizeof(*lf));
        if (lf == NULL)
            return NULL;
        lf->used = 0;
        memset(lf->slot, 0xff, sizeof(lf->slot));
    }
    l2->leaf[key & (PIDX_L2_N - 1)] = lf;
    dm->pidx_last_key = key + 1;
    dm->pidx_last_leaf = lf;
    return lf;
}

/* A leaf became empty: stash it (warm) or free it. */
static void
pidx_leaf_drop(struct core *d, struct dom *dm, uint64_t gfn)
{
    uint64_t key = gfn >> PIDX_LEAF_BITS;
    uint32_t l2i = hmap_get(&dm->pidx_top, gfn >> (PIDX_LEAF_BITS + PIDX_L2_BITS));
    struct pidx_l2 *l2 = dm->pidx_l2v[l2i];
    struct pidx_leaf *lf = l2->leaf[key & (PIDX_L2_N - 1)];

    l2->leaf[key & (PIDX_L2_N - 1)] = NULL;
    if (dm->pidx_last_key == key + 1)
        dm->pidx_last_leaf = NULL;
    if (d->leaf_nstash < LEAF_STASH_MAX) {
        if (d->leaf_stash == NULL) {
            d->leaf_stash = malloc(LEAF_STASH_MAX * sizeof(*d->leaf_stash));
            if (d->leaf_stash == NULL) {
                free(lf);
                return;
            }
        }
        d->leaf_stash[d->leaf_nstash++] = lf;
        return;
    }
    free(lf);
}

void
pidx_free(struct core *d, struct dom *dm)
{
    for (uint32_t i = 0; i < dm->pidx_nl2; i++) {
        for (uint32_t j = 0; j < PIDX_L2_N; j++)
            free(dm->pidx_l2v[i]->leaf[j]);     /* empty by now, or dropped */
        free(dm->pidx_l2v[i]);
    }
    free(dm->pidx_l2v);
    hmap_free(&dm->pidx_top);
    dm->pidx_l2v = NULL;
    dm->pidx_nl2 = dm->pidx_capl2 = 0;
    dm->pidx_last_key = 0;
    dm->pidx_last_leaf = NULL;
    (void)d;
}

uint32_t
page_head(struct dom *dm, uint64_t gfn)
{
    struct pidx_leaf *lf;

    if (dm->npending == 0 || (lf = pidx_leaf(dm, gfn)) == NULL)
        return PAGE_NONE;
    return lf->slot[gfn & (PIDX_LEAF_N - 1)];
}

/* ---- the INVALIDATING and FLUSHING lists ------------------------------------------ */

static void
list_insert_after(struct core *d, uint32_t *head, uint32_t *tail, uint32_t after,
                  uint32_t pi)
{
    struct page *p = &d->pages[pi];

    p->fl_prev = after;
    p->fl_next = after == PAGE_NONE ? *head : d->pages[after].fl_next;
    if (after == PAGE_NONE)
        *head = pi;
    else
        d->pages[after].fl_next = pi;
    if (p->fl_next == PAGE_NONE)
        *tail = pi;
    else
        d->pages[p->fl_next].fl_prev = pi;
}

static void
list_remove(struct core *d, uint32_t *head, uint32_t *tail, uint32_t pi)
{
    struct page *p = &d->pages[pi];

    if (p->fl_prev != PAGE_NONE)
        d->pages[p->fl_prev].fl_next = p->fl_next;
    else
        *head = p->fl_next;
    if (p->fl_next != PAGE_NONE)
        d->pages[p->fl_next].fl_prev = p->fl_prev;
    else
        *tail = p->fl_prev;
    p->fl_prev = p->fl_next = PAGE_NONE;
}

/*
 * FLUSHING is kept in cover_seq order, so that a completed flush releases
 * from the head and touches only what it releases.  Pages enter it in
 * nearly ascending cover_seq: the walk back from the tail is short.
 */
static void
fl_insert(struct core *d, uint32_t pi)
{
    uint32_t seq = d->pages[pi].cover_seq, after = d->fl_tail;

    while (after != PAGE_NONE && seq_after(d->pages[after].cover_seq, seq))
        after = d->pages[after].fl_prev;
    list_insert_after(d, &d->fl_head, &d->fl_tail, after, pi);
}

static void
fl_remove(struct core *d, uint32_t pi)
{
    list_remove(d, &d->fl_head, &d->fl_tail, pi);
}

/* ---- the page pool --------------------------------------------------------------- */

int
pages_reserve(struct core *d, uint32_t nr)
{
    uint64_t avail = (uint64_t)d->pages_nfree + (d->pages_alloc - d->pages_cap);
    uint64_t ncap, need;
    size_t olen, nlen, pg;
    void *np;

    if (avail >= nr)
        return 0;
    pg = (size_t)sysconf(_SC_PAGESIZE);
    need = (uint64_t)d->pages_alloc + (nr - avail);
    ncap = d->pages_alloc ? (uint64_t)d->pages_alloc * 2 : 4096;
    if (ncap < need)
        ncap = need;
    if (ncap > PAGE_NONE - 1)
        ncap = PAGE_NONE - 1;
    if (ncap < need)
        return -ENOMEM;
    olen = ((size_t)d->pages_alloc * sizeof(struct page) + pg - 1) & ~(pg - 1);
    nlen = ((size_t)ncap * sizeof(struct page) + pg - 1) & ~(pg - 1);
    /* mremap moves the page tables, not the data: no copy, no first touch. */
    if (d->pages == NULL)
        np = mmap(NULL, nlen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                  -1, 0);
    else
        np = mremap(d->pages, olen, nlen, MREMAP_MAYMOVE);
    if (np == MAP_FAILED)
        return -ENOMEM;
    d->pages = np;
    d->pages_alloc = (uint32_t)(nlen / sizeof(struct page));
    return 0;
}

void
pages_fini(struct core *d)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);

    if (d->pages)
        munmap(d->pages, ((size_t)d->pages_alloc * sizeof(struct page) + pg - 1) &
               ~(pg - 1));
    for (uint32_t i = 0; i < d->leaf_nstash; i++)
        free(d->leaf_stash[i]);
    free(d->leaf_stash);
    d->leaf_stash = NULL;
    d->leaf_nstash = 0;
    d->pages = NULL;
    d->pages_alloc = d->pages_cap = d->pages_nfree = 0;
    d->pages_free = PAGE_NONE;
}

static uint32_t
page_alloc_at(struct core *d, struct dom *dm, uint64_t gfn, uint64_t mfn,
              uint64_t now)
{
    struct pidx_leaf *lf;
    uint32_t pi, *slot;
    struct page *p;

    if (pages_reserve(d, 1) < 0 || (lf = pidx_leaf_make(d, dm, gfn)) == NULL)
        return PAGE_NONE;
    if (d->pages_free != PAGE_NONE) {
        pi = d->pages_free;
        d->pages_free = d->pages[pi].next;
        d->pages_nfree--;
    } else {
        pi = d->pages_cap++;
    }
    slot = &lf->slot[gfn & (PIDX_LEAF_N - 1)];
    p = &d->pages[pi];
    memset(p, 0, sizeof(*p));
    p->gfn = gfn;
    p->mfn = mfn;
    p->domid = dm->domid;
    p->next = *slot;
    p->fl_prev = p->fl_next = PAGE_NONE;
    p->t_removed = now;
    p->state = PAGE_NEW;
    if (*slot == PAGE_NONE)
        lf->used++;
    *slot = pi;
    dm->npending++;
    return pi;
}

uint32_t
page_alloc(struct core *d, struct dom *dm, uint64_t gfn, uint64_t mfn)
{
    return page_alloc_at(d, dm, gfn, mfn, core_now(d));
}

static void
page_free(struct core *d, uint32_t pi)
{
    struct page *p = &d->pages[pi];
    struct dom *dm = d->doms[p->domid];
    struct pidx_leaf *lf = pidx_leaf(dm, p->gfn);
    uint32_t *slot = &lf->slot[p->gfn & (PIDX_LEAF_N - 1)];

    /* Unlink from the (domid, gfn) chain. */
    if (*slot == pi) {
        *slot = p->next;
        if (*slot == PAGE_NONE && --lf->used == 0)
            pidx_leaf_drop(d, dm, p->gfn);
    } else {
        for (uint32_t q = *slot; q != PAGE_NONE; q = d->pages[q].next)
            if (d->pages[q].next == pi) {
                d->pages[q].next = p->next;
                break;
            }
    }
    if (p->state == PAGE_FLUSHING) {
        fl_remove(d, pi);
        d->n_flushing--;
    } else if (p->state == PAGE_INVALIDATING) {
        list_remove(d, &d->inv_head, &d->inv_tail, pi);
        d->n_invalidating--;
    }
    for (unsigned i = 0; i < p->nholders; i++) {
        const struct holder *h = i < IOMAPD_INLINE_HOLDERS ? &p->h[i] :
                                 &p->more[i - IOMAPD_INLINE_HOLDERS];
        if (d->emus[h->emu])
            d->emus[h->emu]->held_pages--;
    }
    if (p->more)
        free(p->more);
    dm->npending--;
    p->state = PAGE_FREE;
    p->more = NULL;
    p->next = d->pages_free;
    d->pages_free = pi;
    d->pages_nfree++;
}

uint32_t
page_find(struct core *d, struct dom *dm, uint64_t gfn, uint64_t mfn)
{
    uint32_t pi = page_head(dm, gfn);

    for (; pi != PAGE_NONE; pi = d->pages[pi].next)
        if (d->pages[pi].mfn == mfn)
            return pi;
    return PAGE_NONE;
}

static struct holder *
holder_at(struct page *p, unsigned i)
{
    return i < IOMAPD_INLINE_HOLDERS ? &p->h[i] : &p->more[i - IOMAPD_INLINE_HOLDERS];
}

const struct holder *
page_holder(const struct page *p, unsigned i)
{
    return holder_at((struct page *)p, i);
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
page_add_holder(struct core *d, uint32_t pi, struct emu *e, uint32_t count)
{
    struct page *p = &d->pages[pi];
    struct holder *h;

    for (unsigned i = 0; i < p->nholders; i++) {
        h = holder_at(p, i);
        if (h->emu == e->idx) {
            h->count += count;
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
    h->count = count;
    e->held_pages++;
}

static void
holder_remove(struct page *p, unsigned i)
{
    *holder_at(p, i) = *holder_at(p, p->nholders - 1);
    p->nholders--;
}

static void
release(struct core *d, uint32_t pi)
{
    struct page *p = &d->pages[pi];
    struct iomap_cmd c = { .type = IOMAP_CMD_RELEASE, .domid = p->domid,
                           .nr = 1, .gfn = p->gfn, .mfn = p->mfn };
    uint64_t lat = core_now(d) - p->t_removed;

    /*
     * A page only CPU mappings kept (IOMAP_F_CPU) is not held by the shim:
     * its last unmap gave it back to Xen already.  Nothing to release.
     */
    if (!p->unheld)
        cmd_post(d, &c);
    d->st.pages_released++;
    d->st.lat_count++;
    d->st.lat_sum_ns += lat;
    if (lat > d->st.lat_max_ns)
        d->st.lat_max_ns = lat;
    d->st.lat_hist[lat ? 63 - __builtin_clzll(lat) : 0]++;
    CORE_OBSERVE(d, page_released, p->domid, p->gfn, p->mfn, lat);
    page_free(d, pi);
}

/*
 * A page with no holders left: release it if its flush is done, else
 * wait in FLUSHING (asking the shim for a flush if none is queued that
 * covers it).
 */
static void
to_flushing(struct core *d, uint32_t pi)
{
    struct page *p = &d->pages[pi];

    if (p->state == PAGE_INVALIDATING) {
        list_remove(d, &d->inv_head, &d->inv_tail, pi);
        d->n_invalidating--;
        p->state = PAGE_NEW;
    }
    if (seq_done(p->cover_seq, d->max_done)) {
        release(d, pi);         /* straight to RELEASED (from FLUSHING or not) */
        return;
    }
    if (p->state != PAGE_FLUSHING) {
        uint64_t age = core_now(d) - p->t_removed;

        p->state = PAGE_FLUSHING;
        p->esc = 0;             /* the flush timeout starts now */
        p->flushing_ms = age / 1000000 > UINT32_MAX ? UINT32_MAX :
                         (uint32_t)(age / 1000000);
        fl_insert(d, pi);
        d->n_flushing++;
    }
    if (seq_after(p->cover_seq, d->max_queued))
        d->flush_wanted = 1;
}

void
page_evaluate(struct core *d, uint32_t pi)
{
    struct page *p = &d->pages[pi];

    p->resync_new = 0;
    if (p->nholders == 0) {
        to_flushing(d, pi);
        return;
    }
    if (p->state != PAGE_INVALIDATING) {
        if (p->state == PAGE_FLUSHING) {
            fl_remove(d, pi);
            d->n_flushing--;
        }
        p->state = PAGE_INVALIDATING;
        list_insert_after(d, &d->inv_head, &d->inv_tail, d->inv_tail, pi);
        d->n_invalidating++;
    }
    for (unsigned i = 0; i < p->nholders; i++) {
        struct emu *e = d->emus[holder_at(p, i)->emu];
        struct dom *dm = d->doms[p->domid];

        /*
         * Beyond a pending-release quota (the policy's, copied down by
         * core_set_policy) the emulator is not asked: its mapping is
         * taken back at once, so the books stop growing.
         */
        if ((d->max_pending_per_emu && e->held_pages > d->max_pending_per_emu) ||
            (d->max_pending_per_dom && dm && dm->npending > d->max_pending_per_dom)) {
            d->st.pending_quota_forced++;
            emu_force_unmap_gfn(d, e, p->domid, p->gfn, 1);
            continue;
        }
        emu_queue_invalidate(d, e, p->domid, p->gfn);
    }
}

void
pages_removed(struct core *d, uint16_t domid, uint64_t gfn, uint64_t mfn,
              uint32_t nr, uint32_t seq, int unheld)
{
    struct dom *dm = dom_get(d, domid, 1);
    uint64_t now;

    if (dm == NULL) {
        log_warnx("%s: out of memory for domain %u", __func__, domid);
        return;
    }
    /* One allocation (if any) for the whole range, one clock read. */
    (void)pages_reserve(d, nr);
    now = core_now(d);
    for (uint32_t i = 0; i < nr; i++) {
        uint32_t pi = page_alloc_at(d, dm, gfn + i, mfn + i, now);
        struct emu_map *em;
        struct page *p;

        if (pi == PAGE_NONE) {
            /* The shim keeps holding the page; a resync will find it. */
            log_warnx("%s: out of memory tracking d%u gfn %#llx: resync",
                      __func__, domid, (unsigned long long)(gfn + i));
            d->resync_wanted = 1;       /* ingest resyncs after this event */
            return;
        }
        p = &d->pages[pi];
        p->cover_seq = seq;
        p->unheld = (uint8_t)unheld;
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
page_unmapped(struct core *d, struct dom *dm, uint32_t pi, struct emu *e,
              uint32_t seq)
{
    struct page *p = &d->pages[pi];

    (void)dm;
    for (unsigned i = 0; i < p->nholders; i++) {
        struct holder *h = holder_at(p, i);

        if (h->emu != e->idx)
            continue;
        if (seq != 0 && (p->cover_seq == 0 || seq_after(seq, p->cover_seq)))
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

/*
 * Release what the completed flushes cover, in cover_seq order: stop at the
 * first page whose flush is not done.  Releases go out as the command ring
 * has room for them: a page whose flush is done stays FLUSHING (at the
 * head of the list) until the shim has taken the commands before it, so
 * the out-queue stays short however many pages one flush covers.  The rest
 * goes at the next core_process().
 */
#define RELEASE_BATCH 256u

void
pages_flush_done(struct core *d)
{
    while (d->fl_head != PAGE_NONE && seq_done(d->pages[d->fl_head].cover_seq, d->max_done)) {
        if (d->out_len >= RELEASE_BATCH) {
            cmd_flush_out(d);
            if (d->out_len >= RELEASE_BATCH)
                return;         /* the command ring is full */
            if (d->now_valid)
                d->now_ns = core_clock(d);
        }
        release(d, d->fl_head);
    }
}

/* Every page in flight of dm, through its index: O(pages + leaves). */
void
pages_drop_domain(struct core *d, struct dom *dm)
{
    for (uint32_t i = 0; i < dm->pidx_nl2 && dm->npending; i++) {
        struct pidx_l2 *l2 = dm->pidx_l2v[i];

        for (uint32_t j = 0; j < PIDX_L2_N && dm->npending; j++)
            for (uint32_t k = 0; l2->leaf[j] && k < PIDX_LEAF_N; k++)
                while (l2->leaf[j] && l2->leaf[j]->slot[k] != PAGE_NONE)
                    page_free(d, l2->leaf[j]->slot[k]);
    }
}

void
pages_drop_all(struct core *d)
{
    for (uint32_t i = 0; i < IOMAPD_MAX_DOMID; i++)
        if (d->doms[i] && d->doms[i]->npending)
            pages_drop_domain(d, d->doms[i]);
    d->rs_nnew = 0;
}

/* ---- an emulator's part in the pages in flight ------------------------------------ */

void
pages_emu_requeue(struct core *d, struct emu *e)
{
    /* Its domain's CPU mappings of its guest are its to drop too. */
    struct core_emu_id cid = { .emu_domid = e->emu_domid, .target = e->target,
                               .ioservid = IOMAP_IOSERVID_ANY };
    const struct emu *w = emu_get(d, &cid, 0);

    for (uint32_t pi = d->inv_head; pi != PAGE_NONE; pi = d->pages[pi].fl_next) {
        const struct page *p = &d->pages[pi];

        if (page_has_holder(p, e->idx) || (w && page_has_holder(p, w->idx)))
            emu_queue_invalidate(d, e, p->domid, p->gfn);
    }
}

/*
 * The emulator left (its connection closed, its channel is gone).  Drain,
 * do not cancel: every page it was asked to drop, or would have been asked
 * to, is force-unmapped, so those pages still reach RELEASED.  Its other
 * mappings stay; later removals of them are force-unmapped too.
 */
void
pages_emu_left(struct core *d, struct emu *e)
{
    if (!e->held_pages || d->resync != RS_NONE)
        return;
    log_info("emulator " EMU_FMT " left with %llu pages to drop: force-unmapping them",
             EMU_ARGS(e), (unsigned long long)e->held_pages);
    for (uint32_t pi = d->inv_head; pi != PAGE_NONE; pi = d->pages[pi].fl_next) {
        const struct page *p = &d->pages[pi];

        if (page_has_holder(p, e->idx))
            emu_force_unmap_gfn(d, e, p->domid, p->gfn, 1);
    }
}

void
pages_emu_dropped(struct core *d, struct emu *e)
{
    for (uint32_t pi = d->inv_head, pnext; pi != PAGE_NONE; pi = pnext) {
        struct page *p = &d->pages[pi];

        pnext = p->fl_next;      /* pi may move to FLUSHING or be released */
        while (p->state == PAGE_INVALIDATING && page_has_holder(p, e->idx)) {
            struct dom *pd = d->doms[p->domid];

            if (page_unmapped(d, pd, pi, e, 0) < 0)
                break;
        }
    }
}

/* ---- answers ------------------------------------------------------------------------ */

/*
 * An answered invalidate: whatever the emulator still holds of what it
 * was asked to drop is force-unmapped (it said done, the shim disagrees).
 */
static void
on_answer(struct core *d, struct emu *e, const struct iomap_ioreq *req)
{
    e->answers++;
    if (req->type == IOMAP_IOREQ_TYPE_INVALIDATE_PAGE) {
        uint16_t domid = (uint16_t)req->data;
        uint64_t gfn = req->addr >> 12;
        struct dom *dm = dom_get(d, domid, 0);
        uint32_t left = 0;

        for (uint32_t i = 0; dm && i < req->count; i++) {
            uint32_t pi = page_head(dm, gfn + i);

            for (; pi != PAGE_NONE; pi = d->pages[pi].next)
                if (page_has_holder(&d->pages[pi], e->idx))
                    left++;
        }
        if (left) {
            struct iomap_cmd c = { .type = IOMAP_CMD_FORCE_UNMAP, .domid = domid,
                                   .emu_domid = e->emu_domid,
                                   .ioservid = e->ioservid, .nr = req->count,
                                   .gfn = gfn };

            char who[32];

            snprintf(who, sizeof(who), EMU_FMT, EMU_ARGS(e));
            log_pages(LOG_LVL_WARN, "invalidate:", domid, who, gfn, req->count,
                      "answered, but %u of those pages are still mapped: "
                      "force-unmapping", left);
            e->forced_unmaps += left;
            cmd_post(d, &c);
        }
    } else if (req->type == IOMAP_IOREQ_TYPE_INVALIDATE && e->held_pages) {
        /* A legacy emulator dropped its whole mapcache, or should have. */
        uint64_t sent_at = e->global_sent_at;

        for (uint32_t pi = d->inv_head; pi != PAGE_NONE; pi = d->pages[pi].fl_next) {
            const struct page *p = &d->pages[pi];

            if (p->t_removed <= sent_at && page_has_holder(p, e->idx)) {
                struct iomap_cmd c = { .type = IOMAP_CMD_FORCE_UNMAP,
                                       .domid = p->domid, .emu_domid = e->emu_domid,
                                       .ioservid = e->ioservid, .nr = 1,
                                       .gfn = p->gfn };
                e->forced_unmaps++;
                cmd_post(d, &c);
            }
        }
    }
}

void
pages_judge_answers(struct core *d)
{
    for (uint32_t i = 0; i < d->ans_len; i++) {
        struct emu *e = d->emus[d->ans[i].emu];

        if (e)
            on_answer(d, e, &d->ans[i].req);
    }
    d->ans_len = 0;
}

