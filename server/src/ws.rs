//! The WebSocket layer the relay speaks (RFC 6455, server side, no
//! extensions): the upgrade handshake, a reader for masked client frames with
//! the protocol's size limits, and encoders for the unmasked server frames.
//!
//! The relay writes its frames itself because a server frame is the same
//! bytes for every receiver: a batch is framed once and those bytes go to
//! every member's socket unchanged.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Close codes the relay sends.
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const AWAY: u16 = 1001;
    pub const PROTOCOL: u16 = 1002;
    /// Never sent (RFC 6455 §7.4.1): names a connection that ended without a
    /// close frame, where nothing could be said to the peer.
    pub const ABNORMAL: u16 = 1006;
    /// A message's data is not what its type says (a text message or a close
    /// reason that is not UTF-8).
    pub const INVALID_DATA: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const SIZE: u16 = 1009;
    pub const ERROR: u16 = 1011;
    pub const AGAIN: u16 = 1013;

    /// Whether a peer may send `code` in a close frame (RFC 6455 §7.4): the
    /// codes the RFC defines for use on the wire, those IANA registered since
    /// (1012-1014), and the ranges for libraries and applications. 1004 is
    /// reserved, 1005, 1006 and 1015 only name local events, and everything
    /// else is unassigned or out of range.
    pub fn is_valid(code: u16) -> bool {
        matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xa;

/// An upgrade request the relay refuses: the HTTP status and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub reason: String,
}

impl Refusal {
    fn new(status: StatusCode, reason: &str) -> Self {
        Refusal {
            status,
            reason: reason.to_owned(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.reason)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let upgrade_required = self.status == StatusCode::UPGRADE_REQUIRED;
        let mut response = (self.status, self.reason).into_response();
        if upgrade_required {
            // A 426 names what to upgrade to (RFC 9110 §15.5.22) and the
            // WebSocket versions this server speaks (RFC 6455 §4.2.2).
            let headers = response.headers_mut();
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        response
    }
}

/// The client's `Sec-WebSocket-Key`, or why the upgrade request is refused
/// (RFC 6455 §4.2.1): a request that is not an upgrade at all, or asks for
/// another WebSocket version, gets 426; a malformed upgrade gets 400.
pub fn check_upgrade(headers: &HeaderMap) -> Result<&str, Refusal> {
    let has_token = |name: &str, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
                .unwrap_or(false)
        })
    };
    if !has_token("upgrade", "websocket") {
        return Err(Refusal::new(
            StatusCode::UPGRADE_REQUIRED,
            "this endpoint speaks WebSocket: send `Upgrade: websocket`",
        ));
    }
    if !has_token("connection", "upgrade") {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "a WebSocket upgrade needs `Connection: Upgrade`",
        ));
    }
    if !has_token("sec-websocket-version", "13") {
        return Err(Refusal::new(
            StatusCode::UPGRADE_REQUIRED,
            "only WebSocket version 13 is supported",
        ));
    }
    let mut keys = headers.get_all("sec-websocket-key").iter();
    let key = match (keys.next(), keys.next()) {
        (Some(key), None) => key.to_str().map(str::trim).unwrap_or(""),
        (None, _) => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "the WebSocket upgrade has no Sec-WebSocket-Key",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "the WebSocket upgrade has more than one Sec-WebSocket-Key",
            ));
        }
    };
    if !is_client_key(key) {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Key must be the base64 of 16 bytes",
        ));
    }
    Ok(key)
}

/// Whether `key` is a client's nonce as RFC 6455 §4.1 defines it: 16 bytes
/// in padded base64, so exactly 24 characters.
fn is_client_key(key: &str) -> bool {
    use base64::Engine;
    // Checking the length first keeps a long header from being decoded.
    key.len() == 24
        && base64::engine::general_purpose::STANDARD
            .decode(key)
            .is_ok_and(|bytes| bytes.len() == 16)
}

