//! One simulated run: builds the cluster on madsim (coordinator, broker,
//! checkpoint store, workers, and a `read_committed` reader), executes the
//! fault schedule during the safety phase, heals everything, waits for the
//! job to finish within the liveness bound, and returns the history.
//!
//! A run is a function of `(scenario, seed, profile, mode, mutant, code)`.
//! Each run gets its own madsim runtime in a fresh OS thread: std's hash
//! seeds are per thread, and madsim keeps per-runtime state. That thread is
//! the harness around a simulation, never inside one.

#![cfg_attr(not(madsim), allow(unused_imports, dead_code))]

use crate::disk::{CrashMode, SimDisk};
use crate::history::{History, Observation, SimEvent};
use crate::recorder::{CrashRequest, Recorder};
use crate::rng::{SimRng, Stream};
use crate::scenario::Scenario;
use crate::schedule::{generate, FaultEvent, Profile, Schedule};
use exactsim_engine::broker::{provision_input, run_broker, BrokerNode};
use exactsim_engine::config::{JobConfig, Mutant};
use exactsim_engine::coordinator::{run_coordinator, CoordinatorNode};
use exactsim_engine::net::{Addrs, Net};
use exactsim_engine::observe::{FaultPoint, Obs, Observer};
use exactsim_engine::storage::Storage;
use exactsim_engine::store::{run_store, StoreNode};
use exactsim_engine::types::{DeliveryMode, OutRecord};
use exactsim_engine::worker::{run_worker, WorkerNode};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone)]
pub struct RunSpec {
    pub scenario: Arc<dyn Scenario>,
    pub seed: u64,
    pub profile: Profile,
    pub mode: DeliveryMode,
    pub mutant: Option<Mutant>,
    /// An explicit schedule (replay, shrink); else derived from seed+profile.
    pub schedule: Option<Schedule>,
    /// A fixed job configuration; else derived from the seed.
    pub config: Option<JobConfig>,
    /// Keep the hash after every event (for divergence reports).
    pub keep_chain: bool,
}

pub struct RunResult {
    pub history: History,
    pub trace_hash: u64,
    pub chain: Vec<u64>,
    pub coverage: BTreeMap<(String, FaultPoint), u64>,
    pub schedule: Schedule,
    pub config: JobConfig,
    /// Faults that actually landed, by kind.
    pub faults: BTreeMap<String, u64>,
    pub sim_time_ms: u64,
    pub net_messages: u64,
    /// The run panicked: the history above ends where it did.
    pub panic: Option<crate::panics::PanicReport>,
}

/// The job configuration of a run: defaults, then the seed's topology, then
/// the scenario's tuning, then mode and mutant.
pub fn derive_config(spec: &RunSpec) -> JobConfig {
    if let Some(c) = &spec.config {
        let mut c = c.clone();
        c.mode = spec.mode;
        c.mutant = spec.mutant;
        return c;
    }
    let mut rng = SimRng::derive(spec.seed, Stream::Topology);
    let mut cfg = JobConfig {
        parallelism: rng.range(2, 4) as u32,
        checkpoint_interval_ms: rng.range(40, 150),
        max_concurrent_checkpoints: rng.range(1, 2) as u32,
        source_batch: rng.range(8, 32) as u32,
        ..JobConfig::default()
    };
    spec.scenario.tune(&mut cfg, &mut rng);
    cfg.mode = spec.mode;
    cfg.mutant = spec.mutant;
    if spec.mutant == Some(Mutant::ShortTxnTimeout) {
        // Shorter than a checkpoint plus its notification: the unsafe setting.
        cfg.txn_timeout_ms = cfg.checkpoint_interval_ms;
    }
    cfg
}

