/* SPDX-License-Identifier: MIT */
/*
 * util/log.c: per-page messages coalesced into ranges, the rate limit per
 * kind with its count of what was suppressed, and the plain one-line
 * start-up failure on a terminal.  stderr is captured in a file; the
 * rate limit's clock is the test's.  libevent's own messages (util/evlog.c)
 * go through the logger, rate limited the same way.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "util/evlog.h"
#include "util/log.h"
#include "tests/cunit_main.h"

static uint64_t now_ns;
static char out_path[64];
static int saved_stderr = -1;

static uint64_t
test_clock(void)
{
    return now_ns;
}

/* Send stderr to a fresh file. */
static void
capture(void)
{
    int fd;

    fflush(stderr);
    snprintf(out_path, sizeof(out_path), "/tmp/iomap-log.XXXXXX");
    fd = mkstemp(out_path);
    CU_ASSERT_FATAL(fd >= 0);
    if (saved_stderr < 0)
        saved_stderr = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

/* Stop capturing; the text (malloc'd). */
static char *
captured(void)
{
    FILE *f;
    char *buf = calloc(1, 1 << 20);
    size_t n;

    log_flush();
    fflush(stderr);
    dup2(saved_stderr, STDERR_FILENO);
    f = fopen(out_path, "r");
    n = f ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    unlink(out_path);
    return buf;
}

static int
count_lines(const char *s, const char *needle)
{
    int n = 0;

    for (const char *l = s; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        char line[1024];

        snprintf(line, sizeof(line), "%.*s", (int)len, l);
        if (strstr(line, needle))
            n++;
    }
    return n;
}

/* 2048 pages, one call each, in order: one line with the range. */
static void
test_coalesce(void)
{
    char *s;

    now_ns += 10ull * 1000000000u;
    capture();
    for (uint64_t g = 0x1000; g < 0x1800; g++)
        log_pages(LOG_LVL_WARN, "policy:", 1, NULL, g, 1, "waits %u ms", 1000u);
    s = captured();
    CU_ASSERT_EQUAL(count_lines(s, "policy:"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "policy: d1 gfn 0x1000-0x17ff (2048 pages) waits 1000 ms"));
    free(s);
}

/* A gap, another domain, another emulator or another message: a new line. */
static void
test_breaks(void)
{
    char *s;

    now_ns += 10ull * 1000000000u;
    capture();
    log_pages(LOG_LVL_WARN, "p:", 1, NULL, 0x10, 4, "a");
    log_pages(LOG_LVL_WARN, "p:", 1, NULL, 0x15, 1, "a");          /* gap */
    log_pages(LOG_LVL_WARN, "p:", 2, NULL, 0x16, 1, "a");          /* domain */
    log_pages(LOG_LVL_WARN, "p:", 2, "0:2:0", 0x17, 1, "a");       /* emulator */
    log_warnx("something else");                                 /* order kept */
    log_pages(LOG_LVL_WARN, "p:", 2, "0:2:0", 0x18, 1, "a");
    s = captured();
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "p: d1 gfn 0x10-0x13 (4 pages) a\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "p: d1 gfn 0x15 a\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "p: d2 gfn 0x16 a\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "p: emulator 0:2:0 d2 gfn 0x17 a\nsomething else") ||
                           strstr(s, "p: emulator 0:2:0 d2 gfn 0x17 a\n"));
    CU_ASSERT(strstr(s, "gfn 0x17 a") < strstr(s, "something else"));
    CU_ASSERT(strstr(s, "something else") < strstr(s, "gfn 0x18 a"));
    free(s);
}

