//! Global search: a popup that searches as you type across briefs,
//! comments, chat, assets and the knowledge base (on the search worker,
//! never on the render loop), and a reader for passages shown in full.

use super::outcome::{Answer, Outcome};
use crate::search::docs::DocKind;
use crate::search::index::Hit;
use crate::tui::action::Action;
use crate::tui::keymap::{Keymap, Section};
use crate::tui::msg::Effect;
use crate::tui::theme::Theme;
use crate::tui::widgets::chrome::{block, keys};
use crate::tui::widgets::markdown;
use crate::tui::widgets::text_input::{InputEvent, TextInput};
use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

/// The search popup's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchState {
    pub input: TextInput,
    pub hits: Vec<Hit>,
    pub selected: usize,
    /// Numbers each request, so a slow answer to an old query is dropped.
    pub seq: u64,
    /// The query the shown hits answer.
    pub answered: String,
    /// A warning or error from the last search.
    pub note: Option<String>,
}

/// A passage shown in full (a knowledge chunk or a chat message).
#[derive(Debug, Clone, PartialEq)]
pub struct Reader {
    pub title: String,
    pub text: String,
    pub scroll: u16,
}

impl SearchState {
    pub fn on_key(&mut self, key: &KeyEvent, bound: Option<Action>) -> Outcome {
        match self.input.on_key(key, bound) {
            InputEvent::Edited => self.changed(),
            InputEvent::Unchanged => Outcome::Stay,
            InputEvent::Pass(Action::Cancel) => Outcome::Close,
            InputEvent::Pass(Action::Confirm) => match self.hits.get(self.selected) {
                Some(hit) => Outcome::Answer(Answer::Hit(hit.clone())),
                None => Outcome::Stay,
            },
            InputEvent::Pass(Action::MoveDown) => {
                self.move_by(1);
                Outcome::Stay
            }
            InputEvent::Pass(Action::MoveUp) => {
                self.move_by(-1);
                Outcome::Stay
            }
            InputEvent::Pass(Action::PageDown) => {
                self.move_by(5);
                Outcome::Stay
            }
            InputEvent::Pass(Action::PageUp) => {
                self.move_by(-5);
                Outcome::Stay
            }
            InputEvent::Pass(_) => Outcome::Stay,
        }
    }

    pub fn paste(&mut self, text: &str) -> Outcome {
        self.input.insert(text);
        self.changed()
    }

    fn move_by(&mut self, delta: isize) {
        let last = self.hits.len().saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(delta).min(last);
    }

    fn changed(&mut self) -> Outcome {
        self.seq += 1;
        if self.input.text().trim().is_empty() {
            self.hits.clear();
            self.answered.clear();
            self.note = None;
            return Outcome::Stay;
        }
        Outcome::Run(Effect::Search {
            seq: self.seq,
            text: self.input.text().to_owned(),
        })
    }

    /// An answer from the worker; stale ones are ignored.
    pub fn on_results(
        &mut self,
        seq: u64,
        text: String,
        outcome: Result<(Vec<Hit>, Vec<String>), String>,
    ) {
        if seq != self.seq {
            return;
        }
        match outcome {
            Ok((hits, warnings)) => {
                self.hits = hits;
                self.selected = 0;
                self.answered = text;
                self.note = (!warnings.is_empty()).then(|| warnings.join("; "));
            }
            Err(e) => {
                self.note = Some(e);
            }
        }
    }
}

fn kind_label(kind: DocKind) -> &'static str {
    match kind {
        DocKind::Brief => "brief  ",
        DocKind::Comment => "comment",
        DocKind::Chat => "chat   ",
        DocKind::Asset => "asset  ",
        DocKind::Kb => "kb     ",
    }
}

