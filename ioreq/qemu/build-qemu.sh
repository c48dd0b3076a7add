#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Build Debian 12's QEMU 7.2 with the iomapd patch series (ioreq/qemu/).
#
# Usage (as root on a fresh Debian 12, from a configured and built clone;
# `make qemu` does both steps):
#   make install-emu-stage        # libiomap-emu into build/iomap-stage
#   ioreq/qemu/build-qemu.sh
#
# Environment:
#   QEMU_SRC_CACHE  where the Debian source package is downloaded and
#                   unpacked once (default: <repo>/build/qemu-src)
#   QEMU_SRC_DIR    use this already unpacked source tree instead (never
#                   modified)
#   QEMU_BUILD_DIR  the patched copy that is built (default:
#                   <repo>/build/qemu-build); recreated on every run
#   IOMAP_STAGE     a DESTDIR into which libiomap-emu, <iomap/emu.h> and
#                   iomap-emu.pc were installed (default:
#                   <repo>/build/iomap-stage); found with pkg-config
#   JOBS            ninja -j value (default 2)
#   NO_APT=1        do not install build dependencies
#
# QEMU is configured with a minimal feature set: x86_64-softmmu only,
# --without-default-features, then --enable-xen --enable-iomap, and
# --enable-werror (QEMU's own warning flags, fatal).  Every run builds a
# fresh copy of the pristine source, so the series is never applied twice.
# After the build, test/run-test-mapcache.sh runs the patched mapcache and
# xen-iomap.c against fakes, with the flags QEMU compiled them with, and
# test/run-test-configure.sh configures the patched source without
# libxencall (iomap=auto must turn iomapd support off, not fail).

set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
patches="$here/patches"

QEMU_SRC_CACHE=${QEMU_SRC_CACHE:-$repo/build/qemu-src}
QEMU_BUILD_DIR=${QEMU_BUILD_DIR:-$repo/build/qemu-build}
IOMAP_STAGE=${IOMAP_STAGE:-$repo/build/iomap-stage}
JOBS=${JOBS:-2}

say() { printf '==> %s\n' "$*"; }
die() { printf 'build-qemu: %s\n' "$*" >&2; exit 1; }

start=$(date +%s)

[ -f "$patches/series" ] || die "missing $patches/series"

# 1. Build dependencies: what a --without-default-features build of
#    qemu-system-x86_64 with Xen needs (glib, pixman, zlib, fdt, Xen's
#    libraries), meson and ninja, and dpkg-dev to unpack the source.
if [ "${NO_APT:-0}" != 1 ]; then
    "$repo/scripts/need-packages" build-essential pkg-config python3 \
        meson ninja-build libglib2.0-dev libpixman-1-dev zlib1g-dev \
        libfdt-dev libxen-dev dpkg-dev xz-utils ||
        die "build dependencies missing"
fi

# 2. The pristine source.
if [ -n "${QEMU_SRC_DIR:-}" ]; then
    src=$QEMU_SRC_DIR
    [ -f "$src/hw/i386/xen/xen-mapcache.c" ] ||
        die "QEMU_SRC_DIR=$src is not a QEMU 7.2 tree"
else
    mkdir -p "$QEMU_SRC_CACHE"
    src=$(find "$QEMU_SRC_CACHE" -maxdepth 1 -type d -name 'qemu-7.2*' |
          sort | tail -n 1)
    if [ -z "$src" ]; then
        if ! ls "$QEMU_SRC_CACHE"/qemu_7.2*.dsc >/dev/null 2>&1; then
            if ! grep -rqs 'deb-src' /etc/apt/sources.list \
                    /etc/apt/sources.list.d/; then
                [ "$(id -u)" = 0 ] || die "deb-src is not enabled"
                say "enabling deb-src for bookworm"
                cat >/etc/apt/sources.list.d/iomapd-deb-src.sources <<EOS
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
                apt-get update -q
            fi
            say "downloading qemu/bookworm source into $QEMU_SRC_CACHE"
            (cd "$QEMU_SRC_CACHE" &&
             apt-get source --download-only qemu/bookworm)
        fi
        dsc=$(ls "$QEMU_SRC_CACHE"/qemu_7.2*.dsc | sort | tail -n 1)
        say "unpacking $(basename "$dsc")"
        # Unpacking applies Debian's patches: the series is made against
        # that tree.
        (cd "$QEMU_SRC_CACHE" && dpkg-source -x "$(basename "$dsc")" >/dev/null)
        src=$(find "$QEMU_SRC_CACHE" -maxdepth 1 -type d -name 'qemu-7.2*' |
              sort | tail -n 1)
        [ -n "$src" ] || die "unpacking failed"
    fi
