//! `slow_disk`: a node's disk answers late for a window.

use super::{Aim, Check, Cx, Fault, FaultEvent, Kind, Real, Target, Targets, Timing, Window};
use super::common::{Narrowing, Size, magnitude_window};
use super::common::{caps, Gen};
use serde::{Deserialize, Serialize};

/// `node`'s disk operations take up to `latency_ms` for a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowDisk {
    pub at_ms: u64,
    pub dur_ms: u64,
    pub node: String,
    pub latency_ms: u64,
}

impl Kind for SlowDisk {
    const NAME: &'static str = "slow_disk";
    const TARGETS: Targets = Targets::DiskNodes;
    const COLOUR: &'static str = "#cdb4db";
    const DRAW: Option<fn(&mut Gen) -> FaultEvent> = Some(draw);
}

fn draw(g: &mut Gen) -> FaultEvent {
    let at_ms = g.at();
    let node = g.node();
    let dur_ms = g.outage();
    // Per operation: up to half a retry budget.
    let latency_ms = g.rng.range(20, (g.cfg.rpc_timeout_ms * 3).clamp(21, caps::LATENCY_MS_MAX));
    SlowDisk { at_ms, dur_ms, node, latency_ms }.into()
}

impl SlowDisk {
    fn window(&self) -> Window<'_> {
        Window::SlowDisk { node: &self.node, latency_ms: self.latency_ms }
    }
}

impl Fault for SlowDisk {
    fn timing(&self) -> Timing {
        Timing::Window { at_ms: self.at_ms, dur_ms: self.dur_ms }
    }

    fn validate(&self, c: &Check) -> Result<(), String> {
        c.window(self.at_ms, self.dur_ms)?;
        c.disk_node(&self.node)?;
        c.latency(self.latency_ms)
    }

    fn size(&self) -> Size {
        Size { breadth: 1, magnitude: self.dur_ms + self.latency_ms, start: self.at_ms }
    }

    fn narrowings(&self, n: &Narrowing) -> Vec<FaultEvent> {
        magnitude_window((self.at_ms, self.dur_ms), self.latency_ms, n.safety_ms, |at_ms, dur_ms, m| {
            SlowDisk { at_ms, dur_ms, latency_ms: m, ..self.clone() }.into()
        })
    }

    fn aim(&mut self) -> Aim<'_> {
        Aim::At(&mut self.at_ms)
    }

    fn hold_ms(&self) -> Option<u64> {
        None
    }

    fn describe(&self) -> String {
        format!("{}'s disk answers up to {} ms late", self.node, self.latency_ms)
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
