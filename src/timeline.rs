//! HTML timeline of a run: one self-contained file (inline CSS, inline SVG
//! and a few lines of inline JS for a time cursor; no network, no external
//! fonts or scripts).
//!
//! Two halves. [`Model::build`] turns a history into what is drawn, in
//! plain data: one swimlane per node; fault windows and node down periods
//! as bands (labelled once per window); checkpoint, commit, recovery and
//! failure markers; the healing point, the recoveries and the violations as
//! vertical lines. Every tooltip is a plain sentence ("checkpoint 3
//! completed ..."), never a debug dump. [`render`] draws the model as SVG and
//! fills the page template `timeline.html` (its CSS and JS), included at
//! build time. The page's title names the scenario, seed, profile, mode and
//! the planted bug; the page shows the command that reproduces the run. The
//! chart is drawn for a 1280 px window (it scales to the window's width)
//! and its time axis stays at the top of the window while scrolling.
//!
//! Runs can hold tens of thousands of events: high-volume events that are not
//! drawn (appends, barriers, snapshots) are skipped, and a marker kind with
//! more than [`MAX_PER_KIND`] occurrences is thinned evenly.

use exactsim_engine::config::Mutant;
use exactsim_engine::observe::Event;
use exactsim_model::history::{Ev, History, SimEvent};
use exactsim_model::report::{RunReport, ViolationReport};
use exactsim_model::schedule::FaultEvent;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Width of the chart in SVG units (lane labels included); the page scales
/// it to the window, 1:1 in a 1280 px window.
const CHART_W: f64 = 1200.0;
/// The lane label column.
const LEFT: f64 = 96.0;
const RIGHT_PAD: f64 = 24.0;
const LANE: f64 = 34.0;
const LABEL_ROW: f64 = 14.0;
const AXIS_H: f64 = 22.0;
/// At most this many markers of one kind are drawn; beyond, they are thinned.
pub const MAX_PER_KIND: usize = 3000;
/// Tooltips are cut to this many characters.
const TIP_CHARS: usize = 300;
/// The page around the chart: CSS, the layout and the cursor script, with
/// `{{name}}` slots filled by [`render`].
const TEMPLATE: &str = include_str!("timeline.html");

/// The metric plots under the lanes: height of one and the gap above it.
const PLOT_H: f64 = 46.0;
const PLOT_GAP: f64 = 10.0;
/// What each plot shows: its label and its value in a sample.
type Plot = (&'static str, fn(&exactsim_model::metrics::Sample) -> u64);
const PLOTS: [Plot; 3] = [
    ("records in/s", |s| s.records_in_per_s),
    ("checkpoint ms", |s| s.checkpoint_ms),
    ("backlog", |s| s.backlog_records),
];

/// Escape text for HTML/SVG content and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// `s` cut to `n` characters, with an ellipsis when cut.
fn cut(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        None => s.to_string(),
        Some((i, _)) => format!("{}\u{2026}", &s[..i]),
    }
}

fn ms(t_us: u64) -> f64 {
    t_us as f64 / 1000.0
}

fn fault_color(kind: &str) -> &'static str {
    exactsim_model::schedule::colour(kind)
}

/// A fault window in plain words, from the schedule entry the simulator
/// logged (its JSON); the raw text when it does not parse.
pub fn describe_fault(detail: &str) -> String {
    match serde_json::from_str::<FaultEvent>(detail) {
        Ok(f) => f.fault().describe(),
        Err(_) => detail.to_string(),
    }
}

/// The nodes a fault window hits (its kind's answer); `None` for the whole
/// network.
fn fault_nodes(detail: &str, lanes: &[String]) -> Option<Vec<String>> {
    match serde_json::from_str::<FaultEvent>(detail) {
        Ok(f) => f.fault().nodes(),
        // Not an event of the schedule (a held message, a trigger's note):
        // the lanes whose name it quotes, else everything.
        Err(_) => {
            let hit: Vec<String> = lanes.iter().filter(|n| detail.contains(&format!("\"{n}\""))).cloned().collect();
            (!hit.is_empty()).then_some(hit)
        }
    }
}

/// An engine event in plain words, for a marker's tooltip.
pub fn describe_event(ev: &Event) -> String {
    let reason = |r: &str| cut(r, 160);
    match ev {
        Event::CheckpointTriggered { attempt, ckpt } => {
            format!("checkpoint {ckpt} triggered: barriers injected at the sources (attempt {attempt})")
        }
        Event::CheckpointCompleted { ckpt, offsets, finished, .. } => format!(
            "checkpoint {ckpt} completed: its completion record is durable; source offsets {}{}",
            offsets.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(", "),
            if *finished { "; it covers the whole input" } else { "" }
        ),
        Event::CheckpointFailed { ckpt, reason: r, .. } => format!("checkpoint {ckpt} failed: {}", reason(r)),
        Event::RecoveryStarted { attempt, from, reason: r } => match from {
            Some(c) => format!("recovery (attempt {attempt}) from checkpoint {c}: {}", reason(r)),
            None => format!("start (attempt {attempt}) from scratch, no checkpoint: {}", reason(r)),
        },
        Event::JobFinished { ckpt, .. } => format!("job finished: checkpoint {ckpt} covers all input and is committed"),
        Event::Rescaled { attempt, from, to, ckpt } => match ckpt {
            Some(c) => {
                format!("attempt {attempt} rescales checkpoint {c} from {from} to {to} subtasks: key groups move")
            }
            None => format!("attempt {attempt} starts with {to} subtasks (submitted with {from})"),
        },
        Event::SubtaskAdopted { task, adopted, .. } => {
            format!("{task} recovered what removed subtask {adopted} left: re-commits, aborts, fencing")
        }
        Event::PreCommitted { task, ckpt, txn, epoch, records, .. } => {
            format!("{task} pre-committed transaction {txn} (epoch {epoch}, {records} records) for checkpoint {ckpt}")
        }
        Event::CommitConfirmed { task, ckpt, txn, epoch } => {
            format!("{task} committed transaction {txn} (epoch {epoch}) of checkpoint {ckpt}")
        }
        Event::CommitFailed { task, ckpt, txn, reason: r, .. } => {
            format!("{task} could not commit transaction {txn} of checkpoint {ckpt}: {}", reason(r))
        }
        Event::TaskFailed { task, attempt, reason: r } => format!("{task} failed (attempt {attempt}): {}", reason(r)),
        Event::TxnCommitted { txn, epoch, out } => {
            format!("broker committed transaction {txn} (epoch {epoch}): {} records now visible", out.len())
        }
        Event::TxnCommitReplayed { txn, epoch, out } => format!(
            "broker found the commit of transaction {txn} (epoch {epoch}, {} records) in its log at restart",
            out.len()
        ),
        Event::TxnAborted { txn, epoch, reason: r } => {
            format!("broker aborted transaction {txn} (epoch {epoch}): {}", reason(r))
        }
        Event::FatalError { reason: r } => format!("fatal error, the node asks to be restarted: {}", reason(r)),
        other => {
            // Not drawn as a marker; a short name is enough.
            let d = format!("{other:?}");
            cut(d.split([' ', '{', '(']).next().unwrap_or(""), 60)
        }
    }
}

/// The markers drawn, one per kind of event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mk {
    Trigger,
    Completed,
    CkptFailed,
    Recovery,
    Finished,
    PreCommit,
    CommitConfirmed,
    CommitFailed,
    TaskFailed,
    TxnCommitted,
    TxnAborted,
    Fatal,
}

impl Mk {
    const ALL: [Mk; 12] = [
        Mk::Trigger,
        Mk::Completed,
        Mk::CkptFailed,
        Mk::Recovery,
        Mk::Finished,
        Mk::PreCommit,
        Mk::CommitConfirmed,
        Mk::CommitFailed,
        Mk::TaskFailed,
        Mk::TxnCommitted,
        Mk::TxnAborted,
        Mk::Fatal,
    ];

