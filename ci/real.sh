#!/usr/bin/env bash
# Real mode in CI: build the std node binary, run a small campaign of real
# runs (engine as OS processes on 127.0.0.1, kill -9 and SIGSTOP/SIGCONT
# played in wall time), require every verdict to pass and the faults to have
# landed, then show a planted bug caught in real mode on a pinned schedule;
# the same for pg_ledger against a real PostgreSQL (started and stopped by
# each run) and its planted bug; then the bar: real-mode campaigns of random
# seeds of the default profile catch both recovery bugs in at least 30% of
# their runs, with every fault landing while the job runs. About ten
# minutes once built.
# Usage: ci/real.sh [SEEDS]   (seeds per scenario in the campaign, default 4;
#                              EXACTSIM_REAL_PG_SEEDS per profile for
#                              pg_ledger, default 2; EXACTSIM_REAL_BAR_SEEDS
#                              per bar campaign, default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="${1:-${EXACTSIM_REAL_SEEDS:-4}}"
pg_seeds="${EXACTSIM_REAL_PG_SEEDS:-2}"
out=target/exactsim/real
mkdir -p "$out"

RUSTFLAGS= CARGO_TARGET_DIR=target/std cargo build --release -p exactsim-node
cargo build --release --bin exactsim
bin=target/release/exactsim
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

runs=0; crashes=0; pauses=0
for scenario in word_count inventory; do
  for profile in crash chaos; do
    for seed in $(seq 1 "$seeds"); do
      dir="$out/$scenario-$profile-$seed"
      "$bin" real --scenario "$scenario" --seed "$seed" --profile "$profile" --pauses 2 \
        --report "$dir" > "$dir.txt" || { cat "$dir.txt"; echo "FAIL: real run failed: $scenario $profile seed $seed (see $dir)"; exit 1; }
      line=$(head -1 "$dir.txt")
      echo "$line" | grep -o 'scenario=[^ ]* seed=[^ ]* profile=[^ ]*\|verdict=[a-z]*\|recoveries=[0-9]*\|wall_ms=[0-9]*\| faults=[^ ]*\|effective_faults=[0-9]*' | tr '\n' ' '; echo
      echo "$line" | grep -q 'verdict=pass' || { echo "FAIL: verdict is not pass"; exit 1; }
      landed=$(echo "$line" | grep -o ' faults=[^ ]*' | tr -d ' ')
      [ "$landed" != "faults=none" ] || { echo "FAIL: no fault landed in $scenario $profile seed $seed"; exit 1; }
      # A fault after the job finished tests nothing: one at least must
      # have started while the job ran.
      effective=$(echo "$line" | grep -o 'effective_faults=[0-9]*' | cut -d= -f2)
      [ "${effective:-0}" -gt 0 ] || { echo "FAIL: every fault landed after the job finished in $scenario $profile seed $seed"; exit 1; }
      runs=$((runs + 1))
      echo "$landed" | grep -q 'crash' && crashes=$((crashes + 1))
      echo "$landed" | grep -q 'pause' && pauses=$((pauses + 1))
    done
  done
done
echo "real campaign: $runs runs passed; kills landed in $crashes, pauses in $pauses"
[ "$crashes" -gt 0 ] && [ "$pauses" -gt 0 ] || { echo "FAIL: kills or pauses never landed"; exit 1; }

# Rescaling for real: the supervisor restarts the coordinator with another
# parallelism (the run directory's `parallelism` file); every run must
# pass, and one of them must restore a checkpoint taken at another
# parallelism (key groups moved between processes).
restored=0
for seed in 7 8 9 10 11 12; do
  dir="$out/word_count-rescale-$seed"
  "$bin" real --scenario word_count --seed "$seed" --profile rescale --report "$dir" > "$dir.txt" \
    || { cat "$dir.txt"; echo "FAIL: real run failed: word_count rescale seed $seed (see $dir)"; exit 1; }
  if grep -q '"Rescaled":{[^}]*"ckpt":[0-9]' "$dir/trace.jsonl"; then restored=$((restored + 1)); break; fi
