//! The broker as a plain state machine: requests planned, durable steps
//! applied, no runtime.
use super::*;
use crate::codec;

fn rec(id: u64) -> OutRecord {
    OutRecord::new(id, id, 1, id)
}

fn broker() -> BrokerState {
    BrokerState::new(vec![vec![]], 2, 1_000)
}

/// Plan and, for a durable step, apply; returns the reply.
fn ask(b: &mut BrokerState, req: Request, now_ms: u64) -> Response {
    match b.plan(&req, now_ms) {
        Plan::Reply(r) => r,
        Plan::Log(e, r) => {
            b.apply(&e);
            r
        }
    }
}

fn init(b: &mut BrokerState, txn: &str, nonce: u64) -> u64 {
    init_in(b, txn, nonce, 1)
}

fn init_in(b: &mut BrokerState, txn: &str, nonce: u64, attempt: u64) -> u64 {
    match ask(b, Request::InitProducer { txn: txn.into(), nonce, run: 0, attempt, session: (0, 0) }, 0) {
        Response::Epoch { epoch } => epoch,
        other => panic!("init: {other:?}"),
    }
}

fn append(b: &mut BrokerState, txn: &str, epoch: u64, seq: u64, ids: &[u64]) -> Response {
    let records = ids.iter().map(|i| rec(*i)).collect();
    ask(b, Request::Append { txn: txn.into(), epoch, partition: 0, seq, records }, 0)
}

fn end(b: &mut BrokerState, txn: &str, epoch: u64, commit: bool) -> Response {
    ask(b, Request::EndTxn { txn: txn.into(), epoch, commit }, 0)
}

fn visible(b: &BrokerState) -> Vec<u64> {
    b.committed_output()[0].iter().map(|o| o.out_id).collect()
}

#[test]
fn group_commit_writes_what_was_staged_during_an_fsync_with_one_fsync_and_holds_outputs_until_durable() {
    let mut gc: GroupCommit<&str> = GroupCommit::default();
    assert_eq!(gc.output(gc.applied(), "read before anything"), Some("read before anything"));
    let a = gc.log(b"A");
    assert_eq!(gc.output(a, "reply A"), None, "not durable yet");
    assert_eq!(gc.start_flush(), Some(b"A".to_vec()));
    assert_eq!(gc.start_flush(), None, "one flush at a time");
    // While A's fsync is in flight: B and C arrive, and a read planned
    // on the state B changed.
    let b = gc.log(b"B");
    assert_eq!(gc.output(b, "reply B"), None);
    let c = gc.log(b"C");
    assert_eq!(gc.output(c, "reply C"), None);
    assert_eq!(gc.output(gc.applied(), "read after C"), None, "it may tell of C");
    assert_eq!(gc.flushed(), vec!["reply A"]);
    assert!(!gc.flushing());
    assert_eq!(gc.start_flush(), Some(b"BC".to_vec()), "B and C: one write, one fsync");
    assert_eq!(gc.output(a, "late reply on A"), None, "outputs leave in order");
    assert_eq!(gc.flushed(), vec!["reply B", "reply C", "read after C", "late reply on A"]);
    assert_eq!(gc.start_flush(), None, "nothing staged");
    assert_eq!(gc.output(gc.applied(), "read"), Some("read"));
}

#[test]
fn a_pooled_id_reused_since_still_recommits_its_committed_instance() {
    for by_instance in [false, true] {
        let mut b = broker();
        b.recommit_by_instance = by_instance;
        let e = init(&mut b, "p0", 1);
        assert_eq!(append(&mut b, "p0", e, 0, &[1]), Response::Ok);
        assert_eq!(end(&mut b, "p0", e, true), Response::Ok);
        // The id is reused for a newer transaction, left open.
        let e2 = init(&mut b, "p0", 2);
        assert_eq!(append(&mut b, "p0", e2, 0, &[2]), Response::Ok);
        let recommit = end(&mut b, "p0", e, true);
        if by_instance {
            assert_eq!(recommit, Response::Ok, "the restored instance committed");
        } else {
            assert_eq!(recommit, Response::Fenced { current: e2 });
        }
        assert_eq!(visible(&b), vec![1], "the newer transaction stays undecided");
        // An instance that never committed is still fenced.
        let e3 = init(&mut b, "p0", 3);
        assert_eq!(end(&mut b, "p0", e2, true), Response::Fenced { current: e3 });
    }
}

