//! The chat pane: threads (hub-wide and per brief), messages with AI
//! provenance, folded tool uses and numbered citations, the answer streaming
//! in as Markdown, and a multi-line input. The agent runs on its own thread;
//! this module holds only state, keys and drawing.

use super::action::{Action, Pane};
use super::app::{App, Effect, Level, Popup};
use super::theme::Theme;
use super::ui::markdown_line;
use crate::agent::chat::ChatEvent;
use crate::model::asset::Provenance;
use crate::model::thread::{Citation, Message};
use crate::search::docs::DocKind;
use crate::search::index::Hit;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

/// A thread in the list.
pub type ThreadSummary = crate::service::threads::ThreadInfo;

/// An answer arriving.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Streaming {
    pub thread: String,
    pub text: String,
    /// Tool calls so far: name and what came of it (empty while running).
    pub tools: Vec<(String, String)>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatState {
    pub threads: Vec<ThreadSummary>,
    pub selected: usize,
    /// The open thread's messages.
    pub messages: Vec<Message>,
    /// Which thread `messages` belong to.
    pub loaded: Option<String>,
    pub input: String,
    /// Keys go to the input.
    pub composing: bool,
    pub streaming: Option<Streaming>,
    /// A slash command's reply or an error, shown under the messages.
    pub notice: Option<String>,
    /// Lines scrolled up from the bottom.
    pub scroll: u16,
}

/// What a key in the input asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum InputKey {
    Stay,
    /// Leave the input (keeping what was typed).
    Leave,
    Send(String),
}

impl ChatState {
    pub fn thread(&self) -> &str {
        self.threads
            .get(self.selected)
            .map_or(crate::service::threads::GENERAL_THREAD, |t| t.id.as_str())
    }

    /// Selects a thread by id, if it is listed.
    pub fn select(&mut self, id: &str) {
        if let Some(i) = self.threads.iter().position(|t| t.id == id) {
            self.selected = i;
        }
    }

    pub fn move_by(&mut self, delta: isize) {
        let last = self.threads.len().saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(delta).min(last);
        self.scroll = 0;
    }

    /// Typing: Enter sends, Alt-Enter or Ctrl-J starts a new line, Esc leaves.
    pub fn on_input_key(&mut self, key: KeyEvent) -> InputKey {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        match key.code {
            KeyCode::Esc => {
                self.composing = false;
                InputKey::Leave
            }
            KeyCode::Enter if alt || key.modifiers.contains(KeyModifiers::SHIFT) => {
                self.input.push('\n');
                InputKey::Stay
            }
            KeyCode::Char('j') if ctrl => {
                self.input.push('\n');
                InputKey::Stay
            }
            KeyCode::Enter => {
                let text = self.input.trim().to_owned();
                if text.is_empty() {
                    return InputKey::Stay;
                }
                self.input.clear();
                InputKey::Send(text)
            }
            KeyCode::Backspace => {
                self.input.pop();
                InputKey::Stay
            }
            KeyCode::Char('u') if ctrl => {
                self.input.clear();
                InputKey::Stay
            }
            KeyCode::Char(c) if !ctrl && !alt => {
                self.input.push(c);
                InputKey::Stay
            }
            _ => InputKey::Stay,
        }
    }

    /// An event from the answer being streamed.
    pub fn on_stream(&mut self, event: ChatEvent) {
        let Some(s) = &mut self.streaming else {
            return;
        };
        match event {
            ChatEvent::Text(t) => s.text.push_str(&t),
            ChatEvent::ToolStarted { name } => s.tools.push((name, String::new())),
            ChatEvent::ToolDone { name, summary } => {
                match s
                    .tools
                    .iter_mut()
                    .rev()
                    .find(|(n, done)| *n == name && done.is_empty())
                {
                    Some(slot) => slot.1 = summary,
                    None => s.tools.push((name, summary)),
                }
            }
            ChatEvent::Retrying { wait_ms, error } => {
                s.note = Some(format!(
                    "retrying in {:.1} s: {error}",
                    wait_ms as f64 / 1000.0
                ));
            }
        }
    }

    /// The citations of the latest AI message in the open thread.
    pub fn latest_citations(&self) -> Vec<Citation> {
        self.messages
            .iter()
            .rev()
            .find(|m| matches!(m.provenance, Provenance::Ai { .. }) && !m.citations.is_empty())
            .map(|m| m.citations.clone())
            .unwrap_or_default()
    }
}

fn border(theme: &Theme, focused: bool) -> Style {
    if focused {
        theme.style("ui.border.focus")
    } else {
        theme.style("ui.border")
    }
}

/// Markdown lines of a body, each line through the inline renderer.
fn body_lines(body: &str, style: Style, theme: &Theme, out: &mut Vec<Line<'static>>) {
    for l in body.lines() {
        out.push(markdown_line(l, style, theme));
    }
}

