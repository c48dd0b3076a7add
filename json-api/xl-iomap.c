/* SPDX-License-Identifier: MIT */
/*
 * xl-iomap: the operator's view of iomapd, as `xl iomap ...` (the patched
 * xl execs xl-CMD for commands it does not know) or on its own.
 * Talks JSON-RPC 2.0 to iomapd's control socket; see xl-iomap(1).
 *
 * Exit status: 0 success; 1 the daemon answered with an error; 2 usage;
 * 3 the daemon cannot be reached; 4 a broken or late answer;
 * 5 permission denied by the daemon.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#ifdef HAVE_XENSTORE
#include <xenstore.h>
#endif

#define EX_OK       0
#define EX_RPC      1
#define EX_USAGE    2
#define EX_CONNECT  3
#define EX_PROTO    4
#define EX_DENIED   5

static const char *sock_path;
static int opt_json;
static int timeout_ms = 10000;
static int wait_s;              /* --wait: retry reaching iomapd this long */
static int fd = -1;
static long next_id = 1;
static char *rbuf;
static size_t rlen, rcap;

static void
usage(FILE *f)
{
    fprintf(f,
        "usage: xl-iomap [--socket PATH] [--json] COMMAND [ARGS]\n"
        "       xl iomap [--socket PATH] [--json] COMMAND [ARGS]\n"
        "The operator's view of iomapd (see xl-iomap(1)).\n"
        "\n"
        "Commands:\n"
        "  status                         daemon state, counts of pages by state\n"
        "  domains                        domains with mappings or pages in flight\n"
        "  emulators                      emulators and what they hold\n"
        "  mappings [--domid D] [--emulator E] [--gfn A[-B]] [--limit N]\n"
        "                                 mapped gfns (runs); all pages of results\n"
        "  pending [--domid D] [--state invalidating|flushing] [--limit N]\n"
        "                                 removed pages not yet released\n"
        "  stats                          counters and release latency\n"
        "  metrics                        Prometheus text format\n"
        "  top [--interval SEC] [--count N]  live view (q or Ctrl-C to leave)\n"
        "  drain EMULATOR [--timeout MS] [--unmap-all]\n"
        "                                 finish or force-unmap what EMULATOR (E:T:N) holds\n"
        "  policy                         the policy in force: source, quotas, timeouts\n"
        "  reload [--check]               reload the policy (iomapd.conf); --check:\n"
        "                                 only show what it would force-unmap\n"
        "  COMMAND --help                 what COMMAND does and takes\n"
        "\n"
        "Options:\n"
        "  -s, --socket PATH   control socket (default $IOMAPD_SOCKET or\n"
        "                      %s/iomapd/iomapd.sock)\n"
        "  -j, --json          print the daemon's JSON result instead of a table\n"
        "  -t, --timeout MS    give up waiting for an answer (default 10000)\n"
        "  -w, --wait SEC      retry reaching iomapd for up to SEC seconds (scripts\n"
        "                      that have just started it)\n"
        "  -h, --help          this text;  -V, --version\n"
        "\n"
        "Exit status: 0 ok, 1 the daemon reported an error, 2 usage,\n"
        "3 iomapd not reachable, 4 broken or late answer, 5 permission denied.\n",
        RUNSTATEDIR);
}

/* Each command's own --help. */
static const struct {
    const char *name, *args, *what;
} commands[] = {
    { "status", "", "Daemon version, state, backend, uptime; domains, emulators,\n"
      "mappings, and pages by state." },
    { "domains", "", "Domains with mappings or pages in flight, with their names\n"
      "(from xenstore on a Xen host; the domain id where there is none)." },
    { "emulators", "", "Emulators (EMU_DOMID:TARGET:IOSERVID) and what they hold:\n"
      "mappings, pages held, queued and sent invalidates, forced and bad unmaps.\n"
      "FORCED counts every page force-unmapped, whatever the cause." },
    { "mappings", "[--domid D] [--emulator E:T:N] [--gfn A[-B]] [--limit N]",
      "Mapped gfns, as runs of consecutive pages.  --limit N stops after N\n"
      "mappings (default: all) and says so when more exist." },
    { "pending", "[--domid D] [--state invalidating|flushing] [--limit N]",
      "Removed pages not yet released, and what each waits for.  --limit N\n"
      "stops after N pages (default: all) and says so when more exist." },
    { "stats", "", "Counters and the release latency (removed -> released)." },
    { "metrics", "", "The counters in the Prometheus text format (what the daemon's\n"
      "--metrics HTTP endpoint serves)." },
    { "top", "[--interval SEC] [--count N]", "A live view; q or Ctrl-C to leave." },
    { "drain", "EMULATOR [--timeout MS] [--unmap-all]",
      "Wait until EMULATOR (E:T:N) has unmapped every page it was asked to\n"
      "drop; at the deadline (default 5000 ms) force-unmap what it still holds.\n"
      "--unmap-all: then drop its other mappings too.  Prints how many pages\n"
      "were force-unmapped (the same pages FORCED in `emulators` counts)." },
    { "policy", "", "The policy in force: where it comes from, rules, reserved and\n"
      "read-only ranges, quotas, and the timeouts with their steps." },
    { "reload", "[--check]", "Reload the policy from its file (needs the admin group).\n"
      "--check: change nothing; show the mappings the new policy would\n"
      "force-unmap, as runs per emulator." },
};

