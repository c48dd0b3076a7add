#!/bin/sh
# test_systemd.sh - systemd-analyze verify on systemd/iomapd.{service,socket}
# (the service as make generates it from iomapd.service.in), and the
# sysusers.d entry read by systemd-sysusers into a scratch root.
# Exit 77 (skip) only when systemd-analyze is absent.
set -u
src=${srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
command -v systemd-analyze >/dev/null 2>&1 || { echo "SKIP: no systemd-analyze"; exit 77; }
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
cp "$src/systemd/iomapd.socket" "$t/"
# The unit names @sbindir@/iomapd; verify needs the binary to exist:
# point it at the built one.
B=${top_builddir:-$(pwd)}
sed "s|@sbindir@/iomapd|$B/iomapd|" "$src/systemd/iomapd.service.in" > "$t/iomapd.service"
grep -q "^ExecStart=$B/iomapd " "$t/iomapd.service" || { echo "FAIL: ExecStart is not @sbindir@/iomapd"; exit 1; }
out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$t/iomapd.socket" "$t/iomapd.service" 2>&1)
rc=$?
# Units this one orders itself after may not exist on a build machine.
bad=$(printf '%s\n' "$out" | grep -v -e '^$' -e 'proc-xen.mount' -e 'xenstored.service' \
      -e 'Failed to prepare filename' -e 'Unit .* not found' || true)
printf '%s\n' "$out"
if [ $rc -ne 0 ] || [ -n "$bad" ]; then echo "FAIL: systemd-analyze verify: rc $rc"; exit 1; fi
grep -q '^Type=notify' "$t/iomapd.service" && grep -q '^WatchdogSec=' "$t/iomapd.service" \
    || { echo "FAIL: Type=notify / WatchdogSec missing"; exit 1; }
echo "PASS: systemd-analyze verify iomapd.service iomapd.socket"
# The groups the service names, from the sysusers.d entry make install puts
# in $(prefix)/lib/sysusers.d/iomapd.conf.
if command -v systemd-sysusers >/dev/null 2>&1; then
    mkdir -p "$t/root/etc"
    if systemd-sysusers --root="$t/root" "$src/systemd/iomapd.sysusers" >"$t/sysusers.log" 2>&1 &&
       grep -q '^iomapd:' "$t/root/etc/group" && grep -q '^iomapd-admin:' "$t/root/etc/group"; then
        echo "PASS: systemd-sysusers creates the groups iomapd and iomapd-admin"
    else
        cat "$t/sysusers.log"; echo "FAIL: systemd-sysusers on systemd/iomapd.sysusers"; exit 1
    fi
    for g in iomapd iomapd-admin; do
        grep -q -- "-group $g\( \|$\)" "$t/iomapd.service" || { echo "FAIL: the unit does not name group $g"; exit 1; }
    done
fi
