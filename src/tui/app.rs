//! App state and the reducer. `App::update` takes a message (a key, an
//! action, data from the replica, a tick) and changes state; anything that
//! touches disk or network comes back as an [`Effect`] for the run loop.

use super::action::{Action, Pane};
use super::edits::{BriefEdit, Edited};
use super::keymap::{KeyChord, Keymap, Lookup};
use super::queue::Queue;
use super::search::{Reader, SearchKey, SearchState};
use crate::model::approval::Decision;
use crate::model::brief::{Brief, BriefField, BriefStatus, Due, Priority};
use crate::model::member::Member;
use crate::model::thread::Message;
use crate::model::{Change, EntityRef};
use crate::search::docs::DocKind;
use crate::search::index::Hit;
use crate::service::{Hub, NewBrief};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use jiff::Timestamp;
use std::collections::BTreeMap;

/// What the replica looks like, loaded off the render loop.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub briefs: Vec<Brief>,
    pub approvals: Vec<crate::service::approvals::ApprovalView>,
    pub assets: Vec<crate::model::asset::Asset>,
    pub proposals: Vec<crate::model::proposal::Proposal>,
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
}

/// Work for the run loop; results come back as messages.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Change briefs through the brief services (one commit per edit).
    Briefs(BriefEdit),
    /// Load a brief's comment thread.
    LoadThread(String),
    /// Decode and shrink a blob for the preview (off the render loop).
    LoadPreview(String),
    /// Decide on approval requests as the acting member (`None` revokes).
    Decide {
        ids: Vec<String>,
        decision: Option<Decision>,
        comment: Option<String>,
    },
    /// Search the index (on the replica worker, which keeps it caught up).
    Search {
        seq: u64,
        text: String,
    },
    /// Load the chat threads and a thread's messages (`None`: the current one).
    LoadChat(Option<String>),
    /// Post a message; a slash command is answered at once, anything else by the agent.
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
    Quit,
}

#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    Action(Action),
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
    Resize,
    /// Another member's presence from the hub.
    Presence(spoke_relay::proto::Presence),
    /// A decoded thumbnail, or why there is none.
    Preview {
        sha: String,
        image: Result<image::DynamicImage, String>,
    },
    /// Chat threads and the open thread's messages.
    ChatData {
        threads: Vec<super::chat::ThreadSummary>,
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
    /// A slash command's reply, or why a message got no answer.
    ChatNotice(String),
    /// A cited source to show in full.
    Source {
        title: String,
        text: String,
    },
    /// Results of [`Effect::Search`]: hits and warnings, or an error.
    SearchResults {
        seq: u64,
        text: String,
        outcome: Result<(Vec<Hit>, Vec<String>), String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    Status,
    Priority,
    Assign,
    /// A source the agent cited: `kind|id`.
    Citation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    Filter,
    Tag,
    Snooze,
    Comment,
    /// The comment that goes with a decision.
    Verdict(Decision),
}

impl Prompt {
    pub fn label(self) -> &'static str {
        match self {
            Prompt::Filter => "filter",
            Prompt::Tag => "tags (+add -remove)",
            Prompt::Snooze => "snooze until (2026-12-01, 2026-12-01T09:00)",
            Prompt::Comment => "comment",
            Prompt::Verdict(Decision::ApprovedWithChanges) => {
                "the changes you approve with (optional)"
            }
            Prompt::Verdict(Decision::ChangesRequested) => "what needs to change (required)",
            Prompt::Verdict(_) => "why (required)",
        }
    }
}

/// One choice in a picker.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Popup {
    Help {
        scroll: usize,
    },
    Palette {
        input: String,
        selected: usize,
    },
    WhichKey {
        options: Vec<(String, String)>,
    },
    Picker {
        pick: Pick,
        choices: Vec<Choice>,
        selected: usize,
    },
    Prompt {
        prompt: Prompt,
        text: String,
    },
    Confirm {
        message: String,
        then: Box<Effect>,
    },
    /// The new-brief form: one answer per field of [`new_brief_form`].
    Form {
        answers: Vec<String>,
        index: usize,
    },
    /// Global search, results as you type.
    Search(SearchState),
    /// A search result shown in full (a knowledge chunk or chat message).
    Reader(Reader),
}

/// The new-brief form: the title, then each required field with the
/// clarifying question a lead would ask. Empty answers stay open questions.
pub fn new_brief_form() -> Vec<(BriefField, String)> {
    let mut form = vec![(BriefField::Title, "Title".to_owned())];
    for q in Brief::from_record("b-new", &Default::default()).missing_fields() {
        if let Ok(field) = BriefField::parse(&q.field) {
            form.push((field, q.question));
        }
    }
    form
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Error,
}

pub struct App {
    pub keymap: Keymap,
    pub pane: Pane,
    pub queue: Queue,
    pub data: Snapshot,
    pub popup: Option<Popup>,
    pub pending_keys: Vec<KeyChord>,
    pub message: Option<(Level, String)>,
    /// Inverse changes of the user's own edits, newest last.
    pub undo: Vec<(String, Vec<(EntityRef, Change)>)>,
    pub show_detail: bool,
    pub thread: Option<(String, Vec<Message>)>,
    pub now: Timestamp,
    pub quit: bool,
    /// Rows of the queue visible at the last draw (for paging).
    pub page: usize,
    /// Members the hub says are online, with when we last heard.
    pub online: BTreeMap<String, Timestamp>,
    /// Approvals in display order (indexes into `data.approvals`).
    pub approval_rows: Vec<usize>,
    pub approval_cursor: usize,
    pub approval_marked: std::collections::BTreeSet<String>,
    pub asset_cursor: usize,
    /// Turns images into terminal graphics; `None` when previews are off.
    pub picker: Option<ratatui_image::picker::Picker>,
    /// The preview on screen: the blob it shows and its protocol state.
    pub preview: Option<(String, ratatui_image::protocol::StatefulProtocol)>,
    /// The previous version, beside the current one in the approvals pane.
    pub preview_prev: Option<(String, ratatui_image::protocol::StatefulProtocol)>,
    /// Why the selected asset has no preview.
    pub preview_note: Option<String>,
    /// Decoded thumbnails by blob, so returning to an asset is instant.
    pub thumbs: std::collections::HashMap<String, image::DynamicImage>,
    pub chat: super::chat::ChatState,
}

