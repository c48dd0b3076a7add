/* SPDX-License-Identifier: MIT */
/*
 * ioreq.h: the per-emulator IOREQ channel of iomapd.
 *
 * Records have the layout of Xen's ioreq_t (xen/include/public/hvm/ioreq.h)
 * and follow its state machine:
 *
 *   NONE --(daemon fills, sets)--> READY --(emulator takes)--> INPROCESS
 *        --(emulator answers)--> IORESP_READY --(daemon reaps)--> NONE
 *
 * A channel is one shared page: a small header and IOMAP_IOREQ_SLOTS
 * slots, so that many invalidates can be in flight at once.  The daemon
 * owns NONE and IORESP_READY -> NONE; the emulator owns READY ->
 * INPROCESS -> IORESP_READY.  Each transition is a store-release of the
 * state after the payload, read with load-acquire by the other side.
 *
 * New request type: IOMAP_IOREQ_TYPE_INVALIDATE_PAGE asks the emulator to
 * drop its mappings of count pages of domain 'data' starting at guest
 * physical address 'addr' (page aligned; size = 4096).  Xen uses the types
 * 0 (PIO), 1 (COPY), 2 (PCI_CONFIG), 7 (TIMEOFFSET) and 8 (INVALIDATE);
 * 16 is clear of them and of the gaps Xen has used historically (3-6).
 * An emulator that does not declare IOMAP_EMU_CAP_INVALIDATE_PAGE gets
 * IOMAP_IOREQ_TYPE_INVALIDATE (= Xen's IOREQ_TYPE_INVALIDATE, "drop the
 * whole mapcache") instead.
 */
#ifndef IOMAP_IOREQ_H
#define IOMAP_IOREQ_H

#include <stdint.h>

#define IOMAP_STATE_IOREQ_NONE        0
#define IOMAP_STATE_IOREQ_READY       1
#define IOMAP_STATE_IOREQ_INPROCESS   2
#define IOMAP_STATE_IORESP_READY      3

#define IOMAP_IOREQ_TYPE_PIO          0
#define IOMAP_IOREQ_TYPE_COPY         1
#define IOMAP_IOREQ_TYPE_PCI_CONFIG   2
#define IOMAP_IOREQ_TYPE_TIMEOFFSET   7
#define IOMAP_IOREQ_TYPE_INVALIDATE   8
#define IOMAP_IOREQ_TYPE_INVALIDATE_PAGE 16

#define IOMAP_IOREQ_READ  1
#define IOMAP_IOREQ_WRITE 0

/* Same layout as Xen's struct ioreq (32 bytes). */
struct iomap_ioreq {
    uint64_t addr;          /* INVALIDATE_PAGE: first gpa, page aligned    */
    uint64_t data;          /* INVALIDATE_PAGE: target domid               */
    uint32_t count;         /* INVALIDATE_PAGE: number of pages            */
    uint32_t size;          /* INVALIDATE_PAGE: 4096                       */
    uint32_t vp_eport;      /* unused by iomapd (0)                        */
    uint16_t _pad0;
    uint8_t  state:4;
    uint8_t  data_is_ptr:1;
    uint8_t  dir:1;
    uint8_t  df:1;
    uint8_t  _pad1:1;
    uint8_t  type;
};

/*
 * The capability bits are also in the public <iomap/emu.h>; ioreq/client.c
 * includes both, so a value that drifts is a redefinition error.
 */
#define IOMAP_EMU_CAP_INVALIDATE_PAGE (1u << 0)
#define IOMAP_EMU_CAP_MASK            0x1u

#define IOMAP_IOREQ_MAGIC   0x51524f49U  /* "IORQ" */
#define IOMAP_IOREQ_VERSION 1
#define IOMAP_IOREQ_SLOTS   63

struct iomap_ioreq_page {
    uint32_t magic;
    uint32_t version;
    uint32_t nslots;
    uint32_t caps;          /* what the emulator declared (informative)    */
    uint16_t emu_domid;
    uint16_t ioservid;
    uint8_t  pad[12];
    struct iomap_ioreq slot[IOMAP_IOREQ_SLOTS];
};

#endif
