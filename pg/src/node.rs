//! The simulated PostgreSQL server as a node: [`PgModel`] behind a
//! request/response protocol that survives a lossy, reordering network,
//! with its durable state in a write-ahead log on the node's disk.
//!
//! [`PgNode`] is the plain state machine (requests and time in; replies and
//! log records out). A node loop around it must handle **one request at a
//! time** and send a reply only after the request's log record (if any) is
//! appended and fsynced: nothing becomes visible, and no client learns of a
//! commit or a prepare, before it is durable. A failed append or fsync ends
//! the node (restart, replay the log), never a reply.
//!
//! Sessions over datagrams stand in for connections:
//! - a client picks a random session id and sends `Connect` (idempotent);
//! - every statement carries the session's next sequence number; a retry
//!   (same number) gets the cached reply without running the statement
//!   again, an older number is a stale duplicate and gets nothing;
//! - a session unknown to the node (the node restarted, or the session was
//!   closed or expired) answers "connection lost", as a real server's
//!   closed socket does;
//! - `Disconnect`, or no request for `idle_timeout_ms`, closes the session,
//!   which rolls back its open block (a dropped connection).
//!
//! [`run_pg_node`] is that loop on the engine's network (`Request::System`
//! carries the encoded [`NodeRequest`]); [`NodeConnector`] is the client side
//! of the seam: every statement is one call, retried with the same sequence
//! number, and a session whose call gets no answer is lost. A dropped
//! session is not announced: the node closes it when it has been idle for
//! `idle_timeout_ms` (keep that longer than any quiet spell of a live
//! session).

