//! `exactsim bench`: campaign speed per scenario and profile, and engine
//! figures, measured in one run. Wall time is measured here, outside the
//! simulation.

use crate::{run_one, spec};
use exactsim_engine::types::DeliveryMode;
use exactsim_sim::schedule::{Profile, PROFILE_NAMES};

pub fn run(seeds: u64) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "exactsim bench: {seeds} seeds per (scenario, profile), one thread, code {}\n",
        crate::code_version()
    ));
    s.push_str(&format!(
        "{:<14} {:<10} {:>9} {:>12} {:>12} {:>10} {:>12} {:>12}\n",
        "scenario", "profile", "seeds/s", "sim_s/wall_s", "events/s", "msgs/run", "ckpt_ms_avg", "recov_ms_avg"
    ));
    for sc in exactsim_scenarios::all() {
        for p in PROFILE_NAMES {
            let profile = Profile::named(p).unwrap();
            #[allow(clippy::disallowed_methods)]
            let t0 = std::time::Instant::now();
            let (mut sim_ms, mut events, mut msgs, mut ck, mut ckn, mut rec, mut recn) =
                (0u64, 0u64, 0u64, 0.0, 0u64, 0.0, 0u64);
            for seed in 0..seeds {
                let out = run_one(spec(sc.clone(), seed, profile.clone(), DeliveryMode::ExactlyOnce, None), p);
                sim_ms += out.report.sim_time_ms;
                events += out.report.events;
                msgs += out.report.net_messages;
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
            s.push_str(&format!(
                "{:<14} {:<10} {:>9.1} {:>12.0} {:>12.0} {:>10} {:>12.1} {:>12.1}\n",
                sc.name(),
                p,
                seeds as f64 / wall,
                sim_ms as f64 / 1000.0 / wall,
                events as f64 / wall,
                msgs / seeds.max(1),
                if ckn > 0 { ck / ckn as f64 } else { 0.0 },
                if recn > 0 { rec / recn as f64 } else { 0.0 },
            ));
        }
    }
    s
}