done
[ "$restored" -gt 0 ] || { echo "FAIL: no real rescale restored a checkpoint taken at another parallelism"; exit 1; }
echo "real rescale: seed $seed restored a checkpoint at another parallelism: $(grep -o '"Rescaled":{[^}]*}' "$dir/trace.jsonl" | tr '\n' ' ')"

# pg_ledger against a real PostgreSQL 15 that each run starts (ci/postgres.sh
# under the run directory) and stops: kill -9 and pauses of the engine's
# processes, and kill -9 of PostgreSQL itself.
pg_runs=0; pg_kills=0
for profile in crash chaos; do
  for seed in $(seq 1 "$pg_seeds"); do
    dir="$out/pg_ledger-$profile-$seed"
    "$bin" real --scenario pg_ledger --seed "$seed" --profile "$profile" --pauses 2 --pg-kills 2 \
      --report "$dir" > "$dir.txt" || { cat "$dir.txt"; echo "FAIL: real run failed: pg_ledger $profile seed $seed (see $dir)"; exit 1; }
    line=$(head -1 "$dir.txt")
    echo "$line" | grep -o 'scenario=[^ ]* seed=[^ ]* profile=[^ ]*\|verdict=[a-z]*\|recoveries=[0-9]*\|wall_ms=[0-9]*\| faults=[^ ]*\|effective_faults=[0-9]*' | tr '\n' ' '; echo
    echo "$line" | grep -q 'verdict=pass' || { echo "FAIL: verdict is not pass"; exit 1; }
    grep -q ' pg_up ' "$dir.txt" || ! grep -q ' pg_kill ' "$dir.txt" || { echo "FAIL: PostgreSQL killed but never back"; exit 1; }
    effective=$(echo "$line" | grep -o 'effective_faults=[0-9]*' | cut -d= -f2)
    [ "${effective:-0}" -gt 0 ] || { echo "FAIL: every fault landed after the job finished in pg_ledger $profile seed $seed"; exit 1; }
    pg_runs=$((pg_runs + 1))
    echo "$line" | grep -o 'faults=[^ ]*' | grep -q 'pg_kill' && pg_kills=$((pg_kills + 1))
  done
done
echo "real campaign (PostgreSQL): $pg_runs runs passed; PostgreSQL kills landed in $pg_kills"

# The idempotent upsert sink at least once into a real PostgreSQL table
# (INSERT ... ON CONFLICT ... WHERE t.version < EXCLUDED.version): P17/P18.
up_runs=0
for profile in crash chaos; do
  for seed in $(seq 1 "$pg_seeds"); do
    dir="$out/upsert_ledger-$profile-$seed"
    "$bin" real --scenario upsert_ledger --seed "$seed" --profile "$profile" --pauses 2 --pg-kills 2 \
      --report "$dir" > "$dir.txt" || { cat "$dir.txt"; echo "FAIL: real run failed: upsert_ledger $profile seed $seed (see $dir)"; exit 1; }
    line=$(head -1 "$dir.txt")
    echo "$line" | grep -o 'scenario=[^ ]* seed=[^ ]* profile=[^ ]*\|verdict=[a-z]*\|recoveries=[0-9]*\|wall_ms=[0-9]*\| faults=[^ ]*\|effective_faults=[0-9]*' | tr '\n' ' '; echo
    echo "$line" | grep -q 'verdict=pass' || { echo "FAIL: verdict is not pass"; exit 1; }
    echo "$line" | grep -q 'checks=[^ ]*P18' || { echo "FAIL: P17/P18 did not judge the upsert run"; exit 1; }
    up_runs=$((up_runs + 1))
  done
done
echo "real campaign (PostgreSQL upsert table): $up_runs runs passed"

