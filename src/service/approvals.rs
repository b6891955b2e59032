//! Approval services: request a human decision on a subject, decide,
//! revoke, and list what waits for whom. The outcome is always evaluated
//! from the request's appended decisions, so every replica agrees.

use super::Hub;
use crate::model::approval::{
    ApprovalRequest, ApprovalStatus, CastDecision, Decision, DecisionEntry, Evaluation, Stage,
    StageMode, Subject, evaluate,
};
use crate::model::ids::new_entity_id;
use crate::model::input::InputError;
use crate::model::proposal::{Proposal, ProposalKind, ProposalStatus};
use crate::model::{Change, EntityKind, EntityRef, Role};
use anyhow::Result;
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;

const APPROVAL_PREFIX: &str = "r";

/// A request with its evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalView {
    pub id: String,
    pub title: String,
    pub subject: Option<Subject>,
    pub status: ApprovalStatus,
    pub stage: usize,
    pub stages: Vec<Stage>,
    pub requested_by: Option<String>,
    pub waiting_on: Vec<String>,
    pub decisions: Vec<DecisionView>,
    pub evaluation: Evaluation,
    /// Versions reviewers pick from (empty: the subject's own version).
    pub choices: Vec<u32>,
    /// Once approved: the version approved (the standing pick, else the subject's).
    pub approved_version: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DecisionView {
    pub reviewer: String,
    pub stage: u32,
    /// `None` for a revocation.
    pub decision: Option<Decision>,
    pub comment: Option<String>,
    pub at: Option<jiff::Timestamp>,
    /// The version this reviewer picked.
    pub pick: Option<u32>,
}

/// A proposal to offer: what, why, from which sources, who decides.
#[derive(Debug, Clone)]
pub struct ProposalDraft {
    pub kind: ProposalKind,
    pub payload: serde_json::Value,
    pub rationale: String,
    pub citations: Vec<crate::model::thread::Citation>,
    /// Handles or `role:NAME`.
    pub reviewers: Vec<String>,
    /// The model that made it, when one did.
    pub made_by: Option<crate::model::asset::Provenance>,
}

impl Hub {
    /// Asks for a decision on `subject`, stage by stage. Reviewers are
    /// handles or `role:NAME`; every one must resolve to a member.
    pub fn request_approval(
        &mut self,
        title: &str,
        subject: Subject,
        stages: Vec<Stage>,
    ) -> Result<ApprovalView> {
        let changes = self.approval_request_changes(title, subject, stages, &[])?;
        let id = changes.0;
        self.commit(changes.1)?;
        self.approval(&id)
    }

    /// The changes that open a request (its id first), to commit with
    /// others in one commit; `choices` are versions of the subject's asset
    /// reviewers pick one of.
    pub fn approval_request_changes(
        &mut self,
        title: &str,
        subject: Subject,
        stages: Vec<Stage>,
        choices: &[u32],
    ) -> Result<(String, Vec<(EntityRef, Change)>)> {
        if stages.is_empty() {
            return Err(
                InputError::new("an approval needs at least one stage of reviewers").into(),
            );
        }
        for (i, stage) in stages.iter().enumerate() {
            if stage.mode == StageMode::Decide
                && self.expand_reviewers(&stage.reviewers)?.is_empty()
            {
                return Err(InputError::new(format!(
                    "stage {} ({}) has no reviewers: name members (a,b) or a role (role:reviewer)",
                    i + 1,
                    stage.name
                ))
                .into());
            }
            for r in &stage.reviewers {
                if r.strip_prefix("role:").is_none() && self.member(r)?.is_none() {
                    return Err(InputError::new(format!("no member `{r}` to review")).into());
                }
            }
        }
        let id = new_entity_id(APPROVAL_PREFIX);
        let me = self.actor()?.to_owned();
        let mut fields = BTreeMap::from([
            ("title".to_owned(), json!(title)),
            ("subject".to_owned(), json!(subject)),
            ("stages".to_owned(), json!(stages)),
            ("created_by".to_owned(), json!(me)),
        ]);
        if !choices.is_empty() {
            fields.insert("choices".to_owned(), json!(choices));
        }
        let audit = self.audit_entry(json!({
            "action": "approval.requested",
            "approval": id,
            "subject": subject,
            "title": title,
        }));
        let mut changes = vec![
            (
                EntityRef::new(EntityKind::Approval, id.clone()),
                Change::Set(fields),
            ),
            audit,
        ];
        if let Subject::AssetVersion { asset, .. } = &subject {
            changes.push((
                EntityRef::new(EntityKind::Asset, asset.clone()),
                Change::Set(BTreeMap::from([("status".to_owned(), json!("in_review"))])),
            ));
        }
        Ok((id, changes))
    }

