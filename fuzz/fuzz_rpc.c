/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the JSON-RPC request parser and the methods behind it
 * (json-api/control.c's ctl_handle_line through ctl_request, and
 * json-api/methods.c), with no socket.
 *
 * Each input is run against a fresh daemon whose books hold a few
 * emulators (one with an ioreq channel), two domains, mappings and pages
 * in flight, fed through a real event ring.  The first byte of the input
 * chooses the caller (bit 0: root, else an unprivileged member of the
 * socket group; bit 1: the daemon is stopping); the rest is split at
 * newlines into request lines, each handed to ctl_request(), as a client
 * would send them.  Between requests the clock moves on 100 ms and the
 * loop's tick runs (drain deadlines, policy timeouts).
 *
 * What must hold for every line, whatever it is:
 *   - a request with an id gets exactly one message back (a drain may
 *     answer later), a blank line none, anything else at most one; it is
 *     one line, ending in a newline, and the caller is never dropped;
 *   - it is a JSON-RPC 2.0 response: "jsonrpc":"2.0", an "id", exactly one
 *     of "result" and "error"; an error has an integer code that is a
 *     standard one or in a documented application range, and a message;
 *   - a response's non-null id is the request's id;
 *   - the daemon's books stay consistent (core_process never fails).
 * A breach aborts (a crash for libFuzzer).  Built with -fsanitize=fuzzer
 * by fuzz/run.sh, replayed over fuzz/corpus/rpc by `make check`.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "daemon/core/core.h"
#include "util/clock.h"
#include "ioreq/ioreq.h"
#include "util/log.h"
#include "json-api/ctl.h"
#include "policy/policy.h"
#include "shim/ring.h"

#define EV_SLOTS   256u
#define CMD_SLOTS  256u
#define MAX_LINES  16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t fake_now;
static unsigned reloads;
static struct iomap_ring shim;

/* ---- what iomapd.c gives the control server ---------------------------------- */

static struct core *books;
static struct ctl *ctl;

/*
 * The clock moves 20 us at every look, so that a method's time budget
 * (mapping.list's CTL_LIST_BUDGET_NS) runs out within one call, the same
 * way for every run of an input.
 */
uint64_t
clock_now_ns(void)
{
    fake_now += 20000;
    return fake_now;
}

static void
drain_cmds(void)
{
    struct iomap_cmd c[64];

    while (iomap_ring_take_cmds(&shim, c, 64) > 0)
        ;
}

static void
run(void *arg)
{
    (void)arg;
    if (core_process(books) < 0)
        abort();                /* the ring is ours and well-formed */
    drain_cmds();
    ctl_flush_notes(ctl);
}

/* policy.reload: alternately a good file, a broken one, and none. */
static int
parse_policy(void *arg, struct policy **pp, char *err, size_t errlen)
{
    static const char *const texts[] = {
        "emulators = ( { domid = 0; ioservid = 1; targets = [ 2 ]; } );\n"
        "reserved = ( { domid = 1; gfn = 0x100; nr = 8; } );\n",
        "quotas = { pending_per_emulator = ; };\n",
        NULL,
    };
    const char *t = texts[reloads++ % (sizeof(texts) / sizeof(texts[0]))];
    char buf[POLICY_ERRLEN];

    (void)arg;
    if (t == NULL) {
        *pp = policy_default();
        return *pp ? 1 : -1;
    }
    if (policy_parse_string(t, pp, buf) < 0) {
        snprintf(err, errlen, "/fuzz/iomapd.conf: %s", buf);
        return -1;
    }
    return 0;
}

static int
load_policy(void *arg, char *err, size_t errlen)
{
    static const char *const texts[] = {
        "emulators = ( { domid = 0; targets = \"any\"; } );\n"
        "quotas = { pending_per_emulator = 4096; };\n",
        "quotas = { pending_per_emulator = ; };\n",
        NULL,
        "emulators = ( { domid = 0; ioservid = 1; targets = [ 1 ]; readonly = true; } );\n"
        "reserved = ( { domid = 1; gfn = 0x180; nr = 16; } );\n"
        "timeouts = { invalidating = { ms = 200; steps = [ \"log\", \"force-unmap\" ]; }; };\n",
    };
    const char *t = texts[reloads++ % (sizeof(texts) / sizeof(texts[0]))];
    char buf[POLICY_ERRLEN];
    struct policy *p = NULL;

    (void)arg;
    if (t == NULL) {
        core_set_policy(books, NULL);
        return 1;
    }
    if (policy_parse_string(t, &p, buf) < 0) {
        snprintf(err, errlen, "/fuzz/iomapd.conf: %s", buf);
        return -1;
    }
    core_set_policy(books, p);
    return 0;
}

