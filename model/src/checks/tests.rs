//! Each checker flags a bad history and passes a good one. Histories are
//! written by hand around one good exactly-once run; every test asserts the
//! exact set of checks that fire.

use super::*;
use crate::history::{Ev, History, Observation, SimEvent, Stamped};
use crate::rng::SimRng;
use exactsim_engine::pipeline::Pipeline;
use exactsim_engine::types::{key_to_subtask, Record, TaskId};
use std::sync::Arc;

/// One output per input record: out_id = record id, value = record value.
struct Echo;
impl Scenario for Echo {
    fn name(&self) -> &'static str {
        "echo"
    }
    fn description(&self) -> &'static str {
        "test: one output per input record"
    }
    fn generate(&self, _rng: &mut SimRng, _p: u32) -> Vec<Vec<Record>> {
        unimplemented!("histories are written by hand")
    }
    fn pipeline(&self) -> Arc<dyn Pipeline> {
        Arc::new(EchoPipeline) // only its default output partitioner is used
    }
    fn reference(&self, input: &[Vec<Record>], offsets: &[u64]) -> Vec<OutRecord> {
        input
            .iter()
            .zip(offsets)
            .flat_map(|(p, o)| p[..*o as usize].iter().map(|r| OutRecord::new(r.id, r.key, r.value, r.id)))
            .collect()
    }
    fn incremental<'a>(&self, input: &'a [Vec<Record>]) -> Option<Box<dyn crate::scenario::IncrementalReference + 'a>> {
        Some(Box::new(EchoAcc { input, taken: vec![0; input.len()] }))
    }
}

/// Echo's reference one record at a time.
struct EchoAcc<'a> {
    input: &'a [Vec<Record>],
    taken: Vec<usize>,
}
impl crate::scenario::IncrementalReference for EchoAcc<'_> {
    fn advance(&mut self, p: usize, out: &mut Vec<OutRecord>) {
        let r = &self.input[p][self.taken[p]];
        self.taken[p] += 1;
        out.push(OutRecord::new(r.id, r.key, r.value, r.id));
    }
}

struct EchoPipeline;
impl Pipeline for EchoPipeline {
    fn name(&self) -> &str {
        "echo"
    }
    fn create(&self, _subtask: u32, _parallelism: u32) -> Box<dyn exactsim_engine::pipeline::KeyedOperator> {
        unimplemented!("histories are written by hand")
    }
}

fn rec_in(id: u64) -> Record {
    Record { id, key: 0, ts_ms: id, value: 1 }
}
fn out(id: u64) -> OutRecord {
    OutRecord::new(id, 0, 1, id)
}
fn outs(ids: &[u64]) -> Vec<OutRecord> {
    ids.iter().map(|i| out(*i)).collect()
}
fn at(t_us: u64, node: &str, e: Event) -> Stamped {
    Stamped { t_us, node: node.into(), ev: Ev::Engine(e) }
}
fn obs(t_us: u64, ids: &[u64]) -> Observation {
    Observation { t_us, partition: 0, new_records: outs(ids), open_txns: 0 }
}
fn txn(n: u64) -> String {
    format!("job-sink-0-{n}")
}
fn trigger(t: u64, ckpt: u64) -> Stamped {
    at(t, "coordinator", Event::CheckpointTriggered { attempt: 1, ckpt })
}
fn complete(t: u64, ckpt: u64, offset: u64, finished: bool) -> Stamped {
    at(t, "coordinator", Event::CheckpointCompleted { attempt: 1, ckpt, offsets: vec![offset], finished })
}
fn init(t: u64, n: u64, epoch: u64) -> Stamped {
    init_of(t, n, epoch, 1)
}
fn init_of(t: u64, n: u64, epoch: u64, attempt: u64) -> Stamped {
    init_session(t, n, epoch, attempt, (0, 0))
}
fn init_session(t: u64, n: u64, epoch: u64, attempt: u64, session: (u64, u64)) -> Stamped {
    at(t, "broker", Event::ProducerInit { txn: txn(n), epoch, run: 0, attempt, session, aborted_open: false })
}
/// Transaction `n` carries `records` records, out_ids `(n-1)*records+1 ..=
/// n*records` (the fixture's transactions of two records: 1-2, 3-4).
fn precommit(t: u64, ckpt: u64, n: u64, records: u64) -> Stamped {
    let out_ids = ((n - 1) * records + 1..=n * records).collect();
    at(
        t,
        "worker-0",
        Event::PreCommitted {
            task: TaskId::Chain(0),
            ckpt,
            txn: txn(n),
            epoch: 0,
            records,
            out_ids,
            writer: Default::default(),
        },
    )
}
fn committed(t: u64, n: u64, epoch: u64, ids: &[u64]) -> Stamped {
    at(t, "broker", Event::TxnCommitted { txn: txn(n), epoch, out: outs(ids) })
}
fn recovery(t: u64, attempt: u64, from: Option<u64>) -> Stamped {
    at(t, "coordinator", Event::RecoveryStarted { attempt, from, reason: "test".into() })
}
fn restored(t: u64, attempt: u64, task: TaskId, ckpt: Option<u64>, pending: Vec<(u64, String)>) -> Stamped {
    let (state_ckpt, offsets_ckpt) = match task {
        TaskId::Source(_) => (ckpt, ckpt),
        TaskId::Chain(_) => (ckpt, None),
    };
    at(
        t,
        "worker-0",
        Event::TaskRestored {
            attempt,
            task,
            state_ckpt,
            offsets_ckpt,
            offset: None,
            pending_txns: pending,
            open_txn: None,
        },
    )
}

/// A good single-partition run: checkpoint 1 covers records 1-2, checkpoint
/// 2 covers 3-4 and is the last; each transaction committed after its
/// checkpoint completed; the reader saw both steps.
fn good() -> History {
    History {
        scenario: "echo".into(),
        seed: 1,
        mode: DeliveryMode::ExactlyOnce,
        parallelism: 1,
        output_partitions: 1,
        input: vec![vec![rec_in(1), rec_in(2), rec_in(3), rec_in(4)]],
        events: vec![
            recovery(5, 1, None),
            restored(6, 1, TaskId::Source(0), None, vec![]),
            init(7, 1, 0),
            restored(8, 1, TaskId::Chain(0), None, vec![]),
            trigger(10, 1),
            precommit(12, 1, 1, 2),
            init(13, 2, 0),
            complete(20, 1, 2, false),
            committed(30, 1, 0, &[1, 2]),
            at(31, "worker-0", Event::CommitConfirmed { task: TaskId::Chain(0), ckpt: 1, txn: txn(1), epoch: 0 }),
            trigger(40, 2),
            precommit(42, 2, 2, 2),
            complete(50, 2, 4, true),
            committed(60, 2, 0, &[3, 4]),
            at(70, "coordinator", Event::JobFinished { attempt: 1, ckpt: 2 }),
        ],
        observations: vec![obs(35, &[1, 2]), obs(65, &[3, 4])],
        final_output: vec![outs(&[1, 2, 3, 4])],
        final_read_ok: true,
        final_open_txns: vec![],
        healed_at_us: 0,
        deadline_us: 1_000_000,
        finished_at_us: Some(70),
        reached: Vec::new(),
    }
}