    /// Records the acting member's decision on the request's current stage.
    pub fn decide(
        &mut self,
        typed_id: &str,
        decision: Decision,
        comment: Option<&str>,
    ) -> Result<ApprovalView> {
        self.decide_with_pick(typed_id, decision, comment, None)
    }

    /// [`Hub::decide`], choosing one of the versions the request offers.
    pub fn decide_with_pick(
        &mut self,
        typed_id: &str,
        decision: Decision,
        comment: Option<&str>,
        pick: Option<u32>,
    ) -> Result<ApprovalView> {
        let view = self.approval(typed_id)?;
        if let Some(p) = pick {
            if view.choices.is_empty() {
                return Err(InputError::new(format!(
                    "{} offers no versions to pick from; approve it as it is",
                    view.id
                ))
                .into());
            }
            if !view.choices.contains(&p) {
                return Err(InputError::new(format!(
                    "{} offers versions {}; there is no version {p} to pick",
                    view.id,
                    view.choices
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .into());
            }
            if !matches!(decision, Decision::Approved | Decision::ApprovedWithChanges) {
                return Err(InputError::new("a pick goes with an approval").into());
            }
        }
        let comment = comment.map(str::trim).filter(|c| !c.is_empty());
        if decision.requires_comment() && comment.is_none() {
            return Err(InputError::new(format!(
                "{} needs a comment saying why: --comment \"...\"",
                decision_label(decision)
            ))
            .into());
        }
        let me = self.check_can_decide(&view)?;
        let entry = DecisionEntry {
            stage: view.stage as u32,
            reviewer: me,
            decision: Some(decision),
            comment: comment.map(str::to_owned),
            pick,
        };
        self.append_decision(&view, entry)
    }

    /// Withdraws the acting member's decision while the stage is open.
    pub fn revoke_decision(&mut self, typed_id: &str) -> Result<ApprovalView> {
        let view = self.approval(typed_id)?;
        let me = self.check_can_decide(&view)?;
        let standing = view
            .evaluation
            .stages
            .get(view.stage)
            .and_then(|s| s.iter().find(|(r, _)| *r == me))
            .and_then(|(_, d)| *d);
        if standing.is_none() {
            return Err(
                InputError::new(format!("you have no decision on {} to revoke", view.id)).into(),
            );
        }
        let entry = DecisionEntry {
            stage: view.stage as u32,
            reviewer: me,
            decision: None,
            comment: None,
            pick: None,
        };
        self.append_decision(&view, entry)
    }

    fn check_can_decide(&self, view: &ApprovalView) -> Result<String> {
        let me = self.actor()?.to_owned();
        if view.status.is_closed() {
            return Err(InputError::new(format!(
                "{} is closed ({}); a closed request is locked",
                view.id,
                status_name(view.status)
            ))
            .into());
        }
        let reviewers: Vec<&String> = view
            .evaluation
            .stages
            .get(view.stage)
            .map(|s| s.iter().map(|(r, _)| r).collect())
            .unwrap_or_default();
        if !reviewers.contains(&&me) {
            return Err(InputError::new(format!(
                "@{me} is not a reviewer of the current stage of {} (reviewers: {})",
                view.id,
                reviewers
                    .iter()
                    .map(|r| format!("@{r}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into());
        }
        Ok(me)
    }

    fn append_decision(
        &mut self,
        view: &ApprovalView,
        entry: DecisionEntry,
    ) -> Result<ApprovalView> {
        let entity = EntityRef::new(EntityKind::Approval, view.id.clone());
        let action = if entry.decision.is_some() {
            "approval.decided"
        } else {
            "approval.revoked"
        };
        let audit = self.audit_entry(json!({
            "action": action,
            "approval": view.id,
            "stage": entry.stage,
            "decision": entry.decision,
            "comment": entry.comment,
        }));
        self.commit(vec![(entity, Change::Append(json!(entry))), audit])?;
        self.reconcile_approvals()?;
        let after = self.approval(&view.id)?;
        Ok(after)
    }

    /// One request by id or unique prefix, evaluated.
    pub fn approval(&self, typed_id: &str) -> Result<ApprovalView> {
        let id = self.resolve_id(EntityKind::Approval, typed_id, APPROVAL_PREFIX)?;
        let entity = EntityRef::new(EntityKind::Approval, id.clone());
        let record = self.replica.record(&entity)?.unwrap_or_default();
        let request = ApprovalRequest::from_record(&id, &record);
        let items = self.replica.items(&entity)?;
        let mut casts = Vec::new();
        let mut decisions = Vec::new();
        for (stamp, item) in &items {
            let Ok(entry) = serde_json::from_value::<DecisionEntry>(item.value.clone()) else {
                continue;
            };
            decisions.push(DecisionView {
                reviewer: item.actor.clone(),
                stage: entry.stage,
                decision: entry.decision,
                comment: entry.comment.clone(),
                at: jiff::Timestamp::from_millisecond(stamp.hlc.wall_ms as i64).ok(),
                pick: entry.pick,
            });
            casts.push(CastDecision {
                actor: item.actor.clone(),
                entry,
            });
        }
        let members = self.members()?;
        // As the hub judges it: a member who is not a lead never reviews a
        // request it made.
        let leaves_out = request.requested_by.as_deref().filter(|by| {
            !members
                .iter()
                .any(|m| m.handle == *by && m.has_role(Role::Lead))
        });
        let expand = |reviewers: &[String]| {
            let mut handles = expand_with(&members, reviewers);
            handles.retain(|h| Some(h.as_str()) != leaves_out);
            handles
        };
        let evaluation = evaluate(&request.stages, &casts, expand);
        let approved_version = if evaluation.status.lets_next_stage_start() {
            spoke_relay::policy::state::standing_pick(
                decisions
                    .iter()
                    .map(|d| (d.reviewer.as_str(), d.decision, d.pick)),
            )
            .or(match &request.subject {
                Some(Subject::AssetVersion { version, .. }) => Some(*version),
                _ => None,
            })
        } else {
            None
        };
        Ok(ApprovalView {
            id,
            title: record.string("title").unwrap_or_default(),
            subject: request.subject,
            status: evaluation.status,
            stage: evaluation.stage,
            stages: request.stages,
            requested_by: request.requested_by,
            waiting_on: evaluation.waiting_on(),
            decisions,
            evaluation,
            choices: request.choices,
            approved_version,
        })
    }

    /// Every request, open ones first; `mine` keeps those waiting on me.
    pub fn approvals(&self, mine: bool) -> Result<Vec<ApprovalView>> {
        let me = self.actor().ok().map(str::to_owned);
        let mut out = Vec::new();
        for (id, _) in self.replica.records(EntityKind::Approval)? {
            let view = self.approval(&id)?;
            if mine && !me.as_ref().is_some_and(|m| view.waiting_on.contains(m)) {
                continue;
            }
            out.push(view);
        }
        out.sort_by_key(|v| (v.status.is_closed(), v.id.clone()));
        Ok(out)
    }

    /// Offers a proposal (an agent's, or anyone's) and asks `reviewers` to
    /// decide on it. Nothing in it applies until the request is approved.
    pub fn propose(
        &mut self,
        kind: ProposalKind,
        payload: serde_json::Value,
        rationale: &str,
        reviewers: Vec<String>,
    ) -> Result<ApprovalView> {
        self.propose_with(ProposalDraft {
            kind,
            payload,
            rationale: rationale.to_owned(),
            citations: Vec::new(),
            reviewers,
            made_by: None,
        })
    }

    /// [`Hub::propose`] with citations and, for a model's proposal, which
    /// model made it.
    pub fn propose_with(&mut self, draft: ProposalDraft) -> Result<ApprovalView> {
        let ProposalDraft {
            kind,
            payload,
            rationale,
            citations,
            reviewers,
            made_by,
        } = draft;
        let rationale = rationale.as_str();
        let id = new_entity_id("p");
        let me = self.actor()?.to_owned();
        let brief = payload["brief"].clone();
        let proposal = Proposal {
            id: id.clone(),
            kind: Some(kind),
            payload: payload.clone(),
            rationale: Some(rationale.to_owned()),
            citations: citations.clone(),
            brief: brief.as_str().map(str::to_owned),
            status: ProposalStatus::Pending,
            author: Some(me.clone()),
            deleted: false,
        };
        // Check now that it could be applied, so a reviewer never approves the impossible.
        proposal.changes().map_err(InputError::new)?;
        let mut fields = BTreeMap::from([
            ("kind".to_owned(), json!(kind)),
            ("payload".to_owned(), payload),
            ("rationale".to_owned(), json!(rationale)),
            ("brief".to_owned(), brief),
            ("status".to_owned(), json!(ProposalStatus::Pending)),
            ("created_by".to_owned(), json!(me)),
        ]);
        if !citations.is_empty() {
            fields.insert("citations".to_owned(), json!(citations));
        }
        if let Some(p) = made_by {
            fields.insert("provenance".to_owned(), json!(p));
        }
        self.commit(vec![(
            EntityRef::new(EntityKind::Proposal, id.clone()),
            Change::Set(fields),
        )])?;
        let title = format!("Proposal: {}", rationale.lines().next().unwrap_or(""));
        self.request_approval(
            &title,
            Subject::Proposal { id },
            vec![Stage {
                name: "review".into(),
                reviewers,
                deadline: None,
                mode: StageMode::Decide,
            }],
        )
    }

    /// Applies the effects of closed requests that this replica has not seen
    /// applied yet: an approved proposal's changes (authored by this member,
    /// linked to the proposal), a rejected one's status, an asset version's
    /// status. Safe to run anywhere, any number of times: effects are field
    /// writes with fixed values, and each is skipped once its mark is there.
    /// Returns how many requests had effects applied.
    pub fn reconcile_approvals(&mut self) -> Result<usize> {
        let mut applied = 0;
        let mut latest_for_asset: BTreeMap<String, (crate::model::Stamp, String)> = BTreeMap::new();
        let mut closed = Vec::new();
        for (id, rec) in self.replica.records(EntityKind::Approval)? {
            let view = self.approval(&id)?;
            if let (Some(Subject::AssetVersion { asset, .. }), Some(stamp)) =
                (&view.subject, rec.first_stamp())
            {
                let newer = latest_for_asset.get(asset).is_some_and(|(s, _)| *s > stamp);
                if !newer {
                    latest_for_asset.insert(asset.clone(), (stamp, id.clone()));
                }
            }
            if view.status.is_closed() {
                closed.push(view);
            }
        }
        for view in closed {
            let approved = view.status.lets_next_stage_start();
            let mut changes = Vec::new();
            let mut effect = serde_json::Value::Null;
            match &view.subject {
                Some(Subject::AssetVersion { asset, .. }) => {
                    if latest_for_asset.get(asset).map(|(_, id)| id) != Some(&view.id) {
                        continue; // a newer request decides this asset's status
                    }
                    let entity = EntityRef::new(EntityKind::Asset, asset.clone());
                    let rec = self.replica.record(&entity)?.unwrap_or_default();
                    let status = if approved { "approved" } else { "wip" };
                    if rec.string("approval").as_deref() == Some(view.id.as_str())
                        && rec.string("status").as_deref() == Some(status)
                    {
                        continue;
                    }
                    // Sent back with the reviewers' reasons, for its author.
                    let feedback = feedback_of(&view);
                    let mut outcome = BTreeMap::from([
                        ("status".to_owned(), json!(status)),
                        ("approval".to_owned(), json!(view.id)),
                        ("review_feedback".to_owned(), json!(feedback)),
                    ]);
                    // Of several versions offered, the one the reviewers chose.
                    if approved
                        && !view.choices.is_empty()
                        && let Some(v) = view.approved_version
                    {
                        outcome.insert("approved_version".to_owned(), json!(v));
                    }
                    changes.push((entity, Change::Set(outcome)));
                    effect = json!({"asset": asset, "status": status});
                }
                Some(Subject::Proposal { id }) => {
                    let entity = EntityRef::new(EntityKind::Proposal, id.clone());
                    let Some(rec) = self.replica.record(&entity)? else {
                        continue;
                    };
                    let proposal = Proposal::from_record(id, &rec);
                    if proposal.status != ProposalStatus::Pending {
                        continue;
                    }
                    let status = if approved {
                        match proposal.changes() {
                            Ok(c) => changes.extend(c),
                            Err(e) => {
                                effect = json!({"error": e});
                            }
                        }
                        ProposalStatus::Applied
                    } else {
                        ProposalStatus::Rejected
                    };
                    changes.push((
                        entity,
                        Change::Set(BTreeMap::from([
                            ("status".to_owned(), json!(status)),
                            ("approval".to_owned(), json!(view.id)),
                            ("review_feedback".to_owned(), json!(feedback_of(&view))),
                        ])),
                    ));
                    if effect.is_null() {
                        effect =
                            json!({"proposal": id, "status": status, "changes": changes.len() - 1});
                    }
                }
                _ => continue,
            }
            let audit = self.audit_entry(json!({
                "action": "effect.applied",
                "approval": view.id,
                "outcome": view.status,
                "effect": effect,
            }));
            changes.push(audit);
            self.commit(changes)?;
            applied += 1;
        }
        Ok(applied)
    }

    /// An entry for the hub's audit log; the hub's sequencing puts it in the chain.
    fn audit_entry(&self, body: serde_json::Value) -> (EntityRef, Change) {
        let hub = if self.hub_id().is_empty() {
            "hub"
        } else {
            self.hub_id()
        };
        (EntityRef::new(EntityKind::Audit, hub), Change::Append(body))
    }

    fn expand_reviewers(&self, reviewers: &[String]) -> Result<Vec<String>> {
        Ok(expand_with(&self.members()?, reviewers))
    }
}

/// The reviewers' comments on a request, `@who: text`, one per line.
fn feedback_of(view: &ApprovalView) -> Vec<String> {
    view.decisions
        .iter()
        .filter_map(|d| d.comment.as_ref().map(|c| format!("@{}: {c}", d.reviewer)))
        .collect()
}

/// Handles for `reviewers`: names as given, `role:NAME` as every member
/// with that role; sorted, without repeats.
fn expand_with(members: &[crate::model::Member], reviewers: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in reviewers {
        match r.strip_prefix("role:") {
            Some(role) => {
                if let Ok(role) = Role::parse(role) {
                    out.extend(
                        members
                            .iter()
                            .filter(|m| m.has_role(role))
                            .map(|m| m.handle.clone()),
                    );
                }
            }
            None => out.push(r.clone()),
        }
    }
    out.sort();
    out.dedup();
    out
}

pub fn status_name(s: ApprovalStatus) -> String {
    crate::model::serde_name(s)
}

pub fn decision_label(d: Decision) -> String {
    crate::model::serde_name(d)
}
