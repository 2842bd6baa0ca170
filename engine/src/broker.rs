//! The transactional log broker (Kafka-style): replayable partitioned input
//! topic, output topic with transactional producers, epochs and fencing,
//! commit/abort markers, `read_committed` reads up to the last stable offset,
//! transaction timeouts. All state is a replay of a durable write-ahead log
//! kept on the broker's own disk through [`crate::storage::Storage`].
//!
//! [`BrokerState`] is the plain state machine; [`run_broker`] is the thin
//! node loop around it.

use crate::config::Mutant;
use crate::observe::{Event, Reach, TxnId};
use crate::proto::{Request, Response};
use crate::types::{OutRecord, Record};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

mod node;
pub use node::{parse_wal, provision_input, read_stable, recover, run_broker, BrokerNode, GroupCommit};

pub const WAL: &str = "broker.wal";
pub const INPUT: &str = "broker.input";

/// One durable step of the broker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WalEntry {
    Init {
        txn: TxnId,
        epoch: u64,
        nonce: u64,
        /// The job run and attempt that initialized the id (its owner from
        /// now on).
        run: u64,
        attempt: u64,
        /// The session of that attempt (see `Request::InitProducer`).
        session: (u64, u64),
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
    /// A timeout abort also bumps the epoch, fencing the late producer
    /// (below the epoch bound; at the bound the transaction stays ended,
    /// which refuses the producer just the same).
    Expire {
        txn: TxnId,
        epoch: u64,
    },
    Plain {
        partition: u32,
        records: Vec<OutRecord>,
    },
}

/// One entry of an output partition. A transactional record is decided by
/// the marker its transaction writes after it (Kafka's aborted-transaction
/// index): `commit` is that decision, `None` while the transaction is open.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    Data { txn: Option<(TxnId, u64)>, rec: OutRecord, commit: Option<bool> },
    Marker { txn: TxnId, epoch: u64, commit: bool },
}

/// The reason of a timeout abort (`Event::TxnAborted`): the broker ended the
/// transaction on its own and bumped its producer's epoch.
pub const EXPIRED_REASON: &str = "transaction timeout";

#[derive(Clone, Debug, Default)]
struct OpenTxn {
    start_ms: u64,
    /// First log offset of this transaction in each partition it touched.
    first_offsets: BTreeMap<u32, u64>,
    /// Where its records are (partition, offset): its marker decides them.
    entries: Vec<(u32, usize)>,
    last_seq: Option<u64>,
    records: Vec<OutRecord>,
}

#[derive(Clone, Debug, Default)]
struct Producer {
    epoch: u64,
    open: Option<OpenTxn>,
    /// Every `InitProducer` request applied to this transactional id (by
    /// nonce) and the epoch it produced, so a retry, however late, gets its
    /// original answer instead of bumping the epoch again. A late retry that
    /// bumped the epoch would fence whoever initialized the id after it
    /// (the harness found that one: a fencing init retried behind a slow
    /// disk aborted the live transaction that recovery had begun under the
    /// same id).
    init_nonces: BTreeMap<u64, u64>,
    /// The newest (job run, attempt, session) that initialized this id:
    /// its owner.
    run: u64,
    attempt: u64,
    session: (u64, u64),
}

/// What a request does: a reply now, or a durable step then a reply.
pub enum Plan {
    Reply(Response),
    Log(WalEntry, Response),
}

impl Plan {
    /// The reply, when it needs nothing durable.
    pub fn reply(self) -> Option<Response> {
        match self {
            Plan::Reply(r) => Some(r),
            Plan::Log(..) => None,
        }
    }
}

