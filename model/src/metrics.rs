//! Metrics as people run them: what an operator's dashboard shows of a
//! job (checkpoint duration and size, state size, records in and out,
//! source lag, restarts, retries, transactions pending, committed and
//! aborted, commit latency), folded from the engine's own events.
//!
//! One fold serves both backends. In simulation [`series`] samples it over
//! simulated time into the run report, and the HTML timeline plots it under
//! the fault bands. In real mode every engine process folds the events it
//! emits and serves them on loopback in Prometheus's text format (each
//! process sees its own share: the coordinator its checkpoints, a worker
//! its tasks; a query sums over processes).
//!
//! Nothing here judges a run: the checks read the history. These are the
//! figures an operator would watch (the health thresholds of checkpoint
//! time under a tenth of processing and fewer than ten retries a minute).

use crate::history::{Ev, Stamped};
use exactsim_engine::observe::Event;
use exactsim_engine::types::{CheckpointId, TaskId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The fold of one node's (or a whole run's) events so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    pub checkpoints_completed: u64,
    pub checkpoints_failed: u64,
    /// The last completed checkpoint's duration, trigger to completion.
    pub last_checkpoint_ms: u64,
    /// Summed durations of completed checkpoints.
    pub checkpoint_ms_total: u64,
    /// Bytes of state the last completed checkpoint stored.
    pub last_checkpoint_bytes: u64,
    /// Bytes of the newest snapshot of every task.
    pub state_bytes: u64,
    /// Input records the sources have passed (their newest offsets, summed).
    pub records_in: u64,
    /// Records in transactions confirmed committed (or appended plainly).
    pub records_out: u64,
    /// Job recoveries begun.
    pub restarts: u64,
    /// The last recovery's time, from its start to the job running again.
    pub last_recovery_ms: u64,
    /// Failed tasks and corrupt blob reads: what the job tries again (the
    /// run report's `retries`).
    pub retries: u64,
    pub txns_pending: u64,
    pub txns_committed: u64,
    pub txns_aborted: u64,
    /// Summed pre-commit-to-commit latencies and their count.
    pub commit_latency_ms_total: u64,
    pub commit_latency_count: u64,
    triggered_us: BTreeMap<CheckpointId, u64>,
    ckpt_bytes: BTreeMap<CheckpointId, u64>,
    task_bytes: BTreeMap<TaskId, u64>,
    source_offsets: BTreeMap<u32, u64>,
    precommitted: BTreeMap<(TaskId, CheckpointId), (u64, u64)>,
    recovering: BTreeMap<u64, u64>,
}

impl Metrics {
    /// Take one event, stamped `t_us`, into the fold.
    pub fn observe(&mut self, t_us: u64, ev: &Event) {
        match ev {
            Event::CheckpointTriggered { ckpt, .. } => {
                self.triggered_us.insert(*ckpt, t_us);
            }
            Event::CheckpointCompleted { ckpt, .. } => {
                self.checkpoints_completed += 1;
                if let Some(t0) = self.triggered_us.remove(ckpt) {
                    self.last_checkpoint_ms = t_us.saturating_sub(t0) / 1000;
                    self.checkpoint_ms_total += self.last_checkpoint_ms;
                }
                self.last_checkpoint_bytes = self.ckpt_bytes.remove(ckpt).unwrap_or(0);
                self.triggered_us.retain(|c, _| c > ckpt);
                self.ckpt_bytes.retain(|c, _| c > ckpt);
            }
            Event::CheckpointFailed { ckpt, .. } => {
                self.checkpoints_failed += 1;
                self.triggered_us.remove(ckpt);
                self.ckpt_bytes.remove(ckpt);
            }
            Event::SnapshotStored { task, ckpt, bytes, .. } => {
                *self.ckpt_bytes.entry(*ckpt).or_insert(0) += bytes;
                self.task_bytes.insert(*task, *bytes);
                self.state_bytes = self.task_bytes.values().sum();
            }
            Event::SourceBarrier { source, offset, .. } | Event::SourceEnded { source, offset, .. } => {
                let o = self.source_offsets.entry(*source).or_insert(0);
                *o = (*o).max(*offset);
                self.records_in = self.source_offsets.values().sum();
            }
            // Attempt 1 is the job's start, not a restart.
            Event::RecoveryStarted { attempt, .. } if *attempt > 1 => {
                self.restarts += 1;
                self.recovering.insert(*attempt, t_us);
            }
            Event::JobRunning { attempt } => {
                if let Some(t0) = self.recovering.remove(attempt) {
                    self.last_recovery_ms = t_us.saturating_sub(t0) / 1000;
                }
            }
            // A restored task's pending transactions are its checkpoint's,
            // committed by its recovery: what it pre-committed before is
            // no longer waiting on a notification.
            Event::TaskRestored { task, .. } => {
                self.precommitted.retain(|(t, _), _| t != task);
                self.txns_pending = self.precommitted.len() as u64;
            }
            // What the run report counts as retries: a task failed (and is
            // restarted), a blob read back corrupt (and is read again).
            Event::TaskFailed { .. } | Event::BlobCorrupt { .. } => self.retries += 1,
            Event::PreCommitted { task, ckpt, records, .. } => {
                self.precommitted.insert((*task, *ckpt), (t_us, *records));
                self.txns_pending = self.precommitted.len() as u64;
            }
            Event::CommitConfirmed { task, ckpt, .. } => {
                if let Some((t0, records)) = self.precommitted.remove(&(*task, *ckpt)) {
                    self.commit_latency_ms_total += t_us.saturating_sub(t0) / 1000;
                    self.commit_latency_count += 1;
                    self.records_out += records;
                }
                self.txns_committed += 1;
                self.txns_pending = self.precommitted.len() as u64;
            }
            Event::SinkAborted { .. } => self.txns_aborted += 1,
            Event::PlainAppended { records, .. } => self.records_out += records,
            _ => {}
        }
    }

