/* SPDX-License-Identifier: MIT */
/*
 * The JSON-RPC methods of iomapd.  One table (ctl_methods); each method
 * gets its params already checked to be an object with only known names,
 * returns 0 with *result set or an error code with call->msg, and never
 * writes to the client itself: control.c's ctl_respond() is the only way
 * out.  Parameters and results are described in json-api/schema/ and
 * iomapd-api(7).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "iomap.h"
#include "daemon/core/core.h"
#include "util/clock.h"
#include "util/log.h"
#include "json-api/ctl.h"
#include "policy/policy.h"

#define API_VERSION 1

/* ---- parameter helpers ------------------------------------------------------ */

/* An optional unsigned integer parameter in [0, max]. 1 if present. */
static int
p_uint(struct ctl_call *call, json_t *params, const char *name, uint64_t max,
       uint64_t *out, int *err)
{
    json_t *v = json_object_get(params, name);

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (uint64_t)json_integer_value(v) > max) {
        *err = ctl_err(call, RPC_INVALID_PARAMS,
                       "%s must be an integer from 0 to %" PRIu64, name, max);
        return -1;
    }
    *out = (uint64_t)json_integer_value(v);
    return 1;
}

/* An emulator: "DOMID:IOSERVID" or {"emu_domid": D, "ioservid": N}. */
static int
p_emulator(struct ctl_call *call, json_t *params, const char *name,
           uint16_t *domid, uint16_t *ioservid, int *err)
{
    json_t *v = json_object_get(params, name);

    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_string(v)) {
        unsigned a, b;
        char tail;

        if (sscanf(json_string_value(v), "%u:%u%c", &a, &b, &tail) == 2 &&
            a <= 0xffff && b <= 0xffff) {
            *domid = (uint16_t)a;
            *ioservid = (uint16_t)b;
            return 1;
        }
    } else if (json_is_object(v)) {
        json_t *a = json_object_get(v, "emu_domid"), *b = json_object_get(v, "ioservid");

        if (json_object_size(v) == 2 && json_is_integer(a) && json_is_integer(b) &&
            json_integer_value(a) >= 0 && json_integer_value(a) <= 0xffff &&
            json_integer_value(b) >= 0 && json_integer_value(b) <= 0xffff) {
            *domid = (uint16_t)json_integer_value(a);
            *ioservid = (uint16_t)json_integer_value(b);
            return 1;
        }
    }
    *err = ctl_err(call, RPC_INVALID_PARAMS,
                   "%s must be \"EMU_DOMID:IOSERVID\" (e.g. \"0:1\") or "
                   "{\"emu_domid\":D,\"ioservid\":N}", name);
    return -1;
}

static int
p_bool(struct ctl_call *call, json_t *params, const char *name, int *out, int *err)
{
    json_t *v = json_object_get(params, name);

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_boolean(v)) {
        *err = ctl_err(call, RPC_INVALID_PARAMS, "%s must be true or false", name);
        return -1;
    }
    *out = json_is_true(v);
    return 1;
}

static json_t *
emu_id(const struct core_emu_id *e)
{
    char id[16];

    snprintf(id, sizeof(id), "%u:%u", e->emu_domid, e->ioservid);
    return json_string(id);
}

static double
ns_to_us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static const char *
page_state_name(enum core_page_state s)
{
    switch (s) {
    case CORE_PAGE_INVALIDATING: return "invalidating";
    case CORE_PAGE_FLUSHING:     return "flushing";
    case CORE_PAGE_NEW:          return "new";
    }
    return "free";
}

/* ---- version, status ------------------------------------------------------------ */

static int
m_version(struct ctl_call *call, json_t *params, json_t **result)
{
    const struct ctl_env *env = &call->ctl->env;

    *result = json_pack("{s:s, s:i, s:{s:i, s:i}, s:s}",
                        "daemon", PACKAGE_VERSION, "api", API_VERSION,
                        "abi", "major", IOMAP_ABI_VERSION_MAJOR,
                        "minor", IOMAP_ABI_VERSION_MINOR,
                        "backend", env->backend ? env->backend : "none");
    return *result ? 0 : RPC_INTERNAL_ERROR;
}

