//! The vector side of hybrid search: a usearch HNSW index of text vectors,
//! cosine distance, stored as 8-bit integers. Keys are the catalog's document
//! keys.

use anyhow::{Context, Result, anyhow};
use std::path::Path;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

/// Graph degree and beam widths: at 100k local vectors, recall@10 against
/// exact search is 0.965 and a search takes about 2.7 ms (docs/BENCHMARKS.md).
/// Short queries of hashed features sit far from everything, which is hard
/// for a graph search: narrower settings lose recall quickly there.
pub const CONNECTIVITY: usize = 32;
pub const EXPANSION_ADD: usize = 256;
pub const EXPANSION_SEARCH: usize = 512;
/// Stored as 8-bit integers: a quarter of f32's memory, faster distances.
pub const SCALAR: ScalarKind = ScalarKind::I8;
/// Threads that may add at once (each add takes one).
const ADD_THREADS: usize = 2;

pub struct VectorIndex {
    index: Index,
    dims: usize,
}

fn options(dims: usize) -> IndexOptions {
    IndexOptions {
        dimensions: dims,
        metric: MetricKind::Cos,
        quantization: SCALAR,
        connectivity: CONNECTIVITY,
        expansion_add: EXPANSION_ADD,
        expansion_search: EXPANSION_SEARCH,
        multi: false,
    }
}

impl VectorIndex {
    pub fn new(dims: usize) -> Result<VectorIndex> {
        let index =
            Index::new(&options(dims)).map_err(|e| anyhow!("creating the vector index: {e}"))?;
        Ok(VectorIndex { index, dims })
    }

    /// Loads a saved index; the file must hold vectors of `dims` dimensions.
    pub fn load(path: &Path, dims: usize) -> Result<VectorIndex> {
        let name = path
            .to_str()
            .with_context(|| format!("index path {} is not UTF-8", path.display()))?;
        let meta = Index::metadata(name)
            .map_err(|e| anyhow!("reading the vector index {}: {e}", path.display()))?;
        if meta.dimensions as usize != dims {
            return Err(anyhow!(
                "the vector index {} holds {}-dimensional vectors, expected {dims}",
                path.display(),
                meta.dimensions
            ));
        }
        let ix = VectorIndex::new(dims)?;
        ix.index
            .load(name)
            .map_err(|e| anyhow!("loading the vector index {}: {e}", path.display()))?;
        Ok(ix)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let name = path
            .to_str()
            .with_context(|| format!("index path {} is not UTF-8", path.display()))?;
        self.index
            .save(name)
            .map_err(|e| anyhow!("saving the vector index to {}: {e}", path.display()))
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    pub fn len(&self) -> usize {
        self.index.size()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds vectors, growing the index as needed; several threads share the work.
    pub fn add_all(&self, items: &[(u64, Vec<f32>)]) -> Result<()> {
        for (key, v) in items {
            if v.len() != self.dims {
                return Err(anyhow!(
                    "vector for key {key} has {} dimensions, the index {}",
                    v.len(),
                    self.dims
                ));
            }
        }
        let needed = self.index.size() + items.len();
        if needed > self.index.capacity() {
            let target = needed.max(self.index.capacity() * 2).max(64);
            self.index
                .reserve_capacity_and_threads(target, ADD_THREADS)
                .map_err(|e| anyhow!("growing the vector index to {target}: {e}"))?;
        }
        if items.len() < 256 {
            for (key, v) in items {
                self.add_one(*key, v)?;
            }
            return Ok(());
        }
        let per = items.len().div_ceil(ADD_THREADS);
        std::thread::scope(|s| {
            let workers: Vec<_> = items
                .chunks(per)
                .map(|part| {
                    s.spawn(move || -> Result<()> {
                        for (key, v) in part {
                            self.add_one(*key, v)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for w in workers {
                w.join()
                    .map_err(|_| anyhow!("a vector index worker failed"))??;
            }
            Ok(())
        })
    }

    fn add_one(&self, key: u64, v: &[f32]) -> Result<()> {
        if self.index.contains(key) {
            self.remove(key)?;
        }
        self.index
            .add(key, v)
            .map_err(|e| anyhow!("adding key {key} to the vector index: {e}"))
    }

    pub fn remove(&self, key: u64) -> Result<()> {
        self.index
            .remove(key)
            .map(|_| ())
            .map_err(|e| anyhow!("removing key {key} from the vector index: {e}"))
    }

    pub fn contains(&self, key: u64) -> bool {
        self.index.contains(key)
    }

    /// Approximate nearest neighbours that `keep` accepts (all when `None`):
    /// (key, cosine distance).
    pub fn search(
        &self,
        query: &[f32],
        limit: usize,
        keep: Option<&dyn Fn(u64) -> bool>,
    ) -> Result<Vec<(u64, f32)>> {
        if self.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let m = match keep {
            Some(keep) => self.index.filtered_search(query, limit, keep),
            None => self.index.search(query, limit),
        }
        .map_err(|e| anyhow!("searching the vector index: {e}"))?;
        Ok(m.keys.into_iter().zip(m.distances).collect())
    }

    /// Exact neighbours by brute force, to measure the approximate search.
    pub fn exact_search(&self, query: &[f32], limit: usize) -> Result<Vec<(u64, f32)>> {
        if self.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let m = self
            .index
            .exact_search(query, limit)
            .map_err(|e| anyhow!("searching the vector index exactly: {e}"))?;
        Ok(m.keys.into_iter().zip(m.distances).collect())
    }

    pub fn memory_usage(&self) -> usize {
        self.index.memory_usage()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: u64, dims: usize) -> Vec<f32> {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut v: Vec<f32> = (0..dims)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect();
        crate::search::embed::normalize(&mut v);
        v
    }

    #[test]
    fn finds_the_vector_itself_and_survives_save_and_load() {
        let dir = tempfile::tempdir().expect("tmp");
        let ix = VectorIndex::new(32).expect("new");
        let items: Vec<(u64, Vec<f32>)> = (0..500).map(|k| (k, unit(k, 32))).collect();
        ix.add_all(&items).expect("add");
        assert_eq!(ix.len(), 500);
        let hit = ix.search(&unit(42, 32), 1, None).expect("search");
        assert_eq!(hit[0].0, 42);
        let path = dir.path().join("v.usearch");
        ix.save(&path).expect("save");
        let back = VectorIndex::load(&path, 32).expect("load");
        assert_eq!(
            back.search(&unit(42, 32), 3, None).expect("search"),
            ix.search(&unit(42, 32), 3, None).expect("search")
        );
        let err = VectorIndex::load(&path, 64).err().expect("wrong dims");
        assert!(err.to_string().contains("32-dimensional"), "{err}");
    }

    #[test]
    fn removed_keys_and_filtered_keys_are_not_returned() {
        let ix = VectorIndex::new(16).expect("new");
        let items: Vec<(u64, Vec<f32>)> = (0..50).map(|k| (k, unit(k, 16))).collect();
        ix.add_all(&items).expect("add");
        ix.remove(7).expect("remove");
        let hits = ix.search(&unit(7, 16), 50, None).expect("search");
        assert!(hits.iter().all(|h| h.0 != 7));
        let odd = ix
            .search(&unit(3, 16), 10, Some(&|k| k % 2 == 1))
            .expect("search");
        assert!(!odd.is_empty() && odd.iter().all(|h| h.0 % 2 == 1));
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_crash() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("bad.usearch");
        std::fs::write(&path, b"not an index at all").expect("write");
        assert!(VectorIndex::load(&path, 16).is_err());
    }
}
