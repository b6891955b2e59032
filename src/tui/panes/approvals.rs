//! The approvals: every request for a human decision (AI outputs, asset
//! versions, proposals), waiting-on-me first, with its own filter and
//! marks, the subject beside its previous version, and the stages.

use super::image::draw_image;
use crate::model::approval::{ApprovalStatus, Decision, Subject};
use crate::service::approvals::ApprovalView;
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
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalsPane {
    /// Rows are indexes into the snapshot's approvals.
    pub list: ListState,
    area: Rect,
}

impl Default for ApprovalsPane {
    fn default() -> ApprovalsPane {
        ApprovalsPane {
            list: ListState::default(),
            area: Rect::new(0, 0, 80, 20),
        }
    }
}

const COMMANDS: &[Action] = &[
    Action::Approve,
    Action::ApproveWithChanges,
    Action::RequestChanges,
    Action::Reject,
    Action::ToggleMark,
    Action::Filter,
    Action::Help,
    Action::Quit,
    Action::CopyText,
];

/// The gap between an image and its previous version, in cells.
const COMPARE_GAP: u16 = 2;

struct Areas {
    list: Rect,
    detail: Option<Rect>,
}

fn layout(area: Rect) -> Areas {
    let (list, detail) = if area.width >= 100 {
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
    Areas { list, detail }
}

/// Inside the request panel with an image subject: the current image,
/// the previous one (with a label row above each), and the text.
struct ImageAreas {
    current: Rect,
    current_label: Rect,
    previous: Option<(Rect, Rect)>,
    text: Rect,
}

fn image_layout(inner: Rect, with_previous: bool) -> ImageAreas {
    let [images, text] =
        Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(inner);
    let labelled = |r: Rect| -> (Rect, Rect) {
        let [label, image] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(r);
        (label, image)
    };
    if with_previous {
        let [l, _, r] = Layout::horizontal([
            Constraint::Fill(1),
            Constraint::Length(COMPARE_GAP),
            Constraint::Fill(1),
        ])
        .areas(images);
        let (current_label, current) = labelled(l);
        ImageAreas {
            current,
            current_label,
            previous: Some(labelled(r)),
            text,
        }
    } else {
        let (current_label, current) = labelled(images);
        ImageAreas {
            current,
            current_label,
            previous: None,
            text,
        }
    }
}

/// A version number and its blob.
type Version = (u32, String);

/// The image blobs a request compares: the version under review and the
/// one before it, with their version numbers.
fn compared(view: &ApprovalView, ctx: &Ctx) -> Option<(Version, Option<Version>)> {
    let Some(Subject::AssetVersion { asset, version }) = &view.subject else {
        return None;
    };
    let a = ctx.data.assets.iter().find(|a| a.id == *asset)?;
    let image = |n: usize| {
        a.versions
            .get(n)
            .filter(|v| v.mime.starts_with("image/"))
            .map(|v| (n as u32 + 1, v.blob_sha256.clone()))
    };
    let i = (*version as usize).checked_sub(1)?;
    let current = image(i)?;
    Some((current, i.checked_sub(1).and_then(image)))
}

impl ApprovalsPane {
    pub fn selected<'a>(&self, ctx: &Ctx<'a>) -> Option<&'a ApprovalView> {
        self.list
            .rows
            .get(self.list.cursor)
            .and_then(|&i| ctx.data.approvals.get(i))
    }

    fn page(&self) -> usize {
        list::rows_in(layout(self.area).list.inner(Margin::new(1, 1))).max(1)
    }

    /// Orders approvals: waiting on me first, then open, then by deadline
    /// and id; keeps the cursor on the same request.
    fn recompute(&mut self, ctx: &Ctx, keep: Option<&str>) {
        let me = ctx.data.me.clone().unwrap_or_default();
        let all = &ctx.data.approvals;
        let list = &mut self.list;
        let mut rows: Vec<usize> = (0..all.len())
            .filter(|&i| {
                let v = &all[i];
                let subject = v.subject.as_ref().map(Subject::label).unwrap_or_default();
                list.matches(&format!(
                    "{} {} {} {}",
                    v.id,
                    v.title,
                    subject,
                    crate::service::approvals::status_name(v.status)
                ))
            })
            .collect();
        rows.sort_by_key(|&i| {
            let v = &all[i];
            let deadline = v.stages.get(v.stage).and_then(|s| s.deadline);
            (
                !v.waiting_on.contains(&me),
                v.status.is_closed(),
                deadline.is_none(),
                deadline,
                v.id.clone(),
            )
        });
        list.ids = rows.iter().map(|&i| all[i].id.clone()).collect();
        list.rows = rows;
        let row = keep.and_then(|id| list.ids.iter().position(|i| i == id));
        let ids: BTreeSet<&str> = all.iter().map(|v| v.id.as_str()).collect();
        list.settle(row, &ids);
    }

    /// Requests a decision applies to: the marked ones, or the cursor's.
    fn targets(&self, ctx: &Ctx) -> Vec<String> {
        if self.list.marked.is_empty() {
            self.selected(ctx)
                .map(|v| v.id.clone())
                .into_iter()
                .collect()
        } else {
            self.list.marked.iter().cloned().collect()
        }
    }

    fn decide(
        &mut self,
        decision: Option<Decision>,
        comment: Option<String>,
        ctx: &Ctx,
    ) -> Handled {
        let ids = self.targets(ctx);
        if ids.is_empty() {
            return Handled::say(Level::Info, "no approval request selected");
        }
        self.list.marked.clear();
        Handled::work(Effect::Decide {
            ids,
            decision,
            comment,
        })
    }
}

