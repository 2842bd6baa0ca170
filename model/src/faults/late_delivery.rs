//! `late_delivery`: during a window, the next requests and control
//! messages a node sends are held back and leave late (heartbeats, data and
//! replies are never held). It lands (and is counted) when a message is
//! held: the target records that, not the window's start (in real mode,
//! the sending process logs each message it holds).

use super::{Aim, Check, Cx, Fault, FaultEvent, Kind, Real, Target, Targets, Timing, Window};
use super::common::{smaller, windows, Narrowing, Size};
use super::common::{caps, Gen};
use exactsim_engine::proto::Msg;
use serde::{Deserialize, Serialize};

/// During the window, the next `count` requests and control messages
/// `from` sends (to `to` only, if given) are held back and leave
/// `delay_ms` later.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LateDelivery {
    pub at_ms: u64,
    pub dur_ms: u64,
    pub from: String,
    #[serde(default)]
    pub to: Option<String>,
    pub delay_ms: u64,
    pub count: u32,
}

impl Kind for LateDelivery {
    const NAME: &'static str = "late_delivery";
    const TARGETS: Targets = Targets::AnyNode;
    const COLOUR: &'static str = "#2a9d8f";
    const DRAW: Option<fn(&mut Gen) -> FaultEvent> = Some(draw);
}

fn draw(g: &mut Gen) -> FaultEvent {
    let at_ms = g.at();
    let dur_ms = g.rng.range(100, 1000);
    let from = g.node();
    let to = if g.rng.chance(1, 2) && from != "broker" { Some("broker".to_string()) } else { None };
    // Held past a retry budget, or a heartbeat timeout: seconds.
    let delay_ms = g.outage().max(g.cfg.rpc_timeout_ms);
    // A single message, or a whole call with its retries.
    let count = if g.rng.chance(1, 2) { 1 } else { g.rng.range(2, g.cfg.rpc_retries as u64 + 3) as u32 };
    LateDelivery { at_ms, dur_ms, from, to, delay_ms, count }.into()
}

/// How the history shows one message held back by late-delivery window
/// `index` (the detail of its `FaultStarted`): the window, sender and
/// destination (empty if not a node of the run), the message's name and
/// the delay. The simulator and a real-mode node write the same.
pub fn held_detail(index: usize, from: &str, to: Option<&str>, msg: &Msg, delay_ms: u64) -> String {
    let what = match msg {
        Msg::Req { body, .. } => format!("{body:?}"),
        other => format!("{other:?}"),
    };
    let name: String = what.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
    format!(
        "{{\"kind\":\"late_delivery\",\"event\":{index},\"from\":\"{from}\",\"to\":\"{}\",\"message\":\"{name}\",\"delay_ms\":{delay_ms}}}",
        to.unwrap_or_default()
    )
}

impl LateDelivery {
    fn window(&self) -> Window<'_> {
        Window::Late { from: &self.from, to: self.to.as_deref(), delay_ms: self.delay_ms, count: self.count }
    }
}

impl Fault for LateDelivery {
    fn timing(&self) -> Timing {
        Timing::Window { at_ms: self.at_ms, dur_ms: self.dur_ms }
    }

    fn validate(&self, c: &Check) -> Result<(), String> {
        c.window(self.at_ms, self.dur_ms)?;
        c.node(&self.from)?;
        if let Some(t) = &self.to {
            c.node(t)?;
        }
        let (delay_ms, count) = (self.delay_ms, self.count);
        if delay_ms == 0 || delay_ms > caps::DURATION_MS_MAX {
            return Err(format!("delay_ms = {delay_ms} is out of range (1..={})", caps::DURATION_MS_MAX));
        }
        if count == 0 || count > caps::FAULTS_PER_KIND_MAX {
            return Err(format!("count = {count} is out of range (1..={})", caps::FAULTS_PER_KIND_MAX));
        }
        Ok(())
    }

    fn size(&self) -> Size {
        Size {
            breadth: 1 + u64::from(self.to.is_none()),
            magnitude: self.dur_ms + self.delay_ms + u64::from(self.count),
            start: self.at_ms,
        }
    }

    fn narrowings(&self, n: &Narrowing) -> Vec<FaultEvent> {
        let mut v: Vec<FaultEvent> = Vec::new();
        if self.to.is_none() {
            for t in n.nodes.iter().filter(|x| **x != self.from) {
                v.push(LateDelivery { to: Some(t.clone()), ..self.clone() }.into());
            }
        }
        for c in smaller(u64::from(self.count), 1) {
            let count = u32::try_from(c).expect("smaller than a u32");
            v.push(LateDelivery { count, ..self.clone() }.into());
        }
        for d in smaller(self.delay_ms, 1) {
            v.push(LateDelivery { delay_ms: d, ..self.clone() }.into());
        }
        for (at_ms, dur_ms) in windows(self.at_ms, self.dur_ms, n.safety_ms) {
            v.push(LateDelivery { at_ms, dur_ms, ..self.clone() }.into());
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
        format!("messages from {} leave {} ms late", self.from, self.delay_ms)
    }

    fn nodes(&self) -> Option<Vec<String>> {
        Some(vec![self.from.clone()])
    }

    fn start(&self, cx: &mut Cx, t: &mut dyn Target) -> bool {
        t.open(cx.index, &self.window(), &cx.shown(Self::NAME))
    }

    fn end(&self, cx: &mut Cx, t: &mut dyn Target) {
        t.close(cx.index, &self.window(), &cx.shown(Self::NAME));
    }

    fn real(&self) -> Real {
        // The sending node's send hook holds the message (node/src/control.rs).
        Real::Plays
    }
}
