//! Each checker flags a bad history and passes a good one.

use super::*;
use crate::history::{Ev, History, Stamped};
use crate::rng::SimRng;
use exactsim_engine::pipeline::Pipeline;
use exactsim_engine::types::{Record, TaskId};
use std::sync::Arc;

/// One output per input record, out_id = record id, value = 1.
struct Echo;
impl Scenario for Echo {
    fn name(&self) -> &'static str {
        "echo"
    }
    fn description(&self) -> &'static str {
        "test"
    }
    fn generate(&self, _rng: &mut SimRng, _p: u32) -> Vec<Vec<Record>> {
        unimplemented!()
    }
    fn pipeline(&self) -> Arc<dyn Pipeline> {
        unimplemented!()
    }
    fn reference(&self, input: &[Vec<Record>], offsets: &[u64]) -> Vec<OutRecord> {
        input
            .iter()
            .zip(offsets)
            .flat_map(|(p, o)| {
                p[..*o as usize].iter().map(|r| OutRecord { out_id: r.id, key: r.key, value: 1, src: r.id })
            })
            .collect()
    }
}

fn rec(id: u64) -> Record {
    Record { id, key: 0, ts_ms: id, value: 1 }
}
fn out(id: u64) -> OutRecord {
    OutRecord { out_id: id, key: 0, value: 1, src: id }
}
fn at(t_us: u64, node: &str, e: Event) -> Stamped {
    Stamped { t_us, node: node.into(), ev: Ev::Engine(e) }
}

/// A good single-partition run: checkpoint 1 covers records 1-2, checkpoint
/// 2 covers 3-4; each committed after completion.
fn good() -> History {
    let t = |n: &str, k: u64| format!("job-sink-0-{n}{k}");
    History {
        scenario: "echo".into(),
        seed: 1,
        mode: DeliveryMode::ExactlyOnce,
        parallelism: 1,
        input: vec![vec![rec(1), rec(2), rec(3), rec(4)]],
        events: vec![
            at(5, "coordinator", Event::RecoveryStarted { attempt: 1, from: None, reason: "start".into() }),
            at(10, "coordinator", Event::CheckpointTriggered { attempt: 1, ckpt: 1 }),
            at(11, "broker", Event::ProducerInit { txn: t("", 1), epoch: 0, aborted_open: false }),
            at(
                12,
                "worker-0",
                Event::PreCommitted { task: TaskId::Chain(0), ckpt: 1, txn: t("", 1), epoch: 0, records: 2 },
            ),
            at(
                20,
                "coordinator",
                Event::CheckpointCompleted { attempt: 1, ckpt: 1, offsets: vec![2], finished: false },
            ),
            at(30, "broker", Event::TxnCommitted { txn: t("", 1), epoch: 0, out: vec![out(1), out(2)] }),
            at(40, "coordinator", Event::CheckpointTriggered { attempt: 1, ckpt: 2 }),
            at(
                42,
                "worker-0",
                Event::PreCommitted { task: TaskId::Chain(0), ckpt: 2, txn: t("", 2), epoch: 0, records: 2 },
            ),
            at(50, "coordinator", Event::CheckpointCompleted { attempt: 1, ckpt: 2, offsets: vec![4], finished: true }),
            at(60, "broker", Event::TxnCommitted { txn: t("", 2), epoch: 0, out: vec![out(3), out(4)] }),
            at(70, "coordinator", Event::JobFinished { attempt: 1, ckpt: 2 }),
        ],
        observations: vec![
            crate::history::Observation { t_us: 35, partition: 0, new_records: vec![out(1), out(2)], open_txns: 0 },
            crate::history::Observation { t_us: 65, partition: 0, new_records: vec![out(3), out(4)], open_txns: 0 },
        ],
        final_output: vec![vec![out(1), out(2), out(3), out(4)]],
        final_read_ok: true,
        final_open_txns: vec![],
        healed_at_us: 0,
        deadline_us: 1_000_000,
        finished_at_us: Some(70),
    }
}

fn checks(h: &History) -> Vec<&'static str> {
    let (v, _) = check_all(&CheckInput { history: h, scenario: &Echo });
    let mut ids: Vec<&'static str> = v.iter().map(|v| v.check).collect();
    ids.dedup();
    ids
}

#[test]
fn good_history_passes() {
    assert_eq!(checks(&good()), Vec::<&str>::new());
    let (_, c) = check_all(&CheckInput { history: &good(), scenario: &Echo });
    assert_eq!(c, OutputCounts { expected: 4, committed: 4, ..Default::default() });
}

