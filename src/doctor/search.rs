//! The search index beside the replica: built or not, documents, vectors
//! owed, layout format, and whether the next search will rebuild it.

use super::Check;
use super::paths::ReplicaFound;
use crate::config::SearchConfig;
use crate::search::embed::EmbedderId;
use crate::search::index::{SearchIndex, format_version, index_dir, is_saved};
use crate::store::Replica;
use std::path::{Path, PathBuf};

const AREA: &str = "search";

/// What the index looked like when the replica was open.
#[derive(Debug, Clone)]
pub enum IndexFacts {
    /// No index was ever saved.
    NotBuilt {
        waiting: usize,
    },
    Open {
        dir: PathBuf,
        documents: usize,
        /// `None` when only words were saved (the embedder never answered).
        vectors: Option<usize>,
        embedder: EmbedderId,
        generation: u64,
        /// Why the next search starts over, if it will.
        rebuild: Option<String>,
        /// Entities changed since the last catch-up.
        waiting: usize,
    },
    Unreadable(String),
}

/// Reads the index as a search would open it (without catching it up).
pub fn facts(replica: &Replica, home: &Path, config: &SearchConfig) -> IndexFacts {
    let waiting = match replica.search_feed() {
        Ok(feed) => feed.dirty.len(),
        Err(e) => return IndexFacts::Unreadable(format!("the replica's search feed: {e}")),
    };
    let dir = index_dir(home);
    if !is_saved(&dir) {
        return IndexFacts::NotBuilt { waiting };
    }
    let embedder = match crate::search::embed::from_config(config) {
        Ok(e) => e,
        Err(e) => {
            return IndexFacts::Unreadable(format!(
                "not opened: the configured embedder is unusable ({e:#})"
            ));
        }
    };
    match SearchIndex::open(&dir, embedder, replica) {
        Ok(index) => IndexFacts::Open {
            dir,
            documents: index.len(),
            vectors: index.vectors().map(|v| v.len()),
            embedder: index.embedder_id().clone(),
            generation: index.generation(),
            rebuild: index.pending_rebuild().map(str::to_owned),
            waiting,
        },
        Err(e) => IndexFacts::Unreadable(format!("{e:#}")),
    }
}

/// The index check. `answered_dims` is what the embedder answered just now.
pub fn index(replica: &ReplicaFound, answered_dims: Option<usize>) -> Check {
    let Some(facts) = &replica.facts else {
        return Check::warn(
            AREA,
            "index",
            "not checked: the replica could not be read",
            "see the `data folder` check",
        );
    };
    match &facts.index {
        IndexFacts::NotBuilt { waiting } => Check::ok(
            AREA,
            "index",
            format!(
                "not built yet: the first search builds it (changed entities waiting: {waiting})"
            ),
        ),
        IndexFacts::Unreadable(why) => Check::warn(
            AREA,
            "index",
            why.clone(),
            "`spoke index rebuild` builds it again from the replica",
        ),
        IndexFacts::Open {
            dir,
            documents,
            vectors,
            embedder,
            generation,
            rebuild,
            waiting,
        } => {
            if let Some(why) = rebuild {
                return Check::warn(
                    AREA,
                    "index",
                    format!("{}: the next search rebuilds it ({why})", dir.display()),
                    "`spoke index rebuild` does it now",
                );
            }
            let owed = vectors.map_or(0, |v| documents.saturating_sub(v));
            if owed > 0 {
                return Check::warn(
                    AREA,
                    "index",
                    format!(
                        "{owed} of {documents} documents wait for their vectors (the embedder failed when they were added); they are found by words only"
                    ),
                    "fix the embedder (see `embedder`); the next search retries, or run `spoke index rebuild`",
                );
            }
            if let Some(now) = answered_dims
                && embedder.dims > 0
                && now != embedder.dims
            {
                return Check::warn(
                    AREA,
                    "index",
                    format!(
                        "built with {} dimensions, but the embedder now answers with {now}",
                        embedder.dims
                    ),
                    "`spoke index rebuild` builds it again with the current embedder",
                );
            }
            let vectors = match vectors {
                Some(n) => format!("{n} vectors"),
                None => "words only".to_owned(),
            };
            Check::ok(
                AREA,
                "index",
                format!(
                    "built: {documents} documents, {vectors}, embedder {embedder}, format {}, generation {generation}; changed entities waiting for the next search: {waiting}",
                    format_version()
                ),
            )
        }
    }
}
