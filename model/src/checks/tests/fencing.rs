//! P9 and P14: fencing, and a fenced writer stays invisible.

use super::*;

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
