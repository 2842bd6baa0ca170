//! The checkpoint coordinator (Flink's job manager) as a plain state
//! machine, [`Coordinator`], and the thin node loop [`run_coordinator`].
//!
//! It triggers checkpoints at the sources on an interval (bounded
//! concurrency, timeout, tolerable failures), collects acknowledgements,
//! makes a checkpoint *completed* by one atomic durable record (its metadata
//! file), notifies the sinks, detects failures (heartbeats, task failures,
//! restarted workers) and restarts the whole job from the latest completed
//! checkpoint. Checkpoint ids and attempts are persisted before use, so they
//! strictly increase across coordinator restarts.

use crate::codec;
use crate::config::{JobConfig, Mutant};
use crate::interval::{Completion, IntervalController};
use crate::observe::{Event, FaultPoint, Reach};
use crate::proto::{Msg, RestorePlan};
use crate::shared_state::SharedRegistry;
use crate::types::{Attempt, CheckpointId, TaskId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

mod node;
pub use node::{run_coordinator, run_identity, CoordinatorNode, TICK_MS};

pub const META: &str = "coordinator.meta";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletedCkpt {
    pub id: CheckpointId,
    pub blobs: BTreeMap<TaskId, String>,
    pub offsets: Vec<u64>,
    pub finished: bool,
}

/// The coordinator's durable state: one atomic record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CoordMeta {
    pub next_ckpt: CheckpointId,
    pub attempt: Attempt,
    /// Completed checkpoints, oldest first.
    pub completed: Vec<CompletedCkpt>,
    /// Incremental checkpoints: the shared files each retained checkpoint
    /// refers to. Part of the durable record only with
    /// `incremental_checkpoints` ([`encode_meta`]): a full-snapshot job's
    /// record is byte for byte what it was.
    #[serde(skip)]
    pub shared: BTreeMap<CheckpointId, Vec<String>>,
    /// The run of the job (a new job identity after a redeploy). In the
    /// durable record only once it differs from `JobConfig::run`
    /// ([`encode_meta`]): a job never redeployed keeps its record byte for
    /// byte.
    #[serde(skip)]
    pub run: u64,
}

/// Marks a record that carries its run ([`encode_meta`]).
const RUN_TAG: u64 = 0x6e75_725f_6e77_6f64;

/// The durable form of the record: with incremental checkpoints the shared
/// files go with it (one atomic record).
pub fn encode_meta(cfg: &JobConfig, meta: &CoordMeta) -> Vec<u8> {
    if meta.run != cfg.run {
        // A redeployed job: the record says which run it serves.
        codec::encode_framed(&(meta, &meta.shared, RUN_TAG, meta.run))
    } else if cfg.incremental_checkpoints {
        codec::encode_framed(&(meta, &meta.shared))
    } else {
        codec::encode_framed(meta)
    }
}

pub fn decode_meta(cfg: &JobConfig, bytes: &[u8]) -> Result<CoordMeta, String> {
    type WithRun = (CoordMeta, BTreeMap<CheckpointId, Vec<String>>, u64, u64);
    // The longer form first: the shorter ones end before its tag.
    if let Ok((mut meta, shared, tag, run)) = codec::decode_framed::<WithRun>(bytes) {
        if tag == RUN_TAG {
            meta.shared = shared;
            meta.run = run;
            return Ok(meta);
        }
    }
    let mut meta = if cfg.incremental_checkpoints {
        let (mut meta, shared): (CoordMeta, BTreeMap<CheckpointId, Vec<String>>) = codec::decode_framed(bytes)?;
        meta.shared = shared;
        meta
    } else {
        codec::decode_framed::<CoordMeta>(bytes)?
    };
    meta.run = cfg.run;
    Ok(meta)
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Make this the durable record (atomic). Failure is fatal.
    Persist(CoordMeta),
    Point(FaultPoint),
    Emit(Event),
    /// A reachability point (recorded beside the history, never traced).
    Reach(Reach),
    Send(u32, Msg),
    /// Delete discarded state in the background (best effort: a blob left
    /// behind only costs space).
    DeleteBlobs(Vec<String>),
    /// Planted bug only: delete state and wait until the store did it,
    /// before going on to the next action.
    DeleteBlobsNow(Vec<String>),
    /// Planted bug only: look up blobs in the store to pick a restore point.
    ListBlobsForRestore,
}

