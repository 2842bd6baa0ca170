//! The entry point for a user's own `#[test]`s: a small campaign over their
//! scenarios that fails the test with one line per failing seed, each with
//! the command that reproduces it through their binary
//! (`cargo run -p my-crate -- run --scenario .. --seed ..`, a binary whose
//! `main` is [`crate::cli::main_with`] with the same scenarios), and the
//! replay of a corpus of frozen failures.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # fn my_scenario() -> Arc<dyn exactsim_model::scenario::Scenario> { unimplemented!() }
//! // in a #[test]: 20 chaos seeds of my scenario, each run checked
//! let outcomes = exactsim::testing::campaign(&[my_scenario()], "chaos", 20);
//! assert!(outcomes.iter().any(|o| o.report.recoveries > 0));
//! ```
//!
//! Like the project's own tests, `EXACTSIM_SEEDS=N` runs N seeds per
//! scenario instead of the test's count and `EXACTSIM_SEED=S` starts at S
//! instead of 1 (`EXACTSIM_SEED=17 EXACTSIM_SEEDS=1 cargo test` runs seed
//! 17 alone).

use crate::output::{as_invoked, CLI};
use crate::registry::Registry;
use crate::replay::ReplayFile;
use crate::{check_run_nodes, parse_seed, run_one, spec};
use exactsim_engine::config::Mutant;
use exactsim_engine::types::DeliveryMode;
use exactsim_model::scenario::Scenario;
use exactsim_model::schedule::Profile;
use exactsim_sim::runner::Outcome;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Seeds per scenario: `EXACTSIM_SEEDS`, else `default`.
pub fn seeds(default: u64) -> u64 {
    std::env::var("EXACTSIM_SEEDS").ok().and_then(|s| parse_seed(&s).ok()).unwrap_or(default)
}

/// The first seed: `EXACTSIM_SEED`, else `default`.
pub fn first_seed(default: u64) -> u64 {
    std::env::var("EXACTSIM_SEED").ok().and_then(|s| parse_seed(&s).ok()).unwrap_or(default)
}

/// The prefix of the reproduce commands a test prints: the binary of the
/// package under test, as `cargo run -p <package> --` (cargo sets
/// `CARGO_PKG_NAME` for the tests it runs); the project's own [`CLI`] in
/// its own tests. [`Campaign::cli`] names another binary.
pub fn default_cli() -> String {
    match std::env::var("CARGO_PKG_NAME") {
        Ok(p) if p != "exactsim" => format!("cargo run -p {p} --"),
        _ => CLI.to_string(),
    }
}

/// `seeds` seeds (from 1) of every scenario under `profile`, exactly-once;
/// panics with one line per failing seed, each with its reproduce command
/// ([`default_cli`]). Returns every run's outcome. See [`Campaign`] for the
/// mode, a planted bug, the first seed and the binary to name.
pub fn campaign(scenarios: &[Arc<dyn Scenario>], profile: &str, seeds: u64) -> Vec<Outcome> {
    Campaign::new(scenarios).profile(profile).seeds(seeds).run()
}

/// A campaign over a user's scenarios, for a `#[test]`.
#[derive(Clone)]
pub struct Campaign {
    scenarios: Vec<Arc<dyn Scenario>>,
    profile: String,
    seeds: u64,
    first_seed: u64,
    mode: DeliveryMode,
    mutant: Option<Mutant>,
    cli: Option<String>,
}

impl Campaign {
    /// Three seeds from 1 of each scenario, profile `chaos`, exactly-once.
    pub fn new(scenarios: &[Arc<dyn Scenario>]) -> Campaign {
        Campaign {
            scenarios: scenarios.to_vec(),
            profile: "chaos".into(),
            seeds: 3,
            first_seed: 1,
            mode: DeliveryMode::ExactlyOnce,
            mutant: None,
            cli: None,
        }
    }

    /// A profile name (`crash`, `chaos`, ...) or a `.toml` profile file.
    pub fn profile(mut self, profile: &str) -> Campaign {
        self.profile = profile.to_string();
        self
    }

    /// Seeds per scenario; `EXACTSIM_SEEDS` overrides it.
    pub fn seeds(mut self, n: u64) -> Campaign {
        self.seeds = n;
        self
    }

    /// The first seed; `EXACTSIM_SEED` overrides it.
    pub fn first_seed(mut self, seed: u64) -> Campaign {
        self.first_seed = seed;
        self
    }

    pub fn mode(mut self, mode: DeliveryMode) -> Campaign {
        self.mode = mode;
        self
    }

    /// One of the engine's planted bugs, in every run.
    pub fn mutant(mut self, m: Mutant) -> Campaign {
        self.mutant = Some(m);
        self
    }

