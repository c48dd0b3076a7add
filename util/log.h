/* SPDX-License-Identifier: MIT */
#ifndef IOMAP_LOG_H
#define IOMAP_LOG_H

#include <stdarg.h>
#include <stdint.h>

enum log_level { LOG_LVL_ERR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_init(const char *progname, int level);
void log_set_level(int level);
int  log_get_level(void);
int  log_parse_level(const char *s);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* log_warn appends strerror(errno); log_warnx does not. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * A start-up failure: logged at error priority (the journal gets <3>),
 * and on a terminal one plain line, "PROG: text"; then exit(1).
 */
void log_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * What a message is about, for the journal's fields: DOMID=, EMULATOR=
 * (E:T:N), GFN= (hex, the first page) and GFN_COUNT=.  Unset parts: domid
 * < 0, emu NULL, count 0.
 */
struct log_about {
    int         domid;
    const char *emu;
    uint64_t    gfn, count;
};
void log_about(int level, const struct log_about *a, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * A message about the pages [gfn, gfn + nr) of a domain (and emulator).
 * Consecutive calls with the same fmt, level, domain and emulator whose
 * pages follow on are merged into one line,
 *     "PREFIX d1 gfn 0x1000-0x17ff (2048 pages) TEXT"
 * where TEXT is fmt as formatted by the run's first call.  Each fmt writes
 * at most LOG_PAGES_BURST lines per LOG_PAGES_WINDOW_MS; what it has to
 * drop beyond that is counted, and one line says how many messages and
 * pages were suppressed once the window is over.  A run is written when
 * the next call does not extend it, at any other log message, at
 * log_flush() (iomapd calls it after each pass of its loop) and at exit.
 * prefix and fmt must be string constants.
 */
#define LOG_PAGES_BURST     10
#define LOG_PAGES_WINDOW_MS 1000
void log_pages(int level, const char *prefix, int domid, const char *emu,
               uint64_t gfn, uint64_t nr, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
void log_flush(void);

/* Tests: the clock of the rate limit (NULL: the monotonic clock). */
void log_set_clock(uint64_t (*now_ns)(void));

#endif
