/* SPDX-License-Identifier: MIT */
/*
 * iomap.h
 *
 * Public ABI between the iomap shim (in the hypervisor, or the simulated
 * hypervisor iomap-sim) and the iomapd daemon in dom0.
 *
 * The shim and the daemon share one memory region holding two
 * single-producer / single-consumer rings:
 *
 *   event ring    shim -> daemon   (struct iomap_event)
 *   command ring  daemon -> shim   (struct iomap_cmd)
 *
 * Every field is little-endian.  Records are fixed size (32 bytes, two
 * records per cache line) and contain no implicit padding.  Ring indices
 * are free-running 32-bit counters: the slot of index i is
 * i & (nr_slots - 1); "prod - cons" is the fill level, which wraps
 * correctly.  nr_slots is a power of two.
 *
 * Memory ordering (the same discipline as Xen's public/io/ring.h):
 *   producer: write record(s); smp_wmb(); write prod
 *   consumer: read prod; smp_rmb(); read record(s); smp_mb(); write cons
 * The producer never overwrites a slot at or after "cons".
 *
 * Versioning: IOMAP_ABI_VERSION_MAJOR changes on any incompatible change;
 * the daemon refuses a region whose major differs.  MINOR grows when event
 * or command types are added; a consumer ignores types it does not know
 * (and counts them) rather than failing.
 *
 * Copyright (c) 2026 the iomapd developers.
 */

#ifndef __XEN_PUBLIC_IOMAP_H__
#define __XEN_PUBLIC_IOMAP_H__

/*
 * Like Xen's other public headers, this one includes nothing: the includer
 * provides uint8_t..uint64_t (<stdint.h> in user space).
 */

#define IOMAP_ABI_VERSION_MAJOR 1
#define IOMAP_ABI_VERSION_MINOR 2
#define IOMAP_ABI_VERSION ((IOMAP_ABI_VERSION_MAJOR << 16) | \
                           IOMAP_ABI_VERSION_MINOR)

#define IOMAP_MAGIC 0x50414d4fU /* "OMAP" little-endian: 'O','M','A','P' */

/*
 * An emulator (device model) is named as Xen names its ioreq server: the
 * emulator's domain, the target domain the server serves, and the server's
 * id, which Xen allocates per target domain (so every guest's dom0 QEMU
 * may have the same id).  Records carry the three as emu_domid, domid and
 * ioservid.
 *
 * (1.2) A CPU (foreign) mapping is made by a domain, not by an ioreq
 * server: Xen does not know which of the emulator domain's ioreq servers
 * (or which other program in it) made it.  Its records carry
 * IOMAP_IOSERVID_ANY: "every ioreq server of emulator domain emu_domid
 * for target domid".  A consumer invalidates each of them; such a
 * mapping cannot be force-unmapped (FORCE_UNMAP leaves CPU mappings
 * alone: only the mapping domain can remove its page-table entries).
 */
typedef uint16_t iomap_domid_t;
typedef uint16_t iomap_ioservid_t;

#define IOMAP_IOSERVID_ANY 0xffffU