/* ---- the books -------------------------------------------------------------- */

static uint64_t
clock_fn(void *arg)
{
    (void)arg;
    return fake_now;
}

static void
kick_fn(void *arg)
{
    (void)arg;
}

static void
post(uint8_t type, uint8_t flags, uint16_t domid, uint16_t emu, uint16_t ios,
     uint32_t nr, uint32_t seq, uint64_t gfn, uint64_t arg)
{
    struct iomap_event ev = {
        .type = type, .flags = flags, .domid = domid, .emu_domid = emu,
        .ioservid = ios, .nr = nr, .seq = seq, .gfn = gfn, .arg = arg,
    };

    if (iomap_ring_post_event(&shim, &ev) < 0)
        abort();
}

/* Mappings of three emulators in d1 and d2, pages in flight of both. */
static void
populate(void)
{
    struct core_emu_id id = { 0, 1, 1 };   /* dom0's server 1 for d1 */
    struct core_emu_chan ch;

    if (core_emu_attach(books, &id, IOMAP_EMU_CAP_INVALIDATE_PAGE, 0, &ch) < 0)
        abort();
    post(IOMAP_EV_MAP, 0, 1, 0, 1, 256, 0, 0x100, 0x10100);
    post(IOMAP_EV_MAP, IOMAP_F_READONLY, 1, 0, 2, 16, 0, 0x180, 0x10180);
    post(IOMAP_EV_MAP, 0, 2, 3, 1, 64, 0, 0x2000, 0x20000);
    post(IOMAP_EV_MAP, 0, 2, 3, 1, 1, 0, 0x2000, 0x20000);
    post(IOMAP_EV_PAGE_REMOVED, 0, 1, 0, 0, 32, 0, 0x100, 0x10100);
    post(IOMAP_EV_PAGE_REMOVED, 0, 2, 0, 0, 8, 0, 0x2010, 0x20010);
    post(IOMAP_EV_UNMAP, 0, 1, 0, 1, 4, 1, 0x100, 0x10100);
    post(IOMAP_EV_FLUSH, 0, 0, 0, 0, 1, 1, 0, 0);
    run(NULL);
}

/* ---- the oracle ----------------------------------------------------------------- */

static int
code_ok(json_int_t c)
{
    switch (c) {
    case RPC_PARSE_ERROR: case RPC_INVALID_REQUEST: case RPC_METHOD_NOT_FOUND:
    case RPC_INVALID_PARAMS: case RPC_INTERNAL_ERROR:
        return 1;
    }
    return c <= -32000 && c >= -32049;     /* iomapd-api(7), ERRORS */
}

/*
 * How many responses a line must get: 0 (blank), 1, or -1 for "at most
 * one" (a notification, which gets none unless it is refused before its
 * id is read; a drain, which may answer later).
 */
