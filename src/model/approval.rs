//! Approval requests: a subject, stages of reviewers, their decisions and the
//! rule that combines decisions into a result.

use super::record::EntityRecord;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approved,
    ApprovedWithChanges,
    ChangesRequested,
    Rejected,
}

impl Decision {
    /// Changes requested and rejections must say why.
    pub fn requires_comment(self) -> bool {
        matches!(self, Decision::ChangesRequested | Decision::Rejected)
    }
}

/// The combined outcome of a stage or a whole request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    #[default]
    Pending,
    Approved,
    ApprovedWithChanges,
    ChangesRequested,
    Rejected,
}

impl ApprovalStatus {
    pub fn is_closed(self) -> bool {
        self != ApprovalStatus::Pending
    }

    /// Whether the next stage may start after a stage ends this way.
    pub fn lets_next_stage_start(self) -> bool {
        matches!(
            self,
            ApprovalStatus::Approved | ApprovalStatus::ApprovedWithChanges
        )
    }
}

/// Combines the current decisions of a stage's reviewers: any changes
/// requested wins, then any rejection, then any approval with changes;
/// approved only when every reviewer approved. Pending while anyone is
/// still to decide and nothing decisive has been said.
pub fn stage_result(decisions: &[Option<Decision>]) -> ApprovalStatus {
    let has = |d: Decision| decisions.contains(&Some(d));
    if has(Decision::ChangesRequested) {
        ApprovalStatus::ChangesRequested
    } else if has(Decision::Rejected) {
        ApprovalStatus::Rejected
    } else if decisions.is_empty() || decisions.contains(&None) {
        ApprovalStatus::Pending
    } else if has(Decision::ApprovedWithChanges) {
        ApprovalStatus::ApprovedWithChanges
    } else {
        ApprovalStatus::Approved
    }
}

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

/// Whether a stage's reviewers decide or only comment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageMode {
    #[default]
    Decide,
    CommentOnly,
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
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApprovalRequest {
    pub id: String,
    pub subject: Option<Subject>,
    pub stages: Vec<Stage>,
    pub requested_by: Option<String>,
    pub deleted: bool,
}

impl ApprovalRequest {
    pub fn from_record(id: &str, rec: &EntityRecord) -> ApprovalRequest {
        ApprovalRequest {
            id: id.to_owned(),
            subject: rec.get_as("subject"),
            stages: rec.get_as("stages").unwrap_or_default(),
            requested_by: rec.string("created_by"),
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

/// Where a request stands after its decisions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub status: ApprovalStatus,
    /// The stage waiting for decisions (the last one once closed).
    pub stage: usize,
    /// Each reviewer of each stage with their standing decision.
    pub stages: Vec<Vec<(String, Option<Decision>)>>,
    /// Decisions that did not count: from non-reviewers, for another stage,
    /// or after the request closed.
    pub ignored: usize,
}

impl Evaluation {
    /// Reviewers of the current stage who have not decided.
    pub fn waiting_on(&self) -> Vec<String> {
        if self.status.is_closed() {
            return Vec::new();
        }
        self.stages
            .get(self.stage)
            .map(|s| {
                s.iter()
                    .filter(|(_, d)| d.is_none())
                    .map(|(r, _)| r.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
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
    let mut table: Vec<Vec<(String, Option<Decision>)>> = stages
        .iter()
        .map(|s| {
            expand(&s.reviewers)
                .into_iter()
                .map(|r| (r, None))
                .collect()
        })
        .collect();
    let mut stage = 0;
    let mut status = ApprovalStatus::Pending;
    let mut ignored = 0;
    // Comment-only stages never hold a request up.
    let skip_comment_only = |stage: &mut usize| {
        while stages
            .get(*stage)
            .is_some_and(|s| s.mode == StageMode::CommentOnly)
        {
            *stage += 1;
        }
    };
    skip_comment_only(&mut stage);
    if stage >= stages.len() {
        status = ApprovalStatus::Approved;
    }
    for cast in decisions {
        if status.is_closed() || cast.entry.stage as usize != stage {
            ignored += 1;
            continue;
        }
        let Some(slot) = table[stage].iter_mut().find(|(r, _)| *r == cast.actor) else {
            ignored += 1;
            continue;
        };
        slot.1 = cast.entry.decision;
        let decided: Vec<Option<Decision>> = table[stage].iter().map(|(_, d)| *d).collect();
        match stage_result(&decided) {
            ApprovalStatus::Pending => {}
            done if done.lets_next_stage_start() => {
                stage += 1;
                skip_comment_only(&mut stage);
                if stage >= stages.len() {
                    stage = stages.len().saturating_sub(1);
                    status = done;
                }
            }
            closed => status = closed,
        }
    }
    Evaluation {
        status,
        stage,
        stages: table,
        ignored,
    }
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
