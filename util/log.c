/* SPDX-License-Identifier: MIT */
/*
 * Leveled logging to stderr.  Under systemd (JOURNAL_STREAM names our
 * stderr) messages go to the journal through sd_journal_sendv, with their
 * priority and, for messages about a guest, an emulator or pages, the
 * fields DOMID=, EMULATOR=, GFN= and GFN_COUNT=; without libsystemd, or
 * when the journal socket refuses, each line carries a <N> syslog
 * priority prefix so that journald still records the right priority.
 * Messages about single pages are coalesced into ranges and rate-limited
 * (log_pages).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-journal.h>
#endif

#include "util/clock.h"
#include "util/log.h"

static const char *log_prog = "iomapd";
static int log_level = LOG_LVL_INFO;
static int log_journal;         /* stderr is the journal's stream */
static uint64_t (*log_clock)(void) = clock_now_ns;

static void log_pages_emit(void);

/* JOURNAL_STREAM=dev:ino names the stream systemd connected stderr to. */
static int
stderr_is_journal(void)
{
    const char *e = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    if (e == NULL || sscanf(e, "%llu:%llu", &dev, &ino) != 2 ||
        fstat(STDERR_FILENO, &st) < 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static void
log_atexit(void)
{
    log_flush();
}

void
log_init(const char *progname, int level)
{
    static int registered;

    log_prog = progname;
    log_level = level;
    log_journal = stderr_is_journal();
    if (!registered && atexit(log_atexit) == 0)
        registered = 1;
}

void
log_set_level(int level)
{
    log_level = level;
}

int
log_get_level(void)
{
    return log_level;
}

void
log_set_clock(uint64_t (*now_ns)(void))
{
    log_clock = now_ns ? now_ns : clock_now_ns;
}

int
log_parse_level(const char *s)
{
    static const char *const names[] = { "error", "warning", "info", "debug" };

    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    return -1;
}

static const int log_prio[] = { 3, 4, 6, 7 };
static const char *const log_tag[] = { "error", "warning", "info", "debug" };

#ifdef HAVE_SYSTEMD
/* 0 sent to the journal, -1 not (the caller writes to stderr). */
static int
journal_send(int level, const struct log_about *a, const char *msg)
{
    char f[7][96];
    struct iovec iov[8];
    int n = 0;
    size_t mlen = strlen(msg);
    char *m = malloc(mlen + 9);

    if (m == NULL)
        return -1;
    memcpy(m, "MESSAGE=", 8);
    memcpy(m + 8, msg, mlen + 1);
    iov[n++] = (struct iovec){ m, mlen + 8 };
#define FIELD(...) do { int l_ = snprintf(f[n - 1], sizeof(f[0]), __VA_ARGS__); \
        iov[n] = (struct iovec){ f[n - 1], (size_t)l_ < sizeof(f[0]) ? (size_t)l_ : sizeof(f[0]) - 1 }; \
        n++; } while (0)
    FIELD("PRIORITY=%d", log_prio[level]);
    FIELD("SYSLOG_IDENTIFIER=%s", log_prog);
    if (a && a->domid >= 0)
        FIELD("DOMID=%d", a->domid);
    if (a && a->emu)
        FIELD("EMULATOR=%s", a->emu);
    if (a && a->count) {
        FIELD("GFN=%#" PRIx64, a->gfn);
        FIELD("GFN_COUNT=%" PRIu64, a->count);
    }
#undef FIELD
    n = sd_journal_sendv(iov, n) < 0 ? -1 : 0;
    free(m);
    return n;
}
#endif

static void
emit(int level, const struct log_about *a, const char *msg)
{
#ifdef HAVE_SYSTEMD
    if (log_journal && journal_send(level, a, msg) == 0)
        return;
#else
    (void)a;
#endif
    if (log_journal)
        fprintf(stderr, "<%d>%s\n", log_prio[level], msg);
    else
        fprintf(stderr, "%s: %s: %s\n", log_prog, log_tag[level], msg);
}

static void __attribute__((format(printf, 3, 0)))
vlog(int level, const struct log_about *a, const char *fmt, va_list ap, const char *suffix)
{
    char buf[1024];
    int n;

    if (level > log_level)
        return;
    log_pages_emit();           /* keep the order of messages */
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    if (suffix && n >= 0 && (size_t)n < sizeof(buf))
        snprintf(buf + n, sizeof(buf) - (size_t)n, ": %s", suffix);
    emit(level, a, buf);
}

void
log_msg(int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(level, NULL, fmt, ap, NULL);
    va_end(ap);
}

void
log_about(int level, const struct log_about *a, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(level, a, fmt, ap, NULL);
    va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
    va_list ap;
    const char *e = strerror(errno);

    va_start(ap, fmt);
    vlog(LOG_LVL_WARN, NULL, fmt, ap, e);
    va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(LOG_LVL_WARN, NULL, fmt, ap, NULL);
    va_end(ap);
}

void
log_info(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(LOG_LVL_INFO, NULL, fmt, ap, NULL);
    va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(LOG_LVL_DEBUG, NULL, fmt, ap, NULL);
    va_end(ap);
}

void
fatal(const char *fmt, ...)
{
    va_list ap;
    const char *e = strerror(errno);

    va_start(ap, fmt);
    vlog(LOG_LVL_ERR, NULL, fmt, ap, e);
    va_end(ap);
    exit(1);
}

void
fatalx(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(LOG_LVL_ERR, NULL, fmt, ap, NULL);
    va_end(ap);
    exit(1);
}

void
log_die(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    log_pages_emit();
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (log_journal)
        emit(LOG_LVL_ERR, NULL, buf);
    else
        fprintf(stderr, "%s: %s\n", log_prog, buf);
    exit(1);
}

/* ---- per-page messages: ranges, and a rate limit per kind ----------------- */

static struct {
    int         active, level, domid;
    const char *prefix, *fmt;
    char        emu[32];
    uint64_t    gfn, nr;
    char        text[256];
} run;

#define LOG_KINDS 16
static struct kind {
    const char *fmt;
    const char *prefix;
    int         level;
    uint64_t    window_start;
    uint64_t    lines, dropped, dropped_pages;
} kinds[LOG_KINDS];

static struct kind *
kind_of(const char *fmt, const char *prefix, int level)
{
    struct kind *k, *oldest = &kinds[0];

    for (k = kinds; k < kinds + LOG_KINDS; k++) {
        if (k->fmt == fmt)
            return k;
        if (k->fmt == NULL) {
            oldest = k;
            break;
        }
        if (k->window_start < oldest->window_start && k->dropped == 0)
            oldest = k;
    }
    memset(oldest, 0, sizeof(*oldest));
    oldest->fmt = fmt;
    oldest->prefix = prefix;
    oldest->level = level;
    oldest->window_start = log_clock();
    return oldest;
}

/* The window of k is over: say what it dropped, start a new one. */
static void
kind_roll(struct kind *k, uint64_t now)
{
    uint64_t window = (uint64_t)LOG_PAGES_WINDOW_MS * 1000000u;

    if (now - k->window_start < window)
        return;
    if (k->dropped && k->level <= log_level) {
        char buf[512];

        snprintf(buf, sizeof(buf), "%s %" PRIu64 " more messages like \"%s\" about %"
                 PRIu64 " pages suppressed in the last %.1f s", k->prefix, k->dropped,
                 k->fmt, k->dropped_pages, (double)(now - k->window_start) / 1e9);
        emit(k->level, NULL, buf);
    }
    k->window_start = now;
    k->lines = k->dropped = k->dropped_pages = 0;
}

static void
log_pages_emit(void)
{
    struct kind *k;
    char buf[512];
    uint64_t now;

    if (!run.active)
        return;
    run.active = 0;
    now = log_clock();
    k = kind_of(run.fmt, run.prefix, run.level);
    kind_roll(k, now);
    if (k->lines >= LOG_PAGES_BURST) {
        k->dropped++;
        k->dropped_pages += run.nr;
        return;
    }
    k->lines++;
    if (run.nr == 1)
        snprintf(buf, sizeof(buf), "%s %s%s%sd%d gfn %#" PRIx64 " %s", run.prefix,
                 run.emu[0] ? "emulator " : "", run.emu, run.emu[0] ? " " : "",
                 run.domid, run.gfn, run.text);
    else
        snprintf(buf, sizeof(buf), "%s %s%s%sd%d gfn %#" PRIx64 "-%#" PRIx64 " (%" PRIu64
                 " pages) %s", run.prefix, run.emu[0] ? "emulator " : "", run.emu,
                 run.emu[0] ? " " : "", run.domid, run.gfn, run.gfn + run.nr - 1,
                 run.nr, run.text);
    emit(run.level, &(struct log_about){ .domid = run.domid,
                                         .emu = run.emu[0] ? run.emu : NULL,
                                         .gfn = run.gfn, .count = run.nr }, buf);
}

void
log_pages(int level, const char *prefix, int domid, const char *emu,
          uint64_t gfn, uint64_t nr, const char *fmt, ...)
{
    va_list ap;

    if (level > log_level || nr == 0)
        return;
    if (run.active && run.fmt == fmt && run.level == level && run.domid == domid &&
        !strcmp(run.emu, emu ? emu : "") && gfn == run.gfn + run.nr) {
        run.nr += nr;
        return;
    }
    log_pages_emit();
    run.active = 1;
    run.level = level;
    run.domid = domid;
    run.prefix = prefix;
    run.fmt = fmt;
    snprintf(run.emu, sizeof(run.emu), "%s", emu ? emu : "");
    run.gfn = gfn;
    run.nr = nr;
    va_start(ap, fmt);
    vsnprintf(run.text, sizeof(run.text), fmt, ap);
    va_end(ap);
}

void
log_flush(void)
{
    uint64_t now = log_clock();

    log_pages_emit();
    for (struct kind *k = kinds; k < kinds + LOG_KINDS; k++)
        if (k->fmt && k->dropped)
            kind_roll(k, now);
}
