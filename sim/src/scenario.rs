//! What a scenario supplies: an input generator driven by the seed, the
//! pipeline (a keyed operator), and a batch reference computed from the
//! input alone, by code independent of the operator.

use crate::history::History;
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
    /// This workload's own invariants, checked in every run (every
    /// campaign, replay and shrink) after the engine-wide checks.
    fn checks(&self) -> Vec<ScenarioCheck> {
        Vec::new()
    }
}

/// A scenario's own check: a name (reported as the check, e.g.
/// `inventory/no-oversell`) and a function of the history returning one
/// message per violation.
#[derive(Clone, Copy)]
pub struct ScenarioCheck {
    pub name: &'static str,
    pub check: fn(&History) -> Vec<String>,
}

/// A reusable scenario check: in exactly-once mode, within every output
/// partition of the final output, the records of each key appear in input
/// order (`src` increasing). Records of one key are handled by one
/// subtask and committed in checkpoint order, so a reorder means a commit
/// came out of order. (At-least-once mode replays, so it is not judged.)
pub fn check_order_per_partition(h: &History) -> Vec<String> {
    if h.mode != exactsim_engine::types::DeliveryMode::ExactlyOnce {
        return Vec::new();
    }
    let mut v = Vec::new();
    for (p, recs) in h.final_output.iter().enumerate() {
        let mut last: std::collections::BTreeMap<u64, u64> = std::collections::BTreeMap::new();
        for o in recs {
            if let Some(prev) = last.insert(o.key, o.src) {
                if o.src <= prev {
                    v.push(format!(
                        "partition {p}: key {} has src {} after src {prev}: out of input order",
                        o.key, o.src
                    ));
                }
            }
        }
    }
    v
}
