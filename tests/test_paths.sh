#!/bin/sh
# test_paths.sh - one set of paths.  The defaults compiled into the
# programs (as their --help prints them) are the FHS paths Debian uses
# (/run/iomapd, /etc/iomapd), and the man pages and the systemd units (as
# make generates them) name exactly those.  A build configured with other
# --runstatedir/--sysconfdir fails here: its man pages would lie.
set -u
src=${srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
B=${top_builddir:-$(pwd)}
fails=0
ok() { echo "PASS: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
# The default a --help text gives for a file: the path that ends in $2.
dflt() { "$B/$1" --help | tr -s ' \n' '\n\n' | tr -d '();,' | grep -m1 "/$2\$"; }

CTL=$(dflt iomapd iomapd.sock); EMU=$(dflt iomapd emulators.sock)
CONF=$(dflt iomapd iomapd.conf); SIM=$(dflt iomapd sim.sock)
SIMHC=$(dflt iomapd sim-hc.sock)
for v in "$CTL" "$EMU" "$CONF" "$SIM" "$SIMHC"; do
    [ -n "$v" ] || { bad "iomapd --help lacks a default path"; "$B/iomapd" --help; exit 1; }
done
[ "$CTL" = /run/iomapd/iomapd.sock ] && [ "$EMU" = /run/iomapd/emulators.sock ] &&
    [ "$CONF" = /etc/iomapd/iomapd.conf ] &&
    ok "iomapd defaults are FHS: $CTL $EMU $CONF" ||
    bad "iomapd defaults are not /run/iomapd and /etc/iomapd: $CTL $EMU $CONF"
[ "$(dflt iomapd-sim iomapd.sock)" = "$CTL" ] && [ "$(dflt iomapd-sim sim-hc.sock)" = "$SIMHC" ] &&
    ok "iomapd-sim: the same defaults" || bad "iomapd-sim's defaults differ from iomapd's"
[ "$(dflt xl-iomap iomapd.sock)" = "$CTL" ] && ok "xl-iomap looks for $CTL" ||
    bad "xl-iomap looks for $(dflt xl-iomap iomapd.sock), iomapd listens on $CTL"
[ "$(dflt iomap-sim sim.sock)" = "$SIM" ] && [ "$(dflt iomap-sim sim-hc.sock)" = "$SIMHC" ] &&
    ok "iomap-sim listens where iomapd looks ($SIM, $SIMHC)" ||
    bad "iomap-sim's sockets differ from iomapd's defaults"

# Man pages: each names the defaults of its program (.Pa PATH).
man_has() {     # man page, path
    if grep -q "Pa $2\( \|\$\)" "$src/man/$1"; then ok "$1 says $2"
    else bad "$1 does not say $2 (the program's default)"; fi
}
man_has iomapd.8 "$CTL"; man_has iomapd.8 "$EMU"; man_has iomapd.8 "$CONF"
man_has iomapd.8 "$SIM"; man_has iomapd-sim.1 "$SIMHC"
man_has xl-iomap.1 "$CTL"; man_has iomapd-api.7 "$CTL"; man_has iomapd.conf.5 "$CONF"
man_has iomap-sim.1 "$SIM"; man_has iomap-sim.1 "$SIMHC"
# ... and no other path under /run, /var/run, /etc or /usr/local.
for m in "$src"/man/*.[1-8]; do
    other=$(grep -o 'Pa /[^ ]*' "$m" | sed 's/^Pa //' | grep -E '^/(run|var|etc|usr/local)/' |
            grep -v -x -e "$CTL" -e "$EMU" -e "$CONF" -e "$SIM" -e "$SIMHC" \
                -e "$(dirname "$CTL")" -e /etc/default/iomapd || true)
    [ -z "$other" ] && ok "$(basename "$m"): no other path" ||
        bad "$(basename "$m") names paths no program uses: $other"
done

# Units, as make generates them.
svc="$B/systemd/iomapd.service"; sock="$B/systemd/iomapd.socket"; tmpf="$B/systemd/iomapd.tmpfiles"
for f in "$svc" "$sock" "$tmpf"; do [ -f "$f" ] || { bad "$f not generated"; exit 1; }; done
[ "$(sed -n 's/^ListenStream=//p' "$sock")" = "$CTL" ] && ok "iomapd.socket listens on $CTL" ||
    bad "iomapd.socket listens on $(sed -n 's/^ListenStream=//p' "$sock"), not $CTL"
exec_line=$(sed -n 's/^ExecStart=//p' "$svc")
for o in "--socket $CTL" "--emu-socket $EMU" "--config $CONF"; do
    case " $exec_line " in *" $o "*) ok "ExecStart passes $o" ;;
        *) bad "ExecStart lacks '$o': $exec_line" ;; esac
done
[ "$(sed -n 's/^ReadWritePaths=//p' "$svc")" = "$(dirname "$EMU")" ] &&
    ok "the unit may write $(dirname "$EMU") (ProtectSystem=strict)" ||
    bad "ReadWritePaths= is not $(dirname "$EMU")"
grep -q "^d $(dirname "$CTL") 0755 " "$tmpf" && ok "tmpfiles.d makes $(dirname "$CTL") 0755" ||
    bad "tmpfiles.d entry: $(cat "$tmpf")"
grep -q "^ReadOnlyPaths=-$(dirname "$CONF")\$" "$svc" && ok "ReadOnlyPaths=-$(dirname "$CONF")" ||
    bad "ReadOnlyPaths= does not name $(dirname "$CONF")"
grep -q '^RuntimeDirectory=' "$svc" && bad "RuntimeDirectory= would remove the socket's directory at stop" ||
    ok "no RuntimeDirectory= (the socket outlives a restart)"
[ $fails = 0 ]
