//! P11 — liveness: after every fault healed and every node is up, the job
//! completes checkpoints again and finishes (all input committed) within
//! the bound.

use super::{ms, Ctx, Violation};
use crate::history::Ev;
use exactsim_engine::observe::Event;

pub fn check(c: &Ctx) -> Vec<Violation> {
    let h = c.h;
    let bound_ms = (h.deadline_us - h.healed_at_us) / 1000;
    match h.finished_at_us {
        Some(t) if t <= h.deadline_us => vec![],
        Some(t) => vec![Violation::new(
            "P11",
            Some(t),
            format!("the job finished at {}, later than {bound_ms}ms after healing", ms(t)),
        )],
        None => {
            let last_ckpt =
                c.completed.last().map(|x| format!("checkpoint {} at {}", x.1, ms(x.0))).unwrap_or("none".into());
            let last_rec = h.events.iter().rev().find_map(|s| match &s.ev {
                Ev::Engine(Event::RecoveryStarted { attempt, from, reason }) => {
                    Some(format!("attempt {attempt} from {from:?} at {} ({reason})", ms(s.t_us)))
                }
                _ => None,
            });
            let stuck = h.events.iter().rev().find_map(|s| match &s.ev {
                Ev::Engine(Event::TaskFailed { task, reason, .. }) => {
                    Some(format!("; last task failure: {task} {reason}"))
                }
                _ => None,
            });
            vec![Violation::new(
                "P11",
                Some(h.deadline_us),
                format!(
                    "the job did not finish within {bound_ms}ms after healing (last completed {last_ckpt}; last recovery {}{})",
                    last_rec.unwrap_or("none".into()),
                    stuck.unwrap_or_default()
                ),
            )]
        }
    }
}
