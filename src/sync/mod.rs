//! Sync with a hub's relay: join, one-shot sync, a long-running watch with
//! reconnects, and the status other processes read from the replica.

mod address;
pub mod blobs;
mod invite;
mod session;
pub(crate) mod tls;

pub use address::{HubAddress, JoinTarget, RelayTargets};
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

/// Joins the hub at `url` (one URL, or a comma-separated list) with
/// `token`; see [`join_relays`].
pub async fn join(
    home: &Path,
    url: &str,
    token: &str,
    ca_file: Option<&Path>,
) -> Result<(Welcome, SyncReport)> {
    join_relays(home, &[url], token, ca_file).await
}

/// Joins the hub at `urls` with `token`. Each entry is the hub's own URL,
/// or a relay's base URL, in which case a relay names the token's hub; each
/// may be a comma-separated list. Several relays serve the same hub and are
/// tried in the order given. On a fresh home the member identity comes from
/// the relay; an existing replica must belong to the same member and its
/// pending ops flow to the hub on this first sync.
pub async fn join_relays<S: AsRef<str>>(
    home: &Path,
    urls: &[S],
    token: &str,
    ca_file: Option<&Path>,
) -> Result<(Welcome, SyncReport)> {
    let targets = RelayTargets::parse(urls)?;
    let ca_file = ca_file.map(Path::to_path_buf).or_else(env_ca_file);
    let hub = match &targets.hub {
        Some(hub) => hub.clone(),
        None => hub_from_relays(&targets.bases, token, ca_file.as_deref()).await?,
    };
    let addrs = targets.addresses(&hub);
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
                .map(|a| a.hub != hub)
                .unwrap_or(true)
        {
            return Err(InputError::new(format!(
                "this replica already belongs to hub {current}; join from a fresh --home"
            ))
            .into());
        }
    }
    let (session, addr) = connect_for_join(&addrs, token, ca_file.as_deref()).await?;
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
                hub_id: Some(hub.clone()),
                ..ReplicaMeta::new(new_client_id())
            };
            Arc::new(Replica::create(&path, &meta)?)
        }
    };
    replica.update_meta(|m| {
        set_relays(m, &addrs);
        m.relay_in_use = Some(addr.display());
        m.hub_token = Some(token.to_owned());
        m.hub_ca_file = ca_file.as_ref().map(|p| p.display().to_string());
        m.hub_id = Some(hub.clone());
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
        relay = %addr.display(),
        relays = addrs.len(),
        pulled = report.pulled,
        pushed = report.pushed,
        "joined the hub"
    );
    Ok((welcome, report))
}

