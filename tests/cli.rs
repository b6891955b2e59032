//! End-to-end tests of the built `spoke` binary: every test runs the real
//! executable against its own temporary `--home` and an empty `--config`, with
//! the environment variables that could point at the user's own data removed.

mod common_cli;

use common_cli::{
    INIT_DEMO, Sandbox, array, assert_exit_code_2, assert_success, base_command, stderr, stdout,
    str_field,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Output;

/// The nine brief statuses, in lifecycle order.
const ALL_STATUSES: [&str; 9] = [
    "draft",
    "intake",
    "ready",
    "in_progress",
    "in_review",
    "approved",
    "delivered",
    "on_hold",
    "cancelled",
];

/// Steps only these tests take.
impl Sandbox {
    /// Adds a brief and returns the id it prints.
    fn add_brief(&self, extra: &[&str]) -> String {
        let mut args = vec!["brief", "add"];
        args.extend_from_slice(extra);
        let id = self.ok(&args).trim().to_owned();
        assert!(
            id.starts_with("b-"),
            "`spoke {}` should print a brief id, printed {id:?}",
            args.join(" ")
        );
        id
    }

    fn list(&self, extra: &[&str]) -> Vec<Value> {
        let mut args = vec!["brief", "list"];
        args.extend_from_slice(extra);
        array(self.json(&args), "brief list --json")
    }

    fn show(&self, id: &str) -> Value {
        self.json(&["brief", "show", id])
    }
}

/// Asserts exit code 2 and a single-line reason on stderr containing every
/// one of `needles`.
fn assert_bad_input(out: &Output, what: &str, needles: &[&str]) {
    let err = assert_exit_code_2(out, what);
    assert_eq!(
        err.trim().lines().count(),
        1,
        "{what}: the reason should be one line, got:\n{err}"
    );
    for needle in needles {
        assert!(
            err.contains(needle),
            "{what}: stderr should mention `{needle}`, got:\n{err}"
        );
    }
}

fn ids(briefs: &[Value]) -> Vec<&str> {
    briefs.iter().map(|b| str_field(b, "id")).collect()
}

fn find<'a>(briefs: &'a [Value], id: &str) -> Option<&'a Value> {
    briefs.iter().find(|b| b["id"] == id)
}

// 1. The acceptance flow.

#[test]
fn brief_add_prints_an_id_that_list_json_contains() {
    let sb = Sandbox::with_hub();
    let id = sb.add_brief(&["--title", "Spring launch", "--priority", "p1"]);
    let briefs = sb.list(&[]);
    assert_eq!(briefs.len(), 1, "{briefs:?}");
    let b = find(&briefs, &id).unwrap_or_else(|| panic!("{id} not in {briefs:?}"));
    assert_eq!(b["title"], "Spring launch");
    assert_eq!(b["status"], "draft");
    assert_eq!(b["priority"], "p1");
    let obj = b.as_object().expect("a brief is a JSON object");
    assert!(obj.contains_key("assignees"), "no `assignees` key in {b}");
    assert!(obj.contains_key("due"), "no `due` key in {b}");
    assert_eq!(b["assignees"], serde_json::json!([]));
    assert!(b["due"].is_null(), "a brief added without --due: {b}");
}

#[test]
fn brief_check_json_lists_each_missing_required_field_with_a_question() {
    let sb = Sandbox::with_hub();
    let id = sb.add_brief(&["--title", "Spring launch", "--priority", "p1"]);
    let check = sb.json(&["brief", "check", &id]);
    assert_eq!(check["id"], id.as_str());
    assert_eq!(check["complete"], false);
    let missing: BTreeSet<&str> = check["missing"]
        .as_array()
        .expect("`missing` is an array")
        .iter()
        .map(|f| f.as_str().expect("missing field names are strings"))
        .collect();
    let expected: BTreeSet<&str> = [
        "objective",
        "audience",
        "deliverables",
        "due",
        "key_message",
    ]
    .into_iter()
    .collect();
    assert_eq!(missing, expected);
    let questions = check["questions"]
        .as_array()
        .expect("`questions` is an array");
    for field in &expected {
        let q = questions
            .iter()
            .find(|q| q["field"] == *field)
            .unwrap_or_else(|| panic!("no question for `{field}` in {questions:?}"));
        let text = str_field(q, "question");
        assert!(!text.trim().is_empty(), "empty question for `{field}`: {q}");
    }
    assert_eq!(questions.len(), expected.len(), "{questions:?}");
}

