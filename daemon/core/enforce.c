/* SPDX-License-Identifier: MIT */
/*
 * Policy enforcement: the policy in force (core_set_policy), new maps
 * against it (enforce_map), existing mappings against a new one
 * (core_recheck_policy), its timeouts (core_tick) and the drains of
 * emulators (core_drain).  Above the pages layer: it decides, pages.c,
 * emu.c and cmdq.c carry it out.
 *
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

#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/core/core_priv.h"
#include "util/log.h"
#include "policy/policy.h"

#define MS UINT64_C(1000000)
#define TICK_MIN_NS (10 * MS)

int
core_set_policy(struct core *d, struct policy *p)
{
    struct policy *old = d->policy;

    if (p == NULL && (p = policy_default()) == NULL)
        return -ENOMEM;
    /* One pointer swap on the loop thread: no event sees a mix of both. */
    d->policy = p;
    d->max_pending_per_emu = p->max_pending_per_emu;
    d->max_pending_per_dom = p->max_pending_per_dom;
    d->next_tick = 0;
    policy_free(old);
    log_info("policy from %s in force", p->source);
    core_recheck_policy(d);   /* mappings made under the old one */
    return 0;
}

const struct policy *
core_policy(const struct core *d)
{
    return d->policy;
}

/*
 * The policy on a map the hypervisor already made: the daemon cannot
 * refuse it, so a map the policy forbids (or one beyond a quota) is taken
 * back with a force-unmap, logged with its verdict and counted.
 */
void
enforce_map(struct core *d, const struct iomap_event *ev, struct emu *e,
            struct dom *dm, uint32_t n)
{
    const struct policy *p = d->policy;
    enum policy_verdict v;

    v = policy_check_map(p, ev->emu_domid, ev->ioservid, ev->domid, ev->gfn, n,
                         (ev->flags & IOMAP_F_READONLY) != 0);
    if (v == POLICY_OK &&
        ((p->max_maps_per_emu && emu_mappings(e) > p->max_maps_per_emu) ||
         (p->max_maps_per_dom && dom_mappings(dm) > p->max_maps_per_dom)))
        v = POLICY_E_QUOTA;
    if (v == POLICY_OK)
        return;
    switch (v) {
    case POLICY_E_RMRR:     d->st.rmrr_maps += n; break;
    case POLICY_E_READONLY: d->st.readonly_denials += n; break;
    case POLICY_E_QUOTA:    d->st.quota_denials += n; break;
    default:                d->st.policy_denials += n; break;
    }
    {
        char who[32];

        snprintf(who, sizeof(who), EMU_FMT, EMU_ARGS(e));
        /* Coalesced into ranges and rate-limited (util/log.h). */
        log_pages(LOG_LVL_WARN, "policy:", ev->domid, who, ev->gfn, n,
                  "mapped%s: %s (E%d): force-unmapping",
                  ev->flags & IOMAP_F_READONLY ? " read-only" : "",
                  policy_verdict_name(v), (int)v);
    }
    emu_force_unmap_gfn(d, e, ev->domid, ev->gfn, n);
}


