//! Integrations as hub data: connectors to trackers (Jira, Asana) and
//! webhooks, the pusher and its lease, and the outbox of deliveries. Secrets
//! never travel as hub data; they stay on the machine that pushes.

use super::input::InputError;
use super::record::EntityRecord;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub use spoke_relay::policy::push::{Lease, MAX_LEASE_MS, PUSH_ENTITY};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorKind {
    Jira,
    Asana,
    Webhook,
}

impl ConnectorKind {
    pub fn parse(text: &str) -> Result<ConnectorKind, InputError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "jira" => Ok(ConnectorKind::Jira),
            "asana" => Ok(ConnectorKind::Asana),
            "webhook" => Ok(ConnectorKind::Webhook),
            other => Err(InputError::new(format!(
                "unknown connector kind `{other}`: jira, asana or webhook"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ConnectorKind::Jira => "jira",
            ConnectorKind::Asana => "asana",
            ConnectorKind::Webhook => "webhook",
        }
    }

    /// Trackers receive tasks; webhooks receive events.
    pub fn is_tracker(self) -> bool {
        matches!(self, ConnectorKind::Jira | ConnectorKind::Asana)
    }
}

/// Hub events a webhook connector may subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum HookEvent {
    #[serde(rename = "brief.created")]
    BriefCreated,
    #[serde(rename = "brief.status")]
    BriefStatus,
    #[serde(rename = "approval.closed")]
    ApprovalClosed,
    #[serde(rename = "asset.approved")]
    AssetApproved,
    #[serde(rename = "task.created")]
    TaskCreated,
}

impl HookEvent {
    pub const ALL: [HookEvent; 5] = [
        HookEvent::BriefCreated,
        HookEvent::BriefStatus,
        HookEvent::ApprovalClosed,
        HookEvent::AssetApproved,
        HookEvent::TaskCreated,
    ];

    pub fn name(self) -> &'static str {
        match self {
            HookEvent::BriefCreated => "brief.created",
            HookEvent::BriefStatus => "brief.status",
            HookEvent::ApprovalClosed => "approval.closed",
            HookEvent::AssetApproved => "asset.approved",
            HookEvent::TaskCreated => "task.created",
        }
    }

    pub fn parse(text: &str) -> Result<HookEvent, InputError> {
        HookEvent::ALL
            .into_iter()
            .find(|e| e.name() == text.trim())
            .ok_or_else(|| {
                InputError::new(format!(
                    "unknown event `{}`: {}",
                    text.trim(),
                    HookEvent::ALL.map(|e| e.name()).join(", ")
                ))
            })
    }
}

/// A connector as the hub holds it. Settings are kind-specific:
/// jira `{url, email, project, issue_type, labels}`, asana `{url,
/// workspace, project}`, webhook `{url}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Connector {
    pub name: String,
    pub kind: ConnectorKind,
    pub settings: BTreeMap<String, Value>,
    pub events: Vec<HookEvent>,
    /// Member handle -> the tracker's account id (Jira) or user gid (Asana).
    pub members: BTreeMap<String, String>,
    pub deleted: bool,
}

impl Connector {
    pub fn from_record(name: &str, rec: &EntityRecord) -> Option<Connector> {
        Some(Connector {
            name: name.to_owned(),
            kind: rec.get_as("kind")?,
            settings: rec.map_entries("setting").into_iter().collect(),
            events: rec
                .set_members("event")
                .iter()
                .filter_map(|e| HookEvent::parse(e).ok())
                .collect(),
            members: rec
                .map_entries("member")
                .into_iter()
                .filter_map(|(k, v)| Some((k, v.as_str()?.to_owned())))
                .collect(),
            deleted: rec.is_deleted(),
        })
    }

    pub fn setting(&self, name: &str) -> Option<&str> {
        self.settings
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

/// A connector name: a lowercase word that names a setting (`jira`,
/// `asana-studio`, `hooks`).
pub fn check_connector_name(name: &str) -> Result<String, InputError> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(InputError::new(format!(
            "connector name `{name}` must be 1-32 lowercase letters, digits or dashes, starting with a letter"
        )))
    }
}

/// The pusher and its lease (`integration/_push`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PushSettings {
    pub pusher: Option<String>,
    #[serde(skip)]
    pub lease: Option<Lease>,
    /// How often tracker state is read back, in seconds.
    pub poll_secs: u64,
}

pub const DEFAULT_POLL_SECS: u64 = 300;

impl PushSettings {
    pub fn from_record(rec: Option<&EntityRecord>) -> PushSettings {
        let Some(rec) = rec else {
            return PushSettings {
                poll_secs: DEFAULT_POLL_SECS,
                ..Default::default()
            };
        };
        PushSettings {
            pusher: rec.string("pusher"),
            lease: rec.get("lease").and_then(Lease::read),
            poll_secs: rec
                .get("poll_secs")
                .and_then(Value::as_u64)
                .unwrap_or(DEFAULT_POLL_SECS),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    #[default]
    Pending,
    Done,
    Failed,
    Dropped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryAction {
    /// Make the task in the tracker.
    Create,
    /// Send the task's current fields to the issue made before.
    Update,
    /// Send a hub event to a webhook.
    Event,
}

/// One outbox item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub id: String,
    pub connector: String,
    pub action: Option<DeliveryAction>,
    pub task: Option<String>,
    /// A webhook event's body, fixed when the event happened.
    pub event: Option<Value>,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// Wall-clock milliseconds before which no attempt is made.
    pub next_at: Option<u64>,
    pub last_error: Option<String>,
    pub result: Option<Value>,
    pub created_by: Option<String>,
    /// When it was enqueued (milliseconds).
    pub created_ms: u64,
    pub deleted: bool,
}

impl Delivery {
    pub fn from_record(id: &str, rec: &EntityRecord) -> Delivery {
        Delivery {
            id: id.to_owned(),
            connector: rec.string("connector").unwrap_or_default(),
            action: rec.get_as("action"),
            task: rec.string("task"),
            event: rec.get("event").cloned().filter(|v| !v.is_null()),
            status: rec.get_as("status").unwrap_or_default(),
            attempts: rec.get_as("attempts").unwrap_or(0),
            next_at: rec.get("next_at").and_then(Value::as_u64),
            last_error: rec.string("last_error"),
            result: rec.get("result").cloned().filter(|v| !v.is_null()),
            created_by: rec.string("created_by"),
            created_ms: rec.first_stamp().map(|s| s.hlc.wall_ms).unwrap_or(0),
            deleted: rec.is_deleted(),
        }
    }

    /// Whether the pusher should try it at `now_ms`.
    pub fn is_due(&self, now_ms: u64) -> bool {
        !self.deleted
            && self.status == DeliveryStatus::Pending
            && self.next_at.is_none_or(|t| t <= now_ms)
    }
}

/// Where a task lives in one tracker, written on the task as
/// `external:CONNECTOR`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalLink {
    pub key: String,
    pub url: String,
    /// A digest of the fields last sent, so a later change is pushed once.
    #[serde(default)]
    pub sent: String,
    /// Done-ness as the tracker last reported it.
    #[serde(default)]
    pub done: bool,
}

/// Id of the delivery that creates `task` in `connector`: one per pair, so
/// every replica that applies the same approval enqueues the same item.
pub fn create_delivery_id(connector: &str, task: &str) -> String {
    format!("d-{connector}-{task}")
}
