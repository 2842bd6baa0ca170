//! The transactional log broker (Kafka-style): replayable partitioned input
//! topic, output topic with transactional producers, epochs and fencing,
//! commit/abort markers, `read_committed` reads up to the last stable offset,
//! transaction timeouts. All state is a replay of a durable write-ahead log
//! kept on the broker's own disk through [`Storage`].
//!
//! [`BrokerState`] is the plain state machine; [`run_broker`] is the thin
//! node loop around it.

use crate::codec;
use crate::net::Net;
use crate::observe::{Event, FaultPoint, Obs, TxnId};
use crate::proto::{Msg, Request, Response};
use crate::storage::{write_atomic, Storage};
use crate::types::{OutRecord, Record};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

pub const WAL: &str = "broker.wal";
pub const INPUT: &str = "broker.input";

/// One durable step of the broker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WalEntry {
    Init {
        txn: TxnId,
        epoch: u64,
        nonce: u64,
        at_ms: u64,
    },
    Append {
        txn: TxnId,
        epoch: u64,
        partition: u32,
        seq: u64,
        records: Vec<OutRecord>,
        at_ms: u64,
    },
    End {
        txn: TxnId,
        epoch: u64,
        commit: bool,
        reason: String,
    },
    /// A timeout abort also bumps the epoch, fencing the late producer.
    Expire {
        txn: TxnId,
        epoch: u64,
    },
    Plain {
        partition: u32,
        records: Vec<OutRecord>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    Data { txn: Option<(TxnId, u64)>, rec: OutRecord },
    Marker { txn: TxnId, epoch: u64, commit: bool },
}

#[derive(Clone, Debug, Default)]
struct OpenTxn {
    start_ms: u64,
    /// First log offset of this transaction in each partition it touched.
    first_offsets: BTreeMap<u32, u64>,
    last_seq: Option<u64>,
    records: Vec<OutRecord>,
}

#[derive(Clone, Debug, Default)]
struct Producer {
    epoch: u64,
    open: Option<OpenTxn>,
    /// The request that produced `epoch`, so a retry gets the same answer.
    init_nonce: u64,
}

/// What a request does: a reply now, or a durable step then a reply.
pub enum Plan {
    Reply(Response),
    Log(WalEntry, Response),
}

pub struct BrokerState {
    pub input: Vec<Vec<Record>>,
    pub output: Vec<Vec<Entry>>,
    producers: BTreeMap<TxnId, Producer>,
    committed: BTreeSet<(TxnId, u64)>,
    aborted: BTreeSet<(TxnId, u64)>,
    pub txn_timeout_ms: u64,
}

impl BrokerState {
    pub fn new(input: Vec<Vec<Record>>, output_partitions: u32, txn_timeout_ms: u64) -> Self {
        BrokerState {
            input,
            output: (0..output_partitions).map(|_| Vec::new()).collect(),
            producers: BTreeMap::new(),
            committed: BTreeSet::new(),
            aborted: BTreeSet::new(),
            txn_timeout_ms,
        }
    }

