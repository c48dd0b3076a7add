#!/bin/sh
# test_systemd.sh - the units as make generates them (systemd/iomapd.service,
# .socket): systemd-analyze verify; the socket outlives a restart of the
# service (no RuntimeDirectory=, the socket unit owns the directory); the
# order against Xen's units; socket-group members can reach the socket;
# LimitNOFILE= covers the daemon's own limits on connections; the
# sysusers.d entry read by systemd-sysusers into a scratch root.
# Exit 77 (skip) only when systemd-analyze is absent.
set -u
src=${srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
B=${top_builddir:-$(pwd)}
command -v systemd-analyze >/dev/null 2>&1 || { echo "SKIP: no systemd-analyze"; exit 77; }
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
fails=0
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "PASS: $*"; }
svc="$B/systemd/iomapd.service"; sock="$B/systemd/iomapd.socket"
[ -f "$svc" ] && [ -f "$sock" ] || { echo "FAIL: units not generated (make)"; exit 1; }
cp "$sock" "$t/iomapd.socket"
# The unit names $(sbindir)/iomapd; verify needs the binary to exist:
# point it at the built one.
sbin=$(sed -n 's|^ExecStart=\([^ ]*\)/iomapd .*|\1|p' "$svc")
[ -n "$sbin" ] || { echo "FAIL: ExecStart is not SBINDIR/iomapd"; exit 1; }
sed "s|^ExecStart=$sbin/iomapd |ExecStart=$B/iomapd |" "$svc" > "$t/iomapd.service"
out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$t/iomapd.socket" "$t/iomapd.service" 2>&1)
rc=$?
# Units this one orders itself against may not exist on a build machine.
bad=$(printf '%s\n' "$out" | grep -v -e '^$' -e 'proc-xen.mount' -e 'xenstored.service' \
      -e 'xen.service' -e 'xendomains.service' \
      -e 'Failed to prepare filename' -e 'Unit .* not found' || true)
printf '%s\n' "$out"
if [ $rc -ne 0 ] || [ -n "$bad" ]; then bad "systemd-analyze verify: rc $rc"
else ok "systemd-analyze verify iomapd.service iomapd.socket"; fi
grep -q '^Type=notify' "$svc" && grep -q '^WatchdogSec=' "$svc" && ok "Type=notify, WatchdogSec=" ||
    bad "Type=notify / WatchdogSec missing"

# The socket survives a restart of the service.
grep -q '^RuntimeDirectory' "$svc" && bad "RuntimeDirectory= removes the socket's directory at stop" ||
    ok "no RuntimeDirectory= in the service"
grep -q '^Requires=iomapd.socket' "$svc" && grep -q '^After=iomapd.socket' "$svc" &&
    ok "the service requires and follows iomapd.socket" || bad "Requires/After=iomapd.socket"
grep -q '^RemoveOnStop=yes' "$sock" && ok "the socket is removed when the socket unit stops (only)" ||
    bad "RemoveOnStop=yes missing"
# Order against Xen (Debian's xen-utils-common: xen.service, xendomains.service;
# upstream: proc-xen.mount, xenstored.service).
for u in xen.service proc-xen.mount xenstored.service; do
    grep "^After=" "$svc" | grep -qw "$u" && ok "After=$u" || bad "not After=$u"
done
grep "^Before=" "$svc" | grep -qw xendomains.service && ok "Before=xendomains.service" ||
    bad "not Before=xendomains.service"
# Socket-group members reach the socket: directory 0755, socket 0660 group iomapd.
grep -q '^DirectoryMode=0755' "$sock" && grep -q '^SocketMode=0660' "$sock" &&
    grep -q '^SocketGroup=iomapd$' "$sock" && ok "directory 0755, socket 0660 group iomapd" ||
    bad "socket/directory modes lock socket-group members out"
grep -q '^ReadWritePaths=' "$svc" && grep -q '^ProtectSystem=strict' "$svc" &&
    ok "ProtectSystem=strict with the emulator socket's directory writable" ||
    bad "the emulator socket's directory is not writable under ProtectSystem"
