//! Webhook events, Asana round trips and `spoke doctor`'s integrations
//! area, end to end: members on a relay on loopback drive real changes
//! through the `spoke` binary, and the pusher (`spoke integrations push
//! --once`) delivers to local servers that speak Asana's and the Standard
//! Webhooks wire formats.

mod common_cli;
mod common_trackers;

use common_cli::{LoopbackHub, base_command, json_in as json, ok_in as ok, spoke_in as spoke};
use common_trackers::{FakeAsana, Recorded, WebhookReceiver, verify_with_python};
use serde_json::{Value, json};
use spoke::model::approval::{Decision, DecisionEntry};
use spoke::model::proposal::ProposalKind;
use spoke::model::{Change, EntityKind, EntityRef};
use spoke::service::Hub;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;

const ASANA_TOKEN: &str = "asana-pat-1";
const HOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const CLOSED_SECRET: &str = "whsec_c2Vjb25kLXNlY3JldC1mb3ItY2xvc2Vk";

/// A hub on a relay with two leads (ana, bea), a reviewer (rui), a
/// creative (kenji) and the agent (scout) that pushes, and one brief.
struct Studio {
    root: tempfile::TempDir,
    relay: LoopbackHub,
    ana: PathBuf,
    bea: PathBuf,
    rui: PathBuf,
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
            rui: root.path().join("rui"),
            scout: root.path().join("scout"),
            root,
            relay,
            brief: String::new(),
        };
        for (home, handle, role) in [
            (studio.ana.clone(), "ana", "lead"),
            (studio.bea.clone(), "bea", "lead"),
            (studio.rui.clone(), "rui", "reviewer"),
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

    /// Ana adds a webhook connector (every event unless `events` names
    /// some), names scout the pusher; scout stores the signing secret.
    fn add_webhook(&self, name: &str, receiver: &WebhookReceiver, events: &[&str], secret: &str) {
        let url = format!("url={}", receiver.hook_url());
        let mut args = vec!["integrations", "add", "webhook", name, "--set", &url];
        for e in events {
            args.extend(["--event", e]);
        }
        ok(&self.ana, &args);
        ok(&self.ana, &["integrations", "pusher", "scout"]);
        ok(&self.ana, &["sync"]);
        store_secret(&self.scout, name, secret);
        ok(&self.scout, &["sync"]);
    }

    /// Scout proposes tasks for the brief, for `reviewers` to decide on;
    /// returns the approval request's id.
    fn propose_tasks(&self, titles: &[(&str, Option<&str>)], reviewers: &[&str]) -> String {
        ok(&self.scout, &["sync"]);
        let tasks: Vec<Value> = titles
            .iter()
            .map(|(title, assignee)| json!({"title": title, "assignee": assignee}))
            .collect();
        let request = {
            let mut hub = Hub::open(&self.scout, None).expect("scout's replica");
            hub.propose(
                ProposalKind::Tasks,
                json!({"brief": self.brief, "tasks": tasks}),
                "tasks for the launch",
                reviewers.iter().map(|r| (*r).to_owned()).collect(),
            )
            .expect("propose")
            .id
        };
        ok(&self.scout, &["sync"]);
        request
    }

    /// The brief's tasks as a lead sees them after a sync.
    fn tasks(&self, home: &Path) -> Vec<Value> {
        ok(home, &["sync"]);
        json(home, &["task", "list", &self.brief])
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

fn store_secret(home: &Path, name: &str, secret: &str) {
    let mut child = base_command()
        .arg("--home")
        .arg(home)
        .arg("--config")
        .arg(home.with_extension("toml"))
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

fn of_type<'a>(requests: &'a [Recorded], kind: &str) -> Vec<&'a Recorded> {
    requests.iter().filter(|r| r.body["type"] == kind).collect()
}

/// Checks the Standard Webhooks signature independently (python3's hmac).
fn assert_signed(secret: &str, r: &Recorded) {
    match verify_with_python(secret, &r.headers, &r.raw) {
        Some(valid) => assert!(valid, "signature of {} does not verify", r.body),
        None => eprintln!("python3 is missing: the independent signature check was skipped"),
    }
}

/// A 64x48 PNG to import as an asset.
fn png(root: &Path) -> PathBuf {
    let img: image::RgbImage = image::ImageBuffer::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, 90])
    });
    let file = root.join("cover.png");
    img.save(&file).expect("png");
    file
}

