/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cunit_main.h"
#include "daemon/core/tracker.h"
#include "util/hmap.h"

static void
test_basic(void)
{
    struct fset fs;

    fset_init(&fs);
    CU_ASSERT_EQUAL(fset_count(&fs, 5), 0);
    CU_ASSERT_EQUAL(fset_del(&fs, 5), -ENOENT);     /* no underflow */
    CU_ASSERT_EQUAL(fset_add(&fs, 5), 1);
    CU_ASSERT_EQUAL(fset_add(&fs, 5), 2);
    CU_ASSERT_EQUAL(fset_add(&fs, 6), 1);
    CU_ASSERT_EQUAL(fs.frames, 2);
    CU_ASSERT_EQUAL(fs.total, 3);
    CU_ASSERT_EQUAL(fset_count(&fs, 5), 2);
    CU_ASSERT_EQUAL(fset_del(&fs, 5), 1);
    CU_ASSERT_EQUAL(fset_count(&fs, 5), 1);
    CU_ASSERT_EQUAL(fset_take(&fs, 6), 1);
    CU_ASSERT_EQUAL(fset_take(&fs, 6), 0);
    CU_ASSERT_EQUAL(fset_del(&fs, 5), 0);
    CU_ASSERT_EQUAL(fset_del(&fs, 5), -ENOENT);
    CU_ASSERT_EQUAL(fs.frames, 0);
    CU_ASSERT_EQUAL(fs.total, 0);
    fset_free(&fs);
}

static void
test_far_apart(void)
{
    struct fset fs;
    const uint64_t g[] = { 0, 4095, 4096, 1u << 24, (1ull << 40) + 7,
                           (1ull << 52) - 1 };

    fset_init(&fs);
    for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++)
        CU_ASSERT_EQUAL(fset_add(&fs, g[i]), 1);
    for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
        CU_ASSERT_EQUAL(fset_count(&fs, g[i]), 1);
        CU_ASSERT_EQUAL(fset_count(&fs, g[i] ^ 1), 0);   /* neighbours unset */
    }
    /* In-order iteration. */
    CU_ASSERT_EQUAL(fset_next(&fs, 0), 0);
    CU_ASSERT_EQUAL(fset_next(&fs, 1), 4095);
    CU_ASSERT_EQUAL(fset_next(&fs, 4096), 4096);
    CU_ASSERT_EQUAL(fset_next(&fs, 4097), 1u << 24);
    CU_ASSERT_EQUAL(fset_next(&fs, (1u << 24) + 1), (1ull << 40) + 7);
    CU_ASSERT_EQUAL(fset_next(&fs, (1ull << 40) + 8), (1ull << 52) - 1);
    CU_ASSERT_EQUAL(fset_next(&fs, 1ull << 52), UINT64_MAX);
    fset_free(&fs);
}

/* Against a plain reference model, with random operations. */
static void
test_random_vs_reference(void)
{
    enum { SPAN = 1 << 16, OPS = 200000 };
    uint16_t *ref = calloc(SPAN, sizeof(*ref));
    struct fset fs;
    uint64_t frames = 0, total = 0;
    unsigned seed = 12345;

    fset_init(&fs);
    for (int i = 0; i < OPS; i++) {
        uint64_t g = (uint64_t)(rand_r(&seed) % SPAN) * 37 % SPAN;
        int op = rand_r(&seed) % 3;

        if (op == 0) {
            CU_ASSERT_EQUAL_FATAL(fset_add(&fs, g), ref[g] + 1);
            frames += ref[g] == 0;
            ref[g]++;
            total++;
        } else if (op == 1) {
            int rc = fset_del(&fs, g);

            if (ref[g] == 0) {
                CU_ASSERT_EQUAL_FATAL(rc, -ENOENT);
            } else {
                ref[g]--;
                total--;
                frames -= ref[g] == 0;
                CU_ASSERT_EQUAL_FATAL(rc, ref[g]);
            }
        } else {
            CU_ASSERT_EQUAL_FATAL(fset_count(&fs, g), ref[g]);
        }
    }
    CU_ASSERT_EQUAL(fs.frames, frames);
    CU_ASSERT_EQUAL(fs.total, total);
    /* Iteration visits exactly the reference's members, in order. */
    for (uint64_t g = fset_next(&fs, 0), want = 0; ; g = fset_next(&fs, g + 1)) {
        while (want < SPAN && ref[want] == 0)
            want++;
        if (want == SPAN) {
            CU_ASSERT_EQUAL(g, UINT64_MAX);
            break;
        }
        CU_ASSERT_EQUAL_FATAL(g, want);
        want++;
    }
    fset_free(&fs);
    free(ref);
}

/*
 * The same tests on every implementation of the sets (tracker.h): ours,
 * CRoaring's and libJudy's behind the one API.
 */
