//! Drawing: a pure function of the app state and the theme. Nothing here
//! reads files, the network or the clock.

use super::action::Pane;
use super::app::{App, Level, Pick, Popup};
use super::theme::Theme;
use crate::model::brief::{Brief, BriefStatus};
use jiff::{SignedDuration, Timestamp};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, Wrap};

pub fn draw(app: &mut App, theme: &Theme, frame: &mut Frame) {
    let area = frame.area();
    if area.width < 20 || area.height < 5 {
        let msg = Paragraph::new("Spoke: window too small").style(theme.style("ui.text"));
        frame.render_widget(msg, area);
        return;
    }
    let [tabs, body, hint, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_tabs(app, theme, frame, tabs);
    match app.pane {
        Pane::Briefs => draw_briefs(app, theme, frame, body),
        Pane::Team => draw_team(app, theme, frame, body),
        Pane::Assets => draw_assets(app, theme, frame, body),
        Pane::Chat => super::chat::draw(&app.chat, theme, frame, body),
        Pane::Approvals => draw_approvals(app, theme, frame, body),
    }
    draw_hint(app, theme, frame, hint);
    draw_status(app, theme, frame, status);
    draw_popup(app, theme, frame, body);
}

fn draw_tabs(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let mut spans = vec![Span::styled(" spoke ", theme.style("ui.title"))];
    for (i, pane) in Pane::ALL.iter().enumerate() {
        let style = if *pane == app.pane {
            theme.style("ui.tab.active")
        } else {
            theme.style("ui.tab")
        };
        spans.push(Span::styled(format!(" {} {} ", i + 1, pane.title()), style));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Inline Markdown: `**bold**`, `*italic*` or `_italic_`, `` `code` ``; a
/// leading `# ` is a heading and `- `/`* ` a bullet.
pub fn markdown_line(text: &str, base: Style, theme: &Theme) -> Line<'static> {
    let (text, base) =
        if let Some(rest) = text.strip_prefix("# ").or_else(|| text.strip_prefix("## ")) {
            (rest.to_owned(), theme.style("ui.title"))
        } else if let Some(rest) = text.strip_prefix("- ").or_else(|| text.strip_prefix("* ")) {
            (format!("• {rest}"), base)
        } else {
            (text.to_owned(), base)
        };
    let mut spans = Vec::new();
    let mut buf = String::new();
    let (mut bold, mut italic, mut code) = (false, false, false);
    let style = |bold: bool, italic: bool, code: bool| {
        if code {
            theme.style("ui.help.key")
        } else {
            let mut s = base;
            if bold {
                s = s.add_modifier(Modifier::BOLD);
            }
            if italic {
                s = s.add_modifier(Modifier::ITALIC);
            }
            s
        }
    };
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let toggle = match c {
            '`' => Some(0),
            '*' if !code && chars.peek() == Some(&'*') => {
                chars.next();
                Some(1)
            }
            '*' | '_' if !code => Some(2),
            _ => None,
        };
        match toggle {
            Some(kind) => {
                if !buf.is_empty() {
                    spans.push(Span::styled(
                        std::mem::take(&mut buf),
                        style(bold, italic, code),
                    ));
                }
                match kind {
                    0 => code = !code,
                    1 => bold = !bold,
                    _ => italic = !italic,
                }
            }
            None => buf.push(c),
        }
    }
    if !buf.is_empty() {
        spans.push(Span::styled(buf, style(bold, italic, code)));
    }
    Line::from(spans)
}

/// "in 3h", "2d ago", "now".
pub fn relative(at: Timestamp, now: Timestamp) -> String {
    let d: SignedDuration = at.duration_since(now);
    let secs = d.as_secs();
    let abs = secs.unsigned_abs();
    let text = if abs < 60 {
        return "now".into();
    } else if abs < 3600 {
        format!("{}m", abs / 60)
    } else if abs < 86_400 {
        format!("{}h", abs / 3600)
    } else if abs < 86_400 * 60 {
        format!("{}d", abs / 86_400)
    } else {
        format!("{}mo", abs / (86_400 * 30))
    };
    if secs >= 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

fn age(at: Option<Timestamp>, now: Timestamp) -> String {
    match at {
        Some(t) => relative(t, now)
            .trim_end_matches(" ago")
            .trim_start_matches("in ")
            .to_owned(),
        None => "-".into(),
    }
}

fn due_cell(b: &Brief, app: &App, theme: &Theme) -> Cell<'static> {
    match &b.due {
        None => Cell::from("-").style(theme.style("ui.text.dim")),
        Some(d) => {
            let rel = relative(d.at, app.now);
            let style = if d.at < app.now && b.status.is_open() {
                theme.style("queue.due.overdue")
            } else if d.at.duration_since(app.now).as_secs() < 86_400 && b.status.is_open() {
                theme.style("queue.due.soon")
            } else {
                theme.style("queue.due")
            };
            Cell::from(rel).style(style)
        }
    }
}

fn draw_briefs(app: &mut App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let wide = area.width >= 110;
    let (list_area, detail_area) = if app.show_detail && wide {
        let [l, r] = Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)])
            .areas(area);
        (l, Some(r))
    } else if app.show_detail && area.height >= 30 {
        let [t, b] =
            Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(area);
        (t, Some(b))
    } else {
        (area, None)
    };
    let q = &app.queue;
    let mut title = format!(" Briefs {}/{} ", q.rows.len(), q.all.len());
    if !q.filter.is_empty() {
        title.push_str(&format!("· /{} ", q.filter));
    }
    if !q.marked.is_empty() {
        title.push_str(&format!("· {} marked ", q.marked.len()));
    }
    if q.visual_from.is_some() {
        title.push_str("· VISUAL ");
    }
    title.push_str(&format!("· {} ", q.sort.label()));
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.style("ui.border.focus"))
        .title(Span::styled(title, theme.style("ui.title")));
    let inner = block.inner(list_area);
    frame.render_widget(block, list_area);
    let height = inner.height.saturating_sub(1) as usize;
    app.page = height.max(1);
    app.queue.scroll_into_view(height);
    let q = &app.queue;
    let narrow = inner.width < 90;
    let start = q.offset.min(q.rows.len());
    let end = (start + height).min(q.rows.len());
    let mut prev_status: Option<BriefStatus> = start
        .checked_sub(1)
        .and_then(|r| q.rows.get(r))
        .map(|&i| q.all[i].status);
    let rows: Vec<Row> = q.rows[start..end]
        .iter()
        .enumerate()
        .map(|(n, &i)| {
            let b = &q.all[i];
            let marked = q.marked.contains(&b.id);
            let mark = if marked { "●" } else { " " };
            let status_text = if q.group_by_status && prev_status == Some(b.status) {
                String::new()
            } else {
                b.status.to_string()
            };
            prev_status = Some(b.status);
            let mut title = b.title.clone();
            if b.snooze_until.is_some_and(|t| t > app.now) {
                title.push_str(" (snoozed)");
            }
            let mut cells = vec![
                Cell::from(format!("{mark}{}", b.priority))
                    .style(theme.style(&format!("queue.priority.{}", b.priority))),
                Cell::from(title).style(theme.style("ui.text")),
                Cell::from(status_text).style(theme.style(&format!("queue.status.{}", b.status))),
                due_cell(b, app, theme),
            ];
            if !narrow {
                cells.push(Cell::from(b.assignees.join(",")).style(theme.style("ui.text")));
                cells.push(
                    Cell::from(b.requester.clone().unwrap_or_default())
                        .style(theme.style("ui.text.dim")),
                );
                cells
                    .push(Cell::from(age(b.created_at, app.now)).style(theme.style("ui.text.dim")));
            }
            let mut row = Row::new(cells);
            if start + n == q.cursor {
                row = row.style(theme.style("ui.selection"));
            } else if marked {
                row = row.style(theme.style("ui.marked"));
            }
            row
        })
        .collect();
    let (header, widths): (Vec<&str>, Vec<Constraint>) = if narrow {
        (
            vec!["PRI", "TITLE", "STATUS", "DUE"],
            vec![
                Constraint::Length(4),
                Constraint::Min(10),
                Constraint::Length(11),
                Constraint::Length(9),
            ],
        )
    } else {
        (
            vec![
                "PRI",
                "TITLE",
                "STATUS",
                "DUE",
                "ASSIGNEES",
                "REQUESTER",
                "AGE",
            ],
            vec![
                Constraint::Length(4),
                Constraint::Min(16),
                Constraint::Length(11),
                Constraint::Length(9),
                Constraint::Length(12),
                Constraint::Length(10),
                Constraint::Length(5),
            ],
        )
    };
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(theme.style("queue.header")))
        .column_spacing(1);
    frame.render_widget(table, inner);
    if q.rows.is_empty() {
        let text = if q.all.is_empty() {
            "No briefs yet. n adds one."
        } else {
            "Nothing matches the filter. Esc clears it."
        };
        let y = inner
            .y
            .saturating_add(1)
            .min(inner.bottom().saturating_sub(1));
        frame.render_widget(
            Paragraph::new(text).style(theme.style("ui.text.dim")),
            Rect {
                y,
                height: 1,
                ..inner
            },
        );
    }
    if let Some(d) = detail_area {
        draw_detail(app, theme, frame, d);
    }
}

