//! Shared helpers: seed ranges from the environment, running a spec, and
//! assertion messages that carry the command reproducing a failure.

use exactsim::{run_one, spec};
use exactsim_engine::config::{JobConfig, Mutant};
use exactsim_engine::types::DeliveryMode;
use exactsim_sim::runner::Outcome;
use exactsim_sim::schedule::{FaultEvent, Profile, Schedule};
use exactsim_sim::world::RunSpec;

/// Seeds per scenario and profile (`EXACTSIM_SEEDS`, default 3).
pub fn seeds() -> u64 {
    std::env::var("EXACTSIM_SEEDS").ok().and_then(|s| exactsim::parse_seed(&s).ok()).unwrap_or(3)
}

/// First seed (`EXACTSIM_SEED`, default 1).
pub fn first_seed() -> u64 {
    std::env::var("EXACTSIM_SEED").ok().and_then(|s| exactsim::parse_seed(&s).ok()).unwrap_or(1)
}

pub fn seed_range() -> std::ops::Range<u64> {
    let f = first_seed();
    f..f + seeds()
}

pub fn make(scenario: &str, seed: u64, profile: &str, mode: DeliveryMode, mutant: Option<Mutant>) -> RunSpec {
    let sc = exactsim::resolve_scenario(scenario).unwrap();
    spec(sc, seed, Profile::resolve(profile).unwrap(), mode, mutant)
}

pub fn go(spec: RunSpec, profile: &str) -> Outcome {
    run_one(spec, profile)
}

/// Fail with every violation and the reproducing command.
pub fn assert_pass(out: &Outcome) {
    if out.report.verdict != "pass" {
        let mut msg = format!("{}\n", out.report.summary_line());
        for v in &out.report.violations {
            msg.push_str(&format!("  {} {}\n", v.check, v.message));
        }
        msg.push_str(&format!("reproduce: {}", out.report.repro));
        panic!("{msg}");
    }
}

/// A fixed three-worker job with an explicit schedule.
pub fn fixed(scenario: &str, seed: u64, mode: DeliveryMode, events: Vec<FaultEvent>) -> RunSpec {
    let mut s = make(scenario, seed, "none", mode, None);
    s.config = Some(JobConfig { parallelism: 3, checkpoint_interval_ms: 60, source_batch: 8, ..JobConfig::default() });
    s.schedule = Some(Schedule { safety_ms: 1_500, liveness_ms: 30_000, events });
    s
}
