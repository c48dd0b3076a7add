/* SPDX-License-Identifier: MIT */
/*
 * example-emulator: the smallest emulator that cooperates with iomapd.
 *
 * It shows a QEMU or vGPU developer the three things to do:
 *   1. map guest pages through the iommu_op (here: iomap-sim's simulated
 *      hypercall; on Xen, the shim's iommu_op) and remember gfn -> bfn;
 *   2. register with iomapd (iomap_emu_open, <iomap/emu.h>, linked with
 *      `pkg-config --cflags --libs iomap-emu`) and put iomap_emu_fd() in
 *      the main loop (here: poll(2));
 *   3. for each request, unmap what it names, flush once, and answer with
 *      iomap_emu_done() -- only after the unmaps returned.
 *
 * usage: example-emulator --iomapd SOCK --sim SOCK --domid D --ioservid N
 *                         [--emu-domid D] [--map GFN:NR]... [--legacy]
 *                         [--answer-delay-ms N] [--no-unmap] [--never-answer]
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* As any emulator would: the installed header, linked to libiomap-emu.so. */
#include <iomap/emu.h>

#include "shim/sim/simhc.h"
#include "util/hmap.h"

static volatile sig_atomic_t stop;
static struct hmap mapped;          /* gfn -> 1; this example uses bfn = gfn */
static unsigned long n_requests, n_unmapped;

static void
on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int64_t
hc(int fd, uint16_t op, uint16_t domid, uint64_t gfn, uint64_t bfn, uint32_t nr)
{
    struct simhc_req q = { .op = op, .domid = domid, .gfn = gfn, .bfn = bfn, .nr = nr };
    struct simhc_resp r;

    return simhc_call(fd, &q, &r);
}

