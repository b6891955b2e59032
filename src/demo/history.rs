//! The demo hub's past, replayed through the relay by the members who made
//! it: briefs filed over six weeks by several requesters, triaged and moved
//! by the lead, worked on by creatives who upload images and ask for
//! approval, decided by reviewers. Each member writes on its own replica in
//! its own time order; the replicas meet at a few exchanges.

use super::art::{self, Piece, Role as ArtRole};
use super::cast::{Actor, Cast, home_of};
use super::team::{AGENT, TEAM, YOU};
use crate::model::approval::{Decision, Stage, StageMode, Subject};
use crate::model::brief::BriefStatus;
use crate::model::{Change, EntityKind, EntityRef};
use crate::service::assets::{ImportOptions, RenditionOptions};
use crate::service::{BriefFilter, Hub};
use anyhow::{Context, Result};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

/// One brief of the demo: who asked, how long ago, where it stands.
struct DemoBrief {
    title: &'static str,
    status: BriefStatus,
    priority: &'static str,
    assignee: &'static str,
    /// Due, in days from now (negative: past).
    due: i64,
    /// All the fields intake asks for are filled in.
    complete: bool,
    requester: &'static str,
    /// Filed this many days ago.
    age: f64,
}

#[allow(clippy::too_many_arguments)]
const fn b(
    title: &'static str,
    status: BriefStatus,
    priority: &'static str,
    assignee: &'static str,
    due: i64,
    complete: bool,
    requester: &'static str,
    age: f64,
) -> DemoBrief {
    DemoBrief {
        title,
        status,
        priority,
        assignee,
        due,
        complete,
        requester,
        age,
    }
}

use BriefStatus as S;

/// The queue: statuses match ages, a few are overdue.
#[rustfmt::skip]
const BRIEFS: &[DemoBrief] = &[
    b("Spring launch hero film", S::Draft, "p1", "", 40, false, "lucia", 0.3),
    b("Recruiting page refresh", S::Draft, "p3", "", 60, false, "ana", 1.6),
    b("Partner co-marketing one-pager", S::Draft, "p2", "", 21, false, "noor", 0.8),
    b("Q1 webinar series visuals", S::Intake, "p2", "", 18, false, "lucia", 2.2),
    b("App store screenshots v5", S::Intake, "p1", "", 9, true, "lucia", 3.1),
    b("Annual report cover", S::Intake, "p2", "", 45, true, "noor", 1.2),
    b("Holiday email header", S::Ready, "p0", "jordan", 3, true, "lucia", 4.5),
    b("Trade show booth graphics", S::Ready, "p2", "tom", 30, true, "noor", 6.0),
    b("LinkedIn carousel: customer stories", S::InProgress, "p1", "priya", 7, true, "lucia", 9.5),
    b("Product tour motion loop", S::InProgress, "p1", "kenji", -2, true, "lucia", 12.0),
    b("Instagram reels: launch week", S::InProgress, "p0", "tom", 2, true, "lucia", 8.0),
    b("Brand guidelines v3 illustrations", S::InProgress, "p2", "priya", 25, true, "maya", 26.0),
    b("Case study: Northwind Logistics", S::InReview, "p1", "kenji", -1, true, "noor", 14.0),
    b("Out-of-home billboard, Lisbon metro", S::InReview, "p1", "tom", 6, true, "lucia", 16.0),
    b("Newsletter template refresh", S::InReview, "p3", "jordan", -3, true, "maya", 21.0),
    b("Pricing page illustrations", S::Approved, "p2", "priya", 1, true, "lucia", 19.0),
    b("Sales deck master slides", S::Approved, "p1", "jordan", 2, true, "noor", 22.0),
    b("Podcast cover art", S::Approved, "p3", "tom", 8, true, "maya", 24.0),
    b("Black Friday banner set", S::Delivered, "p0", "tom", -9, true, "lucia", 35.0),
    b("Onboarding email illustrations", S::Delivered, "p2", "priya", -14, true, "maya", 40.0),
    b("Conference sponsor logo wall", S::Delivered, "p3", "kenji", -20, true, "noor", 42.0),
    b("Rebrand teaser (paused by legal)", S::OnHold, "p1", "kenji", 35, true, "maya", 30.0),
    b("Localized ads for Japan", S::OnHold, "p2", "", 28, false, "noor", 18.0),
    b("Print catalogue 2027", S::OnHold, "p3", "", 90, false, "lucia", 12.5),
    b("Sponsored post for discontinued SKU", S::Cancelled, "p2", "", 15, true, "lucia", 27.0),
    b("Mascot exploration", S::Cancelled, "p3", "", 50, false, "maya", 33.0),
    b("TikTok launch challenge", S::Cancelled, "p1", "", 10, false, "noor", 11.0),
];

