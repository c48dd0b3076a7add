#!/bin/sh
# The command lines: --help, --version, and clear one-line errors with a
# non-zero exit for an unknown option or a missing/unknown backend.
set -u
B=${builddir:-.}
n=0
check() {   # check DESC EXPECTED_RC PATTERN CMD...
    desc=$1 want=$2 pat=$3; shift 3
    out=$("$@" 2>&1); rc=$?
    if [ "$rc" != "$want" ] || ! printf '%s' "$out" | grep -q -- "$pat"; then
        echo "FAIL: $desc: rc=$rc (want $want), output: $out"; n=$((n + 1))
    else
        echo "ok: $desc"
    fi
}
lines() { "$@" 2>&1 | wc -l; }
check "iomapd --help" 0 "usage: iomapd" "$B/iomapd" --help
check "iomapd --version" 0 "shim ABI 1.2" "$B/iomapd" --version
check "no backend" 2 "no backend given" "$B/iomapd"
check "unknown option" 2 "unknown option '--frobnicate'" "$B/iomapd" --frobnicate
check "unknown backend" 2 "unknown backend 'kvm'" "$B/iomapd" --backend kvm
check "missing option argument" 2 "needs an argument" "$B/iomapd" --backend
check "sim not running" 1 "is iomap-sim running" "$B/iomapd" --backend sim --sim-socket /nonexistent/sim.sock
for args in "" "--frobnicate" "--backend kvm"; do
    # shellcheck disable=SC2086
    [ "$(lines "$B/iomapd" $args)" = 1 ] || { echo "FAIL: '$args' is not one line"; n=$((n + 1)); }
done
check "iomap-sim --version" 0 "iomap-sim" "$B/iomap-sim" --version
check "iomap-sim ctl usage" 2 "usage" "$B/iomap-sim" ctl /nonexistent bogus
exit $n