#[derive(Debug)]
struct Pending {
    trigger_ms: u64,
    last_sent_ms: u64,
    acks: BTreeMap<TaskId, (String, Option<u64>, bool, Vec<String>)>,
}

#[derive(Debug, PartialEq)]
enum Phase {
    Deploying { acked: BTreeSet<u32>, last_sent_ms: u64, plan: Option<RestorePlan>, waiting_listing: bool },
    Running,
    Finished,
}

#[derive(Debug)]
struct NotifyState {
    ckpt: CheckpointId,
    acked: BTreeSet<u32>,
    last_sent_ms: u64,
}

pub struct Coordinator {
    /// The configuration of this start's deployments (rescaled to its
    /// parallelism, `JobConfig::rescaled`).
    cfg: Arc<JobConfig>,
    /// The chain subtasks (and the workers that run them) of this start.
    workers: u32,
    /// The worker nodes (the submission's parallelism): those from
    /// `workers` on run nothing, and are told so.
    nodes: u32,
    meta: CoordMeta,
    phase: Phase,
    pending: BTreeMap<CheckpointId, Pending>,
    last_trigger_ms: u64,
    consecutive_failures: u32,
    last_seen_ms: Vec<u64>,
    incarnation: Vec<Option<u64>>,
    /// The `seq` of the last `Msg::Deploy` sent (within this process, so
    /// within its attempts: a restarted coordinator starts a new attempt).
    deploy_seq: u64,
    notify: Option<NotifyState>,
    finished_ckpt: Option<CheckpointId>,
    /// The adaptive interval, when configured (else the fixed one).
    interval: Option<IntervalController>,
    /// Incremental checkpoints: the shared-state registry of this (re)start
    /// (rebuilt from the record at every job restart).
    registry: SharedRegistry,
    /// The checkpoint the current attempt restored from.
    restored_from: Option<CheckpointId>,
    /// The shared files of the checkpoint discarded last (only the planted
    /// bug `flink-7268-...` looks at them again).
    last_discarded: Vec<String>,
}

pub const RESEND_MS: u64 = 50;

pub fn blob_name(ckpt: CheckpointId, attempt: Attempt, task: TaskId) -> String {
    format!("ckpt-{ckpt:012}-a{attempt}-{task}")
}

/// `(checkpoint, task)` of a blob name.
pub fn parse_blob_name(name: &str) -> Option<(CheckpointId, TaskId)> {
    let rest = name.strip_prefix("ckpt-")?;
    let (id, rest) = rest.split_once("-a")?;
    let (_attempt, task) = rest.split_once('-')?;
    let id: u64 = id.parse().ok()?;
    let task = if let Some(i) = task.strip_prefix("source-") {
        TaskId::Source(i.parse().ok()?)
    } else {
        TaskId::Chain(task.strip_prefix("chain-")?.parse().ok()?)
    };
    Some((id, task))
}

impl Coordinator {
    pub fn all_tasks(sources: u32, workers: u32) -> Vec<TaskId> {
        (0..sources).map(TaskId::Source).chain((0..workers).map(TaskId::Chain)).collect()
    }

    /// Start (or restart) from the durable record, if any, as the job's
    /// first run (`JobConfig::run`).
    pub fn recover(cfg: Arc<JobConfig>, meta: Option<CoordMeta>, now_ms: u64) -> (Coordinator, Vec<Action>) {
        let (run, parallelism) = (cfg.run, cfg.parallelism);
        Coordinator::recover_run(cfg, meta, run, false, parallelism, now_ms)
    }

