//! The messages the app is updated with and the effects it asks the run
//! loop for. Effects name intents; workers turn them into service calls and
//! answer with messages.

use super::edits::{BriefEdit, Edited};
use super::preview::{Done, Job};
use crate::model::approval::Decision;
use crate::model::member::Member;
use crate::model::thread::Message;
use crate::search::index::Hit;
use crossterm::event::KeyEvent;
use jiff::Timestamp;
use std::collections::BTreeMap;

/// What the replica looks like, loaded off the render loop.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub briefs: Vec<crate::model::brief::Brief>,
    pub approvals: Vec<crate::service::approvals::ApprovalView>,
    pub assets: Vec<crate::model::asset::Asset>,
    pub proposals: Vec<crate::model::proposal::Proposal>,
    /// Every task, with where each lives in the team's trackers.
    pub tasks: Vec<crate::model::task::Task>,
    /// Text of small text blobs (drafts), by sha256, when they are on this machine.
    pub texts: BTreeMap<String, String>,
    pub members: Vec<Member>,
    pub me: Option<String>,
    pub zone: String,
    pub hub_name: String,
    pub joined: bool,
    pub connected: bool,
    pub pending: u64,
    pub cursor: u64,
    pub last_error: Option<String>,
    /// What waits on me.
    pub inbox: crate::service::inbox::Inbox,
    /// The hub's generation templates, for the generate form.
    pub templates: Vec<TemplateInfo>,
}

/// A generation template as the generate form lists it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateInfo {
    pub name: String,
    /// What it runs on, e.g. `comfyui`.
    pub detail: String,
}

impl Snapshot {
    /// The member's zone, or UTC when the replica names none.
    pub fn zone_or_utc(&self) -> &str {
        if self.zone.is_empty() {
            "UTC"
        } else {
            &self.zone
        }
    }

    pub fn me(&self) -> Option<&Member> {
        let me = self.me.as_deref()?;
        self.members.iter().find(|m| m.handle == me)
    }
}

pub use super::status::Level;

/// Work for the run loop; results come back as messages.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Change briefs through the brief services (one commit per edit).
    Briefs(BriefEdit),
    /// Load a brief's comment thread.
    LoadThread(String),
    /// Decode a blob or encode a thumbnail for the screen (off the render loop).
    Preview(Job),
    /// Decide on approval requests as the acting member (`None` revokes).
    Decide {
        ids: Vec<String>,
        decision: Option<Decision>,
        comment: Option<String>,
    },
    /// Search the index, on the search worker; a newer query replaces one
    /// still waiting.
    Search {
        seq: u64,
        text: String,
    },
    /// Load the chat threads and a thread's messages (`None`: the current one).
    LoadChat(Option<String>),
    /// Send a message: a slash command is answered at once; anything else
    /// goes to the agent and is posted together with its answer, or not at
    /// all when the answer fails or is cancelled.
    ChatSend {
        thread: String,
        text: String,
        /// Who the hub says is online, for `/who`.
        online: Vec<String>,
    },
    /// Stop the answer being streamed.
    CancelAnswer,
    /// Read a cited source (a knowledge chunk, a message) to show it.
    OpenSource {
        kind: String,
        id: String,
    },
    /// Read the replica again now.
    Reload,
    /// Terminal work the render loop does between frames: the clipboard,
    /// `$EDITOR`, suspending to the shell.
    Terminal(super::editor::TermWork),
    /// Open or save an asset's file, off the render loop.
    AssetFile(super::panes::assets::AssetFileJob),
    /// Generate AI drafts for a brief with a template, off the render loop;
    /// progress comes back as [`Msg::Generating`], the end as [`Msg::Generated`].
    Generate {
        brief: String,
        template: String,
        /// What to draw; `None`: the brief's own words.
        prompt: Option<String>,
        count: u32,
    },
    /// Stop the generation that is running.
    CancelGenerate,
    Quit,
}

/// Presence as the hub reports it.
pub type Presence = spoke_relay::proto::Presence;

#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    /// Text the terminal says was pasted (bracketed paste).
    Paste(String),
    Action(super::action::Action),
    Data(Box<Snapshot>),
    Thread {
        brief: String,
        messages: Vec<Message>,
    },
    /// A commit finished: an error message, or none.
    Committed {
        label: String,
        error: Option<String>,
    },
    /// A brief edit finished, with the undo ops the service returned.
    Edited(Edited),
    Tick(Timestamp),
    /// The terminal's size in cells.
    Resize {
        width: u16,
        height: u16,
    },
    /// The terminal's cell size in pixels, as the kernel reports it.
    CellSize {
        width: u16,
        height: u16,
    },
    /// Another member's presence from the hub.
    Presence(Presence),
    /// A decoded thumbnail or an encoded image, or why there is none.
    Preview(Done),
    /// Chat threads and the open thread's messages.
    ChatData {
        threads: Vec<crate::service::threads::ThreadInfo>,
        thread: String,
        messages: Vec<Message>,
    },
    /// Part of an answer arriving.
    ChatStream(crate::agent::chat::ChatEvent),
    /// The answer finished (or failed, or was cancelled).
    ChatDone {
        thread: String,
        error: Option<String>,
    },
    /// A slash command's reply, or why a message got no answer, for a thread.
    ChatNotice {
        thread: String,
        text: String,
    },
    /// A cited source to show in full.
    Source {
        title: String,
        text: String,
    },
    /// A generation's progress, as one line for the status line.
    Generating(String),
    /// A generation ended: what it made, or why it did not.
    Generated(Result<String, String>),
    /// Results of [`Effect::Search`]: hits and warnings, or an error.
    SearchResults {
        seq: u64,
        text: String,
        outcome: Result<(Vec<Hit>, Vec<String>), String>,
    },
}
