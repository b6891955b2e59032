//! Snapshots of every pane, in the dark and the 16-colour theme, at 80x24
//! and 160x48, drawn with ratatui's TestBackend from fixed data; and screens
//! after edits made through the brief services on a real replica.

mod common_cli;

use jiff::Timestamp;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use serde_json::json;
use spoke::model::brief::{Brief, BriefStatus, Deliverable, Due, Priority};
use spoke::model::member::Member;
use spoke::model::{Change, EntityRecord, Stamp};
use spoke::tui::app::{App, Msg, Snapshot};
use spoke::tui::keymap::Keymap;
use spoke::tui::theme::{ColorDepth, Theme};
use spoke::tui::{Action, Pane};
use spoke_relay::proto::{ClientId, OpId};
use std::collections::BTreeMap;

const NOW: &str = "2026-11-24T10:00:00Z";

fn member(handle: &str, tz: &str, hours: &str, roles: &[&str]) -> Member {
    let mut fields = BTreeMap::from([("tz".to_owned(), json!(tz))]);
    for day in ["mon", "tue", "wed", "thu", "fri"] {
        fields.insert(format!("hours:{day}"), json!(hours));
    }
    for r in roles {
        fields.insert(format!("roles:{r}"), json!(true));
    }
    let mut rec = EntityRecord::default();
    let stamp = Stamp {
        hlc: Default::default(),
        id: OpId {
            client: ClientId(1),
            seq: 1,
        },
    };
    rec.merge(stamp, &Change::Set(fields));
    Member::from_record(handle, &rec)
}

fn brief(n: usize, title: &str, status: BriefStatus, priority: Priority, due_days: i64) -> Brief {
    let mut b = Brief::from_record(&format!("b-{n:08}"), &EntityRecord::default());
    b.title = title.into();
    b.status = status;
    b.priority = priority;
    let now: Timestamp = NOW.parse().expect("now");
    b.created_at = now
        .checked_sub(jiff::SignedDuration::from_hours(30 + n as i64))
        .ok();
    b.due = now
        .checked_add(jiff::SignedDuration::from_hours(24 * due_days + 7))
        .ok()
        .map(|at| Due {
            at,
            tz: "Europe/Lisbon".into(),
        });
    b.requester = Some("lucia".into());
    if n.is_multiple_of(2) {
        b.assignees = vec!["kenji".into()];
        b.objective = Some("Grow trials".into());
        b.audience = Some("Design leads".into());
        b.key_message = Some("One hub, every zone".into());
        b.deliverables = vec![Deliverable::parse("linkedin:1200x627").expect("deliverable")];
        b.tags = vec!["launch".into()];
    }
    b
}

fn app() -> App {
    let keymap = Keymap::load("default", None).expect("keymap");
    let now: Timestamp = NOW.parse().expect("now");
    let mut app = App::new(keymap, now);
    // A model is configured, as the chat tests stream its answers.
    app.panes.chat.model = Some("openai/test-model".to_owned());
    let titles = [
        ("Holiday email header", BriefStatus::Ready, Priority::P0, 2),
        (
            "Spring launch hero film",
            BriefStatus::Draft,
            Priority::P1,
            40,
        ),
        (
            "Case study: Northwind Logistics",
            BriefStatus::InReview,
            Priority::P1,
            4,
        ),
        (
            "Black Friday banner set",
            BriefStatus::Delivered,
            Priority::P0,
            -3,
        ),
        (
            "Pricing page illustrations",
            BriefStatus::Approved,
            Priority::P2,
            1,
        ),
        ("Rebrand teaser", BriefStatus::OnHold, Priority::P1, 35),
        (
            "Podcast cover art",
            BriefStatus::InProgress,
            Priority::P3,
            8,
        ),
        (
            "Mascot exploration",
            BriefStatus::Cancelled,
            Priority::P3,
            50,
        ),
        ("Q1 webinar visuals", BriefStatus::Intake, Priority::P2, 18),
    ];
    let briefs = titles
        .iter()
        .enumerate()
        .map(|(n, (t, s, p, d))| brief(n, t, *s, *p, *d))
        .collect();
    app.update(Msg::Data(Box::new(Snapshot {
        briefs,
        members: vec![
            member("ana", "Europe/Lisbon", "09:00-17:30", &["lead"]),
            member("kenji", "Asia/Tokyo", "09:30-18:00", &["creative"]),
            member("maya", "America/New_York", "08:30-17:00", &["reviewer"]),
            member("priya", "Asia/Kolkata", "10:00-19:00", &["creative"]),
        ],
        me: Some("ana".into()),
        zone: "Europe/Lisbon".into(),
        hub_name: "Northwind Studio".into(),
        joined: true,
        connected: true,
        pending: 2,
        cursor: 120,
        last_error: None,
        ..Snapshot::default()
    })));
    app
}

fn render(app: &mut App, theme: &Theme, w: u16, h: u16) -> Terminal<TestBackend> {
    app.update(Msg::Resize {
        width: w,
        height: h,
    });
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    terminal
        .draw(|f| spoke::tui::draw::draw(app, theme, f))
        .expect("draw");
    terminal
}