#[test]
fn moving_a_draft_straight_to_delivered_is_refused_naming_both_statuses() {
    let sb = Sandbox::with_hub();
    let id = sb.add_brief(&["--title", "Spring launch"]);
    let out = sb.run(&["brief", "status", &id, "delivered"]);
    assert_bad_input(&out, "draft -> delivered", &["draft", "delivered"]);
    assert_eq!(
        sb.show(&id)["status"],
        "draft",
        "a refused move changes nothing"
    );
}

// 2. Damaged replica files.

fn assert_damaged_replica_is_reported(sb: &Sandbox, what: &str) {
    let out = sb.run(&["brief", "list"]);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: expected exit code 1\nstderr:\n{err}"
    );
    assert!(!err.contains("panicked"), "{what}: panicked:\n{err}");
    let path = sb.replica().display().to_string();
    assert!(
        err.contains(&path),
        "{what}: stderr should name {path}, got:\n{err}"
    );
}

/// A hub with a few briefs, so the replica spans several pages.
fn hub_with_briefs() -> Sandbox {
    let sb = Sandbox::with_hub();
    for title in ["One", "Two", "Three"] {
        sb.add_brief(&["--title", title, "--objective", "Grow trials"]);
    }
    sb
}

#[test]
fn a_replica_truncated_to_a_few_kilobytes_is_reported_not_a_panic() {
    let sb = hub_with_briefs();
    let len = std::fs::metadata(sb.replica())
        .expect("replica exists")
        .len();
    assert!(len > 4096, "replica is only {len} bytes");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(sb.replica())
        .expect("open replica");
    file.set_len(4096).expect("truncate replica");
    drop(file);
    assert_damaged_replica_is_reported(&sb, "truncated to 4 KiB");
}

#[test]
fn an_empty_replica_file_is_reported_not_a_panic() {
    let sb = hub_with_briefs();
    std::fs::write(sb.replica(), b"").expect("empty the replica");
    assert_damaged_replica_is_reported(&sb, "0 bytes");
}

#[test]
fn a_replica_overwritten_with_garbage_is_reported_not_a_panic() {
    let sb = hub_with_briefs();
    let len = std::fs::metadata(sb.replica())
        .expect("replica exists")
        .len();
    let garbage: Vec<u8> = (0..len).map(|i| (i * 7 + 13) as u8).collect();
    std::fs::write(sb.replica(), garbage).expect("overwrite the replica");
    assert_damaged_replica_is_reported(&sb, "overwritten with garbage");
}

#[test]
fn a_replica_with_garbage_after_an_intact_header_is_reported_not_a_panic() {
    let sb = hub_with_briefs();
    let mut bytes = std::fs::read(sb.replica()).expect("read replica");
    // Keep redb's header page, scramble everything after it.
    for (i, b) in bytes.iter_mut().enumerate().skip(4096) {
        *b = (i.wrapping_mul(31) ^ 0x5a) as u8;
    }
    std::fs::write(sb.replica(), bytes).expect("overwrite the replica");
    assert_damaged_replica_is_reported(&sb, "garbage after the header");
}

// 3. Bad input: exit 2 and a one-line reason naming the bad value.

#[test]
fn an_unreadable_due_date_is_bad_input_and_adds_nothing() {
    let sb = Sandbox::with_hub();
    let out = sb.run(&["brief", "add", "--title", "X", "--due", "next tuesday"]);
    assert_bad_input(&out, "--due \"next tuesday\"", &["next tuesday"]);
    assert!(sb.list(&[]).is_empty(), "a rejected brief was still added");
}

