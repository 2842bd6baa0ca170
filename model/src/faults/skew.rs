//! `skew`: a node's clocks for a window: its wall clock steps, its clocks
//! drift. At the end the wall clock steps back (NTP) and the rate returns
//! to normal.

use super::{Aim, Check, Cx, Fault, FaultEvent, Kind, Real, Target, Targets, Timing, Window};
use super::common::{toward_zero, windows, Narrowing, Size};
use super::common::{caps, Gen};
use serde::{Deserialize, Serialize};

/// `node`'s wall clock steps by `offset_ms`, and its clocks run
/// `drift_permille` faster (negative: slower), for a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Skew {
    pub at_ms: u64,
    pub dur_ms: u64,
    pub node: String,
    pub offset_ms: i64,
    pub drift_permille: i32,
}

impl Kind for Skew {
    const NAME: &'static str = "skew";
    const TARGETS: Targets = Targets::AnyNode;
    const COLOUR: &'static str = "#90be6d";
    const DRAW: Option<fn(&mut Gen) -> FaultEvent> = Some(draw);
}

fn draw(g: &mut Gen) -> FaultEvent {
    let at_ms = g.at();
    let dur_ms = g.rng.range(200, 1500);
    let node = g.node();
    // Steps relative to the timeout the node's clock decides (the broker:
    // transaction timeouts; the others: heartbeats and failure detection),
    // from half of it to six times it.
    let base = if node == "broker" { g.cfg.txn_timeout_ms } else { g.cfg.heartbeat_timeout_ms };
    let factor = *g.rng.pick(&[500i64, 1_500, 3_000, 6_000]);
    let mut offset_ms = (base as i64).saturating_mul(factor) / 1000;
    if g.rng.chance(1, 4) {
        offset_ms = -offset_ms;
    }
    // Drift: from a clock at half speed to one at double speed.
    let drift_permille = *g.rng.pick(&[-500i32, -200, 0, 200, 500, 1_000]);
    Skew { at_ms, dur_ms, node, offset_ms, drift_permille }.into()
}

impl Skew {
    fn window(&self) -> Window<'_> {
        Window::Clock { node: &self.node, offset_ms: self.offset_ms, drift_permille: self.drift_permille }
    }
}

impl Fault for Skew {
    fn timing(&self) -> Timing {
        Timing::Window { at_ms: self.at_ms, dur_ms: self.dur_ms }
    }

    fn validate(&self, c: &Check) -> Result<(), String> {
        c.window(self.at_ms, self.dur_ms)?;
        c.node(&self.node)?;
        let (offset_ms, drift_permille) = (self.offset_ms, self.drift_permille);
        if offset_ms.unsigned_abs() > caps::SKEW_MS_MAX {
            return Err(format!("offset_ms = {offset_ms} is beyond ±{}", caps::SKEW_MS_MAX));
        }
        if drift_permille <= -1000 || drift_permille > caps::DRIFT_PERMILLE_MAX {
            return Err(format!(
                "drift_permille = {drift_permille} is out of range (-999..={})",
                caps::DRIFT_PERMILLE_MAX
            ));
        }
        Ok(())
    }

    fn size(&self) -> Size {
        Size {
            breadth: 1,
            magnitude: self.dur_ms + self.offset_ms.unsigned_abs() + u64::from(self.drift_permille.unsigned_abs()),
            start: self.at_ms,
        }
    }

    fn narrowings(&self, n: &Narrowing) -> Vec<FaultEvent> {
        let mut v: Vec<FaultEvent> = Vec::new();
        for o in toward_zero(self.offset_ms) {
            v.push(Skew { offset_ms: o, ..self.clone() }.into());
        }
        for d in toward_zero(i64::from(self.drift_permille)) {
            let drift_permille = i32::try_from(d).expect("toward zero from an i32");
            v.push(Skew { drift_permille, ..self.clone() }.into());
        }
        for (at_ms, dur_ms) in windows(self.at_ms, self.dur_ms, n.safety_ms) {
            v.push(Skew { at_ms, dur_ms, ..self.clone() }.into());
        }
        v
    }

    fn aim(&mut self) -> Aim<'_> {
        Aim::At(&mut self.at_ms)
    }

    fn hold_ms(&self) -> Option<u64> {
        None
    }

    fn describe(&self) -> String {
        format!(
            "{}'s wall clock is off by {} ms, its clocks drift {} permille",
            self.node, self.offset_ms, self.drift_permille
        )
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
        // The node's observer answers the clock seam from a skewed clock.
        Real::Plays
    }
}
