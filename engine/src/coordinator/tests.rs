use super::*;

fn cfg() -> Arc<JobConfig> {
    Arc::new(JobConfig { parallelism: 2, ..JobConfig::default() })
}

fn sends(actions: &[Action]) -> Vec<(u32, Msg)> {
    actions.iter().filter_map(|a| if let Action::Send(w, m) = a { Some((*w, m.clone())) } else { None }).collect()
}

fn running() -> Coordinator {
    let (mut c, a) = Coordinator::recover(cfg(), None, 0);
    assert_eq!(sends(&a).len(), 2, "deploy to both workers");
    for w in 0..2 {
        c.on_msg(Msg::DeployAck { worker: w, attempt: 1, incarnation: 7 }, 1);
    }
    assert_eq!(c.phase, Phase::Running);
    c
}

fn ack_all(c: &mut Coordinator, ckpt: u64, now: u64) -> Vec<Action> {
    let mut out = Vec::new();
    for t in Coordinator::all_tasks(2, 2) {
        let offset = matches!(t, TaskId::Source(_)).then_some(10);
        out.extend(c.on_msg(
            Msg::Ack {
                attempt: 1,
                ckpt,
                task: t,
                blob: format!("b{ckpt}{t}"),
                offset,
                finished: false,
                shared: vec![],
            },
            now,
        ));
    }
    out
}

#[test]
fn a_checkpoint_waits_for_every_source_when_inputs_outnumber_workers() {
    let cfg = Arc::new(JobConfig { parallelism: 2, input_partitions: 3, ..JobConfig::default() });
    assert_eq!(cfg.sources_of(0), vec![0, 2]);
    let (mut c, _) = Coordinator::recover(cfg, None, 0);
    for w in 0..2 {
        c.on_msg(Msg::DeployAck { worker: w, attempt: 1, incarnation: 7 }, 1);
    }
    c.on_tick(200);
    let tasks = Coordinator::all_tasks(3, 2);
    assert_eq!(tasks.len(), 5);
    let mut done = Vec::new();
    for t in tasks {
        let offset = matches!(t, TaskId::Source(_)).then_some(10);
        let a = c.on_msg(
            Msg::Ack { attempt: 1, ckpt: 1, task: t, blob: format!("b{t}"), offset, finished: false, shared: vec![] },
            210,
        );
        done.extend(a.into_iter().filter_map(|x| match x {
            Action::Emit(Event::CheckpointCompleted { offsets, .. }) => Some(offsets),
            _ => None,
        }));
    }
    assert_eq!(done, vec![vec![10, 10, 10]], "completed once, with the last ack, one offset per source");
}

/// The adaptive interval: each completion chooses the time to the next
/// trigger (`IntervalChosen`, with the bounds), and the coordinator
/// waits that long; the planted bug measures the checkpoint as free.
#[test]
fn an_adaptive_interval_is_chosen_at_each_completion_and_obeyed() {
    let bounds = crate::interval::AdaptiveInterval { min_ms: 50, max_ms: 2_000, replay_records: 1_000 };
    for (mutant, want) in [(None, 600), (Some(Mutant::IntervalCostFromLastAck), 100)] {
        let cfg =
            Arc::new(JobConfig { parallelism: 2, adaptive_interval: Some(bounds), mutant, ..JobConfig::default() });
        let (mut c, _) = Coordinator::recover(cfg, None, 0);
        for w in 0..2 {
            c.on_msg(Msg::DeployAck { worker: w, attempt: 1, incarnation: 7 }, 1);
        }
        assert!(c.on_tick(200).iter().any(|a| matches!(a, Action::Emit(Event::CheckpointTriggered { ckpt: 1, .. }))));
        // Triggered at 200, completed at 260: 60 ms, so at least 600 ms
        // (one completion: no input rate yet, the interval was 100).
        let chosen: Vec<u64> = ack_all(&mut c, 1, 260)
            .into_iter()
            .filter_map(|a| match a {
                Action::Emit(Event::IntervalChosen { interval_ms, min_ms: 50, max_ms: 2_000 }) => Some(interval_ms),
                _ => None,
            })
            .collect();
        assert_eq!(chosen, vec![want], "{mutant:?}");
        let triggers = |c: &mut Coordinator, now| {
            c.on_tick(now).iter().any(|a| matches!(a, Action::Emit(Event::CheckpointTriggered { .. })))
        };
        for w in 0..2 {
            c.on_msg(Msg::Heartbeat { worker: w, attempt: 1, incarnation: 7 }, 200 + want - 1);
        }
        assert!(!triggers(&mut c, 200 + want - 1), "{mutant:?}: not before the chosen interval");
        assert!(triggers(&mut c, 200 + want), "{mutant:?}: at the chosen interval");
    }
    // A clock that went back between the trigger and the completion
    // (the simulator's heal sets a fast clock back to true time): the
    // checkpoint cost nothing, nothing overflows.
    let cfg = Arc::new(JobConfig { parallelism: 2, adaptive_interval: Some(bounds), ..JobConfig::default() });
    let (mut c, _) = Coordinator::recover(cfg, None, 0);
    for w in 0..2 {
        c.on_msg(Msg::DeployAck { worker: w, attempt: 1, incarnation: 7 }, 1);
    }
    c.on_tick(200);
    let a = ack_all(&mut c, 1, 150);
    assert!(a.iter().any(|x| matches!(x, Action::Emit(Event::IntervalChosen { interval_ms: 100, .. }))), "{a:?}");
}

