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
pub mod merge;
pub mod mutants;
pub mod output;
pub mod real;
pub mod replay;
pub mod shard;
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
