#!/bin/sh
# make bench's delta fleet rows (issue 26): a rollout whose peers run 70% the previous release (a delta
# from it is in the manifest) and 30% an older one (none). upgate-sim forecasts the mirror's peak
# bandwidth and bytes with and without deltas; then 200 real peers (upgate-peer, libupgate) go through
# upgate-node and a loopback mirror (tests/httpserv.py --log-sent counts the bytes it wrote), and the
# peer's time by delta is set against its time by the full package.
# usage: bench_delta_fleet.sh NAME OLD NEW   (the pair: OLD is installed at 1.4.0, NEW is 2.0.0)
set -eu
B=${UG_BUILD:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NAME=$1 OLD=$2 NEW=$3
PEERS=200 ON_DELTA=140 PAR=8 TIMED=5
W=$(mktemp -d /tmp/ugbench-fleet.XXXXXX)
NODE_PID= HTTP_PID=
cleanup() {
    [ -z "$NODE_PID" ] || { kill "$NODE_PID" 2>/dev/null; wait "$NODE_PID" 2>/dev/null || true; }
    [ -z "$HTTP_PID" ] || { kill "$HTTP_PID" 2>/dev/null; wait "$HTTP_PID" 2>/dev/null || true; }
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
row() { printf '  %-44s | %10s | %9s | %8s | %-18s | %-17s | %s\n' "fleet ${NAME%%.so*}: $1" "$2" "$3" "$4" "$5" "$6" "$7"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b ? a / b : 0 }'; }
ms() { date +%s%N | cut -c1-13; }

cd "$W"
mkdir www
for k in root release cert hint issuer client; do "$B/upgate-keys" gen "$k" >/dev/null; done
cp "$NEW" www/app.bin
python3 "$ROOT/tests/httpserv.py" --root www --log mirror.log --log-sent > http.port 2>/dev/null &
HTTP_PID=$!
i=0
until [ -s http.port ]; do i=$((i + 1)); [ $i -lt 200 ] || { echo "fleet: no mirror"; exit 1; }; sleep 0.05; done
HP=$(tr -dc 0-9 < http.port)
"$B/upgate-keys" keyring --kv 1 --ttl 864000 --root root.pub --release release.pub --cert cert.pub \
    --key root.key --out www/1.keyring >/dev/null
"$B/upgate-keys" cert --hint hint.pub --serial 1 --keyring www/1.keyring --ttl 864000 --key cert.key \
    --out hint.cert >/dev/null
"$B/upgate-keys" release --app app --plat linux --chan stable --seq 1 --version 2.0.0 --file www/app.bin \
    --url "http://127.0.0.1:$HP/app.bin" --ttl 86400 --delta-from "$OLD=1.4.0" --key release.key \
    --out m.manifest >/dev/null 2>&1 || { echo "fleet $NAME: no delta (not under 60% of the package)"; exit 0; }
P=$(stat -c %s www/app.bin) D=$(stat -c %s www/app.bin.from-1.4.0.delta)
for p in with without; do
    { printf 'keys: {hint: hint.key, issuers: [issuer.pub], keyring: www/1.keyring, hint_cert: hint.cert}\n'
      printf 'state: state-%s\nretry: 120\ncookie: never\nrollouts:\n  - name: r\n    release_v2: m.manifest\n' "$p"
      printf '    targets: ["1.4.0", "1.3.0"]\n'
      [ "$p" = with ] || printf '    deltas: off\n'
      printf '    stages:\n      - name: all\n'; } > "$p.yaml"
done

# the forecast, both policies on the same synthetic peers
"$B/upgate-sim" --policy with.yaml --policy without.yaml --peers $PEERS --versions 1.4.0=70,1.3.0=30 \
    --plat linux --chan stable --days 0.125 --think 0 --accept 1 --fail 0 --speed 100Mbit --csv sim.csv \
    --quiet > sim.out 2>&1 || { cat sim.out; exit 1; }
col() { # POLICY COLUMN: max and sum of the column over the policy's rows
    awk -F, -v p="$1" -v c="$2" 'NR == 1 { for (i = 1; i <= NF; i++) { if ($i == c) k = i; if ($i == "policy") q = i }; next }
        index($q, p) { s += $k; if ($k > m) m = $k } END { printf "%.0f %.0f\n", m, s }' sim.csv
}
set -- $(col with.yaml peak_bps:all); PK_W=$1
set -- $(col without.yaml peak_bps:all); PK_N=$1
set -- $(col with.yaml bytes:m0); BY_W=$2
set -- $(col without.yaml bytes:m0); BY_N=$2

# the real run: upgate-node on the policy with deltas, 200 peers, eight at a time
"$B/upgate-node" --listen 127.0.0.1:0 --plugin "$B/upgate.so" --policy with.yaml --workers 2 > node.out 2> node.err &
NODE_PID=$!
i=0
until grep -q ready node.out 2>/dev/null; do i=$((i + 1)); [ $i -lt 200 ] || { cat node.err; exit 1; }; sleep 0.05; done
PORT=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' node.out | head -n 1)
peer() { # N: one peer, 1.4.0 with the installed file up to ON_DELTA, else 1.3.0
    if [ "$1" -le $ON_DELTA ]; then v=1.4.0 inst="--installed $OLD"; else v=1.3.0 inst=; fi
    "$B/upgate-peer" --key client.key --root root.pub --anchor-kv 1 --app app --plat linux --chan stable \
        --keyring-url "http://127.0.0.1:$HP/keys/" --tries 3 --timeout 10 --yes --tracker "127.0.0.1:$PORT" \
        --uid $((1000 + $1)) --cred "c$1.cred" --version $v --state "s$1" --pad --out "got$1.bin" $inst \
        </dev/null > "p$1.out" 2>&1 && cmp -s "got$1.bin" www/app.bin && rm -f "got$1.bin" && touch "ok$1"
}
for n in $(seq 1 $PEERS); do
    "$B/upgate-keys" cred --issuer issuer.key --uid $((1000 + n)) --pub client.pub --ttl 86400 --out "c$n.cred" >/dev/null
done
# the peer's own time, one at a time: the first TIMED by delta, the last TIMED by the full package
t_delta= t_full=
for n in $(seq 1 $TIMED) $(seq $((PEERS - TIMED + 1)) $PEERS); do
    a=$(ms); peer "$n" || true; b=$(ms)
    if [ "$n" -le $TIMED ]; then t_delta="$t_delta $((b - a))"; else t_full="$t_full $((b - a))"; fi
done
pids=
for n in $(seq $((TIMED + 1)) $((PEERS - TIMED))); do
    peer "$n" &
    pids="$pids $!"
    [ $((n % PAR)) -ne 0 ] || { wait $pids || true; pids=; } # not a bare wait: the node and mirror are children
done
[ -z "$pids" ] || wait $pids || true
OK=$(ls ok* 2>/dev/null | wc -l)
SERVED=$(awk '$1 == "SENT" && $2 !~ /keyring/ { s += $3 } END { printf "%.0f", s }' mirror.log)
median() { echo "$@" | tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
MD=$(median $t_delta) MF=$(median $t_full)
EXPECT=$((ON_DELTA * D + (PEERS - ON_DELTA) * P))

echo
echo "delta fleet: $NAME, package $P B, delta from 1.4.0 $D B; $PEERS peers, 70% on 1.4.0 (delta), 30% on 1.3.0 (none)"
printf '  %-44s | %10s | %9s | %8s | %-18s | %-17s | %s\n' "row" "ours" "versus" "ratio" "versus what" "goal" "verdict"
row "forecast peak bandwidth" "$(awk -v b="$PK_W" 'BEGIN { printf "%.1f Mb/s", b / 1e6 }')" \
    "$(awk -v b="$PK_N" 'BEGIN { printf "%.1f Mb/s", b / 1e6 }')" "$(ratio "$PK_W" "$PK_N")" "deltas: off" "report" ""
row "forecast bytes" "$BY_W B" "$BY_N B" "$(ratio "$BY_W" "$BY_N")" "deltas: off" "report" ""
v=$(awk -v a="$SERVED" -v b="$BY_W" 'BEGIN { d = a / b - 1; print (d < 0 ? -d : d) <= 0.15 ? "ok" : "MISS" }')
row "real bytes / forecast" "$SERVED B" "$BY_W B" "$(ratio "$SERVED" "$BY_W")" "upgate-sim" "within 15%" "$v"
v=$([ "$SERVED" -eq "$EXPECT" ] && [ "$OK" -eq $PEERS ] && echo ok || echo "MISS ($OK of $PEERS peers)")
row "real bytes / peers x sizes" "$SERVED B" "$EXPECT B" "$(ratio "$SERVED" "$EXPECT")" "140 D + 60 P" "= 1" "$v"
row "real bytes / all full" "$SERVED B" "$((PEERS * P)) B" "$(ratio "$SERVED" $((PEERS * P)))" \
    "200 P" "report" ""
row "peer time: delta / full" "$MD ms" "$MF ms" "$(ratio "$MD" "$MF")" "download + hash" "report" \
    "median of $TIMED runs of upgate-peer each"
