/* SPDX-License-Identifier: MIT */
/*
 * The status quo, for comparison: Xen 4.17's global mapcache invalidate.
 * A trace of what emulators use and what guests give back is replayed
 * under that model: every decrease_reservation call sends one
 * IOREQ_TYPE_INVALIDATE to every ioreq server of the domain, each drops
 * all its mappings of it and maps back what it uses next, and the vCPU
 * waits for the slowest of them.
 */
#ifndef IOMAP_BASELINE_H
#define IOMAP_BASELINE_H

#include <stddef.h>
#include <stdint.h>

#define BASELINE_MAX_EMUS 16

/*
 * TR_BALLOON records one extent of a decrease_reservation hypercall; the
 * hypercall's end (where Xen sends the invalidate) is TR_BALLOON_END.
 */
enum { TR_USE = 1, TR_BALLOON = 2, TR_BALLOON_END = 3 };

struct trace_rec {
    uint64_t t_ns;
    uint64_t gfn;
    uint32_t nr;
    uint16_t domid;
    uint8_t  op;
    uint8_t  emu;
};

struct trace {
    struct trace_rec *v;
    size_t n, cap;
};

struct baseline_emu {
    uint16_t targets[4];
    int      ntargets;
    uint64_t answer_delay_ns;
};

struct baseline_result {
    uint64_t hypercalls;        /* decrease_reservation calls            */
    uint64_t invalidates_sent;
    uint64_t unmaps;            /* all unmaps the invalidates caused      */
    uint64_t needless_unmaps;   /* of pages the guest still had           */
    uint64_t remaps;            /* maps of dropped pages used again       */
    uint64_t vcpu_blocked_ns;
};

int  trace_add(struct trace *t, uint8_t op, uint64_t t_ns, uint8_t emu,
               uint16_t domid, uint64_t gfn, uint32_t nr);
void trace_free(struct trace *t);
int  baseline_replay(const struct trace *t, const struct baseline_emu *emus,
                     int nemus, struct baseline_result *out);

#endif