static int
m_status(struct ctl_call *call, json_t *params, json_t **result)
{
    const struct ctl_env *env = &call->ctl->env;
    struct core_status cs;

    core_status(env->core, &cs);
    *result = json_pack("{s:s, s:s, s:f, s:s, s:b, s:i, s:i, s:I, "
                        "s:{s:I, s:I, s:I, s:I}, s:i}",
                        "state", call->ctl->stopping ? "stopping" : "running",
                        "version", PACKAGE_VERSION,
                        "uptime_s", (double)(clock_now_ns() - env->started_ns) / 1e9,
                        "backend", env->backend ? env->backend : "none",
                        "resyncing", cs.resyncing,
                        "domains", (int)cs.domains,
                        "emulators", (int)cs.emulators,
                        "mappings", (json_int_t)cs.mappings,
                        "pages",
                        "invalidating", (json_int_t)cs.invalidating,
                        "flushing", (json_int_t)cs.flushing,
                        "removed", (json_int_t)core_stats(env->core)->pages_removed,
                        "released", (json_int_t)core_stats(env->core)->pages_released,
                        "clients", (int)call->ctl->nclients);
    return *result ? 0 : RPC_INTERNAL_ERROR;
}

/* ---- domains, emulators --------------------------------------------------------- */

static int
m_domain_list(struct ctl_call *call, json_t *params, json_t **result)
{
    const struct core *core = call->ctl->env.core;
    struct core_dom_info di;
    uint32_t cur = 0;
    json_t *a = json_array();

    while (a && core_dom_next(core, &cur, &di))
        json_array_append_new(a, json_pack("{s:i, s:I, s:i, s:I}",
                                           "domid", (int)di.domid,
                                           "mappings", (json_int_t)di.mappings,
                                           "emulators", (int)di.emulators,
                                           "pending_pages", (json_int_t)di.pending_pages));
    *result = json_pack("{s:o}", "domains", a);
    return *result ? 0 : RPC_INTERNAL_ERROR;
}

static const char *
invalidate_name(enum core_invalidate v)
{
    switch (v) {
    case CORE_INV_PER_PAGE: return "per-page";
    case CORE_INV_GLOBAL:   return "global";
    case CORE_INV_NONE:     break;
    }
    return "none";
}

static int
m_emulator_list(struct ctl_call *call, json_t *params, json_t **result)
{
    const struct core *core = call->ctl->env.core;
    struct core_emu_info e;
    uint32_t cur = 0;
    json_t *a = json_array();

    while (a && core_emu_next(core, &cur, &e))
        json_array_append_new(a, json_pack(
            "{s:o, s:i, s:i, s:b, s:b, s:s, s:I, s:i, s:I, s:i, s:i, s:I, s:I, s:I, s:I}",
            "emulator", emu_id(&e.id), "emu_domid", e.id.emu_domid,
            "ioservid", e.id.ioservid, "alive", e.alive, "registered", e.registered,
            "invalidate", invalidate_name(e.invalidate),
            "mappings", (json_int_t)e.mappings, "domains", (int)e.domains,
            "held_pages", (json_int_t)e.held_pages,
            "queued_ranges", (int)e.queued_ranges,
            "in_flight", (int)e.in_flight,
            "invalidates_sent", (json_int_t)e.invalidates_sent,
            "answers", (json_int_t)e.answers,
            "forced_unmaps", (json_int_t)e.forced_unmaps,
            "bad_unmaps", (json_int_t)e.bad_unmaps));
    *result = json_pack("{s:o}", "emulators", a);
    return *result ? 0 : RPC_INTERNAL_ERROR;
}

/* ---- mapping.list ------------------------------------------------------------- */

/*
 * Order: emulator slot, then domid, then gfn.  The cursor names the next
 * (slot, domid, gfn) to look at: "m1.<slot>.<domid>.<gfn hex>".
 */
