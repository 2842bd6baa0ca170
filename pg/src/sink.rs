//! The engine's two-phase-commit sink on PostgreSQL, through the client
//! seam ([`PgConnector`]), so the same code runs against the simulated
//! server and a real one.
//!
//! - A transaction is a block on the sink's *writer* session: `BEGIN`, rows
//!   `INSERT`ed in batches, then, as pre-commit, a marker row naming the
//!   gid and `PREPARE TRANSACTION gid`. The gid names job, subtask, attempt
//!   and checkpoint: `{job}-sink-{subtask}-a{attempt}-c{checkpoint}`.
//! - Commit and abort run on a second, *control* session, never in a
//!   block: `COMMIT PREPARED` inside the writer's block would fail it
//!   (25001) and lose the next transaction.
//! - Commit is idempotent: when `COMMIT PREPARED` answers 42704 (no such
//!   prepared transaction), the marker row tells "already committed"
//!   (marker visible: Ok) from "lost" (rolled back: [`SinkError::TxnLost`]).
//! - Abort: `ROLLBACK` of the writer's block, or `ROLLBACK PREPARED`; an
//!   unknown gid is already gone.
//! - Recovery: the restored pending transactions are committed as above,
//!   the restored open one rolled back if it was prepared since, and every
//!   prepared transaction of this subtask from an earlier attempt still in
//!   `pg_prepared_xacts` is rolled back.
//! - At-least-once mode: a plain autocommit `INSERT`.
//!
//! Any error on a session closes it (which rolls back its open block on the
//! server); the next statement opens a new one. A lost connection is
//! [`SinkError::Transient`]: the task fails and recovers.
//!
//! Fencing: every session connects named by its owner (`application_name`
//! `{job}-sink-{subtask}-a{attempt}`), and recovery first terminates the
//! sessions of the subtask's earlier attempts (and waits until they are
//! gone), only then rolls back the restored open transaction and scans
//! `pg_prepared_xacts`. A zombie writer of an earlier attempt (a worker cut
//! off but still running, or a statement still queued at a paused server)
//! can therefore not prepare its block after recovery has looked: either it
//! prepared before the termination, and the scan finds it, or its session
//! is gone and its block rolled back.

use crate::client::{PgCode, PgConnector, PgError, PgOp, PgSession};
use async_trait::async_trait;
use exactsim_engine::config::Mutant;
use exactsim_engine::sink::{SinkError, TwoPhaseCommitSink, TxnHandle, FLUSH_RECORDS};
use exactsim_engine::types::{CheckpointId, OutRecord};
use std::sync::Arc;

/// PostgreSQL's limit on a gid, in bytes (exclusive).
pub const GID_MAX: usize = 200;

/// PostgreSQL's limit on a name such as `application_name`, in bytes
/// (exclusive; a longer one is cut, and would no longer match).
pub const NAME_MAX: usize = 64;

pub struct PgSink {
    connector: Arc<dyn PgConnector>,
    job: String,
    subtask: u32,
    attempt: u64,
    writer: Option<Box<dyn PgSession>>,
    control: Option<Box<dyn PgSession>>,
    /// The gid of the block open on the writer session.
    open: Option<String>,
    buffer: Vec<OutRecord>,
    /// Planted bug `pg-no-recover-commit`: restored pending transactions
    /// are taken as committed, never `COMMIT PREPARED`.
    skip_recover_commit: bool,
    /// Planted bug `pg-no-fence`: earlier attempts' sessions are never
    /// ended.
    skip_fence: bool,
    /// The sessions of earlier attempts are terminated ([`PgSink::fence_older`]).
    fenced: bool,
    /// Each row's partition (the job's partitioner); `None`: the subtask's
    /// own partition for every row (a job that is never rescaled writes
    /// only its own).
    route: Option<exactsim_engine::sink::Route>,
}

fn transient(what: &str, e: PgError) -> SinkError {
    SinkError::Transient(format!("{what}: {e}"))
}

