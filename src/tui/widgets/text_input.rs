//! The one text input every part of the TUI types into: a cursor that moves
//! by character, word and line, word and line deletion, multi-line text
//! where it is long, and paste that always lands as text. Its keys come
//! from the keymap's `[input]` section; a printable key it does not bind is
//! typed.

use crate::tui::action::Action;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Style;
use ratatui::text::{Line, Span};

/// What the input did with a key or an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputEvent {
    /// The text or the cursor changed.
    Edited,
    /// Nothing changed (a movement at the edge, a key with no meaning).
    Unchanged,
    /// The action is not an editing one: the owner decides (submit,
    /// cancel, move in a list).
    Pass(Action),
}

/// A text field. `multi_line` fields keep newlines (typed with `new_line`
/// or pasted); single-line fields turn them into spaces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextInput {
    text: String,
    /// Byte offset of the cursor, always on a char boundary.
    cursor: usize,
    multi_line: bool,
}

impl TextInput {
    pub fn single_line() -> TextInput {
        TextInput::default()
    }

    pub fn multi_line() -> TextInput {
        TextInput {
            multi_line: true,
            ..TextInput::default()
        }
    }

    /// A single-line input holding `text`, the cursor at its end.
    pub fn with_text(text: &str) -> TextInput {
        let mut input = TextInput::single_line();
        input.insert(text);
        input
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the input keeps newlines.
    pub fn is_multi_line(&self) -> bool {
        self.multi_line
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Replaces the text; the cursor goes to its end.
    pub fn set_text(&mut self, text: &str) {
        self.text.clear();
        self.cursor = 0;
        self.insert(text);
    }

    /// Empties the input and returns what it held.
    pub fn take(&mut self) -> String {
        self.cursor = 0;
        std::mem::take(&mut self.text)
    }

    /// Inserts text at the cursor: a typed character or a whole paste.
    /// Control characters are dropped, tabs become spaces, `\r\n` and `\r`
    /// become newlines, and newlines become spaces in a single-line input.
    pub fn insert(&mut self, text: &str) {
        let clean: String = text
            .replace("\r\n", "\n")
            .replace('\r', "\n")
            .chars()
            .filter_map(|c| match c {
                '\n' if self.multi_line => Some('\n'),
                '\n' | '\t' => Some(' '),
                c if c.is_control() => None,
                c => Some(c),
            })
            .collect();
        self.text.insert_str(self.cursor, &clean);
        self.cursor += clean.len();
    }

    /// A key already looked up in `[input]`: `Some(action)` when it is
    /// bound there, `None` when it is not (then a printable key is typed).
    pub fn on_key(&mut self, key: &KeyEvent, bound: Option<Action>) -> InputEvent {
        match bound {
            Some(action) => self.on_action(action),
            None => match key.code {
                KeyCode::Char(c)
                    if !key
                        .modifiers
                        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
                {
                    let mut buf = [0u8; 4];
                    self.insert(c.encode_utf8(&mut buf));
                    InputEvent::Edited
                }
                _ => InputEvent::Unchanged,
            },
        }
    }

    /// An editing action; anything else is passed back to the owner.
    pub fn on_action(&mut self, action: Action) -> InputEvent {
        let before = (self.text.len(), self.cursor);
        match action {
            Action::NewLine if self.multi_line => self.insert("\n"),
            Action::CursorLeft => self.cursor = self.prev_char(self.cursor),
            Action::CursorRight => self.cursor = self.next_char(self.cursor),
            Action::WordLeft => self.cursor = self.word_start_before(self.cursor),
            Action::WordRight => self.cursor = self.word_end_after(self.cursor),
            Action::LineStart => self.cursor = self.line_start(self.cursor),
            Action::LineEnd => self.cursor = self.line_end(self.cursor),
            Action::DeleteBack => {
                let from = self.prev_char(self.cursor);
                self.delete(from, self.cursor);
            }
            Action::DeleteForward => {
                let to = self.next_char(self.cursor);
                self.delete(self.cursor, to);
            }
            Action::DeleteWordBack => {
                let from = self.word_start_before(self.cursor);
                self.delete(from, self.cursor);
            }
            Action::DeleteToStart => {
                let from = self.line_start(self.cursor);
                // At the start of a line, join it to the one above.
                let from = if from == self.cursor {
                    self.prev_char(from)
                } else {
                    from
                };
                self.delete(from, self.cursor);
            }
            Action::DeleteToEnd => {
                let to = self.line_end(self.cursor);
                let to = if to == self.cursor {
                    self.next_char(to)
                } else {
                    to
                };
                self.delete(self.cursor, to);
            }
            Action::MoveUp | Action::MoveDown if self.multi_line && self.text.contains('\n') => {
                self.cursor = self.vertical(action == Action::MoveUp);
                if (self.text.len(), self.cursor) == before {
                    return InputEvent::Pass(action);
                }
            }
            other => return InputEvent::Pass(other),
        }
        if (self.text.len(), self.cursor) == before {
            InputEvent::Unchanged
        } else {
            InputEvent::Edited
        }
    }

    fn delete(&mut self, from: usize, to: usize) {
        if from < to {
            self.text.replace_range(from..to, "");
            self.cursor = from;
        }
    }

    fn prev_char(&self, at: usize) -> usize {
        self.text[..at].char_indices().last().map_or(0, |(i, _)| i)
    }

    fn next_char(&self, at: usize) -> usize {
        self.text[at..]
            .chars()
            .next()
            .map_or(at, |c| at + c.len_utf8())
    }

    fn word_start_before(&self, at: usize) -> usize {
        let head = &self.text[..at];
        let trimmed = head.trim_end_matches(|c: char| !is_word(c));
        trimmed
            .char_indices()
            .rev()
            .find(|(_, c)| !is_word(*c))
            .map_or(0, |(i, c)| i + c.len_utf8())
    }

    fn word_end_after(&self, at: usize) -> usize {
        let tail = &self.text[at..];
        let skipped = tail.len() - tail.trim_start_matches(|c: char| !is_word(c)).len();
        let rest = &tail[skipped..];
        let word = rest
            .char_indices()
            .find(|(_, c)| !is_word(*c))
            .map_or(rest.len(), |(i, _)| i);
        at + skipped + word
    }

    fn line_start(&self, at: usize) -> usize {
        self.text[..at].rfind('\n').map_or(0, |i| i + 1)
    }

    fn line_end(&self, at: usize) -> usize {
        self.text[at..]
            .find('\n')
            .map_or(self.text.len(), |i| at + i)
    }

    /// The cursor one line up or down, at the same column where it fits.
    fn vertical(&self, up: bool) -> usize {
        let start = self.line_start(self.cursor);
        let column = self.text[start..self.cursor].chars().count();
        let target_start = if up {
            if start == 0 {
                return self.cursor;
            }
            self.line_start(start - 1)
        } else {
            let end = self.line_end(self.cursor);
            if end == self.text.len() {
                return self.cursor;
            }
            end + 1
        };
        let target_end = self.line_end(target_start);
        self.text[target_start..target_end]
            .char_indices()
            .nth(column)
            .map_or(target_end, |(i, _)| target_start + i)
    }

    /// The text as lines, the cursor drawn as a bar where it is when `focused`.
    pub fn lines(&self, style: Style, focused: bool) -> Vec<Line<'static>> {
        let mut out = Vec::new();
        let mut offset = 0;
        for line in self.text.split('\n') {
            let end = offset + line.len();
            if focused && (offset..=end).contains(&self.cursor) {
                let at = self.cursor - offset;
                out.push(Line::from(vec![
                    Span::styled(line[..at].to_owned(), style),
                    Span::styled("▏", style),
                    Span::styled(line[at..].to_owned(), style),
                ]));
            } else {
                out.push(Line::from(Span::styled(line.to_owned(), style)));
            }
            offset = end + 1;
        }
        out
    }

    /// How many lines the text spans.
    pub fn line_count(&self) -> usize {
        self.text.split('\n').count()
    }
}

/// Letters, digits and `_` make words (`spring_launch` is one).
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(text: &str) -> TextInput {
        let mut input = TextInput::multi_line();
        input.insert(text);
        input
    }

