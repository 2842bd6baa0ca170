//! `crash`: kill a node at `at_ms`, restart it `down_ms` later; its disk
//! keeps what `disk` says.

use super::{Aim, Check, Cx, Fault, FaultEvent, Kind, Real, Stop, Target, Targets, Timing};
use super::common::{crash_breadth, shorter_or_earlier, Narrowing, Size};
use super::common::{CrashMode, Gen};
use serde::{Deserialize, Serialize};

/// Kill `node` at `at_ms`, restart it `down_ms` later.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crash {
    pub at_ms: u64,
    pub node: String,
    pub down_ms: u64,
    pub disk: CrashMode,
}

impl Kind for Crash {
    const NAME: &'static str = "crash";
    const TARGETS: Targets = Targets::AnyNode;
    const COLOUR: &'static str = "#d00000";
    const DRAW: Option<fn(&mut Gen) -> FaultEvent> = Some(draw);
}

fn draw(g: &mut Gen) -> FaultEvent {
    let at_ms = g.rng.range(50, g.horizon.saturating_sub(100).max(60));
    let node = g.node();
    let down_ms = g.outage();
    let disk = g.disk_mode();
    Crash { at_ms, node, down_ms, disk }.into()
}

/// How real mode names what a crash's disk mode asks for and it cannot do.
pub fn real_disk(disk: CrashMode) -> Real {
    if disk == CrashMode::KeepAll {
        return Real::Plays;
    }
    let qualifier = serde_json::to_value(disk).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
    Real::Partly {
        qualifier,
        reason: "the crash is played; kill -9 keeps the page cache, so unsynced writes are not lost or torn",
    }
}

impl Fault for Crash {
    fn timing(&self) -> Timing {
        Timing::At(self.at_ms)
    }

    fn validate(&self, c: &Check) -> Result<(), String> {
        c.at(self.at_ms)?;
        c.node(&self.node)?;
        c.down(self.down_ms)
    }

    fn size(&self) -> Size {
        Size { breadth: crash_breadth(self.disk), magnitude: self.down_ms, start: self.at_ms }
    }

    fn narrowings(&self, _: &Narrowing) -> Vec<FaultEvent> {
        let Crash { at_ms, ref node, down_ms, disk } = *self;
        let mut v: Vec<FaultEvent> = vec![Stop { at_ms, node: node.clone(), down_ms }.into()];
        if disk != CrashMode::KeepAll {
            v.push(Crash { disk: CrashMode::KeepAll, ..self.clone() }.into());
        }
        v.extend(shorter_or_earlier(at_ms, down_ms, |at_ms, down_ms| Crash { at_ms, down_ms, ..self.clone() }.into()));
        v
    }

    fn aim(&mut self) -> Aim<'_> {
        Aim::At(&mut self.at_ms)
    }

    fn hold_ms(&self) -> Option<u64> {
        Some(self.down_ms)
    }

    fn describe(&self) -> String {
        format!("{} crashes", self.node)
    }

    fn nodes(&self) -> Option<Vec<String>> {
        Some(vec![self.node.clone()])
    }

    fn start(&self, cx: &mut Cx, t: &mut dyn Target) -> bool {
        let played = t.crash(&self.node, "scheduled crash", self.disk, false);
        if played {
            cx.restart_after(&self.node, self.down_ms);
        }
        played
    }

    fn end(&self, _: &mut Cx, _: &mut dyn Target) {}

    fn real(&self) -> Real {
        real_disk(self.disk)
    }
}
