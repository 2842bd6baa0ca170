//! The simulated PostgreSQL server as a pipeline's own sink system
//! ([`PgSystem`]: the node loop of [`crate::node`] on the system's node and
//! disk, announcing every `COMMIT PREPARED` as `TxnCommitted`), and how a
//! `read_committed` reader sees its output ([`PgReader`]).
//!
//! The reader's order key is the commit position: per output partition
//! (the `part` column) the committed rows in the order they became
//! visible, which only ever grows at the end. A read from offset `n`
//! returns the rows from the `n`th on; the transactions it reports open
//! are the prepared ones (`pg_prepared_xacts`), with the attempt their gid
//! names as epoch.

use crate::client::PgReply;
use crate::node::{gid_attempt, serve_pg, NodeBody, NodeRequest, NodeResponse};
use async_trait::async_trait;
use exactsim_engine::codec;
use exactsim_engine::net::Net;
use exactsim_engine::proto::{Request, Response};
use exactsim_engine::system::{OutputReader, ReadStep, SinkSystem, SystemEnv};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

/// The simulated PostgreSQL server as a sink system.
#[derive(Clone, Debug)]
pub struct PgSystem {
    /// `max_prepared_transactions`.
    pub max_prepared: usize,
    /// Sessions idle this long are closed (their open block rolled back).
    pub idle_timeout_ms: u64,
}

impl SinkSystem for PgSystem {
    fn serve(&self, env: SystemEnv) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let me = self.clone();
        Box::pin(async move {
            let obs = env.obs.clone();
            let fatal = serve_pg(env.net, env.storage, me.max_prepared, me.idle_timeout_ms, Some(obs.clone())).await;
            obs.fatal(fatal).await
        })
    }
}

/// A `read_committed` reader of the simulated server.
pub struct PgReader;

async fn ask(net: &Net, at: SocketAddr, body: NodeBody, timeout: Duration) -> Option<PgReply> {
    let req = NodeRequest { session: 0, seq: 0, body };
    match net.call(at, Request::System { bytes: codec::encode(&req) }, timeout).await {
        Some(Response::System { bytes }) => codec::decode::<NodeResponse>(&bytes).ok()?.result.ok(),
        _ => None,
    }
}

#[async_trait]
impl OutputReader for PgReader {
    async fn read(&self, net: &Net, at: SocketAddr, partition: u32, offset: u64, t: Duration) -> Option<ReadStep> {
        let Some(PgReply::Rows(rows)) =
            ask(net, at, NodeBody::ReadCommitted { part: partition, from: offset }, t).await
        else {
            return None;
        };
        let Some(PgReply::Gids(open)) = ask(net, at, NodeBody::ListPrepared, t).await else { return None };
        Some(ReadStep {
            next_offset: offset + rows.len() as u64,
            records: rows.iter().map(|r| r.record()).collect(),
            open_txns: open.len() as u32,
        })
    }

    async fn open_txns(&self, net: &Net, at: SocketAddr, t: Duration) -> Option<Vec<(String, u64)>> {
        match ask(net, at, NodeBody::ListPrepared, t).await? {
            PgReply::Gids(g) => Some(g.into_iter().map(|g| (g.clone(), gid_attempt(&g).unwrap_or(0))).collect()),
            _ => None,
        }
    }
}
