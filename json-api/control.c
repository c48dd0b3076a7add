/* SPDX-License-Identifier: MIT */
/*
 * The control socket of iomapd: JSON-RPC 2.0, newline-delimited, over a
 * UNIX stream socket.
 *
 * Safety of the socket (util/listen.c, as for every listener): a live
 * daemon on the path is detected (connect) before a stale socket is
 * unlinked, and anything that is not a socket is never unlinked; it is
 * created owner-only and set to mode 0660 with the configured group before
 * it listens.  Accept backs off when descriptors run out.  Peers are
 * identified with SO_PEERCRED: mutating methods need root, the daemon's
 * own uid or the admin group.
 *
 * Fairness and bounds: a request line is at most CTL_MAX_REQUEST bytes and
 * CTL_MAX_DEPTH deep; a client gets CTL_BURST requests per loop pass; when
 * its unread output passes CTL_OUT_SOFT we stop reading its requests (and
 * drop notifications for it, counting them), and past CTL_OUT_HARD it is
 * disconnected.  Nothing here ever blocks: the socket is non-blocking and
 * output is buffered per client.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "util/listen.h"
#include "util/log.h"
#include "daemon/core/core.h"
#include "json-api/ctl.h"

static void client_close(struct ctl_client *c, const char *why);
static void client_process(struct ctl_client *c);

/*
 * Cut s (NUL-terminated, at most cap - 1 bytes) back to its last complete
 * UTF-8 sequence: a message that quotes a client's string and was
 * truncated must stay valid UTF-8, or jansson cannot encode the response.
 */
static void
utf8_trim(char *s)
{
    size_t n = strlen(s), i = n, need;
    unsigned char lead;

    while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80 && n - i < 3)
        i--;
    if (i == 0)
        return;
    lead = (unsigned char)s[i - 1];
    if (lead < 0x80)
        return;
    need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    if (n - (i - 1) < need)
        s[i - 1] = 0;
}

int
ctl_err(struct ctl_call *call, int code, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(call->msg, sizeof(call->msg), fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(call->msg))
        utf8_trim(call->msg);
    return code;
}

/* ---- output ---------------------------------------------------------------- */

static size_t
out_len(const struct ctl_client *c)
{
    return evbuffer_get_length(c->out);
}

/* json_dump_callback's sink: straight into an evbuffer (no string, no copy). */
static int
dump_to_evbuffer(const char *buf, size_t size, void *data)
{
    return evbuffer_add(data, buf, size);
}

/* JSON_COMPACT: no newline anywhere; strings escape their own. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY)

/*
 * After one message was appended to c->out: the newline, the output
 * limit, and the write event for what leaves outside client_process().
 * 0, or -1 if the client was dropped.  ok: the message was appended.
 */
static int
client_sent(struct ctl_client *c, int ok)
{
    if (!ok || evbuffer_add(c->out, "\n", 1) < 0) {
        client_close(c, "out of memory for its output");
        return -1;
    }
    if (out_len(c) > CTL_OUT_HARD) {
        client_close(c, "does not read its responses (output limit)");
        return -1;
    }
    if (c->bev && !c->in_process)
        bufferevent_enable(c->bev, EV_WRITE);   /* notifications, late replies */
    return 0;
}

/*
 * Queue one message (stolen); 0, or -1 if the client was dropped.  The
 * message is encoded into the client's output buffer directly: no
 * intermediate string (one malloc and a copy per message before).
 */
static int
client_send(struct ctl_client *c, json_t *msg)
{
    int ok;

    if (c->closing || c->dead) {
        json_decref(msg);
        return -1;
    }
    ok = json_dump_callback(msg, dump_to_evbuffer, c->out, DUMP_FLAGS) == 0;
    json_decref(msg);
    return client_sent(c, ok);
}

/* ---- results already serialised (ctl_raw_result) ------------------------- */

/* The marker a method returns as its result when the text is in ctl->raw. */
static json_t *raw_marker;

json_t *
ctl_raw_result(struct ctl *ctl, struct evbuffer **buf)
{
    if (raw_marker == NULL && (raw_marker = json_object()) == NULL)
        return NULL;
    if (ctl->raw == NULL && (ctl->raw = evbuffer_new()) == NULL)
        return NULL;
    /* What an earlier raw result left (a notification's): dropped. */
    evbuffer_drain(ctl->raw, evbuffer_get_length(ctl->raw));
    *buf = ctl->raw;
    return json_incref(raw_marker);
}

