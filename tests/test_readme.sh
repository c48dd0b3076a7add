#!/bin/sh
# test_readme.sh - run the README's commands as written.
# Every fenced block of README.md that follows a line
# "<!-- readme-test: NAME -->" is taken from the text of README.md (not a
# copy) and run by bash -e in the build directory, where the README says
# to run them.  A command that fails fails the test; so does a background
# process that died before the block's own `kill` (kill %N then fails).
# Exit 77 (skip) only when bash is absent.
set -u
src=${srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
B=${top_builddir:-$(pwd)}
command -v bash >/dev/null 2>&1 || { echo "SKIP: no bash"; exit 77; }
readme="$src/README.md"
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
# Cut the blocks out: NAME on the marker, then the lines between the fences.
awk -v dir="$t" '
    /^<!-- readme-test: [a-z0-9-]+ -->$/ { name = $3; want = 1; next }
    want && /^```/ { if (infence) { close(f); infence = 0; want = 0 }
                     else { infence = 1; f = dir "/" name ".sh"; n++ } next }
    infence { print > f }
    END { if (infence) exit 1 }' "$readme" || { echo "FAIL: unterminated block in README.md"; exit 1; }
blocks=$(cd "$t" && ls ./*.sh 2>/dev/null | sed 's|^\./||')
[ -n "$blocks" ] || { echo "FAIL: no readme-test block in README.md"; exit 1; }
fails=0
for b in $blocks; do
    name=${b%.sh}
    [ -s "$t/$b" ] || { echo "FAIL: block $name is empty"; fails=$((fails + 1)); continue; }
    # Its own session, so that whatever it leaves running can be killed.
    (cd "$B" && exec setsid bash -e -x "$t/$b") >"$t/$name.out" 2>&1 &
    pid=$!
    # The block must finish on its own (its waits are bounded at 10 s each).
    i=0
    while kill -0 $pid 2>/dev/null && [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done
    if kill -0 $pid 2>/dev/null; then
        kill -TERM -- -$pid 2>/dev/null; wait $pid 2>/dev/null
        echo "FAIL: README block '$name' did not finish in 120 s"; cat "$t/$name.out"
        fails=$((fails + 1)); continue
    fi
    wait $pid; rc=$?
    kill -TERM -- -$pid 2>/dev/null     # leftovers of a failed block
    if [ $rc -ne 0 ]; then
        echo "FAIL: README block '$name' exits $rc:"; cat "$t/$name.out"
        fails=$((fails + 1))
    else
        echo "PASS: README block '$name' ($(grep -c '^+ ' "$t/$name.out") commands traced)"
    fi
done
[ $fails = 0 ]
