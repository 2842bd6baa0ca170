//! The simulation's timer: naive-timer 0.2's binary heap of deadlines (the
//! crate madsim used), with a sleeping task's waker stored as it is
//! instead of boxed in a closure. A pending `Sleep` arms a timer on every
//! poll, so that box was one allocation per poll (about 4% of a
//! simulation's instructions went to allocating and freeing them). The
//! heap, its ordering (by deadline alone) and the order of pushes and pops
//! are naive-timer's, so timers with equal deadlines fire in the same order
//! as before and no run changes.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::task::Waker;
use std::time::Duration;

/// What to do when a timer expires.
pub(crate) enum Callback {
    /// Wake a task (a `Sleep`).
    Wake(Waker),
    /// Call a function.
    Call(Box<dyn FnOnce() + Send + Sync + 'static>),
}

/// Timers by deadline; expired ones fire in heap order.
#[derive(Default)]
pub(crate) struct Timer {
    events: BinaryHeap<Event>,
}

impl Timer {
    /// Add a timer that fires once `deadline` has passed.
    pub(crate) fn add(&mut self, deadline: Duration, callback: Callback) {
        self.events.push(Event { deadline, callback });
    }

    /// Fire and remove every timer whose deadline is not after `now`.
    pub(crate) fn expire(&mut self, now: Duration) {
        while let Some(t) = self.events.peek() {
            if t.deadline > now {
                break;
            }
            let event = self.events.pop().unwrap();
            match event.callback {
                Callback::Wake(waker) => waker.wake(),
                Callback::Call(f) => f(),
            }
        }
    }

    /// The next deadline.
    pub(crate) fn next(&self) -> Option<Duration> {
        self.events.peek().map(|e| e.deadline)
    }
}

struct Event {
    deadline: Duration,
    callback: Callback,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.deadline.eq(&other.deadline)
    }
}

impl Eq for Event {}

// BinaryHeap is a max-heap: the earliest deadline is the greatest.
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Event {
    fn cmp(&self, other: &Event) -> Ordering {
        other.deadline.cmp(&self.deadline)
    }
}
