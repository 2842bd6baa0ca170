use super::*;

fn cfg() -> JobConfig {
    JobConfig::default()
}

fn h(n: &str, records: u64) -> TxnHandle {
    TxnHandle { name: n.into(), epoch: 0, records, seq: 0 }
}

/// Run the task to idle, answering every call with `answer`; return
/// the steps taken (calls and events).
fn run(t: &mut SinkTask, mut answer: impl FnMut(&SinkCall) -> CallResult) -> Vec<Step> {
    let mut steps = Vec::new();
    loop {
        let s = t.next_step();
        match &s {
            Step::Idle => return steps,
            Step::Call(c) => {
                let r = answer(c);
                steps.push(s.clone());
                t.done(r);
            }
            _ => steps.push(s),
        }
    }
}

/// A well-behaved sink: begin hands out `t{hint}`, writes count records.
fn ok(c: &SinkCall) -> CallResult {
    match c {
        SinkCall::Begin { hint } => CallResult::Txn(h(&format!("t{hint}"), 0)),
        SinkCall::Write { txn, records } => {
            CallResult::Txn(TxnHandle { records: txn.records + records.len() as u64, ..txn.clone() })
        }
        SinkCall::PreCommit { txn } => CallResult::Txn(txn.clone()),
        _ => CallResult::Ok,
    }
}

fn calls(steps: &[Step]) -> Vec<String> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Call(SinkCall::Begin { hint }) => Some(format!("begin {hint}")),
            Step::Call(SinkCall::Write { txn, records }) => Some(format!("write {} {}", txn.name, records.len())),
            Step::Call(SinkCall::PreCommit { txn }) => Some(format!("pre-commit {}", txn.name)),
            Step::Call(SinkCall::Commit { txn }) => Some(format!("commit {}", txn.name)),
            Step::Call(SinkCall::Abort { txn }) => Some(format!("abort {}", txn.name)),
            Step::Call(SinkCall::RecoverAndCommit { txn }) => Some(format!("recommit {}", txn.name)),
            Step::Call(SinkCall::RecoverAndAbort { txn }) => Some(format!("abort-restored {}", txn.name)),
            Step::Call(SinkCall::AbortLingering { after, upto }) => Some(format!("lingering {after:?}..={upto}")),
            Step::Call(SinkCall::Append { records }) => Some(format!("append {}", records.len())),
            Step::Fail(r) => Some(format!("fail {r}")),
            _ => None,
        })
        .collect()
}

fn rec(id: u64) -> OutRecord {
    OutRecord::new(id, id, 1, id)
}

fn fresh() -> SinkTask {
    let mut t = SinkTask::new(0, 1, &cfg());
    t.restore(None, None, false, 0);
    assert_eq!(calls(&run(&mut t, ok)), vec!["lingering None..=0", "begin 1"]);
    t
}

#[test]
fn barrier_pre_commits_and_begins_the_next_then_notify_commits_in_order() {
    let mut t = fresh();
    t.records(vec![rec(1), rec(2)]);
    t.barrier(1);
    t.records(vec![rec(3)]);
    t.barrier(2);
    let steps = run(&mut t, ok);
    assert_eq!(calls(&steps), vec!["write t1 2", "pre-commit t1", "begin 2", "write t2 1", "pre-commit t2", "begin 3"]);
    assert!(steps.contains(&Step::Point(FaultPoint::AfterPrecommitBeforeAck)));
    assert_eq!(t.snapshot().pending.iter().map(|(c, _)| *c).collect::<Vec<_>>(), vec![1, 2]);
    t.notify(2);
    let steps = run(&mut t, ok);
    assert_eq!(calls(&steps), vec!["commit t1", "commit t2"]);
    assert!(steps.contains(&Step::Point(FaultPoint::BetweenCommits)));
    assert_eq!(t.pending_count(), 0);
    t.notify(1); // late: nothing
    assert_eq!(calls(&run(&mut t, ok)), Vec::<String>::new());
}

fn dones(steps: &[Step]) -> Vec<Done> {
    steps.iter().filter_map(|s| if let Step::Done(d) = s { Some(*d) } else { None }).collect()
}

