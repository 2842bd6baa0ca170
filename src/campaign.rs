//! Campaigns: scenarios x seeds under one profile and mode, in parallel,
//! with a progress bar, a summary table, JSON and JUnit reports, and
//! artifacts (report, trace, timeline, replay file) for failing seeds.

pub use crate::campaign_report::{CampaignReport, CheckRow, RunEntry, ScenarioSummary, Sums};
use crate::replay::ReplayFile;
use crate::{run_one, spec};
use exactsim_engine::config::Mutant;
use exactsim_engine::types::DeliveryMode;
use exactsim_model::report::RunReport;
use exactsim_model::report::Verdict;
use exactsim_model::scenario::Scenario;
use exactsim_model::schedule::Profile;
use exactsim_sim::runner::Outcome;
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
    /// Failing runs that get full artifacts (report, trace, timeline,
    /// replay file); the others get one line in the campaign report.
    pub max_artifacts: usize,
    /// Where the runs run: simulated, or as real processes.
    pub backend: Backend,
}

/// Where a campaign's runs run. Both end in the same `Outcome`, so the
/// report, JUnit and artifacts are the same for either.
#[derive(Clone)]
pub enum Backend {
    Simulated,
    /// Real OS processes (`exactsim real --seeds`): the template's options
    /// for every run, its scenario and seed replaced by the run's.
    Real(Box<crate::real::RealSpec>),
}

/// One finished run of a campaign, judged.
struct Ran {
    entry: RunEntry,
    out: Outcome,
    /// A real run's record of what was played (`real.json`).
    real: Option<crate::real::RealRecord>,
}

/// Run one seed of one scenario on the campaign's backend: `Ok(None)` for
/// a real run stopped by a signal (not judged), `Err` for a real run that
/// could not be set up (an environment problem, not a finding).
fn run_entry(c: &CampaignSpec, sc: &Arc<dyn Scenario>, seed: u64) -> Result<Option<Ran>, String> {
    let mut sp = spec(sc.clone(), seed, c.profile.clone(), c.mode, c.mutant);
    let (out, real) = match &c.backend {
        Backend::Simulated => (run_one(sp.clone(), &c.profile_arg), None),
        Backend::Real(t) => {
            let rs = crate::real::RealSpec { scenario: sc.clone(), seed, ..(**t).clone() };
            let r = crate::real::run(&rs)?;
            if r.interrupted {
                return Ok(None);
            }
            (r.outcome, Some(r.real))
        }
    };
    let failed = !out.report.verdict.is_pass();
    let again = if c.check_determinism && (sampled_for_determinism(seed) || failed) {
        sp.keep_chain = false;
        Some(run_one(sp, &c.profile_arg).report.trace_hash)
    } else {
        None
    };
    let det = again.as_ref().map(|h| *h == out.report.trace_hash);
    let entry = RunEntry {
        scenario: out.report.scenario.clone(),
        seed,
        verdict: out.report.verdict,
        trace_hash: out.report.trace_hash.clone(),
        checks_failed: {
            let mut v: Vec<String> = out.report.violations.iter().map(|v| v.check.clone()).collect();
            v.dedup();
            v
        },
        determinism: det,
        determinism_trace_hash: again.filter(|h| *h != out.report.trace_hash),
        wall_ms: out.report.wall_ms,
        effective_faults: out.report.effective_faults.values().sum(),
        late_faults: out.report.late_faults,
        message: out.report.violations.first().map(|v| format!("{}: {}", v.label(), v.message)),
        repro: (failed || det == Some(false)).then(|| out.report.repro.clone()),
        artifacts: None,
    };
    Ok(Some(Ran { entry, out, real }))
}