pub struct BrokerState {
    pub input: Vec<Vec<Record>>,
    pub output: Vec<Vec<Entry>>,
    producers: BTreeMap<TxnId, Producer>,
    committed: BTreeSet<(TxnId, u64)>,
    aborted: BTreeSet<(TxnId, u64)>,
    pub txn_timeout_ms: u64,
    /// The highest producer epoch an init may issue
    /// (`JobConfig::max_producer_epoch`).
    pub max_epoch: u64,
    /// A planted bug of the broker (`relaxed-attempt-fence`), if any.
    pub mutant: Option<Mutant>,
    /// A commit of an ended instance `(id, epoch)` that committed is a
    /// no-op success even after the id's epoch moved on (a pooled id
    /// reused since, `JobConfig::pooled_txn_ids`): the recovery of a
    /// pre-committed transaction learns it committed. Off, such a commit is
    /// `Fenced`, as it was.
    pub recommit_by_instance: bool,
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
            max_epoch: crate::config::DEFAULT_MAX_PRODUCER_EPOCH,
            mutant: None,
            recommit_by_instance: false,
        }
    }

    /// The state after a failed log write: what the durable entries
    /// `durable` (the log's intact prefix, everything a reply or event ever
    /// told of) replay to. Whatever was applied after them is undone, the
    /// producer epochs its inits and expiries took included: an epoch is
    /// consumed only by a durable entry, so fencing under a log that cannot
    /// be written never exhausts the bound.
    pub fn rolled_back(self, durable: &[WalEntry]) -> BrokerState {
        let mut s = BrokerState::new(self.input, self.output.len() as u32, self.txn_timeout_ms);
        s.max_epoch = self.max_epoch;
        s.mutant = self.mutant;
        s.recommit_by_instance = self.recommit_by_instance;
        for e in durable {
            s.apply(e);
        }
        if self.mutant == Some(Mutant::Kafka9666EpochBumpOnFailedWrite) {
            // Planted bug (KAFKA-9666): the epoch cache survives the rollback.
            for (txn, p) in self.producers {
                let q = s.producers.entry(txn).or_default();
                q.epoch = q.epoch.max(p.epoch);
            }
        }
        s
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
            Request::InitProducer { txn, nonce, run, attempt, session } => {
                if let Some(p) = self.producers.get(txn) {
                    if let Some(epoch) = p.init_nonces.get(nonce) {
                        return Plan::Reply(Response::Epoch { epoch: *epoch }); // a retry
                    }
                    // Planted bug: within a run the attempt fence is off (only
                    // epochs fence): an older attempt's init gets through.
                    let relaxed = self.mutant == Some(Mutant::RelaxedAttemptFence) && *run == p.run;
                    if (*run, *attempt, *session) < (p.run, p.attempt, p.session) && !relaxed {
                        // A zombie of an older attempt (or of an older run
                        // of the job, or an older session of this attempt:
                        // a process a later deploy replaced, or a recovery
                        // try that gave up): it is fenced already, and
                        // must not fence the newer owner's writer. A newer
                        // run takes the id over, whatever its attempt.
                        return Plan::Reply(Response::Fenced { current: p.epoch });
                    }
                }
                let epoch = self.producers.get(txn).map(|p| p.epoch + 1).unwrap_or(0);
                if epoch > self.max_epoch {
                    // Exhausted: the id cannot be fenced again (Kafka would
                    // need a new producer id; here its owner needs a new id).
                    return Plan::Reply(Response::EpochExhausted { max: self.max_epoch });
                }
                let (nonce, run, attempt, session) = (*nonce, *run, *attempt, *session);
                Plan::Log(
                    WalEntry::Init { txn: txn.clone(), epoch, nonce, run, attempt, session, at_ms: now_ms },
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
                // Planted bug: a fenced producer's append is taken as the
                // current owner's (logged under the current epoch).
                let zombie = *epoch < p.epoch && self.mutant == Some(Mutant::ZombieAppendAccepted);
                let epoch = if zombie { &p.epoch } else { epoch };
                if *epoch < p.epoch {
                    return Plan::Reply(Response::Fenced { current: p.epoch });
                }
                if *epoch > p.epoch {
                    return Plan::Reply(Response::TxnNotOpen { reason: format!("epoch {epoch} never issued") });
                }
                let ended =
                    self.committed.contains(&(txn.clone(), *epoch)) || self.aborted.contains(&(txn.clone(), *epoch));
                // Planted bug (KAFKA-12671): an append after the end opens a
                // transaction again, one its producer will never end.
                if ended && self.mutant != Some(Mutant::Kafka12671HangingTxn) {
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
                let key = (txn.clone(), *epoch);
                if *epoch < p.epoch {
                    if *commit && self.recommit_by_instance && self.committed.contains(&key) {
                        return Plan::Reply(Response::Ok);
                    }
                    return Plan::Reply(Response::Fenced { current: p.epoch });
                }
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
                    if let Entry::Data { txn, rec, commit } = e {
                        let visible = match txn {
                            None => true,
                            Some(_) => !*committed_only || *commit == Some(true),
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
            WalEntry::Init { txn, epoch, nonce, run, attempt, session, at_ms: _ } => {
                let p = self.producers.entry(txn.clone()).or_default();
                assert!(*epoch >= p.epoch, "epochs never go back");
                let owner = (*run, *attempt, *session);
                assert!(
                    owner >= (p.run, p.attempt, p.session) || self.mutant == Some(Mutant::RelaxedAttemptFence),
                    "owners never go back"
                );
                if owner >= (p.run, p.attempt, p.session) {
                    (p.run, p.attempt, p.session) = owner;
                }
                let earlier = p.init_nonces.insert(*nonce, *epoch);
                assert!(earlier.is_none(), "an init request is applied once");
                let had_open = p.open.take();
                let old_epoch = p.epoch;
                p.epoch = *epoch;
                let mut events = vec![Event::ProducerInit {
                    txn: txn.clone(),
                    epoch: *epoch,
                    run: *run,
                    attempt: *attempt,
                    session: *session,
                    aborted_open: had_open.is_some(),
                }];
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
                    open.entries.push((*partition, log.len()));
                    log.push(Entry::Data { txn: Some((txn.clone(), *epoch)), rec: r.clone(), commit: None });
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
                p.epoch = if *epoch < self.max_epoch { epoch + 1 } else { *epoch };
                self.end_open(txn, *epoch, open, false);
                vec![Event::TxnAborted { txn: txn.clone(), epoch: *epoch, reason: EXPIRED_REASON.into() }]
            }
            WalEntry::Plain { partition, records } => {
                let log = &mut self.output[*partition as usize];
                for r in records {
                    log.push(Entry::Data { txn: None, rec: r.clone(), commit: None });
                }
                vec![Event::PlainAppend { partition: *partition, out: records.clone() }]
            }
        }
    }

    fn end_open(&mut self, txn: &TxnId, epoch: u64, open: OpenTxn, commit: bool) {
        for (p, i) in &open.entries {
            if let Entry::Data { commit: c, .. } = &mut self.output[*p as usize][*i] {
                *c = Some(commit);
            }
        }
        for p in open.first_offsets.keys() {
            self.output[*p as usize].push(Entry::Marker { txn: txn.clone(), epoch, commit });
        }
        if commit {
            self.committed.insert((txn.clone(), epoch));
        } else {
            self.aborted.insert((txn.clone(), epoch));
        }
    }

    /// The reachability point a request's plan reaches, if any: a fenced
    /// producer refused, or a commit of a transaction already committed.
    pub fn reach_of(&self, req: &Request, plan: &Plan) -> Option<Reach> {
        match (req, plan) {
            (_, Plan::Reply(Response::Fenced { .. })) => Some(Reach::ZombieRequestRefused),
            (Request::EndTxn { txn, epoch, commit: true }, Plan::Reply(Response::Ok))
                if self.committed.contains(&(txn.clone(), *epoch)) =>
            {
                Some(Reach::RecommitOfCommitted)
            }
            _ => None,
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

#[cfg(test)]
mod tests {
    //! The broker as a plain state machine: requests planned, durable steps
    //! applied, no runtime.
    use super::*;
    use crate::codec;

    fn rec(id: u64) -> OutRecord {
        OutRecord::new(id, id, 1, id)
    }

    fn broker() -> BrokerState {
        BrokerState::new(vec![vec![]], 2, 1_000)
    }

    /// Plan and, for a durable step, apply; returns the reply.
    fn ask(b: &mut BrokerState, req: Request, now_ms: u64) -> Response {
        match b.plan(&req, now_ms) {
            Plan::Reply(r) => r,
            Plan::Log(e, r) => {
                b.apply(&e);
                r
            }
        }
    }

    fn init(b: &mut BrokerState, txn: &str, nonce: u64) -> u64 {
        init_in(b, txn, nonce, 1)
    }

    fn init_in(b: &mut BrokerState, txn: &str, nonce: u64, attempt: u64) -> u64 {
        match ask(b, Request::InitProducer { txn: txn.into(), nonce, run: 0, attempt, session: (0, 0) }, 0) {
            Response::Epoch { epoch } => epoch,
            other => panic!("init: {other:?}"),
        }
    }

    fn append(b: &mut BrokerState, txn: &str, epoch: u64, seq: u64, ids: &[u64]) -> Response {
        let records = ids.iter().map(|i| rec(*i)).collect();
        ask(b, Request::Append { txn: txn.into(), epoch, partition: 0, seq, records }, 0)
    }

    fn end(b: &mut BrokerState, txn: &str, epoch: u64, commit: bool) -> Response {
        ask(b, Request::EndTxn { txn: txn.into(), epoch, commit }, 0)
    }

    fn visible(b: &BrokerState) -> Vec<u64> {
        b.committed_output()[0].iter().map(|o| o.out_id).collect()
    }

    #[test]
    fn group_commit_writes_what_was_staged_during_an_fsync_with_one_fsync_and_holds_outputs_until_durable() {
        let mut gc: GroupCommit<&str> = GroupCommit::default();
        assert_eq!(gc.output(gc.applied(), "read before anything"), Some("read before anything"));
        let a = gc.log(b"A");
        assert_eq!(gc.output(a, "reply A"), None, "not durable yet");
        assert_eq!(gc.start_flush(), Some(b"A".to_vec()));
        assert_eq!(gc.start_flush(), None, "one flush at a time");
        // While A's fsync is in flight: B and C arrive, and a read planned
        // on the state B changed.
        let b = gc.log(b"B");
        assert_eq!(gc.output(b, "reply B"), None);
        let c = gc.log(b"C");
        assert_eq!(gc.output(c, "reply C"), None);
        assert_eq!(gc.output(gc.applied(), "read after C"), None, "it may tell of C");
        assert_eq!(gc.flushed(), vec!["reply A"]);
        assert!(!gc.flushing());
        assert_eq!(gc.start_flush(), Some(b"BC".to_vec()), "B and C: one write, one fsync");
        assert_eq!(gc.output(a, "late reply on A"), None, "outputs leave in order");
        assert_eq!(gc.flushed(), vec!["reply B", "reply C", "read after C", "late reply on A"]);
        assert_eq!(gc.start_flush(), None, "nothing staged");
        assert_eq!(gc.output(gc.applied(), "read"), Some("read"));
    }

    #[test]
    fn a_pooled_id_reused_since_still_recommits_its_committed_instance() {
        for by_instance in [false, true] {
            let mut b = broker();
            b.recommit_by_instance = by_instance;
            let e = init(&mut b, "p0", 1);
            assert_eq!(append(&mut b, "p0", e, 0, &[1]), Response::Ok);
            assert_eq!(end(&mut b, "p0", e, true), Response::Ok);
            // The id is reused for a newer transaction, left open.
            let e2 = init(&mut b, "p0", 2);
            assert_eq!(append(&mut b, "p0", e2, 0, &[2]), Response::Ok);
            let recommit = end(&mut b, "p0", e, true);
            if by_instance {
                assert_eq!(recommit, Response::Ok, "the restored instance committed");
            } else {
                assert_eq!(recommit, Response::Fenced { current: e2 });
            }
            assert_eq!(visible(&b), vec![1], "the newer transaction stays undecided");
            // An instance that never committed is still fenced.
            let e3 = init(&mut b, "p0", 3);
            assert_eq!(end(&mut b, "p0", e2, true), Response::Fenced { current: e3 });
        }
    }

    #[test]
    fn a_new_run_of_the_job_takes_over_its_ids_and_the_old_run_is_fenced() {
        let run_init = |b: &mut BrokerState, nonce, run, attempt| {
            ask(b, Request::InitProducer { txn: "t".into(), nonce, run, attempt, session: (0, 0) }, 0)
        };
        let mut b = broker();
        // Run 1 got to attempt 5 and left a transaction open.
        assert_eq!(run_init(&mut b, 1, 1, 5), Response::Epoch { epoch: 0 });
        assert_eq!(append(&mut b, "t", 0, 0, &[1]), Response::Ok);
        // Run 2 starts from attempt 1 and takes the id over, aborting it.
        assert_eq!(run_init(&mut b, 2, 2, 1), Response::Epoch { epoch: 1 });
        assert_eq!(b.open_count(), 0);
        // A zombie of run 1, however high its attempt, is refused.
        assert_eq!(run_init(&mut b, 3, 1, 9), Response::Fenced { current: 1 });
        // Within run 2, attempts order as before.
        assert_eq!(run_init(&mut b, 4, 2, 2), Response::Epoch { epoch: 2 });
        assert_eq!(run_init(&mut b, 5, 2, 1), Response::Fenced { current: 2 });
    }

    #[test]
    fn init_bumps_the_epoch_and_aborts_the_open_transaction() {
        let mut b = broker();
        assert_eq!(init(&mut b, "t", 1), 0);
        assert_eq!(append(&mut b, "t", 0, 0, &[1, 2]), Response::Ok);
        assert_eq!(b.open_count(), 1);
        assert_eq!(init_in(&mut b, "t", 2, 2), 1, "a newer attempt fences");
        assert_eq!(b.open_count(), 0, "the older epoch's transaction is aborted");
        assert_eq!(append(&mut b, "t", 0, 1, &[3]), Response::Fenced { current: 1 });
        assert_eq!(end(&mut b, "t", 0, true), Response::Fenced { current: 1 });
        assert!(visible(&b).is_empty(), "nothing of the fenced epoch is visible");
    }

    #[test]
    fn a_retried_init_gets_its_answer_again_however_late() {
        let mut b = broker();
        assert_eq!(init(&mut b, "t", 7), 0);
        assert_eq!(init(&mut b, "t", 7), 0, "an immediate retry");
        assert_eq!(init(&mut b, "t", 8), 1);
        assert_eq!(append(&mut b, "t", 1, 0, &[1]), Response::Ok);
        // A retry of the first request, delivered after the second one: it
        // must not bump the epoch and fence the live transaction.
        assert_eq!(init(&mut b, "t", 7), 0);
        assert_eq!(b.open_count(), 1);
        assert_eq!(end(&mut b, "t", 1, true), Response::Ok);
        assert_eq!(visible(&b), vec![1]);
    }

    #[test]
    fn late_fencing_never_aborts_the_transaction_begun_after_it() {
        let mut b = broker();
        // Attempt 1 writes; attempt 2 recovers: fences the id (request 2),
        // then begins its own transaction under it (request 3).
        let e1 = init_in(&mut b, "t", 1, 1);
        append(&mut b, "t", e1, 0, &[1]);
        assert_eq!(init_in(&mut b, "t", 2, 2), e1 + 1);
        assert_eq!(b.open_count(), 0, "attempt 1's transaction is aborted");
        let e2 = init_in(&mut b, "t", 3, 2);
        assert_eq!(append(&mut b, "t", e2, 0, &[2]), Response::Ok);
        // Late: the fencing request again (a recovery try that timed out
        // sends the same request id), and an init of attempt 1 (a zombie).
        assert_eq!(init_in(&mut b, "t", 2, 2), e1 + 1, "the fence was applied once");
        let zombie =
            ask(&mut b, Request::InitProducer { txn: "t".into(), nonce: 5, run: 0, attempt: 1, session: (0, 0) }, 0);
        assert_eq!(zombie, Response::Fenced { current: e2 });
        assert_eq!(b.open_count(), 1, "the live transaction survives both");
        assert_eq!(end(&mut b, "t", e2, true), Response::Ok);
        assert_eq!(visible(&b), vec![2]);
    }

    #[test]
    fn a_late_init_of_an_older_session_of_the_same_attempt_is_refused() {
        let session_init = |b: &mut BrokerState, nonce, session| {
            ask(b, Request::InitProducer { txn: "t".into(), nonce, run: 0, attempt: 2, session }, 0)
        };
        let mut b = broker();
        // Attempt 1 pre-commits a transaction.
        let e0 = init_in(&mut b, "t", 1, 1);
        assert_eq!(append(&mut b, "t", e0, 0, &[1]), Response::Ok);
        // Attempt 2's first process (deploy 3) sends a fencing init that is
        // held (the broker is paused), then dies. Its restarted successor
        // (deploy 7) fences the id and begins its transaction under it.
        let held = Request::InitProducer { txn: "t".into(), nonce: 10, run: 0, attempt: 2, session: (3, 0) };
        assert_eq!(session_init(&mut b, 20, (7, 0)), Response::Epoch { epoch: e0 + 1 });
        let live = e0 + 2;
        assert_eq!(session_init(&mut b, 21, (7, 0)), Response::Epoch { epoch: live });
        assert_eq!(append(&mut b, "t", live, 0, &[2]), Response::Ok);
        // The dead process's init arrives late: a new request id, the same
        // attempt, an older session. It must not abort the live transaction.
        assert_eq!(ask(&mut b, held, 0), Response::Fenced { current: live });
        // Nor may a late begin of an earlier recovery try of the successor.
        assert_eq!(session_init(&mut b, 23, (7, 0)), Response::Epoch { epoch: live + 1 }, "same session: a new begin");
        assert_eq!(session_init(&mut b, 24, (7, 1)), Response::Epoch { epoch: live + 2 });
        assert_eq!(session_init(&mut b, 25, (7, 0)), Response::Fenced { current: live + 2 }, "older try");
        // A newer session (a later deploy of the attempt, lower try) wins.
        assert_eq!(session_init(&mut b, 26, (8, 0)), Response::Epoch { epoch: live + 3 });
        // A newer attempt takes over whatever its session.
        assert_eq!(
            ask(&mut b, Request::InitProducer { txn: "t".into(), nonce: 27, run: 0, attempt: 3, session: (1, 0) }, 0),
            Response::Epoch { epoch: live + 4 }
        );
    }

    #[test]
    fn a_late_init_of_an_older_session_cannot_abort_what_a_newer_one_committed_for() {
        let mut b = broker();
        let init2 = |b: &mut BrokerState, nonce, session| match ask(
            b,
            Request::InitProducer { txn: "t".into(), nonce, run: 0, attempt: 2, session },
            0,
        ) {
            Response::Epoch { epoch } => Ok(epoch),
            other => Err(other),
        };
        let e = init2(&mut b, 2, (5, 0)).unwrap();
        assert_eq!(append(&mut b, "t", e, 0, &[7]), Response::Ok);
        // Pre-committed for a checkpoint that completes; the late init of the
        // older session lands between the pre-commit and the commit.
        assert!(init2(&mut b, 1, (2, 0)).is_err());
        assert_eq!(end(&mut b, "t", e, true), Response::Ok, "the commit is not lost");
        assert_eq!(visible(&b), vec![7]);
    }

    #[test]
    fn a_restarted_process_of_the_same_attempt_fences_its_predecessor() {
        let mut b = broker();
        let e1 = init_in(&mut b, "t", 1, 2);
        append(&mut b, "t", e1, 0, &[1]);
        // The worker restarted while still in attempt 2: its begin is a new
        // producer session and aborts what the dead process left open.
        let e2 = init_in(&mut b, "t", 9, 2);
        assert_eq!(e2, e1 + 1);
        assert_eq!(b.open_count(), 0);
        assert_eq!(append(&mut b, "t", e2, 0, &[2]), Response::Ok);
        assert_eq!(end(&mut b, "t", e2, true), Response::Ok);
        assert_eq!(visible(&b), vec![2], "nothing of the dead process is visible");
    }

    #[test]
    fn read_committed_stops_at_the_last_stable_offset() {
        let mut b = broker();
        let (e1, e2) = (init(&mut b, "a", 1), init(&mut b, "b", 2));
        append(&mut b, "a", e1, 0, &[1]);
        append(&mut b, "b", e2, 0, &[2]);
        assert_eq!(end(&mut b, "b", e2, true), Response::Ok);
        assert!(visible(&b).is_empty(), "b's record sits behind a's open transaction");
        assert_eq!(b.last_stable_offset(0), 0);
        assert_eq!(end(&mut b, "a", e1, true), Response::Ok);
        assert_eq!(visible(&b), vec![1, 2]);
    }

    #[test]
    fn commits_are_idempotent_and_duplicate_appends_are_dropped() {
        let mut b = broker();
        let e = init(&mut b, "t", 1);
        assert_eq!(append(&mut b, "t", e, 0, &[1]), Response::Ok);
        assert_eq!(append(&mut b, "t", e, 0, &[1]), Response::Ok, "a retried append");
        assert_eq!(end(&mut b, "t", e, true), Response::Ok);
        assert_eq!(end(&mut b, "t", e, true), Response::Ok, "a re-commit after recovery");
        assert_eq!(visible(&b), vec![1], "applied once");
        assert!(matches!(end(&mut b, "t", e, false), Response::TxnNotOpen { .. }), "no abort after commit");
        assert!(matches!(append(&mut b, "t", e, 1, &[2]), Response::TxnNotOpen { .. }));
    }

    #[test]
    fn aborted_records_never_become_visible() {
        let mut b = broker();
        let e = init(&mut b, "t", 1);
        append(&mut b, "t", e, 0, &[1]);
        assert_eq!(end(&mut b, "t", e, false), Response::Ok);
        assert!(matches!(end(&mut b, "t", e, true), Response::TxnNotOpen { .. }), "no commit after abort");
        assert!(visible(&b).is_empty());
        assert_eq!(b.last_stable_offset(0), 2, "data and marker are decided");
    }

    #[test]
    fn a_transaction_past_its_timeout_is_expired_and_its_producer_fenced() {
        let mut b = broker();
        let e = init(&mut b, "t", 1);
        match b.plan(&Request::Append { txn: "t".into(), epoch: e, partition: 0, seq: 0, records: vec![rec(1)] }, 100) {
            Plan::Log(entry, _) => {
                b.apply(&entry);
            }
            Plan::Reply(r) => panic!("append: {r:?}"),
        }
        assert!(b.expired(1_099).is_empty());
        let due = b.expired(1_100);
        assert_eq!(due.len(), 1);
        b.apply(&due[0]);
        assert_eq!(b.open_count(), 0);
        assert_eq!(end(&mut b, "t", e, true), Response::Fenced { current: e + 1 });
        assert!(visible(&b).is_empty());
    }

    #[test]
    fn an_expired_producer_learns_it_on_its_next_request_and_is_fenced() {
        let mut b = broker();
        let e = init(&mut b, "t", 1);
        assert_eq!(append(&mut b, "t", e, 0, &[1]), Response::Ok);
        for entry in b.expired(1_000) {
            assert_eq!(entry, WalEntry::Expire { txn: "t".into(), epoch: e });
            let events = b.apply(&entry);
            assert!(matches!(&events[..], [Event::TxnAborted { reason, .. }] if reason == EXPIRED_REASON));
        }
        assert_eq!(b.open_count(), 0, "expired");
        assert!(b.open_txns().is_empty(), "recovery's listing does not show it");
        // Its next append (Kafka's produce) and its commit: fenced.
        assert_eq!(append(&mut b, "t", e, 1, &[2]), Response::Fenced { current: e + 1 });
        assert_eq!(end(&mut b, "t", e, true), Response::Fenced { current: e + 1 });
        assert_eq!(end(&mut b, "t", e, false), Response::Fenced { current: e + 1 });
        assert!(visible(&b).is_empty());
        assert_eq!(b.last_stable_offset(0), 2, "the abort marker decides the record");
        // The expiry took an epoch: the next init gets the one after it.
        assert_eq!(init(&mut b, "t", 2), e + 2);
    }

    #[test]
    fn epochs_are_bounded_and_an_exhausted_id_is_refused() {
        let mut b = broker();
        b.max_epoch = 2;
        assert_eq!((init(&mut b, "t", 1), init(&mut b, "t", 2), init(&mut b, "t", 3)), (0, 1, 2));
        assert_eq!(append(&mut b, "t", 2, 0, &[1]), Response::Ok);
        let fourth = Request::InitProducer { txn: "t".into(), nonce: 4, run: 0, attempt: 1, session: (0, 0) };
        assert_eq!(ask(&mut b, fourth, 0), Response::EpochExhausted { max: 2 });
        assert_eq!(b.open_count(), 1, "a refused init fences nothing");
        assert_eq!(init(&mut b, "t", 3), 2, "a retry of an applied init still gets its answer");
        // A timeout abort at the bound cannot bump: the transaction stays
        // ended, and its producer is refused all the same.
        for entry in b.expired(10_000) {
            b.apply(&entry);
        }
        assert_eq!(b.open_count(), 0);
        assert!(matches!(append(&mut b, "t", 2, 1, &[2]), Response::TxnNotOpen { .. }));
        assert!(matches!(end(&mut b, "t", 2, true), Response::TxnNotOpen { .. }));
        assert!(visible(&b).is_empty());
        // Other ids are not affected.
        assert_eq!(init(&mut b, "u", 5), 0);
    }

    /// Plan a request, apply it as the node loop does (before it is
    /// durable) and stage it; `durable` is the log's durable prefix, which a
    /// flush extends.
    fn staged(b: &mut BrokerState, req: Request, staged: &mut Vec<WalEntry>) -> Option<Response> {
        match b.plan(&req, 0) {
            Plan::Reply(r) => Some(r),
            Plan::Log(e, r) => {
                b.apply(&e);
                staged.push(e);
                // The reply waits for the flush.
                let _ = r;
                None
            }
        }
    }

    fn init_req(nonce: u64) -> Request {
        Request::InitProducer { txn: "t".into(), nonce, run: 0, attempt: 2, session: (0, 0) }
    }

    #[test]
    fn an_init_whose_log_write_fails_leaves_the_epoch_unchanged() {
        let mut b = broker();
        b.max_epoch = 4;
        let mut durable = Vec::new();
        // Epoch 0 is durable, with an open transaction under it.
        assert_eq!(staged(&mut b, init_req(1), &mut durable), None);
        assert_eq!(
            staged(
                &mut b,
                Request::Append { txn: "t".into(), epoch: 0, partition: 0, seq: 0, records: vec![rec(1)] },
                &mut durable
            ),
            None
        );
        // A fencing init, retried (same request id) against a log that
        // cannot be written, far more often than the bound allows.
        for _ in 0..100 {
            let mut lost = Vec::new();
            assert_eq!(staged(&mut b, init_req(7), &mut lost), None, "planned for epoch 1, not yet durable");
            assert_eq!(b.open_count(), 0, "applied: the open transaction is fenced in memory");
            b = b.rolled_back(&durable); // the write failed
            assert_eq!(b.open_txns(), vec![("t".to_string(), 0)], "the epoch and the open transaction are back");
        }
        // The log heals: the retry is applied once, with the next epoch.
        let mut flushed = Vec::new();
        assert_eq!(staged(&mut b, init_req(7), &mut flushed), None);
        durable.extend(flushed);
        assert_eq!(ask(&mut b, init_req(7), 0), Response::Epoch { epoch: 1 }, "a retry of the durable init");
        assert_eq!(append(&mut b, "t", 0, 1, &[2]), Response::Fenced { current: 1 });
        // Replaying the durable log gives the same epoch.
        let mut replayed = broker();
        for e in &durable {
            replayed.apply(e);
        }
        assert_eq!(replayed.plan(&init_req(7), 0).reply(), Some(Response::Epoch { epoch: 1 }));
    }

    #[test]
    fn planted_kafka_9666_keeps_the_epochs_of_failed_writes_until_they_run_out() {
        let mut b = broker();
        b.max_epoch = 4;
        b.mutant = Some(Mutant::Kafka9666EpochBumpOnFailedWrite);
        let mut durable = Vec::new();
        assert_eq!(staged(&mut b, init_req(1), &mut durable), None);
        let mut refused = None;
        for _ in 0..10 {
            let mut lost = Vec::new();
            if let Some(r) = staged(&mut b, init_req(7), &mut lost) {
                refused = Some(r);
                break;
            }
            b = b.rolled_back(&durable);
        }
        assert_eq!(refused, Some(Response::EpochExhausted { max: 4 }), "four failed fences exhaust the id");
    }

    #[test]
    fn an_append_after_its_transaction_ended_is_refused_and_planted_kafka_12671_hangs_the_partition() {
        for planted in [false, true] {
            let mut b = broker();
            b.mutant = planted.then_some(Mutant::Kafka12671HangingTxn);
            let (e, u) = (init(&mut b, "t", 1), init(&mut b, "u", 2));
            assert_eq!(append(&mut b, "t", e, 0, &[1]), Response::Ok);
            assert_eq!(end(&mut b, "t", e, true), Response::Ok);
            // The append again, delivered late (a retry of seq 0).
            let late = append(&mut b, "t", e, 0, &[1]);
            // Another producer commits behind it.
            assert_eq!(append(&mut b, "u", u, 0, &[2]), Response::Ok);
            assert_eq!(end(&mut b, "u", u, true), Response::Ok);
            if planted {
                assert_eq!(late, Response::Ok);
                assert_eq!(b.open_txns(), vec![("t".to_string(), e)], "a transaction no one will end");
                assert_eq!(visible(&b), vec![1], "the last stable offset hangs behind it: 2 never shows");
            } else {
                assert!(matches!(late, Response::TxnNotOpen { .. }), "{late:?}");
                assert_eq!(b.open_count(), 0);
                assert_eq!(visible(&b), vec![1, 2]);
            }
        }
    }

    #[test]
    fn the_wal_replays_to_the_same_state_and_a_torn_tail_is_cut() {
        let mut b = broker();
        let mut wal = Vec::new();
        let reqs = vec![
            Request::InitProducer { txn: "t".into(), nonce: 1, run: 0, attempt: 1, session: (0, 0) },
            Request::Append { txn: "t".into(), epoch: 0, partition: 1, seq: 0, records: vec![rec(5)] },
            Request::EndTxn { txn: "t".into(), epoch: 0, commit: true },
        ];
        for r in reqs {
            if let Plan::Log(e, _) = b.plan(&r, 0) {
                wal.extend(codec::encode_framed(&e));
                b.apply(&e);
            }
        }
        let full = wal.len();
        wal.extend_from_slice(&codec::encode_framed(&WalEntry::Plain { partition: 0, records: vec![rec(9)] })[..5]);
        let (entries, intact, corrupt) = parse_wal(&wal);
        assert_eq!((entries.len(), intact, corrupt), (3, full, false));
        let mut replayed = broker();
        for e in &entries {
            replayed.apply(e);
        }
        assert_eq!(replayed.committed_output(), b.committed_output());
        assert_eq!(replayed.committed_output()[1], vec![rec(5)]);
    }
}
