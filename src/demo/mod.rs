//! The demo hub: a studio spread over six time zones with briefs in every
//! state of the lifecycle, so a newcomer sees a working hub at once. It is
//! seeded through the services; `spoke --demo` itself lives in the CLI.

use crate::model::brief::BriefStatus;
use crate::model::member::Role;
use crate::service::{Hub, NewBrief, NewMember, replica_path};
use anyhow::{Context, Result};
use std::path::Path;

pub mod art;

struct DemoMember {
    handle: &'static str,
    name: &'static str,
    tz: &'static str,
    roles: &'static [Role],
    hours: &'static str,
    skills: &'static [&'static str],
}

const MEMBERS: &[DemoMember] = &[
    DemoMember {
        handle: "kenji",
        name: "Kenji Watanabe",
        tz: "Asia/Tokyo",
        roles: &[Role::Creative],
        hours: "09:30-18:00",
        skills: &["motion", "3d"],
    },
    DemoMember {
        handle: "maya",
        name: "Maya Brooks",
        tz: "America/New_York",
        roles: &[Role::Reviewer, Role::Lead],
        hours: "08:30-17:00",
        skills: &["brand", "copy"],
    },
    DemoMember {
        handle: "priya",
        name: "Priya Raman",
        tz: "Asia/Kolkata",
        roles: &[Role::Creative],
        hours: "10:00-19:00",
        skills: &["illustration", "social"],
    },
    DemoMember {
        handle: "tom",
        name: "Tom Walsh",
        tz: "Australia/Sydney",
        roles: &[Role::Creative],
        hours: "09:00-17:00",
        skills: &["video", "edit"],
    },
    DemoMember {
        handle: "lucia",
        name: "Lucia Ferreira",
        tz: "America/Sao_Paulo",
        roles: &[Role::Requester],
        hours: "09:00-18:00",
        skills: &["marketing"],
    },
    DemoMember {
        handle: "scout",
        name: "Scout (agent)",
        tz: "UTC",
        roles: &[Role::Agent],
        hours: "00:00-23:59",
        skills: &["intake", "search"],
    },
];

/// (title, status, priority, assignee, due day offset, complete?)
const BRIEFS: &[(&str, BriefStatus, &str, &str, i64, bool)] = &[
    (
        "Spring launch hero film",
        BriefStatus::Draft,
        "p1",
        "",
        40,
        false,
    ),
    (
        "Recruiting page refresh",
        BriefStatus::Draft,
        "p3",
        "",
        60,
        false,
    ),
    (
        "Partner co-marketing one-pager",
        BriefStatus::Draft,
        "p2",
        "",
        21,
        false,
    ),
    (
        "Q1 webinar series visuals",
        BriefStatus::Intake,
        "p2",
        "",
        18,
        false,
    ),
    (
        "App store screenshots v5",
        BriefStatus::Intake,
        "p1",
        "",
        9,
        true,
    ),
    (
        "Annual report cover",
        BriefStatus::Intake,
        "p2",
        "",
        45,
        true,
    ),
    (
        "LinkedIn carousel: customer stories",
        BriefStatus::Ready,
        "p1",
        "priya",
        7,
        true,
    ),
    (
        "Holiday email header",
        BriefStatus::Ready,
        "p0",
        "kenji",
        3,
        true,
    ),
    (
        "Trade show booth graphics",
        BriefStatus::Ready,
        "p2",
        "tom",
        30,
        true,
    ),
    (
        "Product tour motion loop",
        BriefStatus::InProgress,
        "p1",
        "kenji",
        5,
        true,
    ),
    (
        "Instagram reels: launch week",
        BriefStatus::InProgress,
        "p0",
        "tom",
        2,
        true,
    ),
    (
        "Brand guidelines v3 illustrations",
        BriefStatus::InProgress,
        "p2",
        "priya",
        25,
        true,
    ),
    (
        "Case study: Northwind Logistics",
        BriefStatus::InReview,
        "p1",
        "priya",
        4,
        true,
    ),
    (
        "Out-of-home billboard, Lisbon metro",
        BriefStatus::InReview,
        "p1",
        "tom",
        6,
        true,
    ),
    (
        "Newsletter template refresh",
        BriefStatus::InReview,
        "p3",
        "kenji",
        12,
        true,
    ),
    (
        "Pricing page illustrations",
        BriefStatus::Approved,
        "p2",
        "priya",
        1,
        true,
    ),
    (
        "Sales deck master slides",
        BriefStatus::Approved,
        "p1",
        "kenji",
        2,
        true,
    ),
    (
        "Podcast cover art",
        BriefStatus::Approved,
        "p3",
        "tom",
        8,
        true,
    ),
    (
        "Black Friday banner set",
        BriefStatus::Delivered,
        "p0",
        "tom",
        -3,
        true,
    ),
    (
        "Onboarding email illustrations",
        BriefStatus::Delivered,
        "p2",
        "priya",
        -10,
        true,
    ),
    (
        "Conference sponsor logo wall",
        BriefStatus::Delivered,
        "p3",
        "kenji",
        -20,
        true,
    ),
    (
        "Rebrand teaser (paused by legal)",
        BriefStatus::OnHold,
        "p1",
        "kenji",
        35,
        true,
    ),
    (
        "Localized ads for Japan",
        BriefStatus::OnHold,
        "p2",
        "",
        28,
        false,
    ),
    (
        "Print catalogue 2027",
        BriefStatus::OnHold,
        "p3",
        "",
        90,
        false,
    ),
    (
        "Sponsored post for discontinued SKU",
        BriefStatus::Cancelled,
        "p2",
        "",
        15,
        true,
    ),
    (
        "Mascot exploration",
        BriefStatus::Cancelled,
        "p3",
        "",
        50,
        false,
    ),
    (
        "TikTok launch challenge",
        BriefStatus::Cancelled,
        "p1",
        "",
        10,
        false,
    ),
];

