//! `exactsim merge`: the shard reports of one campaign (each a `campaign.json`
//! written by `campaign --report DIR --shard K/N`) put back together into one
//! report, one verdict and one JUnit file.
//!
//! A merge refuses (one line, exit 2) reports of different campaigns (code
//! version, profile, mode, mutant, scenarios, first seed, seed range, shard
//! count, budget), a missing shard, and a shard whose runs are not exactly
//! its share of the seeds (an interrupted or truncated shard). A shard given
//! twice (a requeued job) is accepted only if both copies agree on the trace
//! hash of every seed they share; the copy with more runs is kept. The
//! figures, fault counts and coverage matrix are summed, the runs listed in
//! the order one unsharded campaign lists them, and the artifact folders of
//! failing seeds copied into the merged report's directory.
//!
//! Continuous campaigns (`--budget`) merge the same way: their shards share
//! the first seed and the budget, and each covers its own share of the
//! range it got through.

use crate::campaign::{CampaignReport, ShardSeeds, Sums, SEEDS_MAX, SHARDS_MAX};
use exactsim_model::report::RunReport;
use exactsim_model::report::Verdict;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One input: where it came from and what it says.
pub struct ShardReport {
    pub label: String,
    pub dir: PathBuf,
    pub report: CampaignReport,
}

/// The shard `(k, n)` of a report; an unsharded report is shard 1/1. A
/// count past [`SHARDS_MAX`] is refused before anything loops over it.
fn shard_of(s: &ShardReport) -> Result<(u64, u64), String> {
    let Some(text) = &s.report.shard else { return Ok((1, 1)) };
    let bad = || format!("{}: malformed \"shard\": \"{text}\" in the report (expected K/N with 1 <= K <= N)", s.label);
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let (k, n) = (k.parse::<u64>().map_err(|_| bad())?, n.parse::<u64>().map_err(|_| bad())?);
    if k == 0 || k > n {
        return Err(bad());
    }
    if n > SHARDS_MAX {
        return Err(format!("{}: \"shard\": \"{text}\" has a shard count out of range (1 to {SHARDS_MAX})", s.label));
    }
    Ok((k, n))
}

/// What makes two reports shards of one campaign, as (field, value) pairs.
fn identity(r: &CampaignReport, n: u64) -> Vec<(&'static str, String)> {
    let mut id = vec![
        ("code version", r.code_version.clone()),
        ("profile", r.profile.clone()),
        ("mode", r.mode.clone()),
        ("mutant", r.mutant.clone().unwrap_or_else(|| "none".into())),
        ("scenarios", r.scenario_names.join(",")),
        ("first seed", r.first_seed.to_string()),
        ("shard count", n.to_string()),
        ("budget", r.budget.clone().unwrap_or_else(|| "none".into())),
    ];
    // A continuous campaign's shards each get through their own range.
    if r.budget.is_none() {
        id.push(("seed range", r.seeds.to_string()));
    }
    id
}

type RunKey = (String, u64);

