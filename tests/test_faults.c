/* SPDX-License-Identifier: MIT */
/*
 * Fault and hostile-input tests on the simulated hypervisor (issue 4).
 *
 * Every test drives a struct world (sim + the real daemon code + model
 * emulators) into a fault and judges the outcome from the sim's ground
 * truth: sim_violations() (I1/I3 breaches the sim saw), sim_check() and
 * sim_check_quiescent() (I2: every reference accounted for, nothing held),
 * and world_check_views() (I5: the daemon's books equal the truth).
 *
 * Exit status: tests/cunit_main.h (the number of failures, capped).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cunit_main.h"

#include "simhost/world.h"
#include "daemon/core/core_priv.h"
#include "util/log.h"
#include "policy/policy.h"

#define US UINT64_C(1000)
#define MS UINT64_C(1000000)
#define S  UINT64_C(1000000000)

static struct world W;
static char why[512];

/* Figures the tests report (docs/RELIABILITY.md quotes them). */
static uint64_t fig_events, fig_pages, fig_runs;

static void
report(const char *name)
{
    fig_events += W.core->st.events;
    fig_pages += W.sim.st.pages_held;
    fig_runs++;
    if (getenv("FAULTS_VERBOSE"))
        fprintf(stderr, "  %-28s events %llu, held %llu, released %llu, forced %llu, "
                "resyncs %llu, bad %llu\n", name,
                (unsigned long long)W.core->st.events,
                (unsigned long long)W.sim.st.pages_held,
                (unsigned long long)W.sim.st.pages_released,
                (unsigned long long)W.sim.st.forced_unmaps,
                (unsigned long long)W.core->st.resyncs,
                (unsigned long long)W.core->st.bad_events);
}

/* No I1/I3 violation, consistent frames, and the daemon sees the truth. */
#define CHECK_SAFE() do {                                                   \
        CU_ASSERT_EQUAL(sim_violations(&W.sim), 0);                         \
        if (sim_violations(&W.sim))                                         \
            fprintf(stderr, "\n  violation: %s\n", W.sim.last_violation);   \
        CU_ASSERT_EQUAL(sim_check(&W.sim), 0);                              \
        why[0] = 0;                                                         \
        CU_ASSERT_EQUAL(world_check_views(&W, why, sizeof(why)), 0);        \
        if (why[0])                                                         \
            fprintf(stderr, "\n  I5: %s\n", why);                           \
    } while (0)

/* ... and nothing held, nothing leaked. */
#define CHECK_QUIESCENT() do {                                              \
        CHECK_SAFE();                                                       \
        CU_ASSERT_EQUAL(sim_check_quiescent(&W.sim), 0);                    \
        if (sim_held_pages(&W.sim))                                         \
            fprintf(stderr, "\n  held: %llu (%s)\n",                        \
                    (unsigned long long)sim_held_pages(&W.sim),             \
                    W.sim.last_violation);                                  \
        CU_ASSERT_EQUAL(W.core->n_invalidating + W.core->n_flushing, 0);            \
    } while (0)

static int
setup(uint32_t ev_slots, uint64_t flush_latency)
{
    int rc = world_init(&W, 1u << 16, flush_latency, ev_slots);

    if (rc < 0)
        return rc;
    if (sim_domain_create(&W.sim, 1, 4096) < 0 ||
        sim_domain_create(&W.sim, 2, 4096) < 0)
        return -1;
    return 0;
}

/* A model emulator in emu_domid with an ioreq server for t1 (and t2). */
static int
add_emu(uint16_t emu_domid, uint64_t delay, uint16_t t1, uint16_t t2)
{
    int me = world_add_emu(&W, emu_domid, 0, delay);

    if (me < 0)
        return me;
    world_emu_serves(&W, me, t1);
    if (t2)
        world_emu_serves(&W, me, t2);
    return me;
}

static uint64_t
emu_live(int me)
{
    return world_live(&W, me);
}

/* Balloon out [gfn, gfn + nr) of domid in single pages. */
static void
balloon(uint16_t domid, uint64_t gfn, uint32_t nr)
{
    for (uint32_t i = 0; i < nr; i++)
        sim_decrease_reservation(&W.sim, domid, gfn + i, 0);
}

/* ---- emulator crashes with mapped pages and pending invalidates --------- */

