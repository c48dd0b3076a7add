#!/bin/sh
# test_xl_iomap.sh - xl-iomap against a running iomapd on the simulated host:
# every subcommand, human and --json output, exit codes (xl-iomap(1)).
# If a patched xl was built (json-api/xl/build-xl.sh, see tests/ci-xl.sh),
# also checks that `xl iomap status` reaches the daemon.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/api_env.sh"
X="$B/xl-iomap"
fails=0
ok()   { echo "PASS: $*"; }
bad()  { echo "FAIL: $*"; fails=$((fails + 1)); }
expect_rc() { want=$1; shift; "$@" >"$T/out" 2>"$T/err"; rc=$?
    if [ "$rc" = "$want" ]; then ok "$* -> exit $rc"; else bad "$* -> exit $rc, want $want"; cat "$T/out" "$T/err"; fi; }

# No daemon yet: exit 3, a clear message.
expect_rc 3 "$X" --socket "$T/nothing.sock" status
grep -q "cannot reach iomapd" "$T/err" && ok "unreachable daemon explained" || bad "no explanation: $(cat "$T/err")"
expect_rc 2 "$X" frobnicate
expect_rc 2 "$X"
expect_rc 0 "$X" --help
# --help everywhere: each command's own, without a daemon.
for c in status domains emulators mappings pending stats metrics top drain policy reload; do
    "$X" --socket "$T/nothing.sock" "$c" --help >"$T/out" 2>&1; rc=$?
    [ $rc = 0 ] && grep -q "^usage: xl-iomap \[OPTIONS\] $c" "$T/out" && ok "$c --help" ||
        bad "$c --help: rc $rc $(cat "$T/out")"
done
# --wait: retries an absent daemon, then gives up with exit 3.
expect_rc 3 "$X" --socket "$T/nothing.sock" --wait 1 status
api_start || exit 1

expect_rc 0 "$X" status
grep -q "backend sim" "$T/out" && grep -q "mappings: *1024" "$T/out" && ok "status table" || bad "status table: $(cat "$T/out")"
expect_rc 0 "$X" --json stats
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert "p99_us" in d["release_latency"]' "$T/out" \
    && ok "--json stats is JSON with release_latency.p99_us" || bad "--json stats: $(head -c 300 "$T/out")"
expect_rc 0 "$X" stats --json
expect_rc 0 "$X" domains
# No xenstore here: the name falls back to the id.
grep -qE '^ +1 +1 +1024 ' "$T/out" && ok "domains table (name falls back to the id)" || bad "domains: $(cat "$T/out")"
expect_rc 0 "$X" emulators
grep -q '^0:1:0 ' "$T/out" && ok "emulators table" || bad "emulators: $(cat "$T/out")"
"$B/iomap-sim" ctl "$T/hc.sock" balloon 1 0x1000 9 >/dev/null
sleep 0.5
expect_rc 0 "$X" mappings
grep -q '0x1200-0x13ff' "$T/out" && ok "mappings coalesced into a run" || bad "mappings: $(cat "$T/out")"
expect_rc 0 "$X" --json mappings --domid 1 --gfn 0x1200-0x120f
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["mappings"])==16' "$T/out" \
    && ok "mappings --gfn range: 16" || bad "mappings range: $(head -c 300 "$T/out")"
expect_rc 0 "$X" mappings --limit 5
grep -q 'the first 5 mappings shown; more exist' "$T/err" && ok "mappings --limit: cut, and says so" ||
    bad "mappings --limit 5 gave no hint: $(cat "$T/err")"
expect_rc 0 "$X" mappings --limit 100000
[ -s "$T/err" ] && bad "mappings not cut, yet a hint: $(cat "$T/err")" || ok "no hint when nothing is cut"
# pending cuts with the same code (fetch_all); nothing is pending here.
expect_rc 0 "$X" pending --limit 1
[ -s "$T/err" ] && bad "pending: nothing cut, yet: $(cat "$T/err")" || ok "pending --limit 1: nothing cut, no hint"
expect_rc 0 "$X" policy
grep -q '^source: *built-in' "$T/out" && grep -q '^invalidating timeout:' "$T/out" &&
    ok "policy table" || bad "policy: $(cat "$T/out")"
