//! A pool of transactional ids for one sink subtask (Flink's KafkaSink
//! `TransactionNamingStrategy.POOLING`): instead of one id per checkpoint,
//! a subtask reuses the ids of transactions that have ended.
//!
//! A plain state machine, no I/O:
//! - [`TxnIdPool::acquire`] gives the smallest id no transaction holds;
//! - [`TxnIdPool::release`] gives an id back once its transaction has
//!   ended (committed, or known lost): only then may a new transaction take
//!   it, and taking it (a producer init) bumps the id's epoch;
//! - [`TxnIdPool::lingering`] is what a recovery must abort: every id the
//!   system shows open under the subtask's prefix (the recovery has
//!   committed the restored pre-committed transactions before it asks, so
//!   none of them is owned any more), plus every id below
//!   [`FENCE_FLOOR`], so that a failed attempt's late writes under an id it
//!   had initialized but not yet written to are fenced too.
//!
//! What reuse changes for recovery: a restored pre-committed transaction
//! `(id, epoch)` may find its id taken since by a newer transaction (the
//! id was released when the restored one committed, and the failed
//! attempt reused it). The restored one is then committed already; the
//! recovery's re-commit must be recognized as such (the system knows the
//! instance `(id, epoch)` committed), and the newer transaction under the
//! id, begun by the failed attempt for a checkpoint that did not
//! complete, must be aborted, never committed ([`Mutant::Flink40626RecommitReusedId`]).
//! Ids left open above an id that is not (a gap: an id committed, or the
//! id of an aborted checkpoint's transaction) must be found too: probing
//! ids upwards until the first one without an open transaction misses
//! them ([`Mutant::Flink23854LingeringGap`]).

use crate::config::Mutant;
use std::collections::BTreeSet;

/// A recovery fences at least the ids `0..FENCE_FLOOR` (a subtask's pool
/// holds its open transaction and the pending ones: a few ids).
pub const FENCE_FLOOR: u32 = 8;

/// The ids of one sink subtask's pool in use by its live transactions.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TxnIdPool {
    in_use: BTreeSet<u32>,
}

impl TxnIdPool {
    pub fn new() -> Self {
        Self::default()
    }

    /// The smallest id no live transaction holds; it is held from now on.
    pub fn acquire(&mut self) -> u32 {
        let id = (0..).find(|i| !self.in_use.contains(i)).expect("a free id");
        self.in_use.insert(id);
        id
    }

    /// The transaction under `id` has ended: the id may be reused. A second
    /// release (a duplicate commit) is a no-op.
    pub fn release(&mut self, id: u32) {
        self.in_use.remove(&id);
    }

    /// Ids held by live transactions.
    pub fn in_use(&self) -> impl Iterator<Item = u32> + '_ {
        self.in_use.iter().copied()
    }

    /// What a recovery aborts (fences), given the ids the system shows open
    /// under the subtask's prefix, after the restored pre-committed
    /// transactions were committed: every open id and every id below
    /// [`FENCE_FLOOR`], in increasing order. Planted bug
    /// (`flink-23854-lingering-gap`): probe upwards from 0 and stop at the
    /// first id without an open transaction.
    pub fn lingering(open: &BTreeSet<u32>, mutant: Option<Mutant>) -> Vec<u32> {
        if mutant == Some(Mutant::Flink23854LingeringGap) {
            return (0..).take_while(|i| open.contains(i)).collect();
        }
        let floor: BTreeSet<u32> = (0..FENCE_FLOOR).collect();
        floor.union(open).copied().collect()
    }
}

/// The pool id of a transactional name `{prefix}p{id}`, if it is one.
pub fn id_of(prefix: &str, name: &str) -> Option<u32> {
    name.strip_prefix(prefix)?.strip_prefix('p')?.parse().ok()
}

/// The transactional name of pool id `id` under `prefix`.
pub fn name_of(prefix: &str, id: u32) -> String {
    format!("{prefix}p{id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_are_reused_only_after_release() {
        let mut p = TxnIdPool::new();
        assert_eq!(p.acquire(), 0);
        assert_eq!(p.acquire(), 1);
        p.release(0);
        assert_eq!(p.acquire(), 0, "the committed id comes back");
        assert_eq!(p.acquire(), 2);
        p.release(1);
        p.release(1);
        assert_eq!(p.in_use().collect::<Vec<_>>(), vec![0, 2]);
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(id_of("job-sink-1-", &name_of("job-sink-1-", 7)), Some(7));
        assert_eq!(id_of("job-sink-1-", "job-sink-1-7"), None, "a per-checkpoint name is not a pool id");
        assert_eq!(id_of("job-sink-1-", "job-sink-11-p7"), None);
    }

    #[test]
    fn recovery_aborts_open_ids_above_a_gap() {
        // Ids 0 and 2 committed or never written (gaps), 1, 3 and 9 open.
        let open: BTreeSet<u32> = [1, 3, 9].into();
        let all = TxnIdPool::lingering(&open, None);
        assert!(open.iter().all(|i| all.contains(i)));
        assert!((0..FENCE_FLOOR).all(|i| all.contains(&i)));
        assert!(TxnIdPool::lingering(&open, Some(Mutant::Flink23854LingeringGap)).is_empty(), "stops at 0");
        let from0: BTreeSet<u32> = [0, 1, 3].into();
        assert_eq!(TxnIdPool::lingering(&from0, Some(Mutant::Flink23854LingeringGap)), vec![0, 1]);
    }

    proptest! {
        /// Under any sequence of acquires and releases, no two live
        /// transactions share an id, an acquired id is the smallest free
        /// one, and the pool holds no more ids than live transactions.
        #[test]
        fn no_id_is_held_twice(ops in proptest::collection::vec(any::<(bool, u8)>(), 0..200)) {
            let mut p = TxnIdPool::new();
            let mut live: BTreeSet<u32> = BTreeSet::new();
            for (acq, pick) in ops {
                if acq || live.is_empty() {
                    let id = p.acquire();
                    prop_assert!(!live.contains(&id));
                    prop_assert!((0..id).all(|i| live.contains(&i)), "smallest free");
                    live.insert(id);
                } else {
                    let id = *live.iter().nth(pick as usize % live.len()).unwrap();
                    live.remove(&id);
                    p.release(id);
                }
                prop_assert_eq!(p.in_use().collect::<BTreeSet<_>>(), live.clone());
            }
        }

        /// A recovery fences every open id, whatever the gaps between them.
        #[test]
        fn recovery_fences_every_open_id(open in proptest::collection::btree_set(0u32..64, 0..20)) {
            let fenced: BTreeSet<u32> = TxnIdPool::lingering(&open, None).into_iter().collect();
            prop_assert!(open.is_subset(&fenced));
        }
    }
}
