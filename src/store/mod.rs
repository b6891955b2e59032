//! The local replica: one redb file holding the hub's op log, the queue of
//! local ops not yet acknowledged, materialized entity tables and metadata.
//! Every write is one transaction, so a crash leaves either all of a batch
//! or none of it.

pub mod audit;
mod error;
pub mod guard;
mod policy;
mod tables;

pub use policy::RefusedOp;

pub use error::StoreError;
pub use tables::SCHEMA_VERSION;

use crate::model::record::StateHasher;
use crate::model::{Change, EntityKind, EntityRecord, EntityRef, Item, Op, Stamp};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};
use serde::{Deserialize, Serialize};
use spoke_relay::proto::{ClientId, Hlc, OpId};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tables::{
    APPLIED, LOG, META, PENDING, POLICY, REFUSED, SEARCH_DIRTY, SEARCH_META, entity_table,
    item_table,
};

/// The replica's own bookkeeping, stored under `meta/replica`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaMeta {
    pub client_id: ClientId,
    /// The next client seq this replica will give a local op.
    pub next_seq: u64,
    /// Last hybrid-clock reading issued or observed.
    pub hlc: Hlc,
    /// Hub seq of the last op applied from the hub's log.
    #[serde(default)]
    pub cursor: u64,
    /// The hub's epoch; a change means the hub's log was reset.
    #[serde(default)]
    pub epoch: u64,
    /// Handle of the member this replica acts as.
    #[serde(default)]
    pub me: Option<String>,
    /// The hub's entity id (`hub/<id>` holds its name and settings).
    #[serde(default)]
    pub hub_id: Option<String>,
    /// Relay URL, once joined (`ws://host:port`).
    #[serde(default)]
    pub hub_url: Option<String>,
    /// Member token for the relay. The replica is the member's own file.
    #[serde(default)]
    pub hub_token: Option<String>,
    /// Extra CA certificate (PEM) trusted for a `wss://` relay.
    #[serde(default)]
    pub hub_ca_file: Option<String>,
    /// The hub's name as the relay reported it.
    #[serde(default)]
    pub hub_name: Option<String>,
    /// The hub's head seq at the last contact.
    #[serde(default)]
    pub head_seen: u64,
    /// When a sync session last heard from the relay (ms since epoch).
    #[serde(default)]
    pub last_contact_ms: Option<u64>,
    /// Set while a sync session is connected; with `last_contact_ms` it tells
    /// other processes whether someone is connected right now.
    #[serde(default)]
    pub connected: bool,
    /// The last sync failure, cleared by a successful session.
    #[serde(default)]
    pub last_error: Option<String>,
    /// More relays serving the same hub, tried in turn after `hub_url` when
    /// a relay fails (hub URLs, `ws://host:port/v1/hubs/HUB`).
    #[serde(default)]
    pub relays: Vec<String>,
    /// The hub URL of the relay the last session connected to.
    #[serde(default)]
    pub relay_in_use: Option<String>,
}

impl ReplicaMeta {
    pub fn new(client_id: ClientId) -> Self {
        ReplicaMeta {
            client_id,
            next_seq: 1,
            hlc: Hlc::default(),
            cursor: 0,
            epoch: 0,
            me: None,
            hub_id: None,
            hub_url: None,
            hub_token: None,
            hub_ca_file: None,
            hub_name: None,
            head_seen: 0,
            last_contact_ms: None,
            connected: false,
            last_error: None,
            relays: Vec::new(),
            relay_in_use: None,
        }
    }
}

/// What a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyStats {
    pub applied: usize,
    pub duplicates: usize,
}

pub struct Replica {
    db: Database,
    path: PathBuf,
}

