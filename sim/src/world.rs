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

#[cfg(madsim)]
use crate::cluster::Cluster;
use crate::disk::SimDisk;
use crate::history::{History, Observation, SimEvent};
use crate::nodes::Nodes;
use crate::recorder::{CrashRequest, Recorder};
use crate::rng::{SimRng, Stream};
use crate::schedule::{generate, Schedule, SYSTEM_NODE};
use exactsim_engine::broker::{provision_input, run_broker, BrokerNode};
use exactsim_engine::config::JobConfig;
use exactsim_engine::coordinator::{run_coordinator, CoordinatorNode};
use exactsim_engine::net::{Addrs, Net, SendHook, Sending};
use exactsim_engine::observe::{Obs, Observer};
use exactsim_engine::storage::Storage;
use exactsim_engine::store::{run_store, StoreNode};
use exactsim_engine::types::OutRecord;
use exactsim_engine::worker::{run_worker, WorkerNode};
use exactsim_model::faults::{Fired, Player, Target};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

pub use exactsim_model::run::{derive_config, derive_input, RunResult, RunSpec};

/// Run one seed. A panic anywhere inside the run (an engine assertion, a
/// scenario's code, the simulator) does not escape: the result carries it
/// in `panic`, with the history recorded up to that moment (deterministic,
/// like any other history) so the report, the timeline and the trace still
/// show what led there. Either way the run ends through `finish::finish`
/// (`runner::execute`).
pub(crate) fn run(spec: RunSpec) -> RunResult {
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
    /// Every node's disk, once the cluster has them all.
    disks: BTreeMap<String, Arc<SimDisk>>,
}

fn derive_config_or_default(spec: &RunSpec) -> JobConfig {
    crate::panics::capture(|| derive_config(spec)).unwrap_or_default()
}

