//! Replay files and shrinking. A replay file holds everything that defines a
//! run — scenario, seed, profile, mode, mutant, the explicit fault schedule
//! and the code version — so a failure can be re-run, edited, minimised and
//! frozen as a regression test.

use crate::{code_version, resolve_scenario, run_one};
use exactsim_model::narrow::{schedule_size, Narrowing, SHIFTS_MS};
use exactsim_model::run::RunSpec;
use exactsim_model::schedule::{one_line, read_text_capped, FaultEvent, Profile, Schedule};
use exactsim_sim::runner::{Outcome, PANIC_CHECK};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const FORMAT: u32 = 1;

/// Largest replay file read (a schedule at its cap is far smaller).
pub const REPLAY_BYTES_MAX: u64 = 64 << 20;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayFile {
    pub format: u32,
    pub scenario: String,
    pub seed: u64,
    pub profile: String,
    pub mode: String,
    pub mutant: Option<String>,
    /// The check that failed when the file was written (None: it passed).
    pub check: Option<String>,
    /// For check `panic`: the source site of the panic (`file:line:col`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panic_site: Option<String>,
    /// The trace hash of the run the file froze; a replay by the same code
    /// version must reproduce it exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_hash: Option<String>,
    pub schedule: Schedule,
    pub code_version: String,
}

impl ReplayFile {
    pub fn from_outcome(out: &Outcome, profile_arg: &str) -> ReplayFile {
        ReplayFile {
            format: FORMAT,
            scenario: out.report.scenario.clone(),
            seed: out.report.seed,
            profile: profile_arg.to_string(),
            mode: out.report.mode.clone(),
            mutant: out.report.mutant.clone(),
            check: out.report.violations.first().map(|v| v.check.clone()),
            panic_site: out.report.panic.as_ref().map(|p| p.site.clone()),
            trace_hash: Some(out.report.trace_hash.clone()),
            schedule: out.result.schedule.clone(),
            code_version: code_version().to_string(),
        }
    }

    /// Parse and check the fields that need no run. Every problem is one
    /// line for the user. The code version is not checked here: see
    /// [`ReplayFile::version_warning`].
    pub fn parse(text: &str, origin: &str) -> Result<ReplayFile, String> {
        let f: ReplayFile = serde_json::from_str(text)
            .map_err(|e| format!("{origin}: not a valid replay file: {}", one_line(&e.to_string())))?;
        if f.format != FORMAT {
            return Err(format!("{origin}: replay format {} is not supported (expected {FORMAT})", f.format));
        }
        Ok(f)
    }

    /// A replay file from other code still runs (its schedule is explicit),
    /// but the seed's workload and timing may differ: say so.
    pub fn version_warning(&self) -> Option<String> {
        (self.code_version != code_version()).then(|| {
            format!(
                "written by code version {} but this is {}: the explicit schedule replays, the rest of the run may differ",
                self.code_version,
                code_version()
            )
        })
    }

    pub fn load(path: &str) -> Result<ReplayFile, String> {
        let text = read_text_capped(std::path::Path::new(path), REPLAY_BYTES_MAX)
            .map_err(|e| format!("cannot read replay file {path}: {e}"))?;
        ReplayFile::parse(&text, path)
    }

    /// The run this file describes, with its schedule checked against the
    /// run's nodes and the caps.
    pub fn to_spec(&self) -> Result<RunSpec, String> {
        self.to_spec_with(resolve_scenario(&self.scenario)?)
    }

    /// The run of this file with a scenario that is not registered (one
    /// defined in a test), which must carry the file's scenario name.
    pub fn to_spec_with(
        &self,
        scenario: std::sync::Arc<dyn exactsim_model::scenario::Scenario>,
    ) -> Result<RunSpec, String> {
        if scenario.name() != self.scenario {
            return Err(format!("replay file is for scenario '{}', not '{}'", self.scenario, scenario.name()));
        }
        let mode = crate::parse_mode(&self.mode)?;
        let mutant = self.mutant.as_deref().map(crate::parse_mutant).transpose()?;
        if let Some(c) = &self.check {
            if c.is_empty() || c.len() > 64 {
                return Err(format!("check '{c}' is not a check name"));
            }
        }
        let profile = self.profile()?;
        let mut s = crate::spec(scenario, self.seed, profile, mode, mutant);
        crate::validate_schedule(&s, &self.schedule)?;
        s.schedule = Some(self.schedule.clone());
        Ok(s)
    }