static void
kill_emu(struct core *d, struct emu *e)
{
    /*
     * The CPU mappings of an emulator domain (IOMAP_IOSERVID_ANY): no
     * process is registered under that name, nothing can be killed or
     * forced, and the page waits for the domain to unmap it.
     */
    if (e->killed || e->ioservid == IOMAP_IOSERVID_ANY)
        return;
    e->killed = 1;
    d->st.emu_kills++;
    {
        char who[32];

        snprintf(who, sizeof(who), EMU_FMT, EMU_ARGS(e));
        log_about(LOG_LVL_WARN, &(struct log_about){ .domid = e->target, .emu = who },
                  "policy: emulator %s does not answer invalidates: killing it", who);
    }
    if (d->env.kill_emulator) {
        struct core_emu_id id = emu_id_of(e);

        d->env.kill_emulator(d->env.arg, &id);
    }
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
    log_about(LOG_LVL_WARN, &(struct log_about){ .domid = domid, .emu = NULL },
              "policy: pages of d%u stuck: crashing the guest", domid);
    if (d->env.crash_guest)
        d->env.crash_guest(d->env.arg, domid);
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
        /* One line per range of pages, not per page (util/log.h). */
        if (inval)
            log_pages(LOG_LVL_WARN, "policy:", p->domid, NULL, p->gfn, 1,
                      "waits %llu ms for %u emulator(s) to unmap",
                      (unsigned long long)(age / MS), p->nholders);
        else
            log_pages(LOG_LVL_WARN, "policy:", p->domid, NULL, p->gfn, 1,
                      "waits %llu ms for flush %u (done %u)",
                      (unsigned long long)(age / MS), p->cover_seq, d->max_done);
        break;
    case POLICY_ACT_FORCE_UNMAP:
        for (unsigned i = 0; inval && i < p->nholders; i++) {
            struct emu *e = d->emus[page_holder(p, i)->emu];

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
                ids[n++] = page_holder(p, i)->emu;
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
    uint64_t now = core_clock(d), period;
    uint16_t crashed = UINT16_MAX;
    int steps = 0;

    if (!LIST_EMPTY(&d->drains)) {
        drains_step(d);         /* deadlines */
        cmd_flush_out(d);
    }
    if (d->n_invalidating + d->n_flushing == 0 || now < d->next_tick ||
        d->resync != RS_NONE)
        return 0;
    period = pol->inval.timeout_ns;
    if (pol->flush.timeout_ns && (!period || pol->flush.timeout_ns < period))
        period = pol->flush.timeout_ns;
    period /= 4;
    d->next_tick = now + (period > TICK_MIN_NS ? TICK_MIN_NS : period);
    /*
     * Only the pages in flight, never the pool: the INVALIDATING list,
     * then the FLUSHING one.  A step only posts commands and calls the
     * environment, so no page changes lists during the walk.
     */
    for (uint32_t pi = d->inv_head != PAGE_NONE ? d->inv_head : d->fl_head, pnext,
         inv = d->inv_head != PAGE_NONE; pi != PAGE_NONE; pi = pnext) {
        struct page *p = &d->pages[pi];
        const struct policy_timeout *t;
        uint64_t start, age;

        pnext = p->fl_next;
        if (pnext == PAGE_NONE && inv) {
            inv = 0;
            pnext = d->fl_head;
        }

        if (p->state == PAGE_INVALIDATING) {
            t = &pol->inval;
            start = p->t_removed;
        } else if (p->state == PAGE_FLUSHING) {
            if (seq_done(p->cover_seq, d->max_done))
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
                if (d->broken_seq == 0 || seq_after(p->cover_seq, d->broken_seq)) {
                    d->broken_seq = seq_after(d->max_queued, p->cover_seq) ?
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
/*
 * The walk of core_recheck_policy and core_policy_preview: every run of
 * an alive emulator's mappings the policy pol forbids, gfn by gfn, given
 * to fn (apply: force-unmap and count; preview: count and sample).
 */
typedef void recheck_fn(void *arg, struct emu *e, uint16_t domid, uint64_t gfn,
                        enum policy_verdict v);

static uint64_t
recheck_walk(const struct core *d, const struct policy *pol, uint64_t *checked,
             recheck_fn *fn, void *arg)
{
    uint64_t forced = 0;

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
                *checked += end - g;
                if (policy_check_map(pol, e->emu_domid, e->ioservid, domid, g,
                                     (uint32_t)(end - g), 1) != POLICY_OK) {
                    for (uint64_t x = g; x < end; x++) {
                        enum policy_verdict v = policy_check_map(pol, e->emu_domid,
                                                                 e->ioservid, domid,
                                                                 x, 1, 1);

                        if (v == POLICY_OK)
                            continue;
                        fn(arg, e, domid, x, v);
                        forced++;
                    }
                }
                g = fset_next(&em->fs, end);
            }
        }
    }
    return forced;
}

static void
recheck_apply(void *arg, struct emu *e, uint16_t domid, uint64_t gfn,
              enum policy_verdict v)
{
    struct core *d = arg;

    if (v == POLICY_E_RMRR)
        d->st.rmrr_maps++;
    else
        d->st.policy_denials++;
    emu_force_unmap_gfn(d, e, domid, gfn, 1);      /* coalesced */
}

uint64_t
core_recheck_policy(struct core *d)
{
    const struct policy *pol = d->policy;
    uint64_t forced, checked = 0;

    if (pol == NULL || (!pol->enforce_rules && pol->nrmrr == 0))
        return 0;               /* nothing an existing mapping can break */
    if (d->resync != RS_NONE)
        return 0;               /* the books are partial: done at its end */
    forced = recheck_walk(d, pol, &checked, recheck_apply, d);
    if (forced) {
        log_warnx("policy (%s): %llu of %llu existing mappings are not allowed: "
                  "force-unmapping them", pol->source, (unsigned long long)forced,
                  (unsigned long long)checked);
        cmd_flush_out(d);
    }
    return forced;
}

struct preview_ctx {
    struct core_policy_preview *out;
    struct core_preview_range  *last;
};

static void
recheck_preview(void *arg, struct emu *e, uint16_t domid, uint64_t gfn,
                enum policy_verdict v)
{
    struct preview_ctx *pc = arg;
    struct core_policy_preview *out = pc->out;
    struct core_preview_range *r = pc->last;

    if (v == POLICY_E_RMRR)
        out->reserved++;
    else
        out->denied++;
    if (r && r->emu.emu_domid == e->emu_domid && r->emu.target == e->target &&
        r->emu.ioservid == e->ioservid && r->domid == domid && r->gfn + r->nr == gfn &&
        r->verdict == (int)v) {
        r->nr++;
        return;
    }
    if (out->nranges == CORE_PREVIEW_RANGES) {
        out->truncated = 1;
        pc->last = NULL;
        return;
    }
    r = &out->ranges[out->nranges++];
    r->emu = emu_id_of(e);
    r->domid = domid;
    r->gfn = gfn;
    r->nr = 1;
    r->verdict = (int)v;
    pc->last = r;
}

int
core_policy_preview(const struct core *d, const struct policy *pol,
                    struct core_policy_preview *out)
{
    struct preview_ctx pc = { .out = out, .last = NULL };

    memset(out, 0, sizeof(*out));
    if (d->resync != RS_NONE)
        return -EAGAIN;         /* the books are partial */
    if (pol == NULL || (!pol->enforce_rules && pol->nrmrr == 0))
        return 0;
    recheck_walk(d, pol, &out->checked, recheck_preview, &pc);
    return 0;
}

/* ---- drains (core_drain) ----------------------------------------------------- */

static void
drain_end(struct core *d, struct drain *dr, const char *outcome, uint64_t forced,
          uint64_t maps_left)
{
    struct core_drain_result r = {
        .outcome = outcome,
        .held_at_start = dr->held0 == UINT64_MAX ? 0 : dr->held0, .forced = forced,
        .mappings_left = maps_left, .elapsed_ns = core_clock(d) - dr->t0,
    };
    struct core_emu_id id = dr->id;
    core_drain_done_fn *done = dr->done;
    void *arg = dr->arg;

    LIST_REMOVE(dr, link);
    free(dr);
    done(arg, &id, &r);
}

/* 1 if the drain is over (and reported). */
static int
drain_step(struct core *d, struct drain *dr)
{
    struct emu *e = emu_get(d, &dr->id, 0);
    uint64_t maps;

    if (e == NULL) {
        drain_end(d, dr, "gone", 0, 0);
        return 1;
    }
    if (dr->held0 == UINT64_MAX)
        dr->held0 = e->held_pages;  /* asked during a resync: known now */
    maps = emu_mappings(e);
    if (e->held_pages == 0 && e->qlen == 0 && !e->need_global) {
        if (dr->unmap_all && maps) {
            /* Leaving for good: nothing pending, drop what is left.  The
             * result counts them as the emulator's FORCED counter does. */
            emu_force_unmap_all(d, e);
            e->forced_unmaps += maps;
            drain_end(d, dr, "drained", maps, 0);
        } else {
            drain_end(d, dr, "drained", 0, maps);
        }
        return 1;
    }
    if (core_clock(d) >= dr->deadline) {
        uint64_t held = e->held_pages;
        /* Every mapping goes, held or not: count them all, here and in
         * the emulator's counter, so that the two agree. */
        uint64_t forced = maps > held ? maps : held;
        struct core_emu_id id = dr->id;

        log_warnx("drain of emulator " EMU_FMT ": %llu pages still held at the deadline: "
                  "force-unmapping its %llu mappings", EMU_ARGS(e), (unsigned long long)held,
                  (unsigned long long)forced);
        CORE_OBSERVE(d, timeout, &id, IOMAP_DOMID_ANY, 0, "drain deadline");
        emu_force_unmap_all(d, e);
        e->forced_unmaps += forced;
        drain_end(d, dr, "forced", forced, 0);
        return 1;
    }
    return 0;
}

void
drains_step(struct core *d)
{
    struct drain *dr, *next;

    /*
     * Not while the books are being rebuilt: an emulator's pending pages
     * are not known until the dump ends, so "nothing held" would be a lie
     * (a drain asked mid-resync answered "drained" with pages held).
     */
    if (d->resync != RS_NONE)
        return;

    for (dr = LIST_FIRST(&d->drains); dr; dr = next) {
        next = LIST_NEXT(dr, link);
        drain_step(d, dr);
    }
}

void
drains_free(struct core *d)
{
    struct drain *dr;

    while ((dr = LIST_FIRST(&d->drains)) != NULL) {
        LIST_REMOVE(dr, link);
        free(dr);
    }
}
