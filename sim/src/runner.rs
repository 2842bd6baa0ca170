//! Runs one seed end to end: simulate, check, report. And the determinism
//! check: run a seed twice and name the first event where the runs diverge.

/// The check id of a panic or failed assertion inside a run (declared in
/// the table of checks).
pub use crate::checks::PANIC_CHECK;
pub use crate::finish::Outcome;
use crate::finish::{finish, Finish, Kind};
use crate::history::Stamped;
use crate::world::{run, RunResult, RunSpec};

/// Simulate one seed and end it through [`finish`]. `wall_us` reads the
/// harness's clock (outside the simulation): microseconds since the run
/// began.
pub fn execute(spec: RunSpec, profile_arg: &str, code_version: &str, wall_us: impl Fn() -> u64) -> Outcome {
    let scenario = spec.scenario.clone();
    let mutant = spec.mutant;
    let result = run(spec);
    let sim_wall_us = wall_us();
    finish(
        result,
        Finish {
            scenario: &*scenario,
            profile: profile_arg,
            mutant,
            code_version,
            sim_wall_us,
            wall_us: &wall_us,
            kind: Kind::Simulated,
        },
    )
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
