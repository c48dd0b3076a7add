/* SPDX-License-Identifier: MIT */
/*
 * iomap-bench: the performance workloads of docs/PERFORMANCE.md.
 *
 * Every workload runs the real ring code (shim/ring.c) and the real daemon
 * code (daemon/) -- the balloon workloads on the simulated hypervisor of
 * shim/sim/world.c with model emulators on the real IOREQ channel.  Only
 * the daemon's own time is measured: the program is linked with
 * -Wl,--wrap=core_process, so every call of core_process() (also the
 * ones world.c makes) is timed; time spent in the simulated hypervisor and
 * in the model emulators is not counted.
 *
 *   iomap-bench [--small] [--reps N] [--out FILE] [--only NAME]
 *
 * Prints a table and writes FILE (default bench/results.json).  There are
 * no pass/fail thresholds here: the goals are printed next to the figures.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shim/ring.h"
#include "simhost/world.h"
#include "daemon/core/core_priv.h"
#include "simhost/baseline.h"
#include "util/log.h"
#include "daemon/core/tracker.h"
#include "daemon/iomapd.h"
#include "json-api/ctl.h"
#include "policy/policy.h"

#include <jansson.h>

#define US UINT64_C(1000)
#define MS UINT64_C(1000000)
#define MAX_REPS 32

static int small;
static int reps = 5;

/* ---- time ------------------------------------------------------------------ */

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Daemon time is wall time (CLOCK_MONOTONIC, ~50 ns a read; the thread CPU
 * clock is a system call of several us on this VM, too dear per call).
 * On a shared machine it includes preemption by other jobs: the paced
 * balloon also reports the p99 of each page's best latency over the
 * repeats, which filters that out.
 */
/* ---- timing every core_process() call (--wrap) --------------------------- */

int __real_core_process(struct core *d);
int __wrap_core_process(struct core *d);

static struct {
    uint64_t daemon_ns;         /* accumulated daemon time */
    uint64_t calls;
    uint64_t last_release_ns;   /* daemon_ns when a RELEASE was last posted */
    uint32_t cmd_seen;          /* command ring producer index seen */
    struct world *hybrid;       /* advance this world's clock by daemon time */
    /* per-page latency (hybrid mode) */
    uint64_t *t_removed;        /* by gfn - lat_base */
    uint64_t lat_base, lat_n;
    uint64_t *lat;              /* by gfn - lat_base: removed -> released, ns */
    uint64_t nlat;
} bw;

static void
scan_cmds(struct core *d)
{
    struct iomap_ring *r = d->ring;
    uint32_t prod = __atomic_load_n(&r->hdr->cmd_prod, __ATOMIC_ACQUIRE);

    if (prod - bw.cmd_seen > r->cmd_slots)
        bw.cmd_seen = prod;     /* another ring (a new world) */
    for (; bw.cmd_seen != prod; bw.cmd_seen++) {
        const struct iomap_cmd *c = &r->cmd[bw.cmd_seen & (r->cmd_slots - 1)];

        if (c->type != IOMAP_CMD_RELEASE)
            continue;
        bw.last_release_ns = bw.daemon_ns;
        if (bw.lat == NULL)
            continue;
        for (uint32_t i = 0; i < c->nr; i++) {
            uint64_t g = c->gfn + i - bw.lat_base;

            if (g < bw.lat_n && bw.lat[g] == 0) {
                bw.lat[g] = bw.hybrid->now - bw.t_removed[g] + 1;
                bw.nlat++;
            }
        }
    }
}

int
__wrap_core_process(struct core *d)
{
    uint64_t t0 = now_ns(), dt;
    int n = __real_core_process(d);

    dt = now_ns() - t0;
    bw.daemon_ns += dt;
    bw.calls++;
    if (bw.hybrid) {
        /* The daemon's time passes on the world's clock too. */
        bw.hybrid->now += dt;
        bw.hybrid->sim.now_ns = bw.hybrid->now;
    }
    scan_cmds(d);
    return n;
}

static void
bw_reset(struct core *d)
{
    memset(&bw, 0, sizeof(bw));
    bw.cmd_seen = d ? __atomic_load_n(&d->ring->hdr->cmd_prod, __ATOMIC_ACQUIRE) : 0;
}

/* ---- statistics -------------------------------------------------------------- */

struct metric {
    const char *name;
    const char *unit;
    const char *goal;           /* human text */
    double goal_val;
    int lower_is_better;
    double v[MAX_REPS];
    int n;
    int is_null;
};

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double
median(const struct metric *m)
{
    double s[MAX_REPS];

    if (m->n == 0)
        return 0;
    memcpy(s, m->v, (size_t)m->n * sizeof(double));
    qsort(s, (size_t)m->n, sizeof(double), cmp_double);
    return m->n % 2 ? s[m->n / 2] : (s[m->n / 2 - 1] + s[m->n / 2]) / 2;
}

static double
vmin(const struct metric *m)
{
    double x = m->n ? m->v[0] : 0;

    for (int i = 1; i < m->n; i++)
        if (m->v[i] < x)
            x = m->v[i];
    return x;
}

static double
vmax(const struct metric *m)
{
    double x = m->n ? m->v[0] : 0;

    for (int i = 1; i < m->n; i++)
        if (m->v[i] > x)
            x = m->v[i];
    return x;
}

static void
add(struct metric *m, double v)
{
    if (m->n < MAX_REPS)
        m->v[m->n++] = v;
}

enum {
    M_SEQ, M_SEQ_MAP, M_SEQ_UNMAP, M_RAND, M_RAND_MAP, M_RAND_UNMAP,
    M_B1G, M_B1G_COLD, M_B1G_NS_PAGE, M_P99, M_P99_BEST, M_P50, M_PMAX,
    M_BPM, M_BPM_RSS, M_BPM_RAND, M_BPM_SPARSE,
    M_API_RPS, M_API_STALL, M_API_STALL_WALL, M_API_FLOOR, M_API_LIST_P999, M_API_LIST_P50, M_API_LIST_RATE, M_API_LIST_PAGE,
    M_BASE_NEEDLESS, M_BASE_BLOCKED, M_BASE_RATIO,
    M_COUNT
};

