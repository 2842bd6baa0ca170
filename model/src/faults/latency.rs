//! `latency`: network messages take up to `latency_ms` for a window.

use super::{Aim, Check, Cx, Fault, FaultEvent, Kind, Real, Target, Targets, Timing, Window};
use super::common::{Narrowing, Size, magnitude_window};
use super::common::Gen;
use serde::{Deserialize, Serialize};

/// Network latency raised to up to `latency_ms` for a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    pub at_ms: u64,
    pub dur_ms: u64,
    pub latency_ms: u64,
}

impl Kind for Latency {
    const NAME: &'static str = "latency";
    const TARGETS: Targets = Targets::Network;
    const COLOUR: &'static str = "#8ecae6";
    const DRAW: Option<fn(&mut Gen) -> FaultEvent> = Some(draw);
}

fn draw(g: &mut Gen) -> FaultEvent {
    let at_ms = g.at();
    Latency { at_ms, dur_ms: g.rng.range(100, 800), latency_ms: g.rng.range(20, 200) }.into()
}

impl Fault for Latency {
    fn timing(&self) -> Timing {
        Timing::Window { at_ms: self.at_ms, dur_ms: self.dur_ms }
    }

    fn validate(&self, c: &Check) -> Result<(), String> {
        c.window(self.at_ms, self.dur_ms)?;
        c.latency(self.latency_ms)
    }

    fn size(&self) -> Size {
        Size { breadth: 1, magnitude: self.dur_ms + self.latency_ms, start: self.at_ms }
    }

    fn narrowings(&self, n: &Narrowing) -> Vec<FaultEvent> {
        magnitude_window((self.at_ms, self.dur_ms), self.latency_ms, n.safety_ms, |at_ms, dur_ms, m| {
            Latency { at_ms, dur_ms, latency_ms: m }.into()
        })
    }

    fn aim(&mut self) -> Aim<'_> {
        Aim::At(&mut self.at_ms)
    }

    fn hold_ms(&self) -> Option<u64> {
        None
    }

    fn describe(&self) -> String {
        format!("network messages are delayed by up to {} ms", self.latency_ms)
    }

    fn nodes(&self) -> Option<Vec<String>> {
        None
    }

    fn start(&self, cx: &mut Cx, t: &mut dyn Target) -> bool {
        t.open(cx.index, &Window::Latency { latency_ms: self.latency_ms }, &cx.shown(Self::NAME))
    }

    fn end(&self, cx: &mut Cx, t: &mut dyn Target) {
        t.close(cx.index, &Window::Latency { latency_ms: self.latency_ms }, &cx.shown(Self::NAME));
    }

    fn real(&self) -> Real {
        // Each sender holds every message back up to that long.
        Real::Plays
    }
}
