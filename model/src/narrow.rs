//! Narrowing fault events, for `shrink`: every kind says what smaller
//! versions of one of its events are — a shorter window or outage, a
//! window cut from its start, an earlier start, a lower `nth`, `count`,
//! rate or latency, fewer nodes reached (an isolation becomes a cut to one
//! node, a two-way cut a one-way one, "any node" one node), a gentler
//! action (a crash that keeps its page cache, a clean stop for a crash).
//!
//! The match below is exhaustive, so a new kind cannot be added without
//! saying how it narrows.
//!
//! **Invariant:** every narrowing is strictly smaller than its event under
//! [`Size`], a well-founded order (breadth, then magnitudes, then start).
//! A shrinker that only ever accepts narrowings and removals therefore
//! reaches a fixpoint, however it interleaves them.

use crate::schedule::{CrashMode, FaultEvent, TriggerAction};
use std::ops::Add;

/// The shortest window, outage or delay a narrowing proposes.
pub const DUR_MIN_MS: u64 = 10;

/// What narrowing needs to know about the run: the end of its safety
/// phase (no window may start after it) and the nodes a fault can be
/// retargeted to.
pub struct Narrowing<'a> {
    pub safety_ms: u64,
    pub nodes: &'a [String],
}

/// How big an event is, compared field by field in this order: how much of
/// the cluster it reaches and how harshly, the sum of its magnitudes
/// (milliseconds, permille, counts: only ever compared with the same
/// event's narrowings), and how late it starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size {
    pub breadth: u64,
    pub magnitude: u64,
    pub start: u64,
}

impl Add for Size {
    type Output = Size;
    fn add(self, o: Size) -> Size {
        Size {
            breadth: self.breadth + o.breadth,
            magnitude: self.magnitude.saturating_add(o.magnitude),
            start: self.start.saturating_add(o.start),
        }
    }
}

/// A schedule's size: its number of events first, then the sum of their
/// sizes. Removing an event or narrowing one makes it strictly smaller.
pub fn schedule_size(events: &[FaultEvent]) -> (usize, Size) {
    (events.len(), events.iter().map(FaultEvent::size).fold(Size::default(), Add::add))
}

/// Smaller values than `x`, no smaller than `min`, most aggressive first:
/// the minimum, a half, three quarters.
fn smaller(x: u64, min: u64) -> Vec<u64> {
    let mut v = Vec::new();
    for c in [min, x / 2, x - x / 4] {
        if c >= min && c < x && !v.contains(&c) {
            v.push(c);
        }
    }
    v
}

/// Earlier starts than `at`: the beginning, a half, three quarters.
fn earlier(at: u64) -> Vec<u64> {
    smaller(at, 0)
}

/// Magnitudes toward zero for a signed quantity.
fn toward_zero(x: i64) -> Vec<i64> {
    let mut v = Vec::new();
    for c in [0, x / 2] {
        if c.unsigned_abs() < x.unsigned_abs() && !v.contains(&c) {
            v.push(c);
        }
    }
    v
}

/// Narrower windows `(at_ms, dur_ms)`: shorter (end earlier), cut from the
/// start (end kept), then moved earlier.
fn windows(at: u64, dur: u64, safety_ms: u64) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = smaller(dur, DUR_MIN_MS).into_iter().map(|d| (at, d)).collect();
    let cut = dur / 2;
    if cut > 0 && dur - cut >= DUR_MIN_MS && at + cut <= safety_ms {
        v.push((at + cut, dur - cut));
    }
    v.extend(earlier(at).into_iter().map(|a| (a, dur)));
    v
}

fn crash_breadth(disk: CrashMode) -> u64 {
    match disk {
        CrashMode::LoseUnsynced | CrashMode::Torn => 3,
        CrashMode::KeepAll => 2,
    }
}

fn action_breadth(a: TriggerAction) -> u64 {
    match a {
        TriggerAction::Crash => 2,
        TriggerAction::Pause | TriggerAction::Stop => 1,
    }
}

