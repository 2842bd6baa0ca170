//! FIFO data channels over lossy datagrams: sequence numbers, cumulative
//! acknowledgements, go-back-N retransmission, a bounded window for
//! backpressure. Channels live for one attempt; a new attempt starts new
//! channels at sequence 0.

use crate::proto::Item;
use std::collections::{BTreeMap, VecDeque};

/// Sending side of one channel.
#[derive(Debug, Default)]
pub struct ChannelSender {
    next_seq: u64,
    /// Unacknowledged messages, oldest first: (seq, items, last sent ms).
    unacked: VecDeque<(u64, Vec<Item>, u64)>,
    staged: Vec<Item>,
}

pub const WINDOW: usize = 32;
pub const RETRANSMIT_MS: u64 = 40;

impl ChannelSender {
    pub fn stage(&mut self, item: Item) {
        self.staged.push(item);
    }

    pub fn window_full(&self) -> bool {
        self.unacked.len() >= WINDOW
    }

    pub fn is_idle(&self) -> bool {
        self.unacked.is_empty() && self.staged.is_empty()
    }

    /// Seal the staged items into one message to send now.
    pub fn seal(&mut self, now_ms: u64) -> Option<(u64, Vec<Item>)> {
        if self.staged.is_empty() {
            return None;
        }
        let items = std::mem::take(&mut self.staged);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.unacked.push_back((seq, items.clone(), now_ms));
        Some((seq, items))
    }

    /// Cumulative acknowledgement of everything up to `seq`.
    pub fn ack(&mut self, seq: u64) {
        while self.unacked.front().is_some_and(|(s, _, _)| *s <= seq) {
            self.unacked.pop_front();
        }
    }

    /// Messages to send again (go-back-N from the oldest timed-out one).
    pub fn due(&mut self, now_ms: u64) -> Vec<(u64, Vec<Item>)> {
        if self.unacked.front().is_none_or(|(_, _, t)| now_ms < t + RETRANSMIT_MS) {
            return Vec::new();
        }
        self.unacked
            .iter_mut()
            .map(|(s, items, t)| {
                *t = now_ms;
                (*s, items.clone())
            })
            .collect()
    }
}

/// Receiving side of one channel: restores FIFO order, drops duplicates.
#[derive(Debug, Default)]
pub struct ChannelReceiver {
    next_expected: u64,
    early: BTreeMap<u64, Vec<Item>>,
}

impl ChannelReceiver {
    /// Accept a message; returns the items now deliverable, in order, and
    /// the cumulative ack to send (if anything has been received in order).
    pub fn receive(&mut self, seq: u64, items: Vec<Item>) -> (Vec<Item>, Option<u64>) {
        if seq >= self.next_expected {
            self.early.entry(seq).or_insert(items);
        }
        let mut out = Vec::new();
        while let Some(items) = self.early.remove(&self.next_expected) {
            out.extend(items);
            self.next_expected += 1;
        }
        (out, self.next_expected.checked_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the network does (loss, duplication, reordering), the
        /// receiver delivers exactly the sent items, in order, once.
        #[test]
        fn fifo_exactly_once_over_a_bad_network(n in 1usize..40, script in proptest::collection::vec((0u8..4, 0usize..8), 0..400)) {
            let mut tx = ChannelSender::default();
            let mut rx = ChannelReceiver::default();
            let mut net: Vec<(u64, Vec<Item>)> = Vec::new();
            let mut sent = 0usize;
            let mut got = Vec::new();
            let mut now = 0;
            for (op, k) in script.into_iter().chain(std::iter::repeat_n((3u8, 0usize), 2000)) {
                now += 5;
                match op {
                    0 if sent < n && !tx.window_full() => {
                        tx.stage(Item::Watermark(sent as u64));
                        sent += 1;
                        net.extend(tx.seal(now));
                    }
                    1 if !net.is_empty() => { let i = k % net.len(); net.remove(i); } // loss
                    2 if !net.is_empty() => { let i = k % net.len(); let m = net[i].clone(); net.push(m); } // duplicate
                    _ => {
                        if !net.is_empty() {
                            let i = k % net.len();
                            let (s, items) = net.remove(i); // reorder: deliver any
                            let (items, ack) = rx.receive(s, items);
                            got.extend(items);
                            if let Some(a) = ack { tx.ack(a); }
                        } else if sent < n && !tx.window_full() {
                            tx.stage(Item::Watermark(sent as u64));
                            sent += 1;
                            net.extend(tx.seal(now));
                        }
                        net.extend(tx.due(now));
                    }
                }
            }
            let want: Vec<Item> = (0..sent as u64).map(Item::Watermark).collect();
            prop_assert_eq!(got, want);
        }
    }
}
