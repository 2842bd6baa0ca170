//! Job configuration and the catalogue of planted bugs.

use crate::types::DeliveryMode;
use serde::{Deserialize, Serialize};

/// A planted bug. Each reproduces a bug class that real engines shipped;
/// the harness must catch every one. With `mutant: None` none of these
/// branches is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mutant {
    /// Always fails: the sink commits its first output record twice.
    Canary,
    /// The sink commits at pre-commit instead of on checkpoint completion.
    CommitOnPrecommit,
    /// Recovery does not re-commit the restored pending transactions.
    NoRecommitOnRecovery,
    /// Recovery re-commits pending data by writing it again in a new transaction.
    NonIdempotentRecommit,
    /// A late or duplicate notification is treated as an error, handled by
    /// resetting the open transaction (its records are silently dropped).
    SubsumedNotifyError,
    /// `notify_complete(n)` commits only the transaction of `n`, so a lost
    /// notification is never covered by a later one.
    NotifyCommitsOnlyExact,
    /// Recovery picks the newest checkpoint whose blobs exist, without
    /// looking for its completion record.
    RestoreWithoutCompletionRecord,
    /// Sources restore offsets from the checkpoint before the restored one.
    OffsetsFromOtherCheckpoint,
    /// Barrier alignment skipped: records after barrier n enter snapshot n.
    SkipAlignment,
    /// The store acknowledges a blob before it is durable (no fsync).
    AckBeforeDurable,
    /// Recovery resumes the restored open transaction without bumping its
    /// producer epoch: old writes are not fenced.
    NoEpochBump,
    /// Recovery does not abort lingering open transactions.
    NoAbortLingering,
    /// Broker transaction timeout shorter than checkpoint + recovery time.
    ShortTxnTimeout,
    /// The checkpoint id counter restarts from 1 after a coordinator restart.
    CounterReset,
    /// FLINK-31363: empty transactions are committed like others; the
    /// broker does not know them, the failure is fatal and recovery retries
    /// it forever. Named `empty-txn-commit` before it was traced to its
    /// tracker; the old name still parses.
    #[serde(rename = "flink-31363-empty-txn-commit", alias = "empty-txn-commit")]
    Flink31363EmptyTxnCommit,
    /// The previous checkpoint's state is deleted when the next one is
    /// acknowledged, before its completion record is durable.
    DeleteStateEarly,
    /// The coordinator completes a checkpoint one acknowledgement early (an
    /// off-by-one in ack counting); the engine's own assertion that a
    /// completed checkpoint holds every task's state fires, so the run
    /// fails with check `panic`.
    CompleteBeforeAllAcks,
    /// The broker's attempt fence is relaxed to epochs only: within a run,
    /// an `InitProducer` of an older job attempt is accepted (a zombie of a
    /// replaced attempt, late or resumed from a pause, takes the id back).
    RelaxedAttemptFence,
    /// A commit that timed out is retried under a new producer session (a
    /// fresh init first): the init aborts the very transaction it commits.
    CommitRetryNewSession,
    /// The broker measures transaction ages on its wall clock: a forward
    /// clock step expires pending transactions of completed checkpoints.
    SkewedTxnTimeout,
    /// FLINK-23473: every sink begins one more transaction after the final
    /// checkpoint (and after restoring a finished state), which is never
    /// ended. Named `txn-left-open-at-end` before it was traced to its
    /// tracker; the old name still parses (replay files keep it).
    #[serde(rename = "flink-23473-txn-after-finish", alias = "txn-left-open-at-end")]
    Flink23473TxnAfterFinish,
    /// The PostgreSQL sink takes the restored pending transactions as
    /// committed at recovery: no `COMMIT PREPARED` (only the PostgreSQL
    /// scenario `pg_ledger` reaches it).
    PgNoRecoverCommit,
    /// A chain takes data from a source restarted within the attempt by
    /// sequence number, as if it were the instance it had been receiving
    /// from (the channel does not know its sender's incarnation).
    AcceptRestartedSender,
    /// The broker sink answers a commit on notification with success
    /// without sending it: the sink confirms what the system never did.
    ConfirmWithoutCommit,
    /// The broker takes an append from a fenced producer (an older epoch)
    /// into the id's current transaction, as if the new owner had sent it:
    /// a zombie's records ride in a transaction the new owner commits. The
    /// broker's own events and assertions show nothing wrong (the entry is
    /// logged under the current epoch); only the records' lineage does.
    ZombieAppendAccepted,
    /// The PostgreSQL sink does not end its earlier attempts' sessions
    /// before recovery scans the server: a zombie's `PREPARE TRANSACTION`
    /// that runs after the scan leaves a prepared transaction no one owns
    /// (only the PostgreSQL scenario `pg_ledger` reaches it).
    PgNoFence,
    /// KAFKA-9666: a broker whose log write failed rolls its state back to
    /// the durable log but keeps the producer epochs it bumped in memory,
    /// so every fencing retry under a log that cannot be written consumes
    /// another epoch.
    #[serde(rename = "kafka-9666-epoch-bump-on-failed-write")]
    Kafka9666EpochBumpOnFailedWrite,
    /// KAFKA-12671: a produce request delivered after its transaction ended
    /// opens a new transaction the coordinator knows nothing of: the
    /// partition's last stable offset hangs behind it.
    #[serde(rename = "kafka-12671-hanging-txn")]
    Kafka12671HangingTxn,
    /// The adaptive interval measures a checkpoint's cost from its last
    /// acknowledgement to its completion (the coordinator's own part, which
    /// is nothing: it completes on that acknowledgement) instead of from
    /// its trigger. Checkpoints look free, the interval falls to what the
    /// replay target asks, and checkpointing takes far more than a tenth of
    /// the processing time (only runs with `adaptive_interval` reach it).
    IntervalCostFromLastAck,
    /// FLINK-23854: with a pool of transactional ids, recovery finds the
    /// lingering transactions by probing ids upwards from the first and
    /// stops at the first id with no open transaction: one left open above
    /// a gap is never aborted.
    #[serde(rename = "flink-23854-lingering-gap")]
    Flink23854LingeringGap,
    /// FLINK-40626: with a pool of transactional ids, a restored
    /// pre-committed transaction whose id the failed attempt had reused is
    /// re-committed under the id's current epoch: the failed attempt's
    /// transaction of an unfinished checkpoint is committed.
    #[serde(rename = "flink-40626-recommit-reused-id")]
    Flink40626RecommitReusedId,
    /// FLINK-7268: a delete of a checkpoint subsumed before a job restart
    /// still in flight when the restarted job's shared-state registry is
    /// built uncounts its files in the new registry: counts fall below the
    /// number of retained checkpoints that refer to a file, and a file a
    /// retained checkpoint still needs is deleted.
    #[serde(rename = "flink-7268-async-discard-races-restart")]
    Flink7268AsyncDiscardRacesRestart,
    /// FLINK-26985: the shared files of the checkpoint the job was restored
    /// from are deleted when a newer checkpoint subsumes it, although the
    /// newer checkpoints refer to them.
    #[serde(rename = "flink-26985-restored-shared-state-discarded")]
    Flink26985RestoredSharedStateDiscarded,
    /// FLINK-7783: the recovery of the completed-checkpoint store drops a
    /// retained checkpoint it cannot read and discards everything that
    /// checkpoint refers to, shared files the newer ones still need included.
    #[serde(rename = "flink-7783-recover-drops-unreadable-checkpoint")]
    Flink7783RecoverDropsUnreadableCheckpoint,
    /// A failed sink recovery is retried after a fixed 100 ms pause, however
    /// long its system has been refusing: a retry storm in an outage.
    RetryWithoutBackoff,
    /// StarRocks' Flink connector (PR 105): under exactly-once, `close()`
    /// flushes what the sink holds, so records of a checkpoint that never
    /// completed become visible when a job restart cancels the task, and
    /// the replay writes them again.
    #[serde(rename = "starrocks-105-flush-on-close")]
    StarRocks105FlushOnClose,
    /// The upsert table's version guard is off by one version: a write one
    /// version behind the stored one replaces it (only the upsert scenario
    /// `upsert_ledger` reaches it).
    UpsertVersionOffByOne,
    /// The upsert table has no version guard: the last write wins, and a
    /// replayed, retried or late older value overwrites a newer one (only
    /// the upsert scenario `upsert_ledger` reaches it).
    UpsertNoVersionGuard,
    /// Iceberg's Kafka Connect sink in upsert mode (apache/iceberg#13547):
    /// of the records of one key within a commit interval, the first wins
    /// over the later ones; here the upsert sink collapses a batch to the
    /// first record of each key, so a newer version in the same batch is
    /// never written.
    #[serde(rename = "iceberg-13547-batch-keeps-first")]
    Iceberg13547BatchKeepsFirst,
    /// FLINK-23854 (downscaling): a survivor of a downscale re-commits the
    /// removed subtasks' pre-committed transactions (their committables
    /// are redistributed) but aborts lingering transactions only under its
    /// own subtask's ids: what a removed subtask left open stays open.
    #[serde(rename = "flink-23854-downscale-orphans")]
    Flink23854DownscaleOrphans,
}

