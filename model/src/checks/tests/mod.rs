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

mod commits;
mod composition;
mod fencing;
mod ids;
mod interval;
mod output;
mod readers;
mod restore;
mod retention;
mod upsert;