fn push(h: &mut History, s: Stamped) {
    h.events.push(s);
    h.events.sort_by_key(|s| s.t_us);
}

fn run(h: &History) -> (Vec<Violation>, OutputCounts) {
    let (v, c) = check_all(&CheckInput { history: h, scenario: &Echo });
    for x in &v {
        assert!(!x.message.contains('\n'), "one line: {}", x.message);
    }
    // The incremental references (lineages) and the whole ones agree.
    let whole = check_all_by_whole_references(&CheckInput { history: h, scenario: &Echo });
    assert_eq!((&v, &c), (&whole.0, &whole.1), "lineages vs whole references");
    (v, c)
}

/// The distinct checks that fired, in report order. Every history is also
/// judged with its transactions renamed (`job-sink-0-7` -> `mysink/0/7`):
/// the oracles never read names, so the verdicts must be the same.
fn checks(h: &History) -> Vec<&'static str> {
    let ids = checks_as_is(h);
    assert_eq!(checks_as_is(&renamed(h)), ids, "renaming the transactions changed the verdicts");
    ids
}

fn checks_as_is(h: &History) -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = run(h).0.iter().map(|v| v.check).collect();
    ids.dedup();
    ids
}

/// The same history with every transaction name in the sink's own scheme.
fn renamed(h: &History) -> History {
    let json = serde_json::to_string(&h.events).unwrap().replace("job-sink-0-", "mysink/0/");
    let mut r = h.clone();
    r.events = serde_json::from_str(&json).unwrap();
    r.final_open_txns = h.final_open_txns.iter().map(|(t, e)| (t.replace("job-sink-0-", "mysink/0/"), *e)).collect();
    r
}

/// The messages of one check.
fn msgs(h: &History, check: &str) -> Vec<String> {
    run(h).0.into_iter().filter(|v| v.check == check).map(|v| v.message).collect()
}

fn assert_mentions(msgs: &[String], parts: &[&str]) {
    assert!(
        msgs.iter().any(|m| parts.iter().all(|p| m.contains(p))),
        "no message mentions all of {parts:?}: {msgs:#?}"
    );
}

const NONE: Vec<&str> = Vec::new();

// ---- good runs ----

#[test]
fn good_history_passes() {
    let h = good();
    assert_eq!(checks(&h), NONE);
    assert_eq!(run(&h).1, OutputCounts { expected: 4, committed: 4, ..Default::default() });
}

#[test]
fn good_at_least_once_history_with_duplicates_passes() {
    let mut h = good();
    h.mode = DeliveryMode::AtLeastOnce;
    h.events.retain(|s| {
        !matches!(
            &s.ev,
            Ev::Engine(
                Event::ProducerInit { .. }
                    | Event::PreCommitted { .. }
                    | Event::TxnCommitted { .. }
                    | Event::CommitConfirmed { .. }
            )
        )
    });
    push(&mut h, at(15, "broker", Event::PlainAppend { partition: 0, out: outs(&[1, 2, 3]) }));
    push(&mut h, at(45, "broker", Event::PlainAppend { partition: 0, out: outs(&[3, 4]) }));
    h.observations = vec![obs(16, &[1, 2, 3]), obs(46, &[3, 4])];
    h.final_output = vec![outs(&[1, 2, 3, 3, 4])];
    assert_eq!(checks(&h), NONE);
    assert_eq!(run(&h).1, OutputCounts { expected: 4, committed: 5, duplicates: 1, ..Default::default() });
}

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

// ---- P9: fencing ----

#[test]
fn zombie_append_after_fencing_is_p9() {
    let mut h = good();
    push(&mut h, init(71, 3, 2));
    push(&mut h, at(72, "broker", Event::AppendAccepted { txn: txn(3), epoch: 1, partition: 0, records: 1 }));
    assert_eq!(checks(&h), vec!["P9"]);
    assert_mentions(
        &msgs(&h, "P9"),
        &["job-sink-0-3", "append of 1 records to partition 0 with epoch 1", "fenced by epoch 2"],
    );
}

#[test]
fn zombie_commit_after_fencing_is_p9() {
    let mut h = good();
    push(&mut h, init(55, 2, 1));
    assert_eq!(checks(&h), vec!["P9"]);
    assert_mentions(&msgs(&h, "P9"), &["job-sink-0-2", "commit of 2 records with epoch 0", "fenced by epoch 1"]);
}

#[test]
fn init_of_an_older_attempt_after_a_takeover_is_p9() {
    let mut h = good();
    push(&mut h, init_of(71, 3, 2, 2));
    push(&mut h, init_of(72, 3, 3, 2));
    assert_eq!(checks(&h), NONE, "the owner's own inits are fine");
    push(&mut h, init_of(73, 3, 4, 1));
    assert_eq!(checks(&h), vec!["P9"]);
    assert_mentions(
        &msgs(&h, "P9"),
        &["job-sink-0-3", "init of job attempt 1 (run 0, session: deploy 0, try 0) (epoch 4)", "after job attempt 2"],
    );
}

#[test]
fn init_of_an_earlier_session_of_the_same_attempt_is_p9() {
    let mut h = good();
    push(&mut h, init_session(71, 3, 2, 1, (2, 0)));
    push(&mut h, init_session(72, 3, 3, 1, (2, 1)));
    assert_eq!(checks(&h), NONE, "a later try of the same deploy takes the id");
    push(&mut h, init_session(73, 3, 4, 1, (1, 5)));
    assert_eq!(checks(&h), vec!["P9"], "an earlier deploy's late init, whatever its try");
    assert_mentions(
        &msgs(&h, "P9"),
        &["job-sink-0-3", "session: deploy 1, try 5", "after job attempt 1 (run 0, session: deploy 2, try 1)"],
    );
}

