#!/bin/sh
# build-xl.sh - build Xen 4.17's xl with the iomapd "external subcommand"
# patch (0001-xl-exec-external-subcommands.patch), against Debian 12's
# installed libxen-dev.
#
# Only tools/xl/*.c are compiled (directly with $CC, not via Xen's
# build system), so this takes seconds rather than the tens of minutes
# a full tools/ build needs.
#
# Intended for CI on a fresh Debian 12 system, run as root.  As root it
# installs the packages it needs with apt-get; as a normal user it just
# checks for them.
#
# Environment (all optional):
#   XEN_SRC_CACHE   Xen source cache, shared with shim/xen/build-xen.sh
#                   (default: <repo>/build/xen-src).  Holds the output of
#                   "apt-get source xen/bookworm".  This script only ever
#                   adds to it; the unpacked tree is never modified.
#   XEN_SRC_DIR     Use this unpacked Xen source tree instead of looking
#                   in XEN_SRC_CACHE.
#   XL_BUILD_DIR    Output directory (default: <repo>/build/xl).
#   XL_LIBEXEC_BIN  Where the patched xl looks for xl-CMD programs
#                   (default: Debian's LIBEXEC_BIN, /usr/lib/xen-X.Y/bin,
#                   which is also where Debian installs the real xl).
#   JOBS            Parallel compiles (default 2; keep it <= 2 in CI).
#   CC              C compiler (default gcc).
#
# Outputs, in XL_BUILD_DIR:
#   xl            patched xl, looks for xl-CMD in XL_LIBEXEC_BIN
#   xl-testdir    identical, except it looks in XL_BUILD_DIR/test-libexec
#                 (used by test-xl-iomap.sh; never install it)
#   xl-stock      unpatched xl built the same way (reference for tests)
#   build-info    what was built, from what, and how long it took

set -eu

start=$(date +%s)

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
patch_file="$here/0001-xl-exec-external-subcommands.patch"

: "${XEN_SRC_CACHE:=$repo/build/xen-src}"
: "${XL_BUILD_DIR:=$repo/build/xl}"
: "${JOBS:=2}"
: "${CC:=gcc}"

log() { printf 'build-xl: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ -f "$patch_file" ] || die "missing $patch_file"

# ---------------------------------------------------------------------------
# 1. Build dependencies.
#
# libxen-dev: libxl/libxlutil/libxentoollog headers and .so links (the
#             target library).
# libyajl-dev: libxl_json.h includes <yajl/...>; xl links -lyajl.
# (uuid-dev is not needed: libxl_uuid.h only includes <uuid/uuid.h> for
# LIBXL_API_VERSION < 0x040700.  Checked with gcc -M + dpkg -S.)
# gcc, libc6-dev: the compiler and C library headers.
# patch:      applies the patch to our copy of tools/xl.
# Fetching the source additionally needs dpkg-dev (dpkg-source), which
# brings xz-utils.

build_pkgs="gcc libc6-dev libxen-dev libyajl-dev patch"

missing_pkgs() {
    for p in "$@"; do
        st=$(dpkg-query -W -f '${db:Status-Abbrev}' "$p" 2>/dev/null || true)
        case "$st" in
        ii*) ;;
        *) printf '%s ' "$p" ;;
        esac
    done
}

apt_updated=
apt_install() {
    if [ "$(id -u)" != 0 ]; then
        die "missing packages: $* (run as root, or install them)"
    fi
    if [ -z "$apt_updated" ]; then
        log "apt-get update"
        apt-get update -qq
        apt_updated=1
    fi
    log "installing: $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "$@" >/dev/null
}

m=$(missing_pkgs $build_pkgs)
[ -z "$m" ] || apt_install $m

# ---------------------------------------------------------------------------
# 2. Xen source (pristine, shared with shim/xen/build-xen.sh).

find_src() {
    for d in "$XEN_SRC_CACHE"/xen-4.17*/ "$XEN_SRC_CACHE"/; do
        if [ -f "$d/tools/xl/xl.c" ] && [ -f "$d/tools/xl/Makefile" ]; then
            (cd "$d" && pwd)
            return 0
        fi
    done
    return 1
}