/// The `Sec-WebSocket-Accept` answer to a client's key.
pub fn accept_key(key: &str) -> String {
    use base64::Engine;
    use sha1::{Digest, Sha1};
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// Appends one unfragmented, unmasked server frame to `out`.
fn put_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(len as u8);
    } else if len <= u16::MAX as usize {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// Bytes of a frame header for a payload of `len`.
fn header_len(len: usize) -> usize {
    if len < 126 {
        2
    } else if len <= u16::MAX as usize {
        4
    } else {
        10
    }
}

/// A binary message as wire bytes.
pub fn binary(payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(header_len(payload.len()) + payload.len());
    put_frame(&mut out, OP_BINARY, payload);
    Bytes::from(out)
}

/// Several binary messages back to back as one buffer of wire bytes.
pub fn binaries<'a>(payloads: impl IntoIterator<Item = &'a [u8]>) -> Bytes {
    let mut out = Vec::new();
    for p in payloads {
        out.reserve(header_len(p.len()) + p.len());
        put_frame(&mut out, OP_BINARY, p);
    }
    Bytes::from(out)
}

/// A close frame with a code and a reason (cut to fit a control frame).
pub fn close(code: u16, reason: &str) -> Bytes {
    let mut payload = code.to_be_bytes().to_vec();
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    let mut out = Vec::with_capacity(2 + payload.len());
    put_frame(&mut out, OP_CLOSE, &payload);
    Bytes::from(out)
}

/// The answer to a ping.
pub fn pong(payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(2 + payload.len());
    put_frame(&mut out, OP_PONG, payload);
    Bytes::from(out)
}

/// One message from a client.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Binary(Bytes),
    /// A text message, checked to be UTF-8; the protocol has no use for its
    /// content.
    Text,
    Ping(Bytes),
    Pong,
    /// A close frame with its code, which is one a peer may send, if any.
    Close(Option<u16>),
}

#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// The socket failed or ended in the middle of a message: the peer is
    /// gone, or nothing more can be read from it.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("WebSocket protocol error: {0}")]
    Protocol(String),
    /// A text message or a close reason that is not UTF-8 (RFC 6455 §8.1).
    #[error("invalid WebSocket payload: {0}")]
    InvalidData(String),
    #[error("{0}")]
    TooLarge(String),
}

impl WsError {
    /// The close code that answers this error, or `None` when the socket
    /// failed or ended: there is nobody left to answer.
    pub fn close_code(&self) -> Option<u16> {
        match self {
            WsError::Io(_) => None,
            WsError::Protocol(_) => Some(close_code::PROTOCOL),
            WsError::InvalidData(_) => Some(close_code::INVALID_DATA),
            WsError::TooLarge(_) => Some(close_code::SIZE),
        }
    }
}

/// A fragmented message being received.
struct Partial {
    opcode: u8,
    bytes: BytesMut,
    /// For text: how many leading bytes are known to be whole UTF-8, so each
    /// fragment is checked once (and a bad one refused before the message
    /// ends) instead of the whole message again.
    checked: usize,
}

/// Reads client messages: unmasks frames, joins fragments, answers nothing
/// itself (the caller sends pongs and closes), and refuses frames or messages
/// over the limits before buffering them.
pub struct Reader<R> {
    io: R,
    buf: BytesMut,
    partial: Option<Partial>,
    max_frame: usize,
    max_message: usize,
    read_size: usize,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    /// `already` holds bytes read past the upgrade request, if any.
    pub fn new(
        io: R,
        already: Bytes,
        max_frame: usize,
        max_message: usize,
        read_size: usize,
    ) -> Self {
        let mut buf = BytesMut::with_capacity(read_size.max(already.len()));
        buf.extend_from_slice(&already);
        Reader {
            io,
            buf,
            partial: None,
            max_frame,
            max_message,
            read_size,
        }
    }

