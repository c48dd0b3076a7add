/* SPDX-License-Identifier: MIT */
/*
 * iomap-bench: the performance workloads of docs/PERFORMANCE.md.
 *
 * Every workload runs the real ring code (shim/ring.c) and the real core
 * (daemon/core/) -- the balloon workloads on the simulated host of
 * simhost/world.c with model emulators on the real IOREQ channel.  Only
 * the daemon's own time is measured: the program is linked with
 * -Wl,--wrap=core_process, so every call of core_process() (also the
 * ones world.c makes) is timed; time spent in the simulated hypervisor and
 * in the model emulators is not counted.
 *
 *   iomap-bench [--small] [--reps N] [--out FILE] [--only NAME]
 *
 * Prints a table and writes FILE (default bench/results.json).  There are
 * no pass/fail thresholds here: the goals are printed next to the figures.
 *
 * This file: the options, the figures, the timing of core_process(), the
 * table and results.json.  The workloads are in the other files (bench.h).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "daemon/core/core.h"
#include "daemon/core/tracker.h"
#include "shim/ring.h"
#include "simhost/world.h"
#include "util/log.h"

int small;
int reps = 5;

/* ---- time ------------------------------------------------------------------ */

uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Daemon time is wall time (CLOCK_MONOTONIC, ~50 ns a read; the thread CPU
 * clock is a system call of several us on this VM, too dear per call).
 * On a shared machine it includes preemption by other jobs: the paced
 * balloon also reports the p99 of each page's best latency over the
 * repeats, which filters that out.
 */
/* ---- timing every core_process() call (--wrap) --------------------------- */

int __real_core_process(struct core *c);
int __wrap_core_process(struct core *c);

struct bench_wrap bw;

/*
 * The RELEASE commands posted since the last look.  The core is opaque:
 * the ring is the one its owner gave it (bw_reset), read through the
 * shim's public ring layout.
 */
static void
scan_cmds(void)
{
    struct iomap_ring *r = bw.ring;
    uint32_t prod = __atomic_load_n(&r->hdr->cmd_prod, __ATOMIC_ACQUIRE);

    if (prod - bw.cmd_seen > r->cmd_slots)
        bw.cmd_seen = prod;     /* another ring (a new world) */
    for (; bw.cmd_seen != prod; bw.cmd_seen++) {
        const struct iomap_cmd *c = &r->cmd[bw.cmd_seen & (r->cmd_slots - 1)];

        if (c->type != IOMAP_CMD_RELEASE)
            continue;
        bw.last_release_ns = bw.daemon_ns;
        if (bw.lat == NULL)
            continue;
        for (uint32_t i = 0; i < c->nr; i++) {
            uint64_t g = c->gfn + i - bw.lat_base;

            if (g < bw.lat_n && bw.lat[g] == 0) {
                bw.lat[g] = bw.hybrid->now - bw.t_removed[g] + 1;
                bw.nlat++;
            }
        }
    }
}

int
__wrap_core_process(struct core *c)
{
    uint64_t t0 = now_ns(), dt;
    int n = __real_core_process(c);

    dt = now_ns() - t0;
    bw.daemon_ns += dt;
    bw.calls++;
    if (bw.hybrid) {
        /* The daemon's time passes on the world's clock too. */
        bw.hybrid->now += dt;
        bw.hybrid->sim.now_ns = bw.hybrid->now;
    }
    if (c == bw.core && bw.ring != NULL)
        scan_cmds();
    return n;
}

int __real_core_tick(struct core *c);
int __wrap_core_tick(struct core *c);

/* core_tick() is the daemon's too (every 100 ms in iomapd): timed apart. */
int
__wrap_core_tick(struct core *c)
{
    uint64_t t0 = now_ns(), dt;
    int n = __real_core_tick(c);

    dt = now_ns() - t0;
    tick_ns += dt;
    if (bw.hybrid) {
        bw.hybrid->now += dt;
        bw.hybrid->sim.now_ns = bw.hybrid->now;
    }
    return n;
}

void
bw_reset(const struct core *c, struct iomap_ring *r)
{
    memset(&bw, 0, sizeof(bw));
    bw.core = c;
    bw.ring = r;
    bw.cmd_seen = r ? __atomic_load_n(&r->hdr->cmd_prod, __ATOMIC_ACQUIRE) : 0;
}

/* ---- helpers ------------------------------------------------------------------- */

uint64_t rng_state = 0x9e3779b97f4a7c15u;

uint64_t
rnd(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(0x2545f4914f6cdd1d);
}

int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

