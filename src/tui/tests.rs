//! Reducer tests for the TUI: keys and pastes in, state and effects out,
//! pane by pane, on fixed data and on real replicas.

use super::action::{Action, Pane};
use super::app::{App, Effect, Level, Msg, Snapshot};
use super::edits::BriefEdit;
use super::keymap::{KeyChord, Keymap};
use super::popup::picker::AnyPicker;
use super::popup::picker::Picked;
use super::popup::{Answer, Popup};
use crate::model::brief::{Brief, BriefStatus, Due, Priority};
use crate::model::member::Member;
use crate::model::{Change, EntityRecord, EntityRef};
use crate::service::{Hub, NewBrief, NewHub};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use jiff::Timestamp;
use serde_json::json;
use spoke_relay::proto::PresenceStatus;
use std::collections::BTreeMap;

fn brief(id: &str, title: &str, status: BriefStatus) -> Brief {
    let mut b = Brief::from_record(id, &EntityRecord::default());
    b.title = title.into();
    b.status = status;
    b
}

fn member(handle: &str, tz: &str, role: &str) -> Member {
    let mut rec = EntityRecord::default();
    let stamp = crate::model::Stamp {
        hlc: Default::default(),
        id: spoke_relay::proto::OpId {
            client: spoke_relay::proto::ClientId(1),
            seq: 1,
        },
    };
    rec.merge(
        stamp,
        &Change::Set(BTreeMap::from([
            ("tz".to_owned(), json!(tz)),
            (format!("roles:{role}"), json!(true)),
        ])),
    );
    Member::from_record(handle, &rec)
}

/// The queue as `me` sees it; ana is a lead, kenji and maya creatives.
fn app_as(me: &str) -> App {
    let keymap = Keymap::load("default", None).expect("default keymap");
    let mut app = App::new(keymap, Timestamp::UNIX_EPOCH);
    app.update(Msg::Data(Box::new(Snapshot {
        briefs: vec![
            brief("b-1", "Spring launch", BriefStatus::Draft),
            brief("b-2", "Holiday header", BriefStatus::Intake),
            brief("b-3", "Podcast cover", BriefStatus::Ready),
            brief("b-4", "Annual report", BriefStatus::Draft),
        ],
        members: vec![
            member("ana", "Europe/Lisbon", "lead"),
            member("kenji", "Asia/Tokyo", "creative"),
            member("maya", "America/New_York", "creative"),
        ],
        me: Some(me.into()),
        zone: "Europe/Lisbon".into(),
        ..Snapshot::default()
    })));
    app
}

fn app() -> App {
    app_as("ana")
}

fn key(app: &mut App, text: &str) -> Vec<Effect> {
    let mut effects = Vec::new();
    for k in text.split(' ') {
        let chord = KeyChord::parse(k).expect("key");
        let mut mods = chord.mods;
        if let KeyCode::Char(c) = chord.code
            && c.is_ascii_uppercase()
        {
            mods |= KeyModifiers::SHIFT;
        }
        effects.extend(app.update(Msg::Key(KeyEvent::new(chord.code, mods))));
    }
    effects
}

fn type_in(app: &mut App, text: &str) {
    for c in text.chars() {
        app.update(Msg::Key(KeyEvent::new(
            KeyCode::Char(c),
            KeyModifiers::NONE,
        )));
    }
}

fn edits(effects: &[Effect]) -> Vec<&BriefEdit> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Briefs(edit) => Some(edit),
            _ => None,
        })
        .collect()
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A real replica on disk: ana (a lead) with kenji, and an app on it.
fn replica(dir: &std::path::Path) -> (Hub, App) {
    let mut hub = Hub::init(
        dir,
        NewHub {
            name: "Test",
            handle: "ana",
            tz: "Europe/Lisbon",
            display_name: None,
        },
    )
    .expect("init");
    hub.add_member(crate::service::NewMember::new("kenji", "Asia/Tokyo"))
        .expect("kenji");
    let app = App::new(
        Keymap::load("default", None).expect("default keymap"),
        Timestamp::UNIX_EPOCH,
    );
    (hub, app)
}

fn reload(app: &mut App, hub: &Hub) {
    let data = crate::tui::run::snapshot(hub).expect("snapshot");
    app.update(Msg::Data(Box::new(data)));
}

/// Runs the brief edits as the replica worker does and feeds back the results.
fn run(app: &mut App, hub: &mut Hub, effects: Vec<Effect>) {
    for effect in effects {
        if let Effect::Briefs(edit) = effect {
            let edited = crate::tui::edits::apply(hub, &edit);
            app.update(Msg::Edited(edited));
            reload(app, hub);
        }
    }
}

#[test]
fn marking_three_briefs_and_assigning_asks_for_one_assignment_of_all_three() {
    let mut app = app();
    key(&mut app, "space space space");
    assert_eq!(app.panes.briefs.queue.marked.len(), 3);
    key(&mut app, "a");
    let Some(Popup::Picker(AnyPicker::Member(picker))) = app.popup() else {
        panic!("the assign picker is open");
    };
    let choices = &picker.choices;
    let kenji = choices
        .iter()
        .position(|c| c.value == "kenji")
        .expect("kenji listed");
    assert!(choices[kenji].detail.contains("Asia/Tokyo") && choices[kenji].detail.contains("0/3"));
    for _ in 0..kenji {
        key(&mut app, "down");
    }
    let effects = key(&mut app, "ret");
    let mut marked: Vec<String> = app.panes.briefs.queue.marked.iter().cloned().collect();
    marked.sort();
    match edits(&effects).as_slice() {
        [
            BriefEdit::Assign {
                ids,
                handle,
                remove: false,
            },
        ] => {
            let mut ids = ids.clone();
            ids.sort();
            assert_eq!((ids, handle.as_str()), (marked, "kenji"));
        }
        other => panic!("expected one assignment, got {other:?}"),
    }
    assert!(
        app.undo.is_empty(),
        "nothing to undo until the service says so"
    );
}

