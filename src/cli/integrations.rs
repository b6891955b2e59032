//! `spoke integrations`: connectors to Jira, Asana and webhooks, the
//! pusher, the outbox, and the push loop itself.

use super::Ctx;
use super::output::{outln, print_json, print_table};
use crate::integrations::{pusher, secrets};
use crate::model::hlc::wall_now_ms;
use crate::model::integration::{ConnectorKind, DeliveryStatus, HookEvent, Lease, PUSH_ENTITY};
use crate::model::{EntityKind, InputError};
use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::json;
use std::collections::BTreeMap;

#[derive(Debug, Subcommand)]
pub enum IntegrationsCommand {
    /// Connectors, the pusher and its lease, and the outbox: pending items
    /// and failures with their reasons
    Status,
    /// Add (or replace) a connector; a lead's. Secrets are not set here:
    /// run `spoke integrations secret NAME` on the pushing machine
    #[command(
        after_help = "Settings:\n  jira     url=https://SITE.atlassian.net email=ME@EXAMPLE.COM project=KEY [issue_type=Task] [labels=a,b]\n  asana    workspace=GID project=GID [url=https://app.asana.com/api/1.0]\n  webhook  url=https://… (events: brief.created, brief.status, approval.closed, asset.approved, task.created)\n\nExamples:\n  spoke integrations add jira --set url=https://nw.atlassian.net --set email=ops@nw.example --set project=NW\n  spoke integrations add asana --set workspace=123 --set project=456\n  spoke integrations add webhook hooks --set url=https://hooks.example/spoke --event brief.created --event approval.closed"
    )]
    Add {
        /// jira, asana or webhook
        kind: String,
        /// The connector's name (default: the kind)
        name: Option<String>,
        /// A setting, KEY=VALUE (repeat for each)
        #[arg(long = "set", value_name = "KEY=VALUE")]
        settings: Vec<String>,
        /// Webhooks: an event to send (repeat; default every event)
        #[arg(long = "event", value_name = "EVENT")]
        events: Vec<String>,
    },
    /// Try a connector with this machine's secret, changing nothing: Jira and
    /// Asana say who the token is and whether the project exists; a webhook
    /// receives a signed `ping` event
    Test { name: String },
    /// Remove a connector (its delivered keys stay on the tasks)
    Remove { name: String },
    /// Map a member to their account in a tracker (Jira account id, Asana
    /// user gid), so tasks assigned in Spoke are assigned there
    Member {
        /// The connector
        name: String,
        /// The member's handle
        handle: String,
        /// The account id or user gid (leave out with --remove)
        account: Option<String>,
        /// Remove the mapping
        #[arg(long, conflicts_with = "account")]
        remove: bool,
    },
    /// Store a connector's secret on this machine (read from standard input):
    /// the Jira API token, the Asana personal access token or the webhook
    /// signing secret (whsec_…). Secrets never leave this machine
    #[command(
        after_help = "Examples:\n  printf %s \"$JIRA_TOKEN\" | spoke integrations secret jira\n  spoke integrations secret hooks --remove\n\nThe environment variable SPOKE_SECRET_<NAME> overrides the stored secret."
    )]
    Secret {
        name: String,
        /// Remove the stored secret
        #[arg(long)]
        remove: bool,
    },
    /// Name the member whose replica delivers the outbox (one replica of it
    /// holds the push lease at a time); a lead's
    Pusher {
        /// The member's handle
        handle: Option<String>,
        /// How often trackers are read back, in seconds (default 300)
        #[arg(long, value_name = "SECS")]
        poll: Option<u64>,
    },
    /// Put a failed or dropped outbox item back in the queue
    Retry {
        /// The delivery id (d-…)
        id: String,
    },
    /// Take an outbox item out of the queue for good
    Drop {
        /// The delivery id (d-…)
        id: String,
    },
    /// Deliver the outbox as the hub's pusher: create and update tracker
    /// issues, send webhooks, read trackers back. Runs until stopped
    Push {
        /// Drain what is due (waiting for retries due within 30 s), read
        /// trackers back once, and exit
        #[arg(long)]
        once: bool,
    },
}