static int
command_help(const char *cmd)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(commands[i].name, cmd)) {
            printf("usage: xl-iomap [OPTIONS] %s%s%s\n%s\n"
                   "(OPTIONS: see xl-iomap --help and xl-iomap(1))\n",
                   cmd, *commands[i].args ? " " : "", commands[i].args, commands[i].what);
            return EX_OK;
        }
    usage(stdout);
    return EX_OK;
}

static int __attribute__((format(printf, 1, 2)))
die_usage(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "xl-iomap: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see xl-iomap --help)\n");
    return EX_USAGE;
}

/* ---- talking to iomapd -------------------------------------------------------- */

static int
connect_daemon(void)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };

    if (fd >= 0)
        return 0;
    if (strlen(sock_path) >= sizeof(sun.sun_path)) {
        fprintf(stderr, "xl-iomap: socket path too long: %s\n", sock_path);
        return EX_CONNECT;
    }
    strcpy(sun.sun_path, sock_path);
    for (int tries = wait_s * 20;; tries--) {
        int e;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
            break;
        e = errno;
        if (fd >= 0)
            close(fd);
        fd = -1;
        if (tries > 0 && (e == ENOENT || e == ECONNREFUSED)) {
            struct timespec ts = { 0, 50000000 };

            nanosleep(&ts, NULL);
            continue;
        }
        errno = e;
        break;
    }
    if (fd < 0) {
        int e = errno;

        fprintf(stderr, "xl-iomap: cannot reach iomapd at %s: %s%s\n", sock_path,
                strerror(e), e == ENOENT || e == ECONNREFUSED ?
                " (is iomapd running? see --socket)" :
                e == EACCES ? " (need root or the iomapd socket group)" : "");
        if (fd >= 0)
            close(fd);
        fd = -1;
        return EX_CONNECT;
    }
    return 0;
}

/* One line from the daemon, or NULL (message printed, *ex set). */
static char *
read_line(int *ex)
{
    struct timespec t0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        char *nl = rlen ? memchr(rbuf, '\n', rlen) : NULL;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        struct timespec t1;
        long waited;
        ssize_t n;

        if (nl) {
            size_t len = (size_t)(nl - rbuf);
            char *line = malloc(len + 1);

            if (line == NULL) {
                *ex = EX_PROTO;
                return NULL;
            }
            memcpy(line, rbuf, len);
            line[len] = '\0';
            memmove(rbuf, nl + 1, rlen - len - 1);
            rlen -= len + 1;
            return line;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        waited = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (waited >= timeout_ms ||
            poll(&pfd, 1, (int)(timeout_ms - waited)) == 0) {
            fprintf(stderr, "xl-iomap: no answer from iomapd within %d ms\n", timeout_ms);
            *ex = EX_PROTO;
            return NULL;
        }
        if (rcap - rlen < 65536) {
            char *nb = realloc(rbuf, rcap + 65536);

            if (nb == NULL) {
                *ex = EX_PROTO;
                return NULL;
            }
            rbuf = nb;
            rcap += 65536;
        }
        n = read(fd, rbuf + rlen, rcap - rlen);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "xl-iomap: iomapd closed the connection%s%s\n",
                    n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
            *ex = EX_PROTO;
            return NULL;
        }
        rlen += (size_t)n;
    }
}

/*
 * Call a method; params stolen.  Returns the result (new reference) or
 * NULL with *ex set and the daemon's error printed.
 */
static json_t *
call(const char *method, json_t *params, int *ex)
{
    json_t *req, *resp, *err, *res;
    json_error_t jerr;
    char *s, *line;
    long id = next_id++;
    size_t off = 0, len;

    *ex = connect_daemon();
    if (*ex) {
        json_decref(params);
        return NULL;
    }
    req = json_pack("{s:s, s:s, s:i}", "jsonrpc", "2.0", "method", method, "id", (int)id);
    if (params)
        json_object_set_new(req, "params", params);
    s = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    len = strlen(s);
    s[len++] = '\n';        /* json_dumps leaves room: replace the NUL */
    while (off < len) {
        ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "xl-iomap: sending to iomapd: %s\n", strerror(errno));
            free(s);
            *ex = EX_PROTO;
            return NULL;
        }
        off += (size_t)n;
    }
    free(s);
    for (;;) {
        line = read_line(ex);
        if (line == NULL)
            return NULL;
        resp = json_loads(line, 0, &jerr);
        free(line);
        if (resp == NULL || !json_is_object(resp)) {
            fprintf(stderr, "xl-iomap: iomapd sent something that is not JSON-RPC\n");
            json_decref(resp);
            *ex = EX_PROTO;
            return NULL;
        }
        /* Skip notifications (top does not subscribe, but be tolerant). */
        if (json_object_get(resp, "method") == NULL)
            break;
        json_decref(resp);
    }
    err = json_object_get(resp, "error");
    if (err) {
        json_int_t code = json_integer_value(json_object_get(err, "code"));
        const char *msg = json_string_value(json_object_get(err, "message"));

        if (opt_json) {
            char *e = json_dumps(err, JSON_INDENT(2));

            fprintf(stderr, "%s\n", e);
            free(e);
        } else {
            fprintf(stderr, "xl-iomap: %s: %s (error %" JSON_INTEGER_FORMAT ")\n", method,
                    msg ? msg : "error", code);
        }
        *ex = code == -32000 ? EX_DENIED : EX_RPC;
        json_decref(resp);
        return NULL;
    }
    res = json_object_get(resp, "result");
    if (res == NULL) {
        fprintf(stderr, "xl-iomap: answer without result or error\n");
        json_decref(resp);
        *ex = EX_PROTO;
        return NULL;
    }
    json_incref(res);
    json_decref(resp);
    *ex = EX_OK;
    return res;
}

