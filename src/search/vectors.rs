//! The vector side of hybrid search: text vectors by the catalog's document
//! keys, cosine distance, stored as 8-bit integers, in one of two tiers
//! behind one type.
//!
//! - **Flat** (up to [`FLAT_LIMIT`] vectors): the vectors, each scaled to
//!   the 8-bit range, in a file that is memory-mapped when loaded
//!   and scanned exactly for every query. Building it is writing the vectors
//!   down; recall is exact up to the 8-bit rounding. Vectors added since the
//!   last save live in memory, removed ones are tombstoned, and saving writes
//!   a compacted file.
//! - **Graph**: a usearch HNSW graph, for indexes grown past the flat limit
//!   (the index moves to it when it grows past the limit).

use anyhow::{Context, Result, anyhow, bail};
use memmap2::Mmap;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
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

/// The most vectors the flat tier holds. An exact scan of 100k
/// 384-dimensional 8-bit vectors takes about 2 ms on 2 cores and 200k
/// about 6.7 ms (docs/BENCHMARKS.md, "Search"): this many keeps a hybrid
/// query near 4 ms on a loaded 2-core machine.
pub const FLAT_LIMIT: usize = 150_000;
/// The flat file: magic, dims (u32), reserved (u32), count (u64), then the
/// keys (u64, ascending), the inverse norms of the 8-bit vectors (f32) and
/// the vectors (i8), all little-endian.
const FLAT_MAGIC: &[u8; 8] = b"SPKVFLT1";
const FLAT_HEADER: usize = 24;
/// Scans of fewer vectors than this run on one thread.
const SPLIT_MIN: usize = 20_000;
const SCAN_THREADS: usize = 2;

pub struct VectorIndex {
    dims: usize,
    flat_limit: usize,
    /// Threads a flat scan may use.
    scan_threads: usize,
    tier: Tier,
}

enum Tier {
    Flat(Flat),
    Graph(Index),
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

fn new_graph(dims: usize) -> Result<Index> {
    Index::new(&options(dims)).map_err(|e| anyhow!("creating the vector index: {e}"))
}

impl VectorIndex {
    /// An empty index (flat until it grows past [`FLAT_LIMIT`]).
    pub fn new(dims: usize) -> Result<VectorIndex> {
        VectorIndex::with_flat_limit(dims, FLAT_LIMIT)
    }

    /// An empty index that moves to the graph past `flat_limit` vectors.
    pub fn with_flat_limit(dims: usize, flat_limit: usize) -> Result<VectorIndex> {
        if dims == 0 {
            bail!("a vector index needs at least one dimension");
        }
        Ok(VectorIndex {
            dims,
            flat_limit,
            scan_threads: SCAN_THREADS,
            tier: Tier::Flat(Flat::new(dims)),
        })
    }

    /// An empty graph (usearch HNSW) index whatever its size, as the index
    /// used to be built; for measuring the graph against the flat tier.
    pub fn graph(dims: usize) -> Result<VectorIndex> {
        Ok(VectorIndex {
            dims,
            flat_limit: 0,
            scan_threads: SCAN_THREADS,
            tier: Tier::Graph(new_graph(dims)?),
        })
    }

