//! Tasks: the pieces a brief is broken into, each with one owner.

use super::brief::Due;
use super::record::EntityRecord;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    #[default]
    Todo,
    Doing,
    Done,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    pub id: String,
    pub title: String,
    pub brief: Option<String>,
    pub assignee: Option<String>,
    pub status: TaskStatus,
    pub due: Option<Due>,
    /// Where the task lives in each tracker it was pushed to, by connector.
    pub external: std::collections::BTreeMap<String, super::integration::ExternalLink>,
    pub deleted: bool,
}

impl Task {
    pub fn from_record(id: &str, rec: &EntityRecord) -> Task {
        Task {
            id: id.to_owned(),
            title: rec.string("title").unwrap_or_default(),
            brief: rec.string("brief"),
            assignee: rec.string("assignee"),
            status: rec.get_as("status").unwrap_or_default(),
            due: rec.get_as("due"),
            external: rec
                .map_entries("external")
                .into_iter()
                .filter_map(|(k, v)| Some((k, serde_json::from_value(v).ok()?)))
                .collect(),
            deleted: rec.is_deleted(),
        }
    }
}
