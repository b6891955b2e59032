//! Popups: the layers drawn over the panes. The top popup gets every key
//! and every paste first. Text popups read their keys from the keymap's
//! `[input]` section; list popups from the pane they were opened over. A
//! popup never reaches into a pane: it answers, and the app hands the
//! answer to the pane that opened it.

pub mod form;
pub mod generate;
pub mod outcome;
pub mod picker;
pub mod search;

pub use crate::tui::widgets::chrome::{block, centered, keys};
pub use outcome::{Answer, Outcome, Prompt};

use super::action::{Action, Pane};
use super::editor::TermWork;
use super::keymap::{KeyChord, Keymap, Lookup, Section};
use super::msg::{Effect, Level};
use super::theme::Theme;
use super::widgets::text_input::{InputEvent, TextInput};
use crossterm::event::{KeyCode, KeyEvent};
use form::Form;
use picker::AnyPicker;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use search::{Reader, SearchState};

#[derive(Debug, Clone, PartialEq)]
pub enum Popup {
    /// The bindings of the pane it was opened over.
    Help {
        scroll: u16,
    },
    Palette {
        input: TextInput,
        selected: usize,
    },
    Picker(AnyPicker),
    Prompt {
        prompt: Prompt,
        input: TextInput,
    },
    Confirm {
        message: String,
        then: Box<Effect>,
    },
    /// The new-brief form.
    Form(Form),
    /// The generate form: prompt and count for a brief and template.
    Generate(generate::GenerateForm),
    /// Global search, results as you type.
    Search(SearchState),
    /// A search result or cited source shown in full.
    Reader(Reader),
}

impl Popup {
    pub fn prompt(prompt: Prompt, text: &str) -> Popup {
        let mut input = if prompt.multi_line() {
            TextInput::multi_line()
        } else {
            TextInput::single_line()
        };
        input.set_text(text);
        Popup::Prompt { prompt, input }
    }

    pub fn palette() -> Popup {
        Popup::Palette {
            input: TextInput::single_line(),
            selected: 0,
        }
    }

    /// The text input keys type into, if this popup has one.
    pub fn input_mut(&mut self) -> Option<&mut TextInput> {
        match self {
            Popup::Palette { input, .. } | Popup::Prompt { input, .. } => Some(input),
            Popup::Form(form) => form.answers.get_mut(form.index),
            Popup::Generate(form) => Some(form.input_mut()),
            Popup::Search(state) => Some(&mut state.input),
            _ => None,
        }
    }

    /// Whether keys type into this popup.
    pub fn takes_text(&self) -> bool {
        matches!(
            self,
            Popup::Palette { .. }
                | Popup::Prompt { .. }
                | Popup::Form(_)
                | Popup::Generate(_)
                | Popup::Search(_)
        )
    }
}

/// What a popup needs from around it.
pub struct PopupCtx<'a> {
    pub keymap: &'a Keymap,
    /// The pane the popup was opened over.
    pub pane: Pane,
    /// The member's zone, for dates typed into forms.
    pub zone: &'a str,
    /// Which graphics draw images, and why.
    pub graphics: &'a str,
}

/// The action `[input]` binds to a key, if any.
fn input_action(keymap: &Keymap, key: &KeyEvent) -> Option<Action> {
    match keymap.lookup(Section::Input, &[KeyChord::from_event(key)]) {
        Lookup::Action(a) => Some(a),
        _ => None,
    }
}

/// The action a pane's keys give a single key, if any.
fn pane_action(keymap: &Keymap, pane: Pane, key: &KeyEvent) -> Option<Action> {
    match keymap.lookup(pane, &[KeyChord::from_event(key)]) {
        Lookup::Action(a) => Some(a),
        _ => None,
    }
}

