//! `rescale`: the job is restarted with another parallelism (an operator
//! scaling it, or an autoscaler): the coordinator shuts down cleanly and
//! starts `down_ms` later deploying the job with `parallelism` subtasks,
//! restoring the latest retained checkpoint whatever parallelism it was
//! taken with. Key groups move between subtasks, and the transactions the
//! removed subtasks left are the survivors' to end. What must survive it:
//! every key's state (the batch recomputation), the removed subtasks'
//! pre-committed output (committed once) and their lingering transactions
//! (aborted, fenced). Drawn only by profiles that ask for it (`rescale = N`).

use super::common::Gen;
use super::common::{shorter_or_earlier, Narrowing, Size, DUR_MIN_MS};
use super::{Aim, Check, Cx, Fault, FaultEvent, Kind, Real, Target, Targets, Timing};
use serde::{Deserialize, Serialize};

/// At `at_ms` the job is rescaled: the coordinator stops cleanly and is
/// started `down_ms` later with `parallelism` subtasks (at most the run's
/// worker nodes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rescale {
    pub at_ms: u64,
    pub down_ms: u64,
    pub parallelism: u32,
}

impl Kind for Rescale {
    const NAME: &'static str = "rescale";
    // Aimed at the job, not at a node a profile could choose: it always
    // stops and restarts the coordinator.
    const TARGETS: Targets = Targets::Network;
    const COLOUR: &'static str = "#ff70a6";
    const DRAW: Option<fn(&mut Gen) -> FaultEvent> = Some(draw_rescale);
}

fn draw_rescale(g: &mut Gen) -> FaultEvent {
    let at_ms = g.early_at(2_000);
    // A restart, not an outage (crashes and stops are the outages): back
    // within a heartbeat timeout, so that the job checkpoints at its new
    // parallelism before a second rescale of the run.
    let down_ms = g.rng.range(DUR_MIN_MS, g.cfg.heartbeat_timeout_ms.max(DUR_MIN_MS));
    // Up to the worker nodes: fewer subtasks, or (after an earlier
    // rescale of the same run) back up; at the current parallelism it is
    // a restart of the job that moves nothing.
    let workers = u64::from(g.cfg.parallelism.max(1));
    let parallelism = g.rng.range(1, workers) as u32;
    Rescale { at_ms, down_ms, parallelism }.into()
}

/// The run's worker nodes: the most subtasks a rescale can ask for.
fn workers(c: &Check) -> u32 {
    c.nodes.iter().filter(|n| n.starts_with("worker-")).count() as u32
}

impl Fault for Rescale {
    fn timing(&self) -> Timing {
        Timing::At(self.at_ms)
    }

    fn validate(&self, c: &Check) -> Result<(), String> {
        c.at(self.at_ms)?;
        c.down(self.down_ms)?;
        let w = workers(c);
        if self.parallelism == 0 || self.parallelism > w {
            return Err(format!("parallelism = {} is out of range (1..={w}, the run's workers)", self.parallelism));
        }
        Ok(())
    }

    fn size(&self) -> Size {
        Size { breadth: 1, magnitude: self.down_ms, start: self.at_ms }
    }

    fn narrowings(&self, _: &Narrowing) -> Vec<FaultEvent> {
        let p = self.parallelism;
        shorter_or_earlier(self.at_ms, self.down_ms, |at_ms, down_ms| Rescale { at_ms, down_ms, parallelism: p }.into())
    }

    fn aim(&mut self) -> Aim<'_> {
        Aim::At(&mut self.at_ms)
    }

    fn hold_ms(&self) -> Option<u64> {
        Some(self.down_ms)
    }

    fn describe(&self) -> String {
        format!("the job is rescaled to {} subtasks (the coordinator restarts with them)", self.parallelism)
    }

    fn nodes(&self) -> Option<Vec<String>> {
        Some(vec!["coordinator".to_string()])
    }

    fn start(&self, cx: &mut Cx, t: &mut dyn Target) -> bool {
        let played = t.rescale(self.parallelism, &cx.shown(Self::NAME));
        if played {
            cx.restart_after("coordinator", self.down_ms);
        }
        played
    }

    fn end(&self, _: &mut Cx, _: &mut dyn Target) {}

    fn real(&self) -> Real {
        Real::Plays
    }
}
