//! P16 and P21: retained checkpoints are restorable, no retry storm.

use super::interval::coordinator_only;
use super::*;

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
