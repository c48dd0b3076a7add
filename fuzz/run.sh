#!/bin/sh
# fuzz/run.sh: fuzz every libFuzzer target of fuzz/ for a bounded time.
#
#   fuzz/run.sh [seconds-per-target] [target...]     (default 60, all)
#
# Builds the project with clang (-fsanitize=fuzzer-no-link,address,undefined)
# in a separate VPATH build directory ($FUZZ_BUILD, default /tmp/iomapd-fuzz),
# links each target with -fsanitize=fuzzer and runs it on a scratch copy of
# its seed corpus (fuzz/corpus/<target>/ is read, never written).  New
# crashes are left as $FUZZ_BUILD/crash-*; the exit status is non-zero if a
# target found one.  Needs clang and libclang-rt-dev (clang 14 on Debian 12).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-"ring policy rpc"}
build=${FUZZ_BUILD:-/tmp/iomapd-fuzz}
CC=${CC:-clang}
san="-fsanitize=address,undefined -fno-sanitize-recover=all"

mkdir -p "$build"
cd "$build"
if [ ! -f Makefile ]; then
    [ -x "$src/configure" ] || (cd "$src" && autoreconf -fi)
    "$src/configure" -q CC="$CC" \
        CFLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link $san -Wno-error"
fi
# The libraries the replay programs of make check link (Makefile.am:
# HOST_LIBS, POLICY_LIBS, libiomapctl.a), in the same order.
make -s -j"$(nproc)" libiomapctl.a libiomappolicy.a libiomaphost.a libiomap-emu.a \
    libiomapcore.a libiomapioreq.a libiomapsim.a libiomapring.a libiomaputil.a

inc="-I. -I$src -I$src/shim/public"
libs="libiomaphost.a libiomap-emu.a libiomapcore.a libiomapioreq.a libiomapsim.a
      libiomapring.a libiomaputil.a $(pkg-config --libs libevent jansson) -lroaring -lJudy -lm"
if grep -q '^#define HAVE_SYSTEMD 1' config.h; then
    libs="$libs $(pkg-config --libs libsystemd)"
fi
status=0
LSAN_OPTIONS="suppressions=$src/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export LSAN_OPTIONS
for t in $targets; do
    case $t in
    ring)   extra="" ;;
    policy) extra="libiomappolicy.a $(pkg-config --libs libconfig)" ;;
    rpc)    extra="libiomapctl.a libiomappolicy.a $(pkg-config --libs libconfig)" ;;
    *)      echo "run.sh: unknown target $t" >&2; exit 2 ;;
    esac
    $CC -g -O1 -fsanitize=fuzzer $san $inc -include config.h \
        "$src/fuzz/fuzz_$t.c" $extra $libs -o "fuzz-$t"
    rm -rf "corpus-$t" && mkdir "corpus-$t"
    echo "run.sh: fuzzing $t for ${secs}s"
    if ! ./"fuzz-$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
            -print_final_stats=1 "corpus-$t" "$src/fuzz/corpus/$t" \
            2> "fuzz-$t.log"; then
        echo "run.sh: $t FAILED, see $build/fuzz-$t.log" >&2
        tail -n 40 "fuzz-$t.log" >&2
        status=1
    fi
    grep -E '^stat::number_of_executed_units|^Done ' "fuzz-$t.log" || true
done
exit $status
