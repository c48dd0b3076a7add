/* SPDX-License-Identifier: MIT */
/*
 * The control socket: JSON-RPC 2.0 over a UNIX stream socket, one request
 * or response per line (newline-delimited, JSON_COMPACT, so no raw newline
 * ever appears inside a value).  See iomapd-api(7) and json-api/schema/.
 *
 *   control.c  socket, framing, limits, credentials, clients, replies,
 *              notifications;
 *   methods.c  the method table and the methods.
 */
#ifndef IOMAP_CTL_H
#define IOMAP_CTL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include <jansson.h>

struct core;
struct policy;
struct core_emu_id;
struct event_base;
struct bufferevent;
struct evbuffer;
struct acceptor;
struct event;

/* Limits (documented in iomapd-api(7)). */
#define CTL_MAX_REQUEST     (64 * 1024)     /* bytes in one request line */
#define CTL_MAX_DEPTH       32              /* nesting of arrays/objects */
#define CTL_OUT_SOFT        (1024 * 1024)   /* stop reading / drop notifications */
#define CTL_OUT_HARD        (8 * 1024 * 1024)   /* drop the client */
#define CTL_MAX_CLIENTS     64
#define CTL_ADMIN_RESERVED  8               /* of those, only for admins */
#define CTL_MAX_PER_UID     16              /* clients of one uid (not admins) */
#define CTL_MAX_BATCH       64              /* requests in one batch */
#define CTL_BURST           8               /* requests per client per loop pass */
#define CTL_MAX_LIMIT       10000           /* mapping.list/page.list page size */
#define CTL_DEFAULT_LIMIT   1000
#define CTL_PAGE_SCAN       65536           /* page slots looked at per page.list */
#define CTL_LIST_BUDGET_NS  150000          /* mapping.list building one page, then short */
#define CTL_LIST_MIN_PAGE   256             /* ... but never shorter than this (progress) */

/* JSON-RPC 2.0 standard errors. */
#define RPC_PARSE_ERROR      -32700
#define RPC_INVALID_REQUEST  -32600
#define RPC_METHOD_NOT_FOUND -32601
#define RPC_INVALID_PARAMS   -32602
#define RPC_INTERNAL_ERROR   -32603
/* Application errors, by area (iomapd-api(7), ERRORS). */
/* -32000 .. -32009  access and server state */
#define APP_PERMISSION_DENIED -32000
#define APP_SHUTTING_DOWN     -32001
#define APP_TOO_BUSY          -32002
/* -32010 .. -32019  emulators and domains */
#define APP_NO_SUCH_EMULATOR  -32010
#define APP_DRAIN_IN_PROGRESS -32011
/* -32020 .. -32029  mappings and pages */
#define APP_BAD_CURSOR        -32020
/* -32030 .. -32039  policy */
#define APP_NO_POLICY         -32030
#define APP_POLICY_INVALID    -32031
/* -32040 .. -32049  subscriptions */
#define APP_BAD_EVENT         -32040

/* Return of a method that answers later (ctl_reply). */
#define CTL_DEFERRED          1

/* Notification kinds (subscribe). */
enum {
    NOTE_PAGE_RELEASED = 1u << 0,
    NOTE_PAGE_TIMEOUT  = 1u << 1,
    NOTE_EMU_GONE      = 1u << 2,
};

struct ctl;

/*
 * What the control server needs from its owner (daemon/iomapd.c): the
 * loop, the core (through its public header only), the settings it
 * reports, and the few actions it may ask for.  json-api links nothing of
 * the daemon process.
 */
struct ctl_env {
    struct event_base *base;
    struct core       *core;
    const char        *socket_path;
    const char        *socket_group;    /* may query; NULL: none */
    const char        *admin_group;     /* may also change; NULL: none */
    const char        *config_path;     /* the policy file */
    const char        *backend;         /* its name, for version/status */
    uint64_t           started_ns;      /* util/clock.h time of start */
    /* Reload the policy: 0 loaded, 1 no file (built-in), -1 refused (err). */
    int  (*reload_policy)(void *arg, char *err, size_t errlen);
    /* Read it without putting it in force (a dry run); same returns, *p ours. */
    int  (*parse_policy)(void *arg, struct policy **p, char *err, size_t errlen);
    /* Run the core soon (a deferred event on the loop). */
    void (*request_run)(void *arg);
    void *arg;
};

struct ctl_client {
    struct ctl         *ctl;
    struct bufferevent *bev;        /* NULL: ctl_request's, not connected */
    struct evbuffer    *out;        /* responses not yet written */
    struct event       *ev_more;    /* continue after a burst */
    uint64_t            cid;
    uid_t               uid;
    gid_t               gid;
    pid_t               pid;
    int                 admin;
    int                 paused;     /* reading stopped: output above soft limit */
    int                 closing;    /* flushing a last error, then hang up */
    int                 dead;       /* unlinked; freed from the loop */
    int                 in_process; /* in client_process: it writes at the end */
    unsigned            subs;       /* NOTE_* */
    json_t             *batch;      /* replies of the batch being answered */
    uint64_t            lost;       /* notifications dropped (slow reader) */
    LIST_ENTRY(ctl_client) link;
};

struct ctl_drain;

