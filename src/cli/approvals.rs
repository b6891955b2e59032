//! `spoke approvals ...`, `spoke approve`, `spoke reject`, `spoke request-changes`.

use super::Ctx;
use super::output::{outln, print_json, print_table};
use crate::model::approval::{Decision, Stage, StageMode, Subject};
use crate::model::input::InputError;
use crate::service::approvals::{ApprovalView, status_name};
use anyhow::Result;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// Requests, open ones first
    List {
        /// Only those waiting on my decision
        #[arg(long)]
        mine: bool,
    },
    /// A request with its stages, reviewers and decisions
    Show { id: String },
    /// Ask for a decision on an asset version
    Request {
        /// ASSET_ID or ASSET_ID@VERSION (versions count from 1; default the latest)
        #[arg(long)]
        asset: String,
        /// Reviewers of a single stage: handles or role:NAME, comma-separated
        #[arg(long, value_delimiter = ',', conflicts_with = "stage")]
        reviewers: Vec<String>,
        /// A stage as NAME=a,b (repeat for stages that run in order)
        #[arg(long)]
        stage: Vec<String>,
        /// What the reviewers are asked
        #[arg(long)]
        title: Option<String>,
        /// When the decision is due (2026-12-01T17:00, in your zone, or with [Zone])
        #[arg(long)]
        deadline: Option<String>,
        /// Stages (by name) whose reviewers only comment and do not hold the request
        #[arg(long, value_delimiter = ',')]
        comment_only: Vec<String>,
    },
    /// Withdraw my decision while the request is open
    Revoke { id: String },
}

