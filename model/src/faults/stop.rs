//! `stop`: a graceful shutdown of a node (a stopping process finishes and
//! syncs its I/O: nothing written is lost), restarted `down_ms` later.

use super::{Aim, Check, Cx, Fault, FaultEvent, Kind, Real, Target, Targets, Timing};
use super::common::{shorter_or_earlier, Narrowing, Size};
use super::common::Gen;
use serde::{Deserialize, Serialize};

/// Graceful shutdown of `node` (nothing written is lost), restarted
/// `down_ms` later.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stop {
    pub at_ms: u64,
    pub node: String,
    pub down_ms: u64,
}

impl Kind for Stop {
    const NAME: &'static str = "stop";
    const TARGETS: Targets = Targets::AnyNode;
    const COLOUR: &'static str = "#577590";
    const DRAW: Option<fn(&mut Gen) -> FaultEvent> = Some(draw_stop);
}

fn draw_stop(g: &mut Gen) -> FaultEvent {
    let at_ms = g.rng.range(50, g.horizon.saturating_sub(100).max(60));
    let node = g.node();
    let down_ms = g.outage();
    Stop { at_ms, node, down_ms }.into()
}

impl Fault for Stop {
    fn timing(&self) -> Timing {
        Timing::At(self.at_ms)
    }

    fn validate(&self, c: &Check) -> Result<(), String> {
        c.at(self.at_ms)?;
        c.node(&self.node)?;
        c.down(self.down_ms)
    }

    fn size(&self) -> Size {
        Size { breadth: 1, magnitude: self.down_ms, start: self.at_ms }
    }

    fn narrowings(&self, _: &Narrowing) -> Vec<FaultEvent> {
        shorter_or_earlier(self.at_ms, self.down_ms, |at_ms, down_ms| {
            Stop { at_ms, down_ms, node: self.node.clone() }.into()
        })
    }

    fn aim(&mut self) -> Aim<'_> {
        Aim::At(&mut self.at_ms)
    }

    fn hold_ms(&self) -> Option<u64> {
        Some(self.down_ms)
    }

    fn describe(&self) -> String {
        format!("{} shuts down cleanly", self.node)
    }

    fn nodes(&self) -> Option<Vec<String>> {
        Some(vec![self.node.clone()])
    }

    fn start(&self, cx: &mut Cx, t: &mut dyn Target) -> bool {
        let played = t.stop(&self.node, &cx.shown(Self::NAME));
        if played {
            cx.restart_after(&self.node, self.down_ms);
        }
        played
    }

    fn end(&self, _: &mut Cx, _: &mut dyn Target) {}

    fn real(&self) -> Real {
        Real::Plays
    }
}
