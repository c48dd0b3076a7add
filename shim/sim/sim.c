/* SPDX-License-Identifier: MIT */
/*
 * The simulated hypervisor.  See sim.h for what it models and checks.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shim/sim/sim.h"

static void __attribute__((format(printf, 3, 4)))
violation(struct sim *s, uint64_t *ctr, const char *fmt, ...)
{
    va_list ap;

    (*ctr)++;
    va_start(ap, fmt);
    vsnprintf(s->last_violation, sizeof(s->last_violation), fmt, ap);
    va_end(ap);
}

/* ---- setup ---------------------------------------------------------------- */

int
sim_init(struct sim *s, const struct sim_config *cfg)
{
    size_t len = IOMAP_REGION_SIZE((size_t)cfg->ev_slots, (size_t)cfg->cmd_slots);
    int rc;

    memset(s, 0, sizeof(*s));
    s->shm_fd = s->ev_fd = s->cmd_fd = -1;
    len = (len + 4095) & ~(size_t)4095;
    if (cfg->shared) {
        s->shm_fd = memfd_create("iomap-sim-ring", MFD_CLOEXEC);
        if (s->shm_fd < 0 || ftruncate(s->shm_fd, (off_t)len) < 0)
            return -errno;
        s->region = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
                         s->shm_fd, 0);
        s->ev_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        s->cmd_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->ev_fd < 0 || s->cmd_fd < 0)
            return -errno;
    } else {
        s->region = mmap(NULL, len, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    }
    if (s->region == MAP_FAILED) {
        s->region = NULL;
        return -errno;
    }
    s->region_len = len;
    rc = iomap_ring_format(&s->ring, s->region, len, cfg->ev_slots, cfg->cmd_slots);
    if (rc < 0)
        return rc;
    s->nr_pages = cfg->nr_pages;
    s->pages = calloc(cfg->nr_pages, sizeof(*s->pages));
    s->free_mfns = malloc(cfg->nr_pages * sizeof(*s->free_mfns));
    if (s->pages == NULL || s->free_mfns == NULL)
        return -ENOMEM;
    /* Hand out low frames first: pop from the end. */
    for (uint64_t i = 0; i < cfg->nr_pages; i++)
        s->free_mfns[i] = cfg->nr_pages - 1 - i;
    s->nr_free = cfg->nr_pages;
    s->next_seq = 1;
    s->flush_latency_ns = cfg->flush_latency_ns;
    return 0;
}

void
sim_fini(struct sim *s)
{
    for (int i = 0; i < SIM_MAX_DOMAINS; i++)
        free(s->doms[i].p2m);
    for (int i = 0; i < SIM_MAX_EMUS; i++) {
        hmap_free(&s->emus[i].by_bfn);
        free(s->emus[i].maps);
    }
    free(s->pages);
    free(s->free_mfns);
    free(s->flushq);
    if (s->region)
        munmap(s->region, s->region_len);
    if (s->shm_fd >= 0)
        close(s->shm_fd);
    if (s->ev_fd >= 0)
        close(s->ev_fd);
    if (s->cmd_fd >= 0)
        close(s->cmd_fd);
    memset(s, 0, sizeof(*s));
}

/* ---- events ---------------------------------------------------------------- */

static void
post(struct sim *s, const struct iomap_event *ev)
{
    if (iomap_ring_post_event(&s->ring, ev) == 0)
        s->st.events_posted++;
    else
        s->st.events_lost++;
    s->kick_pending = 1;
}

void
sim_kick(struct sim *s)
{
    uint64_t one = 1;

    if (s->kick_pending && s->ev_fd >= 0 &&
        write(s->ev_fd, &one, sizeof(one)) < 0) {
        /* eventfd counter overflow only; the daemon will see the ring */
    }
    s->kick_pending = 0;
}

/*
 * Post one event per run of frames that are contiguous in both gfn and
 * mfn (the ABI's nr): the caller feeds pages one at a time.
 */
struct run {
    struct iomap_event ev;
    int open;
};

static void
run_flush(struct sim *s, struct run *r)
{
    if (r->open)
        post(s, &r->ev);
    r->open = 0;
}

static void
run_add(struct sim *s, struct run *r, const struct iomap_event *one)
{
    if (r->open && r->ev.type == one->type && r->ev.flags == one->flags &&
        r->ev.domid == one->domid && r->ev.emu_domid == one->emu_domid &&
        r->ev.ioservid == one->ioservid && r->ev.seq == one->seq &&
        r->ev.gfn + r->ev.nr == one->gfn && r->ev.arg + r->ev.nr == one->arg &&
        r->ev.nr < IOMAP_MAX_NR) {
        r->ev.nr++;
        return;
    }
    run_flush(s, r);
    r->ev = *one;
    r->ev.nr = 1;
    r->open = 1;
}

