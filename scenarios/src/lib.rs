//! The workloads: each an input generator driven by the seed, a pipeline
//! (keyed operator) and a batch reference computed by independent code.

pub mod copier;
pub mod inventory;
pub mod pg_ledger;
pub mod risk_scoring;
mod running_sum;
pub mod upsert_ledger;
pub mod word_count;

use exactsim_model::scenario::Scenario;
use std::sync::Arc;

pub fn all() -> Vec<Arc<dyn Scenario>> {
    vec![
        Arc::new(word_count::WordCount),
        Arc::new(inventory::Inventory),
        Arc::new(risk_scoring::RiskScoring),
        Arc::new(copier::Copier),
        Arc::new(pg_ledger::PgLedger),
        Arc::new(upsert_ledger::UpsertLedger),
    ]
}

pub fn by_name(name: &str) -> Option<Arc<dyn Scenario>> {
    all().into_iter().find(|s| s.name() == name)
}

/// Rescaling: the entries of a snapshot of keyed state (a bincode map)
/// whose key `keep` selects, added to `into` (`KeyedOperator::restore_keys`).
pub(crate) fn restore_keys<K, V>(
    into: &mut std::collections::BTreeMap<K, V>,
    bytes: &[u8],
    keep: &dyn Fn(u64) -> bool,
    key_of: fn(&K) -> u64,
    what: &str,
) -> Result<(), String>
where
    K: Ord + serde::de::DeserializeOwned,
    V: serde::de::DeserializeOwned,
{
    let all: std::collections::BTreeMap<K, V> =
        bincode::deserialize(bytes).map_err(|e| format!("{what} state: {e}"))?;
    for (k, v) in all {
        if keep(key_of(&k)) {
            let twice = into.insert(k, v).is_some();
            assert!(!twice, "rescaled key groups are disjoint: a key is restored once");
        }
    }
    Ok(())
}

/// Shared by the generators: assign keys to partitions and lay records out
/// per partition, ids unique, event time non-decreasing per partition.
pub(crate) mod gen {
    use exactsim_engine::types::Record;
    use exactsim_model::rng::SimRng;

    /// `records` (key, value) drawn in global order; each key lives in
    /// partition `key % partitions`; ts advances 0..=step_ms per record of
    /// a partition.
    pub fn layout(rng: &mut SimRng, partitions: u32, draws: Vec<(u64, i64)>, step_ms: u64) -> Vec<Vec<Record>> {
        let mut out: Vec<Vec<Record>> = (0..partitions).map(|_| Vec::new()).collect();
        let mut ts = vec![0u64; partitions as usize];
        for (i, (key, value)) in draws.into_iter().enumerate() {
            let p = (key % partitions as u64) as usize;
            ts[p] += rng.range(0, step_ms);
            out[p].push(Record { id: i as u64 + 1, key, ts_ms: ts[p], value });
        }
        out
    }
}

/// The incremental reference of a scenario whose output is one record per
/// input record, computed from that record and a state folded over the
/// records before it in its partition (`Scenario::incremental`).
pub(crate) mod per_record {
    use exactsim_engine::types::{OutRecord, Record};
    use exactsim_model::scenario::IncrementalReference;

    pub struct PerRecord<'a, S, F> {
        input: &'a [Vec<Record>],
        taken: Vec<usize>,
        state: Vec<S>,
        step: F,
    }

    /// `step(state of the partition, record)` is the record's output.
    pub fn per_record<'a, S: Default + 'a, F: FnMut(&mut S, &Record) -> OutRecord + 'a>(
        input: &'a [Vec<Record>],
        step: F,
    ) -> Box<dyn IncrementalReference + 'a> {
        Box::new(PerRecord {
            input,
            taken: vec![0; input.len()],
            state: input.iter().map(|_| S::default()).collect(),
            step,
        })
    }

    impl<S, F: FnMut(&mut S, &Record) -> OutRecord> IncrementalReference for PerRecord<'_, S, F> {
        fn advance(&mut self, p: usize, out: &mut Vec<OutRecord>) {
            let r = &self.input[p][self.taken[p]];
            self.taken[p] += 1;
            out.push((self.step)(&mut self.state[p], r));
        }
    }
}

#[cfg(test)]
mod tests {
    /// A scenario's own check ids are reported beside the engine's in every
    /// campaign over all scenarios, so they must be unique, say whose check
    /// they are (`{scenario}/{name}`) and read like a row of the table.
    #[test]
    fn scenario_checks_are_declared_like_the_table() {
        let mut ids = std::collections::BTreeSet::new();
        for sc in super::all() {
            for c in sc.checks() {
                assert_eq!(c.id, format!("{}/{}", sc.name(), c.name), "id of {}", c.name);
                assert!(exactsim_model::checks::info(c.id).is_none(), "{} shadows an engine check", c.id);
                assert!(ids.insert(c.id), "{} declared twice", c.id);
                assert!(!c.name.is_empty() && !c.name.contains(' '), "{}: one word", c.name);
                assert!(!c.meaning.contains('\n') && c.meaning.len() < 120, "{}: one line", c.id);
            }
        }
        assert!(ids.contains("copier/order-per-partition") && ids.contains("inventory/no-oversell"), "{ids:?}");
    }
}