# LimitNOFILE= covers CORE_MAX_EMUS emulators (EMUSOCK_FDS_PER_EMULATOR
# descriptors each: connection, pidfd, memfd, two eventfds) +
# CTL_MAX_CLIENTS control clients + the daemon's spare (EMUSOCK_FDS_SPARE,
# 128, which holds the metrics endpoint's METRICS_MAX_CONNS).
emus=$(sed -n 's/^#define CORE_MAX_EMUS *\([0-9]*\).*/\1/p' "$src/daemon/core/core.h")
per=$(sed -n 's/^#define EMUSOCK_FDS_PER_EMULATOR *\([0-9]*\).*/\1/p' "$src/daemon/emusock.c")
spare=$(sed -n 's/^#define EMUSOCK_FDS_SPARE *\([0-9]*\).*/\1/p' "$src/daemon/emusock.c")
clients=$(sed -n 's/^#define CTL_MAX_CLIENTS *\([0-9]*\).*/\1/p' "$src/json-api/ctl.h")
mconns=$(sed -n 's/^#define METRICS_MAX_CONNS *\([0-9]*\).*/\1/p' "$src/json-api/metrics.h")
nofile=$(sed -n 's/^LimitNOFILE=\([0-9]*\)$/\1/p' "$svc")
case "$per" in 4) word=four ;; 5) word=five ;; 6) word=six ;; 7) word=seven ;; *) word="$per" ;; esac
if [ -n "$per" ] && [ -n "$spare" ] && [ -n "$mconns" ] && [ "$mconns" -lt "$spare" ] &&
   grep -q "with $word descriptors" "$svc" &&
   grep -q "EMUSOCK_FDS_PER_EMULATOR" "$svc"; then
    ok "the unit's comment counts $per descriptors per emulator, as daemon/emusock.c does"
else bad "descriptors per emulator: emusock.c says ${per:-?}, the unit's comment says otherwise (or the metrics endpoint's ${mconns:-?} do not fit the spare ${spare:-?})"; fi
if [ -n "$emus" ] && [ -n "$clients" ] && [ -n "$nofile" ] && [ -n "$per" ] && [ -n "$spare" ] &&
   [ "$nofile" -ge $((per * emus + clients + spare)) ]; then
    ok "LimitNOFILE=$nofile >= $per x $emus emulators + $clients clients + $spare"
else bad "LimitNOFILE=${nofile:-unset} below ${per:-?} x ${emus:-?} emulators + ${clients:-?} clients + ${spare:-?}"; fi

# The kill step (policy) signals a deprivileged QEMU of another uid: the
# bounding set must keep CAP_KILL, or the signal fails with EPERM.
if grep -q '^CapabilityBoundingSet=.*CAP_KILL' "$svc"; then
    ok "the bounding set keeps CAP_KILL for the policy's kill step"
else bad "CapabilityBoundingSet drops CAP_KILL: the kill step could not signal a deprivileged QEMU"; fi

# The groups the service names, from the sysusers.d entry make install puts
# in $(prefix)/lib/sysusers.d/iomapd.conf.
if command -v systemd-sysusers >/dev/null 2>&1; then
    mkdir -p "$t/root/etc"
    if systemd-sysusers --root="$t/root" "$src/systemd/iomapd.sysusers" >"$t/sysusers.log" 2>&1 &&
       grep -q '^iomapd:' "$t/root/etc/group" && grep -q '^iomapd-admin:' "$t/root/etc/group"; then
        ok "systemd-sysusers creates the groups iomapd and iomapd-admin"
    else
        cat "$t/sysusers.log"; bad "systemd-sysusers on systemd/iomapd.sysusers"
    fi
    for g in iomapd iomapd-admin; do
        grep -q -- "-group $g\( \|$\)" "$svc" || bad "the unit does not name group $g"
    done
fi
[ $fails = 0 ]