fn draw_detail(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.style("ui.border"))
        .title(Span::styled(" Detail ", theme.style("ui.title")));
    let Some(b) = app.queue.selected() else {
        frame.render_widget(block, area);
        return;
    };
    let zone = if app.data.zone.is_empty() {
        "UTC"
    } else {
        app.data.zone.as_str()
    };
    let key = theme.style("ui.help.key");
    let text = theme.style("ui.text");
    let field = |name: &str, value: String| -> Line<'static> {
        Line::from(vec![
            Span::styled(format!("{name:<13}"), key),
            Span::styled(value, text),
        ])
    };
    let or_dash = |v: &Option<String>| {
        v.clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "-".into())
    };
    let mut lines = vec![
        Line::from(Span::styled(b.title.clone(), theme.style("ui.title"))),
        Line::from(vec![
            Span::styled(b.id.clone(), theme.style("ui.text.dim")),
            Span::raw("  "),
            Span::styled(
                b.status.to_string(),
                theme.style(&format!("queue.status.{}", b.status)),
            ),
            Span::raw("  "),
            Span::styled(
                b.priority.to_string(),
                theme.style(&format!("queue.priority.{}", b.priority)),
            ),
        ]),
        field("requester", or_dash(&b.requester)),
        field(
            "assignees",
            if b.assignees.is_empty() {
                "-".into()
            } else {
                b.assignees.join(", ")
            },
        ),
    ];
    match &b.due {
        Some(d) => {
            let local = d.at.to_zoned_datetime(
                jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC),
            );
            lines.push(field(
                "due",
                format!(
                    "{} ({})",
                    local.strftime("%a %d %b %H:%M"),
                    relative(d.at, app.now)
                ),
            ));
            if d.tz != zone {
                lines.push(field(
                    "  set in",
                    format!("{} {}", d.zoned().strftime("%a %H:%M"), d.tz),
                ));
            }
        }
        None => lines.push(field("due", "-".into())),
    }
    lines.push(field("objective", or_dash(&b.objective)));
    lines.push(field("audience", or_dash(&b.audience)));
    lines.push(field("key message", or_dash(&b.key_message)));
    let deliverables: Vec<String> = b.deliverables.iter().map(|d| d.to_string()).collect();
    lines.push(field(
        "deliverables",
        if deliverables.is_empty() {
            "-".into()
        } else {
            deliverables.join(", ")
        },
    ));
    if !b.tags.is_empty() {
        lines.push(Line::from(vec![
            Span::styled(format!("{:<13}", "tags"), key),
            Span::styled(
                b.tags
                    .iter()
                    .map(|t| format!("#{t}"))
                    .collect::<Vec<_>>()
                    .join(" "),
                theme.style("queue.tag"),
            ),
        ]));
    }
    let missing = b.missing_fields();
    if !missing.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::from(Span::styled(
            "To clarify with the requester:",
            theme.style("message.error"),
        )));
        for q in missing {
            lines.push(Line::from(Span::styled(
                format!("• {}", q.question),
                theme.style("ui.text.dim"),
            )));
        }
    }
    if let Some((id, messages)) = &app.thread
        && *id == b.id
    {
        lines.push(Line::raw(""));
        lines.push(Line::from(Span::styled(
            format!("Comments ({})", messages.len()),
            theme.style("ui.help.section"),
        )));
        for m in messages.iter().rev().take(20).rev() {
            let when = m.at.map(|t| relative(t, app.now)).unwrap_or_default();
            lines.push(Line::from(vec![
                Span::styled(format!("@{} ", m.author), key),
                Span::styled(when, theme.style("ui.text.dim")),
            ]));
            for body_line in m.body.lines() {
                let mut line = markdown_line(body_line, text, theme);
                line.spans.insert(0, Span::raw("  "));
                lines.push(line);
            }
        }
    }
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn draw_assets(app: &mut App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let (list_area, detail_area) = if area.width >= 100 {
        let [l, r] = Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
            .areas(area);
        (l, Some(r))
    } else if area.height >= 24 {
        let [t, b] =
            Layout::vertical([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(area);
        (t, Some(b))
    } else {
        (area, None)
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.style("ui.border.focus"))
        .title(Span::styled(
            format!(" Assets {} ", app.data.assets.len()),
            theme.style("ui.title"),
        ));
    let inner = block.inner(list_area);
    frame.render_widget(block, list_area);
    let height = inner.height.saturating_sub(1) as usize;
    app.page = height.max(1);
    let offset = app.asset_cursor.saturating_sub(height.saturating_sub(1));
    let rows: Vec<Row> = app
        .data
        .assets
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(n, a)| {
            let size = a
                .latest()
                .map(|v| match (v.width, v.height) {
                    (Some(w), Some(h)) => format!("{w}x{h}"),
                    _ => v.mime.rsplit('/').next().unwrap_or("").to_owned(),
                })
                .unwrap_or_default();
            let mut title = a.title.clone();
            if a.is_ai_draft() {
                title.push_str(" · AI draft");
            }
            let status = format!("{:?}", a.status).to_lowercase();
            let mut row = Row::new(vec![
                Cell::from(a.id.clone()).style(theme.style("ui.text.dim")),
                Cell::from(status).style(theme.style("ui.text")),
                Cell::from(size).style(theme.style("ui.text.dim")),
                Cell::from(title).style(if a.is_ai_draft() {
                    theme.style("queue.ai_draft")
                } else {
                    theme.style("ui.text")
                }),
            ]);
            if n == app.asset_cursor {
                row = row.style(theme.style("ui.selection"));
            }
            row
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Length(10),
            Constraint::Min(8),
        ],
    )
    .header(Row::new(vec!["ID", "STATUS", "SIZE", "TITLE"]).style(theme.style("queue.header")))
    .column_spacing(1);
    frame.render_widget(table, inner);
    if app.data.assets.is_empty() {
        let y = inner
            .y
            .saturating_add(1)
            .min(inner.bottom().saturating_sub(1));
        frame.render_widget(
            Paragraph::new("No assets yet: spoke asset import PATH")
                .style(theme.style("ui.text.dim")),
            Rect {
                y,
                height: 1,
                ..inner
            },
        );
    }
    let Some(d) = detail_area else { return };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.style("ui.border"))
        .title(Span::styled(" Preview ", theme.style("ui.title")));
    let inner = block.inner(d);
    frame.render_widget(block, d);
    let Some(asset) = app.data.assets.get(app.asset_cursor).cloned() else {
        return;
    };
    let info_height = 8u16.min(inner.height);
    let [image_area, info_area] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(info_height)]).areas(inner);
    match &mut app.preview {
        Some((_, protocol)) => {
            let widget = ratatui_image::StatefulImage::default();
            frame.render_stateful_widget(widget, image_area, protocol);
        }
        None => {
            let note = app
                .preview_note
                .clone()
                .unwrap_or_else(|| match asset.latest() {
                    Some(v) if v.mime.starts_with("image/") && app.picker.is_none() => {
                        "previews are off (--graphics none)".into()
                    }
                    Some(v) if v.mime.starts_with("image/") => "loading…".into(),
                    Some(v) => format!("{} has no image preview", v.mime),
                    None => "no versions".into(),
                });
            frame.render_widget(
                Paragraph::new(note).style(theme.style("ui.text.dim")),
                image_area,
            );
        }
    }
    let key = theme.style("ui.help.key");
    let text = theme.style("ui.text");
    let mut swatches = vec![Span::styled("palette  ", key)];
    for c in &asset.palette {
        if let Some(color) = hex_color(c) {
            swatches.push(Span::styled("██", Style::default().fg(theme.color(color))));
            swatches.push(Span::styled(format!(" {c} "), theme.style("ui.text.dim")));
        }
    }
    let versions = asset.versions.len();
    let mut lines = vec![
        Line::from(Span::styled(asset.title.clone(), theme.style("ui.title"))),
        Line::from(vec![
            Span::styled("versions ", key),
            Span::styled(format!("{versions}"), text),
            Span::styled("  by ", key),
            Span::styled(
                asset
                    .latest()
                    .map(|v| format!("@{}", v.author))
                    .unwrap_or_default(),
                text,
            ),
        ]),
        Line::from(swatches),
        Line::from(vec![
            Span::styled("tags     ", key),
            Span::styled(asset.tags.join(" "), theme.style("queue.tag")),
        ]),
    ];
    if let Some(b) = &asset.brief {
        lines.push(Line::from(vec![
            Span::styled("brief    ", key),
            Span::styled(b.clone(), text),
        ]));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), info_area);
}

