//! The smallest state the rules need, built by applying accepted ops in
//! seq order: who holds which role, who owns each client id, who created
//! each entity, the fields ownership and assignment rest on, and each
//! approval request's stages, decisions and outcome. Fields merge
//! last-writer-wins by stamp, as the replica's records do. The state is
//! kept as rows (`key -> bytes`) so a store can save just what changed in
//! the same commit that sequences the ops.

use super::approval::{ApprovalStatus, Evaluation, StageMode, evaluate};
use super::rules::{self, Refusal, decision_of};
use super::{Change, DELETED_FIELD, EntityKind, OpRef, Role};
use crate::proto::{Hlc, OpId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The order of writes: clock reading, then op id.
pub type Stamp = (Hlc, OpId);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Register {
    pub stamp: Stamp,
    pub value: Value,
}

/// A decision counted for a request, in stamp order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cast {
    pub stamp: Stamp,
    pub actor: String,
    pub stage: u32,
    pub decision: Option<super::approval::Decision>,
    /// The version an approving reviewer chose, when the request offers several.
    #[serde(default)]
    pub pick: Option<u32>,
}

/// How a request ended, kept on the request and on its subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Closed {
    pub approval: String,
    pub status: ApprovalStatus,
}

/// What the rules know about one entity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The actor of the first accepted op on it.
    #[serde(default)]
    pub creator: Option<String>,
    #[serde(default)]
    pub fields: BTreeMap<String, Register>,
    #[serde(default)]
    pub decisions: Vec<Cast>,
    #[serde(default)]
    pub closed: Option<Closed>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyState {
    /// `kind/id` -> entry; ordered so a kind's entries can be walked.
    entities: BTreeMap<String, Entry>,
    clients: HashMap<u64, String>,
    tokens: HashSet<String>,
    relay_seq: u64,
    /// Whether the relay has granted a role in this hub's log: rules apply
    /// from that op on. A log written before the hub had rules holds no
    /// grant, and what it says stands (a relay writes a grant at the first
    /// Hello of any hub, new or upgraded, before any member's op).
    rules_in_force: bool,
    dirty: BTreeSet<String>,
}

/// Why stored policy rows could not be read.
#[derive(Debug, thiserror::Error)]
#[error("policy row `{key}` is unreadable: {detail}")]
pub struct RowError {
    pub key: String,
    pub detail: String,
}

fn entity_key(kind: EntityKind, id: &str) -> String {
    format!("{kind}/{id}")
}

/// Fields the rules read; the rest of an op's fields are none of theirs.
fn tracked(kind: EntityKind, field: &str) -> bool {
    field == DELETED_FIELD
        || match kind {
            EntityKind::Member => field.starts_with("roles:"),
            EntityKind::Brief => field == "requester" || field.starts_with("assignees:"),
            EntityKind::Approval => field == "stages" || field == "subject" || field == "choices",
            EntityKind::Proposal => field == "brief",
            EntityKind::Task => field == "brief" || field == "assignee",
            EntityKind::Integration => field == "pusher" || field == "lease",
            _ => false,
        }
}

#[derive(Debug, Deserialize)]
struct StageShape {
    #[serde(default)]
    reviewers: Vec<String>,
    #[serde(default)]
    mode: StageMode,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum SubjectShape {
    Proposal {
        id: String,
    },
    AssetVersion {
        asset: String,
    },
    #[serde(other)]
    Other,
}

impl PolicyState {
    /// Rebuilds the state from stored rows.
    pub fn load<K: AsRef<str>, V: AsRef<[u8]>>(
        rows: impl IntoIterator<Item = (K, V)>,
    ) -> Result<PolicyState, RowError> {
        let mut state = PolicyState::default();
        for (key, bytes) in rows {
            let (key, bytes) = (key.as_ref(), bytes.as_ref());
            let bad = |detail: String| RowError {
                key: key.to_owned(),
                detail,
            };
            if let Some(entity) = key.strip_prefix("e/") {
                let entry: Entry = rmp_serde::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
                state.entities.insert(entity.to_owned(), entry);
            } else if let Some(client) = key.strip_prefix("c/") {
                let client: u64 = client.parse().map_err(|_| bad("bad client id".into()))?;
                let owner: String = rmp_serde::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
                state.clients.insert(client, owner);
            } else if let Some(token) = key.strip_prefix("t/") {
                state.tokens.insert(token.to_owned());
            } else if key == "r/seq" {
                state.relay_seq = rmp_serde::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
            } else if key == "r/rules" {
                state.rules_in_force =
                    rmp_serde::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
            }
        }
        Ok(state)
    }

