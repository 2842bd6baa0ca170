#!/usr/bin/env bash
# The campaign CI gates on. Usage: ci/gate.sh [SHARD K/N] [SEEDS]
set -euo pipefail
cd "$(dirname "$0")/.."
shard="${1:-1/1}"
seeds="${2:-${EXACTSIM_GATE_SEEDS:-60}}"
cargo run --release -- campaign --scenario all --profile ci/gate.toml --seeds "$seeds" \
  --shard "$shard" --jobs "${EXACTSIM_JOBS:-2}" --report target/exactsim/report \
  --junit target/exactsim/junit.xml --check-determinism
