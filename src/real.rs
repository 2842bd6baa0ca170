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
//! (`SIGSTOP`/`SIGCONT`, from `--pauses`), and fatal exits or panics of a
//! node (restarted after 50 ms, as a supervisor would). What is not: network
//! faults and disk faults (including the disk modes of crashes: a `kill -9`
//! keeps the page cache); each is listed as skipped.
//!
//! A real run is not reproducible bit for bit: thread scheduling, the
//! kernel and the clock decide the interleaving, so there is no trace hash
//! to compare; the schedule that actually happened is recorded instead.

// Real mode is harness code around OS processes: wall clock and signals are
// its job. The determinism bans apply to engine and simulation code.
#![allow(clippy::disallowed_methods)]

use crate::artifacts;
use exactsim_engine::config::Mutant;
use exactsim_engine::observe::{Event, FaultPoint};
use exactsim_engine::types::DeliveryMode;
use exactsim_node::wire::{self, FinalRead, LogLine, NodeSpec, PointCrash};
use exactsim_sim::checks::{check_all, CheckInput, Violation};
use exactsim_sim::history::{Ev, History, Observation, SimEvent, Stamped};
use exactsim_sim::report::Verdict;
use exactsim_sim::report::{build, ReportCtx, RunReport};
use exactsim_sim::rng::SimRng;
use exactsim_sim::scenario::Scenario;
use exactsim_sim::schedule::{generate, node_names, FaultEvent, Profile, Schedule};
use exactsim_sim::world::{derive_config, RunResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Down time after a node's own exit (fatal error, panic) before restart.
const SELF_EXIT_DOWN_MS: u64 = 50;
/// After the job finished (or the liveness bound passed): keep reading.
const GRACE_MS: u64 = 300;
/// How long the final read may take.
const FINAL_READ_MS: u64 = 20_000;
/// Supervisor poll period.
const TICK: Duration = Duration::from_millis(2);
/// Salt of the pause stream: pauses are a real-mode option, drawn from
/// their own stream so the simulated schedule of the seed stays the same.
const PAUSE_SALT: u64 = 0x7061_7573_6573_0001;
/// Salt of the PostgreSQL kill stream (like pauses, outside the simulated
/// schedule).
const PG_KILL_SALT: u64 = 0x7067_6b69_6c6c_0001;
/// PostgreSQL kills per run when `--pg-kills` is not given (scenarios with
/// PostgreSQL only).
pub const PG_KILLS_DEFAULT: u32 = 1;
/// How long a PostgreSQL (re)start may take before the run gives up.
const PG_START_MS: u64 = 90_000;
/// The node name PostgreSQL goes by in the history and the record.
pub const PG_NODE: &str = "postgres";

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

/// A pause window: the node is stopped (`SIGSTOP`) for `dur_ms`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pause {
    pub at_ms: u64,
    pub node: String,
    pub dur_ms: u64,
}

/// A scheduled `kill -9` of PostgreSQL (postmaster and backends), restarted
/// after `down_ms`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PgKill {
    pub at_ms: u64,
    pub down_ms: u64,
}

/// Something the supervisor did to a process, or a process did on its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Played {
    /// Wall ms since the start.
    pub at_ms: u64,
    /// `crash`, `crash_at_point`, `pause`, `resume`, `restart`, `exit`;
    /// for PostgreSQL `pg_kill`, `pg_restart` (begun) and `pg_up`.
    pub kind: String,
    pub node: String,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub kind: String,
    pub event: String,
    pub reason: String,
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
    pub report: RunReport,
    pub real: RealRecord,
    pub violations: Vec<Violation>,
    pub history: History,
    /// Stopped by Ctrl-C/SIGTERM before the end: no verdict.
    pub interrupted: bool,
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

/// Pause windows of a run, drawn from the seed.
pub fn derive_pauses(seed: u64, n: u32, safety_ms: u64, workers: u32) -> Vec<Pause> {
    let mut rng = SimRng::new(seed ^ PAUSE_SALT);
    let nodes = node_names(workers);
    let mut v: Vec<Pause> = (0..n)
        .map(|_| Pause {
            at_ms: rng.range(50, safety_ms.saturating_sub(100).max(60)),
            node: rng.pick(&nodes).clone(),
            dur_ms: rng.range(50, 400),
        })
        .collect();
    v.sort_by_key(|p| p.at_ms);
    v
}

/// PostgreSQL kills of a run, drawn from the seed: in the safety phase
/// (from 100 ms to 100 ms before its end when it is long enough), down 100
/// to 800 ms. A kill due while the server is still down from the previous
/// one is played as soon as it accepts again, if that is within the safety
/// phase (else it is listed as skipped).
pub fn derive_pg_kills(seed: u64, n: u32, safety_ms: u64) -> Vec<PgKill> {
    let mut rng = SimRng::new(seed ^ PG_KILL_SALT);
    let lo = (safety_ms / 4).min(100);
    let hi = safety_ms.saturating_sub(100).max(lo);
    let mut v: Vec<PgKill> =
        (0..n).map(|_| PgKill { at_ms: rng.range(lo, hi), down_ms: rng.range(100, 800) }).collect();
    v.sort_by_key(|k| k.at_ms);
    v
}

/// Why a crash or pause aimed at a node that is down is not played.
const DOWN_REASON: &str = "its node was down (crashed, not yet restarted) when it was due: as in simulation, nothing is played on a down node";