/* ---- frames ---------------------------------------------------------------- */

static uint64_t
alloc_frame(struct sim *s, uint16_t domid, uint64_t gfn)
{
    uint64_t mfn;
    struct sim_page *pg;

    if (s->nr_free == 0)
        return SIM_INVALID_MFN;
    mfn = s->free_mfns[--s->nr_free];
    pg = &s->pages[mfn];
    pg->state = SIM_PAGE_ALLOC;
    pg->owner = domid;
    pg->gfn = gfn;
    pg->refs = 1;
    pg->maps = 0;
    pg->last_unmap_seq = 0;
    return mfn;
}

/*
 * Flush sequences wrap at 2^32 and skip 0 ("no flush"), as the Xen shim's
 * do; compared as serial numbers.  pending(s, seq): an unmap covered by
 * flush seq still waits for it.
 */
static int
pending(const struct sim *s, uint32_t seq)
{
    return seq != 0 && (int32_t)(seq - s->max_done) > 0;
}

static void
put_frame(struct sim *s, uint64_t mfn)
{
    struct sim_page *pg = &s->pages[mfn];

    if (pg->refs == 0) {
        violation(s, &s->st.violations_i3, "reference underflow on mfn %#llx",
                  (unsigned long long)mfn);
        return;
    }
    if (--pg->refs)
        return;
    if (pg->maps)
        violation(s, &s->st.violations_i1, "mfn %#llx freed with %u mappings",
                  (unsigned long long)mfn, pg->maps);
    if (pending(s, pg->last_unmap_seq))
        violation(s, &s->st.violations_i1,
                  "mfn %#llx freed before flush %u completed (done %u)",
                  (unsigned long long)mfn, pg->last_unmap_seq, s->max_done);
    if (pg->leaked)
        violation(s, &s->st.violations_i1, "leaked mfn %#llx freed",
                  (unsigned long long)mfn);
    pg->state = SIM_PAGE_FREE;
    pg->owner = 0;
    s->free_mfns[s->nr_free++] = mfn;
    s->st.pages_freed++;
}

/* ---- toolstack ---------------------------------------------------------- */

struct sim_domain *
sim_domain(struct sim *s, uint16_t domid)
{
    for (int i = 0; i < SIM_MAX_DOMAINS; i++)
        if (s->doms[i].used && s->doms[i].domid == domid)
            return &s->doms[i];
    return NULL;
}

int
sim_domain_create(struct sim *s, uint16_t domid, uint64_t nr_pages)
{
    struct sim_domain *d = NULL;

    if (sim_domain(s, domid))
        return -EEXIST;
    if (nr_pages > s->nr_free || domid >= IOMAP_DOMID_ANY)
        return -EINVAL;
    for (int i = 0; i < SIM_MAX_DOMAINS && !d; i++)
        if (!s->doms[i].used)
            d = &s->doms[i];
    if (d == NULL)
        return -ENOSPC;
    /* Room to balloon back up and to move frames around. */
    d->max_gfn = nr_pages * 2 + 16;
    d->p2m = malloc(d->max_gfn * sizeof(*d->p2m));
    if (d->p2m == NULL)
        return -ENOMEM;
    for (uint64_t g = 0; g < d->max_gfn; g++)
        d->p2m[g] = SIM_INVALID_MFN;
    d->used = 1;
    d->domid = domid;
    d->tot_pages = 0;
    return sim_populate(s, domid, 0, (uint32_t)nr_pages) < 0 ? -ENOMEM : 0;
}

int
sim_populate(struct sim *s, uint16_t domid, uint64_t gfn, uint32_t nr)
{
    struct sim_domain *d = sim_domain(s, domid);
    int done = 0;

    if (d == NULL)
        return -ESRCH;
    if (gfn >= d->max_gfn || nr > d->max_gfn - gfn)
        return -EINVAL;
    for (uint32_t i = 0; i < nr; i++) {
        uint64_t mfn;

        if (d->p2m[gfn + i] != SIM_INVALID_MFN)
            continue;
        mfn = alloc_frame(s, domid, gfn + i);
        if (mfn == SIM_INVALID_MFN)
            return done ? done : -ENOMEM;
        d->p2m[gfn + i] = mfn;
        d->tot_pages++;
        done++;
    }
    return done;
}

static void unmap_one(struct sim *s, int emu, uint32_t idx, uint8_t extra_flags,
                      struct run *run);

