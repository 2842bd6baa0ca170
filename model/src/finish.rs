//! Where every run ends: a simulated run, a simulated run salvaged after a
//! panic, a real run. [`finish`] takes what the run recorded (its
//! [`RunResult`]: the history, and what the world or the supervisor knows
//! beside it) and makes its outcome: the fault tallies read from the
//! history, the checks (unless a real run was interrupted), a panic in the
//! run or in a check turned into the run's one finding, the command that
//! reproduces the run, and the report.

use crate::checks::{check_all, CheckInput, OutputCounts, Violation, PANIC_CHECK};
use crate::panics::PanicReport;
use crate::report::{build, ReportCtx, RunReport, Verdict, REAL_NOTE, REAL_TRACE_HASH};
use crate::run::RunResult;
use crate::scenario::Scenario;
use exactsim_engine::config::Mutant;
use std::collections::BTreeMap;

/// How a simulated run is run again (deterministic: the same run).
pub const SIM_COMMAND: &str = "cargo run --release -- run";
/// How a real run is played again.
pub const REAL_COMMAND: &str = "cargo run --release -- real";

/// A finished run: its report, what it recorded, and the findings.
pub struct Outcome {
    pub report: RunReport,
    pub result: RunResult,
    pub violations: Vec<Violation>,
}

/// Which kind of run ends.
pub enum Kind {
    /// Simulated (ended normally or salvaged after a panic).
    Simulated,
    /// Real OS processes: `options` are its own in the reproduce command
    /// (`--pauses 2`, ...); `interrupted`: stopped by a signal before the
    /// end, so not judged (verdict `interrupted`).
    Real { options: Vec<String>, interrupted: bool },
}

/// What [`finish`] needs besides the run's record.
pub struct Finish<'a> {
    pub scenario: &'a dyn Scenario,
    /// The profile as given (a name or a file).
    pub profile: &'a str,
    pub mutant: Option<Mutant>,
    pub code_version: &'a str,
    /// Wall time of the run itself, without the checks and the report (µs).
    pub sim_wall_us: u64,
    /// The harness's clock: µs since the run began (read after the checks).
    pub wall_us: &'a dyn Fn() -> u64,
    pub kind: Kind,
}

/// The command that runs a run again: `command` (e.g. [`SIM_COMMAND`]),
/// the run's scenario, seed, profile, mode and planted bug, then `options`.
pub fn repro_command(
    command: &str,
    scenario: &str,
    seed: u64,
    profile: &str,
    mode: &str,
    mutant: Option<&str>,
    options: &[String],
) -> String {
    let mut s = format!("{command} --scenario {scenario} --seed {seed} --profile {profile} --mode {mode}");
    if let Some(m) = mutant {
        s.push_str(&format!(" --mutant {m}"));
    }
    for o in options {
        s.push(' ');
        s.push_str(o);
    }
    s
}

/// The one end of every run: tallies, checks, findings, reproduce command,
/// report.
pub fn finish(result: RunResult, how: Finish<'_>) -> Outcome {
    let (real, interrupted) = match &how.kind {
        Kind::Simulated => (false, false),
        Kind::Real { interrupted, .. } => (true, *interrupted),
    };
    let mut panic = result.panic.clone();
    let (mut violations, output) =
        if interrupted { (Vec::new(), OutputCounts::default()) } else { judge(&result, how.scenario, &mut panic) };
    let seed = result.history.seed;
    for v in violations.iter_mut() {
        v.message = if real {
            format!("(seed = {seed}, real run) {}", v.message)
        } else {
            format!("(seed = {seed}) {}", v.message)
        };
    }
    let mutant = how.mutant.map(|m| m.name());
    let mode = result.history.mode.name();
    let repro = match &how.kind {
        Kind::Simulated => repro_command(SIM_COMMAND, how.scenario.name(), seed, how.profile, mode, mutant, &[]),
        Kind::Real { options, .. } => {
            let c = repro_command(REAL_COMMAND, how.scenario.name(), seed, how.profile, mode, mutant, options);
            format!("{c} ({REAL_NOTE})")
        }
    };
    let mut report = build(
        &result,
        ReportCtx {
            scenario: how.scenario,
            profile: how.profile,
            violations: &violations,
            output,
            faults: fault_tallies(&result),
            wall_ms: (how.wall_us)() / 1000,
            sim_wall_us: how.sim_wall_us,
            repro,
            code_version: how.code_version,
            panic,
        },
    );
    if real {
        report.trace_hash = REAL_TRACE_HASH.into();
    }
    if interrupted {
        report.verdict = Verdict::Interrupted;
    }
    Outcome { report, result, violations }
}

/// The run's fault tallies: read from its history
/// ([`crate::history::fault_tallies`]), plus what the simulated disks
/// counted.
fn fault_tallies(result: &RunResult) -> BTreeMap<String, u64> {
    let mut t = crate::history::fault_tallies(&result.history.events);
    for (k, n) in &result.disk_effects {
        *t.entry(k.clone()).or_insert(0) += n;
    }
    t
}

/// The findings of a run and its output counts. A panic inside the run, or
/// inside a check (or the scenario's batch reference a check computes), is
/// the run's one finding: the partial history of a panicked run would only
/// make the other checks cry wolf. A check's panic becomes the run's.
fn judge(
    result: &RunResult,
    scenario: &dyn Scenario,
    panic: &mut Option<PanicReport>,
) -> (Vec<Violation>, OutputCounts) {
    if let Some(p) = panic {
        return (vec![panic_violation(result, p)], OutputCounts::default());
    }
    match crate::panics::capture(|| check_all(&CheckInput { history: &result.history, scenario })) {
        Ok(v) => v,
        Err(p) => {
            let v = panic_violation(result, &p);
            *panic = Some(p);
            (vec![v], OutputCounts::default())
        }
    }
}

