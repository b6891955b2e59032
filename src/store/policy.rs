//! The hub's rules in the replica: the policy state the log left (kept in
//! its own table, updated in the commit that applies the ops), the refused
//! ops (by the relay, or found in the log), the rollback of a local op the
//! hub refused, and the check a local change passes before it is queued.

use super::tables::{LOG, PENDING, POLICY, REFUSED};
use super::{AtPath, Replica, ReplicaMeta, StoreError};
use crate::model::{EntityKind, Op};
use redb::{ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use serde_json::json;
use spoke_relay::policy::{PolicyState, RELAY_ACTOR, RELAY_CLIENT, Refusal, Rule, rules};
use spoke_relay::proto::{Hlc, OpId};

/// An op the hub's rules refused, as `spoke audit refused` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefusedOp {
    pub op: String,
    /// The hub seq, when the op is in the log (refused there by every replica).
    pub seq: Option<u64>,
    pub actor: String,
    pub entity: String,
    /// `set`, `append` or `delete`, with the fields a set names.
    pub change: String,
    pub rule: String,
    pub message: String,
    /// `relay` (refused before sequencing) or `replica` (refused in the log).
    pub by: String,
}

impl RefusedOp {
    fn new(op: &Op, seq: Option<u64>, refusal: &Refusal, by: &str) -> RefusedOp {
        RefusedOp {
            op: op.id.to_string(),
            seq,
            actor: op.actor.clone(),
            entity: op.entity.to_string(),
            change: describe(op),
            rule: refusal.rule.name().to_owned(),
            message: refusal.message.clone(),
            by: by.to_owned(),
        }
    }
}