    /// Loads a saved index; the file must hold vectors of `dims` dimensions.
    pub fn load(path: &Path, dims: usize) -> Result<VectorIndex> {
        let mut magic = [0u8; 8];
        let is_flat = File::open(path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .is_ok()
            && &magic == FLAT_MAGIC;
        if is_flat {
            let file = FlatFile::open(path, dims)?;
            return Ok(VectorIndex {
                dims,
                flat_limit: FLAT_LIMIT,
                scan_threads: SCAN_THREADS,
                tier: Tier::Flat(Flat::from_file(file)),
            });
        }
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
        let index = new_graph(dims)?;
        index
            .load(name)
            .map_err(|e| anyhow!("loading the vector index {}: {e}", path.display()))?;
        Ok(VectorIndex {
            dims,
            flat_limit: FLAT_LIMIT,
            scan_threads: SCAN_THREADS,
            tier: Tier::Graph(index),
        })
    }

    /// Writes the index to `path` (a flat index compacted, then mapped from
    /// there).
    pub fn save(&mut self, path: &Path) -> Result<()> {
        match &mut self.tier {
            Tier::Graph(index) => {
                let name = path
                    .to_str()
                    .with_context(|| format!("index path {} is not UTF-8", path.display()))?;
                index
                    .save(name)
                    .map_err(|e| anyhow!("saving the vector index to {}: {e}", path.display()))
            }
            Tier::Flat(flat) => {
                // Written aside and renamed: `path` may be the mapped file.
                let tmp = path.with_extension("writing");
                flat.write(&tmp)
                    .with_context(|| format!("saving the vector index to {}", path.display()))?;
                std::fs::rename(&tmp, path)
                    .with_context(|| format!("replacing {}", path.display()))?;
                *flat = Flat::from_file(FlatFile::open(path, self.dims)?);
                Ok(())
            }
        }
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Threads a flat scan may split over (at least 1); for measuring.
    pub fn set_scan_threads(&mut self, threads: usize) {
        self.scan_threads = threads.max(1);
    }

    pub fn len(&self) -> usize {
        match &self.tier {
            Tier::Flat(f) => f.len(),
            Tier::Graph(g) => g.size(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True while the index is a flat file scanned exactly.
    pub fn is_flat(&self) -> bool {
        matches!(self.tier, Tier::Flat(_))
    }

    /// Adds vectors (replacing any under the same key); moves to the graph
    /// when the index grows past its flat limit.
    pub fn add_all(&mut self, items: &[(u64, Vec<f32>)]) -> Result<()> {
        for (key, v) in items {
            if v.len() != self.dims {
                return Err(anyhow!(
                    "vector for key {key} has {} dimensions, the index {}",
                    v.len(),
                    self.dims
                ));
            }
        }
        if let Tier::Flat(flat) = &self.tier
            && flat.len() + items.len() > self.flat_limit
        {
            self.tier = Tier::Graph(flat.to_graph(items.len())?);
        }
        match &mut self.tier {
            Tier::Flat(flat) => {
                for (key, v) in items {
                    flat.add(*key, v);
                }
                Ok(())
            }
            Tier::Graph(index) => graph_add_all(index, items),
        }
    }

    pub fn remove(&mut self, key: u64) -> Result<()> {
        match &mut self.tier {
            Tier::Flat(flat) => {
                flat.remove(key);
                Ok(())
            }
            Tier::Graph(index) => index
                .remove(key)
                .map(|_| ())
                .map_err(|e| anyhow!("removing key {key} from the vector index: {e}")),
        }
    }

    pub fn contains(&self, key: u64) -> bool {
        match &self.tier {
            Tier::Flat(flat) => flat.contains(key),
            Tier::Graph(index) => index.contains(key),
        }
    }

    /// Whether a search for `limit` neighbours of `query` can find any (an
    /// empty index or a zero limit finds none); an error when the query's
    /// dimensions are not the index's.
    fn answers(&self, query: &[f32], limit: usize) -> Result<bool> {
        if self.is_empty() || limit == 0 {
            return Ok(false);
        }
        if query.len() != self.dims {
            bail!(
                "the query vector has {} dimensions, the index {}",
                query.len(),
                self.dims
            );
        }
        Ok(true)
    }

    /// Nearest neighbours that `keep` accepts (all when `None`): (key, cosine
    /// distance). Exact in the flat tier, approximate in the graph.
    pub fn search(
        &self,
        query: &[f32],
        limit: usize,
        keep: Option<&dyn Fn(u64) -> bool>,
    ) -> Result<Vec<(u64, f32)>> {
        if !self.answers(query, limit)? {
            return Ok(Vec::new());
        }
        match &self.tier {
            Tier::Flat(flat) => Ok(flat.search(query, limit, keep, self.scan_threads)),
            Tier::Graph(index) => {
                let m = match keep {
                    Some(keep) => index.filtered_search(query, limit, keep),
                    None => index.search(query, limit),
                }
                .map_err(|e| anyhow!("searching the vector index: {e}"))?;
                Ok(m.keys.into_iter().zip(m.distances).collect())
            }
        }
    }

    /// The nearest `limit` of each of `groups` groups that `keep` accepts,
    /// `group` telling a key's (`None`: in none). The flat tier finds them
    /// all in one scan. The graph searches the group with the most of
    /// `members` (every key that may be in a group), and scores the members
    /// of the others one by one: a search of the graph filtered to a
    /// smaller group walks every document nearer the query than that
    /// group's own, most of the graph when the query is in another
    /// language. The work thus grows with the documents outside the largest
    /// group.
    pub fn search_groups(
        &self,
        query: &[f32],
        limit: usize,
        group: &dyn Fn(u64) -> Option<usize>,
        groups: usize,
        members: &[u64],
        keep: Option<&dyn Fn(u64) -> bool>,
    ) -> Result<Vec<Vec<(u64, f32)>>> {
        if !self.answers(query, limit)? {
            return Ok(vec![Vec::new(); groups]);
        }
        let index = match &self.tier {
            Tier::Flat(flat) => {
                return Ok(flat.search_groups(
                    query,
                    limit,
                    group,
                    groups,
                    keep,
                    self.scan_threads,
                ));
            }
            Tier::Graph(index) => index,
        };
        let mut sizes = vec![0usize; groups];
        for key in members {
            if let Some(n) = group(*key).and_then(|g| sizes.get_mut(g)) {
                *n += 1;
            }
        }
        let Some(largest) = (0..groups).max_by_key(|g| (sizes[*g], std::cmp::Reverse(*g))) else {
            return Ok(Vec::new());
        };
        let mut tops: Vec<TopK> = (0..groups).map(|_| TopK::new(limit, keep)).collect();
        let others = members
            .iter()
            .copied()
            .filter(|k| group(*k).is_some_and(|g| g != largest));
        let inv_q = graph_score_each(index, self.dims, query, others, |key, sim| {
            if let Some(top) = group(key).and_then(|g| tops.get_mut(g)) {
                top.offer(sim, || key);
            }
        })?;
        let mut out: Vec<Vec<(u64, f32)>> =
            tops.into_iter().map(|t| t.into_nearest(inv_q)).collect();
        let in_largest = |key: u64| group(key) == Some(largest) && keep.is_none_or(|k| k(key));
        out[largest] = self.search(query, limit, Some(&in_largest))?;
        Ok(out)
    }

    /// Exact neighbours by brute force, to measure the approximate search.
    pub fn exact_search(&self, query: &[f32], limit: usize) -> Result<Vec<(u64, f32)>> {
        if self.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        match &self.tier {
            Tier::Flat(_) => self.search(query, limit, None),
            Tier::Graph(index) => {
                let m = index
                    .exact_search(query, limit)
                    .map_err(|e| anyhow!("searching the vector index exactly: {e}"))?;
                Ok(m.keys.into_iter().zip(m.distances).collect())
            }
        }
    }

    /// Bytes in memory: the heap's (vectors added since the last save, the
    /// tombstones, or the whole graph) and the mapped file's.
    pub fn memory_usage(&self) -> usize {
        self.heap_bytes() + self.mapped_bytes()
    }

    /// Bytes on the heap.
    pub fn heap_bytes(&self) -> usize {
        match &self.tier {
            Tier::Flat(f) => f.heap_bytes(),
            Tier::Graph(g) => g.memory_usage(),
        }
    }

    /// Bytes of the memory-mapped file (resident only as far as it is read).
    pub fn mapped_bytes(&self) -> usize {
        match &self.tier {
            Tier::Flat(f) => f.base.as_ref().map_or(0, |b| b.map.len()),
            Tier::Graph(_) => 0,
        }
    }
}

/// Adds to the graph, growing it as needed; several threads share the work.
/// Scores each of `keys` the graph holds against `query` exactly, from
/// its stored 8-bit vector, handing `each` the key and its score (scaled
/// by the query's quantisation); returns the factor that turns a score
/// into a cosine similarity.
fn graph_score_each(
    index: &Index,
    dims: usize,
    query: &[f32],
    keys: impl Iterator<Item = u64>,
    mut each: impl FnMut(u64, f32),
) -> Result<f32> {
    let mut q = Vec::with_capacity(dims);
    let inv_q = quantise(query, &mut q);
    let mut v = vec![0i8; dims];
    for key in keys {
        let found = index
            .get(key, &mut v)
            .map_err(|e| anyhow!("reading key {key} from the vector index: {e}"))?;
        if found == 0 {
            continue;
        }
        let norm = dot_i8(&v, &v);
        if norm > 0 {
            each(key, dot_i8(&q, &v) as f32 / (norm as f32).sqrt());
        }
    }
    Ok(inv_q)
}

fn graph_add_all(index: &Index, items: &[(u64, Vec<f32>)]) -> Result<()> {
    let needed = index.size() + items.len();
    if needed > index.capacity() {
        let target = needed.max(index.capacity() * 2).max(64);
        index
            .reserve_capacity_and_threads(target, ADD_THREADS)
            .map_err(|e| anyhow!("growing the vector index to {target}: {e}"))?;
    }
    let add_one = |key: u64, v: &[f32]| -> Result<()> {
        if index.contains(key) {
            index
                .remove(key)
                .map_err(|e| anyhow!("removing key {key} from the vector index: {e}"))?;
        }
        index
            .add(key, v)
            .map_err(|e| anyhow!("adding key {key} to the vector index: {e}"))
    };
    if items.len() < 256 {
        for (key, v) in items {
            add_one(*key, v)?;
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
                        add_one(*key, v)?;
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

// ---------------------------------------------------------------------------
// The flat tier
// ---------------------------------------------------------------------------

/// Scales `v` so its largest component is ±127 and rounds it to 8-bit
/// integers, appending them to `out`; returns the inverse norm of the 8-bit
/// vector (0 for a zero or non-finite vector, which then matches nothing).
/// Cosine only needs the direction, so each vector gets the whole 8-bit
/// range: a passage's many small components keep about four times the
/// precision they would keep scaled from unit length (x127).
fn quantise(v: &[f32], out: &mut Vec<i8>) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if !(max.is_finite() && max > 0.0) {
        out.extend(std::iter::repeat_n(0i8, v.len()));
        return 0.0;
    }
    let scale = 127.0 / max;
    let start = out.len();
    out.extend(
        v.iter()
            .map(|x| (x * scale).round().clamp(-127.0, 127.0) as i8),
    );
    let sq: i64 = out[start..]
        .iter()
        .map(|q| i64::from(*q) * i64::from(*q))
        .sum();
    if sq == 0 {
        0.0
    } else {
        1.0 / (sq as f32).sqrt()
    }
}

/// The dot product of two 8-bit vectors, written so the compiler
/// vectorises it (32 lanes of 32-bit sums).
#[inline(always)]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let mut acc = [0i32; 32];
    let (ca, ra) = a.as_chunks::<32>();
    let (cb, rb) = b.as_chunks::<32>();
    for (x, y) in ca.iter().zip(cb) {
        for i in 0..32 {
            acc[i] += i32::from(x[i]) * i32::from(y[i]);
        }
    }
    let mut sum: i32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        sum += i32::from(*x) * i32::from(*y);
    }
    sum
}

#[inline(always)]
fn scan_generic(vectors: &[i8], dims: usize, query: &[i8], out: &mut [i32]) {
    for (v, o) in vectors.chunks_exact(dims).zip(out) {
        *o = dot_i8(query, v);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn scan_avx2(vectors: &[i8], dims: usize, query: &[i8], out: &mut [i32]) {
    scan_generic(vectors, dims, query, out)
}

/// Dot products of `query` with each `dims`-long vector in `vectors`.
fn scan_one(vectors: &[i8], dims: usize, query: &[i8], out: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        unsafe { scan_avx2(vectors, dims, query, out) };
        return;
    }
    scan_generic(vectors, dims, query, out)
}

/// [`scan_one`] split over `threads` when there is enough to scan.
fn scan(vectors: &[i8], dims: usize, query: &[i8], out: &mut [i32], threads: usize) {
    let n = out.len();
    if n < SPLIT_MIN || threads <= 1 {
        return scan_one(vectors, dims, query, out);
    }
    let per = n.div_ceil(threads);
    std::thread::scope(|s| {
        for (vs, os) in vectors.chunks(per * dims).zip(out.chunks_mut(per)) {
            s.spawn(move || scan_one(vs, dims, query, os));
        }
    });
}

/// A candidate for the top k: higher similarity first, then lower key.
#[derive(Clone, Copy, PartialEq)]
struct Candidate {
    sim: f32,
    key: u64,
}

impl Eq for Candidate {}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sim
            .total_cmp(&other.sim)
            .then(other.key.cmp(&self.key))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The best `limit` candidates seen, the worst on top.
struct TopK<'a> {
    limit: usize,
    heap: BinaryHeap<Reverse<Candidate>>,
    keep: Option<&'a dyn Fn(u64) -> bool>,
}

impl<'a> TopK<'a> {
    fn new(limit: usize, keep: Option<&'a dyn Fn(u64) -> bool>) -> TopK<'a> {
        TopK {
            limit,
            heap: BinaryHeap::with_capacity(limit + 1),
            keep,
        }
    }

    /// The kept candidates, nearest first: (key, cosine distance).
    fn into_nearest(self, inv_q: f32) -> Vec<(u64, f32)> {
        let mut best: Vec<Candidate> = self.heap.into_iter().map(|Reverse(c)| c).collect();
        best.sort_by(|a, b| b.cmp(a));
        best.into_iter()
            .map(|c| (c.key, 1.0 - c.sim * inv_q))
            .collect()
    }

    /// Offers a candidate; its key is read (and `keep` asked) only when it
    /// would enter the top k.
    #[inline]
    fn offer(&mut self, sim: f32, key: impl FnOnce() -> u64) {
        if self.heap.len() >= self.limit
            && let Some(Reverse(worst)) = self.heap.peek()
            && sim <= worst.sim
        {
            return;
        }
        let c = Candidate { sim, key: key() };
        if self.keep.is_some_and(|keep| !keep(c.key)) {
            return;
        }
        if self.heap.len() < self.limit {
            self.heap.push(Reverse(c));
        } else if let Some(mut top) = self.heap.peek_mut()
            && c > top.0
        {
            *top = Reverse(c);
        }
    }
}

/// A saved flat file, mapped and checked.
struct FlatFile {
    map: Mmap,
    count: usize,
    dims: usize,
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

impl FlatFile {
    fn open(path: &Path, dims: usize) -> Result<FlatFile> {
        let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        // SAFETY: index files are written once under a new name and never
        // changed in place (saves rename a new file over), so the mapping
        // stays valid; its contents are checked below before use.
        let map = unsafe { Mmap::map(&file) }
            .with_context(|| format!("cannot map {}", path.display()))?;
        let damaged =
            |why: String| anyhow!("the vector index {} is damaged: {why}", path.display());
        if map.len() < FLAT_HEADER || &map[..8] != FLAT_MAGIC {
            return Err(damaged("not a flat vector file".into()));
        }
        let file_dims = u32::from_le_bytes([map[8], map[9], map[10], map[11]]) as usize;
        if file_dims != dims {
            bail!(
                "the vector index {} holds {file_dims}-dimensional vectors, expected {dims}",
                path.display()
            );
        }
        let count = usize::try_from(le_u64(&map, 16)).map_err(|_| damaged("count".into()))?;
        let expected = count
            .checked_mul(12 + dims)
            .and_then(|b| b.checked_add(FLAT_HEADER));
        if expected != Some(map.len()) {
            return Err(damaged(format!(
                "{} bytes for {count} vectors of {dims} dimensions",
                map.len()
            )));
        }
        let f = FlatFile { map, count, dims };
        let mut previous = None;
        for i in 0..count {
            let k = f.key(i);
            if previous.is_some_and(|p| p >= k) {
                return Err(damaged("keys out of order".into()));
            }
            previous = Some(k);
        }
        if !f.inv_norms().all(|n| n.is_finite() && n >= 0.0) {
            return Err(damaged("a vector's norm is not a number".into()));
        }
        Ok(f)
    }

    fn key(&self, i: usize) -> u64 {
        le_u64(&self.map, FLAT_HEADER + 8 * i)
    }

    fn inv_norms(&self) -> impl Iterator<Item = f32> + '_ {
        let at = FLAT_HEADER + 8 * self.count;
        self.map[at..at + 4 * self.count]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn vectors(&self) -> &[i8] {
        let at = FLAT_HEADER + 12 * self.count;
        let bytes = &self.map[at..at + self.count * self.dims];
        // SAFETY: i8 and u8 have the same size and alignment.
        unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<i8>(), bytes.len()) }
    }

    fn vector(&self, i: usize) -> &[i8] {
        &self.vectors()[i * self.dims..(i + 1) * self.dims]
    }

    fn find(&self, key: u64) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.key(mid).cmp(&key) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(mid),
            }
        }
        None
    }
}

struct Flat {
    dims: usize,
    base: Option<FlatFile>,
    /// Tombstones over the file's vectors.
    dead: Vec<bool>,
    dead_count: usize,
    /// Vectors added since the file was written.
    added_keys: Vec<u64>,
    added_inv_norms: Vec<f32>,
    added: Vec<i8>,
    added_at: HashMap<u64, usize>,
}

impl Flat {
    fn new(dims: usize) -> Flat {
        Flat {
            dims,
            base: None,
            dead: Vec::new(),
            dead_count: 0,
            added_keys: Vec::new(),
            added_inv_norms: Vec::new(),
            added: Vec::new(),
            added_at: HashMap::new(),
        }
    }

    fn from_file(file: FlatFile) -> Flat {
        let mut f = Flat::new(file.dims);
        f.dead = vec![false; file.count];
        f.base = Some(file);
        f
    }

    fn base_count(&self) -> usize {
        self.base.as_ref().map_or(0, |b| b.count)
    }

    fn len(&self) -> usize {
        self.base_count() - self.dead_count + self.added_keys.len()
    }

    fn heap_bytes(&self) -> usize {
        self.dead.capacity()
            + self.added_keys.capacity() * 8
            + self.added_inv_norms.capacity() * 4
            + self.added.capacity()
            + self.added_at.capacity() * 24
    }

    fn contains(&self, key: u64) -> bool {
        self.added_at.contains_key(&key)
            || self
                .base
                .as_ref()
                .and_then(|b| b.find(key))
                .is_some_and(|i| !self.dead[i])
    }

    fn add(&mut self, key: u64, v: &[f32]) {
        self.remove(key);
        let inv = quantise(v, &mut self.added);
        self.added_at.insert(key, self.added_keys.len());
        self.added_keys.push(key);
        self.added_inv_norms.push(inv);
    }

    fn remove(&mut self, key: u64) {
        if let Some(i) = self.added_at.remove(&key) {
            let last = self.added_keys.len() - 1;
            self.added_keys.swap_remove(i);
            self.added_inv_norms.swap_remove(i);
            let d = self.dims;
            if i != last {
                self.added.copy_within(last * d..(last + 1) * d, i * d);
                self.added_at.insert(self.added_keys[i], i);
            }
            self.added.truncate(last * d);
            return;
        }
        if let Some(i) = self.base.as_ref().and_then(|b| b.find(key))
            && !self.dead[i]
        {
            self.dead[i] = true;
            self.dead_count += 1;
        }
    }

    fn search(
        &self,
        query: &[f32],
        limit: usize,
        keep: Option<&dyn Fn(u64) -> bool>,
        threads: usize,
    ) -> Vec<(u64, f32)> {
        let mut top = TopK::new(limit, keep);
        let inv_q = self.scan_all(query, threads, |sim, key| top.offer(sim, key));
        top.into_nearest(inv_q)
    }

    /// The nearest `limit` of each group in one scan: `group` tells a key's
    /// group (`None`: in none).
    fn search_groups(
        &self,
        query: &[f32],
        limit: usize,
        group: &dyn Fn(u64) -> Option<usize>,
        groups: usize,
        keep: Option<&dyn Fn(u64) -> bool>,
        threads: usize,
    ) -> Vec<Vec<(u64, f32)>> {
        let mut tops: Vec<TopK> = (0..groups).map(|_| TopK::new(limit, keep)).collect();
        let inv_q = self.scan_all(query, threads, |sim, key| {
            let key = key();
            if let Some(top) = group(key).and_then(|g| tops.get_mut(g)) {
                top.offer(sim, || key);
            }
        });
        tops.into_iter().map(|t| t.into_nearest(inv_q)).collect()
    }

    /// Scores every live vector against `query`, handing each score (scaled
    /// by the query's quantisation) and a way to read its key to `each`;
    /// returns the factor that turns a score into a cosine similarity.
    fn scan_all(
        &self,
        query: &[f32],
        threads: usize,
        mut each: impl FnMut(f32, &dyn Fn() -> u64),
    ) -> f32 {
        let mut q = Vec::with_capacity(self.dims);
        let inv_q = quantise(query, &mut q);
        if let Some(base) = &self.base {
            let mut dots = vec![0i32; base.count];
            scan(base.vectors(), self.dims, &q, &mut dots, threads);
            for (i, (dot, inv)) in dots.iter().zip(base.inv_norms()).enumerate() {
                if !self.dead[i] {
                    each(*dot as f32 * inv, &|| base.key(i));
                }
            }
        }
        if !self.added_keys.is_empty() {
            let mut dots = vec![0i32; self.added_keys.len()];
            scan(&self.added, self.dims, &q, &mut dots, threads);
            for (i, (dot, inv)) in dots.iter().zip(&self.added_inv_norms).enumerate() {
                each(*dot as f32 * inv, &|| self.added_keys[i]);
            }
        }
        inv_q
    }

    /// Every live vector by key, ascending: (key, inverse norm, vector).
    fn live(&self) -> Vec<(u64, f32, &[i8])> {
        let mut out = Vec::with_capacity(self.len());
        if let Some(base) = &self.base {
            for ((i, inv), dead) in base.inv_norms().enumerate().zip(&self.dead) {
                if !dead {
                    out.push((base.key(i), inv, base.vector(i)));
                }
            }
        }
        for (i, key) in self.added_keys.iter().enumerate() {
            let v = &self.added[i * self.dims..(i + 1) * self.dims];
            out.push((*key, self.added_inv_norms[i], v));
        }
        out.sort_unstable_by_key(|(k, _, _)| *k);
        out
    }

    fn write(&self, path: &Path) -> Result<()> {
        let live = self.live();
        let file = File::create(path).with_context(|| format!("writing {}", path.display()))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let dims = u32::try_from(self.dims).context("dimensions")?;
        w.write_all(FLAT_MAGIC)?;
        w.write_all(&dims.to_le_bytes())?;
        w.write_all(&0u32.to_le_bytes())?;
        w.write_all(&(live.len() as u64).to_le_bytes())?;
        for (k, _, _) in &live {
            w.write_all(&k.to_le_bytes())?;
        }
        for (_, inv, _) in &live {
            w.write_all(&inv.to_le_bytes())?;
        }
        for (_, _, v) in &live {
            // SAFETY: i8 and u8 have the same size and alignment.
            let bytes = unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), v.len()) };
            w.write_all(bytes)?;
        }
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(())
    }