static void
test_emu_crash(void)
{
    int a, b;
    uint64_t released0;

    CU_ASSERT_FATAL(setup(4096, 50 * US) == 0);
    a = add_emu(0, 2 * MS, 1, 0);        /* slow: invalidates pending */
    b = add_emu(0, 10 * US, 1, 0);
    CU_ASSERT_FATAL(a >= 0 && b >= 0);
    CU_ASSERT_EQUAL(world_map(&W, a, 1, 0, 512), 512);
    CU_ASSERT_EQUAL(world_map(&W, b, 1, 256, 512), 512);
    world_settle(&W);
    balloon(1, 128, 256);                   /* a alone, a and b */
    world_settle(&W);
    world_advance(&W, 100 * US);            /* b answered, a has not */
    CU_ASSERT(W.core->n_invalidating > 0);
    CU_ASSERT_EQUAL(sim_held_pages(&W.sim), 256);
    CHECK_SAFE();

    released0 = W.sim.st.pages_released;
    sim_emu_crash(&W.sim, world_sim_idx(&W, a, 1));
    world_settle(&W);
    /* Everything a had mapped is gone, but no page before its flush. */
    CU_ASSERT_EQUAL(emu_live(a), 0);
    CU_ASSERT_EQUAL(W.sim.st.pages_released, released0);
    CU_ASSERT(sim_held_pages(&W.sim) > 0);
    CHECK_SAFE();
    world_advance(&W, 10 * MS);
    CHECK_QUIESCENT();
    /* b keeps its mappings outside the ballooned range. */
    CU_ASSERT_EQUAL(emu_live(b), 512 - 128);
    report("emu-crash");
    world_fini(&W);
}

/* An emulator that answers but keeps its mappings is force-unmapped. */
static void
test_emu_answer_no_unmap(void)
{
    int a;

    CU_ASSERT_FATAL(setup(4096, 50 * US) == 0);
    a = add_emu(0, 10 * US, 1, 0);
    W.emus[a].misbehave = ME_ANSWER_NO_UNMAP;
    CU_ASSERT_EQUAL(world_map(&W, a, 1, 0, 256), 256);
    world_settle(&W);
    balloon(1, 0, 64);
    world_advance(&W, 5 * MS);
    CU_ASSERT(W.core->emus[0] != NULL);
    CU_ASSERT_EQUAL(emu_live(a), 256 - 64);
    CU_ASSERT(W.sim.st.forced_unmaps >= 64);
    CHECK_QUIESCENT();
    report("emu-answer-no-unmap");
    world_fini(&W);
}

/* ---- an emulator never answers: policy timeouts -------------------------- */

static void
test_emu_never_answers(void)
{
    int a, b;
    struct policy *p = policy_default();

    CU_ASSERT_FATAL(setup(4096, 50 * US) == 0);
    CU_ASSERT_FATAL(p != NULL);
    p->inval.timeout_ns = 100 * MS;
    p->inval.nsteps = 2;
    p->inval.steps[0] = POLICY_ACT_LOG;
    p->inval.steps[1] = POLICY_ACT_FORCE_UNMAP;
    core_set_policy(W.core, p);
    a = add_emu(0, 10 * US, 1, 0);
    b = add_emu(0, 10 * US, 2, 0);
    W.emus[a].misbehave = ME_IGNORE_INVALIDATES;
    CU_ASSERT_EQUAL(world_map(&W, a, 1, 0, 256), 256);
    CU_ASSERT_EQUAL(world_map(&W, b, 2, 0, 256), 256);
    world_settle(&W);
    balloon(1, 0, 128);
    balloon(2, 0, 128);
    world_advance(&W, 1 * MS);
    /* The well-behaved emulator's pages are not held up by the other. */
    CU_ASSERT_EQUAL(sim_held_pages(&W.sim), 128);
    CU_ASSERT_EQUAL(emu_live(a), 256);
    world_advance(&W, 50 * MS);
    CU_ASSERT_EQUAL(sim_held_pages(&W.sim), 128);   /* not before the timeout */
    CU_ASSERT_EQUAL(W.core->st.timeouts_invalidating, 0);
    world_advance(&W, 100 * MS);                    /* step 1: log */
    CU_ASSERT(W.core->st.timeouts_invalidating >= 1);
    CU_ASSERT_EQUAL(sim_held_pages(&W.sim), 128);
    CHECK_SAFE();
    world_advance(&W, 100 * MS);                    /* step 2: force-unmap */
    CU_ASSERT_EQUAL(emu_live(a), 128);
    CHECK_SAFE();
    world_advance(&W, 1 * MS);                      /* its flush */
    CHECK_QUIESCENT();
    report("emu-never-answers");
    world_fini(&W);
}

