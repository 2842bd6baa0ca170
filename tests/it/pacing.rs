//! Paced sources (`source_interval_ms`), as the bench's production-like
//! profile uses them: the configured rate is the rate the job reads at (no
//! faster, whatever the acknowledgements do), and the run stays a passing
//! exactly-once run.

use crate::common::*;
use exactsim::bench::production_like;
use exactsim_engine::types::DeliveryMode;
use exactsim_model::schedule::Schedule;

#[test]
fn a_paced_job_reads_at_its_configured_rate_and_passes() {
    for rate in [100u32, 1_000] {
        let mut s = make("word_count", 3, "none", DeliveryMode::ExactlyOnce, None);
        let cfg = production_like(rate);
        let sources = cfg.input_partitions() as f64;
        s.config = Some(cfg);
        s.schedule = Some(Schedule { safety_ms: 500, liveness_ms: 600_000, events: vec![] });
        let out = go(s, "none");
        assert_pass(&out);
        let records = out.report.output.expected as f64;
        let read_s = out.report.input_read_ms.expect("every source read its partition") / 1000.0;
        // The input is spread unevenly over the sources; the busiest reads
        // at `rate`, so the whole input takes at least records / (sources x
        // rate), and (each fetch taking well under its 100 ms interval) not
        // much more than the busiest partition at that rate.
        let floor = records / (sources * rate as f64);
        assert!(read_s >= floor * 0.95, "rate {rate}: read {records} records in {read_s:.2} s, faster than paced");
        assert!(read_s <= floor * 3.0 + 1.0, "rate {rate}: {read_s:.2} s for {records} records, far slower than paced");
    }
}
