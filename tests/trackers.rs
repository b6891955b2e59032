//! The Jira, Asana and webhook connectors against stand-in services that
//! check every request the way the real ones do.

mod common_trackers;

use base64::Engine as _;
use common_trackers::{
    FakeAsana, FakeJira, Fault, WebhookReceiver, closed_port, raw_request, verify_with_python,
};
use serde_json::{Value, json};
use spoke::integrations::asana::Asana;
use spoke::integrations::jira::Jira;
use spoke::integrations::{External, PushError, TaskPayload, webhook};
use std::time::Duration;

const EMAIL: &str = "lead@example.com";
const TOKEN: &str = "jira-token-123";
const PAT: &str = "2/1200/asana-pat";

fn jira(fake: &FakeJira) -> Jira {
    Jira {
        connector: "jira-main".into(),
        base_url: format!("{}/", fake.url()),
        email: EMAIL.into(),
        token: TOKEN.into(),
        project_key: "NW".into(),
        issue_type: "Task".into(),
    }
}

fn asana(fake: &FakeAsana) -> Asana {
    Asana {
        connector: "asana-team".into(),
        base_url: fake.api_url(),
        token: PAT.into(),
        workspace: "900".into(),
        project: "1100".into(),
    }
}

fn task(marker: &str) -> TaskPayload {
    TaskPayload {
        marker: marker.into(),
        title: "Holiday email banner".into(),
        description: "Hero image for the December send.\nUse the winter palette.\n\n\nSizes: 600x300 and 1200x600.".into(),
        due: Some("2026-12-01T16:00:00Z".parse().unwrap()),
        due_date: Some("2026-12-01".into()),
        assignee: Some("5b10ac8d82e05b22cc7d4ef5".into()),
        labels: vec!["email".into(), "Q4 launch".into()],
        done: false,
    }
}

fn bare(marker: &str) -> TaskPayload {
    TaskPayload {
        description: String::new(),
        due: None,
        due_date: None,
        assignee: None,
        labels: Vec::new(),
        ..task(marker)
    }
}

fn only_request(fake_requests: Vec<common_trackers::Recorded>) -> common_trackers::Recorded {
    assert_eq!(fake_requests.len(), 1, "{fake_requests:#?}");
    fake_requests.into_iter().next().unwrap()
}

// ---------------------------------------------------------------------------
// Jira
// ---------------------------------------------------------------------------

#[tokio::test]
async fn jira_create_sends_the_exact_issue_with_basic_auth_and_returns_the_browse_link() {
    let fake = FakeJira::start(EMAIL, TOKEN);
    let created = jira(&fake).create(&task("t-7")).await.unwrap();
    assert_eq!(
        created,
        External {
            key: "NW-1".into(),
            url: format!("{}/browse/NW-1", fake.url()),
        }
    );

    let request = only_request(fake.requests());
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/rest/api/3/issue");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{EMAIL}:{TOKEN}"));
    assert_eq!(
        request.header("authorization"),
        Some(format!("Basic {basic}"))
    );
    assert_eq!(
        request.header("accept").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        request.body,
        json!({"fields": {
            "project": {"key": "NW"},
            "summary": "Holiday email banner",
            "issuetype": {"name": "Task"},
            "description": {"type": "doc", "version": 1, "content": [
                {"type": "paragraph", "content": [
                    {"type": "text", "text": "Hero image for the December send."},
                    {"type": "hardBreak"},
                    {"type": "text", "text": "Use the winter palette."}]},
                {"type": "paragraph", "content": [
                    {"type": "text", "text": "Sizes: 600x300 and 1200x600."}]}
            ]},
            "labels": ["email", "Q4-launch", "spoke-t-7"],
            "duedate": "2026-12-01",
            "assignee": {"accountId": "5b10ac8d82e05b22cc7d4ef5"}
        }})
    );
    assert!(fake.malformed().is_empty(), "{:?}", fake.malformed());
    let issues = fake.issues();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].0, "NW-1");
    assert_eq!(issues[0].1["summary"], "Holiday email banner");
}

