//! Playing a run's faults in wall time: the schedule's faults real mode
//! can play, through the one play loop (`faults::Player`) on the
//! [`Kernel`] target (crash = `kill -9`, restarted after `down_ms`;
//! network and clock windows written to the run's control file, which the
//! node processes obey; what a kind cannot play here, disk faults, its
//! file says, [`skipped_faults`]), the crashes
//! at fault points the processes
//! make themselves, the pauses (`SIGSTOP`/`SIGCONT`) and the PostgreSQL
//! kills drawn from the seed, the processes that exit on their own
//! (restarted as a supervisor would); then healing and the liveness phase.
//! What cannot be played is listed as skipped, with the reason.

use super::postgres::{pg_kill, pg_step, PgKill, PG_NODE};
use super::record::TICK;
use super::supervisor::{Stage, State};
use exactsim_model::faults::{self, Real, Shown, Target, Window};
use exactsim_model::history::SimEvent;
use exactsim_model::rng::SimRng;
use exactsim_model::schedule::{node_names, Schedule};
use exactsim_model::schedule::{CrashMode, TriggerAction};
use exactsim_node::control::{self, Control, NetWindow, OpenWindow};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Down time after a node's own exit (fatal error, panic) before restart.
const SELF_EXIT_DOWN_MS: u64 = 50;
/// After the job finished (or the liveness bound passed): keep reading.
const GRACE_MS: u64 = 300;
/// Salt of the pause stream: pauses are a real-mode option, drawn from
/// their own stream so the simulated schedule of the seed stays the same.
const PAUSE_SALT: u64 = 0x7061_7573_6573_0001;
/// Why a crash or pause aimed at a node that is down is not played.
pub const DOWN_REASON: &str = "its node was down (crashed, not yet restarted) when it was due: as in simulation, nothing is played on a down node";

/// A pause window: the node is stopped (`SIGSTOP`) for `dur_ms`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pause {
    pub at_ms: u64,
    pub node: String,
    pub dur_ms: u64,
}

/// A fault that was not played, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub kind: String,
    pub event: String,
    pub reason: String,
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

/// The scheduled faults real mode cannot play (or not all of), with the
/// reason: each kind's answer ([`faults::Fault::real`]).
pub fn skipped_faults(schedule: &Schedule) -> Vec<Skipped> {
    let mut out = Vec::new();
    for e in &schedule.events {
        match e.fault().real() {
            Real::Plays => {}
            Real::Partly { qualifier, reason } => out.push(Skipped {
                kind: format!("{}:{qualifier}", e.kind()),
                event: e.describe(),
                reason: reason.into(),
            }),
            Real::Skips(reason) => {
                out.push(Skipped { kind: e.kind().to_string(), event: e.describe(), reason: reason.into() })
            }
        }
    }
    out
}

/// A step of the safety phase's timeline.
#[derive(Clone, Copy)]
enum Act {
    PauseStart(usize),
    PauseEnd(usize),
    PgKill(usize),
}

/// Plays one run's faults on its [`Stage`].
pub(super) struct Player<'a> {
    schedule: &'a Schedule,
    /// The schedule's faults real mode plays, on the [`Kernel`].
    faults: faults::Player<'a>,
    pauses: &'a [Pause],
    pg_kills: &'a [PgKill],
    /// The safety phase's timeline: (ms, what), in time order.
    timeline: Vec<(u64, Act)>,
    /// The next step of the timeline.
    next: usize,
    state: BTreeMap<String, State>,
    /// Restarts due: (ms, node).
    restarts: BTreeSet<(u64, String)>,
    /// Reference counts of pause windows per node.
    paused: BTreeMap<String, u32>,
    /// When a killed PostgreSQL is due to restart.
    pg_restart_at: Option<u64>,
    /// Kills that are due, in order (one waits while the server is down).
    pg_due: Vec<usize>,
    skipped: Vec<Skipped>,
    /// The network and clock windows open now.
    windows: Windows,
}