    fn of(ev: &Ev) -> Option<Mk> {
        Some(match ev {
            Ev::Engine(Event::CheckpointTriggered { .. }) => Mk::Trigger,
            Ev::Engine(Event::CheckpointCompleted { .. }) => Mk::Completed,
            Ev::Engine(Event::CheckpointFailed { .. }) => Mk::CkptFailed,
            Ev::Engine(Event::RecoveryStarted { .. }) => Mk::Recovery,
            Ev::Engine(Event::JobFinished { .. }) => Mk::Finished,
            Ev::Engine(Event::PreCommitted { .. }) => Mk::PreCommit,
            Ev::Engine(Event::CommitConfirmed { .. }) => Mk::CommitConfirmed,
            Ev::Engine(Event::CommitFailed { .. }) => Mk::CommitFailed,
            Ev::Engine(Event::TaskFailed { .. }) => Mk::TaskFailed,
            Ev::Engine(Event::TxnCommitted { .. }) | Ev::Engine(Event::TxnCommitReplayed { .. }) => Mk::TxnCommitted,
            Ev::Engine(Event::TxnAborted { .. }) => Mk::TxnAborted,
            Ev::Engine(Event::FatalError { .. }) => Mk::Fatal,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Mk::Trigger => "checkpoint triggered",
            Mk::Completed => "checkpoint completed",
            Mk::CkptFailed => "checkpoint failed",
            Mk::Recovery => "recovery started",
            Mk::Finished => "job finished",
            Mk::PreCommit => "pre-committed",
            Mk::CommitConfirmed => "commit confirmed",
            Mk::CommitFailed => "commit failed",
            Mk::TaskFailed => "task failed",
            Mk::TxnCommitted => "broker txn committed",
            Mk::TxnAborted => "broker txn aborted",
            Mk::Fatal => "fatal error",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Mk::Trigger => "m-trig",
            Mk::Completed => "m-done",
            Mk::CkptFailed => "m-cfail",
            Mk::Recovery => "m-rec",
            Mk::Finished => "m-fin",
            Mk::PreCommit => "m-pre",
            Mk::CommitConfirmed => "m-commit",
            Mk::CommitFailed => "m-commitfail",
            Mk::TaskFailed => "m-taskfail",
            Mk::TxnCommitted => "m-txc",
            Mk::TxnAborted => "m-txa",
            Mk::Fatal => "m-fatal",
        }
    }

    /// The shape, centred on (`cx`, `cy`), the middle of a lane. `label`:
    /// the checkpoint id next to a completion.
    fn shape(self, cx: f64, cy: f64, label: Option<u64>) -> String {
        match self {
            Mk::Trigger => format!(
                r##"<line x1="{cx:.1}" y1="{:.1}" x2="{cx:.1}" y2="{:.1}" stroke="#868e96" stroke-width="1.5"/>"##,
                cy - 7.0,
                cy + 7.0
            ),
            Mk::Completed => {
                let mut s = format!(
                    r##"<path d="M{cx:.1} {:.1}l6 6l-6 6l-6-6z" fill="#2b9348" stroke="#fff" stroke-width="0.8"/>"##,
                    cy - 6.0
                );
                if let Some(id) = label {
                    let _ = write!(
                        s,
                        r##"<text x="{:.1}" y="{:.1}" fill="#2b9348" font-size="9">{id}</text>"##,
                        cx + 6.0,
                        cy - 6.0
                    );
                }
                s
            }
            Mk::CkptFailed => format!(
                r##"<path d="M{:.1} {:.1}l8 8m0-8l-8 8" stroke="#e5383b" stroke-width="2.2"/>"##,
                cx - 4.0,
                cy - 4.0
            ),
            Mk::Recovery => format!(
                r##"<line x1="{cx:.1}" y1="{:.1}" x2="{cx:.1}" y2="{:.1}" stroke="#f77f00" stroke-width="2"/>"##,
                cy - 9.0,
                cy + 9.0
            ),
            Mk::Finished => format!(
                r##"<path d="M{cx:.1} {:.1}v20" stroke="#000" stroke-width="1.5"/><path d="M{cx:.1} {:.1}l11 4l-11 4z" fill="#000"/>"##,
                cy - 10.0,
                cy - 10.0
            ),
            Mk::PreCommit => format!(r##"<circle cx="{cx:.1}" cy="{:.1}" r="3.5" fill="#1d4ed8"/>"##, cy - 7.0),
            Mk::CommitConfirmed => format!(r##"<circle cx="{cx:.1}" cy="{:.1}" r="3.5" fill="#7b2cbf"/>"##, cy + 7.0),
            Mk::CommitFailed => format!(
                r##"<rect x="{:.1}" y="{:.1}" width="9" height="9" fill="#d00000" stroke="#fff" stroke-width="0.8"/>"##,
                cx - 4.5,
                cy - 4.5
            ),
            Mk::TaskFailed => format!(
                r##"<path d="M{cx:.1} {:.1}l5.5 10h-11z" fill="#d00000" stroke="#fff" stroke-width="0.8"/>"##,
                cy - 6.0
            ),
            Mk::TxnCommitted => format!(
                r##"<line x1="{cx:.1}" y1="{:.1}" x2="{cx:.1}" y2="{:.1}" stroke="#7b2cbf" stroke-width="2"/>"##,
                cy - 10.0,
                cy + 10.0
            ),
            Mk::TxnAborted => format!(
                r##"<line x1="{cx:.1}" y1="{:.1}" x2="{cx:.1}" y2="{:.1}" stroke="#adb5bd" stroke-width="2"/>"##,
                cy - 10.0,
                cy + 10.0
            ),
            Mk::Fatal => {
                let mut pts = String::new();
                for i in 0..10 {
                    let r = if i % 2 == 0 { 8.0 } else { 3.5 };
                    let a = std::f64::consts::PI * (i as f64) / 5.0 - std::f64::consts::FRAC_PI_2;
                    let _ = write!(pts, "{:.1},{:.1} ", cx + r * a.cos(), cy + r * a.sin());
                }
                format!(r##"<polygon points="{}" fill="#d00000" stroke="#fff" stroke-width="0.6"/>"##, pts.trim_end())
            }
        }
    }
}

/// Sort key putting `worker-2` before `worker-10`.
fn natural_key(s: &str) -> (String, u64, String) {
    let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (head, num) = s.split_at(s.len() - digits);
    (head.to_string(), num.parse().unwrap_or(0), s.to_string())
}

/// The swimlanes: the engine's fixed nodes, then every other node seen
/// (naturally sorted), then the simulator.
fn lanes_of(history: &History) -> Vec<String> {
    let fixed = ["coordinator", "broker", "store"];
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for e in &history.events {
        seen.insert(e.node.clone());
        if let Ev::Sim(SimEvent::NodeCrashed { node, .. }) | Ev::Sim(SimEvent::NodeRestarted { node }) = &e.ev {
            seen.insert(node.clone());
        }
    }
    let mut others: Vec<&String> =
        seen.iter().filter(|n| !fixed.contains(&n.as_str()) && n.as_str() != "sim" && !n.is_empty()).collect();
    others.sort_by_key(|n| natural_key(n));
    let mut lanes: Vec<String> = fixed.iter().map(|s| s.to_string()).collect();
    lanes.extend(others.into_iter().cloned());
    lanes.push("sim".into());
    lanes
}

/// A tick step from the 1-2-5 series giving at most ~14 ticks.
fn tick_step_us(end_us: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1u64, 2, 5] {
            let s = step * m;
            if end_us / s <= 14 {
                return s;
            }
        }
        step *= 10;
    }
}

fn fmt_ms(t_us: u64, step_us: u64) -> String {
    if step_us.is_multiple_of(1000) {
        format!("{} ms", t_us / 1000)
    } else {
        let s = format!("{:.3}", ms(t_us));
        format!("{} ms", s.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// A fault window or a node's down period.
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    pub from_us: u64,
    pub to_us: u64,
    /// The lanes it covers; its label is drawn once, on the first.
    pub lanes: Vec<usize>,
    /// A network-wide fault: one band across every lane.
    pub network: bool,
    /// The fault kind (`partition`), or `down` for a node down period.
    pub kind: String,
    pub tip: String,
}

impl Band {
    pub fn down(&self) -> bool {
        self.kind == "down"
    }
}

/// One event drawn on its node's lane.
#[derive(Clone, Debug, PartialEq)]
pub struct Marker {
    pub t_us: u64,
    pub lane: usize,
    pub mk: Mk,
    /// The checkpoint id written next to a completion.
    pub label: Option<u64>,
    pub tip: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    Recovery,
    Healed,
    Violation,
}

/// A vertical line across every lane, labelled above them.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub t_us: u64,
    pub kind: LineKind,
    pub label: String,
    /// Tooltip lines.
    pub tip: Vec<String>,
}

/// What the timeline draws, in plain data.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub lanes: Vec<String>,
    /// The last event's time (at least 1).
    pub end_us: u64,
    pub bands: Vec<Band>,
    pub markers: Vec<Marker>,
    pub lines: Vec<Line>,
    /// Events per marker kind (before thinning).
    pub counts: BTreeMap<Mk, usize>,
    /// (kind, events, 1 in how many drawn) for thinned kinds.
    pub thinned: Vec<(Mk, usize, usize)>,
    pub fault_kinds: BTreeSet<String>,
}

/// Violations closer than this share one line and one label, in thousandths
/// of the run's duration (about 3 px).
const VIOLATION_MERGE_PERMILLE: u64 = 3;

impl Model {
    pub fn build(history: &History, violations: &[ViolationReport]) -> Model {
        let lanes = lanes_of(history);
        let sim_lane = lanes.len() - 1;
        let lane_of: BTreeMap<&str, usize> = lanes.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
        let end_us = history.events.iter().map(|e| e.t_us).max().unwrap_or(0).max(1);
        let node_lanes = |nodes: &[String]| -> Vec<usize> {
            nodes.iter().filter_map(|n| lane_of.get(n.as_str()).copied()).collect()
        };

        // ---- counts (for thinning) and bands ----
        let mut counts: BTreeMap<Mk, usize> = BTreeMap::new();
        let mut bands: Vec<Band> = Vec::new();
        let mut open: Vec<(String, String, u64)> = Vec::new(); // (detail, kind, from)
        let mut down: BTreeMap<String, (u64, String)> = BTreeMap::new();
        let mut fault_kinds: BTreeSet<String> = BTreeSet::new();
        let fault_band = |detail: &str, kind: String, from: u64, to: u64, healed: bool| {
            let nodes = fault_nodes(detail, &lanes);
            let lanes_hit = nodes.as_deref().map(node_lanes).filter(|l| !l.is_empty());
            let network = lanes_hit.is_none();
            let tip = format!(
                "{kind}, {:.1}\u{2013}{:.1} ms{}: {}",
                ms(from),
                ms(to),
                if healed { " (ended by the healing)" } else { "" },
                describe_fault(detail)
            );
            Band {
                from_us: from,
                to_us: to,
                lanes: lanes_hit.unwrap_or_else(|| (0..lanes.len()).collect()),
                network,
                kind,
                tip: cut(&tip, TIP_CHARS),
            }
        };
        for e in &history.events {
            if let Some(k) = Mk::of(&e.ev) {
                *counts.entry(k).or_insert(0) += 1;
            }
            match &e.ev {
                Ev::Sim(SimEvent::FaultStarted { kind, detail }) => {
                    fault_kinds.insert(kind.clone());
                    open.push((detail.clone(), kind.clone(), e.t_us));
                }
                Ev::Sim(SimEvent::FaultEnded { detail, .. }) => {
                    if let Some(i) = open.iter().position(|(d, _, _)| d == detail) {
                        let (detail, kind, from) = open.remove(i);
                        bands.push(fault_band(&detail, kind, from, e.t_us, false));
                    }
                }
                Ev::Sim(SimEvent::NodeCrashed { node, cause, lost_bytes, torn_files }) => {
                    let mut c = cut(cause, 120);
                    if *lost_bytes > 0 || *torn_files > 0 {
                        let _ = write!(c, "; {lost_bytes} unsynced bytes lost, {torn_files} files torn");
                    }
                    down.entry(node.clone()).or_insert((e.t_us, c));
                }
                Ev::Sim(SimEvent::NodeRestarted { node }) => {
                    // A clean stop's (or a redeploy's) window ends when its node is back.
                    let stopped = |(d, k, _): &(String, String, u64)| {
                        exactsim_model::history::ENDS_AT_RESTART.contains(&k.as_str())
                            && fault_nodes(d, &lanes).is_some_and(|n| n.contains(node))
                    };
                    while let Some(i) = open.iter().position(stopped) {
                        let (detail, kind, from) = open.remove(i);
                        bands.push(fault_band(&detail, kind, from, e.t_us, false));
                    }
                    if let Some((from, cause)) = down.remove(node) {
                        bands.push(Band {
                            from_us: from,
                            to_us: e.t_us,
                            lanes: node_lanes(std::slice::from_ref(node)),
                            network: false,
                            kind: "down".into(),
                            tip: format!("{node} down {:.1}\u{2013}{:.1} ms: {cause}", ms(from), ms(e.t_us)),
                        });
                    }
                }
                _ => {}
            }
        }
        // Windows still open: the healing ends every fault (without a
        // `FaultEnded`); a node still down stays down to the end.
        for (detail, kind, from) in open {
            let to = if history.healed_at_us > from { history.healed_at_us } else { end_us };
            bands.push(fault_band(&detail, kind, from, to, true));
        }
        for (node, (from, cause)) in down {
            bands.push(Band {
                from_us: from,
                to_us: end_us,
                lanes: node_lanes(std::slice::from_ref(&node)),
                network: false,
                kind: "down".into(),
                tip: format!("{node} down from {:.1} ms to the end: {cause}", ms(from)),
            });
        }
        bands.sort_by_key(|b| (b.down(), b.from_us, b.to_us));
        let stride: BTreeMap<Mk, usize> = counts.iter().map(|(k, n)| (*k, n.div_ceil(MAX_PER_KIND).max(1))).collect();
        let thinned = counts.iter().filter(|(k, _)| stride[k] > 1).map(|(k, n)| (*k, *n, stride[k])).collect();

        // ---- markers and recovery lines ----
        let mut markers = Vec::new();
        let mut lines = Vec::new();
        let mut seen: BTreeMap<Mk, usize> = BTreeMap::new();
        // The parallelism of each rescaled attempt, for its recovery line.
        let rescaled: BTreeMap<u64, u32> = history
            .events
            .iter()
            .filter_map(|e| match &e.ev {
                Ev::Engine(Event::Rescaled { attempt, to, .. }) => Some((*attempt, *to)),
                _ => None,
            })
            .collect();
        for e in &history.events {
            let Some(k) = Mk::of(&e.ev) else { continue };
            let n = seen.entry(k).or_insert(0);
            *n += 1;
            if !(*n - 1).is_multiple_of(stride[&k]) {
                continue;
            }
            let Ev::Engine(ev) = &e.ev else { continue };
            let tip = cut(&format!("{:.3} ms, {}: {}", ms(e.t_us), e.node, describe_event(ev)), TIP_CHARS);
            if let Event::RecoveryStarted { attempt, from, .. } = ev {
                let from = from.map_or("scratch".to_string(), |c| format!("ckpt {c}"));
                let at = rescaled.get(attempt).map_or(String::new(), |p| format!(", {p} subtasks"));
                lines.push(Line {
                    t_us: e.t_us,
                    kind: LineKind::Recovery,
                    label: format!("recovery a{attempt} from {from}{at}"),
                    tip: vec![tip],
                });
                continue;
            }
            markers.push(Marker {
                t_us: e.t_us,
                lane: lane_of.get(e.node.as_str()).copied().unwrap_or(sim_lane),
                mk: k,
                label: match ev {
                    Event::CheckpointCompleted { ckpt, .. } => Some(*ckpt),
                    _ => None,
                },
                tip,
            });
        }
        if history.healed_at_us > 0 {
            lines.push(Line {
                t_us: history.healed_at_us,
                kind: LineKind::Healed,
                label: "healed (liveness phase)".into(),
                tip: vec![format!(
                    "healed at {:.3} ms: every fault ended and every node is up; the job must finish by {:.1} ms",
                    ms(history.healed_at_us),
                    ms(history.deadline_us)
                )],
            });
        }

        lines.extend(violation_lines(violations, end_us));
        Model { lanes, end_us, bands, markers, lines, counts, thinned, fault_kinds }
    }
}

/// The violations as lines: those at (nearly) the same time share one,
/// labelled with their checks and with up to 8 of them as its tip.
fn violation_lines(violations: &[ViolationReport], end_us: u64) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut timed: Vec<(u64, &ViolationReport)> = violations
        .iter()
        .filter_map(|v| v.t_ms.filter(|t| t.is_finite()).map(|t| ((t.max(0.0) * 1000.0).round() as u64, v)))
        .collect();
    timed.sort_by_key(|(t, _)| *t);
    let merge_us = (end_us * VIOLATION_MERGE_PERMILLE / 1000).max(1);
    let mut groups: Vec<(u64, Vec<&ViolationReport>)> = Vec::new();
    for (t, v) in timed {
        match groups.last_mut() {
            Some((gt, vs)) if t - *gt < merge_us => vs.push(v),
            _ => groups.push((t, vec![v])),
        }
    }
    for (t, vs) in groups {
        let mut checks: Vec<(String, usize)> = Vec::new();
        for v in &vs {
            let l = v.label();
            match checks.iter_mut().find(|c| c.0 == l) {
                Some(c) => c.1 += 1,
                None => checks.push((l, 1)),
            }
        }
        let label: Vec<String> =
            checks.iter().map(|(c, n)| if *n > 1 { format!("{c} \u{d7}{n}") } else { c.clone() }).collect();
        let mut tip: Vec<String> = vs
            .iter()
            .take(8)
            .map(|v| {
                let when = v.t_ms.map_or(String::new(), |t| format!(" at {t:.3} ms"));
                cut(&format!("{}{when}: {}", v.label(), v.message), TIP_CHARS)
            })
            .collect();
        if vs.len() > 8 {
            tip.push(format!("(+{} more)", vs.len() - 8));
        }
        lines.push(Line { t_us: t.min(end_us), kind: LineKind::Violation, label: label.join(", "), tip });
    }
    lines
}

/// A label above the lanes, for a line crossing all of them.
struct TopLabel {
    x: f64,
    text: String,
    color: &'static str,
    size: f64,
    bold: bool,
    row: usize,
    end_anchor: bool,
}

/// Greedy interval placement of the top labels into rows.
fn place_labels(labels: &mut [TopLabel]) -> usize {
    const MAX_ROWS: usize = 8;
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by(|&a, &b| labels[a].x.total_cmp(&labels[b].x));
    let mut row_end: Vec<f64> = Vec::new();
    for i in order {
        let l = &mut labels[i];
        let w = l.text.chars().count() as f64 * l.size * if l.bold { 0.68 } else { 0.6 } + 6.0;
        l.end_anchor = l.x + w > CHART_W - 2.0;
        let (start, end) = if l.end_anchor { (l.x - w, l.x) } else { (l.x, l.x + w) };
        let row = match row_end.iter().position(|&e| e <= start) {
            Some(r) => r,
            None if row_end.len() < MAX_ROWS => {
                row_end.push(f64::MIN);
                row_end.len() - 1
            }
            None => (0..row_end.len()).min_by(|&a, &b| row_end[a].total_cmp(&row_end[b])).unwrap_or(0),
        };
        row_end[row] = end;
        l.row = row;
    }
    row_end.len()
}

/// What the page says about the run besides its history.
pub struct RunInfo<'a> {
    pub profile: &'a str,
    pub mutant: Option<Mutant>,
    /// The command that reproduces the run.
    pub repro: &'a str,
    /// Fault kinds that landed, with counts.
    pub faults: &'a BTreeMap<String, u64>,
    /// The ids of the checks that ran.
    pub checks: &'a [String],
    pub violations: &'a [ViolationReport],
}

