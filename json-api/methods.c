/* SPDX-License-Identifier: MIT */
/*
 * The JSON-RPC methods of iomapd.  One table (ctl_methods), which also
 * holds each method's parameters (struct ctl_param: name, type, required,
 * bounds) and admin flag: the dispatcher refuses names not in it, the p_*
 * helpers read values through it, and tests/test_methods.c checks it
 * against json-api/schema/.  Each method gets its params already checked
 * to be an object with only known names, returns 0 with *result set or an
 * error code with call->msg, and never writes to the client itself:
 * control.c's ctl_respond() is the only way out.  Results are described
 * in json-api/schema/ and iomapd-api(7).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "iomap.h"
#include "daemon/core/core.h"
#include "util/clock.h"
#include "util/log.h"
#include "json-api/ctl.h"
#include "json-api/metrics.h"
#include "policy/policy.h"

#define API_VERSION 1

/* ---- parameter helpers ------------------------------------------------------ */

/*
 * Every helper reads one parameter of the calling method's table
 * (ctl_methods[] below, struct ctl_param): its type, bounds and whether it
 * is required come from there, never from the caller.  Asking for a name
 * the table does not have, or as another type, is a bug of this file and
 * answers an internal error, so that a typo cannot silently read nothing.
 * Each returns 1 (present, *out set), 0 (absent; *out untouched) or -1
 * (*err set to the error code to return).
 */
static const struct ctl_param *
p_spec(struct ctl_call *call, const char *name, enum ctl_ptype type, int *err)
{
    const struct ctl_param *p = call->method ? ctl_param_find(call->method, name) : NULL;

    if (p == NULL || p->type != type) {
        log_warnx("internal: method %s reads parameter '%s' %s",
                call->method ? call->method->name : "?", name,
                p ? "as another type than its table says" : "that its table lacks");
        *err = ctl_err(call, RPC_INTERNAL_ERROR,
                       "internal error: parameter '%s' is not in the method's table", name);
        return NULL;
    }
    return p;
}

/* The value of parameter name, NULL if absent; -1 if required and absent. */
static int
p_value(struct ctl_call *call, json_t *params, const char *name, enum ctl_ptype type,
        const struct ctl_param **spec, json_t **v, int *err)
{
    if ((*spec = p_spec(call, name, type, err)) == NULL)
        return -1;
    *v = json_object_get(params, name);
    if (*v && type == CTL_P_CURSOR && json_is_null(*v))
        *v = NULL;              /* null: from the start */
    if (*v == NULL && (*spec)->required) {
        *err = ctl_err(call, RPC_INVALID_PARAMS, "%s is required", name);
        return -1;
    }
    return *v != NULL;
}

static int
p_uint(struct ctl_call *call, json_t *params, const char *name, uint64_t *out, int *err)
{
    const struct ctl_param *p;
    json_t *v;
    int rc = p_value(call, params, name, CTL_P_UINT, &p, &v, err);

    if (rc <= 0)
        return rc;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (uint64_t)json_integer_value(v) < p->min ||
        (uint64_t)json_integer_value(v) > p->max) {
        *err = ctl_err(call, RPC_INVALID_PARAMS,
                       "%s must be an integer from %" PRIu64 " to %" PRIu64,
                       name, p->min, p->max);
        return -1;
    }
    *out = (uint64_t)json_integer_value(v);
    return 1;
}

static int
p_bool(struct ctl_call *call, json_t *params, const char *name, int *out, int *err)
{
    const struct ctl_param *p;
    json_t *v;
    int rc = p_value(call, params, name, CTL_P_BOOL, &p, &v, err);

    if (rc <= 0)
        return rc;
    if (!json_is_boolean(v)) {
        *err = ctl_err(call, RPC_INVALID_PARAMS, "%s must be true or false", name);
        return -1;
    }
    *out = json_is_true(v);
    return 1;
}