    /// The next message, or `None` when the client closed the socket between
    /// messages. A socket that ends inside a frame or a fragmented message is
    /// an [`WsError::Io`] error: the client went away without a close frame.
    /// Cancel-safe: all state lives in the reader.
    pub async fn next(&mut self) -> Result<Option<Incoming>, WsError> {
        loop {
            if let Some(message) = self.parse()? {
                return Ok(Some(message));
            }
            if self.buf.capacity() - self.buf.len() < self.read_size {
                self.buf.reserve(self.read_size);
            }
            if self.io.read_buf(&mut self.buf).await? == 0 {
                if self.buf.is_empty() && self.partial.is_none() {
                    return Ok(None);
                }
                return Err(WsError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the connection closed in the middle of a message",
                )));
            }
        }
    }

    /// Takes complete frames from the buffer until one completes a message.
    fn parse(&mut self) -> Result<Option<Incoming>, WsError> {
        loop {
            let Some((fin, opcode, header, len)) = self.header()? else {
                return Ok(None);
            };
            if self.buf.len() < header + len {
                self.buf.reserve(header + len - self.buf.len());
                return Ok(None);
            }
            let mask = [
                self.buf[header - 4],
                self.buf[header - 3],
                self.buf[header - 2],
                self.buf[header - 1],
            ];
            self.buf.advance(header);
            let mut payload = self.buf.split_to(len);
            unmask(&mut payload, mask);
            match opcode {
                OP_CLOSE => return Ok(Some(Incoming::Close(close_payload(&payload)?))),
                OP_PING => return Ok(Some(Incoming::Ping(payload.freeze()))),
                OP_PONG => return Ok(Some(Incoming::Pong)),
                OP_CONTINUATION => {
                    let Some(mut partial) = self.partial.take() else {
                        return Err(WsError::Protocol(
                            "a continuation frame without a message to continue".into(),
                        ));
                    };
                    partial.bytes.extend_from_slice(&payload);
                    if partial.opcode == OP_TEXT {
                        partial.checked = check_text(&partial.bytes, partial.checked, fin)?;
                    }
                    if fin {
                        return Ok(Some(message(partial.opcode, partial.bytes.freeze())));
                    }
                    self.partial = Some(partial);
                }
                _ => {
                    if self.partial.is_some() {
                        return Err(WsError::Protocol(
                            "a new message started before the last one ended".into(),
                        ));
                    }
                    let checked = if opcode == OP_TEXT {
                        check_text(&payload, 0, fin)?
                    } else {
                        0
                    };
                    if fin {
                        return Ok(Some(message(opcode, payload.freeze())));
                    }
                    self.partial = Some(Partial {
                        opcode,
                        bytes: payload,
                        checked,
                    });
                }
            }
        }
    }

    /// FIN, opcode, header length and payload length of the frame at the
    /// start of the buffer, checked against the protocol and the limits.
    fn header(&self) -> Result<Option<(bool, u8, usize, usize)>, WsError> {
        let b = &self.buf[..];
        if b.len() < 2 {
            return Ok(None);
        }
        let fin = b[0] & 0x80 != 0;
        if b[0] & 0x70 != 0 {
            return Err(WsError::Protocol(
                "reserved bits are set but no extension was agreed".into(),
            ));
        }
        let opcode = b[0] & 0x0f;
        if !matches!(
            opcode,
            OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
        ) {
            return Err(WsError::Protocol(format!("unknown opcode {opcode:#x}")));
        }
        if b[1] & 0x80 == 0 {
            return Err(WsError::Protocol("client frames must be masked".into()));
        }
        let (len, header) = match b[1] & 0x7f {
            126 => match b.get(2..4) {
                Some(l) => (u64::from(u16::from_be_bytes([l[0], l[1]])), 8),
                None => return Ok(None),
            },
            127 => match b.get(2..10) {
                Some(l) => {
                    let mut n = [0u8; 8];
                    n.copy_from_slice(l);
                    (u64::from_be_bytes(n), 14)
                }
                None => return Ok(None),
            },
            n => (u64::from(n), 6),
        };
        // RFC 6455 §5.2: the 64-bit length's most significant bit must be 0.
        if len > i64::MAX as u64 {
            return Err(WsError::Protocol(
                "a frame length with its most significant bit set".into(),
            ));
        }
        let control = opcode & 0x08 != 0;
        if control && (!fin || len > 125) {
            return Err(WsError::Protocol(
                "control frames must be unfragmented and at most 125 bytes".into(),
            ));
        }
        if len > self.max_frame as u64 {
            return Err(WsError::TooLarge(format!(
                "a {len}-byte WebSocket frame is over the {}-byte frame limit",
                self.max_frame
            )));
        }
        let len = len as usize;
        if !control {
            let so_far = self.partial.as_ref().map(|p| p.bytes.len()).unwrap_or(0);
            if so_far + len > self.max_message {
                return Err(WsError::TooLarge(format!(
                    "a message of over {} bytes is over the {}-byte message limit",
                    so_far + len,
                    self.max_message
                )));
            }
        }
        if b.len() < header {
            return Ok(None);
        }
        Ok(Some((fin, opcode, header, len)))
    }
}

