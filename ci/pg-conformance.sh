#!/usr/bin/env bash
# The differential conformance test of the simulated PostgreSQL server
# (pg/tests/conformance.rs) against a real PostgreSQL 15, started and
# stopped by ci/postgres.sh, once per max_prepared_transactions setting
# (16: the usual, 2: the limit is hit, 0: prepared transactions disabled).
# Fails unless the test reports that it ran against the server.
#
# Usage: ci/pg-conformance.sh   (EXACTSIM_PG_SEQUENCES, EXACTSIM_PG_STEPS,
#                                EXACTSIM_PG_SEED are passed to the test)
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS= CARGO_TARGET_DIR=target/std
test_cmd=(cargo test --release -p exactsim-pg --test conformance)
# Build before any server is up.
"${test_cmd[@]}" --no-run
cargo test --release -p exactsim-pg --test upsert_conformance --no-run
for max in 16 2 0; do
  export EXACTSIM_PG_DIR="target/pg-conformance-$max" EXACTSIM_PG_MAX_PREPARED="$max"
  rm -f "$EXACTSIM_PG_DIR/conformance.ok"
  ci/postgres.sh run -- "${test_cmd[@]}" -- --nocapture --test-threads 1
  if [[ ! -s "$EXACTSIM_PG_DIR/conformance.ok" ]]; then
    echo "pg-conformance: the test did not run against PostgreSQL (max_prepared_transactions = $max)" >&2
    exit 1
  fi
  cat "$EXACTSIM_PG_DIR/conformance.ok"
done
# The upsert table's version guard against the statement real mode would
# run (INSERT ... ON CONFLICT ... WHERE t.version < EXCLUDED.version).
upsert_cmd=(cargo test --release -p exactsim-pg --test upsert_conformance)
export EXACTSIM_PG_DIR="target/pg-conformance-upsert"
rm -f "$EXACTSIM_PG_DIR/upsert-conformance.ok"
ci/postgres.sh run -- "${upsert_cmd[@]}" -- --nocapture --test-threads 1
if [[ ! -s "$EXACTSIM_PG_DIR/upsert-conformance.ok" ]]; then
  echo "pg-conformance: the upsert test did not run against PostgreSQL" >&2
  exit 1
fi
cat "$EXACTSIM_PG_DIR/upsert-conformance.ok"

echo "pg-conformance: the model agrees with PostgreSQL"
