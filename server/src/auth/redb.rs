//! The registry of one data folder: `DATA/relay.redb`, a `hubs` table and a
//! `tokens` table keyed by id, each value a MessagePack record. Opened in
//! multi-writer mode so the admin CLI can change it while a relay serves.

use super::{HubRecord, RegistryError, TokenRecord};
use redb::{Builder, ConcurrencyMode, Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const HUBS: TableDefinition<&str, &[u8]> = TableDefinition::new("hubs");
const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");

/// Hubs and tokens in `DATA/relay.redb`.
pub struct RedbRegistry {
    db: Database,
    path: PathBuf,
}

impl RedbRegistry {
    pub fn open(data: &Path) -> Result<RedbRegistry, RegistryError> {
        let path = data.join("relay.redb");
        let err = |detail: String| RegistryError::Db {
            path: path.clone(),
            detail,
        };
        std::fs::create_dir_all(data).map_err(|e| err(e.to_string()))?;
        // Hubs and tokens are a few records: a small cache, not the storage
        // engine's 1 GiB default.
        let db = Builder::new()
            .set_cache_size(2 * 1024 * 1024)
            .set_concurrency_mode(ConcurrencyMode::MultiWriter)
            .create(&path)
            .map_err(|e| err(e.to_string()))?;
        let registry = RedbRegistry { db, path };
        let txn = registry.db.begin_write().map_err(|e| registry.err(e))?;
        txn.open_table(HUBS).map_err(|e| registry.err(e))?;
        txn.open_table(TOKENS).map_err(|e| registry.err(e))?;
        txn.commit().map_err(|e| registry.err(e))?;
        Ok(registry)
    }

    fn err(&self, e: impl Into<redb::Error>) -> RegistryError {
        RegistryError::Db {
            path: self.path.clone(),
            detail: e.into().to_string(),
        }
    }

    pub fn insert_hub(&self, hub: &HubRecord) -> Result<(), RegistryError> {
        self.put(HUBS, &hub.id, hub)
    }

    pub fn hub(&self, id: &str) -> Result<Option<HubRecord>, RegistryError> {
        self.get(HUBS, id)
    }

    pub fn hubs(&self) -> Result<Vec<HubRecord>, RegistryError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(HUBS).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.err(e))? {
            let (_, v) = row.map_err(|e| self.err(e))?;
            if let Ok(h) = rmp_serde::from_slice(v.value()) {
                out.push(h);
            }
        }
        Ok(out)
    }

    pub fn insert_token(&self, record: &TokenRecord) -> Result<(), RegistryError> {
        self.put(TOKENS, &record.id, record)
    }

    pub fn token(&self, id: &str) -> Result<Option<TokenRecord>, RegistryError> {
        self.get(TOKENS, id)
    }

    /// Marks a token revoked; the hub must match.
    pub fn revoke(&self, hub: &str, token_id: &str) -> Result<TokenRecord, RegistryError> {
        let mut record: TokenRecord = self
            .get(TOKENS, token_id)?
            .filter(|r: &TokenRecord| r.hub == hub)
            .ok_or_else(|| RegistryError::UnknownToken(token_id.to_owned(), hub.to_owned()))?;
        record.revoked = true;
        self.put(TOKENS, token_id, &record)?;
        Ok(record)
    }

    pub fn tokens(&self, hub: &str) -> Result<Vec<TokenRecord>, RegistryError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(TOKENS).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| self.err(e))? {
            let (_, v) = row.map_err(|e| self.err(e))?;
            if let Ok(t) = rmp_serde::from_slice::<TokenRecord>(v.value())
                && t.hub == hub
            {
                out.push(t);
            }
        }
        Ok(out)
    }

    fn put<T: Serialize>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        key: &str,
        value: &T,
    ) -> Result<(), RegistryError> {
        let bytes = rmp_serde::to_vec_named(value).map_err(|e| RegistryError::Db {
            path: self.path.clone(),
            detail: e.to_string(),
        })?;
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut t = txn.open_table(table).map_err(|e| self.err(e))?;
            t.insert(key, bytes.as_slice()).map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }

    fn get<T: for<'de> Deserialize<'de>>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        key: &str,
    ) -> Result<Option<T>, RegistryError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = txn.open_table(table).map_err(|e| self.err(e))?;
        let Some(v) = t.get(key).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        rmp_serde::from_slice(v.value())
            .map(Some)
            .map_err(|e| RegistryError::Db {
                path: self.path.clone(),
                detail: format!("record {key} is unreadable: {e}"),
            })
    }
}
