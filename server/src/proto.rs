//! The wire protocol: the op envelope every change travels in, and its binary
//! encoding (a version byte followed by MessagePack with named fields).
//!
//! The relay reads an op's body only to judge it against the hub's rules
//! (`crate::policy`); it sequences, stores and fans out its own encoding of
//! each accepted envelope. Clients decode the body into domain changes.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Version byte in front of every encoded envelope. Bumped on incompatible changes.
pub const WIRE_VERSION: u8 = 1;

/// Largest encoded op the protocol accepts (bodies carry fields, never
/// blobs): 192 KiB, below [`MAX_FRAME_BYTES`] so that one op with the
/// fields of the `Submit` or `Ops` frame around it always fits one
/// WebSocket frame.
pub const MAX_OP_BYTES: usize = 192 * 1024;

/// Largest protocol message (one WebSocket message, possibly fragmented).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// Largest single WebSocket frame.
pub const MAX_FRAME_BYTES: usize = 256 * 1024;

/// Most ops in one `Ops` or `Submit` frame.
pub const MAX_OPS_PER_FRAME: usize = 256;

/// Encoded op bytes a sender packs into one `Ops` or `Submit` frame, leaving
/// room for the frame's own fields, so every frame fits one WebSocket frame.
pub const FRAME_OPS_BUDGET: usize = MAX_FRAME_BYTES - 8 * 1024;

/// Splits items into frame-sized groups: at most [`MAX_OPS_PER_FRAME`] items
/// and about [`FRAME_OPS_BUDGET`] bytes each (an item over the budget travels
/// alone). `size` gives an item's encoded size.
pub fn frame_groups<T>(items: Vec<T>, size: impl Fn(&T) -> usize) -> Vec<Vec<T>> {
    let mut groups = Vec::new();
    let mut group: Vec<T> = Vec::new();
    let mut bytes = 0;
    for item in items {
        let n = size(&item) + 16;
        if !group.is_empty() && (group.len() >= MAX_OPS_PER_FRAME || bytes + n > FRAME_OPS_BUDGET) {
            groups.push(std::mem::take(&mut group));
            bytes = 0;
        }
        bytes += n;
        group.push(item);
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

/// A client replica's identity: random, chosen once when the replica is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(pub u64);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Globally unique op id: the client that made it and that client's own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpId {
    pub client: ClientId,
    pub seq: u64,
}

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.client, self.seq)
    }
}

/// A hybrid logical clock reading: wall-clock milliseconds plus a logical
/// counter that orders events within (or behind) the same millisecond.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Hlc {
    pub wall_ms: u64,
    pub logical: u32,
}

/// What an op changes: an entity kind (`brief`, `member`, ...) and its id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntityKey {
    pub kind: String,
    pub id: String,
}

impl fmt::Display for EntityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.id)
    }
}

/// The op envelope: `{id, hlc, actor, entity, kind}` plus a body read
/// according to `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub id: OpId,
    pub hlc: Hlc,
    /// Handle of the member who made the change.
    pub actor: String,
    pub entity: EntityKey,
    /// The change's kind, e.g. `set`, `append`, `delete`.
    pub kind: String,
    /// The change as MessagePack. Written as binary; a MessagePack string
    /// is read too, as its bytes, and written back as binary, so a relay
    /// that re-encodes an op stores exactly the bytes it judged.
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// An op with the hub sequence number the relay gave it. `op` holds the
/// op's own encoding ([`encode_op`]) so it is stored and forwarded unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqOp {
    pub seq: u64,
    #[serde(with = "serde_bytes")]
    pub op: Vec<u8>,
}

/// One op's acknowledgement: the hub seq it was stored under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckEntry {
    pub id: OpId,
    pub seq: u64,
}

/// What a member is doing, as shown to the rest of the hub. Ephemeral: fanned
/// out, never stored. The relay fills `member` from the connection's token.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Presence {
    #[serde(default)]
    pub member: String,
    pub status: PresenceStatus,
    /// The member's IANA zone, so others can show their local time.
    #[serde(default)]
    pub tz: Option<String>,
    /// What they are looking at, e.g. `brief/b-7k2m9q3x`.
    #[serde(default)]
    pub viewing: Option<String>,
}

/// Whether a member is there. On the wire: `online`, `away` or `offline`;
/// a status this version does not know reads as `unknown` and is shown as
/// neither online nor gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    #[default]
    Online,
    Away,
    Offline,
    #[serde(other)]
    Unknown,
}

/// Machine-readable reason in an `Error` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Bytes that are not a frame of this protocol.
    BadFrame,
    /// A frame of another protocol version.
    Version,
    /// A frame or op over the size limits.
    TooLarge,
    /// A frame not allowed in this state (e.g. `Submit` before `Hello`).
    Protocol,
    /// Unknown, expired or revoked token.
    Unauthorized,
    /// The token is valid but may not do this (read-only submit, other hub).
    Forbidden,
    /// The hub does not exist on this relay.
    UnknownHub,
    /// An op that fails validation (wrong actor, unreadable body).
    BadOp,
    /// No valid `Hello` in time.
    Timeout,
    /// The connection fell too far behind; reconnect and resume from the cursor.
    SlowConsumer,
    /// The relay is shutting down; reconnect later.
    GoingAway,
    /// A failure inside the relay; retry later.
    Internal,
}

