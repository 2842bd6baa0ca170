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
//! [`BrokerSink`] implements the contract on the transactional broker. A
//! user's sink implements [`TwoPhaseCommitSink`] the same way.

use crate::config::{JobConfig, Mutant};
use crate::net::Net;
use crate::observe::TxnId;
use crate::proto::{Request, Response};
use crate::types::{CheckpointId, OutRecord};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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
/// endpoint, the broker's address, the job configuration and its subtask
/// index (which is also the output partition it writes).
#[derive(Clone)]
pub struct SinkEnv {
    pub net: Arc<Net>,
    pub broker: SocketAddr,
    pub cfg: Arc<JobConfig>,
    pub subtask: u32,
    /// The job attempt this sink belongs to (strictly increasing across
    /// recoveries): a fencing token for the external system.
    pub attempt: u64,
    /// The worker process's incarnation (random, new at every restart).
    pub incarnation: u64,
}

/// What the sink keeps in a checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SinkSnapshot {
    /// Pre-committed transactions not yet known to be committed, by the
    /// checkpoint they were pre-committed for.
    pub pending: Vec<(CheckpointId, TxnHandle)>,
    /// The transaction open at the time of the snapshot.
    pub open: Option<TxnHandle>,
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
    pub open: Option<TxnHandle>,
    last_notified: Option<CheckpointId>,
    mutant: Option<Mutant>,
}

impl TxnBook {
    pub fn new(mutant: Option<Mutant>) -> Self {
        TxnBook { mutant, ..Default::default() }
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
        assert!(t.is_some(), "settled a transaction that was not pending");
    }

    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    pub fn snapshot(&self) -> SinkSnapshot {
        SinkSnapshot { pending: self.pending.iter().map(|(k, v)| (*k, v.clone())).collect(), open: self.open.clone() }
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
        (TxnBook::new(mutant), commit, snap.open.clone())
    }
}

/// The broker's transactional producer as a 2PC sink.
pub struct BrokerSink {
    pub net: Arc<Net>,
    pub broker: SocketAddr,
    pub job: String,
    pub subtask: u32,
    pub partition: u32,
    pub cfg: Arc<JobConfig>,
    pub attempt: u64,
    pub incarnation: u64,
    buffer: Vec<OutRecord>,
}

/// Why the sink initializes a transactional id.
#[derive(Clone, Copy, PartialEq, Eq)]
enum InitFor {
    /// To write a new transaction under it: a fresh producer session.
    Begin,
    /// Only to fence older writers of it. The request id is the same for
    /// every fencing of this name by this process in this attempt, so a
    /// fencing request that arrives late (from a recovery try that timed
    /// out) is a retry the broker already applied, not a new init that
    /// would fence the transaction recovery has begun since.
    Fence,
}

pub const FLUSH_RECORDS: usize = 64;

/// The request id of every fencing init of `name` by one process in one
/// attempt (FNV-1a; even, so it never equals a begin's odd random nonce).
fn fence_nonce(attempt: u64, incarnation: u64, name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in attempt.to_le_bytes().iter().chain(incarnation.to_le_bytes().iter()).chain(name.as_bytes()) {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h & !1
}

impl BrokerSink {
    pub fn new(env: SinkEnv) -> Self {
        let SinkEnv { net, broker, cfg, subtask, attempt, incarnation } = env;
        BrokerSink {
            net,
            broker,
            job: cfg.job_name.clone(),
            subtask,
            partition: subtask,
            cfg,
            attempt,
            incarnation,
            buffer: Vec::new(),
        }
    }

    pub fn prefix(&self) -> String {
        format!("{}-sink-{}-", self.job, self.subtask)
    }

    async fn call(&self, req: Request) -> Result<Response, SinkError> {
        let t = Duration::from_millis(self.cfg.rpc_timeout_ms);
        match self.net.call_retry(self.broker, req, t, self.cfg.rpc_retries).await {
            Some(Response::IoError { reason }) => Err(SinkError::Transient(format!("broker I/O error: {reason}"))),
            Some(r) => Ok(r),
            None => Err(SinkError::Transient("broker did not answer".into())),
        }
    }

    async fn init(&self, name: &str, why: InitFor) -> Result<u64, SinkError> {
        let nonce = match why {
            InitFor::Begin => madsim::rand::random::<u64>() | 1,
            InitFor::Fence => fence_nonce(self.attempt, self.incarnation, name),
        };
        match self.call(Request::InitProducer { txn: name.to_string(), nonce, attempt: self.attempt }).await? {
            Response::Epoch { epoch } => Ok(epoch),
            other => Err(SinkError::Transient(format!("init {name}: {other:?}"))),
        }
    }

    async fn end(&self, txn: &TxnHandle, commit: bool) -> Result<(), SinkError> {
        match self.call(Request::EndTxn { txn: txn.name.clone(), epoch: txn.epoch, commit }).await? {
            Response::Ok => Ok(()),
            Response::Fenced { current } => {
                Err(SinkError::TxnLost(format!("{} epoch {} fenced by epoch {current}", txn.name, txn.epoch)))
            }
            Response::TxnNotOpen { reason } => {
                Err(SinkError::TxnLost(format!("{} epoch {}: {reason}", txn.name, txn.epoch)))
            }
            other => Err(SinkError::Transient(format!("end {}: {other:?}", txn.name))),
        }
    }

    async fn flush(&mut self, txn: &mut TxnHandle) -> Result<(), SinkError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let records = std::mem::take(&mut self.buffer);
        let req = Request::Append {
            txn: txn.name.clone(),
            epoch: txn.epoch,
            partition: self.partition,
            seq: txn.seq,
            records,
        };
        match self.call(req).await? {
            Response::Ok => {
                txn.seq += 1;
                Ok(())
            }
            Response::Fenced { current } => Err(SinkError::TxnLost(format!("{} fenced by epoch {current}", txn.name))),
            Response::TxnNotOpen { reason } => Err(SinkError::TxnLost(format!("{}: {reason}", txn.name))),
            other => Err(SinkError::Transient(format!("append {}: {other:?}", txn.name))),
        }
    }
}

