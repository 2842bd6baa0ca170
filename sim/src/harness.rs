//! **The step harness**: test a two-phase-commit sink call by call from a
//! plain `#[test]`, the way Flink's `TwoPhaseCommitSinkFunctionTest`
//! drives a sink with a harness.
//!
//! [`run_steps`] builds a small deterministic world on madsim (a broker
//! node with a simulated disk, the pipeline's own sink system on its own
//! node and disk when it has one, a sink node and a reader) and runs the
//! test body with a [`Harness`]. Each step feeds the engine's own 2PC
//! state machine ([`exactsim_engine::sink_task::SinkTask`], the one the
//! job's chain runs), which calls the sink. The verbs:
//!
//! - steps of the sink process: `start` (`start_fencing`), `write`,
//!   `snapshot` (a barrier: pre-commit, begin the next transaction),
//!   `end_of_input`, `notify`, `restore` (`restore_with`): recovery from a
//!   checkpoint's sink state in one try, and `restore_retrying`
//!   (`restore_retrying_with`): recovery the way a job's worker does it,
//!   retried with fresh sinks up to `JobConfig::sink_recovery_budget`
//!   tries (the engine's `recovery::RecoveryBudget`), giving up with
//!   `StepError::Escalated` and the job's `JobFailed`;
//! - faults between steps: `crash_sink`, `crash_at` (crash at a fault
//!   point within the next step), `crash_broker` and `crash_system`
//!   (losing what it had not synced, restarted after a pause; the sink's
//!   own system, or the broker when it has none), `partition_sink`,
//!   `partition_sink_for` (healed in the background), `sleep` (the broker
//!   times transactions out), `new_run` (a new run of the job);
//! - a zombie: `detach_zombie` leaves the sink process running stale
//!   beside its replacement, and `zombie_write`, `zombie_snapshot`,
//!   `zombie_notify`, `zombie_end_of_input`, `kill_zombie` drive it; a
//!   fencing sink refuses it;
//! - what to assert on: `committed` (what a `read_committed` reader sees),
//!   `open_in_system`, `open_txn`, `pending`, `lost_commits`, `attempt`,
//!   `zombie_running`, `events` (every event, with its node).
//!
//! A test reads like this (the integration test
//! `step_harness::failure_before_notify_recommits_on_recovery_and_drops_the_rest`
//! runs these steps, against the broker and a system of its own):
//!
//! ```text
//! exactsim_sim::harness::run_steps(Setup::broker(), |mut h| async move {
//!     h.start().await.unwrap();
//!     h.write(recs(1..=3)).await.unwrap();
//!     let s1 = h.snapshot(1).await.unwrap();
//!     h.crash_sink();                       // before the notification
//!     h.restore(Some(&s1), 1).await.unwrap(); // re-commits checkpoint 1
//!     assert_eq!(h.committed(0).await, vec![1, 2, 3]);
//! });
//! ```

#![cfg_attr(not(madsim), allow(unused_imports, dead_code))]

use crate::disk::{CrashMode, SimDisk};
use crate::rng::SimRng;
use exactsim_engine::broker::{provision_input, run_broker, BrokerNode};
use exactsim_engine::config::JobConfig;
use exactsim_engine::net::Net;
use exactsim_engine::observe::{Event, FaultPoint, Obs, Observer};
use exactsim_engine::recovery::{self, RecoveryBudget, Verdict};
use exactsim_engine::sink::{BrokerSink, SinkEnv, SinkSnapshot, TwoPhaseCommitSink, TxnHandle};
use exactsim_engine::sink_task::{execute, SinkTask, Step};
use exactsim_engine::storage::Storage;
use exactsim_engine::system::{system_addr, BrokerReader, OutputReader, SinkSystem, SystemEnv};
use exactsim_engine::types::{CheckpointId, OutRecord};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type MakeSink = Arc<dyn Fn(SinkEnv) -> Box<dyn TwoPhaseCommitSink> + Send + Sync>;

/// What the harness world is made of.
#[derive(Clone)]
pub struct Setup {
    /// The job configuration the sink sees (`txn_timeout_ms` is the
    /// broker's transaction timeout; records go to partition
    /// `key_to_subtask(key, output_partitions())`).
    pub cfg: JobConfig,
    /// Builds the sink under test (called at `start` and every `restore`).
    pub sink: MakeSink,
    /// The sink's own system, if it does not write to the broker.
    pub system: Option<Arc<dyn SinkSystem>>,
    /// How a `read_committed` reader sees the output.
    pub reader: Arc<dyn OutputReader>,
    /// The seed of the simulation (network latencies, disk).
    pub seed: u64,
}