impl Mutant {
    pub const ALL: [Mutant; 39] = [
        Mutant::Canary,
        Mutant::CommitOnPrecommit,
        Mutant::NoRecommitOnRecovery,
        Mutant::NonIdempotentRecommit,
        Mutant::SubsumedNotifyError,
        Mutant::NotifyCommitsOnlyExact,
        Mutant::RestoreWithoutCompletionRecord,
        Mutant::OffsetsFromOtherCheckpoint,
        Mutant::SkipAlignment,
        Mutant::AckBeforeDurable,
        Mutant::NoEpochBump,
        Mutant::NoAbortLingering,
        Mutant::ShortTxnTimeout,
        Mutant::CounterReset,
        Mutant::Flink31363EmptyTxnCommit,
        Mutant::DeleteStateEarly,
        Mutant::CompleteBeforeAllAcks,
        Mutant::RelaxedAttemptFence,
        Mutant::CommitRetryNewSession,
        Mutant::SkewedTxnTimeout,
        Mutant::Flink23473TxnAfterFinish,
        Mutant::PgNoRecoverCommit,
        Mutant::AcceptRestartedSender,
        Mutant::ConfirmWithoutCommit,
        Mutant::ZombieAppendAccepted,
        Mutant::PgNoFence,
        Mutant::Kafka9666EpochBumpOnFailedWrite,
        Mutant::Kafka12671HangingTxn,
        Mutant::IntervalCostFromLastAck,
        Mutant::Flink23854LingeringGap,
        Mutant::Flink40626RecommitReusedId,
        // Not listed (unfinished): `flink-7268-...` is planted (no test of
        // its branch yet), but the gate's faults land before the job's first
        // discarded checkpoint, so no gate run restarts after one (0 of
        // 1,000); it needs a profile aimed at a restart after a discard.
        Mutant::Flink26985RestoredSharedStateDiscarded,
        Mutant::Flink7783RecoverDropsUnreadableCheckpoint,
        Mutant::RetryWithoutBackoff,
        Mutant::StarRocks105FlushOnClose,
        Mutant::UpsertVersionOffByOne,
        Mutant::UpsertNoVersionGuard,
        Mutant::Iceberg13547BatchKeepsFirst,
        Mutant::Flink23854DownscaleOrphans,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mutant::Canary => "canary",
            Mutant::CommitOnPrecommit => "commit-on-precommit",
            Mutant::NoRecommitOnRecovery => "no-recommit-on-recovery",
            Mutant::NonIdempotentRecommit => "non-idempotent-recommit",
            Mutant::SubsumedNotifyError => "subsumed-notify-error",
            Mutant::NotifyCommitsOnlyExact => "notify-commits-only-exact",
            Mutant::RestoreWithoutCompletionRecord => "restore-without-completion-record",
            Mutant::OffsetsFromOtherCheckpoint => "offsets-from-other-checkpoint",
            Mutant::SkipAlignment => "skip-alignment",
            Mutant::AckBeforeDurable => "ack-before-durable",
            Mutant::NoEpochBump => "no-epoch-bump",
            Mutant::NoAbortLingering => "no-abort-lingering",
            Mutant::ShortTxnTimeout => "short-txn-timeout",
            Mutant::CounterReset => "counter-reset",
            Mutant::Flink31363EmptyTxnCommit => "flink-31363-empty-txn-commit",
            Mutant::DeleteStateEarly => "delete-state-early",
            Mutant::CompleteBeforeAllAcks => "complete-before-all-acks",
            Mutant::RelaxedAttemptFence => "relaxed-attempt-fence",
            Mutant::CommitRetryNewSession => "commit-retry-new-session",
            Mutant::SkewedTxnTimeout => "skewed-txn-timeout",
            Mutant::Flink23473TxnAfterFinish => "flink-23473-txn-after-finish",
            Mutant::PgNoRecoverCommit => "pg-no-recover-commit",
            Mutant::AcceptRestartedSender => "accept-restarted-sender",
            Mutant::ConfirmWithoutCommit => "confirm-without-commit",
            Mutant::ZombieAppendAccepted => "zombie-append-accepted",
            Mutant::PgNoFence => "pg-no-fence",
            Mutant::Kafka9666EpochBumpOnFailedWrite => "kafka-9666-epoch-bump-on-failed-write",
            Mutant::Kafka12671HangingTxn => "kafka-12671-hanging-txn",
            Mutant::IntervalCostFromLastAck => "interval-cost-from-last-ack",
            Mutant::Flink23854LingeringGap => "flink-23854-lingering-gap",
            Mutant::Flink40626RecommitReusedId => "flink-40626-recommit-reused-id",
            Mutant::Flink7268AsyncDiscardRacesRestart => "flink-7268-async-discard-races-restart",
            Mutant::RetryWithoutBackoff => "retry-without-backoff",
            Mutant::StarRocks105FlushOnClose => "starrocks-105-flush-on-close",
            Mutant::UpsertVersionOffByOne => "upsert-version-off-by-one",
            Mutant::Iceberg13547BatchKeepsFirst => "iceberg-13547-batch-keeps-first",
            Mutant::Flink23854DownscaleOrphans => "flink-23854-downscale-orphans",
            Mutant::UpsertNoVersionGuard => "upsert-no-version-guard",
            Mutant::Flink26985RestoredSharedStateDiscarded => "flink-26985-restored-shared-state-discarded",
            Mutant::Flink7783RecoverDropsUnreadableCheckpoint => "flink-7783-recover-drops-unreadable-checkpoint",
        }
    }

    /// The planted bug in one line, for `mutants --list` and the timeline.
    pub fn description(self) -> &'static str {
        match self {
            Mutant::Canary => "always fails: the sink commits its first output record twice",
            Mutant::CommitOnPrecommit => "the sink commits at pre-commit instead of on checkpoint completion",
            Mutant::NoRecommitOnRecovery => "recovery does not re-commit the restored pending transactions",
            Mutant::NonIdempotentRecommit => {
                "recovery re-commits pending data by writing it again in a new transaction"
            }
            Mutant::SubsumedNotifyError => {
                "a late or duplicate notification resets the open transaction, dropping its records"
            }
            Mutant::NotifyCommitsOnlyExact => {
                "a notification commits only its own checkpoint's transaction, not the earlier ones"
            }
            Mutant::RestoreWithoutCompletionRecord => {
                "recovery picks the newest checkpoint whose blobs exist, without its completion record"
            }
            Mutant::OffsetsFromOtherCheckpoint => "sources restore offsets from the checkpoint before the restored one",
            Mutant::SkipAlignment => "barrier alignment skipped: records after barrier n enter snapshot n",
            Mutant::AckBeforeDurable => "the store acknowledges a blob before it is durable (no fsync)",
            Mutant::NoEpochBump => "recovery resumes the open transaction without bumping its producer epoch",
            Mutant::NoAbortLingering => "recovery does not abort lingering open transactions",
            Mutant::ShortTxnTimeout => "broker transaction timeout shorter than checkpoint + recovery time",
            Mutant::CounterReset => "the checkpoint id counter restarts from 1 after a coordinator restart",
            Mutant::Flink31363EmptyTxnCommit => {
                "FLINK-31363: empty transactions are committed like others, a fatal error retried forever"
            }
            Mutant::DeleteStateEarly => {
                "the previous checkpoint is deleted before the next one's completion record is durable"
            }
            Mutant::CompleteBeforeAllAcks => {
                "the coordinator completes a checkpoint one acknowledgement early: an engine assertion fires"
            }
            Mutant::RelaxedAttemptFence => {
                "the broker accepts a producer init from an older job attempt (epochs fence, attempts do not)"
            }
            Mutant::CommitRetryNewSession => {
                "a commit that timed out is retried under a new producer session, aborting its transaction"
            }
            Mutant::SkewedTxnTimeout => "the broker measures transaction ages on its wall clock, which a step moves",
            Mutant::RetryWithoutBackoff => "a failed sink recovery is retried every 100 ms, with no backoff and no jitter",
            Mutant::StarRocks105FlushOnClose => {
                "StarRocks/starrocks-connector-for-apache-flink#105: a sink cancelled by a job restart commits its open transaction in close"
            }
            Mutant::UpsertVersionOffByOne => {
                "the upsert table's version guard lets a write one version behind the stored one through \
                 (stored <= incoming + 1)"
            }
            Mutant::UpsertNoVersionGuard => "the upsert table has no version guard: an older replayed value overwrites a newer one",
            Mutant::Iceberg13547BatchKeepsFirst => {
                "apache/iceberg#13547: the upsert sink keeps the first record of a key in a batch, not the newest"
            }
            Mutant::Flink23473TxnAfterFinish => {
                "FLINK-23473: every sink begins one more transaction after the final checkpoint (after finish), never ended"
            }
            Mutant::PgNoRecoverCommit => {
                "the PostgreSQL sink takes restored pending transactions as committed (no COMMIT PREPARED)"
            }
            Mutant::AcceptRestartedSender => {
                "a chain takes data from a source restarted within its attempt by sequence number (records lost and twice)"
            }
            Mutant::ConfirmWithoutCommit => "the broker sink confirms a commit on notification without sending it",
            Mutant::ZombieAppendAccepted => {
                "the broker takes a fenced producer's append into the id's current transaction (its events look normal)"
            }
            Mutant::PgNoFence => {
                "the PostgreSQL sink does not end earlier attempts' sessions before recovery (a zombie's PREPARE lingers)"
            }
            Mutant::Kafka9666EpochBumpOnFailedWrite => {
                "KAFKA-9666: a failed log write rolls the broker back but keeps its in-memory epoch bumps"
            }
            Mutant::Kafka12671HangingTxn => {
                "KAFKA-12671: an append delivered after its transaction ended reopens it, and no one ends it"
            }
            Mutant::IntervalCostFromLastAck => {
                "the adaptive interval measures checkpoint cost from the last acknowledgement, not the trigger"
            }
            Mutant::Flink23854LingeringGap => {
                "FLINK-23854: recovery probes pooled transactional ids upwards and stops at the first gap"
            }
            Mutant::Flink23854DownscaleOrphans => {
                "FLINK-23854: after a downscale, no survivor aborts what the removed subtasks left open"
            }
            Mutant::Flink40626RecommitReusedId => {
                "FLINK-40626: a restored pre-commit whose pooled id was reused is committed under the id's newer epoch"
            }
            Mutant::Flink7268AsyncDiscardRacesRestart => {
                "FLINK-7268: a delete in flight across a job restart uncounts shared files in the new registry"
            }
            Mutant::Flink26985RestoredSharedStateDiscarded => {
                "FLINK-26985: the restored checkpoint's shared files are deleted when it is subsumed"
            }
            Mutant::Flink7783RecoverDropsUnreadableCheckpoint => {
                "FLINK-7783: store recovery drops a checkpoint it cannot read, with shared files others need"
            }
        }
    }

    /// The check expected to catch this bug (an id of the simulator's check
    /// table, e.g. "P1"); the run that detects it reports this check.
    pub fn expected_check(self) -> &'static str {
        match self {
            Mutant::Canary => "P1",
            Mutant::CommitOnPrecommit => "P2",
            Mutant::NoRecommitOnRecovery => "P1",
            Mutant::NonIdempotentRecommit => "P1",
            Mutant::SubsumedNotifyError => "P1",
            Mutant::NotifyCommitsOnlyExact => "P1",
            // It restores from a checkpoint that never completed: P10 names
            // that in every detecting run (P2 only when output diverges).
            Mutant::RestoreWithoutCompletionRecord => "P10",
            Mutant::OffsetsFromOtherCheckpoint => "P10",
            Mutant::SkipAlignment => "P2",
            Mutant::AckBeforeDurable => "P1",
            Mutant::NoEpochBump => "P1",
            Mutant::NoAbortLingering => "P1",
            Mutant::ShortTxnTimeout => "P1",
            Mutant::CounterReset => "P4",
            Mutant::Flink31363EmptyTxnCommit => "P11",
            Mutant::DeleteStateEarly => "P1",
            Mutant::CompleteBeforeAllAcks => "panic",
            Mutant::RelaxedAttemptFence => "P9",
            Mutant::CommitRetryNewSession => "P1",
            Mutant::SkewedTxnTimeout => "P1",
            Mutant::Flink23473TxnAfterFinish => "P13",
            Mutant::PgNoRecoverCommit => "P1",
            Mutant::AcceptRestartedSender => "P1",
            // The sink's confirmation is not a commit: P7 judges from the
            // system's commits and the final read.
            Mutant::ConfirmWithoutCommit => "P7",
            // The broker's events show a normal append: only the lineage of
            // the visible records tells the zombie's from the owner's.
            Mutant::ZombieAppendAccepted => "P14",
            // The zombie's prepared transaction is what the server shows
            // open at the end.
            Mutant::PgNoFence => "P8",
            // An init answered with an epoch the log never issued: P4 sees
            // the skipped epochs (exhausting the bound takes longer).
            Mutant::Kafka9666EpochBumpOnFailedWrite => "P4",
            // The hanging transaction is open at the end (40 of 42
            // detections under `late`); when the job committed more on its
            // partition, that never becomes visible either (P1).
            Mutant::Kafka12671HangingTxn => "P8",
            // Intervals far below ten times the checkpoints' duration.
            Mutant::IntervalCostFromLastAck => "P15",
            // The transaction left open pins the last stable offset.
            Mutant::Flink23854LingeringGap => "P1",
            // The orphan stays open after the job finished (and, on the
            // broker, holds its partitions' output behind it: P1).
            Mutant::Flink23854DownscaleOrphans => "P8",
            // An unfinished checkpoint's records become visible.
            Mutant::Flink40626RecommitReusedId => "P3",
            // A retained checkpoint refers to a deleted file: P16 sees the
            // delete when it happens (P10/P1 only if the job restores it).
            Mutant::Flink7268AsyncDiscardRacesRestart => "P16",
            Mutant::Flink26985RestoredSharedStateDiscarded => "P16",
            Mutant::Flink7783RecoverDropsUnreadableCheckpoint => "P16",
            Mutant::RetryWithoutBackoff => "P21",
            Mutant::StarRocks105FlushOnClose => "P1",
            // A reader sees a key's version go back (the final table is
            // right again once the replay reaches the newest version).
            Mutant::UpsertVersionOffByOne => "P18",
            Mutant::Iceberg13547BatchKeepsFirst => "P17",
            Mutant::UpsertNoVersionGuard => "P18",
        }
    }

    /// The fault profile `mutants` hunts this bug with: `chaos`, `zombie`
    /// for the bugs only stalled processes and late requests expose,
    /// `silent-restart` for the one that needs an attempt deployed twice to
    /// a worker, `system-pause` for a zombie's statement queued behind a
    /// frozen database server, or `adaptive` for the adaptive interval's
    /// (no other profile switches it on).
    /// `clock`, `late` or `broker-disk` for the bugs that need one kind of
    /// fault more often than a broad mix draws it. A museum bug (one with a
    /// [`Mutant::tracker`]) hunted with `zombie`, which is the PR gate's
    /// profile (`ci/gate.toml`), is hunted in the gate's order (every
    /// scenario on each seed); whatever its hunting profile, a test holds
    /// that the gate catches every museum bug within its seeds.
    pub fn hunt_profile(self) -> &'static str {
        match self {
            Mutant::RelaxedAttemptFence => "zombie",
            Mutant::Flink23854LingeringGap | Mutant::Flink40626RecommitReusedId => "zombie",
            Mutant::ZombieAppendAccepted | Mutant::Kafka12671HangingTxn => "late",
            Mutant::Kafka9666EpochBumpOnFailedWrite | Mutant::RetryWithoutBackoff => "broker-disk",
            Mutant::SkewedTxnTimeout => "clock",
            Mutant::Flink7268AsyncDiscardRacesRestart
            | Mutant::Flink26985RestoredSharedStateDiscarded
            | Mutant::Flink7783RecoverDropsUnreadableCheckpoint => "zombie",
            Mutant::PgNoFence => "system-pause",
            Mutant::AcceptRestartedSender => "silent-restart",
            Mutant::IntervalCostFromLastAck => "adaptive",
            Mutant::Flink23854DownscaleOrphans => "rescale",
            _ => "chaos",
        }
    }

    /// The public tracker id of the real bug this one reproduces (the
    /// museum of issue 25), if it is one.
    pub fn tracker(self) -> Option<&'static str> {
        match self {
            Mutant::Kafka9666EpochBumpOnFailedWrite => Some("KAFKA-9666"),
            Mutant::Kafka12671HangingTxn => Some("KAFKA-12671"),
            Mutant::Flink23854LingeringGap => Some("FLINK-23854"),
            Mutant::Flink23854DownscaleOrphans => Some("FLINK-23854"),
            Mutant::Flink40626RecommitReusedId => Some("FLINK-40626"),
            Mutant::Flink7268AsyncDiscardRacesRestart => Some("FLINK-7268"),
            Mutant::Flink26985RestoredSharedStateDiscarded => Some("FLINK-26985"),
            Mutant::Flink7783RecoverDropsUnreadableCheckpoint => Some("FLINK-7783"),
            Mutant::StarRocks105FlushOnClose => Some("StarRocks/starrocks-connector-for-apache-flink#105"),
            Mutant::Iceberg13547BatchKeepsFirst => Some("apache/iceberg#13547"),
            Mutant::Flink23473TxnAfterFinish => Some("FLINK-23473"),
            Mutant::Flink31363EmptyTxnCommit => Some("FLINK-31363"),
            _ => None,
        }
    }

    /// The story of a museum bug (`mutants --story NAME`): what broke, in
    /// which system, why, and how it is planted here; else the one-line
    /// description.
    pub fn story(self) -> &'static str {
        match self {
            Mutant::Kafka9666EpochBumpOnFailedWrite => {
                "Kafka's transaction coordinator fenced a producer (InitProducerId) by bumping its epoch in \
                 the in-memory metadata cache and then writing the fence to the transaction log. When the log \
                 could not be written (fewer in-sync replicas than min.insync.replicas), the write was rolled \
                 back but the cached epoch was not, so every retried InitProducerId bumped it again; under a \
                 long log outage the 16-bit epoch ran out and the producer could never be initialized again \
                 (the fix: no further bump once a fence failed to be written). Here the broker rolls its state back \
                 to the durable log after a failed write (the legal behaviour: epochs advance only by durable \
                 entries) and the planted branch keeps the epochs of the rolled-back state: a retried init is \
                 answered with an epoch the log skipped. Check P4 sees the skipped epochs; the bound \
                 (JobConfig::max_producer_epoch, 32767) is exhausted only in the unit test, with a bound of 4."
            }
            Mutant::Kafka12671HangingTxn => {
                "In Kafka a produce request of a transactional producer could reach a partition after the \
                 coordinator had already written the transaction's commit or abort marker there (a retried or \
                 delayed request). The partition took it as the start of a new transaction, which the \
                 coordinator, having completed the transaction, never knew about, never timed out and never \
                 ended: the partition's last stable offset stayed behind it forever and read_committed \
                 consumers stalled (a hanging transaction; KIP-890 makes the partition verify the transaction \
                 with the coordinator). Here the broker's check that an append's transaction has not ended \
                 is skipped: an append held back on the network (the gate's late deliveries) and delivered \
                 after its transaction committed reopens it; what the job commits behind it in that partition \
                 never becomes visible (P1: records lost at the end; P8: a transaction still open after the \
                 job finished), and a recovery's idempotent re-commit commits the late records a second time \
                 (P1: duplicates)."
            }
            Mutant::Flink23854LingeringGap => {
                "Flink's KafkaSink (FLIP-143, 1.14) named its transactions {prefix}-{subtask}-{counter} and, on \
                 recovery, found the transactions a failed attempt had left open by initializing ids upwards \
                 from the restored one until it met an id that had never been used. But aborted checkpoints \
                 leave ids unused (gaps): the probe stopped at the first gap, and a transaction open above it \
                 was never aborted; its records held the partition's last stable offset until the broker's \
                 transaction timeout, stalling read_committed consumers (the fix: fill the gaps, abort every \
                 id after the restored checkpoint). Here the sink's pool of transactional ids \
                 (JobConfig::pooled_txn_ids) leaves gaps the same way (an id committed, the restored open \
                 transaction's id fenced), and the planted branch probes from the first id and stops at the \
                 first one without an open transaction: a transaction of the failed attempt left open above \
                 it pins the output (P1: records missing at the end; P8: a transaction open after the job \
                 finished)."
            }
            Mutant::Flink23854DownscaleOrphans => {
                "The same Flink issue's second half: when a job restored with fewer KafkaSink subtasks, the \
                 committables of the removed subtasks were redistributed and committed, but each writer \
                 aborted lingering transactions only under its own subtask's transactional-id prefix. A \
                 transaction a removed subtask had open at the crash (or began after the restored checkpoint) \
                 was never aborted, and held its partitions' last stable offset until the broker's \
                 transaction timeout (the fix, apache/flink#17019: subtask i also aborts under the prefixes of \
                 every old subtask j with j mod the new parallelism = i). Here a rescale (profile `rescale`) \
                 restores a checkpoint with fewer subtasks; each survivor adopts the removed subtasks \
                 (types::adopter_of) and the planted branch keeps only their re-commits: their open and \
                 lingering transactions stay open, and the output behind them never becomes visible (P1: \
                 records missing at the end; P8: a transaction open after the job finished)."
            }
            Mutant::Flink40626RecommitReusedId => {
                "With Flink's KafkaSink pooling transactional ids (TransactionNamingStrategy.POOLING), an id \
                 is reused for a later checkpoint once its transaction committed, and the reuse bumps its \
                 epoch. A recovery from an earlier checkpoint still lists the id as pre-committed: the \
                 committer's re-commit under the snapshotted epoch is fenced, and the newer transaction \
                 under the id, the failed attempt's for a checkpoint that never completed, is skipped by the \
                 abort of lingering transactions (FLINK-40626; FLINK-40703 added the recovery test). Here \
                 the broker knows the committed instance (id, epoch), so the correct re-commit succeeds and \
                 recovery then aborts every open id; the planted branch resumes the id by name instead of by \
                 instance (it looks the id up, finds it open under a newer epoch and commits that): the \
                 failed attempt's records of an unfinished checkpoint become visible (P3), and the replay \
                 writes them again (P1: duplicates). (Left open instead, as filed, the orphan is harmless \
                 here: the pool hands the freed id out at the next begin, whose init aborts it.)"
            }
            Mutant::Flink7268AsyncDiscardRacesRestart => {
                "Flink's incremental RocksDB checkpoints refer to the SST files of earlier checkpoints, and \
                 the job manager's SharedStateRegistry counts how many retained checkpoints refer to each file. \
                 The ZooKeeper completed-checkpoint store discarded subsumed checkpoints asynchronously, and \
                 after a restart the registry was kept and its counts re-derived from the recovered store. A \
                 checkpoint whose discard was still pending at the restart did not contribute to the new \
                 counts, but its discard, running later, still unregistered its files: counts fell below the \
                 number of retained checkpoints referring to a file, reached zero early, and files that \
                 retained checkpoints needed were deleted (data loss at the next restore; fixed by scoping the \
                 registry per (re)start so old deletes cannot touch it). Here the coordinator rebuilds its \
                 registry from the retained checkpoints at every job restart, and the planted branch lets the \
                 last subsumed checkpoint's discard land in the rebuilt registry: its files are uncounted a \
                 second time. Check P16 sees a retained checkpoint's file deleted."
            }
            Mutant::Flink26985RestoredSharedStateDiscarded => {
                "In Flink 1.15's LEGACY restore mode the shared state of the checkpoint a job was restored from \
                 (created by an earlier run, not registered by this one) was discarded when a newer checkpoint \
                 subsumed it, regardless of the newer incremental checkpoints that referred to the same files: \
                 a rework of the SharedStateRegistry (FLINK-24611) had dropped the reference count that kept \
                 the initial checkpoint's entries alive (the fix: remember the highest restored checkpoint and \
                 never discard entries it created). Here the planted branch deletes every file of the \
                 checkpoint the attempt restored from when it is discarded, bypassing the registry: the next \
                 checkpoints of the restored chains refer to its unchanged files. Check P16 sees a retained \
                 checkpoint's file deleted."
            }
            Mutant::Flink7783RecoverDropsUnreadableCheckpoint => {
                "Flink's ZooKeeperCompletedCheckpointStore.recover() read every retained checkpoint back from \
                 ZooKeeper after a job manager failover and removed (and discarded) those it could not read, a \
                 hardening for corrupt entries (FLINK-5940). With incremental checkpoints a dropped checkpoint's \
                 discard deleted shared files that the newer retained checkpoints still referred to, and a \
                 transient read error was enough (the fix: never remove checkpoints in recover; fail the \
                 recovery instead). Here a restarted coordinator's recovery, under the planted branch, takes \
                 every retained checkpoint but the newest as unreadable (the simulator makes the transient \
                 error certain), drops it from its record and discards it as a full checkpoint was discarded: \
                 every file it refers to. Only runs whose coordinator restarts with two retained checkpoints \
                 reach it. Check P16 sees the newest retained checkpoint's files deleted."
            }
            Mutant::StarRocks105FlushOnClose => {
                "StarRocks' connector for Flink buffered rows and loaded them into StarRocks at every \
                 checkpoint (its exactly-once mode), and its close() flushed whatever was still buffered. \
                 Flink calls close() when it cancels a task for a job restart too, not only at the end of \
                 the input: the rows since the last checkpoint were loaded, the job rolled back to that \
                 checkpoint and produced them again, and they were in StarRocks twice (the fix, PR 105 of \
                 StarRocks/starrocks-connector-for-apache-flink: no flush in close under exactly-once). Here \
                 a worker whose attempt is replaced while it lives on closes its chain's sink \
                 (SinkTask::close, as Flink's TwoPhaseCommitSinkFunction.close does: the open transaction \
                 is aborted); the planted branch pre-commits and commits the open transaction instead. Its \
                 records become visible before any checkpoint covers them (P3) and the replay writes them \
                 again (P1: duplicates)."
            }
            Mutant::Iceberg13547BatchKeepsFirst => {
                "Apache Iceberg's Kafka Connect sink can write in upsert mode: a record replaces the row of \
                 its identifier field (an equality delete and an insert). Records of the same identifier \
                 that arrived within one commit interval did not respect their order: the first one \
                 overwrote the later ones, whatever their timestamps, so a table kept a value that had \
                 already been replaced upstream (issue 13547 of apache/iceberg, Iceberg 1.9.1). Here the \
                 upsert sink hands the table each batch whole, in order, and the table's version guard keeps \
                 the newest; the planted branch collapses a batch to the first record of each key, as the \
                 connector did, so a key updated twice in one batch keeps the older value, and when that \
                 batch holds the key's last update the final table is wrong (P17)."
            }
            Mutant::Flink23473TxnAfterFinish => {
                "Flink's TwoPhaseCommitSinkFunction began the next transaction in every snapshotState, also \
                 after finish() had been called at the end of a bounded input, once checkpoints after tasks \
                 finished became possible (FLIP-147): the transactions begun for the final checkpoints were \
                 never pre-committed, committed or aborted, so the task finished with one or several \
                 transactions open. With Kafka an open transaction pins its partitions' last stable offset: \
                 read_committed consumers stall behind it until the broker's transaction timeout aborts it \
                 (FLINK-23473, fixed in 1.14 by an empty transaction holder after finish). Here the sink \
                 task begins no transaction after the end of input or after restoring a finished state; \
                 the planted branch begins one at every barrier after the end of input, as the base class \
                 did. The job reports finished with a transaction open: check P13 (finish) judges it from \
                 the history, and P8 when the broker still shows it open at the final read."
            }
            Mutant::Flink31363EmptyTxnCommit => {
                "Flink's KafkaSink (FLIP-143) handed the committer a committable for every checkpoint's \
                 transaction, the empty ones too. Kafka starts a transaction on the broker lazily, with its \
                 first record, so a checkpoint that wrote nothing left a transaction the broker never knew; \
                 the committer resumed it from the committable (producer id and epoch) with the producer's \
                 transaction-started flag set and sent EndTxn, and the broker refused it \
                 (InvalidTxnStateException). The commit failure failed the job, and the restored checkpoint \
                 held the same committable, so every recovery failed again: the job never got past an idle \
                 checkpoint (FLINK-31363, fixed in flink-connector-kafka by not checkpointing a committable \
                 for an empty transaction). Here the broker also knows a transaction only from its first \
                 append, and the correct sink commits an empty one by doing nothing; the planted branch \
                 sends the commit and takes the refusal as a failure of the commit. The job restarts again and \
                 again: check P11 (liveness) sees it never finish after the faults heal, P1 the output it \
                 never committed, and P21 the recoveries retried without end."
            }
            m => m.description(),
        }
    }

    pub fn parse(s: &str) -> Option<Mutant> {
        match s {
            // The name it had before it was traced to its tracker.
            "txn-left-open-at-end" => Some(Mutant::Flink23473TxnAfterFinish),
            "empty-txn-commit" => Some(Mutant::Flink31363EmptyTxnCommit),
            _ => Mutant::ALL.iter().copied().find(|m| m.name() == s),
        }
    }
}