impl<'a> RunInfo<'a> {
    pub fn of(r: &'a RunReport) -> RunInfo<'a> {
        RunInfo {
            profile: &r.profile,
            mutant: r.mutant.as_deref().and_then(Mutant::parse),
            repro: &r.repro,
            faults: &r.faults,
            checks: &r.checks,
            violations: &r.violations,
        }
    }
}

/// The timeline page of a finished run.
pub fn page(out: &exactsim_sim::runner::Outcome) -> String {
    render(&out.result.history, &RunInfo::of(&out.report))
}

/// The page's title: scenario, seed, profile, mode and the planted bug.
pub fn title(history: &History, info: &RunInfo) -> String {
    format!(
        "{} seed {} \u{b7} profile {} \u{b7} {} \u{b7} {}",
        history.scenario,
        history.seed,
        info.profile,
        history.mode.name(),
        info.mutant.map_or("no planted bug".to_string(), |m| format!("planted bug: {}", m.name()))
    )
}

/// Fill the `{{name}}` slots of a template in one pass (the values are not
/// scanned again). An unknown slot is a bug in the template: it panics.
fn fill(template: &str, slots: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + slots.iter().map(|s| s.1.len()).sum::<usize>());
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let j = after.find("}}").expect("an unclosed {{ in the timeline template");
        let key = &after[..j];
        let v = slots.iter().find(|s| s.0 == key).unwrap_or_else(|| panic!("unknown template slot {{{{{key}}}}}"));
        out.push_str(v.1);
        rest = &after[j + 2..];
    }
    out.push_str(rest);
    out
}

