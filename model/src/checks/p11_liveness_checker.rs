//! P11 — liveness: after the faults heal, checkpoints complete and all
//! input is committed within the bound (both modes).
//!
//! How: the job must have declared itself finished (`finished_at_us`, the
//! first `JobFinished`) by `deadline_us` (the liveness bound after
//! `healed_at_us`). A job that finished must also have completed a
//! checkpoint marked `finished` whose offsets cover the whole input, at or
//! before it declared itself finished. When the job did not finish, the
//! message says where it stood: the last completed checkpoint, the last
//! recovery, and the job's failure (`JobFailed`) or the last task failure.
//!
//! Whether the committed output is complete is P1's (P12's) business. A
//! checkpoint completing after healing is not required: the finishing
//! checkpoint may have completed before healing while its notification was
//! acknowledged only after.

use super::{ms, Ctx, Finding};
use crate::history::Ev;
use exactsim_engine::observe::Event;

pub fn check(c: &Ctx) -> Vec<Finding> {
    let h = c.h;
    let bound_ms = h.deadline_us.saturating_sub(h.healed_at_us) / 1000;
    let Some(t) = h.finished_at_us else {
        let last_ckpt = c
            .completed
            .last()
            .map(|x| format!("checkpoint {} at {}", x.1, ms(x.0)))
            .unwrap_or_else(|| "none".to_string());
        let after_heal = c.completed.iter().filter(|x| x.0 >= h.healed_at_us).count();
        let last_rec = h.events.iter().rev().find_map(|s| match &s.ev {
            Ev::Engine(Event::RecoveryStarted { attempt, from, reason }) => {
                Some(format!("attempt {attempt} from {from:?} at {} ({reason})", ms(s.t_us)))
            }
            _ => None,
        });
        let last_fail = h.events.iter().rev().find_map(|s| match &s.ev {
            Ev::Engine(Event::JobFailed { task, reason, .. }) => {
                Some(format!("; the job failed: {task} at {}: {reason}", ms(s.t_us)))
            }
            _ => None,
        });
        let last_fail = last_fail.or_else(|| {
            h.events.iter().rev().find_map(|s| match &s.ev {
                Ev::Engine(Event::TaskFailed { task, reason, .. }) => {
                    Some(format!("; last task failure: {task} at {}: {reason}", ms(s.t_us)))
                }
                _ => None,
            })
        });
        return vec![Finding::new(Some(h.deadline_us),
            format!(
                "the job did not finish within {bound_ms}ms after healing at {} (last completed {last_ckpt}; {after_heal} checkpoints completed after healing; last recovery {}{})",
                ms(h.healed_at_us),
                last_rec.unwrap_or_else(|| "none".to_string()),
                last_fail.unwrap_or_default()
            ),
        )];
    };
    let mut v = Vec::new();
    if t > h.deadline_us {
        v.push(Finding::new(
            Some(t),
            format!(
                "the job finished at {}, {}ms after healing at {}, beyond the bound of {bound_ms}ms",
                ms(t),
                (t - h.healed_at_us.min(t)) / 1000,
                ms(h.healed_at_us)
            ),
        ));
    }
    let full: Vec<u64> = h.input.iter().map(|p| p.len() as u64).collect();
    let finishing = h.events.iter().filter(|s| s.t_us <= t).find_map(|s| match &s.ev {
        Ev::Engine(Event::CheckpointCompleted { ckpt, offsets, finished: true, .. }) => Some((*ckpt, offsets, s.t_us)),
        _ => None,
    });
    match finishing {
        None => v.push(Finding::new(Some(t),
            format!("the job declared itself finished at {} without a completed checkpoint marked finished", ms(t)),
        )),
        Some((ck, offsets, at)) if *offsets != full => v.push(Finding::new(Some(at),
            format!(
                "checkpoint {ck} completed at {} marked finished covers input offsets {offsets:?}, not the whole input {full:?}",
                ms(at)
            ),
        )),
        Some(_) => {}
    }
    v
}
