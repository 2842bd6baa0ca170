//! The broker as a node: its durable write-ahead log (parse, read back,
//! roll back a torn or failed tail), recovery from it, group commit of
//! durable steps, and [`run_broker`], the thin loop around
//! [`BrokerState`].

use super::{BrokerState, Plan, WalEntry, INPUT, WAL};
use crate::clock::Clock;
use crate::codec;
use crate::config::Mutant;
use crate::net::Net;
use crate::observe::{Event, FaultPoint, Obs, Reach};
use crate::proto::{Msg, Request, Response};
use crate::storage::{write_atomic, Storage};
use crate::types::Record;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

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

/// Read a file until three reads in a row return the same bytes. Reads may
/// return transiently corrupted bytes (a flipped byte); two corrupted reads
/// can agree by chance (the harness saw it happen: a WAL cut short at an
/// entry that read corrupted twice the same way), three practically never.
pub async fn read_stable(storage: &dyn Storage, path: &str) -> std::io::Result<Vec<u8>> {
    let mut last = storage.read(path).await?;
    let mut agreeing = 1;
    for _ in 0..16 {
        let again = storage.read(path).await?;
        if again == last {
            agreeing += 1;
            if agreeing == 3 {
                return Ok(last);
            }
        } else {
            agreeing = 1;
            last = again;
        }
    }
    Err(std::io::Error::other(format!("{path}: reads never agree")))
}

/// Read the write-ahead log and parse it. A checksum mismatch is a
/// corrupted read, never a torn write (a torn append leaves a truncated last
/// frame), so the log is read again; a log that never parses clean is fatal
/// (the broker restarts and tries again) instead of being cut short.
async fn read_wal(storage: &dyn Storage) -> std::io::Result<(Vec<u8>, Vec<WalEntry>, usize)> {
    for _ in 0..8 {
        let wal = read_stable(storage, WAL).await?;
        let (entries, good, corrupt) = parse_wal(&wal);
        if !corrupt {
            return Ok((wal, entries, good));
        }
    }
    Err(std::io::Error::other(format!("{WAL}: checksum mismatch on every read")))
}

pub struct BrokerNode {
    pub net: Arc<Net>,
    pub storage: Arc<dyn Storage>,
    pub obs: Obs,
    pub output_partitions: u32,
    pub txn_timeout_ms: u64,
    pub max_epoch: u64,
    pub mutant: Option<Mutant>,
    pub recommit_by_instance: bool,
}

impl BrokerNode {
    /// The broker of a job: its output partitions, transaction timeout and
    /// planted bug come from the job configuration (in simulation, in the
    /// step harness and in real mode alike).
    pub fn new(net: Arc<Net>, storage: Arc<dyn Storage>, obs: Obs, cfg: &crate::config::JobConfig) -> BrokerNode {
        BrokerNode {
            net,
            storage,
            obs,
            output_partitions: cfg.output_partitions(),
            txn_timeout_ms: cfg.txn_timeout_ms,
            max_epoch: cfg.max_producer_epoch,
            mutant: cfg.mutant,
            recommit_by_instance: cfg.pooled_txn_ids,
        }
    }
}

/// Recover the broker from its disk: its state and the length of the
/// durable log. Fatal problems end in `Err`.
pub async fn recover(node: &BrokerNode, obs: &Obs) -> Result<(BrokerState, usize), String> {
    let storage = &*node.storage;
    let input_bytes = read_stable(storage, INPUT).await.map_err(|e| format!("read input: {e}"))?;
    let input: Vec<Vec<Record>> = codec::decode_framed(&input_bytes).map_err(|e| format!("input topic: {e}"))?;
    let mut state = BrokerState::new(input, node.output_partitions, node.txn_timeout_ms);
    state.max_epoch = node.max_epoch;
    state.mutant = node.mutant;
    state.recommit_by_instance = node.recommit_by_instance;
    let (wal, entries, good) = match read_wal(storage).await {
        Ok(w) => w,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Create the log durably (its name too) before the first append.
            write_atomic(storage, WAL, &[]).await.map_err(|e| format!("create wal: {e}"))?;
            (Vec::new(), Vec::new(), 0)
        }
        Err(e) => return Err(format!("read wal: {e}")),
    };
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
        obs.reach(Reach::BrokerLogTruncated);
        // A torn tail: cut it off so new entries follow intact ones.
        write_atomic(storage, WAL, &wal[..good]).await.map_err(|e| format!("truncate wal: {e}"))?;
    }
    obs.emit(Event::BrokerRecovered { entries: entries.len() as u64, truncated_bytes: truncated as u64 });
    Ok((state, good))
}