static void
on_each_impl(void (*fn)(void))
{
    for (int i = 0; i < FSET_IMPL_N; i++) {
        struct fset fs;

        CU_ASSERT_EQUAL_FATAL(fset_select(fset_impl_name(i)), 0);
        fset_init(&fs);
        CU_ASSERT_EQUAL(fs.impl, i);
        fset_free(&fs);
        fn();
    }
    CU_ASSERT_EQUAL(fset_select("no-such-set"), -EINVAL);
    CU_ASSERT_EQUAL(fset_select("fset"), 0);
}

static void test_basic_all(void) { on_each_impl(test_basic); }
static void test_far_apart_all(void) { on_each_impl(test_far_apart); }
static void test_random_all(void) { on_each_impl(test_random_vs_reference); }

/* Our leaves: a sorted array that becomes a bitmap past FSET_ARRAY_MAX. */
static void
test_leaf_forms(void)
{
    struct fset fs;

    fset_select("fset");
    fset_init(&fs);
    /* Descending inserts into one leaf: array, grown, then a bitmap. */
    for (uint32_t i = 0; i < FSET_ARRAY_MAX + 10; i++)
        CU_ASSERT_EQUAL_FATAL(fset_add(&fs, 8192 + 4000 - i * 3), 1);
    for (uint32_t i = 0; i < FSET_ARRAY_MAX + 10; i++) {
        CU_ASSERT_EQUAL_FATAL(fset_count(&fs, 8192 + 4000 - i * 3), 1);
        CU_ASSERT_EQUAL_FATAL(fset_count(&fs, 8192 + 4001 - i * 3), 0);
    }
    CU_ASSERT_EQUAL(fset_next(&fs, 0), 8192 + 4000 - (FSET_ARRAY_MAX + 9) * 3);
    CU_ASSERT_EQUAL(fset_next(&fs, 8192 + 3999), 8192 + 4000);
    CU_ASSERT_EQUAL(fset_next(&fs, 8192 + 4001), UINT64_MAX);
    /* Counts: 1 and 2 are bits, 3 and more go to the hash map. */
    for (int k = 1; k <= 4; k++)
        CU_ASSERT_EQUAL(fset_add(&fs, 77), k);
    CU_ASSERT_EQUAL(fset_count(&fs, 77), 4);
    CU_ASSERT_EQUAL(fset_del(&fs, 77), 3);
    CU_ASSERT_EQUAL(fset_del(&fs, 77), 2);
    CU_ASSERT_EQUAL(fset_del(&fs, 77), 1);
    CU_ASSERT_EQUAL(fset_take(&fs, 77), 1);
    CU_ASSERT_EQUAL(fset_count(&fs, 77), 0);
    CU_ASSERT_EQUAL(fs.total, FSET_ARRAY_MAX + 10);
    fset_free(&fs);
}

static void
test_hmap(void)
{
    struct hmap h;
    unsigned seed = 7;
    enum { N = 50000 };
    uint64_t *keys = malloc(N * sizeof(*keys));

    hmap_init(&h);
    CU_ASSERT_EQUAL(hmap_get(&h, 0), HMAP_NONE);
    for (uint32_t i = 0; i < N; i++) {
        keys[i] = ((uint64_t)rand_r(&seed) << 20) ^ i;
        CU_ASSERT_EQUAL_FATAL(hmap_put(&h, keys[i], i), 0);
    }
    CU_ASSERT_EQUAL(h.len, N);
    /* Delete every other key: the rest must stay reachable (backward shift). */
    for (uint32_t i = 0; i < N; i += 2)
        CU_ASSERT_EQUAL_FATAL(hmap_del(&h, keys[i]), i);
    for (uint32_t i = 0; i < N; i++)
        CU_ASSERT_EQUAL_FATAL(hmap_get(&h, keys[i]), i % 2 ? i : HMAP_NONE);
    CU_ASSERT_EQUAL(hmap_del(&h, keys[0]), HMAP_NONE);
    CU_ASSERT_EQUAL(h.len, N / 2);
    hmap_put(&h, 0, 42);
    CU_ASSERT_EQUAL(hmap_get(&h, 0), 42);     /* key 0 is a valid key */
    hmap_free(&h);
    free(keys);
}

int
main(void)
{
    static const struct test_case tests[] = {
        { "add, delete, take, count (each implementation)", test_basic_all },
        { "frames far apart, iteration (each implementation)", test_far_apart_all },
        { "random operations against a reference (each implementation)", test_random_all },
        { "array and bitmap leaves, counts above 2", test_leaf_forms },
        { "hash map with backward-shift deletion", test_hmap },
        { NULL, NULL },
    };

    return run_tests("tracker", tests);
}
