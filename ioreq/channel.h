/* SPDX-License-Identifier: MIT */
/*
 * Both ends of an IOREQ channel: the daemon side (send, reap) and the
 * emulator side (take, answer).  Notification is an eventfd per direction
 * (-1 for none: the tests poll).
 */
#ifndef IOMAP_CHANNEL_H
#define IOMAP_CHANNEL_H

#include <stdint.h>

#include "ioreq/ioreq.h"

/*
 * Daemon side: what was asked in each slot, kept in the daemon's own
 * memory.  The emulator can rewrite the shared page at any time; answers
 * are judged against this record, never against what the page says.
 */
struct ioreq_sent {
    uint8_t  used;
    uint8_t  type;
    uint16_t domid;
    uint32_t count;
    uint64_t gfn;
};

struct ioreq_chan {
    struct iomap_ioreq_page *page;
    int  req_fd;            /* daemon -> emulator kick (eventfd)          */
    int  resp_fd;           /* emulator -> daemon kick (eventfd)          */
    int  shm_fd;            /* the memfd backing page, or -1              */
    int  owns_page;         /* page is ours to munmap / free              */
    unsigned busy;          /* daemon side: slots sent, not yet answered  */
    uint64_t forged;        /* daemon side: answers in slots never sent   */
    struct ioreq_sent sent[IOMAP_IOREQ_SLOTS];
};

/* Daemon side: create a channel (memfd + two eventfds when fds != 0). */
int  ioreq_chan_create(struct ioreq_chan *c, uint16_t emu_domid,
                       uint16_t ioservid, uint32_t caps, int with_fds);
void ioreq_chan_destroy(struct ioreq_chan *c);

/*
 * Daemon side: post one request; returns the slot index or -EBUSY when
 * every slot is in use.  Does not kick: call ioreq_chan_kick once per batch.
 */
int  ioreq_chan_send(struct ioreq_chan *c, uint8_t type, uint16_t domid,
                     uint64_t gfn, uint32_t count);
void ioreq_chan_kick(struct ioreq_chan *c);
/*
 * Daemon side: reap answered slots; calls fn for each with the request as
 * the daemon sent it (from its own record, not from the shared page),
 * then frees the slot.  A slot the daemon never sent that the emulator
 * marked answered is counted in forged and cleared.
 */
typedef void ioreq_reap_fn(void *arg, const struct iomap_ioreq *req);
unsigned ioreq_chan_reap(struct ioreq_chan *c, ioreq_reap_fn *fn, void *arg);
unsigned ioreq_chan_free_slots(const struct ioreq_chan *c);

/*
 * Emulator side: map an existing page (from a memfd).  -EPROTO for a file
 * that is not a regular one of at least a page, or a page that is not a
 * channel's; req_fd and resp_fd (-1: none) are made non-blocking.
 */
int  ioreq_chan_attach(struct ioreq_chan *c, int shm_fd, int req_fd,
                       int resp_fd);
/* Emulator side: take the next READY slot (-> INPROCESS), or -1. */
int  ioreq_chan_take(struct ioreq_chan *c, struct iomap_ioreq *out);
/* Emulator side: answer slot (-> IORESP_READY) and kick the daemon. */
int  ioreq_chan_answer(struct ioreq_chan *c, int slot);
/* Drain an eventfd (either side); returns 0. */
int  ioreq_chan_drain_fd(int fd);

#endif