/// The violation a panic becomes: check `panic`, at the last recorded event.
fn panic_violation(result: &RunResult, p: &PanicReport) -> Violation {
    Violation::new(PANIC_CHECK, result.history.events.last().map(|e| e.t_us), p.describe())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Ev, History, SimEvent, Stamped};
    use crate::panics::PanicOrigin;
    use crate::rng::SimRng;
    use crate::schedule::Schedule;
    use exactsim_engine::config::JobConfig;
    use exactsim_engine::pipeline::Pipeline;
    use exactsim_engine::types::{DeliveryMode, OutRecord, Record};
    use std::sync::Arc;

    /// A scenario that is never run: these runs end without its checks.
    struct Idle;
    impl Scenario for Idle {
        fn name(&self) -> &'static str {
            "idle"
        }
        fn description(&self) -> &'static str {
            "test: never run"
        }
        fn generate(&self, _rng: &mut SimRng, _p: u32) -> Vec<Vec<Record>> {
            unimplemented!("never run")
        }
        fn pipeline(&self) -> Arc<dyn Pipeline> {
            unimplemented!("never run")
        }
        fn reference(&self, _input: &[Vec<Record>], _offsets: &[u64]) -> Vec<OutRecord> {
            unimplemented!("never run")
        }
    }

    /// A run that recorded a scheduled crash losing unsynced writes, whose
    /// disks failed two operations.
    fn result(panic: Option<PanicReport>) -> RunResult {
        let crash = SimEvent::NodeCrashed {
            node: "broker".into(),
            cause: "scheduled crash".into(),
            lost_bytes: 64,
            torn_files: 0,
        };
        let history = History {
            scenario: "idle".into(),
            seed: 7,
            mode: DeliveryMode::ExactlyOnce,
            parallelism: 1,
            output_partitions: 1,
            input: Vec::new(),
            events: vec![Stamped { t_us: 5_000, node: "broker".into(), ev: Ev::Sim(crash) }],
            observations: Vec::new(),
            final_output: Vec::new(),
            final_read_ok: false,
            final_open_txns: Vec::new(),
            healed_at_us: 0,
            deadline_us: 0,
            finished_at_us: None,
            reached: Vec::new(),
        };
        RunResult {
            history,
            trace_hash: 1,
            chain: Vec::new(),
            coverage: BTreeMap::new(),
            schedule: Schedule { safety_ms: 0, liveness_ms: 0, events: Vec::new() },
            config: JobConfig::default(),
            disk_effects: [("io_error".to_string(), 2)].into(),
            sim_time_ms: 5,
            net_messages: 0,
            panic,
        }
    }

    fn how(kind: Kind) -> Finish<'static> {
        Finish {
            scenario: &Idle,
            profile: "crash",
            mutant: Some(Mutant::Canary),
            code_version: "test",
            sim_wall_us: 0,
            wall_us: &|| 0,
            kind,
        }
    }

    #[test]
    fn the_reproduce_command_names_the_run_then_its_own_options() {
        assert_eq!(
            repro_command(SIM_COMMAND, "word_count", 3, "chaos", "exactly-once", None, &[]),
            "cargo run --release -- run --scenario word_count --seed 3 --profile chaos --mode exactly-once"
        );
        let options = ["--pauses 2".to_string(), "--pg-kills 0".to_string()];
        assert_eq!(
            repro_command(REAL_COMMAND, "pg_ledger", 1, "crash", "exactly-once", Some("canary"), &options),
            "cargo run --release -- real --scenario pg_ledger --seed 1 --profile crash --mode exactly-once --mutant canary \
             --pauses 2 --pg-kills 0"
        );
    }

    /// A panicked run's one finding is the panic, and its tallies are read
    /// from the history like any run's (plus what the disks counted).
    #[test]
    fn a_panicked_run_ends_with_the_panic_as_its_finding() {
        let p = PanicReport { message: "boom".into(), site: "engine/src/x.rs:1:1".into(), origin: PanicOrigin::Engine };
        let out = finish(result(Some(p.clone())), how(Kind::Simulated));
        assert_eq!(out.violations.len(), 1);
        assert_eq!(out.violations[0].check, PANIC_CHECK);
        assert_eq!(out.violations[0].t_us, Some(5_000), "at the last recorded event");
        assert!(out.violations[0].message.starts_with("(seed = 7) "), "{}", out.violations[0].message);
        assert_eq!(out.report.verdict, Verdict::Fail);
        assert_eq!(out.report.panic, Some(p));
        let want: BTreeMap<String, u64> = [("crash", 1), ("lost_unsynced", 1), ("io_error", 2)]
            .into_iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect();
        assert_eq!(out.report.faults, want);
        assert_eq!(
            out.report.repro,
            "cargo run --release -- run --scenario idle --seed 7 --profile crash --mode exactly-once --mutant canary"
        );
        assert_eq!(out.report.trace_hash, "0000000000000001");
    }

    /// An interrupted real run is not judged, and says it is a real run.
    #[test]
    fn an_interrupted_real_run_has_no_findings() {
        let out = finish(result(None), how(Kind::Real { options: vec!["--pauses 2".into()], interrupted: true }));
        assert!(out.violations.is_empty());
        assert_eq!(out.report.verdict, Verdict::Interrupted);
        assert_eq!(out.report.trace_hash, "none(real-run)");
        assert_eq!(
            out.report.repro,
            format!(
                "cargo run --release -- real --scenario idle --seed 7 --profile crash --mode exactly-once --mutant canary \
                 --pauses 2 ({REAL_NOTE})"
            )
        );
    }
}
