/* SPDX-License-Identifier: MIT */
/*
 * Bench hooks of iomapd-sim (never in the production iomapd): what
 * make bench needs to measure the real daemon (issue 15).
 *
 *   --bench-preload N   put N mappings in the books quickly: MAP events of
 *                       4 emulators (0:1:1 .. 0:1:4) of domain 1, DMA
 *                       buffers of 1..512 pages over a 64 GiB guest, posted
 *                       on the daemon's ring in chunks from the loop once
 *                       the start-up resync is done (the simulated
 *                       hypervisor does not know them: a listing bench, not
 *                       a balloon one).
 *   --bench-probe FILE  a 1 ms timer on the daemon's loop; its lateness is
 *                       kept in a histogram of 10 us bins, written to FILE
 *                       (then reset) on SIGUSR1: lines "lateness_us count".
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "daemon/iomapd.h"
#include "daemon/core/core.h"
#include "shim/ring.h"
#include "util/clock.h"
#include "util/log.h"

#define PROBE_BINS 100000       /* 10 us each: up to 1 s */
#define PROBE_NS   1000000

static struct {
    struct iomapd *io;
    uint64_t preload_left, rng, buf_gfn, buf_left;
    unsigned buf_emu;
    struct event *ev_preload, *ev_probe, *ev_usr1;
    const char *probe_path;
    uint64_t armed_at;
    uint32_t *hist;
} B;

static uint64_t
rnd(void)
{
    B.rng ^= B.rng >> 12;
    B.rng ^= B.rng << 25;
    B.rng ^= B.rng >> 27;
    return B.rng * UINT64_C(0x2545f4914f6cdd1d);
}

static void
on_preload(evutil_socket_t fd, short what, void *arg)
{
    struct iomapd *io = arg;
    struct iomap_ring *r = io->be->ring(io->bep);
    struct core_status cs;
    struct timeval soon = { 0, 1000 };
    uint32_t n = 0;

    (void)fd;
    (void)what;
    core_status(io->core, &cs);
    if (cs.resyncing) {
        event_add(B.ev_preload, &soon);
        return;
    }
    while (B.preload_left && n < 1u << 16) {
        struct iomap_event ev = { .type = IOMAP_EV_MAP, .domid = 1, .nr = 1 };

        if (iomap_ring_event_space(r) == 0) {
            core_process(io->core);
            continue;
        }
        if (B.buf_left == 0) {
            B.buf_left = 1 + rnd() % 512;
            B.buf_gfn = rnd() % ((UINT64_C(1) << 24) - 512);
            B.buf_emu = (unsigned)(rnd() % 4);
        }
        ev.emu_domid = 0;
        ev.ioservid = (uint16_t)(1 + B.buf_emu);
        ev.gfn = B.buf_gfn++;
        ev.arg = ev.gfn + UINT64_C(0x100000000);
        B.buf_left--;
        if (iomap_ring_post_event(r, &ev) < 0)
            fatalx("bench-preload: ring refused an event");
        B.preload_left--;
        n++;
    }
    core_process(io->core);
    if (B.preload_left)
        event_add(B.ev_preload, &soon);
    else
        log_info("bench-preload: done");
}

static void
probe_arm(void)
{
    struct timeval tv = { 0, PROBE_NS / 1000 };

    B.armed_at = clock_now_ns();
    event_add(B.ev_probe, &tv);
}

static void
on_probe(evutil_socket_t fd, short what, void *arg)
{
    uint64_t late = clock_now_ns() - B.armed_at;

    (void)fd;
    (void)what;
    (void)arg;
    late = late > PROBE_NS ? (late - PROBE_NS) / 10000 : 0;
    B.hist[late < PROBE_BINS ? late : PROBE_BINS - 1]++;
    probe_arm();
}

static void
on_usr1(evutil_socket_t sig, short what, void *arg)
{
    char tmp[4096];
    FILE *f;

    (void)sig;
    (void)what;
    (void)arg;
    snprintf(tmp, sizeof(tmp), "%s.tmp", B.probe_path);
    f = fopen(tmp, "w");
    if (f == NULL) {
        log_warn("bench-probe: %s", tmp);
        return;
    }
    for (uint32_t i = 0; i < PROBE_BINS; i++)
        if (B.hist[i])
            fprintf(f, "%u %u\n", i * 10, B.hist[i]);
    if (fclose(f) != 0 || rename(tmp, B.probe_path) < 0)
        log_warn("bench-probe: %s", B.probe_path);
    memset(B.hist, 0, PROBE_BINS * sizeof(*B.hist));
}

int
bench_hooks_start(struct iomapd *io, uint64_t preload, const char *probe_path)
{
    B.io = io;
    B.rng = 0x5eed;
    if (preload) {
        struct timeval now = { 0, 0 };

        B.preload_left = preload;
        B.ev_preload = evtimer_new(io->base, on_preload, io);
        if (B.ev_preload == NULL)
            return -ENOMEM;
        event_add(B.ev_preload, &now);
    }
    if (probe_path) {
        B.probe_path = probe_path;
        B.hist = calloc(PROBE_BINS, sizeof(*B.hist));
        B.ev_probe = evtimer_new(io->base, on_probe, io);
        B.ev_usr1 = evsignal_new(io->base, SIGUSR1, on_usr1, io);
        if (B.hist == NULL || B.ev_probe == NULL || B.ev_usr1 == NULL)
            return -ENOMEM;
        event_add(B.ev_usr1, NULL);
        probe_arm();
    }
    return 0;
}

void
bench_hooks_stop(void)
{
    if (B.ev_preload)
        event_free(B.ev_preload);
    if (B.ev_probe)
        event_free(B.ev_probe);
    if (B.ev_usr1)
        event_free(B.ev_usr1);
    free(B.hist);
    memset(&B, 0, sizeof(B));
}