/// Run one seed. A panic anywhere inside the run (an engine assertion, a
/// scenario's code, the simulator) does not escape: the result carries it
/// in `panic`, with the history recorded up to that moment (deterministic,
/// like any other history) so the report, the timeline and the trace still
/// show what led there.
pub fn run(spec: RunSpec) -> RunResult {
    std::thread::Builder::new()
        .name(format!("seed-{}", spec.seed))
        .stack_size(16 << 20)
        .spawn(move || {
            let salvage: Salvage = Arc::new(Mutex::new(None));
            let slot = salvage.clone();
            let cfg = derive_config_or_default(&spec);
            match crate::panics::capture(|| run_here(spec.clone(), slot)) {
                Ok(r) => r,
                Err(p) => salvaged(&spec, &salvage, cfg, p),
            }
        })
        .expect("spawn the run's thread")
        .join()
        .expect("a run's panics are captured inside its thread")
}

/// What a run leaves behind for [`salvaged`] once its recorder exists.
type Salvage = Arc<Mutex<Option<SalvageParts>>>;

struct SalvageParts {
    recorder: Arc<Recorder>,
    schedule: Schedule,
    input: Vec<Vec<exactsim_engine::types::Record>>,
}

fn derive_config_or_default(spec: &RunSpec) -> JobConfig {
    crate::panics::capture(|| derive_config(spec)).unwrap_or_default()
}

/// The result of a run that panicked: everything recorded before the panic.
fn salvaged(spec: &RunSpec, salvage: &Salvage, config: JobConfig, panic: crate::panics::PanicReport) -> RunResult {
    let parts = salvage.lock().unwrap_or_else(|e| e.into_inner()).take();
    let (events, chain, coverage, trace_hash, schedule, input) = match parts {
        Some(p) => {
            let (events, chain, coverage, hash) = p.recorder.take_after_panic();
            (events, chain, coverage, hash, p.schedule, p.input)
        }
        None => (
            Vec::new(),
            Vec::new(),
            BTreeMap::new(),
            crate::recorder::FNV_OFFSET,
            spec.schedule.clone().unwrap_or(Schedule { safety_ms: 0, liveness_ms: 0, events: Vec::new() }),
            Vec::new(),
        ),
    };
    let sim_time_ms = events.last().map_or(0, |e| e.t_us / 1000);
    let mut faults: BTreeMap<String, u64> = BTreeMap::new();
    for e in &events {
        if let crate::history::Ev::Sim(SimEvent::FaultStarted { kind, .. }) = &e.ev {
            *faults.entry(kind.clone()).or_insert(0) += 1;
        }
        if let crate::history::Ev::Sim(SimEvent::NodeCrashed { cause, .. }) = &e.ev {
            let kind = if cause.starts_with("fault point") { "crash_at_point" } else { "crash" };
            *faults.entry(kind.into()).or_insert(0) += 1;
        }
    }
    let history = History {
        scenario: spec.scenario.name().to_string(),
        seed: spec.seed,
        mode: spec.mode,
        parallelism: config.parallelism,
        output_partitions: config.output_partitions(),
        input,
        events,
        observations: Vec::new(),
        final_output: Vec::new(),
        final_read_ok: false,
        final_open_txns: Vec::new(),
        healed_at_us: 0,
        deadline_us: 0,
        finished_at_us: None,
    };
    RunResult {
        history,
        trace_hash,
        chain,
        coverage,
        schedule,
        config,
        faults,
        sim_time_ms,
        net_messages: 0,
        panic: Some(panic),
    }
}

#[cfg(madsim)]
fn run_here(spec: RunSpec, salvage: Salvage) -> RunResult {
    let mut config = madsim::Config::default();
    config.net.send_latency = Duration::from_millis(1)..Duration::from_millis(5);
    let rt = madsim::runtime::Runtime::with_seed_and_config(spec.seed, config);
    rt.block_on(simulate(spec, salvage))
}

#[cfg(not(madsim))]
fn run_here(_spec: RunSpec, _salvage: Salvage) -> RunResult {
    panic!("simulation needs --cfg madsim (see .cargo/config.toml)")
}

#[cfg(madsim)]
struct Cluster {
    ids: BTreeMap<String, madsim::task::NodeId>,
    disks: BTreeMap<String, Arc<SimDisk>>,
}

