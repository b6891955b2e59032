//! `spoke hub join`, `spoke hub relays`, `spoke hub skills`, `spoke sync`,
//! `spoke status`.

use super::Ctx;
use super::output::{outln, print_json};
use crate::sync::{self, WatchEvent};
use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::json;
use spoke_relay::proto::Presence;

#[derive(Debug, Subcommand)]
pub enum HubCommand {
    /// Join a hub on a relay; works on a fresh --home (your identity comes from the token)
    #[command(
        after_help = "Several relays serving the same hub are tried in turn when one fails:\n  spoke hub join ws://a:7878/v1/hubs/HUB --relay ws://b:7878 --token TOKEN\n  spoke hub join ws://a:7878/v1/hubs/HUB,ws://b:7878 --token TOKEN"
    )]
    Join {
        /// The URL from your invite line (ws://HOST:PORT/v1/hubs/HUB_ID), or the relay's
        /// address (ws://HOST:PORT, wss://HOST): the relay then finds the token's hub.
        /// A comma-separated list names several relays of the hub
        #[arg(required_unless_present = "relay")]
        url: Option<String>,
        /// Another relay serving the same hub, tried when the ones before it fail
        /// (repeatable; comma-separated lists too)
        #[arg(long = "relay", value_name = "URL")]
        relay: Vec<String>,
        /// Your member token (spk_...)
        #[arg(long, env = "SPOKE_TOKEN")]
        token: String,
        /// Your IANA time zone, for your member record if the hub has none yet
        #[arg(long)]
        tz: Option<String>,
        /// Your display name, for your member record if the hub has none yet
        #[arg(long)]
        name: Option<String>,
        /// Also trust this CA certificate (PEM) for a wss:// relay
        #[arg(long, value_name = "PEM")]
        ca_file: Option<std::path::PathBuf>,
    },
    /// The relays serving this hub, tried in turn when one fails; lists them when given no
    /// subcommand
    #[command(
        args_conflicts_with_subcommands = true,
        after_help = "Examples:\n  spoke hub relays\n  spoke hub relays add ws://b.example:7878\n  spoke hub relays remove ws://a.example:7878"
    )]
    Relays {
        #[command(subcommand)]
        action: Option<RelaysCommand>,
    },
    /// The channel-to-skill table the assignment scorer reads deliverables
    /// with (linkedin -> social); lists it when given no subcommand. Leads edit it
    #[command(
        args_conflicts_with_subcommands = true,
        after_help = "Examples:\n  spoke hub skills\n  spoke hub skills set linkedin=social,copy\n  spoke hub skills unset linkedin"
    )]
    Skills {
        #[command(subcommand)]
        action: Option<SkillsCommand>,
    },
}

/// Changes to the list of relays this replica syncs through.
#[derive(Debug, Subcommand)]
pub enum RelaysCommand {
    /// List the relays in the order they are tried, marking the one in use
    List,
    /// Add relays of this hub after the ones listed (hub URLs or relay addresses)
    Add {
        /// One or more relay URLs (ws://HOST:PORT or ws://HOST:PORT/v1/hubs/HUB_ID;
        /// comma-separated lists too)
        #[arg(required = true, value_name = "URL")]
        urls: Vec<String>,
    },
    /// Stop using relays; at least one must stay
    Remove {
        /// One or more relay URLs as listed by `spoke hub relays`
        #[arg(required = true, value_name = "URL")]
        urls: Vec<String>,
    },
}

