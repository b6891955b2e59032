//! Integrations end to end: members on a relay on loopback, a lead's
//! approval of the agent's three-task `propose_tasks` proposal, and the pusher (the real `spoke`
//! binary) delivering to local servers that speak Jira's, Asana's and the
//! Standard Webhooks wire formats. Exactly once is checked the hard ways:
//! a pusher killed mid-create, two pushers at once, a 429 before success.

mod common_cli;
mod common_llm;
mod common_trackers;

use common_cli::{LoopbackHub, base_command, json_in as json, ok_in as ok, spoke_in as spoke};
use common_trackers::{FakeAsana, FakeJira, Fault, WebhookReceiver, verify_with_python};
use serde_json::{Value, json};
use spoke::agent::tools::ToolOutcome;
use spoke::model::{Change, EntityKind, EntityRef};
use spoke::service::Hub;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const JIRA_EMAIL: &str = "ops@nw.example";
const JIRA_TOKEN: &str = "jira-token-1";
const ASANA_TOKEN: &str = "asana-pat-1";
const HOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A hub on a relay with a lead (ana), a second lead (bea), a creative
/// (kenji) and the agent (scout) that pushes.
struct Studio {
    root: tempfile::TempDir,
    relay: LoopbackHub,
    ana: PathBuf,
    bea: PathBuf,
    scout: PathBuf,
    brief: String,
}

impl Studio {
    fn new() -> Studio {
        let root = tempfile::tempdir().expect("tmp");
        let relay = LoopbackHub::start(&root.path().join("relay"), "North");
        let mut studio = Studio {
            ana: root.path().join("ana"),
            bea: root.path().join("bea"),
            scout: root.path().join("scout"),
            root,
            relay,
            brief: String::new(),
        };
        for (home, handle, role) in [
            (studio.ana.clone(), "ana", "lead"),
            (studio.bea.clone(), "bea", "lead"),
            (studio.root.path().join("kenji"), "kenji", "creative"),
            (studio.scout.clone(), "scout", "agent"),
        ] {
            studio.relay.join(&home, handle, role);
        }
        let brief = ok(
            &studio.ana,
            &[
                "brief",
                "add",
                "--title",
                "Spring launch",
                "--due",
                "2030-03-14T17:00",
            ],
        );
        studio.brief = brief.trim().to_owned();
        ok(&studio.ana, &["sync"]);
        studio
    }

    /// Ana connects Jira and Asana, maps kenji, names scout the pusher;
    /// scout stores the secrets on its machine.
    fn connect_trackers(&self, jira: &FakeJira, asana: &FakeAsana) {
        ok(
            &self.ana,
            &[
                "integrations",
                "add",
                "jira",
                "--set",
                &format!("url={}", jira.url()),
                "--set",
                &format!("email={JIRA_EMAIL}"),
                "--set",
                "project=NW",
                "--set",
                "labels=campaign",
            ],
        );
        ok(
            &self.ana,
            &[
                "integrations",
                "add",
                "asana",
                "--set",
                &format!("url={}", asana.api_url()),
                "--set",
                "workspace=1200",
                "--set",
                "project=1201",
            ],
        );
        ok(
            &self.ana,
            &["integrations", "member", "jira", "kenji", "acc-kenji"],
        );
        ok(
            &self.ana,
            &["integrations", "member", "asana", "kenji", "9001"],
        );
        ok(&self.ana, &["integrations", "pusher", "scout"]);
        ok(&self.ana, &["sync"]);
        store_secret(&self.scout, "jira", JIRA_TOKEN);
        store_secret(&self.scout, "asana", ASANA_TOKEN);
        ok(&self.scout, &["sync"]);
    }