static int
replies_due(const char *line, size_t n)
{
    json_error_t jerr;
    json_t *req, *m;
    int due = 1;

    while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    if (n == 0)
        return 0;
    req = json_loadb(line, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (req && json_is_array(req) && json_array_size(req))
        due = -1;               /* a batch of notifications gets nothing */
    if (req && json_is_object(req)) {
        m = json_object_get(req, "method");
        if (json_object_get(req, "id") == NULL ||
            (json_is_string(m) && strcmp(json_string_value(m), "emulator.drain") == 0))
            due = -1;
    }
    json_decref(req);
    return due;
}

/* One reply object: jsonrpc "2.0", an id, exactly one of result and error. */
static void
check_one(json_t *r)
{
    json_t *id, *e, *code, *msg;

    if (!json_is_object(r))
        abort();
    if (!json_is_string(json_object_get(r, "jsonrpc")) ||
        strcmp(json_string_value(json_object_get(r, "jsonrpc")), "2.0") != 0)
        abort();
    id = json_object_get(r, "id");
    e = json_object_get(r, "error");
    if (id == NULL || (e == NULL) == (json_object_get(r, "result") == NULL))
        abort();
    if (e) {
        code = json_object_get(e, "code");
        msg = json_object_get(e, "message");
        if (!json_is_integer(code) || !code_ok(json_integer_value(code)) ||
            !json_is_string(msg) || json_string_length(msg) == 0)
            abort();
    }
}

static void
check_reply(const char *line, size_t n, const char *out)
{
    size_t len = strlen(out);
    int due = replies_due(line, n);
    json_t *r, *req, *id, *e, *code, *msg;
    json_error_t jerr;

    if (len == 0) {
        if (due == 1)
            abort();            /* a request that must be answered was not */
        return;
    }
    if (due == 0)
        abort();
    /* One message, one line. */
    if (out[len - 1] != '\n' || memchr(out, '\n', len - 1) != NULL)
        abort();
    r = json_loadb(out, len - 1, JSON_REJECT_DUPLICATES, &jerr);
    if (r && json_is_array(r)) {
        /* The replies of a batch: never empty, each a well-formed reply. */
        size_t i;
        json_t *x;

        req = json_loadb(line, n, JSON_DECODE_ANY, &jerr);
        if (req == NULL || !json_is_array(req) || json_array_size(r) == 0 ||
            json_array_size(r) > json_array_size(req))
            abort();
        json_decref(req);
        json_array_foreach(r, i, x)
            check_one(x);
        json_decref(r);
        return;
    }
    if (r == NULL || !json_is_object(r))
        abort();
    if (!json_is_string(json_object_get(r, "jsonrpc")) ||
        strcmp(json_string_value(json_object_get(r, "jsonrpc")), "2.0") != 0)
        abort();
    id = json_object_get(r, "id");
    e = json_object_get(r, "error");
    if (id == NULL || (e == NULL) == (json_object_get(r, "result") == NULL))
        abort();
    if (e) {
        code = json_object_get(e, "code");
        msg = json_object_get(e, "message");
        if (!json_is_integer(code) || !code_ok(json_integer_value(code)) ||
            !json_is_string(msg) || json_string_length(msg) == 0)
            abort();
    }
    if (!json_is_null(id)) {
        /* Then the request was an object with that id. */
        req = json_loadb(line, n, JSON_DECODE_ANY, &jerr);
        if (req == NULL || !json_equal(json_object_get(req, "id"), id))
            abort();
        json_decref(req);
    }
    json_decref(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited, verbose;
    static void *mem;
    size_t len = IOMAP_REGION_SIZE(EV_SLOTS, CMD_SLOTS);
    struct iomap_ring r;
    char err[128];
    const char *p, *end;
    int admin, lines = 0;

    if (!inited) {
        log_init("fuzz-rpc", LOG_LVL_ERR);
        log_set_level(-1);
        verbose = getenv("FUZZ_RPC_VERBOSE") != NULL;     /* requests, replies */
        mem = malloc(len);
        if (mem == NULL)
            abort();
        inited = 1;
    }
    if (size < 1)
        return 0;
    admin = data[0] & 1;
    fake_now = 1000000000ull;
    reloads = data[0] >> 4;
    memset(mem, 0, len);
    if (iomap_ring_format(&shim, mem, len, EV_SLOTS, CMD_SLOTS) < 0 ||
        iomap_ring_attach(&r, mem, len, err, sizeof(err)) < 0)
        abort();
    {
        struct core_env env = { .ring = &r, .clock = clock_fn, .kick = kick_fn };
        struct ctl_env cenv = {
            .socket_path = "/fuzz/iomapd.sock", .config_path = "/fuzz/iomapd.conf",
            .backend = "fuzz", .started_ns = fake_now, .reload_policy = load_policy,
            .parse_policy = parse_policy,
            .request_run = run,
        };

        books = core_new(&env);
        if (books == NULL)
            abort();
        cenv.core = books;
        ctl = ctl_create(&cenv);
        if (ctl == NULL)
            abort();
    }
    ctl->stopping = (data[0] & 2) != 0;
    populate();

    p = (const char *)data + 1;
    end = (const char *)data + size;
    while (p < end && lines++ < MAX_LINES) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char *out = ctl_request(ctl, p, n, admin);

        if (out == NULL)
            abort();
        if (verbose)
            printf("> %.*s\n< %s", (int)(n > 300 ? 300 : n), p, *out ? out : "(nothing)\n");
        check_reply(p, n, out);
        free(out);
        if (ctl->dropped_clients != 0)
            abort();            /* the caller would have been hung up on */
        fake_now += 100000000ull;
        core_tick(books);
        run(NULL);
        p += n + 1;
    }
    ctl_free(ctl);
    core_free(books);
    ctl = NULL;
    books = NULL;
    return 0;
}