static int
parse_cursor_m(const char *s, uint32_t *slot, uint32_t *domid, uint64_t *gfn)
{
    unsigned a, b;
    unsigned long long g;
    char tail;

    if (sscanf(s, "m1.%u.%u.%llx%c", &a, &b, &g, &tail) != 3 ||
        a > CORE_MAX_EMUS || b > CORE_MAX_DOMID)
        return -1;
    *slot = a;
    *domid = b;
    *gfn = g;
    return 0;
}

static int
m_mapping_list(struct ctl_call *call, json_t *params, json_t **result)
{
    const struct core *core = call->ctl->env.core;
    struct core_map_filter f = { 0 };
    struct core_map_cursor cur;
    struct core_map_info batch[32];
    uint64_t domid = 0, limit = CTL_DEFAULT_LIMIT, gfn_lo = 0, gfn_hi = UINT64_MAX - 1;
    uint16_t edom = 0, eserv = 0;
    int have_dom, have_emu, err = 0;
    uint32_t slot = 0, cdom = 0;
    uint64_t cgfn = 0;
    json_t *a, *jc, *next = json_null();
    uint64_t n = 0, t_end = clock_now_ns() + CTL_LIST_BUDGET_NS;

    if ((have_dom = p_uint(call, params, "domid", CORE_MAX_DOMID - 1, &domid, &err)) < 0 ||
        (have_emu = p_emulator(call, params, "emulator", &edom, &eserv, &err)) < 0 ||
        p_uint(call, params, "gfn_start", UINT64_MAX >> 12, &gfn_lo, &err) < 0 ||
        p_uint(call, params, "gfn_end", UINT64_MAX >> 12, &gfn_hi, &err) < 0 ||
        p_uint(call, params, "limit", CTL_MAX_LIMIT, &limit, &err) < 0)
        return err;
    if (limit == 0)
        return ctl_err(call, RPC_INVALID_PARAMS, "limit must be at least 1");
    if (gfn_lo > gfn_hi)
        return ctl_err(call, RPC_INVALID_PARAMS, "gfn_start is above gfn_end");
    jc = json_object_get(params, "cursor");
    if (jc && !json_is_null(jc)) {
        if (!json_is_string(jc))
            return ctl_err(call, RPC_INVALID_PARAMS, "cursor must be a string");
        if (parse_cursor_m(json_string_value(jc), &slot, &cdom, &cgfn) < 0)
            return ctl_err(call, APP_BAD_CURSOR,
                           "cursor is not one this daemon gave out");
    }
    f.gfn_lo = gfn_lo;
    f.gfn_hi = gfn_hi;
    f.have_domid = have_dom;
    f.domid = (uint16_t)domid;
    f.have_emu = have_emu;
    f.emu.emu_domid = edom;
    f.emu.ioservid = eserv;
    cur.slot = slot;
    cur.domid = cdom;
    cur.gfn = cgfn;
    a = json_array();
    while (a) {
        /*
         * Bounded work per call: the loop (and the events) wait for it.
         * Past the time budget the page is short and carries a cursor;
         * the client asks for the rest.  A page holds at least
         * CTL_LIST_MIN_PAGE entries (or the limit), so that a slow
         * machine still makes progress and the result does not depend on
         * timing below that size.
         */
        size_t want = limit - n < 32 ? (size_t)(limit - n) : 32, got;

        if (n == limit || (n >= CTL_LIST_MIN_PAGE && clock_now_ns() > t_end)) {
            struct core_map_cursor peek = cur;
            char c[64];

            /* A cursor only if something is left (peek without moving on). */
            if (core_map_list(core, &f, &peek, batch, 1) == 0)
                break;
            snprintf(c, sizeof(c), "m1.%u.%u.%" PRIx64, cur.slot, cur.domid, cur.gfn);
            next = json_string(c);
            break;
        }
        got = core_map_list(core, &f, &cur, batch, want);
        for (size_t i = 0; i < got; i++) {
            char id[16];

            snprintf(id, sizeof(id), "%u:%u", batch[i].emu.emu_domid, batch[i].emu.ioservid);
            json_array_append_new(a, json_pack("{s:s, s:i, s:I, s:i}",
                "emulator", id, "domid", (int)batch[i].domid,
                "gfn", (json_int_t)batch[i].gfn, "count", (int)batch[i].count));
        }
        n += got;
        if (got < want)
            break;              /* the end */
    }
    *result = json_pack("{s:o, s:o}", "mappings", a, "next_cursor", next);
    return *result ? 0 : RPC_INTERNAL_ERROR;
}