#[test]
fn a_newer_run_takes_an_id_over_whatever_its_attempt() {
    let mut h = good();
    push(&mut h, init_of(71, 3, 2, 4));
    push(
        &mut h,
        at(
            72,
            "broker",
            Event::ProducerInit { txn: txn(3), epoch: 3, run: 1, attempt: 1, session: (0, 0), aborted_open: false },
        ),
    );
    assert_eq!(checks(&h), NONE);
    push(&mut h, init_of(73, 3, 4, 4));
    assert_eq!(checks(&h), vec!["P9"], "the older run's late init");
}

// ---- P14: a fenced writer stays invisible ----

fn owner(attempt: u64) -> exactsim_engine::types::Owner {
    exactsim_engine::types::Owner { run: 0, attempt, session: (0, 0) }
}

fn writer(attempt: u64, n: u64) -> exactsim_engine::types::Writer {
    exactsim_engine::types::Writer {
        owner: owner(attempt),
        subtask: 0,
        txn: exactsim_engine::types::txn_tag(&txn(n), 0),
    }
}

/// `good()` as an engine with lineage records it: attempt 1's sink opens at
/// 6, every pre-commit and every visible record carries attempt 1's writer
/// of its transaction (records 1-2 in transaction 1, 3-4 in 2).
fn good_with_lineage() -> History {
    let mut h = good();
    push(&mut h, at(6, "worker-0", Event::SinkOpened { task: TaskId::Chain(0), owner: owner(1) }));
    for s in h.events.iter_mut() {
        if let Ev::Engine(Event::PreCommitted { txn: t, writer: w, .. }) = &mut s.ev {
            let n: u64 = t.rsplit('-').next().unwrap().parse().unwrap();
            *w = writer(1, n);
        }
    }
    let stamp = |r: &mut OutRecord| r.writer = writer(1, r.out_id.div_ceil(2));
    h.observations.iter_mut().flat_map(|o| o.new_records.iter_mut()).for_each(stamp);
    h.final_output.iter_mut().flatten().for_each(stamp);
    h
}

#[test]
fn records_pre_committed_by_their_writer_before_it_was_superseded_pass_p14() {
    let mut h = good_with_lineage();
    assert_eq!(checks(&h), NONE);
    // A newer owner starting after the last completion changes nothing: the
    // older owner's records were pre-committed, and their checkpoints
    // completed, while it owned the subtask (the newer owner's restore
    // would re-commit them).
    push(&mut h, at(55, "worker-0", Event::SinkOpened { task: TaskId::Chain(0), owner: owner(2) }));
    assert_eq!(checks(&h), NONE);
    // Another subtask's newer owner does not supersede subtask 0's.
    let mut h = good_with_lineage();
    push(&mut h, at(41, "worker-1", Event::SinkOpened { task: TaskId::Chain(1), owner: owner(2) }));
    assert_eq!(checks(&h), NONE);
}

#[test]
fn a_pre_commit_after_a_newer_owner_started_is_p14() {
    let mut h = good_with_lineage();
    push(&mut h, at(41, "worker-0", Event::SinkOpened { task: TaskId::Chain(0), owner: owner(2) }));
    assert_eq!(checks(&h), vec!["P14"]);
    assert_mentions(
        &msgs(&h, "P14"),
        &["record 3 (key 0) became visible", "written by job attempt 1", "pre-committed it at", "after job attempt 2"],
    );
    // An older session of the same attempt is superseded the same way.
    let mut h = good_with_lineage();
    let newer = exactsim_engine::types::Owner { session: (0, 1), ..owner(1) };
    push(&mut h, at(41, "worker-0", Event::SinkOpened { task: TaskId::Chain(0), owner: newer }));
    assert_eq!(checks(&h), vec!["P14"]);
}

/// The subtask's owner is the one that started last, whatever its number:
/// a deployment delivered late to a restarted worker starts a session with
/// a smaller number after a larger one (gate seed 11000002947 of
/// pg_ledger), and that later start owns the subtask.
#[test]
fn the_owner_that_started_last_owns_the_subtask_whatever_its_number_p14() {
    let session = |deploy: u64| exactsim_engine::types::Owner { session: (deploy, 0), ..owner(1) };
    let restamp = |h: &mut History, o: exactsim_engine::types::Owner| {
        for s in h.events.iter_mut() {
            if let Ev::Engine(Event::PreCommitted { writer: w, .. }) = &mut s.ev {
                w.owner = o;
            }
        }
        let stamp = |r: &mut OutRecord| r.writer.owner = o;
        h.observations.iter_mut().flat_map(|o| o.new_records.iter_mut()).for_each(stamp);
        h.final_output.iter_mut().flatten().for_each(stamp);
    };
    // Session 19 started at 2 and its worker died; session 16 started at 6
    // and wrote everything: no zombie.
    let mut h = good_with_lineage();
    push(&mut h, at(2, "worker-0", Event::SinkOpened { task: TaskId::Chain(0), owner: session(19) }));
    h.events.retain(|s| !matches!(&s.ev, Ev::Engine(Event::SinkOpened { owner: o, .. }) if *o == owner(1)));
    push(&mut h, at(6, "worker-0", Event::SinkOpened { task: TaskId::Chain(0), owner: session(16) }));
    restamp(&mut h, session(16));
    assert_eq!(checks(&h), NONE);
    // The other way round, session 16's writes after session 19 started
    // later are a zombie's.
    let mut h = good_with_lineage();
    h.events.retain(|s| !matches!(&s.ev, Ev::Engine(Event::SinkOpened { owner: o, .. }) if *o == owner(1)));
    push(&mut h, at(6, "worker-0", Event::SinkOpened { task: TaskId::Chain(0), owner: session(16) }));
    push(&mut h, at(41, "worker-0", Event::SinkOpened { task: TaskId::Chain(0), owner: session(19) }));
    restamp(&mut h, session(16));
    assert_eq!(checks(&h), vec!["P14"]);
    assert_mentions(&msgs(&h, "P14"), &["record 3", "deploy 16", "pre-committed it at", "deploy 19"]);
}

