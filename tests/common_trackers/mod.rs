//! Stand-ins for Jira Cloud, Asana and a webhook receiver, for the
//! integration tests. Each is an axum server on 127.0.0.1 in a background
//! thread that speaks the service's wire format and checks what it gets
//! (exact auth, content type, required fields, ADF shape, the `data`
//! envelope): a request the real service would refuse gets that service's
//! error answer and is noted in `malformed()`. Faults can be scripted for
//! the next request. Beside them, an independent check of webhook
//! signatures with Python's `hmac`.

// Each test crate that includes this uses part of it.
#![allow(dead_code)]

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, Uri};
use base64::Engine as _;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as a fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The path as sent (percent-encoded).
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// The body as JSON (`null` when empty or not JSON).
    pub body: Value,
    /// The body's bytes as they arrived.
    pub raw: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The decoded query parameters, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        query_pairs(self.query.as_deref())
    }

    /// The decoded value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let Some(query) = query else {
        return Vec::new();
    };
    let url = reqwest::Url::parse(&format!("http://x/?{query}")).unwrap();
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A scripted misbehaviour for the next request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 429 with `Retry-After: secs` and the service's rate-limit body.
    RetryAfter(u64),
    /// This status and JSON body instead of the real answer.
    Status(u16, Value),
    /// Do what was asked (e.g. create the issue), then wait this long
    /// before answering.
    StallAfterCreate(Duration),
}

/// What a fake answers.
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Option<Value>,
    stall: Duration,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Some(body),
            stall: Duration::ZERO,
        }
    }

    fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: None,
            stall: Duration::ZERO,
        }
    }
}

/// One service's behaviour behind the shared recording and fault script.
trait Service: Send + 'static {
    /// Answers a request; notes in `malformed` why one is not what the real
    /// service accepts.
    fn handle(&mut self, request: &Recorded, malformed: &mut Vec<String>) -> Reply;
    /// The service's body for a 429.
    fn rate_limited() -> Value;
}

struct Shared<S> {
    service: S,
    requests: Vec<Recorded>,
    malformed: Vec<String>,
    faults: VecDeque<Fault>,
}

type Handle<S> = Arc<Mutex<Shared<S>>>;

/// Serves `service` on a fresh loopback port from a thread with its own
/// runtime; `make` gets the base URL (`http://127.0.0.1:PORT`).
fn start<S: Service>(make: impl FnOnce(String) -> S) -> (String, Handle<S>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let shared = Arc::new(Mutex::new(Shared {
        service: make(base.clone()),
        requests: Vec::new(),
        malformed: Vec::new(),
        faults: VecDeque::new(),
    }));
    let state = shared.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = Router::new().fallback(handle::<S>).with_state(state);
            axum::serve(listener, app).await.unwrap();
        });
    });
    (base, shared)
}

async fn handle<S: Service>(
    State(shared): State<Handle<S>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let request = Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: body.to_vec(),
    };
    let reply = {
        let mut shared = shared.lock().unwrap();
        shared.requests.push(request.clone());
        let fault = shared.faults.pop_front();
        let Shared {
            service, malformed, ..
        } = &mut *shared;
        match fault {
            None => service.handle(&request, malformed),
            Some(Fault::RetryAfter(secs)) => {
                let mut reply = Reply::json(429, S::rate_limited());
                reply.headers.push(("retry-after".into(), secs.to_string()));
                reply
            }
            Some(Fault::Status(status, body)) => Reply::json(status, body),
            Some(Fault::StallAfterCreate(pause)) => {
                let mut reply = service.handle(&request, malformed);
                reply.stall = pause;
                reply
            }
        }
    };
    if !reply.stall.is_zero() {
        tokio::time::sleep(reply.stall).await;
    }
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(name, value);
    }
    match reply.body {
        Some(body) => response
            .header("content-type", "application/json;charset=UTF-8")
            .body(Body::from(body.to_string()))
            .unwrap(),
        None => response.body(Body::empty()).unwrap(),
    }
}

fn is_json(request: &Recorded) -> bool {
    request
        .header("content-type")
        .is_some_and(|t| t.split(';').next().map(str::trim) == Some("application/json"))
}

/// The fault script and records every fake shares.
macro_rules! recording {
    ($fake:ty) => {
        impl $fake {
            /// Every request so far, in order.
            pub fn requests(&self) -> Vec<Recorded> {
                self.shared.lock().unwrap().requests.clone()
            }
            /// Why requests were not what the real service accepts.
            pub fn malformed(&self) -> Vec<String> {
                self.shared.lock().unwrap().malformed.clone()
            }
            /// Misbehaves on the next request (faults queue up in order).
            pub fn fail_next(&self, fault: Fault) {
                self.shared.lock().unwrap().faults.push_back(fault);
            }
            /// The base URL, as it goes in a connector's settings.
            pub fn url(&self) -> String {
                self.base.clone()
            }
        }
    };
}

