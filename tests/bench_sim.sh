#!/bin/sh
# make bench's upgate-sim row: CPU per simulated decision for 1,000,000 peers
# over one simulated day (1 h retry), against issue 27's goal of 300 ns.
set -eu
B=${UG_BUILD:-build}
W=$(mktemp -d /tmp/ugbench-sim.XXXXXX)
trap 'rm -rf "$W"' EXIT
cd "$W"
for k in release hint issuer; do "$B/upgate-keys" gen "$k" >/dev/null; done
head -c 1000000 /dev/zero > app.bin
"$B/upgate-keys" release --key release.key --version 2.0.0 --file app.bin --url https://dl1.example.net/app \
    --url https://dl2.example.net/app --ttl 2592000 --out release.manifest >/dev/null
# a canary by uid, then a sticky percentage under a rate: what a rollout looks like
cat > policy.yaml <<'POLICY'
keys: {hint: hint.key, issuers: [issuer.pub]}
release: release.manifest
targets: ["1.4.0", "<1.3"]
state: state
retry: 3600
cookie: never
stages:
  - name: canary
    uid_mod: {div: 1000, rem: 7}
    quota: 500
  - name: ramp
    percent: 20
    rate: 20
POLICY
printf 'bench-sim: %s, commit %s, load average %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" \
    "${UG_BENCH_COMMIT:-unknown}" "$(cut -d' ' -f1-3 /proc/loadavg)"
"$B/upgate-sim" --policy policy.yaml --peers 1000000 --versions 1.4.0=70,1.2.0=30 --days 1 --bench
