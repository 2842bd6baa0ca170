//! P1 and P12: the final output against the batch reference.

use super::*;

// ---- P1 / P12: the final output ----

#[test]
fn loss_is_p1_and_in_at_least_once_mode_p12() {
    let mut h = good();
    // The broker never got record 4 and nobody looked in between.
    h.events.retain(|s| !matches!(&s.ev, Ev::Engine(Event::TxnCommitted { txn: t, .. }) if *t == txn(2)));
    push(&mut h, committed(60, 2, 0, &[3]));
    h.observations.truncate(1);
    h.final_output = vec![outs(&[1, 2, 3])];
    assert_eq!(checks(&h), vec!["P1"]);
    assert_mentions(&msgs(&h, "P1"), &["1 of 4 expected output records lost", "out_id 4 (key 0, value 1, src 4)"]);
    assert_eq!(run(&h).1.lost, 1);
    h.mode = DeliveryMode::AtLeastOnce;
    assert_eq!(checks(&h), vec!["P12"]);
    assert_mentions(&msgs(&h, "P12"), &["1 of 4", "out_id 4"]);
}

#[test]
fn duplicate_from_a_second_transaction_is_p1_and_p6() {
    let mut h = good();
    push(&mut h, committed(80, 9, 0, &[2]));
    h.final_output[0].push(out(2));
    assert_eq!(checks(&h), vec!["P1", "P6"]);
    assert_mentions(&msgs(&h, "P1"), &["out_id 2 (key 0) x2", "job-sink-0-1 epoch 0; job-sink-0-9 epoch 0"]);
    assert_mentions(
        &msgs(&h, "P6"),
        &["job-sink-0-9 epoch 0", "already committed by job-sink-0-1 epoch 0", "out_id 2"],
    );
    assert_eq!(run(&h).1.duplicates, 1);
}

#[test]
fn wrong_and_unexpected_records_are_p1() {
    let mut h = good();
    h.final_output[0][0].value = 9;
    h.final_output[0].push(out(99));
    assert_eq!(checks(&h), vec!["P1"]);
    let m = msgs(&h, "P1");
    assert_mentions(
        &m,
        &["differ from the reference", "out_id 1 (key 0, value 9, src 1) expected (key 0, value 1, src 1)"],
    );
    assert_mentions(&m, &["not in the reference", "out_id 99"]);
    let c = run(&h).1;
    assert_eq!((c.wrong, c.unexpected, c.committed), (1, 1, 5));
}

#[test]
fn record_in_the_wrong_partition_is_p1() {
    let mut h = good();
    h.parallelism = 2;
    h.output_partitions = 2;
    h.observations.clear();
    let home = key_to_subtask(0, 2) as usize;
    h.final_output = vec![vec![], vec![]];
    h.final_output[home] = outs(&[1, 2, 4]);
    h.final_output[1 - home] = outs(&[3]);
    assert_eq!(checks(&h), vec!["P1"]);
    assert_mentions(
        &msgs(&h, "P1"),
        &[
            "wrong partition",
            &format!("out_id 3 (key 0, value 1, src 3) in partition {}, key routes to {home}", 1 - home),
        ],
    );
}

#[test]
fn failed_final_read_is_p1_or_p12() {
    let mut h = good();
    h.final_read_ok = false;
    h.final_output = vec![vec![]];
    assert_eq!(checks(&h), vec!["P1"]);
    assert_mentions(&msgs(&h, "P1"), &["final read failed"]);
    h.mode = DeliveryMode::AtLeastOnce;
    assert_eq!(checks(&h), vec!["P12"]);
}