/// After a failed write: cut the log back to its durable prefix (`durable`
/// bytes, all intact) and return the entries it holds, for
/// [`BrokerState::rolled_back`]. An error here is fatal (the broker
/// restarts and recovers from what is on disk).
async fn roll_back_log(storage: &dyn Storage, durable: usize) -> Result<Vec<WalEntry>, String> {
    let wal = read_stable(storage, WAL).await.map_err(|e| format!("read wal after a failed write: {e}"))?;
    let Some(prefix) = wal.get(..durable) else {
        return Err(format!("wal shorter ({} bytes) than its durable prefix ({durable})", wal.len()));
    };
    let (entries, good, corrupt) = parse_wal(prefix);
    if corrupt || good != durable {
        return Err("the durable prefix of the wal does not parse".into());
    }
    if wal.len() > durable {
        write_atomic(storage, WAL, prefix).await.map_err(|e| format!("cut wal back: {e}"))?;
    }
    Ok(entries)
}

/// Group commit of the write-ahead log, as a plain state machine. Entries
/// are applied to the broker's state when planned and staged here; entries
/// staged while an fsync is in flight are written and fsynced together by
/// the next one. Whatever depends on an entry (its reply, its events, a
/// later reply planned on the state it changed) is held until that entry is
/// durable, so nothing leaves the broker before the log holds it.
#[derive(Debug)]
pub struct GroupCommit<R> {
    /// Encoded entries not yet handed to a flush.
    staged: Vec<u8>,
    /// Sequence number of the last entry applied (staged or flushed).
    applied: u64,
    /// The last entry the flush in flight covers.
    flushing: Option<u64>,
    /// Every entry up to this one is durable.
    durable: u64,
    /// Outputs waiting for an entry to be durable, in order.
    waiting: VecDeque<(u64, R)>,
}

impl<R> Default for GroupCommit<R> {
    fn default() -> Self {
        GroupCommit { staged: Vec::new(), applied: 0, flushing: None, durable: 0, waiting: VecDeque::new() }
    }
}

impl<R> GroupCommit<R> {
    /// Stage an entry (its encoded frame); returns its sequence number.
    pub fn log(&mut self, frame: &[u8]) -> u64 {
        self.staged.extend_from_slice(frame);
        self.applied += 1;
        self.applied
    }

    /// The last entry applied: an output that depends on the state now
    /// waits for it.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// An output that may leave once entry `after` is durable: `Some` when
    /// it may leave now (nothing is waiting ahead of it), else it is held.
    pub fn output(&mut self, after: u64, r: R) -> Option<R> {
        if after <= self.durable && self.waiting.is_empty() {
            Some(r)
        } else {
            self.waiting.push_back((after, r));
            None
        }
    }

    /// The bytes of the next flush (one write, one fsync), unless a flush
    /// is in flight or nothing is staged.
    pub fn start_flush(&mut self) -> Option<Vec<u8>> {
        if self.flushing.is_some() || self.staged.is_empty() {
            return None;
        }
        self.flushing = Some(self.applied);
        Some(std::mem::take(&mut self.staged))
    }

    pub fn flushing(&self) -> bool {
        self.flushing.is_some()
    }

    /// The flush in flight failed and the log was cut back to its durable
    /// prefix: every output still waiting, in order (none of them may leave
    /// as planned), and a fresh group commit.
    pub fn abandon(&mut self) -> Vec<R> {
        let out = std::mem::take(&mut self.waiting).into_iter().map(|(_, r)| r).collect();
        *self = GroupCommit { staged: Vec::new(), applied: 0, flushing: None, durable: 0, waiting: VecDeque::new() };
        out
    }

