#!/bin/sh
# test_man.sh - the man pages are lint-clean (mandoc -Tlint) and
# iomapd-api(7) documents every method that has a schema.
# Exit 77 (skip) only when mandoc is absent.
set -u
src=${srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
command -v mandoc >/dev/null 2>&1 || { echo "SKIP: no mandoc"; exit 77; }
fails=0
for m in "$src"/man/iomapd.8 "$src"/man/xl-iomap.1 "$src"/man/iomapd.conf.5 "$src"/man/iomapd-api.7; do
    [ -f "$m" ] || { echo "FAIL: $m missing"; fails=$((fails + 1)); continue; }
    out=$(mandoc -Tlint -Wwarning "$m" 2>&1)
    if [ -n "$out" ]; then echo "FAIL: mandoc -Tlint $m"; echo "$out"; fails=$((fails + 1))
    else echo "PASS: mandoc -Tlint $(basename "$m")"; fi
done
for s in "$src"/json-api/schema/*.json; do
    meth=$(basename "$s" .json)
    [ "$meth" = notifications ] && continue
    if grep -q "^\.Ss $meth\$" "$src/man/iomapd-api.7"; then echo "PASS: iomapd-api(7) documents $meth"
    else echo "FAIL: iomapd-api(7) lacks a section for $meth"; fails=$((fails + 1)); fi
done
# Rendered, every quoted JSON key is closed before the next one: mdoc's Qq
# encloses everything after it on the line, so ".Brq Qq a , Qq b" renders as
# {"a, "b""}.  Checked with mandoc and, when installed, groff.
render_check() {    # name, command...
    name=$1; shift
    for m in "$src"/man/*.[1-8]; do
        txt=$("$@" "$m" 2>/dev/null | col -b)
        badq=$(printf '%s\n' "$txt" | grep -n -E '""|(^|[ ({])"[A-Za-z_][A-Za-z_0-9.-]*[,)}]' || true)
        if [ -n "$badq" ]; then echo "FAIL: $name renders unbalanced quotes in $(basename "$m"):"
            printf '%s\n' "$badq" | head -5; fails=$((fails + 1))
        else echo "PASS: $name renders $(basename "$m") with balanced quotes"; fi
    done
}
render_check mandoc mandoc -Tascii
command -v groff >/dev/null 2>&1 && render_check groff groff -mandoc -Tascii
[ $fails = 0 ]
