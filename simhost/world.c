/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simhost/world.h"
#include "util/log.h"

static uint64_t
world_clock(void *arg)
{
    return ((struct world *)arg)->now;
}

static void
world_kick(void *arg)
{
    (void)arg;  /* the world runs the shim's command processing itself */
}

/* The daemon's books on the world's ring and virtual clock. */
static int
world_core_new(struct world *w)
{
    struct core_env env = { .ring = &w->sim.ring, .clock = world_clock,
                            .kick = world_kick, .arg = w };

    w->core = core_new(&env);
    if (w->core == NULL)
        return -errno;
    core_resync(w->core);       /* as at start-up */
    return 0;
}

uint32_t world_cmd_slots = 4096;

int
world_init(struct world *w, uint64_t host_pages, uint64_t flush_latency_ns,
           uint32_t ev_slots)
{
    struct sim_config cfg = { .nr_pages = host_pages, .ev_slots = ev_slots,
                              .cmd_slots = world_cmd_slots,
                              .flush_latency_ns = flush_latency_ns };
    int rc;

    memset(w, 0, sizeof(*w));
    rc = sim_init(&w->sim, &cfg);
    if (rc < 0)
        return rc;
    rc = world_core_new(w);
    if (rc < 0) {
        sim_fini(&w->sim);
        return rc;
    }
    world_settle(w);
    return 0;
}

static void
model_free(struct model_emu *m)
{
    hmap_free(&m->mapped);
    free(m->pend);
    for (int s = 0; s < m->nsrv; s++) {
        iomap_emu_close(m->srv[s].client);
        m->srv[s].client = NULL;
    }
}

void
world_fini(struct world *w)
{
    for (int i = 0; i < w->nemus; i++)
        model_free(&w->emus[i]);
    core_free(w->core);
    w->core = NULL;
    sim_fini(&w->sim);
}

static struct core_emu_id
srv_id(const struct model_emu *m, const struct model_srv *s)
{
    return (struct core_emu_id){ m->emu_domid, s->target, s->ioservid };
}

/* Register one ioreq server with the daemon, as the client library would. */
static int
connect_client(struct world *w, struct model_emu *m, struct model_srv *s)
{
    struct core_emu_id id = srv_id(m, s);
    struct core_emu_chan ch;
    int rc;

    rc = core_emu_attach(w->core, &id, m->legacy ? 0 : IOMAP_EMU_CAP_INVALIDATE_PAGE,
                         0, &ch);
    if (rc < 0)
        return rc;
    s->client = iomap_emu_open_local(ch.page, -1, -1);
    return s->client ? 0 : -ENOMEM;
}

/* A new ioreq server for target: Xen allocates its id. */
static int
srv_make(struct world *w, struct model_emu *m, struct model_srv *s, uint16_t target)
{
    int idx = sim_emu_create(&w->sim, m->emu_domid, target);

    if (idx < 0)
        return idx;
    s->target = target;
    s->sim_idx = idx;
    s->ioservid = w->sim.emus[idx].ioservid;
    s->client = NULL;
    return 0;
}

/* ... and registered with the daemon. */
static int
srv_create(struct world *w, struct model_emu *m, struct model_srv *s, uint16_t target)
{
    int rc = srv_make(w, m, s, target);

    return rc < 0 ? rc : connect_client(w, m, s);
}

int
world_add_emu(struct world *w, uint16_t emu_domid, int legacy,
              uint64_t answer_delay_ns)
{
    struct model_emu *m;

    if (w->nemus == WORLD_MAX_EMUS)
        return -ENOSPC;
    m = &w->emus[w->nemus];
    memset(m, 0, sizeof(*m));
    m->emu_domid = emu_domid;
    m->legacy = legacy;
    m->answer_delay_ns = answer_delay_ns;
    hmap_init(&m->mapped);
    return w->nemus++;
}

static int
srv_of(const struct model_emu *m, uint16_t domid)
{
    for (int s = 0; s < m->nsrv; s++)
        if (m->srv[s].target == domid)
            return s;
    return -1;
}

