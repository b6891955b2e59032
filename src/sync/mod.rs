//! Sync with a hub's relay: join, one-shot sync, a long-running watch with
//! reconnects, and the status other processes read from the replica.

mod address;
pub mod blobs;
mod invite;
mod session;
pub(crate) mod tls;

pub use address::{HubAddress, JoinTarget};
pub use session::{Mode, RefusedByHub, Session, SyncError, SyncReport, Welcome};

use crate::model::hlc::wall_now_ms;
use crate::model::ids::new_client_id;
use crate::model::input::InputError;
use crate::service::replica_path;
use crate::store::{Replica, ReplicaMeta};
use anyhow::{Context, Result};
use serde::Serialize;
use spoke_relay::proto::Presence;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Joins the hub at `url` with `token`. `url` is the hub's own URL, or the
/// relay's base URL, in which case the relay names the token's hub. On a
/// fresh home the member identity comes from the relay; an existing replica
/// must belong to the same member and its pending ops flow to the hub on
/// this first sync.
pub async fn join(
    home: &Path,
    url: &str,
    token: &str,
    ca_file: Option<&Path>,
) -> Result<(Welcome, SyncReport)> {
    let target = HubAddress::parse_target(url)?;
    let ca_file = ca_file.map(Path::to_path_buf).or_else(env_ca_file);
    let addr = match target {
        JoinTarget::Hub(addr) => addr,
        JoinTarget::Relay { base } => {
            invite::hub_of_token(&base, token, ca_file.as_deref()).await?
        }
    };
    let path = replica_path(home);
    let existing = if path.exists() {
        Some(Arc::new(Replica::open(&path)?))
    } else {
        None
    };
    if let Some(replica) = &existing {
        let meta = replica.meta()?;
        if let Some(current) = &meta.hub_url
            && HubAddress::parse(current)
                .map(|a| a.hub != addr.hub)
                .unwrap_or(true)
        {
            return Err(InputError::new(format!(
                "this replica already belongs to hub {current}; join from a fresh --home"
            ))
            .into());
        }
    }
    let session = match Session::connect(&addr, token, 0, 0, ca_file.as_deref()).await {
        Ok(s) => s,
        Err(e @ SyncError::Refused { .. }) if e.is_fatal() => {
            let advice = match &e {
                SyncError::Refused { code, .. } if code == "unknown_hub" => format!(
                    "there is no hub {} at {}: check the URL, or pass the relay's address \
                     ({}) with the token and the relay finds the hub",
                    addr.hub, addr.base, addr.base
                ),
                _ => format!(
                    "the relay at {} did not accept this token for hub {}: ask the hub's lead \
                     for a fresh invite (`spoke-relay token issue` prints a `spoke hub join` \
                     line) and run that line as printed",
                    addr.base, addr.hub
                ),
            };
            return Err(anyhow::Error::new(e).context(advice));
        }
        Err(e) => return Err(e.into()),
    };
    let welcome = session.welcome.clone();
    // Refuse before touching anything: a replica keeps acting as its member.
    if let Some(replica) = &existing
        && let Some(me) = replica.meta()?.me
        && me != welcome.member
    {
        return Err(SyncError::WrongMember {
            token_member: welcome.member,
            replica_member: me,
        }
        .into());
    }
    let replica = match existing {
        Some(r) => r,
        None => {
            let meta = ReplicaMeta {
                me: Some(welcome.member.clone()),
                hub_id: Some(addr.hub.clone()),
                ..ReplicaMeta::new(new_client_id())
            };
            Arc::new(Replica::create(&path, &meta)?)
        }
    };
    replica.update_meta(|m| {
        m.hub_url = Some(addr.display());
        m.hub_token = Some(token.to_owned());
        m.hub_ca_file = ca_file.as_ref().map(|p| p.display().to_string());
        m.hub_id = Some(addr.hub.clone());
        // A cursor from a local-only life means nothing on this hub.
        m.epoch = 0;
        m.cursor = 0;
    })?;
    let (_stop_tx, stop) = watch::channel(false);
    let report = session.run(replica, Mode::Once, stop, None).await?;
    tracing::info!(
        hub = %welcome.hub,
        member = %welcome.member,
        role = %welcome.role,
        pulled = report.pulled,
        pushed = report.pushed,
        "joined the hub"
    );
    Ok((welcome, report))
}