/* Escalation up to killing the emulator and crashing the guest (hooks). */
static unsigned kills, crashes;

static void
kill_hook(void *arg, const struct core_emu_id *id)
{
    struct world *w = arg;
    int i = sim_emu_find(&w->sim, id->emu_domid, id->target, id->ioservid);

    kills++;
    if (i >= 0)
        sim_emu_crash(&w->sim, i);
}

static void
crash_hook(void *arg, uint16_t domid)
{
    (void)arg;
    (void)domid;
    crashes++;
}

static void
test_escalation_kill(void)
{
    int a;
    struct policy *p = policy_default();

    CU_ASSERT_FATAL(setup(4096, 50 * US) == 0);
    p->inval.timeout_ns = 10 * MS;
    p->inval.nsteps = 3;
    p->inval.steps[0] = POLICY_ACT_LOG;
    p->inval.steps[1] = POLICY_ACT_KILL_EMULATOR;
    p->inval.steps[2] = POLICY_ACT_CRASH_GUEST;
    core_set_policy(W.core, p);
    W.core->env.kill_emulator = kill_hook;
    W.core->env.crash_guest = crash_hook;
    kills = crashes = 0;
    a = add_emu(0, 10 * US, 1, 0);
    W.emus[a].misbehave = ME_IGNORE_INVALIDATES;
    CU_ASSERT_EQUAL(world_map(&W, a, 1, 0, 64), 64);
    world_settle(&W);
    balloon(1, 0, 32);
    world_advance(&W, 15 * MS);
    CU_ASSERT_EQUAL(kills, 0);
    world_advance(&W, 10 * MS);
    CU_ASSERT_EQUAL(kills, 1);                      /* once, not per page */
    world_advance(&W, 50 * MS);
    CU_ASSERT_EQUAL(crashes, 0);                    /* drained before step 3 */
    CU_ASSERT_EQUAL(emu_live(a), 0);
    CHECK_QUIESCENT();
    report("escalation-kill");
    world_fini(&W);
}

/* ---- a guest destroyed mid-flight --------------------------------------- */

static void
test_domain_destroyed(void)
{
    int a, b;

    CU_ASSERT_FATAL(setup(4096, 1 * MS) == 0);
    a = add_emu(0, 5 * MS, 1, 2);
    b = add_emu(0, 10 * US, 1, 0);
    CU_ASSERT_EQUAL(world_map(&W, a, 1, 0, 512), 512);
    CU_ASSERT_EQUAL(world_map(&W, a, 2, 0, 128), 128);
    CU_ASSERT_EQUAL(world_map(&W, b, 1, 0, 512), 512);
    world_settle(&W);
    balloon(1, 0, 256);
    balloon(2, 0, 64);
    world_advance(&W, 200 * US);    /* b unmapped: FLUSHING; a: INVALIDATING */
    CU_ASSERT(W.core->n_invalidating > 0);
    CHECK_SAFE();
    CU_ASSERT_EQUAL(sim_domain_destroy(&W.sim, 1), 0);
    world_settle(&W);
    CHECK_SAFE();
    world_advance(&W, 20 * MS);     /* a's late answers name a dead domain */
    CHECK_QUIESCENT();
    /* Domain 2 is untouched: a still maps what was not ballooned. */
    CU_ASSERT_EQUAL(emu_live(a), 128 - 64);
    CU_ASSERT_EQUAL(emu_live(b), 0);
    report("domain-destroyed");
    world_fini(&W);
}

