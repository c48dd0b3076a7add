/* SPDX-License-Identifier: MIT */
/*
 * libevent's messages through the logger, rate limited (util/evlog.h).
 */
#include "config.h"

#include <stdint.h>

#include <event2/event.h>

#include "util/clock.h"
#include "util/evlog.h"
#include "util/log.h"

static uint64_t (*evlog_clock)(void) = clock_now_ns;
static uint64_t window_start;
static unsigned in_window;
static uint64_t suppressed;
static int      started;

void
evlog_set_clock(uint64_t (*now_ns)(void))
{
    evlog_clock = now_ns ? now_ns : clock_now_ns;
    started = 0;
    in_window = 0;
}

void
evlog_flush(void)
{
    if (suppressed == 0)
        return;
    log_warnx("libevent: %llu more messages suppressed (at most %d per %d ms)",
              (unsigned long long)suppressed, EVLOG_BURST, EVLOG_WINDOW_MS);
    suppressed = 0;
}

void
evlog_message(int severity, const char *msg)
{
    uint64_t now = evlog_clock();
    int level;

    switch (severity) {
    case EVENT_LOG_DEBUG:
        level = LOG_LVL_DEBUG;
        break;
    case EVENT_LOG_MSG:
        level = LOG_LVL_INFO;
        break;
    case EVENT_LOG_WARN:
        level = LOG_LVL_WARN;
        break;
    default:
        level = LOG_LVL_ERR;
        break;
    }
    if (level > log_get_level())
        return;
    if (!started || now - window_start >= (uint64_t)EVLOG_WINDOW_MS * 1000000u) {
        started = 1;
        window_start = now;
        in_window = 0;
        evlog_flush();
    }
    if (in_window >= EVLOG_BURST) {
        suppressed++;
        return;
    }
    in_window++;
    log_msg(level, "libevent: %s", msg ? msg : "(no message)");
}

void
evlog_install(void)
{
    event_set_log_callback(evlog_message);
}
