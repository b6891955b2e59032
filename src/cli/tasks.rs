//! `spoke task`: the pieces a brief is broken into, with where each lives
//! in the team's trackers.

use super::Ctx;
use super::output::{outln, print_json, print_table};
use crate::model::task::Task;
use anyhow::Result;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// A brief's tasks, with their tracker keys and links
    List {
        /// The brief (id or unique prefix)
        brief: String,
    },
    /// Change a task: its status (todo, doing, done), title, assignee or due
    /// date. A task pushed to a tracker is updated there too
    #[command(
        after_help = "Examples:\n  spoke task set t-ab12-1 status=done\n  spoke task set t-ab12-1 assignee=bea due=2026-12-20"
    )]
    Set {
        /// The task id
        id: String,
        /// FIELD=VALUE pairs: status, title, assignee (empty to clear), due (empty to clear)
        #[arg(required = true, value_name = "FIELD=VALUE")]
        pairs: Vec<String>,
    },
}

pub fn task(ctx: &Ctx, cmd: TaskCommand) -> Result<()> {
    let mut hub = ctx.open_hub()?;
    match cmd {
        TaskCommand::List { brief } => {
            let brief = hub.brief(&brief)?;
            let tasks = hub.tasks_of_brief(&brief.id)?;
            if ctx.json {
                return print_json(&tasks);
            }
            if tasks.is_empty() {
                outln!("{} has no tasks yet.", brief.id)?;
                return Ok(());
            }
            print_task_list(&tasks)
        }
        TaskCommand::Set { id, pairs } => {
            let mut parsed = Vec::new();
            for p in &pairs {
                let Some((k, v)) = p.split_once('=') else {
                    return Err(crate::model::InputError::new(format!(
                        "`{p}` is not FIELD=VALUE, e.g. status=done"
                    ))
                    .into());
                };
                parsed.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            let task = hub.set_task_fields(&id, &parsed)?;
            if ctx.json {
                return print_json(&task);
            }
            outln!("{} updated", task.id)?;
            print_task_list(&[task])
        }
    }
}

/// Tasks as a table: id, status, assignee, title and each tracker's key.
pub fn print_task_list(tasks: &[Task]) -> Result<()> {
    if tasks.is_empty() {
        return Ok(());
    }
    outln!("\ntasks:")?;
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            let external: Vec<String> = t
                .external
                .iter()
                .map(|(c, l)| format!("{c} {} {}", l.key, l.url))
                .collect();
            vec![
                t.id.clone(),
                crate::model::serde_name(t.status),
                t.assignee
                    .as_deref()
                    .map(|a| format!("@{a}"))
                    .unwrap_or_else(|| "-".into()),
                t.title.clone(),
                if external.is_empty() {
                    "-".into()
                } else {
                    external.join("; ")
                },
            ]
        })
        .collect();
    print_table(&["id", "status", "assignee", "title", "tracker"], &rows)
}
