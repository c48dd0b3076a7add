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
#     a fifth boot (qemu-mapcache) has its own initramfs with the patched
#     QEMU (`make qemu`) and Debian's xenstored (from xen-utils-4.17,
#     unpacked with apt-get download, not installed);
#  4. reads the verdict from the serial console log, kept in
#     $E2E_DIR/serial.log (printed when the test fails).
#
# Missing packages are installed with apt-get (as root).  Environment:
#   E2E_DIR       work directory (default <builddir>/build/xen-e2e)
#   E2E_TIMEOUT   seconds for each QEMU run (default 240)
#   E2E_DOM0_TIMEOUT  seconds for dom0 to come up in a run (default 150);
#                 a run whose dom0 never came up is booted once more
#   E2E_ARGS      arguments after the socket for xen-e2e: NPAGES NMAP
#   XEN_IMAGE     use this xen ELF (multiboot, 32-bit) instead of building
#   QEMU_DM       the patched QEMU for qemu-mapcache (default
#                 <builddir>/build/qemu-build/build/qemu-system-x86_64, from
#                 `make qemu`); without it that scenario is not run
#   IOMAPD        use this iomapd binary instead of building it
#   E2E_BOOTS     which boots to run (default "1 2 3 4 5"; for debugging:
#                 the scenarios of the others are reported not run)
#   NO_APT=1      install nothing
set -eu

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/../.." && pwd)
builddir=${BUILDDIR:-$srcdir}
builddir=$(cd "$builddir" && pwd)
E2E_DIR=${E2E_DIR:-$builddir/build/xen-e2e}
E2E_TIMEOUT=${E2E_TIMEOUT:-240}
E2E_DOM0_TIMEOUT=${E2E_DOM0_TIMEOUT:-150}
XEN_BUILD_DIR=${XEN_BUILD_DIR:-$srcdir/build/xen-build}
export XEN_BUILD_DIR

say() { printf '==> check-xen: %s\n' "$*"; }
die() { printf 'check-xen: FAIL: %s\n' "$*" >&2; exit 1; }
t_start=$(date +%s)
lap() { t_now=$(date +%s); printf '==> check-xen: %s took %ss\n' "$1" $((t_now - ${t_lap:-$t_start})); t_lap=$t_now; }

mkdir -p "$E2E_DIR"
rm -f "$E2E_DIR/boot-retries"

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
    "$srcdir/ioreq/channel.c" -pthread -lxenctrl -lxencall -lxendevicemodel -lxenforeignmemory ||
    die "building xen-e2e failed"
lap "iomapd and xen-e2e"

# 1c. qemu-mapcache (boot 5): the patched QEMU as an HVM guest's device
#     model.  QEMU's Xen machine needs xenstore: xenstored comes from
#     Debian's xen-utils-4.17, unpacked (not installed: the package would
#     bring the whole toolstack and its services along).
QEMU_DM=${QEMU_DM:-$builddir/build/qemu-build/build/qemu-system-x86_64}
qemu_why=""
if [ ! -x "$QEMU_DM" ]; then
    qemu_why="no patched QEMU at $QEMU_DM (make qemu)"
elif ! ldd "$QEMU_DM" | grep -q libiomap-emu; then
    qemu_why="$QEMU_DM does not link libiomap-emu (configure --enable-iomap)"
else
    xs=$E2E_DIR/xen-utils/usr/lib/xen-4.17/bin/xenstored
    if [ ! -x "$xs" ]; then
        rm -rf "$E2E_DIR/xen-utils" && mkdir -p "$E2E_DIR/xen-utils"
        (cd "$E2E_DIR/xen-utils" && apt-get download -q xen-utils-4.17 \
             >download.log 2>&1 &&
         dpkg-deb -x xen-utils-4.17_*.deb .) ||
            qemu_why="cannot get xenstored (apt-get download xen-utils-4.17)"
    fi
    ${CC:-cc} -O2 -g -Wall -Wextra -Werror -I"$srcdir" -o "$E2E_DIR/qemu-mapcache" \
        "$here/qemu-mapcache.c" -lxenctrl -lxenforeignmemory -lxenstore ||
        die "building qemu-mapcache failed"