#[tokio::test]
async fn jira_find_returns_the_issue_carrying_the_marker_label() {
    let fake = FakeJira::start(EMAIL, TOKEN);
    let jira = jira(&fake);
    jira.create(&bare("t-1")).await.unwrap();
    jira.create(&bare("t-12")).await.unwrap();

    let found = jira.find("t-12").await.unwrap();
    assert_eq!(
        found,
        Some(External {
            key: "NW-2".into(),
            url: format!("{}/browse/NW-2", fake.url()),
        })
    );
    assert_eq!(jira.find("t-99").await.unwrap(), None);

    let search = &fake.requests()[2];
    assert_eq!(search.method, "GET");
    assert_eq!(search.path, "/rest/api/3/search/jql");
    assert_eq!(
        search.param("jql").as_deref(),
        Some("labels = \"spoke-t-12\"")
    );
    assert_eq!(search.param("fields").as_deref(), Some("key"));
    assert!(fake.malformed().is_empty(), "{:?}", fake.malformed());
}

#[tokio::test]
async fn jira_update_rewrites_the_fields_and_moves_the_issue_between_done_and_not() {
    let fake = FakeJira::start(EMAIL, TOKEN);
    let jira = jira(&fake);
    let key = jira.create(&task("t-3")).await.unwrap().key;

    let mut changed = bare("t-3");
    changed.title = "Holiday email banner, v2".into();
    changed.done = true;
    jira.update(&key, &changed).await.unwrap();

    let requests = fake.requests();
    let put = &requests[1];
    assert_eq!(
        (put.method.as_str(), put.path.as_str()),
        ("PUT", "/rest/api/3/issue/NW-1")
    );
    assert_eq!(
        put.body,
        json!({"fields": {
            "summary": "Holiday email banner, v2",
            "description": {"type": "doc", "version": 1, "content": []},
            "labels": ["spoke-t-3"],
            "duedate": null,
            "assignee": null
        }})
    );
    let transition = requests.last().unwrap();
    assert_eq!(
        (transition.method.as_str(), transition.path.as_str()),
        ("POST", "/rest/api/3/issue/NW-1/transitions")
    );
    assert_eq!(transition.body, json!({"transition": {"id": "31"}}));
    assert_eq!(fake.is_done("NW-1"), Some(true));
    let fields = &fake.issues()[0].1;
    assert_eq!(fields["summary"], "Holiday email banner, v2");
    assert_eq!(fields["duedate"], Value::Null);
    assert!(jira.is_done(&key).await.unwrap());

    // Same done-ness: no transition this time.
    let before = fake.requests().len();
    jira.update(&key, &changed).await.unwrap();
    let after: Vec<_> = fake.requests()[before..]
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(after, ["PUT", "GET"]);

    changed.done = false;
    jira.update(&key, &changed).await.unwrap();
    assert_eq!(
        fake.requests().last().unwrap().body,
        json!({"transition": {"id": "11"}})
    );
    assert!(!jira.is_done(&key).await.unwrap());
    assert!(fake.malformed().is_empty(), "{:?}", fake.malformed());
}

#[tokio::test]
async fn jira_is_done_follows_the_board() {
    let fake = FakeJira::start(EMAIL, TOKEN);
    let jira = jira(&fake);
    let key = jira.create(&bare("t-4")).await.unwrap().key;
    assert!(!jira.is_done(&key).await.unwrap());
    fake.set_done(&key, true);
    assert!(jira.is_done(&key).await.unwrap());
    let status = fake.requests().pop().unwrap();
    assert_eq!(status.path, "/rest/api/3/issue/NW-1");
    assert_eq!(status.param("fields").as_deref(), Some("status"));
}

#[tokio::test]
async fn jira_without_a_done_transition_refuses_naming_the_issue_and_the_statuses() {
    let fake = FakeJira::start(EMAIL, TOKEN);
    let jira = jira(&fake);
    let key = jira.create(&bare("t-5")).await.unwrap().key;
    fake.set_transitions(&[
        ("21", "In Progress", "indeterminate"),
        ("41", "Blocked", "indeterminate"),
    ]);
    let mut done = bare("t-5");
    done.done = true;
    let error = jira.update(&key, &done).await.unwrap_err();
    let PushError::Rejected { message, .. } = &error else {
        panic!("expected a refusal, got {error:?}");
    };
    assert!(message.contains("NW-1"), "{message}");
    assert!(
        message.contains("In Progress (indeterminate), Blocked (indeterminate)"),
        "{message}"
    );
    assert!(!error.retryable());
    assert_eq!(fake.is_done("NW-1"), Some(false));
}

