//! **Guided exploration**: instead of drawing every run's faults blindly
//! from its seed, keep a corpus of schedules that reached something new
//! (a reachability point, or a point on a node role no run had reached it
//! on) and derive the next runs from the runs that reached the rarest ones:
//! keep a parent's faults up to the moment it first reached its rarest
//! point and draw the rest afresh, or aim a crash, pause or stop at an
//! engine event the parent's nodes emitted shortly before that moment (a
//! predicate fault: "when this node emits this event the n-th time"), or
//! shift, drop, add or re-aim one fault, or splice two parents at that
//! moment. Blind runs (fresh seeds) keep
//! coming too, one in four, so the search never narrows to one corpus.
//!
//! Every run is an ordinary run: a seed and an explicit schedule, which a
//! replay file holds, so a failure found by exploring is replayed, shrunk
//! and kept like any other. The explorer is deterministic given its own
//! seed (its choices come from one `SimRng`), one run at a time.

use crate::{run_one, spec};
use exactsim_engine::config::Mutant;
use exactsim_engine::types::DeliveryMode;
use exactsim_model::faults;
use exactsim_model::history::Reached;
use exactsim_model::rng::SimRng;
use exactsim_model::scenario::Scenario;
use exactsim_model::schedule::{generate, role_of, FaultEvent, Profile, Schedule, TriggerAction};
use exactsim_sim::runner::Outcome;
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
    /// Runs to make at most.
    pub budget: u64,
    /// The first fresh seed (fresh seeds count up from it, as a campaign's).
    pub first_seed: u64,
    /// The explorer's own seed: every choice it makes comes from it.
    pub seed: u64,
    /// Stop at the first failing run.
    pub stop_at_failure: bool,
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
}

/// What exploring found.
#[derive(Default)]
pub struct ExploreReport {
    pub runs: u64,
    /// Runs whose schedule was derived from the corpus (not fresh seeds).
    pub derived_runs: u64,
    /// The first failing run: (runs made until then, its outcome).
    pub failure: Option<(u64, Box<Outcome>)>,
    pub corpus: Vec<Entry>,
    /// Runs that reached each feature (`point`, `point@role`).
    pub features: BTreeMap<String, u64>,
}

/// A run's features: each point it reached, and each (point, node role).
fn features(reached: &[Reached]) -> BTreeMap<String, u64> {
    let mut f = BTreeMap::new();
    for r in reached {
        let ms = r.t_us / 1000;
        f.entry(r.point.name().to_string()).or_insert(ms);
        f.entry(format!("{}@{}", r.point.name(), role_of(&r.node))).or_insert(ms);
    }
    f
}

/// Events that start at or before `t_ms` (a predicate fault starts at 0,
/// `FaultEvent::at_ms`: it stays with the prefix).
fn prefix(events: &[FaultEvent], t_ms: u64) -> Vec<FaultEvent> {
    events.iter().filter(|e| e.at_ms() <= t_ms).cloned().collect()
}

fn suffix(events: &[FaultEvent], t_ms: u64) -> Vec<FaultEvent> {
    events.iter().filter(|e| e.at_ms() > t_ms).cloned().collect()
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

/// How long a predicate fault holds its node.
const AIM_HOLD_MS: [u64; 4] = [200, 600, 1500, 3000];

impl Explore {
    /// Explore until the budget is spent (or the first failure).
    pub fn run(&self) -> ExploreReport {
        let mut rng = SimRng::new(self.seed);
        let mut rep = ExploreReport::default();
        let mut fresh = 0u64;
        // Derived schedules over a cap are drawn again, a bounded number of
        // times.
        let mut draws = 0u64;
        while rep.runs < self.budget && draws < self.budget.saturating_mul(4) {
            draws += 1;
            let warmup = rep.corpus.is_empty() || rep.runs < 2 * self.scenarios.len() as u64;
            let (scenario, seed, schedule, origin) = if warmup || rng.below(2) == 0 {
                let i = fresh;
                fresh += 1;
                ((i as usize) % self.scenarios.len(), self.first_seed.wrapping_add(i), None, Origin::Fresh)
            } else {
                let (e, s, o) = self.derive(&mut rng, &rep);
                (e.scenario, e.seed, Some(s), o)
            };
            let sc = self.scenarios[scenario].clone();
            let mut sp = spec(sc, seed, self.profile.clone(), self.mode, self.mutant);
            if let Some(s) = schedule {
                let workers = exactsim_model::run::derive_config(&sp).parallelism;
                if s.validate(workers, sp.scenario.pipeline().system().is_some()).is_err() {
                    continue; // a derived schedule over a cap: draw again
                }
                sp.schedule = Some(s);
            }
            let out = run_one(sp, &self.profile_arg);
            rep.runs += 1;
            if origin != Origin::Fresh {
                rep.derived_runs += 1;
            }
            let f = features(&out.result.history.reached);
            let mut new = false;
            for k in f.keys() {
                let c = rep.features.entry(k.clone()).or_insert(0);
                new |= *c == 0;
                *c += 1;
            }
            if new {
                let events = engine_events(&out.result.history);
                rep.corpus.push(Entry { scenario, seed, schedule: out.result.schedule.clone(), first_ms: f, events });
            }
            if !out.report.violations.is_empty() && rep.failure.is_none() {
                rep.failure = Some((rep.runs, Box::new(out)));
                if self.stop_at_failure {
                    break;
                }
            }
        }
        rep
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
        let f = features(&[r(3000, "broker", Reach::TxnExpired), r(9000, "broker", Reach::TxnExpired)]);
        assert_eq!(f["txn_expired"], 3);
        assert_eq!(f["txn_expired@broker"], 3);
        assert_eq!(f.len(), 2);
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
