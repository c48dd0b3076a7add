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

#include "daemon/iomapd.h"
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
emu_id(const struct emu *e)
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
page_state_name(uint8_t s)
{
    switch (s) {
    case PAGE_INVALIDATING: return "invalidating";
    case PAGE_FLUSHING:     return "flushing";
    case PAGE_NEW:          return "new";
    default:                return "free";
    }
}

/* ---- version, status ------------------------------------------------------------ */

static int
m_version(struct ctl_call *call, json_t *params, json_t **result)
{
    struct iomapd *io = call->ctl->io;

    *result = json_pack("{s:s, s:i, s:{s:i, s:i}, s:s}",
                        "daemon", PACKAGE_VERSION, "api", API_VERSION,
                        "abi", "major", IOMAP_ABI_VERSION_MAJOR,
                        "minor", IOMAP_ABI_VERSION_MINOR,
                        "backend", io->be ? io->be->name : "none");
    return *result ? 0 : RPC_INTERNAL_ERROR;
}

static int
m_status(struct ctl_call *call, json_t *params, json_t **result)
{
    struct iomapd *io = call->ctl->io;
    const struct core *d = &io->d;

    *result = json_pack("{s:s, s:s, s:f, s:s, s:b, s:i, s:i, s:I, "
                        "s:{s:I, s:I, s:I, s:I}, s:i}",
                        "state", call->ctl->stopping ? "stopping" : "running",
                        "version", PACKAGE_VERSION,
                        "uptime_s", (double)(iomapd_now_ns() - io->started_ns) / 1e9,
                        "backend", io->be ? io->be->name : "none",
                        "resyncing", d->resync != RS_NONE,
                        "domains", (int)core_domains(d),
                        "emulators", (int)core_emulators(d),
                        "mappings", (json_int_t)core_mappings(d),
                        "pages",
                        "invalidating", (json_int_t)d->n_invalidating,
                        "flushing", (json_int_t)d->n_flushing,
                        "removed", (json_int_t)d->st.pages_removed,
                        "released", (json_int_t)d->st.pages_released,
                        "clients", (int)call->ctl->nclients);
    return *result ? 0 : RPC_INTERNAL_ERROR;
}

/* ---- domains, emulators --------------------------------------------------------- */

static int
m_domain_list(struct ctl_call *call, json_t *params, json_t **result)
{
    const struct core *d = &call->ctl->io->d;
    json_t *a = json_array();

    for (uint32_t i = 0; a && i < IOMAPD_MAX_DOMID; i++) {
        const struct dom *dm = d->doms[i];
        const struct emu_map *em;
        uint64_t maps = 0;
        int nemus = 0;

        if (dm == NULL)
            continue;
        LIST_FOREACH(em, &dm->maps, dom_link) {
            maps += em->fs.total;
            nemus += em->fs.total != 0;
        }
        json_array_append_new(a, json_pack("{s:i, s:I, s:i, s:I}",
                                           "domid", (int)dm->domid,
                                           "mappings", (json_int_t)maps,
                                           "emulators", nemus,
                                           "pending_pages", (json_int_t)dm->npending));
    }
    *result = json_pack("{s:o}", "domains", a);
    return *result ? 0 : RPC_INTERNAL_ERROR;
}

static int
m_emulator_list(struct ctl_call *call, json_t *params, json_t **result)
{
    const struct core *d = &call->ctl->io->d;
    json_t *a = json_array();

    for (uint32_t i = 0; a && i < d->nemus; i++) {
        const struct emu *e = d->emus[i];
        const struct emu_map *em;
        uint64_t maps = 0;
        int ndoms = 0;

        if (e == NULL)
            continue;
        LIST_FOREACH(em, &e->maps, emu_link) {
            maps += em->fs.total;
            ndoms += em->fs.total != 0;
        }
        json_array_append_new(a, json_pack(
            "{s:o, s:i, s:i, s:b, s:b, s:s, s:I, s:i, s:I, s:i, s:i, s:I, s:I, s:I, s:I}",
            "emulator", emu_id(e), "emu_domid", e->emu_domid, "ioservid", e->ioservid,
            "alive", e->alive, "registered", e->has_chan,
            "invalidate", !e->has_chan ? "none" :
                (e->caps & IOMAP_EMU_CAP_INVALIDATE_PAGE) ? "per-page" : "global",
            "mappings", (json_int_t)maps, "domains", ndoms,
            "held_pages", (json_int_t)e->held_pages,
            "queued_ranges", (int)e->qlen,
            "in_flight", e->has_chan ? (int)e->chan.busy : 0,
            "invalidates_sent", (json_int_t)e->invalidates_sent,
            "answers", (json_int_t)e->answers,
            "forced_unmaps", (json_int_t)e->forced_unmaps,
            "bad_unmaps", (json_int_t)e->bad_unmaps));
    }
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
        a > IOMAPD_MAX_EMUS || b > IOMAPD_MAX_DOMID)
        return -1;
    *slot = a;
    *domid = b;
    *gfn = g;
    return 0;
}

