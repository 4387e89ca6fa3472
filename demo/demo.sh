#!/bin/sh
# make demo: a staged upgrade on loopback, from keys to verified downloads, in protocol version 2
# (offline roots sign a keyring, the tracker's hint key is certified, the release is bound to its peers).
set -eu

B=${UG_BUILD:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d /tmp/upgate-demo.XXXXXX)
NODE_PID=
HTTP_PID=

cleanup() {
    rc=$?
    if [ -n "$NODE_PID" ]; then kill "$NODE_PID" 2>/dev/null; wait "$NODE_PID" 2>/dev/null || true; fi
    if [ -n "$HTTP_PID" ]; then kill "$HTTP_PID" 2>/dev/null; wait "$HTTP_PID" 2>/dev/null || true; fi
    rm -rf "$W"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { # a port nothing listens on right now
    p=$(( 20000 + $$ % 20000 ))
    while busybox nc -z 127.0.0.1 "$p" 2>/dev/null; do p=$((p + 1)); done
    echo "$p"
}

echo "== keys: three roots (offline, two must sign), release and certificate keys (offline),"
echo "   hint (tracker), issuer (login service), one per peer"
cd "$W"
for k in root-a root-b root-c release cert hint issuer client; do "$B/upgate-keys" gen "$k"; done
mkdir -p www/keys
HTTP_PORT=$(free_port)
busybox httpd -f -p "127.0.0.1:$HTTP_PORT" -h www &
HTTP_PID=$!

echo "== keyring 1: written once, signed by two root holders on their own machines, combined, published"
"$B/upgate-keys" keyring --kv 1 --ttl 31536000 --root root-a.pub --root root-b.pub --root root-c.pub \
    --root-threshold 2 --release release.pub --cert cert.pub \
    --url "http://127.0.0.1:$HTTP_PORT/keys/" --out 1.body | sed 's/^/   /'
"$B/upgate-keys" sign --key root-a.key --in 1.body --out a.sig > /dev/null
"$B/upgate-keys" sign --key root-b.key --in 1.body --out b.sig > /dev/null
"$B/upgate-keys" combine --in 1.body --sig a.sig --sig b.sig --out www/keys/1.keyring | sed 's/^/   /'
"$B/upgate-keys" verify www/keys/1.keyring --root root-a.pub --root root-b.pub --root root-c.pub \
    --threshold 2 --anchor-kv 1 | sed 's/^/   /'

echo "== the tracker's hint key, certified for 90 days under keyring 1"
"$B/upgate-keys" cert --hint hint.pub --serial 1 --keyring www/keys/1.keyring --ttl 7776000 --tracker demo-1 \
    --key cert.key --out hint.cert | sed 's/^/   /'

echo "== release 2.0.0: a package, served by a local HTTP server, its manifest bound to app, platform"
echo "   and channel (version 2), with a delta from 1.4.0 (the installed app-1.4.0.bin, 8 kB changed"
echo "   and 4 kB added), and a version 1 manifest of the same package for older peers"
head -c 300000 /dev/urandom > app-1.4.0.bin
{ head -c 100000 app-1.4.0.bin; head -c 8192 /dev/urandom; tail -c +108193 app-1.4.0.bin; head -c 4096 /dev/urandom; } \
    > www/app-2.0.0.bin
"$B/upgate-keys" release --app demo --plat linux-x86_64 --chan stable --seq 1 --version 2.0.0 \
    --file www/app-2.0.0.bin --url "http://127.0.0.1:$HTTP_PORT/app-2.0.0.bin" --ttl 86400 \
    --delta-from app-1.4.0.bin=1.4.0 \
    --key release.key --keyring www/keys/1.keyring --out release.manifest2 | sed 's/^/   /'
"$B/upgate-keys" show release.manifest2 | sed 's/^/   /'
"$B/upgate-keys" release --key release.key --version 2.0.0 --file www/app-2.0.0.bin \
    --url "http://127.0.0.1:$HTTP_PORT/app-2.0.0.bin" --ttl 86400 --out release.manifest

echo "== regions: a small GeoIP database placing 127.0.1.0/24 in CN-BJ (Beijing)"
perl "$ROOT/tests/mkgeo.pl" geo.mmdb

echo "== tracker: upgate-node with the example policy (docs/example-policy.yaml), plus the keyring,"
echo "   the certificate and the version 2 manifest (docs/policy-v2-extensions.md)"
sed -e 's|^  issuers: \[issuer.pub\]|  issuers: [issuer.pub]\n  keyring: www/keys/1.keyring\n  hint_cert: hint.cert|' \
    -e 's|^release: release.manifest$|release: release.manifest\nrelease_v2: release.manifest2|' \
    "$ROOT/docs/example-policy.yaml" > policy.yaml
grep -q '^release_v2:' policy.yaml && grep -q '^  hint_cert:' policy.yaml
"$B/upgate-node" --listen 127.0.0.1:0 --plugin "$B/upgate.so" --policy policy.yaml --workers 2 \
    > node.out 2> node.err &
NODE_PID=$!
i=0
until grep -q ready node.out 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 100 ] || { cat node.err; exit 1; }; sleep 0.05
done
PORT=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' node.out | head -n 1)
sed 's/^/   /' node.out