#[test]
fn trigger_persists_id_before_sending() {
    let mut c = running();
    let a = c.on_tick(200);
    let persist = a.iter().position(|x| matches!(x, Action::Persist(m) if m.next_ckpt == 2)).expect("persist");
    let first_send =
        a.iter().position(|x| matches!(x, Action::Send(_, Msg::Trigger { ckpt: 1, .. }))).expect("trigger");
    assert!(persist < first_send);
}

#[test]
fn completion_record_before_notify_and_ids_survive_restart() {
    let mut c = running();
    c.on_tick(200);
    let a = ack_all(&mut c, 1, 210);
    let persist = a.iter().position(|x| matches!(x, Action::Persist(m) if m.completed.len() == 1)).expect("record");
    let notify = a.iter().position(|x| matches!(x, Action::Send(_, Msg::Notify { ckpt: 1, .. }))).expect("notify");
    assert!(persist < notify);
    // restart from the durable record: ids continue, restore from 1
    let (c2, a2) = Coordinator::recover(cfg(), Some(c.meta().clone()), 0);
    assert_eq!(c2.meta().next_ckpt, 2);
    assert_eq!(c2.attempt(), 2);
    assert!(sends(&a2).iter().all(|(_, m)| matches!(m, Msg::Deploy { restore: Some(p), .. } if p.ckpt == 1)));
}

#[test]
fn a_rescaled_start_deploys_its_subtasks_and_tells_the_other_workers_to_run_nothing() {
    let mut c = running();
    c.on_tick(200);
    ack_all(&mut c, 1, 210);
    // Restarted with one subtask: the checkpoint (two chains) is
    // rescaled, both workers are told, only worker 0 is awaited.
    let (mut c2, a2) = Coordinator::recover_run(cfg(), Some(c.meta().clone()), 0, false, 1, 300);
    assert!(a2.contains(&Action::Emit(Event::Rescaled { attempt: 2, from: 2, to: 1, ckpt: Some(1) })), "{a2:?}");
    assert!(a2.contains(&Action::Reach(Reach::RestoredRescaled)));
    let deploys = sends(&a2);
    assert_eq!(deploys.iter().map(|(w, _)| *w).collect::<Vec<_>>(), vec![0, 1]);
    assert!(deploys
        .iter()
        .all(|(_, m)| matches!(m, Msg::Deploy { parallelism: 1, restore: Some(p), .. } if p.ckpt == 1)));
    // Worker 1's acknowledgement is no part of the deployment (and
    // cannot break it); worker 0's completes it.
    assert!(c2.on_msg(Msg::DeployAck { worker: 1, attempt: 2, incarnation: 7 }, 301).is_empty());
    let a = c2.on_msg(Msg::DeployAck { worker: 0, attempt: 2, incarnation: 7 }, 302);
    assert!(a.contains(&Action::Emit(Event::JobRunning { attempt: 2 })));
    // Worker 1 still on the old attempt is told again; on the new one,
    // it is left alone, and never counted as lost.
    let retire = c2.on_msg(Msg::Heartbeat { worker: 1, attempt: 1, incarnation: 7 }, 303);
    assert!(matches!(&sends(&retire)[..], [(1, Msg::Deploy { attempt: 2, parallelism: 1, .. })]));
    assert!(c2.on_msg(Msg::Heartbeat { worker: 1, attempt: 2, incarnation: 7 }, 304).is_empty());
    // Checkpoints involve the one chain and both sources (input
    // partitions stay the submission's), all read by worker 0.
    let a = c2.on_tick(310);
    c2.on_msg(Msg::Heartbeat { worker: 0, attempt: 2, incarnation: 7 }, 310);
    let a = [a, c2.on_tick(500)].concat();
    let triggers = sends(&a);
    assert!(!triggers.is_empty() && triggers.iter().all(|(w, m)| *w == 0 && matches!(m, Msg::Trigger { .. })));
    let ckpt = c2.meta().next_ckpt - 1;
    let mut done = Vec::new();
    for t in Coordinator::all_tasks(2, 1) {
        let offset = matches!(t, TaskId::Source(_)).then_some(20);
        let (blob, shared) = (format!("b{ckpt}{t}"), vec![]);
        let ack = Msg::Ack { attempt: 2, ckpt, task: t, blob, offset, finished: false, shared };
        done.extend(c2.on_msg(ack, 510));
    }
    assert!(done.iter().any(|x| matches!(x, Action::Emit(Event::CheckpointCompleted { .. }))), "{done:?}");
    // Restored with the same parallelism again: nothing moves.
    let (_, a3) = Coordinator::recover_run(cfg(), Some(c2.meta().clone()), 0, false, 1, 600);
    assert!(!a3.iter().any(|x| matches!(x, Action::Emit(Event::Rescaled { .. }))), "{a3:?}");
    // Back to two: the one-chain checkpoint is rescaled up.
    let (_, a4) = Coordinator::recover_run(cfg(), Some(c2.meta().clone()), 0, false, 2, 600);
    assert!(a4.iter().any(|x| matches!(x, Action::Emit(Event::Rescaled { from: 1, to: 2, .. }))));
    // A fresh start at another parallelism than the submission's says so.
    let (_, a5) = Coordinator::recover_run(cfg(), None, 0, false, 1, 0);
    assert!(a5.contains(&Action::Emit(Event::Rescaled { attempt: 1, from: 2, to: 1, ckpt: None })));
    assert!(!a5.contains(&Action::Reach(Reach::RestoredRescaled)));
}

