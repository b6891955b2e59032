//! The team across time zones: each member's local time, whether they
//! are working now, their working hours laid over your day, load and roles.

use crate::tui::action::{Action, Pane};
use crate::tui::component::{Component, Ctx, Handled};
use crate::tui::theme::Theme;
use crate::tui::widgets::list;
use jiff::SignedDuration;
use ratatui::Frame;
use ratatui::layout::{Constraint, Margin, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Row, Table};

#[derive(Debug, Clone, PartialEq)]
pub struct TeamPane {
    pub cursor: usize,
    area: Rect,
}

impl Default for TeamPane {
    fn default() -> TeamPane {
        TeamPane {
            cursor: 0,
            area: Rect::new(0, 0, 80, 20),
        }
    }
}

const COMMANDS: &[Action] = &[Action::Help, Action::Search, Action::Palette, Action::Quit];

impl Component for TeamPane {
    fn pane(&self) -> Pane {
        Pane::Team
    }

    fn on_action(&mut self, action: Action, ctx: &Ctx) -> Handled {
        let page = list::rows_in(self.area.inner(Margin::new(1, 1))).max(1);
        match list::moved(action, self.cursor, ctx.data.members.len(), page) {
            Some(cursor) => {
                self.cursor = cursor;
                Handled::done()
            }
            None => Handled::Ignored,
        }
    }

    fn on_data(&mut self, ctx: &Ctx) -> Vec<crate::tui::component::Cmd> {
        self.cursor = self.cursor.min(ctx.data.members.len().saturating_sub(1));
        Vec::new()
    }

    fn on_resize(&mut self, area: Rect) {
        self.area = area;
    }

    fn commands(&self) -> &'static [Action] {
        COMMANDS
    }

    fn draw(&self, frame: &mut Frame, area: Rect, ctx: &Ctx, theme: &Theme) {
        let zone = jiff::tz::TimeZone::get(if ctx.data.zone.is_empty() {
            "UTC"
        } else {
            &ctx.data.zone
        })
        .unwrap_or(jiff::tz::TimeZone::UTC);
        let now_local = ctx.now.to_zoned_datetime(zone.clone());
        let midnight = now_local
            .start_of_day()
            .map(|z| z.timestamp())
            .unwrap_or(ctx.now);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.style("ui.border.focus"))
            .title(Span::styled(
                format!(" Team · hours in your day ({}) ", ctx.data.zone),
                theme.style("ui.title"),
            ));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let height = list::rows_in(inner);
        let offset = list::first_row(self.cursor, height);
        let now_hour = now_local.hour().max(0) as usize;
        let rows: Vec<Row> = ctx
            .data
            .members
            .iter()
            .enumerate()
            .skip(offset)
            .take(height)
            .map(|(n, m)| {
                let strip: Vec<Span> = (0..24)
                    .map(|h| {
                        let at = midnight
                            .checked_add(SignedDuration::from_hours(h as i64))
                            .unwrap_or(midnight);
                        let working = m.is_working_at(at);
                        let style = if h == now_hour {
                            theme.style("team.now")
                        } else if working {
                            theme.style("team.working")
                        } else {
                            theme.style("team.off")
                        };
                        Span::styled(if working { "█" } else { "·" }, style)
                    })
                    .collect();
                let local = m.local_time(ctx.now).strftime("%a %H:%M").to_string();
                let is_online = ctx.online.contains_key(&m.handle)
                    || (ctx.data.connected && ctx.data.me.as_deref() == Some(m.handle.as_str()));
                let dot = if is_online {
                    Span::styled("● ", theme.style("team.online"))
                } else {
                    Span::styled("  ", theme.style("team.off"))
                };
                let now_state = if m.is_working_at(ctx.now) {
                    Span::styled("working", theme.style("team.working"))
                } else {
                    Span::styled("off", theme.style("team.off"))
                };
                let roles: Vec<&str> = m.roles.iter().map(|r| r.as_str()).collect();
                let looking = ctx
                    .online
                    .get(&m.handle)
                    .and_then(|seen| seen.viewing.as_deref())
                    .map(|v| looking_at(v, ctx))
                    .unwrap_or_default();
                let row = Row::new(vec![
                    Cell::from(format!("@{}", m.handle)).style(theme.style("ui.text")),
                    Cell::from(local).style(theme.style("ui.text")),
                    Cell::from(Line::from(vec![dot, now_state])),
                    Cell::from(Line::from(strip)),
                    Cell::from(format!(
                        "{}/{}",
                        crate::agent::scorer::load_of(&m.handle, &ctx.data.briefs),
                        m.capacity
                    ))
                    .style(theme.style("ui.text")),
                    Cell::from(roles.join(",")).style(theme.style("ui.text.dim")),
                    Cell::from(looking).style(theme.style("ui.text")),
                ]);
                if n == self.cursor {
                    row.style(theme.style("ui.selection"))
                } else {
                    row
                }
            })
            .collect();
        let header = Row::new(vec![
            "MEMBER",
            "LOCAL",
            "NOW",
            "00    06    12    18    ",
            "LOAD",
            "ROLES",
            "LOOKING AT",
        ])
        .style(theme.style("queue.header"));
        let table = Table::new(
            rows,
            [
                Constraint::Length(10),
                Constraint::Length(10),
                Constraint::Length(9),
                Constraint::Length(24),
                Constraint::Length(5),
                Constraint::Length(13),
                Constraint::Fill(1),
            ],
        )
        .header(header)
        .column_spacing(1);
        frame.render_widget(table, inner);
    }
}

/// What a member has open, in words: a brief's title, or the raw reference.
fn looking_at(viewing: &str, ctx: &Ctx) -> String {
    match viewing.split_once('/') {
        Some(("brief", id)) => ctx
            .data
            .briefs
            .iter()
            .find(|b| b.id == id)
            .map_or_else(|| viewing.to_owned(), |b| b.title.clone()),
        _ => viewing.to_owned(),
    }
}
