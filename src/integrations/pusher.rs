//! The pusher: the one replica that drains the hub's outbox. It holds the
//! push lease (judged by the relay in seq order, so two replicas never
//! both hold it), delivers each due item, writes the result (the tracker's
//! key and link on the task) back as hub data, pushes later changes as
//! updates and reads the trackers' done-ness back onto the tasks.
//!
//! A create first looks the task up in the tracker by its marker, so one
//! cut short by a crash or a lost lease is adopted, not made twice.

use super::asana::Asana;
use super::jira::Jira;
use super::{External, PushError, TaskPayload, secrets, webhook};
use crate::model::hlc::wall_now_ms;
use crate::model::ids::new_entity_id;
use crate::model::integration::{
    Connector, ConnectorKind, Delivery, DeliveryAction, DeliveryStatus, ExternalLink, Lease,
    PUSH_ENTITY,
};
use crate::model::task::{Task, TaskStatus};
use crate::model::{Change, EntityKind, EntityRef};
use crate::service::Hub;
use anyhow::{Result, bail};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// How long a claimed lease lasts.
const LEASE_MS: u64 = 120_000;
/// Renew the lease when less than this is left.
const RENEW_BELOW_MS: u64 = 60_000;
/// Start no delivery with less than this left (a request may take 30 s).
const STOP_BELOW_MS: u64 = 40_000;
/// Attempts before an item is marked failed.
pub const MAX_ATTEMPTS: u32 = 10;
/// `--once` waits for retries due within this long.
const ONCE_WAIT_MS: u64 = 30_000;
/// `--once` tries one item at most this many times.
const ONCE_TRIES: u32 = 2;
/// The longest pause between attempts.
const MAX_BACKOFF_MS: u64 = 3_600_000;

