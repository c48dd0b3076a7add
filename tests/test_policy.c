/* SPDX-License-Identifier: MIT */
/*
 * The policy parser and checks, and the policy enforced by the daemon on
 * the simulated hypervisor: deny by default, RMRR, read-only, reload.
 * Exit status: tests/cunit_main.h (the number of failures, capped).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/cunit_main.h"

#include "simhost/world.h"
#include "daemon/core/core_priv.h"
#include "util/log.h"
#include "policy/policy.h"

#define US UINT64_C(1000)
#define MS UINT64_C(1000000)

static const char good[] =
    "# iomapd policy\n"
    "emulators = (\n"
    "  { domid = 0; ioservid = 0; targets = [ 1, 2 ]; },\n"
    "  { domid = 0; ioservid = 1; targets = [ 1 ]; readonly = true; },\n"
    "  { domid = 7; targets = \"any\"; }\n"
    ");\n"
    "quotas = { mappings_per_emulator = 100000; mappings_per_domain = 200000;\n"
    "           pending_per_emulator = 5000; pending_per_domain = 6000; };\n"
    "reserved = ( { domid = 1; gfn = 0x800; nr = 16; } );\n"
    "readonly = ( { domid = \"any\"; gfn = 0x900; nr = 8; } );\n"
    "timeouts = {\n"
    "  invalidating = { ms = 250; steps = [ \"log\", \"force-unmap\", \"kill-emulator\", "
    "\"crash-guest\" ]; };\n"
    "  flushing = { ms = 100; steps = [ \"log\", \"flush\" ]; };\n"
    "};\n";

static void
test_parse_good(void)
{
    struct policy *p = NULL;
    char err[POLICY_ERRLEN];

    CU_ASSERT_EQUAL_FATAL(policy_parse_string(good, &p, err), 0);
    CU_ASSERT_EQUAL(p->nrules, 3);
    CU_ASSERT_EQUAL(p->rules[0].ntargets, 2);
    CU_ASSERT_EQUAL(p->rules[2].ioservid, POLICY_ANY);
    CU_ASSERT(p->rules[2].any_target);
    CU_ASSERT_EQUAL(p->max_maps_per_emu, 100000);
    CU_ASSERT_EQUAL(p->max_pending_per_dom, 6000);
    CU_ASSERT_EQUAL(p->nrmrr, 1);
    CU_ASSERT_EQUAL(p->rmrr[0].gfn, 0x800);
    CU_ASSERT_EQUAL(p->ro[0].domid, POLICY_ANY);
    CU_ASSERT_EQUAL(p->inval.timeout_ns, 250 * MS);
    CU_ASSERT_EQUAL(p->inval.nsteps, 4);
    CU_ASSERT_EQUAL(p->inval.steps[3], POLICY_ACT_CRASH_GUEST);
    CU_ASSERT_EQUAL(p->flush.steps[1], POLICY_ACT_FLUSH);

    CU_ASSERT_EQUAL(policy_check_map(p, 0, 0, 1, 0, 1, 0), POLICY_OK);
    CU_ASSERT_EQUAL(policy_check_map(p, 0, 0, 3, 0, 1, 0), POLICY_E_DENIED);
    CU_ASSERT_EQUAL(policy_check_map(p, 0, 1, 2, 0, 1, 1), POLICY_E_DENIED);
    CU_ASSERT_EQUAL(policy_check_map(p, 0, 1, 1, 0, 1, 0), POLICY_E_READONLY);
    CU_ASSERT_EQUAL(policy_check_map(p, 0, 1, 1, 0, 1, 1), POLICY_OK);
    CU_ASSERT_EQUAL(policy_check_map(p, 7, 9, 42, 0, 1, 0), POLICY_OK);
    CU_ASSERT_EQUAL(policy_check_map(p, 0, 0, 1, 0x7f8, 9, 0), POLICY_E_RMRR);
    CU_ASSERT_EQUAL(policy_check_map(p, 0, 0, 1, 0x810, 9, 0), POLICY_OK);
    CU_ASSERT_EQUAL(policy_check_map(p, 0, 0, 2, 0x800, 1, 0), POLICY_OK);
    CU_ASSERT_EQUAL(policy_check_map(p, 0, 0, 2, 0x907, 1, 0), POLICY_E_READONLY);
    CU_ASSERT_EQUAL(policy_check_map(p, 0, 0, 2, 0x907, 1, 1), POLICY_OK);
    policy_free(p);

    /*
     * Deny by default needs an emulators list (iomapd.conf(5)): an empty
     * list denies every map; an empty file, or one with only quotas,
     * denies none (issue 12 item 7: a quotas-only file force-unmapped
     * every live mapping at a reload).
     */
    p = NULL;
    CU_ASSERT_EQUAL_FATAL(policy_parse_string("emulators = ( );", &p, err), 0);
    CU_ASSERT_EQUAL(policy_check_map(p, 0, 1, 1, 0, 1, 0), POLICY_E_DENIED);
    policy_free(p);
    p = NULL;
    CU_ASSERT_EQUAL_FATAL(policy_parse_string("", &p, err), 0);
    CU_ASSERT_EQUAL(policy_check_map(p, 0, 1, 1, 0, 1, 0), POLICY_OK);
    policy_free(p);
    p = NULL;
    CU_ASSERT_EQUAL_FATAL(policy_parse_string("quotas = { pending_per_emulator = 64; };",
                                              &p, err), 0);
    CU_ASSERT_EQUAL(p->enforce_rules, 0);
    CU_ASSERT_EQUAL(policy_check_map(p, 0, 1, 1, 0, 1, 0), POLICY_OK);
    policy_free(p);
    p = policy_default();
    CU_ASSERT_EQUAL(policy_check_map(p, 0, 1, 1, 0, 1, 0), POLICY_OK);
    CU_ASSERT(p->inval.timeout_ns > 0 && p->flush.timeout_ns > 0);
    policy_free(p);
}

