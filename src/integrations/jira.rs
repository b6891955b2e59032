//! Jira Cloud's REST API v3: issues created with an Atlassian Document
//! Format description, Basic auth (email + API token).

use super::wire::{self, Refusals, Session as Call, Target};
use super::{External, PushError, TaskPayload};
use base64::Engine as _;
use serde_json::{Map, Value, json};

/// Jira refuses summaries longer than this.
const MAX_SUMMARY_CHARS: usize = 255;

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
    pub async fn create(&self, task: &TaskPayload) -> Result<External, PushError> {
        let call = self.call()?;
        let what = format!("creating an issue in Jira project {}", self.project_key);
        let target = self.target(&["issue"], &[])?;
        let mut fields = self.fields(task, false);
        let issue_type = match self.issue_type.trim() {
            "" => "Task",
            name => name,
        };
        fields.insert("project".into(), json!({ "key": self.project_key }));
        fields.insert("issuetype".into(), json!({ "name": issue_type }));
        let body = json!({ "fields": fields });
        let answer = call
            .send(reqwest::Method::POST, &target, Some(&body))
            .await?;
        if answer.status == reqwest::StatusCode::NOT_FOUND {
            return Err(PushError::Rejected {
                connector: self.connector.clone(),
                status: 404,
                message: format!(
                    "{what}: Jira has no project {} that this account can see{}",
                    self.project_key,
                    call.refusals
                        .said(&answer.body)
                        .map(|said| format!(" ({said})"))
                        .unwrap_or_default()
                ),
            });
        }
        let created = call.success(&what, &target, &answer)?;
        let key = created["key"].as_str().unwrap_or_default();
        if key.is_empty() {
            return Err(PushError::Transient {
                connector: self.connector.clone(),
                message: format!(
                    "{what}: {} answered {} without an issue key",
                    target.shown, answer.status
                ),
            });
        }
        Ok(self.external(key))
    }

    /// `PUT /rest/api/3/issue/{key}` with the task's fields, then a
    /// transition when done-ness differs.
    pub async fn update(&self, key: &str, task: &TaskPayload) -> Result<(), PushError> {
        let call = self.call()?;
        let what = format!("updating Jira issue {key}");
        let target = self.target(&["issue", key], &[])?;
        let body = json!({ "fields": self.fields(task, true) });
        let answer = call
            .send(reqwest::Method::PUT, &target, Some(&body))
            .await?;
        call.success(&what, &target, &answer)?;
        if self.status_done(&call, key).await? == task.done {
            return Ok(());
        }

        let what = format!(
            "moving Jira issue {key} to a {}status",
            done_word(task.done)
        );
        let target = self.target(&["issue", key, "transitions"], &[])?;
        let answer = call.send(reqwest::Method::GET, &target, None).await?;
        let listed = call.success(&what, &target, &answer)?;
        let transitions = listed["transitions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let category = |t: &Value| t["to"]["statusCategory"]["key"].as_str().map(str::to_owned);
        let chosen = if task.done {
            transitions
                .iter()
                .find(|t| category(t).as_deref() == Some("done"))
        } else {
            // Back to the start of the board when one is offered.
            transitions
                .iter()
                .find(|t| category(t).as_deref() == Some("new"))
                .or_else(|| {
                    transitions
                        .iter()
                        .find(|t| category(t).is_some_and(|c| c != "done"))
                })
        };
        let Some(id) = chosen.and_then(|t| id_text(&t["id"])) else {
            let offered: Vec<String> = transitions
                .iter()
                .map(|t| {
                    let name = t["to"]["name"].as_str().or(t["name"].as_str());
                    format!(
                        "{} ({})",
                        name.unwrap_or("unnamed"),
                        category(t).unwrap_or_else(|| "no category".into())
                    )
                })
                .collect();
            return Err(PushError::Rejected {
                connector: self.connector.clone(),
                // Jira accepted every request; the refusal is the board's shape.
                status: 0,
                message: format!(
                    "{what}: issue {key} has no transition to a {}status; available: {}",
                    done_word(task.done),
                    if offered.is_empty() {
                        "none".to_owned()
                    } else {
                        offered.join(", ")
                    }
                ),
            });
        };
        let body = json!({ "transition": { "id": id } });
        let answer = call
            .send(reqwest::Method::POST, &target, Some(&body))
            .await?;
        call.success(&what, &target, &answer)?;
        Ok(())
    }

    /// The issue created for `marker` before, if any (a create cut short).
    pub async fn find(&self, marker: &str) -> Result<Option<External>, PushError> {
        let call = self.call()?;
        let label = marker_label(marker);
        let what = format!("looking for the Jira issue labelled {label}");
        let jql = format!("labels = \"{}\"", jql_escape(&label));
        let target = self.target(&["search", "jql"], &[("jql", &jql), ("fields", "key")])?;
        let answer = call.send(reqwest::Method::GET, &target, None).await?;
        let found = call.success(&what, &target, &answer)?;
        let key = found["issues"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|issue| issue["key"].as_str())
            .map(str::to_owned);
        Ok(key.map(|key| self.external(&key)))
    }

    /// Checks the credentials and the project without changing anything:
    /// `GET /rest/api/3/myself`, then `GET /rest/api/3/project/{key}`.
    /// Returns who the token acts as and the project's name.
    pub async fn check(&self) -> Result<String, PushError> {
        let call = self.call()?;
        let what = "checking the Jira account".to_owned();
        let target = self.target(&["myself"], &[])?;
        let answer = call.send(reqwest::Method::GET, &target, None).await?;
        let me = call.success(&what, &target, &answer)?;
        let who = me["displayName"]
            .as_str()
            .or(me["emailAddress"].as_str())
            .unwrap_or("an account")
            .to_owned();
        let what = format!("checking Jira project {}", self.project_key);
        let target = self.target(&["project", self.project_key.trim()], &[])?;
        let answer = call.send(reqwest::Method::GET, &target, None).await?;
        let project = call.success(&what, &target, &answer)?;
        Ok(format!(
            "signed in as {who}; project {} ({})",
            self.project_key.trim(),
            project["name"].as_str().unwrap_or("no name")
        ))
    }

    /// Whether the issue's status is in the done category.
    pub async fn is_done(&self, key: &str) -> Result<bool, PushError> {
        let call = self.call()?;
        self.status_done(&call, key).await
    }

    async fn status_done(&self, call: &Call<'_>, key: &str) -> Result<bool, PushError> {
        let what = format!("reading the status of Jira issue {key}");
        let target = self.target(&["issue", key], &[("fields", "status")])?;
        let answer = call.send(reqwest::Method::GET, &target, None).await?;
        let issue = call.success(&what, &target, &answer)?;
        match issue["fields"]["status"]["statusCategory"]["key"].as_str() {
            Some(category) => Ok(category == "done"),
            None => Err(PushError::Transient {
                connector: self.connector.clone(),
                message: format!(
                    "{what}: {} answered without a status category",
                    target.shown
                ),
            }),
        }
    }

    /// The fields both create and update send; `clearing` sends `null` for
    /// an absent due date or assignee so an update removes them.
    fn fields(&self, task: &TaskPayload, clearing: bool) -> Map<String, Value> {
        let mut fields = Map::new();
        fields.insert("summary".into(), summary(&task.title).into());
        fields.insert("description".into(), adf(&task.description));
        fields.insert("labels".into(), labels(&task.labels, &task.marker).into());
        match &task.due_date {
            Some(date) => {
                fields.insert("duedate".into(), date.clone().into());
            }
            None if clearing => {
                fields.insert("duedate".into(), Value::Null);
            }
            None => {}
        }
        match &task.assignee {
            Some(id) => {
                fields.insert("assignee".into(), json!({ "accountId": id }));
            }
            None if clearing => {
                fields.insert("assignee".into(), Value::Null);
            }
            None => {}
        }
        fields
    }

    fn external(&self, key: &str) -> External {
        External {
            key: key.to_owned(),
            url: format!(
                "{}/browse/{key}",
                self.base_url.trim().trim_end_matches('/')
            ),
        }
    }

    fn target(&self, path: &[&str], query: &[(&str, &str)]) -> Result<Target, PushError> {
        let mut segments = vec!["rest", "api", "3"];
        segments.extend_from_slice(path);
        wire::target(
            &self.connector,
            &format!("the url of connector {}", self.connector),
            &self.base_url,
            &segments,
            query,
        )
    }

    fn call(&self) -> Result<Call<'_>, PushError> {
        let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            self.email.trim(),
            self.token.trim()
        ));
        let auth = wire::secret_header(
            &self.connector,
            &format!("the email or API token of connector {}", self.connector),
            &format!("Basic {credentials}"),
        )?;
        Ok(Call {
            client: wire::client(&self.connector)?,
            auth,
            refusals: Refusals {
                connector: &self.connector,
                auth_setting: Some(format!(
                    "the email and API token of connector {0} (spoke integrations secret {0})",
                    self.connector
                )),
                messages: jira_messages,
            },
        })
    }
}