/// Comments in the members' own voices: (who, brief, hours after it was
/// filed, text). Requesters speak in the round they file in, creatives and
/// the lead in the working round, the reviewer in the deciding round.
const COMMENTS: &[(&str, &str, f64, &str)] = &[
    (
        "lucia",
        "Out-of-home billboard, Lisbon metro",
        3.0,
        "Media is booked for Baixa-Chiado and Cais do Sodré from the 15th. Portuguese copy only, please; legal has the claim list.",
    ),
    (
        "lucia",
        "Instagram reels: launch week",
        1.0,
        "Sharing early: the launch date is firm, the creator list is not. Three reels minimum.",
    ),
    (
        "lucia",
        "LinkedIn carousel: customer stories",
        2.0,
        "Northwind and Hale & Co signed off their quotes. Keep the faces, lose the stock photos.",
    ),
    (
        "lucia",
        "Black Friday banner set",
        5.0,
        "Last year's set ran at 0.9% CTR; the bar is 1.2%. Go bold.",
    ),
    (
        "noor",
        "Case study: Northwind Logistics",
        2.0,
        "Northwind's comms team wants to see the hero image before anything is public. Their VP reads every word.",
    ),
    (
        "noor",
        "Conference sponsor logo wall",
        1.0,
        "Final sponsor list attached in the drive; Bluefin is gold tier now, not silver.",
    ),
    (
        "noor",
        "Localized ads for Japan",
        4.0,
        "Holding until our Tokyo partner confirms the budget split. I'll ping here.",
    ),
    (
        "maya",
        "Brand guidelines v3 illustrations",
        2.0,
        "We need line weights that survive 24px. Everything in v2 broke at small sizes.",
    ),
    (
        "maya",
        "Onboarding email illustrations",
        3.0,
        "Five emails, one character. Keep the coral to accents.",
    ),
    (
        "ana",
        "Out-of-home billboard, Lisbon metro",
        30.0,
        "Tom, metro panels are 4x3 m and seen from two metres: headline under six words.",
    ),
    (
        "ana",
        "Product tour motion loop",
        40.0,
        "Kenji, the loop has to be silent-first; captions burned in.",
    ),
    (
        "kenji",
        "Product tour motion loop",
        170.0,
        "Storyboard is in. 12 s loop, hard cut on the logo. Render farm queue is long tonight, final tomorrow JST.",
    ),
    (
        "kenji",
        "Case study: Northwind Logistics",
        200.0,
        "Hero shot rendered at 6000x4000 so print can crop; renditions for web and social are attached to the asset.",
    ),
    (
        "priya",
        "LinkedIn carousel: customer stories",
        60.0,
        "First two tiles are up. I exported the Northwind tile twice by mistake, the dupes check caught it.",
    ),
    (
        "priya",
        "Pricing page illustrations",
        80.0,
        "Three spot illustrations, all from the v3 palette. SVG masters in the library.",
    ),
    (
        "tom",
        "Instagram reels: launch week",
        50.0,
        "Tried a neon look for the reel covers. I know it's off-brand, flagging it so Maya can say no quickly.",
    ),
    (
        "tom",
        "Out-of-home billboard, Lisbon metro",
        200.0,
        "v1 is up for Maya. Shot the mock-up at Cais do Sodré at 7am, light's great.",
    ),
    (
        "jordan",
        "Newsletter template refresh",
        90.0,
        "Template is responsive down to 320px; dark mode tested in Apple Mail and Gmail.",
    ),
    (
        "jordan",
        "Holiday email header",
        40.0,
        "Two directions for the header, I'll post both by Friday PT.",
    ),
    (
        "maya",
        "Out-of-home billboard, Lisbon metro",
        290.0,
        "Asked for changes on v1: the headline fights the platform signage. Shorter line, logo left.",
    ),
    (
        "maya",
        "Case study: Northwind Logistics",
        300.0,
        "Copy is approved on my side. Ana has the final call on the hero.",
    ),
];