impl FaultEvent {
    /// This event's [`Size`].
    pub fn size(&self) -> Size {
        let s = |breadth: u64, magnitude: u64, start: u64| Size { breadth, magnitude, start };
        match self {
            FaultEvent::Crash { at_ms, down_ms, disk, .. } => s(crash_breadth(*disk), *down_ms, *at_ms),
            FaultEvent::CrashAtPoint { node, nth, down_ms, disk, .. } => {
                s(crash_breadth(*disk) + u64::from(node.is_none()), u64::from(*nth) + down_ms, 0)
            }
            FaultEvent::Partition { at_ms, dur_ms, one_way, .. } => s(if *one_way { 1 } else { 2 }, *dur_ms, *at_ms),
            FaultEvent::Isolate { at_ms, dur_ms, .. } => s(3, *dur_ms, *at_ms),
            FaultEvent::PacketLoss { at_ms, dur_ms, permille } => s(1, dur_ms + u64::from(*permille), *at_ms),
            FaultEvent::Latency { at_ms, dur_ms, latency_ms } => s(1, dur_ms + latency_ms, *at_ms),
            FaultEvent::SlowDisk { at_ms, dur_ms, latency_ms, .. } => s(1, dur_ms + latency_ms, *at_ms),
            FaultEvent::DiskErrors { at_ms, dur_ms, permille, .. }
            | FaultEvent::CorruptReads { at_ms, dur_ms, permille, .. } => s(1, dur_ms + u64::from(*permille), *at_ms),
            FaultEvent::Pause { at_ms, dur_ms, .. } => s(1, *dur_ms, *at_ms),
            FaultEvent::LateDelivery { at_ms, dur_ms, to, delay_ms, count, .. } => {
                s(1 + u64::from(to.is_none()), dur_ms + delay_ms + u64::from(*count), *at_ms)
            }
            FaultEvent::Skew { at_ms, dur_ms, offset_ms, drift_permille, .. } => {
                s(1, dur_ms + offset_ms.unsigned_abs() + u64::from(drift_permille.unsigned_abs()), *at_ms)
            }
            FaultEvent::Stop { at_ms, down_ms, .. } => s(1, *down_ms, *at_ms),
            FaultEvent::OnEvent { node, nth, action, dur_ms, .. } => {
                s(action_breadth(*action) + u64::from(node.is_none()), u64::from(*nth) + dur_ms, 0)
            }
        }
    }

