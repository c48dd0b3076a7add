/* SPDX-License-Identifier: MIT */
/*
 * Commands to the shim: queued in order, coalesced where the shim would
 * do the same work twice, and posted as the command ring has room.  The
 * bottom of the core: it calls nothing of the core, only the ring.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "daemon/core/core_priv.h"
#include "util/log.h"


/* The command queued last (still ours to coalesce into), or NULL. */
struct iomap_cmd *
cmd_last(struct core *d)
{
    return d->out_len ? &d->out[(d->out_head + d->out_len - 1) & (d->out_cap - 1)] : NULL;
}

void
cmd_post(struct core *d, const struct iomap_cmd *c)
{
    struct iomap_cmd *last = cmd_last(d), *slot;

    /* Coalesce releases of frames contiguous in gfn and mfn. */
    if (last && c->type == IOMAP_CMD_RELEASE && last->type == IOMAP_CMD_RELEASE &&
        last->domid == c->domid && last->gfn + last->nr == c->gfn &&
        last->mfn + last->nr == c->mfn && last->nr + c->nr <= IOMAP_MAX_NR) {
        last->nr += c->nr;
        return;
    }
    if (d->out_len == d->out_cap) {
        /* A ring of a power of two; it keeps its size once grown. */
        uint32_t ncap = d->out_cap ? d->out_cap * 2 : 256;
        struct iomap_cmd *n = realloc(d->out, ncap * sizeof(*n));

        if (n == NULL)
            fatalx("%s: out of memory queueing a command", __func__);
        /* The wrapped part [0, head) moves after the old end. */
        memcpy(n + d->out_cap, n, d->out_head * sizeof(*n));
        d->out = n;
        d->out_cap = ncap;
    }
    slot = &d->out[(d->out_head + d->out_len) & (d->out_cap - 1)];
    *slot = *c;
    slot->id = ++d->cmd_id;
    d->out_len++;
    if (c->type == IOMAP_CMD_RELEASE)
        d->st.release_cmds++;
}

void
cmd_flush_out(struct core *d)
{
    uint32_t i = 0;

    if (d->flush_wanted) {
        struct iomap_cmd c = { .type = IOMAP_CMD_FLUSH, .nr = 1 };

        d->flush_wanted = 0;
        d->st.flush_cmds++;
        cmd_post(d, &c);
    }
    while (d->out_len &&
           iomap_ring_post_cmd(d->ring, &d->out[d->out_head]) == 0) {
        d->out_head = (d->out_head + 1) & (d->out_cap - 1);
        d->out_len--;
        i++;
    }
    if (d->out_len == 0)
        d->out_head = 0;
    if (i)
        d->env.kick(d->env.arg);
}

