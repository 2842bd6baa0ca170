//! # upsert_ledger
//!
//! ## What it models
//! Spark's route to effectively-once output: account balances kept as an
//! idempotent upsert table, written **at least once** (no two-phase
//! commit). For every input transfer (account, amount) the job emits the
//! account's new balance with a version, the account's update number (its
//! lineage: 1 for the account's first transfer, 2 for its second, ...),
//! derived from the operator's checkpointed state, so a replay after a
//! recovery carries the same versions with the same values. The sink
//! (`exactsim_engine::upsert::UpsertSink`) sends every output as an upsert
//! of the account's row; the table, a simulated key-value system on its
//! own node and disk (`UpsertSystem`), takes a write only when its version
//! is newer than the row's (`upsert::admits`). Few accounts and many
//! transfers: every key is updated tens of times, so versions matter.
//! The runs are at-least-once whatever the campaign's mode
//! (`Scenario::upsert_table`).
//!
//! ## Invariants checked
//! P17 (the final table holds each account's final balance of the batch
//! recomputation, zero tolerance, although deliveries duplicate), P18 (no
//! reader ever sees an account's version go back), P12 (the final row of
//! every account is there), P4, P11, P15, P16, P21.
//!
//! ## Fault points it expects to reach
//! The engine's (worker, coordinator, store, broker input): a worker crash
//! replays the input from the restored checkpoint, so outputs the table
//! already holds are delivered again (older versions); a paused worker of
//! a replaced attempt (a zombie) and requests held back on the network
//! (late delivery) land stale versions after newer ones; the table's node
//! (`system`) crashes and restarts with what it had fsynced, and network
//! windows cut it off, so the sink's requests time out and are retried.

use crate::gen::layout;
use exactsim_engine::config::Mutant;
use exactsim_engine::pipeline::{KeyedOperator, Pipeline};
use exactsim_engine::sink::{SinkEnv, TwoPhaseCommitSink};
use exactsim_engine::system::{OutputReader, SinkSystem};
use exactsim_engine::types::{OutRecord, Record};
use exactsim_engine::upsert::{UpsertReader, UpsertSink, UpsertSystem};
use exactsim_model::rng::SimRng;
use exactsim_model::scenario::Scenario;
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct UpsertLedger;

/// The keyed operator: per account (balance, updates so far); every
/// transfer emits the new balance at the new update number.
struct Balances {
    acc: BTreeMap<u64, (i64, u64)>,
}

impl KeyedOperator for Balances {
    fn process(&mut self, rec: &Record, out: &mut Vec<OutRecord>) {
        let (sum, n) = self.acc.entry(rec.key).or_insert((0, 0));
        *sum += rec.value;
        *n += 1;
        out.push(OutRecord::new(rec.id, rec.key, *sum, *n));
    }
    fn snapshot(&self) -> Vec<u8> {
        bincode::serialize(&self.acc).expect("serializable")
    }
    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.acc = bincode::deserialize(bytes).map_err(|e| format!("upsert_ledger state: {e}"))?;
        Ok(())
    }
    fn restore_keys(&mut self, bytes: &[u8], keep: &dyn Fn(u64) -> bool) -> Result<(), String> {
        crate::restore_keys(&mut self.acc, bytes, keep, |k| *k, "upsert_ledger")
    }
}

struct P;
impl Pipeline for P {
    fn name(&self) -> &str {
        "upsert_ledger"
    }
    fn create(&self, _subtask: u32, _parallelism: u32) -> Box<dyn KeyedOperator> {
        Box::new(Balances { acc: BTreeMap::new() })
    }
    fn sink(&self, env: SinkEnv) -> Box<dyn TwoPhaseCommitSink> {
        Box::new(UpsertSink::new(env))
    }
    fn system(&self) -> Option<Arc<dyn SinkSystem>> {
        Some(Arc::new(UpsertSystem))
    }
    fn reader(&self) -> Arc<dyn OutputReader> {
        Arc::new(UpsertReader)
    }
    /// The versions come from the operator's state: it must be exactly
    /// once (aligned barriers) although deliveries are not.
    fn exactly_once_state(&self) -> bool {
        true
    }
}

impl Scenario for UpsertLedger {
    fn name(&self) -> &'static str {
        "upsert_ledger"
    }
    fn description(&self) -> &'static str {
        "account balances as a versioned upsert table, at least once (no 2PC): the version guard absorbs duplicates"
    }
    fn generate(&self, rng: &mut SimRng, partitions: u32) -> Vec<Vec<Record>> {
        let n = rng.range(600, 1200);
        let accounts = rng.range(8, 30);
        let draws = (0..n).map(|_| (rng.below(accounts), rng.range(0, 150) as i64 - 50)).collect();
        layout(rng, partitions, draws, 4)
    }
    fn pipeline(&self) -> Arc<dyn Pipeline> {
        Arc::new(P)
    }
    /// The batch recomputation, written apart from the operator: per
    /// account, the final row over the prefix (the last transfer's id,
    /// the balance, the number of transfers as the version).
    fn reference(&self, input: &[Vec<Record>], offsets: &[u64]) -> Vec<OutRecord> {
        let mut last: BTreeMap<u64, OutRecord> = BTreeMap::new();
        for (p, recs) in input.iter().enumerate() {
            for r in &recs[..offsets[p] as usize] {
                let prev = last.get(&r.key).map_or((0, 0), |o| (o.value, o.src));
                last.insert(r.key, OutRecord::new(r.id, r.key, prev.0 + r.value, prev.1 + 1));
            }
        }
        last.into_values().collect()
    }
    /// The planted bugs sit in the table's version guard, which only this
    /// scenario runs.
    fn own_mutants(&self) -> Vec<Mutant> {
        vec![Mutant::UpsertVersionOffByOne, Mutant::UpsertNoVersionGuard, Mutant::Iceberg13547BatchKeepsFirst]
    }
    fn upsert_table(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_is_deterministic_and_keys_repeat() {
        let a = UpsertLedger.generate(&mut SimRng::new(5), 3);
        assert_eq!(a, UpsertLedger.generate(&mut SimRng::new(5), 3));
        for (p, recs) in a.iter().enumerate() {
            assert!(recs.iter().all(|r| r.key % 3 == p as u64));
        }
        let full: Vec<u64> = a.iter().map(|p| p.len() as u64).collect();
        let rows = UpsertLedger.reference(&a, &full);
        assert!(rows.iter().all(|o| o.src >= 5), "every account is updated many times: {rows:?}");
    }

    /// The operator's last output per key is the reference's row.
    #[test]
    fn operator_matches_reference() {
        for seed in 0..4 {
            let input = UpsertLedger.generate(&mut SimRng::new(seed), 2);
            let mut op = P.create(0, 1);
            let mut out = Vec::new();
            for p in &input {
                for r in p {
                    op.process(r, &mut out);
                }
            }
            let mut last: BTreeMap<u64, OutRecord> = BTreeMap::new();
            for o in out {
                last.insert(o.key, o);
            }
            let full: Vec<u64> = input.iter().map(|p| p.len() as u64).collect();
            assert_eq!(last.into_values().collect::<Vec<_>>(), UpsertLedger.reference(&input, &full));
        }
    }
}
