//! The assignment scorer on a real hub: a tie across zones goes to the
//! creative with the most working hours before the due, a pending proposal
//! counts as load for the next ready brief, deliverable channels map to
//! skills through the hub's table (which a lead edits with `spoke hub
//! skills` and a creative may not), and every proposal says why.

mod common_cli;

use common_cli::{Sandbox, loopback_relay, ok_in, spoke_in, stderr, stdout};
use jiff::Timestamp;
use serde_json::Value;
use spoke::agent::intake::suggest_assignment;
use spoke::agent::scorer;
use spoke::model::Role;
use spoke::model::proposal::{ProposalKind, ProposalStatus};
use spoke::service::{Hub, NewBrief, NewHub, NewMember};
use std::path::Path;

/// Mon 1 Mar 2027, 08:00 UTC: Lisbon is on UTC, New York on UTC-5, Sydney
/// on UTC+11.
fn monday_morning() -> Timestamp {
    "2027-03-01T08:00:00Z".parse().expect("timestamp")
}

/// ana (a lead in Lisbon) and three social creatives alike but for their
/// zones: ada in Sydney, bea in New York, cleo in Lisbon.
fn three_zone_team(dir: &Path) -> Hub {
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
    for (handle, tz) in [
        ("ada", "Australia/Sydney"),
        ("bea", "America/New_York"),
        ("cleo", "Europe/Lisbon"),
    ] {
        let mut m = NewMember::new(handle, tz);
        m.roles = vec![Role::Creative];
        m.hours = Some("09:00-17:00".into());
        m.skills = vec!["social".into()];
        hub.add_member(m).expect("member");
    }
    hub
}

/// A complete LinkedIn brief due Thu 4 Mar 15:00 Lisbon (02:00 Friday in
/// Sydney, 10:00 in New York), moved to ready by the lead.
fn ready_linkedin_brief(hub: &mut Hub, title: &str) -> String {
    let id = hub
        .add_brief(NewBrief {
            title: title.into(),
            objective: Some("Hire two designers".into()),
            audience: Some("Senior designers".into()),
            key_message: Some("Work from anywhere".into()),
            due: Some("2027-03-04T15:00".into()),
            deliverables: vec!["linkedin:1200x627".into()],
            status: Some("intake".into()),
            ..NewBrief::default()
        })
        .expect("brief")
        .id;
    hub.move_brief(&id, "ready", true).expect("ready");
    id
}

#[test]
fn a_tie_across_zones_goes_to_the_creative_with_hours_left_and_says_why() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut hub = three_zone_team(dir.path());
    let id = ready_linkedin_brief(&mut hub, "Recruitment post");
    let brief = hub.brief(&id).expect("brief");

    let ranked = scorer::rank_in_hub(&hub, &brief, monday_morning()).expect("rank");
    // ana, the lead, lacks the skill and ranks last.
    let order: Vec<&str> = ranked.iter().map(|c| c.handle.as_str()).collect();
    // Alphabet alone would pick ada, whose due falls at 02:00.
    assert_eq!(order, ["cleo", "bea", "ada", "ana"]);
    assert!(
        ranked[..3].iter().all(|c| c.score == 1.0),
        "the three creatives should score the same: {ranked:#?}"
    );
    let ada = &ranked[2];
    assert_eq!(
        ada.local_due.as_deref(),
        Some("Fri 05 Mar 02:00 Australia/Sydney")
    );
    assert!(ada.due_outside_hours);

    let suggestion = suggest_assignment(&mut hub, &id, monday_morning())
        .expect("suggest")
        .expect("a suggestion");
    assert_eq!(suggestion.handle, "cleo");
    let proposal = hub
        .proposals()
        .expect("proposals")
        .into_iter()
        .find(|p| p.id == suggestion.proposal)
        .expect("the proposal");
    let rationale = proposal.rationale.unwrap_or_default();
    for factor in [
        "skills: 1 of 1 wanted skills (social)",
        "hours before due: 30.0 working hours in Europe/Lisbon (Thu 04 Mar 15:00 their time)",
        "load: 0 assigned + 0 pending of 3 capacity",
        "Tie-break: tied with @bea, @ada (scores within 0.02); ahead of @bea on working hours \
         before the due in their zones (30.0 h vs 25.0 h)",
    ] {
        assert!(
            rationale.contains(factor),
            "the rationale should name `{factor}`:\n{rationale}"
        );
    }
}