fn describe(op: &Op) -> String {
    match &op.change {
        crate::model::Change::Set(fields) => format!(
            "set {}",
            fields.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
        other => other.wire_kind().to_owned(),
    }
}

impl Replica {
    /// The policy rows judging `ops` needs (not the whole state: a big hub
    /// has a row per entity).
    pub(super) fn load_policy_in(
        &self,
        txn: &WriteTransaction,
        ops: &[Op],
    ) -> Result<PolicyState, StoreError> {
        let table = txn.open_table(POLICY).at(&self.path)?;
        let corrupt = |e: spoke_relay::policy::state::RowError| StoreError::Corrupt {
            path: self.path.clone(),
            detail: e.to_string(),
        };
        let (keys, prefix) = PolicyState::rows_for(ops.iter().map(Op::policy_ref));
        let mut rows = Vec::new();
        for row in table.range(prefix..).at(&self.path)? {
            let (k, v) = row.at(&self.path)?;
            if !k.value().starts_with(prefix) {
                break;
            }
            rows.push((k.value().to_owned(), v.value().to_vec()));
        }
        let read = |keys: &[String], rows: &mut Vec<(String, Vec<u8>)>| {
            for key in keys {
                if let Some(v) = table.get(key.as_str()).at(&self.path)? {
                    rows.push((key.clone(), v.value().to_vec()));
                }
            }
            Ok::<(), StoreError>(())
        };
        read(&keys, &mut rows)?;
        let mut policy = PolicyState::load(rows).map_err(corrupt)?;
        let mut subjects = Vec::new();
        read(&policy.subject_rows(), &mut subjects)?;
        policy.extend(subjects).map_err(corrupt)?;
        Ok(policy)
    }

    pub(super) fn save_policy_in(
        &self,
        txn: &WriteTransaction,
        policy: &mut PolicyState,
    ) -> Result<(), StoreError> {
        let mut table = txn.open_table(POLICY).at(&self.path)?;
        for (k, v) in policy.take_changes() {
            table.insert(k.as_str(), v.as_slice()).at(&self.path)?;
        }
        Ok(())
    }

    pub(super) fn record_refusal_in(
        &self,
        txn: &WriteTransaction,
        refused: &Refused,
    ) -> Result<(), StoreError> {
        let mut table = txn.open_table(REFUSED).at(&self.path)?;
        let bytes = rmp_serde::to_vec_named(&refused.record).unwrap_or_default();
        table.insert(refused.key, bytes.as_slice()).at(&self.path)?;
        Ok(())
    }

    /// A field of an entity as the hub's log has it (sequenced ops only,
    /// for the fields the rules track), not as this replica's queued ops
    /// would make it: what every replica and the relay agree on.
    pub fn confirmed_field(
        &self,
        kind: EntityKind,
        id: &str,
        field: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        Ok(self
            .confirmed_entry(kind, id)?
            .and_then(|e| e.fields.get(field).map(|r| r.value.clone())))
    }

    /// Who made an entity, as the hub's log says: the actor of the first
    /// accepted op on it (the relay checked the actor against its token).
    pub fn confirmed_creator(
        &self,
        kind: EntityKind,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self.confirmed_entry(kind, id)?.and_then(|e| e.creator))
    }

    fn confirmed_entry(
        &self,
        kind: EntityKind,
        id: &str,
    ) -> Result<Option<spoke_relay::policy::state::Entry>, StoreError> {
        let txn = self.db.begin_read().at(&self.path)?;
        let table = match txn.open_table(POLICY) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e).at(&self.path),
        };
        let key = format!("e/{kind}/{id}");
        let Some(bytes) = table.get(key.as_str()).at(&self.path)? else {
            return Ok(None);
        };
        let entry: spoke_relay::policy::state::Entry = rmp_serde::from_slice(bytes.value())
            .map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!("policy row `{key}`: {e}"),
            })?;
        Ok(Some(entry))
    }

    /// Every refused op this replica knows of, in hub order (relay refusals last).
    pub fn refused(&self) -> Result<Vec<RefusedOp>, StoreError> {
        let txn = self.db.begin_read().at(&self.path)?;
        let table = match txn.open_table(REFUSED) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::db(&self.path, e)),
        };
        let mut out = Vec::new();
        for row in table.iter().at(&self.path)? {
            let (_, v) = row.at(&self.path)?;
            if let Ok(r) = rmp_serde::from_slice::<RefusedOp>(v.value()) {
                out.push(r);
            }
        }
        out.sort_by_key(|r| (r.seq.is_none(), r.seq, r.op.clone()));
        Ok(out)
    }

    /// The relay refused these local ops: they leave the queue, are recorded
    /// with their rule, and the materialized state is rebuilt without them.
    /// Returns how many were still pending.
    pub fn refuse_pending(&self, refusals: &[(OpId, Refusal)]) -> Result<usize, StoreError> {
        let meta = self.meta()?;
        let txn = self.begin_write()?;
        let mut removed = 0;
        for (id, refusal) in refusals {
            if id.client != meta.client_id {
                continue;
            }
            let bytes = {
                let mut pending = txn.open_table(PENDING).at(&self.path)?;
                pending
                    .remove(id.seq)
                    .at(&self.path)?
                    .map(|v| v.value().to_vec())
            };
            let Some(bytes) = bytes else { continue };
            removed += 1;
            if let Ok(op) = Op::decode(&bytes) {
                let record = RefusedOp::new(&op, None, refusal, "relay");
                let refused = Refused {
                    key: (op.id.client.0, op.id.seq),
                    record,
                    own: Some(op.id),
                };
                self.record_refusal_in(&txn, &refused)?;
            }
        }
        if removed > 0 {
            self.rebuild_in(&txn)?;
        }
        self.commit(txn)?;
        Ok(removed)
    }

    /// Rebuilds the materialized tables, the applied set and the policy
    /// state from the stored ops: the log in seq order through the rules
    /// (refusals recorded), then the pending queue as this replica's
    /// optimistic view.
    pub(super) fn rebuild_in(&self, txn: &WriteTransaction) -> Result<(), StoreError> {
        let mut log_ops = Vec::new();
        {
            let log = txn.open_table(LOG).at(&self.path)?;
            for row in log.iter().at(&self.path)? {
                let (k, v) = row.at(&self.path)?;
                log_ops.push((k.value(), v.value().to_vec()));
            }
        }
        let pending = self.decode_pending(&txn.open_table(PENDING).at(&self.path)?)?;
        self.clear_state_in(txn)?;
        txn.delete_table(POLICY).at(&self.path)?;
        txn.open_table(POLICY).at(&self.path)?;
        {
            // Log refusals are found again below; the relay's stay.
            let mut refused = txn.open_table(REFUSED).at(&self.path)?;
            let mut in_log = Vec::new();
            for row in refused.iter().at(&self.path)? {
                let (k, v) = row.at(&self.path)?;
                let keep = rmp_serde::from_slice::<RefusedOp>(v.value())
                    .map(|r| r.seq.is_none())
                    .unwrap_or(false);
                if !keep {
                    in_log.push(k.value());
                }
            }
            for key in in_log {
                refused.remove(key).at(&self.path)?;
            }
        }
        let mut policy = PolicyState::default();
        let mut accepted = Vec::with_capacity(log_ops.len());
        for (seq, bytes) in log_ops {
            match judge_sequenced(&mut policy, seq, &bytes) {
                Ok(op) => accepted.push(op),
                Err(refused) => self.record_refusal_in(txn, &refused)?,
            }
        }
        self.apply_in(txn, &accepted)?;
        self.apply_in(txn, &pending)?;
        self.save_policy_in(txn, &mut policy)?;
        self.bump_search_resets(txn)
    }

    /// Checks local changes against the rules as this replica knows them
    /// (the log's state, plus its own queued ops); nothing is written. A
    /// replica that never joined a hub is its own hub: its member leads it.
    pub(super) fn check_local_in(
        &self,
        txn: &WriteTransaction,
        meta: &ReplicaMeta,
        ops: &[Op],
    ) -> Result<(), StoreError> {
        let pending = {
            let table = txn.open_table(PENDING).at(&self.path)?;
            let mut out = Vec::new();
            for row in table.iter().at(&self.path)? {
                let (_, v) = row.at(&self.path)?;
                if let Ok(op) = Op::decode(v.value()) {
                    out.push(op);
                }
            }
            out
        };
        let all: Vec<Op> = pending.iter().chain(ops).cloned().collect();
        let mut policy = self.load_policy_in(txn, &all)?;
        if meta.hub_url.is_none()
            && let Some(me) = &meta.me
        {
            let grant = crate::model::Change::Set(
                [(format!("roles:{}", crate::model::Role::Lead), json!(true))].into(),
            );
            let view = spoke_relay::policy::OpRef {
                id: OpId {
                    client: RELAY_CLIENT,
                    seq: 0,
                },
                hlc: Hlc::default(),
                actor: RELAY_ACTOR,
                kind: EntityKind::Member,
                entity: me,
                change: &grant,
            };
            let _ = policy.admit(&view, true);
        }
        for op in &pending {
            let _ = policy.admit(&op.policy_ref(), false);
        }
        for op in ops {
            policy
                .admit(&op.policy_ref(), false)
                .map_err(StoreError::Refused)?;
        }
        Ok(())
    }
}

