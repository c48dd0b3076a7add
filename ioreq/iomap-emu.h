/* SPDX-License-Identifier: MIT */
/*
 * The in-tree view of libiomap-emu; not installed.  Outside programs
 * include <iomap/emu.h> (ioreq/iomap/emu.h) and link libiomap-emu.so.
 * On top of that public API this header has what only the tree uses:
 *
 *  - the wire protocol of iomapd's emulator socket (daemon/emusock.c is
 *    the other end of ioreq/client.c);
 *  - the in-process entry point of the simulated host (simhost/world.c),
 *    which shares the daemon's channel page instead of a memfd.  It is
 *    not exported by the shared library: in-process users link the
 *    static archive libiomap-emu.a.
 */
#ifndef IOMAP_EMU_H
#define IOMAP_EMU_H

#include <stdint.h>

#include "ioreq/iomap/emu.h"
#include "ioreq/ioreq.h"

#define IOMAP_EMU_PROTO_MAGIC   0x554d4549U   /* "IEMU" */
/* 2: the hello names the ioreq server's target domain (Xen's ids are per guest). */
#define IOMAP_EMU_PROTO_VERSION 2

/* Registration messages on the daemon's emulator socket (SOCK_SEQPACKET). */
/*
 * Exactly this many bytes, in one message: a hello that is longer or
 * shorter, or names a reserved domain id, is refused (-EPROTO, -EINVAL).
 */
struct iomap_emu_hello {
    uint32_t magic;
    uint16_t version;
    uint16_t emu_domid;     /* the emulator's domain                    */
    uint16_t ioservid;      /* its ioreq server, as Xen numbered it      */
    uint16_t target;        /* the guest that server serves              */
    uint32_t caps;
};

struct iomap_emu_welcome {
    uint32_t magic;
    int32_t  status;        /* 0, or -errno; on 0, SCM_RIGHTS carries the
                               channel memfd, the request eventfd and the
                               answer eventfd, in that order */
};

/*
 * In-process use (the simulator's emulators): share the daemon's page;
 * req_fd and resp_fd may be -1 (the caller polls).  The channel stays the
 * daemon's: iomap_emu_close() frees only the handle.  NULL on ENOMEM.
 */
struct iomap_emu *iomap_emu_open_local(struct iomap_ioreq_page *page,
                                       int req_fd, int resp_fd);

#endif