#[derive(Debug, Clone, Copy, Default)]
pub struct PushOptions {
    /// One drain: deliver what is due (waiting for retries due within 30 s),
    /// read trackers back once, and return.
    pub once: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PushReport {
    pub delivered: Vec<Value>,
    pub failed: Vec<Value>,
    /// Attempts that will be tried again.
    pub retrying: Vec<Value>,
    /// Tasks whose done-ness came back from a tracker.
    pub mirrored: usize,
    /// Updates queued for tasks changed after their push.
    pub updates_queued: usize,
    pub notes: Vec<String>,
}

/// Drains the outbox until stopped (or once).
pub async fn run(home: &Path, opts: PushOptions, mut say: impl FnMut(&str)) -> Result<PushReport> {
    let mut state = RunState {
        report: PushReport::default(),
        last_poll: None,
        tried: BTreeMap::new(),
        limit: if opts.once { ONCE_TRIES } else { u32::MAX },
        quiet_note: None,
    };
    loop {
        let wait = match one_pass(home, opts, &mut state, &mut say).await {
            Ok(Some(wait)) => wait,
            Ok(None) => return Ok(state.report),
            Err(e) if opts.once => return Err(e),
            // Running as a service: a failed pass (hub unreachable, the
            // replica busy, no pusher named yet) is said once and retried.
            Err(e) => {
                state.note(&format!("{e:#}; retrying"), &mut say);
                Duration::from_secs(5)
            }
        };
        pause(wait).await;
    }
}

/// What one run keeps between passes.
struct RunState {
    report: PushReport,
    last_poll: Option<u64>,
    /// Items tried in this run, and how often (`--once` stops retrying them).
    tried: BTreeMap<String, u32>,
    limit: u32,
    /// The last note said, so a waiting loop does not repeat itself.
    quiet_note: Option<String>,
}

impl RunState {
    fn note(&mut self, text: &str, say: &mut impl FnMut(&str)) {
        if self.quiet_note.as_deref() != Some(text) {
            say(text);
            if !self.report.notes.iter().any(|n| n == text) {
                self.report.notes.push(text.to_owned());
            }
            self.quiet_note = Some(text.to_owned());
        }
    }
}

/// One pass: sync, hold the lease, deliver, queue and deliver updates, read
/// trackers back. `Some(wait)` before the next pass; `None` when `--once`
/// is done.
async fn one_pass(
    home: &Path,
    opts: PushOptions,
    state: &mut RunState,
    say: &mut impl FnMut(&str),
) -> Result<Option<Duration>> {
    let joined = Hub::open(home, None)?.meta().hub_url.is_some();
    if joined && let Err(e) = crate::sync::sync_once(home).await {
        bail!("cannot reach the hub: {e:#}");
    }
    let lease_until = match ensure_lease(home, joined).await? {
        Ok(until) => until,
        Err(why) => {
            state.note(&why, say);
            return Ok((!opts.once).then_some(Duration::from_secs(5)));
        }
    };
    state.quiet_note = None;
    let report = &mut state.report;
    let mut pass = Pass {
        home,
        joined,
        lease_until,
        tried: &mut state.tried,
        limit: state.limit,
    };
    drain(&mut pass, report, say).await?;
    queue_updates(home, report, say)?;
    // Updates just queued go out in this pass too.
    drain(&mut pass, report, say).await?;
    let poll_every = Hub::open(home, None)?.push_settings()?.poll_secs * 1000;
    let now = wall_now_ms();
    if opts.once
        || state
            .last_poll
            .is_none_or(|t| now.saturating_sub(t) >= poll_every)
    {
        poll(home, lease_until, report, say).await?;
        state.last_poll = Some(now);
    }
    if joined {
        crate::sync::sync_once(home).await?;
    }
    let soonest = soonest_retry(&Hub::open(home, None)?, &state.tried, state.limit)?;
    let until_soonest = |at: u64| Duration::from_millis(at.saturating_sub(wall_now_ms()));
    if opts.once {
        return Ok(match soonest {
            Some(at) if at <= wall_now_ms() + ONCE_WAIT_MS => Some(until_soonest(at)),
            _ => None,
        });
    }
    Ok(Some(
        soonest
            .map(until_soonest)
            .unwrap_or(Duration::from_secs(2))
            .clamp(Duration::from_millis(200), Duration::from_secs(2)),
    ))
}

async fn pause(d: Duration) {
    tokio::time::sleep(d).await;
}

/// The earliest `next_at` of a pending item this run may still try.
fn soonest_retry(hub: &Hub, tried: &BTreeMap<String, u32>, limit: u32) -> Result<Option<u64>> {
    Ok(hub
        .outbox()?
        .iter()
        .filter(|d| d.status == DeliveryStatus::Pending)
        .filter(|d| tried.get(&d.id).copied().unwrap_or(0) < limit)
        .map(|d| d.next_at.unwrap_or(0))
        .min())
}

/// Holds (claiming or renewing) the push lease: `Ok(until)` when this
/// replica holds it as the hub's log says, `Err(why)` when it must wait.
async fn ensure_lease(home: &Path, joined: bool) -> Result<Result<u64, String>> {
    if !joined {
        // A hub of one replica: nobody else could push.
        return Ok(Ok(u64::MAX));
    }
    let confirmed = |hub: &Hub| -> Result<Option<Lease>> {
        Ok(hub
            .replica()
            .confirmed_field(EntityKind::Integration, PUSH_ENTITY, "lease")?
            .as_ref()
            .and_then(Lease::read))
    };
    let mut hub = Hub::open(home, None)?;
    let me = hub.actor()?.to_owned();
    let client = hub.meta().client_id.0;
    match hub.push_settings()?.pusher {
        Some(p) if p == me => {}
        Some(p) => bail!(
            "@{me} is not this hub's pusher (@{p} is); a lead names it with `spoke integrations pusher HANDLE`"
        ),
        None => bail!(
            "this hub has no pusher yet; a lead names one with `spoke integrations pusher HANDLE`"
        ),
    }
    let now = wall_now_ms();
    match confirmed(&hub)? {
        Some(l) if l.client == client && l.until > now + RENEW_BELOW_MS => return Ok(Ok(l.until)),
        Some(l) if l.client != client && l.until > now => {
            return Ok(Err(format!(
                "another replica of @{me} (client {}) holds the push lease for {} s more; waiting",
                l.client,
                (l.until - now) / 1000
            )));
        }
        _ => {}
    }
    let claim = json!({"client": client, "until": now + LEASE_MS});
    hub.commit(vec![(
        EntityRef::new(EntityKind::Integration, PUSH_ENTITY),
        Change::Set(BTreeMap::from([("lease".to_owned(), claim)])),
    )])?;
    drop(hub);
    crate::sync::sync_once(home).await?;
    let hub = Hub::open(home, None)?;
    match confirmed(&hub)? {
        Some(l) if l.client == client && l.until > wall_now_ms() + STOP_BELOW_MS => Ok(Ok(l.until)),
        _ => Ok(Err(
            "the push lease went to another replica; waiting".to_owned()
        )),
    }
}

/// What one attempt came to.
enum Outcome {
    Done {
        result: Value,
        link: Option<(String, String, ExternalLink)>,
    },
    Retry {
        error: String,
        after: Option<Duration>,
    },
    Fail(String),
    /// A problem on this machine (a secret missing): the item is left as it is.
    Skip(String),
    /// Delivered in an earlier attempt; only its status is put back.
    Delivered,
}

/// One pass's settings and what it has tried.
struct Pass<'a> {
    home: &'a Path,
    joined: bool,
    lease_until: u64,
    tried: &'a mut BTreeMap<String, u32>,
    limit: u32,
}

