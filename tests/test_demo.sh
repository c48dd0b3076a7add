#!/bin/sh
# test_demo.sh - iomap-demo: --help prints its usage and does not run the
# demo; an unknown argument is a usage error; a run prints the comparison
# table and then, as its very last line, one JSON object.
set -u
B=${top_builddir:-$(pwd)}
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
fails=0
ok() { echo "PASS: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
"$B/iomap-demo" --help >"$t/h" 2>&1; rc=$?
[ $rc = 0 ] && grep -q '^usage: iomap-demo' "$t/h" && ! grep -q '{' "$t/h" &&
    ok "--help: usage, no demo" || bad "--help: rc $rc: $(head -3 "$t/h")"
"$B/iomap-demo" --frob >"$t/u" 2>&1; rc=$?
[ $rc = 2 ] && grep -q "unknown argument '--frob'" "$t/u" && ok "unknown argument: exit 2" ||
    bad "--frob: rc $rc $(cat "$t/u")"
"$B/iomap-demo" --quiet >"$t/o" 2>"$t/e"; rc=$?
[ $rc = 0 ] && ok "the demo runs (exit 0)" || bad "demo exit $rc: $(cat "$t/e")"
grep -qE '^ +iomapd +global invalidate$' "$t/o" && grep -qE '^  invalidate requests sent +[0-9]+ +[0-9]+$' "$t/o" &&
    ok "the comparison table" || bad "no table: $(cat "$t/o")"
tail -n 1 "$t/o" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); assert d["invariant_violations"]==0 and "baseline_global_flush" in d' &&
    ok "the last line is the one JSON object" || bad "last line: $(tail -n 1 "$t/o")"
[ "$(grep -c '^{' "$t/o")" = 1 ] && ok "one JSON line" || bad "JSON lines: $(grep -c '^{' "$t/o")"
[ $fails = 0 ]
