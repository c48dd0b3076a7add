/* SPDX-License-Identifier: MIT */
/*
 * The adversarial suite (issue 12) on the simulated host: crashes at every
 * step of a resync, dumps left on the ring by a dead predecessor, a shim
 * that refuses a release, emulator churn beyond the table, emulators that
 * die while the ring overflows, two guests' QEMUs with the same ioreq
 * server id, a policy with only quotas.  After each, the daemon's books
 * are compared with the simulated hypervisor's ground truth (I5), no page
 * went back to Xen while mapped or unflushed (I1, counted by the sim) and
 * everything removed is released in the end (I2).
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

static struct world W;

/* I5 now, I1 so far. */
#define CHECK_VIEWS() do {                                                  \
        char why_[256] = "";                                                \
        CU_ASSERT_EQUAL(world_check_views(&W, why_, sizeof(why_)), 0);      \
        if (why_[0])                                                        \
            fprintf(stderr, "  views: %s\n", why_);                         \
        CU_ASSERT_EQUAL(W.sim.st.violations_i1, 0);                         \
    } while (0)

/* I2: nothing held, every reference accounted for, the books agree. */
#define CHECK_QUIESCENT() do {                                              \
        world_advance(&W, 20 * MS);                                         \
        CU_ASSERT_EQUAL(sim_check_quiescent(&W.sim), 0);                    \
        if (W.sim.last_violation[0])                                        \
            fprintf(stderr, "  sim: %s\n", W.sim.last_violation);           \
        CU_ASSERT_EQUAL(sim_held_pages(&W.sim), 0);                         \
        CU_ASSERT_EQUAL(W.core->n_invalidating + W.core->n_flushing, 0);    \
        CHECK_VIEWS();                                                      \
    } while (0)

static void
setup(uint32_t ev_slots)
{
    CU_ASSERT_EQUAL_FATAL(world_init(&W, 1u << 16, 50 * US, ev_slots), 0);
    CU_ASSERT_EQUAL_FATAL(sim_domain_create(&W.sim, 1, 4096), 0);
    CU_ASSERT_EQUAL_FATAL(sim_domain_create(&W.sim, 2, 4096), 0);
}

/* A model emulator in dom0 with an ioreq server for domid. */
static int
qemu_for(uint16_t domid, uint64_t delay)
{
    int me = world_add_emu(&W, 0, 0, delay);

    CU_ASSERT_FATAL(me >= 0);
    CU_ASSERT_EQUAL_FATAL(world_emu_serves(&W, me, domid), 0);
    return me;
}

/* n single pages, every other gfn from gfn: one event record each. */
static void
map_scattered(int me, uint16_t domid, uint64_t gfn, int n)
{
    for (int i = 0; i < n; i++)
        CU_ASSERT_EQUAL(world_map(&W, me, domid, gfn + 2 * (uint64_t)i, 1), 1);
}

/* ---- 1. resync: leftovers of a dead predecessor's dump ------------------ */

/*
 * A 16-slot ring, 72 mappings: a dump takes several chunks.  The daemon is
 * killed after the shim posted (part of) a chunk for it, and again in the
 * middle of the next resync; each new daemon must take no record of an
 * older dump for its own.  Before DUMP_BEGIN, the leftover partial chunk
 * was taken as the whole snapshot ("resync complete: 8 mappings" while the
 * shim held 72) and a later removal made the daemon release a mapped page.
 */
static void
test_resync_leftovers(void)
{
    int a;

    setup(16);
    a = qemu_for(1, 10 * US);
    map_scattered(a, 1, 0, 72);
    world_settle(&W);
    CHECK_VIEWS();
    for (int round = 0; round < 6; round++) {
        /* The new daemon asked for a dump; the shim answers a chunk ... */
        CU_ASSERT_EQUAL_FATAL(world_crash_daemon(&W), 0);
        core_process(W.core);           /* its ACK + DUMP go out */
        sim_process_cmds(&W.sim);       /* BEGIN + records on the ring */
        /* ... and it dies before reading it, 'round' times over. */
        for (int k = 0; k < round % 3; k++) {
            CU_ASSERT_EQUAL_FATAL(world_crash_daemon(&W), 0);
            core_process(W.core);
            sim_process_cmds(&W.sim);
        }
        CU_ASSERT_EQUAL_FATAL(world_crash_daemon(&W), 0);
        world_settle(&W);
        CU_ASSERT_EQUAL(W.core->resync, RS_NONE);
        CU_ASSERT_EQUAL(core_mappings(W.core), 72);
        CHECK_VIEWS();
    }
    CU_ASSERT(W.core->st.stale_dump_records > 0 || W.core->st.overflows > 0);
    /* A mapped page given back: held until the emulator unmapped it. */
    CU_ASSERT_EQUAL(sim_decrease_reservation(&W.sim, 1, 0, 0), 1);
    world_advance(&W, 5 * MS);
    CU_ASSERT_EQUAL(W.sim.st.violations_i1, 0);
    CHECK_QUIESCENT();
    world_fini(&W);
}