/// Checks that `shards` are the whole of one campaign and merges them.
/// `Err` is a one-line refusal (exit 2). The result has no `failures` yet:
/// `merge_dirs` loads them from the artifacts.
pub fn combine(shards: &[ShardReport]) -> Result<(CampaignReport, Vec<usize>), String> {
    let first = shards.first().ok_or("merge: no shard reports given")?;
    let mut by_shard: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    let (_, n) = shard_of(first)?;
    let want = identity(&first.report, n);
    for (i, s) in shards.iter().enumerate() {
        let k = check_shard(s, first, n, &want)?;
        by_shard.entry(k).or_default().push(i);
    }
    let missing: Vec<String> = (1..=n).filter(|k| !by_shard.contains_key(k)).map(|k| format!("{k}/{n}")).collect();
    if !missing.is_empty() {
        return Err(format!(
            "missing shard{} {} (the {} report(s) given hold shard{} {})",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", "),
            shards.len(),
            if by_shard.len() > 1 { "s" } else { "" },
            by_shard.keys().map(|k| format!("{k}/{n}")).collect::<Vec<_>>().join(", ")
        ));
    }
    let chosen = choose_copies(shards, &by_shard, n)?;
    let base = &first.report;
    let order: BTreeMap<&str, usize> = base.scenario_names.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
    let mut rep = CampaignReport {
        profile: base.profile.clone(),
        mode: base.mode.clone(),
        mutant: base.mutant.clone(),
        first_seed: base.first_seed,
        seeds: chosen.iter().map(|&i| shards[i].report.seeds).max().unwrap_or(0),
        shard: None,
        scenario_names: base.scenario_names.clone(),
        checks: base.checks.clone(),
        budget: base.budget.clone(),
        merged_from: chosen.iter().map(|&i| shards[i].label.clone()).collect(),
        code_version: base.code_version.clone(),
        verdict: Verdict::Pass,
        interrupted: false,
        runs_planned: 0,
        // The shards ran side by side: the campaign took as long as the
        // slowest.
        wall_ms: chosen.iter().map(|&i| shards[i].report.wall_ms).max().unwrap_or(0),
        seeds_per_sec: 0.0,
        faults: BTreeMap::new(),
        coverage: BTreeMap::new(),
        reached: BTreeMap::new(),
        never_reached: Vec::new(),
        scenarios: BTreeMap::new(),
        determinism_failures: 0,
        max_artifacts: chosen.iter().map(|&i| shards[i].report.max_artifacts).max().unwrap_or(0),
        artifacts_written: 0,
        artifacts_left_out: 0,
        runs: Vec::new(),
        failures: Vec::new(),
        write_errors: Vec::new(),
    };
    let mut failed = false;
    let mut sums = Sums::default();
    for &i in &chosen {
        let r = &shards[i].report;
        failed |= !r.verdict.is_pass();
        sums.add(&Sums::of_report(r));
        rep.runs.extend(r.runs.iter().cloned());
    }
    sums.store(&mut rep);
    rep.runs.sort_by_key(|r| (order.get(r.scenario.as_str()).copied(), r.seed.wrapping_sub(base.first_seed)));
    failed |= rep.runs.iter().any(|r| r.failed()) || rep.determinism_failures > 0;
    rep.runs_planned = rep.runs.len() as u64;
    rep.verdict = Verdict::of(failed);
    rep.seeds_per_sec = if rep.wall_ms == 0 { 0.0 } else { rep.runs.len() as f64 * 1000.0 / rep.wall_ms as f64 };
    // The union is exact: every scenario x seed of the campaign, once.
    let union: BTreeSet<RunKey> = rep.runs.iter().map(|r| (r.scenario.clone(), r.seed)).collect();
    assert_eq!(union.len(), rep.runs.len(), "the shares of distinct shards are disjoint");
    if base.budget.is_none() {
        assert_eq!(rep.runs.len() as u64, base.seeds * base.scenario_names.len() as u64, "the shares cover the range");
    }
    Ok((rep, chosen))
}