#[test]
fn undo_puts_back_what_the_service_changed_on_a_real_replica() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut hub, mut app) = replica(dir.path());
    for title in ["Spring launch", "Holiday header"] {
        hub.add_brief(NewBrief {
            title: title.into(),
            ..NewBrief::default()
        })
        .expect("brief");
    }
    reload(&mut app, &hub);
    let effects = key(&mut app, "space space a");
    let kenji = match app.popup() {
        Some(Popup::Picker(AnyPicker::Member(picker))) => picker
            .choices
            .iter()
            .position(|c| c.value == "kenji")
            .expect("kenji"),
        other => panic!("the assign picker is open, got {other:?}"),
    };
    assert!(edits(&effects).is_empty(), "nothing changes before a pick");
    for _ in 0..kenji {
        key(&mut app, "down");
    }
    let effects = key(&mut app, "ret");
    run(&mut app, &mut hub, effects);
    let assigned = |hub: &Hub| -> Vec<Vec<String>> {
        hub.briefs(&Default::default())
            .expect("briefs")
            .into_iter()
            .map(|b| b.assignees)
            .collect()
    };
    assert_eq!(assigned(&hub), vec![vec!["kenji".to_owned()]; 2]);
    assert!(matches!(&app.message, Some((Level::Info, m)) if m == "2 briefs assigned to @kenji"));
    assert_eq!(app.undo.len(), 1);
    let effects = key(&mut app, "u");
    assert!(matches!(
        edits(&effects).as_slice(),
        [BriefEdit::Undo { .. }]
    ));
    run(&mut app, &mut hub, effects);
    assert_eq!(assigned(&hub), vec![Vec::<String>::new(); 2]);
    assert!(app.undo.is_empty());
    assert!(matches!(&app.message, Some((Level::Info, m)) if m.starts_with("undid: 2 briefs")));
}

#[test]
fn a_status_the_lifecycle_forbids_is_refused_for_that_brief_only() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut hub, mut app) = replica(dir.path());
    let draft = hub
        .add_brief(NewBrief {
            title: "Spring launch".into(),
            ..NewBrief::default()
        })
        .expect("draft")
        .id;
    let ready = hub
        .add_brief(NewBrief {
            title: "Podcast cover".into(),
            status: Some("intake".into()),
            ..NewBrief::default()
        })
        .expect("intake")
        .id;
    hub.move_brief(&ready, "ready", true)
        .expect("ana forces it");
    reload(&mut app, &hub);
    app.panes.briefs.queue.marked.insert(draft.clone());
    app.panes.briefs.queue.marked.insert(ready.clone());
    let effects = app.answer(
        Pane::Briefs,
        Answer::Picked(Picked::Status(BriefStatus::InProgress)),
    );
    assert!(matches!(
        edits(&effects).as_slice(),
        [BriefEdit::SetStatus { ids, to: BriefStatus::InProgress, force: false }] if ids.len() == 2
    ));
    run(&mut app, &mut hub, effects);
    assert_eq!(
        hub.brief(&ready).expect("b").status,
        BriefStatus::InProgress
    );
    assert_eq!(hub.brief(&draft).expect("b").status, BriefStatus::Draft);
    let cli = hub
        .move_brief(&draft, "in_progress", false)
        .expect_err("the CLI refuses it too");
    let Some((Level::Error, message)) = &app.message else {
        panic!("an error in the status line, got {:?}", app.message);
    };
    assert_eq!(message, &format!("1 brief → in_progress; {cli:#}"));
}

#[test]
fn moving_an_incomplete_brief_to_ready_asks_a_lead_first_and_forces_it_on_yes() {
    let mut app = app();
    app.panes.briefs.queue.marked.insert("b-2".into());
    let effects = app.answer(
        Pane::Briefs,
        Answer::Picked(Picked::Status(BriefStatus::Ready)),
    );
    assert!(
        edits(&effects).is_empty(),
        "nothing changes before the answer"
    );
    assert!(
        matches!(app.popup(), Some(Popup::Confirm { message, .. }) if message.contains("objective"))
    );
    let effects = key(&mut app, "y");
    assert_eq!(
        edits(&effects),
        [&BriefEdit::SetStatus {
            ids: ids(&["b-2"]),
            to: BriefStatus::Ready,
            force: true
        }]
    );
}

#[test]
fn a_non_lead_moving_an_incomplete_brief_is_not_asked_and_the_service_decides() {
    let mut app = app_as("kenji");
    app.panes.briefs.queue.marked.insert("b-2".into());
    let effects = app.answer(
        Pane::Briefs,
        Answer::Picked(Picked::Status(BriefStatus::Ready)),
    );
    assert!(app.popup().is_none());
    assert_eq!(
        edits(&effects),
        [&BriefEdit::SetStatus {
            ids: ids(&["b-2"]),
            to: BriefStatus::Ready,
            force: false
        }]
    );
}

#[test]
fn priority_tags_snooze_and_comment_are_sent_as_intents() {
    let mut app = app();
    let current = app
        .panes
        .briefs
        .queue
        .selected()
        .map(|b| b.id.clone())
        .expect("a row");
    let effects = key(&mut app, "+");
    assert_eq!(
        edits(&effects),
        [&BriefEdit::SetPriority {
            ids: vec![current.clone()],
            to: Priority::P1
        }]
    );
    key(&mut app, "t");
    type_in(&mut app, "+hero -draft social");
    let effects = key(&mut app, "ret");
    assert_eq!(
        edits(&effects),
        [&BriefEdit::Tags {
            ids: vec![current.clone()],
            add: ids(&["hero", "social"]),
            remove: ids(&["draft"]),
        }]
    );
    key(&mut app, "z");
    type_in(&mut app, "2026-12-01");
    let effects = key(&mut app, "ret");
    let until = Due::parse("2026-12-01", "Europe/Lisbon").expect("date").at;
    assert_eq!(
        edits(&effects),
        [&BriefEdit::Snooze {
            ids: vec![current.clone()],
            until: Some(until)
        }]
    );
    key(&mut app, "c");
    type_in(&mut app, "Looks good");
    let effects = key(&mut app, "ret");
    assert_eq!(
        edits(&effects),
        [&BriefEdit::Comment {
            id: current.clone(),
            text: "Looks good".into()
        }]
    );
    assert!(effects.contains(&Effect::LoadThread(current)));
}

