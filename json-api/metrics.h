/* SPDX-License-Identifier: MIT */
/*
 * The daemon's counters for Prometheus: rendered as the Prometheus text
 * format 0.0.4 (the `metrics` method, xl-iomap metrics) or as OpenMetrics
 * 1.0.0, and served over HTTP by an opt-in endpoint (iomapd --metrics).
 */
#ifndef IOMAP_METRICS_H
#define IOMAP_METRICS_H

#include <stddef.h>

struct ctl;
struct event_base;

/* The core's monotonic counters, by their names in stats and metrics. */
#define METRICS_COUNTERS(X) \
    X(events) X(event_batches) X(unknown_events) X(bad_events) \
    X(maps) X(unmaps) X(unmatched_unmaps) \
    X(pages_removed) X(pages_released) X(invalidates_sent) \
    X(global_invalidates_sent) X(forced_unmaps) X(flush_cmds) \
    X(release_cmds) X(cmd_errors) X(overflows) X(resyncs) \
    X(stale_dump_records) X(release_refused) X(untracked_forced) \
    X(emus_reclaimed) X(flushes_failed) X(pages_leaked) X(release_leaked) \
    X(cpu_unforceable)

enum metrics_format { METRICS_PROMETHEUS, METRICS_OPENMETRICS };

/*
 * The text (malloc'd, *len bytes, NUL-terminated) or NULL (out of memory).
 * The release-latency histogram has the same buckets at every scrape:
 * log2 bounds from 16 us up to the first that covers the longest wait the
 * policy allows (its timeouts times their steps + 1), at least 8.6 s.
 */
char *metrics_render(const struct ctl *ctl, enum metrics_format fmt, size_t *len);

/*
 * The HTTP endpoint on ADDR:PORT (IPv4, [IPv6] or a host name), GET/HEAD
 * /metrics only.  NULL with err set when it cannot listen.  Bounded:
 * at most METRICS_MAX_CONNS connections at a time (more are closed at
 * once), each closed METRICS_DEADLINE_MS after it was accepted whatever
 * it is doing, a request at most METRICS_MAX_REQUEST bytes, one request
 * per connection; accept backs off when descriptors run out.
 */
#define METRICS_MAX_CONNS   16
#define METRICS_DEADLINE_MS 5000
#define METRICS_MAX_REQUEST 8192
struct metrics_http;
struct metrics_http *metrics_http_new(struct event_base *base, const struct ctl *ctl,
                                      const char *addr, char *err, size_t errlen);
void metrics_http_free(struct metrics_http *m);
/* The option's syntax alone: 0, or -1 with err set. */
int metrics_addr_check(const char *addr, char *err, size_t errlen);

#endif
