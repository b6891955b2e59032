//! The demo hub, seeded on a real relay by its members' own replicas: the
//! planted images and checks, a believable past, and a team that keeps
//! working through the relay until it is told to stop.

use spoke::assets::dupes::DEFAULT_THRESHOLD;
use spoke::demo::art::{self, Role as ArtRole};
use spoke::model::approval::{ApprovalStatus, Decision, Subject};
use spoke::service::{BriefFilter, Hub};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The bytes of a blob, from the relay as any member would fetch them.
fn blob(rt: &tokio::runtime::Runtime, home: &Path, hub: &Hub, sha: &str) -> Vec<u8> {
    let meta = hub.meta();
    let addr =
        spoke::sync::HubAddress::parse(meta.hub_url.as_deref().expect("joined")).expect("url");
    let client =
        spoke::sync::blobs::BlobClient::new(addr, meta.hub_token.clone().expect("token"), None)
            .expect("client");
    let path = rt.block_on(client.fetch(home, sha)).expect("fetch blob");
    std::fs::read(path).expect("read blob")
}

#[test]
fn the_demo_seeds_images_history_and_a_team_through_the_relay() {
    let dir = tempfile::tempdir().expect("tmp");
    let home = dir.path();
    let rt = runtime();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("port");
    let running = rt
        .block_on(spoke_relay::server::start(
            listener,
            spoke_relay::relay::RelayConfig::new(home.join("relay")),
        ))
        .expect("relay");
    let seeded = rt
        .block_on(spoke::demo::seed(home, &running))
        .expect("seed");
    assert!(
        seeded.out_of_order.is_empty(),
        "every member acts in its own time order: {:?}",
        seeded.out_of_order
    );
    rt.block_on(spoke::sync::sync_once(home)).expect("sync");
    let hub = Hub::open(home, None).expect("open");
    assert_eq!(hub.actor().expect("me"), "ana");

    // Images: every piece of the catalogue, decodable, analysed, captioned.
    let assets = hub.assets().expect("assets");
    let images: Vec<_> = assets
        .iter()
        .filter(|a| a.latest().is_some_and(|v| v.mime.starts_with("image/")))
        .collect();
    assert!(images.len() >= 12, "{} image assets", images.len());
    for a in &images {
        let v = a.latest().expect("version");
        let bytes = blob(&rt, home, &hub, &v.blob_sha256);
        let decoded = image::load_from_memory(&bytes)
            .unwrap_or_else(|e| panic!("{} does not decode: {e}", a.title));
        assert_eq!(Some(decoded.width()), v.width, "{}", a.title);
        assert!(!a.palette.is_empty(), "{} has no palette", a.title);
        assert!(a.tags.len() >= 3, "{} has tags {:?}", a.title, a.tags);
        assert!(a.brief.is_some(), "{} is linked to no brief", a.title);
        assert_ne!(v.author, "ana", "{} was made by a creative", a.title);
    }
    let pieces = art::catalogue();
    let by_role = |role: ArtRole| {
        let piece = pieces.iter().find(|p| p.role == role).expect("piece");
        let id = seeded.replayed.work.get(piece.file_name).expect("uploaded");
        hub.asset(id).expect("asset")
    };

    // The planted near duplicates are the only group the dupes check finds.
    let groups = hub.asset_dupes(DEFAULT_THRESHOLD).expect("dupes");
    let (a, b) = (by_role(ArtRole::DupeA), by_role(ArtRole::DupeB));
    assert_eq!(groups.len(), 1, "groups: {groups:?}");
    let ids: BTreeSet<&str> = groups[0].iter().map(|x| x.id.as_str()).collect();
    assert_eq!(ids, BTreeSet::from([a.id.as_str(), b.id.as_str()]));

    // Only the planted image is off the brand's palette.
    let off: Vec<&str> = images
        .iter()
        .filter(|a| a.tags.iter().any(|t| t == "off-palette"))
        .map(|a| a.id.as_str())
        .collect();
    assert_eq!(off, vec![by_role(ArtRole::OffPalette).id.as_str()]);

    // The 24-megapixel master with its renditions made.
    let master = by_role(ArtRole::Master);
    let mv = master.latest().expect("version");
    assert_eq!((mv.width, mv.height), (Some(6000), Some(4000)));
    assert!(master.renditions.len() >= 3, "{:?}", master.renditions);
    for (_, sha) in &master.renditions {
        assert!(image::load_from_memory(&blob(&rt, home, &hub, sha)).is_ok());
    }

    // The billboard: v1 sent back by the reviewer, v2 waiting for you.
    let billboard = by_role(ArtRole::Version1);
    assert_eq!(billboard.versions.len(), 2);
    let approvals = hub.approvals(false).expect("approvals");
    let on = |asset: &str, version: u32| {
        approvals.iter().find(|r| {
            r.subject
                == Some(Subject::AssetVersion {
                    asset: asset.to_owned(),
                    version,
                })
        })
    };
    let v1 = on(&billboard.id, 1).expect("v1 request");
    assert_eq!(v1.decisions[0].reviewer, "maya");
    assert_eq!(v1.decisions[0].decision, Some(Decision::ChangesRequested));
    let v2 = on(&billboard.id, 2).expect("v2 request");
    assert_eq!(v2.status, ApprovalStatus::Pending);
    assert_eq!(v2.waiting_on, vec!["ana".to_owned()]);
    let mine = hub.approvals(true).expect("mine");
    assert!(mine.len() >= 3, "{} requests wait on you", mine.len());
    let decided_by_others = approvals
        .iter()
        .filter(|r| r.decisions.iter().any(|d| d.reviewer != "ana"))
        .count();
    assert!(
        decided_by_others >= 4,
        "{decided_by_others} decided by others"
    );

    // A believable past: weeks of briefs from several requesters, statuses
    // that match their ages, a few overdue, voices from across the team.
    let now = jiff::Timestamp::now();
    let briefs = hub.briefs(&BriefFilter::default()).expect("briefs");
    let days = |t: Option<jiff::Timestamp>| {
        now.duration_since(t.expect("stamped")).as_secs_f64() / 86_400.0
    };
    let oldest = briefs
        .iter()
        .map(|b| days(b.created_at))
        .fold(0.0, f64::max);
    assert!(oldest > 30.0, "the oldest brief is {oldest:.1} days old");
    let requesters: BTreeSet<_> = briefs.iter().filter_map(|b| b.requester.clone()).collect();
    assert!(requesters.len() >= 3, "{requesters:?}");
    for b in &briefs {
        let age = days(b.created_at);
        use spoke::model::brief::BriefStatus::*;
        match b.status {
            Delivered => assert!(age > 20.0, "{} delivered at {age:.1} days", b.title),
            Draft | Intake => assert!(
                age < 5.0,
                "{} still {:?} at {age:.1} days",
                b.title,
                b.status
            ),
            _ => {}
        }
        assert!(
            days(b.updated_at) <= age,
            "{} updated before it was filed",
            b.title
        );
    }
    let overdue = briefs
        .iter()
        .filter(|b| {
            b.status.is_open() && b.due.as_ref().is_some_and(|d| d.zoned().timestamp() < now)
        })
        .count();
    assert!((2..=5).contains(&overdue), "{overdue} overdue");
    let mut voices = BTreeSet::new();
    for b in &briefs {
        for m in hub.thread_messages(&b.thread).expect("thread") {
            voices.insert(m.author.clone());
        }
    }
    for who in [
        "lucia", "noor", "maya", "kenji", "priya", "tom", "jordan", "scout", "ana",
    ] {
        assert!(
            voices.contains(who),
            "@{who} says nothing; voices: {voices:?}"
        );
    }
    let general: BTreeSet<String> = hub
        .thread_messages("general")
        .expect("general")
        .into_iter()
        .map(|m| m.author)
        .collect();
    assert!(general.len() >= 2, "the general thread: {general:?}");
    let chain = hub.replica().audit_chain().expect("audit");
    assert!(chain.len() >= 8, "{} audit entries", chain.len());
    drop(hub);

    // The live team: a teammate's act reaches you through the relay, and
    // nothing more happens once the team is stopped.
    let count = |rt: &tokio::runtime::Runtime| {
        rt.block_on(spoke::sync::sync_once(home)).expect("sync");
        let hub = Hub::open(home, None).expect("open");
        hub.replica().meta().expect("meta").cursor
    };
    let before = count(&rt);
    let live = spoke::demo::live::Live::start(
        home,
        spoke::demo::live::LiveOptions {
            pace: (1, 1),
            quiet: false,
            agent: None,
        },
    )
    .expect("live");
    let deadline = Instant::now() + Duration::from_secs(90);
    let filed = loop {
        let hub = Hub::open(home, None).expect("open");
        rt.block_on(spoke::sync::sync_once(home)).expect("sync");
        if let Some(b) = hub
            .briefs(&BriefFilter::default())
            .expect("briefs")
            .into_iter()
            .find(|b| b.title == "Pop-up store window, Rua Augusta")
        {
            break b;
        }
        assert!(Instant::now() < deadline, "no teammate acted within 90 s");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(filed.requester.as_deref(), Some("lucia"));
    // The agent asks the requester what the brief is missing.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        rt.block_on(spoke::sync::sync_once(home)).expect("sync");
        let hub = Hub::open(home, None).expect("open");
        let asked = hub
            .thread_messages(&filed.thread)
            .expect("thread")
            .iter()
            .any(|m| m.author == "scout" && m.body.contains("@lucia"));
        if asked {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the agent never asked about the new brief"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    live.stop();
    let stopped = count(&rt);
    assert!(stopped > before);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(count(&rt), stopped, "the team acted after it was stopped");
    rt.block_on(running.shutdown()).expect("shutdown");
}
