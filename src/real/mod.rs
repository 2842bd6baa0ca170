//! `exactsim real`: the engine as real OS processes on 127.0.0.1, under the
//! fault schedule a simulated run of the same (scenario, seed, profile)
//! would get, played in wall time; then the same oracles and the same report.
//!
//! The supervisor only spawns, signals and reaps processes and reads files
//! (it is compiled in the simulation build, where the network is madsim's).
//! Each engine node is an `exactsim-node` process of the std build
//! (`node/`): real TCP on loopback, `FileStorage` under the run directory,
//! and an observer appending its history events, fault-point hits and
//! `read_committed` observations as JSON lines stamped with microseconds
//! since the start instant passed to every process.
//!
//! A scenario whose pipeline writes to a system of its own (pg_ledger:
//! PostgreSQL) runs against a real PostgreSQL 15 the supervisor starts for
//! the run with `ci/postgres.sh` (initdb under the run directory, as the
//! `postgres` user when root, a free loopback port, prepared transactions
//! and commit timestamps on) and stops by pid at the end, whatever happens.
//! The workers' sink is the same `PgSink` on tokio-postgres; the reader and
//! the final read take one `REPEATABLE READ` snapshot of the server's commit
//! log (rows and marker rows grouped by the transaction that wrote them, in
//! commit-timestamp order), and the final read turns every committed
//! prepared transaction into the `TxnCommitted` the simulated server
//! announces, at its commit time. PostgreSQL kills (`--pg-kills`, drawn
//! from the seed like pauses) `kill -9` the postmaster and every backend
//! and restart it after `down_ms`: prepared transactions survive, open
//! ones are lost.
//!
//! What is played: `crash` (`kill -9`, restart after `down_ms`),
//! `crash_at_point` (the process kills itself with `SIGKILL` the nth time
//! *it* reaches the point; one firing per rule over all processes), pauses
//! (`SIGSTOP`/`SIGCONT`: the schedule's, and `--pauses`' own), clean stops
//! (`SIGTERM`, restart after `down_ms`), fatal exits or panics of a node
//! (restarted after 50 ms, as a supervisor would), and the network and
//! clock windows (`partition`, `isolate`, `packet_loss`, `latency`,
//! `late_delivery`, `skew`): the supervisor keeps the open ones in the run
//! directory's control file (`control.json`, written whole by rename),
//! every engine process reads it at its start and every 3 ms, and obeys it
//! (`exactsim_node::control`): its endpoint's send hook drops a message
//! (cut, isolation, loss) or holds it back (latency, late delivery), its
//! observer answers the engine's clock seam with the skewed clocks. Only
//! messages between engine nodes are touched (the reader and the final
//! read are the harness's). A process shows that a window landed on it
//! (`LogLine::Applied`: the first time it applied it, the first message it
//! dropped or held back under it), listed with what was played. What is
//! not played: disk faults (including the disk modes of crashes: a
//! `kill -9` keeps the page cache) and faults on engine events; each is
//! listed as skipped.
//!
//! A real run is not reproducible bit for bit: thread scheduling, the
//! kernel and the clock decide the interleaving, so there is no trace hash
//! to compare; the schedule that actually happened is recorded instead.
//!
//! The files, by job: `supervisor.rs` (the process table: spawn, signal,
//! kill, reap; the final read; the order of stopping), `postgres.rs` (the
//! run's PostgreSQL server and its kills), `player.rs` (the faults played
//! in wall time, and those skipped), `record.rs` (the clock, the processes'
//! logs, the one history); this file derives a run from its specification
//! and runs its steps in order.

// Real mode is harness code around OS processes: wall clock and signals are
// its job. The determinism bans apply to engine and simulation code.
#![allow(clippy::disallowed_methods)]

mod player;
mod postgres;
mod record;
mod stale;
mod supervisor;

pub use player::{derive_pauses, skipped_faults, Pause, Skipped, DOWN_REASON};
pub use postgres::{derive_pg_kills, PgKill, PG_KILLS_DEFAULT, PG_NODE};
pub use record::Played;

