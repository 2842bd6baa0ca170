//! Shared helpers: seed ranges from the environment, running a spec, and
//! assertion messages that carry the command reproducing a failure.

use exactsim::{run_one, spec};
use exactsim_engine::config::{JobConfig, Mutant};
use exactsim_engine::types::DeliveryMode;
use exactsim_model::report::Verdict;
use exactsim_model::run::RunSpec;
use exactsim_model::schedule::{FaultEvent, Profile, Schedule};
use exactsim_sim::runner::Outcome;

/// Seeds per scenario and profile (`EXACTSIM_SEEDS`, default 3).
pub fn seeds() -> u64 {
    exactsim::testing::seeds(3)
}

/// First seed (`EXACTSIM_SEED`, default 1).
pub fn first_seed() -> u64 {
    exactsim::testing::first_seed(1)
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
    if !out.report.verdict.is_pass() {
        let mut msg = format!("{}\n", out.report.summary_line());
        for v in &out.report.violations {
            msg.push_str(&format!("  {} {}\n", v.check, v.message));
        }
        if exactsim::resolve_scenario(&out.report.scenario).is_ok() {
            msg.push_str(&format!("reproduce: {}", out.report.repro));
        } else {
            // A scenario defined in a test: the test reproduces it.
            let test = std::thread::current().name().unwrap_or("<this test>").to_string();
            let env = format!("EXACTSIM_SEED={} EXACTSIM_TEST_SEEDS=1", out.report.seed);
            msg.push_str(&format!(
                "reproduce: {env} cargo test --test it {test} -- --exact\nshrink: {env} EXACTSIM_SHRINK=1 cargo test --test it {test} -- --exact (then EXACTSIM_REPLAY=<the file it writes> replays it)"
            ));
        }
        panic!("{msg}");
    }
}

/// Seeds of a loop over a scenario defined in a test: `EXACTSIM_SEED`
/// onwards, `EXACTSIM_TEST_SEEDS` of them (default `default`).
pub fn test_seeds(default: u64) -> std::ops::Range<u64> {
    let n = std::env::var("EXACTSIM_TEST_SEEDS").ok().and_then(|s| exactsim::parse_seed(&s).ok()).unwrap_or(default);
    first_seed()..first_seed() + n
}

/// Run a scenario defined in a test (not in `scenarios::all()`, so the
/// `cargo run` command cannot reach it). `EXACTSIM_REPLAY=<file>` runs that
/// replay file instead (its schedule, seed and mode); with
/// `EXACTSIM_SHRINK=1`, a failing run is shrunk and the minimal replay file
/// written under `target/exactsim/`, its path printed.
pub fn go_custom(
    sc: std::sync::Arc<dyn exactsim_model::scenario::Scenario>,
    seed: u64,
    profile: &str,
    mode: DeliveryMode,
) -> Outcome {
    if let Ok(path) = std::env::var("EXACTSIM_REPLAY") {
        let f = exactsim::replay::ReplayFile::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let spec = f.to_spec_with(sc).unwrap_or_else(|e| panic!("{e}"));
        return go(spec, &f.profile);
    }
    let spec = exactsim::spec(sc, seed, Profile::resolve(profile).unwrap(), mode, None);
    let out = go(spec.clone(), profile);
    if out.report.verdict == Verdict::Fail && std::env::var("EXACTSIM_SHRINK").is_ok() {
        let r = exactsim::replay::shrink(spec, profile, 200, 1).unwrap_or_else(|e| panic!("shrink: {e}"));
        let path = format!("target/exactsim/{}-{}.min.json", out.report.scenario, seed);
        let _ = std::fs::create_dir_all("target/exactsim");
        exactsim::artifacts::write_file(std::path::Path::new(&path), &r.file.to_json())
            .unwrap_or_else(|e| panic!("write {path}: {e}"));
        eprintln!(
            "shrunk to {path} ({} fault events): EXACTSIM_REPLAY={path} replays it",
            r.file.schedule.events.len()
        );
    }
    out
}

/// A fixed three-worker job with an explicit schedule.
pub fn fixed(scenario: &str, seed: u64, mode: DeliveryMode, events: Vec<FaultEvent>) -> RunSpec {
    let mut s = make(scenario, seed, "none", mode, None);
    s.config = Some(JobConfig {
        parallelism: 3,
        checkpoint_interval_ms: 60,
        source_batch: 8,
        adaptive_interval: None,
        ..JobConfig::default()
    });
    s.schedule = Some(Schedule { safety_ms: 1_500, liveness_ms: 30_000, events });
    s
}