fi
lap "qemu-mapcache"

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
if [ -z "$qemu_why" ]; then
    # A separate initramfs: QEMU and its libraries would slow every boot.
    strip -o "$E2E_DIR/qemu-system-x86_64" "$QEMU_DM"
    "$here/mkinitramfs.sh" "$E2E_DIR/initrd-qemu.cpio" "$kver" "$here/init" \
        "$iomapd" "$here/iomapd-ctl" "$E2E_DIR/qemu-mapcache" \
        "$E2E_DIR/qemu-system-x86_64" "$xs"
fi
lap "initramfs"

# 3. Boot.  QEMU's multiboot loader takes the 32-bit ELF "xen" and the
#    modules as "-initrd 'file args,file'".  -no-reboot: dom0's reboot
#    at the end of init ends the run.  boot LOG XEN_ARGS DOM0_ARGS [QEMU_ARGS]
boot() {
    rm -f "$1"
    say "booting Xen under QEMU (timeout ${E2E_TIMEOUT}s, log $1)"
    set +e
    # shellcheck disable=SC2086
    timeout -k 10 "$E2E_TIMEOUT" qemu-system-x86_64 \
        -machine q35,kernel-irqchip=split -accel tcg \
        -cpu Haswell-noTSX,+svm,+npt \
        -device intel-iommu,intremap=on,caching-mode=on,device-iotlb=on \
        ${4:-} \
        -m 2048 -smp 2 -display none -no-reboot \
        -monitor "${MONITOR:-none}" \
        -serial "file:$1" \
        -kernel "$xen" \
        -append "console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M iommu=1,verbose $2 loglvl=all guest_loglvl=all" \
        -initrd "$vmlinuz console=hvc0 quiet $3,${INITRD:-$E2E_DIR/initrd.cpio}" \
        >"$E2E_DIR/qemu.log" 2>&1 &
    qpid=$!
    # dom0 is up within 10-50 s; a boot that hangs before (seen about once
    # in 20 runs on a loaded 2-core machine: the kernel's last words are
    # Xen's "about to get started") is stopped after E2E_DOM0_TIMEOUT.
    (
        i=0
        while [ $i -lt "$E2E_DOM0_TIMEOUT" ]; do
            grep -q '^E2E-STAGE dom0 up' "$1" 2>/dev/null && exit 0
            kill -0 $qpid 2>/dev/null || exit 0
            sleep 1
            i=$((i + 1))
        done
        echo "check-xen: dom0 not up after ${E2E_DOM0_TIMEOUT}s: QEMU stopped" \
            >>"$E2E_DIR/qemu.log"
        kill $qpid 2>/dev/null
    ) &
    dom0watch=$!
    wait $qpid
    qrc=$?
    kill $dom0watch 2>/dev/null
    wait $dom0watch 2>/dev/null
    set -e
    # A boot whose dom0 never came up ran no test: boot once more (the
    # hung boot's log is kept as LOG.hung; build/xen-e2e/boot-retries).
    if ! grep -q '^E2E-STAGE dom0 up' "$1" 2>/dev/null &&
       [ "${boot_retry:-0}" = 0 ]; then
        say "dom0 never came up ($1): booting once more"
        cp "$1" "$1.hung" 2>/dev/null || true
        echo "$1" >>"$E2E_DIR/boot-retries"
        boot_retry=1
        boot "$@"
        boot_retry=0
    fi
}
verdict() {
    # QEMU's reset at the end sometimes hangs after dom0's reboot: the
    # verdict is the log's, a time-out only matters without one.
    if grep -q '^E2E-RESULT PASS' "$1" 2>/dev/null; then
        why=""
    elif [ $qrc = 124 ] || [ $qrc = 137 ]; then
        why="QEMU run timed out after ${E2E_TIMEOUT}s ($1)"
    else
        why="no E2E-RESULT PASS in $1 (qemu exit status $qrc)"
    fi
}

want() { case " ${E2E_BOOTS:-1 2 3 4 5} " in (*" $1 "*) return 0 ;; esac; return 1; }
why1="" why2="" why3="" why4=""
rm -f "$E2E_DIR"/serial*.log

