/* SPDX-License-Identifier: MIT */
/*
 * The mapping tracker (tracker.h): a multiset of gfns made of two sets
 * (count >= 1, count >= 2) and a hash map of the counts above 2.  The
 * sets are ours (a radix of array or bitmap leaves), CRoaring's or
 * libJudy's, one implementation per set, chosen when it is made.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <Judy.h>
#include <roaring/roaring.h>

#include "daemon/core/tracker.h"

#define TOP_SHIFT (FSET_LEAF_BITS + FSET_L2_BITS)
#define L2_MASK   ((1u << FSET_L2_BITS) - 1)
#define LEAF_MASK ((1u << FSET_LEAF_BITS) - 1)
#define LEAF_HDR  offsetof(struct fset_leaf, w)
#define BITMAP_BYTES (LEAF_HDR + FSET_LEAF_WORDS * 8)
#define R_SHIFT   32            /* roaring: 32-bit values under a top key */

/* ---- the implementation in force ------------------------------------------ */

static const char *const impl_names[FSET_IMPL_N] = { "fset", "roaring", "judy" };
static int impl_default = -1;   /* -1: not decided (the environment) */

const char *
fset_impl_name(int impl)
{
    return impl >= 0 && impl < FSET_IMPL_N ? impl_names[impl] : "?";
}

int
fset_select(const char *name)
{
    for (int i = 0; i < FSET_IMPL_N; i++)
        if (name && strcmp(name, impl_names[i]) == 0) {
            impl_default = i;
            return 0;
        }
    return -EINVAL;
}

int
fset_selected(void)
{
    if (impl_default < 0) {
        const char *e = getenv("IOMAPD_TRACKER");

        if (e == NULL || *e == 0 || fset_select(e) < 0)
            impl_default = FSET_IMPL_FSET;
    }
    return impl_default;
}

/* ---- top level: key -> node (fset: struct fset_l2, roaring: bitmap) --------- */

static void *
top_find(const struct fset_bits *b, uint64_t key)
{
    uint32_t i;

    if (key == b->last_key)
        return b->last;
    i = b->top.len ? hmap_get(&b->top, key) : HMAP_NONE;
    if (i == HMAP_NONE)
        return NULL;
    /* The cache is logically const: it does not change what is stored. */
    ((struct fset_bits *)b)->last_key = key;
    ((struct fset_bits *)b)->last = b->v[i];
    return b->v[i];
}

/* Insert node n (made by the caller) under key; 0 or -ENOMEM. */
static int
top_put(struct fset_bits *b, uint64_t key, void *n)
{
    if (b->nv == b->capv) {
        uint32_t ncap = b->capv ? b->capv * 2 : 4;
        void **v = realloc(b->v, ncap * sizeof(*v));

        if (v == NULL)
            return -ENOMEM;
        b->v = v;
        b->capv = ncap;
    }
    if (hmap_put(&b->top, key, b->nv) < 0)
        return -ENOMEM;
    b->v[b->nv++] = n;
    b->last_key = key;
    b->last = n;
    return 0;
}

/* The smallest key > after in the top map (UINT64_MAX: none). */
static uint64_t
top_next_key(const struct fset_bits *b, uint64_t after)
{
    uint64_t best = UINT64_MAX;

    for (size_t s = 0; s < b->top.cap; s++) {
        const struct hmap_slot *hs = &b->top.slots[s];

        if (hs->key != 0 && hs->key - 1 > after && hs->key - 1 < best)
            best = hs->key - 1;
    }
    return best;
}

/* ---- our sets: leaves ---------------------------------------------------------- */

static uint16_t *
offs(struct fset_leaf *l)
{
    return (uint16_t *)(void *)l->w;
}

static const uint16_t *
coffs(const struct fset_leaf *l)
{
    return (const uint16_t *)(const void *)l->w;
}