#[test]
fn an_unknown_time_zone_on_init_is_bad_input_and_creates_no_replica() {
    let sb = Sandbox::new();
    let out = sb.run(&[
        "init",
        "--name",
        "Demo",
        "--handle",
        "ana",
        "--tz",
        "Mars/Base",
    ]);
    assert_bad_input(&out, "init --tz Mars/Base", &["Mars/Base"]);
    assert!(
        !sb.replica().exists(),
        "a failed init should leave no replica behind"
    );
}

#[test]
fn an_unknown_time_zone_on_member_add_is_bad_input() {
    let sb = Sandbox::with_hub();
    let out = sb.run(&["member", "add", "kenji", "--tz", "Mars/Base"]);
    assert_bad_input(&out, "member add --tz Mars/Base", &["Mars/Base"]);
    let members = array(sb.json(&["member", "list"]), "member list --json");
    assert!(
        members.iter().all(|m| m["handle"] != "kenji"),
        "a rejected member was still added: {members:?}"
    );
}

#[test]
fn an_unknown_priority_is_bad_input() {
    let sb = Sandbox::with_hub();
    let out = sb.run(&["brief", "add", "--title", "X", "--priority", "urgent"]);
    assert_bad_input(&out, "--priority urgent", &["urgent"]);
    assert!(sb.list(&[]).is_empty(), "a rejected brief was still added");
}

#[test]
fn an_unknown_status_is_bad_input() {
    let sb = Sandbox::with_hub();
    let id = sb.add_brief(&["--title", "X"]);
    let out = sb.run(&["brief", "status", &id, "done"]);
    assert_bad_input(&out, "brief status ID done", &["done"]);
    let out = sb.run(&["brief", "list", "--status", "done"]);
    assert_bad_input(&out, "brief list --status done", &["done"]);
}

#[test]
fn setting_an_unknown_field_is_bad_input() {
    let sb = Sandbox::with_hub();
    let id = sb.add_brief(&["--title", "X"]);
    let out = sb.run(&["brief", "set", &id, "colour=red"]);
    assert_bad_input(&out, "brief set ID colour=red", &["colour"]);
}

#[test]
fn a_set_pair_without_an_equals_sign_is_bad_input() {
    let sb = Sandbox::with_hub();
    let id = sb.add_brief(&["--title", "X"]);
    let out = sb.run(&["brief", "set", &id, "nofield"]);
    assert_bad_input(&out, "brief set ID nofield", &["nofield"]);
}

#[test]
fn an_unknown_brief_id_is_bad_input() {
    let sb = Sandbox::with_hub();
    sb.add_brief(&["--title", "X"]);
    for args in [
        vec!["brief", "show", "b-zzzzzzzz"],
        vec!["brief", "status", "b-zzzzzzzz", "intake"],
        vec!["brief", "set", "b-zzzzzzzz", "audience=Designers"],
        vec!["brief", "check", "b-zzzzzzzz"],
    ] {
        let out = sb.run(&args);
        assert_bad_input(&out, &args.join(" "), &["b-zzzzzzzz"]);
    }
}

#[test]
fn assigning_an_unknown_member_is_bad_input() {
    let sb = Sandbox::with_hub();
    let id = sb.add_brief(&["--title", "X"]);
    let out = sb.run(&["brief", "assign", &id, "nobody"]);
    assert_bad_input(&out, "brief assign ID nobody", &["nobody"]);
    assert_eq!(sb.show(&id)["assignees"], serde_json::json!([]));
}

// 4. Due dates keep their zone.

#[test]
fn a_due_date_without_a_zone_is_read_in_the_members_zone() {
    let sb = Sandbox::with_hub();
    let id = sb.add_brief(&["--title", "X", "--due", "2026-12-01T17:00"]);
    assert_eq!(
        sb.show(&id)["due"],
        "2026-12-01T17:00:00+00:00[Europe/Lisbon]"
    );
}

