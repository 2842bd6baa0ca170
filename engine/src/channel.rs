//! FIFO data channels over lossy datagrams: sequence numbers, cumulative
//! acknowledgements, go-back-N retransmission, a bounded window for
//! backpressure. Channels live for one attempt; a new attempt starts new
//! channels at sequence 0.
//!
//! The retransmission timeout adapts to the measured acknowledgement delay
//! (TCP's estimator, RFC 6298, with Karn's rule: only messages sent once
//! are sampled) and backs off on consecutive timeouts. A receiver
//! acknowledges when its chain takes a message in, which waits for the
//! chain's sink round trips; with a fixed 40 ms timeout such a busy receiver
//! had its whole window sent again and again (on a 200k-record run 4 of 5
//! data messages were retransmissions of messages already received).

use crate::proto::Item;
use std::collections::{BTreeMap, VecDeque};

/// Sending side of one channel.
#[derive(Debug, Default)]
pub struct ChannelSender {
    next_seq: u64,
    /// Unacknowledged messages, oldest first: (seq, items, last sent ms,
    /// sent more than once).
    unacked: VecDeque<(u64, Vec<Item>, u64, bool)>,
    staged: Vec<Item>,
    /// Smoothed acknowledgement delay and its variation, in 1/8 ms (`None`
    /// before the first sample).
    srtt8: Option<u64>,
    rttvar8: u64,
    /// Consecutive timeouts without progress (the timeout doubles each).
    backoff: u32,
}

pub const WINDOW: usize = 32;
/// The least retransmission timeout (and the one before any sample).
pub const RETRANSMIT_MS: u64 = 40;
/// The largest, backoff included.
pub const MAX_RETRANSMIT_MS: u64 = 320;

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
        self.unacked.push_back((seq, items.clone(), now_ms, false));
        Some((seq, items))
    }

    /// Cumulative acknowledgement of everything up to `seq`, received at
    /// `now_ms` (on the same clock as `seal` and `due`).
    pub fn ack(&mut self, seq: u64, now_ms: u64) {
        let mut sample = None;
        while self.unacked.front().is_some_and(|(s, ..)| *s <= seq) {
            let (_, _, t, resent) = self.unacked.pop_front().expect("front");
            if !resent {
                sample = Some(now_ms.saturating_sub(t));
            }
        }
        // Karn: the backed-off timeout stays until a message sent once is
        // acknowledged (a receiver slower than every timeout so far still
        // gets a sample that way).
        if let Some(r) = sample {
            self.backoff = 0;
            let r8 = r * 8;
            match self.srtt8 {
                None => {
                    self.srtt8 = Some(r8);
                    self.rttvar8 = r8 / 2;
                }
                Some(srtt8) => {
                    self.rttvar8 = (3 * self.rttvar8 + srtt8.abs_diff(r8)) / 4;
                    self.srtt8 = Some((7 * srtt8 + r8) / 8);
                }
            }
        }
    }

    /// The current retransmission timeout in ms.
    pub fn timeout_ms(&self) -> u64 {
        let base = self.srtt8.map_or(RETRANSMIT_MS, |s| (s + 4 * self.rttvar8).div_ceil(8));
        (base.max(RETRANSMIT_MS) << self.backoff.min(4)).min(MAX_RETRANSMIT_MS)
    }

    /// Messages to send again (go-back-N from the oldest timed-out one).
    pub fn due(&mut self, now_ms: u64) -> Vec<(u64, Vec<Item>)> {
        let rto = self.timeout_ms();
        if self.unacked.front().is_none_or(|(_, _, t, _)| now_ms < t + rto) {
            return Vec::new();
        }
        self.backoff += 1;
        self.unacked
            .iter_mut()
            .map(|(s, items, t, resent)| {
                *t = now_ms;
                *resent = true;
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

    #[test]
    fn timeout_follows_the_ack_delay_and_backs_off() {
        let mut tx = ChannelSender::default();
        assert_eq!(tx.timeout_ms(), RETRANSMIT_MS);
        // A receiver that acknowledges 100 ms after each send: no
        // retransmission once the estimate has it.
        let mut now = 0;
        let mut resent = 0;
        for _ in 0..20 {
            tx.stage(Item::Watermark(now));
            let (seq, _) = tx.seal(now).unwrap();
            for t in (now..now + 100).step_by(5) {
                resent += tx.due(t).len();
            }
            now += 100;
            tx.ack(seq, now);
        }
        assert!(tx.timeout_ms() > 100, "{}", tx.timeout_ms());
        assert!(resent <= 3, "only the first messages, before the estimate: {resent}");
        // Nothing acknowledged any more: each timeout doubles the next, up
        // to the cap.
        tx.stage(Item::Watermark(1));
        tx.seal(now);
        let mut sends = Vec::new();
        for t in now..now + 3_000 {
            if !tx.due(t).is_empty() {
                sends.push(t);
            }
        }
        let gaps: Vec<u64> = sends.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.windows(2).all(|g| g[1] >= g[0]), "{gaps:?}");
        assert_eq!(*gaps.last().unwrap(), MAX_RETRANSMIT_MS, "{gaps:?}");
        // An acknowledgement of a message sent once resets the backoff.
        now += 3_000;
        tx.ack(u64::MAX, now);
        assert_eq!(tx.timeout_ms(), MAX_RETRANSMIT_MS);
        tx.stage(Item::Watermark(2));
        let (seq, _) = tx.seal(now).unwrap();
        tx.ack(seq, now + 100);
        assert!(tx.timeout_ms() < MAX_RETRANSMIT_MS, "{}", tx.timeout_ms());
    }

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
                            if let Some(a) = ack { tx.ack(a, now); }
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
