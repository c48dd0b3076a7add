/* SPDX-License-Identifier: MIT */
/*
 * Issue 15: every headline a ratio against a peer measured in the same
 * run, A and B alternated within each repeat (the order flips every
 * repeat), on the shipped sizes.
 *
 *   ingest_ab      the core vs an ideal consumer (ring copy + flat bitmap),
 *                  shipped ring (4096 events), producer thread on the
 *                  other core
 *   tracker_ab     the tracker API on each set implementation (ours,
 *                  CRoaring, Judy1: daemon/core/tracker.h), every layout
 *                  and operation; and bytes per mapping of the daemon's
 *                  books on the worst layout (doubly mapped, scattered)
 *   balloon_real   1 GiB in 512-page calls, 4 emulators, shipped rings
 *                  (4096 events, 1024 commands), core_tick included;
 *                  and the same trace under the global invalidate in time
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "daemon/core/core.h"
#include "daemon/core/tracker.h"
#include "shim/ring.h"
#include "simhost/world.h"
#include "util/log.h"

#define SHIPPED_EV_SLOTS  4096
#define SHIPPED_CMD_SLOTS 1024

/* ---- ingest vs an ideal consumer -------------------------------------------- */

struct prod {
    struct iomap_ring *r;
    const uint64_t *g;
    uint32_t n;
    volatile int go;
};

/* The shim's side: every map, then every unmap, as fast as the ring takes them. */
static void *
producer(void *arg)
{
    struct prod *p = arg;

    while (!__atomic_load_n(&p->go, __ATOMIC_ACQUIRE))
        sched_yield();
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i < p->n; i++) {
            struct iomap_event ev = mk(pass ? IOMAP_EV_UNMAP : IOMAP_EV_MAP, i % NEMU, p->g[i]);

            while (iomap_ring_event_space(p->r) == 0)
                sched_yield();
            if (iomap_ring_post_event(p->r, &ev) < 0)
                fatalx("ingest_ab: post failed");
        }
    return NULL;
}

/* The ideal consumer: copy the records out, set/clear a flat bitmap bit. */
static double
run_ideal(struct bare *b, struct prod *p, uint64_t **bm)
{
    struct iomap_event ev[256];
    uint64_t got = 0, t0;
    pthread_t th;

    if (pthread_create(&th, NULL, producer, p) != 0)
        fatalx("pthread_create");
    t0 = now_ns();
    __atomic_store_n(&p->go, 1, __ATOMIC_RELEASE);
    while (got < 2u * p->n) {
        int k = iomap_ring_take_events(&b->ring, ev, 256);

        if (k < 0)
            fatalx("ingest_ab: ring corrupt");
        if (k == 0) {
            sched_yield();
            continue;
        }
        for (int i = 0; i < k; i++) {
            uint64_t *w = &bm[ev[i].ioservid - 1][ev[i].gfn / 64];
            uint64_t bit = UINT64_C(1) << (ev[i].gfn % 64);

            if (ev[i].type == IOMAP_EV_MAP)
                *w |= bit;
            else
                *w &= ~bit;
        }
        got += (uint64_t)k;
    }
    pthread_join(th, NULL);
    p->go = 0;
    return (double)got / ((double)(now_ns() - t0) / 1e9);
}

static double
run_core(struct bare *b, struct prod *p)
{
    uint64_t got = 0, t0;
    pthread_t th;

    if (pthread_create(&th, NULL, producer, p) != 0)
        fatalx("pthread_create");
    t0 = now_ns();
    __atomic_store_n(&p->go, 1, __ATOMIC_RELEASE);
    while (got < 2u * p->n) {
        int k = core_process(b->core);

        if (k < 0)
            fatalx("ingest_ab: core_process %d", k);
        if (k == 0)
            sched_yield();
        got += (uint64_t)k;
    }
    pthread_join(th, NULL);
    p->go = 0;
    if (core_stats(b->core)->overflows || bare_mappings(b))
        fatalx("ingest_ab: overflow or books not balanced");
    return (double)got / ((double)(now_ns() - t0) / 1e9);
}