    /// The file's profile: a built-in name, or a `.toml` profile file that
    /// exists (relative to the working directory, as the run that wrote the
    /// file was given it) and parses. The schedule is explicit, so it names
    /// the run and gives the job its settings (an adaptive interval, input
    /// phases: `derive_config`), but a name that is no profile (`nope`) or a
    /// file that is none (`/etc/passwd`, never read: it does not end in
    /// `.toml`) means the file was edited or damaged.
    fn profile(&self) -> Result<Profile, String> {
        if let Some(p) = Profile::named(&self.profile) {
            return Ok(p);
        }
        if !self.profile.ends_with(".toml") {
            return Err(format!(
                "\"profile\": '{}' is neither a profile name ({}) nor a .toml profile file",
                self.profile,
                exactsim_model::schedule::PROFILE_NAMES.join(", ")
            ));
        }
        Profile::resolve(&self.profile).map_err(|e| format!("\"profile\": {e}"))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("serializable")
    }

    /// Does this run show the failure the file recorded (the same check;
    /// for a panic, at the same site)?
    pub fn reproduced_by(&self, out: &Outcome) -> bool {
        self.mismatch(out).is_none()
    }

    /// Why this run is not the one the file recorded, on one line; `None`
    /// if it reproduces it.
    pub fn mismatch(&self, out: &Outcome) -> Option<String> {
        let failed: Vec<&str> = out.report.violations.iter().map(|v| v.check.as_str()).collect();
        let verdict = match &self.check {
            None if out.report.verdict.is_pass() => None,
            None => Some(format!("the run failed {} where the file records a pass", failed.join(","))),
            Some(c) if same_failure(out, c, self.panic_site.as_deref()) => None,
            Some(c) if failed.is_empty() => Some(format!("the run passed every check where the file records {c}")),
            Some(c) if failed.contains(&c.as_str()) => Some(format!(
                "the run panicked at {}, not at the recorded site",
                out.report.panic.as_ref().map_or("an unknown site", |p| p.site.as_str())
            )),
            Some(c) => Some(format!("the run failed {} but not the recorded {c}", failed.join(","))),
        };
        let got = &out.report.trace_hash;
        match self.trace_hash.as_ref().filter(|h| *h != got && self.code_version == crate::code_version()) {
            // Same code, same schedule: the run must be the same, event for
            // event, whatever its verdict.
            Some(want) => Some(format!(
                "trace_hash {got} differs from the recorded {want} under the same code version {} ({}): the \
                 same schedule ran another way (a nondeterminism, or the file's seed or schedule was edited \
                 after it was written)",
                self.code_version,
                verdict.as_deref().unwrap_or("the verdict is the recorded one")
            )),
            None => verdict,
        }
    }
}

/// Does `out` fail with `check` (and, for a panic with a known site, at
/// that site)?
pub fn same_failure(out: &Outcome, check: &str, panic_site: Option<&str>) -> bool {
    if !out.report.violations.iter().any(|v| v.check == check) {
        return false;
    }
    match (check, panic_site) {
        (PANIC_CHECK, Some(site)) => out.report.panic.as_ref().is_some_and(|p| p.site == site),
        _ => true,
    }
}

/// Does the run fail with `check` (at `panic_site`, for a panic)?
fn fails_with(spec: &RunSpec, profile_arg: &str, check: &str, panic_site: Option<&str>) -> bool {
    same_failure(&run_one(spec.clone(), profile_arg), check, panic_site)
}

