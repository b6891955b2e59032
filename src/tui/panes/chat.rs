//! The chat pane: threads (hub-wide and per brief), messages with AI
//! provenance, folded tool uses and numbered citations, the answer
//! streaming in as Markdown, and a multi-line input. The agent runs on its
//! own thread; this module holds only state, keys and drawing.

use crate::agent::chat::ChatEvent;
use crate::model::asset::Provenance;
use crate::model::thread::{Citation, Message, numbered};
use crate::search::docs::DocKind;
use crate::search::index::Hit;
use crate::service::threads::ThreadInfo;
use crate::tui::action::{Action, Pane};
use crate::tui::component::{Cmd, Component, Ctx, Handled};
use crate::tui::editor::TermWork;
use crate::tui::keymap::Section;
use crate::tui::msg::{Effect, Level};
use crate::tui::popup::picker::{AnyPicker, Choice, Picked, Picker};
use crate::tui::popup::{Answer, Popup, keys};
use crate::tui::theme::Theme;
use crate::tui::widgets::markdown;
use crate::tui::widgets::text_input::{InputEvent, TextInput};
use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use std::collections::BTreeMap;

/// An answer arriving.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Streaming {
    pub thread: String,
    pub text: String,
    /// Tool calls so far: name and what came of it (empty while running).
    pub tools: Vec<(String, String)>,
    /// A tool call the model is writing: its name and the bytes of
    /// arguments so far.
    pub calling: Option<(String, usize)>,
    pub note: Option<String>,
    /// The question being answered. It is posted with the answer; when the
    /// answer fails or is cancelled it goes back to the input.
    pub question: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatPane {
    pub threads: Vec<ThreadInfo>,
    pub selected: usize,
    /// The open thread's messages.
    pub messages: Vec<Message>,
    /// Which thread `messages` belong to.
    pub loaded: Option<String>,
    pub input: TextInput,
    /// Keys go to the input.
    pub composing: bool,
    pub streaming: Option<Streaming>,
    /// A slash command's reply or an error, by thread, shown under its messages.
    pub notices: BTreeMap<String, String>,
    /// Lines scrolled up from the bottom.
    pub scroll: u16,
    /// The agent's model, `provider/model`; `None`: none is configured.
    pub model: Option<String>,
}

impl Default for ChatPane {
    fn default() -> ChatPane {
        ChatPane {
            threads: Vec::new(),
            selected: 0,
            messages: Vec::new(),
            loaded: None,
            input: TextInput::multi_line(),
            composing: false,
            streaming: None,
            notices: BTreeMap::new(),
            scroll: 0,
            model: None,
        }
    }
}

/// One line on how to give the agent a model.
pub const NO_MODEL_HINT: &str = "No model configured: add [agent] provider, url and model to config.toml (see README) to chat with the agent.";

const COMMANDS: &[Action] = &[
    Action::Compose,
    Action::FollowCitation,
    Action::Cancel,
    Action::Search,
    Action::Help,
    Action::Quit,
    Action::CopyText,
];

impl ChatPane {
    pub fn thread(&self) -> &str {
        self.threads
            .get(self.selected)
            .map_or(crate::service::threads::GENERAL_THREAD, |t| t.id.as_str())
    }

    pub fn notice(&self) -> Option<&str> {
        self.notices.get(self.thread()).map(String::as_str)
    }

    /// Selects a thread by id, if it is listed.
    pub fn select(&mut self, id: &str) {
        if let Some(i) = self.threads.iter().position(|t| t.id == id) {
            self.selected = i;
        }
    }

    fn move_by(&mut self, delta: isize) {
        let last = self.threads.len().saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(delta).min(last);
        self.scroll = 0;
    }

    pub fn on_chat_data(
        &mut self,
        threads: Vec<ThreadInfo>,
        thread: String,
        messages: Vec<Message>,
    ) {
        self.threads = threads;
        self.select(&thread);
        if self.thread() == thread {
            self.messages = messages;
            self.loaded = Some(thread);
        }
    }

