//! The relay's WebSocket layer against RFC 6455, over raw TCP: a hand-written
//! upgrade request and hand-built frames, so every byte the relay reads is one
//! the test chose, and every byte it answers is read as it arrives.

mod common;

use common::{TIMEOUT, TestRelay, XorShift, http};
use spoke_relay::proto::{ErrorCode, Frame, decode_frame, encode_frame};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xa;
const FIN: u8 = 0x80;

/// The relay's answer to an upgrade request.
#[derive(Debug)]
struct UpgradeResponse {
    status: u16,
    /// Lowercased names.
    headers: Vec<(String, String)>,
    body: String,
}

impl UpgradeResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends an upgrade request for `hub`'s socket with `headers` after the
/// request line and `Host`, and reads the response head (and the body of a
/// refusal). Returns the socket and any bytes read past the response head.
async fn request_upgrade(
    addr: SocketAddr,
    hub: &str,
    headers: &[(&str, &str)],
) -> (UpgradeResponse, TcpStream, Vec<u8>) {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .expect("connect to the relay");
        let mut request = format!("GET /v1/hubs/{hub}/ws HTTP/1.1\r\nHost: {addr}\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send the upgrade request");
        let mut raw = Vec::new();
        let head_end = loop {
            if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.expect("read the response");
            assert!(n > 0, "the relay closed before answering the upgrade");
            raw.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(raw[..head_end].to_vec()).expect("an ASCII response head");
        let mut rest = raw[head_end + 4..].to_vec();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut response = UpgradeResponse {
            status,
            headers,
            body: String::new(),
        };
        if status != 101 {
            let len: usize = response
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .expect("a refusal says how long its body is");
            while rest.len() < len {
                let mut chunk = [0u8; 4096];
                let n = stream.read(&mut chunk).await.expect("read the body");
                assert!(n > 0, "the refusal's body was cut");
                rest.extend_from_slice(&chunk[..n]);
            }
            response.body = String::from_utf8_lossy(&rest[..len]).into_owned();
            rest.drain(..len);
        }
        (response, stream, rest)
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .expect("the upgrade exchange finishes in time")
}

/// The standard headers of an upgrade with `key`.
fn upgrade_headers(key: &str) -> [(&str, &str); 4] {
    [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", key),
    ]
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `Sec-WebSocket-Accept` for `key`, computed here from RFC 6455 §4.2.2.
fn expected_accept(key: &str) -> String {
    use sha1::{Digest, Sha1};
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64(&sha.finalize())
}

/// A frame the relay sent.
#[derive(Debug)]
struct ServerFrame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

/// What the relay said before and with its close frame.
#[derive(Debug)]
struct Closed {
    /// Protocol frames before the close.
    frames: Vec<Frame>,
    code: Option<u16>,
    reason: String,
}

impl Closed {
    /// Asserts the relay closed with `code` after an `Error` naming the bad
    /// frame, whose message mentions `mention`.
    fn assert_refused(&self, code: u16, mention: &str, what: &str) {
        assert_eq!(self.code, Some(code), "{what}: close code ({self:?})");
        let said = self.frames.iter().any(|f| {
            matches!(f, Frame::Error { code: ErrorCode::BadFrame, message, .. } if message.contains(mention))
        });
        assert!(said, "{what}: an Error mentioning {mention:?} ({self:?})");
        assert!(!self.reason.is_empty(), "{what}: the close says why");
    }
}

/// An upgraded socket spoken to byte by byte.
struct Raw {
    stream: TcpStream,
    /// Bytes read and not yet parsed.
    buf: Vec<u8>,
    /// Payloads of WebSocket pongs read so far.
    pongs: Vec<Vec<u8>>,
    rng: XorShift,
}

impl Raw {
    /// Upgrades a socket to `hub`'s WebSocket with a fresh key and checks the
    /// relay's answer to it.
    async fn connect(addr: SocketAddr, hub: &str) -> Raw {
        let mut rng = XorShift(0x5eed_0fca_1100 ^ u64::from(common::fresh_client_id() as u32));
        let nonce: Vec<u8> = (0..16).map(|_| rng.next_u64() as u8).collect();
        let key = base64(&nonce);
        let (response, stream, rest) = request_upgrade(addr, hub, &upgrade_headers(&key)).await;
        assert_eq!(response.status, 101, "{response:?}");
        assert_eq!(
            response.header("sec-websocket-accept"),
            Some(expected_accept(&key).as_str()),
            "the accept key answers the client's key"
        );
        Raw {
            stream,
            buf: rest,
            pongs: Vec::new(),
            rng,
        }
    }

    /// Connects, says Hello and reads up to the Welcome and the log after it.
    async fn join(relay: &TestRelay, hub: &str, token: &str) -> Raw {
        let mut raw = Raw::connect(relay.addr, hub).await;
        raw.send_frame(&Frame::Hello {
            token: token.to_owned(),
            hub: hub.to_owned(),
            epoch: 0,
            cursor: 0,
        })
        .await;
        match raw.read_protocol_frame().await {
            Some(Frame::Welcome { .. }) => {}
            other => panic!("expected Welcome, got {other:?}"),
        }
        raw.sync(1).await;
        raw
    }

    /// A masked client frame whose first byte (FIN, RSV bits, opcode) is
    /// `first`, with a fresh mask.
    fn frame(&mut self, first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = self.rng.next_u64().to_le_bytes();
        common::masked_frame(first, [mask[0], mask[1], mask[2], mask[3]], payload)
    }

    /// A close frame's payload: `code` and `reason`.
    fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason);
        payload
    }

    async fn send(&mut self, bytes: &[u8]) {
        tokio::time::timeout(TIMEOUT, self.stream.write_all(bytes))
            .await
            .expect("the write finishes in time")
            .expect("the relay takes the bytes");
    }

    /// Sends a protocol frame as one binary message.
    async fn send_frame(&mut self, frame: &Frame) {
        let bytes = encode_frame(frame).expect("encode a frame");
        let wire = self.frame(FIN | OP_BINARY, &bytes);
        self.send(&wire).await;
    }

    /// The next frame from the relay, or `None` when it ended the connection
    /// between frames.
    async fn read_frame(&mut self) -> Option<ServerFrame> {
        loop {
            if let Some(frame) = self.parse() {
                return Some(frame);
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = tokio::time::timeout(TIMEOUT, self.stream.read(&mut chunk))
                .await
                .expect("the relay sends something within the timeout")
                .expect("the relay's socket reads cleanly");
            if n == 0 {
                assert!(
                    self.buf.is_empty(),
                    "the relay ended the connection inside a frame: {:?}",
                    self.buf
                );
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Takes one whole server frame from the buffer, checking it is one a
    /// server may send: unmasked, no reserved bits.
    fn parse(&mut self) -> Option<ServerFrame> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        assert_eq!(b[0] & 0x70, 0, "the relay set reserved bits");
        assert_eq!(b[1] & 0x80, 0, "the relay masked a frame");
        let (len, header) = match b[1] & 0x7f {
            126 => (u16::from_be_bytes([*b.get(2)?, *b.get(3)?]) as usize, 4),
            127 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(b.get(2..10)?);
                (u64::from_be_bytes(n) as usize, 10)
            }
            n => (n as usize, 2),
        };
        if b.len() < header + len {
            return None;
        }
        let frame = ServerFrame {
            fin: b[0] & 0x80 != 0,
            opcode: b[0] & 0x0f,
            payload: b[header..header + len].to_vec(),
        };
        self.buf.drain(..header + len);
        Some(frame)
    }

    /// The next protocol frame (pongs are kept aside), or `None` if a close
    /// or the end came first.
    async fn read_protocol_frame(&mut self) -> Option<Frame> {
        loop {
            let frame = self.read_frame().await?;
            assert!(frame.fin, "the relay fragments nothing");
            match frame.opcode {
                OP_BINARY => {
                    return Some(
                        decode_frame(&frame.payload).expect("the relay sends decodable frames"),
                    );
                }
                OP_PONG => self.pongs.push(frame.payload),
                OP_CLOSE => return None,
                other => panic!("the relay sent opcode {other:#x}"),
            }
        }
    }

    /// Sends a protocol Ping and reads up to its Pong: the connection is open
    /// and everything the relay said before is read. Returns that.
    async fn sync(&mut self, nonce: u64) -> Vec<Frame> {
        self.send_frame(&Frame::Ping { nonce }).await;
        let mut before = Vec::new();
        loop {
            match self.read_protocol_frame().await {
                Some(Frame::Pong { nonce: n }) if n == nonce => return before,
                Some(other) => before.push(other),
                None => panic!("expected Pong {nonce}, the connection ended after {before:?}"),
            }
        }
    }

    /// Reads up to the relay's close frame, then expects the relay to end the
    /// connection.
    async fn until_close(&mut self) -> Closed {
        let mut frames = Vec::new();
        loop {
            let Some(frame) = self.read_frame().await else {
                panic!("the connection ended without a close frame after {frames:?}");
            };
            match frame.opcode {
                OP_BINARY => frames
                    .push(decode_frame(&frame.payload).expect("the relay sends decodable frames")),
                OP_CLOSE => {
                    let p = &frame.payload;
                    assert!(
                        p.len() != 1 && p.len() <= 125,
                        "a close payload of {} bytes",
                        p.len()
                    );
                    let code = (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]]));
                    let reason = String::from_utf8(p.get(2..).unwrap_or_default().to_vec())
                        .expect("the relay's close reason is UTF-8");
                    assert!(
                        self.read_frame().await.is_none(),
                        "the relay ends the connection after its close frame"
                    );
                    return Closed {
                        frames,
                        code,
                        reason,
                    };
                }
                other => panic!("the relay sent opcode {other:#x}"),
            }
        }
    }

    /// Everything the relay sends until it ends the connection.
    async fn rest(&mut self) -> Vec<u8> {
        let mut rest = std::mem::take(&mut self.buf);
        tokio::time::timeout(TIMEOUT, self.stream.read_to_end(&mut rest))
            .await
            .expect("the relay ends the connection within the timeout")
            .expect("the relay ends the connection cleanly");
        rest
    }
}