#[test]
fn every_hub_event_reaches_a_webhook_that_hears_everything_signed_and_once_each() {
    let studio = Studio::new();
    let all = WebhookReceiver::start();
    let closed = WebhookReceiver::start();
    studio.add_webhook("hooks", &all, &[], HOOK_SECRET);
    studio.add_webhook("closed", &closed, &["approval.closed"], CLOSED_SECRET);

    // A brief is filed and moves.
    let autumn = ok(
        &studio.ana,
        &["brief", "add", "--title", "Autumn catalogue"],
    )
    .trim()
    .to_owned();
    ok(&studio.ana, &["brief", "status", &autumn, "intake"]);
    ok(&studio.ana, &["sync"]);

    // A lead approves a two-task proposal.
    let applied = studio.propose_tasks(
        &[
            ("Hero image, three crops", Some("kenji")),
            ("Copy variants", None),
        ],
        &["ana"],
    );
    ok(&studio.ana, &["sync"]);
    ok(&studio.ana, &["approve", &applied]);
    ok(&studio.ana, &["sync"]);

    // A reviewer rejects another.
    let rejected = studio.propose_tasks(&[("Launch party", None)], &["rui"]);
    ok(&studio.rui, &["sync"]);
    ok(
        &studio.rui,
        &["reject", &rejected, "--comment", "no budget for a party"],
    );
    ok(&studio.rui, &["sync"]);

    // An asset version is approved by its reviewer.
    let file = png(studio.root.path());
    ok(
        &studio.ana,
        &["asset", "import", file.to_str().expect("utf8 path")],
    );
    let asset = json(&studio.ana, &["asset", "list"])[0]["id"]
        .as_str()
        .expect("asset id")
        .to_owned();
    let asset_request = json(
        &studio.ana,
        &[
            "approvals",
            "request",
            "--asset",
            &asset,
            "--reviewers",
            "rui",
        ],
    )["id"]
        .as_str()
        .expect("request id")
        .to_owned();
    ok(&studio.ana, &["sync"]);
    ok(&studio.rui, &["sync"]);
    ok(&studio.rui, &["approve", &asset_request]);
    ok(&studio.rui, &["sync"]);

    let report = push_once(&studio.scout);
    assert!(
        report["failed"].as_array().is_some_and(Vec::is_empty),
        "{report:#}"
    );
    let got = all.requests();
    let kinds: Vec<String> = got
        .iter()
        .map(|r| r.body["type"].as_str().unwrap_or("?").to_owned())
        .collect();
    assert_eq!(got.len(), 8, "{kinds:?}");
    assert!(all.malformed().is_empty(), "{:?}", all.malformed());

    // brief.created with the brief's id and title.
    let created = of_type(&got, "brief.created");
    assert_eq!(created.len(), 1, "{kinds:?}");
    assert_eq!(created[0].body["data"]["brief"], autumn.as_str());
    assert_eq!(created[0].body["data"]["title"], "Autumn catalogue");

    // brief.status with where it came from and went.
    let moved = of_type(&got, "brief.status");
    assert_eq!(moved.len(), 1, "{kinds:?}");
    assert_eq!(moved[0].body["data"]["brief"], autumn.as_str());
    assert_eq!(moved[0].body["data"]["from"], "draft");
    assert_eq!(moved[0].body["data"]["to"], "intake");

    // approval.closed: applied, rejected, and the asset's approved.
    let closings = of_type(&got, "approval.closed");
    assert_eq!(closings.len(), 3, "{kinds:?}");
    let closing = |approval: &str| {
        closings
            .iter()
            .find(|r| r.body["data"]["approval"] == approval)
            .unwrap_or_else(|| panic!("no approval.closed for {approval}: {kinds:?}"))
            .body["data"]
            .clone()
    };
    let a = closing(&applied);
    assert_eq!(a["outcome"], "applied", "{a:#}");
    assert_eq!(a["subject"]["kind"], "proposal", "{a:#}");
    assert!(
        a["subject"]["id"]
            .as_str()
            .is_some_and(|p| p.starts_with("p-")),
        "{a:#}"
    );
    let r = closing(&rejected);
    assert_eq!(r["outcome"], "rejected", "{r:#}");
    assert_eq!(r["subject"]["kind"], "proposal", "{r:#}");
    let s = closing(&asset_request);
    assert_eq!(s["outcome"], "approved", "{s:#}");
    assert_eq!(s["subject"], json!({"kind": "asset", "id": asset}), "{s:#}");

    // task.created for each task of the approved proposal, none for the rejected.
    let tasks = studio.tasks(&studio.ana);
    assert_eq!(tasks.len(), 2, "{tasks:#?}");
    let made = of_type(&got, "task.created");
    assert_eq!(made.len(), 2, "{kinds:?}");
    let announced: BTreeSet<&str> = made
        .iter()
        .filter_map(|r| r.body["data"]["task"].as_str())
        .collect();
    let listed: BTreeSet<&str> = tasks.iter().filter_map(|t| t["id"].as_str()).collect();
    assert_eq!(announced, listed);
    let hero = made
        .iter()
        .find(|r| r.body["data"]["title"] == "Hero image, three crops")
        .expect("the hero task announced");
    assert_eq!(hero.body["data"]["assignee"], "kenji");
    assert_eq!(hero.body["data"]["brief"], studio.brief.as_str());

    // asset.approved names the asset and the request.
    let approved = of_type(&got, "asset.approved");
    assert_eq!(approved.len(), 1, "{kinds:?}");
    assert_eq!(approved[0].body["data"]["asset"], asset.as_str());
    assert_eq!(approved[0].body["data"]["approval"], asset_request.as_str());

    // Every delivery: its own id, the envelope and nothing else, a valid signature.
    let ids: BTreeSet<String> = got.iter().filter_map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), got.len(), "distinct webhook-ids: {ids:?}");
    for r in &got {
        let keys: BTreeSet<&str> = r
            .body
            .as_object()
            .expect("a JSON object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from(["type", "timestamp", "hub", "data", "by"]),
            "{}",
            r.body
        );
        assert_eq!(r.body["hub"], studio.relay.hub_id.as_str());
        // `by` is the member whose change enqueued it, as the relay saw it.
        assert!(
            ["ana", "bea", "rui"].contains(&r.body["by"].as_str().unwrap_or_default()),
            "{}",
            r.body
        );
        assert!(
            r.body["timestamp"]
                .as_str()
                .is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok()),
            "{}",
            r.body
        );
        assert!(
            r.header("webhook-signature")
                .is_some_and(|s| s.starts_with("v1,")),
            "{:?}",
            r.headers
        );
        assert_signed(HOOK_SECRET, r);
    }

    // The approval.closed-only connector heard the three closings and nothing else.
    let heard = closed.requests();
    assert_eq!(
        heard.len(),
        3,
        "{:?}",
        heard.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    assert!(heard.iter().all(|r| r.body["type"] == "approval.closed"));
    for r in &heard {
        assert_signed(CLOSED_SECRET, r);
    }

    // Nothing more on the next pass.
    let again = push_once(&studio.scout);
    assert_eq!(
        again["delivered"].as_array().map(Vec::len),
        Some(0),
        "{again:#}"
    );
    assert_eq!(all.requests().len(), 8);
}