/// Edits of the hub's channel-to-skill table (a lead's, like the brand palette).
#[derive(Debug, Subcommand)]
pub enum SkillsCommand {
    /// List every channel and the skills it asks for, with where each entry comes from
    List,
    /// Map channels to skills for this hub: CHANNEL=skill1,skill2 (CHANNEL= maps to no skill)
    Set {
        /// One or more CHANNEL=SKILLS, e.g. linkedin=social,copy
        #[arg(required = true, value_name = "CHANNEL=SKILLS")]
        assignments: Vec<String>,
    },
    /// Drop the hub's entry for channels: a default channel gets its default skills back
    Unset {
        /// Channels to drop, e.g. linkedin
        #[arg(required = true, value_name = "CHANNEL")]
        channels: Vec<String>,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn hub(ctx: &Ctx, cmd: HubCommand) -> Result<()> {
    match cmd {
        HubCommand::Skills { action } => skills(ctx, action.unwrap_or(SkillsCommand::List)),
        HubCommand::Relays { action } => relays(ctx, action.unwrap_or(RelaysCommand::List)),
        HubCommand::Join {
            url,
            relay,
            token,
            tz,
            name,
            ca_file,
        } => {
            if let Some(tz) = &tz {
                crate::model::input::parse_zone(tz)?;
            }
            let urls: Vec<String> = url.into_iter().chain(relay).collect();
            let rt = runtime()?;
            let (welcome, mut report) = rt.block_on(sync::join_relays(
                &ctx.home,
                &urls,
                &token,
                ca_file.as_deref(),
            ))?;
            // A member new to the hub introduces themselves: zone and name.
            // Their role came from the token, through the hub's log.
            let mut hub = crate::service::Hub::open(&ctx.home, ctx.config.timezone.as_deref())?;
            let zone = tz
                .or_else(|| ctx.config.timezone.clone())
                .unwrap_or_else(|| "UTC".to_owned());
            if hub.introduce(&zone, name.as_deref())? {
                drop(hub);
                let second = rt.block_on(sync::sync_once(&ctx.home))?;
                report.pushed += second.pushed;
                report.pulled += second.pulled;
                report.cursor = second.cursor;
                report.refused.extend(second.refused);
            }
            if ctx.json {
                return print_json(&json!({
                    "hub": welcome.hub,
                    "hub_name": welcome.hub_name,
                    "member": welcome.member,
                    "role": welcome.role,
                    "cursor": report.cursor,
                    "pulled": report.pulled,
                    "pushed": report.pushed,
                }));
            }
            outln!(
                "Joined \"{}\" as @{} ({}): {} ops pulled, {} pushed, at seq {}.",
                welcome.hub_name,
                welcome.member,
                welcome.role,
                report.pulled,
                report.pushed,
                report.cursor
            )?;
            refusals_to_error(&report.refused)
        }
    }
}

pub fn sync(ctx: &Ctx, watch: bool) -> Result<()> {
    let rt = runtime()?;
    if !watch {
        let mut report = rt.block_on(sync::sync_once(&ctx.home))?;
        // Decisions that arrived may close requests whose effects are due.
        let mut hub = crate::service::Hub::open(&ctx.home, ctx.config.timezone.as_deref())?;
        if hub.reconcile_approvals()? > 0 {
            drop(hub);
            let again = rt.block_on(sync::sync_once(&ctx.home))?;
            report.pushed += again.pushed;
            report.pulled += again.pulled;
            report.cursor = again.cursor;
            report.head = again.head;
            report.refused.extend(again.refused);
        }
        if ctx.json {
            print_json(&json!({
                "pulled": report.pulled,
                "pushed": report.pushed,
                "cursor": report.cursor,
                "head": report.head,
                "gaps_refetched": report.gaps_refetched,
                "refused": report.refused.iter().map(|r| json!({
                    "op": r.op.to_string(), "rule": r.rule, "message": r.message,
                })).collect::<Vec<_>>(),
            }))?;
        } else {
            outln!(
                "synced: {} ops pulled, {} pushed, at seq {} of {}",
                report.pulled,
                report.pushed,
                report.cursor,
                report.head
            )?;
        }
        return refusals_to_error(&report.refused);
    }
    let home = ctx.home.clone();
    let json = ctx.json;
    rt.block_on(async move {
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            spoke_relay::server::shutdown_signal().await;
            let _ = stop_tx.send(true);
        });
        let tz = crate::service::Hub::open(&home, None)
            .ok()
            .map(|h| h.zone());
        let presence = Presence {
            member: String::new(),
            status: spoke_relay::proto::PresenceStatus::Online,
            tz,
            viewing: None,
        };
        sync::watch(&home, stop, Some(presence), None, |event| {
            let line = match event {
                WatchEvent::Connected(w) if json => {
                    json!({"event": "connected", "hub_name": w.hub_name, "head": w.head})
                        .to_string()
                }
                WatchEvent::Connected(w) => {
                    format!(
                        "connected to \"{}\" as @{} (head {})",
                        w.hub_name, w.member, w.head
                    )
                }
                WatchEvent::Switching { from, to, error } if json => {
                    json!({"event": "switching", "from": from, "to": to, "error": error})
                        .to_string()
                }
                WatchEvent::Switching { from, to, error } => {
                    format!("{error}; switching from {from} to {to}")
                }
                WatchEvent::Retrying { error, wait } if json => {
                    json!({"event": "retrying", "error": error, "wait_ms": wait.as_millis() as u64})
                        .to_string()
                }
                WatchEvent::Retrying { error, wait } => {
                    format!("{error}; retrying in {:.1} s", wait.as_secs_f64())
                }
            };
            eprintln!("{line}");
        })
        .await
    })
}