/*
 * Event types (shim -> daemon).
 *
 * IOMAP_EV_MAP        emulator (emu_domid, domid, ioservid) mapped nr pages
 *                     of domain domid, gfn..gfn+nr-1 -> mfn..mfn+nr-1, at
 *                     bfn (IOMMU) or a CPU mapping (IOMAP_F_CPU).  The shim
 *                     took one reference per page (1.2, IOMAP_F_CPU: the
 *                     page-table entry's own reference; ioservid is
 *                     IOMAP_IOSERVID_ANY).
 * IOMAP_EV_UNMAP      the reverse of one IOMAP_EV_MAP range (or part).  seq
 *                     is the flush sequence number that covers this unmap:
 *                     the device may still hold a translation until a flush
 *                     with sequence >= seq has completed.  seq == 0 for CPU
 *                     mappings (flushed synchronously).  IOMAP_F_FORCED is
 *                     set when the unmap was done by IOMAP_CMD_FORCE_UNMAP.
 * IOMAP_EV_FLUSH      a flush was queued (by the emulator's flush op or by
 *                     IOMAP_CMD_FLUSH) with sequence number seq.
 * IOMAP_EV_FLUSH_DONE the flush with sequence seq completed.  Completions are
 *                     normally in order, but a consumer must not rely on it:
 *                     a completed flush covers every unmap whose seq <= its
 *                     own seq.
 * IOMAP_EV_PAGE_REMOVED  nr pages gfn.. (mfn..) were removed from domid's
 *                     p2m (decrease_reservation or another p2m removal)
 *                     while emulator mappings made through the map op still
 *                     referenced them.  The shim holds one reference per
 *                     page until IOMAP_CMD_RELEASE names it.
 *                     (1.2) With IOMAP_F_CPU: only CPU (foreign) mappings
 *                     referenced them.  The shim holds nothing (the
 *                     mappings' own page references keep the pages until
 *                     their last IOMAP_EV_UNMAP): no RELEASE is wanted,
 *                     and one would be refused with -ENOENT.  seq is 0.
 * IOMAP_EV_DOMAIN_DESTROYED  domid is gone: the shim dropped every mapping
 *                     of and by it and every held reference of its pages.
 * IOMAP_EV_EMULATOR_GONE  the emulator (emu_domid, domid, ioservid) died or
 *                     its ioreq server was destroyed.  Its mappings are
 *                     still in place (and are still reported by a dump)
 *                     until force-unmapped.
 * IOMAP_EV_OVERFLOW   the shim could not post nr events (ring full); arg is
 *                     the running total of lost events.  Also signalled by
 *                     IOMAP_RING_F_OVERFLOW in the ring header.  The daemon
 *                     must resynchronise with IOMAP_CMD_DUMP.
 * IOMAP_EV_DUMP_MAP   (dump) a live mapping: as IOMAP_EV_MAP, nr pages.
 * IOMAP_EV_DUMP_HELD  (dump) a held removed page: as IOMAP_EV_PAGE_REMOVED
 *                     (1.2: IOMAP_F_CPU, a removed page that only CPU
 *                     mappings keep, not held).  A DUMP_MAP with
 *                     IOMAP_F_CPU is one CPU mapping (nr = 1; a page mapped
 *                     n times is dumped n times).
 * IOMAP_EV_DUMP_END   end of a dump chunk: seq = last queued flush
 *                     sequence, arg = last completed flush sequence,
 *                     (domid, gfn) = cursor of the next chunk, nr = 1 if
 *                     more chunks remain, 0 when the dump is complete.
 * IOMAP_EV_DUMP_BEGIN (1.1) start of a dump chunk: arg = the id of the
 *                     IOMAP_CMD_DUMP it answers.  Every DUMP_* record up to
 *                     the next DUMP_END belongs to that chunk; a consumer
 *                     ignores DUMP_* records outside a chunk of its own
 *                     (left on the ring by a predecessor that died).
 * IOMAP_EV_DUMP_EMU   (1.1, dump, first chunk only) an ioreq server the
 *                     shim holds mappings of, or that exists:
 *                     (emu_domid, domid, ioservid); arg = 1 while the
 *                     server exists, 0 once it is gone (its mappings wait
 *                     for IOMAP_CMD_FORCE_UNMAP).  A server the consumer
 *                     knows and the first chunk does not name is gone.
 * IOMAP_EV_CMD_RESULT a command was refused: see below.
 * IOMAP_EV_FLUSH_FAILED (1.1) the flush with sequence seq failed (an
 *                     Invalidation Time-out of a device-TLB, a queue
 *                     error) for the IOMMU context of emulator domain
 *                     emu_domid (IOMAP_DOMID_ANY: every context); arg =
 *                     the errno.  The device may still translate through
 *                     what that flush was to cover, so the shim never drops
 *                     the references of the unmaps still waiting for it:
 *                     those frames are leaked (nr of them), never returned
 *                     to Xen.  A held page among them is no longer
 *                     reported by a dump, and a RELEASE naming it is
 *                     answered -EIO (the others of the command are
 *                     released).  seq is not completed by the failure; a
 *                     later IOMAP_EV_FLUSH_DONE covers it for the rest.
 */
