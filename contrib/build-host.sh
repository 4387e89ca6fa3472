#!/bin/sh
# Builds one pinned real host (../shared/hosts) with its contrib patch, linked with libupgate-host: `make hosts`.
#
#   build-host.sh NAME TARBALLS OUT INCLUDE LIBS [LINKFLAGS]
#
# NAME is opentracker or n2n. The tarball's checksum is checked against
# TARBALLS/SHA256SUMS first; the source is unpacked into OUT/src/NAME,
# patched with contrib/NAME/upgate.patch (patch -p1), built with the notes of
# TARBALLS/README.md, and the program is copied to OUT (opentracker,
# supernode). INCLUDE holds upgate/host.h and upgate/upgate_plugin.h; LIBS
# links libupgate-host (its archive and what it needs); LINKFLAGS go to the
# link only (a sanitized build: the hosts' own code stays as its authors
# build it, the sanitizers' runtime comes in for libupgate-host and the
# plugin). The full build log is OUT/src/NAME.log.
set -eu

name=$1 tarballs=$2 out=$3 include=$4 libs=$5 link=${6:-}
here=$(cd "$(dirname "$0")" && pwd)
case $name in
opentracker) prefix=opentracker- prog=opentracker ;;
n2n) prefix=n2n- prog=supernode ;;
*) echo "build-host.sh: no host named $name" >&2; exit 2 ;;
esac

tarball=$(cd "$tarballs" && ls ${prefix}*.tar.gz 2>/dev/null | head -n 1)
[ -n "$tarball" ] || { echo "build-host.sh: no ${prefix}*.tar.gz in $tarballs" >&2; exit 1; }
line=$(grep " $tarball\$" "$tarballs/SHA256SUMS" || true)
[ -n "$line" ] || { echo "build-host.sh: $tarball is not in $tarballs/SHA256SUMS" >&2; exit 1; }
(cd "$tarballs" && printf '%s\n' "$line" | sha256sum -c --quiet -) ||
    { echo "build-host.sh: $tarballs/$tarball does not match its SHA256SUMS line" >&2; exit 1; }

mkdir -p "$out/src"
src=$out/src/$name
log=$out/src/$name.log
rm -rf "$src" "$src.tmp"
mkdir "$src.tmp"
tar -xzf "$tarballs/$tarball" -C "$src.tmp"
mv "$src.tmp"/* "$src" && rmdir "$src.tmp"
(cd "$src" && patch -p1 --quiet < "$here/$name/upgate.patch") >"$log" 2>&1 ||
    { cat "$log" >&2; echo "build-host.sh: contrib/$name/upgate.patch does not apply" >&2; exit 1; }

# The hosts' own makefiles append to CFLAGS and LDFLAGS from the environment.
cflags="-I$include"
case $name in
opentracker)
    # libowfat 0.32 (Debian) has no iob_init_autofree: WANT_NO_AUTO_FREE
    (cd "$src" && CFLAGS="$cflags" LDFLAGS="$libs $link" make PREFIX=/usr LIBOWFAT_HEADERS=/usr/include \
        LIBOWFAT_LIBRARY=/usr/lib FEATURES="-DWANT_FULLSCRAPE -DWANT_NO_AUTO_FREE" STRIP=true opentracker) \
        >>"$log" 2>&1 || { tail -n 30 "$log" >&2; exit 1; }
    cp "$src/opentracker" "$out/opentracker.tmp"
    ;;
n2n)
    (cd "$src" && ./autogen.sh && ./configure CFLAGS="-g -O2 $cflags" LDFLAGS="$link" &&
        make supernode LDLIBS_EXTRA="$libs") >>"$log" 2>&1 || { tail -n 30 "$log" >&2; exit 1; }
    cp "$src/supernode" "$out/supernode.tmp"
    ;;
esac
mv "$out/$prog.tmp" "$out/$prog"
