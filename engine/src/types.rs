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

/// The number of key groups: keyed state is owned, moved and restored in
/// key groups, the unit a rescaled job redistributes (Flink's maximum
/// parallelism). 720,720 is the least common multiple of 1 to 16, so at
/// every parallelism up to 16 each subtask owns exactly as many groups as
/// any other.
pub const KEY_GROUPS: u64 = 720_720;

/// The key group of a key: a fixed mix, so that neighbouring keys spread;
/// stable across versions.
pub fn key_group(key: u64) -> u64 {
    let mut x = key.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    x % KEY_GROUPS
}

/// The subtask that owns key group `group` at `parallelism`: group `g` is
/// owned by subtask `g mod parallelism`. Rescaling from `p` to `q`
/// subtasks, new subtask `i` takes groups from the old subtasks `k` with
/// `k ≡ i (mod gcd(p, q))` ([`rescale_sources`]).
pub fn group_to_subtask(group: u64, parallelism: u32) -> u32 {
    assert!(parallelism > 0);
    assert!(group < KEY_GROUPS);
    (group % parallelism as u64) as u32
}

/// The operator subtask a key is routed to (keyed shuffle): the owner of
/// its key group. The batch references use the same function to split
/// expected output by partition.
pub fn key_to_subtask(key: u64, parallelism: u32) -> u32 {
    group_to_subtask(key_group(key), parallelism)
}

/// Rescaling from `old` to `new` subtasks: the old subtasks whose key
/// groups new subtask `i` takes over (some of their groups, or all).
pub fn rescale_sources(old: u32, new: u32, i: u32) -> Vec<u32> {
    assert!(old > 0 && new > 0 && i < new);
    let g = gcd(old, new);
    (0..old).filter(|k| k % g == i % g).collect()
}

/// Rescaling from `old` to `new` subtasks: the removed subtask `k`
/// (`k >= new`) is adopted by survivor `k mod new`, which recovers and
/// ends what it left in the sink's system. Exactly one survivor owns each.
pub fn adopter_of(removed: u32, new: u32) -> u32 {
    assert!(new > 0);
    removed % new
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The routing before key groups: the mix modulo the parallelism.
    fn hashed(key: u64, parallelism: u32) -> u32 {
        let mut x = key.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
        (x % parallelism as u64) as u32
    }

    #[test]
    fn key_groups_route_every_key_where_the_hash_did_up_to_sixteen_subtasks() {
        for p in 1..=16 {
            assert_eq!(KEY_GROUPS % p as u64, 0);
            for key in (0..5_000).chain([u64::MAX, u64::MAX - 1, 1 << 40]) {
                assert_eq!(key_to_subtask(key, p), hashed(key, p), "key {key} at {p}");
            }
        }
    }

    #[test]
    fn a_new_subtask_takes_its_groups_only_from_the_old_subtasks_it_names() {
        for old in 1..=6 {
            for new in 1..=6 {
                for key in 0..3_000 {
                    let (from, to) = (key_to_subtask(key, old), key_to_subtask(key, new));
                    assert!(rescale_sources(old, new, to).contains(&from), "{key}: {old}->{new}");
                }
                // Every removed subtask has exactly one adopter, a survivor.
                for k in new..old {
                    assert!(adopter_of(k, new) < new);
                }
            }
        }
        assert_eq!(rescale_sources(3, 2, 1), vec![0, 1, 2]);
        assert_eq!(rescale_sources(4, 2, 1), vec![1, 3]);
        assert_eq!(rescale_sources(2, 4, 3), vec![1]);
    }
}
