//! The app: routes each message to the layer it belongs to and applies
//! what comes back. A key goes to the top popup, then to the focused
//! pane's text input if it has one, then through the keymap to the focused
//! pane, and only when the pane ignores the action to the global table.
//! Pasted text goes to the focused input and nowhere else. Nothing here
//! touches disk or network: that comes back as [`Effect`]s for the run loop.

use super::action::{Action, Pane};
use super::component::{Cmd, Component, Ctx, Handled, Seen};
use super::edits::BriefEdit;
use super::keymap::{KeyChord, Keymap, Lookup, Section};
use super::panes::approvals::ApprovalsPane;
use super::panes::assets::AssetsPane;
use super::panes::briefs::BriefsPane;
use super::panes::chat::ChatPane;
use super::panes::team::TeamPane;
use super::popup::search::{Reader, SearchState};
use super::popup::{Answer, Outcome, Popup, PopupCtx};
use super::preview::{Done, Previews};
use crate::model::{Change, EntityRef};
use crate::search::docs::DocKind;
use crate::search::index::Hit;
use crossterm::event::{KeyCode, KeyEvent};
use jiff::Timestamp;
use ratatui::layout::{Constraint, Layout, Rect};
use spoke_relay::proto::PresenceStatus;
use std::collections::BTreeMap;

pub use super::msg::{Effect, Level, Msg, Snapshot};
pub use super::popup::form::new_brief_form;

/// The five panes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Panes {
    pub briefs: BriefsPane,
    pub assets: AssetsPane,
    pub chat: ChatPane,
    pub approvals: ApprovalsPane,
    pub team: TeamPane,
}

impl Panes {
    pub fn get(&self, pane: Pane) -> &dyn Component {
        match pane {
            Pane::Briefs => &self.briefs,
            Pane::Assets => &self.assets,
            Pane::Chat => &self.chat,
            Pane::Approvals => &self.approvals,
            Pane::Team => &self.team,
        }
    }

    fn get_mut(&mut self, pane: Pane) -> &mut dyn Component {
        match pane {
            Pane::Briefs => &mut self.briefs,
            Pane::Assets => &mut self.assets,
            Pane::Chat => &mut self.chat,
            Pane::Approvals => &mut self.approvals,
            Pane::Team => &mut self.team,
        }
    }
}

/// The screen's rows: tabs, the pane, the hint line and the status line.
pub struct Frame {
    pub tabs: Rect,
    pub body: Rect,
    pub hint: Rect,
    pub status: Rect,
}

/// Below this the screen says it is too small instead of drawing panes.
pub const MIN_WIDTH: u16 = 20;
pub const MIN_HEIGHT: u16 = 5;

/// The pane where an inbox item is dealt with.
pub fn inbox_pane(item: &crate::service::inbox::InboxItem) -> Option<Pane> {
    use crate::service::inbox::InboxKind;
    Some(match item.kind {
        InboxKind::Approval => Pane::Approvals,
        InboxKind::Assigned | InboxKind::Question => Pane::Briefs,
        InboxKind::Mention if item.brief.is_some() => Pane::Briefs,
        InboxKind::Mention => Pane::Chat,
    })
}

/// One line for a toast: what arrived, on what.
fn inbox_line(item: &crate::service::inbox::InboxItem) -> String {
    use crate::service::inbox::InboxKind;
    match item.kind {
        InboxKind::Approval => format!("Waiting on you: “{}” ({})", item.title, item.detail),
        InboxKind::Question => format!("Questions for you on “{}”", item.title),
        InboxKind::Mention => format!("{} (in “{}”)", item.detail, item.title),
        InboxKind::Assigned => format!("“{}”: {}", item.title, item.detail),
    }
}