/// An older attempt's owner that starts after a newer attempt's (a worker
/// frozen with the old deployment queued adopts a removed subtask of a
/// rescaled job: rescale sweep seed 108000000107) supersedes nothing, and
/// is a zombie from its own start.
#[test]
fn an_older_attempt_starting_after_a_newer_one_supersedes_nothing_p14() {
    // Attempt 1 owns the subtask from 6; attempt 0's late start at 41
    // leaves it the owner.
    let mut h = good_with_lineage();
    push(&mut h, at(41, "worker-1", Event::SinkOpened { task: TaskId::Chain(0), owner: owner(0) }));
    assert_eq!(checks(&h), NONE);
    // What the late older owner pre-commits after its start is a zombie's.
    let mut h = good_with_lineage();
    h.events.retain(|s| !matches!(&s.ev, Ev::Engine(Event::SinkOpened { owner: o, .. }) if *o == owner(1)));
    push(&mut h, at(2, "worker-0", Event::SinkOpened { task: TaskId::Chain(0), owner: owner(2) }));
    push(&mut h, at(6, "worker-1", Event::SinkOpened { task: TaskId::Chain(0), owner: owner(1) }));
    assert_eq!(checks(&h), vec!["P14"]);
    assert_mentions(&msgs(&h, "P14"), &["written by job attempt 1", "pre-committed it at", "after job attempt 2"]);
}

#[test]
fn a_pre_commit_whose_checkpoint_completed_only_after_the_fence_is_p14() {
    // Transaction 2 was pre-committed at 42 for checkpoint 2, attempt 2
    // took over at 45, and checkpoint 2 is only known complete at 50: the
    // fence should have aborted it (a zombie's late write into a later
    // instance of the transaction looks like this from outside).
    let mut h = good_with_lineage();
    push(&mut h, at(45, "worker-0", Event::SinkOpened { task: TaskId::Chain(0), owner: owner(2) }));
    assert_eq!(checks(&h), vec!["P14"]);
    assert_mentions(
        &msgs(&h, "P14"),
        &[
            "record 3",
            "pre-committed it for checkpoint 2",
            "no checkpoint from 2 on had completed before job attempt 2",
        ],
    );
    // Without a newer owner, a commit no completed checkpoint covers is
    // early visibility (P3's), not a fencing failure.
    let mut h = good_with_lineage();
    h.events.retain(|s| !matches!(s.ev, Ev::Engine(Event::CheckpointCompleted { ckpt: 2, .. })));
    assert!(!checks(&h).contains(&"P14"), "{:?}", checks(&h));
}

#[test]
fn a_record_its_writer_never_pre_committed_is_p14() {
    // A zombie's late write into a transaction a newer owner committed:
    // record 4 carries attempt 1's writer of transaction 3.
    let mut h = good_with_lineage();
    h.final_output[0][3].writer = writer(1, 3);
    assert_eq!(checks(&h), vec!["P14"]);
    assert_mentions(&msgs(&h, "P14"), &["record 4", "in the final read of partition 0", "never pre-committed it"]);
}

#[test]
fn a_system_that_drops_the_lineage_is_p14() {
    let mut h = good_with_lineage();
    h.final_output[0][0].writer = Default::default();
    h.observations[0].new_records[0].writer = Default::default();
    assert_eq!(checks(&h), vec!["P14"]);
    assert_mentions(&msgs(&h, "P14"), &["1 visible records carry no writer"]);
}

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

// ---- P15: the adaptive interval ----

/// A coordinator's events only, times in ms: what P15 reads.
fn coordinator_only(events: Vec<Stamped>) -> History {
    History {
        input: vec![vec![]],
        events,
        observations: vec![],
        final_output: vec![vec![]],
        finished_at_us: None,
        ..good()
    }
}
fn trig_ms(t_ms: u64, attempt: u64, ckpt: u64) -> Stamped {
    at(t_ms * 1000, "coordinator", Event::CheckpointTriggered { attempt, ckpt })
}
fn done_ms(t_ms: u64, attempt: u64, ckpt: u64) -> Stamped {
    at(t_ms * 1000, "coordinator", Event::CheckpointCompleted { attempt, ckpt, offsets: vec![0], finished: false })
}
fn chosen_ms(t_ms: u64, interval_ms: u64) -> Stamped {
    at(t_ms * 1000, "coordinator", Event::IntervalChosen { interval_ms, min_ms: 100, max_ms: 2000 })
}
fn sim_ms(t_ms: u64, e: SimEvent) -> Stamped {
    Stamped { t_us: t_ms * 1000, node: "sim".into(), ev: Ev::Sim(e) }
}
/// Checkpoints of `dur` ms every `gap` ms from `from` ms, ids from `first`,
/// attempt 1, each completion with its choice (`gap`).
fn cycles_ms(from: u64, first: u64, n: u64, gap: u64, dur: u64) -> Vec<Stamped> {
    let mut v = Vec::new();
    for i in 0..n {
        let t = from + i * gap;
        v.extend([trig_ms(t, 1, first + i), done_ms(t + dur, 1, first + i), chosen_ms(t + dur, gap)]);
    }
    v
}
/// P15's messages on a history.
fn p15(h: &History) -> Vec<String> {
    super::p15_interval_checker::check(&Ctx::new(h, &Echo)).into_iter().map(|f| f.message).collect()
}

#[test]
fn an_adaptive_interval_within_bounds_and_a_tenth_passes_p15() {
    // 50 ms checkpoints every 480 ms: 48 ms counted (2 ms for the
    // coordinator's whole milliseconds), exactly a tenth.
    let h = coordinator_only(cycles_ms(100, 1, 6, 480, 50));
    assert_eq!(p15(&h), Vec::<String>::new());
    // A fixed interval (no choice): nothing to judge, however dense.
    let mut fixed = coordinator_only(cycles_ms(100, 1, 6, 60, 50));
    fixed.events.retain(|s| !matches!(s.ev, Ev::Engine(Event::IntervalChosen { .. })));
    assert_eq!(p15(&fixed), Vec::<String>::new());
    // Through the whole table: a good run with an adaptive interval.
    let mut g = good();
    push(&mut g, at(20, "coordinator", Event::IntervalChosen { interval_ms: 100, min_ms: 100, max_ms: 2000 }));
    assert_eq!(checks(&g), NONE);
}

#[test]
fn an_interval_outside_its_bounds_is_p15() {
    let mut h = good();
    push(&mut h, at(20, "coordinator", Event::IntervalChosen { interval_ms: 2500, min_ms: 100, max_ms: 2000 }));
    assert_eq!(checks(&h), vec!["P15"]);
    assert_mentions(&msgs(&h, "P15"), &["interval of 2500 ms chosen at 0.0ms is outside its bounds [100, 2000] ms"]);
    let mut h = good();
    push(&mut h, at(20, "coordinator", Event::IntervalChosen { interval_ms: 40, min_ms: 100, max_ms: 2000 }));
    assert_eq!(checks(&h), vec!["P15"]);
    // Bounds that change within a run, or cannot hold anything.
    let mut h = coordinator_only(cycles_ms(100, 1, 3, 600, 50));
    push(&mut h, at(5_000_000, "coordinator", Event::IntervalChosen { interval_ms: 600, min_ms: 100, max_ms: 3000 }));
    push(&mut h, at(6_000_000, "coordinator", Event::IntervalChosen { interval_ms: 600, min_ms: 700, max_ms: 300 }));
    let m = p15(&h);
    assert_mentions(&m, &["states bounds [100, 3000] ms, earlier choices [100, 2000] ms"]);
    assert_mentions(&m, &["states impossible bounds [700, 300] ms"]);
}