#[test]
fn a_second_replica_reapplying_the_same_approval_does_not_send_approval_closed_twice() {
    let studio = Studio::new();
    let closed = WebhookReceiver::start();
    studio.add_webhook("closed", &closed, &["approval.closed"], CLOSED_SECRET);

    // Brief creation is not what this connector listens for.
    ok(
        &studio.ana,
        &["brief", "add", "--title", "Autumn catalogue"],
    );
    ok(&studio.ana, &["sync"]);
    assert!(outbox(&studio.ana).is_empty(), "{:#?}", outbox(&studio.ana));
    push_once(&studio.scout);
    assert!(closed.requests().is_empty());

    let request = studio.propose_tasks(&[("Hero image, three crops", None)], &["ana"]);
    ok(&studio.ana, &["sync"]);
    // Ana's decision reaches the hub before her replica applies its effect
    // (as when a replica goes offline right after deciding).
    {
        let mut hub = Hub::open(&studio.ana, None).expect("ana's replica");
        let entry = DecisionEntry {
            stage: 0,
            reviewer: "ana".into(),
            decision: Some(Decision::Approved),
            comment: None,
            pick: None,
        };
        hub.commit(vec![(
            EntityRef::new(EntityKind::Approval, request.clone()),
            Change::Append(json!(entry)),
        )])
        .expect("ana decides");
    }
    studio
        .relay
        .rt
        .block_on(spoke::sync::sync_once(&studio.ana))
        .expect("ana's decision reaches the hub");

    // Bea's replica sees the closed request and applies it; the pusher sends.
    ok(&studio.bea, &["sync"]);
    let first = push_once(&studio.scout);
    assert_eq!(
        first["delivered"].as_array().map(Vec::len),
        Some(1),
        "{first:#}"
    );
    assert_eq!(closed.requests().len(), 1);

    // Ana's replica, not having heard of bea's effect, applies it too.
    let reapplied = Hub::open(&studio.ana, None)
        .expect("ana's replica")
        .reconcile_approvals()
        .expect("reconcile");
    assert_eq!(
        reapplied, 1,
        "ana's replica applied the closed request itself"
    );
    ok(&studio.ana, &["sync"]);
    let items: Vec<Value> = outbox(&studio.ana)
        .into_iter()
        .filter(|d| d["event"]["type"] == "approval.closed")
        .collect();
    assert_eq!(
        items.len(),
        1,
        "both replicas enqueued the same item: {items:#?}"
    );

    let second = push_once(&studio.scout);
    assert_eq!(
        second["delivered"].as_array().map(Vec::len),
        Some(0),
        "{second:#}"
    );
    let got = closed.requests();
    assert_eq!(
        got.len(),
        1,
        "approval.closed went out twice: {:?}",
        got.iter()
            .map(|r| r.header("webhook-id"))
            .collect::<Vec<_>>()
    );
    assert_eq!(got[0].body["data"]["approval"], request.as_str());
    assert_eq!(got[0].body["data"]["outcome"], "applied");
    assert_eq!(
        got[0].header("webhook-id").as_deref(),
        items[0]["id"].as_str(),
        "the delivery id is the webhook-id"
    );
    let settled = outbox(&studio.bea)
        .into_iter()
        .find(|d| d["id"] == items[0]["id"])
        .expect("the item");
    assert_eq!(settled["status"], "done", "{settled:#}");
}

