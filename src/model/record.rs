//! Merge rules. An entity is a map of last-writer-wins registers; appended
//! items (comments, versions, decisions, audit entries) are keyed by the op
//! that made them. Applying the same ops in any order, any number of times,
//! gives the same records.

use super::op::{Change, DELETED_FIELD, EntityRef, Op, Stamp};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use spoke_relay::proto::Hlc;
use std::collections::BTreeMap;

/// A field's current value and the stamp of the write that set it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Register {
    pub stamp: Stamp,
    pub value: Value,
}

/// The merged state of one entity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EntityRecord {
    pub fields: BTreeMap<String, Register>,
}

/// An appended item and who appended it when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub actor: String,
    pub value: Value,
}

impl EntityRecord {
    /// Merges a `Set` or `Delete` into the registers. `Append` does not touch
    /// registers; it is stored as an [`Item`] by the caller.
    pub fn merge(&mut self, stamp: Stamp, change: &Change) {
        match change {
            Change::Set(fields) => {
                for (name, value) in fields {
                    self.merge_field(name, stamp, value);
                }
            }
            Change::Delete => self.merge_field(DELETED_FIELD, stamp, &Value::Bool(true)),
            Change::Append(_) => {}
        }
    }

    fn merge_field(&mut self, name: &str, stamp: Stamp, value: &Value) {
        match self.fields.get_mut(name) {
            Some(reg) if reg.stamp > stamp => {}
            // The same stamp twice is the same op delivered again; keep one
            // value deterministically in case a faulty peer reused an id.
            Some(reg) if reg.stamp == stamp => {
                let (incoming, current) = (value.to_string(), reg.value.to_string());
                if incoming > current {
                    reg.value = value.clone();
                }
            }
            Some(reg) => {
                reg.stamp = stamp;
                reg.value = value.clone();
            }
            None => {
                self.fields.insert(
                    name.to_owned(),
                    Register {
                        stamp,
                        value: value.clone(),
                    },
                );
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields
            .get(name)
            .map(|r| &r.value)
            .filter(|v| !v.is_null())
    }

    /// A field decoded as `T`; `None` when absent, null, or of another shape
    /// (for example written by a newer client).
    pub fn get_as<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        self.get(name)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.get(name).and_then(Value::as_str).map(str::to_owned)
    }

    pub fn is_deleted(&self) -> bool {
        self.get(DELETED_FIELD).and_then(Value::as_bool) == Some(true)
    }

    /// Members of a set stored as one boolean register per element, under
    /// keys `prefix:element`, so concurrent adds and removes of different
    /// elements never overwrite each other.
    pub fn set_members(&self, prefix: &str) -> Vec<String> {
        let start = format!("{prefix}:");
        self.fields
            .range(start.clone()..)
            .take_while(|(k, _)| k.starts_with(&start))
            .filter(|(_, r)| r.value.as_bool() == Some(true))
            .map(|(k, _)| k[start.len()..].to_owned())
            .collect()
    }

    /// Entries of a map stored as one register per key (`prefix:key`).
    pub fn map_entries(&self, prefix: &str) -> BTreeMap<String, Value> {
        let start = format!("{prefix}:");
        self.fields
            .range(start.clone()..)
            .take_while(|(k, _)| k.starts_with(&start))
            .filter(|(_, r)| !r.value.is_null())
            .map(|(k, r)| (k[start.len()..].to_owned(), r.value.clone()))
            .collect()
    }

    /// The earliest write to this entity: when and by which op it came to be.
    pub fn first_stamp(&self) -> Option<Stamp> {
        self.fields.values().map(|r| r.stamp).min()
    }

    pub fn last_stamp(&self) -> Option<Stamp> {
        self.fields.values().map(|r| r.stamp).max()
    }

    pub fn encode(&self) -> Vec<u8> {
        // Plain data: maps, strings, numbers. Encoding cannot fail.
        rmp_serde::to_vec_named(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, rmp_serde::decode::Error> {
        rmp_serde::from_slice(bytes)
    }
}

impl Item {
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, rmp_serde::decode::Error> {
        rmp_serde::from_slice(bytes)
    }
}

/// The whole hub state in memory: used by tests, the demo and anything that
/// needs state without a replica file. The redb store applies the same rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub entities: BTreeMap<EntityRef, EntityRecord>,
    pub items: BTreeMap<(EntityRef, Stamp), Item>,
}

impl State {
    pub fn apply(&mut self, op: &Op) {
        let stamp = op.stamp();
        match &op.change {
            Change::Append(value) => {
                self.items
                    .entry((op.entity.clone(), stamp))
                    .or_insert_with(|| Item {
                        actor: op.actor.clone(),
                        value: value.clone(),
                    });
            }
            change => self
                .entities
                .entry(op.entity.clone())
                .or_default()
                .merge(stamp, change),
        }
    }

    /// A digest of the entire state; equal states have equal hashes.
    pub fn hash(&self) -> [u8; 32] {
        let mut h = StateHasher::default();
        for (entity, record) in &self.entities {
            h.entity(entity, &record.encode());
        }
        for ((entity, stamp), item) in &self.items {
            h.item(entity, *stamp, &item.encode());
        }
        h.finish()
    }
}

/// Hashes entities then items, each in key order. The store feeds it the
/// same bytes in the same order, so a replica and a [`State`] built from the
/// same ops hash alike.
#[derive(Default)]
pub struct StateHasher {
    digest: Sha256,
}

impl StateHasher {
    pub fn entity(&mut self, entity: &EntityRef, record: &[u8]) {
        self.digest.update(b"E");
        self.key(entity);
        self.bytes(record);
    }

    pub fn item(&mut self, entity: &EntityRef, stamp: Stamp, item: &[u8]) {
        self.digest.update(b"I");
        self.key(entity);
        self.stamp(stamp);
        self.bytes(item);
    }

    fn key(&mut self, entity: &EntityRef) {
        self.bytes(entity.kind.as_str().as_bytes());
        self.bytes(entity.id.as_bytes());
    }

    fn stamp(&mut self, s: Stamp) {
        let Hlc { wall_ms, logical } = s.hlc;
        self.digest.update(wall_ms.to_be_bytes());
        self.digest.update(logical.to_be_bytes());
        self.digest.update(s.id.client.0.to_be_bytes());
        self.digest.update(s.id.seq.to_be_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        self.digest.update((b.len() as u64).to_be_bytes());
        self.digest.update(b);
    }

    pub fn finish(self) -> [u8; 32] {
        self.digest.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::op::EntityKind;
    use serde_json::json;
    use spoke_relay::proto::{ClientId, OpId};

    fn op(client: u64, seq: u64, wall: u64, change: Change) -> Op {
        Op {
            id: OpId {
                client: ClientId(client),
                seq,
            },
            hlc: Hlc {
                wall_ms: wall,
                logical: 0,
            },
            actor: format!("member{client}"),
            entity: EntityRef::new(EntityKind::Brief, "b-1"),
            change,
        }
    }

    fn set(field: &str, value: Value) -> Change {
        Change::Set(BTreeMap::from([(field.to_owned(), value)]))
    }

    #[test]
    fn later_write_wins_regardless_of_arrival_order() {
        let early = op(1, 1, 100, set("title", json!("first")));
        let late = op(2, 1, 200, set("title", json!("second")));
        for order in [[&early, &late], [&late, &early]] {
            let mut state = State::default();
            for o in order {
                state.apply(o);
            }
            let rec = &state.entities[&early.entity];
            assert_eq!(rec.string("title").as_deref(), Some("second"));
        }
    }

    #[test]
    fn equal_hlc_breaks_ties_by_client_id() {
        let a = op(1, 1, 100, set("title", json!("from client 1")));
        let b = op(2, 1, 100, set("title", json!("from client 2")));
        let mut s1 = State::default();
        s1.apply(&a);
        s1.apply(&b);
        let mut s2 = State::default();
        s2.apply(&b);
        s2.apply(&a);
        assert_eq!(s1, s2);
        let rec = &s1.entities[&a.entity];
        assert_eq!(rec.string("title").as_deref(), Some("from client 2"));
    }

    #[test]
    fn set_elements_merge_independently() {
        let mut state = State::default();
        state.apply(&op(1, 1, 100, set("tags:hero", json!(true))));
        state.apply(&op(2, 1, 101, set("tags:draft", json!(true))));
        state.apply(&op(1, 2, 102, set("tags:hero", json!(false))));
        let rec = &state.entities[&EntityRef::new(EntityKind::Brief, "b-1")];
        assert_eq!(rec.set_members("tags"), vec!["draft".to_owned()]);
    }

    #[test]
    fn delete_is_a_tombstone_that_an_older_edit_cannot_undo() {
        let mut state = State::default();
        state.apply(&op(1, 2, 200, Change::Delete));
        state.apply(&op(2, 1, 100, set("deleted", json!(false))));
        let rec = &state.entities[&EntityRef::new(EntityKind::Brief, "b-1")];
        assert!(rec.is_deleted());
    }

    #[test]
    fn appended_items_are_kept_once_each() {
        let a = op(1, 1, 100, Change::Append(json!({"body": "hi"})));
        let mut state = State::default();
        state.apply(&a);
        state.apply(&a);
        state.apply(&op(2, 1, 50, Change::Append(json!({"body": "earlier"}))));
        assert_eq!(state.items.len(), 2);
        let bodies: Vec<_> = state
            .items
            .values()
            .map(|i| i.value["body"].clone())
            .collect();
        assert_eq!(bodies, vec![json!("earlier"), json!("hi")]);
    }
}