#[test]
fn checkpointing_over_a_tenth_of_the_processing_time_is_p15() {
    // 50 ms checkpoints every 200 ms: 24%.
    let h = coordinator_only(cycles_ms(100, 1, 6, 200, 50));
    let m = p15(&h);
    assert_eq!(m.len(), 1, "{m:?}");
    assert_mentions(&m, &["checkpointing took 24.0% of the processing time over 5 fault-free cycles", "200ms apart"]);
    // Just over the tenth.
    assert_eq!(p15(&coordinator_only(cycles_ms(100, 1, 6, 479, 50))).len(), 1);
    // Through the whole table: the one check that fires.
    let mut g = good();
    g.events.retain(|s| !matches!(s.ev, Ev::Engine(Event::CheckpointTriggered { .. })));
    push(&mut g, at(1, "coordinator", Event::CheckpointTriggered { attempt: 1, ckpt: 1 }));
    push(&mut g, at(21, "coordinator", Event::IntervalChosen { interval_ms: 100, min_ms: 100, max_ms: 2000 }));
    push(&mut g, at(40, "coordinator", Event::CheckpointTriggered { attempt: 1, ckpt: 2 }));
    // In milliseconds instead of microseconds: checkpoint 1 took 19 ms,
    // the next came 39 ms after it.
    for s in &mut g.events {
        s.t_us *= 1000;
    }
    for o in &mut g.observations {
        o.t_us *= 1000;
    }
    g.finished_at_us = Some(70_000);
    assert_eq!(checks(&g), vec!["P15"]);
}

#[test]
fn p15_counts_only_unfaulted_measured_unoverloaded_cycles_of_one_coordinator_and_attempt() {
    let bad = cycles_ms(100, 1, 6, 200, 50);
    // A fault from 50 ms that heals at 2 s: nothing counts.
    let mut h = coordinator_only(bad.clone());
    push(&mut h, sim_ms(50, SimEvent::FaultStarted { kind: "slow_disk".into(), detail: "{}".into() }));
    h.healed_at_us = 2_000_000;
    assert_eq!(p15(&h), Vec::<String>::new());
    // Healed at 200 ms: the cycles whose span and whose measured
    // checkpoints (the last three) lie 100 ms after it or later count: not
    // 500-700, whose mean has the checkpoint triggered at 100 ms in it.
    h.healed_at_us = 200_000;
    assert_mentions(&p15(&h), &["over 2 fault-free cycles (700.0ms to 1100.0ms"]);
    // Healed at 250 ms: the checkpoint triggered at 300 ms is too close (a
    // clock read before the heal set it back may be stamped after it).
    h.healed_at_us = 250_000;
    assert_mentions(&p15(&h), &["over 1 fault-free cycle (900.0ms to 1100.0ms"]);
    // The fault begins after the third cycle: the first two count.
    let mut h = coordinator_only(bad.clone());
    push(
        &mut h,
        sim_ms(
            550,
            SimEvent::NodeCrashed {
                node: "store".into(),
                cause: "scheduled crash".into(),
                lost_bytes: 0,
                torn_files: 0,
            },
        ),
    );
    h.healed_at_us = 5_000_000;
    assert_mentions(&p15(&h), &["over 2 fault-free cycles (100.0ms to 500.0ms"]);
    // Overloaded: 250 ms checkpoints cannot be kept under a tenth within
    // a 2 s bound; they do not count.
    assert_eq!(p15(&coordinator_only(cycles_ms(100, 1, 6, 1000, 250))), Vec::<String>::new());
    // Before the controller measured anything (no completion), and across
    // a coordinator restart or a new attempt, no cycle.
    let h = coordinator_only(vec![
        trig_ms(100, 1, 1),
        trig_ms(200, 1, 2), // nothing measured yet
        done_ms(250, 1, 1),
        chosen_ms(250, 100),
        at(260_000, "coordinator", Event::RecoveryStarted { attempt: 2, from: Some(1), reason: "test".into() }),
        trig_ms(300, 2, 3), // another attempt
        at(310_000, "coordinator", Event::CoordinatorRecovered { next_checkpoint: 4, attempt: 2, completed: vec![1] }),
        trig_ms(400, 2, 4), // another coordinator, nothing measured by it
        done_ms(450, 2, 4),
        chosen_ms(450, 100),
    ]);
    assert_eq!(p15(&h), Vec::<String>::new());
    // The same without the breaks: 150 ms of checkpoints in 300 ms.
    let h = coordinator_only(vec![
        trig_ms(100, 1, 1),
        done_ms(250, 1, 1),
        chosen_ms(250, 100),
        trig_ms(300, 1, 3),
        trig_ms(400, 1, 4),
    ]);
    assert_mentions(&p15(&h), &["over 2 fault-free cycles"]);
}

// ---- composition ----

#[test]
fn at_most_five_per_check_the_first_ones_in_check_order() {
    let mut h = good();
    for i in 0..8 {
        push(&mut h, init(100 + i, 1, 0));
    }
    h.final_open_txns = vec![(txn(3), 1)];
    let (v, _) = run(&h);
    let p4: Vec<u64> = v.iter().filter(|x| x.check == "P4").map(|x| x.t_us.unwrap()).collect();
    assert_eq!(p4, vec![100, 101, 102, 103, 104]);
    assert_eq!(checks(&h), vec!["P4", "P8"]);
    // P10 sorts after P2, not between P1 and P2.
    let mut h = good();
    h.observations = vec![obs(35, &[2]), obs(65, &[1, 3, 4])];
    push(&mut h, recovery(80, 2, Some(2)));
    push(&mut h, restored(81, 2, TaskId::Source(0), Some(1), vec![]));
    assert_eq!(checks(&h), vec!["P2", "P10"]);
}