    /// Start (or restart) from the durable record, if any, as run `run` of
    /// the job; `redeployed`: this start is a redeploy, a new run under a
    /// new job identity that restores the latest retained checkpoint of
    /// the record (the caller made `run` durable first, see
    /// [`run_identity`]). Its deployments carry the run: the sinks own
    /// their subtasks, and fence the old run's writers, under it.
    /// `parallelism`: the chain subtasks this start deploys (at most
    /// `cfg.parallelism`, the worker nodes); a restored checkpoint taken
    /// with another number of them is rescaled.
    pub fn recover_run(
        cfg: Arc<JobConfig>,
        meta: Option<CoordMeta>,
        run: u64,
        redeployed: bool,
        parallelism: u32,
        now_ms: u64,
    ) -> (Coordinator, Vec<Action>) {
        let nodes = cfg.parallelism;
        let cfg = if parallelism == nodes { cfg } else { Arc::new(cfg.rescaled(parallelism)) };
        let workers = cfg.parallelism;
        let fresh = CoordMeta { next_ckpt: 1, attempt: 0, completed: Vec::new(), shared: BTreeMap::new(), run };
        let restarted = meta.as_ref().is_some_and(|m| !m.completed.is_empty());
        let mut meta = meta.unwrap_or(fresh);
        meta.run = run;
        if cfg.mutant_is(Mutant::CounterReset) {
            meta.next_ckpt = 1; // planted bug: the counter is not restored
        }
        let interval = cfg.adaptive_interval.map(|b| IntervalController::new(b, cfg.checkpoint_interval_ms));
        let mut c = Coordinator {
            interval,
            cfg,
            workers,
            nodes,
            meta,
            phase: Phase::Running,
            pending: BTreeMap::new(),
            last_trigger_ms: now_ms,
            consecutive_failures: 0,
            last_seen_ms: vec![now_ms; workers as usize],
            incarnation: vec![None; workers as usize],
            deploy_seq: 0,
            notify: None,
            finished_ckpt: None,
            registry: SharedRegistry::default(),
            restored_from: None,
            last_discarded: Vec::new(),
        };
        let mut actions = vec![Action::Emit(Event::CoordinatorRecovered {
            next_checkpoint: c.meta.next_ckpt,
            attempt: c.meta.attempt,
            completed: c.meta.completed.iter().map(|k| k.id).collect(),
        })];
        if restarted {
            actions.push(Action::Reach(Reach::CoordinatorRestartedWithCompleted));
        }
        if redeployed {
            actions.push(Action::Emit(Event::Redeployed { run, from: c.meta.completed.last().map(|k| k.id) }));
            if restarted {
                actions.push(Action::Reach(Reach::RestoredUnderNewRun));
            }
        }
        if restarted
            && c.cfg.incremental_checkpoints
            && c.cfg.mutant_is(Mutant::Flink7783RecoverDropsUnreadableCheckpoint)
        {
            // Planted bug: every retained checkpoint but the newest is
            // "unreadable"; it is dropped and discarded whole, the shared
            // files the newest refers to included.
            let keep = c.meta.completed.split_off(c.meta.completed.len() - 1);
            let dropped = std::mem::replace(&mut c.meta.completed, keep);
            if !dropped.is_empty() {
                actions.push(Action::Persist(c.meta.clone()));
            }
            for d in dropped {
                let mut files: Vec<String> = d.blobs.into_values().collect();
                files.extend(c.meta.shared.remove(&d.id).unwrap_or_default());
                actions.push(Action::Emit(Event::CheckpointDiscarded { ckpt: d.id }));
                actions.push(Action::DeleteBlobs(files));
            }
        }
        actions.extend(c.failover("coordinator start".into(), now_ms));
        (c, actions)
    }

    pub fn attempt(&self) -> Attempt {
        self.meta.attempt
    }

    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    pub fn meta(&self) -> &CoordMeta {
        &self.meta
    }

    fn latest_plan(&self) -> Option<RestorePlan> {
        let last = self.meta.completed.last()?;
        Some(RestorePlan { ckpt: last.id, blobs: last.blobs.clone() })
    }

