//! **The idempotent upsert sink** (issue 27, item 3): Spark's route to
//! effectively-once output. No two-phase commit: the job runs in
//! at-least-once mode, deliveries duplicate after a recovery (and a
//! retried or late request lands twice), and the table does not care,
//! because every write carries a **version** and is applied only when it is
//! newer than what the key holds.
//!
//! - [`admits`]: **the version guard, the one place the rule lives**: write
//!   only if the stored version is older (`stored < incoming`; a key not
//!   yet stored takes any version). The simulated system applies it, and
//!   real mode's PostgreSQL statement says the same thing
//!   ([`UPSERT_SQL`]: `... ON CONFLICT (key) DO UPDATE ... WHERE
//!   t.version < EXCLUDED.version`).
//! - [`UpsertTable`]: the keyed table as a plain state machine (a batch of
//!   versioned writes in, the rows it changed out, for the write-ahead
//!   log); every change stamps its rows with the table's change number
//!   (`lsn`), so a reader asks for the rows changed since its last read.
//! - [`UpsertSystem`] / [`UpsertReader`]: the simulated key-value system as
//!   a pipeline's own sink system (its own node and disk: crashes keep what
//!   was fsynced, network windows and late deliveries hit its requests), and
//!   how a reader samples it.
//! - [`UpsertSink`]: the engine's sink: `append` (at-least-once mode) sends
//!   the batch as versioned upserts; the 2PC calls do nothing (an upsert
//!   table has no transactions to stage).
//!
//! **Version**: the record's lineage. In an upsert pipeline, `OutRecord::src`
//! carries the key's update number (1 for the key's first update, 2 for its
//! second, ...), which the operator derives from its checkpointed state, so
//! a replay after recovery carries the same versions with the same values
//! ([`version_of`]). That needs exactly-once state under at-least-once
//! delivery: an upsert pipeline keeps barriers aligned in at-least-once mode
//! (`Pipeline::exactly_once_state`); unaligned, a restored state counts
//! replayed records again and its versions run ahead of the input.
//!
//! Real mode runs the same sink against PostgreSQL
//! (`exactsim_pg::real::upsert::RealUpsertSink`, [`UPSERT_SQL`]).
//!
//! Planted bugs (server side, in [`admits`]): `upsert-no-version-guard`
//! (every write lands) and `upsert-version-off-by-one` (the guard lets a
//! write one version behind the stored one through).

use crate::codec;
use crate::config::Mutant;
use crate::net::Net;
use crate::proto::{Msg, Request, Response};
use crate::sink::{SinkEnv, SinkError, TwoPhaseCommitSink, TxnHandle};
use crate::storage::{write_atomic, Storage};
use crate::system::{OutputReader, ReadStep, SinkSystem, SystemEnv};
use crate::types::{CheckpointId, OutRecord};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

/// The statement real mode runs per row against PostgreSQL (`$1` key, `$2`
/// partition, `$3` value, `$4` version, `$5` the record, encoded): the
/// same rule as [`admits`], executed by the server.
pub const UPSERT_SQL: &str = "INSERT INTO exactsim_upsert AS t (key, part, value, version, rec) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO UPDATE SET part = EXCLUDED.part, \
     value = EXCLUDED.value, version = EXCLUDED.version, rec = EXCLUDED.rec WHERE t.version < EXCLUDED.version";

/// What a sink hands the table for one batch of output records: all of
/// them, in order (the table's version guard, [`admits`], keeps each key's
/// newest). Both sinks (the simulated table's and real mode's PostgreSQL
/// one) send what this returns. Planted bug
/// [`Mutant::Iceberg13547BatchKeepsFirst`]: the batch is collapsed to the
/// first record of each key, and a newer version of the key in the same
/// batch is never written.
pub fn batch(records: Vec<OutRecord>, mutant: Option<Mutant>) -> Vec<OutRecord> {
    if mutant != Some(Mutant::Iceberg13547BatchKeepsFirst) {
        return records;
    }
    let mut seen = std::collections::BTreeSet::new();
    records.into_iter().filter(|r| seen.insert(r.key)).collect()
}