#[test]
fn asana_tasks_come_back_done_and_later_changes_are_updates_not_second_creates() {
    let studio = Studio::new();
    let asana = FakeAsana::start(ASANA_TOKEN);
    ok(
        &studio.ana,
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
        &studio.ana,
        &["integrations", "member", "asana", "kenji", "9001"],
    );
    ok(&studio.ana, &["integrations", "pusher", "scout"]);
    ok(&studio.ana, &["sync"]);
    store_secret(&studio.scout, "asana", ASANA_TOKEN);

    let request = studio.propose_tasks(
        &[
            ("Hero image, three crops", Some("kenji")),
            ("Copy variants", None),
            ("Launch newsletter", Some("kenji")),
        ],
        &["ana"],
    );
    ok(&studio.ana, &["sync"]);
    ok(&studio.ana, &["approve", &request]);
    ok(&studio.ana, &["sync"]);
    let report = push_once(&studio.scout);
    assert_eq!(
        report["delivered"].as_array().map(Vec::len),
        Some(3),
        "{report:#}"
    );
    assert_eq!(asana.tasks().len(), 3, "{:#?}", asana.tasks());
    assert!(asana.malformed().is_empty(), "{:?}", asana.malformed());

    let tasks = studio.tasks(&studio.ana);
    let gid_of = |title: &str| -> (String, String) {
        let t = tasks
            .iter()
            .find(|t| t["title"] == title)
            .unwrap_or_else(|| panic!("no task {title}: {tasks:#?}"));
        (
            t["id"].as_str().expect("id").to_owned(),
            t["external"]["asana"]["key"]
                .as_str()
                .unwrap_or_else(|| panic!("no asana key: {t:#}"))
                .to_owned(),
        )
    };
    let (hero, hero_gid) = gid_of("Hero image, three crops");
    let (copy, copy_gid) = gid_of("Copy variants");

    // Ticked off in Asana: done in Spoke, as a lead's machine reads it.
    asana.set_completed(&hero_gid, true);
    let report = push_once(&studio.scout);
    assert_eq!(report["mirrored"], 1, "{report:#}");
    let hero_now = studio
        .tasks(&studio.ana)
        .into_iter()
        .find(|t| t["id"] == hero.as_str())
        .expect("the hero task");
    assert_eq!(hero_now["status"], "done", "{hero_now:#}");
    assert!(
        !asana.requests().iter().any(|r| r.method == "PUT"),
        "mirroring pushed nothing back"
    );

    // A lead assigns and renames another task: one PUT, no second create.
    ok(
        &studio.ana,
        &[
            "task",
            "set",
            &copy,
            "assignee=kenji",
            "title=Copy variants, EN and PT",
        ],
    );
    ok(&studio.ana, &["sync"]);
    let report = push_once(&studio.scout);
    assert_eq!(report["updates_queued"], 1, "{report:#}");
    let requests = asana.requests();
    let puts: Vec<&Recorded> = requests.iter().filter(|r| r.method == "PUT").collect();
    assert_eq!(puts.len(), 1, "{puts:#?}");
    assert_eq!(puts[0].path, format!("/api/1.0/tasks/{copy_gid}"));
    assert_eq!(puts[0].body["data"]["name"], "Copy variants, EN and PT");
    assert_eq!(puts[0].body["data"]["assignee"], "9001");
    let creates = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/api/1.0/tasks")
        .count();
    assert_eq!(creates, 3, "no second create");
    assert_eq!(asana.tasks().len(), 3);
    let renamed = asana
        .tasks()
        .into_iter()
        .find(|(g, _)| *g == copy_gid)
        .expect("the renamed task");
    assert_eq!(renamed.1["name"], "Copy variants, EN and PT");
    assert!(asana.malformed().is_empty(), "{:?}", asana.malformed());
}

