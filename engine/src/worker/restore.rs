//! What a deployment restores: the chain's state (its own snapshot, or
//! one merged from the old subtasks after a rescale) and the source
//! offsets, read from checkpoint storage.

use super::upload::Incremental;
use super::{ChainSnapshot, Ctx};
use crate::codec;
use crate::observe::Event;
use crate::proto::{Request, Response, RestorePlan};
use crate::shared_state::{IncrementalBase, Manifest};
use crate::sink::SinkSnapshot;
use crate::types::{adopter_of, rescale_sources, CheckpointId, DeliveryMode, TaskId};
use std::collections::BTreeMap;
use std::time::Duration;

/// What a chain restores: its own snapshot, or (the job rescaled) one
/// merged from the old subtasks that held its key groups, with the sink
/// state of the removed subtasks it adopts.
#[derive(Clone, Default)]
pub(super) struct Restored {
    /// The chain's snapshot; when rescaled, its operator state is empty
    /// (`keyed` holds it), its inputs' progress is the old subtasks'
    /// least, and its sink state is the old same-numbered subtask's.
    pub(super) snap: Option<ChainSnapshot>,
    /// Rescaled: the operator states of the old subtasks whose key groups
    /// this subtask takes over (`types::rescale_sources`), restored key
    /// by key (`KeyedOperator::restore_keys`).
    pub(super) keyed: Option<Vec<Vec<u8>>>,
    /// The removed subtasks this one adopts (`types::adopter_of`), with
    /// their sink state in the restored checkpoint if they had one.
    pub(super) adopted: Vec<(u32, Option<SinkSnapshot>)>,
}

impl Restored {
    pub(super) async fn read(ctx: &Ctx, plan: Option<&RestorePlan>, incr: &mut Option<Incremental>) -> Restored {
        let (i, now) = (ctx.index, ctx.cfg.parallelism);
        let exactly_once = ctx.cfg.mode == DeliveryMode::ExactlyOnce;
        let adopters: Vec<u32> =
            if exactly_once { (now..ctx.nodes).filter(|k| adopter_of(*k, now) == i).collect() } else { vec![] };
        let Some(p) = plan else {
            return Restored { adopted: adopters.into_iter().map(|k| (k, None)).collect(), ..Restored::default() };
        };
        let then = p.parallelism();
        if then == now {
            let name = p.blobs.get(&TaskId::Chain(i)).expect("plan names every task");
            let mut snap: ChainSnapshot = restore_blob(ctx, TaskId::Chain(i), name).await;
            // Incremental checkpoints: the snapshot names the shared files of
            // the operator's state; read them back, and base the next
            // checkpoints on them.
            if let Some(incr) = incr {
                let (manifest, files, state) = read_incremental(ctx, &snap.op).await;
                incr.base = IncrementalBase::restored(&manifest, &state);
                incr.durable.lock().unwrap().extend(files.into_keys());
                snap.op = state;
            }
            let adopted = adopters.into_iter().map(|k| (k, None)).collect();
            return Restored { snap: Some(snap), keyed: None, adopted };
        }
        // Rescaled: read every old subtask this one takes key groups from
        // (the adopted ones among them). The next checkpoints write their
        // state afresh (an empty incremental base).
        let mut parts: BTreeMap<u32, ChainSnapshot> = BTreeMap::new();
        for k in rescale_sources(then, now, i) {
            let name = p.blobs.get(&TaskId::Chain(k)).expect("plan names every task");
            let mut snap: ChainSnapshot = restore_blob(ctx, TaskId::Chain(k), name).await;
            if incr.is_some() {
                snap.op = read_incremental(ctx, &snap.op).await.2;
            }
            parts.insert(k, snap);
        }
        let first = parts.values().next().expect("a subtask takes key groups from at least one old one");
        let inputs = first.wms.len();
        assert!(parts.values().all(|s| s.ckpt == p.ckpt && s.wms.len() == inputs && s.ended.len() == inputs));
        let merged = ChainSnapshot {
            ckpt: p.ckpt,
            op: Vec::new(),
            wms: (0..inputs).map(|j| parts.values().map(|s| s.wms[j]).min().unwrap_or(0)).collect(),
            ended: (0..inputs).map(|j| parts.values().all(|s| s.ended[j])).collect(),
            eoi_done: parts.values().all(|s| s.eoi_done),
            emitted_wm: parts.values().map(|s| s.emitted_wm).min().unwrap_or(0),
            sink: parts.get(&i).map(|s| s.sink.clone()).unwrap_or_default(),
        };
        let adopted = adopters
            .into_iter()
            .map(|k| {
                let sink = parts.get(&k).map(|s| s.sink.clone());
                assert!(k >= then || sink.is_some(), "an adopted subtask of the checkpoint was read");
                (k, sink)
            })
            .collect();
        let keyed = parts.into_values().map(|s| s.op).collect();
        Restored { snap: Some(merged), keyed: Some(keyed), adopted }
    }
}

/// An incremental snapshot's operator state: its manifest, the shared
/// files it names (read back) and the state they assemble.
pub(super) async fn read_incremental(ctx: &Ctx, op: &[u8]) -> (Manifest, BTreeMap<String, Vec<u8>>, Vec<u8>) {
    let task = TaskId::Chain(ctx.index);
    let manifest: Manifest = match codec::decode(op) {
        Ok(m) => m,
        Err(e) => ctx.fail(task, format!("restore: manifest: {e}")).await,
    };
    let mut files = BTreeMap::new();
    for f in manifest.files() {
        let bytes: Vec<u8> = restore_blob(ctx, task, &f).await;
        files.insert(f, bytes);
    }
    let state = match manifest.assemble(&files) {
        Ok(s) => s,
        Err(e) => ctx.fail(task, format!("restore: {e}")).await,
    };
    (manifest, files, state)
}

/// Planted bug [`Mutant::OffsetsFromOtherCheckpoint`]: the newest source
/// blob of `source` stored for a checkpoint older than `ckpt`.
pub(super) async fn older_source_blob(
    ctx: &Ctx,
    source: u32,
    ckpt: CheckpointId,
) -> Option<(CheckpointId, Option<String>)> {
    let req = Request::ListBlobs { prefix: "ckpt-".into() };
    let Some(Response::Names { names }) = ctx.net.call_retry(ctx.addrs.store, req, ctx.rpc_timeout(), 3).await else {
        return None;
    };
    names
        .into_iter()
        .filter_map(|n| crate::coordinator::parse_blob_name(&n).map(|(c, t)| (c, t, n)))
        .filter(|(c, t, _)| *c < ckpt && *t == TaskId::Source(source))
        .max_by_key(|(c, _, _)| *c)
        .map(|(c, _, n)| (c, Some(n)))
}

/// Fetch a snapshot; a blob that cannot be read blocks the deployment (the
/// coordinator keeps waiting; the liveness check reports it).
pub(super) async fn restore_blob<T: serde::de::DeserializeOwned>(ctx: &Ctx, task: TaskId, name: &str) -> T {
    loop {
        match ctx.get_blob::<T>(name).await {
            Ok(v) => return v,
            Err(e) => {
                ctx.obs.emit(Event::TaskFailed { attempt: ctx.attempt, task, reason: format!("restore: {e}") });
                madsim::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
