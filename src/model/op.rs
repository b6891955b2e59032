//! Domain ops: every change to the hub is one of these, and state is what
//! applying them yields. They travel inside the relay's wire envelope.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use spoke_relay::proto::{self, EntityKey, Hlc, OpId};
use std::collections::BTreeMap;
use std::fmt;

/// The kinds of entity a hub holds. Each has its own materialized table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Hub,
    Member,
    Brief,
    Asset,
    Thread,
    Proposal,
    Approval,
    Task,
    Audit,
    /// A knowledge-base document (guidelines, case studies) and its chunks.
    Knowledge,
}

impl EntityKind {
    pub const ALL: [EntityKind; 10] = [
        EntityKind::Hub,
        EntityKind::Member,
        EntityKind::Brief,
        EntityKind::Asset,
        EntityKind::Thread,
        EntityKind::Proposal,
        EntityKind::Approval,
        EntityKind::Task,
        EntityKind::Audit,
        EntityKind::Knowledge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Hub => "hub",
            EntityKind::Member => "member",
            EntityKind::Brief => "brief",
            EntityKind::Asset => "asset",
            EntityKind::Thread => "thread",
            EntityKind::Proposal => "proposal",
            EntityKind::Approval => "approval",
            EntityKind::Task => "task",
            EntityKind::Audit => "audit",
            EntityKind::Knowledge => "knowledge",
        }
    }

    /// Kinds whose text the search index covers; applying an op to one of
    /// these marks it for the index.
    pub fn is_searchable(self) -> bool {
        matches!(
            self,
            EntityKind::Brief | EntityKind::Thread | EntityKind::Asset | EntityKind::Knowledge
        )
    }

    pub fn parse(s: &str) -> Option<EntityKind> {
        EntityKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// The field that marks an entity deleted. Deletes are tombstones: the
/// entity stays, flagged, so a late edit cannot resurrect it by accident.
pub const DELETED_FIELD: &str = "deleted";

/// What an op does to its entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Change {
    /// Sets fields; each field is a last-writer-wins register.
    Set(BTreeMap<String, Value>),
    /// Appends an item (comment, message, version, decision, audit entry).
    /// Items are never edited; the op id identifies each one.
    Append(Value),
    /// Marks the entity deleted (a tombstone register).
    Delete,
}

impl Change {
    fn wire_kind(&self) -> &'static str {
        match self {
            Change::Set(_) => "set",
            Change::Append(_) => "append",
            Change::Delete => "delete",
        }
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

/// Why a stored or received op could not be read.
#[derive(Debug, thiserror::Error)]
pub enum OpDecodeError {
    #[error(transparent)]
    Wire(#[from] proto::ProtoError),
    #[error("unknown entity kind `{0}`")]
    UnknownEntity(String),
    #[error("unknown change kind `{0}`")]
    UnknownChange(String),
    #[error("malformed {kind} body: {source}")]
    Body {
        kind: String,
        source: rmp_serde::decode::Error,
    },
}

impl Op {
    /// The wire envelope for this op.
    pub fn to_wire(&self) -> proto::Op {
        let body = match &self.change {
            Change::Set(fields) => rmp_serde::to_vec_named(fields),
            Change::Append(value) => rmp_serde::to_vec_named(value),
            Change::Delete => Ok(Vec::new()),
        }
        // Values are plain JSON-like data; encoding them cannot fail.
        .unwrap_or_default();
        proto::Op {
            id: self.id,
            hlc: self.hlc,
            actor: self.actor.clone(),
            entity: EntityKey {
                kind: self.entity.kind.as_str().to_owned(),
                id: self.entity.id.clone(),
            },
            kind: self.change.wire_kind().to_owned(),
            body,
        }
    }

    pub fn from_wire(op: proto::Op) -> Result<Op, OpDecodeError> {
        let kind = EntityKind::parse(&op.entity.kind)
            .ok_or_else(|| OpDecodeError::UnknownEntity(op.entity.kind.clone()))?;
        let body_err = |source| OpDecodeError::Body {
            kind: op.kind.clone(),
            source,
        };
        let change = match op.kind.as_str() {
            "set" => Change::Set(rmp_serde::from_slice(&op.body).map_err(body_err)?),
            "append" => Change::Append(rmp_serde::from_slice(&op.body).map_err(body_err)?),
            "delete" => Change::Delete,
            other => return Err(OpDecodeError::UnknownChange(other.to_owned())),
        };
        Ok(Op {
            id: op.id,
            hlc: op.hlc,
            actor: op.actor,
            entity: EntityRef::new(kind, op.entity.id),
            change,
        })
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
