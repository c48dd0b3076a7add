/* SPDX-License-Identifier: MIT */
/*
 * libevent's own messages (a failed accept in a listener, a backend that
 * cannot be used, ...) through util/log.c instead of straight to stderr:
 * prefixed "libevent: ", at the matching level, and rate limited, since
 * libevent may say the same thing once per loop pass.
 *
 * At most EVLOG_BURST messages are written per EVLOG_WINDOW_MS; the rest
 * are counted, and the first message after the window (or evlog_flush)
 * writes one line saying how many were suppressed.
 */
#ifndef IOMAP_EVLOG_H
#define IOMAP_EVLOG_H

#include <stdint.h>

#define EVLOG_BURST     10
#define EVLOG_WINDOW_MS 1000

/* event_set_log_callback(evlog_message).  Call once, before any loop. */
void evlog_install(void);
/* The callback itself (severity: EVENT_LOG_DEBUG .. EVENT_LOG_ERR). */
void evlog_message(int severity, const char *msg);
/* Say now how many messages were suppressed, if any. */
void evlog_flush(void);
/* Tests: the clock of the rate limit (NULL: the monotonic clock). */
void evlog_set_clock(uint64_t (*now_ns)(void));

#endif