    /// A studio with only a Jira connector, whose site accepts `token`.
    fn with_jira(token: &str) -> (Studio, FakeJira) {
        let studio = Studio::new();
        let jira = FakeJira::start(JIRA_EMAIL, token);
        let asana = FakeAsana::start(ASANA_TOKEN);
        studio.connect_trackers(&jira, &asana);
        ok(&studio.ana, &["integrations", "remove", "asana"]);
        ok(&studio.ana, &["sync"]);
        (studio, jira)
    }

    /// The agent proposes three tasks for the brief through its
    /// `propose_tasks` tool, as a model's tool call would; ana approves.
    fn approve_three_tasks(&self) {
        ok(&self.scout, &["sync"]);
        let request = {
            let mut hub = Hub::open(&self.scout, None).expect("scout's replica");
            let call = common_llm::tool_call(
                "propose_tasks",
                json!({
                    "brief_id": self.brief,
                    "tasks": [
                        {"title": "Hero image, three crops", "assignee": "kenji"},
                        {"title": "Copy variants for LinkedIn"},
                        {"title": "Launch newsletter", "assignee": "@kenji"},
                    ],
                    "rationale": "three tasks for the launch",
                }),
            );
            match common_llm::run_tool(&mut hub, "test", &call) {
                ToolOutcome::Proposed { approval, .. } => approval,
                other => panic!("the tool proposed nothing: {}", other.for_model()),
            }
        };
        // The agent's proposals go to every lead; both approve, each on
        // their own machine.
        ok(&self.scout, &["sync"]);
        for lead in [&self.ana, &self.bea] {
            ok(lead, &["sync"]);
            ok(lead, &["approve", &request]);
            ok(lead, &["sync"]);
        }
        ok(&self.ana, &["sync"]);
        ok(&self.scout, &["sync"]);
    }

    /// Ana adds the webhook connector `hooks` for `events` (all when none).
    fn add_webhook(&self, receiver: &WebhookReceiver, events: &[&str]) {
        let url = format!("url={}", receiver.hook_url());
        let mut args = vec!["integrations", "add", "webhook", "hooks", "--set", &url];
        for e in events {
            args.extend(["--event", e]);
        }
        ok(&self.ana, &args);
    }