#[test]
fn a_comment_from_the_tui_is_stored_as_the_cli_stores_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut hub, mut app) = replica(dir.path());
    let id = hub
        .add_brief(NewBrief {
            title: "Spring launch".into(),
            ..NewBrief::default()
        })
        .expect("brief")
        .id;
    hub.comment_on_brief(&id, "from the service")
        .expect("comment");
    reload(&mut app, &hub);
    key(&mut app, "c");
    type_in(&mut app, "from the tui");
    let effects = key(&mut app, "ret");
    run(&mut app, &mut hub, effects);
    let stored = hub
        .replica()
        .items(&EntityRef::new(
            crate::model::EntityKind::Thread,
            crate::model::brief::thread_id_for_brief(&id),
        ))
        .expect("items");
    let [(_, service), (_, tui)] = stored.as_slice() else {
        panic!("two comments, got {stored:?}");
    };
    let mut tui_value = tui.value.clone();
    tui_value["body"] = service.value["body"].clone();
    assert_eq!(tui_value, service.value, "the same shape");
    assert_eq!(tui.value["body"], json!("from the tui"));
}

#[test]
fn filter_narrows_the_queue_as_you_type_and_escape_restores_it() {
    let mut app = app();
    key(&mut app, "/ p o d c a s t");
    assert_eq!(app.panes.briefs.queue.rows.len(), 1);
    assert_eq!(
        app.panes.briefs.queue.selected().map(|b| b.id.as_str()),
        Some("b-3")
    );
    key(&mut app, "esc");
    assert_eq!(app.panes.briefs.queue.rows.len(), 4);
}

#[test]
fn g_g_goes_to_the_top_through_a_which_key_popup() {
    let mut app = app();
    key(&mut app, "G");
    assert_eq!(app.panes.briefs.queue.cursor, 3);
    key(&mut app, "g");
    assert!(app.which_key.is_some());
    key(&mut app, "g");
    assert_eq!(app.panes.briefs.queue.cursor, 0);
    assert!(app.which_key.is_none());
}

#[test]
fn the_palette_lists_loaded_bindings_and_runs_the_chosen_action() {
    let mut app = app();
    let all = super::popup::palette_matches(&app.keymap, Pane::Briefs, "");
    for b in app.keymap.bindings_for(Pane::Briefs) {
        assert!(
            all.iter().any(|(a, _, _)| *a == b.action),
            "{} missing",
            b.action
        );
    }
    key(&mut app, ":");
    type_in(&mut app, "team");
    key(&mut app, "ret");
    assert_eq!(app.pane, Pane::Team);
}

#[test]
fn presence_marks_members_online_until_they_leave_or_go_quiet() {
    let mut app = app();
    let p = |member: &str, status: PresenceStatus| spoke_relay::proto::Presence {
        member: member.into(),
        status,
        tz: None,
        viewing: None,
    };
    app.update(Msg::Presence(p("kenji", PresenceStatus::Online)));
    app.update(Msg::Presence(p("maya", PresenceStatus::Away)));
    assert_eq!(app.online.len(), 2);
    assert_eq!(app.online["kenji"].viewing, None);
    let mut looking = p("kenji", PresenceStatus::Online);
    looking.viewing = Some("brief/b-1".into());
    app.update(Msg::Presence(looking));
    assert_eq!(app.online["kenji"].viewing.as_deref(), Some("brief/b-1"));
    app.update(Msg::Presence(p("maya", PresenceStatus::Offline)));
    app.update(Msg::Presence(p("nobody", PresenceStatus::Unknown)));
    assert!(app.online.contains_key("kenji") && !app.online.contains_key("maya"));
    let later = app
        .now
        .checked_add(jiff::SignedDuration::from_mins(5))
        .expect("time");
    app.update(Msg::Tick(later));
    assert!(app.online.is_empty(), "silence for five minutes means gone");
}

#[test]
fn new_brief_asks_the_clarifying_questions_inline_and_undo_deletes_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut hub, mut app) = replica(dir.path());
    reload(&mut app, &hub);
    key(&mut app, "n");
    // An empty title does not move on.
    key(&mut app, "ret");
    assert!(matches!(app.popup(), Some(Popup::Form(f)) if f.index == 0));
    type_in(&mut app, "Launch video");
    key(&mut app, "ret");
    type_in(&mut app, "Grow trials");
    key(&mut app, "ret"); // objective
    key(&mut app, "ret"); // audience left open
    type_in(&mut app, "linkedin:1200x627");
    key(&mut app, "ret"); // deliverables
    type_in(&mut app, "next week");
    key(&mut app, "ret");
    assert!(
        matches!(&app.message, Some((Level::Error, m)) if m.contains("next week")),
        "a bad due date is caught on the spot"
    );
    for _ in 0.."next week".len() {
        key(&mut app, "backspace");
    }
    type_in(&mut app, "2026-12-01");
    key(&mut app, "ret"); // due
    let effects = key(&mut app, "ret"); // key message left open: submit
    assert_eq!(
        edits(&effects),
        [&BriefEdit::Create(Box::new(NewBrief {
            title: "Launch video".into(),
            objective: Some("Grow trials".into()),
            deliverables: ids(&["linkedin:1200x627"]),
            due: Some("2026-12-01".into()),
            ..NewBrief::default()
        }))]
    );
    run(&mut app, &mut hub, effects);
    let added = hub.briefs(&Default::default()).expect("briefs");
    let [brief] = added.as_slice() else {
        panic!("one brief, got {added:?}");
    };
    assert_eq!(
        (brief.title.as_str(), brief.objective.as_deref()),
        ("Launch video", Some("Grow trials"))
    );
    assert!(brief.due.is_some() && brief.audience.is_none());
    assert!(matches!(
        &app.message,
        Some((Level::Info, m)) if m.contains("audience") && m.contains("key_message")
    ));
    let effects = key(&mut app, "u");
    match edits(&effects).as_slice() {
        [BriefEdit::Undo { changes, .. }] => {
            assert_eq!(changes.len(), 1);
            assert_eq!(changes[0].1, Change::Delete);
        }
        other => panic!("expected an undo, got {other:?}"),
    }
    run(&mut app, &mut hub, effects);
    assert!(hub.briefs(&Default::default()).expect("briefs").is_empty());
}

