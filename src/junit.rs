//! JUnit XML for CI: one test case per (scenario, seed), the violation text
//! and the replay command in the failure message.

use crate::campaign::CampaignReport;

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub fn render(rep: &CampaignReport) -> String {
    let failures = rep.runs.iter().filter(|r| r.verdict != "pass").count();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str(&format!(
        "<testsuites name=\"exactsim\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">\n",
        rep.runs.len(),
        failures,
        rep.wall_ms as f64 / 1000.0
    ));
    s.push_str(&format!(
        "  <testsuite name=\"exactsim.{}.{}\" tests=\"{}\" failures=\"{}\">\n",
        escape(&rep.profile),
        escape(&rep.mode),
        rep.runs.len(),
        failures
    ));
    for r in &rep.runs {
        let name = format!("{} seed {}", r.scenario, r.seed);
        s.push_str(&format!("    <testcase classname=\"exactsim.{}\" name=\"{}\"", escape(&r.scenario), escape(&name)));
        match rep.failures.iter().find(|f| f.seed == r.seed && f.scenario == r.scenario) {
            None => s.push_str("/>\n"),
            Some(f) => {
                let first = f.violations.first().map(|v| format!("{}: {}", v.check, v.message)).unwrap_or_default();
                let mut body = String::new();
                for v in &f.violations {
                    body.push_str(&format!("{} {}\n", v.check, v.message));
                }
                body.push_str(&format!("reproduce: {}\n", f.repro));
                s.push_str(&format!(
                    ">\n      <failure message=\"{}\" type=\"violation\">{}</failure>\n    </testcase>\n",
                    escape(&first),
                    escape(&body)
                ));
            }
        }
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}