#[test]
fn a_redeploy_restores_the_retained_checkpoint_under_the_new_run() {
    let mut c = running();
    c.on_tick(200);
    ack_all(&mut c, 1, 210);
    assert!(sends(&ack_all(&mut c, 1, 211)).is_empty(), "a duplicate ack changes nothing");
    // The job submitted again as run 1: the record's checkpoint is
    // restored, ids continue, every deployment carries the new run,
    // and the run is in the first record persisted.
    let (run, redeployed) = run_identity(Some(c.meta().run), 0, 1);
    assert_eq!((run, redeployed), (1, true));
    let (c2, a2) = Coordinator::recover_run(cfg(), Some(c.meta().clone()), run, redeployed, 2, 0);
    assert_eq!(c2.meta().next_ckpt, 2);
    assert_eq!(c2.meta().run, 1);
    let ev = a2.iter().position(|x| matches!(x, Action::Emit(Event::Redeployed { run: 1, from: Some(1) })));
    let persist = a2.iter().position(|x| matches!(x, Action::Persist(m) if m.run == 1)).expect("persist");
    let deploy = a2.iter().position(|x| matches!(x, Action::Send(_, Msg::Deploy { .. }))).expect("deploy");
    assert!(ev.is_some_and(|e| e < deploy) && persist < deploy, "{a2:?}");
    assert!(a2.contains(&Action::Reach(Reach::RestoredUnderNewRun)));
    let deploys = sends(&a2);
    assert_eq!(deploys.len(), 2);
    assert!(deploys.iter().all(|(_, m)| matches!(m, Msg::Deploy { run: 1, restore: Some(p), .. } if p.ckpt == 1)));
    // A later restart of the same run (or a process started from the
    // old submission) serves the durable run: no second redeploy.
    assert_eq!(run_identity(Some(1), 0, 1), (1, false));
    assert_eq!(run_identity(Some(1), 0, 0), (1, false));
    let (_, a3) = Coordinator::recover_run(cfg(), Some(c2.meta().clone()), 1, false, 2, 0);
    assert!(!a3.iter().any(|x| matches!(x, Action::Emit(Event::Redeployed { .. }))));
    assert!(sends(&a3).iter().all(|(_, m)| matches!(m, Msg::Deploy { run: 1, .. })));
    // Without a record, a redeploy starts the new run from the input's
    // start.
    let (_, a4) = Coordinator::recover_run(cfg(), None, 2, true, 2, 0);
    assert!(a4.contains(&Action::Emit(Event::Redeployed { run: 2, from: None })));
    assert!(!a4.contains(&Action::Reach(Reach::RestoredUnderNewRun)));
}

