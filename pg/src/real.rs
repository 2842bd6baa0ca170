//! The seam on a real PostgreSQL server through tokio-postgres (std build
//! only: it needs real sockets and a tokio runtime).

use crate::client::{decode_writer, encode_writer, PgCode, PgConnector, PgError, PgOp, PgReply, PgRow, PgSession};
use async_trait::async_trait;
use exactsim_engine::types::Writer;
use std::time::Duration;
use tokio_postgres::{Client, Config, NoTls};

/// Longest a statement or a connection attempt may take before the session
/// is given up as lost (nothing the sink runs can block on a lock).
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

pub const SCHEMA: &str = "CREATE TABLE exactsim_out (part int NOT NULL, out_id bigint NOT NULL, key bigint NOT NULL, \
     value bigint NOT NULL, src bigint NOT NULL, writer text NOT NULL); CREATE TABLE exactsim_markers (gid text NOT NULL);";

fn map_err(e: tokio_postgres::Error) -> PgError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        // 08xxx connection exceptions; 57P01..57P03 shutdown, crash, starting up.
        if code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03") {
            return PgError::ConnectionLost(format!("{code}: {}", db.message()));
        }
        return PgError::sql(PgCode::from_sqlstate(code), db.message());
    }
    PgError::ConnectionLost(e.to_string())
}

/// A `writer` column's lineage; a value this code did not write reads as
/// no writer (the fencing check then reports the record's writer unknown).
fn writer_of(s: &str) -> Writer {
    decode_writer(s).unwrap_or_default()
}

/// A single-quoted SQL literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[derive(Clone)]
pub struct RealConnector {
    config: Config,
}

impl RealConnector {
    /// `url`: a libpq-style connection string, e.g.
    /// `host=127.0.0.1 port=5432 user=postgres dbname=postgres`.
    pub fn new(url: &str) -> Result<Self, String> {
        let mut config: Config = url.parse().map_err(|e| format!("bad PostgreSQL connection string {url:?}: {e}"))?;
        config.connect_timeout(STATEMENT_TIMEOUT);
        Ok(RealConnector { config })
    }

    pub async fn connect_real(&self) -> Result<RealSession, PgError> {
        self.connect_as("exactsim").await
    }

    /// A session named `owner` (`application_name`).
    pub async fn connect_as(&self, owner: &str) -> Result<RealSession, PgError> {
        let mut config = self.config.clone();
        config.application_name(owner);
        let fut = config.connect(NoTls);
        let (client, connection) = match tokio::time::timeout(STATEMENT_TIMEOUT, fut).await {
            Ok(r) => r.map_err(map_err)?,
            Err(_) => return Err(PgError::ConnectionLost("connect timed out".into())),
        };
        let task = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(RealSession { client, task })
    }

    /// Make the database empty: roll back every prepared transaction, drop
    /// and create the sink's tables.
    pub async fn reset(&self) -> Result<(), PgError> {
        let mut s = self.connect_real().await?;
        for gid in s.prepared_gids().await? {
            s.rollback_prepared(&gid).await?;
        }
        s.client
            .batch_execute("DROP TABLE IF EXISTS exactsim_out; DROP TABLE IF EXISTS exactsim_markers;")
            .await
            .map_err(map_err)?;
        s.client.batch_execute(SCHEMA).await.map_err(map_err)
    }

    /// `SHOW max_prepared_transactions`.
    pub async fn max_prepared(&self) -> Result<usize, PgError> {
        let s = self.connect_real().await?;
        let row = s.client.query_one("SHOW max_prepared_transactions", &[]).await.map_err(map_err)?;
        let v: String = row.get(0);
        v.parse().map_err(|_| PgError::Protocol(format!("max_prepared_transactions = {v:?}")))
    }
}

#[async_trait]
impl PgConnector for RealConnector {
    async fn connect(&self, owner: &str) -> Result<Box<dyn PgSession>, PgError> {
        Ok(Box::new(self.connect_as(owner).await?))
    }
}

