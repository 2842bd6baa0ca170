//! Replay files and shrinking. A replay file holds everything that defines a
//! run — scenario, seed, profile, mode, mutant, the explicit fault schedule
//! and the code version — so a failure can be re-run, edited, minimised and
//! frozen as a regression test.

use crate::{code_version, resolve_scenario, run_one};
use exactsim_sim::runner::Outcome;
use exactsim_sim::schedule::{FaultEvent, Profile, Schedule};
use exactsim_sim::world::RunSpec;
use serde::{Deserialize, Serialize};

pub const FORMAT: u32 = 1;

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
            schedule: out.result.schedule.clone(),
            code_version: code_version().to_string(),
        }
    }

    /// Parse and validate. Every problem is one line for the user.
    pub fn parse(text: &str, origin: &str) -> Result<ReplayFile, String> {
        let f: ReplayFile =
            serde_json::from_str(text).map_err(|e| format!("{origin}: not a valid replay file: {e}"))?;
        if f.format != FORMAT {
            return Err(format!("{origin}: replay format {} is not supported (expected {FORMAT})", f.format));
        }
        if f.code_version != code_version() {
            return Err(format!(
                "{origin}: written by code version {} but this is {}; a seed replays only on the same code (re-record it with `shrink` or `run`)",
                f.code_version,
                code_version()
            ));
        }
        Ok(f)
    }

    pub fn load(path: &str) -> Result<ReplayFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read replay file {path}: {e}"))?;
        ReplayFile::parse(&text, path)
    }

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
        let profile = Profile::resolve(&self.profile).unwrap_or_else(|_| Profile::named("none").unwrap());
        let mut s = crate::spec(scenario, self.seed, profile, mode, mutant);
        s.schedule = Some(self.schedule.clone());
        Ok(s)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("serializable")
    }
}

/// Does the run fail with `check`?
fn fails_with(spec: &RunSpec, profile_arg: &str, check: &str) -> bool {
    let out = run_one(spec.clone(), profile_arg);
    out.report.violations.iter().any(|v| v.check == check)
}

/// Weaker versions of one fault event: shorter, milder, later.
fn weaken(e: &FaultEvent) -> Vec<FaultEvent> {
    let mut v = Vec::new();
    let mut push = |x: FaultEvent| {
        if x != *e {
            v.push(x)
        }
    };
    match e.clone() {
        FaultEvent::Crash { at_ms, node, down_ms, disk } => {
            push(FaultEvent::Crash { at_ms, node: node.clone(), down_ms: (down_ms / 2).max(10), disk });
            push(FaultEvent::Crash {
                at_ms,
                node: node.clone(),
                down_ms,
                disk: exactsim_sim::disk::CrashMode::KeepAll,
            });
            push(FaultEvent::Crash { at_ms: at_ms + at_ms / 4 + 10, node, down_ms, disk });
        }
        FaultEvent::CrashAtPoint { point, node, nth, down_ms, disk } => {
            push(FaultEvent::CrashAtPoint { point, node: node.clone(), nth, down_ms: (down_ms / 2).max(10), disk });
            push(FaultEvent::CrashAtPoint { point, node: node.clone(), nth: 1, down_ms, disk });
            push(FaultEvent::CrashAtPoint { point, node, nth, down_ms, disk: exactsim_sim::disk::CrashMode::KeepAll });
        }
        FaultEvent::Partition { at_ms, dur_ms, a, b, one_way } => {
            push(FaultEvent::Partition { at_ms, dur_ms: (dur_ms / 2).max(10), a: a.clone(), b: b.clone(), one_way });
            push(FaultEvent::Partition { at_ms, dur_ms, a, b, one_way: true });
        }
        FaultEvent::Isolate { at_ms, dur_ms, node } => {
            push(FaultEvent::Isolate { at_ms, dur_ms: (dur_ms / 2).max(10), node })
        }
        FaultEvent::PacketLoss { at_ms, dur_ms, permille } => {
            push(FaultEvent::PacketLoss { at_ms, dur_ms: (dur_ms / 2).max(10), permille });
            push(FaultEvent::PacketLoss { at_ms, dur_ms, permille: (permille / 2).max(1) });
        }
        FaultEvent::Latency { at_ms, dur_ms, latency_ms } => {
            push(FaultEvent::Latency { at_ms, dur_ms: (dur_ms / 2).max(10), latency_ms: (latency_ms / 2).max(5) })
        }
        FaultEvent::SlowDisk { at_ms, dur_ms, node, latency_ms } => push(FaultEvent::SlowDisk {
            at_ms,
            dur_ms: (dur_ms / 2).max(10),
            node,
            latency_ms: (latency_ms / 2).max(1),
        }),
        FaultEvent::DiskErrors { at_ms, dur_ms, node, permille } => {
            push(FaultEvent::DiskErrors { at_ms, dur_ms: (dur_ms / 2).max(10), node, permille: (permille / 2).max(1) })
        }
        FaultEvent::CorruptReads { at_ms, dur_ms, node, permille } => push(FaultEvent::CorruptReads {
            at_ms,
            dur_ms: (dur_ms / 2).max(10),
            node,
            permille: (permille / 2).max(1),
        }),
    }
    v
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
        fails_with(&s, profile_arg, &check).then_some(sched)
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
            for w in weaken(&best.events[i]) {
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
    let mut file = ReplayFile::from_outcome(&first, profile_arg);
    file.schedule = best;
    file.check = Some(check);
    Ok(ShrinkResult { file, original_events, runs })
}

fn best_template(_spec: &RunSpec, s: &Schedule) -> Schedule {
    Schedule { safety_ms: s.safety_ms, liveness_ms: s.liveness_ms, events: Vec::new() }
}