int
in_child(void (*fn)(double *out), double *out, int nout)
{
    int p[2];
    pid_t pid;
    int st;

    if (pipe(p) < 0)
        return -errno;
    fflush(stdout);
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        double v[8] = { 0 };

        close(p[0]);
        fn(v);
        if (write(p[1], v, sizeof(double) * (size_t)nout) < 0)
            _exit(2);
        _exit(0);
    }
    close(p[1]);
    if (read(p[0], out, sizeof(double) * (size_t)nout) != (ssize_t)(sizeof(double) * (size_t)nout))
        nout = -1;
    close(p[0]);
    waitpid(pid, &st, 0);
    return nout < 0 || !WIFEXITED(st) || WEXITSTATUS(st) ? -EIO : 0;
}

/* ---- statistics -------------------------------------------------------------- */

static double
median(const struct metric *m)
{
    double s[MAX_REPS];

    if (m->n == 0)
        return 0;
    memcpy(s, m->v, (size_t)m->n * sizeof(double));
    qsort(s, (size_t)m->n, sizeof(double), cmp_double);
    return m->n % 2 ? s[m->n / 2] : (s[m->n / 2 - 1] + s[m->n / 2]) / 2;
}

static double
vmin(const struct metric *m)
{
    double x = m->n ? m->v[0] : 0;

    for (int i = 1; i < m->n; i++)
        if (m->v[i] < x)
            x = m->v[i];
    return x;
}

static double
vmax(const struct metric *m)
{
    double x = m->n ? m->v[0] : 0;

    for (int i = 1; i < m->n; i++)
        if (m->v[i] > x)
            x = m->v[i];
    return x;
}

void
add(struct metric *m, double v)
{
    if (m->n < MAX_REPS)
        m->v[m->n++] = v;
}

