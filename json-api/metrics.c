/* SPDX-License-Identifier: MIT */
/*
 * Metrics: the Prometheus text format 0.0.4 and OpenMetrics 1.0.0 from one
 * description, and the opt-in HTTP endpoint (on libevent's bufferevents,
 * bounded: see "the HTTP endpoint" below).
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
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "daemon/core/core.h"
#include "json-api/ctl.h"
#include "json-api/metrics.h"
#include "policy/policy.h"
#include "util/clock.h"
#include "util/listen.h"
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

/*
 * A small HTTP/1.x server on bufferevents, not evhttp: evhttp (libevent
 * 2.1) accepts on its own listener (which retries accept() at once on
 * EMFILE and writes a warning each time), and has no hook to bound its
 * connections or to close one that has not finished its request, so a
 * slow client could hold a descriptor for ever (one byte per read
 * timeout).  Here:
 *   - accept goes through util/listen.c's acceptor (backs off on EMFILE);
 *   - at most METRICS_MAX_CONNS connections; beyond, closed at once;
 *   - each has METRICS_DEADLINE_MS from accept to have sent its request
 *     and read the answer, then it is closed whatever its state;
 *   - a request is at most METRICS_MAX_REQUEST bytes, one per connection
 *     (Connection: close).
 * GET and HEAD /metrics (a query string is ignored); other paths 404,
 * other methods 405.
 */
struct mconn {
    struct metrics_http *m;
    struct bufferevent  *bev;
    struct event        *deadline;
    size_t               seen;          /* bytes of the request read so far */
    int                  have_line;     /* the request line was read */
    int                  head;          /* HEAD: no body */
    int                  status;        /* 0, or the error to answer */
    int                  openmetrics;   /* Accept: asks for OpenMetrics */
    int                  answered;
    LIST_ENTRY(mconn)    link;
};

struct metrics_http {
    struct event_base *base;
    const struct ctl  *ctl;
    int                lfd;
    struct acceptor   *acceptor;
    LIST_HEAD(, mconn) conns;
    unsigned           nconns;
    uint64_t           scrapes, refused, timed_out;
};

static void
mconn_free(struct mconn *c)
{
    LIST_REMOVE(c, link);
    c->m->nconns--;
    event_free(c->deadline);
    bufferevent_free(c->bev);       /* closes the socket */
    free(c);
}

static void
mconn_answer(struct mconn *c, int status, const char *reason, const char *ctype,
             const char *body, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    c->answered = 1;
    bufferevent_disable(c->bev, EV_READ);
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                        "Content-Length: %zu\r\nConnection: close\r\n%s\r\n", status,
                        reason, ctype, len, status == 405 ? "Allow: GET, HEAD\r\n" : "");
    if (!c->head)
        evbuffer_add(out, body, len);
    /* The write callback closes it once the answer is out. */
    bufferevent_enable(c->bev, EV_WRITE);
}

static void
mconn_error(struct mconn *c, int status, const char *reason)
{
    char body[128];
    int n = snprintf(body, sizeof(body), "%d %s\n", status, reason);

    mconn_answer(c, status, reason, "text/plain; charset=utf-8", body, (size_t)n);
}

static void
mconn_scrape(struct mconn *c)
{
    enum metrics_format f = c->openmetrics ? METRICS_OPENMETRICS : METRICS_PROMETHEUS;
    size_t len;
    char *s = metrics_render(c->m->ctl, f, &len);

    if (s == NULL) {
        mconn_error(c, 500, "Internal Server Error");
        return;
    }
    c->m->scrapes++;
    mconn_answer(c, 200, "OK", f == METRICS_OPENMETRICS ?
                 "application/openmetrics-text; version=1.0.0; charset=utf-8" :
                 "text/plain; version=0.0.4; charset=utf-8", s, len);
    free(s);
}

/* "METHOD TARGET HTTP/x.y": the method and whether the path is /metrics. */
static void
mconn_request_line(struct mconn *c, const char *line)
{
    const char *sp1 = strchr(line, ' ');
    const char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    size_t mlen, plen;

    if (sp1 == NULL || sp2 == NULL || strncmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
        sp2 == sp1 + 1) {
        c->status = 400;
        return;
    }
    mlen = (size_t)(sp1 - line);
    plen = strcspn(sp1 + 1, " ?");
    if (mlen == 4 && memcmp(line, "HEAD", 4) == 0)
        c->head = 1;
    else if (!(mlen == 3 && memcmp(line, "GET", 3) == 0)) {
        c->status = 405;
        return;
    }
    if (!(plen == 8 && memcmp(sp1 + 1, "/metrics", 8) == 0))
        c->status = 404;
}