/// `spoke doctor --json` on `home`; its exit code depends on checks outside
/// integrations (the model server, the terminal), so only the report is read.
fn doctor_integrations(studio: &Studio, home: &Path) -> Vec<Value> {
    let out = base_command()
        .arg("--home")
        .arg(home)
        .arg("--config")
        .arg(home.with_extension("toml"))
        .args(["doctor", "--json"])
        .env("XDG_STATE_HOME", studio.root.path().join("state"))
        .output()
        .expect("run spoke doctor");
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("doctor --json printed no JSON ({e}): {text}"));
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["area"] == "integrations")
        .cloned()
        .collect()
}

fn the<'a>(checks: &'a [Value], check: &str) -> Vec<&'a Value> {
    checks.iter().filter(|c| c["check"] == check).collect()
}

#[test]
fn doctor_checks_secrets_on_the_pushers_machine_the_pusher_and_outbox_failures() {
    let studio = Studio::new();
    let receiver = WebhookReceiver::start();

    // No connectors: one ok line and nothing else.
    let checks = doctor_integrations(&studio, &studio.ana);
    assert_eq!(checks.len(), 1, "{checks:#?}");
    assert_eq!(checks[0]["check"], "connectors");
    assert_eq!(checks[0]["status"], "ok");
    assert_eq!(checks[0]["detail"], "no connectors");

    // A connector and no pusher: the pusher warns with the fix.
    ok(
        &studio.ana,
        &[
            "integrations",
            "add",
            "webhook",
            "hooks",
            "--set",
            &format!("url={}", receiver.hook_url()),
        ],
    );
    ok(&studio.ana, &["sync"]);
    let checks = doctor_integrations(&studio, &studio.ana);
    let pusher = the(&checks, "pusher");
    assert_eq!(pusher.len(), 1, "{checks:#?}");
    assert_eq!(pusher[0]["status"], "warn", "{checks:#?}");
    assert!(
        pusher[0]["fix"]
            .as_str()
            .is_some_and(|f| f.contains("spoke integrations pusher")),
        "{checks:#?}"
    );
    assert_eq!(the(&checks, "connector")[0]["status"], "ok", "{checks:#?}");

    // Scout is named: its machine lacks the secret (warn), ana's need not hold it.
    ok(&studio.ana, &["integrations", "pusher", "scout"]);
    ok(&studio.ana, &["sync"]);
    ok(&studio.scout, &["sync"]);
    let on_scout = doctor_integrations(&studio, &studio.scout);
    let connector = the(&on_scout, "connector");
    assert_eq!(connector.len(), 1, "{on_scout:#?}");
    assert_eq!(connector[0]["status"], "warn", "{on_scout:#?}");
    assert!(
        connector[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("hooks") && d.contains("deliveries wait")),
        "{on_scout:#?}"
    );
    assert!(
        connector[0]["fix"]
            .as_str()
            .is_some_and(|f| f.contains("spoke integrations secret hooks")),
        "{on_scout:#?}"
    );
    assert_eq!(the(&on_scout, "pusher")[0]["status"], "ok", "{on_scout:#?}");
    let on_ana = doctor_integrations(&studio, &studio.ana);
    let connector = the(&on_ana, "connector");
    assert_eq!(connector[0]["status"], "ok", "{on_ana:#?}");
    assert!(
        connector[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("pusher's machine") && d.contains("@scout")),
        "{on_ana:#?}"
    );

    // Stored: ok. An event waits: the outbox counts it.
    store_secret(&studio.scout, "hooks", HOOK_SECRET);
    ok(
        &studio.ana,
        &["brief", "add", "--title", "Autumn catalogue"],
    );
    ok(&studio.ana, &["sync"]);
    ok(&studio.scout, &["sync"]);
    let on_scout = doctor_integrations(&studio, &studio.scout);
    assert_eq!(
        the(&on_scout, "connector")[0]["status"],
        "ok",
        "{on_scout:#?}"
    );
    let outbox_check = the(&on_scout, "outbox");
    assert_eq!(outbox_check[0]["status"], "ok", "{on_scout:#?}");
    assert!(
        outbox_check[0]["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("1 pending")),
        "{on_scout:#?}"
    );
    assert!(
        on_scout.iter().all(|c| c["status"] == "ok"),
        "{on_scout:#?}"
    );

    // The receiver refuses it for good: the outbox warns with the reason and the retry.
    receiver.set_status(400, None);
    let report = push_once(&studio.scout);
    assert_eq!(
        report["failed"].as_array().map(Vec::len),
        Some(1),
        "{report:#}"
    );
    let failed_id = report["failed"][0]["id"].as_str().expect("id").to_owned();
    ok(&studio.ana, &["sync"]);
    let on_ana = doctor_integrations(&studio, &studio.ana);
    let outbox_check = the(&on_ana, "outbox");
    assert_eq!(outbox_check[0]["status"], "warn", "{on_ana:#?}");
    let detail = outbox_check[0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("1 failed") && detail.contains("400"),
        "{on_ana:#?}"
    );
    assert!(
        outbox_check[0]["fix"]
            .as_str()
            .is_some_and(|f| f.contains(&format!("spoke integrations retry {failed_id}"))),
        "{on_ana:#?}"
    );

    // Doctor calls nothing: the receiver saw only the pusher's one attempt.
    assert_eq!(receiver.requests().len(), 1);
    // The text report has the area, with the fix under the warning.
    let out = spoke(&studio.ana, &["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let area = text
        .split("\nintegrations\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no integrations area in:\n{text}"));
    assert!(
        area.contains("outbox") && area.contains(&format!("spoke integrations retry {failed_id}")),
        "{text}"
    );
}
