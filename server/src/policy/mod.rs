//! Who may change what: the hub's roles, the entity kinds they act on, and
//! the rules the relay checks before it sequences an op and every replica
//! checks again when it applies the log, in seq order, against the same
//! state. The rules are data ([`rules::TABLE`]) plus a few that need state
//! (owners, assignees, a request's current reviewers, an approval's outcome).

pub mod approval;
pub mod push;
pub mod rules;
pub mod state;

pub use rules::{Action, Refusal, Rule};
pub use state::PolicyState;

use crate::proto::{self, Hlc, OpId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// The actor of the ops the relay itself writes (role grants from tokens).
/// Handles cannot contain `:`, so no member can claim it.
pub const RELAY_ACTOR: &str = ":relay";

/// The client id reserved for the relay's own ops.
pub const RELAY_CLIENT: proto::ClientId = proto::ClientId(0);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Lead,
    Creative,
    Reviewer,
    Requester,
    Agent,
    ReadOnly,
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`: use one of lead, creative, reviewer, requester, agent, read-only")]
pub struct UnknownRole(pub String);

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Lead,
        Role::Creative,
        Role::Reviewer,
        Role::Requester,
        Role::Agent,
        Role::ReadOnly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Lead => "lead",
            Role::Creative => "creative",
            Role::Reviewer => "reviewer",
            Role::Requester => "requester",
            Role::Agent => "agent",
            Role::ReadOnly => "read-only",
        }
    }

    pub fn parse(text: &str) -> Result<Role, UnknownRole> {
        let norm = text.trim().to_ascii_lowercase().replace('_', "-");
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == norm || (norm == "readonly" && *r == Role::ReadOnly))
            .ok_or_else(|| UnknownRole(text.to_owned()))
    }

    /// Whether this role may submit ops at all.
    pub fn can_write(self) -> bool {
        !matches!(self, Role::ReadOnly)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds of entity a hub holds.
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
    /// A connector to an outside tracker or webhook, and the push lease.
    Integration,
    /// An outbox item: one push to one connector.
    Delivery,
    /// A generation workflow template (a ComfyUI graph and its placeholders).
    Template,
}

impl EntityKind {
    pub const ALL: [EntityKind; 13] = [
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
        EntityKind::Integration,
        EntityKind::Delivery,
        EntityKind::Template,
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
            EntityKind::Integration => "integration",
            EntityKind::Delivery => "delivery",
            EntityKind::Template => "template",
        }
    }

    /// Kinds whose text the search index covers.
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

/// Why an op's body could not be read.
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

impl Change {
    pub fn wire_kind(&self) -> &'static str {
        match self {
            Change::Set(_) => "set",
            Change::Append(_) => "append",
            Change::Delete => "delete",
        }
    }

    /// The body bytes of this change as they travel in an op.
    pub fn encode_body(&self) -> Vec<u8> {
        match self {
            Change::Set(fields) => rmp_serde::to_vec_named(fields),
            Change::Append(value) => rmp_serde::to_vec_named(value),
            Change::Delete => Ok(Vec::new()),
        }
        // Values are plain JSON-like data; encoding them cannot fail.
        .unwrap_or_default()
    }

    /// Reads a change from an op's `kind` and body.
    pub fn decode(kind: &str, body: &[u8]) -> Result<Change, OpDecodeError> {
        let body_err = |source| OpDecodeError::Body {
            kind: kind.to_owned(),
            source,
        };
        Ok(match kind {
            "set" => Change::Set(rmp_serde::from_slice(body).map_err(body_err)?),
            "append" => Change::Append(rmp_serde::from_slice(body).map_err(body_err)?),
            "delete" => Change::Delete,
            other => return Err(OpDecodeError::UnknownChange(other.to_owned())),
        })
    }
}

/// An op as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct OpRef<'a> {
    pub id: OpId,
    pub hlc: Hlc,
    pub actor: &'a str,
    pub kind: EntityKind,
    pub entity: &'a str,
    pub change: &'a Change,
}

/// An op decoded from the wire, owning its parts.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedOp {
    pub id: OpId,
    pub hlc: Hlc,
    pub actor: String,
    pub kind: EntityKind,
    pub entity: String,
    pub change: Change,
}

impl DecodedOp {
    pub fn from_wire(op: &proto::Op) -> Result<DecodedOp, OpDecodeError> {
        let kind = EntityKind::parse(&op.entity.kind)
            .ok_or_else(|| OpDecodeError::UnknownEntity(op.entity.kind.clone()))?;
        Ok(DecodedOp {
            id: op.id,
            hlc: op.hlc,
            actor: op.actor.clone(),
            kind,
            entity: op.entity.id.clone(),
            change: Change::decode(&op.kind, &op.body)?,
        })
    }

    /// Decodes an op's stored encoding.
    pub fn decode(bytes: &[u8]) -> Result<DecodedOp, OpDecodeError> {
        DecodedOp::from_wire(&proto::decode_op(bytes)?)
    }

    pub fn as_ref(&self) -> OpRef<'_> {
        OpRef {
            id: self.id,
            hlc: self.hlc,
            actor: &self.actor,
            kind: self.kind,
            entity: &self.entity,
            change: &self.change,
        }
    }
}
