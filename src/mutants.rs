//! Harness power: every planted bug through a campaign, seeds until the
//! first violation.

use crate::{run_one, spec};
use exactsim_engine::config::Mutant;
use exactsim_engine::types::DeliveryMode;
use exactsim_model::scenario::Scenario;
use exactsim_model::schedule::Profile;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The default hunting profile (see `Mutant::hunt_profile`).
pub const PROFILE: &str = "chaos";

#[derive(Clone, Debug)]
pub struct Detection {
    pub seeds_tried: u64,
    pub scenario: String,
    pub seed: u64,
    /// The first violation's check.
    pub check: String,
    /// Every check that failed in the detecting run, in table order.
    pub checks: Vec<String>,
    pub repro: String,
}

#[derive(Clone, Debug)]
pub struct MutantRow {
    pub mutant: Mutant,
    pub detected: Option<Detection>,
    pub seeds_tried: u64,
    pub wall_ms: u64,
}

/// Run seeds `first..first+budget` (cycling through the scenarios that
/// can reach the bug: those that name it as their own, else all) until the
/// mutant is caught. A museum bug (`Mutant::tracker`) hunted with the
/// gate's profile is hunted in the PR gate's order instead: every scenario
/// on seed `first`, then on the next seed, `budget` runs in all.
pub fn hunt(m: Mutant, scenarios: &[Arc<dyn Scenario>], budget: u64, first: u64) -> MutantRow {
    let name = m.hunt_profile();
    let profile = Profile::named(name).expect("built-in profile");
    let gate_order = m.tracker().is_some() && name == "zombie";
    hunt_with(m, scenarios, budget, first, gate_order, |sc, seed| {
        let out = run_one(spec(sc.clone(), seed, profile.clone(), DeliveryMode::ExactlyOnce, Some(m)), name);
        Ok((out.report.violations.iter().map(|v| v.check.clone()).collect(), out.report.repro.clone()))
    })
}

/// The PR gate against a planted bug: seeds `0..seeds` of `gate` (the
/// profile `ci/gate.toml`, given as `profile_arg`) in the gate's order,
/// every scenario on each seed, until the bug is caught.
pub fn hunt_on_gate(
    m: Mutant,
    scenarios: &[Arc<dyn Scenario>],
    gate: &Profile,
    profile_arg: &str,
    seeds: u64,
) -> MutantRow {
    let runs = seeds * hunting_ground(m, scenarios).len() as u64;
    hunt_with(m, scenarios, runs, 0, true, |sc, seed| {
        let out = run_one(spec(sc.clone(), seed, gate.clone(), DeliveryMode::ExactlyOnce, Some(m)), profile_arg);
        Ok((out.report.violations.iter().map(|v| v.check.clone()).collect(), out.report.repro.clone()))
    })
}

/// What one hunting run found: the checks that failed (in table order)
/// and its reproduce command; `Err`: the run could not be set up.
type Hunted = Result<(Vec<String>, String), String>;

/// [`hunt`] with the runs made by `run` (a simulated run, a real one).
fn hunt_with(
    m: Mutant,
    scenarios: &[Arc<dyn Scenario>],
    budget: u64,
    first: u64,
    gate_order: bool,
    mut run: impl FnMut(&Arc<dyn Scenario>, u64) -> Hunted,
) -> MutantRow {
    #[allow(clippy::disallowed_methods)]
    let t0 = std::time::Instant::now();
    let ground = hunting_ground(m, scenarios);
    let scenarios = &ground[..];
    for i in 0..budget {
        let sc = &scenarios[(i as usize) % scenarios.len()];
        let seed = first.wrapping_add(if gate_order { i / scenarios.len() as u64 } else { i });
        let Ok((mut checks, repro)) = run(sc, seed) else { continue };
        if let Some(check) = checks.first().cloned() {
            checks.dedup();
            return MutantRow {
                mutant: m,
                detected: Some(Detection {
                    seeds_tried: i + 1,
                    scenario: sc.name().to_string(),
                    seed,
                    check,
                    checks,
                    repro,
                }),
                seeds_tried: i + 1,
                wall_ms: t0.elapsed().as_millis() as u64,
            };
        }
    }
    MutantRow { mutant: m, detected: None, seeds_tried: budget, wall_ms: t0.elapsed().as_millis() as u64 }
}

