//! Slash commands: answers Spoke computes itself, no model needed. `/find`
//! searches, `/who` shows who is working now and where, `/triage` runs the
//! intake check and the assignment scorer on the thread's brief, `/assign`
//! assigns it (a person typing it is a person deciding).

use super::scorer;
use crate::model::InputError;
use crate::search::index::{Query, SearchIndex};
use crate::service::Hub;
use anyhow::Result;
use jiff::Timestamp;
use std::collections::BTreeSet;

pub const HELP: &str = "/find QUERY     search briefs, comments, chat, assets and the knowledge base\n\
/who            who is online and in working hours now, and where\n\
/triage         the intake check and a suggested assignment for this thread's brief\n\
/assign HANDLE  assign this thread's brief to a member\n\
/help           this list";

/// Whether a chat line is a slash command.
pub fn is_command(text: &str) -> bool {
    text.trim_start().starts_with('/')
}

/// What a slash command needs besides the hub.
pub struct SlashContext<'a> {
    pub index: Option<&'a SearchIndex>,
    /// `brief:ID` or `general`.
    pub thread: &'a str,
    /// Members the relay says are online, when known (the TUI knows).
    pub online: Option<&'a BTreeSet<String>>,
    pub now: Timestamp,
}

/// Runs a slash command and returns the reply to show. Errors are input
/// errors with a one-line reason.
pub fn run(hub: &mut Hub, ctx: &SlashContext<'_>, line: &str) -> Result<String> {
    let line = line.trim();
    let (cmd, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    match cmd {
        "/find" | "/search" => find(hub, ctx, rest),
        "/who" => who(hub, ctx),
        "/triage" => triage(hub, ctx),
        "/assign" => assign(hub, ctx, rest),
        "/help" | "/?" => Ok(HELP.to_owned()),
        other => Err(InputError::new(format!(
            "unknown command {other}; the commands are:\n{HELP}"
        ))
        .into()),
    }
}

fn thread_brief(ctx: &SlashContext<'_>, cmd: &str) -> Result<String> {
    ctx.thread
        .strip_prefix("brief:")
        .map(str::to_owned)
        .ok_or_else(|| {
            InputError::new(format!(
                "{cmd} works in a brief's thread (in the CLI: --thread brief:ID)"
            ))
            .into()
        })
}

fn find(hub: &Hub, ctx: &SlashContext<'_>, query: &str) -> Result<String> {
    if query.is_empty() {
        return Err(InputError::new("/find needs words: /find logo clear space").into());
    }
    let Some(index) = ctx.index else {
        return Err(anyhow::anyhow!(
            "search is not available: the index could not be opened"
        ));
    };
    let results = index.search(
        hub.replica(),
        &Query {
            text: query.to_owned(),
            limit: 5,
            ..Query::default()
        },
    )?;
    if results.hits.is_empty() {
        return Ok(format!("Nothing found for \"{query}\"."));
    }
    let mut out = format!("Top results for \"{query}\":");
    for (i, h) in results.hits.iter().enumerate() {
        out.push_str(&format!(
            "\n{}. [{}] {} ({})\n   {}",
            i + 1,
            h.kind,
            h.title,
            h.id,
            h.snippet
        ));
    }
    for w in results.warnings {
        out.push_str(&format!("\n(note: {w})"));
    }
    Ok(out)
}

fn who(hub: &Hub, ctx: &SlashContext<'_>) -> Result<String> {
    let mut members = hub.members()?;
    members.retain(|m| !m.deleted);
    members.sort_by_key(|m| (!m.is_working_at(ctx.now), m.handle.clone()));
    let mut out = String::new();
    for m in &members {
        let local = m.local_time(ctx.now);
        let working = if m.is_working_at(ctx.now) {
            "working"
        } else {
            "off"
        };
        let online = match ctx.online {
            Some(set) if set.contains(&m.handle) => ", online",
            Some(_) => "",
            None => "",
        };
        out.push_str(&format!(
            "@{:<10} {} {} ({}{online})\n",
            m.handle,
            local.strftime("%a %H:%M"),
            m.tz,
            working
        ));
    }
    let working = members.iter().filter(|m| m.is_working_at(ctx.now)).count();
    out.push_str(&format!(
        "{working} of {} in working hours now",
        members.len()
    ));
    if ctx.online.is_none() {
        out.push_str(" (presence is shown in the TUI while connected)");
    }
    Ok(out)
}

fn triage(hub: &Hub, ctx: &SlashContext<'_>) -> Result<String> {
    let id = thread_brief(ctx, "/triage")?;
    let (brief, missing) = hub.check_brief(&id)?;
    let mut out = format!(
        "Triage of {} \"{}\" ({}):\n",
        brief.id, brief.title, brief.status
    );
    if missing.is_empty() {
        out.push_str("Intake: complete, nothing missing.\n");
    } else {
        out.push_str(&format!(
            "Intake: {} open question(s) for the requester:\n",
            missing.len()
        ));
        for q in &missing {
            out.push_str(&format!("  - {}: {}\n", q.field, q.question));
        }
    }
    let ranked = scorer::rank_in_hub(hub, &brief, ctx.now)?;
    match ranked.iter().find(|c| c.eligible) {
        Some(best) => {
            out.push_str(&format!(
                "Suggested assignee: @{} (score {:.2}). {}\n",
                best.handle, best.score, best.rationale
            ));
            out.push_str(&format!("  {}\n", factors(best)));
            for c in ranked.iter().filter(|c| c.handle != best.handle).take(2) {
                out.push_str(&format!(
                    "  then @{} ({:.2}): {}\n",
                    c.handle, c.score, c.rationale
                ));
            }
            out.push_str(&format!("Assign with /assign {}", best.handle));
        }
        None => out.push_str("No eligible assignee: everyone is at capacity or the team is empty."),
    }
    Ok(out)
}

fn assign(hub: &mut Hub, ctx: &SlashContext<'_>, handle: &str) -> Result<String> {
    let id = thread_brief(ctx, "/assign")?;
    let handle = handle.trim().trim_start_matches('@');
    if handle.is_empty() {
        return Err(InputError::new("/assign needs a handle: /assign kenji").into());
    }
    let brief = hub.assign_brief(&id, handle, false)?;
    let mut out = format!(
        "Assigned @{handle} to {} \"{}\" (assignees: {}).",
        brief.id,
        brief.title,
        brief.assignees.join(", ")
    );
    // The scorer's view of the choice, so a person overriding it sees what
    // they chose over; a scoring failure must not hide a done assignment.
    if let Ok(ranked) = scorer::rank_in_hub(hub, &brief, ctx.now) {
        let place = ranked.iter().position(|c| c.handle == handle);
        if let Some(i) = place {
            let c = &ranked[i];
            out.push_str(&format!(
                "\nScorer: @{handle} ranks {} of {} (score {:.2}). {}\n  {}",
                i + 1,
                ranked.len(),
                c.score,
                c.rationale,
                factors(c)
            ));
        }
    }
    Ok(out)
}

/// The factors of one candidate in one line: skill match, hours before the
/// due in their zone, load with pending proposals, and what broke a tie.
fn factors(c: &scorer::Candidate) -> String {
    let skills = if c.skills_wanted.is_empty() {
        "any".to_owned()
    } else {
        format!("{}/{}", c.skills_matched.len(), c.skills_wanted.len())
    };
    let hours = match &c.local_due {
        Some(local) => {
            let outside = if c.due_outside_hours {
                ", outside working hours"
            } else {
                ""
            };
            format!(
                "{:.1} h before due ({local}{outside})",
                c.working_hours_before_due
            )
        }
        None => "no due date".to_owned(),
    };
    let tie = c.tie_break.as_deref().unwrap_or("no tie");
    format!(
        "factors: skill match {skills}; {hours}; load {} assigned + {} pending of {}; tie-break: {tie}",
        c.load, c.pending, c.capacity
    )
}