use crate::artifacts;
use exactsim_engine::config::{JobConfig, Mutant};
use exactsim_engine::types::{DeliveryMode, Record};
use exactsim_model::faults;
use exactsim_model::finish::{finish, Finish, Kind, Outcome};
use exactsim_model::history::SimEvent;
use exactsim_model::report::RunReport;
use exactsim_model::run::{derive_config, RunResult};
use exactsim_model::scenario::Scenario;
use exactsim_model::schedule::{generate, node_names, Profile, Schedule};
use exactsim_node::wire::{self, NodeSpec};
use player::Player;
use postgres::PgServer;
use record::{Clock, Collected, Frame, Gather};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use supervisor::{free_ports, Procs, Stage};

#[derive(Clone)]
pub struct RealSpec {
    pub scenario: Arc<dyn Scenario>,
    pub seed: u64,
    pub profile: Profile,
    pub profile_arg: String,
    pub mode: DeliveryMode,
    pub mutant: Option<Mutant>,
    /// An explicit schedule (else derived from seed and profile).
    pub schedule: Option<Schedule>,
    /// The file `schedule` came from (`--schedule`), for the reproduce line.
    pub schedule_path: Option<PathBuf>,
    /// SIGSTOP/SIGCONT windows drawn from the seed.
    pub pauses: u32,
    pub node_bin: PathBuf,
    /// Keep the run directory (process logs, data) instead of removing it.
    pub keep: bool,
    /// Network latency emulated on receipt, ms (lo, hi).
    pub latency_ms: (u64, u64),
    /// `kill -9` of PostgreSQL drawn from the seed (scenarios writing to
    /// PostgreSQL only); `None`: [`PG_KILLS_DEFAULT`].
    pub pg_kills: Option<u32>,
    /// Override of the job's pause between two source polls, ms, in place
    /// of the default pacing ([`paced_interval_ms`]: the input read over
    /// three quarters of the safety phase, so that the faults land while
    /// the job runs).
    pub source_poll_ms: Option<u64>,
}

/// Real mode's default profile: the kinds both backends play, aimed at the
/// recovery windows by engine events (see the built-in profiles).
pub const PROFILE_DEFAULT: &str = "recovery";

/// A simulated run's network latency (`world.rs`): 1 to 5 ms per message.
pub const LATENCY_MS_DEFAULT: (u64, u64) = (1, 5);

/// `LO-HI` or `MS` (0 turns the emulated latency off), at most 1000.
pub fn parse_latency(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("malformed latency '{s}' (expected LO-HI or MS in milliseconds, at most 1000)");
    let (lo, hi) = match s.trim().split_once('-') {
        Some((a, b)) => (a.trim().parse::<u64>().map_err(|_| bad())?, b.trim().parse::<u64>().map_err(|_| bad())?),
        None => {
            let v = s.trim().parse::<u64>().map_err(|_| bad())?;
            (v, v)
        }
    };
    if lo > hi || hi > 1000 {
        return Err(bad());
    }
    Ok((lo, hi))
}

/// What a real run adds to the report (`real.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RealRecord {
    /// Always false: see the note.
    pub reproducible: bool,
    pub note: String,
    /// The schedule derived from (seed, profile), or given.
    pub schedule: Schedule,
    pub pauses: Vec<Pause>,
    /// PostgreSQL kills drawn from the seed (empty without PostgreSQL).
    #[serde(default)]
    pub pg_kills: Vec<PgKill>,
    /// The PostgreSQL server of the run (connection string), if any.
    #[serde(default)]
    pub postgres: Option<String>,
    /// What actually happened, in wall time.
    pub played: Vec<Played>,
    /// Scheduled faults that real mode cannot play.
    pub skipped: Vec<Skipped>,
    /// Starts per process (1 + restarts).
    pub starts: BTreeMap<String, u32>,
    pub wall_ms: u64,
    /// Emulated network latency, ms (lo, hi).
    pub latency_ms: (u64, u64),
    pub run_dir: String,
    pub node_binary: String,
}

pub struct RealOutcome {
    /// The run as [`finish`] ended it: report, history, violations (the
    /// same type a simulated run ends in, so campaigns and artifacts take
    /// either).
    pub outcome: Outcome,
    pub real: RealRecord,
    /// Stopped by Ctrl-C/SIGTERM before the end: no verdict.
    pub interrupted: bool,
}

impl RealOutcome {
    pub fn report(&self) -> &RunReport {
        &self.outcome.report
    }
}