/* An emulator's own domain destroyed (a stub domain running QEMU). */
static void
test_emu_domain_destroyed(void)
{
    int a;

    CU_ASSERT_FATAL(setup(4096, 1 * MS) == 0);
    CU_ASSERT_FATAL(sim_domain_create(&W.sim, 3, 16) == 0);
    a = add_emu(3, 5 * MS, 1, 0);
    CU_ASSERT_EQUAL(world_map(&W, a, 1, 0, 256), 256);
    world_settle(&W);
    balloon(1, 0, 128);
    world_advance(&W, 100 * US);
    CU_ASSERT_EQUAL(sim_domain_destroy(&W.sim, 3), 0);
    world_advance(&W, 20 * MS);
    CU_ASSERT_EQUAL(emu_live(a), 0);
    CHECK_QUIESCENT();
    report("emu-domain-destroyed");
    world_fini(&W);
}

/* ---- a device-TLB flush never completes -------------------------------- */

static void
test_flush_stuck(void)
{
    int a;
    struct policy *p = policy_default();

    CU_ASSERT_FATAL(setup(4096, 50 * US) == 0);
    p->flush.timeout_ns = 10 * MS;
    p->flush.nsteps = 2;
    p->flush.steps[0] = POLICY_ACT_LOG;
    p->flush.steps[1] = POLICY_ACT_FLUSH;
    core_set_policy(W.core, p);
    a = add_emu(0, 10 * US, 1, 0);
    CU_ASSERT_EQUAL(world_map(&W, a, 1, 0, 256), 256);
    world_settle(&W);
    W.sim.flush_stuck = 1;
    balloon(1, 0, 128);
    world_advance(&W, 1 * MS);
    CU_ASSERT_EQUAL(emu_live(a), 128);              /* it did unmap */
    CU_ASSERT_EQUAL(W.core->n_flushing, 128);
    world_advance(&W, 1 * S);
    /* Held all along: nothing released before its flush (I1). */
    CU_ASSERT_EQUAL(sim_held_pages(&W.sim), 128);
    CU_ASSERT_EQUAL(W.sim.st.pages_released, 0);
    CU_ASSERT(W.core->st.timeouts_flushing >= 1);
    CU_ASSERT(W.core->st.devices_broken >= 1);          /* reported broken */
    CU_ASSERT(W.core->st.flush_cmds >= 1);              /* and retried */
    CHECK_SAFE();
    W.sim.flush_stuck = 0;
    world_advance(&W, 1 * MS);
    CHECK_QUIESCENT();
    report("flush-stuck");
    world_fini(&W);
}

/* ---- a device-TLB flush fails: the shim leaks, the daemon goes on ------ */

static void
test_flush_failed(void)
{
    int a;
    uint64_t resyncs0;

    CU_ASSERT_FATAL(setup(4096, 50 * US) == 0);
    a = add_emu(0, 10 * US, 1, 0);
    CU_ASSERT_EQUAL(world_map(&W, a, 1, 0, 64), 64);
    world_settle(&W);
    balloon(1, 0, 8);               /* these go back as usual */
    world_advance(&W, 10 * MS);
    CU_ASSERT_EQUAL(W.sim.st.pages_released, 8);
    resyncs0 = W.core->st.resyncs;
    /* Every flush queued for the next 8 fails (Invalidation Time-out). */
    W.sim.flush_stuck = 1;
    balloon(1, 8, 8);
    world_advance(&W, 10 * MS);
    CU_ASSERT_EQUAL(emu_live(a), 48);
    CU_ASSERT_FATAL(W.sim.nflush >= 1);
    W.sim.flush_fail = (int)W.sim.nflush;
    W.sim.flush_stuck = 0;
    /* Well within the flush timeout (1 s): only a new flush helps. */
    world_advance(&W, 100 * MS);
    CU_ASSERT(W.sim.st.flushes_failed >= 1);
    CU_ASSERT_EQUAL(W.sim.st.pages_leaked, 8);
    /* The daemon heard of it, asked again and was told -EIO, calmly. */
    CU_ASSERT_EQUAL(W.core->st.flushes_failed, W.sim.st.flushes_failed);
    CU_ASSERT_EQUAL(W.core->st.pages_leaked, 8);
    CU_ASSERT(W.core->st.release_leaked >= 1);     /* RELEASEs said -EIO */
    CU_ASSERT_EQUAL(W.core->st.resyncs, resyncs0);
    CU_ASSERT_EQUAL(W.core->st.release_refused, 0);
    CU_ASSERT_EQUAL(W.sim.st.pages_released, 8);   /* not a leaked one (I1) */
    CHECK_QUIESCENT();
    /* The domain goes: its leaked frames stay out of the allocator. */
    CU_ASSERT_EQUAL(sim_domain_destroy(&W.sim, 1), 0);
    world_advance(&W, 10 * MS);
    CHECK_SAFE();
    report("flush-failed");
    world_fini(&W);
}