/// The network and clock windows open now, as the control file the node
/// processes obey holds them ([`control::Control`]).
#[derive(Default)]
struct Windows {
    open: Vec<OpenWindow>,
    version: u64,
}

impl Windows {
    /// Write the open windows to the run's control file, whole: a
    /// temporary name, then a rename, so a process never reads half of it.
    fn write(&mut self, run_dir: &Path) -> Result<(), String> {
        self.version += 1;
        let c = Control { version: self.version, windows: self.open.clone() };
        let path = control::control_file(run_dir);
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(&c).expect("serializable");
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("cannot write the control file {}: {e}", path.display()))
    }
}

impl<'a> Player<'a> {
    /// `state`: the nodes as started; `skipped`: the schedule's faults that
    /// cannot be played ([`skipped_faults`]).
    pub(super) fn new(
        schedule: &'a Schedule,
        pauses: &'a [Pause],
        pg_kills: &'a [PgKill],
        skipped: Vec<Skipped>,
        state: BTreeMap<String, State>,
    ) -> Player<'a> {
        let mut timeline: Vec<(u64, Act)> = Vec::new();
        for (i, p) in pauses.iter().enumerate() {
            timeline.push((p.at_ms, Act::PauseStart(i)));
            timeline.push(((p.at_ms + p.dur_ms).min(schedule.safety_ms), Act::PauseEnd(i)));
        }
        for (i, k) in pg_kills.iter().enumerate() {
            timeline.push((k.at_ms, Act::PgKill(i)));
        }
        timeline.sort_by_key(|(t, _)| *t);
        Player {
            schedule,
            faults: faults::Player::new(&schedule.events, schedule.safety_ms, |e| {
                !matches!(e.fault().real(), Real::Skips(_))
            }),
            pauses,
            pg_kills,
            timeline,
            next: 0,
            state,
            restarts: BTreeSet::new(),
            paused: BTreeMap::new(),
            pg_restart_at: None,
            pg_due: Vec::new(),
            skipped,
            windows: Windows::default(),
        }
    }

    /// The safety phase: play the timeline until `safety_ms`. Returns
    /// whether the run was interrupted (Ctrl-C, SIGTERM).
    pub(super) fn safety_phase(&mut self, st: &mut Stage) -> Result<bool, String> {
        loop {
            if crate::interrupt::requested() {
                return Ok(true);
            }
            self.on_exits(st, true)?;
            st.g.poll();
            let now_ms = st.clock.ms();
            self.restart_due(st, now_ms, self.schedule.safety_ms)?;
            self.pg_kill_due(st)?;
            self.play_faults(st, now_ms)?;
            while self.next < self.timeline.len() && self.timeline[self.next].0 <= now_ms {
                let (_, act) = self.timeline[self.next];
                self.next += 1;
                self.play(st, act);
            }
            if now_ms >= self.schedule.safety_ms && self.next >= self.timeline.len() {
                return Ok(false);
            }
            std::thread::sleep(TICK);
        }
    }

    /// Heal: resume every paused node, restart every node that is down and
    /// PostgreSQL if it is due. Returns (healed at µs, liveness deadline µs).
    pub(super) fn heal(&mut self, st: &mut Stage) -> Result<(u64, u64), String> {
        let mut kernel =
            Kernel { st, state: &mut self.state, paused: &mut self.paused, windows: &mut self.windows, error: None };
        self.faults.heal(&mut kernel);
        kernel.result()?;
        let Stage { procs, pg, g, clock } = st;
        for (node, _) in std::mem::take(&mut self.paused) {
            procs.signal(&node, libc::SIGCONT);
            self.state.insert(node.clone(), State::Up);
            g.played(clock.ms(), "resume", &node, "SIGCONT (heal)".into());
        }
        for (_, node) in std::mem::take(&mut self.restarts) {
            if self.state.get(&node) == Some(&State::Down) {
                procs.spawn(&node)?;
                self.state.insert(node.clone(), State::Up);
                g.sim(clock.us(), &node, SimEvent::NodeRestarted { node: node.clone() });
                g.played(clock.ms(), "restart", &node, "heal".into());
            }
        }
        if let Some(server) = pg.as_mut() {
            if self.pg_restart_at.is_some() {
                self.pg_restart_at = Some(0);
                pg_step(server, &mut self.pg_restart_at, g, clock, true)?;
            }
        }
        let healed_at_us = clock.us();
        g.sim(healed_at_us, "sim", SimEvent::Healed);
        Ok((healed_at_us, healed_at_us.saturating_add(self.schedule.liveness_ms.saturating_mul(1000))))
    }

    /// The liveness phase: nothing is played, nodes that exit are restarted;
    /// wait for the job to finish (or `deadline_us`), then a grace period.
    /// Returns whether the run was interrupted.
    pub(super) fn liveness_phase(&mut self, st: &mut Stage, deadline_us: u64) -> Result<bool, String> {
        let mut grace_until: Option<u64> = None;
        loop {
            if crate::interrupt::requested() {
                return Ok(true);
            }
            self.on_exits(st, false)?;
            st.g.poll();
            let now_ms = st.clock.ms();
            self.restart_due(st, now_ms, u64::MAX)?;
            if let Some(server) = st.pg.as_mut() {
                pg_step(server, &mut self.pg_restart_at, &mut st.g, &st.clock, false)?;
            }
            let now_us = st.clock.us();
            if grace_until.is_none() && (st.g.finished_at_us.is_some() || now_us >= deadline_us) {
                grace_until = Some(now_us + GRACE_MS * 1000);
            }
            if grace_until.is_some_and(|t| now_us >= t) {
                return Ok(false);
            }
            std::thread::sleep(TICK);
        }
    }

    /// Everything not played: the schedule's faults real mode cannot play,
    /// those aimed at a node that was down, and the PostgreSQL kills still
    /// waiting for the server when the safety phase ended.
    pub(super) fn skipped(self) -> Vec<Skipped> {
        let pg_not_played = self.pg_due.iter().map(|i| Skipped {
            kind: "pg_kill".into(),
            event: serde_json::to_string(&self.pg_kills[*i]).expect("serializable"),
            reason: "PostgreSQL was still down or restarting from the previous kill until the safety phase ended"
                .into(),
        });
        let pg_not_played: Vec<Skipped> = pg_not_played.collect();
        self.skipped.into_iter().chain(pg_not_played).collect()
    }

    /// Handle what the processes did on their own. An armed predicate that
    /// fired (the process already crashed, paused or stopped itself at the
    /// very instant) is played by the play loop like any fault, on the
    /// [`Kernel`] (in the liveness phase, too late to be a fault: a paused
    /// process is let go on, a crashed one restarted as below). A process
    /// that exited otherwise (a fatal error, a panic, an exit) is restarted
    /// after `SELF_EXIT_DOWN_MS`; the reader at once.
    fn on_exits(&mut self, st: &mut Stage, safety: bool) -> Result<(), String> {
        let gone = st.procs.reap();
        st.g.poll();
        for f in std::mem::take(&mut st.g.fired) {
            if safety {
                let now_ms = st.clock.ms();
                let fired = faults::Fired { node: f.node, cause: f.cause, index: Some(f.index) };
                let mut kernel = Kernel {
                    st,
                    state: &mut self.state,
                    paused: &mut self.paused,
                    windows: &mut self.windows,
                    error: None,
                };
                self.faults.fire(&fired, now_ms, &mut kernel);
                kernel.result()?;
            } else if f.action == TriggerAction::Pause {
                st.procs.signal(&f.node, libc::SIGCONT);
            }
        }
        for (role, status) in gone {
            if role == "reader" {
                let _ = st.procs.spawn("reader");
                continue;
            }
            if self.state.get(&role) == Some(&State::Down) {
                continue; // its crash or stop is played already
            }
            let now = st.clock.us();
            let (t_us, cause, _) = st.g.last_words.remove(&role).unwrap_or((now, format!("exited: {status}"), None));
            st.g.sim(
                t_us,
                &role,
                SimEvent::NodeCrashed { node: role.clone(), cause: cause.clone(), lost_bytes: 0, torn_files: 0 },
            );
            st.g.played(t_us / 1000, "exit", &role, cause);
            self.state.insert(role.clone(), State::Down);
            self.restarts.insert((now / 1000 + SELF_EXIT_DOWN_MS, role));
        }
        Ok(())
    }

    /// Restart the nodes due by `now_ms` (none from `until_ms` on).
    fn restart_due(&mut self, st: &mut Stage, now_ms: u64, until_ms: u64) -> Result<(), String> {
        while let Some((t, node)) = self.restarts.first().cloned() {
            if t > now_ms || now_ms >= until_ms {
                break;
            }
            self.restarts.remove(&(t, node.clone()));
            st.procs.spawn(&node)?;
            self.state.insert(node.clone(), State::Up);
            self.paused.remove(&node);
            st.g.sim(st.clock.us(), &node, SimEvent::NodeRestarted { node: node.clone() });
            st.g.played(now_ms, "restart", &node, String::new());
        }
        Ok(())
    }

    /// Restart a killed PostgreSQL when due; play the next kill that is due
    /// once the server accepts (within the safety phase).
    fn pg_kill_due(&mut self, st: &mut Stage) -> Result<(), String> {
        let Stage { pg, g, clock, .. } = st;
        let Some(server) = pg.as_mut() else { return Ok(()) };
        pg_step(server, &mut self.pg_restart_at, g, clock, false)?;
        if !self.pg_due.is_empty()
            && server.up
            && server.starting.is_none()
            && self.pg_restart_at.is_none()
            && clock.ms() < self.schedule.safety_ms
        {
            let k = &self.pg_kills[self.pg_due.remove(0)];
            self.pg_restart_at = Some(pg_kill(server, k, g, clock)?);
        }
        Ok(())
    }

    /// Play one step of the timeline.
    fn play(&mut self, st: &mut Stage, act: Act) {
        match act {
            // Down or restarting: played once it accepts again.
            Act::PgKill(i) => self.pg_due.push(i),
            Act::PauseStart(i) => self.pause(st, i),
            Act::PauseEnd(i) => self.resume(st, i),
        }
    }

    /// Play the schedule's faults due by `now_ms` on the [`Kernel`]; a
    /// fault whose node was down is not played (listed as skipped, as in
    /// simulation nothing is played on a down node).
    fn play_faults(&mut self, st: &mut Stage, now_ms: u64) -> Result<(), String> {
        let mut kernel =
            Kernel { st, state: &mut self.state, paused: &mut self.paused, windows: &mut self.windows, error: None };
        self.faults.advance(now_ms, &mut kernel);
        kernel.result()?;
        for i in std::mem::take(&mut self.faults.unplayed) {
            let e = &self.schedule.events[i];
            let event = e.describe();
            self.skipped.retain(|k| k.event != event);
            self.skipped.push(Skipped { kind: e.kind().into(), event, reason: DOWN_REASON.into() });
        }
        Ok(())
    }

    /// A pause window opens: `SIGSTOP` (windows on one node overlap).
    fn pause(&mut self, st: &mut Stage, i: usize) {
        let p = &self.pauses[i];
        if self.state.get(&p.node) == Some(&State::Down) {
            let event = serde_json::to_string(p).expect("serializable");
            self.skipped.push(Skipped { kind: "pause".into(), event, reason: DOWN_REASON.into() });
            return;
        }
        let c = self.paused.entry(p.node.clone()).or_insert(0);
        *c += 1;
        if *c == 1 {
            st.procs.signal(&p.node, libc::SIGSTOP);
            self.state.insert(p.node.clone(), State::Paused);
        }
        let t = st.clock.us();
        let detail = serde_json::to_string(p).expect("serializable");
        st.g.sim(t, "sim", SimEvent::FaultStarted { kind: "pause".into(), detail: detail.clone() });
        st.g.played(t / 1000, "pause", &p.node, format!("SIGSTOP for {} ms", p.dur_ms));
    }

    /// A pause window closes: `SIGCONT` when it was the node's last.
    fn resume(&mut self, st: &mut Stage, i: usize) {
        let p = &self.pauses[i];
        let Some(c) = self.paused.get_mut(&p.node) else { return };
        *c -= 1;
        if *c == 0 {
            self.paused.remove(&p.node);
            st.procs.signal(&p.node, libc::SIGCONT);
            self.state.insert(p.node.clone(), State::Up);
            let t = st.clock.us();
            let detail = serde_json::to_string(p).expect("serializable");
            st.g.sim(t, "sim", SimEvent::FaultEnded { kind: "pause".into(), detail });
            st.g.played(t / 1000, "resume", &p.node, "SIGCONT".into());
        }
    }
}

