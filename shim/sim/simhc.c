/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "shim/sim/simhc.h"

int
simhc_connect(const char *path)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(sun.sun_path))
        return -ENAMETOOLONG;
    strcpy(sun.sun_path, path);
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        int e = -errno;

        close(fd);
        return e;
    }
    return fd;
}

int64_t
simhc_call(int fd, const struct simhc_req *req, struct simhc_resp *resp)
{
    struct simhc_req r = *req;
    ssize_t n;

    r.magic = SIMHC_MAGIC;
    if (send(fd, &r, sizeof(r), MSG_NOSIGNAL) != (ssize_t)sizeof(r))
        return -errno ? -errno : -EIO;
    n = recv(fd, resp, sizeof(*resp), 0);
    if (n < 0)
        return -errno;
    if (n != (ssize_t)sizeof(*resp) || resp->magic != SIMHC_MAGIC)
        return -EPROTO;
    return resp->rc;
}
