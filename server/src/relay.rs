//! The relay: accepts member connections, sequences their ops through one
//! group-committing writer per hub, and fans every durable batch out to the
//! hub's connections. A connection that falls behind is dropped with a reason
//! and resumes from its cursor; nothing it missed is lost.

use crate::auth::{Registry, TokenRecord};
use crate::metrics::Metrics;
use crate::proto::{
    self, AckEntry, ErrorCode, Frame, MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, MAX_OP_BYTES,
    MAX_OPS_PER_FRAME, SeqOp,
};
use crate::store::{EncodedOp, OpLog, RedbLog};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Path as UrlPath, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// Tunables, with the protocol's defaults.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub data: PathBuf,
    /// Time a new connection has to send a valid `Hello`.
    pub hello_timeout: Duration,
    /// Live batches a connection may fall behind before it is dropped.
    pub outbound_batches: usize,
    /// Ops per second one connection may submit (bursts of twice that).
    pub max_ops_per_sec: u32,
    /// Largest blob accepted, in bytes.
    pub max_blob_bytes: u64,
    /// Serve over TLS with this configuration.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl RelayConfig {
    pub fn new(data: PathBuf) -> Self {
        RelayConfig {
            data,
            hello_timeout: Duration::from_secs(10),
            outbound_batches: 4096,
            max_ops_per_sec: 20_000,
            max_blob_bytes: 256 * 1024 * 1024,
            tls: None,
        }
    }
}

/// Shared relay state.
pub struct Relay {
    pub config: RelayConfig,
    pub registry: Registry,
    pub metrics: Arc<Metrics>,
    hubs: Mutex<HashMap<String, Arc<HubHandle>>>,
    shutdown: watch::Receiver<bool>,
    next_conn: AtomicU64,
    /// Every WebSocket connection's task, so shutdown can wait for them.
    pub connections: tokio_util::task::TaskTracker,
}

/// Something every connection of a hub should see.
enum LiveEvent {
    Batch(LiveBatch),
    Presence { from_conn: u64, frame: Bytes },
}

/// One durable commit, pre-encoded as `Ops` frames once for all subscribers.
struct LiveBatch {
    last: u64,
    ops: usize,
    frames: Vec<Bytes>,
    committed: Instant,
}

struct SubmitRequest {
    ops: Vec<EncodedOp>,
    reply: oneshot::Sender<Result<Vec<AckEntry>, String>>,
}

/// An open hub: its log, its writer and its fan-out channel.
pub struct HubHandle {
    pub id: String,
    pub name: String,
    log: Arc<dyn OpLog>,
    submit: mpsc::Sender<SubmitRequest>,
    live: broadcast::Sender<Arc<LiveEvent>>,
}

impl Relay {
    pub fn new(config: RelayConfig, shutdown: watch::Receiver<bool>) -> anyhow::Result<Relay> {
        let registry = Registry::open(&config.data)?;
        Ok(Relay {
            config,
            registry,
            metrics: Arc::new(Metrics::default()),
            hubs: Mutex::new(HashMap::new()),
            shutdown,
            next_conn: AtomicU64::new(1),
            connections: tokio_util::task::TaskTracker::new(),
        })
    }

    pub fn hub_dir(&self, hub: &str) -> PathBuf {
        self.config.data.join("hubs").join(hub)
    }

