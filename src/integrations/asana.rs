//! Asana REST API 1.0: tasks in the `data` envelope, a personal access
//! token as Bearer auth.

use super::{External, PushError, TaskPayload};

/// An Asana workspace and project, with the token to write to it.
#[derive(Debug, Clone)]
pub struct Asana {
    /// Connector name, for errors.
    pub connector: String,
    /// `https://app.asana.com/api/1.0` unless set.
    pub base_url: String,
    /// The personal access token (a secret from the pushing machine).
    pub token: String,
    pub workspace: String,
    pub project: String,
}

impl Asana {
    /// `POST /tasks`.
    pub async fn create(&self, _task: &TaskPayload) -> Result<External, PushError> {
        Err(self.unbuilt())
    }
    /// `PUT /tasks/{gid}` with the task's fields and `completed`.
    pub async fn update(&self, _key: &str, _task: &TaskPayload) -> Result<(), PushError> {
        Err(self.unbuilt())
    }
    /// The task created for `marker` before, if any (a create cut short).
    pub async fn find(&self, _marker: &str) -> Result<Option<External>, PushError> {
        Err(self.unbuilt())
    }
    /// Whether the task is completed.
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
