//! Faults that never bite prove nothing: across a handful of seeds every
//! fault kind must actually land, counted in the reports' `faults` map, and
//! the fault points of the protocol must be reached.

use crate::common::*;
use exactsim_engine::types::DeliveryMode;
use exactsim_model::faults;
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
    use exactsim_model::history::Ev;
    use exactsim_model::schedule::FaultEvent;
    use exactsim_sim::disk::CrashMode;
    let events = vec![
        FaultEvent::CorruptReads(faults::CorruptReads { at_ms: 0, dur_ms: 1_500, node: "store".into(), permille: 700 }),
        FaultEvent::Crash(faults::Crash {
            at_ms: 400,
            node: "worker-1".into(),
            down_ms: 60,
            disk: CrashMode::LoseUnsynced,
        }),
    ];
    let out = go(fixed("inventory", 5, DeliveryMode::ExactlyOnce, events), "none");
    assert_pass(&out);
    let corrupt =
        out.result.history.events.iter().filter(|s| matches!(s.ev, Ev::Engine(Event::BlobCorrupt { .. }))).count();
    assert!(corrupt > 0, "no corrupted blob was read: {:?}", out.report.faults);
    assert!(out.report.recoveries >= 1);
}

/// Reachability points are recorded beside the history, the same ones at
/// the same times on every execution of a seed (so a replay keeps them),
/// and reaching them changes nothing in the run: an explicit schedule
/// replays to the same trace and the same points.
#[test]
fn reachability_points_are_recorded_deterministically() {
    let mut reached: BTreeMap<String, u64> = BTreeMap::new();
    for seed in 0..6u64 {
        let a = go(make("word_count", seed, "chaos", DeliveryMode::ExactlyOnce, None), "chaos");
        let b = go(make("word_count", seed, "chaos", DeliveryMode::ExactlyOnce, None), "chaos");
        assert_eq!(a.result.history.reached, b.result.history.reached, "seed {seed}");
        assert_eq!(a.report.trace_hash, b.report.trace_hash);
        let mut replay = make("word_count", seed, "chaos", DeliveryMode::ExactlyOnce, None);
        replay.schedule = Some(a.result.schedule.clone());
        let c = go(replay, "chaos");
        assert_eq!(
            (&c.result.history.reached, &c.report.trace_hash),
            (&a.result.history.reached, &a.report.trace_hash)
        );
        for (k, v) in &a.report.reached {
            *reached.entry(k.clone()).or_insert(0) += v;
        }
        let times: Vec<u64> = a.result.history.reached.iter().map(|r| r.t_us).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order");
    }
    // Chaos reaches the common ones within a few seeds.
    for p in ["init_fenced_open_txn", "recovery_recommits", "notify_finds_nothing", "aligned_with_blocked_input"] {
        assert!(reached.get(p).copied().unwrap_or(0) > 0, "{p} never reached: {reached:?}");
    }
}

/// A campaign names the points none of its runs reached, on its summary
/// and as skipped JUnit cases.
#[test]
fn a_campaign_names_the_points_it_never_reached() {
    let dir = std::env::temp_dir().join(format!("exactsim-reach-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_exactsim"))
        .args(["campaign", "--scenario", "word_count", "--seeds", "3", "--profile", "none", "--report"])
        .arg(dir.join("r"))
        .arg("--junit")
        .arg(dir.join("j.xml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    // Without faults nothing is fenced, retried or expired.
    let line = stdout.lines().find(|l| l.starts_with("reachability points reached: ")).expect("a reach line");
    assert!(
        line.contains("warning: never reached (untested states): ") && line.contains("init_fenced_open_txn"),
        "{line}"
    );
    let rep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r/campaign.json")).unwrap()).unwrap();
    let never: Vec<&str> = rep["never_reached"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(never.contains(&"init_fenced_open_txn"), "{never:?}");
    let xml = std::fs::read_to_string(dir.join("j.xml")).unwrap();
    assert_eq!(xml.matches("<skipped").count(), never.len(), "{xml}");
    assert!(xml.contains("reach init_fenced_open_txn"), "{xml}");
    let _ = std::fs::remove_dir_all(&dir);
}