    /// Global restart: new attempt, restore from the latest completed
    /// checkpoint.
    pub fn failover(&mut self, reason: String, now_ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
        self.meta.attempt += 1;
        self.pending.clear();
        self.notify = None;
        // The restarted job proves it is finished with a new checkpoint
        // whose notification every sink acknowledges.
        self.finished_ckpt = None;
        self.consecutive_failures = 0;
        out.push(Action::Persist(self.meta.clone()));
        if self.cfg.incremental_checkpoints {
            // The registry of this restart: what the retained checkpoints
            // refer to, nothing else.
            let shared = &self.meta.shared;
            self.registry = SharedRegistry::rebuilt(
                self.meta.completed.iter().map(|c| (c.id, shared.get(&c.id).map_or(&[][..], Vec::as_slice))),
            );
            if self.cfg.mutant_is(Mutant::Flink7268AsyncDiscardRacesRestart) {
                // Planted bug: the discard of the checkpoint subsumed last,
                // still in flight, lands in the new registry.
                let late = std::mem::take(&mut self.last_discarded);
                let gone = self.registry.unregister(&late);
                if !gone.is_empty() {
                    out.push(Action::DeleteBlobs(gone));
                }
            }
        }
        let plan = self.latest_plan();
        self.restored_from = plan.as_ref().map(|p| p.ckpt);
        out.push(Action::Emit(Event::RecoveryStarted {
            attempt: self.meta.attempt,
            from: plan.as_ref().map(|p| p.ckpt),
            reason,
        }));
        // A deployment at another parallelism than the restored
        // checkpoint's, or (a fresh start) than the submission's.
        let from = plan.as_ref().map_or(self.nodes, RestorePlan::parallelism);
        if from != self.workers {
            let ckpt = plan.as_ref().map(|p| p.ckpt);
            out.push(Action::Emit(Event::Rescaled { attempt: self.meta.attempt, from, to: self.workers, ckpt }));
            if ckpt.is_some() {
                out.push(Action::Reach(Reach::RestoredRescaled));
            }
        }
        let listing = self.cfg.mutant_is(Mutant::RestoreWithoutCompletionRecord);
        self.phase = Phase::Deploying { acked: BTreeSet::new(), last_sent_ms: now_ms, plan, waiting_listing: listing };
        if listing {
            out.push(Action::ListBlobsForRestore);
        } else {
            out.extend(self.send_deploys(None));
        }
        out
    }

    /// Planted bug [`Mutant::RestoreWithoutCompletionRecord`]: restore from
    /// the newest checkpoint that has a blob for every task.
    pub fn on_blob_listing(&mut self, names: &[String]) -> Vec<Action> {
        let tasks = Self::all_tasks(self.cfg.input_partitions(), self.workers);
        let mut by_ckpt: BTreeMap<CheckpointId, BTreeMap<TaskId, String>> = BTreeMap::new();
        for n in names {
            if let Some((id, task)) = parse_blob_name(n) {
                by_ckpt.entry(id).or_default().insert(task, n.clone());
            }
        }
        let found = by_ckpt.into_iter().rev().find(|(_, b)| tasks.iter().all(|t| b.contains_key(t)));
        let Phase::Deploying { plan, waiting_listing, .. } = &mut self.phase else {
            return vec![];
        };
        if !*waiting_listing {
            return vec![];
        }
        *waiting_listing = false;
        if let Some((id, blobs)) = found {
            if plan.as_ref().is_none_or(|p| id > p.ckpt) {
                *plan = Some(RestorePlan { ckpt: id, blobs });
            }
        }
        self.send_deploys(None)
    }

    fn send_deploys(&mut self, only: Option<u32>) -> Vec<Action> {
        let Phase::Deploying { acked, plan, waiting_listing, .. } = &self.phase else {
            return vec![];
        };
        if *waiting_listing {
            return vec![];
        }
        let mut actions = Vec::new();
        // The workers beyond the parallelism (a downscaled job) are told
        // too, so that they end what an older attempt left running; their
        // acknowledgements are not awaited.
        for w in (0..self.nodes).filter(|w| !acked.contains(w) && only.is_none_or(|o| o == *w)) {
            self.deploy_seq += 1;
            let msg = Msg::Deploy {
                attempt: self.meta.attempt,
                seq: self.deploy_seq,
                restore: plan.clone(),
                fence_upto: self.meta.next_ckpt,
                run: self.meta.run,
                parallelism: self.workers,
            };
            actions.push(Action::Send(w, msg));
        }
        actions
    }