    /// The open hub, opening its log and starting its writer on first use.
    pub fn hub(&self, id: &str) -> anyhow::Result<Option<Arc<HubHandle>>> {
        let mut hubs = self
            .hubs
            .lock()
            .map_err(|_| anyhow::anyhow!("hub table lock poisoned"))?;
        if let Some(h) = hubs.get(id) {
            return Ok(Some(h.clone()));
        }
        let Some(record) = self.registry.hub(id)? else {
            return Ok(None);
        };
        let log: Arc<dyn OpLog> = Arc::new(RedbLog::open(&self.hub_dir(id).join("log.redb"))?);
        let (submit, rx) = mpsc::channel(1024);
        let (live, _) = broadcast::channel(self.config.outbound_batches.max(16));
        let writer_log = log.clone();
        let writer_live = live.clone();
        let metrics = self.metrics.clone();
        std::thread::Builder::new()
            .name(format!("writer-{id}"))
            .spawn(move || run_writer(writer_log, rx, writer_live, metrics))?;
        let handle = Arc::new(HubHandle {
            id: record.id.clone(),
            name: record.name,
            log,
            submit,
            live,
        });
        hubs.insert(record.id, handle.clone());
        self.metrics.hubs_open.fetch_add(1, Relaxed);
        Ok(Some(handle))
    }
}

/// The hub's single writer: takes every submission waiting, stores them in
/// one durable commit, then acks and fans out. Runs on its own thread since
/// commits block on the disk.
fn run_writer(
    log: Arc<dyn OpLog>,
    mut rx: mpsc::Receiver<SubmitRequest>,
    live: broadcast::Sender<Arc<LiveEvent>>,
    metrics: Arc<Metrics>,
) {
    const GROUP_LIMIT: usize = 8192;
    while let Some(first) = rx.blocking_recv() {
        let mut requests = vec![first];
        let mut count = requests[0].ops.len();
        while count < GROUP_LIMIT {
            match rx.try_recv() {
                Ok(r) => {
                    count += r.ops.len();
                    requests.push(r);
                }
                Err(_) => break,
            }
        }
        let all: Vec<EncodedOp> = requests
            .iter()
            .flat_map(|r| r.ops.iter().cloned())
            .collect();
        let appended = match log.append(&all) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!("commit failed: {e}");
                for r in requests {
                    let _ = r.reply.send(Err(e.to_string()));
                }
                continue;
            }
        };
        let committed = Instant::now();
        metrics.commits.fetch_add(1, Relaxed);
        let stored = appended.iter().filter(|a| a.new).count() as u64;
        metrics.ops_stored.fetch_add(stored, Relaxed);
        let mut fresh = Vec::new();
        let mut results = appended.iter();
        for request in requests {
            let mut acks = Vec::with_capacity(request.ops.len());
            for op in request.ops {
                let Some(a) = results.next() else { break };
                acks.push(AckEntry {
                    id: op.id,
                    seq: a.seq,
                });
                if a.new {
                    fresh.push(SeqOp {
                        seq: a.seq,
                        op: op.bytes,
                    });
                } else {
                    metrics.ops_duplicate.fetch_add(1, Relaxed);
                }
            }
            let _ = request.reply.send(Ok(acks));
        }
        if fresh.is_empty() {
            continue;
        }
        let last = fresh.last().map(|o| o.seq).unwrap_or(0);
        let ops = fresh.len();
        let frames = ops_frames(fresh);
        // No subscribers is fine: the ops are in the log.
        let _ = live.send(Arc::new(LiveEvent::Batch(LiveBatch {
            last,
            ops,
            frames,
            committed,
        })));
    }
}

/// Splits sequenced ops into `Ops` frames within the protocol's limits.
fn ops_frames(ops: Vec<SeqOp>) -> Vec<Bytes> {
    proto::frame_groups(ops, |o| o.op.len())
        .into_iter()
        .map(encode_ops_frame)
        .collect()
}

fn encode_ops_frame(ops: Vec<SeqOp>) -> Bytes {
    let from = ops.first().map(|o| o.seq).unwrap_or(0);
    encode(&Frame::Ops { from, ops })
}

fn encode(frame: &Frame) -> Bytes {
    // Frames hold plain data; encoding cannot fail.
    Bytes::from(proto::encode_frame(frame).unwrap_or_default())
}

/// `GET /v1/hubs/{hub}/ws`
/// Bytes read from a client socket at a time.
const READ_BUFFER_BYTES: usize = 4096;