/// The version a record's upsert carries: its lineage, the key's update
/// number (`OutRecord::src` in an upsert pipeline).
pub fn version_of(rec: &OutRecord) -> u64 {
    rec.src
}

/// **The version guard**: whether a write of version `incoming` may
/// replace a key holding `stored` (`None`: the key is not in the table).
/// Only a strictly newer version replaces: an equal one is a duplicate, an
/// older one a replay or a late request.
pub fn admits(stored: Option<u64>, incoming: u64, mutant: Option<Mutant>) -> bool {
    let Some(stored) = stored else { return true };
    match mutant {
        // Planted bug: no guard at all, the last write wins.
        Some(Mutant::UpsertNoVersionGuard) => true,
        // Planted bug: off by one version, a write one behind the stored
        // one passes (`stored <= incoming + 1`).
        Some(Mutant::UpsertVersionOffByOne) => stored <= incoming + 1,
        _ => stored < incoming,
    }
}

/// One versioned write: the record, the output partition it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upsert {
    pub part: u32,
    pub version: u64,
    pub rec: OutRecord,
}

impl Upsert {
    pub fn of(rec: OutRecord, part: u32) -> Upsert {
        Upsert { part, version: version_of(&rec), rec }
    }
}

/// A row of the table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub part: u32,
    pub version: u64,
    pub rec: OutRecord,
    /// The table's change number when the row was last written.
    pub lsn: u64,
}

/// The keyed table, a plain state machine.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpsertTable {
    rows: BTreeMap<u64, Row>,
    /// Changes applied so far (a batch that changed something is one).
    lsn: u64,
}

impl UpsertTable {
    /// Apply a batch in order, each write through [`admits`]; the rows it
    /// changed (their final state, for the log), all stamped with the new
    /// change number. Nothing changed: an empty list and no new number.
    pub fn apply(&mut self, writes: &[Upsert], mutant: Option<Mutant>) -> Vec<Row> {
        let lsn = self.lsn + 1;
        let mut changed: BTreeMap<u64, ()> = BTreeMap::new();
        for w in writes {
            let stored = self.rows.get(&w.rec.key).map(|r| r.version);
            if admits(stored, w.version, mutant) {
                self.rows.insert(w.rec.key, Row { part: w.part, version: w.version, rec: w.rec.clone(), lsn });
                changed.insert(w.rec.key, ());
            }
        }
        if changed.is_empty() {
            return Vec::new();
        }
        self.lsn = lsn;
        changed.keys().map(|k| self.rows[k].clone()).collect()
    }

    /// Replay a logged change (the rows as they were written).
    pub fn replay(&mut self, rows: Vec<Row>) {
        for r in rows {
            self.lsn = self.lsn.max(r.lsn);
            self.rows.insert(r.rec.key, r);
        }
    }

    /// The rows of partition `part` changed after change number `from`
    /// (0: every row), by key, and the change number to read from next.
    pub fn read(&self, part: u32, from: u64) -> (Vec<OutRecord>, u64) {
        let recs = self.rows.values().filter(|r| r.part == part && r.lsn > from).map(|r| r.rec.clone()).collect();
        (recs, self.lsn)
    }

    /// Key -> (version, value), for tests.
    pub fn contents(&self) -> BTreeMap<u64, (u64, i64)> {
        self.rows.iter().map(|(k, r)| (*k, (r.version, r.rec.value))).collect()
    }

    pub fn lsn(&self) -> u64 {
        self.lsn
    }
}