/// Encodes previews as the run loop's preview thread does, feeding the
/// results back; decodes are the test's to answer.
fn encode_previews(app: &mut App, effects: Vec<spoke::tui::app::Effect>) {
    use spoke::tui::preview::Job;
    let mut queue = effects;
    while let Some(effect) = queue.pop() {
        let spoke::tui::app::Effect::Preview(job @ Job::Encode { .. }) = effect else {
            continue;
        };
        let home = std::path::Path::new("/nonexistent");
        let done = spoke::tui::preview::run(home, job);
        queue.extend(app.update(Msg::Preview(done)));
    }
}

/// A decoded thumbnail arriving, as the decode thread sends it.
fn decoded(sha: &str, image: image::DynamicImage) -> Msg {
    Msg::Preview(spoke::tui::preview::Done::Decoded {
        sha: sha.into(),
        image: Ok(spoke::tui::preview::Thumb(std::sync::Arc::new(image))),
    })
}

fn show(app: &mut App, pane: Pane) {
    let action = match pane {
        Pane::Briefs => Action::ShowBriefs,
        Pane::Assets => Action::ShowAssets,
        Pane::Chat => Action::ShowChat,
        Pane::Approvals => Action::ShowApprovals,
        Pane::Team => Action::ShowTeam,
    };
    app.update(Msg::Action(action));
}

#[test]
fn every_pane_in_both_themes_and_sizes() {
    for theme_name in ["default-dark", "ansi16"] {
        let theme = Theme::load(theme_name, None, ColorDepth::TrueColor).expect("theme");
        for (w, h) in [(80, 24), (160, 48)] {
            for pane in Pane::ALL {
                let mut app = app();
                show(&mut app, pane);
                let terminal = render(&mut app, &theme, w, h);
                insta::assert_snapshot!(
                    format!("{}_{}_{w}x{h}", pane.name(), theme_name),
                    terminal.backend()
                );
            }
        }
    }
}

#[test]
fn the_ansi16_theme_draws_only_with_the_terminals_own_colours() {
    let theme = Theme::load("ansi16", None, ColorDepth::TrueColor).expect("theme");
    for pane in Pane::ALL {
        let mut app = app();
        show(&mut app, pane);
        let terminal = render(&mut app, &theme, 160, 48);
        for cell in terminal.backend().buffer().content() {
            for c in [cell.fg, cell.bg] {
                assert!(
                    !matches!(c, Color::Rgb(..) | Color::Indexed(_)),
                    "{pane:?} uses {c:?}"
                );
            }
        }
    }
}

#[test]
fn help_overlay_lists_exactly_the_loaded_bindings() {
    let theme = Theme::load("default-dark", None, ColorDepth::TrueColor).expect("theme");
    let mut app = app();
    app.update(Msg::Action(Action::Help));
    let terminal = render(&mut app, &theme, 160, 200);
    let text = terminal.backend().to_string();
    let bindings = app.keymap.bindings_for(Pane::Briefs);
    for b in &bindings {
        assert!(text.contains(&b.desc), "help is missing `{}`", b.desc);
    }
    let lines = text
        .lines()
        .filter(|l| bindings.iter().any(|b| l.contains(b.desc.as_str())))
        .count();
    assert_eq!(
        lines,
        bindings.len(),
        "one line per binding, nothing invented"
    );
}

#[test]
fn tiny_and_odd_sizes_do_not_panic() {
    let theme = Theme::load("default-light", None, ColorDepth::Ansi16).expect("theme");
    for (w, h) in [
        (1, 1),
        (2, 1),
        (10, 3),
        (20, 5),
        (30, 8),
        (80, 6),
        (500, 2),
        (79, 23),
    ] {
        for pane in Pane::ALL {
            let mut app = app();
            show(&mut app, pane);
            app.update(Msg::Action(Action::Help));
            render(&mut app, &theme, w, h);
        }
    }
}

#[test]
fn the_new_brief_form_shows_every_clarifying_question() {
    let theme = Theme::load("default-dark", None, ColorDepth::TrueColor).expect("theme");
    let mut app = app();
    app.update(Msg::Action(Action::NewBrief));
    let terminal = render(&mut app, &theme, 100, 30);
    let text = terminal.backend().to_string();
    for (_, question) in spoke::tui::app::new_brief_form() {
        assert!(
            text.contains(&question[..question.len().min(40)]),
            "missing {question}"
        );
    }
    insta::assert_snapshot!("new_brief_form_100x30", terminal.backend());
}

mod approvals_pane {
    use super::*;
    use spoke::model::approval::{ApprovalStatus, Decision, Evaluation, Stage, StageMode, Subject};
    use spoke::model::asset::{Asset, AssetKind, AssetStatus, AssetVersion, Provenance};
    use spoke::service::approvals::ApprovalView;
    use spoke::tui::app::Effect;

