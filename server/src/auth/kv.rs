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
use crate::nats::{Nats, REQUEST_TIMEOUT, is_plain_token};
use async_nats::jetstream::kv;
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// The bucket every relay's registry lives in.
pub const BUCKET: &str = "spoke_registry";

/// How many times a revocation is tried again when another writer changed
/// the record between its read and its write.
const UPDATE_ATTEMPTS: usize = 16;

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
        let store = run_blocking(nats, async {
            let store = nats
                .ensure_kv(BUCKET, "Spoke relay hubs and tokens", replicas.max(1))
                .await
                .map_err(|e| nats_err(format!("{e:#}")))?;
            Ok::<_, RegistryError>(store)
        })??;
        let registry = KvRegistry {
            nats: nats.clone(),
            store,
            view,
        };
        let watch = run_blocking(nats, registry.store.watch_with_history(">"))?
            .map_err(|e| nats_err(format!("watching the registry: {e}")))?;
        nats.runtime().spawn(follow(
            registry.store.clone(),
            watch,
            registry.view.clone(),
        ));
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
            for _ in 0..UPDATE_ATTEMPTS {
                let entry = self
                    .store
                    .entry(key.as_str())
                    .await
                    .map_err(|e| nats_err(format!("reading {key}: {e}")))?;
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
                    Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => continue,
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
        let revision = run_blocking(&self.nats, self.store.create(key, bytes.clone().into()))?
            .map_err(|e| nats_err(format!("writing {key}: {e}")))?;
        self.view.apply(key, revision, Some(&bytes));
        Ok(())
    }

    /// Waits until the view holds everything the bucket held when called.
    async fn catch_up(&self) -> Result<(), RegistryError> {
        let status = self
            .store
            .status()
            .await
            .map_err(|e| nats_err(format!("reading the bucket's state: {e}")))?;
        let last = status.info.state.last_sequence;
        let mut revision = self.view.revision.subscribe();
        match tokio::time::timeout(REQUEST_TIMEOUT, revision.wait_for(|r| *r >= last)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(nats_err("the registry view stopped".to_owned())),
            Err(_) => Err(nats_err(format!(
                "the registry did not catch up with revision {last} within {} s",
                REQUEST_TIMEOUT.as_secs()
            ))),
        }
    }
}

/// Applies every change of the bucket to `view`, watching again from the
/// next revision whenever the watch ends (a node went away).
async fn follow(store: kv::Store, mut watch: kv::Watch, view: Arc<View>) {
    loop {
        while let Some(item) = watch.next().await {
            match item {
                Ok(entry) => {
                    let value = (entry.operation == kv::Operation::Put).then_some(&entry.value[..]);
                    view.apply(&entry.key, entry.revision, value);
                }
                Err(e) => tracing::warn!("watching the registry: {e}"),
            }
        }
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let from = *view.revision.borrow() + 1;
            match store.watch_all_from_revision(from).await {
                Ok(w) => {
                    watch = w;
                    break;
                }
                Err(e) => tracing::warn!("watching the registry again from {from}: {e}"),
            }
        }
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