/// The scheduled faults real mode cannot play, with the reason.
pub fn skipped_faults(schedule: &Schedule) -> Vec<Skipped> {
    use exactsim_sim::disk::CrashMode;
    let mut out = Vec::new();
    for e in &schedule.events {
        let reason = match e {
            FaultEvent::Crash { disk, .. } | FaultEvent::CrashAtPoint { disk, .. } => {
                if *disk != CrashMode::KeepAll {
                    out.push(Skipped {
                        kind: format!(
                            "{}:{}",
                            e.kind(),
                            serde_json::to_value(disk)
                                .ok()
                                .and_then(|v| v.as_str().map(String::from))
                                .unwrap_or_default()
                        ),
                        event: e.describe(),
                        reason:
                            "the crash is played; kill -9 keeps the page cache, so unsynced writes are not lost or torn"
                                .into(),
                    });
                }
                continue;
            }
            FaultEvent::Partition { .. } | FaultEvent::Isolate { .. } => {
                "network partitions need control of the loopback interface"
            }
            FaultEvent::PacketLoss { .. } | FaultEvent::Latency { .. } => {
                "loopback TCP neither loses nor delays under our control"
            }
            FaultEvent::SlowDisk { .. } | FaultEvent::DiskErrors { .. } | FaultEvent::CorruptReads { .. } => {
                "disk faults need a fault-injecting file system"
            }
            FaultEvent::Pause { .. } => {
                "the schedule's pauses are not played (--pauses draws SIGSTOP windows of its own)"
            }
            FaultEvent::Stop { .. } => "a clean stop is not played (only kill -9)",
            FaultEvent::LateDelivery { .. } => "late delivery needs the transport's send hook, not driven in real mode",
            FaultEvent::Skew { .. } => "clock steps need the clock seam, not driven in real mode",
            FaultEvent::OnEvent { .. } => "faults triggered by engine events are not played in real mode",
        };
        out.push(Skipped { kind: e.kind().to_string(), event: e.describe(), reason: reason.into() });
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Up,
    Paused,
    Down,
}

/// Every process the supervisor started; all are killed (by pid) when this
/// is dropped, on every exit path including a panic.
struct Procs {
    bin: PathBuf,
    spec_path: PathBuf,
    run_dir: PathBuf,
    children: BTreeMap<String, Child>,
    starts: BTreeMap<String, u32>,
}

impl Procs {
    fn spawn(&mut self, role: &str) -> Result<(), String> {
        let log_path = self.run_dir.join("logs").join(format!("{role}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--spec").arg(&self.spec_path).arg("--role").arg(role);
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // If the supervisor dies (even by kill -9), its nodes die too.
            // SAFETY: prctl is async-signal-safe.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", self.bin.display()))?;
        self.children.insert(role.to_string(), child);
        *self.starts.entry(role.to_string()).or_insert(0) += 1;
        Ok(())
    }

    fn signal(&self, role: &str, sig: libc::c_int) {
        if let Some(c) = self.children.get(role) {
            // SAFETY: a signal to our own child, by pid.
            unsafe {
                libc::kill(c.id() as libc::pid_t, sig);
            }
        }
    }

    /// `kill -9` and reap.
    fn kill(&mut self, role: &str) {
        if let Some(mut c) = self.children.remove(role) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Children that exited on their own since the last call.
    fn reap(&mut self) -> Vec<(String, String)> {
        let mut gone = Vec::new();
        for (role, c) in self.children.iter_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                gone.push((role.clone(), status.to_string()));
            }
        }
        for (role, _) in &gone {
            self.children.remove(role);
        }
        gone
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, c) in self.children.iter_mut() {
            let _ = c.kill(); // SIGKILL; also ends a stopped process
        }
        for (_, c) in self.children.iter_mut() {
            let _ = c.wait();
        }
        self.children.clear();
    }
}

/// The run's PostgreSQL server, started by `ci/postgres.sh` under
/// `dir`; stopped (by its pid, through the script) when dropped, on every
/// exit path.
struct PgServer {
    script: PathBuf,
    dir: PathBuf,
    url: String,
    log: PathBuf,
    /// `ci/postgres.sh start` in flight (a restart).
    starting: Option<(Child, u64)>,
    up: bool,
    /// The restart in flight is a second try.
    retried: bool,
}