    /// Decide what a request does, without changing anything.
    pub fn plan(&self, req: &Request, now_ms: u64) -> Plan {
        match req {
            Request::FetchInput { partition, offset, max } => {
                let Some(p) = self.input.get(*partition as usize) else {
                    return Plan::Reply(Response::NotFound);
                };
                let start = (*offset as usize).min(p.len());
                let end = (start + *max as usize).min(p.len());
                Plan::Reply(Response::Input { records: p[start..end].to_vec(), end: end == p.len() })
            }
            Request::InitProducer { txn, nonce } => {
                if let Some(p) = self.producers.get(txn).filter(|p| p.init_nonce == *nonce) {
                    return Plan::Reply(Response::Epoch { epoch: p.epoch }); // a retry
                }
                let epoch = self.producers.get(txn).map(|p| p.epoch + 1).unwrap_or(0);
                Plan::Log(
                    WalEntry::Init { txn: txn.clone(), epoch, nonce: *nonce, at_ms: now_ms },
                    Response::Epoch { epoch },
                )
            }
            Request::Append { txn, epoch, partition, seq, records } => {
                if *partition as usize >= self.output.len() {
                    return Plan::Reply(Response::NotFound);
                }
                let Some(p) = self.producers.get(txn) else {
                    return Plan::Reply(Response::TxnNotOpen { reason: "unknown producer".into() });
                };
                if *epoch < p.epoch {
                    return Plan::Reply(Response::Fenced { current: p.epoch });
                }
                if *epoch > p.epoch {
                    return Plan::Reply(Response::TxnNotOpen { reason: format!("epoch {epoch} never issued") });
                }
                if self.committed.contains(&(txn.clone(), *epoch)) || self.aborted.contains(&(txn.clone(), *epoch)) {
                    return Plan::Reply(Response::TxnNotOpen { reason: "transaction already ended".into() });
                }
                if let Some(open) = &p.open {
                    if open.last_seq.is_some_and(|s| *seq <= s) {
                        return Plan::Reply(Response::Ok); // duplicate of a retried append
                    }
                }
                Plan::Log(
                    WalEntry::Append {
                        txn: txn.clone(),
                        epoch: *epoch,
                        partition: *partition,
                        seq: *seq,
                        records: records.clone(),
                        at_ms: now_ms,
                    },
                    Response::Ok,
                )
            }
            Request::EndTxn { txn, epoch, commit } => {
                let Some(p) = self.producers.get(txn) else {
                    return Plan::Reply(Response::TxnNotOpen { reason: "unknown transaction".into() });
                };
                if *epoch < p.epoch {
                    return Plan::Reply(Response::Fenced { current: p.epoch });
                }
                let key = (txn.clone(), *epoch);
                if p.open.is_some() && *epoch == p.epoch {
                    return Plan::Log(
                        WalEntry::End { txn: txn.clone(), epoch: *epoch, commit: *commit, reason: "client".into() },
                        Response::Ok,
                    );
                }
                if *commit == self.committed.contains(&key) {
                    // A re-commit, or an abort with nothing open: no-ops.
                    Plan::Reply(Response::Ok)
                } else if *commit && self.aborted.contains(&key) {
                    Plan::Reply(Response::TxnNotOpen { reason: "transaction was aborted".into() })
                } else if *commit {
                    Plan::Reply(Response::TxnNotOpen { reason: "unknown transaction".into() })
                } else {
                    Plan::Reply(Response::TxnNotOpen { reason: "cannot abort a committed transaction".into() })
                }
            }
            Request::PlainAppend { partition, records } => {
                if *partition as usize >= self.output.len() {
                    return Plan::Reply(Response::NotFound);
                }
                Plan::Log(WalEntry::Plain { partition: *partition, records: records.clone() }, Response::Ok)
            }
            Request::ListOpenTxns { prefix } => Plan::Reply(Response::OpenTxns {
                txns: self
                    .producers
                    .iter()
                    .filter(|(t, p)| t.starts_with(prefix.as_str()) && p.open.is_some())
                    .map(|(t, p)| (t.clone(), p.epoch))
                    .collect(),
            }),
            Request::FetchOutput { partition, offset, committed_only } => {
                let Some(log) = self.output.get(*partition as usize) else {
                    return Plan::Reply(Response::NotFound);
                };
                let end = if *committed_only { self.last_stable_offset(*partition) } else { log.len() as u64 };
                let mut records = Vec::new();
                for e in &log[(*offset as usize).min(end as usize)..end as usize] {
                    if let Entry::Data { txn, rec } = e {
                        let visible = match txn {
                            None => true,
                            Some(k) => !*committed_only || self.committed.contains(k),
                        };
                        if visible {
                            records.push(rec.clone());
                        }
                    }
                }
                Plan::Reply(Response::Output { records, next_offset: end.max(*offset), open_txns: self.open_count() })
            }
            _ => Plan::Reply(Response::NotFound),
        }
    }

