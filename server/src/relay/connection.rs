//! One member's connection: the `Hello` handshake, the log from its
//! cursor, its submissions and replies. Live batches reach it through the
//! hub's fan-out, which writes into its [`Outbound`].

use super::fanout;
use super::outbound::{Failure, Outbound};
use super::writer::WriterRequest;
use super::{HubHandle, MAX_QUEUED_BYTES, READ_BUFFER_BYTES, Relay, encode, encode_ops_frame};
use crate::auth::TokenRecord;
use crate::policy::{DecodedOp, Role, Rule};
use crate::proto::{
    self, AckEntry, ErrorCode, Frame, MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, MAX_OP_BYTES,
    MAX_OPS_PER_FRAME, OpId,
};
use crate::store::{Appended, EncodedOp};
use crate::ws::{self, Incoming, WsError, close_code};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// Time the final `Error` and close get to reach a member.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a connection ends, sent as a final `Error` frame and a close.
struct Ending {
    code: ErrorCode,
    message: String,
    close: u16,
    /// The socket may hold part of a frame: nothing more can be said on it.
    torn: bool,
}

impl Ending {
    fn new(code: ErrorCode, message: impl Into<String>, close: u16) -> Self {
        Ending {
            code,
            message: message.into(),
            close,
            torn: false,
        }
    }
}

struct Connection {
    id: u64,
    relay: Arc<Relay>,
    reader: ws::Reader<BoxRead>,
    out: Arc<Outbound>,
    /// The socket's write half when it is not written directly (TLS).
    writer: Option<BoxWrite>,
    bad_frames: u32,
    bucket: TokenBucket,
    /// The member and hub, once the handshake succeeded.
    joined: Option<(String, Arc<HubHandle>)>,
    /// Whether this connection announced presence (then its end is announced too).
    announced: bool,
}

/// A submission's answer: each op's id and where it ended up.
type AckFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Vec<(OpId, Appended)>, String>> + Send>,
>;

/// How often an open connection re-reads its token, so a revocation or an
/// expiry closes it even when it submits nothing.
const TOKEN_CHECK: Duration = Duration::from_secs(2);

/// Runs one upgraded connection to its end.
pub async fn run(upgraded: Upgraded, relay: Arc<Relay>, url_hub: String) {
    let max_frames = relay.config.outbound_batches;
    // Plain TCP is written directly by the fan-out; anything else (TLS)
    // through this task.
    let (read, already, out, writer) = match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => {
            let (read, write) = parts.io.into_inner().into_split();
            let out = Outbound::new(Some(write), max_frames, MAX_QUEUED_BYTES);
            (Box::new(read) as BoxRead, parts.read_buf, out, None)
        }
        Err(upgraded) => {
            let (read, write) = tokio::io::split(TokioIo::new(upgraded));
            let out = Outbound::new(None, max_frames, MAX_QUEUED_BYTES);
            (
                Box::new(read) as BoxRead,
                Bytes::new(),
                out,
                Some(Box::new(write) as BoxWrite),
            )
        }
    };
    let id = relay.next_conn.fetch_add(1, Relaxed);
    let rate = relay.config.max_ops_per_sec;
    let mut conn = Connection {
        id,
        relay,
        reader: ws::Reader::new(
            read,
            already,
            MAX_FRAME_BYTES,
            MAX_MESSAGE_BYTES,
            READ_BUFFER_BYTES,
        ),
        out: Arc::new(out),
        writer,
        bad_frames: 0,
        bucket: TokenBucket::new(rate),
        joined: None,
        announced: false,
    };
    let ending = conn.serve(&url_hub).await.err();
    if let Some((member, hub)) = conn.joined.take() {
        hub.members.remove(conn.id);
        if conn.announced {
            // Tell the others this member left (presence is never stored).
            let frame = encode(&Frame::Presence(proto::Presence {
                member,
                status: proto::PresenceStatus::Offline,
                tz: None,
                viewing: None,
            }));
            fanout::send_presence(&hub.fanout, conn.id, frame);
        }
    }
    conn.out.close_for_goodbye();
    if ending.is_some() {
        conn.relay.metrics.frames_rejected.fetch_add(1, Relaxed);
    }
    match ending {
        // The socket may hold part of a frame: nothing more can be said.
        Some(e) if e.torn => {}
        Some(e) => {
            conn.out.send(ws::binary(&encode(&Frame::error(
                e.code,
                e.message.clone(),
            ))));
            conn.out
                .send(ws::close(e.close, &truncate(&e.message, 120)));
        }
        None => conn.out.send(ws::close(close_code::NORMAL, "")),
    }
    let _ = tokio::time::timeout(GOODBYE_TIMEOUT, conn.flush()).await;
    if let Some(w) = conn.writer.as_mut() {
        let _ = tokio::time::timeout(GOODBYE_TIMEOUT, w.shutdown()).await;
    }
}