async fn drain(
    pass: &mut Pass<'_>,
    report: &mut PushReport,
    say: &mut impl FnMut(&str),
) -> Result<()> {
    let (home, joined, lease_until) = (pass.home, pass.joined, pass.lease_until);
    let due: Vec<Delivery> = {
        let hub = Hub::open(home, None)?;
        let now = wall_now_ms();
        hub.outbox()?
            .into_iter()
            .filter(|d| d.is_due(now))
            .filter(|d| pass.tried.get(&d.id).copied().unwrap_or(0) < pass.limit)
            .collect()
    };
    for d in due {
        if lease_until < wall_now_ms().saturating_add(STOP_BELOW_MS) {
            break; // renew first
        }
        *pass.tried.entry(d.id.clone()).or_default() += 1;
        let mut hub = Hub::open(home, None)?;
        // Another pass may have settled it meanwhile.
        let d = hub.delivery(&d.id)?;
        if !d.is_due(wall_now_ms()) {
            continue;
        }
        // A result means it went out before: a replica that had not yet
        // seen the delivery enqueued the same item again (reconciling the
        // same approval), which set it back to pending. Never send twice.
        let outcome = if d.result.is_some() {
            Outcome::Delivered
        } else {
            attempt(&hub, home, &d).await
        };
        settle(&mut hub, &d, outcome, report, say)?;
        drop(hub);
        if joined {
            crate::sync::sync_once(home).await?;
        }
    }
    Ok(())
}