/// A schedule to play: the `schedule` of a replay file, or a bare schedule.
pub fn load_schedule(path: &std::path::Path) -> Result<Schedule, String> {
    let text = read_text_capped(path, REPLAY_BYTES_MAX)
        .map_err(|e| format!("cannot read schedule file {}: {e}", path.display()))?;
    if let Ok(f) = ReplayFile::parse(&text, &path.display().to_string()) {
        return Ok(f.schedule);
    }
    serde_json::from_str::<Schedule>(&text)
        .map_err(|e| format!("{}: neither a replay file nor a schedule: {}", path.display(), one_line(&e.to_string())))
}

pub struct ShrinkResult {
    pub file: ReplayFile,
    pub original_events: usize,
    /// The runs a one-at-a-time search makes (the budget counts these; the
    /// same for any `jobs`).
    pub runs: usize,
    /// The simulation runs actually made: fewer than `runs` when schedules
    /// were met again, more when `jobs` > 1 ran candidates past the one
    /// that was kept.
    pub runs_made: usize,
}

/// Minimise the fault schedule of a failing run while the same check still
/// fails. Passes alternate until none changes anything: *remove*
/// drops events (halves, then smaller chunks, then one at a time), and
/// *narrow* replaces one event by a narrower one ([`FaultEvent::narrowings`]:
/// shorter windows and outages, later-starting or earlier windows, lower
/// `nth`, fewer nodes, gentler actions), taking each event down as far as
/// it goes. Removal runs again after narrowing because a narrowed event
/// can make another unnecessary. When neither pass changes anything, *drop
/// and re-aim* tries once more to drop each event while moving the rest:
/// many faults of a failing schedule merely coexist with the ones that
/// matter, and dropping one only fails to reproduce because it moves the
/// moment the others land (a broker pause at the start delays every later
/// step); so the events after it are shifted together, or one other event
/// alone is re-aimed ([`FaultEvent::reaims`]), to land where it did. Every
/// accepted step makes the schedule strictly smaller
/// ([`exactsim_model::narrow::schedule_size`]), so this ends; `max_runs`
/// bounds the simulation runs spent. Each step takes the first candidate,
/// in a fixed order, that still fails; `jobs` candidates are run at once,
/// so the result (and the run count charged to `max_runs`) is the same for
/// any `jobs`. Returns `Err` if the run does not fail in the first place.
pub fn shrink(spec: RunSpec, profile_arg: &str, max_runs: usize, jobs: usize) -> Result<ShrinkResult, String> {
    let first = run_one(spec.clone(), profile_arg);
    let Some(check) = first.report.violations.first().map(|v| v.check.clone()) else {
        return Err(format!("seed {} passes every check: nothing to shrink", spec.seed));
    };
    // A panic is kept at the same site: another panic is another bug.
    let site = first.report.panic.as_ref().map(|p| p.site.clone());
    let original_events = first.result.schedule.events.len();
    let nodes = crate::nodes_of(&spec);
    let template = Schedule { events: Vec::new(), ..first.result.schedule.clone() };
    let still_fails = |events: &[FaultEvent]| {
        let mut s = spec.clone();
        s.schedule = Some(Schedule { events: events.to_vec(), ..template.clone() });
        fails_with(&s, profile_arg, &check, site.as_deref())
    };
    let mut sh = Shrinker::new(first.result.schedule.clone(), max_runs, jobs, &still_fails);
    sh.minimise(&nodes);
    let (best, runs, runs_made) = (sh.best, sh.runs, sh.runs_made);
    // The trace of the shrunk schedule is the one the file freezes.
    let mut last = spec.clone();
    last.schedule = Some(best.clone());
    let shrunk = run_one(last, profile_arg);
    let mut file = ReplayFile::from_outcome(&first, profile_arg);
    file.trace_hash = Some(shrunk.report.trace_hash.clone());
    file.schedule = best;
    file.check = Some(check);
    file.panic_site = site;
    Ok(ShrinkResult { file, original_events, runs, runs_made: runs_made + 1 })
}

/// Whether a schedule's events still fail the way the shrunk run failed.
type StillFails<'a> = dyn Fn(&[FaultEvent]) -> bool + Sync + 'a;

