/* SPDX-License-Identifier: MIT */
/*
 * qemu-mapcache: the patched QEMU 7.2 (ioreq/qemu) as the device model
 * of a running HVM guest on the patched Xen, with and without iomapd, in
 * one dom0 (check-xen's fifth boot, tests/xen-e2e/init E2E_MODE=qemu).
 *
 * Each run creates an HVM guest (8 MiB) whose one vCPU runs a few bytes
 * of 32-bit code written here (paging off; hypercalls by VMMCALL: Xen
 * runs on QEMU's emulated SVM), and starts QEMU with -xen-domid as its
 * device model, with an ISA debug console at port E_PORT.  The guest
 *
 *  A. writes 16 bytes from each of three buffers, in three 1 MiB mapcache
 *     buckets, to the debug console with REP OUTSB: Xen hands QEMU each
 *     string as a guest physical address, which QEMU reads through its
 *     mapcache, so the mapcache gets an entry per bucket;
 *  B. when told to, gives one page of the second buffer back to Xen
 *     itself (XENMEM_decrease_reservation, 32-bit ABI), timing the
 *     hypercall with RDTSC: in stock Xen the vCPU does not return to the
 *     guest before every device model has answered Xen's
 *     IOREQ_TYPE_INVALIDATE broadcast;
 *  C. writes the first and the third buffer again.
 *
 * Stock run (iomapd not running): QEMU cannot register, Xen broadcasts,
 * QEMU drops every unlocked entry (trace xen_invalidate_map_cache,
 * dropped_global) and maps buckets 1 and 3 again in C.
 * iomapd run (started between the two): QEMU registers and opts out of
 * the broadcast (trace xen_iomap_set_invalidate mode 1 rc 0); the shim
 * reports the removal of a page QEMU's mapcache maps (IOMAP_F_CPU),
 * iomapd sends QEMU a per-page invalidate, QEMU drops the one bucket
 * entry covering it (xen_invalidate_map_cache_range, dropped_range) and
 * keeps the other two (no new mapping in C); no global invalidate.
 * Both: the page is freed (the guest's tot_pages, Xen's free pages) once
 * QEMU dropped the entry that mapped it.
 *
 * Figures: E2E-SCENARIO qemu-mapcache with entries_dropped_{iomapd,stock}
 * and vcpu_blocked_us_{iomapd,stock} (the guest's hypercall time).
 *
 * usage: qemu-mapcache QEMU IOMAPD_START_COMMAND
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xenctrl.h>
#include <xenforeignmemory.h>
#include <xenstore.h>
#include <xen/hvm/save.h>

#include "tests/xen-e2e/guest.h"

#define G_MB        8               /* guest RAM, MiB */
#define G_CODE      0x1000u
#define G_DATA      0x2000u
#define D_READY     (G_DATA + 0x00)
#define D_GO        (G_DATA + 0x04)
#define D_RES       (G_DATA + 0x08)
#define D_T0        (G_DATA + 0x10)
#define D_T1        (G_DATA + 0x18)
#define D_DONE      (G_DATA + 0x20)
#define D_RESV      (G_DATA + 0x40) /* compat xen_memory_reservation */
#define D_EXT       (G_DATA + 0x80) /* its extent: one 32-bit gfn */
#define G_BUF(i)    (0x100000u * (i))   /* buffers in buckets 1, 2, 3 */
#define G_REMOVED   (G_BUF(2) >> 12)
#define E_PORT      0x402
#define E_LEN       16
#define MAGIC       0x600dd00du

static xc_interface *xch;
static xenforeignmemory_handle *fmem;
static struct xs_handle *xsh;
static int nfail;