/// Local ops the hub refused make the command fail (exit 1), each named
/// with its rule; they were taken back from the replica.
fn refusals_to_error(refused: &[sync::RefusedByHub]) -> Result<()> {
    if refused.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = refused.iter().map(|r| format!("  {}", r.message)).collect();
    anyhow::bail!(
        "the hub refused {} local change(s), which were taken back:\n{}\n(`spoke audit refused` lists every refusal)",
        refused.len(),
        lines.join("\n")
    )
}

pub fn status(ctx: &Ctx) -> Result<()> {
    let s = sync::status(&ctx.home)?;
    if ctx.json {
        return print_json(&s);
    }
    match &s.url {
        Some(url) => {
            let name = s.hub_name.as_deref().unwrap_or("?");
            outln!("hub        \"{name}\" at {url}")?;
            if s.relays.len() > 1 {
                outln!("relays     {}", s.relays.join(", "))?;
            }
            if let Some(relay) = &s.relay {
                outln!("relay      {relay} (last used)")?;
            }
            outln!(
                "connection {}",
                if s.connected {
                    "connected"
                } else {
                    "not connected"
                }
            )?;
            outln!(
                "cursor     {} of {}",
                s.cursor,
                s.head.map(|h| h.to_string()).unwrap_or_else(|| "?".into())
            )?;
        }
        None => outln!("hub        local only (not joined to a relay)")?,
    }
    outln!("member     @{}", s.member.as_deref().unwrap_or("?"))?;
    outln!("pending    {} local ops not yet acknowledged", s.pending)?;
    if let Some(t) = &s.last_contact {
        outln!("last sync  {t}")?;
    }
    if let Some(e) = &s.last_error {
        outln!("last error {e}")?;
    }
    Ok(())
}

fn relays(ctx: &Ctx, cmd: RelaysCommand) -> Result<()> {
    match cmd {
        RelaysCommand::List => {
            let list = sync::relays(&ctx.home)?;
            if ctx.json {
                return print_json(&list);
            }
            if list.relays.is_empty() {
                outln!(
                    "no relays: this replica has not joined a hub (`spoke hub join URL --token TOKEN`)"
                )?;
                return Ok(());
            }
            for url in &list.relays {
                let mark = if list.in_use.as_deref() == Some(url.as_str()) {
                    "  (in use)"
                } else {
                    ""
                };
                outln!("{url}{mark}")?;
            }
            Ok(())
        }
        RelaysCommand::Add { urls } => {
            let added = sync::add_relays(&ctx.home, &urls)?;
            if ctx.json {
                return print_json(&json!({ "added": added }));
            }
            if added.is_empty() {
                outln!("no new relay: every one given is already listed")?;
                return Ok(());
            }
            for url in added {
                outln!("added {url}")?;
            }
            Ok(())
        }
        RelaysCommand::Remove { urls } => {
            let left = sync::remove_relays(&ctx.home, &urls)?;
            if ctx.json {
                return print_json(&json!({ "relays": left }));
            }
            outln!("relays now: {}", left.join(", "))?;
            Ok(())
        }
    }
}

fn skills(ctx: &Ctx, cmd: SkillsCommand) -> Result<()> {
    let mut hub = ctx.open_hub()?;
    match cmd {
        SkillsCommand::List => {
            let table = hub.channel_skills()?;
            if ctx.json {
                return print_json(&table.entries().collect::<Vec<_>>());
            }
            let rows: Vec<Vec<String>> = table
                .entries()
                .map(|e| {
                    vec![
                        e.channel.clone(),
                        crate::model::serde_name(e.source),
                        if e.skills.is_empty() {
                            "(none)".to_owned()
                        } else {
                            e.skills.join(", ")
                        },
                    ]
                })
                .collect();
            super::output::print_table(&["CHANNEL", "SOURCE", "SKILLS"], &rows)
        }
        SkillsCommand::Set { assignments } => {
            // Every assignment is read before any is written.
            let parsed = assignments
                .iter()
                .map(|a| crate::model::skills::parse_assignment(a))
                .collect::<Result<Vec<_>, _>>()?;
            for (channel, skills) in parsed {
                let (channel, skills) = hub.set_channel_skills(&channel, &skills)?;
                let shown = if skills.is_empty() {
                    "no skill".to_owned()
                } else {
                    skills.join(", ")
                };
                outln!("{channel} -> {shown}")?;
            }
            Ok(())
        }
        SkillsCommand::Unset { channels } => {
            for channel in channels {
                let channel = hub.unset_channel_skills(&channel)?;
                let now = hub
                    .channel_skills()?
                    .skills_for(&channel)
                    .map(|s| s.join(", "))
                    .filter(|s| !s.is_empty())
                    .map_or("no skill".to_owned(), |s| format!("the default: {s}"));
                outln!("{channel} unset; it now maps to {now}")?;
            }
            Ok(())
        }
    }
}