fn hex_color(text: &str) -> Option<ratatui::style::Color> {
    let t = text.trim_start_matches('#');
    let v = u32::from_str_radix(t, 16).ok().filter(|_| t.len() == 6)?;
    Some(ratatui::style::Color::Rgb(
        (v >> 16) as u8,
        (v >> 8) as u8,
        v as u8,
    ))
}

fn draw_approvals(app: &mut App, theme: &Theme, frame: &mut Frame, area: Rect) {
    use crate::model::approval::{ApprovalStatus, Subject};
    let (list_area, detail_area) = if area.width >= 100 {
        let [l, r] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(area);
        (l, Some(r))
    } else if area.height >= 24 {
        let [t, b] =
            Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(area);
        (t, Some(b))
    } else {
        (area, None)
    };
    let me = app.data.me.clone().unwrap_or_default();
    let waiting = app
        .data
        .approvals
        .iter()
        .filter(|v| v.waiting_on.contains(&me))
        .count();
    let mut title = format!(" Approvals · {waiting} waiting on you ");
    if !app.approval_marked.is_empty() {
        title.push_str(&format!("· {} marked ", app.approval_marked.len()));
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.style("ui.border.focus"))
        .title(Span::styled(title, theme.style("ui.title")));
    let inner = block.inner(list_area);
    frame.render_widget(block, list_area);
    let status_style = |s: ApprovalStatus| match s {
        ApprovalStatus::Pending => theme.style("queue.status.in_review"),
        ApprovalStatus::Approved | ApprovalStatus::ApprovedWithChanges => {
            theme.style("queue.status.approved")
        }
        ApprovalStatus::ChangesRequested => theme.style("queue.status.on_hold"),
        ApprovalStatus::Rejected => theme.style("queue.status.cancelled"),
    };
    let subject_text =
        |s: &Option<Subject>| s.as_ref().map(Subject::label).unwrap_or_else(|| "-".into());
    let height = inner.height.saturating_sub(1) as usize;
    let offset = app.approval_cursor.saturating_sub(height.saturating_sub(1));
    let rows: Vec<Row> = app
        .approval_rows
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(n, &i)| {
            let v = &app.data.approvals[i];
            let mark = if app.approval_marked.contains(&v.id) {
                "●"
            } else {
                " "
            };
            let mine = if v.waiting_on.contains(&me) {
                "you"
            } else {
                ""
            };
            let mut row = Row::new(vec![
                Cell::from(format!("{mark}{}", v.id)).style(theme.style("ui.text")),
                Cell::from(crate::service::approvals::status_name(v.status))
                    .style(status_style(v.status)),
                Cell::from(mine).style(theme.style("ui.help.key")),
                Cell::from(subject_text(&v.subject)).style(theme.style("ui.text.dim")),
                Cell::from(v.title.clone()).style(theme.style("ui.text")),
            ]);
            if n == app.approval_cursor {
                row = row.style(theme.style("ui.selection"));
            }
            row
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(11),
            Constraint::Length(21),
            Constraint::Length(3),
            Constraint::Length(14),
            Constraint::Min(8),
        ],
    )
    .header(
        Row::new(vec!["ID", "STATUS", "", "SUBJECT", "TITLE"]).style(theme.style("queue.header")),
    )
    .column_spacing(1);
    frame.render_widget(table, inner);
    if app.approval_rows.is_empty() {
        let y = inner
            .y
            .saturating_add(1)
            .min(inner.bottom().saturating_sub(1));
        frame.render_widget(
            Paragraph::new("No approval requests. AI outputs and asset versions wait here for a human decision.")
                .style(theme.style("ui.text.dim"))
                .wrap(Wrap { trim: true }),
            Rect { y, height: inner.height.saturating_sub(1), ..inner },
        );
    }
    let Some(d) = detail_area else { return };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.style("ui.border"))
        .title(Span::styled(" Request ", theme.style("ui.title")));
    let inner = block.inner(d);
    frame.render_widget(block, d);
    // An image subject: the version under review, and the one before it beside it.
    let text_area = if app.preview.is_some() {
        let [images, rest] =
            Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(inner);
        let (current, previous) = if app.preview_prev.is_some() {
            let [l, r] =
                Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                    .areas(images);
            (l, Some(r))
        } else {
            (images, None)
        };
        if let Some((_, protocol)) = &mut app.preview {
            frame.render_stateful_widget(
                ratatui_image::StatefulImage::default(),
                current,
                protocol,
            );
        }
        if let (Some(area), Some((_, protocol))) = (previous, &mut app.preview_prev) {
            frame.render_stateful_widget(ratatui_image::StatefulImage::default(), area, protocol);
        }
        rest
    } else {
        inner
    };
    let Some(v) = app.selected_approval() else {
        return;
    };
    let key = theme.style("ui.help.key");
    let text = theme.style("ui.text");
    let dim = theme.style("ui.text.dim");
    let mut lines = vec![
        Line::from(Span::styled(v.title.clone(), theme.style("ui.title"))),
        Line::from(vec![
            Span::styled(v.id.clone(), dim),
            Span::raw("  "),
            Span::styled(
                crate::service::approvals::status_name(v.status),
                status_style(v.status),
            ),
            Span::styled(
                format!(
                    "  requested by @{}",
                    v.requested_by.clone().unwrap_or_default()
                ),
                dim,
            ),
        ]),
        Line::raw(""),
    ];
    match &v.subject {
        Some(Subject::AssetVersion { asset, version }) => {
            match app.data.assets.iter().find(|a| a.id == *asset) {
                Some(a) => {
                    lines.push(Line::from(vec![
                        Span::styled("asset       ", key),
                        Span::styled(format!("{} ({})", a.title, a.id), text),
                    ]));
                    let idx = (*version as usize).saturating_sub(1);
                    let describe = |n: usize| {
                        a.versions.get(n).map(|ver| {
                            let ai = matches!(
                                ver.provenance,
                                crate::model::asset::Provenance::Ai { .. }
                            );
                            format!(
                                "v{} {} {} bytes{}{}",
                                n + 1,
                                ver.mime,
                                ver.size,
                                match (ver.width, ver.height) {
                                    (Some(w), Some(h)) => format!(" {w}x{h}"),
                                    _ => String::new(),
                                },
                                if ai { "  AI draft" } else { "" }
                            )
                        })
                    };
                    let body = |n: usize, style| -> Vec<Line<'static>> {
                        match a
                            .versions
                            .get(n)
                            .map(|v| app.data.texts.get(&v.blob_sha256))
                        {
                            Some(Some(t)) => t
                                .lines()
                                .map(|l| {
                                    let mut line = markdown_line(l, style, theme);
                                    line.spans.insert(0, Span::raw("  │ "));
                                    line
                                })
                                .collect(),
                            Some(None) if a.versions[n].mime.starts_with("text/") => {
                                vec![Line::from(Span::styled("  (not on this machine yet)", dim))]
                            }
                            _ => Vec::new(),
                        }
                    };
                    if let Some(line) = describe(idx) {
                        lines.push(Line::from(vec![
                            Span::styled("version     ", key),
                            Span::styled(line, text),
                        ]));
                        lines.extend(body(idx, text));
                    }
                    if idx > 0
                        && let Some(line) = describe(idx - 1)
                    {
                        lines.push(Line::from(vec![
                            Span::styled("previous    ", key),
                            Span::styled(line, dim),
                        ]));
                        lines.extend(body(idx - 1, dim));
                    }
                }
                None => lines.push(Line::from(Span::styled(
                    format!("asset {asset}@{version} (not synced here yet)"),
                    dim,
                ))),
            }
        }
        Some(Subject::Proposal { id }) => {
            match app.data.proposals.iter().find(|p| p.id == *id) {
                Some(p) => {
                    let kind = p
                        .kind
                        .and_then(|k| serde_json::to_value(k).ok())
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_else(|| "proposal".into());
                    lines.push(Line::from(vec![
                        Span::styled("proposal    ", key),
                        Span::styled(
                            format!("{kind} by @{} ", p.author.clone().unwrap_or_default()),
                            text,
                        ),
                        Span::styled("AI draft", theme.style("queue.ai_draft")),
                    ]));
                    if let Some(r) = &p.rationale {
                        lines.push(Line::from(vec![
                            Span::styled("why         ", key),
                            Span::styled(r.clone(), text),
                        ]));
                    }
                    for c in &p.citations {
                        let quote = c
                            .quote
                            .as_deref()
                            .map(|q| format!(": \"{q}\""))
                            .unwrap_or_default();
                        lines.push(Line::from(vec![
                            Span::styled("cites       ", key),
                            Span::styled(format!("{} {}{quote}", c.kind, c.id), dim),
                        ]));
                    }
                    let brief = p
                        .brief
                        .as_ref()
                        .and_then(|b| app.data.briefs.iter().find(|x| x.id == *b));
                    if let Some(b) = brief {
                        lines.push(Line::from(vec![
                            Span::styled("brief       ", key),
                            Span::styled(b.title.clone(), text),
                        ]));
                    }
                    // Field by field: what the brief says now, what it would say.
                    if let Some(fields) = p.payload["fields"].as_object() {
                        let current = brief.and_then(|b| serde_json::to_value(b).ok());
                        for (name, new) in fields {
                            let old = current
                                .as_ref()
                                .map(|c| c[name].clone())
                                .filter(|v| !v.is_null())
                                .map(|v| {
                                    v.as_str()
                                        .map(str::to_owned)
                                        .unwrap_or_else(|| v.to_string())
                                })
                                .unwrap_or_else(|| "-".into());
                            let new = new
                                .as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| new.to_string());
                            lines.push(Line::from(vec![
                                Span::styled(format!("  {name:<12}"), key),
                                Span::styled(old, dim),
                                Span::styled(" → ", key),
                                Span::styled(new, text),
                            ]));
                        }
                    }
                    if let Some(who) = p.payload["assignee"].as_str() {
                        lines.push(Line::from(vec![
                            Span::styled("  assignees   ", key),
                            Span::styled(format!("+ @{who}"), text),
                        ]));
                    }
                }
                None => lines.push(Line::from(Span::styled(
                    format!("proposal {id} (not synced here yet)"),
                    dim,
                ))),
            }
        }
        Some(Subject::Draft { thread, message }) => lines.push(Line::from(vec![
            Span::styled("draft       ", key),
            Span::styled(format!("{thread} / {message}"), text),
        ])),
        None => {}
    }
    lines.push(Line::raw(""));
    for (i, stage) in v.evaluation.stages.iter().enumerate() {
        let name = v.stages.get(i).map(|s| s.name.clone()).unwrap_or_default();
        let current = i == v.stage && !v.status.is_closed();
        let head = format!(
            "{} stage {} · {name}",
            if current { "→" } else { " " },
            i + 1
        );
        lines.push(Line::from(Span::styled(
            head,
            if current { key } else { dim },
        )));
        for (reviewer, decision) in stage {
            let what = decision
                .map(crate::service::approvals::decision_label)
                .unwrap_or_else(|| "waiting".into());
            lines.push(Line::from(vec![
                Span::styled(format!("    @{reviewer:<10}"), text),
                Span::styled(what, dim),
            ]));
        }
    }
    let comments: Vec<_> = v.decisions.iter().filter(|d| d.comment.is_some()).collect();
    if !comments.is_empty() {
        lines.push(Line::raw(""));
        for c in comments {
            let mut line = markdown_line(c.comment.as_deref().unwrap_or(""), text, theme);
            line.spans
                .insert(0, Span::styled(format!("@{}: ", c.reviewer), key));
            lines.push(line);
        }
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), text_area);
}