#define IOMAP_EV_MAP                1
#define IOMAP_EV_UNMAP              2
#define IOMAP_EV_FLUSH              3
#define IOMAP_EV_FLUSH_DONE         4
#define IOMAP_EV_PAGE_REMOVED       5
#define IOMAP_EV_DOMAIN_DESTROYED   6
#define IOMAP_EV_EMULATOR_GONE      7
#define IOMAP_EV_OVERFLOW           8
#define IOMAP_EV_DUMP_MAP           9
#define IOMAP_EV_DUMP_HELD         10
#define IOMAP_EV_DUMP_END          11
#define IOMAP_EV_CMD_RESULT        12
#define IOMAP_EV_DUMP_BEGIN        13
#define IOMAP_EV_DUMP_EMU          14
#define IOMAP_EV_FLUSH_FAILED      15
#define IOMAP_EV_MAX               15

/* Event and command flags. */
#define IOMAP_F_READONLY  (1u << 0) /* mapping is read-only                */
#define IOMAP_F_CPU       (1u << 1) /* CPU (foreign) mapping, not IOMMU     */
#define IOMAP_F_FORCED    (1u << 2) /* unmap done by IOMAP_CMD_FORCE_UNMAP  */
#define IOMAP_F_ALL       (1u << 3) /* force-unmap: every gfn of the domain */
#define IOMAP_F_VALID_MASK 0x0fu

/* The largest nr in one record (a 1 GiB superpage of 4 KiB pages). */
#define IOMAP_MAX_NR      (1u << 18)
/* gfns, bfns and mfns are below 2^52 (x86-64 physical address width). */
#define IOMAP_MAX_FRAME   0x000fffffffffffffULL

struct iomap_event {
    uint8_t  type;          /* IOMAP_EV_*                                  */
    uint8_t  flags;         /* IOMAP_F_*                                   */
    uint16_t domid;         /* target (guest) domain                       */
    uint16_t emu_domid;     /* emulator domain                             */
    uint16_t ioservid;      /* emulator's ioreq server id                  */
    uint32_t nr;            /* number of contiguous frames, >= 1           */
    uint32_t seq;           /* flush sequence (UNMAP, FLUSH, FLUSH_DONE)   */
    uint64_t gfn;           /* first guest frame                           */
    uint64_t arg;           /* mfn (MAP, UNMAP, PAGE_REMOVED, DUMP_*),
                               lost-event total (OVERFLOW),
                               cmd id (CMD_RESULT)                          */
};

/*
 * IOMAP_EV_CMD_RESULT packs the command's status as a negative errno value
 * in 'seq' (as int32_t), its type in 'flags' and its id in 'arg'.
 */

/*
 * Command types (daemon -> shim).
 *
 * IOMAP_CMD_RELEASE      drop the held reference of nr removed pages of
 *                        domid, gfn../mfn...  Refused (-ENOENT) for a page
 *                        the shim does not hold, (-EBUSY) while an emulator
 *                        mapping of it exists or its flush is not done;
 *                        -EIO: some of them were leaked by a failed flush
 *                        (IOMAP_EV_FLUSH_FAILED), the rest are released.
 * IOMAP_CMD_FORCE_UNMAP  unmap every mapping of emulator
 *                        (emu_domid, domid, ioservid) of domid's
 *                        gfn..gfn+nr-1 (IOMAP_F_ALL: of every gfn),
 *                        posting IOMAP_EV_UNMAP (IOMAP_F_FORCED) for each,
 *                        then queue a flush (IOMAP_EV_FLUSH).  It touches
 *                        no other ioreq server's mappings, and no CPU
 *                        mapping (a FORCE_UNMAP naming IOMAP_IOSERVID_ANY
 *                        does nothing and succeeds).
 * IOMAP_CMD_FLUSH        queue an IOTLB / device-TLB flush; the shim posts
 *                        IOMAP_EV_FLUSH and later IOMAP_EV_FLUSH_DONE.
 * IOMAP_CMD_DUMP         post IOMAP_EV_DUMP_BEGIN (arg = the command's mfn
 *                        field, the dump id the daemon chose), then (first
 *                        chunk: cursor 0, 0) an IOMAP_EV_DUMP_EMU per ioreq
 *                        server, then the live mappings and held pages whose
 *                        (domid, gfn) is at or after the cursor (cmd domid,
 *                        gfn), in (domid, gfn) order, as IOMAP_EV_DUMP_MAP /
 *                        IOMAP_EV_DUMP_HELD records, as many as fit in the
 *                        event ring (keeping room for one more record), then
 *                        IOMAP_EV_DUMP_END.  A chunk is posted whole or not
 *                        at all (-ENOSPC: the daemon asks again), and holds
 *                        every record of each (domid, gfn) it covers: the
 *                        cursor of the next chunk lies after all of them.
 *                        Within a chunk the records may come in any order
 *                        (the daemon applies the mappings at DUMP_END).
 *                        A dump larger than the ring is taken in chunks:
 *                        DUMP_END's (domid, gfn) is the next cursor and
 *                        its nr is 1 while more remain.
 *                        Events posted between chunks about (domid, gfn) at
 *                        or after the cursor are already reflected in the
 *                        later chunks, so the daemon ignores them.
 * IOMAP_CMD_ACK          acknowledge an overflow: clears
 *                        IOMAP_RING_F_OVERFLOW; sent right before DUMP.
 */
