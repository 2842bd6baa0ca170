//! HTML timeline of a run: one self-contained file (inline CSS and SVG, no
//! network) with a swimlane per node, fault windows as bands, node down
//! periods, checkpoint triggers and completions, pre-commits and commits,
//! recoveries, the healing point, and the violations marked.

use exactsim_engine::observe::Event;
use exactsim_sim::history::{Ev, History, SimEvent};
use exactsim_sim::report::ViolationReport;
use std::collections::BTreeMap;
use std::fmt::Write;

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn tip(s: &str) -> String {
    let t: String = s.chars().take(300).collect();
    escape(&t)
}

const W: f64 = 1600.0;
const LEFT: f64 = 110.0;
const LANE: f64 = 40.0;
const TOP: f64 = 40.0;

fn color(kind: &str) -> &'static str {
    match kind {
        "partition" | "isolate" => "#f4a261",
        "packet_loss" => "#e9c46a",
        "latency" => "#a8dadc",
        "slow_disk" => "#b5838d",
        "disk_errors" => "#e76f51",
        "corrupt_reads" => "#d62828",
        _ => "#adb5bd",
    }
}

pub fn render(history: &History, violations: &[ViolationReport], title: &str) -> String {
    // Lanes: engine nodes in a fixed order, then anything else seen.
    let mut lanes: Vec<String> = vec!["coordinator".into(), "broker".into(), "store".into()];
    let mut workers: Vec<String> = history
        .events
        .iter()
        .map(|e| match &e.ev {
            Ev::Sim(SimEvent::NodeCrashed { node, .. }) | Ev::Sim(SimEvent::NodeRestarted { node }) => node.clone(),
            _ => e.node.clone(),
        })
        .filter(|n| n.starts_with("worker-"))
        .collect();
    workers.sort();
    workers.dedup();
    lanes.extend(workers);
    lanes.push("sim".into());
    let lane_of: BTreeMap<String, usize> = lanes.iter().enumerate().map(|(i, n)| (n.clone(), i)).collect();
    let end_us = history.events.last().map(|e| e.t_us).unwrap_or(1).max(1);
    let x = |t: u64| LEFT + (t as f64 / end_us as f64) * (W - LEFT - 20.0);
    let y = |lane: usize| TOP + lane as f64 * LANE;
    let height = TOP + lanes.len() as f64 * LANE + 40.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    for (i, name) in lanes.iter().enumerate() {
        let fill = if i % 2 == 0 { "#f8f9fa" } else { "#ffffff" };
        let _ = write!(svg, r#"<rect x="0" y="{}" width="{W}" height="{LANE}" fill="{fill}"/>"#, y(i));
        let _ =
            write!(svg, r#"<text x="6" y="{}" font-weight="bold">{}</text>"#, y(i) + LANE / 2.0 + 4.0, escape(name));
    }
    // Time axis.
    let step_ms = [50u64, 100, 200, 250, 500, 1000, 2000, 5000, 10000]
        .into_iter()
        .find(|s| end_us / 1000 / s <= 16)
        .unwrap_or(20000);
    let mut t = 0;
    while t * 1000 <= end_us {
        let xx = x(t * 1000);
        let _ = write!(svg, r##"<line x1="{xx}" y1="{TOP}" x2="{xx}" y2="{}" stroke="#dee2e6"/>"##, height - 40.0);
        let _ =
            write!(svg, r##"<text x="{xx}" y="{}" text-anchor="middle" fill="#495057">{t} ms</text>"##, height - 25.0);
        t += step_ms;
    }
    // Fault windows and down periods.
    let mut open_faults: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut down: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut bands = String::new();
    let mut band = |from: u64, to: u64, lanes_hit: Vec<usize>, col: &str, label: &str, tooltip: &str, hatch: bool| {
        for l in lanes_hit {
            let fill = if hatch { "url(#hatch)".to_string() } else { col.to_string() };
            let _ = write!(
                bands,
                r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{fill}" opacity="0.55"><title>{}</title></rect><text x="{}" y="{}" fill="{}" font-size="9">{}</text>"#,
                x(from),
                y(l) + 2.0,
                (x(to) - x(from)).max(2.0),
                LANE - 4.0,
                tip(tooltip),
                x(from) + 2.0,
                y(l) + 11.0,
                if hatch { "#212529" } else { "#343a40" },
                escape(label)
            );
        }
    };
    let lanes_named = |detail: &str| -> Vec<usize> {
        let hit: Vec<usize> =
            lanes.iter().enumerate().filter(|(_, n)| detail.contains(&format!("\"{n}\""))).map(|(i, _)| i).collect();
        if hit.is_empty() {
            (0..lanes.len() - 1).collect()
        } else {
            hit
        }
    };
    let mut marks = String::new();
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for e in &history.events {
        let lane = lane_of.get(&e.node).copied().unwrap_or(lanes.len() - 1);
        let (cx, cy) = (x(e.t_us), y(lane) + LANE / 2.0);
        let dbg = format!("{:.1}ms {}: {:?}", e.t_us as f64 / 1000.0, e.node, e.ev);
        let mut mark = |kind: &'static str, shape: String| {
            let n = counts.entry(kind).or_insert(0);
            *n += 1;
            if *n <= 3000 {
                let _ = write!(marks, "<g>{shape}<title>{}</title></g>", tip(&dbg));
            }
        };
        match &e.ev {
            Ev::Sim(SimEvent::FaultStarted { kind, detail }) => {
                open_faults.insert(detail.clone(), (e.t_us, kind.clone()));
            }
            Ev::Sim(SimEvent::FaultEnded { detail, .. }) => {
                if let Some((from, kind)) = open_faults.remove(detail) {
                    band(from, e.t_us, lanes_named(detail), color(&kind), &kind, detail, false);
                }
            }
            Ev::Sim(SimEvent::NodeCrashed { node, cause, .. }) => {
                down.insert(node.clone(), (e.t_us, cause.clone()));
            }
            Ev::Sim(SimEvent::NodeRestarted { node }) => {
                if let Some((from, cause)) = down.remove(node) {
                    if let Some(l) = lane_of.get(node) {
                        band(from, e.t_us, vec![*l], "#343a40", "down", &format!("{node} down: {cause}"), true);
                    }
                }
            }
            Ev::Engine(Event::CheckpointTriggered { .. }) => mark(
                "trig",
                format!(r##"<line x1="{cx}" y1="{}" x2="{cx}" y2="{}" stroke="#868e96"/>"##, cy - 8.0, cy + 8.0),
            ),
            Ev::Engine(Event::CheckpointCompleted { ckpt, .. }) => mark(
                "done",
                format!(
                    r##"<path d="M{cx} {} l6 6 l-6 6 l-6 -6 z" fill="#2b9348"/><text x="{}" y="{}" fill="#2b9348" font-size="9">{ckpt}</text>"##,
                    cy - 6.0,
                    cx + 7.0,
                    cy - 6.0
                ),
            ),
            Ev::Engine(Event::CheckpointFailed { .. }) => mark(
                "failed",
                format!(
                    r##"<path d="M{} {} l8 8 M{} {} l-8 8" stroke="#c1121f" stroke-width="2"/>"##,
                    cx - 4.0,
                    cy - 4.0,
                    cx + 4.0,
                    cy - 4.0
                ),
            ),
            Ev::Engine(Event::RecoveryStarted { attempt, from, .. }) => {
                let _ = write!(
                    marks,
                    r##"<g><line x1="{cx}" y1="{TOP}" x2="{cx}" y2="{}" stroke="#f77f00" stroke-width="2"/><text x="{}" y="{}" fill="#f77f00">recovery a{attempt} from {}</text><title>{}</title></g>"##,
                    height - 40.0,
                    cx + 3.0,
                    TOP - 4.0 - ((*attempt % 2) as f64) * 11.0,
                    from.map_or("scratch".into(), |f| format!("ckpt {f}")),
                    tip(&dbg)
                );
            }
            Ev::Engine(Event::JobFinished { .. }) => mark(
                "finished",
                format!(
                    r##"<path d="M{cx} {} v16 M{cx} {} l10 4 l-10 4 z" stroke="#000" fill="#000"/>"##,
                    cy - 8.0,
                    cy - 8.0
                ),
            ),
            Ev::Engine(Event::PreCommitted { .. }) => {
                mark("pre", format!(r##"<circle cx="{cx}" cy="{}" r="3.5" fill="#1d4ed8"/>"##, cy - 7.0))
            }
            Ev::Engine(Event::CommitConfirmed { .. }) => {
                mark("commit", format!(r##"<circle cx="{cx}" cy="{}" r="3.5" fill="#7b2cbf"/>"##, cy + 7.0))
            }
            Ev::Engine(Event::CommitFailed { .. }) => mark(
                "cfail",
                format!(r##"<rect x="{}" y="{}" width="8" height="8" fill="#c1121f"/>"##, cx - 4.0, cy - 4.0),
            ),
            Ev::Engine(Event::TaskFailed { .. }) => {
                mark("tfail", format!(r##"<path d="M{cx} {} l5 9 h-10 z" fill="#c1121f"/>"##, cy - 5.0))
            }
            Ev::Engine(Event::TxnCommitted { .. }) | Ev::Engine(Event::TxnCommitReplayed { .. }) => mark(
                "txc",
                format!(
                    r##"<line x1="{cx}" y1="{}" x2="{cx}" y2="{}" stroke="#7b2cbf" stroke-width="2"/>"##,
                    cy - 10.0,
                    cy + 10.0
                ),
            ),
            Ev::Engine(Event::TxnAborted { .. }) => mark(
                "txa",
                format!(
                    r##"<line x1="{cx}" y1="{}" x2="{cx}" y2="{}" stroke="#adb5bd" stroke-width="2"/>"##,
                    cy - 10.0,
                    cy + 10.0
                ),
            ),
            Ev::Engine(Event::FatalError { .. }) => mark(
                "fatal",
                format!(r##"<text x="{}" y="{}" fill="#c1121f" font-size="16">*</text>"##, cx - 4.0, cy + 6.0),
            ),
            _ => {}
        }
    }
    // Windows still open at the end.
    for (detail, (from, kind)) in std::mem::take(&mut open_faults) {
        band(from, end_us, lanes_named(&detail), color(&kind), &kind, &detail, false);
    }
    for (node, (from, cause)) in std::mem::take(&mut down) {
        if let Some(l) = lane_of.get(&node) {
            band(from, end_us, vec![*l], "#343a40", "down", &format!("{node} down: {cause}"), true);
        }
    }
    svg.push_str(r##"<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#6c757d"/><line x1="0" y1="0" x2="0" y2="6" stroke="#212529" stroke-width="3"/></pattern></defs>"##);
    svg.push_str(&bands);
    let hx = x(history.healed_at_us.min(end_us));
    let _ = write!(
        svg,
        r##"<line x1="{hx}" y1="{TOP}" x2="{hx}" y2="{}" stroke="#2b9348" stroke-dasharray="6 4" stroke-width="2"/><text x="{}" y="{}" fill="#2b9348">healed (liveness phase)</text>"##,
        height - 40.0,
        hx + 3.0,
        height - 44.0
    );
    svg.push_str(&marks);
    for v in violations {
        if let Some(t) = v.t_ms {
            let vx = x(((t * 1000.0) as u64).min(end_us));
            let _ = write!(
                svg,
                r##"<g><line x1="{vx}" y1="{}" x2="{vx}" y2="{}" stroke="#d00000" stroke-width="4"/><text x="{}" y="{}" fill="#d00000" font-weight="bold" font-size="13">{}</text><title>{}</title></g>"##,
                TOP - 14.0,
                height - 40.0,
                vx + 4.0,
                TOP + 12.0,
                escape(&v.check),
                tip(&v.message)
            );
        }
    }
    svg.push_str("</svg>");
    let mut list = String::new();
    if violations.is_empty() {
        list.push_str("<p class=ok>every check held</p>");
    } else {
        list.push_str("<ul class=viol>");
        for v in violations {
            let when = v.t_ms.map_or("end of run".to_string(), |t| format!("{t:.1} ms"));
            let _ = write!(list, "<li><b>{}</b> [{}] {}</li>", escape(&v.check), escape(&when), escape(&v.message));
        }
        list.push_str("</ul>");
    }
    let legend = "<span style='color:#868e96'>| trigger</span> <span style='color:#2b9348'>&#9670; completed</span> \
        <span style='color:#c1121f'>&#10005; failed</span> <span style='color:#1d4ed8'>&#9679; pre-commit</span> \
        <span style='color:#7b2cbf'>&#9679; commit confirmed | broker commit</span> <span style='color:#f77f00'>| recovery</span> \
        <span style='color:#c1121f'>&#9650; task failed &#9632; commit failed</span> \
        <span style='background:#6c757d;color:#fff'>&nbsp;down&nbsp;</span> fault windows: \
        <span style='background:#f4a261'>partition</span> <span style='background:#e9c46a'>packet loss</span> \
        <span style='background:#a8dadc'>latency</span> <span style='background:#b5838d'>slow disk</span> \
        <span style='background:#e76f51'>disk errors</span> <span style='background:#d62828;color:#fff'>corrupt reads</span> \
        <span style='color:#d00000'><b>| violation</b></span>";
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>body{{font-family:sans-serif;margin:16px}}\
         .ok{{color:#2b9348}} .viol li{{color:#9d0208;margin:2px 0}} .legend{{font-size:12px;margin:8px 0}}</style></head>\
         <body><h2>{t}</h2><div>seed {seed}, scenario {sc}, mode {mode}, {n} events, {end:.1} ms simulated</div>{list}\
         <div class=legend>{legend}</div>{svg}</body></html>",
        t = escape(title),
        seed = history.seed,
        sc = escape(&history.scenario),
        mode = history.mode.name(),
        n = history.events.len(),
        end = end_us as f64 / 1000.0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use exactsim_engine::types::DeliveryMode;
    use exactsim_sim::history::Stamped;

    fn hist() -> History {
        let st = |t_us: u64, node: &str, ev: Ev| Stamped { t_us, node: node.into(), ev };
        History {
            scenario: "word_count".into(),
            seed: 7,
            mode: DeliveryMode::ExactlyOnce,
            parallelism: 1,
            input: vec![],
            events: vec![
                st(0, "sim", Ev::Sim(SimEvent::RunStarted)),
                st(10, "coordinator", Ev::Engine(Event::CheckpointTriggered { attempt: 1, ckpt: 1 })),
                st(
                    20,
                    "sim",
                    Ev::Sim(SimEvent::FaultStarted {
                        kind: "partition".into(),
                        detail: r#"{"a":"broker","b":"worker-0"}"#.into(),
                    }),
                ),
                st(
                    30,
                    "sim",
                    Ev::Sim(SimEvent::NodeCrashed {
                        node: "worker-0".into(),
                        cause: "<x>".into(),
                        lost_bytes: 0,
                        torn_files: 0,
                    }),
                ),
                st(40, "sim", Ev::Sim(SimEvent::NodeRestarted { node: "worker-0".into() })),
                st(
                    50,
                    "sim",
                    Ev::Sim(SimEvent::FaultEnded {
                        kind: "partition".into(),
                        detail: r#"{"a":"broker","b":"worker-0"}"#.into(),
                    }),
                ),
                st(
                    60,
                    "coordinator",
                    Ev::Engine(Event::CheckpointCompleted { attempt: 1, ckpt: 1, offsets: vec![1], finished: true }),
                ),
            ],
            observations: vec![],
            final_output: vec![],
            final_read_ok: true,
            final_open_txns: vec![],
            healed_at_us: 55,
            deadline_us: 100,
            finished_at_us: None,
        }
    }

    #[test]
    fn lanes_bands_violations_and_escaping() {
        let v = vec![ViolationReport { check: "P1".into(), message: "lost <3> & more".into(), t_ms: Some(0.045) }];
        let html = render(&hist(), &v, "t <1>");
        for lane in ["coordinator", "broker", "store", "worker-0", "sim"] {
            assert!(html.contains(&format!(">{lane}</text>")), "lane {lane}");
        }
        assert!(html.contains(">partition</text>"), "fault band");
        assert!(html.contains(">down</text>"), "down band");
        assert!(html.contains(">P1</text>") && html.contains("lost &lt;3&gt; &amp; more"));
        assert!(html.contains("t &lt;1&gt;") && !html.contains("t <1>"));
        let without_ns = html.replace("http://www.w3.org/2000/svg", "");
        assert!(!without_ns.contains("http://") && !without_ns.contains("https://"), "self-contained");
    }
}