impl Setup {
    /// `BrokerSink` on the broker, one output partition.
    pub fn broker() -> Setup {
        Setup {
            cfg: JobConfig { parallelism: 1, ..JobConfig::default() },
            sink: Arc::new(|env| Box::new(BrokerSink::new(env))),
            system: None,
            reader: Arc::new(BrokerReader),
            seed: 1,
        }
    }

    /// The sink under test.
    pub fn with_sink(mut self, f: impl Fn(SinkEnv) -> Box<dyn TwoPhaseCommitSink> + Send + Sync + 'static) -> Setup {
        self.sink = Arc::new(f);
        self
    }

    /// The sink's own system and its reader.
    pub fn with_system(mut self, system: Arc<dyn SinkSystem>, reader: Arc<dyn OutputReader>) -> Setup {
        self.system = Some(system);
        self.reader = reader;
        self
    }

    pub fn with_cfg(mut self, f: impl FnOnce(&mut JobConfig)) -> Setup {
        f(&mut self.cfg);
        self
    }
}

/// Output records with `out_id = key = src = id`, value 1.
pub fn recs(ids: impl IntoIterator<Item = u64>) -> Vec<OutRecord> {
    ids.into_iter().map(|id| OutRecord::new(id, id, 1, id)).collect()
}

/// Records every event of the harness world.
#[derive(Default)]
struct Log(Mutex<Vec<(String, Event)>>);

impl Observer for Log {
    fn emit(&self, node: &str, event: Event) {
        self.0.lock().unwrap().push((node.to_string(), event));
    }
    fn fault_point(&self, _node: &str, _point: FaultPoint) -> bool {
        false
    }
    fn fatal(&self, node: &str, reason: &str) {
        self.emit(node, Event::FatalError { reason: reason.to_string() });
    }
}

/// The sink process: the engine's state machine and the sink it drives.
struct SinkProc {
    task: SinkTask,
    sink: Box<dyn TwoPhaseCommitSink>,
    /// The sink process's clocks (the task's time, [`SinkTask::tick`]).
    clock: exactsim_engine::clock::Clock,
    /// The job attempt it belongs to.
    attempt: u64,
}

/// Why a sink process stopped in the middle of a step.
enum Stop {
    /// The task failed (the reason).
    Failed(String),
    /// It reached the fault point set by `crash_at`.
    Crashed(FaultPoint),
}

/// A stale sink process left running beside its replacement (see
/// [`Harness::detach_zombie`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZombieId(usize);

/// The result of a step that did not complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepError {
    /// The task failed (the reason, as the job would report it).
    Failed(String),
    /// The sink process crashed at the fault point set by `crash_at`.
    Crashed(FaultPoint),
    /// No sink process is running (crashed, or not started).
    NotRunning,
    /// Recovery gave up ([`Harness::restore_retrying`]): the job fails, for
    /// this reason (as its `JobFailed` event says).
    Escalated(String),
}

/// A running harness world (see the module documentation).
pub struct Harness {
    setup: Setup,
    log: Arc<Log>,
    net: Arc<Net>,
    reader_net: Arc<Net>,
    output_at: SocketAddr,
    broker: SocketAddr,
    #[cfg(madsim)]
    broker_id: madsim::task::NodeId,
    #[cfg(madsim)]
    sink_id: madsim::task::NodeId,
    broker_disk: Arc<SimDisk>,
    /// The pipeline's own system's node and disk, when it has one.
    #[cfg(madsim)]
    system: Option<(madsim::task::NodeId, Arc<SimDisk>)>,
    /// Bumped by every `partition_sink`: a timed heal applies only to the
    /// cut it was set with.
    cut_gen: Arc<AtomicU64>,
    proc_: Option<SinkProc>,
    /// Detached stale processes, by `ZombieId` (`None` once failed or
    /// killed).
    zombies: Vec<Option<SinkProc>>,
    run: u64,
    attempt: u64,
    incarnation: u64,
    crash_at: Option<FaultPoint>,
}