/// XORs `data` with the repeating four-byte `mask` (RFC 6455 §5.3), eight
/// bytes per step: the mask twice over is one `u64`, and since 8 is a
/// multiple of 4 every step (and the tail after them) starts at mask byte 0.
/// Native byte order on both sides keeps each byte against its own mask
/// byte; the copies let the compiler use unaligned loads without `unsafe`.
fn unmask(data: &mut [u8], mask: [u8; 4]) {
    let [m0, m1, m2, m3] = mask;
    let wide = u64::from_ne_bytes([m0, m1, m2, m3, m0, m1, m2, m3]);
    let mut words = data.chunks_exact_mut(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        word.copy_from_slice(&(u64::from_ne_bytes(w) ^ wide).to_ne_bytes());
    }
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// Checks the text received so far is UTF-8 from `checked` (a character
/// boundary) on and returns the new boundary. A character cut by the end of
/// a fragment waits for the next one; at the end of the message it is an
/// error too.
fn check_text(bytes: &[u8], checked: usize, fin: bool) -> Result<usize, WsError> {
    let rest = bytes.get(checked..).unwrap_or_default();
    match std::str::from_utf8(rest) {
        Ok(_) => Ok(bytes.len()),
        Err(e) if e.error_len().is_none() && !fin => Ok(checked + e.valid_up_to()),
        Err(_) => Err(WsError::InvalidData(
            "a text message that is not UTF-8".into(),
        )),
    }
}

/// The code of a client's close frame, checked as RFC 6455 asks: the
/// payload is empty or a valid code (§7.4) and a UTF-8 reason (§5.5.1).
fn close_payload(payload: &[u8]) -> Result<Option<u16>, WsError> {
    match payload {
        [] => Ok(None),
        [_] => Err(WsError::Protocol(
            "a close frame with a one-byte payload".into(),
        )),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !close_code::is_valid(code) {
                return Err(WsError::Protocol(format!(
                    "close code {code} is not one a peer may send"
                )));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err(WsError::InvalidData(
                    "a close reason that is not UTF-8".into(),
                ));
            }
            Ok(Some(code))
        }
    }
}