/// A real replica with something in every pane: briefs, two text assets,
/// two approval requests waiting on ana, and a member to assign.
fn full_replica(dir: &std::path::Path) -> App {
    use crate::model::approval::{Stage, StageMode, Subject};
    let (mut hub, mut app) = replica(dir);
    for title in ["Spring launch", "Holiday header", "Podcast cover"] {
        hub.add_brief(NewBrief {
            title: title.into(),
            ..NewBrief::default()
        })
        .expect("brief");
    }
    let files: Vec<std::path::PathBuf> = ["headline.md", "tagline.md"]
        .iter()
        .map(|name| {
            let path = dir.join(name);
            std::fs::write(&path, format!("# {name}\n\nPlans for *every* team")).expect("write");
            path
        })
        .collect();
    let report = hub
        .import_assets(&files, &Default::default(), |_| {})
        .expect("import");
    assert_eq!(report.imported.len(), 2, "{report:?}");
    for (asset, name) in report.imported.iter().zip(["headline", "tagline"]) {
        hub.request_approval(
            &format!("Review the {name}"),
            Subject::AssetVersion {
                asset: asset.clone(),
                version: 1,
            },
            vec![Stage {
                name: "brand".into(),
                reviewers: vec!["ana".into()],
                deadline: None,
                mode: StageMode::Decide,
            }],
        )
        .expect("request");
    }
    reload(&mut app, &hub);
    app.update(Msg::ChatData {
        threads: vec![crate::service::threads::ThreadInfo {
            id: "general".into(),
            title: "general".into(),
            messages: 0,
        }],
        thread: "general".into(),
        messages: Vec::new(),
    });
    app.update(Msg::Resize {
        width: 160,
        height: 48,
    });
    app
}

fn show(app: &mut App, pane: Pane) {
    app.pane = pane;
}

/// Everything but the focused input's text, to compare before and after.
fn without_inputs(app: &App) -> (super::app::Panes, usize, bool, Pane) {
    let mut panes = app.panes.clone();
    panes.chat.input = Default::default();
    (panes, app.popups.len(), app.quit, app.pane)
}

fn focused_text(app: &App) -> String {
    match app.popup() {
        Some(Popup::Prompt { input, .. }) | Some(Popup::Palette { input, .. }) => {
            input.text().to_owned()
        }
        Some(Popup::Search(s)) => s.input.text().to_owned(),
        Some(Popup::Form(f)) => f.answers[f.index].text().to_owned(),
        _ => app.panes.chat.input.text().to_owned(),
    }
}

const HOSTILE_PASTE: &str = "nice work\na\nq\ns\r\n:q!\x1b[A\tA r R";

#[test]
fn a_paste_into_any_input_is_only_text_in_that_input() {
    let dir = tempfile::tempdir().expect("tmp");
    let base = full_replica(dir.path());
    // Every input: the chat's, each prompt, the palette, search and the form.
    let openers: Vec<(Pane, Vec<Action>)> = vec![
        (Pane::Chat, vec![Action::Compose]),
        (Pane::Briefs, vec![Action::Filter]),
        (Pane::Briefs, vec![Action::Tag]),
        (Pane::Briefs, vec![Action::Snooze]),
        (Pane::Briefs, vec![Action::Comment]),
        (Pane::Briefs, vec![Action::NewBrief]),
        (Pane::Approvals, vec![Action::Reject]),
        (Pane::Approvals, vec![Action::RequestChanges]),
        (Pane::Approvals, vec![Action::Filter]),
        (Pane::Assets, vec![Action::Filter]),
        (Pane::Team, vec![Action::Palette]),
        (Pane::Briefs, vec![Action::Search]),
    ];
    for (pane, actions) in openers {
        let mut app = App::new(base.keymap.clone(), base.now);
        app.update(Msg::Data(Box::new(base.data.clone())));
        app.panes = base.panes.clone();
        show(&mut app, pane);
        for a in &actions {
            app.update(Msg::Action(*a));
        }
        let popups = app.popups.len();
        let before = app.panes.clone();
        let text_before = focused_text(&app);
        let effects = app.update(Msg::Paste(HOSTILE_PASTE.into()));
        let what = format!("{pane:?} {actions:?}");
        assert!(
            effects
                .iter()
                .all(|e| matches!(e, Effect::Search { .. } | Effect::Preview(_))),
            "{what}: a paste runs nothing: {effects:?}"
        );
        assert!(!app.quit, "{what}: a pasted q does not quit");
        assert_eq!(app.popups.len(), popups, "{what}: no popup opens or closes");
        assert_eq!(app.pane, pane, "{what}");
        let text = focused_text(&app);
        assert!(
            text.len() > text_before.len() && text.contains("nice work") && text.contains(":q!"),
            "{what}: the paste is in the input: {text:?}"
        );
        assert!(!text.contains('\x1b'), "{what}: no escape bytes: {text:?}");
        // Nothing else moved: cursors, marks, filters and statuses as they were.
        let mut after = app.panes.clone();
        after.chat.input = before.chat.input.clone();
        if matches!(app.popup(), Some(Popup::Prompt { .. })) {
            // A live filter narrows its own list as it types; that is the text at work.
            after.briefs.queue.filter = before.briefs.queue.filter.clone();
            after.briefs.queue.rows = before.briefs.queue.rows.clone();
            after.briefs.queue.cursor = before.briefs.queue.cursor;
            after.briefs.queue.offset = before.briefs.queue.offset;
            after.assets = before.assets.clone();
            after.approvals = before.approvals.clone();
        }
        assert_eq!(after, before, "{what}: only the input changed");
    }
}