pub fn integrations(ctx: &Ctx, cmd: IntegrationsCommand) -> Result<()> {
    match cmd {
        IntegrationsCommand::Status => status(ctx),
        IntegrationsCommand::Add {
            kind,
            name,
            settings,
            events,
        } => {
            let kind = ConnectorKind::parse(&kind)?;
            let name = name.unwrap_or_else(|| kind.name().to_owned());
            let mut map = BTreeMap::new();
            for s in &settings {
                let (k, v) = s.split_once('=').ok_or_else(|| {
                    InputError::new(format!("`{s}` is not KEY=VALUE, e.g. project=NW"))
                })?;
                map.insert(k.trim().to_owned(), v.trim().to_owned());
            }
            let events = events
                .iter()
                .map(|e| HookEvent::parse(e))
                .collect::<Result<Vec<_>, _>>()?;
            let mut hub = ctx.open_hub()?;
            let c = hub.add_connector(&name, kind, &map, &events)?;
            if ctx.json {
                return print_json(&c);
            }
            outln!("connector {} ({}) saved", c.name, c.kind.name())?;
            if secrets::secret(&ctx.home, &c.name)?.is_none() {
                outln!(
                    "next, on the pushing machine: spoke integrations secret {} (reads the {} from standard input)",
                    c.name,
                    match c.kind {
                        ConnectorKind::Jira => "API token",
                        ConnectorKind::Asana => "personal access token",
                        ConnectorKind::Webhook => "signing secret",
                    }
                )?;
            }
            Ok(())
        }
        IntegrationsCommand::Test { name } => {
            let hub = ctx.open_hub()?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let said = rt.block_on(pusher::check_connector(&hub, &ctx.home, &name))?;
            if ctx.json {
                return print_json(&json!({"connector": name, "ok": true, "detail": said}));
            }
            outln!("{name}: {said}")?;
            Ok(())
        }
        IntegrationsCommand::Remove { name } => {
            ctx.open_hub()?.remove_connector(&name)?;
            outln!("connector {name} removed")?;
            Ok(())
        }
        IntegrationsCommand::Member {
            name,
            handle,
            account,
            remove,
        } => {
            if account.is_none() && !remove {
                return Err(InputError::new(
                    "give the account id (or --remove to drop the mapping)",
                )
                .into());
            }
            ctx.open_hub()?
                .map_connector_member(&name, &handle, account.as_deref())?;
            match account {
                Some(a) => outln!("@{handle} is {a} in {name}")?,
                None => outln!("@{handle} is no longer mapped in {name}")?,
            }
            Ok(())
        }
        IntegrationsCommand::Secret { name, remove } => {
            if remove {
                secrets::store(&ctx.home, &name, None)?;
                outln!("secret for {name} removed from this machine")?;
                return Ok(());
            }
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the secret from standard input")?;
            secrets::store(&ctx.home, &name, Some(&line))?;
            outln!(
                "secret for {name} stored in {}",
                secrets::secrets_path(&ctx.home).display()
            )?;
            Ok(())
        }
        IntegrationsCommand::Pusher { handle, poll } => {
            let mut hub = ctx.open_hub()?;
            hub.set_pusher(handle.as_deref(), poll)?;
            let s = hub.push_settings()?;
            outln!(
                "pusher: {}; trackers read back every {} s",
                s.pusher
                    .map(|p| format!("@{p}"))
                    .unwrap_or_else(|| "none".into()),
                s.poll_secs
            )?;
            Ok(())
        }
        IntegrationsCommand::Retry { id } => {
            let d = ctx.open_hub()?.retry_delivery(&id)?;
            outln!("{} is queued again", d.id)?;
            Ok(())
        }
        IntegrationsCommand::Drop { id } => {
            let d = ctx.open_hub()?.drop_delivery(&id)?;
            outln!("{} dropped", d.id)?;
            Ok(())
        }
        IntegrationsCommand::Push { once } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let json_out = ctx.json;
            let report = rt.block_on(async {
                tokio::select! {
                    r = pusher::run(&ctx.home, pusher::PushOptions { once }, |line| {
                        if !json_out {
                            let _ = outln!("{line}");
                        }
                    }) => r.map(Some),
                    _ = spoke_relay::server::shutdown_signal() => Ok(None),
                }
            })?;
            let Some(report) = report else {
                return Ok(());
            };
            if json_out {
                return print_json(&report);
            }
            outln!(
                "delivered {}, retrying {}, failed {}, updates queued {}, read back {}",
                report.delivered.len(),
                report.retrying.len(),
                report.failed.len(),
                report.updates_queued,
                report.mirrored
            )?;
            Ok(())
        }
    }
}

