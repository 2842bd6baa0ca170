//! The `exactsim` command-line tool's library: argument resolution, one run,
//! campaigns. The binary (`main.rs`) is a thin shell around it.

use exactsim_engine::config::Mutant;
use exactsim_engine::types::DeliveryMode;
use exactsim_sim::runner::{execute, Outcome};
use exactsim_sim::scenario::Scenario;
use exactsim_sim::schedule::Profile;
use exactsim_sim::world::RunSpec;
use std::sync::Arc;

pub fn code_version() -> &'static str {
    env!("EXACTSIM_CODE_VERSION")
}

/// A seed in decimal or `0x` hex.
pub fn parse_seed(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let r = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16)
    } else {
        t.parse::<u64>()
    };
    r.map_err(|_| format!("malformed seed '{s}' (expected a decimal or 0x-hex u64)"))
}

pub fn resolve_scenario(name: &str) -> Result<Arc<dyn Scenario>, String> {
    exactsim_scenarios::by_name(name).ok_or_else(|| {
        let names: Vec<&str> = exactsim_scenarios::all().iter().map(|s| s.name()).collect();
        format!("unknown scenario '{name}' (expected one of: {})", names.join(", "))
    })
}

pub fn resolve_scenarios(name: &str) -> Result<Vec<Arc<dyn Scenario>>, String> {
    if name == "all" {
        Ok(exactsim_scenarios::all())
    } else {
        Ok(vec![resolve_scenario(name)?])
    }
}

pub fn parse_mode(s: &str) -> Result<DeliveryMode, String> {
    DeliveryMode::parse(s).ok_or_else(|| format!("unknown mode '{s}' (expected exactly-once or at-least-once)"))
}

pub fn parse_mutant(s: &str) -> Result<Mutant, String> {
    Mutant::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Mutant::ALL.iter().map(|m| m.name()).collect();
        format!("unknown mutant '{s}' (expected one of: {})", names.join(", "))
    })
}

pub fn spec(
    scenario: Arc<dyn Scenario>,
    seed: u64,
    profile: Profile,
    mode: DeliveryMode,
    mutant: Option<Mutant>,
) -> RunSpec {
    RunSpec { scenario, seed, profile, mode, mutant, schedule: None, config: None, keep_chain: false }
}

/// Run one seed and check it. Wall time is measured here, in the harness,
/// never inside the simulation.
pub fn run_one(spec: RunSpec, profile_arg: &str) -> Outcome {
    #[allow(clippy::disallowed_methods)]
    let t0 = std::time::Instant::now();
    execute(spec, profile_arg, code_version(), move || t0.elapsed().as_micros() as u64)
}

pub mod artifacts;
pub mod bench;
pub mod campaign;
pub mod interrupt;
pub mod junit;
pub mod mutants;
pub mod output;
pub mod real;
pub mod replay;
pub mod timeline;
