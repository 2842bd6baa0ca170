//! `pause`: freeze a node for a while (no timer fires, no message is
//! handled); it resumes with its stale state: the GC-pause / SIGSTOP zombie.

use super::{Aim, Check, Cx, Fault, FaultEvent, Kind, Real, Target, Targets, Timing};
use super::common::{windows, Narrowing, Size};
use super::common::Gen;
use serde::{Deserialize, Serialize};

/// Freeze `node` for `dur_ms`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pause {
    pub at_ms: u64,
    pub node: String,
    pub dur_ms: u64,
}

impl Kind for Pause {
    const NAME: &'static str = "pause";
    const TARGETS: Targets = Targets::AnyNode;
    const COLOUR: &'static str = "#6a4c93";
    const DRAW: Option<fn(&mut Gen) -> FaultEvent> = Some(draw);
}

fn draw(g: &mut Gen) -> FaultEvent {
    let at_ms = g.at();
    let node = g.node();
    let dur_ms = g.outage();
    Pause { at_ms, node, dur_ms }.into()
}

impl Fault for Pause {
    /// A node fault: its start schedules the resume.
    fn timing(&self) -> Timing {
        Timing::At(self.at_ms)
    }

    fn validate(&self, c: &Check) -> Result<(), String> {
        c.window(self.at_ms, self.dur_ms)?;
        c.node(&self.node)
    }

    fn size(&self) -> Size {
        Size { breadth: 1, magnitude: self.dur_ms, start: self.at_ms }
    }

    fn narrowings(&self, n: &Narrowing) -> Vec<FaultEvent> {
        windows(self.at_ms, self.dur_ms, n.safety_ms)
            .into_iter()
            .map(|(at_ms, dur_ms)| Pause { at_ms, dur_ms, ..self.clone() }.into())
            .collect()
    }

    fn aim(&mut self) -> Aim<'_> {
        Aim::At(&mut self.at_ms)
    }

    fn hold_ms(&self) -> Option<u64> {
        Some(self.dur_ms)
    }

    fn describe(&self) -> String {
        format!("{} is frozen for {} ms", self.node, self.dur_ms)
    }

    fn nodes(&self) -> Option<Vec<String>> {
        Some(vec![self.node.clone()])
    }

    fn start(&self, cx: &mut Cx, t: &mut dyn Target) -> bool {
        let played = t.pause(&self.node, &cx.shown(Self::NAME));
        if played {
            let detail = cx.detail.to_string();
            cx.resume_after(&self.node, self.dur_ms, &detail);
        }
        played
    }

    fn end(&self, _: &mut Cx, _: &mut dyn Target) {}

    fn real(&self) -> Real {
        Real::Plays
    }
}