static int
m_mapping_list(struct ctl_call *call, json_t *params, json_t **result)
{
    const struct core *d = &call->ctl->io->d;
    uint64_t domid = 0, limit = CTL_DEFAULT_LIMIT, gfn_lo = 0, gfn_hi = UINT64_MAX - 1;
    uint16_t edom = 0, eserv = 0;
    int have_dom, have_emu, err = 0;
    uint32_t slot = 0, cdom = 0;
    uint64_t cgfn = 0;
    json_t *a, *jc, *next = json_null();
    uint64_t n = 0, t_end = iomapd_now_ns() + CTL_LIST_BUDGET_NS;

    if ((have_dom = p_uint(call, params, "domid", IOMAPD_MAX_DOMID - 1, &domid, &err)) < 0 ||
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
    a = json_array();
    for (; slot < d->nemus && a; slot++, cdom = 0, cgfn = 0) {
        const struct emu *e = d->emus[slot];
        json_t *eid;

        if (e == NULL || (have_emu && (e->emu_domid != edom || e->ioservid != eserv)))
            continue;
        eid = emu_id(e);        /* one string per emulator, shared by its entries */
        for (uint32_t dm = cdom; dm < IOMAPD_MAX_DOMID; dm++, cgfn = 0) {
            const struct emu_map *em = NULL, *it;
            uint64_t g;

            if (have_dom && dm != domid)
                continue;
            if (d->doms[dm] == NULL)
                continue;
            LIST_FOREACH(it, &e->maps, emu_link)
                if (it->dom->domid == dm)
                    em = it;
            if (em == NULL || em->fs.total == 0)
                continue;
            g = cgfn > gfn_lo ? cgfn : gfn_lo;
            for (g = fset_next(&em->fs, g); g != UINT64_MAX && g <= gfn_hi;
                 g = fset_next(&em->fs, g + 1)) {
                /*
                 * Bounded work per call: the loop (and the events) wait
                 * for it.  Past the time budget the page is short and
                 * carries a cursor; the client asks for the rest.  A page
                 * holds at least CTL_LIST_MIN_PAGE entries (or the limit),
                 * so that a slow machine still makes progress and the
                 * result does not depend on timing below that size.
                 */
                if (n == limit || (n >= CTL_LIST_MIN_PAGE && n % 32 == 0 &&
                                   iomapd_now_ns() > t_end)) {
                    char cur[64];

                    snprintf(cur, sizeof(cur), "m1.%u.%u.%" PRIx64, slot, dm, g);
                    next = json_string(cur);
                    json_decref(eid);
                    goto done;
                }
                json_array_append_new(a, json_pack("{s:O, s:i, s:I, s:i}",
                    "emulator", eid, "domid", (int)dm, "gfn", (json_int_t)g,
                    "count", (int)fset_count(&em->fs, g)));
                n++;
            }
        }
        json_decref(eid);
    }
done:
    *result = json_pack("{s:o, s:o}", "mappings", a, "next_cursor", next);
    return *result ? 0 : RPC_INTERNAL_ERROR;
}

/* ---- page.list ---------------------------------------------------------------- */

static int
m_page_list(struct ctl_call *call, json_t *params, json_t **result)
{
    const struct core *d = &call->ctl->io->d;
    uint64_t now = iomapd_now_ns();
    uint64_t domid = 0, limit = CTL_DEFAULT_LIMIT, pos = 0;
    int have_dom, want = 0, err = 0;
    uint32_t scanned = 0;
    json_t *a, *jc, *js, *next = json_null();
    uint64_t n = 0;

    if ((have_dom = p_uint(call, params, "domid", IOMAPD_MAX_DOMID - 1, &domid, &err)) < 0 ||
        p_uint(call, params, "limit", CTL_MAX_LIMIT, &limit, &err) < 0)
        return err;
    if (limit == 0)
        return ctl_err(call, RPC_INVALID_PARAMS, "limit must be at least 1");
    js = json_object_get(params, "state");
    if (js && !json_is_null(js)) {
        if (json_is_string(js) && !strcmp(json_string_value(js), "invalidating"))
            want = PAGE_INVALIDATING;
        else if (json_is_string(js) && !strcmp(json_string_value(js), "flushing"))
            want = PAGE_FLUSHING;
        else
            return ctl_err(call, RPC_INVALID_PARAMS,
                           "state must be \"invalidating\" or \"flushing\"");
    }
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
    a = json_array();
    for (; pos < d->pages_cap && a; pos++) {
        const struct page *p = &d->pages[pos];
        json_t *hold;

        if (n == limit || scanned == CTL_PAGE_SCAN) {
            char cur[32];

            /* Bounded work per request: the client asks for the rest. */
            snprintf(cur, sizeof(cur), "p1.%" PRIu64, pos);
            next = json_string(cur);
            break;
        }
        scanned++;
        if (p->state == PAGE_FREE || (want && p->state != want) ||
            (have_dom && p->domid != domid))
            continue;
        hold = json_array();
        for (unsigned i = 0; i < p->nholders; i++) {
            const struct holder *h = i < IOMAPD_INLINE_HOLDERS ? &p->h[i] :
                                     &p->more[i - IOMAPD_INLINE_HOLDERS];
            const struct emu *e = d->emus[h->emu];

            if (e)
                json_array_append_new(hold, json_pack("{s:o, s:i}", "emulator",
                                                      emu_id(e), "count", h->count));
        }
        json_array_append_new(a, json_pack(
            "{s:i, s:I, s:I, s:s, s:f, s:{s:o, s:I, s:I, s:b}}",
            "domid", p->domid, "gfn", (json_int_t)p->gfn, "mfn", (json_int_t)p->mfn,
            "state", page_state_name(p->state),
            "age_ms", (double)(now - p->t_removed) / 1e6,
            "waits_for", "holders", hold,
            "cover_seq", (json_int_t)p->cover_seq,
            "flush_done_seq", (json_int_t)d->max_done,
            "flush_queued", d->max_queued >= p->cover_seq));
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
    const struct core_stats *st = &ctl->io->d.st;
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
    const struct iomapd *io = call->ctl->io;
    const struct core *d = &io->d;
    const struct core_stats *st = &d->st;
    struct sbuf b = { 0 };
    uint64_t cum = 0;
    int top = -1;

#define X(f) prom(&b, #f "_total", "counter", "Daemon counter " #f " (see iomapd-api(7)).", st->f);
    COUNTERS(X)
#undef X
    prom(&b, "domains", "gauge", "Domains with mappings or pages in flight.",
         core_domains(d));
    prom(&b, "emulators", "gauge", "Emulators known to the daemon.", core_emulators(d));
    prom(&b, "mappings", "gauge", "Emulator mappings of guest pages.", core_mappings(d));
    sb_printf(&b, "# HELP iomapd_pages Removed pages not yet released, by state.\n"
              "# TYPE iomapd_pages gauge\n"
              "iomapd_pages{state=\"invalidating\"} %" PRIu64 "\n"
              "iomapd_pages{state=\"flushing\"} %" PRIu64 "\n",
              d->n_invalidating, d->n_flushing);
    sb_printf(&b, "# HELP iomapd_uptime_seconds Time since iomapd started.\n"
              "# TYPE iomapd_uptime_seconds gauge\niomapd_uptime_seconds %.3f\n",
              (double)(iomapd_now_ns() - io->started_ns) / 1e9);
    sb_printf(&b, "# HELP iomapd_emulator_held_pages Removed pages waiting for this "
              "emulator's unmap.\n# TYPE iomapd_emulator_held_pages gauge\n");
    for (uint32_t i = 0; i < d->nemus; i++)
        if (d->emus[i])
            sb_printf(&b, "iomapd_emulator_held_pages{emulator=\"%u:%u\"} %" PRIu64 "\n",
                      d->emus[i]->emu_domid, d->emus[i]->ioservid,
                      d->emus[i]->held_pages);
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

struct ctl_drain {
    struct ctl        *ctl;
    struct ctl_client *c;           /* NULL once the caller went away */
    json_t            *id;
    uint16_t           emu_domid, ioservid;
    int                unmap_all;
    uint64_t           t0, deadline;
    uint64_t           held0;
    LIST_ENTRY(ctl_drain) link;
};

static void
drain_reply(struct ctl_drain *dr, const char *outcome, uint64_t forced,
            uint64_t maps_left)
{
    char id[16];

    snprintf(id, sizeof(id), "%u:%u", dr->emu_domid, dr->ioservid);
    ctl_respond(dr->c, dr->id, json_pack("{s:s, s:s, s:I, s:I, s:I, s:f}",
                "emulator", id, "outcome", outcome,
                "held_pages_at_start", (json_int_t)dr->held0,
                "forced_pages", (json_int_t)forced,
                "mappings_left", (json_int_t)maps_left,
                "elapsed_ms", (double)(iomapd_now_ns() - dr->t0) / 1e6), 0, NULL, NULL);
    LIST_REMOVE(dr, link);
    json_decref(dr->id);
    free(dr);
}

/* 1 if the drain is over (and answered). */
static int
drain_step(struct ctl_drain *dr)
{
    struct iomapd *io = dr->ctl->io;
    struct emu *e = emu_get(&io->d, dr->emu_domid, dr->ioservid, 0);
    uint64_t maps;

    if (e == NULL) {
        drain_reply(dr, "gone", 0, 0);
        return 1;
    }
    maps = emu_mappings(e);
    if (e->held_pages == 0 && e->qlen == 0 && !e->need_global) {
        if (dr->unmap_all && maps) {
            /* Leaving for good: nothing pending, drop what is left. */
            emu_force_unmap_all(&io->d, e);
            e->forced_unmaps += maps;
            iomapd_process(io);
            drain_reply(dr, "drained", 0, 0);
        } else {
            drain_reply(dr, "drained", 0, maps);
        }
        return 1;
    }
    if (iomapd_now_ns() >= dr->deadline) {
        uint64_t held = e->held_pages;

        log_warnx("drain of emulator %u:%u: %llu pages still held at the deadline: "
                  "force-unmapping", e->emu_domid, e->ioservid, (unsigned long long)held);
        CORE_OBSERVE(&io->d, timeout, e, IOMAP_DOMID_ANY, 0, "drain deadline");
        emu_force_unmap_all(&io->d, e);
        e->forced_unmaps += held;
        iomapd_process(io);
        drain_reply(dr, "forced", held, 0);
        return 1;
    }
    return 0;
}

void
ctl_drains_tick(struct ctl *ctl)
{
    struct ctl_drain *dr, *next;

    for (dr = LIST_FIRST(&ctl->drains); dr; dr = next) {
        next = LIST_NEXT(dr, link);
        drain_step(dr);
    }
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
    struct iomapd *io = ctl->io;
    uint16_t edom, eserv;
    uint64_t timeout_ms = 5000;
    int have, unmap_all = 0, err = 0;
    struct ctl_drain *dr;
    struct emu *e;

    if ((have = p_emulator(call, params, "emulator", &edom, &eserv, &err)) < 0 ||
        p_uint(call, params, "timeout_ms", 3600 * 1000, &timeout_ms, &err) < 0 ||
        p_bool(call, params, "unmap_all", &unmap_all, &err) < 0)
        return err;
    if (!have)
        return ctl_err(call, RPC_INVALID_PARAMS, "emulator is required (\"D:N\")");
    e = emu_get(&io->d, edom, eserv, 0);
    if (e == NULL)
        return ctl_err(call, APP_NO_SUCH_EMULATOR, "no emulator %u:%u", edom, eserv);
    LIST_FOREACH(dr, &ctl->drains, link)
        if (dr->emu_domid == edom && dr->ioservid == eserv)
            return ctl_err(call, APP_DRAIN_IN_PROGRESS,
                           "emulator %u:%u is already being drained", edom, eserv);
    dr = calloc(1, sizeof(*dr));
    if (dr == NULL)
        return ctl_err(call, RPC_INTERNAL_ERROR, "out of memory");
    dr->ctl = ctl;
    dr->c = call->id ? call->c : NULL;    /* a notification gets no answer */
    dr->id = call->id ? json_incref(call->id) : NULL;
    dr->emu_domid = edom;
    dr->ioservid = eserv;
    dr->unmap_all = unmap_all;
    dr->t0 = iomapd_now_ns();
    dr->deadline = dr->t0 + timeout_ms * 1000000ull;
    dr->held0 = e->held_pages;
    LIST_INSERT_HEAD(&ctl->drains, dr, link);
    log_info("drain of emulator %u:%u requested by uid %u: %llu pages pending, "
             "deadline %llu ms", edom, eserv, (unsigned)call->c->uid,
             (unsigned long long)e->held_pages, (unsigned long long)timeout_ms);
    /* Make sure what it has pending is asked for now. */
    iomapd_process(io);
    drain_step(dr);     /* may answer at once, through ctl_respond */
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
    const struct policy *p = call->ctl->io->d.policy;

    if (p == NULL)
        return ctl_err(call, APP_NO_POLICY, "no policy in force");
    *result = json_pack("{s:s, s:s, s:b, s:i, s:i, s:i, s:{s:I, s:I, s:I, s:I}, s:{s:o, s:o}}",
        "source", p->source, "config", call->ctl->io->opt.config,
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
    struct iomapd *io = call->ctl->io;
    char err[POLICY_ERRLEN];
    int rc = iomapd_load_policy(io, err, sizeof(err));

    if (rc < 0) {
        call->data = json_pack("{s:s}", "config", io->opt.config);
        return ctl_err(call, APP_POLICY_INVALID, "policy refused, the old one stays: %s", err);
    }
    *result = json_pack("{s:s, s:s}", "config", io->opt.config,
                        "source", rc == 1 ? "built-in" : io->d.policy->source);
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
