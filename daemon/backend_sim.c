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

#include "daemon/iomapd.h"
#include "util/log.h"
#include "shim/sim/simhc.h"
#include "shim/sim/simserver.h"

struct sim_be {
    struct iomap_ring ring;
    void  *region;
    size_t len;
    int    shm_fd, ev_fd, cmd_fd;
};

static void
sim_kick_shim(struct core *d)
{
    struct sim_be *b = ((struct iomapd *)d->backend)->be_priv;
    uint64_t one = 1;

    if (write(b->cmd_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_warn("%s: eventfd", __func__);
}

static int
sim_open(struct iomapd *io, char *err, size_t errlen)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    const char *path = io->opt.sim_socket;
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
    io->be_priv = b;
    io->notify_fd = b->ev_fd;
    io->d.ring = &b->ring;
    io->d.kick_shim = sim_kick_shim;
    return 0;

fail:
    close(fds[0]);
    close(fds[1]);
    close(fds[2]);
    free(b);
    return rc;
}

static void
sim_close(struct iomapd *io)
{
    struct sim_be *b = io->be_priv;

    if (b == NULL)
        return;
    munmap(b->region, b->len);
    close(b->shm_fd);
    close(b->ev_fd);
    close(b->cmd_fd);
    free(b);
    io->be_priv = NULL;
}

const struct iomapd_backend backend_sim = {
    .name = "sim",
    .open = sim_open,
    .close = sim_close,
};

/*
 * sim-embedded: the simulated hypervisor runs in this process, on the
 * daemon's own loop.  The rings are the same shared memory and eventfds as
 * with iomap-sim (so the daemon code cannot tell the difference); emulators
 * and drivers use the simulated hypercall socket at --sim-socket.  The
 * host has 1 GiB of frames and device-TLB flushes of 100 us; guests are
 * created with `iomap-sim ctl SOCKET domain-create DOMID PAGES`.
 */
struct sim_emb {
    struct sim_be    be;        /* first: the sim backend's kick uses it */
    struct sim       sim;
    struct simserver ss;
};

static int
sim_embedded_open(struct iomapd *io, char *err, size_t errlen)
{
    struct sim_config cfg = { .nr_pages = 262144, .ev_slots = 65536,
                              .cmd_slots = 4096, .flush_latency_ns = 100000,
                              .shared = 1 };
    struct sim_emb *b = calloc(1, sizeof(*b));
    const char *path = io->opt.sim_socket_set ? io->opt.sim_socket :
                       RUNSTATEDIR "/iomapd/sim-hc.sock";
    int rc;

    if (b == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    rc = sim_init(&b->sim, &cfg);
    if (rc < 0) {
        snprintf(err, errlen, "cannot set up the simulated host: %s", strerror(-rc));
        sim_fini(&b->sim);
        free(b);
        return rc;
    }
    rc = simserver_init(&b->ss, io->base, &b->sim, NULL, path, err, errlen);
    if (rc < 0) {
        sim_fini(&b->sim);
        free(b);
        return rc;
    }
    /* Attach as any daemon would: the header is checked the same way. */
    rc = iomap_ring_attach(&b->be.ring, b->sim.region, b->sim.region_len, err, errlen);
    if (rc < 0) {
        simserver_fini(&b->ss);
        sim_fini(&b->sim);
        free(b);
        return rc;
    }
    b->be.shm_fd = b->be.ev_fd = -1;
    b->be.cmd_fd = b->sim.cmd_fd;
    io->be_priv = b;
    io->notify_fd = b->sim.ev_fd;
    io->d.ring = &b->be.ring;
    io->d.kick_shim = sim_kick_shim;
    log_info("simulated hypervisor embedded: %" PRIu64 " frames; hypercalls on %s",
             cfg.nr_pages, path);
    return 0;
}

static void
sim_embedded_close(struct iomapd *io)
{
    struct sim_emb *b = io->be_priv;

    if (b == NULL)
        return;
    simserver_fini(&b->ss);
    sim_fini(&b->sim);
    free(b);
    io->be_priv = NULL;
}

const struct iomapd_backend backend_sim_embedded = {
    .name = "sim-embedded",
    .open = sim_embedded_open,
    .close = sim_embedded_close,
};
