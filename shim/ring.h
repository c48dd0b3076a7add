/* SPDX-License-Identifier: MIT */
/*
 * Single-producer / single-consumer rings of shim/public/iomap.h.
 *
 * The shim side (iomap-sim, or the Xen shim in C of its own) formats the
 * region, posts events and takes commands; the daemon side attaches,
 * validates the header, takes events and posts commands.  Records are
 * always copied out of shared memory before they are looked at, so a
 * peer rewriting a slot cannot change a record while it is being decoded.
 */
#ifndef IOMAP_RING_H
#define IOMAP_RING_H

#include <stddef.h>
#include <stdint.h>

#include "iomap.h"

struct iomap_ring {
    struct iomap_ring_hdr *hdr;
    struct iomap_event    *ev;
    struct iomap_cmd      *cmd;
    uint32_t               ev_slots;
    uint32_t               cmd_slots;
    size_t                 len;
};

/* Shim side: format a zeroed region of len bytes. */
int  iomap_ring_format(struct iomap_ring *r, void *mem, size_t len,
                       uint32_t ev_slots, uint32_t cmd_slots);
/*
 * The oldest ABI minor the daemon attaches to: 1.1 brought DUMP_BEGIN,
 * without which a resync cannot tell its own dump from leftovers.
 */
#define IOMAP_RING_MIN_MINOR 1

/*
 * Daemon side: check a region made by a shim; fills err on failure and
 * returns -EINVAL (bad header) or -EPROTO (incompatible ABI major, or a
 * minor below IOMAP_RING_MIN_MINOR).
 */
int  iomap_ring_attach(struct iomap_ring *r, void *mem, size_t len,
                       char *err, size_t errlen);

/* Shim side. */
int      iomap_ring_post_event(struct iomap_ring *r, const struct iomap_event *ev);
uint32_t iomap_ring_event_space(const struct iomap_ring *r);
unsigned iomap_ring_take_cmds(struct iomap_ring *r, struct iomap_cmd *out,
                              unsigned max);
int      iomap_ring_overflowed(const struct iomap_ring *r);
void     iomap_ring_clear_overflow(struct iomap_ring *r);

/*
 * Daemon side.  take_events copies up to max records and consumes them;
 * it returns -EPROTO if the producer index is impossible (more than a
 * ring's worth ahead), which means the peer is broken.
 */
int      iomap_ring_take_events(struct iomap_ring *r, struct iomap_event *out,
                                unsigned max);
int      iomap_ring_post_cmd(struct iomap_ring *r, const struct iomap_cmd *c);
uint32_t iomap_ring_cmd_space(const struct iomap_ring *r);
uint32_t iomap_ring_events_pending(const struct iomap_ring *r);

/* Byte order: records are little-endian on the wire. */
void iomap_event_to_le(struct iomap_event *e);
void iomap_event_from_le(struct iomap_event *e);
void iomap_cmd_to_le(struct iomap_cmd *c);
void iomap_cmd_from_le(struct iomap_cmd *c);

const char *iomap_event_name(unsigned type);
const char *iomap_cmd_name(unsigned type);

#endif
