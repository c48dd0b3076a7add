#!/bin/sh
# test-xl-iomap.sh - check that the patched xl hands "xl iomap ..." to
# xl-iomap, and that it otherwise behaves like stock xl.
#
# Usage: test-xl-iomap.sh [PATH-TO-xl-iomap]
#
# Uses the binaries build-xl.sh leaves in XL_BUILD_DIR (default
# <repo>/build/xl), running build-xl.sh first if they are missing:
#   xl-testdir  the patched xl, built to look for xl-CMD programs in
#               XL_BUILD_DIR/test-libexec instead of /usr/lib/xen-4.17/bin
#               (the only difference from the "xl" binary).  This script
#               empties and fills that directory; nothing is installed
#               into the system.
#   xl-stock    unpatched xl built the same way, used as the reference
#               for "behaves exactly like stock xl".
#
# If PATH-TO-xl-iomap is given, that program is installed as xl-iomap
# and "xl iomap status" / "xl iomap --help" must behave exactly like
# running it directly.  Exact argv pass-through is always checked with
# a small recording shell script: without an argument it *is* xl-iomap
# (a stand-in, only for this script's self-test); with an argument it
# records argv and then execs the given program.
#
# Works without a running hypervisor: nothing here needs libxl to get
# past initialisation, except the stock-xl comparisons, which compare
# whatever both binaries print (e.g. "cannot init xl context").
#
# Exit status: 0 if every check passed, 1 otherwise.

set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
: "${XL_BUILD_DIR:=$repo/build/xl}"

iomap_bin=
if [ $# -gt 1 ]; then
    echo "usage: $0 [PATH-TO-xl-iomap]" >&2
    exit 2
elif [ $# = 1 ]; then
    iomap_bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
    [ -f "$iomap_bin" ] && [ -x "$iomap_bin" ] ||
        { echo "$0: $1 is not an executable file" >&2; exit 2; }
fi

if [ ! -x "$XL_BUILD_DIR/xl-testdir" ] || [ ! -x "$XL_BUILD_DIR/xl-stock" ]; then
    echo "test-xl-iomap: no xl build in $XL_BUILD_DIR, running build-xl.sh" >&2
    XL_BUILD_DIR=$XL_BUILD_DIR sh "$here/build-xl.sh"
fi

xl=$XL_BUILD_DIR/xl-testdir
stock=$XL_BUILD_DIR/xl-stock
dir=$XL_BUILD_DIR/test-libexec
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Sanity: the test binary must really look in $dir.
grep -q -F "$dir" "$xl" ||
    { echo "$xl was not built for $dir; rerun build-xl.sh" >&2; exit 1; }

rm -rf "$dir"
mkdir -p "$dir"

failures=0
pass() { printf 'PASS: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*"; failures=$((failures + 1)); }

# run NAME PROG ARGS...: run PROG, keeping stdout, stderr and status in
# $tmp/NAME.{out,err,rc}.  stdin is /dev/null.
run() {
    n=$1; shift
    rc=0
    "$@" < /dev/null > "$tmp/$n.out" 2> "$tmp/$n.err" || rc=$?
    echo "$rc" > "$tmp/$n.rc"
}

same_result() {
    cmp -s "$tmp/$1.out" "$tmp/$2.out" &&
        cmp -s "$tmp/$1.err" "$tmp/$2.err" &&
        cmp -s "$tmp/$1.rc" "$tmp/$2.rc"
}

show() {
    for f in out err rc; do
        printf '  %s.%s:\n' "$1" "$f"
        sed 's/^/    /' "$tmp/$1.$f"
    done
}

# argv_is FILE ARG...: FILE holds exactly these NUL-terminated strings.
argv_is() {
    f=$1; shift
    [ -f "$f" ] || return 1
    printf '%s\0' "$@" > "$tmp/expected-argv"
    cmp -s "$f" "$tmp/expected-argv"
}

# A program that must never run: it leaves a mark if it does.
make_trap() {
    mkdir -p "$(dirname "$1")"
    cat > "$1" <<EOF
#!/bin/sh
: > "$tmp/trap-fired"
exit 99
EOF
    chmod 755 "$1"
}

# The argv recorder (see the header comment).
log=$tmp/argv
# (dash's echo would interpret the backslashes, hence line().)
line() { printf '%s\n' "$*"; }
make_recorder() {
    {
        line '#!/bin/sh'
        if [ -n "$iomap_bin" ]; then
            line '# test-xl-iomap.sh: records argv, then runs the real xl-iomap.'
        else
            line '# STAND-IN for xl-iomap, for test-xl-iomap.sh self-test only.'
        fi
        line "for a in \"\$0\" \"\$@\"; do printf '%s\\0' \"\$a\"; done > '$log'"
        if [ -n "$iomap_bin" ]; then
            line "exec '$iomap_bin' \"\$@\""
        else
            line 'case "${1:-}" in'
            line '--help) echo "xl-iomap stand-in: usage: xl iomap status"; exit 0 ;;'
            line 'status) echo "xl-iomap stand-in: status ok"; exit 0 ;;'
            line 'exit-with) exit "$2" ;;'
            line 'esac'
            line 'echo "xl-iomap stand-in: unknown command" >&2; exit 1'
        fi
    } > "$dir/xl-iomap"
    chmod 755 "$dir/xl-iomap"
}

echo "xl under test: $xl (external commands from $dir)"
if [ -n "$iomap_bin" ]; then
    echo "xl-iomap under test: $iomap_bin"
else
    echo "xl-iomap: none given; using a shell STAND-IN (self-test only)"
fi
if [ -e /dev/xen/privcmd ] || [ -e /proc/xen/privcmd ]; then
    echo "note: Xen privcmd present"
else
    echo "note: no Xen here (no privcmd); libxl cannot initialise"
fi

# --- 1. the given xl-iomap, installed as is --------------------------------
if [ -n "$iomap_bin" ]; then
    cp "$iomap_bin" "$dir/xl-iomap"
    chmod 755 "$dir/xl-iomap"
    for args in "status" "--help"; do
        # shellcheck disable=SC2086
        run via "$xl" iomap $args
        # shellcheck disable=SC2086
        run direct "$dir/xl-iomap" $args
        if same_result via direct; then
            pass "xl iomap $args == xl-iomap $args (exit $(cat "$tmp/via.rc"))"
        else
            fail "xl iomap $args differs from running xl-iomap $args"
            show via; show direct
        fi
    done
    rm -f "$dir/xl-iomap"
fi

# --- 2. argv pass-through ---------------------------------------------------
make_recorder

rm -f "$log"
run a "$xl" iomap status
if argv_is "$log" "$dir/xl-iomap" status; then
    pass "xl iomap status -> argv [$dir/xl-iomap, status]"
else
    fail "xl iomap status: wrong or no argv recorded"
    [ -f "$log" ] && tr '\0' '\n' < "$log" | sed 's/^/    argv: /'
    show a
fi
if grep -q -e 'libxl' -e 'xencall' -e 'xl context' "$tmp/a.err"; then
    fail "xl iomap status touched libxl before exec"; show a
else
    pass "xl iomap status: no libxl/xencall messages (exec before libxl init)"
fi

rm -f "$log"
run b "$xl" iomap status --json 'two words' '' '-v' 'semi;colon' '*'
if argv_is "$log" "$dir/xl-iomap" status --json 'two words' '' '-v' 'semi;colon' '*'; then
    pass "awkward arguments passed through unchanged"
else
    fail "awkward arguments were not passed through unchanged"; show b
fi

rm -f "$log"
run c "$xl" help iomap
if argv_is "$log" "$dir/xl-iomap" --help; then
    pass "xl help iomap -> xl-iomap --help"
else
    fail "xl help iomap did not run xl-iomap --help"; show c
fi

if [ -z "$iomap_bin" ]; then
    run d "$xl" iomap exit-with 7
    if [ "$(cat "$tmp/d.rc")" = 7 ]; then
        pass "exit status of xl-iomap is xl's exit status"
    else
        fail "exit status not passed back (got $(cat "$tmp/d.rc"), want 7)"
    fi
    run e "$xl" iomap status
    if [ "$(cat "$tmp/e.out")" = "xl-iomap stand-in: status ok" ]; then
        pass "stdout of xl-iomap reaches the caller"
    else
        fail "stdout of xl-iomap lost"; show e
    fi
fi

rm -f "$log"
run f "$xl" -N iomap status
if [ ! -f "$log" ] && [ "$(cat "$tmp/f.rc")" != 0 ] &&
   grep -q 'dryrun' "$tmp/f.err"; then
    pass "xl -N iomap is refused without running xl-iomap"
else
    fail "xl -N iomap status"; show f
fi

# --- 3. unknown commands behave exactly as in stock xl -----------------------
for cmd in no-such-cmd 'Bad;Name' UPPER '../trap' 'a/b' ''; do
    rm -f "$tmp/trap-fired"
    case "$cmd" in
    no-such-cmd) ;;
    ../trap) make_trap "$dir/xl-../trap" ;;
    a/b) make_trap "$dir/xl-a/b" ;;
    '') make_trap "$dir/xl-" ;;
    *) make_trap "$dir/xl-$cmd" ;;
    esac
    run p "$xl" "$cmd" arg
    run s "$stock" "$cmd" arg
    if [ -e "$tmp/trap-fired" ]; then
        fail "xl '$cmd' executed $dir/xl-$cmd"
    elif ! same_result p s; then
        fail "xl '$cmd' differs from stock xl"; show p; show s
    elif [ "$(cat "$tmp/p.rc")" = 0 ]; then
        fail "xl '$cmd' succeeded"; show p
    else
        pass "xl '$cmd' not exec'd; same output and exit $(cat "$tmp/p.rc") as stock xl"
    fi