#[test]
fn two_ready_briefs_in_a_row_go_to_different_people_while_the_first_is_pending() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut hub = three_zone_team(dir.path());
    let first = ready_linkedin_brief(&mut hub, "Recruitment post");
    let second = ready_linkedin_brief(&mut hub, "Culture post");

    let one = suggest_assignment(&mut hub, &first, monday_morning())
        .expect("suggest")
        .expect("a suggestion");
    let two = suggest_assignment(&mut hub, &second, monday_morning())
        .expect("suggest")
        .expect("a suggestion");
    assert_eq!(one.handle, "cleo");
    assert_ne!(
        two.handle, one.handle,
        "the first proposal is pending, so it counts as cleo's load"
    );
    assert_eq!(two.handle, "bea");

    let proposals = hub.proposals().expect("proposals");
    let first_proposal = proposals
        .iter()
        .find(|p| p.id == one.proposal)
        .expect("first proposal");
    assert_eq!(first_proposal.kind, Some(ProposalKind::Assignment));
    assert_eq!(first_proposal.status, ProposalStatus::Pending);
    assert!(
        hub.brief(&first).expect("brief").assignees.is_empty(),
        "nothing is assigned until a lead approves"
    );
    let second_rationale = proposals
        .iter()
        .find(|p| p.id == two.proposal)
        .and_then(|p| p.rationale.clone())
        .unwrap_or_default();
    assert!(
        second_rationale.contains("@bea:") && second_rationale.contains("load: 0 assigned"),
        "{second_rationale}"
    );
    // Scored again, cleo's pending proposal shows in her load.
    let brief = hub.brief(&second).expect("brief");
    let ranked = scorer::rank_in_hub(&hub, &brief, monday_morning()).expect("rank");
    let cleo = ranked.iter().find(|c| c.handle == "cleo").expect("cleo");
    assert_eq!((cleo.load, cleo.pending), (0, 1));
    assert!(
        cleo.rationale
            .contains("load: 0 assigned + 1 pending of 3 capacity"),
        "{}",
        cleo.rationale
    );
}

fn skills_json(home: &Path) -> Vec<Value> {
    let out = ok_in(home, &["hub", "skills", "--json"]);
    match serde_json::from_str(&out) {
        Ok(Value::Array(rows)) => rows,
        other => panic!("`spoke hub skills --json` should print an array: {other:?}\n{out}"),
    }
}

fn entry<'a>(rows: &'a [Value], channel: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["channel"] == channel)
        .unwrap_or_else(|| panic!("no `{channel}` in {rows:?}"))
}