#[test]
fn records_given_while_the_pre_commit_is_in_flight_go_into_the_next_transaction() {
    let mut t = fresh();
    t.records(vec![rec(1)]);
    t.barrier(1);
    assert_eq!(t.backlog(), 1);
    let Step::Call(c) = t.next_step() else { panic!("a write") };
    assert_eq!(t.backlog(), 0, "the write is handed to the sink");
    t.done(ok(&c));
    let Step::Call(c @ SinkCall::PreCommit { .. }) = t.next_step() else { panic!("the pre-commit") };
    // The chain keeps processing while the pre-commit is in flight.
    t.records(vec![rec(2), rec(3)]);
    assert_eq!(t.backlog(), 2);
    t.done(ok(&c));
    let mut steps = Vec::new();
    let snap = loop {
        let s = t.next_step();
        match &s {
            Step::Done(Done::Barrier(1)) => break t.snapshot(),
            Step::Call(c) => {
                let r = ok(c);
                steps.push(s.clone());
                t.done(r);
            }
            Step::Idle => panic!("the barrier is done before the task is idle"),
            _ => steps.push(s),
        }
    };
    assert_eq!(calls(&steps), vec!["begin 2"], "nothing of the next transaction is written before the ack");
    assert!(steps.contains(&Step::Point(FaultPoint::AfterPrecommitBeforeAck)));
    assert_eq!(
        snap.pending.iter().map(|(c, t)| (*c, t.name.as_str(), t.records)).collect::<Vec<_>>(),
        vec![(1, "t1", 1)]
    );
    assert_eq!(snap.open.as_ref().map(|t| t.name.as_str()), Some("t2"));
    assert_eq!(calls(&run(&mut t, ok)), vec!["write t2 2"]);
}

#[test]
fn the_end_of_input_given_behind_a_barrier_does_not_skip_that_barrier_s_begin() {
    let mut t = fresh();
    t.records(vec![rec(1)]);
    t.barrier(1);
    t.records(vec![rec(2)]);
    t.end_of_input();
    t.barrier(2);
    let steps = run(&mut t, ok);
    assert_eq!(calls(&steps), vec!["write t1 1", "pre-commit t1", "begin 2", "write t2 1", "pre-commit t2"]);
    assert_eq!(dones(&steps), vec![Done::Barrier(1), Done::Barrier(2)]);
    assert!(t.open().is_none() && t.ended());
}

#[test]
fn notifications_queued_together_commit_each_transaction_once() {
    let mut t = fresh();
    t.records(vec![rec(1)]);
    t.barrier(1);
    t.records(vec![rec(2)]);
    t.barrier(2);
    run(&mut t, ok);
    // Both arrive while the chain is busy; the second is planned after
    // the first one's commits settled.
    t.notify(1);
    t.notify(2);
    t.notify(2);
    let steps = run(&mut t, ok);
    assert_eq!(calls(&steps), vec!["commit t1", "commit t2"]);
    assert_eq!(dones(&steps), vec![Done::Notify(1), Done::Notify(2), Done::Notify(2)]);
    assert_eq!(t.pending_count(), 0);
}

#[test]
fn at_least_once_barriers_and_notifications_are_done_too() {
    let mut t = SinkTask::new(0, 1, &JobConfig { mode: DeliveryMode::AtLeastOnce, ..cfg() });
    t.restore(None, None, false, 0);
    t.records(vec![rec(1)]);
    t.barrier(1);
    t.notify(1);
    let steps = run(&mut t, ok);
    assert_eq!(calls(&steps), vec!["append 1"]);
    assert_eq!(dones(&steps), vec![Done::Barrier(1), Done::Notify(1)]);
    assert_eq!(t.backlog(), 0);
}

#[test]
fn no_transaction_after_the_final_checkpoint() {
    let mut t = fresh();
    t.records(vec![rec(1)]);
    t.end_of_input();
    t.barrier(1);
    assert_eq!(calls(&run(&mut t, ok)), vec!["write t1 1", "pre-commit t1"]);
    assert!(t.open().is_none());
    t.barrier(2); // a later checkpoint carries the pending one only
    assert_eq!(calls(&run(&mut t, ok)), Vec::<String>::new());
    t.notify(2);
    assert_eq!(calls(&run(&mut t, ok)), vec!["commit t1"]);
    assert!(t.snapshot() == SinkSnapshot::default());
}

#[test]
fn restoring_a_finished_state_begins_nothing() {
    let snap = SinkSnapshot { pending: vec![(4, h("t4", 2))], open: None, began_ms: vec![] };
    let mut t = SinkTask::new(0, 2, &cfg());
    t.restore(Some(&snap), Some(4), true, 6);
    assert_eq!(calls(&run(&mut t, ok)), vec!["recommit t4", "lingering Some(4)..=6"]);
    assert!(t.open().is_none());
}

