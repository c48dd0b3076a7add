/* SPDX-License-Identifier: MIT */
/*
 * libiomap-emu: what an emulator (QEMU, a vGPU mediator) links to receive
 * iomapd's invalidate requests.
 *
 *   e = iomap_emu_open("/run/iomapd/emulators.sock", my_domid, my_ioservid,
 *                      IOMAP_EMU_CAP_INVALIDATE_PAGE, &err);
 *   add iomap_emu_fd(e) to your main loop; when it is readable:
 *   while (iomap_emu_next(e, &r) > 0) {
 *       if (r.global)  drop every mapping (mapcache and IOMMU);
 *       else           drop mappings of r.domid gfns r.gfn .. r.gfn+r.nr-1;
 *       issue the iommu_op unmaps and one flush;
 *       iomap_emu_done(e, &r);
 *   }
 *
 * Answer only after the unmap hypercalls returned: iomapd checks with the
 * hypervisor, and what is still mapped when you answer is force-unmapped.
 * A request may be answered later (asynchronously): keep r and call
 * iomap_emu_done() when the work is finished.
 */
#ifndef IOMAP_EMU_H
#define IOMAP_EMU_H

#include <stdint.h>

#include "ioreq/ioreq.h"
#include "ioreq/channel.h"

#define IOMAP_EMU_PROTO_MAGIC   0x554d4549U   /* "IEMU" */
#define IOMAP_EMU_PROTO_VERSION 1

/* Registration messages on the daemon's emulator socket (SOCK_SEQPACKET). */
struct iomap_emu_hello {
    uint32_t magic;
    uint16_t version;
    uint16_t emu_domid;
    uint16_t ioservid;
    uint16_t pad;
    uint32_t caps;
};

struct iomap_emu_welcome {
    uint32_t magic;
    int32_t  status;        /* 0, or -errno; on 0, SCM_RIGHTS carries the
                               channel memfd, the request eventfd and the
                               answer eventfd, in that order */
};

struct iomap_emu_req {
    int      slot;
    int      global;        /* IOMAP_IOREQ_TYPE_INVALIDATE: drop everything */
    uint16_t domid;
    uint64_t gfn;
    uint32_t nr;
};

struct iomap_emu {
    struct ioreq_chan chan;
    int               sock;     /* registration connection, or -1 */
};

/* Connect and register; on failure returns NULL and sets *err (-errno). */
struct iomap_emu *iomap_emu_open(const char *path, uint16_t emu_domid,
                                 uint16_t ioservid, uint32_t caps, int *err);
/* In-process use (the simulator's emulators): share the daemon's page. */
struct iomap_emu *iomap_emu_open_local(struct iomap_ioreq_page *page,
                                       int req_fd, int resp_fd);
int  iomap_emu_fd(const struct iomap_emu *e);
/* Take the next request: 1 if r was filled, 0 if none is pending. */
int  iomap_emu_next(struct iomap_emu *e, struct iomap_emu_req *r);
int  iomap_emu_done(struct iomap_emu *e, const struct iomap_emu_req *r);
void iomap_emu_close(struct iomap_emu *e);

#endif