#[test]
fn a_paste_outside_any_input_is_dropped_with_a_note() {
    let dir = tempfile::tempdir().expect("tmp");
    let base = full_replica(dir.path());
    for pane in Pane::ALL {
        let mut app = App::new(base.keymap.clone(), base.now);
        app.update(Msg::Data(Box::new(base.data.clone())));
        app.panes = base.panes.clone();
        show(&mut app, pane);
        let before = without_inputs(&app);
        let effects = app.update(Msg::Paste(HOSTILE_PASTE.into()));
        assert!(effects.is_empty(), "{pane:?}: {effects:?}");
        assert_eq!(without_inputs(&app), before, "{pane:?}: nothing changed");
        assert!(app.panes.chat.input.is_empty());
        assert!(
            matches!(&app.message, Some((Level::Info, m)) if m.contains("paste ignored")),
            "{pane:?}: {:?}",
            app.message
        );
    }
}

#[test]
fn no_key_in_one_pane_changes_another_panes_state() {
    let dir = tempfile::tempdir().expect("tmp");
    let base = full_replica(dir.path());
    for pane in Pane::ALL {
        for binding in base.keymap.bindings_for(pane) {
            let mut app = App::new(base.keymap.clone(), base.now);
            app.update(Msg::Data(Box::new(base.data.clone())));
            app.panes = base.panes.clone();
            show(&mut app, pane);
            let before = app.panes.clone();
            for chord in &binding.keys {
                app.update(Msg::Key(KeyEvent::new(chord.code, chord.mods)));
            }
            for other in Pane::ALL.into_iter().filter(|p| *p != pane) {
                let (a, b) = (before.get(other), app.panes.get(other));
                // Compare through the concrete panes: each is PartialEq.
                let same = match other {
                    Pane::Briefs => before.briefs == app.panes.briefs,
                    Pane::Assets => before.assets == app.panes.assets,
                    Pane::Chat => before.chat == app.panes.chat,
                    Pane::Approvals => before.approvals == app.panes.approvals,
                    Pane::Team => before.team == app.panes.team,
                };
                let _ = (a, b);
                assert!(
                    same,
                    "`{}` ({}) in {pane:?} changed the {other:?} pane",
                    binding.keys_text(),
                    binding.action
                );
            }
        }
    }
}

#[test]
fn space_marks_in_the_pane_it_is_pressed_in() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut app = full_replica(dir.path());
    show(&mut app, Pane::Assets);
    key(&mut app, "space");
    assert_eq!(app.panes.assets.list.marked.len(), 1, "an asset is marked");
    assert!(
        app.panes.briefs.queue.marked.is_empty(),
        "no hidden brief is"
    );
    show(&mut app, Pane::Approvals);
    key(&mut app, "space");
    assert_eq!(app.panes.approvals.list.marked.len(), 1);
    show(&mut app, Pane::Team);
    key(&mut app, "space");
    assert!(app.panes.briefs.queue.marked.is_empty());
    assert!(
        matches!(&app.message, Some((Level::Info, m)) if m.contains("toggle mark does nothing")),
        "{:?}",
        app.message
    );
}

#[test]
fn slash_filters_the_list_of_the_pane_it_is_pressed_in() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut app = full_replica(dir.path());
    let briefs_before = app.panes.briefs.clone();
    show(&mut app, Pane::Approvals);
    assert_eq!(app.panes.approvals.list.rows.len(), 2);
    key(&mut app, "/");
    type_in(&mut app, "tagline");
    assert_eq!(
        app.panes.approvals.list.rows.len(),
        1,
        "filtered as you type"
    );
    key(&mut app, "ret");
    assert_eq!(app.panes.approvals.list.filter, "tagline");
    assert_eq!(
        app.panes.briefs, briefs_before,
        "the brief queue is untouched"
    );
    key(&mut app, "esc");
    assert_eq!(
        app.panes.approvals.list.rows.len(),
        2,
        "esc clears the filter"
    );
    show(&mut app, Pane::Assets);
    key(&mut app, "/");
    type_in(&mut app, "headline");
    key(&mut app, "ret");
    assert_eq!(app.panes.assets.list.rows.len(), 1);
    assert_eq!(app.panes.briefs, briefs_before);
}

#[test]
fn page_keys_in_approvals_move_the_approvals_cursor_only() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut app = full_replica(dir.path());
    let briefs_before = app.panes.briefs.clone();
    show(&mut app, Pane::Approvals);
    key(&mut app, "C-d");
    assert_eq!(app.panes.approvals.list.cursor, 1);
    assert_eq!(app.panes.briefs, briefs_before);
}

#[test]
fn refresh_asks_the_worker_to_reload() {
    let mut app = app();
    let effects = key(&mut app, "C-r");
    assert_eq!(effects, [Effect::Reload]);
}

