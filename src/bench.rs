//! `exactsim bench`: campaign speed per scenario and profile, the overhead
//! floor (a bare madsim round trip) against the engine's cost per message,
//! and the cost of checkpointing. Wall time is measured here, outside the
//! simulation; nothing here is asserted by tests.

use crate::{run_one, spec};
use exactsim_engine::config::JobConfig;
use exactsim_engine::types::DeliveryMode;
use exactsim_model::report::Verdict;
use exactsim_model::schedule::{Profile, PROFILE_NAMES};
use std::fmt::Write;

#[allow(clippy::disallowed_methods)]
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

/// CPU time of this process in microseconds: on a machine shared with
/// other work, wall time counts the waits for a core; CPU time does not.
/// A run executes on one thread at a time, so this is that run's cost.
pub fn cpu_us() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e6 + ts.tv_nsec as f64 / 1e3
}

/// The whole bench: the text printed and the sweep points (for the CSV).
/// `quick` (also taken below 5 seeds) keeps the scaling sweep small,
/// measures the overhead floor in one round instead of seven and lets the
/// main job's sample go below 20 seeds.
pub fn run(seeds: u64, quick: bool) -> (String, Vec<Point>) {
    let quick = quick || seeds < 5;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "exactsim bench: {seeds} seeds per (scenario, profile), one thread, code {}",
        crate::code_version()
    );
    let _ = writeln!(
        s,
        "{:<14} {:<10} {:>8} {:>12} {:>11} {:>9} {:>9} {:>10} {:>10} {:>11} {:>11}",
        "scenario",
        "profile",
        "seeds/s",
        "sim_s/wall_s",
        "events/s",
        "msgs/run",
        "us/msg",
        "sim_us/msg",
        "ckpts/run",
        "ckpt_ms",
        "recov_ms"
    );
    s.push_str(&campaign_speed(seeds));
    let (text, engine_ratio, dense) = overhead_floor(quick);
    s.push_str(&text);
    s.push_str(&checkpoint_cost(seeds));
    let (text, production) = profiles(quick, Some(dense));
    s.push_str(&text);
    let (text, runs_per_s) = main_job(seeds, quick);
    s.push_str(&text);
    let points = sweeps(quick, 7);
    s.push_str(&render_sweeps(&points));
    let headline = Headline { engine_ratio, production, runs_per_s, exponent_max: exponent_max(&points) };
    s.push_str(&headline.render());
    (s, points)
}

/// Seeds per second and more, per scenario and built-in profile.
fn campaign_speed(seeds: u64) -> String {
    let mut s = String::new();
    for sc in exactsim_scenarios::all() {
        for p in PROFILE_NAMES {
            let profile = Profile::named(p).unwrap();
            let t0 = now();
            let (mut sim_ms, mut events, mut msgs, mut ck, mut ckn, mut rec, mut recn, mut ckpts) =
                (0u64, 0u64, 0u64, 0.0, 0u64, 0.0, 0u64, 0u64);
            let mut sim_wall_us = 0u64;
            for seed in 0..seeds {
                let out = run_one(spec(sc.clone(), seed, profile.clone(), DeliveryMode::ExactlyOnce, None), p);
                sim_ms += out.report.sim_time_ms;
                events += out.report.events;
                msgs += out.report.net_messages;
                sim_wall_us += out.report.sim_wall_us;
                ckpts += out.report.checkpoints.completed;
                if out.report.checkpoints.completed > 0 {
                    ck += out.report.checkpoints.duration_ms_avg;
                    ckn += 1;
                }
                if out.report.recoveries > 0 {
                    rec += out.report.recovery_time_ms_avg;
                    recn += 1;
                }
            }
            let wall = t0.elapsed().as_secs_f64();
            let us_per_msg = wall * 1e6 / msgs.max(1) as f64;
            let sim_us_per_msg = sim_wall_us as f64 / msgs.max(1) as f64;
            let _ = writeln!(
                s,
                "{:<14} {:<10} {:>8.1} {:>12.0} {:>11.0} {:>9} {:>9.2} {:>10.2} {:>10.1} {:>11.1} {:>11.1}",
                sc.name(),
                p,
                seeds as f64 / wall,
                sim_ms as f64 / 1000.0 / wall,
                events as f64 / wall,
                msgs / seeds.max(1),
                us_per_msg,
                sim_us_per_msg,
                ckpts as f64 / seeds.max(1) as f64,
                if ckn > 0 { ck / ckn as f64 } else { 0.0 },
                if recn > 0 { rec / recn as f64 } else { 0.0 },
            );
        }
    }
    s
}

