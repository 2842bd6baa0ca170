//! Plain data types shared by every part of the engine.

use serde::{Deserialize, Serialize};

/// A checkpoint id. Strictly increasing, also across coordinator restarts.
pub type CheckpointId = u64;
/// An execution attempt of the job. Every global restart starts a new attempt;
/// messages tagged with an older attempt are ignored.
pub type Attempt = u64;

/// One input record. Input topics are partitioned by key, so all records of a
/// key sit in one partition, in order; that makes per-key processing order a
/// function of the input alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Globally unique id of the input record (its provenance).
    pub id: u64,
    pub key: u64,
    /// Event time in milliseconds (non-decreasing within a partition).
    pub ts_ms: u64,
    pub value: i64,
}

/// One output record. `out_id` is the identity of the output in the batch
/// reference (unique there); `src` is the input record that produced it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OutRecord {
    pub out_id: u64,
    pub key: u64,
    pub value: i64,
    pub src: u64,
}

/// Which task of the job graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TaskId {
    /// Source subtask `i` reads input partition `i`.
    Source(u32),
    /// Operator subtask `i` chained with sink subtask `i` (writes output
    /// partition `i`).
    Chain(u32),
}

impl TaskId {
    pub fn subtask(self) -> u32 {
        match self {
            TaskId::Source(i) | TaskId::Chain(i) => i,
        }
    }
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskId::Source(i) => write!(f, "source-{i}"),
            TaskId::Chain(i) => write!(f, "chain-{i}"),
        }
    }
}

/// Delivery guarantee the job runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryMode {
    /// Aligned barriers and a two-phase-commit sink.
    ExactlyOnce,
    /// No alignment, plain appends: duplicates allowed, no loss.
    AtLeastOnce,
}

impl DeliveryMode {
    pub fn name(self) -> &'static str {
        match self {
            DeliveryMode::ExactlyOnce => "exactly-once",
            DeliveryMode::AtLeastOnce => "at-least-once",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "exactly-once" => Some(DeliveryMode::ExactlyOnce),
            "at-least-once" => Some(DeliveryMode::AtLeastOnce),
            _ => None,
        }
    }
}

/// The operator subtask a key is routed to (keyed shuffle). The batch
/// references use the same function to split expected output by partition.
pub fn key_to_subtask(key: u64, parallelism: u32) -> u32 {
    assert!(parallelism > 0);
    // A fixed mix so that neighbouring keys spread; stable across versions.
    let mut x = key.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x % parallelism as u64) as u32
}
