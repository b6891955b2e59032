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
        })
    }
}