/// The engine's cost per network message against a bare madsim round
/// trip, in the same rounds: (text, the median ratio, the standard seeds'
/// simulated ms and wall us for the profiles table). `quick`: one round.
fn overhead_floor(quick: bool) -> (String, f64, (u64, f64)) {
    let mut s = String::new();
    // Overhead floor against the engine, interleaved: this machine's speed
    // drifts by tens of percent over minutes, so each round measures the
    // bare round trips and a few fault-free runs back to back, and the
    // ratio is taken per round (median of 7 rounds).
    let n = 10_000;
    let none = Profile::named("none").unwrap();
    let mut rounds: Vec<(f64, f64, f64)> = Vec::new(); // (floor us/msg, engine sim us/msg, engine all-in us/msg)
    let (mut dense_sim_ms, mut dense_wall_us) = (0u64, 0f64);
    let n_rounds: u64 = if quick { 1 } else { 7 };
    for round in 0..n_rounds {
        let t0 = now();
        let _ = exactsim_sim::world::bare_round_trips(n);
        let floor = t0.elapsed().as_secs_f64() * 1e6 / n as f64 / 2.0;
        let (mut sim_us, mut all_us, mut msgs) = (0u64, 0f64, 0u64);
        for sc in exactsim_scenarios::all() {
            for seed in 0..3 {
                let t1 = now();
                let out = run_one(
                    spec(sc.clone(), 1000 + round * 3 + seed, none.clone(), DeliveryMode::ExactlyOnce, None),
                    "none",
                );
                all_us += t1.elapsed().as_secs_f64() * 1e6;
                dense_wall_us += t1.elapsed().as_secs_f64() * 1e6;
                dense_sim_ms += out.report.sim_time_ms;
                sim_us += out.report.sim_wall_us;
                msgs += out.report.net_messages;
            }
        }
        rounds.push((floor, sim_us as f64 / msgs as f64, all_us / msgs as f64));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let floor = median(rounds.iter().map(|r| r.0).collect());
    let sim_ratio = median(rounds.iter().map(|r| r.1 / r.0).collect());
    let all_ratio = median(rounds.iter().map(|r| r.2 / r.0).collect());
    let _ = writeln!(
        s,
        "\noverhead floor: bare madsim datagram round trip, {:.2} us wall per message (median of {n_rounds} rounds; range {:.2}-{:.2})",
        floor,
        rounds.iter().map(|r| r.0).fold(f64::INFINITY, f64::min),
        rounds.iter().map(|r| r.0).fold(0.0, f64::max)
    );
    let _ = writeln!(
        s,
        "engine in simulation, fault-free, per network message: {:.2} us wall = {sim_ratio:.1}x the floor measured in the same round (median of {n_rounds})",
        median(rounds.iter().map(|r| r.1).collect())
    );
    let _ = writeln!(
        s,
        "the same with the oracles and the report:              {:.2} us wall = {all_ratio:.1}x",
        median(rounds.iter().map(|r| r.2).collect())
    );
    // The oracles' share: everything after the simulation (the checks and
    // the report) against the whole run, per round.
    let _ = writeln!(
        s,
        "oracle share (checks + report) of a run's wall time: {:.1}% (median of {n_rounds} rounds; range {:.1}-{:.1}%)",
        median(rounds.iter().map(|r| (1.0 - r.1 / r.2) * 100.0).collect()),
        rounds.iter().map(|r| (1.0 - r.1 / r.2) * 100.0).fold(f64::INFINITY, f64::min),
        rounds.iter().map(|r| (1.0 - r.1 / r.2) * 100.0).fold(0.0, f64::max)
    );
    (s, sim_ratio, (dense_sim_ms, dense_wall_us))
}

/// Checkpointing's cost: frequent, sparse and no periodic checkpoints.
fn checkpoint_cost(seeds: u64) -> String {
    let mut s = String::new();
    // Checkpointing cost: fault-free runs with frequent, sparse and no
    // periodic checkpoints. Throughput is the processing rate: input
    // records over the simulated time until every source had read its whole
    // partition (backpressure ties that to the chains' progress). With
    // checkpoints off the job never commits, so only that rate is read.
    let _ = writeln!(s, "\ncheckpointing cost (word_count, fault-free, {seeds} seeds, 3 workers, exactly-once):");
    let _ = writeln!(
        s,
        "{:>12} {:>10} {:>12} {:>13} {:>14} {:>10}",
        "interval_ms", "ckpts/run", "wall_ms/run", "input_read_ms", "records/s_sim", "vs_off"
    );
    let sc = exactsim_scenarios::by_name("word_count").unwrap();
    let mut rows = Vec::new();
    for interval in [None, Some(25u64), Some(100), Some(400), Some(1000)] {
        let t0 = now();
        let (mut ckpts, mut read_ms, mut records) = (0u64, 0f64, 0u64);
        for seed in 0..seeds {
            let mut sp = spec(sc.clone(), seed, Profile::named("none").unwrap(), DeliveryMode::ExactlyOnce, None);
            // "off": no periodic checkpoint before the input is read; the
            // liveness phase is cut short since the job cannot finish.
            let ms = interval.unwrap_or(1_000_000);
            sp.config = Some(JobConfig { parallelism: 3, checkpoint_interval_ms: ms, ..fixed_default() });
            if interval.is_none() {
                sp.schedule =
                    Some(exactsim_model::schedule::Schedule { safety_ms: 1_500, liveness_ms: 5_000, events: vec![] });
            }
            let out = run_one(sp, "none");
            ckpts += out.report.checkpoints.completed;
            records += out.report.output.expected;
            read_ms += out.report.input_read_ms.unwrap_or(f64::NAN);
        }
        let wall_ms = t0.elapsed().as_secs_f64() * 1000.0 / seeds as f64;
        let rate = records as f64 / (read_ms / 1000.0).max(1e-9);
        rows.push((interval, ckpts as f64 / seeds as f64, wall_ms, read_ms / seeds as f64, rate));
    }
    let off = rows[0].4;
    for (interval, ck, wall_ms, read_ms, rate) in rows {
        let _ = writeln!(
            s,
            "{:>12} {:>10.1} {:>12.1} {:>13.1} {:>14.0} {:>9.1}%",
            interval.map_or("off".to_string(), |i| i.to_string()),
            ck,
            wall_ms,
            read_ms,
            rate,
            (rate / off - 1.0) * 100.0
        );
    }
    s
}

/// One part of the bench alone, for a profiler (`bench --only`).
pub fn only(part: &str, seeds: u64, quick: bool) -> Result<String, String> {
    match part {
        "floor" => {
            let n = 10_000;
            let t0 = now();
            let _ = exactsim_sim::world::bare_round_trips(n);
            let us = t0.elapsed().as_secs_f64() * 1e6 / n as f64 / 2.0;
            Ok(format!("overhead floor: {n} bare madsim round trips, {us:.2} us wall per message\n"))
        }
        "profiles" => Ok(profiles(quick, None).0),
        "interval" => Ok(interval_comparison(seeds)),
        "incremental" => Ok(incremental_comparison()),
        "checks" => Ok(check_costs(quick)),
        other => {
            Err(format!("unknown bench part '{other}' (expected floor, profiles, interval, incremental or checks)"))
        }
    }
}

/// A scenario whose operators count the records they process (replays
/// included), for [`interval_comparison`]: what a recovery replayed is the
/// count beyond the input. Counting changes nothing in the run.
struct Counted {
    inner: std::sync::Arc<dyn exactsim_model::scenario::Scenario>,
    processed: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

struct CountedPipeline {
    inner: std::sync::Arc<dyn exactsim_engine::pipeline::Pipeline>,
    processed: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

struct CountedOperator {
    inner: Box<dyn exactsim_engine::pipeline::KeyedOperator>,
    processed: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl exactsim_engine::pipeline::KeyedOperator for CountedOperator {
    fn process(&mut self, rec: &exactsim_engine::types::Record, out: &mut Vec<exactsim_engine::types::OutRecord>) {
        self.processed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.process(rec, out)
    }
    fn on_watermark(&mut self, wm_ms: u64, out: &mut Vec<exactsim_engine::types::OutRecord>) {
        self.inner.on_watermark(wm_ms, out)
    }
    fn on_end_of_input(&mut self, out: &mut Vec<exactsim_engine::types::OutRecord>) {
        self.inner.on_end_of_input(out)
    }
    fn snapshot(&self) -> Vec<u8> {
        self.inner.snapshot()
    }
    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.inner.restore(bytes)
    }
    fn restore_keys(&mut self, bytes: &[u8], keep: &dyn Fn(u64) -> bool) -> Result<(), String> {
        self.inner.restore_keys(bytes, keep)
    }
}

impl exactsim_engine::pipeline::Pipeline for CountedPipeline {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn create(&self, subtask: u32, parallelism: u32) -> Box<dyn exactsim_engine::pipeline::KeyedOperator> {
        Box::new(CountedOperator { inner: self.inner.create(subtask, parallelism), processed: self.processed.clone() })
    }
    fn sink(&self, env: exactsim_engine::sink::SinkEnv) -> Box<dyn exactsim_engine::sink::TwoPhaseCommitSink> {
        self.inner.sink(env)
    }
    fn output_partition(&self, rec: &exactsim_engine::types::OutRecord, partitions: u32) -> u32 {
        self.inner.output_partition(rec, partitions)
    }
    fn system(&self) -> Option<std::sync::Arc<dyn exactsim_engine::system::SinkSystem>> {
        self.inner.system()
    }
    fn reader(&self) -> std::sync::Arc<dyn exactsim_engine::system::OutputReader> {
        self.inner.reader()
    }
}

impl exactsim_model::scenario::Scenario for Counted {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn description(&self) -> &'static str {
        self.inner.description()
    }
    fn tune(&self, cfg: &mut JobConfig, rng: &mut exactsim_model::rng::SimRng) {
        self.inner.tune(cfg, rng)
    }
    fn generate(
        &self,
        rng: &mut exactsim_model::rng::SimRng,
        partitions: u32,
    ) -> Vec<Vec<exactsim_engine::types::Record>> {
        self.inner.generate(rng, partitions)
    }
    fn pipeline(&self) -> std::sync::Arc<dyn exactsim_engine::pipeline::Pipeline> {
        std::sync::Arc::new(CountedPipeline { inner: self.inner.pipeline(), processed: self.processed.clone() })
    }
    fn reference(
        &self,
        input: &[Vec<exactsim_engine::types::Record>],
        offsets: &[u64],
    ) -> Vec<exactsim_engine::types::OutRecord> {
        self.inner.reference(input, offsets)
    }
    fn incremental<'a>(
        &self,
        input: &'a [Vec<exactsim_engine::types::Record>],
    ) -> Option<Box<dyn exactsim_model::scenario::IncrementalReference + 'a>> {
        self.inner.incremental(input)
    }
    fn checks(&self) -> Vec<exactsim_model::scenario::ScenarioCheck> {
        self.inner.checks()
    }
}