impl PgServer {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/postgres.sh")
    }

    fn command(&self, what: &str) -> Result<Command, String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("cannot open {}: {e}", self.log.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new("bash");
        cmd.arg(&self.script)
            .arg(what)
            .env("EXACTSIM_PG_DIR", &self.dir)
            .env("EXACTSIM_PG_MAX_PREPARED", "64")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        Ok(cmd)
    }

    /// Start a fresh server (initdb first); blocks until it accepts.
    fn start(dir: &Path, log: &Path) -> Result<PgServer, String> {
        let script = Self::script();
        if !script.is_file() {
            return Err(format!("no {} to start PostgreSQL with", script.display()));
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // pg_ctl leaves the postmaster an orphan: adopt it, so that this
        // process reaps it (and its backends after a kill -9). A zombie
        // would keep its pid, and the restarted server would take it for
        // a live postmaster holding the lock files.
        #[cfg(target_os = "linux")]
        // SAFETY: plain syscall on this process.
        unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
        }
        let mut pg = PgServer {
            script,
            dir: dir.to_path_buf(),
            url: String::new(),
            log: log.to_path_buf(),
            starting: None,
            up: false,
            retried: false,
        };
        let status = pg.command("start")?.status().map_err(|e| format!("cannot run ci/postgres.sh: {e}"))?;
        // From here on the guard stops whatever did start.
        pg.up = true;
        if !status.success() {
            return Err(format!("PostgreSQL did not start (ci/postgres.sh start: {status}; see {})", log.display()));
        }
        let env = std::fs::read_to_string(dir.join("env")).map_err(|e| format!("no PostgreSQL env file: {e}"))?;
        pg.url = env
            .lines()
            .find_map(|l| l.strip_prefix("export EXACTSIM_PG_URL='").and_then(|v| v.strip_suffix('\'')))
            .ok_or("no EXACTSIM_PG_URL in the PostgreSQL env file")?
            .to_string();
        Ok(pg)
    }

    fn data_dir(&self) -> Option<PathBuf> {
        let env = std::fs::read_to_string(self.dir.join("env")).ok()?;
        env.lines()
            .find_map(|l| l.strip_prefix("export EXACTSIM_PG_DATA='").and_then(|v| v.strip_suffix('\'')))
            .map(PathBuf::from)
    }

    fn postmaster(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.dir.join("server.pid")).ok()?.trim().parse().ok()?;
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        String::from_utf8_lossy(&cmd).contains("postgres").then_some(pid)
    }

    /// `kill -9` of the postmaster and every backend: what a crash of the
    /// server does. Returns the number of processes killed.
    fn kill(&mut self) -> Result<usize, String> {
        let pid = self.postmaster().ok_or("PostgreSQL is not running")?;
        // Stop the postmaster first, so that it forks no backend between
        // the listing of its children and the kill (a backend left alive
        // would keep the shared memory, and the restart would fail).
        // SAFETY: a signal by pid to the server's postmaster.
        unsafe {
            libc::kill(pid, libc::SIGSTOP);
        }
        let t0 = Instant::now();
        while !matches!(stat_field(pid, 0).as_deref(), Some("T" | "t") | None) && t0.elapsed() < Duration::from_secs(2)
        {
            std::thread::sleep(Duration::from_micros(200));
        }
        let mut victims = children_of(pid);
        victims.push(pid);
        for v in &victims {
            // SAFETY: a signal by pid to the server's own processes.
            unsafe {
                libc::kill(*v, libc::SIGKILL);
            }
        }
        let t0 = Instant::now();
        while !victims.iter().all(|v| gone(*v)) {
            if t0.elapsed() > Duration::from_secs(5) {
                return Err(format!("PostgreSQL pid {pid} survived kill -9"));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        reap_adopted_postgres();
        // Every server process is dead: the lock files are stale.
        let _ = std::fs::remove_file(self.dir.join("server.pid"));
        if let Some(d) = self.data_dir() {
            let _ = std::fs::remove_file(d.join("postmaster.pid"));
        }
        self.up = false;
        Ok(victims.len())
    }

    fn begin_restart(&mut self, now_ms: u64) -> Result<(), String> {
        if self.starting.is_none() {
            let child = self.command("start")?.spawn().map_err(|e| format!("cannot run ci/postgres.sh: {e}"))?;
            self.starting = Some((child, now_ms));
        }
        Ok(())
    }

    /// A restart that finished: `Some(Ok(ms it took))`.
    fn poll_restart(&mut self, now_ms: u64) -> Option<Result<u64, String>> {
        let (child, since) = self.starting.as_mut()?;
        let since = *since;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.starting = None;
                self.up = true; // stopped at the end even if it failed half-way
                if !status.success() && !self.retried {
                    // Once more (a backend that outlived the kill by a few
                    // ms still held the shared memory): from the start.
                    self.retried = true;
                    reap_adopted_postgres();
                    std::thread::sleep(Duration::from_millis(100));
                    return match self.command("start").and_then(|mut c| c.spawn().map_err(|e| e.to_string())) {
                        Ok(child) => {
                            self.starting = Some((child, since));
                            None
                        }
                        Err(e) => Some(Err(e)),
                    };
                }
                self.retried = false;
                Some(if status.success() {
                    Ok(now_ms.saturating_sub(since))
                } else {
                    Err(format!("PostgreSQL did not restart ({status}; see {})", self.log.display()))
                })
            }
            Ok(None) if now_ms.saturating_sub(since) > PG_START_MS => {
                Some(Err(format!("PostgreSQL did not restart in {PG_START_MS} ms")))
            }
            _ => None,
        }
    }

    /// Wait for a restart in flight.
    fn wait_up(&mut self, clock: &Clock) -> Result<Option<u64>, String> {
        while self.starting.is_some() {
            if let Some(r) = self.poll_restart(clock.ms()) {
                return r.map(Some);
            }
            std::thread::sleep(TICK);
        }
        Ok(None)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some((mut c, _)) = self.starting.take() {
            let _ = c.wait(); // pg_ctl -w: bounded
            self.up = true;
        }
        // A fast shutdown (SIGINT to the postmaster, by pid), bounded; then
        // whatever is left of it: kill -9.
        if let Some(pid) = self.postmaster() {
            // SAFETY: a signal by pid to the server's postmaster.
            unsafe {
                libc::kill(pid, libc::SIGINT);
            }
            let t0 = Instant::now();
            while !gone(pid) && t0.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(5));
            }
            if !gone(pid) {
                let _ = self.kill();
            }
            let _ = std::fs::remove_file(self.dir.join("server.pid"));
        }
        reap_adopted_postgres();
    }
}

/// Processes whose parent is `pid` (from `/proc`).
fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else { return out };
    for e in rd.flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
        if stat_field(p, 1).and_then(|s| s.parse::<i32>().ok()) == Some(pid) {
            out.push(p);
        }
    }
    out
}

/// Field `i` after the command name of `/proc/<pid>/stat` (0: state, 1: ppid).
fn stat_field(pid: i32, i: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(i).map(String::from)
}

fn is_zombie(pid: i32) -> bool {
    stat_field(pid, 0).as_deref() == Some("Z")
}

/// Reap the PostgreSQL processes this process adopted that have exited
/// (only those: the nodes are `Procs`' children, reaped through `Child`).
fn reap_adopted_postgres() {
    let me = std::process::id() as i32;
    for p in children_of(me) {
        let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        if comm.trim() == "postgres" && is_zombie(p) {
            // SAFETY: reaps only this exited, adopted pid.
            unsafe {
                libc::waitpid(p, std::ptr::null_mut(), libc::WNOHANG);
            }
        }
    }
}

/// The process is gone: reaped here if it was ours (adopted), else
/// exited or a zombie of another parent.
fn gone(pid: i32) -> bool {
    // SAFETY: reaps only this pid, never one of `Procs`' children.
    unsafe {
        libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG);
    }
    !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid)
}

/// Incremental reader of one process's log: only complete lines.
struct Tail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl Tail {
    fn poll(&mut self) -> Vec<LogLine> {
        let Ok(mut f) = std::fs::File::open(&self.path) else { return Vec::new() };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return Vec::new();
        }
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else { return Vec::new() };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        wire::parse_log(&String::from_utf8_lossy(&complete))
    }
}

/// Microseconds since the run's start, on the same clock the nodes use.
struct Clock {
    t0: Instant,
}

impl Clock {
    fn us(&self) -> u64 {
        self.t0.elapsed().as_micros() as u64
    }
    fn ms(&self) -> u64 {
        self.us() / 1000
    }
}

/// Everything gathered while the run goes on.
struct Gather {
    tails: BTreeMap<String, Tail>,
    sim: Vec<Stamped>,
    engine: Vec<Stamped>,
    observations: Vec<Observation>,
    coverage: BTreeMap<(String, FaultPoint), u64>,
    /// Last reason a process gave for going away, per role.
    last_words: BTreeMap<String, (u64, String, Option<usize>)>,
    panic: Option<exactsim_sim::panics::PanicReport>,
    finished_at_us: Option<u64>,
    played: Vec<Played>,
    faults: BTreeMap<String, u64>,
}

