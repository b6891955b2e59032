//! Approval requests: a subject, stages of reviewers, their decisions and the
//! rule that combines decisions into a result.

use super::record::EntityRecord;
use serde::{Deserialize, Serialize};

pub use spoke_relay::policy::approval::{
    ApprovalStatus, Decision, Evaluation, StageMode, stage_result,
};

/// What is being approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Subject {
    Proposal { id: String },
    Draft { thread: String, message: String },
    AssetVersion { asset: String, version: u32 },
}

impl Subject {
    /// `a-hero@2`, `proposal p-x`, `draft brief:b-x/m-1`.
    pub fn label(&self) -> String {
        match self {
            Subject::AssetVersion { asset, version } => format!("{asset}@{version}"),
            Subject::Proposal { id } => format!("proposal {id}"),
            Subject::Draft { thread, message } => format!("draft {thread}/{message}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub name: String,
    /// Member handles, or `role:reviewer` for anyone with that role.
    pub reviewers: Vec<String>,
    #[serde(default)]
    pub deadline: Option<jiff::Timestamp>,
    #[serde(default)]
    pub mode: StageMode,
}

/// A decision as appended to a request (a revocation names the decision it undoes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionEntry {
    pub stage: u32,
    pub reviewer: String,
    pub decision: Option<Decision>,
    #[serde(default)]
    pub comment: Option<String>,
    /// The version an approving reviewer chose, when the request offers several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pick: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApprovalRequest {
    pub id: String,
    pub subject: Option<Subject>,
    pub stages: Vec<Stage>,
    pub requested_by: Option<String>,
    /// Versions of the subject's asset reviewers pick from (empty: none).
    pub choices: Vec<u32>,
    pub deleted: bool,
}

impl ApprovalRequest {
    pub fn from_record(id: &str, rec: &EntityRecord) -> ApprovalRequest {
        ApprovalRequest {
            id: id.to_owned(),
            subject: rec.get_as("subject"),
            stages: rec.get_as("stages").unwrap_or_default(),
            requested_by: rec.string("created_by"),
            choices: rec.get_as("choices").unwrap_or_default(),
            deleted: rec.is_deleted(),
        }
    }
}

/// One decision as the evaluation sees it: who made it (the op's actor,
/// never a field a client could fake) and what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct CastDecision {
    pub actor: String,
    pub entry: DecisionEntry,
}

/// Evaluates a request: `decisions` in op order (their stamps), `expand`
/// turns a stage's reviewer list (handles and `role:NAME`) into handles.
/// Stages run in order; a stage that ends approved (with or without
/// changes) starts the next; a rejection or a request for changes closes
/// the request. Revoking (`decision: None`) withdraws a reviewer's standing
/// decision while the stage is open. Once closed, nothing changes it.
pub fn evaluate(
    stages: &[Stage],
    decisions: &[CastDecision],
    expand: impl Fn(&[String]) -> Vec<String>,
) -> Evaluation {
    let stages: Vec<(Vec<String>, StageMode)> = stages
        .iter()
        .map(|s| (expand(&s.reviewers), s.mode))
        .collect();
    spoke_relay::policy::approval::evaluate(
        &stages,
        decisions
            .iter()
            .map(|c| (c.actor.as_str(), c.entry.stage, c.entry.decision)),
    )
}

#[cfg(test)]
mod tests {
    use super::Decision::*;
    use super::*;

    fn stage(reviewers: &[&str]) -> Stage {
        Stage {
            name: "review".into(),
            reviewers: reviewers.iter().map(|r| (*r).to_owned()).collect(),
            deadline: None,
            mode: StageMode::Decide,
        }
    }

    fn cast(actor: &str, stage: u32, decision: Option<Decision>) -> CastDecision {
        CastDecision {
            actor: actor.into(),
            entry: DecisionEntry {
                stage,
                reviewer: actor.into(),
                decision,
                comment: None,
                pick: None,
            },
        }
    }

    fn same(r: &[String]) -> Vec<String> {
        r.to_vec()
    }

