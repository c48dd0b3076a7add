/* SPDX-License-Identifier: MIT */
/*
 * The life of removed pages, step by step, on the in-process simulated
 * host: what is sent to whom, and that nothing is released early.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cunit_main.h"
#include "simhost/world.h"
#include "daemon/core/core_priv.h"
#include "util/log.h"

#define US 1000ull
#define MS 1000000ull

static struct world w;

/* Two guests; emulator 0 serves d1, 1 serves d2, 2 (legacy) serves d1. */
static void
setup(uint64_t flush_latency, uint64_t answer_delay)
{
    CU_ASSERT_EQUAL_FATAL(world_init(&w, 8192, flush_latency, 4096), 0);
    CU_ASSERT_EQUAL_FATAL(sim_domain_create(&w.sim, 1, 2048), 0);
    CU_ASSERT_EQUAL_FATAL(sim_domain_create(&w.sim, 2, 2048), 0);
    CU_ASSERT_EQUAL_FATAL(world_add_emu(&w, 0, 0, answer_delay), 0);
    CU_ASSERT_EQUAL_FATAL(world_add_emu(&w, 0, 0, answer_delay), 1);
    world_emu_serves(&w, 0, 1);
    world_emu_serves(&w, 1, 2);
}

static void
teardown(void)
{
    world_fini(&w);
}

static struct emu *
demu(int me)
{
    struct core_emu_id id = world_emu_id(&w, me, w.emus[me].srv[0].target);

    return emu_get(w.core, &id, 0);
}

static void
test_one_page(void)
{
    char why[256];

    setup(200 * US, 50 * US);
    CU_ASSERT_EQUAL(world_map(&w, 0, 1, 100, 1), 1);
    CU_ASSERT_EQUAL(world_map(&w, 1, 2, 100, 1), 1);   /* same gfn, other guest */
    world_settle(&w);
    CU_ASSERT_EQUAL(core_mappings(w.core), 2);

    CU_ASSERT_EQUAL(sim_decrease_reservation(&w.sim, 1, 100, 0), 1);
    world_settle(&w);
    /* INVALIDATING: exactly the emulator that maps it was asked. */
    CU_ASSERT_EQUAL(w.core->n_invalidating, 1);
    CU_ASSERT_EQUAL(demu(0)->invalidates_sent, 1);
    CU_ASSERT_EQUAL(demu(1)->invalidates_sent, 0);
    CU_ASSERT_EQUAL(sim_held_pages(&w.sim), 1);

    world_advance(&w, 60 * US);     /* the answer (50 us) comes, flush queued */
    CU_ASSERT_EQUAL(w.core->n_invalidating, 0);
    CU_ASSERT_EQUAL(w.core->n_flushing, 1);
    CU_ASSERT_EQUAL(sim_held_pages(&w.sim), 1);     /* not before the flush */
    CU_ASSERT_EQUAL(w.core->st.pages_released, 0);

    world_advance(&w, 300 * US);
    CU_ASSERT_EQUAL(w.core->n_flushing, 0);
    CU_ASSERT_EQUAL(w.core->st.pages_released, 1);
    CU_ASSERT_EQUAL(sim_held_pages(&w.sim), 0);
    CU_ASSERT_EQUAL(sim_violations(&w.sim), 0);
    CU_ASSERT_EQUAL(world_check_views(&w, why, sizeof(why)), 0);
    CU_ASSERT_EQUAL(sim_check_quiescent(&w.sim), 0);
    /* The other guest's mapping of gfn 100 was not touched. */
    CU_ASSERT_TRUE(world_is_mapped(&w, 1, 2, 100));
    CU_ASSERT_EQUAL(w.emus[0].needless + w.emus[1].needless, 0);
    teardown();
}

static void
test_unmapped_page_is_not_held(void)
{
    setup(200 * US, 50 * US);
    world_map(&w, 0, 1, 100, 1);
    world_settle(&w);
    CU_ASSERT_EQUAL(sim_decrease_reservation(&w.sim, 1, 200, 0), 1);
    world_settle(&w);
    CU_ASSERT_EQUAL(w.core->st.pages_removed, 0);       /* nobody held gfn 200 */
    CU_ASSERT_EQUAL(demu(0)->invalidates_sent, 0);
    CU_ASSERT_EQUAL(sim_held_pages(&w.sim), 0);
    teardown();
}