#[test]
fn output_counts_count_each_kind() {
    let mut h = good();
    h.final_output = vec![vec![out(1), out(1), out(1), OutRecord { value: 5, ..out(2) }, out(7)]];
    let reference = Echo.reference(&h.input, &[4]);
    assert_eq!(
        output_counts(&h, &reference),
        OutputCounts { expected: 4, committed: 5, duplicates: 2, lost: 2, wrong: 1, unexpected: 1 }
    );
}

#[test]
fn completion_found_only_at_coordinator_recovery_counts_from_then() {
    // The completion record of 2 became durable, then the coordinator died
    // before announcing it; the restarted coordinator finds it and recovers
    // from it, and the sink re-commits its transaction.
    let mut h = good();
    h.events.retain(|s| {
        !matches!(&s.ev, Ev::Engine(Event::CheckpointCompleted { ckpt: 2, .. }) | Ev::Engine(Event::JobFinished { .. }))
    });
    for s in [
        at(41, "worker-0", Event::SourceBarrier { attempt: 1, source: 0, ckpt: 2, offset: 4 }),
        at(52, "coordinator", Event::CoordinatorRecovered { next_checkpoint: 3, attempt: 1, completed: vec![1, 2] }),
        recovery(53, 2, Some(2)),
        restored(54, 2, TaskId::Source(0), Some(2), vec![]),
        restored(55, 2, TaskId::Chain(0), Some(2), vec![(2, txn(2))]),
        at(66, "coordinator", Event::CheckpointTriggered { attempt: 2, ckpt: 3 }),
        at(68, "coordinator", Event::CheckpointCompleted { attempt: 2, ckpt: 3, offsets: vec![4], finished: true }),
        at(70, "coordinator", Event::JobFinished { attempt: 2, ckpt: 3 }),
    ] {
        push(&mut h, s);
    }
    assert_eq!(checks(&h), NONE);
    // Without that evidence, 2 never completed: its commit is early, the
    // reader sees no completed prefix, and the recovery restores garbage.
    h.events.retain(|s| !matches!(&s.ev, Ev::Engine(Event::CoordinatorRecovered { .. })));
    assert_eq!(checks(&h), vec!["P2", "P3", "P10"]);
}

#[test]
fn the_check_table_is_complete_and_consistent() {
    let ids: BTreeSet<&str> = CHECKS.iter().map(|c| c.id).collect();
    let names: BTreeSet<&str> = CHECKS.iter().map(|c| c.name).collect();
    assert_eq!(ids.len(), CHECKS.len(), "ids are unique");
    assert_eq!(names.len(), CHECKS.len(), "names are unique");
    for c in &CHECKS {
        assert!(!c.name.contains(' ') && !c.name.is_empty(), "{}: one word", c.name);
        assert!(!c.meaning.contains('\n') && c.meaning.len() < 120, "{}: one line", c.id);
        // Every id but `panic` has an oracle behind it.
        assert_eq!(matches!(c.judge, Judge::History(_)), c.id != PANIC_CHECK, "{}", c.id);
    }
    assert_eq!(info("P7").map(|c| c.name), Some("precommit-committed"));
    assert_eq!(name_of("panic"), "panic");
    assert_eq!(name_of("P99"), "");
    let eo: Vec<&str> = checks_for(DeliveryMode::ExactlyOnce).map(|c| c.id).collect();
    assert_eq!(
        eo,
        ["P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "P10", "P11", "P13", "P14", "P15", "P16", "P21"]
    );
    let alo: Vec<&str> = checks_for(DeliveryMode::AtLeastOnce).map(|c| c.id).collect();
    assert_eq!(alo, ["P4", "P11", "P12", "P15", "P16", "P21"]);
}

#[test]
fn violations_carry_table_ids_in_table_order() {
    // A history breaking several checks at once: the ids are the table's,
    // sorted as in the table (P10 after P9).
    let mut h = good();
    h.final_output = vec![vec![]];
    h.finished_at_us = None;
    let (v, _) = run(&h);
    assert!(!v.is_empty());
    let pos: Vec<usize> = v.iter().map(|x| CHECKS.iter().position(|c| c.id == x.check).expect("table id")).collect();
    assert!(pos.windows(2).all(|w| w[0] <= w[1]), "{:?}", v.iter().map(|x| x.check).collect::<Vec<_>>());
}

// ---- a scenario's own checks ----

/// Echo with the per-partition order check of its own.
struct OrderedEcho;
impl Scenario for OrderedEcho {
    fn name(&self) -> &'static str {
        "ordered_echo"
    }
    fn description(&self) -> &'static str {
        "test: echo with an order check"
    }
    fn generate(&self, r: &mut SimRng, p: u32) -> Vec<Vec<Record>> {
        Echo.generate(r, p)
    }
    fn pipeline(&self) -> Arc<dyn Pipeline> {
        Echo.pipeline()
    }
    fn reference(&self, input: &[Vec<Record>], offsets: &[u64]) -> Vec<OutRecord> {
        Echo.reference(input, offsets)
    }
    fn checks(&self) -> Vec<crate::scenario::ScenarioCheck> {
        vec![
            crate::scenario::order_per_partition("echo/order"),
            crate::scenario::ScenarioCheck {
                id: "echo/counted",
                name: "counted",
                meaning: "test: counts its calls",
                check: counted,
            },
        ]
    }
}

#[test]
fn a_scenarios_own_check_runs_with_the_others_and_sorts_last() {
    let h = good();
    assert!(check_all(&CheckInput { history: &h, scenario: &OrderedEcho }).0.is_empty());
    let mut h = good();
    h.final_output = vec![outs(&[1, 3, 2, 4])];
    let (v, _) = check_all(&CheckInput { history: &h, scenario: &OrderedEcho });
    let names: Vec<&str> = v.iter().map(|x| x.check).collect();
    assert_eq!(names.last(), Some(&"echo/order"), "{names:?}");
    assert_mentions(
        &v.iter().filter(|x| x.check == "echo/order").map(|x| x.message.clone()).collect::<Vec<_>>(),
        &["partition 0: key 0 has src 2 after src 3"],
    );
}

