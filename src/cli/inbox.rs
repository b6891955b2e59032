//! `spoke inbox`: what waits on you, and marking it seen.

use super::Ctx;
use super::output::{outln, print_json, print_table, short_time};
use crate::service::inbox::InboxKind;
use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::json;

#[derive(Debug, Args)]
pub struct InboxArgs {
    #[command(subcommand)]
    pub command: Option<InboxCommand>,
}

#[derive(Debug, Subcommand)]
pub enum InboxCommand {
    /// Mark mentions and changes to your briefs as seen (all of them, or
    /// those of the given ids). Approvals and questions stay until they are
    /// decided or answered.
    Seen {
        /// Brief ids, thread ids or item keys (`--json` shows keys)
        ids: Vec<String>,
    },
}

pub fn inbox(ctx: &Ctx, args: InboxArgs) -> Result<()> {
    let hub = ctx.open_hub()?;
    if let Some(InboxCommand::Seen { ids }) = args.command {
        let cleared = hub.mark_inbox_seen(&ids)?;
        if ctx.json {
            return print_json(&json!({ "cleared": cleared }));
        }
        outln!("{cleared} item(s) marked seen")?;
        return Ok(());
    }
    let inbox = hub.inbox()?;
    if ctx.json {
        return print_json(&inbox);
    }
    let Some(me) = &inbox.me else {
        outln!("This replica acts as no member yet: `spoke init` or `spoke hub join` first.")?;
        return Ok(());
    };
    if inbox.items.is_empty() {
        outln!("Nothing waits on @{me}.")?;
        return Ok(());
    }
    let zone = hub.zone();
    let rows: Vec<Vec<String>> = inbox
        .items
        .iter()
        .map(|i| {
            vec![
                i.kind.label().to_owned(),
                i.id.clone(),
                i.at.map(|t| short_time(t, &zone)).unwrap_or_default(),
                i.title.clone(),
                i.detail.clone(),
            ]
        })
        .collect();
    print_table(&["KIND", "ID", "WHEN", "TITLE", "WHAT"], &rows)?;
    let n = |k| inbox.count(k);
    outln!(
        "\n{} waiting on @{me}: {} approval(s), {} question(s), {} mention(s), {} brief change(s). \
         `spoke inbox seen` clears mentions and changes.",
        inbox.items.len(),
        n(InboxKind::Approval),
        n(InboxKind::Question),
        n(InboxKind::Mention),
        n(InboxKind::Assigned),
    )?;
    Ok(())
}