static struct metric M[M_COUNT] = {
    [M_SEQ] = { "ingest_seq_events_per_s", "ev/s", ">= 20,000,000", 20e6, 0 },
    [M_SEQ_MAP] = { "ingest_seq_map_events_per_s", "ev/s", "", 0, 0 },
    [M_SEQ_UNMAP] = { "ingest_seq_unmap_events_per_s", "ev/s", "", 0, 0 },
    [M_RAND] = { "ingest_rand_events_per_s", "ev/s", ">= 5,000,000", 5e6, 0 },
    [M_RAND_MAP] = { "ingest_rand_map_events_per_s", "ev/s", "", 0, 0 },
    [M_RAND_UNMAP] = { "ingest_rand_unmap_events_per_s", "ev/s", "", 0, 0 },
    [M_B1G] = { "balloon_1g_ms", "ms", "<= 25", 25, 1 },
    [M_B1G_COLD] = { "balloon_1g_cold_ms", "ms", "", 0, 1 },
    [M_B1G_NS_PAGE] = { "balloon_1g_ns_per_page", "ns", "", 0, 1 },
    [M_P99] = { "balloon_p99_us", "us", "<= 100", 100, 1 },
    [M_P99_BEST] = { "balloon_p99_best_of_repeats_us", "us", "", 0, 1 },
    [M_P50] = { "balloon_p50_us", "us", "", 0, 1 },
    [M_PMAX] = { "balloon_max_us", "us", "", 0, 1 },
    [M_BPM] = { "bytes_per_mapping", "B", "<= 8", 8, 1 },
    [M_BPM_RSS] = { "bytes_per_mapping_rss", "B", "", 0, 1 },
    [M_BPM_RAND] = { "bytes_per_mapping_random_pages", "B", "", 0, 1 },
    [M_BPM_SPARSE] = { "bytes_per_mapping_sparse_worst", "B", "", 0, 1 },
    [M_API_RPS] = { "api_rps", "req/s", ">= 50,000", 50000, 0 },
    [M_API_STALL] = { "api_max_stall_ms", "ms", "<= 1", 1, 1 },
    [M_API_STALL_WALL] = { "api_max_stall_wall_ms", "ms", "", 0, 1 },
    [M_API_FLOOR] = { "api_socket_floor_rps", "rt/s", "", 0, 0 },
    [M_API_LIST_P999] = { "api_list_call_p999_ms", "ms", "", 0, 1 },
    [M_API_LIST_P50] = { "api_list_call_p50_ms", "ms", "", 0, 1 },
    [M_API_LIST_RATE] = { "api_list_mappings_per_s", "map/s", "", 0, 0 },
    [M_API_LIST_PAGE] = { "api_list_mappings_per_call", "maps", "", 0, 0 },
    [M_BASE_NEEDLESS] = { "baseline_needless_unmaps", "pages", "(iomapd: 0)", 0, 1 },
    [M_BASE_BLOCKED] = { "baseline_vcpu_blocked_ms", "ms", "(iomapd: 0)", 0, 1 },
    [M_BASE_RATIO] = { "baseline_ratio", "x", "> 1", 1, 0 },
};

/* ---- a bare ring + daemon (no simulated hypervisor) for ingest --------------- */

static void kick_noop(struct core *d) { (void)d; }
static uint64_t clock_real(struct core *d) { (void)d; return now_ns(); }

struct bare {
    void *mem;
    struct iomap_ring ring;
    struct core d;
};

static void
bare_init(struct bare *b, uint32_t ev_slots)
{
    size_t len = IOMAP_REGION_SIZE((size_t)ev_slots, (size_t)4096);

    b->mem = aligned_alloc(4096, (len + 4095) & ~(size_t)4095);
    if (b->mem == NULL)
        fatalx("out of memory for a ring of %u slots", ev_slots);
    memset(b->mem, 0, len);
    if (iomap_ring_format(&b->ring, b->mem, len, ev_slots, 4096) < 0)
        fatalx("cannot format the ring");
    core_init(&b->d, &b->ring, kick_noop, clock_real);
}

static void
bare_fini(struct bare *b)
{
    core_fini(&b->d);
    free(b->mem);
}

static void
post_or_die(struct bare *b, const struct iomap_event *ev)
{
    if (iomap_ring_post_event(&b->ring, ev) < 0)
        fatalx("event ring full while pre-filling");
}

