//! The relay: accepts member connections, sequences their ops through one
//! group-committing writer per hub, and fans every durable batch out to the
//! hub's connections. A connection that falls behind is dropped with a reason
//! and resumes from its cursor; nothing it missed is lost.

mod connection;
mod fanout;
mod outbound;
pub mod presence;
mod writer;

use crate::auth::Registry;
use crate::metrics::Metrics;
use crate::nats::Nats;
use crate::proto::{self, Frame, SeqOp};
use crate::store::{JetStreamConfig, JetStreamLog, OpLog, RedbLog};
use crate::ws;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use fanout::{FanEvent, Members};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use writer::WriterRequest;

/// Tunables, with the protocol's defaults.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub data: PathBuf,
    /// Time a new connection has to send a valid `Hello`.
    pub hello_timeout: Duration,
    /// A member not heard from for this long is closed (its presence ends); the
    /// relay pings a quiet member after a third of it.
    pub idle_timeout: Duration,
    /// Frames that may wait for a connection whose socket is full before it
    /// is dropped as slow (it resumes from its cursor).
    pub outbound_batches: usize,
    /// Ops per second one connection may submit (bursts of twice that).
    pub max_ops_per_sec: u32,
    /// Largest blob accepted, in bytes.
    pub max_blob_bytes: u64,
    /// A blob upload must bring at least 16 KiB/s averaged over this long,
    /// or it is cut (so a stalled body cannot hold a socket and a file).
    pub blob_stall_window: Duration,
    /// Memory the relay plans for, in bytes: a quarter of it is the page
    /// cache of every hub's log together, split evenly over the relay's hubs.
    pub memory_budget: u64,
    /// Serve over TLS with this configuration.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Keep hubs' logs on this NATS JetStream cluster instead of local files.
    pub nats: Option<NatsSettings>,
}

/// Where a relay keeps hubs' logs when they live on NATS JetStream.
#[derive(Debug, Clone)]
pub struct NatsSettings {
    /// `nats://host:port` servers of one cluster, comma-separated.
    pub urls: String,
    /// Copies of every op the cluster keeps.
    pub replicas: usize,
}

impl RelayConfig {
    pub fn new(data: PathBuf) -> Self {
        RelayConfig {
            data,
            hello_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
            outbound_batches: 4096,
            max_ops_per_sec: 20_000,
            max_blob_bytes: 256 * 1024 * 1024,
            blob_stall_window: Duration::from_secs(10),
            memory_budget: 256 * 1024 * 1024,
            tls: None,
            nats: None,
        }
    }
}

/// Shared relay state.
pub struct Relay {
    pub config: RelayConfig,
    pub registry: Registry,
    pub metrics: Arc<Metrics>,
    /// The NATS connection, when hubs' logs live on JetStream.
    nats: Option<Nats>,
    /// The blob bucket on NATS, opened on first use (with `nats` only).
    pub(crate) nats_blobs: tokio::sync::OnceCell<Arc<crate::blobs::nats::NatsBlobs>>,
    hubs: Mutex<HashMap<String, Arc<HubHandle>>>,
    shutdown: watch::Receiver<bool>,
    next_conn: AtomicU64,
    /// This process's id among relays sharing hubs on NATS.
    relay_id: String,
    /// Every WebSocket connection's task, so shutdown can wait for them.
    pub connections: tokio_util::task::TaskTracker,
}

/// An open hub: its log, its writer and its fan-out channel.
pub struct HubHandle {
    pub id: String,
    pub name: String,
    log: Arc<dyn OpLog>,
    submit: mpsc::Sender<WriterRequest>,
    fanout: SyncSender<FanEvent>,
    members: Arc<Members>,
}

impl Relay {
    pub fn new(config: RelayConfig, shutdown: watch::Receiver<bool>) -> anyhow::Result<Relay> {
        Relay::with_nats(config, shutdown, None)
    }

    /// A relay whose hubs keep their logs on `nats` (local files when `None`).
    pub fn with_nats(
        config: RelayConfig,
        shutdown: watch::Receiver<bool>,
        nats: Option<Nats>,
    ) -> anyhow::Result<Relay> {
        // On NATS the hubs and tokens are shared too; else the data folder's.
        let registry = match (&nats, &config.nats) {
            (Some(n), settings) => {
                Registry::open_nats(n, settings.as_ref().map_or(3, |s| s.replicas))?
            }
            (None, _) => Registry::open(&config.data)?,
        };
        let metrics = Arc::new(Metrics::default());
        metrics
            .memory_budget_bytes
            .store(config.memory_budget, Relaxed);
        Ok(Relay {
            config,
            registry,
            metrics,
            nats,
            nats_blobs: tokio::sync::OnceCell::new(),
            hubs: Mutex::new(HashMap::new()),
            shutdown,
            next_conn: AtomicU64::new(1),
            relay_id: crate::auth::base32(&crate::auth::random::<10>()),
            connections: tokio_util::task::TaskTracker::new(),
        })
    }

