//! Runs one seed end to end: simulate, check, report. And the determinism
//! check: run a seed twice and name the first event where the runs diverge.

/// The check id of a panic or failed assertion inside a run (declared in
/// the table of checks).
pub use crate::checks::PANIC_CHECK;
use crate::checks::{check_all, CheckInput, Violation};
use crate::history::Stamped;
use crate::report::{build, ReportCtx, RunReport};
use crate::world::{run, RunResult, RunSpec};

pub struct Outcome {
    pub report: RunReport,
    pub result: RunResult,
    pub violations: Vec<Violation>,
}

/// The command that reproduces a run.
pub fn repro_command(spec: &RunSpec, profile_arg: &str) -> String {
    let mut s = format!(
        "cargo run --release -- run --scenario {} --seed {} --profile {} --mode {}",
        spec.scenario.name(),
        spec.seed,
        profile_arg,
        spec.mode.name()
    );
    if let Some(m) = spec.mutant {
        s.push_str(&format!(" --mutant {}", m.name()));
    }
    s
}

/// `wall_us` reads the harness's clock (outside the simulation): microseconds
/// since the run began.
pub fn execute(spec: RunSpec, profile_arg: &str, code_version: &str, wall_us: impl Fn() -> u64) -> Outcome {
    let repro = repro_command(&spec, profile_arg);
    let scenario = spec.scenario.clone();
    let result = run(spec);
    let sim_wall_us = wall_us();
    // A panic inside the run, or inside a check (or the scenario's batch
    // reference a check computes), is the run's one verdict: the partial
    // history of a panicked run would only make the other checks cry wolf.
    let mut panic = result.panic.clone();
    let (mut violations, output) = match &panic {
        Some(p) => (vec![panic_violation(&result, p)], Default::default()),
        None => {
            match crate::panics::capture(|| check_all(&CheckInput { history: &result.history, scenario: &*scenario })) {
                Ok(v) => v,
                Err(p) => {
                    let v = panic_violation(&result, &p);
                    panic = Some(p);
                    (vec![v], Default::default())
                }
            }
        }
    };
    for v in violations.iter_mut() {
        v.message = format!("(seed = {}) {}", result.history.seed, v.message);
    }
    let report = build(
        &result,
        ReportCtx {
            scenario: &*scenario,
            profile: profile_arg,
            violations: &violations,
            output,
            wall_ms: wall_us() / 1000,
            sim_wall_us,
            repro,
            code_version,
            panic,
        },
    );
    Outcome { report, result, violations }
}

/// The violation a panic becomes: check `panic`, at the last recorded event.
fn panic_violation(result: &RunResult, p: &crate::panics::PanicReport) -> Violation {
    Violation::new(PANIC_CHECK, result.history.events.last().map(|e| e.t_us), p.describe())
}

/// Where two runs of the same seed first differ.
#[derive(Debug, Clone)]
pub struct Divergence {
    pub index: usize,
    pub first: Option<Stamped>,
    pub second: Option<Stamped>,
}

pub fn first_divergence(a: &RunResult, b: &RunResult) -> Option<Divergence> {
    if a.trace_hash == b.trace_hash && a.history.events.len() == b.history.events.len() {
        return None;
    }
    let n = a.chain.len().max(b.chain.len());
    let index = (0..n).find(|&i| a.chain.get(i) != b.chain.get(i)).unwrap_or(n);
    Some(Divergence {
        index,
        first: a.history.events.get(index).cloned(),
        second: b.history.events.get(index).cloned(),
    })
}
