//! The engine core under recovery: three workers, a fixed seed, a worker and
//! later the coordinator killed mid-run and restarted. The job must end with
//! output equal to the batch reference, having completed checkpoints after
//! each recovery.

use crate::common::*;
use exactsim_engine::observe::Event;
use exactsim_engine::types::DeliveryMode;
use exactsim_model::faults;
use exactsim_model::history::{Ev, SimEvent};
use exactsim_model::schedule::FaultEvent;
use exactsim_sim::disk::CrashMode;

#[test]
fn worker_then_coordinator_crash_recovers_to_reference() {
    let events = vec![
        FaultEvent::Crash(faults::Crash {
            at_ms: 150,
            node: "worker-1".into(),
            down_ms: 120,
            disk: CrashMode::LoseUnsynced,
        }),
        FaultEvent::Crash(faults::Crash {
            at_ms: 500,
            node: "coordinator".into(),
            down_ms: 120,
            disk: CrashMode::LoseUnsynced,
        }),
    ];
    let out = go(fixed("word_count", 2024, DeliveryMode::ExactlyOnce, events), "none");
    assert_pass(&out);
    let h = &out.result.history;
    assert_eq!(h.parallelism, 3);
    // Each restart is followed by a recovery and by completed checkpoints.
    let restarts: Vec<(u64, String)> = h
        .events
        .iter()
        .filter_map(|s| match &s.ev {
            Ev::Sim(SimEvent::NodeRestarted { node }) => Some((s.t_us, node.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(restarts.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(), vec!["worker-1", "coordinator"]);
    for (t, node) in &restarts {
        let completed_after =
            h.events.iter().any(|s| s.t_us > *t && matches!(s.ev, Ev::Engine(Event::CheckpointCompleted { .. })));
        assert!(completed_after, "no checkpoint completed after {node} restarted");
    }
    assert!(out.report.recoveries >= 2, "{}", out.report.summary_line());
    let o = &out.report.output;
    assert_eq!((o.committed, o.duplicates, o.lost, o.wrong), (o.expected, 0, 0, 0));
}