/* Consume the pre-filled ring; returns daemon seconds. */
static double
drain(struct bare *b, uint32_t expect)
{
    uint64_t t0 = now_ns();
    int n = core_process(&b->d);
    uint64_t t1 = now_ns();

    if (n != (int)expect)
        fatalx("daemon consumed %d events, %u were posted", n, expect);
    /* The daemon keeps consuming commands it cannot post: there are none. */
    return (double)(t1 - t0) / 1e9;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t
rnd(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(0x2545f4914f6cdd1d);
}

#define NEMU 4
#define GUEST_64G (UINT64_C(1) << 24)   /* gfns in 64 GiB */

static struct iomap_event
mk(uint8_t type, unsigned emu, uint64_t gfn)
{
    struct iomap_event ev = { .type = type, .domid = 1, .emu_domid = 0,
                              .ioservid = (uint16_t)(emu + 1), .nr = 1,
                              .gfn = gfn, .arg = gfn + 0x100000000u };
    return ev;
}

/*
 * Sequential: 4 emulators mapping contiguous DMA buffers of 256 pages (1
 * MiB), one record per page (nr = 1: the shim coalesces runs, this is the
 * worst case per page), then unmapping them.
 */
static void
bench_ingest_seq(void)
{
    uint32_t slots = small ? 1u << 14 : 1u << 20;
    struct bare b;

    bare_init(&b, slots);
    for (int r = -1; r < reps; r++) {
        double tm, tu;
        uint32_t n = 0;
        uint64_t base = (uint64_t)(r + 1) * 7 * 4096;  /* move around a bit */

        for (uint32_t buf = 0; n < slots; buf++)
            for (uint32_t p = 0; p < 256 && n < slots; p++, n++) {
                struct iomap_event ev = mk(IOMAP_EV_MAP, buf % NEMU,
                                           base + (uint64_t)(buf / NEMU) * 256 + p);
                post_or_die(&b, &ev);
            }
        tm = drain(&b, slots);
        n = 0;
        for (uint32_t buf = 0; n < slots; buf++)
            for (uint32_t p = 0; p < 256 && n < slots; p++, n++) {
                struct iomap_event ev = mk(IOMAP_EV_UNMAP, buf % NEMU,
                                           base + (uint64_t)(buf / NEMU) * 256 + p);
                post_or_die(&b, &ev);
            }
        tu = drain(&b, slots);
        if (b.d.st.unmatched_unmaps || core_mappings(&b.d))
            fatalx("ingest_seq: books do not balance");
        if (r < 0)
            continue;           /* warm-up: leaves get allocated */
        add(&M[M_SEQ], 2.0 * slots / (tm + tu));
        add(&M[M_SEQ_MAP], slots / tm);
        add(&M[M_SEQ_UNMAP], slots / tu);
    }
    bare_fini(&b);
}

/* Random: single pages uniformly over a 64 GiB guest, 4 emulators. */
static void
bench_ingest_rand(void)
{
    uint32_t slots = small ? 1u << 14 : 1u << 20;
    uint64_t *g = malloc(slots * sizeof(*g));
    struct bare b;

    if (g == NULL)
        fatalx("out of memory");
    bare_init(&b, slots);
    for (int r = -1; r < reps; r++) {
        double tm, tu;

        for (uint32_t i = 0; i < slots; i++)
            g[i] = rnd() % GUEST_64G;
        for (uint32_t i = 0; i < slots; i++) {
            struct iomap_event ev = mk(IOMAP_EV_MAP, i % NEMU, g[i]);
            post_or_die(&b, &ev);
        }
        tm = drain(&b, slots);
        for (uint32_t i = 0; i < slots; i++) {
            struct iomap_event ev = mk(IOMAP_EV_UNMAP, i % NEMU, g[i]);
            post_or_die(&b, &ev);
        }
        tu = drain(&b, slots);
        if (b.d.st.unmatched_unmaps || core_mappings(&b.d))
            fatalx("ingest_rand: books do not balance");
        if (r < 0)
            continue;
        add(&M[M_RAND], 2.0 * slots / (tm + tu));
        add(&M[M_RAND_MAP], slots / tm);
        add(&M[M_RAND_UNMAP], slots / tu);
    }
    bare_fini(&b);
    free(g);
}

/* ---- balloon on the simulated host --------------------------------------------- */

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
        if (world_add_emu(w, 0, (uint16_t)(e + 1), 0, answer_ns) != e)
            fatalx("cannot create emulator %d", e);
        world_emu_serves(w, e, 1);
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
    char why[256] = "";

    if (world_check_views(w, why, sizeof(why)) || sim_violations(&w->sim) ||
        sim_held_pages(&w->sim) || w->d.st.pages_released != w->d.st.pages_removed ||
        w->d.st.resyncs > 1)
        fatalx("%s: invariants do not hold (%s%s; held %" PRIu64 ", released %"
               PRIu64 "/%" PRIu64 ")", what, why, w->sim.last_violation,
               sim_held_pages(&w->sim), w->d.st.pages_released,
               w->d.st.pages_removed);
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

    bw_reset(&w->d);
    if (sim_decrease_reservation(&w->sim, 1, sc->range_base, order) !=
        (int)sc->range_pages)
        fatalx("decrease_reservation failed");
    while (sim_held_pages(&w->sim) && rounds++ < 100000)
        world_advance(w, 1);
    check_world(w, "balloon_1g");
    return bw.last_release_ns;
}

static void
bench_balloon_1g(void)
{
    struct bscen sc;
    static struct world w;

    scen_get(&sc);
    for (int r = 0; r < reps; r++) {
        uint64_t cold, warm;
        uint32_t q = sc.range_pages / NEMU;

        bw_reset(NULL);
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
        world_fini(&w);
    }
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/*
 * The same 1 GiB given back as a balloon driver does, in 2 MiB
 * decrease_reservation calls every 250 us, emulators answering after 50 us
 * and flushes taking 20 us; between calls the emulators keep using their
 * own buffers.  Per page: removed -> released on a clock that runs the
 * waits and the daemon's own time, minus the 70 us of waits.  The same
 * trace is replayed under the global-invalidate baseline.
 */
static void
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
        struct trace tr = { 0 };
        struct baseline_emu bemus[NEMU];
        struct baseline_result base;
        uint64_t io_unmaps = 0, io_needless = 0, io_inval, ext = 512, own;
        double base_work, io_work;

        world_up(&w, &sc, answer, flush);
        for (int e = 0; e < NEMU; e++) {
            uint32_t q = sc.range_pages / NEMU;

            trace_add(&tr, TR_USE, w.now, (uint8_t)e, 1, sc.range_base + (uint64_t)e * q, q);
            trace_add(&tr, TR_USE, w.now, (uint8_t)e, 1, ws_gfn(&sc, e), sc.ws_pages);
            bemus[e] = (struct baseline_emu){ .targets = { 1 }, .ntargets = 1,
                                              .answer_delay_ns = answer };
            w.emus[e].unmaps_invalidate = w.emus[e].needless = 0;
        }
        bw_reset(&w.d);
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
        io_inval = w.d.st.invalidates_sent + w.d.st.global_invalidates_sent;
        if (baseline_replay(&tr, bemus, NEMU, &base) < 0)
            fatalx("baseline replay ran out of memory");
        base_work = (double)(base.unmaps + base.remaps + base.invalidates_sent);
        /* iomapd: its unmaps, remaps of needlessly dropped pages, invalidates */
        io_work = (double)(io_unmaps + io_needless + io_inval);
        add(&M[M_BASE_NEEDLESS], (double)base.needless_unmaps);
        add(&M[M_BASE_BLOCKED], (double)base.vcpu_blocked_ns / 1e6);
        add(&M[M_BASE_RATIO], io_work > 0 ? base_work / io_work : 0);
        if (r == 0)
            printf("  (trace: %" PRIu64 " hypercalls; baseline %" PRIu64 " invalidates, %"
                   PRIu64 " unmaps, %" PRIu64 " remaps | iomapd %" PRIu64
                   " invalidate ranges, %" PRIu64 " unmaps, %" PRIu64 " needless)\n",
                   base.hypercalls, base.invalidates_sent, base.unmaps, base.remaps,
                   io_inval, io_unmaps, io_needless);
        free(bw.t_removed);
        free(bw.lat);
        bw_reset(NULL);
        trace_free(&tr);
        world_fini(&w);
    }
    qsort(best, sc.range_pages, sizeof(uint64_t), cmp_u64);
    add(&M[M_P99_BEST], (double)OWN(best[(sc.range_pages * 99) / 100]) / 1e3);
    free(best);
}