/// Text drafts the agent wrote, waiting for a human: (asset id, title, text).
const AI_DRAFTS: &[(&str, &str, &str)] = &[
    (
        "a-holiday1",
        "Holiday email copy",
        "# Holiday hours\n\nOur studio rests **24-26 Dec**; replies resume on the 29th.\n\n- Urgent print jobs: call the duty line\n- Everything else: we'll be back, rested",
    ),
    (
        "a-pricing1",
        "Pricing page headline options",
        "1. Plans that grow with *every* time zone\n2. One hub for the whole studio\n3. Pay for seats, not for hours",
    ),
];

fn ago(now: Timestamp, days: f64) -> Timestamp {
    now - SignedDuration::from_secs_f64(days * 86_400.0)
}

fn after(t: Timestamp, hours: f64) -> Timestamp {
    t + SignedDuration::from_secs_f64(hours * 3_600.0)
}

fn brief_def(title: &str) -> Result<&'static DemoBrief> {
    BRIEFS
        .iter()
        .find(|b| b.title == title)
        .with_context(|| format!("the demo has no brief “{title}”"))
}

/// Replays the demo's past on a cast that has just joined, ending at `now`.
pub async fn replay(cast: &mut Cast, home: &Path, now: Timestamp) -> Result<Replayed> {
    // The images are drawn while the first round runs; the big master on
    // a thread of its own, waited for only by the one who uploads it.
    let (big, small): (Vec<Piece>, Vec<Piece>) = art::catalogue()
        .into_iter()
        .partition(|p| p.role == ArtRole::Master);
    let small = std::thread::spawn(move || draw(small));
    let big = std::thread::spawn(move || draw(big));
    let master_by = art::catalogue()
        .iter()
        .find(|p| p.role == ArtRole::Master)
        .map_or("kenji", |p| p.by);

    // The lead sets the studio up while requesters file their briefs, and
    // the master (the slowest piece to analyse and render) goes in unlinked.
    let first = [YOU.handle, "lucia", "noor", "maya", master_by];
    let big = Mutex::new(Some(big));
    let master = Mutex::new(Vec::new());
    cast.together(&first, |actor| match actor.handle {
        "ana" => setup(actor, home, ago(now, 45.0)),
        "lucia" | "noor" | "maya" => file_briefs(actor, now),
        _ => {
            if let Some(drawing) = lock(&big).take() {
                for (piece, bytes) in joined(drawing)? {
                    let id = upload_master(actor, home, now, &piece, &bytes)?;
                    lock(&master).push((piece, id));
                }
            }
            Ok(())
        }
    })?;
    let workers = [YOU.handle, AGENT.handle, "kenji", "priya", "tom", "jordan"];
    cast.exchange(&first, &workers).await?;

    // The lead triages, the agent asks, the creatives work.
    let ids = brief_ids(cast.hub(YOU.handle)?)?;
    let mut by_member: BTreeMap<&'static str, Drawn> = BTreeMap::new();
    for (piece, bytes) in joined(small)? {
        by_member.entry(piece.by).or_default().push((piece, bytes));
    }
    let by_member = Mutex::new(by_member);
    let work = Mutex::new(BTreeMap::new());
    let master = Mutex::new(master.into_inner().unwrap_or_else(|e| e.into_inner()));
    cast.together(&workers, |actor| match actor.handle {
        "ana" => triage(actor, now, &ids),
        "scout" => {
            intake_questions(actor, now, &ids)?;
            ai_drafts(actor, home, now)
        }
        who => {
            let mine = lock(&by_member).remove(who).unwrap_or_default();
            let uploaded = if who == master_by {
                std::mem::take(&mut *lock(&master))
            } else {
                Vec::new()
            };
            let made = creative_work(actor, home, now, &ids, mine, uploaded)?;
            lock(&work).extend(made);
            Ok(())
        }
    })?;
    let work = work.into_inner().unwrap_or_else(|e| e.into_inner());
    let v2_by = art::catalogue()
        .iter()
        .find(|p| p.role == ArtRole::Version2)
        .map_or("tom", |p| p.by);
    let last = ["maya", v2_by, AGENT.handle];
    cast.exchange(&workers, &last).await?;

    // Reviewers decide, the billboard comes back as v2, the agent proposes.
    let v2 = Mutex::new(None);
    cast.together(&last, |actor| match actor.handle {
        "maya" => {
            decisions(actor, now, &work)?;
            say_in_general(actor, ago(now, 0.05), GENERAL[1])
        }
        "scout" => proposal(actor, now),
        _ => {
            *lock(&v2) = second_version(actor, home, now, &ids, &work)?;
            say_in_general(actor, ago(now, 0.2), GENERAL[0])
        }
    })?;
    cast.exchange(&last, &[YOU.handle]).await?;
    Ok(Replayed {
        work,
        v2: v2.into_inner().unwrap_or_else(|e| e.into_inner()),
    })
}

