//! Approvals across synced replicas: reviewers deciding on different
//! machines, at the same time, end with the same outcome everywhere.

use redb::ReadableTable;
use serde_json::json;
use spoke::model::approval::{ApprovalStatus, Decision, Stage, StageMode, Subject};
use spoke::model::{Change, EntityKind, EntityRef, Role};
use spoke::service::Hub;
use spoke_relay::relay::RelayConfig;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

struct Team {
    running: spoke_relay::server::Running,
    homes: BTreeMap<&'static str, PathBuf>,
    _dir: tempfile::TempDir,
}

async fn team() -> Team {
    let dir = tempfile::tempdir().expect("tmp");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let running = spoke_relay::server::start(listener, RelayConfig::new(dir.path().join("relay")))
        .await
        .expect("relay");
    let hub = running.relay.registry.create_hub("Studio").expect("hub").id;
    let url = format!("ws://{}/v1/hubs/{hub}", running.addr);
    let mut homes = BTreeMap::new();
    for (handle, role) in [
        ("ana", Role::Lead),
        ("kenji", Role::Reviewer),
        ("maya", Role::Reviewer),
    ] {
        let (token, _) = running
            .relay
            .registry
            .issue(&hub, handle, role.as_str(), None)
            .expect("token");
        let home = dir.path().join(handle);
        spoke::sync::join(&home, &url, &token, None)
            .await
            .expect("join");
        // The role came with the token, through the hub's log; the member
        // fills in its own profile.
        Hub::open(&home, None)
            .expect("open")
            .introduce("Europe/Lisbon", None)
            .expect("member");
        spoke::sync::sync_once(&home).await.expect("sync");
        homes.insert(handle, home);
    }
    let t = Team {
        running,
        homes,
        _dir: dir,
    };
    t.sync_all().await;
    t
}

impl Team {
    fn home(&self, who: &str) -> &Path {
        &self.homes[who]
    }

    async fn sync(&self, who: &str) {
        spoke::sync::sync_once(self.home(who)).await.expect("sync");
    }

    async fn sync_all(&self) {
        for _ in 0..2 {
            for who in self.homes.keys() {
                self.sync(who).await;
            }
        }
    }

    fn hub(&self, who: &str) -> Hub {
        Hub::open(self.home(who), None).expect("open")
    }
}

fn asset(hub: &mut Hub, id: &str) {
    let entity = EntityRef::new(EntityKind::Asset, id);
    hub.commit(vec![
        (
            entity.clone(),
            Change::Set(BTreeMap::from([("title".to_owned(), json!("Hero banner"))])),
        ),
        (
            entity,
            Change::Append(json!({"blob_sha256": null, "size": 1, "mime": "image/png", "provenance": {"by": "human"}})),
        ),
    ])
    .expect("asset");
}

fn stage(name: &str, reviewers: &[&str]) -> Stage {
    Stage {
        name: name.into(),
        reviewers: reviewers.iter().map(|r| (*r).to_owned()).collect(),
        deadline: None,
        mode: StageMode::Decide,
    }
}

