/* SPDX-License-Identifier: MIT */
/*
 * The JSON-RPC method table (json-api/methods.c, ctl_methods[] and its
 * struct ctl_param tables) is the one description of each method's
 * parameters and admin flag.  This test holds the rest to it:
 *
 *   - json-api/schema/<method>.json: one file per method of the table and
 *     no other; "admin" is the table's M_ADMIN; "params" is exactly the
 *     schema the table implies (names, required, types, integer bounds,
 *     enums, the emulator's two forms), "description" keys aside;
 *   - the methods themselves, through ctl_request as a client would call
 *     them: every parameter of the table is read (a bad value of it is
 *     refused with -32602 or the method's own error), none is read under
 *     a name the table lacks (no -32603 for good values), a required one
 *     cannot be left out, and null is a value only for a cursor;
 *   - the emulator parameter's "E:T:N" form is strict (issue 12 item 10):
 *     decimal digits, one colon, nothing else; D below Xen's reserved
 *     domids (0x7ff0..), N up to 0xffff.
 */
#include "config.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tests/cunit_main.h"
#include "daemon/core/core.h"
#include "json-api/ctl.h"
#include "policy/policy.h"
#include "shim/ring.h"
#include "util/log.h"

#ifndef SCHEMA_DIR
#error "SCHEMA_DIR: the json-api/schema directory"
#endif

/* ---- a daemon's core and control server, no socket ------------------------------ */

#define EV_SLOTS  64u
#define CMD_SLOTS 64u

static struct iomap_ring shim, ring;
static void *region;
static struct core *books;
static struct ctl *ctl;

static uint64_t
clock_fn(void *arg)
{
    (void)arg;
    return 1000000000ull;
}

static void
kick_fn(void *arg)
{
    (void)arg;
}

static void
run_fn(void *arg)
{
    struct iomap_cmd c[64];

    (void)arg;
    core_process(books);
    while (iomap_ring_take_cmds(&shim, c, 64) > 0)
        ;
}

static int
reload_fn(void *arg, char *err, size_t errlen)
{
    (void)arg;
    (void)err;
    (void)errlen;
    return 1;                   /* no file: the built-in policy */
}

static int
parse_fn(void *arg, struct policy **pp, char *err, size_t errlen)
{
    (void)arg;
    (void)err;
    (void)errlen;
    *pp = policy_default();     /* no file: the built-in policy */
    return *pp ? 1 : -1;
}

static void
setup(void)
{
    size_t len = IOMAP_REGION_SIZE(EV_SLOTS, CMD_SLOTS);
    char err[128];
    struct core_env env = { .ring = &ring, .clock = clock_fn, .kick = kick_fn };
    struct ctl_env cenv = {
        .socket_path = "/test/iomapd.sock", .config_path = "/test/iomapd.conf",
        .backend = "test", .reload_policy = reload_fn, .parse_policy = parse_fn,
        .request_run = run_fn,
    };

    region = calloc(1, len);
    if (region == NULL ||
        iomap_ring_format(&shim, region, len, EV_SLOTS, CMD_SLOTS) < 0 ||
        iomap_ring_attach(&ring, region, len, err, sizeof(err)) < 0 ||
        (books = core_new(&env)) == NULL)
        abort();
    cenv.core = books;
    if ((ctl = ctl_create(&cenv)) == NULL)
        abort();
}

static void
teardown(void)
{
    ctl_free(ctl);
    core_free(books);
    free(region);
}

/*
 * Call method with params (stolen) as root; the error code of the answer,
 * 0 for a result.  The answer is printed when it is not what is expected.
 */
static int
call(const char *method, json_t *params)
{
    json_t *req = json_pack("{s:s, s:s, s:i}", "jsonrpc", "2.0", "method", method, "id", 1);
    char *line, *out;
    json_t *r, *e;
    int code;

    if (params)
        json_object_set_new(req, "params", params);
    line = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    out = ctl_request(ctl, line, strlen(line), 1);
    if (out == NULL || (r = json_loads(out, 0, NULL)) == NULL) {
        fprintf(stderr, "no answer to %s\n", line);
        free(line);
        free(out);
        return -1;
    }
    e = json_object_get(r, "error");
    code = e ? (int)json_integer_value(json_object_get(e, "code")) : 0;
    if (code == RPC_INTERNAL_ERROR)
        fprintf(stderr, "  %s\n  -> %s", line, out);
    json_decref(r);
    free(line);
    free(out);
    return code;
}

