//! The coordinator as a node: [`run_coordinator`], the thin loop that
//! reads its durable record, feeds messages and ticks to [`Coordinator`]
//! and executes the actions it returns.

use super::{decode_meta, encode_meta, Action, CoordMeta, Coordinator, META};
use crate::broker::read_stable;
use crate::config::JobConfig;
use crate::net::{Addrs, Net};
use crate::observe::{Event, Obs, Reach};
use crate::proto::{Request, Response};
use crate::storage::{write_atomic, Storage};
use std::sync::Arc;
use std::time::Duration;

pub struct CoordinatorNode {
    pub net: Arc<Net>,
    pub storage: Arc<dyn Storage>,
    pub obs: Obs,
    pub cfg: Arc<JobConfig>,
    pub addrs: Addrs,
    /// The run this process was started as (its submission: `cfg.run`
    /// unless a redeploy asked for a newer one). A run newer than the
    /// durable one is a redeploy ([`run_identity`]).
    pub run: u64,
    /// The parallelism this process deploys the job with (`cfg.parallelism`
    /// unless a rescale asked for fewer subtasks).
    pub parallelism: u32,
}

/// The run a starting coordinator serves, and whether its start is a
/// redeploy: `stored` is the durable record's run (none without a record),
/// `first` the job's first run (`JobConfig::run`), `asked` the run the
/// process was started as. A newer run than the durable one is a redeploy
/// (a new job identity); an older one is a process started from an old
/// submission, which serves the durable run (runs never go back).
pub fn run_identity(stored: Option<u64>, first: u64, asked: u64) -> (u64, bool) {
    let durable = stored.unwrap_or(first).max(first);
    if asked > durable {
        (asked, true)
    } else {
        (durable, false)
    }
}

pub const TICK_MS: u64 = 10;

pub async fn run_coordinator(node: CoordinatorNode) {
    let obs = node.obs.clone();
    obs.emit(Event::NodeStarted);
    let meta: Option<CoordMeta> = match read_stable(&*node.storage, META).await {
        Ok(bytes) => match decode_meta(&node.cfg, &bytes) {
            Ok(m) => Some(m),
            Err(e) => obs.fatal(format!("coordinator record unreadable: {e}")).await,
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => obs.fatal(format!("read coordinator record: {e}")).await,
    };
    // A redeploy's new run is made durable with the first record the
    // recovery persists (its new attempt), before anything is deployed.
    let (run, redeployed) = run_identity(meta.as_ref().map(|m| m.run), node.cfg.run, node.run);
    // Failure detection, checkpoint timeouts and resends are measured on
    // this node's monotonic clock.
    let clock = crate::clock::Clock::new(&obs);
    let now_ms = || clock.mono_ms();
    let (mut coord, actions) =
        Coordinator::recover_run(node.cfg.clone(), meta, run, redeployed, node.parallelism, now_ms());
    execute(&node, &mut coord, actions).await;
    // Receiving is not cancellation safe, so it runs in its own task and
    // feeds a channel that the loop below can select on.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    {
        let (net, addrs) = (node.net.clone(), node.addrs.clone());
        madsim::task::spawn(async move {
            loop {
                let (from, msg) = net.recv().await;
                if addrs.worker_index(from).is_some() && tx.send(msg).is_err() {
                    return;
                }
            }
        });
    }
    let mut next_tick = madsim::time::Instant::now() + Duration::from_millis(TICK_MS);
    loop {
        let actions = tokio::select! {
            biased;
            Some(msg) = rx.recv() => coord.on_msg(msg, now_ms()),
            _ = madsim::time::sleep_until(next_tick) => {
                next_tick += Duration::from_millis(TICK_MS);
                coord.on_tick(now_ms())
            }
        };
        execute(&node, &mut coord, actions).await;
    }
}

async fn execute(node: &CoordinatorNode, coord: &mut Coordinator, actions: Vec<Action>) {
    let mut queue: std::collections::VecDeque<Action> = actions.into();
    while let Some(a) = queue.pop_front() {
        match a {
            Action::Persist(meta) => {
                if let Err(e) = write_atomic(&*node.storage, META, &encode_meta(&node.cfg, &meta)).await {
                    node.obs.reach(Reach::CoordinatorWriteFailed);
                    node.obs.fatal(format!("persist coordinator record: {e}")).await;
                }
            }
            Action::Point(p) => node.obs.point(p).await,
            Action::Emit(e) => node.obs.emit(e),
            Action::Reach(p) => node.obs.reach(p),
            Action::Send(w, msg) => node.net.send(node.addrs.workers[w as usize], &msg).await,
            Action::DeleteBlobs(names) => {
                let net = node.net.clone();
                let store = node.addrs.store;
                madsim::task::spawn(async move {
                    let _ = net.call(store, Request::DeleteBlobs { names }, Duration::from_millis(500)).await;
                });
            }
            Action::DeleteBlobsNow(names) => {
                let t = Duration::from_millis(node.cfg.rpc_timeout_ms);
                let _ = node.net.call_retry(node.addrs.store, Request::DeleteBlobs { names }, t, 3).await;
            }
            Action::ListBlobsForRestore => {
                let t = Duration::from_millis(node.cfg.rpc_timeout_ms);
                let names = match node
                    .net
                    .call_retry(node.addrs.store, Request::ListBlobs { prefix: "ckpt-".into() }, t, 50)
                    .await
                {
                    Some(Response::Names { names }) => names,
                    _ => Vec::new(),
                };
                queue.extend(coord.on_blob_listing(&names));
            }
        }
    }
}
