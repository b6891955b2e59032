//! Shared helpers for the relay's integration tests: an in-process relay on a
//! temporary data folder, a WebSocket client speaking the Spoke protocol, an op
//! builder and a tiny HTTP/1.1 client. Every wait is bounded by [`TIMEOUT`], so
//! a broken relay fails a test instead of hanging it.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod fuzz;
pub mod nats;
pub mod process;

use futures_util::{SinkExt, StreamExt};
use spoke_relay::auth::Registry;
use spoke_relay::policy::{RELAY_ACTOR, RELAY_CLIENT};
use spoke_relay::proto::{
    AckEntry, ClientId, EntityKey, ErrorCode, Frame, Hlc, Op, OpId, SeqOp, decode_frame, decode_op,
    encode_frame,
};
use spoke_relay::relay::RelayConfig;
use spoke_relay::server::{Running, start};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Longest any single wait in a test may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// An in-process relay on `127.0.0.1:0` with its own temporary data folder.
pub struct TestRelay {
    pub running: Running,
    pub addr: SocketAddr,
    // Dropped last: the relay's files live here.
    pub dir: tempfile::TempDir,
}

impl TestRelay {
    /// A relay with the default configuration.
    pub async fn start() -> TestRelay {
        TestRelay::start_with(|_| {}).await
    }

    /// A relay whose configuration `tune` adjusts first.
    pub async fn start_with(tune: impl FnOnce(&mut RelayConfig)) -> TestRelay {
        let dir = tempfile::tempdir().expect("a temporary data folder");
        let mut config = RelayConfig::new(dir.path().to_path_buf());
        tune(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let running = start(listener, config).await.expect("start the relay");
        let addr = running.addr;
        TestRelay { running, addr, dir }
    }

    pub fn registry(&self) -> &Registry {
        &self.running.relay.registry
    }

    /// Creates a hub and returns its id.
    pub fn hub(&self, name: &str) -> String {
        self.registry().create_hub(name).expect("create hub").id
    }

    /// Issues a token for `handle` with `role` in `hub`.
    pub fn token(&self, hub: &str, handle: &str, role: &str) -> String {
        self.registry()
            .issue(hub, handle, role, None)
            .expect("issue token")
            .0
    }

    /// Issues a token for each `(handle, role)` and uses it once (Hello, then
    /// close), so the relay's role grant for each member is in the hub's log
    /// before a test starts. Each grant is one op, so with distinct handles
    /// new to the hub the head moves by one per member. Returns the tokens,
    /// in order, and the hub's head after the grants.
    pub async fn members<const N: usize>(
        &self,
        hub: &str,
        members: [(&str, &str); N],
    ) -> ([String; N], u64) {
        let mut tokens = Vec::with_capacity(N);
        let mut head = None;
        for (handle, role) in members {
            let token = self.token(hub, handle, role);
            let (client, welcome) = self.join(hub, &token, handle).await;
            if let Some(before) = head {
                assert_eq!(
                    welcome.head,
                    before + 1,
                    "the first use of @{handle}'s token adds its role grant to the log"
                );
            }
            head = Some(welcome.head);
            client.close().await;
            tokens.push(token);
        }
        let tokens = tokens.try_into().expect("one token per member");
        (tokens, head.unwrap_or(0))
    }

    /// Connects a WebSocket to `hub`'s socket (no Hello sent yet).
    pub async fn connect(&self, hub: &str) -> Client {
        Client::connect(self.addr, hub).await
    }

    /// Connects, says Hello with epoch 0 and cursor 0, and returns the client
    /// with the Welcome read (catch-up ops, if any, are left to read).
    pub async fn join(&self, hub: &str, token: &str, handle: &str) -> (Client, Welcome) {
        let mut client = self.connect(hub).await;
        let welcome = client.hello(token, hub, 0, 0).await;
        assert_eq!(welcome.member, handle, "Welcome names the token's member");
        client.handle = handle.to_owned();
        (client, welcome)
    }
}

/// The fields of a `Welcome` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    pub member: String,
    pub role: String,
    pub hub_name: String,
    pub epoch: u64,
    pub head: u64,
}