static void
print_json(json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));

    if (s)
        printf("%s\n", s);
    free(s);
}

static json_int_t
ji(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static double
jr(json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

static const char *
js(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));

    return s ? s : "-";
}

/* ---- domain names ------------------------------------------------------------- */

/*
 * The name of a domain, as xl shows it: from xenstore on a Xen host
 * (/local/domain/N/name); the id itself where there is none (the sim, a
 * host without xenstored, a domain already gone).
 */
static const char *
domain_name(json_int_t domid, char *buf, size_t len)
{
#ifdef HAVE_XENSTORE
    static struct xs_handle *xs;
    static int tried;

    if (!tried) {
        tried = 1;
        if (access("/proc/xen/capabilities", F_OK) == 0 ||
            access("/dev/xen/xenbus", F_OK) == 0)
            xs = xs_open(XS_OPEN_READONLY);
    }
    if (xs) {
        char path[64];
        unsigned int n = 0;
        char *v;

        snprintf(path, sizeof(path), "/local/domain/%" JSON_INTEGER_FORMAT "/name", domid);
        v = xs_read(xs, XBT_NULL, path, &n);
        if (v && n > 0) {
            snprintf(buf, len, "%.*s", (int)n, v);
            free(v);
            return buf;
        }
        free(v);
    }
#endif
    snprintf(buf, len, "%" JSON_INTEGER_FORMAT, domid);
    return buf;
}

/* The guest of an emulator E:T:N is T. */
static const char *
emulator_guest(const char *emu, char *buf, size_t len)
{
    unsigned a, t, n;

    if (sscanf(emu, "%u:%u:%u", &a, &t, &n) != 3)
        return "-";
    return domain_name((json_int_t)t, buf, len);
}

/* Set when a listing stopped at --limit with more rows left. */
static long cut_shown;

static void
cut_hint(const char *what)
{
    if (cut_shown)
        fprintf(stderr, "xl-iomap: the first %ld %s shown; more exist "
                "(raise --limit, or leave it out for all)\n", cut_shown, what);
}

/* ---- commands ---------------------------------------------------------------- */

static int
cmd_status(void)
{
    int ex;
    json_t *r = call("status", NULL, &ex), *p;

    if (r == NULL)
        return ex;
    if (opt_json) {
        print_json(r);
    } else {
        double up = jr(r, "uptime_s");

        p = json_object_get(r, "pages");
        printf("iomapd %s, %s, backend %s, up %dd %02d:%02d:%02d%s\n",
               js(r, "version"), js(r, "state"), js(r, "backend"),
               (int)(up / 86400), (int)(up / 3600) % 24, (int)(up / 60) % 60,
               (int)up % 60, json_is_true(json_object_get(r, "resyncing")) ?
               " (resynchronising with the shim)" : "");
        printf("%-22s %" JSON_INTEGER_FORMAT "\n", "domains:", ji(r, "domains"));
        printf("%-22s %" JSON_INTEGER_FORMAT "\n", "emulators:", ji(r, "emulators"));
        printf("%-22s %" JSON_INTEGER_FORMAT "\n", "mappings:", ji(r, "mappings"));
        printf("%-22s %" JSON_INTEGER_FORMAT "\n", "pages invalidating:",
               ji(p, "invalidating"));
        printf("%-22s %" JSON_INTEGER_FORMAT "\n", "pages flushing:", ji(p, "flushing"));
        printf("%-22s %" JSON_INTEGER_FORMAT "\n", "pages removed:", ji(p, "removed"));
        printf("%-22s %" JSON_INTEGER_FORMAT "\n", "pages released:", ji(p, "released"));
    }
    json_decref(r);
    return EX_OK;
}

static int
cmd_domains(void)
{
    int ex;
    json_t *r = call("domain.list", NULL, &ex), *a, *v;
    size_t i;

    if (r == NULL)
        return ex;
    if (opt_json) {
        print_json(r);
    } else {
        a = json_object_get(r, "domains");
        char name[64];

        printf("%6s %-20s %12s %10s %14s\n", "DOMID", "NAME", "MAPPINGS", "EMULATORS",
               "PENDING-PAGES");
        json_array_foreach(a, i, v)
            printf("%6" JSON_INTEGER_FORMAT " %-20s %12" JSON_INTEGER_FORMAT " %10"
                   JSON_INTEGER_FORMAT " %14" JSON_INTEGER_FORMAT "\n",
                   ji(v, "domid"), domain_name(ji(v, "domid"), name, sizeof(name)),
                   ji(v, "mappings"), ji(v, "emulators"), ji(v, "pending_pages"));
    }
    json_decref(r);
    return EX_OK;
}

