#!/bin/sh
# SPDX-License-Identifier: MIT
#
# run-test-configure.sh QEMU_SRC IOMAP_PCDIR: configure the patched
# source where libiomap-emu is found (IOMAP_PCDIR holds iomap-emu.pc) but
# libxencall's pkg-config file is not.  --enable-iomap=auto (the default)
# must turn iomapd support off and succeed; --enable-iomap must fail.
# Default features stay on: --without-default-features would turn the
# auto option off before it is looked at.
set -eu
src=$(cd "$1" && pwd)
pcdir=$(cd "$2" && pwd)
die() { printf 'test-configure: %s\n' "$*" >&2; exit 1; }

t=$(mktemp -d /tmp/test-configure.XXXXXX)
trap 'rm -rf "$t"' EXIT

# Every pkg-config file of the system but xencall.pc, and iomap-emu.pc.
mkdir "$t/pc"
for d in $(pkg-config --variable pc_path pkg-config | tr : ' '); do
    [ -d "$d" ] || continue
    for f in "$d"/*.pc; do
        [ -e "$f" ] && [ ! -e "$t/pc/${f##*/}" ] && ln -s "$f" "$t/pc/"
    done
done
rm -f "$t/pc/xencall.pc"
ln -sf "$pcdir/iomap-emu.pc" "$t/pc/"
PKG_CONFIG_LIBDIR=$t/pc
PKG_CONFIG_PATH=
export PKG_CONFIG_LIBDIR PKG_CONFIG_PATH
pkg-config --exists iomap-emu || die "iomap-emu.pc is not found"
! pkg-config --exists xencall || die "xencall.pc is still found"

conf() {
    mkdir "$t/$1" && cd "$t/$1" && shift &&
    "$src/configure" --target-list=x86_64-softmmu --enable-xen \
        --disable-docs --disable-tools --disable-guest-agent \
        --with-git-submodules=ignore "$@"
}

(conf auto) >"$t/auto.log" 2>&1 ||
    { tail -n 20 "$t/auto.log"; die "configure failed with iomap=auto"; }
grep -q 'iomapd support *: NO' "$t/auto.log" ||
    { grep -i iomap "$t/auto.log"; die "iomap=auto did not turn iomapd support off"; }
if (conf enabled --enable-iomap) >"$t/enabled.log" 2>&1; then
    die "configure --enable-iomap succeeded without xencall"
fi
grep -q 'xencall' "$t/enabled.log" ||
    { tail -n 20 "$t/enabled.log"; die "configure --enable-iomap failed, but not for xencall"; }
echo "test-configure: PASS (auto: iomapd support NO; --enable-iomap: refused)"