impl PgSink {
    pub fn new(connector: Arc<dyn PgConnector>, job: &str, subtask: u32, attempt: u64) -> Self {
        let s = PgSink {
            connector,
            job: job.to_string(),
            subtask,
            attempt,
            writer: None,
            control: None,
            open: None,
            buffer: Vec::new(),
            skip_recover_commit: false,
            skip_fence: false,
            fenced: false,
            route: None,
        };
        assert!(s.gid(CheckpointId::MAX).len() < GID_MAX, "job name {job:?} too long for a PostgreSQL gid");
        assert!(s.owner(u64::MAX).len() < NAME_MAX, "job name {job:?} too long for a PostgreSQL application_name");
        s
    }

    /// Rows go to the partition `route` names (a rescaled job's subtask
    /// writes the key groups of others, into their partitions).
    pub fn with_route(mut self, route: exactsim_engine::sink::Route) -> Self {
        self.route = Some(route);
        self
    }

    /// The rows by partition, in partition order.
    fn by_partition(&self, rows: Vec<OutRecord>) -> Vec<(u32, Vec<OutRecord>)> {
        let Some(route) = &self.route else {
            return vec![(self.subtask, rows)];
        };
        let mut by: std::collections::BTreeMap<u32, Vec<OutRecord>> = std::collections::BTreeMap::new();
        for r in rows {
            by.entry(route(&r)).or_default().push(r);
        }
        by.into_iter().collect()
    }

    /// With the job's planted bug, if it is one of this sink's:
    /// `pg-no-recover-commit` or `pg-no-fence`.
    pub fn with_mutant(mut self, mutant: Option<Mutant>) -> Self {
        self.skip_recover_commit = mutant == Some(Mutant::PgNoRecoverCommit);
        self.skip_fence = mutant == Some(Mutant::PgNoFence);
        self
    }

    /// Every gid of this subtask starts with this.
    pub fn prefix(&self) -> String {
        format!("{}-sink-{}-a", self.job, self.subtask)
    }

    /// The name this subtask's sessions of `attempt` connect with (their
    /// `application_name`): what a later attempt fences them by.
    pub fn owner(&self, attempt: u64) -> String {
        format!("{}{attempt}", self.prefix())
    }

    /// End every session of this subtask's earlier attempts, once, before
    /// recovery looks at the server: a session cut off from its worker may
    /// still hold a statement (a `PREPARE TRANSACTION`) the server has not
    /// run yet, and it would run after the scan of prepared transactions.
    /// Once terminated, nothing it sent can run.
    async fn fence_older(&mut self) -> Result<(), SinkError> {
        if self.fenced || self.attempt <= 1 || self.skip_fence {
            return Ok(());
        }
        let owners: Vec<String> = (1..self.attempt).map(|a| self.owner(a)).collect();
        match self
            .on_control("terminate", |s| Box::pin(async move { s.exec(PgOp::Terminate { owners }).await }))
            .await?
        {
            Ok(_) => {
                self.fenced = true;
                Ok(())
            }
            Err(e) => Err(transient("terminate earlier sessions", e)),
        }
    }

    pub fn gid(&self, ckpt: CheckpointId) -> String {
        format!("{}{}-c{}", self.prefix(), self.attempt, ckpt)
    }

    /// The attempt named by a gid of this subtask.
    fn attempt_of(&self, gid: &str) -> Option<u64> {
        let rest = gid.strip_prefix(&self.prefix())?;
        let (attempt, ckpt) = rest.split_once("-c")?;
        ckpt.parse::<u64>().ok()?;
        attempt.parse().ok()
    }

    async fn control(&mut self) -> Result<&mut Box<dyn PgSession>, SinkError> {
        if self.control.is_none() {
            let owner = self.owner(self.attempt);
            self.control = Some(self.connector.connect(&owner).await.map_err(|e| transient("connect", e))?);
        }
        Ok(self.control.as_mut().expect("just connected"))
    }