    /// The stored rows judging `ops` reads, so a store with many entities
    /// loads only those: every member (reviewer roles expand over them),
    /// the ops' client ids and entities, and the proposals and requests
    /// their effects name. Load these, then [`PolicyState::subject_rows`].
    pub fn rows_for<'a>(ops: impl IntoIterator<Item = OpRef<'a>>) -> (Vec<String>, &'static str) {
        let mut keys = BTreeSet::from(["r/rules".to_owned()]);
        for op in ops {
            keys.insert(format!("c/{}", op.id.client.0));
            keys.insert(format!("e/{}", entity_key(op.kind, op.entity)));
            // The push lease governs the pusher's writes on these kinds.
            if matches!(
                op.kind,
                EntityKind::Integration | EntityKind::Delivery | EntityKind::Task
            ) {
                keys.insert(format!(
                    "e/{}",
                    entity_key(EntityKind::Integration, super::push::PUSH_ENTITY)
                ));
            }
            if let Change::Set(fields) = op.change {
                if let Some(p) = fields.get("from_proposal").and_then(Value::as_str) {
                    keys.insert(format!("e/{}", entity_key(EntityKind::Proposal, p)));
                }
                if let Some(r) = fields.get("approval").and_then(Value::as_str) {
                    keys.insert(format!("e/{}", entity_key(EntityKind::Approval, r)));
                }
                // A new request's subject takes its outcome when it closes.
                if op.kind == EntityKind::Approval
                    && let Some(subject) = fields.get("subject")
                {
                    match serde_json::from_value::<SubjectShape>(subject.clone()) {
                        Ok(SubjectShape::Proposal { id }) => {
                            keys.insert(format!("e/{}", entity_key(EntityKind::Proposal, &id)));
                        }
                        Ok(SubjectShape::AssetVersion { asset }) => {
                            keys.insert(format!("e/{}", entity_key(EntityKind::Asset, &asset)));
                        }
                        _ => {}
                    }
                }
            }
        }
        (keys.into_iter().collect(), "e/member/")
    }

    /// Rows of the subjects of the requests loaded so far (a request's
    /// outcome is written on its subject too) that are not loaded yet.
    pub fn subject_rows(&self) -> Vec<String> {
        let prefix = "approval/";
        self.entities
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter_map(|(k, _)| self.subject_of(&k[prefix.len()..]))
            .map(|(kind, id)| entity_key(kind, &id))
            .filter(|k| !self.entities.contains_key(k))
            .map(|k| format!("e/{k}"))
            .collect()
    }

    /// Adds more stored rows to a state loaded in parts.
    pub fn extend<K: AsRef<str>, V: AsRef<[u8]>>(
        &mut self,
        rows: impl IntoIterator<Item = (K, V)>,
    ) -> Result<(), RowError> {
        let more = PolicyState::load(rows)?;
        self.entities.extend(more.entities);
        self.clients.extend(more.clients);
        self.tokens.extend(more.tokens);
        self.relay_seq = self.relay_seq.max(more.relay_seq);
        self.rules_in_force |= more.rules_in_force;
        Ok(())
    }