/// `SPOKE_CA_FILE`: an extra CA for `wss://` relays.
fn env_ca_file() -> Option<std::path::PathBuf> {
    std::env::var_os("SPOKE_CA_FILE")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
}

/// The CA file a session should trust: the environment wins over the replica.
fn ca_for(meta: &ReplicaMeta) -> Option<std::path::PathBuf> {
    env_ca_file().or_else(|| meta.hub_ca_file.as_ref().map(std::path::PathBuf::from))
}

/// The extra CA a session with this replica's relay trusts, if any.
pub fn trusted_ca(meta: &ReplicaMeta) -> Option<std::path::PathBuf> {
    ca_for(meta)
}

/// The replica's hub connection, or a clear error if it has none.
fn connection(replica: &Replica) -> Result<(HubAddress, String, ReplicaMeta)> {
    let meta = replica.meta()?;
    let (Some(url), Some(token)) = (meta.hub_url.clone(), meta.hub_token.clone()) else {
        return Err(InputError::new(
            "this replica has not joined a hub: run `spoke hub join URL --token TOKEN`",
        )
        .into());
    };
    Ok((HubAddress::parse(&url)?, token, meta))
}

/// Connects, pushes everything pending, pulls to the head, returns.
pub async fn sync_once(home: &Path) -> Result<SyncReport> {
    let replica = Arc::new(Replica::open(&replica_path(home))?);
    let (addr, token, meta) = connection(&replica)?;
    let result = async {
        let ca = ca_for(&meta);
        let session =
            Session::connect(&addr, &token, meta.epoch, meta.cursor, ca.as_deref()).await?;
        let (_stop_tx, stop) = watch::channel(false);
        session.run(replica.clone(), Mode::Once, stop, None).await
    }
    .await;
    if let Err(e) = &result {
        tracing::warn!(url = %addr.display(), error = %e, "sync failed");
        let _ = replica.update_meta(|m| m.last_error = Some(e.to_string()));
    }
    Ok(result?)
}

/// Stays connected until `stop` turns true, reconnecting with jittered
/// exponential backoff (capped at 30 s) and resuming from the cursor. Stops
/// early on errors a retry cannot fix (bad token, wrong hub).
pub async fn watch(
    home: &Path,
    mut stop: watch::Receiver<bool>,
    presence: Option<Presence>,
    presence_sink: Option<tokio::sync::mpsc::UnboundedSender<Presence>>,
    mut on_event: impl FnMut(WatchEvent),
) -> Result<()> {
    let replica = Arc::new(Replica::open(&replica_path(home))?);
    let mut failures: u32 = 0;
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let (addr, token, meta) = connection(&replica)?;
        let mut connected_at = None;
        let attempt = async {
            let ca = ca_for(&meta);
            let mut session =
                Session::connect(&addr, &token, meta.epoch, meta.cursor, ca.as_deref()).await?;
            if let Some(sink) = &presence_sink {
                session = session.on_presence(sink.clone());
            }
            connected_at = Some(tokio::time::Instant::now());
            on_event(WatchEvent::Connected(session.welcome.clone()));
            session
                .run(replica.clone(), Mode::Watch, stop.clone(), presence.clone())
                .await
        }
        .await;
        match attempt {
            Ok(_) => {
                tracing::info!(url = %addr.display(), "sync watch stopped");
                return Ok(());
            }
            Err(e) if e.is_fatal() => {
                tracing::error!(url = %addr.display(), error = %e, "sync watch gave up: retrying cannot fix this");
                let _ = replica.update_meta(|m| m.last_error = Some(e.to_string()));
                return Err(e.into());
            }
            Err(e) => {
                let _ = replica.update_meta(|m| {
                    m.last_error = Some(e.to_string());
                    m.connected = false;
                });
                failures = failures_after(failures, connected_at.map(|t| t.elapsed()));
                let wait = backoff(failures);
                tracing::warn!(
                    url = %addr.display(),
                    error = %e,
                    failures,
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "disconnected; reconnecting"
                );
                on_event(WatchEvent::Retrying {
                    error: e.to_string(),
                    wait,
                });
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => return Ok(()),
                }
            }
        }
    }
}