# Boot 1: strict dom0, the scenarios.  An ATS-capable device (virtio-rng
# behind a PCIe root port, ats=on) for dom0, Xen with ats=1, and QEMU
# tracing the invalidation descriptors it processes (the ats scenario).
# Tracing starts only once iomapd runs (through QEMU's monitor): during
# dom0's boot every page-type change of a strict dom0 flushes the IOTLB
# and the device-TLB, and tracing all of that can slow the boot past the
# time-out.
log=$E2E_DIR/serial.log
trace=$E2E_DIR/qemu-vtd-trace.log
mon=$E2E_DIR/monitor.sock
rm -f "$trace" "$mon"
if want 1; then
(
    i=0
    while [ $i -lt "$E2E_TIMEOUT" ]; do
        if grep -q '^E2E-STAGE iomapd' "$log" 2>/dev/null && [ -S "$mon" ]; then
            python3 - "$mon" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(2)
for cmd in (b"trace-event vtd_inv_desc on\n",
            b"trace-event vtd_inv_desc_wait_sw on\n"):
    s.sendall(cmd)
    time.sleep(0.2)
try:
    s.recv(4096)
except OSError:
    pass
PY
            exit 0
        fi
        sleep 1
        i=$((i + 1))
    done
) &
tracer=$!
MONITOR="unix:$mon,server=on,wait=off" \
boot "$log" "dom0-iommu=strict ats=1" "$dom0_extra" \
    "-device pcie-root-port,id=rp1,bus=pcie.0,chassis=1 -device virtio-rng-pci,bus=rp1,ats=on,disable-legacy=on -D $trace"
kill $tracer 2>/dev/null || true
verdict "$log"
why1=$why
lap "QEMU run (strict dom0)"
fi

# Boot 2: non-strict dom0: the op must be refused (strict-dom0).
log2=$E2E_DIR/serial-nonstrict.log
if want 2; then
    boot "$log2" "" "E2E_MODE=nonstrict"
    verdict "$log2"
    why2=$why
    lap "QEMU run (non-strict dom0)"
fi

# Boot 3: ite.  QEMU's VT-d never times out, so Xen injects an
# Invalidation Time-out Error into the first asynchronous flush
# (iomap_inject_ite=1); the ATS device is there for the time-out path.
log3=$E2E_DIR/serial-ite.log
if want 3; then
    boot "$log3" "dom0-iommu=strict ats=1 iomap_inject_ite=1" "E2E_MODE=ite" \
        "-device pcie-root-port,id=rp1,bus=pcie.0,chassis=1 -device virtio-rng-pci,bus=rp1,ats=on,disable-legacy=on"
    verdict "$log3"
    why3=$why
    lap "QEMU run (injected ITE)"
fi

# Boot 4: async-flush.  QEMU's VT-d completes invalidations at once, so
# Xen's test hook keeps each asynchronous group outstanding for 1 s
# (iomap_async_delay=1000): the one-group cap, the coalescing and the
# completion order run.  The per-emulator cap on mapping records is 64
# (iomap_max_maps=64; the default is 2^20) for deferred-cap, and dom0's
# foreign mapping records are 16 (iomap_cpu_max=16) for cpu-untracked.
log4=$E2E_DIR/serial-async.log
if want 4; then
    boot "$log4" "dom0-iommu=strict iomap_async_delay=1000 iomap_max_maps=64 iomap_cpu_max=16" \
        "E2E_MODE=async"
    verdict "$log4"
    why4=$why
    lap "QEMU run (async flush delay)"
fi

# Boot 5: qemu-mapcache.  The patched QEMU in dom0 is the device model of
# a running HVM guest, first without iomapd (stock: Xen broadcasts), then
# with it.  Its own initramfs (QEMU, xenstored, qemu-mapcache).
log5=$E2E_DIR/serial-qemu.log
why5=""
if [ -z "$qemu_why" ] && want 5; then
    INITRD=$E2E_DIR/initrd-qemu.cpio boot "$log5" "dom0-iommu=strict" \
        "E2E_MODE=qemu"
    verdict "$log5"
    why5=$why
    lap "QEMU run (qemu-mapcache)"
else
    rm -f "$log5"
    [ -z "$qemu_why" ] || say "qemu-mapcache not run: $qemu_why"
fi

# 4. results.json: every scenario of issue 13, run or not (with the reason).
results=$E2E_DIR/results.json
# ats: a device-TLB invalidation descriptor that belongs to one of the
# shim's asynchronous groups: the wait descriptor that ends the group
# writes the flush's sequence number, while Xen's own synchronous waits
# write QINVAL_STAT_DONE (1).  So: device-TLB descriptors (type 3) followed
# by a status-write wait with data >= 2.
rm -f "$E2E_DIR/ats.scenario"
want 1 && python3 - "$trace" >"$E2E_DIR/ats.scenario" <<'PY' || true
import json, re, sys
dev = pending = waits = 0
seqs = set()
try:
    f = open(sys.argv[1], errors="replace")
