/* SPDX-License-Identifier: MIT */
/*
 * policy_load(): /etc/iomapd/iomapd.conf, read with libconfig.
 *
 *   emulators = (
 *     { domid = 0; ioservid = 1; targets = [ 1, 2 ]; },
 *     { domid = 5; targets = "any"; readonly = true; }   # every ioservid
 *   );
 *   quotas = { mappings_per_emulator = 1048576; mappings_per_domain = 4194304;
 *              pending_per_emulator = 65536; pending_per_domain = 262144; };
 *   reserved = ( { domid = 1; gfn = 0xfd000; nr = 16; } );   # RMRR
 *   readonly = ( { domid = "any"; gfn = 0xc0; nr = 64; } );
 *   timeouts = {
 *     invalidating = { ms = 5000; steps = [ "log", "force-unmap", "kill-emulator" ]; };
 *     flushing     = { ms = 1000; steps = [ "log", "flush", "crash-guest" ]; };
 *   };
 *
 * Deny by default: a file without an emulators list lets no emulator map
 * anything (every map is force-unmapped).  Unknown settings are errors, so
 * a typo does not silently weaken the policy.  Errors name the file and
 * line (libconfig does not report columns).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "policy/policy.h"

#define MS UINT64_C(1000000)

struct pctx {
    const char *src;
    char       *err;
};

static int __attribute__((format(printf, 3, 4)))
fail(struct pctx *c, const config_setting_t *s, const char *fmt, ...)
{
    char msg[POLICY_ERRLEN];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (s)
        snprintf(c->err, POLICY_ERRLEN, "%.200s:%u: %.280s", c->src,
                 config_setting_source_line(s), msg);
    else
        snprintf(c->err, POLICY_ERRLEN, "%.200s: %.280s", c->src, msg);
    return -1;
}

/* Every child of s must be one of the names (NULL-terminated). */
static int
only(struct pctx *c, const config_setting_t *s, const char *const *names)
{
    int n = config_setting_length(s);

    for (int i = 0; i < n; i++) {
        const config_setting_t *k = config_setting_get_elem(s, (unsigned)i);
        const char *name = config_setting_name(k);
        int ok = 0;

        for (const char *const *p = names; *p && !ok; p++)
            ok = name && strcmp(name, *p) == 0;
        if (!ok)
            return fail(c, k, "unknown setting '%s'%s%s", name ? name : "?",
                        config_setting_parent(s) && config_setting_name(s) ? " in " : "",
                        config_setting_parent(s) && config_setting_name(s) ?
                        config_setting_name(s) : "");
    }
    return 0;
}

/* An integer setting within [lo, hi]. */
static int
get_int(struct pctx *c, const config_setting_t *s, long long lo, long long hi,
        long long *out)
{
    int t = config_setting_type(s);

    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
        return fail(c, s, "'%s' must be an integer",
                    config_setting_name(s) ? config_setting_name(s) : "value");
    *out = config_setting_get_int64(s);
    if (*out < lo || *out > hi)
        return fail(c, s, "'%s' = %lld is out of range [%lld, %lld]",
                    config_setting_name(s) ? config_setting_name(s) : "value",
                    *out, lo, hi);
    return 0;
}

/* A domid: an integer, or "any" when allowed. */
static int
get_domid(struct pctx *c, const config_setting_t *s, int any_ok, int32_t *out)
{
    long long v;

    if (config_setting_type(s) == CONFIG_TYPE_STRING) {
        if (any_ok && strcmp(config_setting_get_string(s), "any") == 0) {
            *out = POLICY_ANY;
            return 0;
        }
        return fail(c, s, "expected a domain id%s", any_ok ? " or \"any\"" : "");
    }
    if (get_int(c, s, 0, 0x7fef, &v) < 0)
        return -1;
    *out = (int32_t)v;
    return 0;
}