static void
emulator_table(json_t *a)
{
    json_t *v;
    size_t i;
    char name[64];

    printf("%-11s %-16s %-5s %-9s %10s %10s %8s %10s %8s %7s\n", "EMULATOR", "GUEST",
           "ALIVE", "INVAL", "MAPPINGS", "HELD", "QUEUED", "SENT", "FORCED", "BAD");
    json_array_foreach(a, i, v)
        printf("%-11s %-16s %-5s %-9s %10" JSON_INTEGER_FORMAT " %10" JSON_INTEGER_FORMAT
               " %8" JSON_INTEGER_FORMAT " %10" JSON_INTEGER_FORMAT " %8"
               JSON_INTEGER_FORMAT " %7" JSON_INTEGER_FORMAT "\n",
               js(v, "emulator"), emulator_guest(js(v, "emulator"), name, sizeof(name)),
               json_is_true(json_object_get(v, "alive")) ? "yes" : "no",
               js(v, "invalidate"), ji(v, "mappings"), ji(v, "held_pages"),
               ji(v, "queued_ranges"), ji(v, "invalidates_sent"),
               ji(v, "forced_unmaps"), ji(v, "bad_unmaps"));
}

static int
cmd_emulators(void)
{
    int ex;
    json_t *r = call("emulator.list", NULL, &ex);

    if (r == NULL)
        return ex;
    if (opt_json)
        print_json(r);
    else
        emulator_table(json_object_get(r, "emulators"));
    json_decref(r);
    return EX_OK;
}

/* Fetch every page of a paginated method into one array (up to max items). */
static json_t *
fetch_all(const char *method, json_t *params, const char *key, long max, int *ex)
{
    json_t *all = json_array(), *cursor = NULL;

    for (;;) {
        json_t *p = json_deep_copy(params), *r, *next;

        if (cursor)
            json_object_set(p, "cursor", cursor);
        if (max > 0 && max - (long)json_array_size(all) < 10000)
            json_object_set_new(p, "limit",
                                json_integer(max - (json_int_t)json_array_size(all)));
        r = call(method, p, ex);
        if (r == NULL) {
            json_decref(all);
            json_decref(cursor);
            return NULL;
        }
        json_array_extend(all, json_object_get(r, key));
        next = json_object_get(r, "next_cursor");
        json_decref(cursor);
        cursor = json_is_string(next) ? json_incref(next) : NULL;
        json_decref(r);
        if (cursor == NULL)
            break;
        if (max > 0 && (long)json_array_size(all) >= max) {
            cut_shown = (long)json_array_size(all);     /* more rows left */
            break;
        }
    }
    json_decref(cursor);
    return all;
}

static int
parse_num(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno || *s == '\0' || *end || v > max || *s == '-')
        return -1;
    *out = v;
    return 0;
}

/*
 * The options of the listing subcommands (mappings, pending), into the
 * request's params.  Returns EX_OK, or the exit status of a usage error.
 */
static int
list_opts(int argc, char **argv, const char *optstring, const struct option *lo,
          json_t *params, long *limit)
{
    unsigned long long x;
    int c;

    optind = 0;     /* GNU getopt: start afresh (new optstring) */
    while ((c = getopt_long(argc, argv, optstring, lo, NULL)) != -1) {
        switch (c) {
        case 'd':
            if (parse_num(optarg, 0x7fef, &x) < 0)
                return die_usage("bad --domid '%s'", optarg);
            json_object_set_new(params, "domid", json_integer((json_int_t)x));
            break;
        case 'e':
            json_object_set_new(params, "emulator", json_string(optarg));
            break;
        case 'g': {
            char *dash = strchr(optarg, '-');
            unsigned long long hi;

            if (dash)
                *dash = '\0';
            if (parse_num(optarg, UINT64_MAX >> 12, &x) < 0 ||
                (dash && parse_num(dash + 1, UINT64_MAX >> 12, &hi) < 0))
                return die_usage("bad --gfn '%s' (GFN or FIRST-LAST)", optarg);
            json_object_set_new(params, "gfn_start", json_integer((json_int_t)x));
            json_object_set_new(params, "gfn_end",
                                json_integer((json_int_t)(dash ? hi : x)));
            break;
        }
        case 's':
            if (strcmp(optarg, "invalidating") && strcmp(optarg, "flushing"))
                return die_usage("bad --state '%s' (invalidating or flushing)", optarg);
            json_object_set_new(params, "state", json_string(optarg));
            break;
        case 'n':
            if (parse_num(optarg, 100000000, &x) < 0 || x == 0)
                return die_usage("bad --limit '%s'", optarg);
            *limit = (long)x;
            break;
        default:
            return EX_USAGE;
        }
    }
    if (optind != argc)
        return die_usage("unexpected argument '%s'", argv[optind]);
    return EX_OK;
}