    /// The command that runs the binary registering these scenarios, up to
    /// and including `--` (`cargo run -p my-crate --`, `cargo run --example
    /// my_harness --`); default [`default_cli`].
    pub fn cli(mut self, prefix: &str) -> Campaign {
        self.cli = Some(prefix.to_string());
        self
    }

    /// The seeds each scenario runs, after the environment's overrides.
    pub fn seed_range(&self) -> std::ops::Range<u64> {
        let first = first_seed(self.first_seed);
        first..first.saturating_add(seeds(self.seeds))
    }

    /// Every run, failing or not (its report's `repro` is the command for
    /// this campaign's binary); panics only on a bad profile or scenario.
    pub fn outcomes(&self) -> Vec<Outcome> {
        let profile = Profile::resolve(&self.profile).unwrap_or_else(|e| panic!("{e}"));
        Registry::with_user(self.scenarios.clone()).unwrap_or_else(|e| panic!("{e}"));
        let cli = self.cli.clone().unwrap_or_else(default_cli);
        let mut outs = Vec::new();
        for sc in &self.scenarios {
            for seed in self.seed_range() {
                let s = spec(sc.clone(), seed, profile.clone(), self.mode, self.mutant);
                check_run_nodes(&s, &self.profile).unwrap_or_else(|e| panic!("{e}"));
                let mut out = run_one(s, &self.profile);
                out.report.repro = as_invoked(&out.report.repro, &cli);
                outs.push(out);
            }
        }
        outs
    }

    /// [`Campaign::outcomes`], then [`assert_all_pass`].
    pub fn run(&self) -> Vec<Outcome> {
        let outs = self.outcomes();
        assert_all_pass(&outs);
        outs
    }
}

/// One line per failing run: scenario, seed, first violation and the
/// command that reproduces it (the report's `repro`).
pub fn failure_lines(outcomes: &[Outcome]) -> Vec<String> {
    outcomes
        .iter()
        .filter(|o| !o.report.verdict.is_pass())
        .map(|o| {
            let r = &o.report;
            let what = r.violations.first().map_or("failed".to_string(), |v| format!("{} {}", v.label(), v.message));
            format!("FAIL {} seed {}: {} | reproduce: {}", r.scenario, r.seed, what.replace('\n', " "), r.repro)
        })
        .collect()
}

/// Panic with [`failure_lines`] under a line saying how many failed.
pub fn assert_all_pass(outcomes: &[Outcome]) {
    let lines = failure_lines(outcomes);
    if !lines.is_empty() {
        panic!(
            "exactsim: {} of {} runs failed (EXACTSIM_SEED and EXACTSIM_SEEDS choose the seeds):\n{}",
            lines.len(),
            outcomes.len(),
            lines.join("\n")
        );
    }
}

/// Replay every `.json` replay file in `dir` (`shrink --out` or a
/// campaign's artifacts, copied there) with `scenarios` beside the
/// built-in ones: each must give its recorded verdict (its recorded check
/// among the violations, or a pass). The schedule is what a file freezes,
/// so a file written by other code is replayed as if by this code. Panics
/// with one line per file that does not, and when `dir` cannot be read.
/// Returns the outcomes in file-name order.
pub fn replay_corpus(dir: impl AsRef<Path>, scenarios: &[Arc<dyn Scenario>]) -> Vec<Outcome> {
    let dir = dir.as_ref();
    let reg = Registry::with_user(scenarios.to_vec()).unwrap_or_else(|e| panic!("{e}"));
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read corpus {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap_or_else(|e| panic!("cannot read corpus {}: {e}", dir.display())).path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let (mut outs, mut bad) = (Vec::new(), Vec::new());
    for path in files {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {origin}: {e}"));
        let mut v: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{origin}: not a valid replay file: {e}"));
        v["code_version"] = serde_json::Value::String(crate::code_version().into());
        let f = ReplayFile::parse(&v.to_string(), &origin).unwrap_or_else(|e| panic!("{e}"));
        let s = reg.get(&f.scenario).and_then(|sc| f.to_spec_with(sc)).unwrap_or_else(|e| panic!("{origin}: {e}"));
        let out = run_one(s, &f.profile);
        let got = match &f.check {
            Some(c) => out.report.violations.iter().any(|v| &v.check == c),
            None => out.report.verdict.is_pass(),
        };
        if !got {
            let want = f.check.as_deref().unwrap_or("a pass");
            bad.push(format!("{origin}: expected {want}, got {}", out.report.summary_line()));
        }
        outs.push(out);
    }
    if !bad.is_empty() {
        panic!("exactsim: {} corpus file(s) did not give their recorded verdict:\n{}", bad.len(), bad.join("\n"));
    }
    outs
}
