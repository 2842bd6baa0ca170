//! The node process (std build only): one role of a real-mode run on
//! tokio, with real sockets on 127.0.0.1, `FileStorage` and an observer
//! that appends JSON lines. An engine node obeys the run's control file
//! (network and clock windows, [`crate::control`]): its endpoint's send
//! hook drops or holds messages back, its observer answers the clock seam.

// Real mode is harness code: its timestamps are wall-clock readings taken
// outside any simulation (the determinism ban covers engine and sim code).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use crate::control::{self, Control, NodeFaults};
use crate::counters::Counters;
use crate::wire::{self, FinalRead, LogLine, NodeSpec, SystemCommit};
use exactsim_engine::broker::{provision_input, run_broker, BrokerNode, INPUT};
use exactsim_engine::clock::ClockReading;
use exactsim_engine::config::Mutant;
use exactsim_engine::coordinator::{run_coordinator, CoordinatorNode};
use exactsim_engine::net::{Addrs, Net, SendHook};
use exactsim_engine::observe::{Event, FaultPoint, Obs, Observer, Reach};
use exactsim_engine::pipeline::{KeyedOperator, Pipeline};
use exactsim_engine::proto::{Request, Response};
use exactsim_engine::sink::{SinkEnv, TwoPhaseCommitSink};
use exactsim_engine::storage::{FileStorage, Storage};
use exactsim_engine::store::{run_store, StoreNode};
use exactsim_engine::system::{OutputReader, SinkSystem};
use exactsim_engine::types::OutRecord;
use exactsim_engine::worker::{run_worker, WorkerNode};
use exactsim_model::faults::arming::On;
use exactsim_model::history::{Ev, Observation, Reached, Stamped};
use exactsim_model::schedule::TriggerAction;
use exactsim_pg::real::{CommitLog, RealConnector};
use exactsim_pg::sink::PgSink;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Microseconds since the run's start, monotonic within the process.
#[derive(Clone, Copy)]
pub struct Clock {
    base_us: u64,
    t0: Instant,
}

impl Clock {
    pub fn new(start_unix_us: u64) -> Clock {
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
        Clock { base_us: now.saturating_sub(start_unix_us), t0: Instant::now() }
    }
    pub fn now_us(&self) -> u64 {
        self.base_us + self.t0.elapsed().as_micros() as u64
    }
}

/// Appends one JSON line per write (a single `write` on an `O_APPEND`
/// file, so a `kill -9` never leaves half of a line that was written).
pub struct Log {
    file: Mutex<std::fs::File>,
}

impl Log {
    pub fn open(path: &std::path::Path) -> std::io::Result<Log> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Log { file: Mutex::new(file) })
    }
    pub fn line(&self, l: &LogLine) {
        let mut s = serde_json::to_string(l).expect("serializable");
        s.push('\n');
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let _ = f.write_all(s.as_bytes());
    }
}

/// How often an engine process reads the control file.
const CONTROL_POLL: Duration = Duration::from_millis(3);

/// The network and clock windows an engine process obeys: the control
/// file the supervisor writes, read at the start and every
/// [`CONTROL_POLL`], decided by [`NodeFaults`]; what landed is logged
/// ([`LogLine::Applied`], [`LogLine::Held`]).
pub struct Faults {
    node: String,
    state: Mutex<NodeFaults>,
    spec: Arc<NodeSpec>,
    clock: Clock,
    log: Arc<Log>,
}