/* The index in values[] of the string s, or -1. */
static int
p_index(const char *const *values, json_t *s)
{
    if (!json_is_string(s))
        return -1;
    for (int i = 0; values[i]; i++)
        if (strcmp(values[i], json_string_value(s)) == 0)
            return i;
    return -1;
}

static json_t *
p_values_json(const char *const *values)
{
    json_t *a = json_array();

    for (int i = 0; a && values[i]; i++)
        json_array_append_new(a, json_string(values[i]));
    return a;
}

/* One of the table's strings: its index. */
static int
p_enum(struct ctl_call *call, json_t *params, const char *name, int *out, int *err)
{
    const struct ctl_param *p;
    json_t *v;
    int rc = p_value(call, params, name, CTL_P_ENUM, &p, &v, err), i;

    if (rc <= 0)
        return rc;
    if ((i = p_index(p->values, v)) < 0) {
        call->data = json_pack("{s:o}", "known", p_values_json(p->values));
        *err = ctl_err(call, RPC_INVALID_PARAMS, "%s must be one of the known names", name);
        return -1;
    }
    *out = i;
    return 1;
}

/*
 * An array of the table's strings: bit i set for values[i].  A string
 * not in the table answers unknown_code (with the known ones as data).
 */
static int
p_enums(struct ctl_call *call, json_t *params, const char *name, int unknown_code,
        unsigned *out, int *err)
{
    const struct ctl_param *p;
    json_t *v, *x;
    int rc = p_value(call, params, name, CTL_P_ENUMS, &p, &v, err), i;
    unsigned bits = 0;
    size_t k;

    if (rc <= 0)
        return rc;
    if (!json_is_array(v)) {
        *err = ctl_err(call, RPC_INVALID_PARAMS, "%s must be an array of strings", name);
        return -1;
    }
    json_array_foreach(v, k, x) {
        if (!json_is_string(x)) {
            *err = ctl_err(call, RPC_INVALID_PARAMS, "%s must be an array of strings", name);
            return -1;
        }
        if ((i = p_index(p->values, x)) < 0) {
            call->data = json_pack("{s:o}", "known", p_values_json(p->values));
            *err = ctl_err(call, unknown_code, "no %s '%s'", name, json_string_value(x));
            return -1;
        }
        bits |= 1u << i;
    }
    *out = bits;
    return 1;
}

/* A cursor: a string, or null (from the start). */
static int
p_cursor(struct ctl_call *call, json_t *params, const char *name, const char **out,
         int *err)
{
    const struct ctl_param *p;
    json_t *v;
    int rc = p_value(call, params, name, CTL_P_CURSOR, &p, &v, err);

    if (rc <= 0)
        return rc;
    if (!json_is_string(v)) {
        *err = ctl_err(call, RPC_INVALID_PARAMS, "%s must be a string or null", name);
        return -1;
    }
    *out = json_string_value(v);
    return 1;
}

/*
 * Decimal digits only (no sign, no space, no "0x") up to max, from *s; *s
 * moves past them.  -1 if there is no digit or the value passes max.
 */
static int
dec_strict(const char **s, const char *end, unsigned max, unsigned *out)
{
    const char *p = *s;
    unsigned long v = 0;

    if (p == end || *p < '0' || *p > '9')
        return -1;
    for (; p < end && *p >= '0' && *p <= '9'; p++)
        if ((v = v * 10 + (unsigned long)(*p - '0')) > max)
            return -1;
    *s = p;
    *out = (unsigned)v;
    return 0;
}

/*
 * "D:N" exactly: digits, one colon, digits, nothing else; D is a domid
 * below Xen's reserved ones, N an ioreq server id.  0 or -1.
 */
