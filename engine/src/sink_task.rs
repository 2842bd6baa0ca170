//! **Owns the sink side of the operator+sink task**: the two-phase-commit
//! sequencing of one sink subtask (restore, records, barrier, notification,
//! end of input), as a plain state machine with no runtime.
//!
//! Inputs are the task's messages ([`SinkTask::restore`],
//! [`SinkTask::records`], [`SinkTask::barrier`], [`SinkTask::notify`],
//! [`SinkTask::end_of_input`]); outputs are [`Step`]s, pulled one at a time
//! with [`SinkTask::next_step`]: a call into the sink (its result goes back with
//! [`SinkTask::done`]), a history event, a fault point, a task failure, or
//! `Idle` when the input is fully handled. [`drive`] executes the steps
//! against a [`TwoPhaseCommitSink`]; the chain in `worker/chain.rs` and the step
//! harness (`exactsim_sim::harness`) both go through it, so a sink tested
//! step by step is driven exactly as in a job.
//!
//! Flink's `TwoPhaseCommitSinkFunction` semantics:
//! - a barrier pre-commits the open transaction, keeps it pending in the
//!   checkpoint and begins the next one, except after the end of input:
//!   no transaction is begun after the final checkpoint, nor after restoring
//!   a state that had reached the end of input;
//! - a notification commits every pending transaction up to its checkpoint,
//!   in order; late and duplicate ones are no-ops;
//! - a commit that finds its transaction gone (`SinkError::TxnLost`) fails
//!   the task loudly unless `JobConfig::ignore_lost_commits` is set *and*
//!   the transaction's timeout (`txn_timeout_ms`) has passed since it
//!   began (Flink's `ignoreFailuresAfterTransactionTimeout`): then it is
//!   recorded as `CommitFailed` and counted. A transaction lost before its
//!   timeout was not expired but lost some other way, and fails the task
//!   even with the opt-in. A transient commit error fails the task, and
//!   recovery retries the commit.
//!
//! Time comes in with [`SinkTask::tick`] (the node's `epoch_ms`, so that a
//! restored transaction's start, written by another process, compares).

use crate::config::{JobConfig, Mutant};
use crate::observe::{Event, FaultPoint, Reach};
use crate::sink::{NotifyPlan, SinkError, SinkSnapshot, TwoPhaseCommitSink, TxnBook, TxnHandle, FLUSH_RECORDS};
use crate::types::{txn_tag, Attempt, CheckpointId, DeliveryMode, OutRecord, Owner, TaskId, Writer};
use std::collections::VecDeque;

/// A call into the sink. Handles are passed by value; a call that changes
/// the handle returns it (`CallResult::Txn`).
#[derive(Clone, Debug, PartialEq)]
pub enum SinkCall {
    Begin { hint: CheckpointId },
    Write { txn: TxnHandle, records: Vec<OutRecord> },
    PreCommit { txn: TxnHandle },
    Commit { txn: TxnHandle },
    Abort { txn: TxnHandle },
    RecoverAndCommit { txn: TxnHandle },
    RecoverAndAbort { txn: TxnHandle },
    AbortLingering { after: Option<CheckpointId>, upto: CheckpointId },
    Append { records: Vec<OutRecord> },
}

/// What a [`SinkCall`] returned.
#[derive(Clone, Debug, PartialEq)]
pub enum CallResult {
    Ok,
    /// The (new or updated) transaction handle.
    Txn(TxnHandle),
    Err(SinkError),
}

/// The next thing the task must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Make this call, then hand its result to [`SinkTask::done`].
    Call(SinkCall),
    Emit(Event),
    Point(FaultPoint),
    /// A reachability point (recorded beside the history, never traced).
    Reach(Reach),
    /// The task failed: report it and stop (recovery takes over).
    Fail(String),
    /// A barrier's or a notification's sink work is done: the chain may
    /// acknowledge it now (see [`Done`]).
    Done(Done),
    /// The input is fully handled.
    Idle,
}