/// One connection. Dropping it closes the connection.
pub struct RealSession {
    client: Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RealSession {
    fn drop(&mut self) {
        // Dropping the client ends the connection task; aborting it too
        // closes the socket at once.
        self.task.abort();
    }
}

impl RealSession {
    async fn run(&mut self, op: &PgOp) -> Result<PgReply, tokio_postgres::Error> {
        let c = &self.client;
        match op {
            PgOp::Begin => c.batch_execute("BEGIN").await.map(|_| PgReply::Ok),
            PgOp::Commit => c.batch_execute("COMMIT").await.map(|_| PgReply::Ok),
            PgOp::Rollback => c.batch_execute("ROLLBACK").await.map(|_| PgReply::Ok),
            PgOp::Prepare { gid } => {
                c.batch_execute(&format!("PREPARE TRANSACTION {}", literal(gid))).await.map(|_| PgReply::Ok)
            }
            PgOp::CommitPrepared { gid } => {
                c.batch_execute(&format!("COMMIT PREPARED {}", literal(gid))).await.map(|_| PgReply::Ok)
            }
            PgOp::RollbackPrepared { gid } => {
                c.batch_execute(&format!("ROLLBACK PREPARED {}", literal(gid))).await.map(|_| PgReply::Ok)
            }
            PgOp::Insert { part, rows } => {
                let part = *part as i32;
                let out_id: Vec<i64> = rows.iter().map(|r| r.out_id as i64).collect();
                let key: Vec<i64> = rows.iter().map(|r| r.key as i64).collect();
                let value: Vec<i64> = rows.iter().map(|r| r.value).collect();
                let src: Vec<i64> = rows.iter().map(|r| r.src as i64).collect();
                let writer: Vec<String> = rows.iter().map(|r| encode_writer(&r.writer)).collect();
                c.execute(
                    "INSERT INTO exactsim_out (part, out_id, key, value, src, writer) \
                     SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[])",
                    &[&part, &out_id, &key, &value, &src, &writer],
                )
                .await
                .map(|_| PgReply::Ok)
            }
            PgOp::Mark { gid } => {
                c.execute("INSERT INTO exactsim_markers (gid) VALUES ($1)", &[gid]).await.map(|_| PgReply::Ok)
            }
            PgOp::ListPrepared => {
                let rows =
                    c.query("SELECT gid FROM pg_prepared_xacts WHERE database = current_database()", &[]).await?;
                let mut g: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
                g.sort();
                Ok(PgReply::Gids(g))
            }
            PgOp::SelectRows => {
                let rows = c.query("SELECT part, out_id, key, value, src, writer FROM exactsim_out", &[]).await?;
                let mut v: Vec<PgRow> = rows
                    .iter()
                    .map(|r| PgRow {
                        part: r.get::<_, i32>(0) as u32,
                        out_id: r.get::<_, i64>(1) as u64,
                        key: r.get::<_, i64>(2) as u64,
                        value: r.get(3),
                        src: r.get::<_, i64>(4) as u64,
                        writer: writer_of(r.get(5)),
                    })
                    .collect();
                v.sort();
                Ok(PgReply::Rows(v))
            }
            PgOp::HasMarker { gid } => {
                let row = c.query_one("SELECT count(*) FROM exactsim_markers WHERE gid = $1", &[gid]).await?;
                Ok(PgReply::Found(row.get::<_, i64>(0) > 0))
            }
            PgOp::Terminate { owners } => {
                // With a timeout, pg_terminate_backend waits until the
                // backend is gone: nothing it was sent runs afterwards.
                c.query(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
                     WHERE application_name = ANY($1) AND pid <> pg_backend_pid()",
                    &[owners],
                )
                .await
                .map(|_| PgReply::Ok)
            }
        }
    }
}

#[async_trait]
impl PgSession for RealSession {
    async fn exec(&mut self, op: PgOp) -> Result<PgReply, PgError> {
        if self.client.is_closed() {
            return Err(PgError::ConnectionLost("connection closed".into()));
        }
        match tokio::time::timeout(STATEMENT_TIMEOUT, self.run(&op)).await {
            Ok(r) => r.map_err(map_err),
            Err(_) => {
                // The statement's outcome is unknown: give the session up.
                self.task.abort();
                Err(PgError::ConnectionLost(format!("{op:?} timed out")))
            }
        }
    }
}

/// One committed transaction as the server recorded it: its id (`xmin`
/// of its rows), its commit time (`pg_xact_commit_timestamp`, needs
/// `track_commit_timestamp = on`), the gid its marker row names (none for
/// an autocommit insert) and its rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedTxn {
    pub xid: i64,
    pub commit_unix_us: i64,
    pub gid: Option<String>,
    pub rows: Vec<PgRow>,
}

