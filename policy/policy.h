/* SPDX-License-Identifier: MIT */
/*
 * iomapd policy: who may map whose pages, quotas, reserved (RMRR)
 * regions, read-only rules, and timeouts with their escalation steps.
 *
 * The daemon cannot refuse a hypercall (the shim reports what Xen already
 * did), so a map that breaks the policy is force-unmapped through the
 * shim (IOMAP_CMD_FORCE_UNMAP), logged with its own code and counted.
 *
 * Two halves:
 *   policy.c   the in-memory policy, built-in defaults and the checks the
 *              daemon calls (no dependencies; part of libiomapcore.a);
 *   parse.c    policy_load() reading /etc/iomapd/iomapd.conf with
 *              libconfig (libiomappolicy.a; links -lconfig).
 * See iomapd.conf(5) (man/iomapd.conf.5) and policy/iomapd.conf.example
 * for the file format.
 */
#ifndef IOMAP_POLICY_H
#define IOMAP_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define POLICY_ERRLEN      512      /* size of policy_load()'s errbuf */
#define POLICY_MAX_STEPS   4
#define POLICY_ANY         (-1)     /* wildcard ioservid / domid */

/* Verdicts on a map; each is logged with its name and counted apart. */
enum policy_verdict {
    POLICY_OK = 0,
    POLICY_E_DENIED = 1,        /* emulator may not map this domain   */
    POLICY_E_RMRR = 2,          /* map into a reserved (RMRR) region  */
    POLICY_E_READONLY = 3,      /* writable map of a read-only range  */
    POLICY_E_QUOTA = 4,         /* mapping quota exceeded             */
};

/* Escalation steps when a page stays INVALIDATING / FLUSHING too long. */
enum policy_action {
    POLICY_ACT_NONE = 0,
    POLICY_ACT_LOG,             /* log and count                        */
    POLICY_ACT_FORCE_UNMAP,     /* IOMAP_CMD_FORCE_UNMAP of the holders */
    POLICY_ACT_FLUSH,           /* ask for another flush                */
    POLICY_ACT_KILL_EMULATOR,   /* notify / kill the emulator (hook)    */
    POLICY_ACT_CRASH_GUEST,     /* crash the guest (hook)               */
};

struct policy_timeout {
    uint64_t timeout_ns;        /* step i fires at (i + 1) * timeout_ns  */
    unsigned nsteps;
    enum policy_action steps[POLICY_MAX_STEPS];
};

/* An emulator and the domains it may map. */
struct policy_rule {
    int32_t   emu_domid;        /* or POLICY_ANY                         */
    int32_t   ioservid;         /* or POLICY_ANY                         */
    int       any_target;
    uint16_t *targets;
    unsigned  ntargets;
    int       readonly;         /* only read-only maps allowed           */
    int       has_uid;          /* uid: who may register as it           */
    uid_t     uid;
};

/* A gfn range of a domain (or POLICY_ANY): reserved or read-only. */
struct policy_range {
    int32_t  domid;
    uint64_t gfn;
    uint64_t nr;
};

struct policy {
    int       enforce_rules;    /* 0: built-in default, no map rules     */
    struct policy_rule  *rules;
    unsigned  nrules;
    struct policy_range *rmrr;
    unsigned  nrmrr;
    struct policy_range *ro;
    unsigned  nro;
    /* Quotas; 0 means unlimited. */
    uint64_t  max_maps_per_emu;
    uint64_t  max_maps_per_dom;
    uint64_t  max_pending_per_emu;
    uint64_t  max_pending_per_dom;
    /*
     * Deprivileged device models (xl.cfg's dm_restrict): the uid of
     * xen-qemuuser-range-base; uid base + T may register as dom0's ioreq
     * servers of guest T only.  -1: none (the user does not exist).
     */
    int64_t   qemu_uid_base;
    int       qemu_base_set;        /* the file set it (or "none") */
    struct policy_timeout inval;    /* INVALIDATING */
    struct policy_timeout flush;    /* FLUSHING */
    char      source[256];          /* file it came from, or "built-in" */
};

/*
 * Built-in defaults (used without a configuration file):
 *   no map rules (Xen's dm_op privileges decide who emulates whom);
 *   quotas: 64 Mi mappings per emulator and per domain, 1 Mi pages
 *   pending release per emulator and per domain;
 *   INVALIDATING: every 5 s: log, force-unmap, kill the emulator;
 *   FLUSHING: every 1 s: log (device reported broken), flush again, log.
 * A page is never released before its flush completed, whatever the policy.
 */
struct policy *policy_default(void);
void policy_free(struct policy *p);

/* Parse a configuration file / string; 0 or -1 with errbuf set
 * ("path:line: message").  On failure *pp is left alone. */
int  policy_load(const char *path, struct policy **pp, char *errbuf);
int  policy_parse_string(const char *text, struct policy **pp, char *errbuf);
/*
 * Look the deprivileged device models' range base user up (parse.c; the
 * user database): name, or the default "xen-qemuuser-range-base" when
 * name is NULL; qemu_uid_base stays -1 when there is no such user.
 */
void policy_resolve_users(struct policy *p, const char *name);

/* The checks (policy.c). */
enum policy_verdict policy_check_map(const struct policy *p, uint16_t emu_domid,
                                     uint16_t ioservid, uint16_t domid,
                                     uint64_t gfn, uint32_t nr, int readonly);
/*
 * Registration on the emulator socket (daemon/emusock.c), by the
 * kernel-attested uid of the registering process: root (and the daemon's
 * own uid) may register as any ioreq server; uid qemu_uid_base + T as
 * dom0's servers of guest T; a uid an emulators entry names, as what that
 * entry covers.  policy_uid_may_connect() is the part that does not need
 * the hello (checked at accept).
 */
int  policy_may_register(const struct policy *p, uid_t uid, uint16_t emu_domid,
                         uint16_t target, uint16_t ioservid);
int  policy_uid_may_connect(const struct policy *p, uid_t uid);
const char *policy_verdict_name(enum policy_verdict v);
const char *policy_action_name(enum policy_action a);
int  policy_action_parse(const char *s);    /* or -1 */

#endif