struct bad_case {
    const char *text;
    const char *want;   /* substring of the error */
};

static void
test_parse_bad(void)
{
    static const struct bad_case cases[] = {
        { "emulators = ( { domid = 0; targets = [1] } ",        "<string>:1: " },
        { "\n\nquotas = { mappings_per_emulatr = 5; };\n",      ":3: unknown setting 'mappings_per_emulatr'" },
        { "bogus = 1;\n",                                       ":1: unknown setting 'bogus'" },
        { "emulators = ( { targets = [1]; } );",                "without 'domid'" },
        { "emulators = ( { domid = 0; } );",                    "without 'targets'" },
        { "emulators = ( { domid = 0; targets = [ 70000 ]; } );", "out of range" },
        { "emulators = ( { domid = 0; targets = \"all\"; } );", "\"any\"" },
        { "emulators = ( { domid = 0; targets = [1]; readonly = 1; } );", "true or false" },
        { "reserved = ( { domid = 1; nr = 4; } );",             "without 'gfn'" },
        { "reserved = ( { gfn = 1; nr = 0; } );",               "out of range" },
        { "readonly = 5;",                                      "must be a list" },
        { "timeouts = { invalidating = { ms = -1; }; };",       "out of range" },
        { "timeouts = { flushing = { steps = [ \"reboot\" ]; }; };", "unknown action 'reboot'" },
        { "timeouts = { flushing = { steps = [ \"log\", \"log\", \"log\", \"log\", \"log\" ]; }; };",
          "at most" },
        { "quotas = { pending_per_domain = \"lots\"; };",       "must be an integer" },
        { "\nemulators = (\n  { domid = 0; targets = [ 1 ];\n    ioservid = 1; colour = 3; }\n);\n",
          ":4: unknown setting 'colour'" },
    };
    char err[POLICY_ERRLEN];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct policy *p = (struct policy *)&err;    /* must stay untouched */

        CU_ASSERT_EQUAL(policy_parse_string(cases[i].text, &p, err), -1);
        CU_ASSERT(p == (struct policy *)&err);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].want));
        if (!strstr(err, cases[i].want))
            fprintf(stderr, "\n  case %zu: got \"%s\", want \"%s\"\n", i, err,
                    cases[i].want);
    }
}