impl Popup {
    pub fn on_key(&mut self, key: &KeyEvent, ctx: &PopupCtx) -> Outcome {
        if self.takes_text() {
            let bound = input_action(ctx.keymap, key);
            return self.on_text_key(key, bound, ctx);
        }
        let action = pane_action(ctx.keymap, ctx.pane, key);
        match self {
            Popup::Help { scroll } | Popup::Reader(Reader { scroll, .. }) => match action {
                Some(Action::MoveDown) => *scroll = scroll.saturating_add(1),
                Some(Action::MoveUp) => *scroll = scroll.saturating_sub(1),
                Some(Action::PageDown) => *scroll = scroll.saturating_add(10),
                Some(Action::PageUp) => *scroll = scroll.saturating_sub(10),
                Some(Action::GotoTop) => *scroll = 0,
                _ => return Outcome::Close,
            },
            Popup::Picker(picker) => match action {
                Some(Action::MoveDown) => picker.move_by(1),
                Some(Action::MoveUp) => picker.move_by(-1),
                Some(Action::PageDown) => picker.move_by(10),
                Some(Action::PageUp) => picker.move_by(-10),
                Some(Action::GotoTop) => picker.move_by(isize::MIN / 2),
                Some(Action::GotoBottom) => picker.move_by(isize::MAX / 2),
                Some(Action::Confirm) => {
                    return match picker.picked() {
                        Some(p) => Outcome::Answer(Answer::Picked(p)),
                        None => Outcome::Close,
                    };
                }
                Some(Action::Cancel) => return Outcome::Close,
                Some(Action::CopyId | Action::CopyText) => {
                    if let Some(picker::Picked::Citation(c)) = picker.picked() {
                        return Outcome::Run(Effect::Terminal(TermWork::Copy {
                            what: format!("source {} {}", c.kind, c.id),
                            text: crate::tui::panes::chat::citation_text(&c),
                        }));
                    }
                }
                _ => {}
            },
            Popup::Confirm { then, .. } => {
                let yes = action == Some(Action::Confirm) || key.code == KeyCode::Char('y');
                let no = action == Some(Action::Cancel) || key.code == KeyCode::Char('n');
                if yes {
                    return Outcome::Answer(Answer::Effect((**then).clone()));
                }
                if no {
                    return Outcome::CloseSaying(Level::Info, "cancelled".into());
                }
            }
            _ => {}
        }
        Outcome::Stay
    }

    fn on_text_key(&mut self, key: &KeyEvent, bound: Option<Action>, ctx: &PopupCtx) -> Outcome {
        // Every text input hands its text to the editor, and ctrl-z works
        // while typing too.
        match bound {
            Some(Action::OpenEditor) => {
                if let Some(input) = self.input_mut() {
                    return Outcome::Run(Effect::Terminal(TermWork::Edit {
                        text: input.text().to_owned(),
                        multi_line: input.is_multi_line(),
                    }));
                }
            }
            Some(Action::Suspend) => return Outcome::Run(Effect::Terminal(TermWork::Suspend)),
            _ => {}
        }
        match self {
            Popup::Prompt { prompt, input } => match input.on_key(key, bound) {
                InputEvent::Edited if *prompt == Prompt::Filter => Outcome::Live(Answer::Text {
                    prompt: Prompt::Filter,
                    text: input.text().to_owned(),
                }),
                InputEvent::Edited | InputEvent::Unchanged => Outcome::Stay,
                InputEvent::Pass(Action::Confirm) => Outcome::Answer(Answer::Text {
                    prompt: *prompt,
                    text: input.text().to_owned(),
                }),
                InputEvent::Pass(Action::Cancel) if *prompt == Prompt::Filter => {
                    Outcome::Answer(Answer::Text {
                        prompt: Prompt::Filter,
                        text: String::new(),
                    })
                }
                InputEvent::Pass(Action::Cancel) => Outcome::Close,
                InputEvent::Pass(_) => Outcome::Stay,
            },
            Popup::Palette { input, selected } => match input.on_key(key, bound) {
                InputEvent::Edited => {
                    *selected = 0;
                    Outcome::Stay
                }
                InputEvent::Unchanged => Outcome::Stay,
                InputEvent::Pass(Action::Confirm) => {
                    let matches = palette_matches(ctx.keymap, ctx.pane, input.text());
                    match matches.get(*selected) {
                        Some((action, _, _)) => Outcome::Answer(Answer::Action(*action)),
                        None => Outcome::Close,
                    }
                }
                InputEvent::Pass(Action::Cancel) => Outcome::Close,
                InputEvent::Pass(Action::MoveDown | Action::PageDown) => {
                    let n = palette_matches(ctx.keymap, ctx.pane, input.text()).len();
                    *selected = (*selected + 1).min(n.saturating_sub(1));
                    Outcome::Stay
                }
                InputEvent::Pass(Action::MoveUp | Action::PageUp) => {
                    *selected = selected.saturating_sub(1);
                    Outcome::Stay
                }
                InputEvent::Pass(_) => Outcome::Stay,
            },
            Popup::Form(form) => form.on_key(key, bound, ctx.zone),
            Popup::Generate(form) => form.on_key(key, bound),
            Popup::Search(state) => state.on_key(key, bound),
            _ => Outcome::Stay,
        }
    }