int
world_emu_serves(struct world *w, int me, uint16_t domid)
{
    struct model_emu *m = &w->emus[me];
    int rc;

    if (srv_of(m, domid) >= 0)
        return 0;
    if (m->nsrv == WORLD_MAX_TARGETS)
        return -ENOSPC;
    rc = srv_make(w, m, &m->srv[m->nsrv], domid);
    if (rc < 0)
        return rc;
    /*
     * The server the hypervisor made stays, even when the daemon refuses
     * its registration (it maps all the same, as an emulator that does not
     * know iomapd would): the error is returned.
     */
    m->nsrv++;
    return connect_client(w, m, &m->srv[m->nsrv - 1]);
}

uint64_t
world_live(const struct world *w, int me)
{
    const struct model_emu *m = &w->emus[me];
    uint64_t n = 0;

    for (int s = 0; s < m->nsrv; s++) {
        const struct sim_emu *se = &w->sim.emus[m->srv[s].sim_idx];

        if (se->used && se->emu_domid == m->emu_domid && se->target == m->srv[s].target &&
            se->ioservid == m->srv[s].ioservid)
            n += se->live;
    }
    return n;
}

int
world_sim_idx(const struct world *w, int me, uint16_t domid)
{
    int s = srv_of(&w->emus[me], domid);

    return s < 0 ? -1 : w->emus[me].srv[s].sim_idx;
}

struct core_emu_id
world_emu_id(const struct world *w, int me, uint16_t domid)
{
    const struct model_emu *m = &w->emus[me];
    int s = srv_of(m, domid);

    return s < 0 ? (struct core_emu_id){ m->emu_domid, domid, UINT16_MAX } :
                   srv_id(m, &m->srv[s]);
}

uint64_t
world_bfn(const struct model_emu *m, uint16_t domid, uint64_t gfn)
{
    int s = srv_of(m, domid);

    return s < 0 ? UINT64_MAX : ((uint64_t)s << 36) | gfn;
}

int
world_is_mapped(const struct world *w, int me, uint16_t domid, uint64_t gfn)
{
    const struct model_emu *m = &w->emus[me];
    uint64_t bfn = world_bfn(m, domid, gfn);

    return bfn != UINT64_MAX && hmap_get(&m->mapped, bfn) != HMAP_NONE;
}

int
world_map(struct world *w, int me, uint16_t domid, uint64_t gfn, uint32_t nr)
{
    struct model_emu *m = &w->emus[me];
    uint32_t i = 0;
    int done = 0, s = srv_of(m, domid), sidx;

    if (s < 0)
        return -EPERM;
    sidx = m->srv[s].sim_idx;
    while (i < nr) {
        uint32_t run = 0;
        int rc;

        while (i < nr && world_is_mapped(w, me, domid, gfn + i))
            i++;
        while (i + run < nr && !world_is_mapped(w, me, domid, gfn + i + run))
            run++;
        if (run == 0)
            break;
        rc = sim_iommu_map(&w->sim, sidx, domid, gfn + i,
                           world_bfn(m, domid, gfn + i), run, 0);
        if (rc == -ENOENT) {
            /* Part of the run is not populated: map page by page. */
            for (uint32_t k = 0; k < run; k++)
                if (sim_iommu_map(&w->sim, sidx, domid, gfn + i + k,
                                  world_bfn(m, domid, gfn + i + k), 1, 0) == 1) {
                    hmap_put(&m->mapped, world_bfn(m, domid, gfn + i + k), 1);
                    done++;
                }
        } else if (rc > 0) {
            for (uint32_t k = 0; k < run; k++)
                hmap_put(&m->mapped, world_bfn(m, domid, gfn + i + k), 1);
            done += rc;
        } else {
            return rc;
        }
        i += run;
    }
    m->maps += (uint64_t)done;
    return done;
}

