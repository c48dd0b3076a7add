#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Build the dom0 initramfs of the end-to-end test: busybox (static), the
# dom0 kernel's Xen modules (xen-privcmd, xenfs, xen-evtchn, xen-gntdev
# and what they depend on), the given programs with the shared libraries
# they need (copied from the host, with the dynamic loader), and init.
#
# usage: mkinitramfs.sh OUT.cpio KVER INIT PROGRAM...
set -eu

out=$1 kver=$2 init=$3
shift 3

die() { printf 'mkinitramfs: %s\n' "$*" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

mkdir -p "$root/bin" "$root/sbin" "$root/lib/modules" "$root/proc" \
    "$root/sys" "$root/dev" "$root/tmp" "$root/run" "$root/etc" "$root/usr"
ln -s ../bin "$root/usr/bin"
ln -s ../sbin "$root/usr/sbin"

bb=$(command -v busybox) || die "busybox is not installed"
! ldd "$bb" >/dev/null 2>&1 ||
    die "$bb is not static (install busybox-static)"
cp "$bb" "$root/bin/busybox"
for a in $("$bb" --list); do
    [ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
done

# Modules, dependencies first (load order = file order in modules.list).
moddir=/lib/modules/$kver
[ -d "$moddir" ] || die "no $moddir (install linux-image-amd64)"
: >"$root/lib/modules/modules.list"
add_mod() {
    local f b d
    f=$(modinfo -k "$kver" -F filename "$1") || die "no module $1"
    case "$f" in (builtin*|'') return 0 ;; esac
    for d in $(modinfo -k "$kver" -F depends "$1" | tr ',' ' '); do
        add_mod "$d"
    done
    b=$(basename "$f")
    grep -qx "$b" "$root/lib/modules/modules.list" && return 0
    case "$f" in
    (*.ko.xz) xz -dc "$f" >"$root/lib/modules/${b%.xz}"; b=${b%.xz} ;;
    (*.ko.zst) zstd -qdc "$f" >"$root/lib/modules/${b%.zst}"; b=${b%.zst} ;;
    (*) cp "$f" "$root/lib/modules/$b" ;;
    esac
    echo "$b" >>"$root/lib/modules/modules.list"
}
for m in xen-privcmd xenfs xen-evtchn xen-gntdev; do
    add_mod "$m"
done

# Programs and their shared libraries.
copy_lib() {
    [ -e "$root$1" ] && return 0
    mkdir -p "$root$(dirname "$1")"
    cp -L "$1" "$root$1"
}
for p in "$@"; do
    cp "$p" "$root/bin/$(basename "$p")"
    ldd "$p" 2>/dev/null | while read -r a b c d; do
        case "$a" in
        (/*) copy_lib "$a" ;;
        (*) case "$c" in (/*) copy_lib "$c" ;; esac ;;
        esac
    done
done

cp "$init" "$root/init"
chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) >"$out"