/* A DUMP_END that closes a dump (nr 0) waits unread on the ring. */
static int
final_chunk_pending(void)
{
    const struct iomap_ring *r = &W.sim.ring;
    uint32_t cons = r->hdr->ev_cons, prod = r->hdr->ev_prod;

    for (uint32_t i = cons; i != prod; i++) {
        const struct iomap_event *ev = &r->ev[i & (r->ev_slots - 1)];

        if (ev->type == IOMAP_EV_DUMP_END && ev->nr == 0)
            return 1;
    }
    return 0;
}

/*
 * The worst leftover: the LAST chunk of a dead predecessor's dump, a few
 * mappings and a DUMP_END that says "complete".  Taken for our own, it
 * ended the resync with a fraction of the books ("resync complete: 8
 * mappings" while the shim held 72), and a removal then asked the shim to
 * release a page an emulator still mapped.
 */
static void
test_resync_last_chunk_leftover(void)
{
    int a, guard = 0;

    setup(16);
    a = qemu_for(1, 10 * US);
    map_scattered(a, 1, 0, 72);
    world_settle(&W);
    CU_ASSERT_EQUAL_FATAL(world_crash_daemon(&W), 0);
    /* Let the dump run chunk by chunk until its last chunk is on the ring. */
    while (!final_chunk_pending() && guard++ < 1000) {
        core_process(W.core);
        sim_process_cmds(&W.sim);
    }
    CU_ASSERT_FATAL(final_chunk_pending());
    CU_ASSERT_EQUAL_FATAL(world_crash_daemon(&W), 0);   /* dies before reading it */
    world_settle(&W);
    CU_ASSERT_EQUAL(W.core->resync, RS_NONE);
    CU_ASSERT_EQUAL(core_mappings(W.core), 72);
    CHECK_VIEWS();
    /* Every mapped page given back: each held until it is unmapped. */
    for (uint64_t g = 0; g < 144; g += 2)
        CU_ASSERT_EQUAL(sim_decrease_reservation(&W.sim, 1, g, 0), 1);
    world_advance(&W, 5 * MS);
    CU_ASSERT_EQUAL(W.sim.st.violations_i1, 0);
    CHECK_QUIESCENT();
    world_fini(&W);
}

/*
 * A shim may order the records of a chunk as it likes: here one DUMP_MAP
 * of 2 frames (gfns 10-11) comes before the held page of gfn 11 it covers.
 * Applied in arrival order, the mapping went to the live books and the
 * held page, with no holder, was released while mapped (a second review).
 * The chunk is written by the test, as a shim would.
 */
