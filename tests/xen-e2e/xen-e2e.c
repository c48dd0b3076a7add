/* SPDX-License-Identifier: MIT */
/*
 * xen-e2e: the end-to-end test of iomapd on a booted, patched Xen 4.17.
 * It runs in dom0 next to `iomapd --backend xen` and plays both roles
 * the daemon sits between:
 *
 *  - the toolstack and the guest: it creates a small HVM domain (never
 *    started; it only needs a p2m), populates NPAGES gfns and later gives
 *    them back with XENMEM_decrease_reservation (as a balloon driver
 *    would, issued by dom0 on the guest's behalf);
 *  - an emulator: an ioreq server of that domain that maps guest pages
 *    into dom0's IOMMU context through the shim's iommu_op (hypercall 43,
 *    issued with libxencall), registers with iomapd through the emulator
 *    client library (ioreq/iomap-emu.h), and on each per-page invalidate
 *    IOREQ unmaps what it names, flushes and answers.
 *
 * What it checks, with the hypervisor's own figures (the guest's
 * tot_pages from XEN_DOMCTL_getdomaininfo, free pages from
 * XEN_SYSCTL_physinfo):
 *  - decrease_reservation frees the unmapped pages at once and holds the
 *    mapped ones (tot_pages drops by exactly the unmapped count);
 *  - held pages stay held while the emulator has them mapped;
 *  - the per-page invalidate IOREQs name exactly the mapped gfns;
 *  - after the emulator's unmaps and flush the held pages are freed
 *    (tot_pages reaches its final value, free pages come back);
 *  - unmaps that do not match a map are refused with -ENOENT and change
 *    nothing (not mapped, wrong gfn, wrong ioreq server, twice);
 *  - at the end nothing is held: the domain is destroyed and every page
 *    is back in Xen's free pool.
 *
 * It prints "E2E ..." progress lines and one "PASS ..." or "FAIL ..."
 * line; the exit status is 0 on PASS.
 *
 * usage: xen-e2e EMU_SOCKET [NPAGES [NMAP]]
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <xenctrl.h>
#include <xencall.h>
#include <xendevicemodel.h>
#include <xenforeignmemory.h>
#include <xen/hvm/save.h>

#include "ioreq/iomap-emu.h"
#include "tests/xen-e2e/guest.h"
#include "shim/public/iomap.h"

/* From the shim's public/iommu_op.h (patches 0001-0003). */
#define HYPERVISOR_iomap_op             44
#define XEN_IOMMUOP_map                 1
#define XEN_IOMMUOP_unmap               2
#define XEN_IOMMUOP_flush               3
#define XEN_IOMMUOP_set_invalidate      4
#define XEN_IOMMUOP_invalidate_iomap    1

struct xen_iommu_op_map {
    uint16_t domid;
    uint16_t ioservid;
    uint32_t flags;
    uint64_t gfn;
    uint64_t bfn;
    int32_t  status;
    uint32_t pad;
};

struct xen_iommu_op_flush {
    uint32_t seq;
    uint32_t pad;
};

struct xen_iommu_op_invalidate {
    uint16_t domid;
    uint16_t ioservid;
    uint32_t mode;
};

#define GFN_BASE    0x1000UL    /* the guest's first test gfn */
#define BFN_OFFSET  0x10000UL   /* bfn = max_page + BFN_OFFSET + i */
#define MAXREQ      64
#define P2_KEEP     4           /* phase 2: mapped pages not removed */
#define P2_BULK_N   20          /* phase 2: pages mapped many times */
#define P2_BULK_PER 250         /* ... at this many bfns each */
#define P2_BULK_OFF 0x1800UL    /* their gfns, GFN_BASE + this */
#define P2_BULK_BFN 0x200000UL  /* their bfns, bfn_base + this (> 4 GiB) */

static xc_interface *xch;
static xencall_handle *xcall;
static xendevicemodel_handle *dmod;
static uint32_t domid = DOMID_INVALID;
static ioservid_t ioservid;
static int have_ioserv;
static unsigned long bfn_base;
static int failed;
static int nfail;               /* failures so far: a scenario's verdict */
static xenforeignmemory_handle *fmem;
static const struct iomap_ring_hdr *ring;   /* the shim's rings, read only */
static const struct iomap_event *evring;
static xenforeignmemory_resource_handle *ring_res;
static unsigned n_refused;      /* bad unmaps refused as they should be */
static int dom0_optout_rc = 1;  /* dom0's XEN_IOMMUOP_set_invalidate (iomap) */

