/* SPDX-License-Identifier: MIT */
/* The monotonic clock, in nanoseconds, that every part reads. */
#ifndef IOMAP_CLOCK_H
#define IOMAP_CLOCK_H

#include <stdint.h>

uint64_t clock_now_ns(void);

#endif