static void
test_dump_order(void)
{
    struct iomap_cmd cmds[64];
    struct iomap_event ev;
    struct core_emu_id id;
    uint64_t dump_id = 0, m10, m11;
    int a, got = 0;
    unsigned n;

    setup(4096);
    a = qemu_for(1, 10 * US);
    W.emus[a].misbehave = ME_IGNORE_INVALIDATES;
    m10 = sim_domain(&W.sim, 1)->p2m[10];
    m11 = sim_domain(&W.sim, 1)->p2m[11];
    CU_ASSERT_EQUAL_FATAL(m11, m10 + 1);
    CU_ASSERT_EQUAL(world_map(&W, a, 1, 10, 2), 2);
    world_settle(&W);
    CU_ASSERT_EQUAL(sim_decrease_reservation(&W.sim, 1, 11, 0), 1);
    world_settle(&W);
    id = world_emu_id(&W, a, 1);
    CU_ASSERT_EQUAL_FATAL(world_crash_daemon(&W), 0);
    core_process(W.core);
    /* The shim's side, by hand: take the DUMP, answer it. */
    while ((n = iomap_ring_take_cmds(&W.sim.ring, cmds, 64)) > 0)
        for (unsigned i = 0; i < n; i++)
            if (cmds[i].type == IOMAP_CMD_DUMP) {
                dump_id = cmds[i].mfn;
                got = 1;
            }
    CU_ASSERT_FATAL(got);
    ev = (struct iomap_event){ .type = IOMAP_EV_DUMP_BEGIN, .nr = 1, .arg = dump_id };
    CU_ASSERT_EQUAL(iomap_ring_post_event(&W.sim.ring, &ev), 0);
    ev = (struct iomap_event){ .type = IOMAP_EV_DUMP_EMU, .nr = 1, .emu_domid = id.emu_domid,
                               .domid = id.target, .ioservid = id.ioservid, .arg = 1 };
    CU_ASSERT_EQUAL(iomap_ring_post_event(&W.sim.ring, &ev), 0);
    ev = (struct iomap_event){ .type = IOMAP_EV_DUMP_MAP, .nr = 2, .domid = 1,
                               .emu_domid = id.emu_domid, .ioservid = id.ioservid,
                               .gfn = 10, .arg = m10 };
    CU_ASSERT_EQUAL(iomap_ring_post_event(&W.sim.ring, &ev), 0);
    ev = (struct iomap_event){ .type = IOMAP_EV_DUMP_HELD, .nr = 1, .domid = 1, .gfn = 11,
                               .arg = m11 };
    CU_ASSERT_EQUAL(iomap_ring_post_event(&W.sim.ring, &ev), 0);
    ev = (struct iomap_event){ .type = IOMAP_EV_DUMP_END, .nr = 0,
                               .seq = W.sim.next_seq - 1, .arg = W.sim.max_done };
    CU_ASSERT_EQUAL(iomap_ring_post_event(&W.sim.ring, &ev), 0);
    world_settle(&W);
    CU_ASSERT_EQUAL(W.core->resync, RS_NONE);
    CU_ASSERT_EQUAL(W.core->n_invalidating, 1);     /* it waits for its holder */
    world_advance(&W, 5 * MS);
    CU_ASSERT_EQUAL(W.sim.st.violations_i1, 0);
    CU_ASSERT_EQUAL(sim_held_pages(&W.sim), 1);
    CHECK_VIEWS();
    CU_ASSERT_EQUAL(world_crash_emu(&W, a), 0);
    CHECK_QUIESCENT();
    world_fini(&W);
}

/* Crash the daemon at every step of a resync (each core_process call). */
static void
test_resync_crash_every_step(void)
{
    int a, b;

    setup(16);
    a = qemu_for(1, 10 * US);
    b = qemu_for(2, 10 * US);
    map_scattered(a, 1, 0, 40);
    map_scattered(b, 2, 100, 40);
    world_settle(&W);
    /* Pages in flight too: held pages come back through the dump. */
    CU_ASSERT_EQUAL(sim_decrease_reservation(&W.sim, 1, 0, 0), 1);
    CU_ASSERT_EQUAL(sim_decrease_reservation(&W.sim, 2, 100, 0), 1);
    for (int step = 0; step < 12; step++) {
        CU_ASSERT_EQUAL_FATAL(world_crash_daemon(&W), 0);
        for (int k = 0; k < step; k++) {
            core_process(W.core);
            sim_process_cmds(&W.sim);
        }
    }
    world_settle(&W);
    CU_ASSERT_EQUAL(W.core->resync, RS_NONE);
    CHECK_VIEWS();
    CHECK_QUIESCENT();
    world_fini(&W);
}

/*
 * A stub domain (emulator 3:1:0, mapping guest 1) is destroyed after the
 * first chunk of a dump, the one that brought its d1 mappings, was
 * applied: the shim dropped them, and DOMAIN_DESTROYED(3) was filtered by
 * the cursor (domain 3 lies after it).  The books kept mappings the shim
 * no longer had, and a page of d1 given back waited for ever for the dead
 * stub (found by an independent review).  The dump starts again instead.
 */
