#!/usr/bin/env bash
# Nightly: every profile (gate, chaos, harsh, nightly, zombie, disk,
# at-least-once, silent-restart) on fresh seed ranges, each seed run twice
# (determinism), with the record of what was swept appended to
# target/exactsim/sweeps.tsv (keep it as a CI artifact); then the mutants.
set -euo pipefail
cd "$(dirname "$0")/.."
EXACTSIM_SWEEP_DETERMINISM=1 ci/sweep.sh "${EXACTSIM_NIGHTLY_SEEDS:-2000}" "${EXACTSIM_FIRST_SEED:-$(date +%s)}"
cargo run --release -- mutants --seeds 300
# Sharding on a real scheduler: a local Slurm cluster (needs root).
ci/slurm.sh
