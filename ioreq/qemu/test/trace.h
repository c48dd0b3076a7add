/* SPDX-License-Identifier: MIT */
/*
 * Stands in for hw/i386/xen/trace.h when test-mapcache.c and test-iomap.c
 * compile QEMU's xen-mapcache.c and xen-iomap.c: the trace points the
 * series adds record what they say.
 */
#ifndef TEST_MAPCACHE_TRACE_H
#define TEST_MAPCACHE_TRACE_H

struct mc_trace {
    unsigned range_calls, dropped, deferred, kept;
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
        uint64_t size, unsigned dropped, unsigned deferred, unsigned kept,
        uint64_t tr, uint64_t tg)
{
    (void)start;
    (void)size;
    mc_trace.range_calls++;
    mc_trace.dropped = dropped;
    mc_trace.deferred = deferred;
    mc_trace.kept = kept;
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

/* xen-iomap.c (test-iomap.c) */
struct io_trace {
    unsigned registers, set_invalidates;
    int register_rc, set_invalidate_rc;
    uint32_t set_invalidate_mode;
    uint16_t register_domid;
};
extern struct io_trace io_trace;

static inline void trace_xen_iomap_register(uint16_t domid, uint16_t id,
                                            int rc)
{
    (void)id;
    io_trace.registers++;
    io_trace.register_domid = domid;
    io_trace.register_rc = rc;
}
static inline void trace_xen_iomap_invalidate(uint16_t d, uint64_t g,
                                              uint32_t n)
{
    (void)d;
    (void)g;
    (void)n;
}
static inline void trace_xen_iomap_invalidate_global(void) { }
static inline void trace_xen_iomap_ignored(uint16_t d, uint64_t g, uint32_t n)
{
    (void)d;
    (void)g;
    (void)n;
}
static inline void trace_xen_iomap_done(uint16_t d, uint64_t g, uint32_t n,
                                        int rc)
{
    (void)d;
    (void)g;
    (void)n;
    (void)rc;
}
static inline void trace_xen_iomap_set_invalidate(uint16_t d, uint16_t id,
                                                  uint32_t mode, int rc)
{
    (void)d;
    (void)id;
    io_trace.set_invalidates++;
    io_trace.set_invalidate_mode = mode;
    io_trace.set_invalidate_rc = rc;
}

#endif
