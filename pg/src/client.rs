//! The client seam: the SQL the PostgreSQL sink needs, as one operation
//! type ([`PgOp`]) executed on a session ([`PgSession`]) opened by a
//! [`PgConnector`]. Two implementations: [`crate::model`] (the simulated
//! server, in process or behind a simulated node) and `crate::real`
//! (tokio-postgres, std build only).
//!
//! The schema the operations run against:
//!
//! ```sql
//! CREATE TABLE exactsim_out (part int, out_id bigint, key bigint, value bigint, src bigint, writer text);
//! CREATE TABLE exactsim_markers (gid text);
//! ```
//!
//! No keys or constraints on purpose: a prepared transaction holds its
//! row locks until it is resolved, and a unique marker would make a second
//! writer of the same gid block instead of fail.
//!
//! The unsigned fields of an [`OutRecord`] are stored as `bigint` with the
//! same bits (`as i64`) and read back `as u64`; its lineage (`writer`) as
//! text ([`encode_writer`]), so the fencing check judges what PostgreSQL
//! shows.

use async_trait::async_trait;
use exactsim_engine::types::{OutRecord, Owner, Writer};
use serde::{Deserialize, Serialize};

/// One statement. Each is one SQL statement on the real server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PgOp {
    /// `BEGIN`. Inside a block it only warns (Ok).
    Begin,
    /// `INSERT INTO exactsim_out` one row per record, partition `part`.
    /// Outside a block it commits at once (autocommit).
    Insert { part: u32, rows: Vec<OutRecord> },
    /// `INSERT INTO exactsim_markers (gid)`: the commit marker of `gid`.
    Mark { gid: String },
    /// `PREPARE TRANSACTION gid`. Outside a block it only warns (Ok, nothing
    /// prepared); in a failed block it rolls back (Ok, nothing prepared).
    Prepare { gid: String },
    /// `COMMIT PREPARED gid`. Not allowed inside a block (25001).
    CommitPrepared { gid: String },
    /// `ROLLBACK PREPARED gid`. Not allowed inside a block (25001).
    RollbackPrepared { gid: String },
    /// `COMMIT` (of a failed block: rolls back, Ok; outside one: warns, Ok).
    Commit,
    /// `ROLLBACK`.
    Rollback,
    /// `SELECT gid FROM pg_prepared_xacts WHERE database = current_database()`:
    /// not transactional, sees every prepared transaction at once.
    ListPrepared,
    /// `SELECT part, out_id, key, value, src FROM exactsim_out`: read committed,
    /// plus the session's own uncommitted rows inside a block.
    SelectRows,
    /// `SELECT count(*) FROM exactsim_markers WHERE gid = $1`, same visibility.
    HasMarker { gid: String },
    /// `SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE
    /// application_name = ANY($1) AND pid <> pg_backend_pid()`: end every
    /// other session whose owner (the name it connected with) is listed,
    /// and wait until they are gone. Their open blocks roll back; whatever
    /// they sent afterwards answers "connection lost"; what they prepared
    /// stays prepared. Not transactional.
    Terminate { owners: Vec<String> },
}

/// A visible output row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PgRow {
    pub part: u32,
    pub out_id: u64,
    pub key: u64,
    pub value: i64,
    pub src: u64,
    /// The record's lineage ([`OutRecord::writer`]).
    pub writer: Writer,
}

impl PgRow {
    pub fn new(part: u32, r: &OutRecord) -> Self {
        PgRow { part, out_id: r.out_id, key: r.key, value: r.value, src: r.src, writer: r.writer }
    }

    pub fn record(&self) -> OutRecord {
        OutRecord { writer: self.writer, ..OutRecord::new(self.out_id, self.key, self.value, self.src) }
    }
}

/// A record's lineage as the `writer` column holds it:
/// `run.attempt.deploy.try.subtask.txn`.
pub fn encode_writer(w: &Writer) -> String {
    let o = &w.owner;
    format!("{}.{}.{}.{}.{}.{}", o.run, o.attempt, o.session.0, o.session.1, w.subtask, w.txn)
}

/// The lineage [`encode_writer`] wrote; `None` for anything else.
pub fn decode_writer(s: &str) -> Option<Writer> {
    let v: Vec<u64> = s.split('.').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let [run, attempt, deploy, try_, subtask, txn] = v[..] else { return None };
    Some(Writer { owner: Owner { run, attempt, session: (deploy, try_) }, subtask: u32::try_from(subtask).ok()?, txn })
}

/// The answer to a [`PgOp`] that succeeded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PgReply {
    Ok,
    /// Prepared gids, sorted.
    Gids(Vec<String>),
    /// Visible rows, sorted (the order of a SELECT without ORDER BY is not
    /// defined; both implementations sort the same way).
    Rows(Vec<PgRow>),
    Found(bool),
}

