# Shared by the shell tests that run iomap-sim / iomapd / emulators as
# processes.  Source it after setting B (the build directory) and T (a
# temporary directory); the caller sets EMU, DMN, SIM to the pids it starts.
EMU=""; DMN=""; SIM=""
fail() { echo "FAIL: $*"; for f in "$T"/*.log; do echo "== $f"; cat "$f"; done; exit 1; }
cleanup() { kill $EMU $DMN $SIM 2>/dev/null; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
ctl() { "$B/iomap-sim" ctl "$T/hc.sock" "$@"; }
field() { sed -n "s/.*\"$1\":\([0-9-]*\).*/\1/p"; }
wait_sock() { for _ in $(seq 50); do [ -S "$1" ] && return 0; sleep 0.1; done; return 1; }
wait_for() {    # wait_for FIELD VALUE: poll the sim's report (5 s)
    for _ in $(seq 50); do
        [ "$(ctl report | field "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
