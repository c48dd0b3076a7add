/* SPDX-License-Identifier: MIT */
/*
 * Metrics: the Prometheus text format 0.0.4 and OpenMetrics 1.0.0 from one
 * description, and the opt-in HTTP endpoint (libevent's evhttp).
 *
 * The two formats differ in what trips parsers: OpenMetrics names a
 * counter's family without "_total" (# TYPE iomapd_events counter, sample
 * iomapd_events_total) and ends with "# EOF"; the Prometheus format names
 * the family as the sample.  Everything else is the same text.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "daemon/core/core.h"
#include "json-api/ctl.h"
#include "json-api/metrics.h"
#include "policy/policy.h"
#include "util/clock.h"
#include "util/log.h"

struct sbuf {
    char  *s;
    size_t len, cap;
    int    oom;
};

static void __attribute__((format(printf, 2, 3)))
sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->oom)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = (b->cap ? b->cap * 2 : 8192) + (size_t)n;
        char *ns = realloc(b->s, ncap);

        if (ns == NULL) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = ncap;
    }
}

/* # HELP and # TYPE of a family; a counter's OpenMetrics family drops _total. */
static void
family(struct sbuf *b, enum metrics_format f, const char *name, const char *type,
       const char *help)
{
    size_t n = strlen(name);

    if (f == METRICS_OPENMETRICS && !strcmp(type, "counter") && n > 6 &&
        !strcmp(name + n - 6, "_total"))
        n -= 6;
    sb_printf(b, "# HELP iomapd_%.*s %s\n# TYPE iomapd_%.*s %s\n", (int)n, name, help,
              (int)n, name, type);
}

static void
one(struct sbuf *b, enum metrics_format f, const char *name, const char *type,
    const char *help, uint64_t v)
{
    family(b, f, name, type, help);
    sb_printf(b, "iomapd_%s %" PRIu64 "\n", name, v);
}

/* The longest a removed page may wait under the policy, in ns. */
static uint64_t
policy_max_wait(const struct policy *p)
{
    uint64_t m = 0;

    if (p == NULL)
        return 0;
    for (int i = 0; i < 2; i++) {
        const struct policy_timeout *t = i ? &p->flush : &p->inval;
        uint64_t w = t->timeout_ns * (uint64_t)(t->nsteps + 1);

        if (t->timeout_ns && w / (t->nsteps + 1) == t->timeout_ns && w > m)
            m = w;
    }
    return m;
}

#define HIST_FIRST 13           /* bucket 13 ends at 2^14 ns = 16.4 us */
#define HIST_MIN_TOP 32         /* bucket 32 ends at 2^33 ns = 8.6 s */

char *
metrics_render(const struct ctl *ctl, enum metrics_format f, size_t *len)
{
    const struct ctl_env *env = &ctl->env;
    const struct core_stats *st = core_stats(env->core);
    struct core_status cs;
    struct core_emu_info e;
    uint32_t ecur = 0;
    struct sbuf b = { 0 };
    uint64_t cum = 0, maxw = policy_max_wait(core_policy(env->core));
    int top = HIST_MIN_TOP;

#define X(c) one(&b, f, #c "_total", "counter", "Daemon counter " #c " (see iomapd-api(7)).", st->c);
    METRICS_COUNTERS(X)
#undef X
    core_status(env->core, &cs);
    one(&b, f, "domains", "gauge", "Domains with mappings or pages in flight.", cs.domains);
    one(&b, f, "emulators", "gauge", "Emulators known to the daemon.", cs.emulators);
    one(&b, f, "mappings", "gauge", "Emulator mappings of guest pages.", cs.mappings);
    family(&b, f, "pages", "gauge", "Removed pages not yet released, by state.");
    sb_printf(&b, "iomapd_pages{state=\"invalidating\"} %" PRIu64 "\n"
              "iomapd_pages{state=\"flushing\"} %" PRIu64 "\n", cs.invalidating, cs.flushing);
    family(&b, f, "uptime_seconds", "gauge", "Time since iomapd started.");
    sb_printf(&b, "iomapd_uptime_seconds %.3f\n",
              (double)(clock_now_ns() - env->started_ns) / 1e9);
    family(&b, f, "emulator_held_pages", "gauge",
           "Removed pages waiting for this emulator's unmap.");
    while (core_emu_next(env->core, &ecur, &e))
        sb_printf(&b, "iomapd_emulator_held_pages{emulator=\"" CORE_EMU_FMT "\"} %"
                  PRIu64 "\n", CORE_EMU_ARGS(&e.id), e.held_pages);
    /* Fixed buckets, up to the first bound past the longest wait. */
    while (top < 61 && (2ull << top) < maxw)
        top++;
    family(&b, f, "release_latency_seconds", "histogram",
           "Time from page removal to release.");
    for (int i = 0; i <= top; i++) {
        cum += st->lat_hist[i];
        if (i >= HIST_FIRST)
            sb_printf(&b, "iomapd_release_latency_seconds_bucket{le=\"%.9g\"} %" PRIu64 "\n",
                      (double)(2ull << i) / 1e9, cum);
    }
    sb_printf(&b, "iomapd_release_latency_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
              "iomapd_release_latency_seconds_sum %.9f\n"
              "iomapd_release_latency_seconds_count %" PRIu64 "\n",
              st->lat_count, (double)st->lat_sum_ns / 1e9, st->lat_count);
    if (f == METRICS_OPENMETRICS)
        sb_printf(&b, "# EOF\n");
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    *len = b.len;
    return b.s;
}

