//! HTML timeline of a run: one self-contained file (inline CSS, inline SVG
//! and a few lines of inline JS for a time cursor; no network, no external
//! fonts or scripts). One swimlane per node; fault windows and node down
//! periods as bands; checkpoint, commit, recovery and failure markers; the
//! healing point and the violations as vertical lines. Every marker carries
//! an SVG `<title>` tooltip with the event's (truncated) Debug text.
//!
//! Runs can hold tens of thousands of events: high-volume events that are not
//! drawn (appends, barriers, snapshots) are skipped, and a marker kind with
//! more than [`MAX_PER_KIND`] occurrences is thinned evenly.

use exactsim_engine::observe::Event;
use exactsim_sim::history::{Ev, History, SimEvent};
use exactsim_sim::report::ViolationReport;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write};

/// Total width of the chart (lane labels included).
const CHART_W: f64 = 1600.0;
/// The lane label column.
const LEFT: f64 = 112.0;
const RIGHT_PAD: f64 = 28.0;
const LANE: f64 = 40.0;
const LABEL_ROW: f64 = 14.0;
const AXIS_H: f64 = 30.0;
/// At most this many markers of one kind are drawn; beyond, they are thinned.
pub const MAX_PER_KIND: usize = 3000;
/// Tooltips are cut to this many characters.
const TIP_CHARS: usize = 300;

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

/// A writer that stops after `left` characters, so that the Debug text of a
/// huge event (a commit with thousands of records) costs only what is shown.
struct Bounded {
    s: String,
    left: usize,
    cut: bool,
}

impl Write for Bounded {
    fn write_str(&mut self, x: &str) -> fmt::Result {
        for c in x.chars() {
            if self.left == 0 {
                self.cut = true;
                return Err(fmt::Error);
            }
            self.s.push(c);
            self.left -= 1;
        }
        Ok(())
    }
}

/// Escaped tooltip text: `args` formatted, cut to [`TIP_CHARS`] characters.
fn tip_fmt(args: fmt::Arguments) -> String {
    let mut b = Bounded { s: String::new(), left: TIP_CHARS, cut: false };
    let _ = b.write_fmt(args);
    let mut t = escape(&b.s);
    if b.cut {
        t.push('\u{2026}');
    }
    t
}

fn ms(t_us: u64) -> f64 {
    t_us as f64 / 1000.0
}

fn fault_color(kind: &str) -> &'static str {
    exactsim_sim::schedule::colour(kind)
}

/// The markers drawn, one per kind of event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Mk {
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

    fn name(self) -> &'static str {
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