#[test]
fn the_record_carries_its_run_only_once_redeployed() {
    for incremental in [false, true] {
        let cfg = JobConfig { incremental_checkpoints: incremental, ..JobConfig::default() };
        let mut meta = CoordMeta {
            next_ckpt: 7,
            attempt: 3,
            completed: vec![CompletedCkpt { id: 6, blobs: BTreeMap::new(), offsets: vec![4], finished: false }],
            shared: BTreeMap::new(),
            run: cfg.run,
        };
        if incremental {
            meta.shared.insert(6, vec!["shared-x".into()]);
        }
        // Never redeployed: byte for byte the record it always was.
        let plain =
            if incremental { codec::encode_framed(&(&meta, &meta.shared)) } else { codec::encode_framed(&meta) };
        assert_eq!(encode_meta(&cfg, &meta), plain);
        assert_eq!(decode_meta(&cfg, &plain).unwrap(), meta);
        // Redeployed: the run goes with it and comes back.
        meta.run = 5;
        let with_run = encode_meta(&cfg, &meta);
        assert_ne!(with_run, plain);
        let back = decode_meta(&cfg, &with_run).unwrap();
        assert_eq!((back.run, &back.shared), (5, &meta.shared));
        assert_eq!(back, meta);
    }
}

#[test]
fn timeout_and_tolerable_failures_lead_to_failover() {
    let mut c = running();
    let mut now = 200;
    let mut recovered = false;
    for _ in 0..10 {
        // keep workers alive
        for w in 0..2 {
            c.on_msg(Msg::Heartbeat { worker: w, attempt: 1, incarnation: 7 }, now);
        }
        let a = c.on_tick(now);
        if a.iter().any(|x| matches!(x, Action::Emit(Event::RecoveryStarted { .. }))) {
            recovered = true;
            break;
        }
        now += 1_100;
    }
    assert!(recovered, "three timeouts in a row must restart the job");
    assert_eq!(c.attempt(), 2);
}

#[test]
fn restarted_worker_triggers_failover_but_reordered_heartbeat_does_not() {
    let mut c = running();
    assert!(c.on_msg(Msg::Heartbeat { worker: 0, attempt: 0, incarnation: 7 }, 5).is_empty());
    let a = c.on_msg(Msg::Heartbeat { worker: 0, attempt: 0, incarnation: 8 }, 6);
    assert!(a.iter().any(|x| matches!(x, Action::Emit(Event::RecoveryStarted { .. }))));
}

#[test]
fn a_finished_job_cancels_its_attempt_on_a_worker_process_that_restarted() {
    let mut c = running();
    c.phase = Phase::Finished;
    // The process it finished with, and a restarted one still idle.
    assert!(c.on_msg(Msg::Heartbeat { worker: 0, attempt: 1, incarnation: 7 }, 500).is_empty());
    assert!(c.on_msg(Msg::Heartbeat { worker: 0, attempt: 0, incarnation: 8 }, 510).is_empty());
    // The restarted process deployed the finished attempt from a late
    // `Deploy`: it is told to end it, and no recovery starts.
    let a = c.on_msg(Msg::Heartbeat { worker: 0, attempt: 1, incarnation: 8 }, 520);
    assert!(matches!(&sends(&a)[..], [(0, Msg::Cancel { attempt: 1 })]), "{a:?}");
    assert!(!a.iter().any(|x| matches!(x, Action::Emit(_))), "{a:?}");
    assert_eq!(c.attempt(), 1);
    assert_eq!(c.phase, Phase::Finished);
    // An older attempt's late `Deploy` is ended the same way.
    c.meta.attempt = 2;
    c.incarnation[1] = Some(9);
    let a = c.on_msg(Msg::Heartbeat { worker: 1, attempt: 1, incarnation: 10 }, 530);
    assert!(matches!(&sends(&a)[..], [(1, Msg::Cancel { attempt: 1 })]), "{a:?}");
    assert!(c.on_msg(Msg::Heartbeat { worker: 1, attempt: 2, incarnation: 9 }, 540).is_empty());
}

#[test]
fn stale_attempt_messages_are_ignored() {
    let mut c = running();
    c.on_tick(200);
    let a = c.on_msg(Msg::TaskFailed { attempt: 0, task: TaskId::Source(0), reason: "x".into() }, 201);
    assert!(a.is_empty());
    assert_eq!(c.attempt(), 1);
}

#[test]
fn blob_names_parse() {
    let n = blob_name(12, 3, TaskId::Chain(1));
    assert_eq!(parse_blob_name(&n), Some((12, TaskId::Chain(1))));
    assert_eq!(parse_blob_name(&blob_name(1, 1, TaskId::Source(0))), Some((1, TaskId::Source(0))));
}