struct metric M[M_COUNT] = {
    [M_SEQ] = { "ingest_seq_events_per_s", "ev/s", ">= 20,000,000", 20e6, 0 },
    [M_SEQ_MAP] = { "ingest_seq_map_events_per_s", "ev/s", "", 0, 0 },
    [M_SEQ_UNMAP] = { "ingest_seq_unmap_events_per_s", "ev/s", "", 0, 0 },
    [M_RAND] = { "ingest_rand_events_per_s", "ev/s", ">= 10,000,000", 10e6, 0 },
    [M_RAND_MAP] = { "ingest_rand_map_events_per_s", "ev/s", "", 0, 0 },
    [M_RAND_UNMAP] = { "ingest_rand_unmap_events_per_s", "ev/s", "", 0, 0 },
    [M_B1G] = { "balloon_1g_ms", "ms", "<= 25", 25, 1 },
    [M_B1G_COLD] = { "balloon_1g_cold_ms", "ms", "", 0, 1 },
    [M_B1G_NS_PAGE] = { "balloon_1g_ns_per_page", "ns", "", 0, 1 },
    [M_P99] = { "balloon_p99_us", "us", "<= 100", 100, 1 },
    [M_P99_BEST] = { "balloon_p99_best_of_repeats_us", "us", "", 0, 1 },
    [M_P50] = { "balloon_p50_us", "us", "", 0, 1 },
    [M_PMAX] = { "balloon_max_us", "us", "", 0, 1 },
    [M_BPM] = { "bytes_per_mapping", "B", "<= 8", 8, 1 },
    [M_BPM_RSS] = { "bytes_per_mapping_rss", "B", "", 0, 1 },
    [M_BPM_RAND] = { "bytes_per_mapping_random_pages", "B", "", 0, 1 },
    [M_BPM_SPARSE] = { "bytes_per_mapping_sparse_worst", "B", "", 0, 1 },
    [M_API_RPS] = { "api_rps", "req/s", ">= 50,000", 50000, 0 },
    [M_API_STALL] = { "api_max_stall_ms", "ms", "<= 1", 1, 1 },
    [M_API_STALL_WALL] = { "api_max_stall_wall_ms", "ms", "", 0, 1 },
    [M_API_FLOOR] = { "api_socket_floor_rps", "rt/s", "", 0, 0 },
    [M_API_LIST_P999] = { "api_list_call_p999_ms", "ms", "", 0, 1 },
    [M_API_LIST_P50] = { "api_list_call_p50_ms", "ms", "", 0, 1 },
    [M_API_LIST_RATE] = { "api_list_mappings_per_s", "map/s", "", 0, 0 },
    [M_API_LIST_PAGE] = { "api_list_mappings_per_call", "maps", "", 0, 0 },
    [M_BASE_NEEDLESS] = { "baseline_needless_unmaps", "pages", "(iomapd: 0)", 0, 1 },
    [M_BASE_BLOCKED] = { "baseline_vcpu_blocked_ms", "ms", "(iomapd: 0)", 0, 1 },
    [M_BASE_RATIO] = { "baseline_ratio", "x", "> 1", 1, 0 },
    /* issue 15: the goals' table, then what stands beside each. */
    [M_BR_WARM] = { "balloon_real_warm_ms", "ms", "<= 10", 10, 1 },
    [M_BR_COLD] = { "balloon_real_cold_ms", "ms", "<= 20", 20, 1 },
    [M_BR_P99] = { "balloon_real_p99_us", "us", "<= 50", 50, 1 },
    [M_BR_EMU] = { "balloon_real_sim_and_emulators_ms", "ms", "", 0, 1 },
    [M_BR_TICK] = { "balloon_real_core_tick_ms", "ms", "", 0, 1 },
    [M_BR_OVERFLOWS] = { "balloon_real_overflows", "n", "", 0, 1 },
    [M_ING_RATIO] = { "ingest_vs_ideal_ratio", "x", ">= 0.5", 0.5, 0 },
    [M_ING_CORE] = { "ingest_shipped_ring_events_per_s", "ev/s", "", 0, 0 },
    [M_ING_IDEAL] = { "ingest_ideal_events_per_s", "ev/s", "", 0, 0 },
    [M_TR_TIME] = { "tracker_time_vs_best_peer_ratio", "x", "<= 1.0", 1.0, 1 },
    [M_TR_MEM] = { "tracker_memory_vs_best_peer_ratio", "x", "<= 1.5", 1.5, 1 },
    [M_BPM_WORST] = { "bytes_per_mapping_worst", "B", "<= 8", 8, 1 },
    [M_API_CPU] = { "api_cpu_us_per_status", "us", "<= 5", 5, 1 },
    [M_API_CAP_RATIO] = { "api_capacity_vs_constant_ratio", "x", ">= 0.8", 0.8, 0 },
    [M_API_RPS_16x8] = { "api_rps_16x8", "req/s", "", 0, 0 },
    [M_API_CONST_16x8] = { "api_constant_server_rps_16x8", "req/s", "", 0, 0 },
    [M_API_1x1] = { "api_rps_1x1", "req/s", "", 0, 0 },
    [M_API_FLOOR_RATIO] = { "api_1x1_vs_socket_floor_ratio", "x", "", 0, 0 },
    [M_LIST_LATE] = { "list_timer_lateness_p999_ms", "ms", "<= 0.5", 0.5, 1 },
    [M_LIST_RATE] = { "list_entries_per_s", "ent/s", ">= 5,000,000", 5e6, 0 },
    [M_BASE_TIME_RATIO] = { "baseline_vcpu_blocked_time_ratio", "x", ">= 1", 1, 0 },
    [M_BASE_BLOCK_MS] = { "baseline_vcpu_blocked_model_ms", "ms", "", 0, 1 },
    [M_IO_VCPU_MS] = { "iomapd_vcpu_hypercall_ms", "ms", "", 0, 1 },
    [M_BASE_REMAP_0] = { "baseline_emu_remap_ms_retouch_0", "ms", "", 0, 1 },
    [M_BASE_REMAP_25] = { "baseline_emu_remap_ms_retouch_25", "ms", "", 0, 1 },
    [M_BASE_REMAP_100] = { "baseline_emu_remap_ms_retouch_100", "ms", "", 0, 1 },
};

/* ---- output ------------------------------------------------------------------------ */

