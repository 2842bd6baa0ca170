//! P7, P13 and P8: pre-committed data is committed, a finished job left nothing open.

use super::*;

// ---- P7: pre-committed data of completed checkpoints is committed ----

#[test]
fn silent_uncommitted_precommit_is_p7_and_loud_is_not() {
    let mut h = good();
    h.events.retain(|s| !matches!(&s.ev, Ev::Engine(Event::TxnCommitted { txn: t, .. }) if *t == txn(2)));
    h.observations.truncate(1);
    h.final_output = vec![outs(&[1, 2])];
    assert_eq!(checks(&h), vec!["P1", "P7", "P13"]);
    assert_mentions(
        &msgs(&h, "P7"),
        &[
            "transaction job-sink-0-2 epoch 0 (2 records) pre-committed for checkpoint 2",
            "completed at 0.1ms",
            "never committed",
        ],
    );
    let fail = Event::CommitFailed { task: TaskId::Chain(0), ckpt: 2, txn: txn(2), epoch: 0, reason: "fenced".into() };
    push(&mut h, at(66, "worker-0", fail));
    assert_eq!(checks(&h), vec!["P1"]);
}

/// The sink's confirmation is testimony: a commit the sink confirmed but
/// the system never made (no commit of the system, records missing from
/// the final read) is P7, named as such.
#[test]
fn a_confirmed_commit_the_system_does_not_show_is_p7() {
    let mut h = good();
    h.events.retain(|s| !matches!(&s.ev, Ev::Engine(Event::TxnCommitted { txn: t, .. }) if *t == txn(2)));
    let confirm = Event::CommitConfirmed { task: TaskId::Chain(0), ckpt: 2, txn: txn(2), epoch: 0 };
    push(&mut h, at(61, "worker-0", confirm));
    h.observations.truncate(1);
    h.final_output = vec![outs(&[1, 2])];
    assert!(checks(&h).contains(&"P7"), "{:?}", checks(&h));
    assert_mentions(
        &msgs(&h, "P7"),
        &[
            "job-sink-0-2 epoch 0 (2 records)",
            "confirmed committed by the sink at 0.1ms but not committed",
            "2 of its 2 records are not in the final read",
        ],
    );
    // A worker announcing the commit itself vouches for nothing either.
    let own_word = Event::TxnCommitted { txn: txn(2), epoch: 0, out: outs(&[3, 4]) };
    push(&mut h, at(62, "worker-0", own_word));
    assert!(msgs(&h, "P7").iter().any(|m| m.contains("job-sink-0-2")), "{:?}", msgs(&h, "P7"));
}

/// A system that announces no commits of its own is judged by its output:
/// every record the engine handed the sink for the transaction is in the
/// final read.
#[test]
fn without_commit_events_the_final_read_shows_the_commit() {
    let mut h = good();
    h.events.retain(|s| !matches!(&s.ev, Ev::Engine(Event::TxnCommitted { .. })));
    let confirm = Event::CommitConfirmed { task: TaskId::Chain(0), ckpt: 2, txn: txn(2), epoch: 0 };
    push(&mut h, at(61, "worker-0", confirm));
    assert_eq!(checks(&h), NONE);
    h.final_output = vec![outs(&[1, 2, 3])];
    h.observations = vec![obs(35, &[1, 2]), obs(65, &[3])];
    assert!(checks(&h).contains(&"P7"), "{:?}", checks(&h));
    assert_mentions(&msgs(&h, "P7"), &["job-sink-0-2 epoch 0", "1 of its 2 records are not in the final read"]);
}

#[test]
fn empty_precommitted_transaction_needs_no_commit() {
    let mut h = good();
    push(&mut h, precommit(43, 2, 7, 0));
    assert_eq!(checks(&h), NONE);
    let mut h = good();
    push(&mut h, precommit(43, 2, 7, 1));
    assert_eq!(checks(&h), vec!["P7", "P13"]);
    assert_mentions(&msgs(&h, "P7"), &["job-sink-0-7 epoch 0 (1 records)"]);
}

#[test]
fn precommit_of_a_checkpoint_that_never_completed_needs_no_commit() {
    let mut h = good();
    push(&mut h, trigger(71, 3));
    push(&mut h, precommit(72, 3, 3, 5));
    assert_eq!(checks(&h), NONE);
}

// ---- P13: finished means committed and nothing open ----

fn begun(t: u64, attempt: u64, n: u64) -> Stamped {
    at(t, "worker-0", Event::TxnBegun { attempt, task: TaskId::Chain(0), txn: txn(n), epoch: 0 })
}

#[test]
fn transaction_left_open_at_finish_is_p13() {
    let mut h = good();
    push(&mut h, begun(43, 1, 3)); // after the final pre-commit, never ended
    assert_eq!(checks(&h), vec!["P13"]);
    assert_mentions(
        &msgs(&h, "P13"),
        &["1 transactions of that attempt still open", "job-sink-0-3 epoch 0 of chain-0"],
    );
    // Ended by a pre-commit or an abort: nothing open.
    let mut ok = h.clone();
    push(&mut ok, at(44, "worker-0", Event::SinkAborted { task: TaskId::Chain(0), txn: txn(3) }));
    assert_eq!(checks(&ok), NONE);
    // One begun by an older attempt is not the finishing attempt's.
    let mut old = good();
    push(&mut old, begun(43, 0, 3));
    assert_eq!(checks(&old), NONE);
}

#[test]
fn commit_after_the_job_reported_finished_is_p13() {
    let mut h = good();
    h.events.retain(|s| !matches!(&s.ev, Ev::Engine(Event::TxnCommitted { txn: t, .. }) if *t == txn(2)));
    push(&mut h, committed(75, 2, 0, &[3, 4]));
    h.observations = vec![obs(35, &[1, 2]), obs(80, &[3, 4])];
    assert_eq!(checks(&h), vec!["P13"]);
    assert_mentions(
        &msgs(&h, "P13"),
        &["with 1 pre-committed transactions", "job-sink-0-2 epoch 0 (checkpoint 2, 2 records)"],
    );
}

// ---- P8: no transaction left open ----

#[test]
fn open_txn_at_end_is_p8_when_finished() {
    let mut h = good();
    h.final_open_txns = vec![(txn(3), 1)];
    assert_eq!(checks(&h), vec!["P8"]);
    assert_mentions(&msgs(&h, "P8"), &["1 transactions still open", "job-sink-0-3 epoch 1"]);
    h.finished_at_us = None;
    assert_eq!(checks(&h), vec!["P11"]);
}