/// What one snapshot of the server shows: the committed transactions in
/// commit order (commit time, then id), each one's rows by `src`; and the
/// prepared gids (`pg_prepared_xacts`), sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitLog {
    pub txns: Vec<CommittedTxn>,
    pub prepared: Vec<String>,
}

impl RealSession {
    /// The server's commit log as one `REPEATABLE READ` snapshot: rows and
    /// markers grouped by the transaction that wrote them, ordered by when
    /// it committed. This is how a reader of a real server gets the commit
    /// order a `SELECT` alone does not give.
    pub async fn commit_log(&mut self) -> Result<CommitLog, PgError> {
        match tokio::time::timeout(STATEMENT_TIMEOUT, self.commit_log_inner()).await {
            Ok(r) => r,
            Err(_) => {
                self.task.abort();
                Err(PgError::ConnectionLost("commit log read timed out".into()))
            }
        }
    }

    async fn commit_log_inner(&mut self) -> Result<CommitLog, PgError> {
        use std::collections::BTreeMap;
        let c = &self.client;
        c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await.map_err(map_err)?;
        let ts = "(extract(epoch from pg_xact_commit_timestamp(xmin)) * 1000000)::bigint";
        let rows = c
            .query(
                &format!("SELECT xmin::text::bigint, {ts}, part, out_id, key, value, src, writer FROM exactsim_out"),
                &[],
            )
            .await
            .map_err(map_err)?;
        let markers = c
            .query(&format!("SELECT xmin::text::bigint, {ts}, gid FROM exactsim_markers"), &[])
            .await
            .map_err(map_err)?;
        let prepared = c
            .query("SELECT gid FROM pg_prepared_xacts WHERE database = current_database()", &[])
            .await
            .map_err(map_err)?;
        c.batch_execute("COMMIT").await.map_err(map_err)?;
        let no_ts = || PgError::Protocol("no commit timestamp (track_commit_timestamp is off)".into());
        let mut txns: BTreeMap<i64, CommittedTxn> = BTreeMap::new();
        for r in &markers {
            let (xid, at): (i64, Option<i64>) = (r.get(0), r.get(1));
            let t = txns.entry(xid).or_insert(CommittedTxn {
                xid,
                commit_unix_us: at.ok_or_else(no_ts)?,
                gid: None,
                rows: Vec::new(),
            });
            t.gid = Some(r.get(2));
        }
        for r in &rows {
            let (xid, at): (i64, Option<i64>) = (r.get(0), r.get(1));
            let t = match txns.entry(xid) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(CommittedTxn { xid, commit_unix_us: at.ok_or_else(no_ts)?, gid: None, rows: Vec::new() })
                }
            };
            t.rows.push(PgRow {
                part: r.get::<_, i32>(2) as u32,
                out_id: r.get::<_, i64>(3) as u64,
                key: r.get::<_, i64>(4) as u64,
                value: r.get(5),
                src: r.get::<_, i64>(6) as u64,
                writer: writer_of(r.get(7)),
            });
        }
        let mut txns: Vec<CommittedTxn> = txns.into_values().collect();
        for t in txns.iter_mut() {
            t.rows.sort_by_key(|r| (r.src, r.out_id));
        }
        txns.sort_by_key(|t| (t.commit_unix_us, t.xid));
        let mut prepared: Vec<String> = prepared.iter().map(|r| r.get(0)).collect();
        prepared.sort();
        Ok(CommitLog { txns, prepared })
    }
}

/// The upsert table on a real server (`exactsim_engine::upsert`, real
/// mode): its schema, the sink that runs `upsert::UPSERT_SQL` (the version
/// guard executed by PostgreSQL), and a read of the whole table.
pub mod upsert {
    use super::{Config, NoTls, STATEMENT_TIMEOUT};
    use async_trait::async_trait;
    use exactsim_engine::codec;
    use exactsim_engine::config::Mutant;
    use exactsim_engine::sink::{Route, SinkError, TwoPhaseCommitSink, TxnHandle};
    use exactsim_engine::types::{CheckpointId, OutRecord};
    use exactsim_engine::upsert::{batch, version_of, UPSERT_SQL};
    use tokio_postgres::Client;

    pub const UPSERT_SCHEMA: &str = "DROP TABLE IF EXISTS exactsim_upsert; CREATE TABLE exactsim_upsert \
         (key bigint PRIMARY KEY, part integer NOT NULL, value bigint NOT NULL, version bigint NOT NULL, rec bytea NOT NULL)";

