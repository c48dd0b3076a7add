/* SPDX-License-Identifier: MIT */
/*
 * The patched hw/i386/xen/xen-mapcache.c, compiled on its own with QEMU's
 * flags (run-test-mapcache.sh) against fakes for Xen: foreign mappings are
 * anonymous mmaps, and every mapping is counted.  It checks what the
 * series promises for xen_invalidate_map_cache_range():
 *   - an entry chained behind a locked bucket head is dropped alone;
 *   - an entry that starts in an earlier bucket and spans into the range
 *     is dropped; one that does not reach it is kept;
 *   - a locked entry is not unmapped: the call returns false, lookups no
 *     longer return it, and the completion runs once, when its last lock
 *     goes, even with a new entry for the same bucket in the chain;
 *   - an entry locked only by non-DMA mappings (a RAMBlock's host pointer,
 *     e.g. emulated VGA's VRAM, locked for ever) is kept: the call returns
 *     true at once and counts it as kept, as the global invalidate skips
 *     it; one with a DMA lock besides is waited for until that DMA is done;
 *   - the global invalidate is counted apart.
 * Exit status 0 when all hold; each failed check is printed.
 */
#include "qemu/osdep.h"
#include <sys/mman.h>

static int live_maps;       /* foreign mappings not yet unmapped */

static int test_munmap(void *addr, size_t len)
{
    live_maps--;
    return munmap(addr, len);
}
#define munmap test_munmap

#include "xen-mapcache.c"
#undef munmap

struct mc_trace mc_trace;
xenforeignmemory_handle *xen_fmem;
uint32_t xen_domid = 1;

void *xenforeignmemory_map2(xenforeignmemory_handle *fmem, uint32_t dom,
                            void *addr, int prot, int flags, size_t pages,
                            const xen_pfn_t arr[], int err[])
{
    void *p = mmap(addr, pages << XC_PAGE_SHIFT, prot,
                   MAP_ANONYMOUS | MAP_PRIVATE | flags, -1, 0);

    if (p == MAP_FAILED) {
        return NULL;
    }
    memset(err, 0, pages * sizeof(*err));
    live_maps++;
    return p;
}

void ram_block_notify_add(void *host, size_t size, size_t max_size)
{
}

void ram_block_notify_remove(void *host, size_t size, size_t max_size)
{
}

bool runstate_check(RunState state)
{
    return false;
}

void bdrv_drain_all(void)
{
}

static int failures, completions;

#define CHECK(cond) do { \
        if (!(cond)) { \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            failures++; \
        } \
    } while (0)

static void completed(void *opaque)
{
    completions++;
    CHECK(opaque == &completions);
}

#define MB (1ULL << 20)