fn settle(
    hub: &mut Hub,
    d: &Delivery,
    outcome: Outcome,
    report: &mut PushReport,
    say: &mut impl FnMut(&str),
) -> Result<()> {
    let now = wall_now_ms();
    let attempts = d.attempts + 1;
    let mut fields: BTreeMap<String, Value> = BTreeMap::new();
    let mut changes = Vec::new();
    match outcome {
        Outcome::Skip(why) => {
            say(&format!("{}: {why}", d.id));
            if !report.notes.contains(&why) {
                report.notes.push(why);
            }
            return Ok(());
        }
        Outcome::Delivered => {
            say(&format!("{}: delivered before; not sent again", d.id));
            let fields = BTreeMap::from([
                ("status".to_owned(), json!(DeliveryStatus::Done)),
                ("next_at".to_owned(), Value::Null),
                ("last_error".to_owned(), Value::Null),
            ]);
            hub.commit(vec![(
                EntityRef::new(EntityKind::Delivery, d.id.clone()),
                Change::Set(fields),
            )])?;
            return Ok(());
        }
        Outcome::Done { result, link } => {
            say(&format!("{}: delivered {}", d.id, describe(&result)));
            fields.insert("status".into(), json!(DeliveryStatus::Done));
            fields.insert("result".into(), result.clone());
            fields.insert("done_at".into(), json!(now));
            fields.insert("last_error".into(), Value::Null);
            fields.insert("next_at".into(), Value::Null);
            if let Some((connector, task, link)) = link {
                changes.push((
                    EntityRef::new(EntityKind::Task, task),
                    Change::Set(BTreeMap::from([(
                        format!("external:{connector}"),
                        json!(link),
                    )])),
                ));
            }
            report
                .delivered
                .push(json!({"id": d.id, "connector": d.connector, "result": result}));
        }
        Outcome::Retry { error, after } if attempts < MAX_ATTEMPTS => {
            let wait = after
                .map(|a| a.as_millis() as u64)
                .unwrap_or_else(|| backoff_ms(attempts));
            say(&format!(
                "{}: {error}; attempt {attempts} of {MAX_ATTEMPTS}, next in {} s",
                d.id,
                wait.div_ceil(1000)
            ));
            fields.insert("next_at".into(), json!(now + wait));
            fields.insert("last_error".into(), json!(error));
            report
                .retrying
                .push(json!({"id": d.id, "connector": d.connector, "error": error}));
        }
        Outcome::Retry { error, .. } => {
            let error = format!("gave up after {attempts} attempts: {error}");
            say(&format!("{}: {error}", d.id));
            fields.insert("status".into(), json!(DeliveryStatus::Failed));
            fields.insert("last_error".into(), json!(error));
            report
                .failed
                .push(json!({"id": d.id, "connector": d.connector, "error": error}));
        }
        Outcome::Fail(error) => {
            say(&format!("{}: failed: {error}", d.id));
            fields.insert("status".into(), json!(DeliveryStatus::Failed));
            fields.insert("last_error".into(), json!(error));
            report
                .failed
                .push(json!({"id": d.id, "connector": d.connector, "error": error}));
        }
    }
    fields.insert("attempts".into(), json!(attempts));
    changes.insert(
        0,
        (
            EntityRef::new(EntityKind::Delivery, d.id.clone()),
            Change::Set(fields),
        ),
    );
    hub.commit(changes)?;
    Ok(())
}

fn describe(result: &Value) -> String {
    match (result["key"].as_str(), result["url"].as_str()) {
        (Some(k), Some(u)) => format!("{k} {u}"),
        (Some(k), None) => k.to_owned(),
        _ => result["status"]
            .as_u64()
            .map(|s| format!("(HTTP {s})"))
            .unwrap_or_default(),
    }
}

/// 2 s, 4 s, 8 s, … up to an hour.
fn backoff_ms(attempts: u32) -> u64 {
    2_000u64
        .saturating_mul(1u64 << attempts.saturating_sub(1).min(20))
        .min(MAX_BACKOFF_MS)
}

/// A tracker client built from a connector and this machine's secret.
enum Tracker {
    Jira(Jira),
    Asana(Asana),
}

impl Tracker {
    fn of(home: &Path, c: &Connector) -> Result<Tracker, String> {
        let secret = secrets::secret(home, &c.name)
            .map_err(|e| format!("{e:#}"))?
            .ok_or_else(|| {
                format!(
                    "connector {} has no secret on this machine: `spoke integrations secret {}` (or ${})",
                    c.name,
                    c.name,
                    secrets::env_var(&c.name)
                )
            })?;
        let need = |key: &str| {
            c.setting(key)
                .map(str::to_owned)
                .ok_or_else(|| format!("connector {} has no `{key}` setting", c.name))
        };
        match c.kind {
            ConnectorKind::Jira => Ok(Tracker::Jira(Jira {
                connector: c.name.clone(),
                base_url: need("url")?,
                email: need("email")?,
                token: secret,
                project_key: need("project")?,
                issue_type: c.setting("issue_type").unwrap_or("Task").to_owned(),
            })),
            ConnectorKind::Asana => Ok(Tracker::Asana(Asana {
                connector: c.name.clone(),
                base_url: c
                    .setting("url")
                    .unwrap_or("https://app.asana.com/api/1.0")
                    .to_owned(),
                token: secret,
                workspace: need("workspace")?,
                project: need("project")?,
            })),
            ConnectorKind::Webhook => Err(format!("connector {} is a webhook", c.name)),
        }
    }