    fn tasks(&self, home: &Path) -> Vec<Value> {
        ok(home, &["sync"]);
        json(home, &["brief", "show", &self.brief])["tasks"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

fn store_secret(home: &Path, name: &str, secret: &str) {
    let config = home.with_extension("toml");
    let mut child = base_command()
        .arg("--home")
        .arg(home)
        .arg("--config")
        .arg(&config)
        .args(["integrations", "secret", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn spoke");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{secret}\n").as_bytes())
        .expect("write the secret");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "storing the {name} secret failed");
}

fn push_command(home: &Path) -> Command {
    let mut cmd = base_command();
    cmd.arg("--home")
        .arg(home)
        .arg("--config")
        .arg(home.with_extension("toml"))
        .args(["integrations", "push", "--once"]);
    cmd
}

fn push_once(home: &Path) -> Value {
    json(home, &["integrations", "push", "--once"])
}

/// The outbox as `home` sees it after a sync.
fn outbox(home: &Path) -> Vec<Value> {
    ok(home, &["sync"]);
    json(home, &["integrations", "status"])["outbox"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn creates(requests: &[common_trackers::Recorded], path: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == path)
        .count()
}

#[test]
fn an_approved_three_task_proposal_becomes_three_jira_issues_and_three_asana_tasks_once() {
    let studio = Studio::new();
    let jira = FakeJira::start(JIRA_EMAIL, JIRA_TOKEN);
    let asana = FakeAsana::start(ASANA_TOKEN);
    studio.connect_trackers(&jira, &asana);
    studio.approve_three_tasks();

    // The approval queued one item per task and tracker, in its own commit.
    let queued = outbox(&studio.ana);
    assert_eq!(queued.len(), 6, "{queued:#?}");
    assert!(queued.iter().all(|d| d["status"] == "pending"));

    let report = push_once(&studio.scout);
    assert_eq!(
        report["delivered"].as_array().map(Vec::len),
        Some(6),
        "{report:#}"
    );
    assert_eq!(jira.issues().len(), 3, "{:#?}", jira.issues());
    assert_eq!(asana.tasks().len(), 3, "{:#?}", asana.tasks());
    assert!(jira.malformed().is_empty(), "{:?}", jira.malformed());
    assert!(asana.malformed().is_empty(), "{:?}", asana.malformed());

    // What Jira received: the project, the summary, ADF, labels, the due
    // date in the brief's zone, kenji's account id.
    let (_, hero) = &jira.issues()[0];
    assert_eq!(hero["project"]["key"], "NW");
    assert_eq!(hero["summary"], "Hero image, three crops");
    assert_eq!(hero["description"]["type"], "doc");
    assert_eq!(hero["duedate"], "2030-03-14");
    assert_eq!(hero["assignee"]["accountId"], "acc-kenji");
    let labels: Vec<&str> = hero["labels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        labels.contains(&"campaign") && labels.contains(&"spoke"),
        "{labels:?}"
    );
    let (_, copy) = &jira.issues()[1];
    assert!(copy.get("assignee").is_none_or(Value::is_null), "{copy:#}");
    let (_, asana_hero) = &asana.tasks()[0];
    assert_eq!(asana_hero["assignee"], "9001");
    assert_eq!(asana_hero["projects"], json!(["1201"]));

    // The keys show in `spoke brief show` on another member's machine.
    let tasks = studio.tasks(&studio.bea);
    assert_eq!(tasks.len(), 3);
    let jira_keys: Vec<String> = jira.issues().into_iter().map(|(k, _)| k).collect();
    for task in &tasks {
        let key = task["external"]["jira"]["key"].as_str().unwrap_or_default();
        assert!(jira_keys.contains(&key.to_owned()), "{task:#}");
        assert!(
            task["external"]["jira"]["url"]
                .as_str()
                .is_some_and(|u| u.ends_with(&format!("/browse/{key}"))),
            "{task:#}"
        );
        assert!(
            task["external"]["asana"]["key"].as_str().is_some(),
            "{task:#}"
        );
    }
    let text = ok(&studio.bea, &["brief", "show", &studio.brief]);
    assert!(text.contains(&format!("jira {}", jira_keys[0])), "{text}");

    // Pushing again makes nothing twice.
    let again = push_once(&studio.scout);
    assert_eq!(
        again["delivered"].as_array().map(Vec::len),
        Some(0),
        "{again:#}"
    );
    assert_eq!(creates(&jira.requests(), "/rest/api/3/issue"), 3);
    assert_eq!(creates(&asana.requests(), "/api/1.0/tasks"), 3);
    assert!(
        outbox(&studio.ana).iter().all(|d| d["status"] == "done"),
        "{:#?}",
        outbox(&studio.ana)
    );
}

#[test]
fn a_429_with_retry_after_is_waited_out_and_delivers_once() {
    let (studio, jira) = Studio::with_jira(JIRA_TOKEN);
    studio.approve_three_tasks();
    jira.fail_next(Fault::RetryAfter(1));
    let report = push_once(&studio.scout);
    assert_eq!(
        report["delivered"].as_array().map(Vec::len),
        Some(3),
        "{report:#}"
    );
    assert_eq!(
        report["retrying"].as_array().map(Vec::len),
        Some(1),
        "{report:#}"
    );
    assert_eq!(jira.issues().len(), 3);
    let throttled: Vec<_> = outbox(&studio.scout)
        .into_iter()
        .filter(|d| d["attempts"] == 2)
        .collect();
    assert_eq!(throttled.len(), 1, "one item was tried twice");
    assert_eq!(throttled[0]["status"], "done");
}

#[test]
fn a_pusher_killed_mid_create_adopts_the_issue_after_restart_instead_of_making_it_twice() {
    let (studio, jira) = Studio::with_jira(JIRA_TOKEN);
    studio.approve_three_tasks();
    // The first lookup answers, the create makes the issue and then hangs.
    jira.fail_next(Fault::Status(200, json!({"issues": [], "isLast": true})));
    jira.fail_next(Fault::StallAfterCreate(Duration::from_secs(60)));
    let mut child: Child = push_command(&studio.scout)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the pusher");
    let started = Instant::now();
    while jira.issues().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the pusher never created an issue"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill -9 the pusher");
    let _ = child.wait();
    let made_before_the_crash = jira.issues()[0].0.clone();

    let report = push_once(&studio.scout);
    assert_eq!(
        report["delivered"].as_array().map(Vec::len),
        Some(3),
        "{report:#}"
    );
    let keys: Vec<String> = jira.issues().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys.len(), 3, "exactly one issue per task: {keys:?}");
    let tasks = studio.tasks(&studio.ana);
    assert!(
        tasks
            .iter()
            .any(|t| t["external"]["jira"]["key"] == made_before_the_crash.as_str()),
        "the issue made before the crash is the task's: {tasks:#?}"
    );
}

#[test]
fn two_pushers_and_two_leads_online_at_once_make_each_issue_once() {
    let (studio, jira) = Studio::with_jira(JIRA_TOKEN);
    // A second machine of the pusher, with the same secret.
    let scout2 = studio.root.path().join("scout2");
    studio.relay.join(&scout2, "scout", "agent");
    store_secret(&scout2, "jira", JIRA_TOKEN);
    studio.approve_three_tasks();
    ok(&scout2, &["sync"]);
    ok(&studio.bea, &["sync"]);

    // Leads that are not the pusher deliver nothing, with a clear reason.
    store_secret(&studio.bea, "jira", JIRA_TOKEN);
    let out = spoke(&studio.bea, &["integrations", "push", "--once"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not this hub's pusher") && err.contains("@scout"),
        "{err}"
    );

    // Both machines of the pusher at once.
    let children: Vec<Child> = [&studio.scout, &scout2]
        .iter()
        .map(|home| {
            push_command(home)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn a pusher")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Whichever lost the lease now finds nothing left to do.
    push_once(&studio.scout);
    push_once(&scout2);
    assert_eq!(jira.issues().len(), 3, "{:#?}", jira.issues());
    assert_eq!(creates(&jira.requests(), "/rest/api/3/issue"), 3);
}

#[test]
fn tracker_state_flows_back_and_a_later_change_is_an_update_not_a_second_create() {
    let (studio, jira) = Studio::with_jira(JIRA_TOKEN);
    studio.approve_three_tasks();
    push_once(&studio.scout);
    let (first_key, _) = jira.issues()[0].clone();

    // Someone closes the issue in Jira: the task becomes done in Spoke.
    jira.set_done(&first_key, true);
    let report = push_once(&studio.scout);
    assert_eq!(report["mirrored"], 1, "{report:#}");
    let tasks = studio.tasks(&studio.ana);
    let first = tasks
        .iter()
        .find(|t| t["external"]["jira"]["key"] == first_key.as_str())
        .expect("the task of the first issue");
    assert_eq!(first["status"], "done", "{first:#}");
    // Mirroring pushed nothing back.
    assert!(!jira.requests().iter().any(|r| r.method == "PUT"));

    // A lead renames another task and reopens the first in Spoke.
    let second = tasks
        .iter()
        .find(|t| t["external"]["jira"]["key"] != first_key.as_str())
        .expect("another task");
    let second_id = second["id"].as_str().unwrap().to_owned();
    let second_key = second["external"]["jira"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(
        &studio.ana,
        &["task", "set", &second_id, "title=Hero image, four crops"],
    );
    ok(
        &studio.ana,
        &["task", "set", first["id"].as_str().unwrap(), "status=todo"],
    );
    ok(&studio.ana, &["sync"]);
    let report = push_once(&studio.scout);
    assert_eq!(report["updates_queued"], 2, "{report:#}");
    assert_eq!(jira.issues().len(), 3, "no second create");
    let renamed = jira
        .issues()
        .into_iter()
        .find(|(k, _)| *k == second_key)
        .expect("the renamed issue");
    assert_eq!(renamed.1["summary"], "Hero image, four crops");
    assert_eq!(
        jira.is_done(&first_key),
        Some(false),
        "reopened through a transition"
    );
    // And nothing more on the next pass.
    let quiet = push_once(&studio.scout);
    assert_eq!(quiet["updates_queued"], 0, "{quiet:#}");
}

#[test]
fn failures_name_the_connector_keep_jiras_words_and_lose_nothing() {
    let (studio, jira) = Studio::with_jira("the-right-token");
    studio.approve_three_tasks();

    // A wrong token: every item fails at once, naming the connector and
    // what to fix; nothing is made.
    let report = push_once(&studio.scout);
    assert_eq!(
        report["failed"].as_array().map(Vec::len),
        Some(3),
        "{report:#}"
    );
    ok(&studio.ana, &["sync"]);
    let status = ok(&studio.ana, &["integrations", "status"]);
    assert!(status.contains("3 failed"), "{status}");
    assert!(
        status.contains("jira")
            && status.contains("401")
            && status.contains("integrations secret jira"),
        "{status}"
    );
    assert!(jira.issues().is_empty());

    // Jira's own 400 words come through.
    store_secret(&studio.scout, "jira", "the-right-token");
    let failed: Vec<String> = outbox(&studio.ana)
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    for id in &failed {
        ok(&studio.ana, &["integrations", "retry", id]);
    }
    ok(&studio.ana, &["sync"]);
    jira.fail_next(Fault::Status(200, json!({"issues": [], "isLast": true})));
    jira.fail_next(Fault::Status(
        400,
        json!({"errorMessages": ["Issue type is required."], "errors": {"duedate": "Due date is invalid."}}),
    ));
    let report = push_once(&studio.scout);
    assert_eq!(
        report["delivered"].as_array().map(Vec::len),
        Some(2),
        "{report:#}"
    );
    let error = report["failed"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("Issue type is required.")
            && error.contains("duedate: Due date is invalid."),
        "{error}"
    );

    // A server that is down leaves the item queued, counted and timed.
    let bad = failed
        .iter()
        .find(|id| {
            outbox(&studio.ana)
                .iter()
                .any(|d| d["id"] == id.as_str() && d["status"] == "failed")
        })
        .expect("the refused item")
        .clone();
    ok(
        &studio.ana,
        &[
            "integrations",
            "add",
            "jira",
            "--set",
            &format!("url=http://127.0.0.1:{}", common_cli::closed_port()),
            "--set",
            &format!("email={JIRA_EMAIL}"),
            "--set",
            "project=NW",
            "--set",
            "labels=campaign",
        ],
    );
    ok(&studio.ana, &["integrations", "retry", &bad]);
    ok(&studio.ana, &["sync"]);
    let report = push_once(&studio.scout);
    // Tried, and within the run tried once more after its backoff.
    assert_eq!(
        report["retrying"].as_array().map(Vec::len),
        Some(2),
        "{report:#}"
    );
    assert_eq!(report["updates_queued"], 0, "{report:#}");
    let item = outbox(&studio.scout)
        .into_iter()
        .find(|d| d["id"] == bad.as_str())
        .expect("the item");
    assert_eq!(item["status"], "pending", "{item:#}");
    assert_eq!(item["attempts"], 2);
    assert!(
        item["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("jira") && e.contains("127.0.0.1")),
        "{item:#}"
    );
    assert!(item["next_at"].as_u64().is_some(), "{item:#}");
    assert_eq!(jira.issues().len(), 2);
}

#[test]
fn webhooks_are_signed_the_standard_way_and_keep_their_id_across_retries() {
    let studio = Studio::new();
    let receiver = WebhookReceiver::start();
    studio.add_webhook(&receiver, &["brief.created"]);
    ok(&studio.ana, &["integrations", "pusher", "scout"]);
    store_secret(&studio.scout, "hooks", HOOK_SECRET);
    // A brief a lead files now is an event; the receiver is down at first.
    ok(
        &studio.ana,
        &["brief", "add", "--title", "Autumn catalogue"],
    );
    ok(&studio.ana, &["sync"]);
    receiver.set_status(503, Some("120"));
    let report = push_once(&studio.scout);
    assert_eq!(
        report["retrying"].as_array().map(Vec::len),
        Some(1),
        "{report:#}"
    );
    let item = outbox(&studio.scout).remove(0);
    assert_eq!(item["status"], "pending");
    assert!(
        item["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("503")),
        "{item:#}"
    );
    // A lead does not wait the two minutes out.
    ok(&studio.ana, &["sync"]);
    ok(
        &studio.ana,
        &["integrations", "retry", item["id"].as_str().unwrap()],
    );
    ok(&studio.ana, &["sync"]);
    receiver.set_status(204, None);
    let report = push_once(&studio.scout);
    assert_eq!(
        report["delivered"].as_array().map(Vec::len),
        Some(1),
        "{report:#}"
    );

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2, "one failed attempt and one delivery");
    let ids: Vec<_> = requests.iter().map(|r| r.header("webhook-id")).collect();
    assert!(
        ids[0].is_some() && ids[0] == ids[1],
        "same id on the retry: {ids:?}"
    );
    let last = &requests[1];
    assert_eq!(last.body["type"], "brief.created");
    assert_eq!(last.body["data"]["title"], "Autumn catalogue");
    match verify_with_python(HOOK_SECRET, &last.headers, &last.raw) {
        Some(valid) => assert!(valid, "the signature verifies independently"),
        None => eprintln!("python3 is missing: the independent signature check was skipped"),
    }
    // Tampered bytes do not verify.
    let mut tampered = last.raw.clone();
    tampered.push(b' ');
    if let Some(valid) = verify_with_python(HOOK_SECRET, &last.headers, &tampered) {
        assert!(!valid);
    }
    // Only the subscribed event: a status change queues nothing.
    let autumn = last.body["data"]["brief"].as_str().unwrap().to_owned();
    ok(&studio.ana, &["brief", "status", &autumn, "intake"]);
    ok(&studio.ana, &["sync"]);
    assert!(
        outbox(&studio.ana)
            .iter()
            .all(|d| d["event"]["type"] == "brief.created"),
        "{:#?}",
        outbox(&studio.ana)
    );
}

#[test]
fn a_connector_test_checks_the_token_and_project_and_pings_a_webhook_without_changing_anything() {
    let studio = Studio::new();
    let jira = FakeJira::start(JIRA_EMAIL, JIRA_TOKEN);
    let asana = FakeAsana::start(ASANA_TOKEN);
    let receiver = WebhookReceiver::start();
    studio.connect_trackers(&jira, &asana);
    studio.add_webhook(&receiver, &[]);
    ok(&studio.ana, &["sync"]);
    ok(&studio.scout, &["sync"]);
    store_secret(&studio.scout, "hooks", HOOK_SECRET);

    let said = ok(&studio.scout, &["integrations", "test", "jira"]);
    assert!(
        said.contains("Ops Bot") && said.contains("Northwind"),
        "{said}"
    );
    let said = ok(&studio.scout, &["integrations", "test", "asana"]);
    assert!(
        said.contains("Ops Bot") && said.contains("Spring launch board"),
        "{said}"
    );
    let said = ok(&studio.scout, &["integrations", "test", "hooks"]);
    assert!(said.contains("signed ping"), "{said}");
    let ping = receiver.requests().pop().expect("the ping");
    assert_eq!(ping.body["type"], "ping");
    if let Some(valid) = verify_with_python(HOOK_SECRET, &ping.headers, &ping.raw) {
        assert!(valid, "the ping is signed like every delivery");
    }
    assert!(
        jira.issues().is_empty() && asana.tasks().is_empty(),
        "nothing made"
    );

    // A machine without the secret, a wrong project, a wrong token: each
    // says what to fix and exits 1.
    let out = spoke(&studio.ana, &["integrations", "test", "jira"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no secret on this machine") && err.contains("integrations secret jira"),
        "{err}"
    );
    ok(
        &studio.ana,
        &[
            "integrations",
            "add",
            "jira",
            "--set",
            &format!("url={}", jira.url()),
            "--set",
            &format!("email={JIRA_EMAIL}"),
            "--set",
            "project=XX",
        ],
    );
    ok(&studio.ana, &["sync"]);
    ok(&studio.scout, &["sync"]);
    let out = spoke(&studio.scout, &["integrations", "test", "jira"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("No project could be found with key 'XX'"),
        "{err}"
    );
    store_secret(&studio.scout, "asana", "a-wrong-token");
    let out = spoke(&studio.scout, &["integrations", "test", "asana"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("401") && err.contains("integrations secret asana"),
        "{err}"
    );
}

#[test]
fn a_forged_event_is_never_signed_and_sent() {
    let studio = Studio::new();
    let receiver = WebhookReceiver::start();
    studio.add_webhook(&receiver, &[]);
    ok(&studio.ana, &["integrations", "pusher", "scout"]);
    ok(&studio.ana, &["sync"]);
    store_secret(&studio.scout, "hooks", HOOK_SECRET);
    // kenji, a creative, writes deliveries by hand: an approval that never
    // closed, and a status change of a brief that is not his.
    let kenji = studio.root.path().join("kenji");
    ok(&kenji, &["sync"]);
    {
        let mut hub = Hub::open(&kenji, None).expect("kenji's replica");
        let forged = |id: &str, event: Value| {
            (
                EntityRef::new(EntityKind::Delivery, id),
                Change::Set(
                    [
                        ("connector".to_owned(), json!("hooks")),
                        ("action".to_owned(), json!("event")),
                        ("status".to_owned(), json!("pending")),
                        ("attempts".to_owned(), json!(0)),
                        ("event".to_owned(), event),
                    ]
                    .into(),
                ),
            )
        };
        hub.commit(vec![
            forged(
                "d-hooks-forged-1",
                json!({"type": "approval.closed", "hub": studio.relay.hub_id,
                       "data": {"approval": "r-nothere", "outcome": "applied"}}),
            ),
            forged(
                "d-hooks-forged-2",
                json!({"type": "brief.status", "hub": studio.relay.hub_id,
                       "data": {"brief": studio.brief, "from": "draft", "to": "delivered"}}),
            ),
        ])
        .expect("writers may enqueue");
    }
    ok(&kenji, &["sync"]);
    let report = push_once(&studio.scout);
    assert_eq!(
        report["failed"].as_array().map(Vec::len),
        Some(2),
        "{report:#}"
    );
    let reasons: Vec<&str> = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["error"].as_str())
        .collect();
    assert!(
        reasons.iter().all(|r| r.contains("not sent")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("@kenji")),
        "the forger is named: {reasons:?}"
    );
    assert!(
        receiver.requests().is_empty(),
        "nothing forged left the hub"
    );

    // A real change from a lead still goes out, saying who made it.
    ok(&studio.ana, &["brief", "status", &studio.brief, "intake"]);
    ok(&studio.ana, &["sync"]);
    push_once(&studio.scout);
    let sent = receiver.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body["type"], "brief.status");
    assert_eq!(sent[0].body["by"], "ana");
}