    /// Run `f` on the control session; any error closes it.
    async fn on_control<T>(
        &mut self,
        what: &str,
        f: impl for<'a> FnOnce(&'a mut Box<dyn PgSession>) -> futures_like::BoxFut<'a, Result<T, PgError>>,
    ) -> Result<Result<T, PgError>, SinkError> {
        let s = self.control().await?;
        let r = f(s).await;
        match &r {
            Err(PgError::ConnectionLost(_)) | Err(PgError::Protocol(_)) => {
                self.control = None;
                Err(transient(what, r.err().expect("an error")))
            }
            Err(_) => {
                self.control = None;
                Ok(r)
            }
            Ok(_) => Ok(r),
        }
    }

    /// The writer session, for the block `gid`.
    fn writer_for(&mut self, gid: &str) -> Result<&mut Box<dyn PgSession>, SinkError> {
        match (&self.open, self.writer.as_mut()) {
            (Some(open), Some(w)) if open == gid => Ok(w),
            _ => Err(SinkError::TxnLost(format!("{gid}: not open on this sink's connection"))),
        }
    }

    /// A writer error: the block is gone with the session.
    fn writer_failed(&mut self, what: &str, gid: &str, e: PgError) -> SinkError {
        self.writer = None;
        self.open = None;
        self.buffer.clear();
        match e {
            PgError::ConnectionLost(_) | PgError::Protocol(_) => transient(&format!("{what} {gid}"), e),
            // The server rolled the block back.
            PgError::Sql { .. } => SinkError::TxnLost(format!("{what} {gid}: {e}")),
        }
    }

    async fn flush(&mut self, gid: &str) -> Result<(), SinkError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.buffer);
        for (part, rows) in self.by_partition(rows) {
            let w = self.writer_for(gid)?;
            if let Err(e) = w.insert(part, &rows).await {
                return Err(self.writer_failed("insert into", gid, e));
            }
        }
        Ok(())
    }

    /// `COMMIT PREPARED`, resolving 42704 through the marker.
    async fn commit_gid(&mut self, gid: &str) -> Result<(), SinkError> {
        let g = gid.to_string();
        match self.on_control("commit prepared", |s| Box::pin(async move { s.commit_prepared(&g).await })).await? {
            Ok(()) => Ok(()),
            Err(e) if e.is(&PgCode::UndefinedObject) => {
                let g = gid.to_string();
                match self.on_control("marker lookup", |s| Box::pin(async move { s.has_marker(&g).await })).await? {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(SinkError::TxnLost(format!("{gid}: neither prepared nor committed"))),
                    Err(e) => Err(transient(&format!("marker lookup {gid}"), e)),
                }
            }
            Err(e) => Err(transient(&format!("commit prepared {gid}"), e)),
        }
    }

    /// `ROLLBACK PREPARED`; an unknown gid is already gone.
    async fn rollback_gid(&mut self, gid: &str) -> Result<(), SinkError> {
        let g = gid.to_string();
        match self.on_control("rollback prepared", |s| Box::pin(async move { s.rollback_prepared(&g).await })).await? {
            Ok(()) => Ok(()),
            Err(e) if e.is(&PgCode::UndefinedObject) => Ok(()),
            Err(e) => Err(transient(&format!("rollback prepared {gid}"), e)),
        }
    }
}

/// A boxed future borrowing the session (what `async_trait` methods return).
mod futures_like {
    pub type BoxFut<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
}

#[async_trait]
impl TwoPhaseCommitSink for PgSink {
    async fn begin(&mut self, hint: CheckpointId) -> Result<TxnHandle, SinkError> {
        let gid = self.gid(hint);
        // A block still open (a transaction given up without an abort) is
        // rolled back with its connection.
        self.writer = None;
        self.open = None;
        self.buffer.clear();
        let mut w = self.connector.connect(&self.owner(self.attempt)).await.map_err(|e| transient("connect", e))?;
        w.begin().await.map_err(|e| transient(&format!("begin {gid}"), e))?;
        self.writer = Some(w);
        self.open = Some(gid.clone());
        Ok(TxnHandle { name: gid, epoch: self.attempt, records: 0, seq: 0 })
    }

    async fn write(&mut self, txn: &mut TxnHandle, records: &[OutRecord]) -> Result<(), SinkError> {
        self.writer_for(&txn.name)?;
        self.buffer.extend_from_slice(records);
        txn.records += records.len() as u64;
        if self.buffer.len() >= FLUSH_RECORDS {
            self.flush(&txn.name).await?;
            txn.seq += 1;
        }
        Ok(())
    }

