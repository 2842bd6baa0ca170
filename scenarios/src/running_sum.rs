//! A running sum per key, emitting the new sum for every record: the
//! workload of `word_count` (counts) and of `pg_ledger` (balances). The
//! operator the job runs and the batch reference the oracles compare with
//! are written separately, so a bug in one is not mirrored in the other.

use exactsim_engine::pipeline::KeyedOperator;
use exactsim_engine::types::{OutRecord, Record};
use exactsim_model::scenario::IncrementalReference;
use std::collections::BTreeMap;

/// The keyed operator.
pub(crate) struct RunningSum {
    sums: BTreeMap<u64, i64>,
    /// Names the state in a restore error.
    scenario: &'static str,
}

impl RunningSum {
    pub(crate) fn new(scenario: &'static str) -> Self {
        RunningSum { sums: BTreeMap::new(), scenario }
    }
}

impl KeyedOperator for RunningSum {
    fn process(&mut self, rec: &Record, out: &mut Vec<OutRecord>) {
        let c = self.sums.entry(rec.key).or_insert(0);
        *c += rec.value;
        out.push(OutRecord::new(rec.id, rec.key, *c, rec.id));
    }
    fn snapshot(&self) -> Vec<u8> {
        bincode::serialize(&self.sums).expect("serializable")
    }
    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.sums = bincode::deserialize(bytes).map_err(|e| format!("{} state: {e}", self.scenario))?;
        Ok(())
    }
    fn restore_keys(&mut self, bytes: &[u8], keep: &dyn Fn(u64) -> bool) -> Result<(), String> {
        crate::restore_keys(&mut self.sums, bytes, keep, |k| *k, self.scenario)
    }
}

/// The batch reference over the input prefix `offsets`: per key, the sums
/// in partition order (a key lives in one partition).
pub(crate) fn reference(input: &[Vec<Record>], offsets: &[u64]) -> Vec<OutRecord> {
    let mut out = Vec::new();
    for (p, recs) in input.iter().enumerate() {
        let mut sum: BTreeMap<u64, i64> = BTreeMap::new();
        for r in &recs[..offsets[p] as usize] {
            out.push(next(&mut sum, r));
        }
    }
    out
}

/// The same reference one input record at a time.
pub(crate) fn incremental<'a>(input: &'a [Vec<Record>]) -> Box<dyn IncrementalReference + 'a> {
    crate::per_record::per_record(input, next)
}

/// The reference's step: the record's key's new sum.
fn next(sum: &mut BTreeMap<u64, i64>, r: &Record) -> OutRecord {
    let s = sum.entry(r.key).or_default();
    *s += r.value;
    OutRecord::new(r.id, r.key, *s, r.id)
}
