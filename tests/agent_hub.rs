//! `spoke agent run` as a real member of a hub: a lead and the agent each
//! join a relay on loopback with their own token and home; the agent's pass
//! puts intake questions and an assignment proposal on the hub, and the lead
//! sees them after a sync, with nothing applied until a lead decides.

mod common_cli;

use serde_json::Value;

use common_cli::{json_in as json, loopback_relay, ok_in as ok, spoke_in as spoke};

#[test]
fn the_agent_member_works_new_briefs_and_the_lead_sees_proposals_after_a_sync() {
    let root = tempfile::tempdir().expect("tmp");
    let (rt, running) = loopback_relay(&root.path().join("relay"));
    let registry = &running.relay.registry;
    let hub = registry.create_hub("Fieldwork").expect("hub");
    let (lead_token, _) = registry.issue(&hub.id, "ana", "lead", None).expect("token");
    let (agent_token, _) = registry
        .issue(&hub.id, "scout", "agent", None)
        .expect("token");
    let url = format!("ws://{}/v1/hubs/{}", running.addr, hub.id);

    let ana = root.path().join("ana");
    let scout = root.path().join("scout");
    ok(
        &ana,
        &[
            "hub",
            "join",
            &url,
            "--token",
            &lead_token,
            "--tz",
            "Europe/Lisbon",
        ],
    );
    ok(
        &scout,
        &["hub", "join", &url, "--token", &agent_token, "--tz", "UTC"],
    );
    ok(
        &ana,
        &[
            "member",
            "add",
            "kenji",
            "--tz",
            "Asia/Tokyo",
            "--role",
            "creative",
            "--skills",
            "motion",
        ],
    );
    let open = ok(
        &ana,
        &[
            "brief",
            "add",
            "--title",
            "Podcast cover art",
            "--requester",
            "ana",
        ],
    )
    .trim()
    .to_owned();
    let ready = ok(
        &ana,
        &[
            "brief",
            "add",
            "--title",
            "Launch reel",
            "--objective",
            "Drive trials",
            "--audience",
            "Designers",
            "--key-message",
            "One hub",
            "--due",
            "2027-03-01T17:00",
            "--deliverable",
            "instagram-reel:1080x1920",
        ],
    )
    .trim()
    .to_owned();
    ok(&ana, &["brief", "status", &ready, "intake"]);
    ok(&ana, &["brief", "status", &ready, "ready"]);
    ok(&ana, &["sync"]);

    // One pass of the agent, as its own member.
    let report = json(&scout, &["agent", "run", "--once"]);
    let intake: Vec<&str> = report["intake"]
        .as_array()
        .expect("intake")
        .iter()
        .filter_map(|o| o["brief"].as_str())
        .collect();
    assert_eq!(intake, [open.as_str()], "{report}");
    let suggestion = &report["suggestions"][0];
    assert_eq!(suggestion["brief"], ready.as_str(), "{report}");
    assert_eq!(suggestion["handle"], "kenji");

    // The lead sees both after a sync; nothing is applied.
    ok(&ana, &["sync"]);
    let thread = json(
        &ana,
        &["chat", "show", "--thread", &format!("brief:{open}")],
    );
    let last = thread.as_array().and_then(|m| m.last()).expect("a message");
    assert_eq!(last["author"], "scout");
    // No model is configured: the rules wrote the questions, and say so.
    assert_eq!(last["provenance"]["by"], "rules");
    assert_eq!(last["provenance"]["name"], "intake");
    assert!(
        last["body"]
            .as_str()
            .is_some_and(|b| b.starts_with("@ana, ")),
        "{last}"
    );
    let approvals = json(&ana, &["approvals", "list"]);
    let waiting: Vec<&Value> = approvals
        .as_array()
        .expect("approvals")
        .iter()
        .filter(|a| a["status"] == "pending" || a["status"] == "open")
        .collect();
    assert_eq!(waiting.len(), 1, "{approvals}");
    let brief = json(&ana, &["brief", "show", &ready]);
    assert_eq!(brief["assignees"], serde_json::json!([]), "only proposed");

    // A second pass finds nothing new.
    let again = json(&scout, &["agent", "run", "--once"]);
    assert!(
        again["intake"].as_array().is_some_and(|a| a.is_empty())
            && again["suggestions"]
                .as_array()
                .is_some_and(|a| a.is_empty()),
        "{again}"
    );
    rt.block_on(running.shutdown()).expect("shutdown");
}

#[test]
fn chat_without_a_model_says_how_to_configure_one_and_slash_commands_still_answer() {
    let root = tempfile::tempdir().expect("tmp");
    let home = root.path().join("home");
    ok(
        &home,
        &[
            "init",
            "--name",
            "Fieldwork",
            "--handle",
            "ana",
            "--tz",
            "Europe/Lisbon",
        ],
    );
    let brief = ok(&home, &["brief", "add", "--title", "Spring film"])
        .trim()
        .to_owned();

    let out = spoke(&home, &["chat", "send", "who", "should", "take", "it?"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[agent]") && err.contains("provider"), "{err}");
    let thread = json(&home, &["chat", "show"]);
    assert_eq!(thread, serde_json::json!([]), "nothing posted");

    let who = ok(&home, &["chat", "send", "/who"]);
    assert!(
        who.contains("@ana") && who.contains("Europe/Lisbon"),
        "{who}"
    );
    let triage = ok(
        &home,
        &[
            "chat",
            "send",
            "--thread",
            &format!("brief:{brief}"),
            "/triage",
        ],
    );
    assert!(
        triage.contains("objective") && triage.contains("open question"),
        "{triage}"
    );
    let assign = ok(
        &home,
        &[
            "chat",
            "send",
            "--thread",
            &format!("brief:{brief}"),
            "/assign",
            "ana",
        ],
    );
    assert!(assign.contains("Assigned @ana"), "{assign}");
    assert_eq!(
        json(&home, &["brief", "show", &brief])["assignees"],
        serde_json::json!(["ana"])
    );
    let out = spoke(&home, &["chat", "send", "/triage"]);
    assert_eq!(out.status.code(), Some(2), "triage needs a brief's thread");
    let out = spoke(&home, &["chat", "send", "/fly"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/find"));
}
