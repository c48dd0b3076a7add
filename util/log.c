/* SPDX-License-Identifier: MIT */
/*
 * Leveled logging to stderr.  Under systemd, stderr goes to the journal;
 * each line carries a <N> syslog priority prefix when JOURNAL_STREAM is set
 * so that journald records the right priority.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/log.h"

static const char *log_prog = "iomapd";
static int log_level = LOG_LVL_INFO;
static int log_journal;

void
log_init(const char *progname, int level)
{
    log_prog = progname;
    log_level = level;
    log_journal = getenv("JOURNAL_STREAM") != NULL;
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

int
log_parse_level(const char *s)
{
    static const char *const names[] = { "error", "warning", "info", "debug" };

    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    return -1;
}

static void __attribute__((format(printf, 2, 0)))
vlog(int level, const char *fmt, va_list ap, const char *suffix)
{
    static const int prio[] = { 3, 4, 6, 7 };
    static const char *const tag[] = { "error", "warning", "info", "debug" };

    if (level > log_level)
        return;
    if (log_journal)
        fprintf(stderr, "<%d>", prio[level]);
    else
        fprintf(stderr, "%s: %s: ", log_prog, tag[level]);
    vfprintf(stderr, fmt, ap);
    if (suffix)
        fprintf(stderr, ": %s", suffix);
    fputc('\n', stderr);
}

void
log_msg(int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(level, fmt, ap, NULL);
    va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
    va_list ap;
    const char *e = strerror(errno);

    va_start(ap, fmt);
    vlog(LOG_LVL_WARN, fmt, ap, e);
    va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(LOG_LVL_WARN, fmt, ap, NULL);
    va_end(ap);
}

void
log_info(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(LOG_LVL_INFO, fmt, ap, NULL);
    va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(LOG_LVL_DEBUG, fmt, ap, NULL);
    va_end(ap);
}

void
fatal(const char *fmt, ...)
{
    va_list ap;
    const char *e = strerror(errno);

    va_start(ap, fmt);
    vlog(LOG_LVL_ERR, fmt, ap, e);
    va_end(ap);
    exit(1);
}

void
fatalx(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(LOG_LVL_ERR, fmt, ap, NULL);
    va_end(ap);
    exit(1);
}