/// What the sink and the reader ask the system (bincode in
/// `Request::System`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum UpsertReq {
    Write { rows: Vec<Upsert> },
    Read { part: u32, from: u64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum UpsertResp {
    /// The batch is durable; this many rows changed.
    Written {
        changed: u32,
    },
    Rows {
        records: Vec<OutRecord>,
        next: u64,
    },
}

/// The system's write-ahead log: one frame per change (the rows it wrote).
pub const WAL: &str = "upsert.wal";

/// Parse the log: the changes of its intact prefix, the prefix's length,
/// and whether a checksum failed (a corrupted read, not a torn tail).
pub fn parse_wal(bytes: &[u8]) -> (Vec<Vec<Row>>, usize, bool) {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        match codec::unframe(&bytes[pos..]) {
            Ok((payload, used)) => match codec::decode::<Vec<Row>>(payload) {
                Ok(r) => {
                    out.push(r);
                    pos += used;
                }
                Err(_) => return (out, pos, true),
            },
            Err(codec::FrameError::Truncated) => return (out, pos, false),
            Err(codec::FrameError::Checksum) => return (out, pos, true),
        }
    }
    (out, pos, false)
}

/// Rebuild the table from the disk at boot: replay the log, cut a torn
/// tail, create the log if missing.
pub async fn recover(storage: &dyn Storage) -> Result<UpsertTable, String> {
    let mut parsed = None;
    for _ in 0..8 {
        match crate::broker::read_stable(storage, WAL).await {
            Ok(bytes) => {
                let (changes, good, corrupt) = parse_wal(&bytes);
                if !corrupt {
                    parsed = Some((bytes, changes, good));
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_atomic(storage, WAL, &[]).await.map_err(|e| format!("create {WAL}: {e}"))?;
                parsed = Some((Vec::new(), Vec::new(), 0));
                break;
            }
            Err(e) => return Err(format!("read {WAL}: {e}")),
        }
    }
    let (bytes, changes, good) = parsed.ok_or_else(|| format!("{WAL}: checksum mismatch on every read"))?;
    if good < bytes.len() {
        write_atomic(storage, WAL, &bytes[..good]).await.map_err(|e| format!("truncate {WAL}: {e}"))?;
    }
    let mut t = UpsertTable::default();
    for c in changes {
        t.replay(c);
    }
    Ok(t)
}

/// The node loop: recover, then serve one request at a time; a change is
/// durable (appended and fsynced) before its reply and before any read
/// sees it. Returns only on a fatal error (the node restarts and recovers
/// from what is really on disk).
pub async fn serve_upsert(env: SystemEnv) -> String {
    let mut table = match recover(&*env.storage).await {
        Ok(t) => t,
        Err(e) => return e,
    };
    let mutant = env.cfg.mutant;
    loop {
        let (from, msg) = env.net.recv().await;
        let Msg::Req { id, body: Request::System { bytes } } = msg else { continue };
        let Ok(req) = codec::decode::<UpsertReq>(&bytes) else { continue };
        let resp = match req {
            UpsertReq::Write { rows } => {
                let changed = table.apply(&rows, mutant);
                if !changed.is_empty() {
                    let n = changed.len() as u32;
                    let frame = codec::encode_framed(&changed);
                    if let Err(e) = env.storage.append(WAL, &frame).await {
                        return format!("append {WAL}: {e}");
                    }
                    if let Err(e) = env.storage.fsync(WAL).await {
                        return format!("fsync {WAL}: {e}");
                    }
                    UpsertResp::Written { changed: n }
                } else {
                    UpsertResp::Written { changed: 0 }
                }
            }
            UpsertReq::Read { part, from } => {
                let (records, next) = table.read(part, from);
                UpsertResp::Rows { records, next }
            }
        };
        env.net.reply(from, id, Response::System { bytes: codec::encode(&resp) }).await;
    }
}

/// The simulated key-value system as a pipeline's own sink system.
#[derive(Clone, Debug, Default)]
pub struct UpsertSystem;

impl SinkSystem for UpsertSystem {
    fn serve(&self, env: SystemEnv) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let obs = env.obs.clone();
            let fatal = serve_upsert(env).await;
            obs.fatal(fatal).await
        })
    }
}