static void
test_extent_coalesced(void)
{
    setup(100 * US, 10 * US);
    CU_ASSERT_EQUAL(world_map(&w, 0, 1, 512, 512), 512);
    world_settle(&w);
    CU_ASSERT_EQUAL(sim_decrease_reservation(&w.sim, 1, 512, 9), 512);
    world_settle(&w);
    /* One extent of 512 contiguous gfns: one ioreq range. */
    CU_ASSERT_EQUAL(demu(0)->invalidates_sent, 1);
    CU_ASSERT_EQUAL(w.core->n_invalidating, 512);
    world_advance(&w, 1 * MS);
    CU_ASSERT_EQUAL(w.core->st.pages_released, 512);
    CU_ASSERT_EQUAL(sim_check_quiescent(&w.sim), 0);
    CU_ASSERT_EQUAL(sim_violations(&w.sim), 0);
    teardown();
}

static void
test_legacy_gets_global(void)
{
    setup(100 * US, 10 * US);
    CU_ASSERT_EQUAL(world_add_emu(&w, 0, 1, 10 * US), 2);
    world_emu_serves(&w, 2, 1);
    world_map(&w, 2, 1, 10, 4);
    world_map(&w, 2, 1, 1000, 4);       /* not removed: dropped anyway */
    world_settle(&w);
    sim_decrease_reservation(&w.sim, 1, 10, 0);
    world_settle(&w);
    CU_ASSERT_EQUAL(w.core->st.global_invalidates_sent, 1);
    CU_ASSERT_EQUAL(w.core->st.invalidates_sent, 0);
    world_advance(&w, 1 * MS);
    CU_ASSERT_EQUAL(w.core->st.pages_released, 1);
    CU_ASSERT_FALSE(world_is_mapped(&w, 2, 1, 1000));
    CU_ASSERT_EQUAL(w.emus[2].needless, 7);     /* the cost of the old way */
    CU_ASSERT_EQUAL(sim_violations(&w.sim), 0);
    teardown();
}

static void
test_answer_without_unmap_is_forced(void)
{
    setup(100 * US, 10 * US);
    w.emus[0].misbehave = ME_ANSWER_NO_UNMAP;
    world_map(&w, 0, 1, 40, 2);
    world_settle(&w);
    sim_decrease_reservation(&w.sim, 1, 40, 1);
    world_settle(&w);
    world_advance(&w, 20 * US);
    /* It said done; the shim said it still maps them: force-unmapped. */
    CU_ASSERT_EQUAL(demu(0)->forced_unmaps, 2);
    CU_ASSERT_EQUAL(w.sim.st.forced_unmaps, 2);
    world_advance(&w, 1 * MS);
    CU_ASSERT_EQUAL(w.core->st.pages_released, 2);
    CU_ASSERT_EQUAL(sim_check_quiescent(&w.sim), 0);
    CU_ASSERT_EQUAL(sim_violations(&w.sim), 0);
    teardown();
}