/// Every message on the hub WebSocket, client to relay and relay to client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Frame {
    /// Client -> relay, first frame: authenticate and say where to resume.
    Hello {
        token: String,
        hub: String,
        /// The hub epoch the client's cursor belongs to (0 if none yet).
        epoch: u64,
        /// The last hub seq the client has applied.
        cursor: u64,
    },
    /// Relay -> client: who the token belongs to and where the log stands. When
    /// `epoch` differs from the client's, its cursor is void: it resyncs from 0.
    Welcome {
        member: String,
        role: String,
        hub_name: String,
        epoch: u64,
        head: u64,
    },
    /// Relay -> client: contiguous sequenced ops starting at `from`.
    Ops {
        from: u64,
        ops: Vec<SeqOp>,
    },
    /// Client -> relay: new local ops to sequence.
    Submit {
        ops: Vec<Op>,
    },
    /// Relay -> client: the seqs of submitted ops, sent once they are durable.
    Ack {
        acks: Vec<AckEntry>,
    },
    /// Client -> relay: send the log again from `from` (a gap was detected).
    Fetch {
        from: u64,
    },
    /// Both ways: a member's presence; the relay fans it out to the hub.
    Presence(Presence),
    Ping {
        nonce: u64,
    },
    Pong {
        nonce: u64,
    },
    /// Relay -> client: something went wrong; a close may follow. A refused
    /// op (`forbidden`, `bad_op`) names the op and the rule; the connection
    /// stays open and the rest of the batch is handled on its own merits.
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default)]
        op: Option<OpId>,
        #[serde(default)]
        rule: Option<String>,
    },
}

impl Frame {
    /// An `Error` about the connection or a frame, not about one op.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Frame {
        Frame::Error {
            code,
            message: message.into(),
            op: None,
            rule: None,
        }
    }
}

/// Encodes a frame as `[WIRE_VERSION] ++ msgpack`.
pub fn encode_frame(frame: &Frame) -> Result<Vec<u8>, ProtoError> {
    encode_versioned(frame)
}

/// Decodes a frame, checking version and the message size limit.
pub fn decode_frame(bytes: &[u8]) -> Result<Frame, ProtoError> {
    decode_versioned(bytes, MAX_MESSAGE_BYTES)
}

/// Why bytes could not be read as a protocol value.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("empty frame")]
    Empty,
    #[error("unsupported wire version {found} (this build speaks version {WIRE_VERSION})")]
    Version { found: u8 },
    #[error("frame of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("malformed MessagePack: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    #[error("cannot encode: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
}

/// Encodes an op as `[WIRE_VERSION] ++ msgpack`.
pub fn encode_op(op: &Op) -> Result<Vec<u8>, ProtoError> {
    encode_versioned(op)
}

/// Decodes bytes written by [`encode_op`], checking version and size.
pub fn decode_op(bytes: &[u8]) -> Result<Op, ProtoError> {
    decode_versioned(bytes, MAX_OP_BYTES)
}

fn encode_versioned<T: Serialize>(value: &T) -> Result<Vec<u8>, ProtoError> {
    let mut out = Vec::with_capacity(128);
    out.push(WIRE_VERSION);
    rmp_serde::encode::write_named(&mut out, value)?;
    Ok(out)
}