    async fn create(&self, t: &TaskPayload) -> Result<External, PushError> {
        match self {
            Tracker::Jira(j) => j.create(t).await,
            Tracker::Asana(a) => a.create(t).await,
        }
    }
    async fn update(&self, key: &str, t: &TaskPayload) -> Result<(), PushError> {
        match self {
            Tracker::Jira(j) => j.update(key, t).await,
            Tracker::Asana(a) => a.update(key, t).await,
        }
    }
    async fn find(&self, marker: &str) -> Result<Option<External>, PushError> {
        match self {
            Tracker::Jira(j) => j.find(marker).await,
            Tracker::Asana(a) => a.find(marker).await,
        }
    }
    async fn is_done(&self, key: &str) -> Result<bool, PushError> {
        match self {
            Tracker::Jira(j) => j.is_done(key).await,
            Tracker::Asana(a) => a.is_done(key).await,
        }
    }
}

fn classify(e: PushError) -> Outcome {
    match e {
        PushError::RetryAfter { after, .. } => Outcome::Retry {
            error: e.to_string(),
            after: Some(after),
        },
        PushError::Transient { .. } => Outcome::Retry {
            error: e.to_string(),
            after: None,
        },
        PushError::Auth { .. } | PushError::Rejected { .. } => Outcome::Fail(e.to_string()),
    }
}

async fn attempt(hub: &Hub, home: &Path, d: &Delivery) -> Outcome {
    let connector = match hub.connector(&d.connector) {
        Ok(c) => c,
        Err(_) => return Outcome::Fail(format!("connector {} was removed", d.connector)),
    };
    match d.action {
        Some(DeliveryAction::Event) => {
            let Some(event) = &d.event else {
                return Outcome::Fail("the item carries no event".into());
            };
            let Some(url) = connector.setting("url") else {
                return Outcome::Fail(format!("connector {} has no url", connector.name));
            };
            let secret = match secrets::secret(home, &connector.name) {
                Ok(Some(s)) => s,
                Ok(None) => {
                    return Outcome::Skip(format!(
                        "connector {} has no signing secret on this machine: `spoke integrations secret {}` (or ${})",
                        connector.name,
                        connector.name,
                        secrets::env_var(&connector.name)
                    ));
                }
                Err(e) => return Outcome::Skip(format!("{e:#}")),
            };
            let event = match verify_event(hub, d, event) {
                Ok(e) => e,
                Err(why) => return Outcome::Fail(format!("not sent: {why}")),
            };
            let body = serde_json::to_vec(&event).unwrap_or_default();
            let ts = (wall_now_ms() / 1000) as i64;
            match webhook::send(&connector.name, url, &secret, &d.id, ts, &body).await {
                Ok(()) => Outcome::Done {
                    result: json!({"url": url}),
                    link: None,
                },
                Err(e) => classify(e),
            }
        }
        Some(action @ (DeliveryAction::Create | DeliveryAction::Update)) => {
            let tracker = match Tracker::of(home, &connector) {
                Ok(t) => t,
                Err(why) => return Outcome::Skip(why),
            };
            let Some(task_id) = &d.task else {
                return Outcome::Fail("the item names no task".into());
            };
            let task = match hub.task(task_id) {
                Ok(Some(t)) => t,
                Ok(None) => return Outcome::Fail(format!("task {task_id} no longer exists")),
                Err(e) => return Outcome::Skip(format!("{e:#}")),
            };
            let payload = payload(hub, &task, &connector);
            let sent = fingerprint(&payload);
            let existing = task.external.get(&connector.name).cloned();
            let external = match (existing, action) {
                (Some(link), _) => match tracker.update(&link.key, &payload).await {
                    Ok(()) => External {
                        key: link.key,
                        url: link.url,
                    },
                    Err(e) => return classify(e),
                },
                (None, DeliveryAction::Update) => {
                    return Outcome::Fail(format!(
                        "task {task_id} was never created in {}",
                        connector.name
                    ));
                }
                (None, _) => match tracker.find(&payload.marker).await {
                    Ok(Some(found)) => found,
                    Ok(None) => match tracker.create(&payload).await {
                        Ok(made) => made,
                        Err(e) => return classify(e),
                    },
                    Err(e) => return classify(e),
                },
            };
            let link = ExternalLink {
                key: external.key.clone(),
                url: external.url.clone(),
                sent,
                done: payload.done,
            };
            Outcome::Done {
                result: json!({"key": external.key, "url": external.url}),
                link: Some((connector.name.clone(), task.id.clone(), link)),
            }
        }
        None => Outcome::Fail("the item has no action this build knows".into()),
    }
}