pub async fn ws_handler(
    ws: WebSocketUpgrade,
    UrlPath(hub): UrlPath<String>,
    State(relay): State<Arc<Relay>>,
) -> Response {
    // A small read buffer: the connection's read half is polled on every
    // fan-out wake, and the WebSocket reader zero-fills its whole buffer on
    // each poll (a 128 KiB default was 41% of the relay's CPU at 500
    // subscribers). Frames larger than it are still read, in steps.
    ws.max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| {
            let tracker = relay.connections.clone();
            tracker.track_future(async move {
                relay.metrics.connections.fetch_add(1, Relaxed);
                Connection::run(socket, relay.clone(), hub).await;
                relay.metrics.connections.fetch_sub(1, Relaxed);
            })
        })
        .into_response()
}

/// Why a connection ends, sent as a final `Error` frame and a close.
struct Ending {
    code: ErrorCode,
    message: String,
    close: u16,
}

impl Ending {
    fn new(code: ErrorCode, message: impl Into<String>, close: u16) -> Self {
        Ending {
            code,
            message: message.into(),
            close,
        }
    }
}

struct Connection {
    id: u64,
    relay: Arc<Relay>,
    socket: WebSocket,
    bad_frames: u32,
    bucket: TokenBucket,
    /// The member and hub, once the handshake succeeded.
    joined: Option<(String, Arc<HubHandle>)>,
    /// Whether this connection announced presence (then its end is announced too).
    announced: bool,
}

type AckFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<AckEntry>, String>> + Send>>;

impl Connection {
    async fn run(socket: WebSocket, relay: Arc<Relay>, url_hub: String) {
        let id = relay.next_conn.fetch_add(1, Relaxed);
        let rate = relay.config.max_ops_per_sec;
        let mut conn = Connection {
            id,
            relay,
            socket,
            bad_frames: 0,
            bucket: TokenBucket::new(rate),
            joined: None,
            announced: false,
        };
        let ending = conn.serve(&url_hub).await.err();
        if let Some((member, hub)) = conn.joined.take().filter(|_| conn.announced) {
            // Tell the others this member left (presence is never stored).
            let frame = encode(&Frame::Presence(proto::Presence {
                member,
                status: "offline".into(),
                tz: None,
                viewing: None,
            }));
            let _ = hub.live.send(Arc::new(LiveEvent::Presence {
                from_conn: conn.id,
                frame,
            }));
        }
        if let Some(e) = ending {
            conn.relay.metrics.frames_rejected.fetch_add(1, Relaxed);
            let _ = conn
                .send_frame(&Frame::Error {
                    code: e.code,
                    message: e.message.clone(),
                })
                .await;
            let _ = conn
                .socket
                .send(Message::Close(Some(CloseFrame {
                    code: e.close,
                    reason: truncate(&e.message, 120).into(),
                })))
                .await;
        }
    }

