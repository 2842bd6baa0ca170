//! **Guided exploration**: instead of drawing every run's faults blindly
//! from its seed, keep a corpus of schedules that reached something new
//! (a reachability point, or a point on a node role no run had reached it
//! on) and derive the next runs from the runs that reached the rarest ones:
//! keep a parent's faults up to the moment it first reached its rarest
//! point and draw the rest afresh, or aim a crash, pause or stop at an
//! engine event the parent's nodes emitted shortly before that moment (a
//! predicate fault: "when this node emits this event the n-th time"), or
//! shift, drop, add or re-aim one fault, or splice two parents at that
//! moment. Most of those changes go to the parent's *causes*: the faults
//! active at the rare moment or begun shortly before it (a window that
//! holds it, a crash or pause in the second before, a predicate fault):
//! they are shifted, narrowed, re-aimed or played twice, since a bug that
//! needs one fault in a narrow window is found by moving the fault that
//! came closest. Blind runs (fresh seeds) keep coming too, one run in two, so
//! the search never narrows to one corpus.
//!
//! Every run is an ordinary run: a seed and an explicit schedule, which a
//! replay file holds, so a failure found by exploring is replayed, shrunk
//! and kept like any other. The explorer is deterministic given its own
//! seed (its choices come from one `SimRng`), one run at a time.

use crate::{run_one, spec};
use exactsim_engine::config::Mutant;
use exactsim_engine::types::DeliveryMode;
use exactsim_model::faults;
use exactsim_model::history::{Ev, Reached, SimEvent, Stamped};
use exactsim_model::rng::SimRng;
use exactsim_model::scenario::Scenario;
use exactsim_model::schedule::{generate, role_of, FaultEvent, Profile, Schedule, TriggerAction};
use exactsim_sim::runner::Outcome;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What to explore.
#[derive(Clone)]
pub struct Explore {
    pub scenarios: Vec<Arc<dyn Scenario>>,
    pub profile: Profile,
    /// The profile as given (a name or a file), for reproduce commands.
    pub profile_arg: String,
    pub mode: DeliveryMode,
    pub mutant: Option<Mutant>,
    /// New runs to make at most (a resumed corpus's runs, made again
    /// first, come on top).
    pub budget: u64,
    /// The first fresh seed (fresh seeds count up from it, as a campaign's).
    pub first_seed: u64,
    /// The explorer's own seed: every choice it makes comes from it.
    pub seed: u64,
    /// Stop at the first failing run.
    pub stop_at_failure: bool,
    /// Runs made at once.
    pub jobs: usize,
    /// This shard `(K, N)` of N explorers.
    pub shard: Option<(u64, u64)>,
    /// Stop starting runs after this much wall time.
    pub deadline: Option<std::time::Duration>,
    /// A saved corpus to start from: (scenario index, seed, schedule).
    pub resume: Vec<(usize, u64, Schedule)>,
}

/// A run to make: which scenario and seed, its explicit schedule (`None`:
/// the seed's own), and how it was made.
struct Plan {
    scenario: usize,
    seed: u64,
    schedule: Option<Schedule>,
    origin: Origin,
}

/// One schedule in the corpus: its run's scenario, seed and faults, and
/// when that run first reached each point (ms).
#[derive(Clone, Debug)]
pub struct Entry {
    pub scenario: usize,
    pub seed: u64,
    pub schedule: Schedule,
    pub first_ms: BTreeMap<String, u64>,
    /// The engine events of the run: (ms, node, event name, its occurrence
    /// on that node), what a predicate fault can be aimed at.
    pub events: Vec<(u64, String, &'static str, u32)>,
}

/// How a run's schedule was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A fresh seed, its faults drawn from the profile.
    Fresh,
    /// Faults up to a parent's rare moment kept, the rest drawn afresh.
    Redraw,
    Shift,
    Drop,
    Add,
    Reaim,
    Splice,
    /// A predicate fault aimed at an engine event shortly before the
    /// parent's rare moment.
    AimAtEvent,
    /// One of the parent's causes of its rare moment shifted, narrowed or
    /// re-aimed.
    Tweak,
    /// One of the parent's causes played a second time, a little earlier or
    /// later.
    Twice,
    /// A run of a saved corpus, made again.
    Corpus,
}