/// Checks an event against the hub before it is signed and sent: any
/// member may enqueue an event with its change, so the pusher sends only
/// what the hub's own data bears out, and adds `by`, the member whose op
/// enqueued it as the relay verified it.
fn verify_event(hub: &Hub, d: &Delivery, event: &Value) -> Result<Value, String> {
    let replica = hub.replica();
    let err = |e: anyhow::Error| format!("{e:#}");
    let by = match replica
        .confirmed_creator(EntityKind::Delivery, &d.id)
        .map_err(|e| e.to_string())?
    {
        Some(by) => by,
        // A hub of one replica: its member made everything.
        None if hub.meta().hub_url.is_none() => hub.actor().map_err(err)?.to_owned(),
        None => return Err("the item has not reached the hub yet".into()),
    };
    let data = &event["data"];
    let text = |key: &str| data[key].as_str().unwrap_or_default().to_owned();
    let kind = event["type"].as_str().unwrap_or_default();
    let ok = match kind {
        "brief.created" => {
            let brief = text("brief");
            hub.brief(&brief).map_err(err)?;
            let creator = replica
                .confirmed_creator(EntityKind::Brief, &brief)
                .map_err(|e| e.to_string())?;
            creator.is_none_or(|c| c == by)
        }
        "brief.status" => {
            let brief = hub.brief(&text("brief")).map_err(err)?;
            let lead = hub
                .member(&by)
                .map_err(err)?
                .is_some_and(|m| m.has_role(crate::model::Role::Lead));
            lead || brief.requester.as_deref() == Some(by.as_str())
                || brief.created_by.as_deref() == Some(by.as_str())
                || brief.assignees.contains(&by)
        }
        "approval.closed" => hub
            .approval(&text("approval"))
            .map_err(err)?
            .status
            .is_closed(),
        "asset.approved" => {
            hub.asset(&text("asset")).map_err(err)?;
            let approval = hub.approval(&text("approval")).map_err(err)?;
            let about_it = matches!(
                &approval.subject,
                Some(crate::model::approval::Subject::AssetVersion { asset, .. })
                    if *asset == text("asset")
            );
            about_it && approval.status.lets_next_stage_start()
        }
        "task.created" => hub
            .task(&text("task"))
            .map_err(err)?
            .is_some_and(|t| t.brief.as_deref() == data["brief"].as_str()),
        other => return Err(format!("unknown event type `{other}`")),
    };
    if !ok {
        return Err(format!(
            "the hub does not bear out this {kind} event (enqueued by @{by})"
        ));
    }
    let mut event = event.clone();
    event["by"] = json!(by);
    Ok(event)
}