#[test]
fn a_new_run_of_the_job_takes_over_its_ids_and_the_old_run_is_fenced() {
    let run_init = |b: &mut BrokerState, nonce, run, attempt| {
        ask(b, Request::InitProducer { txn: "t".into(), nonce, run, attempt, session: (0, 0) }, 0)
    };
    let mut b = broker();
    // Run 1 got to attempt 5 and left a transaction open.
    assert_eq!(run_init(&mut b, 1, 1, 5), Response::Epoch { epoch: 0 });
    assert_eq!(append(&mut b, "t", 0, 0, &[1]), Response::Ok);
    // Run 2 starts from attempt 1 and takes the id over, aborting it.
    assert_eq!(run_init(&mut b, 2, 2, 1), Response::Epoch { epoch: 1 });
    assert_eq!(b.open_count(), 0);
    // A zombie of run 1, however high its attempt, is refused.
    assert_eq!(run_init(&mut b, 3, 1, 9), Response::Fenced { current: 1 });
    // Within run 2, attempts order as before.
    assert_eq!(run_init(&mut b, 4, 2, 2), Response::Epoch { epoch: 2 });
    assert_eq!(run_init(&mut b, 5, 2, 1), Response::Fenced { current: 2 });
}

#[test]
fn init_bumps_the_epoch_and_aborts_the_open_transaction() {
    let mut b = broker();
    assert_eq!(init(&mut b, "t", 1), 0);
    assert_eq!(append(&mut b, "t", 0, 0, &[1, 2]), Response::Ok);
    assert_eq!(b.open_count(), 1);
    assert_eq!(init_in(&mut b, "t", 2, 2), 1, "a newer attempt fences");
    assert_eq!(b.open_count(), 0, "the older epoch's transaction is aborted");
    assert_eq!(append(&mut b, "t", 0, 1, &[3]), Response::Fenced { current: 1 });
    assert_eq!(end(&mut b, "t", 0, true), Response::Fenced { current: 1 });
    assert!(visible(&b).is_empty(), "nothing of the fenced epoch is visible");
}

#[test]
fn a_retried_init_gets_its_answer_again_however_late() {
    let mut b = broker();
    assert_eq!(init(&mut b, "t", 7), 0);
    assert_eq!(init(&mut b, "t", 7), 0, "an immediate retry");
    assert_eq!(init(&mut b, "t", 8), 1);
    assert_eq!(append(&mut b, "t", 1, 0, &[1]), Response::Ok);
    // A retry of the first request, delivered after the second one: it
    // must not bump the epoch and fence the live transaction.
    assert_eq!(init(&mut b, "t", 7), 0);
    assert_eq!(b.open_count(), 1);
    assert_eq!(end(&mut b, "t", 1, true), Response::Ok);
    assert_eq!(visible(&b), vec![1]);
}

#[test]
fn late_fencing_never_aborts_the_transaction_begun_after_it() {
    let mut b = broker();
    // Attempt 1 writes; attempt 2 recovers: fences the id (request 2),
    // then begins its own transaction under it (request 3).
    let e1 = init_in(&mut b, "t", 1, 1);
    append(&mut b, "t", e1, 0, &[1]);
    assert_eq!(init_in(&mut b, "t", 2, 2), e1 + 1);
    assert_eq!(b.open_count(), 0, "attempt 1's transaction is aborted");
    let e2 = init_in(&mut b, "t", 3, 2);
    assert_eq!(append(&mut b, "t", e2, 0, &[2]), Response::Ok);
    // Late: the fencing request again (a recovery try that timed out
    // sends the same request id), and an init of attempt 1 (a zombie).
    assert_eq!(init_in(&mut b, "t", 2, 2), e1 + 1, "the fence was applied once");
    let zombie =
        ask(&mut b, Request::InitProducer { txn: "t".into(), nonce: 5, run: 0, attempt: 1, session: (0, 0) }, 0);
    assert_eq!(zombie, Response::Fenced { current: e2 });
    assert_eq!(b.open_count(), 1, "the live transaction survives both");
    assert_eq!(end(&mut b, "t", e2, true), Response::Ok);
    assert_eq!(visible(&b), vec![2]);
}