/// Asks the relays in turn which hub `token` is for; a relay that cannot
/// be reached passes the question to the next.
async fn hub_from_relays(bases: &[String], token: &str, ca_file: Option<&Path>) -> Result<String> {
    let mut last = None;
    for base in bases {
        match invite::hub_of_token(base, token, ca_file).await {
            Ok(addr) => return Ok(addr.hub),
            Err(e) if matches!(e.downcast_ref(), Some(SyncError::Unreachable { .. })) => {
                tracing::warn!(relay = %base, error = %e, "relay unreachable; asking the next one");
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no relay URL given")))
}

/// The first relay in `addrs` that lets the member in. A refusal no retry
/// can fix stops at once, with what to do about it.
async fn connect_for_join(
    addrs: &[HubAddress],
    token: &str,
    ca_file: Option<&Path>,
) -> Result<(Session, HubAddress)> {
    let mut last = None;
    for addr in addrs {
        match Session::connect(addr, token, 0, 0, ca_file).await {
            Ok(s) => return Ok((s, addr.clone())),
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
            Err(e) => {
                tracing::warn!(relay = %addr.display(), error = %e, "cannot join through this relay; trying the next");
                last = Some(e);
            }
        }
    }
    match last {
        Some(e) => Err(e.into()),
        None => Err(anyhow::anyhow!("no relay URL given")),
    }
}

/// Stores `addrs` as the replica's relays: the first in `hub_url`, where
/// older versions look, the rest in `relays`.
fn set_relays(meta: &mut ReplicaMeta, addrs: &[HubAddress]) {
    meta.hub_url = addrs.first().map(HubAddress::display);
    meta.relays = addrs.iter().skip(1).map(HubAddress::display).collect();
}

/// Every relay the replica knows for its hub, in the order they are tried.
pub fn relay_urls(meta: &ReplicaMeta) -> Vec<String> {
    let mut urls: Vec<String> = Vec::new();
    for url in meta.hub_url.iter().chain(&meta.relays) {
        if !urls.contains(url) {
            urls.push(url.clone());
        }
    }
    urls
}

/// The replica's relays, as `spoke hub relays` lists them.
#[derive(Debug, Clone, Serialize)]
pub struct RelayList {
    pub hub: Option<String>,
    /// Hub URLs in the order they are tried.
    pub relays: Vec<String>,
    /// The relay the last session connected to.
    pub in_use: Option<String>,
}

pub fn relays(home: &Path) -> Result<RelayList> {
    let meta = Replica::open(&replica_path(home))?.meta()?;
    Ok(RelayList {
        hub: meta.hub_id.clone(),
        relays: relay_urls(&meta),
        in_use: meta.relay_in_use.clone(),
    })
}

/// The relay addresses of a joined replica, and its hub.
fn joined_relays(meta: &ReplicaMeta) -> Result<(Vec<HubAddress>, String)> {
    let urls = relay_urls(meta);
    let Some(first) = urls.first() else {
        return Err(InputError::new(
            "this replica has not joined a hub: run `spoke hub join URL --token TOKEN` first",
        )
        .into());
    };
    let hub = HubAddress::parse(first)?.hub;
    let addrs = urls
        .iter()
        .map(|u| HubAddress::parse(u))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((addrs, hub))
}

/// Adds relays of the replica's hub (hub URLs or relay base URLs, comma
/// lists allowed) after the ones it has; returns those that were new.
pub fn add_relays<S: AsRef<str>>(home: &Path, urls: &[S]) -> Result<Vec<String>> {
    let targets = RelayTargets::parse(urls)?;
    let replica = Replica::open(&replica_path(home))?;
    let (mut addrs, hub) = joined_relays(&replica.meta()?)?;
    if let Some(other) = &targets.hub
        && *other != hub
    {
        return Err(InputError::new(format!(
            "those URLs are for hub {other}, but this replica belongs to hub {hub}"
        ))
        .into());
    }
    let mut added = Vec::new();
    for addr in targets.addresses(&hub) {
        if !addrs.iter().any(|a| a.base == addr.base) {
            added.push(addr.display());
            addrs.push(addr);
        }
    }
    replica.update_meta(|m| set_relays(m, &addrs))?;
    tracing::info!(added = ?added, relays = addrs.len(), "relays added");
    Ok(added)
}

/// Removes relays from the replica's list; each must be in it, and at least
/// one must stay. Returns the list left.
pub fn remove_relays<S: AsRef<str>>(home: &Path, urls: &[S]) -> Result<Vec<String>> {
    let targets = RelayTargets::parse(urls)?;
    let replica = Replica::open(&replica_path(home))?;
    let (mut addrs, _) = joined_relays(&replica.meta()?)?;
    for base in &targets.bases {
        let Some(at) = addrs.iter().position(|a| a.base == *base) else {
            return Err(InputError::new(format!(
                "{base} is not one of this replica's relays (`spoke hub relays` lists them)"
            ))
            .into());
        };
        addrs.remove(at);
    }
    if addrs.is_empty() {
        return Err(InputError::new(
            "that would leave no relay: add another first (`spoke hub relays add URL`)",
        )
        .into());
    }
    replica.update_meta(|m| {
        set_relays(m, &addrs);
        if m.relay_in_use
            .as_ref()
            .is_some_and(|u| !relay_urls(m).contains(u))
        {
            m.relay_in_use = None;
        }
    })?;
    tracing::info!(removed = ?targets.bases, relays = addrs.len(), "relays removed");
    Ok(addrs.iter().map(HubAddress::display).collect())
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

/// The replica's hub connection: its relays in the order to try them
/// (starting from the one last used), the token and the meta; or a clear
/// error if it has none.
fn connection(replica: &Replica) -> Result<(Vec<HubAddress>, String, ReplicaMeta)> {
    let meta = replica.meta()?;
    let urls = relay_urls(&meta);
    let (false, Some(token)) = (urls.is_empty(), meta.hub_token.clone()) else {
        return Err(InputError::new(
            "this replica has not joined a hub: run `spoke hub join URL --token TOKEN`",
        )
        .into());
    };
    let addrs = urls
        .iter()
        .map(|u| HubAddress::parse(u))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((addrs, token, meta))
}

/// Where to start in `addrs`: `want` if it is still listed, else the first.
fn position_of(addrs: &[HubAddress], want: Option<&str>) -> usize {
    want.and_then(|w| addrs.iter().position(|a| a.display() == w))
        .unwrap_or(0)
}

/// Records the relay a session got into.
fn record_relay_in_use(replica: &Replica, addr: &HubAddress) {
    let url = addr.display();
    if let Err(e) = replica.update_meta(|m| m.relay_in_use = Some(url.clone())) {
        tracing::warn!(relay = %url, error = %e, "cannot record the relay in use");
    }
}

/// Connects, pushes everything pending, pulls to the head, returns. When a
/// relay fails (cannot be reached, drops the connection, goes silent), the
/// next relay of the hub is tried, resuming from the cursor; the sync fails
/// once every relay has failed in turn.
pub async fn sync_once(home: &Path) -> Result<SyncReport> {
    let replica = Arc::new(Replica::open(&replica_path(home))?);
    let (addrs, _, meta) = connection(&replica)?;
    let start = position_of(&addrs, meta.relay_in_use.as_deref());
    let mut last_error = None;
    for turn in 0..addrs.len() {
        // Re-read each turn: the cursor and the queue moved if a relay failed midway.
        let (addrs, token, meta) = connection(&replica)?;
        let Some(addr) = addrs.get((start + turn) % addrs.len()) else {
            break;
        };
        let result = async {
            let ca = ca_for(&meta);
            let session =
                Session::connect(addr, &token, meta.epoch, meta.cursor, ca.as_deref()).await?;
            record_relay_in_use(&replica, addr);
            let (_stop_tx, stop) = watch::channel(false);
            session.run(replica.clone(), Mode::Once, stop, None).await
        }
        .await;
        match result {
            Ok(report) => return Ok(report),
            Err(e) => {
                let _ = replica.update_meta(|m| m.last_error = Some(e.to_string()));
                if e.is_fatal() || turn + 1 == addrs.len() {
                    tracing::warn!(relay = %addr.display(), error = %e, "sync failed");
                    return Err(e.into());
                }
                let next = &addrs[(start + turn + 1) % addrs.len()];
                tracing::warn!(
                    from = %addr.display(),
                    to = %next.display(),
                    error = %e,
                    "relay failed; switching to the next relay of the hub"
                );
                last_error = Some(e);
            }
        }
    }
    match last_error {
        Some(e) => Err(e.into()),
        None => Err(anyhow::anyhow!("this replica lists no relay")),
    }
}

/// Stays connected until `stop` turns true. When the relay in use fails,
/// the next relay of the hub is tried at once (round robin), resuming from
/// the cursor; only after every relay failed in a row does it wait, with
/// jittered exponential backoff (capped at 30 s). Stops early on errors a
/// retry cannot fix (bad token, wrong hub).
pub async fn watch(
    home: &Path,
    mut stop: watch::Receiver<bool>,
    presence: Option<Presence>,
    presence_sink: Option<tokio::sync::mpsc::UnboundedSender<Presence>>,
    mut on_event: impl FnMut(WatchEvent),
) -> Result<()> {
    let replica = Arc::new(Replica::open(&replica_path(home))?);
    let mut failures: u32 = 0;
    // The relay to try next, by hub URL; the list is re-read every turn so
    // `spoke hub relays add|remove` reaches a running watch.
    let mut want: Option<String> = replica.meta()?.relay_in_use;
    // Relays that failed in a row in this round, and the longest any of them stayed up.
    let mut failed_in_round: usize = 0;
    let mut round_up: Option<Duration> = None;
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let (addrs, token, meta) = connection(&replica)?;
        let at = position_of(&addrs, want.as_deref());
        let addr = &addrs[at];
        let mut connected_at = None;
        let attempt = async {
            let ca = ca_for(&meta);
            let mut session =
                Session::connect(addr, &token, meta.epoch, meta.cursor, ca.as_deref()).await?;
            if let Some(sink) = &presence_sink {
                session = session.on_presence(sink.clone());
            }
            connected_at = Some(tokio::time::Instant::now());
            record_relay_in_use(&replica, addr);
            tracing::info!(relay = %addr.display(), "sync watch connected");
            on_event(WatchEvent::Connected(session.welcome.clone()));
            session
                .run(replica.clone(), Mode::Watch, stop.clone(), presence.clone())
                .await
        }
        .await;
        match attempt {
            Ok(_) => {
                tracing::info!(relay = %addr.display(), "sync watch stopped");
                return Ok(());
            }
            Err(e) if e.is_fatal() => {
                tracing::error!(relay = %addr.display(), error = %e, "sync watch gave up: retrying cannot fix this");
                let _ = replica.update_meta(|m| m.last_error = Some(e.to_string()));
                return Err(e.into());
            }
            Err(e) => {
                let _ = replica.update_meta(|m| {
                    m.last_error = Some(e.to_string());
                    m.connected = false;
                });
                let up = connected_at.map(|t| t.elapsed());
                if up.is_some() {
                    // A relay that let us in starts a new round.
                    failed_in_round = 0;
                }
                failed_in_round += 1;
                round_up = round_up.max(up);
                let next = &addrs[(at + 1) % addrs.len()];
                want = Some(next.display());
                if failed_in_round < addrs.len() {
                    tracing::warn!(
                        from = %addr.display(),
                        to = %next.display(),
                        error = %e,
                        "relay failed; switching to the next relay of the hub"
                    );
                    on_event(WatchEvent::Switching {
                        from: addr.display(),
                        to: next.display(),
                        error: e.to_string(),
                    });
                    continue;
                }
                failures = failures_after(failures, round_up);
                failed_in_round = 0;
                round_up = None;
                let wait = backoff(failures);
                tracing::warn!(
                    relay = %addr.display(),
                    next = %next.display(),
                    relays = addrs.len(),
                    error = %e,
                    failures,
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "disconnected and every relay failed in turn; reconnecting after a wait"
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
    /// A relay failed; the next one of the hub is tried at once.
    Switching {
        from: String,
        to: String,
        error: String,
    },
    /// Every relay failed in turn; the next try waits.
    Retrying {
        error: String,
        wait: Duration,
    },
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
    /// The first relay's hub URL (the one joined through).
    pub url: Option<String>,
    /// Every relay of the hub this replica knows, in the order tried.
    pub relays: Vec<String>,
    /// The relay the last session connected to.
    pub relay: Option<String>,
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
        relays: relay_urls(&meta),
        relay: meta.relay_in_use.clone(),
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
