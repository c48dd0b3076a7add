/* SPDX-License-Identifier: MIT */
/*
 * iomap-demo: a balloon storm on the simulated hypervisor.
 *
 * Two guests of 512 MiB, three emulators (a QEMU per guest and a slow
 * vGPU mediator serving both), 384 MiB given back in 2 MiB extents and
 * single pages while the emulators keep using DMA buffers, part of which
 * lie in the ballooned range.  Device-TLB flushes take 200 us; the
 * mediator answers invalidates after 8 ms.  Then the guests balloon up
 * again (new frames at old gfns) while some old frames are still held.
 *
 * The same trace is replayed under Xen 4.17's global mapcache invalidate
 * (daemon/baseline.c).  The last line of output is one JSON object.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "simhost/world.h"
#include "simhost/baseline.h"
#include "util/log.h"

#define MS        UINT64_C(1000000)
#define US        UINT64_C(1000)
#define GUEST_PAGES  131072u    /* 512 MiB */
#define BALLOON_BASE 0x6000u
#define BALLOON_PAGES 49152u    /* 192 MiB per guest */
#define EXTENT    512u          /* 2 MiB */

struct ws {                     /* an emulator's working set */
    int      emu;
    uint16_t domid;
    uint64_t gfn;
    uint32_t nr;
};

static const struct ws working_sets[] = {
    { 0, 1, 0x8000, 16384 },    /* QEMU d1: DMA buffers in the balloon range */
    { 0, 1, 0x20000, 4096 },    /* QEMU d1: buffers outside it */
    { 1, 2, 0x9000, 8192 },
    { 1, 2, 0x1a000, 4096 },
    { 2, 1, 0x11000, 8192 },    /* mediator: straddles the range's end */
    { 2, 2, 0x11800, 8192 },
};
#define NWS (sizeof(working_sets) / sizeof(working_sets[0]))

static struct trace trace;

static void
use_all(struct world *w, uint32_t step)
{
    for (size_t i = 0; i < NWS; i++) {
        const struct ws *s = &working_sets[i];
        /* Each step touches a rotating quarter of the working set. */
        uint32_t q = s->nr / 4, off = (step % 4) * q;

        world_map(w, s->emu, s->domid, s->gfn + off, q);
        trace_add(&trace, TR_USE, w->now, (uint8_t)s->emu, s->domid, s->gfn + off, q);
    }
}

static void
balloon(struct world *w, uint16_t domid, uint64_t gfn, unsigned order)
{
    sim_decrease_reservation(&w->sim, domid, gfn, order);
    trace_add(&trace, TR_BALLOON, w->now, 0, domid, gfn, 1u << order);
}

static uint64_t
percentile_ns(const struct core_stats *st, double p)
{
    uint64_t want = (uint64_t)(p * (double)st->lat_count), seen = 0;

    for (int b = 0; b < 64; b++) {
        seen += st->lat_hist[b];
        if (seen > want || (seen == st->lat_count && seen))
            return b >= 63 ? UINT64_MAX : (UINT64_C(2) << b);  /* bucket top */
    }
    return 0;
}