/// One phase of the input's pace (`JobConfig::source_phases`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcePhase {
    /// How long the phase lasts, in ms of the source's clock.
    pub ms: u64,
    /// A source fetches at most once per `every_ms` (`source_batch`
    /// records); 0: as fast as its channels' windows let it (a burst).
    #[serde(default)]
    pub every_ms: u64,
    /// No input arrives during the phase: the source fetches nothing
    /// (it still takes barriers and acknowledgements).
    #[serde(default)]
    pub idle: bool,
}

impl SourcePhase {
    /// The phase in force at `t_ms` of a cycle of `phases` (repeated from
    /// 0); `None` without phases (or with phases of no length).
    pub fn at(phases: &[SourcePhase], t_ms: u64) -> Option<SourcePhase> {
        let cycle: u64 = phases.iter().map(|p| p.ms).sum();
        if cycle == 0 {
            return None;
        }
        let mut t = t_ms % cycle;
        for p in phases {
            if t < p.ms {
                return Some(*p);
            }
            t -= p.ms;
        }
        unreachable!("t mod the cycle falls in a phase")
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobConfig {
    pub job_name: String,
    /// Number of workers; each runs one source and one operator+sink chain.
    /// A rescale runs the job with fewer of them (`JobConfig::rescaled`),
    /// never more: this is also the number of worker nodes.
    pub parallelism: u32,
    pub mode: DeliveryMode,
    pub checkpoint_interval_ms: u64,
    pub checkpoint_timeout_ms: u64,
    pub max_concurrent_checkpoints: u32,
    /// Consecutive failed checkpoints tolerated before a global restart.
    pub tolerable_failures: u32,
    pub heartbeat_interval_ms: u64,
    pub heartbeat_timeout_ms: u64,
    /// Time to wait for one RPC reply before retrying.
    pub rpc_timeout_ms: u64,
    /// Retries of one RPC before the caller gives up (task failure).
    pub rpc_retries: u32,
    /// Records a source fetches per poll.
    pub source_batch: u32,
    /// Pause between two source polls (paces the job over simulated time).
    pub source_poll_ms: u64,
    /// A fixed source rate: each source fetches at most once per this
    /// interval (`source_batch` records per interval), like a topic fed at
    /// a steady rate whose records the network flushes in buffers every
    /// interval (Flink's buffer timeout). 0 (the default): a source reads as
    /// fast as its channels' windows let it, polling every `source_poll_ms`
    /// and again on every acknowledgement.
    #[serde(default)]
    pub source_interval_ms: u64,
    /// The input's phases, repeated in a cycle on each source's clock: a
    /// burst (read as fast as the windows let it), a paced stretch (one
    /// fetch per `every_ms`) or an idle stretch (no input arrives). Empty
    /// (the default): no phases, `source_interval_ms` paces the sources.
    /// When set it replaces `source_interval_ms`. What an adaptive interval
    /// (`adaptive_interval`) has to adapt to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_phases: Vec<SourcePhase>,
    /// Broker: transactions older than this are aborted.
    pub txn_timeout_ms: u64,
    /// Completed checkpoints kept in storage.
    pub retained_checkpoints: usize,
    /// Incremental checkpoints (engine/src/shared_state.rs): a chain's
    /// keyed state is written as immutable shared files, each checkpoint
    /// writing only the changed ones and referring to earlier ones; the
    /// coordinator counts references over the retained checkpoints and
    /// deletes a file only when none refers to it. Off: one blob per task
    /// and checkpoint, as before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incremental_checkpoints: bool,
    /// A commit that finds its transaction gone (timed out or fenced at the
    /// server) fails the job by default. Set this to continue instead, with
    /// the loss recorded (`CommitFailed`) and counted, but only once
    /// `txn_timeout_ms` has passed since the transaction began (its start
    /// is kept in the checkpoint); a loss before that fails the task, and
    /// recovery retries it (Flink's `ignoreFailuresAfterTransactionTimeout`).
    #[serde(default)]
    pub ignore_lost_commits: bool,
    /// Consecutive failed tries of a sink recovery (re-commits, aborts,
    /// fencing) before the job fails instead of retrying forever.
    #[serde(default = "default_recovery_budget")]
    pub sink_recovery_budget: u32,
    /// The run of the job. Attempts order the executions within a run; a
    /// new run of the same job (fresh coordinator state, attempts from 1
    /// again: a redeploy without the old checkpoints) is given a larger run
    /// (a deployment counter or timestamp) and takes over the sink's
    /// transactional ids, fencing whatever an older run left.
    #[serde(default)]
    pub run: u64,
    /// Output partitions of the sink's topic; 0: one per sink subtask
    /// (`parallelism`). Records go to `Pipeline::output_partition`.
    #[serde(default)]
    pub output_partitions: u32,
    /// Pick the checkpoint interval from what the coordinator observes,
    /// within these bounds (`interval.rs`), starting from
    /// `checkpoint_interval_ms`; `None`: a fixed interval. On by default
    /// (`AdaptiveInterval::default`: 100 ms to 2 s, about 1,000 records
    /// replayed after a crash): the usual 500 ms to 10 s at the engine's
    /// timescale. The simulator's runs take the seed's fixed interval
    /// unless their profile asks for the adaptive one
    /// (`exactsim_model::run::derive_config`), so both are exercised.
    #[serde(default)]
    pub adaptive_interval: Option<crate::interval::AdaptiveInterval>,
    /// Input partitions, one source task each; 0: one per worker
    /// (`parallelism`). Source `j` runs on worker `j % parallelism`.
    #[serde(default)]
    pub input_partitions: u32,
    /// The broker's bound on a transactional id's producer epoch (Kafka's
    /// epoch is a 16-bit short: 32767). An `InitProducer` that would take an
    /// id past it is refused (`Response::EpochExhausted`): the id cannot be
    /// fenced or written again, and its owner must use another. A timeout
    /// abort at the bound aborts without bumping (the expired transaction
    /// stays ended, so its producer is still refused). Epochs advance only by
    /// durable log entries, so a correct run never comes near it.
    #[serde(default = "default_max_producer_epoch")]
    pub max_producer_epoch: u64,
    /// The broker sink reuses the transactional ids of ended transactions
    /// (a pool per subtask, `txn_pool.rs`) instead of one per checkpoint.
    /// Off unless a profile asks (`txn_pool`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pooled_txn_ids: bool,
    /// The wait between two tries of a failing sink recovery: exponential
    /// with jitter drawn from the run's seed (`backoff.rs`; by default the
    /// usual 1 s doubling to 30 s, scaled like the engine's timeouts to
    /// 100 ms doubling to 3 s).
    #[serde(default)]
    pub retry_backoff: crate::backoff::BackoffPolicy,
    pub mutant: Option<Mutant>,
}

fn default_recovery_budget() -> u32 {
    50
}

/// Kafka's: `Short.MAX_VALUE`.
pub const DEFAULT_MAX_PRODUCER_EPOCH: u64 = 32_767;

fn default_max_producer_epoch() -> u64 {
    DEFAULT_MAX_PRODUCER_EPOCH
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            job_name: "job".into(),
            parallelism: 3,
            mode: DeliveryMode::ExactlyOnce,
            checkpoint_interval_ms: 100,
            checkpoint_timeout_ms: 1_000,
            max_concurrent_checkpoints: 1,
            tolerable_failures: 2,
            heartbeat_interval_ms: 50,
            heartbeat_timeout_ms: 400,
            rpc_timeout_ms: 100,
            rpc_retries: 5,
            source_batch: 16,
            source_poll_ms: 5,
            source_interval_ms: 0,
            source_phases: Vec::new(),
            txn_timeout_ms: 60_000,
            retained_checkpoints: 2,
            incremental_checkpoints: false,
            ignore_lost_commits: false,
            sink_recovery_budget: default_recovery_budget(),
            run: 0,
            output_partitions: 0,
            input_partitions: 0,
            adaptive_interval: Some(crate::interval::AdaptiveInterval::default()),
            max_producer_epoch: DEFAULT_MAX_PRODUCER_EPOCH,
            pooled_txn_ids: false,
            retry_backoff: crate::backoff::BackoffPolicy::default(),
            mutant: None,
        }
    }
}

