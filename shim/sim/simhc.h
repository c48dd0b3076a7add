/* SPDX-License-Identifier: MIT */
/*
 * The simulated hypercall interface of iomap-sim, for emulator processes
 * and test drivers in other processes: one fixed-size request and one
 * reply per SOCK_SEQPACKET message, as a hypercall would be.  It stands in
 * for the iommu_op and memory_op hypercalls of the real shim.
 *
 * The daemon's attach socket is separate: on connect, iomap-sim sends one
 * struct simhc_attach with SCM_RIGHTS carrying the ring memfd, the event
 * eventfd (sim -> daemon) and the command eventfd (daemon -> sim).
 */
#ifndef IOMAP_SIMHC_H
#define IOMAP_SIMHC_H

#include <stdint.h>

#define SIMHC_MAGIC 0x43484d53U   /* "SMHC" */

enum simhc_op {
    SIMHC_EMU_CREATE = 1,   /* this connection becomes an ioreq server of
                               emu_domid for target domid; rc = its id   */
    SIMHC_MAP,              /* iommu_op map: domid gfn bfn nr flags           */
    SIMHC_UNMAP,            /* iommu_op unmap: bfn nr                         */
    SIMHC_FLUSH,            /* iommu_op flush                                 */
    SIMHC_DOMAIN_CREATE,    /* domid, nr pages                                */
    SIMHC_DOMAIN_DESTROY,   /* domid                                          */
    SIMHC_POPULATE,         /* domid gfn nr                                   */
    SIMHC_DECREASE,         /* domid gfn order(nr)                            */
    SIMHC_QUERY,            /* ground truth, in struct simhc_report           */
    SIMHC_CHECK,            /* run sim_check_quiescent; rc 0 or -EBUSY        */
};

struct simhc_req {
    uint32_t magic;
    uint16_t op;
    uint16_t domid;
    uint16_t emu_domid;
    uint16_t ioservid;
    uint32_t nr;
    uint64_t gfn;
    uint64_t bfn;
    uint32_t flags;
    uint32_t pad;
};

struct simhc_report {
    uint64_t held_pages, violations, mappings, free_pages;
    uint64_t pages_removed, pages_released, flushes_queued, flushes_done;
    uint64_t events_posted, events_lost, unmaps_refused, forced_unmaps;
    uint64_t cmd_errors;
    char     last_violation[128];
};

struct simhc_resp {
    uint32_t magic;
    int32_t  pad;
    int64_t  rc;            /* >= 0 result, or -errno */
    struct simhc_report report;     /* SIMHC_QUERY, SIMHC_CHECK */
};

struct simhc_attach {
    uint32_t magic;
    uint32_t region_len;
};

int     simhc_connect(const char *path);
/* One call; returns rc, or -errno if the transport failed. */
int64_t simhc_call(int fd, const struct simhc_req *req, struct simhc_resp *resp);

#endif