impl Gather {
    fn poll(&mut self) {
        for (role, t) in self.tails.iter_mut() {
            for line in t.poll() {
                match line {
                    LogLine::Event(s) => {
                        if let Ev::Engine(Event::JobFinished { .. }) = &s.ev {
                            self.finished_at_us.get_or_insert(s.t_us);
                        }
                        self.engine.push(s);
                    }
                    LogLine::Point { node, point, .. } => *self.coverage.entry((node, point)).or_insert(0) += 1,
                    LogLine::CrashAtPoint { t_us, point, index, .. } => {
                        self.last_words
                            .insert(role.clone(), (t_us, format!("fault point {}", point.name()), Some(index)));
                    }
                    LogLine::Fatal { t_us, reason, .. } => {
                        self.last_words.insert(role.clone(), (t_us, format!("fatal: {reason}"), None));
                    }
                    LogLine::Panic { t_us, node, message, site } => {
                        self.last_words.insert(role.clone(), (t_us, format!("panic at {site}: {message}"), None));
                        let origin = if site.contains("scenarios/") {
                            exactsim_sim::panics::PanicOrigin::Scenario
                        } else if site.contains("engine/") {
                            exactsim_sim::panics::PanicOrigin::Engine
                        } else {
                            exactsim_sim::panics::PanicOrigin::Harness
                        };
                        self.panic.get_or_insert(exactsim_sim::panics::PanicReport {
                            message: format!("{message} (on {node})"),
                            site,
                            origin,
                        });
                    }
                    LogLine::Observed(o) => self.observations.push(o),
                }
            }
        }
    }

    fn sim(&mut self, t_us: u64, node: &str, ev: SimEvent) {
        self.sim.push(Stamped { t_us, node: node.to_string(), ev: Ev::Sim(ev) });
    }

    fn played(&mut self, at_ms: u64, kind: &str, node: &str, detail: String) {
        self.played.push(Played { at_ms, kind: kind.into(), node: node.into(), detail });
    }
}

/// The source interval that spreads reading the input over three quarters
/// of the safety phase: real processes run a job far faster than the
/// simulated network does (pg_ledger's is over in a few hundred ms), and a
/// fault that lands after the job finished tests nothing. The busiest
/// partition sets the pace: `source_batch` records per interval. Between
/// 1 and 200 ms.
pub fn paced_interval_ms(input: &[Vec<exactsim_engine::types::Record>], source_batch: u32, safety_ms: u64) -> u64 {
    let most = input.iter().map(Vec::len).max().unwrap_or(0) as u64;
    let fetches = most.div_ceil(u64::from(source_batch.max(1))).max(1);
    (safety_ms * 3 / 4 / fetches).clamp(1, 200)
}