    /// A graph of these vectors, with room for `more`.
    fn to_graph(&self, more: usize) -> Result<Index> {
        let index = new_graph(self.dims)?;
        let live = self.live();
        let target = (live.len() + more).max(64);
        index
            .reserve_capacity_and_threads(target, ADD_THREADS)
            .map_err(|e| anyhow!("growing the vector index to {target}: {e}"))?;
        let items: Vec<(u64, Vec<f32>)> = live
            .into_iter()
            .map(|(k, _, v)| (k, v.iter().map(|x| f32::from(*x) / 127.0).collect()))
            .collect();
        graph_add_all(&index, &items)?;
        Ok(index)
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

    fn items(n: u64, dims: usize) -> Vec<(u64, Vec<f32>)> {
        (0..n).map(|k| (k, unit(k, dims))).collect()
    }

    #[test]
    fn finds_the_vector_itself_and_survives_save_and_load() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut ix = VectorIndex::new(32).expect("new");
        ix.add_all(&items(500, 32)).expect("add");
        assert_eq!(ix.len(), 500);
        assert!(ix.is_flat());
        let hit = ix.search(&unit(42, 32), 1, None).expect("search");
        assert_eq!(hit[0].0, 42);
        assert!(hit[0].1.abs() < 0.01, "{hit:?}");
        let path = dir.path().join("v.bin");
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
        for limit in [FLAT_LIMIT, 0] {
            let mut ix = VectorIndex::with_flat_limit(16, limit).expect("new");
            ix.add_all(&items(50, 16)).expect("add");
            assert_eq!(ix.is_flat(), limit > 0);
            ix.remove(7).expect("remove");
            assert!(!ix.contains(7) && ix.contains(8));
            let hits = ix.search(&unit(7, 16), 50, None).expect("search");
            assert!(hits.iter().all(|h| h.0 != 7));
            let odd = ix
                .search(&unit(3, 16), 10, Some(&|k| k % 2 == 1))
                .expect("search");
            assert!(!odd.is_empty() && odd.iter().all(|h| h.0 % 2 == 1));
        }
    }

