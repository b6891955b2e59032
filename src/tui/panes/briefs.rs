//! The brief queue: triage by keyboard (status, priority, assignment, tags,
//! snooze, comments, new briefs with their clarifying questions), marks and
//! visual ranges for bulk edits, and the detail of the selected brief.

use crate::model::brief::{Brief, BriefStatus, Due, Priority};
use crate::model::member::Member;
use crate::model::thread::Message;
use crate::service::Hub;
use crate::service::NewBrief;
use crate::tui::action::{Action, Pane};
use crate::tui::component::{Cmd, Component, Ctx, Handled};
use crate::tui::edits::BriefEdit;
use crate::tui::msg::{Effect, Level};
use crate::tui::popup::form::{Form, new_brief_form};
use crate::tui::popup::generate::GenerateForm;
use crate::tui::popup::picker::{AnyPicker, Choice, Picked, Picker};
use crate::tui::popup::{Answer, Popup, Prompt, keys};
use crate::tui::queue::Queue;
use crate::tui::theme::Theme;
use crate::tui::widgets::time::{age, relative};
use crate::tui::widgets::{list, markdown};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

#[derive(Debug, Clone, PartialEq)]
pub struct BriefsPane {
    pub queue: Queue,
    pub show_detail: bool,
    /// The selected brief's comments, once loaded.
    pub thread: Option<(String, Vec<Message>)>,
    area: Rect,
}

impl Default for BriefsPane {
    fn default() -> BriefsPane {
        BriefsPane {
            queue: Queue::default(),
            show_detail: true,
            thread: None,
            area: Rect::new(0, 0, 80, 20),
        }
    }
}

/// Where the list and the detail go.
fn layout(area: Rect, show_detail: bool) -> (Rect, Option<Rect>) {
    if show_detail && area.width >= 110 {
        let [l, r] = Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)])
            .areas(area);
        (l, Some(r))
    } else if show_detail && area.height >= 30 {
        let [t, b] =
            Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(area);
        (t, Some(b))
    } else {
        (area, None)
    }
}

const COMMANDS: &[Action] = &[
    Action::Help,
    Action::Filter,
    Action::SetStatus,
    Action::Assign,
    Action::ToggleMark,
    Action::Undo,
    Action::Quit,
];

impl BriefsPane {
    /// Rows of the queue in view.
    pub fn page(&self) -> usize {
        let (list_area, _) = layout(self.area, self.show_detail);
        list::rows_in(list_area.inner(ratatui::layout::Margin::new(1, 1))).max(1)
    }

    fn scroll(&mut self) {
        let page = self.page();
        self.queue.scroll_into_view(page);
    }

    /// Selects a brief by id, clearing the filter if it hides it.
    pub fn select(&mut self, id: &str) -> bool {
        self.queue.filter.clear();
        self.queue.recompute(Some(id));
        self.scroll();
        self.queue.selected().map(|b| b.id.as_str()) == Some(id)
    }

    pub fn on_thread(&mut self, brief: String, messages: Vec<Message>) {
        self.thread = Some((brief, messages));
    }

    fn thread_cmds(&mut self, before: Option<String>) -> Vec<Cmd> {
        match self.queue.selected().map(|b| b.id.clone()) {
            Some(id)
                if self.show_detail
                    && (before.as_deref() != Some(id.as_str()) || self.thread.is_none()) =>
            {
                vec![Cmd::Work(Effect::LoadThread(id))]
            }
            _ => Vec::new(),
        }
    }

    fn targets(&self) -> Vec<Brief> {
        self.queue.targets().into_iter().cloned().collect()
    }

    fn no_brief() -> Handled {
        Handled::say(Level::Info, "no brief selected")
    }

    fn prompt(&self, prompt: Prompt) -> Handled {
        if self.queue.targets().is_empty() {
            return BriefsPane::no_brief();
        }
        Handled::one(Cmd::Open(Popup::prompt(prompt, "")))
    }

