//! The hub's rules from a member's side, on a relay on loopback: an agent
//! cannot edit a brief (the command fails naming the rule and nobody sees
//! the change), but its chat messages and proposals go through; a lead's
//! approval of its proposal applies on every replica, even when the replica
//! that first sees the request closed is the agent's own.

mod common_cli;

use serde_json::json;
use spoke::model::approval::{Decision, DecisionEntry};
use spoke::model::proposal::ProposalKind;
use spoke::model::{Change, EntityKind, EntityRef};
use spoke::service::Hub;
use spoke::service::threads::{GENERAL_THREAD, human_message};
use std::path::Path;

use common_cli::{json_in as json, loopback_relay, ok_in as ok, spoke_in as spoke};

fn title_of(home: &Path, brief: &str) -> String {
    json(home, &["brief", "show", brief])["title"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn an_agent_cannot_edit_a_brief_but_its_approved_proposal_applies_everywhere() {
    let root = tempfile::tempdir().expect("tmp");
    let (rt, running) = loopback_relay(&root.path().join("relay"));
    let registry = &running.relay.registry;
    let hub = registry.create_hub("Trust").expect("hub");
    let token = |handle: &str, role: &str| {
        registry
            .issue(&hub.id, handle, role, None)
            .expect("token")
            .0
    };
    let url = format!("ws://{}/v1/hubs/{}", running.addr, hub.id);
    let (ana, kenji, scout) = (
        root.path().join("ana"),
        root.path().join("kenji"),
        root.path().join("scout"),
    );
    ok(
        &ana,
        &[
            "hub",
            "join",
            &url,
            "--token",
            &token("ana", "lead"),
            "--tz",
            "Europe/Lisbon",
        ],
    );
    ok(
        &kenji,
        &[
            "hub",
            "join",
            &url,
            "--token",
            &token("kenji", "creative"),
            "--tz",
            "Asia/Tokyo",
        ],
    );
    ok(
        &scout,
        &["hub", "join", &url, "--token", &token("scout", "agent")],
    );

    let brief = ok(&ana, &["brief", "add", "--title", "Spring launch"])
        .trim()
        .to_owned();
    ok(&ana, &["sync"]);
    ok(&scout, &["sync"]);
    ok(&kenji, &["sync"]);

    // The agent may not edit the brief: exit 1, the rule named, nothing queued.
    for args in [
        vec![
            "brief",
            "set",
            brief.as_str(),
            "title=Hijacked by the agent",
        ],
        vec!["brief", "status", brief.as_str(), "cancelled"],
    ] {
        let out = spoke(&scout, &args);
        let err = common_cli::stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "`spoke {}`: {err}",
            args.join(" ")
        );
        assert!(
            err.contains("@scout (agent) may not edit brief/") && err.contains("role-table"),
            "the refusal names who, what and the rule: {err}"
        );
    }
    assert_eq!(json(&scout, &["status"])["pending"], json!(0));
    ok(&scout, &["sync"]);
    ok(&kenji, &["sync"]);
    assert_eq!(title_of(&kenji, &brief), "Spring launch");

    // Chat and a proposal from the same agent go through.
    let request = {
        let mut hub = Hub::open(&scout, None).expect("open scout");
        hub.post_message(GENERAL_THREAD, human_message("Two briefs need answers"))
            .expect("the agent chats");
        hub.propose(
            ProposalKind::BriefUpdate,
            json!({"brief": brief, "fields": {"audience": "Creative leads in EMEA"}}),
            "The kickoff notes name the audience",
            vec!["ana".into()],
        )
        .expect("the agent proposes")
        .id
    };
    ok(&scout, &["sync"]);
    ok(&ana, &["sync"]);
    let listed = json(&ana, &["approvals", "list"]);
    assert!(
        listed
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r["id"] == json!(request))),
        "the lead sees the agent's request: {listed}"
    );

    // Ana approves, and her replica stops before applying the effect (as if
    // closed right after deciding): the agent's replica is the first to see
    // the request closed, and writes the effect itself.
    {
        let mut hub = Hub::open(&ana, None).expect("open ana");
        let entry = DecisionEntry {
            stage: 0,
            reviewer: "ana".into(),
            decision: Some(Decision::Approved),
            comment: None,
            pick: None,
        };
        hub.commit(vec![(
            EntityRef::new(EntityKind::Approval, request.clone()),
            Change::Append(serde_json::to_value(entry).expect("a decision")),
        )])
        .expect("ana decides");
    }
    let pushed = spoke(&ana, &["sync"]);
    assert!(pushed.status.success(), "{}", common_cli::stderr(&pushed));
    // `spoke sync` applies due effects; the agent's must not be refused.
    ok(&scout, &["sync"]);
    let refused = json(&scout, &["audit", "refused"]);
    assert_eq!(refused, json!([]), "nothing of the agent's was refused");
    assert_eq!(
        json(&scout, &["brief", "show", &brief])["audience"],
        json!("Creative leads in EMEA")
    );
    for home in [&kenji, &ana] {
        ok(home, &["sync"]);
        let shown = json(home, &["brief", "show", &brief]);
        assert_eq!(
            shown["audience"],
            json!("Creative leads in EMEA"),
            "{shown}"
        );
        assert_eq!(shown["title"], json!("Spring launch"), "{shown}");
    }
    rt.block_on(running.shutdown()).expect("shutdown");
}