/* ---- page.list ---------------------------------------------------------------- */

static int
m_page_list(struct ctl_call *call, json_t *params, json_t **result)
{
    const struct core *core = call->ctl->env.core;
    struct core_page_filter f = { 0 };
    struct core_page_info pi;
    struct core_status cs;
    uint64_t domid = 0, limit = CTL_DEFAULT_LIMIT, pos = 0;
    int have_dom, err = 0;
    uint32_t budget = CTL_PAGE_SCAN;
    json_t *a, *jc, *js, *next = json_null();
    uint64_t n = 0;

    if ((have_dom = p_uint(call, params, "domid", CORE_MAX_DOMID - 1, &domid, &err)) < 0 ||
        p_uint(call, params, "limit", CTL_MAX_LIMIT, &limit, &err) < 0)
        return err;
    if (limit == 0)
        return ctl_err(call, RPC_INVALID_PARAMS, "limit must be at least 1");
    js = json_object_get(params, "state");
    if (js && !json_is_null(js)) {
        if (json_is_string(js) && !strcmp(json_string_value(js), "invalidating"))
            f.state = CORE_PAGE_INVALIDATING;
        else if (json_is_string(js) && !strcmp(json_string_value(js), "flushing"))
            f.state = CORE_PAGE_FLUSHING;
        else
            return ctl_err(call, RPC_INVALID_PARAMS,
                           "state must be \"invalidating\" or \"flushing\"");
    }
    f.have_domid = have_dom;
    f.domid = (uint16_t)domid;
    jc = json_object_get(params, "cursor");
    if (jc && !json_is_null(jc)) {
        unsigned long long v;
        char tail;

        if (!json_is_string(jc))
            return ctl_err(call, RPC_INVALID_PARAMS, "cursor must be a string");
        if (sscanf(json_string_value(jc), "p1.%llu%c", &v, &tail) != 1)
            return ctl_err(call, APP_BAD_CURSOR, "cursor is not one this daemon gave out");
        pos = v;
    }
    core_status(core, &cs);
    a = json_array();
    while (a) {
        json_t *hold;
        struct core_holder h;

        if (n == limit || budget == 0) {
            uint64_t peek = pos;
            uint32_t one = UINT32_MAX;
            char cur[32];

            /* Bounded work per request: the client asks for the rest. */
            if (n == limit && !core_page_next(core, &f, &peek, &one, &pi))
                break;
            snprintf(cur, sizeof(cur), "p1.%" PRIu64, pos);
            next = json_string(cur);
            break;
        }
        if (!core_page_next(core, &f, &pos, &budget, &pi)) {
            if (budget)
                break;          /* the end */
            continue;           /* budget spent: a cursor, above */
        }
        hold = json_array();
        for (uint32_t i = 0; i < pi.nholders; i++)
            if (core_page_holder(core, pi.handle, i, &h) == 0)
                json_array_append_new(hold, json_pack("{s:o, s:i}", "emulator",
                                                      emu_id(&h.emu), "count",
                                                      (int)h.count));
        json_array_append_new(a, json_pack(
            "{s:i, s:I, s:I, s:s, s:f, s:{s:o, s:I, s:I, s:b}}",
            "domid", pi.domid, "gfn", (json_int_t)pi.gfn, "mfn", (json_int_t)pi.mfn,
            "state", page_state_name(pi.state),
            "age_ms", (double)pi.age_ns / 1e6,
            "waits_for", "holders", hold,
            "cover_seq", (json_int_t)pi.cover_seq,
            "flush_done_seq", (json_int_t)cs.flush_done,
            "flush_queued", pi.flush_queued));
        n++;
    }
    *result = json_pack("{s:o, s:o}", "pages", a, "next_cursor", next);
    return *result ? 0 : RPC_INTERNAL_ERROR;
}