fi
say "source: $src"

# 3. libiomap-emu, as QEMU's configure will see it.
#    The staged iomap-emu.pc names the install paths: point them into the
#    stage (PKG_CONFIG_SYSROOT_DIR would move glib's paths too).
pc="$(find "$IOMAP_STAGE" -name iomap-emu.pc 2>/dev/null | head -n 1)"
[ -n "$pc" ] || die "no iomap-emu.pc under $IOMAP_STAGE (run make install-emu-stage)"
pcdir="$(dirname "$QEMU_BUILD_DIR")/qemu-pkgconfig"
rm -rf "$pcdir" && mkdir -p "$pcdir"
sed -E "s|^(prefix\|exec_prefix\|libdir\|includedir)=/|\1=$IOMAP_STAGE/|" "$pc" \
    >"$pcdir/iomap-emu.pc"
PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PKG_CONFIG_PATH
pkg-config --exists iomap-emu || die "pkg-config does not find iomap-emu"
libdir=$(pkg-config --variable=libdir iomap-emu)
[ -e "$libdir/libiomap-emu.so" ] || die "no libiomap-emu.so in $libdir"
say "iomap-emu: $(pkg-config --cflags --libs iomap-emu)"

# 4. A fresh copy, patched (Debian's packaging is not needed to build).
rm -rf "$QEMU_BUILD_DIR"
mkdir -p "$QEMU_BUILD_DIR"
(cd "$src" && tar --exclude=./debian -cf - .) | (cd "$QEMU_BUILD_DIR" && tar xf -)
while read -r p; do
    case "$p" in ''|'#'*) continue ;; esac
    say "applying $p"
    patch -d "$QEMU_BUILD_DIR" -p1 -s --fuzz=0 --no-backup-if-mismatch \
        <"$patches/$p" || die "$p does not apply"
done <"$patches/series"

# 5. Configure: minimal, warnings fatal.
log="$QEMU_BUILD_DIR/build.log"
say "configure (log: $log)"
cstart=$(date +%s)
(cd "$QEMU_BUILD_DIR" && mkdir build && cd build &&
 ../configure --target-list=x86_64-softmmu --without-default-features \
     --enable-xen --enable-iomap --enable-werror --disable-docs \
     --disable-tools --disable-guest-agent --with-git-submodules=ignore \
     --enable-trace-backends=log) >"$log" 2>&1 ||
    { tail -n 40 "$log"; die "configure failed"; }
grep -q 'iomapd support *: YES' "$log" ||
    die "configure did not enable iomap support"
grep -q -- '-Werror' "$QEMU_BUILD_DIR/build/build.ninja" ||
    die "the build does not use -Werror"

# 6. Build.
b="$QEMU_BUILD_DIR/build"
say "ninja -j$JOBS qemu-system-x86_64"
bstart=$(date +%s)
ninja -C "$b" -j"$JOBS" qemu-system-x86_64 >>"$log" 2>&1 ||
    { grep -E -B2 -A8 'error|warning:' "$log" | head -n 80; die "build failed"; }
if grep -E 'warning:' "$log"; then
    die "the build produced warnings"
fi
end=$(date +%s)

[ -x "$b/qemu-system-x86_64" ] || die "qemu-system-x86_64 was not built"
LD_LIBRARY_PATH="$libdir" "$b/qemu-system-x86_64" --version | head -n 1 ||
    die "qemu-system-x86_64 does not run"
# It really links libiomap-emu (the option could have been silently off).
readelf -d "$b/qemu-system-x86_64" | grep -q 'NEEDED.*\[libiomap-emu\.so\.1\]' ||
    die "qemu-system-x86_64 does not link libiomap-emu.so.1"
for f in xen-mapcache xen-hvm xen-iomap; do
    [ -f "$b/libqemu-x86_64-softmmu.fa.p/hw_i386_xen_$f.c.o" ] ||
        die "$f.c was not compiled"
done

# 7. The mapcache's range invalidation and xen-iomap.c, on their own.
say "test-mapcache"
sh "$here/test/run-test-mapcache.sh" "$QEMU_BUILD_DIR" "$b" ||
    die "test-mapcache failed"
# 8. --enable-iomap=auto without libxencall: iomapd support off, no error.
say "test-configure"
sh "$here/test/run-test-configure.sh" "$QEMU_BUILD_DIR" "$pcdir" ||
    die "test-configure failed"
say "configure: $((bstart - cstart))s, build: $((end - bstart))s, total: $((end - start))s"
