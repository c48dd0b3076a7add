#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Mutation check of the iomap shim's safety guards: for each guard, build
# the patched hypervisor with that guard removed and run check-xen
# (tests/xen-e2e/run.sh) against it; the scenario named for the guard must
# fail.  A mutant that survives means the test cannot see the guard.
#
# Usage (as root, from anywhere in a configured clone):
#   shim/xen/mutants.sh [GUARD...]     default: every guard with a scenario
#   shim/xen/mutants.sh --rotate       one guard, chosen by the day of the
#                                      year (for CI: each run checks one)
#   shim/xen/mutants.sh --list
#
# Needs the patched tree built by shim/xen/build-xen.sh
# ($XEN_BUILD_DIR, default build/xen-build).  Each mutant is a copy of it
# (build/xen-mutant) with one exact source edit, rebuilt incrementally
# (about a minute), then booted twice under QEMU (about a minute).  The
# table is written to build/xen-mutants/results.txt.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
XEN_BUILD_DIR=${XEN_BUILD_DIR:-$repo/build/xen-build}
MUT_DIR=${MUT_DIR:-$repo/build/xen-mutant}
OUT=${OUT:-$repo/build/xen-mutants}
JOBS=${JOBS:-2}

say() { printf '==> mutants: %s\n' "$*"; }
die() { printf 'mutants: %s\n' "$*" >&2; exit 1; }

# guard | scenario that must fail | file | what is removed
guards() {
    cat <<'EOF'
deferred-put|hold-until-flush|xen/common/iomap.c|an unmap drops its page references at once instead of after the covering flush
hold|hold-until-flush|xen/common/iomap.c|a removed page with op references is not held for the daemon
pagetable-flush|pagetable-free|xen/common/iomap.c|no flush before return when an unmap freed an IOMMU page table
strict-dom0|strict-dom0|xen/common/iomap.c|the op works for a non-strict dom0
privilege|unprivileged|xen/common/iomap.c|map does not ask XSM whether the caller is a device model of the target
pod-steal|pod|xen/arch/x86/mm/p2m-pod.c|PoD may steal a page with op references for its cache
overwrite-hook|overwrite|xen/arch/x86/mm/p2m.c|p2m_add_page() overwriting a mapped RAM gfn does not reach the shim
daemon-watch|daemon-gone|xen/common/iomap.c|Xen does not notice that the daemon is gone
failed-flush|ite|xen/common/iomap.c|an async flush aborted by an ITE counts as completed
dump-emu|daemon-restart|xen/common/iomap.c|the first dump chunk names no ioreq server (ABI 1.1 IOMAP_EV_DUMP_EMU)
server-target|two-guests|xen/common/iomap.c|FORCE_UNMAP ignores the target: it also unmaps another guest's emulator with the same ioreq server id
watch-restart|daemon-gone|xen/common/iomap.c|a page held while no daemon runs does not start the watch timer (it stays held)
cpu-unmap|foreign-map|xen/common/iomap.c|the put of a foreign (CPU) mapping's page-table entry is not reported (no IOMAP_EV_UNMAP with IOMAP_F_CPU)
optout-pv|optout-refused|xen/common/iomap.c|set_invalidate lets an emulator domain whose foreign mappings are not tracked (PVH / HVM) opt out of the global invalidate
deferred-cap|deferred-cap|xen/common/iomap.c|unmapped records waiting for their flush do not count against the per-emulator cap
page-cap|page-cap|xen/common/iomap.c|no bound on the op mappings of one page (a dump could never send its records)
untracked-optout|cpu-untracked|xen/common/iomap.c|an emulator domain whose foreign mappings outgrew their records may still opt out of the global invalidate
ie-irq|flush-irq|xen/drivers/passthrough/vtd/qinval.c|async groups end without the interrupt-flagged wait descriptor (completion only polled)
qi-cap|async-flush|xen/drivers/passthrough/vtd/iommu.c|a flush while the unit's async group is outstanding queues a group of its own (no cap, no coalescing)
EOF
}