static void
test_stub_destroyed_mid_resync(void)
{
    int stub, q, q2;

    setup(16);
    CU_ASSERT_EQUAL_FATAL(sim_domain_create(&W.sim, 3, 16), 0);
    stub = world_add_emu(&W, 3, 0, 10 * US);
    CU_ASSERT_EQUAL_FATAL(world_emu_serves(&W, stub, 1), 0);
    q = qemu_for(1, 10 * US);
    q2 = qemu_for(2, 10 * US);
    CU_ASSERT_EQUAL(world_map(&W, stub, 1, 0, 1), 1);
    CU_ASSERT_EQUAL(world_map(&W, q, 1, 0, 1), 1);
    CU_ASSERT_EQUAL(world_map(&W, stub, 1, 2, 4), 4);
    map_scattered(q2, 2, 0, 40);
    world_settle(&W);
    CHECK_VIEWS();
    CU_ASSERT_EQUAL_FATAL(world_crash_daemon(&W), 0);
    core_process(W.core);               /* ACK + DUMP out */
    sim_process_cmds(&W.sim);           /* the first chunk (d1) */
    core_process(W.core);               /* applied; the cursor is in d2 */
    CU_ASSERT_EQUAL_FATAL(W.core->resync, RS_CHUNKS);
    W.emus[stub].dead = 1;
    CU_ASSERT_EQUAL(sim_domain_destroy(&W.sim, 3), 0);
    world_settle(&W);
    CU_ASSERT_EQUAL(W.core->resync, RS_NONE);
    CHECK_VIEWS();
    CU_ASSERT_EQUAL(sim_decrease_reservation(&W.sim, 1, 0, 0), 1);
    CHECK_QUIESCENT();
    world_fini(&W);
}

/*
 * A drain asked while the books are rebuilt must not answer "drained":
 * the emulator's pending pages are not known until the dump ends (found
 * by an independent review: it answered "drained, 0 held" while the shim
 * held 8 pages the emulator still mapped).
 */
static const char *drain_outcome;
static uint64_t drain_held;

static void
drain_done(void *arg, const struct core_emu_id *id, const struct core_drain_result *r)
{
    (void)arg;
    (void)id;
    drain_outcome = r->outcome;
    drain_held = r->held_at_start;
}

static void
test_drain_mid_resync(void)
{
    struct core_emu_id id;
    int a;

    setup(1024);
    a = qemu_for(1, 10 * US);
    CU_ASSERT_EQUAL(world_map(&W, a, 1, 0, 16), 16);
    world_settle(&W);
    W.emus[a].misbehave = ME_IGNORE_INVALIDATES;
    CU_ASSERT_EQUAL(sim_decrease_reservation(&W.sim, 1, 0, 3), 8);
    world_settle(&W);
    id = world_emu_id(&W, a, 1);
    CU_ASSERT_EQUAL_FATAL(world_crash_daemon(&W), 0);   /* re-registered, dump asked */
    drain_outcome = NULL;
    CU_ASSERT_EQUAL(core_drain(W.core, &id, 1000 * MS, 0, drain_done, NULL), 0);
    core_process(W.core);
    CU_ASSERT_PTR_NULL(drain_outcome);                  /* not before the dump */
    world_advance(&W, 2000 * MS);                       /* the deadline */
    CU_ASSERT_PTR_NOT_NULL_FATAL(drain_outcome);
    CU_ASSERT_STRING_EQUAL(drain_outcome, "forced");
    CU_ASSERT_EQUAL(drain_held, 8);
    CHECK_QUIESCENT();
    world_fini(&W);
}

/* ---- 1b. a RELEASE the shim refuses is not the end of the page ------------ */

/*
 * Books and shim disagree (here: a forged UNMAP, as if the daemon missed a
 * map): the daemon asks to release a page the emulator still maps, the shim
 * refuses (-EBUSY) and keeps its reference.  The daemon must rebuild its
 * books and release the page once it really can: before, it never asked
 * again and the page stayed held after the emulator was gone (I2).
 */
