//! The WebSocket layer the relay speaks (RFC 6455, server side, no
//! extensions): the upgrade handshake, a reader for masked client frames with
//! the protocol's size limits, and encoders for the unmasked server frames.
//!
//! The relay writes its frames itself because a server frame is the same
//! bytes for every receiver: a batch is framed once and those bytes go to
//! every member's socket unchanged.

use axum::http::HeaderMap;
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Close codes the relay sends.
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const AWAY: u16 = 1001;
    pub const PROTOCOL: u16 = 1002;
    pub const POLICY: u16 = 1008;
    pub const SIZE: u16 = 1009;
    pub const ERROR: u16 = 1011;
    pub const AGAIN: u16 = 1013;
}

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xa;

/// Why an upgrade request is refused, if it is.
pub fn check_upgrade(headers: &HeaderMap) -> Result<&str, String> {
    let has_token = |name: &str, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
                .unwrap_or(false)
        })
    };
    if !has_token("upgrade", "websocket") {
        return Err("this endpoint speaks WebSocket: send `Upgrade: websocket`".into());
    }
    if !has_token("connection", "upgrade") {
        return Err("a WebSocket upgrade needs `Connection: Upgrade`".into());
    }
    if !has_token("sec-websocket-version", "13") {
        return Err("only WebSocket version 13 is supported".into());
    }
    match headers
        .get("sec-websocket-key")
        .and_then(|k| k.to_str().ok())
    {
        Some(key) if !key.trim().is_empty() => Ok(key.trim()),
        _ => Err("the WebSocket upgrade has no Sec-WebSocket-Key".into()),
    }
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
    Text,
    Ping(Bytes),
    Pong,
    Close(Option<u16>),
}

#[derive(Debug, thiserror::Error)]
pub enum WsError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("WebSocket protocol error: {0}")]
    Protocol(String),
    #[error("{0}")]
    TooLarge(String),
}

impl WsError {
    /// The close code that answers this error.
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::Io(_) => close_code::ERROR,
            WsError::Protocol(_) => close_code::PROTOCOL,
            WsError::TooLarge(_) => close_code::SIZE,
        }
    }
}

/// Reads client messages: unmasks frames, joins fragments, answers nothing
/// itself (the caller sends pongs and closes), and refuses frames or messages
/// over the limits before buffering them.
pub struct Reader<R> {
    io: R,
    buf: BytesMut,
    /// The opcode and the bytes so far of a fragmented message.
    partial: Option<(u8, BytesMut)>,
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
    /// messages. Cancel-safe: all state lives in the reader.
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
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i & 3];
            }
            match opcode {
                OP_CLOSE => {
                    let code = match payload.len() {
                        0 => None,
                        1 => {
                            return Err(WsError::Protocol(
                                "a close frame with a one-byte payload".into(),
                            ));
                        }
                        _ => Some(u16::from_be_bytes([payload[0], payload[1]])),
                    };
                    return Ok(Some(Incoming::Close(code)));
                }
                OP_PING => return Ok(Some(Incoming::Ping(payload.freeze()))),
                OP_PONG => return Ok(Some(Incoming::Pong)),
                OP_CONTINUATION => {
                    let Some((first, mut bytes)) = self.partial.take() else {
                        return Err(WsError::Protocol(
                            "a continuation frame without a message to continue".into(),
                        ));
                    };
                    bytes.extend_from_slice(&payload);
                    if fin {
                        return Ok(Some(message(first, bytes.freeze())));
                    }
                    self.partial = Some((first, bytes));
                }
                _ => {
                    if self.partial.is_some() {
                        return Err(WsError::Protocol(
                            "a new message started before the last one ended".into(),
                        ));
                    }
                    if fin {
                        return Ok(Some(message(opcode, payload.freeze())));
                    }
                    self.partial = Some((opcode, payload));
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
            let so_far = self.partial.as_ref().map(|(_, b)| b.len()).unwrap_or(0);
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
        let mut h = HeaderMap::new();
        assert!(
            check_upgrade(&h)
                .unwrap_err()
                .contains("Upgrade: websocket")
        );
        h.insert("upgrade", "WebSocket".parse().unwrap());
        assert!(check_upgrade(&h).unwrap_err().contains("Connection"));
        h.insert("connection", "keep-alive, Upgrade".parse().unwrap());
        assert!(check_upgrade(&h).unwrap_err().contains("version 13"));
        h.insert("sec-websocket-version", "13".parse().unwrap());
        assert!(check_upgrade(&h).unwrap_err().contains("Sec-WebSocket-Key"));
        h.insert("sec-websocket-key", "abc".parse().unwrap());
        assert_eq!(check_upgrade(&h).unwrap(), "abc");
    }
}