# A supervisor killed with kill -9 while its PostgreSQL runs cleans nothing
# up: the next real run must find its run directory, stop that server by
# pid and remove the directory.
printf 'name = "long"\nsafety_ms = 60000\nliveness_ms = 60000\n' > "$out/long.toml"
"$bin" real --scenario pg_ledger --seed 1 --profile "$out/long.toml" > "$out/killed-supervisor.txt" 2>&1 &
sup=$!
up() { ls "${TMPDIR:-/tmp}"/exactsim-real-"$sup"-*/pg/server.pid > /dev/null 2>&1; }
for _ in $(seq 1 600); do up && break; sleep 0.1; done
up || { echo "FAIL: the long pg_ledger run never started PostgreSQL"; kill -9 "$sup"; exit 1; }
sleep 1
kill -9 "$sup"; wait "$sup" 2>/dev/null || true
stale_dir=$(ls -d "${TMPDIR:-/tmp}"/exactsim-real-"$sup"-* 2>/dev/null | head -1)
[ -n "$stale_dir" ] || { echo "FAIL: no run directory left by the killed supervisor"; exit 1; }
"$bin" real --scenario copier --seed 1 --profile none > "$out/after-killed-supervisor.txt" 2>&1 || { cat "$out/after-killed-supervisor.txt"; exit 1; }
grep -q "note: removed $stale_dir" "$out/after-killed-supervisor.txt" || { echo "FAIL: the next run did not remove $stale_dir"; exit 1; }
[ ! -e "$stale_dir" ] || { echo "FAIL: $stale_dir is still there"; exit 1; }
if pgrep -af postgres | grep -q "exactsim-real-$sup-"; then echo "FAIL: the killed supervisor's PostgreSQL is still running"; exit 1; fi
echo "killed supervisor: its PostgreSQL stopped and $stale_dir removed by the next run"

# Two Ctrl-C 50 ms apart while PostgreSQL runs: the supervisor still stops
# the server and removes its run directory before it exits.
"$bin" real --scenario pg_ledger --seed 2 --profile "$out/long.toml" > "$out/double-sigint.txt" 2>&1 &
sup=$!
for _ in $(seq 1 600); do up && break; sleep 0.1; done
up || { echo "FAIL: the long pg_ledger run never started PostgreSQL"; kill -9 "$sup"; exit 1; }
sleep 1
# (A supervisor that already finished its cleanup within the 50 ms has
# nothing left to leak: the second signal then finds no process.)
kill -INT "$sup"; sleep 0.05; kill -INT "$sup" 2>/dev/null || true
set +e; wait "$sup"; rc=$?; set -e
[ "$rc" = 130 ] || { cat "$out/double-sigint.txt"; echo "FAIL: exit $rc after two Ctrl-C (expected 130)"; exit 1; }
if ls -d "${TMPDIR:-/tmp}"/exactsim-real-"$sup"-* > /dev/null 2>&1; then echo "FAIL: two Ctrl-C left the run directory"; exit 1; fi
if pgrep -af postgres | grep -q "exactsim-real-$sup-"; then echo "FAIL: two Ctrl-C left PostgreSQL running"; exit 1; fi
echo "two Ctrl-C: nothing left behind"
[ "$pg_kills" -gt 0 ] || { echo "FAIL: no kill of PostgreSQL landed"; exit 1; }
if pgrep -a postgres | grep -q "exactsim-real-\|exactsim-pg-"; then echo "FAIL: a PostgreSQL was left running"; exit 1; fi

# A planted bug, caught for real: the coordinator kills itself after its
# first completion record, before notifying (ci/real-planted-bug.json), and
# recovery fails to re-commit the restored transactions.
set +e
"$bin" real --scenario word_count --seed 1 --profile crash --mutant no-recommit-on-recovery \
  --schedule ci/real-planted-bug.json --report "$out/planted-bug" > "$out/planted-bug.txt"