static void
test_gfn_repopulated_while_held(void)
{
    char why[256];
    uint64_t old_mfn, new_mfn;

    setup(100 * US, 5 * MS);        /* slow answers: the old frame stays held */
    world_map(&w, 0, 1, 77, 1);
    world_map(&w, 1, 2, 5, 1);
    world_settle(&w);
    old_mfn = sim_domain(&w.sim, 1)->p2m[77];
    sim_decrease_reservation(&w.sim, 1, 77, 0);
    world_settle(&w);
    CU_ASSERT_EQUAL(sim_populate(&w.sim, 1, 77, 1), 1);
    new_mfn = sim_domain(&w.sim, 1)->p2m[77];
    CU_ASSERT_NOT_EQUAL(old_mfn, new_mfn);
    /* Another emulator serving d1 maps the new frame at the same gfn. */
    CU_ASSERT_EQUAL(world_add_emu(&w, 0, 0, 10 * US), 2);
    world_emu_serves(&w, 2, 1);
    CU_ASSERT_EQUAL(world_map(&w, 2, 1, 77, 1), 1);
    world_settle(&w);
    CU_ASSERT_EQUAL(world_check_views(&w, why, sizeof(why)), 0);
    CU_ASSERT_EQUAL(sim_held_pages(&w.sim), 1);
    world_advance(&w, 10 * MS);
    CU_ASSERT_EQUAL(w.core->st.pages_released, 1);
    /* The new frame's mapping is untouched and still tracked. */
    CU_ASSERT_TRUE(world_is_mapped(&w, 2, 1, 77));
    CU_ASSERT_EQUAL(world_check_views(&w, why, sizeof(why)), 0);
    CU_ASSERT_EQUAL(sim_held_pages(&w.sim), 0);
    CU_ASSERT_EQUAL(sim_violations(&w.sim), 0);
    teardown();
}

static void
test_unmapped_but_unflushed_page(void)
{
    /* Unmapped by the emulator, then removed before the flush completed:
     * XSA-346's window.  The shim holds it; iomapd waits for the flush. */
    setup(1 * MS, 10 * US);
    world_map(&w, 0, 1, 300, 1);
    world_settle(&w);
    world_unmap(&w, 0, 1, 300, 1);      /* queues a flush of 1 ms */
    world_settle(&w);
    sim_decrease_reservation(&w.sim, 1, 300, 0);
    world_settle(&w);
    CU_ASSERT_EQUAL(sim_held_pages(&w.sim), 1);
    CU_ASSERT_EQUAL(w.core->n_flushing, 1);
    world_advance(&w, 500 * US);
    CU_ASSERT_EQUAL(sim_held_pages(&w.sim), 1);
    world_advance(&w, 600 * US);
    CU_ASSERT_EQUAL(sim_held_pages(&w.sim), 0);
    CU_ASSERT_EQUAL(sim_violations(&w.sim), 0);
    teardown();
}

static void
test_daemon_restart_resyncs(void)
{
    char why[256];

    setup(100 * US, 2 * MS);
    world_map(&w, 0, 1, 0, 64);
    world_map(&w, 1, 2, 0, 64);
    world_settle(&w);
    sim_decrease_reservation(&w.sim, 1, 0, 5);      /* 32 pages in flight */
    world_advance(&w, 100 * US);
    CU_ASSERT_EQUAL(w.core->n_invalidating, 32);
    CU_ASSERT_EQUAL(world_restart_daemon(&w), 0);
    CU_ASSERT_EQUAL(w.core->resync, RS_NONE);
    CU_ASSERT_EQUAL(world_check_views(&w, why, sizeof(why)), 0);
    CU_ASSERT_EQUAL(w.core->n_invalidating, 32);        /* rebuilt from the dump */
    world_advance(&w, 10 * MS);
    CU_ASSERT_EQUAL(sim_check_quiescent(&w.sim), 0);
    CU_ASSERT_EQUAL(sim_violations(&w.sim), 0);
    CU_ASSERT_EQUAL(w.sim.st.pages_released, 32);   /* nothing twice */
    teardown();
}

int
main(void)
{
    static const struct test_case tests[] = {
        { "one page: invalidate, flush, release", test_one_page },
        { "a page nobody maps is not held", test_unmapped_page_is_not_held },
        { "an extent is one ioreq range", test_extent_coalesced },
        { "legacy emulator gets the global invalidate", test_legacy_gets_global },
        { "answer without unmap is force-unmapped", test_answer_without_unmap_is_forced },
        { "gfn repopulated while the old frame is held", test_gfn_repopulated_while_held },
        { "unmapped but unflushed page is held", test_unmapped_but_unflushed_page },
        { "daemon restart resyncs from a dump", test_daemon_restart_resyncs },
        { NULL, NULL },
    };

    log_init("test_lifecycle", LOG_LVL_ERR);
    return run_tests("lifecycle", tests);
}