/* Unmap what this emulator has mapped in the range; counts needless ones. */
static int
unmap_range(struct world *w, struct model_emu *m, uint16_t domid, uint64_t gfn,
            uint32_t nr, int count_needless)
{
    struct sim_domain *sd = sim_domain(&w->sim, domid);
    uint32_t i = 0;
    int done = 0, s = srv_of(m, domid), sidx;

    if (s < 0)
        return 0;
    sidx = m->srv[s].sim_idx;
    while (i < nr) {
        uint32_t run = 0;
        uint64_t bfn;

        while (i < nr && hmap_get(&m->mapped, world_bfn(m, domid, gfn + i)) == HMAP_NONE)
            i++;
        while (i + run < nr &&
               hmap_get(&m->mapped, world_bfn(m, domid, gfn + i + run)) != HMAP_NONE)
            run++;
        if (run == 0)
            break;
        bfn = world_bfn(m, domid, gfn + i);
        if (count_needless && sd) {
            const struct sim_emu *se = &w->sim.emus[sidx];

            for (uint32_t k = 0; k < run; k++) {
                uint32_t idx = hmap_get(&se->by_bfn, bfn + k);

                /* Still the guest's page at that gfn: dropped for nothing. */
                if (idx != HMAP_NONE && gfn + i + k < sd->max_gfn &&
                    sd->p2m[gfn + i + k] == se->maps[idx].mfn)
                    m->needless++;
            }
        }
        if (sim_iommu_unmap(&w->sim, sidx, bfn, run) == (int)run) {
            for (uint32_t k = 0; k < run; k++)
                hmap_del(&m->mapped, bfn + k);
            done += (int)run;
        } else {
            /* The mapping went behind our back (force-unmap): forget it. */
            for (uint32_t k = 0; k < run; k++)
                hmap_del(&m->mapped, bfn + k);
        }
        i += run;
    }
    return done;
}

int
world_unmap(struct world *w, int me, uint16_t domid, uint64_t gfn, uint32_t nr)
{
    struct model_emu *m = &w->emus[me];
    int n, s = srv_of(m, domid);

    if (s < 0)
        return -EPERM;
    n = unmap_range(w, m, domid, gfn, nr, 0);
    if (n > 0)
        sim_iommu_flush(&w->sim, m->srv[s].sim_idx);
    return n;
}

/* Forget mappings the shim took away (force-unmap, domain destruction). */
static void
model_sync(struct world *w, struct model_emu *m)
{
    uint64_t live = 0;

    for (int s = 0; s < m->nsrv; s++)
        live += w->sim.emus[m->srv[s].sim_idx].used ?
                w->sim.emus[m->srv[s].sim_idx].live : 0;
    if (m->mapped.len == live)
        return;
    for (size_t k = 0; k < m->mapped.cap; k++) {
        uint64_t bfn;
        const struct sim_emu *se;
        unsigned s;

        if (m->mapped.slots[k].key == 0)
            continue;
        bfn = m->mapped.slots[k].key - 1;
        s = (unsigned)(bfn >> 36);
        se = s < (unsigned)m->nsrv ? &w->sim.emus[m->srv[s].sim_idx] : NULL;
        if (se == NULL || !se->used || hmap_get(&se->by_bfn, bfn) == HMAP_NONE) {
            hmap_del(&m->mapped, bfn);
            k--;    /* backward shift may have moved a key here */
        }
    }
}

static void
handle(struct world *w, struct model_emu *m, int s, const struct iomap_emu_req *r)
{
    struct model_srv *sv = &m->srv[s];
    int n = 0;

    model_sync(w, m);
    if (!(m->misbehave & ME_ANSWER_NO_UNMAP)) {
        if (r->global) {
            /* Drop everything of this server's guest (Xen's mapcache flush). */
            struct sim_domain *sd = sim_domain(&w->sim, sv->target);

            if (sd)
                n += unmap_range(w, m, sv->target, 0, (uint32_t)sd->max_gfn, 1);
        } else if (r->domid == sv->target) {
            n = unmap_range(w, m, r->domid, r->gfn, r->nr, 1);
        }
        if (n > 0) {
            m->unmaps_invalidate += (uint64_t)n;
            sim_iommu_flush(&w->sim, sv->sim_idx);
        }
    }
    iomap_emu_done(sv->client, r);
    m->answers++;
}

/* The simulated hypervisor still has this very server, alive. */
static int
srv_alive(const struct world *w, const struct model_srv *s)
{
    const struct sim_emu *se = &w->sim.emus[s->sim_idx];

    return se->used && se->alive && se->target == s->target &&
           se->ioservid == s->ioservid;
}

