//! The registry shared on NATS: the JetStream key-value bucket
//! `spoke_registry`, one key per record, so every relay and admin command
//! given the same `--nats` servers sees the same hubs and tokens.
//!
//! - `hub.<hub id>` holds a [`HubRecord`];
//! - `token.<hub id>.<token id>` holds a [`TokenRecord`] (its secret only as
//!   the SHA-256 the data folder's registry keeps too).
//!
//! Values are MessagePack, as in `relay.redb`. New records are written with
//! `create` (refused when the key exists) and a revocation with `update`
//! naming the revision it read, retried on a newer one, so two admins or
//! relays never overwrite each other's change unseen.
//!
//! Each process keeps a view of the whole bucket, loaded on open and kept
//! current by a watch on every key; lookups answer from it without a round
//! trip, and a revocation stored anywhere reaches it as soon as NATS
//! delivers the change. A lookup that misses first waits for the view to
//! reach the bucket's latest revision, so a token issued a moment ago on
//! another machine is found.

use super::{HubRecord, RegistryError, TokenRecord};
use crate::nats::{Nats, is_plain_token};
use async_nats::jetstream::{kv, stream};
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The bucket every relay's registry lives in.
pub const BUCKET: &str = "spoke_registry";

/// How many times a revocation is tried again when another writer changed
/// the record between its read and its write.
const UPDATE_ATTEMPTS: usize = 16;

/// How long a request keeps being retried while the cluster cannot answer
/// it (a node died and the bucket elects a new leader) before it fails.
const RETRY_FOR: Duration = Duration::from_secs(30);

/// How long a lookup that missed waits for the watch to deliver what the
/// bucket holds before reading it directly.
const WATCH_GRACE: Duration = Duration::from_millis(500);

/// How often the view is checked against the bucket's latest revision.
const REFRESH_EVERY: Duration = Duration::from_millis(500);

/// The pause between two tries of a failed request.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// What this process knows of the bucket, each record with its revision.
#[derive(Default)]
struct ViewState {
    hubs: HashMap<String, (u64, HubRecord)>,
    /// By token id: a presented token names its id, not its hub.
    tokens: HashMap<String, (u64, TokenRecord)>,
}

struct View {
    state: RwLock<ViewState>,
    /// The highest revision applied; every applied change ticks it.
    revision: watch::Sender<u64>,
}

impl View {
    /// Applies one entry of the bucket, unless the view already holds a
    /// newer revision of that key.
    fn apply(&self, key: &str, revision: u64, value: Option<&[u8]>) {
        let Ok(mut state) = self.state.write() else {
            return;
        };
        let mut parts = key.split('.');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("hub"), Some(id), None, None) => {
                if state.hubs.get(id).is_some_and(|(r, _)| *r >= revision) {
                    return;
                }
                match value.map(rmp_serde::from_slice::<HubRecord>) {
                    Some(Ok(hub)) => {
                        state.hubs.insert(id.to_owned(), (revision, hub));
                    }
                    Some(Err(e)) => tracing::warn!("registry key {key} is unreadable: {e}"),
                    None => {
                        state.hubs.remove(id);
                    }
                }
            }
            (Some("token"), Some(hub), Some(id), None) => {
                if state.tokens.get(id).is_some_and(|(r, _)| *r >= revision) {
                    return;
                }
                match value.map(rmp_serde::from_slice::<TokenRecord>) {
                    Some(Ok(token)) if token.hub == hub && token.id == id => {
                        state.tokens.insert(id.to_owned(), (revision, token));
                    }
                    Some(Ok(_)) => {
                        tracing::warn!("registry key {key} holds another token's record")
                    }
                    Some(Err(e)) => tracing::warn!("registry key {key} is unreadable: {e}"),
                    None => {
                        state.tokens.remove(id);
                    }
                }
            }
            _ => tracing::debug!("registry key {key} is not one this relay writes"),
        }
        drop(state);
        self.revision.send_if_modified(|r| {
            let newer = revision > *r;
            *r = (*r).max(revision);
            // Subscribers hear of every change, even one applied out of order.
            newer || value.is_some()
        });
    }
}

/// Hubs and tokens in the `spoke_registry` bucket.
pub struct KvRegistry {
    nats: Nats,
    store: kv::Store,
    /// The bucket's stream, for its latest revision and reads by revision.
    stream: stream::Stream,
    view: Arc<View>,
}

impl KvRegistry {
    /// Opens (creating when missing) the bucket, loads it and starts
    /// following it on the connection's runtime.
    pub fn open(nats: &Nats, replicas: usize) -> Result<KvRegistry, RegistryError> {
        let (revision, _) = watch::channel(0);
        let view = Arc::new(View {
            state: RwLock::new(ViewState::default()),
            revision,
        });
        let (store, stream) = run_blocking(nats, async {
            let store = nats
                .ensure_kv(BUCKET, "Spoke relay hubs and tokens", replicas.max(1))
                .await
                .map_err(|e| nats_err(format!("{e:#}")))?;
            let stream = nats
                .jetstream
                .get_stream(format!("KV_{BUCKET}"))
                .await
                .map_err(|e| nats_err(format!("opening the bucket's stream: {e}")))?;
            Ok::<_, RegistryError>((store, stream))
        })??;
        let registry = KvRegistry {
            nats: nats.clone(),
            store,
            stream,
            view,
        };
        nats.runtime()
            .spawn(follow(registry.store.clone(), registry.view.clone()));
        nats.runtime()
            .spawn(refresh(registry.stream.clone(), registry.view.clone()));
        run_blocking(nats, registry.catch_up())??;
        Ok(registry)
    }

