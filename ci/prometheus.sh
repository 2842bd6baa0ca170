#!/usr/bin/env bash
# A real Prometheus scrapes a real-mode run, then answers PromQL for the
# operator's health thresholds: checkpoint time under a tenth of the job's
# time, fewer than 10 retries a minute, and the recovery time.
#
# Every engine process of a real-mode run serves `GET /metrics` on loopback
# (node/src/metrics.rs) and the supervisor writes the targets to
# `targets.json` in the run's directory. This script installs Debian's
# `prometheus` package when it is missing, starts it on 127.0.0.1 with its
# data under target/ (scraping every 200 ms a copy of those targets), runs
# one real-mode run of 12 s under crashes, a pause, a partition and
# latency, queries, prints the
# answers, and stops Prometheus by its pid on every exit path.
# Usage: ci/prometheus.sh [SCENARIO] [SEED]   (default word_count 3)
set -euo pipefail
cd "$(dirname "$0")/.."
scenario="${1:-word_count}"
seed="${2:-3}"
dir="$PWD/target/exactsim/prometheus"
rm -rf "$dir"
mkdir -p "$dir/runs" "$dir/data"

if ! command -v prometheus >/dev/null; then
  echo "installing Debian's prometheus package" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # The package may start its own service: this script runs its own.
  $sudo pkill -x prometheus 2>/dev/null || true
fi
RUSTFLAGS= CARGO_TARGET_DIR=target/std cargo build --release -p exactsim-node
cargo build --release --bin exactsim
bin=target/release/exactsim

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
prom=""
run=""
cleanup() {
  [ -z "$prom" ] || { kill "$prom" 2>/dev/null || true; wait "$prom" 2>/dev/null || true; }
  [ -z "$run" ] || { kill "$run" 2>/dev/null || true; wait "$run" 2>/dev/null || true; }
}
trap cleanup EXIT

# The run first, its directory under ours, long enough for many scrapes;
# Prometheus starts with the targets the supervisor wrote (it applies
# targets discovered later only every few seconds).
cat > "$dir/scraped.toml" <<EOF
# recovery's node and network faults over a 12 s safety phase: the
# sources spread the input over most of it, so the job runs long enough
# for many scrapes.
name = "scraped"
crash = 1
pause = 1
partition = 1
latency = 1
swarm = false
safety_ms = 12000
liveness_ms = 60000
EOF
TMPDIR="$dir/runs" "$bin" real --scenario "$scenario" --seed "$seed" --profile "$dir/scraped.toml" \
  --report "$dir/report" > "$dir/run.txt" 2>&1 &
run=$!
targets=""
for _ in $(seq 1 250); do
  targets=$(ls "$dir"/runs/*/targets.json 2>/dev/null | head -1 || true)
  [ -z "$targets" ] || break
  sleep 0.02
done
[ -n "$targets" ] || { cat "$dir/run.txt"; echo "FAIL: the run wrote no targets"; exit 1; }
cp "$targets" "$dir/targets.json"
cat > "$dir/prometheus.yml" <<EOF
global:
  scrape_interval: 200ms
  scrape_timeout: 150ms
scrape_configs:
  - job_name: exactsim
    file_sd_configs:
      - files: ["$dir/targets.json"]
EOF
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
  --web.listen-address="127.0.0.1:$port" > "$dir/prometheus.log" 2>&1 &
prom=$!
api="http://127.0.0.1:$port/api/v1"
wait "$run" || { cat "$dir/run.txt"; echo "FAIL: the real run failed"; exit 1; }
run=""
curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null || { cat "$dir/prometheus.log"; echo "FAIL: prometheus is not ready"; exit 1; }
head -1 "$dir/run.txt"
sleep 1

query() {
  curl -sf "$api/query" --data-urlencode "query=$1" | python3 -c '
import json, sys
d = json.load(sys.stdin)["data"]["result"]
print(d[0]["value"][1] if d else "none")'
}
# Over the whole run (the window covers it; counters reset when a process
# restarts, which increase() allows for).
w="5m"
scraped=$(query "count(count_over_time(up{job=\"exactsim\"}[$w]))")
up_samples=$(query "sum(count_over_time(up{job=\"exactsim\"}[$w]))")
ckpts=$(query "sum(increase(exactsim_checkpoints_completed_total[$w]))")
# Checkpoint time per second of job time, and retries per minute: rates
# over the span the scrapes cover (a rate divides by its whole window).
span=$(query "max(max_over_time(timestamp(up{job=\"exactsim\"})[$w:200ms])) - min(min_over_time(timestamp(up{job=\"exactsim\"})[$w:200ms]))")
ws="$(python3 -c "import sys; print(max(1, int(float(sys.argv[1]))))" "$span")s"
share=$(query "sum(rate(exactsim_checkpoint_time_ms_total[$ws])) / 1000")
retries=$(query "sum(rate(exactsim_retries_total[$ws])) * 60")
restarts=$(query "sum(increase(exactsim_restarts_total[$w]))")
recovery=$(query "max(max_over_time(exactsim_recovery_duration_ms[$w]))")
records=$(query "max(max_over_time(exactsim_records_in_total[$w]))")
echo "prometheus: $scraped targets scraped, $up_samples samples of up over $span s (rates over the last $ws)"
echo "query: sum(increase(exactsim_checkpoints_completed_total[$w])) = $ckpts"
python3 - "$share" "$retries" "$recovery" <<'EOF'
import sys
share, retries, rec = (float(x) if x not in ("none", "NaN") else 0.0 for x in sys.argv[1:4])
print(f"health: checkpoint time share, sum(rate(exactsim_checkpoint_time_ms_total[span])) / 1000 = {share:.3f} ({'met' if share < 0.10 else 'missed'}: < 0.10)")
print(f"health: retries per minute, sum(rate(exactsim_retries_total[span])) * 60 = {retries:.1f} ({'met' if retries < 10 else 'missed'}: < 10)")
print(f"health: recovery time, max(max_over_time(exactsim_recovery_duration_ms)) = {rec:.0f} ms")
EOF
echo "query: restarts = $restarts, records in (max) = $records"
[ "$scraped" != "none" ] && [ "$scraped" -ge 3 ] || { echo "FAIL: prometheus scraped fewer than 3 engine nodes"; exit 1; }
[ "$ckpts" != "none" ] || { echo "FAIL: no checkpoint counted by prometheus"; exit 1; }
# Every query of the shipped Grafana dashboard is valid PromQL that this
# Prometheus answers.
python3 - "$api" docs/grafana-dashboard.json <<'EOF'
import json, sys, urllib.parse, urllib.request
api, path = sys.argv[1], sys.argv[2]
exprs = [t["expr"] for p in json.load(open(path))["panels"] for t in p["targets"]]
for e in exprs:
    url = api + "/query?" + urllib.parse.urlencode({"query": e})
    d = json.load(urllib.request.urlopen(url))
    assert d["status"] == "success", (e, d)
print(f"dashboard: {len(exprs)} queries of docs/grafana-dashboard.json answered")
EOF
echo "ci/prometheus.sh: ok"