    /// A deployment of the current attempt for worker `w`, beyond the
    /// parallelism: it runs nothing.
    fn retire(&mut self, w: u32) -> Vec<Action> {
        assert!(w >= self.workers && w < self.nodes);
        self.deploy_seq += 1;
        let msg = Msg::Deploy {
            attempt: self.meta.attempt,
            seq: self.deploy_seq,
            restore: None,
            fence_upto: self.meta.next_ckpt,
            run: self.meta.run,
            parallelism: self.workers,
        };
        vec![Action::Send(w, msg)]
    }

    pub fn on_msg(&mut self, msg: Msg, now_ms: u64) -> Vec<Action> {
        let attempt = self.meta.attempt;
        match msg {
            Msg::Heartbeat { worker, attempt: a, incarnation } => {
                let w = worker as usize;
                if w >= self.last_seen_ms.len() {
                    // A worker beyond the parallelism still on an older
                    // attempt is told to end it.
                    if worker < self.nodes && a < attempt {
                        return self.retire(worker);
                    }
                    return vec![];
                }
                self.last_seen_ms[w] = now_ms;
                match &self.phase {
                    Phase::Deploying { acked, .. } if !acked.contains(&worker) => self.send_deploys(Some(worker)),
                    Phase::Running if self.incarnation[w].is_some_and(|i| i != incarnation) => {
                        self.failover(format!("worker {worker} restarted"), now_ms)
                    }
                    // A process that restarted after the job finished and
                    // then deployed an attempt (the finished one, or an
                    // older one) from a late `Deploy`: its tasks would
                    // open transactions nobody ends.
                    Phase::Finished if a != 0 && self.incarnation[w].is_some_and(|i| i != incarnation) => {
                        vec![Action::Send(worker, Msg::Cancel { attempt: a })]
                    }
                    _ => vec![],
                }
            }
            Msg::DeployAck { worker, attempt: a, incarnation } if a == attempt && worker < self.workers => {
                let Phase::Deploying { acked, .. } = &mut self.phase else {
                    return vec![];
                };
                acked.insert(worker);
                self.incarnation[worker as usize] = Some(incarnation);
                if acked.len() as u32 == self.workers {
                    self.phase = Phase::Running;
                    self.last_trigger_ms = now_ms;
                    for s in self.last_seen_ms.iter_mut() {
                        *s = now_ms;
                    }
                    return vec![Action::Emit(Event::JobRunning { attempt })];
                }
                vec![]
            }
            Msg::TaskFailed { attempt: a, task, reason } if a == attempt && self.phase == Phase::Running => {
                self.failover(format!("{task} failed: {reason}"), now_ms)
            }
            Msg::Decline { attempt: a, ckpt, task, reason } if a == attempt => {
                if self.pending.contains_key(&ckpt) {
                    self.fail_checkpoint(ckpt, format!("{task} declined: {reason}"), now_ms)
                } else {
                    vec![]
                }
            }
            Msg::Ack { attempt: a, ckpt, task, blob, offset, finished, shared } if a == attempt => {
                let Some(p) = self.pending.get_mut(&ckpt) else {
                    return vec![];
                };
                p.acks.insert(task, (blob, offset, finished, shared));
                // Planted bug: an off-by-one in ack counting.
                let early = self.cfg.mutant_is(Mutant::CompleteBeforeAllAcks) as u32;
                if p.acks.len() as u32 + early == self.cfg.input_partitions() + self.workers {
                    self.complete(ckpt, now_ms)
                } else {
                    vec![]
                }
            }
            Msg::NotifyAck { attempt: a, ckpt, task } if a == attempt => {
                let Some(n) = &mut self.notify else {
                    return vec![];
                };
                if n.ckpt != ckpt {
                    return vec![];
                }
                n.acked.insert(task.subtask());
                if n.acked.len() as u32 == self.workers {
                    self.notify = None;
                    if self.finished_ckpt.is_some_and(|f| ckpt >= f) && self.phase == Phase::Running {
                        self.phase = Phase::Finished;
                        return vec![Action::Emit(Event::JobFinished { attempt, ckpt })];
                    }
                }
                vec![]
            }
            _ => vec![],
        }
    }