done

rm -f "$tmp/trap-fired"
run p "$xl" help no-such-cmd
run s "$stock" help no-such-cmd
if same_result p s; then
    pass "xl help no-such-cmd same as stock xl"
else
    fail "xl help no-such-cmd differs from stock xl"; show p; show s
fi

# --- 4. built-in commands win over external ones ---------------------------
make_trap "$dir/xl-info"
make_trap "$dir/xl-list"
rm -f "$tmp/trap-fired"
run p "$xl" info
run s "$stock" info
run p2 "$xl" li
run s2 "$stock" li
if [ -e "$tmp/trap-fired" ]; then
    fail "an external xl-info/xl-list ran instead of the built-in command"
elif same_result p s && same_result p2 s2; then
    pass "built-in commands (info, prefix li) unaffected by xl-info/xl-list"
else
    fail "built-in command behaves differently from stock xl"; show p; show s
fi

# --- 5. present but not executable -----------------------------------------
printf 'not a program\n' > "$dir/xl-noexec"
chmod 644 "$dir/xl-noexec"
run p "$xl" noexec
if [ "$(cat "$tmp/p.rc")" != 0 ] && grep -q 'cannot execute' "$tmp/p.err"; then
    pass "non-executable xl-noexec reported as such"
else
    fail "non-executable xl-noexec"; show p
fi

rm -rf "$dir"
mkdir -p "$dir"

echo
if [ "$failures" = 0 ]; then
    echo "test-xl-iomap: all checks passed"
    exit 0
fi
echo "test-xl-iomap: $failures check(s) FAILED"
exit 1