impl Connection {
    async fn serve(&mut self, url_hub: &str) -> Result<(), Ending> {
        let (token, raw_token, hub) = self.handshake(url_hub).await?;
        let mut shutdown = self.relay.shutdown.clone();
        let mut acks: FuturesOrdered<AckFuture> = FuturesOrdered::new();
        let out = self.out.clone();
        // A member that goes quiet is pinged; one that stays silent (a laptop
        // closed, a dropped network) is closed, so its presence ends.
        let idle = self.relay.config.idle_timeout;
        let mut last_heard = Instant::now();
        let mut pinged = false;
        let mut check = tokio::time::interval((idle / 6).max(Duration::from_millis(10)));
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut token_check = tokio::time::interval(TOKEN_CHECK);
        token_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A shared registry says when a record changed: the token is checked
        // at once, so a revocation made on any relay closes this connection.
        let mut registry_changes = self.relay.registry.changes();
        loop {
            tokio::select! {
                incoming = self.reader.next() => {
                    last_heard = Instant::now();
                    pinged = false;
                    match incoming.map_err(read_ending)? {
                        None | Some(Incoming::Close(_)) => return Ok(()),
                        Some(Incoming::Binary(bytes)) => {
                            if let Some(ack) = self.handle(&bytes, &token, &raw_token, &hub).await? {
                                acks.push_back(ack);
                            }
                        }
                        Some(Incoming::Text) => {
                            self.reject(ErrorCode::BadFrame, "text messages are not part of the protocol; send binary frames").await?;
                        }
                        Some(Incoming::Ping(payload)) => {
                            self.out.send(ws::pong(&payload));
                            self.flush().await?;
                        }
                        Some(Incoming::Pong) => {}
                    }
                }
                _ = out.wake.notified() => self.flush().await?,
                Some(result) = acks.next(), if !acks.is_empty() => match result {
                    Ok(results) => self.answer(results).await?,
                    Err(e) => {
                        return Err(Ending::new(ErrorCode::Internal, format!("the relay could not store ops: {e}"), close_code::ERROR));
                    }
                },
                _ = shutdown.changed() => {
                    return Err(Ending::new(ErrorCode::GoingAway, "the relay is shutting down; reconnect later", close_code::AWAY));
                }
                _ = token_check.tick() => self.check_token(&raw_token)?,
                _ = registry_changed(&mut registry_changes) => self.check_token(&raw_token)?,
                _ = check.tick() => {
                    let quiet = last_heard.elapsed();
                    if quiet >= idle {
                        return Err(Ending::new(
                            ErrorCode::Timeout,
                            format!("nothing heard for {:.0} s; reconnect to resume", quiet.as_secs_f64()),
                            close_code::POLICY,
                        ));
                    }
                    if quiet >= idle / 3 && !pinged {
                        pinged = true;
                        let nonce = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map(|d| d.as_millis() as u64)
                            .unwrap_or(0);
                        self.send_frame(&Frame::Ping { nonce }).await?;
                    }
                }
            }
        }
    }