impl Replica {
    /// Creates a new replica file; fails if one is already there.
    pub fn create(path: &Path, meta: &ReplicaMeta) -> Result<Replica, StoreError> {
        if path.exists() {
            return Err(StoreError::AlreadyExists {
                path: path.to_owned(),
            });
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::io(path, e))?;
        }
        let db = builder()
            .create(path)
            .map_err(|e| StoreError::open(path, e))?;
        let replica = Replica {
            db,
            path: path.to_owned(),
        };
        let txn = replica.begin_write()?;
        {
            let mut t = txn.open_table(META).at(&replica.path)?;
            t.insert("schema_version", SCHEMA_VERSION.to_be_bytes().as_slice())
                .at(&replica.path)?;
            t.insert("replica", encode_meta(meta).as_slice())
                .at(&replica.path)?;
            txn.open_table(LOG).at(&replica.path)?;
            txn.open_table(PENDING).at(&replica.path)?;
            txn.open_table(APPLIED).at(&replica.path)?;
        }
        replica.create_missing_tables(&txn)?;
        replica.commit(txn)?;
        Ok(replica)
    }

    /// Opens an existing replica, checking that this build can read it.
    pub fn open(path: &Path) -> Result<Replica, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_owned(),
            });
        }
        // redb may panic on pages damaged past its checks: report that as damage.
        guard::catch(|| Replica::open_unguarded(path)).unwrap_or_else(|panic| {
            Err(StoreError::Corrupt {
                path: path.to_owned(),
                detail: format!("the storage engine failed reading it: {panic}"),
            })
        })
    }

    fn open_unguarded(path: &Path) -> Result<Replica, StoreError> {
        let db = builder()
            .open(path)
            .map_err(|e| StoreError::open(path, e))?;
        let replica = Replica {
            db,
            path: path.to_owned(),
        };
        let found = replica.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: path.to_owned(),
                found,
            });
        }
        replica.meta()?;
        replica.ensure_tables()?;
        Ok(replica)
    }

    /// Tables added since a replica was created (a new entity kind, the
    /// search feed) are created on open; nothing existing is touched.
    fn ensure_tables(&self) -> Result<(), StoreError> {
        let missing = {
            let txn = self.begin_read()?;
            let mut missing = false;
            for kind in EntityKind::ALL {
                missing |= !table_exists(&txn, entity_table(kind), &self.path)?;
                missing |= !table_exists(&txn, item_table(kind), &self.path)?;
            }
            missing |= !table_exists(&txn, SEARCH_DIRTY, &self.path)?;
            missing |= !table_exists(&txn, SEARCH_META, &self.path)?;
            missing |= !table_exists(&txn, REFUSED, &self.path)?;
            missing
        };
        let without_policy = !table_exists(&self.begin_read()?, POLICY, &self.path)?;
        if missing || without_policy {
            let txn = self.begin_write()?;
            self.create_missing_tables(&txn)?;
            // A replica from before the hub's rules: judge its log now, as
            // every other replica and the relay do.
            if without_policy {
                self.rebuild_in(&txn)?;
            }
            self.commit(txn)?;
        }
        Ok(())
    }

    fn create_missing_tables(&self, txn: &WriteTransaction) -> Result<(), StoreError> {
        for kind in EntityKind::ALL {
            txn.open_table(entity_table(kind)).at(&self.path)?;
            txn.open_table(item_table(kind)).at(&self.path)?;
        }
        txn.open_table(SEARCH_DIRTY).at(&self.path)?;
        txn.open_table(SEARCH_META).at(&self.path)?;
        txn.open_table(POLICY).at(&self.path)?;
        txn.open_table(REFUSED).at(&self.path)?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn schema_version(&self) -> Result<u32, StoreError> {
        let not_spoke = |detail: &str| StoreError::Corrupt {
            path: self.path.clone(),
            detail: detail.to_owned(),
        };
        let txn = self.begin_read()?;
        let table = match txn.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => {
                return Err(not_spoke("it has no meta table; it is not a Spoke replica"));
            }
            Err(e) => return Err(StoreError::db(&self.path, e)),
        };
        let value = table
            .get("schema_version")
            .at(&self.path)?
            .ok_or_else(|| not_spoke("it records no schema version"))?;
        let bytes: [u8; 4] = value
            .value()
            .try_into()
            .map_err(|_| not_spoke("its schema version is unreadable"))?;
        Ok(u32::from_be_bytes(bytes))
    }

    pub fn meta(&self) -> Result<ReplicaMeta, StoreError> {
        let txn = self.begin_read()?;
        let table = txn.open_table(META).at(&self.path)?;
        let value = table.get("replica").at(&self.path)?;
        self.parse_meta(value.as_ref().map(|v| v.value()))
    }

    fn parse_meta(&self, bytes: Option<&[u8]>) -> Result<ReplicaMeta, StoreError> {
        let bytes = bytes.ok_or_else(|| StoreError::Corrupt {
            path: self.path.clone(),
            detail: "its replica metadata is missing".into(),
        })?;
        rmp_serde::from_slice(bytes).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            detail: format!("its replica metadata is unreadable: {e}"),
        })
    }

    /// Changes metadata in its own transaction and returns the result.
    pub fn update_meta(
        &self,
        change: impl FnOnce(&mut ReplicaMeta),
    ) -> Result<ReplicaMeta, StoreError> {
        let txn = self.begin_write()?;
        let mut meta = self.meta_in(&txn)?;
        change(&mut meta);
        self.write_meta(&txn, &meta)?;
        self.commit(txn)?;
        Ok(meta)
    }

    fn meta_in(&self, txn: &WriteTransaction) -> Result<ReplicaMeta, StoreError> {
        let table = txn.open_table(META).at(&self.path)?;
        let value = table.get("replica").at(&self.path)?;
        self.parse_meta(value.as_ref().map(|v| v.value()))
    }

    /// Records local changes as ops: gives each the next client seq and a
    /// clock reading, checks them against the hub's rules as this replica
    /// knows them, applies them to the materialized tables, queues them for
    /// the hub and saves the metadata, all in one commit. Seqs and clock are
    /// read inside the transaction, so processes sharing the replica never
    /// reuse an op id. A change the rules refuse writes nothing.
    pub fn commit_local(
        &self,
        actor: &str,
        changes: Vec<(EntityRef, Change)>,
        now_ms: u64,
    ) -> Result<(Vec<Op>, ReplicaMeta), StoreError> {
        self.commit_stamped(actor, changes, now_ms, None)
    }

    /// As [`Replica::commit_local`], but a replayed past is stamped by
    /// `replay`, a clock of its own that ignores what this replica has
    /// seen since; the replica's clock still moves past every stamp. A
    /// replayed write to a field someone wrote later loses to it, as it
    /// would have then.
    pub fn commit_stamped(
        &self,
        actor: &str,
        changes: Vec<(EntityRef, Change)>,
        now_ms: u64,
        replay: Option<&mut crate::model::hlc::Clock>,
    ) -> Result<(Vec<Op>, ReplicaMeta), StoreError> {
        let txn = self.begin_write()?;
        let mut meta = self.meta_in(&txn)?;
        let mut live = crate::model::hlc::Clock::starting_at(meta.hlc);
        let clock = replay.unwrap_or(&mut live);
        let ops: Vec<Op> = changes
            .into_iter()
            .map(|(entity, change)| {
                let op = Op {
                    id: OpId {
                        client: meta.client_id,
                        seq: meta.next_seq,
                    },
                    hlc: clock.tick(now_ms),
                    actor: actor.to_owned(),
                    entity,
                    change,
                };
                meta.next_seq += 1;
                op
            })
            .collect();
        meta.hlc = meta.hlc.max(clock.last());
        self.check_local_in(&txn, &meta, &ops)?;
        self.apply_in(&txn, &ops)?;
        {
            let mut pending = txn.open_table(PENDING).at(&self.path)?;
            for op in &ops {
                let bytes = op.encode().map_err(|e| StoreError::Encode {
                    path: self.path.clone(),
                    detail: format!("op {}: {e}", op.id),
                })?;
                if bytes.len() > spoke_relay::proto::MAX_OP_BYTES {
                    // Nothing is committed: the transaction is dropped.
                    return Err(StoreError::TooLarge {
                        entity: op.entity.to_string(),
                        size: bytes.len(),
                    });
                }
                pending.insert(op.id.seq, bytes.as_slice()).at(&self.path)?;
            }
        }
        self.write_meta(&txn, &meta)?;
        self.commit(txn)?;
        Ok((ops, meta))
    }

    /// Applies ops the hub has sequenced (`(seq, encoded op)`), in seq
    /// order through the hub's rules: accepted ops are applied, refused ones
    /// are recorded (and one of ours is rolled back). Every op is appended
    /// to the log, ours leave the pending queue and the cursor moves to the
    /// last seq, in one commit. Ops already applied are not applied twice.
    pub fn apply_sequenced(&self, batch: &[(u64, Vec<u8>)]) -> Result<ApplyStats, StoreError> {
        let txn = self.begin_write()?;
        let mut meta = self.meta_in(&txn)?;
        let readable: Vec<Op> = batch
            .iter()
            .filter_map(|(_, b)| Op::decode(b).ok())
            .collect();
        let mut rules = self.load_policy_in(&txn, &readable)?;
        let mut accepted: Vec<(u64, &[u8], Op)> = Vec::with_capacity(batch.len());
        let mut refused = Vec::new();
        let mut rollback = false;
        {
            let mut log = txn.open_table(LOG).at(&self.path)?;
            let mut pending = txn.open_table(PENDING).at(&self.path)?;
            for (seq, bytes) in batch {
                log.insert(*seq, bytes.as_slice()).at(&self.path)?;
                meta.cursor = meta.cursor.max(*seq);
                match policy::judge_sequenced(&mut rules, *seq, bytes) {
                    Ok(op) => {
                        if op.id.client == meta.client_id {
                            pending.remove(op.id.seq).at(&self.path)?;
                        }
                        if op.hlc > meta.hlc {
                            meta.hlc = op.hlc;
                        }
                        accepted.push((*seq, bytes.as_slice(), op));
                    }
                    Err(r) => {
                        if let Some(id) = r.own
                            && id.client == meta.client_id
                        {
                            // Our own op, applied when made: take it back.
                            pending.remove(id.seq).at(&self.path)?;
                            rollback = true;
                        }
                        refused.push(r);
                    }
                }
            }
        }
        for r in &refused {
            self.record_refusal_in(&txn, r)?;
        }
        let ops: Vec<Op> = accepted.iter().map(|(_, _, op)| op.clone()).collect();
        let stats = self.apply_in(&txn, &ops)?;
        let chained: Vec<(u64, &[u8], &Op)> = accepted
            .iter()
            .map(|(seq, bytes, op)| (*seq, *bytes, op))
            .collect();
        self.extend_audit_chain(&txn, &chained)?;
        self.save_policy_in(&txn, &mut rules)?;
        if rollback {
            self.rebuild_in(&txn)?;
        }
        self.write_meta(&txn, &meta)?;
        self.commit(txn)?;
        Ok(stats)
    }

    /// Drops acknowledged local ops from the pending queue. Only ops of this
    /// replica's own client id are affected.
    pub fn acknowledge(&self, acks: &[spoke_relay::proto::AckEntry]) -> Result<usize, StoreError> {
        let txn = self.begin_write()?;
        let meta = self.meta_in(&txn)?;
        let mut removed = 0;
        {
            let mut pending = txn.open_table(PENDING).at(&self.path)?;
            for ack in acks.iter().filter(|a| a.id.client == meta.client_id) {
                if pending.remove(ack.id.seq).at(&self.path)?.is_some() {
                    removed += 1;
                }
            }
        }
        self.commit(txn)?;
        Ok(removed)
    }

    /// The hub's log was reset (a new epoch): forgets the old log and state,
    /// keeps the pending local ops and re-applies them, and starts the cursor
    /// over, so the next session downloads the hub's new log.
    pub fn reset_for_epoch(&self, epoch: u64) -> Result<(), StoreError> {
        let txn = self.begin_write()?;
        let mut meta = self.meta_in(&txn)?;
        txn.delete_table(LOG).at(&self.path)?;
        txn.open_table(LOG).at(&self.path)?;
        txn.delete_table(audit::AUDIT_CHAIN).at(&self.path)?;
        self.rebuild_in(&txn)?;
        meta.epoch = epoch;
        meta.cursor = 0;
        meta.head_seen = 0;
        self.write_meta(&txn, &meta)?;
        self.commit(txn)
    }

    /// Rebuilds every materialized table from the stored ops (the hub's log
    /// through the hub's rules, then the pending queue). Stored ops are never
    /// touched; if a pending op cannot be read, nothing is changed and the
    /// error names it.
    pub fn rebuild_cache(&self) -> Result<ApplyStats, StoreError> {
        let txn = self.begin_write()?;
        self.rebuild_in(&txn)?;
        let applied = txn
            .open_table(APPLIED)
            .at(&self.path)?
            .len()
            .at(&self.path)? as usize;
        self.commit(txn)?;
        Ok(ApplyStats {
            applied,
            duplicates: 0,
        })
    }

    /// Empties the materialized tables and the applied-op set.
    fn clear_state_in(&self, txn: &WriteTransaction) -> Result<(), StoreError> {
        txn.delete_table(APPLIED).at(&self.path)?;
        txn.open_table(APPLIED).at(&self.path)?;
        for kind in EntityKind::ALL {
            txn.delete_table(entity_table(kind)).at(&self.path)?;
            txn.open_table(entity_table(kind)).at(&self.path)?;
            txn.delete_table(item_table(kind)).at(&self.path)?;
            txn.open_table(item_table(kind)).at(&self.path)?;
        }
        Ok(())
    }

    fn apply_in(&self, txn: &WriteTransaction, ops: &[Op]) -> Result<ApplyStats, StoreError> {
        let mut stats = ApplyStats::default();
        let mut applied = txn.open_table(APPLIED).at(&self.path)?;
        let mut searchable: Vec<&EntityRef> = Vec::new();
        // Records touched by this batch, read once and written once.
        let mut dirty: HashMap<EntityRef, EntityRecord> = HashMap::new();
        let mut item_tables = HashMap::new();
        for op in ops {
            let key = (op.id.client.0, op.id.seq);
            if applied.insert(key, ()).at(&self.path)?.is_some() {
                stats.duplicates += 1;
                continue;
            }
            stats.applied += 1;
            if op.entity.kind.is_searchable() {
                searchable.push(&op.entity);
            }
            let stamp = op.stamp();
            match &op.change {
                Change::Append(value) => {
                    let kind = op.entity.kind;
                    if let std::collections::hash_map::Entry::Vacant(e) = item_tables.entry(kind) {
                        e.insert(txn.open_table(item_table(kind)).at(&self.path)?);
                    }
                    let Some(table) = item_tables.get_mut(&kind) else {
                        continue;
                    };
                    let item = Item {
                        actor: op.actor.clone(),
                        value: value.clone(),
                    };
                    table
                        .insert(item_key(&op.entity.id, stamp), item.encode().as_slice())
                        .at(&self.path)?;
                }
                change => {
                    if !dirty.contains_key(&op.entity) {
                        let existing = self.read_record_in(txn, &op.entity)?;
                        dirty.insert(op.entity.clone(), existing.unwrap_or_default());
                    }
                    if let Some(record) = dirty.get_mut(&op.entity) {
                        record.merge(stamp, change);
                    }
                }
            }
        }
        let mut by_kind: HashMap<EntityKind, Vec<(EntityRef, EntityRecord)>> = HashMap::new();
        for (entity, record) in dirty {
            by_kind
                .entry(entity.kind)
                .or_default()
                .push((entity, record));
        }
        for (kind, records) in by_kind {
            let mut table = txn.open_table(entity_table(kind)).at(&self.path)?;
            for (entity, record) in records {
                table
                    .insert(entity.id.as_str(), record.encode().as_slice())
                    .at(&self.path)?;
            }
        }
        self.mark_search_dirty(txn, &searchable)?;
        Ok(stats)
    }

    /// Records entities for the search index to look at again.
    fn mark_search_dirty(
        &self,
        txn: &WriteTransaction,
        entities: &[&EntityRef],
    ) -> Result<(), StoreError> {
        if entities.is_empty() {
            return Ok(());
        }
        let mut meta = txn.open_table(SEARCH_META).at(&self.path)?;
        let counter = meta.get("counter").at(&self.path)?.map_or(0, |v| v.value()) + 1;
        meta.insert("counter", counter).at(&self.path)?;
        let mut dirty = txn.open_table(SEARCH_DIRTY).at(&self.path)?;
        let mut seen = std::collections::HashSet::new();
        for entity in entities {
            if seen.insert(*entity) {
                dirty
                    .insert(entity.to_string().as_str(), counter)
                    .at(&self.path)?;
            }
        }
        Ok(())
    }

    fn bump_search_resets(&self, txn: &WriteTransaction) -> Result<(), StoreError> {
        let mut meta = txn.open_table(SEARCH_META).at(&self.path)?;
        let resets = meta.get("resets").at(&self.path)?.map_or(0, |v| v.value()) + 1;
        meta.insert("resets", resets).at(&self.path)?;
        Ok(())
    }

    /// What the search index has to catch up on: the reset count (a change
    /// means reconcile everything) and each entity touched since, with the
    /// change counter to hand back to [`Replica::clear_search_dirty`].
    pub fn search_feed(&self) -> Result<SearchFeed, StoreError> {
        let txn = self.begin_read()?;
        let meta = txn.open_table(SEARCH_META).at(&self.path)?;
        let resets = meta.get("resets").at(&self.path)?.map_or(0, |v| v.value());
        let table = txn.open_table(SEARCH_DIRTY).at(&self.path)?;
        let mut dirty = Vec::new();
        for row in table.iter().at(&self.path)? {
            let (k, v) = row.at(&self.path)?;
            let key = k.value();
            // A key this build cannot read names a kind from a newer build: skip it.
            if let Some(entity) = parse_entity_key(key) {
                dirty.push((entity, v.value()));
            }
        }
        Ok(SearchFeed { resets, dirty })
    }

    /// Drops feed entries the index has caught up on, unless they were
    /// touched again since they were read.
    pub fn clear_search_dirty(&self, done: &[(EntityRef, u64)]) -> Result<(), StoreError> {
        if done.is_empty() {
            return Ok(());
        }
        let txn = self.begin_write()?;
        {
            let mut table = txn.open_table(SEARCH_DIRTY).at(&self.path)?;
            for (entity, counter) in done {
                let key = entity.to_string();
                let current = table.get(key.as_str()).at(&self.path)?.map(|v| v.value());
                if current == Some(*counter) {
                    table.remove(key.as_str()).at(&self.path)?;
                }
            }
        }
        self.commit(txn)
    }

    fn read_record_in(
        &self,
        txn: &WriteTransaction,
        entity: &EntityRef,
    ) -> Result<Option<EntityRecord>, StoreError> {
        let table = txn.open_table(entity_table(entity.kind)).at(&self.path)?;
        let value = table.get(entity.id.as_str()).at(&self.path)?;
        value
            .map(|v| self.decode_record(entity, v.value()))
            .transpose()
    }

    fn decode_record(&self, entity: &EntityRef, bytes: &[u8]) -> Result<EntityRecord, StoreError> {
        EntityRecord::decode(bytes).map_err(|e| StoreError::BadRecord {
            path: self.path.clone(),
            entity: entity.to_string(),
            detail: e.to_string(),
        })
    }

    /// One entity's merged record.
    pub fn record(&self, entity: &EntityRef) -> Result<Option<EntityRecord>, StoreError> {
        let txn = self.begin_read()?;
        let table = txn.open_table(entity_table(entity.kind)).at(&self.path)?;
        let value = table.get(entity.id.as_str()).at(&self.path)?;
        value
            .map(|v| self.decode_record(entity, v.value()))
            .transpose()
    }

    /// Every record of a kind, in id order.
    pub fn records(&self, kind: EntityKind) -> Result<Vec<(String, EntityRecord)>, StoreError> {
        let txn = self.begin_read()?;
        let table = txn.open_table(entity_table(kind)).at(&self.path)?;
        let mut out = Vec::with_capacity(table.len().at(&self.path)? as usize);
        for row in table.iter().at(&self.path)? {
            let (k, v) = row.at(&self.path)?;
            let id = k.value().to_owned();
            let record = self.decode_record(&EntityRef::new(kind, id.as_str()), v.value())?;
            out.push((id, record));
        }
        Ok(out)
    }

    /// Ids of a kind that start with `prefix`, in order (at most `limit`).
    pub fn ids_with_prefix(
        &self,
        kind: EntityKind,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let txn = self.begin_read()?;
        let table = txn.open_table(entity_table(kind)).at(&self.path)?;
        let mut out = Vec::new();
        for row in table.range(prefix..).at(&self.path)? {
            let (k, _) = row.at(&self.path)?;
            let id = k.value();
            if !id.starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push(id.to_owned());
        }
        Ok(out)
    }

    /// The oldest item of `entity` whose value matches `keep`, judged on a
    /// partial decode (`P` names only the fields it needs), so a long list
    /// of items is scanned without building each one.
    pub fn first_item_where<P: serde::de::DeserializeOwned>(
        &self,
        entity: &EntityRef,
        keep: impl Fn(&P) -> bool,
    ) -> Result<Option<Item>, StoreError> {
        #[derive(Deserialize)]
        struct Probe<P> {
            value: P,
        }
        let txn = self.begin_read()?;
        let table = txn.open_table(item_table(entity.kind)).at(&self.path)?;
        let id = entity.id.as_str();
        let lo = (id, 0u64, 0u32, 0u64, 0u64);
        let hi = (id, u64::MAX, u32::MAX, u64::MAX, u64::MAX);
        for row in table.range(lo..=hi).at(&self.path)? {
            let (_, v) = row.at(&self.path)?;
            // An item of another shape is not the one asked for.
            let Ok(probe) = rmp_serde::from_slice::<Probe<P>>(v.value()) else {
                continue;
            };
            if keep(&probe.value) {
                let item = Item::decode(v.value()).map_err(|e| StoreError::BadRecord {
                    path: self.path.clone(),
                    entity: format!("{entity} item"),
                    detail: e.to_string(),
                })?;
                return Ok(Some(item));
            }
        }
        Ok(None)
    }

    /// The items appended to one entity, oldest first.
    pub fn items(&self, entity: &EntityRef) -> Result<Vec<(Stamp, Item)>, StoreError> {
        let txn = self.begin_read()?;
        let table = txn.open_table(item_table(entity.kind)).at(&self.path)?;
        let id = entity.id.as_str();
        let lo = (id, 0u64, 0u32, 0u64, 0u64);
        let hi = (id, u64::MAX, u32::MAX, u64::MAX, u64::MAX);
        let mut out = Vec::new();
        for row in table.range(lo..=hi).at(&self.path)? {
            let (k, v) = row.at(&self.path)?;
            let (_, wall_ms, logical, client, seq) = k.value();
            let stamp = Stamp {
                hlc: Hlc { wall_ms, logical },
                id: OpId {
                    client: ClientId(client),
                    seq,
                },
            };
            let item = Item::decode(v.value()).map_err(|e| StoreError::BadRecord {
                path: self.path.clone(),
                entity: format!("{entity} item {}", stamp.id),
                detail: e.to_string(),
            })?;
            out.push((stamp, item));
        }
        Ok(out)
    }

    /// Ids of every entity of a kind that has appended items, in order (an
    /// entity may have items and no record: a thread that only holds comments).
    pub fn item_entity_ids(&self, kind: EntityKind) -> Result<Vec<String>, StoreError> {
        let txn = self.begin_read()?;
        let table = txn.open_table(item_table(kind)).at(&self.path)?;
        let mut out: Vec<String> = Vec::new();
        let mut next: Option<String> = None;
        loop {
            // Jump from one entity id to the next instead of reading every item.
            let lo = match &next {
                Some(id) => (id.as_str(), 0u64, 0u32, 0u64, 0u64),
                None => ("", 0u64, 0u32, 0u64, 0u64),
            };
            let mut range = table.range(lo..).at(&self.path)?;
            let Some(row) = range.next() else { break };
            let (k, _) = row.at(&self.path)?;
            let id = k.value().0.to_owned();
            // The smallest id strictly greater than `id`.
            next = Some(format!("{id}\u{0}"));
            out.push(id);
        }
        Ok(out)
    }

    /// Local ops waiting for the hub's acknowledgement, oldest first.
    pub fn pending(&self) -> Result<Vec<Op>, StoreError> {
        let txn = self.begin_read()?;
        self.decode_pending(&txn.open_table(PENDING).at(&self.path)?)
    }

    /// Every op of a pending-queue table; one that cannot be read is an
    /// error naming its client seq.
    fn decode_pending(
        &self,
        table: &impl ReadableTable<u64, &'static [u8]>,
    ) -> Result<Vec<Op>, StoreError> {
        let mut out = Vec::new();
        for row in table.iter().at(&self.path)? {
            let (k, v) = row.at(&self.path)?;
            out.push(Op::decode(v.value()).map_err(|e| StoreError::BadOp {
                path: self.path.clone(),
                at: format!("pending client seq {}", k.value()),
                detail: e.to_string(),
            })?);
        }
        Ok(out)
    }

    /// Up to `limit` pending ops with a client seq above `after`, oldest first.
    pub fn pending_after(&self, after: u64, limit: usize) -> Result<Vec<Op>, StoreError> {
        let txn = self.begin_read()?;
        let table = txn.open_table(PENDING).at(&self.path)?;
        let mut out = Vec::new();
        for row in table.range(after.saturating_add(1)..).at(&self.path)? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = row.at(&self.path)?;
            out.push(Op::decode(v.value()).map_err(|e| StoreError::BadOp {
                path: self.path.clone(),
                at: format!("pending client seq {}", k.value()),
                detail: e.to_string(),
            })?);
        }
        Ok(out)
    }

    pub fn pending_count(&self) -> Result<u64, StoreError> {
        self.table_len(PENDING)
    }

    pub fn log_len(&self) -> Result<u64, StoreError> {
        self.table_len(LOG)
    }

    fn table_len<K: redb::Key + 'static>(
        &self,
        def: redb::TableDefinition<K, &[u8]>,
    ) -> Result<u64, StoreError> {
        let txn = self.begin_read()?;
        txn.open_table(def).at(&self.path)?.len().at(&self.path)
    }

    /// Digest of all materialized state; equal to [`crate::model::State::hash`]
    /// of a state built from the same ops.
    pub fn state_hash(&self) -> Result<[u8; 32], StoreError> {
        let txn = self.begin_read()?;
        let mut hasher = StateHasher::default();
        for kind in EntityKind::ALL {
            let table = txn.open_table(entity_table(kind)).at(&self.path)?;
            for row in table.iter().at(&self.path)? {
                let (k, v) = row.at(&self.path)?;
                hasher.entity(&EntityRef::new(kind, k.value()), v.value());
            }
        }
        for kind in EntityKind::ALL {
            let table = txn.open_table(item_table(kind)).at(&self.path)?;
            for row in table.iter().at(&self.path)? {
                let (k, v) = row.at(&self.path)?;
                let (id, wall_ms, logical, client, seq) = k.value();
                let stamp = Stamp {
                    hlc: Hlc { wall_ms, logical },
                    id: OpId {
                        client: ClientId(client),
                        seq,
                    },
                };
                hasher.item(&EntityRef::new(kind, id), stamp, v.value());
            }
        }
        Ok(hasher.finish())
    }

    fn write_meta(&self, txn: &WriteTransaction, meta: &ReplicaMeta) -> Result<(), StoreError> {
        let mut table = txn.open_table(META).at(&self.path)?;
        table
            .insert("replica", encode_meta(meta).as_slice())
            .at(&self.path)?;
        Ok(())
    }

    fn begin_write(&self) -> Result<WriteTransaction, StoreError> {
        self.db.begin_write().at(&self.path)
    }

    fn begin_read(&self) -> Result<redb::ReadTransaction, StoreError> {
        self.db.begin_read().at(&self.path)
    }

    fn commit(&self, txn: WriteTransaction) -> Result<(), StoreError> {
        txn.commit().at(&self.path)
    }
}