    /// Ticks on every change the view applies.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.view.revision.subscribe()
    }

    pub fn insert_hub(&self, hub: &HubRecord) -> Result<(), RegistryError> {
        self.create(&format!("hub.{}", hub.id), hub)
    }

    pub fn hub(&self, id: &str) -> Result<Option<HubRecord>, RegistryError> {
        if !is_plain_token(id) {
            return Ok(None);
        }
        let read = |view: &View| -> Option<HubRecord> {
            let state = view.state.read().ok()?;
            state.hubs.get(id).map(|(_, h)| h.clone())
        };
        if let Some(hub) = read(&self.view) {
            return Ok(Some(hub));
        }
        run_blocking(&self.nats, self.catch_up())??;
        Ok(read(&self.view))
    }

    pub fn hubs(&self) -> Result<Vec<HubRecord>, RegistryError> {
        let state = self.state()?;
        let mut hubs: Vec<HubRecord> = state.hubs.values().map(|(_, h)| h.clone()).collect();
        hubs.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        Ok(hubs)
    }

    pub fn insert_token(&self, record: &TokenRecord) -> Result<(), RegistryError> {
        self.create(&format!("token.{}.{}", record.hub, record.id), record)
    }

    pub fn token(&self, id: &str) -> Result<Option<TokenRecord>, RegistryError> {
        if !is_plain_token(id) {
            return Ok(None);
        }
        let read = |view: &View| -> Option<TokenRecord> {
            let state = view.state.read().ok()?;
            state.tokens.get(id).map(|(_, t)| t.clone())
        };
        if let Some(token) = read(&self.view) {
            return Ok(Some(token));
        }
        run_blocking(&self.nats, self.catch_up())??;
        Ok(read(&self.view))
    }

    pub fn tokens(&self, hub: &str) -> Result<Vec<TokenRecord>, RegistryError> {
        let state = self.state()?;
        let mut tokens: Vec<TokenRecord> = state
            .tokens
            .values()
            .filter(|(_, t)| t.hub == hub)
            .map(|(_, t)| t.clone())
            .collect();
        tokens.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        Ok(tokens)
    }

    /// Marks a token revoked with a write that names the revision it read,
    /// reading again when another writer got there first.
    pub fn revoke(&self, hub: &str, token_id: &str) -> Result<TokenRecord, RegistryError> {
        let unknown = || RegistryError::UnknownToken(token_id.to_owned(), hub.to_owned());
        if !is_plain_token(hub) || !is_plain_token(token_id) {
            return Err(unknown());
        }
        let key = format!("token.{hub}.{token_id}");
        run_blocking(&self.nats, async {
            let started = Instant::now();
            let mut conflicts = 0;
            while conflicts < UPDATE_ATTEMPTS {
                let entry = match self.store.entry(key.as_str()).await {
                    Ok(entry) => entry,
                    Err(e) if started.elapsed() < RETRY_FOR => {
                        tracing::warn!("reading {key}, retrying: {e}");
                        tokio::time::sleep(RETRY_PAUSE).await;
                        continue;
                    }
                    Err(e) => return Err(nats_err(format!("reading {key}: {e}"))),
                };
                let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
                    return Err(unknown());
                };
                let mut record: TokenRecord = rmp_serde::from_slice(&entry.value)
                    .map_err(|e| nats_err(format!("record {key} is unreadable: {e}")))?;
                if record.hub != hub {
                    return Err(unknown());
                }
                if record.revoked {
                    self.view.apply(&key, entry.revision, Some(&entry.value));
                    return Ok(record);
                }
                record.revoked = true;
                let bytes = encode(&record)?;
                match self
                    .store
                    .update(key.as_str(), bytes.clone().into(), entry.revision)
                    .await
                {
                    Ok(revision) => {
                        self.view.apply(&key, revision, Some(&bytes));
                        return Ok(record);
                    }
                    Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                        conflicts += 1;
                    }
                    // Read again: the write may have been stored all the same.
                    Err(e) if started.elapsed() < RETRY_FOR => {
                        tracing::warn!("writing {key}, retrying: {e}");
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                    Err(e) => return Err(nats_err(format!("writing {key}: {e}"))),
                }
            }
            Err(nats_err(format!(
                "{key} kept changing while it was being revoked; try again"
            )))
        })?
    }

    fn state(&self) -> Result<std::sync::RwLockReadGuard<'_, ViewState>, RegistryError> {
        self.view
            .state
            .read()
            .map_err(|_| nats_err("the registry view's lock is poisoned".to_owned()))
    }

    /// Stores a new record; refused when its key already exists.
    fn create<T: Serialize>(&self, key: &str, value: &T) -> Result<(), RegistryError> {
        let bytes = encode(value)?;
        let revision = run_blocking(&self.nats, async {
            let started = Instant::now();
            let mut failed_before = false;
            loop {
                let error = match self.store.create(key, bytes.clone().into()).await {
                    Ok(revision) => return Ok(revision),
                    Err(e) => e,
                };
                if error.kind() == kv::CreateErrorKind::AlreadyExists {
                    // A try that failed to answer may have stored it.
                    if failed_before
                        && let Ok(Some(entry)) = self.store.entry(key).await
                        && entry.value[..] == bytes[..]
                    {
                        return Ok(entry.revision);
                    }
                    return Err(nats_err(format!("{key} already exists")));
                }
                if started.elapsed() >= RETRY_FOR {
                    return Err(nats_err(format!("writing {key}: {error}")));
                }
                tracing::warn!("writing {key}, retrying: {error}");
                failed_before = true;
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        })??;
        self.view.apply(key, revision, Some(&bytes));
        Ok(())
    }

    /// Brings the view up to everything the bucket held when called: waits
    /// a moment for the watch, then reads what it still lacks by sequence
    /// (the watch stalls for some seconds when the node serving it died).
    async fn catch_up(&self) -> Result<(), RegistryError> {
        catch_up(self.stream.clone(), &self.view).await
    }
}

