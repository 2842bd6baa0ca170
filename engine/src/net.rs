//! A node's network endpoint: datagrams of serialized [`Msg`]s, plus
//! request/response calls with a timeout. Datagrams may be lost, delayed,
//! reordered or duplicated by the network; every caller copes (retries,
//! idempotent handlers, sequence numbers).

use crate::backoff::BackoffPolicy;
use crate::codec;
use crate::proto::{Msg, Request, Response};
#[cfg(madsim)]
use madsim::net::Endpoint;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
#[cfg(not(madsim))]
use tcp::Endpoint;
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

/// What a [`SendHook`] decides for one outgoing message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sending {
    /// Sent at once.
    Now,
    /// Held back: it leaves this node that much later (late delivery,
    /// latency).
    Later(Duration),
    /// Never sent: a cut link, an isolated node, a lost message.
    Drop,
}

/// Decides, for each outgoing message, whether it leaves now, later or
/// never. The simulator installs one for late delivery (its network does
/// the rest); a real-mode node process one that plays the network windows
/// the supervisor opened (`node/src/control.rs`).
pub type SendHook = Arc<dyn Fn(SocketAddr, &Msg) -> Sending + Send + Sync>;

pub struct Net {
    ep: Endpoint,
    addr: SocketAddr,
    pending: Mutex<BTreeMap<u64, oneshot::Sender<Response>>>,
    next_id: AtomicU64,
    /// Set once after binding; read on every send without a lock.
    hook: std::sync::OnceLock<SendHook>,
    me: std::sync::Weak<Net>,
}

impl Net {
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Arc<Net>> {
        Net::from_endpoint(addr, Endpoint::bind(addr).await?)
    }

    /// Real mode: bind with every received message held back for a random
    /// `latency_ms.0..=latency_ms.1` ms before delivery, the latency a
    /// simulated run's network has (loopback alone is ~100x faster, and a
    /// job would finish before the fault schedule starts).
    #[cfg(not(madsim))]
    pub async fn bind_with_latency(addr: SocketAddr, latency_ms: (u64, u64)) -> std::io::Result<Arc<Net>> {
        Net::from_endpoint(addr, Endpoint::bind_with_latency(addr, latency_ms).await?)
    }