/// The search index's view of what changed; see [`Replica::search_feed`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchFeed {
    pub resets: u64,
    pub dirty: Vec<(EntityRef, u64)>,
}

fn parse_entity_key(key: &str) -> Option<EntityRef> {
    let (kind, id) = key.split_once('/')?;
    Some(EntityRef::new(EntityKind::parse(kind)?, id))
}

fn table_exists<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &redb::ReadTransaction,
    def: redb::TableDefinition<K, V>,
    path: &Path,
) -> Result<bool, StoreError> {
    match txn.open_table(def) {
        Ok(_) => Ok(true),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(false),
        Err(e) => Err(StoreError::db(path, e)),
    }
}

/// Attaches the replica path to a redb error.
trait AtPath<T> {
    fn at(self, path: &Path) -> Result<T, StoreError>;
}

impl<T, E: Into<redb::Error>> AtPath<T> for Result<T, E> {
    fn at(self, path: &Path) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::db(path, e))
    }
}

/// Replicas are opened multi-process: `spoke sync --watch` (or the TUI) and
/// one-off commands can use the same replica at once; redb serializes writers.
fn builder() -> redb::Builder {
    let mut b = redb::Builder::new();
    b.set_concurrency_mode(redb::ConcurrencyMode::MultiWriter);
    // The storage engine caches 1 GiB per file by default; a replica of a
    // big hub would grow to that. Reads come mostly from the OS page cache.
    b.set_cache_size(64 * 1024 * 1024);
    b
}

fn item_key(id: &str, s: Stamp) -> (&str, u64, u32, u64, u64) {
    (id, s.hlc.wall_ms, s.hlc.logical, s.id.client.0, s.id.seq)
}

fn encode_meta(meta: &ReplicaMeta) -> Vec<u8> {
    rmp_serde::to_vec_named(meta).unwrap_or_default()
}