#[test]
fn linkedin_wants_social_by_default_and_a_custom_skill_after_skills_set() {
    let sb = Sandbox::with_hub();
    for (handle, skills) in [("priya", "social"), ("wren", "b2b-writing")] {
        sb.ok(&[
            "member", "add", handle, "--tz", "UTC", "--role", "creative", "--skills", skills,
        ]);
    }
    let rows = skills_json(&sb.home);
    assert_eq!(
        entry(&rows, "linkedin")["skills"],
        serde_json::json!(["social"])
    );
    assert_eq!(entry(&rows, "linkedin")["source"], "default");
    let listed = sb.ok(&["hub", "skills"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("linkedin") && l.contains("social")),
        "{listed}"
    );

    let id = sb
        .ok(&[
            "brief",
            "add",
            "--title",
            "Hiring post",
            "--due",
            "2030-01-10T15:00",
            "--deliverable",
            "LinkedIn:1200x627",
        ])
        .trim()
        .to_owned();
    let thread = format!("brief:{id}");
    let triage = sb.ok(&["chat", "send", "/triage", "--thread", &thread]);
    assert!(
        triage.contains("Suggested assignee: @priya"),
        "linkedin wants social by default:\n{triage}"
    );
    assert!(
        triage.contains("factors: skill match 1/1;") && triage.contains("pending of"),
        "{triage}"
    );

    let set = sb.ok(&["hub", "skills", "set", "linkedin=B2B-Writing"]);
    assert!(set.contains("linkedin -> b2b-writing"), "{set}");
    let rows = skills_json(&sb.home);
    assert_eq!(
        entry(&rows, "linkedin")["skills"],
        serde_json::json!(["b2b-writing"])
    );
    assert_eq!(entry(&rows, "linkedin")["source"], "hub");
    let triage = sb.ok(&["chat", "send", "/triage", "--thread", &thread]);
    assert!(
        triage.contains("Suggested assignee: @wren")
            && triage.contains("skills: 1 of 1 wanted skills (b2b-writing)"),
        "after `skills set` linkedin wants b2b-writing:\n{triage}"
    );

    let unset = sb.ok(&["hub", "skills", "unset", "linkedin"]);
    assert!(unset.contains("the default: social"), "{unset}");
    assert_eq!(
        entry(&skills_json(&sb.home), "linkedin")["source"],
        "default"
    );
    // Unsetting again has nothing to drop; a malformed assignment is bad input.
    let again = sb.run(&["hub", "skills", "unset", "linkedin"]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(stderr(&again).contains("no skills set for channel `linkedin`"));
    let bad = sb.run(&["hub", "skills", "set", "linkedin"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("CHANNEL=SKILLS"), "{}", stderr(&bad));
}

#[test]
fn a_creative_may_not_edit_the_skill_table_and_a_leads_edit_reaches_them() {
    let root = tempfile::tempdir().expect("tmp");
    let (_rt, running) = loopback_relay(&root.path().join("relay"));
    let registry = &running.relay.registry;
    let hub = registry.create_hub("Fieldwork").expect("hub");
    let (lead_token, _) = registry.issue(&hub.id, "ana", "lead", None).expect("token");
    let (creative_token, _) = registry
        .issue(&hub.id, "kenji", "creative", None)
        .expect("token");
    let url = format!("ws://{}/v1/hubs/{}", running.addr, hub.id);
    let ana = root.path().join("ana");
    let kenji = root.path().join("kenji");
    ok_in(
        &ana,
        &["hub", "join", &url, "--token", &lead_token, "--tz", "UTC"],
    );
    ok_in(
        &kenji,
        &[
            "hub",
            "join",
            &url,
            "--token",
            &creative_token,
            "--tz",
            "UTC",
        ],
    );

    let refused = spoke_in(&kenji, &["hub", "skills", "set", "linkedin=copy"]);
    assert_ne!(
        refused.status.code(),
        Some(0),
        "a creative's edit must be refused\nstdout:\n{}",
        stdout(&refused)
    );
    let err = stderr(&refused);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("only a lead may change the hub's channel skills (channel `linkedin`)")
            && err.contains("@kenji (creative) may not"),
        "the refusal should say who may and who tried: {err}"
    );
    assert_eq!(
        entry(&skills_json(&kenji), "linkedin")["skills"],
        serde_json::json!(["social"]),
        "a refused edit writes nothing"
    );

    ok_in(&ana, &["hub", "skills", "set", "linkedin=copy,social"]);
    let synced = ok_in(&ana, &["sync", "--once", "--json"]);
    let synced: Value = serde_json::from_str(&synced).expect("json");
    assert_eq!(synced["refused"], serde_json::json!([]), "{synced}");
    ok_in(&kenji, &["sync", "--once"]);
    let rows = skills_json(&kenji);
    assert_eq!(
        entry(&rows, "linkedin")["skills"],
        serde_json::json!(["copy", "social"])
    );
    assert_eq!(entry(&rows, "linkedin")["source"], "hub");
}
