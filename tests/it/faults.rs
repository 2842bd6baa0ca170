//! The fault kinds that make zombies and outlast timeouts: each lands, the
//! correct engine survives it, and the planted bug it exists for is caught
//! by a check (not only by an engine assertion).

use crate::common::*;
use exactsim_engine::config::Mutant;
use exactsim_engine::types::DeliveryMode;
use exactsim_sim::history::{Ev, SimEvent};
use exactsim_sim::schedule::FaultEvent;

fn with_mutant(mut s: exactsim_sim::world::RunSpec, m: Mutant) -> exactsim_sim::world::RunSpec {
    s.mutant = Some(m);
    s
}

#[test]
fn debug_dump() {
    let ev = vec![FaultEvent::Pause { at_ms: 300, node: "broker".into(), dur_ms: 2000 }];
    let out = go(with_mutant(fixed("word_count", 3, DeliveryMode::ExactlyOnce, ev), Mutant::CommitRetryNewSession), "none");
    println!("{:?}", out.report.violations);
    for s in &out.result.history.events {
        if s.t_us > 250_000 {
            let d = format!("{:?}", s.ev); println!("{} {} {}", s.t_us, s.node, &d[..d.len().min(150)]);
        }
    }
    let _ = (Ev::Sim(SimEvent::Healed),);
}