    async fn serve(&mut self, url_hub: &str) -> Result<(), Ending> {
        let (token, hub, live, mut sent) = self.handshake(url_hub).await?;
        self.joined = Some((token.handle.clone(), hub.clone()));
        let mut live = live;
        let mut shutdown = self.relay.shutdown.clone();
        let mut acks: FuturesOrdered<AckFuture> = FuturesOrdered::new();
        loop {
            tokio::select! {
                incoming = self.socket.recv() => {
                    let Some(message) = incoming else { return Ok(()) };
                    let message = message.map_err(|e| {
                        Ending::new(ErrorCode::TooLarge, format!("unreadable message: {e}"), close_code::SIZE)
                    })?;
                    match message {
                        Message::Binary(bytes) => {
                            if let Some(ack) = self.handle(&bytes, &token, &hub, &mut sent).await? {
                                acks.push_back(ack);
                            }
                        }
                        Message::Close(_) => return Ok(()),
                        Message::Text(_) => {
                            self.reject(ErrorCode::BadFrame, "text messages are not part of the protocol; send binary frames").await?;
                        }
                        Message::Ping(_) | Message::Pong(_) => {}
                    }
                }
                event = live.recv() => {
                    // Take whatever else is already queued too, and write it
                    // all with one flush: under load, fewer syscalls per op.
                    let mut events = vec![event];
                    while events.len() < 64 {
                        match live.try_recv() {
                            Ok(e) => events.push(Ok(e)),
                            Err(broadcast::error::TryRecvError::Empty) => break,
                            Err(broadcast::error::TryRecvError::Lagged(n)) => {
                                events.push(Err(broadcast::error::RecvError::Lagged(n)));
                                break;
                            }
                            Err(broadcast::error::TryRecvError::Closed) => {
                                events.push(Err(broadcast::error::RecvError::Closed));
                                break;
                            }
                        }
                    }
                    let mut written = false;
                    for event in events {
                        match event {
                            Ok(event) => match &*event {
                                LiveEvent::Batch(batch) if batch.last > sent => {
                                    for frame in &batch.frames {
                                        self.feed_bytes(frame.clone()).await?;
                                    }
                                    written = true;
                                    sent = batch.last;
                                    let m = &self.relay.metrics;
                                    m.deliveries.fetch_add(batch.ops as u64, Relaxed);
                                    m.observe_fanout_us(batch.committed.elapsed().as_micros() as u64);
                                }
                                LiveEvent::Batch(_) => {}
                                LiveEvent::Presence { from_conn, frame } => {
                                    if *from_conn != self.id {
                                        self.feed_bytes(frame.clone()).await?;
                                        written = true;
                                    }
                                }
                            },
                            Err(broadcast::error::RecvError::Lagged(_)) => {
                                self.relay.metrics.slow_consumers.fetch_add(1, Relaxed);
                                return Err(Ending::new(
                                    ErrorCode::SlowConsumer,
                                    format!("this connection fell too far behind; reconnect and resume from cursor {sent}"),
                                    close_code::AGAIN,
                                ));
                            }
                            Err(broadcast::error::RecvError::Closed) => return Ok(()),
                        }
                    }
                    if written {
                        self.flush().await?;
                    }
                }
                Some(result) = acks.next(), if !acks.is_empty() => match result {
                    Ok(acks) => self.send_frame(&Frame::Ack { acks }).await?,
                    Err(e) => {
                        return Err(Ending::new(ErrorCode::Internal, format!("the relay could not store ops: {e}"), close_code::ERROR));
                    }
                },
                _ = shutdown.changed() => {
                    return Err(Ending::new(ErrorCode::GoingAway, "the relay is shutting down; reconnect later", close_code::AWAY));
                }
            }
        }
    }

