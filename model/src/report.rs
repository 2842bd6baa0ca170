//! The report of one run (what `run --json` prints and campaigns save as
//! `report.json`) and the derived statistics: checkpoints, recoveries,
//! transactions, coverage cells.

use crate::checks::{OutputCounts, Violation};
use crate::history::{Ev, History, SimEvent};
use crate::run::RunResult;
use exactsim_engine::observe::Event;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What a real run's reproduce command says of itself.
pub const REAL_NOTE: &str = "real runs are not reproducible bit for bit; the same schedule is played again";
/// A real run's trace hash: there is none to compare (see
/// [`RunReport::is_real`]).
pub const REAL_TRACE_HASH: &str = "none(real-run)";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViolationReport {
    /// The check's id ("P1" ..= "P14", "panic": see `checks::CHECKS`; or a
    /// scenario's own, `inventory/no-oversell`).
    pub check: String,
    /// The check's short name (`exactly-once-output`).
    #[serde(default)]
    pub name: String,
    pub message: String,
    pub t_ms: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckpointStats {
    pub triggered: u64,
    pub completed: u64,
    pub failed: u64,
    pub duration_ms_avg: f64,
    pub duration_ms_max: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TxnStats {
    pub committed: u64,
    pub aborted: u64,
    pub commit_failed: u64,
}

/// The outcome of a run or a campaign. Serialized as `"pass"`, `"fail"`,
/// `"interrupted"`, the words the reports and the one-line summaries show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every check held.
    Pass,
    /// At least one check failed (or, for a campaign, at least one run did).
    Fail,
    /// Stopped by a signal before it could be judged (real mode, campaigns).
    Interrupted,
}

impl Verdict {
    /// `Pass` when nothing failed, `Fail` otherwise.
    pub fn of(failed: bool) -> Verdict {
        if failed {
            Verdict::Fail
        } else {
            Verdict::Pass
        }
    }

    pub fn is_pass(self) -> bool {
        self == Verdict::Pass
    }

    /// The exit code that goes with it: 0 pass, 1 fail, 130 interrupted
    /// (128 + SIGINT, as shells report it; the CLI's `EXIT_INTERRUPTED`).
    pub const fn exit_code(self) -> u8 {
        match self {
            Verdict::Pass => 0,
            Verdict::Fail => 1,
            Verdict::Interrupted => 130,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Interrupted => "interrupted",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub scenario: String,
    pub seed: u64,
    pub profile: String,
    pub mode: String,
    pub mutant: Option<String>,
    pub verdict: Verdict,
    pub violations: Vec<ViolationReport>,
    /// The ids of the checks that judged this run: the engine's for its
    /// mode, then its scenario's own.
    #[serde(default)]
    pub checks: Vec<String>,
    pub trace_hash: String,
    pub faults: BTreeMap<String, u64>,
    /// The faults that started while the job ran, by kind
    /// ([`History::effective_faults`]): what this run tested.
    #[serde(default)]
    pub effective_faults: BTreeMap<String, u64>,
    /// Faults that landed after the job had finished (they test nothing).
    #[serde(default)]
    pub late_faults: u64,
    pub output: OutputCounts,
    pub checkpoints: CheckpointStats,
    pub recoveries: u64,
    pub recovery_time_ms_avg: f64,
    pub recovery_time_ms_max: f64,
    pub transactions: TxnStats,
    pub state_size_bytes_max: u64,
    /// The run's metrics every [`METRICS_STEP_MS`] of simulated time
    /// (`crate::metrics`): what an operator's dashboard would have shown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<crate::metrics::Sample>,
    pub retries: u64,
    pub sim_time_ms: u64,
    pub wall_ms: u64,
    /// Wall time of the simulation alone (engine + simulator), without the
    /// oracles and the report; in microseconds.
    #[serde(default)]
    pub sim_wall_us: u64,
    pub events: u64,
    pub net_messages: u64,
    /// Fault kind x protocol phase cells hit.
    pub coverage: Vec<String>,
    /// Fault points reached, with counts.
    pub fault_points: BTreeMap<String, u64>,
    /// Reachability points reached (`observe::Reach`), with counts.
    #[serde(default)]
    pub reached: BTreeMap<String, u64>,
    pub parallelism: u32,
    pub checkpoint_interval_ms: u64,
    pub job_finished_ms: Option<f64>,
    /// When the last source read its last input record (for the last time,
    /// after any recovery): the processing rate without the final commit.
    #[serde(default)]
    pub input_read_ms: Option<f64>,
    pub repro: String,
    pub code_version: String,
    /// The run panicked (check `panic`): message, source site and whether
    /// it fired in engine, scenario or harness code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panic: Option<crate::panics::PanicReport>,
}

/// The protocol phase at time `t`: what the job was doing when a fault hit.
fn phase_at(events: &[crate::history::Stamped], idx: usize) -> &'static str {
    let mut recovering = false;
    let mut pending = false;
    let mut committing = false;
    for s in &events[..idx] {
        match &s.ev {
            Ev::Engine(Event::RecoveryStarted { .. }) => {
                recovering = true;
                pending = false;
            }
            Ev::Engine(Event::JobRunning { .. }) => recovering = false,
            Ev::Engine(Event::CheckpointTriggered { .. }) => pending = true,
            Ev::Engine(Event::CheckpointCompleted { .. }) => {
                pending = false;
                committing = true;
            }
            Ev::Engine(Event::CheckpointFailed { .. }) => pending = false,
            Ev::Engine(Event::NotifyHandled { .. }) => committing = false,
            Ev::Engine(Event::JobFinished { .. }) => return "finished",
            _ => {}
        }
    }
    if recovering {
        "recovery"
    } else if committing {
        "commit"
    } else if pending {
        "checkpoint"
    } else {
        "processing"
    }
}

pub struct ReportCtx<'a> {
    /// The run's scenario: its own checks are listed with the engine's.
    pub scenario: &'a dyn crate::scenario::Scenario,
    pub profile: &'a str,
    pub violations: &'a [Violation],
    pub output: OutputCounts,
    /// The run's fault tallies by kind (read from its history, plus what
    /// the simulated disks counted).
    pub faults: BTreeMap<String, u64>,
    pub wall_ms: u64,
    pub sim_wall_us: u64,
    pub repro: String,
    pub code_version: &'a str,
    pub panic: Option<crate::panics::PanicReport>,
}

/// How often a run report samples the run's metrics (simulated time).
pub const METRICS_STEP_MS: u64 = 100;

pub fn build(r: &RunResult, ctx: ReportCtx) -> RunReport {
    let h = &r.history;
    let mut trig: BTreeMap<u64, u64> = BTreeMap::new();
    let mut cp = CheckpointStats::default();
    let mut durations = Vec::new();
    let mut rec_start: BTreeMap<u64, u64> = BTreeMap::new();
    let mut rec_times = Vec::new();
    let mut recoveries = 0;
    let mut tx = TxnStats::default();
    let mut state_max = 0;
    let mut cells = BTreeSet::new();
    // What counts as a retry is the metrics fold's rule (one home): the
    // report's figure is the fold's at the end of the run.
    let mut metrics = crate::metrics::Metrics::default();
    for (i, s) in h.events.iter().enumerate() {
        if let Ev::Engine(e) = &s.ev {
            metrics.observe(s.t_us, e);
        }
        match &s.ev {
            Ev::Engine(Event::CheckpointTriggered { ckpt, .. }) => {
                cp.triggered += 1;
                trig.insert(*ckpt, s.t_us);
            }
            Ev::Engine(Event::CheckpointCompleted { ckpt, .. }) => {
                cp.completed += 1;
                if let Some(t0) = trig.get(ckpt) {
                    durations.push((s.t_us - t0) as f64 / 1000.0);
                }
            }
            Ev::Engine(Event::CheckpointFailed { .. }) => cp.failed += 1,
            Ev::Engine(Event::RecoveryStarted { attempt, .. }) => {
                if *attempt > 1 {
                    recoveries += 1;
                }
                rec_start.insert(*attempt, s.t_us);
            }
            Ev::Engine(Event::JobRunning { attempt }) if *attempt > 1 => {
                if let Some(t0) = rec_start.get(attempt) {
                    rec_times.push((s.t_us - t0) as f64 / 1000.0);
                }
            }
            Ev::Engine(Event::TxnCommitted { .. }) => tx.committed += 1,
            Ev::Engine(Event::TxnAborted { .. }) => tx.aborted += 1,
            Ev::Engine(Event::CommitFailed { .. }) => tx.commit_failed += 1,
            Ev::Engine(Event::SnapshotStored { bytes, .. }) => state_max = state_max.max(*bytes),
            Ev::Sim(SimEvent::FaultStarted { kind, .. }) => {
                cells.insert(format!("{kind}@{}", phase_at(&h.events, i)));
            }
            // A clean stop (or a redeploy's) is counted by its own `FaultStarted`.
            Ev::Sim(SimEvent::NodeCrashed { cause, .. }) if crate::history::stopped_by_a_fault(cause) => {}
            Ev::Sim(SimEvent::NodeCrashed { cause, node, .. }) => {
                let kind = if cause.starts_with("fault point") {
                    format!("crash:{}", cause.trim_start_matches("fault point "))
                } else if cause.starts_with("fatal") {
                    "fatal".to_string()
                } else {
                    format!("crash:{}", node.trim_end_matches(|c: char| c.is_ascii_digit()).trim_end_matches('-'))
                };
                cells.insert(format!("{kind}@{}", phase_at(&h.events, i)));
            }
            _ => {}
        }
    }
    let avg = |v: &[f64]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    cp.duration_ms_avg = avg(&durations);
    cp.duration_ms_max = max(&durations);
    let mut fault_points = BTreeMap::new();
    for ((node, p), c) in &r.coverage {
        let kind = node.trim_end_matches(|c: char| c.is_ascii_digit()).trim_end_matches('-');
        *fault_points.entry(format!("{}:{kind}", p.name())).or_insert(0) += c;
    }
    RunReport {
        scenario: h.scenario.clone(),
        seed: h.seed,
        profile: ctx.profile.to_string(),
        mode: h.mode.name().to_string(),
        mutant: r.config.mutant.map(|m| m.name().to_string()),
        verdict: Verdict::of(!ctx.violations.is_empty()),
        violations: ctx
            .violations
            .iter()
            .map(|v| ViolationReport {
                check: v.check.to_string(),
                name: crate::checks::name_in(ctx.scenario, v.check).to_string(),
                message: v.message.clone(),
                t_ms: v.t_us.map(|t| t as f64 / 1000.0),
            })
            .collect(),
        checks: crate::checks::ids_for(ctx.scenario, h.mode).into_iter().map(String::from).collect(),
        trace_hash: format!("{:016x}", r.trace_hash),
        faults: ctx.faults,
        effective_faults: h.effective_faults(),
        late_faults: h.late_faults(),
        output: ctx.output,
        checkpoints: cp,
        recoveries,
        recovery_time_ms_avg: avg(&rec_times),
        recovery_time_ms_max: max(&rec_times),
        transactions: tx,
        state_size_bytes_max: state_max,
        metrics: crate::metrics::series(
            &h.events,
            h.input.iter().map(|p| p.len() as u64).sum(),
            METRICS_STEP_MS,
            r.sim_time_ms,
        ),
        retries: metrics.retries,
        sim_time_ms: r.sim_time_ms,
        wall_ms: ctx.wall_ms,
        sim_wall_us: ctx.sim_wall_us,
        events: h.events.len() as u64,
        net_messages: r.net_messages,
        coverage: cells.into_iter().collect(),
        fault_points,
        reached: h.reach_counts().into_iter().map(|(p, c)| (p.name().to_string(), c)).collect(),
        parallelism: r.config.parallelism,
        checkpoint_interval_ms: r.config.checkpoint_interval_ms,
        job_finished_ms: h.finished_at_us.map(|t| t as f64 / 1000.0),
        input_read_ms: input_read_us(h).map(|t| t as f64 / 1000.0),
        repro: ctx.repro,
        code_version: ctx.code_version.to_string(),
        panic: ctx.panic,
    }
}

/// When every source had read its whole partition, in the attempt that
/// finished reading last.
fn input_read_us(h: &History) -> Option<u64> {
    let mut last: BTreeMap<u32, u64> = BTreeMap::new();
    for s in &h.events {
        if let Ev::Engine(Event::SourceEnded { source, .. }) = &s.ev {
            last.insert(*source, s.t_us);
        }
    }
    (last.len() == h.input.len()).then(|| last.values().copied().max()).flatten()
}

impl ViolationReport {
    /// `P1 exactly-once-output` (the id alone for an unknown check, for
    /// `panic`, whose name is its id, and for a scenario's own check, whose
    /// id `inventory/no-oversell` already ends with its name).
    pub fn label(&self) -> String {
        let named_by_id = self.check.strip_suffix(self.name.as_str()).is_some_and(|rest| rest.ends_with('/'));
        if self.name.is_empty() || self.name == self.check || named_by_id {
            self.check.clone()
        } else {
            format!("{} {}", self.check, self.name)
        }
    }
}

/// Check ids as the run line lists them: each stretch of three or more
/// consecutive table ids as a range (`P1-P11`), the rest one by one, in
/// order: `P1-P11,P13-P15,copier/order-per-partition`, `P4,P11,P12,P15`.
pub fn compact_ids<S: AsRef<str>>(ids: &[S]) -> String {
    let num = |id: &str| id.strip_prefix('P').and_then(|n| n.parse::<u32>().ok());
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let first = ids[i].as_ref();
        let mut j = i + 1;
        if let Some(n) = num(first) {
            while j < ids.len() && num(ids[j].as_ref()) == Some(n + (j - i) as u32) {
                j += 1;
            }
        }
        if j - i >= 3 {
            parts.push(format!("{first}-{}", ids[j - 1].as_ref()));
        } else {
            parts.extend(ids[i..j].iter().map(|s| s.as_ref().to_string()));
        }
        i = j;
    }
    parts.join(",")
}