/* 25 separate pages in one window: 10 lines, then one line for the 15. */
static void
test_rate_limit(void)
{
    char *s;

    now_ns += 10ull * 1000000000u;
    capture();
    for (int i = 0; i < 25; i++)
        log_pages(LOG_LVL_WARN, "policy:", 3, NULL, 0x100 + 2 * (uint64_t)i, 1, "stuck");
    log_flush();
    /* Still in the window: nothing more yet. */
    now_ns += 500000000u;
    log_flush();
    now_ns += 600000000u;       /* the window is over */
    log_flush();
    s = captured();
    CU_ASSERT_EQUAL(count_lines(s, "policy: d3 gfn"), LOG_PAGES_BURST);
    CU_ASSERT_EQUAL(count_lines(s, "suppressed"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "policy: 15 more messages like \"stuck\" about 15 pages "
                                     "suppressed in the last 1.1 s"));
    free(s);
    /* A new window: messages again. */
    capture();
    log_pages(LOG_LVL_WARN, "policy:", 3, NULL, 0x900, 1, "stuck");
    s = captured();
    CU_ASSERT_EQUAL(count_lines(s, "policy: d3 gfn 0x900 stuck"), 1);
    free(s);
}

/* Below the level: nothing, not even a count. */
static void
test_level(void)
{
    char *s;

    now_ns += 10ull * 1000000000u;
    capture();
    log_pages(LOG_LVL_DEBUG, "dbg:", 1, NULL, 0x1, 1, "x");
    s = captured();
    CU_ASSERT_STRING_EQUAL(s, "");
    free(s);
}

/* log_die: one plain line on a terminal ("PROG: text"), exit 1. */
static void
test_die(void)
{
    pid_t pid;
    int st;
    char *s;

    capture();
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        unsetenv("JOURNAL_STREAM");
        log_init("iomapd", LOG_LVL_INFO);
        log_die("control socket: cannot bind %s: %s", "/x", "No such file or directory");
    }
    waitpid(pid, &st, 0);
    s = captured();
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    CU_ASSERT_STRING_EQUAL(s, "iomapd: control socket: cannot bind /x: No such file or directory\n");
    free(s);
}

/*
 * libevent's messages: through the logger ("test_log: ... libevent: ...",
 * not libevent's "[warn] ..." on stderr), and at most EVLOG_BURST a window
 * however many libevent writes (it may write one per loop pass); the rest
 * counted on the first line after the window.
 */
static void
test_libevent(void)
{
    struct event_config *cfg;
    struct event_base *b;
    char *s;

    now_ns += 10ull * 1000000000u;
    capture();
    evlog_install();
    /* No backend allowed: libevent warns that it has none. */
    cfg = event_config_new();
    CU_ASSERT_FATAL(cfg != NULL);
    event_config_avoid_method(cfg, "epoll");
    event_config_avoid_method(cfg, "poll");
    event_config_avoid_method(cfg, "select");
    b = event_base_new_with_config(cfg);
    event_config_free(cfg);
    CU_ASSERT_PTR_NULL(b);
    if (b)
        event_base_free(b);
    for (int i = 0; i < 1000; i++)
        evlog_message(EVENT_LOG_WARN, "Error from accept() call: Too many open files");
    now_ns += (uint64_t)EVLOG_WINDOW_MS * 1000000u;
    evlog_message(EVENT_LOG_WARN, "Error from accept() call: Too many open files");
    evlog_message(EVENT_LOG_DEBUG, "below the level");
    s = captured();
    CU_ASSERT_PTR_NULL(strstr(s, "[warn]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "libevent: "));
    CU_ASSERT_EQUAL(count_lines(s, "no event mechanism"), 1);
    /* The first window: the backend warning and EVLOG_BURST - 1 of the 1000. */
    CU_ASSERT_EQUAL(count_lines(s, "Error from accept() call"), EVLOG_BURST - 1 + 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "libevent: 991 more messages suppressed"));
    CU_ASSERT_PTR_NULL(strstr(s, "below the level"));
    free(s);
}

int
main(void)
{
    static const struct test_case tests[] = {
        { "2048 pages in order: one line with the range", test_coalesce },
        { "a gap, a domain, an emulator, another message: new lines, in order", test_breaks },
        { "rate limit: 10 lines a window, then the count of the rest", test_rate_limit },
        { "below the log level: nothing", test_level },
        { "log_die: one plain line, exit 1", test_die },
        { "libevent's messages: through the logger, rate limited", test_libevent },
        { NULL, NULL },
    };

    unsetenv("JOURNAL_STREAM");
    log_init("test_log", LOG_LVL_INFO);
    log_set_clock(test_clock);
    evlog_set_clock(test_clock);
    return run_tests("util/log", tests);
}
