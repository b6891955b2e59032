//! Threads: comments on a brief and chat messages, appended and synced.

use super::Hub;
use crate::model::asset::Provenance;
use crate::model::input::InputError;
use crate::model::thread::{Message, MessageBody};
use crate::model::{Change, EntityKind, EntityRef};
use anyhow::Result;

/// The hub-wide chat thread.
pub const GENERAL_THREAD: &str = "general";

impl Hub {
    /// Appends a message to a thread (`brief:ID` for a brief's comments).
    pub fn post_message(&mut self, thread: &str, message: MessageBody) -> Result<()> {
        if message.body.trim().is_empty() {
            return Err(InputError::new("an empty message was not posted").into());
        }
        self.commit(vec![(
            EntityRef::new(EntityKind::Thread, thread),
            Change::Append(serde_json::to_value(message)?),
        )])?;
        Ok(())
    }

    /// Appends a question and its answer to a thread in one commit, so the
    /// team never sees one without the other.
    pub fn post_exchange(
        &mut self,
        thread: &str,
        question: MessageBody,
        answer: MessageBody,
    ) -> Result<()> {
        if question.body.trim().is_empty() || answer.body.trim().is_empty() {
            return Err(InputError::new("an empty message was not posted").into());
        }
        let entity = EntityRef::new(EntityKind::Thread, thread);
        self.commit(vec![
            (
                entity.clone(),
                Change::Append(serde_json::to_value(question)?),
            ),
            (entity, Change::Append(serde_json::to_value(answer)?)),
        ])?;
        Ok(())
    }

    /// Comments on a brief as this member.
    pub fn comment_on_brief(&mut self, typed_id: &str, body: &str) -> Result<()> {
        let brief = self.brief(typed_id)?;
        self.post_message(&brief.thread, human_message(body))
    }

    /// A thread's messages, oldest first.
    pub fn thread_messages(&self, thread: &str) -> Result<Vec<Message>> {
        let entity = EntityRef::new(EntityKind::Thread, thread);
        Ok(self
            .replica
            .items(&entity)?
            .iter()
            .filter_map(|(stamp, item)| Message::from_item(item, stamp.hlc.wall_ms))
            .collect())
    }
}

/// A plain message written by a person.
pub fn human_message(body: &str) -> MessageBody {
    MessageBody {
        body: body.to_owned(),
        citations: Vec::new(),
        provenance: Provenance::Human,
        tools: Vec::new(),
    }
}

/// A thread with messages, as a list shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ThreadInfo {
    pub id: String,
    /// `general`, or the brief's title.
    pub title: String,
    pub messages: usize,
}

impl Hub {
    /// The hub-wide thread first, then every thread that has messages.
    pub fn threads(&self) -> Result<Vec<ThreadInfo>> {
        let mut out = vec![ThreadInfo {
            id: GENERAL_THREAD.to_owned(),
            title: GENERAL_THREAD.to_owned(),
            messages: self.thread_messages(GENERAL_THREAD)?.len(),
        }];
        for id in self.replica.item_entity_ids(EntityKind::Thread)? {
            if id == GENERAL_THREAD {
                continue;
            }
            let title = match id.strip_prefix("brief:") {
                Some(b) => self
                    .replica
                    .record(&EntityRef::new(EntityKind::Brief, b))?
                    .and_then(|r| r.string("title"))
                    .unwrap_or_else(|| id.clone()),
                None => id.clone(),
            };
            let messages = self.thread_messages(&id)?.len();
            out.push(ThreadInfo {
                id,
                title,
                messages,
            });
        }
        Ok(out)
    }
}