except OSError:
    f = []
for line in f:
    if "vtd_inv_desc_wait_sw" in line:
        m = re.search(r"data 0x([0-9a-f]+)", line)
        if m and int(m.group(1), 16) >= 2:
            waits += 1
            if pending:
                dev += pending
                seqs.add(int(m.group(1), 16))
        pending = 0
    elif "vtd_inv_desc " in line or line.startswith("vtd_inv_desc:"):
        m = re.search(r"lo(?:w)? 0x([0-9a-f]+)", line)
        if m and int(m.group(1), 16) & 0xf == 3:
            pending += 1
r = {"name": "ats", "pass": dev > 0, "async_groups": waits,
     "device_tlb_descriptors_in_async_groups": dev,
     "async_flushes_with_device_tlb": len(seqs)}
print(json.dumps(r))
PY
{ grep -h '^E2E-SCENARIO ' "$log" "$log2" "$log3" "$log4" "$log5" 2>/dev/null |
      sed 's/^E2E-SCENARIO //'
  cat "$E2E_DIR/ats.scenario" 2>/dev/null; } |
QEMU_WHY="$qemu_why" python3 -c '
import json, os, sys
got = {}
for line in sys.stdin:
    try:
        r = json.loads(line)
    except ValueError:
        continue
    got[r["name"]] = r
notrun = {}
if os.environ.get("QEMU_WHY"):
    notrun["qemu-mapcache"] = os.environ["QEMU_WHY"]
order = ["hold-until-flush", "pagetable-free", "unprivileged", "strict-dom0",
         "destroy-live", "emulator-gone", "pod", "overwrite", "daemon-restart",
         "async-flush", "ite", "ats", "remove-hold-release", "daemon-gone",
         "two-guests", "deferred-cap", "foreign-map", "optout-refused",
         "page-cap", "cpu-untracked", "flush-irq", "qemu-mapcache"]
out = []
for name in order:
    if name == "strict-dom0":
        a, b = got.get("strict-dom0-accepted"), got.get("strict-dom0-refused")
        if a is None or b is None:
            out.append({"name": name, "pass": False, "run": False,
                        "reason": "a boot did not report (see the serial logs)"})
        else:
            out.append({"name": name, "pass": a["pass"] and b["pass"],
                        "run": True, "strict_boot_mapped": a.get("mapped"),
                        "nonstrict_boot_rc": b.get("rc")})
    elif name in got:
        r = dict(got[name]); r["run"] = True; out.append(r)
    elif name in notrun:
        out.append({"name": name, "pass": False, "run": False,
                    "reason": notrun[name]})
    else:
        out.append({"name": name, "pass": False, "run": False,
                    "reason": "xen-e2e stopped before this scenario (see the serial log)"})
json.dump(out, sys.stdout, indent=1)
print()
' >"$results"
say "results: $results"
python3 -c '
import json, sys
for r in json.load(open(sys.argv[1])):
    print("    %-20s %s" % (r["name"], "PASS" if r["pass"] else ("FAIL" if r["run"] else "not run")))
' "$results"
# Every scenario that ran must pass (the ones not run say why).
bad=$(python3 -c '
import json, sys
print(" ".join(r["name"] for r in json.load(open(sys.argv[1])) if r["run"] and not r["pass"]))
' "$results")

if [ -z "$why1" ] && [ -z "$why2" ] && [ -z "$why3" ] && [ -z "$why4" ] &&
   [ -z "$why5" ] && [ -z "$bad" ]; then
    grep -E '^(E2E|PASS)' "$log" | grep -v '^E2E iomapd' || true
    grep -E '^PASS xen-e2e' "$log"
    if [ -f "$E2E_DIR/boot-retries" ]; then
        say "booted once more because dom0 never came up: $(tr '\n' ' ' <"$E2E_DIR/boot-retries")"
    fi
    say "PASS in $(( $(date +%s) - t_start ))s"
    exit 0
fi
for l in "$log" "$log2" "$log3" "$log4" "$log5"; do
    echo "---- $l ----"
    cat "$l" 2>/dev/null || true
done
echo "---- qemu ----"
cat "$E2E_DIR/qemu.log"
die "${why1:-${why2:-${why3:-${why4:-${why5:-scenarios failed: $bad}}}}}"