#[tokio::test]
async fn jira_400_shows_jiras_own_messages_and_field_errors() {
    let fake = FakeJira::start(EMAIL, TOKEN);
    fake.fail_next(Fault::Status(
        400,
        json!({"errorMessages": ["Field 'priority' is required."],
               "errors": {"customfield_10020": "Sprint is closed"}}),
    ));
    let error = jira(&fake).create(&task("t-6")).await.unwrap_err();
    let PushError::Rejected {
        status,
        message,
        connector,
    } = &error
    else {
        panic!("expected a refusal, got {error:?}");
    };
    assert_eq!((*status, connector.as_str()), (400, "jira-main"));
    assert!(
        message.contains("Field 'priority' is required."),
        "{message}"
    );
    assert!(
        message.contains("customfield_10020: Sprint is closed"),
        "{message}"
    );
    assert!(!error.retryable());
}

#[tokio::test]
async fn jira_404_on_create_names_the_project() {
    let fake = FakeJira::start(EMAIL, TOKEN);
    fake.fail_next(Fault::Status(
        404,
        json!({"errorMessages": ["Not Found"], "errors": {}}),
    ));
    let error = jira(&fake).create(&task("t-6")).await.unwrap_err();
    assert!(
        matches!(&error, PushError::Rejected { status: 404, message, .. } if message.contains("project NW")),
        "{error:?}"
    );
}

#[tokio::test]
async fn jira_401_is_an_auth_error_naming_the_connector_setting() {
    let fake = FakeJira::start(EMAIL, "the-right-token");
    let error = jira(&fake).create(&task("t-8")).await.unwrap_err();
    let PushError::Auth {
        status,
        setting,
        connector,
        ..
    } = &error
    else {
        panic!("expected an auth error, got {error:?}");
    };
    assert_eq!(*status, 401);
    assert_eq!(connector, "jira-main");
    assert_eq!(
        setting,
        "the email and API token of connector jira-main (spoke integrations secret jira-main)"
    );
    assert!(!error.retryable());
    assert!(!error.to_string().contains(TOKEN), "{error}");
    assert!(fake.issues().is_empty());
}

#[tokio::test]
async fn jira_429_with_retry_after_asks_to_wait_that_long() {
    let fake = FakeJira::start(EMAIL, TOKEN);
    fake.fail_next(Fault::RetryAfter(2));
    let error = jira(&fake).create(&task("t-9")).await.unwrap_err();
    assert_eq!(
        error,
        PushError::RetryAfter {
            connector: "jira-main".into(),
            status: 429,
            after: Duration::from_secs(2),
        }
    );
    assert!(error.retryable());
    // The next attempt goes through.
    assert_eq!(jira(&fake).create(&task("t-9")).await.unwrap().key, "NW-1");
}

#[tokio::test]
async fn jira_server_errors_and_a_closed_port_are_transient_and_name_the_url() {
    let fake = FakeJira::start(EMAIL, TOKEN);
    fake.fail_next(Fault::Status(502, json!({"message": "upstream"})));
    let error = jira(&fake).is_done("NW-1").await.unwrap_err();
    assert!(error.retryable(), "{error:?}");
    assert!(error.to_string().contains("502"), "{error}");

    let port = closed_port();
    let mut unreachable = jira(&fake);
    unreachable.base_url = format!("http://{EMAIL}:{TOKEN}@127.0.0.1:{port}");
    let error = unreachable.create(&task("t-10")).await.unwrap_err();
    let PushError::Transient { message, .. } = &error else {
        panic!("expected a transient error, got {error:?}");
    };
    assert!(
        message.contains(&format!("POST http://127.0.0.1:{port}/rest/api/3/issue")),
        "{message}"
    );
    assert!(!message.contains(TOKEN), "{message}");
}