/// What a [`Step::Done`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Done {
    /// Barrier `n` is handled: its transaction is pre-committed (durable)
    /// and the next one begun (or, at least once, the records before the
    /// barrier are appended). [`SinkTask::snapshot`] is checkpoint `n`'s
    /// sink state until the next step is taken.
    Barrier(CheckpointId),
    /// Notification `n` is handled: its commits are done.
    Notify(CheckpointId),
}

/// How to interpret the result of the call in flight.
#[derive(Clone, Debug)]
enum Then {
    Begun,
    /// The `out_id`s of the records written.
    Written(Vec<u64>),
    PreCommitted {
        ckpt: CheckpointId,
    },
    /// A commit of the transaction pending for `ckpt` (notification or
    /// recovery).
    Committed {
        ckpt: CheckpointId,
        txn: TxnHandle,
        recovery: bool,
    },
    /// Planted bug: the commit at pre-commit time.
    EarlyCommit {
        ckpt: CheckpointId,
        txn: TxnHandle,
    },
    AbortedRestored {
        txn: TxnHandle,
    },
    Lingering,
    Appended {
        records: u64,
    },
    /// Planted bug: the reset after a "late notification error".
    ResetAbort {
        txn: TxnHandle,
    },
    /// A close call ([`SinkTask::close`]): its result changes nothing.
    Closed,
    /// The close's abort of the open transaction: recorded as aborted when
    /// the call succeeds; an error changes nothing (what stays open is the
    /// next attempt's to find).
    ClosedAborted {
        txn: TxnHandle,
    },
    /// Planted bug [`Mutant::StarRocks105FlushOnClose`]: the open
    /// transaction flushed at close; its commit follows.
    ClosedFlushed {
        txn: TxnHandle,
    },
}

#[derive(Clone, Debug)]
enum Op {
    Step(Step),
    Call(SinkCall, Then),
    /// Begin a transaction (unless the end of input was reached).
    BeginNext {
        hint: CheckpointId,
    },
    /// Write into the transaction open when this op runs.
    Write(Vec<OutRecord>),
    /// Pre-commit the transaction open when this op runs (if any).
    PreCommit(CheckpointId),
    /// The end of input is reached here: no transaction is begun after it.
    EndOfInput,
    /// Notification: planned when it is reached.
    Notify(CheckpointId),
}

enum Mode {
    TwoPc(TxnBook),
    /// At-least-once: buffered plain appends, flushed at every barrier.
    Plain(Vec<OutRecord>),
}

/// The 2PC sequencing of one sink subtask.
pub struct SinkTask {
    task: TaskId,
    attempt: Attempt,
    /// Who this task writes as: stamped on every record it hands the sink
    /// (`OutRecord::writer`) and announced by `Event::SinkOpened`.
    owner: Owner,
    mutant: Option<Mutant>,
    ignore_lost: bool,
    txn_timeout_ms: u64,
    /// The node's `epoch_ms` at the last [`SinkTask::tick`].
    now_ms: u64,
    /// The `out_id`s written into the open transaction (its lineage, in
    /// `Event::PreCommitted`).
    open_ids: Vec<u64>,
    mode: Mode,
    /// Every input of the operator ended: no transaction is begun any more.
    ended: bool,
    queue: VecDeque<Op>,
    /// Records in queued writes and appends (not yet handed to the sink).
    queued_records: usize,
    in_flight: Option<Then>,
    failed: bool,
    /// Closed ([`SinkTask::close`]): results change nothing any more.
    closing: bool,
    /// Transactions whose commit found them gone (counted, with
    /// `ignore_lost_commits`).
    pub lost_commits: u64,
}

