//! **Predicates armed by a schedule**: the faults that start when a node
//! reaches a fault point (`crash_at_point`) or emits an engine event
//! (`on_event`) for the `nth` time. What counts as an occurrence, and the
//! cause a firing is recorded with, is decided here for both backends: the
//! simulator's recorder counts in memory, real mode's node processes count
//! in counters shared by every process of the run (so a count goes on
//! across restarts and, for a rule without a node, over all nodes, as in
//! simulation) and act on themselves at the very instant the predicate
//! holds.

use super::common::TriggerAction;
use super::FaultEvent;
use exactsim_engine::observe::FaultPoint;
use serde::{Deserialize, Serialize};

/// What a rule counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum On {
    /// Reaching a fault point.
    Point(FaultPoint),
    /// Emitting an engine event, by its name (`PreCommitted`).
    Event(String),
}

/// One armed predicate of a schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// The schedule's event it starts.
    pub index: usize,
    pub on: On,
    /// The node whose occurrences count; `None`: every node's.
    pub node: Option<String>,
    /// It fires on this occurrence (1-based), once.
    pub nth: u32,
    /// What happens to the node that reached it.
    pub action: TriggerAction,
}

impl Rule {
    /// An occurrence of `on` at `node` counts for this rule.
    pub fn counts(&self, node: &str, on: &On) -> bool {
        self.on == *on && self.node.as_deref().is_none_or(|n| n == node)
    }

    /// The rule fires when its count reaches `count` (the count after the
    /// occurrence).
    pub fn fires_at(&self, count: u64) -> bool {
        count == u64::from(self.nth)
    }

    /// The cause a firing is recorded with.
    pub fn cause(&self) -> String {
        match &self.on {
            On::Point(p) => format!("fault point {}", p.name()),
            On::Event(e) => format!("on event {e} #{}", self.nth),
        }
    }
}

/// The predicates of `events`, in schedule order.
pub fn rules(events: &[FaultEvent]) -> Vec<Rule> {
    events
        .iter()
        .enumerate()
        .filter_map(|(index, e)| match e {
            FaultEvent::CrashAtPoint(c) => Some(Rule {
                index,
                on: On::Point(c.point),
                node: c.node.clone(),
                nth: c.nth,
                action: TriggerAction::Crash,
            }),
            FaultEvent::OnEvent(t) => {
                Some(Rule { index, on: On::Event(t.event.clone()), node: t.node.clone(), nth: t.nth, action: t.action })
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::{CrashAtPoint, OnEvent};
    use crate::schedule::CrashMode;

    #[test]
    fn predicates_count_their_node_or_every_node() {
        let events: Vec<FaultEvent> = vec![
            CrashAtPoint {
                point: FaultPoint::BetweenCommits,
                node: None,
                nth: 2,
                down_ms: 100,
                disk: CrashMode::KeepAll,
            }
            .into(),
            OnEvent {
                node: Some("worker-1".into()),
                event: "PreCommitted".into(),
                nth: 1,
                action: TriggerAction::Pause,
                dur_ms: 50,
            }
            .into(),
        ];
        let r = rules(&events);
        assert_eq!(r.len(), 2);
        let point = On::Point(FaultPoint::BetweenCommits);
        assert!(r[0].counts("worker-0", &point) && r[0].counts("broker", &point));
        assert!(!r[0].counts("worker-0", &On::Point(FaultPoint::DuringRecovery)));
        assert!(!r[0].fires_at(1) && r[0].fires_at(2) && !r[0].fires_at(3));
        assert_eq!(r[0].cause(), "fault point between_commits");
        let ev = On::Event("PreCommitted".into());
        assert!(r[1].counts("worker-1", &ev) && !r[1].counts("worker-0", &ev));
        assert_eq!((r[1].index, r[1].action), (1, TriggerAction::Pause));
        assert_eq!(r[1].cause(), "on event PreCommitted #1");
    }
}
