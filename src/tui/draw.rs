//! Drawing: a pure function of the app and the theme. Nothing here reads
//! files, the network or the clock, or changes the app: scroll positions
//! and sizes were settled in update, images were encoded off this path.

use super::action::Pane;
use super::app::{App, MIN_HEIGHT, MIN_WIDTH, frame_layout};
use super::msg::Level;
use super::popup::{self, PopupCtx};
use super::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

pub fn draw(app: &App, theme: &Theme, frame: &mut Frame) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = Paragraph::new("Spoke: window too small").style(theme.style("ui.text"));
        frame.render_widget(msg, area);
        return;
    }
    let rows = frame_layout(area);
    draw_tabs(app, theme, frame, rows.tabs);
    let ctx = app.ctx();
    app.panes.get(app.pane).draw(frame, rows.body, &ctx, theme);
    draw_hint(app, theme, frame, rows.hint);
    draw_status(app, theme, frame, rows.status);
    for (owner, popup) in &app.popups {
        let pctx = PopupCtx {
            keymap: &app.keymap,
            pane: *owner,
            zone: app.data.zone_or_utc(),
            graphics: &app.previews.why,
        };
        popup::draw(popup, frame, rows.body, theme, &pctx);
    }
    if let Some(options) = &app.which_key {
        draw_which_key(app, options, theme, frame, rows.body);
    }
}

fn draw_tabs(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let mut spans = vec![Span::styled(" spoke ", theme.style("ui.title"))];
    for (i, pane) in Pane::ALL.iter().enumerate() {
        let style = if *pane == app.pane {
            theme.style("ui.tab.active")
        } else {
            theme.style("ui.tab")
        };
        spans.push(Span::styled(format!(" {} {}", i + 1, pane.title()), style));
        match app.badge(*pane) {
            0 => spans.push(Span::styled(" ", style)),
            n => {
                spans.push(Span::styled(" ", style));
                spans.push(Span::styled(format!("({n})"), theme.style("ui.tab.badge")));
                spans.push(Span::styled(" ", style));
            }
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_which_key(
    app: &App,
    options: &[(String, String)],
    theme: &Theme,
    frame: &mut Frame,
    body: Rect,
) {
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
        Paragraph::new(lines).block(popup::block(theme, &keys.join(" "))),
        area,
    );
}

/// The status message, or the focused pane's commands with the user's keys.
fn draw_hint(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let line = match &app.message {
        Some((Level::Error, m)) => {
            Line::from(Span::styled(m.clone(), theme.style("message.error")))
        }
        _ if app.generating.is_some() => Line::from(Span::styled(
            app.generating.clone().unwrap_or_default(),
            theme.style("message.info"),
        )),
        Some((Level::Info, m)) => Line::from(Span::styled(m.clone(), theme.style("message.info"))),
        None => {
            let mut spans = Vec::new();
            for &action in app.panes.get(app.pane).commands() {
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
    let zone = jiff::tz::TimeZone::get(d.zone_or_utc()).unwrap_or(jiff::tz::TimeZone::UTC);
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
