//! Asset reads for the screens that show them (the asset library's import
//! and renditions build on this).

use super::Hub;
use crate::model::asset::Asset;
use crate::model::{EntityKind, EntityRef};
use anyhow::Result;

impl Hub {
    /// Every proposal, for the screens that show them.
    pub fn proposals(&self) -> Result<Vec<crate::model::proposal::Proposal>> {
        Ok(self
            .replica
            .records(EntityKind::Proposal)?
            .iter()
            .map(|(id, rec)| crate::model::proposal::Proposal::from_record(id, rec))
            .filter(|p| !p.deleted)
            .collect())
    }

    /// Every asset with its versions, without deleted ones.
    pub fn assets(&self) -> Result<Vec<Asset>> {
        let mut out = Vec::new();
        for (id, rec) in self.replica.records(EntityKind::Asset)? {
            let items: Vec<_> = self
                .replica
                .items(&EntityRef::new(EntityKind::Asset, id.clone()))?
                .into_iter()
                .map(|(_, item)| item)
                .collect();
            let asset = Asset::from_record(&id, &rec, &items);
            if !asset.deleted {
                out.push(asset);
            }
        }
        Ok(out)
    }
}
