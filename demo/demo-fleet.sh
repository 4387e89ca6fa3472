#!/bin/sh
# make demo-fleet: three trackers sharing one rollout through one Redis (docs/fleet.md).
set -eu

B=$(cd "${UG_BUILD:-build}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d /tmp/upgate-fleet.XXXXXX)
PIDS=
REDIS_PID=
HTTP_PID=

cleanup() {
    rc=$?
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    if [ -n "$HTTP_PID" ]; then kill "$HTTP_PID" 2>/dev/null; wait "$HTTP_PID" 2>/dev/null || true; fi
    if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null || true; fi
    rm -rf "$W"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    p=$(( 20000 + $$ % 20000 ))
    while busybox nc -z 127.0.0.1 "$p" 2>/dev/null; do p=$((p + 1)); done
    echo "$p"
}

ctl() { # TRACKER ARGS...
    t=$1; shift
    "$B/upgate-ctl" --socket "$W/$t.ctl" "$@"
}

echo "== keys, a 300 kB package served over HTTP, its signed manifest"
cd "$W"
for k in release hint issuer client; do "$B/upgate-keys" gen "$k"; done
mkdir www
head -c 300000 /dev/urandom > www/app-2.0.0.bin
HTTP_PORT=$(free_port)
busybox httpd -f -p "127.0.0.1:$HTTP_PORT" -h www &
HTTP_PID=$!
"$B/upgate-keys" release --key release.key --version 2.0.0 --file www/app-2.0.0.bin \
    --url "http://127.0.0.1:$HTTP_PORT/app-2.0.0.bin" --ttl 86400 --out release.manifest >/dev/null

echo "== Redis on a Unix socket (AOF, fsync on every write)"
redis-server --port 0 --unixsocket "$W/redis.sock" --unixsocketperm 700 --dir "$W" --appendonly yes \
    --appendfsync always --save "" --logfile "$W/redis.log" &
REDIS_PID=$!
i=0
until redis-cli -s "$W/redis.sock" ping 2>/dev/null | grep -q PONG; do
    i=$((i + 1)); [ $i -lt 100 ] || { cat redis.log; exit 1; }; sleep 0.05
done
echo "   redis-server pid $REDIS_PID at $W/redis.sock"

echo "== three trackers a, b and c: the same policy, one quota of 10 for the whole fleet"
for t in a b c; do
    cat > "$t.yaml" <<EOF
keys: {hint: hint.key, issuers: [issuer.pub]}
release: release.manifest
targets: ["1.4.0"]
state: state-$t
retry: 60
cookie: never
fleet: {redis: "unix://$W/redis.sock", tracker: $t}
stages:
  - name: third
    uid_mod: {div: 3, rem: 1}
    quota: 10
EOF
    "$B/upgate-node" --listen 127.0.0.1:0 --plugin "$B/upgate.so" --policy "$t.yaml" --workers 1 \
        --control "$W/$t.ctl" > "$t.out" 2> "$t.err" &
    PIDS="$PIDS $!"
done
for t in a b c; do
    i=0
    until grep -q ready "$t.out" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 100 ] || { cat "$t.err"; exit 1; }; sleep 0.05
    done
    eval "PORT_$t=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$t.out" | head -n 1)"
done
sleep 1 # the first heartbeat and leases
echo "   a on port $PORT_a, b on $PORT_b, c on $PORT_c"

peer() { # UID TRACKER-PORT
    "$B/upgate-keys" cred --issuer issuer.key --uid "$1" --pub client.pub --ttl 3600 --out "c$1.cred"
    "$B/upgate-peer" --tracker "127.0.0.1:$2" --uid "$1" --version 1.4.0 --key client.key --cred "c$1.cred" \
        --hint-pub hint.pub --release-pub release.pub --yes --out "peer$1.bin" --timeout 10 2>&1 | tail -n 1
}

echo "== 60 peers at 1.4.0, skewed over the trackers (most to a); uids 1 mod 3 are eligible"
printf '   %-4s %-8s %s\n' uid tracker result
for uid in $(seq 1 60); do
    case $((uid % 10)) in 0) t=c; p=$PORT_c ;; 1|2) t=b; p=$PORT_b ;; *) t=a; p=$PORT_a ;; esac
    printf '   %-4s %-8s %s\n' "$uid" "$t" "$(peer "$uid" "$p")"
done
n=$(ls peer*.bin 2>/dev/null | wc -l)
echo "   $n peers upgraded: the fleet's quota of 10, not 10 per tracker"

first=$(ls peer*.bin | head -n 1 | sed 's/peer\([0-9]*\)\.bin/\1/')
rm -f "peer$first.bin"
echo "== uid $first, granted already, asks tracker c: offered again, nothing spent"
printf '   %s\n' "$(peer "$first" "$PORT_c")"

echo "== upgate-ctl halt on c; a stops offering too"
ctl c halt default --why "demo: crash reports" | sed 's/^/   /'
sleep 1
ctl a status | sed 's/^/   /'

echo "== upgate-ctl fleet status (asked of a)"
ctl a fleet status | sed 's/^/   /'
[ "$n" -eq 10 ]
