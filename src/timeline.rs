//! HTML timeline of a run (placeholder until the full renderer lands).

use exactsim_sim::history::History;
use exactsim_sim::report::ViolationReport;

pub fn render(history: &History, violations: &[ViolationReport], title: &str) -> String {
    let mut s = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body><h1>{title}</h1><ul>"
    );
    for v in violations {
        s.push_str(&format!("<li>{} {}</li>", v.check, v.message.replace('<', "&lt;")));
    }
    s.push_str(&format!("</ul><p>{} events</p></body></html>", history.events.len()));
    s
}