impl App {
    pub fn new(keymap: Keymap, now: Timestamp) -> App {
        App {
            keymap,
            pane: Pane::Briefs,
            queue: Queue::default(),
            data: Snapshot::default(),
            popup: None,
            pending_keys: Vec::new(),
            message: None,
            undo: Vec::new(),
            show_detail: true,
            thread: None,
            now,
            quit: false,
            page: 10,
            online: BTreeMap::new(),
            approval_rows: Vec::new(),
            approval_cursor: 0,
            approval_marked: Default::default(),
            asset_cursor: 0,
            picker: None,
            preview: None,
            preview_prev: None,
            preview_note: None,
            thumbs: Default::default(),
            chat: Default::default(),
        }
    }

    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Key(key) => self.on_key(key),
            Msg::Action(a) => self.on_action(a),
            Msg::Data(snapshot) => {
                let before = self.queue.selected().map(|b| b.id.clone());
                self.data = *snapshot;
                self.queue.set_briefs(self.data.briefs.clone());
                self.order_approvals();
                self.asset_cursor = self
                    .asset_cursor
                    .min(self.data.assets.len().saturating_sub(1));
                self.thread_effect(before)
            }
            Msg::Thread { brief, messages } => {
                self.thread = Some((brief, messages));
                Vec::new()
            }
            Msg::Committed { label, error } => {
                self.message = Some(match error {
                    Some(e) => (Level::Error, format!("{label}: {e}")),
                    None => (Level::Info, label),
                });
                Vec::new()
            }
            Msg::Edited(edited) => {
                if !edited.undo.is_empty() {
                    self.undo.push((edited.label, edited.undo));
                }
                self.message = Some((edited.level, edited.message));
                Vec::new()
            }
            Msg::Tick(now) => {
                self.now = now;
                // Presence is re-announced every minute; silence means gone.
                self.online
                    .retain(|_, seen| now.duration_since(*seen).as_secs() < 150);
                Vec::new()
            }
            Msg::Preview { sha, image } => {
                match image {
                    Ok(img) => {
                        if self.thumbs.len() >= 64 {
                            self.thumbs.clear();
                        }
                        self.thumbs.insert(sha.clone(), img);
                    }
                    Err(why) => {
                        if self.selected_asset_sha().as_deref() == Some(sha.as_str()) {
                            self.preview_note = Some(why);
                        }
                    }
                }
                self.show_preview();
                Vec::new()
            }
            Msg::Presence(p) => {
                if p.status == "offline" {
                    self.online.remove(&p.member);
                } else if !p.member.is_empty() {
                    self.online.insert(p.member, self.now);
                }
                Vec::new()
            }
            Msg::Resize => Vec::new(),
            Msg::ChatData {
                threads,
                thread,
                messages,
            } => {
                self.chat.threads = threads;
                self.chat.select(&thread);
                if self.chat.thread() == thread {
                    self.chat.messages = messages;
                    self.chat.loaded = Some(thread);
                }
                Vec::new()
            }
            Msg::ChatStream(event) => {
                self.chat.on_stream(event);
                Vec::new()
            }
            Msg::ChatDone { thread, error } => {
                self.chat.streaming = None;
                if let Some(e) = error {
                    self.chat.notice = Some(e);
                }
                vec![Effect::LoadChat(Some(thread))]
            }
            Msg::ChatNotice(text) => {
                self.chat.notice = Some(text);
                self.chat.streaming = None;
                vec![Effect::LoadChat(Some(self.chat.thread().to_owned()))]
            }
            Msg::Source { title, text } => {
                self.popup = Some(Popup::Reader(Reader {
                    title,
                    text,
                    scroll: 0,
                }));
                Vec::new()
            }
            Msg::SearchResults { seq, text, outcome } => {
                if let Some(Popup::Search(state)) = &mut self.popup {
                    state.on_results(seq, text, outcome);
                }
                Vec::new()
            }
        }
    }

    fn on_search_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let Some(Popup::Search(state)) = &mut self.popup else {
            return Vec::new();
        };
        match state.on_key(key) {
            SearchKey::Stay => Vec::new(),
            SearchKey::Close => {
                self.popup = None;
                Vec::new()
            }
            SearchKey::Run { seq, text } => vec![Effect::Search { seq, text }],
            SearchKey::Open(hit) => self.open_hit(hit),
        }
    }

    /// Goes to a search result: a brief (or the brief a comment is on) in
    /// the queue, an asset in the browser; knowledge and chat in a reader.
    pub(super) fn open_hit(&mut self, hit: Hit) -> Vec<Effect> {
        match hit.kind {
            DocKind::Brief | DocKind::Comment => {
                let Some(brief) = hit.brief.clone() else {
                    return Vec::new();
                };
                self.popup = None;
                self.pane = Pane::Briefs;
                self.queue.filter.clear();
                self.queue.recompute(Some(&brief));
                if self.queue.selected().map(|b| b.id.as_str()) != Some(brief.as_str()) {
                    self.message =
                        Some((Level::Error, format!("brief {brief} is not in the queue")));
                    return Vec::new();
                }
                self.show_detail = true;
                self.thread = None;
                vec![Effect::LoadThread(brief)]
            }
            DocKind::Asset => {
                self.popup = None;
                self.pane = Pane::Assets;
                match self.data.assets.iter().position(|a| a.id == hit.id) {
                    Some(i) => {
                        self.asset_cursor = i;
                        self.preview_effect()
                    }
                    None => {
                        self.message = Some((
                            Level::Error,
                            format!("asset {} is not in the library", hit.id),
                        ));
                        Vec::new()
                    }
                }
            }
            DocKind::Kb | DocKind::Chat => {
                self.popup = Some(Popup::Reader(Reader {
                    title: format!("{} · {}", hit.title, hit.id),
                    text: hit.text,
                    scroll: 0,
                }));
                Vec::new()
            }
        }
    }

    fn on_reader_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let Some(Popup::Reader(reader)) = &mut self.popup else {
            return Vec::new();
        };
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => reader.scroll = reader.scroll.saturating_add(1),
            KeyCode::Up | KeyCode::Char('k') => reader.scroll = reader.scroll.saturating_sub(1),
            KeyCode::PageDown | KeyCode::Char(' ') => {
                reader.scroll = reader.scroll.saturating_add(10)
            }
            KeyCode::PageUp => reader.scroll = reader.scroll.saturating_sub(10),
            _ => self.popup = None,
        }
        Vec::new()
    }

    fn thread_effect(&mut self, before: Option<String>) -> Vec<Effect> {
        let now = self.queue.selected().map(|b| b.id.clone());
        match now {
            Some(id)
                if self.show_detail && (before != Some(id.clone()) || self.thread.is_none()) =>
            {
                vec![Effect::LoadThread(id)]
            }
            _ => Vec::new(),
        }
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if self.pane == Pane::Chat && self.chat.composing && self.popup.is_none() {
            return self.on_compose_key(key);
        }
        if matches!(self.popup, Some(Popup::Search(_))) {
            return self.on_search_key(key);
        }
        if matches!(self.popup, Some(Popup::Reader(_))) {
            return self.on_reader_key(key);
        }
        if matches!(
            self.popup,
            Some(
                Popup::Prompt { .. }
                    | Popup::Palette { .. }
                    | Popup::Picker { .. }
                    | Popup::Confirm { .. }
                    | Popup::Form { .. }
            )
        ) {
            return self.on_popup_key(key);
        }
        if matches!(self.popup, Some(Popup::Help { .. })) {
            if let KeyCode::Down | KeyCode::Char('j') = key.code
                && let Some(Popup::Help { scroll }) = &mut self.popup
            {
                *scroll += 1;
                return Vec::new();
            }
            if let KeyCode::Up | KeyCode::Char('k') = key.code
                && let Some(Popup::Help { scroll }) = &mut self.popup
            {
                *scroll = scroll.saturating_sub(1);
                return Vec::new();
            }
            self.popup = None;
            return Vec::new();
        }
        self.pending_keys.push(KeyChord::from_event(&key));
        match self.keymap.lookup(self.pane, &self.pending_keys) {
            Lookup::Action(action) => {
                self.pending_keys.clear();
                if matches!(self.popup, Some(Popup::WhichKey { .. })) {
                    self.popup = None;
                }
                self.on_action(action)
            }
            Lookup::Prefix(options) => {
                self.popup = Some(Popup::WhichKey { options });
                Vec::new()
            }
            Lookup::Unbound => {
                let typed: Vec<String> = self.pending_keys.iter().map(|k| k.to_string()).collect();
                self.pending_keys.clear();
                if matches!(self.popup, Some(Popup::WhichKey { .. })) {
                    self.popup = None;
                } else if key.code != KeyCode::Esc {
                    self.message = Some((
                        Level::Info,
                        format!("{} is not bound here (? shows the keys)", typed.join(" ")),
                    ));
                }
                Vec::new()
            }
        }
    }

    /// Keys inside popups are fixed: arrows (and C-n/C-p) move, Enter picks,
    /// Esc closes; in text prompts printable keys type.
    fn on_popup_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let Some(popup) = self.popup.take() else {
            return Vec::new();
        };
        match popup {
            Popup::Prompt { prompt, mut text } => match key.code {
                KeyCode::Esc => {
                    if prompt == Prompt::Filter {
                        self.queue.filter.clear();
                        self.queue.recompute(None);
                    }
                    Vec::new()
                }
                KeyCode::Enter => self.submit_prompt(prompt, text),
                KeyCode::Backspace => {
                    text.pop();
                    self.popup = Some(Popup::Prompt { prompt, text });
                    self.live_filter(prompt);
                    Vec::new()
                }
                KeyCode::Char('u') if ctrl => {
                    text.clear();
                    self.popup = Some(Popup::Prompt { prompt, text });
                    self.live_filter(prompt);
                    Vec::new()
                }
                KeyCode::Char(c) if !ctrl => {
                    text.push(c);
                    self.popup = Some(Popup::Prompt { prompt, text });
                    self.live_filter(prompt);
                    Vec::new()
                }
                _ => {
                    self.popup = Some(Popup::Prompt { prompt, text });
                    Vec::new()
                }
            },
            Popup::Palette {
                mut input,
                mut selected,
            } => {
                let matches = self.palette_matches(&input);
                match key.code {
                    KeyCode::Esc => Vec::new(),
                    KeyCode::Enter => match matches.get(selected) {
                        Some((action, _, _)) => self.on_action(*action),
                        None => Vec::new(),
                    },
                    KeyCode::Down | KeyCode::Tab => {
                        selected = (selected + 1).min(matches.len().saturating_sub(1));
                        self.popup = Some(Popup::Palette { input, selected });
                        Vec::new()
                    }
                    KeyCode::Char('n') if ctrl => {
                        selected = (selected + 1).min(matches.len().saturating_sub(1));
                        self.popup = Some(Popup::Palette { input, selected });
                        Vec::new()
                    }
                    KeyCode::Up | KeyCode::BackTab => {
                        selected = selected.saturating_sub(1);
                        self.popup = Some(Popup::Palette { input, selected });
                        Vec::new()
                    }
                    KeyCode::Char('p') if ctrl => {
                        selected = selected.saturating_sub(1);
                        self.popup = Some(Popup::Palette { input, selected });
                        Vec::new()
                    }
                    KeyCode::Backspace => {
                        input.pop();
                        self.popup = Some(Popup::Palette { input, selected: 0 });
                        Vec::new()
                    }
                    KeyCode::Char(c) if !ctrl => {
                        input.push(c);
                        self.popup = Some(Popup::Palette { input, selected: 0 });
                        Vec::new()
                    }
                    _ => {
                        self.popup = Some(Popup::Palette { input, selected });
                        Vec::new()
                    }
                }
            }
            Popup::Picker {
                pick,
                choices,
                mut selected,
            } => match key.code {
                KeyCode::Esc => Vec::new(),
                KeyCode::Enter => match choices.get(selected) {
                    Some(choice) => self.apply_pick(pick, &choice.value.clone()),
                    None => Vec::new(),
                },
                KeyCode::Down | KeyCode::Char('j') => {
                    selected = (selected + 1).min(choices.len().saturating_sub(1));
                    self.popup = Some(Popup::Picker {
                        pick,
                        choices,
                        selected,
                    });
                    Vec::new()
                }
                KeyCode::Up | KeyCode::Char('k') => {
                    selected = selected.saturating_sub(1);
                    self.popup = Some(Popup::Picker {
                        pick,
                        choices,
                        selected,
                    });
                    Vec::new()
                }
                _ => {
                    self.popup = Some(Popup::Picker {
                        pick,
                        choices,
                        selected,
                    });
                    Vec::new()
                }
            },
            Popup::Confirm { message, then } => match key.code {
                KeyCode::Enter | KeyCode::Char('y') => vec![*then],
                KeyCode::Esc | KeyCode::Char('n') => {
                    self.message = Some((Level::Info, "cancelled".into()));
                    Vec::new()
                }
                _ => {
                    self.popup = Some(Popup::Confirm { message, then });
                    Vec::new()
                }
            },
            Popup::Form {
                mut answers,
                mut index,
            } => {
                let last = answers.len().saturating_sub(1);
                match key.code {
                    KeyCode::Esc => {
                        self.message = Some((Level::Info, "new brief discarded".into()));
                        return Vec::new();
                    }
                    KeyCode::Enter | KeyCode::Tab | KeyCode::Down => {
                        if let Err(e) = self.check_form_answer(index, &answers[index]) {
                            self.message = Some((Level::Error, e));
                        } else if key.code == KeyCode::Enter && index == last {
                            return self.submit_form(&answers);
                        } else {
                            self.message = None;
                            index = (index + 1).min(last);
                        }
                    }
                    KeyCode::Up | KeyCode::BackTab => index = index.saturating_sub(1),
                    KeyCode::Backspace => {
                        answers[index].pop();
                    }
                    KeyCode::Char('u') if ctrl => answers[index].clear(),
                    KeyCode::Char(c) if !ctrl => answers[index].push(c),
                    _ => {}
                }
                self.popup = Some(Popup::Form { answers, index });
                Vec::new()
            }
            other => {
                self.popup = Some(other);
                Vec::new()
            }
        }
    }

    pub fn selected_asset(&self) -> Option<&crate::model::asset::Asset> {
        self.data.assets.get(self.asset_cursor)
    }

    /// The image blobs this pane previews: the current version and, for an
    /// approval, the version before it (shown side by side).
    fn preview_targets(&self) -> (Option<String>, Option<String>) {
        use crate::model::approval::Subject;
        let image = |v: &crate::model::asset::AssetVersion| {
            v.mime.starts_with("image/").then(|| v.blob_sha256.clone())
        };
        match self.pane {
            Pane::Approvals => {
                let Some(Subject::AssetVersion { asset, version }) =
                    self.selected_approval().and_then(|v| v.subject.clone())
                else {
                    return (None, None);
                };
                let Some(a) = self.data.assets.iter().find(|a| a.id == asset) else {
                    return (None, None);
                };
                let i = (version as usize).saturating_sub(1);
                let previous = i
                    .checked_sub(1)
                    .and_then(|p| a.versions.get(p))
                    .and_then(image);
                (a.versions.get(i).and_then(image), previous)
            }
            _ => (
                self.selected_asset()
                    .and_then(|a| a.latest())
                    .and_then(image),
                None,
            ),
        }
    }

    fn selected_asset_sha(&self) -> Option<String> {
        self.preview_targets().0
    }

    /// Puts the decoded thumbnails of the current targets on screen.
    fn show_preview(&mut self) {
        let (current, previous) = self.preview_targets();
        let slot = |target: Option<String>,
                    slot: &mut Option<(String, ratatui_image::protocol::StatefulProtocol)>,
                    thumbs: &std::collections::HashMap<String, image::DynamicImage>,
                    picker: &Option<ratatui_image::picker::Picker>| {
            let Some(sha) = target else {
                *slot = None;
                return;
            };
            if slot.as_ref().is_some_and(|(s, _)| *s == sha) {
                return;
            }
            *slot = match (thumbs.get(&sha), picker) {
                (Some(img), Some(picker)) => Some((sha, picker.new_resize_protocol(img.clone()))),
                _ => None,
            };
        };
        slot(current, &mut self.preview, &self.thumbs, &self.picker);
        slot(previous, &mut self.preview_prev, &self.thumbs, &self.picker);
        if self.preview.is_some() {
            self.preview_note = None;
        }
    }

    /// Shows the current targets' previews, asking for thumbnails not yet decoded.
    fn preview_effect(&mut self) -> Vec<Effect> {
        self.preview_note = None;
        if self.picker.is_none() {
            return Vec::new();
        }
        let (current, previous) = self.preview_targets();
        let missing: Vec<Effect> = [current, previous]
            .into_iter()
            .flatten()
            .filter(|sha| !self.thumbs.contains_key(sha))
            .map(Effect::LoadPreview)
            .collect();
        self.show_preview();
        missing
    }

    fn on_assets_action(&mut self, action: Action) -> Option<Vec<Effect>> {
        let n = self.data.assets.len();
        let before = self.asset_cursor;
        match action {
            Action::MoveDown => {
                self.asset_cursor = (self.asset_cursor + 1).min(n.saturating_sub(1))
            }
            Action::MoveUp => self.asset_cursor = self.asset_cursor.saturating_sub(1),
            Action::GotoTop => self.asset_cursor = 0,
            Action::GotoBottom => self.asset_cursor = n.saturating_sub(1),
            Action::PageDown => {
                self.asset_cursor = (self.asset_cursor + self.page).min(n.saturating_sub(1))
            }
            Action::PageUp => self.asset_cursor = self.asset_cursor.saturating_sub(self.page),
            _ => return None,
        }
        Some(if self.asset_cursor != before {
            self.preview_effect()
        } else {
            Vec::new()
        })
    }

    /// Orders approvals: waiting on me first, then open, then by deadline
    /// and id; keeps the cursor on the same request.
    fn order_approvals(&mut self) {
        let current = self.selected_approval().map(|v| v.id.clone());
        let me = self.data.me.clone().unwrap_or_default();
        let mut rows: Vec<usize> = (0..self.data.approvals.len()).collect();
        let list = &self.data.approvals;
        rows.sort_by_key(|&i| {
            let v = &list[i];
            let deadline = v.stages.get(v.stage).and_then(|s| s.deadline);
            (
                !v.waiting_on.contains(&me),
                v.status.is_closed(),
                deadline.is_none(),
                deadline,
                v.id.clone(),
            )
        });
        self.approval_rows = rows;
        let ids: std::collections::BTreeSet<String> = list.iter().map(|v| v.id.clone()).collect();
        self.approval_marked.retain(|id| ids.contains(id));
        self.approval_cursor = current
            .and_then(|id| self.approval_rows.iter().position(|&i| list[i].id == id))
            .unwrap_or(self.approval_cursor)
            .min(self.approval_rows.len().saturating_sub(1));
    }

    pub fn selected_approval(&self) -> Option<&crate::service::approvals::ApprovalView> {
        self.approval_rows
            .get(self.approval_cursor)
            .and_then(|&i| self.data.approvals.get(i))
    }

    /// Requests a decision applies to: the marked ones, or the cursor's.
    fn approval_targets(&self) -> Vec<String> {
        if self.approval_marked.is_empty() {
            self.selected_approval()
                .map(|v| v.id.clone())
                .into_iter()
                .collect()
        } else {
            self.approval_marked.iter().cloned().collect()
        }
    }

    fn decide(&mut self, decision: Option<Decision>, comment: Option<String>) -> Vec<Effect> {
        let ids = self.approval_targets();
        if ids.is_empty() {
            self.message = Some((Level::Info, "no approval request selected".into()));
            return Vec::new();
        }
        self.approval_marked.clear();
        vec![Effect::Decide {
            ids,
            decision,
            comment,
        }]
    }

    /// Actions that mean something else in the approvals pane.
    fn on_approvals_action(&mut self, action: Action) -> Option<Vec<Effect>> {
        let before = self.approval_cursor;
        let mut effects = self.on_approvals_action_inner(action)?;
        if self.approval_cursor != before {
            effects.extend(self.preview_effect());
        }
        Some(effects)
    }

    fn on_approvals_action_inner(&mut self, action: Action) -> Option<Vec<Effect>> {
        let n = self.approval_rows.len();
        let effects = match action {
            Action::MoveDown => {
                self.approval_cursor = (self.approval_cursor + 1).min(n.saturating_sub(1));
                Vec::new()
            }
            Action::MoveUp => {
                self.approval_cursor = self.approval_cursor.saturating_sub(1);
                Vec::new()
            }
            Action::GotoTop => {
                self.approval_cursor = 0;
                Vec::new()
            }
            Action::GotoBottom => {
                self.approval_cursor = n.saturating_sub(1);
                Vec::new()
            }
            Action::ToggleMark => {
                if let Some(id) = self.selected_approval().map(|v| v.id.clone())
                    && !self.approval_marked.remove(&id)
                {
                    self.approval_marked.insert(id);
                }
                self.approval_cursor = (self.approval_cursor + 1).min(n.saturating_sub(1));
                Vec::new()
            }
            Action::ClearMarks => {
                self.approval_marked.clear();
                Vec::new()
            }
            Action::Approve => self.decide(Some(Decision::Approved), None),
            Action::Revoke => self.decide(None, None),
            Action::ApproveWithChanges | Action::RequestChanges | Action::Reject => {
                let decision = match action {
                    Action::ApproveWithChanges => Decision::ApprovedWithChanges,
                    Action::RequestChanges => Decision::ChangesRequested,
                    _ => Decision::Rejected,
                };
                if self.approval_targets().is_empty() {
                    self.message = Some((Level::Info, "no approval request selected".into()));
                } else {
                    self.popup = Some(Popup::Prompt {
                        prompt: Prompt::Verdict(decision),
                        text: String::new(),
                    });
                }
                Vec::new()
            }
            _ => return None,
        };
        Some(effects)
    }

    /// Checks one answer of the new-brief form as it is left.
    fn check_form_answer(&self, index: usize, text: &str) -> Result<(), String> {
        let form = new_brief_form();
        let Some((field, _)) = form.get(index) else {
            return Ok(());
        };
        NewBrief::check_answer(*field, text, &self.zone()).map_err(|e| e.0)
    }

    fn zone(&self) -> String {
        if self.data.zone.is_empty() {
            "UTC".into()
        } else {
            self.data.zone.clone()
        }
    }

    /// Asks the service to add the brief from the form; undo deletes it.
    fn submit_form(&mut self, answers: &[String]) -> Vec<Effect> {
        let pairs: Vec<(BriefField, String)> = new_brief_form()
            .into_iter()
            .map(|(field, _)| field)
            .zip(answers.iter().cloned())
            .collect();
        match NewBrief::from_answers(&pairs) {
            Ok(new) => vec![Effect::Briefs(BriefEdit::Create(Box::new(new)))],
            Err(e) => {
                self.message = Some((Level::Error, e.0));
                Vec::new()
            }
        }
    }

    fn live_filter(&mut self, prompt: Prompt) {
        if prompt == Prompt::Filter
            && let Some(Popup::Prompt { text, .. }) = &self.popup
        {
            let keep = self.queue.selected().map(|b| b.id.clone());
            self.queue.filter = text.clone();
            self.queue.recompute(keep.as_deref());
        }
    }

    /// Actions from the loaded keymap whose name or description match the
    /// palette input, with the keys that run them in this pane.
    pub fn palette_matches(&self, input: &str) -> Vec<(Action, String, String)> {
        let needle = input.trim().to_lowercase();
        let mut out: Vec<(Action, String, String)> = Vec::new();
        for binding in self.keymap.bindings_for(self.pane) {
            if out.iter().any(|(a, _, _)| *a == binding.action) {
                continue;
            }
            let keys: Vec<String> = binding.keys.iter().map(|k| k.to_string()).collect();
            let hay = format!("{} {}", binding.action.name(), binding.desc).to_lowercase();
            if needle.split_whitespace().all(|w| hay.contains(w)) {
                out.push((binding.action, binding.desc.clone(), keys.join(" ")));
            }
        }
        out
    }

    pub fn on_action(&mut self, action: Action) -> Vec<Effect> {
        self.message = None;
        if self.pane == Pane::Assets
            && let Some(effects) = self.on_assets_action(action)
        {
            return effects;
        }
        if self.pane == Pane::Approvals
            && let Some(effects) = self.on_approvals_action(action)
        {
            return effects;
        }
        if self.pane == Pane::Chat
            && let Some(effects) = self.on_chat_action(action)
        {
            return effects;
        }
        let before = self.queue.selected().map(|b| b.id.clone());
        let effects = match action {
            Action::Quit => {
                self.quit = true;
                vec![Effect::Quit]
            }
            Action::MoveDown => self.move_cursor(1),
            Action::MoveUp => self.move_cursor(-1),
            Action::PageDown => self.move_cursor(self.page.max(1) as isize),
            Action::PageUp => self.move_cursor(-(self.page.max(1) as isize)),
            Action::GotoTop => {
                self.queue.goto(0);
                self.queue.extend_visual();
                Vec::new()
            }
            Action::GotoBottom => {
                self.queue.goto(usize::MAX);
                self.queue.extend_visual();
                Vec::new()
            }
            Action::NextPane | Action::PrevPane => {
                let i = Pane::ALL.iter().position(|p| *p == self.pane).unwrap_or(0);
                let n = Pane::ALL.len();
                let j = if action == Action::NextPane {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.pane = Pane::ALL[j];
                Vec::new()
            }
            Action::ShowBriefs => self.show(Pane::Briefs),
            Action::ShowAssets => {
                self.show(Pane::Assets);
                self.preview_effect()
            }
            Action::ShowChat => self.show_chat(),
            Action::ShowApprovals => {
                self.show(Pane::Approvals);
                self.preview_effect()
            }
            Action::ShowTeam => self.show(Pane::Team),
            Action::Filter => {
                self.popup = Some(Popup::Prompt {
                    prompt: Prompt::Filter,
                    text: self.queue.filter.clone(),
                });
                Vec::new()
            }
            Action::Help => {
                self.popup = Some(Popup::Help { scroll: 0 });
                Vec::new()
            }
            Action::Search => {
                self.popup = Some(Popup::Search(SearchState::default()));
                Vec::new()
            }
            Action::Palette => {
                self.popup = Some(Popup::Palette {
                    input: String::new(),
                    selected: 0,
                });
                Vec::new()
            }
            Action::Cancel => {
                if self.popup.take().is_none() {
                    if self.queue.visual_from.take().is_none() && self.queue.marked.is_empty() {
                        self.queue.filter.clear();
                        let keep = self.queue.selected().map(|b| b.id.clone());
                        self.queue.recompute(keep.as_deref());
                    }
                    self.queue.marked.clear();
                }
                Vec::new()
            }
            Action::Confirm => {
                self.show_detail = true;
                Vec::new()
            }
            Action::ToggleMark => {
                self.queue.toggle_mark();
                self.move_cursor(1)
            }
            Action::VisualMode => {
                match self.queue.visual_from {
                    Some(_) => self.queue.visual_from = None,
                    None => {
                        self.queue.visual_from = Some(self.queue.cursor);
                        self.queue.extend_visual();
                    }
                }
                Vec::new()
            }
            Action::ClearMarks => {
                self.queue.marked.clear();
                self.queue.visual_from = None;
                Vec::new()
            }
            Action::Undo => match self.undo.pop() {
                Some((label, changes)) => vec![Effect::Briefs(BriefEdit::Undo { label, changes })],
                None => {
                    self.message = Some((Level::Info, "nothing to undo".into()));
                    Vec::new()
                }
            },
            Action::ToggleDetail => {
                self.show_detail = !self.show_detail;
                Vec::new()
            }
            Action::CycleSort => {
                self.queue.sort = self.queue.sort.next();
                let keep = self.queue.selected().map(|b| b.id.clone());
                self.queue.recompute(keep.as_deref());
                self.message = Some((
                    Level::Info,
                    format!("sorted by {}", self.queue.sort.label()),
                ));
                Vec::new()
            }
            Action::ToggleGroup => {
                self.queue.group_by_status = !self.queue.group_by_status;
                let keep = self.queue.selected().map(|b| b.id.clone());
                self.queue.recompute(keep.as_deref());
                Vec::new()
            }
            Action::NewBrief => {
                self.popup = Some(Popup::Form {
                    answers: vec![String::new(); new_brief_form().len()],
                    index: 0,
                });
                Vec::new()
            }
            Action::SetStatus => self.open_picker(Pick::Status),
            Action::SetPriority => self.open_picker(Pick::Priority),
            Action::Assign => self.open_picker(Pick::Assign),
            Action::Tag => self.prompt(Prompt::Tag, false),
            Action::Snooze => self.prompt(Prompt::Snooze, false),
            Action::Comment => self.prompt(Prompt::Comment, false),
            Action::StatusNext => {
                let targets: Vec<Brief> = self.queue.targets().into_iter().cloned().collect();
                let Some(first) = targets.first() else {
                    return Vec::new();
                };
                match forward_status(first.status) {
                    Some(next) => self.apply_pick(Pick::Status, next.as_str()),
                    None => {
                        self.message = Some((
                            Level::Info,
                            format!("{} is the end of the line", first.status),
                        ));
                        Vec::new()
                    }
                }
            }
            Action::PriorityUp | Action::PriorityDown => {
                let targets: Vec<Brief> = self.queue.targets().into_iter().cloned().collect();
                let Some(first) = targets.first() else {
                    return Vec::new();
                };
                let i = Priority::ALL
                    .iter()
                    .position(|p| *p == first.priority)
                    .unwrap_or(2);
                let j = if action == Action::PriorityUp {
                    i.saturating_sub(1)
                } else {
                    (i + 1).min(3)
                };
                self.apply_pick(Pick::Priority, Priority::ALL[j].as_str())
            }
            Action::Refresh => Vec::new(),
            Action::Approve
            | Action::ApproveWithChanges
            | Action::RequestChanges
            | Action::Reject
            | Action::Revoke => {
                self.message = Some((
                    Level::Info,
                    "decisions are made in the Approvals pane (4)".into(),
                ));
                Vec::new()
            }
            Action::Compose | Action::FollowCitation => {
                self.message = Some((Level::Info, "this works in the Chat pane (3)".into()));
                Vec::new()
            }
        };
        let mut effects = effects;
        if self.pane == Pane::Briefs {
            effects.extend(self.thread_effect(before));
        }
        effects
    }

    fn show(&mut self, pane: Pane) -> Vec<Effect> {
        self.pane = pane;
        Vec::new()
    }

    fn move_cursor(&mut self, delta: isize) -> Vec<Effect> {
        self.queue.move_by(delta);
        self.queue.extend_visual();
        Vec::new()
    }

    fn prompt(&mut self, prompt: Prompt, allow_empty_queue: bool) -> Vec<Effect> {
        if !allow_empty_queue && self.queue.targets().is_empty() {
            self.message = Some((Level::Info, "no brief selected".into()));
            return Vec::new();
        }
        self.popup = Some(Popup::Prompt {
            prompt,
            text: String::new(),
        });
        Vec::new()
    }

    fn open_picker(&mut self, pick: Pick) -> Vec<Effect> {
        let targets: Vec<Brief> = self.queue.targets().into_iter().cloned().collect();
        let Some(first) = targets.first() else {
            self.message = Some((Level::Info, "no brief selected".into()));
            return Vec::new();
        };
        let choices: Vec<Choice> = match pick {
            Pick::Status => BriefStatus::ALL
                .iter()
                .filter(|s| targets.len() > 1 || first.status.next_states().contains(s))
                .map(|s| Choice {
                    value: s.as_str().into(),
                    label: s.as_str().into(),
                    detail: String::new(),
                })
                .collect(),
            Pick::Priority => Priority::ALL
                .iter()
                .map(|p| Choice {
                    value: p.as_str().into(),
                    label: p.as_str().into(),
                    detail: match p {
                        Priority::P0 => "drop everything",
                        Priority::P1 => "urgent",
                        Priority::P2 => "normal",
                        Priority::P3 => "when there is time",
                    }
                    .into(),
                })
                .collect(),
            Pick::Assign => self.assign_choices(),
            // Built by the chat pane, never from the queue.
            Pick::Citation => return Vec::new(),
        };
        // Start on the likely choice: the current priority, the next status.
        let selected = match pick {
            Pick::Priority => Priority::ALL
                .iter()
                .position(|p| *p == first.priority)
                .unwrap_or(0),
            Pick::Status => forward_status(first.status)
                .and_then(|next| choices.iter().position(|c| c.value == next.as_str()))
                .unwrap_or(0),
            Pick::Assign | Pick::Citation => 0,
        };
        self.popup = Some(Popup::Picker {
            pick,
            choices,
            selected,
        });
        Vec::new()
    }

    /// Members with their local time, whether they are working, and load:
    /// people working now first, then the least loaded.
    pub fn assign_choices(&self) -> Vec<Choice> {
        let mut rows: Vec<(bool, usize, Choice)> = self
            .data
            .members
            .iter()
            .filter(|m| !m.has_role(crate::model::Role::ReadOnly))
            .map(|m| {
                let load = self.load_of(&m.handle);
                let working = m.is_working_at(self.now);
                let local = m.local_time(self.now).strftime("%a %H:%M").to_string();
                let detail = format!(
                    "{local} {} · {}/{} briefs · {}",
                    if working { "working" } else { "off" },
                    load,
                    m.capacity,
                    m.tz
                );
                (
                    !working,
                    load,
                    Choice {
                        value: m.handle.clone(),
                        label: format!("@{}", m.handle),
                        detail,
                    },
                )
            })
            .collect();
        rows.sort_by(|a, b| (a.0, a.1, &a.2.value).cmp(&(b.0, b.1, &b.2.value)));
        rows.into_iter().map(|(_, _, c)| c).collect()
    }

    /// Open briefs assigned to a member.
    /// Briefs in flight for a member, counted as the assignment scorer counts them.
    pub fn load_of(&self, handle: &str) -> usize {
        crate::agent::scorer::load_of(handle, &self.data.briefs)
    }

    fn apply_pick(&mut self, pick: Pick, value: &str) -> Vec<Effect> {
        if pick == Pick::Citation {
            return self.follow_citation(value);
        }
        let targets: Vec<Brief> = self.queue.targets().into_iter().cloned().collect();
        if targets.is_empty() {
            self.message = Some((Level::Info, "no brief selected".into()));
            return Vec::new();
        }
        let ids: Vec<String> = targets.iter().map(|b| b.id.clone()).collect();
        let edit = match pick {
            Pick::Status => {
                let Ok(to) = BriefStatus::parse(value) else {
                    return Vec::new();
                };
                return self.move_to(&targets, ids, to);
            }
            Pick::Priority => {
                let Ok(to) = Priority::parse(value) else {
                    return Vec::new();
                };
                BriefEdit::SetPriority { ids, to }
            }
            Pick::Assign => BriefEdit::Assign {
                ids,
                handle: value.to_owned(),
                remove: false,
            },
            Pick::Citation => return Vec::new(),
        };
        vec![Effect::Briefs(edit)]
    }

    /// Moves briefs to a status. Briefs with open questions need a lead's
    /// force to reach ready: a lead is asked first, anyone else gets the
    /// service's refusal.
    fn move_to(&mut self, targets: &[Brief], ids: Vec<String>, to: BriefStatus) -> Vec<Effect> {
        let incomplete: Vec<Vec<String>> = targets
            .iter()
            .filter(|b| b.status.check_transition(to).is_ok())
            .map(|b| {
                Hub::open_questions_for_move(b, to)
                    .into_iter()
                    .map(|q| q.field)
                    .collect::<Vec<_>>()
            })
            .filter(|fields| !fields.is_empty())
            .collect();
        let me = self
            .data
            .me
            .as_deref()
            .and_then(|handle| self.data.members.iter().find(|m| m.handle == handle));
        if let Some(fields) = incomplete.first()
            && Hub::may_force_past_questions(me)
        {
            self.popup = Some(Popup::Confirm {
                message: format!(
                    "{} of these briefs still miss required fields ({}{}). Move to {to} anyway? (y/n)",
                    incomplete.len(),
                    fields.join(", "),
                    if incomplete.len() > 1 { ", ..." } else { "" }
                ),
                then: Box::new(Effect::Briefs(BriefEdit::SetStatus {
                    ids,
                    to,
                    force: true,
                })),
            });
            return Vec::new();
        }
        vec![Effect::Briefs(BriefEdit::SetStatus {
            ids,
            to,
            force: false,
        })]
    }

    fn submit_prompt(&mut self, prompt: Prompt, text: String) -> Vec<Effect> {
        let ids: Vec<String> = self.queue.targets().iter().map(|b| b.id.clone()).collect();
        let text = text.trim().to_owned();
        match prompt {
            Prompt::Filter => Vec::new(),
            Prompt::Verdict(decision) => {
                if decision.requires_comment() && text.is_empty() {
                    self.message = Some((Level::Error, "a reason is required".into()));
                    return Vec::new();
                }
                self.decide(Some(decision), Some(text).filter(|t| !t.is_empty()))
            }
            Prompt::Tag => {
                let (mut add, mut remove) = (Vec::new(), Vec::new());
                for item in text.split([',', ' ']).filter(|s| !s.is_empty()) {
                    match item.strip_prefix('-') {
                        Some(tag) => remove.push(tag.to_owned()),
                        None => add.push(item.trim_start_matches('+').to_owned()),
                    }
                }
                if add.is_empty() && remove.is_empty() {
                    return Vec::new();
                }
                vec![Effect::Briefs(BriefEdit::Tags { ids, add, remove })]
            }
            Prompt::Snooze => {
                let until = if text.is_empty() {
                    None
                } else {
                    match Due::parse(&text, &self.zone()) {
                        Ok(d) => Some(d.at),
                        Err(e) => {
                            self.message = Some((Level::Error, e.0));
                            return Vec::new();
                        }
                    }
                };
                vec![Effect::Briefs(BriefEdit::Snooze { ids, until })]
            }
            Prompt::Comment => {
                let Some(id) = self.queue.selected().map(|b| b.id.clone()) else {
                    return Vec::new();
                };
                if text.is_empty() {
                    return Vec::new();
                }
                // Comments are appended: there is nothing to undo.
                vec![
                    Effect::Briefs(BriefEdit::Comment {
                        id: id.clone(),
                        text,
                    }),
                    Effect::LoadThread(id),
                ]
            }
        }
    }
}

