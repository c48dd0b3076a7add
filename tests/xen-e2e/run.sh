#!/bin/sh
# SPDX-License-Identifier: MIT
#
# make check-xen: iomapd end to end on the patched Xen 4.17, booted under
# QEMU (software emulation is enough).
#
#  1. builds the patched hypervisor (shim/xen/build-xen.sh; reused when the
#     series has not changed since), iomapd with its Xen backend and the
#     test program tests/xen-e2e/xen-e2e.c;
#  2. builds a dom0 initramfs (busybox, the dom0 kernel's Xen modules,
#     iomapd, xen-e2e, tests/xen-e2e/init);
#  3. boots Xen with Debian's kernel as PV dom0 under qemu-system-x86_64
#     (q35, emulated VT-d with queued invalidation and interrupt
#     remapping; the CPU model has SVM so that Xen can create the HVM test
#     guest), bounded by a timeout;
#  4. reads the verdict from the serial console log, kept in
#     $E2E_DIR/serial.log (printed when the test fails).
#
# Missing packages are installed with apt-get (as root).  Environment:
#   E2E_DIR       work directory (default <builddir>/build/xen-e2e)
#   E2E_TIMEOUT   seconds for the QEMU run (default 480)
#   E2E_ARGS      arguments after the socket for xen-e2e: NPAGES NMAP
#   XEN_IMAGE     use this xen ELF (multiboot, 32-bit) instead of building
#   IOMAPD        use this iomapd binary instead of building it
#   NO_APT=1      install nothing
set -eu

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/../.." && pwd)
builddir=${BUILDDIR:-$srcdir}
builddir=$(cd "$builddir" && pwd)
E2E_DIR=${E2E_DIR:-$builddir/build/xen-e2e}
E2E_TIMEOUT=${E2E_TIMEOUT:-480}
XEN_BUILD_DIR=${XEN_BUILD_DIR:-$srcdir/build/xen-build}
export XEN_BUILD_DIR

say() { printf '==> check-xen: %s\n' "$*"; }
die() { printf 'check-xen: FAIL: %s\n' "$*" >&2; exit 1; }
t_start=$(date +%s)
lap() { t_now=$(date +%s); printf '==> check-xen: %s took %ss\n' "$1" $((t_now - ${t_lap:-$t_start})); t_lap=$t_now; }

mkdir -p "$E2E_DIR"

# 0. Packages.
if [ "${NO_APT:-0}" != 1 ]; then
    "$srcdir/scripts/need-packages" qemu-system-x86 linux-image-amd64 \
        busybox-static cpio kmod libxen-dev gcc make || die "packages missing"
    lap packages
fi

# 1a. The hypervisor: rebuilt only when the series or the header changed.
if [ -n "${XEN_IMAGE:-}" ]; then
    xen=$XEN_IMAGE
