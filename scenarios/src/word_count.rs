//! # word_count
//!
//! ## What it models
//! The classic streaming word count as a changelog: for every input word the
//! job emits the word's running count. Words follow a skewed distribution (a
//! few hot keys), so one operator subtask carries most of the load.
//!
//! ## Invariants checked
//! P1 (every input record's count emitted exactly once, with the right
//! value: a replayed record counted twice shows up as a wrong value), P2/P3
//! (visible output is the reference over a completed checkpoint's input
//! prefix), and the transaction checks P4–P10; P11 liveness; P12 in
//! at-least-once mode.
//!
//! ## Fault points it expects to reach
//! after_precommit_before_ack, after_snapshot_before_ack,
//! before_completion_record, after_completion_before_notify, between_commits
//! (several pending transactions after a lost notification),
//! after_commits_before_notify_ack, during_recovery, source_after_read,
//! broker_after_commit_marker, store_after_blob_durable.

use crate::gen::layout;
use crate::running_sum::{self, RunningSum};
use exactsim_engine::pipeline::{KeyedOperator, Pipeline};
use exactsim_engine::types::{OutRecord, Record};
use exactsim_model::rng::SimRng;
use exactsim_model::scenario::{IncrementalReference, Scenario};
use std::sync::Arc;

pub struct WordCount;

struct P;
impl Pipeline for P {
    fn name(&self) -> &str {
        "word_count"
    }
    fn create(&self, _subtask: u32, _parallelism: u32) -> Box<dyn KeyedOperator> {
        Box::new(RunningSum::new("word_count"))
    }
}

impl Scenario for WordCount {
    fn name(&self) -> &'static str {
        "word_count"
    }
    fn description(&self) -> &'static str {
        "running count per word (changelog), skewed keys"
    }
    fn generate(&self, rng: &mut SimRng, partitions: u32) -> Vec<Vec<Record>> {
        let n = rng.range(2000, 4000);
        let words = rng.range(50, 200);
        let draws = (0..n)
            .map(|_| {
                // Skew: half the records hit the 5 hottest words.
                let w = if rng.chance(1, 2) { rng.below(5) } else { rng.below(words) };
                (w, 1)
            })
            .collect();
        layout(rng, partitions, draws, 3)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_is_deterministic_and_keyed() {
        let a = WordCount.generate(&mut SimRng::new(5), 3);
        let b = WordCount.generate(&mut SimRng::new(5), 3);
        assert_eq!(a, b);
        for (p, recs) in a.iter().enumerate() {
            assert!(recs.iter().all(|r| r.key % 3 == p as u64));
            assert!(recs.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms));
        }
        assert_ne!(a, WordCount.generate(&mut SimRng::new(6), 3));
    }

    #[test]
    fn operator_matches_reference() {
        let input = WordCount.generate(&mut SimRng::new(1), 2);
        let mut op = P.create(0, 1);
        let mut out = Vec::new();
        // Interleave partitions; per-key order is preserved.
        let (mut i, mut j) = (0, 0);
        while i < input[0].len() || j < input[1].len() {
            if i < input[0].len() {
                op.process(&input[0][i], &mut out);
                i += 1;
            }
            if j < input[1].len() {
                op.process(&input[1][j], &mut out);
                j += 1;
            }
        }
        let full: Vec<u64> = input.iter().map(|p| p.len() as u64).collect();
        let mut want = WordCount.reference(&input, &full);
        out.sort();
        want.sort();
        assert_eq!(out, want);
    }

    #[test]
    fn incremental_reference_matches_reference() {
        for seed in 0..4 {
            let input = WordCount.generate(&mut SimRng::new(seed), 3);
            exactsim_model::scenario::check_incremental(&WordCount, &input, &mut SimRng::new(seed), 6).unwrap();
        }
    }
}