/* ---- memory ------------------------------------------------------------------------ */

static uint64_t
heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();

    return mi.uordblks + mi.hblkhd;
}

static uint64_t
rss_bytes(void)
{
    unsigned long size, res;
    FILE *f = fopen("/proc/self/statm", "r");

    if (f == NULL)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &res) != 2)
        res = 0;
    fclose(f);
    return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

enum { LAYOUT_BUFFERS, LAYOUT_RANDOM, LAYOUT_SPARSE };

/*
 * The mapping set: 4 emulators x 2 guests of 64 GiB.  BUFFERS: DMA
 * buffers of 1..512 pages at random places; RANDOM: single pages
 * uniformly; SPARSE: one page per 16 MiB leaf (the worst case for the
 * bitmap leaves).  keys[i] = set << 40 | gfn.
 */
static uint64_t *
gen_keys(int layout, uint64_t n)
{
    uint64_t *k = malloc(n * sizeof(*k)), i = 0;

    if (k == NULL)
        fatalx("out of memory");
    while (i < n) {
        uint64_t set = rnd() % 8;

        if (layout == LAYOUT_BUFFERS) {
            uint64_t len = 1 + rnd() % 512, g = rnd() % (GUEST_64G - 512);

            for (uint64_t j = 0; j < len && i < n; j++)
                k[i++] = set << 40 | (g + j);
        } else if (layout == LAYOUT_RANDOM) {
            k[i++] = set << 40 | (rnd() % GUEST_64G);
        } else {
            k[i] = (uint64_t)(i % 8) << 40 | ((i / 8) << 12 | (rnd() % 4096));
            i++;
        }
    }
    return k;
}

/* Fill the daemon's books with n mappings through the ring; bytes per mapping. */
static void
mem_daemon(int layout, uint64_t n, double *heap_bpm, double *rss_bpm)
{
    uint32_t slots = 1u << 16;
    uint64_t *k = gen_keys(layout, n);
    struct bare b;
    uint64_t h0, r0, done = 0;

    bare_init(&b, slots);
    h0 = heap_bytes();
    r0 = rss_bytes();
    while (done < n) {
        uint32_t m = n - done < slots ? (uint32_t)(n - done) : slots;

        for (uint32_t i = 0; i < m; i++) {
            uint64_t key = k[done + i];
            struct iomap_event ev = mk(IOMAP_EV_MAP, (key >> 40) % NEMU,
                                       key & ((UINT64_C(1) << 40) - 1));

            ev.domid = (uint16_t)(1 + (key >> 40) / NEMU);
            post_or_die(&b, &ev);
        }
        drain(&b, m);
        done += m;
    }
    if (core_mappings(&b.d) != n)
        fatalx("memory: %" PRIu64 " mappings tracked, %" PRIu64 " made",
               core_mappings(&b.d), n);
    *heap_bpm = (double)(heap_bytes() - h0) / (double)n;
    *rss_bpm = (double)(rss_bytes() - r0) / (double)n;
    bare_fini(&b);
    free(k);
}

/* Run fn in a child so that each measurement starts from a fresh heap. */
static int
in_child(void (*fn)(double *out), double *out, int nout)
{
    int p[2];
    pid_t pid;
    int st;

    if (pipe(p) < 0)
        return -errno;
    fflush(stdout);
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        double v[8] = { 0 };

        close(p[0]);
        fn(v);
        if (write(p[1], v, sizeof(double) * (size_t)nout) < 0)
            _exit(2);
        _exit(0);
    }
    close(p[1]);
    if (read(p[0], out, sizeof(double) * (size_t)nout) != (ssize_t)(sizeof(double) * (size_t)nout))
        nout = -1;
    close(p[0]);
    waitpid(pid, &st, 0);
    return nout < 0 || !WIFEXITED(st) || WEXITSTATUS(st) ? -EIO : 0;
}

static void
mem_child(double *v)
{
    uint64_t n = small ? 200000 : 10000000;

    mem_daemon(LAYOUT_BUFFERS, n, &v[0], &v[1]);
    mem_daemon(LAYOUT_RANDOM, n, &v[2], &v[3]);
    mem_daemon(LAYOUT_SPARSE, small ? 20000 : 200000, &v[4], &v[5]);
}

static void
bench_memory(void)
{
    /* Deterministic in the mapping set; two runs show allocator noise. */
    for (int r = 0; r < (reps < 3 ? reps : 3); r++) {
        double v[6];

        rng_state = 0x9e3779b97f4a7c15u + (uint64_t)r;
        if (in_child(mem_child, v, 6) < 0)
            fatalx("memory workload failed");
        add(&M[M_BPM], v[0] > v[1] ? v[0] : v[1]);
        add(&M[M_BPM_RSS], v[1]);
        add(&M[M_BPM_RAND], v[2] > v[3] ? v[2] : v[3]);
        add(&M[M_BPM_SPARSE], v[4] > v[5] ? v[4] : v[5]);
    }
}

/* ---- the tracker against alternatives ------------------------------------------------ */

/* libJudy, if installed, through dlopen: a bench-only comparison. */
typedef void *Pvoid;
static struct {
    void *h;
    int (*j1set)(Pvoid *, unsigned long, void *);
    int (*j1unset)(Pvoid *, unsigned long, void *);
    int (*j1test)(const void *, unsigned long, void *);
    unsigned long (*j1free)(Pvoid *, void *);
    Pvoid *(*jlins)(Pvoid *, unsigned long, void *);
    Pvoid *(*jlget)(const void *, unsigned long, void *);
    int (*jldel)(Pvoid *, unsigned long, void *);
    unsigned long (*jlfree)(Pvoid *, void *);
} J;