    fn complete(&mut self, ckpt: CheckpointId, now_ms: u64) -> Vec<Action> {
        let p = self.pending.remove(&ckpt).expect("completing a pending checkpoint");
        // A completion record names every task's state: one missing would
        // restore that task empty.
        assert_eq!(
            p.acks.len() as u32,
            self.cfg.input_partitions() + self.workers,
            "checkpoint {ckpt} completes with every task's acknowledgement"
        );
        let mut out = Vec::new();
        if self.cfg.mutant_is(Mutant::DeleteStateEarly) {
            // Planted bug: drop the older state before the new completion
            // record is durable.
            let old: Vec<String> = self.meta.completed.iter().flat_map(|c| c.blobs.values().cloned()).collect();
            out.push(Action::DeleteBlobsNow(old));
        }
        out.push(Action::Point(FaultPoint::BeforeCompletionRecord));
        let mut offsets = vec![0; self.cfg.input_partitions() as usize];
        let mut finished = true;
        let mut blobs = BTreeMap::new();
        let mut shared = Vec::new();
        for (task, (blob, offset, fin, files)) in p.acks {
            if let (TaskId::Source(i), Some(o)) = (task, offset) {
                offsets[i as usize] = o;
            }
            finished &= fin;
            blobs.insert(task, blob);
            shared.extend(files);
        }
        self.meta.completed.push(CompletedCkpt { id: ckpt, blobs, offsets: offsets.clone(), finished });
        if self.cfg.incremental_checkpoints {
            self.registry.register(ckpt, &shared);
            self.meta.shared.insert(ckpt, shared);
        }
        let mut dropped = Vec::new();
        while self.meta.completed.len() > self.cfg.retained_checkpoints.max(1) {
            let d = self.meta.completed.remove(0);
            self.meta.shared.remove(&d.id);
            dropped.push(d);
        }
        out.push(Action::Persist(self.meta.clone()));
        let offsets_sum = offsets.iter().sum();
        out.push(Action::Emit(Event::CheckpointCompleted { attempt: self.meta.attempt, ckpt, offsets, finished }));
        if let Some(ic) = &mut self.interval {
            // The cost of the checkpoint: from its trigger to now, its
            // completion. Planted bug: from its last acknowledgement, which
            // is now (the coordinator completes on it). None when the clock
            // went back since the trigger (the simulator's heal sets a
            // drifted clock back to true time, so a clock that ran fast
            // reads less than it did at the trigger): no measure, where a
            // zero once pulled the interval down to its minimum (P15).
            let last_ack_ms = now_ms;
            let from = if self.cfg.mutant_is(Mutant::IntervalCostFromLastAck) { last_ack_ms } else { p.trigger_ms };
            let duration_ms = now_ms.checked_sub(from);
            let interval_ms = ic.on_completed(Completion { now_ms, duration_ms, offsets_sum });
            let b = ic.bounds();
            out.push(Action::Emit(Event::IntervalChosen { interval_ms, min_ms: b.min_ms, max_ms: b.max_ms }));
        }
        let subsumed: Vec<CheckpointId> = self.pending.range(..ckpt).map(|(k, _)| *k).collect();
        for s in subsumed {
            self.pending.remove(&s);
            out.push(Action::Emit(Event::CheckpointSubsumed { ckpt: s }));
        }
        self.consecutive_failures = 0;
        if finished && self.finished_ckpt.is_none() {
            self.finished_ckpt = Some(ckpt);
        }
        out.push(Action::Point(FaultPoint::AfterCompletionBeforeNotify));
        self.notify = Some(NotifyState { ckpt, acked: BTreeSet::new(), last_sent_ms: now_ms });
        for w in 0..self.workers {
            out.push(Action::Send(w, Msg::Notify { attempt: self.meta.attempt, ckpt }));
        }
        for d in dropped {
            out.push(Action::Emit(Event::CheckpointDiscarded { ckpt: d.id }));
            let mut files: Vec<String> = d.blobs.into_values().collect();
            if self.cfg.incremental_checkpoints {
                // Only the shared files no retained checkpoint refers to,
                // deleted after the record that drops them is durable.
                let own = self.registry.files(d.id).map(<[String]>::to_vec).unwrap_or_default();
                files.extend(self.registry.discard(d.id));
                if self.cfg.mutant_is(Mutant::Flink26985RestoredSharedStateDiscarded)
                    && self.restored_from == Some(d.id)
                {
                    // Planted bug: the restored checkpoint's shared files
                    // are deleted with it, whoever else refers to them.
                    files.extend(own.iter().filter(|f| !files.contains(f)).cloned().collect::<Vec<_>>());
                }
                self.last_discarded = own;
            }
            out.push(Action::DeleteBlobs(files));
        }
        out
    }