impl SinkTask {
    pub fn new(subtask: u32, attempt: Attempt, cfg: &JobConfig) -> SinkTask {
        let mode = match cfg.mode {
            DeliveryMode::ExactlyOnce => Mode::TwoPc(TxnBook::new(cfg.mutant)),
            DeliveryMode::AtLeastOnce => Mode::Plain(Vec::new()),
        };
        SinkTask {
            task: TaskId::Chain(subtask),
            attempt,
            owner: Owner { run: cfg.run, attempt, session: (0, 0) },
            mutant: cfg.mutant,
            ignore_lost: cfg.ignore_lost_commits,
            txn_timeout_ms: cfg.txn_timeout_ms,
            now_ms: 0,
            open_ids: Vec::new(),
            mode,
            ended: false,
            queue: VecDeque::new(),
            queued_records: 0,
            in_flight: None,
            failed: false,
            closing: false,
            lost_commits: 0,
        }
    }

    /// The producer session this task writes in (see [`Owner`]); (0, 0)
    /// unless set.
    pub fn with_session(mut self, session: (u64, u64)) -> SinkTask {
        self.owner.session = session;
        self
    }

    /// The lineage of records written into transaction `txn` (0: an
    /// at-least-once append).
    fn writer(&self, txn: u64) -> Writer {
        Writer { owner: self.owner, subtask: self.task.subtask(), txn }
    }