int
sim_domain_destroy(struct sim *s, uint16_t domid)
{
    struct sim_domain *d = sim_domain(s, domid);
    struct iomap_event ev = { .type = IOMAP_EV_DOMAIN_DESTROYED, .domid = domid,
                              .nr = 1 };

    if (d == NULL)
        return -ESRCH;
    /*
     * Teardown is synchronous in Xen (the IOMMU context goes with a full
     * flush), so every mapping of the domain goes and the flush is done.
     * No events for the individual unmaps: DOMAIN_DESTROYED says it all.
     */
    for (int e = 0; e < SIM_MAX_EMUS; e++) {
        struct sim_emu *em = &s->emus[e];

        if (!em->used)
            continue;
        for (uint32_t i = 0; i < em->nmaps; i++) {
            struct sim_mapping *m = &em->maps[i];

            if (!m->live || (m->domid != domid && em->emu_domid != domid))
                continue;
            m->live = 0;
            hmap_del(&em->by_bfn, m->bfn);
            m->next_free = em->free_head;
            em->free_head = i;
            em->live--;
            s->pages[m->mfn].maps--;
            /*
             * Destruction flushes the destroyed domain's own context at
             * once: its unmaps wait for nothing.  Another domain's page a
             * dying stub domain mapped keeps what other emulators' unmaps
             * of it still wait for.
             */
            if (m->domid == domid)
                s->pages[m->mfn].last_unmap_seq = 0;
            put_frame(s, m->mfn);
        }
    }
    for (uint64_t g = 0; g < d->max_gfn; g++)
        if (d->p2m[g] != SIM_INVALID_MFN) {
            if (s->pages[d->p2m[g]].leaked)
                s->pages[d->p2m[g]].state = SIM_PAGE_LEAKED;
            put_frame(s, d->p2m[g]);
        }
    for (uint64_t m = 0; m < s->nr_pages; m++) {
        struct sim_page *pg = &s->pages[m];

        if (pg->state == SIM_PAGE_HELD && pg->owner == domid && pg->leaked) {
            pg->state = SIM_PAGE_LEAKED;    /* the leak keeps it */
            put_frame(s, m);
        } else if (pg->state == SIM_PAGE_HELD && pg->owner == domid) {
            pg->state = SIM_PAGE_ALLOC;    /* so put_frame may free it */
            pg->last_unmap_seq = 0;
            put_frame(s, m);
        }
    }
    free(d->p2m);
    memset(d, 0, sizeof(*d));
    post(s, &ev);
    sim_kick(s);
    return 0;
}

int
sim_emu_find(const struct sim *s, uint16_t emu_domid, uint16_t target,
             uint16_t ioservid)
{
    for (int i = 0; i < SIM_MAX_EMUS; i++)
        if (s->emus[i].used && s->emus[i].emu_domid == emu_domid &&
            s->emus[i].target == target && s->emus[i].ioservid == ioservid)
            return i;
    return -ESRCH;
}

/* A dead server whose mappings are all gone frees its entry and its id. */
static void
emu_reap(struct sim *s, int emu)
{
    struct sim_emu *em = &s->emus[emu];

    if (!em->used || em->alive || em->live)
        return;
    hmap_free(&em->by_bfn);
    free(em->maps);
    memset(em, 0, sizeof(*em));
}

int
sim_emu_create(struct sim *s, uint16_t emu_domid, uint16_t target)
{
    uint8_t taken[SIM_MAX_EMUS] = { 0 };
    int i, id;

    if (sim_domain(s, target) == NULL)
        return -ESRCH;
    for (i = 0; i < SIM_MAX_EMUS; i++) {
        emu_reap(s, i);
        if (s->emus[i].used && s->emus[i].target == target &&
            s->emus[i].ioservid < SIM_MAX_EMUS)
            taken[s->emus[i].ioservid] = 1;
    }
    /* Xen: the lowest id free in the target domain. */
    for (id = 0; id < SIM_MAX_EMUS && taken[id]; id++)
        ;
    for (i = 0; i < SIM_MAX_EMUS; i++)
        if (!s->emus[i].used) {
            struct sim_emu *em = &s->emus[i];

            if (id == SIM_MAX_EMUS)
                break;
            memset(em, 0, sizeof(*em));
            em->used = em->alive = 1;
            em->emu_domid = emu_domid;
            em->target = target;
            em->ioservid = (uint16_t)id;
            em->free_head = UINT32_MAX;
            hmap_init(&em->by_bfn);
            return i;
        }
    return -ENOSPC;
}

int
sim_emu_crash(struct sim *s, int emu)
{
    struct iomap_event ev = { .type = IOMAP_EV_EMULATOR_GONE, .nr = 1 };

    if (emu < 0 || emu >= SIM_MAX_EMUS || !s->emus[emu].used)
        return -ESRCH;
    s->emus[emu].alive = 0;
    ev.emu_domid = s->emus[emu].emu_domid;
    ev.domid = s->emus[emu].target;
    ev.ioservid = s->emus[emu].ioservid;
    post(s, &ev);
    sim_kick(s);
    return 0;
}