int
ctl_result_is_raw(const json_t *result)
{
    return result != NULL && result == raw_marker;
}

json_t *
ctl_result_json(struct ctl *ctl, json_t *result)
{
    json_t *j;
    size_t len;

    if (!ctl_result_is_raw(result))
        return result;
    json_decref(result);
    len = evbuffer_get_length(ctl->raw);
    j = json_loadb((const char *)evbuffer_pullup(ctl->raw, (ssize_t)len), len, 0, NULL);
    evbuffer_drain(ctl->raw, len);
    return j;
}

/* A success response: the envelope written around the result, not built. */
static void
respond_result(struct ctl_client *c, json_t *id, json_t *result)
{
    struct ctl *ctl = c->ctl;
    int ok;

    if (c->closing || c->dead) {
        if (ctl_result_is_raw(result))
            evbuffer_drain(ctl->raw, evbuffer_get_length(ctl->raw));
        json_decref(result);
        return;
    }
    ok = evbuffer_add(c->out, "{\"jsonrpc\":\"2.0\",\"result\":", 26) == 0;
    if (ctl_result_is_raw(result))
        ok = ok && evbuffer_add_buffer(c->out, ctl->raw) == 0;
    else if (result)
        ok = ok && json_dump_callback(result, dump_to_evbuffer, c->out, DUMP_FLAGS) == 0;
    else
        ok = ok && evbuffer_add(c->out, "null", 4) == 0;
    ok = ok && evbuffer_add(c->out, ",\"id\":", 6) == 0;
    if (id)
        ok = ok && json_dump_callback(id, dump_to_evbuffer, c->out, DUMP_FLAGS) == 0;
    else
        ok = ok && evbuffer_add(c->out, "null", 4) == 0;
    ok = ok && evbuffer_add(c->out, "}", 1) == 0;
    json_decref(result);
    client_sent(c, ok);
}

/*
 * After a client's requests: write the responses at once, in the same
 * loop pass (no round through epoll for a writable socket); only what
 * the socket does not take waits for the write event.
 */
static void
client_flush(struct ctl_client *c)
{
    if (c->bev == NULL || c->dead)
        return;
    if (out_len(c)) {
        /* The bufferevent keeps its output's front frozen but for itself. */
        evbuffer_unfreeze(c->out, 1);
        (void)evbuffer_write(c->out, bufferevent_getfd(c->bev));
        evbuffer_freeze(c->out, 1);
    }
    if (out_len(c))
        bufferevent_enable(c->bev, EV_WRITE);
    else if (c->closing)
        client_close(c, "request too large");
}

void
ctl_respond(struct ctl_client *c, json_t *id, json_t *result, int code,
            const char *msg, json_t *data)
{
    json_t *r;

    if (c == NULL || c->dead) { /* the client went away meanwhile */
        json_decref(result);
        json_decref(data);
        return;
    }
    if (code == 0 && c->batch) {
        /* A reply of a batch: an object in the batch's array. */
        json_decref(data);
        result = ctl_result_json(c->ctl, result);
        r = json_pack("{s:s, s:o, s:O}", "jsonrpc", "2.0",
                      "result", result ? result : json_null(), "id", id ? id : json_null());
    } else if (code == 0) {
        json_decref(data);
        respond_result(c, id, result);
        return;
    } else {
        json_t *err = json_pack("{s:i, s:s}", "code", code,
                                "message", msg && *msg ? msg : "error");

        if (err == NULL)        /* not UTF-8: say what it was, not why */
            err = json_pack("{s:i, s:s}", "code", code,
                            "message", "error (message not encodable)");

        c->ctl->errors++;
        if (err && data)
            json_object_set_new(err, "data", data);
        else
            json_decref(data);
        r = json_pack("{s:s, s:o, s:O}", "jsonrpc", "2.0", "error", err,
                      "id", id ? id : json_null());
        json_decref(result);
    }
    if (r == NULL) {
        client_close(c, "out of memory for a response");
        return;
    }
    if (c->batch) {             /* one reply of a batch: sent with the others */
        json_array_append_new(c->batch, r);
        return;
    }
    client_send(c, r);
}