# mutate GUARD FILE: one exact edit; fails if the source no longer matches.
mutate() {
    python3 - "$1" "$2" <<'PY'
import sys
guard, path = sys.argv[1], sys.argv[2]
edits = {
    "deferred-put": (
        "        pg->deferred_seq = m->seq;\n"
        "    post_map_event(IOMAP_EV_UNMAP, m, evflags, m->seq);\n",
        "        pg->deferred_seq = m->seq;\n"
        "    post_map_event(IOMAP_EV_UNMAP, m, evflags, m->seq);\n"
        "    list_del(&m->list);\n"
        "    map_put(m); /* MUTANT: no deferred put */\n"),
    "hold": (
        "        if ( !get_page(page, d) )\n            continue;\n",
        "        continue; /* MUTANT: no hold */\n"),
    "pagetable-flush": (
        "    if ( emud && (flush_flags & IOMMU_FLUSHF_all) )\n"
        "        flush_queue(emud);\n",
        "    /* MUTANT: no flush before the page table is freed */\n"),
    "strict-dom0": (
        "    if ( is_hardware_domain(currd) &&\n"
        "         (!iommu_hwdom_strict || iommu_hwdom_passthrough) )\n",
        "    if ( 0 ) /* MUTANT: no strict-dom0 check */\n"),
    "privilege": (
        "    rc = xsm_iomap_map(XSM_DM_PRIV, d);\n",
        "    rc = 0; /* MUTANT: no privilege check */\n"),
    "pod-steal": [(
        "        else if ( steal_for_cache && p2m_is_ram(t) &&\n"
        "                  !iomap_referenced(d, mfn, n) )\n",
        "        else if ( steal_for_cache && p2m_is_ram(t) ) /* MUTANT */\n"), (
        "            if ( iomap_referenced(d, mfn, n) )\n",
        "            if ( 0 ) /* MUTANT: no re-check */\n")],
    "failed-flush": (
        "    if ( failed )\n"
        "        flush_failed(DOMID_INVALID, failed, -ETIMEDOUT);\n",
        "    /* MUTANT: a failed flush counts as completed */\n"),
    "daemon-watch": (
        "    if ( attached && !ring_mapped() )\n",
        "    if ( attached && !ring_mapped() && 0 ) /* MUTANT: death unnoticed */\n"),
    "watch-restart": (
        "    if ( held && !attached )\n",
        "    if ( held && !attached && 0 ) /* MUTANT: no watch */\n"),
    "dump-emu": (
        "        nemus = rc;\n",
        "        nemus = 0; /* MUTANT: no DUMP_EMU */\n"),
    "server-target": (
        "        if ( m->emu != c->emu_domid || m->domid != c->domid ||\n"
        "             m->ioservid != c->ioservid )\n",
        "        if ( m->emu != c->emu_domid || /* MUTANT: any target */\n"
        "             m->ioservid != c->ioservid )\n"),
    "cpu-unmap": (
        "    if ( c )\n"
        "    {\n"
        "        post_cpu_event(IOMAP_EV_UNMAP, ce->domid, c);\n",
        "    if ( c )\n"
        "    {\n"
        "        /* MUTANT: the put is not reported */\n"),
    "optout-pv": (
        "         (!is_pv_domain(current->domain) ||\n",
        "         (0 || /* MUTANT: any emulator domain may opt out */\n"),
    "deferred-cap": (
        "    if ( emu->nr_maps + emu->nr_retired >= iomap_max_maps )\n",
        "    if ( emu->nr_maps >= iomap_max_maps ) /* MUTANT */\n"),
    "page-cap": (
        "    else if ( pg->nr_refs >= IOMAP_MAX_MAPS_PER_PAGE )\n"
        "        return -ENOSPC;\n",
        "    /* MUTANT: no per-page bound */\n"),
    "untracked-optout": (
        "         (!is_pv_domain(current->domain) ||\n"
        "          ACCESS_ONCE(current->domain->iomap_cpu_untracked)) )\n",
        "         !is_pv_domain(current->domain) ) /* MUTANT */\n"),
    "ie-irq": (
        "    if ( iommu->qi_ie_irq )\n"
        "    {\n"
        "        /*\n"
        "         * Then an interrupt",
        "    if ( 0 ) /* MUTANT: no completion interrupt */\n"
        "    {\n"
        "        /*\n"
        "         * Then an interrupt"),
    "qi-cap": (
        "    if ( qi_async_busy(iommu) )\n"
        "    {\n"
        "        if ( !iommu->qi_async_want )\n",
        "    if ( 0 ) /* MUTANT: no cap */\n"
        "    {\n"
        "        if ( !iommu->qi_async_want )\n"),
    "overwrite-hook": (
        "            if ( !mfn_eq(omfn, mfn_add(mfn, i)) )\n"
        "                p2m_iomap_removed(p2m, gfn_add(gfn, i), omfn, PAGE_ORDER_4K);\n",
        "            /* MUTANT: overwrite not reported */\n"),
}
e = edits[guard]
s = open(path).read()
for old, new in (e if isinstance(e, list) else [e]):
    if s.count(old) != 1:
        sys.exit("mutants: the %s guard is no longer where mutants.sh expects "
                 "it in %s; update the edit" % (guard, path))
    s = s.replace(old, new)
open(path, "w").write(s)
PY
}

