//! What the engine tells the outside world: history events (the oracles'
//! input and the trace) and fault points (named protocol steps where the
//! simulator may crash the node). Outside simulation the observer is a no-op.

use crate::types::{Attempt, CheckpointId, OutRecord, Owner, TaskId, Writer};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A transaction's name as its sink chose it (the broker's transactional
/// id for `BrokerSink`). Oracles never parse it: the subtask and checkpoint
/// of a transaction come from the events that carry them.
pub type TxnId = String;

/// Declares [`Event`] and, from the same variant list, its names: a
/// predicate trigger names an event by its variant, and a list of names kept
/// beside the enum by hand drifts from it (a variant missing from it cannot
/// be triggered on). Declared here, a new variant has its name by
/// construction.
macro_rules! declare_events {
    (
        $(#[$meta:meta])*
        pub enum $Enum:ident {
            $(
                $(#[$vmeta:meta])*
                $Variant:ident $({
                    $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),* $(,)?
                })?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub enum $Enum {
            $(
                $(#[$vmeta])*
                $Variant $({ $( $(#[$fmeta])* $field: $ty ),* })?,
            )*
        }

        impl $Enum {
            /// The name of every variant, in declaration order: what a
            /// profile's `[[trigger]] event = "..."` may name.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($Variant)),*];

            /// The variant's name (`PreCommitted`), as a trigger names it.
            pub fn name(&self) -> &'static str {
                match self {
                    $( $Enum::$Variant { .. } => stringify!($Variant), )*
                }
            }
        }
    };
}

declare_events! {
/// One step of the engine's history. The simulator stamps each with the
/// simulated time and the node it happened on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    // ---- node lifecycle ----
    NodeStarted,
    /// A node found a fatal condition (fsync error, corrupt durable data) and
    /// asks to be restarted.
    FatalError {
        reason: String,
    },

    // ---- coordinator ----
    CoordinatorRecovered {
        next_checkpoint: CheckpointId,
        attempt: Attempt,
        completed: Vec<CheckpointId>,
    },
    CheckpointTriggered {
        attempt: Attempt,
        ckpt: CheckpointId,
    },
    /// The completion record is durable. `offsets[i]` is source `i`'s offset.
    CheckpointCompleted {
        attempt: Attempt,
        ckpt: CheckpointId,
        offsets: Vec<u64>,
        finished: bool,
    },
    CheckpointFailed {
        attempt: Attempt,
        ckpt: CheckpointId,
        reason: String,
    },
    CheckpointSubsumed {
        ckpt: CheckpointId,
    },
    CheckpointDiscarded {
        ckpt: CheckpointId,
    },
    RecoveryStarted {
        attempt: Attempt,
        from: Option<CheckpointId>,
        reason: String,
    },
    JobRunning {
        attempt: Attempt,
    },
    JobFinished {
        attempt: Attempt,
        ckpt: CheckpointId,
    },
    /// The job cannot go on: a task's recovery lost a transaction, or kept
    /// failing beyond its budget. Nothing retries after this.
    JobFailed {
        attempt: Attempt,
        task: TaskId,
        reason: String,
    },
    WorkerLost {
        worker: u32,
    },

    // ---- tasks ----
    /// What a task restored, read from the restored blobs themselves.
    TaskRestored {
        attempt: Attempt,
        task: TaskId,
        state_ckpt: Option<CheckpointId>,
        offsets_ckpt: Option<CheckpointId>,
        offset: Option<u64>,
        pending_txns: Vec<(CheckpointId, TxnId)>,
        /// A chain's open transaction once restored (name, epoch): the one
        /// it began, `None` after restoring a finished state.
        #[serde(default)]
        open_txn: Option<(TxnId, u64)>,
    },
    TaskFailed {
        attempt: Attempt,
        task: TaskId,
        reason: String,
    },
    /// A source emitted barrier `ckpt` at input offset `offset`: the
    /// checkpoint's cut at this source.
    SourceBarrier {
        attempt: Attempt,
        source: u32,
        ckpt: CheckpointId,
        offset: u64,
    },
    /// A source read the last record of its partition (end of input).
    SourceEnded {
        attempt: Attempt,
        source: u32,
        offset: u64,
    },
    BarrierAligned {
        attempt: Attempt,
        task: TaskId,
        ckpt: CheckpointId,
    },
    SnapshotStored {
        attempt: Attempt,
        task: TaskId,
        ckpt: CheckpointId,
        bytes: u64,
    },
    /// `offset`: a source's input offset at the barrier (its cut).
    CheckpointAcked {
        attempt: Attempt,
        task: TaskId,
        ckpt: CheckpointId,
        offset: Option<u64>,
    },

    // ---- sink (2PC) ----
    TxnBegun {
        attempt: Attempt,
        task: TaskId,
        txn: TxnId,
        epoch: u64,
    },
    /// A sink subtask's new owner starts (a sink task is created, before
    /// its recovery): from now on every older owner of the subtask is a
    /// zombie (see [`crate::types::Owner`]).
    SinkOpened {
        task: TaskId,
        owner: Owner,
    },
    PreCommitted {
        task: TaskId,
        ckpt: CheckpointId,
        txn: TxnId,
        epoch: u64,
        records: u64,
        /// The output records the engine handed the sink for this
        /// transaction (their `out_id`s): what the checks look for in the
        /// system's output to tell whether it was really committed.
        #[serde(default)]
        out_ids: Vec<u64>,
        /// The lineage its records carry (owner, subtask, transaction tag).
        #[serde(default)]
        writer: Writer,
    },
    /// The sink confirmed a commit (first time or idempotent repeat).
    CommitConfirmed {
        task: TaskId,
        ckpt: CheckpointId,
        txn: TxnId,
        epoch: u64,
    },
    /// A commit the sink could not make: the data of a completed checkpoint
    /// is lost, and said so loudly.
    CommitFailed {
        task: TaskId,
        ckpt: CheckpointId,
        txn: TxnId,
        epoch: u64,
        reason: String,
    },
    SinkAborted {
        task: TaskId,
        txn: TxnId,
    },
    NotifyHandled {
        task: TaskId,
        ckpt: CheckpointId,
    },
    PlainAppended {
        task: TaskId,
        records: u64,
    },

    // ---- broker (the ground truth of the output) ----
    BrokerRecovered {
        entries: u64,
        truncated_bytes: u64,
    },
    /// `(run, attempt, session)`: the owner the request claims (see
    /// `Request::InitProducer`); the id's owner from now on when it is not
    /// older than the previous one.
    ProducerInit {
        txn: TxnId,
        epoch: u64,
        run: u64,
        attempt: u64,
        session: (u64, u64),
        aborted_open: bool,
    },
    AppendAccepted {
        txn: TxnId,
        epoch: u64,
        partition: u32,
        records: u64,
    },
    AppendRejected {
        txn: TxnId,
        epoch: u64,
        reason: String,
    },
    /// Commit marker written: these records became visible.
    TxnCommitted {
        txn: TxnId,
        epoch: u64,
        out: Vec<OutRecord>,
    },
    /// Found committed while replaying the log at recovery. If no
    /// `TxnCommitted` was seen for it, the commit marker reached the disk but
    /// the broker crashed before announcing it: it became visible now.
    TxnCommitReplayed {
        txn: TxnId,
        epoch: u64,
        out: Vec<OutRecord>,
    },
    TxnCommitRepeated {
        txn: TxnId,
        epoch: u64,
    },
    TxnAborted {
        txn: TxnId,
        epoch: u64,
        reason: String,
    },
    PlainAppend {
        partition: u32,
        out: Vec<OutRecord>,
    },

    // ---- store ----
    BlobStored {
        name: String,
        bytes: u64,
    },
    BlobCorrupt {
        name: String,
    },

    // ---- coordinator, adaptive interval (declared last: events are
    // hashed by their position) ----
    /// The adaptive interval chose the time to the next checkpoint, within
    /// its configured bounds.
    IntervalChosen {
        interval_ms: u64,
        min_ms: u64,
        max_ms: u64,
    },

    // ---- incremental checkpoints (declared last: events are hashed by
    // their position; emitted only with `incremental_checkpoints`) ----
    /// A task's snapshot of `ckpt` is stored: the files it refers to (its
    /// main blob first, then its shared files), all durable in the store.
    SnapshotFiles {
        attempt: Attempt,
        task: TaskId,
        ckpt: CheckpointId,
        files: Vec<String>,
    },
    /// The store removed these files (durably: after its directory fsync).
    BlobsDeleted {
        names: Vec<String>,
    },

    // ---- a new job identity (declared last: events are hashed by their
    // position; emitted only by a redeploy) ----
    /// The coordinator started as a new run of the job (a redeploy: a new
    /// job identity), restoring from the retained checkpoint `from` (none:
    /// from the start of the input).
    Redeployed {
        run: u64,
        from: Option<CheckpointId>,
    },

    // ---- rescaling (declared last: events are hashed by their position;
    // emitted only when the parallelism changes) ----
    /// A recovery restores checkpoint `ckpt`, taken with `from` chain
    /// subtasks, with `to` of them: key groups move
    /// (`types::rescale_sources`), and removed subtasks are adopted by the
    /// survivors (`types::adopter_of`). Without a checkpoint (`None`), a
    /// fresh start with `to` subtasks where the job was submitted with
    /// `from`.
    Rescaled {
        attempt: Attempt,
        from: u32,
        to: u32,
        ckpt: Option<CheckpointId>,
    },
    /// Subtask `task` (of a rescaled job) recovered what removed subtask
    /// `adopted` left in the sink's system: re-committed its pending
    /// transactions, aborted its open one and its lingering ones.
    SubtaskAdopted {
        attempt: Attempt,
        task: TaskId,
        adopted: TaskId,
    },
}
}

/// Named protocol steps. In simulation a point records coverage and may
/// crash the node when the fault schedule says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultPoint {
    /// Sink: after pre-commit, before the checkpoint ack.
    AfterPrecommitBeforeAck,
    /// Task: after the snapshot is stored, before the ack is sent.
    AfterSnapshotBeforeAck,
    /// Coordinator: after the id counter is durable, before the trigger.
    AfterIdPersistBeforeTrigger,
    /// Coordinator: all acknowledgements in, before the completion record.
    BeforeCompletionRecord,
    /// Coordinator: after the completion record, before notify.
    AfterCompletionBeforeNotify,
    /// Sink: between two commits of one notification.
    BetweenCommits,
    /// Sink: after all commits of a notification, before its ack.
    AfterCommitsBeforeNotifyAck,
    /// Task: during recovery, after restoring state, before running.
    DuringRecovery,
    /// Broker: a log entry appended, not yet fsynced (a crash here can tear
    /// it or lose it).
    BrokerBeforeFsync,
    /// Broker: after the commit marker is durable, before the reply.
    BrokerAfterCommitMarker,
    /// Store: after the blob is durable, before the reply.
    StoreAfterBlobDurable,
    /// Source: after reading a batch, before emitting it.
    SourceAfterRead,
}

impl FaultPoint {
    pub const ALL: [FaultPoint; 12] = [
        FaultPoint::AfterPrecommitBeforeAck,
        FaultPoint::BeforeCompletionRecord,
        FaultPoint::AfterSnapshotBeforeAck,
        FaultPoint::AfterIdPersistBeforeTrigger,
        FaultPoint::AfterCompletionBeforeNotify,
        FaultPoint::BetweenCommits,
        FaultPoint::AfterCommitsBeforeNotifyAck,
        FaultPoint::DuringRecovery,
        FaultPoint::BrokerBeforeFsync,
        FaultPoint::BrokerAfterCommitMarker,
        FaultPoint::StoreAfterBlobDurable,
        FaultPoint::SourceAfterRead,
    ];
    pub fn name(self) -> &'static str {
        match self {
            FaultPoint::AfterPrecommitBeforeAck => "after_precommit_before_ack",
            FaultPoint::AfterSnapshotBeforeAck => "after_snapshot_before_ack",
            FaultPoint::AfterIdPersistBeforeTrigger => "after_id_persist_before_trigger",
            FaultPoint::BeforeCompletionRecord => "before_completion_record",
            FaultPoint::AfterCompletionBeforeNotify => "after_completion_before_notify",
            FaultPoint::BetweenCommits => "between_commits",
            FaultPoint::AfterCommitsBeforeNotifyAck => "after_commits_before_notify_ack",
            FaultPoint::DuringRecovery => "during_recovery",
            FaultPoint::BrokerBeforeFsync => "broker_before_fsync",
            FaultPoint::BrokerAfterCommitMarker => "broker_after_commit_marker",
            FaultPoint::StoreAfterBlobDurable => "store_after_blob_durable",
            FaultPoint::SourceAfterRead => "source_after_read",
        }
    }
}

/// Declares [`Reach`]: each point's variant, its name in reports and what
/// reaching it means.
macro_rules! declare_reach {
    ($(#[$m:meta])* pub enum $Enum:ident { $($(#[$vm:meta])* $Variant:ident = $name:literal : $meaning:literal,)* }) => {
        $(#[$m])*
        pub enum $Enum { $($(#[$vm])* $Variant,)* }

        impl $Enum {
            /// Every point, in declaration order.
            pub const ALL: &'static [$Enum] = &[$($Enum::$Variant),*];

            /// The point's name in reports (`notify_covers_earlier`).
            pub fn name(self) -> &'static str {
                match self { $($Enum::$Variant => $name,)* }
            }

            /// What reaching it means, in one line.
            pub fn meaning(self) -> &'static str {
                match self { $($Enum::$Variant => $meaning,)* }
            }

            pub fn parse(s: &str) -> Option<$Enum> {
                Self::ALL.iter().copied().find(|p| p.name() == s)
            }
        }
    };
}

declare_reach! {
/// **Reachability points** ("sometimes" properties): rare protocol states
/// the engine and its sinks mark where they happen (`Obs::reach`), so a
/// campaign can say which ones its runs reached and name those never
/// reached (a state never reached is a state never tested). Marking one
/// records it beside the history (the simulator's `History::reached`),
/// never in the trace: a run with or without an observer that records
/// them is the same run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    InitFencedOpenTxn = "init_fenced_open_txn":
        "an init took a transactional id over from a writer with an open transaction, aborting it",
    ZombieRequestRefused = "zombie_request_refused":
        "the broker refused a request of a fenced producer (a zombie's write, commit or init)",
    RecommitOfCommitted = "recommit_of_committed":
        "a commit found its transaction already committed (a recovery's or a retried commit)",
    TxnExpired = "txn_expired":
        "the broker expired a transaction that outlived its timeout",
    NotifyCoversEarlier = "notify_covers_earlier":
        "one notification committed several pending transactions (an earlier notification was lost or late)",
    NotifyFindsNothing = "notify_finds_nothing":
        "a late or duplicate notification found nothing left to commit",
    RecoveryRecommits = "recovery_recommits":
        "a recovery re-committed a pending transaction restored from its checkpoint",
    RecoveryAbortsOpen = "recovery_aborts_open":
        "a recovery aborted the transaction its checkpoint had open",
    LostCommitForgiven = "lost_commit_forgiven":
        "a commit found its transaction lost after the timeout, and the opt-in forgave it",
    LostCommitFails = "lost_commit_fails":
        "a commit found its transaction lost, and the task failed",
    SinkRecoveryRetried = "sink_recovery_retried":
        "a sink recovery failed and was tried again",
    AlignedWithBlockedInput = "aligned_with_blocked_input":
        "a barrier aligned while an input was blocked with records held back",
    SenderRestartedRefused = "sender_restarted_refused":
        "a chain refused data from a second instance of its sender",
    CoordinatorRestartedWithCompleted = "coordinator_restarted_with_completed":
        "a restarted coordinator recovered completed checkpoints from its durable record",
    CheckpointExpired = "checkpoint_expired":
        "a checkpoint failed (timed out or declined) before it completed",
    BrokerLogTruncated = "broker_log_truncated":
        "the broker's recovery cut a torn or partial tail off its log",
    BrokerLogRolledBack = "broker_log_rolled_back":
        "a log write failed and the broker rolled its state back to the durable log",
    SystemCallUnanswered = "system_call_unanswered":
        "a sink's request to its system got no answer within its retries (it may or may not have happened)",
    ClockSteppedWithOpenTxn = "clock_stepped_with_open_txn":
        "the broker's wall clock stepped by a transaction timeout or more while a transaction was open",
    CoordinatorWriteFailed = "coordinator_write_failed":
        "the coordinator could not write its durable record (it restarts)",
    SinkClosedWithOpenTxn = "sink_closed_with_open_txn":
        "a sink task was closed (its attempt replaced, its process alive) with a transaction open",
    RestoredUnderNewRun = "restored_under_new_run":
        "the job was redeployed under a new job identity and restored a retained checkpoint of the old one",
    RestoredRescaled = "restored_rescaled":
        "a recovery restored a checkpoint taken at another parallelism, moving key groups between subtasks",
    RemovedSubtaskAdopted = "removed_subtask_adopted":
        "a survivor of a downscale recovered the transactions a removed subtask left in the sink's system",
    AttemptCancelled = "attempt_cancelled":
        "a worker process that restarted after the job finished, and then deployed an attempt from a late Deploy, ended it (Cancel)",
}
}

/// The engine's window to the outside. Implemented by the simulator; the
/// default [`NoopObserver`] costs nothing.
pub trait Observer: Send + Sync {
    fn emit(&self, node: &str, event: Event);
    /// Called when execution reaches a fault point. Returns `true` when the
    /// node must crash here: the caller then stops making progress and the
    /// simulator kills the node.
    fn fault_point(&self, node: &str, point: FaultPoint) -> bool;
    /// The node hit a fatal error and needs a restart (as a supervisor such
    /// as systemd or Kubernetes would do).
    fn fatal(&self, node: &str, reason: &str);
    /// What `node`'s clocks read now (see `crate::clock`); `None`: the
    /// process's own monotonic clock, no skew.
    fn local_clock(&self, _node: &str) -> Option<ClockReading> {
        None
    }
    /// `node` reached a [`Reach`] point. Recorded beside the history, never
    /// in the trace; the default records nothing.
    fn reach(&self, _node: &str, _point: Reach) {}
}

/// What a node's clocks read, in microseconds since an arbitrary origin
/// shared by the node's clocks (see [`Observer::local_clock`] and
/// `crate::clock`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockReading {
    pub mono_us: u64,
    pub wall_us: i64,
    /// How fast the node's clock runs now, in permille of real time.
    pub rate_permille: u64,
}

pub struct NoopObserver;

impl Observer for NoopObserver {
    fn emit(&self, _node: &str, _event: Event) {}
    fn fault_point(&self, _node: &str, _point: FaultPoint) -> bool {
        false
    }
    fn fatal(&self, node: &str, reason: &str) {
        panic!("fatal error on {node}: {reason}");
    }
}

/// A node's handle on the observer.
#[derive(Clone)]
pub struct Obs {
    pub node: Arc<str>,
    pub inner: Arc<dyn Observer>,
}

impl Obs {
    pub fn new(node: &str, inner: Arc<dyn Observer>) -> Self {
        Obs { node: node.into(), inner }
    }
    pub fn emit(&self, event: Event) {
        self.inner.emit(&self.node, event);
    }
    /// Mark a reachability point (see [`Reach`]).
    pub fn reach(&self, point: Reach) {
        self.inner.reach(&self.node, point);
    }

    /// Reach a fault point; never returns if the simulator crashes the node.
    pub async fn point(&self, point: FaultPoint) {
        if self.inner.fault_point(&self.node, point) {
            std::future::pending::<()>().await;
        }
    }
    /// A fatal error: ask for a restart and stop making progress.
    pub async fn fatal(&self, reason: String) -> ! {
        self.emit(Event::FatalError { reason: reason.clone() });
        self.inner.fatal(&self.node, &reason);
        std::future::pending::<()>().await;
        unreachable!()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reach_point_has_one_distinct_name_that_parses_back() {
        let mut names: Vec<&str> = Reach::ALL.iter().map(|p| p.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Reach::ALL.len());
        for p in Reach::ALL {
            assert_eq!(Reach::parse(p.name()), Some(*p));
            assert!(!p.meaning().is_empty() && !p.meaning().contains('\n'));
        }
    }

    #[test]
    fn every_event_has_one_distinct_name_and_reports_it() {
        let mut names = Event::NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Event::NAMES.len(), "names are unique");
        assert!(Event::NAMES.contains(&"JobFailed"), "{:?}", Event::NAMES);
        // `name` is the variant, as the derived `Debug` spells it.
        let samples = [
            Event::NodeStarted,
            Event::JobFailed { attempt: 2, task: TaskId::Chain(1), reason: "lost".into() },
            Event::PreCommitted {
                task: TaskId::Chain(0),
                ckpt: 3,
                txn: "t".into(),
                epoch: 1,
                records: 4,
                out_ids: vec![],
                writer: Default::default(),
            },
            Event::SinkOpened { task: TaskId::Chain(0), owner: Default::default() },
            Event::BlobCorrupt { name: "b".into() },
        ];
        for e in &samples {
            let debug = format!("{e:?}");
            let variant: String = debug.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
            assert_eq!(e.name(), variant);
            assert!(Event::NAMES.contains(&e.name()), "{}", e.name());
        }
    }
}