/* Index of the first offset >= off in an array leaf. */
static uint32_t
arr_lb(const struct fset_leaf *l, uint32_t off)
{
    const uint16_t *a = coffs(l);
    uint32_t lo = 0, hi = l->pop;

    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;

        if (a[mid] < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int
leaf_test(const struct fset_leaf *l, uint32_t off)
{
    uint32_t i;

    if (l == NULL)
        return 0;
    if (l->cap == 0)
        return (l->w[off / 64] >> (off % 64)) & 1;
    i = arr_lb(l, off);
    return i < l->pop && coffs(l)[i] == off;
}

static size_t
arr_bytes(uint32_t cap)
{
    return LEAF_HDR + ((cap * 2 + 7) & ~7u);
}

/* Set off in *lp (made or grown as needed): 1 newly set, 0 was set, -ENOMEM. */
static int
leaf_set(struct fset_leaf **lp, uint32_t off, size_t *bytes)
{
    struct fset_leaf *l = *lp;
    uint32_t i;

    if (l == NULL) {
        l = malloc(arr_bytes(4));
        if (l == NULL)
            return -ENOMEM;
        l->pop = 0;
        l->cap = 4;
        l->pad = 0;
        *bytes += arr_bytes(4);
        *lp = l;
    }
    if (l->cap == 0) {
        uint64_t bit = UINT64_C(1) << (off % 64);

        if (l->w[off / 64] & bit)
            return 0;
        l->w[off / 64] |= bit;
        l->pop++;
        return 1;
    }
    i = arr_lb(l, off);
    if (i < l->pop && coffs(l)[i] == off)
        return 0;
    if (l->pop == l->cap) {
        struct fset_leaf *n;

        if (l->cap >= FSET_ARRAY_MAX) {
            /* Becomes a bitmap. */
            n = calloc(1, BITMAP_BYTES);
            if (n == NULL)
                return -ENOMEM;
            for (uint32_t k = 0; k < l->pop; k++)
                n->w[coffs(l)[k] / 64] |= UINT64_C(1) << (coffs(l)[k] % 64);
            n->pop = l->pop;
            *bytes += BITMAP_BYTES;
            *bytes -= arr_bytes(l->cap);
            free(l);
            *lp = n;
            return leaf_set(lp, off, bytes);
        }
        n = realloc(l, arr_bytes(l->cap * 2u));
        if (n == NULL)
            return -ENOMEM;
        *bytes += arr_bytes(n->cap * 2u) - arr_bytes(n->cap);
        n->cap = (uint16_t)(n->cap * 2u);
        *lp = l = n;
    }
    memmove(offs(l) + i + 1, offs(l) + i, (l->pop - i) * sizeof(uint16_t));
    offs(l)[i] = (uint16_t)off;
    l->pop++;
    return 1;
}

/*
 * Clear off: 1 if it was set, 0 if not.  Empty leaves stay (a freed and
 * refilled leaf would thrash malloc); bitmap leaves stay bitmaps.
 */
static int
leaf_clear(struct fset_leaf *l, uint32_t off)
{
    uint32_t i;

    if (l == NULL)
        return 0;
    if (l->cap == 0) {
        uint64_t bit = UINT64_C(1) << (off % 64);

        if (!(l->w[off / 64] & bit))
            return 0;
        l->w[off / 64] &= ~bit;
        l->pop--;
        return 1;
    }
    i = arr_lb(l, off);
    if (i >= l->pop || coffs(l)[i] != off)
        return 0;
    memmove(offs(l) + i, offs(l) + i + 1, (l->pop - i - 1u) * sizeof(uint16_t));
    l->pop--;
    return 1;
}

/* The first offset >= off in the leaf, or -1. */
static int
leaf_next(const struct fset_leaf *l, uint32_t off)
{
    if (l == NULL || l->pop == 0 || off > LEAF_MASK)
        return -1;
    if (l->cap) {
        uint32_t i = arr_lb(l, off);

        return i < l->pop ? coffs(l)[i] : -1;
    }
    for (uint32_t w = off / 64; w < FSET_LEAF_WORDS; w++) {
        uint64_t word = l->w[w];

        if (w == off / 64)
            word &= ~UINT64_C(0) << (off % 64);
        if (word)
            return (int)(w * 64 + (uint32_t)__builtin_ctzll(word));
    }
    return -1;
}

/* ---- one set, in the implementation of its fset ----------------------------- */

static void
bits_init(struct fset_bits *b)
{
    memset(b, 0, sizeof(*b));
    hmap_init(&b->top);
    b->last_key = UINT64_MAX;
}

static void
bits_free(int impl, struct fset_bits *b)
{
    for (uint32_t i = 0; i < b->nv; i++) {
        if (impl == FSET_IMPL_ROARING) {
            roaring_bitmap_free(b->v[i]);
            continue;
        }
        for (uint32_t j = 0; j <= L2_MASK; j++)
            free(((struct fset_l2 *)b->v[i])->leaf[j]);
        free(b->v[i]);
    }
    if (b->judy)
        Judy1FreeArray(&b->judy, PJE0);
    free(b->v);
    hmap_free(&b->top);
    bits_init(b);
}

static int
bits_test(int impl, const struct fset_bits *b, uint64_t gfn)
{
    const void *n;

    switch (impl) {
    case FSET_IMPL_JUDY:
        return b->judy ? Judy1Test(b->judy, (Word_t)gfn, PJE0) == 1 : 0;
    case FSET_IMPL_ROARING:
        n = top_find(b, gfn >> R_SHIFT);
        return n ? roaring_bitmap_contains(n, (uint32_t)gfn) : 0;
    default:
        n = top_find(b, gfn >> TOP_SHIFT);
        return n ? leaf_test(((const struct fset_l2 *)n)->leaf[(gfn >> FSET_LEAF_BITS) & L2_MASK],
                             gfn & LEAF_MASK) : 0;
    }
}

/* 1 newly set, 0 was set, -ENOMEM. */
static int
bits_set(int impl, struct fset_bits *b, uint64_t gfn, size_t *bytes)
{
    void *n;
    int rc;

    switch (impl) {
    case FSET_IMPL_JUDY:
        rc = Judy1Set(&b->judy, (Word_t)gfn, PJE0);
        return rc == JERR ? -ENOMEM : rc;
    case FSET_IMPL_ROARING:
        n = top_find(b, gfn >> R_SHIFT);
        if (n == NULL) {
            if ((n = roaring_bitmap_create()) == NULL)
                return -ENOMEM;
            if (top_put(b, gfn >> R_SHIFT, n) < 0) {
                roaring_bitmap_free(n);
                return -ENOMEM;
            }
        }
        /* CRoaring 0.2 has no allocation failure report here. */
        return roaring_bitmap_add_checked(n, (uint32_t)gfn) ? 1 : 0;
    default:
        n = top_find(b, gfn >> TOP_SHIFT);
        if (n == NULL) {
            if ((n = calloc(1, sizeof(struct fset_l2))) == NULL)
                return -ENOMEM;
            if (top_put(b, gfn >> TOP_SHIFT, n) < 0) {
                free(n);
                return -ENOMEM;
            }
            *bytes += sizeof(struct fset_l2);
        } {
            struct fset_l2 *l2 = n;
            struct fset_leaf **lp = &l2->leaf[(gfn >> FSET_LEAF_BITS) & L2_MASK];
            int had = *lp != NULL;

            rc = leaf_set(lp, gfn & LEAF_MASK, bytes);
            if (!had && *lp)
                l2->nleaves++;
            return rc;
        }
    }
}

/* 1 if it was set, 0 if not. */
static int
bits_clear(int impl, struct fset_bits *b, uint64_t gfn)
{
    void *n;

    switch (impl) {
    case FSET_IMPL_JUDY:
        return b->judy ? Judy1Unset(&b->judy, (Word_t)gfn, PJE0) == 1 : 0;
    case FSET_IMPL_ROARING:
        n = top_find(b, gfn >> R_SHIFT);
        return n ? roaring_bitmap_remove_checked(n, (uint32_t)gfn) : 0;
    default:
        n = top_find(b, gfn >> TOP_SHIFT);
        return n ? leaf_clear(((struct fset_l2 *)n)->leaf[(gfn >> FSET_LEAF_BITS) & L2_MASK],
                              gfn & LEAF_MASK) : 0;
    }
}

/* The first gfn >= from in the set, or UINT64_MAX. */
static uint64_t
bits_next(int impl, const struct fset_bits *b, uint64_t from)
{
    unsigned shift = impl == FSET_IMPL_ROARING ? R_SHIFT : TOP_SHIFT;

    if (impl == FSET_IMPL_JUDY) {
        Word_t idx = (Word_t)from;

        return b->judy && Judy1First(b->judy, &idx, PJE0) == 1 ? (uint64_t)idx : UINT64_MAX;
    }
    while (from != UINT64_MAX) {
        uint64_t key = from >> shift, base = key << shift;
        const void *n = top_find(b, key);

        if (n && impl == FSET_IMPL_ROARING) {
            roaring_uint32_iterator_t it;

            roaring_init_iterator(n, &it);
            if (roaring_move_uint32_iterator_equalorlarger(&it, (uint32_t)from))
                return base + it.current_value;
        } else if (n) {
            const struct fset_l2 *l2 = n;

            for (uint32_t j = (uint32_t)(from >> FSET_LEAF_BITS) & L2_MASK; j <= L2_MASK; j++) {
                uint64_t lbase = base + ((uint64_t)j << FSET_LEAF_BITS);
                int o = leaf_next(l2->leaf[j], from > lbase ? (uint32_t)(from - lbase) : 0);

                if (o >= 0)
                    return lbase + (uint64_t)o;
            }
        }
        key = top_next_key(b, key);
        from = key == UINT64_MAX || key > (UINT64_MAX >> shift) ? UINT64_MAX : key << shift;
    }
    return UINT64_MAX;
}

/* ---- the multiset ---------------------------------------------------------------- */

void
fset_init(struct fset *fs)
{
    memset(fs, 0, sizeof(*fs));
    fs->impl = (uint8_t)fset_selected();
    bits_init(&fs->b[0]);
    bits_init(&fs->b[1]);
    hmap_init(&fs->extra);
}

void
fset_free(struct fset *fs)
{
    uint8_t impl = fs->impl;

    bits_free(impl, &fs->b[0]);
    bits_free(impl, &fs->b[1]);
    hmap_free(&fs->extra);
    memset(fs, 0, sizeof(*fs));
    fs->impl = impl;
    bits_init(&fs->b[0]);
    bits_init(&fs->b[1]);
    hmap_init(&fs->extra);
}

uint32_t
fset_count(const struct fset *fs, uint64_t gfn)
{
    uint32_t x;

    if (!bits_test(fs->impl, &fs->b[0], gfn))
        return 0;
    if (fs->total == fs->frames || !bits_test(fs->impl, &fs->b[1], gfn))
        return 1;
    x = fs->extra.len ? hmap_get(&fs->extra, gfn) : HMAP_NONE;
    return x == HMAP_NONE ? 2 : x + 2;
}

int
fset_add(struct fset *fs, uint64_t gfn)
{
    int rc = bits_set(fs->impl, &fs->b[0], gfn, &fs->bytes);
    uint32_t x;

    if (rc < 0)
        return rc;
    if (rc == 1) {
        fs->frames++;
        fs->total++;
        return 1;
    }
    rc = bits_set(fs->impl, &fs->b[1], gfn, &fs->bytes);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        fs->total++;
        return 2;
    }
    x = hmap_get(&fs->extra, gfn);
    x = x == HMAP_NONE ? 1 : x + 1;
    if (x >= HMAP_NONE - 2 || hmap_put(&fs->extra, gfn, x) < 0)
        return -ENOMEM;
    fs->total++;
    return (int)x + 2;
}

int
fset_del(struct fset *fs, uint64_t gfn)
{
    uint32_t x;

    if (!bits_test(fs->impl, &fs->b[0], gfn))
        return -ENOENT;
    fs->total--;
    if (!bits_test(fs->impl, &fs->b[1], gfn)) {
        bits_clear(fs->impl, &fs->b[0], gfn);
        fs->frames--;
        return 0;
    }
    x = fs->extra.len ? hmap_get(&fs->extra, gfn) : HMAP_NONE;
    if (x == HMAP_NONE) {
        bits_clear(fs->impl, &fs->b[1], gfn);
        return 1;
    }
    if (x == 1)
        hmap_del(&fs->extra, gfn);
    else
        hmap_put(&fs->extra, gfn, x - 1);   /* replaces: cannot fail */
    return (int)x + 1;
}

uint32_t
fset_take(struct fset *fs, uint64_t gfn)
{
    uint32_t n = fset_count(fs, gfn);

    if (n == 0)
        return 0;
    bits_clear(fs->impl, &fs->b[0], gfn);
    if (n > 1)
        bits_clear(fs->impl, &fs->b[1], gfn);
    if (n > 2)
        hmap_del(&fs->extra, gfn);
    fs->frames--;
    fs->total -= n;
    return n;
}

uint64_t
fset_next(const struct fset *fs, uint64_t from)
{
    return fs->frames ? bits_next(fs->impl, &fs->b[0], from) : UINT64_MAX;
}