static int
judy_load(void)
{
    if (J.h)
        return 1;
    J.h = dlopen("libJudy.so.1", RTLD_NOW);
    if (J.h == NULL)
        return 0;
#define SYM(f, n) do { *(void **)&J.f = dlsym(J.h, n); if (!J.f) return 0; } while (0)
    SYM(j1set, "Judy1Set"); SYM(j1unset, "Judy1Unset"); SYM(j1test, "Judy1Test");
    SYM(j1free, "Judy1FreeArray"); SYM(jlins, "JudyLIns"); SYM(jlget, "JudyLGet");
    SYM(jldel, "JudyLDel"); SYM(jlfree, "JudyLFreeArray");
    return 1;
}

enum { IMPL_FSET, IMPL_JUDY, IMPL_HMAP, IMPL_N };
static const char *const impl_name[IMPL_N] = {
    "fset (radix of 4096-bit leaves + hmap)", "Judy1 + JudyL (libJudy)",
    "hmap (gfn -> count)"
};

struct cmp_res {
    double ns_add, ns_test, ns_del, bpm;
};

/*
 * The same multiset of (set, gfn) in 8 per-(emulator, domain) structures:
 * add all, test all, delete all.  Memory = heap growth after adding.
 */
static int
run_impl(int impl, const uint64_t *k, uint64_t n, struct cmp_res *res)
{
    struct fset fs[8];
    struct hmap hm[8];
    Pvoid j1[8] = { 0 }, jl[8] = { 0 };
    uint64_t h0, t0, t1, t2, t3, hit = 0;

    if (impl == IMPL_JUDY && !judy_load())
        return -1;
    h0 = heap_bytes();
    for (int s = 0; s < 8; s++) {
        fset_init(&fs[s]);
        hmap_init(&hm[s]);
    }
    t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        unsigned s = (unsigned)(k[i] >> 40);
        uint64_t g = k[i] & ((UINT64_C(1) << 40) - 1);

        if (impl == IMPL_FSET) {
            fset_add(&fs[s], g);
        } else if (impl == IMPL_HMAP) {
            uint32_t c = hmap_get(&hm[s], g);

            hmap_put(&hm[s], g, c == HMAP_NONE ? 1 : c + 1);
        } else if (J.j1set(&j1[s], g, NULL) == 0) {
            Pvoid *pv = J.jlins(&jl[s], g, NULL);   /* mapped again */

            *(uintptr_t *)pv += 1;
        }
    }
    t1 = now_ns();
    res->bpm = (double)(heap_bytes() - h0) / (double)n;
    for (uint64_t i = 0; i < n; i++) {
        unsigned s = (unsigned)(k[i] >> 40);
        uint64_t g = k[i] & ((UINT64_C(1) << 40) - 1);

        if (impl == IMPL_FSET)
            hit += fset_count(&fs[s], g) != 0;
        else if (impl == IMPL_HMAP)
            hit += hmap_get(&hm[s], g) != HMAP_NONE;
        else
            hit += J.j1test(j1[s], g, NULL) != 0;
    }
    t2 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        unsigned s = (unsigned)(k[i] >> 40);
        uint64_t g = k[i] & ((UINT64_C(1) << 40) - 1);

        if (impl == IMPL_FSET) {
            fset_del(&fs[s], g);
        } else if (impl == IMPL_HMAP) {
            uint32_t c = hmap_get(&hm[s], g);

            if (c == 1)
                hmap_del(&hm[s], g);
            else
                hmap_put(&hm[s], g, c - 1);
        } else {
            Pvoid *pv = J.jlget(jl[s], g, NULL);

            if (pv && *(uintptr_t *)pv > 1)
                *(uintptr_t *)pv -= 1;
            else if (pv)
                J.jldel(&jl[s], g, NULL);
            else
                J.j1unset(&j1[s], g, NULL);
        }
    }
    t3 = now_ns();
    if (hit != n)
        fatalx("tracker comparison: %s found %" PRIu64 " of %" PRIu64,
               impl_name[impl], hit, n);
    for (int s = 0; s < 8; s++) {
        if ((impl == IMPL_FSET && fs[s].total) || (impl == IMPL_HMAP && hm[s].len) ||
            (impl == IMPL_JUDY && (j1[s] || jl[s])))
            fatalx("tracker comparison: %s not empty after deleting all", impl_name[impl]);
        fset_free(&fs[s]);
        hmap_free(&hm[s]);
        if (impl == IMPL_JUDY) {
            J.j1free(&j1[s], NULL);
            J.jlfree(&jl[s], NULL);
        }
    }
    res->ns_add = (double)(t1 - t0) / (double)n;
    res->ns_test = (double)(t2 - t1) / (double)n;
    res->ns_del = (double)(t3 - t2) / (double)n;
    return 0;
}

static struct cmp_res cmp_out[2][IMPL_N];
static int cmp_have[2][IMPL_N];
static const char *const layout_name[2] = { "buffers", "random_pages" };

static int cmp_impl, cmp_layout;

static void
cmp_child(double *v)
{
    uint64_t n = small ? 200000 : 10000000;
    uint64_t *k;
    struct cmp_res r;

    rng_state = 0x1234567;
    k = gen_keys(cmp_layout, n);
    if (run_impl(cmp_impl, k, n, &r) < 0) {
        v[0] = -1;
        return;
    }
    v[0] = r.ns_add;
    v[1] = r.ns_test;
    v[2] = r.ns_del;
    v[3] = r.bpm;
    free(k);
}

static void
bench_compare(void)
{
    for (cmp_layout = 0; cmp_layout < 2; cmp_layout++)
        for (cmp_impl = 0; cmp_impl < IMPL_N; cmp_impl++) {
            double v[4];

            if (in_child(cmp_child, v, 4) < 0 || v[0] < 0)
                continue;
            cmp_out[cmp_layout][cmp_impl] = (struct cmp_res){ v[0], v[1], v[2], v[3] };
            cmp_have[cmp_layout][cmp_impl] = 1;
        }
}

/* ---- the JSON-RPC API ---------------------------------------------------------------- */

/*
 * What iomapd.c gives json-api/control.c and methods.c, for the calls made
 * in-process (ctl_request(): a request line without a connection).
 */
static struct iomap_ring api_shim;

uint64_t
iomapd_now_ns(void)
{
    return now_ns();
}

