/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "simhost/baseline.h"
#include "util/hmap.h"

int
trace_add(struct trace *t, uint8_t op, uint64_t t_ns, uint8_t emu,
          uint16_t domid, uint64_t gfn, uint32_t nr)
{
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 1024;
        struct trace_rec *v = realloc(t->v, ncap * sizeof(*v));

        if (v == NULL)
            return -ENOMEM;
        t->v = v;
        t->cap = ncap;
    }
    t->v[t->n++] = (struct trace_rec){ .t_ns = t_ns, .gfn = gfn, .nr = nr,
                                       .domid = domid, .op = op, .emu = emu };
    return 0;
}

void
trace_free(struct trace *t)
{
    free(t->v);
    memset(t, 0, sizeof(*t));
}

static uint64_t
key(uint16_t domid, uint64_t gfn)
{
    return ((uint64_t)domid << 40) | gfn;
}

static int
serves(const struct baseline_emu *e, uint16_t domid)
{
    for (int i = 0; i < e->ntargets; i++)
        if (e->targets[i] == domid)
            return 1;
    return 0;
}

int
baseline_replay(const struct trace *t, const struct baseline_emu *emus,
                int nemus, struct baseline_result *out)
{
    struct hmap mapped[BASELINE_MAX_EMUS], dropped[BASELINE_MAX_EMUS], removed;
    int rc = 0;

    if (nemus > BASELINE_MAX_EMUS)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    hmap_init(&removed);
    for (int e = 0; e < nemus; e++) {
        hmap_init(&mapped[e]);
        hmap_init(&dropped[e]);
    }
    for (size_t i = 0; i < t->n && rc == 0; i++) {
        const struct trace_rec *r = &t->v[i];

        if (r->op == TR_USE && r->emu < nemus) {
            for (uint32_t k = 0; k < r->nr; k++) {
                uint64_t kk = key(r->domid, r->gfn + k);

                if (hmap_get(&mapped[r->emu], kk) != HMAP_NONE)
                    continue;
                if (hmap_del(&dropped[r->emu], kk) != HMAP_NONE)
                    out->remaps++;
                if (hmap_put(&mapped[r->emu], kk, 1) < 0)
                    rc = -ENOMEM;
            }
        } else if (r->op == TR_BALLOON) {
            for (uint32_t k = 0; k < r->nr; k++)
                if (hmap_put(&removed, key(r->domid, r->gfn + k), 1) < 0)
                    rc = -ENOMEM;
        } else if (r->op == TR_BALLOON_END) {
            uint64_t slowest = 0;

            out->hypercalls++;
            for (int e = 0; e < nemus; e++) {
                struct hmap *m = &mapped[e];

                if (!serves(&emus[e], r->domid))
                    continue;
                out->invalidates_sent++;
                if (emus[e].answer_delay_ns > slowest)
                    slowest = emus[e].answer_delay_ns;
                /* Drop everything of this domain; remember what was live. */
                for (size_t s = 0; s < m->cap; s++) {
                    uint64_t kk;

                    if (m->slots[s].key == 0)
                        continue;
                    kk = m->slots[s].key - 1;
                    if ((uint16_t)(kk >> 40) != r->domid)
                        continue;
                    out->unmaps++;
                    if (hmap_get(&removed, kk) != HMAP_NONE)
                        continue;   /* removed: this unmap was needed */
                    out->needless_unmaps++;
                    if (hmap_put(&dropped[e], kk, 1) < 0)
                        rc = -ENOMEM;
                }
                for (size_t s = 0; s < m->cap; s++)
                    if (m->slots[s].key && (uint16_t)((m->slots[s].key - 1) >> 40) == r->domid) {
                        hmap_del(m, m->slots[s].key - 1);
                        s--;        /* backward shift may refill this slot */
                    }
            }
            /* Removed pages will not be used again as the same page. */
            for (size_t s = 0; s < removed.cap; s++)
                if (removed.slots[s].key)
                    for (int e = 0; e < nemus; e++)
                        hmap_del(&dropped[e], removed.slots[s].key - 1);
            hmap_free(&removed);
            out->vcpu_blocked_ns += slowest;
        }
    }
    hmap_free(&removed);
    for (int e = 0; e < nemus; e++) {
        hmap_free(&mapped[e]);
        hmap_free(&dropped[e]);
    }
    return rc;
}
