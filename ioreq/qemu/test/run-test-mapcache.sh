#!/bin/sh
# SPDX-License-Identifier: MIT
#
# run-test-mapcache.sh QEMU_SRC QEMU_BUILD: compile the patched
# hw/i386/xen/xen-mapcache.c and xen-iomap.c, each with exactly the flags
# QEMU's build uses for it (compile_commands.json, -Werror included),
# inside test-mapcache.c and test-iomap.c with a recording trace.h, link
# them with QEMU's libqemuutil.a, and run them.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$1" && pwd)
b=$(cd "$2" && pwd)
die() { printf 'test-mapcache: %s\n' "$*" >&2; exit 1; }

[ -f "$b/compile_commands.json" ] || die "no compile_commands.json in $b"
[ -f "$b/libqemuutil.a" ] || die "no libqemuutil.a in $b (build QEMU first)"
t=$(mktemp -d /tmp/test-mapcache.XXXXXX)
trap 'rm -rf "$t"' EXIT
cp "$src/hw/i386/xen/xen-mapcache.c" "$src/hw/i386/xen/xen-iomap.c" \
    "$src/hw/i386/xen/xen-iomap.h" \
    "$here/trace.h" "$here/test-mapcache.c" "$here/test-iomap.c" "$t/"

# QEMU's command for hw/i386/xen/$1, minus its output and input.
flags_for() {
    python3 - "$b/compile_commands.json" "$1" <<'PY'
import json, shlex, sys
for c in json.load(open(sys.argv[1])):
    if c['file'].endswith('hw/i386/xen/' + sys.argv[2]):
        a = shlex.split(c['command'])
        out, skip = [], 0
        for x in a[1:]:
            if skip:
                skip -= 1
                continue
            if x in ('-o', '-MQ', '-MF'):
                skip = 1
                continue
            if x in ('-c', '-MD') or x.endswith(sys.argv[2]):
                continue
            out.append(x)
        print(a[0] + ' ' + ' '.join(shlex.quote(x) for x in out))
        break
else:
    sys.exit(1)
PY
}
glib=$(pkg-config --libs glib-2.0)

# test-NAME.c includes the source file FILE: build it and run it.
run_test() {
    name=$1 file=$2
    flags=$(flags_for "$file") || die "$file is not in compile_commands.json"
    (cd "$b" && eval "$flags" -I"$t" -c "$t/test-$name.c" \
        -o "$t/test-$name.o") || die "test-$name: compile failed"
    # shellcheck disable=SC2086
    cc -o "$t/test-$name" "$t/test-$name.o" -Wl,--start-group \
        "$b/libqom.fa" "$b/libqemuutil.a" -Wl,--end-group $glib -pthread \
        -lm || die "test-$name: link failed"
    printf 'test-%s: ' "$name"
    "$t/test-$name" || die "test-$name failed"
}

run_test mapcache xen-mapcache.c
run_test iomap xen-iomap.c