    /// Each group gets its nearest members: in the flat tier exactly what a
    /// search filtered to it gives; in the graph (the largest group searched,
    /// the others scored one by one) the true nearest by f32 cosine, up to
    /// the 8-bit rounding. With removals, additions since a save, a filter,
    /// and members the index does not hold.
    #[test]
    fn grouped_search_gives_each_group_its_nearest() {
        let dir = tempfile::tempdir().expect("tmp");
        let all = items(340, 16);
        for limit in [FLAT_LIMIT, 0] {
            let mut ix = VectorIndex::with_flat_limit(16, limit).expect("new");
            ix.add_all(&all[..300]).expect("add");
            let path = dir.path().join(format!("v{limit}"));
            ix.save(&path).expect("save");
            let mut ix = VectorIndex::load(&path, 16).expect("load");
            ix.add_all(&all[300..]).expect("add more");
            ix.remove(12).expect("remove");
            // Keys 0..=99 in none, then three groups by remainder, the
            // first twice as large as the others.
            let group =
                |k: u64| (k >= 100).then_some(if k % 4 < 2 { 0 } else { (k % 4) as usize - 1 });
            let keep = |k: u64| !k.is_multiple_of(5);
            let members: Vec<u64> = (0..340).chain([9_999, u64::MAX]).collect();
            let q = unit(4242, 16);
            let groups = ix
                .search_groups(&q, 8, &group, 3, &members, Some(&keep))
                .expect("groups");
            assert_eq!(groups.len(), 3);
            for (g, got) in groups.iter().enumerate() {
                let in_group = |k: u64| group(k) == Some(g) && keep(k) && k != 12;
                assert_eq!(got.len(), 8, "group {g}, flat limit {limit}");
                assert!(got.iter().all(|(k, _)| in_group(*k)), "group {g}: {got:?}");
                let keys = |hits: &[(u64, f32)]| hits.iter().map(|h| h.0).collect::<Vec<_>>();
                if limit > 0 {
                    let want = ix.search(&q, 8, Some(&in_group)).expect("search");
                    assert_eq!(keys(got), keys(&want), "group {g}");
                }
                // Against exact cosine: nothing returned falls more than the
                // rounding below the 8th nearest member.
                let cos =
                    |k: u64| -> f32 { all[k as usize].1.iter().zip(&q).map(|(a, b)| a * b).sum() };
                let mut exact: Vec<f32> = (0..340).filter(|k| in_group(*k)).map(cos).collect();
                exact.sort_by(|a, b| b.total_cmp(a));
                for (k, d) in got {
                    assert!(
                        cos(*k) >= exact[7] - 0.02,
                        "group {g}, key {k}, flat limit {limit}"
                    );
                    assert!((1.0 - d - cos(*k)).abs() < 0.02, "group {g}, key {k}: {d}");
                }
            }
        }
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_crash() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("bad.usearch");
        std::fs::write(&path, b"not an index at all").expect("write");
        assert!(VectorIndex::load(&path, 16).is_err());
    }