    async fn connect(config: &Config) -> Result<Client, String> {
        let (client, connection) = tokio::time::timeout(STATEMENT_TIMEOUT, config.connect(NoTls))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// Create the empty table.
    pub async fn setup(url: &str) -> Result<(), String> {
        let config: Config = url.parse().map_err(|e| format!("bad PostgreSQL connection string: {e}"))?;
        connect(&config).await?.batch_execute(UPSERT_SCHEMA).await.map_err(|e| e.to_string())
    }

    /// Every row: (partition, the record as written).
    pub async fn read_table(url: &str) -> Result<Vec<(u32, OutRecord)>, String> {
        let config: Config = url.parse().map_err(|e| format!("bad PostgreSQL connection string: {e}"))?;
        let c = connect(&config).await?;
        let rows =
            tokio::time::timeout(STATEMENT_TIMEOUT, c.query("SELECT part, rec FROM exactsim_upsert ORDER BY key", &[]))
                .await
                .map_err(|_| "read timed out".to_string())?
                .map_err(|e| e.to_string())?;
        rows.iter()
            .map(|r| {
                let rec: Vec<u8> = r.get(1);
                Ok((r.get::<_, i32>(0) as u32, codec::decode(&rec)?))
            })
            .collect()
    }

    /// The upsert sink on a real server: each batch in one transaction of
    /// `UPSERT_SQL` statements; the 2PC calls do nothing (at-least-once).
    pub struct RealUpsertSink {
        config: Config,
        route: Route,
        client: Option<Client>,
        mutant: Option<Mutant>,
    }

    impl RealUpsertSink {
        pub fn new(url: &str, route: Route, mutant: Option<Mutant>) -> Result<RealUpsertSink, String> {
            let mut config: Config = url.parse().map_err(|e| format!("bad PostgreSQL connection string: {e}"))?;
            config.connect_timeout(STATEMENT_TIMEOUT);
            config.application_name("exactsim-upsert");
            Ok(RealUpsertSink { config, route, client: None, mutant })
        }

        async fn upsert(&mut self, records: &[OutRecord]) -> Result<(), String> {
            if self.client.as_ref().is_none_or(|c| c.is_closed()) {
                self.client = Some(connect(&self.config).await?);
            }
            let c = self.client.as_mut().expect("connected");
            let tx = c.transaction().await.map_err(|e| e.to_string())?;
            let stmt = tx.prepare(UPSERT_SQL).await.map_err(|e| e.to_string())?;
            for r in records {
                let rec = codec::encode(r);
                let part = (self.route)(r) as i32;
                let args: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
                    [&(r.key as i64), &part, &r.value, &(version_of(r) as i64), &rec];
                tx.execute(&stmt, &args).await.map_err(|e| e.to_string())?;
            }
            tx.commit().await.map_err(|e| e.to_string())
        }
    }

    #[async_trait]
    impl TwoPhaseCommitSink for RealUpsertSink {
        async fn begin(&mut self, hint: CheckpointId) -> Result<TxnHandle, SinkError> {
            Ok(TxnHandle { name: format!("upsert-c{hint}"), epoch: 0, records: 0, seq: 0 })
        }
        async fn write(&mut self, txn: &mut TxnHandle, records: &[OutRecord]) -> Result<(), SinkError> {
            txn.records += records.len() as u64;
            self.append(records.to_vec()).await
        }
        async fn pre_commit(&mut self, _txn: &mut TxnHandle) -> Result<(), SinkError> {
            Ok(())
        }
        async fn commit(&mut self, _txn: &TxnHandle) -> Result<(), SinkError> {
            Ok(())
        }
        async fn abort(&mut self, _txn: &TxnHandle) -> Result<(), SinkError> {
            Ok(())
        }
        async fn recover_and_abort(&mut self, _txn: &TxnHandle) -> Result<(), SinkError> {
            Ok(())
        }
        async fn append(&mut self, records: Vec<OutRecord>) -> Result<(), SinkError> {
            if records.is_empty() {
                return Ok(());
            }
            let records = batch(records, self.mutant);
            match tokio::time::timeout(STATEMENT_TIMEOUT, self.upsert(&records)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => {
                    self.client = None;
                    Err(SinkError::Transient(format!("upsert into PostgreSQL: {e}")))
                }
                Err(_) => {
                    self.client = None;
                    Err(SinkError::Transient("upsert into PostgreSQL timed out".into()))
                }
            }
        }
    }
}