impl Origin {
    /// The origin's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Origin::Fresh => "fresh",
            Origin::Redraw => "redraw",
            Origin::Shift => "shift",
            Origin::Drop => "drop",
            Origin::Add => "add",
            Origin::Reaim => "reaim",
            Origin::Splice => "splice",
            Origin::AimAtEvent => "aim-at-event",
            Origin::Tweak => "tweak",
            Origin::Twice => "twice",
            Origin::Corpus => "corpus",
        }
    }
}

/// What exploring found.
#[derive(Default)]
pub struct ExploreReport {
    pub runs: u64,
    /// Runs whose schedule was derived from the corpus (not fresh seeds).
    pub derived_runs: u64,
    /// The first failing run: (runs made until then, its outcome).
    pub failure: Option<(u64, Box<Outcome>)>,
    /// How the first failing run's schedule was made.
    pub failure_origin: Option<Origin>,
    pub corpus: Vec<Entry>,
    /// Runs that reached each feature (`point`, `point@role`).
    pub features: BTreeMap<String, u64>,
}

/// A saved corpus (`explore --report DIR` writes `DIR/corpus.json`;
/// `explore --corpus FILE` starts from one, and several files merge the
/// corpora of shards): the runs that reached something new, each a
/// scenario, a seed and its explicit schedule, so any of them replays on
/// its own.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorpusFile {
    pub code_version: String,
    pub profile: String,
    pub mode: String,
    pub mutant: Option<String>,
    pub runs: Vec<SavedRun>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedRun {
    pub scenario: String,
    pub seed: u64,
    pub schedule: Schedule,
}

impl ExploreReport {
    /// The corpus as a file.
    pub fn corpus_file(&self, x: &Explore) -> CorpusFile {
        CorpusFile {
            code_version: crate::code_version().to_string(),
            profile: x.profile_arg.clone(),
            mode: x.mode.name().to_string(),
            mutant: x.mutant.map(|m| m.name().to_string()),
            runs: self
                .corpus
                .iter()
                .map(|e| SavedRun {
                    scenario: x.scenarios[e.scenario].name().to_string(),
                    seed: e.seed,
                    schedule: e.schedule.clone(),
                })
                .collect(),
        }
    }

    /// Runs that reached each declared reachability point (point names
    /// only, not the combinations).
    pub fn reached(&self) -> BTreeMap<String, u64> {
        let names: Vec<&str> = exactsim_engine::observe::Reach::ALL.iter().map(|p| p.name()).collect();
        self.features.iter().filter(|(k, _)| names.contains(&k.as_str())).map(|(k, v)| (k.clone(), *v)).collect()
    }
}

/// A run's features: each point it reached, and each (point, node role);
/// and, from the simulator's side of the history, a crash that lost
/// written data (unsynced or torn), by role: what the engine cannot mark,
/// since the node that lost it was down.
fn features(events: &[Stamped], reached: &[Reached]) -> BTreeMap<String, u64> {
    let mut f = BTreeMap::new();
    for r in reached {
        let ms = r.t_us / 1000;
        f.entry(r.point.name().to_string()).or_insert(ms);
        f.entry(format!("{}@{}", r.point.name(), role_of(&r.node))).or_insert(ms);
    }
    for s in events {
        if let Ev::Sim(SimEvent::NodeCrashed { node, lost_bytes, torn_files, .. }) = &s.ev {
            if *lost_bytes > 0 || *torn_files > 0 {
                f.entry(format!("crash_lost_writes@{}", role_of(node))).or_insert(s.t_us / 1000);
            }
        }
    }
    f
}

