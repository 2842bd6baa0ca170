//! Delivery modes: the checkers hold each mode to exactly its promise, and
//! the faults bite: at-least-once under crashes produces duplicates that the
//! output accounting counts, with no loss.

use crate::common::*;
use exactsim_engine::observe::FaultPoint;
use exactsim_engine::types::DeliveryMode;
use exactsim_model::faults;
use exactsim_model::schedule::FaultEvent;
use exactsim_sim::disk::CrashMode;

/// Crash a worker between pre-commit and notify, later the broker.
fn crashes() -> Vec<FaultEvent> {
    vec![
        FaultEvent::CrashAtPoint(faults::CrashAtPoint {
            point: FaultPoint::AfterPrecommitBeforeAck,
            node: Some("worker-1".into()),
            nth: 2,
            down_ms: 100,
            disk: CrashMode::LoseUnsynced,
        }),
        FaultEvent::Crash(faults::Crash {
            at_ms: 450,
            node: "broker".into(),
            down_ms: 80,
            disk: CrashMode::LoseUnsynced,
        }),
    ]
}

#[test]
fn exactly_once_survives_crash_between_precommit_and_notify_and_broker_crash() {
    let out = go(fixed("word_count", 11, DeliveryMode::ExactlyOnce, crashes()), "none");
    assert_pass(&out);
    assert_eq!(out.report.faults.get("crash_at_point"), Some(&1), "{:?}", out.report.faults);
    assert_eq!(out.report.faults.get("crash"), Some(&1), "{:?}", out.report.faults);
    assert!(out.report.recoveries >= 1);
    let o = &out.report.output;
    assert_eq!((o.committed, o.duplicates, o.lost), (o.expected, 0, 0));
}

#[test]
fn at_least_once_shows_duplicates_but_no_loss() {
    // No pre-commit in this mode: crash right after a snapshot instead, and
    // a worker in the middle of the run.
    let events = vec![
        FaultEvent::CrashAtPoint(faults::CrashAtPoint {
            point: FaultPoint::AfterSnapshotBeforeAck,
            node: Some("worker-1".into()),
            nth: 3,
            down_ms: 100,
            disk: CrashMode::LoseUnsynced,
        }),
        FaultEvent::Crash(faults::Crash {
            at_ms: 450,
            node: "worker-2".into(),
            down_ms: 80,
            disk: CrashMode::LoseUnsynced,
        }),
        FaultEvent::Crash(faults::Crash {
            at_ms: 700,
            node: "broker".into(),
            down_ms: 80,
            disk: CrashMode::LoseUnsynced,
        }),
    ];
    let out = go(fixed("word_count", 11, DeliveryMode::AtLeastOnce, events), "none");
    assert_pass(&out);
    let o = &out.report.output;
    assert!(o.duplicates > 0, "crashes in at-least-once mode must replay output: {o:?}");
    assert_eq!(o.lost, 0);
}

#[test]
fn at_least_once_crash_profile_counts_duplicates() {
    let mut dups = 0;
    for seed in seed_range() {
        for sc in exactsim_scenarios::all() {
            let out = go(make(sc.name(), seed, "crash", DeliveryMode::AtLeastOnce, None), "crash");
            assert_pass(&out);
            assert_eq!(out.report.output.lost, 0);
            dups += out.report.output.duplicates;
        }
    }
    assert!(dups > 0, "no duplicates at all under crashes in at-least-once mode");
}