#[test]
fn a_demoted_member_loses_rights_from_the_next_op_and_its_queued_edit_is_taken_back() {
    let root = tempfile::tempdir().expect("tmp");
    let (rt, running) = loopback_relay(&root.path().join("relay"));
    let registry = &running.relay.registry;
    let hub = registry.create_hub("Demotion").expect("hub");
    let token = |handle: &str, role: &str| {
        registry
            .issue(&hub.id, handle, role, None)
            .expect("token")
            .0
    };
    let url = format!("ws://{}/v1/hubs/{}", running.addr, hub.id);
    let (ana, maya) = (root.path().join("ana"), root.path().join("maya"));
    ok(
        &ana,
        &["hub", "join", &url, "--token", &token("ana", "lead")],
    );
    ok(
        &maya,
        &["hub", "join", &url, "--token", &token("maya", "lead")],
    );
    let brief = ok(&ana, &["brief", "add", "--title", "Before"])
        .trim()
        .to_owned();
    ok(&ana, &["sync"]);
    ok(&maya, &["sync"]);
    // maya, still a lead, edits ana's brief: it stands.
    ok(&maya, &["brief", "set", &brief, "audience=Editors"]);
    ok(&maya, &["sync"]);
    // Offline, maya edits again; meanwhile ana demotes her.
    ok(&maya, &["brief", "set", &brief, "title=Made while demoted"]);
    ok(&ana, &["sync"]);
    ok(&ana, &["member", "role", "maya", "creative"]);
    ok(&ana, &["sync"]);
    // maya's queued edit reaches the hub after the demotion: refused, taken back.
    let out = spoke(&maya, &["sync"]);
    let err = common_cli::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("role-table") && err.contains("taken back"),
        "{err}"
    );
    assert_eq!(
        title_of(&maya, &brief),
        "Before",
        "the refused edit was rolled back"
    );
    assert_eq!(json(&maya, &["status"])["pending"], json!(0));
    let refused = json(&maya, &["audit", "refused"]);
    assert_eq!(refused[0]["rule"], json!("role-table"), "{refused}");
    assert_eq!(refused[0]["by"], json!("relay"), "{refused}");
    ok(&ana, &["sync"]);
    let shown = json(&ana, &["brief", "show", &brief]);
    assert_eq!(shown["title"], json!("Before"), "{shown}");
    assert_eq!(
        shown["audience"],
        json!("Editors"),
        "the edit made as a lead stands"
    );
    rt.block_on(running.shutdown()).expect("shutdown");
}