/// Adds to a run's features each combination (point, fault kind, role of
/// the fault's node) of a point with a fault that may have caused it
/// ([`causes`] at the point's first moment): the same point reached under
/// a new kind of fault is something new.
fn combinations(f: &mut BTreeMap<String, u64>, events: &[FaultEvent]) {
    let points: Vec<(String, u64)> = f.iter().filter(|(k, _)| !k.contains('@')).map(|(k, t)| (k.clone(), *t)).collect();
    for (point, t) in points {
        for i in causes(events, t) {
            let e = &events[i];
            let roles: Vec<String> = match e.fault().nodes() {
                Some(ns) => ns.iter().map(|n| role_of(n).to_string()).collect(),
                None => vec!["any".to_string()],
            };
            for role in roles {
                f.entry(format!("{point}<{}@{role}", e.kind())).or_insert(t);
            }
        }
    }
}

/// Events that start at or before `t_ms` (a predicate fault starts at 0,
/// `FaultEvent::at_ms`: it stays with the prefix).
fn prefix(events: &[FaultEvent], t_ms: u64) -> Vec<FaultEvent> {
    events.iter().filter(|e| e.at_ms() <= t_ms).cloned().collect()
}

fn suffix(events: &[FaultEvent], t_ms: u64) -> Vec<FaultEvent> {
    events.iter().filter(|e| e.at_ms() > t_ms).cloned().collect()
}

/// How long before a rare moment a fault that started then may have caused
/// it (a crash's recovery, a pause's timeouts).
const CAUSE_MS: u64 = 1500;

/// The faults that may have caused what a run reached at `t_ms`: a window
/// open then (or closed within [`CAUSE_MS`] before), a node fault begun in
/// the [`CAUSE_MS`] before, and every predicate fault (its moment is the
/// run's, not the schedule's).
fn causes(events: &[FaultEvent], t_ms: u64) -> Vec<usize> {
    (0..events.len())
        .filter(|&i| {
            let e = &events[i];
            match e.window() {
                Some((at, dur)) => at <= t_ms && t_ms <= at + dur + CAUSE_MS,
                None if matches!(e.fault().timing(), faults::Timing::Predicate) => true,
                None => e.at_ms() <= t_ms && t_ms <= e.at_ms() + CAUSE_MS,
            }
        })
        .collect()
}