/// The state of one shrink: the smallest failing schedule so far and the
/// runs spent finding it. The search is plain logic over `still_fails`
/// (a simulation run in `shrink`, a function of the events in its tests).
struct Shrinker<'a> {
    still_fails: &'a StillFails<'a>,
    best: Schedule,
    /// Runs charged (the seed's first run included).
    runs: usize,
    runs_made: usize,
    max_runs: usize,
    jobs: usize,
    /// Event lists already run that did not fail the same way (as JSON),
    /// each with whether the one-at-a-time search has been charged its
    /// run. The passes propose some schedules more than once (a narrowing
    /// of one event retried after another event changed, a re-aim equal to
    /// a shift), and a run is a function of its schedule: none is run
    /// twice. A run made ahead of the search (`jobs` > 1) is charged when
    /// the search reaches it, as if made then.
    passed: BTreeMap<String, bool>,
}

impl<'a> Shrinker<'a> {
    /// A search from `best`, a schedule that fails (its run already made
    /// and charged).
    fn new(best: Schedule, max_runs: usize, jobs: usize, still_fails: &'a StillFails<'a>) -> Self {
        Shrinker { still_fails, best, runs: 1, runs_made: 1, max_runs, jobs: jobs.max(1), passed: BTreeMap::new() }
    }

    /// The passes, to a fixpoint or the end of the budget.
    fn minimise(&mut self, nodes: &[String]) {
        // Some bugs need no fault at all.
        if !self.best.events.is_empty() {
            self.first_failing(vec![Vec::new()]);
        }
        loop {
            let before = schedule_size(&self.best.events);
            self.remove();
            self.narrow(&Narrowing { safety_ms: self.best.safety_ms, nodes });
            if schedule_size(&self.best.events) == before && !self.remove_reaimed() {
                break;
            }
            if self.spent() {
                break;
            }
        }
    }

    fn spent(&self) -> bool {
        self.runs >= self.max_runs
    }

    fn fails(&self, events: &[FaultEvent]) -> bool {
        (self.still_fails)(events)
    }

    /// Take the first of `cands`, in order, that still fails the same way
    /// as the best schedule, and return its index; `None` when none does
    /// or the budget is spent first. Candidates not met before are run
    /// `jobs` at a time; those after the first failing one in a batch are
    /// kept only as known passes.
    fn first_failing(&mut self, cands: Vec<Vec<FaultEvent>>) -> Option<usize> {
        let keys: Vec<String> =
            cands.iter().map(|c| serde_json::to_string(c).expect("a schedule serializes")).collect();
        let mut next = 0;
        while next < cands.len() {
            // The next batch: up to `jobs` candidates not met before, as far
            // as the budget reaches.
            let room = self.max_runs.saturating_sub(self.runs).min(self.jobs);
            let mut batch: Vec<usize> = Vec::new();
            for i in next..cands.len() {
                if batch.len() == room {
                    break;
                }
                if !self.passed.contains_key(&keys[i]) && !batch.iter().any(|&j| keys[j] == keys[i]) {
                    batch.push(i);
                }
            }
            let results: Vec<bool> = if batch.len() <= 1 {
                batch.iter().map(|&i| self.fails(&cands[i])).collect()
            } else {
                let (this, cands) = (&*self, &cands);
                std::thread::scope(|sc| {
                    let hs: Vec<_> = batch.iter().map(|&i| sc.spawn(move || this.fails(&cands[i]))).collect();
                    hs.into_iter().map(|h| h.join().expect("a run's panic is caught inside it")).collect()
                })
            };
            self.runs_made += batch.len();
            let made: BTreeMap<&str, bool> = batch.iter().map(|&i| keys[i].as_str()).zip(results).collect();
            let last = batch.last().copied().unwrap_or(cands.len() - 1);
            // Walk the candidates in order, as a one-at-a-time search would.
            for i in next..=last {
                if self.spent() {
                    return None;
                }
                debug_assert!(schedule_size(&cands[i]) < schedule_size(&self.best.events), "a shrink step must shrink");
                match self.passed.get(&keys[i]).copied() {
                    // Run before and charged: not run again.
                    Some(true) => continue,
                    // Run ahead of the search: charged now.
                    Some(false) => {}
                    None => {
                        let failed = *made.get(keys[i].as_str()).expect("a candidate not met before is in the batch");
                        if failed {
                            self.runs += 1;
                            // The batch's later passes are known passes.
                            for (k, f) in &made {
                                if !*f {
                                    self.passed.entry(k.to_string()).or_insert(false);
                                }
                            }
                            self.best.events = cands[i].clone();
                            return Some(i);
                        }
                    }
                }
                self.runs += 1;
                self.passed.insert(keys[i].clone(), true);
            }
            next = last + 1;
        }
        None
    }