/// The SQLSTATE codes the sink and the simulated server deal in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PgCode {
    /// 55000 object_not_in_prerequisite_state: here, prepared transactions
    /// are disabled (`max_prepared_transactions = 0`).
    ObjectNotInPrerequisiteState,
    /// 42704 undefined_object: no prepared transaction with that gid.
    UndefinedObject,
    /// 42710 duplicate_object: the gid is already in use.
    DuplicateObject,
    /// 53200 out_of_memory: here, `max_prepared_transactions` reached.
    OutOfMemory,
    /// 25P02 in_failed_sql_transaction: commands ignored until the block ends.
    InFailedSqlTransaction,
    /// 25001 active_sql_transaction: `COMMIT/ROLLBACK PREPARED` inside a block.
    ActiveSqlTransaction,
    /// Any other SQLSTATE.
    Other(String),
}

impl PgCode {
    pub fn from_sqlstate(s: &str) -> Self {
        match s {
            "55000" => PgCode::ObjectNotInPrerequisiteState,
            "42704" => PgCode::UndefinedObject,
            "42710" => PgCode::DuplicateObject,
            "53200" => PgCode::OutOfMemory,
            "25P02" => PgCode::InFailedSqlTransaction,
            "25001" => PgCode::ActiveSqlTransaction,
            other => PgCode::Other(other.to_string()),
        }
    }

    pub fn sqlstate(&self) -> &str {
        match self {
            PgCode::ObjectNotInPrerequisiteState => "55000",
            PgCode::UndefinedObject => "42704",
            PgCode::DuplicateObject => "42710",
            PgCode::OutOfMemory => "53200",
            PgCode::InFailedSqlTransaction => "25P02",
            PgCode::ActiveSqlTransaction => "25001",
            PgCode::Other(s) => s,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PgError {
    /// The server answered with an error.
    Sql { code: PgCode, message: String },
    /// The session is gone (server crashed or restarted, connection dropped,
    /// server unreachable). Whatever the session had not prepared or
    /// committed is lost; the outcome of the statement in flight is unknown.
    ConnectionLost(String),
    /// The server's answer did not fit the statement (a bug on one side).
    Protocol(String),
}

impl PgError {
    pub fn sql(code: PgCode, message: impl Into<String>) -> Self {
        PgError::Sql { code, message: message.into() }
    }

    pub fn code(&self) -> Option<&PgCode> {
        match self {
            PgError::Sql { code, .. } => Some(code),
            PgError::ConnectionLost(_) | PgError::Protocol(_) => None,
        }
    }

    pub fn is(&self, code: &PgCode) -> bool {
        self.code() == Some(code)
    }
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PgError::Sql { code, message } => write!(f, "{}: {message}", code.sqlstate()),
            PgError::ConnectionLost(s) => write!(f, "connection lost: {s}"),
            PgError::Protocol(s) => write!(f, "protocol: {s}"),
        }
    }
}

/// One database session (connection). Dropping it closes the connection,
/// which aborts an unprepared transaction.
#[async_trait]
pub trait PgSession: Send {
    async fn exec(&mut self, op: PgOp) -> Result<PgReply, PgError>;

    async fn begin(&mut self) -> Result<(), PgError> {
        self.exec(PgOp::Begin).await.map(drop)
    }
    async fn insert(&mut self, part: u32, rows: &[OutRecord]) -> Result<(), PgError> {
        self.exec(PgOp::Insert { part, rows: rows.to_vec() }).await.map(drop)
    }
    async fn mark(&mut self, gid: &str) -> Result<(), PgError> {
        self.exec(PgOp::Mark { gid: gid.into() }).await.map(drop)
    }
    async fn prepare(&mut self, gid: &str) -> Result<(), PgError> {
        self.exec(PgOp::Prepare { gid: gid.into() }).await.map(drop)
    }
    async fn commit_prepared(&mut self, gid: &str) -> Result<(), PgError> {
        self.exec(PgOp::CommitPrepared { gid: gid.into() }).await.map(drop)
    }
    async fn rollback_prepared(&mut self, gid: &str) -> Result<(), PgError> {
        self.exec(PgOp::RollbackPrepared { gid: gid.into() }).await.map(drop)
    }
    async fn rollback(&mut self) -> Result<(), PgError> {
        self.exec(PgOp::Rollback).await.map(drop)
    }
    async fn prepared_gids(&mut self) -> Result<Vec<String>, PgError> {
        match self.exec(PgOp::ListPrepared).await? {
            PgReply::Gids(g) => Ok(g),
            other => Err(PgError::Protocol(format!("unexpected reply to ListPrepared: {other:?}"))),
        }
    }
    async fn select_rows(&mut self) -> Result<Vec<PgRow>, PgError> {
        match self.exec(PgOp::SelectRows).await? {
            PgReply::Rows(r) => Ok(r),
            other => Err(PgError::Protocol(format!("unexpected reply to SelectRows: {other:?}"))),
        }
    }
    async fn has_marker(&mut self, gid: &str) -> Result<bool, PgError> {
        match self.exec(PgOp::HasMarker { gid: gid.into() }).await? {
            PgReply::Found(b) => Ok(b),
            other => Err(PgError::Protocol(format!("unexpected reply to HasMarker: {other:?}"))),
        }
    }
}

/// Opens sessions to one server.
#[async_trait]
pub trait PgConnector: Send + Sync {
    /// A new session named `owner` (PostgreSQL's `application_name`): the
    /// name [`PgOp::Terminate`] finds it by.
    async fn connect(&self, owner: &str) -> Result<Box<dyn PgSession>, PgError>;
}
