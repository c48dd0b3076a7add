/* SPDX-License-Identifier: MIT */
/*
 * The mapping tracker (daemon/core/tracker.h) measured as a data
 * structure, like a unit test would use it, against the alternatives:
 * libJudy (if installed, through dlopen) and a plain hash map.  Each
 * (layout, structure) pair runs in a fresh child; main.c prints the table.
 */
#include "config.h"

#include <dlfcn.h>
#include <inttypes.h>
#include <stdlib.h>

#include "bench/bench.h"
#include "daemon/core/tracker.h"
#include "util/hmap.h"
#include "util/log.h"

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

const char *const impl_name[IMPL_N] = {
    "fset (radix of 4096-bit leaves + hmap)", "Judy1 + JudyL (libJudy)",
    "hmap (gfn -> count)"
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

struct cmp_res cmp_out[CMP_LAYOUTS][IMPL_N];
int cmp_have[CMP_LAYOUTS][IMPL_N];
const char *const layout_name[CMP_LAYOUTS] = { "buffers", "random_pages" };

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

void
bench_compare(void)
{
    for (cmp_layout = 0; cmp_layout < CMP_LAYOUTS; cmp_layout++)
        for (cmp_impl = 0; cmp_impl < IMPL_N; cmp_impl++) {
            double v[4];

            if (in_child(cmp_child, v, 4) < 0 || v[0] < 0)
                continue;
            cmp_out[cmp_layout][cmp_impl] = (struct cmp_res){ v[0], v[1], v[2], v[3] };
            cmp_have[cmp_layout][cmp_impl] = 1;
        }
}