/// Jira's `errorMessages` and `field: message` pairs from `errors`.
fn jira_messages(body: &Value) -> Vec<String> {
    let mut messages: Vec<String> = wire::strings(&body["errorMessages"])
        .map(str::to_owned)
        .collect();
    if let Some(errors) = body["errors"].as_object() {
        for (field, message) in errors {
            let message = message
                .as_str()
                .map_or_else(|| message.to_string(), str::to_owned);
            messages.push(format!("{field}: {message}"));
        }
    }
    messages
}

/// `id` as Jira sends it (a string, sometimes a number).
fn id_text(id: &Value) -> Option<String> {
    match id {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn done_word(done: bool) -> &'static str {
    if done { "done " } else { "not-done " }
}

/// One line (Jira refuses newlines in a summary), at most 255 characters.
fn summary(title: &str) -> String {
    let line = title.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= MAX_SUMMARY_CHARS {
        return line;
    }
    let mut cut: String = line.chars().take(MAX_SUMMARY_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// The label that finds the issue again: `spoke-<marker>`.
fn marker_label(marker: &str) -> String {
    format!("spoke-{}", no_spaces(marker))
}

/// Whitespace runs become `-`: Jira labels cannot hold spaces.
fn no_spaces(label: &str) -> String {
    label.split_whitespace().collect::<Vec<_>>().join("-")
}

/// The task's labels made Jira-safe, without duplicates or blanks, then
/// the marker label.
fn labels(labels: &[String], marker: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for label in labels
        .iter()
        .map(|l| no_spaces(l))
        .chain([marker_label(marker)])
    {
        if !label.is_empty() && !out.contains(&label) {
            out.push(label);
        }
    }
    out
}

/// A JQL string literal's inside.
fn jql_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Plain text as an Atlassian Document: one paragraph per blank-line
/// separated block, its lines joined by hard breaks.
pub(crate) fn adf(text: &str) -> Value {
    let mut paragraphs: Vec<Value> = Vec::new();
    let mut current: Vec<Value> = Vec::new();
    let mut flush = |current: &mut Vec<Value>| {
        if !current.is_empty() {
            paragraphs.push(json!({ "type": "paragraph", "content": std::mem::take(current) }));
        }
    };
    for line in text.lines() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            flush(&mut current);
            continue;
        }
        if !current.is_empty() {
            current.push(json!({ "type": "hardBreak" }));
        }
        current.push(json!({ "type": "text", "text": line }));
    }
    flush(&mut current);
    json!({ "type": "doc", "version": 1, "content": paragraphs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adf_has_one_paragraph_per_block_and_hard_breaks_within() {
        let doc = adf("First line\r\nsecond line\n\n\n  \nNext block  \n");
        assert_eq!(
            doc,
            json!({"type":"doc","version":1,"content":[
                {"type":"paragraph","content":[
                    {"type":"text","text":"First line"},
                    {"type":"hardBreak"},
                    {"type":"text","text":"second line"}]},
                {"type":"paragraph","content":[{"type":"text","text":"Next block"}]}
            ]})
        );
        assert_eq!(
            adf("  \n\n"),
            json!({"type":"doc","version":1,"content":[]})
        );
    }

    #[test]
    fn labels_lose_spaces_and_end_with_the_marker() {
        let got = labels(
            &[
                "Q3 launch".into(),
                "  ".into(),
                "Q3  launch".into(),
                "web".into(),
            ],
            "t-1",
        );
        assert_eq!(got, ["Q3-launch", "web", "spoke-t-1"]);
    }

    #[test]
    fn summaries_are_one_line_and_fit() {
        assert_eq!(summary("Two\nlines  here "), "Two lines here");
        let long = summary(&"x".repeat(400));
        assert_eq!(long.chars().count(), MAX_SUMMARY_CHARS);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn jira_errors_show_messages_and_field_pairs() {
        let body =
            json!({"errorMessages":["Bad"],"errors":{"summary":"required","duedate":"wrong"}});
        assert_eq!(
            jira_messages(&body),
            ["Bad", "duedate: wrong", "summary: required"]
        );
        assert_eq!(jql_escape(r#"a"b\c"#), r#"a\"b\\c"#);
    }
}
