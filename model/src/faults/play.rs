//! **The one play loop**: a plain state machine that plays a schedule on a
//! [`Target`]. The simulator (`sim/src/world.rs`) and real mode
//! (`src/real/player.rs`) drive it with their own clocks: ask
//! [`Player::next_due_ms`], wait until then (or until a predicate fires:
//! [`Player::fire`]), [`Player::advance`]; [`Player::heal`] ends it.
//!
//! The safety phase: faults start until `safety_ms` (one at `safety_ms` or
//! later never does), windows close when they end and node faults end by
//! the restarts and resumes their start scheduled, possibly after the
//! phase (an outage may outlast it, as it outlasts the engine's timeouts).

use super::common::CrashMode;
use super::{FaultEvent, Shown, Target, Timing};
use std::collections::{BTreeMap, BTreeSet};

/// Down time after a fatal error (the node asked for its own crash).
pub const FATAL_DOWN_MS: u64 = 50;

/// What the player does at a future instant.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Wakeup {
    Restart(String),
    /// The node and the pause's detail (ends its timeline band).
    Resume(String, String),
    /// Close the disk window a trigger opened: its event, node and detail.
    CloseDisk(usize, String, String),
}

/// Timed ends of node faults: (ms, sequence) -> what happens then.
#[derive(Default)]
pub struct Wakeups {
    due: BTreeMap<(u64, u64), Wakeup>,
    seq: u64,
}

impl Wakeups {
    fn at(&mut self, ms: u64, w: Wakeup) {
        self.seq += 1;
        self.due.insert((ms, self.seq), w);
    }
}

/// A predicate that fired (the recorder armed it), or a fatal error.
#[derive(Clone, Debug)]
pub struct Fired {
    pub node: String,
    pub cause: String,
    /// The schedule's event whose predicate fired; `None`: a fatal error.
    pub index: Option<usize>,
}

/// What a kind's `start` and `end` see: the event, the time, what fired
/// it, and the timed ends it may schedule.
pub struct Cx<'a> {
    pub index: usize,
    pub now_ms: u64,
    /// The event as the history shows it (its JSON).
    pub detail: &'a str,
    fired: Option<&'a Fired>,
    wakeups: &'a mut Wakeups,
    paused: &'a mut BTreeSet<String>,
}

impl Cx<'_> {
    /// This event shown as `kind`.
    pub fn shown<'s>(&'s self, kind: &'s str) -> Shown<'s> {
        Shown { kind, detail: self.detail }
    }

    /// The node and cause of the predicate that fired (predicate kinds).
    pub fn fired(&self) -> (&str, &str) {
        let f = self.fired.expect("a predicate fault starts when its predicate fires");
        (&f.node, &f.cause)
    }

    /// Restart `node` `down_ms` from now.
    pub fn restart_after(&mut self, node: &str, down_ms: u64) {
        self.wakeups.at(self.now_ms.saturating_add(down_ms), Wakeup::Restart(node.to_string()));
    }

    /// Resume the paused `node` `dur_ms` from now (its band ends with
    /// `detail`).
    pub fn resume_after(&mut self, node: &str, dur_ms: u64, detail: &str) {
        self.paused.insert(node.to_string());
        self.wakeups.at(self.now_ms.saturating_add(dur_ms), Wakeup::Resume(node.to_string(), detail.to_string()));
    }
}

impl Cx<'_> {
    /// Close the full-disk window of this event on `node` `dur_ms` from now.
    pub fn close_disk_after(&mut self, node: &str, dur_ms: u64) {
        let w = Wakeup::CloseDisk(self.index, node.to_string(), self.detail.to_string());
        self.wakeups.at(self.now_ms.saturating_add(dur_ms), w);
    }
}

/// The disk window of a full disk: every operation fails.
pub fn full_disk(node: &str) -> super::Window<'_> {
    super::Window::DiskErrors { node, permille: 1000 }
}

/// Plays one schedule.
pub struct Player<'a> {
    events: &'a [FaultEvent],
    safety_ms: u64,
    /// The safety phase's timed steps: (ms, event index, is its end), sorted.
    timeline: Vec<(u64, usize, bool)>,
    next: usize,
    wakeups: Wakeups,
    paused: BTreeSet<String>,
    safety: bool,
    /// Events whose start played nothing (their node was down).
    pub unplayed: Vec<usize>,
}