    /// Apply a durable step. Returns the history events it causes.
    pub fn apply(&mut self, e: &WalEntry) -> Vec<Event> {
        match e {
            WalEntry::Init { txn, epoch, nonce, at_ms: _ } => {
                let p = self.producers.entry(txn.clone()).or_default();
                assert!(*epoch >= p.epoch, "epochs never go back");
                p.init_nonce = *nonce;
                let had_open = p.open.take();
                let old_epoch = p.epoch;
                p.epoch = *epoch;
                let mut events =
                    vec![Event::ProducerInit { txn: txn.clone(), epoch: *epoch, aborted_open: had_open.is_some() }];
                if let Some(open) = had_open {
                    self.end_open(txn, old_epoch, open, false);
                    events.push(Event::TxnAborted {
                        txn: txn.clone(),
                        epoch: old_epoch,
                        reason: "fenced by a newer epoch".into(),
                    });
                }
                events
            }
            WalEntry::Append { txn, epoch, partition, seq, records, at_ms } => {
                let p = self.producers.get_mut(txn).expect("append of a known producer");
                assert_eq!(p.epoch, *epoch);
                let open = p.open.get_or_insert_with(|| OpenTxn { start_ms: *at_ms, ..Default::default() });
                open.last_seq = Some(*seq);
                let log = &mut self.output[*partition as usize];
                open.first_offsets.entry(*partition).or_insert(log.len() as u64);
                for r in records {
                    log.push(Entry::Data { txn: Some((txn.clone(), *epoch)), rec: r.clone() });
                    open.records.push(r.clone());
                }
                vec![Event::AppendAccepted {
                    txn: txn.clone(),
                    epoch: *epoch,
                    partition: *partition,
                    records: records.len() as u64,
                }]
            }
            WalEntry::End { txn, epoch, commit, reason } => {
                let p = self.producers.get_mut(txn).expect("end of a known producer");
                let open = p.open.take().expect("end of an open transaction");
                let out = open.records.clone();
                self.end_open(txn, *epoch, open, *commit);
                vec![if *commit {
                    Event::TxnCommitted { txn: txn.clone(), epoch: *epoch, out }
                } else {
                    Event::TxnAborted { txn: txn.clone(), epoch: *epoch, reason: reason.clone() }
                }]
            }
            WalEntry::Expire { txn, epoch } => {
                let p = self.producers.get_mut(txn).expect("expire of a known producer");
                let open = p.open.take().expect("expire of an open transaction");
                p.epoch = epoch + 1;
                self.end_open(txn, *epoch, open, false);
                vec![Event::TxnAborted { txn: txn.clone(), epoch: *epoch, reason: "transaction timeout".into() }]
            }
            WalEntry::Plain { partition, records } => {
                let log = &mut self.output[*partition as usize];
                for r in records {
                    log.push(Entry::Data { txn: None, rec: r.clone() });
                }
                vec![Event::PlainAppend { partition: *partition, out: records.clone() }]
            }
        }
    }

    fn end_open(&mut self, txn: &TxnId, epoch: u64, open: OpenTxn, commit: bool) {
        for p in open.first_offsets.keys() {
            self.output[*p as usize].push(Entry::Marker { txn: txn.clone(), epoch, commit });
        }
        if commit {
            self.committed.insert((txn.clone(), epoch));
        } else {
            self.aborted.insert((txn.clone(), epoch));
        }
    }

    /// Open transactions older than the timeout, to be expired.
    pub fn expired(&self, now_ms: u64) -> Vec<WalEntry> {
        self.producers
            .iter()
            .filter_map(|(t, p)| {
                let open = p.open.as_ref()?;
                (now_ms >= open.start_ms + self.txn_timeout_ms)
                    .then(|| WalEntry::Expire { txn: t.clone(), epoch: p.epoch })
            })
            .collect()
    }

    /// Offsets below this are decided (no open transaction before them).
    pub fn last_stable_offset(&self, partition: u32) -> u64 {
        let end = self.output[partition as usize].len() as u64;
        self.producers
            .values()
            .filter_map(|p| p.open.as_ref()?.first_offsets.get(&partition).copied())
            .fold(end, u64::min)
    }

    pub fn open_count(&self) -> u32 {
        self.producers.values().filter(|p| p.open.is_some()).count() as u32
    }

    pub fn open_txns(&self) -> Vec<(TxnId, u64)> {
        self.producers.iter().filter(|(_, p)| p.open.is_some()).map(|(t, p)| (t.clone(), p.epoch)).collect()
    }

    /// What a `read_committed` reader sees in each partition.
    pub fn committed_output(&self) -> Vec<Vec<OutRecord>> {
        (0..self.output.len() as u32)
            .map(|p| match self.plan(&Request::FetchOutput { partition: p, offset: 0, committed_only: true }, 0) {
                Plan::Reply(Response::Output { records, .. }) => records,
                _ => unreachable!(),
            })
            .collect()
    }
}

/// Parse a write-ahead log: the intact entries and the number of bytes of a
/// torn tail.
pub fn parse_wal(bytes: &[u8]) -> (Vec<WalEntry>, usize, bool) {
    let mut entries = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        match codec::unframe(&bytes[pos..]) {
            Ok((payload, used)) => match codec::decode::<WalEntry>(payload) {
                Ok(e) => {
                    entries.push(e);
                    pos += used;
                }
                Err(_) => return (entries, pos, true),
            },
            Err(codec::FrameError::Truncated) => return (entries, pos, false),
            Err(codec::FrameError::Checksum) => return (entries, pos, true),
        }
    }
    (entries, pos, false)
}

/// Read a file, re-reading until two reads agree: a corrupted read is
/// transient, a torn tail is not.
pub async fn read_stable(storage: &dyn Storage, path: &str) -> std::io::Result<Vec<u8>> {
    let mut last = storage.read(path).await?;
    for _ in 0..8 {
        let again = storage.read(path).await?;
        if again == last {
            return Ok(last);
        }
        last = again;
    }
    Err(std::io::Error::other(format!("{path}: reads never agree")))
}