static void
test_load_file_and_reload(void)
{
    char path[] = "/tmp/iomapd-policy-XXXXXX";
    char err[POLICY_ERRLEN];
    struct policy *p = NULL, *keep;
    struct core d;
    FILE *f;
    int fd = mkstemp(path);

    CU_ASSERT_FATAL(fd >= 0);
    f = fdopen(fd, "w");
    fputs(good, f);
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(policy_load(path, &p, err), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(p->source, "iomapd-policy-"));
    /* The daemon swaps in the new policy as a whole. */
    memset(&d, 0, sizeof(d));
    d.policy = policy_default();
    CU_ASSERT_EQUAL(core_set_policy(&d, p), 0);
    CU_ASSERT(d.policy == p);
    /* A bad file: the old policy stays, and the error names file and line. */
    f = fopen(path, "w");
    fputs("emulators = (\n  { domid = 0; targets = [ 1 ]; }\n", f);
    fclose(f);
    keep = d.policy;
    p = NULL;
    CU_ASSERT_EQUAL(policy_load(path, &p, err), -1);
    CU_ASSERT(p == NULL);
    CU_ASSERT(d.policy == keep);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ":3:"));
    unlink(path);
    CU_ASSERT_EQUAL(policy_load(path, &p, err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot read"));
    CU_ASSERT_EQUAL(core_set_policy(&d, NULL), 0);   /* back to built-in */
    CU_ASSERT_STRING_EQUAL(d.policy->source, "built-in");
    policy_free(d.policy);
}

/* ---- enforcement on the simulated hypervisor ---------------------------------- */

static struct world W;

static void
test_enforce(void)
{
    struct policy *p = NULL;
    char err[POLICY_ERRLEN], why[256];
    int a, b, c;

    CU_ASSERT_FATAL(world_init(&W, 1u << 15, 20 * US, 4096) == 0);
    CU_ASSERT_FATAL(sim_domain_create(&W.sim, 1, 4096) == 0);
    CU_ASSERT_FATAL(sim_domain_create(&W.sim, 2, 4096) == 0);
    CU_ASSERT_FATAL(sim_domain_create(&W.sim, 3, 1024) == 0);
    CU_ASSERT_EQUAL_FATAL(policy_parse_string(good, &p, err), 0);
    CU_ASSERT_EQUAL(core_set_policy(W.core, p), 0);
    a = world_add_emu(&W, 0, 0, 10 * US);
    b = world_add_emu(&W, 0, 0, 10 * US);
    c = world_add_emu(&W, 4, 0, 10 * US);      /* in no rule: its domain is in none */
    world_emu_serves(&W, a, 1);
    world_emu_serves(&W, a, 3);
    world_emu_serves(&W, b, 1);
    world_emu_serves(&W, c, 2);
    /* Allowed maps stay; a's map of d3 (not a target) is taken back. */
    CU_ASSERT_EQUAL(world_map(&W, a, 1, 0, 64), 64);
    CU_ASSERT_EQUAL(world_map(&W, a, 3, 0, 32), 32);
    CU_ASSERT_EQUAL(world_map(&W, c, 2, 0, 16), 16);
    world_settle(&W);
    CU_ASSERT_EQUAL(world_live(&W, a), 64);
    CU_ASSERT_EQUAL(world_live(&W, c), 0);
    CU_ASSERT_EQUAL(W.core->st.policy_denials, 32 + 16);
    /* RMRR: its own code and counter. */
    CU_ASSERT_EQUAL(world_map(&W, a, 1, 0x7f0, 32), 32);
    world_settle(&W);
    CU_ASSERT_EQUAL(W.core->st.rmrr_maps, 32);
    CU_ASSERT_EQUAL(world_live(&W, a), 64);
    /* b may only map read-only (the model maps writable). */
    CU_ASSERT_EQUAL(world_map(&W, b, 1, 100, 8), 8);
    world_settle(&W);
    CU_ASSERT_EQUAL(W.core->st.readonly_denials, 8);
    CU_ASSERT_EQUAL(world_live(&W, b), 0);
    /* A read-only map by b is fine. */
    CU_ASSERT_EQUAL(sim_iommu_map(&W.sim, world_sim_idx(&W, b, 1), 1, 200, 1u << 30, 4,
                                  IOMAP_F_READONLY), 4);
    world_settle(&W);
    CU_ASSERT_EQUAL(world_live(&W, b), 4);
    CU_ASSERT_EQUAL(world_check_views(&W, why, sizeof(why)), 0);
    CU_ASSERT_EQUAL(sim_violations(&W.sim), 0);
    /* Pages released as usual under the policy. */
    for (int g = 0; g < 64; g++)
        sim_decrease_reservation(&W.sim, 1, (uint64_t)g, 0);
    sim_decrease_reservation(&W.sim, 1, 200, 2);
    world_advance(&W, 5 * MS);
    CU_ASSERT_EQUAL(sim_check_quiescent(&W.sim), 0);
    CU_ASSERT_EQUAL(sim_violations(&W.sim), 0);
    world_fini(&W);
}

/* ---- existing mappings checked again (reload, resync) ------------------------ */

/* The sim's live mappings of emulator me in domid, gfns [lo, hi). */
static uint64_t
sim_live(struct world *w, int me, uint16_t domid, uint64_t lo, uint64_t hi)
{
    int idx = world_sim_idx(w, me, domid);
    const struct sim_emu *se;
    uint64_t n = 0;

    if (idx < 0)
        return 0;
    se = &w->sim.emus[idx];
    for (uint32_t i = 0; i < se->nmaps; i++)
        if (se->maps[i].live && se->maps[i].domid == domid &&
            se->maps[i].gfn >= lo && se->maps[i].gfn < hi)
            n++;
    return n;
}

static const char strict[] =
    "emulators = ( { domid = 0; ioservid = 0; targets = [ 1 ]; } );\n"
    "reserved = ( { domid = 1; gfn = 0x800; nr = 16; } );\n";

/*
 * Mappings made under the built-in default (no rules) and then forbidden
 * by a reloaded policy are force-unmapped at the reload, and counted by
 * verdict; the allowed ones stay.  Judged from the sim's mappings.
 */
static void
test_recheck_on_reload(void)
{
    struct policy *p = NULL;
    char err[POLICY_ERRLEN], why[256];
    int a, b;

    CU_ASSERT_FATAL(world_init(&W, 1u << 15, 20 * US, 4096) == 0);
    CU_ASSERT_FATAL(sim_domain_create(&W.sim, 1, 4096) == 0);
    CU_ASSERT_FATAL(sim_domain_create(&W.sim, 2, 4096) == 0);
    a = world_add_emu(&W, 0, 0, 10 * US);
    b = world_add_emu(&W, 0, 0, 10 * US);
    world_emu_serves(&W, a, 1);
    world_emu_serves(&W, a, 2);
    world_emu_serves(&W, b, 1);
    CU_ASSERT_EQUAL(world_map(&W, a, 1, 0, 64), 64);
    CU_ASSERT_EQUAL(world_map(&W, a, 1, 0x7f0, 32), 32);  /* half in the RMRR-to-be */
    CU_ASSERT_EQUAL(world_map(&W, a, 2, 0, 32), 32);
    CU_ASSERT_EQUAL(world_map(&W, b, 1, 0x100, 16), 16);
    world_settle(&W);
    CU_ASSERT_EQUAL(world_live(&W, a), 128);
    CU_ASSERT_EQUAL(world_live(&W, b), 16);
    CU_ASSERT_EQUAL(W.core->st.policy_denials + W.core->st.rmrr_maps, 0);

    /* Reload: a may map d1 only, b nothing; 0x800-0x80f of d1 reserved. */
    CU_ASSERT_EQUAL_FATAL(policy_parse_string(strict, &p, err), 0);
    /* First a dry run (policy.reload dry_run): it says what, and changes nothing. */
    {
        static struct core_policy_preview pv;

        CU_ASSERT_EQUAL(core_policy_preview(W.core, p, &pv), 0);
        CU_ASSERT_EQUAL(pv.denied, 32 + 16);
        CU_ASSERT_EQUAL(pv.reserved, 16);
        CU_ASSERT_EQUAL(pv.checked, 128 + 16);
        CU_ASSERT(pv.nranges >= 3 && !pv.truncated);
        world_settle(&W);
        CU_ASSERT_EQUAL(world_live(&W, a), 128);
        CU_ASSERT_EQUAL(world_live(&W, b), 16);
        CU_ASSERT_EQUAL(W.core->st.policy_denials + W.core->st.rmrr_maps, 0);
    }
    CU_ASSERT_EQUAL(core_set_policy(W.core, p), 0);
    world_settle(&W);
    CU_ASSERT_EQUAL(sim_live(&W, a, 1, 0, 64), 64);           /* allowed: kept */
    CU_ASSERT_EQUAL(sim_live(&W, a, 1, 0x7f0, 0x800), 16);    /* allowed: kept */
    CU_ASSERT_EQUAL(sim_live(&W, a, 1, 0x800, 0x810), 0);     /* now reserved */
    CU_ASSERT_EQUAL(sim_live(&W, a, 2, 0, 4096), 0);          /* now denied */
    CU_ASSERT_EQUAL(world_live(&W, a), 80);
    CU_ASSERT_EQUAL(world_live(&W, b), 0);   /* now denied */
    CU_ASSERT_EQUAL(W.core->st.policy_denials, 32 + 16);
    CU_ASSERT_EQUAL(W.core->st.rmrr_maps, 16);
    CU_ASSERT_EQUAL(world_check_views(&W, why, sizeof(why)), 0);
    CU_ASSERT_EQUAL(sim_violations(&W.sim), 0);
    /* The same policy again changes nothing. */
    p = NULL;
    CU_ASSERT_EQUAL_FATAL(policy_parse_string(strict, &p, err), 0);
    CU_ASSERT_EQUAL(core_set_policy(W.core, p), 0);
    world_settle(&W);
    CU_ASSERT_EQUAL(world_live(&W, a), 80);
    CU_ASSERT_EQUAL(W.core->st.policy_denials, 32 + 16);
    /* Removed pages still go the usual way. */
    for (int g = 0; g < 64; g++)
        sim_decrease_reservation(&W.sim, 1, (uint64_t)g, 0);
    world_advance(&W, 5 * MS);
    CU_ASSERT_EQUAL(sim_check_quiescent(&W.sim), 0);
    CU_ASSERT_EQUAL(sim_violations(&W.sim), 0);
    world_fini(&W);
}

/*
 * Maps the daemon only learns of from a dump (the event ring overflowed
 * while an emulator the policy denies kept mapping) are checked when the
 * resync ends: none of them survives.
 */
static void
test_recheck_after_resync(void)
{
    struct policy *p = NULL;
    char err[POLICY_ERRLEN], why[256];
    uint64_t overflows;
    int a, c, n = 0;

    CU_ASSERT_FATAL(world_init(&W, 1u << 15, 20 * US, 64) == 0);
    CU_ASSERT_FATAL(sim_domain_create(&W.sim, 1, 4096) == 0);
    CU_ASSERT_FATAL(sim_domain_create(&W.sim, 2, 4096) == 0);
    CU_ASSERT_EQUAL_FATAL(policy_parse_string(strict, &p, err), 0);
    CU_ASSERT_EQUAL(core_set_policy(W.core, p), 0);
    a = world_add_emu(&W, 0, 0, 10 * US);
    c = world_add_emu(&W, 0, 0, 10 * US);      /* in no rule */
    world_emu_serves(&W, a, 1);
    world_emu_serves(&W, c, 2);
    world_settle(&W);
    overflows = W.core->st.overflows;
    /* 300 single-page maps by c and 8 by a, with nobody reading the ring. */
    for (int g = 0; g < 600; g += 2)
        n += world_map(&W, c, 2, (uint64_t)g, 1);
    CU_ASSERT_EQUAL(n, 300);
    CU_ASSERT_EQUAL(world_map(&W, a, 1, 0x10, 8), 8);
    CU_ASSERT(iomap_ring_overflowed(&W.sim.ring));
    world_settle(&W);
    CU_ASSERT(W.core->st.overflows > overflows);
    CU_ASSERT_EQUAL(W.core->resync, RS_NONE);
    CU_ASSERT_EQUAL(world_live(&W, c), 0);   /* every one taken back */
    CU_ASSERT_EQUAL(sim_live(&W, a, 1, 0x10, 0x18), 8);       /* allowed: kept */
    CU_ASSERT_EQUAL(W.core->st.policy_denials, 300);
    CU_ASSERT_EQUAL(world_check_views(&W, why, sizeof(why)), 0);
    CU_ASSERT_EQUAL(sim_violations(&W.sim), 0);
    CU_ASSERT_EQUAL(sim_check(&W.sim), 0);
    world_fini(&W);
}

/*
 * Who may register as which ioreq server (issue 12 item 6b): root as any;
 * a deprivileged device model (uid xen-qemuuser-range-base + T) as dom0's
 * servers of its own guest T only; a uid an entry names, as that entry.
 */
static void
test_registration(void)
{
    struct policy *p = NULL;
    char err[POLICY_ERRLEN];

    CU_ASSERT_EQUAL_FATAL(policy_parse_string(
        "emulators = ( { domid = 5; targets = [ 3 ]; uid = 4242; },\n"
        "              { domid = 0; targets = \"any\"; } );\n"
        "qemu_user_range_base = \"none\";\n", &p, err), 0);
    CU_ASSERT(policy_may_register(p, 0, 9, 9, 9));            /* root: anything */
    CU_ASSERT(policy_may_register(p, 4242, 5, 3, 0));
    CU_ASSERT(policy_may_register(p, 4242, 5, 3, 7));
    CU_ASSERT_FALSE(policy_may_register(p, 4242, 5, 4, 0));   /* not its target */
    CU_ASSERT_FALSE(policy_may_register(p, 4242, 0, 3, 0));   /* not its domain */
    CU_ASSERT_FALSE(policy_may_register(p, 4343, 5, 3, 0));
    CU_ASSERT(policy_uid_may_connect(p, 4242));
    CU_ASSERT_FALSE(policy_uid_may_connect(p, 4343));
    CU_ASSERT_EQUAL(p->qemu_uid_base, -1);                   /* "none" */
    /* The range base, as xl's dm_restrict uses it: base + guest domid. */
    p->qemu_uid_base = 60000;
    CU_ASSERT(policy_may_register(p, 60007, 0, 7, 0));
    CU_ASSERT(policy_may_register(p, 60007, 0, 7, 3));
    CU_ASSERT_FALSE(policy_may_register(p, 60007, 0, 8, 0)); /* another guest */
    CU_ASSERT_FALSE(policy_may_register(p, 60007, 5, 7, 0)); /* not dom0's */
    CU_ASSERT_FALSE(policy_may_register(p, 59999, 0, 0, 0));
    CU_ASSERT(policy_uid_may_connect(p, 60007));
    CU_ASSERT_FALSE(policy_uid_may_connect(p, 60000 + 0x7ff0));
    policy_free(p);
    p = NULL;
    CU_ASSERT_EQUAL(policy_parse_string("emulators = ( { domid = 0; targets = [1]; "
                                        "uid = \"no-such-user-here\"; } );", &p, err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no user"));
}

int
main(void)
{
    static const struct test_case tests[] = {
        { "who may register as which ioreq server", test_registration },
        { "parse a good file", test_parse_good },
        { "bad files name the line", test_parse_bad },
        { "load, reload, keep the old on error", test_load_file_and_reload },
        { "enforced on the simulated host", test_enforce },
        { "existing mappings checked after a reload", test_recheck_on_reload },
        { "mappings from a dump checked after a resync", test_recheck_after_resync },
        { NULL, NULL },
    };

    log_init("test_policy", getenv("POLICY_VERBOSE") ? LOG_LVL_INFO : LOG_LVL_ERR);
    return run_tests("policy", tests);
}