/* ---- guest: decrease_reservation ------------------------------------------ */

int
sim_decrease_reservation(struct sim *s, uint16_t domid, uint64_t gfn,
                         unsigned order)
{
    struct sim_domain *d = sim_domain(s, domid);
    uint64_t nr = UINT64_C(1) << order;
    struct run run = { .open = 0 };
    int removed = 0;

    if (d == NULL)
        return -ESRCH;
    if (order > 18 || gfn >= d->max_gfn || nr > d->max_gfn - gfn ||
        (gfn & (nr - 1)))
        return -EINVAL;
    for (uint64_t g = gfn; g < gfn + nr; g++) {
        uint64_t mfn = d->p2m[g];
        struct sim_page *pg;

        if (mfn == SIM_INVALID_MFN)
            continue;               /* guest_remove_page: nothing there */
        pg = &s->pages[mfn];
        d->p2m[g] = SIM_INVALID_MFN;
        d->tot_pages--;
        removed++;
        s->st.pages_removed++;
        if (pg->maps || pending(s, pg->last_unmap_seq)) {
            /*
             * Still referenced by emulator mappings, or its last IOMMU
             * unmap is not yet flushed: the allocation reference becomes
             * the shim's hold reference until IOMAP_CMD_RELEASE.
             */
            struct iomap_event ev = {
                .type = IOMAP_EV_PAGE_REMOVED, .domid = domid, .gfn = g,
                .arg = mfn,
                .seq = pending(s, pg->last_unmap_seq) ? pg->last_unmap_seq : 0,
            };

            pg->state = SIM_PAGE_HELD;
            s->st.pages_held++;
            run_add(s, &run, &ev);
        } else {
            pg->state = SIM_PAGE_ALLOC;
            put_frame(s, mfn);
        }
    }
    run_flush(s, &run);
    sim_kick(s);
    return removed;
}

/* ---- emulator: iommu_op ----------------------------------------------------- */

static int
emu_ok(const struct sim *s, int emu)
{
    return emu >= 0 && emu < SIM_MAX_EMUS && s->emus[emu].used &&
           s->emus[emu].alive;
}

static uint32_t
mapping_alloc(struct sim_emu *em)
{
    uint32_t i;

    if (em->free_head != UINT32_MAX) {
        i = em->free_head;
        em->free_head = em->maps[i].next_free;
        return i;
    }
    if (em->nmaps == em->cap) {
        uint32_t ncap = em->cap ? em->cap * 2 : 64;
        struct sim_mapping *n = realloc(em->maps, ncap * sizeof(*n));

        if (n == NULL)
            return UINT32_MAX;
        em->maps = n;
        em->cap = ncap;
    }
    return em->nmaps++;
}

int
sim_iommu_map(struct sim *s, int emu, uint16_t domid, uint64_t gfn,
              uint64_t bfn, uint32_t nr, uint8_t flags)
{
    struct sim_domain *d = sim_domain(s, domid);
    struct sim_emu *em;
    struct run run = { .open = 0 };

    if (!emu_ok(s, emu))
        return -ESRCH;
    em = &s->emus[emu];
    if (d == NULL)
        return -ESRCH;
    if (domid != em->target)
        return -EPERM;              /* an ioreq server serves its target only */
    if (nr == 0 || nr > IOMAP_MAX_NR || (flags & ~(IOMAP_F_READONLY | IOMAP_F_CPU)) ||
        gfn >= d->max_gfn || nr > d->max_gfn - gfn || bfn > IOMAP_MAX_FRAME - nr)
        return -EINVAL;
    /* Validate the whole batch first: it is applied entirely or not at all. */
    for (uint32_t i = 0; i < nr; i++) {
        if (d->p2m[gfn + i] == SIM_INVALID_MFN)
            return -ENOENT;
        if (hmap_get(&em->by_bfn, bfn + i) != HMAP_NONE)
            return -EEXIST;
    }
    for (uint32_t i = 0; i < nr; i++) {
        uint64_t mfn = d->p2m[gfn + i];
        uint32_t idx = mapping_alloc(em);
        struct sim_mapping *m;
        struct iomap_event ev = {
            .type = IOMAP_EV_MAP, .flags = flags, .domid = domid,
            .emu_domid = em->emu_domid, .ioservid = em->ioservid,
            .gfn = gfn + i, .arg = mfn,
        };

        if (idx == UINT32_MAX || hmap_put(&em->by_bfn, bfn + i, idx) < 0) {
            run_flush(s, &run);
            sim_kick(s);
            return -ENOMEM;         /* earlier pages of the batch stay mapped */
        }
        m = &em->maps[idx];
        m->bfn = bfn + i;
        m->gfn = gfn + i;
        m->mfn = mfn;
        m->domid = domid;
        m->flags = flags;
        m->live = 1;
        em->live++;
        s->pages[mfn].maps++;
        s->pages[mfn].refs++;
        s->st.maps++;
        run_add(s, &run, &ev);
    }
    run_flush(s, &run);
    sim_kick(s);
    return (int)nr;
}

