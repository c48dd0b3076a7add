/* SPDX-License-Identifier: MIT */
/*
 * The core's public calls that change the books from outside the ring:
 * creation, emulators attaching and detaching, drains.  The top of the
 * core: it may call every layer below it.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/core/core_priv.h"
#include "util/log.h"

struct core *
core_new(const struct core_env *env)
{
    struct core *d;
    int rc;

    if (env == NULL || env->ring == NULL || env->clock == NULL || env->kick == NULL) {
        errno = EINVAL;
        return NULL;
    }
    d = malloc(sizeof(*d));
    if (d == NULL)
        return NULL;
    rc = core_init(d, env);
    if (rc < 0) {
        free(d);
        errno = -rc;
        return NULL;
    }
    return d;
}

void
core_free(struct core *d)
{
    if (d == NULL)
        return;
    core_fini(d);
    free(d);
}

int
core_cmds_waiting(const struct core *d)
{
    return d->out_len != 0;
}

int
core_emu_attach(struct core *d, const struct core_emu_id *id, uint32_t caps,
                int with_fds, struct core_emu_chan *out)
{
    struct emu *e;
    int rc;

    /* IOMAP_IOSERVID_ANY names an emulator domain's CPU mappings. */
    if ((caps & ~IOMAP_EMU_CAP_MASK) || id->ioservid == IOMAP_IOSERVID_ANY)
        return -EINVAL;
    e = emu_get(d, id, 1);
    if (e == NULL)
        return -ENOSPC;
    rc = emu_register(d, e, caps, with_fds);
    if (rc < 0)
        return rc;
    out->shm_fd = e->chan.shm_fd;
    out->req_fd = e->chan.req_fd;
    out->resp_fd = e->chan.resp_fd;
    out->page = e->chan.page;
    /* Pages it holds that wait for it get their invalidates now. */
    pages_emu_requeue(d, e);
    return 0;
}

void
core_emu_detach(struct core *d, const struct core_emu_id *id, const char *why)
{
    struct emu *e = emu_get(d, id, 0);

    if (e == NULL || !e->has_chan)
        return;
    log_info("emulator " EMU_FMT " %s", EMU_ARGS(e), why);
    emu_unregister(d, e);
    /* Invalidates it will never answer: the shim takes those back. */
    pages_emu_left(d, e);
    CORE_OBSERVE(d, emu_gone, id, why);
}

int
core_drain(struct core *d, const struct core_emu_id *id, uint64_t timeout_ns,
           int unmap_all, core_drain_done_fn *done, void *arg)
{
    struct emu *e = emu_get(d, id, 0);
    struct drain *dr;

    if (e == NULL)
        return -ENOENT;
    LIST_FOREACH(dr, &d->drains, link)
        if (core_emu_id_eq(&dr->id, id))
            return -EBUSY;
    dr = calloc(1, sizeof(*dr));
    if (dr == NULL)
        return -ENOMEM;
    dr->id = *id;
    dr->unmap_all = unmap_all;
    dr->t0 = core_clock(d);
    dr->deadline = dr->t0 + timeout_ns;
    dr->held0 = d->resync == RS_NONE ? e->held_pages : UINT64_MAX;
    dr->done = done;
    dr->arg = arg;
    LIST_INSERT_HEAD(&d->drains, dr, link);
    log_info("drain of emulator " EMU_FMT ": %llu pages pending, deadline %llu ms",
             EMU_ARGS(e), (unsigned long long)e->held_pages,
             (unsigned long long)(timeout_ns / 1000000));
    /*
     * The drain steps at the owner's next core_process() or core_tick()
     * (the daemon runs one at once): it may end then, through done.
     */
    return 0;
}

void
core_drain_cancel(struct core *d, const struct core_emu_id *id)
{
    struct drain *dr;

    LIST_FOREACH(dr, &d->drains, link)
        if (core_emu_id_eq(&dr->id, id)) {
            LIST_REMOVE(dr, link);
            free(dr);
            return;
        }
}