#[test]
fn a_due_date_with_an_explicit_zone_keeps_that_zone() {
    let sb = Sandbox::with_hub();
    let id = sb.add_brief(&["--title", "X", "--due", "2026-12-01T09:00[Asia/Tokyo]"]);
    assert_eq!(sb.show(&id)["due"], "2026-12-01T09:00:00+09:00[Asia/Tokyo]");
}

// 5. Setting fields.

#[test]
fn setting_the_required_fields_makes_the_brief_complete() {
    let sb = Sandbox::with_hub();
    let id = sb.add_brief(&["--title", "Spring launch"]);
    sb.ok(&[
        "brief",
        "set",
        &id,
        "objective=Grow trials",
        "audience=Designers",
        "key_message=Ship faster",
        "deliverables=linkedin:1200x627,instagram:1080x1350*3",
        "due=2026-12-01",
    ]);
    let check = sb.json(&["brief", "check", &id]);
    assert_eq!(check["complete"], true, "{check}");
    assert_eq!(check["missing"], serde_json::json!([]), "{check}");
    assert_eq!(check["questions"], serde_json::json!([]), "{check}");

    let b = sb.show(&id);
    assert_eq!(b["objective"], "Grow trials");
    assert_eq!(b["audience"], "Designers");
    assert_eq!(b["key_message"], "Ship faster");
    assert_eq!(b["due"], "2026-12-01T17:00:00+00:00[Europe/Lisbon]");
    let deliverables = b["deliverables"].as_array().expect("deliverables array");
    assert_eq!(deliverables.len(), 2, "{deliverables:?}");
    assert_eq!(deliverables[0]["channel"], "linkedin");
    assert_eq!(deliverables[0]["spec"], "1200x627");
    assert_eq!(deliverables[0]["quantity"], 1);
    assert_eq!(deliverables[1]["channel"], "instagram");
    assert_eq!(deliverables[1]["spec"], "1080x1350");
    assert_eq!(deliverables[1]["quantity"], 3);
}

#[test]
fn tags_plus_adds_and_tags_minus_removes_a_tag() {
    let sb = Sandbox::with_hub();
    let id = sb.add_brief(&["--title", "X"]);
    sb.ok(&["brief", "set", &id, "tags=+hero"]);
    assert_eq!(sb.show(&id)["tags"], serde_json::json!(["hero"]));
    assert_eq!(ids(&sb.list(&["--tag", "hero"])), vec![id.as_str()]);
    sb.ok(&["brief", "set", &id, "tags=-hero"]);
    assert_eq!(sb.show(&id)["tags"], serde_json::json!([]));
    assert!(sb.list(&["--tag", "hero"]).is_empty());
}

// 6. The lifecycle.

#[test]
fn a_brief_walks_the_lifecycle_from_draft_to_delivered() {
    let sb = Sandbox::with_hub();
    let id = sb.add_brief(&["--title", "Spring launch"]);
    // Only a title: the brief stays in intake until its questions are answered.
    sb.ok(&["brief", "status", &id, "intake"]);
    let refused = sb.run(&["brief", "status", &id, "ready"]);
    assert_eq!(refused.status.code(), Some(2));
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("open questions") && why.contains("objective"),
        "{why}"
    );
    for status in [
        "intake",
        "ready",
        "in_progress",
        "in_review",
        "approved",
        "delivered",
    ] {
        // The hub's creator is a lead and may move it on.
        let b = sb.json(&["brief", "status", &id, status, "--force"]);
        assert_eq!(b["status"], status, "after `brief status {id} {status}`");
    }
    let delivered = sb.list(&["--status", "delivered"]);
    assert_eq!(ids(&delivered), vec![id.as_str()]);
    assert!(
        find(&sb.list(&["--status", "ready"]), &id).is_none(),
        "a delivered brief is listed as ready"
    );
}