// ---------------------------------------------------------------------------
// Jira Cloud
// ---------------------------------------------------------------------------

/// A Jira Cloud site with one account.
pub struct FakeJira {
    base: String,
    shared: Handle<Jira>,
}
recording!(FakeJira);

struct JiraIssue {
    id: u64,
    key: String,
    fields: Map<String, Value>,
    done: bool,
}

struct Jira {
    base: String,
    authorization: String,
    issues: Vec<JiraIssue>,
    next_id: u64,
    numbers: BTreeMap<String, u64>,
    /// `(id, name, category)` offered instead of the board's usual ones.
    transitions: Option<Vec<(String, String, String)>>,
}

impl FakeJira {
    /// Accepts `Authorization: Basic base64(email:token)` and nothing else.
    pub fn start(email: &str, token: &str) -> FakeJira {
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{email}:{token}"));
        let (base, shared) = start(|base| Jira {
            base,
            authorization: format!("Basic {credentials}"),
            issues: Vec::new(),
            next_id: 10001,
            numbers: BTreeMap::new(),
            transitions: None,
        });
        FakeJira { base, shared }
    }

    /// `(key, fields)` of every issue, in creation order.
    pub fn issues(&self) -> Vec<(String, Value)> {
        let shared = self.shared.lock().unwrap();
        shared
            .service
            .issues
            .iter()
            .map(|i| (i.key.clone(), Value::Object(i.fields.clone())))
            .collect()
    }

    /// Moves the issue to Done or back to To Do, as a person on the board.
    pub fn set_done(&self, key: &str, done: bool) {
        let mut shared = self.shared.lock().unwrap();
        let issue = shared.service.issues.iter_mut().find(|i| i.key == key);
        issue.unwrap_or_else(|| panic!("no issue {key}")).done = done;
    }

    pub fn is_done(&self, key: &str) -> Option<bool> {
        let shared = self.shared.lock().unwrap();
        shared
            .service
            .issues
            .iter()
            .find(|i| i.key == key)
            .map(|i| i.done)
    }

    /// Offers these `(id, name, status category)` transitions from every
    /// status instead of To Do / In Progress / Done.
    pub fn set_transitions(&self, transitions: &[(&str, &str, &str)]) {
        self.shared.lock().unwrap().service.transitions = Some(
            transitions
                .iter()
                .map(|(a, b, c)| ((*a).into(), (*b).into(), (*c).into()))
                .collect(),
        );
    }
}

/// Jira's 400: `errorMessages` and per-field `errors`.
fn jira_bad(malformed: &mut Vec<String>, field: Option<&str>, message: &str) -> Reply {
    malformed.push(match field {
        Some(field) => format!("{field}: {message}"),
        None => message.to_owned(),
    });
    let (messages, errors) = match field {
        Some(field) => (json!([]), json!({ field: message })),
        None => (json!([message]), json!({})),
    };
    Reply::json(400, json!({"errorMessages": messages, "errors": errors}))
}

fn jira_missing_issue() -> Reply {
    Reply::json(
        404,
        json!({"errorMessages":["Issue does not exist or you do not have permission to see it."],"errors":{}}),
    )
}

impl Service for Jira {
    fn rate_limited() -> Value {
        json!({"errorMessages":["Rate limit exceeded."],"errors":{}})
    }

