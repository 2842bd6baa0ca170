//! The two-phase-commit sink contract (Flink's `TwoPhaseCommitSinkFunction`)
//! and its bookkeeping.
//!
//! Contract, per sink subtask:
//! - `begin` a transaction; `write` records into it;
//! - on barrier `n`: `pre_commit` (flush) and keep the transaction in the
//!   checkpoint state as pending for `n`, then `begin` the next one;
//! - on `notify_complete(n)`: `commit` every pending transaction with id
//!   `<= n`, in order. Notifications may be lost, late or duplicated; a
//!   later one covers all earlier pending work; a stale one is a no-op;
//! - on recovery from checkpoint `n`: `recover_and_commit` every pending
//!   transaction of `n` (it may already be committed: commit is idempotent),
//!   `recover_and_abort` the restored open one, abort lingering ones.
//!
//! [`TxnBook`] is that bookkeeping as a plain state machine.
//! [`BrokerSink`] (in `broker_sink.rs`) implements the contract on the
//! transactional broker. A user's sink implements [`TwoPhaseCommitSink`]
//! the same way.

pub use crate::broker_sink::{BrokerSink, FLUSH_RECORDS};
use crate::config::{JobConfig, Mutant};
use crate::net::Net;
use crate::observe::{Obs, TxnId};
use crate::types::{CheckpointId, OutRecord};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// A transaction handle, kept in checkpoint state. `name` is the external
/// transactional id, `epoch` the producer epoch it was begun with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnHandle {
    pub name: TxnId,
    pub epoch: u64,
    /// Records written into it.
    pub records: u64,
    /// Next append sequence number.
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkError {
    /// Retryable trouble (timeouts, I/O errors): fail the task, recover.
    Transient(String),
    /// The transaction is gone (fenced, aborted by timeout): its data can no
    /// longer be committed.
    TxnLost(String),
}

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SinkError::Transient(s) => write!(f, "transient: {s}"),
            SinkError::TxnLost(s) => write!(f, "transaction lost: {s}"),
        }
    }
}

/// The two-phase-commit sink contract. Object safe, so the engine can drive
/// a user's implementation.
#[async_trait]
pub trait TwoPhaseCommitSink: Send {
    /// Begin a transaction. `hint` is the id of the checkpoint it will most
    /// likely belong to (used to derive unique transactional ids).
    async fn begin(&mut self, hint: CheckpointId) -> Result<TxnHandle, SinkError>;
    async fn write(&mut self, txn: &mut TxnHandle, records: &[OutRecord]) -> Result<(), SinkError>;
    /// Flush everything written so the transaction can later be committed.
    async fn pre_commit(&mut self, txn: &mut TxnHandle) -> Result<(), SinkError>;
    /// Commit. Must be idempotent: committing a committed transaction is Ok.
    async fn commit(&mut self, txn: &TxnHandle) -> Result<(), SinkError>;
    async fn abort(&mut self, txn: &TxnHandle) -> Result<(), SinkError>;
    /// Commit a pending transaction restored from a checkpoint.
    async fn recover_and_commit(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        self.commit(txn).await
    }
    /// Abort the open transaction restored from a checkpoint, fencing any
    /// older writer of it.
    async fn recover_and_abort(&mut self, txn: &TxnHandle) -> Result<(), SinkError>;
    /// Abort transactions of this subtask that no checkpoint knows of
    /// (begun after the restored checkpoint by a failed attempt), and fence
    /// every transactional id the failed attempts could have used
    /// (`after < id <= upto`), so that their late writes are rejected.
    async fn abort_lingering(&mut self, _after: Option<CheckpointId>, _upto: CheckpointId) -> Result<(), SinkError> {
        Ok(())
    }
    /// At-least-once mode: make `records` visible now, without 2PC (called
    /// at every barrier and whenever enough output is buffered). The default
    /// wraps the batch in a transaction of its own and commits it at once;
    /// a sink with a cheaper non-transactional write overrides it.
    async fn append(&mut self, records: Vec<OutRecord>) -> Result<(), SinkError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut txn = self.begin(CheckpointId::MAX).await?;
        self.write(&mut txn, &records).await?;
        self.pre_commit(&mut txn).await?;
        self.commit(&txn).await
    }
}

/// What a sink subtask is given to reach the world: the node's network
/// endpoint, the broker's address, the job configuration, its subtask
/// index, where each record goes (`route`) and the node's observer.
#[derive(Clone)]
pub struct SinkEnv {
    pub net: Arc<Net>,
    pub broker: SocketAddr,
    /// The sink's system: the pipeline's own (`Pipeline::system`) when it
    /// has one, else the broker.
    pub system: SocketAddr,
    pub cfg: Arc<JobConfig>,
    pub subtask: u32,
    /// The output partition of each record (the pipeline's partitioner).
    pub route: Route,
    /// The node's observer: `obs.emit(Event::..)` records a history event
    /// (in simulation; a no-op outside) and `obs.point(FaultPoint::..).await`
    /// is a fault point where the simulator may crash the node (coverage is
    /// counted per node and point).
    pub obs: Obs,
    /// The job attempt this sink belongs to (strictly increasing across
    /// recoveries): a fencing token for the external system.
    pub attempt: u64,
    /// The worker process's incarnation (random, new at every restart).
    pub incarnation: u64,
    /// Orders the producer sessions of one attempt: (the newest
    /// `Msg::Deploy::seq` of the attempt this process had received, its
    /// recovery try). See `Request::InitProducer`.
    pub session: (u64, u64),
}

