//! The simulated PostgreSQL server: a plain state machine that models
//! exactly what the PostgreSQL sink relies on, and nothing else.
//!
//! - Read committed: a `SELECT` sees committed rows, plus, inside a block,
//!   the session's own uncommitted rows. Other sessions' open or prepared
//!   rows are invisible.
//! - Transaction blocks: `BEGIN` opens one (a second `BEGIN` only warns);
//!   outside one every statement commits at once. An error inside a block
//!   fails it: every statement but `COMMIT`, `ROLLBACK` and `PREPARE
//!   TRANSACTION` then answers 25P02 until it ends, and ending it rolls
//!   back (without an error).
//! - `PREPARE TRANSACTION gid` detaches the block from the session and keeps
//!   it, durably, until `COMMIT PREPARED` or `ROLLBACK PREPARED` (from any
//!   session, outside a block: 25001 inside one). It fails, rolling the
//!   block back, with 55000 when `max_prepared_transactions` is 0, 42710
//!   when the gid is in use, 53200 when `max_prepared_transactions`
//!   transactions are prepared already (checked in this order, as the real
//!   server does). Outside a block it only warns and prepares nothing.
//!   Unknown gids answer 42704.
//! - `pg_prepared_xacts` is not transactional: it lists every prepared gid.
//! - A crash (`kill -9`) ends every session (their next statement answers
//!   "connection lost") and loses every unprepared transaction; committed
//!   rows and prepared transactions survive. A closed connection aborts its
//!   session's open block.
//!
//! Durability: every statement that changes what survives a crash returns
//! the [`WalRecord`] to make durable before its reply is sent; a node
//! running the model appends it to its disk and, after a crash, rebuilds
//! the model with [`PgModel::recover`]. The in-process [`ModelConnector`]
//! keeps everything in memory (a "crash" there is [`PgModel::crash`]).
//!
//! Conformance with PostgreSQL 15 is checked by the differential test
//! `pg/tests/conformance.rs` (run by `ci/pg-conformance.sh`).

use crate::client::{PgCode, PgConnector, PgError, PgOp, PgReply, PgRow, PgSession};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub type SessionId = u64;

/// What one transaction wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnData {
    pub rows: Vec<PgRow>,
    pub markers: Vec<String>,
}