static int
parse_emulator(const char *s, size_t len, struct core_emu_id *id)
{
    const char *p = s, *end = s + len;
    unsigned a, t, b;

    if (dec_strict(&p, end, CTL_EMU_DOMID_MAX, &a) < 0 || p == end || *p++ != ':' ||
        dec_strict(&p, end, CTL_EMU_DOMID_MAX, &t) < 0 || p == end || *p++ != ':' ||
        dec_strict(&p, end, CTL_IOSERVID_MAX, &b) < 0 || p != end)
        return -1;
    id->emu_domid = (uint16_t)a;
    id->target = (uint16_t)t;
    id->ioservid = (uint16_t)b;
    return 0;
}

static int
json_uint_in(const json_t *v, json_int_t max)
{
    return json_is_integer(v) && json_integer_value(v) >= 0 &&
           json_integer_value(v) <= max;
}

/*
 * An emulator, as Xen names its ioreq server: "EMU_DOMID:TARGET:IOSERVID"
 * or {"emu_domid": D, "target": T, "ioservid": N}.
 */
static int
p_emulator(struct ctl_call *call, json_t *params, const char *name,
           struct core_emu_id *out, int *err)
{
    const struct ctl_param *p;
    json_t *v;
    int rc = p_value(call, params, name, CTL_P_EMULATOR, &p, &v, err);

    if (rc <= 0)
        return rc;
    if (json_is_string(v)) {
        if (parse_emulator(json_string_value(v), json_string_length(v), out) == 0)
            return 1;
    } else if (json_is_object(v)) {
        json_t *a = json_object_get(v, "emu_domid"), *t = json_object_get(v, "target"),
               *b = json_object_get(v, "ioservid");

        if (json_object_size(v) == 3 && json_uint_in(a, CTL_EMU_DOMID_MAX) &&
            json_uint_in(t, CTL_EMU_DOMID_MAX) && json_uint_in(b, CTL_IOSERVID_MAX)) {
            out->emu_domid = (uint16_t)json_integer_value(a);
            out->target = (uint16_t)json_integer_value(t);
            out->ioservid = (uint16_t)json_integer_value(b);
            return 1;
        }
    }
    *err = ctl_err(call, RPC_INVALID_PARAMS,
                   "%s must be \"EMU_DOMID:TARGET:IOSERVID\" in decimal digits (e.g. "
                   "\"0:1:0\"; domain ids up to %u, IOSERVID up to %u) or "
                   "{\"emu_domid\":D,\"target\":T,\"ioservid\":N}", name,
                   CTL_EMU_DOMID_MAX, CTL_IOSERVID_MAX);
    return -1;
}

static json_t *
emu_id(const struct core_emu_id *e)
{
    char id[24];

    snprintf(id, sizeof(id), CORE_EMU_FMT, CORE_EMU_ARGS(e));
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

/* ---- results written as JSON text (ctl_raw_result) --------------------------- */

/* A stack buffer in front of the result's evbuffer: one evbuffer_add per 16 KiB. */
struct rawbuf {
    struct evbuffer *out;
    size_t len;
    int    err;
    char   b[16384];
};

static void
rb_flush(struct rawbuf *rb)
{
    if (rb->len && evbuffer_add(rb->out, rb->b, rb->len) < 0)
        rb->err = 1;
    rb->len = 0;
}

static void
rb_mem(struct rawbuf *rb, const char *s, size_t n)
{
    if (rb->len + n > sizeof(rb->b))
        rb_flush(rb);
    if (n > sizeof(rb->b)) {
        rb->err |= evbuffer_add(rb->out, s, n) < 0;
        return;
    }
    memcpy(rb->b + rb->len, s, n);
    rb->len += n;
}

#define RB_LIT(rb, lit) rb_mem(rb, lit, sizeof(lit) - 1)

static void
rb_u64(struct rawbuf *rb, uint64_t v)
{
    char t[24];
    int i = sizeof(t);

    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    rb_mem(rb, t + i, sizeof(t) - (size_t)i);
}

/* A JSON string, as jansson's JSON_ENSURE_ASCII would write it. */
static void
rb_str(struct rawbuf *rb, const char *s)
{
    json_t *j;
    char *d;

    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f || *p == '"' || *p == '\\')
            goto escape;
    RB_LIT(rb, "\"");
    rb_mem(rb, s, strlen(s));
    RB_LIT(rb, "\"");
    return;
escape:
    j = json_string(s);
    d = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
    if (d)
        rb_mem(rb, d, strlen(d));
    else
        RB_LIT(rb, "null");
    free(d);
    json_decref(j);
}

