/* SPDX-License-Identifier: MIT */
/*
 * Seeded randomized test: many operations (maps, unmaps, balloons of pages
 * and extents, gfn reuse, flush completions in and out of order, slow
 * emulators, bogus unmaps) on the in-process simulated host, checking after
 * every step:
 *   I1  the sim saw no release of a mapped or unflushed page;
 *   I3  an unmap of something never mapped is refused and changes nothing;
 *   I5  the daemon's books equal the sim's ground truth;
 * and at the end, after everything settled:
 *   I2  no page held, every reference accounted for.
 *
 * The second run also injects faults: emulators crash and come back,
 * stall (slow answers) or hang (never answer), device-TLB flushes stop
 * completing for a while, bursts overflow a small event ring (the daemon
 * resyncs with a dump), and the daemon itself is restarted from scratch.
 *
 * IOMAPD_TEST_SEED=N reruns one seed; IOMAPD_TEST_OPS=N sets the length.
 * The seed is printed first, and again with any failure.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/cunit_main.h"
#include "simhost/world.h"
#include "daemon/core/core_priv.h"
#include "util/log.h"

#define US 1000ull

static unsigned seed;
static unsigned long nops = 100000;

#define GUEST 1024u

static uint32_t
rnd(uint32_t n)
{
    return n ? (uint32_t)rand_r(&seed) % n : 0;
}

static void
fail_report(unsigned run_seed, unsigned long step, const char *what, const char *why)
{
    fprintf(stderr, "test_random: seed %u failed at step %lu: %s: %s\n",
            run_seed, step, what, why);
}

struct faults {
    uint64_t crashes, restarts, stalls, hangs, stuck_flushes, bursts, daemon_restarts;
};

static int
alive(struct world *w, int me)
{
    return !w->emus[me].dead;
}

/* One fault, chosen at random; returns 1 if one was injected. */
static void
inject(struct world *w, struct faults *f, uint32_t what)
{
    int me = (int)rnd(3);
    struct model_emu *m = &w->emus[me];

    if (what < 30) {                        /* crash, or come back */
        if (alive(w, me)) {
            if (world_crash_emu(w, me) == 0)
                f->crashes++;
        } else if (world_restart_emu(w, me) == 0) {
            m->misbehave = 0;
            f->restarts++;
        }
    } else if (what < 50) {                 /* stall: slow answers, or not */
        m->answer_delay_ns = m->answer_delay_ns >= 20000 * US ? 20 * US : 20000 * US;
        f->stalls++;
    } else if (what < 55) {                 /* hang until it is restarted */
        if (alive(w, me) && !(m->misbehave & ME_IGNORE_INVALIDATES)) {
            m->misbehave |= ME_IGNORE_INVALIDATES;
            f->hangs++;
        }
    } else if (what < 75) {                 /* device-TLB flushes stop, or resume */
        w->sim.flush_stuck = !w->sim.flush_stuck;
        f->stuck_flushes += w->sim.flush_stuck;
    } else if (what < 95) {                 /* a burst the small ring cannot hold */
        if (alive(w, me)) {
            for (int i = 0; i < 300; i++) {
                uint16_t domid = m->srv[rnd((uint32_t)m->nsrv)].target;

                world_map(w, me, domid, rnd(GUEST * 2), 1);
            }
            f->bursts++;
        }
    } else {                                /* the daemon dies and restarts */
        if (world_restart_daemon(w) == 0)
            f->daemon_restarts++;
    }
}

