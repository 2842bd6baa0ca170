//! A node's network endpoint: datagrams of serialized [`Msg`]s, plus
//! request/response calls with a timeout. Datagrams may be lost, delayed,
//! reordered or duplicated by the network; every caller copes (retries,
//! idempotent handlers, sequence numbers).

use crate::codec;
use crate::proto::{Msg, Request, Response};
use madsim::net::Endpoint;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// Separate tags give separate mailboxes: madsim's endpoint mailbox is not
/// FIFO under load (it takes messages with `swap_remove`), so a burst of data
/// messages could starve an RPC reply for longer than its timeout. Replies,
/// data and control each get their own queue and their own receive loop.
const TAG_CTRL: u64 = 0xE5;
const TAG_RESP: u64 = 0xE6;
const TAG_DATA: u64 = 0xE7;

fn tag_of(msg: &Msg) -> u64 {
    match msg {
        Msg::Resp { .. } => TAG_RESP,
        Msg::Data { .. } | Msg::DataAck { .. } => TAG_DATA,
        _ => TAG_CTRL,
    }
}

/// Decides, for each outgoing message, whether to hold it back and send it
/// that much later (late delivery). Installed by the simulator; `None` sends
/// at once.
pub type SendHook = Arc<dyn Fn(SocketAddr, &Msg) -> Option<Duration> + Send + Sync>;

pub struct Net {
    ep: Endpoint,
    addr: SocketAddr,
    pending: Mutex<BTreeMap<u64, oneshot::Sender<Response>>>,
    next_id: AtomicU64,
    hook: Mutex<Option<SendHook>>,
    me: std::sync::Weak<Net>,
}

impl Net {
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Arc<Net>> {
        let ep = Endpoint::bind(addr).await?;
        // Request ids are unique per incarnation, so a reply to a request of
        // a previous incarnation never matches a new request.
        let incarnation: u32 = madsim::rand::random();
        let net = Arc::new_cyclic(|me| Net {
            ep,
            addr,
            pending: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new((incarnation as u64) << 32),
            hook: Mutex::new(None),
            me: me.clone(),
        });
        let replies = net.clone();
        madsim::task::spawn(async move {
            loop {
                let (bytes, _from) = replies.recv_bytes(TAG_RESP).await;
                if let Ok(Msg::Resp { id, body }) = codec::decode::<Msg>(&bytes) {
                    let waiter = replies.pending.lock().unwrap().remove(&id);
                    if let Some(tx) = waiter {
                        let _ = tx.send(body);
                    }
                }
            }
        });
        Ok(net)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Install the hook that may hold messages back (see [`SendHook`]).
    pub fn set_send_hook(&self, hook: SendHook) {
        *self.hook.lock().unwrap() = Some(hook);
    }

    /// Fire and forget: a lost datagram is the caller's business.
    pub async fn send(&self, dst: SocketAddr, msg: &Msg) {
        let bytes = codec::encode(msg);
        let hook = self.hook.lock().unwrap().clone();
        if let Some(delay) = hook.and_then(|h| h(dst, msg)) {
            // Held back: it leaves this node `delay` later (unless the node
            // dies first), whatever happened meanwhile.
            if let Some(me) = self.me.upgrade() {
                let tag = tag_of(msg);
                madsim::task::spawn(async move {
                    madsim::time::sleep(delay).await;
                    me.send_bytes(dst, tag, bytes).await;
                });
            }
            return;
        }
        self.send_bytes(dst, tag_of(msg), bytes).await;
    }

    /// In simulation the encoded bytes travel as they are (`send_to` would
    /// copy them once more); the receiver gets exactly these bytes.
    #[cfg(madsim)]
    async fn send_bytes(&self, dst: SocketAddr, tag: u64, bytes: Vec<u8>) {
        let _ = self.ep.send_to_raw(dst, tag, Box::new(bytes)).await;
    }

    #[cfg(not(madsim))]
    async fn send_bytes(&self, dst: SocketAddr, tag: u64, bytes: Vec<u8>) {
        let _ = self.ep.send_to(dst, tag, &bytes).await;
    }

    /// Receive the next control message or request.
    pub async fn recv(&self) -> (SocketAddr, Msg) {
        self.recv_tag(TAG_CTRL).await
    }

    /// Receive the next data-plane message (`Data`, `DataAck`).
    pub async fn recv_data(&self) -> (SocketAddr, Msg) {
        self.recv_tag(TAG_DATA).await
    }

    async fn recv_tag(&self, tag: u64) -> (SocketAddr, Msg) {
        loop {
            let (bytes, from) = self.recv_bytes(tag).await;
            match codec::decode(&bytes) {
                Ok(m) => return (from, m),
                Err(_) => continue, // not ours: drop like a bad packet
            }
        }
    }

    #[cfg(madsim)]
    async fn recv_bytes(&self, tag: u64) -> (Vec<u8>, SocketAddr) {
        loop {
            match self.ep.recv_from_raw(tag).await {
                Ok((payload, from)) => match payload.downcast::<Vec<u8>>() {
                    Ok(b) => return (*b, from),
                    Err(_) => continue,
                },
                Err(_) => madsim::time::sleep(Duration::from_millis(1)).await,
            }
        }
    }

    #[cfg(not(madsim))]
    async fn recv_bytes(&self, tag: u64) -> (Vec<u8>, SocketAddr) {
        let mut buf = vec![0u8; 1 << 22];
        loop {
            match self.ep.recv_from(tag, &mut buf).await {
                Ok((n, from)) => return (buf[..n].to_vec(), from),
                Err(_) => madsim::time::sleep(Duration::from_millis(1)).await,
            }
        }
    }

    /// One request, one timeout. `None` when no reply came in time.
    pub async fn call(&self, dst: SocketAddr, body: Request, timeout: Duration) -> Option<Response> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        self.send(dst, &Msg::Req { id, body }).await;
        let r = madsim::time::timeout(timeout, rx).await;
        self.pending.lock().unwrap().remove(&id);
        match r {
            Ok(Ok(resp)) => Some(resp),
            _ => None,
        }
    }

    /// Retry a call up to `retries` extra times. The request must be
    /// idempotent on the server.
    pub async fn call_retry(
        &self,
        dst: SocketAddr,
        body: Request,
        timeout: Duration,
        retries: u32,
    ) -> Option<Response> {
        for _ in 0..=retries {
            if let Some(r) = self.call(dst, body.clone(), timeout).await {
                return Some(r);
            }
        }
        None
    }

    pub async fn reply(&self, dst: SocketAddr, id: u64, body: Response) {
        self.send(dst, &Msg::Resp { id, body }).await;
    }
}

/// Fixed addresses of the cluster's nodes.
#[derive(Clone, Debug)]
pub struct Addrs {
    pub coordinator: SocketAddr,
    pub broker: SocketAddr,
    pub store: SocketAddr,
    pub workers: Vec<SocketAddr>,
}

impl Addrs {
    pub fn standard(workers: u32) -> Addrs {
        let a = |s: String| -> SocketAddr { s.parse().expect("valid address") };
        Addrs {
            coordinator: a("10.0.0.1:7000".into()),
            broker: a("10.0.0.2:7000".into()),
            store: a("10.0.0.3:7000".into()),
            workers: (0..workers).map(|i| a(format!("10.0.1.{}:7000", i + 1))).collect(),
        }
    }

    pub fn worker_index(&self, addr: SocketAddr) -> Option<u32> {
        self.workers.iter().position(|w| *w == addr).map(|i| i as u32)
    }
}
