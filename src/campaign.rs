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
use serde::Serialize;
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
    pub report_dir: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub check_determinism: bool,
    pub progress: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunEntry {
    pub scenario: String,
    pub seed: u64,
    pub verdict: String,
    pub trace_hash: String,
    pub checks_failed: Vec<String>,
    pub determinism: Option<bool>,
}

#[derive(Clone, Debug, Default, Serialize)]
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

#[derive(Clone, Debug, Serialize)]
pub struct CampaignReport {
    pub profile: String,
    pub mode: String,
    pub mutant: Option<String>,
    pub first_seed: u64,
    pub seeds: u64,
    pub shard: Option<String>,
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

pub fn run_campaign(c: &CampaignSpec) -> CampaignReport {
    let seeds = shard_seeds(c.first_seed, c.seeds, c.shard);
    let work: Vec<(Arc<dyn Scenario>, u64)> =
        c.scenarios.iter().flat_map(|s| seeds.iter().map(move |seed| (s.clone(), *seed))).collect();
    let total = work.len();
    let bar = if c.progress && std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(total as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} seeds  {per_sec}  eta {eta}  {msg}").unwrap(),
        );
        Some(b)
    } else {
        None
    };
    #[allow(clippy::disallowed_methods)]
    let t0 = std::time::Instant::now();
    let next = AtomicUsize::new(0);
    // Per run: its report, whether it was deterministic (when checked), and
    // its shrunk replay file (for the first failures).
    type Slot = Option<(RunReport, Option<bool>, Option<ReplayFile>)>;
    let results: Mutex<Vec<Slot>> = Mutex::new(vec![None; total]);
    let fails = AtomicUsize::new(0);
    let write_errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..c.jobs.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= total {
                    return;
                }
                let (sc, seed) = &work[i];
                let mut sp = spec(sc.clone(), *seed, c.profile.clone(), c.mode, c.mutant);
                let out = run_one(sp.clone(), &c.profile_arg);
                let det = if c.check_determinism && (i.is_multiple_of(10) || out.report.verdict != "pass") {
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
                results.lock().unwrap()[i] = Some((out.report, det, replay));
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
    let results: Vec<(RunReport, Option<bool>, Option<ReplayFile>)> =
        results.into_inner().unwrap().into_iter().map(|r| r.expect("every run finished")).collect();
    let mut rep = CampaignReport {
        profile: c.profile_arg.clone(),
        mode: c.mode.name().into(),
        mutant: c.mutant.map(|m| m.name().into()),
        first_seed: c.first_seed,
        seeds: c.seeds,
        shard: c.shard.map(|(k, n)| format!("{k}/{n}")),
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

/// Per check that ran: its name and the runs it failed in.
pub fn checks_table(rep: &CampaignReport) -> String {
    let mode = exactsim_engine::types::DeliveryMode::parse(&rep.mode)
        .unwrap_or(exactsim_engine::types::DeliveryMode::ExactlyOnce);
    let mut failed: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &rep.runs {
        for c in &r.checks_failed {
            *failed.entry(c.as_str()).or_insert(0) += 1;
        }
    }
    let mut s = format!("{:<6} {:<22} {:>11}  {}\n", "check", "name", "failed_runs", "asserts");
    let ran = exactsim_sim::checks::checks_for(mode);
    let panic = exactsim_sim::checks::info("panic");
    for c in ran.chain(panic) {
        s.push_str(&format!(
            "{:<6} {:<22} {:>11}  {}\n",
            c.id,
            c.name,
            failed.get(c.id).copied().unwrap_or(0),
            c.meaning
        ));
    }
    s
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
    s.push_str(&checks_table(rep));
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