/// A tick step from the 1-2-5 series giving at most ~16 ticks.
fn tick_step_us(end_us: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1u64, 2, 5] {
            let s = step * m;
            if end_us / s <= 16 {
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

struct Band {
    from: u64,
    to: u64,
    lanes: Vec<usize>,
    kind: String,
    tooltip: String,
    down: bool,
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

/// Render one run as a self-contained HTML page.
pub fn render(history: &History, violations: &[ViolationReport], title: &str) -> String {
    let lanes = lanes_of(history);
    let sim_lane = lanes.len() - 1;
    let lane_of: BTreeMap<&str, usize> = lanes.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let end_us = history.events.iter().map(|e| e.t_us).max().unwrap_or(0).max(1);
    let plot_w = CHART_W - LEFT - RIGHT_PAD;
    let x = |t_us: u64| LEFT + (t_us.min(end_us) as f64 / end_us as f64) * plot_w;
    let vx = |t_ms: f64| {
        let t = if t_ms.is_finite() && t_ms > 0.0 { (t_ms * 1000.0).round() as u64 } else { 0 };
        x(t)
    };

    // ---- pass 1: counts (for thinning), bands ----
    let mut counts: BTreeMap<Mk, usize> = BTreeMap::new();
    let mut bands: Vec<Band> = Vec::new();
    let mut open_faults: Vec<(String, String, u64)> = Vec::new(); // (detail, kind, from)
    let mut down: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut fault_kinds: BTreeSet<String> = BTreeSet::new();
    let faulted_lanes = |detail: &str| -> Vec<usize> {
        let hit: Vec<usize> = lanes
            .iter()
            .enumerate()
            .filter(|(i, n)| *i != sim_lane && detail.contains(&format!("\"{n}\"")))
            .map(|(i, _)| i)
            .collect();
        if hit.is_empty() {
            // Network-wide (packet loss, latency) or unknown: every lane.
            (0..lanes.len()).collect()
        } else {
            hit
        }
    };
    for e in &history.events {
        if let Some(k) = Mk::of(&e.ev) {
            *counts.entry(k).or_insert(0) += 1;
        }
        match &e.ev {
            Ev::Sim(SimEvent::FaultStarted { kind, detail }) => {
                fault_kinds.insert(kind.clone());
                open_faults.push((detail.clone(), kind.clone(), e.t_us));
            }
            Ev::Sim(SimEvent::FaultEnded { detail, .. }) => {
                if let Some(i) = open_faults.iter().position(|(d, _, _)| d == detail) {
                    let (detail, kind, from) = open_faults.remove(i);
                    bands.push(Band {
                        from,
                        to: e.t_us,
                        lanes: faulted_lanes(&detail),
                        tooltip: tip_fmt(format_args!("{kind} {:.1}\u{2013}{:.1} ms: {detail}", ms(from), ms(e.t_us))),
                        kind,
                        down: false,
                    });
                }
            }
            Ev::Sim(SimEvent::NodeCrashed { node, cause, lost_bytes, torn_files }) => {
                let cause = format!("{cause} (lost {lost_bytes} unsynced bytes, {torn_files} torn files)");
                down.entry(node.clone()).or_insert((e.t_us, cause));
            }
            Ev::Sim(SimEvent::NodeRestarted { node }) => {
                if let Some((from, cause)) = down.remove(node) {
                    bands.push(Band {
                        from,
                        to: e.t_us,
                        lanes: lane_of.get(node.as_str()).map(|l| vec![*l]).unwrap_or_default(),
                        kind: "down".into(),
                        tooltip: tip_fmt(format_args!(
                            "{node} down {:.1}\u{2013}{:.1} ms: {cause}",
                            ms(from),
                            ms(e.t_us)
                        )),
                        down: true,
                    });
                }
            }
            _ => {}
        }
    }
    // Windows still open: the healing ends every fault (without a
    // `FaultEnded`); a node still down stays down to the end.
    for (detail, kind, from) in open_faults {
        let to = if history.healed_at_us > from { history.healed_at_us } else { end_us };
        bands.push(Band {
            from,
            to,
            lanes: faulted_lanes(&detail),
            tooltip: tip_fmt(format_args!("{kind} {:.1}\u{2013}{:.1} ms (healed): {detail}", ms(from), ms(to))),
            kind,
            down: false,
        });
    }
    for (node, (from, cause)) in down {
        bands.push(Band {
            from,
            to: end_us,
            lanes: lane_of.get(node.as_str()).map(|l| vec![*l]).unwrap_or_default(),
            kind: "down".into(),
            tooltip: tip_fmt(format_args!("{node} down from {:.1} ms to the end: {cause}", ms(from))),
            down: true,
        });
    }
    bands.sort_by_key(|b| (b.down, b.from, b.to));
    let stride: BTreeMap<Mk, usize> = counts.iter().map(|(k, n)| (*k, n.div_ceil(MAX_PER_KIND).max(1))).collect();

    // ---- labels above the lanes ----
    let mut top: Vec<TopLabel> = Vec::new();
    let label = |x: f64, text: String, color: &'static str, size: f64, bold: bool| TopLabel {
        x,
        text,
        color,
        size,
        bold,
        row: 0,
        end_anchor: false,
    };
    let mut recoveries: Vec<(usize, u64, String)> = Vec::new(); // (label index, t, tooltip)
    let mut rec_seen = 0usize;
    for e in &history.events {
        if let Ev::Engine(ev @ Event::RecoveryStarted { attempt, from, .. }) = &e.ev {
            rec_seen += 1;
            if !(rec_seen - 1).is_multiple_of(stride.get(&Mk::Recovery).copied().unwrap_or(1)) {
                continue;
            }
            let from = from.map_or("scratch".to_string(), |c| format!("ckpt {c}"));
            top.push(label(x(e.t_us), format!("recovery a{attempt} from {from}"), "#e36414", 11.0, false));
            recoveries.push((
                top.len() - 1,
                e.t_us,
                tip_fmt(format_args!("{:.3} ms @ {}: {ev:?}", ms(e.t_us), e.node)),
            ));
        }
    }
    let healed = (history.healed_at_us > 0).then(|| {
        top.push(label(x(history.healed_at_us), "healed (liveness phase)".into(), "#2b9348", 11.0, false));
        top.len() - 1
    });
    // Violations at (nearly) the same time share one line and one label.
    let mut timed: Vec<(f64, &ViolationReport)> =
        violations.iter().filter_map(|v| v.t_ms.map(|t| (vx(t), v))).collect();
    timed.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut groups: Vec<(f64, Vec<&ViolationReport>)> = Vec::new();
    for (xx, v) in timed {
        match groups.last_mut() {
            Some((gx, vs)) if xx - *gx < 3.0 => vs.push(v),
            _ => groups.push((xx, vec![v])),
        }
    }
    let mut viol_lines: Vec<(usize, f64, Vec<&ViolationReport>)> = Vec::new();
    for (xx, vs) in groups {
        let mut checks: Vec<(&str, usize)> = Vec::new();
        for v in &vs {
            match checks.iter_mut().find(|c| c.0 == v.check) {
                Some(c) => c.1 += 1,
                None => checks.push((&v.check, 1)),
            }
        }
        let text: Vec<String> =
            checks.iter().map(|(c, n)| if *n > 1 { format!("{c}\u{d7}{n}") } else { c.to_string() }).collect();
        top.push(label(xx, text.join(" "), "#d00000", 13.0, true));
        viol_lines.push((top.len() - 1, xx, vs));
    }
    let rows = place_labels(&mut top);
    let row_y = |r: usize| 6.0 + (r as f64 + 1.0) * LABEL_ROW - 3.0;
    let lanes_top = 8.0 + rows as f64 * LABEL_ROW + 4.0;
    let lanes_bottom = lanes_top + lanes.len() as f64 * LANE;
    let height = lanes_bottom + AXIS_H;
    let ly = |lane: usize| lanes_top + lane as f64 * LANE;

    let mut svg = String::with_capacity(64 * 1024);
    let _ = write!(
        svg,
        r##"<svg id="tl" xmlns="http://www.w3.org/2000/svg" width="{CHART_W}" height="{height:.0}" viewBox="0 0 {CHART_W} {height:.0}" font-family="sans-serif" font-size="11" data-left="{LEFT}" data-right="{:.1}" data-end-ms="{:.3}">"##,
        LEFT + plot_w,
        ms(end_us)
    );
    svg.push_str(
        r##"<defs><pattern id="hatch" width="7" height="7" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="7" height="7" fill="#495057"/><line x1="0" y1="0" x2="0" y2="7" stroke="#212529" stroke-width="3.5"/></pattern></defs>"##,
    );
    // Lane backgrounds.
    for i in 0..lanes.len() {
        let fill = if i % 2 == 0 { "#f1f3f5" } else { "#ffffff" };
        let _ = write!(svg, r##"<rect x="0" y="{:.1}" width="{CHART_W}" height="{LANE}" fill="{fill}"/>"##, ly(i));
    }
    // Time grid and ticks.
    let step = tick_step_us(end_us);
    let mut t = 0;
    while t <= end_us {
        let xx = x(t);
        let _ = write!(
            svg,
            r##"<line x1="{xx:.1}" y1="{lanes_top:.1}" x2="{xx:.1}" y2="{:.1}" stroke="#dee2e6"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle" fill="#495057">{}</text>"##,
            lanes_bottom + 5.0,
            lanes_bottom + 17.0,
            fmt_ms(t, step)
        );
        t += step;
    }
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{lanes_bottom:.1}" x2="{:.1}" y2="{lanes_bottom:.1}" stroke="#868e96"/>"##,
        LEFT + plot_w
    );
    // Bands: a lane's overlapping bands get their labels on separate lines.
    let mut slots: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for b in &bands {
        let (x0, x1) = (x(b.from), x(b.to));
        let w = (x1 - x0).max(2.0);
        for &l in &b.lanes {
            let ends = slots.entry(l).or_default();
            let slot = match ends.iter().position(|&e| e <= b.from) {
                Some(s) => s,
                None => {
                    ends.push(0);
                    ends.len() - 1
                }
            };
            ends[slot] = b.to.max(b.from + 1);
            let (fill, opacity, class) = if b.down {
                ("url(#hatch)".to_string(), 0.75, "band down")
            } else {
                (fault_color(&b.kind).to_string(), 0.5, "band fault")
            };
            let _ = write!(
                svg,
                r##"<g class="{class}" data-kind="{}" data-lane="{}"><rect x="{x0:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="{fill}" opacity="{opacity}"/>"##,
                escape(&b.kind),
                escape(&lanes[l]),
                ly(l) + 1.0,
                LANE - 2.0,
            );
            if w >= 12.0 {
                let _ = write!(
                    svg,
                    r##"<text x="{:.1}" y="{:.1}" fill="{}" font-size="9" font-weight="bold">{}</text>"##,
                    x0 + 2.0,
                    ly(l) + 10.0 + (slot % 3) as f64 * 10.0,
                    if b.down { "#fff" } else { "#343a40" },
                    escape(&b.kind)
                );
            }
            let _ = write!(svg, "<title>{}</title></g>", b.tooltip);
        }
    }
    // Lane names, over the backgrounds.
    for (i, name) in lanes.iter().enumerate() {
        let _ = write!(
            svg,
            r##"<text class="lane" x="8" y="{:.1}" font-weight="bold" font-size="12" fill="#212529">{}</text>"##,
            ly(i) + LANE / 2.0 + 4.0,
            escape(name)
        );
    }
    // Healing and recovery lines, with their labels.
    let top_text = |svg: &mut String, l: &TopLabel, class: &str| {
        let (tx, anchor) = if l.end_anchor { (l.x - 3.0, "end") } else { (l.x + 3.0, "start") };
        let _ = write!(
            svg,
            r##"<text class="{class}" x="{tx:.1}" y="{:.1}" text-anchor="{anchor}" fill="{}" font-size="{}"{}>{}</text>"##,
            row_y(l.row),
            l.color,
            l.size,
            if l.bold { r#" font-weight="bold""# } else { "" },
            escape(&l.text)
        );
    };
    if let Some(i) = healed {
        let l = &top[i];
        let _ = write!(
            svg,
            r##"<g class="healed"><line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="#2b9348" stroke-dasharray="6 4" stroke-width="2"/><line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="transparent" stroke-width="8"/>"##,
            l.x,
            row_y(l.row) - 10.0,
            lanes_bottom
        );
        top_text(&mut svg, l, "lbl");
        let _ = write!(
            svg,
            "<title>{}</title></g>",
            tip_fmt(format_args!(
                "healed at {:.3} ms: every fault healed, every node up; liveness deadline {:.1} ms",
                ms(history.healed_at_us),
                ms(history.deadline_us)
            ))
        );
    }
    for (i, _, tooltip) in &recoveries {
        let l = &top[*i];
        let _ = write!(
            svg,
            r##"<g class="rec"><line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="#f77f00" stroke-width="2" opacity="0.85"/><line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="transparent" stroke-width="7"/>"##,
            l.x,
            row_y(l.row) - 10.0,
            lanes_bottom,
        );
        top_text(&mut svg, l, "lbl");
        let _ = write!(svg, "<title>{tooltip}</title></g>");
    }
    // Markers.
    let mut seen: BTreeMap<Mk, usize> = BTreeMap::new();
    let mut thinned: Vec<(Mk, usize, usize)> = Vec::new();
    for (k, n) in &counts {
        let s = stride[k];
        if s > 1 {
            thinned.push((*k, *n, s));
        }
    }
    for e in &history.events {
        let Some(k) = Mk::of(&e.ev) else { continue };
        if k == Mk::Recovery {
            continue; // drawn as a line across all lanes
        }
        let n = seen.entry(k).or_insert(0);
        *n += 1;
        if !(*n - 1).is_multiple_of(stride[&k]) {
            continue;
        }
        let Ev::Engine(ev) = &e.ev else { continue };
        let lane = lane_of.get(e.node.as_str()).copied().unwrap_or(sim_lane);
        let (cx, cy) = (x(e.t_us), ly(lane) + LANE / 2.0);
        let label = match ev {
            Event::CheckpointCompleted { ckpt, .. } => Some(*ckpt),
            _ => None,
        };
        let _ = write!(
            svg,
            r##"<g class="m {}">{}<title>{}</title></g>"##,
            k.class(),
            k.shape(cx, cy, label),
            tip_fmt(format_args!("{:.3} ms @ {}: {ev:?}", ms(e.t_us), e.node))
        );
    }
    // Violations, on top of everything.
    for (i, xx, vs) in &viol_lines {
        let l = &top[*i];
        let _ = write!(
            svg,
            r##"<g class="viol"><line x1="{xx:.1}" y1="{:.1}" x2="{xx:.1}" y2="{lanes_bottom:.1}" stroke="#d00000" stroke-width="4" opacity="0.9"/>"##,
            row_y(l.row) - 11.0,
        );
        top_text(&mut svg, l, "vlbl");
        svg.push_str("<title>");
        for (j, v) in vs.iter().take(8).enumerate() {
            if j > 0 {
                svg.push('\n');
            }
            let when = v.t_ms.map_or(String::new(), |t| format!("{t:.3} ms"));
            svg.push_str(&tip_fmt(format_args!("{} at {when}: {}", v.check, v.message)));
        }
        if vs.len() > 8 {
            let _ = write!(svg, "\n(+{} more)", vs.len() - 8);
        }
        svg.push_str("</title></g>");
    }
    // The hover cursor (moved by the script).
    let _ = write!(
        svg,
        r##"<g id="cur" visibility="hidden" pointer-events="none"><line id="curl" x1="0" y1="{lanes_top:.1}" x2="0" y2="{lanes_bottom:.1}" stroke="#212529" stroke-width="0.8" stroke-dasharray="2 2"/><rect id="curb" x="0" y="{:.1}" width="74" height="14" fill="#212529" rx="2"/><text id="curt" x="0" y="{:.1}" fill="#fff" font-size="10"></text></g>"##,
        lanes_bottom + 1.0,
        lanes_bottom + 11.5
    );
    svg.push_str("</svg>");

    // ---- the violations box ----
    let mut vbox = String::new();
    if violations.is_empty() {
        vbox.push_str(r#"<div class="vbox ok">No violations: every check held.</div>"#);
    } else {
        let _ = write!(vbox, r#"<div class="vbox bad"><b>{} violation(s)</b><ul>"#, violations.len());
        for v in violations {
            let when = match v.t_ms {
                Some(t) => format!(r#"<span class="when">at {t:.3} ms</span>"#),
                None => r#"<span class="when eor">end of run</span>"#.to_string(),
            };
            let _ = write!(vbox, "<li><b>{}</b> {when} {}</li>", escape(&v.check), escape(&v.message));
        }
        vbox.push_str("</ul></div>");
    }

    // ---- the legend ----
    let mut legend = String::new();
    for k in Mk::ALL {
        let sym = if k == Mk::Recovery {
            r##"<line x1="9" y1="0" x2="9" y2="20" stroke="#f77f00" stroke-width="2"/>"##.to_string()
        } else {
            k.shape(9.0, 10.0, None)
        };
        let sym = match k {
            // Dots sit off-centre in a lane: centre them here.
            Mk::PreCommit => Mk::PreCommit.shape(9.0, 17.0, None),
            Mk::CommitConfirmed => Mk::CommitConfirmed.shape(9.0, 3.0, None),
            _ => sym,
        };
        let _ = write!(
            legend,
            r#"<span class="li"><svg width="20" height="20" viewBox="0 0 20 20">{sym}</svg>{}{}</span>"#,
            k.name(),
            counts.get(&k).map_or(String::new(), |n| format!(" ({n})"))
        );
    }
    let _ = write!(
        legend,
        r##"<span class="li"><svg width="20" height="20"><line x1="9" y1="0" x2="9" y2="20" stroke="#2b9348" stroke-width="2" stroke-dasharray="4 3"/></svg>healed</span><span class="li"><svg width="20" height="20"><line x1="9" y1="0" x2="9" y2="20" stroke="#d00000" stroke-width="4"/></svg>violation</span><span class="li"><svg width="26" height="16"><rect width="26" height="16" fill="url(#hatch2)" opacity="0.75"/><defs><pattern id="hatch2" width="7" height="7" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="7" height="7" fill="#495057"/><line x1="0" y1="0" x2="0" y2="7" stroke="#212529" stroke-width="3.5"/></pattern></defs></svg>node down</span>"##
    );
    if fault_kinds.is_empty() {
        legend.push_str(r#"<span class="li">no fault windows</span>"#);
    }
    for k in &fault_kinds {
        let _ = write!(
            legend,
            r#"<span class="li"><span class="sw" style="background:{}"></span>{}</span>"#,
            fault_color(k),
            escape(k)
        );
    }
    let mut notes = String::new();
    for (k, n, s) in &thinned {
        let _ = write!(notes, "{}: {n} events, 1 in {s} drawn. ", k.name());
    }
    if !notes.is_empty() {
        notes = format!(r#"<div class="note">Thinned: {}</div>"#, escape(notes.trim_end()));
    }

    let finished =
        history.finished_at_us.map_or("did not finish".to_string(), |t| format!("finished at {:.1} ms", ms(t)));
    format!(
        r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{t}</title>
<style>
body{{font-family:sans-serif;margin:14px 18px;color:#212529;min-width:{CHART_W}px}}
h1{{font-size:20px;margin:0 0 4px}}
.sub{{color:#495057;font-size:13px;margin-bottom:8px}}
.vbox{{border:1px solid;border-radius:4px;padding:6px 10px;margin:6px 0;font-size:13px;max-width:{CHART_W}px}}
.vbox.ok{{border-color:#2b9348;color:#2b9348;background:#f0fff4}}
.vbox.bad{{border-color:#d00000;background:#fff5f5;max-height:260px;overflow:auto}}
.vbox ul{{margin:4px 0 0;padding-left:20px}} .vbox li{{margin:2px 0;color:#6a040f}}
.when{{color:#495057;font-size:12px;margin-right:4px}} .eor{{background:#ffe066;color:#000;padding:0 4px;border-radius:3px}}
.legend{{font-size:12px;margin:6px 0;display:flex;flex-wrap:wrap;gap:2px 14px;max-width:{CHART_W}px}}
.li{{display:inline-flex;align-items:center;gap:3px}} .li svg{{vertical-align:middle}}
.sw{{display:inline-block;width:22px;height:14px;opacity:0.6;border:1px solid #adb5bd}}
.note{{font-size:12px;color:#6c757d}}
svg .m:hover{{opacity:0.6}}
</style></head>
<body><h1>{t}</h1>
<div class="sub">scenario {sc} &middot; seed {seed} &middot; mode {mode} &middot; parallelism {par} &middot; {n} events &middot; {end:.1} ms simulated &middot; healed at {healed:.1} ms &middot; {finished}</div>
{vbox}<div class="legend">{legend}</div>{notes}
{svg}
<script>
(function(){{var s=document.getElementById('tl');if(!s||!s.getScreenCTM)return;
var L=+s.dataset.left,R=+s.dataset.right,E=+s.dataset.endMs,g=document.getElementById('cur'),
l=document.getElementById('curl'),b=document.getElementById('curb'),t=document.getElementById('curt');
s.addEventListener('mousemove',function(ev){{var p=s.createSVGPoint();p.x=ev.clientX;p.y=ev.clientY;
var q=p.matrixTransform(s.getScreenCTM().inverse());if(q.x<L||q.x>R){{g.setAttribute('visibility','hidden');return;}}
g.setAttribute('visibility','visible');l.setAttribute('x1',q.x);l.setAttribute('x2',q.x);
var bx=Math.min(q.x-37,R-74);b.setAttribute('x',bx);t.setAttribute('x',bx+4);
t.textContent=((q.x-L)/(R-L)*E).toFixed(2)+' ms';}});
s.addEventListener('mouseleave',function(){{g.setAttribute('visibility','hidden');}});}})();
</script>
</body></html>
"##,
        t = escape(title),
        sc = escape(&history.scenario),
        seed = history.seed,
        mode = history.mode.name(),
        par = history.parallelism,
        n = history.events.len(),
        end = ms(end_us),
        healed = ms(history.healed_at_us),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use exactsim_engine::types::{DeliveryMode, TaskId};
    use exactsim_sim::history::Stamped;

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
            input: vec![],
            events,
            observations: vec![],
            final_output: vec![],
            final_read_ok: true,
            final_open_txns: vec![],
            healed_at_us: 90_000,
            deadline_us: 200_000,
            finished_at_us: Some(120_000),
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
                Event::PreCommitted { task: TaskId::Chain(0), ckpt: 1, txn: "t-0-1".into(), epoch: 1, records: 5 },
            ),
            eng(
                13_000,
                "worker-1",
                Event::PreCommitted { task: TaskId::Chain(1), ckpt: 1, txn: "t-1-1".into(), epoch: 1, records: 5 },
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
                Event::CommitFailed { task: TaskId::Chain(1), ckpt: 3, txn: "t-1-3".into(), reason: "x".repeat(2000) },
            ),
            sim(70_000, "sim", SimEvent::FaultStarted { kind: "packet_loss".into(), detail: LOSS.into() }),
            sim(90_000, "sim", SimEvent::Healed),
            eng(100_000, c, Event::CheckpointTriggered { attempt: 2, ckpt: 4 }),
            eng(110_000, c, Event::CheckpointCompleted { attempt: 2, ckpt: 4, offsets: vec![9, 9], finished: true }),
            eng(120_000, c, Event::JobFinished { attempt: 2, ckpt: 4 }),
            sim(125_000, "sim", SimEvent::RunEnded),
        ])
    }

    fn violations() -> Vec<ViolationReport> {
        vec![
            ViolationReport { check: "P1".into(), message: "lost <3> records & \"more\"".into(), t_ms: Some(45.0) },
            ViolationReport { check: "P7".into(), message: "open transactions at the end".into(), t_ms: None },
        ]
    }

    #[test]
    fn a_lane_per_node() {
        let html = render(&sample(), &[], "word_count seed 42 chaos");
        assert_eq!(html.matches(r#"class="lane""#).count(), 6);
        for lane in ["coordinator", "broker", "store", "worker-0", "worker-1", "sim"] {
            assert!(html.contains(&format!(">{lane}</text>")), "lane {lane}");
        }
        assert!(html.contains("No violations"));
    }

    #[test]
    fn lanes_sort_naturally() {
        let mut h = sample();
        h.events.push(eng(1, "worker-10", Event::NodeStarted));
        h.events.push(eng(1, "worker-2", Event::NodeStarted));
        let lanes = lanes_of(&h);
        assert_eq!(lanes, ["coordinator", "broker", "store", "worker-0", "worker-1", "worker-2", "worker-10", "sim"]);
    }

    #[test]
    fn fault_bands_and_down_periods() {
        let html = render(&sample(), &[], "t");
        // The partition names broker and worker-0: a band on each of them.
        assert_eq!(html.matches(r#"data-kind="partition""#).count(), 2);
        assert!(html.contains(r#"data-kind="partition" data-lane="broker""#));
        assert!(html.contains(r#"data-kind="partition" data-lane="worker-0""#));
        assert!(html.contains(">partition</text>"));
        // Packet loss is network-wide: every lane; it is still open at the
        // end, so it ends at the healing.
        assert_eq!(html.matches(r#"data-kind="packet_loss""#).count(), 6);
        assert!(html.contains("packet_loss 70.0\u{2013}90.0 ms (healed)"));
        // worker-1 was down 30..40 ms, cause escaped in the tooltip.
        assert!(html.contains(r#"class="band down" data-kind="down" data-lane="worker-1""#));
        assert!(html.contains(">down</text>"));
        assert!(html.contains("crash &lt;scheduled&gt; &amp; &quot;torn&quot;"));
    }

    #[test]
    fn markers_and_lines() {
        let html = render(&sample(), &violations(), "t");
        for class in [
            "m-trig",
            "m-done",
            "m-cfail",
            "m-fin",
            "m-pre",
            "m-commit",
            "m-commitfail",
            "m-taskfail",
            "m-txc",
            "m-txa",
            "m-fatal",
        ] {
            assert!(html.contains(&format!(r#"class="m {class}""#)), "{class}");
        }
        assert!(html.contains(">recovery a1 from scratch</text>"));
        assert!(html.contains(">recovery a2 from ckpt 1</text>"));
        assert!(html.contains(">healed (liveness phase)</text>"));
        assert!(html.contains(r#"class="healed""#));
        // Every marker has a tooltip.
        for g in html.split(r#"<g class="m "#).skip(1) {
            let g = &g[..g.find("</g>").unwrap()];
            assert!(g.contains("<title>"), "{g}");
        }
    }

    #[test]
    fn violations_are_drawn_and_listed() {
        let html = render(&sample(), &violations(), "t");
        // P1 has a time: a line and a label; P7 has none: listed only.
        assert_eq!(html.matches(r#"<g class="viol">"#).count(), 1);
        assert!(html.contains(">P1</text>"));
        assert!(!html.contains(">P7</text>"));
        assert!(html.contains("<li><b>P7</b> <span class=\"when eor\">end of run</span>"));
        assert!(html.contains("<li><b>P1</b> <span class=\"when\">at 45.000 ms</span>"));
        assert!(html.contains("2 violation(s)"));
    }

    #[test]
    fn simultaneous_violations_share_a_line() {
        let mut v = violations();
        for m in ["a", "b"] {
            v.push(ViolationReport { check: "P6".into(), message: m.into(), t_ms: Some(80.0) });
        }
        v.push(ViolationReport { check: "P3".into(), message: "c".into(), t_ms: Some(80.001) });
        let html = render(&sample(), &v, "t");
        assert_eq!(html.matches(r#"<g class="viol">"#).count(), 2);
        assert!(html.contains(">P6\u{d7}2 P3</text>"));
        assert!(html.contains("P6 at 80.000 ms: a\nP6 at 80.000 ms: b\nP3 at 80.001 ms: c</title>"));
    }

    #[test]
    fn escaping_and_truncation() {
        let v = vec![ViolationReport {
            check: "P<2>".into(),
            message: "<script>alert(\"x\")</script> & co".into(),
            t_ms: Some(1.0),
        }];
        let html = render(&sample(), &v, "title <b>\"x\"</b> & y");
        assert!(!html.contains("<script>alert"));
        assert!(!html.contains("<b>\"x\"</b>"));
        assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co"));
        assert!(html.contains("title &lt;b&gt;&quot;x&quot;&lt;/b&gt; &amp; y"));
        assert!(html.contains(">P&lt;2&gt;</text>"));
        // The 2000-character reason is cut.
        assert!(html.contains(&"x".repeat(100)));
        assert!(!html.contains(&"x".repeat(320)));
        assert!(html.contains('\u{2026}'));
        assert_eq!(escape(r#"a&b<c>d"e'"#), "a&amp;b&lt;c&gt;d&quot;e&#39;");
    }

    #[test]
    fn self_contained() {
        let html = render(&sample(), &violations(), "t");
        assert_eq!(html.matches("http://www.w3.org/2000/svg").count(), 1);
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
                Event::PreCommitted { task: TaskId::Chain(0), ckpt: i, txn: format!("t{i}"), epoch: 1, records: 1 },
            ));
            events.push(eng(
                i * 10 + 1,
                "broker",
                Event::AppendAccepted { txn: format!("t{i}"), epoch: 1, partition: 0, records: 1 },
            ));
        }
        let h = history(events);
        let html = render(&h, &[], "big");
        let drawn = html.matches(r#"class="m m-pre""#).count();
        assert!((2000..=MAX_PER_KIND).contains(&drawn), "{drawn}");
        assert!(html.contains("Thinned: pre-committed: 20000 events, 1 in 7 drawn."));
        assert!(html.len() < 3_000_000, "{}", html.len());
    }

    #[test]
    fn empty_history() {
        let mut h = history(vec![]);
        h.healed_at_us = 0;
        h.finished_at_us = None;
        let html = render(&h, &[], "empty");
        assert!(html.contains(">sim</text>") && html.contains("did not finish"));
        assert!(html.contains("0 ms"));
    }

    #[test]
    fn tick_steps() {
        assert_eq!(tick_step_us(2_434_000), 200_000);
        assert_eq!(tick_step_us(60), 5);
        assert_eq!(fmt_ms(400_000, 200_000), "400 ms");
        assert_eq!(fmt_ms(2_500, 500), "2.5 ms");
    }
}
