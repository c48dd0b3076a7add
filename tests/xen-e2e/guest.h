/* SPDX-License-Identifier: MIT */
/*
 * What check-xen's test programs (xen-e2e.c, qemu-mapcache.c) share: the
 * clock and Xen's page counters they judge by, and for their
 * hand-assembled guests a few 32-bit x86 instructions and starting a
 * guest's vCPU in flat 32-bit protected mode (no paging) at an entry
 * point.
 */
#ifndef XEN_E2E_GUEST_H
#define XEN_E2E_GUEST_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xenctrl.h>
#include <xen/hvm/save.h>

static inline double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Domain d's tot_pages, or -1. */
static inline long
tot_pages(xc_interface *xch, uint32_t d)
{
    xc_domaininfo_t info;

    if (xc_domain_getinfolist(xch, d, 1, &info) != 1 || info.domain != d)
        return -1;
    return (long)info.tot_pages;
}

/* The host's free pages, or -1. */
static inline long
free_pages(xc_interface *xch)
{
    xc_physinfo_t pi = { 0 };

    if (xc_physinfo(xch, &pi) < 0)
        return -1;
    return (long)pi.free_pages;
}

struct emit { unsigned char *p; };

static inline void e8(struct emit *e, unsigned v) { *e->p++ = (unsigned char)v; }

static inline void
e32(struct emit *e, uint32_t v)
{
    memcpy(e->p, &v, 4);
    e->p += 4;
}

/* mov r32, imm32 (eax 0, ecx 1, edx 2, ebx 3, ebp 5, esi 6) */
static inline void
mov_ri(struct emit *e, unsigned r, uint32_t v)
{
    e8(e, 0xb8 + r);
    e32(e, v);
}

static inline void
vmmcall(struct emit *e)
{
    e8(e, 0x0f); e8(e, 0x01); e8(e, 0xd9);
}

/* mov [a], eax */
static inline void
store_eax(struct emit *e, uint32_t a)
{
    e8(e, 0xa3);
    e32(e, a);
}

/*
 * Give HVM domain d's first vCPU a flat 32-bit protected-mode context (no
 * paging) starting at entry, keeping the header Xen reports.
 */
static inline int
guest_vcpu_start(xc_interface *xch, uint32_t d, uint32_t entry)
{
    struct {
        struct hvm_save_descriptor header_d;
        HVM_SAVE_TYPE(HEADER) header;
        struct hvm_save_descriptor cpu_d;
        HVM_SAVE_TYPE(CPU) cpu;
        struct hvm_save_descriptor end_d;
        HVM_SAVE_TYPE(END) end;
    } ctx;
    int len = xc_domain_hvm_getcontext(xch, d, NULL, 0);
    uint8_t *full;

    if (len <= 0 || (full = malloc(len)) == NULL)
        return -1;
    if (xc_domain_hvm_getcontext(xch, d, full, len) < 0) {
        free(full);
        return -1;
    }
    memset(&ctx, 0, sizeof(ctx));
    memcpy(&ctx, full, sizeof(ctx.header_d) + sizeof(ctx.header));
    free(full);
    ctx.cpu_d.typecode = HVM_SAVE_CODE(CPU);
    ctx.cpu_d.length = HVM_SAVE_LENGTH(CPU);
    ctx.cpu.cs_limit = ctx.cpu.ds_limit = ctx.cpu.es_limit = ~0u;
    ctx.cpu.ss_limit = ~0u;
    ctx.cpu.tr_limit = 0x67;
    ctx.cpu.cs_arbytes = 0xc9b;     /* 32-bit code, present, DPL 0 */
    ctx.cpu.ds_arbytes = ctx.cpu.es_arbytes = ctx.cpu.ss_arbytes = 0xc93;
    ctx.cpu.tr_arbytes = 0x8b;
    ctx.cpu.cr0 = 0x11;             /* PE | ET: protected mode, no paging */
    ctx.cpu.rip = entry;
    ctx.cpu.rflags = 2;
    ctx.cpu.dr6 = 0xffff0ff0;
    ctx.cpu.dr7 = 0x400;
    ctx.end_d.typecode = HVM_SAVE_CODE(END);
    ctx.end_d.length = HVM_SAVE_LENGTH(END);
    return xc_domain_hvm_setcontext(xch, d, (uint8_t *)&ctx, sizeof(ctx));
}

#endif /* XEN_E2E_GUEST_H */
