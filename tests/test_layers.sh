#!/bin/sh
# SPDX-License-Identifier: MIT
#
# The layers of docs/ARCHITECTURE.md, checked on the sources: an include
# that points the wrong way fails `make check`.  Usage:
#   test_layers.sh            check the tree at $srcdir (or ..)
#   test_layers.sh DIR        check the tree at DIR
# It first proves it can fail: a scratch tree with one forbidden include of
# each kind must be refused.
set -u
root=${1:-${srcdir:-$(cd "$(dirname "$0")/.." && pwd)}}

# check DIR: prints one line per forbidden include, returns 1 if any.
check() {
    d=$1
    bad=0
    # rule: files matching $1 may not include a path matching $2 (ERE).
    rule() {
        for f in $(cd "$d" && ls $1 2>/dev/null); do
            grep -HnE "^#[[:space:]]*include[[:space:]]*[<\"]($2)" "$d/$f" 2>/dev/null |
                sed "s|^$d/||; s|\$|   <- $3|"
        done
    }
    out=$(
        # The core knows nothing of the process, the API, the sim, libevent or jansson.
        rule "daemon/core/*.[ch]" \
            'daemon/[^c]|daemon/c[^o]|json-api/|simhost/|shim/sim/|event2/|jansson' \
            "core -> daemon/json-api/sim/libevent/jansson"
        # The API reaches the core through core.h only.
        rule "json-api/*.[ch]" \
            'daemon/core/core_priv|daemon/core/tracker|daemon/iomapd|daemon/backend|daemon/emusock|simhost/|shim/sim/' \
            "json-api -> core internals or the process"
        # The hypervisor side includes nothing of the daemon.
        rule "shim/*.[ch] shim/*/*.[ch]" 'daemon/|json-api/|simhost/|policy/' \
            "shim -> daemon"
        # Utilities point at nothing above them.
        rule "util/*.[ch]" 'daemon/|json-api/|simhost/|shim/|policy/|ioreq/' \
            "utility -> a part above it"
        # Only util/listen.c (the acceptor) knows libevent; log, hash map
        # and clock stay free of it (the core links them).
        rule "util/log.[ch] util/hmap.[ch] util/clock.[ch]" 'event2/|jansson' \
            "log/hmap/clock -> libevent or jansson"
        rule "policy/*.[ch]" 'daemon/|json-api/|simhost/' "policy -> daemon"
        rule "ioreq/*.[ch] ioreq/*/*.[ch]" 'daemon/|json-api/|simhost/|policy/' "ioreq -> daemon"
        # libiomap-emu prints and exits on behalf of nobody: no util/ in it.
        rule "ioreq/channel.[ch] ioreq/client.c ioreq/ioreq.h ioreq/iomap-emu.h ioreq/emu_priv.h ioreq/iomap/*.h" \
            'util/' "libiomap-emu -> util"
        # The simulated host, the bench and the fuzzers use the public API.
        rule "simhost/*.[ch] bench/*.[ch] fuzz/*.c daemon/*.[ch]" \
            'daemon/core/core_priv' "outside the core -> core_priv.h"
        # The tracker is the core's data structure: the bench measures it
        # (as a unit test would); nothing else outside the core sees it.
        rule "simhost/*.[ch] fuzz/*.c daemon/*.[ch]" \
            'daemon/core/tracker' "outside the core -> tracker.h"
    )
    if [ -n "$out" ]; then
        printf '%s\n' "$out"
        return 1
    fi
    return 0
}

# 1. The check can fail: one forbidden include of each kind.
t=$(mktemp -d /tmp/iomap-layers.XXXXXX)
trap 'rm -rf "$t"' EXIT
mkdir -p "$t/daemon/core" "$t/json-api" "$t/shim/sim" "$t/util" "$t/simhost"
echo '#include <event2/event.h>' >"$t/daemon/core/a.c"
echo '#include "daemon/core/core_priv.h"' >"$t/json-api/b.c"
echo '#include "daemon/iomapd.h"' >"$t/shim/sim/c.c"
echo '#include "daemon/core/core.h"' >"$t/util/d.c"
echo '#include "daemon/core/core_priv.h"' >"$t/simhost/e.c"
echo '#include <event2/event.h>' >"$t/util/hmap.c"
n=$(check "$t" | wc -l)
if [ "$n" -ne 6 ]; then
    echo "FAIL: the check found $n of 6 planted forbidden includes"
    check "$t"
    exit 1
fi
# ... and passes what is allowed.
rm -f "$t"/*/*.c "$t"/*/*/*.c
echo '#include "daemon/core/core.h"' >"$t/json-api/ok.c"
echo '#include "util/log.h"' >"$t/daemon/core/ok.c"
echo '#include <event2/event.h>' >"$t/util/listen.c"
if ! check "$t" >/dev/null; then
    echo "FAIL: the check refused allowed includes"
    exit 1
fi

# 2. The tree.
if ! check "$root"; then
    echo "FAIL: forbidden includes (see docs/ARCHITECTURE.md, 'Layers')"
    exit 1
fi
echo "PASS: no include points the wrong way"
