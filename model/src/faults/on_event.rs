//! `on_event`: a fault on a predicate: when a node emits an engine event
//! for the `nth` time, crash, pause or stop it, or fill its disk (armed by
//! the recorder; not drawn by a count: a profile's `[[trigger]]`s, or a
//! replay file).

use super::{Aim, Check, Cx, Fault, FaultEvent, Kind, Real, Shown, Target, Targets, Timing};
use super::common::{action_breadth, smaller, Narrowing, Size, DUR_MIN_MS};
use super::common::{validate_trigger, CrashMode, Gen, TriggerAction};
use super::play::full_disk;
use serde::{Deserialize, Serialize};

/// When `node` (any node if `None`) emits the engine event `event` (its
/// name, e.g. `PreCommitted`) for the `nth` time, `action` it for `dur_ms`
/// (crash: down time; pause: frozen time; stop: down time; disk_full: the
/// time every disk operation fails).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnEvent {
    pub node: Option<String>,
    pub event: String,
    pub nth: u32,
    pub action: TriggerAction,
    pub dur_ms: u64,
}

impl Kind for OnEvent {
    const NAME: &'static str = "on_event";
    const TARGETS: Targets = Targets::AnyNode;
    const COLOUR: &'static str = "#bc4749";
    const DRAW: Option<fn(&mut Gen) -> FaultEvent> = None;
}

impl Fault for OnEvent {
    fn timing(&self) -> Timing {
        Timing::Predicate
    }

    fn validate(&self, c: &Check) -> Result<(), String> {
        match (&self.node, self.action) {
            (Some(n), TriggerAction::DiskFull) => c.disk_node(n)?,
            (None, TriggerAction::DiskFull) => return Err("a disk_full trigger needs a node with a disk".into()),
            (Some(n), _) => c.node(n)?,
            (None, _) => {}
        }
        validate_trigger(&self.event, self.nth, self.dur_ms)
    }

    fn size(&self) -> Size {
        Size {
            breadth: action_breadth(self.action) + u64::from(self.node.is_none()),
            magnitude: u64::from(self.nth) + self.dur_ms,
            start: 0,
        }
    }

    /// A gentler action, a lower `nth`, a shorter hold, one node.
    fn narrowings(&self, n: &Narrowing) -> Vec<FaultEvent> {
        let mut v: Vec<FaultEvent> = Vec::new();
        if self.action == TriggerAction::Crash {
            for gentler in [TriggerAction::Stop, TriggerAction::Pause] {
                v.push(OnEvent { action: gentler, ..self.clone() }.into());
            }
        }
        for k in smaller(u64::from(self.nth), 1) {
            let nth = u32::try_from(k).expect("smaller than a u32");
            v.push(OnEvent { nth, ..self.clone() }.into());
        }
        for d in smaller(self.dur_ms, DUR_MIN_MS) {
            v.push(OnEvent { dur_ms: d, ..self.clone() }.into());
        }
        if self.node.is_none() {
            for x in n.nodes {
                v.push(OnEvent { node: Some(x.clone()), ..self.clone() }.into());
            }
        }
        v
    }

    fn aim(&mut self) -> Aim<'_> {
        Aim::Nth(&mut self.nth)
    }

    fn hold_ms(&self) -> Option<u64> {
        Some(self.dur_ms)
    }

    fn describe(&self) -> String {
        format!(
            "{} when {} emits {} for the {}. time",
            self.action.kind(),
            self.node.as_deref().unwrap_or("a node"),
            self.event,
            self.nth
        )
    }

    fn nodes(&self) -> Option<Vec<String>> {
        self.node.clone().map(|n| vec![n])
    }

    /// The trigger is recorded (`on_event`, with the node and the cause),
    /// then its action is played on the node that emitted the event.
    fn start(&self, cx: &mut Cx, t: &mut dyn Target) -> bool {
        let (node, cause) = cx.fired();
        let (node, cause) = (node.to_string(), cause.to_string());
        let note = format!("{{\"node\":\"{node}\",\"cause\":\"{cause}\",\"fault\":{}}}", cx.detail);
        t.note(&Shown { kind: Self::NAME, detail: &note });
        let played = match self.action {
            TriggerAction::Crash => t.crash(&node, &cause, CrashMode::KeepAll, false),
            TriggerAction::Pause => t.pause(&node, &cx.shown("pause")),
            TriggerAction::Stop => t.stop(&node, &cx.shown("stop")),
            TriggerAction::DiskFull => t.open(cx.index, &full_disk(&node), &cx.shown("disk_errors")),
        };
        if played {
            match self.action {
                TriggerAction::Crash | TriggerAction::Stop => cx.restart_after(&node, self.dur_ms),
                TriggerAction::Pause => {
                    let detail = cx.detail.to_string();
                    cx.resume_after(&node, self.dur_ms, &detail);
                }
                TriggerAction::DiskFull => cx.close_disk_after(&node, self.dur_ms),
            }
        }
        played
    }

    fn end(&self, _: &mut Cx, _: &mut dyn Target) {}

    /// The node process counts the event in the run's shared counters
    /// and acts on itself when it fires; the sink's own system (a real
    /// PostgreSQL) emits no engine events while the job runs (its commits
    /// are read from the server afterwards), so a trigger on it never fires.
    fn real(&self) -> Real {
        if self.action == TriggerAction::DiskFull {
            Real::Skips("disk faults need a fault-injecting file system")
        } else if self.node.as_deref() == Some(super::common::SYSTEM_NODE) {
            Real::Skips("the sink's system is a real server: its commits are read after the run, no event of it can fire a trigger")
        } else {
            Real::Plays
        }
    }
}