/// Build the harness world and run `body` in it, on a fresh madsim runtime
/// in its own thread (panics propagate: use `assert!` in the body).
pub fn run_steps<F, Fut>(setup: Setup, body: F)
where
    F: FnOnce(Harness) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    std::thread::Builder::new()
        .name("step-harness".into())
        .stack_size(16 << 20)
        .spawn(move || run_here(setup, body))
        .expect("spawn the harness thread")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

#[cfg(not(madsim))]
fn run_here<F, Fut>(_setup: Setup, _body: F)
where
    F: FnOnce(Harness) -> Fut,
{
    panic!("the step harness needs --cfg madsim (see .cargo/config.toml)")
}

#[cfg(madsim)]
fn run_here<F, Fut>(setup: Setup, body: F)
where
    F: FnOnce(Harness) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut config = madsim::Config::default();
    config.net.send_latency = Duration::from_millis(1)..Duration::from_millis(5);
    let rt = madsim::runtime::Runtime::with_seed_and_config(setup.seed, config);
    rt.block_on(async move {
        let h = Harness::build(setup).await;
        body(h).await
    })
}

#[cfg(madsim)]
async fn bind(addr: SocketAddr) -> Arc<Net> {
    loop {
        match Net::bind(addr).await {
            Ok(n) => return n,
            Err(_) => madsim::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

#[cfg(madsim)]
impl Harness {
    async fn build(setup: Setup) -> Harness {
        let handle = madsim::runtime::Handle::current();
        let log = Arc::new(Log::default());
        let observer: Arc<dyn Observer> = log.clone();
        let mut rng = SimRng::new(setup.seed);
        let broker: SocketAddr = "10.0.0.2:7000".parse().unwrap();
        let broker_disk = Arc::new(SimDisk::new("broker", SimRng::new(rng.next_u64())));
        provision_input(&*broker_disk, &[]).await.expect("provision the broker");
        let (disk, obs, cfg) = (broker_disk.clone(), observer.clone(), setup.cfg.clone());
        let broker_node = handle
            .create_node()
            .name("broker")
            .ip(broker.ip())
            .init(move || {
                let (storage, obs, cfg): (Arc<dyn Storage>, _, _) = (disk.clone(), obs.clone(), cfg.clone());
                async move {
                    let net = bind(broker).await;
                    let node = BrokerNode::new(net, storage, Obs::new("broker", obs), &cfg);
                    run_broker(node).await
                }
            })
            .build();
        let (output_at, system_node) = match &setup.system {
            Some(system) => {
                let addr = system_addr();
                let system_disk = Arc::new(SimDisk::new(crate::schedule::SYSTEM_NODE, SimRng::new(rng.next_u64())));
                let disk: Arc<dyn Storage> = system_disk.clone();
                let (system, obs, cfg) = (system.clone(), observer.clone(), Arc::new(setup.cfg.clone()));
                let node = handle
                    .create_node()
                    .name(crate::schedule::SYSTEM_NODE)
                    .ip(addr.ip())
                    .init(move || {
                        let (system, storage, obs, cfg) = (system.clone(), disk.clone(), obs.clone(), cfg.clone());
                        async move {
                            let net = bind(addr).await;
                            system
                                .serve(SystemEnv {
                                    net,
                                    storage,
                                    obs: Obs::new(crate::schedule::SYSTEM_NODE, obs),
                                    cfg,
                                })
                                .await
                        }
                    })
                    .build();
                (addr, Some((node.id(), system_disk)))
            }
            None => (broker, None),
        };
        let sink_addr: SocketAddr = "10.0.1.1:7000".parse().unwrap();
        let sink_node = handle.create_node().name("worker-0").ip(sink_addr.ip()).build();
        let net = sink_node.spawn(bind(sink_addr)).await.expect("sink bind");
        let reader_addr: SocketAddr = "10.0.9.1:7000".parse().unwrap();
        let reader_node = handle.create_node().name("reader").ip(reader_addr.ip()).build();
        let reader_net = reader_node.spawn(bind(reader_addr)).await.expect("reader bind");
        for n in [net.clone(), reader_net.clone()] {
            // Drain requests and control messages addressed to these nodes.
            madsim::task::spawn(async move {
                loop {
                    n.recv().await;
                }
            });
        }
        Harness {
            setup,
            log,
            net,
            reader_net,
            output_at,
            broker,
            broker_id: broker_node.id(),
            sink_id: sink_node.id(),
            broker_disk,
            system: system_node,
            cut_gen: Arc::new(AtomicU64::new(0)),
            proc_: None,
            zombies: Vec::new(),
            run: 0,
            attempt: 0,
            incarnation: rng.next_u64(),
            crash_at: None,
        }
    }

    /// A new sink process of the current attempt; `try_no` is its recovery
    /// try (its sink session, as in the worker).
    fn new_proc(&self, try_no: u32) -> SinkProc {
        let cfg = Arc::new(JobConfig { run: self.run, ..self.setup.cfg.clone() });
        let env = SinkEnv {
            net: self.net.clone(),
            broker: self.broker,
            system: self.output_at,
            cfg: cfg.clone(),
            subtask: 0,
            route: {
                let parts = cfg.output_partitions();
                Arc::new(move |r: &OutRecord| exactsim_engine::types::key_to_subtask(r.key, parts))
            },
            obs: Obs::new("worker-0", self.log.clone()),
            attempt: self.attempt,
            incarnation: self.incarnation,
            session: (0, try_no as u64),
        };
        let clock = exactsim_engine::clock::Clock::new(&env.obs);
        SinkProc {
            task: SinkTask::new(0, self.attempt, &cfg),
            sink: (self.setup.sink)(env),
            clock,
            attempt: self.attempt,
        }
    }

    /// Execute the queued steps of the sink process.
    async fn drive(&mut self) -> Result<(), StepError> {
        let Some(p) = self.proc_.as_mut() else { return Err(StepError::NotRunning) };
        match p.run(&self.log, &mut self.crash_at).await {
            Ok(()) => Ok(()),
            Err(Stop::Crashed(pt)) => {
                self.crash_sink();
                Err(StepError::Crashed(pt))
            }
            Err(Stop::Failed(reason)) => {
                // A failed task is replaced: the process's state is gone.
                self.log.emit("worker-0", p.failed_event(&reason));
                self.proc_ = None;
                Err(StepError::Failed(reason))
            }
        }
    }

    /// A fresh start (no checkpoint): a new sink process aborts what
    /// earlier attempts of this run left (ids up to `fence_upto`) and
    /// begins its first transaction.
    pub async fn start(&mut self) -> Result<(), StepError> {
        self.start_fencing(0).await
    }

    /// `start`, fencing the ids of checkpoints up to `fence_upto` that
    /// earlier attempts may have used.
    pub async fn start_fencing(&mut self, fence_upto: CheckpointId) -> Result<(), StepError> {
        self.attempt += 1;
        let mut p = self.new_proc(0);
        p.task.restore(None, None, false, fence_upto);
        self.proc_ = Some(p);
        self.drive().await
    }

    /// Recovery of a new sink process from checkpoint `ckpt` whose sink
    /// state is `snap` (as returned by `snapshot`): re-commit its pending
    /// transactions, abort its open one and lingering ones, begin a new one.
    pub async fn restore(&mut self, snap: Option<&SinkSnapshot>, ckpt: CheckpointId) -> Result<(), StepError> {
        self.restore_with(snap, ckpt, false, ckpt).await
    }

    /// `restore` with every knob: `finished` (the restored state had reached
    /// the end of input) and `fence_upto` (the highest checkpoint id failed
    /// attempts may have used).
    pub async fn restore_with(
        &mut self,
        snap: Option<&SinkSnapshot>,
        ckpt: CheckpointId,
        finished: bool,
        fence_upto: CheckpointId,
    ) -> Result<(), StepError> {
        self.attempt += 1;
        let mut p = self.new_proc(0);
        p.task.restore(snap, Some(ckpt), finished, fence_upto);
        self.proc_ = Some(p);
        self.drive().await
    }

    /// `restore` the way a job's worker recovers: a try that fails is
    /// retried with a fresh sink (the same attempt, a later sink session)
    /// after the backoff's wait (`JobConfig::retry_backoff`), up to
    /// `JobConfig::sink_recovery_budget` tries; a lost transaction gives up
    /// at once. Each failed try records `TaskFailed` (`recovery: {error}`)
    /// and giving up records `JobFailed` and returns
    /// `StepError::Escalated` with its reason: the job would fail. The rule
    /// is the engine's own (`exactsim_engine::recovery::RecoveryBudget`).
    pub async fn restore_retrying(&mut self, snap: Option<&SinkSnapshot>, ckpt: CheckpointId) -> Result<(), StepError> {
        self.restore_retrying_with(snap, ckpt, false, ckpt).await
    }

    /// `restore_retrying` with the knobs of `restore_with`.
    pub async fn restore_retrying_with(
        &mut self,
        snap: Option<&SinkSnapshot>,
        ckpt: CheckpointId,
        finished: bool,
        fence_upto: CheckpointId,
    ) -> Result<(), StepError> {
        self.attempt += 1;
        let mut budget = RecoveryBudget::new(&self.setup.cfg, 0);
        loop {
            let mut p = self.new_proc(budget.tries());
            p.task.restore(snap, Some(ckpt), finished, fence_upto);
            let p = self.proc_.insert(p);
            match p.run(&self.log, &mut self.crash_at).await {
                Ok(()) => return Ok(()),
                Err(Stop::Crashed(pt)) => {
                    self.crash_sink();
                    return Err(StepError::Crashed(pt));
                }
                Err(Stop::Failed(e)) => {
                    let verdict = budget.failed(p.task.lost_for_good(), &e, madsim::rand::random());
                    self.proc_ = None;
                    for ev in recovery::events(self.attempt, exactsim_engine::types::TaskId::Chain(0), &e, &verdict) {
                        self.log.emit("worker-0", ev);
                    }
                    match verdict {
                        Verdict::Retry { after } => madsim::time::sleep(after).await,
                        Verdict::Escalate { reason } => return Err(StepError::Escalated(reason)),
                    }
                }
            }
        }
    }

    /// Output of the operator into the open transaction.
    pub async fn write(&mut self, records: Vec<OutRecord>) -> Result<(), StepError> {
        self.proc_.as_mut().ok_or(StepError::NotRunning)?.task.records(records);
        self.drive().await
    }

    /// Every input ended: no transaction is begun any more.
    pub fn end_of_input(&mut self) {
        if let Some(p) = self.proc_.as_mut() {
            p.task.end_of_input();
        }
    }

    /// Barrier `ckpt`: pre-commit, begin the next transaction; returns the
    /// sink's state in checkpoint `ckpt`.
    pub async fn snapshot(&mut self, ckpt: CheckpointId) -> Result<SinkSnapshot, StepError> {
        self.proc_.as_mut().ok_or(StepError::NotRunning)?.task.barrier(ckpt);
        self.drive().await?;
        Ok(self.proc_.as_ref().expect("running").task.snapshot())
    }

    /// Checkpoint `ckpt` completed.
    pub async fn notify(&mut self, ckpt: CheckpointId) -> Result<(), StepError> {
        self.proc_.as_mut().ok_or(StepError::NotRunning)?.task.notify(ckpt);
        self.drive().await
    }

    /// The sink process dies: its memory is gone; what survives is in the
    /// snapshots the test kept and in the sink's system. The next `start` or
    /// `restore` is a new process (a new incarnation). Without a crash, a
    /// `restore` is a new attempt in the same process, as when the job
    /// restarts globally.
    pub fn crash_sink(&mut self) {
        self.proc_ = None;
        self.incarnation = self.incarnation.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1);
    }

    /// Crash the sink process the next time a step reaches `point`
    /// (e.g. `FaultPoint::BetweenCommits`); the step returns
    /// `StepError::Crashed`.
    pub fn crash_at(&mut self, point: FaultPoint) {
        self.crash_at = Some(point);
    }

    /// The running sink process goes stale but does not die: a zombie (a
    /// process cut off from the job that the job gave up on, still running
    /// its old attempt, incarnation and sink session, with its open and
    /// pending transactions). The next `start` or `restore` is its
    /// replacement, a new process (as after `crash_sink`), and the
    /// `zombie_*` steps keep driving the old one beside it. A fencing sink
    /// refuses the zombie: its steps fail, and nothing it writes becomes
    /// visible. The zombie shares the sink node (its endpoint, its
    /// partitions) and records its events on `worker-0` under its own
    /// attempt. Panics when no sink process is running.
    pub fn detach_zombie(&mut self) -> ZombieId {
        let p = self.proc_.take().expect("detach_zombie: no sink process is running");
        self.zombies.push(Some(p));
        self.crash_sink(); // the replacement is a new process
        ZombieId(self.zombies.len() - 1)
    }

    /// Execute the queued steps of zombie `z` (`crash_at` does not apply).
    async fn drive_zombie(&mut self, z: ZombieId) -> Result<(), StepError> {
        let Some(p) = self.zombies.get_mut(z.0).and_then(Option::as_mut) else { return Err(StepError::NotRunning) };
        match p.run(&self.log, &mut None).await {
            Ok(()) => Ok(()),
            Err(Stop::Crashed(pt)) => unreachable!("no crash point is set for a zombie: {pt:?}"),
            Err(Stop::Failed(reason)) => {
                self.log.emit("worker-0", p.failed_event(&reason));
                self.zombies[z.0] = None;
                Err(StepError::Failed(reason))
            }
        }
    }

    fn zombie(&mut self, z: ZombieId) -> Result<&mut SinkProc, StepError> {
        self.zombies.get_mut(z.0).and_then(Option::as_mut).ok_or(StepError::NotRunning)
    }

    /// `write` by zombie `z` (into its own open transaction).
    pub async fn zombie_write(&mut self, z: ZombieId, records: Vec<OutRecord>) -> Result<(), StepError> {
        self.zombie(z)?.task.records(records);
        self.drive_zombie(z).await
    }

    /// `snapshot` by zombie `z`: it pre-commits its open transaction and
    /// begins the next one.
    pub async fn zombie_snapshot(&mut self, z: ZombieId, ckpt: CheckpointId) -> Result<SinkSnapshot, StepError> {
        self.zombie(z)?.task.barrier(ckpt);
        self.drive_zombie(z).await?;
        Ok(self.zombie(z)?.task.snapshot())
    }

    /// `notify` to zombie `z`: it commits its pending transactions up to
    /// `ckpt`.
    pub async fn zombie_notify(&mut self, z: ZombieId, ckpt: CheckpointId) -> Result<(), StepError> {
        self.zombie(z)?.task.notify(ckpt);
        self.drive_zombie(z).await
    }

    /// `end_of_input` for zombie `z`.
    pub fn zombie_end_of_input(&mut self, z: ZombieId) {
        if let Ok(p) = self.zombie(z) {
            p.task.end_of_input();
        }
    }

    /// Whether zombie `z` still runs (its steps have not failed).
    pub fn zombie_running(&self, z: ZombieId) -> bool {
        self.zombies.get(z.0).is_some_and(Option::is_some)
    }

    /// Zombie `z` dies at last (its memory is gone).
    pub fn kill_zombie(&mut self, z: ZombieId) {
        if let Some(slot) = self.zombies.get_mut(z.0) {
            *slot = None;
        }
    }

    /// A new run of the job (fresh coordinator state): attempts start from
    /// 1 again under a larger `JobConfig::run`. (The sink's process identity
    /// is kept: the harshest case for request ids derived from it.)
    pub fn new_run(&mut self) {
        self.proc_ = None;
        self.run += 1;
        self.attempt = 0;
    }

    /// Crash the broker (what it had not synced is lost with `mode`) and
    /// restart it after `down_ms` of simulated time.
    pub async fn crash_broker(&mut self, mode: CrashMode, down_ms: u64) {
        let handle = madsim::runtime::Handle::current();
        handle.kill(self.broker_id);
        self.broker_disk.crash(mode);
        madsim::time::sleep(Duration::from_millis(down_ms)).await;
        handle.restart(self.broker_id);
        madsim::time::sleep(Duration::from_millis(20)).await;
    }

    /// Crash the sink's own system (a `Setup::with_system` system, on its
    /// node and disk): what it had not synced is lost with `mode`; it is
    /// restarted after `down_ms` of simulated time and recovers from its
    /// disk (`SinkSystem::serve` runs again). Without a system of its own
    /// the sink writes to the broker, and this crashes the broker
    /// (`crash_broker`).
    pub async fn crash_system(&mut self, mode: CrashMode, down_ms: u64) {
        let Some((id, disk)) = self.system.clone() else {
            return self.crash_broker(mode, down_ms).await;
        };
        let handle = madsim::runtime::Handle::current();
        handle.kill(id);
        disk.crash(mode);
        madsim::time::sleep(Duration::from_millis(down_ms)).await;
        handle.restart(id);
        madsim::time::sleep(Duration::from_millis(20)).await;
    }

    /// Cut the sink off the network (`true`) or heal it (`false`).
    pub fn partition_sink(&mut self, cut: bool) {
        self.cut_gen.fetch_add(1, Ordering::Relaxed);
        let net = madsim::net::NetSim::current();
        if cut {
            net.clog_node(self.sink_id);
        } else {
            net.unclog_node(self.sink_id);
        }
    }

    /// Cut the sink off the network now and heal it after `ms` of simulated
    /// time, while the next steps run (e.g. `restore_retrying` through an
    /// outage). A later `partition_sink` overrides the timed heal.
    pub fn partition_sink_for(&mut self, ms: u64) {
        self.partition_sink(true);
        let (gen, at, id) = (self.cut_gen.clone(), self.cut_gen.load(Ordering::Relaxed), self.sink_id);
        madsim::task::spawn(async move {
            madsim::time::sleep(Duration::from_millis(ms)).await;
            if gen.load(Ordering::Relaxed) == at {
                madsim::net::NetSim::current().unclog_node(id);
            }
        });
    }

    /// Let simulated time pass (the broker times transactions out).
    pub async fn sleep(&mut self, ms: u64) {
        madsim::time::sleep(Duration::from_millis(ms)).await;
    }

    /// What a `read_committed` reader sees in `partition` (out_ids).
    pub async fn committed(&self, partition: u32) -> Vec<u64> {
        for _ in 0..20 {
            let r = self.setup.reader.read(&self.reader_net, self.output_at, partition, 0, Duration::from_millis(200));
            if let Some(step) = r.await {
                return step.records.iter().map(|o| o.out_id).collect();
            }
        }
        panic!("the sink's system did not answer the reader");
    }

    /// Transactions the sink's system holds open.
    pub async fn open_in_system(&self) -> Vec<(String, u64)> {
        for _ in 0..20 {
            if let Some(t) =
                self.setup.reader.open_txns(&self.reader_net, self.output_at, Duration::from_millis(200)).await
            {
                return t;
            }
        }
        panic!("the sink's system did not answer the reader");
    }

    /// The transaction the sink process has open, if any.
    pub fn open_txn(&self) -> Option<&TxnHandle> {
        self.proc_.as_ref()?.task.open()
    }

    /// Pre-committed transactions not yet committed.
    pub fn pending(&self) -> usize {
        self.proc_.as_ref().map_or(0, |p| p.task.pending_count())
    }

    /// Commits the running process found lost (with `ignore_lost_commits`).
    pub fn lost_commits(&self) -> u64 {
        self.proc_.as_ref().map_or(0, |p| p.task.lost_commits)
    }

    /// Every event so far, with the node it happened on.
    pub fn events(&self) -> Vec<(String, Event)> {
        self.log.0.lock().unwrap().clone()
    }

    /// The job attempt of the running (or last) sink process.
    pub fn attempt(&self) -> u64 {
        self.attempt
    }
}

#[cfg(madsim)]
impl SinkProc {
    fn task_id(&self) -> exactsim_engine::types::TaskId {
        exactsim_engine::types::TaskId::Chain(0)
    }

    /// The event of this process's task failing for `reason`.
    fn failed_event(&self, reason: &str) -> Event {
        Event::TaskFailed { attempt: self.attempt, task: self.task_id(), reason: reason.to_string() }
    }

    /// Execute the queued steps until idle. At `crash_at`'s point the
    /// process stops (`crash_at` is cleared); the caller crashes it.
    async fn run(&mut self, log: &Log, crash_at: &mut Option<FaultPoint>) -> Result<(), Stop> {
        loop {
            match self.task.next_step() {
                Step::Idle => return Ok(()),
                Step::Call(c) => {
                    let r = execute(&mut *self.sink, c).await;
                    self.task.tick(self.clock.epoch_ms());
                    self.task.done(r);
                }
                Step::Emit(e) => log.emit("worker-0", e),
                Step::Reach(_) => {}
                Step::Done(_) => {}
                Step::Point(pt) => {
                    if *crash_at == Some(pt) {
                        *crash_at = None;
                        return Err(Stop::Crashed(pt));
                    }
                }
                Step::Fail(reason) => return Err(Stop::Failed(reason)),
            }
        }
    }
}