static void
test_release_refused(void)
{
    struct iomap_event ev = { .type = IOMAP_EV_UNMAP, .domid = 1, .nr = 1,
                              .gfn = 10 };
    int a;

    setup(4096);
    a = qemu_for(1, 10 * US);
    W.emus[a].misbehave = ME_IGNORE_INVALIDATES;    /* keeps the page mapped */
    CU_ASSERT_EQUAL(world_map(&W, a, 1, 10, 1), 1);
    world_settle(&W);
    ev.emu_domid = 0;
    ev.ioservid = W.emus[a].srv[0].ioservid;
    ev.arg = sim_domain(&W.sim, 1)->p2m[10];
    CU_ASSERT_EQUAL(sim_decrease_reservation(&W.sim, 1, 10, 0), 1);
    world_settle(&W);
    CU_ASSERT_EQUAL_FATAL(iomap_ring_post_event(&W.sim.ring, &ev), 0);
    world_advance(&W, 1 * MS);
    CU_ASSERT(W.core->st.release_refused >= 1);     /* the shim said no */
    CU_ASSERT_EQUAL(sim_held_pages(&W.sim), 1);     /* and kept the page */
    /* The sim counted the attempt the forged UNMAP caused; nothing went. */
    CU_ASSERT_EQUAL(W.sim.st.violations_i1, 1);
    W.sim.st.violations_i1 = 0;
    W.sim.last_violation[0] = '\0';
    CHECK_VIEWS();                                  /* the books were rebuilt */
    /* The emulator dies: its mapping is taken back, the page released. */
    CU_ASSERT_EQUAL(world_crash_emu(&W, a), 0);
    CHECK_QUIESCENT();
    world_fini(&W);
}

/* ---- 2. the emulator table: churn beyond its size --------------------------- */

/*
 * Stub domains get a new domid at every guest restart; refused
 * registrations must leave nothing behind.  Before, every identity ever
 * seen kept an entry: after 1,024 of them registrations got -ENOSPC and a
 * new ioreq server's mappings were dropped from the books at a resync.
 */
static void
test_emu_churn(void)
{
    struct core_emu_chan ch;
    struct core_status cs;
    int a;

    setup(4096);
    for (unsigned i = 0; i < 3 * CORE_MAX_EMUS; i++) {
        struct core_emu_id id = { (uint16_t)(100 + i % 30000), 1, 0 };

        CU_ASSERT_EQUAL_FATAL(core_emu_attach(W.core, &id, IOMAP_EMU_CAP_INVALIDATE_PAGE,
                                              0, &ch), 0);
        core_emu_detach(W.core, &id, "closed its channel");
        core_process(W.core);
        /* A refused registration (unknown caps) leaves no entry either. */
        id.ioservid = 1;
        CU_ASSERT_EQUAL(core_emu_attach(W.core, &id, 0x80, 0, &ch), -EINVAL);
    }
    core_status(W.core, &cs);
    CU_ASSERT(cs.emulators <= 1);
    CU_ASSERT(W.core->st.emus_reclaimed >= 3 * CORE_MAX_EMUS - 1);
    /* A new emulator is still tracked, also through a resync. */
    a = qemu_for(1, 10 * US);
    map_scattered(a, 1, 0, 16);
    world_settle(&W);
    CU_ASSERT_EQUAL(world_restart_daemon(&W), 0);
    CU_ASSERT_EQUAL(core_mappings(W.core), 16);
    CHECK_VIEWS();
    CU_ASSERT_EQUAL(sim_decrease_reservation(&W.sim, 1, 0, 1), 2);
    CHECK_QUIESCENT();
    world_fini(&W);
}

/*
 * With the table really full (CORE_MAX_EMUS live registrations), a map by
 * one more emulator cannot be tracked: it is force-unmapped, never left
 * untracked (an untracked mapping of a removed page would be released
 * while mapped).
 */
static void
test_emu_table_full(void)
{
    struct core_emu_chan ch;
    int a;

    setup(4096);
    for (unsigned i = 0; i < CORE_MAX_EMUS; i++) {
        struct core_emu_id id = { (uint16_t)(100 + i), 2, 0 };

        CU_ASSERT_EQUAL_FATAL(core_emu_attach(W.core, &id, 0, 0, &ch), 0);
    }
    /* One more QEMU: its ioreq server exists, its registration fails. */
    a = world_add_emu(&W, 0, 0, 10 * US);
    CU_ASSERT_EQUAL(world_emu_serves(&W, a, 1), -ENOSPC);
    CU_ASSERT_EQUAL_FATAL(W.emus[a].nsrv, 1);
    {
        int n = 0;

        for (uint64_t g = 0; g < 8; g++)
            n += world_map(&W, a, 1, g, 1);
        CU_ASSERT_EQUAL(n, 8);
    }
    world_settle(&W);
    CU_ASSERT(W.core->st.untracked_forced >= 8);
    CU_ASSERT_EQUAL(W.sim.emus[world_sim_idx(&W, a, 1)].live, 0);
    CU_ASSERT_EQUAL(sim_decrease_reservation(&W.sim, 1, 0, 2), 4);
    world_advance(&W, 5 * MS);
    CU_ASSERT_EQUAL(sim_held_pages(&W.sim), 0);
    CU_ASSERT_EQUAL(W.sim.st.violations_i1, 0);
    world_fini(&W);
}

