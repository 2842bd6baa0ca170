#!/usr/bin/env bash
# The campaign CI gates on. Usage: ci/gate.sh [SHARD K/N] [SEEDS]
#
# Three campaigns, each with its JSON report and JUnit file:
# - fixed: seeds 0..SEEDS-1 of ci/gate.toml, the same on every commit;
# - fresh: EXACTSIM_GATE_FRESH_SEEDS (default 100) seeds of ci/gate.toml
#   from a first seed derived from the commit (its hash, 40 bits), so a
#   rerun of a commit replays the same seeds and every new commit explores
#   new ground (EXACTSIM_GATE_FRESH_FIRST overrides it);
# - aimed: seeds 0..SEEDS-1 of the built-in profile silent-restart, the
#   composite fault the broad mix reaches in about 1 of 2,000 runs.
set -euo pipefail
cd "$(dirname "$0")/.."
shard="${1:-1/1}"
seeds="${2:-${EXACTSIM_GATE_SEEDS:-60}}"
fresh="${EXACTSIM_GATE_FRESH_SEEDS:-100}"
commit="$(git rev-parse HEAD 2>/dev/null || true)"
if [ -n "${EXACTSIM_GATE_FRESH_FIRST:-}" ]; then
  fresh_first="$EXACTSIM_GATE_FRESH_FIRST"
elif [ -n "$commit" ]; then
  fresh_first=$((16#${commit:0:10}))
else
  # Not a git checkout: from the sources' hash in the code version.
  fresh_first=$((16#$(cargo run --release --quiet -- --version | sed -n 's/.*+\([0-9a-f]\{10\}\).*/\1/p')))
fi
echo "gate: fixed seeds 0..$((seeds - 1)) and fresh seeds $fresh_first..$((fresh_first + fresh - 1)) (from commit ${commit:-<none>}) of ci/gate.toml; aimed seeds 0..$((seeds - 1)) of silent-restart; shard $shard"
run() {
  cargo run --release -- campaign --scenario all --shard "$shard" --jobs "${EXACTSIM_JOBS:-2}" --check-determinism "$@"
}
status=0
run --profile ci/gate.toml --seeds "$seeds" --report target/exactsim/report \
  --junit target/exactsim/junit.xml || status=$?
run --profile ci/gate.toml --seeds "$fresh" --first-seed "$fresh_first" --report target/exactsim/report-fresh \
  --junit target/exactsim/junit-fresh.xml || status=$?
run --profile silent-restart --seeds "$seeds" --report target/exactsim/report-aimed \
  --junit target/exactsim/junit-aimed.xml || status=$?
exit "$status"