pub const NOTE: &str = "real run: OS processes on 127.0.0.1, faults played in wall time; \
     not reproducible bit for bit (no trace hash), the schedule that happened is recorded";

/// The std node binary: `--node-bin`, `EXACTSIM_NODE_BIN`, or where the
/// std build puts it (`target/std/release/exactsim-node`), looked up next
/// to this executable's target directory and in this workspace.
pub fn find_node_bin(explicit: Option<&Path>) -> Result<PathBuf, String> {
    let hint = "build it with: RUSTFLAGS= CARGO_TARGET_DIR=target/std cargo build --release -p exactsim-node";
    if let Some(p) =
        explicit.map(Path::to_path_buf).or_else(|| std::env::var_os("EXACTSIM_NODE_BIN").map(PathBuf::from))
    {
        return if p.is_file() { Ok(p) } else { Err(format!("no node binary at {} ({hint})", p.display())) };
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // target/<profile>/exactsim or target/<profile>/deps/<test>
        for up in exe.ancestors().skip(1).take(3) {
            candidates.push(up.join("std/release/exactsim-node"));
        }
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("target/std/release/exactsim-node"));
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| format!("no std node binary found ({hint})"))
}

/// Refuse a node binary built from other sources than this CLI (a stale
/// `target/std` after a change): its processes would speak another
/// protocol or lack a role, and the run would fail for no reason of its own.
pub fn check_node_bin(bin: &Path) -> Result<(), String> {
    let hint = "rebuild it with: RUSTFLAGS= CARGO_TARGET_DIR=target/std cargo build --release -p exactsim-node";
    let out = std::process::Command::new(bin)
        .arg("--sources")
        .output()
        .map_err(|e| format!("cannot run the node binary {}: {e}", bin.display()))?;
    let theirs = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let ours = env!("EXACTSIM_NODE_SOURCES");
    if !out.status.success() || theirs != ours {
        let what = if theirs.is_empty() {
            "an older node binary without --sources".to_string()
        } else {
            format!("sources {theirs}, this CLI's {ours}")
        };
        return Err(format!("the node binary {} is built from other code ({what}); {hint}", bin.display()));
    }
    Ok(())
}

/// The source interval that spreads reading the input over three quarters
/// of the safety phase: real processes run a job far faster than the
/// simulated network does (pg_ledger's is over in a few hundred ms), and a
/// fault that lands after the job finished tests nothing. The busiest
/// partition sets the pace: `source_batch` records per interval. Between
/// 1 and 200 ms.
pub fn paced_interval_ms(input: &[Vec<Record>], source_batch: u32, safety_ms: u64) -> u64 {
    let most = input.iter().map(Vec::len).max().unwrap_or(0) as u64;
    let fetches = most.div_ceil(u64::from(source_batch.max(1))).max(1);
    (safety_ms * 3 / 4 / fetches).clamp(1, 200)
}

/// What a run is, derived from its specification exactly as a simulated
/// run derives it, before anything starts.
struct Plan {
    cfg: JobConfig,
    input: Vec<Vec<Record>>,
    schedule: Schedule,
    pauses: Vec<Pause>,
    pg_kills: Vec<PgKill>,
    /// The schedule's faults real mode cannot play.
    skipped: Vec<Skipped>,
}

impl Plan {
    fn derive(spec: &RealSpec, with_pg: bool) -> Result<Plan, String> {
        let rspec = crate::spec(spec.scenario.clone(), spec.seed, spec.profile.clone(), spec.mode, spec.mutant);
        let mut cfg = derive_config(&rspec);
        if let Some(ms) = spec.source_poll_ms {
            cfg.source_poll_ms = ms;
        }
        let n = cfg.parallelism;
        let input = exactsim_model::run::derive_input(&*spec.scenario, spec.seed, &cfg);
        // The same schedule as a simulated run: with the sink's system node
        // (`system`, here the real PostgreSQL) when the scenario has one.
        let schedule = spec.schedule.clone().unwrap_or_else(|| generate(spec.seed, &spec.profile, &cfg, with_pg));
        schedule.validate(n, with_pg)?;
        if spec.source_poll_ms.is_none() {
            cfg.source_interval_ms = paced_interval_ms(&input, cfg.source_batch, schedule.safety_ms);
        }
        let pauses = derive_pauses(spec.seed, spec.pauses, schedule.safety_ms, n);
        let pg_kills = if with_pg {
            derive_pg_kills(spec.seed, spec.pg_kills.unwrap_or(PG_KILLS_DEFAULT), schedule.safety_ms)
        } else {
            Vec::new()
        };
        let skipped = skipped_faults(&schedule);
        Ok(Plan { cfg, input, schedule, pauses, pg_kills, skipped })
    }
}

