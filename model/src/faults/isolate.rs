//! `isolate`: cut every link of a node for a window. Drawn by `partition`
//! (a third of its draws), not by a count of its own.

use super::{Aim, Check, Cx, Fault, FaultEvent, Kind, Partition, Real, Target, Targets, Timing, Window};
use super::common::{windows, Narrowing, Size};
use super::common::Gen;
use serde::{Deserialize, Serialize};

/// Cut every link of `node`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Isolate {
    pub at_ms: u64,
    pub dur_ms: u64,
    pub node: String,
}

impl Kind for Isolate {
    const NAME: &'static str = "isolate";
    const TARGETS: Targets = Targets::AnyNode;
    const COLOUR: &'static str = "#fb8500";
    const DRAW: Option<fn(&mut Gen) -> FaultEvent> = None;
}

impl Isolate {
    fn window(&self) -> Window<'_> {
        Window::Isolate { node: &self.node }
    }
}

impl Fault for Isolate {
    fn timing(&self) -> Timing {
        Timing::Window { at_ms: self.at_ms, dur_ms: self.dur_ms }
    }

    fn validate(&self, c: &Check) -> Result<(), String> {
        c.window(self.at_ms, self.dur_ms)?;
        c.node(&self.node)
    }

    fn size(&self) -> Size {
        Size { breadth: 3, magnitude: self.dur_ms, start: self.at_ms }
    }

    /// A cut to one other node, then shorter or earlier windows.
    fn narrowings(&self, n: &Narrowing) -> Vec<FaultEvent> {
        let Isolate { at_ms, dur_ms, ref node } = *self;
        let mut v: Vec<FaultEvent> = Vec::new();
        for other in n.nodes.iter().filter(|x| *x != node) {
            v.push(Partition { at_ms, dur_ms, a: node.clone(), b: other.clone(), one_way: false }.into());
        }
        for (at_ms, dur_ms) in windows(at_ms, dur_ms, n.safety_ms) {
            v.push(Isolate { at_ms, dur_ms, node: node.clone() }.into());
        }
        v
    }

    fn aim(&mut self) -> Aim<'_> {
        Aim::At(&mut self.at_ms)
    }

    fn hold_ms(&self) -> Option<u64> {
        Some(self.dur_ms)
    }

    fn describe(&self) -> String {
        format!("{} is cut off from every other node", self.node)
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
        // Every node drops what it sends to or from the node.
        Real::Plays
    }
}
