//! Barrier alignment (asynchronous barrier snapshotting, Carbone et al.
//! 2015) as a plain state machine. A task with several inputs that sees
//! barrier `n` on one input blocks that input until `n` arrived on every
//! input; then it snapshots and forwards the barrier. In at-least-once mode
//! inputs are never blocked: the snapshot is taken when the last barrier
//! arrives, so it may include records from after the barrier.

use crate::types::CheckpointId;
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Keep going (this input is now blocked if aligning).
    Wait,
    /// Barrier `n` arrived on every input: snapshot now.
    Snapshot(CheckpointId),
    /// A newer barrier overtook an unfinished alignment: checkpoint `old`
    /// is abandoned at this task.
    Abandoned { old: CheckpointId },
    /// A barrier older than the current one: ignored.
    Stale,
}

pub struct Aligner {
    inputs: usize,
    aligned_mode: bool,
    current: Option<CheckpointId>,
    seen: BTreeSet<usize>,
    last_done: Option<CheckpointId>,
}

impl Aligner {
    pub fn new(inputs: usize, aligned_mode: bool) -> Self {
        assert!(inputs > 0);
        Aligner { inputs, aligned_mode, current: None, seen: BTreeSet::new(), last_done: None }
    }

    /// May records of `input` be processed now?
    pub fn is_blocked(&self, input: usize) -> bool {
        self.aligned_mode && self.current.is_some() && self.seen.contains(&input)
    }

    pub fn aligning(&self) -> Option<CheckpointId> {
        self.current
    }

    pub fn on_barrier(&mut self, input: usize, ckpt: CheckpointId) -> Vec<Outcome> {
        assert!(input < self.inputs);
        assert!(!self.is_blocked(input), "a blocked input delivered an item");
        let mut out = Vec::new();
        if self.last_done.is_some_and(|d| ckpt <= d) {
            return vec![Outcome::Stale];
        }
        match self.current {
            Some(c) if ckpt < c => return vec![Outcome::Stale],
            Some(c) if ckpt > c => {
                out.push(Outcome::Abandoned { old: c });
                self.current = None;
                self.seen.clear();
            }
            _ => {}
        }
        if self.current.is_none() {
            self.current = Some(ckpt);
        }
        if !self.seen.insert(input) && !self.aligned_mode {
            // At-least-once: a second barrier on one input cannot happen
            // before the first completes (barriers are increasing per input).
            unreachable!("duplicate barrier {ckpt} on input {input}");
        }
        if self.seen.len() == self.inputs {
            self.current = None;
            self.seen.clear();
            self.last_done = Some(ckpt);
            out.push(Outcome::Snapshot(ckpt));
        } else {
            out.push(Outcome::Wait);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn blocks_until_all_inputs() {
        let mut a = Aligner::new(3, true);
        assert_eq!(a.on_barrier(0, 1), vec![Outcome::Wait]);
        assert!(a.is_blocked(0));
        assert!(!a.is_blocked(1));
        assert_eq!(a.on_barrier(2, 1), vec![Outcome::Wait]);
        assert_eq!(a.on_barrier(1, 1), vec![Outcome::Snapshot(1)]);
        assert!(!a.is_blocked(0));
        assert_eq!(a.on_barrier(0, 1), vec![Outcome::Stale]);
    }

    #[test]
    fn newer_barrier_abandons_older() {
        let mut a = Aligner::new(2, true);
        assert_eq!(a.on_barrier(0, 3), vec![Outcome::Wait]);
        assert_eq!(a.on_barrier(1, 4), vec![Outcome::Abandoned { old: 3 }, Outcome::Wait]);
        assert!(!a.is_blocked(0));
        assert!(a.is_blocked(1));
        assert_eq!(a.on_barrier(0, 4), vec![Outcome::Snapshot(4)]);
    }

    #[test]
    fn unaligned_mode_never_blocks() {
        let mut a = Aligner::new(2, false);
        assert_eq!(a.on_barrier(0, 1), vec![Outcome::Wait]);
        assert!(!a.is_blocked(0));
        assert_eq!(a.on_barrier(1, 1), vec![Outcome::Snapshot(1)]);
    }

    proptest! {
        /// Whatever the interleaving of barrier arrivals (each input
        /// delivering increasing ids), every snapshot id is strictly
        /// increasing and happens only when all inputs delivered it.
        #[test]
        fn snapshots_increase_and_are_complete(inputs in 1usize..5, rounds in 1u64..6, order in proptest::collection::vec(0usize..5, 0..60)) {
            let mut a = Aligner::new(inputs, true);
            let mut next: Vec<u64> = vec![1; inputs];
            let mut delivered: Vec<Vec<u64>> = vec![Vec::new(); inputs];
            let mut last = 0;
            for pick in order {
                let i = pick % inputs;
                if a.is_blocked(i) || next[i] > rounds { continue; }
                let c = next[i];
                next[i] += 1;
                delivered[i].push(c);
                for o in a.on_barrier(i, c) {
                    if let Outcome::Snapshot(n) = o {
                        prop_assert!(n > last);
                        last = n;
                        for d in &delivered { prop_assert!(d.contains(&n)); }
                    }
                }
            }
        }
    }
}