/// The popup: the query line, then each result with its kind, title and snippet.
pub fn draw_search(
    state: &SearchState,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
    keymap: &Keymap,
) {
    let inner_w = area.width.saturating_sub(2) as usize;
    let mut first = vec![Span::styled("search: ", theme.style("ui.help.key"))];
    first.extend(
        state
            .input
            .lines(theme.style("ui.input"), true)
            .into_iter()
            .flat_map(|l| l.spans),
    );
    let mut lines = vec![Line::from(first)];
    if let Some(note) = &state.note {
        lines.push(Line::from(Span::styled(
            note.clone(),
            theme.style("ui.text.dim"),
        )));
    }
    if state.hits.is_empty() && !state.answered.is_empty() {
        lines.push(Line::from(Span::styled(
            format!("nothing found for \"{}\"", state.answered),
            theme.style("ui.text.dim"),
        )));
    }
    if state.input.text().trim().is_empty() {
        let k = |a| keys(keymap, Section::Input, a);
        lines.push(Line::from(Span::styled(
            format!(
                "briefs, comments, chat, assets and the knowledge base · {}/{} choose · {} open · {} close",
                k(Action::MoveUp),
                k(Action::MoveDown),
                k(Action::Confirm),
                k(Action::Cancel)
            ),
            theme.style("ui.text.dim"),
        )));
    }
    for (i, hit) in state.hits.iter().enumerate() {
        let style = if i == state.selected {
            theme.style("ui.selection")
        } else {
            theme.style("ui.text")
        };
        lines.push(Line::from(vec![
            Span::styled(
                format!(" {} ", kind_label(hit.kind)),
                theme.style("ui.help.key"),
            ),
            Span::styled(truncate(&hit.title, inner_w.saturating_sub(10)), style),
        ]));
        lines.push(Line::from(Span::styled(
            format!(
                "          {}",
                truncate(&hit.snippet, inner_w.saturating_sub(10))
            ),
            theme.style("ui.text.dim"),
        )));
    }
    frame.render_widget(Clear, area);
    frame.render_widget(Paragraph::new(lines).block(block(theme, "Search")), area);
}

pub fn draw_reader(
    reader: &Reader,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
    block: Block<'_>,
) {
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(markdown::render(
            &reader.text,
            theme.style("ui.text"),
            theme,
        ))
        .wrap(Wrap { trim: false })
        .scroll((reader.scroll, 0))
        .block(block),
        area,
    );
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyModifiers};

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn hit(id: &str) -> Hit {
        Hit {
            kind: DocKind::Brief,
            id: id.into(),
            title: id.into(),
            snippet: String::new(),
            text: String::new(),
            score: 0.0,
            entity: format!("brief/{id}"),
            brief: Some(id.into()),
            vector_rank: None,
            lexical_rank: Some(1),
        }
    }

    #[test]
    fn typing_runs_numbered_queries_and_stale_answers_are_dropped() {
        let mut s = SearchState::default();
        assert_eq!(
            s.on_key(&key(KeyCode::Char('l')), None),
            Outcome::Run(Effect::Search {
                seq: 1,
                text: "l".into()
            })
        );
        assert_eq!(
            s.on_key(&key(KeyCode::Char('o')), None),
            Outcome::Run(Effect::Search {
                seq: 2,
                text: "lo".into()
            })
        );
        s.on_results(1, "l".into(), Ok((vec![hit("b-old")], vec![])));
        assert!(s.hits.is_empty(), "a stale answer is ignored");
        s.on_results(2, "lo".into(), Ok((vec![hit("b-1"), hit("b-2")], vec![])));
        assert_eq!(s.hits.len(), 2);
        s.on_key(&key(KeyCode::Down), Some(Action::MoveDown));
        s.on_key(&key(KeyCode::Down), Some(Action::MoveDown));
        assert_eq!(s.selected, 1, "the cursor stops at the last result");
        assert_eq!(
            s.on_key(&key(KeyCode::Enter), Some(Action::Confirm)),
            Outcome::Answer(Answer::Hit(hit("b-2")))
        );
        assert_eq!(
            s.on_key(&key(KeyCode::Esc), Some(Action::Cancel)),
            Outcome::Close
        );
    }

    #[test]
    fn clearing_the_input_clears_the_results() {
        let mut s = SearchState::default();
        s.on_key(&key(KeyCode::Char('x')), None);
        s.on_results(
            1,
            "x".into(),
            Ok((vec![hit("b-1")], vec!["word matches only".into()])),
        );
        assert_eq!(s.note.as_deref(), Some("word matches only"));
        assert_eq!(
            s.on_key(&key(KeyCode::Backspace), Some(Action::DeleteBack)),
            Outcome::Stay
        );
        assert!(s.hits.is_empty() && s.note.is_none());
    }
}
