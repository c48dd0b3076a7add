/* SPDX-License-Identifier: MIT */
/*
 * The mapping tracker: for one emulator and one target domain, the set of
 * gfns it has mapped and how many times.
 *
 * A multiset made of two sets of gfns and a hash map:
 *   b[0]    gfns mapped at least once
 *   b[1]    gfns mapped at least twice
 *   extra   hmap: gfn -> (count - 2), only for gfns mapped 3 times or more
 * A page mapped twice (the same buffer in two places) costs a second bit,
 * not a hash slot.
 *
 * The sets have three implementations behind this one API, chosen per
 * process before the first set is made (fset_select(), or the environment
 * variable IOMAPD_TRACKER=fset|roaring|judy read by the first fset_init()),
 * so that every workload of the daemon and the bench can run on each:
 *   fset     ours: top hmap gfn >> 21 -> L2 of 512 leaf pointers -> leaf
 *            of 4096 gfns (16 MiB).  A leaf holding few gfns is a sorted
 *            array of 16-bit offsets (up to FSET_ARRAY_MAX, 512 B);
 *            past that a 4096-bit bitmap (512 B).  A lookup is a
 *            hash of the top index (cached for the last node), two array
 *            indexes and a bit test or a short binary search.
 *   roaring  CRoaring (libroaring): top hmap gfn >> 32 -> roaring bitmap.
 *   judy     libJudy's Judy1 (64-bit keys).
 * docs/PERFORMANCE.md compares them (make bench, the tracker workload).
 */
#ifndef IOMAP_TRACKER_H
#define IOMAP_TRACKER_H

#include <stddef.h>
#include <stdint.h>

#include "util/hmap.h"

#define FSET_LEAF_BITS  12
#define FSET_L2_BITS    9       /* an L2 node: 512 leaves, 8 GiB of gfns, 4 KiB */
#define FSET_LEAF_WORDS ((1u << FSET_LEAF_BITS) / 64)
#define FSET_ARRAY_MAX  256     /* offsets in an array leaf (512 B) before a bitmap */

enum fset_impl { FSET_IMPL_FSET, FSET_IMPL_ROARING, FSET_IMPL_JUDY, FSET_IMPL_N };

/*
 * A leaf: while cap != 0, w holds pop sorted 16-bit offsets (room for
 * cap); with cap == 0 it is a bitmap of FSET_LEAF_WORDS words.
 */
struct fset_leaf {
    uint16_t pop;               /* gfns in this leaf */
    uint16_t cap;
    uint32_t pad;
    uint64_t w[];
};

struct fset_l2 {
    struct fset_leaf *leaf[1u << FSET_L2_BITS];
    uint32_t nleaves;
};

/* One set of gfns, in the implementation of its fset. */
struct fset_bits {
    struct hmap top;            /* top key -> index in v (fset, roaring) */
    void      **v;              /* struct fset_l2 * or roaring_bitmap_t * */
    uint32_t    nv, capv;
    uint64_t    last_key;       /* one-entry cache of the top lookup */
    void       *last;
    void       *judy;           /* Judy1 array (judy) */
};

struct fset {
    uint8_t         impl;       /* enum fset_impl */
    struct fset_bits b[2];      /* count >= 1, count >= 2 */
    struct hmap     extra;      /* gfn -> count - 2 */
    uint64_t        frames;     /* distinct gfns */
    uint64_t        total;      /* mappings, counting multiplicity */
    size_t          bytes;      /* memory held (fset implementation) */
};

/*
 * The implementation of the sets made from now on, by name: 0, or
 * -EINVAL for an unknown name.  Sets already made keep theirs.
 */
int      fset_select(const char *name);
int      fset_selected(void);               /* enum fset_impl */
const char *fset_impl_name(int impl);

void     fset_init(struct fset *fs);
void     fset_free(struct fset *fs);
/* Add one mapping of gfn; returns the new count or -ENOMEM. */
int      fset_add(struct fset *fs, uint64_t gfn);
/* Remove one mapping of gfn; returns the remaining count or -ENOENT. */
int      fset_del(struct fset *fs, uint64_t gfn);
/* Remove every mapping of gfn; returns how many there were (0 if none). */
uint32_t fset_take(struct fset *fs, uint64_t gfn);
uint32_t fset_count(const struct fset *fs, uint64_t gfn);
/*
 * The first mapped gfn >= from, or UINT64_MAX.  Starts at from's own leaf
 * (no rescan from the start), so paging through a set by calling it with
 * the last gfn + 1 costs what lies between the two.
 */
uint64_t fset_next(const struct fset *fs, uint64_t from);

#endif
