#!/usr/bin/env bash
# Nightly: the test suite with deep seed counts; every profile (gate, chaos, harsh, nightly, zombie, disk,
# at-least-once, silent-restart) on fresh seed ranges, each seed run twice
# (determinism), with the record of what was swept appended to
# target/exactsim/sweeps.tsv (keep it as a CI artifact); then the mutants;
# then `bench`, whose four headline figures are appended to
# target/exactsim/bench.tsv (date, commit, figure, value, goal, met|missed),
# so that a regression shows over time (keep it as a CI artifact too).
set -euo pipefail
cd "$(dirname "$0")/.."
# The test suite at depth: `cargo test` keeps its seed counts small (it
# must stay quick); here its campaigns run 20 seeds per scenario and
# profile and its chaos sweeps 1,000 seeds.
EXACTSIM_SEEDS="${EXACTSIM_NIGHTLY_TEST_SEEDS:-20}" EXACTSIM_TEST_SEEDS=1000 cargo test
EXACTSIM_SWEEP_DETERMINISM=1 ci/sweep.sh "${EXACTSIM_NIGHTLY_SEEDS:-2000}" "${EXACTSIM_FIRST_SEED:-$(date +%s)}"
cargo run --release -- mutants --seeds 300
mkdir -p target/exactsim
cargo run --release -- bench --seeds "${EXACTSIM_NIGHTLY_BENCH_SEEDS:-20}" | tee target/exactsim/bench.txt
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -s target/exactsim/bench.tsv ] || printf 'date\tcommit\tfigure\tvalue\tgoal\tstatus\n' > target/exactsim/bench.tsv
awk -v d="$(date -u +%Y-%m-%dT%H:%MZ)" -v c="$commit" '$1 == "headline" { print d "\t" c "\t" $2 "\t" $3 "\t" $5 "\t" $6 }' \
  target/exactsim/bench.txt >> target/exactsim/bench.tsv
grep -c '^headline ' target/exactsim/bench.txt | grep -qx 4 || { echo "FAIL: bench printed no four headline figures"; exit 1; }
# Sharding on a real scheduler: a local Slurm cluster (needs root).
ci/slurm.sh