    /// Pasted text: into the popup's input, never read as keys.
    pub fn on_paste(&mut self, text: &str) -> Outcome {
        match self {
            Popup::Prompt { prompt, input } => {
                input.insert(text);
                if *prompt == Prompt::Filter {
                    Outcome::Live(Answer::Text {
                        prompt: Prompt::Filter,
                        text: input.text().to_owned(),
                    })
                } else {
                    Outcome::Stay
                }
            }
            Popup::Palette { input, selected } => {
                input.insert(text);
                *selected = 0;
                Outcome::Stay
            }
            Popup::Form(form) => {
                form.paste(text);
                Outcome::Stay
            }
            Popup::Generate(form) => {
                form.input_mut().insert(text);
                Outcome::Stay
            }
            Popup::Search(state) => state.paste(text),
            _ => Outcome::Say(Level::Info, "paste ignored: no text field here".into()),
        }
    }
}

/// Actions from the loaded keymap whose name or description match the
/// palette input, with the keys that run them in this pane.
pub fn palette_matches(keymap: &Keymap, pane: Pane, input: &str) -> Vec<(Action, String, String)> {
    let needle = input.trim().to_lowercase();
    let mut out: Vec<(Action, String, String)> = Vec::new();
    for binding in keymap.bindings_for(pane) {
        if out.iter().any(|(a, _, _)| *a == binding.action) {
            continue;
        }
        let hay = format!("{} {}", binding.action.name(), binding.desc).to_lowercase();
        if needle.split_whitespace().all(|w| hay.contains(w)) {
            out.push((binding.action, binding.desc.clone(), binding.keys_text()));
        }
    }
    out
}