    #[test]
    fn words_and_lines_are_deleted_and_crossed() {
        let mut input = typed("brief for the spring_launch");
        input.on_action(Action::DeleteWordBack);
        assert_eq!(input.text(), "brief for the ");
        input.on_action(Action::WordLeft);
        assert_eq!(input.cursor(), "brief for ".len());
        input.on_action(Action::DeleteToStart);
        assert_eq!(input.text(), "the ");
        input.on_action(Action::LineEnd);
        input.insert("end");
        assert_eq!(input.text(), "the end");
        input.on_action(Action::LineStart);
        input.on_action(Action::DeleteToEnd);
        assert!(input.is_empty());
    }

    #[test]
    fn the_cursor_moves_over_characters_not_bytes() {
        let mut input = typed("née");
        input.on_action(Action::CursorLeft);
        input.on_action(Action::CursorLeft);
        input.on_action(Action::DeleteBack);
        assert_eq!(input.text(), "ée");
        input.on_action(Action::DeleteForward);
        assert_eq!(input.text(), "e");
    }

    #[test]
    fn a_paste_keeps_its_newlines_only_where_lines_are_allowed() {
        let mut multi = TextInput::multi_line();
        multi.insert("nice work\r\na\tq\x1b[A");
        assert_eq!(multi.text(), "nice work\na q[A");
        let mut single = TextInput::single_line();
        single.insert("two\nlines");
        assert_eq!(single.text(), "two lines");
        assert_eq!(
            single.on_action(Action::NewLine),
            InputEvent::Pass(Action::NewLine)
        );
    }

    #[test]
    fn up_and_down_move_between_lines_then_pass_at_the_edges() {
        let mut input = typed("first line\nsecond");
        input.on_action(Action::MoveUp);
        assert_eq!(input.cursor(), "first ".len());
        assert_eq!(
            input.on_action(Action::MoveUp),
            InputEvent::Pass(Action::MoveUp)
        );
        input.on_action(Action::MoveDown);
        assert_eq!(input.cursor(), input.text().len());
    }

    #[test]
    fn unbound_printable_keys_type_and_control_chords_do_not() {
        let mut input = TextInput::single_line();
        input.on_key(&KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE), None);
        input.on_key(
            &KeyEvent::new(KeyCode::Char('Q'), KeyModifiers::SHIFT),
            None,
        );
        input.on_key(
            &KeyEvent::new(KeyCode::Char('x'), KeyModifiers::CONTROL),
            None,
        );
        assert_eq!(input.text(), "qQ");
        assert_eq!(
            input.on_key(
                &KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE),
                Some(Action::Confirm)
            ),
            InputEvent::Pass(Action::Confirm)
        );
    }
}