    /// One hub log's page cache: a quarter of the memory budget, shared by
    /// every hub on this relay (at least 1 MiB each).
    fn store_cache_per_hub(&self) -> anyhow::Result<usize> {
        let hubs = self.registry.hubs()?.len().max(1) as u64;
        Ok((self.config.memory_budget / 4 / hubs).max(1024 * 1024) as usize)
    }

    /// The NATS connection, when hubs live on JetStream.
    pub fn nats(&self) -> Option<&Nats> {
        self.nats.as_ref()
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
        let (submit, rx) = mpsc::channel(1024);
        let members = Arc::new(Members::default());
        // With NATS, presence also crosses to the hub's other relays.
        let (outlet, bridged) = match &self.nats {
            Some(_) if crate::nats::is_plain_token(id) => {
                let (tx, rx) = presence::channel();
                (Some(tx), Some(rx))
            }
            _ => (None, None),
        };
        let fanout = fanout::start(id, members.clone(), self.metrics.clone(), outlet)?;
        if let (Some(nats), Some(rx)) = (&self.nats, bridged) {
            let shutdown = self.shutdown.clone();
            presence::start(
                nats,
                self.relay_id.clone(),
                id,
                rx,
                fanout.clone(),
                shutdown,
            );
        }
        let (log, policy, writer_fanout): (Arc<dyn OpLog>, _, _) = match &self.nats {
            Some(nats) => {
                let replicas = self.config.nats.as_ref().map_or(3, |n| n.replicas);
                let config = JetStreamConfig {
                    replicas,
                    ..JetStreamConfig::default()
                };
                // Opening reads the stream: keep it off the async workers.
                let (log, policy) = tokio::task::block_in_place(|| {
                    let log = Arc::new(JetStreamLog::open(nats, id, config)?);
                    let policy = log.load_policy()?;
                    anyhow::Ok((log, policy))
                })?;
                // Every relay serving the hub fans out what the stream holds,
                // in its order, whichever relay wrote it.
                let follower = log.clone();
                let follower_fanout = fanout.clone();
                let from = log.head() + 1;
                std::thread::Builder::new()
                    .name(format!("follow-{id}"))
                    .spawn(move || {
                        follower.follow(from, |ops| {
                            follower_fanout
                                .send(FanEvent::Committed {
                                    ops,
                                    at: std::time::Instant::now(),
                                })
                                .is_ok()
                        })
                    })?;
                (log as Arc<dyn OpLog>, policy, None)
            }
            None => {
                let cache = self.store_cache_per_hub()?;
                let log: Arc<dyn OpLog> = Arc::new(RedbLog::open_with_cache(
                    &self.hub_dir(id).join("log.redb"),
                    cache,
                )?);
                self.metrics
                    .store_cache_bytes
                    .fetch_add(cache as u64, Relaxed);
                let policy = log.load_policy()?;
                (log, policy, Some(fanout.clone()))
            }
        };
        let writer_log = log.clone();
        let metrics = self.metrics.clone();
        std::thread::Builder::new()
            .name(format!("writer-{id}"))
            .spawn(move || writer::run(writer_log, policy, rx, writer_fanout, metrics))?;
        let handle = Arc::new(HubHandle {
            id: record.id.clone(),
            name: record.name,
            log,
            submit,
            fanout,
            members,
        });
        hubs.insert(record.id, handle.clone());
        self.metrics.hubs_open.fetch_add(1, Relaxed);
        Ok(Some(handle))
    }
}

/// Bytes read from a client socket at a time.
const READ_BUFFER_BYTES: usize = 4096;

/// Most bytes waiting for one connection's socket before it counts as slow.
const MAX_QUEUED_BYTES: usize = 64 * 1024 * 1024;

/// `GET /v1/hubs/{hub}/ws`: upgrades to a WebSocket and runs the connection.
pub async fn ws_handler(
    UrlPath(hub): UrlPath<String>,
    State(relay): State<Arc<Relay>>,
    mut request: Request,
) -> Response {
    let accept = match ws::check_upgrade(request.headers()) {
        Ok(key) => ws::accept_key(key),
        Err(refusal) => return refusal.into_response(),
    };
    let Some(on_upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "this connection cannot be upgraded",
        )
            .into_response();
    };
    let tracker = relay.connections.clone();
    tokio::spawn(tracker.track_future(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!("WebSocket upgrade failed: {e}");
                return;
            }
        };
        relay.metrics.connections.fetch_add(1, Relaxed);
        connection::run(upgraded, relay.clone(), hub).await;
        relay.metrics.connections.fetch_sub(1, Relaxed);
    }));
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, "Upgrade".to_owned()),
            (header::UPGRADE, "websocket".to_owned()),
            (header::SEC_WEBSOCKET_ACCEPT, accept),
        ],
    )
        .into_response()
}

/// A protocol frame's bytes. Frames hold plain data; encoding cannot fail.
fn encode(frame: &Frame) -> Bytes {
    Bytes::from(proto::encode_frame(frame).unwrap_or_default())
}

/// Sequenced ops as one `Ops` frame (callers keep within the frame limits).
fn encode_ops_frame(ops: Vec<SeqOp>) -> Bytes {
    let from = ops.first().map(|o| o.seq).unwrap_or(0);
    encode(&Frame::Ops { from, ops })
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
