//! One connection to a hub: Hello, catch-up, pushing pending ops, live ops.
//! Incoming ops are applied in as few commits as possible (frames that are
//! already waiting are grouped), always in seq order with no gaps; pending
//! ops leave the queue only when the relay acknowledges them.

use super::HubAddress;
use crate::model::hlc::wall_now_ms;
use crate::store::{Replica, StoreError};
use futures_util::{FutureExt, SinkExt, StreamExt};
use spoke_relay::policy::{Refusal, Rule};
use spoke_relay::proto::{self, AckEntry, ErrorCode, Frame, OpId, Presence};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Most ops applied in one local commit while catching up.
const APPLY_GROUP: usize = 16_384;

/// Most submitted ops awaiting their acknowledgement.
const MAX_IN_FLIGHT: usize = 4096;

/// What the relay said about us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// The hub's id.
    pub hub: String,
    pub member: String,
    pub role: String,
    pub hub_name: String,
    pub epoch: u64,
    pub head: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("cannot reach the relay at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("the relay refused: {message} ({code})")]
    Refused { code: String, message: String },
    #[error("the relay broke the protocol: {0}")]
    Protocol(String),
    #[error("the connection dropped: {0}")]
    Dropped(String),
    #[error("no answer from the relay for {0} s")]
    Silent(u64),
    #[error(
        "the token is for @{token_member} but this replica acts as @{replica_member}; \
         use a token issued for @{replica_member}, or join from a fresh --home"
    )]
    WrongMember {
        token_member: String,
        replica_member: String,
    },
    #[error("a blob could not be uploaded: {0}")]
    Blob(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SyncError {
    /// Errors that retrying cannot fix: bad tokens, wrong hub, a broken replica.
    pub fn is_fatal(&self) -> bool {
        match self {
            SyncError::Refused { code, .. } => {
                matches!(
                    code.as_str(),
                    "unauthorized" | "forbidden" | "unknown_hub" | "bad_op" | "version"
                )
            }
            SyncError::WrongMember { .. } | SyncError::Store(_) => true,
            _ => false,
        }
    }
}

fn code_name(code: ErrorCode) -> String {
    crate::model::serde_name(code)
}

/// How long a session runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Push everything pending, pull to the head, return.
    Once,
    /// Stay connected until told to stop.
    Watch,
}

/// What a session did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub pulled: u64,
    pub pushed: u64,
    pub cursor: u64,
    pub head: u64,
    pub gaps_refetched: u64,
    /// Local ops the hub refused; each was taken back from this replica.
    pub refused: Vec<RefusedByHub>,
}

/// A local op the relay refused, with the rule it named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedByHub {
    pub op: OpId,
    pub rule: String,
    pub message: String,
}

pub struct Session {
    ws: Ws,
    pub welcome: Welcome,
    blobs: Option<super::blobs::BlobClient>,
    uploaded: HashSet<String>,
    /// Highest client seq submitted in this session.
    sent_upto: u64,
    /// Where other members' presence goes, if anyone listens.
    presence_in: Option<tokio::sync::mpsc::UnboundedSender<Presence>>,
    /// Our presence and when it was last announced (re-sent every minute).
    presence_out: Option<(Presence, tokio::time::Instant)>,
}

