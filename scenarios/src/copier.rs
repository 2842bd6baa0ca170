//! # copier
//!
//! ## What it models
//! A Kafka-style topic copy: every input record is copied to the output
//! topic unchanged. Two input partitions, the seed's parallelism (2 to 4
//! workers: a worker may run no source), and three output partitions, with
//! the scenario's own partitioner (a key goes to output
//! partition `(key / 3) % 3`, not to the partition of the subtask that
//! handled it): a sink subtask's transaction spans several partitions, and
//! each output partition is written by several subtasks.
//!
//! ## Invariants checked
//! P1–P13, plus its own check `copier/order-per-partition` (in every run):
//! within an output partition, the records of a key appear in input order.
//!
//! ## Fault points it expects to reach
//! All the sink and coordinator points; the stateless operator makes any
//! loss or duplicate a pure 2PC or source-offset bug.

use crate::gen::layout;
use exactsim_engine::config::JobConfig;
use exactsim_engine::pipeline::{KeyedOperator, Pipeline};
use exactsim_engine::types::{OutRecord, Record};
use exactsim_model::rng::SimRng;
use exactsim_model::scenario::{order_per_partition, IncrementalReference, Scenario, ScenarioCheck};
use std::sync::Arc;

pub struct Copier;

fn copy(r: &Record) -> OutRecord {
    OutRecord::new(r.id, r.key, r.value, r.id)
}

struct Op;

impl KeyedOperator for Op {
    fn process(&mut self, rec: &Record, out: &mut Vec<OutRecord>) {
        out.push(copy(rec));
    }
    fn snapshot(&self) -> Vec<u8> {
        Vec::new()
    }
    fn restore(&mut self, _bytes: &[u8]) -> Result<(), String> {
        Ok(())
    }
    fn restore_keys(&mut self, _bytes: &[u8], _keep: &dyn Fn(u64) -> bool) -> Result<(), String> {
        Ok(())
    }
}

struct P;
impl Pipeline for P {
    fn name(&self) -> &str {
        "copier"
    }
    fn create(&self, _subtask: u32, _parallelism: u32) -> Box<dyn KeyedOperator> {
        Box::new(Op)
    }
    fn output_partition(&self, rec: &OutRecord, partitions: u32) -> u32 {
        ((rec.key / 3) % partitions as u64) as u32
    }
}

impl Scenario for Copier {
    fn name(&self) -> &'static str {
        "copier"
    }
    fn description(&self) -> &'static str {
        "topic copy: 2 input partitions, 3 output partitions, own partitioner, order per partition"
    }
    fn tune(&self, cfg: &mut JobConfig, _rng: &mut SimRng) {
        // Parallelism stays the seed's (2 to 4): all three set apart.
        cfg.input_partitions = 2;
        cfg.output_partitions = 3;
    }
    fn generate(&self, rng: &mut SimRng, partitions: u32) -> Vec<Vec<Record>> {
        let n = rng.range(1500, 3000);
        let keys = rng.range(20, 60);
        let draws = (0..n).map(|_| (rng.below(keys), rng.range(1, 9) as i64)).collect();
        layout(rng, partitions, draws, 3)
    }
    fn pipeline(&self) -> Arc<dyn Pipeline> {
        Arc::new(P)
    }
    fn reference(&self, input: &[Vec<Record>], offsets: &[u64]) -> Vec<OutRecord> {
        input.iter().zip(offsets).flat_map(|(p, o)| p[..*o as usize].iter().map(copy)).collect()
    }
    fn incremental<'a>(&self, input: &'a [Vec<Record>]) -> Option<Box<dyn IncrementalReference + 'a>> {
        Some(crate::per_record::per_record(input, |_: &mut (), r: &Record| copy(r)))
    }
    fn checks(&self) -> Vec<ScenarioCheck> {
        vec![order_per_partition("copier/order-per-partition")]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partitioner_spreads_keys_over_three_partitions() {
        let parts: std::collections::BTreeSet<u32> =
            (0..30).map(|k| P.output_partition(&OutRecord::new(0, k, 0, 0), 3)).collect();
        assert_eq!(parts.len(), 3);
    }

    #[test]
    fn incremental_reference_matches_reference() {
        for seed in 0..4 {
            let input = Copier.generate(&mut SimRng::new(seed), 2);
            exactsim_model::scenario::check_incremental(&Copier, &input, &mut SimRng::new(seed), 6).unwrap();
        }
    }
}