static void
unmap_one(struct sim *s, int emu, uint32_t idx, uint8_t extra_flags,
          struct run *run)
{
    struct sim_emu *em = &s->emus[emu];
    struct sim_mapping *m = &em->maps[idx];
    struct sim_page *pg = &s->pages[m->mfn];
    struct iomap_event ev = {
        .type = IOMAP_EV_UNMAP, .flags = (uint8_t)(m->flags | extra_flags),
        .domid = m->domid, .emu_domid = em->emu_domid,
        .ioservid = em->ioservid, .gfn = m->gfn, .arg = m->mfn,
    };

    if (!(m->flags & IOMAP_F_CPU)) {
        /* The device may keep the translation until the next flush. */
        ev.seq = s->next_seq;
        pg->last_unmap_seq = s->next_seq;
    }
    hmap_del(&em->by_bfn, m->bfn);
    m->live = 0;
    m->next_free = em->free_head;
    em->free_head = idx;
    em->live--;
    pg->maps--;
    s->st.unmaps++;
    run_add(s, run, &ev);
    put_frame(s, m->mfn);
}

int
sim_iommu_unmap(struct sim *s, int emu, uint64_t bfn, uint32_t nr)
{
    struct sim_emu *em;
    struct run run = { .open = 0 };

    if (emu < 0 || emu >= SIM_MAX_EMUS || !s->emus[emu].used)
        return -ESRCH;
    em = &s->emus[emu];
    if (nr == 0 || nr > IOMAP_MAX_NR || bfn > IOMAP_MAX_FRAME - nr)
        return -EINVAL;
    /* I3: every frame must have been mapped through the map op. */
    for (uint32_t i = 0; i < nr; i++)
        if (hmap_get(&em->by_bfn, bfn + i) == HMAP_NONE) {
            s->st.unmaps_refused++;
            return -ENOENT;
        }
    for (uint32_t i = 0; i < nr; i++)
        unmap_one(s, emu, hmap_get(&em->by_bfn, bfn + i), 0, &run);
    run_flush(s, &run);
    sim_kick(s);
    return (int)nr;
}

static uint32_t
queue_flush(struct sim *s)
{
    struct iomap_event ev = { .type = IOMAP_EV_FLUSH, .nr = 1 };

    if (s->nflush == s->flushcap) {
        uint32_t ncap = s->flushcap ? s->flushcap * 2 : 64;
        struct sim_flush *n = realloc(s->flushq, ncap * sizeof(*n));

        if (n == NULL)
            return 0;
        s->flushq = n;
        s->flushcap = ncap;
    }
    ev.seq = s->next_seq++;
    if (s->next_seq == 0)
        s->next_seq = 1;        /* 0 means "no flush" */
    s->flushq[s->nflush].seq = ev.seq;
    s->flushq[s->nflush].due_ns = s->now_ns + s->flush_latency_ns;
    s->nflush++;
    s->st.flushes_queued++;
    post(s, &ev);
    return ev.seq;
}

long
sim_iommu_flush(struct sim *s, int emu)
{
    uint32_t seq;

    if (!emu_ok(s, emu))
        return -ESRCH;
    seq = queue_flush(s);
    sim_kick(s);
    return seq ? (long)seq : -ENOMEM;
}

/* ---- device-TLB completion ------------------------------------------------- */

/*
 * The flush seq fails (Xen: an Invalidation Time-out): the frames whose
 * last unmap waited for it are leaked, never freed; the daemon is told.
 */
static void
fail_at(struct sim *s, uint32_t seq)
{
    struct iomap_event ev = { .type = IOMAP_EV_FLUSH_FAILED, .seq = seq,
                              .emu_domid = IOMAP_DOMID_ANY, .arg = EIO };

    for (uint64_t m = 0; m < s->nr_pages; m++) {
        struct sim_page *pg = &s->pages[m];

        if (pg->state != SIM_PAGE_FREE && !pg->leaked &&
            pending(s, pg->last_unmap_seq) &&
            (int32_t)(pg->last_unmap_seq - seq) <= 0) {
            pg->leaked = 1;
            pg->refs++;         /* the leak: never put */
            ev.nr++;
            s->st.pages_leaked++;
        }
    }
    s->st.flushes_failed++;
    s->flush_fail--;
    post(s, &ev);
}