#[tokio::test]
async fn a_jira_create_cut_short_is_found_again_by_its_marker() {
    let fake = FakeJira::start(EMAIL, TOKEN);
    fake.fail_next(Fault::StallAfterCreate(Duration::from_secs(20)));
    let connector = jira(&fake);
    let payload = task("t-11");
    let delivery = tokio::spawn(async move { connector.create(&payload).await });
    for _ in 0..500 {
        if !fake.issues().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(fake.issues().len(), 1, "the issue was created");
    // The pushing process dies before the answer arrives.
    delivery.abort();
    assert!(delivery.await.unwrap_err().is_cancelled());

    let found = jira(&fake).find("t-11").await.unwrap();
    assert_eq!(found.map(|e| e.key).as_deref(), Some("NW-1"));
}

#[test]
fn the_fake_jira_refuses_what_jira_refuses() {
    let fake = FakeJira::start(EMAIL, TOKEN);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{EMAIL}:{TOKEN}"));
    let auth = format!("Basic {basic}");
    let headers = [
        ("authorization", auth.as_str()),
        ("accept", "application/json"),
        ("content-type", "application/json"),
    ];
    let bad_adf = json!({"fields": {"project": {"key": "NW"}, "issuetype": {"name": "Task"},
        "summary": "ok", "description": "plain text"}});
    let (status, body) = raw_request(
        &fake.url(),
        "POST",
        "/rest/api/3/issue",
        &headers,
        &bad_adf.to_string(),
    );
    assert_eq!(status, 400);
    assert!(body["errors"]["description"].is_string(), "{body}");
    let spaced = json!({"fields": {"project": {"key": "NW"}, "issuetype": {"name": "Task"},
        "summary": "two\nlines", "labels": ["a b"]}});
    let (status, _) = raw_request(
        &fake.url(),
        "POST",
        "/rest/api/3/issue",
        &headers,
        &spaced.to_string(),
    );
    assert_eq!(status, 400);
    assert_eq!(fake.malformed().len(), 2, "{:?}", fake.malformed());
    assert!(fake.issues().is_empty());
}

// ---------------------------------------------------------------------------
// Asana
// ---------------------------------------------------------------------------

#[tokio::test]
async fn asana_create_wraps_the_task_in_data_and_escapes_the_notes() {
    let fake = FakeAsana::start(PAT);
    let mut payload = task("t-20");
    payload.title = "Banner <script>alert(\"x\")</script> & more".into();
    payload.description = "Keep <script> out & use \"quotes\"\nsecond line\n\nnext".into();
    let created = asana(&fake).create(&payload).await.unwrap();
    assert_eq!(
        created,
        External {
            key: "1201".into(),
            url: "https://app.asana.com/0/1100/1201".into(),
        }
    );

    let request = only_request(fake.requests());
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/api/1.0/tasks")
    );
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {PAT}"))
    );
    assert_eq!(
        request.body,
        json!({"data": {
            "name": "Banner <script>alert(\"x\")</script> & more",
            "html_notes": "<body>Keep &lt;script&gt; out &amp; use &quot;quotes&quot;\nsecond line\n\nnext\n\nSpoke task t-20</body>",
            "workspace": "900",
            "projects": ["1100"],
            "due_at": "2026-12-01T16:00:00Z",
            "assignee": "5b10ac8d82e05b22cc7d4ef5",
            "completed": false
        }})
    );
    assert!(fake.malformed().is_empty(), "{:?}", fake.malformed());
    let (_, stored) = &fake.tasks()[0];
    assert_eq!(
        stored["notes"],
        "Keep <script> out & use \"quotes\"\nsecond line\n\nnext\n\nSpoke task t-20"
    );
}

#[tokio::test]
async fn asana_find_follows_next_page_and_matches_whole_marker_lines() {
    let fake = FakeAsana::start(PAT);
    fake.set_page_size(2);
    let asana = asana(&fake);
    for marker in ["t-12", "t-2", "t-1"] {
        asana.create(&bare(marker)).await.unwrap();
    }
    let before = fake.requests().len();
    let found = asana.find("t-1").await.unwrap();
    assert_eq!(
        found,
        Some(External {
            key: "1203".into(),
            url: "https://app.asana.com/0/1100/1203".into(),
        })
    );
    let pages: Vec<_> = fake.requests()[before..].to_vec();
    assert_eq!(pages.len(), 2, "{pages:#?}");
    assert_eq!(pages[0].param("project").as_deref(), Some("1100"));
    assert_eq!(
        pages[0].param("opt_fields").as_deref(),
        Some("notes,permalink_url")
    );
    assert_eq!(pages[0].param("limit").as_deref(), Some("100"));
    assert_eq!(pages[0].param("offset"), None);
    assert_eq!(pages[1].param("offset").as_deref(), Some("page-2"));

    assert_eq!(asana.find("t-3").await.unwrap(), None);
    assert!(fake.malformed().is_empty(), "{:?}", fake.malformed());
}