static int
model_poll(struct world *w, struct model_emu *m)
{
    struct iomap_emu_req r;
    int progress = 0;

    for (int s = 0; s < m->nsrv; s++) {
        struct model_srv *sv = &m->srv[s];

        if (sv->client != NULL && !srv_alive(w, sv)) {
            /*
             * Its ioreq server died behind the model's back (a test crashed
             * it in the simulated hypervisor): the daemon has freed the
             * channel; the model must not touch it again.
             */
            iomap_emu_close(sv->client);
            sv->client = NULL;
        }
        if (sv->client == NULL)
            continue;
        while (iomap_emu_next(sv->client, &r) > 0) {
            if (m->misbehave & ME_IGNORE_INVALIDATES)
                continue;   /* taken and never answered */
            if (m->npend == m->pendcap) {
                m->pendcap = m->pendcap ? m->pendcap * 2 : 16;
                m->pend = realloc(m->pend, m->pendcap * sizeof(*m->pend));
                if (m->pend == NULL)
                    fatalx("%s: out of memory", __func__);
            }
            m->pend[m->npend].req = r;
            m->pend[m->npend].srv = s;
            m->pend[m->npend].due = w->now + m->answer_delay_ns;
            m->npend++;
            progress = 1;
        }
    }
    for (uint32_t i = 0; i < m->npend; ) {
        if (m->srv[m->pend[i].srv].client == NULL) {
            m->pend[i] = m->pend[--m->npend];   /* its server is gone */
            progress = 1;
        } else if (m->pend[i].due <= w->now) {
            handle(w, m, m->pend[i].srv, &m->pend[i].req);
            m->pend[i] = m->pend[--m->npend];
            progress = 1;
        } else {
            i++;
        }
    }
    return progress;
}

void
world_settle(struct world *w)
{
    /* The daemon's periodic timer (policy timeouts), on the virtual clock. */
    core_tick(w->core);
    for (int round = 0; round < 1000; round++) {
        int progress = 0;

        if (core_process(w->core) > 0)
            progress = 1;
        if (sim_process_cmds(&w->sim) > 0)
            progress = 1;
        for (int i = 0; i < w->nemus; i++)
            progress |= model_poll(w, &w->emus[i]);
        if (!progress && iomap_ring_events_pending(&w->sim.ring) == 0 &&
            !core_cmds_waiting(w->core))
            return;
    }
}

void
world_advance(struct world *w, uint64_t dt_ns)
{
    uint64_t end = w->now + dt_ns;

    /* What happened since the last settle is due now, not at the end. */
    world_settle(w);
    /* Flushes overdue (a stuck queue let go) complete now, not at the end. */
    sim_tick(&w->sim, w->now);
    world_settle(w);
    /* Stop at every flush completion and answer due on the way. */
    while (w->now < end) {
        uint64_t next = end, f = sim_next_flush_due(&w->sim);

        if (f > w->now && f < next)
            next = f;
        for (int i = 0; i < w->nemus; i++)
            for (uint32_t k = 0; k < w->emus[i].npend; k++)
                if (w->emus[i].pend[k].due > w->now && w->emus[i].pend[k].due < next)
                    next = w->emus[i].pend[k].due;
        w->now = next;
        sim_tick(&w->sim, w->now);
        world_settle(w);
    }
}

int
world_crash_emu(struct world *w, int me)
{
    struct model_emu *m = &w->emus[me];

    if (m->dead)
        return -ESRCH;
    /* The process is gone: its servers and its view of the channels. */
    m->dead = 1;
    m->npend = 0;
    for (int s = 0; s < m->nsrv; s++) {
        iomap_emu_close(m->srv[s].client);
        m->srv[s].client = NULL;
        sim_emu_crash(&w->sim, m->srv[s].sim_idx);
    }
    return 0;
}

int
world_restart_emu(struct world *w, int me)
{
    struct model_emu *m = &w->emus[me];

    if (!m->dead)
        return -EEXIST;
    world_settle(w);    /* the daemon has seen EMULATOR_GONE */
    /* A new process: it maps nothing yet (the old mappings were taken back
     * or will be); forget what the dead one had. */
    hmap_free(&m->mapped);
    hmap_init(&m->mapped);
    m->dead = 0;
    for (int s = 0; s < m->nsrv; s++) {
        int rc = srv_create(w, m, &m->srv[s], m->srv[s].target);

        if (rc < 0)
            return rc;
    }
    return 0;
}