    /// Waits for a valid `Hello`, authenticates it, sends `Welcome` and the
    /// log from the client's cursor, and joins the hub's fan-out (live
    /// batches the log already covered are skipped).
    async fn handshake(
        &mut self,
        url_hub: &str,
    ) -> Result<(TokenRecord, String, Arc<HubHandle>), Ending> {
        let timeout = self.relay.config.hello_timeout;
        let first = tokio::time::timeout(timeout, self.reader.next())
            .await
            .map_err(|_| {
                Ending::new(
                    ErrorCode::Timeout,
                    format!("no Hello within {:.1} s", timeout.as_secs_f64()),
                    close_code::POLICY,
                )
            })?;
        let bytes = match first {
            Ok(Some(Incoming::Binary(b))) => b,
            Ok(Some(Incoming::Close(_))) | Ok(None) => {
                return Err(Ending::new(
                    ErrorCode::Protocol,
                    "closed before Hello",
                    close_code::NORMAL,
                ));
            }
            Ok(Some(_)) => {
                return Err(Ending::new(
                    ErrorCode::BadFrame,
                    "expected a binary Hello frame",
                    close_code::PROTOCOL,
                ));
            }
            Err(e) => return Err(read_ending(e)),
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
            Err(e) => return Err(internal(e)),
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
            Err(e) => return Err(internal(e)),
        };
        // The token's role reaches the hub's log (once per token) before the
        // member sees the log, so its first ops are judged with it.
        let roles = grant(&handle, &record).await?;
        // Join the fan-out (holding live batches back) before reading the
        // head: a commit reaches the fan-out only once it is in the log, so
        // every commit is either in the log snapshot or held, and one that is
        // in both is skipped when the hold ends.
        self.out.hold();
        handle.members.add(self.id, self.out.clone());
        self.joined = Some((record.handle.clone(), handle.clone()));
        let head = handle.log.head();
        let hub_epoch = handle.log.epoch();
        // A cursor from another epoch means nothing here: start from the beginning.
        let cursor = if epoch == hub_epoch {
            cursor.min(head)
        } else {
            0
        };
        let role = if roles.is_empty() {
            record.role.clone()
        } else {
            roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        self.send_frame(&Frame::Welcome {
            member: record.handle.clone(),
            role,
            hub_name: handle.name.clone(),
            epoch: hub_epoch,
            head,
        })
        .await?;
        self.send_log(&handle, cursor + 1, head).await?;
        self.out.release(head);
        Ok((record, token, handle))
    }

    /// Ends the connection once its token is revoked or expired.
    fn check_token(&self, raw: &str) -> Result<(), Ending> {
        match self.relay.registry.authenticate(raw) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Ending::new(
                ErrorCode::Unauthorized,
                format!("{e}; this connection is closed"),
                close_code::POLICY,
            )),
            Err(e) => Err(internal(e)),
        }
    }

    /// Acks the stored ops of a submission and names each refused one.
    async fn answer(&mut self, results: Vec<(OpId, Appended)>) -> Result<(), Ending> {
        // Only an empty Submit has no results; it is answered all the same.
        let empty_submit = results.is_empty();
        let mut acks = Vec::with_capacity(results.len());
        for (id, result) in results {
            match result {
                Appended::Stored { seq, .. } => acks.push(AckEntry { id, seq }),
                Appended::Refused(refusal) => {
                    self.send_frame(&Frame::Error {
                        code: ErrorCode::Forbidden,
                        message: format!("op {id} refused: {refusal}"),
                        op: Some(id),
                        rule: Some(refusal.rule.name().to_owned()),
                    })
                    .await?;
                }
            }
        }
        if acks.is_empty() && !empty_submit {
            return Ok(());
        }
        self.send_frame(&Frame::Ack { acks }).await
    }

    /// Refuses one op of a submission before it reaches the writer.
    async fn refuse_op(
        &mut self,
        id: OpId,
        code: ErrorCode,
        rule: Rule,
        why: String,
    ) -> Result<(), Ending> {
        self.relay.metrics.ops_refused.fetch_add(1, Relaxed);
        self.send_frame(&Frame::Error {
            code,
            message: format!("op {id} refused: {why} (rule {rule})"),
            op: Some(id),
            rule: Some(rule.name().to_owned()),
        })
        .await
    }

    /// Sends stored ops `from..=upto` in protocol-sized `Ops` frames, each
    /// written out before the next is read.
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
            .map_err(internal)?
            .map_err(internal)?;
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
        raw_token: &str,
        hub: &Arc<HubHandle>,
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
                // A token revoked while this connection is open writes nothing more.
                self.check_token(raw_token)?;
                if !token.can_submit() {
                    self.reject(
                        ErrorCode::Forbidden,
                        format!("@{} is read-only and cannot submit ops", token.handle),
                    )
                    .await?;
                    return Ok(None);
                }
                if ops.is_empty() {
                    // Answered with an empty Ack, queued behind the acks of
                    // earlier submissions: a client waiting for an answer
                    // gets one, and everything it sent before is answered.
                    return Ok(Some(Box::pin(async { Ok(Vec::new()) })));
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
                        self.refuse_op(
                            op.id,
                            ErrorCode::BadOp,
                            Rule::ActorIsTheToken,
                            format!(
                                "op {} claims actor @{} but this connection is @{}",
                                op.id, op.actor, token.handle
                            ),
                        )
                        .await?;
                        continue;
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
                    let decoded = match DecodedOp::from_wire(op) {
                        Ok(d) => d,
                        Err(e) => {
                            self.refuse_op(op.id, ErrorCode::BadOp, Rule::Malformed, e.to_string())
                                .await?;
                            continue;
                        }
                    };
                    encoded.push(EncodedOp {
                        id: op.id,
                        bytes,
                        op: decoded,
                        from_relay: false,
                    });
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
                let ids: Vec<OpId> = encoded.iter().map(|o| o.id).collect();
                let (reply, rx) = oneshot::channel();
                hub.submit
                    .send(WriterRequest::Submit {
                        ops: encoded,
                        reply,
                    })
                    .await
                    .map_err(|_| writer_stopped())?;
                Ok(Some(Box::pin(async move {
                    rx.await
                        .unwrap_or_else(|_| Err("the hub writer stopped".to_owned()))
                        .map(|results| ids.into_iter().zip(results).collect())
                })))
            }
            Frame::Fetch { from } => {
                // Live batches wait until the asked part of the log is out.
                self.out.hold();
                let head = hub.log.head();
                self.send_log(hub, from.max(1), head).await?;
                self.out.release(head);
                Ok(None)
            }
            Frame::Presence(mut presence) => {
                presence.member = token.handle.clone();
                self.announced = presence.status != proto::PresenceStatus::Offline;
                fanout::send_presence(&hub.fanout, self.id, encode(&Frame::Presence(presence)));
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
        self.send_frame(&Frame::error(code, message)).await
    }

    async fn send_frame(&mut self, frame: &Frame) -> Result<(), Ending> {
        self.send_bytes(encode(frame)).await
    }

    /// Sends one protocol frame and writes it out.
    async fn send_bytes(&mut self, frame: Bytes) -> Result<(), Ending> {
        self.out.send(ws::binary(&frame));
        self.flush().await
    }

    /// Writes out whatever is queued for this connection.
    async fn flush(&mut self) -> Result<(), Ending> {
        let Some(writer) = self.writer.as_mut() else {
            return self.out.flush_direct().await.map_err(|f| self.failed(f));
        };
        if let Some(f) = self.out.failure() {
            return Err(self.failed(f));
        }
        let frames = self.out.take_queued();
        let write = async {
            for bytes in frames {
                writer.write_all(&bytes).await?;
            }
            writer.flush().await
        };
        // A member that stops reading blocks the write; the fan-out's wake
        // says when it gave up, and the connection ends without a goodbye
        // (the socket may hold part of a frame).
        let out = self.out.clone();
        let gave_up = async {
            loop {
                out.wake.notified().await;
                if let Some(f) = out.failure() {
                    return f;
                }
            }
        };
        tokio::select! {
            written = write => written.map_err(io_ending),
            failure = gave_up => {
                let mut ending = self.failed(failure);
                ending.torn = true;
                Err(ending)
            }
        }
    }

    fn failed(&self, failure: Failure) -> Ending {
        match failure {
            Failure::Slow => {
                self.relay.metrics.slow_consumers.fetch_add(1, Relaxed);
                Ending::new(
                    ErrorCode::SlowConsumer,
                    "this connection fell too far behind; reconnect and resume from your cursor",
                    close_code::AGAIN,
                )
            }
            Failure::Io(e) => io_ending(e),
        }
    }
}

