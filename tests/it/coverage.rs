//! Faults that never bite prove nothing: across a handful of seeds every
//! fault kind must actually land, counted in the reports' `faults` map, and
//! the fault points of the protocol must be reached.

use crate::common::*;
use exactsim_engine::types::DeliveryMode;
use std::collections::BTreeMap;

#[test]
fn every_fault_kind_lands() {
    let mut total: BTreeMap<String, u64> = BTreeMap::new();
    let mut points: BTreeMap<String, u64> = BTreeMap::new();
    for (profile, seeds) in [
        ("disk", 0..16u64),
        ("partition", 0..4),
        ("slow-disk", 0..3),
        ("crash", 0..12),
        ("chaos", 0..6),
        ("ci/gate.toml", 0..4),
    ] {
        for seed in seeds {
            let out = go(make("word_count", seed, profile, DeliveryMode::ExactlyOnce, None), profile);
            assert_pass(&out);
            for (k, v) in &out.report.faults {
                *total.entry(k.clone()).or_insert(0) += v;
            }
            for (k, v) in &out.report.fault_points {
                *points.entry(k.split(':').next().unwrap().to_string()).or_insert(0) += v;
            }
        }
    }
    for kind in [
        "crash",
        "crash_at_point",
        "partition",
        "isolate",
        "packet_loss",
        "latency",
        "slow_disk",
        "disk_errors",
        "corrupt_reads",
        "io_error",
        "corrupt_read",
        "lost_unsynced",
        "torn_write",
        "pause",
        "late_delivery",
        "skew",
        "stop",
        "on_event",
    ] {
        assert!(total.get(kind).copied().unwrap_or(0) > 0, "fault kind {kind} never landed: {total:?}");
    }
    for p in exactsim_engine::observe::FaultPoint::ALL {
        assert!(points.get(p.name()).copied().unwrap_or(0) > 0, "fault point {} never reached: {points:?}", p.name());
    }
}

/// A corrupted read of a checkpoint blob is caught by its checksum and read
/// again; the job never restores from corrupt bytes.
#[test]
fn corrupted_reads_are_detected_not_restored_from() {
    use exactsim_engine::observe::Event;
    use exactsim_sim::disk::CrashMode;
    use exactsim_sim::history::Ev;
    use exactsim_sim::schedule::FaultEvent;
    let events = vec![
        FaultEvent::CorruptReads { at_ms: 0, dur_ms: 1_500, node: "store".into(), permille: 700 },
        FaultEvent::Crash { at_ms: 400, node: "worker-1".into(), down_ms: 60, disk: CrashMode::LoseUnsynced },
    ];
    let out = go(fixed("inventory", 5, DeliveryMode::ExactlyOnce, events), "none");
    assert_pass(&out);
    let corrupt =
        out.result.history.events.iter().filter(|s| matches!(s.ev, Ev::Engine(Event::BlobCorrupt { .. }))).count();
    assert!(corrupt > 0, "no corrupted blob was read: {:?}", out.report.faults);
    assert!(out.report.recoveries >= 1);
}