impl Component for ApprovalsPane {
    fn pane(&self) -> Pane {
        Pane::Approvals
    }

    fn on_action(&mut self, action: Action, ctx: &Ctx) -> Handled {
        let selected = self.selected(ctx).map(|v| v.id.clone());
        match self.list.on_action(action, self.page(), selected.clone()) {
            ListAction::Done => return Handled::done(),
            ListAction::OpenFilter => {
                return Handled::one(Cmd::Open(Popup::prompt(Prompt::Filter, &self.list.filter)));
            }
            ListAction::FilterCleared => {
                self.recompute(ctx, selected.as_deref());
                return Handled::done();
            }
            ListAction::NotMine => {}
        }
        match action {
            Action::CopyId | Action::CopyText => {
                let Some(v) = self.selected(ctx) else {
                    return Handled::say(Level::Info, "no approval request selected");
                };
                let (what, text) = if action == Action::CopyId {
                    (v.id.clone(), v.id.clone())
                } else {
                    (format!("request {}", v.id), request_text(v, ctx))
                };
                Handled::work(Effect::Terminal(TermWork::Copy { what, text }))
            }
            Action::Approve => self.decide(Some(Decision::Approved), None, ctx),
            Action::Revoke => self.decide(None, None, ctx),
            Action::ApproveWithChanges | Action::RequestChanges | Action::Reject => {
                let decision = match action {
                    Action::ApproveWithChanges => Decision::ApprovedWithChanges,
                    Action::RequestChanges => Decision::ChangesRequested,
                    _ => Decision::Rejected,
                };
                if self.targets(ctx).is_empty() {
                    return Handled::say(Level::Info, "no approval request selected");
                }
                Handled::one(Cmd::Open(Popup::prompt(Prompt::Verdict(decision), "")))
            }
            _ => Handled::Ignored,
        }
    }