int
main(int argc, char **argv)
{
    static struct world w;
    struct baseline_emu bemus[3];
    struct baseline_result base;
    struct timespec t0, t1;
    uint64_t needless = 0, violations, ballooned = 0;
    struct core_stats st;
    char why[256] = "";
    int quiet = 0;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
            quiet = 1;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: iomap-demo [--quiet]\n"
                   "A balloon storm on the simulated hypervisor (2 guests of 512 MiB, 3\n"
                   "emulators, 384 MiB given back), handled by iomapd's books and replayed\n"
                   "under Xen's global invalidate.  Prints a table, then one JSON object\n"
                   "as its last line.  --quiet: no warnings.  See iomap-demo(1).\n");
            return 0;
        } else {
            fprintf(stderr, "iomap-demo: unknown argument '%s' (see iomap-demo --help)\n",
                    argv[i]);
            return 2;
        }
    }

    log_init("iomap-demo", quiet ? LOG_LVL_ERR : LOG_LVL_WARN);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = world_init(&w, 2 * GUEST_PAGES + 65536, 200 * US, 65536);
    if (rc < 0)
        fatalx("cannot set up the simulated host: %d", rc);
    if (sim_domain_create(&w.sim, 1, GUEST_PAGES) < 0 ||
        sim_domain_create(&w.sim, 2, GUEST_PAGES) < 0)
        fatalx("cannot create the guests");
    /*
     * dom0 runs a QEMU per guest and a vGPU mediator with an ioreq server
     * for each guest.  Xen numbers ioreq servers per guest: both QEMUs
     * have id 0, the mediator's servers id 1.
     */
    if (world_add_emu(&w, 0, 0, 50 * US) != 0 ||
        world_add_emu(&w, 0, 0, 50 * US) != 1 ||
        world_add_emu(&w, 0, 0, 8 * MS) != 2 ||
        world_emu_serves(&w, 0, 1) < 0 || world_emu_serves(&w, 1, 2) < 0 ||
        world_emu_serves(&w, 2, 1) < 0 || world_emu_serves(&w, 2, 2) < 0)
        fatalx("cannot create the emulators");
    for (int i = 0; i < 3; i++) {
        bemus[i].ntargets = w.emus[i].nsrv;
        for (int s = 0; s < w.emus[i].nsrv; s++)
            bemus[i].targets[s] = w.emus[i].srv[s].target;
        bemus[i].answer_delay_ns = w.emus[i].answer_delay_ns;
    }

    /* Warm up: every emulator maps its whole working set. */
    for (uint32_t s = 0; s < 4; s++)
        use_all(&w, s);
    world_settle(&w);

    /* The storm: one 2 MiB chunk per guest every 20 ms. */
    for (uint32_t k = 0; k < BALLOON_PAGES / EXTENT; k++) {
        for (uint16_t domid = 1; domid <= 2; domid++) {
            uint64_t gfn = BALLOON_BASE + (uint64_t)k * EXTENT;

            /* One hypercall: an order-9 extent, or (every 8th chunk) 512
             * order-0 extents as Linux's balloon driver sends them. */
            if (k % 8 == 7) {
                for (uint32_t p = 0; p < EXTENT; p++)
                    balloon(&w, domid, gfn + p, 0);
            } else {
                balloon(&w, domid, gfn, 9);
            }
            trace_add(&trace, TR_BALLOON_END, w.now, 0, domid, 0, 0);
            ballooned += EXTENT;
        }
        world_settle(&w);
        world_advance(&w, 10 * MS);
        use_all(&w, k);
        world_advance(&w, 10 * MS);
        if (world_check_views(&w, why, sizeof(why)) && !quiet)
            fprintf(stderr, "view mismatch: %s\n", why);
    }

    /* Balloon up 32 MiB of the range: new frames at gfns whose old frames
     * the slow mediator may still hold; the emulators map them again. */
    for (uint16_t domid = 1; domid <= 2; domid++)
        sim_populate(&w.sim, domid, 0x11000 - 8192, 8192);
    use_all(&w, 0);
    use_all(&w, 1);
    world_advance(&w, 50 * MS);
    world_check_views(&w, why, sizeof(why));

    /* I2: everything removed is released, nothing is left held. */
    if (sim_check_quiescent(&w.sim) < 0 && !quiet)
        fprintf(stderr, "not quiescent: %s\n", w.sim.last_violation);
    clock_gettime(CLOCK_MONOTONIC, &t1);

    for (int i = 0; i < w.nemus; i++)
        needless += w.emus[i].needless;
    violations = sim_violations(&w.sim) + w.i5_mismatches;
    st = *core_stats(w.core);
    if (baseline_replay(&trace, bemus, 3, &base) < 0)
        fatalx("baseline replay ran out of memory");

    printf("iomapd demo: 2 guests x 512 MiB, 3 emulators (one answers in 8 ms), "
           "flushes of 200 us\n");
    printf("  ballooned          %" PRIu64 " pages (%" PRIu64 " MiB) in %" PRIu64
           " decrease_reservation calls\n", ballooned, ballooned / 256,
           base.hypercalls);
    printf("  held for emulators %" PRIu64 " pages, released %" PRIu64
           " (removed -> released p50 <= %.2f ms, p99 <= %.2f ms, max %.2f ms)\n",
           st.pages_removed, st.pages_released,
           (double)percentile_ns(&st, 0.50) / 1e6,
           (double)percentile_ns(&st, 0.99) / 1e6,
           (double)st.lat_max_ns / 1e6);
    printf("  took %.0f ms of simulated time, %.0f ms of wall time\n",
           (double)w.now / 1e6,
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    printf("\n  %-34s %14s %18s\n", "", "iomapd", "global invalidate");
    printf("  %-34s %14" PRIu64 " %18" PRIu64 "\n", "invalidate requests sent",
           st.invalidates_sent + st.global_invalidates_sent, base.invalidates_sent);
    printf("  %-34s %14" PRIu64 " %18" PRIu64 "\n", "pages unmapped needlessly",
           needless, base.needless_unmaps);
    printf("  %-34s %14s %18" PRIu64 "\n", "pages mapped again", "-", base.remaps);
    printf("  %-34s %14s %18.1f\n", "guest vCPU blocked (ms)", "0",
           (double)base.vcpu_blocked_ns / 1e6);
    printf("  %-34s %14" PRIu64 " %18s\n", "invariant violations", violations, "-");
    if (violations)
        printf("  last violation: %s\n", why[0] ? why : w.sim.last_violation);
    printf("\n");
    printf("{\"pages_removed\":%" PRIu64 ",\"pages_released\":%" PRIu64
           ",\"invalidates_sent\":%" PRIu64 ",\"pages_unmapped_needlessly\":%" PRIu64
           ",\"invariant_violations\":%" PRIu64 ",\"guest_pages_ballooned\":%" PRIu64
           ",\"release_latency_max_us\":%" PRIu64
           ",\"baseline_global_flush\":{\"invalidates_sent\":%" PRIu64
           ",\"pages_unmapped_needlessly\":%" PRIu64 ",\"pages_remapped\":%" PRIu64
           ",\"vcpu_blocked_ms\":%" PRIu64 "}}\n",
           st.pages_removed, st.pages_released,
           st.invalidates_sent + st.global_invalidates_sent, needless,
           violations, ballooned, st.lat_max_ns / 1000,
           base.invalidates_sent, base.needless_unmaps, base.remaps,
           base.vcpu_blocked_ns / MS);
    trace_free(&trace);
    world_fini(&w);
    return violations || st.pages_released != st.pages_removed;
}