/// `bench --only interval` (issue 27): the adaptive checkpoint interval
/// against fixed ones on the `adaptive` profile's job (its input phases:
/// a 300 ms burst, 600 ms paced, 1,200 ms idle, repeated), every scenario,
/// `seeds` seeds each. The fixed intervals are 100 ms, 1 s and 10 s scaled
/// like the adaptive bounds (the article's 500 ms to 10 s, here 100 ms to
/// 2 s: one fifth): 20 ms, 200 ms, 2 s. Three settings, each the same for
/// every interval: fault-free (throughput: input records per simulated
/// second until the job finished; the share of that time a checkpoint was
/// in flight), one worker crash (at a seeded time in the first 1.5 s, back
/// 50 ms later, nothing lost: what the interval costs a recovery) and the
/// `crash` profile's schedule (drawn once, from the adaptive
/// configuration). The recovery cost is what the operators processed
/// beyond the input: records processed again after a recovery.
pub fn interval_comparison(seeds: u64) -> String {
    use exactsim_model::schedule::{FaultEvent, Schedule};
    let adaptive = Profile::named("adaptive").expect("built-in");
    let crash = Profile::named("crash").expect("built-in");
    let variants: [(&str, Option<u64>); 4] = [
        ("fixed 20 ms", Some(20)),
        ("fixed 200 ms", Some(200)),
        ("fixed 2 s", Some(2_000)),
        ("adaptive 100 ms-2 s", None),
    ];
    #[derive(Default)]
    struct Sum {
        runs: u64,
        fails: u64,
        ckpts: u64,
        busy_ms: f64,
        job_ms: f64,
        read_ms: f64,
        records: u64,
        recoveries: u64,
        replayed: u64,
    }
    let mut rows: Vec<[Sum; 4]> = Vec::new();
    for (_, fixed) in variants {
        let mut row: [Sum; 4] = Default::default();
        for sc in exactsim_scenarios::all() {
            for seed in 0..seeds {
                // 0: fault-free; 1: one worker crash; 2: the crash
                // profile; 3: fault-free, without the input's phases.
                for (setting, sum) in row.iter_mut().enumerate() {
                    let processed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
                    let counted: std::sync::Arc<dyn exactsim_model::scenario::Scenario> =
                        std::sync::Arc::new(Counted { inner: sc.clone(), processed: processed.clone() });
                    let mut sp = spec(counted, seed, adaptive.clone(), DeliveryMode::ExactlyOnce, None);
                    let mut cfg = exactsim_model::run::derive_config(&sp);
                    let quiet = Schedule { safety_ms: 1_500, liveness_ms: 30_000, events: vec![] };
                    sp.schedule = Some(match setting {
                        0 | 3 => quiet,
                        1 => {
                            let mut rng = exactsim_model::rng::SimRng::new(seed ^ 0x1b7e_5a17);
                            let node = format!("worker-{}", rng.below(u64::from(cfg.parallelism)));
                            let at_ms = rng.range(100, 1_500);
                            let disk = exactsim_model::schedule::CrashMode::KeepAll;
                            let c = exactsim_model::faults::Crash { at_ms, node, down_ms: 50, disk };
                            Schedule { events: vec![FaultEvent::Crash(c)], ..quiet }
                        }
                        _ => exactsim_model::schedule::generate(seed, &crash, &cfg, sc.pipeline().system().is_some()),
                    });
                    if setting == 3 {
                        // The same job on input that is all there at once.
                        cfg.source_phases.clear();
                    }
                    if let Some(ms) = fixed {
                        cfg.adaptive_interval = None;
                        cfg.checkpoint_interval_ms = ms;
                    }
                    sp.config = Some(cfg);
                    let out = run_one(sp, "adaptive");
                    let r = &out.report;
                    let input: u64 = out.result.history.input.iter().map(|p| p.len() as u64).sum();
                    let job = r.job_finished_ms.unwrap_or(r.sim_time_ms as f64);
                    sum.runs += 1;
                    sum.fails += u64::from(r.verdict != Verdict::Pass);
                    sum.ckpts += r.checkpoints.completed;
                    sum.busy_ms += r.checkpoints.duration_ms_avg * r.checkpoints.completed as f64;
                    sum.job_ms += job;
                    sum.read_ms += r.input_read_ms.unwrap_or(job);
                    sum.records += input;
                    sum.recoveries += r.recoveries;
                    sum.replayed += processed.load(std::sync::atomic::Ordering::Relaxed).saturating_sub(input);
                }
            }
        }
        rows.push(row);
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "adaptive vs fixed checkpoint intervals: the adaptive profile's phased input, all scenarios, {seeds} seeds each (code {})",
        crate::code_version()
    );
    let _ = writeln!(s, "\nthroughput, fault-free:");
    let _ = writeln!(
        s,
        "{:<20} | {:>9} {:>10} {:>7} {:>7} {:>9} {:>5} | {:>9} {:>10} {:>7} {:>7} {:>9} {:>5}",
        "interval",
        "ckpts/run",
        "ckpt_share",
        "read_s",
        "job_s",
        "records/s",
        "fails",
        "ckpts/run",
        "ckpt_share",
        "read_s",
        "job_s",
        "records/s",
        "fails"
    );
    let _ = writeln!(s, "{:<20} | {:<53} | {:<53}", "", "the input's phases", "all input there at once (no phases)");
    for ((label, _), row) in variants.iter().zip(&rows) {
        let cell = |q: &Sum| {
            let runs = q.runs.max(1) as f64;
            format!(
                "{:>9.1} {:>9.1}% {:>7.2} {:>7.2} {:>9.0} {:>5}",
                q.ckpts as f64 / runs,
                q.busy_ms * 100.0 / q.job_ms.max(1.0),
                q.read_ms / 1000.0 / runs,
                q.job_ms / 1000.0 / runs,
                q.records as f64 / (q.job_ms / 1000.0).max(1e-9),
                q.fails
            )
        };
        let _ = writeln!(s, "{:<20} | {} | {}", label, cell(&row[0]), cell(&row[3]));
    }
    let _ = writeln!(s, "\nrecovery cost: records processed again (beyond the input), per recovery:");
    let _ = writeln!(
        s,
        "{:<20} | {:>9} {:>13} {:>8} {:>6} | {:>9} {:>13} {:>8} {:>6}",
        "interval", "recov/run", "per_recovery", "replay%", "fails", "recov/run", "per_recovery", "replay%", "fails"
    );
    let _ =
        writeln!(s, "{:<20} | {:<39} | {:<39}", "", "one worker crash (50 ms down)", "the crash profile's schedule");
    for ((label, _), row) in variants.iter().zip(&rows) {
        let cell = |q: &Sum| {
            format!(
                "{:>9.2} {:>13.0} {:>7.1}% {:>6}",
                q.recoveries as f64 / q.runs.max(1) as f64,
                q.replayed as f64 / q.recoveries.max(1) as f64,
                q.replayed as f64 * 100.0 / q.records.max(1) as f64,
                q.fails
            )
        };
        let _ = writeln!(s, "{:<20} | {} | {}", label, cell(&row[1]), cell(&row[2]));
    }
    let _ = writeln!(
        s,
        "(ckpt_share: checkpoint durations summed over the job's time (checkpoints may overlap); read_s: until every source had read its input; job_s: until the job finished, after its final checkpoint; records/s: input records per simulated second of job_s; replay%: records processed again, of the input; fails: runs that failed a check)"
    );
    s
}

