/* SPDX-License-Identifier: MIT */
/*
 * iomap-bench's private header: what the workload files share with
 * main.c (options, the figures, the timing of core_process(), helpers).
 *
 *   main.c      options, the figures table, results.json, the --wrap timing
 *   ingest.c    a bare ring and core; ingest_seq, ingest_rand
 *   balloon.c   the simulated host; balloon_1g, balloon_paced
 *   baseline.c  the paced balloon's trace under Xen's global invalidate
 *   memory.c    bytes per mapping of the core's books; the key sets
 *   pairs.c     issue 15's A/B pairs: ingest vs an ideal consumer, the
 *               tracker on each set implementation, the balloon on the
 *               shipped rings and the global invalidate in time
 *   api.c       the real iomapd and iomap-sim over the control socket;
 *               iomapd-sim under 1..64 clients x depth 1..32 against a
 *               constant-reply libevent server; mapping.list of 10 M in
 *               the real daemon (its 1 ms timer's lateness)
 *   api_list.c  mapping.list in-process through json-api (ctl_request)
 *
 * Only public headers: daemon/core/core.h, never core_priv.h.
 */
#ifndef IOMAP_BENCH_H
#define IOMAP_BENCH_H

#include <stdint.h>

#include "shim/ring.h"

struct core;
struct world;

#define US UINT64_C(1000)
#define MS UINT64_C(1000000)
#define MAX_REPS 32

#define NEMU 4                          /* emulators in every workload */
#define GUEST_64G (UINT64_C(1) << 24)   /* gfns in 64 GiB */

/* main.c: options. */
extern int small;                       /* --small */
extern int reps;                        /* --reps */

/* main.c: the figures, in the order of results.json. */
struct metric {
    const char *name;
    const char *unit;
    const char *goal;           /* human text */
    double goal_val;
    int lower_is_better;
    double v[MAX_REPS];
    int n;
    int is_null;
};

enum {
    M_SEQ, M_SEQ_MAP, M_SEQ_UNMAP, M_RAND, M_RAND_MAP, M_RAND_UNMAP,
    M_B1G, M_B1G_COLD, M_B1G_NS_PAGE, M_P99, M_P99_BEST, M_P50, M_PMAX,
    M_BPM, M_BPM_RSS, M_BPM_RAND, M_BPM_SPARSE,
    M_API_RPS, M_API_STALL, M_API_STALL_WALL, M_API_FLOOR, M_API_LIST_P999, M_API_LIST_P50, M_API_LIST_RATE, M_API_LIST_PAGE,
    M_BASE_NEEDLESS, M_BASE_BLOCKED, M_BASE_RATIO,
    /* issue 15 (pairs.c, api.c) */
    M_BR_WARM, M_BR_COLD, M_BR_P99, M_BR_EMU, M_BR_TICK, M_BR_OVERFLOWS,
    M_ING_RATIO, M_ING_CORE, M_ING_IDEAL,
    M_TR_TIME, M_TR_MEM, M_BPM_WORST,
    M_API_CPU, M_API_CAP_RATIO, M_API_RPS_16x8, M_API_CONST_16x8, M_API_1x1, M_API_FLOOR_RATIO,
    M_LIST_LATE, M_LIST_RATE,
    M_BASE_TIME_RATIO, M_BASE_BLOCK_MS, M_IO_VCPU_MS, M_BASE_REMAP_0, M_BASE_REMAP_25,
    M_BASE_REMAP_100,
    M_COUNT
};

extern struct metric M[M_COUNT];
void     add(struct metric *m, double v);

/* main.c: helpers. */
uint64_t now_ns(void);
extern uint64_t rng_state;
uint64_t rnd(void);
/* Run fn in a child so that each measurement starts from a fresh heap. */
int      in_child(void (*fn)(double *out), double *out, int nout);
int      cmp_u64(const void *a, const void *b);
int      cmp_double(const void *a, const void *b);

