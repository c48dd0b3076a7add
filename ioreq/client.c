/* SPDX-License-Identifier: MIT */
/*
 * libiomap-emu: the emulator's end of iomapd (<iomap/emu.h>).  It uses the
 * emulator side of ioreq/channel.c and nothing else of the tree: no log,
 * no libevent, no jansson.  It never prints or exits: errors are returned.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ioreq/emu_priv.h"

static int
recv_welcome(int s, struct iomap_emu_welcome *w, int fds[3])
{
    char cbuf[CMSG_SPACE(3 * sizeof(int))];
    struct iovec iov = { w, sizeof(*w) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
    struct cmsghdr *cm;
    ssize_t n = recvmsg(s, &mh, MSG_CMSG_CLOEXEC);

    if (n < 0)
        return -errno;
    if (n != (ssize_t)sizeof(*w) || w->magic != IOMAP_EMU_PROTO_MAGIC)
        return -EPROTO;
    if (w->status < 0)
        return w->status;
    cm = CMSG_FIRSTHDR(&mh);
    if (cm == NULL || cm->cmsg_type != SCM_RIGHTS ||
        cm->cmsg_len != CMSG_LEN(3 * sizeof(int)))
        return -EPROTO;
    memcpy(fds, CMSG_DATA(cm), 3 * sizeof(int));
    return 0;
}

struct iomap_emu *
iomap_emu_open(const char *path, uint16_t emu_domid, uint16_t target,
               uint16_t ioservid, uint32_t caps, int *err)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    struct iomap_emu_hello h = { .magic = IOMAP_EMU_PROTO_MAGIC,
                                 .version = IOMAP_EMU_PROTO_VERSION,
                                 .emu_domid = emu_domid, .ioservid = ioservid,
                                 .target = target, .caps = caps };
    struct iomap_emu_welcome w;
    struct iomap_emu *e;
    int s, fds[3], rc, dummy;

    if (err == NULL)
        err = &dummy;
    if (path == NULL) {
        *err = -EINVAL;
        return NULL;
    }
    if (strlen(path) >= sizeof(sun.sun_path)) {
        *err = -ENAMETOOLONG;
        return NULL;
    }
    strcpy(sun.sun_path, path);
    s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0) {
        *err = -errno;
        return NULL;
    }
    errno = 0;
    if (connect(s, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
        send(s, &h, sizeof(h), MSG_NOSIGNAL) != (ssize_t)sizeof(h)) {
        *err = errno ? -errno : -EIO;
        close(s);
        return NULL;
    }
    rc = recv_welcome(s, &w, fds);
    if (rc < 0) {
        *err = rc;
        close(s);
        return NULL;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        *err = -ENOMEM;
        goto fail;
    }
    rc = ioreq_chan_attach(&e->chan, fds[0], fds[1], fds[2]);
    if (rc < 0) {
        *err = rc;
        free(e);
        goto fail;
    }
    e->sock = s;
    return e;

fail:
    close(fds[0]);
    close(fds[1]);
    close(fds[2]);
    close(s);
    return NULL;
}

struct iomap_emu *
iomap_emu_open_local(struct iomap_ioreq_page *page, int req_fd, int resp_fd)
{
    struct iomap_emu *e = calloc(1, sizeof(*e));

    if (e == NULL)
        return NULL;
    e->chan.page = page;
    e->chan.req_fd = req_fd;
    e->chan.resp_fd = resp_fd;
    e->chan.shm_fd = -1;
    e->sock = -1;
    return e;
}

int
iomap_emu_fd(const struct iomap_emu *e)
{
    return e->chan.req_fd;
}

int
iomap_emu_next(struct iomap_emu *e, struct iomap_emu_req *r)
{
    struct iomap_ioreq q;
    int slot;

    ioreq_chan_drain_fd(e->chan.req_fd);
    for (;;) {
        slot = ioreq_chan_take(&e->chan, &q);
        if (slot < 0)
            return 0;
        if (q.type == IOMAP_IOREQ_TYPE_INVALIDATE ||
            q.type == IOMAP_IOREQ_TYPE_INVALIDATE_PAGE)
            break;
        /* Not ours to understand: answer so the slot is not lost. */
        ioreq_chan_answer(&e->chan, slot);
    }
    r->slot = slot;
    r->global = q.type == IOMAP_IOREQ_TYPE_INVALIDATE;
    r->domid = (uint16_t)q.data;
    r->gfn = q.addr >> 12;
    r->nr = q.count;
    return 1;
}

int
iomap_emu_done(struct iomap_emu *e, const struct iomap_emu_req *r)
{
    return ioreq_chan_answer(&e->chan, r->slot);
}

void
iomap_emu_close(struct iomap_emu *e)
{
    if (e == NULL)
        return;
    if (e->sock >= 0) {
        ioreq_chan_destroy(&e->chan);   /* our mapping and fds */
        close(e->sock);
    }
    free(e);
}