/// The simulated-seconds-per-wall-second table: the standard seeds (when
/// measured: (simulated ms, wall us)), a dense run and a production-like
/// run on the same input.
fn profiles(quick: bool, standard: Option<(u64, f64)>) -> (String, f64) {
    let mut s = String::new();
    // Simulated seconds per wall second: the standard seeds (dense:
    // checkpoints every 40-150 ms, heartbeats every 50 ms, sources reading
    // as fast as their windows allow), the same dense configuration on a
    // longer input, and production-like runs of the same input: checkpoints
    // and heartbeats every second, sources at a fixed rate whose records
    // leave in one network buffer per channel every 100 ms (Flink's buffer
    // timeout), at 100 and 1,000 records per second per source.
    let _ = writeln!(s, "\nsimulated seconds per wall second (one core, fault-free, word_count unless noted):");
    let _ = writeln!(
        s,
        "{:<46} {:>7} {:>6} {:>7} {:>9} {:>8} {:>12} {:>11} {:>11} {:>9} {:>7}",
        "workload",
        "records",
        "ckpts",
        "sim_s",
        "msgs/sim_s",
        "wall_ms",
        "sim_s/wall_s",
        "sim_s/cpu_s",
        "sim_us/msg",
        "sim_only",
        "oracle"
    );
    if let Some((dense_sim_ms, dense_wall_us)) = standard {
        let _ = writeln!(
            s,
            "{:<46} {:>7} {:>6} {:>7.1} {:>9} {:>8.1} {:>12.0} {:>11} {:>11} {:>9} {:>7}",
            "standard seeds, all scenarios (dense)",
            "-",
            "-",
            dense_sim_ms as f64 / 1000.0,
            "-",
            dense_wall_us / 1000.0,
            dense_sim_ms as f64 * 1000.0 / dense_wall_us,
            "-",
            "-",
            "-",
            "-"
        );
    }
    let records = if quick { 2_000 } else { 20_000 };
    let rows = [
        ("dense default config (3 workers, 100 ms ckpt)", fixed_default()),
        ("production-like, 100 records/s per source", production_like(100)),
        ("production-like, 1,000 records/s per source", production_like(1_000)),
    ];
    let mut production = 0.0;
    for (name, cfg) in rows {
        let p = sized_run("profile", 7, records, cfg);
        let sim_s = p.sim_ms as f64 / 1000.0;
        production = sim_s * 1e6 / p.wall_us; // the last row: 1,000 records/s
        let _ = writeln!(
            s,
            "{:<46} {:>7} {:>6} {:>7.1} {:>9.0} {:>8.1} {:>12.0} {:>11.0} {:>11.2} {:>9.0} {:>6.1}%",
            name,
            p.records,
            p.checkpoints,
            sim_s,
            p.messages as f64 / sim_s,
            p.wall_us / 1000.0,
            sim_s * 1e6 / p.wall_us,
            sim_s * 1e6 / p.cpu_us,
            p.sim_wall_us / p.messages.max(1) as f64,
            sim_s * 1e6 / p.sim_wall_us,
            (1.0 - p.sim_wall_us / p.wall_us) * 100.0
        );
    }
    let _ = writeln!(
        s,
        "(sim_us/msg: simulation wall us per network message; sim_only: simulated s per wall s of the simulation alone; oracle: checks + report share of the run's wall time)"
    );
    (s, production)
}