/// Builds the bytes a test sends, from a connection (for its masks).
type Build = Box<dyn Fn(&mut Raw) -> Vec<u8>>;

/// A relay with one hub and a lead's token, the member's role granted.
async fn relay_with_member() -> (TestRelay, String, String) {
    let relay = TestRelay::start().await;
    let hub = relay.hub("Studio");
    let ([token], _) = relay.members(&hub, [("ana", "lead")]).await;
    (relay, hub, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_codes_a_peer_may_not_send_are_answered_with_1002() {
    let (relay, hub, token) = relay_with_member().await;
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        let mut raw = Raw::join(&relay, &hub, &token).await;
        let close = raw.frame(FIN | OP_CLOSE, &Raw::close_payload(code, b"bye"));
        raw.send(&close).await;
        raw.until_close().await.assert_refused(
            1002,
            &format!("close code {code}"),
            &format!("close code {code}"),
        );
    }

    // A one-byte payload holds half a code.
    let mut raw = Raw::join(&relay, &hub, &token).await;
    let close = raw.frame(FIN | OP_CLOSE, &[0x03]);
    raw.send(&close).await;
    raw.until_close()
        .await
        .assert_refused(1002, "one-byte", "a one-byte close payload");

    // The same before Hello.
    let mut raw = Raw::connect(relay.addr, &hub).await;
    let close = raw.frame(FIN | OP_CLOSE, &Raw::close_payload(1005, b""));
    raw.send(&close).await;
    raw.until_close()
        .await
        .assert_refused(1002, "close code 1005", "close code 1005 before Hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_reason_that_is_not_utf8_is_answered_with_1007() {
    let (relay, hub, token) = relay_with_member().await;
    let bad_reasons: [&[u8]; 4] = [
        &[0xff],
        b"cut \xe2\x82",
        // An overlong '/', and a UTF-16 surrogate: neither is UTF-8.
        &[0xc0, 0xaf],
        &[0xed, 0xa0, 0x80],
    ];
    for reason in bad_reasons {
        let mut raw = Raw::join(&relay, &hub, &token).await;
        let close = raw.frame(FIN | OP_CLOSE, &Raw::close_payload(1000, reason));
        raw.send(&close).await;
        raw.until_close()
            .await
            .assert_refused(1007, "close reason", &format!("reason {reason:?}"));
    }
    let mut raw = Raw::connect(relay.addr, &hub).await;
    let close = raw.frame(FIN | OP_CLOSE, &Raw::close_payload(4000, &[0xff]));
    raw.send(&close).await;
    raw.until_close()
        .await
        .assert_refused(1007, "close reason", "a bad reason before Hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_close_codes_and_an_empty_close_get_a_normal_close() {
    let (relay, hub, token) = relay_with_member().await;
    let payloads = [
        Raw::close_payload(1000, b""),
        Raw::close_payload(1001, "gone ✓".as_bytes()),
        Raw::close_payload(1014, b""),
        Raw::close_payload(3000, b"app"),
        Raw::close_payload(4999, &[b'x'; 123]),
        Vec::new(),
    ];
    for payload in payloads {
        let mut raw = Raw::join(&relay, &hub, &token).await;
        let close = raw.frame(FIN | OP_CLOSE, &payload);
        raw.send(&close).await;
        let closed = raw.until_close().await;
        assert_eq!(
            (closed.code, closed.reason.as_str()),
            (Some(1000), ""),
            "close payload {payload:?}: {closed:?}"
        );
        assert!(
            closed.frames.is_empty(),
            "nothing but the close answers a valid close: {closed:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_is_refused_as_a_frame_and_text_that_is_not_utf8_ends_with_1007() {
    let (relay, hub, token) = relay_with_member().await;

    // Valid text, whole or with a character split between fragments, is a
    // bad frame of the protocol: refused, and the connection stays open.
    let mut raw = Raw::join(&relay, &hub, &token).await;
    let whole = raw.frame(FIN | OP_TEXT, "héllo".as_bytes());
    raw.send(&whole).await;
    let mut split = raw.frame(OP_TEXT, &"hé".as_bytes()[..2]);
    split.extend(raw.frame(FIN | OP_PING, b"between"));
    split.extend(raw.frame(FIN | OP_CONTINUATION, &"hé".as_bytes()[2..]));
    raw.send(&split).await;
    let mut said = Vec::new();
    for nonce in [10, 11] {
        said.extend(raw.sync(nonce).await);
    }
    let refusals = said
        .iter()
        .filter(|f| matches!(f, Frame::Error { code: ErrorCode::BadFrame, message, .. } if message.contains("text")))
        .count();
    assert_eq!(refusals, 2, "each text message is refused: {said:?}");
    assert_eq!(
        raw.pongs,
        vec![b"between".to_vec()],
        "a ping between fragments is answered"
    );

    // Text that is not UTF-8 ends the connection with 1007: in one frame, in
    // a later fragment (refused before the message ends), or a character cut
    // by the message's end.
    let cases: [(&str, &[&[u8]]); 4] = [
        ("one frame", &[b"ok \xff"]),
        ("a later fragment", &[b"ok ", b"\xc3\x28"]),
        ("a cut character", &[b"ok \xe2\x82", b""]),
        ("a surrogate", &[b"\xed\xa0\x80"]),
    ];
    for (what, fragments) in cases {
        let mut raw = Raw::join(&relay, &hub, &token).await;
        let last = fragments.len() - 1;
        let mut bytes = Vec::new();
        for (i, fragment) in fragments.iter().enumerate() {
            let opcode = if i == 0 { OP_TEXT } else { OP_CONTINUATION };
            // The later-fragment case never finishes its message.
            let fin = if i == last && what != "a later fragment" {
                FIN
            } else {
                0
            };
            bytes.extend(raw.frame(fin | opcode, fragment));
        }
        raw.send(&bytes).await;
        let closed = raw.until_close().await;
        closed.assert_refused(1007, "not UTF-8", what);
    }

    // Before Hello: bad text is 1007, valid text is still the wrong first frame.
    let mut raw = Raw::connect(relay.addr, &hub).await;
    let bad = raw.frame(FIN | OP_TEXT, b"\xff");
    raw.send(&bad).await;
    raw.until_close()
        .await
        .assert_refused(1007, "not UTF-8", "bad text before Hello");
    let mut raw = Raw::connect(relay.addr, &hub).await;
    let text = raw.frame(FIN | OP_TEXT, b"hello");
    raw.send(&text).await;
    raw.until_close()
        .await
        .assert_refused(1002, "binary Hello", "text before Hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_that_break_the_framing_rules_are_answered_with_1002() {
    let (relay, hub, token) = relay_with_member().await;
    let mut cases: Vec<(String, &str, Build)> = Vec::new();
    for rsv in [0x40u8, 0x20, 0x10] {
        cases.push((
            format!("reserved bit {rsv:#x}"),
            "reserved bits",
            Box::new(move |r| r.frame(FIN | rsv | OP_BINARY, b"x")),
        ));
    }
    cases.push((
        "a reserved bit on a ping".into(),
        "reserved bits",
        Box::new(|r| r.frame(FIN | 0x40 | OP_PING, b"")),
    ));
    for opcode in (0x3u8..=0x7).chain(0xb..=0xf) {
        cases.push((
            format!("opcode {opcode:#x}"),
            "unknown opcode",
            Box::new(move |r| r.frame(FIN | opcode, b"x")),
        ));
    }
    cases.push((
        "a fragmented ping".into(),
        "control frames",
        Box::new(|r| r.frame(OP_PING, b"x")),
    ));
    cases.push((
        "a fragmented close".into(),
        "control frames",
        Box::new(|r| r.frame(OP_CLOSE, &Raw::close_payload(1000, b""))),
    ));
    cases.push((
        "a 126-byte ping".into(),
        "at most 125",
        Box::new(|r| r.frame(FIN | OP_PING, &[7; 126])),
    ));
    cases.push((
        "a 200-byte close".into(),
        "at most 125",
        Box::new(|r| r.frame(FIN | OP_CLOSE, &Raw::close_payload(1000, &[b'x'; 198]))),
    ));
    cases.push((
        "a continuation without a start".into(),
        "without a message",
        Box::new(|r| r.frame(FIN | OP_CONTINUATION, b"x")),
    ));
    cases.push((
        "a new message inside a fragmented one".into(),
        "before the last one ended",
        Box::new(|r| {
            let mut bytes = r.frame(OP_BINARY, b"first");
            bytes.extend(r.frame(FIN | OP_BINARY, b"second"));
            bytes
        }),
    ));
    cases.push((
        "an unmasked frame".into(),
        "masked",
        Box::new(|_| vec![FIN | OP_BINARY, 1, b'x']),
    ));
    for (what, mention, build) in cases {
        let mut raw = Raw::join(&relay, &hub, &token).await;
        let bytes = build(&mut raw);
        raw.send(&bytes).await;
        raw.until_close().await.assert_refused(1002, mention, &what);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_with_a_bad_key_are_refused_with_400() {
    let (relay, hub, _) = relay_with_member().await;
    let keys = [
        (
            "not base64".to_owned(),
            "not base64 at all!!!!!!!".to_owned(),
        ),
        ("15 bytes".to_owned(), base64(&[1; 15])),
        ("17 bytes".to_owned(), base64(&[1; 17])),
        ("an empty key".to_owned(), String::new()),
        ("a long key".to_owned(), base64(&[1; 4096])),
    ];
    for (what, key) in &keys {
        let (response, _, _) = request_upgrade(relay.addr, &hub, &upgrade_headers(key)).await;
        assert_eq!(response.status, 400, "{what}: {response:?}");
        assert!(
            response.body.contains("Sec-WebSocket-Key"),
            "{what}: {response:?}"
        );
        assert!(response.header("sec-websocket-accept").is_none(), "{what}");
    }

    // No key at all, or two.
    let mut headers = upgrade_headers("").to_vec();
    headers.pop();
    let (response, _, _) = request_upgrade(relay.addr, &hub, &headers).await;
    assert_eq!(response.status, 400, "{response:?}");
    assert!(
        response.body.contains("no Sec-WebSocket-Key"),
        "{response:?}"
    );
    let key = base64(&[9; 16]);
    let mut headers = upgrade_headers(&key).to_vec();
    headers.push(("Sec-WebSocket-Key", &key));
    let (response, _, _) = request_upgrade(relay.addr, &hub, &headers).await;
    assert_eq!(response.status, 400, "{response:?}");

    // Another version is told which one this relay speaks.
    let mut headers = upgrade_headers(&key).to_vec();
    headers[2] = ("Sec-WebSocket-Version", "8");
    let (response, _, _) = request_upgrade(relay.addr, &hub, &headers).await;
    assert_eq!(response.status, 426, "{response:?}");
    assert_eq!(response.header("sec-websocket-version"), Some("13"));

    // The key of RFC 6455's example gets the example's answer.
    let (response, _, _) = request_upgrade(
        relay.addr,
        &hub,
        &upgrade_headers("dGhlIHNhbXBsZSBub25jZQ=="),
    )
    .await;
    assert_eq!(response.status, 101, "{response:?}");
    assert_eq!(
        response.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
}

/// Waits until the relay counts `want` open WebSocket connections.
async fn wait_for_connections(relay: &TestRelay, want: u64) {
    let metrics = &relay.running.relay.metrics;
    let waited = tokio::time::timeout(TIMEOUT, async {
        while metrics.connections.load(Relaxed) != want {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "{} connections open, expected {want}",
        metrics.connections.load(Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_in_the_middle_of_a_frame_is_let_go_quietly_and_others_keep_working() {
    let relay = TestRelay::start().await;
    let hub = relay.hub("Studio");
    let ([ana, bo], head) = relay.members(&hub, [("ana", "lead"), ("bo", "lead")]).await;
    let (mut b, _) = relay.join(&hub, &bo, "bo").await;
    b.collect_ops_until(head).await;
    wait_for_connections(&relay, 1).await;

    let cuts: Vec<(&str, Build)> = vec![
        (
            "one byte of a header",
            Box::new(|r| r.frame(FIN | OP_BINARY, b"x")[..1].to_vec()),
        ),
        (
            "a header without its mask",
            Box::new(|r| r.frame(FIN | OP_BINARY, &[0; 300])[..5].to_vec()),
        ),
        (
            "half a payload",
            Box::new(|r| r.frame(FIN | OP_BINARY, &[0; 300])[..150].to_vec()),
        ),
        (
            "a first fragment",
            Box::new(|r| r.frame(OP_BINARY, b"first")),
        ),
        (
            "a fragment and half the next",
            Box::new(|r| {
                let mut bytes = r.frame(OP_BINARY, b"first");
                bytes.extend(&r.frame(FIN | OP_CONTINUATION, b"second")[..8]);
                bytes
            }),
        ),
    ];
    for (what, cut) in cuts {
        let mut a = Raw::join(&relay, &hub, &ana).await;
        let bytes = cut(&mut a);
        a.send(&bytes).await;
        // The client stops sending; the relay has nobody to explain anything
        // to, so it sends nothing (no Error, no 1011) and ends its side.
        a.stream.shutdown().await.expect("half-close the socket");
        let rest = a.rest().await;
        assert!(rest.is_empty(), "{what}: the relay sent {rest:?}");
    }

    // A client that drops its socket outright after half a frame.
    let mut a = Raw::join(&relay, &hub, &ana).await;
    let half = a.frame(FIN | OP_BINARY, &[0; 64]);
    a.send(&half[..20]).await;
    drop(a);

    // Every one of those connections ended; the member who stayed works on.
    wait_for_connections(&relay, 1).await;
    let acks = b.submit(2).await;
    assert_eq!(acks.len(), 2);
    let ops = b.collect_ops_until(acks[1].seq).await;
    assert_eq!(ops.len(), 2, "bo sees its ops fanned out");
    b.expect_nothing_but_pong(42).await;
    // So does a member who comes after, and the relay still answers HTTP.
    let mut a = Raw::join(&relay, &hub, &ana).await;
    a.sync(43).await;
    let r = http(relay.addr, "GET", "/healthz", &[], &[]).await;
    assert_eq!(r.status, 200);
}