/// Draws a popup over `body`.
pub fn draw(popup: &Popup, frame: &mut Frame, body: Rect, theme: &Theme, ctx: &PopupCtx) {
    let keymap = ctx.keymap;
    let input_keys = |action| keys(keymap, Section::Input, action);
    match popup {
        Popup::Help { scroll } => {
            let area = centered(body, 72, body.height);
            let mut lines = Vec::new();
            if !ctx.graphics.is_empty() {
                lines.push(Line::from(vec![
                    Span::styled("images  ", theme.style("ui.help.section")),
                    Span::styled(ctx.graphics.to_owned(), theme.style("ui.text.dim")),
                ]));
            }
            let mut section = String::new();
            for b in keymap.bindings_for(ctx.pane) {
                if b.section != section {
                    section = b.section.clone();
                    lines.push(Line::from(Span::styled(
                        format!("[{section}]"),
                        theme.style("ui.help.section"),
                    )));
                }
                lines.push(Line::from(vec![
                    Span::styled(
                        format!("  {:<12}", b.keys_text()),
                        theme.style("ui.help.key"),
                    ),
                    Span::styled(b.desc.clone(), theme.style("ui.help.desc")),
                ]));
            }
            let title = format!(
                "Keys · {} keymap · {} pane ({}/{} scroll, any other key closes)",
                keymap.name(),
                ctx.pane.name(),
                keys(keymap, ctx.pane, Action::MoveDown),
                keys(keymap, ctx.pane, Action::MoveUp),
            );
            frame.render_widget(Clear, area);
            frame.render_widget(
                Paragraph::new(lines)
                    .block(block(theme, &title))
                    .scroll((*scroll, 0)),
                area,
            );
        }
        Popup::Search(state) => {
            let height = (state.hits.len() as u16 * 2 + 4).max(6).min(body.height);
            let area = centered(body, 100.min(body.width), height);
            search::draw_search(state, theme, frame, area, keymap);
        }
        Popup::Reader(reader) => {
            let area = centered(body, 90.min(body.width), body.height.saturating_sub(2));
            let title = format!(
                "{} ({}/{} scroll, any other key closes)",
                reader.title,
                keys(keymap, ctx.pane, Action::MoveDown),
                keys(keymap, ctx.pane, Action::MoveUp),
            );
            search::draw_reader(reader, theme, frame, area, block(theme, &title));
        }
        Popup::Palette { input, selected } => {
            let matches = palette_matches(keymap, ctx.pane, input.text());
            let area = centered(body, 64, body.height.min(16));
            let mut first = vec![Span::styled(": ", theme.style("ui.help.key"))];
            first.extend(
                input
                    .lines(theme.style("ui.input"), true)
                    .into_iter()
                    .flat_map(|l| l.spans),
            );
            let mut lines = vec![Line::from(first)];
            for (i, (action, desc, keys)) in matches.iter().enumerate() {
                let style = if i == *selected {
                    theme.style("ui.selection")
                } else {
                    theme.style("ui.text")
                };
                lines.push(Line::from(vec![
                    Span::styled(format!(" {:<16}", action.name()), style),
                    Span::styled(format!("{desc} "), style),
                    Span::styled(format!("[{keys}]"), theme.style("ui.help.key")),
                ]));
            }
            frame.render_widget(Clear, area);
            frame.render_widget(
                Paragraph::new(lines).block(block(theme, "Command palette")),
                area,
            );
        }
        Popup::Picker(picker) => {
            let (title, rows, selected) = picker.view();
            let area = centered(body, 70, (rows.len() as u16 + 2).min(body.height));
            let lines: Vec<Line> = rows
                .iter()
                .enumerate()
                .map(|(i, (label, detail))| {
                    let style = if i == selected {
                        theme.style("ui.selection")
                    } else {
                        theme.style("ui.text")
                    };
                    Line::from(vec![
                        Span::styled(format!(" {label:<14}"), style),
                        Span::styled(detail.to_string(), theme.style("ui.text.dim")),
                    ])
                })
                .collect();
            frame.render_widget(Clear, area);
            frame.render_widget(Paragraph::new(lines).block(block(theme, title)), area);
        }
        Popup::Prompt { prompt, input } => {
            let height = (input.line_count() as u16 + 2).clamp(3, 8).min(body.height);
            let area = Rect {
                y: body.bottom().saturating_sub(height),
                height,
                ..body
            };
            let mut title = format!(
                "{} · {} done · {} cancel",
                prompt.label(),
                input_keys(Action::Confirm),
                input_keys(Action::Cancel)
            );
            if prompt.multi_line() {
                title.push_str(&format!(" · {} new line", input_keys(Action::NewLine)));
            }
            if keymap
                .keys_for(Section::Input, Action::OpenEditor)
                .is_some()
            {
                title.push_str(&format!(" · {} editor", input_keys(Action::OpenEditor)));
            }
            frame.render_widget(Clear, area);
            frame.render_widget(
                Paragraph::new(input.lines(theme.style("ui.input"), true))
                    .block(block(theme, &title)),
                area,
            );
        }
        Popup::Form(form) => form.draw(frame, body, theme, keymap),
        Popup::Generate(form) => form.draw(frame, body, theme, keymap),
        Popup::Confirm { message, .. } => {
            let area = centered(body, 64, 7);
            let text = format!(
                "{message}\n\n{}/y yes · {}/n no",
                keys(keymap, ctx.pane, Action::Confirm),
                keys(keymap, ctx.pane, Action::Cancel)
            );
            frame.render_widget(Clear, area);
            frame.render_widget(
                Paragraph::new(text)
                    .style(theme.style("ui.text"))
                    .wrap(Wrap { trim: true })
                    .block(block(theme, "Confirm")),
                area,
            );
        }
    }
}