/// A production-like configuration (Flink's defaults as the model): four
/// workers, a checkpoint every second (timeout 10 s), heartbeats every
/// second (timeout 5 s), 1 s RPC timeouts, and sources fed at a fixed
/// `rate` records per second each, fetched and sent in one network buffer
/// per channel every 100 ms (Flink's buffer timeout).
pub fn production_like(rate: u32) -> JobConfig {
    JobConfig {
        parallelism: 4,
        checkpoint_interval_ms: 1_000,
        checkpoint_timeout_ms: 10_000,
        heartbeat_interval_ms: 1_000,
        heartbeat_timeout_ms: 5_000,
        rpc_timeout_ms: 1_000,
        source_batch: (rate / 10).max(1),
        source_interval_ms: 100,
        source_poll_ms: 100,
        ..fixed_default()
    }
}

/// A scenario whose input is `records` records or a little more: the
/// inner generator's output laid end to end (ids shifted past the previous
/// copy, event time continuing per partition) until the target is reached.
/// The bench sizes word_count; any scenario whose reference is a function
/// of the input alone (every scenario here) stays correct.
pub struct SizedInput {
    pub inner: std::sync::Arc<dyn exactsim_model::scenario::Scenario>,
    pub records: u64,
}

impl exactsim_model::scenario::Scenario for SizedInput {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn description(&self) -> &'static str {
        self.inner.description()
    }
    fn tune(&self, cfg: &mut JobConfig, rng: &mut exactsim_model::rng::SimRng) {
        self.inner.tune(cfg, rng)
    }
    fn generate(
        &self,
        rng: &mut exactsim_model::rng::SimRng,
        partitions: u32,
    ) -> Vec<Vec<exactsim_engine::types::Record>> {
        let mut out: Vec<Vec<exactsim_engine::types::Record>> = (0..partitions).map(|_| Vec::new()).collect();
        let (mut total, mut base) = (0u64, 0u64);
        while total < self.records.max(1) {
            let part = self.inner.generate(rng, partitions);
            let mut top = base;
            for (p, recs) in part.into_iter().enumerate() {
                let ts0 = out[p].last().map_or(0, |r| r.ts_ms);
                for mut r in recs {
                    r.id += base;
                    r.ts_ms += ts0;
                    top = top.max(r.id);
                    total += 1;
                    out[p].push(r);
                }
            }
            base = top;
        }
        out
    }
    fn pipeline(&self) -> std::sync::Arc<dyn exactsim_engine::pipeline::Pipeline> {
        self.inner.pipeline()
    }
    fn reference(
        &self,
        input: &[Vec<exactsim_engine::types::Record>],
        offsets: &[u64],
    ) -> Vec<exactsim_engine::types::OutRecord> {
        self.inner.reference(input, offsets)
    }
    fn incremental<'a>(
        &self,
        input: &'a [Vec<exactsim_engine::types::Record>],
    ) -> Option<Box<dyn exactsim_model::scenario::IncrementalReference + 'a>> {
        self.inner.incremental(input)
    }
    fn checks(&self) -> Vec<exactsim_model::scenario::ScenarioCheck> {
        self.inner.checks()
    }
}

/// One measured run of the sweeps.
#[derive(Clone, Debug)]
pub struct Point {
    pub sweep: &'static str,
    pub records: u64,
    pub parallelism: u32,
    pub interval_ms: u64,
    pub checkpoints: u64,
    pub messages: u64,
    pub sim_ms: u64,
    pub wall_us: f64,
    /// Process CPU time of the run (see `cpu_us`): what the fits use.
    pub cpu_us: f64,
    pub sim_wall_us: f64,
    pub verdict: Verdict,
}

/// Least-squares line y = a + b x: (a, b, r²).
pub fn fit(xs: &[f64], ys: &[f64]) -> (f64, f64, f64) {
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    let syy: f64 = ys.iter().map(|y| (y - my) * (y - my)).sum();
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let r2 = if sxx > 0.0 && syy > 0.0 { sxy * sxy / (sxx * syy) } else { 1.0 };
    (my - b * mx, b, r2)
}

/// The largest step exponent still read as linear (measurement noise on a
/// shared machine moves single steps by about a tenth).
const LINEAR_EXPONENT_MAX: f64 = 1.15;

/// The growth exponent between two consecutive steps: ln(y2/y1)/ln(x2/x1);
/// 1 is linear, above 1 worse than linear.
pub fn step_exponents(xs: &[f64], ys: &[f64]) -> Vec<f64> {
    xs.windows(2).zip(ys.windows(2)).map(|(x, y)| (y[1] / y[0]).ln() / (x[1] / x[0]).ln()).collect()
}

/// Runs per sweep step; the least time of each kind is kept.
const SWEEP_REPEATS: usize = 3;