#[cfg(madsim)]
async fn simulate(spec: RunSpec, salvage: Salvage) -> RunResult {
    use madsim::net::NetSim;
    use madsim::runtime::Handle;

    let cfg = Arc::new(derive_config(&spec));
    let n = cfg.parallelism;
    let input = spec.scenario.generate(&mut SimRng::derive(spec.seed, Stream::Workload), cfg.input_partitions());
    let schedule = spec.schedule.clone().unwrap_or_else(|| generate(spec.seed, &spec.profile, n));
    let (crash_tx, mut crash_rx) = tokio::sync::mpsc::unbounded_channel::<CrashRequest>();
    let recorder = Arc::new(Recorder::new(&schedule.events, crash_tx, spec.keep_chain));
    *salvage.lock().unwrap() =
        Some(SalvageParts { recorder: recorder.clone(), schedule: schedule.clone(), input: input.clone() });
    recorder.start_clock();
    recorder.sim("sim", SimEvent::RunStarted);
    let observer: Arc<dyn Observer> = recorder.clone();
    let handle = Handle::current();
    let netsim = NetSim::current();
    let addrs = Addrs::standard(n);
    let pipeline = spec.scenario.pipeline();

    // Disks outlive node restarts.
    let mut disk_rng = SimRng::derive(spec.seed, Stream::Disk);
    let mut disks = BTreeMap::new();
    for name in crate::schedule::DISK_NODES {
        disks.insert(name.to_string(), Arc::new(SimDisk::new(name, SimRng::new(disk_rng.next_u64()))));
    }
    provision_input(&*disks["broker"], &input).await.expect("provision the input topic");

    let mut ids = BTreeMap::new();
    {
        let (disk, obs, cfg, addr): (Arc<dyn Storage>, _, _, _) =
            (disks["broker"].clone(), observer.clone(), cfg.clone(), addrs.broker);
        let h = handle
            .create_node()
            .name("broker")
            .ip(addr.ip())
            .init(move || {
                let (disk, obs, cfg) = (disk.clone(), obs.clone(), cfg.clone());
                async move {
                    let net = bind(addr).await;
                    let node = BrokerNode {
                        net,
                        storage: disk,
                        obs: Obs::new("broker", obs),
                        output_partitions: cfg.output_partitions(),
                        txn_timeout_ms: cfg.txn_timeout_ms,
                    };
                    run_broker(node).await
                }
            })
            .build();
        ids.insert("broker".to_string(), h.id());
    }
    {
        let (disk, obs, cfg, addr): (Arc<dyn Storage>, _, _, _) =
            (disks["store"].clone(), observer.clone(), cfg.clone(), addrs.store);
        let h = handle
            .create_node()
            .name("store")
            .ip(addr.ip())
            .init(move || {
                let (disk, obs, cfg) = (disk.clone(), obs.clone(), cfg.clone());
                async move {
                    let net = bind(addr).await;
                    run_store(StoreNode { net, storage: disk, obs: Obs::new("store", obs), cfg }).await
                }
            })
            .build();
        ids.insert("store".to_string(), h.id());
    }
    for i in 0..n {
        let (obs, cfg, addrs2, pipeline) = (observer.clone(), cfg.clone(), addrs.clone(), pipeline.clone());
        let name = format!("worker-{i}");
        let addr = addrs.workers[i as usize];
        let nm = name.clone();
        let h = handle
            .create_node()
            .name(&name)
            .ip(addr.ip())
            .init(move || {
                let (obs, cfg, addrs, pipeline, nm) =
                    (obs.clone(), cfg.clone(), addrs2.clone(), pipeline.clone(), nm.clone());
                async move {
                    let net = bind(addr).await;
                    run_worker(WorkerNode { index: i, net, obs: Obs::new(&nm, obs), cfg, addrs, pipeline }).await
                }
            })
            .build();
        ids.insert(name, h.id());
    }
    {
        let (disk, obs, cfg, addrs2): (Arc<dyn Storage>, _, _, _) =
            (disks["coordinator"].clone(), observer.clone(), cfg.clone(), addrs.clone());
        let addr = addrs.coordinator;
        let h = handle
            .create_node()
            .name("coordinator")
            .ip(addr.ip())
            .init(move || {
                let (disk, obs, cfg, addrs) = (disk.clone(), obs.clone(), cfg.clone(), addrs2.clone());
                async move {
                    let net = bind(addr).await;
                    run_coordinator(CoordinatorNode {
                        net,
                        storage: disk,
                        obs: Obs::new("coordinator", obs),
                        cfg,
                        addrs,
                    })
                    .await
                }
            })
            .build();
        ids.insert("coordinator".to_string(), h.id());
    }
    // The sink's own system, if the pipeline has one: its own node and disk
    // (outside the fault schedule), at SYSTEM_ADDR.
    let output_at = match pipeline.system() {
        Some(system) => {
            let addr = exactsim_engine::system::system_addr();
            let disk = Arc::new(SimDisk::new("system", SimRng::new(disk_rng.next_u64())));
            let (obs, cfg, d) = (observer.clone(), cfg.clone(), disk.clone());
            let h = handle
                .create_node()
                .name("system")
                .ip(addr.ip())
                .init(move || {
                    let (system, obs, cfg, storage): (_, _, _, Arc<dyn Storage>) =
                        (system.clone(), obs.clone(), cfg.clone(), d.clone());
                    async move {
                        let net = bind(addr).await;
                        let env =
                            exactsim_engine::system::SystemEnv { net, storage, obs: Obs::new("system", obs), cfg };
                        system.serve(env).await
                    }
                })
                .build();
            ids.insert("system".to_string(), h.id());
            disks.insert("system".to_string(), disk);
            addr
        }
        None => addrs.broker,
    };
    // The reader: a read_committed consumer of the sink system's output
    // (through the pipeline's `OutputReader`), outside the fault schedule.
    let output_reader = pipeline.reader();
    let out_n = cfg.output_partitions();
    let observations = Arc::new(Mutex::new(Vec::<Observation>::new()));
    let reader_addr: SocketAddr = "10.0.9.1:7000".parse().unwrap();
    let reader = handle.create_node().name("reader").ip(reader_addr.ip()).build();
    let reader_net = reader.spawn(async move { bind(reader_addr).await }).await.expect("reader bind");
    {
        // Route replies to the reader's calls.
        let net = reader_net.clone();
        reader.spawn(async move {
            loop {
                net.recv().await;
            }
        });
    }
    {
        let (net, obs_list, rec, out) =
            (reader_net.clone(), observations.clone(), recorder.clone(), output_reader.clone());
        reader.spawn(async move {
            let mut offsets = vec![0u64; out_n as usize];
            loop {
                for p in 0..out_n {
                    if let Some(step) =
                        out.read(&net, output_at, p, offsets[p as usize], Duration::from_millis(50)).await
                    {
                        offsets[p as usize] = step.next_offset;
                        if !step.records.is_empty() {
                            obs_list.lock().unwrap().push(Observation {
                                t_us: rec.now_us(),
                                partition: p,
                                new_records: step.records,
                                open_txns: step.open_txns,
                            });
                        }
                    }
                }
                madsim::time::sleep(Duration::from_millis(25)).await;
            }
        });
    }

    let mut cluster = Cluster { ids, disks };
    let mut world = Faults::default();
    let start = madsim::time::Instant::now();
    let at = |ms: u64| start + Duration::from_millis(ms);

    // Timeline of the safety phase.
    let mut timeline: Vec<(u64, usize, bool)> = Vec::new(); // (ms, event index, is_end)
    for (i, e) in schedule.events.iter().enumerate() {
        match e {
            FaultEvent::CrashAtPoint { .. } => {}
            FaultEvent::Crash { at_ms, .. } => timeline.push((*at_ms, i, false)),
            FaultEvent::Partition { at_ms, dur_ms, .. }
            | FaultEvent::Isolate { at_ms, dur_ms, .. }
            | FaultEvent::PacketLoss { at_ms, dur_ms, .. }
            | FaultEvent::Latency { at_ms, dur_ms, .. }
            | FaultEvent::SlowDisk { at_ms, dur_ms, .. }
            | FaultEvent::DiskErrors { at_ms, dur_ms, .. }
            | FaultEvent::CorruptReads { at_ms, dur_ms, .. } => {
                timeline.push((*at_ms, i, false));
                timeline.push((at_ms.saturating_add(*dur_ms).min(schedule.safety_ms), i, true));
            }
        }
    }
    timeline.sort();
    let mut next = 0usize;
    let mut restarts: BTreeMap<(u64, String), ()> = BTreeMap::new();
    let mut faults: BTreeMap<String, u64> = BTreeMap::new();

    loop {
        let now_ms = start.elapsed().as_millis() as u64;
        let next_ms = [timeline.get(next).map(|t| t.0), restarts.keys().next().map(|k| k.0), Some(schedule.safety_ms)]
            .into_iter()
            .flatten()
            .min()
            .unwrap();
        if now_ms >= schedule.safety_ms && next_ms >= schedule.safety_ms {
            break;
        }
        tokio::select! {
            biased;
            Some(req) = crash_rx.recv() => {
                let (down_ms, mode) = match req.schedule_index.map(|i| &schedule.events[i]) {
                    Some(FaultEvent::CrashAtPoint { down_ms, disk, .. }) => {
                        *faults.entry("crash_at_point".into()).or_insert(0) += 1;
                        (*down_ms, *disk)
                    }
                    _ => (50, CrashMode::KeepAll),
                };
                crash(&handle, &recorder, &mut cluster, &req.node, &req.cause, mode, &mut faults);
                restarts.insert((now_ms.saturating_add(down_ms), req.node.clone()), ());
            }
            _ = madsim::time::sleep_until(at(next_ms)) => {
                let now_ms = start.elapsed().as_millis() as u64;
                while let Some(((t, node), ())) = restarts.first_key_value().map(|(k, v)| (k.clone(), *v)) {
                    if t > now_ms { break; }
                    restarts.remove(&(t, node.clone()));
                    restart(&handle, &recorder, &cluster, &node);
                }
                while next < timeline.len() && timeline[next].0 <= now_ms {
                    let (_, i, is_end) = timeline[next];
                    next += 1;
                    let e = &schedule.events[i];
                    if is_end {
                        world.end(e, &netsim, &cluster, &recorder);
                    } else if let FaultEvent::Crash { node, down_ms, disk, .. } = e {
                        if !recorder.is_down(node) {
                            recorder.set_down(node, true);
                            *faults.entry("crash".into()).or_insert(0) += 1;
                            crash(&handle, &recorder, &mut cluster, node, "scheduled crash", *disk, &mut faults);
                            restarts.insert((now_ms.saturating_add(*down_ms), node.clone()), ());
                        }
                    } else {
                        *faults.entry(e.kind().to_string()).or_insert(0) += 1;
                        world.start(e, &netsim, &cluster, &recorder);
                    }
                }
            }
        }
    }

    // Liveness phase: heal everything, bring every node up.
    recorder.end_safety();
    world.heal_all(&netsim, &cluster, &recorder);
    for ((_, node), ()) in std::mem::take(&mut restarts) {
        restart(&handle, &recorder, &cluster, &node);
    }
    recorder.sim("sim", SimEvent::Healed);
    let healed_at_us = recorder.now_us();
    let deadline_us = healed_at_us.saturating_add(schedule.liveness_ms.saturating_mul(1000));
    let mut grace_until: Option<u64> = None;
    loop {
        let now_us = recorder.now_us();
        if grace_until.is_none() && (recorder.finished_at_us().is_some() || now_us >= deadline_us) {
            grace_until = Some(now_us.saturating_add(200_000));
        }
        if grace_until.is_some_and(|g| now_us >= g) {
            break;
        }
        tokio::select! {
            biased;
            Some(req) = crash_rx.recv() => {
                // Fatal errors still restart nodes, as a supervisor would.
                crash(&handle, &recorder, &mut cluster, &req.node, &req.cause, CrashMode::KeepAll, &mut faults);
                madsim::time::sleep(Duration::from_millis(50)).await;
                restart(&handle, &recorder, &cluster, &req.node);
            }
            _ = madsim::time::sleep(Duration::from_millis(10)) => {}
        }
    }
    // Final read of what a read_committed reader sees.
    let net = reader_net.clone();
    let (final_output, final_read_ok, final_open_txns) = reader
        .spawn(async move {
            let t = Duration::from_millis(200);
            let mut out: Vec<Vec<OutRecord>> = Vec::new();
            let mut ok = true;
            for p in 0..out_n {
                let mut got = None;
                for _ in 0..=10 {
                    got = output_reader.read(&net, output_at, p, 0, t).await;
                    if got.is_some() {
                        break;
                    }
                }
                match got {
                    Some(step) => out.push(step.records),
                    None => {
                        ok = false;
                        out.push(Vec::new());
                    }
                }
            }
            let mut open = None;
            for _ in 0..=10 {
                open = output_reader.open_txns(&net, output_at, t).await;
                if open.is_some() {
                    break;
                }
            }
            if open.is_none() {
                ok = false;
            }
            (out, ok, open.unwrap_or_default())
        })
        .await
        .expect("final read");
    recorder.sim("sim", SimEvent::RunEnded);
    for (name, d) in &cluster.disks {
        let s = d.stats();
        let _ = name;
        *faults.entry("disk_errors".into()).or_insert(0) += 0;
        if s.injected_errors > 0 {
            *faults.entry("io_error".into()).or_insert(0) += s.injected_errors;
        }
        if s.corrupted_reads > 0 {
            *faults.entry("corrupt_read".into()).or_insert(0) += s.corrupted_reads;
        }
        if s.slow_ops > 0 {
            *faults.entry("slow_disk_op".into()).or_insert(0) += s.slow_ops;
        }
    }
    faults.retain(|_, v| *v > 0);
    let sim_time_ms = start.elapsed().as_millis() as u64;
    let finished_at_us = recorder.finished_at_us();
    let (events, chain, coverage, trace_hash) = recorder.take();
    let history = History {
        scenario: spec.scenario.name().to_string(),
        seed: spec.seed,
        mode: spec.mode,
        parallelism: n,
        output_partitions: out_n,
        input,
        events,
        observations: std::mem::take(&mut *observations.lock().unwrap()),
        final_output,
        final_read_ok,
        final_open_txns,
        healed_at_us,
        deadline_us,
        finished_at_us,
    };
    let net_messages = netsim.stat().msg_count;
    RunResult {
        history,
        trace_hash,
        chain,
        coverage,
        schedule,
        config: (*cfg).clone(),
        faults,
        sim_time_ms,
        net_messages,
        panic: None,
    }
}