#[test]
fn hints_show_the_users_own_keys() {
    use super::theme::{ColorDepth, Theme};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    let keymap = Keymap::from_toml(
        "mine",
        "inherits = \"default\"\n[chat]\ni = \"help\"\nw = \"compose\"\n[input]\nesc = \"delete_to_start\"\nC-g = \"cancel\"\n",
    )
    .expect("keymap");
    let mut app = App::new(keymap, Timestamp::UNIX_EPOCH);
    app.update(Msg::Resize {
        width: 120,
        height: 30,
    });
    app.update(Msg::Action(Action::ShowChat));
    let theme = Theme::load("default-dark", None, ColorDepth::TrueColor).expect("theme");
    let screen = |app: &App| {
        let mut terminal = Terminal::new(TestBackend::new(120, 30)).expect("terminal");
        terminal
            .draw(|f| super::draw::draw(app, &theme, f))
            .expect("draw");
        terminal.backend().to_string()
    };
    let text = screen(&app);
    assert!(text.contains("w to write"), "{text}");
    assert!(text.contains("w: write"), "{text}");
    assert!(!text.contains("i to write") && !text.contains("i: write"));
    // Writing: w focuses the input, C-g leaves it, esc now edits.
    key(&mut app, "w");
    assert!(app.panes.chat.composing);
    type_in(&mut app, "hello");
    key(&mut app, "esc");
    assert!(app.panes.chat.composing && app.panes.chat.input.is_empty());
    type_in(&mut app, "and the deck?");
    let effects = key(&mut app, "ret");
    assert!(matches!(effects.as_slice(), [Effect::ChatSend { .. }]));
    let text = screen(&app);
    assert!(text.contains("answering (C-g cancels)"), "{text}");
    let effects = key(&mut app, "C-g");
    assert_eq!(effects, [Effect::CancelAnswer]);
}

#[test]
fn the_team_cursor_moves_in_the_team_pane_only() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut app = full_replica(dir.path());
    let before = app.panes.clone();
    show(&mut app, Pane::Team);
    key(&mut app, "j");
    assert_eq!(app.panes.team.cursor, 1, "kenji is selected");
    key(&mut app, "j");
    assert_eq!(
        app.panes.team.cursor, 1,
        "the cursor stops at the last member"
    );
    assert_eq!(app.panes.briefs, before.briefs);
}

#[test]
fn a_burst_of_search_keystrokes_runs_one_query_after_the_pause() {
    let (tx, rx) = std::sync::mpsc::channel();
    for (seq, text) in ["p", "po", "pod", "podc"].iter().enumerate() {
        tx.send((seq as u64 + 1, text.to_string())).expect("send");
    }
    let pause = std::time::Duration::from_millis(50);
    assert_eq!(
        super::run::after_pause(&rx, pause),
        Some((4, "podc".to_string())),
        "only the latest query of the burst runs"
    );
    tx.send((5, "podca".into())).expect("send");
    assert_eq!(
        super::run::after_pause(&rx, pause),
        Some((5, "podca".into()))
    );
    drop(tx);
    assert_eq!(super::run::after_pause(&rx, pause), None);
}

fn asset(id: &str, title: &str) -> crate::model::asset::Asset {
    crate::model::asset::Asset {
        id: id.into(),
        title: title.into(),
        kind: Default::default(),
        versions: Vec::new(),
        tags: Vec::new(),
        palette: Vec::new(),
        phash: None,
        brief: None,
        status: Default::default(),
        approved_version: None,
        renditions: Vec::new(),
        deleted: false,
    }
}

#[test]
fn the_asset_cursor_follows_its_asset_when_new_data_moves_it() {
    let mut app = app();
    let mut data = app.data.clone();
    data.assets = vec![asset("a-2", "Two"), asset("a-1", "One")];
    app.update(Msg::Data(Box::new(data.clone())));
    key(&mut app, "2");
    key(&mut app, "j");
    assert_eq!(app.panes.assets.list.selected_id(), Some("a-1"));
    // A teammate's upload arrives on top, newest first.
    data.assets.insert(0, asset("a-3", "Three"));
    app.update(Msg::Data(Box::new(data.clone())));
    assert_eq!(app.panes.assets.list.selected_id(), Some("a-1"));
    assert_eq!(app.panes.assets.list.cursor, 2);
    // And when it goes away, the cursor stays on the list.
    data.assets.retain(|a| a.id != "a-1");
    app.update(Msg::Data(Box::new(data)));
    assert!(app.panes.assets.list.cursor < 2);
}

#[test]
fn a_briefs_detail_lists_its_tasks_with_their_tracker_keys() {
    use super::theme::{ColorDepth, Theme};
    use crate::model::integration::ExternalLink;
    use crate::model::task::{Task, TaskStatus};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    let keymap = Keymap::load("default", None).expect("default keymap");
    let mut app = App::new(keymap, Timestamp::UNIX_EPOCH);
    let task = |id: &str, title: &str, status: TaskStatus, key: Option<&str>| Task {
        id: id.into(),
        title: title.into(),
        brief: Some("b-1".into()),
        assignee: Some("kenji".into()),
        status,
        due: None,
        external: key
            .map(|k| {
                BTreeMap::from([(
                    "jira".to_owned(),
                    ExternalLink {
                        key: k.into(),
                        url: format!("https://nw.atlassian.net/browse/{k}"),
                        sent: String::new(),
                        done: false,
                    },
                )])
            })
            .unwrap_or_default(),
        deleted: false,
    };
    app.update(Msg::Data(Box::new(Snapshot {
        briefs: vec![brief("b-1", "Spring launch", BriefStatus::Ready)],
        tasks: vec![
            task("t-1-1", "Hero image", TaskStatus::Done, Some("NW-7")),
            task("t-1-2", "Copy variants", TaskStatus::Todo, None),
            Task {
                brief: Some("b-2".into()),
                ..task("t-9-1", "Another brief's task", TaskStatus::Todo, None)
            },
        ],
        members: vec![member("ana", "Europe/Lisbon", "lead")],
        me: Some("ana".into()),
        zone: "Europe/Lisbon".into(),
        ..Snapshot::default()
    })));
    app.update(Msg::Resize {
        width: 140,
        height: 40,
    });
    let theme = Theme::load("default-dark", None, ColorDepth::TrueColor).expect("theme");
    let mut terminal = Terminal::new(TestBackend::new(140, 40)).expect("terminal");
    terminal
        .draw(|f| super::draw::draw(&app, &theme, f))
        .expect("draw");
    let text = terminal.backend().to_string();
    assert!(text.contains("Tasks (2)"), "{text}");
    assert!(text.contains("● Hero image"), "{text}");
    assert!(text.contains("jira NW-7"), "{text}");
    assert!(text.contains("nw.atlassian.net/browse/NW-7"), "{text}");
    assert!(text.contains("○ Copy variants"), "{text}");
    assert!(!text.contains("Another brief's task"), "{text}");
}