// 7. Members.

#[test]
fn member_add_shows_zone_role_hours_and_skills_in_member_list() {
    let sb = Sandbox::with_hub();
    sb.ok(&[
        "member",
        "add",
        "kenji",
        "--tz",
        "Asia/Tokyo",
        "--role",
        "creative",
        "--hours",
        "09:00-17:30",
        "--skills",
        "motion,3d",
    ]);
    let members = array(sb.json(&["member", "list"]), "member list --json");
    let kenji = members
        .iter()
        .find(|m| m["handle"] == "kenji")
        .unwrap_or_else(|| panic!("kenji not in {members:?}"));
    assert_eq!(kenji["tz"], "Asia/Tokyo");
    assert_eq!(kenji["roles"], serde_json::json!(["creative"]));
    let skills = kenji["skills"].as_array().expect("skills array");
    assert!(skills.iter().any(|s| s == "motion"), "{skills:?}");
    assert!(skills.iter().any(|s| s == "3d"), "{skills:?}");
    assert_eq!(kenji["hours"]["mon"], "09:00-17:30");
    assert!(
        members.iter().any(|m| m["handle"] == "ana"),
        "the hub's creator is a member: {members:?}"
    );
}

#[test]
fn adding_the_same_member_twice_is_bad_input() {
    let sb = Sandbox::with_hub();
    sb.ok(&["member", "add", "kenji", "--tz", "Asia/Tokyo"]);
    let out = sb.run(&["member", "add", "kenji", "--tz", "Asia/Tokyo"]);
    assert_bad_input(&out, "second member add kenji", &["kenji"]);
}

#[test]
fn assign_adds_a_member_and_assign_remove_takes_them_off() {
    let sb = Sandbox::with_hub();
    sb.ok(&["member", "add", "kenji", "--tz", "Asia/Tokyo"]);
    let id = sb.add_brief(&["--title", "X"]);
    let b = sb.json(&["brief", "assign", &id, "kenji"]);
    assert_eq!(b["assignees"], serde_json::json!(["kenji"]));
    assert_eq!(sb.show(&id)["assignees"], serde_json::json!(["kenji"]));
    assert_eq!(ids(&sb.list(&["--assignee", "kenji"])), vec![id.as_str()]);
    sb.ok(&["brief", "assign", &id, "kenji", "--remove"]);
    assert_eq!(sb.show(&id)["assignees"], serde_json::json!([]));
    assert!(sb.list(&["--assignee", "kenji"]).is_empty());
}

// 8. Id prefixes.

#[test]
fn brief_show_accepts_the_id_without_its_prefix_and_a_unique_prefix() {
    let sb = Sandbox::with_hub();
    let a = sb.add_brief(&["--title", "First"]);
    let b = sb.add_brief(&["--title", "Second"]);
    assert_ne!(a, b);
    let bare = a.strip_prefix("b-").expect("ids start with b-");
    assert_eq!(sb.show(bare)["id"], a.as_str(), "bare id {bare}");
    // The shortest prefix of `a` that `b` does not share.
    let other = b.strip_prefix("b-").expect("ids start with b-");
    let n = bare
        .chars()
        .zip(other.chars())
        .take_while(|(x, y)| x == y)
        .count()
        + 1;
    let short = &bare[..n];
    assert_eq!(sb.show(short)["id"], a.as_str(), "unique prefix {short}");
    let long_short = format!("b-{short}");
    assert_eq!(
        sb.show(&long_short)["id"],
        a.as_str(),
        "unique prefix {long_short}"
    );
    assert_eq!(sb.show(&a)["title"], "First");
}

// 9. Before `init`.