/* ---- stats, metrics ----------------------------------------------------------- */

/* Upper bound (ns) of the log2 bucket holding quantile q; capped by max. */
static uint64_t
lat_quantile(const struct core_stats *st, double q)
{
    uint64_t want, cum = 0;

    if (st->lat_count == 0)
        return 0;
    want = (uint64_t)(q * (double)st->lat_count + 0.999999);
    if (want == 0)
        want = 1;
    for (int i = 0; i < 64; i++) {
        cum += st->lat_hist[i];
        if (cum >= want) {
            uint64_t ub = i >= 63 ? UINT64_MAX : (2ull << i);

            return ub < st->lat_max_ns ? ub : st->lat_max_ns;
        }
    }
    return st->lat_max_ns;
}

#define COUNTERS(X) \
    X(events) X(event_batches) X(unknown_events) X(bad_events) \
    X(maps) X(unmaps) X(unmatched_unmaps) \
    X(pages_removed) X(pages_released) X(invalidates_sent) \
    X(global_invalidates_sent) X(forced_unmaps) X(flush_cmds) \
    X(release_cmds) X(cmd_errors) X(overflows) X(resyncs)

static int
m_stats(struct ctl_call *call, json_t *params, json_t **result)
{
    const struct ctl *ctl = call->ctl;
    const struct core_stats *st = core_stats(ctl->env.core);
    json_t *c = json_object(), *h = json_array();

#define X(f) json_object_set_new(c, #f, json_integer((json_int_t)st->f));
    COUNTERS(X)
#undef X
    json_object_set_new(c, "api_requests", json_integer((json_int_t)ctl->requests));
    json_object_set_new(c, "api_errors", json_integer((json_int_t)ctl->errors));
    json_object_set_new(c, "api_clients_dropped",
                        json_integer((json_int_t)ctl->dropped_clients));
    json_object_set_new(c, "api_notifications", json_integer((json_int_t)ctl->notes_sent));
    for (int i = 0; i < 64; i++)
        if (st->lat_hist[i])
            json_array_append_new(h, json_pack("{s:I, s:I}",
                "le_ns", (json_int_t)(i >= 62 ? INT64_MAX : (int64_t)(2ll << i)),
                "count", (json_int_t)st->lat_hist[i]));
    *result = json_pack("{s:o, s:{s:I, s:f, s:f, s:f, s:f, s:o}}",
        "counters", c,
        "release_latency",
        "count", (json_int_t)st->lat_count,
        "mean_us", st->lat_count ? ns_to_us(st->lat_sum_ns / st->lat_count) : 0.0,
        "p50_us", ns_to_us(lat_quantile(st, 0.50)),
        "p99_us", ns_to_us(lat_quantile(st, 0.99)),
        "max_us", ns_to_us(st->lat_max_ns),
        "histogram", h);
    return *result ? 0 : RPC_INTERNAL_ERROR;
}

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
        size_t ncap = (b->cap ? b->cap * 2 : 4096) + (size_t)n;
        char *ns = realloc(b->s, ncap);

        if (ns == NULL) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = ncap;
    }
}

static void
prom(struct sbuf *b, const char *name, const char *type, const char *help,
     uint64_t v)
{
    sb_printf(b, "# HELP iomapd_%s %s\n# TYPE iomapd_%s %s\niomapd_%s %" PRIu64 "\n",
              name, help, name, type, name, v);
}

