//! `spoke inbox` on four members' replicas joined to a relay on loopback:
//! a request shows up for a reviewer only when its stage reaches them and
//! leaves when they decide; a brief assigned to a member shows when someone
//! else changes it and clears when seen; an @mention shows until answered;
//! intake questions show for the requester until the fields are filled.

mod common_cli;

use serde_json::{Value, json};
use std::path::Path;

use common_cli::{json_in as json, loopback_relay, ok_in as ok};

fn items(home: &Path) -> Vec<Value> {
    let inbox = json(home, &["inbox"]);
    inbox["items"].as_array().cloned().unwrap_or_default()
}

fn kinds(home: &Path) -> Vec<(String, String)> {
    items(home)
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap_or_default().to_owned(),
                i["id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn has(home: &Path, kind: &str, id: &str) -> bool {
    kinds(home).iter().any(|(k, i)| k == kind && i == id)
}

#[test]
fn the_inbox_holds_what_waits_on_each_member_until_it_is_done() {
    let root = tempfile::tempdir().expect("tmp");
    let (rt, running) = loopback_relay(&root.path().join("relay"));
    let registry = &running.relay.registry;
    let hub = registry.create_hub("Inbox").expect("hub");
    let url = format!("ws://{}/v1/hubs/{}", running.addr, hub.id);
    let join = |handle: &str, role: &str| {
        let home = root.path().join(handle);
        let token = registry
            .issue(&hub.id, handle, role, None)
            .expect("token")
            .0;
        ok(
            &home,
            &["hub", "join", &url, "--token", &token, "--tz", "UTC"],
        );
        home
    };
    let ana = join("ana", "lead");
    let kenji = join("kenji", "creative");
    let rui = join("rui", "reviewer");
    let scout = join("scout", "agent");
    // Twice round: whoever wrote pushes in the first, everyone pulls by the second.
    let sync_all = || {
        for home in [&ana, &kenji, &rui, &scout, &ana, &kenji, &rui] {
            ok(home, &["sync"]);
        }
    };
    sync_all();
    for home in [&ana, &kenji, &rui] {
        assert_eq!(
            items(home),
            Vec::<Value>::new(),
            "a new hub waits on nobody"
        );
    }

    // A brief assigned to kenji by someone else is news for kenji, not for ana.
    let brief = ok(
        &ana,
        &[
            "brief",
            "add",
            "--title",
            "Podcast cover",
            "--requester",
            "rui",
        ],
    )
    .trim()
    .to_owned();
    ok(&ana, &["brief", "assign", &brief, "kenji"]);
    sync_all();
    assert!(has(&kenji, "assigned", &brief), "{:?}", kinds(&kenji));
    assert!(
        !has(&ana, "assigned", &brief),
        "ana made the change herself"
    );
    ok(&kenji, &["inbox", "seen", &brief]);
    assert!(!has(&kenji, "assigned", &brief), "seen clears it");
    // His own change is not news to him.
    ok(
        &kenji,
        &["brief", "set", &brief, "audience=Podcast listeners"],
    );
    assert!(!has(&kenji, "assigned", &brief));

    // An @mention waits until kenji answers in the thread.
    ok(
        &ana,
        &["brief", "comment", &brief, "@kenji can you take the cover?"],
    );
    ok(&ana, &["brief", "comment", &brief, "@kenjix is not kenji"]);
    sync_all();
    let mentions: Vec<Value> = items(&kenji)
        .into_iter()
        .filter(|i| i["kind"] == json!("mention"))
        .collect();
    assert_eq!(mentions.len(), 1, "one mention of @kenji: {mentions:?}");
    assert_eq!(mentions[0]["by"], json!("ana"));
    assert_eq!(mentions[0]["brief"], json!(brief));
    ok(&kenji, &["brief", "comment", &brief, "On it."]);
    assert!(
        !items(&kenji).iter().any(|i| i["kind"] == json!("mention")),
        "answered"
    );

    // The agent's intake questions wait on the requester until answered.
    ok(&scout, &["agent", "run", "--once"]);
    sync_all();
    assert!(has(&rui, "question", &brief), "{:?}", kinds(&rui));
    assert!(
        !has(&kenji, "question", &brief),
        "only the requester is asked"
    );
    let question = items(&rui)
        .into_iter()
        .find(|i| i["kind"] == json!("question"))
        .expect("question");
    assert!(
        question["detail"]
            .as_str()
            .is_some_and(|d| d.contains("objective")),
        "{question}"
    );
    ok(
        &ana,
        &[
            "brief",
            "set",
            &brief,
            "objective=More listeners",
            "key_message=Stories worth hearing",
            "deliverables=spotify:3000x3000",
            "due=2027-01-10T17:00",
        ],
    );
    sync_all();
    assert!(!has(&rui, "question", &brief), "{:?}", kinds(&rui));

    // A two-stage request waits on rui only once ana's stage has passed.
    let img: image::RgbImage = image::ImageBuffer::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, 90])
    });
    let file = root.path().join("cover.png");
    img.save(&file).expect("png");
    ok(
        &kenji,
        &["asset", "import", file.to_str().expect("utf8 path")],
    );
    let asset = json(&kenji, &["asset", "list"])[0]["id"]
        .as_str()
        .expect("asset id")
        .to_owned();
    let request = json(
        &kenji,
        &[
            "approvals",
            "request",
            "--asset",
            &asset,
            "--stage",
            "lead=ana",
            "--stage",
            "review=rui",
        ],
    )["id"]
        .as_str()
        .expect("request id")
        .to_owned();
    sync_all();
    assert!(
        has(&ana, "approval", &request),
        "{:?} {} {}",
        kinds(&ana),
        json(&ana, &["approvals", "list"]),
        json(&kenji, &["audit", "refused"])
    );
    assert!(!has(&rui, "approval", &request), "not rui's stage yet");
    ok(&ana, &["approve", &request]);
    sync_all();
    assert!(!has(&ana, "approval", &request), "ana decided");
    assert!(
        has(&rui, "approval", &request),
        "{:?} {}",
        kinds(&rui),
        json(&rui, &["approvals", "show", &request])
    );
    // Seeing does not clear a request; deciding does.
    ok(&rui, &["inbox", "seen"]);
    assert!(has(&rui, "approval", &request));
    ok(&rui, &["approve", &request]);
    assert!(!has(&rui, "approval", &request));

    // The plain listing names the member and the count.
    let text = ok(&kenji, &["inbox"]);
    assert!(
        text.contains("@kenji") || text.contains("Nothing waits"),
        "{text}"
    );
    rt.block_on(running.shutdown()).expect("shutdown");
}

#[test]
fn a_damaged_seen_file_is_named_and_the_listing_still_works() {
    let sb = common_cli::Sandbox::with_hub();
    std::fs::write(sb.home.join("inbox-seen.json"), b"{not json").expect("write");
    // Listing still works: nothing waits in a one-member hub.
    let listed = sb.json(&["inbox"]);
    assert_eq!(listed["items"], json!([]));
    let out = sb.run(&["inbox", "seen"]);
    assert_eq!(out.status.code(), Some(1));
    let err = common_cli::stderr(&out);
    assert!(
        err.contains("inbox-seen.json") && err.contains("damaged"),
        "{err}"
    );
}