/*
 * A listing subcommand's rows: its options into the request, every page
 * fetched.  With --json the rows are printed here and NULL comes back with
 * *ex = EX_OK; NULL with another *ex is a failure already reported.
 */
static json_t *
list_fetch(int argc, char **argv, const char *optstring, const struct option *lo,
           const char *method, const char *key, int *ex)
{
    json_t *params = json_object(), *all;
    long limit = 0;

    *ex = list_opts(argc, argv, optstring, lo, params, &limit);
    if (*ex != EX_OK) {
        json_decref(params);
        return NULL;
    }
    all = fetch_all(method, params, key, limit, ex);
    json_decref(params);
    if (all && opt_json) {
        json_t *o = json_pack("{s:o}", key, all);

        print_json(o);
        json_decref(o);
        *ex = EX_OK;
        return NULL;
    }
    return all;
}

static int
cmd_mappings(int argc, char **argv)
{
    static const struct option lo[] = {
        { "domid", required_argument, NULL, 'd' },
        { "emulator", required_argument, NULL, 'e' },
        { "gfn", required_argument, NULL, 'g' },
        { "limit", required_argument, NULL, 'n' },
        { NULL, 0, NULL, 0 },
    };
    json_t *all, *v;
    int ex;
    size_t i;

    all = list_fetch(argc, argv, "d:e:g:n:", lo, "mapping.list", "mappings", &ex);
    if (all == NULL)
        return ex;
    /* Humans get runs of consecutive gfns. */
    printf("%-11s %6s %-33s %8s\n", "EMULATOR", "DOMID", "GFNS", "PAGES");
    for (i = 0; i < json_array_size(all); ) {
        json_t *first = json_array_get(all, i);
        json_int_t g0 = ji(first, "gfn"), n = 1;
        char run[64];

        while (i + (size_t)n < json_array_size(all)) {
            v = json_array_get(all, i + (size_t)n);
            if (ji(v, "domid") != ji(first, "domid") || ji(v, "gfn") != g0 + n ||
                strcmp(js(v, "emulator"), js(first, "emulator")))
                break;
            n++;
        }
        if (n == 1)
            snprintf(run, sizeof(run), "%#" PRIx64, (uint64_t)g0);
        else
            snprintf(run, sizeof(run), "%#" PRIx64 "-%#" PRIx64, (uint64_t)g0,
                     (uint64_t)(g0 + n - 1));
        printf("%-11s %6" JSON_INTEGER_FORMAT " %-33s %8" JSON_INTEGER_FORMAT "\n",
               js(first, "emulator"), ji(first, "domid"), run, n);
        i += (size_t)n;
    }
    json_decref(all);
    cut_hint("mappings");
    return EX_OK;
}

static int
cmd_pending(int argc, char **argv)
{
    static const struct option lo[] = {
        { "domid", required_argument, NULL, 'd' },
        { "state", required_argument, NULL, 's' },
        { "limit", required_argument, NULL, 'n' },
        { NULL, 0, NULL, 0 },
    };
    json_t *all, *v;
    int ex;
    size_t i;

    all = list_fetch(argc, argv, "d:s:n:", lo, "page.list", "pages", &ex);
    if (all == NULL)
        return ex;
    printf("%6s %-14s %-14s %-13s %10s  %s\n", "DOMID", "GFN", "MFN", "STATE",
           "AGE-MS", "WAITING FOR");
    json_array_foreach(all, i, v) {
        json_t *w = json_object_get(v, "waits_for"), *h = json_object_get(w, "holders"), *e;
        char wait[256] = "";
        size_t k, off = 0;

        json_array_foreach(h, k, e)
            off += (size_t)snprintf(wait + off, off < sizeof(wait) ? sizeof(wait) - off : 0,
                                    "%s%s(x%" JSON_INTEGER_FORMAT ")", k ? " " : "",
                                    js(e, "emulator"), ji(e, "count"));
        if (off >= sizeof(wait))        /* cut: say so */
            memcpy(wait + sizeof(wait) - 32, " ... (see --json for all)", 26);
        if (json_array_size(h) == 0)
            snprintf(wait, sizeof(wait), "flush seq %" JSON_INTEGER_FORMAT
                     " (done %" JSON_INTEGER_FORMAT ")", ji(w, "cover_seq"),
                     ji(w, "flush_done_seq"));
        printf("%6" JSON_INTEGER_FORMAT " %#-14" PRIx64 " %#-14" PRIx64 " %-13s %10.1f  %s\n",
               ji(v, "domid"), (uint64_t)ji(v, "gfn"), (uint64_t)ji(v, "mfn"),
               js(v, "state"), jr(v, "age_ms"), wait);
    }
    json_decref(all);
    cut_hint("pages");
    return EX_OK;
}

