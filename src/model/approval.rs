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

#[cfg(test)]
mod tests {
    use super::Decision::*;
    use super::*;

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