/// One fault-free run of word_count with `records` input records under
/// `cfg`; the liveness phase is long enough for the whole input.
/// A fault-free word_count run of `records` input records under `cfg`.
fn sized_spec(seed: u64, records: u64, cfg: JobConfig) -> exactsim_model::run::RunSpec {
    let sc = std::sync::Arc::new(SizedInput { inner: exactsim_scenarios::by_name("word_count").unwrap(), records });
    let mut sp = spec(sc, seed, Profile::named("none").unwrap(), DeliveryMode::ExactlyOnce, None);
    sp.config = Some(cfg);
    sp.schedule = Some(exactsim_model::schedule::Schedule { safety_ms: 500, liveness_ms: 3_600_000, events: vec![] });
    sp
}

fn sized_run(sweep: &'static str, seed: u64, records: u64, cfg: JobConfig) -> Point {
    let (parallelism, interval_ms) = (cfg.parallelism, cfg.checkpoint_interval_ms);
    let sp = sized_spec(seed, records, cfg);
    // The run is deterministic: repeat it and keep the least time of each
    // kind, so that one step's figure is not a scheduling hiccup of a
    // shared machine (the steps' ratios are what the exponents compare).
    let (mut wall_us, mut cpu, mut sim_wall) = (f64::MAX, f64::MAX, f64::MAX);
    let mut last = None;
    for _ in 0..SWEEP_REPEATS {
        let (t0, c0) = (now(), cpu_us());
        let out = run_one(sp.clone(), "none");
        wall_us = wall_us.min(t0.elapsed().as_secs_f64() * 1e6);
        cpu = cpu.min(cpu_us() - c0);
        sim_wall = sim_wall.min(out.report.sim_wall_us as f64);
        last = Some(out);
    }
    let out = last.expect("at least one repeat");
    Point {
        sweep,
        records: out.report.output.expected,
        parallelism,
        interval_ms,
        checkpoints: out.report.checkpoints.completed,
        messages: out.report.net_messages,
        sim_ms: out.report.sim_time_ms,
        wall_us,
        cpu_us: cpu,
        sim_wall_us: sim_wall,
        verdict: out.report.verdict,
    }
}

/// The scaling sweeps: input size, parallelism and checkpoint count, each
/// with the others fixed, one seed per step (`seed`), fault-free. `quick`
/// keeps every sweep small (for tests and a fast look).
pub fn sweeps(quick: bool, seed: u64) -> Vec<Point> {
    let dense = |parallelism: u32, interval: u64| JobConfig {
        parallelism,
        checkpoint_interval_ms: interval,
        ..fixed_default()
    };
    let (sizes, par_records, pars, ck_records, intervals): (&[u64], u64, &[u32], u64, &[u64]) = if quick {
        (&[2_000, 4_000, 8_000], 4_000, &[2, 4], 4_000, &[800, 200])
    } else {
        (
            &[2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000],
            20_000,
            &[2, 4, 8, 16],
            20_000,
            &[1600, 800, 400, 200, 100],
        )
    };
    let mut v = Vec::new();
    for &n in sizes {
        v.push(sized_run("records", seed, n, dense(3, 100)));
    }
    for &p in pars {
        v.push(sized_run("parallelism", seed, par_records, dense(p, 100)));
    }
    for &i in intervals {
        v.push(sized_run("checkpoints", seed, ck_records, dense(3, i)));
    }
    v
}

pub const CSV_HEADER: &str =
    "sweep,records,parallelism,interval_ms,checkpoints,messages,sim_ms,wall_us,cpu_us,sim_wall_us,verdict";

pub fn csv(points: &[Point]) -> String {
    let mut s = format!("{CSV_HEADER}\n");
    for p in points {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{:.0},{:.0},{:.0},{}",
            p.sweep,
            p.records,
            p.parallelism,
            p.interval_ms,
            p.checkpoints,
            p.messages,
            p.sim_ms,
            p.wall_us,
            p.cpu_us,
            p.sim_wall_us,
            p.verdict
        );
    }
    s
}

/// The sweeps as text: a row per step, then per sweep the fitted cost per
/// unit and the step exponents.
pub fn render_sweeps(points: &[Point]) -> String {
    let mut s = String::new();
    let _ =
        writeln!(s, "\nscaling (word_count, fault-free, one seed per step run 3 times, the least time kept, exactly-once; fits on process CPU time):");
    let _ = writeln!(
        s,
        "{:<12} {:>8} {:>4} {:>9} {:>7} {:>9} {:>8} {:>10} {:>10} {:>11} {:>10} {:>7}",
        "sweep",
        "records",
        "par",
        "interv_ms",
        "ckpts",
        "msgs",
        "sim_ms",
        "wall_ms",
        "cpu_ms",
        "sim_wall_ms",
        "cpu_us/msg",
        "oracle"
    );
    for p in points {
        let _ = writeln!(
            s,
            "{:<12} {:>8} {:>4} {:>9} {:>7} {:>9} {:>8} {:>10.1} {:>10.1} {:>11.1} {:>10.2} {:>6.1}%",
            p.sweep,
            p.records,
            p.parallelism,
            p.interval_ms,
            p.checkpoints,
            p.messages,
            p.sim_ms,
            p.wall_us / 1000.0,
            p.cpu_us / 1000.0,
            p.sim_wall_us / 1000.0,
            p.cpu_us / p.messages.max(1) as f64,
            (1.0 - p.sim_wall_us / p.wall_us) * 100.0
        );
    }
    if let Some(bad) = points.iter().find(|p| !p.verdict.is_pass()) {
        let _ = writeln!(s, "warning: a sweep run did not pass ({} records, verdict {})", bad.records, bad.verdict);
    }
    // (sweep, what the slope is, x, x's name, y, y's name); `sim` lines fit
    // the simulation alone (wall time inside the run, before the checks).
    type Axis = (&'static str, &'static str, fn(&Point) -> f64, &'static str, fn(&Point) -> f64, &'static str);
    let cpu: fn(&Point) -> f64 = |p| p.cpu_us;
    let sim: fn(&Point) -> f64 = |p| p.sim_wall_us;
    let axes: [Axis; 5] = [
        ("records", "cpu us per input record", |p| p.records as f64, "records", cpu, "cpu_us"),
        ("records", "cpu us per message", |p| p.messages as f64, "messages", cpu, "cpu_us"),
        ("records", "simulation wall us per message", |p| p.messages as f64, "messages", sim, "sim_wall_us"),
        ("parallelism", "cpu us per message", |p| p.messages as f64, "messages", cpu, "cpu_us"),
        ("checkpoints", "cpu us per checkpoint", |p| p.checkpoints as f64, "checkpoints", cpu, "cpu_us"),
    ];
    for (sweep, what, x, xname, y, yname) in axes {
        let pts: Vec<&Point> = points.iter().filter(|p| p.sweep == sweep).collect();
        if pts.len() < 2 {
            continue;
        }
        let xs: Vec<f64> = pts.iter().map(|p| x(p)).collect();
        let ys: Vec<f64> = pts.iter().map(|p| y(p)).collect();
        let (a, b, r2) = fit(&xs, &ys);
        let ex = step_exponents(&xs, &ys);
        let worst = ex.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let _ = writeln!(
            s,
            "fit {sweep:<12} {yname} = {a:.0} + {b:.2} x {xname} (r2 {r2:.3}): {what} {b:.2}; step exponents {}; {}",
            ex.iter().map(|e| format!("{e:.2}")).collect::<Vec<_>>().join(" "),
            if worst > LINEAR_EXPONENT_MAX {
                "WORSE than linear at some step (exponent > 1.15)"
            } else {
                "no step worse than linear"
            }
        );
    }
    s
}