#[test]
fn duplicate_is_p1_and_p6() {
    let mut h = good();
    h.final_output[0].push(out(2));
    h.events.push(at(80, "broker", Event::TxnCommitted { txn: "job-sink-0-9".into(), epoch: 0, out: vec![out(2)] }));
    let ids = checks(&h);
    assert!(ids.contains(&"P1") && ids.contains(&"P6"), "{ids:?}");
    let (_, c) = check_all(&CheckInput { history: &h, scenario: &Echo });
    assert_eq!(c.duplicates, 1);
}

#[test]
fn loss_is_p1_and_p12() {
    let mut h = good();
    h.final_output[0].pop();
    assert_eq!(checks(&h), vec!["P1"]);
    h.mode = DeliveryMode::AtLeastOnce;
    assert_eq!(checks(&h), vec!["P12"]);
}

#[test]
fn visible_before_completion_is_p3() {
    let mut h = good();
    // commit of checkpoint 2's transaction before checkpoint 2 completed
    h.events[9].t_us = 45;
    h.events.sort_by_key(|s| s.t_us);
    let ids = checks(&h);
    assert!(ids.contains(&"P3"), "{ids:?}");
}

#[test]
fn reader_seeing_no_checkpoint_prefix_is_p2() {
    let mut h = good();
    h.observations[0].new_records = vec![out(2)];
    h.observations[1].new_records = vec![out(1), out(3), out(4)];
    assert!(checks(&h).contains(&"P2"));
}

#[test]
fn ids_and_epochs_going_back_are_p4() {
    let mut h = good();
    h.events.push(at(75, "coordinator", Event::CheckpointTriggered { attempt: 2, ckpt: 1 }));
    h.events.push(at(76, "broker", Event::ProducerInit { txn: "job-sink-0-1".into(), epoch: 0, aborted_open: false }));
    assert_eq!(checks(&h), vec!["P4"]);
}

#[test]
fn commit_order_inversion_is_p5() {
    let mut h = good();
    // swap the two commits' times: checkpoint 2's transaction first
    h.events[5].t_us = 61;
    h.events.sort_by_key(|s| s.t_us);
    assert!(checks(&h).contains(&"P5"));
}

#[test]
fn silent_uncommitted_precommit_is_p7_and_loud_is_not() {
    let mut h = good();
    h.events.retain(|s| !matches!(&s.ev, Ev::Engine(Event::TxnCommitted { txn, .. }) if txn.ends_with("-2")));
    h.final_output[0].truncate(2);
    let ids = checks(&h);
    assert!(ids.contains(&"P7") && ids.contains(&"P1"), "{ids:?}");
    h.events.push(at(
        66,
        "worker-0",
        Event::CommitFailed { task: TaskId::Chain(0), ckpt: 2, txn: "job-sink-0-2".into(), reason: "expired".into() },
    ));
    let ids = checks(&h);
    assert!(!ids.contains(&"P7") && ids.contains(&"P1"), "{ids:?}");
}

#[test]
fn open_txn_at_end_is_p8() {
    let mut h = good();
    h.final_open_txns = vec![("job-sink-0-3".into(), 1)];
    assert_eq!(checks(&h), vec!["P8"]);
}

#[test]
fn zombie_epoch_accepted_is_p9() {
    let mut h = good();
    h.events.push(at(71, "broker", Event::ProducerInit { txn: "job-sink-0-3".into(), epoch: 2, aborted_open: false }));
    h.events.push(at(
        72,
        "broker",
        Event::AppendAccepted { txn: "job-sink-0-3".into(), epoch: 1, partition: 0, records: 1 },
    ));
    assert_eq!(checks(&h), vec!["P9"]);
}

#[test]
fn mixed_restore_is_p10() {
    let mut h = good();
    h.events.push(at(80, "coordinator", Event::RecoveryStarted { attempt: 2, from: Some(2), reason: "x".into() }));
    h.events.push(at(
        81,
        "worker-0",
        Event::TaskRestored {
            attempt: 2,
            task: TaskId::Source(0),
            state_ckpt: Some(1),
            offsets_ckpt: Some(1),
            offset: Some(2),
            pending_txns: vec![],
        },
    ));
    h.events.push(at(
        82,
        "worker-0",
        Event::TaskRestored {
            attempt: 2,
            task: TaskId::Chain(0),
            state_ckpt: Some(2),
            offsets_ckpt: None,
            offset: None,
            pending_txns: vec![],
        },
    ));
    assert_eq!(checks(&h), vec!["P10"]);
}

#[test]
fn unfinished_job_is_p11() {
    let mut h = good();
    h.finished_at_us = None;
    assert_eq!(checks(&h), vec!["P11"]);
}