    fn view(
        id: &str,
        title: &str,
        asset: &str,
        version: u32,
        waiting: &[&str],
        status: ApprovalStatus,
    ) -> ApprovalView {
        let stage = Stage {
            name: "brand".into(),
            reviewers: vec!["ana".into(), "maya".into()],
            deadline: None,
            mode: StageMode::Decide,
        };
        let decided = |r: &str| {
            if waiting.contains(&r) {
                None
            } else {
                Some(Decision::Approved)
            }
        };
        ApprovalView {
            id: id.into(),
            title: title.into(),
            subject: Some(Subject::AssetVersion {
                asset: asset.into(),
                version,
            }),
            status,
            stage: 0,
            stages: vec![stage],
            requested_by: Some("scout".into()),
            waiting_on: waiting.iter().map(|w| (*w).to_owned()).collect(),
            decisions: Vec::new(),
            evaluation: Evaluation {
                status,
                stage: 0,
                stages: vec![vec![
                    ("ana".into(), decided("ana")),
                    ("maya".into(), decided("maya")),
                ]],
                ignored: 0,
            },
            choices: Vec::new(),
            approved_version: None,
        }
    }

    fn version(sha: &str, ai: bool) -> AssetVersion {
        AssetVersion {
            blob_sha256: sha.into(),
            size: 40,
            mime: "text/markdown".into(),
            width: None,
            height: None,
            note: None,
            provenance: if ai {
                Provenance::Ai {
                    provider: "local".into(),
                    model: "demo".into(),
                    prompt_sha256: String::new(),
                }
            } else {
                Provenance::Human
            },
            generation: None,
            author: "scout".into(),
        }
    }

    fn app_with_approvals() -> App {
        let mut app = app();
        let mut data = app.data.clone();
        data.approvals = vec![
            view(
                "r-00000001",
                "Pricing headline v2 (AI draft)",
                "a-pricing1",
                2,
                &["ana"],
                ApprovalStatus::Pending,
            ),
            view(
                "r-00000002",
                "Holiday email copy",
                "a-holiday1",
                1,
                &["ana", "maya"],
                ApprovalStatus::Pending,
            ),
            view(
                "r-00000003",
                "Podcast blurb",
                "a-podcast1",
                1,
                &[],
                ApprovalStatus::Approved,
            ),
        ];
        data.assets = vec![Asset {
            id: "a-pricing1".into(),
            title: "Pricing page headline".into(),
            kind: AssetKind::Document,
            versions: vec![version("s1", false), version("s2", true)],
            tags: vec![],
            palette: vec![],
            phash: None,
            brief: None,
            status: AssetStatus::InReview,
            approved_version: None,
            renditions: vec![],
            deleted: false,
        }];
        data.texts = BTreeMap::from([
            ("s1".to_owned(), "Plans for every team".to_owned()),
            (
                "s2".to_owned(),
                "Plans that grow with *every* time zone".to_owned(),
            ),
        ]);
        app.update(Msg::Data(Box::new(data)));
        app.update(Msg::Action(Action::ShowApprovals));
        app
    }

    #[test]
    fn the_approvals_pane_shows_the_draft_text_beside_its_previous_version() {
        for theme_name in ["default-dark", "ansi16"] {
            let theme = Theme::load(theme_name, None, ColorDepth::TrueColor).expect("theme");
            let mut app = app_with_approvals();
            let terminal = render(&mut app, &theme, 160, 48);
            let text = terminal.backend().to_string();
            assert!(text.contains("2 waiting on you"), "{text}");
            assert!(text.contains("Plans that grow with every time zone"));
            assert!(
                text.contains("Plans for every team"),
                "the previous version is shown too"
            );
            assert!(text.contains("AI draft"));
            insta::assert_snapshot!(
                format!("approvals_with_requests_{theme_name}_160x48"),
                terminal.backend()
            );
        }
    }

    #[test]
    fn a_proposed_brief_update_shows_each_field_before_and_after() {
        use spoke::model::proposal::{Proposal, ProposalKind, ProposalStatus};
        let theme = Theme::load("default-dark", None, ColorDepth::TrueColor).expect("theme");
        let mut app = app();
        let mut data = app.data.clone();
        let mut request = view(
            "r-00000009",
            "Proposal: audience from kickoff",
            "x",
            1,
            &["ana"],
            ApprovalStatus::Pending,
        );
        request.subject = Some(Subject::Proposal {
            id: "p-00000001".into(),
        });
        data.approvals = vec![request];
        data.proposals = vec![Proposal {
            id: "p-00000001".into(),
            kind: Some(ProposalKind::BriefUpdate),
            payload: serde_json::json!({"brief": "b-00000001", "fields": {
                "audience": "Creative leads", "key_message": "One hub"
            }}),
            rationale: Some("The requester answered in the kickoff thread".into()),
            citations: vec![spoke::model::thread::Citation {
                kind: "kb".into(),
                id: "kb-brand-guide".into(),
                quote: Some("Speak to creative leads".into()),
                ..Default::default()
            }],
            brief: Some("b-00000001".into()),
            status: ProposalStatus::Pending,
            author: Some("scout".into()),
            deleted: false,
        }];
        app.update(Msg::Data(Box::new(data)));
        app.update(Msg::Action(Action::ShowApprovals));
        let terminal = render(&mut app, &theme, 160, 48);
        let text = terminal.backend().to_string();
        assert!(
            text.contains("audience") && text.contains("→") && text.contains("Creative leads"),
            "{text}"
        );
        assert!(text.contains("key_message") && text.contains("One hub"));
        assert!(
            text.contains("kb-brand-guide") && text.contains("Speak to creative leads"),
            "citations shown"
        );
        insta::assert_snapshot!("approvals_brief_update_diff_160x48", terminal.backend());
    }

