#!/usr/bin/env bash
# Sweep before resolve: every profile (and at-least-once mode) on fresh seed
# ranges, with a record of what was swept appended to a TSV file.
#
# Usage: ci/sweep.sh [SEEDS_PER_SCENARIO] [FIRST_SEED]
#   EXACTSIM_SWEEP_GATE_SEEDS  seeds per scenario for the gate profile
#                              (default: SEEDS_PER_SCENARIO)
#   EXACTSIM_SWEEP_ONLY        a space-separated subset of the entries' names
#   EXACTSIM_SWEEP_RECORD      the record (default target/exactsim/sweeps.tsv)
#   EXACTSIM_SWEEP_DETERMINISM=1  run every seed twice (--check-determinism)
#   EXACTSIM_BIN               a built exactsim binary to use (default: build
#                              target/release/exactsim first)
# Profile k sweeps seeds FIRST_SEED + k * 10^9 + [0, seeds): fresh ranges
# that never overlap one another. Exit 1 if any run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="${1:-${EXACTSIM_SWEEP_SEEDS:-2000}}"
first="${2:-${EXACTSIM_FIRST_SEED:-$(date +%s)}}"
gate_seeds="${EXACTSIM_SWEEP_GATE_SEEDS:-$seeds}"
record="${EXACTSIM_SWEEP_RECORD:-target/exactsim/sweeps.tsv}"
only="${EXACTSIM_SWEEP_ONLY:-}"
det=()
[ "${EXACTSIM_SWEEP_DETERMINISM:-0}" = 1 ] && det=(--check-determinism)
commit="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
mkdir -p "$(dirname "$record")" target/exactsim/sweep
[ -s "$record" ] || printf 'date\tcommit\tentry\tprofile\tmode\tfirst_seed\tseeds_per_scenario\truns\tfailed\twall_ms\n' >"$record"
bin="${EXACTSIM_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=target/release/exactsim
fi
status=0
k=0
for entry in "gate ci/gate.toml exactly-once" "chaos chaos exactly-once" "harsh ci/harsh.toml exactly-once" \
  "nightly ci/nightly.toml exactly-once" "zombie zombie exactly-once" "disk disk exactly-once" \
  "at-least-once chaos at-least-once" "silent-restart silent-restart exactly-once" "adaptive adaptive exactly-once" \
  "clock clock exactly-once" "late late exactly-once" "broker-disk broker-disk exactly-once" \
  "redeploy redeploy exactly-once" "rescale rescale exactly-once"; do
  # shellcheck disable=SC2086
  set -- $entry
  name=$1 profile=$2 mode=$3
  start=$((first + k * 1000000000))
  k=$((k + 1))
  if [ -n "$only" ] && [[ " $only " != *" $name "* ]]; then
    continue
  fi
  n=$seeds
  [ "$name" = gate ] && n=$gate_seeds
  out=target/exactsim/sweep/$name
  if "$bin" campaign --scenario all --profile "$profile" --mode "$mode" --seeds "$n" --first-seed "$start" \
    --jobs "${EXACTSIM_JOBS:-2}" --report "$out" --junit "$out.junit.xml" "${det[@]}" >"$out.log" 2>&1; then :; else status=1; fi
  line=$(grep '^verdict=' "$out.log" | tail -1)
  runs=$(sed -n 's/.* runs=\([0-9]*\).*/\1/p' <<<"$line")
  failed=$(sed -n 's/.* failed=\([0-9]*\).*/\1/p' <<<"$line")
  wall=$(sed -n 's/.* wall_ms=\([0-9]*\).*/\1/p' <<<"$line")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$commit" "$name" "$profile" "$mode" \
    "$start" "$n" "${runs:-?}" "${failed:-?}" "${wall:-?}" >>"$record"
  echo "sweep $name: seeds $start..$((start + n - 1)) per scenario: $line"
done
echo "record: $record"
exit $status