    /// Waits for a valid `Hello`, authenticates it, sends `Welcome` and the
    /// log from the client's cursor. Returns the live subscription and the
    /// last seq sent: live batches up to it are skipped.
    async fn handshake(
        &mut self,
        url_hub: &str,
    ) -> Result<(TokenRecord, Arc<HubHandle>, Subscription, u64), Ending> {
        let timeout = self.relay.config.hello_timeout;
        let first = tokio::time::timeout(timeout, self.socket.recv())
            .await
            .map_err(|_| {
                Ending::new(
                    ErrorCode::Timeout,
                    format!("no Hello within {:.1} s", timeout.as_secs_f64()),
                    close_code::POLICY,
                )
            })?;
        let bytes = match first {
            Some(Ok(Message::Binary(b))) => b,
            Some(Ok(_)) => {
                return Err(Ending::new(
                    ErrorCode::BadFrame,
                    "expected a binary Hello frame",
                    close_code::PROTOCOL,
                ));
            }
            Some(Err(e)) => {
                return Err(Ending::new(
                    ErrorCode::TooLarge,
                    format!("unreadable message: {e}"),
                    close_code::SIZE,
                ));
            }
            None => {
                return Err(Ending::new(
                    ErrorCode::Protocol,
                    "closed before Hello",
                    close_code::NORMAL,
                ));
            }
        };
        let (token, hub, epoch, cursor) = match proto::decode_frame(&bytes) {
            Ok(Frame::Hello {
                token,
                hub,
                epoch,
                cursor,
            }) => (token, hub, epoch, cursor),
            Ok(_) => {
                return Err(Ending::new(
                    ErrorCode::Protocol,
                    "the first frame must be Hello",
                    close_code::PROTOCOL,
                ));
            }
            Err(e) => {
                return Err(Ending::new(
                    code_for(&e),
                    e.to_string(),
                    close_code::PROTOCOL,
                ));
            }
        };
        if hub != url_hub {
            return Err(Ending::new(
                ErrorCode::Forbidden,
                format!("Hello names hub {hub} but this socket is for hub {url_hub}"),
                close_code::POLICY,
            ));
        }
        let record = match self.relay.registry.authenticate(&token) {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                return Err(Ending::new(
                    ErrorCode::Unauthorized,
                    e.to_string(),
                    close_code::POLICY,
                ));
            }
            Err(e) => {
                return Err(Ending::new(
                    ErrorCode::Internal,
                    e.to_string(),
                    close_code::ERROR,
                ));
            }
        };
        if record.hub != hub {
            return Err(Ending::new(
                ErrorCode::Forbidden,
                format!("this token belongs to another hub, not {hub}"),
                close_code::POLICY,
            ));
        }
        let handle = match self.relay.hub(&hub) {
            Ok(Some(h)) => h,
            Ok(None) => {
                return Err(Ending::new(
                    ErrorCode::UnknownHub,
                    format!("no hub {hub} on this relay"),
                    close_code::POLICY,
                ));
            }
            Err(e) => {
                return Err(Ending::new(
                    ErrorCode::Internal,
                    e.to_string(),
                    close_code::ERROR,
                ));
            }
        };
        // Subscribe before reading the head: a batch committed in between is
        // then both in the log snapshot and in the subscription, and skipped
        // there; commits are atomic, so no batch straddles the head.
        let live = handle.live.subscribe();
        let head = handle.log.head();
        let hub_epoch = handle.log.epoch();
        // A cursor from another epoch means nothing here: start from the beginning.
        let cursor = if epoch == hub_epoch {
            cursor.min(head)
        } else {
            0
        };
        self.send_frame(&Frame::Welcome {
            member: record.handle.clone(),
            role: record.role.clone(),
            hub_name: handle.name.clone(),
            epoch: hub_epoch,
            head,
        })
        .await?;
        self.send_log(&handle, cursor + 1, head).await?;
        Ok((record, handle, live, head))
    }

    /// Sends stored ops `from..=upto` in protocol-sized `Ops` frames.
    async fn send_log(&mut self, hub: &Arc<HubHandle>, from: u64, upto: u64) -> Result<(), Ending> {
        let mut next = from;
        while next <= upto {
            if *self.relay.shutdown.borrow() {
                return Err(Ending::new(
                    ErrorCode::GoingAway,
                    "the relay is shutting down; reconnect later",
                    close_code::AWAY,
                ));
            }
            let log = hub.log.clone();
            let chunk = tokio::task::spawn_blocking(move || {
                log.read(next, upto, MAX_OPS_PER_FRAME, proto::FRAME_OPS_BUDGET)
            })
            .await
            .map_err(|e| Ending::new(ErrorCode::Internal, e.to_string(), close_code::ERROR))?
            .map_err(|e| Ending::new(ErrorCode::Internal, e.to_string(), close_code::ERROR))?;
            let Some(last) = chunk.last().map(|o| o.seq) else {
                break;
            };
            let count = chunk.len() as u64;
            self.send_bytes(encode_ops_frame(chunk)).await?;
            self.relay.metrics.deliveries.fetch_add(count, Relaxed);
            next = last + 1;
        }
        Ok(())
    }

    /// Handles one binary frame after the handshake. A submission returns the
    /// future of its acks, so the connection keeps reading while it commits.
    async fn handle(
        &mut self,
        bytes: &[u8],
        token: &TokenRecord,
        hub: &Arc<HubHandle>,
        sent: &mut u64,
    ) -> Result<Option<AckFuture>, Ending> {
        let frame = match proto::decode_frame(bytes) {
            Ok(f) => f,
            Err(e) => {
                self.reject(code_for(&e), format!("unreadable frame: {e}"))
                    .await?;
                return Ok(None);
            }
        };
        match frame {
            Frame::Submit { ops } => {
                if !token.can_submit() {
                    self.reject(
                        ErrorCode::Forbidden,
                        format!("@{} is read-only and cannot submit ops", token.handle),
                    )
                    .await?;
                    return Ok(None);
                }
                if ops.len() > MAX_OPS_PER_FRAME {
                    self.reject(
                        ErrorCode::TooLarge,
                        format!(
                            "{} ops in one Submit; the limit is {MAX_OPS_PER_FRAME}",
                            ops.len()
                        ),
                    )
                    .await?;
                    return Ok(None);
                }
                let mut encoded = Vec::with_capacity(ops.len());
                for op in &ops {
                    if op.actor != token.handle {
                        self.reject(
                            ErrorCode::BadOp,
                            format!(
                                "op {} claims actor @{} but this connection is @{}",
                                op.id, op.actor, token.handle
                            ),
                        )
                        .await?;
                        return Ok(None);
                    }
                    let bytes = match proto::encode_op(op) {
                        Ok(b) if b.len() <= MAX_OP_BYTES => b,
                        _ => {
                            self.reject(
                                ErrorCode::TooLarge,
                                format!("op {} is over {MAX_OP_BYTES} bytes", op.id),
                            )
                            .await?;
                            return Ok(None);
                        }
                    };
                    encoded.push(EncodedOp { id: op.id, bytes });
                }
                if encoded.is_empty() {
                    return Ok(None);
                }
                // Wait for the rate limit, but not past a shutdown.
                let mut stop = self.relay.shutdown.clone();
                tokio::select! {
                    _ = self.bucket.take(encoded.len() as u32) => {}
                    _ = stop.wait_for(|s| *s) => {
                        return Err(Ending::new(
                            ErrorCode::GoingAway,
                            "the relay is shutting down; reconnect later",
                            close_code::AWAY,
                        ));
                    }
                }
                let (reply, rx) = oneshot::channel();
                hub.submit
                    .send(SubmitRequest {
                        ops: encoded,
                        reply,
                    })
                    .await
                    .map_err(|_| {
                        Ending::new(
                            ErrorCode::Internal,
                            "the hub writer stopped",
                            close_code::ERROR,
                        )
                    })?;
                Ok(Some(Box::pin(async move {
                    rx.await
                        .unwrap_or_else(|_| Err("the hub writer stopped".to_owned()))
                })))
            }
            Frame::Fetch { from } => {
                let head = hub.log.head();
                self.send_log(hub, from.max(1), head).await?;
                *sent = (*sent).max(head);
                Ok(None)
            }
            Frame::Presence(mut presence) => {
                presence.member = token.handle.clone();
                self.announced = presence.status != "offline";
                let frame = encode(&Frame::Presence(presence));
                let _ = hub.live.send(Arc::new(LiveEvent::Presence {
                    from_conn: self.id,
                    frame,
                }));
                Ok(None)
            }
            Frame::Ping { nonce } => {
                self.send_frame(&Frame::Pong { nonce }).await?;
                Ok(None)
            }
            Frame::Pong { .. } => Ok(None),
            other => {
                let name = frame_name(&other);
                self.reject(
                    ErrorCode::Protocol,
                    format!("{name} is not a frame a client may send now"),
                )
                .await?;
                Ok(None)
            }
        }
    }

    /// Answers a bad frame with an `Error`; too many in a row end the connection.
    async fn reject(&mut self, code: ErrorCode, message: impl Into<String>) -> Result<(), Ending> {
        const MAX_BAD_FRAMES: u32 = 32;
        self.bad_frames += 1;
        self.relay.metrics.frames_rejected.fetch_add(1, Relaxed);
        if self.bad_frames > MAX_BAD_FRAMES {
            return Err(Ending::new(
                code,
                "too many bad frames; closing",
                close_code::POLICY,
            ));
        }
        self.send_frame(&Frame::Error {
            code,
            message: message.into(),
        })
        .await
    }

    async fn send_frame(&mut self, frame: &Frame) -> Result<(), Ending> {
        self.send_bytes(encode(frame)).await
    }

    /// Queues a frame without flushing; [`Self::flush`] writes it out.
    async fn feed_bytes(&mut self, bytes: Bytes) -> Result<(), Ending> {
        futures_util::SinkExt::feed(&mut self.socket, Message::Binary(bytes))
            .await
            .map_err(|e| {
                Ending::new(
                    ErrorCode::Internal,
                    format!("send failed: {e}"),
                    close_code::ERROR,
                )
            })
    }

    async fn flush(&mut self) -> Result<(), Ending> {
        futures_util::SinkExt::flush(&mut self.socket)
            .await
            .map_err(|e| {
                Ending::new(
                    ErrorCode::Internal,
                    format!("send failed: {e}"),
                    close_code::ERROR,
                )
            })
    }

    async fn send_bytes(&mut self, bytes: Bytes) -> Result<(), Ending> {
        self.socket.send(Message::Binary(bytes)).await.map_err(|e| {
            Ending::new(
                ErrorCode::Internal,
                format!("send failed: {e}"),
                close_code::ERROR,
            )
        })
    }
}

