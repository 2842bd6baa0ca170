//! Narrowing fault events, for `shrink`: every kind says what smaller
//! versions of one of its events are — a shorter window or outage, a
//! window cut from its start, an earlier start, a lower `nth`, `count`,
//! rate or latency, fewer nodes reached (an isolation becomes a cut to one
//! node, a two-way cut a one-way one, "any node" one node), a gentler
//! action (a crash that keeps its page cache, a clean stop for a crash).
//!
//! Each kind says it in its own file (`faults/<kind>.rs`, [`faults::Fault`]);
//! a new kind cannot be added without saying how it narrows.
//!
//! **Invariant:** every narrowing is strictly smaller than its event under
//! [`Size`], a well-founded order (breadth, then magnitudes, then start).
//! A shrinker that only ever accepts narrowings and removals therefore
//! reaches a fixpoint, however it interleaves them.

use crate::faults::Aim;
use crate::faults::FaultEvent;
use std::ops::Add;

pub use crate::faults::common::{
    action_breadth, crash_breadth, earlier, smaller, toward_zero, windows, Narrowing, Size, DUR_MIN_MS, SHIFTS_MS,
};

/// A schedule's size: its number of events first, then the sum of their
/// sizes. Removing an event or narrowing one makes it strictly smaller.
pub fn schedule_size(events: &[FaultEvent]) -> (usize, Size) {
    (events.len(), events.iter().map(FaultEvent::size).fold(Size::default(), Add::add))
}

impl FaultEvent {
    /// This event's [`Size`] (its kind's answer).
    pub fn size(&self) -> Size {
        self.fault().size()
    }

    /// Narrower versions of this event, the ones most likely to remove the
    /// most first; each strictly smaller under [`Size`] (its kind's answer).
    pub fn narrowings(&self, n: &Narrowing) -> Vec<FaultEvent> {
        let v = self.fault().narrowings(n);
        assert!(v.iter().all(|w| w.size() < self.size()), "a narrowing of {self:?} is not smaller");
        v
    }
}

impl FaultEvent {
    /// This event started `delta_ms` later (earlier if negative); `None`
    /// for a predicate fault (it has no start) or a start outside the
    /// safety phase. Not a narrowing: the shrinker only uses it to re-aim
    /// the faults that stay when it drops one (see `shrink`).
    pub fn shifted(&self, delta_ms: i64, safety_ms: u64) -> Option<FaultEvent> {
        let mut e = self.clone();
        let Aim::At(at) = e.fault_mut().aim() else { return None };
        let moved = at.checked_add_signed(delta_ms).filter(|m| *m <= safety_ms && delta_ms != 0)?;
        *at = moved;
        Some(e)
    }

    /// How long the fault holds its target: a window's length, a node's
    /// down or frozen time (`None` for faults that only shape traffic or
    /// disks, which delay nothing by themselves).
    pub fn hold_ms(&self) -> Option<u64> {
        self.fault().hold_ms()
    }

    /// The same fault aimed a little differently: its start moved by each
    /// of [`SHIFTS_MS`] either way, or, for a predicate fault, the
    /// occurrence before or after the one it waits for.
    pub fn reaims(&self, safety_ms: u64) -> Vec<FaultEvent> {
        let mut e = self.clone();
        match e.fault_mut().aim() {
            Aim::Nth(nth) => {
                let n = *nth;
                [n.checked_sub(1).filter(|n| *n >= 1), n.checked_add(1)]
                    .into_iter()
                    .flatten()
                    .map(|k| {
                        let mut r = self.clone();
                        if let Aim::Nth(x) = r.fault_mut().aim() {
                            *x = k;
                        }
                        r
                    })
                    .collect()
            }
            Aim::At(_) => SHIFTS_MS
                .iter()
                .flat_map(|d| [-(*d as i64), *d as i64])
                .filter_map(|d| self.shifted(d, safety_ms))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults;
    use crate::schedule::{generate, run_nodes, CrashMode, Profile};
    use exactsim_engine::config::JobConfig;

    /// Every narrowing of every generated event, and of its narrowings in
    /// turn, is strictly smaller, still valid for the run, and never the
    /// event itself; so repeated narrowing ends.
    #[test]
    fn narrowings_are_valid_and_strictly_smaller() {
        let mut kinds = std::collections::BTreeSet::new();
        for profile in ["chaos", "zombie", "silent-restart", "disk"] {
            let p = Profile::named(profile).unwrap();
            for seed in 0..40 {
                let cfg = JobConfig { parallelism: 2 + (seed % 3) as u32, ..JobConfig::default() };
                let s = generate(seed, &p, &cfg, seed % 2 == 0);
                let nodes = run_nodes(cfg.parallelism, seed % 2 == 0);
                let n = Narrowing { safety_ms: s.safety_ms, nodes: &nodes };
                for e in &s.events {
                    kinds.insert(e.kind());
                    let mut frontier = vec![e.clone()];
                    for _ in 0..3 {
                        let mut next = Vec::new();
                        for x in &frontier {
                            for w in x.narrowings(&n) {
                                assert!(w.size() < x.size(), "{w:?} is not smaller than {x:?}");
                                let one = crate::schedule::Schedule { events: vec![w.clone()], ..s.clone() };
                                one.validate(cfg.parallelism, seed % 2 == 0).unwrap_or_else(|m| panic!("{w:?}: {m}"));
                                next.push(w);
                            }
                        }
                        next.truncate(64);
                        frontier = next;
                    }
                }
            }
        }
        assert!(kinds.len() >= 12, "only {kinds:?} were generated");
    }

    /// A chain of narrowings of one event, always taking the last (the
    /// mildest step), is finite and ends in the event's smallest form.
    #[test]
    fn narrowing_a_crash_ends_in_a_short_stop_at_zero() {
        let nodes = run_nodes(2, false);
        let n = Narrowing { safety_ms: 2500, nodes: &nodes };
        let mut e = FaultEvent::Crash(faults::Crash {
            at_ms: 1838,
            node: "worker-1".into(),
            down_ms: 200,
            disk: CrashMode::Torn,
        });
        let mut steps = 0;
        while let Some(w) = e.narrowings(&n).pop() {
            e = w;
            steps += 1;
            assert!(steps < 200, "narrowing does not end");
        }
        assert_eq!(e, FaultEvent::Stop(faults::Stop { at_ms: 0, node: "worker-1".into(), down_ms: DUR_MIN_MS }));
    }

    #[test]
    fn isolation_narrows_to_a_cut_to_one_node_and_one_way() {
        let nodes = run_nodes(2, false);
        let n = Narrowing { safety_ms: 2500, nodes: &nodes };
        let e = FaultEvent::Isolate(faults::Isolate { at_ms: 892, dur_ms: 2000, node: "coordinator".into() });
        let cuts: Vec<_> = e
            .narrowings(&n)
            .into_iter()
            .filter_map(|w| match w {
                FaultEvent::Partition(faults::Partition { a, b, one_way: false, at_ms: 892, dur_ms: 2000 }) => {
                    Some((a, b))
                }
                _ => None,
            })
            .collect();
        assert_eq!(cuts.len(), nodes.len() - 1);
        assert!(cuts.iter().all(|(a, b)| a == "coordinator" && b != "coordinator"));
        let cut = FaultEvent::Partition(faults::Partition {
            at_ms: 0,
            dur_ms: 10,
            a: "coordinator".into(),
            b: "broker".into(),
            one_way: false,
        });
        let one_way: Vec<_> = cut.narrowings(&n).into_iter().filter(|w| w.size().breadth == 1).collect();
        assert_eq!(one_way.len(), 2, "{one_way:?}");
    }
}
