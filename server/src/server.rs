//! HTTP routes and the serve loop with graceful shutdown.

use crate::blobs::{get_blob, put_blob};
use crate::relay::{Relay, RelayConfig, healthz, metrics, ws_handler};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

pub fn router(relay: Arc<Relay>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/token", get(token_info))
        .route("/v1/hubs/{hub}/ws", get(ws_handler))
        .route("/v1/hubs/{hub}/blobs/{sha256}", get(get_blob).put(put_blob))
        // Blob bodies are streamed and limited by the relay's own setting.
        .layer(DefaultBodyLimit::disable())
        .with_state(relay)
}

/// `GET /v1/token`: the hub, member and role a bearer token is for, so a
/// member given only the relay's address (and a token) finds the hub. A
/// token the relay does not accept gets `401` with the reason.
pub async fn token_info(State(relay): State<Arc<Relay>>, headers: HeaderMap) -> Response {
    let answer =
        |status: StatusCode, body: serde_json::Value| (status, axum::Json(body)).into_response();
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return answer(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "unauthorized", "message": "send Authorization: Bearer <token>"}),
        );
    };
    let record = match relay.registry.authenticate(token.trim()) {
        Ok(Ok(record)) => record,
        Ok(Err(e)) => {
            return answer(
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"error": "unauthorized", "message": e.to_string()}),
            );
        }
        Err(e) => {
            tracing::warn!("token lookup failed: {e}");
            return answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({"error": "internal", "message": e.to_string()}),
            );
        }
    };
    let hub_name = match relay.registry.hub(&record.hub) {
        Ok(hub) => hub.map(|h| h.name),
        Err(e) => {
            return answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({"error": "internal", "message": e.to_string()}),
            );
        }
    };
    answer(
        StatusCode::OK,
        serde_json::json!({
            "hub": record.hub,
            "hub_name": hub_name,
            "member": record.handle,
            "role": record.role,
        }),
    )
}

/// Where members reach a relay, as `spoke-relay serve` last recorded it in
/// its data folder, so the admin commands (other processes) can print a
/// ready-to-paste `spoke hub join` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advertised {
    /// The relay's base URL: `ws://HOST:PORT` or `wss://HOST[/PREFIX]`.
    pub url: String,
    /// Given with `--public-url`, rather than taken from the listening address.
    pub public: bool,
}

/// The file in the data folder holding [`Advertised`].
pub const ADVERTISED_FILE: &str = "public-url.json";

impl Advertised {
    /// Writes the record (atomically: a reader never sees half of it).
    pub fn record(&self, data: &Path) -> anyhow::Result<()> {
        let path = data.join(ADVERTISED_FILE);
        let tmp = data.join(format!("{ADVERTISED_FILE}.tmp"));
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(data)?;
            std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            anyhow::anyhow!("cannot record the relay's URL in {}: {e}", path.display())
        })
    }

    /// The last recorded address, if the relay was ever served from `data`.
    pub fn read(data: &Path) -> anyhow::Result<Option<Advertised>> {
        let path = data.join(ADVERTISED_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            anyhow::anyhow!(
                "{} is unreadable ({e}); serve the relay again to rewrite it",
                path.display()
            )
        })
    }
}

/// A running relay: its address and the handle that stops it.
pub struct Running {
    pub addr: SocketAddr,
    pub relay: Arc<Relay>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops accepting, tells every connection the relay is going away, and
    /// waits (up to 10 s) for them to close.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.stop.send(true);
        let served = self.task.await.unwrap_or(Ok(()));
        self.relay.connections.close();
        if tokio::time::timeout(Duration::from_secs(10), self.relay.connections.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "{} connections did not close within 10 s",
                self.relay.connections.len()
            );
        }
        served
    }
}

/// Starts a relay on `listener` in the current runtime, over TLS when the
/// config has a certificate.
pub async fn start(listener: TcpListener, config: RelayConfig) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let tls = config.tls.clone();
    let nats = match &config.nats {
        Some(settings) => Some(crate::nats::Nats::connect(&settings.urls).await?),
        None => None,
    };
    let relay = Arc::new(Relay::with_nats(config, stopped.clone(), nats)?);
    let app = router(relay.clone());
    let mut on_stop = stopped;
    let stopping = async move {
        let _ = on_stop.wait_for(|s| *s).await;
    };
    let acceptor = tls.map(crate::tls::TlsAcceptor::from);
    let limits = HttpLimits {
        head_timeout: relay.config.hello_timeout,
        metrics: relay.metrics.clone(),
    };
    let task = tokio::spawn(accept_loop(listener, acceptor, app, limits, stopping));
    Ok(Running {
        addr,
        relay,
        stop,
        task,
    })
}

/// Accepts connections and serves HTTP/1.1 on each until `stopping`
/// resolves; then stops accepting, lets requests in flight finish and waits
/// for those connections. Upgraded WebSocket connections are the relay's
/// and end through its own shutdown.
async fn accept_loop(
    listener: TcpListener,
    tls: Option<crate::tls::TlsAcceptor>,
    app: Router,
    limits: HttpLimits,
    stopping: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let (close, closing) = watch::channel(false);
    let connections = TaskTracker::new();
    tokio::pin!(stopping);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut stopping => break,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors and the like: wait, then go on.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Ops are small and latency matters more than packet count.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        let app = app.clone();
        let closing = closing.clone();
        let limits = limits.clone();
        match tls.clone() {
            None => connections.spawn(serve_http(tcp, app, limits, closing)),
            Some(acceptor) => connections.spawn(async move {
                if let Some(tls) = crate::tls::accept(&acceptor, tcp, peer).await {
                    serve_http(tls, app, limits, closing).await;
                }
            }),
        };
    }
    drop(listener);
    let _ = close.send(true);
    connections.close();
    // Requests in flight (a blob upload) get a while to finish.
    if tokio::time::timeout(Duration::from_secs(10), connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "{} HTTP connections were still busy after 10 s; closing them",
            connections.len()
        );
    }
    Ok(())
}

/// What every HTTP connection is held to.
#[derive(Clone)]
struct HttpLimits {
    /// Time to send a whole request head, counted from the connection (or
    /// the previous response) on: a connection that says nothing, or sends
    /// its head a byte at a time, is cut as a `Hello` that comes late is.
    head_timeout: Duration,
    metrics: Arc<crate::metrics::Metrics>,
}

/// Serves HTTP/1.1 on one connection, with upgrades to WebSocket.
async fn serve_http<I>(io: I, app: Router, limits: HttpLimits, mut closing: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(app);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.head_timeout)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    let mut asked_to_close = false;
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    if e.is_timeout() {
                        limits.metrics.http_head_timeouts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    tracing::debug!("HTTP connection ended: {e}");
                }
                return;
            }
            _ = closing.wait_for(|c| *c), if !asked_to_close => {
                asked_to_close = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Serves until `signal` resolves, then shuts down gracefully.
pub async fn serve_until(
    listener: TcpListener,
    config: RelayConfig,
    signal: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let running = start(listener, config).await?;
    tracing::info!("spoke-relay listening on {}", running.addr);
    signal.await;
    tracing::info!("shutting down: closing connections");
    running.shutdown().await?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