/* ---- the HTTP endpoint ------------------------------------------------------ */

struct metrics_http {
    struct evhttp     *http;
    const struct ctl  *ctl;
    uint64_t           scrapes;
};

static void
on_metrics(struct evhttp_request *req, void *arg)
{
    struct metrics_http *m = arg;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *accept = evhttp_find_header(in, "Accept");
    enum metrics_format f = accept && strstr(accept, "application/openmetrics-text") ?
                            METRICS_OPENMETRICS : METRICS_PROMETHEUS;
    struct evbuffer *out = evbuffer_new();
    size_t len;
    char *s;

    if (out == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    s = metrics_render(m->ctl, f, &len);
    if (s == NULL) {
        evbuffer_free(out);
        evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
        return;
    }
    m->scrapes++;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      f == METRICS_OPENMETRICS ?
                      "application/openmetrics-text; version=1.0.0; charset=utf-8" :
                      "text/plain; version=0.0.4; charset=utf-8");
    evbuffer_add(out, s, len);
    free(s);
    evhttp_send_reply(req, HTTP_OK, "OK", out);
    evbuffer_free(out);
}

static void
on_other(struct evhttp_request *req, void *arg)
{
    (void)arg;
    evhttp_send_error(req, HTTP_NOTFOUND, "only /metrics here");
}

/* ADDR:PORT into host and port; 0, or -1 with err set. */
static int
parse_addr(const char *addr, char *host, size_t hostlen, unsigned long *portp,
           char *err, size_t errlen)
{
    const char *colon = strrchr(addr, ':');
    char *end;
    unsigned long port;
    size_t hl;

    if (colon == NULL || colon == addr || colon[1] == '\0') {
        snprintf(err, errlen, "--metrics %s: want ADDRESS:PORT (127.0.0.1:9477, [::1]:9477)",
                 addr);
        return -1;
    }
    port = strtoul(colon + 1, &end, 10);
    hl = (size_t)(colon - addr);
    if (*end || end == colon + 1 || port > 65535 || hl >= hostlen) {
        snprintf(err, errlen, "--metrics %s: bad port (0 to 65535; 0: any free one, "
                 "logged)", addr);
        return -1;
    }
    if (addr[0] == '[' && hl >= 2 && addr[hl - 1] == ']') {
        memcpy(host, addr + 1, hl - 2);
        host[hl - 2] = '\0';
    } else {
        memcpy(host, addr, hl);
        host[hl] = '\0';
    }
    *portp = port;
    return 0;
}

int
metrics_addr_check(const char *addr, char *err, size_t errlen)
{
    char host[256];
    unsigned long port;

    return parse_addr(addr, host, sizeof(host), &port, err, errlen);
}

struct metrics_http *
metrics_http_new(struct event_base *base, const struct ctl *ctl, const char *addr,
                 char *err, size_t errlen)
{
    struct metrics_http *m;
    char host[256];
    unsigned long port;
    struct evhttp_bound_socket *bs;

    if (parse_addr(addr, host, sizeof(host), &port, err, errlen) < 0)
        return NULL;
    m = calloc(1, sizeof(*m));
    if (m == NULL || (m->http = evhttp_new(base)) == NULL) {
        free(m);
        snprintf(err, errlen, "metrics: out of memory");
        return NULL;
    }
    m->ctl = ctl;
    evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_timeout(m->http, 10);
    evhttp_set_max_headers_size(m->http, 8192);
    evhttp_set_max_body_size(m->http, 0);
    evhttp_set_cb(m->http, "/metrics", on_metrics, m);
    evhttp_set_gencb(m->http, on_other, m);
    if ((bs = evhttp_bind_socket_with_handle(m->http, host, (uint16_t)port)) == NULL) {
        snprintf(err, errlen, "metrics: cannot listen on %s port %lu (address in use, "
                 "not local, or not allowed by the unit's IPAddressAllow=)", host, port);
        evhttp_free(m->http);
        free(m);
        return NULL;
    }
    {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);

        if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) == 0)
            port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                  : ((struct sockaddr_in *)&ss)->sin_port);
    }
    log_info("metrics on http://%s%s%s:%lu/metrics", strchr(host, ':') ? "[" : "", host,
             strchr(host, ':') ? "]" : "", port);
    return m;
}

void
metrics_http_free(struct metrics_http *m)
{
    if (m == NULL)
        return;
    evhttp_free(m->http);
    free(m);
}