/// Free loopback ports, all distinct (held open until all are picked).
fn free_ports(n: usize) -> Result<Vec<std::net::SocketAddr>, String> {
    let ls: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot pick a free loopback port: {e}"))?;
    ls.iter().map(|l| l.local_addr().map_err(|e| e.to_string())).collect()
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
    let rspec = crate::spec(spec.scenario.clone(), spec.seed, spec.profile.clone(), spec.mode, spec.mutant);
    let mut cfg = derive_config(&rspec);
    if let Some(ms) = spec.source_poll_ms {
        cfg.source_poll_ms = ms;
    }
    let n = cfg.parallelism;
    let input = exactsim_sim::world::derive_input(&*spec.scenario, spec.seed, &cfg);
    // Real mode kills PostgreSQL through its own stream (`--pg-kills`), not
    // through the schedule: the schedule names the engine's nodes only, and
    // one that names the simulated server's node (`system`) is refused.
    let schedule = spec.schedule.clone().unwrap_or_else(|| generate(spec.seed, &spec.profile, &cfg, false));
    schedule.validate(n, false)?;
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

    let unique = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let run_dir = std::env::temp_dir().join(format!("exactsim-real-{}-{}-{unique:x}", std::process::id(), spec.seed));
    for sub in ["events", "data", "logs", "claims"] {
        std::fs::create_dir_all(run_dir.join(sub)).map_err(|e| format!("cannot create {}: {e}", run_dir.display()))?;
    }
    let result = run_in(spec, &run_dir, cfg, input, schedule, pauses, pg_kills, skipped, t_wall);
    if !spec.keep {
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn run_in(
    spec: &RealSpec,
    run_dir: &Path,
    cfg: exactsim_engine::config::JobConfig,
    input: Vec<Vec<exactsim_engine::types::Record>>,
    schedule: Schedule,
    pauses: Vec<Pause>,
    pg_kills: Vec<PgKill>,
    mut skipped: Vec<Skipped>,
    t_wall: Instant,
) -> Result<RealOutcome, String> {
    let n = cfg.parallelism;
    let with_pg = spec.scenario.pipeline().system().is_some();
    let ports = free_ports(n as usize + 5)?;
    let roles = node_names(n);
    let point_crashes = schedule
        .events
        .iter()
        .enumerate()
        .filter_map(|(index, e)| match e {
            FaultEvent::CrashAtPoint { point, node, nth, down_ms, .. } => {
                Some(PointCrash { index, point: *point, node: node.clone(), nth: *nth, down_ms: *down_ms })
            }
            _ => None,
        })
        .collect::<Vec<_>>();
    // PostgreSQL first (a cold start takes seconds): declared before the
    // processes, so it is stopped after them on every exit path.
    let mut pg = if with_pg {
        Some(PgServer::start(&run_dir.join("pg"), &run_dir.join("logs").join("postgres.log"))?)
    } else {
        None
    };
    let mut node_spec = NodeSpec {
        scenario: spec.scenario.name().to_string(),
        seed: spec.seed,
        config: cfg.clone(),
        coordinator: ports[0],
        broker: ports[1],
        store: ports[2],
        reader: ports[3],
        final_reader: ports[4],
        workers: ports[5..].to_vec(),
        run_dir: run_dir.to_path_buf(),
        start_unix_us: 0, // set when the run starts
        safety_ms: schedule.safety_ms,
        point_crashes: point_crashes.clone(),
        latency_ms: spec.latency_ms,
        pg_url: pg.as_ref().map(|p| p.url.clone()),
    };
    let spec_path = run_dir.join("spec.json");
    let write_spec = |s: &NodeSpec| {
        std::fs::write(&spec_path, serde_json::to_vec_pretty(s).expect("serializable"))
            .map_err(|e| format!("cannot write {}: {e}", spec_path.display()))
    };
    write_spec(&node_spec)?;

    let mut procs = Procs {
        bin: spec.node_bin.clone(),
        spec_path: spec_path.clone(),
        run_dir: run_dir.to_path_buf(),
        children: BTreeMap::new(),
        starts: BTreeMap::new(),
    };
    if pg.is_some() {
        // The sink's tables, empty, through the real client; then the run
        // starts.
        procs.spawn("pg-setup")?;
        let t = Instant::now();
        let status = loop {
            if let Some(st) = procs.children.get_mut("pg-setup").and_then(|c| c.try_wait().ok().flatten()) {
                break Some(st);
            }
            if t.elapsed() > Duration::from_secs(30) || crate::interrupt::requested() {
                break None;
            }
            std::thread::sleep(TICK);
        };
        procs.kill("pg-setup");
        procs.starts.remove("pg-setup");
        if !status.is_some_and(|s| s.success()) && !crate::interrupt::requested() {
            let log = std::fs::read_to_string(run_dir.join("logs").join("pg-setup.log")).unwrap_or_default();
            return Err(format!("cannot set up PostgreSQL for the run: {}", log.trim().replace('\n', "; ")));
        }
    }
    let t0 = Instant::now();
    node_spec.start_unix_us =
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
    write_spec(&node_spec)?;
    let clock = Clock { t0 };
    let mut g = Gather {
        tails: BTreeMap::new(),
        sim: Vec::new(),
        engine: Vec::new(),
        observations: Vec::new(),
        coverage: BTreeMap::new(),
        last_words: BTreeMap::new(),
        panic: None,
        finished_at_us: None,
        played: Vec::new(),
        faults: BTreeMap::new(),
    };
    for r in roles.iter().map(String::as_str).chain(["reader"]) {
        g.tails.insert(r.to_string(), Tail { path: wire::events_file(run_dir, r), offset: 0, partial: Vec::new() });
    }
    g.sim(0, "sim", SimEvent::RunStarted);
    // Same start order as a simulated run; the reader last.
    let mut state: BTreeMap<String, State> = BTreeMap::new();
    for r in ["broker", "store"]
        .into_iter()
        .map(String::from)
        .chain((0..n).map(|i| format!("worker-{i}")))
        .chain(["coordinator".into()])
    {
        procs.spawn(&r)?;
        state.insert(r, State::Up);
    }
    procs.spawn("reader")?;

    // The safety phase's timeline: (ms, what).
    enum Act {
        Crash(usize),
        PauseStart(usize),
        PauseEnd(usize),
        PgKill(usize),
    }
    let mut timeline: Vec<(u64, Act)> = Vec::new();
    for (i, e) in schedule.events.iter().enumerate() {
        if let FaultEvent::Crash { at_ms, .. } = e {
            timeline.push((*at_ms, Act::Crash(i)));
        }
    }
    for (i, p) in pauses.iter().enumerate() {
        timeline.push((p.at_ms, Act::PauseStart(i)));
        timeline.push(((p.at_ms + p.dur_ms).min(schedule.safety_ms), Act::PauseEnd(i)));
    }
    for (i, k) in pg_kills.iter().enumerate() {
        timeline.push((k.at_ms, Act::PgKill(i)));
    }
    timeline.sort_by_key(|(t, _)| *t);
    // When a killed PostgreSQL is due to restart.
    let mut pg_restart_at: Option<u64> = None;
    // Kills that are due, in order (one waits while the server is down).
    let mut pg_due: Vec<usize> = Vec::new();
    let mut next = 0usize;
    let mut restarts: BTreeMap<(u64, String), ()> = BTreeMap::new();
    // Reference counts of pause windows per node.
    let mut paused: BTreeMap<String, u32> = BTreeMap::new();
    let mut interrupted = false;

    // Handle processes that went away on their own.
    let on_exits = |g: &mut Gather,
                    procs: &mut Procs,
                    state: &mut BTreeMap<String, State>,
                    restarts: &mut BTreeMap<(u64, String), ()>,
                    safety: bool| {
        let gone = procs.reap();
        if gone.is_empty() {
            return;
        }
        g.poll();
        for (role, status) in gone {
            if role == "reader" {
                let _ = procs.spawn("reader");
                continue;
            }
            let now = clock.us();
            let (t_us, cause, index) = g.last_words.remove(&role).unwrap_or((now, format!("exited: {status}"), None));
            let (kind, down_ms) = match index {
                Some(i) if safety => match &schedule.events[i] {
                    FaultEvent::CrashAtPoint { down_ms, .. } => ("crash_at_point", *down_ms),
                    _ => ("exit", SELF_EXIT_DOWN_MS),
                },
                _ => ("exit", SELF_EXIT_DOWN_MS),
            };
            if kind == "crash_at_point" {
                *g.faults.entry("crash_at_point".into()).or_insert(0) += 1;
            }
            g.sim(
                t_us,
                &role,
                SimEvent::NodeCrashed { node: role.clone(), cause: cause.clone(), lost_bytes: 0, torn_files: 0 },
            );
            g.played(t_us / 1000, kind, &role, cause);
            state.insert(role.clone(), State::Down);
            restarts.insert((now / 1000 + down_ms, role), ());
        }
    };

    // ---- safety phase ----
    loop {
        if crate::interrupt::requested() {
            interrupted = true;
            break;
        }
        on_exits(&mut g, &mut procs, &mut state, &mut restarts, true);
        g.poll();
        let now_ms = clock.ms();
        while let Some(((t, node), ())) = restarts.first_key_value().map(|(k, v)| (k.clone(), *v)) {
            if t > now_ms || now_ms >= schedule.safety_ms {
                break;
            }
            restarts.remove(&(t, node.clone()));
            procs.spawn(&node)?;
            state.insert(node.clone(), State::Up);
            paused.remove(&node);
            g.sim(clock.us(), &node, SimEvent::NodeRestarted { node: node.clone() });
            g.played(now_ms, "restart", &node, String::new());
        }
        if let Some(server) = pg.as_mut() {
            pg_step(server, &mut pg_restart_at, &mut g, &clock, false)?;
            if !pg_due.is_empty()
                && server.up
                && server.starting.is_none()
                && pg_restart_at.is_none()
                && clock.ms() < schedule.safety_ms
            {
                let k = &pg_kills[pg_due.remove(0)];
                pg_restart_at = Some(pg_kill(server, k, &mut g, &clock)?);
            }
        }
        while next < timeline.len() && timeline[next].0 <= now_ms {
            let (_, act) = &timeline[next];
            next += 1;
            match act {
                Act::Crash(i) => {
                    let FaultEvent::Crash { node, down_ms, .. } = &schedule.events[*i] else { unreachable!() };
                    if state.get(node) == Some(&State::Down) {
                        // Already down: as in simulation, no second crash;
                        // said so, and not listed as a crash that is played.
                        let event = schedule.events[*i].describe();
                        skipped.retain(|k| k.event != event);
                        skipped.push(Skipped { kind: "crash".into(), event, reason: DOWN_REASON.into() });
                        continue;
                    }
                    procs.kill(node);
                    let t = clock.us();
                    state.insert(node.clone(), State::Down);
                    paused.remove(node);
                    *g.faults.entry("crash".into()).or_insert(0) += 1;
                    g.sim(
                        t,
                        node,
                        SimEvent::NodeCrashed {
                            node: node.clone(),
                            cause: "scheduled crash".into(),
                            lost_bytes: 0,
                            torn_files: 0,
                        },
                    );
                    g.played(t / 1000, "crash", node, format!("kill -9, down {down_ms} ms"));
                    restarts.insert((t / 1000 + down_ms, node.clone()), ());
                }
                Act::PgKill(i) => {
                    // Down or restarting: played once it accepts again.
                    pg_due.push(*i);
                }
                Act::PauseStart(i) => {
                    let p = &pauses[*i];
                    if state.get(&p.node) == Some(&State::Down) {
                        let event = serde_json::to_string(p).expect("serializable");
                        skipped.push(Skipped { kind: "pause".into(), event, reason: DOWN_REASON.into() });
                        continue;
                    }
                    let c = paused.entry(p.node.clone()).or_insert(0);
                    *c += 1;
                    if *c == 1 {
                        procs.signal(&p.node, libc::SIGSTOP);
                        state.insert(p.node.clone(), State::Paused);
                    }
                    let t = clock.us();
                    *g.faults.entry("pause".into()).or_insert(0) += 1;
                    let detail = serde_json::to_string(p).expect("serializable");
                    g.sim(t, "sim", SimEvent::FaultStarted { kind: "pause".into(), detail: detail.clone() });
                    g.played(t / 1000, "pause", &p.node, format!("SIGSTOP for {} ms", p.dur_ms));
                }
                Act::PauseEnd(i) => {
                    let p = &pauses[*i];
                    let Some(c) = paused.get_mut(&p.node) else { continue };
                    *c -= 1;
                    if *c == 0 {
                        paused.remove(&p.node);
                        procs.signal(&p.node, libc::SIGCONT);
                        state.insert(p.node.clone(), State::Up);
                        let t = clock.us();
                        let detail = serde_json::to_string(p).expect("serializable");
                        g.sim(t, "sim", SimEvent::FaultEnded { kind: "pause".into(), detail });
                        g.played(t / 1000, "resume", &p.node, "SIGCONT".into());
                    }
                }
            }
        }
        if now_ms >= schedule.safety_ms && next >= timeline.len() {
            break;
        }
        std::thread::sleep(TICK);
    }

    // Kills still waiting for the server at the end of the safety phase.
    let pg_not_played: Vec<Skipped> = pg_due
        .iter()
        .map(|i| Skipped {
            kind: "pg_kill".into(),
            event: serde_json::to_string(&pg_kills[*i]).expect("serializable"),
            reason: "PostgreSQL was still down or restarting from the previous kill until the safety phase ended"
                .into(),
        })
        .collect();

    // ---- liveness phase: heal, then wait for the job to finish ----
    for (node, _) in std::mem::take(&mut paused) {
        procs.signal(&node, libc::SIGCONT);
        state.insert(node.clone(), State::Up);
        g.played(clock.ms(), "resume", &node, "SIGCONT (heal)".into());
    }
    for ((_, node), ()) in std::mem::take(&mut restarts) {
        if state.get(&node) == Some(&State::Down) {
            procs.spawn(&node)?;
            state.insert(node.clone(), State::Up);
            g.sim(clock.us(), &node, SimEvent::NodeRestarted { node: node.clone() });
            g.played(clock.ms(), "restart", &node, "heal".into());
        }
    }
    if let Some(server) = pg.as_mut() {
        if pg_restart_at.is_some() {
            pg_restart_at = Some(0);
            pg_step(server, &mut pg_restart_at, &mut g, &clock, true)?;
        }
    }
    let healed_at_us = clock.us();
    g.sim(healed_at_us, "sim", SimEvent::Healed);
    let deadline_us = healed_at_us.saturating_add(schedule.liveness_ms.saturating_mul(1000));
    let mut grace_until: Option<u64> = None;
    while !interrupted {
        if crate::interrupt::requested() {
            interrupted = true;
            break;
        }
        on_exits(&mut g, &mut procs, &mut state, &mut restarts, false);
        g.poll();
        let now_ms = clock.ms();
        while let Some(((t, node), ())) = restarts.first_key_value().map(|(k, v)| (k.clone(), *v)) {
            if t > now_ms {
                break;
            }
            restarts.remove(&(t, node.clone()));
            procs.spawn(&node)?;
            state.insert(node.clone(), State::Up);
            g.sim(clock.us(), &node, SimEvent::NodeRestarted { node: node.clone() });
            g.played(now_ms, "restart", &node, String::new());
        }
        if let Some(server) = pg.as_mut() {
            pg_step(server, &mut pg_restart_at, &mut g, &clock, false)?;
        }
        let now_us = clock.us();
        if grace_until.is_none() && (g.finished_at_us.is_some() || now_us >= deadline_us) {
            grace_until = Some(now_us + GRACE_MS * 1000);
        }
        if grace_until.is_some_and(|t| now_us >= t) {
            break;
        }
        std::thread::sleep(TICK);
    }

    // ---- final read ----
    procs.kill("reader");
    if let Some(server) = pg.as_mut() {
        if !interrupted {
            if let Some(ms) = server.wait_up(&clock)? {
                pg_up(&mut g, &clock, ms);
            }
        }
    }
    let mut fin =
        FinalRead { output: vec![Vec::new(); n as usize], ok: false, open_txns: Vec::new(), commits: Vec::new() };
    if !interrupted {
        procs.spawn("final-read")?;
        let until = clock.ms() + FINAL_READ_MS;
        loop {
            let done = procs.children.get_mut("final-read").is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))));
            if done || clock.ms() >= until || crate::interrupt::requested() {
                break;
            }
            std::thread::sleep(TICK);
        }
        procs.kill("final-read");
        if let Ok(bytes) = std::fs::read(wire::final_file(run_dir)) {
            if let Ok(f) = serde_json::from_slice::<FinalRead>(&bytes) {
                fin = f;
            }
        }
    }
    let end_us = clock.us();
    // Stop everything, then read what the logs hold.
    let mut starts = procs.starts.clone();
    drop(procs);
    if let Some(server) = pg.take() {
        starts.insert(PG_NODE.into(), 1 + g.played.iter().filter(|p| p.kind == "pg_restart").count() as u32);
        drop(server); // stopped by pid
    }
    g.poll();
    // The sink system's commits as its server recorded them.
    for c in std::mem::take(&mut fin.commits) {
        g.engine.push(Stamped {
            t_us: c.t_us,
            node: "system".into(),
            ev: Ev::Engine(Event::TxnCommitted { txn: c.txn, epoch: c.epoch, out: c.out }),
        });
    }
    g.sim(end_us, "sim", SimEvent::RunEnded);

    let mut events = std::mem::take(&mut g.engine);
    events.append(&mut g.sim);
    // One timeline over all processes: stamps share one clock; the sort is
    // stable, so each process keeps its own order.
    events.sort_by_key(|s| s.t_us);
    let mut observations = std::mem::take(&mut g.observations);
    observations.sort_by_key(|o| o.t_us);
    let mut trace_hash = exactsim_sim::recorder::FNV_OFFSET;
    for e in &events {
        trace_hash = exactsim_sim::recorder::fnv1a(trace_hash, &event_bytes(e));
    }
    let history = History {
        scenario: spec.scenario.name().to_string(),
        seed: spec.seed,
        mode: spec.mode,
        parallelism: n,
        output_partitions: cfg.output_partitions(),
        input,
        events,
        observations,
        final_output: fin.output,
        final_read_ok: fin.ok,
        final_open_txns: fin.open_txns,
        healed_at_us,
        deadline_us,
        finished_at_us: g.finished_at_us,
        reached: Vec::new(),
    };
    let mut played = std::mem::take(&mut g.played);
    played.sort_by_key(|p| p.at_ms);
    let result = RunResult {
        history,
        trace_hash,
        chain: Vec::new(),
        coverage: std::mem::take(&mut g.coverage),
        schedule: schedule.clone(),
        config: cfg,
        faults: std::mem::take(&mut g.faults),
        sim_time_ms: end_us / 1000,
        net_messages: 0,
        panic: g.panic.clone(),
    };
    let (mut violations, output) = if interrupted {
        (Vec::new(), Default::default())
    } else if let Some(p) = &result.panic {
        let v = Violation::new(
            exactsim_sim::runner::PANIC_CHECK,
            result.history.events.last().map(|e| e.t_us),
            p.describe(),
        );
        (vec![v], Default::default())
    } else {
        match exactsim_sim::panics::capture(|| {
            check_all(&CheckInput { history: &result.history, scenario: &*spec.scenario })
        }) {
            Ok(v) => v,
            Err(p) => (vec![Violation::new(exactsim_sim::runner::PANIC_CHECK, None, p.describe())], Default::default()),
        }
    };
    for v in violations.iter_mut() {
        v.message = format!("(seed = {}, real run) {}", spec.seed, v.message);
    }
    let mut repro = format!(
        "exactsim real --scenario {} --seed {} --profile {} --mode {}",
        spec.scenario.name(),
        spec.seed,
        spec.profile_arg,
        spec.mode.name()
    );
    if let Some(m) = spec.mutant {
        repro.push_str(&format!(" --mutant {}", m.name()));
    }
    if spec.pauses > 0 {
        repro.push_str(&format!(" --pauses {}", spec.pauses));
    }
    if let Some(k) = spec.pg_kills {
        repro.push_str(&format!(" --pg-kills {k}"));
    }
    if let Some(ms) = spec.source_poll_ms {
        repro.push_str(&format!(" --source-poll-ms {ms}"));
    }
    if spec.latency_ms != LATENCY_MS_DEFAULT {
        repro.push_str(&format!(" --latency-ms {}-{}", spec.latency_ms.0, spec.latency_ms.1));
    }
    // The same schedule again: without it the seed's own would be played.
    if let Some(p) = &spec.schedule_path {
        repro.push_str(&format!(" --schedule {}", p.display()));
    }
    let wall_ms = t_wall.elapsed().as_millis() as u64;
    let mut report = build(
        &result,
        ReportCtx {
            scenario: &*spec.scenario,
            profile: &spec.profile_arg,
            violations: &violations,
            output,
            wall_ms,
            sim_wall_us: end_us,
            repro: format!("{repro} (real runs are not reproducible bit for bit; the same schedule is played again)"),
            code_version: crate::code_version(),
            panic: result.panic.clone(),
        },
    );
    report.trace_hash = "none(real-run)".into();
    if interrupted {
        report.verdict = Verdict::Interrupted;
    }
    let real = RealRecord {
        reproducible: false,
        note: NOTE.into(),
        schedule,
        pauses,
        pg_kills,
        postgres: node_spec.pg_url.clone(),
        played,
        skipped: skipped.into_iter().chain(pg_not_played).collect(),
        starts,
        wall_ms,
        latency_ms: spec.latency_ms,
        run_dir: run_dir.display().to_string(),
        node_binary: spec.node_bin.display().to_string(),
    };
    Ok(RealOutcome { report, real, violations, history: result.history, interrupted })
}