    fn open_picker(&self, action: Action, ctx: &Ctx) -> Handled {
        let targets = self.targets();
        let Some(first) = targets.first() else {
            return BriefsPane::no_brief();
        };
        let picker = match action {
            Action::SetStatus => {
                let choices: Vec<Choice<BriefStatus>> = BriefStatus::ALL
                    .iter()
                    .filter(|s| targets.len() > 1 || first.status.next_states().contains(s))
                    .map(|s| Choice {
                        value: *s,
                        label: s.as_str().into(),
                        detail: String::new(),
                    })
                    .collect();
                // Start on the usual next step.
                let selected = forward_status(first.status)
                    .and_then(|next| choices.iter().position(|c| c.value == next))
                    .unwrap_or(0);
                AnyPicker::Status(Picker::new("Set status", choices, selected))
            }
            Action::SetPriority => {
                let choices: Vec<Choice<Priority>> = Priority::ALL
                    .iter()
                    .map(|p| Choice {
                        value: *p,
                        label: p.as_str().into(),
                        detail: match p {
                            Priority::P0 => "drop everything",
                            Priority::P1 => "urgent",
                            Priority::P2 => "normal",
                            Priority::P3 => "when there is time",
                        }
                        .into(),
                    })
                    .collect();
                let selected = Priority::ALL
                    .iter()
                    .position(|p| *p == first.priority)
                    .unwrap_or(0);
                AnyPicker::Priority(Picker::new("Set priority", choices, selected))
            }
            _ => AnyPicker::Member(Picker::new(
                "Assign to (local time · load · zone)",
                assign_choices(ctx),
                0,
            )),
        };
        Handled::one(Cmd::Open(Popup::Picker(picker)))
    }

    /// Moves briefs to a status. Briefs with open questions need a lead's
    /// force to reach ready: a lead is asked first, anyone else gets the
    /// service's refusal.
    fn move_to(&self, to: BriefStatus, ctx: &Ctx) -> Handled {
        let targets = self.targets();
        if targets.is_empty() {
            return BriefsPane::no_brief();
        }
        let ids: Vec<String> = targets.iter().map(|b| b.id.clone()).collect();
        let incomplete: Vec<Vec<String>> = targets
            .iter()
            .filter(|b| b.status.check_transition(to).is_ok())
            .map(|b| {
                Hub::open_questions_for_move(b, to)
                    .into_iter()
                    .map(|q| q.field)
                    .collect::<Vec<_>>()
            })
            .filter(|fields| !fields.is_empty())
            .collect();
        if let Some(fields) = incomplete.first()
            && Hub::may_force_past_questions(ctx.data.me())
        {
            return Handled::one(Cmd::Open(Popup::Confirm {
                message: format!(
                    "{} of these briefs still miss required fields ({}{}). Move to {to} anyway?",
                    incomplete.len(),
                    fields.join(", "),
                    if incomplete.len() > 1 { ", ..." } else { "" }
                ),
                then: Box::new(Effect::Briefs(BriefEdit::SetStatus {
                    ids,
                    to,
                    force: true,
                })),
            }));
        }
        Handled::work(Effect::Briefs(BriefEdit::SetStatus {
            ids,
            to,
            force: false,
        }))
    }

    fn ids(&self) -> Vec<String> {
        self.queue.targets().iter().map(|b| b.id.clone()).collect()
    }

    fn on_text(&mut self, prompt: Prompt, text: String, ctx: &Ctx) -> Handled {
        let ids = self.ids();
        let text = text.trim().to_owned();
        match prompt {
            Prompt::Filter => {
                let keep = self.queue.selected().map(|b| b.id.clone());
                self.queue.filter = text;
                self.queue.recompute(keep.as_deref());
                self.scroll();
                Handled::done()
            }
            Prompt::Tag => {
                let (mut add, mut remove) = (Vec::new(), Vec::new());
                for item in text.split([',', ' ']).filter(|s| !s.is_empty()) {
                    match item.strip_prefix('-') {
                        Some(tag) => remove.push(tag.to_owned()),
                        None => add.push(item.trim_start_matches('+').to_owned()),
                    }
                }
                if add.is_empty() && remove.is_empty() {
                    return Handled::done();
                }
                Handled::work(Effect::Briefs(BriefEdit::Tags { ids, add, remove }))
            }
            Prompt::Snooze => {
                let until = if text.is_empty() {
                    None
                } else {
                    match Due::parse(&text, ctx.data.zone_or_utc()) {
                        Ok(d) => Some(d.at),
                        Err(e) => return Handled::say(Level::Error, e.0),
                    }
                };
                Handled::work(Effect::Briefs(BriefEdit::Snooze { ids, until }))
            }
            Prompt::Comment => {
                let Some(id) = self.queue.selected().map(|b| b.id.clone()) else {
                    return Handled::done();
                };
                if text.is_empty() {
                    return Handled::done();
                }
                // Comments are appended: there is nothing to undo.
                Handled::Consumed(vec![
                    Cmd::Work(Effect::Briefs(BriefEdit::Comment {
                        id: id.clone(),
                        text,
                    })),
                    Cmd::Work(Effect::LoadThread(id)),
                ])
            }
            Prompt::Verdict(_) | Prompt::SavePath => Handled::Ignored,
        }
    }

