/* SPDX-License-Identifier: MIT */
/*
 * Balloon: a guest gives back 1 GiB while 4 emulators map parts of it, on
 * the simulated host (simhost/world.c): the real core on a virtual clock,
 * the simulated hypervisor, model emulators on the real IOREQ channel.
 * Only the core's own time counts (core_process() is timed by main.c).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench/bench.h"
#include "daemon/core/core.h"
#include "simhost/baseline.h"
#include "simhost/world.h"
#include "util/log.h"

struct bscen {
    uint32_t range_pages;       /* ballooned: 262144 = 1 GiB */
    uint64_t range_base;        /* first gfn, aligned to range_pages */
    uint32_t ws_pages;          /* per emulator, outside the range */
};

static void
scen_get(struct bscen *sc)
{
    sc->range_pages = small ? 8192 : 262144;
    sc->range_base = sc->range_pages;       /* guest: 2 x range */
    sc->ws_pages = small ? 256 : 4096;
}

static uint64_t
ws_gfn(const struct bscen *sc, int e)
{
    return 0x100 + (uint64_t)e * (sc->range_pages / NEMU);
}

static void
world_up(struct world *w, const struct bscen *sc, uint64_t answer_ns,
         uint64_t flush_ns)
{
    uint64_t guest = 2 * (uint64_t)sc->range_pages;
    /*
     * Room for one record per page: after a balloon up, frames are no
     * longer contiguous in mfn and the shim posts a record per page.  (A
     * smaller ring overflows and the daemon resynchronises with a dump,
     * which is another workload: see docs/PERFORMANCE.md.)
     */
    int rc = world_init(w, guest + 1024, flush_ns, small ? 1u << 14 : 1u << 19);

    if (rc < 0)
        fatalx("world_init: %d", rc);
    if (sim_domain_create(&w->sim, 1, guest) < 0)
        fatalx("cannot create the guest");
    for (int e = 0; e < NEMU; e++) {
        if (world_add_emu(w, 0, 0, answer_ns) != e || world_emu_serves(w, e, 1) < 0)
            fatalx("cannot create emulator %d", e);
    }
    /* Each emulator maps a different 25% of the range, and its own buffers. */
    for (int e = 0; e < NEMU; e++) {
        uint32_t q = sc->range_pages / NEMU;

        if (world_map(w, e, 1, sc->range_base + (uint64_t)e * q, q) != (int)q ||
            world_map(w, e, 1, ws_gfn(sc, e), sc->ws_pages) != (int)sc->ws_pages)
            fatalx("cannot map the working sets");
    }
    world_settle(w);
}

static void
check_world(struct world *w, const char *what)
{
    const struct core_stats *st = core_stats(w->core);
    char why[256] = "";

    if (world_check_views(w, why, sizeof(why)) || sim_violations(&w->sim) ||
        sim_held_pages(&w->sim) || st->pages_released != st->pages_removed ||
        st->resyncs > 1)
        fatalx("%s: invariants do not hold (%s%s; held %" PRIu64 ", released %"
               PRIu64 "/%" PRIu64 ")", what, why, w->sim.last_violation,
               sim_held_pages(&w->sim), st->pages_released, st->pages_removed);
}

/*
 * 1 GiB removed in one decrease_reservation (an order-18 extent) while
 * 4 emulators each map a quarter of it; they answer at once and flushes
 * complete at once.  Daemon time from the first core_process() after
 * the removal to the one that posted the last release.
 *
 * Twice per repeat: "cold" in a daemon that never held that many pages
 * (its page pool and indexes grow, and the memory is touched for the first
 * time: page faults), then "warm" after the guest balloons back up and the
 * emulators map the range again -- the steady state of a daemon that has
 * seen a balloon of that size before.  balloon_1g_ms is the warm figure.
 */
static uint64_t
balloon_once(struct world *w, const struct bscen *sc)
{
    unsigned order = (unsigned)__builtin_ctz(sc->range_pages);
    int rounds = 0;

    bw_reset(w->core, &w->sim.ring);
    if (sim_decrease_reservation(&w->sim, 1, sc->range_base, order) !=
        (int)sc->range_pages)
        fatalx("decrease_reservation failed");
    while (sim_held_pages(&w->sim) && rounds++ < 100000)
        world_advance(w, 1);
    check_world(w, "balloon_1g");
    return bw.last_release_ns;
}

void
bench_balloon_1g(void)
{
    struct bscen sc;
    static struct world w;

    scen_get(&sc);
    for (int r = 0; r < reps; r++) {
        uint64_t cold, warm;
        uint32_t q = sc.range_pages / NEMU;

        bw_reset(NULL, NULL);
        world_up(&w, &sc, 0, 0);
        cold = balloon_once(&w, &sc);
        /* Balloon up again; the emulators map their quarters again. */
        if (sim_populate(&w.sim, 1, sc.range_base, sc.range_pages) != (int)sc.range_pages)
            fatalx("cannot repopulate the range");
        for (int e = 0; e < NEMU; e++)
            if (world_map(&w, e, 1, sc.range_base + (uint64_t)e * q, q) != (int)q)
                fatalx("cannot map the range again");
        world_settle(&w);
        warm = balloon_once(&w, &sc);
        add(&M[M_B1G], (double)warm / 1e6);
        add(&M[M_B1G_COLD], (double)cold / 1e6);
        add(&M[M_B1G_NS_PAGE], (double)warm / sc.range_pages);
        bw_reset(NULL, NULL);   /* its ring goes with the world */
        world_fini(&w);
    }
}