int
world_restart_daemon(struct world *w)
{
    int rc = world_crash_daemon(w);

    if (rc < 0)
        return rc;
    world_settle(w);
    return 0;
}

int
world_crash_daemon(struct world *w)
{
    int rc;

    core_free(w->core);
    rc = world_core_new(w);
    if (rc < 0)
        return rc;
    /* Emulators reconnect to the new daemon, as they would on its socket. */
    for (int i = 0; i < w->nemus; i++) {
        struct model_emu *m = &w->emus[i];

        m->npend = 0;           /* their old channels are gone with the daemon */
        for (int s = 0; s < m->nsrv; s++) {
            iomap_emu_close(m->srv[s].client);
            m->srv[s].client = NULL;
            if (m->dead || !w->sim.emus[m->srv[s].sim_idx].alive)
                continue;
            rc = connect_client(w, m, &m->srv[s]);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

uint64_t
world_check_views(struct world *w, char *why, size_t whylen)
{
    const struct core *d = w->core;
    struct core_status cs;
    struct core_page_filter any = { 0 };
    struct core_page_info pinfo;
    uint64_t bad = 0, sim_live = 0, sim_held_maps = 0, held_pages = 0;
    uint64_t d_live, d_held_maps = 0, d_pages = 0, cursor = 0;
    uint32_t budget = UINT32_MAX;

    core_status(d, &cs);
    if (cs.resyncing)
        return 0;       /* the books are being rebuilt */
    d_live = cs.mappings;
    for (int e = 0; e < SIM_MAX_EMUS; e++) {
        const struct sim_emu *se = &w->sim.emus[e];
        struct core_emu_id id = { se->emu_domid, se->target, se->ioservid };

        for (uint32_t i = 0; se->used && i < se->nmaps; i++) {
            const struct sim_mapping *m = &se->maps[i];
            const struct sim_page *pg;

            if (!m->live)
                continue;
            pg = &w->sim.pages[m->mfn];
            if (pg->state == SIM_PAGE_ALLOC) {
                sim_live++;
                if (core_map_count(d, &id, m->domid, m->gfn) == 0) {
                    if (!bad++)
                        snprintf(why, whylen, "emulator " CORE_EMU_FMT " maps d%u "
                                 "gfn %#llx; the daemon does not know",
                                 CORE_EMU_ARGS(&id), m->domid,
                                 (unsigned long long)m->gfn);
                }
            } else {
                int held = 0;

                sim_held_maps++;
                if (core_page_find(d, m->domid, m->gfn, m->mfn, &pinfo) == 0) {
                    struct core_holder h;

                    for (uint32_t k = 0; k < pinfo.nholders; k++)
                        if (core_page_holder(d, pinfo.handle, k, &h) == 0 &&
                            core_emu_id_eq(&h.emu, &id))
                            held = 1;
                }
                if (!held) {
                    if (!bad++)
                        snprintf(why, whylen, "emulator " CORE_EMU_FMT " maps removed "
                                 "d%u gfn %#llx; the daemon does not wait for it",
                                 CORE_EMU_ARGS(&id), m->domid,
                                 (unsigned long long)m->gfn);
                }
            }
        }
    }
    while (core_page_next(d, &any, &cursor, &budget, &pinfo)) {
        struct core_holder h;

        d_pages++;
        for (uint32_t k = 0; k < pinfo.nholders; k++)
            if (core_page_holder(d, pinfo.handle, k, &h) == 0)
                d_held_maps += h.count;
    }
    held_pages = sim_held_pages(&w->sim);
    if (sim_live != d_live || sim_held_maps != d_held_maps || held_pages != d_pages) {
        if (!bad++)
            snprintf(why, whylen, "totals differ: live %llu/%llu, on removed pages "
                     "%llu/%llu, held pages %llu/%llu (sim/daemon)",
                     (unsigned long long)sim_live, (unsigned long long)d_live,
                     (unsigned long long)sim_held_maps, (unsigned long long)d_held_maps,
                     (unsigned long long)held_pages, (unsigned long long)d_pages);
    }
    w->i5_mismatches += bad;
    return bad;
}