    /// Picks a template for generating drafts of the selected brief; the
    /// form for prompt and count follows.
    fn open_generate(&self, ctx: &Ctx) -> Handled {
        let Some(brief) = self.queue.selected() else {
            return BriefsPane::no_brief();
        };
        if ctx.data.templates.is_empty() {
            return Handled::say(
                Level::Info,
                "no templates: a lead adds one with spoke generate template add",
            );
        }
        let choices = ctx
            .data
            .templates
            .iter()
            .map(|t| Choice {
                value: t.name.clone(),
                label: t.name.clone(),
                detail: t.detail.clone(),
            })
            .collect();
        let title = format!("Template for {}", brief.id);
        Handled::one(Cmd::Open(Popup::Picker(AnyPicker::Template(Picker::new(
            &title, choices, 0,
        )))))
    }

    /// Asks the service to add the brief from the form; undo deletes it.
    fn submit_form(&self, answers: Vec<String>) -> Handled {
        let pairs: Vec<_> = new_brief_form()
            .into_iter()
            .map(|(field, _)| field)
            .zip(answers)
            .collect();
        match NewBrief::from_answers(&pairs) {
            Ok(new) => Handled::work(Effect::Briefs(BriefEdit::Create(Box::new(new)))),
            Err(e) => Handled::say(Level::Error, e.0),
        }
    }

    fn on_action_inner(&mut self, action: Action, ctx: &Ctx) -> Handled {
        let page = self.page() as isize;
        match action {
            Action::MoveDown | Action::MoveUp | Action::PageDown | Action::PageUp => {
                let delta = match action {
                    Action::MoveDown => 1,
                    Action::MoveUp => -1,
                    Action::PageDown => page,
                    _ => -page,
                };
                self.queue.move_by(delta);
                self.queue.extend_visual();
            }
            Action::GotoTop | Action::GotoBottom => {
                self.queue.goto(if action == Action::GotoTop {
                    0
                } else {
                    usize::MAX
                });
                self.queue.extend_visual();
            }
            Action::Filter => {
                return Handled::one(Cmd::Open(Popup::prompt(Prompt::Filter, &self.queue.filter)));
            }
            Action::Cancel => {
                if self.queue.visual_from.take().is_none() && self.queue.marked.is_empty() {
                    self.queue.filter.clear();
                    let keep = self.queue.selected().map(|b| b.id.clone());
                    self.queue.recompute(keep.as_deref());
                }
                self.queue.marked.clear();
            }
            Action::Confirm => self.show_detail = true,
            Action::ToggleMark => {
                self.queue.toggle_mark();
                self.queue.move_by(1);
                self.queue.extend_visual();
            }
            Action::VisualMode => match self.queue.visual_from {
                Some(_) => self.queue.visual_from = None,
                None => {
                    self.queue.visual_from = Some(self.queue.cursor);
                    self.queue.extend_visual();
                }
            },
            Action::ClearMarks => {
                self.queue.marked.clear();
                self.queue.visual_from = None;
            }
            Action::ToggleDetail => self.show_detail = !self.show_detail,
            Action::CycleSort => {
                self.queue.sort = self.queue.sort.next();
                let keep = self.queue.selected().map(|b| b.id.clone());
                self.queue.recompute(keep.as_deref());
                return Handled::say(
                    Level::Info,
                    format!("sorted by {}", self.queue.sort.label()),
                );
            }
            Action::ToggleGroup => {
                let said = self.queue.cycle_grouping();
                return Handled::say(Level::Info, said.to_owned());
            }
            Action::NewBrief => return Handled::one(Cmd::Open(Popup::Form(Form::default()))),
            Action::CopyId | Action::CopyText => return self.copy(action),
            Action::SetStatus | Action::SetPriority | Action::Assign => {
                return self.open_picker(action, ctx);
            }
            Action::Generate => return self.open_generate(ctx),
            Action::Tag => return self.prompt(Prompt::Tag),
            Action::Snooze => return self.prompt(Prompt::Snooze),
            Action::Comment => return self.prompt(Prompt::Comment),
            Action::StatusNext => {
                let Some(first) = self.targets().into_iter().next() else {
                    return BriefsPane::no_brief();
                };
                return match forward_status(first.status) {
                    Some(next) => self.move_to(next, ctx),
                    None => Handled::say(
                        Level::Info,
                        format!("{} is the end of the line", first.status),
                    ),
                };
            }
            Action::PriorityUp | Action::PriorityDown => {
                let Some(first) = self.targets().into_iter().next() else {
                    return BriefsPane::no_brief();
                };
                let i = Priority::ALL
                    .iter()
                    .position(|p| *p == first.priority)
                    .unwrap_or(2);
                let j = if action == Action::PriorityUp {
                    i.saturating_sub(1)
                } else {
                    (i + 1).min(3)
                };
                return Handled::work(Effect::Briefs(BriefEdit::SetPriority {
                    ids: self.ids(),
                    to: Priority::ALL[j],
                }));
            }
            _ => return Handled::Ignored,
        }
        Handled::done()
    }
}