/// The README's main job (`campaign --seeds 2000`: every scenario, the
/// default profile, two jobs) on a sample of its seeds: its runs per second.
/// `quick` allows fewer than 20 seeds.
fn main_job(seeds: u64, quick: bool) -> (String, f64) {
    let n = if quick { (seeds * 10).max(1) } else { (seeds * 10).max(20) };
    let spec = crate::campaign::CampaignSpec {
        scenarios: exactsim_scenarios::all(),
        seeds: n,
        first_seed: 0,
        profile: Profile::named("chaos").unwrap(),
        profile_arg: "chaos".into(),
        mode: DeliveryMode::ExactlyOnce,
        mutant: None,
        jobs: 2,
        shard: None,
        budget: None,
        report_dir: None,
        junit: None,
        check_determinism: false,
        progress: false,
        max_artifacts: 0,
        backend: crate::campaign::Backend::Simulated,
    };
    let rep = crate::campaign::run_campaign(&spec).expect("a simulated campaign needs no set-up");
    let runs_per_s = rep.runs.len() as f64 * 1000.0 / rep.wall_ms.max(1) as f64;
    let text = format!(
        "\nREADME main job (campaign, every scenario, chaos, 2 jobs), seeds 0..{n}: {} runs in {} ms, {runs_per_s:.0} runs/s, verdict {}\n",
        rep.runs.len(),
        rep.wall_ms,
        rep.verdict
    );
    (text, runs_per_s)
}

/// The largest step exponent of CPU time against messages over the records
/// sweep: 1.0 is linear.
fn exponent_max(points: &[Point]) -> f64 {
    let pts: Vec<&Point> = points.iter().filter(|p| p.sweep == "records").collect();
    let xs: Vec<f64> = pts.iter().map(|p| p.messages as f64).collect();
    let ys: Vec<f64> = pts.iter().map(|p| p.cpu_us).collect();
    step_exponents(&xs, &ys).into_iter().fold(f64::NAN, f64::max)
}

/// The four headline figures of one `bench` run, against their goals.
struct Headline {
    /// Engine wall time per message over the bare madsim round trip.
    engine_ratio: f64,
    /// Simulated seconds per wall second, production-like (1,000 records/s
    /// per source).
    production: f64,
    /// The README main job's runs per second (two jobs).
    runs_per_s: f64,
    /// The largest step exponent of the records sweep.
    exponent_max: f64,
}

impl Headline {
    /// One `headline` line per figure: `name value goal met|missed`, for
    /// `ci/nightly.sh` to keep over time.
    fn render(&self) -> String {
        let rows = [
            ("engine_cost_ratio", self.engine_ratio, "<=2", self.engine_ratio <= 2.0),
            ("production_sim_s_per_wall_s", self.production, ">=1000", self.production >= 1000.0),
            ("main_job_runs_per_s", self.runs_per_s, ">=200", self.runs_per_s >= 200.0),
            ("records_step_exponent_max", self.exponent_max, "<=1.15", self.exponent_max <= LINEAR_EXPONENT_MAX),
        ];
        let mut s = String::from("\nthe four goals, as measured by this run:\n");
        for (name, value, goal, met) in rows {
            let _ = writeln!(s, "headline {name} {value:.2} goal {goal} {}", if met { "met" } else { "missed" });
        }
        s
    }
}

/// `bench --only incremental` (issue 25): bytes written per checkpoint,
/// full snapshots against incremental ones, on a large, slowly changing
/// keyed state: `word_count`'s own operator holding 100,000 keys (1.6 MB
/// of state), then 20 checkpoints, each after a share of the keys was
/// updated (records on keys drawn from the seed). A full snapshot writes
/// the state; an incremental one writes its new shared file and its
/// manifest (`engine/src/shared_state.rs`, split exactly as a chain task
/// splits it, encoded as the task encodes it). No runtime: the operator
/// and the split are plain state machines.
pub fn incremental_comparison() -> String {
    use exactsim_engine::shared_state::IncrementalBase;
    use exactsim_engine::types::Record;
    const KEYS: u64 = 100_000;
    const CHECKPOINTS: u64 = 20;
    let pipeline = exactsim_scenarios::by_name("word_count").expect("word_count").pipeline();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "incremental checkpoints: word_count's operator, {KEYS} keys, {CHECKPOINTS} checkpoints after the first (bytes per checkpoint)"
    );
    let _ =
        writeln!(out, "{:>16} {:>14} {:>18} {:>10} {:>14}", "keys updated", "full", "incremental", "ratio", "manifest");
    for per_mille in [1u64, 10, 100, 1000] {
        let mut op = pipeline.create(0, 1);
        let mut sink = Vec::new();
        let mut id = 0u64;
        let mut feed = |op: &mut Box<dyn exactsim_engine::pipeline::KeyedOperator>, key: u64| {
            id += 1;
            op.process(&Record { id, key, ts_ms: id, value: 1 }, &mut sink);
            sink.clear();
        };
        for key in 0..KEYS {
            feed(&mut op, key);
        }
        let mut base = IncrementalBase::default();
        let _ = base.split(&op.snapshot(), "ckpt-0".into());
        let mut rng = exactsim_model::rng::SimRng::new(per_mille);
        let (mut full, mut incr, mut manifest) = (0u64, 0u64, 0u64);
        for c in 1..=CHECKPOINTS {
            for _ in 0..KEYS * per_mille / 1000 {
                feed(&mut op, rng.below(KEYS));
            }
            let state = op.snapshot();
            let split = base.split(&state, format!("ckpt-{c}"));
            let m = exactsim_engine::codec::encode(&split.manifest).len() as u64;
            full += state.len() as u64;
            manifest += m;
            incr += m + split.new_file.map_or(0, |(_, bytes)| bytes.len() as u64);
        }
        let _ = writeln!(
            out,
            "{:>15}% {:>14} {:>18} {:>10.3} {:>14}",
            format!("{:.1}", per_mille as f64 / 10.0),
            full / CHECKPOINTS,
            incr / CHECKPOINTS,
            incr as f64 / full as f64,
            manifest / CHECKPOINTS
        );
    }
    out
}