void
ctl_notify(struct ctl *ctl, unsigned kind, const char *method, json_t *params)
{
    struct ctl_client *c, *next;

    for (c = LIST_FIRST(&ctl->clients); c; c = next) {
        next = LIST_NEXT(c, link);
        if (!(c->subs & kind) || c->closing || c->dead)
            continue;
        if (out_len(c) > CTL_OUT_SOFT) {
            c->lost++;      /* told in the next one that gets through */
            continue;
        }
        if (c->lost)
            json_object_set_new(params, "lost", json_integer((json_int_t)c->lost));
        c->lost = 0;
        ctl->notes_sent++;
        client_send(c, json_pack("{s:s, s:s, s:O}", "jsonrpc", "2.0",
                                 "method", method, "params", params));
        json_object_del(params, "lost");
    }
    json_decref(params);
}

/* ---- requests ------------------------------------------------------------- */

/* Nesting depth of a JSON text (outside strings); stops past the limit. */
static int
json_depth_ok(const char *s, size_t n, int max)
{
    int depth = 0, in_str = 0;

    for (size_t i = 0; i < n; i++) {
        char ch = s[i];

        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = 0;
            continue;
        }
        if (ch == '"')
            in_str = 1;
        else if (ch == '[' || ch == '{') {
            if (++depth > max)
                return 0;
        } else if (ch == ']' || ch == '}')
            depth--;
    }
    return 1;
}

/*
 * Parse, validate and dispatch one request line (without its newline) as
 * client c; the response, if one is due, is queued on c->out.  Everything
 * a request line can do goes through here, for a connected client
 * (client_process) and for ctl_request() alike.
 */
/*
 * One request object (alone on its line, or an element of a batch).
 * JSON-RPC 2.0: an invalid request gets -32600 with its id, or null when
 * the id itself is what is wrong or missing; a valid notification (no id)
 * gets no reply, even when it fails.
 */
static void
handle_one(struct ctl_client *c, json_t *req, int in_batch)
{
    struct ctl *ctl = c->ctl;
    struct ctl_call call = { .ctl = ctl, .c = c };
    json_t *jid, *jm, *jv, *params, *result = NULL;
    const struct ctl_method *m;
    const char *key;
    json_t *val;
    int code, notification;

    if (!json_is_object(req)) {
        ctl_respond(c, NULL, NULL, RPC_INVALID_REQUEST,
                    "a request must be a JSON object", NULL);
        return;
    }
    jid = json_object_get(req, "id");
    notification = jid == NULL;
    if (jid && !json_is_string(jid) && !json_is_integer(jid) && !json_is_null(jid)) {
        ctl_respond(c, NULL, NULL, RPC_INVALID_REQUEST,
                    "id must be a string, an integer or null", NULL);
        return;
    }
    jv = json_object_get(req, "jsonrpc");
    if (!json_is_string(jv) || strcmp(json_string_value(jv), "2.0") != 0) {
        code = ctl_err(&call, RPC_INVALID_REQUEST, "jsonrpc must be \"2.0\"");
        goto invalid;
    }
    jm = json_object_get(req, "method");
    if (!json_is_string(jm)) {
        code = ctl_err(&call, RPC_INVALID_REQUEST, "method must be a string");
        goto invalid;
    }
    json_object_foreach(req, key, val) {
        if (strcmp(key, "jsonrpc") && strcmp(key, "method") &&
            strcmp(key, "params") && strcmp(key, "id")) {
            code = ctl_err(&call, RPC_INVALID_REQUEST, "unknown member '%s' in the request",
                           key);
            goto invalid;
        }
    }
    params = json_object_get(req, "params");
    if (params != NULL && !json_is_null(params) && !json_is_object(params) &&
        !json_is_array(params)) {
        code = ctl_err(&call, RPC_INVALID_REQUEST,
                       "params must be an object (named parameters)");
        goto invalid;
    }
    m = ctl_method_find(json_string_value(jm));
    if (m == NULL) {
        code = ctl_err(&call, RPC_METHOD_NOT_FOUND, "no method '%s' (see iomapd-api(7))",
                       json_string_value(jm));
        goto fail;
    }
    if (params == NULL || json_is_null(params)) {
        params = NULL;
    } else if (!json_is_object(params)) {
        code = ctl_err(&call, RPC_INVALID_PARAMS,
                       "params must be an object (named parameters)");
        goto fail;
    } else {
        json_object_foreach(params, key, val) {
            if (ctl_param_find(m, key) == NULL) {
                code = ctl_err(&call, RPC_INVALID_PARAMS,
                               "%s takes no parameter '%s'", m->name, key);
                goto fail;
            }
        }
    }
    if ((m->flags & M_ADMIN) && !c->admin) {
        code = ctl_err(&call, APP_PERMISSION_DENIED,
                       "%s changes the daemon's state: only root or the admin group "
                       "may call it (uid %u)", m->name, (unsigned)c->uid);
        goto fail;
    }
    if (ctl->stopping && (m->flags & M_ADMIN)) {
        code = ctl_err(&call, APP_SHUTTING_DOWN, "iomapd is stopping");
        goto fail;
    }
    if (in_batch && (m->flags & M_DEFERRED)) {
        code = ctl_err(&call, RPC_INVALID_REQUEST,
                       "%s answers later: send it alone, not in a batch", m->name);
        goto fail;
    }
    call.id = jid;
    call.method = m;
    if (params == NULL) {
        json_t *none = json_object();

        code = m->fn(&call, none, &result);
        json_decref(none);
    } else {
        code = m->fn(&call, params, &result);
    }
    if (code == CTL_DEFERRED)
        return;                 /* the method answers later */
    if (notification) {
        json_decref(result);
        json_decref(call.data);
        return;
    }
    if (code == 0)
        ctl_respond(c, jid, result, 0, NULL, NULL);
    else
        ctl_respond(c, jid, NULL, code, call.msg, call.data);
    return;
invalid:
    /* Not a valid request, so not a valid notification either: answer. */
    ctl_respond(c, jid, NULL, code, call.msg, call.data);
    return;
fail:
    if (!notification)
        ctl_respond(c, jid, NULL, code, call.msg, call.data);
    else
        json_decref(call.data);
}