impl Component for BriefsPane {
    fn pane(&self) -> Pane {
        Pane::Briefs
    }

    fn on_action(&mut self, action: Action, ctx: &Ctx) -> Handled {
        let before = self.queue.selected().map(|b| b.id.clone());
        let handled = self.on_action_inner(action, ctx);
        self.scroll();
        match handled {
            Handled::Consumed(mut cmds) => {
                cmds.extend(self.thread_cmds(before));
                Handled::Consumed(cmds)
            }
            Handled::Ignored => Handled::Ignored,
        }
    }

    fn on_answer(&mut self, answer: Answer, ctx: &Ctx) -> Handled {
        let before = self.queue.selected().map(|b| b.id.clone());
        let handled = match answer {
            Answer::Picked(Picked::Status(to)) => self.move_to(to, ctx),
            Answer::Picked(Picked::Priority(to)) => {
                if self.queue.targets().is_empty() {
                    return BriefsPane::no_brief();
                }
                Handled::work(Effect::Briefs(BriefEdit::SetPriority {
                    ids: self.ids(),
                    to,
                }))
            }
            Answer::Picked(Picked::Member(handle)) => {
                if self.queue.targets().is_empty() {
                    return BriefsPane::no_brief();
                }
                Handled::work(Effect::Briefs(BriefEdit::Assign {
                    ids: self.ids(),
                    handle,
                    remove: false,
                }))
            }
            Answer::Picked(Picked::Template(template)) => {
                let Some(brief) = self.queue.selected().map(|b| b.id.clone()) else {
                    return BriefsPane::no_brief();
                };
                Handled::one(Cmd::Open(Popup::Generate(GenerateForm::new(
                    &brief, &template,
                ))))
            }
            Answer::Text { prompt, text } => self.on_text(prompt, text, ctx),
            Answer::Form(answers) => self.submit_form(answers),
            _ => Handled::Ignored,
        };
        match handled {
            Handled::Consumed(mut cmds) => {
                cmds.extend(self.thread_cmds(before));
                Handled::Consumed(cmds)
            }
            other => other,
        }
    }

    fn on_data(&mut self, ctx: &Ctx) -> Vec<Cmd> {
        let before = self.queue.selected().map(|b| b.id.clone());
        self.queue.set_briefs(ctx.data.briefs.clone());
        self.scroll();
        self.thread_cmds(before)
    }

    fn on_resize(&mut self, area: Rect) {
        self.area = area;
        self.scroll();
    }