#[test]
fn a_late_init_of_an_older_session_of_the_same_attempt_is_refused() {
    let session_init = |b: &mut BrokerState, nonce, session| {
        ask(b, Request::InitProducer { txn: "t".into(), nonce, run: 0, attempt: 2, session }, 0)
    };
    let mut b = broker();
    // Attempt 1 pre-commits a transaction.
    let e0 = init_in(&mut b, "t", 1, 1);
    assert_eq!(append(&mut b, "t", e0, 0, &[1]), Response::Ok);
    // Attempt 2's first process (deploy 3) sends a fencing init that is
    // held (the broker is paused), then dies. Its restarted successor
    // (deploy 7) fences the id and begins its transaction under it.
    let held = Request::InitProducer { txn: "t".into(), nonce: 10, run: 0, attempt: 2, session: (3, 0) };
    assert_eq!(session_init(&mut b, 20, (7, 0)), Response::Epoch { epoch: e0 + 1 });
    let live = e0 + 2;
    assert_eq!(session_init(&mut b, 21, (7, 0)), Response::Epoch { epoch: live });
    assert_eq!(append(&mut b, "t", live, 0, &[2]), Response::Ok);
    // The dead process's init arrives late: a new request id, the same
    // attempt, an older session. It must not abort the live transaction.
    assert_eq!(ask(&mut b, held, 0), Response::Fenced { current: live });
    // Nor may a late begin of an earlier recovery try of the successor.
    assert_eq!(session_init(&mut b, 23, (7, 0)), Response::Epoch { epoch: live + 1 }, "same session: a new begin");
    assert_eq!(session_init(&mut b, 24, (7, 1)), Response::Epoch { epoch: live + 2 });
    assert_eq!(session_init(&mut b, 25, (7, 0)), Response::Fenced { current: live + 2 }, "older try");
    // A newer session (a later deploy of the attempt, lower try) wins.
    assert_eq!(session_init(&mut b, 26, (8, 0)), Response::Epoch { epoch: live + 3 });
    // A newer attempt takes over whatever its session.
    assert_eq!(
        ask(&mut b, Request::InitProducer { txn: "t".into(), nonce: 27, run: 0, attempt: 3, session: (1, 0) }, 0),
        Response::Epoch { epoch: live + 4 }
    );
}

#[test]
fn a_late_init_of_an_older_session_cannot_abort_what_a_newer_one_committed_for() {
    let mut b = broker();
    let init2 = |b: &mut BrokerState, nonce, session| match ask(
        b,
        Request::InitProducer { txn: "t".into(), nonce, run: 0, attempt: 2, session },
        0,
    ) {
        Response::Epoch { epoch } => Ok(epoch),
        other => Err(other),
    };
    let e = init2(&mut b, 2, (5, 0)).unwrap();
    assert_eq!(append(&mut b, "t", e, 0, &[7]), Response::Ok);
    // Pre-committed for a checkpoint that completes; the late init of the
    // older session lands between the pre-commit and the commit.
    assert!(init2(&mut b, 1, (2, 0)).is_err());
    assert_eq!(end(&mut b, "t", e, true), Response::Ok, "the commit is not lost");
    assert_eq!(visible(&b), vec![7]);
}