/* ---- what the table says the schema is ------------------------------------------ */

static json_t *
strings_json(const char *const *v)
{
    json_t *a = json_array();

    for (; v && *v; v++)
        json_array_append_new(a, json_string(*v));
    return a;
}

static json_t *
param_schema(const struct ctl_param *p)
{
    switch (p->type) {
    case CTL_P_UINT:
        return json_pack("{s:s, s:I, s:I}", "type", "integer",
                         "minimum", (json_int_t)p->min, "maximum", (json_int_t)p->max);
    case CTL_P_BOOL:
        return json_pack("{s:s}", "type", "boolean");
    case CTL_P_ENUM:
        return json_pack("{s:s, s:o}", "type", "string", "enum", strings_json(p->values));
    case CTL_P_ENUMS:
        return json_pack("{s:s, s:{s:s, s:o}}", "type", "array", "items",
                         "type", "string", "enum", strings_json(p->values));
    case CTL_P_CURSOR:
        return json_pack("{s:[s, s]}", "type", "string", "null");
    case CTL_P_EMULATOR:
        return json_pack("{s:[{s:s, s:s}, {s:s, s:{s:{s:s, s:i, s:i}, s:{s:s, s:i, s:i},"
                         " s:{s:s, s:i, s:i}}, s:[s, s, s], s:b}]}", "oneOf",
                         "type", "string", "pattern", "^[0-9]+:[0-9]+:[0-9]+$",
                         "type", "object", "properties",
                         "emu_domid", "type", "integer", "minimum", 0,
                         "maximum", CTL_EMU_DOMID_MAX,
                         "target", "type", "integer", "minimum", 0,
                         "maximum", CTL_EMU_DOMID_MAX,
                         "ioservid", "type", "integer", "minimum", 0,
                         "maximum", CTL_IOSERVID_MAX,
                         "required", "emu_domid", "target", "ioservid",
                         "additionalProperties", 0);
    }
    return NULL;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a),
                  json_string_value(*(json_t *const *)b));
}

/* A copy of a schema without "description" keys, "required" lists sorted. */
static json_t *
normalise(json_t *s)
{
    json_t *c, *v;
    const char *k;
    size_t i;

    if (json_is_object(s)) {
        c = json_object();
        json_object_foreach(s, k, v)
            if (strcmp(k, "description") != 0)
                json_object_set_new(c, k, normalise(v));
        v = json_object_get(c, "required");
        if (json_is_array(v)) {
            size_t n = json_array_size(v);
            json_t **a = calloc(n + 1, sizeof(*a)), *sorted = json_array();
            int all_strings = 1;

            for (i = 0; i < n; i++) {
                a[i] = json_array_get(v, i);
                all_strings &= json_is_string(a[i]);
            }
            if (all_strings) {
                qsort(a, n, sizeof(*a), cmp_str);
                for (i = 0; i < n; i++)
                    json_array_append(sorted, a[i]);
                json_object_set_new(c, "required", sorted);
            } else {
                json_decref(sorted);
            }
            free(a);
        }
        return c;
    }
    if (json_is_array(s)) {
        c = json_array();
        json_array_foreach(s, i, v)
            json_array_append_new(c, normalise(v));
        return c;
    }
    return json_deep_copy(s);
}

static json_t *
params_schema(const struct ctl_method *m)
{
    json_t *props = json_object(), *req = json_array(), *s;

    for (const struct ctl_param *p = m->params; p->name; p++) {
        json_object_set_new(props, p->name, param_schema(p));
        if (p->required)
            json_array_append_new(req, json_string(p->name));
    }
    s = json_pack("{s:s, s:o, s:o, s:b}", "type", "object", "properties", props,
                  "required", req, "additionalProperties", 0);
    return s;
}

