//! Helpers for the list panes: the window of rows in view, the empty-list
//! note, and the pane frame.

use crate::tui::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

/// Rows that fit under a table header in `inner`.
pub fn rows_in(inner: Rect) -> usize {
    inner.height.saturating_sub(1) as usize
}

/// The first row shown so that `cursor` is on screen, for a list of
/// `height` rows that scrolls only as far as it must.
pub fn first_row(cursor: usize, height: usize) -> usize {
    cursor.saturating_sub(height.saturating_sub(1))
}

/// The frame around a pane's main list (focused) or a side panel.
pub fn frame_block<'a>(theme: &Theme, title: String, focused: bool) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.style(if focused {
            "ui.border.focus"
        } else {
            "ui.border"
        }))
        .title(Span::styled(title, theme.style("ui.title")))
}

/// A dim note on the first row under the header, for an empty list.
pub fn empty_note(frame: &mut Frame, inner: Rect, text: String, theme: &Theme) {
    let y = inner
        .y
        .saturating_add(1)
        .min(inner.bottom().saturating_sub(1));
    frame.render_widget(
        Paragraph::new(text)
            .style(theme.style("ui.text.dim"))
            .wrap(Wrap { trim: true }),
        Rect {
            y,
            height: inner.height.saturating_sub(1).max(1),
            ..inner
        },
    );
}

/// Moves `cursor` for a list action over `len` rows with `page` rows in
/// view; `None` when the action is not a movement.
pub fn moved(
    action: crate::tui::action::Action,
    cursor: usize,
    len: usize,
    page: usize,
) -> Option<usize> {
    use crate::tui::action::Action;
    let last = len.saturating_sub(1);
    Some(match action {
        Action::MoveDown => (cursor + 1).min(last),
        Action::MoveUp => cursor.saturating_sub(1),
        Action::PageDown => (cursor + page.max(1)).min(last),
        Action::PageUp => cursor.saturating_sub(page.max(1)),
        Action::GotoTop => 0,
        Action::GotoBottom => last,
        _ => return None,
    })
}

/// A list pane's own state: the rows shown (indexes into the snapshot, in
/// display order, after the filter), the cursor, the marked ids and the
/// filter. The assets and approvals panes keep one each.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListState {
    pub rows: Vec<usize>,
    /// The id on each row when the rows were computed, so the cursor can
    /// follow its item when new data moves it.
    pub ids: Vec<String>,
    pub cursor: usize,
    pub marked: std::collections::BTreeSet<String>,
    pub filter: String,
}

/// What a list action did, for the pane to finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListAction {
    Done,
    /// Open the filter prompt.
    OpenFilter,
    /// The filter was cleared: the rows must be computed again.
    FilterCleared,
    /// Not a list action.
    NotMine,
}

impl ListState {
    /// Whether `hay` has every word of the filter (case-insensitive).
    pub fn matches(&self, hay: &str) -> bool {
        let needle = self.filter.trim().to_lowercase();
        let hay = hay.to_lowercase();
        needle.split_whitespace().all(|w| hay.contains(w))
    }

    /// The id under the cursor, as the rows were computed.
    pub fn selected_id(&self) -> Option<&str> {
        self.ids.get(self.cursor).map(String::as_str)
    }

    /// Puts the cursor on `row` when given, keeps it on the list, and drops
    /// marks on ids that are gone.
    pub fn settle(&mut self, row: Option<usize>, ids: &std::collections::BTreeSet<&str>) {
        if let Some(row) = row {
            self.cursor = row;
        }
        self.cursor = self.cursor.min(self.rows.len().saturating_sub(1));
        self.marked.retain(|id| ids.contains(id.as_str()));
    }

    /// Movement, marks, the filter prompt and cancel, shared by list panes.
    /// `selected` is the id under the cursor.
    pub fn on_action(
        &mut self,
        action: crate::tui::action::Action,
        page: usize,
        selected: Option<String>,
    ) -> ListAction {
        use crate::tui::action::Action;
        if let Some(cursor) = moved(action, self.cursor, self.rows.len(), page) {
            self.cursor = cursor;
            return ListAction::Done;
        }
        match action {
            Action::ToggleMark => {
                if let Some(id) = selected
                    && !self.marked.remove(&id)
                {
                    self.marked.insert(id);
                }
                self.cursor = (self.cursor + 1).min(self.rows.len().saturating_sub(1));
                ListAction::Done
            }
            Action::ClearMarks => {
                self.marked.clear();
                ListAction::Done
            }
            Action::Filter => ListAction::OpenFilter,
            Action::Cancel => {
                // Esc clears the marks first, then the filter.
                if self.marked.is_empty() {
                    self.filter.clear();
                    return ListAction::FilterCleared;
                }
                self.marked.clear();
                ListAction::Done
            }
            _ => ListAction::NotMine,
        }
    }

    /// The title's tail: the filter and how many are marked.
    pub fn title_tail(&self) -> String {
        let mut tail = String::new();
        if !self.filter.is_empty() {
            tail.push_str(&format!("· /{} ", self.filter));
        }
        if !self.marked.is_empty() {
            tail.push_str(&format!("· {} marked ", self.marked.len()));
        }
        tail
    }
}
