/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the daemon's decoder of the shim's event ring.
 *
 * The input is a shared region as a hostile or broken shim could leave
 * it.  The first byte chooses how it is used:
 *   even  the input is the region itself (header, indices, records):
 *         iomap_ring_attach() must refuse what is malformed, and the
 *         daemon must survive whatever indices and records it finds;
 *   odd   the header is valid (64 event slots) and the rest of the input
 *         is a stream of 32-byte event records, fed to the daemon a ring
 *         at a time, with the shim side taking the daemon's commands and
 *         the daemon's timer ticking between batches.
 * Built with -fsanitize=fuzzer by fuzz/run.sh, and replayed over
 * fuzz/corpus/ring by `make check` (fuzz/replay.c).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shim/ring.h"
#include "daemon/core/core.h"
#include "util/log.h"

#define EV_SLOTS  64u
#define CMD_SLOTS 64u
#define MAX_RECORDS 1024u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t fake_now;

static uint64_t
clock_fn(void *arg)
{
    (void)arg;
    return fake_now;
}

static void
kick_fn(void *arg)
{
    (void)arg;
}

static struct core *
books(struct iomap_ring *r)
{
    struct core_env env = { .ring = r, .clock = clock_fn, .kick = kick_fn };

    return core_new(&env);
}

static void
drain_cmds(struct iomap_ring *r)
{
    struct iomap_cmd c[64];

    while (iomap_ring_take_cmds(r, c, 64) > 0)
        ;
}

static void
run_region(const uint8_t *data, size_t size)
{
    size_t len = IOMAP_REGION_SIZE(EV_SLOTS, CMD_SLOTS);
    uint8_t *mem = calloc(1, len);
    struct iomap_ring r;
    struct core *d;
    char err[128];

    if (mem == NULL)
        return;
    memcpy(mem, data, size < len ? size : len);
    /* The region's length is part of the input too. */
    if (iomap_ring_attach(&r, mem, size < len ? (size > 64 ? size : len) : len,
                          err, sizeof(err)) == 0) {
        if ((d = books(&r)) != NULL) {
            for (int i = 0; i < 4; i++) {
                if (core_process(d) < 0)
                    break;
                fake_now += 1000000000ull;
                core_tick(d);
            }
        }
        core_free(d);
    }
    free(mem);
}

static void
run_stream(const uint8_t *data, size_t size)
{
    size_t len = IOMAP_REGION_SIZE(EV_SLOTS, CMD_SLOTS);
    void *mem = calloc(1, len);
    struct iomap_ring shim, r;
    struct core *d;
    char err[128];
    size_t nrec = size / sizeof(struct iomap_event), i = 0;

    if (mem == NULL)
        return;
    if (nrec > MAX_RECORDS)
        nrec = MAX_RECORDS;
    if (iomap_ring_format(&shim, mem, len, EV_SLOTS, CMD_SLOTS) < 0 ||
        iomap_ring_attach(&r, mem, len, err, sizeof(err)) < 0 ||
        (d = books(&r)) == NULL) {
        free(mem);
        return;
    }
    while (i < nrec) {
        /* Raw records, already in wire (little-endian) order. */
        while (i < nrec && iomap_ring_event_space(&shim) > 0) {
            uint32_t prod = shim.hdr->ev_prod;

            memcpy(&shim.ev[prod & (EV_SLOTS - 1)], data + i * sizeof(struct iomap_event),
                   sizeof(struct iomap_event));
            __atomic_store_n(&shim.hdr->ev_prod, prod + 1, __ATOMIC_RELEASE);
            i++;
        }
        if (core_process(d) < 0)
            break;
        drain_cmds(&shim);
        fake_now += 300000000ull;
        core_tick(d);
        drain_cmds(&shim);
    }
    core_free(d);
    free(mem);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;

    if (!inited) {
        log_init("fuzz-ring", LOG_LVL_ERR);
        log_set_level(-1);
        inited = 1;
    }
    if (size < 1)
        return 0;
    fake_now = 1;
    if (data[0] & 1)
        run_stream(data + 1, size - 1);
    else
        run_region(data + 1, size - 1);
    return 0;
}
