/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "util/hmap.h"

static inline size_t
hash64(uint64_t k)
{
    k ^= k >> 33;
    k *= UINT64_C(0xff51afd7ed558ccd);
    k ^= k >> 33;
    return (size_t)k;
}

void
hmap_init(struct hmap *h)
{
    h->slots = NULL;
    h->cap = 0;
    h->len = 0;
}

void
hmap_free(struct hmap *h)
{
    free(h->slots);
    hmap_init(h);
}

uint32_t
hmap_get(const struct hmap *h, uint64_t key)
{
    size_t mask, i;

    if (h->cap == 0)
        return HMAP_NONE;
    mask = h->cap - 1;
    for (i = hash64(key) & mask; h->slots[i].key != 0; i = (i + 1) & mask)
        if (h->slots[i].key == key + 1)
            return h->slots[i].val;
    return HMAP_NONE;
}

static void
insert_raw(struct hmap_slot *slots, size_t cap, uint64_t k1, uint32_t val)
{
    size_t mask = cap - 1, i;

    for (i = hash64(k1 - 1) & mask; slots[i].key != 0; i = (i + 1) & mask)
        ;
    slots[i].key = k1;
    slots[i].val = val;
}

static int
grow(struct hmap *h)
{
    size_t ncap = h->cap ? h->cap * 2 : 16;
    struct hmap_slot *ns = calloc(ncap, sizeof(*ns));

    if (ns == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < h->cap; i++)
        if (h->slots[i].key)
            insert_raw(ns, ncap, h->slots[i].key, h->slots[i].val);
    free(h->slots);
    h->slots = ns;
    h->cap = ncap;
    return 0;
}

int
hmap_put(struct hmap *h, uint64_t key, uint32_t val)
{
    size_t mask, i;

    if ((h->len + 1) * 4 > h->cap * 3 && grow(h) < 0)
        return -ENOMEM;
    mask = h->cap - 1;
    for (i = hash64(key) & mask; h->slots[i].key != 0; i = (i + 1) & mask)
        if (h->slots[i].key == key + 1) {
            h->slots[i].val = val;
            return 0;
        }
    h->slots[i].key = key + 1;
    h->slots[i].val = val;
    h->len++;
    return 0;
}

uint32_t
hmap_del(struct hmap *h, uint64_t key)
{
    size_t mask, i, j;
    uint32_t val;

    if (h->cap == 0)
        return HMAP_NONE;
    mask = h->cap - 1;
    for (i = hash64(key) & mask; ; i = (i + 1) & mask) {
        if (h->slots[i].key == 0)
            return HMAP_NONE;
        if (h->slots[i].key == key + 1)
            break;
    }
    val = h->slots[i].val;
    /* Backward-shift: pull later members of the cluster into the hole. */
    for (j = (i + 1) & mask; h->slots[j].key != 0; j = (j + 1) & mask) {
        size_t home = hash64(h->slots[j].key - 1) & mask;

        /* Move j to i if its home is not in the cyclic range (i, j]. */
        if ((j > i && (home <= i || home > j)) ||
            (j < i && (home <= i && home > j))) {
            h->slots[i] = h->slots[j];
            i = j;
        }
    }
    h->slots[i].key = 0;
    h->len--;
    return val;
}

size_t
hmap_bytes(const struct hmap *h)
{
    return h->cap * sizeof(struct hmap_slot);
}
