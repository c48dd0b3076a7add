/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "shim/ring.h"

_Static_assert(sizeof(struct iomap_event) == 32, "event record is 32 bytes");
_Static_assert(sizeof(struct iomap_cmd) == 32, "command record is 32 bytes");
_Static_assert(sizeof(struct iomap_ring_hdr) <= IOMAP_RING_HDR_SIZE,
               "ring header fits its page");
_Static_assert(offsetof(struct iomap_ring_hdr, ev_prod) % 64 == 0, "ev_prod line");
_Static_assert(offsetof(struct iomap_ring_hdr, ev_cons) % 64 == 0, "ev_cons line");
_Static_assert(offsetof(struct iomap_ring_hdr, cmd_prod) % 64 == 0, "cmd_prod line");
_Static_assert(offsetof(struct iomap_ring_hdr, cmd_cons) % 64 == 0, "cmd_cons line");

/* Acquire/release on the indices are the rmb/wmb of the ABI comment. */
#define LOAD_ACQ(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define LOAD_RLX(p)     __atomic_load_n((p), __ATOMIC_RELAXED)

static int
is_pow2(uint32_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

int
iomap_ring_format(struct iomap_ring *r, void *mem, size_t len,
                  uint32_t ev_slots, uint32_t cmd_slots)
{
    struct iomap_ring_hdr *h = mem;

    if (!is_pow2(ev_slots) || !is_pow2(cmd_slots) ||
        len < IOMAP_REGION_SIZE((size_t)ev_slots, (size_t)cmd_slots))
        return -EINVAL;
    memset(mem, 0, IOMAP_RING_HDR_SIZE);
    h->magic = htole32(IOMAP_MAGIC);
    h->version = htole32(IOMAP_ABI_VERSION);
    h->ev_slots = htole32(ev_slots);
    h->cmd_slots = htole32(cmd_slots);
    h->ev_off = htole32(IOMAP_RING_HDR_SIZE);
    h->cmd_off = htole32(IOMAP_RING_HDR_SIZE +
                         ev_slots * (uint32_t)sizeof(struct iomap_event));
    r->hdr = h;
    r->ev = (struct iomap_event *)((char *)mem + IOMAP_RING_HDR_SIZE);
    r->cmd = (struct iomap_cmd *)((char *)mem + le32toh(h->cmd_off));
    r->ev_slots = ev_slots;
    r->cmd_slots = cmd_slots;
    r->len = len;
    return 0;
}

int
iomap_ring_attach(struct iomap_ring *r, void *mem, size_t len,
                  char *err, size_t errlen)
{
    const struct iomap_ring_hdr *h = mem;
    uint32_t magic, version, evs, cmds, evoff, cmdoff;
    uint64_t evend, cmdend;

    if (len < IOMAP_RING_HDR_SIZE) {
        snprintf(err, errlen, "region of %zu bytes is smaller than the header", len);
        return -EINVAL;
    }
    magic = le32toh(h->magic);
    version = le32toh(h->version);
    evs = le32toh(h->ev_slots);
    cmds = le32toh(h->cmd_slots);
    evoff = le32toh(h->ev_off);
    cmdoff = le32toh(h->cmd_off);
    if (magic != IOMAP_MAGIC) {
        snprintf(err, errlen, "bad magic 0x%08x (want 0x%08x)", magic, IOMAP_MAGIC);
        return -EINVAL;
    }
    /*
     * 1.1 is the oldest the daemon speaks: without DUMP_BEGIN a resync
     * cannot tell its own dump from a dead predecessor's leftovers.
     */
    if ((version >> 16) != IOMAP_ABI_VERSION_MAJOR ||
        (version & 0xffff) < IOMAP_RING_MIN_MINOR) {
        snprintf(err, errlen, "shim ABI %u.%u, daemon speaks %u.%u (%u.%u at least)",
                 version >> 16, version & 0xffff,
                 IOMAP_ABI_VERSION_MAJOR, IOMAP_ABI_VERSION_MINOR,
                 IOMAP_ABI_VERSION_MAJOR, IOMAP_RING_MIN_MINOR);
        return -EPROTO;
    }
    if (!is_pow2(evs) || !is_pow2(cmds)) {
        snprintf(err, errlen, "ring sizes %u/%u are not powers of two", evs, cmds);
        return -EINVAL;
    }
    evend = (uint64_t)evoff + (uint64_t)evs * sizeof(struct iomap_event);
    cmdend = (uint64_t)cmdoff + (uint64_t)cmds * sizeof(struct iomap_cmd);
    if (evoff < IOMAP_RING_HDR_SIZE || cmdoff < IOMAP_RING_HDR_SIZE ||
        evend > len || cmdend > len ||
        (evoff < cmdend && cmdoff < evend) ||
        evoff % 32 || cmdoff % 32) {
        snprintf(err, errlen, "ring offsets %u/%u do not fit a %zu-byte region",
                 evoff, cmdoff, len);
        return -EINVAL;
    }
    r->hdr = mem;
    r->ev = (struct iomap_event *)((char *)mem + evoff);
    r->cmd = (struct iomap_cmd *)((char *)mem + cmdoff);
    r->ev_slots = evs;
    r->cmd_slots = cmds;
    r->len = len;
    return 0;
}

/* ---- shim side ---------------------------------------------------------- */

uint32_t
iomap_ring_event_space(const struct iomap_ring *r)
{
    uint32_t prod = LOAD_RLX(&r->hdr->ev_prod);
    uint32_t cons = LOAD_ACQ(&r->hdr->ev_cons);

    return r->ev_slots - (prod - cons);
}

int
iomap_ring_post_event(struct iomap_ring *r, const struct iomap_event *ev)
{
    struct iomap_ring_hdr *h = r->hdr;
    uint32_t prod;

    /* After an overflow nothing is posted until the daemon acknowledges. */
    if ((LOAD_RLX(&h->flags) & IOMAP_RING_F_OVERFLOW) ||
        iomap_ring_event_space(r) == 0) {
        __atomic_store_n(&h->lost, LOAD_RLX(&h->lost) + 1, __ATOMIC_RELAXED);
        __atomic_or_fetch(&h->flags, IOMAP_RING_F_OVERFLOW, __ATOMIC_RELEASE);
        return -ENOSPC;
    }
    prod = LOAD_RLX(&h->ev_prod);
    r->ev[prod & (r->ev_slots - 1)] = *ev;
    iomap_event_to_le(&r->ev[prod & (r->ev_slots - 1)]);
    STORE_REL(&h->ev_prod, prod + 1);
    return 0;
}

unsigned
iomap_ring_take_cmds(struct iomap_ring *r, struct iomap_cmd *out, unsigned max)
{
    uint32_t cons = LOAD_RLX(&r->hdr->cmd_cons);
    uint32_t prod = LOAD_ACQ(&r->hdr->cmd_prod);
    unsigned n = 0;

    if (prod - cons > r->cmd_slots)   /* broken daemon: drop the batch */
        prod = cons;
    while (cons != prod && n < max) {
        out[n] = r->cmd[cons & (r->cmd_slots - 1)];
        iomap_cmd_from_le(&out[n]);
        n++;
        cons++;
    }
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    STORE_REL(&r->hdr->cmd_cons, cons);
    return n;
}

int
iomap_ring_overflowed(const struct iomap_ring *r)
{
    return (LOAD_ACQ(&r->hdr->flags) & IOMAP_RING_F_OVERFLOW) != 0;
}

void
iomap_ring_clear_overflow(struct iomap_ring *r)
{
    __atomic_store_n(&r->hdr->lost, 0, __ATOMIC_RELAXED);
    __atomic_and_fetch(&r->hdr->flags, ~IOMAP_RING_F_OVERFLOW, __ATOMIC_RELEASE);
}

/* ---- daemon side ---------------------------------------------------------- */

uint32_t
iomap_ring_events_pending(const struct iomap_ring *r)
{
    return LOAD_ACQ(&r->hdr->ev_prod) - LOAD_RLX(&r->hdr->ev_cons);
}

int
iomap_ring_take_events(struct iomap_ring *r, struct iomap_event *out,
                       unsigned max)
{
    uint32_t cons = LOAD_RLX(&r->hdr->ev_cons);
    uint32_t prod = LOAD_ACQ(&r->hdr->ev_prod);
    uint32_t mask = r->ev_slots - 1;
    unsigned n = 0;

    if (prod - cons > r->ev_slots)
        return -EPROTO;
    while (cons != prod && n < max) {
        out[n] = r->ev[cons & mask];
        iomap_event_from_le(&out[n]);
        n++;
        cons++;
    }
    /* Our reads of the slots complete before the shim may reuse them. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    STORE_REL(&r->hdr->ev_cons, cons);
    return (int)n;
}

uint32_t
iomap_ring_cmd_space(const struct iomap_ring *r)
{
    uint32_t prod = LOAD_RLX(&r->hdr->cmd_prod);
    uint32_t cons = LOAD_ACQ(&r->hdr->cmd_cons);

    if (prod - cons > r->cmd_slots)
        return 0;
    return r->cmd_slots - (prod - cons);
}

int
iomap_ring_post_cmd(struct iomap_ring *r, const struct iomap_cmd *c)
{
    uint32_t prod;

    if (iomap_ring_cmd_space(r) == 0)
        return -ENOSPC;
    prod = LOAD_RLX(&r->hdr->cmd_prod);
    r->cmd[prod & (r->cmd_slots - 1)] = *c;
    iomap_cmd_to_le(&r->cmd[prod & (r->cmd_slots - 1)]);
    STORE_REL(&r->hdr->cmd_prod, prod + 1);
    return 0;
}

/* ---- byte order ------------------------------------------------------------ */

#define SWAP_FIELDS(x, f16, f32, f64)                                   \
    do {                                                                \
        (x)->domid = f16((x)->domid);                                   \
        (x)->emu_domid = f16((x)->emu_domid);                           \
        (x)->ioservid = f16((x)->ioservid);                             \
        (x)->nr = f32((x)->nr);                                         \
        (x)->gfn = f64((x)->gfn);                                       \
    } while (0)

void
iomap_event_to_le(struct iomap_event *e)
{
    SWAP_FIELDS(e, htole16, htole32, htole64);
    e->seq = htole32(e->seq);
    e->arg = htole64(e->arg);
}

void
iomap_event_from_le(struct iomap_event *e)
{
    SWAP_FIELDS(e, le16toh, le32toh, le64toh);
    e->seq = le32toh(e->seq);
    e->arg = le64toh(e->arg);
}

void
iomap_cmd_to_le(struct iomap_cmd *c)
{
    SWAP_FIELDS(c, htole16, htole32, htole64);
    c->id = htole32(c->id);
    c->mfn = htole64(c->mfn);
}

void
iomap_cmd_from_le(struct iomap_cmd *c)
{
    SWAP_FIELDS(c, le16toh, le32toh, le64toh);
    c->id = le32toh(c->id);
    c->mfn = le64toh(c->mfn);
}

const char *
iomap_event_name(unsigned type)
{
    static const char *const names[] = {
        [IOMAP_EV_MAP] = "map", [IOMAP_EV_UNMAP] = "unmap",
        [IOMAP_EV_FLUSH] = "flush", [IOMAP_EV_FLUSH_DONE] = "flush-done",
        [IOMAP_EV_PAGE_REMOVED] = "page-removed",
        [IOMAP_EV_DOMAIN_DESTROYED] = "domain-destroyed",
        [IOMAP_EV_EMULATOR_GONE] = "emulator-gone",
        [IOMAP_EV_OVERFLOW] = "overflow", [IOMAP_EV_DUMP_MAP] = "dump-map",
        [IOMAP_EV_DUMP_HELD] = "dump-held", [IOMAP_EV_DUMP_END] = "dump-end",
        [IOMAP_EV_CMD_RESULT] = "cmd-result", [IOMAP_EV_DUMP_BEGIN] = "dump-begin",
        [IOMAP_EV_DUMP_EMU] = "dump-emu", [IOMAP_EV_FLUSH_FAILED] = "flush-failed",
    };

    return type <= IOMAP_EV_MAX && names[type] ? names[type] : "unknown";
}

const char *
iomap_cmd_name(unsigned type)
{
    static const char *const names[] = {
        [IOMAP_CMD_RELEASE] = "release", [IOMAP_CMD_FORCE_UNMAP] = "force-unmap",
        [IOMAP_CMD_FLUSH] = "flush", [IOMAP_CMD_DUMP] = "dump",
        [IOMAP_CMD_ACK] = "ack",
    };

    return type <= IOMAP_CMD_MAX && names[type] ? names[type] : "unknown";
}
