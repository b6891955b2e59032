//! The new-brief form: the title, then each required field with the
//! clarifying question a lead would ask. Empty answers stay open questions.

use super::outcome::{Answer, Outcome};
use crate::model::brief::{Brief, BriefField};
use crate::service::NewBrief;
use crate::tui::action::Action;
use crate::tui::keymap::{Keymap, Section};
use crate::tui::msg::Level;
use crate::tui::theme::Theme;
use crate::tui::widgets::chrome::{block, centered, keys};
use crate::tui::widgets::text_input::{InputEvent, TextInput};
use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

/// The fields the form asks for, with their questions.
pub fn new_brief_form() -> Vec<(BriefField, String)> {
    let mut form = vec![(BriefField::Title, "Title".to_owned())];
    for q in Brief::from_record("b-new", &Default::default()).missing_fields() {
        if let Ok(field) = BriefField::parse(&q.field) {
            form.push((field, q.question));
        }
    }
    form
}

#[derive(Debug, Clone, PartialEq)]
pub struct Form {
    pub fields: Vec<(BriefField, String)>,
    pub answers: Vec<TextInput>,
    pub index: usize,
}

impl Default for Form {
    fn default() -> Form {
        let fields = new_brief_form();
        let answers = vec![TextInput::single_line(); fields.len()];
        Form {
            fields,
            answers,
            index: 0,
        }
    }
}

impl Form {
    pub fn answer_texts(&self) -> Vec<String> {
        self.answers.iter().map(|a| a.text().to_owned()).collect()
    }

    /// Checks the current answer as it is left.
    fn check(&self, zone: &str) -> Result<(), String> {
        let (Some((field, _)), Some(answer)) =
            (self.fields.get(self.index), self.answers.get(self.index))
        else {
            return Ok(());
        };
        NewBrief::check_answer(*field, answer.text(), zone).map_err(|e| e.0)
    }

    pub fn paste(&mut self, text: &str) {
        if let Some(a) = self.answers.get_mut(self.index) {
            a.insert(text);
        }
    }

    pub fn on_key(&mut self, key: &KeyEvent, bound: Option<Action>, zone: &str) -> Outcome {
        let last = self.answers.len().saturating_sub(1);
        let Some(answer) = self.answers.get_mut(self.index) else {
            return Outcome::Close;
        };
        match answer.on_key(key, bound) {
            InputEvent::Edited | InputEvent::Unchanged => Outcome::Stay,
            InputEvent::Pass(Action::Cancel) => {
                Outcome::CloseSaying(Level::Info, "new brief discarded".into())
            }
            InputEvent::Pass(action @ (Action::Confirm | Action::MoveDown)) => {
                if let Err(e) = self.check(zone) {
                    return Outcome::Say(Level::Error, e);
                }
                if action == Action::Confirm && self.index == last {
                    return Outcome::Answer(Answer::Form(self.answer_texts()));
                }
                self.index = (self.index + 1).min(last);
                Outcome::Say(Level::Info, String::new())
            }
            InputEvent::Pass(Action::MoveUp) => {
                self.index = self.index.saturating_sub(1);
                Outcome::Stay
            }
            InputEvent::Pass(_) => Outcome::Stay,
        }
    }

    pub fn draw(&self, frame: &mut Frame, body: Rect, theme: &Theme, keymap: &Keymap) {
        let width = 76.min(body.width);
        let inner_w = width.saturating_sub(2).max(1) as usize;
        let needed: usize = self
            .fields
            .iter()
            .map(|(_, q)| q.chars().count().div_ceil(inner_w) + 1)
            .sum::<usize>()
            + 1
            + 2;
        let area = centered(body, width, (needed as u16).min(body.height));
        let mut lines = Vec::new();
        for (i, ((_, question), answer)) in self.fields.iter().zip(&self.answers).enumerate() {
            let current = i == self.index;
            let q_style = if current {
                theme.style("ui.help.key")
            } else {
                theme.style("ui.text.dim")
            };
            lines.push(Line::from(Span::styled(question.clone(), q_style)));
            let mut spans = vec![Span::styled("  ", theme.style("ui.input"))];
            if answer.is_empty() && !current {
                spans.push(Span::styled("(open question)", theme.style("ui.text.dim")));
            } else {
                for line in answer.lines(theme.style("ui.input"), current) {
                    spans.extend(line.spans);
                }
            }
            lines.push(Line::from(spans));
        }
        let k = |a| keys(keymap, Section::Input, a);
        lines.push(Line::from(Span::styled(
            format!(
                "{} next · {}/{} move · {} discard · blank answers stay open questions",
                k(Action::Confirm),
                k(Action::MoveUp),
                k(Action::MoveDown),
                k(Action::Cancel)
            ),
            theme.style("ui.text.dim"),
        )));
        frame.render_widget(Clear, area);
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(block(theme, "New brief")),
            area,
        );
    }
}
