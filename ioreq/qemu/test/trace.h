/* SPDX-License-Identifier: MIT */
/*
 * Stands in for hw/i386/xen/trace.h when test-mapcache.c compiles QEMU's
 * xen-mapcache.c: the trace points the series adds record what they say.
 */
#ifndef TEST_MAPCACHE_TRACE_H
#define TEST_MAPCACHE_TRACE_H

struct mc_trace {
    unsigned range_calls, dropped, deferred;
    uint64_t total_range, total_global, global_dropped;
    unsigned deferred_drops;
};
extern struct mc_trace mc_trace;

static inline void trace_xen_map_cache(uint64_t a) { (void)a; }
static inline void trace_xen_remap_bucket(uint64_t i) { (void)i; }
static inline void trace_xen_map_cache_return(void *p) { (void)p; }
static inline void trace_xen_map_cache_drop(uint64_t a, uint64_t s)
{
    (void)a;
    (void)s;
}
static inline void trace_xen_map_cache_drop_deferred(uint64_t a, uint64_t s,
                                                     uint64_t total)
{
    (void)a;
    (void)s;
    mc_trace.deferred_drops++;
    mc_trace.total_range = total;
}
static inline void trace_xen_invalidate_map_cache_range(uint64_t start,
        uint64_t size, unsigned dropped, unsigned deferred, uint64_t tr,
        uint64_t tg)
{
    (void)start;
    (void)size;
    mc_trace.range_calls++;
    mc_trace.dropped = dropped;
    mc_trace.deferred = deferred;
    mc_trace.total_range = tr;
    mc_trace.total_global = tg;
}
static inline void trace_xen_invalidate_map_cache(uint64_t dropped,
                                                  uint64_t tr, uint64_t tg)
{
    mc_trace.global_dropped = dropped;
    mc_trace.total_range = tr;
    mc_trace.total_global = tg;
}

#endif
