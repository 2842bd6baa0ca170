//! The run's PostgreSQL server, for a scenario that writes to one
//! (pg_ledger): started with `ci/postgres.sh` under the run directory,
//! killed (`kill -9` of the postmaster and every backend, by pid) and
//! restarted without blocking the supervisor's loop, stopped by pid at the
//! end whatever happens. This process adopts the server's processes (a
//! subreaper) and reaps them, so that a restarted server does not take a
//! zombie for a live postmaster.

use super::record::{Clock, Gather, TICK};
use exactsim_model::history::SimEvent;
use exactsim_model::rng::SimRng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Salt of the PostgreSQL kill stream (like pauses, outside the simulated
/// schedule).
const PG_KILL_SALT: u64 = 0x7067_6b69_6c6c_0001;
/// Extra PostgreSQL kills per run when `--pg-kills` is not given: none,
/// the schedule's own faults on the `system` node crash, stop and pause
/// the server as they do the simulated one.
pub const PG_KILLS_DEFAULT: u32 = 0;
/// How long a PostgreSQL (re)start may take before the run gives up.
const PG_START_MS: u64 = 90_000;
/// The node name PostgreSQL goes by in the history and the record.
pub const PG_NODE: &str = exactsim_model::schedule::SYSTEM_NODE;

/// A scheduled `kill -9` of PostgreSQL (postmaster and backends), restarted
/// after `down_ms`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PgKill {
    pub at_ms: u64,
    pub down_ms: u64,
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

/// The run's PostgreSQL server, started by `ci/postgres.sh` under
/// `dir`; stopped (by its pid, through the script) when dropped, on every
/// exit path.
pub(super) struct PgServer {
    script: PathBuf,
    dir: PathBuf,
    /// Its connection string.
    pub(super) url: String,
    log: PathBuf,
    /// `ci/postgres.sh start` in flight (a restart).
    pub(super) starting: Option<(Child, u64)>,
    pub(super) up: bool,
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
    pub(super) fn start(dir: &Path, log: &Path) -> Result<PgServer, String> {
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

    /// The server a dead supervisor started under `dir` (a stale run
    /// directory, `stale.rs`): dropping it stops whatever still runs there.
    pub(super) fn adopt(dir: &Path) -> PgServer {
        PgServer {
            script: Self::script(),
            dir: dir.to_path_buf(),
            url: String::new(),
            log: dir.join("adopted.log"),
            starting: None,
            up: true,
            retried: false,
        }
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
    pub(super) fn kill(&mut self) -> Result<usize, String> {
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

    /// Up, and not restarting: a crash, stop or pause can be played.
    pub(super) fn accepting(&self) -> bool {
        self.up && self.starting.is_none()
    }

    /// Signal the postmaster and every backend (a pause: `SIGSTOP`, then
    /// `SIGCONT`; a stopped postmaster forks nothing meanwhile).
    pub(super) fn signal_all(&self, sig: libc::c_int) {
        let Some(pid) = self.postmaster() else { return };
        let mut all = vec![pid];
        all.extend(children_of(pid));
        for p in all {
            // SAFETY: a signal by pid to the server's own processes.
            unsafe {
                libc::kill(p, sig);
            }
        }
    }

    /// A clean stop: a fast shutdown (`SIGINT` to the postmaster, by pid:
    /// open transactions are rolled back, prepared ones stay), bounded;
    /// then whatever is left of it: kill -9.
    pub(super) fn shutdown(&mut self) -> Result<(), String> {
        if let Some(pid) = self.postmaster() {
            self.signal_all(libc::SIGCONT);
            // SAFETY: a signal by pid to the server's postmaster.
            unsafe {
                libc::kill(pid, libc::SIGINT);
            }
            let t0 = Instant::now();
            while !gone(pid) && t0.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(5));
            }
            if !gone(pid) {
                self.kill()?;
            }
            let _ = std::fs::remove_file(self.dir.join("server.pid"));
        }
        reap_adopted_postgres();
        self.up = false;
        Ok(())
    }

    pub(super) fn begin_restart(&mut self, now_ms: u64) -> Result<(), String> {
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
    pub(super) fn wait_up(&mut self, clock: &Clock) -> Result<Option<u64>, String> {
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
        let _ = self.shutdown();
        reap_adopted_postgres();
    }
}

/// `kill -9` of PostgreSQL, recorded; returns when it is due to restart (ms).
pub(super) fn pg_kill(server: &mut PgServer, k: &PgKill, g: &mut Gather, clock: &Clock) -> Result<u64, String> {
    let killed = server.kill()?;
    let t = clock.us();
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
pub(super) fn pg_step(
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

/// Record that PostgreSQL accepts again after `took_ms` of recovery.
pub(super) fn pg_up(g: &mut Gather, clock: &Clock, took_ms: u64) {
    let t = clock.us();
    g.sim(t, PG_NODE, SimEvent::NodeRestarted { node: PG_NODE.into() });
    g.played(t / 1000, "pg_up", PG_NODE, format!("accepting again after {took_ms} ms of recovery"));
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn stat_fields_of_this_process() {
        let me = std::process::id() as i32;
        assert!(matches!(stat_field(me, 0).as_deref(), Some("R" | "S")));
        let ppid = stat_field(me, 1).and_then(|p| p.parse::<i32>().ok()).unwrap();
        assert!(children_of(ppid).contains(&me));
        assert!(!is_zombie(me));
    }
}