rc=$?
set -e
head -1 "$out/planted-bug.txt"; grep -E '^  P[0-9]+' "$out/planted-bug.txt" | head -3 | cut -c1-200
[ "$rc" = 1 ] && grep -q 'verdict=fail' "$out/planted-bug.txt" || { echo "FAIL: the planted bug escaped real mode"; exit 1; }

# The PostgreSQL sink's planted bug, caught for real: the same pinned
# schedule (the coordinator dies between its completion record and the
# notification), so recovery must COMMIT PREPARED the restored transactions
# on the real server; without the bug the same run passes.
for mutant in none pg-no-recover-commit; do
  set +e
  args=(real --scenario pg_ledger --seed 1 --profile crash --pg-kills 0 --source-poll-ms 50 --schedule ci/real-planted-bug.json)
  [ "$mutant" = none ] || args+=(--mutant "$mutant")
  "$bin" "${args[@]}" --report "$out/pg-planted-$mutant" > "$out/pg-planted-$mutant.txt"
  rc=$?
  set -e
  head -1 "$out/pg-planted-$mutant.txt" | cut -c1-220; { grep -E '^  P[0-9]+' "$out/pg-planted-$mutant.txt" || true; } | head -2 | cut -c1-200
  if [ "$mutant" = none ]; then
    [ "$rc" = 0 ] || { echo "FAIL: the pinned PostgreSQL schedule fails without the planted bug"; exit 1; }
  else
    [ "$rc" = 1 ] && grep -q 'verdict=fail' "$out/pg-planted-$mutant.txt" || { echo "FAIL: pg-no-recover-commit escaped real mode"; exit 1; }
  fi
done
# The bar: random seeds (no pinned schedule) of real mode's default
# profile (`recovery`: faults aimed by engine events at the recovery
# windows) catch each of the two recovery bugs in at least 30% of the runs,
# every landed fault started while the job ran, and the same campaign on
# correct code passes.
bar_seeds="${EXACTSIM_REAL_BAR_SEEDS:-10}"
bar() { # scenario mutant|none
  local scenario=$1 mutant=$2 rc line failed runs
  local args=(real --scenario "$scenario" --seeds "$bar_seeds" --report "$out/bar-$scenario-$mutant")
  [ "$mutant" = none ] || args+=(--mutant "$mutant")
  set +e; "$bin" "${args[@]}" > "$out/bar-$scenario-$mutant.txt" 2>&1; rc=$?; set -e
  line=$(grep '^verdict=' "$out/bar-$scenario-$mutant.txt" || true)
  echo "$scenario $mutant: $line"
  grep '^effective faults' "$out/bar-$scenario-$mutant.txt" || true
  [ "$rc" = 0 ] || [ "$rc" = 1 ] || { cat "$out/bar-$scenario-$mutant.txt"; echo "FAIL: real campaign exit $rc"; exit 1; }
  grep -q '^effective faults.*, 0 more after it finished' "$out/bar-$scenario-$mutant.txt" \
    || { echo "FAIL: a fault landed after the job finished ($scenario $mutant)"; exit 1; }
  runs=$(echo "$line" | grep -o ' runs=[0-9]*' | cut -d= -f2)
  failed=$(echo "$line" | grep -o ' failed=[0-9]*' | cut -d= -f2)
  if [ "$mutant" = none ]; then
    [ "$rc" = 0 ] && [ "$failed" = 0 ] || { echo "FAIL: correct code failed a real run ($scenario)"; exit 1; }
  else
    [ $((failed * 10)) -ge $((runs * 3)) ] || { echo "FAIL: $mutant caught in $failed of $runs real runs (the bar is 30%)"; exit 1; }
    echo "$mutant: caught in $failed of $runs random real runs (bar: 30%)"
  fi
}
bar word_count none
bar word_count no-recommit-on-recovery
bar pg_ledger none
bar pg_ledger pg-no-recover-commit
if pgrep -a postgres | grep -q "exactsim-real-"; then echo "FAIL: a PostgreSQL was left running"; exit 1; fi
