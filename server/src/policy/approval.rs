//! The rule that combines reviewers' decisions into a request's result.
//! The relay and every replica evaluate requests with this one function.

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

/// Whether a stage's reviewers decide or only comment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageMode {
    #[default]
    Decide,
    CommentOnly,
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

    /// Reviewers who decide the current stage (none once closed).
    pub fn current_reviewers(&self) -> Vec<&str> {
        if self.status.is_closed() {
            return Vec::new();
        }
        self.stages
            .get(self.stage)
            .map(|s| s.iter().map(|(r, _)| r.as_str()).collect())
            .unwrap_or_default()
    }
}

/// Evaluates a request. `stages` holds each stage's reviewers, already
/// expanded to handles, and its mode; `decisions` are `(actor, stage,
/// decision)` in op order (their stamps). Stages run in order; a stage that
/// ends approved (with or without changes) starts the next; a rejection or a
/// request for changes closes the request. Revoking (`None`) withdraws a
/// reviewer's standing decision while the stage is open. Once closed,
/// nothing changes it.
pub fn evaluate<'a>(
    stages: &[(Vec<String>, StageMode)],
    decisions: impl IntoIterator<Item = (&'a str, u32, Option<Decision>)>,
) -> Evaluation {
    let mut table: Vec<Vec<(String, Option<Decision>)>> = stages
        .iter()
        .map(|(reviewers, _)| reviewers.iter().map(|r| (r.clone(), None)).collect())
        .collect();
    let mut stage = 0;
    let mut status = ApprovalStatus::Pending;
    let mut ignored = 0;
    // Comment-only stages never hold a request up.
    let skip_comment_only = |stage: &mut usize| {
        while stages
            .get(*stage)
            .is_some_and(|(_, mode)| *mode == StageMode::CommentOnly)
        {
            *stage += 1;
        }
    };
    skip_comment_only(&mut stage);
    if stage >= stages.len() {
        status = ApprovalStatus::Approved;
    }
    for (actor, cast_stage, decision) in decisions {
        if status.is_closed() || cast_stage as usize != stage {
            ignored += 1;
            continue;
        }
        let Some(slot) = table[stage].iter_mut().find(|(r, _)| r == actor) else {
            ignored += 1;
            continue;
        };
        slot.1 = decision;
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
