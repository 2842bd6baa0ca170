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
mod tests {
    use super::*;

    fn cfg() -> Arc<JobConfig> {
        Arc::new(JobConfig { parallelism: 2, ..JobConfig::default() })
    }

    fn sends(actions: &[Action]) -> Vec<(u32, Msg)> {
        actions.iter().filter_map(|a| if let Action::Send(w, m) = a { Some((*w, m.clone())) } else { None }).collect()
    }

    fn running() -> Coordinator {
        let (mut c, a) = Coordinator::recover(cfg(), None, 0);
        assert_eq!(sends(&a).len(), 2, "deploy to both workers");
        for w in 0..2 {
            c.on_msg(Msg::DeployAck { worker: w, attempt: 1, incarnation: 7 }, 1);
        }
        assert_eq!(c.phase, Phase::Running);
        c
    }

    fn ack_all(c: &mut Coordinator, ckpt: u64, now: u64) -> Vec<Action> {
        let mut out = Vec::new();
        for t in Coordinator::all_tasks(2, 2) {
            let offset = matches!(t, TaskId::Source(_)).then_some(10);
            out.extend(c.on_msg(
                Msg::Ack {
                    attempt: 1,
                    ckpt,
                    task: t,
                    blob: format!("b{ckpt}{t}"),
                    offset,
                    finished: false,
                    shared: vec![],
                },
                now,
            ));
        }
        out
    }

    #[test]
    fn a_checkpoint_waits_for_every_source_when_inputs_outnumber_workers() {
        let cfg = Arc::new(JobConfig { parallelism: 2, input_partitions: 3, ..JobConfig::default() });
        assert_eq!(cfg.sources_of(0), vec![0, 2]);
        let (mut c, _) = Coordinator::recover(cfg, None, 0);
        for w in 0..2 {
            c.on_msg(Msg::DeployAck { worker: w, attempt: 1, incarnation: 7 }, 1);
        }
        c.on_tick(200);
        let tasks = Coordinator::all_tasks(3, 2);
        assert_eq!(tasks.len(), 5);
        let mut done = Vec::new();
        for t in tasks {
            let offset = matches!(t, TaskId::Source(_)).then_some(10);
            let a = c.on_msg(
                Msg::Ack {
                    attempt: 1,
                    ckpt: 1,
                    task: t,
                    blob: format!("b{t}"),
                    offset,
                    finished: false,
                    shared: vec![],
                },
                210,
            );
            done.extend(a.into_iter().filter_map(|x| match x {
                Action::Emit(Event::CheckpointCompleted { offsets, .. }) => Some(offsets),
                _ => None,
            }));
        }
        assert_eq!(done, vec![vec![10, 10, 10]], "completed once, with the last ack, one offset per source");
    }

    /// The adaptive interval: each completion chooses the time to the next
    /// trigger (`IntervalChosen`, with the bounds), and the coordinator
    /// waits that long; the planted bug measures the checkpoint as free.
    #[test]
    fn an_adaptive_interval_is_chosen_at_each_completion_and_obeyed() {
        let bounds = crate::interval::AdaptiveInterval { min_ms: 50, max_ms: 2_000, replay_records: 1_000 };
        for (mutant, want) in [(None, 600), (Some(Mutant::IntervalCostFromLastAck), 100)] {
            let cfg =
                Arc::new(JobConfig { parallelism: 2, adaptive_interval: Some(bounds), mutant, ..JobConfig::default() });
            let (mut c, _) = Coordinator::recover(cfg, None, 0);
            for w in 0..2 {
                c.on_msg(Msg::DeployAck { worker: w, attempt: 1, incarnation: 7 }, 1);
            }
            assert!(c
                .on_tick(200)
                .iter()
                .any(|a| matches!(a, Action::Emit(Event::CheckpointTriggered { ckpt: 1, .. }))));
            // Triggered at 200, completed at 260: 60 ms, so at least 600 ms
            // (one completion: no input rate yet, the interval was 100).
            let chosen: Vec<u64> = ack_all(&mut c, 1, 260)
                .into_iter()
                .filter_map(|a| match a {
                    Action::Emit(Event::IntervalChosen { interval_ms, min_ms: 50, max_ms: 2_000 }) => Some(interval_ms),
                    _ => None,
                })
                .collect();
            assert_eq!(chosen, vec![want], "{mutant:?}");
            let triggers = |c: &mut Coordinator, now| {
                c.on_tick(now).iter().any(|a| matches!(a, Action::Emit(Event::CheckpointTriggered { .. })))
            };
            for w in 0..2 {
                c.on_msg(Msg::Heartbeat { worker: w, attempt: 1, incarnation: 7 }, 200 + want - 1);
            }
            assert!(!triggers(&mut c, 200 + want - 1), "{mutant:?}: not before the chosen interval");
            assert!(triggers(&mut c, 200 + want), "{mutant:?}: at the chosen interval");
        }
        // A clock that went back between the trigger and the completion
        // (the simulator's heal sets a fast clock back to true time): the
        // checkpoint cost nothing, nothing overflows.
        let cfg = Arc::new(JobConfig { parallelism: 2, adaptive_interval: Some(bounds), ..JobConfig::default() });
        let (mut c, _) = Coordinator::recover(cfg, None, 0);
        for w in 0..2 {
            c.on_msg(Msg::DeployAck { worker: w, attempt: 1, incarnation: 7 }, 1);
        }
        c.on_tick(200);
        let a = ack_all(&mut c, 1, 150);
        assert!(a.iter().any(|x| matches!(x, Action::Emit(Event::IntervalChosen { interval_ms: 100, .. }))), "{a:?}");
    }