/* ---- the event ring overflows -------------------------------------------- */

static void
test_ring_overflow(void)
{
    int a, b;

    CU_ASSERT_FATAL(setup(64, 50 * US) == 0);
    a = add_emu(0, 100 * US, 1, 2);
    b = add_emu(0, 10 * US, 1, 0);
    /* Every other gfn: one event each, far more than 64. */
    for (uint64_t g = 0; g < 2048; g += 2) {
        world_map(&W, a, 1, g, 1);
        world_map(&W, b, 1, g, 1);
    }
    for (uint64_t g = 0; g < 512; g += 2)
        world_map(&W, a, 2, g, 1);
    CU_ASSERT(W.sim.st.events_lost > 0);
    world_settle(&W);
    CU_ASSERT(W.core->st.resyncs >= 2);                 /* start-up + overflow */
    CHECK_SAFE();
    /* Overflow again with pages in flight and flushes pending. */
    for (uint64_t g = 0; g < 1024; g++)
        sim_decrease_reservation(&W.sim, 1, g, 0);
    for (uint64_t g = 0; g < 256; g++)
        sim_decrease_reservation(&W.sim, 2, g, 0);
    CU_ASSERT(iomap_ring_overflowed(&W.sim.ring));
    world_settle(&W);
    CHECK_SAFE();
    world_advance(&W, 200 * US);
    /* and while a dump is being taken in chunks */
    for (uint64_t g = 2048; g < 3072; g += 2)
        world_map(&W, b, 1, g, 1);
    world_settle(&W);
    CHECK_SAFE();
    world_advance(&W, 10 * MS);
    CHECK_QUIESCENT();
    CU_ASSERT(W.core->st.overflows >= 2);
    report("ring-overflow");
    world_fini(&W);
}

/* ---- the daemon killed mid-flight and restarted ---------------------------- */

static void
test_daemon_restart(void)
{
    int a, b;
    uint64_t held;

    CU_ASSERT_FATAL(setup(4096, 500 * US) == 0);
    a = add_emu(0, 2 * MS, 1, 2);
    b = add_emu(0, 10 * US, 1, 0);
    CU_ASSERT_EQUAL(world_map(&W, a, 1, 0, 1024), 1024);
    CU_ASSERT_EQUAL(world_map(&W, a, 2, 0, 512), 512);
    CU_ASSERT_EQUAL(world_map(&W, b, 1, 512, 1024), 1024);
    world_settle(&W);
    balloon(1, 256, 1024);
    balloon(2, 0, 256);
    world_advance(&W, 100 * US);    /* a: INVALIDATING; b: FLUSHING */
    held = sim_held_pages(&W.sim);
    CU_ASSERT(held > 0);
    CU_ASSERT_EQUAL(world_restart_daemon(&W), 0);
    CHECK_SAFE();
    CU_ASSERT_EQUAL(W.core->n_invalidating + W.core->n_flushing, sim_held_pages(&W.sim));
    /* Restart again in the middle, while answers and flushes are due. */
    world_advance(&W, 300 * US);
    CU_ASSERT_EQUAL(world_restart_daemon(&W), 0);
    world_advance(&W, 20 * MS);
    CHECK_QUIESCENT();
    /* Released exactly once each: no RELEASE refused by the shim. */
    CU_ASSERT_EQUAL(W.sim.st.pages_released, W.sim.st.pages_held);
    CU_ASSERT_EQUAL(W.sim.st.cmd_errors, 0);
    report("daemon-restart");
    world_fini(&W);
}

/* ---- an emulator removed with work pending: drained, not cancelled -------- */

