//! Proposals: what an agent suggests. Nothing in a proposal changes shared
//! state until a human approves it.

use super::brief::BriefField;
use super::op::{Change, EntityKind, EntityRef};
use super::record::EntityRecord;
use super::thread::Citation;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

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

impl Proposal {
    /// The changes approving this proposal makes, each linked back to it.
    /// Payloads: brief_update `{brief, fields: {name: value}}`, assignment
    /// `{brief, assignee}`, tasks `{brief, tasks: [{title, assignee?}]}`;
    /// clarifying questions, copy drafts and generations change nothing but
    /// the proposal itself (the approved text is the outcome).
    pub fn changes(&self) -> Result<Vec<(EntityRef, Change)>, String> {
        let brief = || {
            self.payload["brief"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("proposal {} names no brief", self.id))
        };
        let link = ("from_proposal".to_owned(), json!(self.id));
        Ok(match self.kind {
            Some(ProposalKind::BriefUpdate) => {
                let fields = self.payload["fields"]
                    .as_object()
                    .ok_or_else(|| format!("proposal {} has no fields to update", self.id))?;
                let mut set: BTreeMap<String, Value> = BTreeMap::new();
                for (name, value) in fields {
                    // A tag is its own register (`tags:hero`); every other
                    // name is a field.
                    let key = match name.strip_prefix("tags:") {
                        Some(tag) => format!(
                            "tags:{}",
                            crate::model::brief::normalize_tag(tag).map_err(|e| e.0)?
                        ),
                        None => BriefField::parse(name).map_err(|e| e.0)?.name().to_owned(),
                    };
                    set.insert(key, value.clone());
                }
                set.insert(link.0, link.1);
                vec![(
                    EntityRef::new(EntityKind::Brief, brief()?),
                    Change::Set(set),
                )]
            }
            Some(ProposalKind::Assignment) => {
                let who = self.payload["assignee"]
                    .as_str()
                    .ok_or_else(|| format!("proposal {} names no assignee", self.id))?;
                let set = BTreeMap::from([(format!("assignees:{who}"), json!(true)), link]);
                vec![(
                    EntityRef::new(EntityKind::Brief, brief()?),
                    Change::Set(set),
                )]
            }
            Some(ProposalKind::Tasks) => {
                let brief = brief()?;
                let tasks = self.payload["tasks"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                tasks
                    .iter()
                    .enumerate()
                    .map(|(n, t)| {
                        // Ids follow from the proposal, so applying twice changes nothing.
                        let id = format!("t-{}-{}", self.id.trim_start_matches("p-"), n + 1);
                        let set = BTreeMap::from([
                            ("title".to_owned(), t["title"].clone()),
                            ("assignee".to_owned(), t["assignee"].clone()),
                            ("brief".to_owned(), json!(brief)),
                            ("status".to_owned(), json!("todo")),
                            link.clone(),
                        ]);
                        (EntityRef::new(EntityKind::Task, id), Change::Set(set))
                    })
                    .collect()
            }
            _ => Vec::new(),
        })
    }
}
