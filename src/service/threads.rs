//! Threads: comments on a brief and chat messages, appended and synced.

use super::Hub;
use crate::model::asset::Provenance;
use crate::model::input::InputError;
use crate::model::thread::{Citation, MessageBody};
use crate::model::{Change, EntityKind, EntityRef};
use anyhow::Result;

impl Hub {
    /// Appends a message to a thread (`brief:ID` for a brief's comments).
    pub fn post_message(
        &mut self,
        thread: &str,
        body: &str,
        citations: Vec<Citation>,
        provenance: Provenance,
    ) -> Result<()> {
        if body.trim().is_empty() {
            return Err(InputError::new("an empty message was not posted").into());
        }
        let message = MessageBody {
            body: body.to_owned(),
            citations,
            provenance,
        };
        self.commit(vec![(
            EntityRef::new(EntityKind::Thread, thread),
            Change::Append(serde_json::to_value(message)?),
        )])?;
        Ok(())
    }

    /// Comments on a brief as this member.
    pub fn comment_on_brief(&mut self, typed_id: &str, body: &str) -> Result<()> {
        let brief = self.brief(typed_id)?;
        self.post_message(&brief.thread, body, Vec::new(), Provenance::Human)
    }
}
