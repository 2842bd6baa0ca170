//! Checkpoint storage: a node with its own disk that every worker can reach
//! (as HDFS or S3 would be). A blob is acknowledged only once it is durable
//! under its final name (write, fsync, rename, directory fsync).

use crate::config::{JobConfig, Mutant};
use crate::net::Net;
use crate::observe::{Event, FaultPoint, Obs};
use crate::proto::{Msg, Request, Response};
use crate::storage::{write_atomic, Storage};
use std::sync::Arc;

pub struct StoreNode {
    pub net: Arc<Net>,
    pub storage: Arc<dyn Storage>,
    pub obs: Obs,
    pub cfg: Arc<JobConfig>,
}

pub async fn run_store(node: StoreNode) {
    node.obs.emit(Event::NodeStarted);
    loop {
        let (from, msg) = node.net.recv().await;
        let Msg::Req { id, body } = msg else { continue };
        let resp = handle(&node, body).await;
        node.net.reply(from, id, resp).await;
    }
}

async fn handle(node: &StoreNode, req: Request) -> Response {
    let st = &*node.storage;
    match req {
        Request::PutBlob { name, bytes } => {
            assert!(!name.contains('/') && !name.ends_with(".tmp"));
            let r = if node.cfg.mutant_is(Mutant::AckBeforeDurable) {
                // Planted bug: acknowledged while only in the page cache.
                st.write(&name, &bytes).await
            } else {
                write_atomic(st, &name, &bytes).await
            };
            match r {
                Ok(()) => {
                    node.obs.emit(Event::BlobStored { name, bytes: bytes.len() as u64 });
                    node.obs.point(FaultPoint::StoreAfterBlobDurable).await;
                    Response::Ok
                }
                Err(e) => Response::IoError { reason: e.to_string() },
            }
        }
        Request::GetBlob { name } => match st.read(&name).await {
            Ok(bytes) => Response::Blob { bytes },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Response::NotFound,
            Err(e) => Response::IoError { reason: e.to_string() },
        },
        Request::DeleteBlobs { names } => {
            for n in &names {
                if let Err(e) = st.remove(n).await {
                    return Response::IoError { reason: e.to_string() };
                }
            }
            match st.fsync_dir().await {
                Ok(()) => {
                    if node.cfg.incremental_checkpoints {
                        node.obs.emit(Event::BlobsDeleted { names });
                    }
                    Response::Ok
                }
                Err(e) => Response::IoError { reason: e.to_string() },
            }
        }
        Request::ListBlobs { prefix } => match st.list(&prefix).await {
            Ok(names) => Response::Names { names: names.into_iter().filter(|n| !n.ends_with(".tmp")).collect() },
            Err(e) => Response::IoError { reason: e.to_string() },
        },
        _ => Response::NotFound,
    }
}