/// Render one run as a self-contained HTML page.
pub fn render(history: &History, info: &RunInfo) -> String {
    let model = Model::build(history, info.violations);
    let plot_w = CHART_W - LEFT - RIGHT_PAD;
    let end_us = model.end_us;
    let x = |t_us: u64| LEFT + (t_us.min(end_us) as f64 / end_us as f64) * plot_w;

    // ---- labels above the lanes ----
    let mut top: Vec<TopLabel> = model
        .lines
        .iter()
        .map(|l| {
            let (color, size, bold) = match l.kind {
                LineKind::Recovery => ("#e36414", 11.0, false),
                LineKind::Healed => ("#2b9348", 11.0, false),
                LineKind::Violation => ("#d00000", 13.0, true),
            };
            TopLabel { x: x(l.t_us), text: l.label.clone(), color, size, bold, row: 0, end_anchor: false }
        })
        .collect();
    let rows = place_labels(&mut top);
    let row_y = |r: usize| 6.0 + (r as f64 + 1.0) * LABEL_ROW - 3.0;
    let lanes_top = 8.0 + rows as f64 * LABEL_ROW + 4.0;
    let lanes_bottom = lanes_top + model.lanes.len() as f64 * LANE;
    let plots_top = lanes_bottom + PLOT_GAP;
    let height = plots_top + PLOTS.len() as f64 * (PLOT_H + PLOT_GAP) + 6.0;
    let ly = |lane: usize| lanes_top + lane as f64 * LANE;

    let mut svg = String::with_capacity(64 * 1024);
    let _ = write!(
        svg,
        r##"<svg id="tl" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {CHART_W} {height:.0}" font-family="sans-serif" font-size="11" data-left="{LEFT}" data-right="{:.1}" data-end-ms="{:.3}">"##,
        LEFT + plot_w,
        ms(end_us)
    );
    svg.push_str(
        r##"<defs><pattern id="hatch" width="7" height="7" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="7" height="7" fill="#495057"/><line x1="0" y1="0" x2="0" y2="7" stroke="#212529" stroke-width="3.5"/></pattern></defs>"##,
    );
    for i in 0..model.lanes.len() {
        let fill = if i % 2 == 0 { "#f1f3f5" } else { "#ffffff" };
        let _ = write!(svg, r##"<rect x="0" y="{:.1}" width="{CHART_W}" height="{LANE}" fill="{fill}"/>"##, ly(i));
    }
    // Time grid; the tick labels are in the sticky axis above the chart.
    let step = tick_step_us(end_us);
    let mut axis = format!(
        r##"<svg class="axis" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {CHART_W} {AXIS_H}" font-family="sans-serif" font-size="11"><rect width="{CHART_W}" height="{AXIS_H}" fill="#fff"/><text x="8" y="15" fill="#495057" font-weight="bold">time</text><line x1="{LEFT}" y1="{AXIS_H}" x2="{:.1}" y2="{AXIS_H}" stroke="#868e96"/>"##,
        LEFT + plot_w
    );
    let mut t = 0;
    while t <= end_us {
        let xx = x(t);
        let _ = write!(
            svg,
            r##"<line x1="{xx:.1}" y1="{lanes_top:.1}" x2="{xx:.1}" y2="{lanes_bottom:.1}" stroke="#dee2e6"/>"##
        );
        let _ = write!(
            axis,
            r##"<line x1="{xx:.1}" y1="{:.1}" x2="{xx:.1}" y2="{AXIS_H}" stroke="#868e96"/><text x="{xx:.1}" y="14" text-anchor="middle" fill="#495057">{}</text>"##,
            AXIS_H - 5.0,
            fmt_ms(t, step)
        );
        t += step;
    }
    axis.push_str("</svg>");

    draw_bands(&mut svg, &model, &x, &ly, (lanes_top, lanes_bottom));
    for (i, name) in model.lanes.iter().enumerate() {
        let _ = write!(
            svg,
            r##"<text class="lane" x="8" y="{:.1}" font-weight="bold" font-size="12" fill="#212529">{}</text>"##,
            ly(i) + LANE / 2.0 + 4.0,
            escape(name)
        );
    }
    // Lines with their labels: healing and recoveries under the markers,
    // violations over everything.
    let draw_line = |svg: &mut String, i: usize| {
        let (l, lbl) = (&model.lines[i], &top[i]);
        let (class, stroke, extra) = match l.kind {
            LineKind::Recovery => ("rec", "#f77f00", r#"stroke-width="2" opacity="0.85""#),
            LineKind::Healed => ("healed", "#2b9348", r#"stroke-width="2" stroke-dasharray="6 4""#),
            LineKind::Violation => ("viol", "#d00000", r#"stroke-width="4" opacity="0.9""#),
        };
        let _ = write!(
            svg,
            r##"<g class="{class}"><line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="{stroke}" {extra}/><line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="transparent" stroke-width="8"/>"##,
            lbl.x,
            row_y(lbl.row) - 10.0,
            lanes_bottom
        );
        let (tx, anchor) = if lbl.end_anchor { (lbl.x - 3.0, "end") } else { (lbl.x + 3.0, "start") };
        let _ = write!(
            svg,
            r##"<text class="{}" x="{tx:.1}" y="{:.1}" text-anchor="{anchor}" fill="{}" font-size="{}"{}>{}</text>"##,
            if l.kind == LineKind::Violation { "vlbl" } else { "lbl" },
            row_y(lbl.row),
            lbl.color,
            lbl.size,
            if lbl.bold { r#" font-weight="bold""# } else { "" },
            escape(&lbl.text)
        );
        let tip: Vec<String> = l.tip.iter().map(|t| escape(t)).collect();
        let _ = write!(svg, "<title>{}</title></g>", tip.join("\n"));
    };
    for i in 0..model.lines.len() {
        if model.lines[i].kind != LineKind::Violation {
            draw_line(&mut svg, i);
        }
    }
    for m in &model.markers {
        let (cx, cy) = (x(m.t_us), ly(m.lane) + LANE / 2.0);
        let _ = write!(
            svg,
            r##"<g class="m {}">{}<title>{}</title></g>"##,
            m.mk.class(),
            m.mk.shape(cx, cy, m.label),
            escape(&m.tip)
        );
    }
    for i in 0..model.lines.len() {
        if model.lines[i].kind == LineKind::Violation {
            draw_line(&mut svg, i);
        }
    }
    draw_metrics(&mut svg, history, &model, &x, plots_top);
    // The hover cursor (moved by the script).
    let _ = write!(
        svg,
        r##"<g id="cur" visibility="hidden" pointer-events="none"><line id="curl" x1="0" y1="{lanes_top:.1}" x2="0" y2="{lanes_bottom:.1}" stroke="#212529" stroke-width="0.8" stroke-dasharray="2 2"/><rect id="curb" x="0" y="{lanes_top:.1}" width="74" height="14" fill="#212529" rx="2"/><text id="curt" x="0" y="{:.1}" fill="#fff" font-size="10"></text></g>"##,
        lanes_top + 10.5
    );
    svg.push_str("</svg>");

    let title = title(history, info);
    let landed: Vec<String> = info.faults.iter().filter(|f| *f.1 > 0).map(|(k, n)| format!("{k} \u{d7}{n}")).collect();
    let faults = if landed.is_empty() { "none".to_string() } else { escape(&landed.join(", ")) };

    let sub = subtitle(history, info, end_us);
    let vbox = violations_box(history, info);
    let legend = legend(&model);
    let notes = thinned_notes(&model);
    fill(
        TEMPLATE,
        &[
            ("title", &escape(&title)),
            ("sub", &sub),
            ("repro", &escape(info.repro)),
            ("faults", &faults),
            ("violations", &vbox),
            ("axis", &axis),
            ("chart", &svg),
            ("legend", &legend),
            ("notes", &notes),
        ],
    )
}

/// The line under the title: the run's shape, and its planted bug if any.
fn subtitle(history: &History, info: &RunInfo, end_us: u64) -> String {
    let mut sub = format!(
        "parallelism {} &middot; {} events &middot; {:.1} ms simulated &middot; healed at {:.1} ms &middot; {}",
        history.parallelism,
        history.events.len(),
        ms(end_us),
        ms(history.healed_at_us),
        history.finished_at_us.map_or("did not finish".to_string(), |t| format!("finished at {:.1} ms", ms(t)))
    );
    if let Some(m) = info.mutant {
        let _ = write!(
            sub,
            r#"<br><b>planted bug</b> {}: {} (expected to be caught by {} {})"#,
            escape(m.name()),
            escape(m.description()),
            m.expected_check(),
            exactsim_model::checks::name_of(m.expected_check())
        );
    }
    sub
}

/// The violations, each with its check's meaning, or that every check held.
fn violations_box(history: &History, info: &RunInfo) -> String {
    let mut vbox = String::new();
    if info.violations.is_empty() {
        let _ = write!(
            vbox,
            r#"<div class="vbox ok">No violations: every check held ({}).</div>"#,
            escape(&info.checks.join(", "))
        );
    } else {
        let _ = write!(vbox, r#"<div class="vbox bad"><b>{} violation(s)</b><ul>"#, info.violations.len());
        for v in info.violations {
            let when = match v.t_ms {
                Some(t) => format!(r#"<span class="when">at {t:.3} ms</span>"#),
                None => r#"<span class="when eor">end of run</span>"#.to_string(),
            };
            let meaning = match crate::registry::current().get(&history.scenario).ok() {
                Some(sc) => exactsim_model::checks::describe_in(&*sc, &v.check).map_or("", |d| d.1),
                None => exactsim_model::checks::info(&v.check).map_or("", |c| c.meaning),
            };
            let _ = write!(
                vbox,
                r#"<li><b title="{}">{}</b> {when} {}</li>"#,
                escape(meaning),
                escape(&v.label()),
                escape(&v.message)
            );
        }
        vbox.push_str("</ul></div>");
    }

    vbox
}

/// The markers with their counts, the lines, and the fault kinds drawn.
fn legend(model: &Model) -> String {
    let mut legend = String::new();
    for k in Mk::ALL {
        let sym = match k {
            Mk::Recovery => r##"<line x1="9" y1="0" x2="9" y2="20" stroke="#f77f00" stroke-width="2"/>"##.to_string(),
            // Dots sit off-centre in a lane: centre them here.
            Mk::PreCommit => Mk::PreCommit.shape(9.0, 17.0, None),
            Mk::CommitConfirmed => Mk::CommitConfirmed.shape(9.0, 3.0, None),
            _ => k.shape(9.0, 10.0, None),
        };
        let _ = write!(
            legend,
            r#"<span class="li"><svg width="20" height="20" viewBox="0 0 20 20">{sym}</svg>{}{}</span>"#,
            k.name(),
            model.counts.get(&k).map_or(String::new(), |n| format!(" ({n})"))
        );
    }
    legend.push_str(
        r##"<span class="li"><svg width="20" height="20"><line x1="9" y1="0" x2="9" y2="20" stroke="#2b9348" stroke-width="2" stroke-dasharray="4 3"/></svg>healed</span><span class="li"><svg width="20" height="20"><line x1="9" y1="0" x2="9" y2="20" stroke="#d00000" stroke-width="4"/></svg>violation</span><span class="li"><svg width="26" height="16"><rect width="26" height="16" fill="url(#hatch2)" opacity="0.75"/><defs><pattern id="hatch2" width="7" height="7" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="7" height="7" fill="#495057"/><line x1="0" y1="0" x2="0" y2="7" stroke="#212529" stroke-width="3.5"/></pattern></defs></svg>node down</span>"##,
    );
    if model.fault_kinds.is_empty() {
        legend.push_str(r#"<span class="li">no fault windows</span>"#);
    }
    for k in &model.fault_kinds {
        let _ = write!(
            legend,
            r#"<span class="li"><span class="sw" style="background:{}"></span>{}</span>"#,
            fault_color(k),
            escape(k)
        );
    }
    legend
}

/// What was thinned out of the drawing, if anything.
fn thinned_notes(model: &Model) -> String {
    let mut notes = String::new();
    for (k, n, s) in &model.thinned {
        let _ = write!(notes, "{}: {n} events, 1 in {s} drawn. ", k.name());
    }
    if !notes.is_empty() {
        notes = format!(r#"<div class="note">Thinned: {}</div>"#, escape(notes.trim_end()));
    }
    notes
}

/// The fault windows and down periods as bands over their lanes (network
/// faults over all of them), and their labels on top of every band. Each
/// window's label is drawn once; a lane's overlapping labels go on
/// separate lines.
/// The run's metrics over simulated time (`exactsim_model::metrics`,
/// sampled 60 times, at most every 50 ms), one plot each, under
/// translucent fault windows.
fn draw_metrics(svg: &mut String, history: &History, model: &Model, x: &dyn Fn(u64) -> f64, top: f64) {
    let end_ms = (model.end_us / 1000).max(1);
    let input: u64 = history.input.iter().map(|p| p.len() as u64).sum();
    // Sources report their offsets at barriers, so a step much shorter
    // than a checkpoint interval shows spikes, not throughput.
    let samples = exactsim_model::metrics::series(&history.events, input, (end_ms / 60).max(50), end_ms);
    for (i, (label, value)) in PLOTS.iter().enumerate() {
        let y0 = top + i as f64 * (PLOT_H + PLOT_GAP);
        let max = samples.iter().map(value).max().unwrap_or(0).max(1);
        let _ = write!(
            svg,
            r##"<g class="plot" data-metric="{label}"><rect x="{LEFT}" y="{y0:.1}" width="{:.1}" height="{PLOT_H}" fill="#f8f9fa" stroke="#dee2e6"/>"##,
            x(model.end_us) - LEFT
        );
        for b in model.bands.iter().filter(|b| !b.down()) {
            let (x0, x1) = (x(b.from_us), x(b.to_us));
            let _ = write!(
                svg,
                r##"<rect x="{x0:.1}" y="{y0:.1}" width="{:.1}" height="{PLOT_H}" fill="{}" opacity="0.18"/>"##,
                (x1 - x0).max(1.0),
                fault_color(&b.kind)
            );
        }
        let points: Vec<String> = samples
            .iter()
            .map(|s| {
                format!("{:.1},{:.1}", x(s.t_ms * 1000), y0 + PLOT_H - (value(s) as f64 / max as f64) * (PLOT_H - 4.0))
            })
            .collect();
        let _ = write!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="#1864ab" stroke-width="1.2"/><text x="6" y="{:.1}" fill="#495057">{label}</text><text x="6" y="{:.1}" fill="#868e96" font-size="9">max {max}</text></g>"##,
            points.join(" "),
            y0 + 14.0,
            y0 + 28.0
        );
    }
}

fn draw_bands(
    svg: &mut String,
    model: &Model,
    x: &dyn Fn(u64) -> f64,
    ly: &dyn Fn(usize) -> f64,
    (lanes_top, lanes_bottom): (f64, f64),
) {
    let mut slots: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    let mut band_labels = String::new();
    for b in &model.bands {
        let (x0, x1) = (x(b.from_us), x(b.to_us));
        let w = (x1 - x0).max(2.0);
        let (fill, opacity, class) = if b.down() {
            ("url(#hatch)".to_string(), 0.75, "band down")
        } else {
            (fault_color(&b.kind).to_string(), if b.network { 0.3 } else { 0.5 }, "band fault")
        };
        let _ = write!(svg, r##"<g class="{class}" data-kind="{}">"##, escape(&b.kind));
        if b.network {
            let _ = write!(
                svg,
                r##"<rect x="{x0:.1}" y="{lanes_top:.1}" width="{w:.1}" height="{:.1}" fill="{fill}" opacity="{opacity}"/>"##,
                lanes_bottom - lanes_top
            );
        } else {
            for &l in &b.lanes {
                let _ = write!(
                    svg,
                    r##"<rect x="{x0:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{fill}" opacity="{opacity}"/>"##,
                    ly(l) + 1.0,
                    LANE - 2.0,
                );
            }
        }
        if let Some(&l) = b.lanes.first() {
            let ends = slots.entry(l).or_default();
            let slot = match ends.iter().position(|&e| e <= b.from_us) {
                Some(s) => s,
                None => {
                    ends.push(0);
                    ends.len() - 1
                }
            };
            ends[slot] = b.to_us.max(b.from_us + 1);
            if w >= 12.0 {
                let _ = write!(
                    band_labels,
                    r##"<text class="blbl" x="{:.1}" y="{:.1}" fill="{}" font-size="9" font-weight="bold">{}</text>"##,
                    x0 + 2.0,
                    ly(l) + 10.0 + (slot % 3) as f64 * 10.0,
                    if b.down() { "#fff" } else { "#343a40" },
                    escape(&b.kind)
                );
            }
        }
        let _ = write!(svg, "<title>{}</title></g>", escape(&b.tip));
    }
    // Over every band, so that a down period does not hide a fault's name.
    let _ = write!(svg, r#"<g class="blbls" pointer-events="none">{band_labels}</g>"#);
}

#[cfg(test)]
mod tests {
    use super::*;
    use exactsim_engine::types::{DeliveryMode, TaskId};
    use exactsim_model::history::Stamped;

    fn st(t_us: u64, node: &str, ev: Ev) -> Stamped {
        Stamped { t_us, node: node.into(), ev }
    }

    fn eng(t_us: u64, node: &str, ev: Event) -> Stamped {
        st(t_us, node, Ev::Engine(ev))
    }

    fn sim(t_us: u64, node: &str, ev: SimEvent) -> Stamped {
        st(t_us, node, Ev::Sim(ev))
    }

    const PART: &str = r#"{"kind":"partition","at_ms":20,"dur_ms":30,"a":"broker","b":"worker-0","one_way":false}"#;
    const LOSS: &str = r#"{"kind":"packet_loss","at_ms":70,"dur_ms":500,"permille":100}"#;

    fn history(events: Vec<Stamped>) -> History {
        History {
            scenario: "word_count".into(),
            seed: 42,
            mode: DeliveryMode::ExactlyOnce,
            parallelism: 2,
            output_partitions: 2,
            input: vec![],
            events,
            observations: vec![],
            final_output: vec![],
            final_read_ok: true,
            final_open_txns: vec![],
            healed_at_us: 90_000,
            deadline_us: 200_000,
            finished_at_us: Some(120_000),
            reached: Vec::new(),
        }
    }

    fn sample() -> History {
        let c = "coordinator";
        history(vec![
            sim(0, "sim", SimEvent::RunStarted),
            eng(1_000, c, Event::RecoveryStarted { attempt: 1, from: None, reason: "start".into() }),
            eng(10_000, c, Event::CheckpointTriggered { attempt: 1, ckpt: 1 }),
            eng(
                12_000,
                "worker-0",
                Event::PreCommitted {
                    task: TaskId::Chain(0),
                    ckpt: 1,
                    txn: "t-0-1".into(),
                    epoch: 1,
                    records: 5,
                    writer: Default::default(),
                    out_ids: vec![],
                },
            ),
            eng(
                13_000,
                "worker-1",
                Event::PreCommitted {
                    task: TaskId::Chain(1),
                    ckpt: 1,
                    txn: "t-1-1".into(),
                    epoch: 1,
                    records: 5,
                    writer: Default::default(),
                    out_ids: vec![],
                },
            ),
            eng(15_000, c, Event::CheckpointCompleted { attempt: 1, ckpt: 1, offsets: vec![5, 5], finished: false }),
            eng(16_000, "broker", Event::TxnCommitted { txn: "t-0-1".into(), epoch: 1, out: vec![] }),
            eng(
                17_000,
                "worker-0",
                Event::CommitConfirmed { task: TaskId::Chain(0), ckpt: 1, txn: "t-0-1".into(), epoch: 1 },
            ),
            sim(20_000, "sim", SimEvent::FaultStarted { kind: "partition".into(), detail: PART.into() }),
            sim(
                30_000,
                "worker-1",
                SimEvent::NodeCrashed {
                    node: "worker-1".into(),
                    cause: "crash <scheduled> & \"torn\"".into(),
                    lost_bytes: 10,
                    torn_files: 1,
                },
            ),
            eng(31_000, c, Event::WorkerLost { worker: 1 }),
            eng(32_000, c, Event::CheckpointFailed { attempt: 1, ckpt: 2, reason: "worker lost".into() }),
            eng(33_000, c, Event::RecoveryStarted { attempt: 2, from: Some(1), reason: "worker lost".into() }),
            eng(34_000, "broker", Event::TxnAborted { txn: "t-1-1".into(), epoch: 1, reason: "fenced".into() }),
            sim(40_000, "worker-1", SimEvent::NodeRestarted { node: "worker-1".into() }),
            eng(
                41_000,
                "worker-0",
                Event::TaskFailed { attempt: 1, task: TaskId::Chain(0), reason: "cancelled".into() },
            ),
            sim(50_000, "sim", SimEvent::FaultEnded { kind: "partition".into(), detail: PART.into() }),
            eng(55_000, "store", Event::FatalError { reason: "fsync failed".into() }),
            eng(
                60_000,
                "worker-1",
                Event::CommitFailed {
                    task: TaskId::Chain(1),
                    ckpt: 3,
                    txn: "t-1-3".into(),
                    epoch: 1,
                    reason: "x".repeat(2000),
                },
            ),
            sim(70_000, "sim", SimEvent::FaultStarted { kind: "packet_loss".into(), detail: LOSS.into() }),
            sim(90_000, "sim", SimEvent::Healed),
            eng(100_000, c, Event::CheckpointTriggered { attempt: 2, ckpt: 4 }),
            eng(110_000, c, Event::CheckpointCompleted { attempt: 2, ckpt: 4, offsets: vec![9, 9], finished: true }),
            eng(120_000, c, Event::JobFinished { attempt: 2, ckpt: 4 }),
            sim(125_000, "sim", SimEvent::RunEnded),
        ])
    }

    fn vr(check: &str, message: &str, t_ms: Option<f64>) -> ViolationReport {
        ViolationReport {
            check: check.into(),
            name: exactsim_model::checks::name_of(check).into(),
            message: message.into(),
            t_ms,
        }
    }

    fn violations() -> Vec<ViolationReport> {
        vec![vr("P1", "lost <3> records & \"more\"", Some(45.0)), vr("P7", "open transactions at the end", None)]
    }

    fn faults() -> BTreeMap<String, u64> {
        [("crash".to_string(), 1), ("partition".to_string(), 1), ("packet_loss".to_string(), 1)].into()
    }

    const CHECKS: [&str; 2] = ["P1", "P2"];

    fn page_of(h: &History, v: &[ViolationReport], mutant: Option<Mutant>) -> String {
        let checks: Vec<String> = CHECKS.iter().map(|s| s.to_string()).collect();
        let f = faults();
        let info = RunInfo {
            profile: "chaos",
            mutant,
            repro: "cargo run --release -- run --scenario word_count --seed 42 --profile chaos --mode exactly-once",
            faults: &f,
            checks: &checks,
            violations: v,
        };
        render(h, &info)
    }

    fn lane(m: &Model, name: &str) -> usize {
        m.lanes.iter().position(|l| l == name).unwrap()
    }

    #[test]
    fn a_lane_per_node_in_natural_order() {
        let mut h = sample();
        let m = Model::build(&h, &[]);
        assert_eq!(m.lanes, ["coordinator", "broker", "store", "worker-0", "worker-1", "sim"]);
        h.events.push(eng(1, "worker-10", Event::NodeStarted));
        h.events.push(eng(1, "worker-2", Event::NodeStarted));
        assert_eq!(
            lanes_of(&h),
            ["coordinator", "broker", "store", "worker-0", "worker-1", "worker-2", "worker-10", "sim"]
        );
        assert_eq!(m.end_us, 125_000);
    }

    #[test]
    fn fault_windows_and_down_periods_are_bands_in_plain_words() {
        let m = Model::build(&sample(), &[]);
        let part = m.bands.iter().find(|b| b.kind == "partition").unwrap();
        // The partition names broker and worker-0: one band on those lanes.
        assert_eq!(part.lanes, [lane(&m, "broker"), lane(&m, "worker-0")]);
        assert!(!part.network);
        assert_eq!((part.from_us, part.to_us), (20_000, 50_000));
        assert_eq!(
            part.tip,
            "partition, 20.0\u{2013}50.0 ms: network partition: broker and worker-0 cannot reach each other"
        );
        // Packet loss is network-wide, and still open at the end: it ends at
        // the healing.
        let loss = m.bands.iter().find(|b| b.kind == "packet_loss").unwrap();
        assert!(loss.network);
        assert_eq!(loss.lanes.len(), m.lanes.len());
        assert_eq!(
            loss.tip,
            "packet_loss, 70.0\u{2013}90.0 ms (ended by the healing): 10% of all network messages are dropped"
        );
        let down = m.bands.iter().find(|b| b.down()).unwrap();
        assert_eq!(down.lanes, [lane(&m, "worker-1")]);
        assert_eq!(
            down.tip,
            "worker-1 down 30.0\u{2013}40.0 ms: crash <scheduled> & \"torn\"; 10 unsynced bytes lost, 1 files torn"
        );
        assert_eq!(m.fault_kinds.iter().collect::<Vec<_>>(), ["packet_loss", "partition"]);
    }

    #[test]
    fn a_clean_stop_ends_when_its_node_is_back_and_late_delivery_at_its_end() {
        const STOP: &str = r#"{"kind":"stop","at_ms":20,"node":"worker-0","down_ms":15}"#;
        const LATE: &str =
            r#"{"kind":"late_delivery","at_ms":22,"dur_ms":8,"from":"broker","to":null,"delay_ms":40,"count":2}"#;
        let mut h = history(vec![
            sim(0, "sim", SimEvent::RunStarted),
            sim(20_000, "sim", SimEvent::FaultStarted { kind: "stop".into(), detail: STOP.into() }),
            sim(
                20_000,
                "worker-0",
                SimEvent::NodeCrashed {
                    node: "worker-0".into(),
                    cause: "clean stop".into(),
                    lost_bytes: 0,
                    torn_files: 0,
                },
            ),
            sim(22_000, "sim", SimEvent::FaultStarted { kind: "late_delivery".into(), detail: LATE.into() }),
            sim(30_000, "sim", SimEvent::FaultEnded { kind: "late_delivery".into(), detail: LATE.into() }),
            sim(35_000, "worker-0", SimEvent::NodeRestarted { node: "worker-0".into() }),
            sim(100_000, "sim", SimEvent::RunEnded),
        ]);
        h.finished_at_us = Some(100_000);
        let m = Model::build(&h, &[]);
        let stop = m.bands.iter().find(|b| b.kind == "stop").unwrap();
        assert_eq!((stop.from_us, stop.to_us), (20_000, 35_000), "not to the healing at 90 ms");
        assert!(!stop.tip.contains("healing"), "{}", stop.tip);
        let late = m.bands.iter().find(|b| b.kind == "late_delivery").unwrap();
        assert_eq!((late.from_us, late.to_us), (22_000, 30_000));
    }

    #[test]
    fn fault_labels_appear_once_per_window() {
        let html = page_of(&sample(), &[], None);
        assert_eq!(html.matches(r#"data-kind="partition""#).count(), 1);
        assert_eq!(html.matches(">partition</text>").count(), 1);
        assert_eq!(html.matches(">packet_loss</text>").count(), 1);
        assert_eq!(html.matches(">down</text>").count(), 1);
        // The partition's band covers its two lanes: two rectangles, one label.
        let g = html.split(r#"data-kind="partition">"#).nth(1).unwrap();
        let g = &g[..g.find("</g>").unwrap()];
        assert_eq!(g.matches("<rect").count(), 2, "{g}");
        assert!(html.contains("crash &lt;scheduled&gt; &amp; &quot;torn&quot;"));
    }

    #[test]
    fn markers_carry_plain_sentences() {
        let m = Model::build(&sample(), &[]);
        let kinds: BTreeSet<Mk> = m.markers.iter().map(|k| k.mk).collect();
        assert_eq!(kinds.len(), Mk::ALL.len() - 1, "every kind but recovery, which is a line: {kinds:?}");
        let tip = |mk: Mk| m.markers.iter().find(|x| x.mk == mk).unwrap().tip.clone();
        assert_eq!(
            tip(Mk::Completed),
            "15.000 ms, coordinator: checkpoint 1 completed: its completion record is durable; source offsets 5, 5"
        );
        assert_eq!(
            tip(Mk::PreCommit),
            "12.000 ms, worker-0: chain-0 pre-committed transaction t-0-1 (epoch 1, 5 records) for checkpoint 1"
        );
        assert_eq!(tip(Mk::TxnAborted), "34.000 ms, broker: broker aborted transaction t-1-1 (epoch 1): fenced");
        assert_eq!(
            tip(Mk::Finished),
            "120.000 ms, coordinator: job finished: checkpoint 4 covers all input and is committed"
        );
        let long = tip(Mk::CommitFailed);
        assert!(long.ends_with('\u{2026}') && long.chars().count() < 300, "{long}");
        for mk in &m.markers {
            // No Rust debug output: no struct braces, no `Chain(0)`.
            assert!(!mk.tip.contains('{') && !mk.tip.contains("Chain(") && !mk.tip.contains("Some("), "{}", mk.tip);
            assert_eq!(mk.lane, lane(&m, &sample().events.iter().find(|e| e.t_us == mk.t_us).unwrap().node));
        }
        assert_eq!(m.markers.iter().find(|x| x.mk == Mk::Completed).unwrap().label, Some(1));
    }

    #[test]
    fn recoveries_healing_and_violations_are_lines() {
        let m = Model::build(&sample(), &violations());
        let labels: Vec<(&str, LineKind)> = m.lines.iter().map(|l| (l.label.as_str(), l.kind)).collect();
        assert_eq!(
            labels,
            [
                ("recovery a1 from scratch", LineKind::Recovery),
                ("recovery a2 from ckpt 1", LineKind::Recovery),
                ("healed (liveness phase)", LineKind::Healed),
                // P7 has no time: listed on the page, not drawn.
                ("P1 exactly-once-output", LineKind::Violation),
            ]
        );
        assert_eq!(m.lines[1].tip, ["33.000 ms, coordinator: recovery (attempt 2) from checkpoint 1: worker lost"]);
        assert_eq!(m.lines[3].tip, ["P1 exactly-once-output at 45.000 ms: lost <3> records & \"more\""]);
    }

    #[test]
    fn simultaneous_violations_share_a_line() {
        let mut v = violations();
        v.push(vr("P6", "a", Some(80.0)));
        v.push(vr("P6", "b", Some(80.0)));
        v.push(vr("P3", "c", Some(80.001)));
        let m = Model::build(&sample(), &v);
        let viol: Vec<&Line> = m.lines.iter().filter(|l| l.kind == LineKind::Violation).collect();
        assert_eq!(viol.len(), 2);
        assert_eq!(viol[1].label, "P6 apply-once \u{d7}2, P3 no-early-visibility");
        assert_eq!(viol[1].tip.len(), 3);
    }

    #[test]
    fn the_page_says_what_ran_and_how_to_reproduce_it() {
        let html = page_of(&sample(), &violations(), Some(Mutant::NoRecommitOnRecovery));
        let title =
            "word_count seed 42 \u{b7} profile chaos \u{b7} exactly-once \u{b7} planted bug: no-recommit-on-recovery";
        assert!(html.contains(&format!("<title>{title}</title>")), "{}", &html[..400]);
        assert!(html.contains(&format!("<h1>{title}</h1>")));
        assert!(html.contains("recovery does not re-commit the restored pending transactions"));
        assert!(html.contains("(expected to be caught by P1 exactly-once-output)"));
        assert!(html.contains(
            "<code>cargo run --release -- run --scenario word_count --seed 42 --profile chaos --mode exactly-once</code>"
        ));
        assert!(html.contains("crash \u{d7}1, packet_loss \u{d7}1, partition \u{d7}1"));
        assert!(html.contains("2 violation(s)"));
        assert!(html.contains(">P1 exactly-once-output</text>"));
        assert!(html.contains("<b title=\"at the end, the committed output equals"), "the check's meaning on hover");
        assert!(html.contains("P7 precommit-committed</b> <span class=\"when eor\">end of run</span>"));
        // No slot left unfilled; the CSS and script came from the template.
        assert!(!html.contains("{{"));
        assert!(html.contains("position:sticky") && html.contains("getScreenCTM"));
        let plain = page_of(&sample(), &[], None);
        assert!(plain.contains("\u{b7} no planted bug</h1>"));
        assert!(plain.contains("No violations: every check held (P1, P2)."));
    }

    #[test]
    fn escaping() {
        let v = vec![ViolationReport {
            check: "P<2>".into(),
            name: String::new(),
            message: "<script>alert(\"x\")</script> & co".into(),
            t_ms: Some(1.0),
        }];
        let html = page_of(&sample(), &v, None);
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co"));
        assert!(html.contains(">P&lt;2&gt;</text>"));
        assert_eq!(escape(r#"a&b<c>d"e'"#), "a&amp;b&lt;c&gt;d&quot;e&#39;");
        assert_eq!(fill("a{{x}}b{{y}}", &[("x", "{{y}}"), ("y", "!")]), "a{{y}}b!");
    }

    #[test]
    fn self_contained() {
        let html = page_of(&sample(), &violations(), None);
        let rest = html.replace("http://www.w3.org/2000/svg", "");
        assert!(!rest.contains("http://") && !rest.contains("https://"));
        assert!(!rest.contains("src=") && !rest.contains("@import") && !rest.contains("url(http"));
    }

    #[test]
    fn many_events_are_thinned() {
        let mut events = vec![];
        for i in 0..20_000u64 {
            events.push(eng(
                i * 10,
                "worker-0",
                Event::PreCommitted {
                    task: TaskId::Chain(0),
                    ckpt: i,
                    txn: format!("t{i}"),
                    epoch: 1,
                    records: 1,
                    out_ids: vec![],
                    writer: Default::default(),
                },
            ));
            events.push(eng(
                i * 10 + 1,
                "broker",
                Event::AppendAccepted { txn: format!("t{i}"), epoch: 1, partition: 0, records: 1 },
            ));
        }
        let h = history(events);
        let m = Model::build(&h, &[]);
        let drawn = m.markers.iter().filter(|x| x.mk == Mk::PreCommit).count();
        assert!((2000..=MAX_PER_KIND).contains(&drawn), "{drawn}");
        assert_eq!(m.thinned, [(Mk::PreCommit, 20_000, 7)]);
        let html = page_of(&h, &[], None);
        assert!(html.contains("Thinned: pre-committed: 20000 events, 1 in 7 drawn."));
        assert!(html.len() < 3_000_000, "{}", html.len());
    }

    #[test]
    fn empty_history() {
        let mut h = history(vec![]);
        h.healed_at_us = 0;
        h.finished_at_us = None;
        let m = Model::build(&h, &[]);
        assert_eq!(m.lanes, ["coordinator", "broker", "store", "sim"]);
        assert!(m.markers.is_empty() && m.bands.is_empty() && m.lines.is_empty());
        let html = page_of(&h, &[], None);
        assert!(html.contains(">sim</text>") && html.contains("did not finish"));
        assert!(html.contains(">0 ms</text>"));
    }

    #[test]
    fn tick_steps() {
        assert_eq!(tick_step_us(2_434_000), 200_000);
        assert_eq!(tick_step_us(60), 5);
        assert_eq!(fmt_ms(400_000, 200_000), "400 ms");
        assert_eq!(fmt_ms(2_500, 500), "2.5 ms");
    }
}
