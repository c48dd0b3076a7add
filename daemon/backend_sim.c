/* SPDX-License-Identifier: MIT */
/*
 * The sim backend: attach to a running iomap-sim on its socket, receive the
 * ring region (memfd) and the two eventfds, and map the region.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/backend_sim.h"
#include "util/log.h"
#include "shim/sim/simhc.h"


void
sim_be_kick(struct backend *be)
{
    struct sim_be *b = (struct sim_be *)be;
    uint64_t one = 1;

    if (write(b->cmd_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_warn("%s: eventfd", __func__);
}

struct iomap_ring *
sim_be_ring(struct backend *be)
{
    return &((struct sim_be *)be)->ring;
}

int
sim_be_notify_fd(struct backend *be)
{
    return ((struct sim_be *)be)->ev_fd;
}

void
sim_be_notified(struct backend *be)
{
    uint64_t v;

    if (read(((struct sim_be *)be)->ev_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        log_warn("%s: read", __func__);
}

static int
sim_open(const struct backend_args *args, struct backend **out, char *err,
         size_t errlen)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    const char *path = args->sim_socket;
    struct simhc_attach a;
    int fds[3], s, rc;
    char cbuf[CMSG_SPACE(sizeof(fds))];
    struct iovec iov = { &a, sizeof(a) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
    struct cmsghdr *cm;
    struct sim_be *b;
    ssize_t n;

    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "sim socket path too long: %s", path);
        return -ENAMETOOLONG;
    }
    strcpy(sun.sun_path, path);
    s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot reach the simulated hypervisor at %s: %s "
                 "(is iomap-sim running?)", path, strerror(errno));
        if (s >= 0)
            close(s);
        return rc;
    }
    n = recvmsg(s, &mh, MSG_CMSG_CLOEXEC);
    close(s);
    cm = n == (ssize_t)sizeof(a) ? CMSG_FIRSTHDR(&mh) : NULL;
    if (cm == NULL || a.magic != SIMHC_MAGIC || cm->cmsg_type != SCM_RIGHTS ||
        cm->cmsg_len != CMSG_LEN(sizeof(fds))) {
        snprintf(err, errlen, "%s did not hand over the rings", path);
        return -EPROTO;
    }
    memcpy(fds, CMSG_DATA(cm), sizeof(fds));
    b = calloc(1, sizeof(*b));
    if (b == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    b->shm_fd = fds[0];
    b->ev_fd = fds[1];
    b->cmd_fd = fds[2];
    b->len = a.region_len;
    b->region = mmap(NULL, b->len, PROT_READ | PROT_WRITE, MAP_SHARED, b->shm_fd, 0);
    if (b->region == MAP_FAILED) {
        rc = -errno;
        snprintf(err, errlen, "cannot map the ring region: %s", strerror(errno));
        goto fail;
    }
    rc = iomap_ring_attach(&b->ring, b->region, b->len, err, errlen);
    if (rc < 0) {
        munmap(b->region, b->len);
        goto fail;
    }
    b->be.ops = &backend_sim;
    *out = &b->be;
    return 0;

fail:
    close(fds[0]);
    close(fds[1]);
    close(fds[2]);
    free(b);
    return rc;
}

static void
sim_close(struct backend *be)
{
    struct sim_be *b = (struct sim_be *)be;

    munmap(b->region, b->len);
    close(b->shm_fd);
    close(b->ev_fd);
    close(b->cmd_fd);
    free(b);
}

const struct backend_ops backend_sim = {
    .name = "sim",
    .open = sim_open,
    .ring = sim_be_ring,
    .notify_fd = sim_be_notify_fd,
    .notified = sim_be_notified,
    .kick = sim_be_kick,
    .close = sim_close,
};
