//! The `exactsim` command-line tool's library: argument resolution, one run,
//! campaigns, the command line itself (`cli`, which `main.rs` and a user's
//! own binary call), the scenario registry and the entry point for a
//! user's `#[test]`s (`testing`).

use exactsim_engine::config::Mutant;
use exactsim_engine::types::DeliveryMode;
use exactsim_model::run::RunSpec;
use exactsim_model::scenario::Scenario;
use exactsim_model::schedule::Profile;
use exactsim_sim::runner::{execute, Outcome};
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

/// A time budget: a number and a unit, `500ms`, `30s`, `10m` or `2h`.
pub fn parse_budget(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let bad = || format!("malformed budget '{s}' (expected a number and a unit: 30s, 10m, 2h, 500ms)");
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let ms = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => None,
    };
    match ms {
        Some(ms) if ms > 0 => Ok(std::time::Duration::from_millis(ms)),
        _ => Err(bad()),
    }
}

/// A random first seed for a continuous campaign, from the OS (the harness
/// only: a run's randomness all comes from its seed).
pub fn random_seed() -> Result<u64, String> {
    use std::io::Read;
    let mut b = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| format!("cannot draw a random first seed from /dev/urandom: {e} (pass --first-seed)"))?;
    // Keep it below 2^53 so that JSON readers that hold numbers as doubles
    // (jq, JavaScript) print it back exactly.
    Ok(u64::from_le_bytes(b) >> 11)
}

/// The scenario of that name in this process's registry (the built-in
/// scenarios, and a user's given to [`cli::main_with`]).
pub fn resolve_scenario(name: &str) -> Result<Arc<dyn Scenario>, String> {
    registry::current().get(name)
}

/// `all` or one name, in this process's registry.
pub fn resolve_scenarios(name: &str) -> Result<Vec<Arc<dyn Scenario>>, String> {
    registry::current().select(name)
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

/// The nodes of a run: the engine's (its seed decides the workers) and the
/// scenario's own sink system when it has one.
pub fn nodes_of(spec: &RunSpec) -> Vec<String> {
    let workers = exactsim_model::run::derive_config(spec).parallelism;
    exactsim_model::schedule::run_nodes(workers, spec.scenario.pipeline().system().is_some())
}

/// Refuse an explicit schedule that names a node the run lacks or breaks a
/// cap (the error names the event and the field).
pub fn validate_schedule(spec: &RunSpec, schedule: &exactsim_model::schedule::Schedule) -> Result<(), String> {
    let workers = exactsim_model::run::derive_config(spec).parallelism;
    schedule.validate(workers, spec.scenario.pipeline().system().is_some())
}

/// Refuse a profile whose trigger names a node `nodes` lacks: it would
/// never fire, and the run would pass without the fault it was written for.
fn check_trigger_nodes(profile: &Profile, profile_arg: &str, nodes: &[String], of: &str) -> Result<(), String> {
    match profile.missing_trigger_nodes(nodes).first() {
        None => Ok(()),
        Some((i, n)) => Err(format!(
            "profile {profile_arg}: trigger {i} names node '{n}', which is not in {of} (nodes: {})",
            nodes.join(", ")
        )),
    }
}

/// [`check_trigger_nodes`] for one run.
pub fn check_run_nodes(spec: &RunSpec, profile_arg: &str) -> Result<(), String> {
    check_trigger_nodes(&spec.profile, profile_arg, &nodes_of(spec), "this run")
}

/// [`check_trigger_nodes`] for a campaign, whose runs differ in their
/// workers: a trigger's node must be in one run at least, looked for in the
/// first thousand seeds of each scenario (a topology is drawn from the
/// seed, so every worker count shows up long before).
pub fn check_campaign_nodes(
    scenarios: &[Arc<dyn Scenario>],
    seeds: &crate::campaign::ShardSeeds,
    profile: &Profile,
    profile_arg: &str,
    mode: DeliveryMode,
) -> Result<(), String> {
    if profile.triggers.iter().all(|t| t.node.is_none()) {
        return Ok(());
    }
    let mut nodes: Vec<String> = Vec::new();
    for sc in scenarios {
        for j in 0..seeds.len().min(1000) {
            let s = spec(sc.clone(), seeds.get(j), profile.clone(), mode, None);
            for n in nodes_of(&s) {
                if !nodes.contains(&n) {
                    nodes.push(n);
                }
            }
        }
    }
    check_trigger_nodes(profile, profile_arg, &nodes, "any run of this campaign")
}

/// Run one seed and check it. Wall time is measured here, in the harness,
/// never inside the simulation.
pub fn run_one(spec: RunSpec, profile_arg: &str) -> Outcome {
    #[allow(clippy::disallowed_methods)]
    let t0 = std::time::Instant::now();
    let mut out = execute(spec, profile_arg, code_version(), move || t0.elapsed().as_micros() as u64);
    // A user's binary stores its own command in the report (campaign.json,
    // JUnit, the timeline), not the project's.
    if let Some(cli) = output::user_report_cli() {
        out.report.repro = output::as_invoked(&out.report.repro, cli);
    }
    out
}

pub mod artifacts;
pub mod bench;
pub mod campaign;
pub mod campaign_report;
pub mod cli;
pub mod explore;
pub mod interrupt;
pub mod junit;
pub mod merge;
pub mod mutants;
pub mod output;
pub mod real;
pub mod registry;
pub mod replay;
pub mod shard;
pub mod testing;
pub mod timeline;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn budgets_need_a_unit() {
        assert_eq!(parse_budget("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_budget("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_budget("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_budget("500ms"), Ok(Duration::from_millis(500)));
        for bad in ["10", "m", "0s", "1.5m", "10 m", "-1s", "3d", ""] {
            assert!(parse_budget(bad).unwrap_err().contains("malformed budget"), "{bad}");
        }
    }
}