/// `kill -9` of PostgreSQL, recorded; returns when it is due to restart (ms).
fn pg_kill(server: &mut PgServer, k: &PgKill, g: &mut Gather, clock: &Clock) -> Result<u64, String> {
    let killed = server.kill()?;
    let t = clock.us();
    *g.faults.entry("pg_kill".into()).or_insert(0) += 1;
    g.sim(
        t,
        PG_NODE,
        SimEvent::NodeCrashed {
            node: PG_NODE.into(),
            cause: "scheduled kill -9 of PostgreSQL".into(),
            lost_bytes: 0,
            torn_files: 0,
        },
    );
    g.played(
        t / 1000,
        "pg_kill",
        PG_NODE,
        format!(
            "kill -9 of the postmaster and {} backends{}, down {} ms",
            killed - 1,
            if t / 1000 > k.at_ms + 20 {
                format!(" (due at {} ms, the server was down)", k.at_ms)
            } else {
                String::new()
            },
            k.down_ms
        ),
    );
    Ok(t / 1000 + k.down_ms)
}

/// Restart a killed PostgreSQL when it is due (`heal`: now), and record
/// a restart that finished.
fn pg_step(
    server: &mut PgServer,
    restart_at: &mut Option<u64>,
    g: &mut Gather,
    clock: &Clock,
    heal: bool,
) -> Result<(), String> {
    let now_ms = clock.ms();
    if let Some(at) = *restart_at {
        if at <= now_ms {
            *restart_at = None;
            server.begin_restart(now_ms)?;
            g.played(now_ms, "pg_restart", PG_NODE, if heal { "heal".into() } else { "ci/postgres.sh start".into() });
        }
    }
    if let Some(r) = server.poll_restart(clock.ms()) {
        pg_up(g, clock, r?);
    }
    Ok(())
}