/// What a watch reports as it goes.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    Connected(Welcome),
    Retrying { error: String, wait: Duration },
}

/// A session that stayed up this long was healthy: the next drop starts
/// the backoff over instead of adding to the waits before it.
pub const HEALTHY_SESSION: Duration = Duration::from_secs(30);

/// The failure count after a session ended with an error, given how long it
/// was connected (`None`: it never connected).
pub fn failures_after(previous: u32, connected_for: Option<Duration>) -> u32 {
    match connected_for {
        Some(up) if up >= HEALTHY_SESSION => 1,
        _ => previous.saturating_add(1),
    }
}

/// 250 ms doubling per failure, capped at 30 s, with ±25% jitter so many
/// clients do not reconnect in step.
pub fn backoff(failures: u32) -> Duration {
    let base_ms = 250u64
        .saturating_mul(1u64 << failures.saturating_sub(1).min(7))
        .min(30_000);
    let jitter = u64::from(crate::model::ids::random_bytes::<2>()[0]) * base_ms / 512;
    Duration::from_millis(base_ms - base_ms / 4 + jitter)
}

/// What `spoke status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub hub: Option<String>,
    pub hub_name: Option<String>,
    pub url: Option<String>,
    pub member: Option<String>,
    /// A sync session is connected right now (heard from within 15 s).
    pub connected: bool,
    pub cursor: u64,
    pub head: Option<u64>,
    /// Local ops not yet acknowledged by the hub.
    pub pending: u64,
    pub last_contact: Option<String>,
    pub last_error: Option<String>,
}

pub fn status(home: &Path) -> Result<Status> {
    status_of(&Replica::open(&replica_path(home))?)
}

/// The status of a replica that is already open.
pub fn status_of(replica: &Replica) -> Result<Status> {
    let meta = replica.meta()?;
    let recent = meta
        .last_contact_ms
        .is_some_and(|t| wall_now_ms().saturating_sub(t) < 15_000);
    Ok(Status {
        hub: meta.hub_id.clone(),
        hub_name: meta.hub_name.clone(),
        url: meta.hub_url.clone(),
        member: meta.me.clone(),
        connected: meta.connected && recent,
        cursor: meta.cursor,
        head: meta
            .hub_url
            .as_ref()
            .map(|_| meta.head_seen.max(meta.cursor)),
        pending: replica.pending_count().context("counting pending ops")?,
        last_contact: meta
            .last_contact_ms
            .and_then(|t| jiff::Timestamp::from_millisecond(t as i64).ok())
            .map(|t| t.to_string()),
        last_error: meta.last_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_healthy_session_starts_the_backoff_over() {
        let mut failures = 0;
        for _ in 0..8 {
            failures = failures_after(failures, Some(Duration::from_secs(2)));
        }
        assert_eq!(failures, 8, "short sessions keep adding up");
        assert!(backoff(failures) >= Duration::from_millis(22_500));
        failures = failures_after(failures, Some(HEALTHY_SESSION));
        assert_eq!(failures, 1);
        assert!(backoff(failures) <= Duration::from_millis(313));
        assert_eq!(failures_after(3, None), 4, "a failed connect is a failure");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let first = backoff(1);
        assert!(first >= Duration::from_millis(187) && first <= Duration::from_millis(313));
        assert!(backoff(4) > backoff(1));
        for n in [10, 20, 1000] {
            assert!(backoff(n) <= Duration::from_millis(37_500));
            assert!(backoff(n) >= Duration::from_millis(22_500));
        }
    }
}
