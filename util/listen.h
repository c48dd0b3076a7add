/* SPDX-License-Identifier: MIT */
/*
 * One safe UNIX-socket listen for every listener of iomapd and the
 * simulated hypervisor, the peer's credentials, and an accept that backs
 * off when descriptors run out instead of spinning.
 *
 * listen_unix() probes before it touches anything:
 *   - nothing at the path: bind there;
 *   - something that is not a socket (file, directory, symlink, fifo):
 *     refused, left in place;
 *   - a socket some live process answers on (of any type, or with a full
 *     backlog): refused, left in place;
 *   - a socket nobody answers on (stale): logged, removed, replaced.
 * The socket is bound with owner-only permissions, then given its group
 * and its mode, then listens: nobody outside can connect before it has
 * both.  It is SOCK_CLOEXEC | SOCK_NONBLOCK.
 *
 * The acceptor (libevent; this file, listen.c and evlog.c are the only
 * part of util/ that knows libevent) accepts with SOCK_CLOEXEC | SOCK_NONBLOCK,
 * reads SO_PEERCRED and hands both to the caller.  When accept fails for
 * want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) it stops
 * watching the socket and tries again on a timer (50 ms, doubling up to
 * 1 s); it logs one line when such an episode starts and one when it
 * ends, with how many retries and how long it lasted.  Connections wait in
 * the kernel's backlog meanwhile.
 */
#ifndef IOMAP_LISTEN_H
#define IOMAP_LISTEN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct listen_opts {
    int         type;       /* SOCK_STREAM or SOCK_SEQPACKET */
    mode_t      mode;       /* of the socket file, e.g. 0660 or 0600 */
    int         have_gid;   /* give the socket file group gid */
    gid_t       gid;
    int         backlog;    /* 0: 64 */
    const char *what;       /* names it in messages: "control", "emulator" */
    const char *owner;      /* who would answer on it: "iomapd" ("is in use
                               by a running iomapd"); NULL: "process" */
};

/*
 * Listen on path as above.  The descriptor (>= 0), or -errno with err set
 * to one line naming the path:
 *   -EEXIST        "PATH exists and is not a socket: not touching it"
 *                  (or cannot tell whether the socket is in use)
 *   -EADDRINUSE    "PATH is in use by a running OWNER"
 *   -ENAMETOOLONG  "WHAT socket path too long: PATH"
 * On success the caller owns the socket file: unlink it when done.  On
 * failure nothing at the path was changed, but a stale socket removed.
 */
int listen_unix(const char *path, const struct listen_opts *o, char *err,
                size_t errlen);

/* The connecting process, from SO_PEERCRED. */
struct listen_peer {
    pid_t pid;
    uid_t uid;
    gid_t gid;
};

/* 0, or -errno (and *p zeroed, uid and gid set to -1). */
int listen_peer(int fd, struct listen_peer *p);
/*
 * The groups the peer's process had when it connected (SO_PEERGROUPS:
 * its supplementary groups, as the kernel saw them, not what the user
 * database says now).  The number written (at most max), or -errno.
 */
int listen_peer_groups(int fd, gid_t *groups, int max);
/* 1 if gid is the peer's primary group or one of groups[0..n). */
int listen_peer_in_group(const struct listen_peer *p, const gid_t *groups, int n,
                         gid_t gid);

/* ---- the acceptor ------------------------------------------------------------- */

struct event_base;
struct acceptor;

/*
 * A new connection: fd (non-blocking, close-on-exec; the callback owns
 * it) and its peer's credentials.  Connections whose credentials cannot
 * be read are logged and closed before this.  On a listening socket that
 * is not AF_UNIX (a TCP one) there are none: pid 0, uid and gid -1.
 */
typedef void (*acceptor_cb)(int fd, const struct listen_peer *peer, void *arg);

/* Watch lfd on base (it stays the caller's: close it after acceptor_free).
 * what names it in the log ("control", "emulator").  NULL on ENOMEM. */
struct acceptor *acceptor_new(struct event_base *base, int lfd, const char *what,
                              acceptor_cb cb, void *arg);
void acceptor_free(struct acceptor *a);

/* Descriptor-exhaustion episodes so far, and whether one is on now. */
struct acceptor_stats {
    uint64_t accepted;
    uint64_t episodes;
    uint64_t retries;       /* timer retries, all episodes */
    int      backing_off;
};
void acceptor_stats(const struct acceptor *a, struct acceptor_stats *st);

/* First and longest delay of the back-off, in milliseconds (tests). */
#define ACCEPTOR_BACKOFF_MIN_MS 50
#define ACCEPTOR_BACKOFF_MAX_MS 1000

#endif
