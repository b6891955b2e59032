//! The frame pieces popups and panes share: a centred box, a popup's
//! border, and key names for hints.

use crate::tui::action::Action;
use crate::tui::keymap::{Keymap, Section};
use crate::tui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders};

/// The keys that run `action` in `section`, for hints: `?` when unbound.
pub fn keys(keymap: &Keymap, section: impl Into<Section>, action: Action) -> String {
    keymap
        .keys_for(section, action)
        .unwrap_or_else(|| "?".into())
}

pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

pub fn block<'a>(theme: &Theme, title: &str) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.style("ui.border.focus"))
        .style(theme.style("ui.popup"))
        .title(Span::styled(
            format!(" {title} "),
            theme.style("ui.popup.title"),
        ))
}