    /// Narrower versions of this event, the ones most likely to remove the
    /// most first; each strictly smaller under [`Size`].
    pub fn narrowings(&self, n: &Narrowing) -> Vec<FaultEvent> {
        let others = |of: &str| -> Vec<String> { n.nodes.iter().filter(|x| x.as_str() != of).cloned().collect() };
        let mut v = Vec::new();
        match self.clone() {
            FaultEvent::Crash { at_ms, node, down_ms, disk } => {
                v.push(FaultEvent::Stop { at_ms, node: node.clone(), down_ms });
                if disk != CrashMode::KeepAll {
                    v.push(FaultEvent::Crash { at_ms, node: node.clone(), down_ms, disk: CrashMode::KeepAll });
                }
                for d in smaller(down_ms, DUR_MIN_MS) {
                    v.push(FaultEvent::Crash { at_ms, node: node.clone(), down_ms: d, disk });
                }
                for a in earlier(at_ms) {
                    v.push(FaultEvent::Crash { at_ms: a, node: node.clone(), down_ms, disk });
                }
            }
            FaultEvent::CrashAtPoint { point, node, nth, down_ms, disk } => {
                if disk != CrashMode::KeepAll {
                    v.push(FaultEvent::CrashAtPoint {
                        point,
                        node: node.clone(),
                        nth,
                        down_ms,
                        disk: CrashMode::KeepAll,
                    });
                }
                for k in smaller(u64::from(nth), 1) {
                    let nth = u32::try_from(k).expect("smaller than a u32");
                    v.push(FaultEvent::CrashAtPoint { point, node: node.clone(), nth, down_ms, disk });
                }
                for d in smaller(down_ms, DUR_MIN_MS) {
                    v.push(FaultEvent::CrashAtPoint { point, node: node.clone(), nth, down_ms: d, disk });
                }
                if node.is_none() {
                    for x in n.nodes {
                        v.push(FaultEvent::CrashAtPoint { point, node: Some(x.clone()), nth, down_ms, disk });
                    }
                }
            }
            FaultEvent::Partition { at_ms, dur_ms, a, b, one_way } => {
                if !one_way {
                    v.push(FaultEvent::Partition { at_ms, dur_ms, a: a.clone(), b: b.clone(), one_way: true });
                    v.push(FaultEvent::Partition { at_ms, dur_ms, a: b.clone(), b: a.clone(), one_way: true });
                }
                for (at_ms, dur_ms) in windows(at_ms, dur_ms, n.safety_ms) {
                    v.push(FaultEvent::Partition { at_ms, dur_ms, a: a.clone(), b: b.clone(), one_way });
                }
            }
            FaultEvent::Isolate { at_ms, dur_ms, node } => {
                for other in others(&node) {
                    v.push(FaultEvent::Partition { at_ms, dur_ms, a: node.clone(), b: other, one_way: false });
                }
                for (at_ms, dur_ms) in windows(at_ms, dur_ms, n.safety_ms) {
                    v.push(FaultEvent::Isolate { at_ms, dur_ms, node: node.clone() });
                }
            }
            FaultEvent::PacketLoss { at_ms, dur_ms, permille } => {
                for p in smaller(u64::from(permille), 1) {
                    let permille = u32::try_from(p).expect("smaller than a u32");
                    v.push(FaultEvent::PacketLoss { at_ms, dur_ms, permille });
                }
                for (at_ms, dur_ms) in windows(at_ms, dur_ms, n.safety_ms) {
                    v.push(FaultEvent::PacketLoss { at_ms, dur_ms, permille });
                }
            }
            FaultEvent::Latency { at_ms, dur_ms, latency_ms } => {
                for l in smaller(latency_ms, 1) {
                    v.push(FaultEvent::Latency { at_ms, dur_ms, latency_ms: l });
                }
                for (at_ms, dur_ms) in windows(at_ms, dur_ms, n.safety_ms) {
                    v.push(FaultEvent::Latency { at_ms, dur_ms, latency_ms });
                }
            }
            FaultEvent::SlowDisk { at_ms, dur_ms, node, latency_ms } => {
                for l in smaller(latency_ms, 1) {
                    v.push(FaultEvent::SlowDisk { at_ms, dur_ms, node: node.clone(), latency_ms: l });
                }
                for (at_ms, dur_ms) in windows(at_ms, dur_ms, n.safety_ms) {
                    v.push(FaultEvent::SlowDisk { at_ms, dur_ms, node: node.clone(), latency_ms });
                }
            }
            FaultEvent::DiskErrors { at_ms, dur_ms, node, permille } => {
                for p in smaller(u64::from(permille), 1) {
                    let permille = u32::try_from(p).expect("smaller than a u32");
                    v.push(FaultEvent::DiskErrors { at_ms, dur_ms, node: node.clone(), permille });
                }
                for (at_ms, dur_ms) in windows(at_ms, dur_ms, n.safety_ms) {
                    v.push(FaultEvent::DiskErrors { at_ms, dur_ms, node: node.clone(), permille });
                }
            }
            FaultEvent::CorruptReads { at_ms, dur_ms, node, permille } => {
                for p in smaller(u64::from(permille), 1) {
                    let permille = u32::try_from(p).expect("smaller than a u32");
                    v.push(FaultEvent::CorruptReads { at_ms, dur_ms, node: node.clone(), permille });
                }
                for (at_ms, dur_ms) in windows(at_ms, dur_ms, n.safety_ms) {
                    v.push(FaultEvent::CorruptReads { at_ms, dur_ms, node: node.clone(), permille });
                }
            }
            FaultEvent::Pause { at_ms, node, dur_ms } => {
                for (at_ms, dur_ms) in windows(at_ms, dur_ms, n.safety_ms) {
                    v.push(FaultEvent::Pause { at_ms, node: node.clone(), dur_ms });
                }
            }
            FaultEvent::LateDelivery { at_ms, dur_ms, from, to, delay_ms, count } => {
                if to.is_none() {
                    for t in others(&from) {
                        let from = from.clone();
                        v.push(FaultEvent::LateDelivery { at_ms, dur_ms, from, to: Some(t), delay_ms, count });
                    }
                }
                for c in smaller(u64::from(count), 1) {
                    let count = u32::try_from(c).expect("smaller than a u32");
                    let (from, to) = (from.clone(), to.clone());
                    v.push(FaultEvent::LateDelivery { at_ms, dur_ms, from, to, delay_ms, count });
                }
                for d in smaller(delay_ms, 1) {
                    let (from, to) = (from.clone(), to.clone());
                    v.push(FaultEvent::LateDelivery { at_ms, dur_ms, from, to, delay_ms: d, count });
                }
                for (at_ms, dur_ms) in windows(at_ms, dur_ms, n.safety_ms) {
                    let (from, to) = (from.clone(), to.clone());
                    v.push(FaultEvent::LateDelivery { at_ms, dur_ms, from, to, delay_ms, count });
                }
            }
            FaultEvent::Skew { at_ms, dur_ms, node, offset_ms, drift_permille } => {
                for o in toward_zero(offset_ms) {
                    v.push(FaultEvent::Skew { at_ms, dur_ms, node: node.clone(), offset_ms: o, drift_permille });
                }
                for d in toward_zero(i64::from(drift_permille)) {
                    let drift_permille = i32::try_from(d).expect("toward zero from an i32");
                    v.push(FaultEvent::Skew { at_ms, dur_ms, node: node.clone(), offset_ms, drift_permille });
                }
                for (at_ms, dur_ms) in windows(at_ms, dur_ms, n.safety_ms) {
                    v.push(FaultEvent::Skew { at_ms, dur_ms, node: node.clone(), offset_ms, drift_permille });
                }
            }
            FaultEvent::Stop { at_ms, node, down_ms } => {
                for d in smaller(down_ms, DUR_MIN_MS) {
                    v.push(FaultEvent::Stop { at_ms, node: node.clone(), down_ms: d });
                }
                for a in earlier(at_ms) {
                    v.push(FaultEvent::Stop { at_ms: a, node: node.clone(), down_ms });
                }
            }
            FaultEvent::OnEvent { node, event, nth, action, dur_ms } => {
                if action == TriggerAction::Crash {
                    for gentler in [TriggerAction::Stop, TriggerAction::Pause] {
                        let (node, event) = (node.clone(), event.clone());
                        v.push(FaultEvent::OnEvent { node, event, nth, action: gentler, dur_ms });
                    }
                }
                for k in smaller(u64::from(nth), 1) {
                    let nth = u32::try_from(k).expect("smaller than a u32");
                    let (node, event) = (node.clone(), event.clone());
                    v.push(FaultEvent::OnEvent { node, event, nth, action, dur_ms });
                }
                for d in smaller(dur_ms, DUR_MIN_MS) {
                    let (node, event) = (node.clone(), event.clone());
                    v.push(FaultEvent::OnEvent { node, event, nth, action, dur_ms: d });
                }
                if node.is_none() {
                    for x in n.nodes {
                        let event = event.clone();
                        v.push(FaultEvent::OnEvent { node: Some(x.clone()), event, nth, action, dur_ms });
                    }
                }
            }
        }
        debug_assert!(v.iter().all(|w| w.size() < self.size()), "a narrowing of {self:?} is not smaller");
        v
    }
}