impl RunReport {
    /// A run of real processes (`exactsim real`), not a simulated one.
    pub fn is_real(&self) -> bool {
        self.trace_hash == REAL_TRACE_HASH
    }

    /// The command that plays this run again, without its note.
    pub fn repro_command(&self) -> &str {
        let note = format!(" ({REAL_NOTE})");
        self.repro.strip_suffix(note.as_str()).unwrap_or(&self.repro)
    }

    /// The fault kinds that landed, with counts: `crash:2,latency:1`, or
    /// `none`.
    pub fn faults_landed(&self) -> String {
        let f: Vec<String> = self.faults.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k}:{n}")).collect();
        if f.is_empty() {
            "none".into()
        } else {
            f.join(",")
        }
    }

    /// The checks that ran, as ids ([`compact_ids`]): `P1-P11,P13-P15`, then
    /// the scenario's own (`,inventory/no-oversell`).
    pub fn checks_ran(&self) -> String {
        compact_ids(&self.checks)
    }

    /// The one-line summary `run` prints.
    pub fn summary_line(&self) -> String {
        let mut s = format!(
            "scenario={} seed={} profile={} mode={}{} verdict={} trace_hash={} events={} sim_ms={} checkpoints={} recoveries={} faults={} effective_faults={} checks={} committed={} expected={} duplicates={} lost={}",
            self.scenario,
            self.seed,
            self.profile,
            self.mode,
            self.mutant.as_ref().map(|m| format!(" mutant={m}")).unwrap_or_default(),
            self.verdict,
            self.trace_hash,
            self.events,
            self.sim_time_ms,
            self.checkpoints.completed,
            self.recoveries,
            self.faults_landed(),
            self.effective_faults.values().sum::<u64>(),
            self.checks_ran(),
            self.output.committed,
            self.output.expected,
            self.output.duplicates,
            self.output.lost,
        );
        if let Some(v) = self.violations.first() {
            s.push_str(&format!(" first_violation={}", v.label().replace(' ', ":")));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_lists_are_compact_and_keep_every_id() {
        let eo = ["P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "P10", "P11", "P13"];
        assert_eq!(compact_ids(&eo), "P1-P11,P13");
        let own = [&eo[..], &["copier/order-per-partition"]].concat();
        assert_eq!(compact_ids(&own), "P1-P11,P13,copier/order-per-partition");
        assert_eq!(compact_ids(&["P4", "P11", "P12", "inventory/no-oversell"]), "P4,P11,P12,inventory/no-oversell");
        assert_eq!(compact_ids(&["P1", "P2", "P3"]), "P1-P3");
        assert_eq!(compact_ids::<&str>(&[]), "");
    }

    #[test]
    fn a_scenario_check_is_labelled_by_its_id() {
        let v = |check: &str, name: &str| ViolationReport {
            check: check.into(),
            name: name.into(),
            message: String::new(),
            t_ms: None,
        };
        assert_eq!(v("P1", "exactly-once-output").label(), "P1 exactly-once-output");
        assert_eq!(v("panic", "panic").label(), "panic");
        assert_eq!(v("inventory/no-oversell", "no-oversell").label(), "inventory/no-oversell");
        assert_eq!(v("inventory/no-oversell", "").label(), "inventory/no-oversell");
        assert_eq!(v("x/other", "oversell").label(), "x/other oversell");
    }
}
