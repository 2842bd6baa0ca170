//! P10 and P11: one checkpoint for everything restored, and liveness.

use super::*;

// ---- P10: one checkpoint for everything restored ----

#[test]
fn consistent_restore_passes() {
    let mut h = good();
    push(&mut h, recovery(80, 2, Some(2)));
    push(&mut h, restored(81, 2, TaskId::Source(0), Some(2), vec![]));
    push(&mut h, restored(82, 2, TaskId::Chain(0), Some(2), vec![(2, txn(2))]));
    assert_eq!(checks(&h), NONE);
}

#[test]
fn mixed_restore_is_p10() {
    let mut h = good();
    push(&mut h, recovery(80, 2, Some(2)));
    push(&mut h, restored(81, 2, TaskId::Source(0), Some(1), vec![]));
    push(&mut h, restored(82, 2, TaskId::Chain(0), Some(2), vec![]));
    assert_eq!(checks(&h), vec!["P10"]);
    let m = msgs(&h, "P10");
    assert_eq!(m.len(), 1, "{m:?}");
    assert_mentions(
        &m,
        &["attempt 2: source-0", "restored its offsets from checkpoint 1", "recovery chose checkpoint 2"],
    );
}

#[test]
fn restoring_pending_transactions_of_another_checkpoint_is_p10() {
    let mut h = good();
    push(&mut h, recovery(80, 2, Some(1)));
    push(&mut h, restored(81, 2, TaskId::Source(0), Some(1), vec![]));
    push(&mut h, restored(82, 2, TaskId::Chain(0), Some(1), vec![(2, txn(2))]));
    // Restoring 1 after 2 was committed is P4's too.
    assert_eq!(checks(&h), vec!["P4", "P10"]);
    assert_mentions(&msgs(&h, "P10"), &["chain-0 restored 1 pending transactions", "job-sink-0-2 for checkpoint 2"]);
}

#[test]
fn restore_from_an_incomplete_checkpoint_is_p10() {
    let mut h = good();
    push(&mut h, trigger(71, 3));
    push(&mut h, recovery(80, 2, Some(3)));
    push(&mut h, restored(81, 2, TaskId::Chain(0), Some(3), vec![]));
    assert_eq!(checks(&h), vec!["P10"]);
    assert_mentions(&msgs(&h, "P10"), &["attempt 2", "restores checkpoint 3, which has no completion record"]);
}

// ---- P11: liveness ----

#[test]
fn unfinished_job_is_p11() {
    let mut h = good();
    h.finished_at_us = None;
    h.healed_at_us = 10;
    push(&mut h, Stamped { t_us: 10, node: "sim".into(), ev: Ev::Sim(SimEvent::Healed) });
    assert_eq!(checks(&h), vec!["P11"]);
    assert_mentions(
        &msgs(&h, "P11"),
        &["did not finish within 999ms after healing", "last completed checkpoint 2 at 0.1ms", "attempt 1"],
    );
}

#[test]
fn late_or_premature_finish_is_p11() {
    let mut h = good();
    h.deadline_us = 69;
    assert_eq!(checks(&h), vec!["P11"]);
    let mut h = good();
    h.events.retain(|s| !matches!(&s.ev, Ev::Engine(Event::CheckpointCompleted { ckpt: 2, .. })));
    push(&mut h, complete(50, 2, 4, false));
    assert_eq!(checks(&h), vec!["P11"]);
    assert_mentions(&msgs(&h, "P11"), &["without a completed checkpoint marked finished"]);
}