/* Finish: 0, or RPC_INTERNAL_ERROR (out of memory) with the result dropped. */
static int
rb_end(struct rawbuf *rb, json_t **result)
{
    rb_flush(rb);
    if (rb->err) {
        json_decref(*result);
        *result = NULL;
        return RPC_INTERNAL_ERROR;
    }
    return 0;
}

/*
 * status: asked for by monitoring at a high rate, so written as text
 * (no jansson object); the counts come from the core without a scan.
 */
static int
m_status(struct ctl_call *call, json_t *params, json_t **result)
{
    const struct ctl_env *env = &call->ctl->env;
    const struct core_stats *st = core_stats(env->core);
    struct core_status cs;
    struct rawbuf *rb;
    char up[40];
    int rc;

    core_status(env->core, &cs);
    rb = malloc(sizeof(*rb));
    if (rb == NULL)
        return RPC_INTERNAL_ERROR;
    rb->len = 0;
    rb->err = 0;
    if ((*result = ctl_raw_result(call->ctl, &rb->out)) == NULL) {
        free(rb);
        return RPC_INTERNAL_ERROR;
    }
    snprintf(up, sizeof(up), "%.6f", (double)(clock_now_ns() - env->started_ns) / 1e9);
    RB_LIT(rb, "{\"state\":");
    rb_str(rb, call->ctl->stopping ? "stopping" : "running");
    RB_LIT(rb, ",\"version\":");
    rb_str(rb, PACKAGE_VERSION);
    RB_LIT(rb, ",\"uptime_s\":");
    rb_mem(rb, up, strlen(up));
    RB_LIT(rb, ",\"backend\":");
    rb_str(rb, env->backend ? env->backend : "none");
    if (cs.resyncing)
        RB_LIT(rb, ",\"resyncing\":true,\"domains\":");
    else
        RB_LIT(rb, ",\"resyncing\":false,\"domains\":");
    rb_u64(rb, cs.domains);
    RB_LIT(rb, ",\"emulators\":");
    rb_u64(rb, cs.emulators);
    RB_LIT(rb, ",\"mappings\":");
    rb_u64(rb, cs.mappings);
    RB_LIT(rb, ",\"pages\":{\"invalidating\":");
    rb_u64(rb, cs.invalidating);
    RB_LIT(rb, ",\"flushing\":");
    rb_u64(rb, cs.flushing);
    RB_LIT(rb, ",\"removed\":");
    rb_u64(rb, st->pages_removed);
    RB_LIT(rb, ",\"released\":");
    rb_u64(rb, st->pages_released);
    RB_LIT(rb, "},\"clients\":");
    rb_u64(rb, call->ctl->nclients);
    RB_LIT(rb, "}");
    rc = rb_end(rb, result);
    free(rb);
    return rc;
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
            "{s:o, s:i, s:i, s:i, s:b, s:b, s:s, s:I, s:i, s:I, s:i, s:i, s:I, s:I, s:I, s:I}",
            "emulator", emu_id(&e.id), "emu_domid", e.id.emu_domid,
            "target", e.id.target,
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
    struct core_emu_id emu = { 0, 0, 0 };
    int have_dom, have_emu, err = 0;
    uint32_t slot = 0, cdom = 0;
    uint64_t cgfn = 0;
    const char *cursor = NULL;
    char next[64] = "", id[64];
    int idlen = 0, rc;
    struct rawbuf *rb;
    uint64_t n = 0, t_end = clock_now_ns() + CTL_LIST_BUDGET_NS;

    if ((have_dom = p_uint(call, params, "domid", &domid, &err)) < 0 ||
        (have_emu = p_emulator(call, params, "emulator", &emu, &err)) < 0 ||
        p_uint(call, params, "gfn_start", &gfn_lo, &err) < 0 ||
        p_uint(call, params, "gfn_end", &gfn_hi, &err) < 0 ||
        p_uint(call, params, "limit", &limit, &err) < 0 ||
        p_cursor(call, params, "cursor", &cursor, &err) < 0)
        return err;
    if (gfn_lo > gfn_hi)
        return ctl_err(call, RPC_INVALID_PARAMS, "gfn_start is above gfn_end");
    if (cursor && parse_cursor_m(cursor, &slot, &cdom, &cgfn) < 0)
        return ctl_err(call, APP_BAD_CURSOR, "cursor is not one this daemon gave out");
    f.gfn_lo = gfn_lo;
    f.gfn_hi = gfn_hi;
    f.have_domid = have_dom;
    f.domid = (uint16_t)domid;
    f.have_emu = have_emu;
    f.emu = emu;
    cur.slot = slot;
    cur.domid = cdom;
    cur.gfn = cgfn;
    /* Written as text: a jansson object per entry cost ~5 us. */
    rb = malloc(sizeof(*rb));
    if (rb == NULL)
        return RPC_INTERNAL_ERROR;
    rb->len = 0;
    rb->err = 0;
    if ((*result = ctl_raw_result(call->ctl, &rb->out)) == NULL) {
        free(rb);
        return RPC_INTERNAL_ERROR;
    }
    RB_LIT(rb, "{\"mappings\":[");
    for (;;) {
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

            /* A cursor only if something is left (peek without moving on). */
            if (core_map_list(core, &f, &peek, batch, 1) == 0)
                break;
            snprintf(next, sizeof(next), "m1.%u.%u.%" PRIx64, cur.slot, cur.domid, cur.gfn);
            break;
        }
        got = core_map_list(core, &f, &cur, batch, want);
        for (size_t i = 0; i < got; i++) {
            if (n + i)
                RB_LIT(rb, ",");
            if (i == 0 || !core_emu_id_eq(&batch[i].emu, &batch[i - 1].emu)) {
                idlen = snprintf(id, sizeof(id), "{\"emulator\":\"" CORE_EMU_FMT "\",\"domid\":",
                                 CORE_EMU_ARGS(&batch[i].emu));
                if (idlen < 0 || (size_t)idlen >= sizeof(id))
                    idlen = 0;
            }
            rb_mem(rb, id, (size_t)idlen);
            rb_u64(rb, batch[i].domid);
            RB_LIT(rb, ",\"gfn\":");
            rb_u64(rb, batch[i].gfn);
            RB_LIT(rb, ",\"count\":");
            rb_u64(rb, batch[i].count);
            RB_LIT(rb, "}");
        }
        n += got;
        if (got < want)
            break;              /* the end */
    }
    RB_LIT(rb, "],\"next_cursor\":");
    if (next[0])
        rb_str(rb, next);
    else
        RB_LIT(rb, "null");
    RB_LIT(rb, "}");
    rc = rb_end(rb, result);
    free(rb);
    return rc;
}