#[async_trait]
impl TwoPhaseCommitSink for BrokerSink {
    async fn begin(&mut self, hint: CheckpointId) -> Result<TxnHandle, SinkError> {
        let name = format!("{}{}", self.prefix(), hint);
        let epoch = self.init(&name, InitFor::Begin).await?;
        self.buffer.clear();
        Ok(TxnHandle { name, epoch, records: 0, seq: 0 })
    }

    async fn write(&mut self, txn: &mut TxnHandle, records: &[OutRecord]) -> Result<(), SinkError> {
        if self.cfg.mutant_is(Mutant::Canary) && txn.records == 0 && txn.seq == 0 && !records.is_empty() {
            self.buffer.push(records[0].clone()); // the planted canary: always a duplicate
        }
        self.buffer.extend_from_slice(records);
        txn.records += records.len() as u64;
        if self.buffer.len() >= FLUSH_RECORDS {
            self.flush(txn).await?;
        }
        Ok(())
    }

    async fn pre_commit(&mut self, txn: &mut TxnHandle) -> Result<(), SinkError> {
        self.flush(txn).await
    }

    async fn commit(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        if txn.records == 0 {
            if !self.cfg.mutant_is(Mutant::EmptyTxnCommit) {
                // Nothing was ever sent: the broker does not know this
                // transaction, and there is nothing to make visible.
                return Ok(());
            }
            // Planted bug: commit it anyway and take the refusal as fatal.
            return self.end(txn, true).await.map_err(|e| SinkError::Transient(format!("empty transaction: {e}")));
        }
        match self.end(txn, true).await {
            Err(SinkError::Transient(_)) if self.cfg.mutant_is(Mutant::CommitRetryNewSession) => {
                // Planted bug: the commit timed out, so "start clean": a new
                // producer session (which aborts the open transaction), then
                // commit again under its epoch.
                let mut last = SinkError::Transient("commit retry".into());
                for _ in 0..3 {
                    match self.init(&txn.name, InitFor::Begin).await {
                        Ok(epoch) => return self.end(&TxnHandle { epoch, ..txn.clone() }, true).await,
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
            r => r,
        }
    }

    async fn abort(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        if txn.records == 0 {
            return Ok(());
        }
        self.end(txn, false).await
    }

    async fn recover_and_commit(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        if self.cfg.mutant_is(Mutant::NonIdempotentRecommit) {
            // Planted bug: a fresh producer "to be safe": bumps the epoch,
            // which aborts the transaction if it was not committed yet.
            let epoch = self.init(&txn.name, InitFor::Begin).await?;
            let fresh = TxnHandle { epoch, ..txn.clone() };
            return self.end(&fresh, true).await;
        }
        self.commit(txn).await
    }

    async fn recover_and_abort(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        // Bumping the epoch fences the old writer and aborts what it wrote.
        self.init(&txn.name, InitFor::Fence).await.map(|_| ())
    }

    async fn abort_lingering(&mut self, after: Option<CheckpointId>, upto: CheckpointId) -> Result<(), SinkError> {
        let prefix = self.prefix();
        let mut names: std::collections::BTreeSet<String> = match self.call(Request::ListOpenTxns { prefix }).await? {
            Response::OpenTxns { txns } => txns.into_iter().map(|(n, _)| n).collect(),
            other => return Err(SinkError::Transient(format!("list transactions: {other:?}"))),
        };
        for id in after.map_or(1, |a| a + 1)..=upto {
            names.insert(format!("{}{}", self.prefix(), id));
        }
        for name in names {
            self.init(&name, InitFor::Fence).await?;
        }
        Ok(())
    }

    /// At-least-once: append straight to the log, no transaction.
    async fn append(&mut self, records: Vec<OutRecord>) -> Result<(), SinkError> {
        if records.is_empty() {
            return Ok(());
        }
        match self.call(Request::PlainAppend { partition: self.partition, records }).await? {
            Response::Ok => Ok(()),
            other => Err(SinkError::Transient(format!("plain append: {other:?}"))),
        }
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
            b.open = Some(h(&format!("t{p}")));
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
        b.open = Some(h("t4"));
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