impl<'a> Player<'a> {
    /// Play the events `plays` accepts (all of them in simulation; real
    /// mode leaves out what it cannot play).
    /// Playing `events` (a schedule's, whose safety phase ends at
    /// `safety_ms`); `plays` says which of them this target plays.
    pub fn new(events: &'a [FaultEvent], safety_ms: u64, plays: impl Fn(&FaultEvent) -> bool) -> Player<'a> {
        let mut timeline = Vec::new();
        for (i, e) in events.iter().enumerate() {
            if e.at_ms() >= safety_ms || !plays(e) {
                continue;
            }
            match e.fault().timing() {
                Timing::Window { at_ms, dur_ms } => {
                    timeline.push((at_ms, i, false));
                    timeline.push((at_ms.saturating_add(dur_ms), i, true));
                }
                Timing::At(at_ms) => timeline.push((at_ms, i, false)),
                Timing::Predicate => {}
            }
        }
        timeline.sort();
        Player {
            events,
            safety_ms,
            timeline,
            next: 0,
            wakeups: Wakeups::default(),
            paused: BTreeSet::new(),
            safety: true,
            unplayed: Vec::new(),
        }
    }

    /// `true` once: the first time it is asked at or after `safety_ms`
    /// (no new fault starts from then on; predicates are disarmed).
    pub fn safety_ends(&mut self, now_ms: u64) -> bool {
        if self.safety && now_ms >= self.safety_ms {
            self.safety = false;
            return true;
        }
        false
    }

    /// When [`Player::advance`] has something to do next; `None`: the
    /// safety phase is over and nothing is left.
    pub fn next_due_ms(&self) -> Option<u64> {
        let n = [self.timeline.get(self.next).map(|t| t.0), self.wakeups.due.keys().next().map(|k| k.0)]
            .into_iter()
            .flatten()
            .min();
        match (self.safety, n) {
            (true, n) => Some(n.unwrap_or(self.safety_ms).min(self.safety_ms)),
            (false, n) => n,
        }
    }

    /// Play everything due by `now_ms`: the timed ends first, then the
    /// timeline's starts and ends.
    pub fn advance(&mut self, now_ms: u64, t: &mut dyn Target) {
        while let Some((&(at, s), _)) = self.wakeups.due.first_key_value() {
            if at > now_ms {
                break;
            }
            let w = self.wakeups.due.remove(&(at, s)).expect("present");
            self.wake(w, t);
        }
        while self.next < self.timeline.len() && self.timeline[self.next].0 <= now_ms {
            let (_, i, is_end) = self.timeline[self.next];
            self.next += 1;
            let e = &self.events[i];
            let detail = e.describe();
            let mut cx = self.cx(i, now_ms, &detail, None);
            if is_end {
                e.fault().end(&mut cx, t);
            } else if !e.fault().start(&mut cx, t) {
                self.unplayed.push(i);
            }
        }
    }

    /// A predicate fired (or a node hit a fatal error): play its fault.
    pub fn fire(&mut self, f: &Fired, now_ms: u64, t: &mut dyn Target) {
        match f.index {
            Some(i) => {
                let e = &self.events[i];
                let detail = e.describe();
                let mut cx = self.cx(i, now_ms, &detail, Some(f));
                e.fault().start(&mut cx, t);
            }
            None => {
                if t.crash(&f.node, &f.cause, CrashMode::KeepAll, true) {
                    self.wakeups.at(now_ms.saturating_add(FATAL_DOWN_MS), Wakeup::Restart(f.node.clone()));
                }
            }
        }
    }

    /// Heal: close every window, play every timed end now (restart every
    /// node down, resume every node paused), in order.
    pub fn heal(&mut self, t: &mut dyn Target) {
        t.heal();
        for (_, w) in std::mem::take(&mut self.wakeups.due) {
            if !matches!(w, Wakeup::CloseDisk(..)) {
                self.wake(w, t); // the heal closed every window
            }
        }
        for n in std::mem::take(&mut self.paused) {
            t.resume(&n, &Shown { kind: "pause", detail: "" });
        }
    }

    fn wake(&mut self, w: Wakeup, t: &mut dyn Target) {
        match w {
            Wakeup::Restart(n) => t.restart(&n),
            Wakeup::Resume(n, d) => {
                self.paused.remove(&n);
                t.resume(&n, &Shown { kind: "pause", detail: &d });
            }
            Wakeup::CloseDisk(i, n, d) => t.close(i, &full_disk(&n), &Shown { kind: "disk_errors", detail: &d }),
        }
    }

    fn cx<'c>(&'c mut self, index: usize, now_ms: u64, detail: &'c str, fired: Option<&'c Fired>) -> Cx<'c> {
        Cx { index, now_ms, detail, fired, wakeups: &mut self.wakeups, paused: &mut self.paused }
    }
}