static void
complete_at(struct sim *s, uint32_t i)
{
    struct iomap_event ev = { .type = IOMAP_EV_FLUSH_DONE, .nr = 1,
                              .seq = s->flushq[i].seq };

    if (s->flush_fail > 0) {
        fail_at(s, ev.seq);
        memmove(&s->flushq[i], &s->flushq[i + 1],
                (s->nflush - i - 1) * sizeof(*s->flushq));
        s->nflush--;
        return;
    }
    if ((int32_t)(ev.seq - s->max_done) > 0)
        s->max_done = ev.seq;
    memmove(&s->flushq[i], &s->flushq[i + 1],
            (s->nflush - i - 1) * sizeof(*s->flushq));
    s->nflush--;
    s->st.flushes_done++;
    post(s, &ev);
}

void
sim_tick(struct sim *s, uint64_t now_ns)
{
    if (now_ns > s->now_ns)
        s->now_ns = now_ns;
    if (s->flush_stuck)
        return;
    /* The queue is in seq order and due times grow with it. */
    while (s->nflush && s->flushq[0].due_ns <= s->now_ns)
        complete_at(s, 0);
    sim_kick(s);
}

int
sim_complete_flush(struct sim *s, uint32_t seq)
{
    for (uint32_t i = 0; i < s->nflush; i++)
        if (s->flushq[i].seq == seq) {
            complete_at(s, i);
            sim_kick(s);
            return 0;
        }
    return -ENOENT;
}

uint64_t
sim_next_flush_due(const struct sim *s)
{
    return s->nflush && !s->flush_stuck ? s->flushq[0].due_ns : UINT64_MAX;
}

/* ---- commands ----------------------------------------------------------------- */

static void
cmd_result(struct sim *s, const struct iomap_cmd *c, int rc)
{
    struct iomap_event ev = { .type = IOMAP_EV_CMD_RESULT, .flags = c->type,
                              .domid = c->domid, .emu_domid = c->emu_domid,
                              .ioservid = c->ioservid, .nr = c->nr,
                              .seq = (uint32_t)rc, .gfn = c->gfn, .arg = c->id };

    s->st.cmd_errors++;
    post(s, &ev);
}

static int
cmd_release(struct sim *s, const struct iomap_cmd *c)
{
    uint32_t leaked = 0;

    if (c->nr == 0 || c->nr > IOMAP_MAX_NR || c->mfn >= s->nr_pages ||
        c->nr > s->nr_pages - c->mfn)
        return -EINVAL;
    /* Validate the whole range first; refuse it all if any page is wrong. */
    for (uint32_t i = 0; i < c->nr; i++) {
        struct sim_page *pg = &s->pages[c->mfn + i];

        if (pg->state != SIM_PAGE_HELD || pg->owner != c->domid ||
            pg->gfn != c->gfn + i)
            return -ENOENT;
        if (pg->leaked)
            continue;           /* a failed flush keeps it: -EIO below */
        if (pg->maps) {
            violation(s, &s->st.violations_i1,
                      "release of mfn %#llx with %u mappings (gfn %#llx)",
                      (unsigned long long)(c->mfn + i), pg->maps,
                      (unsigned long long)(c->gfn + i));
            return -EBUSY;
        }
        if (pending(s, pg->last_unmap_seq)) {
            violation(s, &s->st.violations_i1,
                      "release of mfn %#llx before flush %u (done %u)",
                      (unsigned long long)(c->mfn + i), pg->last_unmap_seq,
                      s->max_done);
            return -EBUSY;
        }
    }
    for (uint32_t i = 0; i < c->nr; i++) {
        if (s->pages[c->mfn + i].leaked) {
            leaked++;
            continue;
        }
        s->pages[c->mfn + i].state = SIM_PAGE_ALLOC;
        s->st.pages_released++;
        put_frame(s, c->mfn + i);
    }
    return leaked ? -EIO : 0;
}