/*
 * main.c: every core_process() call is timed (-Wl,--wrap=core_process).
 * bw_reset(c, r) starts a measurement: the commands c posts on r are
 * watched for RELEASE from now on.  bw_reset(NULL, NULL) watches nothing.
 */
struct bench_wrap {
    uint64_t daemon_ns;         /* accumulated daemon time */
    uint64_t calls;
    uint64_t last_release_ns;   /* daemon_ns when a RELEASE was last posted */
    const struct core *core;    /* the core whose commands are watched */
    struct iomap_ring *ring;    /* ... on this ring (the core is opaque) */
    uint32_t cmd_seen;          /* command ring producer index seen */
    struct world *hybrid;       /* advance this world's clock by daemon time */
    /* per-page latency (hybrid mode) */
    uint64_t *t_removed;        /* by gfn - lat_base */
    uint64_t lat_base, lat_n;
    uint64_t *lat;              /* by gfn - lat_base: removed -> released, ns */
    uint64_t nlat;
};
extern struct bench_wrap bw;
void     bw_reset(const struct core *c, struct iomap_ring *r);

/* ingest.c: a bare ring and core (no simulated hypervisor). */
struct bare {
    void *mem;
    struct iomap_ring ring;
    struct core *core;
};
void     bare_init(struct bare *b, uint32_t ev_slots);
void     bare_fini(struct bare *b);
void     post_or_die(struct bare *b, const struct iomap_event *ev);
/* Consume the pre-filled ring; returns daemon seconds. */
double   drain(struct bare *b, uint32_t expect);
/* Mappings in b's books (0 after everything mapped was unmapped). */
uint64_t bare_mappings(const struct bare *b);
/* An event of domain 1 for emulator emu (0:emu+1). */
struct iomap_event mk(uint8_t type, unsigned emu, uint64_t gfn);

/* memory.c: sizes, and the mapping sets of memory, compare and api. */
uint64_t heap_bytes(void);
uint64_t rss_bytes(void);
enum { LAYOUT_BUFFERS, LAYOUT_RANDOM, LAYOUT_DOUBLE, LAYOUT_SPARSE };
/* keys[i] = set << 40 | gfn, 8 sets (4 emulators x 2 guests). */
uint64_t *gen_keys(int layout, uint64_t n);

/* baseline.c: the paced balloon's trace replayed under the baseline. */
struct trace;
void     baseline_compare(const struct trace *tr, uint64_t answer_ns,
                          uint64_t io_unmaps, uint64_t io_needless,
                          uint64_t io_inval, int print);

/* pairs.c: the tracker on each set implementation (daemon/core/tracker.h). */
#define TR_LAYOUTS 4            /* = the LAYOUT_* of gen_keys */
#define TR_OPS     4            /* add, test, next, del; [TR_OPS]: bytes/mapping */
extern const char *const tr_layout_name[TR_LAYOUTS];
extern const char *const tr_op_name[TR_OPS];
extern double tr_runs[TR_LAYOUTS][3][MAX_REPS][TR_OPS + 1];
extern int tr_nruns;
extern uint64_t tick_ns;        /* core_tick time (main.c wraps it) */

/* api.c: the clients x depth matrix. */
#define MX_C 4
#define MX_D 3
extern double mx_rps[MX_C][MX_D][MAX_REPS], mx_const[MX_C][MX_D][MAX_REPS],
              mx_cpu[MX_C][MX_D][MAX_REPS];
extern int mx_n;

/* api_list.c: mapping.list in-process; v[0..5] (see bench_api). */
void     api_stall_child(double *v);

/* The workloads. */
void     bench_ingest_seq(void);
void     bench_ingest_rand(void);
void     bench_balloon_1g(void);
void     bench_balloon_paced(void);
void     bench_memory(void);
void     bench_api(void);
void     bench_ingest_ab(void);
void     bench_tracker_ab(void);
void     bench_balloon_real(void);
void     bench_baseline_time(void);
void     bench_api_matrix(void);
void     bench_list_real(void);

#endif