/// Tries a connector with this machine's secret, changing nothing in a
/// tracker: Jira and Asana are asked who the token is and whether the
/// project exists; a webhook receives a signed `ping` event.
pub async fn check_connector(hub: &Hub, home: &Path, name: &str) -> Result<String> {
    let c = hub.connector(name)?;
    if c.kind == ConnectorKind::Webhook {
        let secret = secrets::secret(home, &c.name)?.ok_or_else(|| {
            anyhow::anyhow!(
                "connector {} has no signing secret on this machine: `spoke integrations secret {}`",
                c.name,
                c.name
            )
        })?;
        let url = c
            .setting("url")
            .ok_or_else(|| anyhow::anyhow!("connector {} has no url", c.name))?;
        let now = wall_now_ms();
        let id = new_entity_id("ping");
        let body = json!({
            "type": "ping",
            "timestamp": jiff::Timestamp::from_millisecond(now as i64)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            "hub": hub.hub_id(),
            "data": {"connector": c.name},
        });
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        webhook::send(&c.name, url, &secret, &id, (now / 1000) as i64, &bytes).await?;
        return Ok(format!("{url} accepted a signed ping ({id})"));
    }
    let tracker = Tracker::of(home, &c).map_err(anyhow::Error::msg)?;
    Ok(match tracker {
        Tracker::Jira(j) => j.check().await?,
        Tracker::Asana(a) => a.check().await?,
    })
}