    #[test]
    fn an_image_subject_is_previewed_beside_its_previous_version() {
        let theme = Theme::load("default-dark", None, ColorDepth::TrueColor).expect("theme");
        let mut app = app();
        app.previews =
            spoke::tui::preview::Previews::new(Some(ratatui_image::picker::Picker::halfblocks()));
        app.update(Msg::Resize {
            width: 160,
            height: 48,
        });
        let mut data = app.data.clone();
        data.approvals = vec![view(
            "r-00000005",
            "Hero v2",
            "a-hero0001",
            2,
            &["ana"],
            ApprovalStatus::Pending,
        )];
        let mut v1 = version("aa", false);
        let mut v2 = version("bb", true);
        v1.mime = "image/png".into();
        v2.mime = "image/png".into();
        data.assets = vec![Asset {
            id: "a-hero0001".into(),
            title: "Hero".into(),
            kind: AssetKind::Image,
            versions: vec![v1, v2],
            tags: vec![],
            palette: vec![],
            phash: None,
            brief: None,
            status: AssetStatus::InReview,
            approved_version: None,
            renditions: vec![],
            deleted: false,
        }];
        app.update(Msg::Data(Box::new(data)));
        let effects = app.update(Msg::Action(Action::ShowApprovals));
        assert_eq!(
            effects,
            [
                Effect::Preview(spoke::tui::preview::Job::Decode("bb".into())),
                Effect::Preview(spoke::tui::preview::Job::Decode("aa".into()))
            ]
        );
        let flat = |rgb: [u8; 3]| {
            image::DynamicImage::ImageRgb8(image::ImageBuffer::from_pixel(
                400,
                300,
                image::Rgb(rgb),
            ))
        };
        let effects = app.update(decoded("bb", flat([10, 132, 255])));
        encode_previews(&mut app, effects);
        let effects = app.update(decoded("aa", flat([255, 45, 85])));
        encode_previews(&mut app, effects);
        let terminal = render(&mut app, &theme, 160, 48);
        let buffer = terminal.backend().buffer();
        let colours_in = |area: ratatui::layout::Rect| {
            let mut found = Vec::new();
            for pos in area.positions() {
                let cell = &buffer[pos];
                for c in [cell.fg, cell.bg] {
                    if let Color::Rgb(r, g, b) = c {
                        found.push((r, g, b));
                    }
                }
            }
            found
        };
        // The detail pane is the right half; the images fill its top.
        let left = colours_in(ratatui::layout::Rect::new(81, 2, 38, 18));
        let right = colours_in(ratatui::layout::Rect::new(120, 2, 38, 18));
        assert!(
            left.iter().any(|&(r, g, b)| r < 60 && g > 100 && b > 200),
            "current version (blue) on the left"
        );
        assert!(
            right.iter().any(|&(r, g, _)| r > 200 && g < 80),
            "previous version (red) on the right"
        );
        insta::assert_snapshot!("approvals_image_subject_160x48", terminal.backend());
    }

    #[test]
    fn marking_two_requests_and_approving_decides_both() {
        let mut app = app_with_approvals();
        app.update(Msg::Action(Action::ToggleMark));
        app.update(Msg::Action(Action::ToggleMark));
        let effects = app.update(Msg::Action(Action::Approve));
        assert_eq!(
            effects,
            [Effect::Decide {
                ids: vec!["r-00000001".into(), "r-00000002".into()],
                decision: Some(Decision::Approved),
                comment: None,
            }]
        );
        assert!(app.panes.approvals.list.marked.is_empty());
        // A rejection asks for the reason first.
        let effects = app.update(Msg::Action(Action::Reject));
        assert!(effects.is_empty());
        assert!(matches!(
            app.popup(),
            Some(spoke::tui::popup::Popup::Prompt { .. })
        ));
    }
}