pub fn frame_layout(area: Rect) -> Frame {
    let [tabs, body, hint, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    Frame {
        tabs,
        body,
        hint,
        status,
    }
}

pub struct App {
    pub keymap: Keymap,
    /// The focused pane.
    pub pane: Pane,
    pub panes: Panes,
    /// Popups over the panes, each with the pane it was opened over; the
    /// last is on top.
    pub popups: Vec<(Pane, Popup)>,
    pub data: Snapshot,
    /// Keys of a sequence typed so far, and what may follow them.
    pub pending_keys: Vec<KeyChord>,
    pub which_key: Option<Vec<(String, String)>>,
    pub message: Option<(Level, String)>,
    /// Inverse changes of the user's own edits, newest last.
    pub undo: Vec<(String, Vec<(EntityRef, Change)>)>,
    pub now: Timestamp,
    pub quit: bool,
    /// Members the hub says are online, with when we last heard and what
    /// they have open.
    pub online: BTreeMap<String, Seen>,
    pub previews: Previews,
    /// The terminal's area in cells, as last told.
    pub area: Rect,
    /// Keys of the inbox items already announced; `None` before the first
    /// snapshot, whose items are not news.
    pub announced: Option<std::collections::BTreeSet<String>>,
    /// A generation running in the background: its latest progress line.
    pub generating: Option<String>,
}

impl App {
    pub fn new(keymap: Keymap, now: Timestamp) -> App {
        let mut app = App {
            keymap,
            pane: Pane::Briefs,
            panes: Panes::default(),
            popups: Vec::new(),
            data: Snapshot::default(),
            pending_keys: Vec::new(),
            which_key: None,
            message: None,
            undo: Vec::new(),
            now,
            quit: false,
            online: BTreeMap::new(),
            previews: Previews::default(),
            area: Rect::new(0, 0, 80, 24),
            announced: None,
            generating: None,
        };
        app.resize(80, 24);
        app
    }

    /// The top popup, if any.
    pub fn popup(&self) -> Option<&Popup> {
        self.popups.last().map(|(_, p)| p)
    }

    /// The panes, to change, beside the context they read.
    fn split(&mut self) -> (&mut Panes, Ctx<'_>) {
        let App {
            panes,
            data,
            now,
            keymap,
            online,
            previews,
            ..
        } = self;
        let ctx = Ctx {
            data,
            now: *now,
            keymap,
            online,
            previews,
        };
        (panes, ctx)
    }

    /// Runs `f` on a pane with the context the panes read.
    fn with_pane<R>(&mut self, pane: Pane, f: impl FnOnce(&mut dyn Component, &Ctx) -> R) -> R {
        let (panes, ctx) = self.split();
        f(panes.get_mut(pane), &ctx)
    }

    pub fn ctx(&self) -> Ctx<'_> {
        Ctx {
            data: &self.data,
            now: self.now,
            keymap: &self.keymap,
            online: &self.online,
            previews: &self.previews,
        }
    }

    fn resize(&mut self, width: u16, height: u16) {
        self.area = Rect::new(0, 0, width, height);
        let body = frame_layout(self.area).body;
        for pane in Pane::ALL {
            self.panes.get_mut(pane).on_resize(body);
        }
    }

    /// Items that waits on me in each pane, for the tabs' badges.
    pub fn badge(&self, pane: Pane) -> usize {
        self.data
            .inbox
            .items
            .iter()
            .filter(|i| inbox_pane(i) == Some(pane))
            .count()
    }

    /// A toast for inbox items that are new since the last snapshot, and a
    /// notification effect (bell, desktop) for the run loop.
    fn announce_inbox(&mut self) -> Vec<Effect> {
        let keys: std::collections::BTreeSet<String> = self
            .data
            .inbox
            .items
            .iter()
            .map(|i| i.key.clone())
            .collect();
        let Some(before) = self.announced.replace(keys.clone()) else {
            return Vec::new();
        };
        let fresh: Vec<&crate::service::inbox::InboxItem> = self
            .data
            .inbox
            .items
            .iter()
            .filter(|i| !before.contains(&i.key))
            .collect();
        let Some(first) = fresh.first() else {
            return Vec::new();
        };
        let what = inbox_line(first);
        let more = match fresh.len() {
            1 => String::new(),
            n => format!(" (+{} more)", n - 1),
        };
        self.message = Some((Level::Info, format!("● {what}{more}")));
        vec![Effect::Terminal(super::editor::TermWork::Notify {
            title: format!("Spoke: {}", first.title),
            body: format!("{}{more}", first.detail),
        })]
    }

    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        let mut effects = self.on_msg(msg);
        effects.extend(self.sync_previews());
        if effects.contains(&Effect::Quit) {
            self.quit = true;
        }
        effects
    }

    fn on_msg(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Key(key) => self.on_key(key),
            Msg::Paste(text) => self.on_paste(&text),
            Msg::Action(a) => self.on_action(a),
            Msg::Data(snapshot) => {
                self.data = *snapshot;
                let mut effects = self.announce_inbox();
                for pane in Pane::ALL {
                    let cmds = self.with_pane(pane, |p, ctx| p.on_data(ctx));
                    effects.extend(self.apply(pane, cmds));
                }
                effects
            }
            Msg::Thread { brief, messages } => {
                self.panes.briefs.on_thread(brief, messages);
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
                    .retain(|_, seen| now.duration_since(seen.at).as_secs() < 150);
                Vec::new()
            }
            Msg::Resize { width, height } => {
                self.resize(width, height);
                Vec::new()
            }
            Msg::CellSize { width, height } => {
                self.previews.set_cell_size(width, height);
                Vec::new()
            }
            Msg::Presence(p) => {
                match p.status {
                    PresenceStatus::Offline => {
                        self.online.remove(&p.member);
                    }
                    PresenceStatus::Online | PresenceStatus::Away if !p.member.is_empty() => {
                        let seen = Seen {
                            at: self.now,
                            viewing: p.viewing.filter(|v| !v.trim().is_empty()),
                        };
                        self.online.insert(p.member, seen);
                    }
                    _ => {}
                }
                Vec::new()
            }
            Msg::Preview(Done::Decoded { sha, image }) => {
                self.previews.decoded(sha, image);
                Vec::new()
            }
            Msg::Preview(Done::Encoded {
                sha,
                size,
                protocol,
            }) => {
                self.previews.encoded(sha, size, protocol);
                Vec::new()
            }
            Msg::ChatData {
                threads,
                thread,
                messages,
            } => {
                self.panes.chat.on_chat_data(threads, thread, messages);
                Vec::new()
            }
            Msg::ChatStream(event) => {
                self.panes.chat.on_stream(event);
                Vec::new()
            }
            Msg::ChatDone { thread, error } => self.panes.chat.on_done(thread, error),
            Msg::ChatNotice { thread, text } => self.panes.chat.on_notice(thread, text),
            Msg::Source { title, text } => {
                self.popups.push((
                    self.pane,
                    Popup::Reader(Reader {
                        title,
                        text,
                        scroll: 0,
                    }),
                ));
                Vec::new()
            }
            Msg::Generating(line) => {
                self.generating = Some(line);
                Vec::new()
            }
            Msg::Generated(result) => {
                self.generating = None;
                self.message = Some(match result {
                    Ok(line) => (Level::Info, line),
                    Err(e) => (Level::Error, e),
                });
                Vec::new()
            }
            Msg::SearchResults { seq, text, outcome } => {
                if let Some((_, Popup::Search(state))) = self.popups.last_mut() {
                    state.on_results(seq, text, outcome);
                }
                Vec::new()
            }
        }
    }

    /// The images a draw places now, with the popups over them: when this
    /// changes, graphics drawn apart from the text must be cleared.
    pub fn placed_images(&self) -> (Vec<(String, ratatui::layout::Size)>, usize) {
        let ctx = self.ctx();
        let wanted = self.panes.get(self.pane).images(&ctx);
        (self.previews.placed(&wanted), self.popups.len())
    }

    /// Asks for the previews the focused pane shows.
    fn sync_previews(&mut self) -> Vec<Effect> {
        let wanted = {
            let ctx = self.ctx();
            self.panes.get(self.pane).images(&ctx)
        };
        self.previews
            .want(&wanted)
            .into_iter()
            .map(Effect::Preview)
            .collect()
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if let Some((owner, popup)) = self.popups.last_mut() {
            let owner = *owner;
            let ctx = PopupCtx {
                keymap: &self.keymap,
                pane: owner,
                zone: self.data.zone_or_utc(),
                graphics: &self.previews.why,
            };
            let outcome = popup.on_key(&key, &ctx);
            return self.on_outcome(owner, outcome);
        }
        let pane = self.pane;
        if self.pending_keys.is_empty() && self.panes.get(pane).input_focused() {
            let bound = match self
                .keymap
                .lookup(Section::Input, &[KeyChord::from_event(&key)])
            {
                Lookup::Action(a) => Some(a),
                _ => None,
            };
            let handled = self.with_pane(pane, |p, ctx| p.on_input_key(&key, bound, ctx));
            return self.handled(pane, handled);
        }
        self.pending_keys.push(KeyChord::from_event(&key));
        match self.keymap.lookup(pane, &self.pending_keys) {
            Lookup::Action(action) => {
                self.pending_keys.clear();
                self.which_key = None;
                self.on_action(action)
            }
            Lookup::Prefix(options) => {
                self.which_key = Some(options);
                Vec::new()
            }
            Lookup::Unbound => {
                let typed: Vec<String> = self.pending_keys.iter().map(|k| k.to_string()).collect();
                self.pending_keys.clear();
                if self.which_key.take().is_none() && key.code != KeyCode::Esc {
                    self.message = Some((
                        Level::Info,
                        format!(
                            "{} is not bound here ({} shows the keys)",
                            typed.join(" "),
                            super::popup::keys(&self.keymap, pane, Action::Help)
                        ),
                    ));
                }
                Vec::new()
            }
        }
    }

    fn on_paste(&mut self, text: &str) -> Vec<Effect> {
        if let Some((owner, popup)) = self.popups.last_mut() {
            let owner = *owner;
            let outcome = popup.on_paste(text);
            return self.on_outcome(owner, outcome);
        }
        let pane = self.pane;
        match self.panes.get_mut(pane).on_paste(text) {
            Handled::Ignored => {
                self.message = Some((
                    Level::Info,
                    format!(
                        "paste ignored: no text field has focus here ({} chars)",
                        text.chars().count()
                    ),
                ));
                Vec::new()
            }
            consumed => self.handled(pane, consumed),
        }
    }

    fn on_outcome(&mut self, owner: Pane, outcome: Outcome) -> Vec<Effect> {
        match outcome {
            Outcome::Stay => Vec::new(),
            Outcome::Close => {
                self.popups.pop();
                Vec::new()
            }
            Outcome::CloseSaying(level, text) => {
                self.popups.pop();
                self.message = Some((level, text));
                Vec::new()
            }
            Outcome::Answer(answer) => {
                self.popups.pop();
                self.answer(owner, answer)
            }
            Outcome::Live(answer) => self.answer(owner, answer),
            Outcome::Run(effect) => vec![effect],
            Outcome::Say(level, text) => {
                self.message = (!text.is_empty()).then_some((level, text));
                Vec::new()
            }
        }
    }

    pub(crate) fn answer(&mut self, owner: Pane, answer: Answer) -> Vec<Effect> {
        match answer {
            Answer::Action(action) => self.on_action(action),
            Answer::Hit(hit) => self.goto(hit),
            Answer::Effect(effect) => vec![effect],
            other => {
                let handled = self.with_pane(owner, |p, ctx| p.on_answer(other, ctx));
                self.handled(owner, handled)
            }
        }
    }

    fn handled(&mut self, pane: Pane, handled: Handled) -> Vec<Effect> {
        match handled {
            Handled::Consumed(cmds) => self.apply(pane, cmds),
            Handled::Ignored => Vec::new(),
        }
    }

    fn apply(&mut self, pane: Pane, cmds: Vec<Cmd>) -> Vec<Effect> {
        let mut effects = Vec::new();
        for cmd in cmds {
            match cmd {
                Cmd::Work(e) => effects.push(e),
                Cmd::Open(popup) => self.popups.push((pane, popup)),
                Cmd::Say(level, text) => self.message = Some((level, text)),
                Cmd::Goto(hit) => effects.extend(self.goto(hit)),
            }
        }
        effects
    }

    pub fn on_action(&mut self, action: Action) -> Vec<Effect> {
        self.message = None;
        let pane = self.pane;
        // On the queue, cancel stops a running generation first.
        if action == Action::Cancel && pane == Pane::Briefs && self.generating.is_some() {
            self.generating = Some("cancelling the generation…".into());
            return vec![Effect::CancelGenerate];
        }
        match self.with_pane(pane, |p, ctx| p.on_action(action, ctx)) {
            Handled::Consumed(cmds) => self.apply(pane, cmds),
            Handled::Ignored => self.global(action),
        }
    }

    /// Actions no pane took.
    fn global(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Quit => return vec![Effect::Quit],
            Action::NextPane | Action::PrevPane => {
                let i = Pane::ALL.iter().position(|p| *p == self.pane).unwrap_or(0);
                let n = Pane::ALL.len();
                let j = if action == Action::NextPane {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                return self.show(Pane::ALL[j]);
            }
            Action::ShowBriefs => return self.show(Pane::Briefs),
            Action::ShowAssets => return self.show(Pane::Assets),
            Action::ShowChat => return self.show(Pane::Chat),
            Action::ShowApprovals => return self.show(Pane::Approvals),
            Action::ShowTeam => return self.show(Pane::Team),
            Action::Help => self.popups.push((self.pane, Popup::Help { scroll: 0 })),
            Action::Search => self
                .popups
                .push((self.pane, Popup::Search(SearchState::default()))),
            Action::Palette => self.popups.push((self.pane, Popup::palette())),
            Action::Undo => {
                return match self.undo.pop() {
                    Some((label, changes)) => {
                        vec![Effect::Briefs(BriefEdit::Undo { label, changes })]
                    }
                    None => {
                        self.message = Some((Level::Info, "nothing to undo".into()));
                        Vec::new()
                    }
                };
            }
            Action::Refresh => {
                self.message = Some((Level::Info, "reloading from the replica".into()));
                return vec![Effect::Reload];
            }
            Action::Cancel => {}
            Action::Suspend => return vec![Effect::Terminal(super::editor::TermWork::Suspend)],
            other => self.message = Some((Level::Info, self.works_elsewhere(other))),
        }
        Vec::new()
    }

    /// Says where an action that means nothing here works.
    fn works_elsewhere(&self, action: Action) -> String {
        let home = Pane::ALL.into_iter().find(|p| {
            *p != self.pane
                && self
                    .keymap
                    .all_bindings()
                    .iter()
                    .any(|b| b.action == action && b.section == p.name())
        });
        match home {
            Some(p) => {
                let show = match p {
                    Pane::Briefs => Action::ShowBriefs,
                    Pane::Assets => Action::ShowAssets,
                    Pane::Chat => Action::ShowChat,
                    Pane::Approvals => Action::ShowApprovals,
                    Pane::Team => Action::ShowTeam,
                };
                format!(
                    "{} works in the {} pane ({})",
                    action.name().replace('_', " "),
                    p.title(),
                    super::popup::keys(&self.keymap, self.pane, show)
                )
            }
            None => format!(
                "{} does nothing in the {} pane",
                action.name().replace('_', " "),
                self.pane.title()
            ),
        }
    }

    fn show(&mut self, pane: Pane) -> Vec<Effect> {
        self.pane = pane;
        if pane == Pane::Chat {
            return vec![Effect::LoadChat(None)];
        }
        Vec::new()
    }

    /// Goes to a search result: a brief (or the brief a comment is on) in
    /// the queue, an asset in the browser; knowledge and chat in a reader.
    pub fn goto(&mut self, hit: Hit) -> Vec<Effect> {
        match hit.kind {
            DocKind::Brief | DocKind::Comment => {
                let Some(brief) = hit.brief.clone() else {
                    return Vec::new();
                };
                self.pane = Pane::Briefs;
                let briefs = &mut self.panes.briefs;
                if !briefs.select(&brief) {
                    self.message =
                        Some((Level::Error, format!("brief {brief} is not in the queue")));
                    return Vec::new();
                }
                briefs.show_detail = true;
                briefs.thread = None;
                vec![Effect::LoadThread(brief)]
            }
            DocKind::Asset => {
                self.pane = Pane::Assets;
                let found = {
                    let (panes, ctx) = self.split();
                    panes.assets.select(&hit.id, &ctx)
                };
                if !found {
                    self.message = Some((
                        Level::Error,
                        format!("asset {} is not in the library", hit.id),
                    ));
                }
                Vec::new()
            }
            DocKind::Kb | DocKind::Chat => {
                self.popups.push((
                    self.pane,
                    Popup::Reader(Reader {
                        title: format!("{} · {}", hit.title, hit.id),
                        text: hit.text,
                        scroll: 0,
                    }),
                ));
                Vec::new()
            }
        }
    }
}