fn pg_up(g: &mut Gather, clock: &Clock, took_ms: u64) {
    let t = clock.us();
    g.sim(t, PG_NODE, SimEvent::NodeRestarted { node: PG_NODE.into() });
    g.played(t / 1000, "pg_up", PG_NODE, format!("accepting again after {took_ms} ms of recovery"));
}

/// Bytes of an event for the (informational) trace hash.
fn event_bytes(e: &Stamped) -> Vec<u8> {
    serde_json::to_vec(e).expect("serializable")
}

/// Write `report.json` (the run report, same schema as a simulated run),
/// `real.json` (what was played and skipped) and `trace.jsonl` under `dir`.
pub fn write_report(dir: &Path, out: &RealOutcome) -> Vec<String> {
    let mut errors = Vec::new();
    let report = serde_json::to_string_pretty(&out.report).expect("serializable");
    errors.extend(artifacts::write_file(&dir.join("report.json"), &report).err());
    let real = serde_json::to_string_pretty(&out.real).expect("serializable");
    errors.extend(artifacts::write_file(&dir.join("real.json"), &real).err());
    let mut trace = String::new();
    for e in &out.history.events {
        trace.push_str(&serde_json::to_string(e).expect("serializable"));
        trace.push('\n');
    }
    errors.extend(artifacts::write_file(&dir.join("trace.jsonl"), &trace).err());
    errors
}