/// How far a re-aimed fault moves, in milliseconds, either way.
pub const SHIFTS_MS: [u64; 7] = [10, 25, 50, 100, 200, 400, 800];

impl FaultEvent {
    /// This event started `delta_ms` later (earlier if negative); `None`
    /// for a predicate fault (it has no start) or a start outside the
    /// safety phase. Not a narrowing: the shrinker only uses it to re-aim
    /// the faults that stay when it drops one (see `shrink`).
    pub fn shifted(&self, delta_ms: i64, safety_ms: u64) -> Option<FaultEvent> {
        let mut e = self.clone();
        let at = match &mut e {
            FaultEvent::Crash { at_ms, .. }
            | FaultEvent::Partition { at_ms, .. }
            | FaultEvent::Isolate { at_ms, .. }
            | FaultEvent::PacketLoss { at_ms, .. }
            | FaultEvent::Latency { at_ms, .. }
            | FaultEvent::SlowDisk { at_ms, .. }
            | FaultEvent::DiskErrors { at_ms, .. }
            | FaultEvent::CorruptReads { at_ms, .. }
            | FaultEvent::Pause { at_ms, .. }
            | FaultEvent::LateDelivery { at_ms, .. }
            | FaultEvent::Skew { at_ms, .. }
            | FaultEvent::Stop { at_ms, .. } => at_ms,
            FaultEvent::CrashAtPoint { .. } | FaultEvent::OnEvent { .. } => return None,
        };
        let moved = at.checked_add_signed(delta_ms).filter(|m| *m <= safety_ms && delta_ms != 0)?;
        *at = moved;
        Some(e)
    }

