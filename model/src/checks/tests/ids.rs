//! P4, P5 and P6: ids and epochs, commit order, applied at most once.

use super::*;

// ---- P4: ids, epochs, recovery point ----

#[test]
fn checkpoint_id_reused_is_p4() {
    let mut h = good();
    push(&mut h, trigger(75, 2));
    assert_eq!(checks(&h), vec!["P4"]);
    assert_mentions(&msgs(&h, "P4"), &["checkpoint 2 triggered at 0.1ms", "after checkpoint 2 was triggered at 0.0ms"]);
}

#[test]
fn producer_epoch_not_increasing_is_p4() {
    let mut h = good();
    push(&mut h, init(76, 1, 0));
    assert_eq!(checks(&h), vec!["P4"]);
    assert_mentions(&msgs(&h, "P4"), &["producer job-sink-0-1 got epoch 0", "after it had epoch 0"]);
}

/// A history whose broker shows its incarnations (`BrokerRecovered`).
fn with_broker_start(mut h: History) -> History {
    h.events.insert(0, at(1, "broker", Event::BrokerRecovered { entries: 0, truncated_bytes: 0 }));
    h
}

fn expired(t: u64, n: u64, epoch: u64) -> Stamped {
    at(t, "broker", Event::TxnAborted { txn: txn(n), epoch, reason: exactsim_engine::broker::EXPIRED_REASON.into() })
}

#[test]
fn a_producer_epoch_skipped_within_one_broker_incarnation_is_p4() {
    // Epochs 0, then 1: the next one each time.
    let mut h = with_broker_start(good());
    push(&mut h, init(76, 1, 1));
    assert_eq!(checks(&h), NONE);
    // Epoch 3 after 1: epoch 2 was consumed by no durable step (KAFKA-9666).
    push(&mut h, init(77, 1, 3));
    assert_eq!(checks(&h), vec!["P4"]);
    assert_mentions(&msgs(&h, "P4"), &["producer job-sink-0-1 got epoch 3", "the log's next epoch was 2"]);
    // A new id starts at 0.
    let mut h = with_broker_start(good());
    push(&mut h, init(76, 9, 1));
    assert_eq!(checks(&h), vec!["P4"]);
    // A timeout abort consumes one epoch; after a broker restart any next
    // epoch is fine (the events of durable entries may have been lost).
    let mut h = with_broker_start(good());
    push(&mut h, expired(76, 1, 0));
    push(&mut h, init(77, 1, 2));
    assert_eq!(checks(&h), NONE);
    push(&mut h, at(78, "broker", Event::BrokerRecovered { entries: 9, truncated_bytes: 0 }));
    push(&mut h, init(79, 1, 5));
    push(&mut h, init(80, 7, 2));
    assert_eq!(checks(&h), NONE);
    push(&mut h, init(81, 1, 7));
    assert_eq!(checks(&h), vec!["P4"]);
}

#[test]
fn recovery_older_than_committed_checkpoint_is_p4() {
    let mut h = good();
    push(&mut h, recovery(80, 2, Some(1)));
    assert_eq!(checks(&h), vec!["P4"]);
    assert_mentions(
        &msgs(&h, "P4"),
        &["attempt 2", "restores checkpoint 1", "older than checkpoint 2", "job-sink-0-2 epoch 0"],
    );
    let mut h = good();
    push(&mut h, recovery(80, 2, None));
    assert_eq!(checks(&h), vec!["P4"]);
    assert_mentions(&msgs(&h, "P4"), &["fresh start"]);
    // Recovering from the newest committed checkpoint is fine; so is a
    // fresh start before anything was committed.
    let mut h = good();
    push(&mut h, recovery(80, 2, Some(2)));
    push(&mut h, recovery(25, 2, None));
    assert_eq!(checks(&h), NONE);
}

// ---- P5: commit order per sink ----

#[test]
fn commit_order_inversion_is_p5() {
    let mut h = good();
    h.events.retain(|s| !matches!(&s.ev, Ev::Engine(Event::TxnCommitted { .. } | Event::CommitConfirmed { .. })));
    push(&mut h, committed(55, 2, 0, &[3, 4]));
    push(&mut h, committed(61, 1, 0, &[1, 2]));
    h.observations = vec![obs(65, &[1, 2, 3, 4])];
    assert_eq!(checks(&h), vec!["P5"]);
    assert_mentions(
        &msgs(&h, "P5"),
        &[
            "sink 0 committed job-sink-0-1 epoch 0 (checkpoint 1) at 0.1ms",
            "after it committed job-sink-0-2 epoch 0 (checkpoint 2)",
        ],
    );
}

/// The sink's confirmations alone (a sink whose system the oracles cannot
/// see commit by commit) give the same order verdict.
#[test]
fn commit_order_inversion_in_confirmations_is_p5() {
    let mut h = good();
    h.events.retain(|s| !matches!(&s.ev, Ev::Engine(Event::TxnCommitted { .. } | Event::CommitConfirmed { .. })));
    let confirm =
        |t, ckpt, n| at(t, "worker-0", Event::CommitConfirmed { task: TaskId::Chain(0), ckpt, txn: txn(n), epoch: 0 });
    push(&mut h, confirm(55, 2, 2));
    push(&mut h, confirm(61, 1, 1));
    h.observations = vec![obs(65, &[1, 2, 3, 4])];
    assert_eq!(checks(&h), vec!["P5"]);
    assert_mentions(&msgs(&h, "P5"), &["sink 0 committed job-sink-0-1 epoch 0 (checkpoint 1) at 0.1ms"]);
}

// ---- P6: applied at most once ----

#[test]
fn transaction_applied_twice_is_p1_and_p6() {
    let mut h = good();
    push(&mut h, committed(80, 1, 0, &[1, 2]));
    h.final_output[0].extend(outs(&[1, 2]));
    assert_eq!(checks(&h), vec!["P1", "P6"]);
    assert_mentions(&msgs(&h, "P6"), &["transaction job-sink-0-1 epoch 0 applied twice"]);
}

#[test]
fn record_twice_in_one_transaction_is_p1_and_p6() {
    let mut h = good();
    h.events.retain(|s| !matches!(&s.ev, Ev::Engine(Event::TxnCommitted { txn: t, .. }) if *t == txn(2)));
    push(&mut h, committed(60, 2, 0, &[3, 3, 4]));
    h.final_output = vec![outs(&[1, 2, 3, 3, 4])];
    assert_eq!(checks(&h), vec!["P1", "P6"]);
    assert_mentions(&msgs(&h, "P6"), &["job-sink-0-2 epoch 0", "carries 1 out_ids twice", "out_id 3"]);
}

#[test]
fn commits_found_at_broker_recovery() {
    // A replay of an announced commit is the same application.
    let mut h = good();
    push(&mut h, at(90, "broker", Event::TxnCommitReplayed { txn: txn(1), epoch: 0, out: outs(&[1, 2]) }));
    assert_eq!(checks(&h), NONE);
    // A replay of a commit never announced is the commit.
    let mut h = good();
    h.events.retain(|s| !matches!(&s.ev, Ev::Engine(Event::TxnCommitted { txn: t, .. }) if *t == txn(2)));
    push(&mut h, at(60, "broker", Event::TxnCommitReplayed { txn: txn(2), epoch: 0, out: outs(&[3, 4]) }));
    assert_eq!(checks(&h), NONE);
    // Announced after the replay: applied twice.
    push(&mut h, committed(62, 2, 0, &[3, 4]));
    assert_eq!(checks(&h), vec!["P6"]);
}