static void
stats_table(json_t *r)
{
    json_t *c = json_object_get(r, "counters"), *l = json_object_get(r, "release_latency"), *v;
    const char *k;

    printf("release latency (removed -> released): %" JSON_INTEGER_FORMAT " pages, "
           "p50 %.1f us, p99 %.1f us, max %.1f us, mean %.1f us\n",
           ji(l, "count"), jr(l, "p50_us"), jr(l, "p99_us"), jr(l, "max_us"),
           jr(l, "mean_us"));
    json_object_foreach(c, k, v)
        printf("  %-26s %" JSON_INTEGER_FORMAT "\n", k, json_integer_value(v));
}

static int
cmd_stats(void)
{
    int ex;
    json_t *r = call("stats", NULL, &ex);

    if (r == NULL)
        return ex;
    if (opt_json)
        print_json(r);
    else
        stats_table(r);
    json_decref(r);
    return EX_OK;
}

static int
cmd_metrics(void)
{
    int ex;
    json_t *r = call("metrics", NULL, &ex);

    if (r == NULL)
        return ex;
    if (opt_json)
        print_json(r);
    else
        fputs(json_string_value(r), stdout);
    json_decref(r);
    return EX_OK;
}

static volatile sig_atomic_t stop_top;

static void
on_sigint(int s)
{
    (void)s;
    stop_top = 1;
}

static int
cmd_top(int argc, char **argv)
{
    static const struct option lo[] = {
        { "interval", required_argument, NULL, 'i' },
        { "count", required_argument, NULL, 'c' },
        { NULL, 0, NULL, 0 },
    };
    double interval = 1.0;
    long count = 0, n = 0;
    int c, ex = EX_OK, tty = isatty(STDOUT_FILENO);
    json_int_t prev_rel = -1, prev_rem = -1;

    optind = 0;     /* GNU getopt: start afresh (new optstring) */
    while ((c = getopt_long(argc, argv, "i:c:d:n:", lo, NULL)) != -1) {
        char *end;

        switch (c) {
        case 'i': case 'd':
            interval = strtod(optarg, &end);
            if (*end || interval < 0.05 || interval > 3600)
                return die_usage("bad --interval '%s' (seconds, 0.05 to 3600)", optarg);
            break;
        case 'c': case 'n':
            count = strtol(optarg, &end, 10);
            if (*end || count < 1)
                return die_usage("bad --count '%s'", optarg);
            break;
        default:
            return EX_USAGE;
        }
    }
    if (optind != argc)
        return die_usage("unexpected argument '%s'", argv[optind]);
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    while (!stop_top) {
        json_t *st = call("status", NULL, &ex), *em = NULL, *sts = NULL, *p, *l;
        time_t now = time(NULL);
        char tbuf[32];

        if (st)
            em = call("emulator.list", NULL, &ex);
        if (em)
            sts = call("stats", NULL, &ex);
        if (sts == NULL) {
            json_decref(st);
            json_decref(em);
            return ex;
        }
        if (opt_json) {
            json_t *o = json_pack("{s:O, s:O, s:O}", "status", st, "emulators",
                                  json_object_get(em, "emulators"), "stats", sts);
            char *s = json_dumps(o, JSON_COMPACT);

            printf("%s\n", s);
            free(s);
            json_decref(o);
        } else {
            p = json_object_get(st, "pages");
            l = json_object_get(sts, "release_latency");
            strftime(tbuf, sizeof(tbuf), "%H:%M:%S", localtime(&now));
            if (tty)
                printf("\033[H\033[2J");
            printf("xl iomap top - %s  iomapd %s (%s), every %.2gs\n", tbuf,
                   js(st, "version"), js(st, "backend"), interval);
            printf("domains %" JSON_INTEGER_FORMAT "  emulators %" JSON_INTEGER_FORMAT
                   "  mappings %" JSON_INTEGER_FORMAT "\n", ji(st, "domains"),
                   ji(st, "emulators"), ji(st, "mappings"));
            printf("pages: invalidating %" JSON_INTEGER_FORMAT "  flushing %"
                   JSON_INTEGER_FORMAT "  removed %" JSON_INTEGER_FORMAT "  released %"
                   JSON_INTEGER_FORMAT, ji(p, "invalidating"), ji(p, "flushing"),
                   ji(p, "removed"), ji(p, "released"));
            if (prev_rel >= 0)
                printf("  (%.0f removed/s, %.0f released/s)",
                       (double)(ji(p, "removed") - prev_rem) / interval,
                       (double)(ji(p, "released") - prev_rel) / interval);
            printf("\nrelease latency: p50 %.1f us  p99 %.1f us  max %.1f us\n\n",
                   jr(l, "p50_us"), jr(l, "p99_us"), jr(l, "max_us"));
            emulator_table(json_object_get(em, "emulators"));
            if (!tty)
                printf("\n");
            prev_rel = ji(p, "released");
            prev_rem = ji(p, "removed");
        }
        fflush(stdout);
        json_decref(st);
        json_decref(em);
        json_decref(sts);
        if (count && ++n >= count)
            break;
        {
            struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
            int wait = (int)(interval * 1000);

            if (isatty(STDIN_FILENO) && poll(&pfd, 1, wait) > 0) {
                char ch;

                if (read(STDIN_FILENO, &ch, 1) == 1 && (ch == 'q' || ch == 'Q'))
                    break;
            } else if (!isatty(STDIN_FILENO)) {
                struct timespec ts = { (time_t)interval,
                                       (long)((interval - (double)(time_t)interval) * 1e9) };

                nanosleep(&ts, NULL);
            }
        }
    }
    return EX_OK;
}