fn draw_team(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let zone = jiff::tz::TimeZone::get(if app.data.zone.is_empty() {
        "UTC"
    } else {
        &app.data.zone
    })
    .unwrap_or(jiff::tz::TimeZone::UTC);
    let now_local = app.now.to_zoned_datetime(zone.clone());
    let midnight = now_local
        .start_of_day()
        .map(|z| z.timestamp())
        .unwrap_or(app.now);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.style("ui.border.focus"))
        .title(Span::styled(
            format!(" Team · hours in your day ({}) ", app.data.zone),
            theme.style("ui.title"),
        ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let now_hour = now_local.hour().max(0) as usize;
    let rows: Vec<Row> = app
        .data
        .members
        .iter()
        .map(|m| {
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
            let local = m.local_time(app.now).strftime("%a %H:%M").to_string();
            let is_online = app.online.contains_key(&m.handle)
                || (app.data.connected && app.data.me.as_deref() == Some(m.handle.as_str()));
            let dot = if is_online {
                Span::styled("● ", theme.style("team.online"))
            } else {
                Span::styled("  ", theme.style("team.off"))
            };
            let now_state = if m.is_working_at(app.now) {
                Span::styled("working", theme.style("team.working"))
            } else {
                Span::styled("off", theme.style("team.off"))
            };
            let roles: Vec<&str> = m.roles.iter().map(|r| r.as_str()).collect();
            Row::new(vec![
                Cell::from(format!("@{}", m.handle)).style(theme.style("ui.text")),
                Cell::from(local).style(theme.style("ui.text")),
                Cell::from(Line::from(vec![dot, now_state])),
                Cell::from(Line::from(strip)),
                Cell::from(format!("{}/{}", app.load_of(&m.handle), m.capacity))
                    .style(theme.style("ui.text")),
                Cell::from(roles.join(",")).style(theme.style("ui.text.dim")),
            ])
        })
        .collect();
    let header = Row::new(vec![
        "MEMBER",
        "LOCAL",
        "NOW",
        "00    06    12    18    ",
        "LOAD",
        "ROLES",
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
            Constraint::Min(6),
        ],
    )
    .header(header)
    .column_spacing(1);
    frame.render_widget(table, inner);
}

fn draw_hint(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let line = match &app.message {
        Some((Level::Error, m)) => {
            Line::from(Span::styled(m.clone(), theme.style("message.error")))
        }
        Some((Level::Info, m)) => Line::from(Span::styled(m.clone(), theme.style("message.info"))),
        None => {
            let mut spans = Vec::new();
            let actions: &[super::Action] = if app.pane == Pane::Approvals {
                &[
                    super::Action::Approve,
                    super::Action::ApproveWithChanges,
                    super::Action::RequestChanges,
                    super::Action::Reject,
                    super::Action::ToggleMark,
                    super::Action::Help,
                    super::Action::Quit,
                ]
            } else {
                &[
                    super::Action::Help,
                    super::Action::Filter,
                    super::Action::SetStatus,
                    super::Action::Assign,
                    super::Action::ToggleMark,
                    super::Action::Undo,
                    super::Action::Quit,
                ]
            };
            for &action in actions {
                if let Some(keys) = app.keymap.keys_for(app.pane, action) {
                    spans.push(Span::styled(
                        format!(" {keys} "),
                        theme.style("ui.help.key"),
                    ));
                    spans.push(Span::styled(
                        format!("{} ", action.name().replace('_', " ")),
                        theme.style("ui.help.desc"),
                    ));
                }
            }
            Line::from(spans)
        }
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn draw_status(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let d = &app.data;
    let conn = if !d.joined {
        Span::styled(" local ", theme.style("ui.statusbar"))
    } else if d.connected {
        Span::styled(" ● connected ", theme.style("ui.statusbar.online"))
    } else {
        Span::styled(" ○ offline ", theme.style("ui.statusbar.offline"))
    };
    let pending = if d.pending > 0 {
        Span::styled(
            format!(" {} pending ", d.pending),
            theme.style("ui.statusbar.pending"),
        )
    } else {
        Span::styled(" synced ", theme.style("ui.statusbar"))
    };
    let zone = jiff::tz::TimeZone::get(if d.zone.is_empty() { "UTC" } else { &d.zone })
        .unwrap_or(jiff::tz::TimeZone::UTC);
    let local = app
        .now
        .to_zoned_datetime(zone)
        .strftime("%a %H:%M")
        .to_string();
    let mut online: Vec<String> = app.online.keys().map(|h| format!("@{h}")).collect();
    if d.connected
        && let Some(me) = &d.me
    {
        online.insert(0, format!("@{me}"));
    }
    let spans = vec![
        Span::styled(
            format!(
                " {} ",
                if d.hub_name.is_empty() {
                    "hub"
                } else {
                    &d.hub_name
                }
            ),
            theme.style("ui.statusbar").add_modifier(Modifier::BOLD),
        ),
        conn,
        pending,
        Span::styled(
            format!(
                " online: {} ",
                if online.is_empty() {
                    "-".into()
                } else {
                    online.join(" ")
                }
            ),
            theme.style("ui.statusbar.online"),
        ),
        Span::styled(
            format!(" @{} {local} {} ", d.me.clone().unwrap_or_default(), d.zone),
            theme.style("ui.statusbar"),
        ),
    ];
    frame.render_widget(
        Paragraph::new(Line::from(spans)).style(theme.style("ui.statusbar")),
        area,
    );
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn popup_block<'a>(theme: &Theme, title: &str) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.style("ui.border.focus"))
        .style(theme.style("ui.popup"))
        .title(Span::styled(
            format!(" {title} "),
            theme.style("ui.popup.title"),
        ))
}

fn draw_popup(app: &App, theme: &Theme, frame: &mut Frame, body: Rect) {
    let Some(popup) = &app.popup else { return };
    match popup {
        Popup::Help { scroll } => {
            let area = centered(body, 72, body.height);
            let mut lines = Vec::new();
            let mut section = String::new();
            for b in app.keymap.bindings_for(app.pane) {
                if b.section != section {
                    section = b.section.clone();
                    lines.push(Line::from(Span::styled(
                        format!("[{section}]"),
                        theme.style("ui.help.section"),
                    )));
                }
                let keys: Vec<String> = b.keys.iter().map(|k| k.to_string()).collect();
                lines.push(Line::from(vec![
                    Span::styled(
                        format!("  {:<12}", keys.join(" ")),
                        theme.style("ui.help.key"),
                    ),
                    Span::styled(b.desc.clone(), theme.style("ui.help.desc")),
                ]));
            }
            let title = format!(
                "Keys · {} keymap · {} pane (j/k scroll, any key closes)",
                app.keymap.name(),
                app.pane.name()
            );
            frame.render_widget(Clear, area);
            frame.render_widget(
                Paragraph::new(lines)
                    .block(popup_block(theme, &title))
                    .scroll((*scroll as u16, 0)),
                area,
            );
        }
        Popup::WhichKey { options } => {
            let h = (options.len() as u16 + 2).min(body.height);
            let w = 40.min(body.width);
            let area = Rect {
                x: body.right().saturating_sub(w),
                y: body.bottom().saturating_sub(h),
                width: w,
                height: h,
            };
            let lines: Vec<Line> = options
                .iter()
                .map(|(k, d)| {
                    Line::from(vec![
                        Span::styled(format!(" {k:<6}"), theme.style("ui.help.key")),
                        Span::styled(d.clone(), theme.style("ui.help.desc")),
                    ])
                })
                .collect();
            let keys: Vec<String> = app.pending_keys.iter().map(|k| k.to_string()).collect();
            frame.render_widget(Clear, area);
            frame.render_widget(
                Paragraph::new(lines).block(popup_block(theme, &keys.join(" "))),
                area,
            );
        }
        Popup::Search(state) => {
            let height = (state.hits.len() as u16 * 2 + 4).max(6).min(body.height);
            let area = centered(body, 100.min(body.width), height);
            super::search::draw_search(state, theme, frame, area, popup_block(theme, "Search"));
        }
        Popup::Reader(reader) => {
            let area = centered(body, 90.min(body.width), body.height.saturating_sub(2));
            super::search::draw_reader(
                reader,
                theme,
                frame,
                area,
                popup_block(
                    theme,
                    &format!("{} (j/k scroll, any other key closes)", reader.title),
                ),
            );
        }
        Popup::Palette { input, selected } => {
            let matches = app.palette_matches(input);
            let area = centered(body, 64, body.height.min(16));
            let mut lines = vec![Line::from(vec![
                Span::styled(": ", theme.style("ui.help.key")),
                Span::styled(input.clone(), theme.style("ui.input")),
            ])];
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
                Paragraph::new(lines).block(popup_block(theme, "Command palette")),
                area,
            );
        }
        Popup::Picker {
            pick,
            choices,
            selected,
        } => {
            let title = match pick {
                Pick::Status => "Set status",
                Pick::Priority => "Set priority",
                Pick::Assign => "Assign to (local time · load · zone)",
                Pick::Citation => "Sources the agent cited",
            };
            let area = centered(body, 70, (choices.len() as u16 + 2).min(body.height));
            let lines: Vec<Line> = choices
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let style = if i == *selected {
                        theme.style("ui.selection")
                    } else {
                        theme.style("ui.text")
                    };
                    Line::from(vec![
                        Span::styled(format!(" {:<14}", c.label), style),
                        Span::styled(c.detail.clone(), theme.style("ui.text.dim")),
                    ])
                })
                .collect();
            frame.render_widget(Clear, area);
            frame.render_widget(Paragraph::new(lines).block(popup_block(theme, title)), area);
        }
        Popup::Prompt { prompt, text } => {
            let area = Rect {
                y: body.bottom().saturating_sub(3),
                height: 3.min(body.height),
                ..body
            };
            let line = Line::from(vec![
                Span::styled(text.clone(), theme.style("ui.input")),
                Span::styled("▏", theme.style("ui.input")),
            ]);
            frame.render_widget(Clear, area);
            frame.render_widget(
                Paragraph::new(line).block(popup_block(theme, prompt.label())),
                area,
            );
        }
        Popup::Form { answers, index } => {
            let form = super::app::new_brief_form();
            let width = 76.min(body.width);
            let inner_w = width.saturating_sub(2).max(1) as usize;
            let needed: usize = form
                .iter()
                .map(|(_, q)| q.chars().count().div_ceil(inner_w) + 1)
                .sum::<usize>()
                + 1
                + 2;
            let area = centered(body, width, (needed as u16).min(body.height));
            let mut lines = Vec::new();
            for (i, ((_, question), answer)) in form.iter().zip(answers).enumerate() {
                let current = i == *index;
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
                    spans.push(Span::styled(answer.clone(), theme.style("ui.input")));
                }
                if current {
                    spans.push(Span::styled("▏", theme.style("ui.input")));
                }
                lines.push(Line::from(spans));
            }
            lines.push(Line::from(Span::styled(
                "Enter next · ↑/Tab move · Esc discard · blank answers stay open questions",
                theme.style("ui.text.dim"),
            )));
            frame.render_widget(Clear, area);
            frame.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .block(popup_block(theme, "New brief")),
                area,
            );
        }
        Popup::Confirm { message, .. } => {
            let area = centered(body, 64, 6);
            frame.render_widget(Clear, area);
            frame.render_widget(
                Paragraph::new(message.clone())
                    .style(theme.style("ui.text"))
                    .wrap(Wrap { trim: true })
                    .block(popup_block(theme, "Confirm")),
                area,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::theme::ColorDepth;

    #[test]
    fn markdown_marks_bold_italic_code_bullets_and_headings() {
        let theme = Theme::load("default-dark", None, ColorDepth::TrueColor).expect("theme");
        let base = theme.style("ui.text");
        let line = markdown_line("- use **bold**, *soft* and `code`", base, &theme);
        let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(text, "• use bold, soft and code");
        let bold = line
            .spans
            .iter()
            .find(|s| s.content == "bold")
            .expect("bold span");
        assert!(bold.style.add_modifier.contains(Modifier::BOLD));
        let soft = line
            .spans
            .iter()
            .find(|s| s.content == "soft")
            .expect("italic span");
        assert!(soft.style.add_modifier.contains(Modifier::ITALIC));
        let code = line
            .spans
            .iter()
            .find(|s| s.content == "code")
            .expect("code span");
        assert_eq!(code.style, theme.style("ui.help.key"));
        let heading = markdown_line("# Brief", base, &theme);
        assert_eq!(heading.spans[0].style, theme.style("ui.title"));
    }

    #[test]
    fn relative_times_read_naturally() {
        let now: Timestamp = "2026-11-24T10:00:00Z".parse().expect("ts");
        let at = |s: &str| -> Timestamp { s.parse().expect("ts") };
        assert_eq!(relative(at("2026-11-24T13:00:00Z"), now), "in 3h");
        assert_eq!(relative(at("2026-11-22T10:00:00Z"), now), "2d ago");
        assert_eq!(relative(at("2026-11-24T10:00:30Z"), now), "now");
    }
}