pub fn draw(state: &ChatState, theme: &Theme, frame: &mut Frame, area: Rect) {
    let [list, main] =
        Layout::horizontal([Constraint::Length(28), Constraint::Min(20)]).areas(area);
    let input_height = (state.input.lines().count().max(1) as u16 + 2).min(8);
    let [messages, input] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(input_height)]).areas(main);

    let rows: Vec<Line> = state
        .threads
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let style = if i == state.selected {
                theme.style("ui.selection")
            } else {
                theme.style("ui.text")
            };
            Line::from(vec![
                Span::styled(format!(" {:<20.20}", t.title), style),
                Span::styled(format!("{:>4}", t.messages), theme.style("ui.text.dim")),
            ])
        })
        .collect();
    frame.render_widget(
        Paragraph::new(rows).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(border(theme, !state.composing))
                .title(Span::styled(" Threads ", theme.style("ui.title"))),
        ),
        list,
    );

    let text = theme.style("ui.text");
    let dim = theme.style("ui.text.dim");
    let key = theme.style("ui.help.key");
    let mut lines: Vec<Line<'static>> = Vec::new();
    for m in &state.messages {
        let who = match &m.provenance {
            Provenance::Ai {
                provider, model, ..
            } => {
                format!("@{} · AI · {provider}/{model}", m.author)
            }
            Provenance::Human => format!("@{}", m.author),
        };
        lines.push(Line::from(Span::styled(who, key)));
        body_lines(&m.body, text, theme, &mut lines);
        for t in &m.tools {
            lines.push(Line::from(Span::styled(
                format!("  ▸ {}: {}", t.name, t.summary),
                dim,
            )));
        }
        for (i, c) in m.citations.iter().enumerate() {
            lines.push(Line::from(Span::styled(
                format!(
                    "  [{}] {} {} {}",
                    i + 1,
                    c.kind,
                    c.id,
                    c.quote.as_deref().unwrap_or("")
                ),
                dim,
            )));
        }
        lines.push(Line::default());
    }
    if let Some(s) = state
        .streaming
        .as_ref()
        .filter(|s| s.thread == state.thread())
    {
        lines.push(Line::from(Span::styled(
            "agent · answering (esc cancels)",
            key,
        )));
        for (name, summary) in &s.tools {
            let what = if summary.is_empty() {
                "…"
            } else {
                summary.as_str()
            };
            lines.push(Line::from(Span::styled(format!("  ▸ {name}: {what}"), dim)));
        }
        body_lines(&s.text, text, theme, &mut lines);
        if let Some(note) = &s.note {
            lines.push(Line::from(Span::styled(note.clone(), dim)));
        }
    }
    if let Some(n) = &state.notice {
        lines.push(Line::default());
        for l in n.lines() {
            lines.push(Line::from(Span::styled(l.to_owned(), dim)));
        }
    }
    if state.messages.is_empty() && state.streaming.is_none() && state.notice.is_none() {
        lines.push(Line::from(Span::styled(
            "No messages yet. i: write · /help lists the commands that need no model",
            dim,
        )));
    }
    let inner_h = messages.height.saturating_sub(2);
    let inner_w = messages.width.saturating_sub(2).max(1);
    // Keep the newest lines in view: scroll to the bottom, minus what the user scrolled up.
    let wrapped: u16 = lines
        .iter()
        .map(|l| (l.width() as u16).div_ceil(inner_w).max(1))
        .fold(0u16, |a, b| a.saturating_add(b));
    let top = wrapped.saturating_sub(inner_h).saturating_sub(state.scroll);
    let title = state
        .threads
        .get(state.selected)
        .map_or("general".to_owned(), |t| t.title.clone());
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((top, 0))
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(border(theme, false))
                    .title(Span::styled(format!(" {title} "), theme.style("ui.title"))),
            ),
        messages,
    );

    let mut input_lines: Vec<Line> = state
        .input
        .split('\n')
        .map(|l| Line::from(Span::styled(l.to_owned(), theme.style("ui.input"))))
        .collect();
    if state.composing {
        if let Some(last) = input_lines.last_mut() {
            last.spans.push(Span::styled("▏", theme.style("ui.input")));
        }
    } else if state.input.is_empty() {
        input_lines = vec![Line::from(Span::styled(
            "i to write · enter sends · alt-enter or C-j new line · f follows a citation",
            dim,
        ))];
    }
    frame.render_widget(
        Paragraph::new(input_lines).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(border(theme, state.composing))
                .title(Span::styled(" Message ", theme.style("ui.title"))),
        ),
        input,
    );
}