/* Unmap our mappings of domid's gfns [gfn, gfn + nr), in runs; then flush. */
static void
invalidate(int simfd, uint16_t domid, uint64_t gfn, uint32_t nr)
{
    uint32_t i = 0;
    int any = 0;

    while (i < nr) {
        uint32_t run = 0;

        while (i < nr && hmap_get(&mapped, gfn + i) == HMAP_NONE)
            i++;
        while (i + run < nr && hmap_get(&mapped, gfn + i + run) != HMAP_NONE)
            run++;
        if (run == 0)
            break;
        if (hc(simfd, SIMHC_UNMAP, domid, 0, gfn + i, run) < 0)
            fprintf(stderr, "example-emulator: unmap of gfn %#llx+%u failed\n",
                    (unsigned long long)(gfn + i), run);
        for (uint32_t k = 0; k < run; k++)
            hmap_del(&mapped, gfn + i + k);
        n_unmapped += run;
        any = 1;
        i += run;
    }
    if (any)
        hc(simfd, SIMHC_FLUSH, domid, 0, 0, 0);
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/*
 * The global invalidate: drop everything this emulator maps.  It walks
 * what is mapped (sorted, so that runs stay runs), never the gfn space.
 */
static void
invalidate_all(int simfd, uint16_t domid)
{
    uint64_t *g = malloc((mapped.len ? mapped.len : 1) * sizeof(*g));
    size_t n = 0;

    if (g == NULL) {
        fprintf(stderr, "example-emulator: out of memory\n");
        exit(1);
    }
    for (size_t s = 0; s < mapped.cap; s++)
        if (mapped.slots[s].key != 0)
            g[n++] = mapped.slots[s].key - 1;
    qsort(g, n, sizeof(*g), cmp_u64);
    for (size_t i = 0; i < n; ) {
        size_t j = i + 1;

        while (j < n && g[j] == g[j - 1] + 1 && j - i < UINT32_MAX)
            j++;
        invalidate(simfd, domid, g[i], (uint32_t)(j - i));
        i = j;
    }
    free(g);
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "iomapd", required_argument, NULL, 'i' },
        { "sim", required_argument, NULL, 's' },
        { "domid", required_argument, NULL, 'd' },
        { "emu-domid", required_argument, NULL, 'E' },
        { "ioservid", required_argument, NULL, 'n' },
        { "map", required_argument, NULL, 'm' },
        { "legacy", no_argument, NULL, 'L' },
        { "answer-delay-ms", required_argument, NULL, 'a' },
        { "no-unmap", no_argument, NULL, 'U' },
        { "never-answer", no_argument, NULL, 'N' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *iomapd_path = NULL, *sim_path = NULL;
    uint16_t domid = 1, emu_domid = 0, ioservid;
    uint64_t maps[16][2];
    int nmaps = 0, legacy = 0, no_unmap = 0, never = 0, c, simfd, err = 0;
    int64_t rc;
    unsigned delay_ms = 0;
    struct iomap_emu *e;
    struct simhc_req q = { .op = SIMHC_EMU_CREATE };
    struct simhc_resp r;

    while ((c = getopt_long(argc, argv, "i:s:d:E:n:m:La:UNh", opts, NULL)) != -1) {
        switch (c) {
        case 'i': iomapd_path = optarg; break;
        case 's': sim_path = optarg; break;
        case 'd': domid = (uint16_t)strtoul(optarg, NULL, 0); break;
        case 'E': emu_domid = (uint16_t)strtoul(optarg, NULL, 0); break;
        case 'n':
            fprintf(stderr, "example-emulator: --ioservid is gone: the hypervisor "
                    "allocates ioreq server ids (per guest, as Xen does)\n");
            return 2;
        case 'm': {
            char *colon = strchr(optarg, ':');

            if (colon == NULL || nmaps == 16) {
                fprintf(stderr, "example-emulator: --map GFN:NR (at most 16)\n");
                return 2;
            }
            maps[nmaps][0] = strtoull(optarg, NULL, 0);
            maps[nmaps][1] = strtoull(colon + 1, NULL, 0);
            nmaps++;
            break;
        }
        case 'L': legacy = 1; break;
        case 'a': delay_ms = (unsigned)strtoul(optarg, NULL, 0); break;
        case 'U': no_unmap = 1; break;
        case 'N': never = 1; break;     /* a hung emulator, for tests */
        case 'h':
            printf("usage: example-emulator --iomapd SOCK --sim SOCK [--domid GUEST] "
                   "[--emu-domid D] [--map GFN:NR]... [--legacy] "
                   "[--answer-delay-ms N] [--no-unmap] [--never-answer]\n"
                   "Creates an ioreq server for GUEST (the hypervisor picks its id), "
                   "registers it with iomapd and maps the given ranges.\n");
            return 0;
        default:
            return 2;
        }
    }
    if (iomapd_path == NULL || sim_path == NULL) {
        fprintf(stderr, "example-emulator: --iomapd and --sim are required\n");
        return 2;
    }
    hmap_init(&mapped);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    /* Become an ioreq server of the (simulated) hypervisor. */
    simfd = simhc_connect(sim_path);
    q.emu_domid = emu_domid;
    q.domid = domid;
    if (simfd < 0) {
        fprintf(stderr, "example-emulator: cannot reach iomap-sim at %s\n", sim_path);
        return 1;
    }
    rc = simhc_call(simfd, &q, &r);
    if (rc < 0) {
        fprintf(stderr, "example-emulator: cannot create an ioreq server for d%u: %s\n",
                domid, strerror((int)-rc));
        return 1;
    }
    ioservid = (uint16_t)rc;
    /* 2. Register with iomapd before mapping, so no invalidate is missed. */
    e = iomap_emu_open(iomapd_path, emu_domid, domid, ioservid,
                       legacy ? 0 : IOMAP_EMU_CAP_INVALIDATE_PAGE, &err);
    if (e == NULL) {
        fprintf(stderr, "example-emulator: cannot register with iomapd at %s: %s\n",
                iomapd_path, strerror(-err));
        return 1;
    }
    /* 1. Map (bfn = gfn in this example). */
    for (int i = 0; i < nmaps; i++) {
        rc = hc(simfd, SIMHC_MAP, domid, maps[i][0], maps[i][0],
                (uint32_t)maps[i][1]);

        if (rc < 0) {
            fprintf(stderr, "example-emulator: map of gfn %#llx+%llu failed: %s\n",
                    (unsigned long long)maps[i][0], (unsigned long long)maps[i][1],
                    strerror((int)-rc));
            continue;
        }
        for (uint64_t k = 0; k < maps[i][1]; k++)
            hmap_put(&mapped, maps[i][0] + k, 1);
    }
    printf("example-emulator %u:%u:%u: %zu pages of d%u mapped, waiting for requests\n",
           emu_domid, domid, ioservid, mapped.len, domid);
    fflush(stdout);

    /* 3. The main loop. */
    while (!stop) {
        struct pollfd pfd = { .fd = iomap_emu_fd(e), .events = POLLIN };
        struct iomap_emu_req req;

        if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
            break;
        while (iomap_emu_next(e, &req) > 0) {
            n_requests++;
            if (never)
                continue;
            if (delay_ms)
                usleep(delay_ms * 1000u);
            if (!no_unmap) {
                if (req.global)
                    invalidate_all(simfd, domid);
                else
                    invalidate(simfd, req.domid, req.gfn, req.nr);
            }
            iomap_emu_done(e, &req);
        }
    }
    printf("example-emulator %u:%u:%u: %lu requests, %lu pages unmapped, %zu still mapped\n",
           emu_domid, domid, ioservid, n_requests, n_unmapped, mapped.len);
    iomap_emu_close(e);
    close(simfd);
    hmap_free(&mapped);
    return 0;
}