    /// How long the fault holds its target: a window's length, a node's
    /// down or frozen time (`None` for faults that only shape traffic or
    /// disks, which delay nothing by themselves).
    pub fn hold_ms(&self) -> Option<u64> {
        match self {
            FaultEvent::Crash { down_ms, .. }
            | FaultEvent::CrashAtPoint { down_ms, .. }
            | FaultEvent::Stop { down_ms, .. } => Some(*down_ms),
            FaultEvent::Pause { dur_ms, .. }
            | FaultEvent::Partition { dur_ms, .. }
            | FaultEvent::Isolate { dur_ms, .. }
            | FaultEvent::OnEvent { dur_ms, .. } => Some(*dur_ms),
            FaultEvent::PacketLoss { .. }
            | FaultEvent::Latency { .. }
            | FaultEvent::SlowDisk { .. }
            | FaultEvent::DiskErrors { .. }
            | FaultEvent::CorruptReads { .. }
            | FaultEvent::LateDelivery { .. }
            | FaultEvent::Skew { .. } => None,
        }
    }

    /// The same fault aimed a little differently: its start moved by each
    /// of [`SHIFTS_MS`] either way, or, for a predicate fault, the
    /// occurrence before or after the one it waits for.
    pub fn reaims(&self, safety_ms: u64) -> Vec<FaultEvent> {
        let nth_around = |nth: u32| [nth.checked_sub(1).filter(|n| *n >= 1), nth.checked_add(1)];
        match self.clone() {
            FaultEvent::CrashAtPoint { point, node, nth, down_ms, disk } => nth_around(nth)
                .into_iter()
                .flatten()
                .map(|nth| FaultEvent::CrashAtPoint { point, node: node.clone(), nth, down_ms, disk })
                .collect(),
            FaultEvent::OnEvent { node, event, nth, action, dur_ms } => nth_around(nth)
                .into_iter()
                .flatten()
                .map(|nth| FaultEvent::OnEvent { node: node.clone(), event: event.clone(), nth, action, dur_ms })
                .collect(),
            _ => SHIFTS_MS
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
    use crate::schedule::{generate, run_nodes, Profile};
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
        let mut e = FaultEvent::Crash { at_ms: 1838, node: "worker-1".into(), down_ms: 200, disk: CrashMode::Torn };
        let mut steps = 0;
        while let Some(w) = e.narrowings(&n).pop() {
            e = w;
            steps += 1;
            assert!(steps < 200, "narrowing does not end");
        }
        assert_eq!(e, FaultEvent::Stop { at_ms: 0, node: "worker-1".into(), down_ms: DUR_MIN_MS });
    }

    #[test]
    fn isolation_narrows_to_a_cut_to_one_node_and_one_way() {
        let nodes = run_nodes(2, false);
        let n = Narrowing { safety_ms: 2500, nodes: &nodes };
        let e = FaultEvent::Isolate { at_ms: 892, dur_ms: 2000, node: "coordinator".into() };
        let cuts: Vec<_> = e
            .narrowings(&n)
            .into_iter()
            .filter_map(|w| match w {
                FaultEvent::Partition { a, b, one_way: false, at_ms: 892, dur_ms: 2000 } => Some((a, b)),
                _ => None,
            })
            .collect();
        assert_eq!(cuts.len(), nodes.len() - 1);
        assert!(cuts.iter().all(|(a, b)| a == "coordinator" && b != "coordinator"));
        let cut =
            FaultEvent::Partition { at_ms: 0, dur_ms: 10, a: "coordinator".into(), b: "broker".into(), one_way: false };
        let one_way: Vec<_> = cut.narrowings(&n).into_iter().filter(|w| w.size().breadth == 1).collect();
        assert_eq!(one_way.len(), 2, "{one_way:?}");
    }
}