/// Starts the embedded relay, joins (and on first run seeds) the demo hub
/// and syncs. Returns the hub URL and the running relay.
pub async fn start_and_sync(home: &Path) -> Result<(String, spoke_relay::server::Running)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("opening a loopback port for the demo relay")?;
    let config = spoke_relay::relay::RelayConfig::new(home.join("relay"));
    let running = spoke_relay::server::start(listener, config).await?;
    let outcome = async {
        if replica_path(home).exists() {
            // A kept demo: same hub, new port.
            let replica = crate::store::Replica::open(&replica_path(home))?;
            let hub_id = replica.meta()?.hub_id.unwrap_or_default();
            let url = format!("ws://{}/v1/hubs/{hub_id}", running.addr);
            replica.update_meta(|m| m.hub_url = Some(url.clone()))?;
            drop(replica);
            crate::sync::sync_once(home).await?;
            return Ok(url);
        }
        let registry = &running.relay.registry;
        let record = registry.create_hub("Northwind Studio")?;
        let (token, _) = registry.issue(&record.id, "ana", "lead", None)?;
        let url = format!("ws://{}/v1/hubs/{}", running.addr, record.id);
        crate::sync::join(home, &url, &token, None).await?;
        let mut hub = Hub::open(home, None)?;
        seed(&mut hub)?;
        seed_approvals(&mut hub, home)?;
        seed_knowledge(&mut hub, home)?;
        drop(hub);
        crate::sync::sync_once(home).await?;
        anyhow::Ok(url)
    }
    .await;
    match outcome {
        Ok(url) => Ok((url, running)),
        Err(e) => {
            let _ = running.shutdown().await;
            Err(e)
        }
    }
}