/// The lines printed after a real run.
pub fn summary(out: &RealOutcome) -> String {
    let mut s = out.report.summary_line();
    s.push_str(&format!(" wall_ms={} skipped={}", out.real.wall_ms, out.real.skipped.len()));
    s.push_str("\n  real run: not reproducible bit for bit (no trace hash); played:");
    for p in &out.real.played {
        s.push_str(&format!("\n    {:>6} ms {:<14} {:<12} {}", p.at_ms, p.kind, p.node, p.detail));
    }
    if !out.real.skipped.is_empty() {
        s.push_str("\n  skipped (cannot be played for real):");
        for k in &out.real.skipped {
            s.push_str(&format!("\n    {}: {} ({})", k.kind, k.event, k.reason));
        }
    }
    for v in &out.report.violations {
        s.push('\n');
        s.push_str(&crate::output::violation_line(v));
    }
    if !out.report.violations.is_empty() {
        let r = &out.report;
        s.push_str(&format!("\nreproduce: {}", r.repro));
        let mut sim = format!(
            "cargo run --release -- run --scenario {} --seed {} --profile {} --mode {}",
            r.scenario, r.seed, r.profile, r.mode
        );
        if let Some(m) = &r.mutant {
            sim.push_str(&format!(" --mutant {m}"));
        }
        s.push_str(&format!("\nin simulation (deterministic; the same seed's schedule, another interleaving): {sim}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The busiest partition's batches are spread over three quarters of
    /// the safety phase, within 1 to 200 ms per batch.
    #[test]
    fn sources_are_paced_over_the_safety_phase() {
        use exactsim_engine::types::Record;
        let part = |n: u64| (0..n).map(|i| Record { id: i, key: i, ts_ms: i, value: 1 }).collect::<Vec<_>>();
        assert_eq!(paced_interval_ms(&[part(160), part(320)], 16, 2000), 75, "20 batches over 1500 ms");
        assert_eq!(paced_interval_ms(&[part(1)], 16, 2000), 200, "capped");
        assert_eq!(paced_interval_ms(&[part(100_000)], 16, 2000), 1, "floored");
        assert_eq!(paced_interval_ms(&[], 16, 2000), 200, "no input");
    }

    #[test]
    fn pg_kills_are_drawn_from_the_seed_inside_the_safety_phase() {
        let a = derive_pg_kills(7, 3, 1500);
        assert_eq!(a, derive_pg_kills(7, 3, 1500), "same seed, same kills");
        assert_ne!(a, derive_pg_kills(8, 3, 1500), "another seed, other kills");
        assert_eq!(a.len(), 3);
        assert!(a.windows(2).all(|w| w[0].at_ms <= w[1].at_ms), "in time order: {a:?}");
        for seed in 0..200 {
            for k in derive_pg_kills(seed, 2, 1500) {
                assert!((100..=1400).contains(&k.at_ms), "{k:?}");
                assert!((100..=800).contains(&k.down_ms), "{k:?}");
            }
        }
        assert!(derive_pg_kills(1, 0, 1500).is_empty());
        // A tiny safety phase still gets its kills inside it.
        for safety in [1, 50, 150] {
            let k = derive_pg_kills(1, 3, safety);
            assert!(k.iter().all(|k| k.at_ms < safety), "{safety}: {k:?}");
        }
    }

    #[test]
    fn pg_kills_do_not_move_the_other_streams() {
        // Kills come from their own stream: the pauses of a seed stay.
        assert_eq!(derive_pauses(4, 2, 1500, 2), derive_pauses(4, 2, 1500, 2));
        let pauses: Vec<u64> = derive_pauses(4, 3, 1500, 2).iter().map(|p| p.at_ms).collect();
        let kills: Vec<u64> = derive_pg_kills(4, 3, 1500).iter().map(|k| k.at_ms).collect();
        assert_ne!(pauses, kills);
    }

    #[test]
    fn stat_fields_of_this_process() {
        let me = std::process::id() as i32;
        assert!(matches!(stat_field(me, 0).as_deref(), Some("R" | "S")));
        let ppid = stat_field(me, 1).and_then(|p| p.parse::<i32>().ok()).unwrap();
        assert!(children_of(ppid).contains(&me));
        assert!(!is_zombie(me));
    }
}