    #[test]
    fn trigger_persists_id_before_sending() {
        let mut c = running();
        let a = c.on_tick(200);
        let persist = a.iter().position(|x| matches!(x, Action::Persist(m) if m.next_ckpt == 2)).expect("persist");
        let first_send =
            a.iter().position(|x| matches!(x, Action::Send(_, Msg::Trigger { ckpt: 1, .. }))).expect("trigger");
        assert!(persist < first_send);
    }

    #[test]
    fn completion_record_before_notify_and_ids_survive_restart() {
        let mut c = running();
        c.on_tick(200);
        let a = ack_all(&mut c, 1, 210);
        let persist = a.iter().position(|x| matches!(x, Action::Persist(m) if m.completed.len() == 1)).expect("record");
        let notify = a.iter().position(|x| matches!(x, Action::Send(_, Msg::Notify { ckpt: 1, .. }))).expect("notify");
        assert!(persist < notify);
        // restart from the durable record: ids continue, restore from 1
        let (c2, a2) = Coordinator::recover(cfg(), Some(c.meta().clone()), 0);
        assert_eq!(c2.meta().next_ckpt, 2);
        assert_eq!(c2.attempt(), 2);
        assert!(sends(&a2).iter().all(|(_, m)| matches!(m, Msg::Deploy { restore: Some(p), .. } if p.ckpt == 1)));
    }

    #[test]
    fn a_rescaled_start_deploys_its_subtasks_and_tells_the_other_workers_to_run_nothing() {
        let mut c = running();
        c.on_tick(200);
        ack_all(&mut c, 1, 210);
        // Restarted with one subtask: the checkpoint (two chains) is
        // rescaled, both workers are told, only worker 0 is awaited.
        let (mut c2, a2) = Coordinator::recover_run(cfg(), Some(c.meta().clone()), 0, false, 1, 300);
        assert!(a2.contains(&Action::Emit(Event::Rescaled { attempt: 2, from: 2, to: 1, ckpt: Some(1) })), "{a2:?}");
        assert!(a2.contains(&Action::Reach(Reach::RestoredRescaled)));
        let deploys = sends(&a2);
        assert_eq!(deploys.iter().map(|(w, _)| *w).collect::<Vec<_>>(), vec![0, 1]);
        assert!(deploys
            .iter()
            .all(|(_, m)| matches!(m, Msg::Deploy { parallelism: 1, restore: Some(p), .. } if p.ckpt == 1)));
        // Worker 1's acknowledgement is no part of the deployment (and
        // cannot break it); worker 0's completes it.
        assert!(c2.on_msg(Msg::DeployAck { worker: 1, attempt: 2, incarnation: 7 }, 301).is_empty());
        let a = c2.on_msg(Msg::DeployAck { worker: 0, attempt: 2, incarnation: 7 }, 302);
        assert!(a.contains(&Action::Emit(Event::JobRunning { attempt: 2 })));
        // Worker 1 still on the old attempt is told again; on the new one,
        // it is left alone, and never counted as lost.
        let retire = c2.on_msg(Msg::Heartbeat { worker: 1, attempt: 1, incarnation: 7 }, 303);
        assert!(matches!(&sends(&retire)[..], [(1, Msg::Deploy { attempt: 2, parallelism: 1, .. })]));
        assert!(c2.on_msg(Msg::Heartbeat { worker: 1, attempt: 2, incarnation: 7 }, 304).is_empty());
        // Checkpoints involve the one chain and both sources (input
        // partitions stay the submission's), all read by worker 0.
        let a = c2.on_tick(310);
        c2.on_msg(Msg::Heartbeat { worker: 0, attempt: 2, incarnation: 7 }, 310);
        let a = [a, c2.on_tick(500)].concat();
        let triggers = sends(&a);
        assert!(!triggers.is_empty() && triggers.iter().all(|(w, m)| *w == 0 && matches!(m, Msg::Trigger { .. })));
        let ckpt = c2.meta().next_ckpt - 1;
        let mut done = Vec::new();
        for t in Coordinator::all_tasks(2, 1) {
            let offset = matches!(t, TaskId::Source(_)).then_some(20);
            let (blob, shared) = (format!("b{ckpt}{t}"), vec![]);
            let ack = Msg::Ack { attempt: 2, ckpt, task: t, blob, offset, finished: false, shared };
            done.extend(c2.on_msg(ack, 510));
        }
        assert!(done.iter().any(|x| matches!(x, Action::Emit(Event::CheckpointCompleted { .. }))), "{done:?}");
        // Restored with the same parallelism again: nothing moves.
        let (_, a3) = Coordinator::recover_run(cfg(), Some(c2.meta().clone()), 0, false, 1, 600);
        assert!(!a3.iter().any(|x| matches!(x, Action::Emit(Event::Rescaled { .. }))), "{a3:?}");
        // Back to two: the one-chain checkpoint is rescaled up.
        let (_, a4) = Coordinator::recover_run(cfg(), Some(c2.meta().clone()), 0, false, 2, 600);
        assert!(a4.iter().any(|x| matches!(x, Action::Emit(Event::Rescaled { from: 1, to: 2, .. }))));
        // A fresh start at another parallelism than the submission's says so.
        let (_, a5) = Coordinator::recover_run(cfg(), None, 0, false, 1, 0);
        assert!(a5.contains(&Action::Emit(Event::Rescaled { attempt: 1, from: 2, to: 1, ckpt: None })));
        assert!(!a5.contains(&Action::Reach(Reach::RestoredRescaled)));
    }