void
bench_ingest_ab(void)
{
    uint32_t n = small ? 1u << 16 : 1u << 21;
    uint64_t *g = malloc(n * sizeof(*g)), *bm[NEMU];
    struct bare a, b;
    struct prod p = { 0 };

    if (g == NULL)
        fatalx("out of memory");
    for (int e = 0; e < NEMU; e++)
        if ((bm[e] = calloc(GUEST_64G / 64, sizeof(uint64_t))) == NULL)
            fatalx("out of memory");
    bare_init(&a, SHIPPED_EV_SLOTS);
    bare_init(&b, SHIPPED_EV_SLOTS);
    p.n = n;
    p.g = g;
    for (int r = -1; r < reps; r++) {
        double core_rate, ideal_rate;

        for (uint32_t i = 0; i < n; i++)
            g[i] = rnd() % GUEST_64G;
        if ((r & 1) == 0) {
            p.r = &a.ring;
            core_rate = run_core(&a, &p);
            p.r = &b.ring;
            ideal_rate = run_ideal(&b, &p, bm);
        } else {
            p.r = &b.ring;
            ideal_rate = run_ideal(&b, &p, bm);
            p.r = &a.ring;
            core_rate = run_core(&a, &p);
        }
        if (r < 0)
            continue;           /* warm-up: leaves and bitmaps touched */
        add(&M[M_ING_CORE], core_rate);
        add(&M[M_ING_IDEAL], ideal_rate);
        add(&M[M_ING_RATIO], core_rate / ideal_rate);
    }
    bare_fini(&a);
    bare_fini(&b);
    for (int e = 0; e < NEMU; e++)
        free(bm[e]);
    free(g);
}

/* ---- the tracker on each set implementation ------------------------------------ */

const char *const tr_layout_name[TR_LAYOUTS] = {
    "buffers", "random_pages", "double_scattered", "sparse"
};
const char *const tr_op_name[TR_OPS] = { "add", "test", "next", "del" };
double tr_runs[TR_LAYOUTS][FSET_IMPL_N][MAX_REPS][TR_OPS + 1];
int tr_nruns;

static int tr_impl, tr_layout;

/*
 * The 8 per-(emulator, domain) sets of a layout through the tracker API:
 * add all, test all, iterate all (fset_next), delete all; ns per
 * mapping, and bytes per mapping (heap growth after adding).
 */
static void
tr_child(double *v)
{
    uint64_t n = tr_layout == LAYOUT_SPARSE ? (small ? 20000 : 200000)
                                            : (small ? 200000 : 10000000);
    uint64_t *k, h0, t[5], hit = 0, seen = 0;
    struct fset fs[8];

    rng_state = 0x1234567 + (uint64_t)tr_layout;
    k = gen_keys(tr_layout, n);
    if (fset_select(fset_impl_name(tr_impl)) < 0)
        fatalx("no set implementation %d", tr_impl);
    h0 = heap_bytes();
    for (int s = 0; s < 8; s++)
        fset_init(&fs[s]);
    t[0] = now_ns();
    for (uint64_t i = 0; i < n; i++)
        if (fset_add(&fs[k[i] >> 40], k[i] & ((UINT64_C(1) << 40) - 1)) < 0)
            fatalx("tracker: out of memory");
    t[1] = now_ns();
    v[4] = (double)(heap_bytes() - h0) / (double)n;
    for (uint64_t i = 0; i < n; i++)
        hit += fset_count(&fs[k[i] >> 40], k[i] & ((UINT64_C(1) << 40) - 1)) != 0;
    t[2] = now_ns();
    for (int s = 0; s < 8; s++)
        for (uint64_t g = fset_next(&fs[s], 0); g != UINT64_MAX; g = fset_next(&fs[s], g + 1))
            seen += fset_count(&fs[s], g);
    t[3] = now_ns();
    for (uint64_t i = 0; i < n; i++)
        fset_del(&fs[k[i] >> 40], k[i] & ((UINT64_C(1) << 40) - 1));
    t[4] = now_ns();
    if (hit != n || seen != n)
        fatalx("tracker %s: found %" PRIu64 ", iterated %" PRIu64 " of %" PRIu64,
               fset_impl_name(tr_impl), hit, seen, n);
    for (int s = 0; s < 8; s++) {
        if (fs[s].total)
            fatalx("tracker %s: not empty after deleting all", fset_impl_name(tr_impl));
        fset_free(&fs[s]);
    }
    for (int o = 0; o < TR_OPS; o++)
        v[o] = (double)(t[o + 1] - t[o]) / (double)n;
    free(k);
}