void
iomapd_process(struct iomapd *io)
{
    struct iomap_cmd c[64];

    core_process(&io->d);
    while (iomap_ring_take_cmds(&api_shim, c, 64) > 0)
        ;
    ctl_flush_notes(io);
}

int
iomapd_load_policy(struct iomapd *io, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    core_set_policy(&io->d, NULL);
    return 1;
}

/*
 * api_max_stall_ms: a daemon holding 10,000,000 mappings (4 emulators x 2
 * guests, DMA buffers, fed through a real ring) and one client paging
 * through mapping.list at the largest page size (limit 10,000).  Paging
 * is sequential (each call needs the previous cursor), so the loop runs
 * one call per pass: the time of one call -- parse, method, JSON out --
 * is a pause of event processing.  The figure is the longest call, each
 * call timed as the best of 3 runs of the same request (mapping.list only
 * reads): on this shared VM a vCPU preempted by other jobs or by the host
 * (no steal time is reported, so even thread CPU time includes it) makes
 * single runs of ~1 in 1,000 calls take 2-40 ms.  The plain wall-clock
 * maximum of the first runs is reported next to it (api_max_stall_wall_ms).
 */
static int
dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void
api_stall_child(double *v)
{
    uint64_t n = small ? 200000 : 10000000, done = 0, listed = 0;
    uint32_t slots = 1u << 16, calls = 0, cap = 4096;
    size_t len = IOMAP_REGION_SIZE((size_t)slots, (size_t)4096);
    void *mem = aligned_alloc(4096, (len + 4095) & ~(size_t)4095);
    uint64_t *k;
    double *t = malloc(cap * sizeof(double)), total = 0, wall_max = 0;
    static struct iomapd io;
    struct iomap_ring r;
    struct ctl *ctl;
    char err[128], *cursor = NULL;

    rng_state = 0x5eed;
    k = gen_keys(LAYOUT_BUFFERS, n);
    if (mem == NULL || t == NULL)
        fatalx("out of memory");
    memset(mem, 0, len);
    memset(&io, 0, sizeof(io));
    io.opt.config = "/nonexistent/iomapd.conf";
    io.opt.ctl_socket = "/nonexistent/iomapd.sock";
    io.emu_lfd = io.notify_fd = -1;
    io.started_ns = now_ns();
    if (iomap_ring_format(&api_shim, mem, len, slots, 4096) < 0 ||
        iomap_ring_attach(&r, mem, len, err, sizeof(err)) < 0 ||
        core_init(&io.d, &r, kick_noop, clock_real) < 0)
        fatalx("api: cannot set up the daemon");
    io.d.backend = &io;
    if ((ctl = ctl_create(&io)) == NULL)
        fatalx("api: ctl_create failed");
    while (done < n) {
        uint32_t m = n - done < slots ? (uint32_t)(n - done) : slots;

        for (uint32_t i = 0; i < m; i++) {
            uint64_t key = k[done + i];
            struct iomap_event ev = mk(IOMAP_EV_MAP, (key >> 40) % NEMU,
                                       key & ((UINT64_C(1) << 40) - 1));

            ev.domid = (uint16_t)(1 + (key >> 40) / NEMU);
            if (iomap_ring_post_event(&api_shim, &ev) < 0)
                fatalx("api: ring full");
        }
        iomapd_process(&io);
        done += m;
    }
    free(k);
    if (core_mappings(&io.d) != n)
        fatalx("api: %" PRIu64 " mappings tracked, %" PRIu64 " made",
               core_mappings(&io.d), n);
    for (;;) {
        char req[256], *out;
        json_t *resp, *res, *nc;
        json_error_t jerr;
        uint64_t t0, t1, best;
        int l;

        l = snprintf(req, sizeof(req), "{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":"
                     "\"mapping.list\",\"params\":{\"limit\":%d%s%s%s}}", calls,
                     CTL_MAX_LIMIT, cursor ? ",\"cursor\":\"" : "",
                     cursor ? cursor : "", cursor ? "\"" : "");
        t0 = now_ns();
        out = ctl_request(ctl, req, (size_t)l, 1);
        t1 = now_ns();
        if (out == NULL)
            fatalx("api: ctl_request failed");
        if (calls == cap) {
            cap *= 2;
            if ((t = realloc(t, cap * sizeof(double))) == NULL)
                fatalx("out of memory");
        }
        if ((double)(t1 - t0) / 1e6 > wall_max)
            wall_max = (double)(t1 - t0) / 1e6;
        best = t1 - t0;
        /* The same call again (mapping.list only reads): the best of 3. */
        for (int again = 0; again < 2; again++) {
            char *o2;

            t0 = now_ns();
            o2 = ctl_request(ctl, req, (size_t)l, 1);
            t1 = now_ns();
            free(o2);
            if (t1 - t0 < best)
                best = t1 - t0;
        }
        t[calls++] = (double)best / 1e6;
        total += (double)(t1 - t0) / 1e9;
        resp = json_loads(out, 0, &jerr);
        res = resp ? json_object_get(resp, "result") : NULL;
        if (res == NULL)
            fatalx("api: mapping.list failed: %.200s", out);
        listed += json_array_size(json_object_get(res, "mappings"));
        nc = json_object_get(res, "next_cursor");
        free(cursor);
        cursor = json_is_string(nc) ? strdup(json_string_value(nc)) : NULL;
        json_decref(resp);
        free(out);
        if (cursor == NULL)
            break;
    }
    qsort(t, calls, sizeof(double), dbl_cmp);
    v[0] = t[calls - 1];
    v[1] = t[calls / 2];
    v[2] = (double)listed / total;
    v[3] = (double)listed / calls;
    v[4] = wall_max;
    v[5] = t[(calls * 999) / 1000];
    ctl_fini(&io);
    core_fini(&io.d);
    free(t);
    free(mem);
}

/* ---- api_rps: the real iomapd (--backend sim, iomap-sim) over its socket ---- */

/* Started by bench_api_rps: stopped at exit, also when a check fails (fatalx). */
static pid_t api_pids[2];
static char api_dir[64];

