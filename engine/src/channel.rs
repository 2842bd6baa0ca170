//! FIFO data channels over lossy datagrams: sequence numbers, cumulative
//! acknowledgements, retransmission on timeout, a bounded window for
//! backpressure. Channels live for one attempt; a new attempt starts new
//! channels at sequence 0.
//!
//! A channel also lives for one instance of its sender. A worker restarted
//! while the coordinator still deploys an attempt (its acknowledgement of
//! the deployment lost, another worker still down) is sent that attempt's
//! deployment again and restarts its sources from their restored offsets,
//! with their channels at sequence 0. A receiver that took data from the
//! earlier instance cannot tell which of the new messages it already has
//! (the new instance batches the same records into other messages): taking
//! them by sequence number dropped some records and handed others to the
//! sink twice in one transaction. So every data message names its sender's
//! incarnation, and a receiver refuses a second one
//! ([`ChannelReceiver::receive`] returns [`SenderRestarted`]): its chain
//! fails and the coordinator restarts the job under a new attempt.
//!
//! The retransmission timeout adapts to the measured acknowledgement delay
//! (TCP's estimator, RFC 6298, with Karn's rule: only messages sent once
//! are sampled) and backs off on consecutive timeouts. A receiver
//! acknowledges when its chain takes a message in, which waits for the
//! chain's sink round trips; with a fixed 40 ms timeout such a busy receiver
//! had its whole window sent again and again (on a 200k-record run 4 of 5
//! data messages were retransmissions of messages already received).
//!
//! A timeout sends the oldest unacknowledged message again, not the whole
//! window: a receiver that is slow rather than lossy then gets one
//! duplicate per timeout instead of up to `WINDOW`, and each duplicate
//! waits in its chain's queue ahead of newer data (and barriers). At
//! parallelism 16 (a chain with 16 inputs of 32 messages each) resending
//! whole windows made 2 of 5 data messages duplicates, delayed barriers past
//! the checkpoint timeout and made the job restart. A loss burst is still
//! repaired within the backed-off timeouts' sum plus a round trip per lost
//! message (each message's timeout runs from its own first send).

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

    /// The message to send again: the oldest unacknowledged one, once it
    /// has waited a timeout since it was last sent (each timeout doubles
    /// the next, up to the cap, until a sample).
    pub fn due(&mut self, now_ms: u64) -> Option<(u64, Vec<Item>)> {
        let rto = self.timeout_ms();
        let (s, items, t, resent) = self.unacked.front_mut().filter(|(_, _, t, _)| now_ms >= *t + rto)?;
        self.backoff += 1;
        *t = now_ms;
        *resent = true;
        Some((*s, items.clone()))
    }
}

/// Receiving side of one channel: restores FIFO order, drops duplicates.
#[derive(Debug, Default)]
pub struct ChannelReceiver {
    next_expected: u64,
    early: BTreeMap<u64, Vec<Item>>,
    /// The incarnation of the sender instance this channel belongs to,
    /// learnt from its first message.
    sender: Option<u64>,
}

/// A message came from another instance of the channel's sender than the
/// earlier ones (see the module documentation): the channel is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderRestarted {
    /// The incarnation the channel belongs to.
    pub was: u64,
    /// The incarnation the refused message came from.
    pub now: u64,
}