echo "== 30 peers at version 1.4.0, protocol version 2 (three pinned roots, two must sign; each keeps a"
echo "   state file): uids 1-20 from 127.0.1.x (CN-BJ), 21-30 from 127.0.2.x (DE); uid 13 says no;"
echo "   all but uid 10 give their installed file (--installed), so an offered delta patches it"
printf '   %-4s %-12s %-9s %s\n' uid from result detail
for uid in $(seq 1 30); do
    if [ "$uid" -le 20 ]; then from=127.0.1.$uid; else from=127.0.2.$uid; fi
    "$B/upgate-keys" cred --issuer issuer.key --uid "$uid" --pub client.pub --ttl 3600 --out "c$uid.cred"
    set +e
    out=$("$B/upgate-peer" --tracker "127.0.0.1:$PORT" --bind "$from" --uid "$uid" --version 1.4.0 \
        --key client.key --cred "c$uid.cred" --root root-a.pub --root root-b.pub --root root-c.pub \
        --threshold 2 --anchor-kv 1 --keyring-url "http://127.0.0.1:$HTTP_PORT/keys/" --state "peer$uid.state" \
        --app demo --plat linux-x86_64 --chan stable \
        $([ "$uid" -eq 13 ] && echo --no || echo --yes) --out "peer$uid.bin" --timeout 10 \
        $([ "$uid" -eq 10 ] || echo --installed app-1.4.0.bin) 2>&1)
    rc=$?
    set -e
    if [ $rc -eq 0 ] && [ -f "peer$uid.bin" ] && cmp -s "peer$uid.bin" www/app-2.0.0.bin; then
        result="upgraded"; detail="2.0.0 verified, $(printf '%s' "$out" | grep '^via ')"
    elif [ $rc -eq 0 ] && printf '%s' "$out" | grep -q "keeping"; then
        result="declined"; detail=$(printf '%s' "$out" | tail -n 1)
    elif [ $rc -eq 0 ]; then
        result="waits"; detail=$(printf '%s' "$out" | grep "no upgrade now" | tail -n 1)
    else
        result="FAILED"; detail=$(printf '%s' "$out" | tail -n 1)
    fi
    printf '   %-4s %-12s %-9s %s\n' "$uid" "$from" "$result" "$detail"
done

echo "== a version 1 peer (pinned hint and release keys) on the same port: uid 1 again, offered the"
echo "   same release (its grant is sticky)"
"$B/upgate-peer" --tracker "127.0.0.1:$PORT" --bind 127.0.1.1 --uid 1 --version 1.4.0 --key client.key \
    --cred c1.cred --hint-pub hint.pub --release-pub release.pub --yes --out v1-peer1.bin --timeout 10 2>&1 | sed 's/^/   /'
cmp -s v1-peer1.bin www/app-2.0.0.bin

echo "== uid 1's state file: the keyring it walked to, the release seq it verified, the signed clock"
sed 's/^\(keyring .\{40\}\).*/\1.../; s/^/   /' peer1.state

echo "== what the tracker counted"
kill -USR1 "$NODE_PID"; sleep 0.3
grep stats: node.out | tail -n 1 | tr ' ' '\n' | sed -n 's/^\([a-z_]*=\)/   \1/p'
echo "== expected: uids 1, 4, 7, 10 (1 mod 3, in CN-BJ) upgrade and 13 declines (each REPORTs it);"
echo "   1, 4 and 7 by delta (offers_delta, reports_via_delta), 10 by the full package; 16 and 19 find"
echo "   the quota spent; everyone else waits"
n=$(ls peer*.bin 2>/dev/null | wc -l)   # (v1-peer1.bin is not counted)
echo "   $n peers upgraded"
echo "== upgate-ctl --policy policy.yaml status: the same through the control socket"
"$B/upgate-ctl" --policy policy.yaml status | sed 's/^./   &/'
[ "$n" -eq 4 ]

echo "== forecast: upgate-sim runs this policy on 100,000 simulated peers (2 logins a day, 5 minutes online,"
echo "   two thirds from CN-BJ); the real plugin decides, on a simulated clock"
"$B/upgate-sim" --policy policy.yaml --peers 100000 --versions 1.4.0 \
    --regions CN-BJ=2,DE=1 --logins 2 --session 5m --quiet \
    --plot "$B/demo-forecast.svg" | sed 's/^/   /'