struct ctl {
    struct ctl_env      env;
    int                 lfd;
    int                 own_socket; /* we created the path: unlink at exit */
    struct acceptor    *acceptor;   /* util/listen.h */
    gid_t               sock_gid, admin_gid;
    int                 have_sock_gid, have_admin_gid;
    LIST_HEAD(, ctl_client) clients;
    unsigned            nclients;
    uint64_t            next_cid;
    LIST_HEAD(, ctl_drain) drains;
    /* The text of a result a method serialised itself (ctl_raw_result). */
    struct evbuffer    *raw;
    /* page.released notifications coalesced into a range. */
    int                 rel_active;
    uint16_t            rel_domid;
    uint64_t            rel_gfn;
    uint32_t            rel_nr;
    uint64_t            rel_lat_max;
    uint64_t            requests, errors, dropped_clients, notes_sent;
    uint64_t            refused;        /* connections refused by the bounds */
    int                 stopping;
};

/* One request being answered. */
struct ctl_call {
    struct ctl         *ctl;
    struct ctl_client  *c;
    json_t             *id;         /* borrowed until the reply */
    char                msg[256];   /* error message */
    json_t             *data;       /* optional error data (owned) */
    const struct ctl_method *method; /* whose parameters p_* may read */
};

/* control.c */
/* The control state without a socket (the fuzzer, the bench); NULL if out of memory. */
struct ctl *ctl_create(const struct ctl_env *env);
/* Listen on env->socket_path; 0 or -1 with err set. */
int   ctl_listen(struct ctl *ctl, char *err, size_t errlen);
/* Say goodbye to every client, close and unlink the socket, free. */
void  ctl_free(struct ctl *ctl);
/* Send the coalesced page.released notifications (after a core run). */
void  ctl_flush_notes(struct ctl *ctl);
/* Observers of the core (struct core_env), with arg the ctl. */
void  ctl_page_released(void *arg, uint16_t domid, uint64_t gfn, uint64_t mfn,
                        uint64_t lat_ns);
void  ctl_emu_gone(void *arg, const struct core_emu_id *id, const char *why);
void  ctl_timeout(void *arg, const struct core_emu_id *id, uint16_t domid,
                  uint64_t gfn, const char *what);
/* Parse, validate and dispatch one request line as client c. */
void  ctl_handle_line(struct ctl_client *c, const char *line, size_t n);
/*
 * One request line without a connection (admin: as root, else as an
 * unprivileged member of the socket group): what a client would read,
 * malloc'd ("" if nothing), or NULL if out of memory.
 */
char *ctl_request(struct ctl *ctl, const char *line, size_t n, int admin);
/*
 * The one way a response leaves the daemon: result (stolen) on success,
 * or code + message (+ data, stolen) on failure.  id is borrowed.
 */
void  ctl_respond(struct ctl_client *c, json_t *id, json_t *result, int code,
                  const char *msg, json_t *data);
/*
 * A result the method writes as JSON text itself (the long listings and
 * status: no jansson object per entry).  Returns the result to hand back
 * (a marker, stolen by ctl_respond like any result) and in *buf where to
 * write exactly one JSON value; NULL if out of memory.  Code that collects
 * results instead of responding (a batch) turns a marker back into a
 * json_t with ctl_result_json() (other results pass through).
 */
json_t *ctl_raw_result(struct ctl *ctl, struct evbuffer **buf);
int     ctl_result_is_raw(const json_t *result);
json_t *ctl_result_json(struct ctl *ctl, json_t *result);
/* Notification to every client subscribed to kind (params stolen). */
void  ctl_notify(struct ctl *ctl, unsigned kind, const char *method, json_t *params);
int   ctl_err(struct ctl_call *call, int code, const char *fmt, ...)
      __attribute__((format(printf, 3, 4)));

/* methods.c */
/*
 * Each method's parameters, described once: the dispatcher refuses a name
 * that is not in the method's table, the p_* helpers of methods.c read
 * only names in it and take their type, bounds and required-ness from it,
 * and tests/test_methods.c checks every table against
 * json-api/schema/<method>.json (names, required, types, bounds, enums,
 * admin).  null is a value only where the type says so (CTL_P_CURSOR).
 */
enum ctl_ptype {
    CTL_P_UINT = 1,     /* integer in [min, max] */
    CTL_P_BOOL,         /* true or false */
    CTL_P_ENUM,         /* one string of values[] */
    CTL_P_ENUMS,        /* an array of strings of values[] (may be empty) */
    CTL_P_CURSOR,       /* a string (a next_cursor given out) or null */
    CTL_P_EMULATOR,     /* "EMU_DOMID:IOSERVID", or {"emu_domid":D,"ioservid":N};
                           D <= CTL_EMU_DOMID_MAX, N <= CTL_IOSERVID_MAX */
};
#define CTL_EMU_DOMID_MAX  0x7fef   /* 0x7ff0.. are Xen's reserved domids */
#define CTL_IOSERVID_MAX   0xffff

struct ctl_param {
    const char        *name;
    enum ctl_ptype     type;
    int                required;
    uint64_t           min, max;   /* CTL_P_UINT */
    const char *const *values;     /* CTL_P_ENUM(S): NULL-terminated */
};

struct ctl_method {
    const char *name;
    int       (*fn)(struct ctl_call *call, json_t *params, json_t **result);
    unsigned    flags;
    const struct ctl_param *params; /* ends with a NULL name */
};
#define M_ADMIN   1u        /* mutating: root or the admin group only */
#define M_DEFERRED 2u       /* answers later (CTL_DEFERRED): not in a batch */

/* The i-th method of the table, NULL past the end (the tests walk it). */
const struct ctl_method *ctl_method_at(size_t i);
/* m's parameter called name, or NULL if m takes none of that name. */
const struct ctl_param *ctl_param_find(const struct ctl_method *m, const char *name);
const struct ctl_method *ctl_method_find(const char *name);
void  ctl_drains_free(struct ctl *ctl);
/* Client gone: its drains keep running but answer nobody. */
void  ctl_drains_forget(struct ctl *ctl, struct ctl_client *c);

#endif
