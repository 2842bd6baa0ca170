//! What a campaign reports (`campaign.json`): the report, its runs, its
//! per-scenario and per-check rows, and [`Sums`], the one place its totals
//! are added up. Plain data: `campaign` fills it, `merge` combines shards
//! of it, `junit` renders it, and none of them depends on another for it.

use exactsim_engine::observe::Reach;
use exactsim_model::report::{RunReport, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A check as a campaign report lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckRow {
    pub id: String,
    pub name: String,
    /// What it asserts, in one line.
    pub meaning: String,
    /// The scenario whose own check it is; absent for the engine's checks,
    /// which judge every run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
}

impl CheckRow {
    pub(crate) fn of(c: &exactsim_model::checks::CheckInfo) -> CheckRow {
        CheckRow { id: c.id.into(), name: c.name.into(), meaning: c.meaning.into(), scenario: None }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunEntry {
    pub scenario: String,
    pub seed: u64,
    pub verdict: Verdict,
    pub trace_hash: String,
    pub checks_failed: Vec<String>,
    /// Whether a second run of the seed gave the same trace (when checked).
    pub determinism: Option<bool>,
    /// The second run's trace hash when it differed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub determinism_trace_hash: Option<String>,
    pub wall_ms: u64,
    /// Faults that started while the job ran (`RunReport::effective_faults`).
    #[serde(default)]
    pub effective_faults: u64,
    /// Faults that landed after the job had finished.
    #[serde(default)]
    pub late_faults: u64,
    /// The first violation, on one line (failing runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The command that reproduces the run (failing runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repro: Option<String>,
    /// The folder of its artifacts under the report directory, if written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<String>,
}

impl RunEntry {
    /// Failed a check, or failed the determinism check.
    pub fn failed(&self) -> bool {
        !self.verdict.is_pass() || self.determinism == Some(false)
    }
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

impl ScenarioSummary {
    /// One run's share.
    pub fn of_run(r: &RunReport, failed: bool) -> ScenarioSummary {
        ScenarioSummary {
            runs: 1,
            violations: r.violations.len() as u64,
            failed_runs: failed as u64,
            faults: r.faults.values().sum::<u64>(),
            checkpoints: r.checkpoints.completed,
            recoveries: r.recoveries,
            duplicates: r.output.duplicates,
            events: r.events,
            sim_time_ms: r.sim_time_ms,
            wall_ms: r.wall_ms,
        }
    }

    /// The sum of two (the monoid [`Sums`] is made of).
    pub fn add(&mut self, x: &ScenarioSummary) {
        self.runs += x.runs;
        self.violations += x.violations;
        self.failed_runs += x.failed_runs;
        self.faults += x.faults;
        self.checkpoints += x.checkpoints;
        self.recoveries += x.recoveries;
        self.duplicates += x.duplicates;
        self.events += x.events;
        self.sim_time_ms += x.sim_time_ms;
        self.wall_ms += x.wall_ms;
    }
}

/// **The one place a campaign's totals are summed**: per scenario, faults
/// by kind, coverage cells (runs that hit each) and determinism failures.
/// A monoid: `campaign` adds one run at a time ([`Sums::of_run`]), `merge`
/// adds whole shard reports ([`Sums::of_report`]), and any grouping gives
/// the same totals.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sums {
    pub scenarios: BTreeMap<String, ScenarioSummary>,
    pub faults: BTreeMap<String, u64>,
    pub coverage: BTreeMap<String, u64>,
    /// Reachability points: runs that reached each.
    pub reached: BTreeMap<String, u64>,
    pub determinism_failures: u64,
}

impl Sums {
    /// One run's totals.
    pub fn of_run(r: &RunReport, failed: bool, determinism_failed: bool) -> Sums {
        Sums {
            scenarios: [(r.scenario.clone(), ScenarioSummary::of_run(r, failed))].into(),
            faults: r.faults.clone(),
            coverage: r.coverage.iter().map(|c| (c.clone(), 1)).collect(),
            reached: r.reached.keys().map(|p| (p.clone(), 1)).collect(),
            determinism_failures: determinism_failed as u64,
        }
    }

    /// A report's totals, as it recorded them.
    pub fn of_report(rep: &CampaignReport) -> Sums {
        Sums {
            scenarios: rep.scenarios.clone(),
            faults: rep.faults.clone(),
            coverage: rep.coverage.clone(),
            reached: rep.reached.clone(),
            determinism_failures: rep.determinism_failures,
        }
    }

    pub fn add(&mut self, o: &Sums) {
        for (name, x) in &o.scenarios {
            self.scenarios.entry(name.clone()).or_default().add(x);
        }
        for (k, v) in &o.faults {
            *self.faults.entry(k.clone()).or_insert(0) += v;
        }
        for (k, v) in &o.coverage {
            *self.coverage.entry(k.clone()).or_insert(0) += v;
        }
        for (k, v) in &o.reached {
            *self.reached.entry(k.clone()).or_insert(0) += v;
        }
        self.determinism_failures += o.determinism_failures;
    }

    /// Write the totals into `rep`.
    pub fn store(self, rep: &mut CampaignReport) {
        rep.scenarios = self.scenarios;
        rep.faults = self.faults;
        rep.coverage = self.coverage;
        rep.never_reached = never_reached(&self.reached);
        rep.reached = self.reached;
        rep.determinism_failures = self.determinism_failures;
    }
}

/// The declared reachability points missing from `reached`, in
/// declaration order.
pub fn never_reached(reached: &BTreeMap<String, u64>) -> Vec<String> {
    Reach::ALL.iter().map(|p| p.name()).filter(|n| !reached.contains_key(*n)).map(String::from).collect()
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
    /// Every check that judged the campaign's runs (the engine's for its
    /// mode, each scenario's own, `panic`), in report order: the table of
    /// checks reads it, so a merged report lists what its shards ran.
    #[serde(default)]
    pub checks: Vec<CheckRow>,
    /// Continuous mode: the time budget as given (`10m`).
    #[serde(default)]
    pub budget: Option<String>,
    /// A merged report: the shard reports it was made from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
    pub code_version: String,
    pub verdict: Verdict,
    /// Stopped by a signal: `runs` holds the runs completed before it.
    pub interrupted: bool,
    /// Runs the campaign set out to do (`runs` has fewer if interrupted).
    pub runs_planned: u64,
    pub wall_ms: u64,
    pub seeds_per_sec: f64,
    pub faults: BTreeMap<String, u64>,
    pub coverage: BTreeMap<String, u64>,
    /// Reachability points (`observe::Reach`): how many runs reached each.
    #[serde(default)]
    pub reached: BTreeMap<String, u64>,
    /// The declared points no run reached, in declaration order: states
    /// this campaign never tested.
    #[serde(default)]
    pub never_reached: Vec<String>,
    pub scenarios: BTreeMap<String, ScenarioSummary>,
    pub determinism_failures: u64,
    /// Failing runs with full artifacts, and failing runs left with one
    /// line in `runs` because of `--max-artifacts`.
    pub max_artifacts: usize,
    pub artifacts_written: u64,
    pub artifacts_left_out: u64,
    pub runs: Vec<RunEntry>,
    /// Failing runs' reports, in seed order.
    #[serde(skip)]
    pub failures: Vec<RunReport>,
    /// Reports or artifacts that could not be written (a full disk, a
    /// missing permission): the caller prints them; they change the exit
    /// code only when the verdict is a pass.
    #[serde(skip)]
    pub write_errors: Vec<String>,
}
