//! Asana REST API 1.0: tasks in the `data` envelope, a personal access
//! token as Bearer auth.

use super::wire::{self, Refusals, Session, Target};
use super::{External, PushError, TaskPayload};
use serde_json::{Map, Value, json};

/// Tasks per page when looking for a marker (Asana's largest page).
const PAGE_LIMIT: &str = "100";
/// Pages read at most when looking for a marker: 100 000 tasks.
const MAX_PAGES: usize = 1000;

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
    pub async fn create(&self, task: &TaskPayload) -> Result<External, PushError> {
        let session = self.session()?;
        let what = format!("creating a task in Asana project {}", self.project);
        let target = self.target(&["tasks"], &[])?;
        let mut data = self.fields(task);
        data.insert("workspace".into(), self.workspace.clone().into());
        data.insert("projects".into(), json!([self.project]));
        if data.get("due_at").is_some_and(Value::is_null) {
            data.remove("due_at");
        }
        if data.get("assignee").is_some_and(Value::is_null) {
            data.remove("assignee");
        }
        let body = json!({ "data": data });
        let answer = session
            .send(reqwest::Method::POST, &target, Some(&body))
            .await?;
        let created = session.success(&what, &target, &answer)?;
        let task = &created["data"];
        match task["gid"].as_str().filter(|gid| !gid.is_empty()) {
            Some(gid) => Ok(self.external(gid, task)),
            None => Err(PushError::Transient {
                connector: self.connector.clone(),
                message: format!(
                    "{what}: {} answered {} without a task gid",
                    target.shown, answer.status
                ),
            }),
        }
    }

    /// `PUT /tasks/{gid}` with the task's fields and `completed`.
    pub async fn update(&self, key: &str, task: &TaskPayload) -> Result<(), PushError> {
        let session = self.session()?;
        let what = format!("updating Asana task {key}");
        let target = self.target(&["tasks", key], &[])?;
        let body = json!({ "data": self.fields(task) });
        let answer = session
            .send(reqwest::Method::PUT, &target, Some(&body))
            .await?;
        session.success(&what, &target, &answer)?;
        Ok(())
    }

    /// The task created for `marker` before, if any (a create cut short).
    pub async fn find(&self, marker: &str) -> Result<Option<External>, PushError> {
        let session = self.session()?;
        let line = marker_line(marker);
        let what = format!(
            "looking for \"{line}\" in the tasks of Asana project {}",
            self.project
        );
        let mut offset: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = vec![
                ("project", self.project.as_str()),
                ("opt_fields", "notes,permalink_url"),
                ("limit", PAGE_LIMIT),
            ];
            if let Some(offset) = &offset {
                query.push(("offset", offset));
            }
            let target = self.target(&["tasks"], &query)?;
            let answer = session.send(reqwest::Method::GET, &target, None).await?;
            let page = session.success(&what, &target, &answer)?;
            let hit = page["data"].as_array().into_iter().flatten().find(|task| {
                task["notes"]
                    .as_str()
                    .is_some_and(|notes| notes.lines().any(|l| l.trim() == line))
            });
            if let Some(task) = hit
                && let Some(gid) = task["gid"].as_str()
            {
                return Ok(Some(self.external(gid, task)));
            }
            match page["next_page"]["offset"].as_str() {
                Some(next) if Some(next) != offset.as_deref() => offset = Some(next.to_owned()),
                _ => return Ok(None),
            }
        }
        Err(PushError::Rejected {
            connector: self.connector.clone(),
            status: 0,
            message: format!("{what}: gave up after {MAX_PAGES} pages"),
        })
    }

    /// Checks the token and the project without changing anything:
    /// `GET /users/me`, then `GET /projects/{project}`. Returns who the
    /// token acts as and the project's name.
    pub async fn check(&self) -> Result<String, PushError> {
        let session = self.session()?;
        let what = "checking the Asana account".to_owned();
        let target = self.target(&["users", "me"], &[("opt_fields", "name,email")])?;
        let answer = session.send(reqwest::Method::GET, &target, None).await?;
        let me = session.success(&what, &target, &answer)?;
        let who = me["data"]["name"]
            .as_str()
            .or(me["data"]["email"].as_str())
            .unwrap_or("an account")
            .to_owned();
        let what = format!("checking Asana project {}", self.project);
        let target = self.target(
            &["projects", self.project.trim()],
            &[("opt_fields", "name")],
        )?;
        let answer = session.send(reqwest::Method::GET, &target, None).await?;
        let project = session.success(&what, &target, &answer)?;
        Ok(format!(
            "signed in as {who}; project {} ({})",
            self.project.trim(),
            project["data"]["name"].as_str().unwrap_or("no name")
        ))
    }

    /// Whether the task is completed.
    pub async fn is_done(&self, key: &str) -> Result<bool, PushError> {
        let session = self.session()?;
        let what = format!("reading whether Asana task {key} is completed");
        let target = self.target(&["tasks", key], &[("opt_fields", "completed")])?;
        let answer = session.send(reqwest::Method::GET, &target, None).await?;
        let task = session.success(&what, &target, &answer)?;
        task["data"]["completed"]
            .as_bool()
            .ok_or_else(|| PushError::Transient {
                connector: self.connector.clone(),
                message: format!("{what}: {} answered without `completed`", target.shown),
            })
    }

    /// What create and update both send; `null` clears a due time or an
    /// assignee on update.
    fn fields(&self, task: &TaskPayload) -> Map<String, Value> {
        let mut data = Map::new();
        data.insert("name".into(), task.title.trim().into());
        data.insert(
            "html_notes".into(),
            html_notes(&task.description, &task.marker).into(),
        );
        data.insert(
            "due_at".into(),
            task.due.map_or(Value::Null, |due| due_at(due).into()),
        );
        data.insert(
            "assignee".into(),
            task.assignee.clone().map_or(Value::Null, Value::from),
        );
        data.insert("completed".into(), task.done.into());
        data
    }

    fn external(&self, gid: &str, task: &Value) -> External {
        let url = task["permalink_url"]
            .as_str()
            .filter(|u| !u.is_empty())
            .map_or_else(
                || format!("https://app.asana.com/0/{}/{gid}", self.project),
                str::to_owned,
            );
        External {
            key: gid.to_owned(),
            url,
        }
    }

    fn target(&self, path: &[&str], query: &[(&str, &str)]) -> Result<Target, PushError> {
        let base = match self.base_url.trim() {
            "" => "https://app.asana.com/api/1.0",
            base => base,
        };
        wire::target(
            &self.connector,
            &format!("the url of connector {}", self.connector),
            base,
            path,
            query,
        )
    }

    fn session(&self) -> Result<Session<'_>, PushError> {
        let auth = wire::secret_header(
            &self.connector,
            &format!("the personal access token of connector {}", self.connector),
            &format!("Bearer {}", self.token.trim()),
        )?;
        Ok(Session {
            client: wire::client(&self.connector)?,
            auth,
            refusals: Refusals {
                connector: &self.connector,
                auth_setting: Some(format!(
                    "the personal access token of connector {0} (spoke integrations secret {0})",
                    self.connector
                )),
                messages: asana_messages,
            },
        })
    }
}