static void
api_cleanup(void)
{
    static const char *const f[] = { "sim.sock", "hc.sock", "emu.sock", "ctl.sock" };
    char path[128];

    for (int i = 1; i >= 0; i--)
        if (api_pids[i] > 0) {
            kill(api_pids[i], SIGTERM);
            waitpid(api_pids[i], NULL, 0);
            api_pids[i] = 0;
        }
    if (api_dir[0]) {
        for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
            snprintf(path, sizeof(path), "%s/%s", api_dir, f[i]);
            unlink(path);
        }
        rmdir(api_dir);
        api_dir[0] = 0;
    }
}

static pid_t
spawn_quiet(char *const argv[])
{
    posix_spawn_file_actions_t fa;
    pid_t pid;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (posix_spawn(&pid, argv[0], &fa, NULL, argv, NULL) != 0)
        fatalx("cannot start %s", argv[0]);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

static int
wait_path(const char *path)
{
    struct stat st;

    for (int i = 0; i < 500; i++) {
        if (stat(path, &st) == 0)
            return 0;
        usleep(10000);
    }
    return -1;
}

/* One request, one response line; returns the response length. */
static ssize_t
rpc_round(int fd, const char *req, size_t reqlen, char *buf, size_t buflen)
{
    size_t got = 0;

    if (write(fd, req, reqlen) != (ssize_t)reqlen)
        return -1;
    for (;;) {
        ssize_t k = read(fd, buf + got, buflen - got);

        if (k <= 0)
            return -1;
        got += (size_t)k;
        if (buf[got - 1] == '\n')
            return (ssize_t)got;
        if (got == buflen)
            return -1;
    }
}

static void
bench_api_rps(void)
{
    const char *bd = getenv("top_builddir") ? getenv("top_builddir") : ".";
    char dir[] = "/tmp/iomap-bench-api.XXXXXX", sim[256], iomapd[256], simsock[300],
         hcsock[300], emusock[300], ctlsock[300], conf[300], buf[65536];
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    uint32_t n = small ? 5000 : 50000;
    int fd;

    if (mkdtemp(dir) == NULL)
        fatalx("mkdtemp: %s", strerror(errno));
    snprintf(api_dir, sizeof(api_dir), "%s", dir);
    atexit(api_cleanup);
    snprintf(sim, sizeof(sim), "%s/iomap-sim", bd);
    snprintf(iomapd, sizeof(iomapd), "%s/iomapd", bd);
    snprintf(simsock, sizeof(simsock), "%s/sim.sock", dir);
    snprintf(hcsock, sizeof(hcsock), "%s/hc.sock", dir);
    snprintf(emusock, sizeof(emusock), "%s/emu.sock", dir);
    snprintf(ctlsock, sizeof(ctlsock), "%s/ctl.sock", dir);
    snprintf(conf, sizeof(conf), "%s/none.conf", dir);
    {
        char *a[] = { sim, "-s", simsock, "-H", hcsock, "-g", "1", NULL };

        api_pids[0] = spawn_quiet(a);
    }
    if (wait_path(hcsock) < 0)
        fatalx("api: %s did not come up", sim);
    {
        char *a[] = { iomapd, "--backend", "sim", "--sim-socket", simsock, "-e", emusock,
                      "-s", ctlsock, "-c", conf, "-l", "error", NULL };

        api_pids[1] = spawn_quiet(a);
    }
    if (wait_path(ctlsock) < 0)
        fatalx("api: %s did not come up", iomapd);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (strlen(ctlsock) >= sizeof(sun.sun_path))
        fatalx("api: socket path too long: %s", ctlsock);
    memcpy(sun.sun_path, ctlsock, strlen(ctlsock) + 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
        fatalx("api: cannot connect to %s: %s", ctlsock, strerror(errno));
    for (int r = -1; r < reps; r++) {
        static const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"status\"}\n";
        uint64_t t0 = now_ns();

        for (uint32_t i = 0; i < (r < 0 ? n / 10 : n); i++) {
            ssize_t k = rpc_round(fd, req, sizeof(req) - 1, buf, sizeof(buf));

            if (k < 0 || memmem(buf, (size_t)k, "\"result\"", 8) == NULL)
                fatalx("api: status failed");
        }
        if (r >= 0)
            add(&M[M_API_RPS], (double)n / ((double)(now_ns() - t0) / 1e9));
    }
    close(fd);
    api_cleanup();
}

/*
 * The machine's floor for one round trip over a UNIX stream socket: a
 * child that echoes 64 bytes, no JSON, no event loop.
 */
static void
bench_socket_floor(void)
{
    uint32_t n = small ? 5000 : 50000;
    char buf[256];
    int sv[2];
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        fatalx("socketpair: %s", strerror(errno));
    pid = fork();
    if (pid == 0) {
        ssize_t k;

        close(sv[0]);
        while ((k = read(sv[1], buf, sizeof(buf))) > 0)
            if (write(sv[1], buf, (size_t)k) != k)
                _exit(1);
        _exit(0);
    }
    close(sv[1]);
    memset(buf, 'x', 64);
    for (int r = -1; r < reps; r++) {
        uint64_t t0 = now_ns();

        for (uint32_t i = 0; i < n; i++)
            if (write(sv[0], buf, 64) != 64 || read(sv[0], buf, sizeof(buf)) != 64)
                fatalx("socket floor: short round trip");
        if (r >= 0)
            add(&M[M_API_FLOOR], (double)n / ((double)(now_ns() - t0) / 1e9));
    }
    close(sv[0]);
    waitpid(pid, NULL, 0);
}

static void
bench_api(void)
{
    for (int r = 0; r < (reps < 2 ? reps : 2); r++) {
        double v[6];

        if (in_child(api_stall_child, v, 6) < 0)
            fatalx("api: the mapping.list workload failed");
        add(&M[M_API_STALL], v[0]);
        add(&M[M_API_STALL_WALL], v[4]);
        add(&M[M_API_LIST_P999], v[5]);
        add(&M[M_API_LIST_P50], v[1]);
        add(&M[M_API_LIST_RATE], v[2]);
        add(&M[M_API_LIST_PAGE], v[3]);
    }
    bench_api_rps();
    bench_socket_floor();
}

/* ---- output ------------------------------------------------------------------------ */

static void
print_table(void)
{
    printf("\n%-34s %14s %14s %14s  %-6s %s\n", "metric", "median", "min", "max",
           "unit", "goal");
    for (int i = 0; i < M_COUNT; i++) {
        const struct metric *m = &M[i];

        if (m->is_null) {
            printf("%-34s %14s %14s %14s  %-6s %s\n", m->name, "pending", "-", "-",
                   m->unit, m->goal);
            continue;
        }
        if (m->n == 0)
            continue;
        printf("%-34s %14.6g %14.6g %14.6g  %-6s %s%s\n", m->name, median(m), vmin(m),
               vmax(m), m->unit, m->goal,
               !m->goal_val ? "" :
               (m->lower_is_better ? median(m) <= m->goal_val : median(m) >= m->goal_val)
               ? "  (met)" : "  (NOT met)");
    }
    printf("\ntracker alternatives (%s mappings, 8 (emulator, domain) sets):\n",
           small ? "200k" : "10M");
    printf("  %-14s %-40s %9s %9s %9s %10s\n", "layout", "structure", "add ns",
           "test ns", "del ns", "B/mapping");
    for (int l = 0; l < 2; l++)
        for (int i = 0; i < IMPL_N; i++)
            if (cmp_have[l][i])
                printf("  %-14s %-40s %9.1f %9.1f %9.1f %10.2f\n", layout_name[l],
                       impl_name[i], cmp_out[l][i].ns_add, cmp_out[l][i].ns_test,
                       cmp_out[l][i].ns_del, cmp_out[l][i].bpm);
            else
                printf("  %-14s %-40s (not available)\n", layout_name[l], impl_name[i]);
}

static void
json_num(FILE *f, double v)
{
    if (v == (double)(int64_t)v && v < 1e15 && v > -1e15)
        fprintf(f, "%" PRId64, (int64_t)v);
    else
        fprintf(f, "%.6g", v);
}

static int
write_json(const char *path, const char *only)
{
    FILE *f = fopen(path, "w");
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    if (f == NULL)
        return -errno;
    fprintf(f, "{\n  \"schema\": \"iomapd-bench/1\",\n  \"size\": \"%s\",\n"
            "  \"repeats\": %d,\n  \"cpus\": %ld,\n  \"only\": %s%s%s,\n",
            small ? "small" : "full", reps, ncpu, only ? "\"" : "",
            only ? only : "null", only ? "\"" : "");
    /* The headline fields: the median of the repeats (null if not run). */
    for (int i = 0; i < M_COUNT; i++) {
        fprintf(f, "  \"%s\": ", M[i].name);
        if (M[i].is_null || M[i].n == 0)
            fprintf(f, "null");
        else
            json_num(f, median(&M[i]));
        fprintf(f, ",\n");
    }
    fprintf(f, "  \"detail\": {\n");
    for (int i = 0, first = 1; i < M_COUNT; i++) {
        if (M[i].n == 0)
            continue;
        fprintf(f, "%s    \"%s\": {\"unit\": \"%s\", \"goal\": \"%s\", \"median\": ",
                first ? "" : ",\n", M[i].name, M[i].unit, M[i].goal);
        json_num(f, median(&M[i]));
        fprintf(f, ", \"min\": ");
        json_num(f, vmin(&M[i]));
        fprintf(f, ", \"max\": ");
        json_num(f, vmax(&M[i]));
        fprintf(f, ", \"runs\": [");
        for (int k = 0; k < M[i].n; k++) {
            fprintf(f, "%s", k ? ", " : "");
            json_num(f, M[i].v[k]);
        }
        fprintf(f, "]}");
        first = 0;
    }
    fprintf(f, "\n  },\n  \"tracker_compare\": [");
    for (int l = 0, first = 1; l < 2; l++)
        for (int i = 0; i < IMPL_N; i++) {
            if (!cmp_have[l][i])
                continue;
            fprintf(f, "%s\n    {\"layout\": \"%s\", \"structure\": \"%s\", "
                    "\"add_ns\": %.2f, \"test_ns\": %.2f, \"del_ns\": %.2f, "
                    "\"bytes_per_mapping\": %.3f}", first ? "" : ",", layout_name[l],
                    impl_name[i], cmp_out[l][i].ns_add, cmp_out[l][i].ns_test,
                    cmp_out[l][i].ns_del, cmp_out[l][i].bpm);
            first = 0;
        }
    fprintf(f, "\n  ]\n}\n");
    return fclose(f) == 0 ? 0 : -errno;
}

static void
usage(void)
{
    fprintf(stderr, "usage: iomap-bench [--small] [--reps N] [--out FILE] "
            "[--only ingest_seq|ingest_rand|balloon_1g|balloon_paced|memory|compare|api]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    const char *out = "bench/results.json", *only = NULL;
    static const struct {
        const char *name;
        void (*fn)(void);
    } W[] = {
        { "ingest_seq", bench_ingest_seq },
        { "ingest_rand", bench_ingest_rand },
        { "balloon_1g", bench_balloon_1g },
        { "balloon_paced", bench_balloon_paced },
        { "memory", bench_memory },
        { "compare", bench_compare },
        { "api", bench_api },
    };
    int rc, explicit_reps = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--small") == 0)
            small = 1;
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
            explicit_reps = 1;
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out = argv[++i];
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else
            usage();
    }
    if (small && !explicit_reps)
        reps = 2;
    if (reps < 1 || reps > MAX_REPS)
        usage();
    log_init("iomap-bench", LOG_LVL_ERR);
    printf("iomap-bench: %s size, %d repeats, %ld cpus\n", small ? "small" : "full",
           reps, sysconf(_SC_NPROCESSORS_ONLN));
    for (size_t i = 0; i < sizeof(W) / sizeof(W[0]); i++) {
        uint64_t t0;

        if (only && strcmp(only, W[i].name) != 0)
            continue;
        printf("running %s...\n", W[i].name);
        fflush(stdout);
        t0 = now_ns();
        W[i].fn();
        printf("  %s: %.1f s\n", W[i].name, (double)(now_ns() - t0) / 1e9);
    }
    print_table();
    rc = write_json(out, only);
    if (rc < 0) {
        fprintf(stderr, "iomap-bench: cannot write %s: %s\n", out, strerror(-rc));
        return 1;
    }
    printf("\nwrote %s\n", out);
    return 0;
}