impl JobConfig {
    pub fn mutant_is(&self, m: Mutant) -> bool {
        self.mutant == Some(m)
    }

    /// The number of input partitions, i.e. source tasks.
    pub fn input_partitions(&self) -> u32 {
        if self.input_partitions == 0 {
            self.parallelism
        } else {
            self.input_partitions
        }
    }

    /// The sources worker `w` runs.
    pub fn sources_of(&self, w: u32) -> Vec<u32> {
        (0..self.input_partitions()).filter(|j| j % self.parallelism.max(1) == w).collect()
    }

    /// The configuration of a deployment with `parallelism` chain subtasks
    /// (a rescaled job, `parallelism` at most this one's, which is also
    /// the number of worker nodes): the job's input and output partitions
    /// stay those of its submission, only the subtasks change. The same
    /// configuration when the parallelism is this one's.
    pub fn rescaled(&self, parallelism: u32) -> JobConfig {
        assert!(parallelism >= 1, "a job runs at least one subtask");
        assert!(parallelism <= self.parallelism, "a job is rescaled within its worker nodes");
        if parallelism == self.parallelism {
            return self.clone();
        }
        JobConfig {
            parallelism,
            input_partitions: self.input_partitions(),
            output_partitions: self.output_partitions(),
            ..self.clone()
        }
    }