/// Real mode's [`Target`]: what the kernel lets a supervisor do to its
/// processes. A crash is `kill -9` (the page cache survives: a disk mode
/// that loses writes is listed as not fully played by its kind), a restart
/// spawns the process again, a clean stop is `SIGTERM`, a pause `SIGSTOP`
/// until `SIGCONT`. Network and clock windows (cut, isolate, loss,
/// latency, late delivery, skew) are kept in the run's control file, which
/// every engine process obeys (`exactsim_node::control`: its send hook
/// drops or holds its messages, its observer skews its clocks). Disk
/// windows are not played: their kinds say so ([`faults::Fault::real`]),
/// so the player never asks.
struct Kernel<'k> {
    st: &'k mut Stage,
    state: &'k mut BTreeMap<String, State>,
    paused: &'k mut BTreeMap<String, u32>,
    windows: &'k mut Windows,
    /// The first failure to spawn a process or write the control file.
    error: Option<String>,
}

impl Kernel<'_> {
    /// Write the control file; its failure ends the run (not set up).
    fn write_windows(&mut self) -> bool {
        if let Err(e) = self.windows.write(self.st.procs.run_dir()) {
            self.error.get_or_insert(e);
            return false;
        }
        true
    }
}

impl Kernel<'_> {
    fn result(self) -> Result<(), String> {
        self.error.map_or(Ok(()), Err)
    }

    /// The job submitted again (a redeploy, a rescale): `write` records in
    /// the run directory what the coordinator's next process will be, then
    /// a clean stop of the coordinator (`SIGTERM`). `false`: not played
    /// (the coordinator is not up, or the file could not be written).
    fn resubmit(
        &mut self,
        what: &str,
        shown: &Shown,
        write: impl FnOnce(&std::path::Path) -> Result<(), (std::path::PathBuf, std::io::Error)>,
    ) -> bool {
        if self.state.get("coordinator") != Some(&State::Up) {
            return false;
        }
        let dir = self.st.procs.run_dir().to_path_buf();
        if let Err((file, e)) = write(&dir) {
            self.error = Some(format!("{what}: write {}: {e}", file.display()));
            return false;
        }
        self.stop("coordinator", shown)
    }

    /// Signal a node: its process, or every process of the sink's system.
    fn signal(&mut self, node: &str, sig: libc::c_int) {
        match (node == PG_NODE, self.st.pg.as_ref()) {
            (true, Some(server)) => server.signal_all(sig),
            _ => self.st.procs.signal(node, sig),
        }
    }

    /// Take the sink's system (the run's PostgreSQL) down with `how` (a
    /// kill, a fast shutdown), if it accepts; recorded as the node's crash
    /// with `cause`. `false`: not up (down, or still restarting).
    fn system(
        &mut self,
        node: &str,
        cause: &str,
        how: impl FnOnce(&mut super::postgres::PgServer) -> Result<String, String>,
    ) -> bool {
        let Some(server) = self.st.pg.as_mut().filter(|s| s.accepting()) else { return false };
        let detail = match how(server) {
            Ok(d) => d,
            Err(e) => {
                self.error.get_or_insert(e);
                return false;
            }
        };
        let t = self.st.clock.us();
        self.state.insert(node.to_string(), State::Down);
        self.paused.remove(node);
        let ev = SimEvent::NodeCrashed { node: node.into(), cause: cause.into(), lost_bytes: 0, torn_files: 0 };
        self.st.g.sim(t, node, ev);
        let kind = if cause == "clean stop" { "stop" } else { "crash" };
        self.st.g.played(t / 1000, kind, node, detail);
        true
    }
}

