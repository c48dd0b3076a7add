# Sourced by the xl-iomap tests: start iomap-sim, iomapd and an emulator in
# a temporary directory; api_stop tears them down.  Sets T, IOMAPD_SOCKET.
B=${top_builddir:-$(pwd)}
T=$(mktemp -d /tmp/iomapd-xl.XXXXXX)
PIDS=
api_stop() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    rm -rf "$T"
}
trap api_stop EXIT
api_start() {
    "$B/iomap-sim" -s "$T/sim.sock" -H "$T/hc.sock" -g 1 -G 16384 -l 200 >"$T/log" 2>&1 &
    PIDS="$PIDS $!"
    for _ in $(seq 50); do [ -S "$T/hc.sock" ] && break; sleep 0.1; done
    "$B/iomapd" --backend sim --sim-socket "$T/sim.sock" -e "$T/emu.sock" -s "$T/ctl.sock" \
        -c "$T/iomapd.conf" >>"$T/log" 2>&1 &
    PIDS="$PIDS $!"
    for _ in $(seq 50); do [ -S "$T/ctl.sock" ] && break; sleep 0.1; done
    "$B/example-emulator" --iomapd "$T/emu.sock" --sim "$T/hc.sock" --domid 1 \
        --map 0x1000:1024 >>"$T/log" 2>&1 &
    PIDS="$PIDS $!"
    IOMAPD_SOCKET=$T/ctl.sock
    export IOMAPD_SOCKET
    for _ in $(seq 50); do
        "$B/xl-iomap" status 2>/dev/null | grep -q 'mappings: *1024' && return 0
        sleep 0.1
    done
    echo "api_env: the daemon did not come up"; cat "$T/log"; return 1
}