    fn handle(&mut self, request: &Recorded, malformed: &mut Vec<String>) -> Reply {
        if request.header("authorization").as_deref() != Some(self.authorization.as_str()) {
            return Reply::json(
                401,
                json!({"errorMessages":["Client must be authenticated to access this resource."],"errors":{}}),
            );
        }
        if !request
            .header("accept")
            .is_some_and(|a| a.contains("application/json"))
        {
            return jira_bad(malformed, None, "Accept must be application/json");
        }
        let sends_body = matches!(request.method.as_str(), "POST" | "PUT");
        if sends_body && (!is_json(request) || !request.body.is_object()) {
            return Reply {
                status: 415,
                ..jira_bad(
                    malformed,
                    None,
                    "Unsupported media type or a body that is not a JSON object",
                )
            };
        }
        let path = request.path.strip_prefix("/rest/api/3/").unwrap_or("");
        let parts: Vec<&str> = path.split('/').collect();
        match (request.method.as_str(), parts.as_slice()) {
            ("GET", ["myself"]) => Reply::json(
                200,
                json!({"accountId": "acc-ops", "displayName": "Ops Bot", "active": true}),
            ),
            // The site has one project, NW.
            ("GET", ["project", "NW"]) => Reply::json(
                200,
                json!({"id": "10000", "key": "NW", "name": "Northwind", "projectTypeKey": "software"}),
            ),
            ("GET", ["project", key]) => Reply::json(
                404,
                json!({"errorMessages": [format!("No project could be found with key '{key}'.")], "errors": {}}),
            ),
            ("POST", ["issue"]) => self.create(request, malformed),
            ("GET", ["search", "jql"]) => self.search(request, malformed),
            ("GET", ["issue", key]) => match self.issue(key) {
                Some(issue) => Reply::json(
                    200,
                    json!({"id": issue.id.to_string(), "key": issue.key,
                           "fields": {"status": status(issue.done)}}),
                ),
                None => jira_missing_issue(),
            },
            ("PUT", ["issue", key]) => self.edit(key, request, malformed),
            ("GET", ["issue", key, "transitions"]) => match self.issue(key) {
                Some(issue) => {
                    let listed: Vec<Value> = self
                        .offered(issue.done)
                        .into_iter()
                        .map(|(id, name, category)| {
                            json!({"id": id, "name": name,
                                   "to": {"name": name, "statusCategory": {"key": category}}})
                        })
                        .collect();
                    Reply::json(200, json!({ "transitions": listed }))
                }
                None => jira_missing_issue(),
            },
            ("POST", ["issue", key, "transitions"]) => self.transition(key, request, malformed),
            _ => {
                malformed.push(format!(
                    "no such route: {} {}",
                    request.method, request.path
                ));
                Reply::json(404, json!({"errorMessages":["Not Found"],"errors":{}}))
            }
        }
    }
}

fn status(done: bool) -> Value {
    if done {
        json!({"name": "Done", "statusCategory": {"key": "done"}})
    } else {
        json!({"name": "To Do", "statusCategory": {"key": "new"}})
    }
}

impl Jira {
    fn issue(&self, key: &str) -> Option<&JiraIssue> {
        self.issues.iter().find(|i| i.key == key)
    }

    fn offered(&self, done: bool) -> Vec<(String, String, String)> {
        if let Some(list) = &self.transitions {
            return list.clone();
        }
        let board = [
            ("11", "To Do", "new"),
            ("21", "In Progress", "indeterminate"),
            ("31", "Done", "done"),
        ];
        let current = if done { "done" } else { "new" };
        board
            .iter()
            .filter(|(_, _, category)| *category != current)
            .map(|(a, b, c)| ((*a).into(), (*b).into(), (*c).into()))
            .collect()
    }

    fn create(&mut self, request: &Recorded, malformed: &mut Vec<String>) -> Reply {
        let Some(fields) = request.body["fields"].as_object() else {
            return jira_bad(malformed, None, "The request body must have `fields`.");
        };
        if let Some(body_key) = request.body.as_object().and_then(|b| {
            b.keys()
                .find(|k| !matches!(k.as_str(), "fields" | "update"))
        }) {
            return jira_bad(
                malformed,
                None,
                &format!("Unrecognized field \"{body_key}\""),
            );
        }
        let project = fields
            .get("project")
            .and_then(|p| p["key"].as_str())
            .unwrap_or("");
        let valid_key = !project.is_empty()
            && project.starts_with(|c: char| c.is_ascii_uppercase())
            && project
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !valid_key {
            return jira_bad(malformed, Some("project"), "valid project is required");
        }
        if fields
            .get("issuetype")
            .and_then(|t| t["name"].as_str())
            .is_none_or(str::is_empty)
        {
            return jira_bad(malformed, Some("issuetype"), "Specify an issue type name");
        }
        if !fields.contains_key("summary") {
            return jira_bad(
                malformed,
                Some("summary"),
                "You must specify a summary of the issue.",
            );
        }
        const CREATE: &[&str] = &[
            "project",
            "issuetype",
            "summary",
            "description",
            "labels",
            "duedate",
            "assignee",
        ];
        if let Err((field, message)) = check_fields(fields, CREATE, false) {
            return jira_bad(malformed, Some(&field), &message);
        }
        let number = self.numbers.entry(project.to_owned()).or_insert(0);
        *number += 1;
        let key = format!("{project}-{number}");
        let id = self.next_id;
        self.next_id += 1;
        self.issues.push(JiraIssue {
            id,
            key: key.clone(),
            fields: fields.clone(),
            done: false,
        });
        Reply::json(
            201,
            json!({"id": id.to_string(), "key": key,
                   "self": format!("{}/rest/api/3/issue/{id}", self.base)}),
        )
    }

