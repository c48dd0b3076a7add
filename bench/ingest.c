/* SPDX-License-Identifier: MIT */
/*
 * Ingest: how fast the core takes map and unmap events off a ring.  A
 * bare ring and core, no simulated hypervisor: the ring is pre-filled,
 * then one core_process() consumes it.  The bare core is also what the
 * memory workload fills (memory.c).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "daemon/core/core.h"
#include "shim/ring.h"
#include "util/log.h"

/* ---- a bare ring + core ------------------------------------------------------ */

static void kick_noop(void *arg) { (void)arg; }
static uint64_t clock_real(void *arg) { (void)arg; return now_ns(); }

void
bare_init(struct bare *b, uint32_t ev_slots)
{
    size_t len = IOMAP_REGION_SIZE((size_t)ev_slots, (size_t)4096);
    struct core_env env = { .ring = &b->ring, .clock = clock_real,
                            .kick = kick_noop };

    b->mem = aligned_alloc(4096, (len + 4095) & ~(size_t)4095);
    if (b->mem == NULL)
        fatalx("out of memory for a ring of %u slots", ev_slots);
    memset(b->mem, 0, len);
    if (iomap_ring_format(&b->ring, b->mem, len, ev_slots, 4096) < 0)
        fatalx("cannot format the ring");
    if ((b->core = core_new(&env)) == NULL)
        fatalx("cannot create the core");
}

void
bare_fini(struct bare *b)
{
    core_free(b->core);
    b->core = NULL;
    free(b->mem);
}

void
post_or_die(struct bare *b, const struct iomap_event *ev)
{
    if (iomap_ring_post_event(&b->ring, ev) < 0)
        fatalx("event ring full while pre-filling");
}

double
drain(struct bare *b, uint32_t expect)
{
    uint64_t t0 = now_ns();
    int n = core_process(b->core);
    uint64_t t1 = now_ns();

    if (n != (int)expect)
        fatalx("daemon consumed %d events, %u were posted", n, expect);
    /* The daemon keeps consuming commands it cannot post: there are none. */
    return (double)(t1 - t0) / 1e9;
}

uint64_t
bare_mappings(const struct bare *b)
{
    struct core_status st;

    core_status(b->core, &st);
    return st.mappings;
}

struct iomap_event
mk(uint8_t type, unsigned emu, uint64_t gfn)
{
    struct iomap_event ev = { .type = type, .domid = 1, .emu_domid = 0,
                              .ioservid = (uint16_t)(emu + 1), .nr = 1,
                              .gfn = gfn, .arg = gfn + 0x100000000u };
    return ev;
}

/* After a map-and-unmap round: nothing left, every unmap matched a map. */
static int
balanced(const struct bare *b)
{
    return core_stats(b->core)->unmatched_unmaps == 0 && bare_mappings(b) == 0;
}

/* ---- the workloads ------------------------------------------------------------- */

/*
 * Sequential: 4 emulators mapping contiguous DMA buffers of 256 pages (1
 * MiB), one record per page (nr = 1: the shim coalesces runs, this is the
 * worst case per page), then unmapping them.
 */
void
bench_ingest_seq(void)
{
    uint32_t slots = small ? 1u << 14 : 1u << 20;
    struct bare b;

    bare_init(&b, slots);
    for (int r = -1; r < reps; r++) {
        double tm, tu;
        uint32_t n = 0;
        uint64_t base = (uint64_t)(r + 1) * 7 * 4096;  /* move around a bit */

        for (uint32_t buf = 0; n < slots; buf++)
            for (uint32_t p = 0; p < 256 && n < slots; p++, n++) {
                struct iomap_event ev = mk(IOMAP_EV_MAP, buf % NEMU,
                                           base + (uint64_t)(buf / NEMU) * 256 + p);
                post_or_die(&b, &ev);
            }
        tm = drain(&b, slots);
        n = 0;
        for (uint32_t buf = 0; n < slots; buf++)
            for (uint32_t p = 0; p < 256 && n < slots; p++, n++) {
                struct iomap_event ev = mk(IOMAP_EV_UNMAP, buf % NEMU,
                                           base + (uint64_t)(buf / NEMU) * 256 + p);
                post_or_die(&b, &ev);
            }
        tu = drain(&b, slots);
        if (!balanced(&b))
            fatalx("ingest_seq: books do not balance");
        if (r < 0)
            continue;           /* warm-up: leaves get allocated */
        add(&M[M_SEQ], 2.0 * slots / (tm + tu));
        add(&M[M_SEQ_MAP], slots / tm);
        add(&M[M_SEQ_UNMAP], slots / tu);
    }
    bare_fini(&b);
}

/* Random: single pages uniformly over a 64 GiB guest, 4 emulators. */
void
bench_ingest_rand(void)
{
    uint32_t slots = small ? 1u << 14 : 1u << 20;
    uint64_t *g = malloc(slots * sizeof(*g));
    struct bare b;

    if (g == NULL)
        fatalx("out of memory");
    bare_init(&b, slots);
    for (int r = -1; r < reps; r++) {
        double tm, tu;

        for (uint32_t i = 0; i < slots; i++)
            g[i] = rnd() % GUEST_64G;
        for (uint32_t i = 0; i < slots; i++) {
            struct iomap_event ev = mk(IOMAP_EV_MAP, i % NEMU, g[i]);
            post_or_die(&b, &ev);
        }
        tm = drain(&b, slots);
        for (uint32_t i = 0; i < slots; i++) {
            struct iomap_event ev = mk(IOMAP_EV_UNMAP, i % NEMU, g[i]);
            post_or_die(&b, &ev);
        }
        tu = drain(&b, slots);
        if (!balanced(&b))
            fatalx("ingest_rand: books do not balance");
        if (r < 0)
            continue;
        add(&M[M_RAND], 2.0 * slots / (tm + tu));
        add(&M[M_RAND_MAP], slots / tm);
        add(&M[M_RAND_UNMAP], slots / tu);
    }
    bare_fini(&b);
    free(g);
}