    fn from_endpoint(addr: SocketAddr, ep: Endpoint) -> std::io::Result<Arc<Net>> {
        // Request ids are unique per incarnation, so a reply to a request of
        // a previous incarnation never matches a new request.
        let incarnation: u32 = madsim::rand::random();
        let net = Arc::new_cyclic(|me| Net {
            ep,
            addr,
            pending: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new((incarnation as u64) << 32),
            hook: std::sync::OnceLock::new(),
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

    /// Install the hook that may hold messages back or drop them (see
    /// [`SendHook`]); the first one installed stays.
    pub fn set_send_hook(&self, hook: SendHook) {
        let _ = self.hook.set(hook);
    }

    /// Fire and forget: a lost datagram is the caller's business.
    pub async fn send(&self, dst: SocketAddr, msg: &Msg) {
        let bytes = codec::encode(msg);
        match self.hook.get().map_or(Sending::Now, |h| h(dst, msg)) {
            Sending::Now => self.send_bytes(dst, tag_of(msg), bytes).await,
            Sending::Later(delay) => {
                // Held back: it leaves this node `delay` later (unless the
                // node dies first), whatever happened meanwhile.
                if let Some(me) = self.me.upgrade() {
                    let tag = tag_of(msg);
                    madsim::task::spawn(async move {
                        madsim::time::sleep(delay).await;
                        me.send_bytes(dst, tag, bytes).await;
                    });
                }
            }
            Sending::Drop => {}
        }
    }

    /// In simulation the encoded bytes travel as they are (`send_to` would
    /// copy them once more); the receiver gets exactly these bytes.
    #[cfg(madsim)]
    async fn send_bytes(&self, dst: SocketAddr, tag: u64, bytes: Vec<u8>) {
        let _ = self.ep.send_to_raw(dst, tag, Box::new(bytes)).await;
    }

    #[cfg(not(madsim))]
    async fn send_bytes(&self, dst: SocketAddr, tag: u64, bytes: Vec<u8>) {
        self.ep.send_to(dst, tag, bytes);
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
        self.ep.recv_from(tag).await
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
    /// idempotent on the server. Each re-send waits, beyond the timeout
    /// the try before it waited out, a backoff that grows with the tries
    /// that went unanswered ([`BackoffPolicy::rpc`]), jittered by a draw
    /// from the run's seed, so that callers that lost their replies
    /// together do not all re-send at the same instant.
    pub async fn call_retry(
        &self,
        dst: SocketAddr,
        body: Request,
        timeout: Duration,
        retries: u32,
    ) -> Option<Response> {
        let backoff = BackoffPolicy::rpc();
        for unanswered in 0..=retries {
            if unanswered > 0 {
                madsim::time::sleep(backoff.delay(unanswered, madsim::rand::random::<u64>())).await;
            }
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
    /// Each engine node's name by its address (`worker-<i>` for the
    /// workers): what the network's fault rules name nodes by.
    pub fn names(&self) -> BTreeMap<SocketAddr, String> {
        let mut names = BTreeMap::new();
        names.insert(self.coordinator, "coordinator".to_string());
        names.insert(self.broker, "broker".to_string());
        names.insert(self.store, "store".to_string());
        for (i, w) in self.workers.iter().enumerate() {
            names.insert(*w, format!("worker-{i}"));
        }
        names
    }

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

/// The real network (std build, real mode): madsim's std endpoint panics
/// when a peer is down and never reconnects, so outside simulation the
/// engine uses this one. Each destination gets one outgoing TCP connection,
/// made lazily and dropped on any error: a message that cannot be delivered
/// (the peer is killed, paused past the queue, restarting) is lost, which is
/// exactly the datagram contract the engine already copes with. Frames are
/// `[u32 len][u64 tag][payload]`; a connection starts with the sender's
/// listening address.
#[cfg(not(madsim))]
mod tcp {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::mpsc;

    /// Messages queued per destination before new ones are dropped.
    const QUEUE: usize = 4096;
    /// Largest frame accepted.
    const MAX_FRAME: usize = 256 << 20;
    const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);

    type Inbox = (
        mpsc::UnboundedSender<(Vec<u8>, SocketAddr)>,
        tokio::sync::Mutex<mpsc::UnboundedReceiver<(Vec<u8>, SocketAddr)>>,
    );

    /// (tag, payload) on its way out.
    type Frame = (u64, Vec<u8>);

    pub struct Endpoint {
        addr: SocketAddr,
        outgoing: Mutex<BTreeMap<SocketAddr, mpsc::Sender<Frame>>>,
        inboxes: Arc<BTreeMap<u64, Inbox>>,
    }

    impl Endpoint {
        pub async fn bind(addr: SocketAddr) -> std::io::Result<Endpoint> {
            Endpoint::bind_with_latency(addr, (0, 0)).await
        }

        pub async fn bind_with_latency(addr: SocketAddr, latency_ms: (u64, u64)) -> std::io::Result<Endpoint> {
            let listener = TcpListener::bind(addr).await?;
            let mut boxes = BTreeMap::new();
            for tag in [super::TAG_CTRL, super::TAG_RESP, super::TAG_DATA] {
                let (tx, rx) = mpsc::unbounded_channel();
                boxes.insert(tag, (tx, tokio::sync::Mutex::new(rx)));
            }
            let inboxes = Arc::new(boxes);
            let boxes = inboxes.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(read_frames(stream, boxes.clone(), latency_ms));
                }
            });
            Ok(Endpoint { addr, outgoing: Mutex::new(BTreeMap::new()), inboxes })
        }

        /// Queue a message; never blocks, never fails (a full queue or a
        /// dead peer loses it).
        pub fn send_to(&self, dst: SocketAddr, tag: u64, bytes: Vec<u8>) {
            let mut out = self.outgoing.lock().unwrap();
            let tx = out.entry(dst).or_insert_with(|| {
                let (tx, rx) = mpsc::channel(QUEUE);
                tokio::spawn(write_frames(self.addr, dst, rx));
                tx
            });
            let _ = tx.try_send((tag, bytes));
        }

        pub async fn recv_from(&self, tag: u64) -> (Vec<u8>, SocketAddr) {
            let (_, rx) = self.inboxes.get(&tag).expect("known tag");
            let mut rx = rx.lock().await;
            rx.recv().await.expect("the endpoint holds a sender")
        }
    }

    async fn read_frames(mut stream: TcpStream, boxes: Arc<BTreeMap<u64, Inbox>>, latency_ms: (u64, u64)) {
        let Ok(n) = stream.read_u32().await else { return };
        let mut from = vec![0u8; (n as usize).min(256)];
        if stream.read_exact(&mut from).await.is_err() {
            return;
        }
        let Some(from) = std::str::from_utf8(&from).ok().and_then(|s| s.parse::<SocketAddr>().ok()) else { return };
        loop {
            let Ok(len) = stream.read_u32().await else { return };
            let len = len as usize;
            if !(8..=MAX_FRAME).contains(&len) {
                return;
            }
            let Ok(tag) = stream.read_u64().await else { return };
            let mut buf = vec![0u8; len - 8];
            if stream.read_exact(&mut buf).await.is_err() {
                return;
            }
            let Some((tx, _)) = boxes.get(&tag) else { continue };
            let (lo, hi) = latency_ms;
            if hi == 0 {
                let _ = tx.send((buf, from));
            } else {
                let ms = lo + madsim::rand::random::<u64>() % (hi - lo + 1);
                let tx = tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    let _ = tx.send((buf, from));
                });
            }
        }
    }

    async fn write_frames(me: SocketAddr, dst: SocketAddr, mut rx: mpsc::Receiver<Frame>) {
        let mut conn: Option<TcpStream> = None;
        while let Some((tag, bytes)) = rx.recv().await {
            if conn.is_none() {
                conn = connect(me, dst).await;
            }
            let Some(stream) = conn.as_mut() else { continue };
            let mut frame = Vec::with_capacity(12 + bytes.len());
            frame.extend_from_slice(&((8 + bytes.len()) as u32).to_be_bytes());
            frame.extend_from_slice(&tag.to_be_bytes());
            frame.extend_from_slice(&bytes);
            if stream.write_all(&frame).await.is_err() {
                conn = None;
            }
        }
    }

    async fn connect(me: SocketAddr, dst: SocketAddr) -> Option<TcpStream> {
        let mut s = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(dst)).await.ok()?.ok()?;
        let _ = s.set_nodelay(true);
        let name = me.to_string();
        s.write_u32(name.len() as u32).await.ok()?;
        s.write_all(name.as_bytes()).await.ok()?;
        Some(s)
    }
}