    /// The exact scan against f32 cosine computed here.
    #[test]
    fn the_flat_scan_ranks_like_exact_cosine() {
        let dims = 96;
        let mut ix = VectorIndex::new(dims).expect("new");
        let all = items(3000, dims);
        ix.add_all(&all).expect("add");
        let (mut found, mut wanted) = (0, 0);
        for q in 5000..5050u64 {
            let qv = unit(q, dims);
            let mut exact: Vec<(u64, f32)> = all
                .iter()
                .map(|(k, v)| (*k, v.iter().zip(&qv).map(|(a, b)| a * b).sum::<f32>()))
                .collect();
            exact.sort_by(|a, b| b.1.total_cmp(&a.1));
            let want: Vec<u64> = exact[..10].iter().map(|e| e.0).collect();
            let got = ix.search(&qv, 10, None).expect("search");
            let sim0 = 1.0 - got[0].1;
            assert!((sim0 - exact[0].1).abs() < 0.02, "{sim0} vs {}", exact[0].1);
            found += got.iter().filter(|g| want.contains(&g.0)).count();
            wanted += 10;
        }
        assert!(found as f64 / wanted as f64 >= 0.9, "{found}/{wanted}");
    }

    /// Both tiers with the same data, the move from flat to graph, and the
    /// flat file's round trip with removals and additions since the save.
    #[test]
    fn both_tiers_agree_and_the_index_moves_to_the_graph_past_its_limit() {
        let dir = tempfile::tempdir().expect("tmp");
        let dims = 32;
        let mut flat = VectorIndex::with_flat_limit(dims, 300).expect("new");
        flat.add_all(&items(200, dims)).expect("add");
        let path = dir.path().join("flat.bin");
        flat.save(&path).expect("save");
        assert!(flat.mapped_bytes() > 0);
        // Changes after the save: one removed from the file, one added.
        flat.remove(10).expect("remove");
        flat.add_all(&[(1000, unit(1000, dims))]).expect("add");
        flat.add_all(&[(11, unit(9999, dims))]).expect("replace");
        assert_eq!(flat.len(), 200);
        assert_eq!(
            flat.search(&unit(1000, dims), 1, None).expect("s")[0].0,
            1000
        );
        assert_eq!(flat.search(&unit(9999, dims), 1, None).expect("s")[0].0, 11);
        assert!(
            flat.search(&unit(10, dims), 200, None)
                .expect("s")
                .iter()
                .all(|h| h.0 != 10)
        );
        let path2 = dir.path().join("flat2.bin");
        flat.save(&path2).expect("save");
        let back = VectorIndex::load(&path2, dims).expect("load");
        assert_eq!(back.len(), 200);
        assert!(!back.contains(10) && back.contains(1000));
        for q in [3u64, 50, 1000, 9999] {
            assert_eq!(
                back.search(&unit(q, dims), 5, None).expect("s"),
                flat.search(&unit(q, dims), 5, None).expect("s")
            );
        }
        // Saving over the file that is mapped.
        flat.save(&path2).expect("save again");
        assert_eq!(flat.len(), 200);

        // Past the limit: the graph, with the same nearest neighbour.
        let mut grown = VectorIndex::load(&path2, dims).expect("load");
        grown.flat_limit = 300;
        grown.add_all(&items(400, dims)[200..]).expect("grow");
        assert!(!grown.is_flat());
        assert_eq!(grown.len(), 400);
        let mut reference = VectorIndex::with_flat_limit(dims, 1000).expect("new");
        reference.add_all(&items(400, dims)).expect("add");
        for q in [5u64, 250, 399] {
            let g = grown.search(&unit(q, dims), 1, None).expect("s");
            let f = reference.search(&unit(q, dims), 1, None).expect("s");
            assert_eq!(g[0].0, q);
            assert_eq!(f[0].0, q);
        }
        let odd = grown
            .search(&unit(3, dims), 10, Some(&|k| k % 2 == 1))
            .expect("search");
        assert!(!odd.is_empty() && odd.iter().all(|h| h.0 % 2 == 1));
        let gpath = dir.path().join("graph.bin");
        grown.save(&gpath).expect("save graph");
        let back = VectorIndex::load(&gpath, dims).expect("load graph");
        assert!(!back.is_flat());
        assert_eq!(back.search(&unit(250, dims), 1, None).expect("s")[0].0, 250);
    }