/* ---- 5. an emulator that dies while the ring overflows --------------------- */

/*
 * Its EMULATOR_GONE is lost with the overflow; the dump must say it is
 * gone, so that its mappings are taken back.  Before, it stayed "alive"
 * with its 64 mappings in the shim and in the books.
 */
static void
test_gone_during_overflow(void)
{
    struct core_emu_info info;
    struct core_emu_id id;
    int a, b;

    setup(32);
    a = qemu_for(1, 10 * US);
    b = qemu_for(2, 10 * US);
    map_scattered(a, 1, 0, 16);
    world_settle(&W);
    id = world_emu_id(&W, a, 1);
    /* Nobody reads the ring: b's burst overflows it, then a dies. */
    map_scattered(b, 2, 0, 64);
    CU_ASSERT(iomap_ring_overflowed(&W.sim.ring));
    CU_ASSERT_EQUAL(world_crash_emu(&W, a), 0);
    world_settle(&W);
    CU_ASSERT(W.core->st.overflows > 0);
    CU_ASSERT_EQUAL(world_live(&W, a), 0);          /* taken back */
    CU_ASSERT_EQUAL(world_live(&W, b), 64);         /* b untouched */
    if (core_emu_find(W.core, &id, &info) == 0)
        CU_ASSERT_FALSE(info.alive);
    CHECK_VIEWS();
    CHECK_QUIESCENT();
    world_fini(&W);
}

/* ---- 6a. identity: two guests' QEMUs with the same ioreq server id ------- */

/*
 * Xen numbers ioreq servers per guest: dom0's QEMU of d1 and of d2 both
 * have id 0.  Both register; the death of one takes back only its own
 * mappings.  Before, the second was refused ("emulator 0:1 is already
 * registered") and EMULATOR_GONE force-unmapped the other's mappings too.
 */
static void
test_same_ioservid_two_guests(void)
{
    struct core_emu_id ia, ib;
    struct core_emu_info info;
    int a, b;

    setup(4096);
    a = qemu_for(1, 10 * US);
    b = qemu_for(2, 10 * US);
    ia = world_emu_id(&W, a, 1);
    ib = world_emu_id(&W, b, 2);
    CU_ASSERT_EQUAL(ia.ioservid, ib.ioservid);
    CU_ASSERT_EQUAL(ia.emu_domid, ib.emu_domid);
    CU_ASSERT_EQUAL_FATAL(core_emu_find(W.core, &ia, &info), 0);
    CU_ASSERT(info.registered);
    CU_ASSERT_EQUAL_FATAL(core_emu_find(W.core, &ib, &info), 0);
    CU_ASSERT(info.registered);
    map_scattered(a, 1, 0, 32);
    map_scattered(b, 2, 0, 32);
    world_settle(&W);
    /* Each gets only its own guest's invalidates. */
    CU_ASSERT_EQUAL(sim_decrease_reservation(&W.sim, 1, 0, 0), 1);
    world_advance(&W, 1 * MS);
    CU_ASSERT_EQUAL(W.emus[b].answers, 0);
    CU_ASSERT_EQUAL(world_live(&W, a), 31);
    /* a dies: b keeps everything. */
    CU_ASSERT_EQUAL(world_crash_emu(&W, a), 0);
    world_advance(&W, 1 * MS);
    CU_ASSERT_EQUAL(world_live(&W, a), 0);
    CU_ASSERT_EQUAL(world_live(&W, b), 32);
    CU_ASSERT_EQUAL_FATAL(core_emu_find(W.core, &ib, &info), 0);
    CU_ASSERT(info.alive && info.registered);
    CU_ASSERT_EQUAL(info.mappings, 32);
    CHECK_QUIESCENT();
    world_fini(&W);
}

/* ---- 3. an emulator rewrites the shared IOREQ page --------------------------- */

/*
 * The daemon judges an answer by its own record of what it asked.  Before,
 * it read the request back from the page the emulator can write: a count
 * rewritten to 0xffffffff made it loop over 2^32 pages, and answers forged
 * into all 63 slots showed in_flight -62 and 63 answers to one request.
 */