thread_local! {
    /// How often `counted` ran on this thread.
    static COUNTED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// A scenario check that only counts its calls and finds nothing.
fn counted(_h: &History) -> Vec<String> {
    COUNTED.with(|c| c.set(c.get() + 1));
    Vec::new()
}

#[test]
fn every_declared_check_runs() {
    // Over both modes, every oracle of the table and each of the scenario's
    // own checks is called, once per run, in the order the reports list
    // them (`ids_for`).
    let mut everything_ran: BTreeSet<&str> = BTreeSet::new();
    for mode in [DeliveryMode::ExactlyOnce, DeliveryMode::AtLeastOnce] {
        let mut h = good();
        h.mode = mode;
        let ctx = Ctx::new(&h, &OrderedEcho);
        let before = COUNTED.with(|c| c.get());
        let mut ran = Vec::new();
        judge_all(&ctx, &OrderedEcho.checks(), &mut ran);
        assert_eq!(COUNTED.with(|c| c.get()), before + 1, "the scenario's own check was called once");
        assert_eq!(ran, ids_for(&OrderedEcho, mode), "{mode:?}: what ran is what the reports list");
        let want: Vec<&str> = checks_for(mode).map(|c| c.id).chain(["echo/order", "echo/counted"]).collect();
        assert_eq!(ran, want, "{mode:?}");
        everything_ran.extend(ran);
    }
    // An upsert scenario's runs (at least once) run P17 and P18 too.
    let h = upsert_good();
    let ctx = Ctx::new(&h, &Table);
    let mut ran = Vec::new();
    judge_all(&ctx, &[], &mut ran);
    assert_eq!(ran, ids_for(&Table, DeliveryMode::AtLeastOnce), "upsert: what ran is what the reports list");
    everything_ran.extend(ran);
    for c in &CHECKS {
        assert_eq!(everything_ran.contains(c.id), matches!(c.judge, Judge::History(_)), "{} runs in some mode", c.id);
    }
    // And a scenario's own checks are described like the table's.
    assert_eq!(name_in(&OrderedEcho, "echo/order"), "order-per-partition");
    assert_eq!(name_in(&OrderedEcho, "P7"), "precommit-committed");
    assert_eq!(name_in(&OrderedEcho, "nope"), "");
}

// ---- P16: retained checkpoints are restorable ----

/// Incremental checkpoints: checkpoint 1 refers to `f1`, checkpoint 2 to
/// `f1` and `f2`. Deleting `f1` after checkpoint 1 is discarded is legal
/// only if no retained checkpoint refers to it, and checkpoint 2 does.
#[test]
fn p16_sees_a_file_of_a_retained_checkpoint_deleted() {
    let files = |ckpt: u64, f: &[&str]| Event::SnapshotFiles {
        attempt: 1,
        task: TaskId::Chain(0),
        ckpt,
        files: f.iter().map(|s| s.to_string()).collect(),
    };
    let stored = |name: &str| Event::BlobStored { name: name.into(), bytes: 1 };
    let mut h = good();
    for (t, e) in [
        (11, stored("m1")),
        (11, stored("f1")),
        (11, files(1, &["m1", "f1"])),
        (41, stored("m2")),
        (41, stored("f2")),
        (41, files(2, &["m2", "f1", "f2"])),
        (51, Event::CheckpointDiscarded { ckpt: 1 }),
        (52, Event::BlobsDeleted { names: vec!["m1".into()] }),
    ] {
        push(&mut h, at(t, if t == 51 { "coordinator" } else { "worker-0" }, e));
    }
    assert_eq!(checks(&h), Vec::<&str>::new(), "the discarded checkpoint's own blob may go");
    push(&mut h, at(53, "store", Event::BlobsDeleted { names: vec!["f1".into()] }));
    let (v, _) = run(&h);
    let p16: Vec<&Violation> = v.iter().filter(|x| x.check == "P16").collect();
    assert_eq!(p16.len(), 2, "{v:?}");
    assert!(p16.iter().any(|x| x.message.contains("f1 deleted") && x.message.contains("checkpoint 2")), "{p16:?}");
    assert!(p16.iter().any(|x| x.message.contains("at the end, retained checkpoint 2")), "{p16:?}");
}

// ---- P21: no retry storm ----

fn failed_ms(t_ms: u64, reason: &str) -> Stamped {
    at(t_ms * 1000, "worker-1", Event::TaskFailed { attempt: 2, task: TaskId::Chain(1), reason: reason.into() })
}
fn p21(events: Vec<Stamped>) -> Vec<String> {
    let h = coordinator_only(events);
    super::p21_retry_checker::check(&Ctx::new(&h, &Echo)).into_iter().map(|f| f.message).collect()
}

#[test]
fn ten_recovery_retries_within_six_seconds_are_a_storm_p21() {
    let evs: Vec<_> = (0..12).map(|i| failed_ms(1_000 + i * 500, "recovery: broker I/O error")).collect();
    let m = p21(evs.clone());
    assert_eq!(m.len(), 1, "once per task: {m:?}");
    assert_mentions(
        &m,
        &["chain-1 retried its recovery 10 times between 1000.0ms and 5500.0ms on worker-1", "12 retries"],
    );
    // A process restarted between them starts its waits over.
    let mut restarted = evs.clone();
    restarted.push(at(3_200_000, "worker-1", Event::NodeStarted));
    restarted.sort_by_key(|e| e.t_us);
    assert_eq!(p21(restarted), Vec::<String>::new());
    let mut h = good();
    for e in evs {
        push(&mut h, e);
    }
    assert_eq!(checks(&h), vec!["P21"]);
}

#[test]
fn backed_off_retries_and_other_task_failures_pass_p21() {
    // The default policy's shortest waits, with a system refusing at once.
    let policy = exactsim_engine::backoff::BackoffPolicy::default();
    let mut t = 0;
    let mut evs = vec![failed_ms(0, "recovery: x")];
    for n in 1..20 {
        t += policy.delay(n, 20).as_millis() as u64;
        evs.push(failed_ms(t, "recovery: x"));
    }
    // Failures outside recovery are not its retries.
    evs.extend((0..20).map(|i| failed_ms(100 + i, "sink: commit failed")));
    evs.sort_by_key(|e| e.t_us);
    assert_eq!(p21(evs), Vec::<String>::new());
    // Ten retries spread over just more than the window.
    let spread: Vec<_> = (0..10).map(|i| failed_ms(i * 667, "recovery: x")).collect();
    assert_eq!(p21(spread), Vec::<String>::new(), "9 gaps of 667 ms span 6.003 s");
}

// ---- P17 / P18: an upsert table ----

/// A keyed table of versioned upserts: the reference is each key's final
/// row (out_id = its last record, value = running sum, version in `src` =
/// the key's update number).
struct Table;
impl Scenario for Table {
    fn name(&self) -> &'static str {
        "table"
    }
    fn description(&self) -> &'static str {
        "test: an upsert table"
    }
    fn generate(&self, _rng: &mut SimRng, _p: u32) -> Vec<Vec<Record>> {
        unimplemented!("histories are written by hand")
    }
    fn pipeline(&self) -> Arc<dyn Pipeline> {
        Arc::new(EchoPipeline)
    }
    fn reference(&self, input: &[Vec<Record>], offsets: &[u64]) -> Vec<OutRecord> {
        let mut last: std::collections::BTreeMap<u64, OutRecord> = Default::default();
        for (p, o) in input.iter().zip(offsets) {
            for r in &p[..*o as usize] {
                let (v, n) = last.get(&r.key).map_or((0, 0), |x| (x.value, x.src));
                last.insert(r.key, OutRecord::new(r.id, r.key, v + r.value, n + 1));
            }
        }
        last.into_values().collect()
    }
    fn upsert_table(&self) -> bool {
        true
    }
}