static void __attribute__((format(printf, 2, 3)))
mismatch(int line, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n  %s\n", msg);
    CU_assertImplementation(CU_FALSE, (unsigned)line, msg, __FILE__, "", CU_FALSE);
}

/*
 * The schema of one method against the table: 0 if they agree.  dir is
 * json-api/schema (or a copy with a planted disagreement).
 */
static int
check_schema(const char *dir, const struct ctl_method *m, int report)
{
    char path[512], *want_s, *got_s;
    json_error_t jerr;
    json_t *doc, *want, *got, *admin;
    int bad = 0;

    snprintf(path, sizeof(path), "%s/%s.json", dir, m->name);
    doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        if (report)
            mismatch(__LINE__, "%s: %s", path, jerr.text);
        return 1;
    }
    if (!json_is_string(json_object_get(doc, "method")) ||
        strcmp(json_string_value(json_object_get(doc, "method")), m->name) != 0) {
        if (report)
            mismatch(__LINE__, "%s: \"method\" is not \"%s\"", path, m->name);
        bad++;
    }
    admin = json_object_get(doc, "admin");
    if (!json_is_boolean(admin) || json_is_true(admin) != !!(m->flags & M_ADMIN)) {
        if (report)
            mismatch(__LINE__, "%s: \"admin\" is not %s as in ctl_methods[]", m->name,
                     (m->flags & M_ADMIN) ? "true" : "false");
        bad++;
    }
    {
        json_t *ps = params_schema(m);   /* a new reference: normalise copies */

        want = normalise(ps);
        json_decref(ps);
    }
    got = normalise(json_object_get(doc, "params"));
    if (!json_equal(want, got)) {
        want_s = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        got_s = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        if (report)
            mismatch(__LINE__, "%s: params of the schema differ from the method table:\n"
                     "    table:  %s\n    schema: %s", m->name, want_s, got_s);
        free(want_s);
        free(got_s);
        bad++;
    }
    json_decref(want);
    json_decref(got);
    json_decref(doc);
    return bad;
}

/* ---- the tests ------------------------------------------------------------------- */

static void
test_schema_files_are_the_methods(void)
{
    DIR *d = opendir(SCHEMA_DIR);
    struct dirent *de;
    size_t n = 0, files = 0;

    CU_ASSERT_FATAL(d != NULL);
    while (ctl_method_at(n))
        n++;
    CU_ASSERT(n >= 12);
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        char name[256];

        if (l < 6 || strcmp(de->d_name + l - 5, ".json") != 0 ||
            strcmp(de->d_name, "notifications.json") == 0)
            continue;
        snprintf(name, sizeof(name), "%.*s", (int)(l - 5), de->d_name);
        if (ctl_method_find(name) == NULL)
            mismatch(__LINE__, "schema/%s describes no method of ctl_methods[]", de->d_name);
        files++;
    }
    closedir(d);
    CU_ASSERT_EQUAL(files, n);
}

static void
test_schema_matches_table(void)
{
    const struct ctl_method *m;

    for (size_t i = 0; (m = ctl_method_at(i)) != NULL; i++)
        CU_ASSERT_EQUAL(check_schema(SCHEMA_DIR, m, 1), 0);
}

/* The planted disagreements of test_check_catches_planted, on a copy. */
static void
plant(json_t *doc, int which)
{
    json_t *props = json_object_get(json_object_get(doc, "params"), "properties");

    switch (which) {
    case 0:     /* the old emulator.drain schema: the "D:N" string only */
        json_object_set_new(props, "emulator",
                            json_pack("{s:s, s:s}", "type", "string",
                                      "pattern", "^[0-9]+:[0-9]+$"));
        break;
    case 1:
        json_object_set_new(doc, "admin", json_false());
        break;
    case 2:
        json_object_del(props, "unmap_all");
        break;
    case 3:
        json_object_set_new(json_object_get(doc, "params"), "required", json_array());
        break;
    case 4:
        json_object_set_new(json_object_get(props, "unmap_all"), "type", json_string("string"));
        break;
    case 5:
        json_object_set_new(json_object_get(props, "timeout_ms"), "maximum",
                            json_integer(3600001));
        break;
    case 6:
        json_object_set_new(props, "extra", json_pack("{s:s}", "type", "boolean"));
        break;
    }
}