    fn search(&self, request: &Recorded, malformed: &mut Vec<String>) -> Reply {
        let jql = request.param("jql").unwrap_or_default();
        let Some(label) = jql
            .strip_prefix("labels = \"")
            .and_then(|rest| rest.strip_suffix('"'))
            .map(|quoted| quoted.replace("\\\"", "\"").replace("\\\\", "\\"))
        else {
            return jira_bad(
                malformed,
                None,
                &format!("Error in the JQL Query: cannot read {jql:?}"),
            );
        };
        let hits: Vec<Value> = self
            .issues
            .iter()
            .filter(|i| {
                i.fields["labels"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|l| l.as_str() == Some(label.as_str())))
            })
            .map(|i| json!({"id": i.id.to_string(), "key": i.key}))
            .collect();
        Reply::json(200, json!({"issues": hits, "isLast": true}))
    }

    fn edit(&mut self, key: &str, request: &Recorded, malformed: &mut Vec<String>) -> Reply {
        let Some(fields) = request.body["fields"].as_object() else {
            return jira_bad(malformed, None, "The request body must have `fields`.");
        };
        const EDIT: &[&str] = &["summary", "description", "labels", "duedate", "assignee"];
        if let Err((field, message)) = check_fields(fields, EDIT, true) {
            return jira_bad(malformed, Some(&field), &message);
        }
        let Some(issue) = self.issues.iter_mut().find(|i| i.key == key) else {
            return jira_missing_issue();
        };
        for (name, value) in fields {
            issue.fields.insert(name.clone(), value.clone());
        }
        Reply::empty(204)
    }

    fn transition(&mut self, key: &str, request: &Recorded, malformed: &mut Vec<String>) -> Reply {
        let Some(id) = request.body["transition"]["id"].as_str() else {
            return jira_bad(malformed, None, "Missing 'transition' identifier");
        };
        let Some(done) = self.issue(key).map(|i| i.done) else {
            return jira_missing_issue();
        };
        let Some((_, _, category)) = self.offered(done).into_iter().find(|(t, _, _)| t == id)
        else {
            return jira_bad(
                malformed,
                None,
                &format!("Transition id '{id}' is not valid for this issue."),
            );
        };
        if let Some(issue) = self.issues.iter_mut().find(|i| i.key == key) {
            issue.done = category == "done";
        }
        Reply::empty(204)
    }
}

