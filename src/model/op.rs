//! Domain ops: every change to the hub is one of these, and state is what
//! applying them yields. They travel inside the relay's wire envelope.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use spoke_relay::proto::{self, EntityKey, Hlc, OpId};
use std::fmt;

pub use spoke_relay::policy::{Change, DELETED_FIELD, EntityKind, OpDecodeError};

/// One entity: its kind and id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntityRef {
    pub kind: EntityKind,
    pub id: String,
}

impl EntityRef {
    pub fn new(kind: EntityKind, id: impl Into<String>) -> Self {
        EntityRef {
            kind,
            id: id.into(),
        }
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.id)
    }
}

/// A change with its identity: who, when, to what.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub id: OpId,
    pub hlc: Hlc,
    pub actor: String,
    pub entity: EntityRef,
    pub change: Change,
}

impl Op {
    /// The wire envelope for this op.
    pub fn to_wire(&self) -> proto::Op {
        proto::Op {
            id: self.id,
            hlc: self.hlc,
            actor: self.actor.clone(),
            entity: EntityKey {
                kind: self.entity.kind.as_str().to_owned(),
                id: self.entity.id.clone(),
            },
            kind: self.change.wire_kind().to_owned(),
            body: self.change.encode_body(),
        }
    }

    pub fn from_wire(op: proto::Op) -> Result<Op, OpDecodeError> {
        let kind = EntityKind::parse(&op.entity.kind)
            .ok_or_else(|| OpDecodeError::UnknownEntity(op.entity.kind.clone()))?;
        let change = Change::decode(&op.kind, &op.body)?;
        Ok(Op {
            id: op.id,
            hlc: op.hlc,
            actor: op.actor,
            entity: EntityRef::new(kind, op.entity.id),
            change,
        })
    }

    /// The op a relay writes when a member's token is first used: it grants
    /// the token's role (`seq` is the relay's own counter).
    pub fn relay_grant(seq: u64, handle: &str, role: crate::model::Role, wall_ms: u64) -> Op {
        Op {
            id: OpId {
                client: spoke_relay::policy::RELAY_CLIENT,
                seq,
            },
            hlc: Hlc {
                wall_ms,
                logical: 0,
            },
            actor: spoke_relay::policy::RELAY_ACTOR.to_owned(),
            entity: EntityRef::new(EntityKind::Member, handle),
            change: Change::Set([(format!("roles:{role}"), serde_json::Value::Bool(true))].into()),
        }
    }

    /// The op as the hub's rules see it.
    pub fn policy_ref(&self) -> spoke_relay::policy::OpRef<'_> {
        spoke_relay::policy::OpRef {
            id: self.id,
            hlc: self.hlc,
            actor: &self.actor,
            kind: self.entity.kind,
            entity: &self.entity.id,
            change: &self.change,
        }
    }

    /// Encoded bytes as stored in the replica and sent on the wire.
    pub fn encode(&self) -> Result<Vec<u8>, proto::ProtoError> {
        proto::encode_op(&self.to_wire())
    }

    pub fn decode(bytes: &[u8]) -> Result<Op, OpDecodeError> {
        Op::from_wire(proto::decode_op(bytes)?)
    }

    /// Digests of the blobs this op refers to: values under a `blob_sha256`
    /// key anywhere in its data, and rendition fields (`renditions:NAME`).
    /// These must reach the hub before the op does.
    pub fn referenced_blobs(&self) -> Vec<String> {
        fn walk(value: &Value, out: &mut Vec<String>) {
            match value {
                Value::Object(map) => {
                    for (k, v) in map {
                        match (k.as_str(), v) {
                            ("blob_sha256", Value::String(s)) => out.push(s.clone()),
                            _ => walk(v, out),
                        }
                    }
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        match &self.change {
            Change::Set(fields) => {
                for (name, value) in fields {
                    match value {
                        Value::String(s) if name.starts_with("renditions:") => out.push(s.clone()),
                        v => walk(v, &mut out),
                    }
                }
            }
            Change::Append(value) => walk(value, &mut out),
            Change::Delete => {}
        }
        out.sort();
        out.dedup();
        out
    }

    /// The stamp that orders this op against concurrent writes.
    pub fn stamp(&self) -> Stamp {
        Stamp {
            hlc: self.hlc,
            id: self.id,
        }
    }
}

/// Total order for last-writer-wins: by HLC, then client id, then the
/// client's sequence number (which only matters for a misbehaving clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stamp {
    pub hlc: Hlc,
    pub id: OpId,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use spoke_relay::proto::ClientId;
    use std::collections::BTreeMap;

    #[test]
    fn every_change_kind_round_trips_through_bytes() {
        let changes = [
            Change::Set(BTreeMap::from([
                ("title".to_owned(), json!("Spring launch")),
                ("budget".to_owned(), json!(1200.5)),
                ("tags:hero".to_owned(), json!(true)),
            ])),
            Change::Append(json!({"body": "hello", "citations": ["kb-1"]})),
            Change::Delete,
        ];
        for change in changes {
            let op = Op {
                id: OpId {
                    client: ClientId(1),
                    seq: 2,
                },
                hlc: Hlc {
                    wall_ms: 3,
                    logical: 4,
                },
                actor: "ana".into(),
                entity: EntityRef::new(EntityKind::Brief, "b-1"),
                change,
            };
            let bytes = op.encode().expect("encode");
            assert_eq!(Op::decode(&bytes).expect("decode"), op);
        }
    }

    #[test]
    fn blobs_referenced_by_versions_and_renditions_are_found() {
        let op = |change| Op {
            id: OpId {
                client: ClientId(1),
                seq: 1,
            },
            hlc: Hlc::default(),
            actor: "ana".into(),
            entity: EntityRef::new(EntityKind::Asset, "a-1"),
            change,
        };
        let version = op(Change::Append(json!({"blob_sha256": "aa", "size": 3})));
        assert_eq!(version.referenced_blobs(), ["aa"]);
        let renditions = op(Change::Set(BTreeMap::from([
            ("renditions:linkedin".to_owned(), json!("bb")),
            ("title".to_owned(), json!("cc")),
        ])));
        assert_eq!(renditions.referenced_blobs(), ["bb"]);
        assert!(op(Change::Delete).referenced_blobs().is_empty());
    }

    #[test]
    fn unknown_entity_kind_is_a_clear_error() {
        let mut wire = Op {
            id: OpId {
                client: ClientId(1),
                seq: 1,
            },
            hlc: Hlc::default(),
            actor: "ana".into(),
            entity: EntityRef::new(EntityKind::Brief, "b-1"),
            change: Change::Delete,
        }
        .to_wire();
        wire.entity.kind = "spaceship".into();
        let err = Op::from_wire(wire).expect_err("must fail");
        assert!(err.to_string().contains("spaceship"));
    }
}
