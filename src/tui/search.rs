//! Global search in the TUI: a popup that searches as you type across
//! briefs, comments, chat, assets and the knowledge base (on the replica
//! worker, never on the render loop), and jumps to the chosen result.

use crate::search::docs::DocKind;
use crate::search::index::Hit;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::theme::Theme;

/// The search popup's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchState {
    pub input: String,
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

/// What a key in the popup asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchKey {
    /// Nothing beyond redrawing.
    Stay,
    Close,
    /// Run the query (the input changed).
    Run {
        seq: u64,
        text: String,
    },
    /// Go to this result.
    Open(Hit),
}

impl SearchState {
    /// Keys in the popup are fixed: type to search, arrows (C-n/C-p) move,
    /// Enter opens, Esc closes.
    pub fn on_key(&mut self, key: KeyEvent) -> SearchKey {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Esc => SearchKey::Close,
            KeyCode::Enter => match self.hits.get(self.selected) {
                Some(hit) => SearchKey::Open(hit.clone()),
                None => SearchKey::Stay,
            },
            KeyCode::Down | KeyCode::Tab => {
                self.move_by(1);
                SearchKey::Stay
            }
            KeyCode::Char('n') if ctrl => {
                self.move_by(1);
                SearchKey::Stay
            }
            KeyCode::Up | KeyCode::BackTab => {
                self.move_by(-1);
                SearchKey::Stay
            }
            KeyCode::Char('p') if ctrl => {
                self.move_by(-1);
                SearchKey::Stay
            }
            KeyCode::Backspace => {
                self.input.pop();
                self.changed()
            }
            KeyCode::Char('u') if ctrl => {
                self.input.clear();
                self.changed()
            }
            KeyCode::Char(c) if !ctrl => {
                self.input.push(c);
                self.changed()
            }
            _ => SearchKey::Stay,
        }
    }

    fn move_by(&mut self, delta: isize) {
        let last = self.hits.len().saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(delta).min(last);
    }

    fn changed(&mut self) -> SearchKey {
        self.seq += 1;
        if self.input.trim().is_empty() {
            self.hits.clear();
            self.answered.clear();
            self.note = None;
            return SearchKey::Stay;
        }
        SearchKey::Run {
            seq: self.seq,
            text: self.input.clone(),
        }
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
    block: ratatui::widgets::Block<'_>,
) {
    let inner_w = area.width.saturating_sub(2) as usize;
    let mut lines = vec![Line::from(vec![
        Span::styled("search: ", theme.style("ui.help.key")),
        Span::styled(state.input.clone(), theme.style("ui.input")),
        Span::styled("▏", theme.style("ui.input")),
    ])];
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
    if state.input.trim().is_empty() {
        lines.push(Line::from(Span::styled(
            "briefs, comments, chat, assets and the knowledge base · ↑↓ choose · enter open · esc close",
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
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

pub fn draw_reader(
    reader: &Reader,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
    block: ratatui::widgets::Block<'_>,
) {
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(reader.text.clone())
            .style(theme.style("ui.text"))
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
            s.on_key(key(KeyCode::Char('l'))),
            SearchKey::Run {
                seq: 1,
                text: "l".into()
            }
        );
        assert_eq!(
            s.on_key(key(KeyCode::Char('o'))),
            SearchKey::Run {
                seq: 2,
                text: "lo".into()
            }
        );
        s.on_results(1, "l".into(), Ok((vec![hit("b-old")], vec![])));
        assert!(s.hits.is_empty(), "a stale answer is ignored");
        s.on_results(2, "lo".into(), Ok((vec![hit("b-1"), hit("b-2")], vec![])));
        assert_eq!(s.hits.len(), 2);
        s.on_key(key(KeyCode::Down));
        s.on_key(key(KeyCode::Down));
        assert_eq!(s.selected, 1, "the cursor stops at the last result");
        assert_eq!(s.on_key(key(KeyCode::Enter)), SearchKey::Open(hit("b-2")));
        assert_eq!(s.on_key(key(KeyCode::Esc)), SearchKey::Close);
    }

    #[test]
    fn clearing_the_input_clears_the_results() {
        let mut s = SearchState::default();
        s.on_key(key(KeyCode::Char('x')));
        s.on_results(
            1,
            "x".into(),
            Ok((vec![hit("b-1")], vec!["word matches only".into()])),
        );
        assert_eq!(s.note.as_deref(), Some("word matches only"));
        assert_eq!(s.on_key(key(KeyCode::Backspace)), SearchKey::Stay);
        assert!(s.hits.is_empty() && s.note.is_none());
    }
}