void
ctl_handle_line(struct ctl_client *c, const char *line, size_t n)
{
    struct ctl *ctl = c->ctl;
    json_error_t jerr;
    json_t *req;

    ctl->requests++;
    if (n > CTL_MAX_REQUEST) {
        ctl_respond(c, NULL, NULL, RPC_INVALID_REQUEST, "request too large",
                    json_pack("{s:i}", "max_bytes", CTL_MAX_REQUEST));
        return;
    }
    while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    if (n == 0)
        return;                 /* blank line: nothing asked */
    if (!json_depth_ok(line, n, CTL_MAX_DEPTH)) {
        ctl_respond(c, NULL, NULL, RPC_INVALID_REQUEST,
                    "request nested deeper than the limit",
                    json_pack("{s:i}", "max_depth", CTL_MAX_DEPTH));
        return;
    }
    req = json_loadb(line, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (req == NULL) {
        ctl_respond(c, NULL, NULL, RPC_PARSE_ERROR, "parse error",
                    json_pack("{s:s, s:i}", "detail", jerr.text,
                              "column", jerr.column));
        return;
    }
    if (json_is_array(req)) {
        size_t i;
        json_t *r;

        /*
         * A batch: one array of the replies (notifications get none; no
         * array at all when nothing is due).  An empty batch is one invalid
         * request.
         */
        if (json_array_size(req) == 0) {
            ctl_respond(c, NULL, NULL, RPC_INVALID_REQUEST, "an empty batch", NULL);
        } else if (json_array_size(req) > CTL_MAX_BATCH) {
            ctl_respond(c, NULL, NULL, RPC_INVALID_REQUEST, "batch too large",
                        json_pack("{s:i}", "max_requests", CTL_MAX_BATCH));
        } else if ((c->batch = json_array()) == NULL) {
            client_close(c, "out of memory for a batch");
        } else {
            json_array_foreach(req, i, r) {
                if (i)
                    ctl->requests++;
                handle_one(c, r, 1);
            }
            r = c->batch;
            c->batch = NULL;
            if (json_array_size(r) && !c->dead)
                client_send(c, r);
            else
                json_decref(r);
        }
        json_decref(req);
        return;
    }
    handle_one(c, req, 0);
    json_decref(req);
}

/*
 * One request line without a connection: as a client of uid 0 (admin) or
 * of an unprivileged uid, whose output is a plain buffer.  Returns what a
 * connected client would have read (zero or more newline-terminated
 * messages; "" when nothing is due), malloc'd, or NULL if out of memory.
 * A drain the request starts keeps running but answers nobody once this
 * returns, as for a client that hung up.
 */
char *
ctl_request(struct ctl *ctl, const char *line, size_t n, int admin)
{
    struct ctl_client c = { .ctl = ctl, .cid = 0, .uid = admin ? 0 : 65534,
                            .gid = admin ? 0 : 65534, .pid = 0, .admin = admin };
    size_t len;
    char *out = NULL;

    c.out = evbuffer_new();
    if (c.out == NULL)
        return NULL;
    ctl_handle_line(&c, line, n);
    ctl_drains_forget(ctl, &c);
    len = evbuffer_get_length(c.out);
    out = malloc(len + 1);
    if (out) {
        evbuffer_remove(c.out, out, len);
        out[len] = 0;
    }
    evbuffer_free(c.out);
    return out;
}

/* ---- clients ---------------------------------------------------------------- */

static void
client_free(struct ctl_client *c)
{
    bufferevent_free(c->bev);
    event_free(c->ev_more);
    free(c);
}

/*
 * Drop a client.  It may be deep in a call chain that still holds c, so
 * it is only unlinked here and freed from the loop (on_more).
 */
static void
client_close(struct ctl_client *c, const char *why)
{
    struct ctl *ctl = c->ctl;

    if (c->dead)
        return;
    if (why) {
        log_info("control: client %llu (uid %u pid %d) dropped: %s",
                 (unsigned long long)c->cid, (unsigned)c->uid, (int)c->pid, why);
        ctl->dropped_clients++;
    }
    c->dead = 1;
    ctl_drains_forget(ctl, c);
    if (c->bev == NULL)
        return;                 /* ctl_request's: not listed, freed by it */
    LIST_REMOVE(c, link);
    ctl->nclients--;
    bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    event_active(c->ev_more, EV_TIMEOUT, 0);
}

static void client_process_lines(struct ctl_client *c);

static void
client_process(struct ctl_client *c)
{
    c->in_process = 1;
    client_process_lines(c);
    c->in_process = 0;
    client_flush(c);
}

static void
client_process_lines(struct ctl_client *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    int done = 0;

    while (!c->closing && !c->dead) {
        size_t n;
        char *line;

        if (out_len(c) > CTL_OUT_SOFT) {
            /* Stop reading until it reads: no unbounded work for it. */
            bufferevent_disable(c->bev, EV_READ);
            c->paused = 1;
            return;
        }
        if (done == CTL_BURST) {
            /* Let the others (and the books) have the loop. */
            event_active(c->ev_more, EV_TIMEOUT, 0);
            return;
        }
        line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
        if (line == NULL) {
            if (evbuffer_get_length(in) > CTL_MAX_REQUEST) {
                struct ctl_call call;

                snprintf(call.msg, sizeof(call.msg),
                         "request larger than %d bytes", CTL_MAX_REQUEST);
                ctl_respond(c, NULL, NULL, RPC_INVALID_REQUEST, call.msg,
                            json_pack("{s:i}", "max_bytes", CTL_MAX_REQUEST));
                /* The framing is lost: say why, flush, then hang up. */
                c->closing = 1;
                bufferevent_disable(c->bev, EV_READ);
                if (out_len(c) == 0)
                    client_close(c, "request too large");
            }
            return;
        }
        ctl_handle_line(c, line, n);
        free(line);
        done++;
    }
}

static void
on_more(evutil_socket_t fd, short what, void *arg)
{
    struct ctl_client *c = arg;

    if (c->dead)
        client_free(c);
    else
        client_process(c);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
    client_process(arg);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
    struct ctl_client *c = arg;

    if (c->closing) {
        if (out_len(c) == 0)
            client_close(c, "request too large");
        return;
    }
    if (out_len(c) == 0)
        bufferevent_disable(c->bev, EV_WRITE);  /* until output waits again */
    if (c->paused && out_len(c) <= CTL_OUT_SOFT / 2) {
        c->paused = 0;
        bufferevent_enable(c->bev, EV_READ);
        client_process(c);
    }
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
    struct ctl_client *c = arg;

    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        client_close(c, (what & BEV_EVENT_ERROR) && !(what & BEV_EVENT_EOF) ?
                     "socket error" : NULL);
}

/* A new connection (util/listen.c accepted it and read SO_PEERCRED). */
static void
on_accept(int fd, const struct listen_peer *cr, void *arg)
{
    struct ctl *ctl = arg;
    struct ctl_client *c;
    gid_t groups[1024];
    int ngroups;

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return;
    }
    c->ctl = ctl;
    c->cid = ++ctl->next_cid;
    c->uid = cr->uid;
    c->gid = cr->gid;
    c->pid = cr->pid;
    /*
     * Access by the connecting process's own credentials, as the kernel
     * saw them at connect (SO_PEERCRED, SO_PEERGROUPS): a process that
     * dropped a group has lost it, one that holds it only as a
     * supplementary group (systemd's SupplementaryGroups=) has it, and
     * the user database is never asked.  An admin may always connect.
     */
    ngroups = listen_peer_groups(fd, groups, (int)(sizeof(groups) / sizeof(groups[0])));
    if (ngroups < 0) {
        log_warnx("control: cannot read the groups of pid %ld (uid %u): %s; "
                  "its primary group only", (long)cr->pid, (unsigned)cr->uid,
                  strerror(-ngroups));
        ngroups = 0;
    }
    c->admin = cr->uid == 0 || cr->uid == geteuid() ||
               (ctl->have_admin_gid &&
                listen_peer_in_group(cr, groups, ngroups, ctl->admin_gid));
    /*
     * Who is not an admin needs the socket group when one is set, and is
     * refused when only an admin group is (the socket is 0666 then); with
     * neither, the socket's mode (0660, the daemon's group) decides.
     */
    if (!c->admin && (ctl->have_sock_gid ?
                      !listen_peer_in_group(cr, groups, ngroups, ctl->sock_gid) :
                      ctl->have_admin_gid)) {
        static const char denied[] = "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32000,"
            "\"message\":\"not a member of the control socket's group\"},\"id\":null}\n";

        (void)!write(fd, denied, sizeof(denied) - 1);
        log_warnx("control: pid %ld (uid %u) is in neither the socket group nor the "
                  "admin group: refused", (long)cr->pid, (unsigned)cr->uid);
        close(fd);
        free(c);
        return;
    }
    /*
     * Bounds, after we know who it is: a client that may only query
     * cannot lock out root or the admin group (CTL_ADMIN_RESERVED slots
     * are theirs), nor one uid everybody else (CTL_MAX_PER_UID).
     */
    {
        unsigned same_uid = 0, others = 0;
        struct ctl_client *o;
        const char *why = NULL;

        LIST_FOREACH(o, &ctl->clients, link) {
            same_uid += o->uid == cr->uid;
            others += !o->admin;
        }
        if (ctl->nclients >= CTL_MAX_CLIENTS)
            why = "too many control clients";
        else if (!c->admin && others >= CTL_MAX_CLIENTS - CTL_ADMIN_RESERVED)
            why = "too many control clients (the rest are kept for admins)";
        else if (!c->admin && same_uid >= CTL_MAX_PER_UID)
            why = "too many control clients of this uid";
        if (why != NULL) {
            char msg[160];
            int n = snprintf(msg, sizeof(msg), "{\"jsonrpc\":\"2.0\",\"error\":"
                             "{\"code\":-32002,\"message\":\"%s\"},\"id\":null}\n", why);

            (void)!write(fd, msg, (size_t)n);
            if (ctl->refused++ % 1000 == 0)
                log_warnx("control: %s: pid %ld (uid %u) refused (%llu so far)", why,
                          (long)cr->pid, (unsigned)cr->uid,
                          (unsigned long long)ctl->refused);
            close(fd);
            free(c);
            return;
        }
    }
    c->bev = bufferevent_socket_new(ctl->env.base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->ev_more = event_new(ctl->env.base, -1, 0, on_more, c);
    if (c->bev == NULL || c->ev_more == NULL) {
        if (c->bev)
            bufferevent_free(c->bev);
        else
            close(fd);
        if (c->ev_more)
            event_free(c->ev_more);
        free(c);
        return;
    }
    c->out = bufferevent_get_output(c->bev);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    /* on_write at half the soft limit, to resume a paused reader. */
    bufferevent_setwatermark(c->bev, EV_WRITE, CTL_OUT_SOFT / 2, 0);
    /* EV_WRITE (on by default) only while output waits for the socket. */
    bufferevent_disable(c->bev, EV_WRITE);
    bufferevent_enable(c->bev, EV_READ);
    LIST_INSERT_HEAD(&ctl->clients, c, link);
    ctl->nclients++;
    log_debug("control: client %llu: uid %u gid %u pid %d%s",
              (unsigned long long)c->cid, (unsigned)cr->uid, (unsigned)cr->gid,
              (int)cr->pid, c->admin ? " (admin)" : "");
}

/* ---- hooks from the books ------------------------------------------------------ */

static void
rel_flush(struct ctl *ctl)
{
    if (!ctl->rel_active)
        return;
    ctl->rel_active = 0;
    ctl_notify(ctl, NOTE_PAGE_RELEASED, "page.released",
               json_pack("{s:i, s:I, s:i, s:f}", "domid", ctl->rel_domid,
                         "gfn", (json_int_t)ctl->rel_gfn, "nr", (int)ctl->rel_nr,
                         "max_latency_us", (double)ctl->rel_lat_max / 1000.0));
}

static int
anyone_wants(struct ctl *ctl, unsigned kind)
{
    struct ctl_client *c;

    LIST_FOREACH(c, &ctl->clients, link)
        if (c->subs & kind)
            return 1;
    return 0;
}

void
ctl_page_released(void *arg, uint16_t domid, uint64_t gfn, uint64_t mfn,
                   uint64_t lat_ns)
{
    struct ctl *ctl = arg;

    (void)mfn;
    if (!ctl->rel_active && !anyone_wants(ctl, NOTE_PAGE_RELEASED))
        return;
    if (ctl->rel_active && ctl->rel_domid == domid &&
        ctl->rel_gfn + ctl->rel_nr == gfn && ctl->rel_nr < UINT32_MAX) {
        ctl->rel_nr++;
        if (lat_ns > ctl->rel_lat_max)
            ctl->rel_lat_max = lat_ns;
        return;
    }
    rel_flush(ctl);
    ctl->rel_active = 1;
    ctl->rel_domid = domid;
    ctl->rel_gfn = gfn;
    ctl->rel_nr = 1;
    ctl->rel_lat_max = lat_ns;
}

void
ctl_emu_gone(void *arg, const struct core_emu_id *e, const char *why)
{
    struct ctl *ctl = arg;
    struct core_emu_info info;
    char id[24];

    if (!anyone_wants(ctl, NOTE_EMU_GONE))
        return;
    rel_flush(ctl);
    /* A read of the books (the observer changes nothing in them). */
    if (core_emu_find(ctl->env.core, e, &info) < 0)
        info.held_pages = 0;
    snprintf(id, sizeof(id), CORE_EMU_FMT, CORE_EMU_ARGS(e));
    ctl_notify(ctl, NOTE_EMU_GONE, "emulator.gone",
               json_pack("{s:s, s:i, s:i, s:i, s:s, s:I}", "emulator", id,
                         "emu_domid", e->emu_domid, "target", e->target,
                         "ioservid", e->ioservid,
                         "reason", why, "held_pages", (json_int_t)info.held_pages));
}

void
ctl_timeout(void *arg, const struct core_emu_id *e, uint16_t domid, uint64_t gfn,
            const char *what)
{
    struct ctl *ctl = arg;
    json_t *p;

    if (!anyone_wants(ctl, NOTE_PAGE_TIMEOUT))
        return;
    rel_flush(ctl);
    p = json_pack("{s:i, s:I, s:s}", "domid", domid, "gfn", (json_int_t)gfn,
                  "what", what);
    if (p && e) {
        char id[24];

        snprintf(id, sizeof(id), CORE_EMU_FMT, CORE_EMU_ARGS(e));
        json_object_set_new(p, "emulator", json_string(id));
    }
    ctl_notify(ctl, NOTE_PAGE_TIMEOUT, "page.timeout", p);
}

void
ctl_flush_notes(struct ctl *ctl)
{
    if (ctl)
        rel_flush(ctl);
}

/* ---- the socket ---------------------------------------------------------------- */

static int
lookup_group(const char *name, gid_t *gid, char *err, size_t errlen)
{
    struct group *gr = getgrnam(name);
    char *end;
    unsigned long v;

    if (gr) {
        *gid = gr->gr_gid;
        return 0;
    }
    errno = 0;
    v = strtoul(name, &end, 10);
    if (!errno && *name && !*end) {
        *gid = (gid_t)v;
        return 0;
    }
    snprintf(err, errlen, "no such group '%s'", name);
    return -ENOENT;
}

static int
listen_socket(struct ctl *ctl, const char *path, char *err, size_t errlen)
{
    /*
     * One file has one group: with an admin group apart from the socket
     * group, its members could not even open a 0660 socket.  Then the
     * socket is 0666 and the peer's credentials (on_accept) decide alone,
     * before a byte of a request is read.
     */
    int split = ctl->have_admin_gid &&
                (!ctl->have_sock_gid || ctl->admin_gid != ctl->sock_gid);
    struct listen_opts o = {
        .type = SOCK_STREAM, .mode = split ? 0666 : 0660,
        .have_gid = ctl->have_sock_gid, .gid = ctl->sock_gid, .backlog = 64,
        .what = "control", .owner = "iomapd",
    };
    int fd;

#ifdef HAVE_SYSTEMD
    /* Socket activation (iomapd.socket): systemd made it, with its mode. */
    if (sd_listen_fds(0) >= 1 &&
        sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, path, 0) > 0) {
        fd = SD_LISTEN_FDS_START;
        if (evutil_make_socket_nonblocking(fd) < 0 ||
            evutil_make_socket_closeonexec(fd) < 0) {
            snprintf(err, errlen, "activated socket: %s", strerror(errno));
            return -errno;
        }
        log_info("control: using the socket passed by systemd (%s)", path);
        return fd;
    }
#endif
    /* A regular file, a live daemon's socket: refused; a stale one: replaced. */
    fd = listen_unix(path, &o, err, errlen);
    if (fd >= 0)
        ctl->own_socket = 1;
    return fd;
}