    #[test]
    fn hostile_flat_files_are_errors() {
        let dir = tempfile::tempdir().expect("tmp");
        let dims = 8;
        let mut ix = VectorIndex::new(dims).expect("new");
        ix.add_all(&items(20, dims)).expect("add");
        let path = dir.path().join("v.bin");
        ix.save(&path).expect("save");
        let good = std::fs::read(&path).expect("read");
        let bad = dir.path().join("bad.bin");
        let check = |bytes: &[u8], what: &str| {
            std::fs::write(&bad, bytes).expect("write");
            let err = VectorIndex::load(&bad, dims).err();
            assert!(err.is_some(), "{what} was accepted");
        };
        check(&good[..good.len() - 1], "a truncated file");
        check(&good[..FLAT_HEADER], "a header alone");
        check(&good[..10], "half a header");
        let mut more = good.clone();
        more.push(0);
        check(&more, "a longer file");
        let mut count = good.clone();
        count[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        check(&count, "a huge count");
        let mut order = good.clone();
        order[FLAT_HEADER..FLAT_HEADER + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        check(&order, "keys out of order");
        let mut norm = good.clone();
        let at = FLAT_HEADER + 8 * 20;
        norm[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        check(&norm, "a bad norm");
        let err = VectorIndex::load(&path, 16).err().expect("wrong dims");
        assert!(err.to_string().contains("8-dimensional"), "{err}");
        assert!(err.to_string().contains("v.bin"), "{err}");
    }

    #[test]
    fn the_kernel_matches_a_plain_dot_product() {
        let a: Vec<i8> = (0..100).map(|i| (i * 37 % 255 - 127) as i8).collect();
        let b: Vec<i8> = (0..100).map(|i| (i * 91 % 255 - 127) as i8).collect();
        let plain: i32 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| i32::from(*x) * i32::from(*y))
            .sum();
        assert_eq!(dot_i8(&a, &b), plain);
        let mut out = vec![0i32; 50_000];
        let many: Vec<i8> = a.iter().copied().cycle().take(100 * 50_000).collect();
        for threads in [1, 2, 3] {
            out.fill(0);
            scan(&many, 100, &b, &mut out, threads);
            assert!(out.iter().all(|d| *d == plain));
        }
    }
}