    /// An event from the answer being streamed.
    pub fn on_stream(&mut self, event: ChatEvent) {
        let Some(s) = &mut self.streaming else {
            return;
        };
        if !matches!(event, ChatEvent::ToolCalling { .. }) {
            s.calling = None;
        }
        match event {
            ChatEvent::Text(t) => s.text.push_str(&t),
            ChatEvent::ToolCalling { name, bytes } => s.calling = Some((name, bytes)),
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

    pub fn on_done(&mut self, thread: String, error: Option<String>) -> Vec<Effect> {
        let streamed = self.streaming.take();
        if let Some(e) = error {
            // Nothing was posted: the question goes back to be sent again.
            if let Some(s) = streamed {
                self.restore(s.question);
            }
            self.notices.insert(thread.clone(), e);
        }
        vec![Effect::LoadChat(Some(thread))]
    }

    pub fn on_notice(&mut self, thread: String, text: String) -> Vec<Effect> {
        if self.streaming.as_ref().is_some_and(|s| s.thread == thread)
            && let Some(s) = self.streaming.take()
        {
            self.restore(s.question);
        }
        self.notices.insert(thread.clone(), text);
        vec![Effect::LoadChat(Some(thread))]
    }

    /// Puts an unsent question back in the input, unless something new
    /// has been typed there meanwhile.
    fn restore(&mut self, question: String) {
        if !question.is_empty() && self.input.is_empty() {
            self.input.insert(&question);
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

    fn send(&mut self, ctx: &Ctx) -> Handled {
        let text = self.input.text().trim().to_owned();
        if text.is_empty() {
            return Handled::done();
        }
        let command = crate::agent::slash::is_command(&text);
        if self.streaming.is_some() && !command {
            return Handled::say(
                Level::Info,
                format!(
                    "the agent is still answering ({} cancels)",
                    keys(ctx.keymap, Section::Input, Action::Cancel)
                ),
            );
        }
        self.input.take();
        let thread = self.thread().to_owned();
        self.notices.remove(&thread);
        if !command {
            self.streaming = Some(Streaming {
                thread: thread.clone(),
                question: text.clone(),
                ..Streaming::default()
            });
        }
        self.scroll = 0;
        Handled::work(Effect::ChatSend {
            thread,
            text,
            online: ctx.online.keys().cloned().collect(),
        })
    }

    /// Goes to what a citation names: a brief or an asset in its pane; a
    /// knowledge chunk or anything else is read by the worker and shown.
    fn follow(&self, c: Citation) -> Handled {
        let kind = match c.kind.as_str() {
            "brief" => DocKind::Brief,
            "asset" => DocKind::Asset,
            _ => {
                return Handled::work(Effect::OpenSource {
                    kind: c.kind,
                    id: c.id,
                });
            }
        };
        Handled::one(Cmd::Goto(Hit {
            kind,
            id: c.id.clone(),
            title: c.id.clone(),
            snippet: String::new(),
            text: String::new(),
            score: 0.0,
            entity: String::new(),
            brief: (kind == DocKind::Brief).then(|| c.id.clone()),
            vector_rank: None,
            lexical_rank: None,
        }))
    }
}

impl Component for ChatPane {
    fn pane(&self) -> Pane {
        Pane::Chat
    }

    fn on_action(&mut self, action: Action, _ctx: &Ctx) -> Handled {
        match action {
            Action::MoveDown | Action::MoveUp => {
                self.move_by(if action == Action::MoveDown { 1 } else { -1 });
                Handled::work(Effect::LoadChat(Some(self.thread().to_owned())))
            }
            Action::PageUp => {
                self.scroll = self.scroll.saturating_add(10);
                Handled::done()
            }
            Action::PageDown => {
                self.scroll = self.scroll.saturating_sub(10);
                Handled::done()
            }
            Action::GotoBottom => {
                self.scroll = 0;
                Handled::done()
            }
            Action::Compose | Action::Confirm => {
                self.composing = true;
                Handled::done()
            }
            Action::Cancel if self.streaming.is_some() => Handled::work(Effect::CancelAnswer),
            Action::CopyId => {
                let thread = self.thread().to_owned();
                Handled::work(Effect::Terminal(TermWork::Copy {
                    what: format!("thread {thread}"),
                    text: thread,
                }))
            }
            Action::CopyText => match self.messages.last() {
                Some(m) => Handled::work(Effect::Terminal(TermWork::Copy {
                    what: format!("@{}'s message", m.author),
                    text: message_text(m),
                })),
                None => Handled::say(Level::Info, "no message to copy in this thread"),
            },
            Action::FollowCitation => {
                let citations = self.latest_citations();
                if citations.is_empty() {
                    return Handled::say(Level::Info, "the agent cited nothing here yet");
                }
                let choices = citation_choices(&citations);
                if choices.is_empty() {
                    return Handled::say(
                        Level::Info,
                        "the numbers the agent cited refer to no source it was given",
                    );
                }
                Handled::one(Cmd::Open(Popup::Picker(AnyPicker::Citation(Picker::new(
                    "Sources the agent cited",
                    choices,
                    0,
                )))))
            }
            _ => Handled::Ignored,
        }
    }

    fn input_focused(&self) -> bool {
        self.composing
    }

    /// Typing: `[input]` keys edit, `confirm` sends, `cancel` stops a
    /// streaming answer or leaves the input.
    fn on_input_key(&mut self, key: &KeyEvent, bound: Option<Action>, ctx: &Ctx) -> Handled {
        match self.input.on_key(key, bound) {
            InputEvent::Edited | InputEvent::Unchanged => Handled::done(),
            InputEvent::Pass(Action::Confirm) => self.send(ctx),
            InputEvent::Pass(Action::Cancel) => {
                if self.streaming.is_some() {
                    Handled::work(Effect::CancelAnswer)
                } else {
                    self.composing = false;
                    Handled::done()
                }
            }
            InputEvent::Pass(Action::OpenEditor) => {
                Handled::work(Effect::Terminal(TermWork::Edit {
                    text: self.input.text().to_owned(),
                    multi_line: self.input.is_multi_line(),
                }))
            }
            InputEvent::Pass(Action::Suspend) => Handled::work(Effect::Terminal(TermWork::Suspend)),
            InputEvent::Pass(Action::PageUp) => {
                self.scroll = self.scroll.saturating_add(10);
                Handled::done()
            }
            InputEvent::Pass(Action::PageDown) => {
                self.scroll = self.scroll.saturating_sub(10);
                Handled::done()
            }
            InputEvent::Pass(_) => Handled::done(),
        }
    }

    fn on_paste(&mut self, text: &str) -> Handled {
        if !self.composing {
            return Handled::Ignored;
        }
        self.input.insert(text);
        Handled::done()
    }

    fn on_answer(&mut self, answer: Answer, _ctx: &Ctx) -> Handled {
        match answer {
            Answer::Picked(Picked::Citation(c)) => self.follow(c),
            _ => Handled::Ignored,
        }
    }

    fn on_resize(&mut self, _area: Rect) {}

    fn commands(&self) -> &'static [Action] {
        COMMANDS
    }

    fn draw(&self, frame: &mut Frame, area: Rect, ctx: &Ctx, theme: &Theme) {
        let [list, main] =
            Layout::horizontal([Constraint::Length(28), Constraint::Min(20)]).areas(area);
        let input_height = (self.input.line_count().max(1) as u16 + 2).min(8);
        let [messages, input] =
            Layout::vertical([Constraint::Min(3), Constraint::Length(input_height)]).areas(main);
        let rows: Vec<Line> = self
            .threads
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let style = if i == self.selected {
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
                    .border_style(border(theme, !self.composing))
                    .title(Span::styled(" Threads ", theme.style("ui.title"))),
            ),
            list,
        );
        let lines = self.message_lines(ctx, theme);
        let title = self
            .threads
            .get(self.selected)
            .map_or("general".to_owned(), |t| t.title.clone());
        let paragraph = Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(border(theme, false))
                .title(Span::styled(format!(" {title} "), theme.style("ui.title"))),
        );
        // Keep the newest lines in view: the real wrapped height, minus
        // what the user scrolled up.
        let total = paragraph.line_count(messages.width) as u16;
        let top = total
            .saturating_sub(messages.height)
            .saturating_sub(self.scroll);
        frame.render_widget(paragraph.scroll((top, 0)), messages);

        let dim = theme.style("ui.text.dim");
        let input_lines = if !self.composing && self.input.is_empty() {
            vec![Line::from(Span::styled(
                format!(
                    "{} to write · {} sends · {} new line · {} editor · {} follows a citation",
                    keys(ctx.keymap, Pane::Chat, Action::Compose),
                    keys(ctx.keymap, Section::Input, Action::Confirm),
                    keys(ctx.keymap, Section::Input, Action::NewLine),
                    keys(ctx.keymap, Section::Input, Action::OpenEditor),
                    keys(ctx.keymap, Pane::Chat, Action::FollowCitation),
                ),
                dim,
            ))]
        } else {
            self.input.lines(theme.style("ui.input"), self.composing)
        };
        frame.render_widget(
            Paragraph::new(input_lines).block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(border(theme, self.composing))
                    .title(Span::styled(" Message ", theme.style("ui.title"))),
            ),
            input,
        );
    }
}