have_deb_src() {
    grep -rqsE '^[[:space:]]*(deb-src|Types:.*deb-src)' \
        /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null
}

enable_deb_src() {
    f=/etc/apt/sources.list.d/iomapd-deb-src.sources
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        # Same archives as the binary packages, source only.
        sed -e 's/^Types:.*/Types: deb-src/' \
            /etc/apt/sources.list.d/debian.sources > "$f"
    else
        cat > "$f" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
    log "enabled deb-src in $f"
    apt_updated=
}

fetch_src() {
    [ "$(id -u)" = 0 ] || die "no Xen source in $XEN_SRC_CACHE (run as root to fetch it)"
    m=$(missing_pkgs dpkg-dev)
    [ -z "$m" ] || apt_install $m
    have_deb_src || enable_deb_src
    if [ -z "$apt_updated" ]; then
        log "apt-get update"
        apt-get update -qq
        apt_updated=1
    fi
    # Unpack in a scratch directory and move into place afterwards, so
    # that nobody ever sees a half-unpacked tree.
    tmp=$(mktemp -d "$XEN_SRC_CACHE/.fetch.XXXXXX")
    # Let apt's sandbox user write there (avoids a warning).
    chown _apt "$tmp" 2>/dev/null || true
    log "apt-get source xen/bookworm (into $XEN_SRC_CACHE)"
    (cd "$tmp" && apt-get source -qq xen/bookworm >/dev/null) ||
        { rm -rf "$tmp"; die "apt-get source xen/bookworm failed"; }
    for f in "$tmp"/* "$tmp"/.[!.]*; do
        [ -e "$f" ] || continue
        b=$(basename "$f")
        [ -e "$XEN_SRC_CACHE/$b" ] || mv "$f" "$XEN_SRC_CACHE/$b"
    done
    rm -rf "$tmp"
}

if [ -n "${XEN_SRC_DIR:-}" ]; then
    src=$(cd "$XEN_SRC_DIR" && pwd)
    [ -f "$src/tools/xl/xl.c" ] || die "XEN_SRC_DIR=$src has no tools/xl/xl.c"
else
    mkdir -p "$XEN_SRC_CACHE"
    # Serialise fetching with anyone else using the same cache and the
    # same lock file.
    exec 9>"$XEN_SRC_CACHE/.lock"
    flock 9
    src=$(find_src) || { fetch_src; src=$(find_src) ||
        die "no usable Xen tree in $XEN_SRC_CACHE after fetching"; }
    flock -u 9
    exec 9>&-
fi
log "Xen source: $src"
fetched=$(date +%s)

# ---------------------------------------------------------------------------
# 3. Private copy of tools/xl, patched.  The cached tree is read-only to us.

rm -rf "$XL_BUILD_DIR/src" "$XL_BUILD_DIR/obj"
mkdir -p "$XL_BUILD_DIR/src/stock" "$XL_BUILD_DIR/obj" \
    "$XL_BUILD_DIR/include/xen-tools" "$XL_BUILD_DIR/test-libexec"
cp "$src"/tools/xl/*.c "$src"/tools/xl/*.h "$XL_BUILD_DIR/src/"
cp "$src"/tools/xl/xl.c "$XL_BUILD_DIR/src/stock/"
# xl_cmdtable.c wants <xen-tools/libs.h>, which is not installed.
cp "$src"/tools/include/xen-tools/*.h "$XL_BUILD_DIR/include/xen-tools/"

# The patch is against the Xen tree (a/tools/xl/xl.c); our copy is flat.
patch -s -p3 -d "$XL_BUILD_DIR/src" --no-backup-if-mismatch < "$patch_file" ||
    die "patch does not apply to $src"

# ---------------------------------------------------------------------------
# 4. Configuration, as Debian's ./configure would produce it.
#    (Checked against the strings in Debian's /usr/lib/xen-4.17/bin/xl.)

xenver=$(dpkg-query -W -f '${Version}' libxen-dev | sed -E 's/^([0-9]+\.[0-9]+).*/\1/')
: "${XL_LIBEXEC_BIN:=/usr/lib/xen-$xenver/bin}"

cat > "$XL_BUILD_DIR/include/config.h" <<EOF
/* Generated by json-api/xl/build-xl.sh: Debian 12 paths for xl. */
#define XEN_CONFIG_DIR "/etc/xen"
#define XEN_SCRIPT_DIR "/etc/xen/scripts"
#define XEN_LOCK_DIR "/var/lock"
#define XEN_DUMP_DIR "/var/lib/xen/dump"
#define LIBEXEC_BIN "/usr/lib/xen-$xenver/bin"
#define XENFIRMWAREDIR "/usr/lib/xen-$xenver/boot"
#define HAVE_YAJL_YAJL_VERSION_H 1
EOF

# Roughly the flags tools/Rules.mk + tools/xl/Makefile use, plus Debian's
# hardening flags.
cflags="-std=gnu99 -O2 -g -fno-strict-aliasing -Wall -Wstrict-prototypes"
cflags="$cflags -Wno-unused-but-set-variable"
cflags="$cflags -Wno-unused-local-typedefs -Wno-format-zero-length"
cflags="$cflags -Wmissing-declarations -Wformat-nonliteral -Wshadow -Werror"
cflags="$cflags -fPIC -pthread -D__XEN_TOOLS__"
cflags="$cflags -D__XEN_INTERFACE_VERSION__=__XEN_LATEST_INTERFACE_VERSION__"
cflags="$cflags -D_FILE_OFFSET_BITS=64 -D_LARGEFILE_SOURCE -D_LARGEFILE64_SOURCE"
cflags="$cflags -I$XL_BUILD_DIR/src -I$XL_BUILD_DIR/include -include $XL_BUILD_DIR/include/config.h"
if command -v dpkg-buildflags >/dev/null 2>&1; then
    cflags="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS) $cflags"
    ldflags=$(dpkg-buildflags --get LDFLAGS)
else
    ldflags=
fi
libs="-lxlutil -lxenlight -lxentoollog -lyajl -pthread"

# ---------------------------------------------------------------------------
# 5. Compile (at most $JOBS at a time) and link.

cd "$XL_BUILD_DIR"
{
    for f in src/*.c; do
        o=obj/$(basename "$f" .c).o
        printf '%s\n' "$cflags -DXL_EXTERNAL_CMD_DIR='\"$XL_LIBEXEC_BIN\"' -c $f -o $o"
    done
    printf '%s\n' "$cflags -DXL_EXTERNAL_CMD_DIR='\"$XL_BUILD_DIR/test-libexec\"' -c src/xl.c -o obj/xl-testdir.o"
    printf '%s\n' "$cflags -c src/stock/xl.c -o obj/xl-stock.o"
} > obj/commands

# Each line is one compiler invocation (xargs strips the single quotes
# around the string-valued -D options).  Paths must not contain spaces.
# shellcheck disable=SC2086
xargs -P "$JOBS" -L 1 -- "$CC" < obj/commands ||
    die "compilation failed"

common=$(ls obj/*.o | grep -v -e '/xl\.o$' -e '/xl-testdir\.o$' -e '/xl-stock\.o$')
# shellcheck disable=SC2086
{
    $CC $ldflags -o xl obj/xl.o $common $libs
    $CC $ldflags -o xl-testdir obj/xl-testdir.o $common $libs
    $CC $ldflags -o xl-stock obj/xl-stock.o $common $libs
} || die "link failed"

end=$(date +%s)
cat > build-info <<EOF
source: $src
patch: $patch_file
libxen-dev: $(dpkg-query -W -f '${Version}' libxen-dev)
xl external command dir: $XL_LIBEXEC_BIN
xl-testdir external command dir: $XL_BUILD_DIR/test-libexec
fetch/setup seconds: $((fetched - start))
compile+link seconds: $((end - fetched))
total seconds: $((end - start))
EOF
log "built $XL_BUILD_DIR/xl (external commands from $XL_LIBEXEC_BIN)"
log "setup $((fetched - start))s, compile+link $((end - fetched))s, total $((end - start))s"
