#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Inside the core, calls go one way (docs/ARCHITECTURE.md, "Layers"):
#   api, query -> ingest -> enforce -> pages -> emu -> cmdq -> tracker, policy
# Read from the objects themselves: every symbol an object of the core
# uses (nm: U) that another object of the core defines must belong to a
# lower layer.  It first proves it can fail, on a planted upward call.
set -u
B=${top_builddir:-$(pwd)}
lib="$B/libiomapcore.a"
[ -f "$lib" ] || { echo "SKIP: $lib not built"; exit 77; }
command -v nm >/dev/null || { echo "SKIP: no nm"; exit 77; }

# check "nm -A output": prints each upward call, returns 1 if any.
check() {
    awk '
    function rank(o) {
        if (o ~ /^(api|query)\.o$/) return 0
        if (o == "ingest.o") return 1
        if (o == "enforce.o") return 2
        if (o == "pages.o") return 3
        if (o == "emu.o") return 4
        if (o == "cmdq.o") return 5
        return 6                      # tracker.o, policy.o: the bottom
    }
    {
        n = split($1, a, ":"); obj = a[2]
        t = $(NF - 1); s = $NF
        if (t ~ /^[TDBR]$/) def[s] = obj
        else if (t == "U") { nuse++; uo[nuse] = obj; us[nuse] = s }
    }
    END {
        bad = 0
        for (i = 1; i <= nuse; i++) {
            if (!(us[i] in def)) continue
            d = def[us[i]]; o = uo[i]
            if (d != o && rank(d) <= rank(o)) {
                printf "%s calls %s of %s: up (or across) the layers\n", o, us[i], d
                bad = 1
            }
        }
        exit bad
    }'
}

# 1. It can fail: pages.o using a symbol of ingest.o.
printf 'libiomapcore.a:ingest.o:0000 T core_resync\nlibiomapcore.a:pages.o:         U core_resync\n' |
    check >/dev/null && { echo "FAIL: a planted upward call was not seen"; exit 1; }
printf 'libiomapcore.a:emu.o:0000 T emu_get\nlibiomapcore.a:pages.o:         U emu_get\n' |
    check >/dev/null || { echo "FAIL: a downward call was refused"; exit 1; }

# 2. The core.
if ! nm -A "$lib" 2>/dev/null | check; then
    echo "FAIL: calls inside the core that go up"
    exit 1
fi
echo "PASS: every call inside the core goes down"
