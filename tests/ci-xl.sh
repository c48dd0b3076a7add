#!/bin/sh
# ci-xl.sh - CI for `xl iomap`: build the patched xl from the Debian Xen
# 4.17 source (json-api/xl/build-xl.sh; root installs its build deps and
# needs deb-src), build xl-iomap, then run tests/test_xl_iomap.sh, which
# starts iomap-sim + iomapd, checks every xl-iomap subcommand, checks that
# `xl iomap status` through the patched xl answers from the daemon, and
# runs json-api/xl/test-xl-iomap.sh with the real xl-iomap.
#   usage: tests/ci-xl.sh        (from the top of a configured tree)
set -eu
cd "$(dirname "$0")/.."
sh json-api/xl/build-xl.sh
make -s -j2 iomapd iomap-sim example-emulator xl-iomap
top_builddir=$(pwd) srcdir=$(pwd) XL_BUILD_DIR=$(pwd)/build/xl sh tests/test_xl_iomap.sh