/// Effects other than loading the selected brief's comments.
fn not_thread(effects: Vec<Effect>) -> Vec<Effect> {
    effects
        .into_iter()
        .filter(|e| !matches!(e, Effect::LoadThread(_)))
        .collect()
}

/// The app of [`app`] with the hub's templates in the snapshot.
fn app_with_templates(names: &[&str]) -> App {
    let mut app = app();
    let mut data = app.data.clone();
    data.templates = names
        .iter()
        .map(|n| super::msg::TemplateInfo {
            name: (*n).into(),
            detail: "ComfyUI".into(),
        })
        .collect();
    app.update(Msg::Data(Box::new(data)));
    app
}

#[test]
fn generate_picks_a_template_then_asks_prompt_and_count() {
    let mut app = app_with_templates(&["sdxl", "i2i"]);
    let selected = app.panes.briefs.queue.selected().expect("brief").id.clone();
    assert!(not_thread(key(&mut app, "i")).is_empty());
    let Some(Popup::Picker(AnyPicker::Template(picker))) = app.popup() else {
        panic!("no template picker: {:?}", app.popup());
    };
    let names: Vec<&str> = picker.choices.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(names, ["sdxl", "i2i"]);
    assert!(picker.title.contains(&selected), "{}", picker.title);
    // The second template.
    key(&mut app, "j ret");
    let Some(Popup::Generate(form)) = app.popup() else {
        panic!("no generate form: {:?}", app.popup());
    };
    assert_eq!(form.brief, selected);
    assert_eq!(form.template, "i2i");
    assert_eq!(form.count.text(), "2");
    type_in(&mut app, "a lighthouse at dawn");
    key(&mut app, "ret");
    // Count: 9 is too many and the form stays.
    key(&mut app, "C-u");
    type_in(&mut app, "9");
    let effects = not_thread(key(&mut app, "ret"));
    assert!(effects.is_empty(), "{effects:?}");
    assert!(matches!(app.popup(), Some(Popup::Generate(_))));
    assert!(
        matches!(&app.message, Some((Level::Error, m)) if m.contains("1 to 8")),
        "{:?}",
        app.message
    );
    key(&mut app, "backspace");
    type_in(&mut app, "3");
    let effects = not_thread(key(&mut app, "ret"));
    assert_eq!(
        effects,
        [Effect::Generate {
            brief: selected,
            template: "i2i".into(),
            prompt: Some("a lighthouse at dawn".into()),
            count: 3,
        }]
    );
    assert!(app.popup().is_none());
}

#[test]
fn generate_with_a_blank_prompt_uses_the_briefs_words_and_two_drafts() {
    let mut app = app_with_templates(&["sdxl"]);
    let selected = app.panes.briefs.queue.selected().expect("brief").id.clone();
    key(&mut app, "i ret ret");
    let effects = not_thread(key(&mut app, "ret"));
    assert_eq!(
        effects,
        [Effect::Generate {
            brief: selected,
            template: "sdxl".into(),
            prompt: None,
            count: 2,
        }]
    );
}

#[test]
fn generate_without_templates_says_how_to_add_one() {
    let mut app = app();
    let effects = not_thread(key(&mut app, "i"));
    assert!(effects.is_empty(), "{effects:?}");
    assert!(app.popup().is_none());
    assert_eq!(
        app.message,
        Some((
            Level::Info,
            "no templates: a lead adds one with spoke generate template add".into()
        ))
    );
}

#[test]
fn generate_form_esc_discards_without_an_effect() {
    let mut app = app_with_templates(&["sdxl"]);
    key(&mut app, "i ret");
    type_in(&mut app, "x");
    let effects = not_thread(key(&mut app, "esc"));
    assert!(effects.is_empty(), "{effects:?}");
    assert!(app.popup().is_none());
}

#[test]
fn generation_progress_shows_in_the_status_line_and_cancel_stops_it() {
    use super::theme::{ColorDepth, Theme};
    use crate::generate::comfy::Progress;
    use crate::generate::run::RunEvent;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    let mut app = app_with_templates(&["sdxl"]);
    app.update(Msg::Resize {
        width: 120,
        height: 30,
    });
    let theme = Theme::load("default-dark", None, ColorDepth::TrueColor).expect("theme");
    let screen = |app: &App| {
        let mut terminal = Terminal::new(TestBackend::new(120, 30)).expect("terminal");
        terminal
            .draw(|f| super::draw::draw(app, &theme, f))
            .expect("draw");
        terminal.backend().to_string()
    };
    let line = super::popup::generate::progress_line(
        "b-1",
        &RunEvent::Image {
            index: 1,
            of: 2,
            progress: Progress::Step {
                node: "3".into(),
                value: 12,
                max: 30,
            },
        },
    )
    .expect("a step is shown");
    assert_eq!(line, "generating 1/2: step 12/30");
    app.update(Msg::Generating(line));
    assert!(screen(&app).contains("generating 1/2: step 12/30"));
    // Moving about keeps the progress in view.
    key(&mut app, "j");
    assert!(screen(&app).contains("generating 1/2: step 12/30"));
    // Cancel on the queue stops the run.
    let effects = not_thread(key(&mut app, "esc"));
    assert_eq!(effects, [Effect::CancelGenerate]);
    assert!(screen(&app).contains("cancelling the generation"));
    // The end is a toast and the progress goes.
    app.update(Msg::Generated(Ok(
        "2 AI drafts for b-1 — approval r-9 waits for review".into(),
    )));
    let text = screen(&app);
    assert!(text.contains("2 AI drafts for b-1"), "{text}");
    assert!(!text.contains("generating 1/2"), "{text}");
    // With nothing running, cancel is the queue's own again.
    assert!(not_thread(key(&mut app, "esc")).is_empty());
}

