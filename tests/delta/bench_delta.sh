#!/bin/sh
# make bench's delta rows: realistic old/new pairs, the zstd CLI and bsdiff
# anchors measured here, the rest by build/bench-delta (tests/delta/bench_delta.c).
# Pairs: upgate-node and upgate.so at the two pinned commits (delta/delta.mk
# builds them into UG_DELTA_PAIRS/REV/), and one Debian binary whose apt cache
# holds another version than the one installed (the installed file is the
# old one, the cached package's the new one).
set -eu
B=${UG_BUILD:-build}
PAIRS=${UG_DELTA_PAIRS:-$B/bench-delta-pairs}
set -- ${UG_DELTA_REVS:-1762fb3 f9742f5}
OLD_REV=$1 NEW_REV=$2
CACHE=${UG_DELTA_APT_CACHE:-/var/cache/apt/archives}
# Debian packages tried first, in order; otherwise the largest candidate.
PREFER=${UG_DELTA_DEB_PREFER:-libssl3 libperl5.36 libgnutls30}
W=$(mktemp -d /tmp/ugbench-delta.XXXXXX)
trap 'rm -rf "$W"' EXIT

# The CLI's window for --long: highbit(max size) + 1, as its --patch-from picks.
cli_wlog() {
    n=$(( $1 > $2 ? $1 : $2 )) w=0
    while [ "$n" -gt 0 ]; do n=$((n / 2)) w=$((w + 1)); done
    echo $(( w < 10 ? 10 : w ))
}

args=
add_pair() { # NAME OLD NEW
    o=$(stat -c %s "$2") n=$(stat -c %s "$3")
    full=$(zstd -q -19 -c "$3" | wc -c)
    cli=$(zstd -q -19 --long="$(cli_wlog "$o" "$n")" --patch-from="$2" -c "$3" 2>/dev/null | wc -c)
    bsd=0
    if command -v bsdiff >/dev/null && bsdiff "$2" "$3" "$W/$1.bsdiff"; then bsd=$(stat -c %s "$W/$1.bsdiff"); fi
    args="$args $1 $2 $3 $full $cli $bsd"
    fleet="$1 $2 $3" # the fleet rows run on the last pair: the Debian one when there is one
}

for f in upgate-node upgate.so; do
    if [ -f "$PAIRS/$OLD_REV/$f" ] && [ -f "$PAIRS/$NEW_REV/$f" ]; then
        echo "pair $f: this repository at $OLD_REV -> $NEW_REV"
        add_pair "$f" "$PAIRS/$OLD_REV/$f" "$PAIRS/$NEW_REV/$f"
    else
        echo "pair $f: unavailable (no build of $OLD_REV and $NEW_REV in $PAIRS)"
    fi
done

# Packages installed at another version than the apt cache holds:
# "NAME INSTALLED CACHED FILE.deb" lines.
candidates() {
    dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Version}\n' 2>/dev/null | awk '$1 == "ii" { print $2, $3 }' > "$W/installed"
    ls "$CACHE" 2>/dev/null | sed -n 's/\.deb$//p' | awk -F_ '{ v = $2; gsub("%3a", ":", v); print $1, v, $0 ".deb" }' |
        awk 'NR == FNR { iv[$1] = $2; next } ($1 in iv) && iv[$1] != $2 { print $1, iv[$1], $2, $3 }' "$W/installed" -
}

# The ELF files of 1 to 8 MiB a cached package ships that are installed at
# the same path: "SIZE PATH" lines, largest first.
elf_files() { # FILE.deb
    dpkg-deb -c "$CACHE/$1" 2>/dev/null | awk '$1 ~ /^-/ && $3 >= 1048576 && $3 <= 8388608 { f = $6; sub("^\\./", "/", f); print $3, f }' |
        while read -r sz f; do
            [ -f "$f" ] && [ ! -L "$f" ] && [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = "177ELF" ] && echo "$sz $f"
        done | sort -rn
}

deb_pair() {
    candidates > "$W/cands"
    for p in $PREFER; do
        line=$(awk -v p="$p" '$1 == p' "$W/cands")
        [ -n "$line" ] || continue
        set -- $line
        f=$(elf_files "$4" | head -n 1)
        [ -n "$f" ] && { echo "$1 $2 $3 $4 ${f#* }"; return; }
    done
    while read -r name iv cv deb; do
        elf_files "$deb" | head -n 1 | sed "s|^|$name $iv $cv $deb |"
    done < "$W/cands" | sort -k5,5rn | head -n 1 | awk '{ print $1, $2, $3, $4, $6 }'
}

if command -v dpkg-deb >/dev/null && found=$(deb_pair) && [ -n "$found" ]; then
    set -- $found
    mkdir -p "$W/deb"
    dpkg-deb -x "$CACHE/$4" "$W/deb"
    base=$(basename "$5")
    echo "pair $base: Debian $1, $2 (installed $5) -> $3 (apt cache $4)"
    add_pair "$base" "$5" "$W/deb$5"
else
    echo "pair debian: unavailable (no package in $CACHE at another version than the installed one)"
fi

[ -n "$args" ] || { echo "bench-delta: no pair to measure"; exit 0; }
"$B/bench-delta" "$W" $args
# 200 peers through upgate-node and a loopback mirror, against upgate-sim's forecast (issue 26's goals)
sh "$(dirname "$0")/bench_delta_fleet.sh" $fleet