    /// The time now, as the node's `Clock::epoch_ms` reads it: call before
    /// [`SinkTask::done`], so that a transaction's start and a lost
    /// commit's age are measured.
    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }

    fn mutant_is(&self, m: Mutant) -> bool {
        self.mutant == Some(m)
    }

    /// The open transaction, if any.
    pub fn open(&self) -> Option<&TxnHandle> {
        match &self.mode {
            Mode::TwoPc(b) => b.open(),
            Mode::Plain(_) => None,
        }
    }

    /// Transactions pre-committed and not yet committed.
    pub fn pending_count(&self) -> usize {
        match &self.mode {
            Mode::TwoPc(b) => b.pending_count(),
            Mode::Plain(_) => 0,
        }
    }

    /// The sink's part of a checkpoint, taken once a barrier is handled.
    pub fn snapshot(&self) -> SinkSnapshot {
        match &self.mode {
            Mode::TwoPc(b) => b.snapshot(),
            Mode::Plain(_) => SinkSnapshot::default(),
        }
    }

    /// Whether a commit found its transaction gone and the loss is not
    /// forgiven (`lost_commits > 0` without `ignore_lost_commits`): a
    /// recovery that failed so cannot succeed by retrying, and escalates
    /// at once (`recovery::RecoveryBudget::failed`'s `fatal`).
    pub fn lost_for_good(&self) -> bool {
        self.lost_commits > 0 && !self.ignore_lost
    }

    /// Whether the end of input was reached (no transaction is begun).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Output records queued and not yet handed to the sink: a chain that
    /// runs ahead of its sink stops taking input above a bound.
    pub fn backlog(&self) -> usize {
        self.queued_records
    }

    /// Recovery from a checkpoint's sink state (`None`: a fresh start):
    /// re-commit its pending transactions, abort its open one, abort and
    /// fence what failed attempts may have left (`restored < id <=
    /// fence_upto`), then begin a transaction unless the restored state had
    /// reached the end of input (`ended`).
    pub fn restore(
        &mut self,
        snap: Option<&SinkSnapshot>,
        restored: Option<CheckpointId>,
        ended: bool,
        fence_upto: CheckpointId,
    ) {
        self.ended = ended;
        self.queue.push_back(Op::Step(Step::Emit(Event::SinkOpened { task: self.task, owner: self.owner })));
        let Mode::TwoPc(_) = &self.mode else { return };
        let empty = SinkSnapshot::default();
        let (book, commit, open) = TxnBook::restore(snap.unwrap_or(&empty), self.mutant);
        self.mode = Mode::TwoPc(book);
        if !commit.is_empty() {
            self.queue.push_back(Op::Step(Step::Reach(Reach::RecoveryRecommits)));
        }
        for (ckpt, txn) in commit {
            let then = Then::Committed { ckpt, txn: txn.clone(), recovery: true };
            self.queue.push_back(Op::Call(SinkCall::RecoverAndCommit { txn }, then));
        }
        if let Some(open) = open {
            if self.mutant_is(Mutant::NoEpochBump) {
                // Planted bug: reuse the restored open transaction as is
                // (the fresh sink buffers nothing), never fencing its
                // earlier writer.
                if let Mode::TwoPc(b) = &mut self.mode {
                    b.set_open(open);
                }
            } else {
                self.queue.push_back(Op::Step(Step::Reach(Reach::RecoveryAbortsOpen)));
                let then = Then::AbortedRestored { txn: open.clone() };
                self.queue.push_back(Op::Call(SinkCall::RecoverAndAbort { txn: open }, then));
            }
        }
        if !self.mutant_is(Mutant::NoAbortLingering) {
            let call = SinkCall::AbortLingering { after: restored, upto: fence_upto };
            self.queue.push_back(Op::Call(call, Then::Lingering));
        }
        self.queue.push_back(Op::BeginNext { hint: restored.map_or(1, |c| c + 1) });
    }

    /// Rescaling: recover what a removed subtask (this task's subtask, run
    /// by its adopter, `types::adopter_of`) left in the sink's system, as
    /// [`SinkTask::restore`] does, without beginning a transaction after:
    /// re-commit its pending transactions, abort its open one, abort and
    /// fence its lingering ones (`snap`: its state in the restored
    /// checkpoint, if it had any).
    pub fn adopt(&mut self, snap: Option<&SinkSnapshot>, restored: Option<CheckpointId>, fence_upto: CheckpointId) {
        self.restore(snap, restored, true, fence_upto);
        if matches!(self.queue.back(), Some(Op::BeginNext { .. })) {
            self.queue.pop_back();
        }
        if self.mutant_is(Mutant::Flink23854DownscaleOrphans) {
            // Planted bug: only the removed subtask's re-commits; what it
            // left open is no one's to abort.
            self.queue.retain(|op| {
                !matches!(
                    op,
                    Op::Call(SinkCall::RecoverAndAbort { .. } | SinkCall::AbortLingering { .. }, _)
                        | Op::Step(Step::Reach(Reach::RecoveryAbortsOpen))
                )
            });
        }
        assert!(!self.queue.iter().any(|op| matches!(op, Op::BeginNext { .. })), "an adopted subtask begins nothing");
    }

    /// Output records of the operator.
    pub fn records(&mut self, records: Vec<OutRecord>) {
        if records.is_empty() {
            return;
        }
        match &mut self.mode {
            Mode::TwoPc(_) => {
                self.queued_records += records.len();
                self.queue.push_back(Op::Write(records))
            }
            Mode::Plain(buf) => {
                buf.extend(records);
                if buf.len() >= FLUSH_RECORDS {
                    let batch = std::mem::take(buf);
                    let n = batch.len() as u64;
                    self.queued_records += batch.len();
                    self.queue.push_back(Op::Call(SinkCall::Append { records: batch }, Then::Appended { records: n }));
                }
            }
        }
    }

    /// Every input ended and the operator flushed its last output: the
    /// transaction open once the records given so far are written is the
    /// last one.
    pub fn end_of_input(&mut self) {
        self.queue.push_back(Op::EndOfInput);
    }

    /// Barrier `ckpt` aligned: pre-commit the open transaction and keep it
    /// pending, then begin the next one (not after the end of input), then
    /// `Step::Done(Done::Barrier(ckpt))`. Records given after this call go
    /// into the next transaction.
    pub fn barrier(&mut self, ckpt: CheckpointId) {
        match &mut self.mode {
            Mode::TwoPc(_) => self.queue.push_back(Op::PreCommit(ckpt)),
            Mode::Plain(buf) => {
                let batch = std::mem::take(buf);
                let n = batch.len() as u64;
                self.queued_records += batch.len();
                self.queue.push_back(Op::Call(SinkCall::Append { records: batch }, Then::Appended { records: n }));
            }
        }
        self.queue.push_back(Op::Step(Step::Done(Done::Barrier(ckpt))));
    }

    /// Checkpoint `ckpt` completed: commit every pending transaction up to
    /// it, in order.
    pub fn notify(&mut self, ckpt: CheckpointId) {
        // Planned when its turn comes: the commits queued before it have
        // settled their transactions by then.
        self.queue.push_back(Op::Notify(ckpt));
    }

    /// The task is cancelled while its process lives on (its attempt is
    /// replaced): Flink's `close()`. Work not yet handed to the sink is
    /// dropped (recovery replays it), and the open transaction is aborted,
    /// as `TwoPhaseCommitSinkFunction.close` and the Kafka writer's close
    /// do: its records belong to no completed checkpoint. Pending
    /// pre-commits are left alone (recovery re-commits them). Call when no
    /// call is in flight; the close calls' results change nothing (an
    /// error is the next attempt's to find), and the task does nothing else
    /// after them.
    pub fn close(&mut self) {
        assert!(self.in_flight.is_none(), "close with a sink call in flight");
        self.queue.retain(|op| matches!(op, Op::Step(Step::Emit(_)) | Op::Step(Step::Reach(_))));
        self.queued_records = 0;
        self.failed = false;
        self.closing = true;
        let Mode::TwoPc(book) = &self.mode else { return };
        let Some(open) = book.open().cloned() else { return };
        self.queue.push_back(Op::Step(Step::Reach(Reach::SinkClosedWithOpenTxn)));
        if self.mutant_is(Mutant::StarRocks105FlushOnClose) {
            // Planted bug: close "flushes": the open transaction's records
            // are made durable and committed, although no checkpoint
            // covers them.
            self.queue
                .push_back(Op::Call(SinkCall::PreCommit { txn: open.clone() }, Then::ClosedFlushed { txn: open }));
        } else {
            self.queue.push_back(Op::Call(SinkCall::Abort { txn: open.clone() }, Then::ClosedAborted { txn: open }));
        }
    }

    /// The steps of notification `ckpt`, planned now.
    fn plan_notify(&mut self, ckpt: CheckpointId) -> Vec<Op> {
        let mut ops = Vec::new();
        let Mode::TwoPc(book) = &mut self.mode else {
            ops.push(Op::Step(Step::Done(Done::Notify(ckpt))));
            return ops;
        };
        match book.notify(ckpt) {
            NotifyPlan::Nothing => ops.push(Op::Step(Step::Reach(Reach::NotifyFindsNothing))),
            NotifyPlan::Error(e) => {
                // Planted bug: the "error" is handled by resetting the open
                // transaction, silently dropping what it holds.
                ops.push(Op::Step(Step::Emit(Event::TaskFailed { attempt: self.attempt, task: self.task, reason: e })));
                if let Some(open) = book.take_open() {
                    let hint = open.name.rsplit('-').next().and_then(|x| x.parse().ok()).unwrap_or(ckpt) + 1000;
                    ops.push(Op::Call(SinkCall::Abort { txn: open.clone() }, Then::ResetAbort { txn: open }));
                    ops.push(Op::Call(SinkCall::Begin { hint }, Then::Begun));
                }
            }
            NotifyPlan::Commit(due) => {
                if due.len() > 1 {
                    ops.push(Op::Step(Step::Reach(Reach::NotifyCoversEarlier)));
                }
                for (k, (c, txn)) in due.into_iter().enumerate() {
                    if k > 0 {
                        ops.push(Op::Step(Step::Point(FaultPoint::BetweenCommits)));
                    }
                    let then = Then::Committed { ckpt: c, txn: txn.clone(), recovery: false };
                    ops.push(Op::Call(SinkCall::Commit { txn }, then));
                }
            }
        }
        ops.push(Op::Step(Step::Emit(Event::NotifyHandled { task: self.task, ckpt })));
        ops.push(Op::Step(Step::Point(FaultPoint::AfterCommitsBeforeNotifyAck)));
        ops.push(Op::Step(Step::Done(Done::Notify(ckpt))));
        ops
    }

    /// The next step. After a `Call`, [`SinkTask::done`] must be called
    /// before the next `next_step`.
    pub fn next_step(&mut self) -> Step {
        assert!(self.in_flight.is_none(), "a sink call is in flight");
        if self.failed {
            return Step::Idle;
        }
        loop {
            match self.queue.pop_front() {
                None => return Step::Idle,
                Some(Op::Step(s)) => {
                    if let Step::Fail(_) = s {
                        self.failed = true;
                        self.queue.clear();
                        self.queued_records = 0;
                    }
                    return s;
                }
                Some(Op::Call(mut call, then)) => {
                    if let SinkCall::Append { records } = &mut call {
                        self.queued_records -= records.len();
                        let writer = self.writer(0);
                        for r in records.iter_mut() {
                            r.writer = writer;
                        }
                    }
                    self.in_flight = Some(then);
                    return Step::Call(call);
                }
                Some(Op::EndOfInput) => self.ended = true,
                Some(Op::Notify(ckpt)) => {
                    for op in self.plan_notify(ckpt).into_iter().rev() {
                        self.queue.push_front(op);
                    }
                }
                Some(Op::Write(mut records)) => {
                    self.queued_records -= records.len();
                    let txn = self.open().cloned().expect("an open transaction while records flow");
                    let writer = self.writer(txn_tag(&txn.name, txn.epoch));
                    for r in records.iter_mut() {
                        r.writer = writer;
                    }
                    self.in_flight = Some(Then::Written(records.iter().map(|r| r.out_id).collect()));
                    return Step::Call(SinkCall::Write { txn, records });
                }
                Some(Op::PreCommit(ckpt)) => {
                    // After the final checkpoint nothing is open: a later
                    // checkpoint carries the pending ones only.
                    let Some(txn) = self.open().cloned() else { continue };
                    self.in_flight = Some(Then::PreCommitted { ckpt });
                    return Step::Call(SinkCall::PreCommit { txn });
                }
                Some(Op::BeginNext { hint }) => {
                    let left_open = self.mutant_is(Mutant::Flink23473TxnAfterFinish);
                    let open = matches!(&self.mode, Mode::TwoPc(b) if b.open().is_some());
                    if open || (self.ended && !left_open) {
                        continue;
                    }
                    self.in_flight = Some(Then::Begun);
                    return Step::Call(SinkCall::Begin { hint });
                }
            }
        }
    }

    /// The result of the call `next_step` returned.
    pub fn done(&mut self, r: CallResult) {
        let then = self.in_flight.take().expect("no sink call in flight");
        let task = self.task;
        let mut out: Vec<Op> = Vec::new();
        let fail = |what: String, e: &SinkError| Op::Step(Step::Fail(format!("{what}: {e}")));
        if self.closing {
            match (&then, &r) {
                (_, CallResult::Err(_)) => {}
                (Then::ClosedFlushed { txn }, r) => {
                    let txn = if let CallResult::Txn(t) = r { t.clone() } else { txn.clone() };
                    self.queue.push_front(Op::Call(SinkCall::Commit { txn }, Then::Closed));
                }
                (Then::ClosedAborted { txn }, _) => {
                    self.queue.push_front(Op::Step(Step::Emit(Event::SinkAborted { task, txn: txn.name.clone() })))
                }
                _ => {}
            }
            return;
        }
        match (then, r) {
            (Then::Begun, CallResult::Txn(t)) => {
                out.push(Op::Step(Step::Emit(Event::TxnBegun {
                    attempt: self.attempt,
                    task,
                    txn: t.name.clone(),
                    epoch: t.epoch,
                })));
                if let Mode::TwoPc(b) = &mut self.mode {
                    b.note_began(&t, self.now_ms);
                    b.set_open(t);
                }
                self.open_ids.clear();
            }
            (Then::Begun, CallResult::Err(e)) => out.push(fail("begin".into(), &e)),
            (Then::Written(ids), CallResult::Txn(t)) => {
                if let Mode::TwoPc(b) = &mut self.mode {
                    b.set_open(t);
                }
                self.open_ids.extend(ids);
            }
            (Then::Written(_), CallResult::Err(e)) => out.push(fail("sink write".into(), &e)),
            (Then::PreCommitted { ckpt }, CallResult::Txn(t)) => {
                let Mode::TwoPc(book) = &mut self.mode else { unreachable!("pre-commit in at-least-once mode") };
                book.set_open(t);
                let t = book.pre_committed(ckpt);
                out.push(Op::Step(Step::Emit(Event::PreCommitted {
                    task,
                    ckpt,
                    txn: t.name.clone(),
                    epoch: t.epoch,
                    records: t.records,
                    out_ids: std::mem::take(&mut self.open_ids),
                    writer: Writer { owner: self.owner, subtask: task.subtask(), txn: txn_tag(&t.name, t.epoch) },
                })));
                if self.mutant == Some(Mutant::CommitOnPrecommit) {
                    // Planted bug: visible before the checkpoint completes.
                    out.push(Op::Call(SinkCall::Commit { txn: t.clone() }, Then::EarlyCommit { ckpt, txn: t }));
                }
                out.push(Op::Step(Step::Point(FaultPoint::AfterPrecommitBeforeAck)));
                out.push(Op::BeginNext { hint: ckpt + 1 });
            }
            (Then::PreCommitted { .. }, CallResult::Err(e)) => out.push(fail("pre-commit".into(), &e)),
            (Then::Committed { ckpt, txn, recovery }, r) => {
                match r {
                    CallResult::Err(SinkError::TxnLost(reason)) => {
                        self.lost_commits += 1;
                        out.push(Op::Step(Step::Emit(Event::CommitFailed {
                            task,
                            ckpt,
                            txn: txn.name.clone(),
                            epoch: txn.epoch,
                            reason: reason.clone(),
                        })));
                        let began = match &self.mode {
                            Mode::TwoPc(b) => b.began_ms(&txn),
                            Mode::Plain(_) => None,
                        };
                        let age = began.map(|b| self.now_ms.saturating_sub(b));
                        let expired = age.is_some_and(|a| a >= self.txn_timeout_ms);
                        let forgiven = self.ignore_lost && expired;
                        let reached = if forgiven { Reach::LostCommitForgiven } else { Reach::LostCommitFails };
                        out.push(Op::Step(Step::Reach(reached)));
                        if !self.ignore_lost {
                            out.push(Op::Step(Step::Fail(format!(
                                "commit of {} (checkpoint {ckpt}) lost: {reason}; the job fails (set ignore_lost_commits to continue)",
                                txn.name
                            ))));
                        } else if !expired {
                            out.push(Op::Step(Step::Fail(format!(
                                "commit of {} (checkpoint {ckpt}) lost {}, before its transaction timeout of {} ms: {reason}; the job fails (ignore_lost_commits forgives a loss only once the timeout has passed)",
                                txn.name,
                                age.map_or("at an unknown age".to_string(), |a| format!("{a} ms after it began")),
                                self.txn_timeout_ms
                            ))));
                        }
                    }
                    CallResult::Err(e) => {
                        let what = if recovery { "re-commit" } else { "commit" };
                        out.push(fail(format!("{what} {}", txn.name), &e));
                    }
                    _ => out.push(Op::Step(Step::Emit(Event::CommitConfirmed {
                        task,
                        ckpt,
                        txn: txn.name.clone(),
                        epoch: txn.epoch,
                    }))),
                }
                // Settled: done, or lost and said so. A failed task is
                // replaced and recovery re-commits from the checkpoint.
                if !recovery {
                    if let Mode::TwoPc(b) = &mut self.mode {
                        b.settled(ckpt);
                    }
                }
            }
            (Then::EarlyCommit { ckpt, txn }, r) => {
                if !matches!(r, CallResult::Err(_)) {
                    out.push(Op::Step(Step::Emit(Event::CommitConfirmed {
                        task,
                        ckpt,
                        txn: txn.name.clone(),
                        epoch: txn.epoch,
                    })));
                }
            }
            (Then::AbortedRestored { txn }, CallResult::Err(e)) => {
                out.push(fail(format!("abort restored {}", txn.name), &e))
            }
            (Then::AbortedRestored { txn }, _) => {
                out.push(Op::Step(Step::Emit(Event::SinkAborted { task, txn: txn.name.clone() })))
            }
            (Then::Lingering, CallResult::Err(e)) => out.push(fail("abort lingering".into(), &e)),
            (Then::Lingering, _) => {}
            (Then::Appended { records }, CallResult::Err(e)) => {
                let _ = records;
                out.push(fail("append".into(), &e))
            }
            (Then::Appended { records }, _) => {
                if records > 0 {
                    out.push(Op::Step(Step::Emit(Event::PlainAppended { task, records })));
                }
            }
            (Then::ResetAbort { txn }, _) => {
                out.push(Op::Step(Step::Emit(Event::SinkAborted { task, txn: txn.name.clone() })))
            }
            (then, r) => panic!("sink call result {r:?} does not fit {then:?}"),
        }
        for op in out.into_iter().rev() {
            self.queue.push_front(op);
        }
    }
}