#[tokio::test]
async fn asana_update_completes_the_task_and_clears_what_is_gone() {
    let fake = FakeAsana::start(PAT);
    let asana = asana(&fake);
    let gid = asana.create(&task("t-21")).await.unwrap().key;
    assert!(!asana.is_done(&gid).await.unwrap());

    let mut changed = bare("t-21");
    changed.done = true;
    asana.update(&gid, &changed).await.unwrap();
    let put = fake.requests()[2].clone();
    assert_eq!(
        (put.method.as_str(), put.path.as_str()),
        ("PUT", "/api/1.0/tasks/1201")
    );
    assert_eq!(
        put.body,
        json!({"data": {
            "name": "Holiday email banner",
            "html_notes": "<body>Spoke task t-21</body>",
            "due_at": null,
            "assignee": null,
            "completed": true
        }})
    );
    let (_, stored) = &fake.tasks()[0];
    assert_eq!(stored["completed"], true);
    assert_eq!(stored["due_at"], Value::Null);
    assert!(asana.is_done(&gid).await.unwrap());
    let read = fake.requests().pop().unwrap();
    assert_eq!(read.param("opt_fields").as_deref(), Some("completed"));

    fake.set_completed(&gid, false);
    assert!(!asana.is_done(&gid).await.unwrap());
    // The marker line survives the update.
    assert_eq!(asana.find("t-21").await.unwrap().map(|e| e.key), Some(gid));
    assert!(fake.malformed().is_empty(), "{:?}", fake.malformed());
}

#[tokio::test]
async fn asana_errors_sort_into_refusals_auth_waits_and_transients() {
    let fake = FakeAsana::start(PAT);
    let asana = asana(&fake);
    fake.fail_next(Fault::Status(
        400,
        json!({"errors": [{"message": "assignee: Not a recognized ID: 77", "help": "…"},
                          {"message": "due_at: Invalid date", "help": "…"}]}),
    ));
    let error = asana.create(&task("t-22")).await.unwrap_err();
    assert!(
        matches!(&error, PushError::Rejected { status: 400, message, .. }
            if message.contains("assignee: Not a recognized ID: 77; due_at: Invalid date")),
        "{error:?}"
    );

    let error = asana.update("999", &task("t-22")).await.unwrap_err();
    assert!(
        matches!(&error, PushError::Rejected { status: 404, message, .. } if message.contains("Unknown object: 999")),
        "{error:?}"
    );

    fake.fail_next(Fault::RetryAfter(30));
    let error = asana.is_done("1201").await.unwrap_err();
    assert!(
        matches!(error, PushError::RetryAfter { status: 429, after, .. } if after == Duration::from_secs(30)),
        "{error:?}"
    );

    let mut wrong = asana.clone();
    wrong.token = "expired".into();
    let error = wrong.find("t-22").await.unwrap_err();
    let PushError::Auth {
        status, setting, ..
    } = &error
    else {
        panic!("expected an auth error, got {error:?}");
    };
    assert_eq!(*status, 401);
    assert_eq!(
        setting,
        "the personal access token of connector asana-team (spoke integrations secret asana-team)"
    );

    let mut unreachable = asana.clone();
    unreachable.base_url = format!("http://127.0.0.1:{}/api/1.0", closed_port());
    let error = unreachable.create(&task("t-22")).await.unwrap_err();
    assert!(matches!(error, PushError::Transient { .. }), "{error:?}");
    assert!(fake.tasks().is_empty());
}

#[test]
fn the_fake_asana_refuses_what_asana_refuses() {
    let fake = FakeAsana::start(PAT);
    let auth = format!("Bearer {PAT}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let unescaped = json!({"data": {"name": "x", "workspace": "900", "projects": ["1100"],
        "html_notes": "<body><script>&</script></body>"}});
    let (status, body) = raw_request(
        &fake.url(),
        "POST",
        "/api/1.0/tasks",
        &headers,
        &unescaped.to_string(),
    );
    assert_eq!(status, 400);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("html_notes"),
        "{body}"
    );
    let no_envelope = json!({"name": "x", "workspace": "900", "projects": ["1100"]});
    let (status, _) = raw_request(
        &fake.url(),
        "POST",
        "/api/1.0/tasks",
        &headers,
        &no_envelope.to_string(),
    );
    assert_eq!(status, 400);
    assert_eq!(fake.malformed().len(), 2, "{:?}", fake.malformed());
    assert!(fake.tasks().is_empty());
}