/// What reading from the socket produced.
#[derive(Debug)]
pub enum Event {
    Frame(Frame),
    /// A close frame from the relay (with its code, if any).
    Close(Option<u16>),
    /// The stream ended or failed without a close frame.
    Ended(String),
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A protocol client over one WebSocket. Frames read while waiting for
/// something else (an `Ack`, a `Pong`) are kept and returned by later reads.
pub struct Client {
    pub ws: Ws,
    /// The member handle, used as the actor of built ops.
    pub handle: String,
    /// This replica's client id.
    pub client_id: u64,
    /// The last client seq used by [`Client::submit`].
    pub next_seq: u64,
    pending: VecDeque<Frame>,
}

static NEXT_CLIENT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A fresh client id, unique in this test process.
pub fn fresh_client_id() -> u64 {
    0x5eed_0000_0000 + NEXT_CLIENT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

pub fn ws_url(addr: SocketAddr, hub: &str) -> String {
    format!("ws://{addr}/v1/hubs/{hub}/ws")
}

impl Client {
    pub async fn connect(addr: SocketAddr, hub: &str) -> Client {
        let (ws, _) =
            tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(ws_url(addr, hub)))
                .await
                .expect("the WebSocket handshake finishes in time")
                .expect("the WebSocket handshake succeeds");
        Client::over(ws)
    }

    /// Connects over `wss://` trusting `tls`'s roots.
    pub async fn connect_tls(
        addr: SocketAddr,
        hub: &str,
        tls: std::sync::Arc<rustls::ClientConfig>,
    ) -> Client {
        let url = format!("wss://{addr}/v1/hubs/{hub}/ws");
        let connect = tokio_tungstenite::connect_async_tls_with_config(
            url,
            None,
            true,
            Some(tokio_tungstenite::Connector::Rustls(tls)),
        );
        let (ws, _) = tokio::time::timeout(TIMEOUT, connect)
            .await
            .expect("the TLS and WebSocket handshakes finish in time")
            .expect("the TLS and WebSocket handshakes succeed");
        Client::over(ws)
    }

    fn over(ws: Ws) -> Client {
        Client {
            ws,
            handle: String::new(),
            client_id: fresh_client_id(),
            next_seq: 0,
            pending: VecDeque::new(),
        }
    }

    /// Sends Hello and expects Welcome.
    pub async fn hello(&mut self, token: &str, hub: &str, epoch: u64, cursor: u64) -> Welcome {
        self.send(&Frame::Hello {
            token: token.to_owned(),
            hub: hub.to_owned(),
            epoch,
            cursor,
        })
        .await;
        match self.recv().await {
            Frame::Welcome {
                member,
                role,
                hub_name,
                epoch,
                head,
            } => {
                if self.handle.is_empty() {
                    self.handle = member.clone();
                }
                Welcome {
                    member,
                    role,
                    hub_name,
                    epoch,
                    head,
                }
            }
            other => panic!("expected Welcome after Hello, got {other:?}"),
        }
    }

    pub async fn send(&mut self, frame: &Frame) {
        let bytes = encode_frame(frame).expect("encode frame");
        self.send_message(Message::binary(bytes)).await;
    }

    pub async fn send_message(&mut self, message: Message) {
        tokio::time::timeout(TIMEOUT, self.ws.send(message))
            .await
            .expect("the send finishes in time")
            .expect("the send succeeds");
    }

    /// The next event from the socket, buffered frames first.
    pub async fn next_event(&mut self) -> Event {
        if let Some(frame) = self.pending.pop_front() {
            return Event::Frame(frame);
        }
        self.read_event().await
    }

    async fn read_event(&mut self) -> Event {
        loop {
            let next = tokio::time::timeout(TIMEOUT, self.ws.next())
                .await
                .expect("the relay sends something within the timeout");
            match next {
                None => return Event::Ended("stream ended".to_owned()),
                Some(Err(e)) => return Event::Ended(e.to_string()),
                Some(Ok(Message::Binary(bytes))) => {
                    let frame = decode_frame(&bytes).expect("the relay sends decodable frames");
                    return Event::Frame(frame);
                }
                Some(Ok(Message::Close(close))) => {
                    return Event::Close(close.map(|c: CloseFrame| u16::from(c.code)));
                }
                Some(Ok(Message::Text(t))) => panic!("the relay sent a text message: {t}"),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next frame; panics if the connection ends instead.
    pub async fn recv(&mut self) -> Frame {
        match self.next_event().await {
            Event::Frame(f) => f,
            other => panic!("expected a frame, the connection ended: {other:?}"),
        }
    }

    /// Reads until an `Error` frame, which must carry `code`, then expects the
    /// connection to close. Returns the close code, if the relay sent one.
    pub async fn expect_error_and_close(&mut self, code: ErrorCode) -> Option<u16> {
        match self.recv().await {
            Frame::Error {
                code: got, message, ..
            } => {
                assert_eq!(got, code, "error code (message: {message})")
            }
            other => panic!("expected Error {{ {code:?} }}, got {other:?}"),
        }
        self.expect_close().await
    }

    /// Expects the connection to close next (no more frames).
    pub async fn expect_close(&mut self) -> Option<u16> {
        match self.next_event().await {
            Event::Close(code) => code,
            Event::Ended(why) => panic!("expected a close frame, the stream ended: {why}"),
            Event::Frame(f) => panic!("expected a close, got {f:?}"),
        }
    }

    /// Reads until an `Error` frame (which must carry `code`), keeping other
    /// frames for later; the connection must stay open.
    pub async fn expect_error(&mut self, code: ErrorCode) -> String {
        self.expect_refusal(code).await.0
    }

    /// Like [`Client::expect_error`]; also returns the op and the rule the
    /// `Error` names (set when it refuses one op of a Submit).
    pub async fn expect_refusal(
        &mut self,
        code: ErrorCode,
    ) -> (String, Option<OpId>, Option<String>) {
        let mut skipped = Vec::new();
        let refusal = loop {
            match self.read_event().await {
                Event::Frame(Frame::Error {
                    code: got,
                    message,
                    op,
                    rule,
                }) => {
                    assert_eq!(got, code, "error code (message: {message})");
                    break (message, op, rule);
                }
                Event::Frame(Frame::Ack { acks }) => {
                    panic!("expected Error {{ {code:?} }}, the relay acked {acks:?}")
                }
                Event::Frame(other) => skipped.push(other),
                other => panic!("expected Error {{ {code:?} }}, the connection ended: {other:?}"),
            }
        };
        self.pending.extend(skipped);
        refusal
    }

    /// Sends Ping and waits for the matching Pong. Frames read before it are
    /// kept and returned.
    pub async fn ping(&mut self, nonce: u64) -> Vec<Frame> {
        self.send(&Frame::Ping { nonce }).await;
        let mut before = Vec::new();
        loop {
            match self.read_event().await {
                Event::Frame(Frame::Pong { nonce: n }) if n == nonce => break,
                Event::Frame(other) => before.push(other),
                other => panic!("expected Pong {nonce}, the connection ended: {other:?}"),
            }
        }
        self.pending.extend(before.iter().cloned());
        before
    }

    /// Sends Ping and requires the Pong to be the very next frame: nothing
    /// else was queued for this connection.
    pub async fn expect_nothing_but_pong(&mut self, nonce: u64) {
        assert!(
            self.pending.is_empty(),
            "unexpected frames already read: {:?}",
            self.pending
        );
        let before = self.ping(nonce).await;
        assert!(before.is_empty(), "frames before the Pong: {before:?}");
    }

    /// Builds `n` new ops from this client.
    pub fn make_ops(&mut self, n: usize) -> Vec<Op> {
        (0..n)
            .map(|_| {
                self.next_seq += 1;
                op(self.client_id, self.next_seq, &self.handle)
            })
            .collect()
    }

    /// Submits `n` new ops and returns their acks.
    pub async fn submit(&mut self, n: usize) -> Vec<AckEntry> {
        let ops = self.make_ops(n);
        self.submit_ops(ops).await
    }

    /// Submits `ops` and waits for their `Ack`, keeping other frames.
    pub async fn submit_ops(&mut self, ops: Vec<Op>) -> Vec<AckEntry> {
        let ids: Vec<OpId> = ops.iter().map(|o| o.id).collect();
        self.send(&Frame::Submit { ops }).await;
        let acks = self.wait_ack().await;
        assert_eq!(
            acks.iter().map(|a| a.id).collect::<Vec<_>>(),
            ids,
            "the Ack lists the submitted ops in order"
        );
        acks
    }

    /// Waits for the next `Ack`, keeping other frames for later reads.
    pub async fn wait_ack(&mut self) -> Vec<AckEntry> {
        let mut skipped = Vec::new();
        let acks = loop {
            match self.read_event().await {
                Event::Frame(Frame::Ack { acks }) => break acks,
                Event::Frame(Frame::Error { code, message, .. }) => {
                    panic!("expected Ack, got Error {code:?}: {message}")
                }
                Event::Frame(other) => skipped.push(other),
                other => panic!("expected Ack, the connection ended: {other:?}"),
            }
        };
        self.pending.extend(skipped);
        acks
    }

    /// Reads `Ops` frames until seq `upto` has arrived and returns every op
    /// received, checking each frame is contiguous and starts at its `from`.
    /// Any other frame is a failure.
    pub async fn collect_ops_until(&mut self, upto: u64) -> Vec<(u64, Op)> {
        let mut out: Vec<(u64, Op)> = Vec::new();
        while out.last().map(|(s, _)| *s).unwrap_or(0) < upto {
            match self.recv().await {
                Frame::Ops { from, ops } => {
                    assert!(!ops.is_empty(), "an Ops frame without ops");
                    assert_eq!(from, ops[0].seq, "Ops.from is the first op's seq");
                    for (i, SeqOp { seq, op }) in ops.into_iter().enumerate() {
                        assert_eq!(
                            seq,
                            from + i as u64,
                            "seqs inside an Ops frame are contiguous"
                        );
                        out.push((seq, decode_op(&op).expect("stored ops decode")));
                    }
                }
                other => panic!("expected Ops up to seq {upto}, got {other:?}"),
            }
        }
        out
    }

    /// Sends a close frame and waits (bounded) for the relay to finish.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(TIMEOUT, self.ws.close(None)).await;
    }
}

/// An op from `client` with client seq `seq`: a `set` on a brief.
pub fn op(client: u64, seq: u64, actor: &str) -> Op {
    Op {
        id: OpId {
            client: ClientId(client),
            seq,
        },
        hlc: Hlc {
            wall_ms: 1_764_000_000_000 + seq,
            logical: 0,
        },
        actor: actor.to_owned(),
        entity: EntityKey {
            kind: "brief".to_owned(),
            id: format!("b-{client:x}-{}", seq % 7),
        },
        kind: "set".to_owned(),
        body: body_of_size(&format!("take {seq}"), 0),
    }
}

/// A `set` body (a MessagePack map, as clients write) whose title is
/// `title` padded to at least `size` bytes.
pub fn body_of_size(title: &str, size: usize) -> Vec<u8> {
    let mut text = title.to_owned();
    while text.len() < size {
        text.push('.');
    }
    rmp_serde::to_vec_named(&std::collections::BTreeMap::from([("title", text)]))
        .expect("a map of strings encodes")
}

/// Whether `op` is one the relay wrote itself (a role grant).
pub fn is_relay_op(op: &Op) -> bool {
    op.id.client == RELAY_CLIENT
}

/// Asserts `op` is the relay's grant of `role` to `handle`: the relay's client
/// id and actor, a `set` of `roles:<role>` on `member/<handle>`.
pub fn assert_grant(op: &Op, handle: &str, role: &str) {
    assert_eq!(
        op.id.client, RELAY_CLIENT,
        "a grant uses the relay's client id: {op:?}"
    );
    assert_eq!(op.actor, RELAY_ACTOR, "a grant is by the relay: {op:?}");
    assert_eq!(
        (
            op.entity.kind.as_str(),
            op.entity.id.as_str(),
            op.kind.as_str()
        ),
        ("member", handle, "set"),
        "a grant sets fields of the member: {op:?}"
    );
    let mut fields: std::collections::BTreeMap<String, serde_json::Value> =
        rmp_serde::from_slice(&op.body).expect("a grant's body is a map of fields");
    let tokens: Vec<String> = fields
        .keys()
        .filter(|k| k.starts_with("token:"))
        .cloned()
        .collect();
    assert_eq!(
        tokens.len(),
        1,
        "a grant names the token whose first use it records: {fields:?}"
    );
    for t in &tokens {
        assert_eq!(fields.remove(t), Some(serde_json::Value::Bool(true)));
    }
    assert_eq!(
        fields,
        std::collections::BTreeMap::from([(
            format!("roles:{role}"),
            serde_json::Value::Bool(true)
        )]),
        "the grant gives @{handle} the role {role}"
    );
}

/// Asserts `ops` carry seqs exactly `first..=last`, in order.
pub fn assert_seqs(ops: &[(u64, Op)], first: u64, last: u64) {
    let seqs: Vec<u64> = ops.iter().map(|(s, _)| *s).collect();
    let want: Vec<u64> = (first..=last).collect();
    assert_eq!(seqs, want, "seqs {first}..={last}, in order, once each");
}

/// An HTTP response: status code, headers (lowercased names) and body.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A minimal HTTP/1.1 request over a fresh connection (`Connection: close`).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    tokio::time::timeout(TIMEOUT, http_inner(addr, method, path, headers, body))
        .await
        .expect("the HTTP exchange finishes in time")
        .expect("the HTTP exchange succeeds")
}

/// Like [`http`] but returns an error instead of failing (for polling).
pub async fn try_http(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<HttpResponse> {
    match tokio::time::timeout(TIMEOUT, http_inner(addr, method, path, &[], &[])).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out",
        )),
    }
}