static int
m_metrics(struct ctl_call *call, json_t *params, json_t **result)
{
    const struct ctl_env *env = &call->ctl->env;
    const struct core_stats *st = core_stats(env->core);
    struct core_status cs;
    struct core_emu_info e;
    uint32_t ecur = 0;
    struct sbuf b = { 0 };
    uint64_t cum = 0;
    int top = -1;

#define X(f) prom(&b, #f "_total", "counter", "Daemon counter " #f " (see iomapd-api(7)).", st->f);
    COUNTERS(X)
#undef X
    core_status(env->core, &cs);
    prom(&b, "domains", "gauge", "Domains with mappings or pages in flight.",
         cs.domains);
    prom(&b, "emulators", "gauge", "Emulators known to the daemon.", cs.emulators);
    prom(&b, "mappings", "gauge", "Emulator mappings of guest pages.", cs.mappings);
    sb_printf(&b, "# HELP iomapd_pages Removed pages not yet released, by state.\n"
              "# TYPE iomapd_pages gauge\n"
              "iomapd_pages{state=\"invalidating\"} %" PRIu64 "\n"
              "iomapd_pages{state=\"flushing\"} %" PRIu64 "\n",
              cs.invalidating, cs.flushing);
    sb_printf(&b, "# HELP iomapd_uptime_seconds Time since iomapd started.\n"
              "# TYPE iomapd_uptime_seconds gauge\niomapd_uptime_seconds %.3f\n",
              (double)(clock_now_ns() - env->started_ns) / 1e9);
    sb_printf(&b, "# HELP iomapd_emulator_held_pages Removed pages waiting for this "
              "emulator's unmap.\n# TYPE iomapd_emulator_held_pages gauge\n");
    while (core_emu_next(env->core, &ecur, &e))
        sb_printf(&b, "iomapd_emulator_held_pages{emulator=\"%u:%u\"} %" PRIu64 "\n",
                  e.id.emu_domid, e.id.ioservid, e.held_pages);
    for (int i = 0; i < 64; i++)
        if (st->lat_hist[i])
            top = i;
    sb_printf(&b, "# HELP iomapd_release_latency_seconds Time from page removal to "
              "release.\n# TYPE iomapd_release_latency_seconds histogram\n");
    for (int i = 0; i <= top && i < 62; i++) {
        cum += st->lat_hist[i];
        sb_printf(&b, "iomapd_release_latency_seconds_bucket{le=\"%.9g\"} %" PRIu64 "\n",
                  (double)(2ull << i) / 1e9, cum);
    }
    sb_printf(&b, "iomapd_release_latency_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
              "iomapd_release_latency_seconds_sum %.9f\n"
              "iomapd_release_latency_seconds_count %" PRIu64 "\n",
              st->lat_count, (double)st->lat_sum_ns / 1e9, st->lat_count);
    if (b.oom) {
        free(b.s);
        return ctl_err(call, RPC_INTERNAL_ERROR, "out of memory");
    }
    *result = json_stringn(b.s, b.len);
    free(b.s);
    return *result ? 0 : RPC_INTERNAL_ERROR;
}

/* ---- emulator.drain ----------------------------------------------------------- */

/* The core drains; the control server only answers when it is over. */
struct ctl_drain {
    struct ctl        *ctl;
    struct ctl_client *c;           /* NULL once the caller went away */
    json_t            *id;
    struct core_emu_id emu;
    LIST_ENTRY(ctl_drain) link;
};

static void
drain_done(void *arg, const struct core_emu_id *e, const struct core_drain_result *r)
{
    struct ctl_drain *dr = arg;
    char id[16];

    snprintf(id, sizeof(id), "%u:%u", e->emu_domid, e->ioservid);
    ctl_respond(dr->c, dr->id, json_pack("{s:s, s:s, s:I, s:I, s:I, s:f}",
                "emulator", id, "outcome", r->outcome,
                "held_pages_at_start", (json_int_t)r->held_at_start,
                "forced_pages", (json_int_t)r->forced,
                "mappings_left", (json_int_t)r->mappings_left,
                "elapsed_ms", (double)r->elapsed_ns / 1e6), 0, NULL, NULL);
    LIST_REMOVE(dr, link);
    json_decref(dr->id);
    free(dr);
}

void
ctl_drains_forget(struct ctl *ctl, struct ctl_client *c)
{
    struct ctl_drain *dr;

    LIST_FOREACH(dr, &ctl->drains, link)
        if (dr->c == c)
            dr->c = NULL;
}

