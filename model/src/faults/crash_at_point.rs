//! `crash_at_point`: kill a node the `nth` time it reaches a fault point
//! (armed by the recorder in simulation; in real mode the process kills
//! itself there and the supervisor restarts it).

use super::crash::real_disk;
use super::{Aim, Check, Cx, Fault, FaultEvent, Kind, Real, Target, Targets, Timing};
use super::common::{crash_breadth, smaller, Narrowing, Size, DUR_MIN_MS};
use super::common::{CrashMode, Gen};
use exactsim_engine::observe::FaultPoint;
use serde::{Deserialize, Serialize};

/// Kill `node` (any node if `None`) the `nth` time it reaches `point`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashAtPoint {
    pub point: FaultPoint,
    pub node: Option<String>,
    pub nth: u32,
    pub down_ms: u64,
    pub disk: CrashMode,
}

impl Kind for CrashAtPoint {
    const NAME: &'static str = "crash_at_point";
    const TARGETS: Targets = Targets::AnyNode;
    const COLOUR: &'static str = "#9d0208";
    const DRAW: Option<fn(&mut Gen) -> FaultEvent> = Some(draw);
}

fn draw(g: &mut Gen) -> FaultEvent {
    let point = *g.rng.pick(&FaultPoint::ALL);
    let nth = g.rng.range(1, 4) as u32;
    let down_ms = g.outage();
    let disk = g.disk_mode();
    let node = if g.targets.contains_key("crash_at_point") { Some(g.node()) } else { None };
    CrashAtPoint { point, node, nth, down_ms, disk }.into()
}

impl Fault for CrashAtPoint {
    fn timing(&self) -> Timing {
        Timing::Predicate
    }

    fn validate(&self, c: &Check) -> Result<(), String> {
        if let Some(n) = &self.node {
            c.node(n)?;
        }
        c.nth(self.nth)?;
        c.down(self.down_ms)
    }

    fn size(&self) -> Size {
        Size {
            breadth: crash_breadth(self.disk) + u64::from(self.node.is_none()),
            magnitude: u64::from(self.nth) + self.down_ms,
            start: 0,
        }
    }

    fn narrowings(&self, n: &Narrowing) -> Vec<FaultEvent> {
        let mut v: Vec<FaultEvent> = Vec::new();
        if self.disk != CrashMode::KeepAll {
            v.push(CrashAtPoint { disk: CrashMode::KeepAll, ..self.clone() }.into());
        }
        for k in smaller(u64::from(self.nth), 1) {
            let nth = u32::try_from(k).expect("smaller than a u32");
            v.push(CrashAtPoint { nth, ..self.clone() }.into());
        }
        for d in smaller(self.down_ms, DUR_MIN_MS) {
            v.push(CrashAtPoint { down_ms: d, ..self.clone() }.into());
        }
        if self.node.is_none() {
            for x in n.nodes {
                v.push(CrashAtPoint { node: Some(x.clone()), ..self.clone() }.into());
            }
        }
        v
    }

    fn aim(&mut self) -> Aim<'_> {
        Aim::Nth(&mut self.nth)
    }

    fn hold_ms(&self) -> Option<u64> {
        Some(self.down_ms)
    }

    fn describe(&self) -> String {
        format!(
            "{} crashes the {}. time it reaches {}",
            self.node.as_deref().unwrap_or("a node"),
            self.nth,
            self.point.name()
        )
    }

    fn nodes(&self) -> Option<Vec<String>> {
        self.node.clone().map(|n| vec![n])
    }

    /// The recorder marked the node down when it reached the point.
    fn start(&self, cx: &mut Cx, t: &mut dyn Target) -> bool {
        let (node, cause) = cx.fired();
        let node = node.to_string();
        let played = t.crash(&node, cause, self.disk, true);
        if played {
            cx.restart_after(&node, self.down_ms);
        }
        played
    }

    fn end(&self, _: &mut Cx, _: &mut dyn Target) {}

    fn real(&self) -> Real {
        real_disk(self.disk)
    }
}