static void
fail(const char *fmt, ...)
{
    va_list ap;

    printf("FAIL qemu-mapcache: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    nfail++;
}

static void
say(const char *fmt, ...)
{
    va_list ap;

    printf("E2E qemu-mapcache: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

static void
show(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[256];

    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        printf("E2E qemu-mapcache: %s: %s", path, line);
    if (f != NULL)
        fclose(f);
    fflush(stdout);
}

/* The guest's code: hand-assembled 32-bit flat code. */
static void movl_mi(struct emit *e, uint32_t a, uint32_t v)
{
    e8(e, 0xc7); e8(e, 0x05); e32(e, a); e32(e, v);
}
/* rdtsc; mov [a], eax; mov [a + 4], edx */
static void rdtsc_to(struct emit *e, uint32_t a)
{
    e8(e, 0x0f); e8(e, 0x31);
    e8(e, 0xa3); e32(e, a);
    e8(e, 0x89); e8(e, 0x15); e32(e, a + 4);
}
/* rep outsb: E_LEN bytes at buf to E_PORT */
static void outs(struct emit *e, uint32_t buf)
{
    mov_ri(e, 6, buf);
    mov_ri(e, 1, E_LEN);
    mov_ri(e, 2, E_PORT);
    e8(e, 0xf3); e8(e, 0x6e);
}

static void
write_code(unsigned char *code)
{
    struct emit e = { code };

    memset(code, 0xf4, 4096);
    e8(&e, 0xfc);                               /* cld */
    outs(&e, G_BUF(1));                         /* A */
    outs(&e, G_BUF(2));
    outs(&e, G_BUF(3));
    movl_mi(&e, D_READY, MAGIC);
    /* 1: cmp dword [D_GO], 0; pause; je 1b */
    e8(&e, 0x83); e8(&e, 0x3d); e32(&e, D_GO); e8(&e, 0);
    e8(&e, 0xf3); e8(&e, 0x90);
    e8(&e, 0x74); e8(&e, 0xf5);
    rdtsc_to(&e, D_T0);                         /* B */
    mov_ri(&e, 0, 12);                          /* __HYPERVISOR_memory_op */
    mov_ri(&e, 3, 1);                           /* XENMEM_decrease_reservation */
    mov_ri(&e, 1, D_RESV);
    vmmcall(&e);
    e8(&e, 0xa3); e32(&e, D_RES);               /* mov [D_RES], eax */
    rdtsc_to(&e, D_T1);
    outs(&e, G_BUF(1));                         /* C */
    outs(&e, G_BUF(3));
    movl_mi(&e, D_DONE, MAGIC);
    e8(&e, 0xf3); e8(&e, 0x90);                 /* 2: pause; jmp 2b */
    e8(&e, 0xeb); e8(&e, 0xfc);
}

/* What QEMU's trace (-trace ... -D file, log backend) says. */
struct qtrace {
    unsigned remaps;            /* xen_remap_bucket: entries created */
    unsigned ranges;            /* xen_invalidate_map_cache_range lines */
    unsigned globals;           /* xen_invalidate_map_cache lines */
    unsigned long long dropped_range, dropped_global;   /* last totals */
    unsigned long long range_addr;                      /* first range */
    int registered;             /* xen_iomap_register rc */
    int optout;                 /* xen_iomap_set_invalidate mode 1 rc */
};

/* Parse the trace file from byte off; returns the new end offset. */
static long
qtrace_read(const char *path, long off, struct qtrace *t)
{
    FILE *f = fopen(path, "r");
    char line[512];
    const char *p;

    memset(t, 0, sizeof(*t));
    t->registered = t->optout = 1;
    t->range_addr = ~0ULL;
    if (f == NULL)
        return off;
    fseek(f, off, SEEK_SET);
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long long a, r, g;
        unsigned d, s, m;
        int rc;

        if (strchr(line, '\n') == NULL)
            break;              /* partial line: read it next time */
        off = ftell(f);
        if (strstr(line, "xen_remap_bucket ") != NULL) {
            t->remaps++;
        } else if ((p = strstr(line, "xen_invalidate_map_cache_range ")) != NULL) {
            t->ranges++;
            if (sscanf(p, "xen_invalidate_map_cache_range 0x%llx size 0x%*x "
                       "dropped %*u deferred %*u kept %*u dropped_range %llu "
                       "dropped_global %llu", &a, &r, &g) == 3) {
                if (t->range_addr == ~0ULL)
                    t->range_addr = a;
                t->dropped_range = r;
                t->dropped_global = g;
            }
        } else if ((p = strstr(line, "xen_invalidate_map_cache ")) != NULL) {
            t->globals++;
            if (sscanf(p, "xen_invalidate_map_cache dropped %*u dropped_range "
                       "%llu dropped_global %llu", &r, &g) == 2) {
                t->dropped_range = r;
                t->dropped_global = g;
            }
        } else if ((p = strstr(line, "xen_iomap_register ")) != NULL) {
            if (sscanf(p, "xen_iomap_register domid %u ioservid %u rc %d",
                       &d, &s, &rc) == 3)
                t->registered = rc;
        } else if ((p = strstr(line, "xen_iomap_set_invalidate ")) != NULL) {
            if (sscanf(p, "xen_iomap_set_invalidate domid %u ioservid %u "
                       "mode %u rc %d", &d, &s, &m, &rc) == 4 && m == 1)
                t->optout = rc;
        }
    }
    fclose(f);
    return off;
}

struct run {
    const char *name;
    int started;                /* QEMU said it runs */
    int ok;                     /* the run got as far as the removal */
    unsigned entries;           /* mapcache entries before the removal */
    unsigned long long dropped; /* entries dropped by the removal */
    struct qtrace after;        /* what QEMU did from the removal on */
    unsigned long long blocked_us;
    int32_t res;
    long tot_before, tot_after;
    long free_before, free_after;
    double freed_ms;
    long console;               /* bytes QEMU's debug console got */
    int registered, optout;
};

static void
run_one(const char *qemu, struct run *R)
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
    uint32_t d = DOMID_INVALID;
    unsigned long npages = G_MB << 8, i;
    xen_pfn_t *gfns = NULL, pg[2] = { G_CODE >> 12, G_DATA >> 12 };
    unsigned char *p = NULL;
    volatile uint32_t *data;
    char tpath[64], cpath[64], lpath[64], dmpath[64], dom[16], mb[16];
    struct qtrace before;
    long off = 0;
    pid_t qpid = -1;
    double t0;
    uint32_t tsc_mode, khz = 0, inc;
    uint64_t ns, tsc0, tsc1;

    R->registered = R->optout = 1;
    R->tot_before = R->tot_after = R->free_before = R->free_after = -1;
    R->freed_ms = -1;
    R->res = 1;
    if (xc_domain_create(xch, &d, &cfg) < 0) {
        d = DOMID_INVALID;
        fail("%s: creating the guest: %s", R->name, strerror(errno));
        goto out;
    }
    gfns = calloc(npages, sizeof(*gfns));
    if (gfns == NULL)
        goto out;
    for (i = 0; i < npages; i++)
        gfns[i] = i;
    /* The vCPU first: gethvmcontext needs vcpu[0] (see xen-e2e.c). */
    if (xc_domain_max_vcpus(xch, d, 1) < 0 ||
        xc_domain_setmaxmem(xch, d, (npages + 256) * 4) < 0 ||
        xc_domain_populate_physmap_exact(xch, d, npages, 0, 0, gfns) < 0) {
        fail("%s: populating d%u: %s", R->name, d, strerror(errno));
        goto out;
    }
    /* Code, data, and the three buffers' first pages. */
    p = xenforeignmemory_map(fmem, d, PROT_READ | PROT_WRITE, 2, pg, NULL);
    if (p == NULL) {
        fail("%s: mapping d%u's code: %s", R->name, d, strerror(errno));
        goto out;
    }
    write_code(p);
    data = (volatile uint32_t *)(p + 4096);
    memset(p + 4096, 0, 4096);
    {
        uint32_t resv[5] = { D_EXT, 1, 0, 0, DOMID_SELF };
        uint32_t ext = G_REMOVED;

        memcpy(p + 4096 + (D_RESV - G_DATA), resv, sizeof(resv));
        memcpy(p + 4096 + (D_EXT - G_DATA), &ext, sizeof(ext));
    }
    for (i = 1; i <= 3; i++) {
        xen_pfn_t b = G_BUF(i) >> 12;
        char *q = xenforeignmemory_map(fmem, d, PROT_READ | PROT_WRITE, 1, &b,
                                       NULL);

        if (q == NULL) {
            fail("%s: mapping buffer %lu: %s", R->name, i, strerror(errno));
            goto out;
        }
        snprintf(q, E_LEN + 1, "bucket %lu %-6.6s\n", i, R->name);
        xenforeignmemory_unmap(fmem, q, 1);
    }
    if (guest_vcpu_start(xch, d, G_CODE) < 0) {
        fail("%s: setting d%u's vCPU: %s", R->name, d, strerror(errno));
        goto out;
    }

    /* QEMU, d's device model. */
    snprintf(tpath, sizeof(tpath), "/tmp/qemu-%s.trace", R->name);
    snprintf(cpath, sizeof(cpath), "/tmp/qemu-%s.console", R->name);
    snprintf(lpath, sizeof(lpath), "/tmp/qemu-%s.log", R->name);
    snprintf(dom, sizeof(dom), "%u", d);
    snprintf(mb, sizeof(mb), "%u", G_MB);
    unlink(tpath);
    unlink(cpath);
    qpid = fork();
    if (qpid == 0) {
        char chardev[96];
        int fd = open(lpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);

        snprintf(chardev, sizeof(chardev), "file,id=dc,path=%s", cpath);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(qemu, qemu, "-xen-domid", dom, "-machine", "xenfv", "-m", mb,
              "-nodefaults", "-no-user-config", "-display", "none",
              "-vga", "none", "-monitor", "none", "-serial", "none",
              "-chardev", chardev,
              "-device", "isa-debugcon,iobase=0x402,chardev=dc",
              "-trace", "xen_invalidate_map_cache*", "-trace", "xen_remap_bucket",
              "-trace", "xen_iomap_*", "-D", tpath, (char *)NULL);
        _exit(127);
    }
    if (qpid < 0) {
        fail("%s: fork: %s", R->name, strerror(errno));
        goto out;
    }
    snprintf(dmpath, sizeof(dmpath), "/local/domain/0/device-model/%u/state", d);
    t0 = now();
    for (;;) {
        unsigned int len;
        char *st = xs_read(xsh, XBT_NULL, dmpath, &len);
        int running = st != NULL && strcmp(st, "running") == 0;
        int status;

        free(st);
        if (running)
            break;
        if (waitpid(qpid, &status, WNOHANG) == qpid) {
            qpid = -1;
            fail("%s: QEMU exited during start-up (status %#x)", R->name,
                 status);
            show(lpath);
            goto out;
        }
        if (now() - t0 > 90) {
            unsigned int n = 0;
            char **dir = xs_directory(xsh, XBT_NULL, "/local/domain/0", &n);

            fail("%s: QEMU did not say running within 90 s (%u entries in "
                 "/local/domain/0%s%s)", R->name, n, n ? ", first " : "",
                 n ? dir[0] : "");
            free(dir);
            show(lpath);
            {
                char cmd[160];

                snprintf(cmd, sizeof(cmd), "for t in /proc/%d/task/*; do echo "
                         "\"E2E qemu-mapcache: $t $(cut -d' ' -f3 $t/stat) "
                         "$(cat $t/wchan) $(cat $t/syscall)\"; done", (int)qpid);
                if (system(cmd) != 0)
                    say("cannot show QEMU's threads");
            }
            goto out;
        }
        usleep(100000);
    }
    R->started = 1;
    say("%s: QEMU (pid %d) is d%u's device model, running after %.1f s",
        R->name, (int)qpid, d, now() - t0);

    /* A: the guest's I/O maps three buckets. */
    t0 = now();
    xc_domain_unpause(xch, d);
    while (data[(D_READY - G_DATA) / 4] != MAGIC && now() - t0 < 60)
        usleep(10000);
    if (data[(D_READY - G_DATA) / 4] != MAGIC) {
        fail("%s: the guest's first I/O did not finish in 60 s", R->name);
        goto out;
    }
    usleep(200000);
    off = qtrace_read(tpath, 0, &before);
    R->entries = before.remaps - (unsigned)(before.dropped_range + before.dropped_global);
    R->registered = before.registered;
    R->optout = before.optout;
    R->tot_before = tot_pages(xch, d);
    R->free_before = free_pages(xch);
    say("%s: after the guest's I/O: %u mapcache entries; iomapd registration "
        "rc %d, opt-out rc %d; tot_pages %ld", R->name, R->entries,
        R->registered, R->optout, R->tot_before);

    /* B, C: the guest gives gfn G_REMOVED back, and writes again. */
    data[(D_GO - G_DATA) / 4] = 1;
    t0 = now();
    while (data[(D_DONE - G_DATA) / 4] != MAGIC && now() - t0 < 60)
        usleep(10000);
    if (data[(D_DONE - G_DATA) / 4] != MAGIC) {
        fail("%s: the guest did not finish in 60 s", R->name);
        goto out;
    }
    R->ok = 1;
    R->res = (int32_t)data[(D_RES - G_DATA) / 4];
    memcpy(&tsc0, (const void *)&data[(D_T0 - G_DATA) / 4], 8);
    memcpy(&tsc1, (const void *)&data[(D_T1 - G_DATA) / 4], 8);
    if (xc_domain_get_tsc_info(xch, d, &tsc_mode, &ns, &khz, &inc) < 0 || khz == 0)
        fail("%s: the guest's TSC frequency: %s", R->name, strerror(errno));
    else
        R->blocked_us = (tsc1 - tsc0) * 1000ULL / khz;
    t0 = now();
    while (tot_pages(xch, d) != R->tot_before - 1 && now() - t0 < 30)
        usleep(1000);
    R->tot_after = tot_pages(xch, d);
    if (R->tot_after == R->tot_before - 1)
        R->freed_ms = (now() - t0) * 1e3;
    R->free_after = free_pages(xch);
    /*
     * The invalidate reaches QEMU after the guest went on (that is the
     * point): wait for QEMU's first drop, up to 10 s on a loaded machine,
     * then 200 ms more for any further one.
     */
    t0 = now();
    do {
        usleep(20000);
        qtrace_read(tpath, off, &R->after);
    } while (R->after.ranges + R->after.globals == 0 && now() - t0 < 10);
    usleep(200000);
    qtrace_read(tpath, off, &R->after);
    /* The trace lines carry running totals. */
    if (R->after.ranges + R->after.globals != 0)
        R->dropped = R->after.dropped_range + R->after.dropped_global -
                     before.dropped_range - before.dropped_global;
 out:
    if (qpid > 0) {
        int status;

        kill(qpid, SIGTERM);
        t0 = now();
        while (waitpid(qpid, &status, WNOHANG) == 0 && now() - t0 < 20)
            usleep(50000);
        if (now() - t0 >= 20) {
            kill(qpid, SIGKILL);
            waitpid(qpid, &status, 0);
        }
    }
    if (p != NULL)
        xenforeignmemory_unmap(fmem, p, 2);
    {
        FILE *f = fopen(cpath, "r");

        R->console = -1;
        if (f != NULL) {
            fseek(f, 0, SEEK_END);
            R->console = ftell(f);
            fclose(f);
        }
    }
    if (d != DOMID_INVALID)
        xc_domain_destroy(xch, d);
    free(gfns);
}

static void
report(const struct run *R)
{
    say("%s: decrease_reservation %d, vCPU in the hypercall %llu us; "
        "entries %u, dropped %llu (by range %u lines, global %u lines, "
        "first range %#llx), mapped again afterwards %u; tot_pages %ld -> %ld "
        "(%.1f ms), free pages %ld -> %ld; debug console %ld bytes",
        R->name, R->res, R->blocked_us, R->entries, R->dropped, R->after.ranges,
        R->after.globals, R->after.range_addr, R->after.remaps, R->tot_before,
        R->tot_after, R->freed_ms, R->free_before, R->free_after, R->console);
    if (!R->ok)
        return;
    if (R->res != 1)
        fail("%s: the guest's decrease_reservation returned %d, want 1",
             R->name, R->res);
    if (R->tot_after != R->tot_before - 1)
        fail("%s: the removed page was not freed within 30 s (tot_pages %ld, "
             "want %ld)", R->name, R->tot_after, R->tot_before - 1);
    if (R->free_after <= R->free_before)
        fail("%s: Xen's free pages did not grow (%ld -> %ld)", R->name,
             R->free_before, R->free_after);
    if (R->console != 5 * E_LEN)
        fail("%s: QEMU's debug console got %ld bytes, want %d", R->name,
             R->console, 5 * E_LEN);
    if (R->entries < 3)
        fail("%s: %u mapcache entries after the guest's I/O, want >= 3",
             R->name, R->entries);
}

int
main(int argc, char **argv)
{
    struct run S = { .name = "stock" }, I = { .name = "iomapd" };
    int f0;

    if (argc != 3) {
        fprintf(stderr, "usage: qemu-mapcache QEMU IOMAPD_START_COMMAND\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    xch = xc_interface_open(NULL, NULL, 0);
    fmem = xenforeignmemory_open(NULL, 0);
    xsh = xs_open(0);
    /* QEMU reads the domain it runs in from its home's "domid". */
    if (xch == NULL || fmem == NULL || xsh == NULL ||
        !xs_write(xsh, XBT_NULL, "/local/domain/0/domid", "0", 1)) {
        fail("cannot open libxenctrl / libxenforeignmemory / xenstore: %s",
             strerror(errno));
        printf("E2E-SCENARIO {\"name\":\"qemu-mapcache\",\"pass\":false}\n");
        return 1;
    }
    f0 = nfail;

    /* Stock: iomapd is not running. */
    if (access("/run/iomapd/emulators.sock", F_OK) == 0)
        fail("stock: iomapd's socket exists before the stock run");
    run_one(argv[1], &S);
    report(&S);
    if (S.ok) {
        if (S.registered == 0 || S.optout == 0)
            fail("stock: QEMU registered (%d) or opted out (%d) without iomapd",
                 S.registered, S.optout);
        if (S.after.globals == 0)
            fail("stock: QEMU got no global invalidate from Xen");
        if (S.dropped < S.entries)
            fail("stock: Xen's broadcast dropped %llu of %u entries",
                 S.dropped, S.entries);
    }

    /* iomapd: started now; QEMU registers and opts out. */
    if (!S.started) {
        fail("iomapd: not run: QEMU did not start in the stock run");
    } else {
        if (system(argv[2]) != 0)
            fail("iomapd: \"%s\" failed", argv[2]);
        run_one(argv[1], &I);
        report(&I);
    }
    if (I.ok) {
        if (I.registered != 0)
            fail("iomapd: QEMU's registration rc %d", I.registered);
        if (I.optout != 0)
            fail("iomapd: QEMU's opt-out of the broadcast rc %d", I.optout);
        if (I.after.globals != 0 || I.after.dropped_global != 0)
            fail("iomapd: %u global invalidates (%llu entries): Xen broadcast, "
                 "or QEMU asked for one", I.after.globals, I.after.dropped_global);
        if (I.dropped != 1 || I.after.ranges == 0 ||
            I.after.range_addr != (unsigned long long)G_REMOVED << 12)
            fail("iomapd: QEMU dropped %llu entries (want 1: the bucket of "
                 "gfn %#x), first range %#llx", I.dropped, G_REMOVED,
                 I.after.range_addr);
        if (I.after.remaps != 0)
            fail("iomapd: QEMU mapped %u buckets again: entries it should "
                 "have kept were gone", I.after.remaps);
    }
    if (!S.ok || !I.ok)
        fail("a run did not get as far as the removal");
    printf("E2E-SCENARIO {\"name\":\"qemu-mapcache\",\"pass\":%s,"
           "\"entries_dropped_iomapd\":%llu,\"entries_dropped_stock\":%llu,"
           "\"vcpu_blocked_us_iomapd\":%llu,\"vcpu_blocked_us_stock\":%llu,"
           "\"entries_before_iomapd\":%u,\"entries_before_stock\":%u,"
           "\"global_invalidates_iomapd\":%u,\"global_invalidates_stock\":%u,"
           "\"remapped_after_iomapd\":%u,\"remapped_after_stock\":%u,"
           "\"freed_ms_iomapd\":%.1f,\"freed_ms_stock\":%.1f}\n",
           nfail == f0 ? "true" : "false", I.dropped, S.dropped, I.blocked_us,
           S.blocked_us, I.entries, S.entries, I.after.globals, S.after.globals,
           I.after.remaps, S.after.remaps, I.freed_ms, S.freed_ms);
    fflush(stdout);
    return nfail != 0;
}
