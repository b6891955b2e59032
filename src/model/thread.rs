//! Threads and messages: hub-wide chat, per-brief comments, agent answers.

use super::asset::Provenance;
use super::record::Item;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A reference an answer or comment relies on (knowledge chunk, asset, brief).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Citation {
    pub kind: String,
    pub id: String,
    #[serde(default)]
    pub quote: Option<String>,
}

/// The body of a message as appended to its thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageBody {
    /// Markdown.
    pub body: String,
    #[serde(default)]
    pub citations: Vec<Citation>,
    #[serde(default = "human")]
    pub provenance: Provenance,
    /// Tools the agent used on the way to this answer, shown folded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolUse>,
}

/// One tool call an agent made: what it asked and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolUse {
    pub name: String,
    /// The arguments as the model sent them.
    pub arguments: String,
    /// One line for people: what it found, what it proposed, or the error.
    pub summary: String,
    /// The proposal it created, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal: Option<String>,
}

fn human() -> Provenance {
    Provenance::Human
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub author: String,
    pub at: Option<Timestamp>,
    pub body: String,
    pub citations: Vec<Citation>,
    pub provenance: Provenance,
    pub tools: Vec<ToolUse>,
}

impl Message {
    /// Reads an appended item; `None` when it is not a message.
    pub fn from_item(item: &Item, at_ms: u64) -> Option<Message> {
        let body: MessageBody = serde_json::from_value(item.value.clone()).ok()?;
        Some(Message {
            author: item.actor.clone(),
            at: Timestamp::from_millisecond(at_ms as i64).ok(),
            body: body.body,
            citations: body.citations,
            provenance: body.provenance,
            tools: body.tools,
        })
    }
}