pub struct BrokerNode {
    pub net: Arc<Net>,
    pub storage: Arc<dyn Storage>,
    pub obs: Obs,
    pub output_partitions: u32,
    pub txn_timeout_ms: u64,
}

/// Recover the broker from its disk. Fatal problems end in `Err`.
pub async fn recover(
    storage: &dyn Storage,
    output_partitions: u32,
    txn_timeout_ms: u64,
    obs: &Obs,
) -> Result<BrokerState, String> {
    let input_bytes = read_stable(storage, INPUT).await.map_err(|e| format!("read input: {e}"))?;
    let input: Vec<Vec<Record>> = codec::decode_framed(&input_bytes).map_err(|e| format!("input topic: {e}"))?;
    let mut state = BrokerState::new(input, output_partitions, txn_timeout_ms);
    let wal = match read_stable(storage, WAL).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Create the log durably (its name too) before the first append.
            write_atomic(storage, WAL, &[]).await.map_err(|e| format!("create wal: {e}"))?;
            Vec::new()
        }
        Err(e) => return Err(format!("read wal: {e}")),
    };
    let (entries, good, _bad) = parse_wal(&wal);
    for e in &entries {
        for ev in state.apply(e) {
            if let Event::TxnCommitted { txn, epoch, out } = ev {
                obs.emit(Event::TxnCommitReplayed { txn, epoch, out });
            }
        }
    }
    // The transaction clock restarts with the broker: open transactions get
    // a full timeout from now.
    for p in state.producers.values_mut() {
        if let Some(open) = p.open.as_mut() {
            open.start_ms = 0;
        }
    }
    let truncated = wal.len() - good;
    if truncated > 0 {
        // A torn tail: cut it off so new entries follow intact ones.
        write_atomic(storage, WAL, &wal[..good]).await.map_err(|e| format!("truncate wal: {e}"))?;
    }
    obs.emit(Event::BrokerRecovered { entries: entries.len() as u64, truncated_bytes: truncated as u64 });
    Ok(state)
}

pub async fn run_broker(node: BrokerNode) {
    let obs = node.obs.clone();
    obs.emit(Event::NodeStarted);
    let state = match recover(&*node.storage, node.output_partitions, node.txn_timeout_ms, &obs).await {
        Ok(s) => s,
        Err(e) => obs.fatal(e).await,
    };
    let state = Arc::new(tokio::sync::Mutex::new(state));
    let start = madsim::time::Instant::now();
    let now_ms = move || start.elapsed().as_millis() as u64;
    // Transaction timeouts.
    {
        let (state, storage, obs) = (state.clone(), node.storage.clone(), obs.clone());
        let base = state.lock().await.txn_timeout_ms;
        madsim::task::spawn(async move {
            loop {
                madsim::time::sleep(Duration::from_millis((base / 4).clamp(5, 1000))).await;
                let mut st = state.lock().await;
                for e in st.expired(now_ms()) {
                    log_and_apply(&mut st, &*storage, &obs, e).await;
                }
            }
        });
    }
    loop {
        let (from, msg) = node.net.recv().await;
        let Msg::Req { id, body } = msg else { continue };
        let mut st = state.lock().await;
        let resp = match st.plan(&body, now_ms()) {
            Plan::Reply(r) => r,
            Plan::Log(entry, r) => {
                let is_commit = matches!(entry, WalEntry::End { commit: true, .. });
                log_and_apply(&mut st, &*node.storage, &obs, entry).await;
                if is_commit {
                    obs.point(FaultPoint::BrokerAfterCommitMarker).await;
                }
                r
            }
        };
        drop(st);
        node.net.reply(from, id, resp).await;
    }
}

/// Make an entry durable, then apply it. An I/O error here is fatal: after a
/// failed fsync the file's contents are unknown, so the broker restarts and
/// recovers from what is really on disk.
async fn log_and_apply(st: &mut BrokerState, storage: &dyn Storage, obs: &Obs, e: WalEntry) {
    let bytes = codec::encode_framed(&e);
    if let Err(err) = storage.append(WAL, &bytes).await {
        obs.fatal(format!("wal append: {err}")).await;
    }
    obs.point(FaultPoint::BrokerBeforeFsync).await;
    if let Err(err) = storage.fsync(WAL).await {
        obs.fatal(format!("wal fsync: {err}")).await;
    }
    for ev in st.apply(&e) {
        obs.emit(ev);
    }
}

/// Write the input topic to a broker's disk before the job starts.
pub async fn provision_input(storage: &dyn Storage, input: &[Vec<Record>]) -> std::io::Result<()> {
    write_atomic(storage, INPUT, &codec::encode_framed(&input.to_vec())).await
}