async fn call(net: &Net, at: SocketAddr, req: &UpsertReq, timeout: Duration) -> Option<UpsertResp> {
    match net.call(at, Request::System { bytes: codec::encode(req) }, timeout).await {
        Some(Response::System { bytes }) => codec::decode(&bytes).ok(),
        _ => None,
    }
}

/// How a reader samples the table: per output partition, the rows changed
/// since its last read (from change number 0: the whole partition). It
/// holds no transactions.
pub struct UpsertReader;

#[async_trait]
impl OutputReader for UpsertReader {
    async fn read(&self, net: &Net, at: SocketAddr, partition: u32, offset: u64, t: Duration) -> Option<ReadStep> {
        match call(net, at, &UpsertReq::Read { part: partition, from: offset }, t).await? {
            UpsertResp::Rows { records, next } => Some(ReadStep { records, next_offset: next, open_txns: 0 }),
            _ => None,
        }
    }

    async fn open_txns(&self, _net: &Net, _at: SocketAddr, _t: Duration) -> Option<Vec<(String, u64)>> {
        Some(Vec::new())
    }
}

/// The sink: at-least-once appends as versioned upserts. The 2PC calls are
/// no-ops (the job runs at least once; an upsert table stages nothing).
pub struct UpsertSink {
    env: SinkEnv,
    begun: u64,
}

impl UpsertSink {
    pub fn new(env: SinkEnv) -> UpsertSink {
        UpsertSink { env, begun: 0 }
    }
}

