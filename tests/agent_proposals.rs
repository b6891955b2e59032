//! What the agent's tools tell the model about a brief, and which changes it
//! may propose: every field a lead can set (due dates, priority,
//! deliverables, tags) read as `spoke brief set` reads them, a due date in
//! the past or a malformed value refused with the reason, and an approved
//! proposal applying exactly what was shown.

mod common_llm;

use serde_json::{Value, json};
use spoke::agent::tools::{self, ToolOutcome};
use spoke::model::approval::Decision;
use spoke::service::{Hub, NewBrief, NewHub, NewMember};

fn hub(dir: &std::path::Path) -> (Hub, String) {
    let mut hub = Hub::init(
        dir,
        NewHub {
            name: "Fieldwork",
            handle: "ana",
            tz: "Europe/Lisbon",
            display_name: None,
        },
    )
    .expect("init");
    let mut kenji = NewMember::new("kenji", "Asia/Tokyo");
    kenji.roles = vec![spoke::model::Role::Creative];
    hub.add_member(kenji).expect("member");
    let brief = hub
        .add_brief(NewBrief {
            title: "Podcast cover".into(),
            requester: Some("ana".into()),
            ..NewBrief::default()
        })
        .expect("brief")
        .id;
    hub.assign_brief(&brief, "kenji", false).expect("assign");
    hub.set_brief_fields(&brief, &[("due".to_owned(), "2027-03-01T17:00".to_owned())])
        .expect("due");
    (hub, brief)
}

fn run(hub: &mut Hub, name: &str, arguments: Value) -> ToolOutcome {
    common_llm::run_tool(hub, "test", &common_llm::tool_call(name, arguments))
}

fn result(outcome: &ToolOutcome) -> Value {
    serde_json::from_str(&outcome.for_model()).expect("tool results are JSON")
}

#[test]
fn the_model_sees_id_status_due_in_each_zone_assignees_and_what_is_missing() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut hub, brief) = hub(dir.path());
    let listed = result(&run(&mut hub, "list_briefs", json!({})));
    let row = &listed["briefs"][0];
    assert_eq!(row["id"], json!(brief));
    assert_eq!(row["status"], json!("draft"));
    assert_eq!(row["assignees"], json!(["kenji"]));
    // 17:00 in Lisbon is 02:00 the next day in Tokyo: both are given.
    let local = &row["due"]["local"];
    assert_eq!(local["you"], json!("Mon 01 Mar 17:00 WET"), "{row}");
    assert_eq!(local["@kenji"], json!("Tue 02 Mar 02:00 JST"), "{row}");
    let missing: Vec<&str> = row["missing"]
        .as_array()
        .expect("missing")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        missing,
        ["objective", "audience", "deliverables", "key_message"]
    );
    let read = result(&run(&mut hub, "get_brief", json!({"brief_id": brief})));
    assert_eq!(
        read["brief"]["facts"]["due"]["local"]["@kenji"],
        local["@kenji"]
    );
    let b = hub.brief(&brief).expect("brief");
    let line = tools::brief_facts_line(&b, &hub.members().expect("members"), "Europe/Lisbon");
    assert!(
        line.starts_with(&format!(
            "brief {brief} · draft · p2 · due Mon 01 Mar 17:00 WET for you"
        )),
        "{line}"
    );
    assert!(
        line.contains("@kenji") && line.contains("missing: objective"),
        "{line}"
    );
}

#[test]
fn a_due_date_priority_deliverables_and_tags_can_be_proposed_and_apply_once_approved() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut hub, brief) = hub(dir.path());
    let outcome = run(
        &mut hub,
        "propose_brief_update",
        json!({
            "brief_id": brief,
            "fields": {
                "due": "2027-04-10T12:00",
                "priority": "p1",
                "deliverables": "spotify:3000x3000, instagram:1080x1080*2",
                "tags": "+audio",
            },
            "rationale": "The launch moved",
        }),
    );
    let ToolOutcome::Proposed { approval, .. } = &outcome else {
        panic!("a proposal: {}", outcome.for_model());
    };
    // Nothing changes before a lead decides.
    assert_eq!(hub.brief(&brief).expect("brief").priority.as_str(), "p2");
    hub.decide(approval, Decision::Approved, None)
        .expect("approve");
    hub.reconcile_approvals().expect("reconcile");
    let after = hub.brief(&brief).expect("brief");
    assert_eq!(after.priority.as_str(), "p1");
    let due = after.due.expect("due");
    assert_eq!(due.to_iso(), "2027-04-10T12:00:00+01:00[Europe/Lisbon]");
    assert_eq!(after.deliverables.len(), 2);
    assert_eq!(after.tags, ["audio"]);
}

#[test]
fn a_past_or_malformed_due_date_and_a_status_change_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut hub, brief) = hub(dir.path());
    for (fields, says) in [
        (json!({"due": "2020-01-01T10:00"}), "in the past"),
        (json!({"due": "next tuesday-ish"}), "`due`"),
        (json!({"priority": "urgent"}), "`priority`"),
        (json!({"status": "delivered"}), "have their own commands"),
        (json!({"assignees": "kenji"}), "have their own commands"),
        (json!({"snooze_until": "2027-05-01"}), "cannot be proposed"),
    ] {
        let outcome = run(
            &mut hub,
            "propose_brief_update",
            json!({"brief_id": brief, "fields": fields, "rationale": "x"}),
        );
        let answer = result(&outcome);
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{fields}: {answer}");
    }
    assert!(hub.proposals().expect("proposals").is_empty());
}