// ---------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------

#[tokio::test]
async fn webhook_signatures_verify_independently_and_a_tampered_body_does_not() {
    let receiver = WebhookReceiver::start();
    let body = br#"{"type":"task.approved","task":"t-30"}"#;
    let secrets = [
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "a raw shared secret",
    ];
    for (n, secret) in secrets.iter().enumerate() {
        let id = format!("msg_{n}");
        webhook::send(
            "hooks",
            &receiver.hook_url(),
            secret,
            &id,
            1_765_000_000,
            body,
        )
        .await
        .unwrap();
        let request = receiver.requests().pop().unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/hooks/spoke");
        assert_eq!(
            request.header("content-type").as_deref(),
            Some("application/json")
        );
        assert_eq!(request.header("webhook-id"), Some(id.clone()));
        assert_eq!(
            request.header("webhook-timestamp").as_deref(),
            Some("1765000000")
        );
        assert_eq!(request.raw, body);
        assert_eq!(
            request.header("webhook-signature"),
            Some(webhook::sign(secret, &id, 1_765_000_000, body).unwrap())
        );

        let Some(valid) = verify_with_python(secret, &request.headers, &request.raw) else {
            return;
        };
        assert!(valid, "python rejects the signature for secret {secret:?}");
        let tampered = br#"{"type":"task.approved","task":"t-31"}"#;
        assert_eq!(
            verify_with_python(secret, &request.headers, tampered),
            Some(false)
        );
        assert_eq!(
            verify_with_python("whsec_c29tZXRoaW5nIGVsc2U=", &request.headers, &request.raw),
            Some(false)
        );
    }
    assert!(
        receiver.malformed().is_empty(),
        "{:?}",
        receiver.malformed()
    );
}

#[tokio::test]
async fn webhook_answers_sort_into_gone_refused_wait_and_transient() {
    let receiver = WebhookReceiver::start();
    let url = receiver.hook_url();
    let send = || webhook::send("hooks", &url, "secret", "msg_1", 1, b"{}");

    receiver.set_status(410, None);
    let error = send().await.unwrap_err();
    assert!(
        matches!(&error, PushError::Rejected { status: 410, message, .. } if message.contains("gone")),
        "{error:?}"
    );
    receiver.set_status(400, None);
    assert!(matches!(
        send().await.unwrap_err(),
        PushError::Rejected { status: 400, .. }
    ));
    receiver.set_status(503, Some("5"));
    assert!(matches!(
        send().await.unwrap_err(),
        PushError::RetryAfter { status: 503, after, .. } if after == Duration::from_secs(5)
    ));
    receiver.set_status(500, None);
    assert!(matches!(
        send().await.unwrap_err(),
        PushError::Transient { .. }
    ));
    receiver.set_status(200, None);
    send().await.unwrap();
    // The same id on every attempt.
    let ids: Vec<_> = receiver
        .requests()
        .iter()
        .map(|r| r.header("webhook-id").unwrap())
        .collect();
    assert_eq!(ids, ["msg_1"; 5]);

    let port = closed_port();
    let error = webhook::send(
        "hooks",
        &format!("http://127.0.0.1:{port}/in?token=hidden"),
        "secret",
        "msg_2",
        1,
        b"{}",
    )
    .await
    .unwrap_err();
    let PushError::Transient { message, .. } = &error else {
        panic!("expected a transient error, got {error:?}");
    };
    assert!(
        message.contains(&format!("http://127.0.0.1:{port}/in")),
        "{message}"
    );
    assert!(!message.contains("hidden"), "{message}");
}

#[tokio::test]
async fn a_webhook_secret_that_is_not_base64_is_refused_before_sending() {
    let receiver = WebhookReceiver::start();
    let error = webhook::send(
        "hooks",
        &receiver.hook_url(),
        "whsec_???",
        "msg_1",
        1,
        b"{}",
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, PushError::Rejected { message, .. } if message.contains("signing secret of connector hooks")),
        "{error:?}"
    );
    assert!(receiver.requests().is_empty());
}