static void
test_emu_removed_drained(void)
{
    int a;
    struct core_emu_id id;

    CU_ASSERT_FATAL(setup(4096, 50 * US) == 0);
    a = add_emu(0, 5 * MS, 1, 0);
    id = world_emu_id(&W, a, 1);
    CU_ASSERT_EQUAL(world_map(&W, a, 1, 0, 256), 256);
    world_settle(&W);
    balloon(1, 0, 128);
    world_settle(&W);
    CU_ASSERT_EQUAL(W.core->n_invalidating, 128);
    /* It disconnects from the daemon (closes its socket) with work pending. */
    iomap_emu_close(W.emus[a].srv[0].client);
    W.emus[a].srv[0].client = NULL;
    core_emu_detach(W.core, &id, "closed its channel");
    world_settle(&W);
    world_advance(&W, 1 * MS);
    /* What it was asked to drop is force-unmapped; the rest stays. */
    CU_ASSERT_EQUAL(emu_live(a), 128);
    CHECK_QUIESCENT();
    /* Later removals of its pages are still handled (by force-unmap). */
    balloon(1, 128, 16);
    world_advance(&W, 1 * MS);
    CU_ASSERT_EQUAL(emu_live(a), 112);
    CHECK_QUIESCENT();
    report("emu-removed-drained");
    world_fini(&W);
}

/* ---- hostile input --------------------------------------------------------- */

static void
test_unmap_never_mapped(void)
{
    int a, ia;
    uint64_t refused, posted;

    CU_ASSERT_FATAL(setup(4096, 50 * US) == 0);
    a = add_emu(0, 10 * US, 1, 0);
    ia = world_sim_idx(&W, a, 1);
    CU_ASSERT_EQUAL(world_map(&W, a, 1, 0, 16), 16);
    world_settle(&W);
    refused = W.sim.st.unmaps_refused;
    posted = W.sim.st.events_posted;
    /* Never mapped, partly mapped, and out of range: refused whole. */
    CU_ASSERT_EQUAL(sim_iommu_unmap(&W.sim, ia, 1000, 1), -ENOENT);
    CU_ASSERT_EQUAL(sim_iommu_unmap(&W.sim, ia, world_bfn(&W.emus[a], 1, 8), 16),
                    -ENOENT);
    CU_ASSERT_EQUAL(sim_iommu_unmap(&W.sim, ia, IOMAP_MAX_FRAME, 2), -EINVAL);
    CU_ASSERT_EQUAL(sim_iommu_unmap(&W.sim, ia, 0, 0), -EINVAL);
    CU_ASSERT_EQUAL(W.sim.st.unmaps_refused, refused + 2);
    CU_ASSERT_EQUAL(W.sim.st.events_posted, posted);    /* nothing changed */
    CU_ASSERT_EQUAL(emu_live(a), 16);
    /* The same bfn unmapped twice: the second is refused (I3). */
    CU_ASSERT_EQUAL(sim_iommu_unmap(&W.sim, ia, world_bfn(&W.emus[a], 1, 0), 1), 1);
    CU_ASSERT_EQUAL(sim_iommu_unmap(&W.sim, ia, world_bfn(&W.emus[a], 1, 0), 1),
                    -ENOENT);
    hmap_del(&W.emus[a].mapped, world_bfn(&W.emus[a], 1, 0));
    world_settle(&W);
    CU_ASSERT_EQUAL(emu_live(a), 15);
    CHECK_SAFE();
    world_advance(&W, 1 * MS);
    CHECK_QUIESCENT();
    report("unmap-never-mapped");
    world_fini(&W);
}

static void
inject(const struct iomap_event *ev)
{
    CU_ASSERT_EQUAL(iomap_ring_post_event(&W.sim.ring, ev), 0);
}

