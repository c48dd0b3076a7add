/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ioreq/channel.h"

_Static_assert(sizeof(struct iomap_ioreq) == 32, "ioreq_t is 32 bytes");
_Static_assert(offsetof(struct iomap_ioreq, type) == 31, "type is the last byte");
_Static_assert(sizeof(struct iomap_ioreq_page) <= 4096, "one page");

/*
 * state is a 4-bit field of byte 30 (with data_is_ptr, dir, df); the byte
 * is what we load and store atomically.
 */
#define STATE_BYTE(s) ((uint8_t *)(s) + 30)

static uint8_t
slot_state(const struct iomap_ioreq *s)
{
    return __atomic_load_n(STATE_BYTE(s), __ATOMIC_ACQUIRE) & 0x0f;
}

static void
slot_set_state(struct iomap_ioreq *s, uint8_t state)
{
    uint8_t b = __atomic_load_n(STATE_BYTE(s), __ATOMIC_RELAXED);

    __atomic_store_n(STATE_BYTE(s), (uint8_t)((b & 0xf0) | state),
                     __ATOMIC_RELEASE);
}

static void
kick(int fd)
{
    uint64_t one = 1;

    if (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN) {
        /* An eventfd write only fails on counter overflow: nothing lost. */
    }
}

int
ioreq_chan_drain_fd(int fd)
{
    uint64_t v;

    if (fd >= 0 && read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        return -errno;
    return 0;
}

int
ioreq_chan_create(struct ioreq_chan *c, uint16_t emu_domid, uint16_t ioservid,
                  uint32_t caps, int with_fds)
{
    struct iomap_ioreq_page *pg;
    int err;

    memset(c, 0, sizeof(*c));
    c->req_fd = c->resp_fd = c->shm_fd = -1;
    if (with_fds) {
        c->shm_fd = memfd_create("iomapd-ioreq", MFD_CLOEXEC);
        if (c->shm_fd < 0)
            return -errno;
        if (ftruncate(c->shm_fd, 4096) < 0)
            goto fail;
        pg = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, c->shm_fd, 0);
        if (pg == MAP_FAILED)
            goto fail;
        c->req_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        c->resp_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (c->req_fd < 0 || c->resp_fd < 0) {
            munmap(pg, 4096);
            goto fail;
        }
    } else {
        pg = aligned_alloc(4096, 4096);
        if (pg == NULL)
            return -ENOMEM;
        memset(pg, 0, 4096);
    }
    c->page = pg;
    c->owns_page = 1;
    pg->magic = IOMAP_IOREQ_MAGIC;
    pg->version = IOMAP_IOREQ_VERSION;
    pg->nslots = IOMAP_IOREQ_SLOTS;
    pg->caps = caps;
    pg->emu_domid = emu_domid;
    pg->ioservid = ioservid;
    return 0;

fail:
    err = -errno;
    if (c->req_fd >= 0)
        close(c->req_fd);
    if (c->resp_fd >= 0)
        close(c->resp_fd);
    close(c->shm_fd);
    c->req_fd = c->resp_fd = c->shm_fd = -1;
    return err;
}

void
ioreq_chan_destroy(struct ioreq_chan *c)
{
    if (c->page && c->owns_page) {
        if (c->shm_fd >= 0)
            munmap(c->page, 4096);
        else
            free(c->page);
    } else if (c->page && c->shm_fd >= 0) {
        munmap(c->page, 4096);
    }
    if (c->req_fd >= 0)
        close(c->req_fd);
    if (c->resp_fd >= 0)
        close(c->resp_fd);
    if (c->shm_fd >= 0)
        close(c->shm_fd);
    memset(c, 0, sizeof(*c));
    c->req_fd = c->resp_fd = c->shm_fd = -1;
}

int
ioreq_chan_send(struct ioreq_chan *c, uint8_t type, uint16_t domid,
                uint64_t gfn, uint32_t count)
{
    /*
     * A slot is free when the daemon's own record says so, whatever the
     * emulator wrote into the page: the daemon owns NONE -> READY, and
     * overwrites a slot it never sent.
     */
    for (int i = 0; i < IOMAP_IOREQ_SLOTS; i++) {
        struct iomap_ioreq *s = &c->page->slot[i];

        if (c->sent[i].used)
            continue;
        c->sent[i] = (struct ioreq_sent){ .used = 1, .type = type, .domid = domid,
                                          .count = count, .gfn = gfn };
        s->addr = gfn << 12;
        s->data = domid;
        s->count = count;
        s->size = 4096;
        s->vp_eport = 0;
        s->_pad0 = 0;
        s->type = type;
        s->dir = IOMAP_IOREQ_WRITE;
        s->data_is_ptr = 0;
        s->df = 0;
        slot_set_state(s, IOMAP_STATE_IOREQ_READY);
        c->busy++;
        return i;
    }
    return -EBUSY;
}