pub fn run(ctx: &Ctx, cmd: ApprovalsCommand) -> Result<()> {
    let mut hub = ctx.open_hub()?;
    match cmd {
        ApprovalsCommand::List { mine } => {
            let list = hub.approvals(mine)?;
            if ctx.json {
                let rows: Vec<_> = list.iter().map(summary_json).collect();
                return print_json(&rows);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|v| {
                    vec![
                        v.id.clone(),
                        status_name(v.status),
                        subject_text(v.subject.as_ref()),
                        format!("{}/{}", v.stage + 1, v.stages.len()),
                        v.waiting_on
                            .iter()
                            .map(|r| format!("@{r}"))
                            .collect::<Vec<_>>()
                            .join(" "),
                        v.title.clone(),
                    ]
                })
                .collect();
            print_table(
                &["ID", "STATUS", "SUBJECT", "STAGE", "WAITING ON", "TITLE"],
                &rows,
            )?;
            if list.is_empty() {
                outln!("(no approval requests)")?;
            }
            Ok(())
        }
        ApprovalsCommand::Show { id } => {
            let v = hub.approval(&id)?;
            if ctx.json {
                return print_json(&v);
            }
            outln!("{}  {}  {}", v.id, status_name(v.status), v.title)?;
            outln!("subject    {}", subject_text(v.subject.as_ref()))?;
            outln!("requested  @{}", v.requested_by.clone().unwrap_or_default())?;
            if !v.choices.is_empty() {
                let asset = match &v.subject {
                    Some(Subject::AssetVersion { asset, .. }) => asset.as_str(),
                    _ => "",
                };
                let listed: Vec<String> =
                    v.choices.iter().map(|c| format!("{asset}@{c}")).collect();
                outln!(
                    "choices    {} (approve one: spoke approve {} --pick N)",
                    listed.join(", "),
                    v.id
                )?;
            }
            if let Some(version) = v.approved_version {
                outln!("approved   version {version}")?;
            }
            for (i, stage) in v.evaluation.stages.iter().enumerate() {
                let marker = if i == v.stage && !v.status.is_closed() {
                    "→"
                } else {
                    " "
                };
                let name = v.stages.get(i).map(|s| s.name.as_str()).unwrap_or("");
                let people: Vec<String> = stage
                    .iter()
                    .map(|(r, d)| match d {
                        Some(d) => {
                            format!("@{r}: {}", crate::service::approvals::decision_label(*d))
                        }
                        None => format!("@{r}: waiting"),
                    })
                    .collect();
                outln!("{marker} stage {} {name}: {}", i + 1, people.join(", "))?;
            }
            for d in &v.decisions {
                let what = d
                    .decision
                    .map(crate::service::approvals::decision_label)
                    .unwrap_or_else(|| "revoked".into());
                let comment = d
                    .comment
                    .as_deref()
                    .map(|c| format!(": {c}"))
                    .unwrap_or_default();
                outln!("  @{} {what} (stage {}){comment}", d.reviewer, d.stage + 1)?;
            }
            Ok(())
        }
        ApprovalsCommand::Request {
            asset,
            reviewers,
            stage,
            title,
            deadline,
            comment_only,
        } => {
            let (asset_id, version) = match asset.split_once('@') {
                Some((a, v)) => (
                    a.to_owned(),
                    Some(v.parse::<u32>().map_err(|_| {
                        InputError::new(format!("bad version `{v}` in --asset: use ASSET_ID@2"))
                    })?),
                ),
                None => (asset.clone(), None),
            };
            let asset_id = hub.resolve_id(crate::model::EntityKind::Asset, &asset_id, "a")?;
            let versions = hub
                .replica()
                .items(&crate::model::EntityRef::new(
                    crate::model::EntityKind::Asset,
                    asset_id.clone(),
                ))?
                .len() as u32;
            let version = version.unwrap_or(versions.max(1));
            if versions > 0 && (version == 0 || version > versions) {
                return Err(InputError::new(format!(
                    "asset {asset_id} has {versions} version(s); there is no version {version}"
                ))
                .into());
            }
            let stages = if stage.is_empty() {
                if reviewers.is_empty() {
                    return Err(InputError::new(
                        "name the reviewers: --reviewers a,b or --stage NAME=a,b",
                    )
                    .into());
                }
                vec![Stage {
                    name: "review".into(),
                    reviewers,
                    deadline: None,
                    mode: StageMode::Decide,
                }]
            } else {
                stage
                    .iter()
                    .map(|s| {
                        let (name, people) = s.split_once('=').ok_or_else(|| {
                            InputError::new(format!(
                                "`{s}` is not NAME=a,b, e.g. brand=maya,role:reviewer"
                            ))
                        })?;
                        Ok(Stage {
                            name: name.trim().to_owned(),
                            reviewers: people
                                .split(',')
                                .map(str::trim)
                                .filter(|p| !p.is_empty())
                                .map(str::to_owned)
                                .collect(),
                            deadline: None,
                            mode: StageMode::Decide,
                        })
                    })
                    .collect::<Result<Vec<_>, InputError>>()?
            };
            let deadline = match deadline {
                Some(d) => Some(crate::model::brief::Due::parse(&d, &hub.zone())?.at),
                None => None,
            };
            let mut stages = stages;
            for s in &mut stages {
                s.deadline = s.deadline.or(deadline);
                if comment_only.contains(&s.name) {
                    s.mode = StageMode::CommentOnly;
                }
            }
            let title = title.unwrap_or_else(|| format!("Review {asset_id} version {version}"));
            let v = hub.request_approval(
                &title,
                Subject::AssetVersion {
                    asset: asset_id,
                    version,
                },
                stages,
            )?;
            if ctx.json {
                print_json(&summary_json(&v))
            } else {
                outln!("{}", v.id)?;
                Ok(())
            }
        }
        ApprovalsCommand::Revoke { id } => {
            let v = hub.revoke_decision(&id)?;
            done(ctx, &v, "decision revoked")
        }
    }
}

/// `spoke approve`, `reject`, `request-changes`.
pub fn decide(ctx: &Ctx, id: &str, decision: Decision, comment: Option<&str>) -> Result<()> {
    decide_picking(ctx, id, decision, comment, None)
}

/// [`decide`], choosing one of the versions the request offers.
pub fn decide_picking(
    ctx: &Ctx,
    id: &str,
    decision: Decision,
    comment: Option<&str>,
    pick: Option<u32>,
) -> Result<()> {
    let mut hub = ctx.open_hub()?;
    let v = hub.decide_with_pick(id, decision, comment, pick)?;
    done(
        ctx,
        &v,
        &format!(
            "{} recorded",
            crate::service::approvals::decision_label(decision)
        ),
    )
}

fn done(ctx: &Ctx, v: &ApprovalView, what: &str) -> Result<()> {
    if ctx.json {
        return print_json(&summary_json(v));
    }
    outln!("{}: {what}; the request is {}", v.id, status_name(v.status))?;
    Ok(())
}