/// A sequenced op the rules refused (or could not read), as recorded.
pub(super) struct Refused {
    pub key: (u64, u64),
    pub record: RefusedOp,
    /// The op's id when it could be read (a local op must leave the queue).
    pub own: Option<OpId>,
}

/// Reads one sequenced op and judges it against the state before it; an
/// accepted op is recorded in `policy`. An op this build cannot read is
/// refused as malformed (the relay never stores one), so one bad op cannot
/// stop a replica from following the hub.
pub(super) fn judge_sequenced(
    policy: &mut PolicyState,
    seq: u64,
    bytes: &[u8],
) -> Result<Op, Box<Refused>> {
    let op = match Op::decode(bytes) {
        Ok(op) => op,
        Err(e) => {
            let envelope = spoke_relay::proto::decode_op(bytes).ok();
            let refusal = Refusal::new(Rule::Malformed, format!("hub seq {seq}: {e}"));
            return Err(Box::new(Refused {
                key: envelope
                    .as_ref()
                    .map(|o| (o.id.client.0, o.id.seq))
                    .unwrap_or((u64::MAX, seq)),
                record: RefusedOp {
                    op: envelope
                        .as_ref()
                        .map(|o| o.id.to_string())
                        .unwrap_or_else(|| "?".into()),
                    seq: Some(seq),
                    actor: envelope
                        .as_ref()
                        .map(|o| o.actor.clone())
                        .unwrap_or_default(),
                    entity: envelope
                        .as_ref()
                        .map(|o| o.entity.to_string())
                        .unwrap_or_default(),
                    change: envelope
                        .as_ref()
                        .map(|o| o.kind.clone())
                        .unwrap_or_default(),
                    rule: refusal.rule.name().to_owned(),
                    message: refusal.message,
                    by: "replica".into(),
                },
                own: envelope.map(|o| o.id),
            }));
        }
    };
    let view = op.policy_ref();
    match policy.admit(&view, rules::is_relay_grant(&view)) {
        Ok(()) => Ok(op),
        Err(refusal) => Err(Box::new(Refused {
            key: (op.id.client.0, op.id.seq),
            record: RefusedOp::new(&op, Some(seq), &refusal, "replica"),
            own: Some(op.id),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Change, EntityRef, Role};
    use spoke_relay::proto::ClientId;

    fn rows(replica: &Replica) -> Vec<(String, Vec<u8>)> {
        let txn = replica.db.begin_read().expect("read");
        let table = txn.open_table(POLICY).expect("table");
        table
            .iter()
            .expect("iter")
            .map(|r| {
                let (k, v) = r.expect("row");
                (k.value().to_owned(), v.value().to_vec())
            })
            .collect()
    }

    fn op(client: u64, seq: u64, actor: &str, entity: EntityRef, change: Change) -> Op {
        Op {
            id: OpId {
                client: ClientId(client),
                seq,
            },
            hlc: Hlc {
                wall_ms: 1_000 + seq + client * 100,
                logical: 0,
            },
            actor: actor.into(),
            entity,
            change,
        }
    }

    /// Judging a log one op per batch, each loading only the rows it needs,
    /// leaves the same policy state as replaying the whole log at once.
    #[test]
    fn rows_loaded_per_batch_match_a_full_replay() {
        let dir = tempfile::tempdir().expect("tmp");
        let replica = Replica::create(&dir.path().join("r.redb"), &ReplicaMeta::new(ClientId(9)))
            .expect("create");
        let set = |pairs: serde_json::Value| {
            Change::Set(
                pairs
                    .as_object()
                    .expect("an object")
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            )
        };
        let log = [
            Op::relay_grant(1, "ana", Role::Lead, 1),
            Op::relay_grant(2, "kenji", Role::Creative, 2),
            op(
                1,
                1,
                "ana",
                EntityRef::new(EntityKind::Brief, "b-1"),
                set(json!({"title": "x"})),
            ),
            op(
                2,
                1,
                "kenji",
                EntityRef::new(EntityKind::Proposal, "p-1"),
                set(
                    json!({"kind": "assignment", "brief": "b-1", "payload": {"brief": "b-1", "assignee": "kenji"}}),
                ),
            ),
            op(
                2,
                2,
                "kenji",
                EntityRef::new(EntityKind::Approval, "r-1"),
                set(json!({"subject": {"type": "proposal", "id": "p-1"},
                    "stages": [{"name": "review", "reviewers": ["ana"]}]})),
            ),
            op(
                1,
                2,
                "ana",
                EntityRef::new(EntityKind::Approval, "r-1"),
                Change::Append(json!({"stage": 0, "reviewer": "ana", "decision": "approved"})),
            ),
            // The effect, written by the creative's replica.
            op(
                2,
                3,
                "kenji",
                EntityRef::new(EntityKind::Brief, "b-1"),
                set(json!({"assignees:kenji": true, "from_proposal": "p-1"})),
            ),
        ];
        for (i, o) in log.iter().enumerate() {
            replica
                .apply_sequenced(&[(i as u64 + 1, o.encode().expect("encode"))])
                .expect("apply");
        }
        assert!(replica.refused().expect("refused").is_empty());
        let assigned = replica
            .record(&EntityRef::new(EntityKind::Brief, "b-1"))
            .expect("read")
            .and_then(|r| r.get("assignees:kenji").cloned());
        assert_eq!(assigned, Some(json!(true)));
        let piecewise = rows(&replica);
        replica.rebuild_cache().expect("rebuild");
        assert_eq!(piecewise, rows(&replica));
    }
}