fn asset_status(hub: &Hub, id: &str) -> Option<String> {
    hub.replica()
        .record(&EntityRef::new(EntityKind::Asset, id))
        .expect("read")
        .and_then(|r| r.string("status"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_decisions_on_two_machines_reach_the_same_outcome_everywhere() {
    let t = team().await;
    let id = {
        let mut ana = t.hub("ana");
        asset(&mut ana, "a-hero0001");
        let subject = Subject::AssetVersion {
            asset: "a-hero0001".into(),
            version: 1,
        };
        ana.request_approval(
            "Hero banner",
            subject,
            vec![stage("review", &["kenji", "maya"])],
        )
        .expect("request")
        .id
    };
    t.sync_all().await;
    assert_eq!(
        asset_status(&t.hub("kenji"), "a-hero0001").as_deref(),
        Some("in_review")
    );

    // Offline, at the same time: one approves, one asks for changes.
    t.hub("kenji")
        .decide(&id, Decision::Approved, None)
        .expect("kenji decides");
    t.hub("maya")
        .decide(&id, Decision::ChangesRequested, Some("Logo too small"))
        .expect("maya decides");
    t.sync_all().await;

    for who in ["ana", "kenji", "maya"] {
        let hub = t.hub(who);
        let v = hub.approval(&id).expect("approval");
        assert_eq!(
            v.status,
            ApprovalStatus::ChangesRequested,
            "as seen by {who}"
        );
        assert_eq!(v.decisions.len(), 2);
        assert_eq!(
            asset_status(&hub, "a-hero0001").as_deref(),
            Some("wip"),
            "as seen by {who}"
        );
    }
    // Closed means locked.
    let err = t.hub("kenji").revoke_decision(&id).expect_err("locked");
    assert!(format!("{err:#}").contains("locked"), "{err:#}");
    t.running.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stages_in_order_then_the_asset_is_approved() {
    let t = team().await;
    let id = {
        let mut ana = t.hub("ana");
        asset(&mut ana, "a-poster01");
        let subject = Subject::AssetVersion {
            asset: "a-poster01".into(),
            version: 1,
        };
        ana.request_approval(
            "Poster",
            subject,
            vec![
                stage("brand", &["kenji"]),
                stage("final", &["role:reviewer"]),
            ],
        )
        .expect("request")
        .id
    };
    t.sync_all().await;
    // Maya is not in the first stage yet.
    let err = t
        .hub("maya")
        .decide(&id, Decision::Approved, None)
        .expect_err("not yet");
    assert!(
        format!("{err:#}").contains("not a reviewer of the current stage"),
        "{err:#}"
    );
    // Changes requested or a rejection need a reason.
    let err = t
        .hub("kenji")
        .decide(&id, Decision::Rejected, None)
        .expect_err("comment");
    assert!(format!("{err:#}").contains("needs a comment"), "{err:#}");

    t.hub("kenji")
        .decide(&id, Decision::Approved, None)
        .expect("stage 1");
    t.sync_all().await;
    let v = t.hub("maya").approval(&id).expect("view");
    assert_eq!((v.status, v.stage), (ApprovalStatus::Pending, 1));
    assert_eq!(
        v.waiting_on,
        ["kenji", "maya"],
        "role:reviewer expands to both reviewers"
    );

    // A decision can be revoked while the stage is open.
    t.hub("maya")
        .decide(&id, Decision::Approved, None)
        .expect("maya");
    let v = t.hub("maya").revoke_decision(&id).expect("revoke");
    assert_eq!(v.waiting_on, ["kenji", "maya"]);
    t.hub("maya")
        .decide(
            &id,
            Decision::ApprovedWithChanges,
            Some("Tighten the kerning"),
        )
        .expect("maya");
    t.sync_all().await;
    t.hub("kenji")
        .decide(&id, Decision::Approved, None)
        .expect("kenji");
    t.sync_all().await;
    for who in ["ana", "kenji", "maya"] {
        let hub = t.hub(who);
        assert_eq!(
            hub.approval(&id).expect("view").status,
            ApprovalStatus::ApprovedWithChanges
        );
        assert_eq!(
            asset_status(&hub, "a-poster01").as_deref(),
            Some("approved")
        );
    }
    t.running.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_chain_is_the_same_everywhere_and_an_altered_entry_breaks_it() {
    let t = team().await;
    let id = {
        let mut ana = t.hub("ana");
        asset(&mut ana, "a-audit001");
        let subject = Subject::AssetVersion {
            asset: "a-audit001".into(),
            version: 1,
        };
        ana.request_approval("Audit me", subject, vec![stage("review", &["kenji"])])
            .expect("request")
            .id
    };
    t.sync_all().await;
    t.hub("kenji")
        .decide(&id, Decision::Approved, None)
        .expect("decide");
    t.sync_all().await;

    // request, decision, applied effect
    let mut heads = Vec::new();
    for who in ["ana", "kenji", "maya"] {
        let check = t.hub(who).replica().verify_audit().expect("verify");
        assert_eq!(check.broken, None, "{who}");
        assert_eq!(check.entries, 3, "{who}");
        heads.push(check.head);
    }
    assert!(
        heads.windows(2).all(|w| w[0] == w[1]),
        "one chain everywhere"
    );
    let chain = t.hub("maya").replica().audit_chain().expect("chain");
    let actions: Vec<String> = chain
        .iter()
        .map(|l| match &l.op.change {
            Change::Append(v) => v["action"].as_str().unwrap_or("").to_owned(),
            _ => String::new(),
        })
        .collect();
    assert_eq!(
        actions,
        ["approval.requested", "approval.decided", "effect.applied"]
    );

    // Alter the decision entry inside maya's replica file.
    let target = chain[1].seq;
    {
        let path = spoke::service::replica_path(t.home("maya"));
        let db = redb::Database::open(&path).expect("open raw");
        let txn = db.begin_write().expect("txn");
        {
            let log: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("log");
            let mut table = txn.open_table(log).expect("log");
            let mut bytes = table
                .get(target)
                .expect("get")
                .expect("entry")
                .value()
                .to_vec();
            let pos = bytes
                .windows(8)
                .position(|w| w == b"approved")
                .expect("the decision is in the bytes");
            bytes[pos..pos + 8].copy_from_slice(b"rejected");
            table.insert(target, bytes.as_slice()).expect("put");
        }
        txn.commit().expect("commit");
    }
    let check = t.hub("maya").replica().verify_audit().expect("verify");
    let (seq, why) = check.broken.expect("the chain is broken");
    assert_eq!(seq, target);
    assert!(
        why.contains(&format!("seq {target}")) && why.contains("altered"),
        "{why}"
    );
    t.running.shutdown().await.expect("shutdown");
}

fn brief_field(hub: &Hub, id: &str, field: &str) -> Option<serde_json::Value> {
    hub.replica()
        .record(&EntityRef::new(EntityKind::Brief, id))
        .expect("read")
        .and_then(|r| r.get(field).cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_proposal_applies_its_changes_once_and_a_rejected_one_nothing() {
    use spoke::model::proposal::ProposalKind;
    let t = team().await;
    let (brief, update, assign) = {
        let mut ana = t.hub("ana");
        let brief = ana
            .add_brief(spoke::service::NewBrief {
                title: "Spring launch".into(),
                ..Default::default()
            })
            .expect("brief")
            .id;
        let update = ana
            .propose(
                ProposalKind::BriefUpdate,
                json!({"brief": brief, "fields": {"audience": "Design leads in EMEA"}}),
                "The requester named the audience in the kickoff call",
                vec!["kenji".into()],
            )
            .expect("propose update")
            .id;
        let assign = ana
            .propose(
                ProposalKind::Assignment,
                json!({"brief": brief, "assignee": "maya"}),
                "Maya is free this week",
                vec!["kenji".into()],
            )
            .expect("propose assignment")
            .id;
        // A proposal that could never apply is refused up front.
        let bad = ana.propose(
            ProposalKind::BriefUpdate,
            json!({"brief": brief, "fields": {"colour": "red"}}),
            "nonsense",
            vec!["kenji".into()],
        );
        assert!(bad.is_err());
        (brief, update, assign)
    };
    t.sync_all().await;
    assert_eq!(
        brief_field(&t.hub("kenji"), &brief, "audience"),
        None,
        "nothing applies before a decision"
    );

    t.hub("kenji")
        .decide(&update, Decision::Approved, None)
        .expect("approve");
    t.hub("kenji")
        .decide(&assign, Decision::Rejected, Some("Maya is on leave"))
        .expect("reject");
    t.sync_all().await;
    for who in ["ana", "kenji", "maya"] {
        let hub = t.hub(who);
        assert_eq!(
            brief_field(&hub, &brief, "audience"),
            Some(json!("Design leads in EMEA")),
            "{who}"
        );
        assert_eq!(
            brief_field(&hub, &brief, "assignees:maya"),
            None,
            "rejected: nothing applied ({who})"
        );
        assert!(
            brief_field(&hub, &brief, "from_proposal").is_some(),
            "the change is linked ({who})"
        );
    }

    // The approval arriving again, and reconciling again, changes nothing.
    let ana = {
        let mut ana = t.hub("ana");
        let before = ana.replica().pending_count().expect("pending");
        let log_len = ana.replica().log_len().expect("log");
        let replay: Vec<(u64, Vec<u8>)> = {
            let chain = ana.replica().audit_chain().expect("chain");
            chain
                .iter()
                .map(|l| (l.seq, l.op.encode().expect("encode")))
                .collect()
        };
        ana.replica().apply_sequenced(&replay).expect("replay");
        assert_eq!(ana.reconcile_approvals().expect("reconcile"), 0);
        assert_eq!(ana.replica().pending_count().expect("pending"), before);
        assert_eq!(ana.replica().log_len().expect("log"), log_len);
        ana
    };
    assert_eq!(ana.replica().verify_audit().expect("verify").broken, None);
    t.running.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_closed_by_two_offline_approvals_still_gets_its_effect() {
    use spoke::model::proposal::ProposalKind;
    let t = team().await;
    let (brief, request) = {
        let mut ana = t.hub("ana");
        let brief = ana
            .add_brief(spoke::service::NewBrief {
                title: "Podcast art".into(),
                ..Default::default()
            })
            .expect("brief")
            .id;
        let request = ana
            .propose(
                ProposalKind::BriefUpdate,
                json!({"brief": brief, "fields": {"key_message": "Every zone, one hub"}}),
                "From the brand guide",
                vec!["kenji".into(), "maya".into()],
            )
            .expect("propose")
            .id;
        (brief, request)
    };
    t.sync_all().await;
    // Both approve while offline: neither sees the request close locally.
    let k = t
        .hub("kenji")
        .decide(&request, Decision::Approved, None)
        .expect("kenji");
    let m = t
        .hub("maya")
        .decide(&request, Decision::Approved, None)
        .expect("maya");
    assert_eq!(
        (k.status, m.status),
        (ApprovalStatus::Pending, ApprovalStatus::Pending)
    );
    t.sync_all().await;
    // Whoever looks next applies the effect; everyone converges on it.
    assert_eq!(t.hub("ana").reconcile_approvals().expect("reconcile"), 1);
    t.sync_all().await;
    for who in ["ana", "kenji", "maya"] {
        let hub = t.hub(who);
        assert_eq!(
            hub.approval(&request).expect("view").status,
            ApprovalStatus::Approved
        );
        assert_eq!(
            brief_field(&hub, &brief, "key_message"),
            Some(json!("Every zone, one hub")),
            "{who}"
        );
    }
    t.running.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewers_pick_one_of_the_offered_versions_and_the_hub_holds_them_to_the_choices() {
    let t = team().await;
    let id = {
        let mut ana = t.hub("ana");
        asset(&mut ana, "a-pick0001");
        // A second and third version: a batch of three to choose from.
        for _ in 0..2 {
            ana.commit(vec![(
                EntityRef::new(EntityKind::Asset, "a-pick0001"),
                Change::Append(json!({"blob_sha256": null, "size": 1, "mime": "image/png",
                    "provenance": {"by": "ai", "provider": "comfyui", "model": "social", "prompt_sha256": ""}})),
            )])
            .expect("version");
        }
        let (id, changes) = ana
            .approval_request_changes(
                "Pick the hero",
                Subject::AssetVersion {
                    asset: "a-pick0001".into(),
                    version: 1,
                },
                vec![stage("review", &["kenji", "maya"])],
                &[1, 2, 3],
            )
            .expect("request");
        ana.commit(changes).expect("commit");
        id
    };
    t.sync_all().await;
    // A pick outside the choices, or with a rejection, is refused before
    // anything is written.
    let mut kenji = t.hub("kenji");
    let err = kenji
        .decide_with_pick(&id, Decision::Approved, None, Some(7))
        .expect_err("no version 7");
    assert!(err.to_string().contains("no version 7"), "{err:#}");
    let err = kenji
        .decide_with_pick(&id, Decision::Rejected, Some("no"), Some(2))
        .expect_err("a pick goes with an approval");
    assert!(err.to_string().contains("approval"), "{err:#}");
    // Written by hand past the service, the hub's rule refuses it too.
    let forged = spoke::model::approval::DecisionEntry {
        stage: 0,
        reviewer: "kenji".into(),
        decision: Some(Decision::Approved),
        comment: None,
        pick: Some(9),
    };
    let err = kenji
        .commit(vec![(
            EntityRef::new(EntityKind::Approval, id.clone()),
            Change::Append(json!(forged)),
        )])
        .expect_err("the rule refuses a pick outside the choices");
    assert!(format!("{err:#}").contains("pick-is-a-choice"), "{err:#}");

    kenji
        .decide_with_pick(&id, Decision::Approved, None, Some(3))
        .expect("kenji picks 3");
    drop(kenji);
    t.sync("kenji").await;
    t.sync("maya").await;
    // maya approves and picks 2: the latest standing pick wins.
    let view = t
        .hub("maya")
        .decide_with_pick(&id, Decision::Approved, None, Some(2))
        .expect("maya picks 2");
    assert_eq!(view.status, ApprovalStatus::Approved);
    assert_eq!(view.approved_version, Some(2));
    t.sync_all().await;
    for who in ["ana", "kenji", "maya"] {
        let hub = t.hub(who);
        assert_eq!(
            asset_status(&hub, "a-pick0001").as_deref(),
            Some("approved"),
            "{who}"
        );
        let asset = hub.asset("a-pick0001").expect("asset");
        assert_eq!(
            asset.approved_version,
            Some(2),
            "{who} sees version 2 approved"
        );
    }
    // Even a lead cannot write another version in as the approved one.
    let err = t
        .hub("ana")
        .commit(vec![(
            EntityRef::new(EntityKind::Asset, "a-pick0001"),
            Change::Set(BTreeMap::from([
                ("status".to_owned(), json!("approved")),
                ("approval".to_owned(), json!(id)),
                ("approved_version".to_owned(), json!(3)),
            ])),
        )])
        .expect_err("the approval chose 2");
    assert!(
        format!("{err:#}").contains("effect-needs-its-approval"),
        "{err:#}"
    );
}