#[test]
fn a_restarted_process_of_the_same_attempt_fences_its_predecessor() {
    let mut b = broker();
    let e1 = init_in(&mut b, "t", 1, 2);
    append(&mut b, "t", e1, 0, &[1]);
    // The worker restarted while still in attempt 2: its begin is a new
    // producer session and aborts what the dead process left open.
    let e2 = init_in(&mut b, "t", 9, 2);
    assert_eq!(e2, e1 + 1);
    assert_eq!(b.open_count(), 0);
    assert_eq!(append(&mut b, "t", e2, 0, &[2]), Response::Ok);
    assert_eq!(end(&mut b, "t", e2, true), Response::Ok);
    assert_eq!(visible(&b), vec![2], "nothing of the dead process is visible");
}

#[test]
fn read_committed_stops_at_the_last_stable_offset() {
    let mut b = broker();
    let (e1, e2) = (init(&mut b, "a", 1), init(&mut b, "b", 2));
    append(&mut b, "a", e1, 0, &[1]);
    append(&mut b, "b", e2, 0, &[2]);
    assert_eq!(end(&mut b, "b", e2, true), Response::Ok);
    assert!(visible(&b).is_empty(), "b's record sits behind a's open transaction");
    assert_eq!(b.last_stable_offset(0), 0);
    assert_eq!(end(&mut b, "a", e1, true), Response::Ok);
    assert_eq!(visible(&b), vec![1, 2]);
}

#[test]
fn commits_are_idempotent_and_duplicate_appends_are_dropped() {
    let mut b = broker();
    let e = init(&mut b, "t", 1);
    assert_eq!(append(&mut b, "t", e, 0, &[1]), Response::Ok);
    assert_eq!(append(&mut b, "t", e, 0, &[1]), Response::Ok, "a retried append");
    assert_eq!(end(&mut b, "t", e, true), Response::Ok);
    assert_eq!(end(&mut b, "t", e, true), Response::Ok, "a re-commit after recovery");
    assert_eq!(visible(&b), vec![1], "applied once");
    assert!(matches!(end(&mut b, "t", e, false), Response::TxnNotOpen { .. }), "no abort after commit");
    assert!(matches!(append(&mut b, "t", e, 1, &[2]), Response::TxnNotOpen { .. }));
}

#[test]
fn aborted_records_never_become_visible() {
    let mut b = broker();
    let e = init(&mut b, "t", 1);
    append(&mut b, "t", e, 0, &[1]);
    assert_eq!(end(&mut b, "t", e, false), Response::Ok);
    assert!(matches!(end(&mut b, "t", e, true), Response::TxnNotOpen { .. }), "no commit after abort");
    assert!(visible(&b).is_empty());
    assert_eq!(b.last_stable_offset(0), 2, "data and marker are decided");
}

#[test]
fn a_transaction_past_its_timeout_is_expired_and_its_producer_fenced() {
    let mut b = broker();
    let e = init(&mut b, "t", 1);
    match b.plan(&Request::Append { txn: "t".into(), epoch: e, partition: 0, seq: 0, records: vec![rec(1)] }, 100) {
        Plan::Log(entry, _) => {
            b.apply(&entry);
        }
        Plan::Reply(r) => panic!("append: {r:?}"),
    }
    assert!(b.expired(1_099).is_empty());
    let due = b.expired(1_100);
    assert_eq!(due.len(), 1);
    b.apply(&due[0]);
    assert_eq!(b.open_count(), 0);
    assert_eq!(end(&mut b, "t", e, true), Response::Fenced { current: e + 1 });
    assert!(visible(&b).is_empty());
}

