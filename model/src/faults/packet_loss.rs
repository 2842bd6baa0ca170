//! `packet_loss`: a share of all network messages is lost for a window.

use super::{Aim, Check, Cx, Fault, FaultEvent, Kind, Real, Target, Targets, Timing, Window};
use super::common::{Narrowing, Size, magnitude_window};
use super::common::Gen;
use serde::{Deserialize, Serialize};

/// Lose `permille` of all messages for a window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacketLoss {
    pub at_ms: u64,
    pub dur_ms: u64,
    pub permille: u32,
}

impl Kind for PacketLoss {
    const NAME: &'static str = "packet_loss";
    const TARGETS: Targets = Targets::Network;
    const COLOUR: &'static str = "#e9c46a";
    const DRAW: Option<fn(&mut Gen) -> FaultEvent> = Some(draw);
}

fn draw(g: &mut Gen) -> FaultEvent {
    let at_ms = g.at();
    PacketLoss { at_ms, dur_ms: g.rng.range(100, 800), permille: g.rng.range(20, 300) as u32 }.into()
}

impl Fault for PacketLoss {
    fn timing(&self) -> Timing {
        Timing::Window { at_ms: self.at_ms, dur_ms: self.dur_ms }
    }

    fn validate(&self, c: &Check) -> Result<(), String> {
        c.window(self.at_ms, self.dur_ms)?;
        c.permille(self.permille)
    }

    fn size(&self) -> Size {
        Size { breadth: 1, magnitude: self.dur_ms + u64::from(self.permille), start: self.at_ms }
    }

    fn narrowings(&self, n: &Narrowing) -> Vec<FaultEvent> {
        magnitude_window((self.at_ms, self.dur_ms), u64::from(self.permille), n.safety_ms, |at_ms, dur_ms, m| {
            PacketLoss { at_ms, dur_ms, permille: u32::try_from(m).expect("no larger than a u32") }.into()
        })
    }

    fn aim(&mut self) -> Aim<'_> {
        Aim::At(&mut self.at_ms)
    }

    fn hold_ms(&self) -> Option<u64> {
        None
    }

    fn describe(&self) -> String {
        format!("{} of all network messages are dropped", super::pct(self.permille))
    }

    fn nodes(&self) -> Option<Vec<String>> {
        None
    }

    fn start(&self, cx: &mut Cx, t: &mut dyn Target) -> bool {
        t.open(cx.index, &Window::Loss { permille: self.permille }, &cx.shown(Self::NAME))
    }

    fn end(&self, cx: &mut Cx, t: &mut dyn Target) {
        t.close(cx.index, &Window::Loss { permille: self.permille }, &cx.shown(Self::NAME));
    }

    fn real(&self) -> Real {
        // Each sender drops that share of its messages, at random.
        Real::Plays
    }
}