static int
cmd_drain(int argc, char **argv)
{
    static const struct option lo[] = {
        { "timeout", required_argument, NULL, 't' },
        { "unmap-all", no_argument, NULL, 'u' },
        { NULL, 0, NULL, 0 },
    };
    unsigned long long t = 5000;
    int c, ex, unmap_all = 0;
    json_t *r;

    optind = 0;     /* GNU getopt: start afresh (new optstring) */
    while ((c = getopt_long(argc, argv, "t:u", lo, NULL)) != -1) {
        switch (c) {
        case 't':
            if (parse_num(optarg, 3600000, &t) < 0)
                return die_usage("bad --timeout '%s' (milliseconds)", optarg);
            break;
        case 'u':
            unmap_all = 1;
            break;
        default:
            return EX_USAGE;
        }
    }
    if (optind + 1 != argc)
        return die_usage("%s", "drain takes one EMULATOR (EMU_DOMID:TARGET:IOSERVID)");
    if (timeout_ms < (int)t + 5000)
        timeout_ms = (int)t + 5000;     /* the answer comes after the drain */
    r = call("emulator.drain", json_pack("{s:s, s:I, s:b}", "emulator", argv[optind],
                                         "timeout_ms", (json_int_t)t,
                                         "unmap_all", unmap_all), &ex);
    if (r == NULL)
        return ex;
    if (opt_json)
        print_json(r);
    else
        printf("emulator %s: %s in %.1f ms (%" JSON_INTEGER_FORMAT " pages pending at "
               "start, %" JSON_INTEGER_FORMAT " pages force-unmapped, %" JSON_INTEGER_FORMAT
               " mappings left)\n", js(r, "emulator"), js(r, "outcome"),
               jr(r, "elapsed_ms"), ji(r, "held_pages_at_start"), ji(r, "forced_pages"),
               ji(r, "mappings_left"));
    json_decref(r);
    return EX_OK;
}

static void
policy_timeout(const char *what, json_t *t)
{
    json_t *steps = json_object_get(t, "steps"), *v;
    size_t i;

    printf("%-22s ", what);
    if (ji(t, "ms") == 0) {
        printf("none\n");
        return;
    }
    printf("%" JSON_INTEGER_FORMAT " ms, then", ji(t, "ms"));
    json_array_foreach(steps, i, v)
        printf("%s %s", i ? "," : "", json_string_value(v));
    if (json_array_size(steps) == 0)
        printf(" nothing");
    printf(" (one step per timeout)\n");
}

static int
cmd_policy(void)
{
    int ex;
    json_t *r = call("policy.get", NULL, &ex), *q, *t;

    if (r == NULL)
        return ex;
    if (opt_json) {
        print_json(r);
    } else {
        q = json_object_get(r, "quotas");
        t = json_object_get(r, "timeouts");
        printf("%-22s %s\n", "source:", js(r, "source"));
        printf("%-22s %s\n", "file:", js(r, "config"));
        printf("%-22s %s (%" JSON_INTEGER_FORMAT " rules)\n", "emulator rules:",
               json_is_true(json_object_get(r, "enforce_rules")) ? "enforced, deny by default"
                                                                 : "none, all allowed",
               ji(r, "rules"));
        printf("%-22s %" JSON_INTEGER_FORMAT "\n", "reserved ranges:", ji(r, "reserved_ranges"));
        printf("%-22s %" JSON_INTEGER_FORMAT "\n", "read-only ranges:", ji(r, "readonly_ranges"));
#define Q(k, label) do { json_int_t v_ = ji(q, k); \
        if (v_) printf("%-22s %" JSON_INTEGER_FORMAT "\n", label, v_); \
        else printf("%-22s unlimited\n", label); } while (0)
        Q("mappings_per_emulator", "mappings/emulator:");
        Q("mappings_per_domain", "mappings/domain:");
        Q("pending_per_emulator", "pending/emulator:");
        Q("pending_per_domain", "pending/domain:");
#undef Q
        policy_timeout("invalidating timeout:", json_object_get(t, "invalidating"));
        policy_timeout("flushing timeout:", json_object_get(t, "flushing"));
    }
    json_decref(r);
    return EX_OK;
}

static int
cmd_reload(int check)
{
    int ex;
    json_t *r = call("policy.reload", check ? json_pack("{s:b}", "dry_run", 1) : NULL,
                     &ex);
    json_t *runs, *v;
    size_t i;

    if (r == NULL)
        return ex;
    if (opt_json) {
        print_json(r);
    } else if (!check) {
        printf("policy reloaded: %s\n", js(r, "source"));
    } else {
        printf("policy %s (not in force): %lld of %lld existing mappings "
               "would be force-unmapped (%lld denied, %lld in reserved ranges)\n",
               js(r, "source"), (long long)ji(r, "would_force_unmap"),
               (long long)ji(r, "checked"),
               (long long)ji(json_object_get(r, "by_verdict"), "denied"),
               (long long)ji(json_object_get(r, "by_verdict"), "rmrr"));
        runs = json_object_get(r, "runs");
        if (json_array_size(runs))
            printf("%-16s %6s %18s %8s  %s\n", "EMULATOR", "DOMID", "GFN", "PAGES",
                   "VERDICT");
        json_array_foreach(runs, i, v)
            printf("%-16s %6lld %#18llx %8lld  %s\n", js(v, "emulator"),
                   (long long)ji(v, "domid"), (unsigned long long)ji(v, "gfn"),
                   (long long)ji(v, "nr"), js(v, "verdict"));
        if (json_is_true(json_object_get(r, "runs_truncated")))
            printf("(more runs than shown: the counts above are complete)\n");
    }
    json_decref(r);
    return EX_OK;
}

