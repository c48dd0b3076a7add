#!/bin/sh
# SPDX-License-Identifier: MIT
#
# run-test-mapcache.sh QEMU_SRC QEMU_BUILD: compile the patched
# hw/i386/xen/xen-mapcache.c with exactly the flags QEMU's build uses for
# it (compile_commands.json, -Werror included), next to test-mapcache.c
# and a recording trace.h, link it with QEMU's libqemuutil.a, and run it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$1" && pwd)
b=$(cd "$2" && pwd)
die() { printf 'test-mapcache: %s\n' "$*" >&2; exit 1; }

[ -f "$b/compile_commands.json" ] || die "no compile_commands.json in $b"
[ -f "$b/libqemuutil.a" ] || die "no libqemuutil.a in $b (build QEMU first)"
t=$(mktemp -d /tmp/test-mapcache.XXXXXX)
trap 'rm -rf "$t"' EXIT
cp "$src/hw/i386/xen/xen-mapcache.c" "$here/trace.h" "$here/test-mapcache.c" "$t/"

# QEMU's command for xen-mapcache.c, minus its output and input.
flags=$(python3 - "$b/compile_commands.json" <<'PY'
import json, shlex, sys
for c in json.load(open(sys.argv[1])):
    if c['file'].endswith('hw/i386/xen/xen-mapcache.c'):
        a = shlex.split(c['command'])
        out, skip = [], 0
        for x in a[1:]:
            if skip:
                skip -= 1
                continue
            if x in ('-o', '-MQ', '-MF'):
                skip = 1
                continue
            if x in ('-c', '-MD') or x.endswith('xen-mapcache.c'):
                continue
            out.append(x)
        print(a[0] + ' ' + ' '.join(shlex.quote(x) for x in out))
        break
else:
    sys.exit(1)
PY
) || die "xen-mapcache.c is not in compile_commands.json"
glib=$(pkg-config --libs glib-2.0)
(cd "$b" && eval "$flags" -I"$t" -c "$t/test-mapcache.c" -o "$t/test-mapcache.o") ||
    die "compile failed"
# shellcheck disable=SC2086
cc -o "$t/test-mapcache" "$t/test-mapcache.o" -Wl,--start-group "$b/libqom.fa" \
    "$b/libqemuutil.a" -Wl,--end-group $glib -pthread -lm ||
    die "link failed"
"$t/test-mapcache"