impl Faults {
    fn new(node: &str, spec: Arc<NodeSpec>, clock: Clock, log: Arc<Log>) -> Faults {
        let state = Mutex::new(NodeFaults::new(node, addrs(&spec).names(), spec.seed));
        Faults { node: node.to_string(), state, spec, clock, log }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, NodeFaults> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Read the control file and obey it (a missing or unreadable file
    /// changes nothing: the supervisor writes it whole, by rename).
    fn refresh(&self) {
        let Ok(bytes) = std::fs::read(control::control_file(&self.spec.run_dir)) else { return };
        let Ok(c) = serde_json::from_slice::<Control>(&bytes) else { return };
        let proofs = {
            let mut st = self.lock();
            st.install(c, self.clock.now_us())
        };
        for p in proofs {
            let (index, kind, what) = (p.index, p.kind, p.what);
            self.log.line(&LogLine::Applied { t_us: self.clock.now_us(), node: self.node.clone(), index, kind, what });
        }
    }

    /// The send hook: every message the process sends is decided here.
    fn hook(self: &Arc<Self>) -> SendHook {
        let f = self.clone();
        Arc::new(move |dst, msg| {
            let run_dir = &f.spec.run_dir;
            let claim = |index: usize, k: u32| {
                let path = control::late_claim_file(run_dir, index, k);
                std::fs::OpenOptions::new().write(true).create_new(true).open(path).is_ok()
            };
            let d = f.lock().decide(dst, msg, claim);
            if d.proof.is_some() || d.held.is_some() {
                let t_us = f.clock.now_us();
                if let Some(p) = d.proof {
                    let (index, kind, what) = (p.index, p.kind, p.what);
                    f.log.line(&LogLine::Applied { t_us, node: f.node.clone(), index, kind, what });
                }
                if let Some(detail) = d.held {
                    f.log.line(&LogLine::Held { t_us, node: f.node.clone(), detail });
                }
            }
            d.sending
        })
    }

    /// The node's clocks now (`Observer::local_clock`).
    fn reading(&self) -> ClockReading {
        let st = self.lock();
        st.reading(self.clock.now_us(), self.spec.start_unix_us)
    }
}

/// The engine's observer in a real process.
pub struct FileObserver {
    clock: Clock,
    log: Arc<Log>,
    spec: Arc<NodeSpec>,
    /// The run's shared predicate counters, one per rule of `spec.rules`.
    counters: Counters,
    /// An engine node's windows (its clocks); `None` for the harness's
    /// roles, whose clocks are the process's.
    faults: Option<Arc<Faults>>,
    /// The events emitted so far, folded for `GET /metrics`.
    metrics: Arc<Mutex<exactsim_model::metrics::Metrics>>,
}

impl FileObserver {
    /// Count an occurrence of `on` at `node` for every armed rule it counts
    /// for; one whose count reaches its `nth` now (inside the safety
    /// phase) fires: the process acts on itself at once, after a `Fired`
    /// line that tells the supervisor which fault it plays.
    fn occurrence(&self, node: &str, on: &On, t_us: u64) {
        for (i, rule) in self.spec.rules.iter().enumerate() {
            if !rule.counts(node, on) || !rule.fires_at(self.counters.incr(i)) || t_us >= self.spec.safety_ms * 1000 {
                continue;
            }
            let (index, cause, action) = (rule.index, rule.cause(), rule.action);
            self.log.line(&LogLine::Fired { t_us, node: node.to_string(), index, cause, action });
            match action {
                // SAFETY: plain syscalls on this process.
                TriggerAction::Crash => unsafe {
                    libc::kill(libc::getpid(), libc::SIGKILL);
                    std::process::abort();
                },
                // Frozen until the supervisor's `SIGCONT`.
                TriggerAction::Pause => unsafe {
                    libc::kill(libc::getpid(), libc::SIGSTOP);
                },
                // A clean stop: everything written stays (the page cache
                // survives a process exit).
                TriggerAction::Stop => std::process::exit(0),
                // Disk faults need a fault-injecting file system: the
                // supervisor never arms this rule (`Real::Skips`).
                TriggerAction::DiskFull => {}
            }
        }
    }
}

impl Observer for FileObserver {
    fn emit(&self, node: &str, event: Event) {
        let t_us = self.clock.now_us();
        let on = (!self.spec.rules.is_empty()).then(|| On::Event(event.name().to_string()));
        self.metrics.lock().unwrap_or_else(|e| e.into_inner()).observe(t_us, &event);
        self.log.line(&LogLine::Event(Stamped { t_us, node: node.to_string(), ev: Ev::Engine(event) }));
        if let Some(on) = on {
            self.occurrence(node, &on, t_us);
        }
    }

    fn reach(&self, node: &str, point: Reach) {
        let t_us = self.clock.now_us();
        self.log.line(&LogLine::Reach(Reached { t_us, node: node.to_string(), point }));
    }

    fn fault_point(&self, node: &str, point: FaultPoint) -> bool {
        let t_us = self.clock.now_us();
        self.log.line(&LogLine::Point { t_us, node: node.to_string(), point });
        self.occurrence(node, &On::Point(point), t_us);
        false
    }

    /// An engine node's clocks: the process's clocks under the node's
    /// open skews (continuous from the start, so the engine's `Clock`
    /// readings stay consistent with the base each records).
    fn local_clock(&self, _node: &str) -> Option<ClockReading> {
        self.faults.as_ref().map(|f| f.reading())
    }

    fn fatal(&self, node: &str, reason: &str) {
        let t_us = self.clock.now_us();
        self.log.line(&LogLine::Fatal { t_us, node: node.to_string(), reason: reason.to_string() });
        // The supervisor restarts a process that exits on its own.
        std::process::exit(70);
    }
}

fn addrs(spec: &NodeSpec) -> Addrs {
    Addrs { coordinator: spec.coordinator, broker: spec.broker, store: spec.store, workers: spec.workers.clone() }
}

/// An engine node's endpoint: bound, with the send hook that obeys the
/// run's network windows.
async fn bind_engine(addr: SocketAddr, latency_ms: (u64, u64), faults: &Option<Arc<Faults>>) -> Arc<Net> {
    let net = bind(addr, latency_ms).await;
    if let Some(f) = faults {
        net.set_send_hook(f.hook());
    }
    net
}

async fn bind(addr: SocketAddr, latency_ms: (u64, u64)) -> Arc<Net> {
    let t0 = Instant::now();
    loop {
        match Net::bind_with_latency(addr, latency_ms).await {
            Ok(n) => return n,
            Err(e) if t0.elapsed() > Duration::from_secs(10) => panic!("{} {addr}: {e}", wire::BIND_FAILED),
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

fn storage(spec: &NodeSpec, role: &str) -> Arc<dyn Storage> {
    Arc::new(FileStorage::new(wire::data_dir(&spec.run_dir, role)).expect("create the data directory"))
}

/// Run `role` until killed (engine nodes, the reader) or done (final read).
pub fn main_with(spec: NodeSpec, role: &str) -> Result<(), String> {
    let spec = Arc::new(spec);
    let clock = Clock::new(spec.start_unix_us);
    let log = Arc::new(Log::open(&wire::events_file(&spec.run_dir, role)).map_err(|e| format!("open log: {e}"))?);
    {
        let (log, role) = (log.clone(), role.to_string());
        std::panic::set_hook(Box::new(move |info| {
            let message = match info.payload().downcast_ref::<&str>() {
                Some(s) => s.to_string(),
                None => info.payload().downcast_ref::<String>().cloned().unwrap_or_else(|| "panic".into()),
            };
            let site =
                info.location().map_or("unknown".into(), |l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
            log.line(&LogLine::Panic { t_us: clock.now_us(), node: role.clone(), message, site });
            std::process::abort();
        }));
    }
    let scenario =
        exactsim_scenarios::by_name(&spec.scenario).ok_or_else(|| format!("unknown scenario '{}'", spec.scenario))?;
    let cfg = Arc::new(spec.config.clone());
    let counters = Counters::open(&wire::counters_file(&spec.run_dir), spec.rules.len())
        .map_err(|e| format!("cannot map the run's counters: {e}"))?;
    // An engine node obeys the run's network and clock windows, from the
    // control file as it is now (a restarted node too) and as it changes.
    let engine_role = matches!(role, "broker" | "store" | "coordinator") || role.starts_with("worker-");
    let faults = engine_role.then(|| {
        let f = Arc::new(Faults::new(role, spec.clone(), clock, log.clone()));
        f.refresh();
        f
    });
    let metrics = Arc::new(Mutex::new(exactsim_model::metrics::Metrics::default()));
    if let Some((_, addr)) = spec.metrics.iter().find(|(n, _)| n == role) {
        crate::metrics::serve(*addr, role.to_string(), metrics.clone())
            .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
    }
    let observer: Arc<dyn Observer> = Arc::new(FileObserver {
        clock,
        log: log.clone(),
        spec: spec.clone(),
        counters,
        faults: faults.clone(),
        metrics,
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let a = addrs(&spec);
    let n = cfg.parallelism;
    rt.block_on(async move {
        if let Some(f) = faults.clone() {
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(CONTROL_POLL).await;
                    f.refresh();
                }
            });
        }
        match role {
            "broker" => {
                let st = storage(&spec, role);
                if matches!(st.read(INPUT).await, Err(e) if e.kind() == std::io::ErrorKind::NotFound) {
                    let input = exactsim_model::run::derive_input(&*scenario, spec.seed, &cfg);
                    provision_input(&*st, &input).await.expect("provision the input topic");
                }
                let net = bind_engine(a.broker, spec.latency_ms, &faults).await;
                run_broker(BrokerNode::new(net, st, Obs::new(role, observer), &cfg)).await;
            }
            "store" => {
                let net = bind_engine(a.store, spec.latency_ms, &faults).await;
                run_store(StoreNode { net, storage: storage(&spec, role), obs: Obs::new(role, observer), cfg }).await;
            }
            "coordinator" => {
                let net = bind_engine(a.coordinator, spec.latency_ms, &faults).await;
                // The job's current submission: a redeploy is a new run.
                let run = cfg.run + crate::control::redeploys(&spec.run_dir);
                // A rescale's parallelism, within the worker processes.
                let parallelism =
                    crate::control::parallelism(&spec.run_dir).map_or(cfg.parallelism, |p| p.clamp(1, cfg.parallelism));
                run_coordinator(CoordinatorNode {
                    run,
                    parallelism,
                    net,
                    storage: storage(&spec, role),
                    obs: Obs::new(role, observer),
                    cfg,
                    addrs: a,
                })
                .await;
            }
            "reader" => match &spec.pg_url {
                Some(url) if scenario.upsert_table() => upsert_reader(url, &log, clock).await,
                Some(url) => pg_reader(url, &log, clock, cfg.output_partitions()).await?,
                None => reader(&spec, &log, clock, cfg.output_partitions()).await,
            },
            "final-read" => match &spec.pg_url {
                Some(url) if scenario.upsert_table() => upsert_final_read(&spec, url, cfg.output_partitions()).await?,
                Some(url) => pg_final_read(&spec, url, cfg.output_partitions()).await?,
                None => final_read(&spec, cfg.output_partitions()).await?,
            },
            "pg-setup" => {
                let url = spec.pg_url.as_deref().ok_or("pg-setup: the run has no PostgreSQL")?;
                if scenario.upsert_table() {
                    return exactsim_pg::real::upsert::setup(url)
                        .await
                        .map_err(|e| format!("cannot set up the upsert table: {e}"));
                }
                let c = RealConnector::new(url)?;
                c.reset().await.map_err(|e| format!("cannot set up the PostgreSQL schema: {e}"))?;
                let max = c.max_prepared().await.map_err(|e| e.to_string())?;
                if max == 0 {
                    return Err("PostgreSQL has max_prepared_transactions = 0".to_string());
                }
            }
            w => {
                let index = w
                    .strip_prefix("worker-")
                    .and_then(|i| i.parse::<u32>().ok())
                    .filter(|i| *i < n)
                    .ok_or_else(|| format!("unknown role '{w}'"))?;
                let net = bind_engine(a.workers[index as usize], spec.latency_ms, &faults).await;
                let mut pipeline = scenario.pipeline();
                if let Some(url) = spec.pg_url.as_ref().filter(|_| scenario.upsert_table()) {
                    pipeline = Arc::new(RealUpsert { inner: pipeline, url: url.clone() });
                } else if let Some(url) = &spec.pg_url {
                    pipeline = Arc::new(RealPg {
                        inner: pipeline,
                        connector: Arc::new(RealConnector::new(url)?),
                        mutant: cfg.mutant,
                    });
                }
                run_worker(WorkerNode { index, net, obs: Obs::new(w, observer), cfg, addrs: a, pipeline }).await;
            }
        }
        Ok(())
    })
}

/// The polling `read_committed` reader, as in a simulated run: every 25 ms
/// each output partition from its last offset.
async fn reader(spec: &NodeSpec, log: &Log, clock: Clock, n: u32) {
    let net = bind(spec.reader, spec.latency_ms).await;
    {
        let net = net.clone();
        tokio::spawn(async move {
            loop {
                net.recv().await;
            }
        });
    }
    let mut offsets = vec![0u64; n as usize];
    loop {
        for p in 0..n {
            let req = Request::FetchOutput { partition: p, offset: offsets[p as usize], committed_only: true };
            if let Some(Response::Output { records, next_offset, open_txns }) =
                net.call(spec.broker, req, Duration::from_millis(50)).await
            {
                offsets[p as usize] = next_offset;
                if !records.is_empty() {
                    log.line(&LogLine::Observed(Observation {
                        t_us: clock.now_us(),
                        partition: p,
                        new_records: records,
                        open_txns,
                    }));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The final read: what a `read_committed` reader sees at the end, and the
/// broker's open transactions; written to `final.json` (temporary name,
/// then rename).
async fn final_read(spec: &NodeSpec, n: u32) -> Result<(), String> {
    let net = bind(spec.final_reader, spec.latency_ms).await;
    {
        let net = net.clone();
        tokio::spawn(async move {
            loop {
                net.recv().await;
            }
        });
    }
    let mut out = Vec::new();
    let mut ok = true;
    for p in 0..n {
        let req = Request::FetchOutput { partition: p, offset: 0, committed_only: true };
        match net.call_retry(spec.broker, req, Duration::from_millis(500), 10).await {
            Some(Response::Output { records, .. }) => out.push(records),
            _ => {
                ok = false;
                out.push(Vec::new());
            }
        }
    }
    let open = match net
        .call_retry(spec.broker, Request::ListOpenTxns { prefix: String::new() }, Duration::from_millis(500), 10)
        .await
    {
        Some(Response::OpenTxns { txns }) => txns,
        _ => {
            ok = false;
            Vec::new()
        }
    };
    write_final(spec, &FinalRead { output: out, ok, open_txns: open, commits: Vec::new() })
}

/// A pipeline with its own sink system, in a real run: its sink is the
/// PostgreSQL two-phase-commit sink on a real server (tokio-postgres),
/// named after the pipeline as in simulation; the rest is the pipeline's.
struct RealPg {
    inner: Arc<dyn Pipeline>,
    connector: Arc<RealConnector>,
    /// The planted bug `pg-no-recover-commit`.
    mutant: Option<Mutant>,
}

impl Pipeline for RealPg {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn create(&self, subtask: u32, parallelism: u32) -> Box<dyn KeyedOperator> {
        self.inner.create(subtask, parallelism)
    }
    fn sink(&self, env: SinkEnv) -> Box<dyn TwoPhaseCommitSink> {
        Box::new(
            PgSink::new(self.connector.clone(), self.inner.name(), env.subtask, env.attempt)
                .with_mutant(self.mutant)
                .with_route(env.route.clone()),
        )
    }
    fn output_partition(&self, rec: &OutRecord, partitions: u32) -> u32 {
        self.inner.output_partition(rec, partitions)
    }
    fn system(&self) -> Option<Arc<dyn SinkSystem>> {
        self.inner.system()
    }
    fn reader(&self) -> Arc<dyn OutputReader> {
        self.inner.reader()
    }
}

/// An upsert pipeline in a real run: its sink runs the upsert statement on
/// the real server (`exactsim_pg::real::upsert`); the rest is the
/// pipeline's.
struct RealUpsert {
    inner: Arc<dyn Pipeline>,
    url: String,
}

impl Pipeline for RealUpsert {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn create(&self, subtask: u32, parallelism: u32) -> Box<dyn KeyedOperator> {
        self.inner.create(subtask, parallelism)
    }
    fn sink(&self, env: SinkEnv) -> Box<dyn TwoPhaseCommitSink> {
        Box::new(
            exactsim_pg::real::upsert::RealUpsertSink::new(&self.url, env.route.clone(), env.cfg.mutant)
                .expect("the connection string was parsed at setup"),
        )
    }
    fn output_partition(&self, rec: &OutRecord, partitions: u32) -> u32 {
        self.inner.output_partition(rec, partitions)
    }
    fn system(&self) -> Option<Arc<dyn SinkSystem>> {
        self.inner.system()
    }
    fn reader(&self) -> Arc<dyn OutputReader> {
        self.inner.reader()
    }
    fn exactly_once_state(&self) -> bool {
        self.inner.exactly_once_state()
    }
}

/// The polling reader of a real upsert table: every 25 ms the whole table;
/// the rows whose (version, value) changed since the last poll are what it
/// saw change, per partition (the simulated table's reader returns the rows
/// changed since its last read the same way). Unreachable server: try again.
async fn upsert_reader(url: &str, log: &Log, clock: Clock) {
    let mut seen: std::collections::BTreeMap<u64, (u64, i64)> = std::collections::BTreeMap::new();
    loop {
        if let Ok(rows) = exactsim_pg::real::upsert::read_table(url).await {
            let t_us = clock.now_us();
            let mut new: std::collections::BTreeMap<u32, Vec<OutRecord>> = std::collections::BTreeMap::new();
            for (part, r) in rows {
                if seen.insert(r.key, (r.src, r.value)) != Some((r.src, r.value)) {
                    new.entry(part).or_default().push(r);
                }
            }
            for (p, records) in new {
                log.line(&LogLine::Observed(Observation { t_us, partition: p, new_records: records, open_txns: 0 }));
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The final read of a real upsert table: every row, per partition.
async fn upsert_final_read(spec: &NodeSpec, url: &str, n: u32) -> Result<(), String> {
    let mut got = None;
    for _ in 0..20 {
        match exactsim_pg::real::upsert::read_table(url).await {
            Ok(rows) => {
                got = Some(rows);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    let ok = got.is_some();
    let mut out: Vec<Vec<OutRecord>> = vec![Vec::new(); n as usize];
    for (p, r) in got.unwrap_or_default() {
        if let Some(v) = out.get_mut(p as usize) {
            v.push(r);
        }
    }
    write_final(spec, &FinalRead { output: out, ok, open_txns: Vec::new(), commits: Vec::new() })
}

/// One snapshot of the server's commit log, on a fresh connection.
async fn pg_log(c: &RealConnector) -> Result<CommitLog, String> {
    let mut s = c.connect_real().await.map_err(|e| e.to_string())?;
    s.commit_log().await.map_err(|e| e.to_string())
}

/// The polling reader of a real PostgreSQL: every 25 ms one snapshot; the
/// rows of transactions committed since the last one are what became
/// visible, per partition in commit order. Unreachable server (killed,
/// restarting): try again at the next poll.
async fn pg_reader(url: &str, log: &Log, clock: Clock, n: u32) -> Result<(), String> {
    let c = RealConnector::new(url)?;
    let mut seen = std::collections::BTreeSet::new();
    loop {
        if let Ok(cl) = pg_log(&c).await {
            let t_us = clock.now_us();
            let mut new: Vec<Vec<OutRecord>> = vec![Vec::new(); n as usize];
            for t in &cl.txns {
                if !seen.insert(t.xid) {
                    continue;
                }
                for r in &t.rows {
                    if let Some(p) = new.get_mut(r.part as usize) {
                        p.push(r.record());
                    }
                }
            }
            for (p, records) in new.into_iter().enumerate() {
                if !records.is_empty() {
                    log.line(&LogLine::Observed(Observation {
                        t_us,
                        partition: p as u32,
                        new_records: records,
                        open_txns: cl.prepared.len() as u32,
                    }));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The final read of a real PostgreSQL: every committed row per partition
/// in commit order, the prepared transactions left, and every committed
/// prepared transaction with its commit time (the server's commits, as the
/// simulated server announces them).
async fn pg_final_read(spec: &NodeSpec, url: &str, n: u32) -> Result<(), String> {
    let c = RealConnector::new(url)?;
    let mut got = None;
    for _ in 0..20 {
        match pg_log(&c).await {
            Ok(cl) => {
                got = Some(cl);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    let ok = got.is_some();
    let cl = got.unwrap_or_default();
    let mut out: Vec<Vec<OutRecord>> = vec![Vec::new(); n as usize];
    let mut commits = Vec::new();
    for t in &cl.txns {
        for r in &t.rows {
            if let Some(p) = out.get_mut(r.part as usize) {
                p.push(r.record());
            }
        }
        if let Some(gid) = &t.gid {
            commits.push(SystemCommit {
                t_us: (t.commit_unix_us.max(0) as u64).saturating_sub(spec.start_unix_us),
                txn: gid.clone(),
                epoch: exactsim_pg::node::gid_attempt(gid).unwrap_or(0),
                out: t.rows.iter().map(|r| r.record()).collect(),
            });
        }
    }
    let open_txns = cl.prepared.iter().map(|g| (g.clone(), exactsim_pg::node::gid_attempt(g).unwrap_or(0))).collect();
    write_final(spec, &FinalRead { output: out, ok, open_txns, commits })
}

fn write_final(spec: &NodeSpec, fr: &FinalRead) -> Result<(), String> {
    let path = wire::final_file(&spec.run_dir);
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(fr).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, &path).map_err(|e| e.to_string())
}