static void
on_mconn_read(struct bufferevent *bev, void *arg)
{
    struct mconn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n;
    char *line;

    while (!c->answered && (line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF)) != NULL) {
        c->seen += n + 1;
        if (c->seen > METRICS_MAX_REQUEST) {
            free(line);
            break;
        }
        if (!c->have_line) {
            c->have_line = 1;
            mconn_request_line(c, line);
        } else if (n == 0) {
            free(line);
            switch (c->status) {
            case 0:
                mconn_scrape(c);
                break;
            case 404:
                mconn_error(c, 404, "Not Found (only /metrics here)");
                break;
            case 405:
                mconn_error(c, 405, "Method Not Allowed");
                break;
            default:
                mconn_error(c, 400, "Bad Request");
                break;
            }
            return;
        } else if (strncasecmp(line, "Accept:", 7) == 0 &&
                   strstr(line + 7, "application/openmetrics-text") != NULL) {
            c->openmetrics = 1;
        }
        free(line);
    }
    if (c->answered)
        return;
    if (c->seen + evbuffer_get_length(in) > METRICS_MAX_REQUEST) {
        c->head = 0;
        mconn_error(c, 431, "Request Header Fields Too Large");
    }
}

static void
on_mconn_write(struct bufferevent *bev, void *arg)
{
    struct mconn *c = arg;

    if (c->answered && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        mconn_free(c);
}

static void
on_mconn_event(struct bufferevent *bev, short what, void *arg)
{
    struct mconn *c = arg;

    (void)bev;
    /* The client shut its side after its request: finish writing the answer. */
    if (c->answered && (what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
        evbuffer_get_length(bufferevent_get_output(bev)) > 0)
        return;
    mconn_free(c);
}

static void
on_mconn_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct mconn *c = arg;

    (void)fd;
    (void)what;
    if (c->m->timed_out++ % 1000 == 0)
        log_info("metrics: a connection took more than %d ms: closed (%llu so far)",
                 METRICS_DEADLINE_MS, (unsigned long long)c->m->timed_out);
    mconn_free(c);
}

static void
on_metrics_accept(int fd, const struct listen_peer *peer, void *arg)
{
    struct metrics_http *m = arg;
    struct timeval tv = { METRICS_DEADLINE_MS / 1000, (METRICS_DEADLINE_MS % 1000) * 1000 };
    struct mconn *c;

    (void)peer;
    if (m->nconns >= METRICS_MAX_CONNS) {
        if (m->refused++ % 1000 == 0)
            log_warnx("metrics: %u connections open: refused one (%llu so far)",
                      m->nconns, (unsigned long long)m->refused);
        close(fd);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return;
    }
    c->m = m;
    c->bev = bufferevent_socket_new(m->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->deadline = evtimer_new(m->base, on_mconn_deadline, c);
    if (c->bev == NULL || c->deadline == NULL) {
        if (c->bev)
            bufferevent_free(c->bev);
        else
            close(fd);
        if (c->deadline)
            event_free(c->deadline);
        free(c);
        return;
    }
    m->nconns++;
    LIST_INSERT_HEAD(&m->conns, c, link);
    bufferevent_setcb(c->bev, on_mconn_read, on_mconn_write, on_mconn_event, c);
    /* Read no more than a whole request can be. */
    bufferevent_setwatermark(c->bev, EV_READ, 0, METRICS_MAX_REQUEST + 1);
    bufferevent_enable(c->bev, EV_READ);
    evtimer_add(c->deadline, &tv);
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

/* A listening TCP socket on host:port (non-blocking, close-on-exec), or -1. */
static int
listen_tcp(const char *host, unsigned long port)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE };
    struct addrinfo *res, *ai;
    char serv[16];
    int fd = -1, one = 1;

    snprintf(serv, sizeof(serv), "%lu", port);
    if (getaddrinfo(host, serv, &hints, &res) != 0)
        return -1;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0)
            continue;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
            bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

struct metrics_http *
metrics_http_new(struct event_base *base, const struct ctl *ctl, const char *addr,
                 char *err, size_t errlen)
{
    struct metrics_http *m;
    char host[256];
    unsigned long port;

    if (parse_addr(addr, host, sizeof(host), &port, err, errlen) < 0)
        return NULL;
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        snprintf(err, errlen, "metrics: out of memory");
        return NULL;
    }
    m->base = base;
    m->ctl = ctl;
    LIST_INIT(&m->conns);
    if ((m->lfd = listen_tcp(host, port)) < 0) {
        snprintf(err, errlen, "metrics: cannot listen on %s port %lu (address in use, "
                 "not local, or not allowed by the unit's IPAddressAllow=)", host, port);
        free(m);
        return NULL;
    }
    /* Backs off (not spins) when descriptors run out. */
    if ((m->acceptor = acceptor_new(base, m->lfd, "metrics", on_metrics_accept, m)) == NULL) {
        snprintf(err, errlen, "metrics: out of memory");
        close(m->lfd);
        free(m);
        return NULL;
    }
    {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);

        if (getsockname(m->lfd, (struct sockaddr *)&ss, &sl) == 0)
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
    while (!LIST_EMPTY(&m->conns))
        mconn_free(LIST_FIRST(&m->conns));
    acceptor_free(m->acceptor);
    close(m->lfd);
    free(m);
}