struct ctl *
ctl_create(const struct ctl_env *env)
{
    struct ctl *ctl = calloc(1, sizeof(*ctl));

    if (ctl == NULL)
        return NULL;
    ctl->env = *env;
    ctl->lfd = -1;
    LIST_INIT(&ctl->clients);
    LIST_INIT(&ctl->drains);
    return ctl;
}

int
ctl_listen(struct ctl *ctl, char *err, size_t errlen)
{
    int fd;

    if (ctl->env.socket_group) {
        if (lookup_group(ctl->env.socket_group, &ctl->sock_gid, err, errlen) < 0)
            return -1;
        ctl->have_sock_gid = 1;
    }
    if (ctl->env.admin_group) {
        if (lookup_group(ctl->env.admin_group, &ctl->admin_gid, err, errlen) < 0)
            return -1;
        ctl->have_admin_gid = 1;
    }
    fd = listen_socket(ctl, ctl->env.socket_path, err, errlen);
    if (fd < 0)
        return -1;
    ctl->lfd = fd;
    /* Backs off (not spins) when descriptors run out. */
    ctl->acceptor = acceptor_new(ctl->env.base, fd, "control", on_accept, ctl);
    if (ctl->acceptor == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

void
ctl_free(struct ctl *ctl)
{
    struct ctl_client *c;

    if (ctl == NULL)
        return;
    ctl_drains_free(ctl);
    while ((c = LIST_FIRST(&ctl->clients)) != NULL) {
        /* Last words, without waiting for slow readers. */
        evbuffer_unfreeze(c->out, 1);
        evbuffer_write(c->out, bufferevent_getfd(c->bev));
        evbuffer_freeze(c->out, 1);
        client_close(c, NULL);
        event_del(c->ev_more);
        client_free(c);
    }
    acceptor_free(ctl->acceptor);
    if (ctl->lfd >= 0)
        close(ctl->lfd);
    if (ctl->own_socket)
        unlink(ctl->env.socket_path);
    if (ctl->raw)
        evbuffer_free(ctl->raw);
    free(ctl);
}