/// Run one real-mode run. `Err` is a setup problem (exit 2), not a verdict.
pub fn run(spec: &RealSpec) -> Result<RealOutcome, String> {
    let with_pg = spec.scenario.pipeline().system().is_some();
    if spec.pg_kills.is_some_and(|k| k > 0) && !with_pg {
        return Err(format!(
            "--pg-kills: scenario '{}' does not write to PostgreSQL (pg_ledger does)",
            spec.scenario.name()
        ));
    }
    check_node_bin(&spec.node_bin)?;
    let t_wall = Instant::now();
    let plan = Plan::derive(spec, with_pg)?;
    let temp = std::env::temp_dir();
    for d in stale::sweep(&temp) {
        eprintln!("note: removed {}, left by a supervisor that died", d.display());
    }
    let unique = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let run_dir = temp.join(format!("{}{}-{}-{unique:x}", stale::PREFIX, std::process::id(), spec.seed));
    for sub in ["events", "data", "logs"] {
        std::fs::create_dir_all(run_dir.join(sub)).map_err(|e| format!("cannot create {}: {e}", run_dir.display()))?;
    }
    stale::mark(&run_dir)?;
    let result = run_in(spec, &run_dir, plan, t_wall);
    match &result {
        // A run that could not be set up keeps its logs for the message
        // that names them.
        Err(e) if e.contains(&*run_dir.to_string_lossy()) => {
            stale::unmark(&run_dir);
            return Err(format!("{e} (run directory kept: {})", run_dir.display()));
        }
        _ if spec.keep => stale::unmark(&run_dir),
        _ => {
            let _ = std::fs::remove_dir_all(&run_dir);
        }
    }
    result
}

/// The run itself, in its run directory: start, play, heal, wait, read,
/// stop, judge.
fn run_in(spec: &RealSpec, run_dir: &Path, mut plan: Plan, t_wall: Instant) -> Result<RealOutcome, String> {
    let with_pg = spec.scenario.pipeline().system().is_some();
    // The nodes' addresses, then one metrics port per engine node.
    let ports = free_ports(2 * plan.cfg.parallelism as usize + 8)?;
    // PostgreSQL first (a cold start takes seconds): declared before the
    // processes, so it is stopped after them on every exit path.
    let pg = if with_pg {
        Some(PgServer::start(&run_dir.join("pg"), &run_dir.join("logs").join("postgres.log"))?)
    } else {
        None
    };
    let mut node_spec = node_spec(spec, run_dir, &plan, &ports, pg.as_ref().map(|p| p.url.clone()));
    let spec_path = run_dir.join("spec.json");
    write_spec(&spec_path, &node_spec)?;
    write_targets(&run_dir.join(TARGETS_FILE), &node_spec.metrics)?;
    wire::create_counters(run_dir, node_spec.rules.len())
        .map_err(|e| format!("cannot create {}: {e}", wire::counters_file(run_dir).display()))?;
    let mut procs = Procs::new(&spec.node_bin, &spec_path, run_dir);
    if pg.is_some() {
        // The sink's tables, then the run starts.
        procs.set_up_postgres()?;
    }
    let clock = Clock::start();
    node_spec.start_unix_us =
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
    write_spec(&spec_path, &node_spec)?;
    let n = plan.cfg.parallelism;
    let roles = node_names(n);
    let g = Gather::new(run_dir, roles.iter().map(String::as_str).chain(["reader"]));
    let mut st = Stage { procs, pg, g, clock };
    st.g.sim(0, "sim", SimEvent::RunStarted);
    // Same start order as a simulated run; the reader last.
    let mut state = st.procs.start_cluster(n)?;
    if with_pg {
        state.insert(PG_NODE.to_string(), supervisor::State::Up);
    }
    let skipped = std::mem::take(&mut plan.skipped);
    let mut player = Player::new(&plan.schedule, &plan.pauses, &plan.pg_kills, skipped, state);
    let mut interrupted = player.safety_phase(&mut st)?;
    let (healed_at_us, deadline_us) = player.heal(&mut st)?;
    if !interrupted {
        interrupted = player.liveness_phase(&mut st, deadline_us)?;
    }
    let fin = st.final_read(n, interrupted)?;
    let end_us = st.clock.us();
    let (g, starts) = st.stop();
    let frame = Frame {
        scenario: spec.scenario.name().to_string(),
        seed: spec.seed,
        mode: exactsim_model::scenario::mode_of(&*spec.scenario, spec.mode),
        parallelism: n,
        output_partitions: plan.cfg.output_partitions(),
        input: std::mem::take(&mut plan.input),
        healed_at_us,
        deadline_us,
    };
    let collected = g.collect(fin, end_us, frame);
    if let Some(e) = &collected.environment {
        return Err(format!(
            "{e}: another process holds a port of the run, an environment problem and not a finding (see {})",
            run_dir.join("logs").display()
        ));
    }
    let skipped = player.skipped();
    let ended = Ended { collected, end_us, starts, skipped, interrupted, pg_url: node_spec.pg_url };
    Ok(judge(spec, run_dir, plan, ended, t_wall))
}