#[test]
fn restore_recommits_aborts_the_open_one_fences_and_begins() {
    let snap =
        SinkSnapshot { pending: vec![(3, h("t3", 1)), (4, h("t4", 2))], open: Some(h("t5", 1)), began_ms: vec![] };
    let mut t = SinkTask::new(0, 2, &cfg());
    t.restore(Some(&snap), Some(4), false, 7);
    let steps = run(&mut t, ok);
    assert_eq!(
        calls(&steps),
        vec!["recommit t3", "recommit t4", "abort-restored t5", "lingering Some(4)..=7", "begin 5"]
    );
    assert!(steps.iter().any(|s| matches!(s, Step::Emit(Event::SinkAborted { .. }))));
    assert_eq!(t.pending_count(), 0);
}

#[test]
fn an_adopted_subtask_is_recovered_without_a_new_transaction() {
    let snap =
        SinkSnapshot { pending: vec![(3, h("t3", 1)), (4, h("t4", 2))], open: Some(h("t5", 1)), began_ms: vec![] };
    let mut t = SinkTask::new(2, 2, &cfg());
    t.adopt(Some(&snap), Some(4), 7);
    let steps = run(&mut t, ok);
    assert_eq!(calls(&steps), vec!["recommit t3", "recommit t4", "abort-restored t5", "lingering Some(4)..=7"]);
    assert!(t.open().is_none() && t.pending_count() == 0);
    // A removed subtask without state in the checkpoint: its ids are
    // still fenced.
    let mut t = SinkTask::new(2, 2, &cfg());
    t.adopt(None, Some(4), 7);
    assert_eq!(calls(&run(&mut t, ok)), vec!["lingering Some(4)..=7"]);
    // The planted bug keeps only the re-commits.
    let mut t = SinkTask::new(2, 2, &JobConfig { mutant: Some(Mutant::Flink23854DownscaleOrphans), ..cfg() });
    t.adopt(Some(&snap), Some(4), 7);
    assert_eq!(calls(&run(&mut t, ok)), vec!["recommit t3", "recommit t4"]);
}

/// Flink's `ignoreFailuresAfterTransactionTimeout`: a lost commit fails
/// the task, unless opted in and the transaction's timeout has passed
/// since it began (as the task's clock reads it).
#[test]
fn a_lost_commit_is_forgiven_only_with_the_opt_in_after_the_timeout() {
    let timeout = JobConfig::default().txn_timeout_ms;
    for (ignore, age, forgiven) in [(false, timeout + 1, false), (true, timeout - 1, false), (true, timeout, true)] {
        let mut t = SinkTask::new(0, 1, &JobConfig { ignore_lost_commits: ignore, ..cfg() });
        t.tick(1_000);
        t.restore(None, None, false, 0);
        run(&mut t, ok);
        t.records(vec![rec(1)]);
        t.barrier(1);
        run(&mut t, ok);
        t.notify(1);
        t.tick(1_000 + age);
        let steps = run(&mut t, |c| match c {
            SinkCall::Commit { .. } => CallResult::Err(SinkError::TxnLost("timed out".into())),
            c => ok(c),
        });
        assert!(steps.iter().any(|s| matches!(s, Step::Emit(Event::CommitFailed { .. }))));
        let failed: Vec<&String> =
            steps.iter().filter_map(|s| if let Step::Fail(r) = s { Some(r) } else { None }).collect();
        assert_eq!(failed.is_empty(), forgiven, "ignore_lost_commits={ignore}, age {age}: {failed:?}");
        if ignore && !forgiven {
            assert!(failed[0].contains("before its transaction timeout"), "{}", failed[0]);
        }
        assert_eq!(t.lost_commits, 1);
    }
}

/// A restored transaction's start comes from the checkpoint (written by
/// the process that began it), so its age counts across the restart.
#[test]
fn a_restored_transactions_start_survives_the_restart() {
    let timeout = JobConfig::default().txn_timeout_ms;
    let c = JobConfig { ignore_lost_commits: true, ..cfg() };
    let mut first = SinkTask::new(0, 1, &c);
    first.tick(5_000);
    first.restore(None, None, false, 0);
    run(&mut first, ok);
    first.records(vec![rec(1)]);
    first.barrier(1);
    run(&mut first, ok);
    let Mode::TwoPc(book) = &first.mode else { panic!("exactly-once") };
    let snap = book.snapshot();
    assert_eq!(snap.pending.len(), 1);
    assert_eq!(snap.began_ms.iter().map(|(_, b)| *b).collect::<Vec<_>>(), vec![5_000, 5_000], "pending and open");
    for (now, forgiven) in [(5_000 + timeout / 2, false), (5_000 + timeout, true)] {
        let mut t = SinkTask::new(0, 2, &c);
        t.tick(now);
        t.restore(Some(&snap), Some(1), false, 1);
        let steps = run(&mut t, |c| match c {
            SinkCall::RecoverAndCommit { .. } => CallResult::Err(SinkError::TxnLost("expired".into())),
            c => ok(c),
        });
        let failed = steps.iter().any(|s| matches!(s, Step::Fail(_)));
        assert_eq!(failed, !forgiven, "restored at {now}");
    }
}