    async fn pre_commit(&mut self, txn: &mut TxnHandle) -> Result<(), SinkError> {
        let gid = txn.name.clone();
        self.flush(&gid).await?;
        let w = self.writer_for(&gid)?;
        let r = match w.mark(&gid).await {
            Ok(()) => w.prepare(&gid).await,
            Err(e) => Err(e),
        };
        // The block is detached from the session either way.
        self.open = None;
        match r {
            Ok(()) => Ok(()),
            Err(e) => Err(self.writer_failed("prepare", &gid, e)),
        }
    }

    async fn commit(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        self.commit_gid(&txn.name).await
    }

    async fn abort(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        if self.open.as_deref() == Some(txn.name.as_str()) {
            // Closing the connection rolls the block back.
            self.writer = None;
            self.open = None;
            self.buffer.clear();
            return Ok(());
        }
        self.rollback_gid(&txn.name).await
    }

    async fn recover_and_commit(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        self.fence_older().await?;
        if self.skip_recover_commit {
            return Ok(());
        }
        self.commit_gid(&txn.name).await
    }

    async fn recover_and_abort(&mut self, txn: &TxnHandle) -> Result<(), SinkError> {
        self.fence_older().await?;
        // Its block died with its connection, or it was prepared later for a
        // checkpoint that never completed.
        self.rollback_gid(&txn.name).await
    }

    async fn abort_lingering(&mut self, _after: Option<CheckpointId>, _upto: CheckpointId) -> Result<(), SinkError> {
        self.fence_older().await?;
        let gids = match self.on_control("list prepared", |s| Box::pin(async move { s.prepared_gids().await })).await? {
            Ok(g) => g,
            Err(e) => return Err(transient("list prepared", e)),
        };
        for gid in gids {
            if self.attempt_of(&gid).is_some_and(|a| a < self.attempt) {
                self.rollback_gid(&gid).await?;
            }
        }
        Ok(())
    }