static int
parse_rule(struct pctx *c, const config_setting_t *s, struct policy_rule *r)
{
    static const char *const keys[] = { "domid", "ioservid", "targets", "readonly", "uid",
                                        NULL };
    const config_setting_t *k;
    long long v;

    if (!config_setting_is_group(s))
        return fail(c, s, "an emulators entry must be a group { ... }");
    if (only(c, s, keys) < 0)
        return -1;
    r->ioservid = POLICY_ANY;
    if ((k = config_setting_get_member(s, "domid")) == NULL)
        return fail(c, s, "emulator entry without 'domid'");
    if (get_domid(c, k, 1, &r->emu_domid) < 0)
        return -1;
    if ((k = config_setting_get_member(s, "ioservid")) != NULL) {
        if (config_setting_type(k) == CONFIG_TYPE_STRING &&
            strcmp(config_setting_get_string(k), "any") == 0) {
            r->ioservid = POLICY_ANY;
        } else {
            if (get_int(c, k, 0, 0xffff, &v) < 0)
                return -1;
            r->ioservid = (int32_t)v;
        }
    }
    if ((k = config_setting_get_member(s, "readonly")) != NULL) {
        if (config_setting_type(k) != CONFIG_TYPE_BOOL)
            return fail(c, k, "'readonly' must be true or false");
        r->readonly = config_setting_get_bool(k);
    }
    if ((k = config_setting_get_member(s, "uid")) != NULL) {
        /* Who may register as this emulator: a uid or a user name. */
        if (config_setting_type(k) == CONFIG_TYPE_STRING) {
            const struct passwd *pw = getpwnam(config_setting_get_string(k));

            if (pw == NULL)
                return fail(c, k, "no user '%s'", config_setting_get_string(k));
            r->uid = pw->pw_uid;
        } else {
            if (get_int(c, k, 0, 0x7fffffff, &v) < 0)
                return -1;
            r->uid = (uid_t)v;
        }
        r->has_uid = 1;
    }
    if ((k = config_setting_get_member(s, "targets")) == NULL)
        return fail(c, s, "emulator entry without 'targets'");
    if (config_setting_type(k) == CONFIG_TYPE_STRING) {
        if (strcmp(config_setting_get_string(k), "any") != 0)
            return fail(c, k, "'targets' must be a list of domain ids or \"any\"");
        r->any_target = 1;
        return 0;
    }
    if (!config_setting_is_aggregate(k))
        return fail(c, k, "'targets' must be a list of domain ids or \"any\"");
    r->ntargets = (unsigned)config_setting_length(k);
    r->targets = calloc(r->ntargets ? r->ntargets : 1, sizeof(*r->targets));
    if (r->targets == NULL)
        return fail(c, k, "out of memory");
    for (unsigned i = 0; i < r->ntargets; i++) {
        int32_t dom = 0;

        if (get_domid(c, config_setting_get_elem(k, i), 0, &dom) < 0)
            return -1;
        r->targets[i] = (uint16_t)dom;
    }
    return 0;
}

static int
parse_ranges(struct pctx *c, const config_setting_t *s, struct policy_range **out,
             unsigned *nout)
{
    static const char *const keys[] = { "domid", "gfn", "nr", NULL };
    unsigned n;

    if (!config_setting_is_aggregate(s))
        return fail(c, s, "'%s' must be a list ( { domid = ..; gfn = ..; nr = ..; }, ... )",
                    config_setting_name(s));
    n = (unsigned)config_setting_length(s);
    *out = calloc(n ? n : 1, sizeof(**out));
    if (*out == NULL)
        return fail(c, s, "out of memory");
    *nout = n;
    for (unsigned i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, i), *k;
        struct policy_range *r = &(*out)[i];
        long long v;

        if (!config_setting_is_group(e))
            return fail(c, e, "a range must be a group { domid; gfn; nr; }");
        if (only(c, e, keys) < 0)
            return -1;
        r->domid = POLICY_ANY;
        if ((k = config_setting_get_member(e, "domid")) != NULL &&
            get_domid(c, k, 1, &r->domid) < 0)
            return -1;
        if ((k = config_setting_get_member(e, "gfn")) == NULL)
            return fail(c, e, "range without 'gfn'");
        if (get_int(c, k, 0, (long long)((UINT64_C(1) << 52) - 1), &v) < 0)
            return -1;
        r->gfn = (uint64_t)v;
        if ((k = config_setting_get_member(e, "nr")) == NULL)
            return fail(c, e, "range without 'nr'");
        if (get_int(c, k, 1, (long long)(UINT64_C(1) << 52) - (long long)r->gfn, &v) < 0)
            return -1;
        r->nr = (uint64_t)v;
    }
    return 0;
}

