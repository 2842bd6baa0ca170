//! What a scenario supplies: an input generator driven by the seed, the
//! pipeline (a keyed operator), and a batch reference computed from the
//! input alone, by code independent of the operator.

use crate::rng::SimRng;
use exactsim_engine::config::JobConfig;
use exactsim_engine::pipeline::Pipeline;
use exactsim_engine::types::{OutRecord, Record};
use std::sync::Arc;

pub trait Scenario: Send + Sync {
    fn name(&self) -> &'static str;
    /// One line for `exactsim scenarios`.
    fn description(&self) -> &'static str;
    /// Adjust job parameters (pacing, parallelism) from the topology stream.
    fn tune(&self, _cfg: &mut JobConfig, _rng: &mut SimRng) {}
    /// The input topic: `partitions` partitions. Records of one key must all
    /// sit in one partition, `ts_ms` non-decreasing within a partition, ids
    /// unique.
    fn generate(&self, rng: &mut SimRng, partitions: u32) -> Vec<Vec<Record>>;
    fn pipeline(&self) -> Arc<dyn Pipeline>;
    /// The expected output after processing exactly the first `offsets[i]`
    /// records of each partition `i` (`offsets[i] == input[i].len()` means
    /// that source has ended). `out_id`s are unique in the result.
    fn reference(&self, input: &[Vec<Record>], offsets: &[u64]) -> Vec<OutRecord>;
}