static void
print_table(void)
{
    printf("\n%-34s %14s %14s %14s  %-6s %s\n", "metric", "median", "min", "max",
           "unit", "goal");
    for (int i = 0; i < M_COUNT; i++) {
        const struct metric *m = &M[i];

        if (m->is_null) {
            printf("%-34s %14s %14s %14s  %-6s %s\n", m->name, "pending", "-", "-",
                   m->unit, m->goal);
            continue;
        }
        if (m->n == 0)
            continue;
        printf("%-34s %14.6g %14.6g %14.6g  %-6s %s%s\n", m->name, median(m), vmin(m),
               vmax(m), m->unit, m->goal,
               !m->goal_val ? "" :
               (m->lower_is_better ? median(m) <= m->goal_val : median(m) >= m->goal_val)
               ? "  (met)" : "  (NOT met)");
    }
    if (tr_nruns) {
        printf("\ntracker on each set implementation (ns per mapping, B per mapping; "
               "median of %d):\n  %-18s %-8s", tr_nruns, "layout", "set");
        for (int o = 0; o < TR_OPS; o++)
            printf(" %9s", tr_op_name[o]);
        printf(" %9s\n", "B/map");
        for (int l = 0; l < TR_LAYOUTS; l++)
            for (int i = 0; i < 3; i++) {
                printf("  %-18s %-8s", tr_layout_name[l], fset_impl_name(i));
                for (int o = 0; o <= TR_OPS; o++) {
                    struct metric t = { .n = tr_nruns };

                    for (int r = 0; r < tr_nruns; r++)
                        t.v[r] = tr_runs[l][i][r][o];
                    printf(" %9.1f", median(&t));
                }
                printf("\n");
            }
    }
    if (mx_n) {
        printf("\napi: iomapd-sim status req/s | constant server req/s | daemon CPU us/req "
               "(median of %d)\n", mx_n);
        for (int c = 0; c < MX_C; c++)
            for (int d = 0; d < MX_D; d++) {
                struct metric a = { .n = mx_n }, b = { .n = mx_n }, u = { .n = mx_n };

                for (int r = 0; r < mx_n; r++) {
                    a.v[r] = mx_rps[c][d][r];
                    b.v[r] = mx_const[c][d][r];
                    u.v[r] = mx_cpu[c][d][r];
                }
                printf("  %2d clients x depth %2d: %10.0f | %10.0f | %6.2f\n",
                       (int[]){ 1, 4, 16, 64 }[c], (int[]){ 1, 8, 32 }[d], median(&a),
                       median(&b), median(&u));
            }
    }
}

static void
json_num(FILE *f, double v)
{
    if (v == (double)(int64_t)v && v < 1e15 && v > -1e15)
        fprintf(f, "%" PRId64, (int64_t)v);
    else
        fprintf(f, "%.6g", v);
}

static char load_start[64];
static const char *loadavg(void);

static int
write_json(const char *path, const char *only)
{
    FILE *f = fopen(path, "w");
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    if (f == NULL)
        return -errno;
    fprintf(f, "{\n  \"schema\": \"iomapd-bench/2\",\n  \"size\": \"%s\",\n"
            "  \"repeats\": %d,\n  \"cpus\": %ld,\n  \"only\": %s%s%s,\n",
            small ? "small" : "full", reps, ncpu, only ? "\"" : "",
            only ? only : "null", only ? "\"" : "");
    /* What the figures were taken on: the docs table shows them. */
    fprintf(f, "  \"commit\": \"%s\",\n  \"build_flags\": \"%s\",\n"
            "  \"loadavg_start\": \"%s\",\n  \"loadavg_end\": \"%s\",\n",
            getenv("BENCH_COMMIT") ? getenv("BENCH_COMMIT") : "unknown", BENCH_CFLAGS,
            load_start, loadavg());
    /* The headline fields: the median of the repeats (null if not run). */
    for (int i = 0; i < M_COUNT; i++) {
        fprintf(f, "  \"%s\": ", M[i].name);
        if (M[i].is_null || M[i].n == 0)
            fprintf(f, "null");
        else
            json_num(f, median(&M[i]));
        fprintf(f, ",\n");
    }
    fprintf(f, "  \"detail\": {\n");
    for (int i = 0, first = 1; i < M_COUNT; i++) {
        if (M[i].n == 0)
            continue;
        fprintf(f, "%s    \"%s\": {\"unit\": \"%s\", \"goal\": \"%s\", \"median\": ",
                first ? "" : ",\n", M[i].name, M[i].unit, M[i].goal);
        json_num(f, median(&M[i]));
        fprintf(f, ", \"min\": ");
        json_num(f, vmin(&M[i]));
        fprintf(f, ", \"max\": ");
        json_num(f, vmax(&M[i]));
        fprintf(f, ", \"runs\": [");
        for (int k = 0; k < M[i].n; k++) {
            fprintf(f, "%s", k ? ", " : "");
            json_num(f, M[i].v[k]);
        }
        fprintf(f, "]}");
        first = 0;
    }
    fprintf(f, "\n  },\n  \"tracker\": [");
    for (int l = 0, first = 1; l < TR_LAYOUTS && tr_nruns; l++)
        for (int i = 0; i < 3; i++) {
            fprintf(f, "%s\n    {\"layout\": \"%s\", \"set\": \"%s\"", first ? "" : ",",
                    tr_layout_name[l], fset_impl_name(i));
            for (int o = 0; o <= TR_OPS; o++) {
                fprintf(f, ", \"%s%s\": [", o < TR_OPS ? tr_op_name[o] : "bytes_per_mapping",
                        o < TR_OPS ? "_ns" : "");
                for (int r = 0; r < tr_nruns; r++)
                    fprintf(f, "%s%.3f", r ? ", " : "", tr_runs[l][i][r][o]);
                fprintf(f, "]");
            }
            fprintf(f, "}");
            first = 0;
        }
    fprintf(f, "\n  ],\n  \"api_matrix\": [");
    for (int c = 0, first = 1; c < MX_C && mx_n; c++)
        for (int d = 0; d < MX_D; d++) {
            fprintf(f, "%s\n    {\"clients\": %d, \"depth\": %d, \"iomapd_rps\": [",
                    first ? "" : ",", (int[]){ 1, 4, 16, 64 }[c], (int[]){ 1, 8, 32 }[d]);
            for (int r = 0; r < mx_n; r++)
                fprintf(f, "%s%.0f", r ? ", " : "", mx_rps[c][d][r]);
            fprintf(f, "], \"constant_rps\": [");
            for (int r = 0; r < mx_n; r++)
                fprintf(f, "%s%.0f", r ? ", " : "", mx_const[c][d][r]);
            fprintf(f, "], \"daemon_cpu_us_per_req\": [");
            for (int r = 0; r < mx_n; r++)
                fprintf(f, "%s%.3f", r ? ", " : "", mx_cpu[c][d][r]);
            fprintf(f, "]}");
            first = 0;
        }
    fprintf(f, "\n  ]\n}\n");
    return fclose(f) == 0 ? 0 : -errno;
}