/// Asks the hub's writer to grant the token's role to its member (the
/// first time this token is used) and returns the member's roles.
async fn grant(hub: &HubHandle, record: &TokenRecord) -> Result<Vec<Role>, Ending> {
    let role = Role::parse(&record.role).map_err(internal)?;
    let (reply, rx) = oneshot::channel();
    hub.submit
        .send(WriterRequest::Grant {
            token: record.id.clone(),
            handle: record.handle.clone(),
            role,
            reply,
        })
        .await
        .map_err(|_| writer_stopped())?;
    rx.await
        .map_err(|_| writer_stopped())?
        .map_err(|e| internal(format!("the relay could not record the member's role: {e}")))
}

/// Resolves when the shared registry changed; never for a data folder's
/// registry (or once the shared one stopped following the bucket).
async fn registry_changed(changes: &mut Option<tokio::sync::watch::Receiver<u64>>) {
    if let Some(rx) = changes
        && rx.changed().await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

fn writer_stopped() -> Ending {
    Ending::new(
        ErrorCode::Internal,
        "the hub writer stopped",
        close_code::ERROR,
    )
}

fn internal(e: impl std::fmt::Display) -> Ending {
    Ending::new(ErrorCode::Internal, e.to_string(), close_code::ERROR)
}

fn io_ending(e: impl std::fmt::Display) -> Ending {
    Ending::new(
        ErrorCode::Internal,
        format!("send failed: {e}"),
        close_code::ERROR,
    )
}

/// How a connection ends after a message it could not read. A socket that
/// failed or ended mid-message has nobody left to tell: it just ends.
fn read_ending(e: WsError) -> Ending {
    let code = match e {
        WsError::TooLarge(_) => ErrorCode::TooLarge,
        WsError::Protocol(_) | WsError::InvalidData(_) => ErrorCode::BadFrame,
        WsError::Io(_) => ErrorCode::Protocol,
    };
    let message = format!("unreadable message: {e}");
    match e.close_code() {
        Some(close) => Ending::new(code, message, close),
        None => Ending {
            torn: true,
            ..Ending::new(code, message, close_code::ABNORMAL)
        },
    }
}

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