impl Session {
    /// Connects and authenticates; the relay starts sending from `cursor`.
    /// `ca_file` adds a trusted CA for `wss://` relays.
    pub async fn connect(
        addr: &HubAddress,
        token: &str,
        epoch: u64,
        cursor: u64,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Session, SyncError> {
        let url = addr.ws_url();
        tracing::debug!(url = %url, epoch, cursor, "connecting to the relay");
        let unreachable = |detail: String| SyncError::Unreachable {
            url: addr.display(),
            detail,
        };
        let connector = if url.starts_with("wss://") {
            let config =
                super::tls::client_config(ca_file).map_err(|e| unreachable(format!("{e:#}")))?;
            Some(tokio_tungstenite::Connector::Rustls(config))
        } else {
            None
        };
        // Nagle off: ops are small and should go out at once.
        let connecting =
            tokio_tungstenite::connect_async_tls_with_config(url.as_str(), None, true, connector);
        let (mut ws, _) = tokio::time::timeout(Duration::from_secs(15), connecting)
            .await
            .map_err(|_| unreachable("no answer within 15 s".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        let hello = Frame::Hello {
            token: token.to_owned(),
            hub: addr.hub.clone(),
            epoch,
            cursor,
        };
        send(&mut ws, &hello).await?;
        match recv(&mut ws, Duration::from_secs(15)).await? {
            Frame::Welcome {
                member,
                role,
                hub_name,
                epoch,
                head,
            } => {
                tracing::info!(
                    hub = %addr.hub,
                    hub_name = %hub_name,
                    member = %member,
                    role = %role,
                    epoch,
                    head,
                    "welcomed by the relay"
                );
                Ok(Session {
                    ws,
                    welcome: Welcome {
                        hub: addr.hub.clone(),
                        member,
                        role,
                        hub_name,
                        epoch,
                        head,
                    },
                    blobs: super::blobs::BlobClient::new(addr.clone(), token.to_owned(), ca_file)
                        .ok(),
                    uploaded: HashSet::new(),
                    sent_upto: 0,
                    presence_in: None,
                    presence_out: None,
                })
            }
            Frame::Error { code, message, .. } => {
                let code = code_name(code);
                tracing::warn!(hub = %addr.hub, code = %code, message = %message, "the relay refused the connection");
                Err(SyncError::Refused { code, message })
            }
            other => Err(SyncError::Protocol(format!(
                "expected Welcome, got {other:?}"
            ))),
        }
    }

    /// Closes the connection politely without syncing (a session opened
    /// only to see that the relay answers).
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// Sends other members' presence to `sink` as it arrives.
    pub fn on_presence(mut self, sink: tokio::sync::mpsc::UnboundedSender<Presence>) -> Self {
        self.presence_in = Some(sink);
        self
    }

    /// Runs the session against `replica` until done (`Once`) or stopped.
    pub async fn run(
        mut self,
        replica: Arc<Replica>,
        mode: Mode,
        mut stop: watch::Receiver<bool>,
        presence: Option<Presence>,
    ) -> Result<SyncReport, SyncError> {
        let welcome = self.welcome.clone();
        let meta = replica.meta()?;
        if let Some(me) = &meta.me
            && *me != welcome.member
        {
            return Err(SyncError::WrongMember {
                token_member: welcome.member,
                replica_member: me.clone(),
            });
        }
        if meta.epoch != 0 && meta.epoch != welcome.epoch {
            // The hub's log was reset: our cursor means nothing there.
            replica.reset_for_epoch(welcome.epoch)?;
        }
        let meta = replica.update_meta(|m| {
            m.epoch = welcome.epoch;
            m.hub_name = Some(welcome.hub_name.clone());
            m.head_seen = welcome.head;
            m.connected = true;
            m.last_contact_ms = Some(wall_now_ms());
            m.last_error = None;
        })?;
        let mut report = SyncReport {
            cursor: meta.cursor,
            head: welcome.head,
            ..SyncReport::default()
        };
        if let Some(p) = presence {
            send(&mut self.ws, &Frame::Presence(p.clone())).await?;
            self.presence_out = Some((p, tokio::time::Instant::now()));
        }
        let result = self.drive(&replica, mode, &mut stop, &mut report).await;
        match &result {
            Ok(()) => tracing::info!(
                hub = %welcome.hub,
                pulled = report.pulled,
                pushed = report.pushed,
                cursor = report.cursor,
                head = report.head,
                refused = report.refused.len(),
                gaps_refetched = report.gaps_refetched,
                "sync session done"
            ),
            Err(e) => tracing::warn!(
                hub = %welcome.hub,
                pulled = report.pulled,
                pushed = report.pushed,
                cursor = report.cursor,
                error = %e,
                "sync session ended"
            ),
        }
        let _ = replica.update_meta(|m| {
            m.connected = false;
            if let Err(e) = &result {
                m.last_error = Some(e.to_string());
            }
        });
        if result.is_ok() {
            let _ = self.ws.close(None).await;
        }
        result.map(|()| report)
    }

    async fn drive(
        &mut self,
        replica: &Arc<Replica>,
        mode: Mode,
        stop: &mut watch::Receiver<bool>,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let own_client = replica.meta()?.client_id;
        let mut in_flight: HashSet<OpId> = HashSet::new();
        let mut refetch_from: Option<u64> = None;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut last_heard = tokio::time::Instant::now();
        let idle_limit = Duration::from_secs(45);
        self.push_pending(replica, &mut in_flight, report).await?;
        loop {
            if mode == Mode::Once
                && report.cursor >= report.head
                && in_flight.is_empty()
                && replica.pending_count()? == 0
            {
                return Ok(());
            }
            tokio::select! {
                message = self.ws.next() => {
                    last_heard = tokio::time::Instant::now();
                    let frame = match message {
                        Some(Ok(Message::Binary(bytes))) => decode(&bytes)?,
                        Some(Ok(Message::Close(close))) => {
                            let why = close.map(|c| c.reason.to_string()).unwrap_or_default();
                            return Err(SyncError::Dropped(format!("the relay closed the connection: {why}")));
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => return Err(dropped(&e)),
                        None => return Err(SyncError::Dropped("the relay closed the connection".into())),
                    };
                    match frame {
                        Frame::Ops { from, ops } => {
                            let mut frames = vec![(from, ops)];
                            // Group frames that are already here into one commit.
                            let mut queued: usize = frames[0].1.len();
                            while queued < APPLY_GROUP {
                                match self.ws.next().now_or_never() {
                                    Some(Some(Ok(Message::Binary(bytes)))) => match decode(&bytes)? {
                                        Frame::Ops { from, ops } => {
                                            queued += ops.len();
                                            frames.push((from, ops));
                                        }
                                        other => {
                                            self.apply_frames(replica, std::mem::take(&mut frames), &mut refetch_from, report).await?;
                                            self.handle_other(replica, other, &mut in_flight, report, own_client).await?;
                                            break;
                                        }
                                    },
                                    Some(Some(Ok(_))) => {}
                                    Some(Some(Err(e))) => return Err(dropped(&e)),
                                    Some(None) => return Err(SyncError::Dropped("the relay closed the connection".into())),
                                    None => break,
                                }
                            }
                            self.apply_frames(replica, frames, &mut refetch_from, report).await?;
                        }
                        other => self.handle_other(replica, other, &mut in_flight, report, own_client).await?,
                    }
                }
                _ = tick.tick() => {
                    if last_heard.elapsed() > idle_limit {
                        return Err(SyncError::Silent(idle_limit.as_secs()));
                    }
                    if last_heard.elapsed() > Duration::from_secs(15) {
                        send(&mut self.ws, &Frame::Ping { nonce: wall_now_ms() }).await?;
                    }
                    if let Some((p, at)) = &self.presence_out
                        && at.elapsed() > Duration::from_secs(60)
                    {
                        let p = p.clone();
                        send(&mut self.ws, &Frame::Presence(p.clone())).await?;
                        self.presence_out = Some((p, tokio::time::Instant::now()));
                    }
                    // Ops made meanwhile by other commands on this replica.
                    self.push_pending(replica, &mut in_flight, report).await?;
                    replica.update_meta(|m| {
                        m.connected = true;
                        m.last_contact_ms = Some(wall_now_ms());
                        m.head_seen = m.head_seen.max(report.head);
                    })?;
                }
                _ = stop.changed() => return Ok(()),
            }
        }
    }

    async fn handle_other(
        &mut self,
        replica: &Arc<Replica>,
        frame: Frame,
        in_flight: &mut HashSet<OpId>,
        report: &mut SyncReport,
        own_client: spoke_relay::proto::ClientId,
    ) -> Result<(), SyncError> {
        match frame {
            Frame::Ack { acks } => {
                let acks: Vec<AckEntry> = acks
                    .into_iter()
                    .filter(|a| a.id.client == own_client)
                    .collect();
                let replica_for_ack = replica.clone();
                let acked = acks.clone();
                blocking(move || replica_for_ack.acknowledge(&acked)).await?;
                for a in &acks {
                    in_flight.remove(&a.id);
                    // Our own ops come back in the log; wait for them too.
                    report.head = report.head.max(a.seq);
                }
                report.pushed += acks.len() as u64;
                self.push_pending(replica, in_flight, report).await
            }
            Frame::Ping { nonce } => send(&mut self.ws, &Frame::Pong { nonce }).await,
            Frame::Presence(p) => {
                if let Some(sink) = &self.presence_in {
                    let _ = sink.send(p);
                }
                Ok(())
            }
            Frame::Pong { .. } => Ok(()),
            Frame::Error {
                message,
                op: Some(id),
                rule,
                ..
            } => {
                // One op refused: it leaves the queue and its effect is
                // taken back; the session goes on.
                let rule_name = rule.unwrap_or_default();
                tracing::warn!(op = %id, rule = %rule_name, message = %message, "the hub refused a local change; it was taken back");
                let named = Rule::parse(&rule_name).unwrap_or(Rule::RoleTable);
                let refusal = Refusal::new(named, message.clone());
                let r = replica.clone();
                blocking(move || r.refuse_pending(&[(id, refusal)])).await?;
                in_flight.remove(&id);
                report.refused.push(RefusedByHub {
                    op: id,
                    rule: rule_name,
                    message,
                });
                Ok(())
            }
            Frame::Error { code, message, .. } => Err(SyncError::Refused {
                code: code_name(code),
                message,
            }),
            other => Err(SyncError::Protocol(format!(
                "unexpected frame from the relay: {other:?}"
            ))),
        }
    }

    /// Applies the contiguous run of ops after the cursor in one commit.
    /// A gap is never applied past: the missing range is asked for again.
    async fn apply_frames(
        &mut self,
        replica: &Arc<Replica>,
        frames: Vec<(u64, Vec<proto::SeqOp>)>,
        refetch_from: &mut Option<u64>,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let mut batch: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut next = report.cursor + 1;
        let mut gap = false;
        for (_, ops) in frames {
            for op in ops {
                if op.seq < next {
                    continue; // already have it (a refetch overlaps)
                }
                if op.seq > next {
                    gap = true;
                    break;
                }
                batch.push((op.seq, op.op));
                next += 1;
            }
            if gap {
                break;
            }
        }
        if !batch.is_empty() {
            let count = batch.len() as u64;
            let r = replica.clone();
            blocking(move || r.apply_sequenced(&batch)).await?;
            report.pulled += count;
            report.cursor = next - 1;
            tracing::debug!(
                ops = count,
                cursor = report.cursor,
                "applied ops from the hub"
            );
            report.head = report.head.max(report.cursor);
            *refetch_from = None;
        }
        if gap && *refetch_from != Some(next) {
            *refetch_from = Some(next);
            report.gaps_refetched += 1;
            tracing::info!(from = next, "a gap in the ops from the hub: asking again");
            send(&mut self.ws, &Frame::Fetch { from: next }).await?;
        }
        Ok(())
    }

    /// Submits pending ops not yet in flight, in protocol-sized frames.
    /// Keeps at most [`MAX_IN_FLIGHT`] ops unacknowledged, so the relay's
    /// answers never pile up behind our own sends (both sides would block).
    async fn push_pending(
        &mut self,
        replica: &Arc<Replica>,
        in_flight: &mut HashSet<OpId>,
        _report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let room = MAX_IN_FLIGHT.saturating_sub(in_flight.len());
        if room == 0 {
            return Ok(());
        }
        let r = replica.clone();
        let after = self.sent_upto;
        let fresh = blocking(move || r.pending_after(after, room)).await?;
        if let Some(last) = fresh.last() {
            self.sent_upto = last.id.seq;
        }
        // Blobs go first, so no member ever receives an op whose bytes are missing.
        let home = replica
            .path()
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        for sha in fresh.iter().flat_map(|op| op.referenced_blobs()) {
            if self.uploaded.contains(&sha) {
                continue;
            }
            let Some(client) = &self.blobs else {
                return Err(SyncError::Protocol(
                    "no HTTP client for blob uploads".into(),
                ));
            };
            client
                .upload(&home, &sha)
                .await
                .map_err(|e| SyncError::Blob(format!("{e:#}")))?;
            self.uploaded.insert(sha);
        }
        let fresh: Vec<(proto::Op, usize)> = fresh
            .iter()
            .map(|op| {
                let wire = op.to_wire();
                let size = proto::encode_op(&wire).map(|b| b.len()).unwrap_or(0);
                (wire, size)
            })
            .collect();
        for group in proto::frame_groups(fresh, |(_, size)| *size) {
            let ops: Vec<proto::Op> = group.into_iter().map(|(op, _)| op).collect();
            tracing::debug!(ops = ops.len(), "submitting local ops");
            for op in &ops {
                in_flight.insert(op.id);
            }
            send(&mut self.ws, &Frame::Submit { ops }).await?;
        }
        Ok(())
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, SyncError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SyncError::Protocol(format!("a storage task failed: {e}")))?
        .map_err(SyncError::from)
}

/// A read that failed, in plain words: a relay that vanished mid-session
/// (restarted, crashed, a network cut) says so instead of quoting the
/// WebSocket library.
fn dropped(e: &tokio_tungstenite::tungstenite::Error) -> SyncError {
    use tokio_tungstenite::tungstenite::Error as WsError;
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    let abrupt = match e {
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => true,
        WsError::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof
        ),
        _ => false,
    };
    let at = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%H:%M:%S");
    SyncError::Dropped(if abrupt {
        format!(
            "at {at} the relay went away without closing the connection (it may have restarted, or the network dropped)"
        )
    } else {
        format!("at {at}: {e}")
    })
}

fn decode(bytes: &[u8]) -> Result<Frame, SyncError> {
    proto::decode_frame(bytes).map_err(|e| SyncError::Protocol(format!("unreadable frame: {e}")))
}

async fn send(ws: &mut Ws, frame: &Frame) -> Result<(), SyncError> {
    let bytes = proto::encode_frame(frame)
        .map_err(|e| SyncError::Protocol(format!("cannot encode a frame: {e}")))?;
    ws.send(Message::Binary(bytes.into()))
        .await
        .map_err(|e| SyncError::Dropped(e.to_string()))
}

async fn recv(ws: &mut Ws, within: Duration) -> Result<Frame, SyncError> {
    loop {
        let message = tokio::time::timeout(within, ws.next())
            .await
            .map_err(|_| SyncError::Silent(within.as_secs()))?;
        match message {
            Some(Ok(Message::Binary(bytes))) => return decode(&bytes),
            Some(Ok(Message::Close(close))) => {
                let why = close.map(|c| c.reason.to_string()).unwrap_or_default();
                return Err(SyncError::Dropped(format!(
                    "the relay closed the connection: {why}"
                )));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(dropped(&e)),
            None => return Err(SyncError::Dropped("the relay closed the connection".into())),
        }
    }
}