    fn commands(&self) -> &'static [Action] {
        COMMANDS
    }

    fn draw(&self, frame: &mut Frame, area: Rect, ctx: &Ctx, theme: &Theme) {
        let (list_area, detail_area) = layout(area, self.show_detail);
        let q = &self.queue;
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
        if q.group_by_status {
            title.push_str("· by status ");
        }
        title.push_str(&format!("· {} ", q.sort.label()));
        if q.folds() && q.folded > 0 {
            title.push_str(&format!("· {} done folded ", q.folded));
        }
        let block = list::frame_block(theme, title, true);
        let inner = block.inner(list_area);
        frame.render_widget(block, list_area);
        let height = list::rows_in(inner);
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
                if b.snooze_until.is_some_and(|t| t > ctx.now) {
                    title.push_str(" (snoozed)");
                }
                let mut cells = vec![
                    Cell::from(format!("{mark}{}", b.priority))
                        .style(theme.style(&format!("queue.priority.{}", b.priority))),
                    Cell::from(title).style(theme.style("ui.text")),
                    Cell::from(status_text)
                        .style(theme.style(&format!("queue.status.{}", b.status))),
                    due_cell(b, ctx, theme),
                ];
                if !narrow {
                    cells.push(Cell::from(b.assignees.join(",")).style(theme.style("ui.text")));
                    cells.push(
                        Cell::from(b.requester.clone().unwrap_or_default())
                            .style(theme.style("ui.text.dim")),
                    );
                    cells.push(
                        Cell::from(age(b.created_at, ctx.now)).style(theme.style("ui.text.dim")),
                    );
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
        // The fold, under the last row when there is room.
        let shown = end - start;
        if q.folds() && q.folded > 0 && !q.rows.is_empty() && shown + 1 < usize::from(inner.height)
        {
            let at = Rect {
                y: inner.y + 1 + shown as u16,
                height: 1,
                ..inner
            };
            let note = format!(
                "▸ {} delivered or cancelled, folded · {} shows them",
                q.folded,
                keys(ctx.keymap, Pane::Briefs, Action::ToggleGroup)
            );
            frame.render_widget(
                ratatui::widgets::Paragraph::new(note).style(theme.style("ui.text.dim")),
                at,
            );
        }
        if q.rows.is_empty() {
            let text = if q.all.is_empty() {
                format!(
                    "No briefs yet. {} adds one.",
                    keys(ctx.keymap, Pane::Briefs, Action::NewBrief)
                )
            } else if q.folded > 0 {
                format!(
                    "Only delivered or cancelled briefs here, folded. {} shows them.",
                    keys(ctx.keymap, Pane::Briefs, Action::ToggleGroup)
                )
            } else {
                format!(
                    "Nothing matches the filter. {} clears it.",
                    keys(ctx.keymap, Pane::Briefs, Action::Cancel)
                )
            };
            list::empty_note(frame, inner, text, theme);
        }
        if let Some(d) = detail_area {
            self.draw_detail(frame, d, ctx, theme);
        }
    }
}