/// Check one shard report against the first one's identity (`want`, for
/// `n` shards): not merged already, not cut short, exactly its share of the
/// seeds, every scenario once. Returns its shard number.
fn check_shard(s: &ShardReport, first: &ShardReport, n: u64, want: &[(&'static str, String)]) -> Result<u64, String> {
    if !s.report.merged_from.is_empty() {
        return Err(format!("{}: already a merged report (merge the shard reports instead)", s.label));
    }
    if s.report.scenario_names.is_empty() {
        return Err(format!("{}: the report lists no scenarios (written by an older exactsim?)", s.label));
    }
    let (k, this_n) = shard_of(s)?;
    if s.report.interrupted && s.report.budget.is_none() {
        return Err(format!(
            "{}: shard {k}/{this_n} was interrupted ({} of its {} runs done)",
            s.label,
            s.report.runs.len(),
            s.report.runs_planned
        ));
    }
    for ((field, a), (_, b)) in want.iter().zip(identity(&s.report, this_n)) {
        if *a != b {
            return Err(format!("foreign shard: {} has {field} {b}, {} has {field} {a}", s.label, first.label));
        }
    }
    // A campaign, continuous or not, covers at most SEEDS_MAX seeds.
    if s.report.seeds > SEEDS_MAX {
        return Err(format!("{}: \"seeds\": {} is out of range (0 to {SEEDS_MAX})", s.label, s.report.seeds));
    }
    // Exactly this shard's share of the seeds, every scenario, once.
    // Checked run by run against the share's arithmetic: the seed count
    // a report claims sizes nothing here, only the runs it holds do.
    let share = ShardSeeds::new(s.report.first_seed, s.report.seeds, Some((k, n)));
    let in_share = |seed: u64| {
        let i = seed.wrapping_sub(s.report.first_seed);
        i < s.report.seeds && i % n == k - 1
    };
    let mut got: BTreeSet<RunKey> = BTreeSet::new();
    for r in &s.report.runs {
        let key = (r.scenario.clone(), r.seed);
        if !s.report.scenario_names.contains(&r.scenario) || !in_share(r.seed) {
            return Err(format!(
                "{}: shard {k}/{n} has {} seed {}, which is not in its share of the seeds",
                s.label, r.scenario, r.seed
            ));
        }
        // The artifact folder is a name under the shard's directory,
        // copied under the merged one: nothing that leads elsewhere.
        if let Some(a) = &r.artifacts {
            let mut parts = Path::new(a).components();
            if !matches!((parts.next(), parts.next()), (Some(std::path::Component::Normal(_)), None)) {
                return Err(format!(
                    "{}: {} seed {} has artifacts '{a}', which is not a folder name",
                    s.label, r.scenario, r.seed
                ));
            }
        }
        if !got.insert(key) {
            return Err(format!("{}: shard {k}/{n} lists {} seed {} twice", s.label, r.scenario, r.seed));
        }
    }
    let expected = share.len().saturating_mul(s.report.scenario_names.len() as u64);
    if (got.len() as u64) < expected {
        // The first run missing, in (scenario, seed) order: the search
        // stops there, after at most as many steps as there are runs.
        let mut names: Vec<&String> = s.report.scenario_names.iter().collect();
        names.sort();
        let share = &share;
        let missing = names
            .iter()
            .flat_map(|sc| (0..share.len()).map(move |j| (sc, share.get(j))))
            .find(|(sc, seed)| !got.contains(&((**sc).clone(), *seed)))
            .expect("fewer runs than the share: one is missing");
        return Err(format!(
            "{}: shard {k}/{n} lacks {} seed {} and {} more of its {expected} runs (interrupted?)",
            s.label,
            missing.0,
            missing.1,
            expected - got.len() as u64 - 1,
        ));
    }
    Ok(k)
}

/// One copy of each shard: a shard run twice must have the same runs in
/// both copies (then the one with more runs is taken).
fn choose_copies(shards: &[ShardReport], by_shard: &BTreeMap<u64, Vec<usize>>, n: u64) -> Result<Vec<usize>, String> {
    let mut chosen: Vec<usize> = Vec::new();
    for (k, copies) in by_shard {
        let mut best = copies[0];
        for &c in &copies[1..] {
            let hashes = |i: usize| -> BTreeMap<RunKey, &str> {
                shards[i].report.runs.iter().map(|r| ((r.scenario.clone(), r.seed), r.trace_hash.as_str())).collect()
            };
            let (a, b) = (hashes(copies[0]), hashes(c));
            for (key, ha) in &a {
                if let Some(hb) = b.get(key) {
                    if ha != hb {
                        return Err(format!(
                            "shard {k}/{n} is given twice ({} and {}) and they disagree on {} seed {}: \
                             trace_hash {ha} vs {hb}",
                            shards[copies[0]].label, shards[c].label, key.0, key.1
                        ));
                    }
                }
            }
            if shards[c].report.runs.len() > shards[best].report.runs.len() {
                best = c;
            }
        }
        chosen.push(best);
    }
    Ok(chosen)
}

/// Largest shard report read: a device passed by mistake (`/dev/zero`) must
/// not fill the memory. A campaign.json holds a few hundred bytes per run:
/// this is about a million runs.
pub const SHARD_REPORT_BYTES_MAX: u64 = 256 << 20;

/// Reads the report of a shard: `DIR/campaign.json`, or the file itself.
pub fn load(path: &Path) -> Result<ShardReport, String> {
    let (file, dir) = if path.is_dir() {
        (path.join("campaign.json"), path.to_path_buf())
    } else {
        (path.to_path_buf(), path.parent().map(Path::to_path_buf).unwrap_or_default())
    };
    let text = exactsim_model::schedule::read_text_capped(&file, SHARD_REPORT_BYTES_MAX)
        .map_err(|e| format!("cannot read shard report {}: {e}", file.display()))?;
    let report: CampaignReport = serde_json::from_str(&text).map_err(|e| {
        format!("{}: not a campaign report: {}", file.display(), exactsim_model::schedule::one_line(&e.to_string()))
    })?;
    Ok(ShardReport { label: path.display().to_string(), dir, report })
}

/// Copies a directory's files (one level of subfolders is all a failing
/// seed's folder has, but any depth is copied).
fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    crate::artifacts::create_dir(to)?;
    let rd = std::fs::read_dir(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    for e in rd {
        let e = e.map_err(|e| format!("cannot read {}: {e}", from.display()))?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            match std::fs::read_to_string(&src) {
                Ok(text) => crate::artifacts::write_file(&dst, &text)?,
                Err(_) => {
                    std::fs::copy(&src, &dst).map_err(|e| format!("cannot copy {}: {e}", src.display()))?;
                }
            }
        }
    }
    Ok(())
}

/// The merged report and warnings for the user.
pub struct Merged {
    pub report: CampaignReport,
    pub warnings: Vec<String>,
}

/// `exactsim merge DIR... --report OUT [--junit F]`. `Err` is a refusal
/// (exit 2); files that could not be written are in `write_errors`.
///
/// A directory without a `campaign.json` is a shard that did not finish (a
/// job killed before its report was written, a requeued attempt): it is
/// named in the refusal if its shard is missing, and in a warning if
/// another copy of every shard is there.
pub fn merge_dirs(dirs: &[PathBuf], out: &Path, junit: Option<&Path>) -> Result<Merged, String> {
    let mut shards = Vec::new();
    let mut empty = Vec::new();
    for d in dirs {
        if d.is_dir() && !d.join("campaign.json").exists() {
            empty.push(d.display().to_string());
        } else {
            shards.push(load(d)?);
        }
    }
    let no_report =
        if empty.is_empty() { String::new() } else { format!("; no campaign.json in {}", empty.join(", ")) };
    let out_abs = std::fs::canonicalize(out).ok();
    for s in &shards {
        if out_abs.is_some() && std::fs::canonicalize(&s.dir).ok() == out_abs {
            return Err(format!("--report {} is one of the shard directories", out.display()));
        }
    }
    let (mut rep, chosen) = combine(&shards).map_err(|e| format!("{e}{no_report}"))?;
    let warnings: Vec<String> =
        empty.iter().map(|d| format!("{d} holds no campaign.json (a shard that did not finish?); ignored")).collect();
    crate::artifacts::create_dir(out)?;
    // Failing seeds: their folders, and their reports for the JUnit file.
    let mut from: BTreeMap<RunKey, &ShardReport> = BTreeMap::new();
    for &i in &chosen {
        for r in &shards[i].report.runs {
            from.insert((r.scenario.clone(), r.seed), &shards[i]);
        }
    }
    let mut failures: Vec<RunReport> = Vec::new();
    for r in rep.runs.iter_mut().filter(|r| r.failed()) {
        let s = from[&(r.scenario.clone(), r.seed)];
        let Some(folder) = r.artifacts.clone() else { continue };
        let src = s.dir.join(&folder);
        if !src.is_dir() {
            r.artifacts = None; // listed, but not with the shard's report
            continue;
        }
        if let Err(e) = copy_dir(&src, &out.join(&folder)) {
            rep.write_errors.push(e);
            r.artifacts = None;
            continue;
        }
        if !r.verdict.is_pass() {
            if let Some(f) = std::fs::read_to_string(src.join("report.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<RunReport>(&t).ok())
            {
                failures.push(f);
            }
        }
    }
    let failing = rep.runs.iter().filter(|r| r.failed()).count() as u64;
    rep.artifacts_written = rep.runs.iter().filter(|r| r.failed() && r.artifacts.is_some()).count() as u64;
    rep.artifacts_left_out = failing - rep.artifacts_written;
    rep.failures = failures;
    let json = serde_json::to_string_pretty(&rep).expect("serializable");
    if let Err(e) = crate::artifacts::write_file(&out.join("campaign.json"), &json) {
        rep.write_errors.push(e);
    }
    if let Some(j) = junit {
        if let Err(e) = crate::artifacts::write_file(j, &crate::junit::render(&rep)) {
            rep.write_errors.push(e);
        }
    }
    Ok(Merged { report: rep, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::{shard_seeds, RunEntry, ScenarioSummary};

    /// A shard report as `campaign` writes it, with made-up trace hashes.
    fn shard(k: u64, n: u64, seeds: u64, failing_seed: Option<u64>) -> ShardReport {
        let scenarios = ["a", "b"];
        let mut runs = Vec::new();
        let mut summaries = BTreeMap::new();
        for sc in scenarios {
            for seed in shard_seeds(100, seeds, Some((k, n))) {
                let fail = failing_seed == Some(seed);
                runs.push(RunEntry {
                    scenario: sc.into(),
                    seed,
                    verdict: Verdict::of(fail),
                    trace_hash: format!("{sc}{seed:x}"),
                    checks_failed: if fail { vec!["P1".into()] } else { vec![] },
                    determinism: None,
                    determinism_trace_hash: None,
                    wall_ms: 1,
                    effective_faults: seed % 3,
                    late_faults: seed % 2,
                    message: fail.then(|| "P1 exactly-once-output: 1 lost".into()),
                    repro: fail.then(|| format!("cargo run --release -- run --scenario {sc} --seed {seed}")),
                    artifacts: fail.then(|| format!("{sc}-{seed}")),
                });
                let s: &mut ScenarioSummary = summaries.entry(sc.to_string()).or_default();
                s.runs += 1;
                s.failed_runs += fail as u64;
                s.events += seed;
            }
        }
        ShardReport {
            label: format!("shard{k}"),
            dir: PathBuf::new(),
            report: CampaignReport {
                profile: "chaos".into(),
                mode: "exactly-once".into(),
                mutant: None,
                first_seed: 100,
                seeds,
                shard: Some(format!("{k}/{n}")),
                scenario_names: scenarios.iter().map(|s| s.to_string()).collect(),
                checks: vec![],
                budget: None,
                merged_from: vec![],
                code_version: "v1".into(),
                verdict: Verdict::of(runs.iter().any(|r| !r.verdict.is_pass())),
                interrupted: false,
                runs_planned: runs.len() as u64,
                max_artifacts: 20,
                artifacts_written: 0,
                artifacts_left_out: 0,
                wall_ms: 10 * k,
                seeds_per_sec: 1.0,
                faults: [("crash".to_string(), k)].into(),
                coverage: [("crash@commit".to_string(), 1)].into(),
                reached: [("txn_expired".to_string(), 1)].into(),
                never_reached: Vec::new(),
                scenarios: summaries,
                determinism_failures: 0,
                runs,
                failures: vec![],
                write_errors: vec![],
            },
        }
    }

    #[test]
    fn three_shards_merge_into_the_whole_range_in_campaign_order() {
        let shards = vec![shard(3, 3, 10, None), shard(1, 3, 10, Some(103)), shard(2, 3, 10, None)];
        let (rep, chosen) = combine(&shards).unwrap();
        assert_eq!(chosen, vec![1, 2, 0]);
        assert_eq!(rep.verdict, Verdict::Fail);
        assert_eq!(rep.runs.len(), 20);
        let order: Vec<(String, u64)> = rep.runs.iter().map(|r| (r.scenario.clone(), r.seed)).collect();
        let whole: Vec<(String, u64)> =
            ["a", "b"].iter().flat_map(|s| (100..110).map(move |x| (s.to_string(), x))).collect();
        assert_eq!(order, whole);
        assert_eq!(rep.faults["crash"], 1 + 2 + 3);
        assert_eq!(rep.coverage["crash@commit"], 3);
        assert_eq!(rep.reached["txn_expired"], 3, "runs that reached a point are summed too");
        assert!(!rep.never_reached.contains(&"txn_expired".to_string()));
        assert!(rep.never_reached.contains(&"notify_finds_nothing".to_string()), "recomputed from the sum");
        assert_eq!(rep.scenarios["a"].runs, 10);
        assert_eq!(rep.scenarios["b"].failed_runs, 1);
        assert_eq!(rep.scenarios["a"].events, (100..110).sum::<u64>());
        assert_eq!(rep.wall_ms, 30);
        assert_eq!(rep.shard, None);
        assert_eq!(rep.merged_from, vec!["shard1", "shard2", "shard3"]);
        let (pass, _) = combine(&[shard(1, 2, 4, None), shard(2, 2, 4, None)]).unwrap();
        assert_eq!(pass.verdict, Verdict::Pass);
    }

    #[test]
    fn a_missing_shard_is_named() {
        let e = combine(&[shard(1, 4, 8, None), shard(2, 4, 8, None), shard(4, 4, 8, None)]).err().unwrap();
        assert_eq!(e, "missing shard 3/4 (the 3 report(s) given hold shards 1/4, 2/4, 4/4)");
        let e = combine(&[shard(2, 3, 8, None)]).err().unwrap();
        assert!(e.starts_with("missing shards 1/3, 3/3"), "{e}");
    }

    #[test]
    fn a_foreign_shard_is_refused() {
        let mut other = shard(2, 2, 8, None);
        other.report.profile = "crash".into();
        let e = combine(&[shard(1, 2, 8, None), other]).err().unwrap();
        assert_eq!(e, "foreign shard: shard2 has profile crash, shard1 has profile chaos");
        for (field, edit) in [
            ("code version", Box::new(|r: &mut CampaignReport| r.code_version = "v2".into()) as Box<dyn Fn(&mut _)>),
            ("mode", Box::new(|r: &mut CampaignReport| r.mode = "at-least-once".into())),
            ("mutant", Box::new(|r: &mut CampaignReport| r.mutant = Some("canary".into()))),
            ("scenarios", Box::new(|r: &mut CampaignReport| r.scenario_names.reverse())),
            ("first seed", Box::new(|r: &mut CampaignReport| r.first_seed = 0)),
            ("seed range", Box::new(|r: &mut CampaignReport| r.seeds = 9)),
            ("shard count", Box::new(|r: &mut CampaignReport| r.shard = Some("2/3".into()))),
            ("budget", Box::new(|r: &mut CampaignReport| r.budget = Some("1m".into()))),
        ] {
            let mut s = shard(2, 2, 8, None);
            edit(&mut s.report);
            let e = combine(&[shard(1, 2, 8, None), s]).err().unwrap();
            assert!(e.starts_with(&format!("foreign shard: shard2 has {field} ")), "{field}: {e}");
        }
    }

    #[test]
    fn a_shard_must_hold_exactly_its_share() {
        let mut short = shard(2, 2, 8, None);
        short.report.runs.pop();
        let e = combine(&[shard(1, 2, 8, None), short]).err().unwrap();
        assert_eq!(e, "shard2: shard 2/2 lacks b seed 107 and 0 more of its 8 runs (interrupted?)");
        let mut stray = shard(2, 2, 8, None);
        stray.report.runs[0].seed = 100;
        let e = combine(&[shard(1, 2, 8, None), stray]).err().unwrap();
        assert!(e.contains("shard 2/2 has a seed 100, which is not in its share"), "{e}");
        let mut stopped = shard(2, 2, 8, None);
        stopped.report.interrupted = true;
        stopped.report.runs.truncate(3);
        let e = combine(&[shard(1, 2, 8, None), stopped]).err().unwrap();
        assert_eq!(e, "shard2: shard 2/2 was interrupted (3 of its 8 runs done)");
        let mut escape = shard(2, 2, 8, None);
        escape.report.runs[0].artifacts = Some("../../etc".into());
        let e = combine(&[shard(1, 2, 8, None), escape]).err().unwrap();
        assert_eq!(e, "shard2: a seed 101 has artifacts '../../etc', which is not a folder name");
        let mut twice = shard(2, 2, 8, None);
        let r = twice.report.runs[0].clone();
        twice.report.runs.push(r);
        let e = combine(&[shard(1, 2, 8, None), twice]).err().unwrap();
        assert!(e.contains("lists a seed 101 twice"), "{e}");
    }

    #[test]
    fn a_shard_given_twice_must_agree_seed_by_seed() {
        let again = shard(2, 2, 8, None);
        let (rep, chosen) = combine(&[shard(1, 2, 8, None), shard(2, 2, 8, None), again]).unwrap();
        assert_eq!(chosen, vec![0, 1]);
        assert_eq!(rep.runs.len(), 16);
        let mut differs = shard(2, 2, 8, None);
        differs.label = "requeued".into();
        differs.report.runs[1].trace_hash = "ffff".into();
        let e = combine(&[shard(1, 2, 8, None), shard(2, 2, 8, None), differs]).err().unwrap();
        assert_eq!(
            e,
            "shard 2/2 is given twice (shard2 and requeued) and they disagree on a seed 103: trace_hash a67 vs ffff"
        );
    }

    #[test]
    fn shard_shares_counts_and_ranges_agree() {
        use crate::campaign::{seed_range_of, ShardSeeds};
        let shard_seed_count = |n: u64, sh: Option<(u64, u64)>| ShardSeeds::new(7, n, sh).len();
        for of in 1..6 {
            for k in 1..=of {
                let all = shard_seeds(7, 40, Some((k, of)));
                for n in 0..30 {
                    assert_eq!(shard_seed_count(n, Some((k, of))) as usize, shard_seeds(7, n, Some((k, of))).len());
                }
                // A continuous shard that ran its first m seeds records the
                // range whose share is exactly those seeds.
                for m in 0..6 {
                    let range = seed_range_of(m as u64, Some((k, of)));
                    assert_eq!(shard_seeds(7, range, Some((k, of))), all[..m].to_vec(), "k={k} of={of} m={m}");
                }
            }
        }
        assert_eq!(seed_range_of(5, None), 5);
        assert_eq!(shard_seed_count(u64::MAX, Some((2, 4))), u64::MAX / 4 + 1);
    }

    #[test]
    fn the_determinism_sample_is_about_one_seed_in_ten() {
        let n = (0..10_000u64).filter(|s| crate::campaign::sampled_for_determinism(*s)).count();
        assert!((800..1200).contains(&n), "{n}");
        // Spread over shards: every shard of 4 gets its share.
        for k in 0..4u64 {
            let m = (0..10_000u64).filter(|s| s % 4 == k && crate::campaign::sampled_for_determinism(*s)).count();
            assert!((150..350).contains(&m), "shard {k}: {m}");
        }
    }

    #[test]
    fn continuous_shards_each_cover_their_own_range() {
        // Shard 1/2 got through 3 of its seeds (range 5), shard 2/2 through 2 (range 4).
        let mut a = shard(1, 2, 5, None);
        let mut b = shard(2, 2, 4, None);
        a.report.budget = Some("10m".into());
        b.report.budget = Some("10m".into());
        let (rep, _) = combine(&[a, b]).unwrap();
        let seeds: BTreeSet<u64> = rep.runs.iter().map(|r| r.seed).collect();
        assert_eq!(seeds, [100, 101, 102, 103, 104].into());
        assert_eq!(rep.seeds, 5);
        assert_eq!(rep.budget.as_deref(), Some("10m"));
    }

    #[test]
    fn fault_kinds_and_their_effects_print_apart() {
        let mut s = shard(1, 1, 2, None);
        s.report.faults = [("crash".to_string(), 2), ("corrupt_reads".to_string(), 1), ("corrupt_read".to_string(), 3)]
            .into_iter()
            .collect();
        let text = crate::campaign::summary_table(&s.report);
        assert!(text.contains("faults injected (by kind): corrupt_reads=1 crash=2\n"), "{text}");
        assert!(text.contains("their effects (disk operations and crashed writes hit): corrupt_read=3\n"), "{text}");
        s.report.faults.clear();
        let text = crate::campaign::summary_table(&s.report);
        assert!(text.contains("faults injected (by kind): none\n") && !text.contains("their effects"), "{text}");
    }

    #[test]
    fn huge_claims_are_refused_without_looping_over_them() {
        let mut s = shard(1, 1, 4, None);
        s.report.shard = Some("1/1000000000000".into());
        let e = combine(&[s]).err().unwrap();
        assert!(e.contains("\"shard\": \"1/1000000000000\" has a shard count out of range"), "{e}");
        let mut s = shard(1, 1, 4, None);
        s.report.seeds = 10_000_000_000_000;
        let e = combine(&[s]).err().unwrap();
        assert!(e.contains("\"seeds\": 10000000000000 is out of range"), "{e}");
        // Within the caps, a claim of many seeds with few runs is a shard
        // cut short, found without listing the seeds it claims.
        let mut s = shard(1, 1, 4, None);
        s.report.seeds = crate::campaign::SEEDS_MAX;
        let e = combine(&[s]).err().unwrap();
        assert!(e.contains("lacks a seed 104 and 19999991 more of its 20000000 runs"), "{e}");
    }
}