/// Execute one call against a sink.
pub async fn execute(sink: &mut dyn TwoPhaseCommitSink, call: SinkCall) -> CallResult {
    let r = match call {
        SinkCall::Begin { hint } => return sink.begin(hint).await.map_or_else(CallResult::Err, CallResult::Txn),
        SinkCall::Write { mut txn, records } => {
            return match sink.write(&mut txn, &records).await {
                Ok(()) => CallResult::Txn(txn),
                Err(e) => CallResult::Err(e),
            }
        }
        SinkCall::PreCommit { mut txn } => {
            return match sink.pre_commit(&mut txn).await {
                Ok(()) => CallResult::Txn(txn),
                Err(e) => CallResult::Err(e),
            }
        }
        SinkCall::Commit { txn } => sink.commit(&txn).await,
        SinkCall::Abort { txn } => sink.abort(&txn).await,
        SinkCall::RecoverAndCommit { txn } => sink.recover_and_commit(&txn).await,
        SinkCall::RecoverAndAbort { txn } => sink.recover_and_abort(&txn).await,
        SinkCall::AbortLingering { after, upto } => sink.abort_lingering(after, upto).await,
        SinkCall::Append { records } => sink.append(records).await,
    };
    r.map_or_else(CallResult::Err, |()| CallResult::Ok)
}