/* ---- page.list ---------------------------------------------------------------- */

/* page.list's "state" values (page_list_state_names) and what they filter. */
static const char *const page_list_state_names[] = { "invalidating", "flushing", NULL };
static const enum core_page_state page_list_states[] = {
    CORE_PAGE_INVALIDATING, CORE_PAGE_FLUSHING,
};

static int
m_page_list(struct ctl_call *call, json_t *params, json_t **result)
{
    const struct core *core = call->ctl->env.core;
    struct core_page_filter f = { 0 };
    struct core_page_info pi;
    struct core_status cs;
    uint64_t domid = 0, limit = CTL_DEFAULT_LIMIT, pos = 0;
    int have_dom, have_state, state = 0, err = 0;
    uint32_t budget = CTL_PAGE_SCAN;
    const char *cursor = NULL;
    json_t *a, *next = json_null();
    uint64_t n = 0;

    if ((have_dom = p_uint(call, params, "domid", &domid, &err)) < 0 ||
        p_uint(call, params, "limit", &limit, &err) < 0 ||
        (have_state = p_enum(call, params, "state", &state, &err)) < 0 ||
        p_cursor(call, params, "cursor", &cursor, &err) < 0)
        return err;
    if (have_state)
        f.state = page_list_states[state];
    f.have_domid = have_dom;
    f.domid = (uint16_t)domid;
    if (cursor) {
        unsigned long long v;
        char tail;

        if (sscanf(cursor, "p1.%llu%c", &v, &tail) != 1)
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

#define COUNTERS(X) METRICS_COUNTERS(X)     /* json-api/metrics.h */

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

/* The Prometheus text format (json-api/metrics.c; iomapd --metrics serves
 * it, and OpenMetrics, over HTTP). */
static int
m_metrics(struct ctl_call *call, json_t *params, json_t **result)
{
    size_t len;
    char *s = metrics_render(call->ctl, METRICS_PROMETHEUS, &len);

    if (s == NULL)
        return ctl_err(call, RPC_INTERNAL_ERROR, "out of memory");
    *result = json_stringn(s, len);
    free(s);
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
    char id[24];

    snprintf(id, sizeof(id), CORE_EMU_FMT, CORE_EMU_ARGS(e));
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
    int unmap_all = 0, err = 0, rc;
    struct ctl_drain *dr;

    /* "emulator" is required: the table says so, p_emulator refuses its absence. */
    if (p_emulator(call, params, "emulator", &emu, &err) < 0 ||
        p_uint(call, params, "timeout_ms", &timeout_ms, &err) < 0 ||
        p_bool(call, params, "unmap_all", &unmap_all, &err) < 0)
        return err;
    dr = calloc(1, sizeof(*dr));
    if (dr == NULL)
        return ctl_err(call, RPC_INTERNAL_ERROR, "out of memory");
    dr->ctl = ctl;
    dr->c = call->id ? call->c : NULL;    /* a notification gets no answer */
    dr->id = call->id ? json_incref(call->id) : NULL;
    dr->emu = emu;
    LIST_INSERT_HEAD(&ctl->drains, dr, link);
    log_info("drain of emulator " CORE_EMU_FMT " requested by uid %u",
             CORE_EMU_ARGS(&emu), (unsigned)call->c->uid);
    /* The core may end it at once, answering through drain_done. */
    rc = core_drain(ctl->env.core, &emu, timeout_ms * 1000000ull, unmap_all,
                    drain_done, dr);
    if (rc < 0) {
        LIST_REMOVE(dr, link);
        json_decref(dr->id);
        free(dr);
        if (rc == -ENOENT)
            return ctl_err(call, APP_NO_SUCH_EMULATOR, "no emulator " CORE_EMU_FMT,
                           CORE_EMU_ARGS(&emu));
        if (rc == -EBUSY)
            return ctl_err(call, APP_DRAIN_IN_PROGRESS,
                           "emulator " CORE_EMU_FMT " is already being drained",
                           CORE_EMU_ARGS(&emu));
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

/*
 * policy.reload {"dry_run": true}: what the file would force-unmap of the
 * existing mappings, without putting it in force (xl iomap reload --check).
 */
static int
policy_dry_run(struct ctl_call *call, json_t **result)
{
    const struct ctl_env *env = &call->ctl->env;
    char err[POLICY_ERRLEN];
    struct policy *p = NULL;
    struct core_policy_preview *pv;
    json_t *runs;
    int rc;

    if (env->parse_policy == NULL)
        return ctl_err(call, RPC_INTERNAL_ERROR, "this daemon cannot read a policy aside");
    rc = env->parse_policy(env->arg, &p, err, sizeof(err));

    if (rc < 0) {
        call->data = json_pack("{s:s}", "config", env->config_path);
        return ctl_err(call, APP_POLICY_INVALID, "policy refused: %s", err);
    }
    pv = malloc(sizeof(*pv));
    if (pv == NULL) {
        policy_free(p);
        return ctl_err(call, RPC_INTERNAL_ERROR, "out of memory");
    }
    if (core_policy_preview(env->core, p, pv) < 0) {
        free(pv);
        policy_free(p);
        return ctl_err(call, APP_TOO_BUSY,
                       "the books are being rebuilt from the shim: ask again");
    }
    runs = json_array();
    for (uint32_t i = 0; runs && i < pv->nranges; i++) {
        const struct core_preview_range *r = &pv->ranges[i];

        json_array_append_new(runs, json_pack("{s:o, s:i, s:I, s:i, s:s}",
            "emulator", emu_id(&r->emu), "domid", (int)r->domid,
            "gfn", (json_int_t)r->gfn, "nr", (int)r->nr,
            "verdict", policy_verdict_name((enum policy_verdict)r->verdict)));
    }
    *result = json_pack("{s:s, s:s, s:b, s:I, s:I, s:{s:I, s:I}, s:o, s:b}",
                        "config", env->config_path,
                        "source", rc == 1 ? "built-in" : p->source,
                        "dry_run", 1,
                        "checked", (json_int_t)pv->checked,
                        "would_force_unmap", (json_int_t)(pv->denied + pv->reserved),
                        "by_verdict", "denied", (json_int_t)pv->denied,
                        "rmrr", (json_int_t)pv->reserved,
                        "runs", runs, "runs_truncated", pv->truncated);
    free(pv);
    policy_free(p);
    return *result ? 0 : RPC_INTERNAL_ERROR;
}

static int
m_policy_reload(struct ctl_call *call, json_t *params, json_t **result)
{
    const struct ctl_env *env = &call->ctl->env;
    char err[POLICY_ERRLEN];
    int dry = 0, e = 0, rc;

    if (p_bool(call, params, "dry_run", &dry, &e) < 0)
        return e;
    if (dry)
        return policy_dry_run(call, result);
    rc = env->reload_policy(env->arg, err, sizeof(err));

    if (rc < 0) {
        call->data = json_pack("{s:s}", "config", env->config_path);
        return ctl_err(call, APP_POLICY_INVALID, "policy refused, the old one stays: %s", err);
    }
    *result = json_pack("{s:s, s:s}", "config", env->config_path,
                        "source", rc == 1 ? "built-in" : core_policy(env->core)->source);
    return *result ? 0 : RPC_INTERNAL_ERROR;
}

/* ---- subscribe ----------------------------------------------------------------- */

/* subscribe's "events": bit i of the subscription is note_events[i]. */
static const char *const note_events[] = {
    "page.released", "page.timeout", "emulator.gone", NULL,
};
_Static_assert(NOTE_PAGE_RELEASED == 1u << 0 && NOTE_PAGE_TIMEOUT == 1u << 1 &&
               NOTE_EMU_GONE == 1u << 2, "note_events[] is in NOTE_* bit order");

static int
m_subscribe(struct ctl_call *call, json_t *params, json_t **result)
{
    unsigned bits = 0;
    int err = 0;
    json_t *out;

    if (p_enums(call, params, "events", APP_BAD_EVENT, &bits, &err) < 0)
        return err;
    call->c->subs = bits;
    out = json_array();
    for (int k = 0; note_events[k]; k++)
        if (bits & (1u << k))
            json_array_append_new(out, json_string(note_events[k]));
    *result = json_pack("{s:o}", "subscribed", out);
    return *result ? 0 : RPC_INTERNAL_ERROR;
}

/* ---- the table ------------------------------------------------------------------- */

/*
 * The one description of every method's parameters and admin flag.
 * tests/test_methods.c checks it against json-api/schema/<method>.json.
 */
_Static_assert(CTL_EMU_DOMID_MAX == CORE_MAX_DOMID - 1, "emulator domids are domids");

#define UINT_P(n, req, lo, hi) { n, CTL_P_UINT, req, lo, hi, NULL }
#define BOOL_P(n)              { n, CTL_P_BOOL, 0, 0, 0, NULL }
#define EMU_P(n, req)          { n, CTL_P_EMULATOR, req, 0, 0, NULL }
#define CURSOR_P(n)            { n, CTL_P_CURSOR, 0, 0, 0, NULL }
#define ENUM_P(n, req, v)      { n, CTL_P_ENUM, req, 0, 0, v }
#define ENUMS_P(n, req, v)     { n, CTL_P_ENUMS, req, 0, 0, v }
#define END_P                  { NULL, 0, 0, 0, 0, NULL }

static const struct ctl_param no_params[] = { END_P };

static const struct ctl_param mapping_list_params[] = {
    UINT_P("domid", 0, 0, CORE_MAX_DOMID - 1),
    EMU_P("emulator", 0),
    UINT_P("gfn_start", 0, 0, UINT64_MAX >> 12),
    UINT_P("gfn_end", 0, 0, UINT64_MAX >> 12),
    CURSOR_P("cursor"),
    UINT_P("limit", 0, 1, CTL_MAX_LIMIT),
    END_P
};

static const struct ctl_param page_list_params[] = {
    UINT_P("domid", 0, 0, CORE_MAX_DOMID - 1),
    ENUM_P("state", 0, page_list_state_names),
    CURSOR_P("cursor"),
    UINT_P("limit", 0, 1, CTL_MAX_LIMIT),
    END_P
};

static const struct ctl_param emulator_drain_params[] = {
    EMU_P("emulator", 1),
    UINT_P("timeout_ms", 0, 0, 3600 * 1000),
    BOOL_P("unmap_all"),
    END_P
};

static const struct ctl_param policy_reload_params[] = {
    BOOL_P("dry_run"),
    END_P
};

static const struct ctl_param subscribe_params[] = {
    ENUMS_P("events", 1, note_events),
    END_P
};

static const struct ctl_method ctl_methods[] = {
    { "version",        m_version,        0,       no_params },
    { "status",         m_status,         0,       no_params },
    { "domain.list",    m_domain_list,    0,       no_params },
    { "emulator.list",  m_emulator_list,  0,       no_params },
    { "mapping.list",   m_mapping_list,   0,       mapping_list_params },
    { "page.list",      m_page_list,      0,       page_list_params },
    { "stats",          m_stats,          0,       no_params },
    { "metrics",        m_metrics,        0,       no_params },
    { "emulator.drain", m_emulator_drain, M_ADMIN | M_DEFERRED, emulator_drain_params },
    { "policy.get",     m_policy_get,     0,       no_params },
    { "policy.reload",  m_policy_reload,  M_ADMIN, policy_reload_params },
    { "subscribe",      m_subscribe,      0,       subscribe_params },
};

const struct ctl_method *
ctl_method_at(size_t i)
{
    return i < sizeof(ctl_methods) / sizeof(ctl_methods[0]) ? &ctl_methods[i] : NULL;
}

const struct ctl_param *
ctl_param_find(const struct ctl_method *m, const char *name)
{
    for (const struct ctl_param *p = m->params; p && p->name; p++)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

const struct ctl_method *
ctl_method_find(const char *name)
{
    for (size_t i = 0; i < sizeof(ctl_methods) / sizeof(ctl_methods[0]); i++)
        if (strcmp(ctl_methods[i].name, name) == 0)
            return &ctl_methods[i];
    return NULL;
}