/// Most seeds one campaign may ask for (per scenario), and the default cap
/// of a continuous one: a merge refuses a report claiming more.
pub const SEEDS_MAX: u64 = 10_000_000;
/// Most shards a campaign splits into (the largest CI matrices and job
/// arrays hold a few thousand): a merge checks every shard 1..N is there.
pub const SHARDS_MAX: u64 = 10_000;
/// Most parallel jobs.
pub const JOBS_MAX: usize = 256;
/// Default of `--max-artifacts`.
pub const MAX_ARTIFACTS_DEFAULT: usize = 20;

/// The checks that judge a campaign of `scenarios` in `mode`, in report
/// order: the engine's oracles for the mode, each scenario's own checks,
/// then `panic` (watched in every run).
pub fn check_rows(scenarios: &[Arc<dyn Scenario>], mode: DeliveryMode) -> Vec<CheckRow> {
    // The oracles of the mode, or of each scenario's runs (an upsert
    // scenario's are at-least-once, with P17 and P18), in table order.
    let runs = |c: &exactsim_model::checks::CheckInfo| {
        (scenarios.is_empty() && exactsim_model::checks::checks_for(mode).any(|x| x.id == c.id))
            || scenarios.iter().any(|sc| {
                exactsim_model::checks::checks_for_run(&**sc, exactsim_model::scenario::mode_of(&**sc, mode))
                    .any(|x| x.id == c.id)
            })
    };
    let mut rows: Vec<CheckRow> = exactsim_model::checks::CHECKS
        .iter()
        .filter(|c| matches!(c.judge, exactsim_model::checks::Judge::History(_)) && runs(c))
        .map(CheckRow::of)
        .collect();
    for sc in scenarios {
        for c in sc.checks() {
            if !rows.iter().any(|r| r.id == c.id) {
                rows.push(CheckRow {
                    id: c.id.into(),
                    name: c.name.into(),
                    meaning: c.meaning.into(),
                    scenario: Some(sc.name().into()),
                });
            }
        }
    }
    rows.extend(exactsim_model::checks::info(exactsim_model::checks::PANIC_CHECK).map(CheckRow::of));
    rows
}

/// The seeds of this shard: seed index `i` belongs to shard `i % n + 1`.
pub struct ShardSeeds {
    first: u64,
    n: u64,
    shard: Option<(u64, u64)>,
}

impl ShardSeeds {
    pub fn new(first: u64, n: u64, shard: Option<(u64, u64)>) -> ShardSeeds {
        ShardSeeds { first, n, shard }
    }