    /// The flush in flight is durable: the outputs that may leave now, in
    /// order.
    pub fn flushed(&mut self) -> Vec<R> {
        self.durable = self.flushing.take().expect("a flush in flight");
        let mut out = Vec::new();
        while self.waiting.front().is_some_and(|(after, _)| *after <= self.durable) {
            out.push(self.waiting.pop_front().expect("front").1);
        }
        out
    }
}

/// What the broker's loop sends out once the log allows it.
enum Out {
    Reply(std::net::SocketAddr, u64, Response),
    Events(Vec<Event>),
    /// A commit marker is durable (the fault point after it).
    Committed,
}

/// What the broker's loop waits for.
enum In {
    Req(std::net::SocketAddr, u64, Request),
    /// Time for the transaction timeout sweep.
    Tick,
    /// The flush in flight ended: its bytes are durable, or its write or
    /// fsync failed (the reason).
    Flushed(Result<usize, String>),
}

pub async fn run_broker(node: BrokerNode) {
    let obs = node.obs.clone();
    obs.emit(Event::NodeStarted);
    let (mut st, mut durable) = match recover(&node, &obs).await {
        Ok(s) => s,
        Err(e) => obs.fatal(e).await,
    };
    // Transaction ages are measured on the monotonic clock; the planted bug
    // `skewed-txn-timeout` measures them on the wall clock, which a clock
    // step moves by any amount.
    let clock = Clock::new(&obs);
    let skewed = node.mutant == Some(Mutant::SkewedTxnTimeout);
    let now_ms = {
        let clock = clock.clone();
        move || if skewed { clock.wall_ms() } else { clock.mono_ms() }
    };
    // One queue of inputs, fed by a receive loop (a network receive must
    // not be cancelled: it may already hold a message), the timeout sweep's
    // ticker and the flushes.
    let (tx, mut inputs) = tokio::sync::mpsc::unbounded_channel::<In>();
    let receiver = {
        let (net, tx) = (node.net.clone(), tx.clone());
        madsim::task::spawn(async move {
            loop {
                let (from, msg) = net.recv().await;
                if let Msg::Req { id, body } = msg {
                    if tx.send(In::Req(from, id, body)).is_err() {
                        return;
                    }
                }
            }
        })
    };
    let period = Duration::from_millis((st.txn_timeout_ms / 4).clamp(5, 1000));
    let ticker = {
        let tx = tx.clone();
        madsim::task::spawn(async move {
            loop {
                madsim::time::sleep(period).await;
                if tx.send(In::Tick).is_err() {
                    return;
                }
            }
        })
    };
    let _tasks = (AbortOnDrop(receiver), AbortOnDrop(ticker));
    let mut flush: Option<AbortOnDrop> = None;
    let mut gc: GroupCommit<Out> = GroupCommit::default();
    let mut wall_step_ms = clock.wall_ms() as i64 - clock.mono_ms() as i64;
    while let Some(input) = inputs.recv().await {
        let mut ready = Vec::new();
        match input {
            In::Flushed(Ok(bytes)) => {
                flush = None;
                durable += bytes;
                ready = gc.flushed();
            }
            In::Flushed(Err(reason)) => {
                // The log could not be written: what the failed flush and
                // everything staged after it held is undone, and whatever
                // waited on them never leaves: their events are dropped and
                // their requests answered at once with the I/O error (as
                // Kafka answers a produce to an offline log directory), so
                // clients retry, on their own backoff, without waiting out
                // their timeouts. After a failed fsync the file's tail is
                // unknown, so it is cut back to the durable prefix.
                flush = None;
                obs.reach(Reach::BrokerLogRolledBack);
                match roll_back_log(&*node.storage, durable).await {
                    Ok(entries) => {
                        st = st.rolled_back(&entries);
                        for out in gc.abandon() {
                            if let Out::Reply(from, id, _) = out {
                                ready.push(Out::Reply(from, id, Response::IoError { reason: reason.clone() }));
                            }
                        }
                    }
                    Err(e) => obs.fatal(format!("{reason}; {e}")).await,
                }
            }
            In::Tick => {
                // How far the wall clock has moved from the monotonic one
                // since the last sweep: a step as long as a transaction's
                // timeout, with one open, is what a clock-measured timeout
                // would get wrong (a reachability point; it changes nothing).
                let step_ms = clock.wall_ms() as i64 - clock.mono_ms() as i64;
                if st.open_count() > 0 && step_ms.abs_diff(wall_step_ms) >= st.txn_timeout_ms {
                    obs.reach(Reach::ClockSteppedWithOpenTxn);
                }
                wall_step_ms = step_ms;
                expire(&mut st, &mut gc, &obs, now_ms())
            }
            In::Req(from, id, body) => {
                // Expired transactions are also aborted when the broker is
                // asked anything, not only by the periodic sweep.
                expire(&mut st, &mut gc, &obs, now_ms());
                // The input topic never changes: a fetch needs nothing
                // durable. Any other answer may tell of applied entries.
                let pure = matches!(body, Request::FetchInput { .. });
                let plan = st.plan(&body, now_ms());
                if let Some(p) = st.reach_of(&body, &plan) {
                    obs.reach(p);
                }
                let resp = match plan {
                    Plan::Reply(r) => r,
                    Plan::Log(entry, r) => {
                        stage(&mut st, &mut gc, entry);
                        r
                    }
                };
                if pure {
                    ready.push(Out::Reply(from, id, resp));
                } else {
                    ready.extend(gc.output(gc.applied(), Out::Reply(from, id, resp)));
                }
            }
        }
        if let Some(bytes) = gc.start_flush() {
            let (storage, obs, tx) = (node.storage.clone(), obs.clone(), tx.clone());
            assert!(flush.is_none(), "one log flush at a time");
            flush = Some(AbortOnDrop(madsim::task::spawn(async move {
                let r = write_wal(&*storage, &obs, &bytes).await.map(|()| bytes.len());
                let _ = tx.send(In::Flushed(r));
            })));
        }
        for out in ready {
            match out {
                Out::Reply(from, id, resp) => node.net.reply(from, id, resp).await,
                Out::Events(evs) => {
                    for e in evs {
                        if matches!(e, Event::ProducerInit { aborted_open: true, .. }) {
                            obs.reach(Reach::InitFencedOpenTxn);
                        }
                        obs.emit(e);
                    }
                }
                Out::Committed => obs.point(FaultPoint::BrokerAfterCommitMarker).await,
            }
        }
    }
    drop(flush);
}