static void
test_forged_answers(void)
{
    struct core_emu_id id;
    struct emu *e;
    struct iomap_ioreq_page *pg;
    uint64_t forced0;
    int a, sent = -1;

    setup(4096);
    a = qemu_for(1, 10 * US);
    W.emus[a].misbehave = ME_IGNORE_INVALIDATES;    /* takes, never answers */
    CU_ASSERT_EQUAL(world_map(&W, a, 1, 40, 1), 1);
    world_settle(&W);
    id = world_emu_id(&W, a, 1);
    e = emu_get(W.core, &id, 0);
    CU_ASSERT_FATAL(e != NULL && e->has_chan);
    CU_ASSERT_EQUAL(sim_decrease_reservation(&W.sim, 1, 40, 0), 1);
    world_settle(&W);
    CU_ASSERT_EQUAL(e->chan.busy, 1);
    pg = e->chan.page;
    for (int i = 0; i < IOMAP_IOREQ_SLOTS; i++)
        if (e->chan.sent[i].used)
            sent = i;
    CU_ASSERT_FATAL(sent >= 0);
    forced0 = W.sim.st.forced_unmaps;
    /* Its answer claims 2^32 - 1 pages of another domain; 62 more answer nothing. */
    pg->slot[sent].count = 0xffffffffu;
    pg->slot[sent].data = 2;
    pg->slot[sent].addr = 0;
    for (int i = 0; i < IOMAP_IOREQ_SLOTS; i++)
        __atomic_store_n((uint8_t *)&pg->slot[i] + 30,
                         (uint8_t)((((uint8_t *)&pg->slot[i])[30] & 0xf0) |
                                   IOMAP_STATE_IORESP_READY), __ATOMIC_RELEASE);
    core_process(W.core);
    CU_ASSERT_EQUAL(e->answers, 1);
    CU_ASSERT_EQUAL(e->chan.busy, 0);
    CU_ASSERT_EQUAL(e->chan.forged, IOMAP_IOREQ_SLOTS - 1);
    world_settle(&W);
    /* It still mapped the one page it was asked about: that one is taken. */
    CU_ASSERT_EQUAL(W.sim.st.forced_unmaps - forced0, 1);
    CU_ASSERT_EQUAL(W.sim.st.cmd_errors, 0);
    CU_ASSERT_EQUAL(world_live(&W, a), 0);
    CHECK_QUIESCENT();
    world_fini(&W);
}

/* ---- flush sequences wrap; a page mapped 2^16 times ---------------------- */

/*
 * The 32-bit flush sequence wraps (the shim skips 0).  Compared as plain
 * numbers, flush 1 looked "done" after flush 0xffffffff and a page whose
 * unmap waited for flush 1 was released at once (found by a second
 * independent review).  Judged by time and by the sim (which compares
 * serially too now): nothing goes before its flush is due.
 */
static void
test_seq_wrap(void)
{
    uint64_t rel0;
    int me;

    CU_ASSERT_EQUAL_FATAL(world_init(&W, 1u << 16, 10 * MS, 4096), 0);
    CU_ASSERT_EQUAL_FATAL(sim_domain_create(&W.sim, 1, 4096), 0);
    W.sim.next_seq = 0xfffffffeu;           /* a host up for a while */
    W.sim.max_done = 0xfffffffdu;
    CU_ASSERT_EQUAL_FATAL(world_restart_daemon(&W), 0);
    me = qemu_for(1, 100 * US);
    for (int round = 0; round < 4; round++) {       /* across the wrap */
        sim_iommu_flush(&W.sim, world_sim_idx(&W, me, 1));
        CU_ASSERT_EQUAL(world_map(&W, me, 1, (uint64_t)round, 1), 1);
        world_settle(&W);
        rel0 = W.sim.st.pages_released;
        CU_ASSERT_EQUAL(sim_decrease_reservation(&W.sim, 1, (uint64_t)round, 0), 1);
        world_advance(&W, 1 * MS);      /* unmapped; its flush is due in 10 ms */
        CU_ASSERT_FATAL(W.sim.nflush > 0);
        CU_ASSERT_EQUAL(W.sim.st.pages_released, rel0);
        world_advance(&W, 20 * MS);
        CU_ASSERT_EQUAL(W.sim.st.pages_released, rel0 + 1);
    }
    CU_ASSERT(W.sim.next_seq < 100);        /* it did wrap */
    CU_ASSERT_EQUAL(W.sim.st.violations_i1, 0);
    CHECK_QUIESCENT();
    world_fini(&W);
}