    async fn append(&mut self, records: Vec<OutRecord>) -> Result<(), SinkError> {
        if records.is_empty() {
            return Ok(());
        }
        for (part, records) in self.by_partition(records) {
            match self.on_control("insert", |s| Box::pin(async move { s.insert(part, &records).await })).await? {
                Ok(()) => {}
                Err(e) => return Err(transient("insert", e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{PgOp, PgReply};
    use crate::model::{ModelConnector, PgModel};
    use std::future::Future;

    /// Poll a future that never waits (everything here runs on the model).
    fn ready<F: Future>(f: F) -> F::Output {
        use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
        fn raw() -> RawWaker {
            fn clone(_: *const ()) -> RawWaker {
                raw()
            }
            fn noop(_: *const ()) {}
            static VT: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
            RawWaker::new(std::ptr::null(), &VT)
        }
        let waker = unsafe { Waker::from_raw(raw()) };
        let mut cx = Context::from_waker(&waker);
        match std::pin::pin!(f).poll(&mut cx) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("a model future waited"),
        }
    }

    fn rec(i: u64) -> OutRecord {
        OutRecord::new(i, i, i as i64, 0)
    }

    fn recs(ids: std::ops::Range<u64>) -> Vec<OutRecord> {
        ids.map(rec).collect()
    }

    fn setup(max: usize) -> (ModelConnector, Arc<dyn PgConnector>) {
        let c = ModelConnector::new(PgModel::new(max));
        let dync: Arc<dyn PgConnector> = Arc::new(c.clone());
        (c, dync)
    }

    fn visible(c: &ModelConnector) -> Vec<u64> {
        c.with(|m| m.committed_rows()).iter().map(|r| r.out_id).collect()
    }

    fn prepared(c: &ModelConnector) -> Vec<String> {
        c.with(|m| m.prepared_gids())
    }

    #[test]
    fn two_phase_commit_while_the_next_transaction_is_open() {
        let (c, conn) = setup(8);
        let mut s = PgSink::new(conn, "job", 1, 3);
        ready(async {
            let mut t1 = s.begin(1).await.unwrap();
            assert_eq!(t1.name, "job-sink-1-a3-c1");
            s.write(&mut t1, &recs(0..100)).await.unwrap(); // crosses a flush
            s.write(&mut t1, &recs(100..110)).await.unwrap();
            assert!(visible(&c).is_empty());
            s.pre_commit(&mut t1).await.unwrap();
            assert_eq!(prepared(&c), vec!["job-sink-1-a3-c1".to_string()]);
            let mut t2 = s.begin(2).await.unwrap();
            s.write(&mut t2, &recs(200..210)).await.unwrap();
            s.commit(&t1).await.unwrap();
            assert_eq!(visible(&c), (0..110).collect::<Vec<_>>());
            s.commit(&t1).await.unwrap(); // idempotent: the marker says committed
            assert_eq!(visible(&c).len(), 110);
            // the open block survived the commit on the other session
            s.pre_commit(&mut t2).await.unwrap();
            s.commit(&t2).await.unwrap();
            assert_eq!(visible(&c).len(), 120);
            assert!(prepared(&c).is_empty());
        });
    }

    #[test]
    fn rolled_back_is_lost_not_committed() {
        let (c, conn) = setup(8);
        let mut s = PgSink::new(conn, "job", 0, 1);
        ready(async {
            let mut t = s.begin(5).await.unwrap();
            s.write(&mut t, &recs(0..3)).await.unwrap();
            s.pre_commit(&mut t).await.unwrap();
            let mut other = c.connect_now("other").unwrap();
            other.exec_now(&PgOp::RollbackPrepared { gid: t.name.clone() }).unwrap();
            assert!(matches!(s.commit(&t).await, Err(SinkError::TxnLost(_))));
            assert!(visible(&c).is_empty());
        });
    }

    #[test]
    fn crash_after_pre_commit_then_recovery_commits_once() {
        let (c, conn) = setup(8);
        let mut s = PgSink::new(conn.clone(), "job", 0, 1);
        ready(async {
            s.abort_lingering(None, 0).await.unwrap(); // opens the control session
            let mut t = s.begin(1).await.unwrap();
            s.write(&mut t, &recs(0..5)).await.unwrap();
            s.pre_commit(&mut t).await.unwrap();
            let mut open = s.begin(2).await.unwrap();
            s.write(&mut open, &recs(5..9)).await.unwrap();
            s.flush(&open.name.clone()).await.unwrap();
            c.with(|m| {
                m.crash();
                m.restart();
            });
            assert!(matches!(s.commit(&t).await, Err(SinkError::Transient(_))), "the session died");
            assert!(matches!(s.write(&mut open, &recs(9..10)).await, Ok(())), "buffered only");
            assert!(matches!(s.pre_commit(&mut open).await, Err(SinkError::Transient(_))), "the block died");
            // the next attempt restores checkpoint 1
            let mut r = PgSink::new(conn.clone(), "job", 0, 2);
            r.recover_and_commit(&t).await.unwrap();
            r.recover_and_commit(&t).await.unwrap(); // a second recovery
            r.recover_and_abort(&open).await.unwrap(); // lost with the crash
            r.abort_lingering(Some(1), 2).await.unwrap();
            assert_eq!(visible(&c), (0..5).collect::<Vec<_>>());
            // the old sink's retry also finds it committed
            s.commit(&t).await.unwrap();
            assert_eq!(visible(&c).len(), 5);
        });
    }

    #[test]
    fn lingering_prepared_of_earlier_attempts_are_rolled_back() {
        let (c, conn) = setup(8);
        ready(async {
            let mut old = PgSink::new(conn.clone(), "job", 1, 1);
            let mut other_subtask = PgSink::new(conn.clone(), "job", 10, 1);
            for (which, ck) in [(0, 3), (0, 4), (1, 4)] {
                let sink = if which == 0 { &mut old } else { &mut other_subtask };
                let mut t = sink.begin(ck).await.unwrap();
                sink.write(&mut t, &recs(ck * 10..ck * 10 + 2)).await.unwrap();
                sink.pre_commit(&mut t).await.unwrap();
            }
            // restored from checkpoint 3: its transaction is re-committed,
            // the one prepared for checkpoint 4 lingers
            let mut new = PgSink::new(conn.clone(), "job", 1, 2);
            let t3 = TxnHandle { name: "job-sink-1-a1-c3".into(), epoch: 1, records: 2, seq: 0 };
            new.recover_and_commit(&t3).await.unwrap();
            let mut cur = new.begin(4).await.unwrap();
            new.write(&mut cur, &recs(90..91)).await.unwrap();
            new.pre_commit(&mut cur).await.unwrap();
            new.abort_lingering(Some(3), 4).await.unwrap();
            assert_eq!(
                prepared(&c),
                vec!["job-sink-1-a2-c4".to_string(), "job-sink-10-a1-c4".to_string()],
                "only this subtask's earlier attempts"
            );
            assert_eq!(visible(&c), vec![30, 31]);
        });
    }

    #[test]
    fn abort_of_open_and_of_prepared() {
        let (c, conn) = setup(8);
        let mut s = PgSink::new(conn, "job", 0, 1);
        ready(async {
            let mut t = s.begin(1).await.unwrap();
            s.write(&mut t, &recs(0..70)).await.unwrap();
            s.abort(&t).await.unwrap();
            assert!(matches!(s.pre_commit(&mut t).await, Err(SinkError::TxnLost(_))));
            let mut t = s.begin(2).await.unwrap();
            s.write(&mut t, &recs(0..3)).await.unwrap();
            s.pre_commit(&mut t).await.unwrap();
            s.abort(&t).await.unwrap();
            s.abort(&t).await.unwrap();
            assert!(prepared(&c).is_empty());
            assert!(matches!(s.commit(&t).await, Err(SinkError::TxnLost(_))));
            assert!(visible(&c).is_empty());
        });
    }

    #[test]
    fn prepare_refused_loses_the_transaction() {
        for max in [0, 1] {
            let (c, conn) = setup(max);
            let mut s = PgSink::new(conn, "job", 0, 1);
            ready(async {
                if max == 1 {
                    let mut other = c.connect_now("other").unwrap();
                    other.exec_now(&PgOp::Begin).unwrap();
                    other.exec_now(&PgOp::Prepare { gid: "someone-else".into() }).unwrap();
                }
                let mut t = s.begin(1).await.unwrap();
                s.write(&mut t, &recs(0..3)).await.unwrap();
                let e = s.pre_commit(&mut t).await.unwrap_err();
                assert!(matches!(e, SinkError::TxnLost(_)), "{e}");
                // the sink goes on with a fresh connection
                let mut t = s.begin(2).await.unwrap();
                s.write(&mut t, &recs(3..4)).await.unwrap();
                assert!(visible(&c).is_empty());
            });
        }
    }

    #[test]
    fn dropped_writer_connection_loses_the_open_block() {
        let (c, conn) = setup(8);
        let mut s = PgSink::new(conn, "job", 0, 1);
        ready(async {
            let mut t = s.begin(1).await.unwrap();
            s.write(&mut t, &recs(0..70)).await.unwrap();
            c.with(|m| {
                m.crash();
                m.restart();
            });
            let e = s.pre_commit(&mut t).await.unwrap_err();
            assert!(matches!(e, SinkError::Transient(_)), "{e}");
            assert!(prepared(&c).is_empty());
            let mut other = c.connect_now("other").unwrap();
            assert_eq!(other.exec_now(&PgOp::SelectRows), Ok(PgReply::Rows(vec![])));
        });
    }

    #[test]
    fn at_least_once_appends_at_once() {
        let (c, conn) = setup(0);
        let mut s = PgSink::new(conn, "job", 2, 1);
        ready(async {
            s.append(recs(0..4)).await.unwrap();
            s.append(vec![]).await.unwrap();
        });
        assert_eq!(visible(&c), vec![0, 1, 2, 3]);
        assert!(c.with(|m| m.committed_rows()).iter().all(|r| r.part == 2));
    }

    fn protocol_run(seed: u64, mutant: Option<exactsim_engine::config::Mutant>) -> crate::drill::DrillOutcome {
        let (c, conn) = setup(4);
        let mut crash = || {
            c.with(|m| {
                m.crash();
                m.restart();
            })
        };
        ready(crate::drill::drill(conn, seed, 200, mutant, &mut crash))
    }

    #[test]
    fn protocol_with_crashes_is_exactly_once() {
        let (mut recoveries, mut recommits) = (0, 0);
        for seed in 0..300 {
            let o = protocol_run(seed, None);
            if let Err(e) = o.verdict() {
                panic!("seed {seed}: {e}");
            }
            recoveries += o.recoveries;
            recommits += o.recommits;
        }
        println!("300 runs: {recoveries} recoveries, {recommits} re-commits of restored transactions");
        assert!(recoveries > 300 && recommits > 100, "recoveries and re-commits happen");
    }

    #[test]
    fn protocol_planted_bugs_are_caught() {
        use exactsim_engine::config::Mutant;
        for m in [Mutant::NoRecommitOnRecovery, Mutant::NoAbortLingering] {
            let caught = (0..300).filter(|s| protocol_run(*s, Some(m)).verdict().is_err());
            let n = caught.count();
            println!("{m:?}: caught in {n} of 300 runs");
            assert!(n > 0, "{m:?} never caught");
        }
    }

    #[test]
    fn gids_parse_back() {
        let (_, conn) = setup(1);
        let s = PgSink::new(conn, "job", 1, 7);
        assert_eq!(s.attempt_of(&s.gid(12)), Some(7));
        assert_eq!(s.attempt_of("job-sink-10-a7-c12"), None);
        assert_eq!(s.attempt_of("job-sink-1-a7-cx"), None);
    }

    /// The race the sweeps found (pg_ledger under chaos, a paused server):
    /// attempt 1's writer still has its block open when attempt 2 recovers;
    /// its `PREPARE TRANSACTION`, run by the server only after recovery
    /// scanned the prepared transactions, would leave a prepared
    /// transaction no one resolves. Recovery terminates attempt 1's
    /// sessions first, so the late prepare fails and nothing lingers.
    #[test]
    fn recovery_fences_an_earlier_attempts_writer_before_it_looks() {
        let (c, conn) = setup(8);
        let mut zombie = PgSink::new(conn.clone(), "job", 0, 1);
        let mut fresh = PgSink::new(conn, "job", 0, 2);
        ready(async {
            let mut t = zombie.begin(2).await.unwrap();
            zombie.write(&mut t, &recs(0..3)).await.unwrap();
            // Attempt 2 restores checkpoint 1: attempt 1's open transaction
            // of checkpoint 2 is rolled back, lingering ones looked for.
            fresh.recover_and_abort(&t).await.unwrap();
            fresh.abort_lingering(Some(1), 1).await.unwrap();
            assert!(prepared(&c).is_empty());
            // The zombie's statements arrive now.
            let e = zombie.pre_commit(&mut t).await.unwrap_err();
            assert!(matches!(e, SinkError::Transient(_)), "{e}");
            assert!(prepared(&c).is_empty(), "nothing prepared after recovery looked");
            assert!(visible(&c).is_empty());
            // The new attempt's own sessions are untouched.
            let mut u = fresh.begin(2).await.unwrap();
            fresh.write(&mut u, &recs(10..12)).await.unwrap();
            fresh.pre_commit(&mut u).await.unwrap();
            fresh.commit(&u).await.unwrap();
            assert_eq!(visible(&c), vec![10, 11]);
        });
    }

    /// A prepare that made it before the fence is found by the scan.
    #[test]
    fn a_prepare_before_the_fence_is_rolled_back_by_the_scan() {
        let (c, conn) = setup(8);
        let mut zombie = PgSink::new(conn.clone(), "job", 0, 1);
        let mut fresh = PgSink::new(conn, "job", 0, 2);
        ready(async {
            let mut t = zombie.begin(2).await.unwrap();
            zombie.write(&mut t, &recs(0..3)).await.unwrap();
            zombie.pre_commit(&mut t).await.unwrap();
            assert_eq!(prepared(&c), vec![t.name.clone()]);
            fresh.abort_lingering(Some(1), 1).await.unwrap();
            assert!(prepared(&c).is_empty());
        });
        assert_eq!(PgSink::new(setup(1).1, "job", 3, 4).owner(2), "job-sink-3-a2");
    }
}