    /// Every metric as (name, help, kind, value), in the names Prometheus
    /// is served (`exactsim_` prefixed, units last; a counter's samples
    /// end in `_total`, so no name ends in a suffix OpenMetrics reserves,
    /// such as `_sum` or `_count`).
    pub fn families(&self) -> Vec<(&'static str, &'static str, Kind, u64)> {
        use Kind::{Counter, Gauge};
        vec![
            ("checkpoints_completed", "checkpoints completed", Counter, self.checkpoints_completed),
            ("checkpoints_failed", "checkpoints failed or expired", Counter, self.checkpoints_failed),
            (
                "checkpoint_duration_ms",
                "the last completed checkpoint, trigger to completion",
                Gauge,
                self.last_checkpoint_ms,
            ),
            ("checkpoint_time_ms", "summed durations of completed checkpoints", Counter, self.checkpoint_ms_total),
            (
                "checkpoint_size_bytes",
                "state bytes the last completed checkpoint stored",
                Gauge,
                self.last_checkpoint_bytes,
            ),
            ("state_size_bytes", "bytes of every task's newest snapshot", Gauge, self.state_bytes),
            ("records_in", "input records the sources passed", Counter, self.records_in),
            ("records_out", "records in committed transactions or plain appends", Counter, self.records_out),
            ("restarts", "job recoveries begun", Counter, self.restarts),
            ("recovery_duration_ms", "the last recovery, start to running again", Gauge, self.last_recovery_ms),
            ("retries", "failed tasks and corrupt blob reads (tried again)", Counter, self.retries),
            ("txns_pending", "pre-committed transactions not yet confirmed committed", Gauge, self.txns_pending),
            ("txns_committed", "transactions confirmed committed", Counter, self.txns_committed),
            ("txns_aborted", "transactions aborted by the sink", Counter, self.txns_aborted),
            ("commit_latency_ms", "summed pre-commit to commit latencies", Counter, self.commit_latency_ms_total),
            ("commits_timed", "commits whose latency is summed", Counter, self.commit_latency_count),
        ]
    }
}

/// A Prometheus metric type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// One sample of a run's metrics over simulated time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub t_ms: u64,
    /// Input records passed per second over the step before.
    pub records_in_per_s: u64,
    /// The last completed checkpoint's duration.
    pub checkpoint_ms: u64,
    /// Input records not yet passed by the sources (source lag).
    pub backlog_records: u64,
    pub records_out: u64,
    pub restarts: u64,
    pub retries: u64,
    pub txns_pending: u64,
    pub state_bytes: u64,
}