/// The usual next step in the lifecycle.
fn forward_status(s: BriefStatus) -> Option<BriefStatus> {
    use BriefStatus::*;
    match s {
        Draft => Some(Intake),
        Intake => Some(Ready),
        Ready => Some(InProgress),
        InProgress => Some(InReview),
        InReview => Some(Approved),
        Approved => Some(Delivered),
        OnHold => Some(Ready),
        Delivered | Cancelled => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EntityRecord;
    use crate::service::NewHub;
    use crate::tui::keymap::Keymap;
    use crossterm::event::{KeyEvent, KeyModifiers};
    use serde_json::json;

    fn brief(id: &str, title: &str, status: BriefStatus) -> Brief {
        let mut b = Brief::from_record(id, &EntityRecord::default());
        b.title = title.into();
        b.status = status;
        b
    }

    fn member(handle: &str, tz: &str, role: &str) -> Member {
        let mut rec = EntityRecord::default();
        let stamp = crate::model::Stamp {
            hlc: Default::default(),
            id: spoke_relay::proto::OpId {
                client: spoke_relay::proto::ClientId(1),
                seq: 1,
            },
        };
        rec.merge(
            stamp,
            &Change::Set(BTreeMap::from([
                ("tz".to_owned(), json!(tz)),
                (format!("roles:{role}"), json!(true)),
            ])),
        );
        Member::from_record(handle, &rec)
    }

    /// The queue as `me` sees it; ana is a lead, kenji and maya creatives.
    fn app_as(me: &str) -> App {
        let keymap = Keymap::load("default", None).expect("default keymap");
        let mut app = App::new(keymap, Timestamp::UNIX_EPOCH);
        app.update(Msg::Data(Box::new(Snapshot {
            briefs: vec![
                brief("b-1", "Spring launch", BriefStatus::Draft),
                brief("b-2", "Holiday header", BriefStatus::Intake),
                brief("b-3", "Podcast cover", BriefStatus::Ready),
                brief("b-4", "Annual report", BriefStatus::Draft),
            ],
            members: vec![
                member("ana", "Europe/Lisbon", "lead"),
                member("kenji", "Asia/Tokyo", "creative"),
                member("maya", "America/New_York", "creative"),
            ],
            me: Some(me.into()),
            zone: "Europe/Lisbon".into(),
            ..Snapshot::default()
        })));
        app
    }

    fn app() -> App {
        app_as("ana")
    }

    fn key(app: &mut App, text: &str) -> Vec<Effect> {
        let mut effects = Vec::new();
        for k in text.split(' ') {
            let chord = crate::tui::keymap::KeyChord::parse(k).expect("key");
            let mut mods = chord.mods;
            if let KeyCode::Char(c) = chord.code
                && c.is_ascii_uppercase()
            {
                mods |= KeyModifiers::SHIFT;
            }
            effects.extend(app.update(Msg::Key(KeyEvent::new(chord.code, mods))));
        }
        effects
    }

    fn type_in(app: &mut App, text: &str) {
        for c in text.chars() {
            app.update(Msg::Key(KeyEvent::new(
                KeyCode::Char(c),
                KeyModifiers::NONE,
            )));
        }
    }

    fn edits(effects: &[Effect]) -> Vec<&BriefEdit> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Briefs(edit) => Some(edit),
                _ => None,
            })
            .collect()
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// A real replica on disk: ana (a lead) with kenji, and an app on it.
    fn replica(dir: &std::path::Path) -> (Hub, App) {
        let mut hub = Hub::init(
            dir,
            NewHub {
                name: "Test",
                handle: "ana",
                tz: "Europe/Lisbon",
                display_name: None,
            },
        )
        .expect("init");
        hub.add_member(crate::service::NewMember::new("kenji", "Asia/Tokyo"))
            .expect("kenji");
        let app = App::new(
            Keymap::load("default", None).expect("default keymap"),
            Timestamp::UNIX_EPOCH,
        );
        (hub, app)
    }

    fn reload(app: &mut App, hub: &Hub) {
        let data = crate::tui::run::snapshot(hub).expect("snapshot");
        app.update(Msg::Data(Box::new(data)));
    }

    /// Runs the brief edits as the replica worker does and feeds back the results.
    fn run(app: &mut App, hub: &mut Hub, effects: Vec<Effect>) {
        for effect in effects {
            if let Effect::Briefs(edit) = effect {
                let edited = crate::tui::edits::apply(hub, &edit);
                app.update(Msg::Edited(edited));
                reload(app, hub);
            }
        }
    }

    #[test]
    fn marking_three_briefs_and_assigning_asks_for_one_assignment_of_all_three() {
        let mut app = app();
        key(&mut app, "space space space");
        assert_eq!(app.queue.marked.len(), 3);
        key(&mut app, "a");
        let Some(Popup::Picker { choices, .. }) = &app.popup else {
            panic!("the assign picker is open");
        };
        let kenji = choices
            .iter()
            .position(|c| c.value == "kenji")
            .expect("kenji listed");
        assert!(
            choices[kenji].detail.contains("Asia/Tokyo") && choices[kenji].detail.contains("0/3")
        );
        for _ in 0..kenji {
            key(&mut app, "down");
        }
        let effects = key(&mut app, "ret");
        let mut marked: Vec<String> = app.queue.marked.iter().cloned().collect();
        marked.sort();
        match edits(&effects).as_slice() {
            [
                BriefEdit::Assign {
                    ids,
                    handle,
                    remove: false,
                },
            ] => {
                let mut ids = ids.clone();
                ids.sort();
                assert_eq!((ids, handle.as_str()), (marked, "kenji"));
            }
            other => panic!("expected one assignment, got {other:?}"),
        }
        assert!(
            app.undo.is_empty(),
            "nothing to undo until the service says so"
        );
    }

    #[test]
    fn undo_puts_back_what_the_service_changed_on_a_real_replica() {
        let dir = tempfile::tempdir().expect("tmp");
        let (mut hub, mut app) = replica(dir.path());
        for title in ["Spring launch", "Holiday header"] {
            hub.add_brief(NewBrief {
                title: title.into(),
                ..NewBrief::default()
            })
            .expect("brief");
        }
        reload(&mut app, &hub);
        let effects = key(&mut app, "space space a");
        let kenji = match &app.popup {
            Some(Popup::Picker { choices, .. }) => choices
                .iter()
                .position(|c| c.value == "kenji")
                .expect("kenji"),
            other => panic!("the assign picker is open, got {other:?}"),
        };
        assert!(edits(&effects).is_empty(), "nothing changes before a pick");
        for _ in 0..kenji {
            key(&mut app, "down");
        }
        let effects = key(&mut app, "ret");
        run(&mut app, &mut hub, effects);
        let assigned = |hub: &Hub| -> Vec<Vec<String>> {
            hub.briefs(&Default::default())
                .expect("briefs")
                .into_iter()
                .map(|b| b.assignees)
                .collect()
        };
        assert_eq!(assigned(&hub), vec![vec!["kenji".to_owned()]; 2]);
        assert!(
            matches!(&app.message, Some((Level::Info, m)) if m == "2 briefs assigned to @kenji")
        );
        assert_eq!(app.undo.len(), 1);
        let effects = key(&mut app, "u");
        assert!(matches!(
            edits(&effects).as_slice(),
            [BriefEdit::Undo { .. }]
        ));
        run(&mut app, &mut hub, effects);
        assert_eq!(assigned(&hub), vec![Vec::<String>::new(); 2]);
        assert!(app.undo.is_empty());
        assert!(matches!(&app.message, Some((Level::Info, m)) if m.starts_with("undid: 2 briefs")));
    }

    #[test]
    fn a_status_the_lifecycle_forbids_is_refused_for_that_brief_only() {
        let dir = tempfile::tempdir().expect("tmp");
        let (mut hub, mut app) = replica(dir.path());
        let draft = hub
            .add_brief(NewBrief {
                title: "Spring launch".into(),
                ..NewBrief::default()
            })
            .expect("draft")
            .id;
        let ready = hub
            .add_brief(NewBrief {
                title: "Podcast cover".into(),
                status: Some("intake".into()),
                ..NewBrief::default()
            })
            .expect("intake")
            .id;
        hub.move_brief(&ready, "ready", true)
            .expect("ana forces it");
        reload(&mut app, &hub);
        app.queue.marked.insert(draft.clone());
        app.queue.marked.insert(ready.clone());
        let effects = app.apply_pick(Pick::Status, "in_progress");
        assert!(matches!(
            edits(&effects).as_slice(),
            [BriefEdit::SetStatus { ids, to: BriefStatus::InProgress, force: false }] if ids.len() == 2
        ));
        run(&mut app, &mut hub, effects);
        assert_eq!(
            hub.brief(&ready).expect("b").status,
            BriefStatus::InProgress
        );
        assert_eq!(hub.brief(&draft).expect("b").status, BriefStatus::Draft);
        let cli = hub
            .move_brief(&draft, "in_progress", false)
            .expect_err("the CLI refuses it too");
        let Some((Level::Error, message)) = &app.message else {
            panic!("an error in the status line, got {:?}", app.message);
        };
        assert_eq!(message, &format!("1 brief → in_progress; {cli:#}"));
    }

    #[test]
    fn moving_an_incomplete_brief_to_ready_asks_a_lead_first_and_forces_it_on_yes() {
        let mut app = app();
        app.queue.marked.insert("b-2".into());
        let effects = app.apply_pick(Pick::Status, "ready");
        assert!(effects.is_empty());
        assert!(
            matches!(&app.popup, Some(Popup::Confirm { message, .. }) if message.contains("objective"))
        );
        let effects = key(&mut app, "y");
        assert_eq!(
            edits(&effects),
            [&BriefEdit::SetStatus {
                ids: ids(&["b-2"]),
                to: BriefStatus::Ready,
                force: true
            }]
        );
    }

    #[test]
    fn a_non_lead_moving_an_incomplete_brief_is_not_asked_and_the_service_decides() {
        let mut app = app_as("kenji");
        app.queue.marked.insert("b-2".into());
        let effects = app.apply_pick(Pick::Status, "ready");
        assert!(app.popup.is_none());
        assert_eq!(
            edits(&effects),
            [&BriefEdit::SetStatus {
                ids: ids(&["b-2"]),
                to: BriefStatus::Ready,
                force: false
            }]
        );
    }

    #[test]
    fn priority_tags_snooze_and_comment_are_sent_as_intents() {
        let mut app = app();
        let current = app.queue.selected().map(|b| b.id.clone()).expect("a row");
        let effects = key(&mut app, "+");
        assert_eq!(
            edits(&effects),
            [&BriefEdit::SetPriority {
                ids: vec![current.clone()],
                to: Priority::P1
            }]
        );
        key(&mut app, "t");
        type_in(&mut app, "+hero -draft social");
        let effects = key(&mut app, "ret");
        assert_eq!(
            edits(&effects),
            [&BriefEdit::Tags {
                ids: vec![current.clone()],
                add: ids(&["hero", "social"]),
                remove: ids(&["draft"]),
            }]
        );
        key(&mut app, "z");
        type_in(&mut app, "2026-12-01");
        let effects = key(&mut app, "ret");
        let until = Due::parse("2026-12-01", "Europe/Lisbon").expect("date").at;
        assert_eq!(
            edits(&effects),
            [&BriefEdit::Snooze {
                ids: vec![current.clone()],
                until: Some(until)
            }]
        );
        key(&mut app, "c");
        type_in(&mut app, "Looks good");
        let effects = key(&mut app, "ret");
        assert_eq!(
            edits(&effects),
            [&BriefEdit::Comment {
                id: current.clone(),
                text: "Looks good".into()
            }]
        );
        assert!(effects.contains(&Effect::LoadThread(current)));
    }

    #[test]
    fn a_comment_from_the_tui_is_stored_as_the_cli_stores_one() {
        let dir = tempfile::tempdir().expect("tmp");
        let (mut hub, mut app) = replica(dir.path());
        let id = hub
            .add_brief(NewBrief {
                title: "Spring launch".into(),
                ..NewBrief::default()
            })
            .expect("brief")
            .id;
        hub.comment_on_brief(&id, "from the service")
            .expect("comment");
        reload(&mut app, &hub);
        key(&mut app, "c");
        type_in(&mut app, "from the tui");
        let effects = key(&mut app, "ret");
        run(&mut app, &mut hub, effects);
        let stored = hub
            .replica()
            .items(&EntityRef::new(
                crate::model::EntityKind::Thread,
                crate::model::brief::thread_id_for_brief(&id),
            ))
            .expect("items");
        let [(_, service), (_, tui)] = stored.as_slice() else {
            panic!("two comments, got {stored:?}");
        };
        let mut tui_value = tui.value.clone();
        tui_value["body"] = service.value["body"].clone();
        assert_eq!(tui_value, service.value, "the same shape");
        assert_eq!(tui.value["body"], json!("from the tui"));
    }

    #[test]
    fn filter_narrows_the_queue_as_you_type_and_escape_restores_it() {
        let mut app = app();
        key(&mut app, "/ p o d c a s t");
        assert_eq!(app.queue.rows.len(), 1);
        assert_eq!(app.queue.selected().map(|b| b.id.as_str()), Some("b-3"));
        key(&mut app, "esc");
        assert_eq!(app.queue.rows.len(), 4);
    }

    #[test]
    fn g_g_goes_to_the_top_through_a_which_key_popup() {
        let mut app = app();
        key(&mut app, "G");
        assert_eq!(app.queue.cursor, 3);
        key(&mut app, "g");
        assert!(matches!(app.popup, Some(Popup::WhichKey { .. })));
        key(&mut app, "g");
        assert_eq!(app.queue.cursor, 0);
        assert!(app.popup.is_none());
    }

    #[test]
    fn the_palette_lists_loaded_bindings_and_runs_the_chosen_action() {
        let mut app = app();
        let all = app.palette_matches("");
        for b in app.keymap.bindings_for(Pane::Briefs) {
            assert!(
                all.iter().any(|(a, _, _)| *a == b.action),
                "{} missing",
                b.action
            );
        }
        key(&mut app, ":");
        type_in(&mut app, "team");
        key(&mut app, "ret");
        assert_eq!(app.pane, Pane::Team);
    }

    #[test]
    fn presence_marks_members_online_until_they_leave_or_go_quiet() {
        let mut app = app();
        let p = |member: &str, status: &str| spoke_relay::proto::Presence {
            member: member.into(),
            status: status.into(),
            tz: None,
            viewing: None,
        };
        app.update(Msg::Presence(p("kenji", "online")));
        app.update(Msg::Presence(p("maya", "online")));
        assert_eq!(app.online.len(), 2);
        app.update(Msg::Presence(p("maya", "offline")));
        assert!(app.online.contains_key("kenji") && !app.online.contains_key("maya"));
        let later = app
            .now
            .checked_add(jiff::SignedDuration::from_mins(5))
            .expect("time");
        app.update(Msg::Tick(later));
        assert!(app.online.is_empty(), "silence for five minutes means gone");
    }

    #[test]
    fn new_brief_asks_the_clarifying_questions_inline_and_undo_deletes_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let (mut hub, mut app) = replica(dir.path());
        reload(&mut app, &hub);
        key(&mut app, "n");
        // An empty title does not move on.
        key(&mut app, "ret");
        assert!(matches!(app.popup, Some(Popup::Form { index: 0, .. })));
        type_in(&mut app, "Launch video");
        key(&mut app, "ret");
        type_in(&mut app, "Grow trials");
        key(&mut app, "ret"); // objective
        key(&mut app, "ret"); // audience left open
        type_in(&mut app, "linkedin:1200x627");
        key(&mut app, "ret"); // deliverables
        type_in(&mut app, "next week");
        key(&mut app, "ret");
        assert!(
            matches!(&app.message, Some((Level::Error, m)) if m.contains("next week")),
            "a bad due date is caught on the spot"
        );
        for _ in 0.."next week".len() {
            key(&mut app, "backspace");
        }
        type_in(&mut app, "2026-12-01");
        key(&mut app, "ret"); // due
        let effects = key(&mut app, "ret"); // key message left open: submit
        assert_eq!(
            edits(&effects),
            [&BriefEdit::Create(Box::new(NewBrief {
                title: "Launch video".into(),
                objective: Some("Grow trials".into()),
                deliverables: ids(&["linkedin:1200x627"]),
                due: Some("2026-12-01".into()),
                ..NewBrief::default()
            }))]
        );
        run(&mut app, &mut hub, effects);
        let added = hub.briefs(&Default::default()).expect("briefs");
        let [brief] = added.as_slice() else {
            panic!("one brief, got {added:?}");
        };
        assert_eq!(
            (brief.title.as_str(), brief.objective.as_deref()),
            ("Launch video", Some("Grow trials"))
        );
        assert!(brief.due.is_some() && brief.audience.is_none());
        assert!(matches!(
            &app.message,
            Some((Level::Info, m)) if m.contains("audience") && m.contains("key_message")
        ));
        let effects = key(&mut app, "u");
        match edits(&effects).as_slice() {
            [BriefEdit::Undo { changes, .. }] => {
                assert_eq!(changes.len(), 1);
                assert_eq!(changes[0].1, Change::Delete);
            }
            other => panic!("expected an undo, got {other:?}"),
        }
        run(&mut app, &mut hub, effects);
        assert!(hub.briefs(&Default::default()).expect("briefs").is_empty());
    }
}