/// Fills a hub with the demo team and briefs, acting as its lead `ana`.
pub fn seed(hub: &mut Hub) -> Result<()> {
    let mut ana = NewMember::new("ana", "Europe/Lisbon");
    ana.name = Some("Ana Costa".to_owned());
    ana.roles = vec![Role::Lead];
    ana.hours = Some("09:00-17:30".to_owned());
    ana.skills = vec!["art-direction".to_owned()];
    if hub.me()?.is_none() {
        hub.add_member(ana)?;
    }
    for m in MEMBERS {
        let mut new = NewMember::new(m.handle, m.tz);
        new.name = Some(m.name.to_owned());
        new.roles = m.roles.to_vec();
        new.hours = Some(m.hours.to_owned());
        new.skills = m.skills.iter().map(|s| (*s).to_owned()).collect();
        hub.add_member(new)?;
    }
    let today = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC);
    for &(title, status, priority, assignee, days, complete) in BRIEFS {
        let due = today
            .date()
            .checked_add(jiff::Span::new().days(days))
            .map(|d| d.to_string())
            .ok();
        let mut new = NewBrief {
            title: title.to_owned(),
            priority: Some(priority.to_owned()),
            requester: Some("lucia".to_owned()),
            due,
            ..NewBrief::default()
        };
        if complete {
            new.objective = Some("Grow qualified trials from creative teams".to_owned());
            new.audience = Some("Design and marketing leads at mid-size companies".to_owned());
            new.key_message = Some("Your whole team, one hub, every time zone".to_owned());
            new.deliverables = vec![
                "linkedin:1200x627".to_owned(),
                "instagram:1080x1350*3".to_owned(),
            ];
        }
        let brief = hub.add_brief(new)?;
        if !assignee.is_empty() {
            hub.assign_brief(&brief.id, assignee, false)?;
        }
        for step in path_to(status) {
            // The demo's lead moves briefs on even with open questions.
            hub.move_brief(&brief.id, step.as_str(), true)?;
        }
    }
    Ok(())
}

/// The studio's guidelines, shipped with the demo so search and the
/// knowledge base have something to find.
const DEMO_GUIDELINES: [(&str, &str); 3] = [
    (
        "brand-voice.md",
        include_str!("../../tests/fixtures/retrieval/kb/brand-voice.md"),
    ),
    (
        "social-media-specs.md",
        include_str!("../../tests/fixtures/retrieval/kb/social-media-specs.md"),
    ),
    (
        "accessibility.md",
        include_str!("../../tests/fixtures/retrieval/kb/accessibility.md"),
    ),
];

/// Guidelines in the knowledge base and a few comments on briefs.
pub fn seed_knowledge(hub: &mut Hub, home: &Path) -> Result<()> {
    let dir = home.join("demo-guidelines");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files = Vec::new();
    for (name, text) in DEMO_GUIDELINES {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        files.push(path);
    }
    hub.add_knowledge(&files)?;
    let briefs = hub.briefs(&crate::service::BriefFilter::default())?;
    let comments = [
        "Client wants the hero shot at golden hour; keep text out of the top 250px for Stories.",
        "Legal flagged the claim in the second frame, we need the substantiation before we ship.",
        "Can we get alt text written for every image before this goes to review?",
    ];
    for (brief, text) in briefs.iter().zip(comments) {
        hub.comment_on_brief(&brief.id, text)?;
    }
    Ok(())
}

