#!/bin/sh
# SPDX-License-Identifier: MIT
# `iomapd --backend xen` where there is no Xen (or no shim) must fail at
# once, non-zero, with one line on stderr naming what is missing.
set -u
IOMAPD=${IOMAPD:-./iomapd}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

if [ -e /dev/xen/privcmd ] && [ -n "${IOMAPD_XEN_HOST:-}" ]; then
    echo "SKIP: a Xen host with IOMAPD_XEN_HOST set: the end-to-end tests apply"
    exit 77
fi

start=$(date +%s)
timeout 5 "$IOMAPD" --backend xen --emu-socket "$tmp/emu.sock" \
    --socket "$tmp/ctl.sock" >"$tmp/out" 2>"$tmp/err"
rc=$?
end=$(date +%s)
fail=0

if [ "$rc" -eq 124 ] && [ -e /dev/xen/privcmd ]; then
    echo "SKIP: iomapd attached to a patched hypervisor here (the end-to-end tests apply)"
    exit 77
fi

if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
    echo "FAIL: iomapd --backend xen exited $rc (want a failure, at once)"
    fail=$((fail + 1))
fi
if [ $((end - start)) -gt 3 ]; then
    echo "FAIL: iomapd --backend xen took $((end - start))s to fail"
    fail=$((fail + 1))
fi
lines=$(wc -l <"$tmp/err")
if [ "$lines" -ne 1 ]; then
    echo "FAIL: want one line on stderr, got $lines:"
    sed 's/^/    /' "$tmp/err"
    fail=$((fail + 1))
fi
if ! grep -Eq '^iomapd: xen backend: .*(/dev/xen/privcmd missing|no iomap shim|dom0|Linux 4\.18|/dev/xen/evtchn)' "$tmp/err"; then
    echo "FAIL: the message does not name what is missing:"
    sed 's/^/    /' "$tmp/err"
    fail=$((fail + 1))
fi
if [ -s "$tmp/out" ]; then
    echo "FAIL: unexpected stdout:"
    sed 's/^/    /' "$tmp/out"
    fail=$((fail + 1))
fi
if [ ! -e /dev/xen/privcmd ] && ! grep -q '/dev/xen/privcmd missing: not a Xen dom0' "$tmp/err"; then
    echo "FAIL: no /dev/xen/privcmd here, but the message does not say so"
    fail=$((fail + 1))
fi
[ "$fail" -eq 0 ] && echo "PASS: $(cat "$tmp/err")"
exit "$fail"