fn message(opcode: u8, payload: Bytes) -> Incoming {
    if opcode == OP_TEXT {
        Incoming::Text
    } else {
        Incoming::Binary(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame.
    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x11, 0x22, 0x33, 0x44];
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
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

    async fn read_all(
        bytes: Vec<u8>,
        max_frame: usize,
        max_message: usize,
    ) -> Vec<Result<Incoming, String>> {
        // Feed in 3-byte pieces so every partial-header path runs.
        let (mut tx, rx) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for piece in bytes.chunks(3) {
                if tx.write_all(piece).await.is_err() {
                    return;
                }
            }
        });
        let mut reader = Reader::new(rx, Bytes::new(), max_frame, max_message, 16);
        let mut out = Vec::new();
        loop {
            match reader.next().await {
                Ok(Some(m)) => out.push(Ok(m)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    break;
                }
            }
        }
        drop(reader);
        let _ = writer.await;
        out
    }

    #[test]
    fn accept_key_matches_the_rfc_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn server_frames_use_the_shortest_length_form() {
        assert_eq!(&binary(b"hi")[..], &[0x82, 2, b'h', b'i']);
        let mid = binary(&[0u8; 300]);
        assert_eq!(&mid[..4], &[0x82, 126, 1, 44]);
        assert_eq!(mid.len(), 304);
        let big = binary(&vec![0u8; 70_000]);
        assert_eq!(&big[..2], &[0x82, 127]);
        assert_eq!(u64::from_be_bytes(big[2..10].try_into().unwrap()), 70_000);
        let c = close(1009, &"é".repeat(100));
        assert_eq!(c[0], 0x88);
        assert!(c[1] <= 125, "a control frame fits in 125 bytes");
        assert_eq!(&c[2..4], &1009u16.to_be_bytes());
        assert!(
            std::str::from_utf8(&c[4..]).is_ok(),
            "the reason is cut on a char boundary"
        );
        assert_eq!(
            &binaries([&b"a"[..], &b"bc"[..]])[..],
            &[0x82, 1, b'a', 0x82, 2, b'b', b'c']
        );
    }

    #[tokio::test]
    async fn reads_unmasked_messages_joins_fragments_and_passes_control_frames() {
        let mut bytes = client_frame(true, OP_BINARY, b"hello");
        bytes.extend(client_frame(false, OP_BINARY, &[1u8; 200]));
        bytes.extend(client_frame(true, OP_PING, b"p"));
        bytes.extend(client_frame(false, OP_CONTINUATION, &[2u8; 70_000]));
        bytes.extend(client_frame(true, OP_CONTINUATION, b"end"));
        bytes.extend(client_frame(true, OP_TEXT, b"text"));
        bytes.extend(client_frame(true, OP_PONG, b""));
        bytes.extend(client_frame(true, OP_CLOSE, &1000u16.to_be_bytes()));
        let got = read_all(bytes, 100_000, 100_000).await;
        let mut joined = vec![1u8; 200];
        joined.extend(vec![2u8; 70_000]);
        joined.extend(b"end");
        assert_eq!(
            got,
            vec![
                Ok(Incoming::Binary(Bytes::from_static(b"hello"))),
                Ok(Incoming::Ping(Bytes::from_static(b"p"))),
                Ok(Incoming::Binary(Bytes::from(joined))),
                Ok(Incoming::Text),
                Ok(Incoming::Pong),
                Ok(Incoming::Close(Some(1000))),
            ]
        );
    }

    #[tokio::test]
    async fn refuses_bad_frames_with_a_reason() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                {
                    let mut f = client_frame(true, OP_BINARY, b"x");
                    f[1] &= 0x7f; // unmasked
                    f.truncate(2);
                    f.push(b'x');
                    f
                },
                "must be masked",
            ),
            (
                {
                    let mut f = client_frame(true, OP_BINARY, b"x");
                    f[0] |= 0x40;
                    f
                },
                "reserved bits",
            ),
            (client_frame(true, 0x3, b"x"), "unknown opcode"),
            (client_frame(false, OP_PING, b"x"), "control frames"),
            (
                client_frame(true, OP_CONTINUATION, b"x"),
                "without a message",
            ),
            (
                {
                    let mut f = client_frame(false, OP_BINARY, b"x");
                    f.extend(client_frame(true, OP_BINARY, b"y"));
                    f
                },
                "before the last one ended",
            ),
            (client_frame(true, OP_BINARY, &[0u8; 2000]), "frame limit"),
            (
                {
                    let mut f = client_frame(false, OP_BINARY, &[0u8; 900]);
                    f.extend(client_frame(false, OP_CONTINUATION, &[0u8; 900]));
                    f.extend(client_frame(true, OP_CONTINUATION, &[0u8; 900]));
                    f
                },
                "message limit",
            ),
            (client_frame(true, OP_CLOSE, &[3]), "one-byte"),
            (
                {
                    let mut f = vec![0x82, 0x80 | 127];
                    f.extend_from_slice(&u64::MAX.to_be_bytes());
                    f.extend_from_slice(&[0; 4]);
                    f
                },
                "most significant bit",
            ),
            (client_frame(true, OP_PING, &[0u8; 126]), "at most 125"),
            (
                client_frame(true, OP_BINARY, b"cut")[..5].to_vec(),
                "in the middle",
            ),
        ];
        for (bytes, want) in cases {
            let got = read_all(bytes, 1000, 2000).await;
            match got.last() {
                Some(Err(e)) => assert!(e.contains(want), "{e:?} should mention {want:?}"),
                other => panic!("expected an error mentioning {want:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn upgrade_requests_are_checked() {
        let refused = |h: &HeaderMap| match check_upgrade(h) {
            Err(r) => (r.status.as_u16(), r.reason),
            Ok(key) => panic!("expected a refusal, got the key {key:?}"),
        };
        let mut h = HeaderMap::new();
        let (status, why) = refused(&h);
        assert_eq!(status, 426);
        assert!(why.contains("Upgrade: websocket"), "{why}");
        h.insert("upgrade", "WebSocket".parse().unwrap());
        let (status, why) = refused(&h);
        assert_eq!(status, 400);
        assert!(why.contains("Connection"), "{why}");
        h.insert("connection", "keep-alive, Upgrade".parse().unwrap());
        let (status, why) = refused(&h);
        assert_eq!(status, 426);
        assert!(why.contains("version 13"), "{why}");
        h.insert("sec-websocket-version", "13".parse().unwrap());
        assert_eq!(
            refused(&h),
            (400, "the WebSocket upgrade has no Sec-WebSocket-Key".into())
        );
        for bad in [
            "abc",
            "",
            "not base64 at all!!!!!!!",
            // 15 and 17 bytes.
            "AAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAAAA=",
            "AAAAAAAAAAAAAAAAAAAAAAA",
            // 16 bytes without their padding, or with bits past the end set.
            "dGhlIHNhbXBsZSBub25jZQ",
            "dGhlIHNhbXBsZSBub25jZR==",
        ] {
            h.insert("sec-websocket-key", bad.parse().unwrap());
            let (status, why) = refused(&h);
            assert_eq!(status, 400, "key {bad:?}");
            assert!(why.contains("Sec-WebSocket-Key"), "{why}");
        }
        h.insert(
            "sec-websocket-key",
            "dGhlIHNhbXBsZSBub25jZQ==".parse().unwrap(),
        );
        assert_eq!(check_upgrade(&h), Ok("dGhlIHNhbXBsZSBub25jZQ=="));
        h.append(
            "sec-websocket-key",
            "dGhlIHNhbXBsZSBub25jZQ==".parse().unwrap(),
        );
        assert!(refused(&h).1.contains("more than one"));
    }

    #[test]
    fn refusals_of_an_upgrade_say_what_to_send() {
        let version = Refusal::new(StatusCode::UPGRADE_REQUIRED, "v").into_response();
        assert_eq!(version.status(), 426);
        assert_eq!(version.headers()["sec-websocket-version"], "13");
        assert_eq!(version.headers()["upgrade"], "websocket");
        let bad = Refusal::new(StatusCode::BAD_REQUEST, "k").into_response();
        assert_eq!(bad.status(), 400);
        assert!(bad.headers().get("upgrade").is_none());
    }

    /// A tiny deterministic generator for the property tests.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn unmasking_by_words_equals_the_byte_loop() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for round in 0..4000 {
            // Mostly short payloads (every tail length, every alignment),
            // some long ones.
            let len = if round % 10 == 0 {
                rng.below(5000)
            } else {
                rng.below(80)
            };
            let offset = rng.below(16);
            let mask = rng.next().to_le_bytes();
            let mask = [mask[0], mask[1], mask[2], mask[3]];
            let original: Vec<u8> = (0..offset + len + 16).map(|_| rng.next() as u8).collect();
            let mut fast = original.clone();
            unmask(&mut fast[offset..offset + len], mask);
            let mut slow = original.clone();
            for (i, b) in slow[offset..offset + len].iter_mut().enumerate() {
                *b ^= mask[i & 3];
            }
            assert_eq!(fast, slow, "len {len}, offset {offset}, mask {mask:?}");
            // Masking twice gives the bytes back.
            unmask(&mut fast[offset..offset + len], mask);
            assert_eq!(fast, original);
        }
    }

    #[test]
    fn close_codes_follow_rfc_6455_and_the_iana_registry() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1010, 1011, 1012, 1013, 1014, 3000, 4999,
        ] {
            assert!(close_code::is_valid(code), "{code}");
        }
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            assert!(!close_code::is_valid(code), "{code}");
        }
        // The same judgement as tungstenite's, apart from 1014, which IANA
        // registered after tungstenite's table was written.
        use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
        for code in 0..=u16::MAX {
            if code != 1014 {
                assert_eq!(
                    close_code::is_valid(code),
                    CloseCode::from(code).is_allowed(),
                    "{code}"
                );
            }
        }
    }

    #[tokio::test]
    async fn close_frames_and_text_are_checked() {
        let close = |payload: &[u8]| client_frame(true, OP_CLOSE, payload);
        let mut with_reason = 4000u16.to_be_bytes().to_vec();
        with_reason.extend_from_slice("bye é".as_bytes());
        for (bytes, want) in [
            (close(b""), Incoming::Close(None)),
            (close(&1000u16.to_be_bytes()), Incoming::Close(Some(1000))),
            (close(&with_reason), Incoming::Close(Some(4000))),
            (client_frame(true, OP_TEXT, "é".as_bytes()), Incoming::Text),
            (
                {
                    // A character split across fragments is whole UTF-8.
                    let mut f = client_frame(false, OP_TEXT, &"é".as_bytes()[..1]);
                    f.extend(client_frame(true, OP_PING, b""));
                    f.extend(client_frame(true, OP_CONTINUATION, &"é".as_bytes()[1..]));
                    f
                },
                Incoming::Text,
            ),
        ] {
            let got = read_all(bytes, 1000, 2000).await;
            assert_eq!(got.last(), Some(&Ok(want)));
        }
        let mut bad_reason = 1000u16.to_be_bytes().to_vec();
        bad_reason.extend_from_slice(&[b'o', 0xff]);
        for (bytes, want, close) in [
            (close(&[3]), "one-byte", close_code::PROTOCOL),
            (
                close(&1005u16.to_be_bytes()),
                "close code 1005",
                close_code::PROTOCOL,
            ),
            (close(&bad_reason), "close reason", close_code::INVALID_DATA),
            (
                client_frame(true, OP_TEXT, &[0xc3]),
                "not UTF-8",
                close_code::INVALID_DATA,
            ),
            (
                {
                    // Refused at the first bad fragment, before the message ends.
                    let mut f = client_frame(false, OP_TEXT, b"ok");
                    f.extend(client_frame(false, OP_CONTINUATION, &[0xff]));
                    f
                },
                "not UTF-8",
                close_code::INVALID_DATA,
            ),
            (
                {
                    let mut f = client_frame(false, OP_TEXT, &[0xe2, 0x82]);
                    f.extend(client_frame(true, OP_CONTINUATION, b""));
                    f
                },
                "not UTF-8",
                close_code::INVALID_DATA,
            ),
        ] {
            let mut reader = Reader::new(&bytes[..], Bytes::new(), 1000, 2000, 16);
            let e = loop {
                match reader.next().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("expected an error mentioning {want:?}"),
                    Err(e) => break e,
                }
            };
            assert!(e.to_string().contains(want), "{e} should mention {want:?}");
            assert_eq!(e.close_code(), Some(close), "{e}");
        }
    }

    #[tokio::test]
    async fn a_socket_ending_mid_message_has_no_close_code() {
        for bytes in [
            client_frame(true, OP_BINARY, b"cut")[..1].to_vec(),
            client_frame(true, OP_BINARY, b"cut")[..7].to_vec(),
            client_frame(false, OP_BINARY, b"first half"),
        ] {
            let mut reader = Reader::new(&bytes[..], Bytes::new(), 1000, 2000, 16);
            match reader.next().await {
                Err(e @ WsError::Io(_)) => assert_eq!(e.close_code(), None),
                other => panic!("expected the socket's end as an error, got {other:?}"),
            }
        }
        let mut reader = Reader::new(&[][..], Bytes::new(), 1000, 2000, 16);
        assert!(matches!(reader.next().await, Ok(None)));
    }
}