int
main(int argc, char **argv)
{
    static const struct option lo[] = {
        { "socket", required_argument, NULL, 's' },
        { "json", no_argument, NULL, 'j' },
        { "timeout", required_argument, NULL, 't' },
        { "wait", required_argument, NULL, 'w' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *cmd;
    int c, rc;

    sock_path = getenv("IOMAPD_SOCKET");
    if (sock_path == NULL || *sock_path == '\0')
        sock_path = RUNSTATEDIR "/iomapd/iomapd.sock";
    opterr = 1;
    /* Global options stop at the command ("+"): the rest is the command's. */
    while ((c = getopt_long(argc, argv, "+s:jt:w:hV", lo, NULL)) != -1) {
        switch (c) {
        case 's': sock_path = optarg; break;
        case 'j': opt_json = 1; break;
        case 't': {
            unsigned long long v;

            if (parse_num(optarg, 3600000, &v) < 0 || v == 0)
                return die_usage("bad --timeout '%s' (milliseconds)", optarg);
            timeout_ms = (int)v;
            break;
        }
        case 'w': {
            unsigned long long v;

            if (parse_num(optarg, 3600, &v) < 0)
                return die_usage("bad --wait '%s' (seconds, 0 to 3600)", optarg);
            wait_s = (int)v;
            break;
        }
        case 'h': usage(stdout); return EX_OK;
        case 'V': printf("xl-iomap %s (JSON-RPC API 1)\n", PACKAGE_VERSION); return EX_OK;
        default: return EX_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EX_USAGE;
    }
    cmd = argv[optind];
    argc -= optind;
    argv += optind;
    signal(SIGPIPE, SIG_IGN);
    /* Options after the command that are global (--json, --socket). */
    for (int i = 1; i < argc; i++) {
        int drop = 0;

        if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "-j")) {
            opt_json = 1;
            drop = 1;
        } else if ((!strcmp(argv[i], "--socket") || !strcmp(argv[i], "-s")) && i + 1 < argc) {
            sock_path = argv[i + 1];
            drop = 2;
        } else if (!strncmp(argv[i], "--socket=", 9)) {
            sock_path = argv[i] + 9;
            drop = 1;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            return command_help(cmd);
        } else if (!strcmp(argv[i], "--")) {
            break;
        }
        if (drop) {
            memmove(&argv[i], &argv[i + drop], (size_t)(argc - i - drop + 1) * sizeof(*argv));
            argc -= drop;
            i--;
        }
    }
    if (!strcmp(cmd, "status") && argc == 1)
        rc = cmd_status();
    else if (!strcmp(cmd, "domains") && argc == 1)
        rc = cmd_domains();
    else if (!strcmp(cmd, "emulators") && argc == 1)
        rc = cmd_emulators();
    else if (!strcmp(cmd, "mappings"))
        rc = cmd_mappings(argc, argv);
    else if (!strcmp(cmd, "pending"))
        rc = cmd_pending(argc, argv);
    else if (!strcmp(cmd, "stats") && argc == 1)
        rc = cmd_stats();
    else if (!strcmp(cmd, "metrics") && argc == 1)
        rc = cmd_metrics();
    else if (!strcmp(cmd, "top"))
        rc = cmd_top(argc, argv);
    else if (!strcmp(cmd, "drain"))
        rc = cmd_drain(argc, argv);
    else if (!strcmp(cmd, "reload") && argc == 1)
        rc = cmd_reload(0);
    else if (!strcmp(cmd, "reload") && argc == 2 && !strcmp(argv[1], "--check"))
        rc = cmd_reload(1);
    else if (!strcmp(cmd, "policy") && argc == 1)
        rc = cmd_policy();
    else if (!strcmp(cmd, "help"))
        rc = argc > 1 ? command_help(argv[1]) : (usage(stdout), EX_OK);
    else if (!strcmp(cmd, "status") || !strcmp(cmd, "domains") || !strcmp(cmd, "emulators") ||
             !strcmp(cmd, "stats") || !strcmp(cmd, "metrics") || !strcmp(cmd, "policy"))
        rc = die_usage("'%s' takes no arguments", cmd);
    else if (!strcmp(cmd, "reload"))
        rc = die_usage("%s", "reload takes no argument but --check");
    else
        rc = die_usage("unknown command '%s'", cmd);
    if (fd >= 0)
        close(fd);
    free(rbuf);
    return rc;
}
