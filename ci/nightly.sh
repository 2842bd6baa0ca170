#!/usr/bin/env bash
# Nightly: many seeds under the heavy profile, both modes, plus the mutants.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -- campaign --scenario all --profile ci/nightly.toml --seeds "${EXACTSIM_NIGHTLY_SEEDS:-2000}" \
  --first-seed "${EXACTSIM_FIRST_SEED:-$(date +%s)}" --jobs "${EXACTSIM_JOBS:-2}" \
  --report target/exactsim/nightly --junit target/exactsim/nightly-junit.xml --check-determinism
cargo run --release -- mutants --seeds 300
# Sharding on a real scheduler: a local Slurm cluster (needs root).
ci/slurm.sh
