//! P2 and P3: what readers see during the run, and nothing before its checkpoint completed.

use super::*;

// ---- P2: what readers see during the run ----

#[test]
fn reader_seeing_no_checkpoint_prefix_is_p2() {
    let mut h = good();
    h.observations = vec![obs(35, &[2]), obs(65, &[1, 3, 4])];
    assert_eq!(checks(&h), vec!["P2"]);
    assert_mentions(
        &msgs(&h, "P2"),
        &[
            "partition 0 at 0.0ms",
            "latest completed checkpoint 1",
            "1 of it missing [out_id 1 (key 0, value 1, src 1)]",
        ],
    );
}

#[test]
fn reader_seeing_a_gap_as_large_as_a_prefix_is_p2() {
    // {1, 3} has as many records as checkpoint 1's prefix {1, 2}, but is
    // no prefix (and 3 is not covered yet: P3).
    let mut h = good();
    h.observations = vec![obs(35, &[1, 3]), obs(65, &[2, 4])];
    assert_eq!(checks(&h), vec!["P2", "P3"]);
    assert_mentions(&msgs(&h, "P2"), &["1 beyond it [out_id 3", "1 of it missing [out_id 2"]);
}

#[test]
fn reader_seeing_a_record_twice_is_p2() {
    let mut h = good();
    h.observations.push(obs(66, &[4]));
    assert_eq!(checks(&h), vec!["P2"]);
    assert_mentions(&msgs(&h, "P2"), &["visible twice", "out_id 4"]);
}

#[test]
fn visible_record_gone_at_the_end_is_p1_and_p2() {
    let mut h = good();
    h.final_output = vec![outs(&[1, 2, 3])];
    assert_eq!(checks(&h), vec!["P1", "P2"]);
    assert_mentions(&msgs(&h, "P2"), &["gone from the final read", "out_id 4", "visible since 0.1ms"]);
}

#[test]
fn prefix_going_back_to_an_older_checkpoint_is_p2() {
    let mut h = good();
    // Checkpoint 3 completes after 2 but with a smaller cut (a broken
    // history): the reader first matches 3, then only 2.
    h.events.retain(|s| !matches!(&s.ev, Ev::Engine(Event::JobFinished { .. })));
    push(&mut h, trigger(51, 3));
    push(&mut h, complete(52, 3, 2, true));
    push(&mut h, at(70, "coordinator", Event::JobFinished { attempt: 1, ckpt: 3 }));
    h.observations = vec![obs(55, &[1, 2]), obs(65, &[3, 4])];
    // P3 also fires: 3 and 4 are beyond the newest checkpoint, 3.
    assert_eq!(checks(&h), vec!["P2", "P3"]);
    assert_mentions(&msgs(&h, "P2"), &["went back from checkpoint 3 to checkpoint 2"]);
}

#[test]
fn cut_of_a_subsumed_checkpoint_is_a_valid_prefix() {
    // Checkpoint 2 (cut at 3) never completes; 3 (at 4) does and its
    // notification commits both pending transactions, one by one.
    let mut h = good();
    h.events.retain(|s| match &s.ev {
        Ev::Engine(Event::CheckpointCompleted { ckpt, .. }) => *ckpt == 1,
        Ev::Engine(Event::TxnCommitted { txn: t, .. }) => *t == txn(1),
        Ev::Engine(Event::JobFinished { .. }) | Ev::Engine(Event::PreCommitted { .. }) => false,
        _ => true,
    });
    for s in [
        precommit(12, 1, 1, 2),
        at(41, "worker-0", Event::SourceBarrier { attempt: 1, source: 0, ckpt: 2, offset: 3 }),
        precommit(42, 2, 2, 1),
        init(43, 3, 0),
        trigger(44, 3),
        at(45, "worker-0", Event::SourceBarrier { attempt: 1, source: 0, ckpt: 3, offset: 4 }),
        at(
            46,
            "worker-0",
            Event::PreCommitted {
                task: TaskId::Chain(0),
                ckpt: 3,
                txn: txn(3),
                epoch: 0,
                records: 1,
                out_ids: vec![],
                writer: Default::default(),
            },
        ),
        complete(50, 3, 4, true),
        committed(55, 2, 0, &[3]),
        committed(60, 3, 0, &[4]),
        at(70, "coordinator", Event::JobFinished { attempt: 1, ckpt: 3 }),
    ] {
        push(&mut h, s);
    }
    h.observations = vec![obs(35, &[1, 2]), obs(57, &[3]), obs(65, &[4])];
    assert_eq!(checks(&h), NONE);
    // Without the barrier of 2 at every source, {1,2,3} is no valid cut.
    h.events.retain(|s| !matches!(&s.ev, Ev::Engine(Event::SourceBarrier { ckpt: 2, .. })));
    assert_eq!(checks(&h), vec!["P2"]);
}

// ---- P3: nothing visible before its checkpoint completed ----

#[test]
fn commit_before_completion_is_p3() {
    let mut h = good();
    h.events.retain(|s| !matches!(&s.ev, Ev::Engine(Event::TxnCommitted { txn: t, .. }) if *t == txn(2)));
    push(&mut h, committed(45, 2, 0, &[3, 4]));
    assert_eq!(checks(&h), vec!["P3"]);
    assert_mentions(
        &msgs(&h, "P3"),
        &[
            "transaction job-sink-0-2 epoch 0 (pre-committed for checkpoint 2)",
            "2 records visible at 0.0ms",
            "checkpoint 1",
        ],
    );
}

#[test]
fn reader_seeing_uncovered_records_is_p2_and_p3() {
    let mut h = good();
    h.events.retain(|s| !matches!(&s.ev, Ev::Engine(Event::TxnCommitted { txn: t, .. }) if *t == txn(2)));
    push(&mut h, committed(45, 2, 0, &[3, 4]));
    h.observations[1].t_us = 47;
    assert_eq!(checks(&h), vec!["P2", "P3"]);
    assert_mentions(
        &msgs(&h, "P3"),
        &["reader of partition 0 saw 2 records", "out_id 3 (key 0, value 1, src 3) from [job-sink-0-2 epoch 0]"],
    );
}
