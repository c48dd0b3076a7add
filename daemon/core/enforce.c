/* SPDX-License-Identifier: MIT */
/*
 * core_tick(): the policy's timeouts.  A page INVALIDATING for longer
 * than policy->inval.timeout_ns takes the next escalation step at each
 * multiple of it (log, force-unmap, kill the emulator, crash the guest);
 * a page FLUSHING longer than policy->flush.timeout_ns likewise (log and
 * report the device broken, ask for another flush, ...).  Whatever the
 * policy says, a page is never released before its flush completed (I1):
 * the FLUSHING steps only report, retry and escalate.
 *
 * core_recheck_policy(): existing mappings against a new policy's map
 * rules (after a reload, after a resync).
 */
#include "config.h"

#include <stdlib.h>

#include "daemon/core/core_priv.h"
#include "util/log.h"
#include "policy/policy.h"

#define MS UINT64_C(1000000)
#define TICK_MIN_NS (10 * MS)

static struct holder *
holder_at(struct page *p, unsigned i)
{
    return i < IOMAPD_INLINE_HOLDERS ? &p->h[i] : &p->more[i - IOMAPD_INLINE_HOLDERS];
}

static void
kill_emu(struct core *d, struct emu *e)
{
    if (e->killed)
        return;
    e->killed = 1;
    d->st.emu_kills++;
    log_warnx("policy: emulator %u:%u does not answer invalidates: killing it",
              e->emu_domid, e->ioservid);
    if (d->kill_emulator)
        d->kill_emulator(d, e->emu_domid, e->ioservid);
    /* Whatever happens to the process, its mappings are taken back. */
    if (d->emus[e->idx] == e && e->has_chan) {
        e->alive = 0;
        emu_unregister(d, e);
    }
    if (d->emus[e->idx] == e)
        emu_force_unmap_all(d, e);
}

static void
crash_guest(struct core *d, uint16_t domid, uint16_t *last)
{
    if (*last == domid)
        return;                 /* once per domain and tick */
    *last = domid;
    d->st.guest_crashes++;
    log_warnx("policy: pages of d%u stuck: crashing the guest", domid);
    if (d->crash_guest)
        d->crash_guest(d, domid);
}

static void
step(struct core *d, uint32_t pi, enum policy_action a, uint64_t age,
     uint16_t *crashed)
{
    struct page *p = &d->pages[pi];
    int inval = p->state == PAGE_INVALIDATING;

    d->st.escalations++;
    switch (a) {
    case POLICY_ACT_NONE:
        break;
    case POLICY_ACT_LOG:
        if (inval)
            log_warnx("policy: d%u gfn %#llx waits %llu ms for %u emulator(s) to unmap",
                      p->domid, (unsigned long long)p->gfn,
                      (unsigned long long)(age / MS), p->nholders);
        else
            log_warnx("policy: d%u gfn %#llx waits %llu ms for flush %u (done %u)",
                      p->domid, (unsigned long long)p->gfn,
                      (unsigned long long)(age / MS), p->cover_seq, d->max_done);
        break;
    case POLICY_ACT_FORCE_UNMAP:
        for (unsigned i = 0; inval && i < p->nholders; i++) {
            struct emu *e = d->emus[holder_at(p, i)->emu];

            if (e) {
                e->forced_unmaps++;
                emu_force_unmap_gfn(d, e, p->domid, p->gfn, 1);
            }
        }
        if (!inval)
            d->flush_wanted = 1;
        break;
    case POLICY_ACT_FLUSH:
        d->flush_wanted = 1;
        break;
    case POLICY_ACT_KILL_EMULATOR:
        /* kill_emu may change the holders: collect them first. */
        if (inval) {
            uint16_t ids[64];
            unsigned n = 0;

            for (unsigned i = 0; i < p->nholders && n < 64; i++)
                ids[n++] = holder_at(p, i)->emu;
            for (unsigned i = 0; i < n; i++)
                if (d->emus[ids[i]])
                    kill_emu(d, d->emus[ids[i]]);
        }
        break;
    case POLICY_ACT_CRASH_GUEST:
        crash_guest(d, p->domid, crashed);
        break;
    }
}

