//! # pg_ledger
//!
//! ## What it models
//! An account ledger written to PostgreSQL: for every input transfer
//! (account, amount) the job emits the account's running balance as a row
//! of `exactsim_out`. The sink is the PostgreSQL two-phase-commit sink
//! (`exactsim_pg::sink::PgSink`: rows in a transaction block, `PREPARE
//! TRANSACTION` at pre-commit, `COMMIT PREPARED` on completion), talking to
//! the simulated PostgreSQL server hosted as the pipeline's own system
//! (`exactsim_pg::system::PgSystem`, on its own node and disk). The oracles
//! judge what a `read_committed` reader of the server sees
//! (`exactsim_pg::system::PgReader`) and the commits the server announces.
//!
//! ## Invariants checked
//! P1 (every transfer's balance visible exactly once, with the right value),
//! P2/P3, the commit-level checks on the server's `COMMIT PREPARED`s, P8/P13
//! (no prepared transaction left at the end), P11; P12 in at-least-once
//! mode (autocommit inserts).
//!
//! ## Fault points it expects to reach
//! The engine's (worker, coordinator, store, broker input): crashes between
//! `PREPARE TRANSACTION` and `COMMIT PREPARED` leave prepared transactions
//! that recovery commits (restored) or rolls back (lingering).

use crate::gen::layout;
use crate::running_sum::{self, RunningSum};
use exactsim_engine::config::Mutant;
use exactsim_engine::pipeline::{KeyedOperator, Pipeline};
use exactsim_engine::sink::{SinkEnv, TwoPhaseCommitSink};
use exactsim_engine::system::{OutputReader, SinkSystem};
use exactsim_engine::types::{OutRecord, Record};
use exactsim_model::rng::SimRng;
use exactsim_model::scenario::{IncrementalReference, Scenario};
use exactsim_pg::node::NodeConnector;
use exactsim_pg::sink::PgSink;
use exactsim_pg::system::{PgReader, PgSystem};
use std::sync::Arc;
use std::time::Duration;

pub struct PgLedger;

/// `max_prepared_transactions` of the simulated server.
pub const MAX_PREPARED: usize = 64;
/// Sessions idle this long are closed by the server: longer than any quiet
/// spell of a live sink session (a checkpoint interval plus retries).
pub const IDLE_TIMEOUT_MS: u64 = 20_000;

struct P;
impl Pipeline for P {
    fn name(&self) -> &str {
        "pg_ledger"
    }
    fn create(&self, _subtask: u32, _parallelism: u32) -> Box<dyn KeyedOperator> {
        Box::new(RunningSum::new("pg_ledger"))
    }
    fn sink(&self, env: SinkEnv) -> Box<dyn TwoPhaseCommitSink> {
        let connector = NodeConnector {
            net: env.net.clone(),
            server: env.system,
            timeout: Duration::from_millis(env.cfg.rpc_timeout_ms),
            retries: env.cfg.rpc_retries,
        };
        Box::new(
            PgSink::new(Arc::new(connector), "pg_ledger", env.subtask, env.attempt)
                .with_mutant(env.cfg.mutant)
                .with_route(env.route.clone()),
        )
    }
    fn system(&self) -> Option<Arc<dyn SinkSystem>> {
        Some(Arc::new(PgSystem { max_prepared: MAX_PREPARED, idle_timeout_ms: IDLE_TIMEOUT_MS }))
    }
    fn reader(&self) -> Arc<dyn OutputReader> {
        Arc::new(PgReader)
    }
}

impl Scenario for PgLedger {
    fn name(&self) -> &'static str {
        "pg_ledger"
    }
    fn description(&self) -> &'static str {
        "running account balances as rows in (simulated) PostgreSQL, 2PC via PREPARE TRANSACTION"
    }
    fn generate(&self, rng: &mut SimRng, partitions: u32) -> Vec<Vec<Record>> {
        let n = rng.range(800, 1600);
        let accounts = rng.range(20, 80);
        let draws = (0..n).map(|_| (rng.below(accounts), rng.range(0, 150) as i64 - 50)).collect();
        layout(rng, partitions, draws, 4)
    }
    fn pipeline(&self) -> Arc<dyn Pipeline> {
        Arc::new(P)
    }
    fn reference(&self, input: &[Vec<Record>], offsets: &[u64]) -> Vec<OutRecord> {
        running_sum::reference(input, offsets)
    }
    fn incremental<'a>(&self, input: &'a [Vec<Record>]) -> Option<Box<dyn IncrementalReference + 'a>> {
        Some(running_sum::incremental(input))
    }
    /// The planted bugs sit in `PgSink` (no recover-and-commit of a
    /// restored prepared transaction; no fencing of earlier attempts'
    /// sessions), which only this scenario runs.
    fn own_mutants(&self) -> Vec<Mutant> {
        vec![Mutant::PgNoRecoverCommit, Mutant::PgNoFence]
    }
    fn checks(&self) -> Vec<exactsim_model::scenario::ScenarioCheck> {
        vec![exactsim_model::scenario::order_per_partition("pg_ledger/order-per-partition")]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_is_deterministic_and_keyed() {
        let a = PgLedger.generate(&mut SimRng::new(5), 3);
        assert_eq!(a, PgLedger.generate(&mut SimRng::new(5), 3));
        for (p, recs) in a.iter().enumerate() {
            assert!(recs.iter().all(|r| r.key % 3 == p as u64));
        }
        assert!(a.iter().flatten().any(|r| r.value < 0), "withdrawals too");
    }

    #[test]
    fn operator_matches_reference() {
        let input = PgLedger.generate(&mut SimRng::new(1), 2);
        let mut op = P.create(0, 1);
        let mut out = Vec::new();
        for p in &input {
            for r in p {
                op.process(r, &mut out);
            }
        }
        let full: Vec<u64> = input.iter().map(|p| p.len() as u64).collect();
        let mut want = PgLedger.reference(&input, &full);
        out.sort();
        want.sort();
        assert_eq!(out, want);
    }

    #[test]
    fn incremental_reference_matches_reference() {
        for seed in 0..4 {
            let input = PgLedger.generate(&mut SimRng::new(seed), 3);
            exactsim_model::scenario::check_incremental(&PgLedger, &input, &mut SimRng::new(seed), 6).unwrap();
        }
    }
}