/*
 * One emulator maps one gfn at 65,537 bfns: the holder's count was 16 bits
 * and wrapped, so one unmap made the page look free (a second review).
 */
static void
test_holder_count_wide(void)
{
    enum { N = 65537 };
    struct core_emu_id id;
    int me, sidx;
    uint64_t mfn;

    setup(1u << 17);
    me = qemu_for(1, 10 * US);
    W.emus[me].misbehave = ME_IGNORE_INVALIDATES;
    sidx = world_sim_idx(&W, me, 1);
    for (uint64_t b = 0; b < N; b++)
        CU_ASSERT_EQUAL_FATAL(sim_iommu_map(&W.sim, sidx, 1, 7, (1ull << 40) + b, 1, 0), 1);
    world_settle(&W);
    id = world_emu_id(&W, me, 1);
    CU_ASSERT_EQUAL(core_map_count(W.core, &id, 1, 7), N);
    mfn = sim_domain(&W.sim, 1)->p2m[7];
    (void)mfn;
    CU_ASSERT_EQUAL(sim_decrease_reservation(&W.sim, 1, 7, 0), 1);
    world_settle(&W);
    CU_ASSERT_EQUAL(sim_iommu_unmap(&W.sim, sidx, 1ull << 40, 1), 1);
    sim_iommu_flush(&W.sim, sidx);
    world_advance(&W, 5 * MS);
    CU_ASSERT_EQUAL(W.sim.st.violations_i1, 0);     /* not released with 65,536 left */
    CU_ASSERT_EQUAL(sim_held_pages(&W.sim), 1);
    CHECK_VIEWS();
    CU_ASSERT_EQUAL(world_crash_emu(&W, me), 0);    /* then all go: released */
    CHECK_QUIESCENT();
    world_fini(&W);
}

/* ---- 7. a policy with only quotas ------------------------------------------ */

/*
 * iomapd.conf(5): deny by default only with an emulators list.  Before, a
 * reload of a file with only quotas force-unmapped every live mapping
 * ("denied (E1)").
 */
static void
test_quotas_only_policy(void)
{
    struct policy *p = NULL;
    char err[POLICY_ERRLEN];
    int a;

    setup(4096);
    a = qemu_for(1, 10 * US);
    map_scattered(a, 1, 0, 64);
    world_settle(&W);
    CU_ASSERT_EQUAL_FATAL(policy_parse_string(
        "quotas = { pending_per_emulator = 4096; mappings_per_emulator = 100000; };\n",
        &p, err), 0);
    CU_ASSERT_EQUAL(core_set_policy(W.core, p), 0);
    world_settle(&W);
    CU_ASSERT_EQUAL(world_live(&W, a), 64);
    CU_ASSERT_EQUAL(W.core->st.policy_denials, 0);
    CHECK_VIEWS();
    world_fini(&W);
}

int
main(void)
{
    static const struct test_case tests[] = {
        { "resync: a dead predecessor's dump is not ours", test_resync_leftovers },
        { "resync: a predecessor's last chunk is not ours", test_resync_last_chunk_leftover },
        { "resync: records of a chunk in any order", test_dump_order },
        { "resync: the daemon crashes at every step", test_resync_crash_every_step },
        { "resync: a stub domain destroyed mid-dump", test_stub_destroyed_mid_resync },
        { "a drain asked during a resync waits for the books", test_drain_mid_resync },
        { "a refused RELEASE: resync, released later", test_release_refused },
        { "emulator churn beyond the table", test_emu_churn },
        { "emulator table full: mappings force-unmapped", test_emu_table_full },
        { "an emulator dies while the ring overflows", test_gone_during_overflow },
        { "two guests' QEMUs with the same ioservid", test_same_ioservid_two_guests },
        { "answers judged by the daemon's own record", test_forged_answers },
        { "flush sequences compared across the wrap", test_seq_wrap },
        { "a page mapped at 65,537 bfns by one emulator", test_holder_count_wide },
        { "a policy with only quotas denies nothing", test_quotas_only_policy },
        { NULL, NULL },
    };

    log_init("test_hostile", LOG_LVL_ERR);
    return run_tests("hostile", tests);
}