int main(void)
{
    hwaddr collide;
    uint8_t *head, *p, *q, *r;
    int before;

    xen_map_cache_init(NULL, NULL);
    collide = (1 + mapcache->nr_buckets) * MB;   /* hashes to bucket 1 */

    /* 1. Chained: bucket 1's head locked, an entry for `collide` behind. */
    head = xen_map_cache(1 * MB, XC_PAGE_SIZE, 1, true);
    p = xen_map_cache(collide, 0, 0, false);
    CHECK(head && p);
    CHECK(live_maps == 2);
    CHECK(mapcache->entry[1].next != NULL);
    CHECK(xen_invalidate_map_cache_range(collide + XC_PAGE_SIZE,
                                         XC_PAGE_SIZE, completed,
                                         &completions));
    CHECK(mc_trace.dropped == 1 && mc_trace.deferred == 0);
    CHECK(live_maps == 1);
    CHECK(mapcache->entry[1].next == NULL);
    CHECK(mapcache->entry[1].vaddr_base != NULL);   /* the head stays */
    xen_invalidate_map_cache_entry(head);
    CHECK(live_maps == 1);          /* unlocked, not invalidated: cached */

    /* 2. Spanning: a 3 MiB entry from bucket 3 covers buckets 3..5. */
    p = xen_map_cache(3 * MB, 3 * MB - XC_PAGE_SIZE, 0, false);
    CHECK(p != NULL);
    CHECK(mapcache->entry[3].size == 3 * MB);
    before = live_maps;
    CHECK(xen_invalidate_map_cache_range(6 * MB, XC_PAGE_SIZE, completed,
                                         &completions));
    CHECK(mc_trace.dropped == 0 && live_maps == before);
    CHECK(xen_invalidate_map_cache_range(5 * MB + 8 * XC_PAGE_SIZE,
                                         XC_PAGE_SIZE, completed,
                                         &completions));
    CHECK(mc_trace.dropped == 1 && live_maps == before - 1);
    CHECK(mapcache->entry[3].vaddr_base == NULL);
    /* Bucket 1's cached head is outside every range so far. */
    CHECK(mapcache->entry[1].vaddr_base != NULL);

    /* 3. Locked: deferred until the DMA completes. */
    p = xen_map_cache(8 * MB, XC_PAGE_SIZE, 1, true);
    CHECK(p != NULL);
    before = live_maps;
    CHECK(!xen_invalidate_map_cache_range(8 * MB, XC_PAGE_SIZE, completed,
                                          &completions));
    CHECK(mc_trace.dropped == 0 && mc_trace.deferred == 1);
    CHECK(live_maps == before && completions == 0);
    /* A lookup does not return the stale mapping: a new entry is made. */
    q = xen_map_cache(8 * MB, XC_PAGE_SIZE, 1, true);
    CHECK(q != NULL && q != p);
    CHECK(live_maps == before + 1);
    r = xen_map_cache(8 * MB, 0, 0, false);
    CHECK(r == q);
    /* Releasing p drops the stale entry (not q's) and completes. */
    xen_invalidate_map_cache_entry(p);
    CHECK(completions == 1);
    CHECK(mc_trace.deferred_drops == 1);
    CHECK(live_maps == before);
    CHECK(xen_ram_addr_from_mapcache(q) == 8 * MB);
    xen_invalidate_map_cache_entry(q);
    CHECK(completions == 1);

    /* Two locks on one entry: completion after the second release. */
    p = xen_map_cache(12 * MB, XC_PAGE_SIZE, 1, true);
    q = xen_map_cache(12 * MB + XC_PAGE_SIZE, XC_PAGE_SIZE, 1, true);
    CHECK(!xen_invalidate_map_cache_range(12 * MB, 2 * XC_PAGE_SIZE,
                                          completed, &completions));
    xen_invalidate_map_cache_entry(p);
    CHECK(completions == 1);
    xen_invalidate_map_cache_entry(q);
    CHECK(completions == 2);

    /*
     * 4. Locked without DMA (VRAM: xen_map_cache(..., 1, false), never
     * unlocked): kept, answered at once, no waiter left behind.
     */
    p = xen_map_cache(16 * MB, XC_PAGE_SIZE, 1, false);
    CHECK(p != NULL);
    before = live_maps;
    CHECK(xen_invalidate_map_cache_range(16 * MB, XC_PAGE_SIZE, completed,
                                         &completions));
    CHECK(mc_trace.dropped == 0 && mc_trace.deferred == 0);
    CHECK(mc_trace.kept == 1);
    CHECK(live_maps == before && completions == 2);
    CHECK(QSLIST_EMPTY(&mapcache->entry[16].waiters));
    CHECK(!(mapcache->entry[16].flags & XEN_MAPCACHE_ENTRY_STALE));
    /* Still served from the cache: no new mapping for the same page. */
    CHECK(xen_map_cache(16 * MB, 0, 0, false) == p);
    CHECK(live_maps == before);
    /* A DMA lock on the same entry: now it is waited for. */
    q = xen_map_cache(16 * MB + XC_PAGE_SIZE, XC_PAGE_SIZE, 1, true);
    CHECK(q == p + XC_PAGE_SIZE);
    CHECK(!xen_invalidate_map_cache_range(16 * MB, XC_PAGE_SIZE, completed,
                                          &completions));
    CHECK(mc_trace.deferred == 1 && mc_trace.kept == 0);
    /* Answered when the DMA is done, though the VRAM lock stays. */
    xen_invalidate_map_cache_entry(q);
    CHECK(completions == 3);
    CHECK(live_maps == before);
    CHECK(QSLIST_EMPTY(&mapcache->entry[16].waiters));
    /* Stale: dropped when the last lock goes, if it ever does. */
    xen_invalidate_map_cache_entry(p);
    CHECK(completions == 3);
    CHECK(mc_trace.deferred_drops == 3);
    CHECK(live_maps == before - 1);

    /* 5. Totals: range drops so far, then the global invalidate. */
    CHECK(mc_trace.total_range == 5);
    CHECK(mc_trace.total_global == 0);
    before = live_maps;
    xen_invalidate_map_cache();
    CHECK(mc_trace.global_dropped == (uint64_t)before);
    CHECK(mc_trace.total_global == (uint64_t)before);
    CHECK(mc_trace.total_range == 5);
    CHECK(live_maps == 0);

    printf("%s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
    return failures ? 1 : 0;
}
