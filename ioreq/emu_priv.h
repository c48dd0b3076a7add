/* SPDX-License-Identifier: MIT */
/*
 * The struct behind libiomap-emu's opaque handle.  Only ioreq/client.c and
 * its unit test (tests/test_ioreq.c) include this.
 */
#ifndef IOMAP_EMU_PRIV_H
#define IOMAP_EMU_PRIV_H

#include "ioreq/iomap-emu.h"
#include "ioreq/channel.h"

/*
 * A handle made by iomap_emu_open() is "remote": it keeps what it needs to
 * register again (iomap_emu_reconnect), and the fd its caller polls is an
 * epoll set over the request eventfd and the registration socket, which
 * stays the same fd across reconnects.  A handle from iomap_emu_open_local()
 * (or calloc, in the tests) has remote == 0 and behaves as before.
 */
struct iomap_emu {
    struct ioreq_chan chan;
    int               sock;     /* registration connection, or -1 (local,
                                   or remote and the daemon gone) */
    int               remote;   /* made by iomap_emu_open()              */
    int               pollfd;   /* remote: the epoll set; else unused     */
    unsigned          gen;      /* remote: registration count (req slots) */
    char              path[108];
    uint16_t          emu_domid, target, ioservid;
    uint32_t          caps;
};

#endif