impl ChannelReceiver {
    /// Accept a message of the sender instance `sender`; returns the items
    /// now deliverable, in order, and the cumulative ack to send (if
    /// anything has been received in order). A message of another instance
    /// than the first message's is refused whole, and so is every later
    /// one: nothing of it is delivered.
    pub fn receive(
        &mut self,
        sender: u64,
        seq: u64,
        items: Vec<Item>,
    ) -> Result<(Vec<Item>, Option<u64>), SenderRestarted> {
        let was = *self.sender.get_or_insert(sender);
        if was != sender {
            return Err(SenderRestarted { was, now: sender });
        }
        if seq >= self.next_expected {
            self.early.entry(seq).or_insert(items);
        }
        let mut out = Vec::new();
        while let Some(items) = self.early.remove(&self.next_expected) {
            out.extend(items);
            self.next_expected += 1;
        }
        Ok((out, self.next_expected.checked_sub(1)))
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
                resent += usize::from(tx.due(t).is_some());
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
            if tx.due(t).is_some() {
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

    /// A full window at a receiver that takes a long time to acknowledge
    /// (a busy chain, nothing lost): each timeout sends one message again,
    /// not the window, so the duplicates stay a handful.
    #[test]
    fn a_slow_receiver_gets_one_duplicate_per_timeout() {
        let mut tx = ChannelSender::default();
        for i in 0..WINDOW as u64 {
            tx.stage(Item::Watermark(i));
            tx.seal(0);
        }
        assert!(tx.window_full());
        let (mut dups, mut timeouts) = (0, 0);
        for t in 0..1_000 {
            if let Some((seq, _)) = tx.due(t) {
                assert_eq!(seq, 0, "always the oldest");
                dups += 1;
                timeouts += 1;
            }
        }
        assert_eq!(dups, timeouts);
        assert!(dups <= 5, "backed-off timeouts in one second: {dups}");
        tx.ack(WINDOW as u64 - 1, 1_000);
        assert!(tx.is_idle());
    }

    /// A burst of lost messages is repaired within the backed-off timeouts'
    /// sum plus a round trip per lost message: each lost message's own
    /// timeout runs from its first send, so once the backoff reaches the
    /// cap the next gap at the front is already overdue when the resent
    /// one before it is acknowledged.
    #[test]
    fn a_loss_burst_is_repaired_after_the_backoff_per_round_trip() {
        let mut tx = ChannelSender::default();
        let mut rx = ChannelReceiver::default();
        let mut got = Vec::new();
        // 20 messages sent at 0; 0..10 lost, 10..20 arrive (held early).
        for i in 0..20u64 {
            tx.stage(Item::Watermark(i));
            let (seq, items) = tx.seal(0).unwrap();
            if seq >= 10 {
                let (out, ack) = rx.receive(1, seq, items).unwrap();
                assert!(out.is_empty() && ack.is_none());
            }
        }
        // Each resend takes a 2 ms round trip.
        let mut now = 0;
        while !tx.is_idle() {
            assert!(now < 40 + 80 + 160 + 320 + 10 * 2 + 10, "repair too slow: {now} ms, got {}", got.len());
            if let Some((seq, items)) = tx.due(now) {
                let (out, ack) = rx.receive(1, seq, items).unwrap();
                got.extend(out);
                now += 2;
                tx.ack(ack.expect("in order now"), now);
            } else {
                now += 1;
            }
        }
        assert_eq!(got, (0..20).map(Item::Watermark).collect::<Vec<_>>());
    }

    /// The bug the gate profile found: a source restarted within its
    /// attempt sends the records from its restored offset again, batched
    /// into other messages, from sequence 0. Taken by sequence number, the
    /// receiver drops the messages it "has" and delivers the rest: records
    /// lost and records twice. With the sender's incarnation the second
    /// instance is refused before anything of it is delivered.
    #[test]
    fn a_restarted_sender_is_refused_not_taken_by_sequence_number() {
        let rec = |i: u64| Item::Watermark(i);
        // Instance 1 sends records 0..6 as three messages of two.
        let mut rx = ChannelReceiver::default();
        let mut got = Vec::new();
        for (seq, batch) in [vec![0, 1], vec![2, 3], vec![4, 5]].into_iter().enumerate() {
            let (items, ack) = rx.receive(1, seq as u64, batch.into_iter().map(rec).collect()).unwrap();
            got.extend(items);
            assert_eq!(ack, Some(seq as u64));
        }
        // Instance 2 restarts from record 0, one record a message.
        let second: Vec<Vec<u64>> = (0..7).map(|i| vec![i]).collect();
        // What taking it by sequence number did: records 3..6 twice (with
        // larger batches, records lost instead).
        let mut blind = ChannelReceiver::default();
        let mut blind_got = Vec::new();
        for (seq, batch) in [vec![0, 1], vec![2, 3], vec![4, 5]].into_iter().enumerate() {
            blind_got.extend(blind.receive(1, seq as u64, batch.into_iter().map(rec).collect()).unwrap().0);
        }
        for (seq, batch) in second.iter().enumerate() {
            blind_got.extend(blind.receive(1, seq as u64, batch.iter().copied().map(rec).collect()).unwrap().0);
        }
        let blind_ids: Vec<u64> =
            blind_got.iter().map(|i| if let Item::Watermark(w) = i { *w } else { unreachable!() }).collect();
        assert_eq!(blind_ids, vec![0, 1, 2, 3, 4, 5, 3, 4, 5, 6], "one instance id hides the restart");
        // Named by incarnation, every message of instance 2 is refused.
        for (seq, batch) in second.iter().enumerate() {
            let r = rx.receive(2, seq as u64, batch.iter().copied().map(rec).collect());
            assert_eq!(r, Err(SenderRestarted { was: 1, now: 2 }));
        }
        // And a late message of instance 1 is still a duplicate, dropped.
        let (items, ack) = rx.receive(1, 1, vec![rec(2), rec(3)]).unwrap();
        assert!(items.is_empty());
        assert_eq!(ack, Some(2));
        assert_eq!(got, (0..6).map(rec).collect::<Vec<_>>());
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
                            let (items, ack) = rx.receive(7, s, items).unwrap();
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
