#!/bin/sh
# systemd-nspawn.sh - the units under a real systemd: boots this machine's
# own /usr (systemd-nspawn --volatile=yes: a tmpfs root, /usr read-only)
# with iomapd.socket and iomapd.service as make generated them, the
# sysusers.d and tmpfiles.d entries, and a drop-in that runs iomapd-sim's
# simulated hypervisor instead of Xen (the rest of the unit, its sandbox
# included, unchanged).  A oneshot unit in the container checks, as root
# and as users in and out of the socket group:
#   socket activation; /run/iomapd 0755, the socket 0660 group iomapd;
#   the emulator socket written under ProtectSystem=strict; LimitNOFILE;
#   the socket (same inode) across a restart and a stop of the service;
#   socket-group members reach it, others do not; Type=notify STATUS=;
#   messages in the journal through sd_journal_send.
# Needs root and systemd-nspawn; exit 77 (skip) without them.  Not part of
# make check (it boots a container): `make check-systemd`, and .ci/run.
set -u
B=${top_builddir:-$(pwd)}
B=$(cd "$B" && pwd)
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
command -v systemd-nspawn >/dev/null 2>&1 || { echo "SKIP: no systemd-nspawn"; exit 77; }
t=$(mktemp -d /tmp/iomapd-nspawn.XXXXXX); trap 'rm -rf "$t"' EXIT
mkdir -p "$t/system/iomapd.service.d" "$t/system/sockets.target.wants" \
    "$t/system/multi-user.target.wants" "$t/sysusers" "$t/tmpfiles" "$t/out"
cp "$B/systemd/iomapd.socket" "$B/systemd/iomapd.service" "$t/system/"
cp "$B/systemd/iomapd.tmpfiles" "$t/tmpfiles/iomapd.conf"
cp "${srcdir:-$B}/systemd/iomapd.sysusers" "$t/sysusers/iomapd.conf"
ln -s ../iomapd.socket "$t/system/sockets.target.wants/iomapd.socket"
# The build tree is bound at /opt/iomapd-build: under /tmp it would be
# hidden from the service by PrivateTmp=yes.
cat > "$t/system/iomapd.service.d/sim.conf" <<CONF
[Service]
ExecStart=
ExecStart=/opt/iomapd-build/iomapd-sim --backend sim-embedded --sim-socket /run/iomapd/sim-hc.sock --socket /run/iomapd/iomapd.sock --emu-socket /run/iomapd/emulators.sock --socket-group iomapd --admin-group iomapd-admin
CONF
cat > "$t/system/iomapd-test.service" <<CONF
[Unit]
After=multi-user.target iomapd.socket
[Service]
Type=oneshot
ExecStart=/bin/sh /out/check.sh
ExecStopPost=/bin/systemctl --no-block poweroff
CONF
ln -s ../iomapd-test.service "$t/system/multi-user.target.wants/iomapd-test.service"
cat > "$t/out/check.sh" <<CHECK
#!/bin/sh
X=/opt/iomapd-build/xl-iomap
exec >/out/result 2>&1
ok() { echo "PASS: \$*"; }
bad() { echo "FAIL: \$*"; }
S=/run/iomapd/iomapd.sock
[ "\$(systemctl is-active iomapd.socket)" = active ] && ok "iomapd.socket active" || bad "iomapd.socket: \$(systemctl status iomapd.socket)"
[ "\$(stat -c '%a %U' /run/iomapd)" = "755 root" ] && ok "/run/iomapd 0755 root" || bad "/run/iomapd: \$(stat -c '%a %U' /run/iomapd)"
[ "\$(stat -c '%a %G' \$S)" = "660 iomapd" ] && ok "socket 0660 group iomapd" || bad "socket: \$(stat -c '%a %G' \$S)"
ino=\$(stat -c %i \$S)
\$X --socket \$S --wait 10 status > /tmp/st 2>&1 && grep -q 'backend sim-embedded' /tmp/st &&
    ok "socket activation: xl-iomap status starts iomapd" ||
    bad "activation: \$(cat /tmp/st); journal: \$(journalctl -u iomapd.service --no-pager | tail -20)"
pid=\$(systemctl show -p MainPID --value iomapd.service)
grep -q 'Max open files *8192 *8192' /proc/\$pid/limits && ok "LimitNOFILE 8192 in the daemon" ||
    bad "limits: \$(grep 'open files' /proc/\$pid/limits)"
[ -S /run/iomapd/emulators.sock ] && ok "emulator socket made under ProtectSystem=strict" || bad "no emulator socket"
systemctl show -p StatusText --value iomapd.service | grep -q '^running' && ok "Type=notify STATUS=" ||
    bad "status text: \$(systemctl show -p StatusText --value iomapd.service)"
systemctl restart iomapd.service
[ -S \$S ] && [ "\$(stat -c %i \$S)" = "\$ino" ] && ok "restart: the same socket (inode \$ino) is still there" ||
    bad "restart: socket gone or replaced"
\$X --socket \$S --wait 10 status >/dev/null 2>&1 && ok "after a restart: answers" || bad "no answer after restart"
systemctl stop iomapd.service
[ -S \$S ] && [ -d /run/iomapd ] && ok "stop: socket and directory stay (RuntimeDirectory would remove them)" ||
    bad "stop removed the socket or /run/iomapd"
\$X --socket \$S status >/dev/null 2>&1 && ok "after a stop: the socket starts it again" || bad "no activation after stop"
useradd -M -G iomapd member && useradd -M outsider || bad "useradd"
setpriv --reuid member --regid 65534 --init-groups \$X --socket \$S status >/tmp/m 2>&1 &&
    ok "a socket-group member reaches the socket" || bad "member: \$(cat /tmp/m)"
setpriv --reuid outsider --regid 65534 --init-groups \$X --socket \$S status >/tmp/o 2>&1
[ \$? = 3 ] && grep -q 'Permission denied' /tmp/o && ok "a non-member is refused (EACCES)" || bad "outsider: \$(cat /tmp/o)"
journalctl -u iomapd.service -o verbose --no-pager | grep -q '^ *SYSLOG_IDENTIFIER=iomapd' &&
    journalctl -u iomapd.service -o verbose --no-pager | grep -q 'MESSAGE=iomapd 0.* running' &&
    ok "messages in the journal through sd_journal_send" || bad "journal: \$(journalctl -u iomapd --no-pager | tail -5)"
echo DONE
CHECK
timeout 180 systemd-nspawn -D / --volatile=yes --register=no --keep-unit -q -b \
    --bind="$t/out:/out" --bind-ro="$B:/opt/iomapd-build" --bind-ro="$t/system:/etc/systemd/system" \
    --bind-ro="$t/sysusers:/etc/sysusers.d" --bind-ro="$t/tmpfiles:/etc/tmpfiles.d" \
    systemd.firstboot=off systemd.unit=multi-user.target >"$t/boot.log" 2>&1
rc=$?
cat "$t/out/result" 2>/dev/null
if [ ! -f "$t/out/result" ]; then
    tail -n 40 "$t/boot.log"
    if grep -q 'not supported\|Failed to .*namespace\|Operation not permitted' "$t/boot.log"; then
        echo "SKIP: systemd-nspawn cannot boot a container here (rc $rc)"; exit 77; fi
    echo "FAIL: the container did not run the checks (rc $rc)"; exit 1
fi
grep -q '^DONE' "$t/out/result" || { echo "FAIL: the checks did not finish"; tail -n 30 "$t/boot.log"; exit 1; }
! grep -q '^FAIL' "$t/out/result"