/// Where a sink sends each record: `Pipeline::output_partition` over the
/// job's output partitions (built by the pipeline module's `route`).
pub type Route = Arc<dyn Fn(&OutRecord) -> u32 + Send + Sync>;

/// What the sink keeps in a checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SinkSnapshot {
    /// Pre-committed transactions not yet known to be committed, by the
    /// checkpoint they were pre-committed for.
    pub pending: Vec<(CheckpointId, TxnHandle)>,
    /// The transaction open at the time of the snapshot.
    pub open: Option<TxnHandle>,
    /// When each of those transactions began, by (name, epoch), in the
    /// beginning node's [`crate::clock::Clock::epoch_ms`]: a lost one is
    /// forgiven (`ignore_lost_commits`) only once its timeout has passed.
    #[serde(default)]
    pub began_ms: Vec<((TxnId, u64), u64)>,
}

/// What to do on `notify_complete(n)`.
#[derive(Debug, Clone, PartialEq)]
pub enum NotifyPlan {
    /// Commit these, in this order (ids increasing).
    Commit(Vec<(CheckpointId, TxnHandle)>),
    /// Nothing pending up to `n`: a late or duplicate notification.
    Nothing,
    /// Planted bug: treat a late notification as an error.
    Error(String),
}

/// The 2PC transaction bookkeeping of one sink subtask.
#[derive(Debug, Default)]
pub struct TxnBook {
    pending: BTreeMap<CheckpointId, TxnHandle>,
    open: Option<TxnHandle>,
    /// When the open and pending transactions began (see
    /// [`SinkSnapshot::began_ms`]).
    began: BTreeMap<(TxnId, u64), u64>,
    last_notified: Option<CheckpointId>,
    mutant: Option<Mutant>,
}

impl TxnBook {
    pub fn new(mutant: Option<Mutant>) -> Self {
        TxnBook { mutant, ..Default::default() }
    }

    /// The open transaction (records go into it), if any.
    pub fn open(&self) -> Option<&TxnHandle> {
        self.open.as_ref()
    }

    /// The open transaction as the sink last returned it: a new one
    /// (begin, restore) or the same one after a write or flush.
    pub fn set_open(&mut self, txn: TxnHandle) {
        if let Some(old) = &self.open {
            assert_eq!(old.name, txn.name, "an open transaction is replaced only by itself");
        }
        assert!(
            !self.pending.values().any(|p| p.name == txn.name && p.epoch == txn.epoch),
            "a pending transaction is not reopened"
        );
        self.open = Some(txn);
    }

    /// `txn` began at `at_ms` (its node's `epoch_ms`).
    pub fn note_began(&mut self, txn: &TxnHandle, at_ms: u64) {
        self.began.insert((txn.name.clone(), txn.epoch), at_ms);
    }

    /// When `txn` began, if the book knows (it began in this book, or in
    /// the one whose checkpoint was restored).
    pub fn began_ms(&self, txn: &TxnHandle) -> Option<u64> {
        self.began.get(&(txn.name.clone(), txn.epoch)).copied()
    }

    /// Forget the open transaction (a failed begin or a reset), returning it.
    pub fn take_open(&mut self) -> Option<TxnHandle> {
        self.open.take()
    }

    /// Barrier `n`: the open transaction (already flushed) becomes pending.
    pub fn pre_committed(&mut self, ckpt: CheckpointId) -> TxnHandle {
        let txn = self.open.take().expect("a transaction is open at every barrier");
        assert!(self.pending.keys().all(|k| *k < ckpt), "pre-commit ids increase");
        let old = self.pending.insert(ckpt, txn.clone());
        assert!(old.is_none());
        txn
    }

    pub fn notify(&mut self, n: CheckpointId) -> NotifyPlan {
        let late = self.last_notified.is_some_and(|l| n <= l);
        self.last_notified = Some(self.last_notified.map_or(n, |l| l.max(n)));
        if late && self.mutant == Some(Mutant::SubsumedNotifyError) {
            return NotifyPlan::Error(format!("notification for checkpoint {n} arrived after a newer one"));
        }
        let due: Vec<(CheckpointId, TxnHandle)> = if self.mutant == Some(Mutant::NotifyCommitsOnlyExact) {
            self.pending.get(&n).map(|t| vec![(n, t.clone())]).unwrap_or_default()
        } else {
            self.pending.range(..=n).map(|(k, v)| (*k, v.clone())).collect()
        };
        if due.is_empty() {
            NotifyPlan::Nothing
        } else {
            NotifyPlan::Commit(due)
        }
    }