#define IOMAP_CMD_RELEASE       1
#define IOMAP_CMD_FORCE_UNMAP   2
#define IOMAP_CMD_FLUSH         3
#define IOMAP_CMD_DUMP          4
#define IOMAP_CMD_ACK           5
#define IOMAP_CMD_MAX           5

/* Reserved: in ABI 1.0 a FORCE_UNMAP with IOMAP_F_ALL of every domain. */
#define IOMAP_DOMID_ANY 0x7ff4U

struct iomap_cmd {
    uint8_t  type;          /* IOMAP_CMD_*                                 */
    uint8_t  flags;         /* IOMAP_F_*                                   */
    uint16_t domid;
    uint16_t emu_domid;
    uint16_t ioservid;
    uint32_t nr;
    uint32_t id;            /* echoed in IOMAP_EV_CMD_RESULT               */
    uint64_t gfn;
    uint64_t mfn;
};

/*
 * The shared region.  It starts with this header on its own page; the
 * event ring starts at byte offset ev_off and holds ev_slots records, the
 * command ring at cmd_off with cmd_slots records.  Indices live on their
 * own cache lines so that producer and consumer do not false-share.
 */
#define IOMAP_RING_F_OVERFLOW (1u << 0)  /* events were lost; dump needed  */

struct iomap_ring_hdr {
    uint32_t magic;         /* IOMAP_MAGIC                                 */
    uint32_t version;       /* IOMAP_ABI_VERSION                           */
    uint32_t ev_slots;      /* power of two                                */
    uint32_t cmd_slots;     /* power of two                                */
    uint32_t ev_off;        /* byte offset of the event ring               */
    uint32_t cmd_off;       /* byte offset of the command ring             */
    uint32_t flags;         /* IOMAP_RING_F_*, written by the shim         */
    uint32_t lost;          /* events lost since the last ACK              */
    uint8_t  pad0[32];
    uint32_t ev_prod;       /* written by the shim                         */
    uint8_t  pad1[60];
    uint32_t ev_cons;       /* written by the daemon                       */
    uint8_t  pad2[60];
    uint32_t cmd_prod;      /* written by the daemon                       */
    uint8_t  pad3[60];
    uint32_t cmd_cons;      /* written by the shim                         */
    uint8_t  pad4[60];
};

/* Size of the region for the given slot counts (header page + rings). */
#define IOMAP_RING_HDR_SIZE 4096u
#define IOMAP_REGION_SIZE(ev, cmd) \
    (IOMAP_RING_HDR_SIZE + (ev) * sizeof(struct iomap_event) + \
     (cmd) * sizeof(struct iomap_cmd))

/*
 * Resource id for XENMEM_acquire_resource, type XENMEM_resource_iomap
 * (defined in Xen's public/memory.h; repeated here for users of an older
 * memory.h).
 */
#ifndef XENMEM_resource_iomap
#define XENMEM_resource_iomap 0x4d41
#endif
#define IOMAP_RESOURCE_RING   0

#endif /* __XEN_PUBLIC_IOMAP_H__ */