static int
cmd_force_unmap(struct sim *s, const struct iomap_cmd *c)
{
    int emu = sim_emu_find(s, c->emu_domid, c->domid, c->ioservid);
    struct sim_emu *em;
    struct run run = { .open = 0 };
    int all = (c->flags & IOMAP_F_ALL) != 0;

    if (emu < 0)
        return -ESRCH;
    if (!all && (c->nr == 0 || c->nr > IOMAP_MAX_NR || c->gfn > IOMAP_MAX_FRAME))
        return -EINVAL;
    em = &s->emus[emu];
    for (uint32_t i = 0; i < em->nmaps; i++) {
        struct sim_mapping *m = &em->maps[i];

        if (!m->live)
            continue;
        if (!all && (m->gfn < c->gfn || m->gfn >= c->gfn + c->nr))
            continue;
        unmap_one(s, emu, i, IOMAP_F_FORCED, &run);
        s->st.forced_unmaps++;
    }
    run_flush(s, &run);
    queue_flush(s);
    emu_reap(s, emu);
    return 0;
}

/* A dump record sorts by (domid, gfn); held pages before mappings. */
struct dump_rec {
    uint16_t domid;
    uint8_t  kind;          /* 0 held, 1 map */
    uint64_t gfn;
    struct iomap_event ev;
};

static int
dump_cmp(const void *a, const void *b)
{
    const struct dump_rec *x = a, *y = b;

    if (x->domid != y->domid)
        return x->domid < y->domid ? -1 : 1;
    if (x->gfn != y->gfn)
        return x->gfn < y->gfn ? -1 : 1;
    return (int)x->kind - (int)y->kind;
}

static int
cmd_dump(struct sim *s, const struct iomap_cmd *c)
{
    size_t n = 0, cap = 1024, i, j;
    struct dump_rec *v = malloc(cap * sizeof(*v));
    uint32_t room, nemu = 0;
    int first = c->domid == 0 && c->gfn == 0;
    struct iomap_event begin = { .type = IOMAP_EV_DUMP_BEGIN, .nr = 1, .arg = c->mfn };
    struct iomap_event end = { .type = IOMAP_EV_DUMP_END,
                               .seq = s->next_seq == 1 ? UINT32_MAX : s->next_seq - 1,
                               .arg = s->max_done };

    if (v == NULL)
        return -ENOMEM;
#define PUSH(r) do {                                                        \
        if (n == cap) {                                                     \
            struct dump_rec *nv = realloc(v, (cap *= 2) * sizeof(*v));      \
            if (nv == NULL) { free(v); return -ENOMEM; }                    \
            v = nv;                                                         \
        }                                                                   \
        v[n++] = (r);                                                       \
    } while (0)
    for (uint64_t m = 0; m < s->nr_pages; m++) {
        const struct sim_page *pg = &s->pages[m];

        if (pg->state == SIM_PAGE_HELD && !pg->leaked) {
            struct dump_rec r = { .domid = pg->owner, .kind = 0, .gfn = pg->gfn,
                .ev = { .type = IOMAP_EV_DUMP_HELD, .domid = pg->owner, .nr = 1,
                        .gfn = pg->gfn, .arg = m,
                        .seq = pending(s, pg->last_unmap_seq) ?
                               pg->last_unmap_seq : 0 } };
            PUSH(r);
        }
    }
    for (int e = 0; e < SIM_MAX_EMUS; e++) {
        const struct sim_emu *em = &s->emus[e];

        if (!em->used)
            continue;
        for (uint32_t i2 = 0; i2 < em->nmaps; i2++) {
            const struct sim_mapping *mp = &em->maps[i2];

            if (mp->live) {
                struct dump_rec r = { .domid = mp->domid, .kind = 1, .gfn = mp->gfn,
                    .ev = { .type = IOMAP_EV_DUMP_MAP, .flags = mp->flags,
                            .domid = mp->domid, .emu_domid = em->emu_domid,
                            .ioservid = em->ioservid, .nr = 1, .gfn = mp->gfn,
                            .arg = mp->mfn } };
                PUSH(r);
            }
        }
    }
#undef PUSH
    qsort(v, n, sizeof(*v), dump_cmp);
    for (int e = 0; first && e < SIM_MAX_EMUS; e++)
        nemu += s->emus[e].used;
    room = iomap_ring_event_space(&s->ring);
    /* DUMP_BEGIN, the servers (first chunk), one slot kept for DUMP_END. */
    if (room < 2 + nemu + 1) {
        free(v);
        return -ENOSPC;     /* the daemon asks again */
    }
    room -= 2 + nemu;
    for (i = 0; i < n; i++)
        if (v[i].domid > c->domid || (v[i].domid == c->domid && v[i].gfn >= c->gfn))
            break;
    j = n - i > room ? i + room : n;
    /* Never split one (domid, gfn) across chunks. */
    while (j < n && j > i && v[j - 1].domid == v[j].domid && v[j - 1].gfn == v[j].gfn)
        j--;
    if (j == i && i < n) {
        free(v);
        return -ENOSPC;     /* not even one key fits: the daemon retries */
    }
    post(s, &begin);
    for (int e = 0; first && e < SIM_MAX_EMUS; e++) {
        const struct sim_emu *em = &s->emus[e];
        struct iomap_event r = { .type = IOMAP_EV_DUMP_EMU, .nr = 1,
                                 .domid = em->target, .emu_domid = em->emu_domid,
                                 .ioservid = em->ioservid, .arg = em->alive != 0 };

        if (em->used)
            post(s, &r);
    }
    for (; i < j; i++)
        post(s, &v[i].ev);
    if (j < n) {
        end.nr = 1;
        end.domid = v[j].domid;
        end.gfn = v[j].gfn;
    }
    free(v);
    post(s, &end);
    return 0;
}