    pub fn len(&self) -> u64 {
        match self.shard {
            None => self.n,
            Some((k, of)) => {
                if self.n >= k {
                    (self.n - k) / of + 1
                } else {
                    0
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `j`-th seed of this shard.
    pub fn get(&self, j: u64) -> u64 {
        let i = match self.shard {
            None => j,
            Some((k, of)) => j * of + (k - 1),
        };
        self.first.wrapping_add(i)
    }
}

/// The seeds of this shard, as a list.
pub fn shard_seeds(first: u64, n: u64, shard: Option<(u64, u64)>) -> Vec<u64> {
    let s = ShardSeeds::new(first, n, shard);
    (0..s.len()).map(|j| s.get(j)).collect()
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

/// Whether a passing run is run twice to check determinism: one seed in
/// ten, picked by a hash of the seed, so that a shard checks the same runs
/// as the unsharded campaign and the shards share the extra work evenly.
pub fn sampled_for_determinism(seed: u64) -> bool {
    (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32).is_multiple_of(10)
}

/// Hands out work indexes to a continuous campaign's threads: the work is
/// seed-major (all scenarios of a seed, then the next seed) and stops at a
/// seed boundary once the budget is spent or a stop is asked for, so every
/// seed begun is run for every scenario and the report is a whole range.
struct Issuer {
    next: usize,
    closed: bool,
}

/// A failing run kept for its artifacts: its outcome, its replay file, and
/// for a real run what was played.
type KeptRun = (Outcome, ReplayFile, Option<crate::real::RealRecord>);

/// What the workers hand back, folded as runs finish.
#[derive(Default)]
struct Tally {
    entries: Vec<(usize, RunEntry)>,
    failures: Vec<(usize, RunReport)>,
    /// Outcomes of the failing runs with the lowest indices (at most
    /// `max_artifacts`), whose artifacts are written at the end: which runs
    /// get artifacts does not depend on the order jobs finish in.
    kept: BTreeMap<usize, KeptRun>,
    sums: Sums,
}

/// Run a campaign. `Err`: a real run could not be set up (an environment
/// problem: exit 2); nothing is written then.
pub fn run_campaign(c: &CampaignSpec) -> Result<CampaignReport, String> {
    let seeds = ShardSeeds::new(c.first_seed, c.seeds, c.shard);
    let per = usize::try_from(seeds.len()).unwrap_or(usize::MAX);
    let nscen = c.scenarios.len();
    let total = per.saturating_mul(nscen);
    // Work index -> (scenario index, seed index within the shard).
    let at = |i: usize| -> (usize, usize) {
        if c.budget.is_some() {
            (i % nscen, i / nscen)
        } else {
            (i / per, i % per)
        }
    };
    let issuer = Mutex::new(Issuer { next: 0, closed: false });
    let bar = progress_bar(c, total);
    #[allow(clippy::disallowed_methods)]
    let t0 = std::time::Instant::now();
    let next = AtomicUsize::new(0);
    let fails = AtomicUsize::new(0);
    let tally: Mutex<Tally> = Mutex::new(Tally::default());
    let setup_error: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..c.jobs.clamp(1, total.max(1)) {
            scope.spawn(|| loop {
                let i = match &c.budget {
                    None => {
                        if crate::interrupt::requested() || setup_error.lock().unwrap().is_some() {
                            return;
                        }
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= total {
                            return;
                        }
                        i
                    }
                    Some((_, budget)) => {
                        let mut is = issuer.lock().unwrap();
                        let stop = crate::interrupt::requested()
                            || setup_error.lock().unwrap().is_some()
                            || t0.elapsed() >= *budget;
                        if stop && is.next.is_multiple_of(nscen) {
                            is.closed = true;
                        }
                        if is.closed || is.next >= total {
                            return;
                        }
                        is.next += 1;
                        is.next - 1
                    }
                };
                let (scen, j) = at(i);
                let seed = seeds.get(j as u64);
                let Some(Ran { entry, out, real }) = (match run_entry(c, &c.scenarios[scen], seed) {
                    Ok(r) => r,
                    Err(e) => {
                        // An environment problem (a real run could not be
                        // set up): no verdict; the campaign stops.
                        setup_error.lock().unwrap().get_or_insert(e);
                        return;
                    }
                }) else {
                    return;
                };
                let failed = !out.report.verdict.is_pass();
                if entry.failed() {
                    fails.fetch_add(1, Ordering::SeqCst);
                }
                fold(&mut tally.lock().unwrap(), i, entry, (out, real), failed, c);
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
    let interrupted = crate::interrupt::requested();
    let wall_ms = t0.elapsed().as_millis() as u64;
    if let Some(e) = setup_error.into_inner().unwrap() {
        return Err(e);
    }
    let mut t = tally.into_inner().unwrap();
    // Scenario by scenario, then seed by seed (a continuous campaign runs
    // seed-major but lists its runs like a fixed one).
    t.entries.sort_by_key(|e| at(e.0));
    t.failures.sort_by_key(|e| at(e.0));
    let done = t.entries.len();
    // A continuous campaign records the range it got through.
    let (seeds_range, budget, planned) = match &c.budget {
        None => (c.seeds, None, total as u64),
        Some((text, _)) => {
            assert!(done.is_multiple_of(nscen), "a continuous campaign stops at a seed boundary");
            (seed_range_of((done / nscen) as u64, c.shard), Some(text.clone()), done as u64)
        }
    };
    let mut rep = CampaignReport {
        profile: c.profile_arg.clone(),
        mode: c.mode.name().into(),
        mutant: c.mutant.map(|m| m.name().into()),
        first_seed: c.first_seed,
        seeds: seeds_range,
        shard: c.shard.map(|(k, n)| format!("{k}/{n}")),
        scenario_names: c.scenarios.iter().map(|s| s.name().to_string()).collect(),
        checks: check_rows(&c.scenarios, c.mode),
        budget,
        merged_from: Vec::new(),
        code_version: crate::code_version().into(),
        verdict: Verdict::Pass,
        interrupted,
        runs_planned: planned,
        wall_ms,
        seeds_per_sec: if wall_ms == 0 { 0.0 } else { done as f64 * 1000.0 / wall_ms as f64 },
        faults: BTreeMap::new(),
        coverage: BTreeMap::new(),
        reached: BTreeMap::new(),
        never_reached: Vec::new(),
        scenarios: BTreeMap::new(),
        determinism_failures: 0,
        max_artifacts: c.max_artifacts,
        artifacts_written: 0,
        artifacts_left_out: 0,
        runs: t.entries.into_iter().map(|e| e.1).collect(),
        failures: t.failures.into_iter().map(|e| e.1).collect(),
        write_errors: Vec::new(),
    };
    std::mem::take(&mut t.sums).store(&mut rep);
    if rep.runs.iter().any(|r| r.failed()) {
        rep.verdict = Verdict::Fail;
    }
    write_outputs(c, &mut rep, &t.kept, interrupted);
    Ok(rep)
}

/// The campaign's progress bar, on a terminal.
fn progress_bar(c: &CampaignSpec, total: usize) -> Option<indicatif::ProgressBar> {
    if c.progress && std::io::stderr().is_terminal() {
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
    }
}

/// Write what the campaign leaves on disk: each kept failure's artifacts
/// (and a shrunk schedule for the first few), `campaign.json`, JUnit.
fn write_outputs(c: &CampaignSpec, rep: &mut CampaignReport, kept: &BTreeMap<usize, KeptRun>, interrupted: bool) {
    let failing = rep.runs.iter().filter(|r| r.failed()).count() as u64;
    if let Some(dir) = &c.report_dir {
        for (out, replay, real) in kept.values() {
            let mut errors = crate::artifacts::write_failure(dir, out, Some(replay));
            if let Some(real) = real {
                let path = crate::artifacts::failure_dir(dir, &out.report.scenario, out.report.seed).join("real.json");
                let json = serde_json::to_string_pretty(real).expect("serializable");
                errors.extend(crate::artifacts::write_file(&path, &json).err());
            }
            if errors.is_empty() {
                let entry =
                    rep.runs.iter_mut().find(|r| r.scenario == out.report.scenario && r.seed == out.report.seed);
                entry.expect("a kept outcome is in the run list").artifacts =
                    Some(format!("{}-{}", out.report.scenario, out.report.seed));
                rep.artifacts_written += 1;
            }
            rep.write_errors.extend(errors);
        }
        rep.artifacts_left_out = failing - rep.artifacts_written;
        // Shrunk schedules for the first few failures (not after a stop
        // was asked for: the user is waiting for the report).
        // Shrinking runs simulations: not for a real campaign's failures.
        if !interrupted && matches!(c.backend, Backend::Simulated) {
            for f in rep.failures.iter().take(SHRINK_FAILURES.min(c.max_artifacts)) {
                let Some(sc) = c.scenarios.iter().find(|s| s.name() == f.scenario) else { continue };
                let sp = spec(sc.clone(), f.seed, c.profile.clone(), c.mode, c.mutant);
                if let Ok(r) = crate::replay::shrink(sp, &c.profile_arg, SHRINK_RUNS, c.jobs) {
                    let path = crate::artifacts::failure_dir(dir, &f.scenario, f.seed).join("replay.min.json");
                    if let Err(e) = crate::artifacts::write_file(&path, &r.file.to_json()) {
                        rep.write_errors.push(e);
                    }
                }
            }
        }
        let json = serde_json::to_string_pretty(&*rep).expect("serializable");
        if let Err(e) = crate::artifacts::write_file(&dir.join("campaign.json"), &json) {
            rep.write_errors.push(e);
        }
    } else {
        rep.artifacts_left_out = failing;
    }
    if let Some(j) = &c.junit {
        if let Err(e) = crate::artifacts::write_file(j, &crate::junit::render(rep)) {
            rep.write_errors.push(e);
        }
    }
}

type Kept = (Outcome, Option<crate::real::RealRecord>);

fn fold(t: &mut Tally, i: usize, entry: RunEntry, (out, real): Kept, failed: bool, c: &CampaignSpec) {
    let r = &out.report;
    t.sums.add(&Sums::of_run(r, failed, entry.determinism == Some(false)));
    let keep = entry.failed() && c.report_dir.is_some() && c.max_artifacts > 0;
    t.entries.push((i, entry));
    if failed {
        t.failures.push((i, r.clone()));
    }
    if keep {
        let replay = ReplayFile::from_outcome(&out, &c.profile_arg);
        t.kept.insert(i, (out, replay, real));
        if t.kept.len() > c.max_artifacts {
            t.kept.pop_last();
        }
    }
}

/// Per check that ran: its name, the runs it failed in and what it
/// asserts. A report from before campaigns listed their checks falls back
/// to the engine's table for its mode.
pub fn checks_table(rep: &CampaignReport) -> String {
    let mut failed: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &rep.runs {
        for c in &r.checks_failed {
            *failed.entry(c.as_str()).or_insert(0) += 1;
        }
    }
    let rows = if rep.checks.is_empty() {
        let mode = DeliveryMode::parse(&rep.mode).unwrap_or(DeliveryMode::ExactlyOnce);
        check_rows(&[], mode)
    } else {
        rep.checks.clone()
    };
    let id_w = rows.iter().map(|r| r.id.len()).chain([6]).max().unwrap_or(6);
    let name_w = rows.iter().map(|r| r.name.len()).chain([22]).max().unwrap_or(22);
    let mut s = format!("{:<id_w$} {:<name_w$} {:>11}  {}\n", "check", "name", "failed_runs", "asserts");
    for c in &rows {
        s.push_str(&format!(
            "{:<id_w$} {:<name_w$} {:>11}  {}\n",
            c.id,
            c.name,
            failed.get(c.id.as_str()).copied().unwrap_or(0),
            c.meaning
        ));
    }
    s
}

/// How many runs had a fault while their job ran: a fault that lands after
/// the job finished tests nothing, so a campaign whose faults mostly miss
/// the job is a weak one, whatever its verdict.
pub fn effective_line(rep: &CampaignReport) -> String {
    let runs = rep.runs.len();
    let hit = rep.runs.iter().filter(|r| r.effective_faults > 0).count();
    let effective: u64 = rep.runs.iter().map(|r| r.effective_faults).sum();
    let late: u64 = rep.runs.iter().map(|r| r.late_faults).sum();
    format!(
        "effective faults (started while the job ran): {effective}, {late} more after it finished; runs with one: {hit} of {runs} ({:.1}%)\n",
        effective_share(rep) * 100.0
    )
}

/// Which reachability points the campaign's runs reached, and the ones
/// none reached (a warning: states this campaign never tested).
pub fn reach_line(rep: &CampaignReport) -> String {
    reach_line_of(&rep.never_reached)
}

/// The reachability line of any set of runs, from the points none reached
/// (`campaign_report::never_reached`).
pub fn reach_line_of(never_reached: &[String]) -> String {
    let total = exactsim_engine::observe::Reach::ALL.len();
    let mut line = format!("reachability points reached: {} of {total}", total - never_reached.len());
    if !never_reached.is_empty() {
        line.push_str(&format!("; warning: never reached (untested states): {}", never_reached.join(", ")));
    }
    line.push('\n');
    line
}

/// The share of runs with at least one effective fault (0 for no runs).
pub fn effective_share(rep: &CampaignReport) -> f64 {
    if rep.runs.is_empty() {
        return 0.0;
    }
    rep.runs.iter().filter(|r| r.effective_faults > 0).count() as f64 / rep.runs.len() as f64
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
    // The tallies hold fault kinds (`corrupt_reads`: windows opened) and
    // what they did (`corrupt_read`: disk reads corrupted): two lines, so
    // that one is not read as a typo of the other.
    let (kinds, effects): (Vec<_>, Vec<_>) =
        rep.faults.iter().partition(|(k, _)| exactsim_model::schedule::kind_named(k).is_some());
    let join = |v: Vec<(&String, &u64)>| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.iter().map(|(k, n)| format!("{k}={n}")).collect::<Vec<_>>().join(" ")
        }
    };
    s.push_str(&format!("faults injected (by kind): {}\n", join(kinds)));
    s.push_str(&effective_line(rep));
    s.push_str(&reach_line(rep));
    if !effects.is_empty() {
        s.push_str(&format!("their effects (disk operations and crashed writes hit): {}\n", join(effects)));
    }
    s.push_str(&checks_table(rep));
    s.push_str(&format!(
        "verdict={} runs={}{} failed={} determinism_failures={} wall_ms={} seeds/s={:.1} profile={} mode={}{}\n",
        rep.verdict,
        rep.runs.len(),
        if rep.interrupted { format!(" (interrupted: {} planned)", rep.runs_planned) } else { String::new() },
        rep.runs.iter().filter(|r| r.failed()).count(),
        rep.determinism_failures,
        rep.wall_ms,
        rep.seeds_per_sec,
        rep.profile,
        rep.mode,
        rep.mutant.as_ref().map(|m| format!(" mutant={m}")).unwrap_or_default()
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use exactsim_model::schedule::Profile;

    /// `Sums` is a monoid: adding runs one at a time, or in groups that are
    /// then added (shards merged), or in another order, gives the same
    /// totals; the empty sum changes nothing.
    #[test]
    fn sums_add_up_the_same_in_any_grouping() {
        let runs: Vec<RunReport> = [("word_count", 1u64), ("inventory", 2), ("word_count", 3), ("copier", 4)]
            .into_iter()
            .map(|(sc, seed)| {
                let s = crate::spec(
                    crate::resolve_scenario(sc).unwrap(),
                    seed,
                    Profile::named("chaos").unwrap(),
                    DeliveryMode::ExactlyOnce,
                    None,
                );
                crate::run_one(s, "chaos").report
            })
            .collect();
        let one = |r: &RunReport, i: usize| Sums::of_run(r, i == 1, i == 2);
        let mut serial = Sums::default();
        for (i, r) in runs.iter().enumerate() {
            serial.add(&one(r, i));
        }
        let (mut a, mut b) = (Sums::default(), Sums::default());
        for (i, r) in runs.iter().enumerate() {
            if i % 2 == 0 { &mut a } else { &mut b }.add(&one(r, i));
        }
        let mut grouped = b.clone();
        grouped.add(&a);
        assert_eq!(grouped, serial);
        let mut with_empty = serial.clone();
        with_empty.add(&Sums::default());
        assert_eq!(with_empty, serial);
        assert_eq!(serial.scenarios["word_count"].runs, 2);
        assert_eq!(serial.scenarios.values().map(|s| s.failed_runs).sum::<u64>(), 1);
        assert_eq!(serial.determinism_failures, 1);
        let faults: u64 = runs.iter().map(|r| r.faults.values().sum::<u64>()).sum();
        assert_eq!(serial.faults.values().sum::<u64>(), faults);
        assert!(faults > 0, "chaos runs inject faults");
    }
}
