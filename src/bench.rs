//! `exactsim bench`: campaign speed per scenario and profile, the overhead
//! floor (a bare madsim round trip) against the engine's cost per message,
//! and the cost of checkpointing. Wall time is measured here, outside the
//! simulation; nothing here is asserted by tests.

use crate::{run_one, spec};
use exactsim_engine::config::JobConfig;
use exactsim_engine::types::DeliveryMode;
use exactsim_sim::schedule::{Profile, PROFILE_NAMES};
use std::fmt::Write;

#[allow(clippy::disallowed_methods)]
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

pub fn run(seeds: u64) -> String {
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
    // Overhead floor against the engine, interleaved: this machine's speed
    // drifts by tens of percent over minutes, so each round measures the
    // bare round trips and a few fault-free runs back to back, and the
    // ratio is taken per round (median of 7 rounds).
    let n = 10_000;
    let none = Profile::named("none").unwrap();
    let mut rounds: Vec<(f64, f64, f64)> = Vec::new(); // (floor us/msg, engine sim us/msg, engine all-in us/msg)
    for round in 0..7u64 {
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
        "\noverhead floor: bare madsim datagram round trip, {:.2} us wall per message (median of 7 rounds; range {:.2}-{:.2})",
        floor,
        rounds.iter().map(|r| r.0).fold(f64::INFINITY, f64::min),
        rounds.iter().map(|r| r.0).fold(0.0, f64::max)
    );
    let _ = writeln!(
        s,
        "engine in simulation, fault-free, per network message: {:.2} us wall = {sim_ratio:.1}x the floor measured in the same round (median of 7)",
        median(rounds.iter().map(|r| r.1).collect())
    );
    let _ = writeln!(
        s,
        "the same with the oracles and the report:              {:.2} us wall = {all_ratio:.1}x",
        median(rounds.iter().map(|r| r.2).collect())
    );
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
            sp.config = Some(JobConfig { parallelism: 3, checkpoint_interval_ms: ms, ..JobConfig::default() });
            if interval.is_none() {
                sp.schedule =
                    Some(exactsim_sim::schedule::Schedule { safety_ms: 1_500, liveness_ms: 5_000, events: vec![] });
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