async fn http_inner(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    // The relay may answer (e.g. 413) without reading the body; a failed body
    // write is fine as long as a response arrives.
    let _ = stream.write_all(body).await;
    let _ = stream.flush().await;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // A reset after the response was sent still leaves a response.
            Err(e) if raw.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    parse_response(&raw)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad HTTP response"))
}

fn parse_response(raw: &[u8]) -> Option<HttpResponse> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Some(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A small deterministic generator, so load patterns are reproducible.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// A masked client WebSocket frame whose first byte (FIN, RSV bits,
/// opcode) is `first`, as a client library writes it.
pub fn masked_frame(first: u8, mask: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    out
}

/// What became of one op submitted with [`Client::submit_judged`].
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Stored(u64),
    Refused {
        code: ErrorCode,
        rule: Option<String>,
        message: String,
    },
}

impl Client {
    /// Submits `ops` in one Submit and waits until each is acked or refused.
    /// Fanned-out `Ops` frames are skipped (callers check the log itself).
    pub async fn submit_judged(&mut self, ops: &[Op]) -> Vec<Outcome> {
        use std::collections::{HashMap, HashSet};
        let ids: HashSet<OpId> = ops.iter().map(|o| o.id).collect();
        assert_eq!(ids.len(), ops.len(), "distinct op ids in one Submit");
        self.send(&Frame::Submit { ops: ops.to_vec() }).await;
        let mut outcomes: HashMap<OpId, Outcome> = HashMap::new();
        while outcomes.len() < ops.len() {
            match self.next_event().await {
                Event::Frame(Frame::Ops { .. }) => {}
                Event::Frame(Frame::Ping { nonce }) => self.send(&Frame::Pong { nonce }).await,
                Event::Frame(Frame::Error {
                    code,
                    message,
                    op: Some(id),
                    rule,
                }) => {
                    assert!(ids.contains(&id), "an Error for op {id} nobody sent");
                    let first = outcomes.insert(
                        id,
                        Outcome::Refused {
                            code,
                            rule,
                            message,
                        },
                    );
                    assert!(first.is_none(), "op {id} answered twice");
                }
                Event::Frame(Frame::Ack { acks }) => {
                    for a in acks {
                        assert!(ids.contains(&a.id), "an Ack for op {} nobody sent", a.id);
                        let first = outcomes.insert(a.id, Outcome::Stored(a.seq));
                        assert!(first.is_none(), "op {} answered twice", a.id);
                    }
                }
                other => panic!(
                    "@{}: expected Acks or op Errors, got {other:?}",
                    self.handle
                ),
            }
        }
        ops.iter().map(|o| outcomes[&o.id].clone()).collect()
    }
}