async fn bind(addr: SocketAddr) -> Arc<Net> {
    loop {
        match Net::bind(addr).await {
            Ok(n) => return n,
            Err(_) => madsim::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

#[cfg(madsim)]
fn crash(
    handle: &madsim::runtime::Handle,
    recorder: &Recorder,
    cluster: &mut Cluster,
    node: &str,
    cause: &str,
    mode: CrashMode,
    faults: &mut BTreeMap<String, u64>,
) {
    let id = cluster.ids[node];
    handle.kill(id);
    recorder.set_down(node, true);
    let (lost, torn) = match cluster.disks.get(node) {
        Some(d) => {
            let r = d.crash(mode);
            (r.lost_bytes, r.torn_files)
        }
        None => (0, 0),
    };
    if lost > 0 {
        *faults.entry("lost_unsynced".into()).or_insert(0) += 1;
    }
    if torn > 0 {
        *faults.entry("torn_write".into()).or_insert(0) += 1;
    }
    recorder.sim(
        node,
        SimEvent::NodeCrashed { node: node.to_string(), cause: cause.to_string(), lost_bytes: lost, torn_files: torn },
    );
}

#[cfg(madsim)]
fn restart(handle: &madsim::runtime::Handle, recorder: &Recorder, cluster: &Cluster, node: &str) {
    if !recorder.is_down(node) {
        return;
    }
    handle.restart(cluster.ids[node]);
    recorder.set_down(node, false);
    recorder.sim(node, SimEvent::NodeRestarted { node: node.to_string() });
}

/// Active windowed faults, reference-counted so overlapping windows heal
/// correctly.
#[derive(Default)]
struct Faults {
    links: BTreeMap<(String, String), u32>,
    isolated: BTreeMap<String, u32>,
    loss: Vec<u32>,
    latency: Vec<u64>,
    slow: BTreeMap<String, Vec<u64>>,
    errors: BTreeMap<String, Vec<u32>>,
    corrupt: BTreeMap<String, Vec<u32>>,
}

#[cfg(madsim)]
impl Faults {
    fn start(&mut self, e: &FaultEvent, net: &madsim::net::NetSim, c: &Cluster, rec: &Recorder) {
        rec.sim("sim", SimEvent::FaultStarted { kind: e.kind().into(), detail: e.describe() });
        match e {
            FaultEvent::Partition { a, b, one_way, .. } => {
                *self.links.entry((a.clone(), b.clone())).or_insert(0) += 1;
                if !one_way {
                    *self.links.entry((b.clone(), a.clone())).or_insert(0) += 1;
                }
            }
            FaultEvent::Isolate { node, .. } => *self.isolated.entry(node.clone()).or_insert(0) += 1,
            FaultEvent::PacketLoss { permille, .. } => self.loss.push(*permille),
            FaultEvent::Latency { latency_ms, .. } => self.latency.push(*latency_ms),
            FaultEvent::SlowDisk { node, latency_ms, .. } => {
                self.slow.entry(node.clone()).or_default().push(*latency_ms)
            }
            FaultEvent::DiskErrors { node, permille, .. } => {
                self.errors.entry(node.clone()).or_default().push(*permille)
            }
            FaultEvent::CorruptReads { node, permille, .. } => {
                self.corrupt.entry(node.clone()).or_default().push(*permille)
            }
            FaultEvent::Crash { .. } | FaultEvent::CrashAtPoint { .. } => unreachable!(),
        }
        self.apply(net, c);
    }

    fn end(&mut self, e: &FaultEvent, net: &madsim::net::NetSim, c: &Cluster, rec: &Recorder) {
        fn dec<K: Ord + Clone>(m: &mut BTreeMap<K, u32>, k: &K) {
            if let Some(v) = m.get_mut(k) {
                *v -= 1;
                if *v == 0 {
                    m.remove(k);
                }
            }
        }
        fn remove_one<T: PartialEq>(v: &mut Vec<T>, x: &T) {
            if let Some(i) = v.iter().position(|y| y == x) {
                v.remove(i);
            }
        }
        match e {
            FaultEvent::Partition { a, b, one_way, .. } => {
                dec(&mut self.links, &(a.clone(), b.clone()));
                if !one_way {
                    dec(&mut self.links, &(b.clone(), a.clone()));
                }
            }
            FaultEvent::Isolate { node, .. } => dec(&mut self.isolated, node),
            FaultEvent::PacketLoss { permille, .. } => remove_one(&mut self.loss, permille),
            FaultEvent::Latency { latency_ms, .. } => remove_one(&mut self.latency, latency_ms),
            FaultEvent::SlowDisk { node, latency_ms, .. } => {
                remove_one(self.slow.entry(node.clone()).or_default(), latency_ms)
            }
            FaultEvent::DiskErrors { node, permille, .. } => {
                remove_one(self.errors.entry(node.clone()).or_default(), permille)
            }
            FaultEvent::CorruptReads { node, permille, .. } => {
                remove_one(self.corrupt.entry(node.clone()).or_default(), permille)
            }
            FaultEvent::Crash { .. } | FaultEvent::CrashAtPoint { .. } => unreachable!(),
        }
        rec.sim("sim", SimEvent::FaultEnded { kind: e.kind().into(), detail: e.describe() });
        self.apply(net, c);
    }

    fn heal_all(&mut self, net: &madsim::net::NetSim, c: &Cluster, _rec: &Recorder) {
        *self = Faults::default();
        self.apply(net, c);
    }

    /// Make the network and disks match the active set.
    fn apply(&self, net: &madsim::net::NetSim, c: &Cluster) {
        for (a, ida) in &c.ids {
            if self.isolated.contains_key(a) {
                net.clog_node(*ida);
            } else {
                net.unclog_node(*ida);
            }
            for (b, idb) in &c.ids {
                if a == b {
                    continue;
                }
                if self.links.contains_key(&(a.clone(), b.clone())) {
                    net.clog_link(*ida, *idb);
                } else {
                    net.unclog_link(*ida, *idb);
                }
            }
        }
        let loss = self.loss.iter().copied().max().unwrap_or(0);
        let lat = self.latency.iter().copied().max().unwrap_or(5).max(5);
        net.update_config(|cfg| {
            cfg.packet_loss_rate = loss as f64 / 1000.0;
            cfg.send_latency = Duration::from_millis(1)..Duration::from_millis(lat);
        });
        for (name, d) in &c.disks {
            d.set_slow(self.slow.get(name).and_then(|v| v.iter().copied().max()));
            d.set_error_permille(self.errors.get(name).and_then(|v| v.iter().copied().max()).unwrap_or(0));
            d.set_corrupt_permille(self.corrupt.get(name).and_then(|v| v.iter().copied().max()).unwrap_or(0));
        }
    }
}

/// The overhead floor: `n` bare madsim datagram round trips between two
/// nodes (100-byte payloads), in a fresh runtime. Returns the simulated
/// time taken; the caller measures wall time around it.
pub fn bare_round_trips(n: u64) -> Duration {
    std::thread::Builder::new()
        .name("bare-round-trips".into())
        .spawn(move || bare_here(n))
        .expect("spawn")
        .join()
        .expect("bare round trips")
}

#[cfg(madsim)]
fn bare_here(n: u64) -> Duration {
    let rt = madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default());
    rt.block_on(async move {
        let h = madsim::runtime::Handle::current();
        let a: SocketAddr = "10.1.0.1:1".parse().unwrap();
        let b: SocketAddr = "10.1.0.2:1".parse().unwrap();
        let na = h.create_node().ip(a.ip()).build();
        let nb = h.create_node().ip(b.ip()).build();
        nb.spawn(async move {
            let ep = madsim::net::Endpoint::bind(b).await.unwrap();
            let mut buf = vec![0u8; 256];
            loop {
                let (len, from) = ep.recv_from(1, &mut buf).await.unwrap();
                ep.send_to(from, 2, &buf[..len]).await.unwrap();
            }
        });
        let t0 = madsim::time::Instant::now();
        na.spawn(async move {
            madsim::time::sleep(Duration::from_millis(1)).await;
            let ep = madsim::net::Endpoint::bind(a).await.unwrap();
            let mut buf = vec![0u8; 256];
            for _ in 0..n {
                ep.send_to(b, 1, &[7u8; 100]).await.unwrap();
                ep.recv_from(2, &mut buf).await.unwrap();
            }
        })
        .await
        .unwrap();
        t0.elapsed()
    })
}

#[cfg(not(madsim))]
fn bare_here(_n: u64) -> Duration {
    panic!("simulation needs --cfg madsim")
}