#[test]
fn the_snapshot_lists_the_hubs_templates_for_the_generate_picker() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut hub, mut app) = replica(dir.path());
    hub.add_template(
        "sdxl",
        include_str!("../../tests/fixtures/comfy/sdxl_lora_txt2img_api.json"),
        &[],
        crate::generate::template::Provider::Comfyui,
        false,
    )
    .expect("template");
    let id = hub
        .add_brief(NewBrief {
            title: "Spring launch".into(),
            ..NewBrief::default()
        })
        .expect("brief")
        .id;
    reload(&mut app, &hub);
    assert_eq!(app.data.templates.len(), 1);
    assert_eq!(app.data.templates[0].name, "sdxl");
    assert_eq!(app.data.templates[0].detail, "ComfyUI");
    key(&mut app, "i");
    assert!(
        matches!(app.popup(), Some(Popup::Picker(AnyPicker::Template(p)))
            if p.choices[0].label == "sdxl" && p.title.contains(&id)),
        "{:?}",
        app.popup()
    );
    key(&mut app, "ret ret");
    assert_eq!(
        not_thread(key(&mut app, "ret")),
        [Effect::Generate {
            brief: id,
            template: "sdxl".into(),
            prompt: None,
            count: 2,
        }]
    );
}

/// A replica with a template and a brief, shared as the TUI's workers share it.
fn generation_replica(dir: &std::path::Path) -> (super::agent_worker::Shared, String) {
    let (mut hub, _) = replica(dir);
    hub.add_template(
        "sdxl",
        include_str!("../../tests/fixtures/comfy/sdxl_lora_txt2img_api.json"),
        &[],
        crate::generate::template::Provider::Comfyui,
        false,
    )
    .expect("template");
    hub.set_brand_presets(
        Some(vec![crate::model::generate::BrandLora {
            name: "brand_v1.safetensors".into(),
            strength: 0.8,
        }]),
        None,
        None,
    )
    .expect("brand");
    let id = hub
        .add_brief(NewBrief {
            title: "Spring launch".into(),
            ..NewBrief::default()
        })
        .expect("brief")
        .id;
    (super::agent_worker::Shared::new(hub), id)
}

fn request(brief: &str, template: &str) -> crate::generate::run::GenerateRequest {
    crate::generate::run::GenerateRequest {
        brief: brief.into(),
        template: template.into(),
        count: 2,
        ..Default::default()
    }
}

#[test]
fn a_generation_that_cannot_be_planned_says_why_and_starts_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let (shared, id) = generation_replica(dir.path());
    let (tx, rx) = std::sync::mpsc::channel();
    let settings = crate::generate::run::Settings {
        url: "http://127.0.0.1:1".into(),
        stall: std::time::Duration::from_secs(5),
    };
    let hub = super::agent_worker::lock(&shared.hub);
    let token = super::run::start_generation(&hub, &shared, request(&id, "nope"), &settings, &tx);
    drop(hub);
    assert!(token.is_none());
    match rx.try_recv() {
        Ok(Msg::Generated(Err(e))) => assert!(e.contains("nope"), "{e}"),
        other => panic!("expected the plan's refusal, got {other:?}"),
    }
    assert!(rx.try_recv().is_err(), "nothing runs after a refused plan");
}

#[test]
fn a_generation_against_no_comfyui_reports_progress_then_the_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let (shared, id) = generation_replica(dir.path());
    // Nothing listens on port 1 of loopback.
    let settings = crate::generate::run::Settings {
        url: "http://127.0.0.1:1".into(),
        stall: std::time::Duration::from_secs(5),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let hub = super::agent_worker::lock(&shared.hub);
    let token = super::run::start_generation(&hub, &shared, request(&id, "sdxl"), &settings, &tx);
    drop(hub);
    assert!(token.is_some(), "{:?}", rx.try_recv());
    let mut progress = Vec::new();
    let end = loop {
        match rx.recv_timeout(std::time::Duration::from_secs(120)) {
            Ok(Msg::Generating(line)) => progress.push(line),
            Ok(Msg::Generated(result)) => break result,
            other => panic!("unexpected {other:?} after {progress:?}"),
        }
    };
    assert_eq!(
        progress.first().map(String::as_str),
        Some(format!("generating for {id}: starting…").as_str())
    );
    assert!(
        progress.iter().any(|l| l.contains("checking the template")),
        "{progress:?}"
    );
    let e = end.expect_err("no ComfyUI answers");
    // The run is over: its token says so, and another may start.
    assert!(token.is_some_and(|t| t.is_cancelled()));
    assert!(e.starts_with(&format!("generating for {id}: ")), "{e}");
    assert!(e.contains("127.0.0.1:1"), "{e}");
    assert!(!e.contains('\n'), "one line: {e}");
    // Nothing was recorded.
    let hub = super::agent_worker::lock(&shared.hub);
    assert!(hub.assets_newest_first().expect("assets").is_empty());
}
