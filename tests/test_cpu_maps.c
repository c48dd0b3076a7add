/* SPDX-License-Identifier: MIT */
/*
 * CPU (foreign) mappings as the Xen shim reports them (ABI 1.2): named by
 * the emulator domain with IOMAP_IOSERVID_ANY, never force-unmapped, and a
 * removed page only they keep is not held by the shim (PAGE_REMOVED with
 * IOMAP_F_CPU: no RELEASE).  The daemon's core is driven over a bare ring
 * with hand-made records, as the Xen shim would post them.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cunit_main.h"
#include "daemon/core/core_priv.h"
#include "ioreq/iomap-emu.h"
#include "shim/ring.h"
#include "util/log.h"

#define EV_SLOTS  1024u
#define CMD_SLOTS 256u

static struct iomap_ring ring;
static void *mem;
static struct core *core;
static uint64_t now_ns;

/* Registered emulators: (0, 1, 0), (0, 1, 1) and (0, 2, 0). */
#define NSRV 3
static const struct core_emu_id srv_id[NSRV] = { { 0, 1, 0 }, { 0, 1, 1 }, { 0, 2, 0 } };
static struct iomap_emu *srv[NSRV];

static uint64_t
clk(void *arg)
{
    (void)arg;
    return now_ns += 1000;
}

static void
kick(void *arg)
{
    (void)arg;
}

