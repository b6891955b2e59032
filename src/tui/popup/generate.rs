//! The generate form: for a brief and a template already picked, what to
//! draw (blank: the brief's own words) and how many drafts. Submitting asks
//! the run loop for an [`Effect::Generate`].

use super::outcome::{Answer, Outcome};
use crate::generate::comfy::Progress;
use crate::generate::run::RunEvent;
use crate::tui::action::Action;
use crate::tui::keymap::{Keymap, Section};
use crate::tui::msg::{Effect, Level};
use crate::tui::theme::Theme;
use crate::tui::widgets::chrome::{block, centered, keys};
use crate::tui::widgets::text_input::{InputEvent, TextInput};
use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

/// Drafts one run may make.
pub const MAX_COUNT: u32 = 8;
/// Drafts when the form is left as it opens.
pub const DEFAULT_COUNT: u32 = 2;

#[derive(Debug, Clone, PartialEq)]
pub struct GenerateForm {
    pub brief: String,
    pub template: String,
    /// What to draw; blank uses the brief's words.
    pub prompt: TextInput,
    pub count: TextInput,
    /// 0: the prompt, 1: the count.
    pub index: usize,
}

impl GenerateForm {
    pub fn new(brief: &str, template: &str) -> GenerateForm {
        GenerateForm {
            brief: brief.to_owned(),
            template: template.to_owned(),
            prompt: TextInput::single_line(),
            count: TextInput::with_text(&DEFAULT_COUNT.to_string()),
            index: 0,
        }
    }

    /// The field keys type into.
    pub fn input_mut(&mut self) -> &mut TextInput {
        if self.index == 0 {
            &mut self.prompt
        } else {
            &mut self.count
        }
    }

    /// The count typed, checked.
    fn count(&self) -> Result<u32, String> {
        let text = self.count.text().trim();
        match text.parse::<u32>() {
            Ok(n) if (1..=MAX_COUNT).contains(&n) => Ok(n),
            _ => Err(format!("count is 1 to {MAX_COUNT}, not “{text}”")),
        }
    }

    /// The effect the form asks for as filled in.
    pub fn effect(&self) -> Result<Effect, String> {
        let prompt = self.prompt.text().trim();
        Ok(Effect::Generate {
            brief: self.brief.clone(),
            template: self.template.clone(),
            prompt: (!prompt.is_empty()).then(|| prompt.to_owned()),
            count: self.count()?,
        })
    }

    pub fn on_key(&mut self, key: &KeyEvent, bound: Option<Action>) -> Outcome {
        match self.input_mut().on_key(key, bound) {
            InputEvent::Edited | InputEvent::Unchanged => Outcome::Stay,
            InputEvent::Pass(Action::Cancel) => {
                Outcome::CloseSaying(Level::Info, "generation not started".into())
            }
            InputEvent::Pass(Action::Confirm) if self.index == 1 => match self.effect() {
                Ok(effect) => Outcome::Answer(Answer::Effect(effect)),
                Err(e) => Outcome::Say(Level::Error, e),
            },
            InputEvent::Pass(Action::Confirm | Action::MoveDown) => {
                self.index = 1;
                Outcome::Stay
            }
            InputEvent::Pass(Action::MoveUp) => {
                self.index = 0;
                Outcome::Stay
            }
            InputEvent::Pass(_) => Outcome::Stay,
        }
    }

    pub fn draw(&self, frame: &mut Frame, body: Rect, theme: &Theme, keymap: &Keymap) {
        let area = centered(body, 76.min(body.width), 8.min(body.height));
        let mut lines = Vec::new();
        let fields: [(&str, &TextInput, &str); 2] = [
            ("Prompt", &self.prompt, "(the brief's words)"),
            ("Count (1-8)", &self.count, ""),
        ];
        for (i, (label, input, blank)) in fields.into_iter().enumerate() {
            let current = i == self.index;
            let style = if current {
                theme.style("ui.help.key")
            } else {
                theme.style("ui.text.dim")
            };
            let mut spans = vec![Span::styled(format!("{label:<12} "), style)];
            if input.is_empty() && !current {
                spans.push(Span::styled(blank.to_owned(), theme.style("ui.text.dim")));
            } else {
                for line in input.lines(theme.style("ui.input"), current) {
                    spans.extend(line.spans);
                }
            }
            lines.push(Line::from(spans));
        }
        let k = |a| keys(keymap, Section::Input, a);
        lines.push(Line::from(Span::styled(
            format!(
                "{} next, then start · {}/{} move · {} cancel",
                k(Action::Confirm),
                k(Action::MoveUp),
                k(Action::MoveDown),
                k(Action::Cancel)
            ),
            theme.style("ui.text.dim"),
        )));
        let title = format!("Generate for {} with {}", self.brief, self.template);
        frame.render_widget(Clear, area);
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(block(theme, &title)),
            area,
        );
    }
}

/// A run's progress as one status line, or `None` for events not worth a
/// redraw.
pub fn progress_line(brief: &str, event: &RunEvent) -> Option<String> {
    Some(match event {
        RunEvent::Checking => format!("generating for {brief}: checking the template…"),
        RunEvent::Uploading => format!("generating for {brief}: uploading the input image…"),
        RunEvent::Recording => format!("generating for {brief}: recording the drafts…"),
        RunEvent::Image {
            index,
            of,
            progress,
        } => {
            let what = match progress {
                Progress::Queued { number, .. } => format!("queued (#{number})"),
                Progress::Started => "started".to_owned(),
                Progress::Executing {
                    class_type: Some(c),
                    ..
                } => c.clone(),
                Progress::Step { value, max, .. } => format!("step {value}/{max}"),
                Progress::Done => "done".to_owned(),
                _ => return None,
            };
            format!("generating {index}/{of}: {what}")
        }
    })
}
