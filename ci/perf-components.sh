#!/usr/bin/env bash
# Where the CPU goes, by component (issue 28): profiles the README's main
# job (a campaign over every scenario, one thread), the bench's dense and
# production-like workloads (`bench --only profiles`) and the bare madsim
# round trips (`bench --only floor`) with `perf record --call-graph dwarf`,
# and prints each one's samples by component (ci/perf_components.py says
# how a sample is charged): simulator (madsim: executor, timers, network,
# its random numbers), allocation, engine (sources, chains, channels,
# aligner, coordinator, store, operators), encoding, oracles, history
# (the recorder), sink, broker, workload (input generation), harness.
# Needs Linux perf (Debian's linux-perf). Measurement only: no threshold.
# usage: ci/perf-components.sh [SEEDS]   (main job seeds, default 100)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v perf > /dev/null || { echo "perf-components: needs perf (apt-get install linux-perf)" >&2; exit 2; }
seeds="${1:-100}"
cargo build --release -q
out=target/exactsim/perf
mkdir -p "$out"
profile() {
  local name=$1
  shift
  perf record -q -F 499 --call-graph dwarf,16384 -o "$out/$name.data" -- target/release/exactsim "$@" > "$out/$name.out" 2>&1
  perf script -i "$out/$name.data" 2> /dev/null | python3 ci/perf_components.py > "$out/$name.txt"
  echo "== $name: exactsim $*"
  cat "$out/$name.txt"
  rm -f "$out/$name.data"
}
profile main-job campaign --seeds "$seeds" --jobs 1
profile profiles bench --only profiles --quick
profile floor bench --only floor