use crate::client::{PgConnector, PgError, PgOp, PgReply, PgSession};
use crate::model::{PgModel, SessionId, WalRecord};
use async_trait::async_trait;
use exactsim_engine::codec;
use exactsim_engine::net::Net;
use exactsim_engine::observe::{Event, Obs};
use exactsim_engine::proto::{Msg, Request, Response};
use exactsim_engine::storage::{write_atomic, Storage};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The node's write-ahead log file.
pub const WAL: &str = "pg.wal";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeBody {
    /// Open the session, named `owner` (its `application_name`).
    Connect {
        owner: String,
    },
    Exec(PgOp),
    Disconnect,
    /// Sessionless, read only (the output reader of a simulation): the
    /// committed rows of partition `part` in commit order from the `from`th
    /// on, as `PgReply::Rows` (what `SELECT ... WHERE part = $1` sees
    /// outside a block, ordered by commit position).
    ReadCommitted {
        part: u32,
        from: u64,
    },
    /// Sessionless, read only: `pg_prepared_xacts`, as `PgReply::Gids`.
    ListPrepared,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRequest {
    pub session: u64,
    /// 0 for `Connect`; statements count from 1; `Disconnect` carries the
    /// next number.
    pub seq: u64,
    pub body: NodeBody,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeResponse {
    pub session: u64,
    pub seq: u64,
    pub result: Result<PgReply, PgError>,
}

/// What handling one request produced.
#[derive(Debug, PartialEq, Eq)]
pub struct NodeStep {
    /// Append and fsync this before sending the reply.
    pub wal: Option<WalRecord>,
    /// `None`: a stale duplicate, nothing to send.
    pub reply: Option<NodeResponse>,
}

#[derive(Clone, Debug)]
struct Session {
    sid: SessionId,
    last_seq: u64,
    last_reply: Result<PgReply, PgError>,
    last_active_ms: u64,
}

pub struct PgNode {
    pub model: PgModel,
    sessions: BTreeMap<u64, Session>,
    idle_timeout_ms: u64,
}

fn gone() -> PgError {
    PgError::ConnectionLost("no such session: the server restarted or closed it".into())
}

impl PgNode {
    pub fn new(model: PgModel, idle_timeout_ms: u64) -> Self {
        PgNode { model, sessions: BTreeMap::new(), idle_timeout_ms }
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub fn handle(&mut self, now_ms: u64, req: NodeRequest) -> NodeStep {
        let NodeRequest { session, seq, body } = req;
        let reply = |result| Some(NodeResponse { session, seq, result });
        match body {
            NodeBody::ReadCommitted { part, from } => {
                NodeStep { wal: None, reply: reply(Ok(PgReply::Rows(self.model.committed_from(part, from)))) }
            }
            NodeBody::ListPrepared => {
                NodeStep { wal: None, reply: reply(Ok(PgReply::Gids(self.model.prepared_gids()))) }
            }
            NodeBody::Connect { owner } => {
                if let Some(s) = self.sessions.get_mut(&session) {
                    s.last_active_ms = now_ms;
                    return NodeStep { wal: None, reply: reply(Ok(PgReply::Ok)) };
                }
                match self.model.connect(&owner) {
                    Ok(sid) => {
                        let s = Session { sid, last_seq: 0, last_reply: Ok(PgReply::Ok), last_active_ms: now_ms };
                        self.sessions.insert(session, s);
                        NodeStep { wal: None, reply: reply(Ok(PgReply::Ok)) }
                    }
                    Err(e) => NodeStep { wal: None, reply: reply(Err(e)) },
                }
            }
            NodeBody::Disconnect => {
                if let Some(s) = self.sessions.remove(&session) {
                    self.model.disconnect(s.sid);
                }
                NodeStep { wal: None, reply: reply(Ok(PgReply::Ok)) }
            }
            NodeBody::Exec(op) => {
                let Some(s) = self.sessions.get_mut(&session) else {
                    return NodeStep { wal: None, reply: reply(Err(gone())) };
                };
                s.last_active_ms = now_ms;
                if seq == s.last_seq && seq > 0 {
                    return NodeStep { wal: None, reply: reply(s.last_reply.clone()) };
                }
                if seq < s.last_seq || seq == 0 {
                    return NodeStep { wal: None, reply: None };
                }
                if seq > s.last_seq + 1 {
                    // A statement went missing: the client gave the session
                    // up. Close it as a broken connection.
                    let s = self.sessions.remove(&session).expect("present");
                    self.model.disconnect(s.sid);
                    return NodeStep { wal: None, reply: reply(Err(gone())) };
                }
                let sid = s.sid;
                let (result, wal) = self.model.exec(sid, &op);
                let s = self.sessions.get_mut(&session).expect("present");
                s.last_seq = seq;
                s.last_reply = result.clone();
                NodeStep { wal, reply: reply(result) }
            }
        }
    }

    /// Close sessions idle for `idle_timeout_ms` (their clients are gone).
    pub fn expire(&mut self, now_ms: u64) -> usize {
        let dead: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, s)| now_ms.saturating_sub(s.last_active_ms) >= self.idle_timeout_ms)
            .map(|(k, _)| *k)
            .collect();
        for k in &dead {
            let s = self.sessions.remove(k).expect("present");
            self.model.disconnect(s.sid);
        }
        dead.len()
    }
}

/// One log record as bytes to append.
pub fn encode_wal(r: &WalRecord) -> Vec<u8> {
    codec::encode_framed(r)
}

/// Parse the log: the intact records, the length of the intact prefix, and
/// whether a checksum failed (a corrupted read; a torn append only leaves a
/// truncated last frame).
pub fn parse_wal(bytes: &[u8]) -> (Vec<WalRecord>, usize, bool) {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        match codec::unframe(&bytes[pos..]) {
            Ok((payload, used)) => match codec::decode::<WalRecord>(payload) {
                Ok(r) => {
                    out.push(r);
                    pos += used;
                }
                Err(_) => return (out, pos, true),
            },
            Err(codec::FrameError::Truncated) => return (out, pos, false),
            Err(codec::FrameError::Checksum) => return (out, pos, true),
        }
    }
    (out, pos, false)
}