void
ctl_drains_free(struct ctl *ctl)
{
    struct ctl_drain *dr;

    while ((dr = LIST_FIRST(&ctl->drains)) != NULL) {
        core_drain_cancel(ctl->env.core, &dr->emu);
        ctl_respond(dr->c, dr->id, NULL, APP_SHUTTING_DOWN,
                    "iomapd stopped before the drain finished", NULL);
        LIST_REMOVE(dr, link);
        json_decref(dr->id);
        free(dr);
    }
}

static int
m_emulator_drain(struct ctl_call *call, json_t *params, json_t **result)
{
    struct ctl *ctl = call->ctl;
    struct core_emu_id emu;
    uint64_t timeout_ms = 5000;
    int have, unmap_all = 0, err = 0, rc;
    struct ctl_drain *dr;

    if ((have = p_emulator(call, params, "emulator", &emu.emu_domid, &emu.ioservid,
                           &err)) < 0 ||
        p_uint(call, params, "timeout_ms", 3600 * 1000, &timeout_ms, &err) < 0 ||
        p_bool(call, params, "unmap_all", &unmap_all, &err) < 0)
        return err;
    if (!have)
        return ctl_err(call, RPC_INVALID_PARAMS, "emulator is required (\"D:N\")");
    dr = calloc(1, sizeof(*dr));
    if (dr == NULL)
        return ctl_err(call, RPC_INTERNAL_ERROR, "out of memory");
    dr->ctl = ctl;
    dr->c = call->id ? call->c : NULL;    /* a notification gets no answer */
    dr->id = call->id ? json_incref(call->id) : NULL;
    dr->emu = emu;
    LIST_INSERT_HEAD(&ctl->drains, dr, link);
    log_info("drain of emulator %u:%u requested by uid %u", emu.emu_domid,
             emu.ioservid, (unsigned)call->c->uid);
    /* The core may end it at once, answering through drain_done. */
    rc = core_drain(ctl->env.core, &emu, timeout_ms * 1000000ull, unmap_all,
                    drain_done, dr);
    if (rc < 0) {
        LIST_REMOVE(dr, link);
        json_decref(dr->id);
        free(dr);
        if (rc == -ENOENT)
            return ctl_err(call, APP_NO_SUCH_EMULATOR, "no emulator %u:%u",
                           emu.emu_domid, emu.ioservid);
        if (rc == -EBUSY)
            return ctl_err(call, APP_DRAIN_IN_PROGRESS,
                           "emulator %u:%u is already being drained",
                           emu.emu_domid, emu.ioservid);
        return ctl_err(call, RPC_INTERNAL_ERROR, "out of memory");
    }
    ctl->env.request_run(ctl->env.arg);
    return CTL_DEFERRED;
}

/* ---- policy -------------------------------------------------------------------- */

static json_t *
policy_timeout_json(const struct policy_timeout *t)
{
    json_t *steps = json_array();

    for (unsigned i = 0; i < t->nsteps; i++)
        json_array_append_new(steps, json_string(policy_action_name(t->steps[i])));
    return json_pack("{s:I, s:o}", "ms", (json_int_t)(t->timeout_ns / 1000000), "steps", steps);
}

static int
m_policy_get(struct ctl_call *call, json_t *params, json_t **result)
{
    const struct policy *p = core_policy(call->ctl->env.core);

    if (p == NULL)
        return ctl_err(call, APP_NO_POLICY, "no policy in force");
    *result = json_pack("{s:s, s:s, s:b, s:i, s:i, s:i, s:{s:I, s:I, s:I, s:I}, s:{s:o, s:o}}",
        "source", p->source, "config", call->ctl->env.config_path,
        "enforce_rules", p->enforce_rules, "rules", (int)p->nrules,
        "reserved_ranges", (int)p->nrmrr, "readonly_ranges", (int)p->nro,
        "quotas", "mappings_per_emulator", (json_int_t)p->max_maps_per_emu,
        "mappings_per_domain", (json_int_t)p->max_maps_per_dom,
        "pending_per_emulator", (json_int_t)p->max_pending_per_emu,
        "pending_per_domain", (json_int_t)p->max_pending_per_dom,
        "timeouts", "invalidating", policy_timeout_json(&p->inval),
        "flushing", policy_timeout_json(&p->flush));
    return *result ? 0 : RPC_INTERNAL_ERROR;
}

