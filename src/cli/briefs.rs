//! `spoke brief ...`

use super::Ctx;
use super::output::{long_time, or_dash, outln, print_json, print_table, short_time};
use crate::model::brief::{Brief, BriefStatus, Priority};
use crate::model::input::InputError;
use crate::service::{BriefFilter, Hub, NewBrief};
use anyhow::Result;
use clap::{Args, Subcommand};
use jiff::Timestamp;
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum BriefCommand {
    /// Add a brief; prints its id
    Add(AddArgs),
    /// List briefs, most urgent first
    List {
        /// Only this status (draft, intake, ready, in_progress, in_review, approved, delivered, on_hold, cancelled)
        #[arg(long)]
        status: Option<String>,
        /// Only this priority (p0..p3)
        #[arg(long)]
        priority: Option<String>,
        /// Only briefs assigned to this handle
        #[arg(long)]
        assignee: Option<String>,
        /// Only briefs with this tag
        #[arg(long)]
        tag: Option<String>,
    },
    /// Show every field of a brief
    Show {
        /// Brief id, or a unique prefix of it
        id: String,
    },
    /// Set fields: FIELD=VALUE ... (e.g. audience="Designers" due=2026-12-01T17:00 tags=+hero)
    Set {
        id: String,
        /// FIELD=VALUE pairs; fields: title, requester, objective, audience, key_message,
        /// deliverables, mandatories, brand, budget, due, references, success_metric,
        /// priority, tags, snooze_until. An empty value clears the field.
        #[arg(required = true, value_name = "FIELD=VALUE")]
        pairs: Vec<String>,
    },
    /// Move a brief to another status (the lifecycle is checked)
    Status {
        id: String,
        status: String,
        /// As a lead, move a brief with open intake questions to ready anyway
        #[arg(long)]
        force: bool,
    },
    /// Assign a member to a brief
    Assign {
        id: String,
        handle: String,
        /// Remove the member instead
        #[arg(long)]
        remove: bool,
    },
    /// Clarifying questions for what the brief is missing
    Check { id: String },
    /// Comment on a brief (its thread); `@handle` mentions a member
    Comment {
        id: String,
        /// The comment (several words are joined)
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    #[arg(long)]
    title: String,
    /// What the work should achieve
    #[arg(long)]
    objective: Option<String>,
    /// Who it is for
    #[arg(long)]
    audience: Option<String>,
    /// The one thing the audience should take away
    #[arg(long = "key-message")]
    key_message: Option<String>,
    /// Deadline: 2026-12-01T17:00 (your zone), 2026-12-01, or 2026-12-01T17:00[America/New_York]
    #[arg(long)]
    due: Option<String>,
    /// p0 (most urgent) .. p3 [default: p2]
    #[arg(long)]
    priority: Option<String>,
    /// CHANNEL[:SPEC][*QTY], e.g. linkedin:1200x627 (repeatable)
    #[arg(long = "deliverable")]
    deliverables: Vec<String>,
    /// Tag (repeatable)
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Who asked for it [default: you]
    #[arg(long)]
    requester: Option<String>,
    #[arg(long)]
    brand: Option<String>,
    #[arg(long)]
    budget: Option<String>,
    /// Starting status [default: draft]
    #[arg(long)]
    status: Option<String>,
}

pub fn run(ctx: &Ctx, cmd: BriefCommand) -> Result<()> {
    let mut hub = ctx.open_hub()?;
    match cmd {
        BriefCommand::Add(a) => {
            let brief = hub.add_brief(NewBrief {
                title: a.title,
                objective: a.objective,
                audience: a.audience,
                key_message: a.key_message,
                requester: a.requester,
                due: a.due,
                priority: a.priority,
                deliverables: a.deliverables,
                tags: a.tags,
                brand: a.brand,
                budget: a.budget,
                status: a.status,
            })?;
            if ctx.json {
                print_json(&brief)
            } else {
                outln!("{}", brief.id)?;
                Ok(())
            }
        }
        BriefCommand::List {
            status,
            priority,
            assignee,
            tag,
        } => {
            let filter = BriefFilter {
                status: status.as_deref().map(BriefStatus::parse).transpose()?,
                priority: priority.as_deref().map(Priority::parse).transpose()?,
                assignee,
                tag,
            };
            let briefs = hub.briefs(&filter)?;
            if ctx.json {
                return print_json(&briefs);
            }
            print_queue(&hub, &briefs)
        }
        BriefCommand::Show { id } => {
            let brief = hub.brief(&id)?;
            let tasks = hub.tasks_of_brief(&brief.id)?;
            if ctx.json {
                let mut value = serde_json::to_value(&brief)?;
                if let Some(obj) = value.as_object_mut() {
                    obj.insert("tasks".into(), serde_json::to_value(&tasks)?);
                }
                print_json(&value)
            } else {
                print_brief(&hub, &brief)?;
                super::tasks::print_task_list(&tasks)
            }
        }
        BriefCommand::Set { id, pairs } => {
            let pairs = pairs
                .iter()
                .map(|p| {
                    p.split_once('=')
                        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
                        .ok_or_else(|| {
                            InputError::new(format!(
                                "`{p}` is not FIELD=VALUE, e.g. audience=\"Designers in EMEA\""
                            ))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let brief = hub.set_brief_fields(&id, &pairs)?;
            done(ctx, &brief, "updated")
        }
        BriefCommand::Status { id, status, force } => {
            let brief = hub.move_brief(&id, &status, force)?;
            done(ctx, &brief, &format!("is now {}", brief.status))
        }
        BriefCommand::Assign { id, handle, remove } => {
            let brief = hub.assign_brief(&id, &handle, remove)?;
            let who = if brief.assignees.is_empty() {
                "nobody".to_owned()
            } else {
                brief.assignees.join(", ")
            };
            done(ctx, &brief, &format!("assigned to {who}"))
        }
        BriefCommand::Comment { id, text } => {
            let brief = hub.brief(&id)?;
            hub.comment_on_brief(&brief.id, &text.join(" "))?;
            if ctx.json {
                return print_json(&json!({ "brief": brief.id, "thread": brief.thread }));
            }
            outln!("commented on {} \"{}\"", brief.id, brief.title)?;
            Ok(())
        }
        BriefCommand::Check { id } => {
            let (brief, questions) = hub.check_brief(&id)?;
            if ctx.json {
                return print_json(&json!({
                    "id": brief.id,
                    "complete": questions.is_empty(),
                    "missing": questions.iter().map(|q| &q.field).collect::<Vec<_>>(),
                    "questions": questions,
                }));
            }
            if questions.is_empty() {
                outln!(
                    "{} \"{}\" has everything a team needs to start.",
                    brief.id,
                    brief.title
                )?;
            } else {
                outln!(
                    "{} \"{}\" is missing {} of 5 required fields. Ask the requester ({}):",
                    brief.id,
                    brief.title,
                    questions.len(),
                    or_dash(brief.requester.as_deref())
                )?;
                for (i, q) in questions.iter().enumerate() {
                    outln!("  {}. [{}] {}", i + 1, q.field, q.question)?;
                }
            }
            Ok(())
        }
    }
}

fn done(ctx: &Ctx, brief: &Brief, what: &str) -> Result<()> {
    if ctx.json {
        print_json(brief)
    } else {
        outln!("{} {what}", brief.id)?;
        Ok(())
    }
}

/// The queue: one line per brief with the due time in the reader's zone.
pub fn print_queue(hub: &Hub, briefs: &[Brief]) -> Result<()> {
    let zone = hub.zone();
    let now = Timestamp::now();
    let rows: Vec<Vec<String>> = briefs
        .iter()
        .map(|b| {
            let due = match &b.due {
                Some(d) if d.at < now && b.status.is_open() => {
                    format!("{} overdue", short_time(d.at, &zone))
                }
                Some(d) => short_time(d.at, &zone),
                None => "-".to_owned(),
            };
            vec![
                b.id.clone(),
                b.priority.to_string(),
                b.status.to_string(),
                due,
                or_dash(Some(&b.assignees.join(","))),
                b.title.clone(),
            ]
        })
        .collect();
    let due_header = format!("DUE ({zone})");
    print_table(
        &["ID", "PRI", "STATUS", &due_header, "ASSIGNEES", "TITLE"],
        &rows,
    )?;
    if briefs.is_empty() {
        outln!("(no briefs; add one with `spoke brief add --title ...`)")?;
    }
    Ok(())
}

fn print_brief(hub: &Hub, b: &Brief) -> Result<()> {
    let zone = hub.zone();
    let mut lines: Vec<(&str, String)> = vec![
        ("id", b.id.clone()),
        ("title", b.title.clone()),
        ("status", b.status.to_string()),
        ("priority", b.priority.to_string()),
        ("requester", or_dash(b.requester.as_deref())),
        ("assignees", or_dash(Some(&b.assignees.join(", ")))),
        ("objective", or_dash(b.objective.as_deref())),
        ("audience", or_dash(b.audience.as_deref())),
        ("key_message", or_dash(b.key_message.as_deref())),
    ];
    let deliverables: Vec<String> = b.deliverables.iter().map(|d| d.to_string()).collect();
    lines.push(("deliverables", or_dash(Some(&deliverables.join(", ")))));
    match &b.due {
        Some(d) => {
            lines.push(("due", long_time(d.at, &d.tz)));
            if d.tz != zone {
                lines.push(("  your time", long_time(d.at, &zone)));
            }
            for handle in &b.assignees {
                if let Some(m) = hub.member(handle)?
                    && m.tz != d.tz
                    && m.tz != zone
                {
                    lines.push((
                        "  for assignee",
                        format!("@{handle}: {}", long_time(d.at, &m.tz)),
                    ));
                }
            }
        }
        None => lines.push(("due", "-".to_owned())),
    }
    lines.extend([
        ("mandatories", or_dash(b.mandatories.as_deref())),
        ("brand", or_dash(b.brand.as_deref())),
        ("budget", or_dash(b.budget.as_deref())),
        ("references", or_dash(Some(&b.references.join(", ")))),
        ("success_metric", or_dash(b.success_metric.as_deref())),
        ("tags", or_dash(Some(&b.tags.join(", ")))),
        (
            "snoozed_until",
            b.snooze_until
                .map(|t| long_time(t, &zone))
                .unwrap_or_else(|| "-".into()),
        ),
        ("thread", b.thread.clone()),
        (
            "created",
            match (&b.created_at, &b.created_by) {
                (Some(t), by) => format!("{} by {}", long_time(*t, &zone), or_dash(by.as_deref())),
                _ => "-".into(),
            },
        ),
    ]);
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in lines {
        outln!("{k:width$}  {v}")?;
    }
    let missing = b.missing_fields();
    if !missing.is_empty() {
        let names: Vec<_> = missing.iter().map(|q| q.field.as_str()).collect();
        outln!(
            "\nincomplete: missing {} (see `spoke brief check {}`)",
            names.join(", "),
            b.id
        )?;
    }
    Ok(())
}