#[test]
fn the_asset_browser_shows_a_half_block_preview_of_the_selected_image() {
    use spoke::model::asset::{Asset, AssetKind, AssetStatus, AssetVersion, Provenance};
    let theme = Theme::load("default-dark", None, ColorDepth::TrueColor).expect("theme");
    let mut app = app();
    app.previews =
        spoke::tui::preview::Previews::new(Some(ratatui_image::picker::Picker::halfblocks()));
    app.update(Msg::Resize {
        width: 120,
        height: 40,
    });
    let mut data = app.data.clone();
    data.assets = vec![Asset {
        id: "a-00000001".into(),
        title: "Launch hero".into(),
        kind: AssetKind::Image,
        versions: vec![AssetVersion {
            blob_sha256: "ab".repeat(32),
            size: 48_000,
            mime: "image/png".into(),
            width: Some(64),
            height: Some(32),
            note: None,
            provenance: Provenance::Human,
            generation: None,
            author: "ana".into(),
        }],
        tags: vec!["landscape".into(), "png".into()],
        palette: vec!["#0a84ff".into(), "#ff2d55".into()],
        phash: None,
        brief: None,
        status: AssetStatus::Wip,
        approved_version: None,
        renditions: vec![],
        deleted: false,
    }];
    app.update(Msg::Data(Box::new(data)));
    let effects = app.update(Msg::Action(Action::ShowAssets));
    assert_eq!(
        effects,
        [spoke::tui::app::Effect::Preview(
            spoke::tui::preview::Job::Decode("ab".repeat(32))
        )]
    );
    // Left blue, right red: the preview must show both halves.
    let image = image::DynamicImage::ImageRgb8(image::ImageBuffer::from_fn(640, 320, |x, _| {
        if x < 320 {
            image::Rgb([10, 132, 255])
        } else {
            image::Rgb([255, 45, 85])
        }
    }));
    let effects = app.update(decoded(&"ab".repeat(32), image));
    encode_previews(&mut app, effects);
    let terminal = render(&mut app, &theme, 120, 40);
    let buffer = terminal.backend().buffer();
    let mut blue = false;
    let mut red = false;
    // Only the preview's own cells: right of the list, above the info lines.
    let area = ratatui::layout::Rect::new(56, 2, 62, 26);
    for pos in area.positions() {
        let cell = &buffer[pos];
        // A half-block cell paints its top half in fg and bottom in bg.
        for c in [cell.fg, cell.bg] {
            blue |= matches!(c, Color::Rgb(0..=60, 100..=160, 200..=255));
            red |= matches!(c, Color::Rgb(200..=255, 0..=80, 50..=120));
        }
    }
    assert!(blue && red, "the half-block preview shows both colours");
    insta::assert_snapshot!("assets_halfblock_preview_120x40", terminal.backend());
}

mod global_search {
    use super::*;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use spoke::search::docs::DocKind;
    use spoke::search::index::Hit;
    use spoke::tui::app::Effect;
    use spoke::tui::popup::Popup;

    fn hit(kind: DocKind, id: &str, title: &str, brief: Option<&str>, text: &str) -> Hit {
        Hit {
            kind,
            id: id.into(),
            title: title.into(),
            snippet: text.chars().take(60).collect(),
            text: text.into(),
            score: 0.03,
            entity: id.into(),
            brief: brief.map(str::to_owned),
            vector_rank: Some(1),
            lexical_rank: Some(1),
        }
    }

    fn type_text(app: &mut App, text: &str) -> Vec<Effect> {
        let mut last = Vec::new();
        for c in text.chars() {
            last = app.update(Msg::Key(KeyEvent::new(
                KeyCode::Char(c),
                KeyModifiers::NONE,
            )));
        }
        last
    }

    fn results(app: &mut App, seq: u64, text: &str, hits: Vec<Hit>) {
        app.update(Msg::SearchResults {
            seq,
            text: text.into(),
            outcome: Ok((hits, Vec::new())),
        });
    }

    #[test]
    fn the_search_key_opens_search_and_typing_asks_the_worker() {
        let mut app = app();
        let key = app
            .keymap
            .bindings_for(Pane::Briefs)
            .into_iter()
            .find(|b| b.action == Action::Search)
            .expect("search is bound in the default keymap");
        assert_eq!(
            key.keys.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
            ["C-f"]
        );
        app.update(Msg::Action(Action::Search));
        let effects = type_text(&mut app, "podcast");
        match effects.as_slice() {
            [Effect::Search { seq, text }] => {
                assert_eq!((*seq, text.as_str()), (7, "podcast"));
            }
            other => panic!("expected one search effect, got {other:?}"),
        }
    }