else
    stamp="$XEN_BUILD_DIR/.iomap-series.sha256"
    sum=$(cat "$srcdir/shim/xen/patches/series" "$srcdir"/shim/xen/patches/*.patch \
          "$srcdir/shim/public/iomap.h" | sha256sum | cut -d' ' -f1)
    img=$XEN_BUILD_DIR/xen/xen
    if [ -f "$img" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
        say "reusing $img (series unchanged)"
    elif [ -f "$img" ] && [ ! -f "$stamp" ] &&
         [ -z "$(find "$srcdir/shim/xen/patches" "$srcdir/shim/public/iomap.h" \
                      -newer "$img")" ]; then
        # Built by shim/xen/build-xen.sh (as CI does just before).
        say "reusing $img (newer than the series)"
        echo "$sum" >"$stamp"
    else
        say "building the patched hypervisor (shim/xen/build-xen.sh)"
        "$srcdir/shim/xen/build-xen.sh"
        echo "$sum" >"$stamp"
    fi
    xen=$XEN_BUILD_DIR/xen/xen
    lap "hypervisor"
fi
[ -f "$xen" ] || die "no hypervisor image $xen"

# 1b. iomapd with the Xen backend, and the test program.
if [ -n "${IOMAPD:-}" ]; then
    iomapd=$IOMAPD
else
    make -C "$builddir" -j2 iomapd >"$E2E_DIR/make.log" 2>&1 ||
        { tail -n 30 "$E2E_DIR/make.log"; die "building iomapd failed"; }
    iomapd=$builddir/iomapd
fi
cp "$iomapd" "$E2E_DIR/iomapd"
iomapd=$E2E_DIR/iomapd
ldd "$iomapd" | grep -q libxenctrl ||
    die "iomapd was built without the Xen backend (configure --with-xen, libxen-dev)"
${CC:-cc} -O2 -g -Wall -Wextra -Werror -I"$builddir" -I"$srcdir" \
    -o "$E2E_DIR/xen-e2e" "$here/xen-e2e.c" "$srcdir/ioreq/client.c" \
    "$srcdir/ioreq/channel.c" -lxenctrl -lxencall -lxendevicemodel ||
    die "building xen-e2e failed"
lap "iomapd and xen-e2e"

# 2. dom0: Debian's kernel and an initramfs.
kver=$(ls /lib/modules | sort -V | tail -n 1)
vmlinuz=/boot/vmlinuz-$kver
[ -f "$vmlinuz" ] || die "no $vmlinuz (linux-image-amd64)"
"$here/mkinitramfs.sh" "$E2E_DIR/initrd.cpio" "$kver" "$here/init" \
    "$iomapd" "$E2E_DIR/xen-e2e" "$here/iomapd-ctl"
if [ -n "${E2E_ARGS:-}" ]; then
    # init reads E2E_ARGS from the kernel command line (init's environment).
    dom0_extra="E2E_ARGS=$(echo "$E2E_ARGS" | tr ' ' ':')"
else
    dom0_extra=""
fi
lap "initramfs"

# 3. Boot.  QEMU's multiboot loader takes the 32-bit ELF "xen" and the
#    modules as "-initrd 'file args,file'".  -no-reboot: dom0's reboot
#    at the end of init ends the run.
log=$E2E_DIR/serial.log
rm -f "$log"
say "booting Xen under QEMU (timeout ${E2E_TIMEOUT}s, log $log)"
set +e
timeout --foreground -k 10 "$E2E_TIMEOUT" qemu-system-x86_64 \
    -machine q35,kernel-irqchip=split -accel tcg \
    -cpu Haswell-noTSX,+svm,+npt \
    -device intel-iommu,intremap=on,caching-mode=on,device-iotlb=on \
    -m 2048 -smp 2 -display none -no-reboot -monitor none \
    -serial "file:$log" \
    -kernel "$xen" \
    -append "console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M iommu=1,verbose dom0-iommu=strict loglvl=all guest_loglvl=all" \
    -initrd "$vmlinuz console=hvc0 quiet $dom0_extra,$E2E_DIR/initrd.cpio" \
    >"$E2E_DIR/qemu.log" 2>&1
qrc=$?
set -e
lap "QEMU run"

# 4. The verdict.
if [ $qrc = 124 ] || [ $qrc = 137 ]; then
    why="QEMU run timed out after ${E2E_TIMEOUT}s"
elif grep -q '^E2E-RESULT PASS' "$log" 2>/dev/null; then
    grep -E '^(E2E|PASS)' "$log" | grep -v '^E2E iomapd' || true
    grep -E '^PASS xen-e2e' "$log"
    say "PASS in $(( $(date +%s) - t_start ))s"
    exit 0
else
    why="no E2E-RESULT PASS (qemu exit status $qrc)"
fi
echo "---- $log ----"
cat "$log" 2>/dev/null || true
echo "---- qemu ----"
cat "$E2E_DIR/qemu.log"
die "$why"