/*
 * The check can fail: disagreements planted in a copy of a schema are each
 * found, among them the one the table resolved (emulator.drain's schema
 * took only the "D:N" string while the code also took the object form).
 */
static void
test_check_catches_planted(void)
{
    static const char *const what[] = {
        "string-only emulator (the old emulator.drain schema)", "admin flag",
        "a parameter missing", "required-ness", "a type", "a bound", "an extra parameter",
    };
    const struct ctl_method *m = ctl_method_find("emulator.drain");
    char dir[] = "/tmp/test_methods.XXXXXX", path[600];

    CU_ASSERT_FATAL(m != NULL && mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/emulator.drain.json", dir);
    for (int i = -1; i < (int)(sizeof(what) / sizeof(what[0])); i++) {
        json_t *doc = json_pack("{s:s, s:b, s:o}", "method", m->name,
                                "admin", (m->flags & M_ADMIN) != 0, "params", params_schema(m));

        if (i >= 0)
            plant(doc, i);
        CU_ASSERT_FATAL(json_dump_file(doc, path, JSON_INDENT(2)) == 0);
        json_decref(doc);
        if (i < 0) {        /* unchanged: the copy agrees */
            CU_ASSERT_EQUAL(check_schema(dir, m, 1), 0);
        } else if (check_schema(dir, m, 0) == 0) {
            mismatch(__LINE__, "a planted disagreement (%s) was not found", what[i]);
        }
    }
    remove(path);
    remove(dir);
}

/* A good value of p, for a request (new reference). */
static json_t *
good_value(const struct ctl_param *p, int variant)
{
    switch (p->type) {
    case CTL_P_UINT:
        return json_integer((json_int_t)(variant ? p->max : p->min));
    case CTL_P_BOOL:
        return json_boolean(variant);
    case CTL_P_ENUM:
        return json_string(p->values[0]);
    case CTL_P_ENUMS:
        return variant ? json_array() : json_pack("[s]", p->values[0]);
    case CTL_P_CURSOR:
        return json_null();
    case CTL_P_EMULATOR:
        /* An emulator that does not exist: a drain of it ends at once. */
        return variant ? json_pack("{s:i, s:i, s:i}", "emu_domid", CTL_EMU_DOMID_MAX,
                                   "target", CTL_EMU_DOMID_MAX, "ioservid", CTL_IOSERVID_MAX)
                       : json_string("7:3:9");
    }
    return NULL;
}

/* Bad values of p (a new array). */
static json_t *
bad_values(const struct ctl_param *p)
{
    json_t *a = json_array();

    if (p->type != CTL_P_CURSOR)
        json_array_append_new(a, json_null());
    switch (p->type) {
    case CTL_P_UINT:
        json_array_append_new(a, json_string("1"));
        json_array_append_new(a, json_real(1.5));
        json_array_append_new(a, json_integer(-1));
        if (p->min > 0)
            json_array_append_new(a, json_integer((json_int_t)p->min - 1));
        if (p->max < INT64_MAX)
            json_array_append_new(a, json_integer((json_int_t)p->max + 1));
        break;
    case CTL_P_BOOL:
        json_array_append_new(a, json_string("yes"));
        json_array_append_new(a, json_integer(1));
        break;
    case CTL_P_ENUM:
        json_array_append_new(a, json_string("no such value"));
        json_array_append_new(a, json_integer(0));
        break;
    case CTL_P_ENUMS:
        json_array_append_new(a, json_string(p->values[0]));
        json_array_append_new(a, json_pack("[i]", 1));
        json_array_append_new(a, json_pack("[s]", "no such value"));
        break;
    case CTL_P_CURSOR:
        json_array_append_new(a, json_integer(5));
        json_array_append_new(a, json_true());
        break;
    case CTL_P_EMULATOR:
        json_array_append_new(a, json_integer(1));
        json_array_append_new(a, json_string("zero"));
        json_array_append_new(a, json_pack("{s:i}", "emu_domid", 0));
        json_array_append_new(a, json_string("0:1"));   /* Xen's name has three parts */
        json_array_append_new(a, json_pack("{s:i, s:i}", "emu_domid", 0, "ioservid", 1));
        break;
    }
    return a;
}

/* params with every required parameter of m at a good value, but skip. */
static json_t *
required_params(const struct ctl_method *m, const char *skip)
{
    json_t *o = json_object();

    for (const struct ctl_param *p = m->params; p->name; p++)
        if (p->required && (skip == NULL || strcmp(p->name, skip) != 0))
            json_object_set_new(o, p->name, good_value(p, 0));
    return o;
}

static void
test_methods_read_their_table(void)
{
    const struct ctl_method *m;

    for (size_t i = 0; (m = ctl_method_at(i)) != NULL; i++) {
        json_t *o;
        int code;

        /* Without params (or with the required ones only). */
        code = call(m->name, required_params(m, NULL));
        CU_ASSERT(code != RPC_INTERNAL_ERROR && code != RPC_INVALID_PARAMS);
        for (const struct ctl_param *p = m->params; p->name; p++) {
            json_t *bad, *v;
            size_t k;

            /* Each parameter at good values: read under its own name. */
            for (int variant = 0; variant < 2; variant++) {
                o = required_params(m, NULL);
                json_object_set_new(o, p->name, good_value(p, variant));
                code = call(m->name, o);
                if (code == RPC_INTERNAL_ERROR || code == RPC_INVALID_PARAMS)
                    mismatch(__LINE__, "%s: a good %s is refused (%d)", m->name, p->name,
                             code);
            }
            /* At bad values: it is read and checked. */
            bad = bad_values(p);
            json_array_foreach(bad, k, v) {
                char *vs = json_dumps(v, JSON_ENCODE_ANY);

                o = required_params(m, NULL);
                json_object_set(o, p->name, v);
                code = call(m->name, o);
                if (code == 0 || code == RPC_INTERNAL_ERROR ||
                    (code != RPC_INVALID_PARAMS && code > -32000))
                    mismatch(__LINE__, "%s: %s = %s is not refused as a bad parameter (%d)",
                             m->name, p->name, vs, code);
                free(vs);
            }
            json_decref(bad);
            /* A required one left out. */
            if (p->required) {
                code = call(m->name, required_params(m, p->name));
                if (code != RPC_INVALID_PARAMS)
                    mismatch(__LINE__, "%s without %s: %d, not -32602", m->name, p->name,
                             code);
            }
        }
        /* A name not in the table: refused by the dispatcher. */
        o = required_params(m, NULL);
        json_object_set_new(o, "no_such_param", json_integer(1));
        CU_ASSERT_EQUAL(call(m->name, o), RPC_INVALID_PARAMS);
    }
}

/* The emulator "E:T:N" strings, through both methods that take one. */
static void
test_emulator_strict(void)
{
    static const char *const bad[] = {
        "0:1: 1", " 0:1:1", "0:1:1 ", "+0:1:+1", "+0:1:1", "0:1:+1", "-0:1:1",
        "0:1:-1", "0x1:1:1", "0:1:0x1", "1e1:1:1", "0:1:2:3", "0:1:", ":1:1", "::",
        "", "0", "0:1", "0;1;1", "0 :1:1", "a:b:c", "0:1 :1", "0: 1:1",
        "32752:1:1", "0:32752:1", "32767:1:1", "65535:1:1", "0:1:65536",
        "99999999999999999999:1:1", "0:1:99999999999999999999", "4294967296:1:1",
        "0:4294967297:1", "0:1:4294967297", "\xd9\xa0:1:1",
    };
    static const char *const good[] = {
        "0:0:0", "0:1:1", "7:3:9", "32751:32751:65535", "00:01:02", "1:2:65535",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int a = call("mapping.list", json_pack("{s:s}", "emulator", bad[i]));
        int b = call("emulator.drain", json_pack("{s:s}", "emulator", bad[i]));

        if (a != RPC_INVALID_PARAMS || b != RPC_INVALID_PARAMS)
            mismatch(__LINE__, "emulator \"%s\" is not refused (%d, %d)", bad[i], a, b);
    }
    /* A NUL inside the string ends nothing (the request line is refused). */
    {
        json_t *o = json_object();

        json_object_set_new(o, "emulator", json_stringn("0:1:1\0002", 7));
        CU_ASSERT(call("mapping.list", o) != 0);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int a = call("mapping.list", json_pack("{s:s}", "emulator", good[i]));
        int b = call("emulator.drain", json_pack("{s:s}", "emulator", good[i]));

        /* Parsed; there is no such emulator to drain. */
        if (a != 0 || b != APP_NO_SUCH_EMULATOR)
            mismatch(__LINE__, "emulator \"%s\" is refused (%d, %d)", good[i], a, b);
    }
    /* The object form has the same bounds. */
    CU_ASSERT_EQUAL(call("mapping.list", json_pack("{s:{s:i, s:i, s:i}}", "emulator",
                                                   "emu_domid", 32751, "target", 32751,
                                                   "ioservid", 65535)), 0);
    CU_ASSERT_EQUAL(call("mapping.list", json_pack("{s:{s:i, s:i, s:i}}", "emulator",
                                                   "emu_domid", 32752, "target", 1,
                                                   "ioservid", 1)),
                    RPC_INVALID_PARAMS);
    CU_ASSERT_EQUAL(call("mapping.list", json_pack("{s:{s:i, s:i, s:i}}", "emulator",
                                                   "emu_domid", 0, "target", 32752,
                                                   "ioservid", 1)),
                    RPC_INVALID_PARAMS);
    CU_ASSERT_EQUAL(call("mapping.list", json_pack("{s:{s:i, s:i, s:i}}", "emulator",
                                                   "emu_domid", 0, "target", 1,
                                                   "ioservid", 65536)),
                    RPC_INVALID_PARAMS);
    CU_ASSERT_EQUAL(call("mapping.list", json_pack("{s:{s:i, s:i}}", "emulator",
                                                   "emu_domid", 0, "ioservid", 1)),
                    RPC_INVALID_PARAMS);        /* no target: Xen's ids are per guest */
    CU_ASSERT_EQUAL(call("mapping.list", json_pack("{s:{s:i, s:i, s:i, s:i}}", "emulator",
                                                   "emu_domid", 0, "target", 1,
                                                   "ioservid", 1, "x", 1)),
                    RPC_INVALID_PARAMS);
}

/* tests/cunit_main.h: no count of failures exits 0, 77 (SKIP) or 99, or wraps. */
static void
test_cunit_exit_status(void)
{
    static const unsigned long long big[] = {
        251, 255, 256, 257, 333, 512, 65536, 4294967295ull, 4294967296ull, ~0ull,
    };
    unsigned bad = 0;

    CU_ASSERT_EQUAL(test_exit_status(0), 0);
    for (unsigned long long n = 1; n <= 100000; n++) {
        int st = test_exit_status(n);

        bad += st <= 0 || st > 250 || st == 77 || st == 99 || (st & 0xff) == 0;
    }
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++)
        bad += test_exit_status(big[i]) != 250;
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(test_exit_status(77), 78);
    CU_ASSERT_EQUAL(test_exit_status(99), 100);
}

int
main(void)
{
    static const struct test_case tests[] = {
        { "a schema file for each method, no other", test_schema_files_are_the_methods },
        { "schema params and admin = the method table", test_schema_matches_table },
        { "the check finds planted disagreements", test_check_catches_planted },
        { "methods read exactly their table", test_methods_read_their_table },
        { "emulator \"E:T:N\" is strict (issue 12 item 10)", test_emulator_strict },
        { "cunit_main.h: the exit status of any number of failures", test_cunit_exit_status },
        { NULL, NULL },
    };
    int rc;

    log_init("test_methods", LOG_LVL_ERR);
    setup();
    rc = run_tests("methods", tests);
    teardown();
    return rc;
}