/*
 * The same 1 GiB given back as a balloon driver does, in 2 MiB
 * decrease_reservation calls every 250 us, emulators answering after 50 us
 * and flushes taking 20 us; between calls the emulators keep using their
 * own buffers.  Per page: removed -> released on a clock that runs the
 * waits and the daemon's own time, minus the 70 us of waits.  The same
 * trace is replayed under the global-invalidate baseline (baseline.c).
 */
void
bench_balloon_paced(void)
{
    struct bscen sc;
    static struct world w;
    const uint64_t answer = 50 * US, flush = 20 * US, period = 250 * US;
    uint64_t *best;

    scen_get(&sc);
    best = malloc(sc.range_pages * sizeof(*best));
    if (best == NULL)
        fatalx("out of memory");
    for (uint32_t i = 0; i < sc.range_pages; i++)
        best[i] = UINT64_MAX;
    for (int r = 0; r < reps; r++) {
        const struct core_stats *st;
        struct trace tr = { 0 };
        uint64_t io_unmaps = 0, io_needless = 0, io_inval, ext = 512, own;

        world_up(&w, &sc, answer, flush);
        for (int e = 0; e < NEMU; e++) {
            uint32_t q = sc.range_pages / NEMU;

            trace_add(&tr, TR_USE, w.now, (uint8_t)e, 1, sc.range_base + (uint64_t)e * q, q);
            trace_add(&tr, TR_USE, w.now, (uint8_t)e, 1, ws_gfn(&sc, e), sc.ws_pages);
            w.emus[e].unmaps_invalidate = w.emus[e].needless = 0;
        }
        bw_reset(w.core, &w.sim.ring);
        bw.hybrid = &w;
        bw.lat_base = sc.range_base;
        bw.lat_n = sc.range_pages;
        bw.t_removed = calloc(sc.range_pages, sizeof(uint64_t));
        bw.lat = calloc(sc.range_pages, sizeof(uint64_t));
        if (bw.t_removed == NULL || bw.lat == NULL)
            fatalx("out of memory");
        for (uint64_t k = 0; k < sc.range_pages / ext; k++) {
            uint64_t gfn = sc.range_base + k * ext, t = w.now;

            for (uint64_t i = 0; i < ext; i++)
                bw.t_removed[gfn + i - sc.range_base] = t;
            sim_decrease_reservation(&w.sim, 1, gfn, 9);
            world_settle(&w);   /* the daemon is woken at once */
            trace_add(&tr, TR_BALLOON, t, 0, 1, gfn, (uint32_t)ext);
            trace_add(&tr, TR_BALLOON_END, t, 0, 1, 0, 0);
            world_advance(&w, period / 2);
            /* Each emulator touches a rotating quarter of its own buffers. */
            for (int e = 0; e < NEMU; e++) {
                uint32_t q = sc.ws_pages / 4;
                uint64_t g = ws_gfn(&sc, e) + (k % 4) * q;

                world_map(&w, e, 1, g, q);
                trace_add(&tr, TR_USE, w.now, (uint8_t)e, 1, g, q);
            }
            world_advance(&w, period / 2);
        }
        world_advance(&w, 10 * MS);
        check_world(&w, "balloon_paced");
        if (bw.nlat != sc.range_pages)
            fatalx("balloon_paced: %" PRIu64 " of %u pages seen released",
                   bw.nlat, sc.range_pages);
        for (uint32_t i = 0; i < sc.range_pages; i++) {
            bw.lat[i]--;
            if (bw.lat[i] < best[i])
                best[i] = bw.lat[i];
        }
        qsort(bw.lat, bw.nlat, sizeof(uint64_t), cmp_u64);
#define OWN(x) ((x) > answer + flush ? (x) - answer - flush : 0)
        own = OWN(bw.lat[(bw.nlat * 99) / 100]);
        add(&M[M_P99], (double)own / 1e3);
        add(&M[M_P50], (double)OWN(bw.lat[bw.nlat / 2]) / 1e3);
        add(&M[M_PMAX], (double)OWN(bw.lat[bw.nlat - 1]) / 1e3);

        for (int e = 0; e < NEMU; e++) {
            io_unmaps += w.emus[e].unmaps_invalidate;
            io_needless += w.emus[e].needless;
        }
        st = core_stats(w.core);
        io_inval = st->invalidates_sent + st->global_invalidates_sent;
        baseline_compare(&tr, answer, io_unmaps, io_needless, io_inval, r == 0);
        free(bw.t_removed);
        free(bw.lat);
        bw_reset(NULL, NULL);
        trace_free(&tr);
        world_fini(&w);
    }
    qsort(best, sc.range_pages, sizeof(uint64_t), cmp_u64);
    add(&M[M_P99_BEST], (double)OWN(best[(sc.range_pages * 99) / 100]) / 1e3);
    free(best);
}