#[async_trait]
impl TwoPhaseCommitSink for UpsertSink {
    async fn begin(&mut self, hint: CheckpointId) -> Result<TxnHandle, SinkError> {
        self.begun += 1;
        let name = format!("upsert-{}-a{}-c{hint}.{}", self.env.subtask, self.env.attempt, self.begun);
        Ok(TxnHandle { name, epoch: 0, records: 0, seq: 0 })
    }
    async fn write(&mut self, txn: &mut TxnHandle, records: &[OutRecord]) -> Result<(), SinkError> {
        // Only reached in exactly-once mode, which an upsert pipeline does
        // not run in: write through at once.
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
        let rows: Vec<Upsert> = batch(records, self.env.cfg.mutant)
            .into_iter()
            .map(|r| {
                let part = (self.env.route)(&r);
                Upsert::of(r, part)
            })
            .collect();
        let req = UpsertReq::Write { rows };
        let t = Duration::from_millis(self.env.cfg.rpc_timeout_ms);
        for _ in 0..=self.env.cfg.rpc_retries {
            if let Some(UpsertResp::Written { .. }) = call(&self.env.net, self.env.system, &req, t).await {
                return Ok(());
            }
        }
        Err(SinkError::Transient("the upsert table did not answer".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_batch_goes_whole_and_the_planted_bug_keeps_each_keys_first() {
        let r = |key: u64, src: u64| OutRecord::new(src, key, src as i64, src);
        let recs = vec![r(1, 1), r(2, 1), r(1, 2), r(1, 3)];
        assert_eq!(batch(recs.clone(), None), recs);
        let kept = batch(recs, Some(Mutant::Iceberg13547BatchKeepsFirst));
        assert_eq!(kept.iter().map(|x| (x.key, version_of(x))).collect::<Vec<_>>(), vec![(1, 1), (2, 1)]);
    }

    fn w(key: u64, version: u64) -> Upsert {
        Upsert {
            part: (key % 2) as u32,
            version,
            rec: OutRecord::new(key * 1000 + version, key, version as i64 * 10, version),
        }
    }

    #[test]
    fn the_guard_takes_only_newer_versions() {
        assert!(admits(None, 1, None));
        assert!(admits(Some(1), 2, None));
        assert!(!admits(Some(2), 2, None), "a duplicate changes nothing");
        assert!(!admits(Some(3), 2, None), "a replay never goes back");
        assert!(admits(Some(3), 2, Some(Mutant::UpsertNoVersionGuard)));
        assert!(admits(Some(3), 2, Some(Mutant::UpsertVersionOffByOne)), "one behind slips through");
        assert!(!admits(Some(4), 2, Some(Mutant::UpsertVersionOffByOne)));
    }

    #[test]
    fn a_table_applies_in_order_and_reads_changes_since() {
        let mut t = UpsertTable::default();
        assert_eq!(t.apply(&[w(1, 1), w(2, 1), w(1, 2)], None).len(), 2);
        assert_eq!(t.lsn(), 1);
        assert!(t.apply(&[w(1, 1), w(2, 1)], None).is_empty(), "a replay changes nothing");
        assert_eq!(t.lsn(), 1);
        assert_eq!(t.apply(&[w(2, 2)], None).len(), 1);
        let (recs, next) = t.read(0, 1);
        assert_eq!((recs.len(), next), (1, 2), "only key 2 (partition 0) changed after 1");
        assert_eq!(t.read(1, 0).0.len(), 1);
        assert_eq!(t.contents()[&1], (2, 20));
    }

    #[test]
    fn the_log_rebuilds_the_table_and_a_torn_tail_is_cut() {
        let mut t = UpsertTable::default();
        let mut log = Vec::new();
        for batch in [vec![w(1, 1), w(2, 1)], vec![w(1, 2)], vec![w(1, 1)], vec![w(3, 1)]] {
            let ch = t.apply(&batch, None);
            if !ch.is_empty() {
                log.extend(codec::encode_framed(&ch));
            }
        }
        let torn = codec::encode_framed(&vec![Row { part: 0, version: 9, rec: w(4, 9).rec, lsn: 9 }]);
        log.extend(&torn[..torn.len() - 2]);
        let (changes, good, corrupt) = parse_wal(&log);
        assert!(!corrupt);
        assert_eq!(good, log.len() - (torn.len() - 2));
        let mut back = UpsertTable::default();
        for c in changes {
            back.replay(c);
        }
        assert_eq!(back, t);
    }

    /// Each key's versioned stream: versions 1..=n with their values.
    fn streams() -> impl Strategy<Value = Vec<Vec<u64>>> {
        prop::collection::vec(1u64..8, 1..6).prop_map(|ns| ns.into_iter().map(|n| (1..=n).collect()).collect())
    }

    proptest! {
        /// Any interleaving, duplication and reordering of deliveries of a
        /// versioned stream, cut into any batches, ends at the table of each
        /// key's newest version applied once.
        #[test]
        fn any_delivery_order_ends_at_the_newest_versions(
            streams in streams(),
            picks in prop::collection::vec((0usize..64, 0usize..64), 0..200),
            cuts in prop::collection::vec(0usize..8, 1..40),
        ) {
            let all: Vec<Upsert> = streams
                .iter()
                .enumerate()
                .flat_map(|(k, vs)| vs.iter().map(move |v| w(k as u64, *v)))
                .collect();
            // Every write once, then duplicates of random ones, in a random order.
            let mut deliveries = all.clone();
            for (a, b) in &picks {
                deliveries.push(all[a % all.len()].clone());
                let (i, j) = (a % deliveries.len(), b % deliveries.len());
                deliveries.swap(i, j);
            }
            let mut t = UpsertTable::default();
            let mut rest = &deliveries[..];
            let mut c = cuts.iter().cycle();
            while !rest.is_empty() {
                let n = (*c.next().unwrap()).clamp(1, rest.len());
                t.apply(&rest[..n], None);
                rest = &rest[n..];
            }
            let want: BTreeMap<u64, (u64, i64)> = streams
                .iter()
                .enumerate()
                .map(|(k, vs)| (k as u64, (*vs.last().unwrap(), *vs.last().unwrap() as i64 * 10)))
                .collect();
            prop_assert_eq!(t.contents(), want);
        }
    }
}
