//! The demo hub: a follow-the-sun studio with briefs in every state of the
//! lifecycle, images in the library, approvals waiting and decided, and a
//! team that keeps working while you watch. It is seeded through the
//! relay by its members' own replicas; `spoke --demo` itself lives in the
//! CLI.

pub mod art;
pub mod cast;
pub mod history;
pub mod live;
pub mod team;

use crate::model::brief::BriefStatus;
use crate::service::{Hub, replica_path};
use anyhow::{Context, Result};
use std::path::Path;

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
            // A kept demo: same hub, new port, for you and the team.
            let url = reopen(home, running.addr)?;
            crate::sync::sync_once(home).await?;
            return Ok(url);
        }
        let seeded = seed(home, &running).await?;
        crate::sync::sync_once(home).await?;
        let url = seeded.url;
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

/// What seeding made, for the checks that follow.
pub struct Seeded {
    pub url: String,
    pub replayed: history::Replayed,
    /// Acts the script asked of a member before its own previous act.
    pub out_of_order: Vec<String>,
}

/// Creates the demo hub on a running relay and replays its past, as you
/// and as each member of the team.
pub async fn seed(home: &Path, running: &spoke_relay::server::Running) -> Result<Seeded> {
    let registry = &running.relay.registry;
    let record = registry.create_hub("Northwind Studio")?;
    let (token, _) = registry.issue(&record.id, team::YOU.handle, "lead", None)?;
    let url = format!("ws://{}/v1/hubs/{}", running.addr, record.id);
    crate::sync::join(home, &url, &token, None).await?;
    let mut cast = cast::Cast::join(home, registry, &record.id, &url).await?;
    let replayed = history::replay(&mut cast, home, jiff::Timestamp::now()).await?;
    Ok(Seeded {
        url,
        replayed,
        out_of_order: cast.finish(),
    })
}

/// Points every replica of a kept demo at the relay's new port.
fn reopen(home: &Path, addr: std::net::SocketAddr) -> Result<String> {
    let mut url = String::new();
    for t in std::iter::once(&team::YOU).chain(cast::others()) {
        let path = replica_path(&cast::home_of(home, t.handle));
        if !path.exists() {
            continue;
        }
        let replica = crate::store::Replica::open(&path)?;
        let hub_id = replica.meta()?.hub_id.unwrap_or_default();
        let member_url = format!("ws://{addr}/v1/hubs/{hub_id}");
        replica.update_meta(|m| m.hub_url = Some(member_url.clone()))?;
        if t.handle == team::YOU.handle {
            url = member_url;
        }
    }
    Ok(url)
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

/// The studio's guidelines in the knowledge base, so search and the agent
/// have something to find.
pub(crate) fn add_guidelines(hub: &mut Hub, home: &Path) -> Result<()> {
    let dir = home.join("demo-guidelines");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files = Vec::new();
    for (name, text) in DEMO_GUIDELINES {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        files.push(path);
    }
    hub.add_knowledge(&files)?;
    let _ = std::fs::remove_dir_all(&dir);
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