/// The line in a task's notes that finds it again.
fn marker_line(marker: &str) -> String {
    format!("Spoke task {}", marker.trim())
}

/// Rich-text notes: the description escaped, its newlines kept, then the
/// marker line.
pub(crate) fn html_notes(description: &str, marker: &str) -> String {
    let text = description.replace("\r\n", "\n");
    let text = text.trim();
    let mut notes = String::from("<body>");
    if !text.is_empty() {
        notes.push_str(&escape(text));
        notes.push_str("\n\n");
    }
    notes.push_str(&escape(&marker_line(marker)));
    notes.push_str("</body>");
    notes
}

/// `&`, `<`, `>` and `"` as entities.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// RFC 3339 in UTC, to the second.
fn due_at(due: jiff::Timestamp) -> String {
    jiff::Timestamp::from_second(due.as_second())
        .unwrap_or(due)
        .to_string()
}

/// Asana's `errors[].message`.
fn asana_messages(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["message"].as_str())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_escape_markup_and_end_with_the_marker_line() {
        assert_eq!(
            html_notes("a <b> & \"c\"\r\nline 2\n\npara", "t-1"),
            "<body>a &lt;b&gt; &amp; &quot;c&quot;\nline 2\n\npara\n\nSpoke task t-1</body>"
        );
        assert_eq!(html_notes("  ", "t-2"), "<body>Spoke task t-2</body>");
    }

    #[test]
    fn due_times_are_utc_to_the_second() {
        let due: jiff::Timestamp = "2026-12-01T17:00:00.250+01:00".parse().unwrap();
        assert_eq!(due_at(due), "2026-12-01T16:00:00Z");
    }

    #[test]
    fn asana_errors_are_their_messages() {
        let body = json!({"errors":[{"message":"a: bad","help":"x"},{"message":"b"}]});
        assert_eq!(asana_messages(&body), ["a: bad", "b"]);
    }
}
