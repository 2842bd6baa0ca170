//! `disk_errors`: a node's disk fails a share of its operations with an I/O error for a window.

use super::{Aim, Check, Cx, Fault, FaultEvent, Kind, Real, Target, Targets, Timing, Window};
use super::common::{Narrowing, Size, magnitude_window};
use super::common::Gen;
use serde::{Deserialize, Serialize};

/// `node`'s disk fails `permille` of its operations with an I/O error for a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskErrors {
    pub at_ms: u64,
    pub dur_ms: u64,
    pub node: String,
    pub permille: u32,
}

impl Kind for DiskErrors {
    const NAME: &'static str = "disk_errors";
    const TARGETS: Targets = Targets::DiskNodes;
    const COLOUR: &'static str = "#ff8fab";
    const DRAW: Option<fn(&mut Gen) -> FaultEvent> = Some(draw);
}

fn draw(g: &mut Gen) -> FaultEvent {
    let at_ms = g.at();
    let node = g.node();
    DiskErrors { at_ms, dur_ms: g.rng.range(50, 500), node, permille: g.rng.range(20, 300) as u32 }.into()
}

impl DiskErrors {
    fn window(&self) -> Window<'_> {
        Window::DiskErrors { node: &self.node, permille: self.permille }
    }
}

impl Fault for DiskErrors {
    fn timing(&self) -> Timing {
        Timing::Window { at_ms: self.at_ms, dur_ms: self.dur_ms }
    }

    fn validate(&self, c: &Check) -> Result<(), String> {
        c.window(self.at_ms, self.dur_ms)?;
        c.disk_node(&self.node)?;
        c.permille(self.permille)
    }

    fn size(&self) -> Size {
        Size { breadth: 1, magnitude: self.dur_ms + u64::from(self.permille), start: self.at_ms }
    }

    fn narrowings(&self, n: &Narrowing) -> Vec<FaultEvent> {
        magnitude_window((self.at_ms, self.dur_ms), u64::from(self.permille), n.safety_ms, |at_ms, dur_ms, m| {
            DiskErrors { at_ms, dur_ms, permille: u32::try_from(m).expect("no larger than a u32"), ..self.clone() }.into()
        })
    }

    fn aim(&mut self) -> Aim<'_> {
        Aim::At(&mut self.at_ms)
    }

    fn hold_ms(&self) -> Option<u64> {
        None
    }

    fn describe(&self) -> String {
        format!("{}'s disk fails {} of its operations with an I/O error", self.node, super::pct(self.permille))
    }

    fn nodes(&self) -> Option<Vec<String>> {
        Some(vec![self.node.clone()])
    }

    fn start(&self, cx: &mut Cx, t: &mut dyn Target) -> bool {
        t.open(cx.index, &self.window(), &cx.shown(Self::NAME))
    }

    fn end(&self, cx: &mut Cx, t: &mut dyn Target) {
        t.close(cx.index, &self.window(), &cx.shown(Self::NAME));
    }

    fn real(&self) -> Real {
        Real::Skips("disk faults need a fault-injecting file system")
    }
}