fn summary_json(v: &ApprovalView) -> serde_json::Value {
    serde_json::json!({
        "id": v.id,
        "title": v.title,
        "subject": v.subject,
        "status": v.status,
        "stage": v.stage + 1,
        "stages": v.stages.len(),
        "waiting_on": v.waiting_on,
        "requested_by": v.requested_by,
        "choices": v.choices,
        "approved_version": v.approved_version,
    })
}

fn subject_text(s: Option<&Subject>) -> String {
    s.map(Subject::label).unwrap_or_else(|| "-".into())
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Every audit entry in hub order, then those not yet on the hub
    Log,
    /// Recompute the hash chain and report the first broken link
    Verify,
    /// Ops the hub's rules refused, with the rule each broke
    Refused,
}

pub fn audit(ctx: &Ctx, cmd: AuditCommand) -> Result<()> {
    let hub = ctx.open_hub()?;
    let replica = hub.replica();
    match cmd {
        AuditCommand::Log => {
            let chain = replica.audit_chain()?;
            let pending: Vec<crate::model::Op> = replica
                .pending()?
                .into_iter()
                .filter(|op| op.entity.kind == crate::model::EntityKind::Audit)
                .collect();
            let entry = |op: &crate::model::Op| match &op.change {
                crate::model::Change::Append(v) => v.clone(),
                _ => serde_json::Value::Null,
            };
            let at = |op: &crate::model::Op| {
                jiff::Timestamp::from_millisecond(op.hlc.wall_ms as i64)
                    .map(|t| t.to_string())
                    .unwrap_or_default()
            };
            let mut rows: Vec<serde_json::Value> = chain
                .iter()
                .map(|l| {
                    serde_json::json!({
                        "seq": l.seq,
                        "at": at(&l.op),
                        "actor": l.op.actor,
                        "entry": entry(&l.op),
                        "prev": crate::model::ids::hex(&l.prev),
                        "hash": crate::model::ids::hex(&l.hash),
                    })
                })
                .collect();
            rows.extend(pending.iter().map(|op| {
                serde_json::json!({
                    "seq": null,
                    "at": at(op),
                    "actor": op.actor,
                    "entry": entry(op),
                    "pending": true,
                })
            }));
            if ctx.json {
                return print_json(&rows);
            }
            for r in &rows {
                let seq = r["seq"]
                    .as_u64()
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "pending".into());
                let hash = r["hash"].as_str().map(|h| &h[..12]).unwrap_or("-");
                outln!(
                    "{seq:>8}  {}  @{}  {}  {}",
                    r["at"].as_str().unwrap_or(""),
                    r["actor"].as_str().unwrap_or(""),
                    hash,
                    r["entry"]
                )?;
            }
            if rows.is_empty() {
                outln!("(no audit entries)")?;
            }
            Ok(())
        }
        AuditCommand::Refused => {
            let refused = replica.refused()?;
            if ctx.json {
                return print_json(&refused);
            }
            if refused.is_empty() {
                outln!("No refused ops.")?;
                return Ok(());
            }
            for r in &refused {
                let at = r
                    .seq
                    .map(|s| format!("seq {s}"))
                    .unwrap_or_else(|| "not sequenced".into());
                outln!(
                    "{} by @{} on {} ({}), {at}, refused by the {}: rule {}\n    {}",
                    r.op,
                    r.actor,
                    r.entity,
                    r.change,
                    r.by,
                    r.rule,
                    r.message
                )?;
            }
            Ok(())
        }
        AuditCommand::Verify => {
            let check = replica.verify_audit()?;
            let pending = replica
                .pending()?
                .iter()
                .filter(|op| op.entity.kind == crate::model::EntityKind::Audit)
                .count();
            if ctx.json {
                print_json(&serde_json::json!({
                    "ok": check.broken.is_none(),
                    "entries": check.entries,
                    "head": check.head.map(|h| crate::model::ids::hex(&h)),
                    "broken": check.broken.as_ref().map(|(seq, why)| serde_json::json!({"seq": seq, "reason": why})),
                    "pending": pending,
                }))?;
            }
            match check.broken {
                Some((_, why)) => Err(anyhow::anyhow!(why)),
                None => {
                    if !ctx.json {
                        let head = check
                            .head
                            .map(|h| crate::model::ids::hex(&h)[..16].to_owned())
                            .unwrap_or_else(|| "-".into());
                        outln!(
                            "audit chain verified: {} entries, head {head}; {pending} not yet on the hub",
                            check.entries
                        )?;
                    }
                    Ok(())
                }
            }
        }
    }
}