/// Why a planted bug cannot show in real mode, if so: what it needs that
/// the kernel does not let a supervisor do to a process.
pub fn real_mode_gap(m: Mutant) -> Option<&'static str> {
    match m {
        Mutant::AckBeforeDurable => Some("needs a crash that loses unsynced writes; a kill -9 keeps the page cache"),
        Mutant::Kafka9666EpochBumpOnFailedWrite => {
            Some("needs failed log writes (disk errors); real mode has no fault-injecting file system")
        }
        Mutant::UpsertVersionOffByOne | Mutant::UpsertNoVersionGuard => Some(
            "lives in the simulated upsert table's guard; real mode runs PostgreSQL's statement, the correct guard",
        ),
        _ => None,
    }
}

/// The profile a planted bug is hunted with in real mode (and, side by
/// side, in simulation): its own hunting profile, or real mode's default
/// (`recovery`, faults aimed at the recovery windows) in place of `chaos`,
/// whose disk faults real mode cannot play.
pub fn real_profile(m: Mutant) -> &'static str {
    match m.hunt_profile() {
        PROFILE => crate::real::PROFILE_DEFAULT,
        p => p,
    }
}

/// `mutants --real`: every planted bug that can show in real mode (or those
/// in `only`), hunted with [`real_profile`] from the same seeds in
/// simulation and in real mode, runs and wall time to first detection side
/// by side. The real runs are made one at a time (their timing is the
/// point); `template` gives their options (node binary, latency).
pub fn compare_real(
    scenarios: &[Arc<dyn Scenario>],
    budget: u64,
    first: u64,
    only: &[Mutant],
    template: &crate::real::RealSpec,
) -> String {
    let mut out = format!(
        "{:<38} {:<14} {:>9} {:>9} {:>9} {:>9}  {}\n",
        "mutant", "profile", "sim_runs", "sim_ms", "real_runs", "real_ms", "real-mode note"
    );
    for m in Mutant::ALL {
        if !only.is_empty() && !only.contains(&m) {
            continue;
        }
        let name = real_profile(m);
        if let Some(gap) = real_mode_gap(m) {
            out.push_str(&format!(
                "{:<38} {:<14} {:>9} {:>9} {:>9} {:>9}  {gap}\n",
                m.name(),
                name,
                "-",
                "-",
                "-",
                "-"
            ));
            continue;
        }
        let profile = Profile::named(name).expect("built-in profile");
        let gate_order = m.tracker().is_some() && name == "zombie";
        let sim = hunt_with(m, scenarios, budget, first, gate_order, |sc, seed| {
            let out = run_one(spec(sc.clone(), seed, profile.clone(), DeliveryMode::ExactlyOnce, Some(m)), name);
            Ok((out.report.violations.iter().map(|v| v.check.clone()).collect(), out.report.repro.clone()))
        });
        let mut note = String::new();
        let real = hunt_with(m, scenarios, budget, first, gate_order, |sc, seed| {
            let spec = crate::real::RealSpec {
                scenario: sc.clone(),
                seed,
                profile: profile.clone(),
                profile_arg: name.to_string(),
                mutant: Some(m),
                ..template.clone()
            };
            crate::real::run(&spec)
                .map(|o| (o.report().violations.iter().map(|v| v.check.clone()).collect(), o.report().repro.clone()))
                .inspect_err(|e| note = format!("a run could not be set up: {e}"))
        });
        let runs = |r: &MutantRow| match &r.detected {
            Some(d) => d.seeds_tried.to_string(),
            None => format!(">{}", r.seeds_tried),
        };
        out.push_str(&format!(
            "{:<38} {:<14} {:>9} {:>9} {:>9} {:>9}  {}\n",
            m.name(),
            name,
            runs(&sim),
            sim.wall_ms,
            runs(&real),
            real.wall_ms,
            if note.is_empty() {
                real.detected.as_ref().map_or("escaped".into(), |d| d.checks.join(","))
            } else {
                note
            }
        ));
    }
    out
}