static int
one_run(unsigned run_seed, int out_of_order, int faults)
{
    struct faults fl = { 0 };
    static struct world w;
    char why[256] = "";
    unsigned long step;
    uint64_t released_before_end;

    seed = run_seed;
    printf("test_random: seed %u, %lu operations, flushes %s%s\n", run_seed, nops,
           out_of_order ? "completed out of order" : "timed",
           faults ? ", with faults" : "");
    /* Out-of-order runs complete flushes by hand; fault runs get a ring
     * small enough for bursts to overflow it. */
    if (world_init(&w, 4 * GUEST + 1024, out_of_order ? UINT64_MAX / 4 : 30 * US,
                   faults ? 256 : 16384) < 0)
        return 1;
    sim_domain_create(&w.sim, 1, GUEST);
    sim_domain_create(&w.sim, 2, GUEST);
    world_add_emu(&w, 0, 0, 0);          /* prompt */
    world_add_emu(&w, 0, 0, 200 * US);   /* slow */
    world_add_emu(&w, 0, 1, 20 * US);    /* legacy */
    world_emu_serves(&w, 0, 1);
    world_emu_serves(&w, 1, 1);
    world_emu_serves(&w, 1, 2);
    world_emu_serves(&w, 2, 2);

    for (step = 0; step < nops; step++) {
        int me = (int)rnd(3);
        struct model_emu *m = &w.emus[me];
        uint16_t domid = m->srv[rnd((uint32_t)m->nsrv)].target;
        uint64_t gfn = rnd(GUEST * 2);
        uint32_t op = rnd(100);

        if (faults && rnd(100) == 0) {
            inject(&w, &fl, rnd(100));
            op = 100;       /* nothing else this step */
        } else if (!alive(&w, me) && (op < 50 || (op >= 80 && op < 85))) {
            op = 100;       /* a dead emulator makes no hypercalls */
        }
        if (op == 100) {
            ;
        } else if (op < 35) {
            world_map(&w, me, domid, gfn, 1 + rnd(8));
        } else if (op < 50) {
            world_unmap(&w, me, domid, gfn, 1 + rnd(8));
        } else if (op < 58) {
            sim_decrease_reservation(&w.sim, domid, gfn, 0);
        } else if (op < 61) {
            unsigned order = 1 + rnd(4);

            sim_decrease_reservation(&w.sim, domid, gfn & ~((1ull << order) - 1), order);
        } else if (op < 70) {
            sim_populate(&w.sim, domid, gfn, 1 + rnd(16));   /* gfn reuse */
        } else if (op < 80) {
            if (out_of_order && w.sim.nflush)
                sim_complete_flush(&w.sim, w.sim.flushq[rnd(w.sim.nflush)].seq);
            else
                world_advance(&w, rnd(100) * US);
        } else if (op < 85) {
            /* I3: an unmap of a bfn never mapped through the map op. */
            int sidx = world_sim_idx(&w, me, domid);
            const struct sim_emu *se = &w.sim.emus[sidx];
            uint64_t bfn = (3ull << 36) | gfn;      /* a target slot never used */
            uint64_t live = se->live, refs = 0;

            for (uint64_t f = 0; f < w.sim.nr_pages; f++)
                refs += w.sim.pages[f].refs;
            if (sim_iommu_unmap(&w.sim, sidx, bfn, 1) != -ENOENT ||
                se->live != live) {
                fail_report(run_seed, step, "I3", "bogus unmap was not refused");
                CU_FAIL("I3: bogus unmap accepted");
                break;
            }
            for (uint64_t f = 0; f < w.sim.nr_pages; f++)
                refs -= w.sim.pages[f].refs;
            CU_ASSERT_EQUAL(refs, 0);
        } else {
            world_advance(&w, rnd(300) * US);
        }
        world_settle(&w);
        if (sim_violations(&w.sim)) {
            fail_report(run_seed, step, "I1/I2", w.sim.last_violation);
            CU_FAIL("sim found a violation");
            break;
        }
        if (world_check_views(&w, why, sizeof(why))) {
            fail_report(run_seed, step, "I5", why);
            CU_FAIL("daemon view differs from the ground truth");
            break;
        }
        if ((step & 1023) == 0 && sim_check(&w.sim) < 0) {
            fail_report(run_seed, step, "refcounts", w.sim.last_violation);
            CU_FAIL("reference counts inconsistent");
            break;
        }
    }
    /* Let everything finish: answers, flushes (all of them, if by hand). */
    released_before_end = w.core->st.pages_released;
    if (faults) {
        /* Faults heal: flushes resume, hung emulators are restarted, and
         * the policy's timeouts get the virtual time they need. */
        w.sim.flush_stuck = 0;
        for (int i = 0; i < 3; i++) {
            w.emus[i].answer_delay_ns = 20 * US;
            if (w.emus[i].misbehave) {
                world_crash_emu(&w, i);
                world_settle(&w);
                world_restart_emu(&w, i);
                w.emus[i].misbehave = 0;
            }
        }
        for (int i = 0; i < 60; i++)
            world_advance(&w, 500000 * US);
    }
    for (int i = 0; i < 50; i++) {
        while (out_of_order && w.sim.nflush)
            sim_complete_flush(&w.sim, w.sim.flushq[w.sim.nflush - 1].seq);
        world_advance(&w, 1000 * US);
    }
    if (sim_check_quiescent(&w.sim) < 0) {
        fail_report(run_seed, step, "I2", w.sim.last_violation);
        CU_FAIL("I2: not everything was released");
    }
    CU_ASSERT_EQUAL(sim_violations(&w.sim), 0);
    /* Ground truth: every page the shim held was released by a command. */
    CU_ASSERT_EQUAL(w.sim.st.pages_released, w.sim.st.pages_held);
    if (!faults) {
        /* Without restarts the daemon's own counters agree. */
        CU_ASSERT_EQUAL(w.core->st.pages_released, w.core->st.pages_removed);
        CU_ASSERT_EQUAL(w.core->st.unmatched_unmaps, 0);
    }
    printf("test_random: seed %u: %" PRIu64 " maps, %" PRIu64 " unmaps, %" PRIu64
           " pages removed while mapped, %" PRIu64 " released (%" PRIu64
           " at the end), %" PRIu64 " refused bogus unmaps, %" PRIu64 " flushes\n",
           run_seed, w.sim.st.maps, w.sim.st.unmaps, w.sim.st.pages_held,
           w.sim.st.pages_released, w.core->st.pages_released - released_before_end,
           w.sim.st.unmaps_refused, w.sim.st.flushes_done);
    if (faults)
        printf("test_random: seed %u faults: %" PRIu64 " emulator crashes, %" PRIu64
               " restarts, %" PRIu64 " stalls, %" PRIu64 " hangs, %" PRIu64
               " flush outages, %" PRIu64 " bursts (%" PRIu64 " resyncs, %" PRIu64
               " events lost), %" PRIu64 " daemon restarts\n", run_seed, fl.crashes,
               fl.restarts, fl.stalls, fl.hangs, fl.stuck_flushes, fl.bursts,
               w.core->st.resyncs, w.sim.st.events_lost, fl.daemon_restarts);
    world_fini(&w);
    return 0;
}

static unsigned fixed_seed = 20261125;
static unsigned fresh_seed;

static void
test_fixed_seed(void)
{
    one_run(fixed_seed, 0, 0);
}

static void
test_fresh_seed_out_of_order(void)
{
    one_run(fresh_seed, 1, 0);
}

static void
test_faults(void)
{
    one_run(fresh_seed + 1, 0, 1);
}

int
main(void)
{
    static const struct test_case tests[] = {
        { "fixed seed, timed flushes", test_fixed_seed },
        { "fresh seed, flushes out of order", test_fresh_seed_out_of_order },
        { "fresh seed, with faults injected", test_faults },
        { NULL, NULL },
    };
    const char *s = getenv("IOMAPD_TEST_SEED"), *n = getenv("IOMAPD_TEST_OPS");

    log_init("test_random", LOG_LVL_ERR);
    fresh_seed = (unsigned)time(NULL);
    if (s)
        fixed_seed = fresh_seed = (unsigned)strtoul(s, NULL, 0);
    if (n)
        nops = strtoul(n, NULL, 0);
    return run_tests("random", tests);
}