struct AbortOnDrop(madsim::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Apply an entry now and stage it for the next flush; its events (and the
/// fault point after a commit marker) wait until it is durable.
/// Abort the open transactions older than the timeout.
fn expire(st: &mut BrokerState, gc: &mut GroupCommit<Out>, obs: &Obs, now_ms: u64) {
    for e in st.expired(now_ms) {
        obs.reach(Reach::TxnExpired);
        stage(st, gc, e);
    }
}

fn stage(st: &mut BrokerState, gc: &mut GroupCommit<Out>, e: WalEntry) {
    let n = gc.log(&codec::encode_framed(&e));
    let events = st.apply(&e);
    // Entry `n` is not durable yet: both are held.
    assert!(gc.output(n, Out::Events(events)).is_none());
    if matches!(e, WalEntry::End { commit: true, .. }) {
        assert!(gc.output(n, Out::Committed).is_none());
    }
}

/// Make staged entries durable: one write, one fsync. On an I/O error the
/// broker rolls back to its durable log (see `In::Flushed`).
async fn write_wal(storage: &dyn Storage, obs: &Obs, bytes: &[u8]) -> Result<(), String> {
    storage.append(WAL, bytes).await.map_err(|e| format!("wal append: {e}"))?;
    obs.point(FaultPoint::BrokerBeforeFsync).await;
    storage.fsync(WAL).await.map_err(|e| format!("wal fsync: {e}"))
}

/// Write the input topic to a broker's disk before the job starts.
pub async fn provision_input(storage: &dyn Storage, input: &[Vec<Record>]) -> std::io::Result<()> {
    write_atomic(storage, INPUT, &codec::encode_framed(&input.to_vec())).await
}
