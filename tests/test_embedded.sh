#!/bin/sh
# iomapd with the simulated hypervisor embedded (--backend sim-embedded):
# the same life of removed pages, with one process fewer.
set -u
B=${builddir:-.}
T=$(mktemp -d /tmp/iomapd-emb.XXXXXX)
. "${srcdir:-$(dirname "$0")/..}/tests/simlib.sh"

"$B/iomapd-sim" --backend sim-embedded --sim-socket "$T/hc.sock" -e "$T/emu.sock" \
    -s "$T/ctl.sock" 2>"$T/iomapd.log" &
DMN=$!
wait_sock "$T/emu.sock" || fail "iomapd did not come up"
wait_sock "$T/hc.sock" || fail "no simulated hypercall socket"
[ "$(ctl domain-create 1 8192)" = 0 ] || fail "domain-create"
"$B/example-emulator" --iomapd "$T/emu.sock" --sim "$T/hc.sock" --domid 1 \
    --map 0x100:256 >"$T/emu.log" 2>&1 &
EMU=$!
wait_for mappings 256 || fail "emulator did not map"
[ "$(ctl balloon 1 0x100 7)" = 128 ] || fail "balloon"
wait_for held_pages 0 || fail "removed pages not released"
R=$(ctl report)
[ "$(echo "$R" | field pages_released)" = 128 ] || fail "released: $R"
[ "$(echo "$R" | field violations)" = 0 ] || fail "violations: $R"
[ "$(echo "$R" | field mappings)" = 128 ] || fail "the other 128 were disturbed: $R"
ctl check >/dev/null || fail "not quiescent: $(ctl check)"
grep -q "simulated hypervisor embedded" "$T/iomapd.log" || fail "log"
kill $DMN; wait $DMN; rc=$?; DMN=""
[ "$rc" = 0 ] || fail "iomapd exit status $rc after SIGTERM"
[ -e "$T/hc.sock" ] && fail "hypercall socket left behind"
echo "PASS: embedded sim: 128 pages removed and released, 0 violations, clean exit"