static void
test_bad_records(void)
{
    int a;
    uint64_t bad0, unk0, cmds0, released0;

    CU_ASSERT_FATAL(setup(4096, 1 * MS) == 0);
    a = add_emu(0, 10 * US, 1, 0);
    CU_ASSERT_EQUAL(world_map(&W, a, 1, 0, 64), 64);
    world_settle(&W);
    W.sim.flush_stuck = 1;
    balloon(1, 0, 8);               /* 8 pages FLUSHING, flush outstanding */
    world_advance(&W, 1 * MS);
    CU_ASSERT_EQUAL(W.core->n_flushing, 8);
    bad0 = W.core->st.bad_events;
    unk0 = W.core->st.unknown_events;
    cmds0 = W.sim.st.cmds;
    released0 = W.sim.st.pages_released;
    {
        const struct iomap_event bad[] = {
            { .type = IOMAP_EV_MAP, .domid = 1, .nr = 0, .gfn = 100, .arg = 5 },
            { .type = IOMAP_EV_MAP, .domid = 1, .nr = IOMAP_MAX_NR + 1, .gfn = 100 },
            { .type = IOMAP_EV_MAP, .domid = 1, .nr = 1, .gfn = IOMAP_MAX_FRAME },
            { .type = IOMAP_EV_MAP, .domid = 1, .nr = 2, .gfn = 1, .arg = UINT64_MAX },
            { .type = IOMAP_EV_MAP, .domid = 0x7ff0, .nr = 1, .gfn = 1 },
            { .type = IOMAP_EV_MAP, .domid = 1, .nr = 1, .gfn = 1, .flags = 0x80 },
            { .type = IOMAP_EV_UNMAP, .domid = 0xffff, .nr = 1, .gfn = 1 },
            { .type = IOMAP_EV_UNMAP, .domid = 1, .nr = 0x7fffffff, .gfn = 1 },
            { .type = IOMAP_EV_PAGE_REMOVED, .domid = 1, .nr = 0, .gfn = 1 },
            { .type = IOMAP_EV_PAGE_REMOVED, .domid = 1, .nr = 1,
              .gfn = UINT64_MAX - 1 },
            { .type = IOMAP_EV_DOMAIN_DESTROYED, .domid = 0xfffe, .nr = 1 },
            { .type = IOMAP_EV_DUMP_MAP, .domid = 1, .nr = 1, .gfn = 5 },
            { .type = IOMAP_EV_DUMP_HELD, .domid = 1, .nr = 1, .gfn = 5 },
            { .type = IOMAP_EV_DUMP_END, .nr = 0, .seq = 99999 },
            /* a completion of a flush never queued would release early */
            { .type = IOMAP_EV_FLUSH_DONE, .nr = 1, .seq = 0x7ffffff0u },
        };
        const struct iomap_event unknown[] = {
            { .type = 0 }, { .type = IOMAP_EV_MAX + 1, .domid = 1, .nr = 1 },
            { .type = 0xff, .flags = 0xff, .nr = 0xffffffff, .gfn = UINT64_MAX },
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
            inject(&bad[i]);
        for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
            inject(&unknown[i]);
        world_settle(&W);
        CU_ASSERT_EQUAL(W.core->st.bad_events - bad0, sizeof(bad) / sizeof(bad[0]));
        CU_ASSERT_EQUAL(W.core->st.unknown_events - unk0, 3);
    }
    /* Nothing changed: no command, no release, books equal the truth. */
    CU_ASSERT_EQUAL(W.sim.st.cmds, cmds0);
    CU_ASSERT_EQUAL(W.sim.st.pages_released, released0);
    CU_ASSERT_EQUAL(W.core->n_flushing, 8);
    CHECK_SAFE();
    W.sim.flush_stuck = 0;
    world_advance(&W, 5 * MS);
    CHECK_QUIESCENT();
    report("bad-records");
    world_fini(&W);
}

/* An unmap event matching no mapping (a shim bug or a forged record). */
static void
test_unmatched_unmap_event(void)
{
    int a;
    uint64_t un0;
    struct iomap_event ev = { .type = IOMAP_EV_UNMAP, .domid = 1, .emu_domid = 0,
                              .ioservid = 1, .nr = 4, .gfn = 500, .arg = 7 };

    CU_ASSERT_FATAL(setup(4096, 50 * US) == 0);
    a = add_emu(0, 10 * US, 1, 0);
    CU_ASSERT_EQUAL(world_map(&W, a, 1, 0, 64), 64);
    world_settle(&W);
    un0 = W.core->st.unmatched_unmaps;
    inject(&ev);
    ev.emu_domid = 9;               /* an emulator never seen */
    inject(&ev);
    world_settle(&W);
    CU_ASSERT_EQUAL(W.core->st.unmatched_unmaps - un0, 8);
    CU_ASSERT_EQUAL(core_mappings(W.core), 64);
    CHECK_SAFE();
    report("unmatched-unmap");
    world_fini(&W);
}

/* ---- flooding: quotas keep the daemon's memory bounded ------------------ */

static void
test_flood_quota(void)
{
    int a, b;
    struct policy *p = policy_default();

    CU_ASSERT_FATAL(setup(4096, 50 * US) == 0);
    p->max_maps_per_emu = 1000;
    p->max_maps_per_dom = 1500;
    core_set_policy(W.core, p);
    a = add_emu(0, 10 * US, 1, 0);       /* the flooder */
    b = add_emu(0, 10 * US, 1, 2);
    CU_ASSERT_EQUAL(world_map(&W, b, 2, 0, 512), 512);
    world_settle(&W);
    for (uint64_t g = 0; g < 4096; g += 64) {
        world_map(&W, a, 1, g, 64);
        world_settle(&W);
    }
    world_advance(&W, 1 * MS);
    CU_ASSERT(emu_live(a) <= 1000);
    CU_ASSERT(W.core->st.quota_denials > 0);
    {
        struct core_emu_id id = world_emu_id(&W, a, 1);
        struct emu *e = emu_get(W.core, &id, 0);
        const struct emu_map *em;
        uint64_t n = 0;

        LIST_FOREACH(em, &e->maps, emu_link)
            n += em->fs.total;
        CU_ASSERT(n <= 1000);
    }
    /* Per-domain: b may map d1 only up to what a left of the domain's 1500. */
    world_map(&W, b, 1, 0, 1024);
    world_advance(&W, 1 * MS);
    CU_ASSERT(W.sim.st.forced_unmaps > 0);
    CU_ASSERT(emu_live(a) + emu_live(b) - 512 <= 1500);
    /* b is still served in its other domain. */
    CU_ASSERT_EQUAL(world_is_mapped(&W, b, 2, 0), 1);
    balloon(2, 0, 256);
    world_advance(&W, 1 * MS);
    CHECK_QUIESCENT();
    report("flood-quota");
    world_fini(&W);
}

/* A guest flooding the ring with balloon churn on mapped pages. */
static void
test_flood_balloon(void)
{
    int a;

    CU_ASSERT_FATAL(setup(64, 50 * US) == 0);
    a = add_emu(0, 20 * US, 1, 0);
    for (int round = 0; round < 20; round++) {
        world_map(&W, a, 1, 0, 1024);
        for (uint64_t g = 0; g < 1024; g++) {
            sim_decrease_reservation(&W.sim, 1, g, 0);
            sim_populate(&W.sim, 1, g, 1);
        }
        world_advance(&W, 100 * US);
    }
    world_advance(&W, 10 * MS);
    CU_ASSERT(W.core->st.overflows > 0);
    CHECK_QUIESCENT();
    /* The daemon's page array did not grow past what was in flight. */
    CU_ASSERT(W.core->pages_cap <= 4096);
    report("flood-balloon");
    world_fini(&W);
}

int
main(void)
{
    static const struct test_case faults[] = {
        { "emulator crash with pending invalidates", test_emu_crash },
        { "emulator answers without unmapping", test_emu_answer_no_unmap },
        { "emulator never answers (timeouts)", test_emu_never_answers },
        { "escalation: kill the emulator", test_escalation_kill },
        { "guest destroyed mid-flight", test_domain_destroyed },
        { "emulator's domain destroyed", test_emu_domain_destroyed },
        { "device-TLB flush never completes", test_flush_stuck },
        { "device-TLB flush fails: frames leaked", test_flush_failed },
        { "event ring overflow (64 slots)", test_ring_overflow },
        { "daemon killed and restarted", test_daemon_restart },
        { "emulator removed: drained", test_emu_removed_drained },
        { NULL, NULL },
    };
    static const struct test_case hostile[] = {
        { "unmap of never-mapped pages", test_unmap_never_mapped },
        { "ring records with bad fields", test_bad_records },
        { "unmap events matching nothing", test_unmatched_unmap_event },
        { "emulator flooding maps: quotas", test_flood_quota },
        { "guest flooding balloon events", test_flood_balloon },
        { NULL, NULL },
    };
    static const struct test_suite suites[] = {
        { "faults", faults },
        { "hostile", hostile },
        { NULL, NULL },
    };
    int rc;

    log_init("test_faults", getenv("FAULTS_VERBOSE") ? LOG_LVL_INFO : LOG_LVL_ERR);
    rc = run_suites(suites);
    printf("faults: %llu runs, %llu events, %llu removed pages\n",
           (unsigned long long)fig_runs, (unsigned long long)fig_events,
           (unsigned long long)fig_pages);
    return rc;
}