void
bench_tracker_ab(void)
{
    int nr = reps < 3 ? reps : 3;       /* 10M x 4 layouts x 3 sets: minutes */

    for (int r = 0; r < nr; r++) {
        double worst_t = 0, worst_m = 0;

        for (tr_layout = 0; tr_layout < TR_LAYOUTS; tr_layout++) {
            double v[FSET_IMPL_N][5];

            /* A/B/C, the order rotated every repeat and layout. */
            for (int j = 0; j < FSET_IMPL_N; j++) {
                tr_impl = (j + r + tr_layout) % FSET_IMPL_N;
                if (in_child(tr_child, v[tr_impl], 5) < 0)
                    fatalx("tracker workload failed (%s, %s)",
                           fset_impl_name(tr_impl), tr_layout_name[tr_layout]);
                memcpy(tr_runs[tr_layout][tr_impl][r], v[tr_impl], sizeof(v[0]));
            }
            for (int o = 0; o <= TR_OPS; o++) {
                double best = 0;

                for (int i = 1; i < FSET_IMPL_N; i++)
                    if (best == 0 || v[i][o] < best)
                        best = v[i][o];
                if (o < TR_OPS && v[0][o] / best > worst_t)
                    worst_t = v[0][o] / best;
                if (o == TR_OPS && v[0][o] / best > worst_m)
                    worst_m = v[0][o] / best;
            }
        }
        tr_nruns = r + 1;
        add(&M[M_TR_TIME], worst_t);
        add(&M[M_TR_MEM], worst_m);
    }
}

/* ---- balloon on the shipped rings, in 512-page calls ----------------------------- */

uint64_t tick_ns;           /* core_tick time (main.c wraps it) */

struct rscen {
    uint32_t range;             /* pages ballooned */
    uint64_t base;
};

static void
real_up(struct world *w, const struct rscen *sc, uint64_t answer_ns, uint64_t flush_ns,
        int legacy)
{
    uint64_t guest = 2 * (uint64_t)sc->range;

    world_cmd_slots = SHIPPED_CMD_SLOTS;
    if (world_init(w, guest + 1024, flush_ns, SHIPPED_EV_SLOTS) < 0)
        fatalx("world_init");
    world_cmd_slots = 4096;
    if (sim_domain_create(&w->sim, 1, guest) < 0)
        fatalx("cannot create the guest");
    for (int e = 0; e < NEMU; e++)
        if (world_add_emu(w, 0, legacy, answer_ns) != e || world_emu_serves(w, e, 1) < 0)
            fatalx("cannot create emulator %d", e);
}

static void
real_map(struct world *w, const struct rscen *sc)
{
    uint32_t q = sc->range / NEMU;

    for (int e = 0; e < NEMU; e++)
        for (uint32_t o = 0; o < q; o += 512) {
            if (world_map(w, e, 1, sc->base + (uint64_t)e * q + o, 512) != 512)
                fatalx("cannot map");
            world_settle(w);    /* the shipped ring: the daemon keeps up */
        }
}

struct real_out {
    double daemon_ms, wall_ms, tick_ms, p99_us;
    uint64_t overflows;
};

/*
 * The balloon driver's way: 512-page decrease_reservation calls back to
 * back, the daemon woken after each; emulators answer after answer_ns,
 * flushes take flush_ns.  The world's clock runs the waits and the
 * daemon's own time (hybrid), so each page's removed -> released time
 * minus the waits is the daemon's share, queueing included.
 */
static void
real_balloon(struct world *w, const struct rscen *sc, uint64_t answer_ns,
             uint64_t flush_ns, struct real_out *o)
{
    uint64_t w0, rounds = 0, ov0 = core_stats(w->core)->overflows;

    bw_reset(w->core, &w->sim.ring);
    bw.hybrid = w;
    bw.lat_base = sc->base;
    bw.lat_n = sc->range;
    bw.t_removed = calloc(sc->range, sizeof(uint64_t));
    bw.lat = calloc(sc->range, sizeof(uint64_t));
    if (bw.t_removed == NULL || bw.lat == NULL)
        fatalx("out of memory");
    tick_ns = 0;
    w0 = now_ns();
    for (uint32_t k = 0; k < sc->range / 512; k++) {
        uint64_t gfn = sc->base + (uint64_t)k * 512;

        for (uint32_t i = 0; i < 512; i++)
            bw.t_removed[gfn + i - sc->base] = w->now;
        if (sim_decrease_reservation(&w->sim, 1, gfn, 9) != 512)
            fatalx("decrease_reservation failed");
        world_settle(w);
    }
    while (sim_held_pages(&w->sim) && rounds++ < 1000000)
        world_advance(w, 10 * US);
    o->wall_ms = (double)(now_ns() - w0) / 1e6;
    o->daemon_ms = (double)(bw.daemon_ns + tick_ns) / 1e6;
    o->tick_ms = (double)tick_ns / 1e6;
    o->overflows = core_stats(w->core)->overflows - ov0;
    if (bw.nlat != sc->range)
        fatalx("balloon_real: %" PRIu64 " of %u pages seen released", bw.nlat, sc->range);
    for (uint32_t i = 0; i < sc->range; i++) {
        uint64_t l = bw.lat[i] - 1;

        bw.lat[i] = l > answer_ns + flush_ns ? l - answer_ns - flush_ns : 0;
    }
    qsort(bw.lat, sc->range, sizeof(uint64_t), cmp_u64);
    o->p99_us = (double)bw.lat[(sc->range * 99u) / 100] / 1e3;
    free(bw.t_removed);
    free(bw.lat);
    bw_reset(NULL, NULL);
}

