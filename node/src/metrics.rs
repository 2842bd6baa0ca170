//! A real-mode engine process's metrics on loopback: the events it emits,
//! folded by `exactsim_model::metrics` (the fold a simulated run's report
//! samples), served as `GET /metrics` in Prometheus's text format
//! (`prometheus-client`'s encoder), labelled with the node's name. The
//! supervisor gives each node its port (`NodeSpec::metrics`) and writes
//! the targets for a Prometheus to scrape (`targets.json`).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use exactsim_model::metrics::{Kind, Metrics};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

/// The page Prometheus scrapes: every metric of the fold, `exactsim_`
/// prefixed, labelled `node`.
pub fn page(m: &Metrics, node: &str) -> String {
    let mut reg = Registry::with_prefix_and_labels(
        "exactsim",
        [(std::borrow::Cow::Borrowed("node"), std::borrow::Cow::Owned(node.to_string()))].into_iter(),
    );
    for (name, help, kind, v) in m.families() {
        match kind {
            Kind::Counter => reg.register(name, help, ConstCounter::new(v)),
            Kind::Gauge => reg.register(name, help, ConstGauge::new(v as i64)),
        }
    }
    let mut out = String::new();
    encode(&mut out, &reg).expect("writing to a String");
    out
}

/// Serve `GET /metrics` on `addr` from a thread of its own for the life of
/// the process (it is the real-mode process, outside any simulation).
pub fn serve(addr: SocketAddr, node: String, metrics: Arc<Mutex<Metrics>>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut line = String::new();
            if BufReader::new(&conn).read_line(&mut line).is_err() {
                continue;
            }
            let (status, body) = if line.starts_with("GET /metrics") {
                let m = metrics.lock().unwrap_or_else(|e| e.into_inner()).clone();
                ("200 OK", page(&m, &node))
            } else {
                ("404 Not Found", "not found\n".to_string())
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_prometheus_text_with_every_metric_labelled_by_node() {
        let mut m = Metrics::default();
        m.checkpoints_completed = 3;
        let p = page(&m, "coordinator");
        assert!(p.contains("# TYPE exactsim_checkpoints_completed counter"), "{p}");
        assert!(p.contains("exactsim_checkpoints_completed_total{node=\"coordinator\"} 3"), "{p}");
        assert!(p.contains("exactsim_txns_pending{node=\"coordinator\"} 0"), "{p}");
        assert!(p.trim_end().ends_with("# EOF"), "{p}");
    }

    #[test]
    fn a_scrape_over_loopback_gets_the_page() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let mut m = Metrics::default();
        m.restarts = 2;
        let m = Arc::new(Mutex::new(m));
        serve(addr, "worker-0".into(), m).unwrap();
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        write!(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut body = String::new();
        std::io::Read::read_to_string(&mut c, &mut body).unwrap();
        assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
        assert!(body.contains("exactsim_restarts_total{node=\"worker-0\"} 2"), "{body}");
    }
}
