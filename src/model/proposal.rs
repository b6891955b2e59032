//! Proposals: what an agent suggests. Nothing in a proposal changes shared
//! state until a human approves it.

use super::record::EntityRecord;
use super::thread::Citation;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalKind {
    Assignment,
    Tasks,
    BriefUpdate,
    ClarifyingQuestions,
    CopyDraft,
    Generation,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    #[default]
    Pending,
    Applied,
    Rejected,
    Withdrawn,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proposal {
    pub id: String,
    pub kind: Option<ProposalKind>,
    /// Kind-specific content, e.g. the fields a brief update would set.
    pub payload: Value,
    pub rationale: Option<String>,
    pub citations: Vec<Citation>,
    pub brief: Option<String>,
    pub status: ProposalStatus,
    pub author: Option<String>,
    pub deleted: bool,
}

impl Proposal {
    pub fn from_record(id: &str, rec: &EntityRecord) -> Proposal {
        Proposal {
            id: id.to_owned(),
            kind: rec.get_as("kind"),
            payload: rec.get("payload").cloned().unwrap_or(Value::Null),
            rationale: rec.string("rationale"),
            citations: rec.get_as("citations").unwrap_or_default(),
            brief: rec.string("brief"),
            status: rec.get_as("status").unwrap_or_default(),
            author: rec.string("created_by"),
            deleted: rec.is_deleted(),
        }
    }
}