static const char *
loadavg(void)
{
    static char buf[64];
    FILE *f = fopen("/proc/loadavg", "r");

    buf[0] = 0;
    if (f) {
        if (fgets(buf, sizeof(buf), f) == NULL)
            buf[0] = 0;
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = 0;
    for (char *p = buf; *p; p++)
        if (*p == '"' || *p == '\\')
            *p = ' ';
    return buf;
}

static void
usage(void)
{
    fprintf(stderr, "usage: iomap-bench [--small] [--reps N] [--out FILE] "
            "[--only ingest_seq|ingest_rand|balloon_1g|balloon_paced|memory|api|\n"
            "         ingest_ab|tracker_ab|balloon_real|baseline_time|api_matrix|list_real]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    const char *out = "bench/results.json", *only = NULL;
    static const struct {
        const char *name;
        void (*fn)(void);
    } W[] = {
        { "ingest_seq", bench_ingest_seq },
        { "ingest_rand", bench_ingest_rand },
        { "balloon_1g", bench_balloon_1g },
        { "balloon_paced", bench_balloon_paced },
        { "memory", bench_memory },
        { "api", bench_api },
        { "ingest_ab", bench_ingest_ab },
        { "tracker_ab", bench_tracker_ab },
        { "balloon_real", bench_balloon_real },
        { "baseline_time", bench_baseline_time },
        { "api_matrix", bench_api_matrix },
        { "list_real", bench_list_real },
    };
    int rc, explicit_reps = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--small") == 0)
            small = 1;
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
            explicit_reps = 1;
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out = argv[++i];
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else
            usage();
    }
    if (small && !explicit_reps)
        reps = 2;
    if (reps < 1 || reps > MAX_REPS)
        usage();
    log_init("iomap-bench", LOG_LVL_ERR);
    snprintf(load_start, sizeof(load_start), "%s", loadavg());
    printf("iomap-bench: %s size, %d repeats, %ld cpus\n", small ? "small" : "full",
           reps, sysconf(_SC_NPROCESSORS_ONLN));
    for (size_t i = 0; i < sizeof(W) / sizeof(W[0]); i++) {
        uint64_t t0;

        if (only && strcmp(only, W[i].name) != 0)
            continue;
        printf("running %s...\n", W[i].name);
        fflush(stdout);
        t0 = now_ns();
        W[i].fn();
        printf("  %s: %.1f s\n", W[i].name, (double)(now_ns() - t0) / 1e9);
    }
    /* The API against the socketpair floor, both measured above. */
    if (M[M_API_1x1].n && M[M_API_FLOOR].n)
        add(&M[M_API_FLOOR_RATIO], median(&M[M_API_1x1]) / median(&M[M_API_FLOOR]));
    print_table();
    rc = write_json(out, only);
    if (rc < 0) {
        fprintf(stderr, "iomap-bench: cannot write %s: %s\n", out, strerror(-rc));
        return 1;
    }
    printf("\nwrote %s\n", out);
    return 0;
}