    /// The number of output partitions (see `output_partitions`).
    pub fn output_partitions(&self) -> u32 {
        if self.output_partitions == 0 {
            self.parallelism
        } else {
            self.output_partitions
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_phases_repeat_in_a_cycle() {
        let burst = SourcePhase { ms: 100, every_ms: 0, idle: false };
        let slow = SourcePhase { ms: 200, every_ms: 20, idle: false };
        let idle = SourcePhase { ms: 300, every_ms: 0, idle: true };
        let phases = [burst, slow, idle];
        assert_eq!(SourcePhase::at(&[], 5), None);
        assert_eq!(SourcePhase::at(&[SourcePhase { ms: 0, every_ms: 0, idle: true }], 5), None);
        let at = |t| SourcePhase::at(&phases, t).unwrap();
        assert_eq!([at(0), at(99), at(100), at(299), at(300), at(599)], [burst, burst, slow, slow, idle, idle]);
        assert_eq!([at(600), at(700), at(6_000 + 450)], [burst, slow, idle]);
    }

    #[test]
    fn a_configuration_without_phases_serializes_as_before() {
        let json = serde_json::to_string(&JobConfig::default()).unwrap();
        assert!(!json.contains("source_phases"), "{json}");
        let back: JobConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, JobConfig::default());
    }

    #[test]
    fn a_mutant_renamed_after_its_tracker_keeps_its_old_name() {
        let m = Mutant::Flink23473TxnAfterFinish;
        assert_eq!(Mutant::parse("txn-left-open-at-end"), Some(m));
        assert_eq!(Mutant::parse(m.name()), Some(m));
        let old: Mutant = serde_json::from_str("\"txn-left-open-at-end\"").unwrap();
        assert_eq!(old, m);
        assert_eq!(Mutant::parse("empty-txn-commit"), Some(Mutant::Flink31363EmptyTxnCommit));
        let old: Mutant = serde_json::from_str("\"empty-txn-commit\"").unwrap();
        assert_eq!(old, Mutant::Flink31363EmptyTxnCommit);
        assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{}\"", m.name()));
    }
}