    /// Drop chunks of events, halving the chunk down to single events.
    fn remove(&mut self) {
        let mut chunk = (self.best.events.len() / 2).max(1);
        while !self.best.events.is_empty() && !self.spent() {
            let mut i = 0;
            let mut removed = false;
            while i < self.best.events.len() && !self.spent() {
                // Removing each chunk from `i` on, in order; a removal
                // that still fails is kept and the search goes on from
                // where it was.
                let cands: Vec<Vec<FaultEvent>> = (i..self.best.events.len())
                    .step_by(chunk)
                    .map(|j| {
                        let mut ev = self.best.events.clone();
                        ev.drain(j..(j + chunk).min(ev.len()));
                        ev
                    })
                    .collect();
                match self.first_failing(cands) {
                    Some(k) => {
                        removed = true;
                        i += k * chunk;
                    }
                    None => break,
                }
            }
            if chunk == 1 && !removed {
                break;
            }
            chunk = (chunk / 2).max(1);
        }
    }

    /// Drop one event while re-aiming the others: all the timed events
    /// that start after it shifted together by each of [`SHIFTS_MS`]
    /// either way, then each other event alone re-aimed. True when an
    /// event went.
    fn remove_reaimed(&mut self) -> bool {
        let safety = self.best.safety_ms;
        for i in (0..self.best.events.len()).rev() {
            let mut rest = self.best.events.clone();
            let gone = rest.remove(i);
            let mut tries: Vec<Vec<FaultEvent>> = Vec::new();
            // A fault that held a node or a link delayed what came after it
            // by about its length: try pulling the later events back by
            // that much, give or take, before the fixed shifts.
            let pull: Vec<i64> = gone
                .hold_ms()
                .map(|h| [0i64, -10, 10, -25, 25, -50, 50].iter().map(|k| k - h as i64).collect())
                .unwrap_or_default();
            for d in pull.into_iter().chain(SHIFTS_MS.iter().flat_map(|d| [-(*d as i64), *d as i64])) {
                // A start moved out of the safety phase stays where it was.
                let moved: Vec<FaultEvent> = rest
                    .iter()
                    .map(|e| match e.shifted(d, safety) {
                        Some(m) if e.at_ms() >= gone.at_ms() => m,
                        _ => e.clone(),
                    })
                    .collect();
                if moved != rest {
                    tries.push(moved);
                }
            }
            for j in 0..rest.len() {
                for r in rest[j].reaims(safety) {
                    let mut m = rest.clone();
                    m[j] = r;
                    tries.push(m);
                }
            }
            if self.spent() {
                return false;
            }
            if self.first_failing(tries).is_some() {
                return true;
            }
        }
        false
    }

