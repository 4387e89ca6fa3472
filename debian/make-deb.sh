#!/bin/sh
# make deb: builds the Debian packages from a copy of the tree, then runs lintian.
# usage: sh debian/make-deb.sh OUT   (the .deb, .buildinfo and .changes land in OUT)
# The copy keeps dpkg-buildpackage's clean step (make clean) away from build/
# and its results out of the tree's parent folder.
set -eu
out=${1:?usage: make-deb.sh OUT}
start=$(date +%s)
version=$(dpkg-parsechangelog -S Version)
src=$out/upgate-$version

rm -rf "$out"
mkdir -p "$src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # tracked and new files, not what .gitignore names (build/)
    git ls-files -co --exclude-standard | while IFS= read -r f; do
        [ -e "$f" ] && printf '%s\0' "$f"
    done | xargs -0 cp --parents -t "$src"
else
    tar -cf - --exclude=./build --exclude=./.git . | tar -xf - -C "$src"
fi

echo "  DEB     $out (dpkg-buildpackage -us -uc -b)"
log=$out/build.log
if ! (cd "$src" && DEB_BUILD_OPTIONS="parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}" \
        dpkg-buildpackage -us -uc -b) >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "make deb: dpkg-buildpackage failed; the whole log is $log" >&2
    exit 1
fi
built=$(date +%s)

changes=$(ls "$out"/upgate_*.changes)
echo "  LINTIAN $changes"
lintian --fail-on error --tag-display-limit 0 "$changes"
end=$(date +%s)
ls "$out"/*.deb | sed 's/^/  built   /'
echo "  TIME    $((built - start)) s to build, $((end - built)) s for lintian"
