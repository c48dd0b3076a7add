/* SPDX-License-Identifier: MIT */
/*
 * Memory: bytes per mapping of the core's books, filled with 10,000,000
 * mappings through a bare ring (ingest.c), each layout in a fresh child.
 * Also the mapping sets the tracker comparison and the api workload use.
 */
#include "config.h"

#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench/bench.h"
#include "shim/ring.h"
#include "util/log.h"

uint64_t
heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();

    return mi.uordblks + mi.hblkhd;
}

uint64_t
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

/*
 * The mapping set: 4 emulators x 2 guests of 64 GiB.  BUFFERS: DMA
 * buffers of 1..512 pages at random places; RANDOM: single pages
 * uniformly; DOUBLE: single pages uniformly, each mapped twice (the
 * worst layout of issue 15); SPARSE: one page per 16 MiB leaf.  keys[i] = set << 40 | gfn.
 */
uint64_t *
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
        } else if (layout == LAYOUT_DOUBLE) {
            /* Scattered single pages, each mapped twice by its emulator. */
            uint64_t g = set << 40 | (rnd() % GUEST_64G);

            k[i++] = g;
            if (i < n)
                k[i++] = g;
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
    if (bare_mappings(&b) != n)
        fatalx("memory: %" PRIu64 " mappings tracked, %" PRIu64 " made",
               bare_mappings(&b), n);
    *heap_bpm = (double)(heap_bytes() - h0) / (double)n;
    *rss_bpm = (double)(rss_bytes() - r0) / (double)n;
    bare_fini(&b);
    free(k);
}

static void
mem_child(double *v)
{
    uint64_t n = small ? 200000 : 10000000;

    mem_daemon(LAYOUT_BUFFERS, n, &v[0], &v[1]);
    mem_daemon(LAYOUT_RANDOM, n, &v[2], &v[3]);
    mem_daemon(LAYOUT_SPARSE, small ? 20000 : 200000, &v[4], &v[5]);
    mem_daemon(LAYOUT_DOUBLE, n, &v[6], &v[7]);
}

void
bench_memory(void)
{
    /* Deterministic in the mapping set; two runs show allocator noise. */
    for (int r = 0; r < (reps < 3 ? reps : 3); r++) {
        double v[8];

        rng_state = 0x9e3779b97f4a7c15u + (uint64_t)r;
        if (in_child(mem_child, v, 8) < 0)
            fatalx("memory workload failed");
        add(&M[M_BPM], v[0] > v[1] ? v[0] : v[1]);
        add(&M[M_BPM_RSS], v[1]);
        add(&M[M_BPM_RAND], v[2] > v[3] ? v[2] : v[3]);
        add(&M[M_BPM_SPARSE], v[4] > v[5] ? v[4] : v[5]);
        add(&M[M_BPM_WORST], v[6] > v[7] ? v[6] : v[7]);
    }
}
