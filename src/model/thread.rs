//! Threads and messages: hub-wide chat, per-brief comments, agent answers.

use super::asset::Provenance;
use super::record::Item;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A reference an answer or comment relies on (knowledge chunk, asset, brief).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Citation {
    /// The number the answer cites it by (`[4]`). Messages stored before
    /// numbers were kept have none and are numbered by position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<usize>,
    pub kind: String,
    pub id: String,
    #[serde(default)]
    pub quote: Option<String>,
    /// The answer cites `[n]`, but no source with that number was given to
    /// the model.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unknown: bool,
}

impl Citation {
    /// A `[n]` in an answer that refers to no source the model was given.
    pub fn unknown(n: usize) -> Citation {
        Citation {
            n: Some(n),
            kind: "none".to_owned(),
            id: String::new(),
            quote: None,
            unknown: true,
        }
    }

    /// Its number in the text; `position` (from 0) in the message's list
    /// stands in for messages stored without numbers.
    pub fn number(&self, position: usize) -> usize {
        self.n.unwrap_or(position + 1)
    }

    /// What it refers to, as one line: `kind id quote`, or that it refers
    /// to nothing.
    pub fn describe(&self) -> String {
        if self.unknown {
            return "(no such source)".to_owned();
        }
        match self
            .quote
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
        {
            Some(q) => format!("{} {} {q}", self.kind, self.id),
            None => format!("{} {}", self.kind, self.id),
        }
    }
}

/// A message's citations with the numbers its text uses.
pub fn numbered(citations: &[Citation]) -> impl Iterator<Item = (usize, &Citation)> {
    citations.iter().enumerate().map(|(i, c)| (c.number(i), c))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_citation_stored_without_a_number_reads_and_is_numbered_by_position() {
        let old: Citation =
            serde_json::from_str(r#"{"kind":"kb","id":"k-1#0","quote":"Voice"}"#).unwrap();
        assert_eq!(old.n, None);
        assert!(!old.unknown);
        assert_eq!(old.number(2), 3);
        let new = Citation {
            n: Some(4),
            ..old.clone()
        };
        assert_eq!(new.number(0), 4);
        let json = serde_json::to_string(&old).unwrap();
        assert!(
            !json.contains("\"n\"") && !json.contains("unknown"),
            "{json}"
        );
        let json = serde_json::to_value(Citation::unknown(9)).unwrap();
        assert_eq!(json["n"], 9);
        assert_eq!(json["unknown"], true);
        assert_eq!(Citation::unknown(9).describe(), "(no such source)");
    }
}