/// Rebuild the server from its disk at boot: replay the log, cut a torn
/// tail, create the log if missing. Fatal problems end in `Err`.
pub async fn recover(storage: &dyn Storage, max_prepared: usize) -> Result<PgModel, String> {
    let mut parsed = None;
    for _ in 0..8 {
        match exactsim_engine::broker::read_stable(storage, WAL).await {
            Ok(bytes) => {
                let (records, good, corrupt) = parse_wal(&bytes);
                if !corrupt {
                    parsed = Some((bytes, records, good));
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_atomic(storage, WAL, &[]).await.map_err(|e| format!("create {WAL}: {e}"))?;
                parsed = Some((vec![], vec![], 0));
                break;
            }
            Err(e) => return Err(format!("read {WAL}: {e}")),
        }
    }
    let (bytes, records, good) = parsed.ok_or_else(|| format!("{WAL}: checksum mismatch on every read"))?;
    if good < bytes.len() {
        write_atomic(storage, WAL, &bytes[..good]).await.map_err(|e| format!("truncate {WAL}: {e}"))?;
    }
    PgModel::recover(max_prepared, &records)
}

/// The node loop: recover from the disk, then serve one request at a time,
/// each durable before its reply. Returns only on a fatal error (the caller
/// ends the node; a restart recovers from what is really on disk).
pub async fn run_pg_node(
    net: Arc<Net>,
    storage: Arc<dyn Storage>,
    max_prepared: usize,
    idle_timeout_ms: u64,
) -> String {
    serve_pg(net, storage, max_prepared, idle_timeout_ms, None).await
}

/// [`run_pg_node`], announcing every `COMMIT PREPARED` to `obs` (when
/// given) as `TxnCommitted{txn: gid, epoch: the gid's attempt, out: its
/// rows}`, once durable and before the reply.
pub async fn serve_pg(
    net: Arc<Net>,
    storage: Arc<dyn Storage>,
    max_prepared: usize,
    idle_timeout_ms: u64,
    obs: Option<Obs>,
) -> String {
    let model = match recover(&*storage, max_prepared).await {
        Ok(m) => m,
        Err(e) => return e,
    };
    let node = Arc::new(tokio::sync::Mutex::new(PgNode::new(model, idle_timeout_ms)));
    let start = madsim::time::Instant::now();
    let now_ms = move || start.elapsed().as_millis() as u64;
    let expiry = {
        let node = node.clone();
        madsim::task::spawn(async move {
            loop {
                madsim::time::sleep(Duration::from_millis((idle_timeout_ms / 4).max(1))).await;
                node.lock().await.expire(now_ms());
            }
        })
    };
    let fatal = loop {
        let (from, msg) = net.recv().await;
        let Msg::Req { id, body: Request::System { bytes } } = msg else { continue };
        let Ok(req) = codec::decode::<NodeRequest>(&bytes) else { continue };
        let mut n = node.lock().await;
        let committing = match (&obs, &req.body) {
            (Some(_), NodeBody::Exec(PgOp::CommitPrepared { gid })) => {
                n.model.prepared_rows(gid).map(|rows| (gid.clone(), rows.iter().map(|r| r.record()).collect()))
            }
            _ => None,
        };
        let step = n.handle(now_ms(), req);
        if let Some(w) = step.wal {
            if let Err(e) = storage.append(WAL, &encode_wal(&w)).await {
                break format!("{WAL} append: {e}");
            }
            if let Err(e) = storage.fsync(WAL).await {
                break format!("{WAL} fsync: {e}");
            }
            if let (Some(obs), WalRecord::CommitPrepared { gid }, Some((g, out))) = (&obs, &w, committing) {
                if *gid == g {
                    obs.emit(Event::TxnCommitted { epoch: gid_attempt(&g).unwrap_or(0), txn: g, out });
                }
            }
        }
        drop(n);
        if let Some(r) = step.reply {
            net.reply(from, id, Response::System { bytes: codec::encode(&r) }).await;
        }
    };
    expiry.abort();
    fatal
}

/// The attempt named by a gid of the PostgreSQL sink (`...-a{attempt}-c{ckpt}`).
pub fn gid_attempt(gid: &str) -> Option<u64> {
    let (head, ckpt) = gid.rsplit_once("-c")?;
    ckpt.parse::<u64>().ok()?;
    head.rsplit_once("-a")?.1.parse().ok()
}

/// Sessions on a [`run_pg_node`] server over the engine's network.
#[derive(Clone)]
pub struct NodeConnector {
    pub net: Arc<Net>,
    pub server: SocketAddr,
    /// Per try of a call.
    pub timeout: Duration,
    /// Extra tries of a call before the session is given up.
    pub retries: u32,
}

pub struct NodeSession {
    c: NodeConnector,
    session: u64,
    seq: u64,
    lost: bool,
}

impl NodeConnector {
    async fn call(&self, req: &NodeRequest) -> Result<PgReply, PgError> {
        let body = Request::System { bytes: codec::encode(req) };
        match self.net.call_retry(self.server, body, self.timeout, self.retries).await {
            None => Err(PgError::ConnectionLost("the server did not answer".into())),
            Some(Response::System { bytes }) => match codec::decode::<NodeResponse>(&bytes) {
                Ok(r) if r.session == req.session && r.seq == req.seq => r.result,
                Ok(r) => {
                    Err(PgError::Protocol(format!("answer to {}/{} for {}/{}", r.session, r.seq, req.session, req.seq)))
                }
                Err(e) => Err(PgError::Protocol(e)),
            },
            Some(other) => Err(PgError::Protocol(format!("unexpected answer {other:?}"))),
        }
    }
}

#[async_trait]
impl PgConnector for NodeConnector {
    async fn connect(&self, owner: &str) -> Result<Box<dyn PgSession>, PgError> {
        let session = madsim::rand::random::<u64>();
        self.call(&NodeRequest { session, seq: 0, body: NodeBody::Connect { owner: owner.to_string() } }).await?;
        Ok(Box::new(NodeSession { c: self.clone(), session, seq: 0, lost: false }))
    }
}

#[async_trait]
impl PgSession for NodeSession {
    async fn exec(&mut self, op: PgOp) -> Result<PgReply, PgError> {
        if self.lost {
            return Err(PgError::ConnectionLost("session given up".into()));
        }
        self.seq += 1;
        let r = self.c.call(&NodeRequest { session: self.session, seq: self.seq, body: NodeBody::Exec(op) }).await;
        if matches!(r, Err(PgError::ConnectionLost(_)) | Err(PgError::Protocol(_))) {
            self.lost = true;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::PgCode;
    use async_trait::async_trait;
    use exactsim_engine::types::OutRecord;
    use std::io;
    use std::sync::Mutex;

    fn req(session: u64, seq: u64, body: NodeBody) -> NodeRequest {
        NodeRequest { session, seq, body }
    }

    fn ins(i: u64) -> NodeBody {
        NodeBody::Exec(PgOp::Insert { part: 0, rows: vec![OutRecord::new(i, 0, 0, 0)] })
    }

    fn result(s: NodeStep) -> Result<PgReply, PgError> {
        s.reply.expect("a reply").result
    }

    #[test]
    fn the_reader_sees_committed_rows_in_commit_order_per_partition() {
        let mut n = PgNode::new(PgModel::new(4), 1000);
        let row = |part, i| PgOp::Insert { part, rows: vec![OutRecord::new(i, 0, 0, 0)] };
        let read =
            |n: &mut PgNode, part, from| match result(n.handle(0, req(0, 0, NodeBody::ReadCommitted { part, from }))) {
                Ok(PgReply::Rows(r)) => r.iter().map(|r| r.out_id).collect::<Vec<_>>(),
                other => panic!("{other:?}"),
            };
        n.handle(0, req(1, 0, NodeBody::Connect { owner: "t".into() }));
        n.handle(0, req(2, 0, NodeBody::Connect { owner: "t".into() }));
        n.handle(0, req(1, 1, NodeBody::Exec(PgOp::Begin)));
        n.handle(0, req(1, 2, NodeBody::Exec(row(0, 3))));
        n.handle(0, req(1, 3, NodeBody::Exec(PgOp::Prepare { gid: "j-sink-0-a2-c5".into() })));
        n.handle(0, req(2, 1, NodeBody::Exec(row(0, 5))));
        n.handle(0, req(2, 2, NodeBody::Exec(row(1, 7))));
        assert_eq!(read(&mut n, 0, 0), vec![5], "prepared rows are invisible");
        assert_eq!(
            result(n.handle(0, req(0, 0, NodeBody::ListPrepared))),
            Ok(PgReply::Gids(vec!["j-sink-0-a2-c5".into()]))
        );
        n.handle(0, req(2, 3, NodeBody::Exec(PgOp::CommitPrepared { gid: "j-sink-0-a2-c5".into() })));
        assert_eq!(read(&mut n, 0, 0), vec![5, 3], "commit order, not sorted order");
        assert_eq!(read(&mut n, 0, 1), vec![3], "from an offset");
        assert_eq!(read(&mut n, 1, 0), vec![7]);
        assert_eq!(read(&mut n, 0, 5), Vec::<u64>::new());
        assert_eq!(n.session_count(), 2, "sessionless reads open no session");
        assert_eq!(gid_attempt("j-sink-0-a2-c5"), Some(2));
        assert_eq!(gid_attempt("pg_ledger-sink-10-a13-c7"), Some(13));
        assert_eq!(gid_attempt("nonsense"), None);
    }

    #[test]
    fn retries_get_the_cached_reply_and_run_once() {
        let mut n = PgNode::new(PgModel::new(2), 1000);
        assert_eq!(result(n.handle(0, req(7, 0, NodeBody::Connect { owner: "t".into() }))), Ok(PgReply::Ok));
        assert_eq!(
            result(n.handle(0, req(7, 0, NodeBody::Connect { owner: "t".into() }))),
            Ok(PgReply::Ok),
            "idempotent"
        );
        let first = n.handle(1, req(7, 1, ins(1)));
        assert!(first.wal.is_some(), "an autocommit insert is durable");
        let retry = n.handle(2, req(7, 1, ins(1)));
        assert_eq!(retry.wal, None, "a retry is not run again");
        assert_eq!(retry.reply.unwrap().result, Ok(PgReply::Ok));
        assert_eq!(n.model.committed_rows().len(), 1);
        n.handle(3, req(7, 2, NodeBody::Exec(PgOp::CommitPrepared { gid: "x".into() })));
        assert_eq!(n.handle(4, req(7, 1, ins(1))).reply, None, "a stale duplicate gets nothing");
        let again = result(n.handle(5, req(7, 2, NodeBody::Exec(PgOp::CommitPrepared { gid: "x".into() }))));
        assert_eq!(again.unwrap_err().code(), Some(&PgCode::UndefinedObject), "the cached error");
        // a gap: the client gave up; the session is closed
        assert!(matches!(result(n.handle(6, req(7, 9, ins(2)))), Err(PgError::ConnectionLost(_))));
        assert!(matches!(result(n.handle(6, req(7, 3, ins(2)))), Err(PgError::ConnectionLost(_))));
        assert_eq!(n.model.committed_rows().len(), 1);
    }

    #[test]
    fn idle_and_disconnected_sessions_roll_back_their_block() {
        let mut n = PgNode::new(PgModel::new(2), 100);
        for s in [1, 2] {
            n.handle(0, req(s, 0, NodeBody::Connect { owner: "t".into() }));
            n.handle(0, req(s, 1, NodeBody::Exec(PgOp::Begin)));
            n.handle(0, req(s, 2, ins(s)));
        }
        n.handle(50, req(1, 3, NodeBody::Exec(PgOp::SelectRows)));
        n.handle(60, req(2, 3, NodeBody::Disconnect));
        assert_eq!(n.expire(120), 0, "session 1 was active at 50");
        assert_eq!(n.session_count(), 1);
        assert_eq!(n.expire(150), 1);
        assert!(matches!(
            result(n.handle(151, req(1, 4, NodeBody::Exec(PgOp::Commit)))),
            Err(PgError::ConnectionLost(_))
        ));
        assert!(n.model.committed_rows().is_empty());
    }

    /// Clients running autocommit inserts and BEGIN/INSERT/COMMIT blocks
    /// through a network that loses, duplicates and reorders datagrams, with
    /// timeouts, retries and giving sessions up: every acknowledged insert is
    /// committed exactly once, every other one at most once, blocks are
    /// atomic.
    #[test]
    fn lossy_network_statements_run_once() {
        for seed in 1..200u64 {
            let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            let mut rnd = move |n: u64| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % n
            };
            let mut n = PgNode::new(PgModel::new(2), 400);
            #[derive(Default)]
            struct Client {
                session: u64,
                seq: u64,
                outstanding: Option<(NodeRequest, u64, u32)>, // request, sent at, tries
                block: Vec<u64>,                              // ids inserted in the open block
                next: u64,
            }
            let mut clients: Vec<Client> = (0..3).map(|_| Client::default()).collect();
            let mut net: Vec<(bool, u64, NodeRequest, Option<NodeResponse>)> = vec![]; // (to server, client, ...)
            let mut acked: Vec<u64> = vec![];
            let mut blocks: Vec<Vec<u64>> = vec![]; // every block's ids (atomicity)
            let mut next_session = 1;
            let mut next_id = 0u64;
            for now in 0..3000u64 {
                // clients act
                for (ci, c) in clients.iter_mut().enumerate() {
                    if let Some((pending, at, tries)) = c.outstanding.clone() {
                        if now - at > 20 {
                            if tries < 3 {
                                c.outstanding = Some((pending.clone(), now, tries + 1));
                                net.push((true, ci as u64, pending, None));
                            } else {
                                // give the session up
                                net.push((true, ci as u64, req(c.session, c.seq + 1, NodeBody::Disconnect), None));
                                blocks.push(c.block.drain(..).filter(|i| *i != 0).collect());
                                *c = Client { next: c.next, ..Client::default() };
                            }
                        }
                        continue;
                    }
                    let body = if c.session == 0 {
                        c.session = next_session;
                        next_session += 1;
                        c.seq = 0;
                        NodeBody::Connect { owner: "t".into() }
                    } else {
                        c.seq += 1;
                        match (c.block.is_empty(), rnd(4)) {
                            (_, 0) => {
                                next_id += 1;
                                c.next = next_id;
                                ins(next_id)
                            }
                            (true, 1) => NodeBody::Exec(PgOp::Begin),
                            (false, 1) => NodeBody::Exec(PgOp::Commit),
                            _ => NodeBody::Exec(PgOp::SelectRows),
                        }
                    };
                    if body == NodeBody::Exec(PgOp::Begin) {
                        c.block = vec![0]; // marks "in a block" once acknowledged
                    }
                    let r = req(c.session, c.seq, body);
                    c.outstanding = Some((r.clone(), now, 0));
                    net.push((true, ci as u64, r, None));
                }
                // the network delivers, drops or duplicates one message
                if !net.is_empty() {
                    let i = rnd(net.len() as u64) as usize;
                    let m = match rnd(10) {
                        0 => {
                            net.swap_remove(i);
                            None
                        }
                        1 => Some(net[i].clone()),
                        _ => Some(net.swap_remove(i)),
                    };
                    if let Some((to_server, ci, r, resp)) = m {
                        if to_server {
                            if let Some(resp) = n.handle(now, r.clone()).reply {
                                net.push((false, ci, r, Some(resp)));
                            }
                        } else {
                            let c = &mut clients[ci as usize];
                            let resp = resp.expect("a response");
                            let mine = c
                                .outstanding
                                .as_ref()
                                .is_some_and(|(o, _, _)| o.session == resp.session && o.seq == resp.seq);
                            if mine {
                                let (o, _, _) = c.outstanding.take().expect("outstanding");
                                match (&o.body, &resp.result) {
                                    (NodeBody::Exec(PgOp::Insert { rows, .. }), Ok(_)) => {
                                        let id = rows[0].out_id;
                                        if c.block.is_empty() {
                                            acked.push(id);
                                        } else {
                                            c.block.push(id);
                                        }
                                    }
                                    (NodeBody::Exec(PgOp::Commit), Ok(_)) => {
                                        let ids: Vec<u64> = c.block.drain(..).filter(|i| *i != 0).collect();
                                        acked.extend(&ids);
                                        blocks.push(ids);
                                    }
                                    (_, Err(PgError::ConnectionLost(_))) => {
                                        let ids: Vec<u64> = c.block.drain(..).filter(|i| *i != 0).collect();
                                        blocks.push(ids);
                                        *c = Client { next: c.next, ..Client::default() };
                                    }
                                    (NodeBody::Exec(PgOp::Begin), Err(_)) => c.block.clear(),
                                    _ => {}
                                }
                            }
                        }
                    }
                }
                n.expire(now);
            }
            let rows: Vec<u64> = n.model.committed_rows().iter().map(|r| r.out_id).collect();
            let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
            rows.iter().for_each(|r| *counts.entry(*r).or_default() += 1);
            assert!(counts.values().all(|c| *c == 1), "seed {seed}: a statement ran twice");
            for a in &acked {
                assert!(counts.contains_key(a), "seed {seed}: acknowledged insert {a} missing");
            }
            for b in &blocks {
                let present = b.iter().filter(|i| counts.contains_key(i)).count();
                assert!(present == 0 || present == b.len(), "seed {seed}: block {b:?} half committed");
            }
            assert!(acked.len() > 50, "seed {seed}: only {} inserts acknowledged", acked.len());
        }
    }

    /// The sink drill over madsim's network (5% packet loss) against a
    /// `run_pg_node` node that is killed and restarted: exactly once.
    #[cfg(madsim)]
    #[test]
    fn sink_drill_over_the_simulated_network_with_node_crashes() {
        use crate::drill::drill;
        let (mut recoveries, mut lost_answers) = (0, 0);
        for seed in 1..=6u64 {
            // One runtime per seed in a fresh thread, outside any simulation.
            let o = std::thread::Builder::new()
                .name(format!("pg-drill-{seed}"))
                .spawn(move || {
                    let mut config = madsim::Config::default();
                    config.net.packet_loss_rate = 0.05;
                    let rt = madsim::runtime::Runtime::with_seed_and_config(seed, config);
                    rt.block_on(async move {
                        let h = madsim::runtime::Handle::current();
                        let server: SocketAddr = "10.9.0.1:5432".parse().unwrap();
                        let client: SocketAddr = "10.9.0.2:1".parse().unwrap();
                        let disk: Arc<dyn Storage> = Arc::new(Mem::default());
                        let node = h
                            .create_node()
                            .name("pg")
                            .ip(server.ip())
                            .init(move || {
                                let disk = disk.clone();
                                async move {
                                    let net = Net::bind(server).await.unwrap();
                                    let e = run_pg_node(net, disk, 4, 60_000).await;
                                    panic!("pg node: {e}");
                                }
                            })
                            .build();
                        let id = node.id();
                        let c = h.create_node().name("client").ip(client.ip()).build();
                        c.spawn(async move {
                            let net = Net::bind(client).await.unwrap();
                            let conn =
                                Arc::new(NodeConnector { net, server, timeout: Duration::from_millis(50), retries: 4 });
                            let h = madsim::runtime::Handle::current();
                            let mut crash = || {
                                h.kill(id);
                                h.restart(id);
                            };
                            drill(conn, seed, 200, None, &mut crash).await
                        })
                        .await
                        .unwrap()
                    })
                })
                .expect("spawn")
                .join()
                .unwrap();
            if let Err(e) = o.verdict() {
                panic!("seed {seed}: {e}\n{:#?}", o.trace);
            }
            recoveries += o.recoveries;
            lost_answers += o.trace.iter().filter(|l| l.contains("transient")).count();
        }
        println!("6 runs: {recoveries} recoveries, {lost_answers} steps failed on the network or a crash");
        assert!(recoveries >= 6);
    }

    /// In-memory storage: enough for `recover`.
    #[derive(Default)]
    struct Mem(Mutex<BTreeMap<String, Vec<u8>>>);

    #[async_trait]
    impl Storage for Mem {
        async fn write(&self, p: &str, d: &[u8]) -> io::Result<()> {
            self.0.lock().unwrap().insert(p.into(), d.to_vec());
            Ok(())
        }
        async fn append(&self, p: &str, d: &[u8]) -> io::Result<()> {
            self.0.lock().unwrap().entry(p.into()).or_default().extend_from_slice(d);
            Ok(())
        }
        async fn fsync(&self, _: &str) -> io::Result<()> {
            Ok(())
        }
        async fn rename(&self, f: &str, t: &str) -> io::Result<()> {
            let mut m = self.0.lock().unwrap();
            let v = m.remove(f).ok_or(io::ErrorKind::NotFound)?;
            m.insert(t.into(), v);
            Ok(())
        }
        async fn fsync_dir(&self) -> io::Result<()> {
            Ok(())
        }
        async fn read(&self, p: &str) -> io::Result<Vec<u8>> {
            self.0.lock().unwrap().get(p).cloned().ok_or_else(|| io::ErrorKind::NotFound.into())
        }
        async fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
            Ok(self.0.lock().unwrap().keys().filter(|k| k.starts_with(prefix)).cloned().collect())
        }
        async fn remove(&self, p: &str) -> io::Result<()> {
            self.0.lock().unwrap().remove(p);
            Ok(())
        }
    }

    fn ready<F: std::future::Future>(f: F) -> F::Output {
        use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
        fn raw() -> RawWaker {
            fn clone(_: *const ()) -> RawWaker {
                raw()
            }
            fn noop(_: *const ()) {}
            static VT: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
            RawWaker::new(std::ptr::null(), &VT)
        }
        let waker = unsafe { Waker::from_raw(raw()) };
        match std::pin::pin!(f).poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("waited"),
        }
    }

    #[test]
    fn the_log_survives_a_restart_and_a_torn_tail_is_cut() {
        let disk = Mem::default();
        let mut n = PgNode::new(ready(recover(&disk, 2)).unwrap(), 1000);
        let ops = [
            NodeBody::Connect { owner: "t".into() },
            ins(1),
            NodeBody::Exec(PgOp::Begin),
            ins(2),
            NodeBody::Exec(PgOp::Prepare { gid: "g".into() }),
            NodeBody::Exec(PgOp::Begin),
            ins(3), // open: lost at the restart
        ];
        for (i, body) in ops.into_iter().enumerate() {
            let step = n.handle(0, req(1, i as u64, body));
            if let Some(w) = step.wal {
                ready(disk.append(WAL, &encode_wal(&w))).unwrap();
            }
        }
        // a torn append of one more record
        let torn = encode_wal(&WalRecord::CommitPrepared { gid: "g".into() });
        ready(disk.append(WAL, &torn[..torn.len() - 3])).unwrap();
        let mut n = PgNode::new(ready(recover(&disk, 2)).unwrap(), 1000);
        assert_eq!(n.model.committed_rows().iter().map(|r| r.out_id).collect::<Vec<_>>(), vec![1]);
        assert_eq!(n.model.prepared_gids(), vec!["g".to_string()]);
        assert!(matches!(result(n.handle(0, req(1, 7, ins(4)))), Err(PgError::ConnectionLost(_))), "sessions are gone");
        let wal = ready(disk.read(WAL)).unwrap();
        assert_eq!(parse_wal(&wal), (parse_wal(&wal).0, wal.len(), false), "the torn tail was cut");
        assert_eq!(parse_wal(&wal).0.len(), 2);
        // a corrupted byte is not a torn tail
        let mut bad = wal.clone();
        bad[10] ^= 0xff;
        assert!(parse_wal(&bad).2);
    }
}