    /// The rows changed since the last call, encoded, to store in the same
    /// commit as the ops that changed them.
    pub fn take_changes(&mut self) -> Vec<(String, Vec<u8>)> {
        let keys = std::mem::take(&mut self.dirty);
        keys.into_iter()
            .filter_map(|key| {
                let bytes = if let Some(entity) = key.strip_prefix("e/") {
                    rmp_serde::to_vec_named(self.entities.get(entity)?)
                } else if let Some(client) = key.strip_prefix("c/") {
                    let client: u64 = client.parse().ok()?;
                    rmp_serde::to_vec_named(self.clients.get(&client)?)
                } else if key.starts_with("t/") {
                    rmp_serde::to_vec_named(&())
                } else if key == "r/rules" {
                    rmp_serde::to_vec_named(&self.rules_in_force)
                } else {
                    rmp_serde::to_vec_named(&self.relay_seq)
                };
                bytes.ok().map(|b| (key, b))
            })
            .collect()
    }

    /// Whether anything changed since the last [`PolicyState::take_changes`].
    pub fn has_changes(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Checks `op` against the state and, if it passes, records it.
    pub fn admit(&mut self, op: &OpRef<'_>, from_relay: bool) -> Result<(), Refusal> {
        rules::judge(self, op, from_relay)?;
        self.record(op);
        Ok(())
    }

    /// Checks `op` without recording it.
    pub fn judge(&self, op: &OpRef<'_>, from_relay: bool) -> Result<(), Refusal> {
        rules::judge(self, op, from_relay)
    }

    /// Whether the hub's rules apply yet (see the field).
    pub fn rules_in_force(&self) -> bool {
        self.rules_in_force
    }

    /// Records an accepted op.
    pub fn record(&mut self, op: &OpRef<'_>) {
        if rules::is_relay_grant(op) {
            if !self.rules_in_force {
                self.rules_in_force = true;
                self.dirty.insert("r/rules".to_owned());
            }
            for token in rules::granted_tokens(op) {
                self.mark_token_granted(token);
            }
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = self.clients.entry(op.id.client.0)
        {
            slot.insert(op.actor.to_owned());
            self.dirty.insert(format!("c/{}", op.id.client.0));
        }
        let key = entity_key(op.kind, op.entity);
        let stamp = (op.hlc, op.id);
        let entry = self.entities.entry(key.clone()).or_default();
        let mut touched = entry.creator.is_none();
        if entry.creator.is_none() {
            entry.creator = Some(op.actor.to_owned());
        }
        let merge = |entry: &mut Entry, name: &str, value: &Value| {
            if !tracked(op.kind, name) {
                return false;
            }
            match entry.fields.get(name) {
                Some(reg) if reg.stamp >= stamp => false,
                _ => {
                    entry.fields.insert(
                        name.to_owned(),
                        Register {
                            stamp,
                            value: value.clone(),
                        },
                    );
                    true
                }
            }
        };
        match op.change {
            Change::Set(fields) => {
                for (name, value) in fields {
                    touched |= merge(entry, name, value);
                }
            }
            Change::Delete => touched |= merge(entry, DELETED_FIELD, &Value::Bool(true)),
            Change::Append(_) => {
                if op.kind == EntityKind::Approval
                    && let Some(d) = decision_of(op)
                {
                    let cast = Cast {
                        stamp,
                        actor: op.actor.to_owned(),
                        stage: d.stage,
                        decision: d.decision,
                        pick: d.pick,
                    };
                    let at = entry.decisions.partition_point(|c| c.stamp < stamp);
                    // The same op found twice in a log counts once.
                    if entry.decisions.get(at).is_none_or(|c| c.stamp != stamp) {
                        entry.decisions.insert(at, cast);
                        touched = true;
                    }
                }
            }
        }
        if touched {
            self.dirty.insert(format!("e/{key}"));
        }
        if op.kind == EntityKind::Approval && touched {
            self.close_if_decided(op.entity);
        }
    }

    /// Locks a request whose decisions closed it, and records the outcome
    /// on its subject so effects can be checked against it.
    fn close_if_decided(&mut self, approval: &str) {
        if self.closed_of(EntityKind::Approval, approval).is_some() {
            return;
        }
        let Some(evaluation) = self.evaluation(approval) else {
            return;
        };
        if !evaluation.status.is_closed() {
            return;
        }
        let closed = Closed {
            approval: approval.to_owned(),
            status: evaluation.status,
        };
        let subject = self.subject_of(approval);
        let key = entity_key(EntityKind::Approval, approval);
        if let Some(entry) = self.entities.get_mut(&key) {
            entry.closed = Some(closed.clone());
            self.dirty.insert(format!("e/{key}"));
        }
        if let Some((kind, id)) = subject {
            let key = entity_key(kind, &id);
            self.entities.entry(key.clone()).or_default().closed = Some(closed);
            self.dirty.insert(format!("e/{key}"));
        }
    }

    fn subject_of(&self, approval: &str) -> Option<(EntityKind, String)> {
        let subject = self.field(EntityKind::Approval, approval, "subject")?;
        match serde_json::from_value::<SubjectShape>(subject.clone()).ok()? {
            SubjectShape::Proposal { id } => Some((EntityKind::Proposal, id)),
            SubjectShape::AssetVersion { asset } => Some((EntityKind::Asset, asset)),
            SubjectShape::Other => None,
        }
    }

    /// Whether `approval` is a request about this entity.
    pub fn approval_is_about(&self, approval: &str, kind: EntityKind, id: &str) -> bool {
        self.subject_of(approval)
            .is_some_and(|(k, i)| k == kind && i == id)
    }

    /// The versions a request offers reviewers to pick from (empty: none).
    pub fn choices(&self, approval: &str) -> Vec<u32> {
        self.field(EntityKind::Approval, approval, "choices")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }

    /// The version an approved request approves: the standing pick of the
    /// reviewer who picked last, else the version its subject names.
    pub fn approved_version(&self, approval: &str) -> Option<u32> {
        let entry = self.entry(EntityKind::Approval, approval)?;
        standing_pick(
            entry
                .decisions
                .iter()
                .map(|c| (c.actor.as_str(), c.decision, c.pick)),
        )
        .or_else(|| {
            self.field(EntityKind::Approval, approval, "subject")
                .and_then(|s| s.get("version"))
                .and_then(Value::as_u64)
                .and_then(|v| u32::try_from(v).ok())
        })
    }

    pub fn entry(&self, kind: EntityKind, id: &str) -> Option<&Entry> {
        self.entities.get(&entity_key(kind, id))
    }

    pub fn is_creator(&self, kind: EntityKind, id: &str, actor: &str) -> bool {
        self.entry(kind, id)
            .and_then(|e| e.creator.as_deref())
            .is_some_and(|c| c == actor)
    }

    pub fn field(&self, kind: EntityKind, id: &str, name: &str) -> Option<&Value> {
        self.entry(kind, id)
            .and_then(|e| e.fields.get(name))
            .map(|r| &r.value)
    }

    pub fn field_str(&self, kind: EntityKind, id: &str, name: &str) -> Option<&str> {
        self.field(kind, id, name).and_then(Value::as_str)
    }

    pub fn closed_of(&self, kind: EntityKind, id: &str) -> Option<&Closed> {
        self.entry(kind, id).and_then(|e| e.closed.as_ref())
    }

    pub fn client_owner(&self, client: u64) -> Option<&str> {
        self.clients.get(&client).map(String::as_str)
    }

    /// The roles `handle` holds now (none if never granted or deleted).
    pub fn roles_of(&self, handle: &str) -> Vec<Role> {
        let Some(entry) = self.entry(EntityKind::Member, handle) else {
            return Vec::new();
        };
        if entry.fields.get(DELETED_FIELD).map(|r| &r.value) == Some(&Value::Bool(true)) {
            return Vec::new();
        }
        entry
            .fields
            .iter()
            .filter(|(_, r)| r.value == Value::Bool(true))
            .filter_map(|(k, _)| k.strip_prefix("roles:"))
            .filter_map(|r| Role::parse(r).ok())
            .collect()
    }

    /// Handles of every member holding `role`.
    pub fn members_with(&self, role: Role) -> Vec<String> {
        let prefix = "member/";
        self.entities
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| &k[prefix.len()..])
            .filter(|h| self.roles_of(h).contains(&role))
            .map(str::to_owned)
            .collect()
    }

    /// Reviewers as handles: names as given, `role:NAME` as every member
    /// holding it; sorted, without repeats.
    pub fn expand(&self, reviewers: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for r in reviewers {
            match r.strip_prefix("role:") {
                Some(role) => {
                    if let Ok(role) = Role::parse(role) {
                        out.extend(self.members_with(role));
                    }
                }
                None => out.push(r.clone()),
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// A request's stages with reviewers as handles. A member who is not a
    /// lead never reviews a request it made: it is left out of every stage.
    pub fn expanded_stages(
        &self,
        stages: &Value,
        creator: Option<&str>,
    ) -> Vec<(Vec<String>, StageMode)> {
        let stages: Vec<StageShape> = serde_json::from_value(stages.clone()).unwrap_or_default();
        let leaves_out = creator.filter(|c| !self.roles_of(c).contains(&Role::Lead));
        stages
            .into_iter()
            .map(|s| {
                let mut reviewers = self.expand(&s.reviewers);
                reviewers.retain(|r| Some(r.as_str()) != leaves_out);
                (reviewers, s.mode)
            })
            .collect()
    }

    /// Where a request stands, from its stages and counted decisions.
    pub fn evaluation(&self, approval: &str) -> Option<Evaluation> {
        let entry = self.entry(EntityKind::Approval, approval)?;
        let creator = entry.creator.as_deref()?;
        let stages = entry
            .fields
            .get("stages")
            .map(|r| r.value.clone())
            .unwrap_or(Value::Null);
        let stages = self.expanded_stages(&stages, Some(creator));
        let mut evaluation = evaluate(
            &stages,
            entry
                .decisions
                .iter()
                .map(|c| (c.actor.as_str(), c.stage, c.decision)),
        );
        // A request recorded closed stays closed (locked), whatever the
        // members' roles became since.
        if let Some(closed) = &entry.closed {
            evaluation.status = closed.status;
        }
        Some(evaluation)
    }

    /// Whether a token's role was already granted to its member.
    pub fn token_granted(&self, token: &str) -> bool {
        self.tokens.contains(token)
    }

    fn mark_token_granted(&mut self, token: &str) {
        if self.tokens.insert(token.to_owned()) {
            self.dirty.insert(format!("t/{token}"));
        }
    }

    /// The next client seq for an op the relay writes itself.
    pub fn next_relay_seq(&mut self) -> u64 {
        self.relay_seq += 1;
        self.dirty.insert("r/seq".to_owned());
        self.relay_seq
    }
}

/// Of decisions in stamp order (actor, decision, pick): each reviewer's
/// standing decision, and of those that approve with a pick, the latest
/// one's pick. The relay and every replica choose with this one rule.
pub fn standing_pick<'a>(
    decisions: impl IntoIterator<Item = (&'a str, Option<super::approval::Decision>, Option<u32>)>,
) -> Option<u32> {
    use super::approval::Decision;
    let mut standing: Vec<(&str, Option<Decision>, Option<u32>)> = Vec::new();
    for (actor, decision, pick) in decisions {
        standing.retain(|(a, _, _)| *a != actor);
        standing.push((actor, decision, pick));
    }
    standing
        .iter()
        .rev()
        .filter(|(_, d, _)| matches!(d, Some(Decision::Approved | Decision::ApprovedWithChanges)))
        .find_map(|(_, _, pick)| *pick)
}