    /// A commit of the transaction pending for `ckpt` is done (or lost).
    pub fn settled(&mut self, ckpt: CheckpointId) {
        let t = self.pending.remove(&ckpt);
        let t = t.expect("settled a transaction that was not pending");
        self.began.remove(&(t.name, t.epoch));
    }

    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    pub fn snapshot(&self) -> SinkSnapshot {
        // Only the transactions the snapshot holds: the book may still
        // know some that went (an aborted open one).
        let held = self.pending.values().chain(self.open.iter());
        let began_ms = held.filter_map(|t| self.began_ms(t).map(|b| ((t.name.clone(), t.epoch), b))).collect();
        SinkSnapshot {
            pending: self.pending.iter().map(|(k, v)| (*k, v.clone())).collect(),
            open: self.open.clone(),
            began_ms,
        }
    }

    /// Restore from a checkpoint: the transactions to re-commit (in order)
    /// and the open one to abort. The book is empty afterwards; pending
    /// entries come back only if a re-commit cannot be made.
    pub fn restore(
        snap: &SinkSnapshot,
        mutant: Option<Mutant>,
    ) -> (TxnBook, Vec<(CheckpointId, TxnHandle)>, Option<TxnHandle>) {
        let mut ids: Vec<CheckpointId> = snap.pending.iter().map(|(k, _)| *k).collect();
        ids.dedup();
        assert_eq!(ids.len(), snap.pending.len(), "pending ids are unique");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "pending ids are sorted");
        let commit = if mutant == Some(Mutant::NoRecommitOnRecovery) { Vec::new() } else { snap.pending.clone() };
        let mut book = TxnBook::new(mutant);
        book.began = snap.began_ms.iter().cloned().collect();
        (book, commit, snap.open.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: &str) -> TxnHandle {
        TxnHandle { name: n.into(), epoch: 0, records: 1, seq: 1 }
    }

    fn book_with(pending: &[u64]) -> TxnBook {
        let mut b = TxnBook::new(None);
        for p in pending {
            b.set_open(h(&format!("t{p}")));
            b.pre_committed(*p);
        }
        b
    }

    fn ids(plan: &NotifyPlan) -> Vec<u64> {
        match plan {
            NotifyPlan::Commit(v) => v.iter().map(|(k, _)| *k).collect(),
            _ => vec![],
        }
    }

    #[test]
    fn notify_commits_all_pending_up_to_n_in_order() {
        let mut b = book_with(&[3, 5, 7]);
        let plan = b.notify(5);
        assert_eq!(ids(&plan), vec![3, 5]);
        b.settled(3);
        b.settled(5);
        assert_eq!(b.pending_count(), 1);
    }

    #[test]
    fn lost_notification_is_covered_by_a_later_one() {
        let mut b = book_with(&[3, 5]);
        // notify(3) lost
        assert_eq!(ids(&b.notify(5)), vec![3, 5]);
    }

    #[test]
    fn out_of_order_and_duplicate_notifications() {
        let mut b = book_with(&[3, 5]);
        assert_eq!(ids(&b.notify(5)), vec![3, 5]);
        b.settled(3);
        b.settled(5);
        assert_eq!(b.notify(3), NotifyPlan::Nothing); // late
        assert_eq!(b.notify(5), NotifyPlan::Nothing); // duplicate
    }

    #[test]
    fn late_notification_while_work_pending_commits_only_older() {
        let mut b = book_with(&[3, 5]);
        assert_eq!(ids(&b.notify(3)), vec![3]);
        b.settled(3);
        // a duplicate of notify(3) arrives late: nothing to do, 5 stays
        assert_eq!(b.notify(3), NotifyPlan::Nothing);
        assert_eq!(b.pending_count(), 1);
    }

    #[test]
    fn failure_before_notify_recommits_on_restore_twice() {
        let mut b = book_with(&[3]);
        b.set_open(h("t4"));
        let snap = b.snapshot();
        // crash before notify; restore twice from the same checkpoint
        for _ in 0..2 {
            let (book, commit, abort) = TxnBook::restore(&snap, None);
            assert_eq!(commit.iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec![3]);
            assert_eq!(abort, Some(h("t4")));
            assert_eq!(book.pending_count(), 0);
        }
    }

    #[test]
    fn end_of_input_empty_transactions_are_bookkept() {
        let mut b = TxnBook::new(None);
        b.open = Some(TxnHandle { name: "e".into(), epoch: 0, records: 0, seq: 0 });
        let t = b.pre_committed(9);
        assert_eq!(t.records, 0);
        assert_eq!(ids(&b.notify(9)), vec![9]);
    }

    #[test]
    fn planted_bugs_change_the_plan() {
        let mut b = book_with(&[3, 5]);
        b.mutant = Some(Mutant::NotifyCommitsOnlyExact);
        assert_eq!(ids(&b.notify(5)), vec![5]);
        let mut b = book_with(&[3]);
        b.mutant = Some(Mutant::SubsumedNotifyError);
        b.notify(3);
        assert!(matches!(b.notify(3), NotifyPlan::Error(_)));
        let snap = book_with(&[3]).snapshot();
        assert!(TxnBook::restore(&snap, Some(Mutant::NoRecommitOnRecovery)).1.is_empty());
    }
}