/// Brings `view` up to everything the bucket holds now: waits a moment for
/// the watch, then reads what it still lacks by revision.
async fn catch_up(mut stream: stream::Stream, view: &View) -> Result<(), RegistryError> {
    let started = Instant::now();
    let last = loop {
        match stream.info().await {
            Ok(info) => break info.state.last_sequence,
            Err(e) if started.elapsed() < RETRY_FOR => {
                tracing::warn!("reading the registry bucket's state, retrying: {e}");
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Err(e) => return Err(nats_err(format!("reading the bucket's state: {e}"))),
        }
    };
    let mut revision = view.revision.subscribe();
    if tokio::time::timeout(WATCH_GRACE, revision.wait_for(|r| *r >= last))
        .await
        .is_ok()
    {
        return Ok(());
    }
    let from = *view.revision.borrow() + 1;
    for seq in from..=last {
        let message = match stream.get_raw_message(seq).await {
            Ok(m) => m,
            // Superseded by a later value of its key, or never stored.
            Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => continue,
            Err(e) => return Err(nats_err(format!("reading revision {seq}: {e}"))),
        };
        let Some(key) = message.subject.strip_prefix(&format!("$KV.{BUCKET}.")) else {
            continue;
        };
        let put = message
            .headers
            .get("KV-Operation")
            .is_none_or(|op| op.as_str() == "PUT");
        let value = put.then_some(&message.payload[..]);
        view.apply(key, seq, value);
    }
    Ok(())
}

/// Checks the bucket's latest revision every [`REFRESH_EVERY`] and reads
/// what the view lacks: when the node serving the watch dies, the watch
/// notices only after missing its heartbeats (some seconds), and a
/// revocation must not wait that long.
async fn refresh(stream: stream::Stream, view: Arc<View>) {
    loop {
        tokio::time::sleep(REFRESH_EVERY).await;
        if let Err(e) = catch_up(stream.clone(), &view).await {
            tracing::warn!("{e}");
        }
    }
}

/// Applies every change of the bucket to `view`, watching again from the
/// next revision whenever the watch cannot start or ends (a node went away).
async fn follow(store: kv::Store, view: Arc<View>) {
    loop {
        let applied = *view.revision.borrow();
        let watch = if applied == 0 {
            store.watch_with_history(">").await
        } else {
            store.watch_all_from_revision(applied + 1).await
        };
        match watch {
            Ok(mut watch) => {
                while let Some(item) = watch.next().await {
                    match item {
                        Ok(entry) => {
                            let value =
                                (entry.operation == kv::Operation::Put).then_some(&entry.value[..]);
                            view.apply(&entry.key, entry.revision, value);
                        }
                        Err(e) => tracing::warn!("watching the registry: {e}"),
                    }
                }
            }
            Err(e) => tracing::warn!("watching the registry from {}: {e}", applied + 1),
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, RegistryError> {
    rmp_serde::to_vec_named(value).map_err(|e| nats_err(e.to_string()))
}

fn nats_err(detail: String) -> RegistryError {
    RegistryError::Nats {
        bucket: BUCKET.to_owned(),
        detail,
    }
}

/// Runs `fut` on the connection's runtime from sync code, wherever that
/// code runs (a plain thread, or a task of the same runtime, which must not
/// block on it directly): on a helper thread that waits for it.
fn run_blocking<F>(nats: &Nats, fut: F) -> Result<F::Output, RegistryError>
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("registry".to_owned())
            .spawn_scoped(scope, || nats.runtime().block_on(fut))
            .map_err(|e| nats_err(format!("starting a registry thread: {e}")))?
            .join()
            .map_err(|_| nats_err("a registry request panicked".to_owned()))
    })
}
