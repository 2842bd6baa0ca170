//! The asynchronous part of a snapshot: the upload to checkpoint storage
//! and the acknowledgement, and an incremental snapshot's shared files.

use super::Ctx;
use crate::codec;
use crate::coordinator::blob_name;
use crate::observe::{Event, FaultPoint};
use crate::proto::Msg;
use crate::shared_state::IncrementalBase;
use crate::types::{Attempt, CheckpointId, TaskId};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// The asynchronous part of a snapshot: store the blob durably, then
/// acknowledge the checkpoint (or decline it). The task goes on processing
/// meanwhile; nothing depends on the upload but the acknowledgement.
pub(super) async fn upload_and_ack(
    ctx: Ctx,
    task: TaskId,
    ckpt: CheckpointId,
    bytes: Vec<u8>,
    offset: Option<u64>,
    finished: bool,
    files: Files,
) {
    let name = blob_name(ckpt, ctx.attempt, task);
    let mut size = bytes.len() as u64;
    // The new shared files first: the main blob refers to them.
    for (f, data) in files.new {
        size += data.len() as u64;
        if let Err(e) = ctx.put_blob(f.clone(), codec::encode_framed(&data)).await {
            return ctx.to_coordinator(Msg::Decline { attempt: ctx.attempt, ckpt, task, reason: e }).await;
        }
        if let Some(d) = &files.durable {
            d.lock().unwrap().insert(f);
        }
    }
    match ctx.put_blob(name.clone(), bytes).await {
        Ok(()) => {
            if ctx.cfg.incremental_checkpoints {
                let all = std::iter::once(name.clone()).chain(files.shared.iter().cloned()).collect();
                ctx.obs.emit(Event::SnapshotFiles { attempt: ctx.attempt, task, ckpt, files: all });
            }
            ctx.obs.emit(Event::SnapshotStored { attempt: ctx.attempt, task, ckpt, bytes: size });
            ctx.obs.point(FaultPoint::AfterSnapshotBeforeAck).await;
            ctx.obs.emit(Event::CheckpointAcked { attempt: ctx.attempt, task, ckpt, offset });
            let shared = files.shared;
            ctx.to_coordinator(Msg::Ack { attempt: ctx.attempt, ckpt, task, blob: name, offset, finished, shared })
                .await;
        }
        Err(e) => ctx.to_coordinator(Msg::Decline { attempt: ctx.attempt, ckpt, task, reason: e }).await,
    }
}

/// The shared files of an incremental snapshot: the ones it writes and
/// the ones it refers to (all of its manifest's); empty otherwise.
#[derive(Default)]
pub(super) struct Files {
    pub(super) new: Vec<(String, Vec<u8>)>,
    pub(super) shared: Vec<String>,
    pub(super) durable: Option<Arc<Mutex<BTreeSet<String>>>>,
}

/// A chain's incremental-checkpoint state: the previous checkpoint's files
/// and which shared files are known durable (written by a finished upload
/// of this attempt, or read back at the restore). A file is referred to
/// again only once durable: an upload that failed leaves no reference to
/// the file it did not write.
#[derive(Default)]
pub(super) struct Incremental {
    pub(super) base: IncrementalBase,
    pub(super) durable: Arc<Mutex<BTreeSet<String>>>,
}

/// The name of a shared file: unique per task, checkpoint and attempt.
pub fn shared_file_name(ckpt: CheckpointId, attempt: Attempt, task: TaskId) -> String {
    format!("shared-{task}-c{ckpt:012}-a{attempt}")
}

/// Background uploads of one task. They belong to the task's attempt: when
/// the task is dropped (its attempt replaced), they are aborted with it.
#[derive(Default)]
pub(super) struct Uploads(Vec<madsim::task::JoinHandle<()>>);

impl Uploads {
    pub(super) fn spawn(&mut self, f: impl std::future::Future<Output = ()> + Send + 'static) {
        self.0.retain(|h| !h.is_finished());
        self.0.push(madsim::task::spawn(f));
    }
}

impl Drop for Uploads {
    fn drop(&mut self) {
        for h in self.0.drain(..) {
            h.abort();
        }
    }
}
