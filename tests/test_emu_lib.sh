#!/bin/sh
# SPDX-License-Identifier: MIT
#
# libiomap-emu as an outside program sees it:
#  1. the installed header <iomap/emu.h> compiles alone (only its own
#     directory on the include path, strict C99 and C11);
#  2. the shared library exports exactly the functions listed in
#     ioreq/libiomap-emu.map, each versioned @@ the node that lists it
#     (IOMAP_EMU_1.0, IOMAP_EMU_1.1), and the map lists exactly the
#     functions the header declares;
#  3. its soname is libiomap-emu.so.1 and it needs no libevent, jansson,
#     libconfig or libsystemd;
#  4. example-emulator links it dynamically and does not carry its code.
# It first proves the export check can fail, on planted nm output.
set -u
B=${top_builddir:-$(pwd)}
S=${srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
VERS="IOMAP_EMU_1.0 IOMAP_EMU_1.1"
SONAME=libiomap-emu.so.1
fail=0
bad() { echo "FAIL: $*"; fail=1; }

for t in nm readelf; do
    command -v $t >/dev/null 2>&1 || { echo "SKIP: no $t"; exit 77; }
done
t=$(mktemp -d /tmp/iomap-emulib.XXXXXX)
trap 'rm -rf "$t"' EXIT

# The functions the map exports ("name version" in want.ver, names in
# want), and those the header declares.
awk '/^[A-Z0-9_.]+[[:space:]]*\{/ { node = $1 }
     /global:/ { g = 1; next } /local:|\}/ { g = 0 }
     g && match($0, /^[[:space:]]*[a-z_][a-z0-9_]*;/) {
         n = $1; sub(/;.*/, "", n); print n, node }' \
    "$S/ioreq/libiomap-emu.map" | sort -u >"$t/want.ver"
cut -d' ' -f1 "$t/want.ver" | sort -u >"$t/want"
for v in $VERS; do
    grep -q " $v\$" "$t/want.ver" || bad "no function at $v in ioreq/libiomap-emu.map"
done
grep -o '\biomap_emu_[a-z_]*(' "$S/ioreq/iomap/emu.h" | tr -d '(' | sort -u >"$t/decl"
[ -s "$t/want" ] || bad "no exported names found in ioreq/libiomap-emu.map"
cmp -s "$t/want" "$t/decl" ||
    bad "the map and <iomap/emu.h> disagree: $(diff "$t/want" "$t/decl" | grep '^[<>]' | tr '\n' ' ')"

# exports NMFILE: prints one line per defined dynamic symbol that is not a
# wanted function versioned @@ its node, and per wanted function missing.
exports() {
    awk -v vers="$VERS" -v want="$t/want.ver" '
        BEGIN { while ((getline w < want) > 0) { split(w, f, " "); wanted[f[1]] = f[2] }
                nv = split(vers, vl, " "); for (i = 1; i <= nv; i++) node[vl[i]] = 1 }
        NF >= 3 { type = $2; sym = $3 }
        NF == 2 { type = $1; sym = $2 }
        NF < 2 { next }
        { base = sym; sub(/@.*/, "", base) }
        (base in node) && (sym == base || sym == base "@@" base) { next }   # a version node
        {
            name = sym; sub(/@.*/, "", name)
            if (!(name in wanted)) { print "exported but not public: " sym; next }
            ver = wanted[name]
            if (sym != name "@@" ver) { print "not versioned " ver ": " sym; next }
            if (type != "T") { print "not a function: " sym " (" type ")"; next }
            seen[name] = 1
        }
        END { for (w in wanted) if (!(w in seen)) print "missing: " w }' "$1"
}

# 1. The check can fail.
good=$(awk '{ printf "0000000000001000 T %s@@%s\n", $1, $2 }' "$t/want.ver")
printf '%s\n0000000000000000 A IOMAP_EMU_1.0\n0000000000000000 A IOMAP_EMU_1.1\n' "$good" >"$t/nm.good"
[ -z "$(exports "$t/nm.good")" ] || { echo "FAIL: the check refuses a good export list"; exports "$t/nm.good"; exit 1; }
for plant in "0000000000002000 T ioreq_chan_take" \
             "0000000000002000 T ioreq_chan_take@@IOMAP_EMU_1.0" \
             "0000000000002000 T iomap_emu_open_local@@IOMAP_EMU_1.1"; do
    printf '%s\n%s\n' "$good" "$plant" >"$t/nm.bad"
    [ -n "$(exports "$t/nm.bad")" ] || { echo "FAIL: the check let '$plant' pass"; exit 1; }
done
printf '%s\n' "$good" | sed "s/@@IOMAP_EMU_1\.[01]\$//; 1!d" >"$t/nm.bad"   # unversioned
printf '%s\n' "$good" | sed 1d >>"$t/nm.bad"
[ -n "$(exports "$t/nm.bad")" ] || { echo "FAIL: the check let an unversioned symbol pass"; exit 1; }
printf '%s\n' "$good" | sed 's/\(iomap_emu_reconnect\)@@IOMAP_EMU_1.1/\1@@IOMAP_EMU_1.0/' >"$t/nm.bad"
[ -n "$(exports "$t/nm.bad")" ] || { echo "FAIL: the check let a symbol at the wrong version pass"; exit 1; }
printf '%s\n' "$good" | sed 1d >"$t/nm.bad"                     # one missing
[ -n "$(exports "$t/nm.bad")" ] || { echo "FAIL: the check let a missing symbol pass"; exit 1; }

# 2. The header alone, with the compiler libtool was configured with.
CC=$(sed -n 's/^CC="\(.*\)"$/\1/p' "$B/libtool" 2>/dev/null | head -n 1)
for std in c99 c11; do
    printf '#include <iomap/emu.h>\nstruct iomap_emu_req r;\n' |
        ${CC:-cc} -std=$std -pedantic-errors -Wall -Wextra -Werror -fsyntax-only \
            -I"$S/ioreq" -x c - 2>"$t/cc.err" ||
        { bad "<iomap/emu.h> does not compile alone (-std=$std):"; cat "$t/cc.err"; }
done

# 3. The library.
so=$B/.libs/$SONAME
[ -e "$so" ] || { echo "FAIL: $so not built"; exit 1; }
nm -D --defined-only "$so" >"$t/nm.so" || bad "nm -D $so failed"
out=$(exports "$t/nm.so")
[ -z "$out" ] || bad "$SONAME exports: $(printf '%s\n' "$out" | tr '\n' ';')"
readelf -d "$so" >"$t/dyn" || bad "readelf -d $so failed"
grep -q "Library soname: \[$SONAME\]" "$t/dyn" ||
    bad "soname is not $SONAME: $(grep -i soname "$t/dyn")"
if grep 'NEEDED' "$t/dyn" | grep -E 'libevent|jansson|libconfig|libsystemd'; then
    bad "$SONAME drags in the daemon's libraries"
fi

# 4. example-emulator: dynamically linked, none of the library's code in it.
exe=$B/example-emulator
[ -f "$B/.libs/example-emulator" ] && exe=$B/.libs/example-emulator   # a libtool wrapper
readelf -d "$exe" 2>/dev/null | grep -q "NEEDED.*\[$SONAME\]" ||
    bad "example-emulator does not link $SONAME"
if nm "$exe" 2>/dev/null | grep -E ' [Tt] (iomap_emu_|ioreq_chan_)'; then
    bad "example-emulator carries the library's code (static link)"
fi

[ "$fail" = 0 ] || exit 1
echo "PASS: <iomap/emu.h> alone, $SONAME exports $(wc -l <"$t/want") functions at their versions ($VERS), example-emulator links it"
