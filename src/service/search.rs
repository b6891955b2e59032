//! Search from a member's point of view: the index beside this replica,
//! caught up before it answers.

use super::Hub;
use crate::config::SearchConfig;
use crate::search::index::{RefreshReport, SearchIndex, index_dir};
use anyhow::{Context, Result};

impl Hub {
    /// Opens the search index in `HOME/search` with the configured embedder.
    pub fn open_search(&self, cfg: &SearchConfig) -> Result<SearchIndex> {
        let embedder = crate::search::embed::from_config(cfg)?;
        SearchIndex::open(&index_dir(&self.home()), embedder, &self.replica)
            .context("opening the search index")
    }

    /// Catches the index up with this replica.
    pub fn refresh_search(
        &self,
        index: &mut SearchIndex,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<RefreshReport> {
        index
            .refresh(&self.replica, progress)
            .context("updating the search index")
    }
}
