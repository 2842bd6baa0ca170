//! `redeploy`: the job is submitted again under a new job identity (a
//! redeploy, a savepoint-and-resubmit, a failover that changes the job
//! id): the coordinator shuts down cleanly and starts `down_ms` later as
//! the job's next run, restoring the old run's latest retained checkpoint.
//! What must survive it: the sinks' fencing (the new run's owners
//! supersede every owner of the old one) and the recovery's re-commits of
//! the restored pre-commits. Drawn only by profiles that ask for it
//! (`redeploy = N`).

use super::{Aim, Check, Cx, Fault, FaultEvent, Kind, Real, Target, Targets, Timing};
use super::common::{shorter_or_earlier, Narrowing, Size};
use super::common::Gen;
use serde::{Deserialize, Serialize};

/// At `at_ms` the job is redeployed: the coordinator stops cleanly and is
/// started `down_ms` later as a new run of the job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redeploy {
    pub at_ms: u64,
    pub down_ms: u64,
}

impl Kind for Redeploy {
    const NAME: &'static str = "redeploy";
    // Aimed at the job, not at a node a profile could choose: it always
    // stops and restarts the coordinator.
    const TARGETS: Targets = Targets::Network;
    const COLOUR: &'static str = "#7b2cbf";
    const DRAW: Option<fn(&mut Gen) -> FaultEvent> = Some(draw_redeploy);
}

fn draw_redeploy(g: &mut Gen) -> FaultEvent {
    let at_ms = g.early_at(1_500);
    let down_ms = g.outage();
    Redeploy { at_ms, down_ms }.into()
}

impl Fault for Redeploy {
    fn timing(&self) -> Timing {
        Timing::At(self.at_ms)
    }

    fn validate(&self, c: &Check) -> Result<(), String> {
        c.at(self.at_ms)?;
        c.down(self.down_ms)
    }

    fn size(&self) -> Size {
        Size { breadth: 1, magnitude: self.down_ms, start: self.at_ms }
    }

    fn narrowings(&self, _: &Narrowing) -> Vec<FaultEvent> {
        shorter_or_earlier(self.at_ms, self.down_ms, |at_ms, down_ms| Redeploy { at_ms, down_ms }.into())
    }

    fn aim(&mut self) -> Aim<'_> {
        Aim::At(&mut self.at_ms)
    }

    fn hold_ms(&self) -> Option<u64> {
        Some(self.down_ms)
    }

    fn describe(&self) -> String {
        "the job is redeployed under a new job identity (the coordinator restarts as its next run)".to_string()
    }

    fn nodes(&self) -> Option<Vec<String>> {
        Some(vec!["coordinator".to_string()])
    }

    fn start(&self, cx: &mut Cx, t: &mut dyn Target) -> bool {
        let played = t.redeploy(&cx.shown(Self::NAME));
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