impl Target for Kernel<'_> {
    fn crash(&mut self, node: &str, cause: &str, _disk: CrashMode, _claimed: bool) -> bool {
        if self.state.get(node) == Some(&State::Down) {
            return false;
        }
        if node == PG_NODE {
            return self.system(node, cause, |server| {
                server.kill().map(|n| format!("kill -9 of the postmaster and {} backends ({cause})", n - 1))
            });
        }
        self.st.procs.kill(node);
        let t = self.st.clock.us();
        self.state.insert(node.to_string(), State::Down);
        self.paused.remove(node);
        let ev = SimEvent::NodeCrashed { node: node.into(), cause: cause.into(), lost_bytes: 0, torn_files: 0 };
        self.st.g.sim(t, node, ev);
        self.st.g.played(t / 1000, "crash", node, format!("kill -9 ({cause})"));
        true
    }

    fn restart(&mut self, node: &str) {
        if self.state.get(node) != Some(&State::Down) || self.error.is_some() {
            return;
        }
        if node == PG_NODE {
            // Up once `ci/postgres.sh start` returns (`pg_up`, polled by
            // the player); a fault due meanwhile finds it not accepting.
            let now_ms = self.st.clock.ms();
            if let Some(Err(e)) = self.st.pg.as_mut().map(|s| s.begin_restart(now_ms)) {
                self.error = Some(e);
                return;
            }
            self.state.insert(node.to_string(), State::Up);
            self.st.g.played(now_ms, "restart", node, "ci/postgres.sh start".into());
            return;
        }
        if let Err(e) = self.st.procs.spawn(node) {
            self.error = Some(e);
            return;
        }
        self.state.insert(node.to_string(), State::Up);
        self.paused.remove(node);
        let t = self.st.clock.us();
        self.st.g.sim(t, node, SimEvent::NodeRestarted { node: node.to_string() });
        self.st.g.played(t / 1000, "restart", node, String::new());
    }

    /// A clean stop: `SIGTERM` ([`super::supervisor::Procs::terminate`]).
    fn stop(&mut self, node: &str, shown: &Shown) -> bool {
        if self.state.get(node) != Some(&State::Up) {
            return false;
        }
        let t = self.st.clock.us();
        if node == PG_NODE {
            // Started only if the server accepts (else nothing is played).
            if !self.st.pg.as_ref().is_some_and(|s| s.accepting()) {
                return false;
            }
            self.st.g.sim(t, "sim", SimEvent::FaultStarted { kind: shown.kind.into(), detail: shown.detail.into() });
            return self.system(node, "clean stop", |server| {
                server.shutdown().map(|()| "fast shutdown (SIGINT to the postmaster)".to_string())
            });
        }
        self.st.g.sim(t, "sim", SimEvent::FaultStarted { kind: shown.kind.into(), detail: shown.detail.into() });
        self.st.procs.terminate(node);
        self.state.insert(node.to_string(), State::Down);
        let ev = SimEvent::NodeCrashed { node: node.into(), cause: "clean stop".into(), lost_bytes: 0, torn_files: 0 };
        self.st.g.sim(t, node, ev);
        self.st.g.played(t / 1000, "stop", node, "SIGTERM (clean stop)".into());
        true
    }

    /// The schedule's pause: `SIGSTOP` of a running node (one already
    /// paused, or down, is left alone, as in simulation).
    fn pause(&mut self, node: &str, shown: &Shown) -> bool {
        if self.state.get(node) != Some(&State::Up) {
            return false;
        }
        if node == PG_NODE && !self.st.pg.as_ref().is_some_and(|s| s.accepting()) {
            return false;
        }
        *self.paused.entry(node.to_string()).or_insert(0) += 1;
        self.signal(node, libc::SIGSTOP);
        self.state.insert(node.to_string(), State::Paused);
        let t = self.st.clock.us();
        self.st.g.sim(t, "sim", SimEvent::FaultStarted { kind: shown.kind.into(), detail: shown.detail.into() });
        self.st.g.played(t / 1000, "pause", node, "SIGSTOP (scheduled pause)".into());
        true
    }

    /// `SIGCONT` when the node's last pause window ends.
    fn resume(&mut self, node: &str, shown: &Shown) {
        let Some(c) = self.paused.get_mut(node) else { return };
        *c -= 1;
        if *c > 0 {
            return;
        }
        self.paused.remove(node);
        self.signal(node, libc::SIGCONT);
        self.state.insert(node.to_string(), State::Up);
        let t = self.st.clock.us();
        self.st.g.sim(t, "sim", SimEvent::FaultEnded { kind: shown.kind.into(), detail: shown.detail.into() });
        self.st.g.played(t / 1000, "resume", node, "SIGCONT".into());
    }

    /// A network or clock window opens: into the control file. Recorded
    /// as started, but a late delivery, which lands (as in simulation)
    /// with each message a process holds back (`LogLine::Held`).
    fn open(&mut self, index: usize, w: &Window, shown: &Shown) -> bool {
        let Some(window) = NetWindow::of(w) else { return false };
        let (label, late) = (window.label(), matches!(window, NetWindow::Late { .. }));
        self.windows.open.push(OpenWindow { index, kind: shown.kind.into(), window });
        // Stamped before the processes can see it.
        let t = self.st.clock.us();
        if !self.write_windows() {
            return false;
        }
        if !late {
            self.st.g.sim(t, "sim", SimEvent::FaultStarted { kind: shown.kind.into(), detail: shown.detail.into() });
        }
        self.st.g.played(t / 1000, shown.kind, &label, format!("window opened (event {index})"));
        true
    }

    /// A window closes: out of the control file.
    fn close(&mut self, index: usize, w: &Window, shown: &Shown) {
        let Some(window) = NetWindow::of(w) else { return };
        let before = self.windows.open.len();
        self.windows.open.retain(|o| o.index != index);
        let t = self.st.clock.us();
        if self.windows.open.len() == before || !self.write_windows() {
            return;
        }
        self.st.g.sim(t, "sim", SimEvent::FaultEnded { kind: shown.kind.into(), detail: shown.detail.into() });
        self.st.g.played(t / 1000, shown.kind, &window.label(), format!("window closed (event {index})"));
    }

    /// The job submitted again: the redeploys file counts one more (the
    /// coordinator's next process starts as the next run), then a clean
    /// stop of the coordinator (`SIGTERM`).
    fn redeploy(&mut self, shown: &Shown) -> bool {
        self.resubmit("redeploy", shown, |dir| {
            control::set_redeploys(dir, control::redeploys(dir) + 1).map_err(|e| (control::redeploys_file(dir), e))
        })
    }

    /// The job rescaled: the parallelism file names the new parallelism
    /// (the coordinator's next process deploys the job with it), then a
    /// clean stop of the coordinator (`SIGTERM`).
    fn rescale(&mut self, parallelism: u32, shown: &Shown) -> bool {
        self.resubmit("rescale", shown, |dir| {
            control::set_parallelism(dir, parallelism).map_err(|e| (control::parallelism_file(dir), e))
        })
    }

    fn note(&mut self, _: &Shown) {}

    /// Close every window: an empty control file.
    fn heal(&mut self) {
        if self.windows.open.is_empty() {
            return;
        }
        self.windows.open.clear();
        let t = self.st.clock.us();
        if self.write_windows() {
            self.st.g.played(t / 1000, "heal", "network", "every window closed".into());
        }
    }
}