static int
parse_timeout(struct pctx *c, const config_setting_t *s, struct policy_timeout *t)
{
    static const char *const keys[] = { "ms", "steps", NULL };
    const config_setting_t *k;
    long long v;

    if (!config_setting_is_group(s))
        return fail(c, s, "'%s' must be a group { ms = ..; steps = [ .. ]; }",
                    config_setting_name(s));
    if (only(c, s, keys) < 0)
        return -1;
    if ((k = config_setting_get_member(s, "ms")) != NULL) {
        /* 0 disables; at least 1 ms, at most a day. */
        if (get_int(c, k, 0, 86400000, &v) < 0)
            return -1;
        t->timeout_ns = (uint64_t)v * MS;
    }
    if ((k = config_setting_get_member(s, "steps")) != NULL) {
        unsigned n;

        if (!config_setting_is_aggregate(k))
            return fail(c, k, "'steps' must be a list of actions");
        n = (unsigned)config_setting_length(k);
        if (n > POLICY_MAX_STEPS)
            return fail(c, k, "at most %d escalation steps", POLICY_MAX_STEPS);
        for (unsigned i = 0; i < n; i++) {
            const config_setting_t *e = config_setting_get_elem(k, i);
            const char *name = config_setting_type(e) == CONFIG_TYPE_STRING ?
                               config_setting_get_string(e) : NULL;
            int a = name ? policy_action_parse(name) : -1;

            if (a < 0)
                return fail(c, e, "unknown action '%s' (log, force-unmap, flush, "
                            "kill-emulator, crash-guest, none)", name ? name : "?");
            t->steps[i] = (enum policy_action)a;
        }
        t->nsteps = n;
    }
    return 0;
}

