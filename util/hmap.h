/* SPDX-License-Identifier: MIT */
/*
 * hmap: open-addressing hash map from a 63-bit key to a 32-bit value,
 * linear probing with backward-shift deletion (no tombstones).  16 bytes
 * per slot, at most 3/4 full.  Used for frame-number keyed indexes.
 */
#ifndef IOMAP_HMAP_H
#define IOMAP_HMAP_H

#include <stddef.h>
#include <stdint.h>

struct hmap_slot {
    uint64_t key;           /* key + 1; 0 = empty */
    uint32_t val;
    uint32_t pad;
};

struct hmap {
    struct hmap_slot *slots;
    size_t            cap;  /* power of two, or 0 */
    size_t            len;
};

#define HMAP_NONE UINT32_MAX

void     hmap_init(struct hmap *h);
void     hmap_free(struct hmap *h);
/* Returns the value or HMAP_NONE. */
uint32_t hmap_get(const struct hmap *h, uint64_t key);
/* Insert or replace; returns 0 or -ENOMEM. */
int      hmap_put(struct hmap *h, uint64_t key, uint32_t val);
/* Returns the removed value or HMAP_NONE. */
uint32_t hmap_del(struct hmap *h, uint64_t key);
size_t   hmap_bytes(const struct hmap *h);

#endif