/// What a driver does with the steps that are not sink calls.
#[async_trait::async_trait]
pub trait StepEnv: Send {
    fn emit(&mut self, e: Event);
    async fn point(&mut self, p: FaultPoint);
    /// A reachability point; ignored unless the environment records them.
    fn reach(&mut self, _p: Reach) {}
    /// The node's `Clock::epoch_ms`, for [`SinkTask::tick`].
    fn now_ms(&self) -> u64;
}

/// Run the task's steps until it is idle, one at a time (`Step::Done` needs
/// nothing here: once `drive` returns, everything given is handled). `Err`:
/// the task failed (the reason); the caller reports it and stops. The
/// chain does not wait like this: it runs its operator while a sink call is
/// in flight (`worker/chain.rs`).
pub async fn drive(
    task: &mut SinkTask,
    sink: &mut dyn TwoPhaseCommitSink,
    env: &mut dyn StepEnv,
) -> Result<(), String> {
    loop {
        match task.next_step() {
            Step::Idle => return Ok(()),
            Step::Call(c) => {
                let r = execute(sink, c).await;
                task.tick(env.now_ms());
                task.done(r);
            }
            Step::Emit(e) => env.emit(e),
            Step::Reach(p) => env.reach(p),
            Step::Point(p) => env.point(p).await,
            Step::Fail(reason) => return Err(reason),
            Step::Done(_) => {}
        }
    }
}

#[cfg(test)]
mod tests;
