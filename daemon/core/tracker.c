/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/core/tracker.h"

#define TOP_SHIFT (FSET_LEAF_BITS + FSET_L2_BITS)
#define L2_MASK   ((1u << FSET_L2_BITS) - 1)
#define LEAF_MASK ((1u << FSET_LEAF_BITS) - 1)

void
fset_init(struct fset *fs)
{
    memset(fs, 0, sizeof(*fs));
    hmap_init(&fs->top);
    hmap_init(&fs->extra);
    fs->last_key = UINT64_MAX;
}

void
fset_free(struct fset *fs)
{
    for (uint32_t i = 0; i < fs->nl2; i++) {
        if (fs->l2v[i] == NULL)
            continue;
        for (uint32_t j = 0; j <= L2_MASK; j++)
            free(fs->l2v[i]->leaf[j]);
        free(fs->l2v[i]);
    }
    free(fs->l2v);
    hmap_free(&fs->top);
    hmap_free(&fs->extra);
    fset_init(fs);
}

static struct fset_l2 *
find_l2(const struct fset *fs, uint64_t key)
{
    uint32_t i;

    if (key == fs->last_key)
        return fs->last_l2;
    i = hmap_get(&fs->top, key);
    if (i == HMAP_NONE)
        return NULL;
    /* The cache is logically const: it does not change what is stored. */
    ((struct fset *)fs)->last_key = key;
    ((struct fset *)fs)->last_l2 = fs->l2v[i];
    return fs->l2v[i];
}

static struct fset_l2 *
get_l2(struct fset *fs, uint64_t key)
{
    struct fset_l2 *n = find_l2(fs, key);

    if (n)
        return n;
    if (fs->nl2 == fs->capl2) {
        uint32_t ncap = fs->capl2 ? fs->capl2 * 2 : 4;
        struct fset_l2 **v = realloc(fs->l2v, ncap * sizeof(*v));

        if (v == NULL)
            return NULL;
        fs->l2v = v;
        fs->capl2 = ncap;
    }
    n = calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    if (hmap_put(&fs->top, key, fs->nl2) < 0) {
        free(n);
        return NULL;
    }
    fs->l2v[fs->nl2++] = n;
    fs->bytes += sizeof(*n);
    fs->last_key = key;
    fs->last_l2 = n;
    return n;
}

static struct fset_leaf *
find_leaf(const struct fset *fs, uint64_t gfn)
{
    struct fset_l2 *n = find_l2(fs, gfn >> TOP_SHIFT);

    return n ? n->leaf[(gfn >> FSET_LEAF_BITS) & L2_MASK] : NULL;
}

uint32_t
fset_count(const struct fset *fs, uint64_t gfn)
{
    const struct fset_leaf *l = find_leaf(fs, gfn);
    uint32_t off = gfn & LEAF_MASK, x;

    if (l == NULL || !(l->w[off / 64] & (UINT64_C(1) << (off % 64))))
        return 0;
    x = fs->extra.len ? hmap_get(&fs->extra, gfn) : HMAP_NONE;
    return x == HMAP_NONE ? 1 : x + 1;
}

int
fset_add(struct fset *fs, uint64_t gfn)
{
    struct fset_l2 *n = get_l2(fs, gfn >> TOP_SHIFT);
    struct fset_leaf **lp, *l;
    uint32_t off = gfn & LEAF_MASK, x;
    uint64_t bit = UINT64_C(1) << (off % 64);

    if (n == NULL)
        return -ENOMEM;
    lp = &n->leaf[(gfn >> FSET_LEAF_BITS) & L2_MASK];
    if (*lp == NULL) {
        *lp = calloc(1, sizeof(**lp));
        if (*lp == NULL)
            return -ENOMEM;
        n->nleaves++;
        fs->bytes += sizeof(**lp);
    }
    l = *lp;
    if (!(l->w[off / 64] & bit)) {
        l->w[off / 64] |= bit;
        l->pop++;
        fs->frames++;
        fs->total++;
        return 1;
    }
    x = hmap_get(&fs->extra, gfn);
    x = x == HMAP_NONE ? 1 : x + 1;
    if (x == HMAP_NONE - 1 || hmap_put(&fs->extra, gfn, x) < 0)
        return -ENOMEM;
    fs->total++;
    return (int)x + 1;
}

static void
clear_bit(struct fset *fs, uint64_t gfn, struct fset_leaf *l)
{
    uint32_t off = gfn & LEAF_MASK;

    l->w[off / 64] &= ~(UINT64_C(1) << (off % 64));
    l->pop--;
    fs->frames--;
    /* Empty leaves stay: a freed and refilled leaf would thrash malloc. */
}

int
fset_del(struct fset *fs, uint64_t gfn)
{
    struct fset_leaf *l = find_leaf(fs, gfn);
    uint32_t off = gfn & LEAF_MASK, x;

    if (l == NULL || !(l->w[off / 64] & (UINT64_C(1) << (off % 64))))
        return -ENOENT;
    fs->total--;
    x = fs->extra.len ? hmap_get(&fs->extra, gfn) : HMAP_NONE;
    if (x == HMAP_NONE) {
        clear_bit(fs, gfn, l);
        return 0;
    }
    if (x == 1)
        hmap_del(&fs->extra, gfn);
    else
        hmap_put(&fs->extra, gfn, x - 1);   /* replaces: cannot fail */
    return (int)x;
}

uint32_t
fset_take(struct fset *fs, uint64_t gfn)
{
    struct fset_leaf *l = find_leaf(fs, gfn);
    uint32_t off = gfn & LEAF_MASK, x, n;

    if (l == NULL || !(l->w[off / 64] & (UINT64_C(1) << (off % 64))))
        return 0;
    x = fs->extra.len ? hmap_del(&fs->extra, gfn) : HMAP_NONE;
    n = x == HMAP_NONE ? 1 : x + 1;
    clear_bit(fs, gfn, l);
    fs->total -= n;
    return n;
}

uint64_t
fset_next(const struct fset *fs, uint64_t from)
{
    uint64_t best = UINT64_MAX;

    for (size_t s = 0; s < fs->top.cap; s++) {
        const struct hmap_slot *hs = &fs->top.slots[s];
        uint64_t key, base;
        const struct fset_l2 *n;

        if (hs->key == 0)
            continue;
        key = hs->key - 1;
        base = key << TOP_SHIFT;
        if (base + (UINT64_C(1) << TOP_SHIFT) <= from || base >= best)
            continue;
        n = fs->l2v[hs->val];
        for (uint32_t j = 0; j <= L2_MASK; j++) {
            const struct fset_leaf *l = n->leaf[j];
            uint64_t lbase = base + ((uint64_t)j << FSET_LEAF_BITS);

            if (l == NULL || l->pop == 0 ||
                lbase + (1u << FSET_LEAF_BITS) <= from || lbase >= best)
                continue;
            for (uint32_t w = 0; w < FSET_LEAF_WORDS; w++) {
                uint64_t word = l->w[w], wbase = lbase + (uint64_t)w * 64;

                if (wbase + 64 <= from)
                    continue;
                if (from > wbase)
                    word &= ~UINT64_C(0) << (from - wbase);
                if (word) {
                    uint64_t g = wbase + (uint64_t)__builtin_ctzll(word);

                    if (g < best)
                        best = g;
                    break;
                }
            }
            if (best != UINT64_MAX && best < lbase + (1u << FSET_LEAF_BITS))
                break;
        }
    }
    return best;
}
