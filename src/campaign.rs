//! Campaigns: scenarios x seeds under one profile and mode, in parallel,
//! with a progress bar, a summary table, JSON and JUnit reports, and
//! artifacts (report, trace, timeline, replay file) for failing seeds.

use crate::replay::ReplayFile;
use crate::{run_one, spec};
use exactsim_engine::config::Mutant;
use exactsim_engine::types::DeliveryMode;
use exactsim_sim::report::RunReport;
use exactsim_sim::scenario::Scenario;
use exactsim_sim::schedule::Profile;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Failing seeds whose schedule a campaign shrinks into its report.
pub const SHRINK_FAILURES: usize = 3;
/// Simulation runs spent shrinking one failure.
pub const SHRINK_RUNS: usize = 60;

pub struct CampaignSpec {
    pub scenarios: Vec<Arc<dyn Scenario>>,
    pub seeds: u64,
    pub first_seed: u64,
    pub profile: Profile,
    pub profile_arg: String,
    pub mode: DeliveryMode,
    pub mutant: Option<Mutant>,
    pub jobs: usize,
    /// (k, n): this machine runs shard k (1-based) of n.
    pub shard: Option<(u64, u64)>,
    /// Continuous mode: run seeds `first_seed`, `first_seed + 1`, ... (of
    /// this shard) until the budget is spent, at most `seeds` of them;
    /// the text as given (`10m`) and its duration.
    pub budget: Option<(String, std::time::Duration)>,
    pub report_dir: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub check_determinism: bool,
    pub progress: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunEntry {
    pub scenario: String,
    pub seed: u64,
    pub verdict: String,
    pub trace_hash: String,
    pub checks_failed: Vec<String>,
    pub determinism: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioSummary {
    pub runs: u64,
    pub violations: u64,
    pub failed_runs: u64,
    pub faults: u64,
    pub checkpoints: u64,
    pub recoveries: u64,
    pub duplicates: u64,
    pub events: u64,
    pub sim_time_ms: u64,
    pub wall_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CampaignReport {
    pub profile: String,
    pub mode: String,
    pub mutant: Option<String>,
    pub first_seed: u64,
    /// The seeds are `first_seed .. first_seed + seeds`, or this shard's
    /// share of them; in continuous mode, the range this shard got through.
    pub seeds: u64,
    pub shard: Option<String>,
    /// The scenarios of the campaign, in run order.
    #[serde(default)]
    pub scenario_names: Vec<String>,
    /// Continuous mode: the time budget as given (`10m`).
    #[serde(default)]
    pub budget: Option<String>,
    /// A merged report: the shard reports it was made from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
    pub code_version: String,
    pub verdict: String,
    pub wall_ms: u64,
    pub seeds_per_sec: f64,
    pub faults: BTreeMap<String, u64>,
    pub coverage: BTreeMap<String, u64>,
    pub scenarios: BTreeMap<String, ScenarioSummary>,
    pub determinism_failures: u64,
    pub runs: Vec<RunEntry>,
    #[serde(skip)]
    pub failures: Vec<RunReport>,
    /// Reports or artifacts that could not be written (a full disk, a
    /// missing permission): the campaign's verdict stands, but the caller
    /// must say so and exit 2.
    #[serde(skip)]
    pub write_errors: Vec<String>,
}

/// The seeds of this shard.
pub fn shard_seeds(first: u64, n: u64, shard: Option<(u64, u64)>) -> Vec<u64> {
    (0..n).filter(|i| shard.is_none_or(|(k, of)| i % of == k - 1)).map(|i| first.wrapping_add(i)).collect()
}

/// How many of the seeds `0..n` shard `shard` holds.
pub fn shard_seed_count(n: u64, shard: Option<(u64, u64)>) -> u64 {
    match shard {
        None => n,
        Some((k, of)) => n / of + u64::from(n % of >= k),
    }
}

/// The seed range `0..n` whose shard share is the first `m` seeds of the
/// shard: what a continuous campaign that ran `m` seeds records.
pub fn seed_range_of(m: u64, shard: Option<(u64, u64)>) -> u64 {
    match shard {
        None => m,
        Some(_) if m == 0 => 0,
        Some((k, of)) => (m - 1) * of + k,
    }
}

/// The `j`-th seed of a shard.
fn shard_seed(first: u64, j: u64, shard: Option<(u64, u64)>) -> u64 {
    let (k, of) = shard.unwrap_or((1, 1));
    first.wrapping_add(j.wrapping_mul(of).wrapping_add(k - 1))
}

/// Whether a passing run is run twice to check determinism: one seed in
/// ten, picked by a hash of the seed, so that a shard checks the same runs
/// as the unsharded campaign and the shards share the extra work evenly.
pub fn sampled_for_determinism(seed: u64) -> bool {
    (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32).is_multiple_of(10)
}

/// Hands out work indexes to the campaign's threads. In continuous mode the
/// work is seed-major (all scenarios of a seed, then the next seed) and
/// stops at a seed boundary once the budget is spent, so every seed begun
/// is run for every scenario.
struct Issuer {
    next: usize,
    closed: bool,
}

pub fn run_campaign(c: &CampaignSpec) -> CampaignReport {
    let nscen = c.scenarios.len();
    let seed_count = shard_seed_count(c.seeds, c.shard) as usize;
    let total = seed_count.saturating_mul(nscen);
    // Work index -> (scenario index, seed index within the shard).
    let at = |i: usize| -> (usize, u64) {
        if c.budget.is_some() {
            (i % nscen, (i / nscen) as u64)
        } else {
            (i / seed_count, (i % seed_count) as u64)
        }
    };
    let issuer = Mutex::new(Issuer { next: 0, closed: false });
    let bar = if c.progress && std::io::stderr().is_terminal() {
        let (b, style) = match &c.budget {
            None => {
                (indicatif::ProgressBar::new(total as u64), "{bar:40} {pos}/{len} seeds  {per_sec}  eta {eta}  {msg}")
            }
            Some(_) => (
                indicatif::ProgressBar::new_spinner(),
                "{spinner} {pos} runs  {per_sec}  {elapsed} of the budget  {msg}",
            ),
        };
        b.set_style(indicatif::ProgressStyle::with_template(style).unwrap());
        Some(b)
    } else {
        None
    };
    #[allow(clippy::disallowed_methods)]
    let t0 = std::time::Instant::now();
    // Per run: its report, whether it was deterministic (when checked), and
    // its shrunk replay file (for the first failures).
    type Slot = Option<(RunReport, Option<bool>, Option<ReplayFile>)>;
    let results: Mutex<Vec<Slot>> = Mutex::new(Vec::new());
    let fails = AtomicUsize::new(0);
    let write_errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..c.jobs.max(1) {
            scope.spawn(|| loop {
                let i = {
                    let mut is = issuer.lock().unwrap();
                    let spent = c.budget.as_ref().is_some_and(|(_, d)| t0.elapsed() >= *d);
                    if spent && is.next.is_multiple_of(nscen.max(1)) {
                        is.closed = true;
                    }
                    if is.closed || is.next >= total {
                        return;
                    }
                    is.next += 1;
                    is.next - 1
                };
                let (scen, j) = at(i);
                let (sc, seed) = (&c.scenarios[scen], &shard_seed(c.first_seed, j, c.shard));
                let mut sp = spec(sc.clone(), *seed, c.profile.clone(), c.mode, c.mutant);
                let out = run_one(sp.clone(), &c.profile_arg);
                let det = if c.check_determinism && (sampled_for_determinism(*seed) || out.report.verdict != "pass") {
                    sp.keep_chain = false;
                    let again = run_one(sp, &c.profile_arg);
                    Some(again.report.trace_hash == out.report.trace_hash)
                } else {
                    None
                };
                let replay = (out.report.verdict != "pass").then(|| ReplayFile::from_outcome(&out, &c.profile_arg));
                if out.report.verdict != "pass" {
                    fails.fetch_add(1, Ordering::SeqCst);
                }
                if let Some(dir) = &c.report_dir {
                    if out.report.verdict != "pass" {
                        if let Err(e) = crate::artifacts::write_failure(dir, &out, replay.as_ref()) {
                            write_errors.lock().unwrap().push(e);
                        }
                    }
                }
                {
                    let mut rs = results.lock().unwrap();
                    if rs.len() <= i {
                        rs.resize(i + 1, None);
                    }
                    rs[i] = Some((out.report, det, replay));
                }
                if let Some(b) = &bar {
                    b.inc(1);
                    b.set_message(format!("{} failing", fails.load(Ordering::SeqCst)));
                }
            });
        }
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let wall_ms = t0.elapsed().as_millis() as u64;
    let mut results: Vec<(RunReport, Option<bool>, Option<ReplayFile>)> =
        results.into_inner().unwrap().into_iter().map(|r| r.expect("every run finished")).collect();
    let total = results.len();
    // A continuous campaign records the range it got through, and lists its
    // runs scenario by scenario like a fixed one.
    let (seeds, budget) = match &c.budget {
        None => (c.seeds, None),
        Some((text, _)) => {
            assert!(total.is_multiple_of(nscen.max(1)), "a continuous campaign stops at a seed boundary");
            let order: BTreeMap<&str, usize> = c.scenarios.iter().enumerate().map(|(i, s)| (s.name(), i)).collect();
            results.sort_by_key(|(r, _, _)| (order[r.scenario.as_str()], r.seed.wrapping_sub(c.first_seed)));
            (seed_range_of((total / nscen.max(1)) as u64, c.shard), Some(text.clone()))
        }
    };
    let mut rep = CampaignReport {
        profile: c.profile_arg.clone(),
        mode: c.mode.name().into(),
        mutant: c.mutant.map(|m| m.name().into()),
        first_seed: c.first_seed,
        seeds,
        shard: c.shard.map(|(k, n)| format!("{k}/{n}")),
        scenario_names: c.scenarios.iter().map(|s| s.name().to_string()).collect(),
        budget,
        merged_from: Vec::new(),
        code_version: crate::code_version().into(),
        verdict: "pass".into(),
        wall_ms,
        seeds_per_sec: if wall_ms == 0 { 0.0 } else { total as f64 * 1000.0 / wall_ms as f64 },
        faults: BTreeMap::new(),
        coverage: BTreeMap::new(),
        scenarios: BTreeMap::new(),
        determinism_failures: 0,
        runs: Vec::new(),
        failures: Vec::new(),
        write_errors: Vec::new(),
    };
    for (r, det, _) in results {
        let s = rep.scenarios.entry(r.scenario.clone()).or_default();
        s.runs += 1;
        s.violations += r.violations.len() as u64;
        s.failed_runs += (r.verdict != "pass") as u64;
        s.faults += r.faults.values().sum::<u64>();
        s.checkpoints += r.checkpoints.completed;
        s.recoveries += r.recoveries;
        s.duplicates += r.output.duplicates;
        s.events += r.events;
        s.sim_time_ms += r.sim_time_ms;
        s.wall_ms += r.wall_ms;
        for (k, v) in &r.faults {
            *rep.faults.entry(k.clone()).or_insert(0) += v;
        }
        for cell in &r.coverage {
            *rep.coverage.entry(cell.clone()).or_insert(0) += 1;
        }
        if det == Some(false) {
            rep.determinism_failures += 1;
        }
        let mut checks: Vec<String> = r.violations.iter().map(|v| v.check.clone()).collect();
        checks.dedup();
        rep.runs.push(RunEntry {
            scenario: r.scenario.clone(),
            seed: r.seed,
            verdict: r.verdict.clone(),
            trace_hash: r.trace_hash.clone(),
            checks_failed: checks,
            determinism: det,
        });
        if r.verdict != "pass" {
            rep.failures.push(r);
        }
    }
    if !rep.failures.is_empty() || rep.determinism_failures > 0 {
        rep.verdict = "fail".into();
    }
    rep.write_errors = write_errors.into_inner().unwrap();
    if let Some(dir) = &c.report_dir {
        let json = serde_json::to_string_pretty(&rep).unwrap();
        if let Err(e) = crate::artifacts::write_file(&dir.join("campaign.json"), &json) {
            rep.write_errors.push(e);
        }
        // Shrunk schedules for the first few failures.
        for f in rep.failures.iter().take(SHRINK_FAILURES) {
            let Some(sc) = c.scenarios.iter().find(|s| s.name() == f.scenario) else { continue };
            let sp = spec(sc.clone(), f.seed, c.profile.clone(), c.mode, c.mutant);
            if let Ok(r) = crate::replay::shrink(sp, &c.profile_arg, SHRINK_RUNS) {
                let path = dir.join(format!("{}-{}", f.scenario, f.seed)).join("replay.min.json");
                if let Err(e) = crate::artifacts::write_file(&path, &r.file.to_json()) {
                    rep.write_errors.push(e);
                }
            }
        }
    }
    if let Some(j) = &c.junit {
        if let Err(e) = crate::artifacts::write_file(j, &crate::junit::render(&rep)) {
            rep.write_errors.push(e);
        }
    }
    rep
}

/// The summary table printed at the end of a campaign.
pub fn summary_table(rep: &CampaignReport) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "{:<14} {:>6} {:>10} {:>8} {:>11} {:>10} {:>10} {:>9} {:>12}\n",
        "scenario", "runs", "violations", "failed", "faults", "checkpts", "recoveries", "dups", "sim_s/wall_s"
    ));
    for (name, x) in &rep.scenarios {
        let ratio = if x.wall_ms == 0 { 0.0 } else { x.sim_time_ms as f64 / x.wall_ms as f64 };
        s.push_str(&format!(
            "{:<14} {:>6} {:>10} {:>8} {:>11} {:>10} {:>10} {:>9} {:>12.0}\n",
            name, x.runs, x.violations, x.failed_runs, x.faults, x.checkpoints, x.recoveries, x.duplicates, ratio
        ));
    }
    let faults: Vec<String> = rep.faults.iter().map(|(k, v)| format!("{k}={v}")).collect();
    s.push_str(&format!("faults injected: {}\n", if faults.is_empty() { "none".into() } else { faults.join(" ") }));
    s.push_str(&format!(
        "verdict={} runs={} failed={} determinism_failures={} wall_ms={} seeds/s={:.1} profile={} mode={}{}\n",
        rep.verdict,
        rep.runs.len(),
        rep.failures.len(),
        rep.determinism_failures,
        rep.wall_ms,
        rep.seeds_per_sec,
        rep.profile,
        rep.mode,
        rep.mutant.as_ref().map(|m| format!(" mutant={m}")).unwrap_or_default()
    ));
    s
}
