/* SPDX-License-Identifier: MIT */
/*
 * The in-memory policy and its checks.  No I/O here: see parse.c.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/policy.h"

#define MS UINT64_C(1000000)

struct policy *
policy_default(void)
{
    struct policy *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    p->enforce_rules = 0;
    p->qemu_uid_base = -1;      /* policy_resolve_users() looks it up */
    p->max_maps_per_emu = UINT64_C(1) << 26;
    p->max_maps_per_dom = UINT64_C(1) << 26;
    p->max_pending_per_emu = UINT64_C(1) << 20;
    p->max_pending_per_dom = UINT64_C(1) << 20;
    p->inval.timeout_ns = 5000 * MS;
    p->inval.nsteps = 3;
    p->inval.steps[0] = POLICY_ACT_LOG;
    p->inval.steps[1] = POLICY_ACT_FORCE_UNMAP;
    p->inval.steps[2] = POLICY_ACT_KILL_EMULATOR;
    p->flush.timeout_ns = 1000 * MS;
    p->flush.nsteps = 3;
    p->flush.steps[0] = POLICY_ACT_LOG;
    p->flush.steps[1] = POLICY_ACT_FLUSH;
    p->flush.steps[2] = POLICY_ACT_LOG;
    strcpy(p->source, "built-in");
    return p;
}

void
policy_free(struct policy *p)
{
    if (p == NULL)
        return;
    for (unsigned i = 0; i < p->nrules; i++)
        free(p->rules[i].targets);
    free(p->rules);
    free(p->rmrr);
    free(p->ro);
    free(p);
}

static int
overlaps(const struct policy_range *r, unsigned n, uint16_t domid, uint64_t gfn,
         uint32_t nr)
{
    for (unsigned i = 0; i < n; i++)
        if ((r[i].domid == POLICY_ANY || r[i].domid == domid) &&
            gfn < r[i].gfn + r[i].nr && r[i].gfn < gfn + nr)
            return 1;
    return 0;
}

enum policy_verdict
policy_check_map(const struct policy *p, uint16_t emu_domid, uint16_t ioservid,
                 uint16_t domid, uint64_t gfn, uint32_t nr, int readonly)
{
    const struct policy_rule *match = NULL;

    if (p == NULL)
        return POLICY_OK;
    if (overlaps(p->rmrr, p->nrmrr, domid, gfn, nr))
        return POLICY_E_RMRR;
    if (!readonly && overlaps(p->ro, p->nro, domid, gfn, nr))
        return POLICY_E_READONLY;
    if (!p->enforce_rules)
        return POLICY_OK;
    /* Deny by default: the first rule naming this emulator and domain. */
    for (unsigned i = 0; i < p->nrules && !match; i++) {
        const struct policy_rule *r = &p->rules[i];

        if ((r->emu_domid != POLICY_ANY && r->emu_domid != emu_domid) ||
            (r->ioservid != POLICY_ANY && r->ioservid != ioservid))
            continue;
        if (r->any_target)
            match = r;
        for (unsigned t = 0; t < r->ntargets && !match; t++)
            if (r->targets[t] == domid)
                match = r;
    }
    if (match == NULL)
        return POLICY_E_DENIED;
    if (match->readonly && !readonly)
        return POLICY_E_READONLY;
    return POLICY_OK;
}

static int
rule_covers(const struct policy_rule *r, uint16_t emu_domid, uint16_t target,
            uint16_t ioservid)
{
    if ((r->emu_domid != POLICY_ANY && r->emu_domid != emu_domid) ||
        (r->ioservid != POLICY_ANY && r->ioservid != ioservid))
        return 0;
    if (r->any_target)
        return 1;
    for (unsigned t = 0; t < r->ntargets; t++)
        if (r->targets[t] == target)
            return 1;
    return 0;
}

int
policy_may_register(const struct policy *p, uid_t uid, uint16_t emu_domid,
                    uint16_t target, uint16_t ioservid)
{
    if (uid == 0 || uid == geteuid())
        return 1;
    if (p == NULL)
        return 0;
    if (p->qemu_uid_base >= 0 && (int64_t)uid >= p->qemu_uid_base &&
        (int64_t)uid - p->qemu_uid_base == target && emu_domid == 0)
        return 1;
    for (unsigned i = 0; i < p->nrules; i++)
        if (p->rules[i].has_uid && p->rules[i].uid == uid &&
            rule_covers(&p->rules[i], emu_domid, target, ioservid))
            return 1;
    return 0;
}

int
policy_uid_may_connect(const struct policy *p, uid_t uid)
{
    if (uid == 0 || uid == geteuid())
        return 1;
    if (p == NULL)
        return 0;
    if (p->qemu_uid_base >= 0 && (int64_t)uid >= p->qemu_uid_base &&
        (int64_t)uid - p->qemu_uid_base < 0x7ff0)
        return 1;
    for (unsigned i = 0; i < p->nrules; i++)
        if (p->rules[i].has_uid && p->rules[i].uid == uid)
            return 1;
    return 0;
}

const char *
policy_verdict_name(enum policy_verdict v)
{
    switch (v) {
    case POLICY_OK:         return "ok";
    case POLICY_E_DENIED:   return "denied";
    case POLICY_E_RMRR:     return "rmrr";
    case POLICY_E_READONLY: return "readonly";
    case POLICY_E_QUOTA:    return "quota";
    }
    return "unknown";
}

static const char *const action_names[] = {
    [POLICY_ACT_NONE] = "none", [POLICY_ACT_LOG] = "log",
    [POLICY_ACT_FORCE_UNMAP] = "force-unmap", [POLICY_ACT_FLUSH] = "flush",
    [POLICY_ACT_KILL_EMULATOR] = "kill-emulator",
    [POLICY_ACT_CRASH_GUEST] = "crash-guest",
};

const char *
policy_action_name(enum policy_action a)
{
    return (unsigned)a < sizeof(action_names) / sizeof(action_names[0]) ?
           action_names[a] : "unknown";
}

int
policy_action_parse(const char *s)
{
    for (unsigned i = 0; i < sizeof(action_names) / sizeof(action_names[0]); i++)
        if (strcmp(s, action_names[i]) == 0)
            return (int)i;
    return -1;
}