/// The scenarios that can reach `m`: those that name it as their own, else
/// all but the upsert scenarios (`Scenario::upsert_table`: at least once,
/// no 2PC, hunted for their own bugs; the engine's bugs are the 2PC
/// pipelines' business, and the hunts keep their order and seeds).
fn hunting_ground(m: Mutant, scenarios: &[Arc<dyn Scenario>]) -> Vec<Arc<dyn Scenario>> {
    let own: Vec<Arc<dyn Scenario>> = scenarios.iter().filter(|s| s.own_mutants().contains(&m)).cloned().collect();
    if own.is_empty() {
        let two_pc: Vec<Arc<dyn Scenario>> = scenarios.iter().filter(|s| !s.upsert_table()).cloned().collect();
        if two_pc.is_empty() {
            scenarios.to_vec()
        } else {
            two_pc
        }
    } else {
        own
    }
}

/// Runs the explorer needs to catch `m` (`None`: not within `budget`),
/// from the same fresh seeds and profile as [`hunt`]; its own seed is
/// `first`.
pub fn hunt_explore(
    m: Mutant,
    scenarios: &[Arc<dyn Scenario>],
    budget: u64,
    first: u64,
) -> Option<(u64, crate::explore::Origin)> {
    let name = m.hunt_profile();
    let x = crate::explore::Explore {
        scenarios: hunting_ground(m, scenarios),
        profile: Profile::named(name).expect("built-in profile"),
        profile_arg: name.to_string(),
        mode: DeliveryMode::ExactlyOnce,
        mutant: Some(m),
        budget,
        first_seed: first,
        seed: first,
        stop_at_failure: true,
        jobs: 1,
        shard: None,
        deadline: None,
        resume: Vec::new(),
    };
    let rep = x.run();
    rep.failure.map(|(runs, _)| (runs, rep.failure_origin.expect("a failure has an origin")))
}

/// `mutants --explore`: runs to first detection per planted bug, blind
/// seeds against the explorer, side by side (two bugs at a time).
pub fn compare_all(scenarios: &[Arc<dyn Scenario>], budget: u64, first: u64, only: &[Mutant]) -> String {
    // Per bug: runs to detection (blind, explorer).
    let rows = each_mutant(2, only, |m| {
        (hunt(m, scenarios, budget, first).detected.map(|d| d.seeds_tried), hunt_explore(m, scenarios, budget, first))
    });
    let show = |r: Option<u64>| r.map_or(format!(">{budget}"), |n| n.to_string());
    let mut out = format!("{:<38} {:>8} {:>8} {:>7}  {}\n", "mutant", "blind", "explore", "ratio", "found by");
    for (m, (b, g)) in rows {
        let ratio = match (b, g) {
            (Some(b), Some((g, _))) => format!("{:.1}x", b as f64 / g as f64),
            _ => "-".to_string(),
        };
        let by = g.map_or("-".to_string(), |(_, o)| o.name().to_string());
        out.push_str(&format!("{:<38} {:>8} {:>8} {:>7}  {by}\n", m.name(), show(b), show(g.map(|x| x.0)), ratio));
    }
    out
}

/// Every mutant, two at a time.
pub fn hunt_all(scenarios: &[Arc<dyn Scenario>], budget: u64, first: u64, jobs2: bool) -> Vec<MutantRow> {
    let threads = if jobs2 { 2 } else { 1 };
    each_mutant(threads, &[], |m| hunt(m, scenarios, budget, first)).into_iter().map(|(_, r)| r).collect()
}