    fn on_answer(&mut self, answer: Answer, ctx: &Ctx) -> Handled {
        match answer {
            Answer::Text {
                prompt: Prompt::Filter,
                text,
            } => {
                let keep = self.selected(ctx).map(|v| v.id.clone());
                self.list.filter = text;
                self.recompute(ctx, keep.as_deref());
                Handled::done()
            }
            Answer::Text {
                prompt: Prompt::Verdict(decision),
                text,
            } => {
                let text = text.trim().to_owned();
                if decision.requires_comment() && text.is_empty() {
                    return Handled::say(Level::Error, "a reason is required");
                }
                self.decide(Some(decision), Some(text).filter(|t| !t.is_empty()), ctx)
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
        let Some(detail) = layout(self.area).detail else {
            return Vec::new();
        };
        let Some(((_, current), previous)) = self.selected(ctx).and_then(|v| compared(v, ctx))
        else {
            return Vec::new();
        };
        let areas = image_layout(detail.inner(Margin::new(1, 1)), previous.is_some());
        let mut out = vec![(current, areas.current.as_size())];
        if let (Some((_, sha)), Some((_, area))) = (previous, areas.previous) {
            out.push((sha, area.as_size()));
        }
        out
    }

    fn commands(&self) -> &'static [Action] {
        COMMANDS
    }

    fn draw(&self, frame: &mut Frame, area: Rect, ctx: &Ctx, theme: &Theme) {
        let areas = layout(area);
        let me = ctx.data.me.clone().unwrap_or_default();
        let waiting = ctx
            .data
            .approvals
            .iter()
            .filter(|v| v.waiting_on.contains(&me))
            .count();
        let title = format!(
            " Approvals · {waiting} waiting on you {}",
            self.list.title_tail()
        );
        let block = list::frame_block(theme, title, true);
        let inner = block.inner(areas.list);
        frame.render_widget(block, areas.list);
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
        let height = list::rows_in(inner);
        let offset = list::first_row(self.list.cursor, height);
        let rows: Vec<Row> = self
            .list
            .rows
            .iter()
            .enumerate()
            .skip(offset)
            .take(height)
            .filter_map(|(n, &i)| ctx.data.approvals.get(i).map(|v| (n, v)))
            .map(|(n, v)| {
                let mark = if self.list.marked.contains(&v.id) {
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
                if n == self.list.cursor {
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
            Row::new(vec!["ID", "STATUS", "", "SUBJECT", "TITLE"])
                .style(theme.style("queue.header")),
        )
        .column_spacing(1);
        frame.render_widget(table, inner);
        if self.list.rows.is_empty() {
            let text = if ctx.data.approvals.is_empty() {
                "No approval requests. AI outputs and asset versions wait here for a human decision."
            } else {
                "Nothing matches the filter."
            };
            list::empty_note(frame, inner, text.to_owned(), theme);
        }
        let Some(d) = areas.detail else { return };
        frame.render_widget(list::frame_block(theme, " Request ".into(), false), d);
        let inner = d.inner(Margin::new(1, 1));
        let Some(v) = self.selected(ctx) else {
            return;
        };
        let text_area = match compared(v, ctx) {
            Some(((n, current), previous)) => {
                let areas = image_layout(inner, previous.is_some());
                let label = |text: String| {
                    Paragraph::new(Line::from(Span::styled(text, theme.style("ui.help.key"))))
                };
                frame.render_widget(label(format!("v{n} (this)")), areas.current_label);
                draw_image(frame, areas.current, &current, ctx, theme);
                if let (Some((p, sha)), Some((label_area, area))) = (previous, areas.previous) {
                    frame.render_widget(label(format!("v{p} (previous)")), label_area);
                    draw_image(frame, area, &sha, ctx, theme);
                }
                areas.text
            }
            None => inner,
        };
        frame.render_widget(
            Paragraph::new(request_lines(v, ctx, theme)).wrap(Wrap { trim: false }),
            text_area,
        );
    }
}

/// The request in words: subject, stages and reviewers' comments.
fn request_lines(v: &ApprovalView, ctx: &Ctx, theme: &Theme) -> Vec<Line<'static>> {
    let key = theme.style("ui.help.key");
    let text = theme.style("ui.text");
    let dim = theme.style("ui.text.dim");
    let status_style = match v.status {
        ApprovalStatus::Pending => theme.style("queue.status.in_review"),
        ApprovalStatus::Approved | ApprovalStatus::ApprovedWithChanges => {
            theme.style("queue.status.approved")
        }
        ApprovalStatus::ChangesRequested => theme.style("queue.status.on_hold"),
        ApprovalStatus::Rejected => theme.style("queue.status.cancelled"),
    };
    let mut lines = vec![
        Line::from(Span::styled(v.title.clone(), theme.style("ui.title"))),
        Line::from(vec![
            Span::styled(v.id.clone(), dim),
            Span::raw("  "),
            Span::styled(
                crate::service::approvals::status_name(v.status),
                status_style,
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
            match ctx.data.assets.iter().find(|a| a.id == *asset) {
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
                        let Some(version) = a.versions.get(n) else {
                            return Vec::new();
                        };
                        match ctx.data.texts.get(&version.blob_sha256) {
                            Some(t) => markdown::render(t, style, theme)
                                .into_iter()
                                .map(|mut line| {
                                    line.spans.insert(0, Span::raw("  │ "));
                                    line
                                })
                                .collect(),
                            None if version.mime.starts_with("text/") => {
                                vec![Line::from(Span::styled("  (not on this machine yet)", dim))]
                            }
                            None => Vec::new(),
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
        Some(Subject::Proposal { id }) => match ctx.data.proposals.iter().find(|p| p.id == *id) {
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
                    .and_then(|b| ctx.data.briefs.iter().find(|x| x.id == *b));
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
        },
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
            lines.push(Line::from(Span::styled(format!("@{}:", c.reviewer), key)));
            for mut line in markdown::render(c.comment.as_deref().unwrap_or(""), text, theme) {
                line.spans.insert(0, Span::raw("  "));
                lines.push(line);
            }
        }
    }
    lines
}

/// A request as copied: its title, and what is under review as text (a
/// text draft's Markdown, or a proposal's reasons and changes).
pub fn request_text(v: &ApprovalView, ctx: &Ctx) -> String {
    let mut out = format!("# {}\n\n", v.title);
    match &v.subject {
        Some(Subject::AssetVersion { asset, version }) => {
            let found = ctx.data.assets.iter().find(|a| a.id == *asset);
            let text = found
                .and_then(|a| a.versions.get((*version as usize).saturating_sub(1)))
                .and_then(|ver| ctx.data.texts.get(&ver.blob_sha256));
            match (found, text) {
                (_, Some(text)) => out.push_str(text.trim_end()),
                (Some(a), None) => {
                    out.push_str(&format!("asset {} ({}) version {version}", a.title, a.id))
                }
                (None, None) => out.push_str(&format!("asset {asset} version {version}")),
            }
        }
        Some(Subject::Proposal { id }) => match ctx.data.proposals.iter().find(|p| p.id == *id) {
            Some(p) => {
                if let Some(r) = &p.rationale {
                    out.push_str(r.trim_end());
                    out.push('\n');
                }
                if let Some(fields) = p.payload["fields"].as_object() {
                    for (name, new) in fields {
                        let new = new
                            .as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| new.to_string());
                        out.push_str(&format!("\n- {name}: {new}"));
                    }
                }
                if let Some(who) = p.payload["assignee"].as_str() {
                    out.push_str(&format!("\n- assignee: @{who}"));
                }
            }
            None => out.push_str(&format!("proposal {id}")),
        },
        Some(Subject::Draft { thread, message }) => {
            out.push_str(&format!("draft {thread} / {message}"))
        }
        None => out.push_str(&v.id),
    }
    out.trim_end().to_owned()
}
