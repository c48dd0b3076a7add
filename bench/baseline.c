/* SPDX-License-Identifier: MIT */
/*
 * The status quo for comparison: the paced balloon's trace (balloon.c)
 * replayed under Xen 4.17's global mapcache invalidate
 * (simhost/baseline.c), and the work each side did.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>

#include "bench/bench.h"
#include "simhost/baseline.h"
#include "util/log.h"

/*
 * tr: what the emulators used and what the guest gave back; every
 * emulator serves domain 1 and answers after answer_ns.  io_*: what
 * iomapd's run of the same trace cost (unmaps its invalidates caused,
 * of which needless, invalidate ranges sent).  print: the one-line
 * summary under the workload's name.
 */
void
baseline_compare(const struct trace *tr, uint64_t answer_ns, uint64_t io_unmaps,
                 uint64_t io_needless, uint64_t io_inval, int print)
{
    struct baseline_emu bemus[NEMU];
    struct baseline_result base;
    double base_work, io_work;

    for (int e = 0; e < NEMU; e++)
        bemus[e] = (struct baseline_emu){ .targets = { 1 }, .ntargets = 1,
                                          .answer_delay_ns = answer_ns };
    if (baseline_replay(tr, bemus, NEMU, &base) < 0)
        fatalx("baseline replay ran out of memory");
    base_work = (double)(base.unmaps + base.remaps + base.invalidates_sent);
    /* iomapd: its unmaps, remaps of needlessly dropped pages, invalidates */
    io_work = (double)(io_unmaps + io_needless + io_inval);
    add(&M[M_BASE_NEEDLESS], (double)base.needless_unmaps);
    add(&M[M_BASE_BLOCKED], (double)base.vcpu_blocked_ns / 1e6);
    add(&M[M_BASE_RATIO], io_work > 0 ? base_work / io_work : 0);
    if (print)
        printf("  (trace: %" PRIu64 " hypercalls; baseline %" PRIu64 " invalidates, %"
               PRIu64 " unmaps, %" PRIu64 " remaps | iomapd %" PRIu64
               " invalidate ranges, %" PRIu64 " unmaps, %" PRIu64 " needless)\n",
               base.hypercalls, base.invalidates_sent, base.unmaps, base.remaps,
               io_inval, io_unmaps, io_needless);
}