expect_rc 0 "$X" --json policy
expect_rc 0 "$X" pending
expect_rc 0 "$X" --json pending --state flushing
expect_rc 2 "$X" pending --state eaten
expect_rc 0 "$X" metrics
grep -q '^iomapd_pages_released_total 512$' "$T/out" && ok "metrics text" || bad "metrics: $(grep released "$T/out")"
expect_rc 0 "$X" top --count 2 --interval 0.2
[ "$(grep -c '^xl iomap top' "$T/out")" = 2 ] && ok "top --count 2 printed two frames" || bad "top: $(cat "$T/out")"
expect_rc 0 "$X" --json top --count 1
# reload --check (before the drains below drop the mappings): what a new
# file would force-unmap, and nothing changes.
before=$("$X" --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["mappings"])')
printf 'emulators = ( { domid = 5; targets = [ 1 ]; } );\n' >"$T/iomapd.conf"
expect_rc 0 "$X" reload --check
grep -q "^policy $T/iomapd.conf (not in force): $before of $before existing mappings would be force-unmapped ($before denied" "$T/out" \
    && ok "reload --check: all $before mappings would go (denied)" || bad "reload --check: $(cat "$T/out" "$T/err")"
grep -qE '^0:1:0 +1 +0x' "$T/out" && ok "reload --check lists the runs" || bad "reload --check runs: $(cat "$T/out")"
after=$("$X" --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["mappings"])')
[ "$before" = "$after" ] && ok "reload --check changed nothing ($after mappings)" || bad "reload --check: $before -> $after mappings"
expect_rc 0 "$X" --json reload --check
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["dry_run"] and d["by_verdict"]["denied"] == int(sys.argv[2])' "$T/out" "$before" \
    && ok "--json reload --check" || bad "--json reload --check: $(head -c 300 "$T/out")"
expect_rc 2 "$X" reload --force
rm -f "$T/iomapd.conf"
expect_rc 0 "$X" drain 0:1:0 --timeout 1000
grep -q 'emulator 0:1:0: drained' "$T/out" && ok "drain output" || bad "drain: $(cat "$T/out")"
# drain --unmap-all: the pages it force-unmaps are the ones FORCED counts.
"$X" emulators | awk '$1 == "0:1:0" { print $9 }' > "$T/forced0"
expect_rc 0 "$X" drain 0:1:0 --unmap-all
n=$(sed -n 's/.* \([0-9]*\) pages force-unmapped.*/\1/p' "$T/out")
"$X" emulators | awk '$1 == "0:1:0" { print $9 }' > "$T/forced1"
if [ -n "$n" ] && [ "$n" -gt 0 ] && [ $(($(cat "$T/forced1") - $(cat "$T/forced0"))) = "$n" ]; then
    ok "drain --unmap-all: $n force-unmapped, FORCED grew by $n"
else bad "drain --unmap-all says '$n', FORCED went $(cat "$T/forced0") -> $(cat "$T/forced1"): $(cat "$T/out")"; fi
expect_rc 1 "$X" drain 7:7
expect_rc 2 "$X" drain
expect_rc 0 "$X" reload
grep -q "policy reloaded" "$T/out" && ok "reload output" || bad "reload: $(cat "$T/out" "$T/err")"
expect_rc 2 "$X" status extra

XL_BUILD_DIR=${XL_BUILD_DIR:-$(cd "$here/.." && pwd)/build/xl}
if [ -x "$XL_BUILD_DIR/xl-testdir" ]; then
    mkdir -p "$XL_BUILD_DIR/test-libexec"
    cp "$X" "$XL_BUILD_DIR/test-libexec/xl-iomap"
    "$XL_BUILD_DIR/xl-testdir" iomap status >"$T/out" 2>"$T/err"; rc=$?
    if [ $rc = 0 ] && grep -q "mappings:" "$T/out"; then ok "xl iomap status (patched xl) reaches iomapd"
    else bad "xl iomap status: rc $rc $(cat "$T/out" "$T/err")"; fi
    rm -f "$XL_BUILD_DIR/test-libexec/xl-iomap"
    XL_BUILD_DIR=$XL_BUILD_DIR sh "$here/../json-api/xl/test-xl-iomap.sh" "$X" \
        && ok "json-api/xl/test-xl-iomap.sh with the real xl-iomap" || bad "test-xl-iomap.sh"
else
    echo "note: no patched xl in $XL_BUILD_DIR (tests/ci-xl.sh builds it): xl part not run here"
fi
[ $fails = 0 ] || { echo "---- log"; cat "$T/log"; }
echo "test_xl_iomap: $fails failure(s)"
[ $fails = 0 ]
