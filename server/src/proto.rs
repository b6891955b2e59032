//! The wire protocol: the op envelope every change travels in, and its binary
//! encoding (a version byte followed by MessagePack with named fields).
//!
//! The relay never interprets an op's body: it sequences, stores and fans out
//! envelopes. Only clients decode the body into domain changes.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Version byte in front of every encoded envelope. Bumped on incompatible changes.
pub const WIRE_VERSION: u8 = 1;

/// Largest encoded op the protocol accepts (bodies carry fields, never blobs).
pub const MAX_OP_BYTES: usize = 256 * 1024;

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

/// The op envelope: `{id, hlc, actor, entity, kind}` plus an opaque body that
/// clients decode according to `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub id: OpId,
    pub hlc: Hlc,
    /// Handle of the member who made the change.
    pub actor: String,
    pub entity: EntityKey,
    /// The change's kind, e.g. `set`, `append`, `delete`.
    pub kind: String,
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
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