    #[test]
    fn results_are_listed_by_kind_and_enter_jumps_to_the_brief() {
        let theme = Theme::load("default-dark", None, ColorDepth::TrueColor).expect("theme");
        let mut app = app();
        show(&mut app, Pane::Team);
        app.update(Msg::Action(Action::Search));
        type_text(&mut app, "cover art");
        results(
            &mut app,
            9,
            "cover art",
            vec![
                hit(
                    DocKind::Kb,
                    "k-1#3",
                    "brand-voice.md › Tone of voice",
                    None,
                    "Warm, plain, specific.",
                ),
                hit(
                    DocKind::Comment,
                    "brief:b-00000006#c1",
                    "kenji on “Podcast cover art”",
                    Some("b-00000006"),
                    "Cover art needs the new logo lockup.",
                ),
            ],
        );
        let terminal = render(&mut app, &theme, 100, 30);
        insta::assert_snapshot!("global_search_100x30", terminal.backend());

        app.update(Msg::Key(KeyEvent::new(KeyCode::Down, KeyModifiers::NONE)));
        let effects = app.update(Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
        assert_eq!(app.pane, Pane::Briefs);
        assert!(app.popup().is_none());
        assert_eq!(
            app.panes.briefs.queue.selected().map(|b| b.id.as_str()),
            Some("b-00000006")
        );
        assert!(matches!(effects.as_slice(), [Effect::LoadThread(id)] if id == "b-00000006"));
    }

    #[test]
    fn a_knowledge_result_opens_in_a_reader_and_stale_results_are_ignored() {
        let mut app = app();
        app.update(Msg::Action(Action::Search));
        type_text(&mut app, "tone");
        // An answer to an older query (seq 1: "t") arrives late.
        results(
            &mut app,
            1,
            "t",
            vec![hit(
                DocKind::Brief,
                "b-00000000",
                "old",
                Some("b-00000000"),
                "",
            )],
        );
        match app.popup() {
            Some(Popup::Search(s)) => assert!(s.hits.is_empty()),
            other => panic!("{other:?}"),
        }
        results(
            &mut app,
            4,
            "tone",
            vec![hit(
                DocKind::Kb,
                "k-1#3",
                "brand-voice.md › Tone of voice",
                None,
                "Warm, plain, specific. Never shout.",
            )],
        );
        app.update(Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
        match app.popup() {
            Some(Popup::Reader(r)) => {
                assert!(r.text.contains("Never shout"));
                assert!(r.title.contains("Tone of voice"));
            }
            other => panic!("{other:?}"),
        }
        app.update(Msg::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)));
        assert!(app.popup().is_none());
    }
}

mod chat_pane {
    use super::*;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use spoke::agent::chat::ChatEvent;
    use spoke::model::asset::Provenance;
    use spoke::model::thread::{Citation, Message, ToolUse};
    use spoke::service::threads::ThreadInfo;
    use spoke::tui::app::Effect;
    use spoke::tui::popup::Popup;
    use spoke::tui::popup::picker::AnyPicker;

    fn message(author: &str, body: &str, ai: bool) -> Message {
        Message {
            author: author.into(),
            at: NOW.parse().ok(),
            body: body.into(),
            citations: if ai {
                vec![Citation {
                    kind: "kb".into(),
                    id: "k-voice#1".into(),
                    quote: Some("brand-voice.md › Tone of voice".into()),
                    ..Default::default()
                }]
            } else {
                Vec::new()
            },
            provenance: if ai {
                Provenance::Ai {
                    provider: "openai".into(),
                    model: "smollm2".into(),
                    prompt_sha256: "0".repeat(64),
                }
            } else {
                Provenance::Human
            },
            tools: if ai {
                vec![ToolUse {
                    name: "propose_assignment".into(),
                    arguments: "{}".into(),
                    summary: "assign @kenji to b-00000001: proposal p-1, waiting for approval"
                        .into(),
                    proposal: Some("p-1".into()),
                }]
            } else {
                Vec::new()
            },
        }
    }

    fn chat_app() -> App {
        let mut app = app();
        let effects = app.update(Msg::Action(Action::ShowChat));
        assert!(matches!(effects.as_slice(), [Effect::LoadChat(None)]));
        app.update(Msg::ChatData {
            threads: vec![
                ThreadInfo {
                    id: "general".into(),
                    title: "general".into(),
                    messages: 2,
                },
                ThreadInfo {
                    id: "brief:b-00000001".into(),
                    title: "Spring launch hero film".into(),
                    messages: 0,
                },
            ],
            thread: "general".into(),
            messages: vec![
                message("ana", "Who should take the **spring film**?", false),
                message(
                    "ana",
                    "Kenji has the motion skills and time before the deadline [1].",
                    true,
                ),
            ],
        });
        app
    }

    fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
        app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
    }

    #[test]
    fn the_chat_pane_shows_threads_ai_provenance_tools_citations_and_a_streaming_answer() {
        let theme = Theme::load("default-dark", None, ColorDepth::TrueColor).expect("theme");
        let mut app = chat_app();
        key(&mut app, KeyCode::Char('i'));
        for c in "and the deck?".chars() {
            key(&mut app, KeyCode::Char(c));
        }
        let effects = key(&mut app, KeyCode::Enter);
        match effects.as_slice() {
            [Effect::ChatSend { thread, text, .. }] => {
                assert_eq!(
                    (thread.as_str(), text.as_str()),
                    ("general", "and the deck?")
                );
            }
            other => panic!("{other:?}"),
        }
        app.update(Msg::ChatStream(ChatEvent::ToolStarted {
            name: "search_knowledge".into(),
        }));
        app.update(Msg::ChatStream(ChatEvent::Text(
            "The deck goes to *priya*".into(),
        )));
        let terminal = render(&mut app, &theme, 110, 30);
        let text = terminal.backend().to_string();
        assert!(text.contains("AI · openai/smollm2"), "{text}");
        assert!(text.contains("[1] kb k-voice#1"));
        assert!(text.contains("▸ propose_assignment"));
        assert!(text.contains("answering (esc cancels)"));
        insta::assert_snapshot!("chat_streaming_110x30", terminal.backend());

        // Esc cancels the answer at once, even with the input focused.
        let effects = key(&mut app, KeyCode::Esc);
        assert!(
            matches!(effects.as_slice(), [Effect::CancelAnswer]),
            "{effects:?}"
        );
        assert!(app.panes.chat.composing, "the input keeps its focus");
        let effects = app.update(Msg::ChatDone {
            thread: "general".into(),
            error: Some("the answer was cancelled".into()),
        });
        assert!(app.panes.chat.streaming.is_none());
        assert_eq!(app.panes.chat.notice(), Some("the answer was cancelled"));
        // The notice belongs to its thread, not to the others.
        key(&mut app, KeyCode::Esc);
        key(&mut app, KeyCode::Char('j'));
        assert_eq!(app.panes.chat.notice(), None);
        assert!(matches!(effects.as_slice(), [Effect::LoadChat(Some(t))] if t == "general"));
    }

    #[test]
    fn a_model_answer_in_markdown_renders_as_markdown() {
        let theme = Theme::load("default-dark", None, ColorDepth::TrueColor).expect("theme");
        let mut app = chat_app();
        let answer = "### Next steps\n\n1. Move the brief to in_progress\n2. Ask **kenji** for the cut\n\n```toml\nstatus = \"in_progress\"\n```\n\n| brief | due |\n|:--|--:|\n| Spring film | 3d |\n| Deck | 12d |";
        app.update(Msg::ChatData {
            threads: vec![ThreadInfo {
                id: "general".into(),
                title: "general".into(),
                messages: 1,
            }],
            thread: "general".into(),
            messages: vec![message("ana", answer, true)],
        });
        let terminal = render(&mut app, &theme, 110, 40);
        let text = terminal.backend().to_string();
        for expected in [
            "▸ Next steps",
            "1. Move the brief to in_progress",
            "2. Ask kenji for the cut",
            "┌ toml",
            "status = \"in_progress\"",
            "brief       │ due",
            "Spring film │  3d",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(!text.contains("```") && !text.contains("**") && !text.contains("|:--"));
        insta::assert_snapshot!("chat_markdown_answer_110x40", terminal.backend());
    }

    #[test]
    fn the_newest_message_stays_in_view_however_long_the_lines_wrap() {
        let theme = Theme::load("default-dark", None, ColorDepth::TrueColor).expect("theme");
        let mut app = chat_app();
        let mut messages: Vec<Message> = (0..30)
            .map(|i| {
                message(
                    "kenji",
                    &format!("{i}: {}", "a long line that wraps several times ".repeat(6)),
                    false,
                )
            })
            .collect();
        messages.push(message("maya", "the newest word: marmalade", false));
        app.update(Msg::ChatData {
            threads: vec![ThreadInfo {
                id: "general".into(),
                title: "general".into(),
                messages: 31,
            }],
            thread: "general".into(),
            messages,
        });
        for (w, h) in [(80, 24), (60, 20), (120, 30)] {
            let terminal = render(&mut app, &theme, w, h);
            let text = terminal.backend().to_string();
            assert!(text.contains("marmalade"), "{w}x{h}:\n{text}");
        }
    }

    #[test]
    fn a_citation_opens_its_source_and_threads_switch_with_the_cursor() {
        let mut app = chat_app();
        key(&mut app, KeyCode::Char('f'));
        assert!(matches!(
            app.popup(),
            Some(Popup::Picker(AnyPicker::Citation(p))) if p.choices.len() == 1
        ));
        let effects = key(&mut app, KeyCode::Enter);
        assert!(
            matches!(effects.as_slice(), [Effect::OpenSource { kind, id }] if kind == "kb" && id == "k-voice#1"),
            "{effects:?}"
        );
        app.update(Msg::Source {
            title: "brand-voice.md › Tone of voice".into(),
            text: "Warm and plain.".into(),
        });
        assert!(matches!(app.popup(), Some(Popup::Reader(r)) if r.text == "Warm and plain."));
        key(&mut app, KeyCode::Esc);
        let effects = key(&mut app, KeyCode::Char('j'));
        assert!(
            matches!(effects.as_slice(), [Effect::LoadChat(Some(t))] if t == "brief:b-00000001"),
            "{effects:?}"
        );
    }
}

/// The queue on a real replica: its edits go through the same brief
/// services as the CLI, so the rules and the messages are the CLI's.
mod on_a_replica {
    use super::*;
    use common_cli::{Sandbox, assert_exit_code_2};
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use spoke::model::member::Role;
    use spoke::model::{EntityKind, EntityRef};
    use spoke::service::{Hub, NewHub, NewMember, replica_path};
    use spoke::store::Replica;
    use spoke::tui::app::{Effect, Level};
    use spoke::tui::edits::BriefEdit;
    use spoke::tui::popup::Popup;
    use std::path::Path;

