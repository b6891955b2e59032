//! The asset browser: the library with its own filter and marks, and a
//! preview of the selected asset (the image at the pane's real size, or a
//! text draft as Markdown) with its palette, tags and versions.

use super::image::{draw_image, hex_color};
use crate::model::asset::Asset;
use crate::tui::action::{Action, Pane};
use crate::tui::component::{Cmd, Component, Ctx, Handled};
use crate::tui::editor::TermWork;
use crate::tui::msg::{Effect, Level};
use crate::tui::popup::{Answer, Popup, Prompt};
use crate::tui::theme::Theme;
use crate::tui::widgets::list::{self, ListAction, ListState};
use crate::tui::widgets::markdown;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Margin, Rect, Size};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq)]
pub struct AssetsPane {
    /// Rows are indexes into the snapshot's assets.
    pub list: ListState,
    area: Rect,
}

impl Default for AssetsPane {
    fn default() -> AssetsPane {
        AssetsPane {
            list: ListState::default(),
            area: Rect::new(0, 0, 80, 20),
        }
    }
}

/// Opening or saving an asset's file: the worker finds the blob (fetching
/// it from the hub if needed) and copies it out of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssetFileJob {
    /// Open a copy in the user's viewer.
    Open { asset: String },
    /// Write the bytes to `path` (a file or a folder), never over a file.
    Save { asset: String, path: String },
}

const COMMANDS: &[Action] = &[
    Action::Help,
    Action::Filter,
    Action::ToggleMark,
    Action::OpenAsset,
    Action::Search,
    Action::Quit,
];

struct Areas {
    list: Rect,
    /// The preview panel, when there is room for one.
    detail: Option<Rect>,
    /// Inside the panel: where the image (or text) goes, and the facts.
    image: Rect,
    info: Rect,
}

fn layout(area: Rect) -> Areas {
    let (list, detail) = if area.width >= 100 {
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
    let inner = detail.map_or(Rect::default(), |d| d.inner(Margin::new(1, 1)));
    let info_height = 8u16.min(inner.height);
    let [image, info] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(info_height)]).areas(inner);
    Areas {
        list,
        detail,
        image,
        info,
    }
}

impl AssetsPane {
    pub fn selected<'a>(&self, ctx: &Ctx<'a>) -> Option<&'a Asset> {
        self.list
            .rows
            .get(self.list.cursor)
            .and_then(|&i| ctx.data.assets.get(i))
    }

    /// Selects an asset by id, clearing the filter if it hides it.
    pub fn select(&mut self, id: &str, ctx: &Ctx) -> bool {
        self.list.filter.clear();
        self.recompute(ctx, Some(id));
        self.selected(ctx).is_some_and(|a| a.id == id)
    }

    fn page(&self) -> usize {
        list::rows_in(layout(self.area).list.inner(Margin::new(1, 1))).max(1)
    }

    fn recompute(&mut self, ctx: &Ctx, keep: Option<&str>) {
        let list = &mut self.list;
        list.rows = ctx
            .data
            .assets
            .iter()
            .enumerate()
            .filter(|(_, a)| list.matches(&format!("{} {} {}", a.id, a.title, a.tags.join(" "))))
            .map(|(i, _)| i)
            .collect();
        list.ids = list
            .rows
            .iter()
            .map(|&i| ctx.data.assets[i].id.clone())
            .collect();
        let row = keep.and_then(|id| list.ids.iter().position(|i| i == id));
        let ids: BTreeSet<&str> = ctx.data.assets.iter().map(|a| a.id.as_str()).collect();
        list.settle(row, &ids);
    }
}

impl AssetsPane {
    /// Copy, open and save: what the library does with the selected asset.
    fn on_file_action(&mut self, action: Action, ctx: &Ctx) -> Handled {
        if !matches!(
            action,
            Action::CopyId | Action::CopyText | Action::OpenAsset | Action::SaveAsset
        ) {
            return Handled::Ignored;
        }
        let Some(asset) = self.selected(ctx) else {
            return Handled::say(Level::Info, "no asset selected");
        };
        let file_name = asset
            .latest()
            .and_then(|v| v.note.clone())
            .unwrap_or_default();
        match action {
            Action::CopyId => Handled::work(Effect::Terminal(TermWork::Copy {
                what: asset.id.clone(),
                text: asset.id.clone(),
            })),
            Action::CopyText => {
                let mut text = format!("{} ({})", asset.title, asset.id);
                if !file_name.is_empty() {
                    text.push_str(&format!("\nfile: {file_name}"));
                }
                if !asset.tags.is_empty() {
                    text.push_str(&format!("\ntags: {}", asset.tags.join(", ")));
                }
                if let Some(body) = asset
                    .latest()
                    .and_then(|v| ctx.data.texts.get(&v.blob_sha256))
                {
                    text.push_str("\n\n");
                    text.push_str(body.trim_end());
                }
                Handled::work(Effect::Terminal(TermWork::Copy {
                    what: format!("{} as text", asset.id),
                    text,
                }))
            }
            Action::OpenAsset => Handled::Consumed(vec![
                Cmd::Say(Level::Info, format!("opening {}…", asset.id)),
                Cmd::Work(Effect::AssetFile(AssetFileJob::Open {
                    asset: asset.id.clone(),
                })),
            ]),
            _ => Handled::one(Cmd::Open(Popup::prompt(Prompt::SavePath, &file_name))),
        }
    }
}

impl Component for AssetsPane {
    fn pane(&self) -> Pane {
        Pane::Assets
    }