fn status(ctx: &Ctx) -> Result<()> {
    let hub = ctx.open_hub()?;
    let connectors = hub.connectors()?;
    let push = hub.push_settings()?;
    let outbox = hub.outbox()?;
    let lease = hub
        .replica()
        .confirmed_field(EntityKind::Integration, PUSH_ENTITY, "lease")?
        .as_ref()
        .and_then(Lease::read)
        .or(push.lease);
    let now = wall_now_ms();
    if ctx.json {
        return print_json(&json!({
            "connectors": connectors.iter().map(|c| json!({
                "name": c.name, "kind": c.kind, "settings": c.settings,
                "events": c.events, "members": c.members,
                "secret_here": secrets::secret(&ctx.home, &c.name).ok().flatten().is_some(),
            })).collect::<Vec<_>>(),
            "pusher": push.pusher,
            "poll_secs": push.poll_secs,
            "lease": lease.map(|l| json!({"client": l.client, "until": l.until, "live": l.until > now})),
            "outbox": outbox,
        }));
    }
    if connectors.is_empty() {
        outln!("No connectors yet: `spoke integrations add jira|asana|webhook …` (a lead's).")?;
    } else {
        let rows: Vec<Vec<String>> = connectors
            .iter()
            .map(|c| {
                let target = match c.kind {
                    ConnectorKind::Jira => format!(
                        "{} project {}",
                        c.setting("url").unwrap_or("-"),
                        c.setting("project").unwrap_or("-")
                    ),
                    ConnectorKind::Asana => format!(
                        "workspace {} project {}",
                        c.setting("workspace").unwrap_or("-"),
                        c.setting("project").unwrap_or("-")
                    ),
                    ConnectorKind::Webhook => format!(
                        "{} ({})",
                        c.setting("url").unwrap_or("-"),
                        c.events
                            .iter()
                            .map(|e| e.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                let secret = match secrets::secret(&ctx.home, &c.name) {
                    Ok(Some(_)) => "here",
                    _ => "not here",
                };
                vec![
                    c.name.clone(),
                    c.kind.name().to_owned(),
                    target,
                    format!("{} mapped", c.members.len()),
                    secret.to_owned(),
                ]
            })
            .collect();
        print_table(&["connector", "kind", "target", "members", "secret"], &rows)?;
    }
    let lease_text = match lease {
        Some(l) if l.until > now => format!(
            "held by client {} for {} s more",
            l.client,
            (l.until - now) / 1000
        ),
        Some(_) => "expired".to_owned(),
        None => "never claimed".to_owned(),
    };
    outln!(
        "\npusher: {}; lease {lease_text}; trackers read back every {} s",
        push.pusher
            .as_deref()
            .map(|p| format!("@{p}"))
            .unwrap_or_else(|| "none (a lead names one: spoke integrations pusher HANDLE)".into()),
        push.poll_secs
    )?;
    let count = |s: DeliveryStatus| outbox.iter().filter(|d| d.status == s).count();
    outln!(
        "outbox: {} pending, {} failed, {} delivered, {} dropped",
        count(DeliveryStatus::Pending),
        count(DeliveryStatus::Failed),
        count(DeliveryStatus::Done),
        count(DeliveryStatus::Dropped)
    )?;
    let open: Vec<Vec<String>> = outbox
        .iter()
        .filter(|d| matches!(d.status, DeliveryStatus::Pending | DeliveryStatus::Failed))
        .map(|d| {
            vec![
                d.id.clone(),
                crate::model::serde_name(d.status),
                d.connector.clone(),
                d.task.clone().unwrap_or_else(|| {
                    d.event
                        .as_ref()
                        .and_then(|e| e["type"].as_str())
                        .unwrap_or("-")
                        .to_owned()
                }),
                d.attempts.to_string(),
                d.last_error.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    if !open.is_empty() {
        outln!()?;
        print_table(
            &[
                "item",
                "status",
                "connector",
                "what",
                "attempts",
                "last error",
            ],
            &open,
        )?;
        outln!("\nretry: spoke integrations retry ID   drop: spoke integrations drop ID")?;
    }
    Ok(())
}