    const BRIEF: &str = "b-00000001";

    /// A hub made by ana (a lead) with kenji (a creative) and one brief in
    /// intake that has only an objective; the replica then acts as kenji.
    fn kenjis_replica(home: &Path) {
        let mut hub = Hub::init(
            home,
            NewHub {
                name: "Northwind Studio",
                handle: "ana",
                tz: "Europe/Lisbon",
                display_name: None,
            },
        )
        .expect("init");
        let mut kenji = NewMember::new("kenji", "Asia/Tokyo");
        kenji.roles = vec![Role::Creative];
        kenji.hours = Some("09:30-18:00".into());
        hub.add_member(kenji).expect("add kenji");
        // A fixed id keeps the screen the same from run to run.
        hub.commit(vec![(
            EntityRef::new(EntityKind::Brief, BRIEF),
            Change::Set(BTreeMap::from([
                ("title".to_owned(), json!("Holiday email header")),
                ("status".to_owned(), json!("intake")),
                ("priority".to_owned(), json!("p1")),
                ("requester".to_owned(), json!("ana")),
                ("created_by".to_owned(), json!("ana")),
                ("objective".to_owned(), json!("Grow trials")),
            ])),
        )])
        .expect("add the brief");
        drop(hub);
        Replica::open(&replica_path(home))
            .expect("open the replica")
            .update_meta(|m| m.me = Some("kenji".into()))
            .expect("act as kenji");
    }

    /// The app on the replica, with creation times pinned to the test clock.
    fn load(app: &mut App, hub: &Hub) {
        let mut data = spoke::tui::run::snapshot(hub).expect("snapshot");
        let now: Timestamp = NOW.parse().expect("now");
        for b in &mut data.briefs {
            b.created_at = now.checked_sub(jiff::SignedDuration::from_hours(30)).ok();
        }
        app.update(Msg::Data(Box::new(data)));
    }

    #[test]
    fn a_non_lead_moving_an_incomplete_brief_to_ready_gets_the_clis_refusal() {
        let sb = Sandbox::new();
        kenjis_replica(&sb.home);
        let out = sb.run(&["brief", "status", BRIEF, "ready"]);
        let printed = assert_exit_code_2(&out, "kenji moving the brief to ready");
        let cli = printed
            .trim_end()
            .strip_prefix("spoke: ")
            .unwrap_or_else(|| panic!("an error from spoke, got {printed}"))
            .to_owned();
        assert!(cli.contains("open questions"), "{cli}");

        let mut hub = Hub::open(&sb.home, None).expect("open as kenji");
        assert_eq!(hub.actor().expect("identity"), "kenji");
        let mut app = App::new(
            Keymap::load("default", None).expect("keymap"),
            NOW.parse().expect("now"),
        );
        load(&mut app, &hub);
        // `s` opens the status picker on the next step, ready; enter picks it.
        app.update(Msg::Action(Action::SetStatus));
        let effects = app.update(Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
        assert!(
            !matches!(app.popup(), Some(Popup::Confirm { .. })),
            "only a lead is asked whether to force it"
        );
        let edits: Vec<BriefEdit> = effects
            .into_iter()
            .filter_map(|e| match e {
                Effect::Briefs(edit) => Some(edit),
                _ => None,
            })
            .collect();
        assert_eq!(
            edits,
            [BriefEdit::SetStatus {
                ids: vec![BRIEF.to_owned()],
                to: BriefStatus::Ready,
                force: false
            }]
        );
        for edit in &edits {
            let edited = spoke::tui::edits::apply(&mut hub, edit);
            app.update(Msg::Edited(edited));
            load(&mut app, &hub);
        }
        assert_eq!(app.message, Some((Level::Error, cli)));
        assert!(app.undo.is_empty(), "nothing changed, nothing to undo");
        assert_eq!(hub.brief(BRIEF).expect("brief").status, BriefStatus::Intake);
        let theme = Theme::load("default-dark", None, ColorDepth::TrueColor).expect("theme");
        let terminal = render(&mut app, &theme, 160, 48);
        insta::assert_snapshot!("non_lead_moves_incomplete_brief_160x48", terminal.backend());
    }
}

#[test]
fn the_chat_pane_says_how_to_configure_a_model_when_there_is_none() {
    let theme = Theme::load("default-dark", None, ColorDepth::TrueColor).expect("theme");
    let mut app = app();
    app.update(Msg::Action(Action::ShowChat));
    let text = render(&mut app, &theme, 160, 40).backend().to_string();
    assert!(!text.contains("No model configured"), "{text}");
    app.panes.chat.model = None;
    let text = render(&mut app, &theme, 160, 40).backend().to_string();
    let hint: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("No model configured"))
        .collect();
    assert_eq!(hint.len(), 1, "{text}");
    assert!(hint[0].contains("config.toml"), "{text}");
}