#[test]
fn an_expired_producer_learns_it_on_its_next_request_and_is_fenced() {
    let mut b = broker();
    let e = init(&mut b, "t", 1);
    assert_eq!(append(&mut b, "t", e, 0, &[1]), Response::Ok);
    for entry in b.expired(1_000) {
        assert_eq!(entry, WalEntry::Expire { txn: "t".into(), epoch: e });
        let events = b.apply(&entry);
        assert!(matches!(&events[..], [Event::TxnAborted { reason, .. }] if reason == EXPIRED_REASON));
    }
    assert_eq!(b.open_count(), 0, "expired");
    assert!(b.open_txns().is_empty(), "recovery's listing does not show it");
    // Its next append (Kafka's produce) and its commit: fenced.
    assert_eq!(append(&mut b, "t", e, 1, &[2]), Response::Fenced { current: e + 1 });
    assert_eq!(end(&mut b, "t", e, true), Response::Fenced { current: e + 1 });
    assert_eq!(end(&mut b, "t", e, false), Response::Fenced { current: e + 1 });
    assert!(visible(&b).is_empty());
    assert_eq!(b.last_stable_offset(0), 2, "the abort marker decides the record");
    // The expiry took an epoch: the next init gets the one after it.
    assert_eq!(init(&mut b, "t", 2), e + 2);
}

#[test]
fn epochs_are_bounded_and_an_exhausted_id_is_refused() {
    let mut b = broker();
    b.max_epoch = 2;
    assert_eq!((init(&mut b, "t", 1), init(&mut b, "t", 2), init(&mut b, "t", 3)), (0, 1, 2));
    assert_eq!(append(&mut b, "t", 2, 0, &[1]), Response::Ok);
    let fourth = Request::InitProducer { txn: "t".into(), nonce: 4, run: 0, attempt: 1, session: (0, 0) };
    assert_eq!(ask(&mut b, fourth, 0), Response::EpochExhausted { max: 2 });
    assert_eq!(b.open_count(), 1, "a refused init fences nothing");
    assert_eq!(init(&mut b, "t", 3), 2, "a retry of an applied init still gets its answer");
    // A timeout abort at the bound cannot bump: the transaction stays
    // ended, and its producer is refused all the same.
    for entry in b.expired(10_000) {
        b.apply(&entry);
    }
    assert_eq!(b.open_count(), 0);
    assert!(matches!(append(&mut b, "t", 2, 1, &[2]), Response::TxnNotOpen { .. }));
    assert!(matches!(end(&mut b, "t", 2, true), Response::TxnNotOpen { .. }));
    assert!(visible(&b).is_empty());
    // Other ids are not affected.
    assert_eq!(init(&mut b, "u", 5), 0);
}

/// Plan a request, apply it as the node loop does (before it is
/// durable) and stage it; `durable` is the log's durable prefix, which a
/// flush extends.
fn staged(b: &mut BrokerState, req: Request, staged: &mut Vec<WalEntry>) -> Option<Response> {
    match b.plan(&req, 0) {
        Plan::Reply(r) => Some(r),
        Plan::Log(e, r) => {
            b.apply(&e);
            staged.push(e);
            // The reply waits for the flush.
            let _ = r;
            None
        }
    }
}

fn init_req(nonce: u64) -> Request {
    Request::InitProducer { txn: "t".into(), nonce, run: 0, attempt: 2, session: (0, 0) }
}

#[test]
fn an_init_whose_log_write_fails_leaves_the_epoch_unchanged() {
    let mut b = broker();
    b.max_epoch = 4;
    let mut durable = Vec::new();
    // Epoch 0 is durable, with an open transaction under it.
    assert_eq!(staged(&mut b, init_req(1), &mut durable), None);
    assert_eq!(
        staged(
            &mut b,
            Request::Append { txn: "t".into(), epoch: 0, partition: 0, seq: 0, records: vec![rec(1)] },
            &mut durable
        ),
        None
    );
    // A fencing init, retried (same request id) against a log that
    // cannot be written, far more often than the bound allows.
    for _ in 0..100 {
        let mut lost = Vec::new();
        assert_eq!(staged(&mut b, init_req(7), &mut lost), None, "planned for epoch 1, not yet durable");
        assert_eq!(b.open_count(), 0, "applied: the open transaction is fenced in memory");
        b = b.rolled_back(&durable); // the write failed
        assert_eq!(b.open_txns(), vec![("t".to_string(), 0)], "the epoch and the open transaction are back");
    }
    // The log heals: the retry is applied once, with the next epoch.
    let mut flushed = Vec::new();
    assert_eq!(staged(&mut b, init_req(7), &mut flushed), None);
    durable.extend(flushed);
    assert_eq!(ask(&mut b, init_req(7), 0), Response::Epoch { epoch: 1 }, "a retry of the durable init");
    assert_eq!(append(&mut b, "t", 0, 1, &[2]), Response::Fenced { current: 1 });
    // Replaying the durable log gives the same epoch.
    let mut replayed = broker();
    for e in &durable {
        replayed.apply(e);
    }
    assert_eq!(replayed.plan(&init_req(7), 0).reply(), Some(Response::Epoch { epoch: 1 }));
}