static int
m_policy_reload(struct ctl_call *call, json_t *params, json_t **result)
{
    const struct ctl_env *env = &call->ctl->env;
    char err[POLICY_ERRLEN];
    int rc = env->reload_policy(env->arg, err, sizeof(err));

    if (rc < 0) {
        call->data = json_pack("{s:s}", "config", env->config_path);
        return ctl_err(call, APP_POLICY_INVALID, "policy refused, the old one stays: %s", err);
    }
    *result = json_pack("{s:s, s:s}", "config", env->config_path,
                        "source", rc == 1 ? "built-in" : core_policy(env->core)->source);
    return *result ? 0 : RPC_INTERNAL_ERROR;
}

/* ---- subscribe ----------------------------------------------------------------- */

static const struct {
    const char *name;
    unsigned    bit;
} note_names[] = {
    { "page.released", NOTE_PAGE_RELEASED },
    { "page.timeout", NOTE_PAGE_TIMEOUT },
    { "emulator.gone", NOTE_EMU_GONE },
};

static int
m_subscribe(struct ctl_call *call, json_t *params, json_t **result)
{
    json_t *ev = json_object_get(params, "events"), *v, *out;
    unsigned bits = 0;
    size_t i;

    if (ev == NULL)
        return ctl_err(call, RPC_INVALID_PARAMS,
                       "events is required: an array of event names ([] to unsubscribe)");
    if (!json_is_array(ev))
        return ctl_err(call, RPC_INVALID_PARAMS, "events must be an array of strings");
    json_array_foreach(ev, i, v) {
        size_t k;

        if (!json_is_string(v))
            return ctl_err(call, RPC_INVALID_PARAMS, "events must be an array of strings");
        for (k = 0; k < sizeof(note_names) / sizeof(note_names[0]); k++)
            if (!strcmp(json_string_value(v), note_names[k].name))
                break;
        if (k == sizeof(note_names) / sizeof(note_names[0])) {
            call->data = json_pack("{s:[s,s,s]}", "known", "page.released",
                                   "page.timeout", "emulator.gone");
            return ctl_err(call, APP_BAD_EVENT, "no event '%s'", json_string_value(v));
        }
        bits |= note_names[k].bit;
    }
    call->c->subs = bits;
    out = json_array();
    for (size_t k = 0; k < sizeof(note_names) / sizeof(note_names[0]); k++)
        if (bits & note_names[k].bit)
            json_array_append_new(out, json_string(note_names[k].name));
    *result = json_pack("{s:o}", "subscribed", out);
    return *result ? 0 : RPC_INTERNAL_ERROR;
}

/* ---- the table ------------------------------------------------------------------- */

static const struct ctl_method ctl_methods[] = {
    { "version",        m_version,        0,       "" },
    { "status",         m_status,         0,       "" },
    { "domain.list",    m_domain_list,    0,       "" },
    { "emulator.list",  m_emulator_list,  0,       "" },
    { "mapping.list",   m_mapping_list,   0,
      "domid emulator gfn_start gfn_end cursor limit" },
    { "page.list",      m_page_list,      0,       "domid state cursor limit" },
    { "stats",          m_stats,          0,       "" },
    { "metrics",        m_metrics,        0,       "" },
    { "emulator.drain", m_emulator_drain, M_ADMIN, "emulator timeout_ms unmap_all" },
    { "policy.get",     m_policy_get,     0,       "" },
    { "policy.reload",  m_policy_reload,  M_ADMIN, "" },
    { "subscribe",      m_subscribe,      0,       "events" },
};

const struct ctl_method *
ctl_method_find(const char *name)
{
    for (size_t i = 0; i < sizeof(ctl_methods) / sizeof(ctl_methods[0]); i++)
        if (strcmp(ctl_methods[i].name, name) == 0)
            return &ctl_methods[i];
    return NULL;
}
