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
/// reference (unique there); `src` is the input record that produced it;
/// `writer` is its lineage: who handed it to the sink (stamped by the
/// engine when the record enters a transaction, see [`Writer`]).
///
/// Equality and order are by content (`out_id`, `key`, `value`, `src`):
/// the writer is provenance, and the same output written again by a later
/// attempt is the same record (a duplicate, when both become visible).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OutRecord {
    pub out_id: u64,
    pub key: u64,
    pub value: i64,
    pub src: u64,
    /// Who wrote it. A sink's system must store and return it with the
    /// record: the fencing check (P14) judges any system by it.
    #[serde(default)]
    pub writer: Writer,
}

impl OutRecord {
    /// A record with no writer yet (operators make these; the engine stamps
    /// the writer when it hands the record to a sink).
    pub fn new(out_id: u64, key: u64, value: i64, src: u64) -> OutRecord {
        OutRecord { out_id, key, value, src, writer: Writer::default() }
    }

    fn content(&self) -> (u64, u64, i64, u64) {
        (self.out_id, self.key, self.value, self.src)
    }
}

impl PartialEq for OutRecord {
    fn eq(&self, other: &Self) -> bool {
        self.content() == other.content()
    }
}

impl Eq for OutRecord {}

impl PartialOrd for OutRecord {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OutRecord {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.content().cmp(&other.content())
    }
}

/// Who may write a sink subtask's output: a producer session of one job
/// attempt of one run of the job. Field order is the order of owners: a
/// newer run supersedes whatever its attempt, a newer attempt whatever its
/// session; `session` is (the newest deploy of the attempt the worker
/// process had received, its recovery try). Once a newer owner of a
/// subtask has started, an older one is a zombie: nothing it writes from
/// then on may become visible.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Owner {
    pub run: u64,
    pub attempt: u64,
    pub session: (u64, u64),
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (deploy, try_) = self.session;
        write!(f, "job attempt {} (run {}, session: deploy {deploy}, try {try_})", self.attempt, self.run)
    }
}

/// The lineage of an output record: the owner and sink subtask that wrote
/// it and the transaction it was written into (`txn_tag` of the
/// transaction's name; 0 for an at-least-once append). The engine stamps
/// it; `Event::PreCommitted` carries the same value for the transaction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Writer {
    pub owner: Owner,
    pub subtask: u32,
    pub txn: u64,
}

impl Writer {
    /// No writer recorded (a record that never went through a sink task,
    /// or a system that dropped the lineage).
    pub fn is_unknown(&self) -> bool {
        *self == Writer::default()
    }
}

/// A transaction's tag in a record's lineage (FNV-1a of its name and
/// epoch, never 0): names are the sink's own and may be reused under a new
/// epoch (the broker's ids are), so the lineage keeps a fixed-size
/// fingerprint of the transaction instance.
pub fn txn_tag(name: &str, epoch: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes().chain(epoch.to_le_bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h.max(1)
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