    #[test]
    fn a_redeploy_restores_the_retained_checkpoint_under_the_new_run() {
        let mut c = running();
        c.on_tick(200);
        ack_all(&mut c, 1, 210);
        assert!(sends(&ack_all(&mut c, 1, 211)).is_empty(), "a duplicate ack changes nothing");
        // The job submitted again as run 1: the record's checkpoint is
        // restored, ids continue, every deployment carries the new run,
        // and the run is in the first record persisted.
        let (run, redeployed) = run_identity(Some(c.meta().run), 0, 1);
        assert_eq!((run, redeployed), (1, true));
        let (c2, a2) = Coordinator::recover_run(cfg(), Some(c.meta().clone()), run, redeployed, 2, 0);
        assert_eq!(c2.meta().next_ckpt, 2);
        assert_eq!(c2.meta().run, 1);
        let ev = a2.iter().position(|x| matches!(x, Action::Emit(Event::Redeployed { run: 1, from: Some(1) })));
        let persist = a2.iter().position(|x| matches!(x, Action::Persist(m) if m.run == 1)).expect("persist");
        let deploy = a2.iter().position(|x| matches!(x, Action::Send(_, Msg::Deploy { .. }))).expect("deploy");
        assert!(ev.is_some_and(|e| e < deploy) && persist < deploy, "{a2:?}");
        assert!(a2.contains(&Action::Reach(Reach::RestoredUnderNewRun)));
        let deploys = sends(&a2);
        assert_eq!(deploys.len(), 2);
        assert!(deploys.iter().all(|(_, m)| matches!(m, Msg::Deploy { run: 1, restore: Some(p), .. } if p.ckpt == 1)));
        // A later restart of the same run (or a process started from the
        // old submission) serves the durable run: no second redeploy.
        assert_eq!(run_identity(Some(1), 0, 1), (1, false));
        assert_eq!(run_identity(Some(1), 0, 0), (1, false));
        let (_, a3) = Coordinator::recover_run(cfg(), Some(c2.meta().clone()), 1, false, 2, 0);
        assert!(!a3.iter().any(|x| matches!(x, Action::Emit(Event::Redeployed { .. }))));
        assert!(sends(&a3).iter().all(|(_, m)| matches!(m, Msg::Deploy { run: 1, .. })));
        // Without a record, a redeploy starts the new run from the input's
        // start.
        let (_, a4) = Coordinator::recover_run(cfg(), None, 2, true, 2, 0);
        assert!(a4.contains(&Action::Emit(Event::Redeployed { run: 2, from: None })));
        assert!(!a4.contains(&Action::Reach(Reach::RestoredUnderNewRun)));
    }