int
core_tick(struct core *d)
{
    const struct policy *pol = d->policy;
    uint64_t now = d->clock(d), period;
    uint16_t crashed = UINT16_MAX;
    int steps = 0;

    if (d->n_invalidating + d->n_flushing == 0 || now < d->next_tick ||
        d->resync != RS_NONE)
        return 0;
    period = pol->inval.timeout_ns;
    if (pol->flush.timeout_ns && (!period || pol->flush.timeout_ns < period))
        period = pol->flush.timeout_ns;
    period /= 4;
    d->next_tick = now + (period > TICK_MIN_NS ? TICK_MIN_NS : period);
    for (uint32_t pi = 0; pi < d->pages_cap; pi++) {
        struct page *p = &d->pages[pi];
        const struct policy_timeout *t;
        uint64_t start, age;

        if (p->state == PAGE_INVALIDATING) {
            t = &pol->inval;
            start = p->t_removed;
        } else if (p->state == PAGE_FLUSHING) {
            if (p->cover_seq <= d->max_done)
                continue;       /* flushed: waits for room on the command ring */
            t = &pol->flush;
            start = p->t_removed + (uint64_t)p->flushing_ms * MS;
        } else {
            continue;
        }
        if (t->timeout_ns == 0 || now < start)
            continue;
        age = now - start;
        if (p->esc == 0 && age >= t->timeout_ns) {
            if (p->state == PAGE_INVALIDATING) {
                d->st.timeouts_invalidating++;
            } else {
                d->st.timeouts_flushing++;
                if (p->cover_seq > d->broken_seq) {
                    d->broken_seq = d->max_queued > p->cover_seq ?
                                    d->max_queued : p->cover_seq;
                    d->st.devices_broken++;
                    log_warnx("device-TLB flush %u has not completed after %llu ms "
                              "(done %u): device reported broken; its pages stay held",
                              p->cover_seq, (unsigned long long)(age / MS),
                              d->max_done);
                }
            }
        }
        /* Steps that are due, in order; a step may end the page's wait. */
        while (p->esc < t->nsteps && age >= (uint64_t)(p->esc + 1) * t->timeout_ns &&
               (p->state == PAGE_INVALIDATING || p->state == PAGE_FLUSHING)) {
            enum policy_action a = t->steps[p->esc++];

            step(d, pi, a, age, &crashed);
            steps++;
        }
    }
    if (steps) {
        emu_send_ioreqs(d);
        cmd_flush_out(d);
    }
    return steps;
}

/*
 * Existing mappings against the map rules of the policy in force.  Called
 * when a policy is swapped in (core_set_policy: SIGHUP, policy.reload)
 * and when a resync has rebuilt the books from a dump (DUMP_MAP records
 * never went through ev_map's check).  A mapping the policy forbids (its
 * emulator may not map that domain, or it lies in a reserved range) is
 * force-unmapped through the shim and counted by its verdict, as for a
 * new map.  The tracker does not keep whether a mapping is read-only, so
 * existing mappings are taken as read-only: read-only rules and quotas
 * apply to new maps only.  Pages in flight are not looked at: they are on
 * their way out already.  Returns the number of gfns force-unmapped.
 */
uint64_t
core_recheck_policy(struct core *d)
{
    const struct policy *pol = d->policy;
    uint64_t forced = 0, checked = 0;

    if (pol == NULL || (!pol->enforce_rules && pol->nrmrr == 0))
        return 0;               /* nothing an existing mapping can break */
    if (d->resync != RS_NONE)
        return 0;               /* the books are partial: done at its end */
    for (uint32_t i = 0; i < d->nemus; i++) {
        struct emu *e = d->emus[i];
        struct emu_map *em;

        if (e == NULL || !e->alive)
            continue;           /* its mappings are being taken back */
        LIST_FOREACH(em, &e->maps, emu_link) {
            uint16_t domid = em->dom->domid;
            uint64_t g = fset_next(&em->fs, 0);

            while (g != UINT64_MAX) {
                uint64_t end = g + 1;

                /* A run of consecutive gfns: one check if it is allowed. */
                while (end - g < IOMAP_MAX_NR && fset_next(&em->fs, end) == end)
                    end++;
                checked += end - g;
                if (policy_check_map(pol, e->emu_domid, e->ioservid, domid, g,
                                     (uint32_t)(end - g), 1) != POLICY_OK) {
                    for (uint64_t x = g; x < end; x++) {
                        enum policy_verdict v = policy_check_map(pol, e->emu_domid,
                                                                 e->ioservid, domid,
                                                                 x, 1, 1);

                        if (v == POLICY_OK)
                            continue;
                        if (v == POLICY_E_RMRR)
                            d->st.rmrr_maps++;
                        else
                            d->st.policy_denials++;
                        emu_force_unmap_gfn(d, e, domid, x, 1);    /* coalesced */
                        forced++;
                    }
                }
                g = fset_next(&em->fs, end);
            }
        }
    }
    if (forced) {
        log_warnx("policy (%s): %llu of %llu existing mappings are not allowed: "
                  "force-unmapping them", pol->source, (unsigned long long)forced,
                  (unsigned long long)checked);
        cmd_flush_out(d);
    }
    return forced;
}