    /// Take each event down through its narrowings, the first that still
    /// fails each time, until none does.
    fn narrow(&mut self, n: &Narrowing) {
        let mut i = 0;
        while i < self.best.events.len() && !self.spent() {
            loop {
                let cands: Vec<Vec<FaultEvent>> = self.best.events[i]
                    .narrowings(n)
                    .into_iter()
                    .map(|w| {
                        let mut ev = self.best.events.clone();
                        ev[i] = w;
                        ev
                    })
                    .collect();
                if self.spent() || self.first_failing(cands).is_none() {
                    break;
                }
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exactsim_model::faults::Stop;
    use std::sync::Mutex;

    fn stop(at_ms: u64, node: &str, down_ms: u64) -> FaultEvent {
        Stop { at_ms, node: node.into(), down_ms }.into()
    }

    /// "Fails" when worker-1 is stopped for 40 ms or more, starting between
    /// 150 and 600 ms, and the broker is stopped by 500 ms.
    fn still_fails(events: &[FaultEvent]) -> bool {
        let stops: Vec<&Stop> = events
            .iter()
            .filter_map(|e| match e {
                FaultEvent::Stop(s) => Some(s),
                _ => None,
            })
            .collect();
        stops.iter().any(|s| s.node == "worker-1" && s.down_ms >= 40 && (150..=600).contains(&s.at_ms))
            && stops.iter().any(|s| s.node == "broker" && s.at_ms <= 500)
    }

    /// One search: (the events it ends with, runs charged, runs made, the
    /// most times one schedule was run).
    fn search(jobs: usize, budget: usize) -> (Vec<FaultEvent>, usize, usize, usize) {
        let events = vec![
            stop(100, "worker-0", 300),
            stop(420, "worker-1", 900),
            stop(50, "store", 200),
            stop(480, "broker", 700),
            stop(900, "coordinator", 100),
            stop(300, "broker", 50),
            stop(700, "worker-1", 400),
            stop(1_200, "worker-2", 80),
        ];
        assert!(still_fails(&events));
        let calls: Mutex<BTreeMap<String, usize>> = Mutex::default();
        let counted = |ev: &[FaultEvent]| {
            *calls.lock().unwrap().entry(serde_json::to_string(ev).unwrap()).or_default() += 1;
            still_fails(ev)
        };
        let nodes: Vec<String> =
            ["coordinator", "broker", "store", "worker-0", "worker-1", "worker-2"].map(String::from).to_vec();
        let mut sh = Shrinker::new(Schedule { safety_ms: 2_000, liveness_ms: 5_000, events }, budget, jobs, &counted);
        sh.minimise(&nodes);
        let most = calls.lock().unwrap().values().copied().max().unwrap_or(0);
        (sh.best.events, sh.runs, sh.runs_made, most)
    }

    #[test]
    fn the_search_ends_at_the_two_events_that_matter_and_runs_no_schedule_twice() {
        let (events, runs, made, most) = search(1, 2_000);
        assert!(still_fails(&events));
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(most, 1, "a schedule run twice");
        assert_eq!(made, runs, "one at a time, every run made is charged");
        assert!(runs < 2_000);
        // A local minimum: no event can go, and no narrowing of one fails.
        let nodes: Vec<String> = ["broker", "worker-1"].map(String::from).to_vec();
        let n = Narrowing { safety_ms: 2_000, nodes: &nodes };
        for i in 0..events.len() {
            let mut fewer = events.clone();
            fewer.remove(i);
            assert!(!still_fails(&fewer), "{fewer:?}");
            for w in events[i].narrowings(&n) {
                let mut ev = events.clone();
                ev[i] = w;
                assert!(!still_fails(&ev), "{ev:?}");
            }
        }
    }

    #[test]
    fn any_number_of_jobs_gives_the_same_search() {
        for budget in [7, 25, 2_000] {
            let (events, runs, made, most) = search(1, budget);
            for jobs in 2..=4 {
                let (e, r, m, mo) = search(jobs, budget);
                assert_eq!(e, events, "jobs {jobs}, budget {budget}");
                assert_eq!(r, runs, "jobs {jobs}, budget {budget}");
                assert!(m >= made, "jobs {jobs}, budget {budget}: ahead-of-search runs are extra");
                assert_eq!(mo.max(most), 1, "jobs {jobs}, budget {budget}: a schedule run twice");
            }
            if budget < 2_000 {
                assert_eq!(runs, budget, "the budget ends the search");
            }
        }
    }
}
