//! Replay files and shrinking. A replay file holds everything that defines a
//! run — scenario, seed, profile, mode, mutant, the explicit fault schedule
//! and the code version — so a failure can be re-run, edited, minimised and
//! frozen as a regression test.

use crate::{code_version, resolve_scenario, run_one};
use exactsim_sim::runner::{Outcome, PANIC_CHECK};
use exactsim_sim::schedule::{one_line, read_text_capped, FaultEvent, Profile, Schedule};
use exactsim_sim::world::RunSpec;
use serde::{Deserialize, Serialize};

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
        scenario: std::sync::Arc<dyn exactsim_sim::scenario::Scenario>,
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
        s.schedule = Some(self.schedule.clone());
        let workers = exactsim_sim::world::derive_config(&s).parallelism;
        self.schedule.validate(workers, s.scenario.pipeline().system().is_some())?;
        Ok(s)
    }

    /// The file's profile: a built-in name, or a `.toml` profile file that
    /// exists (relative to the working directory, as the run that wrote the
    /// file was given it) and parses. It only names the run, since the
    /// schedule is explicit, but a name that is no profile (`nope`) or a
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
                exactsim_sim::schedule::PROFILE_NAMES.join(", ")
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

/// Weaker versions of one fault event: shorter, milder, later.
fn weaken(e: &FaultEvent, safety_ms: u64) -> Vec<FaultEvent> {
    e.weakenings(safety_ms)
}

pub struct ShrinkResult {
    pub file: ReplayFile,
    pub original_events: usize,
    pub runs: usize,
}

/// Minimise the fault schedule of a failing run while the same check still
/// fails: drop events (one at a time, then halves), then weaken each.
/// Returns `Err` if the run does not fail in the first place.
pub fn shrink(spec: RunSpec, profile_arg: &str, max_runs: usize) -> Result<ShrinkResult, String> {
    let first = run_one(spec.clone(), profile_arg);
    let Some(check) = first.report.violations.first().map(|v| v.check.clone()) else {
        return Err(format!("seed {} passes every check: nothing to shrink", spec.seed));
    };
    // A panic is kept at the same site: another panic is another bug.
    let site = first.report.panic.as_ref().map(|p| p.site.clone());
    let mut best = first.result.schedule.clone();
    let original_events = best.events.len();
    let mut runs = 1;
    let with = |events: Vec<FaultEvent>, runs: &mut usize| -> Option<Schedule> {
        if *runs >= max_runs {
            return None;
        }
        *runs += 1;
        let mut s = spec.clone();
        let sched = Schedule { events, ..best_template(&spec, &first.result.schedule) };
        s.schedule = Some(sched.clone());
        fails_with(&s, profile_arg, &check, site.as_deref()).then_some(sched)
    };
    // Try the empty schedule first: some bugs need no fault at all.
    if let Some(s) = with(Vec::new(), &mut runs) {
        best = s;
    }
    // Remove chunks, then single events, until nothing can go.
    let mut chunk = (best.events.len() / 2).max(1);
    while !best.events.is_empty() && chunk >= 1 && runs < max_runs {
        let mut i = 0;
        let mut removed = false;
        while i < best.events.len() && runs < max_runs {
            let mut ev = best.events.clone();
            let end = (i + chunk).min(ev.len());
            ev.drain(i..end);
            if let Some(s) = with(ev, &mut runs) {
                best = s;
                removed = true;
            } else {
                i += chunk;
            }
        }
        if chunk == 1 && !removed {
            break;
        }
        chunk = if chunk == 1 { 1 } else { chunk / 2 };
    }
    // Weaken what is left.
    let mut progress = true;
    while progress && runs < max_runs {
        progress = false;
        for i in 0..best.events.len() {
            for w in weaken(&best.events[i], best.safety_ms) {
                let mut ev = best.events.clone();
                ev[i] = w;
                if let Some(s) = with(ev, &mut runs) {
                    best = s;
                    progress = true;
                    break;
                }
            }
        }
    }
    // The trace of the shrunk schedule is the one the file freezes.
    let mut last = spec.clone();
    last.schedule = Some(best.clone());
    let shrunk = run_one(last, profile_arg);
    let mut file = ReplayFile::from_outcome(&first, profile_arg);
    file.trace_hash = Some(shrunk.report.trace_hash.clone());
    file.schedule = best;
    file.check = Some(check);
    file.panic_site = site;
    Ok(ShrinkResult { file, original_events, runs })
}

fn best_template(_spec: &RunSpec, s: &Schedule) -> Schedule {
    Schedule { safety_ms: s.safety_ms, liveness_ms: s.liveness_ms, events: Vec::new() }
}