#[test]
fn a_transient_error_fails_the_task_and_stops_it() {
    let mut t = fresh();
    t.records(vec![rec(1)]);
    t.barrier(1);
    t.records(vec![rec(2)]);
    let steps = run(&mut t, |c| match c {
        SinkCall::PreCommit { .. } => CallResult::Err(SinkError::Transient("timeout".into())),
        c => ok(c),
    });
    assert_eq!(calls(&steps), vec!["write t1 1", "pre-commit t1", "fail pre-commit: transient: timeout"]);
    t.records(vec![rec(3)]);
    assert_eq!(t.next_step(), Step::Idle, "a failed task does nothing more");
}

#[test]
fn at_least_once_appends_at_barriers_and_when_full() {
    let mut t = SinkTask::new(0, 1, &JobConfig { mode: DeliveryMode::AtLeastOnce, ..cfg() });
    t.restore(None, None, false, 0);
    assert_eq!(calls(&run(&mut t, ok)), Vec::<String>::new());
    t.records((0..FLUSH_RECORDS as u64).map(rec).collect());
    t.records(vec![rec(100)]);
    t.barrier(1);
    assert_eq!(calls(&run(&mut t, ok)), vec![format!("append {FLUSH_RECORDS}"), "append 1".into()]);
}

#[test]
fn close_drops_queued_work_and_aborts_only_the_open_transaction() {
    let mut t = fresh();
    t.records(vec![rec(1)]);
    t.barrier(1);
    t.records(vec![rec(2)]);
    run(&mut t, ok);
    assert_eq!(t.pending_count(), 1);
    t.records(vec![rec(3)]);
    t.notify(1);
    t.close();
    let steps = run(&mut t, ok);
    assert_eq!(calls(&steps), vec!["abort t2"], "queued writes and the notification are dropped: {steps:?}");
    assert!(steps.contains(&Step::Reach(Reach::SinkClosedWithOpenTxn)));
    let aborted = |steps: &[Step]| steps.iter().any(|s| matches!(s, Step::Emit(Event::SinkAborted { .. })));
    assert!(aborted(&steps), "a close that aborted its open transaction records it: {steps:?}");
    let failing = |_: &SinkCall| CallResult::Err(SinkError::Transient("down".into()));
    let mut t = fresh();
    t.records(vec![rec(1)]);
    run(&mut t, ok);
    t.close();
    let steps = run(&mut t, failing);
    assert!(!steps.iter().any(|s| matches!(s, Step::Fail(_))), "a close error is not a task failure: {steps:?}");
    assert!(!aborted(&steps), "an abort that failed is not recorded as one: {steps:?}");
}

#[test]
fn the_planted_flush_on_close_commits_the_open_transaction() {
    let cfg = JobConfig { mutant: Some(Mutant::StarRocks105FlushOnClose), ..cfg() };
    let mut t = SinkTask::new(0, 1, &cfg);
    t.restore(None, None, false, 0);
    t.records(vec![rec(1)]);
    run(&mut t, ok);
    t.close();
    assert_eq!(calls(&run(&mut t, ok)), vec!["pre-commit t1", "commit t1"]);
}

#[test]
fn planted_bugs_change_the_steps() {
    let c = JobConfig { mutant: Some(Mutant::Flink23473TxnAfterFinish), ..cfg() };
    let mut t = SinkTask::new(0, 1, &c);
    t.restore(None, None, false, 0);
    run(&mut t, ok);
    t.end_of_input();
    t.barrier(1);
    assert_eq!(calls(&run(&mut t, ok)), vec!["pre-commit t1", "begin 2"], "left open after the final checkpoint");
    let c = JobConfig { mutant: Some(Mutant::CommitOnPrecommit), ..cfg() };
    let mut t = SinkTask::new(0, 1, &c);
    t.restore(None, None, false, 0);
    run(&mut t, ok);
    t.barrier(1);
    assert_eq!(calls(&run(&mut t, ok)), vec!["pre-commit t1", "commit t1", "begin 2"]);
}