    #[test]
    fn stages_run_in_order_and_the_last_approval_closes_the_request() {
        let stages = [stage(&["ana", "ben"]), stage(&["cy"])];
        let e = evaluate(&stages, &[cast("ana", 0, Some(Approved))], same);
        assert_eq!((e.status, e.stage), (ApprovalStatus::Pending, 0));
        assert_eq!(e.waiting_on(), ["ben"]);
        let e = evaluate(
            &stages,
            &[
                cast("ana", 0, Some(Approved)),
                cast("ben", 0, Some(ApprovedWithChanges)),
            ],
            same,
        );
        assert_eq!(
            (e.status, e.stage),
            (ApprovalStatus::Pending, 1),
            "stage 2 started"
        );
        let e = evaluate(
            &stages,
            &[
                cast("ana", 0, Some(Approved)),
                cast("ben", 0, Some(Approved)),
                cast("cy", 1, Some(Approved)),
            ],
            same,
        );
        assert_eq!(e.status, ApprovalStatus::Approved);
    }

    #[test]
    fn a_decision_for_a_stage_not_yet_open_does_not_count() {
        let stages = [stage(&["ana"]), stage(&["cy"])];
        let e = evaluate(&stages, &[cast("cy", 1, Some(Approved))], same);
        assert_eq!((e.status, e.ignored), (ApprovalStatus::Pending, 1));
    }

    #[test]
    fn revoking_recomputes_and_non_reviewers_are_ignored() {
        let stages = [stage(&["ana", "ben"])];
        let e = evaluate(
            &stages,
            &[
                cast("ana", 0, Some(Rejected)),
                cast("mallory", 0, Some(Approved)),
            ],
            same,
        );
        assert_eq!((e.status, e.ignored), (ApprovalStatus::Rejected, 1));
        // Revoked before ben decided: the request stays open.
        let e = evaluate(
            &stages,
            &[cast("ana", 0, Some(Approved)), cast("ana", 0, None)],
            same,
        );
        assert_eq!(e.status, ApprovalStatus::Pending);
        assert_eq!(e.waiting_on(), ["ana", "ben"]);
    }

    #[test]
    fn a_closed_request_is_locked() {
        let stages = [stage(&["ana", "ben"])];
        let e = evaluate(
            &stages,
            &[
                cast("ana", 0, Some(ChangesRequested)),
                cast("ana", 0, None),
                cast("ben", 0, Some(Approved)),
            ],
            same,
        );
        assert_eq!(e.status, ApprovalStatus::ChangesRequested);
        assert_eq!(e.ignored, 2);
    }

    #[test]
    fn every_mix_of_two_decisions_follows_the_combination_rule() {
        let all = [Approved, ApprovedWithChanges, ChangesRequested, Rejected];
        for a in all {
            for b in all {
                let e = evaluate(
                    &[stage(&["ana", "ben"])],
                    &[cast("ana", 0, Some(a)), cast("ben", 0, Some(b))],
                    same,
                );
                // A blocking first decision closes the request before the second counts.
                let want = if matches!(a, ChangesRequested | Rejected) {
                    stage_result(&[Some(a), None])
                } else {
                    stage_result(&[Some(a), Some(b)])
                };
                assert_eq!(e.status, want, "{a:?} then {b:?}");
            }
        }
    }

    #[test]
    fn comment_only_stages_do_not_hold_the_request() {
        let mut legal = stage(&["lee"]);
        legal.mode = StageMode::CommentOnly;
        let e = evaluate(&[legal, stage(&["ana"])], &[], same);
        assert_eq!(e.stage, 1);
        let e = evaluate(
            &[stage(&["ana"]), {
                let mut s = stage(&["lee"]);
                s.mode = StageMode::CommentOnly;
                s
            }],
            &[cast("ana", 0, Some(Approved))],
            same,
        );
        assert_eq!(e.status, ApprovalStatus::Approved);
    }

    #[test]
    fn combination_rule_follows_the_documented_precedence() {
        use ApprovalStatus as S;
        assert_eq!(stage_result(&[Some(Approved), Some(Approved)]), S::Approved);
        assert_eq!(
            stage_result(&[Some(Approved), Some(ApprovedWithChanges)]),
            S::ApprovedWithChanges
        );
        assert_eq!(stage_result(&[Some(Rejected), Some(Approved)]), S::Rejected);
        assert_eq!(
            stage_result(&[Some(Rejected), Some(ChangesRequested)]),
            S::ChangesRequested
        );
        assert_eq!(stage_result(&[Some(Approved), None]), S::Pending);
        assert_eq!(stage_result(&[Some(Rejected), None]), S::Rejected);
        assert_eq!(stage_result(&[]), S::Pending);
    }

    #[test]
    fn only_changes_requested_and_rejected_need_a_comment() {
        assert!(Rejected.requires_comment() && ChangesRequested.requires_comment());
        assert!(!Approved.requires_comment() && !ApprovedWithChanges.requires_comment());
    }
}