static int
parse_quota(struct pctx *c, const config_setting_t *q, const char *name, uint64_t *out)
{
    const config_setting_t *k = config_setting_get_member(q, name);
    long long v;

    if (k == NULL)
        return 0;
    if (get_int(c, k, 0, (long long)1 << 40, &v) < 0)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int
parse_root(struct pctx *c, config_t *cf, struct policy *p)
{
    static const char *const top[] = { "emulators", "quotas", "reserved", "readonly",
                                       "timeouts", "qemu_user_range_base", NULL };
    static const char *const qkeys[] = { "mappings_per_emulator", "mappings_per_domain",
                                         "pending_per_emulator", "pending_per_domain",
                                         NULL };
    static const char *const tkeys[] = { "invalidating", "flushing", NULL };
    const config_setting_t *root = config_root_setting(cf), *s;

    if (only(c, root, top) < 0)
        return -1;
    /*
     * Deny by default only with an emulators list (iomapd.conf(5)): a file
     * that sets only quotas or timeouts must not turn every existing
     * mapping into a denied one.
     */
    if ((s = config_lookup(cf, "emulators")) != NULL) {
        p->enforce_rules = 1;
        if (!config_setting_is_aggregate(s))
            return fail(c, s, "'emulators' must be a list ( { .. }, .. )");
        p->nrules = (unsigned)config_setting_length(s);
        p->rules = calloc(p->nrules ? p->nrules : 1, sizeof(*p->rules));
        if (p->rules == NULL)
            return fail(c, s, "out of memory");
        for (unsigned i = 0; i < p->nrules; i++)
            if (parse_rule(c, config_setting_get_elem(s, i), &p->rules[i]) < 0)
                return -1;
    }
    if ((s = config_lookup(cf, "qemu_user_range_base")) != NULL) {
        const char *name = config_setting_get_string(s);

        if (config_setting_type(s) != CONFIG_TYPE_STRING)
            return fail(c, s, "'qemu_user_range_base' must be a user name or \"none\"");
        if (strcmp(name, "none") != 0) {
            const struct passwd *pw = getpwnam(name);

            if (pw == NULL)
                return fail(c, s, "no user '%s'", name);
            p->qemu_uid_base = pw->pw_uid;
        }
        p->qemu_base_set = 1;
    }
    if ((s = config_lookup(cf, "quotas")) != NULL) {
        if (!config_setting_is_group(s))
            return fail(c, s, "'quotas' must be a group { .. }");
        if (only(c, s, qkeys) < 0 ||
            parse_quota(c, s, "mappings_per_emulator", &p->max_maps_per_emu) < 0 ||
            parse_quota(c, s, "mappings_per_domain", &p->max_maps_per_dom) < 0 ||
            parse_quota(c, s, "pending_per_emulator", &p->max_pending_per_emu) < 0 ||
            parse_quota(c, s, "pending_per_domain", &p->max_pending_per_dom) < 0)
            return -1;
    }
    if ((s = config_lookup(cf, "reserved")) != NULL &&
        parse_ranges(c, s, &p->rmrr, &p->nrmrr) < 0)
        return -1;
    if ((s = config_lookup(cf, "readonly")) != NULL &&
        parse_ranges(c, s, &p->ro, &p->nro) < 0)
        return -1;
    if ((s = config_lookup(cf, "timeouts")) != NULL) {
        const config_setting_t *k;

        if (!config_setting_is_group(s))
            return fail(c, s, "'timeouts' must be a group { .. }");
        if (only(c, s, tkeys) < 0)
            return -1;
        if ((k = config_setting_get_member(s, "invalidating")) != NULL &&
            parse_timeout(c, k, &p->inval) < 0)
            return -1;
        if ((k = config_setting_get_member(s, "flushing")) != NULL &&
            parse_timeout(c, k, &p->flush) < 0)
            return -1;
    }
    return 0;
}

void
policy_resolve_users(struct policy *p, const char *name)
{
    const struct passwd *pw;

    if (p->qemu_base_set)
        return;                 /* the file said */
    pw = getpwnam(name ? name : "xen-qemuuser-range-base");
    p->qemu_uid_base = pw ? (int64_t)pw->pw_uid : -1;
}

static int
load(const char *path, const char *text, struct policy **pp, char *errbuf)
{
    struct pctx c = { .src = path ? path : "<string>", .err = errbuf };
    struct policy *p;
    config_t cf;
    int ok;

    errbuf[0] = 0;
    p = policy_default();
    if (p == NULL) {
        snprintf(errbuf, POLICY_ERRLEN, "%s: out of memory", c.src);
        return -1;
    }
    snprintf(p->source, sizeof(p->source), "%s", c.src);
    config_init(&cf);
    ok = path ? config_read_file(&cf, path) : config_read_string(&cf, text);
    if (ok != CONFIG_TRUE) {
        if (config_error_type(&cf) == CONFIG_ERR_FILE_IO)
            snprintf(errbuf, POLICY_ERRLEN, "%s: cannot read: %s", c.src,
                     strerror(errno ? errno : ENOENT));
        else
            snprintf(errbuf, POLICY_ERRLEN, "%s:%d: %s",
                     config_error_file(&cf) ? config_error_file(&cf) : c.src,
                     config_error_line(&cf), config_error_text(&cf));
        config_destroy(&cf);
        policy_free(p);
        return -1;
    }
    if (parse_root(&c, &cf, p) < 0) {
        config_destroy(&cf);
        policy_free(p);
        return -1;
    }
    config_destroy(&cf);
    policy_resolve_users(p, NULL);
    *pp = p;
    return 0;
}

int
policy_load(const char *path, struct policy **pp, char *errbuf)
{
    return load(path, NULL, pp, errbuf);
}

int
policy_parse_string(const char *text, struct policy **pp, char *errbuf)
{
    return load(NULL, text, pp, errbuf);
}
