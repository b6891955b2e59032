//! Store errors. Each names the replica file and says what to do.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no replica at {}: run `spoke init` to start a hub, or `spoke hub join URL --token TOKEN`", path.display())]
    Missing { path: PathBuf },

    #[error("a replica already exists at {}; use it, or pick another --home", path.display())]
    AlreadyExists { path: PathBuf },

    #[error(
        "replica {} was written by a newer Spoke (schema {found}; this build reads up to {}): \
         upgrade spoke, or move the file aside to start a fresh replica",
        path.display(), super::SCHEMA_VERSION
    )]
    NewerSchema { path: PathBuf, found: u32 },

    #[error(
        "replica {} is damaged or not a Spoke replica ({detail}). Nothing was changed. \
         Restore it from a backup, or move it aside and run `spoke hub join` again \
         to download the hub (local changes not yet synced live only in this file)",
        path.display()
    )]
    Corrupt { path: PathBuf, detail: String },

    #[error("replica {} is open in another spoke process; close it and try again", path.display())]
    Locked { path: PathBuf },

    #[error(
        "replica {}: the stored state of {entity} is unreadable ({detail}); \
         run any command with --rebuild-cache to rebuild state from the stored ops",
        path.display()
    )]
    BadRecord {
        path: PathBuf,
        entity: String,
        detail: String,
    },

    #[error("replica {}: the stored op at {at} is unreadable: {detail}", path.display())]
    BadOp {
        path: PathBuf,
        at: String,
        detail: String,
    },

    #[error(
        "a change to {entity} is {size} bytes, over the {} the hub accepts in one change; \
         keep large content in files (assets) rather than fields",
        spoke_relay::proto::MAX_OP_BYTES
    )]
    TooLarge { entity: String, size: usize },

    #[error("replica {}: cannot encode {detail}", path.display())]
    Encode { path: PathBuf, detail: String },

    #[error("replica {}: {detail}", path.display())]
    Db { path: PathBuf, detail: String },

    /// The hub's rules refuse the change (nothing was written).
    #[error("the hub refuses this change: {0}")]
    Refused(spoke_relay::policy::Refusal),

    #[error("replica {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl StoreError {
    pub(crate) fn db(path: &Path, err: impl Into<redb::Error>) -> StoreError {
        let err: redb::Error = err.into();
        match err {
            redb::Error::Corrupted(detail) => StoreError::Corrupt {
                path: path.to_owned(),
                detail,
            },
            other => StoreError::Db {
                path: path.to_owned(),
                detail: other.to_string(),
            },
        }
    }

    pub(crate) fn open(path: &Path, err: redb::DatabaseError) -> StoreError {
        match err {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked {
                path: path.to_owned(),
            },
            redb::DatabaseError::Storage(redb::StorageError::Io(e)) => StoreError::Corrupt {
                path: path.to_owned(),
                detail: format!("reading it failed: {e}"),
            },
            other => match redb::Error::from(other) {
                redb::Error::Corrupted(detail) => StoreError::Corrupt {
                    path: path.to_owned(),
                    detail,
                },
                e => StoreError::Corrupt {
                    path: path.to_owned(),
                    detail: e.to_string(),
                },
            },
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.to_owned(),
            source,
        }
    }
}
