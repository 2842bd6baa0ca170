//! P10 — restored state, source offsets and pending transactions all come
//! from the same checkpoint: the one the recovery chose, which has a
//! completion record.

use super::{ms, Ctx, Violation};
use crate::history::Ev;
use exactsim_engine::observe::Event;
use exactsim_engine::types::TaskId;
use std::collections::{BTreeMap, BTreeSet};

pub fn check(c: &Ctx) -> Vec<Violation> {
    let mut v = Vec::new();
    let mut chosen: BTreeMap<u64, Option<u64>> = BTreeMap::new();
    let mut completed = BTreeSet::new();
    for s in &c.h.events {
        match &s.ev {
            Ev::Engine(Event::CheckpointCompleted { ckpt, .. }) => {
                completed.insert(*ckpt);
            }
            Ev::Engine(Event::RecoveryStarted { attempt, from, .. }) => {
                if let Some(f) = from.filter(|f| !completed.contains(f)) {
                    v.push(Violation::new(
                        "P10",
                        Some(s.t_us),
                        format!("attempt {attempt} restores checkpoint {f}, which never completed"),
                    ));
                }
                chosen.insert(*attempt, *from);
            }
            Ev::Engine(Event::TaskRestored { attempt, task, state_ckpt, offsets_ckpt, .. }) => {
                let Some(want) = chosen.get(attempt) else {
                    continue;
                };
                let got = match task {
                    TaskId::Source(_) => offsets_ckpt,
                    TaskId::Chain(_) => state_ckpt,
                };
                if got != want {
                    v.push(Violation::new(
                        "P10",
                        Some(s.t_us),
                        format!("attempt {attempt}: {task} restored from checkpoint {got:?} at {}, but the recovery chose {want:?}", ms(s.t_us)),
                    ));
                }
                if let Some(g) = got.filter(|g| !completed.contains(g)) {
                    v.push(Violation::new(
                        "P10",
                        Some(s.t_us),
                        format!(
                            "attempt {attempt}: {task} restored from checkpoint {g}, which has no completion record"
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    v
}