/// The run's metrics sampled every `step_ms` of simulated time, from its
/// events (`input_records`: the whole input, for the backlog).
pub fn series(events: &[Stamped], input_records: u64, step_ms: u64, end_ms: u64) -> Vec<Sample> {
    assert!(step_ms > 0);
    let mut m = Metrics::default();
    let mut out = Vec::new();
    let mut it = events.iter().peekable();
    let mut last_in = 0;
    let mut t_ms = 0;
    while t_ms <= end_ms {
        while let Some(s) = it.next_if(|s| s.t_us <= t_ms * 1000) {
            if let Ev::Engine(e) = &s.ev {
                m.observe(s.t_us, e);
            }
        }
        out.push(Sample {
            t_ms,
            records_in_per_s: m.records_in.saturating_sub(last_in) * 1000 / step_ms,
            checkpoint_ms: m.last_checkpoint_ms,
            backlog_records: input_records.saturating_sub(m.records_in),
            records_out: m.records_out,
            restarts: m.restarts,
            retries: m.retries,
            txns_pending: m.txns_pending,
            state_bytes: m.state_bytes,
        });
        last_in = m.records_in;
        t_ms += step_ms;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t_ms: u64, e: Event) -> Stamped {
        Stamped { t_us: t_ms * 1000, node: "n".into(), ev: Ev::Engine(e) }
    }

    #[test]
    fn a_checkpoint_is_timed_and_sized_and_a_commit_counted() {
        let mut m = Metrics::default();
        m.observe(1_000, &Event::CheckpointTriggered { ckpt: 1, attempt: 1 });
        m.observe(2_000, &Event::SnapshotStored { attempt: 1, task: TaskId::Chain(0), ckpt: 1, bytes: 40 });
        m.observe(2_500, &Event::SnapshotStored { attempt: 1, task: TaskId::Chain(1), ckpt: 1, bytes: 60 });
        m.observe(
            3_000,
            &Event::PreCommitted {
                task: TaskId::Chain(0),
                ckpt: 1,
                txn: "t".into(),
                epoch: 1,
                records: 5,
                out_ids: vec![],
                writer: Default::default(),
            },
        );
        assert_eq!(m.txns_pending, 1);
        m.observe(21_000, &Event::CheckpointCompleted { ckpt: 1, offsets: vec![], attempt: 1, finished: false });
        assert_eq!((m.checkpoints_completed, m.last_checkpoint_ms, m.last_checkpoint_bytes), (1, 20, 100));
        assert_eq!(m.state_bytes, 100);
        m.observe(33_000, &Event::CommitConfirmed { task: TaskId::Chain(0), ckpt: 1, txn: "t".into(), epoch: 1 });
        assert_eq!((m.txns_pending, m.txns_committed, m.records_out), (0, 1, 5));
        assert_eq!((m.commit_latency_ms_total, m.commit_latency_count), (30, 1));
        assert_eq!(m.families().len(), 16);
    }

    #[test]
    fn the_series_samples_throughput_and_backlog_over_time() {
        let evs = vec![
            at(50, Event::SourceBarrier { attempt: 1, source: 0, ckpt: 1, offset: 10 }),
            at(150, Event::SourceBarrier { attempt: 1, source: 1, ckpt: 1, offset: 30 }),
            at(220, Event::RecoveryStarted { attempt: 1, from: None, reason: "start".into() }),
            at(250, Event::RecoveryStarted { attempt: 2, from: Some(1), reason: "test".into() }),
        ];
        let s = series(&evs, 100, 100, 300);
        assert_eq!(s.iter().map(|x| x.t_ms).collect::<Vec<_>>(), vec![0, 100, 200, 300]);
        assert_eq!(s.iter().map(|x| x.backlog_records).collect::<Vec<_>>(), vec![100, 90, 60, 60]);
        assert_eq!(s[1].records_in_per_s, 100);
        assert_eq!(s[2].records_in_per_s, 300);
        assert_eq!(s[3].restarts, 1);
        let mut m = Metrics::default();
        m.observe(1_000, &Event::RecoveryStarted { attempt: 2, from: None, reason: "r".into() });
        m.observe(48_000, &Event::JobRunning { attempt: 2 });
        assert_eq!(m.last_recovery_ms, 47);
    }
}