impl BriefsPane {
    fn draw_detail(&self, frame: &mut Frame, area: Rect, ctx: &Ctx, theme: &Theme) {
        let block = list::frame_block(theme, " Detail ".into(), false);
        let Some(b) = self.queue.selected() else {
            frame.render_widget(block, area);
            return;
        };
        let zone = ctx.data.zone_or_utc();
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
                        relative(d.at, ctx.now)
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
        let tasks: Vec<&crate::model::task::Task> = ctx
            .data
            .tasks
            .iter()
            .filter(|t| t.brief.as_deref() == Some(b.id.as_str()))
            .collect();
        if !tasks.is_empty() {
            lines.push(Line::raw(""));
            lines.push(Line::from(Span::styled(
                format!("Tasks ({})", tasks.len()),
                theme.style("ui.help.section"),
            )));
            for t in tasks {
                let mark = match t.status {
                    crate::model::task::TaskStatus::Todo => "○",
                    crate::model::task::TaskStatus::Doing => "◐",
                    crate::model::task::TaskStatus::Done => "●",
                };
                let mut spans = vec![
                    Span::styled(format!("{mark} "), key),
                    Span::styled(t.title.clone(), text),
                ];
                if let Some(a) = &t.assignee {
                    spans.push(Span::styled(format!("  @{a}"), theme.style("ui.text.dim")));
                }
                lines.push(Line::from(spans));
                for (connector, link) in &t.external {
                    lines.push(Line::from(vec![
                        Span::raw("  "),
                        Span::styled(format!("{connector} {}", link.key), key),
                        Span::raw(" "),
                        Span::styled(link.url.clone(), theme.style("ui.text.dim")),
                    ]));
                }
            }
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
        if let Some((id, messages)) = &self.thread
            && *id == b.id
        {
            lines.push(Line::raw(""));
            lines.push(Line::from(Span::styled(
                format!("Comments ({})", messages.len()),
                theme.style("ui.help.section"),
            )));
            for m in messages.iter().rev().take(20).rev() {
                let when = m.at.map(|t| relative(t, ctx.now)).unwrap_or_default();
                lines.push(Line::from(vec![
                    Span::styled(format!("@{} ", m.author), key),
                    Span::styled(when, theme.style("ui.text.dim")),
                ]));
                for mut line in markdown::render(&m.body, text, theme) {
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
}

fn due_cell(b: &Brief, ctx: &Ctx, theme: &Theme) -> Cell<'static> {
    match &b.due {
        None => Cell::from("-").style(theme.style("ui.text.dim")),
        Some(d) => {
            let rel = relative(d.at, ctx.now);
            let style = if d.at < ctx.now && b.status.is_open() {
                theme.style("queue.due.overdue")
            } else if d.at.duration_since(ctx.now).as_secs() < 86_400 && b.status.is_open() {
                theme.style("queue.due.soon")
            } else {
                theme.style("queue.due")
            };
            Cell::from(rel).style(style)
        }
    }
}

/// Members with their local time, whether they are working, and load:
/// people working now first, then the least loaded.
pub fn assign_choices(ctx: &Ctx) -> Vec<Choice<String>> {
    let mut rows: Vec<(bool, usize, Choice<String>)> = ctx
        .data
        .members
        .iter()
        .filter(|m| !m.has_role(crate::model::Role::ReadOnly))
        .map(|m: &Member| {
            let load = crate::agent::scorer::load_of(&m.handle, &ctx.data.briefs);
            let working = m.is_working_at(ctx.now);
            let local = m.local_time(ctx.now).strftime("%a %H:%M").to_string();
            let detail = format!(
                "{local} {} · {}/{} briefs · {}",
                if working { "working" } else { "off" },
                load,
                m.capacity,
                m.tz
            );
            (
                !working,
                load,
                Choice {
                    value: m.handle.clone(),
                    label: format!("@{}", m.handle),
                    detail,
                },
            )
        })
        .collect();
    rows.sort_by(|a, b| (a.0, a.1, &a.2.value).cmp(&(b.0, b.1, &b.2.value)));
    rows.into_iter().map(|(_, _, c)| c).collect()
}

/// The usual next step in the lifecycle.
fn forward_status(s: BriefStatus) -> Option<BriefStatus> {
    use BriefStatus::*;
    match s {
        Draft => Some(Intake),
        Intake => Some(Ready),
        Ready => Some(InProgress),
        InProgress => Some(InReview),
        InReview => Some(Approved),
        Approved => Some(Delivered),
        OnHold => Some(Ready),
        Delivered | Cancelled => None,
    }
}

impl BriefsPane {
    /// The selected brief's id, or the brief as Markdown, to the clipboard.
    fn copy(&self, action: Action) -> Handled {
        let Some(b) = self.queue.selected() else {
            return BriefsPane::no_brief();
        };
        let (what, text) = if action == Action::CopyId {
            (b.id.clone(), b.id.clone())
        } else {
            (format!("{} as Markdown", b.id), brief_markdown(b))
        };
        Handled::work(Effect::Terminal(crate::tui::editor::TermWork::Copy {
            what,
            text,
        }))
    }
}

/// A brief as Markdown: title, the facts a lead scans, then each field.
pub fn brief_markdown(b: &Brief) -> String {
    let mut out = format!("# {}\n\n", b.title);
    let mut fact = |name: &str, value: String| out.push_str(&format!("- **{name}**: {value}\n"));
    fact("id", b.id.clone());
    fact("status", b.status.to_string());
    fact("priority", b.priority.to_string());
    fact(
        "due",
        b.due
            .as_ref()
            .map(|d| format!("{} ({})", d.zoned().strftime("%Y-%m-%d %H:%M"), d.tz))
            .unwrap_or_else(|| "-".into()),
    );
    let handles = |v: &[String]| {
        if v.is_empty() {
            "-".to_owned()
        } else {
            v.iter()
                .map(|h| format!("@{h}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    fact("assignees", handles(&b.assignees));
    if let Some(r) = &b.requester {
        fact("requester", format!("@{r}"));
    }
    if !b.tags.is_empty() {
        fact(
            "tags",
            b.tags
                .iter()
                .map(|t| format!("#{t}"))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    for (name, value) in [
        ("Objective", &b.objective),
        ("Audience", &b.audience),
        ("Key message", &b.key_message),
        ("Mandatories", &b.mandatories),
        ("Brand", &b.brand),
        ("Budget", &b.budget),
        ("Success metric", &b.success_metric),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.trim().is_empty()) {
            out.push_str(&format!("\n## {name}\n\n{}\n", v.trim()));
        }
    }
    if !b.deliverables.is_empty() {
        out.push_str("\n## Deliverables\n\n");
        for d in &b.deliverables {
            out.push_str(&format!("- {d}\n"));
        }
    }
    if !b.references.is_empty() {
        out.push_str("\n## References\n\n");
        for r in &b.references {
            out.push_str(&format!("- {r}\n"));
        }
    }
    out.trim_end().to_owned()
}