/// The engine's default configuration with a fixed checkpoint interval:
/// every measurement here names its interval (the adaptive one is
/// measured against fixed ones by `--only interval`).
fn fixed_default() -> JobConfig {
    JobConfig { adaptive_interval: None, ..JobConfig::default() }
}

/// `bench --only checks`: what each oracle costs per input record as the
/// input grows (the records sweep's runs, judged again outside the run,
/// each check timed alone, the least CPU time of three), so that a step
/// exponent above 1 in the sweep can be charged to the check it comes
/// from. `context` is the judging context every check shares (the batch
/// reference, the lineages, the visible prefixes).
fn check_costs(quick: bool) -> String {
    use exactsim_model::checks::{Ctx, Judge, CHECKS};
    let sizes: &[u64] = if quick { &[2_000, 8_000] } else { &[2_000, 10_000, 20_000, 50_000, 100_000, 200_000] };
    let cfg = || JobConfig { parallelism: 3, checkpoint_interval_ms: 100, ..fixed_default() };
    // (name, CPU us at each size)
    let mut rows: Vec<(String, Vec<f64>)> = Vec::new();
    let mut records = Vec::new();
    let least = |f: &mut dyn FnMut()| {
        (0..3)
            .map(|_| {
                let c0 = cpu_us();
                f();
                cpu_us() - c0
            })
            .fold(f64::MAX, f64::min)
    };
    for (col, &n) in sizes.iter().enumerate() {
        let sp = sized_spec(7, n, cfg());
        let scenario = sp.scenario.clone();
        let out = run_one(sp, "none");
        let h = &out.result.history;
        records.push(out.report.output.expected as f64);
        let mut cell = |name: &str, us: f64| match rows.iter_mut().find(|r| r.0 == name) {
            Some(r) => r.1.push(us),
            None => rows.push((name.to_string(), std::iter::repeat_n(f64::NAN, col).chain([us]).collect())),
        };
        cell(
            "context",
            least(&mut || {
                std::hint::black_box(Ctx::new(h, &*scenario));
            }),
        );
        let ctx = Ctx::new(h, &*scenario);
        for c in CHECKS.iter().filter(|c| c.applies.covers_run(&*scenario, h.mode)) {
            let Judge::History(check) = c.judge else { continue };
            cell(
                c.id,
                least(&mut || {
                    std::hint::black_box(check(&ctx));
                }),
            );
        }
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\ncheck cost per input record (word_count, fault-free, 3 workers, 100 ms checkpoints; CPU us, least of 3; judged after the run):"
    );
    let _ = write!(s, "{:<10}", "check");
    for r in &records {
        let _ = write!(s, " {:>9}", *r as u64);
    }
    let _ = writeln!(s, "  step exponents");
    let mut total = vec![0.0; sizes.len()];
    let exponents = |us: &[f64]| -> String {
        (1..us.len())
            .map(|i| format!("{:.2}", (us[i] / us[i - 1]).ln() / (records[i] / records[i - 1]).ln()))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (name, us) in &rows {
        let _ = write!(s, "{name:<10}");
        for (i, u) in us.iter().enumerate() {
            total[i] += u;
            let _ = write!(s, " {:>9.3}", u / records[i]);
        }
        let _ = writeln!(s, "  {}", exponents(us));
    }
    let _ = write!(s, "{:<10}", "all");
    for (i, u) in total.iter().enumerate() {
        let _ = write!(s, " {:>9.3}", u / records[i]);
    }
    let _ = writeln!(s, "  {}", exponents(&total));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use exactsim_model::scenario::Scenario;

    #[test]
    fn fit_recovers_a_line_and_exponents_flag_growth() {
        let xs = [1.0, 2.0, 4.0, 8.0];
        let (a, b, r2) = fit(&xs, &xs.map(|x| 3.0 + 2.0 * x));
        assert!((a - 3.0).abs() < 1e-9 && (b - 2.0).abs() < 1e-9 && (r2 - 1.0).abs() < 1e-9);
        let lin = step_exponents(&xs, &xs.map(|x| 5.0 * x));
        assert!(lin.iter().all(|e| (e - 1.0).abs() < 1e-9), "{lin:?}");
        let quad = step_exponents(&xs, &xs.map(|x| x * x));
        assert!(quad.iter().all(|e| (e - 2.0).abs() < 1e-9), "{quad:?}");
    }

    #[test]
    fn sized_input_keeps_the_generator_invariants() {
        let sc = SizedInput { inner: exactsim_scenarios::by_name("word_count").unwrap(), records: 20_000 };
        let input = sc.generate(&mut exactsim_model::rng::SimRng::new(3), 3);
        let total: usize = input.iter().map(Vec::len).sum();
        assert!((20_000..24_000).contains(&total), "{total}");
        let mut ids: Vec<u64> = input.iter().flatten().map(|r| r.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), total, "ids unique");
        for (p, recs) in input.iter().enumerate() {
            assert!(recs.iter().all(|r| r.key % 3 == p as u64));
            assert!(recs.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms));
        }
    }
}