void
bench_balloon_real(void)
{
    struct rscen sc = { .range = small ? 8192 : 262144 };
    static struct world w;
    const uint64_t answer = 50 * US, flush = 20 * US;

    sc.base = sc.range;
    for (int r = 0; r < reps; r++) {
        struct real_out cold, warm;
        char why[256] = "";

        real_up(&w, &sc, answer, flush, 0);
        real_map(&w, &sc);
        real_balloon(&w, &sc, answer, flush, &cold);
        if (sim_populate(&w.sim, 1, sc.base, sc.range) != (int)sc.range)
            fatalx("cannot repopulate");
        real_map(&w, &sc);
        real_balloon(&w, &sc, answer, flush, &warm);
        if (world_check_views(&w, why, sizeof(why)) || sim_violations(&w.sim) ||
            sim_held_pages(&w.sim))
            fatalx("balloon_real: invariants do not hold (%s%s)", why, w.sim.last_violation);
        add(&M[M_BR_WARM], warm.daemon_ms);
        add(&M[M_BR_COLD], cold.daemon_ms);
        add(&M[M_BR_P99], warm.p99_us);
        add(&M[M_BR_TICK], warm.tick_ms);
        /* The simulated hypervisor's and the emulators' time, beside the daemon's. */
        add(&M[M_BR_EMU], warm.wall_ms - warm.daemon_ms);
        add(&M[M_BR_OVERFLOWS], (double)(warm.overflows + cold.overflows));
        world_fini(&w);
    }
}

/*
 * The same balloon under Xen's global invalidate, in time: legacy
 * emulators, and the vCPU blocked in each decrease_reservation until
 * every emulator has answered -- its answer latency plus unmapping its
 * whole QEMU-like mapcache (1 MiB buckets).  After each invalidate the
 * emulators re-touch a fraction of their buckets (the sweep), which they
 * map again (that time stalls the emulators, not the vCPU: reported).
 * iomapd on the same calls: the vCPU time is the hypercall's own (the
 * simulated shim posting the events), measured in a run of the same sim.
 *
 * Model costs: unmapping a bucket 2 us, mapping one 5 us (a
 * privcmd/foreign-map hypercall each), answering 50 us.
 */
void
bench_baseline_time(void)
{
    struct rscen sc = { .range = small ? 8192 : 262144 };
    const double unmap_us = 2, map_us = 5, answer_us = 50;
    const double sweep[] = { 0, 0.25, 1.0 };
    static struct world w;

    sc.base = sc.range;
    for (int r = 0; r < reps; r++) {
        uint32_t calls = sc.range / 512;
        /* Each emulator maps a quarter of the range plus 16 MiB of buffers. */
        double buckets = (double)(sc.range / NEMU) / 256 + 16;
        double base_block_ms, io_vcpu_ms, t_hc = 0;

        real_up(&w, &sc, 50 * US, 20 * US, 0);
        real_map(&w, &sc);
        bw_reset(w.core, &w.sim.ring);
        for (uint32_t k = 0; k < calls; k++) {
            uint64_t t0 = now_ns();

            if (sim_decrease_reservation(&w.sim, 1, sc.base + (uint64_t)k * 512, 9) != 512)
                fatalx("decrease_reservation failed");
            t_hc += (double)(now_ns() - t0);
            world_settle(&w);
        }
        while (sim_held_pages(&w.sim))
            world_advance(&w, 10 * US);
        bw_reset(NULL, NULL);
        world_fini(&w);
        io_vcpu_ms = t_hc / 1e6;
        /* Buckets of the ballooned quarter go away as the balloon proceeds. */
        base_block_ms = 0;
        for (uint32_t k = 0; k < calls; k++) {
            double left = buckets - (double)(sc.range / NEMU) / 256 * k / calls;

            base_block_ms += (answer_us + left * unmap_us) / 1e3;
        }
        add(&M[M_BASE_TIME_RATIO], base_block_ms / io_vcpu_ms);
        add(&M[M_BASE_BLOCK_MS], base_block_ms);
        add(&M[M_IO_VCPU_MS], io_vcpu_ms);
        for (int s = 0; s < 3; s++)
            add(&M[M_BASE_REMAP_0 + s], calls * NEMU * 16 * sweep[s] * map_us / 1e3);
    }
}
