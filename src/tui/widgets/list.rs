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
