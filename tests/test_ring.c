/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cunit_main.h"
#include "shim/ring.h"

#define EVS 8
#define CMDS 4

static void *
region(size_t *len)
{
    *len = IOMAP_REGION_SIZE(EVS, CMDS);
    return calloc(1, *len);
}

static struct iomap_event
ev(uint8_t type, uint64_t gfn)
{
    struct iomap_event e = { .type = type, .domid = 7, .emu_domid = 3,
                             .ioservid = 2, .nr = 1, .seq = 11, .gfn = gfn,
                             .arg = gfn + 100 };
    return e;
}

static void
test_format_attach(void)
{
    size_t len;
    void *mem = region(&len);
    struct iomap_ring shim, dmn;
    char err[128];

    CU_ASSERT_EQUAL(iomap_ring_format(&shim, mem, len, EVS, CMDS), 0);
    CU_ASSERT_EQUAL(iomap_ring_attach(&dmn, mem, len, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(dmn.ev_slots, EVS);
    CU_ASSERT_EQUAL(dmn.cmd_slots, CMDS);
    CU_ASSERT_PTR_EQUAL(dmn.ev, shim.ev);
    CU_ASSERT_PTR_EQUAL(dmn.cmd, shim.cmd);
    /* Not powers of two, or too small. */
    CU_ASSERT_EQUAL(iomap_ring_format(&shim, mem, len, 6, CMDS), -EINVAL);
    CU_ASSERT_EQUAL(iomap_ring_format(&shim, mem, len / 2, EVS, CMDS), -EINVAL);
    free(mem);
}

static void
test_attach_rejects(void)
{
    size_t len;
    void *mem = region(&len);
    struct iomap_ring shim, dmn;
    struct iomap_ring_hdr *h = mem;
    char err[128];

    iomap_ring_format(&shim, mem, len, EVS, CMDS);
    h->magic = 0;
    CU_ASSERT_EQUAL(iomap_ring_attach(&dmn, mem, len, err, sizeof(err)), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "magic"));
    iomap_ring_format(&shim, mem, len, EVS, CMDS);
    h->version = (IOMAP_ABI_VERSION_MAJOR + 1) << 16;
    CU_ASSERT_EQUAL(iomap_ring_attach(&dmn, mem, len, err, sizeof(err)), -EPROTO);
    iomap_ring_format(&shim, mem, len, EVS, CMDS);
    h->version = IOMAP_ABI_VERSION + 1;     /* newer minor: accepted */
    CU_ASSERT_EQUAL(iomap_ring_attach(&dmn, mem, len, err, sizeof(err)), 0);
    iomap_ring_format(&shim, mem, len, EVS, CMDS);
    h->ev_slots = 1u << 20;                 /* runs past the region */
    CU_ASSERT_EQUAL(iomap_ring_attach(&dmn, mem, len, err, sizeof(err)), -EINVAL);
    iomap_ring_format(&shim, mem, len, EVS, CMDS);
    h->cmd_off = h->ev_off;                 /* overlapping rings */
    CU_ASSERT_EQUAL(iomap_ring_attach(&dmn, mem, len, err, sizeof(err)), -EINVAL);
    iomap_ring_format(&shim, mem, len, EVS, CMDS);
    h->ev_slots = 3;
    CU_ASSERT_EQUAL(iomap_ring_attach(&dmn, mem, len, err, sizeof(err)), -EINVAL);
    CU_ASSERT_EQUAL(iomap_ring_attach(&dmn, mem, 100, err, sizeof(err)), -EINVAL);
    free(mem);
}

static void
test_events_wrap(void)
{
    size_t len;
    void *mem = region(&len);
    struct iomap_ring shim, dmn;
    struct iomap_event out[EVS];
    char err[128];
    uint64_t next = 0, expect = 0;

    iomap_ring_format(&shim, mem, len, EVS, CMDS);
    /* Start the free-running indices just below the 32-bit wrap. */
    shim.hdr->ev_prod = shim.hdr->ev_cons = UINT32_MAX - 3;
    iomap_ring_attach(&dmn, mem, len, err, sizeof(err));
    for (int round = 0; round < 10; round++) {
        int n;

        for (int i = 0; i < 5; i++) {
            struct iomap_event e = ev(IOMAP_EV_MAP, next++);

            CU_ASSERT_EQUAL(iomap_ring_post_event(&shim, &e), 0);
        }
        CU_ASSERT_EQUAL(iomap_ring_events_pending(&dmn), 5);
        n = iomap_ring_take_events(&dmn, out, 3);
        CU_ASSERT_EQUAL(n, 3);
        n += iomap_ring_take_events(&dmn, out + 3, EVS);
        CU_ASSERT_EQUAL(n, 5);
        for (int i = 0; i < n; i++) {
            CU_ASSERT_EQUAL(out[i].gfn, expect);
            CU_ASSERT_EQUAL(out[i].arg, expect + 100);
            CU_ASSERT_EQUAL(out[i].domid, 7);
            CU_ASSERT_EQUAL(out[i].ioservid, 2);
            expect++;
        }
    }
    CU_ASSERT_EQUAL(iomap_ring_take_events(&dmn, out, EVS), 0);
    free(mem);
}

static void
test_overflow(void)
{
    size_t len;
    void *mem = region(&len);
    struct iomap_ring shim, dmn;
    struct iomap_event out[EVS], e = ev(IOMAP_EV_UNMAP, 1);
    char err[128];

    iomap_ring_format(&shim, mem, len, EVS, CMDS);
    iomap_ring_attach(&dmn, mem, len, err, sizeof(err));
    for (int i = 0; i < EVS; i++)
        CU_ASSERT_EQUAL(iomap_ring_post_event(&shim, &e), 0);
    CU_ASSERT_FALSE(iomap_ring_overflowed(&dmn));
    CU_ASSERT_EQUAL(iomap_ring_post_event(&shim, &e), -ENOSPC);
    CU_ASSERT_TRUE(iomap_ring_overflowed(&dmn));
    CU_ASSERT_EQUAL(shim.hdr->lost, 1);
    /* Room again, but nothing is posted until the overflow is acknowledged. */
    CU_ASSERT_EQUAL(iomap_ring_take_events(&dmn, out, EVS), EVS);
    CU_ASSERT_EQUAL(iomap_ring_post_event(&shim, &e), -ENOSPC);
    CU_ASSERT_EQUAL(shim.hdr->lost, 2);
    iomap_ring_clear_overflow(&shim);
    CU_ASSERT_FALSE(iomap_ring_overflowed(&dmn));
    CU_ASSERT_EQUAL(iomap_ring_post_event(&shim, &e), 0);
    free(mem);
}

static void
test_corrupt_indices(void)
{
    size_t len;
    void *mem = region(&len);
    struct iomap_ring shim, dmn;
    struct iomap_event out[EVS];
    char err[128];

    iomap_ring_format(&shim, mem, len, EVS, CMDS);
    iomap_ring_attach(&dmn, mem, len, err, sizeof(err));
    shim.hdr->ev_prod = 1000;       /* more than a ring ahead */
    CU_ASSERT_EQUAL(iomap_ring_take_events(&dmn, out, EVS), -EPROTO);
    CU_ASSERT_EQUAL(shim.hdr->ev_cons, 0);  /* nothing consumed */
    free(mem);
}

static void
test_commands(void)
{
    size_t len;
    void *mem = region(&len);
    struct iomap_ring shim, dmn;
    struct iomap_cmd c = { .type = IOMAP_CMD_RELEASE, .domid = 4, .nr = 2,
                           .id = 9, .gfn = 0x1234, .mfn = 0xabcdef };
    struct iomap_cmd out[CMDS];
    char err[128];

    iomap_ring_format(&shim, mem, len, EVS, CMDS);
    iomap_ring_attach(&dmn, mem, len, err, sizeof(err));
    for (int i = 0; i < CMDS; i++)
        CU_ASSERT_EQUAL(iomap_ring_post_cmd(&dmn, &c), 0);
    CU_ASSERT_EQUAL(iomap_ring_cmd_space(&dmn), 0);
    CU_ASSERT_EQUAL(iomap_ring_post_cmd(&dmn, &c), -ENOSPC);
    CU_ASSERT_EQUAL(iomap_ring_take_cmds(&shim, out, CMDS), CMDS);
    CU_ASSERT_EQUAL(out[3].mfn, 0xabcdef);
    CU_ASSERT_EQUAL(out[3].id, 9);
    CU_ASSERT_EQUAL(iomap_ring_cmd_space(&dmn), CMDS);
    free(mem);
}

static void
test_little_endian(void)
{
    struct iomap_event e = ev(IOMAP_EV_MAP, 0x0102030405060708ULL);
    const uint8_t *b = (const uint8_t *)&e;

    iomap_event_to_le(&e);
    /* gfn is at byte offset 16; its lowest byte comes first on the wire. */
    CU_ASSERT_EQUAL(b[16], 0x08);
    CU_ASSERT_EQUAL(b[23], 0x01);
    iomap_event_from_le(&e);
    CU_ASSERT_EQUAL(e.gfn, 0x0102030405060708ULL);
    CU_ASSERT_STRING_EQUAL(iomap_event_name(IOMAP_EV_PAGE_REMOVED), "page-removed");
    CU_ASSERT_STRING_EQUAL(iomap_event_name(200), "unknown");
}

int
main(void)
{
    static const struct test_case tests[] = {
        { "format and attach", test_format_attach },
        { "attach rejects bad headers", test_attach_rejects },
        { "events across the index wrap", test_events_wrap },
        { "overflow marks and stops", test_overflow },
        { "corrupt producer index", test_corrupt_indices },
        { "command ring", test_commands },
        { "little-endian records", test_little_endian },
        { NULL, NULL },
    };

    return run_tests("ring", tests);
}