#[test]
fn commands_before_init_fail_and_point_at_spoke_init() {
    let sb = Sandbox::new();
    for args in [
        vec!["brief", "list"],
        vec!["brief", "add", "--title", "X"],
        vec!["member", "list"],
        vec!["member", "add", "kenji", "--tz", "Asia/Tokyo"],
    ] {
        let out = sb.run(&args);
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "`spoke {}` before init\nstderr:\n{err}",
            args.join(" ")
        );
        assert!(
            err.contains("spoke init"),
            "`spoke {}` should mention `spoke init`, got:\n{err}",
            args.join(" ")
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(
        !sb.replica().exists(),
        "no command before init creates a replica"
    );
}

// 10. The demo.

#[test]
fn demo_seeds_briefs_in_every_status_and_members_across_zones() {
    let sb = Sandbox::new();
    sb.ok(&["--demo"]);
    let briefs = sb.list(&[]);
    assert!(briefs.len() >= 20, "only {} demo briefs", briefs.len());
    let statuses: BTreeSet<&str> = briefs.iter().map(|b| str_field(b, "status")).collect();
    for status in ALL_STATUSES {
        assert!(
            statuses.contains(status),
            "no demo brief is {status}: {statuses:?}"
        );
    }
    let members = array(sb.json(&["member", "list"]), "member list --json");
    let zones: BTreeSet<&str> = members.iter().map(|m| str_field(m, "tz")).collect();
    assert!(zones.len() >= 4, "demo members span only {zones:?}");
}

// 11. Rebuilding the cache.

#[test]
fn rebuild_cache_returns_the_same_briefs() {
    let sb = Sandbox::with_hub();
    let a = sb.add_brief(&["--title", "Alpha", "--priority", "p0"]);
    let b = sb.add_brief(&["--title", "Beta", "--due", "2026-12-01"]);
    sb.add_brief(&["--title", "Gamma"]);
    sb.ok(&["brief", "status", &a, "intake"]);
    sb.ok(&["brief", "status", &b, "cancelled"]);
    sb.ok(&["brief", "set", &b, "audience=Designers", "tags=+hero"]);

    let summary = |briefs: &[Value]| -> BTreeSet<(String, String, String)> {
        briefs
            .iter()
            .map(|b| {
                (
                    str_field(b, "id").to_owned(),
                    str_field(b, "title").to_owned(),
                    str_field(b, "status").to_owned(),
                )
            })
            .collect()
    };
    let before = sb.list(&[]);
    assert_eq!(before.len(), 3);
    let out = sb.run(&["--rebuild-cache", "brief", "list", "--json"]);
    assert_success(&out, &["--rebuild-cache", "brief", "list", "--json"]);
    let after = array(
        serde_json::from_str(&stdout(&out)).expect("rebuild-cache list prints JSON"),
        "brief list --json after --rebuild-cache",
    );
    assert_eq!(summary(&after), summary(&before));
    assert_eq!(after, before, "every field survives a rebuild");
    // And the rebuilt state is what later commands read.
    assert_eq!(sb.list(&[]), before);
}

// 12. SPOKE_HOME.

#[test]
fn spoke_home_env_var_works_in_place_of_home_flag() {
    let sb = Sandbox::new();
    let run = |args: &[&str]| -> Output {
        base_command()
            .env("SPOKE_HOME", &sb.home)
            .arg("--config")
            .arg(&sb.config)
            .args(args)
            .output()
            .expect("run the spoke binary")
    };
    assert_success(&run(&INIT_DEMO), &INIT_DEMO);
    assert!(
        sb.replica().exists(),
        "init should write $SPOKE_HOME/replica.redb"
    );
    let add = ["brief", "add", "--title", "Via env"];
    let out = run(&add);
    assert_success(&out, &add);
    let id = stdout(&out).trim().to_owned();
    let out = run(&["brief", "list", "--json"]);
    assert_success(&out, &["brief", "list", "--json"]);
    let listed = array(
        serde_json::from_str(&stdout(&out)).expect("brief list prints JSON"),
        "brief list --json",
    );
    assert_eq!(ids(&listed), vec![id.as_str()]);
    // The same data is seen through --home.
    assert_eq!(ids(&sb.list(&[])), vec![id.as_str()]);
}

#[test]
fn keymap_check_reports_unknown_actions_and_conflicts_with_file_and_line() {
    let sb = Sandbox::new();
    let bad = sb.file(
        "mine.toml",
        b"[global]\nq = \"quit\"\nx = \"fly_to_the_moon\"\n\n[briefs]\ns = \"set_status\"\ns = \"assign\"\n",
    );
    let out = sb.run(&["keymap", "check", &bad.display().to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    let file = bad.display().to_string();
    assert!(
        text.contains(&format!("{file}:3:")) && text.contains("fly_to_the_moon"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{file}:7:")),
        "the duplicate `s` is on line 7: {text}"
    );

    let good = sb.file(
        "good.toml",
        b"inherits = \"default\"\n[briefs]\nX = \"clear_marks\"\n",
    );
    let out = sb.run(&["keymap", "check", &good.display().to_string()]);
    assert_success(&out, &["keymap", "check"]);
    assert!(stdout(&out).contains("no problems"));
}

#[test]
fn the_ui_refuses_to_start_without_a_terminal_and_says_what_to_use() {
    let sb = Sandbox::with_hub();
    let out = sb.run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("needs a terminal"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn approvals_from_the_command_line_need_an_asset_reviewers_and_comments() {
    let sb = Sandbox::with_hub();
    sb.ok(&[
        "member",
        "add",
        "kenji",
        "--tz",
        "Asia/Tokyo",
        "--role",
        "reviewer",
    ]);

    let list = sb.ok(&["approvals", "list", "--json"]);
    assert_eq!(list.trim(), "[]");

    let missing = sb.run(&[
        "approvals",
        "request",
        "--asset",
        "a-nothere",
        "--reviewers",
        "kenji",
    ]);
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("a-nothere"));

    let unknown = sb.run(&["approve", "r-nothere"]);
    assert_eq!(unknown.status.code(), Some(2));
    let no_reason = sb.run(&["reject", "r-nothere"]);
    assert_eq!(no_reason.status.code(), Some(2));
}

#[test]
fn asset_import_list_and_dupes_speak_json() {
    let sb = Sandbox::with_hub();
    let img: image::RgbImage = image::ImageBuffer::from_fn(400, 300, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 251) as u8])
    });
    let a = sb.root.path().join("launch-hero.png");
    img.save(&a).expect("save png");
    let b = sb.root.path().join("launch-hero-copy.jpg");
    image::DynamicImage::ImageRgb8(img)
        .resize(200, 150, image::imageops::FilterType::Triangle)
        .to_rgb8()
        .save(&b)
        .expect("save jpeg");
    let out = sb.ok(&[
        "asset",
        "import",
        a.to_str().expect("utf8"),
        b.to_str().expect("utf8"),
    ]);
    assert!(out.contains("imported 2"), "{out}");

    let list = sb.json(&["asset", "list"]);
    let hero = list
        .as_array()
        .expect("array")
        .iter()
        .find(|a| a["title"] == "launch hero")
        .expect("titled from the file name");
    assert!(hero["id"].as_str().is_some_and(|i| i.starts_with("a-")));
    assert!(
        hero["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .any(|t| t == "landscape")
    );
    assert!(
        hero["palette"]
            .as_array()
            .expect("palette")
            .iter()
            .all(|c| {
                c.as_str()
                    .is_some_and(|c| c.len() == 7 && c.starts_with('#'))
            })
    );
    let dupes = sb.json(&["asset", "dupes"]);
    assert_eq!(dupes.as_array().expect("groups").len(), 1);
    assert_eq!(dupes[0].as_array().expect("group").len(), 2);

    let broken = sb.file("broken.png", b"nope");
    let out = sb.run(&["asset", "import", broken.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("broken.png") && stdout(&out).contains("corrupt"),
        "{}",
        stdout(&out)
    );
}