void
ioreq_chan_kick(struct ioreq_chan *c)
{
    kick(c->req_fd);
}

unsigned
ioreq_chan_reap(struct ioreq_chan *c, ioreq_reap_fn *fn, void *arg)
{
    unsigned n = 0;

    if (c->busy == 0)
        return 0;
    for (int i = 0; i < IOMAP_IOREQ_SLOTS; i++) {
        struct iomap_ioreq *s = &c->page->slot[i];
        struct ioreq_sent *q = &c->sent[i];
        struct iomap_ioreq copy;

        if (slot_state(s) != IOMAP_STATE_IORESP_READY)
            continue;
        if (!q->used) {
            /* An answer to nothing: counted, cleared, never acted on. */
            c->forged++;
            slot_set_state(s, IOMAP_STATE_IOREQ_NONE);
            continue;
        }
        /* What we sent, from our record: the page may say anything. */
        memset(&copy, 0, sizeof(copy));
        copy.addr = q->gfn << 12;
        copy.data = q->domid;
        copy.count = q->count;
        copy.size = 4096;
        copy.type = q->type;
        copy.dir = IOMAP_IOREQ_WRITE;
        copy.state = IOMAP_STATE_IORESP_READY;
        q->used = 0;
        slot_set_state(s, IOMAP_STATE_IOREQ_NONE);
        c->busy--;
        n++;
        if (fn)
            fn(arg, &copy);
    }
    return n;
}

unsigned
ioreq_chan_free_slots(const struct ioreq_chan *c)
{
    return IOMAP_IOREQ_SLOTS - c->busy;
}

/* O_NONBLOCK on fd (-1: nothing to do); 0, or -1 with errno set. */
static int
set_nonblock(int fd)
{
    int fl;

    if (fd < 0)
        return 0;
    fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -1;
    return (fl & O_NONBLOCK) || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0 ? 0 : -1;
}

int
ioreq_chan_attach(struct ioreq_chan *c, int shm_fd, int req_fd, int resp_fd)
{
    struct iomap_ioreq_page *pg;

    struct stat st;

    memset(c, 0, sizeof(*c));
    /*
     * The page and the eventfds come from another process: a file shorter
     * than the page would be a SIGBUS at the first read, and a blocking
     * eventfd a read() that never returns (drain with nothing pending).
     */
    if (fstat(shm_fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode) || st.st_size < 4096)
        return -EPROTO;
    if (set_nonblock(req_fd) < 0 || set_nonblock(resp_fd) < 0)
        return -errno;
    pg = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, shm_fd, 0);
    if (pg == MAP_FAILED)
        return -errno;
    if (pg->magic != IOMAP_IOREQ_MAGIC || pg->version != IOMAP_IOREQ_VERSION ||
        pg->nslots != IOMAP_IOREQ_SLOTS) {
        munmap(pg, 4096);
        return -EPROTO;
    }
    c->page = pg;
    c->shm_fd = shm_fd;
    c->req_fd = req_fd;
    c->resp_fd = resp_fd;
    return 0;
}

int
ioreq_chan_take(struct ioreq_chan *c, struct iomap_ioreq *out)
{
    for (int i = 0; i < IOMAP_IOREQ_SLOTS; i++) {
        struct iomap_ioreq *s = &c->page->slot[i];

        if (slot_state(s) != IOMAP_STATE_IOREQ_READY)
            continue;
        *out = *s;
        slot_set_state(s, IOMAP_STATE_IOREQ_INPROCESS);
        return i;
    }
    return -1;
}

int
ioreq_chan_answer(struct ioreq_chan *c, int slot)
{
    struct iomap_ioreq *s;

    if (slot < 0 || slot >= IOMAP_IOREQ_SLOTS)
        return -EINVAL;
    s = &c->page->slot[slot];
    if (slot_state(s) != IOMAP_STATE_IOREQ_INPROCESS)
        return -EINVAL;
    slot_set_state(s, IOMAP_STATE_IORESP_READY);
    kick(c->resp_fd);
    return 0;
}