/// What every process of the run is told (`spec.json`); its start instant
/// is set when the run starts.
fn node_spec(
    spec: &RealSpec,
    run_dir: &Path,
    plan: &Plan,
    ports: &[std::net::SocketAddr],
    pg_url: Option<String>,
) -> NodeSpec {
    NodeSpec {
        scenario: spec.scenario.name().to_string(),
        seed: spec.seed,
        config: plan.cfg.clone(),
        coordinator: ports[0],
        broker: ports[1],
        store: ports[2],
        reader: ports[3],
        final_reader: ports[4],
        workers: ports[5..].to_vec(),
        run_dir: run_dir.to_path_buf(),
        start_unix_us: 0, // set when the run starts
        safety_ms: plan.schedule.safety_ms,
        // What real mode cannot play is not armed either (a full disk).
        rules: faults::arming::rules(&plan.schedule.events)
            .into_iter()
            .filter(|r| !matches!(plan.schedule.events[r.index].fault().real(), faults::Real::Skips(_)))
            .collect(),
        latency_ms: spec.latency_ms,
        pg_url,
        metrics: metrics_addrs(plan.cfg.parallelism, &ports[5 + plan.cfg.parallelism as usize..]),
    }
}

/// Where the engine nodes' metrics are, for a Prometheus to scrape (its
/// `file_sd_configs` format), in the run directory.
pub const TARGETS_FILE: &str = "targets.json";

/// Each engine node's metrics address, from the ports picked for them.
fn metrics_addrs(parallelism: u32, ports: &[std::net::SocketAddr]) -> Vec<(String, std::net::SocketAddr)> {
    let names = ["coordinator".to_string(), "broker".to_string(), "store".to_string()]
        .into_iter()
        .chain((0..parallelism).map(|i| format!("worker-{i}")));
    names.zip(ports.iter().copied()).collect()
}