/// Row of key `key` at `version` with the value that version has in
/// [`upsert_good`]'s input (keys 0 and 1, values 1 each: value = version).
fn row(key: u64, version: u64, out_id: u64) -> OutRecord {
    OutRecord::new(out_id, key, version as i64, version)
}

/// Records 1..=5: keys 0, 1, 0, 0, 1. Final rows: key 0 at version 3 (out
/// 4), key 1 at version 2 (out 5). A recovery replayed records 3 and 4.
fn upsert_good() -> History {
    let keys = [0u64, 1, 0, 0, 1];
    let input = vec![keys
        .iter()
        .enumerate()
        .map(|(i, k)| Record { id: i as u64 + 1, key: *k, ts_ms: i as u64, value: 1 })
        .collect()];
    History {
        scenario: "table".into(),
        seed: 1,
        mode: DeliveryMode::AtLeastOnce,
        parallelism: 1,
        output_partitions: 1,
        input,
        events: vec![
            trigger(10, 1),
            complete(20, 1, 2, false),
            trigger(40, 2),
            complete(50, 2, 5, true),
            at(70, "coordinator", Event::JobFinished { attempt: 1, ckpt: 2 }),
        ],
        observations: vec![
            Observation { t_us: 15, partition: 0, new_records: vec![row(0, 1, 1), row(1, 1, 2)], open_txns: 0 },
            Observation { t_us: 30, partition: 0, new_records: vec![row(0, 3, 4)], open_txns: 0 },
            // The replay of records 3 and 4 changed nothing; record 5 landed.
            Observation { t_us: 60, partition: 0, new_records: vec![row(1, 2, 5)], open_txns: 0 },
        ],
        final_output: vec![vec![row(0, 3, 4), row(1, 2, 5)]],
        final_read_ok: true,
        final_open_txns: vec![],
        healed_at_us: 0,
        deadline_us: 1_000_000,
        finished_at_us: Some(70),
        reached: Vec::new(),
    }
}

fn table_checks(h: &History) -> Vec<&'static str> {
    let (v, _) = check_all(&CheckInput { history: h, scenario: &Table });
    let mut ids: Vec<&'static str> = v.iter().map(|v| v.check).collect();
    ids.dedup();
    ids
}

fn table_msgs(h: &History, check: &str) -> Vec<String> {
    check_all(&CheckInput { history: h, scenario: &Table })
        .0
        .into_iter()
        .filter(|v| v.check == check)
        .map(|v| v.message)
        .collect()
}

#[test]
fn a_good_upsert_history_passes_and_runs_p17_and_p18() {
    assert_eq!(table_checks(&upsert_good()), NONE);
    assert_eq!(ids_for(&Table, DeliveryMode::AtLeastOnce), ["P4", "P11", "P12", "P15", "P16", "P17", "P18", "P21"]);
    assert!(!ids_for(&Echo, DeliveryMode::AtLeastOnce).contains(&"P17"), "only upsert runs");
    assert_eq!(crate::scenario::mode_of(&Table, DeliveryMode::ExactlyOnce), DeliveryMode::AtLeastOnce);
}

#[test]
fn an_older_final_row_is_p17() {
    let mut h = upsert_good();
    // A stale write of key 0 at version 2 landed last.
    h.final_output = vec![vec![row(0, 2, 3), row(1, 2, 5)]];
    assert_eq!(table_checks(&h), ["P12", "P17", "P18"]);
    assert_mentions(&table_msgs(&h, "P17"), &["key 0", "version 2", "version 3"]);
    assert_mentions(&table_msgs(&h, "P18"), &["key 0 went back from version 3", "to version 2", "the final read"]);
}

#[test]
fn a_missing_or_extra_key_is_p17() {
    let mut h = upsert_good();
    h.final_output = vec![vec![row(0, 3, 4), row(7, 1, 9)]];
    assert_eq!(table_checks(&h), ["P12", "P17"]);
    assert_mentions(&table_msgs(&h, "P17"), &["1 of 2 keys missing", "key 1"]);
    assert_mentions(&table_msgs(&h, "P17"), &["keys in the table the input never had", "key 7"]);
}

#[test]
fn a_reader_seeing_a_version_go_back_is_p18_even_when_the_end_is_right() {
    let mut h = upsert_good();
    // A replay of record 3 overwrote version 3 for a moment.
    h.observations.insert(2, Observation { t_us: 45, partition: 0, new_records: vec![row(0, 2, 3)], open_txns: 0 });
    h.observations.insert(3, Observation { t_us: 55, partition: 0, new_records: vec![row(0, 3, 4)], open_txns: 0 });
    assert_eq!(table_checks(&h), ["P18"]);
    assert_mentions(&table_msgs(&h, "P18"), &["key 0 went back from version 3", "to version 2 (value 2) at a read at"]);
}

#[test]
fn the_latest_completed_checkpoint_is_the_highest_completed_by_then() {
    // Completions out of id order (a recovered coordinator announces an
    // older one late), two at one time, and none before the first: the
    // binary search answers as a scan of every completion does.
    let mut h = good();
    push(&mut h, complete(45, 4, 4, false));
    push(&mut h, complete(55, 3, 4, false));
    push(&mut h, complete(55, 5, 4, false));
    let ctx = Ctx::new(&h, &Echo);
    for t in 0..80 {
        let scan = ctx.completed.iter().filter(|c| c.0 <= t).map(|c| c.1).max().unwrap_or(0);
        assert_eq!(ctx.latest_completed(t), scan, "at {t}");
    }
    assert_eq!(ctx.latest_completed(19), 0);
    assert_eq!(ctx.latest_completed(20), 1);
    assert_eq!(ctx.latest_completed(50), 4);
    assert_eq!(ctx.latest_completed(55), 5);
}