impl ChatPane {
    fn message_lines(&self, ctx: &Ctx, theme: &Theme) -> Vec<Line<'static>> {
        let text = theme.style("ui.text");
        let dim = theme.style("ui.text.dim");
        let key = theme.style("ui.help.key");
        let mut lines: Vec<Line<'static>> = Vec::new();
        for m in &self.messages {
            let who = match (&m.provenance, m.provenance.rules_name()) {
                (_, Some(rules)) => format!("@{} · rules: {rules}", m.author),
                (
                    Provenance::Ai {
                        provider, model, ..
                    },
                    None,
                ) => format!("@{} · AI · {provider}/{model}", m.author),
                (Provenance::Human | Provenance::Rules { .. }, None) => format!("@{}", m.author),
            };
            lines.push(Line::from(Span::styled(who, key)));
            lines.extend(markdown::render(&m.body, text, theme));
            for t in &m.tools {
                lines.push(Line::from(Span::styled(
                    format!("  ▸ {}: {}", t.name, t.summary),
                    dim,
                )));
            }
            for (n, c) in numbered(&m.citations) {
                lines.push(Line::from(Span::styled(
                    format!("  [{n}] {}", c.describe()),
                    dim,
                )));
            }
            lines.push(Line::default());
        }
        if let Some(s) = self
            .streaming
            .as_ref()
            .filter(|s| s.thread == self.thread())
        {
            let cancel = if self.composing {
                keys(ctx.keymap, Section::Input, Action::Cancel)
            } else {
                keys(ctx.keymap, Pane::Chat, Action::Cancel)
            };
            if !s.question.is_empty() {
                lines.push(Line::from(Span::styled(
                    "you · posted with the answer".to_owned(),
                    key,
                )));
                lines.extend(markdown::render(&s.question, text, theme));
                lines.push(Line::default());
            }
            lines.push(Line::from(Span::styled(
                format!("agent · answering ({cancel} cancels)"),
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
            if let Some((name, bytes)) = &s.calling {
                let line = if *bytes == 0 {
                    format!("  ▸ calling {name}…")
                } else {
                    format!("  ▸ calling {name}… {bytes} bytes")
                };
                lines.push(Line::from(Span::styled(line, dim)));
            }
            lines.extend(markdown::render(&s.text, text, theme));
            if let Some(note) = &s.note {
                lines.push(Line::from(Span::styled(note.clone(), dim)));
            }
        }
        if let Some(n) = self.notice() {
            lines.push(Line::default());
            for l in n.lines() {
                lines.push(Line::from(Span::styled(l.to_owned(), dim)));
            }
        }
        if self.model.is_none() {
            lines.push(Line::from(Span::styled(
                NO_MODEL_HINT.to_owned(),
                theme.style("ui.text.dim"),
            )));
        }
        if self.messages.is_empty() && self.streaming.is_none() && self.notice().is_none() {
            lines.push(Line::from(Span::styled(
                format!(
                    "No messages yet. {}: write · /help lists the commands that need no model",
                    keys(ctx.keymap, Pane::Chat, Action::Compose)
                ),
                dim,
            )));
        }
        lines
    }
}

fn border(theme: &Theme, focused: bool) -> Style {
    if focused {
        theme.style("ui.border.focus")
    } else {
        theme.style("ui.border")
    }
}

/// A message as copied: its Markdown, then its numbered sources.
pub fn message_text(m: &Message) -> String {
    let mut text = m.body.trim_end().to_owned();
    if !m.citations.is_empty() {
        text.push_str("\n\nSources:");
        for (n, c) in numbered(&m.citations) {
            text.push_str(&format!("\n[{n}] {}", citation_text(c)));
        }
    }
    text
}

/// The follow-citation picker's choices: each source under the number the
/// answer cites it by; numbers that refer to no source cannot be followed.
pub fn citation_choices(citations: &[Citation]) -> Vec<Choice<Citation>> {
    numbered(citations)
        .filter(|(_, c)| !c.unknown)
        .map(|(n, c)| Choice {
            label: format!("[{n}] {}", c.kind),
            detail: format!("{} {}", c.id, c.quote.as_deref().unwrap_or("")),
            value: c.clone(),
        })
        .collect()
}

/// One source as copied: `kind id: "quote"`.
pub fn citation_text(c: &Citation) -> String {
    if c.unknown {
        return "(no such source)".to_owned();
    }
    match c.quote.as_deref().filter(|q| !q.trim().is_empty()) {
        Some(q) => format!("{} {}: \"{}\"", c.kind, c.id, q.trim()),
        None => format!("{} {}", c.kind, c.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::{App, Msg};
    use crate::tui::keymap::Keymap;
    use crate::tui::popup::picker::AnyPicker;
    use crate::tui::theme::{ColorDepth, Theme};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn answer_citing(citations: Vec<Citation>) -> Message {
        Message {
            author: "ana".into(),
            at: None,
            body: "Slow cuts [4]; no spinning logos [9].".into(),
            citations,
            provenance: Provenance::Ai {
                provider: "openai".into(),
                model: "test".into(),
                prompt_sha256: String::new(),
            },
            tools: Vec::new(),
        }
    }

    fn cited(n: Option<usize>, id: &str) -> Citation {
        Citation {
            n,
            kind: "kb".into(),
            id: id.into(),
            quote: Some(format!("{id} title")),
            unknown: false,
        }
    }

    fn app_with(messages: Vec<Message>) -> App {
        let keymap = Keymap::load("default", None).expect("keymap");
        let mut app = App::new(keymap, jiff::Timestamp::UNIX_EPOCH);
        app.panes.chat.model = Some("openai/test".into());
        app.update(Msg::Action(Action::ShowChat));
        app.update(Msg::ChatData {
            threads: vec![ThreadInfo {
                id: "general".into(),
                title: "general".into(),
                messages: messages.len(),
            }],
            thread: "general".into(),
            messages,
        });
        app
    }

    fn screen(app: &mut App) -> String {
        let theme = Theme::load("default-dark", None, ColorDepth::TrueColor).expect("theme");
        app.update(Msg::Resize {
            width: 120,
            height: 30,
        });
        let mut terminal = Terminal::new(TestBackend::new(120, 30)).expect("terminal");
        terminal
            .draw(|f| crate::tui::draw::draw(app, &theme, f))
            .expect("draw");
        terminal.backend().to_string()
    }

    #[test]
    fn the_source_list_and_the_picker_keep_the_numbers_the_answer_used() {
        let mut app = app_with(vec![answer_citing(vec![
            cited(Some(4), "k-motion#0"),
            Citation::unknown(9),
        ])]);
        let text = screen(&mut app);
        assert!(
            text.contains("[4] kb k-motion#0 k-motion#0 title"),
            "{text}"
        );
        assert!(text.contains("[9] (no such source)"), "{text}");
        assert!(!text.contains("[1] "), "{text}");

        let choices = citation_choices(&app.panes.chat.latest_citations());
        let labels: Vec<&str> = choices.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(
            labels,
            vec!["[4] kb"],
            "an unknown number cannot be followed"
        );
        app.update(Msg::Action(Action::FollowCitation));
        let text = screen(&mut app);
        assert!(text.contains("[4] kb"), "{text}");
        assert!(matches!(
            app.popups.last(),
            Some((_, Popup::Picker(AnyPicker::Citation(_))))
        ));
        let copied = message_text(&app.panes.chat.messages[0]);
        assert!(copied.ends_with("[4] kb k-motion#0: \"k-motion#0 title\"\n[9] (no such source)"));
    }

    #[test]
    fn citations_stored_without_numbers_are_numbered_by_position() {
        let mut app = app_with(vec![answer_citing(vec![
            cited(None, "k-a#0"),
            cited(None, "k-b#0"),
        ])]);
        let text = screen(&mut app);
        assert!(
            text.contains("[1] kb k-a#0") && text.contains("[2] kb k-b#0"),
            "{text}"
        );
    }

    #[test]
    fn a_failed_answer_puts_the_question_back_in_the_input() {
        let mut app = app_with(Vec::new());
        app.panes.chat.streaming = Some(Streaming {
            thread: "general".into(),
            question: "can we ship Friday?".into(),
            ..Streaming::default()
        });
        app.update(Msg::ChatStream(ChatEvent::ToolCalling {
            name: "search_briefs".into(),
            bytes: 312,
        }));
        let text = screen(&mut app);
        assert!(text.contains("calling search_briefs… 312 bytes"), "{text}");
        assert!(text.contains("can we ship Friday?"), "{text}");
        app.update(Msg::ChatDone {
            thread: "general".into(),
            error: Some("connection refused".into()),
        });
        assert!(app.panes.chat.streaming.is_none());
        assert_eq!(app.panes.chat.input.text(), "can we ship Friday?");
        assert_eq!(app.panes.chat.notice(), Some("connection refused"));
    }
}
