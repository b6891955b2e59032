//! Jira Cloud's REST API v3: issues created with an Atlassian Document
//! Format description, Basic auth (email + API token).

use super::{External, PushError, TaskPayload};

/// A Jira Cloud site and project, with the credentials to write to it.
#[derive(Debug, Clone)]
pub struct Jira {
    /// Connector name, for errors.
    pub connector: String,
    /// `https://example.atlassian.net`
    pub base_url: String,
    pub email: String,
    /// The API token (a secret from the pushing machine).
    pub token: String,
    pub project_key: String,
    /// `Task` unless set.
    pub issue_type: String,
}

impl Jira {
    /// `POST /rest/api/3/issue`.
    pub async fn create(&self, _task: &TaskPayload) -> Result<External, PushError> {
        Err(self.unbuilt())
    }
    /// `PUT /rest/api/3/issue/{key}` with the task's fields, then a
    /// transition when done-ness differs.
    pub async fn update(&self, _key: &str, _task: &TaskPayload) -> Result<(), PushError> {
        Err(self.unbuilt())
    }
    /// The issue created for `marker` before, if any (a create cut short).
    pub async fn find(&self, _marker: &str) -> Result<Option<External>, PushError> {
        Err(self.unbuilt())
    }
    /// Whether the issue's status is in the done category.
    pub async fn is_done(&self, _key: &str) -> Result<bool, PushError> {
        Err(self.unbuilt())
    }
    fn unbuilt(&self) -> PushError {
        PushError::Transient {
            connector: self.connector.clone(),
            message: "not built".into(),
        }
    }
}