    fn on_action(&mut self, action: Action, ctx: &Ctx) -> Handled {
        let selected = self.selected(ctx).map(|a| a.id.clone());
        match self.list.on_action(action, self.page(), selected.clone()) {
            ListAction::Done => Handled::done(),
            ListAction::OpenFilter => {
                Handled::one(Cmd::Open(Popup::prompt(Prompt::Filter, &self.list.filter)))
            }
            ListAction::FilterCleared => {
                self.recompute(ctx, selected.as_deref());
                Handled::done()
            }
            ListAction::NotMine => self.on_file_action(action, ctx),
        }
    }

    fn on_answer(&mut self, answer: Answer, ctx: &Ctx) -> Handled {
        match answer {
            Answer::Text {
                prompt: Prompt::Filter,
                text,
            } => {
                let keep = self.selected(ctx).map(|a| a.id.clone());
                self.list.filter = text;
                self.recompute(ctx, keep.as_deref());
                Handled::done()
            }
            Answer::Text {
                prompt: Prompt::SavePath,
                text,
            } => {
                let Some(asset) = self.selected(ctx) else {
                    return Handled::say(Level::Info, "no asset selected");
                };
                let path = text.trim();
                if path.is_empty() {
                    return Handled::say(Level::Info, "not saved: no path given");
                }
                Handled::work(Effect::AssetFile(AssetFileJob::Save {
                    asset: asset.id.clone(),
                    path: path.to_owned(),
                }))
            }
            _ => Handled::Ignored,
        }
    }

    fn on_data(&mut self, ctx: &Ctx) -> Vec<Cmd> {
        // The rows point into the old data: follow the item by its id.
        let keep = self.list.selected_id().map(str::to_owned);
        self.recompute(ctx, keep.as_deref());
        Vec::new()
    }

    fn on_resize(&mut self, area: Rect) {
        self.area = area;
    }

    fn images(&self, ctx: &Ctx) -> Vec<(String, Size)> {
        let image_area = layout(self.area).image;
        self.selected(ctx)
            .and_then(|a| a.latest())
            .filter(|v| v.mime.starts_with("image/"))
            .map(|v| vec![(v.blob_sha256.clone(), image_area.as_size())])
            .unwrap_or_default()
    }

    fn commands(&self) -> &'static [Action] {
        COMMANDS
    }

    fn draw(&self, frame: &mut Frame, area: Rect, ctx: &Ctx, theme: &Theme) {
        let areas = layout(area);
        let title = format!(
            " Assets {}/{} {}",
            self.list.rows.len(),
            ctx.data.assets.len(),
            self.list.title_tail()
        );
        let block = list::frame_block(theme, title, true);
        let inner = block.inner(areas.list);
        frame.render_widget(block, areas.list);
        let height = list::rows_in(inner);
        let offset = list::first_row(self.list.cursor, height);
        let rows: Vec<Row> = self
            .list
            .rows
            .iter()
            .enumerate()
            .skip(offset)
            .take(height)
            .filter_map(|(n, &i)| ctx.data.assets.get(i).map(|a| (n, a)))
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
                let marked = self.list.marked.contains(&a.id);
                let status = format!("{:?}", a.status).to_lowercase();
                let mut row = Row::new(vec![
                    Cell::from(format!("{}{}", if marked { "●" } else { " " }, a.id))
                        .style(theme.style("ui.text.dim")),
                    Cell::from(status).style(theme.style("ui.text")),
                    Cell::from(size).style(theme.style("ui.text.dim")),
                    Cell::from(title).style(if a.is_ai_draft() {
                        theme.style("queue.ai_draft")
                    } else {
                        theme.style("ui.text")
                    }),
                ]);
                if n == self.list.cursor {
                    row = row.style(theme.style("ui.selection"));
                } else if marked {
                    row = row.style(theme.style("ui.marked"));
                }
                row
            })
            .collect();
        let table = Table::new(
            rows,
            [
                Constraint::Length(11),
                Constraint::Length(9),
                Constraint::Length(10),
                Constraint::Min(8),
            ],
        )
        .header(Row::new(vec!["ID", "STATUS", "SIZE", "TITLE"]).style(theme.style("queue.header")))
        .column_spacing(1);
        frame.render_widget(table, inner);
        if self.list.rows.is_empty() {
            let text = if ctx.data.assets.is_empty() {
                "No assets yet: spoke asset import PATH".to_owned()
            } else {
                "Nothing matches the filter.".to_owned()
            };
            list::empty_note(frame, inner, text, theme);
        }
        let Some(d) = areas.detail else { return };
        frame.render_widget(list::frame_block(theme, " Preview ".into(), false), d);
        let Some(asset) = self.selected(ctx) else {
            return;
        };
        match asset.latest() {
            Some(v) if v.mime.starts_with("image/") => {
                draw_image(frame, areas.image, &v.blob_sha256, ctx, theme)
            }
            Some(v) => {
                let body: Vec<Line> = match ctx.data.texts.get(&v.blob_sha256) {
                    Some(text) => markdown::render(text, theme.style("ui.text"), theme),
                    None if v.mime.starts_with("text/") => vec![Line::from(Span::styled(
                        "(not on this machine yet)",
                        theme.style("ui.text.dim"),
                    ))],
                    None => vec![Line::from(Span::styled(
                        format!("{} has no preview", v.mime),
                        theme.style("ui.text.dim"),
                    ))],
                };
                frame.render_widget(Paragraph::new(body).wrap(Wrap { trim: false }), areas.image);
            }
            None => frame.render_widget(
                Paragraph::new("no versions").style(theme.style("ui.text.dim")),
                areas.image,
            ),
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
        let mut lines = vec![
            Line::from(Span::styled(asset.title.clone(), theme.style("ui.title"))),
            Line::from(vec![
                Span::styled("versions ", key),
                Span::styled(format!("{}", asset.versions.len()), text),
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
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), areas.info);
    }
}