    fn fail_checkpoint(&mut self, ckpt: CheckpointId, reason: String, now_ms: u64) -> Vec<Action> {
        self.pending.remove(&ckpt);
        let mut out = vec![
            Action::Emit(Event::CheckpointFailed { attempt: self.meta.attempt, ckpt, reason }),
            Action::Reach(Reach::CheckpointExpired),
        ];
        self.consecutive_failures += 1;
        if self.consecutive_failures > self.cfg.tolerable_failures {
            out.extend(self.failover("too many failed checkpoints".into(), now_ms));
        }
        out
    }

    /// The time to wait after the last trigger.
    fn interval_ms(&self) -> u64 {
        self.interval.as_ref().map_or(self.cfg.checkpoint_interval_ms, IntervalController::current_ms)
    }

    pub fn on_tick(&mut self, now_ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
        match &mut self.phase {
            Phase::Deploying { last_sent_ms, .. } => {
                if now_ms >= *last_sent_ms + 2 * RESEND_MS {
                    *last_sent_ms = now_ms;
                    out.extend(self.send_deploys(None));
                }
                return out;
            }
            Phase::Finished => return out,
            Phase::Running => {}
        }
        // Failure detection.
        if let Some(w) =
            (0..self.workers).find(|w| now_ms > self.last_seen_ms[*w as usize] + self.cfg.heartbeat_timeout_ms)
        {
            out.push(Action::Emit(Event::WorkerLost { worker: w }));
            out.extend(self.failover(format!("worker {w} heartbeat timeout"), now_ms));
            return out;
        }
        // Checkpoint timeouts.
        let expired: Vec<CheckpointId> = self
            .pending
            .iter()
            .filter(|(_, p)| now_ms >= p.trigger_ms + self.cfg.checkpoint_timeout_ms)
            .map(|(k, _)| *k)
            .collect();
        for ckpt in expired {
            out.extend(self.fail_checkpoint(ckpt, "timeout".into(), now_ms));
            if !matches!(self.phase, Phase::Running) {
                return out;
            }
        }
        // Resend lost triggers and notifications.
        let attempt = self.meta.attempt;
        for (ckpt, p) in self.pending.iter_mut() {
            if now_ms >= p.last_sent_ms + 2 * RESEND_MS {
                p.last_sent_ms = now_ms;
                for w in 0..self.workers {
                    if self.cfg.sources_of(w).iter().any(|j| !p.acks.contains_key(&TaskId::Source(*j))) {
                        out.push(Action::Send(w, Msg::Trigger { attempt, ckpt: *ckpt }));
                    }
                }
            }
        }
        if let Some(n) = &mut self.notify {
            if now_ms >= n.last_sent_ms + RESEND_MS {
                n.last_sent_ms = now_ms;
                // Broadcast until every sink acknowledged: sinks that did
                // already see a duplicate, which they must tolerate.
                for w in 0..self.workers {
                    out.push(Action::Send(w, Msg::Notify { attempt, ckpt: n.ckpt }));
                }
            }
        }
        // Trigger.
        let done = self.finished_ckpt.is_some();
        if !done
            && now_ms >= self.last_trigger_ms + self.interval_ms()
            && (self.pending.len() as u32) < self.cfg.max_concurrent_checkpoints
        {
            let ckpt = self.meta.next_ckpt;
            self.meta.next_ckpt += 1;
            self.last_trigger_ms = now_ms;
            self.pending.insert(ckpt, Pending { trigger_ms: now_ms, last_sent_ms: now_ms, acks: BTreeMap::new() });
            out.push(Action::Persist(self.meta.clone()));
            out.push(Action::Point(FaultPoint::AfterIdPersistBeforeTrigger));
            out.push(Action::Emit(Event::CheckpointTriggered { attempt, ckpt }));
            for w in 0..self.workers {
                out.push(Action::Send(w, Msg::Trigger { attempt, ckpt }));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
