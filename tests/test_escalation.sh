#!/bin/sh
# The policy's escalation on real processes: an emulator that never answers
# an invalidate is killed (SIGKILL to the registered process) when the
# INVALIDATING timeout's steps say so; its mappings are force-unmapped and
# the removed pages released after their flush.  Nothing released early.
set -u
B=${builddir:-.}
T=$(mktemp -d /tmp/iomapd-esc.XXXXXX)
. "${srcdir:-$(dirname "$0")/..}/tests/simlib.sh"

cat >"$T/iomapd.conf" <<'CONF'
emulators = ( { domid = 0; ioservid = 0; targets = [ 1 ]; } );
timeouts = {
  invalidating = { ms = 300; steps = [ "log", "kill-emulator" ]; };
};
CONF
"$B/iomap-sim" -s "$T/sim.sock" -H "$T/hc.sock" -g 1 -G 4096 -l 200 2>"$T/sim.log" &
SIM=$!
wait_sock "$T/hc.sock" || fail "iomap-sim did not come up"
"$B/iomapd" --backend sim --sim-socket "$T/sim.sock" -e "$T/emu.sock" \
    -s "$T/ctl.sock" -c "$T/iomapd.conf" 2>"$T/iomapd.log" &
DMN=$!
wait_sock "$T/emu.sock" || fail "iomapd did not come up"
"$B/example-emulator" --iomapd "$T/emu.sock" --sim "$T/hc.sock" --domid 1 \
    --map 0x100:64 --never-answer >"$T/emu.log" 2>&1 &
EMU=$!
for _ in $(seq 50); do [ "$(ctl report | field mappings)" = 64 ] && break; sleep 0.1; done
[ "$(ctl report | field mappings)" = 64 ] || fail "emulator did not map"
[ "$(ctl balloon 1 0x100 4)" = 16 ] || fail "balloon"
sleep 0.1
[ "$(ctl report | field held_pages)" = 16 ] || fail "pages not held while the emulator maps them"
# Killed by the policy within a few ticks of 2 x 300 ms.
for _ in $(seq 50); do kill -0 $EMU 2>/dev/null || break; sleep 0.1; done
kill -0 $EMU 2>/dev/null && fail "the hung emulator was not killed"
wait $EMU 2>/dev/null; EMU=""
for _ in $(seq 50); do [ "$(ctl report | field held_pages)" = 0 ] && break; sleep 0.1; done
R=$(ctl report)
[ "$(echo "$R" | field held_pages)" = 0 ] || fail "pages still held: $R"
[ "$(echo "$R" | field pages_released)" = 16 ] || fail "released: $R"
[ "$(echo "$R" | field violations)" = 0 ] || fail "violations: $R"
[ "$(echo "$R" | field mappings)" = 0 ] || fail "mappings left: $R"
grep -q "SIGKILL" "$T/iomapd.log" || fail "no kill in the log"
echo "PASS: hung emulator killed by policy, 16 pages released, 48 force-unmapped, 0 violations"