static void
setup(int nsrv)
{
    size_t len = IOMAP_REGION_SIZE(EV_SLOTS, CMD_SLOTS);
    struct core_env env = { .ring = &ring, .clock = clk, .kick = kick };

    mem = calloc(1, len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mem);
    CU_ASSERT_EQUAL_FATAL(iomap_ring_format(&ring, mem, len, EV_SLOTS, CMD_SLOTS), 0);
    core = core_new(&env);
    CU_ASSERT_PTR_NOT_NULL_FATAL(core);
    for (int i = 0; i < nsrv; i++) {
        struct core_emu_chan ch;

        CU_ASSERT_EQUAL_FATAL(core_emu_attach(core, &srv_id[i],
                                              IOMAP_EMU_CAP_INVALIDATE_PAGE, 0, &ch), 0);
        srv[i] = iomap_emu_open_local(ch.page, -1, -1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(srv[i]);
    }
}

static void
teardown(void)
{
    for (int i = 0; i < NSRV; i++) {
        if (srv[i])
            iomap_emu_close(srv[i]);
        srv[i] = NULL;
    }
    core_free(core);
    core = NULL;
    free(mem);
}

static void
post(uint8_t type, uint8_t flags, uint16_t ioservid, uint64_t gfn, uint64_t mfn,
     uint32_t seq)
{
    struct iomap_event ev = { .type = type, .flags = flags, .domid = 1,
                              .emu_domid = 0, .ioservid = ioservid, .nr = 1,
                              .seq = seq, .gfn = gfn, .arg = mfn };

    if (type == IOMAP_EV_PAGE_REMOVED || type == IOMAP_EV_DUMP_HELD)
        ev.emu_domid = IOMAP_DOMID_ANY;
    iomap_event_to_le(&ev);
    CU_ASSERT_EQUAL(iomap_ring_post_event(&ring, &ev), 0);
}

static void
cpu_map(uint64_t gfn, uint64_t mfn)
{
    post(IOMAP_EV_MAP, IOMAP_F_CPU, IOMAP_IOSERVID_ANY, gfn, mfn, 0);
}

static void
cpu_unmap(uint64_t gfn, uint64_t mfn)
{
    post(IOMAP_EV_UNMAP, IOMAP_F_CPU, IOMAP_IOSERVID_ANY, gfn, mfn, 0);
}

/* The commands the core posted since the last call, by type. */
static unsigned
take_cmds(unsigned counts[IOMAP_CMD_MAX + 1], struct iomap_cmd *last)
{
    struct iomap_cmd c[64];
    unsigned n, total = 0;

    memset(counts, 0, (IOMAP_CMD_MAX + 1) * sizeof(counts[0]));
    while ((n = iomap_ring_take_cmds(&ring, c, 64)) > 0) {
        for (unsigned i = 0; i < n; i++) {
            iomap_cmd_from_le(&c[i]);
            if (c[i].type <= IOMAP_CMD_MAX)
                counts[c[i].type]++;
            if (last)
                *last = c[i];
        }
        total += n;
    }
    return total;
}

/* Per-page invalidates emulator i got for d1 gfn (answered at once if asked). */
static unsigned
invalidates(int i, uint64_t gfn, int answer)
{
    struct iomap_emu_req r;
    unsigned n = 0;

    while (iomap_emu_next(srv[i], &r) > 0) {
        CU_ASSERT_FALSE(r.global);
        if (!r.global && r.domid == 1 && gfn >= r.gfn && gfn - r.gfn < r.nr)
            n++;
        if (answer)
            iomap_emu_done(srv[i], &r);
    }
    return n;
}

static uint32_t
in_flight(void)
{
    return core->n_invalidating + core->n_flushing;
}

/*
 * A page that only CPU mappings keep: every registered emulator of the
 * mapping domain for that guest is asked, no other; nothing is forced; the
 * page leaves the books at its last unmap, without a RELEASE.
 */
static void
test_cpu_page_every_server_no_release(void)
{
    unsigned cmds[IOMAP_CMD_MAX + 1];

    setup(NSRV);
    cpu_map(0x10, 0x100);
    cpu_map(0x10, 0x100);           /* two page-table entries */
    cpu_map(0x11, 0x101);
    core_process(core);
    CU_ASSERT_EQUAL(core_mappings(core), 3);
    post(IOMAP_EV_PAGE_REMOVED, IOMAP_F_CPU, 0, 0x10, 0x100, 0);
    core_process(core);
    CU_ASSERT_EQUAL(invalidates(0, 0x10, 1), 1);
    CU_ASSERT_EQUAL(invalidates(1, 0x10, 1), 1);
    CU_ASSERT_EQUAL(invalidates(2, 0x10, 1), 0);   /* another guest's server */
    core_process(core);                             /* the answers */
    CU_ASSERT_EQUAL(in_flight(), 1);                /* still mapped twice */
    CU_ASSERT_EQUAL(take_cmds(cmds, NULL), 0);      /* nothing forced */
    cpu_unmap(0x10, 0x100);
    core_process(core);
    CU_ASSERT_EQUAL(in_flight(), 1);
    cpu_unmap(0x10, 0x100);
    core_process(core);
    CU_ASSERT_EQUAL(in_flight(), 0);
    CU_ASSERT_EQUAL(core->st.pages_released, 1);
    CU_ASSERT_EQUAL(take_cmds(cmds, NULL), 0);      /* no RELEASE: not held */
    CU_ASSERT_EQUAL(core_mappings(core), 1);        /* gfn 0x11 */
    CU_ASSERT_EQUAL(core->st.unmatched_unmaps, 0);
    teardown();
}

/*
 * Nobody registered: nobody to ask and nothing to force (the shim cannot
 * take a CPU mapping back); an emulator registering later is asked.
 */
static void
test_cpu_page_late_registration(void)
{
    unsigned cmds[IOMAP_CMD_MAX + 1];
    struct core_emu_chan ch;

    setup(0);
    cpu_map(0x20, 0x200);
    post(IOMAP_EV_PAGE_REMOVED, IOMAP_F_CPU, 0, 0x20, 0x200, 0);
    core_process(core);
    CU_ASSERT_EQUAL(in_flight(), 1);
    CU_ASSERT_EQUAL(take_cmds(cmds, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(core_emu_attach(core, &srv_id[1],
                                          IOMAP_EMU_CAP_INVALIDATE_PAGE, 0, &ch), 0);
    srv[1] = iomap_emu_open_local(ch.page, -1, -1);
    core_process(core);
    CU_ASSERT_EQUAL(invalidates(1, 0x20, 1), 1);
    cpu_unmap(0x20, 0x200);
    core_process(core);
    CU_ASSERT_EQUAL(in_flight(), 0);
    CU_ASSERT_EQUAL(take_cmds(cmds, NULL), 0);
    teardown();
}

/* The wildcard is not an ioreq server: it cannot register. */
static void
test_cpu_name_not_registrable(void)
{
    struct core_emu_id any = { 0, 1, IOMAP_IOSERVID_ANY };
    struct core_emu_chan ch;

    setup(0);
    CU_ASSERT_EQUAL(core_emu_attach(core, &any, IOMAP_EMU_CAP_INVALIDATE_PAGE, 0, &ch),
                    -EINVAL);
    teardown();
}

/*
 * A page with op references too is held by the shim (PAGE_REMOVED without
 * IOMAP_F_CPU): released once the op mapping and the CPU mapping are gone
 * and the op unmap's flush is done.
 */
static void
test_mixed_page_held(void)
{
    unsigned cmds[IOMAP_CMD_MAX + 1];
    struct iomap_cmd last;

    setup(NSRV);
    post(IOMAP_EV_MAP, 0, 0, 0x30, 0x300, 0);       /* op mapping of (0, 1, 0) */
    cpu_map(0x30, 0x300);
    post(IOMAP_EV_PAGE_REMOVED, 0, 0, 0x30, 0x300, 0);
    core_process(core);
    CU_ASSERT(invalidates(0, 0x30, 1) >= 1);
    CU_ASSERT_EQUAL(invalidates(1, 0x30, 1), 1);    /* the CPU mapping */
    post(IOMAP_EV_FLUSH, 0, 0, 0, 0, 1);
    post(IOMAP_EV_UNMAP, 0, 0, 0x30, 0x300, 1);
    core_process(core);
    CU_ASSERT_EQUAL(in_flight(), 1);
    take_cmds(cmds, NULL);
    CU_ASSERT_EQUAL(cmds[IOMAP_CMD_FORCE_UNMAP], 0);
    CU_ASSERT_EQUAL(cmds[IOMAP_CMD_RELEASE], 0);
    cpu_unmap(0x30, 0x300);
    post(IOMAP_EV_FLUSH_DONE, 0, 0, 0, 0, 1);
    core_process(core);
    CU_ASSERT_EQUAL(in_flight(), 0);
    take_cmds(cmds, &last);
    CU_ASSERT_EQUAL(cmds[IOMAP_CMD_RELEASE], 1);
    CU_ASSERT_EQUAL(last.type, IOMAP_CMD_RELEASE);
    CU_ASSERT_EQUAL(last.mfn, 0x300);
    teardown();
}

/*
 * A policy force-unmap or an emulator that left never reaches the shim for
 * CPU mappings: FORCE_UNMAP with IOMAP_IOSERVID_ANY is never posted.
 */
static void
test_cpu_never_forced(void)
{
    unsigned cmds[IOMAP_CMD_MAX + 1];
    struct core_emu_id any = { 0, 1, IOMAP_IOSERVID_ANY };
    struct emu *w;

    setup(NSRV);
    cpu_map(0x40, 0x400);
    core_process(core);
    w = emu_get(core, &any, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    emu_force_unmap_all(core, w);
    emu_force_unmap_gfn(core, w, 1, 0x40, 1);
    emu_force_unmap_id(core, &any, 0x40, 1);
    core_process(core);
    CU_ASSERT_EQUAL(take_cmds(cmds, NULL), 0);
    CU_ASSERT_EQUAL(core->st.cpu_unforceable, 3);
    teardown();
}

/*
 * A resync: the dump names the CPU mappings and a removed page only they
 * keep (DUMP_HELD with IOMAP_F_CPU); the wildcard server is alive.
 */
static void
test_cpu_resync(void)
{
    unsigned cmds[IOMAP_CMD_MAX + 1];
    struct iomap_cmd dump;
    struct iomap_event ev;

    setup(NSRV);
    core_resync(core);
    core_process(core);
    take_cmds(cmds, &dump);
    CU_ASSERT_EQUAL_FATAL(dump.type, IOMAP_CMD_DUMP);
    ev = (struct iomap_event){ .type = IOMAP_EV_DUMP_BEGIN, .nr = 1, .arg = dump.mfn };
    iomap_event_to_le(&ev);
    iomap_ring_post_event(&ring, &ev);
    for (int i = 0; i < NSRV; i++) {
        ev = (struct iomap_event){ .type = IOMAP_EV_DUMP_EMU, .nr = 1, .arg = 1,
                                   .emu_domid = srv_id[i].emu_domid,
                                   .domid = srv_id[i].target,
                                   .ioservid = srv_id[i].ioservid };
        iomap_event_to_le(&ev);
        iomap_ring_post_event(&ring, &ev);
    }
    ev = (struct iomap_event){ .type = IOMAP_EV_DUMP_EMU, .nr = 1, .arg = 1,
                               .emu_domid = 0, .domid = 1,
                               .ioservid = IOMAP_IOSERVID_ANY };
    iomap_event_to_le(&ev);
    iomap_ring_post_event(&ring, &ev);
    post(IOMAP_EV_DUMP_MAP, IOMAP_F_CPU, IOMAP_IOSERVID_ANY, 0x50, 0x500, 0);
    post(IOMAP_EV_DUMP_HELD, IOMAP_F_CPU, 0, 0x50, 0x500, 0);
    post(IOMAP_EV_DUMP_MAP, IOMAP_F_CPU, IOMAP_IOSERVID_ANY, 0x51, 0x501, 0);
    ev = (struct iomap_event){ .type = IOMAP_EV_DUMP_END, .nr = 0 };
    iomap_event_to_le(&ev);
    iomap_ring_post_event(&ring, &ev);
    core_process(core);
    CU_ASSERT_EQUAL(core->resync, RS_NONE);
    CU_ASSERT_EQUAL(in_flight(), 1);
    CU_ASSERT_EQUAL(core_mappings(core), 1);
    CU_ASSERT_EQUAL(invalidates(0, 0x50, 1), 1);
    CU_ASSERT_EQUAL(invalidates(1, 0x50, 1), 1);
    take_cmds(cmds, NULL);
    CU_ASSERT_EQUAL(cmds[IOMAP_CMD_FORCE_UNMAP], 0);
    cpu_unmap(0x50, 0x500);
    core_process(core);
    CU_ASSERT_EQUAL(in_flight(), 0);
    take_cmds(cmds, NULL);
    CU_ASSERT_EQUAL(cmds[IOMAP_CMD_RELEASE], 0);
    teardown();
}

/*
 * A removed page only CPU mappings keep, which no emulator drops (a
 * locked VRAM entry): the policy's steps run out, but "killing" the
 * wildcard holder is meaningless (no process registered under it) and
 * must not be counted or logged as a kill.
 */
static void
test_cpu_page_no_kill(void)
{
    setup(NSRV);
    cpu_map(0x60, 0x600);
    post(IOMAP_EV_PAGE_REMOVED, IOMAP_F_CPU, 0, 0x60, 0x600, 0);
    core_process(core);
    CU_ASSERT_EQUAL(in_flight(), 1);
    now_ns += 60ULL * 1000 * 1000 * 1000;   /* past every step */
    core_tick(core);
    now_ns += 60ULL * 1000 * 1000 * 1000;
    core_tick(core);
    CU_ASSERT(core->st.escalations >= 1);
    CU_ASSERT_EQUAL(core->st.emu_kills, 0);
    CU_ASSERT_EQUAL(in_flight(), 1);        /* still waits for the unmap */
    teardown();
}

int
main(void)
{
    static const struct test_case tests[] = {
        { "CPU-only page: every server of the domain, no RELEASE",
          test_cpu_page_every_server_no_release },
        { "CPU-only page: an emulator registering later is asked",
          test_cpu_page_late_registration },
        { "IOMAP_IOSERVID_ANY cannot register", test_cpu_name_not_registrable },
        { "op and CPU mappings: held, released after both", test_mixed_page_held },
        { "CPU mappings are never force-unmapped", test_cpu_never_forced },
        { "resync: CPU mappings and an unheld removed page", test_cpu_resync },
        { "CPU-only page past the policy's steps: no kill of the wildcard",
          test_cpu_page_no_kill },
        { NULL, NULL },
    };

    log_init("test_cpu_maps", LOG_LVL_ERR);
    return run_tests("cpu-maps", tests);
}