case "${1:-}" in
--list) guards | cut -d'|' -f1,2,4 | tr '|' '\t'; exit 0 ;;
--rotate)
    set -- deferred-put hold pagetable-flush strict-dom0 privilege pod-steal \
        overwrite-hook daemon-watch failed-flush dump-emu server-target \
        watch-restart qi-cap deferred-cap \
        cpu-unmap optout-pv page-cap untracked-optout ie-irq
    n=$(( $(date +%j | sed 's/^0*//') % $# + 1 ))
    eval "set -- \${$n}"
    ;;
'') set -- deferred-put hold pagetable-flush strict-dom0 privilege \
        pod-steal overwrite-hook daemon-watch failed-flush dump-emu \
        server-target watch-restart qi-cap deferred-cap \
        cpu-unmap optout-pv page-cap untracked-optout ie-irq ;;
esac

[ -f "$XEN_BUILD_DIR/xen/xen" ] ||
    die "no patched build in $XEN_BUILD_DIR: run shim/xen/build-xen.sh first"
mkdir -p "$OUT"
table=$OUT/results.txt
: >"$table"
rc=0
for g in "$@"; do
    line=$(guards | grep "^$g|") || die "unknown guard $g (--list)"
    scen=$(echo "$line" | cut -d'|' -f2)
    file=$(echo "$line" | cut -d'|' -f3)
    t0=$(date +%s)
    say "$g: copying the patched tree"
    rm -rf "$MUT_DIR"
    cp -a "$XEN_BUILD_DIR" "$MUT_DIR"
    mutate "$g" "$MUT_DIR/$file"
    say "$g: building ($file mutated)"
    make -C "$MUT_DIR/xen" -j"$JOBS" >"$OUT/$g.build.log" 2>&1 ||
        { tail -n 20 "$OUT/$g.build.log"; die "$g: the mutant does not build"; }
    say "$g: check-xen against the mutant (scenario $scen must fail)"
    E2E_DIR=$OUT/$g XEN_IMAGE=$MUT_DIR/xen/xen NO_APT=${NO_APT:-1} \
        sh "$repo/tests/xen-e2e/run.sh" >"$OUT/$g.check.log" 2>&1 || true
    verdict=$(python3 -c '
import json, sys
try:
    rs = json.load(open(sys.argv[1]))
except Exception:
    print("no-results"); sys.exit()
for r in rs:
    if r["name"] == sys.argv[2]:
        print("killed" if r.get("run") and not r["pass"] else
              "SURVIVED" if r["pass"] else "not-run")
        break
else:
    print("no-scenario")
' "$OUT/$g/results.json" "$scen")
    t1=$(date +%s)
    printf '%s\t%s\t%s\t%ss\n' "$g" "$scen" "$verdict" $((t1 - t0)) | tee -a "$table"
    [ "$verdict" = killed ] || rc=1
done
rm -rf "$MUT_DIR"
say "table: $table"
exit $rc
