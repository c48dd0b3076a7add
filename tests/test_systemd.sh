#!/bin/sh
# test_systemd.sh - systemd-analyze verify on systemd/iomapd.{service,socket}.
# Exit 77 (skip) only when systemd-analyze is absent.
set -u
src=${srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
command -v systemd-analyze >/dev/null 2>&1 || { echo "SKIP: no systemd-analyze"; exit 77; }
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
cp "$src/systemd/iomapd.service" "$src/systemd/iomapd.socket" "$t/"
# The unit names /usr/sbin/iomapd; verify needs the binary to exist:
# point it at the built one.
B=${top_builddir:-$(pwd)}
sed -i "s|/usr/sbin/iomapd|$B/iomapd|" "$t/iomapd.service"
out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$t/iomapd.socket" "$t/iomapd.service" 2>&1)
rc=$?
# Units this one orders itself after may not exist on a build machine.
bad=$(printf '%s\n' "$out" | grep -v -e '^$' -e 'proc-xen.mount' -e 'xenstored.service' \
      -e 'Failed to prepare filename' -e 'Unit .* not found' || true)
printf '%s\n' "$out"
if [ $rc -ne 0 ] || [ -n "$bad" ]; then echo "FAIL: systemd-analyze verify: rc $rc"; exit 1; fi
grep -q '^Type=notify' "$src/systemd/iomapd.service" && grep -q '^WatchdogSec=' "$src/systemd/iomapd.service" \
    || { echo "FAIL: Type=notify / WatchdogSec missing"; exit 1; }
echo "PASS: systemd-analyze verify iomapd.service iomapd.socket"