/// The result of a run that panicked: everything recorded before the panic.
fn salvaged(spec: &RunSpec, salvage: &Salvage, config: JobConfig, panic: crate::panics::PanicReport) -> RunResult {
    let parts = salvage.lock().unwrap_or_else(|e| e.into_inner()).take();
    let (events, chain, coverage, trace_hash, schedule, input, disk_effects, reached) = match parts {
        Some(p) => {
            let (events, chain, coverage, hash) = p.recorder.take_after_panic();
            let effects = crate::disk::effects(p.disks.values());
            (events, chain, coverage, hash, p.schedule, p.input, effects, p.recorder.take_reached())
        }
        None => (
            Vec::new(),
            Vec::new(),
            BTreeMap::new(),
            crate::history::FNV_OFFSET,
            spec.schedule.clone().unwrap_or(Schedule { safety_ms: 0, liveness_ms: 0, events: Vec::new() }),
            Vec::new(),
            BTreeMap::new(),
            Vec::new(),
        ),
    };
    let sim_time_ms = events.last().map_or(0, |e| e.t_us / 1000);
    let history = History {
        scenario: spec.scenario.name().to_string(),
        seed: spec.seed,
        mode: exactsim_model::scenario::mode_of(&*spec.scenario, spec.mode),
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
        reached,
    };
    RunResult {
        history,
        trace_hash,
        chain,
        coverage,
        schedule,
        config,
        disk_effects,
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
    let result = rt.block_on(simulate(spec, salvage.clone()));
    // `simulate` killed every node; one more turn of the executor drops
    // their tasks, which would otherwise keep the runtime alive (a cycle).
    rt.block_on(async {});
    drop(rt);
    // Every node task held the recorder: if it outlives the runtime, so
    // does the run's whole world. A leak fails the run as a harness panic
    // (one weak-pointer check a run: always on).
    let recorder = salvage.lock().unwrap().take().map(|p| Arc::downgrade(&p.recorder));
    assert!(
        recorder.is_none_or(|r| r.upgrade().is_none()),
        "the run's world outlived its runtime (a node task still holds the recorder)"
    );
    result
}

#[cfg(not(madsim))]
fn run_here(_spec: RunSpec, _salvage: Salvage) -> RunResult {
    panic!("simulation needs --cfg madsim (see .cargo/config.toml)")
}

#[cfg(madsim)]
async fn simulate(spec: RunSpec, salvage: Salvage) -> RunResult {
    use madsim::net::NetSim;
    use madsim::runtime::Handle;

    let cfg = Arc::new(derive_config(&spec));
    let n = cfg.parallelism;
    let input = derive_input(&*spec.scenario, spec.seed, &cfg);
    // A scenario's own system (the simulated PostgreSQL) is a node faults
    // can hit, like the engine's.
    let system = spec.scenario.pipeline().system().is_some();
    let schedule = spec.schedule.clone().unwrap_or_else(|| generate(spec.seed, &spec.profile, &cfg, system));
    let (crash_tx, mut crash_rx) = tokio::sync::mpsc::unbounded_channel::<CrashRequest>();
    let addrs = Addrs::standard(n);
    let nodes = Arc::new(Nodes::new(&addrs));
    let recorder = Arc::new(Recorder::new(&schedule.events, nodes.clone(), crash_tx, spec.keep_chain));
    *salvage.lock().unwrap() = Some(SalvageParts {
        recorder: recorder.clone(),
        schedule: schedule.clone(),
        input: input.clone(),
        disks: BTreeMap::new(),
    });
    recorder.start_clock();
    recorder.sim("sim", SimEvent::RunStarted);
    let observer: Arc<dyn Observer> = recorder.clone();
    let handle = Handle::current();
    let netsim = NetSim::current();
    let pipeline = spec.scenario.pipeline();

    // Disks outlive node restarts.
    let mut disk_rng = SimRng::derive(spec.seed, Stream::Disk);
    let mut disks = BTreeMap::new();
    for name in crate::schedule::DISK_NODES {
        disks.insert(name.to_string(), Arc::new(SimDisk::new(name, SimRng::new(disk_rng.next_u64()))));
    }
    provision_input(&*disks["broker"], &input).await.expect("provision the input topic");

    let mut cluster = crate::cluster::Cluster::new(handle.clone(), recorder.clone(), nodes.clone(), disks.clone());
    let build = Build {
        handle: handle.clone(),
        observer: observer.clone(),
        cfg: cfg.clone(),
        addrs: addrs.clone(),
        nodes: nodes.clone(),
        recorder: recorder.clone(),
        pipeline: pipeline.clone(),
    };
    start_engine_nodes(&build, &mut cluster, &disks);
    // The sink's own system, if the pipeline has one: its own node and disk
    // (node `system`, which the fault schedule hits like the engine's), at SYSTEM_ADDR.
    let output_at = start_system(&build, &mut cluster, &mut disk_rng);
    if let Some(p) = salvage.lock().unwrap().as_mut() {
        p.disks = cluster.disks.clone();
    }
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

    let start = madsim::time::Instant::now();
    play_safety_phase(&schedule, &mut cluster, &recorder, &mut crash_rx, start).await;
    let (healed_at_us, deadline_us) = liveness_phase(&schedule, &mut cluster, &recorder, &mut crash_rx).await;
    // Final read of what a read_committed reader sees.
    let (final_output, final_read_ok, final_open_txns) =
        final_read(&reader, reader_net.clone(), output_reader, output_at, out_n).await;
    recorder.sim("sim", SimEvent::RunEnded);
    let disk_effects = crate::disk::effects(cluster.disks.values());
    let sim_time_ms = start.elapsed().as_millis() as u64;
    let finished_at_us = recorder.finished_at_us();
    let (events, chain, coverage, trace_hash) = recorder.take();
    let history = History {
        scenario: spec.scenario.name().to_string(),
        seed: spec.seed,
        mode: exactsim_model::scenario::mode_of(&*spec.scenario, spec.mode),
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
        reached: recorder.take_reached(),
    };
    let net_messages = netsim.stat().msg_count;
    // Everything is read: kill every node so the runtime can be freed.
    cluster.kill_all();
    handle.kill(reader.id());
    RunResult {
        history,
        trace_hash,
        chain,
        coverage,
        schedule,
        config: (*cfg).clone(),
        disk_effects,
        sim_time_ms,
        net_messages,
        panic: None,
    }
}

/// What starting the run's nodes needs.
#[cfg(madsim)]
struct Build {
    handle: madsim::runtime::Handle,
    observer: Arc<dyn Observer>,
    cfg: Arc<JobConfig>,
    addrs: Addrs,
    nodes: Arc<Nodes>,
    recorder: Arc<Recorder>,
    pipeline: Arc<dyn exactsim_engine::pipeline::Pipeline>,
}

/// The engine's nodes, in this order (madsim numbers nodes as they are
/// created): broker, store, the workers, coordinator.
#[cfg(madsim)]
fn start_engine_nodes(build: &Build, cluster: &mut Cluster, disks: &BTreeMap<String, Arc<SimDisk>>) {
    let Build { handle, observer, cfg, addrs, nodes, recorder, pipeline } = build;
    let n = cfg.parallelism;
    {
        let (disk, obs, cfg, addr): (Arc<dyn Storage>, _, _, _) =
            (disks["broker"].clone(), observer.clone(), cfg.clone(), addrs.broker);
        let hook = send_hook(nodes, recorder, "broker");
        let h = handle
            .create_node()
            .name("broker")
            .ip(addr.ip())
            .init(move || {
                let (disk, obs, cfg, hook) = (disk.clone(), obs.clone(), cfg.clone(), hook.clone());
                async move {
                    let net = bind(addr).await;
                    net.set_send_hook(hook);
                    let node = BrokerNode::new(net, disk, Obs::new("broker", obs), &cfg);
                    run_broker(node).await
                }
            })
            .build();
        cluster.add("broker", h.id());
    }
    {
        let (disk, obs, cfg, addr): (Arc<dyn Storage>, _, _, _) =
            (disks["store"].clone(), observer.clone(), cfg.clone(), addrs.store);
        let hook = send_hook(nodes, recorder, "store");
        let h = handle
            .create_node()
            .name("store")
            .ip(addr.ip())
            .init(move || {
                let (disk, obs, cfg, hook) = (disk.clone(), obs.clone(), cfg.clone(), hook.clone());
                async move {
                    let net = bind(addr).await;
                    net.set_send_hook(hook);
                    run_store(StoreNode { net, storage: disk, obs: Obs::new("store", obs), cfg }).await
                }
            })
            .build();
        cluster.add("store", h.id());
    }
    for i in 0..n {
        let (obs, cfg, addrs2, pipeline) = (observer.clone(), cfg.clone(), addrs.clone(), pipeline.clone());
        let name = format!("worker-{i}");
        let addr = addrs.workers[i as usize];
        let nm = name.clone();
        let hook = send_hook(nodes, recorder, &name);
        let h = handle
            .create_node()
            .name(&name)
            .ip(addr.ip())
            .init(move || {
                let (obs, cfg, addrs, pipeline, nm, hook) =
                    (obs.clone(), cfg.clone(), addrs2.clone(), pipeline.clone(), nm.clone(), hook.clone());
                async move {
                    let net = bind(addr).await;
                    net.set_send_hook(hook);
                    run_worker(WorkerNode { index: i, net, obs: Obs::new(&nm, obs), cfg, addrs, pipeline }).await
                }
            })
            .build();
        cluster.add(&name, h.id());
    }
    {
        let (disk, obs, cfg, addrs2): (Arc<dyn Storage>, _, _, _) =
            (disks["coordinator"].clone(), observer.clone(), cfg.clone(), addrs.clone());
        let submitted = nodes.clone();
        let addr = addrs.coordinator;
        let hook = send_hook(nodes, recorder, "coordinator");
        let h = handle
            .create_node()
            .name("coordinator")
            .ip(addr.ip())
            .init(move || {
                let (disk, obs, cfg, addrs, hook) =
                    (disk.clone(), obs.clone(), cfg.clone(), addrs2.clone(), hook.clone());
                // The run it is started as: the job's current submission.
                let run = cfg.run + submitted.redeploys();
                let parallelism = submitted.parallelism().unwrap_or(cfg.parallelism);
                async move {
                    let net = bind(addr).await;
                    net.set_send_hook(hook);
                    run_coordinator(CoordinatorNode {
                        run,
                        parallelism,
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
        cluster.add("coordinator", h.id());
    }
}

/// The sink's own system, if the pipeline has one; returns where its
/// output is read (the broker otherwise).
#[cfg(madsim)]
fn start_system(build: &Build, cluster: &mut Cluster, disk_rng: &mut SimRng) -> SocketAddr {
    let Build { handle, observer, cfg, addrs, pipeline, .. } = build;
    match pipeline.system() {
        Some(system) => {
            let addr = exactsim_engine::system::system_addr();
            let disk = Arc::new(SimDisk::new(SYSTEM_NODE, SimRng::new(disk_rng.next_u64())));
            let (obs, cfg, d) = (observer.clone(), cfg.clone(), disk.clone());
            let h = handle
                .create_node()
                .name(SYSTEM_NODE)
                .ip(addr.ip())
                .init(move || {
                    let (system, obs, cfg, storage): (_, _, _, Arc<dyn Storage>) =
                        (system.clone(), obs.clone(), cfg.clone(), d.clone());
                    async move {
                        let net = bind(addr).await;
                        let env =
                            exactsim_engine::system::SystemEnv { net, storage, obs: Obs::new(SYSTEM_NODE, obs), cfg };
                        system.serve(env).await
                    }
                })
                .build();
            cluster.add(SYSTEM_NODE, h.id());
            cluster.disks.insert(SYSTEM_NODE.to_string(), disk);
            addr
        }
        None => addrs.broker,
    }
}

/// The final read of what a `read_committed` reader sees: every output
/// partition and the open transactions (each retried), and whether all
/// were read.
#[cfg(madsim)]
async fn final_read(
    reader: &madsim::runtime::NodeHandle,
    net: Arc<Net>,
    output_reader: Arc<dyn exactsim_engine::system::OutputReader>,
    output_at: SocketAddr,
    out_n: u32,
) -> (Vec<Vec<OutRecord>>, bool, Vec<(String, u64)>) {
    reader
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
        .expect("final read")
}

async fn bind(addr: SocketAddr) -> Arc<Net> {
    loop {
        match Net::bind(addr).await {
            Ok(n) => return n,
            Err(_) => madsim::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

/// The hook that holds a node's messages back for late delivery.
fn send_hook(nodes: &Arc<Nodes>, recorder: &Arc<Recorder>, node: &str) -> SendHook {
    let (nodes, recorder, node) = (nodes.clone(), recorder.clone(), node.to_string());
    Arc::new(move |dst, msg| {
        let Some((delay, detail)) = nodes.hold(&node, dst, msg) else { return Sending::Now };
        recorder.sim("sim", SimEvent::FaultStarted { kind: "late_delivery".into(), detail });
        Sending::Later(delay)
    })
}

/// The safety phase: one [`Player`] plays the schedule on the cluster
/// (faults start until `safety_ms`; then, with no new fault starting, the
/// outages under way run their full length: a pause or a partition may
/// outlast the phase, as it outlasts the engine's timeouts). Predicates
/// the recorder armed (fault points, engine events) and fatal errors come
/// as requests and are played by the same player.
#[cfg(madsim)]
async fn play_safety_phase(
    schedule: &Schedule,
    cluster: &mut Cluster,
    recorder: &Recorder,
    crash_rx: &mut UnboundedReceiver<CrashRequest>,
    start: madsim::time::Instant,
) {
    let at = |ms: u64| start + Duration::from_millis(ms);
    let mut player = Player::new(&schedule.events, schedule.safety_ms, |_| true);
    loop {
        let now_ms = start.elapsed().as_millis() as u64;
        if player.safety_ends(now_ms) {
            recorder.end_safety();
        }
        let Some(next_ms) = player.next_due_ms() else { break };
        tokio::select! {
            biased;
            Some(req) = crash_rx.recv() => {
                let fired = Fired { node: req.node, cause: req.cause, index: req.schedule_index };
                player.fire(&fired, now_ms, cluster);
            }
            _ = madsim::time::sleep_until(at(next_ms)) => {
                player.advance(start.elapsed().as_millis() as u64, cluster);
            }
        }
    }
    // Liveness phase: heal everything, bring every node up.
    player.heal(cluster);
}

/// The liveness phase: everything healed, no fault starts; a node's fatal
/// error still restarts it, as a supervisor would. Waits for the job to
/// finish within `liveness_ms` (then a grace period). Returns (healed at
/// µs, the deadline µs).
#[cfg(madsim)]
async fn liveness_phase(
    schedule: &Schedule,
    cluster: &mut Cluster,
    recorder: &Recorder,
    crash_rx: &mut UnboundedReceiver<CrashRequest>,
) -> (u64, u64) {
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
                cluster.crash_fatal(&req.node, &req.cause);
                madsim::time::sleep(Duration::from_millis(50)).await;
                cluster.restart(&req.node);
            }
            _ = madsim::time::sleep(Duration::from_millis(10)) => {}
        }
    }
    (healed_at_us, deadline_us)
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