fn decode_versioned<T: for<'de> Deserialize<'de>>(
    bytes: &[u8],
    limit: usize,
) -> Result<T, ProtoError> {
    let (&version, rest) = bytes.split_first().ok_or(ProtoError::Empty)?;
    if version != WIRE_VERSION {
        return Err(ProtoError::Version { found: version });
    }
    if bytes.len() > limit {
        return Err(ProtoError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    Ok(rmp_serde::from_slice(rest)?)
}

/// A relay's base URL as people type it, `ws[s]://HOST[:PORT][/PREFIX]`
/// (`http[s]://` taken as `ws[s]://`), without a trailing `/` or `/v1`.
/// `Err` says what is wrong with it, for the caller's own message.
pub fn relay_base_url(url: &str) -> Result<String, &'static str> {
    let trimmed = url.trim().trim_end_matches('/');
    let trimmed = trimmed.strip_suffix("/v1").unwrap_or(trimmed);
    let (scheme, rest) = trimmed.split_once("://").ok_or("no scheme")?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        _ => return Err("the scheme must be ws or wss"),
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err("no host");
    }
    if rest.contains("/v1/") || rest.ends_with("/v1/hubs") || rest.contains(['?', '#', ' ']) {
        return Err("give the relay's address only, not a path to a hub");
    }
    Ok(format!("{scheme}://{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Op {
        Op {
            id: OpId {
                client: ClientId(0xfeed),
                seq: 7,
            },
            hlc: Hlc {
                wall_ms: 1_764_000_000_000,
                logical: 3,
            },
            actor: "ana".into(),
            entity: EntityKey {
                kind: "brief".into(),
                id: "b-12345678".into(),
            },
            kind: "set".into(),
            body: vec![1, 2, 3],
        }
    }

    #[test]
    fn op_round_trips_through_the_wire_encoding() {
        let op = sample();
        let bytes = encode_op(&op).expect("encode");
        assert_eq!(bytes[0], WIRE_VERSION);
        assert_eq!(decode_op(&bytes).expect("decode"), op);
    }

    #[test]
    fn unknown_version_and_garbage_are_errors_not_panics() {
        let mut bytes = encode_op(&sample()).expect("encode");
        bytes[0] = 99;
        assert!(matches!(
            decode_op(&bytes),
            Err(ProtoError::Version { found: 99 })
        ));
        assert!(matches!(decode_op(&[]), Err(ProtoError::Empty)));
        assert!(matches!(
            decode_op(&[WIRE_VERSION, 0xc1, 0xff]),
            Err(ProtoError::Decode(_))
        ));
        let truncated = &encode_op(&sample()).expect("encode")[..10];
        assert!(decode_op(truncated).is_err());
    }

    #[test]
    fn a_string_body_reads_as_its_bytes_and_re_encodes_as_binary() {
        let mut op = sample();
        // One valid UTF-8 body and one that is not (a MessagePack map).
        for body in [b"*".to_vec(), vec![0x81, 0xa1, b'a', 0x01]] {
            op.body = body.clone();
            let binary = encode_op(&op).expect("encode");
            let mut needle = vec![0xc4, body.len() as u8];
            needle.extend_from_slice(&body);
            let at = binary
                .windows(needle.len())
                .position(|w| w == needle.as_slice())
                .expect("the body is encoded as bin 8");
            let mut string = binary.clone();
            string[at] = 0xd9; // str 8, same length byte and bytes
            let read = decode_op(&string).expect("a string body is read");
            assert_eq!(read, op);
            assert_eq!(encode_op(&read).expect("encode"), binary);
        }
    }

    #[test]
    fn oversized_op_is_rejected() {
        let mut op = sample();
        op.body = vec![0; MAX_OP_BYTES + 1];
        let bytes = encode_op(&op).expect("encode");
        assert!(matches!(
            decode_op(&bytes),
            Err(ProtoError::TooLarge { .. })
        ));
    }

    #[test]
    fn every_frame_round_trips() {
        let frames = [
            Frame::Hello {
                token: "spk_x".into(),
                hub: "h-1".into(),
                epoch: 3,
                cursor: 9,
            },
            Frame::Welcome {
                member: "ana".into(),
                role: "lead".into(),
                hub_name: "Studio".into(),
                epoch: 3,
                head: 10,
            },
            Frame::Ops {
                from: 10,
                ops: vec![SeqOp {
                    seq: 10,
                    op: encode_op(&sample()).expect("encode"),
                }],
            },
            Frame::Submit {
                ops: vec![sample()],
            },
            Frame::Ack {
                acks: vec![AckEntry {
                    id: sample().id,
                    seq: 10,
                }],
            },
            Frame::Fetch { from: 4 },
            Frame::Presence(Presence {
                member: "ana".into(),
                status: PresenceStatus::Online,
                tz: Some("Europe/Lisbon".into()),
                viewing: None,
            }),
            Frame::Ping { nonce: 1 },
            Frame::Pong { nonce: 1 },
            Frame::Error {
                code: ErrorCode::Forbidden,
                message: "no".into(),
                op: Some(sample().id),
                rule: Some("role-table".into()),
            },
        ];
        for frame in frames {
            let bytes = encode_frame(&frame).expect("encode");
            assert_eq!(decode_frame(&bytes).expect("decode"), frame);
        }
    }

    #[test]
    fn frame_groups_respect_count_and_byte_budgets() {
        let small: Vec<usize> = vec![100; 600];
        let groups = frame_groups(small, |n| *n);
        assert_eq!(
            groups.iter().map(Vec::len).collect::<Vec<_>>(),
            [256, 256, 88]
        );
        let big: Vec<usize> = vec![100 * 1024; 5];
        let groups = frame_groups(big, |n| *n);
        assert!(
            groups
                .iter()
                .all(|g| g.iter().sum::<usize>() <= FRAME_OPS_BUDGET)
        );
        assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), 5);
        // A full-size op still fits a frame on its own.
        let mut op = sample();
        op.body = vec![0; MAX_OP_BYTES - 200];
        let frame = encode_frame(&Frame::Submit { ops: vec![op] }).expect("encode");
        assert!(frame.len() <= MAX_FRAME_BYTES);
    }

    #[test]
    fn hlc_orders_by_wall_then_logical() {
        let a = Hlc {
            wall_ms: 5,
            logical: 9,
        };
        let b = Hlc {
            wall_ms: 6,
            logical: 0,
        };
        let c = Hlc {
            wall_ms: 6,
            logical: 1,
        };
        assert!(a < b && b < c);
    }
}