    #[test]
    fn the_record_carries_its_run_only_once_redeployed() {
        for incremental in [false, true] {
            let cfg = JobConfig { incremental_checkpoints: incremental, ..JobConfig::default() };
            let mut meta = CoordMeta {
                next_ckpt: 7,
                attempt: 3,
                completed: vec![CompletedCkpt { id: 6, blobs: BTreeMap::new(), offsets: vec![4], finished: false }],
                shared: BTreeMap::new(),
                run: cfg.run,
            };
            if incremental {
                meta.shared.insert(6, vec!["shared-x".into()]);
            }
            // Never redeployed: byte for byte the record it always was.
            let plain =
                if incremental { codec::encode_framed(&(&meta, &meta.shared)) } else { codec::encode_framed(&meta) };
            assert_eq!(encode_meta(&cfg, &meta), plain);
            assert_eq!(decode_meta(&cfg, &plain).unwrap(), meta);
            // Redeployed: the run goes with it and comes back.
            meta.run = 5;
            let with_run = encode_meta(&cfg, &meta);
            assert_ne!(with_run, plain);
            let back = decode_meta(&cfg, &with_run).unwrap();
            assert_eq!((back.run, &back.shared), (5, &meta.shared));
            assert_eq!(back, meta);
        }
    }

    #[test]
    fn timeout_and_tolerable_failures_lead_to_failover() {
        let mut c = running();
        let mut now = 200;
        let mut recovered = false;
        for _ in 0..10 {
            // keep workers alive
            for w in 0..2 {
                c.on_msg(Msg::Heartbeat { worker: w, attempt: 1, incarnation: 7 }, now);
            }
            let a = c.on_tick(now);
            if a.iter().any(|x| matches!(x, Action::Emit(Event::RecoveryStarted { .. }))) {
                recovered = true;
                break;
            }
            now += 1_100;
        }
        assert!(recovered, "three timeouts in a row must restart the job");
        assert_eq!(c.attempt(), 2);
    }

    #[test]
    fn restarted_worker_triggers_failover_but_reordered_heartbeat_does_not() {
        let mut c = running();
        assert!(c.on_msg(Msg::Heartbeat { worker: 0, attempt: 0, incarnation: 7 }, 5).is_empty());
        let a = c.on_msg(Msg::Heartbeat { worker: 0, attempt: 0, incarnation: 8 }, 6);
        assert!(a.iter().any(|x| matches!(x, Action::Emit(Event::RecoveryStarted { .. }))));
    }

    #[test]
    fn a_finished_job_cancels_its_attempt_on_a_worker_process_that_restarted() {
        let mut c = running();
        c.phase = Phase::Finished;
        // The process it finished with, and a restarted one still idle.
        assert!(c.on_msg(Msg::Heartbeat { worker: 0, attempt: 1, incarnation: 7 }, 500).is_empty());
        assert!(c.on_msg(Msg::Heartbeat { worker: 0, attempt: 0, incarnation: 8 }, 510).is_empty());
        // The restarted process deployed the finished attempt from a late
        // `Deploy`: it is told to end it, and no recovery starts.
        let a = c.on_msg(Msg::Heartbeat { worker: 0, attempt: 1, incarnation: 8 }, 520);
        assert!(matches!(&sends(&a)[..], [(0, Msg::Cancel { attempt: 1 })]), "{a:?}");
        assert!(!a.iter().any(|x| matches!(x, Action::Emit(_))), "{a:?}");
        assert_eq!(c.attempt(), 1);
        assert_eq!(c.phase, Phase::Finished);
        // An older attempt's late `Deploy` is ended the same way.
        c.meta.attempt = 2;
        c.incarnation[1] = Some(9);
        let a = c.on_msg(Msg::Heartbeat { worker: 1, attempt: 1, incarnation: 10 }, 530);
        assert!(matches!(&sends(&a)[..], [(1, Msg::Cancel { attempt: 1 })]), "{a:?}");
        assert!(c.on_msg(Msg::Heartbeat { worker: 1, attempt: 2, incarnation: 9 }, 540).is_empty());
    }

    #[test]
    fn stale_attempt_messages_are_ignored() {
        let mut c = running();
        c.on_tick(200);
        let a = c.on_msg(Msg::TaskFailed { attempt: 0, task: TaskId::Source(0), reason: "x".into() }, 201);
        assert!(a.is_empty());
        assert_eq!(c.attempt(), 1);
    }

    #[test]
    fn blob_names_parse() {
        let n = blob_name(12, 3, TaskId::Chain(1));
        assert_eq!(parse_blob_name(&n), Some((12, TaskId::Chain(1))));
        assert_eq!(parse_blob_name(&blob_name(1, 1, TaskId::Source(0))), Some((1, TaskId::Source(0))));
    }
}