#[test]
fn planted_kafka_9666_keeps_the_epochs_of_failed_writes_until_they_run_out() {
    let mut b = broker();
    b.max_epoch = 4;
    b.mutant = Some(Mutant::Kafka9666EpochBumpOnFailedWrite);
    let mut durable = Vec::new();
    assert_eq!(staged(&mut b, init_req(1), &mut durable), None);
    let mut refused = None;
    for _ in 0..10 {
        let mut lost = Vec::new();
        if let Some(r) = staged(&mut b, init_req(7), &mut lost) {
            refused = Some(r);
            break;
        }
        b = b.rolled_back(&durable);
    }
    assert_eq!(refused, Some(Response::EpochExhausted { max: 4 }), "four failed fences exhaust the id");
}

#[test]
fn an_append_after_its_transaction_ended_is_refused_and_planted_kafka_12671_hangs_the_partition() {
    for planted in [false, true] {
        let mut b = broker();
        b.mutant = planted.then_some(Mutant::Kafka12671HangingTxn);
        let (e, u) = (init(&mut b, "t", 1), init(&mut b, "u", 2));
        assert_eq!(append(&mut b, "t", e, 0, &[1]), Response::Ok);
        assert_eq!(end(&mut b, "t", e, true), Response::Ok);
        // The append again, delivered late (a retry of seq 0).
        let late = append(&mut b, "t", e, 0, &[1]);
        // Another producer commits behind it.
        assert_eq!(append(&mut b, "u", u, 0, &[2]), Response::Ok);
        assert_eq!(end(&mut b, "u", u, true), Response::Ok);
        if planted {
            assert_eq!(late, Response::Ok);
            assert_eq!(b.open_txns(), vec![("t".to_string(), e)], "a transaction no one will end");
            assert_eq!(visible(&b), vec![1], "the last stable offset hangs behind it: 2 never shows");
        } else {
            assert!(matches!(late, Response::TxnNotOpen { .. }), "{late:?}");
            assert_eq!(b.open_count(), 0);
            assert_eq!(visible(&b), vec![1, 2]);
        }
    }
}

#[test]
fn the_wal_replays_to_the_same_state_and_a_torn_tail_is_cut() {
    let mut b = broker();
    let mut wal = Vec::new();
    let reqs = vec![
        Request::InitProducer { txn: "t".into(), nonce: 1, run: 0, attempt: 1, session: (0, 0) },
        Request::Append { txn: "t".into(), epoch: 0, partition: 1, seq: 0, records: vec![rec(5)] },
        Request::EndTxn { txn: "t".into(), epoch: 0, commit: true },
    ];
    for r in reqs {
        if let Plan::Log(e, _) = b.plan(&r, 0) {
            wal.extend(codec::encode_framed(&e));
            b.apply(&e);
        }
    }
    let full = wal.len();
    wal.extend_from_slice(&codec::encode_framed(&WalEntry::Plain { partition: 0, records: vec![rec(9)] })[..5]);
    let (entries, intact, corrupt) = parse_wal(&wal);
    assert_eq!((entries.len(), intact, corrupt), (3, full, false));
    let mut replayed = broker();
    for e in &entries {
        replayed.apply(e);
    }
    assert_eq!(replayed.committed_output(), b.committed_output());
    assert_eq!(replayed.committed_output()[1], vec![rec(5)]);
}
