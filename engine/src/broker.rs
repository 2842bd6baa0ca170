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
mod tests;
