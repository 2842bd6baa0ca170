//! [`BrokerSink`]: the transactional broker's producer as a
//! [`TwoPhaseCommitSink`], the engine's default sink.

use crate::config::{JobConfig, Mutant};
use crate::net::Net;
use crate::observe::Reach;
use crate::proto::{Request, Response};
use crate::sink::{SinkEnv, SinkError, TwoPhaseCommitSink, TxnHandle};
use crate::txn_pool::{self, TxnIdPool};
use crate::types::{CheckpointId, OutRecord};
use async_trait::async_trait;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The broker's transactional producer as a 2PC sink.
pub struct BrokerSink {
    pub net: Arc<Net>,
    pub broker: SocketAddr,
    pub job: String,
    pub subtask: u32,
    /// The output partition of each record.
    pub route: crate::sink::Route,
    pub cfg: Arc<JobConfig>,
    pub attempt: u64,
    pub incarnation: u64,
    /// This producer's session within the attempt (see
    /// `Request::InitProducer`).
    pub session: (u64, u64),
    /// Transactional ids are `{prefix}{n}`: one per (subtask, checkpoint
    /// the transaction most likely belongs to).
    prefix: String,
    /// With `JobConfig::pooled_txn_ids`: the ids `{prefix}p{k}` this
    /// sink's live transactions hold (`txn_pool.rs`).
    pool: Option<TxnIdPool>,
    buffer: Vec<OutRecord>,
    obs: crate::observe::Obs,
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
/// attempt of one run (FNV-1a; even, so it never equals a begin's odd
/// random nonce).
fn fence_nonce(run: u64, attempt: u64, incarnation: u64, name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let ids = [run, attempt, incarnation];
    for b in ids.iter().flat_map(|x| x.to_le_bytes()).chain(name.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h & !1
}

impl BrokerSink {
    /// Transactional ids `{job}-sink-{subtask}-{n}`.
    pub fn new(env: SinkEnv) -> Self {
        let prefix = format!("{}-sink-{}-", env.cfg.job_name, env.subtask);
        Self::with_prefix(env, prefix)
    }

    /// Transactional ids `{prefix}{n}`. The prefix must be unique to the
    /// subtask: recovery lists and fences the open transactions under it.
    pub fn with_prefix(env: SinkEnv, prefix: String) -> Self {
        let SinkEnv { net, broker, cfg, subtask, attempt, incarnation, session, route, obs, .. } = env;
        BrokerSink {
            net,
            broker,
            job: cfg.job_name.clone(),
            subtask,
            route,
            cfg: cfg.clone(),
            attempt,
            incarnation,
            session,
            pool: cfg.pooled_txn_ids.then(TxnIdPool::new),
            prefix,
            buffer: Vec::new(),
            obs,
        }
    }

    pub fn prefix(&self) -> String {
        self.prefix.clone()
    }

    async fn call(&self, req: Request) -> Result<Response, SinkError> {
        let t = Duration::from_millis(self.cfg.rpc_timeout_ms);
        match self.net.call_retry(self.broker, req, t, self.cfg.rpc_retries).await {
            Some(Response::IoError { reason }) => Err(SinkError::Transient(format!("broker I/O error: {reason}"))),
            Some(r) => Ok(r),
            None => {
                self.obs.reach(Reach::SystemCallUnanswered);
                Err(SinkError::Transient("broker did not answer".into()))
            }
        }
    }

    async fn init(&self, name: &str, why: InitFor) -> Result<u64, SinkError> {
        let nonce = match why {
            InitFor::Begin => madsim::rand::random::<u64>() | 1,
            InitFor::Fence => fence_nonce(self.cfg.run, self.attempt, self.incarnation, name),
        };
        match self
            .call(Request::InitProducer {
                txn: name.to_string(),
                nonce,
                run: self.cfg.run,
                attempt: self.attempt,
                session: self.session,
            })
            .await?
        {
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
        // One append per output partition, in partition order; a failure
        // fails the task, and recovery aborts the transaction.
        let buffer = std::mem::take(&mut self.buffer);
        for (partition, records) in self.by_partition(buffer) {
            let req = Request::Append { txn: txn.name.clone(), epoch: txn.epoch, partition, seq: txn.seq, records };
            match self.call(req).await? {
                Response::Ok => txn.seq += 1,
                Response::Fenced { current } => {
                    return Err(SinkError::TxnLost(format!("{} fenced by epoch {current}", txn.name)))
                }
                Response::TxnNotOpen { reason } => return Err(SinkError::TxnLost(format!("{}: {reason}", txn.name))),
                other => return Err(SinkError::Transient(format!("append {}: {other:?}", txn.name))),
            }
        }
        Ok(())
    }

    /// The transaction under `txn`'s name has ended (or is lost): its
    /// pool id may be reused.
    fn release(&mut self, txn: &TxnHandle) {
        if let (Some(pool), Some(id)) = (&mut self.pool, txn_pool::id_of(&self.prefix, &txn.name)) {
            pool.release(id);
        }
    }

    /// A commit's result; the id goes back to the pool once the
    /// transaction is decided (committed, or lost).
    fn ended(&mut self, txn: &TxnHandle, r: Result<(), SinkError>) -> Result<(), SinkError> {
        if !matches!(r, Err(SinkError::Transient(_))) {
            self.release(txn);
        }
        r
    }

    /// The epoch `name` is open under now, if the broker shows it open.
    async fn open_epoch(&self, name: &str) -> Result<Option<u64>, SinkError> {
        match self.call(Request::ListOpenTxns { prefix: name.to_string() }).await? {
            Response::OpenTxns { txns } => Ok(txns.into_iter().find(|(n, _)| n == name).map(|(_, e)| e)),
            other => Err(SinkError::Transient(format!("list transactions: {other:?}"))),
        }
    }

    /// Records grouped by output partition, each group in input order.
    fn by_partition(&self, records: Vec<OutRecord>) -> std::collections::BTreeMap<u32, Vec<OutRecord>> {
        let mut m: std::collections::BTreeMap<u32, Vec<OutRecord>> = Default::default();
        for r in records {
            m.entry((self.route)(&r)).or_default().push(r);
        }
        m
    }
}

#[async_trait]
impl TwoPhaseCommitSink for BrokerSink {
    async fn begin(&mut self, hint: CheckpointId) -> Result<TxnHandle, SinkError> {
        let (name, id) = match &mut self.pool {
            Some(pool) => {
                let id = pool.acquire();
                (txn_pool::name_of(&self.prefix, id), Some(id))
            }
            None => (format!("{}{}", self.prefix(), hint), None),
        };
        let epoch = match self.init(&name, InitFor::Begin).await {
            Ok(e) => e,
            Err(e) => {
                if let (Some(pool), Some(id)) = (&mut self.pool, id) {
                    pool.release(id);
                }
                return Err(e);
            }
        };
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
        let r = self.commit_once(txn).await;
        self.ended(txn, r)
    }

    async fn abort(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        let r = if txn.records == 0 { Ok(()) } else { self.end(txn, false).await };
        self.ended(txn, r)
    }

    async fn recover_and_commit(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        if self.cfg.mutant_is(Mutant::NonIdempotentRecommit) {
            // Planted bug: a fresh producer "to be safe": bumps the epoch,
            // which aborts the transaction if it was not committed yet.
            let epoch = self.init(&txn.name, InitFor::Begin).await?;
            let fresh = TxnHandle { epoch, ..txn.clone() };
            return self.end(&fresh, true).await;
        }
        if self.pool.is_some() && self.cfg.mutant_is(Mutant::Flink40626RecommitReusedId) && txn.records > 0 {
            // Planted bug (FLINK-40626): the id is open under a newer epoch
            // (reused since): "resume" it there and commit, the failed
            // attempt's transaction instead of the restored one.
            if let Some(current) = self.open_epoch(&txn.name).await? {
                if current > txn.epoch {
                    return self.end(&TxnHandle { epoch: current, ..txn.clone() }, true).await;
                }
            }
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
        if self.pool.is_some() {
            // Pooled ids: the restored pre-commits are committed by now, so
            // no open id is owned; abort them all, gaps or not.
            let open = names.iter().filter_map(|n| txn_pool::id_of(&self.prefix, n)).collect();
            let fence = TxnIdPool::lingering(&open, self.cfg.mutant);
            let others = names.iter().filter(|n| txn_pool::id_of(&self.prefix, n).is_none()).cloned();
            let names: Vec<String> =
                fence.into_iter().map(|id| txn_pool::name_of(&self.prefix, id)).chain(others).collect();
            for name in names {
                self.init(&name, InitFor::Fence).await?;
            }
            return Ok(());
        }
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
        for (partition, records) in self.by_partition(records) {
            match self.call(Request::PlainAppend { partition, records }).await? {
                Response::Ok => {}
                other => return Err(SinkError::Transient(format!("plain append: {other:?}"))),
            }
        }
        Ok(())
    }
}

impl BrokerSink {
    /// One commit, as the planted bugs of commit have it.
    async fn commit_once(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        if self.cfg.mutant_is(Mutant::ConfirmWithoutCommit) {
            // Planted bug: "committed", and nothing sent.
            return Ok(());
        }
        if txn.records == 0 {
            if !self.cfg.mutant_is(Mutant::Flink31363EmptyTxnCommit) {
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
}
