/* SPDX-License-Identifier: MIT */
/*
 * The mapping tracker: for one emulator and one target domain, the set of
 * gfns it has mapped and how many times.
 *
 * Layout (chosen for the physical limit; see docs/PERFORMANCE.md):
 *   top     hmap: gfn >> 24 -> L2 node            (one per 64 GiB of gfns)
 *   L2      4096 pointers -> leaf                  (32 KiB)
 *   leaf    4096-bit bitmap, one bit per gfn       (512 B per 16 MiB)
 *   extra   hmap: gfn -> (count - 1), only for gfns mapped more than once
 * A gfn mapped once costs one bit; a dense guest costs ~0.13 byte per
 * mapping.  Lookups are a hash of the top index (cached for the last
 * node), two array indexes and a bit test.
 */
#ifndef IOMAP_TRACKER_H
#define IOMAP_TRACKER_H

#include <stddef.h>
#include <stdint.h>

#include "util/hmap.h"

#define FSET_LEAF_BITS  12
#define FSET_L2_BITS    12
#define FSET_LEAF_WORDS ((1u << FSET_LEAF_BITS) / 64)

struct fset_leaf {
    uint64_t w[FSET_LEAF_WORDS];
    uint32_t pop;               /* bits set in this leaf */
};

struct fset_l2 {
    struct fset_leaf *leaf[1u << FSET_L2_BITS];
    uint32_t nleaves;
};

struct fset {
    struct hmap     top;        /* gfn >> 24 -> index in l2v */
    struct fset_l2 **l2v;
    uint32_t        nl2, capl2;
    uint64_t        last_key;   /* one-entry cache of the top lookup */
    struct fset_l2 *last_l2;
    struct hmap     extra;      /* gfn -> count - 1 */
    uint64_t        frames;     /* distinct gfns */
    uint64_t        total;      /* mappings, counting multiplicity */
    size_t          bytes;      /* memory held */
};

void     fset_init(struct fset *fs);
void     fset_free(struct fset *fs);
/* Add one mapping of gfn; returns the new count or -ENOMEM. */
int      fset_add(struct fset *fs, uint64_t gfn);
/* Remove one mapping of gfn; returns the remaining count or -ENOENT. */
int      fset_del(struct fset *fs, uint64_t gfn);
/* Remove every mapping of gfn; returns how many there were (0 if none). */
uint32_t fset_take(struct fset *fs, uint64_t gfn);
uint32_t fset_count(const struct fset *fs, uint64_t gfn);
/* The first mapped gfn >= from, or UINT64_MAX. */
uint64_t fset_next(const struct fset *fs, uint64_t from);

#endif