/// The team's general thread, from the last day.
const GENERAL: [&str; 2] = [
    "Morning from Sydney! Billboard v2 is in Ana's queue; I'm offline from 17:00 AEDT, Jordan has the baton.",
    "Thanks Tom. Reminder for everyone: the brand review moves to Thursdays, 15:00 UTC, from next week.",
];

fn say_in_general(actor: &mut Actor, at: Timestamp, text: &str) -> Result<()> {
    let hub = actor.at(at);
    hub.post_message(
        crate::service::threads::GENERAL_THREAD,
        crate::service::threads::human_message(text),
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the replay made that later steps and tests look for.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Asset id per piece file name.
    pub work: BTreeMap<&'static str, String>,
    /// The billboard's second version, waiting for you.
    pub v2: Option<String>,
}

type Drawn = Vec<(Piece, Vec<u8>)>;

fn draw(pieces: Vec<Piece>) -> Result<Drawn, String> {
    let kept = crate::config::cache_dir().map(|d| d.join("demo-art"));
    pieces
        .into_iter()
        .map(|p| art::render_kept(&p, kept.as_deref()).map(|bytes| (p, bytes)))
        .collect()
}

fn joined(drawing: std::thread::JoinHandle<Result<Drawn, String>>) -> Result<Drawn> {
    drawing
        .join()
        .map_err(|_| anyhow::anyhow!("drawing the demo images failed"))?
        .map_err(|e| anyhow::anyhow!("drawing a demo image: {e}"))
}

/// Six weeks ago: the lead sets up the studio.
fn setup(actor: &mut Actor, home: &Path, at: Timestamp) -> Result<()> {
    let hub = actor.at(at);
    hub.add_member(YOU.new_member())?;
    for t in TEAM.iter().chain(std::iter::once(&AGENT)) {
        hub.add_member(t.new_member())?;
    }
    let palette: Vec<String> = art::BRAND_PALETTE.iter().map(|c| (*c).to_owned()).collect();
    hub.set_brand_palette(&palette)?;
    let hub = actor.at(after(at, 2.0));
    super::add_guidelines(hub, home)?;
    Ok(())
}

/// Requesters file their briefs, each in the order they filed them, and
/// say a word on some.
fn file_briefs(actor: &mut Actor, now: Timestamp) -> Result<()> {
    let who = &actor.handle;
    {
        let mut events: Vec<(Timestamp, Event)> = Vec::new();
        for def in BRIEFS.iter().filter(|d| d.requester == *who) {
            events.push((ago(now, def.age), Event::File(def)));
        }
        for &(by, title, hours, text) in COMMENTS {
            let def = brief_def(title)?;
            if by == *who && def.requester == *who {
                events.push((after(ago(now, def.age), hours), Event::Comment(title, text)));
            }
        }
        events.sort_by_key(|(t, _)| *t);
        let mut filed: BTreeMap<&str, String> = BTreeMap::new();
        for (at, event) in events {
            let hub = actor.at(at);
            match event {
                Event::File(def) => {
                    let brief = hub.add_brief(new_brief(def, now))?;
                    filed.insert(def.title, brief.id);
                }
                Event::Comment(title, text) => {
                    if let Some(id) = filed.get(title) {
                        hub.comment_on_brief(id, text)?;
                    }
                }
            }
        }
    }
    Ok(())
}

enum Event {
    File(&'static DemoBrief),
    Comment(&'static str, &'static str),
}

fn new_brief(def: &DemoBrief, now: Timestamp) -> crate::service::NewBrief {
    let due = (now + SignedDuration::from_hours(24 * def.due))
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date()
        .to_string();
    let mut new = crate::service::NewBrief {
        title: def.title.to_owned(),
        priority: Some(def.priority.to_owned()),
        due: Some(due),
        ..crate::service::NewBrief::default()
    };
    if def.complete {
        new.objective = Some("Grow qualified trials from creative teams".to_owned());
        new.audience = Some("Design and marketing leads at mid-size companies".to_owned());
        new.key_message = Some("Your whole team, one hub, every time zone".to_owned());
        new.deliverables = vec![
            "linkedin:1200x627".to_owned(),
            "instagram:1080x1350*3".to_owned(),
        ];
    }
    new
}

/// Brief ids by title, as a replica sees them.
fn brief_ids(hub: &Hub) -> Result<BTreeMap<&'static str, String>> {
    let briefs = hub.briefs(&BriefFilter::default())?;
    let mut ids = BTreeMap::new();
    for def in BRIEFS {
        if let Some(found) = briefs.iter().find(|b| b.title == def.title) {
            ids.insert(def.title, found.id.clone());
        }
    }
    Ok(ids)
}

fn id_of<'a>(ids: &'a BTreeMap<&'static str, String>, title: &str) -> Result<&'a str> {
    ids.get(title)
        .map(String::as_str)
        .with_context(|| format!("the demo brief “{title}” was not filed"))
}

/// The lead assigns and moves each brief along its life, in time order,
/// and comments where the script says so.
fn triage(actor: &mut Actor, now: Timestamp, ids: &BTreeMap<&'static str, String>) -> Result<()> {
    enum Step {
        Assign(&'static str, &'static str),
        Move(&'static str, BriefStatus),
        Comment(&'static str, &'static str),
        File(&'static DemoBrief),
    }
    let mut steps: Vec<(Timestamp, Step)> = Vec::new();
    for def in BRIEFS.iter().filter(|d| d.requester != YOU.handle) {
        let filed = ago(now, def.age);
        let path = super::path_to(def.status);
        // The moves spread over the first three quarters of its life.
        let span = def.age * 0.75;
        let mut assigned = def.assignee.is_empty();
        for (i, status) in path.iter().enumerate() {
            let at = ago(
                now,
                def.age - span * (i + 1) as f64 / (path.len() + 1) as f64,
            );
            // Assigned as the brief leaves intake.
            if !assigned && !matches!(status, BriefStatus::Intake | BriefStatus::Draft) {
                steps.push((at, Step::Assign(def.title, def.assignee)));
                assigned = true;
            }
            steps.push((after(at, 0.01), Step::Move(def.title, *status)));
        }
        if !assigned {
            steps.push((after(filed, 1.0), Step::Assign(def.title, def.assignee)));
        }
    }
    for &(by, title, hours, text) in COMMENTS {
        if by == YOU.handle {
            steps.push((
                after(ago(now, brief_def(title)?.age), hours),
                Step::Comment(title, text),
            ));
        }
    }
    // Your own drafts.
    for def in BRIEFS.iter().filter(|d| d.requester == YOU.handle) {
        steps.push((ago(now, def.age), Step::File(def)));
    }
    steps.sort_by_key(|(t, _)| *t);
    for (at, step) in steps {
        let hub = actor.at(at);
        match step {
            Step::File(def) => {
                hub.add_brief(new_brief(def, now))?;
            }
            Step::Assign(title, who) => {
                hub.assign_brief(id_of(ids, title)?, who, false)?;
            }
            Step::Move(title, status) => {
                // The lead moves briefs on even with open questions.
                hub.move_brief(id_of(ids, title)?, status.as_str(), true)?;
            }
            Step::Comment(title, text) => hub.comment_on_brief(id_of(ids, title)?, text)?,
        }
    }
    Ok(())
}

/// The agent asks the requesters of incomplete briefs what is missing,
/// minutes after they were filed (the intake rules: no model in the past).
fn intake_questions(
    actor: &mut Actor,
    now: Timestamp,
    ids: &BTreeMap<&'static str, String>,
) -> Result<()> {
    let mut open: Vec<&DemoBrief> = BRIEFS
        .iter()
        .filter(|d| !d.complete && d.requester != YOU.handle)
        .collect();
    open.sort_by(|a, b| b.age.total_cmp(&a.age));
    let cancel = tokio_util::sync::CancellationToken::new();
    for def in open {
        let hub = actor.at(after(ago(now, def.age), 0.1));
        crate::agent::intake::intake(hub, None, None, id_of(ids, def.title)?, &cancel)?;
    }
    Ok(())
}

/// Creatives upload their pieces to the briefs they work on, caption and
/// tag them, render the master's sizes, ask for approvals, and comment.
fn creative_work(
    actor: &mut Actor,
    home: &Path,
    now: Timestamp,
    ids: &BTreeMap<&'static str, String>,
    drawn: Drawn,
    uploaded: Vec<(Piece, String)>,
) -> Result<BTreeMap<&'static str, String>> {
    enum Step {
        Upload(Piece, Vec<u8>),
        Link(Piece, String),
        Comment(&'static str, &'static str),
    }
    let who = actor.handle;
    let mut steps: Vec<(Timestamp, Step)> = Vec::new();
    for (piece, bytes) in drawn {
        if piece.role == ArtRole::Version2 {
            continue; // uploaded after the reviewer asked for changes
        }
        steps.push((upload_time(now, &piece)?, Step::Upload(piece, bytes)));
    }
    for (piece, id) in uploaded {
        let at = after(upload_time(now, &piece)?, 0.02);
        steps.push((at, Step::Link(piece, id)));
    }
    for &(by, title, hours, text) in COMMENTS {
        if by == who {
            let at = after(ago(now, brief_def(title)?.age), hours);
            steps.push((at, Step::Comment(title, text)));
        }
    }
    let mut work = BTreeMap::new();
    steps.sort_by_key(|(t, _)| *t);
    let drafts = home_of(home, who).join("work");
    std::fs::create_dir_all(&drafts).with_context(|| format!("creating {}", drafts.display()))?;
    for (at, step) in steps {
        let hub = actor.at(at);
        match step {
            Step::Comment(title, text) => hub.comment_on_brief(id_of(ids, title)?, text)?,
            Step::Link(piece, id) => {
                hub.commit(vec![(
                    EntityRef::new(EntityKind::Asset, id.clone()),
                    Change::Set(BTreeMap::from([(
                        "brief".to_owned(),
                        json!(id_of(ids, piece.brief)?),
                    )])),
                )])?;
                if let Some((title, stages)) = review_for(&piece) {
                    hub.request_approval(
                        title,
                        Subject::AssetVersion {
                            asset: id.clone(),
                            version: 1,
                        },
                        stages,
                    )?;
                }
                work.insert(piece.file_name, id);
            }
            Step::Upload(piece, bytes) => {
                let brief = id_of(ids, piece.brief)?;
                let id = upload(hub, &drafts, &piece, &bytes, Some(brief), None)?;
                if let Some((title, stages)) = review_for(&piece) {
                    hub.request_approval(
                        title,
                        Subject::AssetVersion {
                            asset: id.clone(),
                            version: 1,
                        },
                        stages,
                    )?;
                }
                work.insert(piece.file_name, id);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&drafts);
    Ok(work)
}

/// When a piece was uploaded: in the second half of its brief's life so far.
fn upload_time(now: Timestamp, piece: &Piece) -> Result<Timestamp> {
    Ok(ago(now, brief_def(piece.brief)?.age * upload_point(piece)))
}

/// The master goes in before its brief reaches its maker: imported,
/// captioned and tagged, its sizes rendered; linked to the brief later.
fn upload_master(
    actor: &mut Actor,
    home: &Path,
    now: Timestamp,
    piece: &Piece,
    bytes: &[u8],
) -> Result<String> {
    let dir = home_of(home, actor.handle).join("master");
    let hub = actor.at(upload_time(now, piece)?);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let id = upload(hub, &dir, piece, bytes, None, None)?;
    hub.render_renditions(
        &id,
        &["all".to_owned()],
        &dir.join("renditions"),
        &RenditionOptions::default(),
    )?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(id)
}

/// How far back in a brief's life (as a share of its age) a piece lands.
fn upload_point(piece: &Piece) -> f64 {
    match piece.role {
        ArtRole::Version1 => 0.3,
        ArtRole::DupeB => 0.35,
        ArtRole::DupeA => 0.4,
        _ => 0.45,
    }
}

/// Imports one drawn piece as its maker, captions and tags it.
fn upload(
    hub: &mut Hub,
    dir: &Path,
    piece: &Piece,
    bytes: &[u8],
    brief: Option<&str>,
    version_of: Option<String>,
) -> Result<String> {
    let path = dir.join(piece.file_name);
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    let report = hub.import_assets(
        std::slice::from_ref(&path),
        &ImportOptions {
            brief: brief.map(str::to_owned),
            version_of: version_of.clone(),
        },
        |_| {},
    )?;
    if let Some((file, why)) = report.failed.first() {
        anyhow::bail!("importing the demo image {}: {why}", file.display());
    }
    let id = match version_of {
        Some(id) => id,
        None => report
            .imported
            .first()
            .cloned()
            .with_context(|| format!("the demo image {} was not imported", piece.file_name))?,
    };
    if report.new_versions.is_empty() {
        // Titled as a person would, not as the file is named.
        let title = crate::service::assets::title_from(Path::new(piece.file_name));
        let mut chars = title.chars();
        let title: String = chars
            .next()
            .map(|c| c.to_uppercase().chain(chars).collect())
            .unwrap_or_default();
        hub.commit(vec![(
            EntityRef::new(EntityKind::Asset, id.clone()),
            Change::Set(BTreeMap::from([("title".to_owned(), json!(title))])),
        )])?;
    }
    hub.caption_asset(&id, piece.caption)?;
    let tags: Vec<String> = piece.tags.iter().map(|t| format!("+{t}")).collect();
    hub.tag_asset(&id, &tags)?;
    let _ = std::fs::remove_file(&path);
    Ok(id)
}

fn stage(name: &str, reviewers: &[&str]) -> Stage {
    Stage {
        name: name.to_owned(),
        reviewers: reviewers.iter().map(|r| (*r).to_owned()).collect(),
        deadline: None,
        mode: StageMode::Decide,
    }
}

/// The approval a creative asks for on a piece, if any.
fn review_for(piece: &Piece) -> Option<(&'static str, Vec<Stage>)> {
    match (piece.role, piece.brief) {
        (ArtRole::Version1, _) => Some(("Lisbon metro billboard", vec![stage("brand", &["maya"])])),
        (ArtRole::Master, _) => Some((
            "Northwind case study hero",
            vec![stage("art direction", &[YOU.handle])],
        )),
        (ArtRole::OffPalette, _) => {
            Some(("Launch week reel cover", vec![stage("brand", &["maya"])]))
        }
        (ArtRole::DupeA, _) => Some(("Customer stories tile 1", vec![stage("brand", &["maya"])])),
        (_, "Black Friday banner set") => {
            Some(("Black Friday banners", vec![stage("brand", &["maya"])]))
        }
        (_, "Pricing page illustrations") => Some((
            "Pricing spot illustrations",
            vec![stage("brand", &["maya"])],
        )),
        (_, "Podcast cover art") => Some(("Podcast cover", vec![stage("brand", &["maya"])])),
        _ => None,
    }
}

/// The agent's text drafts, each waiting for a human.
fn ai_drafts(actor: &mut Actor, home: &Path, now: Timestamp) -> Result<()> {
    let scratch = home_of(home, AGENT.handle).join("drafts");
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    for (i, &(id, title, text)) in AI_DRAFTS.iter().enumerate() {
        let hub = actor.at(ago(now, 0.2 - 0.05 * i as f64));
        let file = scratch.join(format!("{id}.md"));
        std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
        let sha = crate::sync::blobs::store_local(&hub.home(), &file)?;
        let entity = EntityRef::new(EntityKind::Asset, id);
        hub.commit(vec![
            (
                entity.clone(),
                Change::Set(BTreeMap::from([
                    ("title".to_owned(), json!(title)),
                    ("kind".to_owned(), json!("document")),
                    ("created_by".to_owned(), json!(AGENT.handle)),
                ])),
            ),
            (
                entity,
                Change::Append(json!({
                    "blob_sha256": sha,
                    "size": text.len(),
                    "mime": "text/markdown",
                    "provenance": {"by": "ai", "provider": "spoke", "model": "demo-writer", "prompt_sha256": ""},
                })),
            ),
        ])?;
        hub.request_approval(
            &format!("{title} (AI draft)"),
            Subject::AssetVersion {
                asset: id.to_owned(),
                version: 1,
            },
            vec![stage("copy", &[YOU.handle]), stage("brand", &["maya"])],
        )?;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// Reviewers decide what they were asked, a few days before now.
fn decisions(
    actor: &mut Actor,
    now: Timestamp,
    work: &BTreeMap<&'static str, String>,
) -> Result<()> {
    let pieces = art::catalogue();
    let mut steps: Vec<(Timestamp, &'static str, String, Decision, &'static str)> = Vec::new();
    for piece in &pieces {
        let Some(asset) = work.get(piece.file_name) else {
            continue;
        };
        let def = brief_def(piece.brief)?;
        let at = ago(now, def.age * upload_point(piece) * 0.8);
        let decision = match (piece.role, piece.brief) {
            (ArtRole::Version1, _) => Some((
                "maya",
                Decision::ChangesRequested,
                "The headline fights the platform signage. Shorter line, logo left.",
            )),
            (ArtRole::DupeA, _) => Some(("maya", Decision::Approved, "Lovely. Faces work.")),
            (_, "Black Friday banner set") => Some(("maya", Decision::Approved, "Ship it.")),
            (_, "Pricing page illustrations") => Some((
                "maya",
                Decision::ApprovedWithChanges,
                "Approved; nudge the teal one stop darker for contrast.",
            )),
            (_, "Podcast cover art") => Some(("maya", Decision::Approved, "Reads well at 55px.")),
            _ => None,
        };
        if let Some((who, decision, comment)) = decision {
            steps.push((at, who, asset.clone(), decision, comment));
        }
    }
    for &(by, title, hours, text) in COMMENTS {
        let def = brief_def(title)?;
        if by == "maya" && def.requester != "maya" {
            steps.push((
                after(ago(now, def.age), hours),
                "maya",
                format!("comment:{title}"),
                Decision::Approved,
                text,
            ));
        }
    }
    steps.sort_by_key(|s| s.0);
    for (at, _, target, decision, comment) in steps {
        let hub = actor.at(at);
        if let Some(title) = target.strip_prefix("comment:") {
            let id = brief_ids(hub)?
                .get(title)
                .cloned()
                .with_context(|| format!("no brief “{title}”"))?;
            hub.comment_on_brief(&id, comment)?;
            continue;
        }
        let request = hub
            .approvals(false)?
            .into_iter()
            .find(|a| a.subject.as_ref().and_then(subject_asset) == Some(target.as_str()))
            .with_context(|| format!("no approval request for asset {target}"))?;
        hub.decide(&request.id, decision, Some(comment))?;
    }
    Ok(())
}

fn subject_asset(subject: &Subject) -> Option<&str> {
    match subject {
        Subject::AssetVersion { asset, .. } => Some(asset),
        _ => None,
    }
}

/// Tom answers the changes with a second version, and asks you.
fn second_version(
    actor: &mut Actor,
    home: &Path,
    now: Timestamp,
    ids: &BTreeMap<&'static str, String>,
    work: &BTreeMap<&'static str, String>,
) -> Result<Option<String>> {
    let pieces = art::catalogue();
    let (Some(v1), Some(v2)) = (
        pieces.iter().find(|p| p.role == ArtRole::Version1),
        pieces.iter().find(|p| p.role == ArtRole::Version2),
    ) else {
        return Ok(None);
    };
    let Some(asset) = work.get(v1.file_name) else {
        return Ok(None);
    };
    let bytes = art::render(v2).map_err(|e| anyhow::anyhow!("drawing a demo image: {e}"))?;
    let hub = actor.at(ago(now, 0.25));
    let dir = home_of(home, v2.by).join("work");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    upload(
        hub,
        &dir,
        v2,
        &bytes,
        Some(id_of(ids, v2.brief)?),
        Some(asset.clone()),
    )?;
    let _ = std::fs::remove_dir_all(&dir);
    let version = hub.asset(asset)?.versions.len().try_into().unwrap_or(2);
    hub.request_approval(
        "Lisbon metro billboard v2",
        Subject::AssetVersion {
            asset: asset.clone(),
            version,
        },
        vec![stage("art direction", &[YOU.handle])],
    )?;
    let hub = actor.at(ago(now, 0.24));
    hub.comment_on_brief(
        id_of(ids, v2.brief)?,
        "v2 is up for Ana: shorter line, logo moved left, the coral panel carries the CTA now.",
    )?;
    Ok(Some(asset.clone()))
}

/// The agent proposes filling in the spring launch brief from the kickoff.
fn proposal(actor: &mut Actor, now: Timestamp) -> Result<()> {
    let hub = actor.at(ago(now, 0.1));
    let Some(spring) = hub
        .briefs(&BriefFilter::default())?
        .into_iter()
        .find(|b| b.title.starts_with("Spring launch"))
    else {
        return Ok(());
    };
    hub.propose(
        crate::model::proposal::ProposalKind::BriefUpdate,
        json!({"brief": spring.id, "fields": {
            "audience": "Creative leads at 50-500 person companies",
            "key_message": "Your whole team, one hub, every time zone"
        }}),
        "Lucia answered two clarifying questions in the kickoff thread",
        vec![YOU.handle.into()],
    )?;
    Ok(())
}
