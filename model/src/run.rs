//! What one run is, before and after: its specification (scenario, seed,
//! profile, mode, mutant, an explicit schedule or configuration), how the
//! job configuration and input derive from the seed, and the result a
//! backend hands to [`crate::finish::finish`]. The simulated world
//! (`exactsim-sim`) and real mode both produce a [`RunResult`].

use crate::rng::{SimRng, Stream};
use crate::scenario::Scenario;
use crate::schedule::{Profile, Schedule};
use exactsim_engine::config::{JobConfig, Mutant};
use exactsim_engine::observe::FaultPoint;
use exactsim_engine::types::DeliveryMode;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone)]
pub struct RunSpec {
    pub scenario: Arc<dyn Scenario>,
    pub seed: u64,
    pub profile: Profile,
    pub mode: DeliveryMode,
    pub mutant: Option<Mutant>,
    /// An explicit schedule (replay, shrink); else derived from seed+profile.
    pub schedule: Option<Schedule>,
    /// A fixed job configuration; else derived from the seed.
    pub config: Option<JobConfig>,
    /// Keep the hash after every event (for divergence reports).
    pub keep_chain: bool,
}

pub struct RunResult {
    pub history: crate::history::History,
    pub trace_hash: u64,
    pub chain: Vec<u64>,
    pub coverage: BTreeMap<(String, FaultPoint), u64>,
    pub schedule: Schedule,
    pub config: JobConfig,
    /// What the faults did inside the disks, as the disks counted it
    /// (`disk::effects`): not in the history, from which the run's fault
    /// tallies are read (`finish`).
    pub disk_effects: BTreeMap<String, u64>,
    pub sim_time_ms: u64,
    pub net_messages: u64,
    /// The run panicked: the history above ends where it did.
    pub panic: Option<crate::panics::PanicReport>,
}

/// The job configuration of a run: defaults, then the seed's topology, then
/// the scenario's tuning, then the profile's job settings (an adaptive
/// interval, input phases), then mode and mutant.
pub fn derive_config(spec: &RunSpec) -> JobConfig {
    if let Some(c) = &spec.config {
        let mut c = c.clone();
        c.mode = crate::scenario::mode_of(&*spec.scenario, spec.mode);
        c.mutant = spec.mutant;
        return c;
    }
    let mut rng = SimRng::derive(spec.seed, Stream::Topology);
    let mut cfg = JobConfig {
        parallelism: rng.range(2, 4) as u32,
        checkpoint_interval_ms: rng.range(40, 150),
        max_concurrent_checkpoints: rng.range(1, 2) as u32,
        source_batch: rng.range(8, 32) as u32,
        // The seed's fixed interval unless the profile asks for the
        // adaptive one (below), whatever the engine's default.
        adaptive_interval: None,
        ..JobConfig::default()
    };
    spec.scenario.tune(&mut cfg, &mut rng);
    // The profile's job settings (none in the profiles that existed before
    // them, so their runs are what they were).
    let adaptive_run = spec.profile.adaptive_every.is_none_or(|n| spec.seed % n == 1 % n);
    if let Some(a) = spec.profile.adaptive_interval.filter(|_| adaptive_run) {
        cfg.adaptive_interval = Some(a);
    }
    if adaptive_run && !spec.profile.input_phases.is_empty() {
        cfg.source_phases = spec.profile.input_phases.clone();
    }
    if let Some(pool) = spec.profile.txn_pool {
        cfg.pooled_txn_ids = pool.pools(spec.seed);
    }
    if spec.profile.incremental_checkpoints {
        cfg.incremental_checkpoints = true;
    }
    if let Some(k) = spec.profile.retained_checkpoints {
        cfg.retained_checkpoints = k;
    }
    cfg.mode = crate::scenario::mode_of(&*spec.scenario, spec.mode);
    cfg.mutant = spec.mutant;
    if spec.mutant == Some(Mutant::ShortTxnTimeout) {
        // Shorter than a checkpoint plus its notification: the unsafe setting.
        cfg.txn_timeout_ms = cfg.checkpoint_interval_ms;
    }
    cfg
}

/// The input of a run: one partition per source, from the seed's workload
/// stream. Real mode derives it the same way.
pub fn derive_input(scenario: &dyn Scenario, seed: u64, cfg: &JobConfig) -> Vec<Vec<exactsim_engine::types::Record>> {
    scenario.generate(&mut SimRng::derive(seed, Stream::Workload), cfg.input_partitions())
}