/// The mutants in `only` (every one if it is empty), two at a time.
pub fn hunt_some(scenarios: &[Arc<dyn Scenario>], budget: u64, first: u64, only: &[Mutant]) -> Vec<MutantRow> {
    each_mutant(2, only, |m| hunt(m, scenarios, budget, first)).into_iter().map(|(_, r)| r).collect()
}

/// `f` of every planted bug in `only` (every one if it is empty), on
/// `threads` threads, in `Mutant::ALL` order.
fn each_mutant<T: Send>(threads: usize, only: &[Mutant], f: impl Fn(Mutant) -> T + Sync) -> Vec<(Mutant, T)> {
    let ms: Vec<Mutant> = Mutant::ALL.iter().copied().filter(|m| only.is_empty() || only.contains(m)).collect();
    let rows: Mutex<Vec<Option<T>>> = Mutex::new((0..ms.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= ms.len() {
                    return;
                }
                let r = f(ms[i]);
                rows.lock().unwrap()[i] = Some(r);
            });
        }
    });
    ms.iter().copied().zip(rows.into_inner().unwrap().into_iter().map(|r| r.expect("hunted"))).collect()
}

/// `mutants --list`: each planted bug, the check expected to catch it and
/// what it breaks.
pub fn list() -> String {
    let mut s = format!("{:<38} {:<26} {:<5} {}\n", "mutant", "expected check", "real", "planted bug");
    for m in Mutant::ALL {
        let c = m.expected_check();
        s.push_str(&format!(
            "{:<38} {:<26} {:<5} {}\n",
            m.name(),
            format!("{c} {}", exactsim_model::checks::name_of(c)),
            if real_mode_gap(m).is_some() { "no" } else { "yes" },
            m.description()
        ));
    }
    s.push_str("real: whether the bug can show in real mode (`mutants --story NAME` says why not; `mutants --real` hunts it)\n");
    s
}

/// `mutants --story NAME`: a planted bug's tracker id, story, expected
/// check and hunting profile.
pub fn story(m: Mutant) -> String {
    let c = m.expected_check();
    let mut s = format!("{}\n", m.name());
    if let Some(t) = m.tracker() {
        s.push_str(&format!("tracker: {t}\n"));
    }
    s.push_str(&format!("expected check: {c} {}\n", exactsim_model::checks::name_of(c)));
    s.push_str(&format!("hunted with: {}\n", m.hunt_profile()));
    match real_mode_gap(m) {
        Some(gap) => s.push_str(&format!("real mode: no, it {gap}\n\n")),
        None => s.push_str(&format!("real mode: yes, hunted with {}\n\n", real_profile(m))),
    }
    s.push_str(m.story());
    s.push('\n');
    s
}

pub fn render(rows: &[MutantRow]) -> String {
    let mut s = format!(
        "{:<38} {:<9} {:>6} {:<12} {:<9} {:>8}  {}\n",
        "mutant", "result", "seeds", "checks", "expected", "wall_ms", "replay"
    );
    for r in rows {
        match &r.detected {
            Some(d) => s.push_str(&format!(
                "{:<38} {:<9} {:>6} {:<12} {:<9} {:>8}  {}\n",
                r.mutant.name(),
                "detected",
                d.seeds_tried,
                d.checks.join(","),
                r.mutant.expected_check(),
                r.wall_ms,
                d.repro
            )),
            None => s.push_str(&format!(
                "{:<38} {:<9} {:>6} {:<12} {:<9} {:>8}  -\n",
                r.mutant.name(),
                "ESCAPED",
                r.seeds_tried,
                "-",
                r.mutant.expected_check(),
                r.wall_ms
            )),
        }
    }
    let caught = rows.iter().filter(|r| r.detected.is_some()).count();
    s.push_str(&format!("{caught}/{} mutants detected\n", rows.len()));
    s
}