unsigned
sim_process_cmds(struct sim *s)
{
    struct iomap_cmd cmds[64];
    unsigned n, total = 0;

    if (s->cmd_fd >= 0) {
        uint64_t v;

        if (read(s->cmd_fd, &v, sizeof(v)) < 0) {
            /* EAGAIN: nothing signalled; the ring is read regardless */
        }
    }
    while ((n = iomap_ring_take_cmds(&s->ring, cmds, 64)) > 0) {
        for (unsigned i = 0; i < n; i++) {
            const struct iomap_cmd *c = &cmds[i];
            int rc;

            s->st.cmds++;
            switch (c->type) {
            case IOMAP_CMD_RELEASE:     rc = cmd_release(s, c); break;
            case IOMAP_CMD_FORCE_UNMAP: rc = cmd_force_unmap(s, c); break;
            case IOMAP_CMD_FLUSH:       rc = queue_flush(s) ? 0 : -ENOMEM; break;
            case IOMAP_CMD_DUMP:        rc = cmd_dump(s, c); break;
            case IOMAP_CMD_ACK:         iomap_ring_clear_overflow(&s->ring); rc = 0; break;
            default:                    rc = -EOPNOTSUPP; break;
            }
            if (rc < 0)
                cmd_result(s, c, rc);
        }
        total += n;
    }
    sim_kick(s);
    return total;
}

/* ---- ground truth ------------------------------------------------------------ */

uint32_t
sim_mapping_count(const struct sim *s, int emu, uint16_t domid, uint64_t gfn,
                  uint64_t mfn)
{
    const struct sim_emu *em = &s->emus[emu];
    uint32_t n = 0;

    for (uint32_t i = 0; i < em->nmaps; i++) {
        const struct sim_mapping *m = &em->maps[i];

        if (m->live && m->domid == domid && m->gfn == gfn && m->mfn == mfn)
            n++;
    }
    return n;
}

uint64_t
sim_held_pages(const struct sim *s)
{
    uint64_t n = 0;

    for (uint64_t m = 0; m < s->nr_pages; m++)
        n += s->pages[m].state == SIM_PAGE_HELD && !s->pages[m].leaked;
    return n;
}

int
sim_check(struct sim *s)
{
    uint64_t nfree = 0;
    uint32_t *maps = calloc(s->nr_pages, sizeof(*maps));

    if (maps == NULL)
        return -1;
    for (int e = 0; e < SIM_MAX_EMUS; e++)
        for (uint32_t i = 0; s->emus[e].used && i < s->emus[e].nmaps; i++)
            if (s->emus[e].maps[i].live)
                maps[s->emus[e].maps[i].mfn]++;
    for (uint64_t m = 0; m < s->nr_pages; m++) {
        const struct sim_page *pg = &s->pages[m];
        uint32_t want = maps[m] + pg->leaked +
                        (pg->state == SIM_PAGE_ALLOC || pg->state == SIM_PAGE_HELD);

        if (pg->maps != maps[m] || pg->refs != want) {
            violation(s, &s->st.violations_i2,
                      "mfn %#llx: refs %u, expected %u",
                      (unsigned long long)m, pg->refs, want);
            free(maps);
            return -1;
        }
        nfree += pg->state == SIM_PAGE_FREE;
    }
    free(maps);
    if (nfree != s->nr_free) {
        violation(s, &s->st.violations_i2, "%llu free frames, free list has %llu",
                  (unsigned long long)nfree, (unsigned long long)s->nr_free);
        return -1;
    }
    return 0;
}

int
sim_check_quiescent(struct sim *s)
{
    uint64_t held = sim_held_pages(s);

    if (sim_check(s) < 0)
        return -1;
    if (held) {
        violation(s, &s->st.violations_i2, "%llu removed pages never released",
                  (unsigned long long)held);
        return -1;
    }
    return 0;
}

uint64_t
sim_violations(const struct sim *s)
{
    return s->st.violations_i1 + s->st.violations_i2 + s->st.violations_i3 +
           s->st.violations_i5;
}
