//! The process table: spawning the node processes (`exactsim-node`, one
//! role each), signalling, killing and reaping them; the final read; and
//! the order in which everything is stopped at the end.

use super::postgres::{pg_up, PgServer, PG_NODE};
use super::record::{Clock, Gather, TICK};
use exactsim_node::wire::{self, FinalRead};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the final read may take.
const FINAL_READ_MS: u64 = 20_000;
/// How long creating PostgreSQL's tables may take.
const PG_SETUP_MS: u64 = 30_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum State {
    Up,
    Paused,
    Down,
}

/// Every process the supervisor started; all are killed (by pid) when this
/// is dropped, on every exit path including a panic.
pub(super) struct Procs {
    bin: PathBuf,
    spec_path: PathBuf,
    run_dir: PathBuf,
    children: BTreeMap<String, Child>,
    /// Starts per role (1 + restarts).
    pub(super) starts: BTreeMap<String, u32>,
}

impl Procs {
    pub(super) fn new(bin: &Path, spec_path: &Path, run_dir: &Path) -> Procs {
        Procs {
            bin: bin.to_path_buf(),
            spec_path: spec_path.to_path_buf(),
            run_dir: run_dir.to_path_buf(),
            children: BTreeMap::new(),
            starts: BTreeMap::new(),
        }
    }

    /// The run directory the processes work in.
    pub(super) fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    pub(super) fn spawn(&mut self, role: &str) -> Result<(), String> {
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

    pub(super) fn signal(&self, role: &str, sig: libc::c_int) {
        if let Some(c) = self.children.get(role) {
            // SAFETY: a signal to our own child, by pid.
            unsafe {
                libc::kill(c.id() as libc::pid_t, sig);
            }
        }
    }

    /// `kill -9` and reap.
    pub(super) fn kill(&mut self, role: &str) {
        if let Some(mut c) = self.children.remove(role) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A clean stop: `SIGTERM`, then wait for the exit. The node processes
    /// install no handler for it, so the kernel ends them at once, as a
    /// service manager's stop of such a process would; what they wrote
    /// stays in the page cache.
    pub(super) fn terminate(&mut self, role: &str) {
        if let Some(mut c) = self.children.remove(role) {
            // SAFETY: a signal by pid to our own child, not yet reaped.
            unsafe {
                libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
            }
            let _ = c.wait();
        }
    }

    /// Children that exited on their own since the last call.
    pub(super) fn reap(&mut self) -> Vec<(String, String)> {
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

    /// Whether `role` has exited (or was never started), reaping it.
    fn exited(&mut self, role: &str) -> bool {
        self.children.get_mut(role).is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    /// The engine's nodes in the order a simulated run starts them, then
    /// the reader; each node's state is up.
    pub(super) fn start_cluster(&mut self, workers: u32) -> Result<BTreeMap<String, State>, String> {
        let mut state = BTreeMap::new();
        for r in ["broker", "store"]
            .into_iter()
            .map(String::from)
            .chain((0..workers).map(|i| format!("worker-{i}")))
            .chain(["coordinator".into()])
        {
            self.spawn(&r)?;
            state.insert(r, State::Up);
        }
        self.spawn("reader")?;
        Ok(state)
    }

    /// Create the sink's tables, empty, through the real client (role
    /// `pg-setup`), before the run starts; not counted as a start.
    pub(super) fn set_up_postgres(&mut self) -> Result<(), String> {
        self.spawn("pg-setup")?;
        let t = Instant::now();
        let status = loop {
            if let Some(st) = self.children.get_mut("pg-setup").and_then(|c| c.try_wait().ok().flatten()) {
                break Some(st);
            }
            if t.elapsed() > Duration::from_millis(PG_SETUP_MS) || crate::interrupt::requested() {
                break None;
            }
            std::thread::sleep(TICK);
        };
        self.kill("pg-setup");
        self.starts.remove("pg-setup");
        if !status.is_some_and(|s| s.success()) && !crate::interrupt::requested() {
            let log = std::fs::read_to_string(self.run_dir.join("logs").join("pg-setup.log")).unwrap_or_default();
            return Err(format!("cannot set up PostgreSQL for the run: {}", log.trim().replace('\n', "; ")));
        }
        Ok(())
    }

    /// Run the final read (process `final-read`, within `FINAL_READ_MS`)
    /// and return what it wrote, if it did.
    fn final_read(&mut self, clock: &Clock) -> Result<Option<FinalRead>, String> {
        self.spawn("final-read")?;
        let until = clock.ms() + FINAL_READ_MS;
        while !(self.exited("final-read") || clock.ms() >= until || crate::interrupt::requested()) {
            std::thread::sleep(TICK);
        }
        self.kill("final-read");
        let bytes = std::fs::read(wire::final_file(&self.run_dir)).ok();
        Ok(bytes.and_then(|b| serde_json::from_slice::<FinalRead>(&b).ok()))
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

/// Free loopback ports, all distinct (held open until all are picked).
pub(super) fn free_ports(n: usize) -> Result<Vec<std::net::SocketAddr>, String> {
    let ls: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot pick a free loopback port: {e}"))?;
    ls.iter().map(|l| l.local_addr().map_err(|e| e.to_string())).collect()
}

/// What the supervisor holds while a run goes on: the node processes, the
/// run's PostgreSQL, what it gathered, its clock. Dropped on any exit
/// path: the processes first, then the server they write to.
pub(super) struct Stage {
    pub procs: Procs,
    pub pg: Option<PgServer>,
    pub g: Gather,
    pub clock: Clock,
}

impl Stage {
    /// The final read of what a `read_committed` reader sees, once
    /// PostgreSQL (if any) accepts again; an empty one if the run was
    /// interrupted or the read did not finish.
    pub(super) fn final_read(&mut self, partitions: u32, interrupted: bool) -> Result<FinalRead, String> {
        self.procs.kill("reader");
        if let Some(server) = self.pg.as_mut() {
            if !interrupted {
                if let Some(ms) = server.wait_up(&self.clock)? {
                    pg_up(&mut self.g, &self.clock, ms);
                }
            }
        }
        let empty = FinalRead {
            output: vec![Vec::new(); partitions as usize],
            ok: false,
            open_txns: Vec::new(),
            commits: Vec::new(),
        };
        if interrupted {
            return Ok(empty);
        }
        Ok(self.procs.final_read(&self.clock)?.unwrap_or(empty))
    }

    /// Stop every process, then the server (by pid), then read what the
    /// logs hold. Returns what was gathered and the starts per process.
    pub(super) fn stop(self) -> (Gather, BTreeMap<String, u32>) {
        let Stage { procs, pg, mut g, clock: _ } = self;
        let mut starts = procs.starts.clone();
        drop(procs);
        if let Some(server) = pg {
            let restarts =
                g.played.iter().filter(|p| p.node == PG_NODE && matches!(&*p.kind, "pg_restart" | "restart"));
            starts.insert(PG_NODE.into(), 1 + restarts.count() as u32);
            drop(server); // stopped by pid
        }
        g.poll();
        (g, starts)
    }
}