/// A run's engine events as [`Entry::events`] keeps them.
fn engine_events(h: &exactsim_model::history::History) -> Vec<(u64, String, &'static str, u32)> {
    let mut seen: BTreeMap<(String, &'static str), u32> = BTreeMap::new();
    let mut v = Vec::new();
    for s in &h.events {
        if let exactsim_model::history::Ev::Engine(e) = &s.ev {
            let n = seen.entry((s.node.clone(), e.name())).or_insert(0);
            *n += 1;
            v.push((s.t_us / 1000, s.node.clone(), e.name(), *n));
        }
    }
    v
}

/// Fresh seed `i` of shard `K` of `N`: `first + i*N + K-1`, so the shards'
/// fresh seeds are disjoint and together those of one explorer.
fn fresh_seed(first: u64, i: u64, (k, n): (u64, u64)) -> u64 {
    first.wrapping_add(i.wrapping_mul(n)).wrapping_add(k - 1)
}

/// How long a predicate fault holds its node.
const AIM_HOLD_MS: [u64; 4] = [200, 600, 1500, 3000];

impl Explore {
    /// Explore until the budget is spent (or the deadline passes, or the
    /// first failure). With `jobs` > 1 the runs are made in batches of
    /// `jobs` at a time, each batch planned from the corpus as it stood
    /// before it and its results taken in plan order: the explorer stays a
    /// function of its seed (and of `jobs`).
    pub fn run(&self) -> ExploreReport {
        #[allow(clippy::disallowed_methods)]
        let t0 = std::time::Instant::now();
        let (k, n) = self.shard.unwrap_or((1, 1));
        // Each shard explores with its own choices and its own fresh seeds
        // (fresh seed i of shard K of N is `first_seed + i*N + K-1`, as a
        // campaign's seed index i belongs to shard i mod N + 1).
        let mut rng = SimRng::new(self.seed.wrapping_add((k - 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)));
        let mut rep = ExploreReport::default();
        // The saved corpus first: each of its runs again (a run is a
        // function of its seed and schedule), so its features count.
        let mut plans: Vec<Plan> = self
            .resume
            .iter()
            .map(|r| Plan { scenario: r.0, seed: r.1, schedule: Some(r.2.clone()), origin: Origin::Corpus })
            .collect();
        let mut fresh = 0u64;
        // Derived schedules over a cap are drawn again, a bounded number of
        // times.
        let mut draws = 0u64;
        let jobs = self.jobs.max(1) as u64;
        // The budget is of new runs: the saved corpus's come on top.
        let budget = self.budget.saturating_add(self.resume.len() as u64);
        loop {
            let out_of_time = self.deadline.is_some_and(|d| t0.elapsed() >= d);
            if rep.runs >= budget || out_of_time {
                break;
            }
            let want = jobs.min(budget - rep.runs) as usize;
            if plans.is_empty() {
                while plans.len() < want && draws < self.budget.saturating_mul(4) {
                    draws += 1;
                    let warmup = rep.corpus.is_empty() || rep.runs < 2 * self.scenarios.len() as u64;
                    let plan = if warmup || rng.below(2) == 0 {
                        let i = fresh;
                        fresh += 1;
                        let seed = fresh_seed(self.first_seed, i, (k, n));
                        Plan {
                            scenario: (i as usize) % self.scenarios.len(),
                            seed,
                            schedule: None,
                            origin: Origin::Fresh,
                        }
                    } else {
                        let (e, s, origin) = self.derive(&mut rng, &rep);
                        Plan { scenario: e.scenario, seed: e.seed, schedule: Some(s), origin }
                    };
                    if self.valid(&plan) {
                        plans.push(plan); // else a derived schedule over a cap: draw again
                    }
                }
                if plans.is_empty() {
                    break;
                }
            }
            let batch: Vec<Plan> = plans.drain(..want.min(plans.len())).collect();
            let outs = self.make(&batch);
            for (plan, out) in batch.into_iter().zip(outs) {
                if self.take(&mut rep, plan, out) && self.stop_at_failure {
                    return rep;
                }
            }
        }
        rep
    }

    /// The run a plan stands for.
    fn spec_of(&self, plan: &Plan) -> exactsim_model::run::RunSpec {
        let sc = self.scenarios[plan.scenario].clone();
        let mut sp = spec(sc, plan.seed, self.profile.clone(), self.mode, self.mutant);
        sp.schedule = plan.schedule.clone();
        sp
    }

    /// Whether a derived schedule is within the caps of its run.
    fn valid(&self, plan: &Plan) -> bool {
        let Some(s) = &plan.schedule else { return true };
        let sp = self.spec_of(plan);
        let workers = exactsim_model::run::derive_config(&sp).parallelism;
        s.validate(workers, sp.scenario.pipeline().system().is_some()).is_ok()
    }

    /// Make a batch of runs, `jobs` at a time, results in plan order.
    fn make(&self, batch: &[Plan]) -> Vec<Outcome> {
        if batch.len() == 1 {
            return vec![run_one(self.spec_of(&batch[0]), &self.profile_arg)];
        }
        std::thread::scope(|sc| {
            let handles: Vec<_> =
                batch.iter().map(|p| sc.spawn(move || run_one(self.spec_of(p), &self.profile_arg))).collect();
            handles.into_iter().map(|h| h.join().expect("a run's panic is caught inside it")).collect()
        })
    }

    /// Take one run's result into the report; `true` if it is the first
    /// failure.
    fn take(&self, rep: &mut ExploreReport, plan: Plan, out: Outcome) -> bool {
        rep.runs += 1;
        if !matches!(plan.origin, Origin::Fresh | Origin::Corpus) {
            rep.derived_runs += 1;
        }
        let mut f = features(&out.result.history.events, &out.result.history.reached);
        combinations(&mut f, &out.result.schedule.events);
        let mut new = false;
        for k in f.keys() {
            let c = rep.features.entry(k.clone()).or_insert(0);
            new |= *c == 0;
            *c += 1;
        }
        if new {
            let events = engine_events(&out.result.history);
            rep.corpus.push(Entry {
                scenario: plan.scenario,
                seed: plan.seed,
                schedule: out.result.schedule.clone(),
                first_ms: f,
                events,
            });
        }
        if out.report.violations.is_empty() || rep.failure.is_some() {
            return false;
        }
        rep.failure = Some((rep.runs, Box::new(out)));
        rep.failure_origin = Some(plan.origin);
        true
    }

    /// A new schedule from the corpus: a parent that reached the rarest
    /// feature, changed one way.
    fn derive(&self, rng: &mut SimRng, rep: &ExploreReport) -> (Entry, Schedule, Origin) {
        // The rarest features the corpus holds (ties: any of them).
        let held: Vec<(&String, u64)> = rep
            .features
            .iter()
            .filter(|(k, _)| rep.corpus.iter().any(|e| e.first_ms.contains_key(*k)))
            .map(|(k, c)| (k, *c))
            .collect();
        let min = held.iter().map(|x| x.1).min().unwrap_or(0);
        let rarest: Vec<&String> = held.iter().filter(|x| x.1 == min).map(|x| x.0).collect();
        let feature = (*rng.pick(&rarest)).clone();
        let parents: Vec<&Entry> = rep.corpus.iter().filter(|e| e.first_ms.contains_key(&feature)).collect();
        let parent = (*rng.pick(&parents)).clone();
        let t = parent.first_ms[&feature];
        let mut s = parent.schedule.clone();
        let safety = s.safety_ms;
        let sc = &self.scenarios[parent.scenario];
        let sp = spec(sc.clone(), parent.seed, self.profile.clone(), self.mode, self.mutant);
        let cfg = exactsim_model::run::derive_config(&sp);
        let system = sc.pipeline().system().is_some();
        let draw = |rng: &mut SimRng| generate(rng.next_u64(), &self.profile, &cfg, system).events;
        let others: Vec<&Entry> =
            rep.corpus.iter().filter(|e| e.scenario == parent.scenario && e.seed != parent.seed).collect();
        let causes = causes(&s.events, t);
        let nodes = exactsim_model::schedule::run_nodes(cfg.parallelism, system);
        let narrowing = exactsim_model::narrow::Narrowing { safety_ms: safety, nodes: &nodes };
        let pick = rng.below(16);
        if pick < 7 && !causes.is_empty() {
            let k = *rng.pick(&causes);
            let e = s.events[k].clone();
            if pick < 2 {
                // The cause played twice: a second copy a little off.
                let d = exactsim_model::narrow::SHIFTS_MS[rng.below(7) as usize] as i64;
                if let Some(c) = e.shifted(if rng.below(2) == 0 { -d } else { d }, safety) {
                    s.events.push(c);
                    return (parent, s, Origin::Twice);
                }
            }
            // Moved, narrowed or re-aimed.
            let mut options = e.reaims(safety);
            options.extend(e.narrowings(&narrowing));
            if !options.is_empty() {
                s.events[k] = rng.pick(&options).clone();
                return (parent, s, Origin::Tweak);
            }
        }
        let origin = match rng.below(8) {
            6 | 7 => {
                // A crash, pause or stop of a node when it emits an event it
                // emitted in the second before the rare moment again.
                let near: Vec<&(u64, String, &'static str, u32)> =
                    parent.events.iter().filter(|e| e.0 <= t && e.0 + 1000 >= t).collect();
                let (_, node, event, nth) = if near.is_empty() {
                    (*rng.pick(&parent.events.iter().collect::<Vec<_>>())).clone()
                } else {
                    (*rng.pick(&near)).clone()
                };
                let action = *rng.pick(&[TriggerAction::Crash, TriggerAction::Pause, TriggerAction::Stop]);
                let dur_ms = *rng.pick(&AIM_HOLD_MS);
                s.events.push(FaultEvent::OnEvent(faults::OnEvent {
                    node: Some(node),
                    event: event.to_string(),
                    nth,
                    action,
                    dur_ms,
                }));
                Origin::AimAtEvent
            }
            0 | 1 => {
                // The run up to the rare moment, and fresh faults after it.
                let mut ev = prefix(&s.events, t);
                ev.extend(suffix(&draw(rng), t));
                s.events = ev;
                Origin::Redraw
            }
            2 if !s.events.is_empty() => {
                let k = rng.below(s.events.len() as u64) as usize;
                let d = exactsim_model::narrow::SHIFTS_MS[rng.below(7) as usize] as i64;
                let d = if rng.below(2) == 0 { -d } else { d };
                match s.events[k].shifted(d, safety) {
                    Some(e) => s.events[k] = e,
                    None => {
                        s.events.remove(k);
                    }
                }
                Origin::Shift
            }
            3 if !s.events.is_empty() => {
                s.events.remove(rng.below(s.events.len() as u64) as usize);
                Origin::Drop
            }
            4 if !others.is_empty() => {
                let other = *rng.pick(&others);
                let mut ev = prefix(&s.events, t);
                ev.extend(suffix(&other.schedule.events, t));
                s.events = ev;
                Origin::Splice
            }
            // (4 without another parent to splice with adds a fault.)
            n if n != 4 && !s.events.is_empty() => {
                let k = rng.below(s.events.len() as u64) as usize;
                let aims = s.events[k].reaims(safety);
                if aims.is_empty() {
                    s.events.remove(k);
                } else {
                    s.events[k] = rng.pick(&aims).clone();
                }
                Origin::Reaim
            }
            _ => {
                let extra = draw(rng);
                if !extra.is_empty() {
                    s.events.push(rng.pick(&extra).clone());
                }
                Origin::Add
            }
        };
        (parent, s, origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exactsim_engine::observe::Reach;

    fn ev(at_ms: u64) -> FaultEvent {
        FaultEvent::Pause(faults::Pause { at_ms, node: "broker".into(), dur_ms: 10 })
    }

    #[test]
    fn prefix_and_suffix_split_at_the_moment() {
        let evs = vec![ev(5), ev(10), ev(20)];
        assert_eq!(prefix(&evs, 10).len(), 2);
        assert_eq!(suffix(&evs, 10).len(), 1);
    }

    #[test]
    fn features_are_points_and_points_by_role_at_their_first_time() {
        let r = |t_us, node: &str, point| Reached { t_us, node: node.into(), point };
        let f = features(&[], &[r(3000, "broker", Reach::TxnExpired), r(9000, "broker", Reach::TxnExpired)]);
        assert_eq!(f["txn_expired"], 3);
        assert_eq!(f["txn_expired@broker"], 3);
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn shards_take_disjoint_fresh_seeds_that_together_are_one_explorers() {
        let one: Vec<u64> = (0..6).map(|i| fresh_seed(100, i, (1, 1))).collect();
        let mut both: Vec<u64> =
            (0..3).flat_map(|i| [fresh_seed(100, i, (1, 2)), fresh_seed(100, i, (2, 2))]).collect();
        both.sort();
        assert_eq!(one, both);
        assert_eq!(fresh_seed(100, 0, (2, 2)), 101);
    }

    #[test]
    fn a_crash_that_lost_writes_is_a_feature_of_its_role() {
        let crash = |t_us, lost_bytes| Stamped {
            t_us,
            node: "store".into(),
            ev: Ev::Sim(SimEvent::NodeCrashed {
                node: "store".into(),
                cause: "crash".into(),
                lost_bytes,
                torn_files: 0,
            }),
        };
        let f = features(&[crash(1000, 0), crash(5000, 12)], &[]);
        assert_eq!(f["crash_lost_writes@store"], 5);
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn the_causes_of_a_moment_are_the_faults_that_held_it_or_just_preceded_it() {
        let pause = |at_ms, dur_ms| FaultEvent::Pause(faults::Pause { at_ms, node: "broker".into(), dur_ms });
        let evs = vec![pause(50, 50), pause(1000, 500), pause(3000, 10), ev(1400)];
        // At 1,600 ms: pauses (node faults) begun in the 1,500 ms before;
        // the first began too long before, the third begins after.
        assert_eq!(causes(&evs, 1600), vec![1, 3]);
        let cut = |at_ms, dur_ms| FaultEvent::PacketLoss(faults::PacketLoss { at_ms, dur_ms, permille: 100 });
        // A window holds the moment, or closed at most 1,500 ms before it.
        assert_eq!(causes(&[cut(0, 100), cut(0, 200), cut(1700, 10)], 1700), vec![1, 2]);
    }
}

#[cfg(all(test, madsim))]
mod run_tests {
    use super::*;

    fn explorer(mutant: Option<Mutant>, seed: u64, budget: u64) -> Explore {
        Explore {
            scenarios: vec![crate::resolve_scenario("word_count").unwrap()],
            profile: Profile::named("chaos").unwrap(),
            profile_arg: "chaos".into(),
            mode: DeliveryMode::ExactlyOnce,
            mutant,
            budget,
            first_seed: 0,
            seed,
            stop_at_failure: true,
            jobs: 1,
            shard: None,
            deadline: None,
            resume: Vec::new(),
        }
    }

    /// The explorer is a function of its seed: the same runs, the same
    /// corpus, the same features.
    #[test]
    fn exploring_is_deterministic_and_derives_runs_from_its_corpus() {
        let a = explorer(None, 7, 16).run();
        let b = explorer(None, 7, 16).run();
        assert_eq!(a.runs, 16);
        assert!(a.derived_runs > 0, "runs were derived from the corpus");
        assert!(!a.corpus.is_empty());
        assert_eq!(a.features, b.features);
        let seeds = |r: &ExploreReport| r.corpus.iter().map(|e| (e.seed, e.schedule.events.len())).collect::<Vec<_>>();
        assert_eq!(seeds(&a), seeds(&b));
        assert!(a.failure.is_none(), "main passes");
    }

    /// Batches of runs keep the explorer a function of its seed; a saved
    /// corpus, read back, starts an explorer that reaches again everything
    /// the corpus reached.
    #[test]
    fn batches_are_deterministic_and_a_saved_corpus_resumes() {
        let mut x = explorer(None, 7, 12);
        x.jobs = 3;
        let a = x.run();
        let b = x.run();
        assert_eq!(a.runs, 12);
        assert_eq!(a.features, b.features);
        let json = serde_json::to_string(&a.corpus_file(&x)).unwrap();
        let back: CorpusFile = serde_json::from_str(&json).unwrap();
        assert_eq!(back.runs.len(), a.corpus.len());
        let mut y = explorer(None, 8, 0);
        y.resume = back.runs.iter().map(|r| (0, r.seed, r.schedule.clone())).collect();
        let r = y.run();
        assert_eq!(r.runs, a.corpus.len() as u64, "the corpus's runs, none new");
        for e in &a.corpus {
            for k in e.first_ms.keys() {
                assert!(r.features.contains_key(k), "{k} reached again");
            }
        }
    }

    /// A failure found by exploring is an ordinary run: its schedule, as a
    /// replay file holds it, fails the same way again.
    #[test]
    fn a_failure_found_by_exploring_replays() {
        let rep = explorer(Some(Mutant::NoRecommitOnRecovery), 3, 60).run();
        let (_, out) = rep.failure.expect("found within 60 runs");
        let file = crate::replay::ReplayFile::from_outcome(&out, "chaos");
        let again = run_one(file.to_spec().unwrap(), "chaos");
        assert!(file.reproduced_by(&again), "{:?}", again.report.violations);
        assert_eq!(again.report.trace_hash, out.report.trace_hash);
    }
}
