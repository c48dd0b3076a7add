#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Build Debian 12's Xen 4.17 hypervisor with the iomap shim patch series.
#
# Usage (as root on a fresh Debian 12, from anywhere in a clone):
#   shim/xen/build-xen.sh
#
# Environment:
#   XEN_SRC_CACHE  where the Debian source package is downloaded and
#                  unpacked once (default: <repo>/build/xen-src)
#   XEN_SRC_DIR    use this already unpacked source tree instead of
#                  downloading (it is never modified)
#   XEN_BUILD_DIR  the patched copy that is built (default:
#                  <repo>/build/xen-build); recreated on every run
#   JOBS           make -j value (default 2)
#   NO_APT=1       do not install build dependencies
#   XEN_TEST_HOOKS=0  leave out CONFIG_IOMAP_TEST_HOOKS (the fault
#                  injection boot options check-xen needs; inert unless
#                  given on Xen's command line): for a production build
#
# Every run builds a fresh copy of the pristine source, so a second run
# reuses the download and the unpacked tree but never patches twice.
# The build fails on any compiler warning: Xen's own xen/Makefile adds
# -Werror (checked below), and the log is scanned for "warning:" too.

set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
patches="$here/patches"
header="$repo/shim/public/iomap.h"

XEN_SRC_CACHE=${XEN_SRC_CACHE:-$repo/build/xen-src}
XEN_BUILD_DIR=${XEN_BUILD_DIR:-$repo/build/xen-build}
JOBS=${JOBS:-2}

say() { printf '==> %s\n' "$*"; }
die() { printf 'build-xen: %s\n' "$*" >&2; exit 1; }

start=$(date +%s)

[ -f "$header" ] || die "missing $header"
[ -f "$patches/series" ] || die "missing $patches/series"

# 1. Build dependencies: the minimal set for "make -C xen" (the
#    hypervisor only, not the tools): a C toolchain, flex and bison for
#    Kconfig, python3 for the compat header generators; dpkg-dev and
#    xz-utils to fetch and unpack the source package.
if [ "${NO_APT:-0}" != 1 ]; then
    "$repo/scripts/need-packages" build-essential bison flex python3 dpkg-dev \
        xz-utils || die "build dependencies missing"
fi

# 2. The pristine source.
if [ -n "${XEN_SRC_DIR:-}" ]; then
    src=$XEN_SRC_DIR
    [ -f "$src/xen/Makefile" ] || die "XEN_SRC_DIR=$src is not a Xen tree"
else
    mkdir -p "$XEN_SRC_CACHE"
    src=$(find "$XEN_SRC_CACHE" -maxdepth 1 -type d -name 'xen-4.17*' |
          sort | tail -n 1)
    if [ -z "$src" ]; then
        if ! ls "$XEN_SRC_CACHE"/xen_4.17*.dsc >/dev/null 2>&1; then
            # deb-src must be enabled; bookworm-security's xen may 404,
            # so ask for the bookworm version explicitly.
            if ! grep -rqs 'deb-src' /etc/apt/sources.list \
                    /etc/apt/sources.list.d/; then
                [ "$(id -u)" = 0 ] || die "deb-src is not enabled"
                say "enabling deb-src for bookworm"
                cat >/etc/apt/sources.list.d/iomapd-deb-src.sources <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
                apt-get update -q
            fi
            say "downloading xen/bookworm source into $XEN_SRC_CACHE"
            (cd "$XEN_SRC_CACHE" &&
             apt-get source --download-only xen/bookworm)
        fi
        dsc=$(ls "$XEN_SRC_CACHE"/xen_4.17*.dsc | sort | tail -n 1)
        say "unpacking $(basename "$dsc")"
        # Unpacking applies Debian's patches: the series is made against
        # that tree.
        (cd "$XEN_SRC_CACHE" && dpkg-source -x "$(basename "$dsc")" >/dev/null)
        src=$(find "$XEN_SRC_CACHE" -maxdepth 1 -type d -name 'xen-4.17*' |
              sort | tail -n 1)
        [ -n "$src" ] || die "unpacking failed"
    fi
fi
say "source: $src"

# 3. A fresh copy, patched.
rm -rf "$XEN_BUILD_DIR"
mkdir -p "$(dirname "$XEN_BUILD_DIR")"
cp -a "$src" "$XEN_BUILD_DIR"
rm -f "$XEN_BUILD_DIR/xen/.config"
while read -r p; do
    case "$p" in ''|'#'*) continue ;; esac
    say "applying $p"
    patch -d "$XEN_BUILD_DIR" -p1 -s --fuzz=0 --no-backup-if-mismatch \
        <"$patches/$p" || die "$p does not apply"
done <"$patches/series"

# 4. One source of truth for the ABI header.
cmp -s "$header" "$XEN_BUILD_DIR/xen/include/public/iomap.h" ||
    die "xen/include/public/iomap.h in the series differs from shim/public/iomap.h"
say "public/iomap.h is identical to shim/public/iomap.h"

# 5. Build, warnings fatal.
grep -q -- '-Werror' "$XEN_BUILD_DIR/xen/Makefile" ||
    die "xen/Makefile no longer builds with -Werror"
log="$XEN_BUILD_DIR/build.log"
say "make -C xen defconfig && make -C xen -j$JOBS (log: $log)"
bstart=$(date +%s)
make -C "$XEN_BUILD_DIR/xen" defconfig >"$log" 2>&1 ||
    { tail -n 30 "$log"; die "defconfig failed"; }
# CONFIG_IOMAP is off by default; the test hooks (fault injection boot
# options, inert unless given) are what check-xen needs.
sed -i -e '/^# CONFIG_IOMAP is not set/d' -e '/^CONFIG_IOMAP=/d' \
    -e '/^# CONFIG_IOMAP_TEST_HOOKS is not set/d' \
    -e '/^CONFIG_IOMAP_TEST_HOOKS=/d' "$XEN_BUILD_DIR/xen/.config"
echo 'CONFIG_IOMAP=y' >>"$XEN_BUILD_DIR/xen/.config"
if [ "${XEN_TEST_HOOKS:-1}" = 1 ]; then
    echo 'CONFIG_IOMAP_TEST_HOOKS=y' >>"$XEN_BUILD_DIR/xen/.config"
fi
make -C "$XEN_BUILD_DIR/xen" olddefconfig >>"$log" 2>&1 ||
    { tail -n 30 "$log"; die "olddefconfig failed"; }
grep -q '^CONFIG_IOMAP=y' "$XEN_BUILD_DIR/xen/.config" ||
    die "CONFIG_IOMAP is not enabled"
if [ "${XEN_TEST_HOOKS:-1}" = 1 ]; then
    grep -q '^CONFIG_IOMAP_TEST_HOOKS=y' "$XEN_BUILD_DIR/xen/.config" ||
        die "CONFIG_IOMAP_TEST_HOOKS is not enabled"
fi
make -C "$XEN_BUILD_DIR/xen" -j"$JOBS" >>"$log" 2>&1 ||
    { grep -E -A5 'error|warning:' "$log" | head -n 60; die "build failed"; }
if grep -E 'warning:' "$log"; then
    die "the build produced warnings"
fi
[ -f "$XEN_BUILD_DIR/xen/common/iomap.o" ] || die "iomap.o was not built"
end=$(date +%s)

ls -l "$XEN_BUILD_DIR/xen/xen.gz" "$XEN_BUILD_DIR/xen/xen-syms"
say "hypervisor build: $((end - bstart))s, total: $((end - start))s"