/// The field checks Jira makes on create (`editing` false) and edit.
fn check_fields(
    fields: &Map<String, Value>,
    allowed: &[&str],
    editing: bool,
) -> Result<(), (String, String)> {
    let fail = |field: &str, message: &str| Err((field.to_owned(), message.to_owned()));
    for (name, value) in fields {
        if !allowed.contains(&name.as_str()) {
            return fail(
                name,
                &format!(
                    "Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                ),
            );
        }
        let clearable = editing && matches!(name.as_str(), "duedate" | "assignee" | "description");
        if value.is_null() && clearable {
            continue;
        }
        match name.as_str() {
            "summary" => match value.as_str() {
                Some(s) if s.trim().is_empty() => {
                    return fail(name, "You must specify a summary of the issue.");
                }
                Some(s) if s.contains(['\n', '\r']) => {
                    return fail(name, "Field 'summary' cannot contain newline characters.");
                }
                Some(s) if s.chars().count() > 255 => {
                    return fail(name, "Summary must be less than 255 characters.");
                }
                Some(_) => {}
                None => return fail(name, "Operation value must be a string"),
            },
            "description" => {
                if let Err(why) = check_adf(value) {
                    return fail(
                        name,
                        &format!(
                            "Operation value must be an Atlassian Document (see the Atlassian Document Format): {why}"
                        ),
                    );
                }
            }
            "labels" => {
                let Some(labels) = value.as_array() else {
                    return fail(name, "Operation value must be an array");
                };
                for label in labels {
                    match label.as_str() {
                        Some(l) if l.is_empty() || l.chars().count() > 255 => {
                            return fail(name, "A label must be 1 to 255 characters.");
                        }
                        Some(l) if l.chars().any(char::is_whitespace) => {
                            return fail(name, "The label cannot contain spaces.");
                        }
                        Some(_) => {}
                        None => return fail(name, "A label must be a string."),
                    }
                }
            }
            "duedate" => {
                let valid = value
                    .as_str()
                    .is_some_and(|d| d.len() == 10 && d.parse::<jiff::civil::Date>().is_ok());
                if !valid {
                    return fail(name, "Error parsing date string: use YYYY-MM-DD.");
                }
            }
            "assignee" => {
                let valid = value.as_object().is_some_and(|a| {
                    a.len() == 1 && a.get("accountId").and_then(Value::as_str).is_some()
                });
                if !valid {
                    return fail(name, "Specify a valid accountId for the assignee.");
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The ADF subset a plain-text description uses: a doc of paragraphs made
/// of non-empty text nodes and hard breaks.
fn check_adf(doc: &Value) -> Result<(), String> {
    let keys_only = |node: &Value, keys: &[&str]| -> Result<(), String> {
        match node.as_object() {
            Some(map) => match map.keys().find(|k| !keys.contains(&k.as_str())) {
                Some(extra) => Err(format!("unexpected `{extra}` in {node}")),
                None => Ok(()),
            },
            None => Err(format!("{node} is not an object")),
        }
    };
    keys_only(doc, &["type", "version", "content"])?;
    if doc["type"] != "doc" || doc["version"] != 1 {
        return Err("the top node must be {type: doc, version: 1}".into());
    }
    let Some(blocks) = doc["content"].as_array() else {
        return Err("a doc needs a content array".into());
    };
    for block in blocks {
        keys_only(block, &["type", "content", "attrs"])?;
        if block["type"] != "paragraph" {
            return Err(format!("unexpected block {block}"));
        }
        let Some(inlines) = block.get("content") else {
            continue;
        };
        let Some(inlines) = inlines.as_array() else {
            return Err(format!("paragraph content must be an array: {block}"));
        };
        for inline in inlines {
            match inline["type"].as_str() {
                Some("text") => {
                    keys_only(inline, &["type", "text", "marks"])?;
                    if inline["text"].as_str().is_none_or(str::is_empty) {
                        return Err(format!("text nodes need non-empty text: {inline}"));
                    }
                }
                Some("hardBreak") => keys_only(inline, &["type", "attrs"])?,
                _ => return Err(format!("unexpected inline node {inline}")),
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Asana
// ---------------------------------------------------------------------------

/// An Asana account with one personal access token.
pub struct FakeAsana {
    base: String,
    shared: Handle<Asana>,
}
recording!(FakeAsana);

struct Asana {
    base: String,
    authorization: String,
    /// `(gid, fields)`: the written fields plus `notes` and `permalink_url`.
    tasks: Vec<(String, Map<String, Value>)>,
    next_gid: u64,
    page_size: usize,
}

impl FakeAsana {
    /// Accepts `Authorization: Bearer token` and nothing else; pages of up
    /// to 100 tasks.
    pub fn start(token: &str) -> FakeAsana {
        let (base, shared) = start(|base| Asana {
            base,
            authorization: format!("Bearer {token}"),
            tasks: Vec::new(),
            next_gid: 1201,
            page_size: 100,
        });
        FakeAsana { base, shared }
    }

    /// The base URL up to `/api/1.0`, as it goes in a connector's settings.
    pub fn api_url(&self) -> String {
        format!("{}/api/1.0", self.base)
    }

    /// At most this many tasks per page, whatever `limit` asks.
    pub fn set_page_size(&self, size: usize) {
        self.shared.lock().unwrap().service.page_size = size.max(1);
    }

    /// `(gid, fields)` of every task, in creation order; fields include the
    /// plain `notes` Asana derives from `html_notes`.
    pub fn tasks(&self) -> Vec<(String, Value)> {
        let shared = self.shared.lock().unwrap();
        shared
            .service
            .tasks
            .iter()
            .map(|(gid, fields)| (gid.clone(), Value::Object(fields.clone())))
            .collect()
    }

    /// Ticks the task off (or not), as a person in Asana.
    pub fn set_completed(&self, gid: &str, completed: bool) {
        let mut shared = self.shared.lock().unwrap();
        let task = shared.service.tasks.iter_mut().find(|(g, _)| g == gid);
        task.unwrap_or_else(|| panic!("no task {gid}"))
            .1
            .insert("completed".into(), completed.into());
    }
}

/// Asana's 400: `errors[]` with `message` and `help`.
fn asana_bad(malformed: &mut Vec<String>, message: &str) -> Reply {
    malformed.push(message.to_owned());
    asana_error(400, message)
}

fn asana_error(status: u16, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"errors": [{"message": message,
            "help": "For more information on API status codes and how to handle them, read the docs on errors: https://developers.asana.com/docs/errors"}]}),
    )
}

impl Service for Asana {
    fn rate_limited() -> Value {
        json!({"errors":[{"message":"You have made too many requests recently. Please, be chill."}]})
    }

    fn handle(&mut self, request: &Recorded, malformed: &mut Vec<String>) -> Reply {
        if request.header("authorization").as_deref() != Some(self.authorization.as_str()) {
            return asana_error(401, "Not Authorized");
        }
        let path = request.path.strip_prefix("/api/1.0/").unwrap_or("");
        let parts: Vec<&str> = path.split('/').collect();
        let data = if matches!(request.method.as_str(), "POST" | "PUT") {
            if !is_json(request) {
                return asana_bad(malformed, "Could not parse request data, invalid JSON");
            }
            let envelope = request.body.as_object();
            match envelope
                .and_then(|e| e.get("data"))
                .and_then(Value::as_object)
            {
                Some(data) if envelope.is_some_and(|e| e.len() == 1) => Some(data.clone()),
                _ => return asana_bad(malformed, "data: Missing input"),
            }
        } else {
            None
        };
        match (request.method.as_str(), parts.as_slice(), data) {
            ("GET", ["users", "me"], _) => Reply::json(
                200,
                json!({"data": {"gid": "9000", "name": "Ops Bot", "email": "ops@nw.example"}}),
            ),
            // The workspace has one project, 1201.
            ("GET", ["projects", "1201"], _) => Reply::json(
                200,
                json!({"data": {"gid": "1201", "name": "Spring launch board", "resource_type": "project"}}),
            ),
            ("GET", ["projects", _], _) => asana_error(404, "project: Not a recognized ID"),
            ("POST", ["tasks"], Some(data)) => self.create(data, malformed),
            ("GET", ["tasks"], _) => self.list(request, malformed),
            ("GET", ["tasks", gid], _) => match self.tasks.iter().find(|(g, _)| g == gid) {
                Some((gid, fields)) => {
                    let mut shown = Map::new();
                    shown.insert("gid".into(), gid.clone().into());
                    shown.insert("resource_type".into(), "task".into());
                    for field in opt_fields(request) {
                        if let Some(value) = fields.get(&field) {
                            shown.insert(field, value.clone());
                        }
                    }
                    Reply::json(200, json!({ "data": shown }))
                }
                None => asana_error(404, &format!("task: Unknown object: {gid}")),
            },
            ("PUT", ["tasks", gid], Some(data)) => self.update(gid, data, malformed),
            _ => {
                malformed.push(format!(
                    "no such route: {} {}",
                    request.method, request.path
                ));
                asana_error(404, "No matching route for request")
            }
        }
    }
}

fn opt_fields(request: &Recorded) -> Vec<String> {
    request
        .param("opt_fields")
        .map(|f| f.split(',').map(|s| s.trim().to_owned()).collect())
        .unwrap_or_default()
}

impl Asana {
    fn create(&mut self, data: Map<String, Value>, malformed: &mut Vec<String>) -> Reply {
        const CREATE: &[&str] = &[
            "name",
            "html_notes",
            "workspace",
            "projects",
            "due_at",
            "assignee",
            "completed",
        ];
        if let Err(message) = check_task(&data, CREATE) {
            return asana_bad(malformed, &message);
        }
        if data.get("workspace").and_then(Value::as_str).is_none() {
            return asana_bad(malformed, "workspace: Missing input");
        }
        let project = data["projects"]
            .as_array()
            .and_then(|p| p.first())
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if project.is_empty() {
            return asana_bad(malformed, "projects: Missing input");
        }
        let gid = self.next_gid.to_string();
        self.next_gid += 1;
        let mut fields = data;
        fields.entry("completed").or_insert(false.into());
        fields.entry("due_at").or_insert(Value::Null);
        fields.entry("assignee").or_insert(Value::Null);
        let notes = notes_of(fields.get("html_notes"));
        fields.insert("notes".into(), notes.into());
        fields.insert(
            "permalink_url".into(),
            format!("https://app.asana.com/0/{project}/{gid}").into(),
        );
        let answer = json!({"data": {"gid": gid, "resource_type": "task",
            "name": fields["name"], "completed": fields["completed"],
            "permalink_url": fields["permalink_url"]}});
        self.tasks.push((gid, fields));
        Reply::json(201, answer)
    }

    fn update(
        &mut self,
        gid: &str,
        data: Map<String, Value>,
        malformed: &mut Vec<String>,
    ) -> Reply {
        const UPDATE: &[&str] = &["name", "html_notes", "due_at", "assignee", "completed"];
        if let Some(fixed) = data
            .keys()
            .find(|k| matches!(k.as_str(), "workspace" | "projects"))
        {
            return asana_bad(malformed, &format!("{fixed}: Cannot write this property"));
        }
        if let Err(message) = check_task(&data, UPDATE) {
            return asana_bad(malformed, &message);
        }
        let Some((gid, fields)) = self.tasks.iter_mut().find(|(g, _)| g == gid) else {
            return asana_error(404, &format!("task: Unknown object: {gid}"));
        };
        for (name, value) in data {
            fields.insert(name, value);
        }
        let notes = notes_of(fields.get("html_notes"));
        fields.insert("notes".into(), notes.into());
        Reply::json(
            200,
            json!({"data": {"gid": gid, "resource_type": "task", "name": fields["name"],
                "completed": fields["completed"], "permalink_url": fields["permalink_url"]}}),
        )
    }

    fn list(&self, request: &Recorded, malformed: &mut Vec<String>) -> Reply {
        let Some(project) = request.param("project") else {
            return asana_bad(
                malformed,
                "Must specify exactly one of project, tag, section, user task list, or assignee + workspace",
            );
        };
        let limit = match request.param("limit").map(|l| l.parse::<usize>()) {
            None => 100,
            Some(Ok(l)) if (1..=100).contains(&l) => l,
            Some(_) => return asana_bad(malformed, "limit: Must be between 1 and 100"),
        };
        let start = match request.param("offset") {
            None => 0,
            Some(token) => match token.strip_prefix("page-").and_then(|n| n.parse().ok()) {
                Some(n) => n,
                None => return asana_bad(malformed, "offset: Your pagination token is invalid"),
            },
        };
        let wanted = opt_fields(request);
        let in_project: Vec<&(String, Map<String, Value>)> = self
            .tasks
            .iter()
            .filter(|(_, f)| {
                f["projects"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p.as_str() == Some(project.as_str())))
            })
            .collect();
        let end = (start + limit.min(self.page_size)).min(in_project.len());
        let page: Vec<Value> = in_project
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .map(|(gid, fields)| {
                let mut shown = Map::new();
                shown.insert("gid".into(), gid.clone().into());
                shown.insert("resource_type".into(), "task".into());
                for field in &wanted {
                    if let Some(value) = fields.get(field) {
                        shown.insert(field.clone(), value.clone());
                    }
                }
                Value::Object(shown)
            })
            .collect();
        let next_page = if end < in_project.len() {
            let offset = format!("page-{end}");
            let path = format!("/tasks?project={project}&limit={limit}&offset={offset}");
            json!({"offset": offset, "uri": format!("{}/api/1.0{path}", self.base), "path": path})
        } else {
            Value::Null
        };
        Reply::json(200, json!({"data": page, "next_page": next_page}))
    }
}

/// Asana's checks on the task fields it is sent.
fn check_task(data: &Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    for (name, value) in data {
        if !allowed.contains(&name.as_str()) {
            return Err(format!("{name}: Unknown property"));
        }
        let ok = match name.as_str() {
            "name" | "workspace" => value.is_string(),
            "html_notes" => match value.as_str() {
                Some(html) => {
                    check_html(html).map_err(|why| format!("html_notes: XML is invalid: {why}"))?;
                    true
                }
                None => false,
            },
            "projects" => value.as_array().is_some_and(|p| {
                !p.is_empty() && p.iter().all(|p| p.as_str().is_some_and(|s| !s.is_empty()))
            }),
            "due_at" => {
                value.is_null()
                    || value
                        .as_str()
                        .is_some_and(|d| d.parse::<jiff::Timestamp>().is_ok())
            }
            "assignee" => value.is_null() || value.as_str().is_some_and(|a| !a.is_empty()),
            "completed" => value.is_boolean(),
            _ => true,
        };
        if !ok {
            return Err(format!("{name}: Invalid value {value}"));
        }
    }
    Ok(())
}

/// Asana rich text: a `<body>` element, a few inline tags, and entities.
fn check_html(html: &str) -> Result<(), String> {
    let inner = html
        .strip_prefix("<body>")
        .and_then(|h| h.strip_suffix("</body>"))
        .ok_or("rich text must be one <body> element")?;
    const TAGS: &[&str] = &["strong", "em", "u", "s", "code"];
    const ENTITIES: &[&str] = &["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"];
    let mut rest = inner;
    while let Some(at) = rest.find(['<', '>', '&']) {
        let tail = &rest[at..];
        let taken = if tail.starts_with('&') {
            ENTITIES
                .iter()
                .find(|e| tail.starts_with(*e))
                .ok_or_else(|| format!("a bare & at {:?}", clip(tail)))?
                .len()
        } else if tail.starts_with('<') {
            let end = tail.find('>').ok_or("an unclosed <")?;
            let name = tail[1..end].trim_start_matches('/');
            if !TAGS.contains(&name) {
                return Err(format!("tag <{name}> is not allowed"));
            }
            end + 1
        } else {
            return Err(format!("a bare > at {:?}", clip(tail)));
        };
        rest = &tail[taken..];
    }
    Ok(())
}

fn clip(text: &str) -> String {
    text.chars().take(20).collect()
}

/// The plain text Asana keeps beside the rich text.
fn notes_of(html: Option<&Value>) -> String {
    let html = html.and_then(Value::as_str).unwrap_or("<body></body>");
    let inner = html
        .strip_prefix("<body>")
        .and_then(|h| h.strip_suffix("</body>"))
        .unwrap_or(html);
    let mut text = String::new();
    let mut in_tag = false;
    for c in inner.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

// ---------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------

/// A webhook endpoint that records what arrives and answers a set status.
pub struct WebhookReceiver {
    base: String,
    shared: Handle<Receiver>,
}
recording!(WebhookReceiver);

struct Receiver {
    status: u16,
    retry_after: Option<String>,
}

impl WebhookReceiver {
    /// Answers 204 until told otherwise.
    pub fn start() -> WebhookReceiver {
        let (base, shared) = start(|_| Receiver {
            status: 204,
            retry_after: None,
        });
        WebhookReceiver { base, shared }
    }

    /// The address to deliver to.
    pub fn hook_url(&self) -> String {
        format!("{}/hooks/spoke", self.base)
    }

    /// Answers `status` from now on, with `Retry-After` when given.
    pub fn set_status(&self, status: u16, retry_after: Option<&str>) {
        let mut shared = self.shared.lock().unwrap();
        shared.service.status = status;
        shared.service.retry_after = retry_after.map(str::to_owned);
    }
}

impl Service for Receiver {
    fn rate_limited() -> Value {
        json!({"error": "slow down"})
    }

    fn handle(&mut self, request: &Recorded, malformed: &mut Vec<String>) -> Reply {
        if request.method != "POST" || !is_json(request) {
            malformed.push(format!(
                "{} with content-type {:?}",
                request.method,
                request.header("content-type")
            ));
        }
        let mut reply = Reply::empty(self.status);
        if let Some(after) = &self.retry_after {
            reply.headers.push(("retry-after".into(), after.clone()));
        }
        reply
    }
}

/// Checks a delivery's Standard Webhooks signature with Python's `hmac`,
/// `hashlib` and `base64`: `Some(valid)`, or `None` when python3 is not
/// installed (a panic instead under `SPOKE_REQUIRE_PEERS=1`).
pub fn verify_with_python(secret: &str, headers: &HeaderMap, body: &[u8]) -> Option<bool> {
    const SCRIPT: &str = r#"
import base64, hashlib, hmac, sys
secret, msg_id, timestamp, signatures = sys.argv[1:5]
body = sys.stdin.buffer.read()
if secret.startswith("whsec_"):
    key = base64.b64decode(secret[len("whsec_"):], validate=True)
else:
    key = secret.encode()
signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
ok = any(s.startswith("v1,") and hmac.compare_digest(s[3:], expected)
         for s in signatures.split(" "))
print("valid" if ok else "invalid")
"#;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let spawned = std::process::Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(secret)
        .arg(header("webhook-id"))
        .arg(header("webhook-timestamp"))
        .arg(header("webhook-signature"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os("SPOKE_REQUIRE_PEERS").is_none(),
                "SPOKE_REQUIRE_PEERS is set but python3 is not installed"
            );
            eprintln!("skipped: install python3 to check webhook signatures independently");
            return None;
        }
        Err(e) => panic!("running python3: {e}"),
    };
    child.stdin.take().unwrap().write_all(body).unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(stdout.trim() == "valid")
}

/// Sends one raw HTTP/1.1 request and returns the status and body, for
/// checking what the fakes refuse without going through the connectors.
pub fn raw_request(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    use std::io::Read as _;
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A loopback port nothing listens on.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