fn write_targets(path: &Path, metrics: &[(String, std::net::SocketAddr)]) -> Result<(), String> {
    let targets: Vec<serde_json::Value> = metrics
        .iter()
        .map(|(node, addr)| serde_json::json!({ "targets": [addr.to_string()], "labels": { "job": "exactsim", "node": node } }))
        .collect();
    std::fs::write(path, serde_json::to_vec_pretty(&targets).expect("serializable"))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn write_spec(path: &Path, s: &NodeSpec) -> Result<(), String> {
    std::fs::write(path, serde_json::to_vec_pretty(s).expect("serializable"))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// What a run leaves once every process is stopped.
struct Ended {
    collected: Collected,
    end_us: u64,
    starts: BTreeMap<String, u32>,
    skipped: Vec<Skipped>,
    interrupted: bool,
    pg_url: Option<String>,
}

/// End the run ([`finish`]: tallies, checks, findings, reproduce command,
/// report) and record what was played.
fn judge(spec: &RealSpec, run_dir: &Path, plan: Plan, ended: Ended, t_wall: Instant) -> RealOutcome {
    let Ended { collected: c, end_us, starts, skipped, interrupted, pg_url } = ended;
    let result = RunResult {
        history: c.history,
        trace_hash: c.trace_hash,
        chain: Vec::new(),
        coverage: c.coverage,
        schedule: plan.schedule.clone(),
        config: plan.cfg,
        disk_effects: BTreeMap::new(),
        sim_time_ms: end_us / 1000,
        net_messages: 0,
        panic: c.panic,
    };
    let wall_us = || t_wall.elapsed().as_micros() as u64;
    let out = finish(
        result,
        Finish {
            scenario: &*spec.scenario,
            profile: &spec.profile_arg,
            mutant: spec.mutant,
            code_version: crate::code_version(),
            sim_wall_us: end_us,
            wall_us: &wall_us,
            kind: Kind::Real { options: repro_options(spec), interrupted },
        },
    );
    let real = RealRecord {
        reproducible: false,
        note: NOTE.into(),
        schedule: plan.schedule,
        pauses: plan.pauses,
        pg_kills: plan.pg_kills,
        postgres: pg_url,
        played: c.played,
        skipped,
        starts,
        wall_ms: out.report.wall_ms,
        latency_ms: spec.latency_ms,
        run_dir: run_dir.display().to_string(),
        node_binary: spec.node_bin.display().to_string(),
    };
    RealOutcome { outcome: out, real, interrupted }
}

/// This run's own options in the command that plays it again.
fn repro_options(spec: &RealSpec) -> Vec<String> {
    let mut o = Vec::new();
    if spec.pauses > 0 {
        o.push(format!("--pauses {}", spec.pauses));
    }
    if let Some(k) = spec.pg_kills {
        o.push(format!("--pg-kills {k}"));
    }
    if let Some(ms) = spec.source_poll_ms {
        o.push(format!("--source-poll-ms {ms}"));
    }
    if spec.latency_ms != LATENCY_MS_DEFAULT {
        o.push(format!("--latency-ms {}-{}", spec.latency_ms.0, spec.latency_ms.1));
    }
    // The same schedule again: without it the seed's own would be played.
    if let Some(p) = &spec.schedule_path {
        o.push(format!("--schedule {}", p.display()));
    }
    o
}

/// Write `report.json` (the run report, same schema as a simulated run),
/// `real.json` (what was played and skipped) and `trace.jsonl` under `dir`.
pub fn write_report(dir: &Path, out: &RealOutcome) -> Vec<String> {
    let mut errors = Vec::new();
    let report = serde_json::to_string_pretty(out.report()).expect("serializable");
    errors.extend(artifacts::write_file(&dir.join("report.json"), &report).err());
    let real = serde_json::to_string_pretty(&out.real).expect("serializable");
    errors.extend(artifacts::write_file(&dir.join("real.json"), &real).err());
    let mut trace = String::new();
    for e in &out.outcome.result.history.events {
        trace.push_str(&serde_json::to_string(e).expect("serializable"));
        trace.push('\n');
    }
    errors.extend(artifacts::write_file(&dir.join("trace.jsonl"), &trace).err());
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The busiest partition's batches are spread over three quarters of
    /// the safety phase, within 1 to 200 ms per batch.
    #[test]
    fn sources_are_paced_over_the_safety_phase() {
        let part = |n: u64| (0..n).map(|i| Record { id: i, key: i, ts_ms: i, value: 1 }).collect::<Vec<_>>();
        assert_eq!(paced_interval_ms(&[part(160), part(320)], 16, 2000), 75, "20 batches over 1500 ms");
        assert_eq!(paced_interval_ms(&[part(1)], 16, 2000), 200, "capped");
        assert_eq!(paced_interval_ms(&[part(100_000)], 16, 2000), 1, "floored");
        assert_eq!(paced_interval_ms(&[], 16, 2000), 200, "no input");
    }

    #[test]
    fn pg_kills_do_not_move_the_other_streams() {
        // Kills come from their own stream: the pauses of a seed stay.
        assert_eq!(derive_pauses(4, 2, 1500, 2), derive_pauses(4, 2, 1500, 2));
        let pauses: Vec<u64> = derive_pauses(4, 3, 1500, 2).iter().map(|p| p.at_ms).collect();
        let kills: Vec<u64> = derive_pg_kills(4, 3, 1500).iter().map(|k| k.at_ms).collect();
        assert_ne!(pauses, kills);
    }
}