static void
fail(const char *fmt, ...)
{
    va_list ap;

    printf("FAIL xen-e2e: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    failed = 1;
    nfail++;
}

static void
say(const char *fmt, ...)
{
    va_list ap;

    printf("E2E ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* Issue one map or unmap batch; statuses land in ops[i].status. */
static int
iommu_op_batch(unsigned int cmd, struct xen_iommu_op_map *ops, unsigned int n)
{
    struct xen_iommu_op_map *buf;
    int rc;

    buf = xencall_alloc_buffer(xcall, n * sizeof(*ops));
    if (buf == NULL)
        return -ENOMEM;
    memcpy(buf, ops, n * sizeof(*ops));
    rc = xencall3(xcall, HYPERVISOR_iomap_op, cmd, (uint64_t)(uintptr_t)buf, n);
    if (rc < 0)
        rc = -errno;
    memcpy(ops, buf, n * sizeof(*ops));
    xencall_free_buffer(xcall, buf);
    return rc;
}

static int
iommu_op_flush(uint32_t *seq)
{
    struct xen_iommu_op_flush *f = xencall_alloc_buffer(xcall, sizeof(*f));
    int rc;

    if (f == NULL)
        return -ENOMEM;
    memset(f, 0, sizeof(*f));
    rc = xencall3(xcall, HYPERVISOR_iomap_op, XEN_IOMMUOP_flush,
                  (uint64_t)(uintptr_t)f, 0);
    if (rc < 0)
        rc = -errno;
    *seq = f->seq;
    xencall_free_buffer(xcall, f);
    return rc;
}

static int
iommu_op_set_invalidate(uint32_t mode)
{
    struct xen_iommu_op_invalidate *a = xencall_alloc_buffer(xcall, sizeof(*a));
    int rc;

    if (a == NULL)
        return -ENOMEM;
    a->domid = (uint16_t)domid;
    a->ioservid = ioservid;
    a->mode = mode;
    rc = xencall3(xcall, HYPERVISOR_iomap_op, XEN_IOMMUOP_set_invalidate,
                  (uint64_t)(uintptr_t)a, 0);
    if (rc < 0)
        rc = -errno;
    xencall_free_buffer(xcall, a);
    return rc;
}

static struct xen_iommu_op_map
op_for(unsigned long i)
{
    struct xen_iommu_op_map op = {
        .domid = (uint16_t)domid, .ioservid = ioservid,
        .gfn = GFN_BASE + i, .bfn = bfn_base + i,
    };

    return op;
}

/* One unmap that must be refused with -ENOENT. */
static void
bad_unmap(const char *what, struct xen_iommu_op_map op)
{
    int rc = iommu_op_batch(XEN_IOMMUOP_unmap, &op, 1);

    if (rc != 0 || op.status != -ENOENT)
        fail("unmap of %s: hypercall %d, status %d (want -ENOENT)", what, rc,
             op.status);
    else {
        n_refused++;
        say("unmap of %s refused: -ENOENT", what);
    }
}

/* Wait until the guest's tot_pages reaches want; returns seconds waited. */
static double
wait_tot(long want, double timeout)
{
    double t0 = now();

    while (tot_pages(xch, domid) != want) {
        if (now() - t0 > timeout)
            return -1;
        usleep(1000);
    }
    return now() - t0;
}

static void
cleanup(void)
{
    if (have_ioserv)
        xendevicemodel_destroy_ioreq_server(dmod, domid, ioservid);
    have_ioserv = 0;
    if (domid != DOMID_INVALID)
        xc_domain_destroy(xch, domid);
    domid = DOMID_INVALID;
}

/*
 * Phase 2 (with a restart command): I2 across a daemon crash.  Map n2
 * more pages, remove them (all held), take the invalidate IOREQ but never
 * answer it; then the command kills iomapd (SIGKILL) and starts a new one,
 * which rebuilds its books from the shim's dump.  The emulator has not
 * registered with the new daemon, so the daemon force-unmaps its mappings
 * and, once their flush completed, releases the pages.  The command
 * prints the new daemon's "resync complete" line.
 */
static int
phase2(struct iomap_emu *e, const char *restart, unsigned long n2,
       long *held, double *t_rel, char *dump, size_t dumplen)
{
    unsigned long off = 0x1000, nrm = n2 - P2_KEEP, i;
    xen_pfn_t *g = calloc(n2, sizeof(*g));
    struct xen_iommu_op_map *ops = calloc(n2, sizeof(*ops));
    static struct xen_iommu_op_map bulk[P2_BULK_N * P2_BULK_PER];
    xen_pfn_t bulk_g[P2_BULK_N];
    long t0, t1;
    double t_restart;
    FILE *f;
    char want[128];

    if (g == NULL || ops == NULL)
        return -1;
    /*
     * More mappings than one dump chunk (a ring of events) holds: P2_BULK_N
     * pages each mapped at P2_BULK_PER bfns, left in place, so that the new
     * daemon's dump takes several chunks (Xen keeps only the next chunk's
     * records, by cursor).
     */
    for (i = 0; i < P2_BULK_N; i++)
        bulk_g[i] = GFN_BASE + P2_BULK_OFF + i;
    if (xc_domain_populate_physmap_exact(xch, domid, P2_BULK_N, 0, 0,
                                         bulk_g) < 0) {
        fail("phase 2: populating the bulk pages: %s", strerror(errno));
        return -1;
    }
    for (i = 0; i < P2_BULK_N * P2_BULK_PER; i++) {
        bulk[i] = op_for(P2_BULK_OFF + i / P2_BULK_PER);
        bulk[i].bfn = bfn_base + P2_BULK_BFN + i;
    }
    if (iommu_op_batch(XEN_IOMMUOP_map, bulk, P2_BULK_N * P2_BULK_PER) < 0 ||
        bulk[0].status || bulk[P2_BULK_N * P2_BULK_PER - 1].status) {
        fail("phase 2: the bulk mappings: %s / %d", strerror(errno),
             bulk[0].status);
        return -1;
    }
    t0 = tot_pages(xch, domid);
    for (i = 0; i < n2; i++)
        g[i] = GFN_BASE + off + i;
    if (xc_domain_populate_physmap_exact(xch, domid, n2, 0, 0, g) < 0) {
        fail("phase 2: populating: %s", strerror(errno));
        return -1;
    }
    for (i = 0; i < n2; i++) {
        ops[i] = op_for(off + i);
        ops[i].bfn = bfn_base + off + i;
    }
    if (iommu_op_batch(XEN_IOMMUOP_map, ops, n2) < 0) {
        fail("phase 2: map: %s", strerror(errno));
        return -1;
    }
    for (i = 0; i < n2; i++)
        if (ops[i].status) {
            fail("phase 2: map of gfn %#lx: %s", GFN_BASE + off + i,
                 strerror(-ops[i].status));
            return -1;
        }
    /* Remove all but the last P2_KEEP: those stay mapped, not removed. */
    if (xc_domain_decrease_reservation_exact(xch, domid, nrm, 0, g) < 0) {
        fail("phase 2: decrease_reservation: %s", strerror(errno));
        return -1;
    }
    t1 = tot_pages(xch, domid);
    *held = t1 - t0 - P2_KEEP;
    say("phase 2: %lu more pages mapped, %lu of them removed: tot_pages %ld "
        "(all held)", n2, nrm, t1);
    if (t1 != t0 + (long)n2)
        fail("phase 2: tot_pages %ld after the removal, want %ld (all held)",
             t1, t0 + (long)n2);
    {
        struct iomap_emu_req r;
        double t = now();
        unsigned long got = 0;

        while (got < nrm && now() - t < 20) {
            struct pollfd pfd = { .fd = iomap_emu_fd(e), .events = POLLIN };

            poll(&pfd, 1, 100);
            while (iomap_emu_next(e, &r) > 0)
                got += r.nr;    /* taken, never answered */
        }
        say("phase 2: IOREQs for %lu pages taken and not answered; "
            "killing iomapd (SIGKILL) and starting a new one", got);
    }
    t_restart = now();
    f = popen(restart, "r");
    dump[0] = 0;
    if (f != NULL) {
        char line[256];

        while (fgets(line, sizeof(line), f) != NULL) {
            char *p = strstr(line, "resync complete:");

            if (p != NULL) {
                snprintf(dump, dumplen, "%s", p);
                dump[strcspn(dump, "\n")] = 0;
            }
        }
        pclose(f);
    }
    say("phase 2: new iomapd: %s", dump[0] ? dump : "(no resync line)");
    /*
     * One chunk holds at most a ring of records (4,096 slots), so learning
     * all 5,004 mappings takes the dump's cursor over several chunks.  The
     * held pages come in the first chunk, and the daemon may release them
     * before the last: any number of them may still be in flight then.
     */
    snprintf(want, sizeof(want), "resync complete: %u mappings, ",
             P2_KEEP + P2_BULK_N * P2_BULK_PER);
    if (strncmp(dump, want, strlen(want)) != 0 ||
        strtoul(dump + strlen(want), NULL, 10) > nrm)
        fail("phase 2: the new daemon's resync says \"%s\", want \"%s"
             "N pages in flight\" with N <= %lu", dump, want, nrm);
    if (wait_tot(t0 + P2_KEEP, 20) < 0) {
        fail("phase 2: held pages not released after the daemon restart: "
             "tot_pages %ld, want %ld", tot_pages(xch, domid), t0 + P2_KEEP);
        return -1;
    }
    *t_rel = now() - t_restart;
    say("phase 2: all %lu released %.1f ms after the restart began (tot_pages %ld)",
        nrm, *t_rel * 1e3, tot_pages(xch, domid));
    {
        struct xen_iommu_op_map op = op_for(off);

        op.bfn = bfn_base + off;
        bad_unmap("a removed page the new daemon force-unmapped", op);
    }
    for (i = 0; i < P2_BULK_N * P2_BULK_PER; i++) {
        bulk[i] = op_for(P2_BULK_OFF + i / P2_BULK_PER);
        bulk[i].bfn = bfn_base + P2_BULK_BFN + i;
    }
    if (iommu_op_batch(XEN_IOMMUOP_unmap, bulk, P2_BULK_N * P2_BULK_PER) < 0 ||
        bulk[0].status || bulk[P2_BULK_N * P2_BULK_PER - 1].status)
        fail("phase 2: unmapping the bulk mappings: %d", bulk[0].status);
    /* The mappings of pages not removed are left alone: unmap them now. */
    for (i = 0; i < P2_KEEP; i++) {
        ops[i] = op_for(off + nrm + i);
        ops[i].bfn = bfn_base + off + nrm + i;
    }
    if (iommu_op_batch(XEN_IOMMUOP_unmap, ops, P2_KEEP) < 0 || ops[0].status ||
        ops[P2_KEEP - 1].status)
        fail("phase 2: unmap of the %u kept pages: %d", P2_KEEP, ops[0].status);
    else {
        uint32_t seq;

        iommu_op_flush(&seq);
        say("phase 2: the %u mappings of pages not removed were left in place; "
            "unmapped them (flush seq %u)", P2_KEEP, seq);
    }
    if (tot_pages(xch, domid) != t0 + P2_KEEP)
        fail("phase 2: tot_pages %ld, want %ld", tot_pages(xch, domid), t0 + P2_KEEP);
    free(g);
    free(ops);
    return 0;
}


/*
 * One line per scenario for run.sh's results.json:
 *   E2E-SCENARIO {"name": ..., "pass": ..., figures...}
 * figures is a JSON fragment of further members, starting with ','.
 */
static void
scenario(const char *name, int nfail0, const char *fmt, ...)
{
    char fig[512] = "";
    va_list ap;

    if (fmt != NULL) {
        va_start(ap, fmt);
        vsnprintf(fig, sizeof(fig), fmt, ap);
        va_end(ap);
    }
    printf("E2E-SCENARIO {\"name\":\"%s\",\"pass\":%s%s}\n", name,
           nfail == nfail0 ? "true" : "false", fig);
    fflush(stdout);
}

/* iomapd's pid, written by iomapd-ctl. */
static pid_t
iomapd_pid(void)
{
    FILE *f = fopen("/run/iomapd/pid", "r");
    long pid = -1;

    if (f != NULL) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = -1;
        fclose(f);
    }
    return (pid_t)pid;
}

static int
daemon_signal(int sig)
{
    pid_t pid = iomapd_pid();

    if (pid <= 0 || kill(pid, sig) < 0) {
        fail("cannot signal iomapd (pid %ld): %s", (long)pid, strerror(errno));
        return -1;
    }
    return 0;
}

/*
 * Map the shim's rings read only, to look at what it posted (the daemon
 * keeps consuming them; nothing here writes).
 */
static int
ring_open(void)
{
    size_t size = 0;
    void *addr = NULL;

    if (ring != NULL)
        return 0;
    if (fmem == NULL)
        fmem = xenforeignmemory_open(NULL, 0);
    if (fmem == NULL ||
        xenforeignmemory_resource_size(fmem, DOMID_XEN, XENMEM_resource_iomap,
                                       IOMAP_RESOURCE_RING, &size) < 0 ||
        (ring_res = xenforeignmemory_map_resource(fmem, DOMID_XEN,
                                                  XENMEM_resource_iomap,
                                                  IOMAP_RESOURCE_RING, 0,
                                                  size >> 12, &addr,
                                                  PROT_READ, 0)) == NULL) {
        fail("mapping the shim's rings read only: %s", strerror(errno));
        return -1;
    }
    ring = addr;
    evring = (const void *)((const char *)addr + ring->ev_off);
    if (ring->version != IOMAP_ABI_VERSION) {
        fail("the shim speaks ABI %u.%u, this test %u.%u", ring->version >> 16,
             ring->version & 0xffff, IOMAP_ABI_VERSION_MAJOR,
             IOMAP_ABI_VERSION_MINOR);
        return -1;
    }
    return 0;
}

static uint32_t
ev_prod(void)
{
    return __atomic_load_n(&ring->ev_prod, __ATOMIC_ACQUIRE);
}

/* Record i of the event ring (a free-running index). */
static const struct iomap_event *
ev_at(uint32_t i)
{
    return &evring[i & (ring->ev_slots - 1)];
}

/* The oldest record of [from, prod) still on the ring. */
static uint32_t
ev_oldest(uint32_t from, uint32_t prod)
{
    return prod - from > ring->ev_slots ? prod - ring->ev_slots : from;
}

/* The newest event of type posted in [from, ev_prod) matching dom (or any). */
static const struct iomap_event *
ev_find(uint32_t from, uint8_t type, uint8_t flags, unsigned dom)
{
    uint32_t prod = ev_prod(), i;
    const struct iomap_event *found = NULL;

    for (i = ev_oldest(from, prod); i != prod; i++) {
        const struct iomap_event *ev = ev_at(i);

        if (ev->type == type && (ev->flags & flags) == flags &&
            (dom == DOMID_INVALID || ev->domid == dom))
            found = ev;
    }
    return found;
}

static unsigned
ev_count(uint32_t from, uint8_t type, uint8_t flags, unsigned dom)
{
    uint32_t prod = ev_prod(), i;
    unsigned n = 0;

    for (i = ev_oldest(from, prod); i != prod; i++) {
        const struct iomap_event *ev = ev_at(i);

        if (ev->type == type && (ev->flags & flags) == flags &&
            (dom == DOMID_INVALID || ev->domid == dom))
            n += ev->nr;
    }
    return n;
}

/*
 * ABI 1.1: the dump(s) posted in [from, ev_prod) by a daemon's resync.
 * Every DUMP_* record lies between a DUMP_BEGIN and its DUMP_END, and the
 * first chunk names the test's ioreq server (0, domid, ioservid) as alive
 * (IOMAP_EV_DUMP_EMU, arg 1).  Returns the number of chunks, or -1.
 */
/*
 * The DUMP_* records seen since a point, tallied as the ring goes by: a
 * dump of several chunks is longer than the ring, so it cannot be read
 * back afterwards.  dump_watch_start() runs a thread that follows the
 * producer index every 50 us; lost says it fell more than a ring behind.
 */
struct dump_tally {
    uint32_t next;
    unsigned begins, ends, outside, ours, nemu;
    int in, lost;
};

static void
dump_tally_feed(struct dump_tally *t)
{
    uint32_t prod = ev_prod();

    if (prod - t->next > ring->ev_slots) {
        t->lost = 1;
        t->next = prod - ring->ev_slots;
    }
    for (; t->next != prod; t->next++) {
        const struct iomap_event *ev = ev_at(t->next);

        switch (ev->type) {
        case IOMAP_EV_DUMP_BEGIN:
            t->outside += t->in;
            t->in = 1;
            t->begins++;
            break;
        case IOMAP_EV_DUMP_END:
            t->outside += !t->in;
            t->in = 0;
            t->ends++;
            break;
        case IOMAP_EV_DUMP_EMU:
            t->outside += !t->in;
            t->nemu++;
            if (ev->emu_domid == 0 && ev->domid == domid &&
                ev->ioservid == ioservid && ev->arg == 1)
                t->ours++;
            break;
        case IOMAP_EV_DUMP_MAP:
        case IOMAP_EV_DUMP_HELD:
            t->outside += !t->in;
            break;
        }
    }
}

static struct dump_tally watch_tally;
static volatile int watch_stop;
static pthread_t watch_thread;

static void *
dump_watch_fn(void *unused)
{
    (void)unused;
    while (!watch_stop) {
        dump_tally_feed(&watch_tally);
        usleep(50);
    }
    dump_tally_feed(&watch_tally);
    return NULL;
}

static int
dump_watch_start(uint32_t from)
{
    memset(&watch_tally, 0, sizeof(watch_tally));
    watch_tally.next = from;
    watch_stop = 0;
    return pthread_create(&watch_thread, NULL, dump_watch_fn, NULL);
}

/*
 * The verdict on the dump(s) tallied: every DUMP_* record lies between a
 * DUMP_BEGIN and its DUMP_END, and the first chunk names the test's ioreq
 * server (0, domid, ioservid) as alive (IOMAP_EV_DUMP_EMU, arg 1).
 * Returns the number of chunks, or -1.
 */
static int
dump_verdict(const struct dump_tally *t, const char *what, unsigned *nemu)
{
    *nemu = t->nemu;
    say("%s: %u dump chunk(s), %u DUMP_EMU record(s), %u naming 0:%u:%u%s",
        what, t->begins, t->nemu, t->ours, domid, ioservid,
        t->lost ? " (the watcher fell a ring behind)" : "");
    if (t->lost)
        fail("%s: the ring went by faster than the test read it", what);
    if (t->begins == 0)
        fail("%s: no IOMAP_EV_DUMP_BEGIN: the new daemon's dump was not "
             "seen", what);
    if (t->begins != t->ends || t->in)
        fail("%s: %u DUMP_BEGIN but %u DUMP_END", what, t->begins, t->ends);
    if (t->outside)
        fail("%s: %u DUMP_* record(s) outside a DUMP_BEGIN..DUMP_END chunk",
             what, t->outside);
    if (t->ours == 0)
        fail("%s: no IOMAP_EV_DUMP_EMU names the live ioreq server 0:%u:%u",
             what, domid, ioservid);
    return t->lost || t->begins == 0 || t->begins != t->ends || t->in ||
           t->outside || t->ours == 0 ? -1 : (int)t->begins;
}

static int
dump_watch_stop(const char *what, unsigned *nemu)
{
    watch_stop = 1;
    pthread_join(watch_thread, NULL);
    return dump_verdict(&watch_tally, what, nemu);
}


/* Populate n gfns at GFN_BASE + off and map them at bfn. */
static int
populate_map(unsigned long off, unsigned long n, unsigned long bfn,
             xen_pfn_t *g, struct xen_iommu_op_map *ops)
{
    unsigned long i;

    for (i = 0; i < n; i++)
        g[i] = GFN_BASE + off + i;
    if (xc_domain_populate_physmap_exact(xch, domid, n, 0, 0, g) < 0) {
        fail("populating %lu gfns at %#lx: %s", n, GFN_BASE + off,
             strerror(errno));
        return -1;
    }
    for (i = 0; i < n; i++) {
        ops[i] = op_for(off + i);
        ops[i].bfn = bfn + i;
    }
    if (iommu_op_batch(XEN_IOMMUOP_map, ops, n) < 0) {
        fail("map: %s", strerror(errno));
        return -1;
    }
    for (i = 0; i < n; i++)
        if (ops[i].status) {
            fail("map of gfn %#lx: %s", GFN_BASE + off + i,
                 strerror(-ops[i].status));
            return -1;
        }
    return 0;
}

static int
unmap_all(struct xen_iommu_op_map *ops, unsigned long n)
{
    unsigned long i;

    if (iommu_op_batch(XEN_IOMMUOP_unmap, ops, n) < 0) {
        fail("unmap: %s", strerror(errno));
        return -1;
    }
    for (i = 0; i < n; i++)
        if (ops[i].status) {
            fail("unmap of gfn %#llx: %s", (unsigned long long)ops[i].gfn,
                 strerror(-ops[i].status));
            return -1;
        }
    return 0;
}

#define HOLD_N 8

/*
 * hold-until-flush: with iomapd stopped (SIGSTOP), the emulator unmaps 8
 * pages (no flush yet), the guest gives them back, the emulator flushes.
 * Neither the guest's tot_pages nor Xen's free pages may move until the
 * daemon runs again and releases them: the unflushed unmap keeps its
 * references (deferred put), the removal takes a hold, and only the
 * daemon's RELEASE after FLUSH_DONE lets the pages go.
 */
static void
sc_hold_until_flush(void)
{
    int f0 = nfail;
    xen_pfn_t g[HOLD_N + 1];
    struct xen_iommu_op_map ops[HOLD_N + 1];
    long t0, f_0, t_rm, f_rm, t_fl, f_fl;
    double t_cont, t_rel = -1;
    uint32_t seq = 0;

    /*
     * One more mapping in the same IOMMU leaf table stays, so that the
     * unmaps do not empty the table (which flushes at once, see
     * pagetable-free) and really wait for the flush.
     */
    if (populate_map(0x2000, HOLD_N + 1, bfn_base + 0x2000, g, ops) < 0)
        goto out;
    t0 = tot_pages(xch, domid);
    f_0 = free_pages(xch);
    if (daemon_signal(SIGSTOP) < 0)
        goto out;
    if (unmap_all(ops, HOLD_N) < 0 ||
        xc_domain_decrease_reservation_exact(xch, domid, HOLD_N, 0, g) < 0) {
        fail("hold-until-flush: unmap / decrease_reservation: %s",
             strerror(errno));
        daemon_signal(SIGCONT);
        goto out;
    }
    t_rm = tot_pages(xch, domid);
    f_rm = free_pages(xch);
    iommu_op_flush(&seq);
    usleep(500 * 1000);
    t_fl = tot_pages(xch, domid);
    f_fl = free_pages(xch);
    say("hold-until-flush: daemon stopped; unmap + removal: tot_pages %ld -> "
        "%ld, free %+ld; flush seq %u, 0.5 s later: tot_pages %ld, free %+ld",
        t0, t_rm, f_rm - f_0, seq, t_fl, f_fl - f_0);
    if (t_rm != t0 || t_fl != t0)
        fail("hold-until-flush: tot_pages moved before the daemon released "
             "(%ld, %ld, %ld)", t0, t_rm, t_fl);
    if (labs(f_rm - f_0) > 4 || labs(f_fl - f_0) > 4)
        fail("hold-until-flush: free pages moved before the daemon released "
             "(%+ld, %+ld)", f_rm - f_0, f_fl - f_0);
    t_cont = now();
    daemon_signal(SIGCONT);
    if (wait_tot(t0 - HOLD_N, 10) < 0)
        fail("hold-until-flush: not released 10 s after SIGCONT: tot_pages "
             "%ld, want %ld", tot_pages(xch, domid), t0 - HOLD_N);
    else
        t_rel = now() - t_cont;
    unmap_all(&ops[HOLD_N], 1);
    {
        uint32_t seq2;

        iommu_op_flush(&seq2);
    }
    xc_domain_decrease_reservation_exact(xch, domid, 1, 0, &g[HOLD_N]);
 out:
    scenario("hold-until-flush", f0, ",\"pages\":%d,\"flush_seq\":%u,"
             "\"released_ms_after_sigcont\":%.1f", HOLD_N, seq, t_rel * 1e3);
}

#define PT_N 512

/*
 * pagetable-free: 512 mappings fill one IOMMU leaf table (bfns aligned to
 * 2 MiB); unmapping them all empties it and VT-d frees it (from a tasklet,
 * "assuming the flush has occurred").  With iomapd stopped and no flush
 * requested by anyone, the shim must have flushed before the unmap
 * returned: IOMAP_EV_FLUSH_DONE covering the unmaps is already on the ring.
 */
static void
sc_pagetable_free(void)
{
    int f0 = nfail;
    xen_pfn_t *g = calloc(PT_N, sizeof(*g));
    struct xen_iommu_op_map *ops = calloc(PT_N, sizeof(*ops));
    unsigned long bfn = (bfn_base + 0x8000 + 511) & ~511UL;
    const struct iomap_event *un, *done;
    uint32_t p0, useq = 0, dseq = 0;
    long t0;

    if (g == NULL || ops == NULL || ring_open() < 0)
        goto out;
    say("pagetable-free: the shim's rings mapped read only; mapping %d pages "
        "at bfn %#lx", PT_N, bfn);
    if (populate_map(0x4000, PT_N, bfn, g, ops) < 0)
        goto out;
    if (daemon_signal(SIGSTOP) < 0)
        goto out;
    say("pagetable-free: mapped; daemon stopped; unmapping");
    p0 = ev_prod();
    if (unmap_all(ops, PT_N) < 0) {
        daemon_signal(SIGCONT);
        goto out;
    }
    un = ev_find(p0, IOMAP_EV_UNMAP, 0, domid);
    done = ev_find(p0, IOMAP_EV_FLUSH_DONE, 0, DOMID_INVALID);
    useq = un ? un->seq : 0;
    dseq = done ? done->seq : 0;
    daemon_signal(SIGCONT);
    say("pagetable-free: 512 unmaps emptied a leaf table: last unmap seq %u, "
        "flush done %u when the unmap returned (nobody asked for a flush)",
        useq, dseq);
    if (un == NULL)
        fail("pagetable-free: no IOMAP_EV_UNMAP seen");
    else if (done == NULL || (int32_t)(dseq - useq) < 0)
        fail("pagetable-free: the unmap returned with no completed flush "
             "covering it (seq %u, done %u): the freed table may be reused "
             "while the IOMMU still walks it", useq, dseq);
    t0 = tot_pages(xch, domid);
    if (xc_domain_decrease_reservation_exact(xch, domid, PT_N, 0, g) < 0)
        fail("pagetable-free: decrease_reservation: %s", strerror(errno));
    else if (wait_tot(t0 - PT_N, 10) < 0)
        fail("pagetable-free: pages not freed after their flush");
 out:
    free(g);
    free(ops);
    scenario("pagetable-free", f0, ",\"mappings\":%d,\"unmap_seq\":%u,"
             "\"flush_done_at_return\":%u", PT_N, useq, dseq);
}

/*
 * overwrite: populate_physmap over a gfn that is still mapped replaces the
 * page in the p2m (p2m_add_page) without XENMEM_decrease_reservation.  The
 * emulator must still hear about it (a per-page invalidate for that gfn),
 * and its mapping keeps the old page, not whatever the gfn now holds.
 */
static void
sc_overwrite(struct iomap_emu *e)
{
    int f0 = nfail;
    xen_pfn_t g[1];
    struct xen_iommu_op_map ops[1];
    struct iomap_emu_req r;
    double t0, t_req = -1;
    int got = 0;

    if (populate_map(0x7000, 1, bfn_base + 0x7000, g, ops) < 0)
        goto out;
    if (xc_domain_populate_physmap_exact(xch, domid, 1, 0, 0, g) < 0) {
        fail("overwrite: populating over gfn %#lx: %s", (unsigned long)g[0],
             strerror(errno));
        goto out;
    }
    t0 = now();
    while (!got && now() - t0 < 10) {
        struct pollfd pfd = { .fd = iomap_emu_fd(e), .events = POLLIN };

        poll(&pfd, 1, 100);
        while (iomap_emu_next(e, &r) > 0) {
            if (!r.global && r.domid == domid && r.gfn <= g[0] &&
                g[0] < r.gfn + r.nr) {
                got = 1;
                t_req = now() - t0;
                unmap_all(ops, 1);
                {
                    uint32_t seq;

                    iommu_op_flush(&seq);
                }
            }
            iomap_emu_done(e, &r);
        }
    }
    say("overwrite: gfn %#lx replaced by populate_physmap: %s", (unsigned long)g[0],
        got ? "the emulator got a per-page invalidate" : "no invalidate");
    if (!got) {
        fail("overwrite: no invalidate for the overwritten gfn %#lx",
             (unsigned long)g[0]);
        unmap_all(ops, 1);
    }
    xc_domain_decrease_reservation_exact(xch, domid, 1, 0, g);
 out:
    scenario("overwrite", f0, ",\"invalidate_ms\":%.1f", t_req * 1e3);
}


#define FM_N   4
#define FM_OFF 0x9000UL

/*
 * CPU records of type on the ring since from, for FM_N gfns at g[0]..: the
 * count, and whether each names (dom0, the guest, IOMAP_IOSERVID_ANY) with
 * IOMAP_F_CPU.  mfn[] is filled from MAP records, checked against UNMAPs.
 */
static unsigned
fm_records(uint32_t from, uint8_t type, const xen_pfn_t *g, uint64_t *mfn,
           unsigned *bad)
{
    uint32_t prod = ev_prod(), i;
    unsigned n = 0;

    for (i = ev_oldest(from, prod); i != prod; i++) {
        const struct iomap_event *ev = ev_at(i);

        if (ev->type != type || ev->domid != domid || ev->gfn < g[0] ||
            ev->gfn >= g[0] + FM_N)
            continue;
        n += ev->nr;
        if (!(ev->flags & IOMAP_F_CPU) || ev->emu_domid != 0 ||
            ev->ioservid != IOMAP_IOSERVID_ANY || ev->nr != 1 || ev->seq != 0)
            (*bad)++;
        else if (type == IOMAP_EV_MAP)
            mfn[ev->gfn - g[0]] = ev->arg;
        else if (mfn[ev->gfn - g[0]] != ev->arg)
            (*bad)++;
    }
    return n;
}

/*
 * foreign-map: dom0 maps pages of the HVM test guest with
 * xenforeignmemory_map (privcmd: mmu_update with the guest as the foreign
 * owner).  The shim reports each as IOMAP_EV_MAP with IOMAP_F_CPU, named
 * (0, guest, IOMAP_IOSERVID_ANY), and the munmap as IOMAP_EV_UNMAP.  Mapped
 * again, one page is removed from the guest: the shim posts PAGE_REMOVED
 * with IOMAP_F_CPU and takes no hold, the registered emulator of the guest
 * gets a per-page invalidate for it, and the page is freed (the guest's
 * tot_pages) only by the munmap.
 */
static void
sc_foreign_map(struct iomap_emu *e)
{
    int f0 = nfail;
    xen_pfn_t g[FM_N];
    int errs[FM_N];
    uint64_t mfn[FM_N] = { 0 };
    unsigned i, n_map = 0, n_unmap = 0, n_map2 = 0, n_unmap2 = 0, bad = 0;
    unsigned removed = 0, got = 0;
    volatile uint32_t *p = NULL;
    uint32_t from;
    long t0 = -1, t_mapped = -1, t_unmapped = -1;
    double t_req = -1, t_free = -1;

    if (ring_open() < 0)
        goto out;
    for (i = 0; i < FM_N; i++)
        g[i] = GFN_BASE + FM_OFF + i;
    if (xc_domain_populate_physmap_exact(xch, domid, FM_N, 0, 0, g) < 0) {
        fail("foreign-map: populating: %s", strerror(errno));
        goto out;
    }

    /* 1. Map and unmap: one MAP and one UNMAP record per page. */
    from = ev_prod();
    p = xenforeignmemory_map(fmem, domid, PROT_READ | PROT_WRITE, FM_N, g, errs);
    if (p == NULL) {
        fail("foreign-map: xenforeignmemory_map: %s", strerror(errno));
        goto out;
    }
    for (i = 0; i < FM_N; i++) {
        if (errs[i])
            fail("foreign-map: gfn %#lx not mapped: %d", (unsigned long)g[i], errs[i]);
        p[i * 1024] = 0x5eed0000 + i;
    }
    usleep(100000);
    n_map = fm_records(from, IOMAP_EV_MAP, g, mfn, &bad);
    from = ev_prod();
    xenforeignmemory_unmap(fmem, (void *)p, FM_N);
    p = NULL;
    usleep(100000);
    n_unmap = fm_records(from, IOMAP_EV_UNMAP, g, mfn, &bad);
    say("foreign-map: %u pages mapped by dom0: %u MAP and %u UNMAP records "
        "(IOMAP_F_CPU, 0:%u:ANY), %u malformed", FM_N, n_map, n_unmap, domid, bad);
    if (n_map != FM_N || n_unmap != FM_N || bad)
        fail("foreign-map: %u MAP, %u UNMAP records for %u pages, %u with a "
             "wrong identity or frame (want %u, %u, 0)", n_map, n_unmap, FM_N,
             bad, FM_N, FM_N);

    /* 2. Map again; the guest gives page 0 back while dom0 maps it. */
    from = ev_prod();
    p = xenforeignmemory_map(fmem, domid, PROT_READ | PROT_WRITE, FM_N, g, errs);
    if (p == NULL) {
        fail("foreign-map: mapping again: %s", strerror(errno));
        goto out;
    }
    usleep(100000);
    n_map2 = fm_records(from, IOMAP_EV_MAP, g, mfn, &bad);
    t0 = tot_pages(xch, domid);
    from = ev_prod();
    if (xc_domain_decrease_reservation_exact(xch, domid, 1, 0, g) < 0) {
        fail("foreign-map: decrease_reservation: %s", strerror(errno));
        goto out;
    }
    {
        const struct iomap_event *ev = ev_find(from, IOMAP_EV_PAGE_REMOVED,
                                               IOMAP_F_CPU, domid);

        removed = ev != NULL && ev->gfn == g[0] && ev->arg == mfn[0];
    }
    {
        double t1 = now();
        struct iomap_emu_req r;

        while (!got && now() - t1 < 10) {
            struct pollfd pfd = { .fd = iomap_emu_fd(e), .events = POLLIN };

            poll(&pfd, 1, 100);
            while (iomap_emu_next(e, &r) > 0) {
                if (r.global)
                    fail("foreign-map: a global invalidate, want a per-page one");
                else if (r.domid == domid && r.gfn <= g[0] && g[0] < r.gfn + r.nr &&
                         !got) {
                    got = 1;
                    t_req = now() - t1;
                } else
                    fail("foreign-map: invalidate of d%u gfn %#llx nr %u, not "
                         "removed", r.domid, (unsigned long long)r.gfn, r.nr);
                iomap_emu_done(e, &r);
            }
        }
    }
    usleep(500000);
    t_mapped = tot_pages(xch, domid);         /* still mapped: not freed */
    from = ev_prod();
    xenforeignmemory_unmap(fmem, (void *)p, FM_N);
    p = NULL;
    {
        double t1 = now();

        while (tot_pages(xch, domid) != t0 - 1 && now() - t1 < 5)
            usleep(1000);
        t_free = now() - t1;
    }
    t_unmapped = tot_pages(xch, domid);
    usleep(100000);
    n_unmap2 = fm_records(from, IOMAP_EV_UNMAP, g, mfn, &bad);
    say("foreign-map: removal of mapped gfn %#lx: PAGE_REMOVED (IOMAP_F_CPU) %s, "
        "per-page invalidate %s after %.1f ms; tot_pages %ld -> %ld while mapped "
        "-> %ld after the munmap (%.1f ms); %u UNMAP records", (unsigned long)g[0],
        removed ? "posted" : "missing", got ? "received" : "missing", t_req * 1e3,
        t0, t_mapped, t_unmapped, t_free * 1e3, n_unmap2);
    if (n_map2 != FM_N || n_unmap2 != FM_N || bad)
        fail("foreign-map: second mapping: %u MAP, %u UNMAP records (want %u), "
             "%u malformed", n_map2, n_unmap2, FM_N, bad);
    if (!removed)
        fail("foreign-map: no PAGE_REMOVED with IOMAP_F_CPU for gfn %#lx mfn %#llx",
             (unsigned long)g[0], (unsigned long long)mfn[0]);
    if (!got)
        fail("foreign-map: the emulator got no per-page invalidate for gfn %#lx "
             "within 10 s", (unsigned long)g[0]);
    if (t_mapped != t0)
        fail("foreign-map: the removed page was freed while dom0 mapped it "
             "(tot_pages %ld -> %ld)", t0, t_mapped);
    if (t_unmapped != t0 - 1)
        fail("foreign-map: the removed page was not freed by the munmap "
             "(tot_pages %ld, want %ld)", t_unmapped, t0 - 1);
 out:
    if (p != NULL)
        xenforeignmemory_unmap(fmem, (void *)p, FM_N);
    xc_domain_decrease_reservation_exact(xch, domid, FM_N - 1, 0, g + 1);
    scenario("foreign-map", f0, ",\"map_records\":%u,\"unmap_records\":%u,"
             "\"malformed\":%u,\"page_removed_cpu\":%s,\"invalidate_ms\":%.1f,"
             "\"tot_pages_while_mapped\":%ld,\"tot_pages_after_munmap\":%ld,"
             "\"tot_pages_before\":%ld", n_map + n_map2, n_unmap + n_unmap2, bad,
             removed ? "true" : "false", t_req * 1e3, t_mapped, t_unmapped, t0);
}


/*
 * unprivileged: a running guest that is nobody's device model calls every
 * iommu_op sub-op and is refused each time, then loops on the flush.  The
 * guest is a PVH-style HVM domain running a few bytes of 32-bit flat code
 * written here (hypercalls by VMMCALL: Xen runs on QEMU's emulated SVM),
 * with its results in its own memory.  The loop must not post anything on
 * the ring, and dom0's own ops must keep their latency meanwhile.
 */
#define U_CODE  0x1000u
#define U_DATA  0x2000u
#define U_MAP   (U_DATA + 0x000)
#define U_UNMAP (U_DATA + 0x040)
#define U_INV   (U_DATA + 0x080)
#define U_RES   (U_DATA + 0x100)    /* int32 per sub-op */
#define U_COUNT (U_DATA + 0x200)    /* flood iterations left */
#define U_LAST  (U_DATA + 0x204)    /* last flood result */
#define U_DONE  (U_DATA + 0x208)    /* 0x600dd00d when finished */
#define U_DONE2 (U_DATA + 0x20c)    /* the same, for the opt-out run */
#define U_GO    (U_DATA + 0x210)    /* non-zero: jump to U_CODE2 */
#define U_CODE2 (U_CODE + 0x800)
#define U_FLOOD 20000u

static void
hcall(struct emit *e, uint32_t cmd, uint32_t arg, uint32_t count)
{
    mov_ri(e, 0, HYPERVISOR_iomap_op);
    mov_ri(e, 3, cmd);
    mov_ri(e, 1, arg);
    mov_ri(e, 2, count);
    vmmcall(e);
}

/*
 * optout-refused: the same (PVH, i.e. translated) guest is made the device
 * model of the test guest (XEN_DOMCTL_set_target, so XSM_DM_PRIV lets it
 * through) and asks to opt the test guest's ioreq server out of the
 * global invalidate.  Its foreign mappings would be p2m entries, which the
 * shim does not report, so the opt-out must be refused with -EOPNOTSUPP
 * (not -EPERM from the server check that follows: the PV check comes
 * first).  dom0, a PV domain whose foreign mappings are reported, opted
 * out at start-up (rc 0).
 */
static void
sc_optout_refused(uint32_t ud, unsigned char *code, unsigned char *data)
{
    int f0 = nfail;
    int32_t res = 1;
    struct emit e = { code + (U_CODE2 - U_CODE) };
    double t0;
    int done;

    if (xc_domain_set_target(xch, ud, domid) < 0) {
        fail("optout-refused: making d%u the device model of d%u: %s", ud, domid,
             strerror(errno));
        goto out;
    }
    memcpy(data + (U_RES + 20 - U_DATA), &res, sizeof(res));   /* not run: 1 */
    hcall(&e, XEN_IOMMUOP_set_invalidate, U_INV, 0);
    store_eax(&e, U_RES + 20);
    e8(&e, 0xc7); e8(&e, 0x05); e32(&e, U_DONE2); e32(&e, 0x600dd00d);
    e8(&e, 0xfb);                               /* sti; 1: hlt; jmp 1b */
    e8(&e, 0xf4);
    e8(&e, 0xeb); e8(&e, 0xfd);
    __sync_synchronize();
    *(volatile uint32_t *)(data + (U_GO - U_DATA)) = 1;
    t0 = now();
    while (*(volatile uint32_t *)(data + (U_DONE2 - U_DATA)) != 0x600dd00d &&
           now() - t0 < 30)
        usleep(10000);
    done = *(volatile uint32_t *)(data + (U_DONE2 - U_DATA)) == 0x600dd00d;
    memcpy(&res, data + (U_RES + 20 - U_DATA), sizeof(res));
    say("optout-refused: d%u (PVH), device model of d%u: set_invalidate %d%s; "
        "dom0 (PV): %d", ud, domid, res, done ? "" : " (its code did not finish "
        "in 30 s)", dom0_optout_rc);
    if (res != -EOPNOTSUPP)
        fail("optout-refused: a PVH device model's opt-out gave %d, want %d "
             "(-EOPNOTSUPP)", res, -EOPNOTSUPP);
    if (dom0_optout_rc != 0)
        fail("optout-refused: dom0's opt-out gave %d, want 0", dom0_optout_rc);
 out:
    scenario("optout-refused", f0, ",\"pvh_set_invalidate\":%d,"
             "\"dom0_set_invalidate\":%d", res, dom0_optout_rc);
}

static void
sc_unprivileged(void)
{
    static const char *const names[] = { "kick", "map", "unmap", "flush",
                                         "set_invalidate" };
    int f0 = nfail, i;
    struct xen_domctl_createdomain cfg = {
        .flags = XEN_DOMCTL_CDF_hvm | XEN_DOMCTL_CDF_hap,
        .max_vcpus = 1,
        .max_evtchn_port = 63,
        .max_grant_frames = 1,
        .max_maptrack_frames = 0,
        .grant_opts = XEN_DOMCTL_GRANT_version(1),
        .arch = { .emulation_flags = XEN_X86_EMU_LAPIC },
    };
    uint32_t ud = DOMID_INVALID, p0 = 0, p1 = 0;
    xen_pfn_t g[4] = { 0, 1, 2, 3 };
    unsigned char *code = NULL, *data = NULL;
    int32_t res[5] = { 1, 1, 1, 1, 1 }, st_map = 1, st_unmap = 1;
    double t0, t_flood = -1, dom0_max = 0;
    uint32_t left = U_FLOOD, seq;

    if (ring_open() < 0)
        goto out;
    if (xc_domain_create(xch, &ud, &cfg) < 0) {
        ud = DOMID_INVALID;
        fail("unprivileged: creating the guest: %s", strerror(errno));
        goto out;
    }
    /*
     * The vCPU must exist before its context is read: Xen 4.17's
     * XEN_DOMCTL_gethvmcontext dereferences vcpu[0] of a domain without
     * vCPUs (vpic_save(NULL)) and crashes.
     */
    if (xc_domain_max_vcpus(xch, ud, 1) < 0 ||
        xc_domain_setmaxmem(xch, ud, 64 * 4) < 0 ||
        xc_domain_populate_physmap_exact(xch, ud, 4, 0, 0, g) < 0) {
        fail("unprivileged: populating: %s", strerror(errno));
        goto out;
    }
    {
        xen_pfn_t pc = U_CODE >> 12, pd = U_DATA >> 12;

        code = xenforeignmemory_map(fmem, ud, PROT_READ | PROT_WRITE, 1, &pc,
                                    NULL);
        data = xenforeignmemory_map(fmem, ud, PROT_READ | PROT_WRITE, 1, &pd,
                                    NULL);
    }
    if (code == NULL || data == NULL) {
        fail("unprivileged: mapping the guest's pages: %s", strerror(errno));
        goto out;
    }
    {
        /* It asks for a real mapping of the test guest's page. */
        struct xen_iommu_op_map op = op_for(0x100);
        struct xen_iommu_op_invalidate inv = {
            .domid = (uint16_t)domid, .ioservid = ioservid,
            .mode = XEN_IOMMUOP_invalidate_iomap,
        };
        struct emit e = { code };
        uint32_t loop;

        op.bfn = bfn_base + 0xa000;
        memset(data, 0, 4096);
        memcpy(data + (U_MAP - U_DATA), &op, sizeof(op));
        memcpy(data + (U_UNMAP - U_DATA), &op, sizeof(op));
        memcpy(data + (U_INV - U_DATA), &inv, sizeof(inv));
        memset(code, 0xf4, 4096);               /* hlt everywhere else */
        hcall(&e, 0, 0, 0);                     /* kick */
        store_eax(&e, U_RES + 0);
        hcall(&e, XEN_IOMMUOP_map, U_MAP, 1);
        store_eax(&e, U_RES + 4);
        hcall(&e, XEN_IOMMUOP_unmap, U_UNMAP, 1);
        store_eax(&e, U_RES + 8);
        hcall(&e, XEN_IOMMUOP_flush, 0, 0);
        store_eax(&e, U_RES + 12);
        hcall(&e, XEN_IOMMUOP_set_invalidate, U_INV, 0);
        store_eax(&e, U_RES + 16);
        mov_ri(&e, 5, U_FLOOD);                 /* ebp: flood counter */
        loop = U_CODE + (uint32_t)(e.p - code);
        hcall(&e, XEN_IOMMUOP_flush, 0, 0);
        store_eax(&e, U_LAST);
        e8(&e, 0x4d);                           /* dec ebp */
        e8(&e, 0x89); e8(&e, 0x2d); e32(&e, U_COUNT);   /* mov [U_COUNT], ebp */
        e8(&e, 0x0f); e8(&e, 0x85);             /* jnz loop */
        e32(&e, loop - (U_CODE + (uint32_t)(e.p - code) + 4));
        e8(&e, 0xc7); e8(&e, 0x05); e32(&e, U_DONE); e32(&e, 0x600dd00d);
        /*
         * 1: cmp dword [U_GO], 0; pause; je 1b; jmp U_CODE2: optout-refused
         * gives it more code right after (a hlt would power it off or
         * block it for good).
         */
        e8(&e, 0x83); e8(&e, 0x3d); e32(&e, U_GO); e8(&e, 0);
        e8(&e, 0xf3); e8(&e, 0x90);
        e8(&e, 0x74); e8(&e, 0xf5);
        e8(&e, 0xe9);
        e32(&e, U_CODE2 - (U_CODE + (uint32_t)(e.p - code) + 4));
        *(volatile uint32_t *)(data + (U_COUNT - U_DATA)) = U_FLOOD;
    }
    if (guest_vcpu_start(xch, ud, U_CODE) < 0) {
        fail("unprivileged: setting the vCPU's context: %s", strerror(errno));
        goto out;
    }
    p0 = ev_prod();
    t0 = now();
    if (xc_domain_unpause(xch, ud) < 0) {
        fail("unprivileged: starting the guest: %s", strerror(errno));
        goto out;
    }
    /* dom0's own flush while the guest loops: its latency must not grow. */
    while (now() - t0 < 120) {
        double t = now();

        iommu_op_flush(&seq);
        if (now() - t > dom0_max)
            dom0_max = now() - t;
        if (*(volatile uint32_t *)(data + (U_DONE - U_DATA)) == 0x600dd00d) {
            t_flood = now() - t0;
            break;
        }
        usleep(10000);
    }
    p1 = ev_prod();
    memcpy(res, data + (U_RES - U_DATA), sizeof(res));
    memcpy(&st_map, data + (U_MAP - U_DATA) +
           offsetof(struct xen_iommu_op_map, status), 4);
    memcpy(&st_unmap, data + (U_UNMAP - U_DATA) +
           offsetof(struct xen_iommu_op_map, status), 4);
    left = *(volatile uint32_t *)(data + (U_COUNT - U_DATA));
    say("unprivileged: d%u: kick %d, map %d/%d, unmap %d/%d, flush %d, "
        "set_invalidate %d; %u of %u flushes looped in %.1f s (last %d); ring "
        "records meanwhile %u; dom0's flush at most %.1f ms", ud, res[0],
        res[1], st_map, res[2], st_unmap, res[3], res[4], U_FLOOD - left,
        U_FLOOD, t_flood, (int32_t)*(volatile uint32_t *)(data + (U_LAST - U_DATA)),
        p1 - p0, dom0_max * 1e3);
    if (t_flood < 0)
        fail("unprivileged: the guest did not finish its %u flushes in 120 s "
             "(%u left)", U_FLOOD, left);
    for (i = 0; i < 5; i++)
        if (i == 1 || i == 2 ? res[i] != 0 : res[i] != -EPERM)
            fail("unprivileged: %s returned %d, want %d", names[i], res[i],
                 i == 1 || i == 2 ? 0 : -EPERM);
    if (st_map != -EPERM || st_unmap != -EPERM)
        fail("unprivileged: map / unmap status %d / %d, want -EPERM", st_map,
             st_unmap);
    if (p1 != p0)
        fail("unprivileged: the shim posted %u ring records meanwhile", p1 - p0);
    if (dom0_max > 0.25)
        fail("unprivileged: a dom0 flush took %.1f ms during the flood",
             dom0_max * 1e3);
 out:
    scenario("unprivileged", f0, ",\"kick\":%d,\"map\":%d,\"unmap\":%d,"
             "\"flush\":%d,\"set_invalidate\":%d,\"flood_flushes\":%u,"
             "\"flood_s\":%.2f,\"ring_records_during_flood\":%u,"
             "\"dom0_flush_max_ms\":%.2f", res[0], st_map, st_unmap, res[3],
             res[4], U_FLOOD - left, t_flood, p1 - p0, dom0_max * 1e3);
    if (t_flood >= 0) {
        sc_optout_refused(ud, code, data);
    } else {
        int f1 = nfail;

        fail("optout-refused: not run: the unprivileged guest did not finish");
        scenario("optout-refused", f1, NULL);
    }
    if (code != NULL)
        xenforeignmemory_unmap(fmem, code, 1);
    if (data != NULL)
        xenforeignmemory_unmap(fmem, data, 1);
    if (ud != DOMID_INVALID)
        xc_domain_destroy(xch, ud);
}


#define POD_N     512       /* PoD entries */
#define POD_CACHE 64        /* pages in the PoD cache */
#define POD_GFN   0x100UL

/*
 * pod: a populate-on-demand guest (512 PoD entries, a 64-page cache).  The
 * emulator maps a PoD gfn (which populates it from the cache), then the
 * guest gives that gfn back while entries outnumber the cache, so
 * p2m_pod_decrease_reservation() wants to steal the page for the cache,
 * whence it would reappear at another gfn while the emulator still maps
 * it.  The shim must keep it out of the cache: the page is held
 * (IOMAP_EV_PAGE_REMOVED) and the emulator gets its per-page invalidate.
 */
static void
sc_pod(const char *sock)
{
    int f0 = nfail, err = 0, got = 0, reused = 0;
    struct xen_domctl_createdomain cfg = {
        .flags = XEN_DOMCTL_CDF_hvm | XEN_DOMCTL_CDF_hap,
        .max_vcpus = 1,
        .max_evtchn_port = 63,
        .max_grant_frames = 1,
        .max_maptrack_frames = 0,
        .grant_opts = XEN_DOMCTL_GRANT_version(1),
        .arch = { .emulation_flags = XEN_X86_EMU_ALL & ~XEN_X86_EMU_VPCI },
    };
    uint32_t pd = DOMID_INVALID, p0;
    uint16_t sid = 0;
    int have_sid = 0;
    struct iomap_emu *ep = NULL;
    xen_pfn_t *g = calloc(POD_N, sizeof(*g));
    struct xen_iommu_op_map op, more[8];
    const struct iomap_event *rm;
    uint64_t tot = 0, cache = 0, entries = 0, mfn = 0;
    unsigned long i;
    double t0, t_inv = -1;
    long tp = 0;

    if (g == NULL || ring_open() < 0)
        goto out;
    if (xc_domain_create(xch, &pd, &cfg) < 0) {
        pd = DOMID_INVALID;
        fail("pod: creating the guest: %s", strerror(errno));
        goto out;
    }
    for (i = 0; i < POD_N; i++)
        g[i] = POD_GFN + i;
    if (xc_domain_setmaxmem(xch, pd, (POD_N + 256) * 4) < 0 ||
        xc_domain_populate_physmap_exact(xch, pd, POD_N, 0,
                                         XENMEMF_populate_on_demand, g) < 0 ||
        xc_domain_set_pod_target(xch, pd, POD_CACHE, &tot, &cache,
                                 &entries) < 0) {
        fail("pod: setting up PoD: %s", strerror(errno));
        goto out;
    }
    /*
     * Server ids count per target domain.  Here the emulator takes id 1
     * (the first, 0, stays unused), so that it differs from the test
     * guest's; two-guests covers two emulators with the same id.
     */
    if (xendevicemodel_create_ioreq_server(dmod, pd, HVM_IOREQSRV_BUFIOREQ_OFF,
                                           &sid) < 0 ||
        xendevicemodel_create_ioreq_server(dmod, pd, HVM_IOREQSRV_BUFIOREQ_OFF,
                                           &sid) < 0) {
        fail("pod: ioreq server: %s", strerror(errno));
        goto out;
    }
    have_sid = 1;
    ep = iomap_emu_open(sock, 0, (uint16_t)pd, sid,
                        IOMAP_EMU_CAP_INVALIDATE_PAGE, &err);
    if (ep == NULL) {
        fail("pod: registering with iomapd: %s", strerror(-err));
        goto out;
    }
    op = (struct xen_iommu_op_map){ .domid = (uint16_t)pd, .ioservid = sid,
                                    .gfn = POD_GFN, .bfn = bfn_base + 0xb000 };
    p0 = ev_prod();
    if (iommu_op_batch(XEN_IOMMUOP_map, &op, 1) < 0 || op.status) {
        fail("pod: map of a PoD gfn: %d", op.status);
        goto out;
    }
    {
        const struct iomap_event *mp = ev_find(p0, IOMAP_EV_MAP, 0, pd);

        mfn = mp ? mp->arg : 0;
    }
    xc_domain_get_pod_target(xch, pd, &tot, &cache, &entries);
    say("pod: d%u: gfn %#lx populated by the map (mfn %#llx); PoD cache %llu, "
        "entries %llu", pd, POD_GFN, (unsigned long long)mfn,
        (unsigned long long)cache, (unsigned long long)entries);
    p0 = ev_prod();
    tp = tot_pages(xch, pd);
    if (xc_domain_decrease_reservation_exact(xch, pd, 1, 0, g) < 0) {
        fail("pod: decrease_reservation: %s", strerror(errno));
        goto out;
    }
    rm = ev_find(p0, IOMAP_EV_PAGE_REMOVED, 0, pd);
    if (rm == NULL || rm->gfn != POD_GFN)
        fail("pod: no IOMAP_EV_PAGE_REMOVED for the mapped gfn: the page went "
             "into the PoD cache while mapped");
    /* Demand-populate more gfns: none may get the mapped page. */
    p0 = ev_prod();
    for (i = 0; i < 8; i++)
        more[i] = (struct xen_iommu_op_map){ .domid = (uint16_t)pd,
            .ioservid = sid, .gfn = POD_GFN + 1 + i,
            .bfn = bfn_base + 0xb001 + i };
    iommu_op_batch(XEN_IOMMUOP_map, more, 8);
    {
        uint32_t j, prod = ev_prod();

        for (j = ev_oldest(p0, prod); j != prod; j++) {
            const struct iomap_event *ev = ev_at(j);

            if (ev->type == IOMAP_EV_MAP && ev->domid == pd && ev->arg == mfn)
                reused = 1;
        }
    }
    if (reused)
        fail("pod: the mapped page reappeared at another gfn");
    iommu_op_batch(XEN_IOMMUOP_unmap, more, 8);
    t0 = now();
    while (!got && now() - t0 < 10) {
        struct pollfd pfd = { .fd = iomap_emu_fd(ep), .events = POLLIN };
        struct iomap_emu_req r;

        poll(&pfd, 1, 100);
        while (iomap_emu_next(ep, &r) > 0) {
            if (!r.global && r.domid == pd && r.gfn <= POD_GFN &&
                POD_GFN < r.gfn + r.nr) {
                got = 1;
                t_inv = now() - t0;
                iommu_op_batch(XEN_IOMMUOP_unmap, &op, 1);
            }
            iomap_emu_done(ep, &r);
        }
    }
    if (!got) {
        fail("pod: no per-page invalidate for the removed PoD gfn");
        iommu_op_batch(XEN_IOMMUOP_unmap, &op, 1);
    }
    {
        uint32_t seq;

        iommu_op_flush(&seq);
    }
    /*
     * Wait for iomapd's RELEASE before the guest goes: the shim refuses a
     * release that arrives after the domain's destruction dropped the hold.
     */
    {
        double t1 = now();

        while (tot_pages(xch, pd) >= tp && now() - t1 < 10)
            usleep(1000);
        if (tot_pages(xch, pd) >= tp)
            fail("pod: the held page was not released after the unmap");
    }
    say("pod: removal %s, %s", rm ? "held the page" : "did not hold the page",
        got ? "the emulator was invalidated" : "no invalidate");
 out:
    if (ep != NULL)
        iomap_emu_close(ep);
    if (have_sid)
        xendevicemodel_destroy_ioreq_server(dmod, pd, sid);
    if (pd != DOMID_INVALID)
        xc_domain_destroy(xch, pd);
    free(g);
    scenario("pod", f0, ",\"pod_entries\":%d,\"pod_cache\":%d,"
             "\"invalidate_ms\":%.1f,\"page_reused\":%s", POD_N, POD_CACHE,
             t_inv * 1e3, reused ? "true" : "false");
}

#define TG_N   4            /* pages of the second guest the emulator maps */
#define TG_GFN 0x100UL

/*
 * Wait up to 10 s for an invalidate of (dom, gfn) on want; the other
 * emulator must get nothing about dom meanwhile.  The page is unmapped
 * (op) before the request is answered, as an emulator does.  Returns the
 * milliseconds it took, -1 if it never came; *stray counts requests about
 * dom that reached the other emulator.
 */
static double
tg_wait(struct iomap_emu *want, struct iomap_emu *other, uint32_t dom,
        uint64_t gfn, struct xen_iommu_op_map *op, unsigned *stray)
{
    double t0 = now(), t = -1;
    struct iomap_emu_req r;

    while (now() - t0 < 10 && t < 0) {
        struct pollfd pfd[2] = { { .fd = iomap_emu_fd(want), .events = POLLIN },
                                 { .fd = iomap_emu_fd(other), .events = POLLIN } };

        poll(pfd, 2, 100);
        while (iomap_emu_next(want, &r) > 0) {
            if (!r.global && r.domid == dom && r.gfn <= gfn &&
                gfn < r.gfn + r.nr) {
                t = now() - t0;
                iommu_op_batch(XEN_IOMMUOP_unmap, op, 1);
            }
            iomap_emu_done(want, &r);
        }
        while (iomap_emu_next(other, &r) > 0) {
            if (r.global || r.domid == dom)
                (*stray)++;
            iomap_emu_done(other, &r);
        }
    }
    /* A stray request may trail the right one a little. */
    t0 = now();
    while (now() - t0 < 0.3) {
        struct pollfd pfd = { .fd = iomap_emu_fd(other), .events = POLLIN };

        poll(&pfd, 1, 50);
        while (iomap_emu_next(other, &r) > 0) {
            if (r.global || r.domid == dom)
                (*stray)++;
            iomap_emu_done(other, &r);
        }
    }
    return t < 0 ? -1 : t * 1e3;
}

/*
 * two-guests (issue 14): a second guest whose emulator, also in dom0, has
 * the SAME ioreq server id as the test guest's (Xen numbers servers per
 * target).  Both register with iomapd; each gets the invalidates of its
 * own guest only; the second server's death force-unmaps its mappings and
 * none of the test guest's.
 */
static void
sc_two_guests(const char *sock, struct iomap_emu *e)
{
    int f0 = nfail, err = 0, nsid = 0, i;
    struct xen_domctl_createdomain cfg = {
        .flags = XEN_DOMCTL_CDF_hvm | XEN_DOMCTL_CDF_hap,
        .max_vcpus = 1,
        .max_evtchn_port = 63,
        .max_grant_frames = 1,
        .max_maptrack_frames = 0,
        .grant_opts = XEN_DOMCTL_GRANT_version(1),
        .arch = { .emulation_flags = XEN_X86_EMU_ALL & ~XEN_X86_EMU_VPCI },
    };
    uint32_t d2 = DOMID_INVALID, p0;
    uint16_t sids[8], sid2 = 0xffff;
    struct iomap_emu *e2 = NULL;
    xen_pfn_t g2[TG_N], g1[2];
    struct xen_iommu_op_map ops2[TG_N], ops1[2];
    unsigned stray2 = 0, stray1 = 0, forced2 = 0, forced1 = 0;
    double ms2 = -1, ms1 = -1, t0;
    uint32_t seq;

    if (ring_open() < 0)
        goto out;
    if (xc_domain_create(xch, &d2, &cfg) < 0) {
        d2 = DOMID_INVALID;
        fail("two-guests: creating the second guest: %s", strerror(errno));
        goto out;
    }
    for (i = 0; i < TG_N; i++)
        g2[i] = TG_GFN + i;
    if (xc_domain_setmaxmem(xch, d2, 1024) < 0 ||
        xc_domain_populate_physmap_exact(xch, d2, TG_N, 0, 0, g2) < 0) {
        fail("two-guests: populating d%u: %s", d2, strerror(errno));
        goto out;
    }
    /* Servers of d2 until one has the test guest's server's id. */
    while (nsid < 8 && (nsid == 0 || sids[nsid - 1] < ioservid)) {
        if (xendevicemodel_create_ioreq_server(dmod, d2,
                                               HVM_IOREQSRV_BUFIOREQ_OFF,
                                               &sids[nsid]) < 0) {
            fail("two-guests: ioreq server of d%u: %s", d2, strerror(errno));
            goto out;
        }
        nsid++;
    }
    sid2 = sids[nsid - 1];
    if (sid2 != ioservid) {
        fail("two-guests: d%u's server got id %u, not %u", d2, sid2, ioservid);
        goto out;
    }
    say("two-guests: d%u's emulator is 0:%u:%u, the test guest's 0:%u:%u",
        d2, d2, sid2, domid, ioservid);
    e2 = iomap_emu_open(sock, 0, (uint16_t)d2, sid2,
                        IOMAP_EMU_CAP_INVALIDATE_PAGE, &err);
    if (e2 == NULL) {
        fail("two-guests: registering 0:%u:%u next to 0:%u:%u: %s", d2, sid2,
             domid, ioservid, strerror(-err));
        goto out;
    }
    for (i = 0; i < TG_N; i++)
        ops2[i] = (struct xen_iommu_op_map){ .domid = (uint16_t)d2,
            .ioservid = sid2, .gfn = TG_GFN + i, .bfn = bfn_base + 0xe000 + i };
    if (iommu_op_batch(XEN_IOMMUOP_map, ops2, TG_N) < 0 || ops2[0].status ||
        ops2[TG_N - 1].status) {
        fail("two-guests: map of d%u's pages: %d", d2, ops2[0].status);
        goto out;
    }
    if (populate_map(0xe100, 2, bfn_base + 0xe100, g1, ops1) < 0)
        goto out;

    /* Each emulator gets the invalidate of its own guest only. */
    if (xc_domain_decrease_reservation_exact(xch, d2, 1, 0, g2) < 0)
        fail("two-guests: decrease_reservation d%u: %s", d2, strerror(errno));
    else
        ms2 = tg_wait(e2, e, d2, TG_GFN, &ops2[0], &stray2);
    if (xc_domain_decrease_reservation_exact(xch, domid, 1, 0, g1) < 0)
        fail("two-guests: decrease_reservation d%u: %s", domid,
             strerror(errno));
    else
        ms1 = tg_wait(e, e2, domid, g1[0], &ops1[0], &stray1);
    iommu_op_flush(&seq);
    /*
     * iomapd releases d2's held page once the flush is done; wait for it
     * before d2 goes (a RELEASE after the destruction would be refused).
     */
    t0 = now();
    while (tot_pages(xch, d2) > TG_N - 1 && now() - t0 < 10)
        usleep(1000);
    if (tot_pages(xch, d2) > TG_N - 1)
        fail("two-guests: d%u's removed page was not released", d2);
    say("two-guests: invalidates %.1f ms (d%u) and %.1f ms (d%u); %u and %u "
        "reached the other emulator", ms2, d2, ms1, domid, stray2, stray1);
    if (ms2 < 0)
        fail("two-guests: d%u's emulator got no invalidate for its page", d2);
    if (ms1 < 0)
        fail("two-guests: d%u's emulator got no invalidate for its page",
             domid);
    if (stray2 || stray1)
        fail("two-guests: an emulator got the other guest's invalidates "
             "(%u, %u)", stray2, stray1);

    /* d2's server dies: only its own mappings go. */
    p0 = ev_prod();
    if (xendevicemodel_destroy_ioreq_server(dmod, d2, sid2) < 0) {
        fail("two-guests: destroying 0:%u:%u: %s", d2, sid2, strerror(errno));
        goto out;
    }
    nsid--;
    t0 = now();
    while (now() - t0 < 10 && forced2 < TG_N - 1) {
        forced2 = ev_count(p0, IOMAP_EV_UNMAP, IOMAP_F_FORCED, d2);
        usleep(1000);
    }
    usleep(200 * 1000);
    forced2 = ev_count(p0, IOMAP_EV_UNMAP, IOMAP_F_FORCED, d2);
    forced1 = ev_count(p0, IOMAP_EV_UNMAP, IOMAP_F_FORCED, domid);
    say("two-guests: 0:%u:%u gone: %u of its %d mappings force-unmapped, %u "
        "of d%u's", d2, sid2, forced2, TG_N - 1, forced1, domid);
    if (forced2 != TG_N - 1)
        fail("two-guests: %u of d%u's %d mappings force-unmapped", forced2, d2,
             TG_N - 1);
    if (forced1)
        fail("two-guests: the death of 0:%u:%u force-unmapped %u of d%u's "
             "mappings", d2, sid2, forced1, domid);
    /* The test guest's other mapping is still its emulator's to unmap. */
    if (iommu_op_batch(XEN_IOMMUOP_unmap, &ops1[1], 1) < 0 || ops1[1].status)
        fail("two-guests: d%u's mapping is gone (unmap: %d)", domid,
             ops1[1].status);
    iommu_op_flush(&seq);
 out:
    if (e2 != NULL)
        iomap_emu_close(e2);
    while (nsid > 0)
        xendevicemodel_destroy_ioreq_server(dmod, d2, sids[--nsid]);
    if (d2 != DOMID_INVALID)
        xc_domain_destroy(xch, d2);
    scenario("two-guests", f0, ",\"ioservid\":%u,\"invalidate_ms\":[%.1f,%.1f],"
             "\"stray_invalidates\":%u,\"force_unmapped\":%u,"
             "\"other_force_unmapped\":%u", sid2, ms2, ms1, stray1 + stray2,
             forced2, forced1);
}

static void
ring_close(void)
{
    if (ring != NULL)
        xenforeignmemory_unmap_resource(fmem, ring_res);
    ring = NULL;
    evring = NULL;
    ring_res = NULL;
}

#define GONE2_N 4

/*
 * daemon-gone: iomapd dies (SIGKILL, no restart) while it holds removed
 * pages that nothing maps any more.  Xen notices that nobody maps the ring
 * and releases them itself within a few seconds, so the guest can have
 * them back; a map is refused (-ENOTCONN) until a daemon attaches again.
 * Then a new iomapd is started for what follows.
 */
static void
sc_daemon_gone(const char *sock, struct iomap_emu **e)
{
    int f0 = nfail, err = 0;
    xen_pfn_t g[GONE2_N + 1];
    struct xen_iommu_op_map ops[GONE2_N + 1], extra;
    long t0, t_rm;
    double t_kill, t_rel = -1;
    uint32_t seq;
    int rc_map = 1, removed_last = 0;
    long t_last = 0;
    double t_last_rel = -1;
    pid_t pid;

    ring_close();   /* our own mapping of the ring would keep it "mapped" */
    if (populate_map(0xc000, GONE2_N + 1, bfn_base + 0xc000, g, ops) < 0)
        goto out;
    t0 = tot_pages(xch, domid);
    if (daemon_signal(SIGSTOP) < 0)
        goto out;
    if (xc_domain_decrease_reservation_exact(xch, domid, GONE2_N, 0, g) < 0 ||
        unmap_all(ops, GONE2_N) < 0) {
        fail("daemon-gone: removal / unmap: %s", strerror(errno));
        daemon_signal(SIGCONT);
        goto out;
    }
    iommu_op_flush(&seq);
    usleep(200 * 1000);
    t_rm = tot_pages(xch, domid);
    if (t_rm != t0)
        fail("daemon-gone: pages released with the daemon stopped");
    pid = iomapd_pid();
    t_kill = now();
    daemon_signal(SIGKILL);
    kill(pid, SIGCONT);
    if (wait_tot(t0 - GONE2_N, 10) < 0)
        fail("daemon-gone: the %d held pages were not released 10 s after "
             "the daemon died (tot_pages %ld, want %ld)", GONE2_N,
             tot_pages(xch, domid), t0 - GONE2_N);
    else
        t_rel = now() - t_kill;
    extra = ops[GONE2_N];
    extra.gfn = GFN_BASE + 0xc000 + GONE2_N;
    extra.bfn = bfn_base + 0xd000;
    rc_map = iommu_op_batch(XEN_IOMMUOP_map, &extra, 1);
    if (rc_map != -ENOTCONN) {
        fail("daemon-gone: a map without a daemon gave %d, want -ENOTCONN",
             rc_map);
        if (rc_map == 0 && extra.status == 0)
            iommu_op_batch(XEN_IOMMUOP_unmap, &extra, 1);
    }
    say("daemon-gone: daemon killed with %d held, unmapped, flushed pages: "
        "Xen released them %.1f ms later; a map then: %d", GONE2_N,
        t_rel * 1e3, rc_map);
    /*
     * The last mapping still works without a daemon.  Its page is removed
     * now, while mapped: Xen holds it, with its watch timer stopped (the
     * held list was empty).  Once unmapped and flushed it must be
     * released all the same, not kept until a daemon attaches.
     */
    t_last = tot_pages(xch, domid);
    if (xc_domain_decrease_reservation_exact(xch, domid, 1, 0, &g[GONE2_N]) < 0) {
        fail("daemon-gone: removal of the mapped page: %s", strerror(errno));
    } else {
        removed_last = 1;
        usleep(1500 * 1000);
        if (tot_pages(xch, domid) != t_last)
            fail("daemon-gone: a removed page still mapped was released");
    }
    unmap_all(&ops[GONE2_N], 1);
    iommu_op_flush(&seq);
    if (removed_last) {
        double t = wait_tot(t_last - 1, 10);

        if (t < 0)
            fail("daemon-gone: a page removed without a daemon was not released "
                 "10 s after its unmap and flush (tot_pages %ld, want %ld)",
                 tot_pages(xch, domid), t_last - 1);
        else
            t_last_rel = t;
    }
 out:
    if (system("iomapd-ctl start /tmp/iomapd-g.log && "
               "iomapd-ctl resync /tmp/iomapd-g.log >/dev/null") != 0)
        fail("daemon-gone: a new iomapd did not start");
    iomap_emu_close(*e);
    *e = iomap_emu_open(sock, 0, (uint16_t)domid, ioservid,
                        IOMAP_EMU_CAP_INVALIDATE_PAGE, &err);
    if (*e == NULL)
        fail("daemon-gone: registering with the new iomapd: %s", strerror(-err));
    if (!removed_last)
        xc_domain_decrease_reservation_exact(xch, domid, 1, 0, &g[GONE2_N]);
    scenario("daemon-gone", f0, ",\"held\":%d,\"released_ms_after_kill\":%.1f,"
             "\"map_without_daemon\":%d,\"removed_without_daemon_released_ms\":%.1f",
             GONE2_N, t_rel * 1e3, rc_map, t_last_rel * 1e3);
}

/* Does Xen's console ring contain text? */
static int
xen_console_has(const char *text)
{
    static char buf[1 << 20];
    unsigned int n = sizeof(buf) - 1;

    if (xc_readconsolering(xch, buf, &n, 0, 0, NULL) < 0)
        return 0;
    buf[n] = 0;
    return strstr(buf, text) != NULL;
}

#define ITE_N 8

/* IOMAP_EV_CMD_RESULT records of RELEASE commands answered rc since from. */
static unsigned
release_results(uint32_t from, int rc)
{
    uint32_t prod = ev_prod(), i;
    unsigned n = 0;

    for (i = ev_oldest(from, prod); i != prod; i++) {
        const struct iomap_event *ev = ev_at(i);

        if (ev->type == IOMAP_EV_CMD_RESULT &&
            ev->flags == IOMAP_CMD_RELEASE && (int32_t)ev->seq == rc)
            n++;
    }
    return n;
}

/*
 * ite (third boot, Xen booted with iomap_inject_ite=1 and an ATS device):
 * QEMU's VT-d never times out, so Xen's fault injection makes the first
 * asynchronous group look aborted by an Invalidation Time-out Error.  With
 * iomapd stopped, the emulator unmaps 8 pages (a 9th mapping keeps the
 * leaf table) and flushes: that flush must be reported failed
 * (IOMAP_EV_FLUSH_FAILED covering the 8 unmaps), the unit's ATS device
 * must go the way of a device-TLB flush time-out, and the 8 pages must
 * never be freed, not even after their removal from the guest and the
 * daemon's attempts to release them.
 */
static int
sc_ite(void)
{
    int f0 = nfail;
    xen_pfn_t g[ITE_N + 1];
    struct xen_iommu_op_map ops[ITE_N + 1];
    const struct iomap_event *ff = NULL;
    uint32_t p0, seq = 0;
    long t0 = -1, t1 = -1;
    double t;
    int timeout_path;
    unsigned eio = 0, busy = 0;

    if (ring_open() < 0 ||
        populate_map(0xe000, ITE_N + 1, bfn_base + 0xe000, g, ops) < 0)
        goto out;
    if (daemon_signal(SIGSTOP) < 0)
        goto out;
    p0 = ev_prod();
    if (unmap_all(ops, ITE_N) < 0) {
        daemon_signal(SIGCONT);
        goto out;
    }
    iommu_op_flush(&seq);
    for (t = now(); now() - t < 5 && ff == NULL; usleep(1000))
        ff = ev_find(p0, IOMAP_EV_FLUSH_FAILED, 0, DOMID_INVALID);
    t0 = tot_pages(xch, domid);
    if (xc_domain_decrease_reservation_exact(xch, domid, ITE_N, 0, g) < 0)
        fail("ite: decrease_reservation: %s", strerror(errno));
    daemon_signal(SIGCONT);
    /*
     * ABI 1.1: iomapd asks for another flush and then releases the held
     * pages; the shim answers -EIO (leaked), never -EBUSY, and frees none.
     */
    for (t = now(); now() - t < 5 && eio == 0; usleep(10000))
        eio = release_results(p0, -EIO);
    sleep(1);
    eio = release_results(p0, -EIO);
    busy = release_results(p0, -EBUSY);
    t1 = tot_pages(xch, domid);
    timeout_path = xen_console_has("ATS device") &&
                   xen_console_has("flush failed");
    say("ite: flush %u: %s (nr %u, errno %llu); ATS time-out path: %s; "
        "tot_pages %ld -> %ld after the removal and iomapd's releases", seq,
        ff ? "IOMAP_EV_FLUSH_FAILED" : "no failure reported",
        ff ? ff->nr : 0, ff ? (unsigned long long)ff->arg : 0ULL,
        timeout_path ? "yes" : "no", t0, t1);
    if (ff == NULL || (int32_t)(ff->seq - seq) < 0)
        fail("ite: no IOMAP_EV_FLUSH_FAILED covering flush %u", seq);
    else if (ff->nr < ITE_N)
        fail("ite: the failed flush leaked %u unmaps, want %d", ff->nr, ITE_N);
    if (!xen_console_has("injecting an ITE"))
        fail("ite: Xen did not inject the ITE (booted without "
             "iomap_inject_ite=1?)");
    if (!timeout_path)
        fail("ite: the ATS device did not go through the device-TLB flush "
             "time-out path");
    if (t1 != t0)
        fail("ite: pages covered by the failed flush were freed (tot_pages "
             "%ld -> %ld)", t0, t1);
    if (eio == 0)
        fail("ite: no RELEASE of a leaked page answered -EIO (ABI 1.1)");
    if (busy)
        fail("ite: %u RELEASE(s) answered -EBUSY", busy);
 out:
    scenario("ite", f0, ",\"flush_seq\":%u,\"failed_seq\":%u,\"leaked\":%u,"
             "\"tot_pages_before\":%ld,\"tot_pages_after\":%ld,"
             "\"release_eio\":%u,\"release_ebusy\":%u", seq,
             ff ? ff->seq : 0, ff ? ff->nr : 0, t0, t1, eio, busy);
    return nfail == f0 ? 0 : 1;
}

/*
 * The newest number printed after tag in Xen's console ring (0 if none):
 * Xen numbers the asynchronous groups it logs under iomap_async_delay.
 */
static unsigned
xen_console_last(const char *tag)
{
    static char buf[1 << 20];
    unsigned int n = sizeof(buf) - 1;
    unsigned last = 0;
    const char *p;

    if (xc_readconsolering(xch, buf, &n, 0, 0, NULL) < 0)
        return 0;
    buf[n] = 0;
    for (p = strstr(buf, tag); p != NULL; p = strstr(p + 1, tag)) {
        unsigned long v = strtoul(p + strlen(tag), NULL, 10);

        if (v > last)
            last = (unsigned)v;
    }
    return last;
}

/* The newest IOMAP_EV_FLUSH_DONE since from covering seq, or NULL. */
static const struct iomap_event *
flush_done_covering(uint32_t from, uint32_t seq)
{
    const struct iomap_event *d = ev_find(from, IOMAP_EV_FLUSH_DONE, 0,
                                          DOMID_INVALID);

    return d != NULL && (int32_t)(d->seq - seq) >= 0 ? d : NULL;
}

#define ASYNC_N 8       /* unmaps covered by the first group */
#define ASYNC_K 16      /* flushes issued while it is outstanding */
#define ASYNC_TAG "iomap async group #"

/*
 * async-flush (fourth boot, Xen booted with iomap_async_delay=MS): QEMU's
 * VT-d completes every invalidation at once, so Xen's test hook keeps each
 * asynchronous group outstanding for MS.  With iomapd stopped, the
 * emulator unmaps 8 pages and flushes (group 1), then maps, unmaps and
 * flushes one page 16 times while group 1 is outstanding, then unmaps the
 * only mapping of a leaf table, which the shim must flush synchronously
 * before returning.  Checked:
 *  - the cap: the 16 flushes queue no group of their own; they are
 *    coalesced into one, queued once group 1 completes (2 groups in all;
 *    without the cap, 17);
 *  - completion: FLUSH_DONE covers flush 1 only once its group completed
 *    (not before half the delay), and the coalesced flushes complete too;
 *  - the synchronous flush of the freed table runs while the group is
 *    outstanding, and does not wait for it.
 */
static void
sc_async_flush(unsigned delay_ms)
{
    int f0 = nfail;
    xen_pfn_t g[ASYNC_N + 1 + ASYNC_K + 1];
    struct xen_iommu_op_map ops[ASYNC_N + 1 + ASYNC_K + 1];
    unsigned long k, pt_bfn = (bfn_base + 0x10000 + 511) & ~511UL;
    uint32_t p0, seq1 = 0, seq = 0, pseq;
    unsigned groups0, groups = 0;
    const struct iomap_event *fl;
    double t1 = 0, t_done1 = -1, t_done = -1, t_sync = -1, t;
    int stopped = 0, sync_flushed = 0, done_early = 0;

    if (ring_open() < 0 ||
        populate_map(0x2000, ASYNC_N + 1, bfn_base + 0x2000, g, ops) < 0)
        goto out;
    for (k = 0; k <= ASYNC_K; k++)
        g[ASYNC_N + 1 + k] = GFN_BASE + 0x2100 + k;
    if (xc_domain_populate_physmap_exact(xch, domid, ASYNC_K + 1, 0, 0,
                                         g + ASYNC_N + 1) < 0) {
        fail("async-flush: populating: %s", strerror(errno));
        goto out;
    }
    if (daemon_signal(SIGSTOP) < 0)
        goto out;
    stopped = 1;
    groups0 = xen_console_last(ASYNC_TAG);
    p0 = ev_prod();

    /* Group 1: 8 unmaps (the 9th mapping keeps the leaf table). */
    if (unmap_all(ops, ASYNC_N) < 0)
        goto out;
    iommu_op_flush(&seq1);
    t1 = now();

    /* 16 more flushes, each covering an unmap, while group 1 waits. */
    for (k = 0; k < ASYNC_K; k++) {
        struct xen_iommu_op_map *op = &ops[ASYNC_N + 1 + k];

        *op = op_for(0x2100 + k);
        op->bfn = bfn_base + 0x2000 + ASYNC_N + 1 + k;
        if (iommu_op_batch(XEN_IOMMUOP_map, op, 1) < 0 || op->status ||
            unmap_all(op, 1) < 0) {
            fail("async-flush: map/unmap %lu: %s", k,
                 strerror(op->status ? -op->status : errno));
            goto out;
        }
        iommu_op_flush(&seq);
    }
    done_early = flush_done_covering(p0, seq1) != NULL;

    /* A table-freeing unmap: a synchronous flush behind the async group. */
    {
        struct xen_iommu_op_map *op = &ops[ASYNC_N + 1 + ASYNC_K];

        *op = op_for(0x2100 + ASYNC_K);
        op->bfn = pt_bfn;
        if (iommu_op_batch(XEN_IOMMUOP_map, op, 1) < 0 || op->status) {
            fail("async-flush: map at bfn %#lx: %s", pt_bfn,
                 strerror(op->status ? -op->status : errno));
            goto out;
        }
        pseq = ev_prod();
        t = now();
        if (unmap_all(op, 1) < 0)
            goto out;
        t_sync = now() - t;
        fl = ev_find(pseq, IOMAP_EV_FLUSH, 0, DOMID_INVALID);
        sync_flushed = fl != NULL && (int32_t)(fl->seq - seq) > 0;
        if (sync_flushed)
            seq = fl->seq;
    }
    if (now() - t1 < delay_ms / 2e3 && flush_done_covering(p0, seq1))
        done_early = 1;

    /* Completion: group 1, then the coalesced one. */
    for (t = now(); now() - t < 5.0 * delay_ms / 1e3; usleep(1000)) {
        if (t_done1 < 0 && flush_done_covering(p0, seq1))
            t_done1 = now() - t1;
        if (flush_done_covering(p0, seq)) {
            t_done = now() - t1;
            if (t_done1 < 0)
                t_done1 = t_done;
            break;
        }
    }
    groups = xen_console_last(ASYNC_TAG) - groups0;
    say("async-flush: delay %u ms; flush %u done after %.0f ms, the %d "
        "flushes made while it was outstanding (last %u) after %.0f ms, in "
        "%u asynchronous group(s); the table-freeing unmap took %.1f ms "
        "and %s", delay_ms, seq1, t_done1 * 1e3, ASYNC_K, seq, t_done * 1e3,
        groups, t_sync * 1e3,
        sync_flushed ? "flushed before returning" : "queued no flush");
    if (groups0 == 0 && groups == 0)
        fail("async-flush: Xen logged no asynchronous group (booted without "
             "iomap_async_delay, or built without CONFIG_IOMAP_TEST_HOOKS?)");
    else if (groups > 3)
        fail("async-flush: %u asynchronous groups for %d flushes made while "
             "one was outstanding: the queue is not capped", groups,
             ASYNC_K + 1);
    else if (groups < 2)
        fail("async-flush: the flushes made while a group was outstanding "
             "never got a group of their own");
    if (done_early || (t_done1 >= 0 && t_done1 < delay_ms / 2e3))
        fail("async-flush: flush %u reported done before its group "
             "completed (%.0f ms, delay %u ms)", seq1, t_done1 * 1e3,
             delay_ms);
    if (t_done1 < 0)
        fail("async-flush: flush %u never completed", seq1);
    if (t_done < 0)
        fail("async-flush: the coalesced flushes (up to %u) never completed",
             seq);
    if (!sync_flushed)
        fail("async-flush: the unmap that freed a leaf table returned "
             "without a flush");
    else if (t_sync > delay_ms / 2e3)
        fail("async-flush: the synchronous flush waited for the async group "
             "(%.0f ms)", t_sync * 1e3);
 out:
    if (stopped)
        daemon_signal(SIGCONT);
    scenario("async-flush", f0, ",\"delay_ms\":%u,\"flushes\":%d,"
             "\"async_groups\":%u,\"first_done_ms\":%.1f,"
             "\"coalesced_done_ms\":%.1f,\"sync_unmap_ms\":%.2f",
             delay_ms, ASYNC_K + 1, groups, t_done1 * 1e3, t_done * 1e3,
             t_sync * 1e3);
}

/*
 * deferred-cap (fourth boot, Xen booted with iomap_max_maps=CAP): with
 * iomapd stopped, the emulator maps and unmaps one page over and over
 * without flushing.  The unmapped records wait for a flush, and each costs
 * Xen heap: they count against the per-emulator cap, so a map must be
 * refused (-ENOSPC) within CAP rounds, and work again once a flush has
 * completed.  Without the count, the loop runs on (here up to 4 CAP).
 */
static void
sc_deferred_cap(unsigned cap)
{
    int f0 = nfail;
    xen_pfn_t g[2];
    struct xen_iommu_op_map op, anchor[2];
    const struct iomap_event *d = NULL;
    unsigned rounds = 0, limit = 4 * cap;
    int rc = 0, stopped = 0, again = 1;
    uint32_t p0, seq = 0;
    unsigned long bfn = (bfn_base + 0x3000 + 511) & ~511UL;
    double t;

    /*
     * A live mapping in the same leaf table (the anchor), so that no unmap
     * empties the table: that would flush synchronously, and the records
     * would never pile up.
     */
    if (ring_open() < 0 || populate_map(0x2200, 2, bfn, g, anchor) < 0)
        goto out;
    if (unmap_all(anchor + 1, 1) < 0)
        goto out;
    if (daemon_signal(SIGSTOP) < 0)
        goto out;
    stopped = 1;
    p0 = ev_prod();
    for (rounds = 0; rounds < limit; rounds++) {
        op = op_for(0x2201);
        op.bfn = bfn + 1;
        if (iommu_op_batch(XEN_IOMMUOP_map, &op, 1) < 0) {
            fail("deferred-cap: map: %s", strerror(errno));
            goto out;
        }
        if ((rc = op.status) != 0)
            break;
        if (unmap_all(&op, 1) < 0)
            goto out;
    }
    iommu_op_flush(&seq);
    for (t = now(); now() - t < 10 && d == NULL; usleep(1000))
        d = flush_done_covering(p0, seq);
    op = op_for(0x2201);
    op.bfn = bfn + 1;
    again = iommu_op_batch(XEN_IOMMUOP_map, &op, 1) < 0 ? -errno : op.status;
    if (again == 0)
        unmap_all(&op, 1);
    say("deferred-cap: cap %u; %u map/unmap rounds without a flush, then a "
        "map: %s; after flush %u %s, a map: %s", cap, rounds,
        rc ? strerror(-rc) : "no refusal", seq,
        d ? "completed" : "did not complete", again ? strerror(-again) : "ok");
    if (rc != -ENOSPC)
        fail("deferred-cap: %u unflushed unmaps and no -ENOSPC (got %d): "
             "unmapped records are not bounded", rounds, rc);
    else if (rounds > cap)
        fail("deferred-cap: -ENOSPC only after %u rounds, cap %u", rounds,
             cap);
    if (d == NULL)
        fail("deferred-cap: flush %u did not complete", seq);
    else if (again != 0)
        fail("deferred-cap: a map after the flush completed: %d", again);
 out:
    if (stopped)
        daemon_signal(SIGCONT);
    scenario("deferred-cap", f0, ",\"cap\":%u,\"rounds_before_enospc\":%u,"
             "\"map_after_flush\":%d", cap, rounds, again);
}

/*
 * cpu-untracked (fourth boot, last; Xen booted with iomap_cpu_max=CAP):
 * dom0 maps CAP + 1 pages of the guest with xenforeignmemory_map().  Out
 * of records, Xen must still make every mapping (never refuse dom0's
 * foreign mappings: the toolstack and every QEMU depend on them), mark
 * dom0 untracked and from then on refuse its opt-out of the global
 * invalidate, since iomapd no longer knows all its mappings.
 */
static void
sc_cpu_untracked(unsigned cap)
{
    int f0 = nfail;
    unsigned n = cap + 1, i, mapped = 0;
    xen_pfn_t *g = calloc(n, sizeof(*g));
    int *errs = calloc(n, sizeof(*errs));
    void *p = NULL;
    int rc = 0, logged;

    if (g == NULL || errs == NULL || ring_open() < 0)
        goto out;
    for (i = 0; i < n; i++)
        g[i] = GFN_BASE + 0x2300 + i;
    if (xc_domain_populate_physmap_exact(xch, domid, n, 0, 0, g) < 0) {
        fail("cpu-untracked: populating: %s", strerror(errno));
        goto out;
    }
    p = xenforeignmemory_map(fmem, domid, PROT_READ, n, g, errs);
    if (p == NULL) {
        fail("cpu-untracked: xenforeignmemory_map of %u pages: %s", n,
             strerror(errno));
        goto out;
    }
    for (i = 0; i < n; i++)
        mapped += errs[i] == 0;
    logged = xen_console_has("foreign mappings no longer tracked");
    rc = iommu_op_set_invalidate(XEN_IOMMUOP_invalidate_iomap);
    say("cpu-untracked: cap %u: %u of %u foreign mappings made; Xen says "
        "untracked: %s; the opt-out then: %s", cap, mapped, n,
        logged ? "yes" : "no", rc ? strerror(-rc) : "accepted");
    if (mapped != n)
        fail("cpu-untracked: %u of %u foreign mappings refused past the cap",
             n - mapped, n);
    if (!logged)
        fail("cpu-untracked: Xen did not mark dom0 untracked past the cap");
    if (rc != -EOPNOTSUPP)
        fail("cpu-untracked: the opt-out of an untracked emulator domain "
             "gave %d, want -EOPNOTSUPP", rc);
 out:
    if (p != NULL)
        xenforeignmemory_unmap(fmem, p, n);
    free(g);
    free(errs);
    scenario("cpu-untracked", f0, ",\"cap\":%u,\"mapped\":%u,"
             "\"optout_rc\":%d", cap, mapped, rc);
}

/*
 * flush-irq: the completion of an asynchronous flush is signalled by
 * VT-d's invalidation completion event (an interrupt-flagged wait
 * descriptor ends each group), not only found by the poll.  The emulator
 * unmaps one page (another mapping keeps the leaf table) and flushes; the
 * flush must complete, and Xen must have logged that completions come by
 * interrupt.  The time to FLUSH_DONE is recorded, not asserted (the poll,
 * every 10 ms when the interrupt is there, is the fallback).
 */
static void
sc_flush_irq(void)
{
    int f0 = nfail;
    xen_pfn_t g[2];
    struct xen_iommu_op_map ops[2];
    uint32_t p0, seq = 0;
    double t0, t_done = -1;
    int irq;

    if (ring_open() < 0 ||
        populate_map(0x3900, 2, bfn_base + 0x180000, g, ops) < 0)
        goto out;
    p0 = ev_prod();
    if (unmap_all(ops + 1, 1) < 0)
        goto out;
    iommu_op_flush(&seq);
    for (t0 = now(); now() - t0 < 5; usleep(100))
        if (flush_done_covering(p0, seq) != NULL) {
            t_done = now() - t0;
            break;
        }
    irq = xen_console_has("async flush completion signalled by interrupt");
    say("flush-irq: flush %u done after %.2f ms; completion by interrupt: %s",
        seq, t_done * 1e3, irq ? "yes" : "no");
    if (t_done < 0)
        fail("flush-irq: flush %u did not complete", seq);
    if (!irq)
        fail("flush-irq: Xen never saw an invalidation completion interrupt "
             "(completion only polled)");
    if (unmap_all(ops, 1) == 0)
        iommu_op_flush(&seq);
 out:
    scenario("flush-irq", f0, ",\"done_ms\":%.2f", t_done * 1e3);
}

#define PCAP_N 257

/*
 * page-cap: one page mapped at 257 bfns.  A dump never splits the records
 * of one gfn across chunks, so Xen bounds the op mappings of a page (256,
 * all emulators together): the 257th map must get -ENOSPC.  Without the
 * bound, 4,100 mappings of one gfn would make every later dump fail.
 */
static void
sc_page_cap(void)
{
    int f0 = nfail;
    struct xen_iommu_op_map *ops = calloc(PCAP_N, sizeof(*ops));
    xen_pfn_t g[1] = { GFN_BASE + 0x3800 };
    unsigned long i, ok = 0;
    int last = 1;
    uint32_t seq = 0;

    if (ops == NULL)
        goto out;
    if (xc_domain_populate_physmap_exact(xch, domid, 1, 0, 0, g) < 0) {
        fail("page-cap: populating: %s", strerror(errno));
        goto out;
    }
    for (i = 0; i < PCAP_N; i++) {
        ops[i] = op_for(0x3800);
        ops[i].bfn = bfn_base + 0x100000 + i;   /* above 4 GiB: no MMIO hole */
    }
    if (iommu_op_batch(XEN_IOMMUOP_map, ops, PCAP_N) < 0) {
        fail("page-cap: map: %s", strerror(errno));
        goto out;
    }
    while (ok < PCAP_N && ops[ok].status == 0)
        ok++;
    last = ops[PCAP_N - 1].status;
    say("page-cap: one page mapped at %lu of %d bfns; the next map: %s", ok,
        PCAP_N, ok < PCAP_N ? strerror(-ops[ok].status) : "ok");
    if (ok == PCAP_N)
        fail("page-cap: %d mappings of one page accepted (the bound is 256)",
             PCAP_N);
    else if (ok != PCAP_N - 1 || last != -ENOSPC)
        fail("page-cap: %lu mappings accepted, then status %d (want 256, "
             "then -ENOSPC)", ok, ops[ok].status);
    if (ok && unmap_all(ops, ok) == 0)
        iommu_op_flush(&seq);
 out:
    free(ops);
    scenario("page-cap", f0, ",\"mapped\":%lu,\"next_status\":%d", ok, last);
}

#define GONE_N 8

/*
 * emulator-gone: the ioreq server of an emulator with live mappings is
 * destroyed.  The shim posts IOMAP_EV_EMULATOR_GONE; iomapd force-unmaps
 * the mappings (drain, not cancel); afterwards the pages leave the guest
 * at once on removal (no references left).
 */
static void
sc_emulator_gone(void)
{
    int f0 = nfail;
    xen_pfn_t g[GONE_N];
    struct xen_iommu_op_map ops[GONE_N];
    uint32_t p0;
    unsigned forced = 0;
    double t0, t_drain = -1;
    long tt;

    if (ring_open() < 0 || populate_map(0x6000, GONE_N, bfn_base + 0x6000, g,
                                        ops) < 0)
        goto out;
    p0 = ev_prod();
    t0 = now();
    if (xendevicemodel_destroy_ioreq_server(dmod, domid, ioservid) < 0) {
        fail("emulator-gone: destroying the ioreq server: %s", strerror(errno));
        goto out;
    }
    have_ioserv = 0;
    while (now() - t0 < 10) {
        forced = ev_count(p0, IOMAP_EV_UNMAP, IOMAP_F_FORCED, domid);
        if (forced >= GONE_N &&
            ev_find(p0, IOMAP_EV_EMULATOR_GONE, 0, domid) != NULL) {
            t_drain = now() - t0;
            break;
        }
        usleep(1000);
    }
    say("emulator-gone: %u of %d mappings force-unmapped after the ioreq "
        "server went (%.1f ms)", forced, GONE_N, t_drain * 1e3);
    if (ev_find(p0, IOMAP_EV_EMULATOR_GONE, 0, domid) == NULL)
        fail("emulator-gone: no IOMAP_EV_EMULATOR_GONE");
    if (forced < GONE_N)
        fail("emulator-gone: only %u of %d mappings force-unmapped", forced,
             GONE_N);
    usleep(100 * 1000);     /* the force-unmap's flush */
    tt = tot_pages(xch, domid);
    if (xc_domain_decrease_reservation_exact(xch, domid, GONE_N, 0, g) < 0)
        fail("emulator-gone: decrease_reservation: %s", strerror(errno));
    else if (wait_tot(tt - GONE_N, 5) < 0)
        fail("emulator-gone: drained pages not freed on removal");
 out:
    scenario("emulator-gone", f0, ",\"mappings\":%d,\"force_unmapped\":%u,"
             "\"drain_ms\":%.1f", GONE_N, forced, t_drain * 1e3);
}

int
main(int argc, char **argv)
{
    struct xen_domctl_createdomain cfg = {
        .flags = XEN_DOMCTL_CDF_hvm | XEN_DOMCTL_CDF_hap,
        .max_vcpus = 1,
        .max_evtchn_port = 1023,
        .max_grant_frames = 4,
        .max_maptrack_frames = 0,
        .grant_opts = XEN_DOMCTL_GRANT_version(1),
        .arch = { .emulation_flags = XEN_X86_EMU_ALL & ~XEN_X86_EMU_VPCI },
    };
    const char *sock;
    int nonstrict = 0, ite = 0, async = 0;
    char cmdline[1024] = "";
    unsigned long npages = 64, nmap = 32, max_page = 0, i;
    xen_pfn_t *gfns;
    struct xen_iommu_op_map *ops;
    struct iomap_emu *e;
    long f_boot, f_created, f_populated, f_mapped, f_removed, f_released, f_end;
    long t_populated, t_mapped, t_removed, t_released;
    unsigned long got = 0, nreq = 0, npend = 0;
    struct iomap_emu_req pend[MAXREQ];
    double t_dec, t_req = 0, t_unmap = 0, t_free = 0, waited;
    uint32_t seq = 0;
    int rc, err = 0;
    long p2_held = 0, early = 0;
    double p2_rel = 0;
    char p2_dump[160] = "";

    if (argc > 1 && strcmp(argv[1], "--nonstrict") == 0)
        nonstrict = 1, argc--, argv++;
    else if (argc > 1 && strcmp(argv[1], "--ite") == 0)
        ite = 1, argc--, argv++;
    else if (argc > 1 && strcmp(argv[1], "--async") == 0)
        async = 1, argc--, argv++;
    if (argc < 2) {
        fprintf(stderr, "usage: xen-e2e [--nonstrict | --ite | --async] EMU_SOCKET [NPAGES [NMAP]]\n");
        return 2;
    }
    sock = argv[1];
    if (argc > 2)
        npages = strtoul(argv[2], NULL, 0);
    if (argc > 3)
        nmap = strtoul(argv[3], NULL, 0);
    if (npages < 8 || npages > 4096 || nmap < 2 || nmap + 4 > npages) {
        fprintf(stderr, "xen-e2e: need 8 <= NPAGES <= 4096, 2 <= NMAP <= NPAGES - 4\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    xch = xc_interface_open(NULL, NULL, 0);
    xcall = xencall_open(NULL, 0);
    dmod = xendevicemodel_open(NULL, 0);
    if (xch == NULL || xcall == NULL || dmod == NULL) {
        fail("cannot open libxenctrl / libxencall / libxendevicemodel: %s",
             strerror(errno));
        return 1;
    }
    if (xc_maximum_ram_page(xch, &max_page) < 0) {
        fail("XENMEM_maximum_ram_page: %s", strerror(errno));
        return 1;
    }
    /* The op only takes bus frames above host RAM. */
    bfn_base = max_page + BFN_OFFSET;
    f_boot = free_pages(xch);
    {
        xen_commandline_t c;

        if (xc_version(xch, XENVER_commandline, &c) >= 0)
            snprintf(cmdline, sizeof(cmdline), "%s", c);
    }

    /* 1. The guest: an HVM domain with npages of RAM at GFN_BASE. */
    rc = xc_domain_create(xch, &domid, &cfg);
    if (rc < 0) {
        domid = DOMID_INVALID;
        fail("creating the HVM guest: %s (does Xen say \"HVM: SVM enabled\"?)",
             strerror(errno));
        return 1;
    }
    f_created = free_pages(xch);
    gfns = calloc(npages, sizeof(*gfns));
    ops = calloc(npages, sizeof(*ops));
    if (gfns == NULL || ops == NULL)
        return 1;
    for (i = 0; i < npages; i++)
        gfns[i] = GFN_BASE + i;
    if (xc_domain_setmaxmem(xch, domid, (npages + 1024) * 4) < 0 ||
        xc_domain_populate_physmap_exact(xch, domid, npages, 0, 0, gfns) < 0) {
        fail("populating d%u: %s", domid, strerror(errno));
        cleanup();
        return 1;
    }
    t_populated = tot_pages(xch, domid);
    f_populated = free_pages(xch);
    say("guest d%u: %lu pages at gfn %#lx, tot_pages %ld; host free %ld "
        "(boot %ld, after create %ld); max_page %#lx", domid, npages, GFN_BASE,
        t_populated, f_populated, f_boot, f_created, max_page);

    /* 2. The emulator: an ioreq server of the guest, registered with iomapd. */
    if (xendevicemodel_create_ioreq_server(dmod, domid, HVM_IOREQSRV_BUFIOREQ_OFF,
                                           &ioservid) < 0) {
        fail("creating an ioreq server on d%u: %s", domid, strerror(errno));
        cleanup();
        return 1;
    }
    have_ioserv = 1;
    e = iomap_emu_open(sock, 0, (uint16_t)domid, ioservid,
                       IOMAP_EMU_CAP_INVALIDATE_PAGE, &err);
    if (e == NULL) {
        fail("registering with iomapd at %s: %s", sock, strerror(-err));
        cleanup();
        return 1;
    }
    rc = iommu_op_set_invalidate(XEN_IOMMUOP_invalidate_iomap);
    dom0_optout_rc = rc;
    if (rc < 0)
        fail("XEN_IOMMUOP_set_invalidate: %s", strerror(-rc));
    say("emulator 0:%u registered with iomapd, per-page invalidation on",
        ioservid);

    /* ite, third boot (iomap_inject_ite=1): the guest stays, leaked. */
    if (ite)
        return sc_ite();

    /* async-flush, fourth boot (iomap_async_delay=MS on Xen's line). */
    if (async) {
        const char *d = strstr(cmdline, "iomap_async_delay=");
        unsigned ms = d ? (unsigned)strtoul(d + 18, NULL, 10) : 0;

        if (ms == 0) {
            fail("async-flush: Xen's command line \"%s\" has no "
                 "iomap_async_delay=MS", cmdline);
            scenario("async-flush", nfail - 1, NULL);
            return 1;
        }
        sc_async_flush(ms);
        d = strstr(cmdline, "iomap_max_maps=");
        ms = d ? (unsigned)strtoul(d + 15, NULL, 10) : 0;
        if (ms == 0)
            fail("deferred-cap: Xen's command line \"%s\" has no "
                 "iomap_max_maps=N", cmdline);
        else
            sc_deferred_cap(ms);
        d = strstr(cmdline, "iomap_cpu_max=");
        ms = d ? (unsigned)strtoul(d + 14, NULL, 10) : 0;
        if (ms == 0)
            fail("cpu-untracked: Xen's command line \"%s\" has no "
                 "iomap_cpu_max=N", cmdline);
        else
            sc_cpu_untracked(ms);   /* last: dom0 stays untracked */
        return failed;
    }

    /*
     * strict-dom0, second boot (without dom0-iommu=strict): dom0's IOMMU
     * maps all of host RAM 1:1, so the shim must refuse the op.
     */
    if (nonstrict) {
        int f0 = nfail;

        ops[0] = op_for(0);
        rc = iommu_op_batch(XEN_IOMMUOP_map, ops, 1);
        say("non-strict dom0 (Xen command line \"%s\"): map: %d, status %d",
            cmdline, rc, ops[0].status);
        if (strstr(cmdline, "dom0-iommu=strict") != NULL)
            fail("strict-dom0: this boot was meant to be non-strict");
        if (rc != 0 || ops[0].status != -EOPNOTSUPP) {
            fail("strict-dom0: a non-strict dom0's map gave %d/%d, want "
                 "status -EOPNOTSUPP", rc, ops[0].status);
            if (rc == 0 && ops[0].status == 0)
                iommu_op_batch(XEN_IOMMUOP_unmap, ops, 1);
        }
        scenario("strict-dom0-refused", f0, ",\"rc\":%d", ops[0].status);
        iomap_emu_close(e);
        cleanup();
        return nfail ? 1 : 0;
    }

    /*
     * The scenarios of issue 13 that leave the daemon and the emulator in
     * place, each on fresh gfns of the same guest, first: a failure of the
     * test below (which stops at its first failure) must not hide them.
     */
    sc_hold_until_flush();
    sc_pagetable_free();
    sc_unprivileged();
    sc_pod(sock);
    sc_overwrite(e);
    sc_foreign_map(e);
    sc_two_guests(sock, e);
    sc_page_cap();
    sc_flush_irq();
    t_populated = tot_pages(xch, domid);
    f_populated = free_pages(xch);

    /* 3. Map the first nmap pages, bfn = bfn_base + i. */
    for (i = 0; i < nmap; i++)
        ops[i] = op_for(i);
    rc = iommu_op_batch(XEN_IOMMUOP_map, ops, nmap);
    if (rc < 0) {
        fail("iommu_op map: %s", strerror(-rc));
        cleanup();
        return 1;
    }
    for (i = 0; i < nmap; i++)
        if (ops[i].status) {
            fail("map of gfn %#lx: %s", GFN_BASE + i, strerror(-ops[i].status));
            cleanup();
            return 1;
        }
    {
        int f0 = nfail;

        if (strstr(cmdline, "dom0-iommu=strict") == NULL)
            fail("strict-dom0: Xen's command line lacks dom0-iommu=strict: "
                 "\"%s\"", cmdline);
        scenario("strict-dom0-accepted", f0, ",\"mapped\":%lu", nmap);
    }
    t_mapped = tot_pages(xch, domid);
    f_mapped = free_pages(xch);
    say("mapped %lu pages at bfn %#lx: tot_pages %ld, host free %ld", nmap,
        bfn_base, t_mapped, f_mapped);
    if (t_mapped != t_populated)
        fail("tot_pages changed by mapping: %ld -> %ld", t_populated, t_mapped);

    /* A map of a bfn that is already mapped is refused too. */
    {
        struct xen_iommu_op_map op = op_for(nmap);

        op.bfn = bfn_base;
        rc = iommu_op_batch(XEN_IOMMUOP_map, &op, 1);
        if (rc != 0 || op.status != -EEXIST)
            fail("map over a mapped bfn: hypercall %d status %d (want -EEXIST)",
                 rc, op.status);
        else
            say("map over a mapped bfn refused: -EEXIST");
    }

    /* 4. I3: unmaps that match no map are refused and change nothing. */
    {
        struct xen_iommu_op_map op = op_for(nmap + 1);   /* never mapped */

        bad_unmap("a page the op did not map", op);
        op = op_for(0);
        op.gfn = GFN_BASE + nmap + 1;                    /* wrong gfn */
        bad_unmap("a mapped bfn with the wrong gfn", op);
        op = op_for(1);
        op.ioservid = (uint16_t)(ioservid + 1);          /* wrong server */
        bad_unmap("a mapped bfn for another ioreq server", op);
    }
    if (tot_pages(xch, domid) != t_mapped)
        fail("refused unmaps changed tot_pages");

    /* 5. The guest gives all npages back. */
    t_dec = now();
    if (xc_domain_decrease_reservation_exact(xch, domid, npages, 0, gfns) < 0) {
        fail("decrease_reservation: %s", strerror(errno));
        cleanup();
        return 1;
    }
    t_dec = now() - t_dec;
    t_removed = tot_pages(xch, domid);
    f_removed = free_pages(xch);
    say("decrease_reservation of %lu pages took %.1f ms: tot_pages %ld -> %ld, "
        "host free %ld -> %ld (%+ld)", npages, t_dec * 1e3, t_mapped, t_removed,
        f_mapped, f_removed, f_removed - f_mapped);
    if (t_removed != t_mapped - (long)(npages - nmap))
        fail("after decrease_reservation tot_pages is %ld, want %ld (the %lu "
             "unmapped pages freed, the %lu mapped ones held)", t_removed,
             t_mapped - (long)(npages - nmap), npages - nmap, nmap);

    /* 6. The per-page invalidate IOREQs: exactly the mapped gfns. */
    {
        unsigned char *seen = calloc(nmap, 1);
        double t0 = now();

        while (got < nmap && now() - t0 < 20) {
            struct pollfd pfd = { .fd = iomap_emu_fd(e), .events = POLLIN };
            struct iomap_emu_req r;

            poll(&pfd, 1, 100);
            while (iomap_emu_next(e, &r) > 0) {
                nreq++;
                if (t_req == 0)
                    t_req = now() - t0;
                if (r.global) {
                    fail("got a global invalidate, want per-page ones");
                    continue;
                }
                say("IOREQ invalidate d%u gfn %#llx nr %u", r.domid,
                    (unsigned long long)r.gfn, r.nr);
                for (uint64_t g = r.gfn; g < r.gfn + r.nr; g++) {
                    if (r.domid != domid || g < GFN_BASE || g >= GFN_BASE + nmap) {
                        fail("invalidate names d%u gfn %#llx, never mapped",
                             r.domid, (unsigned long long)g);
                        continue;
                    }
                    if (!seen[g - GFN_BASE]++)
                        got++;
                }
                /* Answer after our unmaps (below), as the library says. */
                if (npend < MAXREQ)
                    pend[npend++] = r;
            }
        }
        free(seen);
        if (got != nmap) {
            fail("invalidate IOREQs named %lu of the %lu mapped pages", got, nmap);
            cleanup();
            return 1;
        }
    }
    say("%lu IOREQ(s) naming all %lu mapped pages, first after %.1f ms", nreq,
        nmap, t_req * 1e3);

    /* I1: the pages stay held while they are mapped. */
    usleep(500 * 1000);
    if (tot_pages(xch, domid) != t_removed)
        fail("held pages were freed while still mapped: tot_pages %ld, want %ld",
             tot_pages(xch, domid), t_removed);
    else
        say("0.5 s later, still mapped: all %lu held (tot_pages %ld)", nmap,
            t_removed);

    /* 7. Unmap and flush; iomapd releases once the flush completed. */
    for (i = 0; i < nmap; i++)
        ops[i] = op_for(i);
    t_unmap = now();
    rc = iommu_op_batch(XEN_IOMMUOP_unmap, ops, nmap);
    for (i = 0; rc == 0 && i < nmap; i++)
        if (ops[i].status)
            rc = ops[i].status;
    if (rc) {
        fail("unmap: %s", strerror(-rc));
        cleanup();
        return 1;
    }
    /*
     * iomapd may already have asked the shim for a flush covering the
     * first unmaps (IOMAP_CMD_FLUSH) and released those pages: that is
     * allowed.  What is not is a release before any covering flush, which
     * the shim itself prevents (it refuses such a RELEASE with -EBUSY and
     * the daemon would then log a refused command).
     */
    early = t_removed - tot_pages(xch, domid);
    rc = iommu_op_flush(&seq);
    if (rc) {
        fail("flush: %s", strerror(-rc));
        cleanup();
        return 1;
    }
    for (i = 0; i < npend; i++)
        iomap_emu_done(e, &pend[i]);
    waited = wait_tot(t_removed - (long)nmap, 10);
    t_free = now() - t_unmap;
    if (waited < 0) {
        fail("held pages not freed 10 s after unmap + flush %u: tot_pages %ld, "
             "want %ld", seq, tot_pages(xch, domid), t_removed - (long)nmap);
        cleanup();
        return 1;
    }
    t_released = tot_pages(xch, domid);
    f_released = free_pages(xch);
    say("unmapped %lu (%ld already released when the unmap returned), flush "
        "seq %u; all freed %.1f ms after the unmap: tot_pages %ld, host free "
        "%ld (%+ld since the removal)", nmap, early, seq, t_free * 1e3,
        t_released, f_released, f_released - f_removed);

    /* I3 again: a second unmap of the same page is refused. */
    bad_unmap("a page already unmapped", op_for(0));

    scenario("remove-hold-release", 0, ",\"pages\":%lu,\"mapped\":%lu,"
             "\"held\":%ld,\"invalidate_ms\":%.1f,\"freed_ms_after_unmap\":%.1f",
             npages, nmap, t_mapped - t_removed, t_req * 1e3, t_free * 1e3);

    /* 8. Optionally: a daemon crash with pages in flight. */
    if (getenv("E2E_RESTART") != NULL && *getenv("E2E_RESTART")) {
        int f0 = nfail, chunks, watching;
        unsigned nemu;

        /* The dump is longer than the ring: tallied as it goes by. */
        watching = ring_open() == 0 && dump_watch_start(ev_prod()) == 0;
        if (!watching)
            fail("daemon-restart: cannot watch the ring");
        if (phase2(e, getenv("E2E_RESTART"), 16, &p2_held, &p2_rel, p2_dump,
                   sizeof(p2_dump)) < 0) {
            if (watching)
                dump_watch_stop("daemon-restart", &nemu);
            scenario("daemon-restart", f0, NULL);
            cleanup();
            return 1;
        }
        chunks = watching ? dump_watch_stop("daemon-restart", &nemu) : -1;
        if (chunks >= 0 && chunks < 2)
            fail("daemon-restart: %d dump chunk for %d mappings: one chunk "
                 "cannot carry them", chunks, P2_KEEP + P2_BULK_N * P2_BULK_PER);
        t_released = tot_pages(xch, domid) - P2_KEEP - P2_BULK_N;
        scenario("daemon-restart", f0, ",\"held\":%ld,\"released_ms\":%.1f,"
                 "\"dump_chunks\":%d,\"dump_emus\":%u",
                 p2_held, p2_rel * 1e3, chunks, nemu);
        /* The emulator registers with the new daemon. */
        iomap_emu_close(e);
        e = iomap_emu_open(sock, 0, (uint16_t)domid, ioservid,
                           IOMAP_EMU_CAP_INVALIDATE_PAGE, &err);
        if (e == NULL) {
            fail("registering with the new iomapd: %s", strerror(-err));
            cleanup();
            return 1;
        }
    }

    /* 9. The scenarios that end the daemon or the emulator come last. */
    sc_daemon_gone(sock, &e);
    sc_emulator_gone();

    /*
     * 10. destroy-live: a new ioreq server maps pages, then the guest is
     * destroyed with the mappings in place.  The domain must disappear (no
     * reference left behind) and every page come back.
     */
    {
        int f0 = nfail;
        xen_pfn_t g[8];
        struct xen_iommu_op_map dops[8];
        double t0 = now(), t_gone = -1;
        uint32_t dead = domid;

        if (xendevicemodel_create_ioreq_server(dmod, domid,
                                               HVM_IOREQSRV_BUFIOREQ_OFF,
                                               &ioservid) < 0)
            fail("destroy-live: a new ioreq server: %s", strerror(errno));
        else {
            have_ioserv = 1;
            if (populate_map(0x9000, 8, bfn_base + 0x9000, g, dops) == 0)
                say("destroy-live: 8 live mappings; destroying d%u", domid);
        }
        cleanup();
        while (now() - t0 < 10) {
            if (tot_pages(xch, dead) < 0) {
                t_gone = now() - t0;
                break;
            }
            usleep(1000);
        }
        if (t_gone < 0)
            fail("destroy-live: d%u still exists 10 s after its destruction "
                 "(a reference left behind)", dead);
        usleep(200 * 1000);
        f_end = free_pages(xch);
        if (labs(f_end - f_boot) > 8)
            fail("destroy-live: host free pages %ld at the end, %ld at the "
                 "start", f_end, f_boot);
        scenario("destroy-live", f0, ",\"mappings\":8,\"gone_ms\":%.1f,"
                 "\"free_pages_vs_boot\":%ld", t_gone * 1e3, f_end - f_boot);
    }

    say("guest destroyed: host free %ld (boot %ld, %+ld)", f_end, f_boot,
        f_end - f_boot);
    if (t_released != t_populated - (long)npages)
        fail("guest tot_pages %ld at the end, want %ld", t_released,
             t_populated - (long)npages);
    /*
     * Free pages are not exact (Xen allocates for itself in between: the
     * shim's records, radix nodes, the domain structures), so allow a
     * little slack; tot_pages above are exact.
     */
    if (labs((f_removed - f_mapped) - (long)(npages - nmap)) > 8 ||
        labs((f_released - f_removed) - (long)nmap) > 8)
        fail("host free pages moved by %+ld at removal and %+ld at release, "
             "want about %+ld and %+ld", f_removed - f_mapped,
             f_released - f_removed, (long)(npages - nmap), (long)nmap);
    if (labs(f_end - f_boot) > 8)
        fail("host free pages %ld at the end, %ld at the start", f_end, f_boot);
    iomap_emu_close(e);

    if (failed)
        return 1;
    if (p2_held)
        printf("PASS xen-e2e daemon restart: %ld removed pages held across "
               "SIGKILL of iomapd; the new one read the shim's dump (\"%s\"), "
               "force-unmapped the emulator's mappings of them and released "
               "them all in %.1f ms; it left the %u other mappings in place\n",
               p2_held, p2_dump, p2_rel * 1e3, P2_KEEP);
    printf("PASS xen-e2e: %lu pages, %lu mapped through iommu_op; "
           "decrease_reservation freed %ld at once and held %ld "
           "(tot_pages %ld -> %ld, free %+ld); %lu invalidate IOREQ(s) after "
           "%.1f ms; after unmap + flush seq %u the %lu held pages were freed "
           "in %.1f ms (tot_pages -> %ld, free %+ld); %u bad unmaps refused "
           "(-ENOENT); end: free pages %+ld vs boot\n",
           npages, nmap, t_mapped - t_removed, t_removed - t_released + 0L,
           t_mapped, t_removed, f_removed - f_mapped, nreq, t_req * 1e3, seq,
           nmap, t_free * 1e3, t_released, f_released - f_removed, n_refused,
           f_end - f_boot);
    return 0;
}