type Subscription = broadcast::Receiver<Arc<LiveEvent>>;

fn frame_name(frame: &Frame) -> &'static str {
    match frame {
        Frame::Hello { .. } => "Hello",
        Frame::Welcome { .. } => "Welcome",
        Frame::Ops { .. } => "Ops",
        Frame::Submit { .. } => "Submit",
        Frame::Ack { .. } => "Ack",
        Frame::Fetch { .. } => "Fetch",
        Frame::Presence(_) => "Presence",
        Frame::Ping { .. } => "Ping",
        Frame::Pong { .. } => "Pong",
        Frame::Error { .. } => "Error",
    }
}

fn code_for(e: &proto::ProtoError) -> ErrorCode {
    match e {
        proto::ProtoError::Version { .. } => ErrorCode::Version,
        proto::ProtoError::TooLarge { .. } => ErrorCode::TooLarge,
        _ => ErrorCode::BadFrame,
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}

/// Per-connection submit rate limit: waits (without reading further frames)
/// until the ops fit, so a fast client is slowed, not failed.
struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(per_sec: u32) -> Self {
        let rate = f64::from(per_sec.max(1));
        TokenBucket {
            rate,
            capacity: rate * 2.0,
            tokens: rate * 2.0,
            last: Instant::now(),
        }
    }

    async fn take(&mut self, n: u32) {
        let n = f64::from(n).min(self.capacity);
        loop {
            let now = Instant::now();
            self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate)
                .min(self.capacity);
            self.last = now;
            if self.tokens >= n {
                self.tokens -= n;
                return;
            }
            let wait = (n - self.tokens) / self.rate;
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
    }
}

/// `GET /healthz`
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /metrics`
pub async fn metrics(State(relay): State<Arc<Relay>>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        relay.metrics.render(),
    )
}
