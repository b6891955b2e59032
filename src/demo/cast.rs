//! The demo's members as real clients of the relay: each has its own home,
//! replica and token, so everything they write is an ordinary op the
//! relay's rules judge, authored by them.

use super::team::{AGENT, TEAM, Teammate, YOU};
use crate::service::Hub;
use anyhow::{Context, Result};
use jiff::Timestamp;
use std::path::{Path, PathBuf};

/// Where a teammate's replica lives inside the demo's home (you: the home).
pub fn home_of(home: &Path, handle: &str) -> PathBuf {
    if handle == YOU.handle {
        home.to_path_buf()
    } else {
        home.join("team").join(handle)
    }
}

/// Everyone the demo plays, besides you.
pub fn others() -> impl Iterator<Item = &'static Teammate> {
    TEAM.iter().chain(std::iter::once(&AGENT))
}

/// One member the demo plays: its replica and the time it last acted.
pub struct Actor {
    pub handle: &'static str,
    hub: Hub,
    last: Option<Timestamp>,
    /// Times it was asked to act before its own last act (the replay's
    /// clock stamps those just after it instead): a flaw in the script.
    out_of_order: Vec<String>,
}

impl Actor {
    /// The replica, its clock set to `at`.
    pub fn at(&mut self, at: Timestamp) -> &mut Hub {
        if let Some(before) = self.last
            && at < before
        {
            self.out_of_order
                .push(format!("@{} at {at} after acting at {before}", self.handle));
        }
        self.last = Some(at);
        self.hub.pin_clock(Some(at));
        &mut self.hub
    }
}

/// The open replicas of the demo's members, each with a clock that only
/// moves forward.
pub struct Cast {
    home: PathBuf,
    actors: Vec<Actor>,
}

impl Cast {
    /// Gives every teammate a token for `hub_id` and joins it from its own
    /// home, all at once. You must have joined already.
    pub async fn join(
        home: &Path,
        registry: &spoke_relay::auth::Registry,
        hub_id: &str,
        url: &str,
    ) -> Result<Cast> {
        let joins = others().map(|t| {
            let member_home = home_of(home, t.handle);
            let token = registry
                .issue(hub_id, t.handle, t.token_role(), None)
                .with_context(|| format!("issuing a token for @{}", t.handle));
            async move {
                std::fs::create_dir_all(&member_home)
                    .with_context(|| format!("creating {}", member_home.display()))?;
                crate::sync::join(&member_home, url, &token?.0, None)
                    .await
                    .with_context(|| format!("@{} joining the demo hub", t.handle))?;
                anyhow::Ok(())
            }
        });
        for joined in futures_util::future::join_all(joins).await {
            joined?;
        }
        Cast::open(home)
    }

    /// Opens the replicas of a cast that joined before.
    pub fn open(home: &Path) -> Result<Cast> {
        let mut actors = Vec::new();
        for t in std::iter::once(&YOU).chain(others()) {
            let hub = Hub::open(&home_of(home, t.handle), Some(t.tz))
                .with_context(|| format!("opening @{}'s demo replica", t.handle))?;
            actors.push(Actor {
                handle: t.handle,
                hub,
                last: None,
                out_of_order: Vec::new(),
            });
        }
        Ok(Cast {
            home: home.to_path_buf(),
            actors,
        })
    }

    /// `handle`'s replica, its clock set to `at`.
    pub fn at(&mut self, handle: &str, at: Timestamp) -> Result<&mut Hub> {
        let actor = self
            .actors
            .iter_mut()
            .find(|a| a.handle == handle)
            .with_context(|| format!("@{handle} is not in the demo team"))?;
        Ok(actor.at(at))
    }

    /// `handle`'s replica, to read.
    pub fn hub(&self, handle: &str) -> Result<&Hub> {
        self.actors
            .iter()
            .find(|a| a.handle == handle)
            .map(|a| &a.hub)
            .with_context(|| format!("@{handle} is not in the demo team"))
    }

    /// Runs `act` for each of `members` at once, each on its own replica
    /// and thread; the first error wins.
    pub fn together(
        &mut self,
        members: &[&str],
        act: impl Fn(&mut Actor) -> Result<()> + Sync,
    ) -> Result<()> {
        let act = &act;
        std::thread::scope(|s| {
            let running: Vec<_> = self
                .actors
                .iter_mut()
                .filter(|a| members.contains(&a.handle))
                .map(|a| s.spawn(move || act(a)))
                .collect();
            let mut outcome = Ok(());
            for r in running {
                let done = r
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a demo member's thread failed")));
                if outcome.is_ok() {
                    outcome = done;
                }
            }
            outcome
        })
    }

    /// Pushes what the `from` members wrote, then brings the `to` members
    /// up to date, each group in parallel.
    pub async fn exchange(&self, from: &[&str], to: &[&str]) -> Result<()> {
        for group in [from, to] {
            let syncs = group.iter().map(|handle| {
                let home = home_of(&self.home, handle);
                async move {
                    crate::sync::sync_once(&home)
                        .await
                        .with_context(|| format!("syncing @{handle}'s demo replica"))
                }
            });
            for synced in futures_util::future::join_all(syncs).await {
                synced?;
            }
        }
        Ok(())
    }

    /// Every member back on the system clock; the replicas close. Returns
    /// the acts that came out of order.
    pub fn finish(self) -> Vec<String> {
        let mut flaws = Vec::new();
        for mut a in self.actors {
            a.hub.pin_clock(None);
            flaws.append(&mut a.out_of_order);
        }
        flaws
    }
}