impl App {
    /// Actions that mean something else in the chat pane.
    pub(super) fn on_chat_action(&mut self, action: Action) -> Option<Vec<Effect>> {
        let effects = match action {
            Action::MoveDown | Action::MoveUp => {
                self.chat
                    .move_by(if action == Action::MoveDown { 1 } else { -1 });
                vec![Effect::LoadChat(Some(self.chat.thread().to_owned()))]
            }
            Action::PageUp => {
                self.chat.scroll = self.chat.scroll.saturating_add(10);
                Vec::new()
            }
            Action::PageDown => {
                self.chat.scroll = self.chat.scroll.saturating_sub(10);
                Vec::new()
            }
            Action::Compose | Action::Confirm => {
                self.chat.composing = true;
                Vec::new()
            }
            Action::Cancel if self.chat.streaming.is_some() && self.popup.is_none() => {
                vec![Effect::CancelAnswer]
            }
            Action::FollowCitation => {
                let citations = self.chat.latest_citations();
                if citations.is_empty() {
                    self.message = Some((Level::Info, "the agent cited nothing here yet".into()));
                    return Some(Vec::new());
                }
                let choices = citations
                    .iter()
                    .enumerate()
                    .map(|(i, c)| super::app::Choice {
                        value: format!("{}|{}", c.kind, c.id),
                        label: format!("[{}] {}", i + 1, c.kind),
                        detail: format!("{} {}", c.id, c.quote.as_deref().unwrap_or("")),
                    })
                    .collect();
                self.popup = Some(Popup::Picker {
                    pick: super::app::Pick::Citation,
                    choices,
                    selected: 0,
                });
                Vec::new()
            }
            _ => return None,
        };
        Some(effects)
    }

    /// Keys while writing a message.
    pub(super) fn on_compose_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        match self.chat.on_input_key(key) {
            InputKey::Stay | InputKey::Leave => Vec::new(),
            InputKey::Send(text) => {
                if self.chat.streaming.is_some() && !crate::agent::slash::is_command(&text) {
                    self.chat.input = text;
                    self.message = Some((
                        Level::Info,
                        "the agent is still answering (esc cancels)".into(),
                    ));
                    return Vec::new();
                }
                self.chat.notice = None;
                let thread = self.chat.thread().to_owned();
                if !crate::agent::slash::is_command(&text) {
                    self.chat.streaming = Some(Streaming {
                        thread: thread.clone(),
                        ..Streaming::default()
                    });
                }
                vec![Effect::ChatSend {
                    thread,
                    text,
                    online: self.online.keys().cloned().collect(),
                }]
            }
        }
    }

    /// Goes to what a citation names: a brief or an asset in its pane; a
    /// knowledge chunk or anything else is read by the worker and shown.
    pub(super) fn follow_citation(&mut self, value: &str) -> Vec<Effect> {
        let Some((kind, id)) = value.split_once('|') else {
            return Vec::new();
        };
        let hit = |kind: DocKind| Hit {
            kind,
            id: id.to_owned(),
            title: id.to_owned(),
            snippet: String::new(),
            text: String::new(),
            score: 0.0,
            entity: String::new(),
            brief: (kind == DocKind::Brief).then(|| id.to_owned()),
            vector_rank: None,
            lexical_rank: None,
        };
        match kind {
            "brief" => self.open_hit(hit(DocKind::Brief)),
            "asset" => self.open_hit(hit(DocKind::Asset)),
            _ => vec![Effect::OpenSource {
                kind: kind.to_owned(),
                id: id.to_owned(),
            }],
        }
    }

    /// Switching to the chat pane loads its threads.
    pub(super) fn show_chat(&mut self) -> Vec<Effect> {
        self.pane = Pane::Chat;
        vec![Effect::LoadChat(None)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn enter_sends_and_alt_enter_or_ctrl_j_break_lines() {
        let mut s = ChatState {
            composing: true,
            ..ChatState::default()
        };
        for c in "hi".chars() {
            s.on_input_key(key(KeyCode::Char(c), KeyModifiers::NONE));
        }
        s.on_input_key(key(KeyCode::Enter, KeyModifiers::ALT));
        s.on_input_key(key(KeyCode::Char('x'), KeyModifiers::NONE));
        s.on_input_key(key(KeyCode::Char('j'), KeyModifiers::CONTROL));
        s.on_input_key(key(KeyCode::Char('y'), KeyModifiers::NONE));
        assert_eq!(
            s.on_input_key(key(KeyCode::Enter, KeyModifiers::NONE)),
            InputKey::Send("hi\nx\ny".into())
        );
        assert!(s.input.is_empty());
        assert_eq!(
            s.on_input_key(key(KeyCode::Enter, KeyModifiers::NONE)),
            InputKey::Stay,
            "nothing to send"
        );
        assert_eq!(
            s.on_input_key(key(KeyCode::Esc, KeyModifiers::NONE)),
            InputKey::Leave
        );
        assert!(!s.composing);
    }

    #[test]
    fn streamed_events_build_the_answer_and_fold_tools() {
        let mut s = ChatState {
            streaming: Some(Streaming {
                thread: "general".into(),
                ..Streaming::default()
            }),
            ..ChatState::default()
        };
        s.on_stream(ChatEvent::Text("Hel".into()));
        s.on_stream(ChatEvent::ToolStarted {
            name: "search_knowledge".into(),
        });
        s.on_stream(ChatEvent::ToolDone {
            name: "search_knowledge".into(),
            summary: "3 knowledge passages".into(),
        });
        s.on_stream(ChatEvent::Text("lo".into()));
        let st = s.streaming.expect("streaming");
        assert_eq!(st.text, "Hello");
        assert_eq!(
            st.tools,
            vec![(
                "search_knowledge".to_owned(),
                "3 knowledge passages".to_owned()
            )]
        );
    }
}
