//! Integrations: approved work leaves the hub for Jira and Asana, and
//! signed webhooks tell everything else.
//!
//! - [`jira`], [`asana`] and [`webhook`] speak each service's wire format
//!   (paths, auth, bodies, error shapes) and nothing else.
//! - The outbox and the pusher that drains it live beside them.

pub mod asana;
pub mod jira;
pub mod pusher;
pub mod secrets;
pub mod webhook;
mod wire;

use std::time::Duration;

/// One task as a tracker receives it, built from hub data at delivery time.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPayload {
    /// The Spoke task id (`t-…`); trackers carry it so a create cut short
    /// by a crash is found again instead of made twice.
    pub marker: String,
    pub title: String,
    /// Plain text, paragraphs separated by blank lines.
    pub description: String,
    /// Due instant (Asana `due_at`; Jira takes the date in the task's zone).
    pub due: Option<jiff::Timestamp>,
    /// Due date in the brief's zone, `YYYY-MM-DD` (Jira `duedate`).
    pub due_date: Option<String>,
    /// The external account id (Jira) or user gid (Asana) of the assignee.
    pub assignee: Option<String>,
    pub labels: Vec<String>,
    pub done: bool,
}

/// Where a task now lives outside the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct External {
    /// `NW-123` or an Asana gid.
    pub key: String,
    /// A link a person can open.
    pub url: String,
}

/// Why a delivery did not go through, sorted by what the outbox does next.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PushError {
    /// 401/403: credentials or permissions. Names the connector setting to
    /// fix; retrying without a change will not help.
    #[error("{connector}: {status} {reason}; check {setting}")]
    Auth {
        connector: String,
        status: u16,
        reason: String,
        setting: String,
    },
    /// The service refused the request as sent (4xx other than 401/403/429),
    /// with its own messages (Jira `errorMessages`/`errors`, Asana `errors`).
    #[error("{connector}: {status} {message}")]
    Rejected {
        connector: String,
        status: u16,
        message: String,
    },
    /// 429 or 503 with a `Retry-After`: try again no sooner than `after`.
    #[error("{connector}: {status}, retry after {after:?}")]
    RetryAfter {
        connector: String,
        status: u16,
        after: Duration,
    },
    /// Network failure, timeout or 5xx: try again with backoff.
    #[error("{connector}: {message}")]
    Transient { connector: String, message: String },
}

impl PushError {
    /// Whether the outbox should try again later.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            PushError::RetryAfter { .. } | PushError::Transient { .. }
        )
    }
}
