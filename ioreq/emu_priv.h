/* SPDX-License-Identifier: MIT */
/*
 * The struct behind libiomap-emu's opaque handle.  Only ioreq/client.c and
 * its unit test (tests/test_ioreq.c) include this.
 */
#ifndef IOMAP_EMU_PRIV_H
#define IOMAP_EMU_PRIV_H

#include "ioreq/iomap-emu.h"
#include "ioreq/channel.h"

struct iomap_emu {
    struct ioreq_chan chan;
    int               sock;     /* registration connection, or -1 (local) */
};

#endif