/// One durable step of the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WalRecord {
    /// A block or an autocommit statement committed.
    Commit(TxnData),
    Prepare {
        gid: String,
        txn: TxnData,
    },
    CommitPrepared {
        gid: String,
    },
    RollbackPrepared {
        gid: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Session {
    Idle,
    Block(TxnData),
    Failed,
}

#[derive(Clone, Debug)]
pub struct PgModel {
    max_prepared: usize,
    up: bool,
    next_session: SessionId,
    sessions: BTreeMap<SessionId, Session>,
    /// The name each session connected with (`application_name`).
    owners: BTreeMap<SessionId, String>,
    rows: Vec<PgRow>,
    markers: Vec<String>,
    prepared: BTreeMap<String, TxnData>,
    /// Every committed transaction that wrote something, in commit order
    /// (what a real server's commit log shows: `pg_xact_commit_timestamp`).
    log: Vec<TxnData>,
}

fn lost() -> PgError {
    PgError::ConnectionLost("server closed the connection unexpectedly".into())
}

impl PgModel {
    /// A fresh server with empty tables.
    pub fn new(max_prepared: usize) -> Self {
        PgModel {
            max_prepared,
            up: true,
            next_session: 1,
            sessions: BTreeMap::new(),
            owners: BTreeMap::new(),
            rows: Vec::new(),
            markers: Vec::new(),
            prepared: BTreeMap::new(),
            log: Vec::new(),
        }
    }

    /// The server after a crash and restart: the durable log replayed.
    pub fn recover(max_prepared: usize, wal: &[WalRecord]) -> Result<Self, String> {
        let mut m = PgModel::new(max_prepared);
        for r in wal {
            m.apply(r)?;
        }
        if m.prepared.len() > max_prepared {
            // What the real server does: it refuses to start.
            return Err(format!(
                "{} prepared transactions but max_prepared_transactions = {max_prepared}",
                m.prepared.len()
            ));
        }
        Ok(m)
    }

    fn apply(&mut self, r: &WalRecord) -> Result<(), String> {
        match r {
            WalRecord::Commit(t) => self.commit_data(t.clone()),
            WalRecord::Prepare { gid, txn } => {
                if self.prepared.insert(gid.clone(), txn.clone()).is_some() {
                    return Err(format!("log prepares {gid} twice"));
                }
            }
            WalRecord::CommitPrepared { gid } => {
                let t = self.prepared.remove(gid).ok_or_else(|| format!("log commits unknown {gid}"))?;
                self.commit_data(t);
            }
            WalRecord::RollbackPrepared { gid } => {
                self.prepared.remove(gid).ok_or_else(|| format!("log rolls back unknown {gid}"))?;
            }
        }
        Ok(())
    }

    fn commit_data(&mut self, t: TxnData) {
        if !t.rows.is_empty() || !t.markers.is_empty() {
            self.log.push(t.clone());
        }
        self.rows.extend(t.rows);
        self.markers.extend(t.markers);
    }

    pub fn max_prepared(&self) -> usize {
        self.max_prepared
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Open a session named `owner` (its `application_name`).
    pub fn connect(&mut self, owner: &str) -> Result<SessionId, PgError> {
        if !self.up {
            return Err(PgError::ConnectionLost("connection refused".into()));
        }
        let id = self.next_session;
        self.next_session += 1;
        self.sessions.insert(id, Session::Idle);
        self.owners.insert(id, owner.to_string());
        Ok(id)
    }

    /// The client closed the session: its open block is rolled back.
    pub fn disconnect(&mut self, s: SessionId) {
        self.sessions.remove(&s);
        self.owners.remove(&s);
    }

    /// `kill -9`: every session ends, every unprepared transaction is lost.
    pub fn crash(&mut self) {
        self.up = false;
        self.sessions.clear();
        self.owners.clear();
    }

    /// Start again after [`PgModel::crash`] (the in-memory form of a
    /// restart; a node rebuilds with [`PgModel::recover`] instead).
    pub fn restart(&mut self) {
        self.up = true;
    }

    /// Every prepared gid, sorted.
    pub fn prepared_gids(&self) -> Vec<String> {
        self.prepared.keys().cloned().collect()
    }

    /// The rows of prepared transaction `gid`, if it is prepared.
    pub fn prepared_rows(&self, gid: &str) -> Option<&[PgRow]> {
        self.prepared.get(gid).map(|t| t.rows.as_slice())
    }

    /// The committed rows of partition `part` in commit order, from the
    /// `from`th on. Commit order is the order key of the output: rows only
    /// ever append to it (a commit appends its transaction's rows, in
    /// insertion order) and a restart replays the log in the same order,
    /// so a reader can continue where it left off.
    pub fn committed_from(&self, part: u32, from: u64) -> Vec<PgRow> {
        self.rows.iter().filter(|r| r.part == part).skip(from as usize).cloned().collect()
    }

    /// The committed transactions that wrote rows, in commit order, each
    /// as its sorted `out_id`s: what the real server's commit log
    /// (`RealSession::commit_log`) shows, compared by the conformance test.
    pub fn commit_order(&self) -> Vec<Vec<u64>> {
        self.log.iter().filter_map(|t| commit_entry(&t.rows)).collect()
    }

    /// Committed rows, sorted.
    pub fn committed_rows(&self) -> Vec<PgRow> {
        let mut r = self.rows.clone();
        r.sort();
        r
    }

    /// Run one statement of session `s`. The record, if any, must be
    /// durable before the reply is delivered.
    pub fn exec(&mut self, s: SessionId, op: &PgOp) -> (Result<PgReply, PgError>, Option<WalRecord>) {
        if !self.up {
            return (Err(lost()), None);
        }
        let Some(state) = self.sessions.get(&s).cloned() else {
            return (Err(lost()), None);
        };
        let mut wal = None;
        let (next, reply) = match (state, op) {
            // Ending a block.
            (Session::Block(t), PgOp::Commit) => {
                let r = WalRecord::Commit(t);
                self.apply(&r).expect("commit applies");
                wal = Some(r);
                (Session::Idle, Ok(PgReply::Ok))
            }
            (_, PgOp::Commit | PgOp::Rollback) => (Session::Idle, Ok(PgReply::Ok)),
            (Session::Block(t), PgOp::Prepare { gid }) => {
                if self.max_prepared == 0 {
                    (
                        Session::Idle,
                        Err(PgError::sql(PgCode::ObjectNotInPrerequisiteState, "prepared transactions are disabled")),
                    )
                } else if self.prepared.contains_key(gid) {
                    (
                        Session::Idle,
                        Err(PgError::sql(
                            PgCode::DuplicateObject,
                            format!("transaction identifier \"{gid}\" is already in use"),
                        )),
                    )
                } else if self.prepared.len() >= self.max_prepared {
                    (
                        Session::Idle,
                        Err(PgError::sql(PgCode::OutOfMemory, "maximum number of prepared transactions reached")),
                    )
                } else {
                    let r = WalRecord::Prepare { gid: gid.clone(), txn: t };
                    self.apply(&r).expect("prepare applies");
                    wal = Some(r);
                    (Session::Idle, Ok(PgReply::Ok))
                }
            }
            // Outside a block: a warning; in a failed block: a rollback.
            (_, PgOp::Prepare { .. }) => (Session::Idle, Ok(PgReply::Ok)),
            // Everything else in a failed block.
            (Session::Failed, _) => (
                Session::Failed,
                Err(PgError::sql(
                    PgCode::InFailedSqlTransaction,
                    "current transaction is aborted, commands ignored until end of transaction block",
                )),
            ),
            (Session::Idle, PgOp::Begin) => (Session::Block(TxnData::default()), Ok(PgReply::Ok)),
            (b @ Session::Block(_), PgOp::Begin) => (b, Ok(PgReply::Ok)),
            (Session::Block(_), PgOp::CommitPrepared { .. } | PgOp::RollbackPrepared { .. }) => {
                let what = if matches!(op, PgOp::CommitPrepared { .. }) { "COMMIT" } else { "ROLLBACK" };
                (
                    Session::Failed,
                    Err(PgError::sql(
                        PgCode::ActiveSqlTransaction,
                        format!("{what} PREPARED cannot run inside a transaction block"),
                    )),
                )
            }
            (Session::Idle, PgOp::CommitPrepared { gid } | PgOp::RollbackPrepared { gid }) => {
                if self.prepared.contains_key(gid) {
                    let r = if matches!(op, PgOp::CommitPrepared { .. }) {
                        WalRecord::CommitPrepared { gid: gid.clone() }
                    } else {
                        WalRecord::RollbackPrepared { gid: gid.clone() }
                    };
                    self.apply(&r).expect("resolution applies");
                    wal = Some(r);
                    (Session::Idle, Ok(PgReply::Ok))
                } else {
                    (
                        Session::Idle,
                        Err(PgError::sql(
                            PgCode::UndefinedObject,
                            format!("prepared transaction with identifier \"{gid}\" does not exist"),
                        )),
                    )
                }
            }
            (Session::Idle, PgOp::Insert { part, rows }) => {
                let r = WalRecord::Commit(TxnData {
                    rows: rows.iter().map(|x| PgRow::new(*part, x)).collect(),
                    markers: vec![],
                });
                self.apply(&r).expect("commit applies");
                wal = Some(r);
                (Session::Idle, Ok(PgReply::Ok))
            }
            (Session::Block(mut t), PgOp::Insert { part, rows }) => {
                t.rows.extend(rows.iter().map(|x| PgRow::new(*part, x)));
                (Session::Block(t), Ok(PgReply::Ok))
            }
            (Session::Idle, PgOp::Mark { gid }) => {
                let r = WalRecord::Commit(TxnData { rows: vec![], markers: vec![gid.clone()] });
                self.apply(&r).expect("commit applies");
                wal = Some(r);
                (Session::Idle, Ok(PgReply::Ok))
            }
            (Session::Block(mut t), PgOp::Mark { gid }) => {
                t.markers.push(gid.clone());
                (Session::Block(t), Ok(PgReply::Ok))
            }
            (st, PgOp::ListPrepared) => (st, Ok(PgReply::Gids(self.prepared_gids()))),
            (st, PgOp::SelectRows) => {
                let mut rows = self.rows.clone();
                if let Session::Block(t) = &st {
                    rows.extend(t.rows.iter().cloned());
                }
                rows.sort();
                (st, Ok(PgReply::Rows(rows)))
            }
            (st, PgOp::Terminate { owners }) => {
                let victims: Vec<SessionId> =
                    self.owners.iter().filter(|(id, o)| **id != s && owners.contains(o)).map(|(id, _)| *id).collect();
                for v in victims {
                    self.disconnect(v);
                }
                (st, Ok(PgReply::Ok))
            }
            (st, PgOp::HasMarker { gid }) => {
                let own = matches!(&st, Session::Block(t) if t.markers.contains(gid));
                let found = own || self.markers.contains(gid);
                (st, Ok(PgReply::Found(found)))
            }
        };
        self.sessions.insert(s, next);
        (reply, wal)
    }
}

/// One committed transaction's rows as [`PgModel::commit_order`] lists
/// them: its sorted `out_id`s; `None` when it wrote no row.
pub fn commit_entry(rows: &[PgRow]) -> Option<Vec<u64>> {
    let mut ids: Vec<u64> = rows.iter().map(|r| r.out_id).collect();
    ids.sort_unstable();
    (!ids.is_empty()).then_some(ids)
}

/// In-process sessions on a shared [`PgModel`] (for tests of code that
/// talks to PostgreSQL through the seam).
#[derive(Clone)]
pub struct ModelConnector {
    pub model: Arc<Mutex<PgModel>>,
}

impl ModelConnector {
    pub fn new(model: PgModel) -> Self {
        ModelConnector { model: Arc::new(Mutex::new(model)) }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut PgModel) -> R) -> R {
        f(&mut self.model.lock().expect("model lock"))
    }
}

pub struct ModelSession {
    model: Arc<Mutex<PgModel>>,
    id: SessionId,
}

impl ModelSession {
    /// Run a statement synchronously (the model never waits).
    pub fn exec_now(&mut self, op: &PgOp) -> Result<PgReply, PgError> {
        self.model.lock().expect("model lock").exec(self.id, op).0
    }
}

impl Drop for ModelSession {
    fn drop(&mut self) {
        if let Ok(mut m) = self.model.lock() {
            m.disconnect(self.id);
        }
    }
}

#[async_trait]
impl PgSession for ModelSession {
    async fn exec(&mut self, op: PgOp) -> Result<PgReply, PgError> {
        self.exec_now(&op)
    }
}

impl ModelConnector {
    pub fn connect_now(&self, owner: &str) -> Result<ModelSession, PgError> {
        let id = self.with(|m| m.connect(owner))?;
        Ok(ModelSession { model: self.model.clone(), id })
    }
}

#[async_trait]
impl PgConnector for ModelConnector {
    async fn connect(&self, owner: &str) -> Result<Box<dyn PgSession>, PgError> {
        Ok(Box::new(self.connect_now(owner)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exactsim_engine::types::OutRecord;

    fn rec(i: u64) -> OutRecord {
        OutRecord::new(i, i, i as i64, 0)
    }

    fn ok(r: (Result<PgReply, PgError>, Option<WalRecord>)) -> Option<WalRecord> {
        assert_eq!(r.0, Ok(PgReply::Ok));
        r.1
    }

    fn code(r: (Result<PgReply, PgError>, Option<WalRecord>)) -> PgCode {
        assert!(r.1.is_none(), "a failed statement writes nothing durable");
        r.0.expect_err("an error").code().cloned().expect("an SQL error")
    }

    fn rows(m: &mut PgModel, s: SessionId) -> Vec<u64> {
        match m.exec(s, &PgOp::SelectRows).0 {
            Ok(PgReply::Rows(r)) => r.iter().map(|r| r.out_id).collect(),
            other => panic!("{other:?}"),
        }
    }

    fn ins(i: u64) -> PgOp {
        PgOp::Insert { part: 0, rows: vec![rec(i)] }
    }

    fn gid(g: &str) -> String {
        g.to_string()
    }

    #[test]
    fn read_committed_visibility() {
        let mut m = PgModel::new(4);
        let (a, b) = (m.connect("t").unwrap(), m.connect("t").unwrap());
        ok(m.exec(a, &PgOp::Begin));
        ok(m.exec(a, &ins(1)));
        assert_eq!(rows(&mut m, a), vec![1], "own uncommitted rows are visible");
        assert_eq!(rows(&mut m, b), Vec::<u64>::new(), "others' are not");
        ok(m.exec(a, &PgOp::Prepare { gid: gid("g") }));
        assert_eq!(rows(&mut m, a), Vec::<u64>::new(), "prepared rows are invisible, also to their writer");
        ok(m.exec(b, &PgOp::CommitPrepared { gid: gid("g") }));
        assert_eq!(rows(&mut m, a), vec![1]);
        ok(m.exec(b, &ins(2)));
        assert_eq!(rows(&mut m, a), vec![1, 2], "autocommit");
    }

    #[test]
    fn prepare_errors_in_order_and_roll_back() {
        let mut m = PgModel::new(0);
        let s = m.connect("t").unwrap();
        ok(m.exec(s, &PgOp::Begin));
        ok(m.exec(s, &ins(1)));
        assert_eq!(code(m.exec(s, &PgOp::Prepare { gid: gid("g") })), PgCode::ObjectNotInPrerequisiteState);
        assert_eq!(rows(&mut m, s), Vec::<u64>::new(), "rolled back, the session is out of the block");

        let mut m = PgModel::new(1);
        let s = m.connect("t").unwrap();
        for _ in 0..2 {
            ok(m.exec(s, &PgOp::Begin));
            ok(m.exec(s, &ins(1)));
            let r = m.exec(s, &PgOp::Prepare { gid: gid("g") });
            if m.prepared_gids().len() == 1 && r.1.is_none() {
                assert_eq!(r.0.unwrap_err().code(), Some(&PgCode::DuplicateObject), "the duplicate check comes first");
            }
        }
        ok(m.exec(s, &PgOp::Begin));
        assert_eq!(code(m.exec(s, &PgOp::Prepare { gid: gid("h") })), PgCode::OutOfMemory);
        assert_eq!(m.prepared_gids(), vec![gid("g")]);
        assert_eq!(code(m.exec(s, &PgOp::CommitPrepared { gid: gid("h") })), PgCode::UndefinedObject);
        assert_eq!(code(m.exec(s, &PgOp::RollbackPrepared { gid: gid("h") })), PgCode::UndefinedObject);
    }

    #[test]
    fn prepare_outside_or_in_failed_block_prepares_nothing() {
        let mut m = PgModel::new(4);
        let s = m.connect("t").unwrap();
        assert_eq!(ok(m.exec(s, &PgOp::Prepare { gid: gid("a") })), None);
        ok(m.exec(s, &PgOp::Begin));
        ok(m.exec(s, &ins(1)));
        assert_eq!(code(m.exec(s, &PgOp::CommitPrepared { gid: gid("x") })), PgCode::ActiveSqlTransaction);
        assert_eq!(code(m.exec(s, &ins(2))), PgCode::InFailedSqlTransaction);
        assert_eq!(code(m.exec(s, &PgOp::Begin)), PgCode::InFailedSqlTransaction);
        assert_eq!(ok(m.exec(s, &PgOp::Prepare { gid: gid("b") })), None, "a failed block rolls back");
        assert!(m.prepared_gids().is_empty());
        assert_eq!(rows(&mut m, s), Vec::<u64>::new());
        ok(m.exec(s, &PgOp::Begin));
        ok(m.exec(s, &ins(3)));
        ok(m.exec(s, &PgOp::Begin)); // a warning only
        ok(m.exec(s, &PgOp::Commit));
        assert_eq!(rows(&mut m, s), vec![3]);
    }

    #[test]
    fn crash_keeps_prepared_and_committed_loses_open_and_sessions() {
        let mut m = PgModel::new(4);
        let (a, b, c) = (m.connect("t").unwrap(), m.connect("t").unwrap(), m.connect("t").unwrap());
        let mut wal = vec![];
        wal.extend(ok(m.exec(a, &ins(1))));
        ok(m.exec(a, &PgOp::Begin));
        ok(m.exec(a, &ins(2)));
        ok(m.exec(a, &PgOp::Mark { gid: gid("p") }));
        wal.extend(ok(m.exec(a, &PgOp::Prepare { gid: gid("p") })));
        ok(m.exec(b, &PgOp::Begin));
        ok(m.exec(b, &ins(3)));
        ok(m.exec(c, &PgOp::Begin));
        ok(m.exec(c, &ins(4)));
        m.disconnect(c); // a dropped connection aborts its block
        m.crash();
        assert!(m.connect("t").is_err(), "down until restarted");
        assert!(matches!(m.exec(a, &PgOp::SelectRows).0, Err(PgError::ConnectionLost(_))));
        m.restart();
        assert!(matches!(m.exec(b, &PgOp::Commit).0, Err(PgError::ConnectionLost(_))), "old sessions are gone");
        let mut r = PgModel::recover(4, &wal).unwrap();
        for m in [&mut m, &mut r] {
            let s = m.connect("t").unwrap();
            assert_eq!(rows(m, s), vec![1]);
            assert_eq!(m.prepared_gids(), vec![gid("p")]);
            assert_eq!(m.exec(s, &PgOp::HasMarker { gid: gid("p") }).0, Ok(PgReply::Found(false)));
            ok(m.exec(s, &PgOp::CommitPrepared { gid: gid("p") }));
            assert_eq!(rows(m, s), vec![1, 2]);
            assert_eq!(m.exec(s, &PgOp::HasMarker { gid: gid("p") }).0, Ok(PgReply::Found(true)));
            assert_eq!(code(m.exec(s, &PgOp::CommitPrepared { gid: gid("p") })), PgCode::UndefinedObject);
        }
        assert!(PgModel::recover(0, &wal).is_err(), "too many prepared transactions to start");
    }

    #[test]
    fn rollback_prepared_discards() {
        let mut m = PgModel::new(2);
        let s = m.connect("t").unwrap();
        ok(m.exec(s, &PgOp::Begin));
        ok(m.exec(s, &ins(1)));
        ok(m.exec(s, &PgOp::Prepare { gid: gid("g") }));
        ok(m.exec(s, &PgOp::RollbackPrepared { gid: gid("g") }));
        assert!(m.prepared_gids().is_empty());
        assert_eq!(rows(&mut m, s), Vec::<u64>::new());
        // the gid can be used again
        ok(m.exec(s, &PgOp::Begin));
        ok(m.exec(s, &PgOp::Prepare { gid: gid("g") }));
        assert_eq!(m.prepared_gids(), vec![gid("g")]);
    }

    /// `Terminate` ends the sessions of the named owners (never the caller):
    /// their open blocks roll back, their next statement is "connection
    /// lost", what they prepared stays; in a failed block it is refused.
    #[test]
    fn terminate_ends_the_named_owners_sessions() {
        let mut m = PgModel::new(4);
        let (a, b, c) = (m.connect("old").unwrap(), m.connect("old").unwrap(), m.connect("new").unwrap());
        ok(m.exec(a, &PgOp::Begin));
        ok(m.exec(a, &ins(1)));
        ok(m.exec(b, &PgOp::Begin));
        ok(m.exec(b, &ins(2)));
        ok(m.exec(b, &PgOp::Prepare { gid: gid("p") }));
        let me = m.connect("old").unwrap();
        assert_eq!(m.exec(c, &PgOp::Terminate { owners: vec!["old".into()] }).0, Ok(PgReply::Ok));
        assert!(matches!(m.exec(a, &PgOp::Prepare { gid: gid("q") }).0, Err(PgError::ConnectionLost(_))));
        assert!(matches!(m.exec(me, &PgOp::SelectRows).0, Err(PgError::ConnectionLost(_))));
        assert_eq!(m.prepared_gids(), vec![gid("p")]);
        assert!(rows(&mut m, c).is_empty());
        // The caller is never its own victim.
        assert_eq!(m.exec(c, &PgOp::Terminate { owners: vec!["new".into()] }).0, Ok(PgReply::Ok));
        assert_eq!(m.exec(c, &PgOp::Begin).0, Ok(PgReply::Ok));
        assert_eq!(code(m.exec(c, &PgOp::CommitPrepared { gid: gid("p") })), PgCode::ActiveSqlTransaction);
        assert_eq!(code(m.exec(c, &PgOp::Terminate { owners: vec![] })), PgCode::InFailedSqlTransaction);
    }
}