/// The task as a tracker receives it.
pub fn payload(hub: &Hub, task: &Task, c: &Connector) -> TaskPayload {
    let brief = task.brief.as_deref().and_then(|b| hub.brief(b).ok());
    let mut description = vec![task.title.clone()];
    if let Some(b) = &brief {
        description.push(format!("From the Spoke brief {}: {}", b.id, b.title));
        for (label, value) in [
            ("Objective", &b.objective),
            ("Audience", &b.audience),
            ("Key message", &b.key_message),
        ] {
            if let Some(v) = value.as_deref().filter(|v| !v.trim().is_empty()) {
                description.push(format!("{label}: {}", v.trim()));
            }
        }
    }
    let due = task
        .due
        .clone()
        .or_else(|| brief.as_ref().and_then(|b| b.due.clone()));
    let due_date = due.as_ref().map(|d| d.zoned().date().to_string());
    let mut labels: Vec<String> = c
        .setting("labels")
        .map(|l| {
            l.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if !labels.iter().any(|l| l == "spoke") {
        labels.push("spoke".to_owned());
    }
    TaskPayload {
        marker: task.id.clone(),
        title: task.title.clone(),
        description: description.join("\n\n"),
        due: due.as_ref().map(|d| d.at),
        due_date,
        assignee: task
            .assignee
            .as_ref()
            .and_then(|h| c.members.get(h).cloned()),
        labels,
        done: task.status == TaskStatus::Done,
    }
}

/// A digest of what a tracker was sent, to notice later changes.
pub fn fingerprint(p: &TaskPayload) -> String {
    use sha2::Digest;
    let text = format!(
        "{}\u{1f}{}\u{1f}{:?}\u{1f}{:?}\u{1f}{:?}\u{1f}{:?}\u{1f}{}",
        p.title, p.description, p.due, p.due_date, p.assignee, p.labels, p.done
    );
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The hub's tracker connectors (not webhooks), by name.
fn tracker_connectors(hub: &Hub) -> Result<BTreeMap<String, Connector>> {
    Ok(hub
        .connectors()?
        .into_iter()
        .filter(|c| c.kind.is_tracker())
        .map(|c| (c.name.clone(), c))
        .collect())
}

/// Queues an update for each pushed task changed since its last push.
fn queue_updates(home: &Path, report: &mut PushReport, say: &mut impl FnMut(&str)) -> Result<()> {
    let mut hub = Hub::open(home, None)?;
    let connectors = tracker_connectors(&hub)?;
    if connectors.is_empty() {
        return Ok(());
    }
    let open: Vec<(String, String)> = hub
        .outbox()?
        .into_iter()
        .filter(|d| d.status == DeliveryStatus::Pending)
        .filter_map(|d| Some((d.connector, d.task?)))
        .collect();
    let mut changes = Vec::new();
    for task in pushed_tasks(&hub)? {
        for (name, link) in &task.external {
            let Some(c) = connectors.get(name) else {
                continue;
            };
            if open.contains(&(name.clone(), task.id.clone())) {
                continue;
            }
            if fingerprint(&payload(&hub, &task, c)) == link.sent {
                continue;
            }
            let id = format!("{}-u", new_entity_id(&format!("d-{name}-{}", task.id)));
            say(&format!(
                "{id}: {} changed since its push to {}",
                task.id, link.key
            ));
            changes.push((
                EntityRef::new(EntityKind::Delivery, id),
                Change::Set(BTreeMap::from([
                    ("connector".to_owned(), json!(name)),
                    ("action".to_owned(), json!(DeliveryAction::Update)),
                    ("task".to_owned(), json!(task.id)),
                    ("status".to_owned(), json!(DeliveryStatus::Pending)),
                    ("attempts".to_owned(), json!(0)),
                ])),
            ));
        }
    }
    report.updates_queued += changes.len();
    if !changes.is_empty() {
        hub.commit(changes)?;
    }
    Ok(())
}

fn pushed_tasks(hub: &Hub) -> Result<Vec<Task>> {
    Ok(hub
        .replica()
        .records(EntityKind::Task)?
        .iter()
        .map(|(id, rec)| Task::from_record(id, rec))
        .filter(|t| !t.deleted && !t.external.is_empty())
        .collect())
}

/// Reads each pushed task's done-ness back from its tracker.
async fn poll(
    home: &Path,
    lease_until: u64,
    report: &mut PushReport,
    say: &mut impl FnMut(&str),
) -> Result<()> {
    let mut hub = Hub::open(home, None)?;
    let connectors = tracker_connectors(&hub)?;
    let mut trackers: BTreeMap<String, Tracker> = BTreeMap::new();
    for (name, c) in &connectors {
        if let Ok(t) = Tracker::of(home, c) {
            trackers.insert(name.clone(), t);
        }
    }
    for task in pushed_tasks(&hub)? {
        if lease_until < wall_now_ms().saturating_add(STOP_BELOW_MS) {
            break;
        }
        for (name, link) in &task.external {
            let (Some(tracker), Some(c)) = (trackers.get(name), connectors.get(name)) else {
                continue;
            };
            let done = match tracker.is_done(&link.key).await {
                Ok(done) => done,
                Err(e) => {
                    let note = format!("reading {} back: {e}", link.key);
                    if !report.notes.contains(&note) {
                        say(&note);
                        report.notes.push(note);
                    }
                    continue;
                }
            };
            if done == link.done {
                continue;
            }
            let status = match (done, task.status) {
                (true, _) => TaskStatus::Done,
                (false, TaskStatus::Done) => TaskStatus::Todo,
                (false, s) => s,
            };
            let mut mirrored = task.clone();
            mirrored.status = status;
            let new_link = ExternalLink {
                done,
                sent: fingerprint(&payload(&hub, &mirrored, c)),
                ..link.clone()
            };
            say(&format!(
                "{}: {} is {} in {name}",
                task.id,
                link.key,
                if done { "done" } else { "open" }
            ));
            hub.commit(vec![(
                EntityRef::new(EntityKind::Task, task.id.clone()),
                Change::Set(BTreeMap::from([
                    ("status".to_owned(), json!(status)),
                    (format!("external:{name}"), json!(new_link)),
                ])),
            )])?;
            report.mirrored += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff_ms(1), 2_000);
        assert_eq!(backoff_ms(2), 4_000);
        assert_eq!(backoff_ms(3), 8_000);
        assert_eq!(backoff_ms(40), MAX_BACKOFF_MS);
    }
}
