#!/bin/sh
# Integration: iomapd, iomap-sim and an emulator as three processes.
# An emulator maps 1088 pages of guest 1; the guest gives back 513 of them
# (a 2 MiB extent and one page); the emulator gets per-page invalidates,
# unmaps; iomapd releases only after the flush; the sim's ground truth says
# nothing is held, nothing was released early, nothing leaked.  Then the
# emulator exits with mappings left, and they are force-unmapped.
set -u
B=${builddir:-.}
T=$(mktemp -d /tmp/iomapd-it.XXXXXX)
. "${srcdir:-$(dirname "$0")/..}/tests/simlib.sh"

"$B/iomap-sim" -s "$T/sim.sock" -H "$T/hc.sock" -g 1 -G 16384 -l 500 2>"$T/sim.log" &
SIM=$!
wait_sock "$T/hc.sock" || fail "iomap-sim did not come up"
"$B/iomapd" --backend sim --sim-socket "$T/sim.sock" -e "$T/emu.sock" \
    -s "$T/ctl.sock" 2>"$T/iomapd.log" &
DMN=$!
wait_sock "$T/emu.sock" || fail "iomapd did not come up"
"$B/example-emulator" --iomapd "$T/emu.sock" --sim "$T/hc.sock" --domid 1 \
    --map 0x1000:1024 --map 0x3000:64 >"$T/emu.log" 2>&1 &
EMU=$!
wait_for mappings 1088 || fail "emulator did not map its 1088 pages"

# (I3, an unmap the map op never made, is covered by test_random.)
[ "$(ctl balloon 1 0x1000 9)" = 512 ] || fail "balloon of an extent"
[ "$(ctl balloon 1 0x1200 0)" = 1 ] || fail "balloon of a page"
wait_for held_pages 0 || fail "removed pages were not released"
R=$(ctl report)
[ "$(echo "$R" | field pages_released)" = 513 ] || fail "released: $R"
[ "$(echo "$R" | field violations)" = 0 ] || fail "invariant violations: $R"
[ "$(echo "$R" | field mappings)" = 575 ] || fail "pages outside the range were disturbed: $R"
[ "$(echo "$R" | field forced_unmaps)" = 0 ] || fail "an emulator was forced: $R"
ctl check >/dev/null || fail "sim not quiescent: $(ctl check)"

# The emulator goes away with 575 pages still mapped: force-unmapped.
kill $EMU; wait $EMU 2>/dev/null; EMU=""
wait_for mappings 0 || fail "a dead emulator's mappings were not taken back"
R=$(ctl report)
[ "$(echo "$R" | field forced_unmaps)" = 575 ] || fail "forced: $R"
grep -q "513 pages unmapped" "$T/emu.log" || fail "emulator log: $(cat "$T/emu.log")"

# The daemon is killed and restarted: it resyncs and serves again.
kill -9 $DMN; wait $DMN 2>/dev/null
"$B/iomapd" --backend sim --sim-socket "$T/sim.sock" -e "$T/emu.sock" \
    -s "$T/ctl.sock" 2>>"$T/iomapd.log" &
DMN=$!
sleep 0.5
kill -0 $DMN || fail "iomapd did not restart"
grep -q "resync complete" "$T/iomapd.log" || fail "no resync after restart"
ctl check >/dev/null || fail "not quiescent at the end: $(ctl check)"
echo "PASS: 513 pages removed and released after their flush, 575 force-unmapped, 0 violations"
