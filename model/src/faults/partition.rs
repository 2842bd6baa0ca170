//! `partition`: cut the link between two nodes for a window (one way, or
//! both). A third of the partitions a profile draws isolate a node instead
//! (`isolate`).

use super::{Aim, Check, Cx, Fault, FaultEvent, Isolate, Kind, Real, Target, Targets, Timing, Window};
use super::common::{windows, Narrowing, Size};
use super::common::Gen;
use serde::{Deserialize, Serialize};

/// Cut the link between `a` and `b` (only `a -> b` if `one_way`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    pub at_ms: u64,
    pub dur_ms: u64,
    pub a: String,
    pub b: String,
    pub one_way: bool,
}

impl Kind for Partition {
    const NAME: &'static str = "partition";
    const TARGETS: Targets = Targets::AnyNode;
    const COLOUR: &'static str = "#f4a261";
    const DRAW: Option<fn(&mut Gen) -> FaultEvent> = Some(draw);
}

fn draw(g: &mut Gen) -> FaultEvent {
    let at_ms = g.at();
    let dur_ms = g.outage();
    if g.rng.chance(1, 3) {
        let node = g.node();
        Isolate { at_ms, dur_ms, node }.into()
    } else {
        let a = g.node();
        let others: Vec<String> = g.nodes.iter().filter(|n| **n != a).cloned().collect();
        let b = g.rng.pick(&others).clone();
        let one_way = g.rng.chance(1, 3);
        Partition { at_ms, dur_ms, a, b, one_way }.into()
    }
}

impl Partition {
    fn window(&self) -> Window<'_> {
        Window::Cut { a: &self.a, b: &self.b, one_way: self.one_way }
    }
}

impl Fault for Partition {
    fn timing(&self) -> Timing {
        Timing::Window { at_ms: self.at_ms, dur_ms: self.dur_ms }
    }

    fn validate(&self, c: &Check) -> Result<(), String> {
        c.window(self.at_ms, self.dur_ms)?;
        c.node(&self.a)?;
        c.node(&self.b)?;
        if self.a == self.b {
            return Err(format!("a partition needs two different nodes (both are '{}')", self.a));
        }
        Ok(())
    }

    fn size(&self) -> Size {
        Size { breadth: if self.one_way { 1 } else { 2 }, magnitude: self.dur_ms, start: self.at_ms }
    }

    fn narrowings(&self, n: &Narrowing) -> Vec<FaultEvent> {
        let mut v: Vec<FaultEvent> = Vec::new();
        if !self.one_way {
            v.push(Partition { one_way: true, ..self.clone() }.into());
            v.push(Partition { a: self.b.clone(), b: self.a.clone(), one_way: true, ..self.clone() }.into());
        }
        for (at_ms, dur_ms) in windows(self.at_ms, self.dur_ms, n.safety_ms) {
            v.push(Partition { at_ms, dur_ms, ..self.clone() }.into());
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
        let Partition { a, b, .. } = self;
        if self.one_way {
            format!("one-way partition: messages from {a} to {b} are dropped")
        } else {
            format!("network partition: {a} and {b} cannot reach each other")
        }
    }

    fn nodes(&self) -> Option<Vec<String>> {
        Some(vec![self.a.clone(), self.b.clone()])
    }

    fn start(&self, cx: &mut Cx, t: &mut dyn Target) -> bool {
        t.open(cx.index, &self.window(), &cx.shown(Self::NAME))
    }

    fn end(&self, cx: &mut Cx, t: &mut dyn Target) {
        t.close(cx.index, &self.window(), &cx.shown(Self::NAME));
    }

    fn real(&self) -> Real {
        // Both ends drop what they send each other (node/src/control.rs).
        Real::Plays
    }
}