/// Copy drafts waiting for decisions: one on Ana, one further along, one
/// already decided, so the approvals pane has something to show.
pub fn seed_approvals(hub: &mut Hub, home: &Path) -> Result<()> {
    use crate::model::approval::{Decision, Stage, StageMode, Subject};
    use crate::model::{Change, EntityKind, EntityRef};
    use serde_json::json;
    // (asset id, title, versions as (text, made by AI))
    type Draft<'a> = (&'a str, &'a str, &'a [(&'a str, bool)]);
    let drafts: [Draft; 3] = [
        (
            "a-holiday1",
            "Holiday email copy",
            &[(
                "# Holiday hours\nOur studio rests **24-26 Dec**; replies resume on the 29th.",
                true,
            )],
        ),
        (
            "a-pricing1",
            "Pricing page headline",
            &[
                ("Plans for every team", false),
                ("Plans that grow with *every* time zone", true),
            ],
        ),
        (
            "a-podcast1",
            "Podcast episode blurb",
            &[(
                "Episode 12: shipping creative work across nine time zones.",
                false,
            )],
        ),
    ];
    let scratch = home.join("demo-drafts");
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    for (id, title, versions) in drafts {
        let entity = EntityRef::new(EntityKind::Asset, id);
        let mut changes = vec![(
            entity.clone(),
            Change::Set(std::collections::BTreeMap::from([
                ("title".to_owned(), json!(title)),
                ("kind".to_owned(), json!("document")),
            ])),
        )];
        for (n, (text, by_ai)) in versions.iter().enumerate() {
            let file = scratch.join(format!("{id}-{n}.md"));
            std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
            let sha = crate::sync::blobs::store_local(home, &file)?;
            let provenance = if *by_ai {
                json!({"by": "ai", "provider": "local", "model": "demo", "prompt_sha256": ""})
            } else {
                json!({"by": "human"})
            };
            changes.push((
                entity.clone(),
                Change::Append(json!({
                    "blob_sha256": sha,
                    "size": text.len(),
                    "mime": "text/markdown",
                    "provenance": provenance,
                })),
            ));
        }
        hub.commit(changes)?;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let stage = |name: &str, reviewers: &[&str]| Stage {
        name: name.to_owned(),
        reviewers: reviewers.iter().map(|r| (*r).to_owned()).collect(),
        deadline: None,
        mode: StageMode::Decide,
    };
    let asset = |id: &str, version: u32| Subject::AssetVersion {
        asset: id.to_owned(),
        version,
    };
    hub.request_approval(
        "Holiday email copy (AI draft)",
        asset("a-holiday1", 1),
        vec![stage("copy", &["ana"]), stage("brand", &["maya"])],
    )?;
    hub.request_approval(
        "Pricing headline v2 (AI draft)",
        asset("a-pricing1", 2),
        vec![stage("brand", &["maya", "ana"])],
    )?;
    let done = hub.request_approval(
        "Podcast blurb",
        asset("a-podcast1", 1),
        vec![stage("copy", &["ana"])],
    )?;
    hub.decide(&done.id, Decision::Approved, Some("Ship it"))?;
    // A proposed brief update waiting for Ana, with its field-by-field diff.
    let spring = hub
        .briefs(&crate::service::BriefFilter::default())?
        .into_iter()
        .find(|b| b.title.starts_with("Spring launch"));
    if let Some(b) = spring {
        hub.propose(
            crate::model::proposal::ProposalKind::BriefUpdate,
            json!({"brief": b.id, "fields": {
                "audience": "Creative leads at 50-500 person companies",
                "key_message": "Your whole team, one hub, every time zone"
            }}),
            "Lucia answered two clarifying questions in the kickoff thread",
            vec!["ana".into()],
        )?;
    }
    Ok(())
}

/// The shortest lifecycle path from draft to `target` (excluding draft).
fn path_to(target: BriefStatus) -> Vec<BriefStatus> {
    let mut prev: Vec<(BriefStatus, BriefStatus)> = Vec::new();
    let mut queue = std::collections::VecDeque::from([BriefStatus::Draft]);
    let mut seen = vec![BriefStatus::Draft];
    while let Some(s) = queue.pop_front() {
        if s == target {
            break;
        }
        for &n in s.next_states() {
            if !seen.contains(&n) {
                seen.push(n);
                prev.push((n, s));
                queue.push_back(n);
            }
        }
    }
    let mut path = Vec::new();
    let mut at = target;
    while at != BriefStatus::Draft {
        path.push(at);
        match prev.iter().find(|(n, _)| *n == at) {
            Some(&(_, p)) => at = p,
            None => break,
        }
    }
    path.reverse();
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_a_lifecycle_path_from_draft() {
        assert!(path_to(BriefStatus::Draft).is_empty());
        let delivered = path_to(BriefStatus::Delivered);
        assert_eq!(delivered.last(), Some(&BriefStatus::Delivered));
        assert!(delivered.contains(&BriefStatus::Approved));
        for s in BriefStatus::ALL {
            let p = path_to(s);
            let mut at = BriefStatus::Draft;
            for step in p {
                assert!(at.check_transition(step).is_ok());
                at = step;
            }
            assert_eq!(at, s);
        }
    }
}
