//! The search index kept beside the replica in `HOME/search/`: a catalog of
//! documents (what each vector key is), the BM25 segment and the vectors,
//! saved together under one generation number and a manifest that names the
//! embedder that built them. The BM25 segment and a flat vector file are
//! memory-mapped when the index is opened.
//!
//! The replica is the source of truth; the index catches up from the
//! replica's search feed (entities touched since the last catch-up, whoever
//! touched them: a command, the TUI or sync). New vectors are computed before
//! anything changes, so a failing embedder leaves the index as it was.

use super::catalog::Catalog;
use super::docs::{DocKind, SearchDoc, all_searchable, docs_for_entity, knowledge_chunk};
use super::embed::{EmbedError, Embedder, EmbedderId, Purpose};
use super::lexical::{DocTerms, LexicalIndex};
use super::vectors::VectorIndex;
use crate::model::ids::hex;
use crate::model::{EntityKind, EntityRef};
use crate::store::{Replica, SearchFeed};
use crate::sync::blobs::sha256_file;
use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Raised when the files' layout changes; an older index is rebuilt.
const FORMAT: u32 = 3;
const MANIFEST: &str = "manifest.json";
const LOCK: &str = "lock";
/// Texts sent to the embedder per call, so progress can be shown.
const EMBED_BATCH: usize = 64;
/// Reciprocal rank fusion constant (the usual 60).
const RRF_K: f32 = 60.0;
/// A word match scoring this share of the query's ceiling (every query
/// term present, each about once) counts fully in the fusion.
const FULL_WORD_MATCH: f32 = 0.45;
/// Below this strength (against every query term, also those no document
/// holds), a match on pairs of CJK characters with no vector match behind
/// it is not returned: it shares only a pair or two with the query, which
/// unrelated words do. A shared word of a script with spaces counts too,
/// unless the vectors found nothing above the noise anywhere and the
/// question holds at least [`LONGER_QUESTION`] words: then one of them
/// ("why is my radiator cold at the top") is not an answer.
const MEANINGFUL_WORD_MATCH: f32 = 0.3;
/// Words (stop words aside) that make a question longer than a word or
/// two: with fewer, the word a match shares is likely the point of it
/// ("what does onboarding say?").
const LONGER_QUESTION: usize = 3;
/// The corpus's noise level, measured with [`NOISE_PROBES`].
const NOISE: &str = "noise.json";
/// What a noise measure holds: 2 added the floors between languages, 3
/// measures them with more probes.
const NOISE_VERSION: u32 = 3;
/// Documents taken from the ranking among those written in a language
/// the query names.
const NAMED_LANGUAGE_DEPTH: usize = 10;
/// Most documents a query word may be found in and still point to the one
/// language they are all written in.
const IMPLIED_LANGUAGE_HOLDERS: usize = 3;
/// Queries about nothing a creative studio writes about, in several
/// languages: the best similarity they reach is what noise looks like here.
const NOISE_PROBES: &[&str] = &[
    "lattice gauge theory of quantum chromodynamics",
    "amortisation schedule of a thirty year mortgage",
    "sourdough starter hydration ratio",
    "subduction zones along tectonic plate boundaries",
    "the dosage of antibiotics for a child with an ear infection",
    "who won the cup final in extra time last season",
    "xqzv jwpk trlm vbnq",
    "量子力学における波動関数の収縮",
    "地方税の確定申告と還付金の計算方法",
    "子供の中耳炎に抗生物質はどれくらい飲ませますか",
    "昨日のサッカーの試合は延長戦で決まった",
    "蛋白质折叠的分子动力学模拟",
    "高速铁路桥梁的抗震设计规范",
    "儿童中耳炎应该服用多少抗生素",
    "昨天的足球比赛在加时赛中决出胜负",
    "receta tradicional de paella valenciana",
    "la fotosíntesis de las plantas en el desierto",
    "la dosis de antibióticos para un niño con otitis",
    "quién ganó la final de copa en la prórroga",
    "Frist für die Einkommensteuererklärung",
    "die Geschichte der Dampflokomotive in Preußen",
    "die Dosierung von Antibiotika bei einem Kind mit Mittelohrentzündung",
    "wer hat das Pokalfinale in der Verlängerung gewonnen",
    "how pyroclastic flows form during a volcanic eruption",
    "stone masonry techniques in medieval castles",
    "why deep sea fish survive the water pressure",
    "proof that there are infinitely many prime numbers",
    "resolving the dominant seventh chord in four-part harmony",
    "火山の噴火で火砕流が発生する仕組み",
    "中世ヨーロッパの城の石積み技術",
    "深海魚が高い水圧に耐えられる理由",
    "素数が無限に存在することの証明",
    "和声学における属七の和音の解決",
    "火山喷发时火山碎屑流是怎样形成的",
    "中世纪欧洲城堡的石砌技术",
    "深海鱼为什么能承受巨大的水压",
    "证明素数有无穷多个",
    "和声学中属七和弦如何解决",
    "cómo se forma un flujo piroclástico en una erupción volcánica",
    "técnicas de cantería en los castillos medievales",
    "por qué los peces abisales resisten la presión del agua",
    "demostración de que hay infinitos números primos",
    "la resolución del acorde de séptima de dominante",
    "wie entsteht ein pyroklastischer Strom bei einem Vulkanausbruch",
    "Mauertechnik mittelalterlicher Burgen",
    "warum halten Tiefseefische den Wasserdruck aus",
    "Beweis, dass es unendlich viele Primzahlen gibt",
    "die Auflösung des Dominantseptakkords in der Harmonielehre",
];
/// Everything that says which index files belong together and who built them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    embedder: EmbedderId,
    generation: u64,
    /// The replica's client id: an index never serves another replica.
    replica_client: u64,
    /// The replica's reset count this index has caught up with.
    resets: u64,
    docs: usize,
    catalog_file: String,
    catalog_sha256: String,
    vectors_file: String,
    vectors_sha256: String,
    /// A full catch-up failed to embed: the next one is full too.
    #[serde(default)]
    owes_full: bool,
    /// The BM25 segment (format 2 on).
    #[serde(default)]
    lexical_file: String,
    #[serde(default)]
    lexical_sha256: String,
}

/// What a key in the index stands for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub doc_id: String,
    pub kind: DocKind,
    pub entity: EntityRef,
    pub display_id: String,
    pub title: String,
    pub status: Option<String>,
    pub tags: Vec<String>,
    pub brief: Option<String>,
    pub content_hash: u64,
    /// The language the text is written in, as a two-letter code (zeros
    /// when it cannot be told).
    #[serde(default)]
    pub lang: [u8; 2],
}

impl CatalogEntry {
    pub fn language(&self) -> Option<&str> {
        std::str::from_utf8(&self.lang)
            .ok()
            .filter(|l| !l.starts_with('\0'))
    }
}

/// A text's language as [`super::terms::language`] tells it.
type Language = Option<&'static str>;

/// A two-letter language code as a catalog entry keeps it.
fn lang_code(lang: Option<&str>) -> [u8; 2] {
    match lang.map(str::as_bytes) {
        Some([a, b]) => [*a, *b],
        _ => [0, 0],
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CatalogFile {
    next_key: u64,
    entries: Vec<(u64, CatalogEntry)>,
}

/// What a catch-up did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RefreshReport {
    /// Documents embedded (new or changed text).
    pub embedded: usize,
    /// Documents whose title or filters changed without new text.
    pub updated: usize,
    pub removed: usize,
    /// Everything was reconciled (new index, embedder change, replica reset).
    pub full: bool,
    /// Why the index started over, when it did.
    pub rebuilt_because: Option<String>,
    /// Another process holds the index; nothing was done.
    pub busy: bool,
}

impl RefreshReport {
    pub fn changed(&self) -> bool {
        self.embedded + self.updated + self.removed > 0
    }
}

/// What a refresh will do, read from the replica by
/// [`SearchIndex::plan_refresh`]; it holds the index's lock.
pub struct RefreshPlan {
    lock: File,
    feed: SearchFeed,
    report: RefreshReport,
    to_embed: Vec<SearchDoc>,
    to_update: Vec<(u64, SearchDoc)>,
    to_remove: Vec<u64>,
}

impl RefreshPlan {
    /// Documents to embed: the slow part of applying the plan.
    pub fn to_embed(&self) -> usize {
        self.to_embed.len()
    }
}

/// A refresh applied and saved; [`AppliedRefresh::finish`] tells the replica
/// which changes the index now covers.
pub struct AppliedRefresh {
    lock: File,
    dirty: Vec<(EntityRef, u64)>,
    report: RefreshReport,
}

impl AppliedRefresh {
    /// Clears the replica's marks for the changes this refresh read (a change
    /// made since keeps its mark) and releases the index's lock.
    pub fn finish(self, replica: &Replica) -> Result<RefreshReport> {
        replica
            .clear_search_dirty(&self.dirty)
            .context("clearing the replica's search feed")?;
        drop(self.lock);
        let r = &self.report;
        if r.full || r.embedded + r.updated + r.removed > 0 {
            tracing::info!(
                target: "spoke::search",
                embedded = r.embedded,
                updated = r.updated,
                removed = r.removed,
                full = r.full,
                rebuilt_because = r.rebuilt_because.as_deref().unwrap_or(""),
                "search index refreshed"
            );
        }
        Ok(self.report)
    }
}

/// A search request: the words and the filters.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub text: String,
    /// Empty means every kind.
    pub kinds: Vec<DocKind>,
    /// Brief status (briefs only).
    pub status: Option<String>,
    pub tag: Option<String>,
    /// Only documents of this brief (the brief, its comments, its assets).
    pub brief: Option<String>,
    pub limit: usize,
    /// Leave out one of the two rankings (to measure what each brings).
    pub only: Option<Ranking>,
}

/// One of the two rankings hybrid search fuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranking {
    Vector,
    Lexical,
}

/// One ranked result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub kind: DocKind,
    pub id: String,
    pub title: String,
    pub snippet: String,
    /// The document's whole text (for showing it in full; not printed).
    #[serde(skip)]
    pub text: String,
    /// Fused score: the sum of w/(60 + rank) over the rankings that found it
    /// (w = 1 for BM25, the embedder's fusion weight for vectors).
    pub score: f32,
    pub entity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brief: Option<String>,
    /// Rank in the vector ranking (1-based), if it was there.
    pub vector_rank: Option<usize>,
    /// Rank in the BM25 ranking (1-based), if it was there.
    pub lexical_rank: Option<usize>,
}

/// Results and anything the user should know about how they were made.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SearchResults {
    pub hits: Vec<Hit>,
    pub warnings: Vec<String>,
}

/// A passage the agent can quote, with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Passage {
    pub kind: DocKind,
    pub id: String,
    pub title: String,
    pub text: String,
    pub score: f32,
    pub entity: String,
}

pub struct SearchIndex {
    dir: PathBuf,
    embedder: Box<dyn Embedder>,
    /// The embedder as recorded; dims resolved once known.
    id: EmbedderId,
    generation: u64,
    resets: u64,
    replica_client: u64,
    /// Set when the loaded files could not be used.
    rebuilt_because: Option<String>,
    has_manifest: bool,
    next_key: u64,
    catalog: Catalog,
    by_entity: HashMap<EntityRef, Vec<u64>>,
    lexical: LexicalIndex,
    vectors: Option<VectorIndex>,
    /// The corpus's noise level, when measured.
    noise: Option<Noise>,
    /// A full catch-up could not embed everything; the next one is full.
    owes_full: bool,
    /// Vectors the flat tier holds before a new index moves to the graph.
    flat_limit: usize,
}

/// `HOME/search`.
pub fn index_dir(home: &Path) -> PathBuf {
    home.join("search")
}

/// The layout version this build reads and writes.
pub fn format_version() -> u32 {
    FORMAT
}

/// Whether an index was ever saved in `dir` (its manifest is there).
pub fn is_saved(dir: &Path) -> bool {
    dir.join(MANIFEST).is_file()
}

impl SearchIndex {
    /// Opens the index in `dir` for `replica`, or starts an empty one when
    /// there is none, when it was built by another embedder or for another
    /// replica, or when its files are damaged (the reason is kept and
    /// reported by the next refresh).
    pub fn open(dir: &Path, embedder: Box<dyn Embedder>, replica: &Replica) -> Result<SearchIndex> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the search index folder {}", dir.display()))?;
        let replica_client = replica.meta()?.client_id.0;
        let id = embedder.id();
        let mut index = SearchIndex {
            dir: dir.to_owned(),
            embedder,
            id,
            generation: 0,
            resets: 0,
            replica_client,
            rebuilt_because: None,
            has_manifest: false,
            next_key: 1,
            catalog: Catalog::default(),
            by_entity: HashMap::new(),
            lexical: LexicalIndex::new(),
            vectors: None,
            noise: None,
            owes_full: false,
            flat_limit: super::vectors::FLAT_LIMIT,
        };
        index.load_saved()?;
        index.noise = std::fs::read(dir.join(NOISE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        Ok(index)
    }

    /// Builds new vectors into the graph past `limit` vectors instead of
    /// [`super::vectors::FLAT_LIMIT`] (0: always the graph); for measuring
    /// the two tiers against each other.
    pub fn set_flat_limit(&mut self, limit: usize) {
        self.flat_limit = limit;
    }

    /// Why the next refresh starts over, if it will.
    pub fn pending_rebuild(&self) -> Option<&str> {
        self.rebuilt_because.as_deref()
    }

    pub fn embedder_id(&self) -> &EmbedderId {
        &self.id
    }

    pub fn len(&self) -> usize {
        self.catalog.len()
    }

    pub fn is_empty(&self) -> bool {
        self.catalog.is_empty()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Bytes the index files take on disk.
    pub fn disk_size(&self) -> u64 {
        std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Counts of indexed documents by kind.
    pub fn counts(&self) -> Vec<(DocKind, usize)> {
        let mut counts: HashMap<DocKind, usize> = HashMap::new();
        for e in self.catalog.values() {
            *counts.entry(e.kind).or_default() += 1;
        }
        DocKind::ALL
            .into_iter()
            .map(|k| (k, counts.get(&k).copied().unwrap_or(0)))
            .collect()
    }

    /// Forgets the loaded index. The generation number is kept: the next
    /// save must never reuse the name of files a manifest may point to.
    fn reset_memory(&mut self) {
        self.resets = 0;
        self.owes_full = false;
        self.has_manifest = false;
        self.next_key = 1;
        self.catalog.clear();
        self.by_entity.clear();
        self.lexical = LexicalIndex::new();
        self.vectors = None;
        self.id = self.embedder.id();
    }

    fn read_manifest(&self) -> Result<Option<Manifest>, String> {
        let path = self.dir.join(MANIFEST);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{} is damaged ({e})", path.display()))
    }

    /// Loads the saved generation if it can be used as is.
    fn load_saved(&mut self) -> Result<()> {
        self.reset_memory();
        let manifest = match self.read_manifest() {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(()),
            Err(why) => {
                self.rebuilt_because = Some(why);
                return Ok(());
            }
        };
        let configured = self.embedder.id();
        if manifest.format != FORMAT {
            self.rebuilt_because = Some(format!(
                "the index was written in format {}, this build uses {FORMAT}",
                manifest.format
            ));
            return Ok(());
        }
        if manifest.replica_client != self.replica_client {
            self.rebuilt_because = Some("the index belongs to another replica".into());
            return Ok(());
        }
        self.generation = self.generation.max(manifest.generation);
        if manifest.embedder.kind != configured.kind
            || manifest.embedder.model != configured.model
            || (configured.dims != 0 && configured.dims != manifest.embedder.dims)
        {
            self.rebuilt_because = Some(format!(
                "the embedder changed from {} to {}",
                manifest.embedder, configured
            ));
            // The words still answer while the new vectors are being made.
            if self.load_files(&manifest, false).is_err() {
                self.reset_memory();
            }
            return Ok(());
        }
        match self.load_files(&manifest, true) {
            Ok(()) => {
                self.id = manifest.embedder.clone();
                self.generation = manifest.generation;
                self.resets = manifest.resets;
                self.owes_full = manifest.owes_full;
                self.has_manifest = true;
            }
            Err(e) => {
                self.reset_memory();
                self.rebuilt_because = Some(format!("{e:#}"));
            }
        }
        Ok(())
    }

    /// Loads the catalog and the words, and the vectors when `with_vectors`.
    fn load_files(&mut self, m: &Manifest, with_vectors: bool) -> Result<()> {
        let catalog_path = self.dir.join(&m.catalog_file);
        let vectors_path = self.dir.join(&m.vectors_file);
        let lexical_path = self.dir.join(&m.lexical_file);
        let bytes = std::fs::read(&catalog_path)
            .with_context(|| format!("cannot read {}", catalog_path.display()))?;
        if hex(&Sha256::digest(&bytes)) != m.catalog_sha256 {
            return Err(anyhow!(
                "{} is damaged (checksum mismatch)",
                catalog_path.display()
            ));
        }
        // Dimensions 0: the embedder never answered, only words were saved.
        let vectors = if with_vectors && m.embedder.dims > 0 {
            // Checked before usearch reads it: it trusts its input. A flat
            // file is checked again when mapped.
            if sha256_file(&vectors_path)? != m.vectors_sha256 {
                return Err(anyhow!(
                    "{} is damaged (checksum mismatch)",
                    vectors_path.display()
                ));
            }
            Some(VectorIndex::load(&vectors_path, m.embedder.dims)?)
        } else {
            None
        };
        if sha256_file(&lexical_path)? != m.lexical_sha256 {
            return Err(anyhow!(
                "{} is damaged (checksum mismatch)",
                lexical_path.display()
            ));
        }
        let lexical = LexicalIndex::load(&lexical_path)?;
        let file: CatalogFile = rmp_serde::from_slice(&bytes)
            .with_context(|| format!("{} is unreadable", catalog_path.display()))?;
        drop(bytes);
        if lexical.len() != file.entries.len() {
            return Err(anyhow!(
                "{} holds {} documents, the catalog {}",
                lexical_path.display(),
                lexical.len(),
                file.entries.len()
            ));
        }
        self.catalog.reserve(file.entries.len());
        for (key, entry) in file.entries {
            self.by_entity
                .entry(entry.entity.clone())
                .or_default()
                .push(key);
            self.catalog.insert(key, entry);
        }
        self.lexical = lexical;
        self.next_key = file.next_key;
        self.vectors = vectors;
        Ok(())
    }

    /// Forgets everything; the next refresh rebuilds from the replica.
    pub fn clear(&mut self, why: &str) {
        self.reset_memory();
        self.rebuilt_because = Some(why.to_owned());
    }

    /// Catches up with the replica: embeds new and changed documents, drops
    /// deleted ones, saves, and clears the feed entries it handled.
    /// `progress(done, total)` is called as documents are embedded.
    pub fn refresh(
        &mut self,
        replica: &Replica,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<RefreshReport> {
        match self.plan_refresh(replica)? {
            Ok(plan) => self.apply_refresh(plan, progress)?.finish(replica),
            Err(busy) => {
                tracing::debug!(target: "spoke::search", dir = %self.dir.display(), "search index busy in another process");
                Ok(busy)
            }
        }
    }

    /// The first part of [`Self::refresh`]: reads what changed from the
    /// replica and decides what to embed, update and remove. Quick (no
    /// embedding); the plan holds the index's lock until it is finished.
    /// `Err` carries the report of an index another process is updating.
    pub fn plan_refresh(
        &mut self,
        replica: &Replica,
    ) -> Result<std::result::Result<RefreshPlan, RefreshReport>> {
        let lock = match self.try_lock()? {
            Some(lock) => lock,
            None => {
                return Ok(Err(RefreshReport {
                    busy: true,
                    ..RefreshReport::default()
                }));
            }
        };
        // Another process may have saved a newer generation.
        if self.on_disk_generation() != Some(self.generation) && self.rebuilt_because.is_none() {
            self.load_saved()?;
        }
        let feed = replica
            .search_feed()
            .context("reading the replica's search feed")?;
        let full = !self.has_manifest || feed.resets != self.resets || self.owes_full;
        let mut entities: Vec<EntityRef> = if full {
            let mut all = all_searchable(replica)?;
            all.extend(self.by_entity.keys().cloned());
            all
        } else {
            feed.dirty.iter().map(|(e, _)| e.clone()).collect()
        };
        // A brief's title shows on its comments.
        let threads: Vec<EntityRef> = entities
            .iter()
            .filter(|e| e.kind == EntityKind::Brief)
            .map(|e| {
                EntityRef::new(
                    EntityKind::Thread,
                    crate::model::brief::thread_id_for_brief(&e.id),
                )
            })
            .collect();
        entities.extend(threads);
        entities.sort();
        entities.dedup();

        let report = RefreshReport {
            full,
            rebuilt_because: self.rebuilt_because.clone(),
            ..RefreshReport::default()
        };
        let mut to_embed: Vec<SearchDoc> = Vec::new();
        let mut to_update: Vec<(u64, SearchDoc)> = Vec::new();
        let mut to_remove: Vec<u64> = Vec::new();
        for entity in &entities {
            let docs = docs_for_entity(replica, entity)
                .with_context(|| format!("reading {entity} for the search index"))?;
            let wanted: HashSet<&str> = docs.iter().map(|d| d.doc_id.as_str()).collect();
            for key in self.by_entity.get(entity).into_iter().flatten() {
                if let Some(e) = self.catalog.get(key)
                    && !wanted.contains(e.doc_id.as_str())
                {
                    to_remove.push(*key);
                }
            }
            for doc in docs {
                match self
                    .catalog
                    .key_of_doc(&doc.doc_id)
                    .and_then(|k| self.catalog.get(&k).map(|e| (k, e)))
                {
                    Some((key, e))
                        if e.content_hash == doc.content_hash()
                            && self.vectors.as_ref().is_some_and(|v| v.contains(key)) =>
                    {
                        if e.title != doc.title
                            || e.status != doc.status
                            || e.tags != doc.tags
                            || e.brief != doc.brief
                        {
                            to_update.push((key, doc));
                        }
                    }
                    _ => to_embed.push(doc),
                }
            }
        }
        Ok(Ok(RefreshPlan {
            lock,
            feed,
            report,
            to_embed,
            to_update,
            to_remove,
        }))
    }

    /// The second part: embeds, changes the index and saves it. Needs no
    /// replica, so it can run while the replica takes commits. If the
    /// embedder fails, the index is as it was.
    pub fn apply_refresh(
        &mut self,
        plan: RefreshPlan,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<AppliedRefresh> {
        let RefreshPlan {
            lock,
            feed,
            mut report,
            to_embed,
            to_update,
            to_remove,
        } = plan;
        // Vectors first. If the embedder fails, the words are still indexed
        // and saved, so new documents answer by words; their vectors are
        // owed (the feed keeps its marks) and the error is returned.
        let (doc_terms, langs, embedded) = self.embed_passages(&to_embed, progress);
        let (vectors, embed_error) = match embedded {
            Ok(v) => (v, None),
            // Replacing an index another embedder built (or damaged files):
            // its files stay as they are until the new one is whole.
            Err(e) if self.rebuilt_because.is_some() => return Err(e),
            Err(e) => (Vec::new(), Some(e)),
        };
        let mut vectors = vectors.into_iter();
        if self.vectors.is_none() && self.id.dims > 0 {
            self.vectors = Some(VectorIndex::with_flat_limit(self.id.dims, self.flat_limit)?);
        }

        for key in &to_remove {
            self.remove_key(*key)?;
        }
        report.removed = to_remove.len();
        report.updated = to_update.len();
        for (key, doc) in to_update {
            if let Some(e) = self.catalog.get_mut(&key) {
                e.title = doc.title;
                e.status = doc.status;
                e.tags = doc.tags;
                e.brief = doc.brief;
            }
        }
        let mut additions = Vec::with_capacity(to_embed.len());
        for ((doc, terms), lang) in to_embed.into_iter().zip(doc_terms).zip(langs) {
            let key = match self.catalog.key_of_doc(&doc.doc_id) {
                Some(k) => k,
                None => {
                    let k = self.next_key;
                    self.next_key += 1;
                    k
                }
            };
            self.lexical.insert(key, terms);
            let entry = CatalogEntry {
                content_hash: doc.content_hash(),
                doc_id: doc.doc_id,
                kind: doc.kind,
                entity: doc.entity,
                display_id: doc.display_id,
                title: doc.title,
                status: doc.status,
                tags: doc.tags,
                brief: doc.brief,
                lang: lang_code(lang),
            };
            let keys = self.by_entity.entry(entry.entity.clone()).or_default();
            if !keys.contains(&key) {
                keys.push(key);
            }
            self.catalog.insert(key, entry);
            match vectors.next() {
                Some(vector) => additions.push((key, vector)),
                None => {
                    // Its old vector stands for old text.
                    if let Some(v) = &mut self.vectors
                        && v.contains(key)
                    {
                        v.remove(key)?;
                    }
                }
            }
        }
        report.embedded = additions.len();
        if let Some(v) = &mut self.vectors {
            v.add_all(&additions)?;
        }
        if let Some(e) = embed_error {
            // A full catch-up that failed is owed in full: its documents are
            // not all in the feed.
            self.owes_full |= report.full;
            self.save()?;
            drop(lock);
            return Err(e);
        }
        if report.full {
            self.owes_full = false;
        }
        let first_save = !self.has_manifest;
        let caught_up_reset = feed.resets != self.resets;
        self.resets = feed.resets;
        if report.changed() || first_save || caught_up_reset {
            self.save()?;
        }
        self.measure_noise();
        self.rebuilt_because = None;
        Ok(AppliedRefresh {
            lock,
            dirty: feed.dirty,
            report,
        })
    }

    fn remove_key(&mut self, key: u64) -> Result<()> {
        if let Some(entry) = self.catalog.remove(&key)
            && let Some(keys) = self.by_entity.get_mut(&entry.entity)
        {
            keys.retain(|k| *k != key);
            if keys.is_empty() {
                self.by_entity.remove(&entry.entity);
            }
        }
        self.lexical.remove(key);
        if let Some(v) = &mut self.vectors
            && v.contains(key)
        {
            v.remove(key)?;
        }
        Ok(())
    }

    /// Splits documents into terms (on every core, once for both indexes)
    /// and embeds them as passages, checking every vector's length. The
    /// terms come back even when the embedder fails, so the words can still
    /// be indexed.
    fn embed_passages(
        &mut self,
        docs: &[SearchDoc],
        progress: &mut dyn FnMut(usize, usize),
    ) -> (Vec<DocTerms>, Vec<Language>, Result<Vec<Vec<f32>>>) {
        let mut doc_terms = Vec::with_capacity(docs.len());
        let mut langs = Vec::with_capacity(docs.len());
        if docs.is_empty() {
            return (doc_terms, langs, Ok(Vec::new()));
        }
        if self.id.dims == 0 {
            match self.embedder.probe_dims() {
                Ok(dims) => self.id.dims = dims,
                Err(e) => {
                    for (lang, terms) in split_terms(docs) {
                        doc_terms.push(DocTerms::of_terms(&terms));
                        langs.push(lang);
                    }
                    return (doc_terms, langs, Err(e.into()));
                }
            }
        }
        let mut out = Vec::with_capacity(docs.len());
        let mut failed: Option<anyhow::Error> = None;
        progress(0, docs.len());
        for batch in docs.chunks(EMBED_BATCH) {
            let (batch_langs, split): (Vec<_>, Vec<_>) = split_terms(batch).into_iter().unzip();
            doc_terms.extend(split.iter().map(|t| DocTerms::of_terms(t)));
            langs.extend(batch_langs);
            if failed.is_some() {
                continue;
            }
            let vectors = match self.embedder.embed_terms(&split) {
                Some(v) => Ok(v),
                None => {
                    let texts: Vec<&str> = batch.iter().map(|d| d.text.as_str()).collect();
                    self.embedder.embed(&texts, Purpose::Passage)
                }
            };
            match vectors.and_then(|v| self.check_vectors(&v, batch.len()).map(|()| v)) {
                Ok(v) => {
                    out.extend(v);
                    progress(out.len(), docs.len());
                }
                Err(e) => failed = Some(e.into()),
            }
        }
        match failed {
            Some(e) => (doc_terms, langs, Err(e)),
            None => (doc_terms, langs, Ok(out)),
        }
    }

    fn check_vectors(&self, vectors: &[Vec<f32>], expected: usize) -> Result<(), EmbedError> {
        if vectors.len() != expected {
            return Err(EmbedError::Malformed {
                url: self.embedder.describe(),
                detail: format!("{} vectors for {expected} texts", vectors.len()),
            });
        }
        if let Some(v) = vectors.iter().find(|v| v.len() != self.id.dims) {
            return Err(EmbedError::WrongDims {
                source_name: self.embedder.describe(),
                got: v.len(),
                expected: self.id.dims,
            });
        }
        Ok(())
    }

    /// Writes a new generation: the files first, then the manifest naming
    /// them (an atomic rename), then the old generation's files are removed.
    fn save(&mut self) -> Result<()> {
        let generation = self.generation.max(self.highest_generation_on_disk()) + 1;
        self.catalog.shrink_to_fit();
        let catalog_file = format!("catalog-{generation}.bin");
        let vectors_file = format!("vectors-{generation}.bin");
        let lexical_file = format!("lexical-{generation}.bin");
        let bytes = {
            let mut entries: Vec<(u64, &CatalogEntry)> = self.catalog.iter().collect();
            entries.sort_by_key(|(k, _)| *k);
            #[derive(Serialize)]
            struct CatalogRef<'a> {
                next_key: u64,
                entries: Vec<(u64, &'a CatalogEntry)>,
            }
            let file = CatalogRef {
                next_key: self.next_key,
                entries,
            };
            rmp_serde::to_vec_named(&file).context("encoding the search catalog")?
        };
        let catalog_sha256 = hex(&Sha256::digest(&bytes));
        write_durably(&self.dir.join(&catalog_file), &bytes)?;
        drop(bytes);
        let lexical_path = self.dir.join(&lexical_file);
        self.lexical.save(&lexical_path)?;
        let vectors_path = self.dir.join(&vectors_file);
        match &mut self.vectors {
            Some(v) => v.save(&vectors_path)?,
            None => VectorIndex::new(self.id.dims.max(1))?.save(&vectors_path)?,
        }
        for path in [&vectors_path, &lexical_path] {
            File::open(path)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("syncing {}", path.display()))?;
        }
        let manifest = Manifest {
            format: FORMAT,
            embedder: self.id.clone(),
            generation,
            replica_client: self.replica_client,
            resets: self.resets,
            owes_full: self.owes_full,
            docs: self.catalog.len(),
            catalog_sha256,
            vectors_sha256: sha256_file(&vectors_path)?,
            lexical_sha256: sha256_file(&lexical_path)?,
            catalog_file,
            vectors_file,
            lexical_file,
        };
        let json = serde_json::to_vec_pretty(&manifest).context("encoding the search manifest")?;
        write_durably(&self.dir.join(MANIFEST), &json)?;
        self.generation = generation;
        self.has_manifest = true;
        self.remove_stale_files(&manifest);
        Ok(())
    }

    fn remove_stale_files(&self, keep: &Manifest) {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in rd.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let ours = name.starts_with("catalog-")
                || name.starts_with("vectors-")
                || name.starts_with("lexical-");
            if ours
                && name != keep.catalog_file
                && name != keep.vectors_file
                && name != keep.lexical_file
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// The highest generation any index file or the manifest names.
    fn highest_generation_on_disk(&self) -> u64 {
        let mut highest = self.on_disk_generation().unwrap_or(0);
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for entry in rd.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                let number = name
                    .strip_prefix("catalog-")
                    .or_else(|| name.strip_prefix("vectors-"))
                    .or_else(|| name.strip_prefix("lexical-"))
                    .and_then(|rest| rest.split('.').next())
                    .and_then(|n| n.parse::<u64>().ok());
                if let Some(n) = number {
                    highest = highest.max(n);
                }
            }
        }
        highest
    }

    fn on_disk_generation(&self) -> Option<u64> {
        self.read_manifest().ok().flatten().map(|m| m.generation)
    }

    fn try_lock(&self) -> Result<Option<File>> {
        let path = self.dir.join(LOCK);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
    }

    fn keep<'a>(&'a self, q: &'a Query) -> impl Fn(u64) -> bool + 'a {
        move |key| {
            let Some(e) = self.catalog.get(&key) else {
                return false;
            };
            (q.kinds.is_empty() || q.kinds.contains(&e.kind))
                && q.status
                    .as_ref()
                    .is_none_or(|s| e.kind == DocKind::Brief && e.status.as_ref() == Some(s))
                && q.tag.as_ref().is_none_or(|t| e.tags.iter().any(|x| x == t))
                && q.brief.as_ref().is_none_or(|b| e.brief.as_ref() == Some(b))
        }
    }

    /// Ranked keys for a query: the BM25 and vector rankings fused by
    /// reciprocal rank, each word match weighed by how much of the query it
    /// holds (so one incidental word does not outvote the best vector).
    /// Vector matches no better than what off-topic queries reach in this
    /// corpus are dropped: no result beats noise. If the query cannot be
    /// embedded, the lexical ranking alone is used and a warning says why.
    pub fn rank(&self, q: &Query) -> (Vec<RankedKey>, Vec<String>) {
        let mut warnings: Vec<String> = self.embedder.notice().into_iter().collect();
        let limit = q.limit.max(1);
        let depth = (limit * 4).max(50);
        let keep = self.keep(q);
        let filtered =
            !q.kinds.is_empty() || q.status.is_some() || q.tag.is_some() || q.brief.is_some();
        let keep: Option<&dyn Fn(u64) -> bool> = if filtered { Some(&keep) } else { None };
        let lexical = if q.only == Some(Ranking::Vector) {
            Vec::new()
        } else {
            self.lexical.search(&q.text, depth, keep)
        };
        let mut vector = Vec::new();
        // The vector rankings among documents written in a language the
        // query names ("the Japanese guidelines"), when it is not the
        // query's own: a model ranks texts in the query's language first,
        // so these would rarely reach the fusion otherwise. Each with
        // whether the query names the language (rather than implies it).
        let mut named: Vec<(bool, Hits)> = Vec::new();
        // Whether the vectors could speak (for leaving out word noise).
        let mut vectors_asked = false;
        if self.vectors.is_none() && !self.catalog.is_empty() && q.only != Some(Ranking::Lexical) {
            warnings.push(match &self.rebuilt_because {
                Some(why) => {
                    format!("the vectors are being rebuilt ({why}); showing word matches only")
                }
                None => "the vectors are not built yet; showing word matches only".to_owned(),
            });
        }
        if let Some(v) = &self.vectors
            && !v.is_empty()
            && q.only != Some(Ranking::Lexical)
        {
            match self.query_vector(&q.text, v.dims()) {
                Ok(qv) => match self.vector_rankings(v, &qv, &q.text, depth, keep) {
                    Ok((hits, in_named)) => {
                        vector = hits;
                        vectors_asked = q.only.is_none();
                        named = in_named;
                    }
                    Err(e) => warnings.push(format!("{e:#}; showing word matches only")),
                },
                Err(e) => warnings.push(format!("{e}; showing word matches only")),
            }
        }
        // Vectors blind to translation match a document in another
        // language than the query's only alongside a word they share (or
        // among the documents of a language the query names): without one,
        // what they have in common is hash collisions and stray letter
        // triples.
        let query_lang = super::terms::language(&q.text);
        if !self.embedder.crosses_languages() && q.only.is_none() {
            let worded: HashSet<u64> = lexical.iter().map(|(k, _)| *k).collect();
            let matched = |(key, _): &(u64, f32)| {
                worded.contains(key)
                    || self
                        .catalog
                        .get(key)
                        .and_then(CatalogEntry::language)
                        .is_none_or(|l| !in_another_language(query_lang, l))
            };
            vector.retain(matched);
            for (spoken, ranking) in &mut named {
                if !*spoken {
                    ranking.retain(matched);
                }
            }
            named.retain(|(_, r)| !r.is_empty());
        }
        // Documents whose vectors are owed (the embedder failed when they
        // were added) rank by words alone, their word rank standing in for
        // the vector rank they cannot have.
        let owed = |key: u64| self.vectors.as_ref().is_some_and(|v| !v.contains(key));
        if let Some(v) = &self.vectors
            && v.len() < self.catalog.len()
            && q.only.is_none()
        {
            warnings.push(format!(
                "{} documents wait for their vectors (the embedder failed when they were added); they are found by words only",
                self.catalog.len() - v.len()
            ));
        }
        let ceiling = self.lexical.ceiling(&q.text);
        let weight = self.embedder.fusion_weight();
        let mut fused: HashMap<u64, RankedKey> = HashMap::new();
        let mut weak: HashSet<u64> = HashSet::new();
        let mut word_shares: HashMap<u64, f32> = HashMap::new();
        // The vectors spoke and found nothing above the noise in any
        // language: the corpus holds nothing like the question.
        let nothing_near = vectors_asked && vector.is_empty() && named.is_empty();
        for (rank, (key, score)) in lexical.iter().enumerate() {
            let strength = word_strength(*score, ceiling.known);
            let stands_in = vectors_asked && owed(*key);
            // Pairs of CJK characters are shared by unrelated words; a word
            // of a script with spaces counts unless the vectors found
            // nothing anywhere and the question is longer than a word or
            // two (then one of its words is not an answer to it).
            if !stands_in
                && (ceiling.pairs || nothing_near && ceiling.terms >= LONGER_QUESTION)
                && word_strength(*score, ceiling.all) < MEANINGFUL_WORD_MATCH
            {
                weak.insert(*key);
            }
            let e = fused.entry(*key).or_insert_with(|| RankedKey::new(*key));
            let share = strength / (RRF_K + rank as f32 + 1.0);
            word_shares.insert(*key, share);
            e.score += if stands_in {
                share * (1.0 + weight)
            } else {
                share
            };
            e.lexical_rank = Some(rank + 1);
        }
        // The query's words cannot reach a document written in another
        // language: its vector rank stands in for the word rank it cannot
        // have (as the word rank does for a document whose vector is owed),
        // so a section that answers in another language is not outranked
        // by every one in the query's language that shares a word with it.
        let beyond_words = |key: u64| {
            self.catalog
                .get(&key)
                .and_then(CatalogEntry::language)
                .is_some_and(|l| vector_stands_in_for_words(query_lang, l))
        };
        for (rank, (key, _)) in vector.iter().enumerate() {
            let e = fused.entry(*key).or_insert_with(|| RankedKey::new(*key));
            let share = 1.0 / (RRF_K + rank as f32 + 1.0);
            e.score += weight * share;
            e.vector_rank = Some(rank + 1);
            if vectors_asked && beyond_words(*key) {
                let words = word_shares.get(key).copied().unwrap_or(0.0);
                e.score += (share - words).max(0.0);
            }
        }
        // Naming the language is a signal of its own: a document ranked
        // among those written in it counts as much as one that both the
        // words and the vectors found.
        for (_, ranking) in &named {
            for (rank, (key, _)) in ranking.iter().enumerate() {
                let e = fused.entry(*key).or_insert_with(|| RankedKey::new(*key));
                e.score += (1.0 + weight) / (RRF_K + rank as f32 + 1.0);
                e.language_rank = Some(e.language_rank.map_or(rank + 1, |r| r.min(rank + 1)));
            }
        }
        let mut ranked: Vec<RankedKey> = fused.into_values().collect();
        // A few incidental words of a longer query, with no vector behind
        // them, are noise (when the vectors could have spoken).
        if vectors_asked {
            ranked.retain(|r| {
                r.vector_rank.is_some() || r.language_rank.is_some() || !weak.contains(&r.key)
            });
        }
        let doc_id = |k: u64| self.catalog.get(&k).map(|e| e.doc_id.as_str());
        ranked.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| best_rank(a).cmp(&best_rank(b)))
                .then_with(|| doc_id(a.key).cmp(&doc_id(b.key)))
                .then(a.key.cmp(&b.key))
        });
        ranked.truncate(limit);
        (ranked, warnings)
    }

    /// The vector rankings of a query: the whole ranking, and for each
    /// language the query names or implies other than its own, the ranking
    /// among the documents written in it (see [`Self::rank`]).
    ///
    /// In the whole ranking every document is held to the floor of its
    /// language pair and ranked by how far above it it is. A model scores
    /// any two texts in one language closer than a text and its
    /// translation, so a section written in another language that answers
    /// the query sits below the query language's noise yet well above what
    /// off-topic queries reach among the documents in its own language. The
    /// nearest documents of each language the corpus holds are taken in the
    /// same scan, so a language's best sections are weighed even when the
    /// query's language fills the top of the whole ranking. With one
    /// language this is the plain ranking by similarity above the noise
    /// floor.
    fn vector_rankings(
        &self,
        v: &VectorIndex,
        qv: &[f32],
        text: &str,
        depth: usize,
        keep: Option<&dyn Fn(u64) -> bool>,
    ) -> Result<(Hits, Vec<(bool, Hits)>)> {
        let floor = self.similarity_floor(text);
        let own = super::terms::language(text);
        // The other languages of the corpus, with the floor each is held to
        // in the whole ranking and its id in the catalog.
        let others: Vec<(&str, f32, u8)> = self
            .languages()
            .into_iter()
            .filter(|l| own != Some(*l))
            .filter_map(|l| {
                let pair = self.cross_language_floor(own, l)?;
                let id = self.catalog.language_code_id(l)?;
                // A query of no telling language is held to the lower of
                // the two, as it is for every language.
                Some((l, if own.is_none() { pair.min(floor) } else { pair }, id))
            })
            .collect();
        if others.is_empty() {
            let mut hits = v.search(qv, depth, keep)?;
            hits.retain(|(_, d)| 1.0 - d >= floor);
            sort_nearest(&mut hits);
            return Ok((hits, Vec::new()));
        }
        // Group 0: the query's language and documents of no telling
        // language; group i: the i-th other language.
        let mut group_of = [0usize; 256];
        for (i, (_, _, id)) in others.iter().enumerate() {
            group_of[usize::from(*id)] = i + 1;
        }
        let group = |key: u64| Some(group_of[usize::from(self.catalog.language_of(key))]);
        let groups = v.search_groups(
            qv,
            depth,
            &group,
            others.len() + 1,
            self.catalog.keys(),
            keep,
        )?;
        // Margins above each floor, negated so smaller still ranks first.
        let mut whole: Vec<(u64, f32)> = Vec::new();
        for (g, hits) in groups.iter().enumerate() {
            let Some(lang_floor) = g.checked_sub(1).map(|i| others[i].1) else {
                whole.extend(
                    hits.iter()
                        .map(|(k, d)| (*k, d + floor - 1.0))
                        .filter(|(_, m)| *m <= 0.0),
                );
                continue;
            };
            // Another language's document must rise above its floor.
            whole.extend(
                hits.iter()
                    .map(|(k, d)| (*k, d + lang_floor - 1.0))
                    .filter(|(_, m)| *m < 0.0),
            );
        }
        sort_nearest(&mut whole);
        whole.truncate(depth);
        let named = self.named_languages(text, own);
        let mut rankings = Vec::new();
        for (lang, spoken) in &named {
            let Some(i) = others.iter().position(|(l, _, _)| l == lang) else {
                continue;
            };
            let Some(lang_floor) = self.cross_language_floor(own, lang) else {
                continue;
            };
            let mut hits: Vec<(u64, f32)> = groups[i + 1]
                .iter()
                .copied()
                .filter(|(_, d)| 1.0 - d >= lang_floor)
                .collect();
            sort_nearest(&mut hits);
            hits.truncate(NAMED_LANGUAGE_DEPTH);
            if !hits.is_empty() {
                rankings.push((*spoken, hits));
            }
        }
        Ok((whole, rankings))
    }

    /// The languages the corpus is written in, as the noise measure found
    /// them (none before it is measured).
    pub fn languages(&self) -> Vec<&str> {
        let Some(n) = self.noise.as_ref().filter(|n| n.embedder == self.id) else {
            return Vec::new();
        };
        let mut langs: Vec<&str> = n
            .by_pair
            .keys()
            .filter_map(|k| k.split_once('>').map(|(_, l)| l))
            .collect();
        langs.sort_unstable();
        langs.dedup();
        langs
    }

    /// The languages the query names ("the Japanese guidelines") or implies
    /// by a word, other than its own.
    /// Each with whether the query names it (rather than implies it).
    fn named_languages(&self, text: &str, own: Option<&str>) -> Vec<(String, bool)> {
        let mut langs: Vec<(String, bool)> = super::terms::named_languages(text)
            .into_iter()
            .map(|l| (l.to_owned(), true))
            .collect();
        for lang in self.implied_languages(text) {
            if !langs.iter().any(|(l, _)| *l == lang) {
                langs.push((lang, false));
            }
        }
        langs.retain(|(l, _)| own != Some(l.as_str()));
        langs
    }

    /// Languages a query points to by a word that only documents written in
    /// one language hold ("usted", "Druckfreigabe"): a few documents at
    /// most, every one in that language.
    fn implied_languages(&self, text: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for term in super::terms::query_terms(text) {
            if !term.chars().all(|c| c.is_alphabetic()) || term.chars().count() < 3 {
                continue;
            }
            let Some(keys) = self.lexical.holders(&term, IMPLIED_LANGUAGE_HOLDERS) else {
                continue;
            };
            let mut langs = keys
                .iter()
                .map(|k| self.catalog.get(k).and_then(|e| e.language()));
            let Some(Some(first)) = langs.next() else {
                continue;
            };
            if langs.all(|l| l == Some(first)) && !out.iter().any(|l| l == first) {
                out.push(first.to_owned());
            }
        }
        out
    }

    /// The similarity a document written in `lang` must reach for a query in
    /// `query_lang`: the best that off-topic probes in that language reach
    /// among those documents. A query whose language cannot be told is in
    /// Latin script (scripts tell the others), so it takes the highest of
    /// the Latin-script probes. `None` before it has been measured.
    fn cross_language_floor(&self, query_lang: Option<&str>, lang: &str) -> Option<f32> {
        let n = self.noise.as_ref().filter(|n| n.embedder == self.id)?;
        let own = self.embedder.min_similarity();
        let suffix = format!(">{lang}");
        let measured = match query_lang.and_then(|q| n.by_pair.get(&format!("{q}{suffix}"))) {
            Some(f) => *f,
            None => n
                .by_pair
                .iter()
                .filter(|(k, _)| {
                    k.ends_with(&suffix)
                        && !["ja>", "zh>", "ko>", "th>"]
                            .iter()
                            .any(|p| k.starts_with(p))
                })
                .map(|(_, f)| *f)
                .reduce(f32::max)?,
        };
        Some(own.max(measured))
    }

    /// The query's vector, checked against the index's dimensions.
    fn query_vector(&self, text: &str, dims: usize) -> Result<Vec<f32>, String> {
        match self.embedder.embed(&[text], Purpose::Query) {
            Ok(mut vs) if vs.len() == 1 && vs[0].len() == dims => Ok(vs.remove(0)),
            Ok(vs) => Err(format!(
                "the embedder returned {} vectors of {} dimensions for the query, the index has {dims}",
                vs.len(),
                vs.first().map_or(0, Vec::len),
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The similarity a vector match for `query` must reach: the embedder's
    /// own floor, or what off-topic queries reach in this corpus (those in
    /// the query's language, when it can be told: a model scores any two
    /// texts in one language closer), whichever is higher.
    pub fn similarity_floor(&self, query: &str) -> f32 {
        let own = self.embedder.min_similarity();
        let Some(n) = self.noise.as_ref().filter(|n| n.embedder == self.id) else {
            return own;
        };
        let language = super::terms::language(query)
            .and_then(|l| n.by_language.get(l))
            .copied()
            .unwrap_or(0.0);
        own.max(n.similarity).max(language)
    }

    /// Measures the corpus's noise level: the median best similarity of
    /// queries about nothing the studio writes about. Kept beside the index
    /// and measured again when the corpus has grown or shrunk by a tenth.
    fn measure_noise(&mut self) {
        let Some(v) = &self.vectors else {
            return;
        };
        let docs = v.len();
        let mut written_in: Vec<&str> =
            self.catalog.values().filter_map(|e| e.language()).collect();
        written_in.sort_unstable();
        written_in.dedup();
        // Measured again when the corpus has grown or shrunk by a tenth, or
        // holds a language the last measure did not see.
        let fresh = self.noise.as_ref().is_some_and(|n| {
            n.embedder == self.id
                && n.version == NOISE_VERSION
                && n.docs.abs_diff(docs) * 10 <= n.docs.max(1)
                && written_in
                    .iter()
                    .all(|l| n.by_pair.keys().any(|k| k.ends_with(&format!(">{l}"))))
        });
        if fresh || docs == 0 {
            return;
        }
        let Ok(vectors) = self.embedder.embed(NOISE_PROBES, Purpose::Query) else {
            return; // The embedder is down: the last measure stays.
        };
        let mut best: Vec<f32> = Vec::new();
        let mut by_language: HashMap<String, f32> = HashMap::new();
        let mut by_pair: HashMap<String, f32> = HashMap::new();
        // Each probe's nearest document in every language, in one search.
        let mut group_of = [None; 256];
        for (i, lang) in written_in.iter().enumerate() {
            if let Some(id) = self.catalog.language_code_id(lang) {
                group_of[usize::from(id)] = Some(i);
            }
        }
        let group = |key: u64| group_of[usize::from(self.catalog.language_of(key))];
        for (probe, q) in NOISE_PROBES.iter().zip(&vectors) {
            if q.len() == v.dims() {
                let probe_lang = super::terms::language(probe).unwrap_or("*");
                let nearest = v
                    .search_groups(q, 1, &group, written_in.len(), self.catalog.keys(), None)
                    .unwrap_or_default();
                for (lang, hits) in written_in.iter().zip(&nearest) {
                    if let Some(top) = hits.first().map(|(_, d)| 1.0 - d) {
                        let e = by_pair.entry(format!("{probe_lang}>{lang}")).or_insert(top);
                        *e = e.max(top);
                    }
                }
            }
            let top = (q.len() == v.dims())
                .then(|| v.search(q, 1, None).ok())
                .flatten()
                .and_then(|hits| hits.first().map(|(_, d)| 1.0 - d));
            let Some(top) = top else {
                continue;
            };
            best.push(top);
            if let Some(lang) = super::terms::language(probe) {
                let e = by_language.entry(lang.to_owned()).or_insert(top);
                *e = e.max(top);
            }
        }
        if best.len() < NOISE_PROBES.len() / 2 {
            return;
        }
        best.sort_by(f32::total_cmp);
        let noise = Noise {
            embedder: self.id.clone(),
            version: NOISE_VERSION,
            docs,
            similarity: best[best.len() / 2],
            by_language,
            by_pair,
        };
        if let Ok(json) = serde_json::to_vec_pretty(&noise) {
            // Only a measure: if it cannot be written it is taken again.
            let _ = write_durably(&self.dir.join(NOISE), &json);
        }
        self.noise = Some(noise);
    }

    pub fn entry(&self, key: u64) -> Option<&CatalogEntry> {
        self.catalog.get(&key)
    }

    /// Ranked results with snippets read from the replica.
    pub fn search(&self, replica: &Replica, q: &Query) -> Result<SearchResults> {
        let (ranked, warnings) = self.rank(q);
        let mut texts = DocTexts::default();
        let mut hits = Vec::with_capacity(ranked.len());
        for r in ranked {
            let Some(e) = self.catalog.get(&r.key) else {
                continue;
            };
            let text = texts.get(replica, e)?.unwrap_or_default();
            hits.push(Hit {
                kind: e.kind,
                id: e.display_id.clone(),
                title: e.title.clone(),
                snippet: snippet(&text, &q.text, 180),
                text,
                score: r.score,
                entity: e.entity.to_string(),
                brief: e.brief.clone(),
                vector_rank: r.vector_rank,
                lexical_rank: r.lexical_rank,
            });
        }
        Ok(SearchResults { hits, warnings })
    }

    /// The top passages for a question, full text included, for grounding
    /// and citing an answer.
    pub fn retrieve(&self, replica: &Replica, q: &Query) -> Result<(Vec<Passage>, Vec<String>)> {
        let (ranked, warnings) = self.rank(q);
        let mut texts = DocTexts::default();
        let mut out = Vec::new();
        for r in ranked {
            let Some(e) = self.catalog.get(&r.key) else {
                continue;
            };
            if let Some(text) = texts.get(replica, e)? {
                out.push(Passage {
                    kind: e.kind,
                    id: e.display_id.clone(),
                    title: e.title.clone(),
                    text,
                    score: r.score,
                    entity: e.entity.to_string(),
                });
            }
        }
        Ok((out, warnings))
    }

    /// The vector index, for measuring it.
    pub fn vectors(&self) -> Option<&VectorIndex> {
        self.vectors.as_ref()
    }

    pub fn embedder(&self) -> &dyn Embedder {
        self.embedder.as_ref()
    }
}

/// How much a BM25 score counts in the fusion, from the share of the
/// query's ceiling it reaches: about 1 when the document holds the query's
/// words, little when it shares one incidental word of a longer query.
/// Keys with their cosine distance, nearest first.
type Hits = Vec<(u64, f32)>;

/// Nearest first, equal distances in key order, so a ranking never depends
/// on how the vectors were walked.
fn sort_nearest(hits: &mut [(u64, f32)]) {
    hits.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
}

fn word_strength(score: f32, ceiling: f32) -> f32 {
    if ceiling <= 0.0 {
        return 1.0;
    }
    (score / (FULL_WORD_MATCH * ceiling)).clamp(0.05, 1.0)
}

/// Whether a document written in `doc_lang` ranks by its vector rank in
/// place of the word rank the query's words cannot give it: a query in
/// Latin script (told to be in another language, or not told) and a
/// document in another language (for a query not told, in another script).
/// Queries in Japanese, Chinese, Korean or Thai keep their words: their
/// own sections answer by words (character pairs) precisely, and sections
/// in other languages rise only a noise-sized margin above those pairs'
/// floors (measured: with a stand-in, half the Japanese queries lost their
/// answer to them).
fn vector_stands_in_for_words(query_lang: Option<&str>, doc_lang: &str) -> bool {
    !matches!(query_lang, Some("ja" | "zh" | "ko" | "th"))
        && in_another_language(query_lang, doc_lang)
}

/// Whether a document written in `doc_lang` is in another language than a
/// query in `query_lang`: a query whose language cannot be told is in
/// Latin script (the others are told by their characters), so only a
/// document in another script is known to be in another language.
fn in_another_language(query_lang: Option<&str>, doc_lang: &str) -> bool {
    match query_lang {
        Some(q) => q != doc_lang,
        None => matches!(doc_lang, "ja" | "zh" | "ko" | "th"),
    }
}

/// The better of a result's two ranks.
fn best_rank(r: &RankedKey) -> usize {
    r.lexical_rank
        .into_iter()
        .chain(r.vector_rank)
        .min()
        .unwrap_or(usize::MAX)
}

/// Each document's language and terms, the batch split over two threads.
fn split_terms(batch: &[SearchDoc]) -> Vec<(Language, Vec<String>)> {
    let split = |d: &SearchDoc| super::terms::terms_in_language(&d.text);
    let half = batch.len().div_ceil(2);
    if batch.len() < 8 {
        return batch.iter().map(split).collect();
    }
    let (a, b) = batch.split_at(half);
    std::thread::scope(|scope| {
        let other = scope.spawn(|| b.iter().map(split).collect::<Vec<_>>());
        let mut out: Vec<_> = a.iter().map(split).collect();
        out.extend(
            other
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        );
        out
    })
}

/// The noise level of one index, as [`SearchIndex::measure_noise`] took it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Noise {
    embedder: EmbedderId,
    docs: usize,
    /// The median over all probes.
    similarity: f32,
    /// The highest of each language's probes.
    by_language: HashMap<String, f32>,
    /// The highest of each language's probes among the documents written in
    /// each language, keyed `probe>document` (`en>ja`; `*` for a probe of
    /// no telling language).
    #[serde(default)]
    by_pair: HashMap<String, f32>,
    /// What was measured ([`NOISE_VERSION`]); an older measure is taken again.
    #[serde(default)]
    version: u32,
}

/// A key's place in the fused ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct RankedKey {
    pub key: u64,
    pub score: f32,
    pub vector_rank: Option<usize>,
    pub lexical_rank: Option<usize>,
    /// Rank among the documents written in a language the query names.
    pub language_rank: Option<usize>,
}

impl RankedKey {
    fn new(key: u64) -> Self {
        RankedKey {
            key,
            score: 0.0,
            vector_rank: None,
            lexical_rank: None,
            language_rank: None,
        }
    }
}

/// Documents' current text, read once per entity.
#[derive(Default)]
struct DocTexts {
    by_entity: HashMap<EntityRef, Vec<SearchDoc>>,
}

impl DocTexts {
    fn get(&mut self, replica: &Replica, e: &CatalogEntry) -> Result<Option<String>> {
        // A knowledge document has many chunks: read only the hit's.
        if e.entity.kind == EntityKind::Knowledge && !self.by_entity.contains_key(&e.entity) {
            let n = e.doc_id.rsplit_once('#').and_then(|(_, n)| n.parse().ok());
            if let Some(n) = n {
                return Ok(knowledge_chunk(replica, &e.entity, n)?.map(|d| d.text));
            }
        }
        if !self.by_entity.contains_key(&e.entity) {
            let docs = docs_for_entity(replica, &e.entity)?;
            self.by_entity.insert(e.entity.clone(), docs);
        }
        Ok(self
            .by_entity
            .get(&e.entity)
            .and_then(|docs| docs.iter().find(|d| d.doc_id == e.doc_id))
            .map(|d| d.text.clone()))
    }
}

/// The stretch of `text` (about `width` characters, cut at word boundaries
/// of any script) that holds the most query terms; the start of the text
/// when none match.
pub fn snippet(text: &str, query: &str, width: usize) -> String {
    use super::terms::{query_terms, term_spans, word_ranges};
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.is_empty() || width == 0 {
        return String::new();
    }
    // Byte offset of each char, and the char index of a byte offset.
    let offsets: Vec<usize> = flat
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(flat.len()))
        .collect();
    let char_at = |byte: usize| offsets.partition_point(|&o| o < byte);
    let words = word_ranges(&flat);
    let wanted: HashSet<String> = query_terms(query).into_iter().collect();
    let hits: Vec<usize> = term_spans(&flat)
        .into_iter()
        .filter(|(t, _)| wanted.contains(t))
        .map(|(_, r)| r.start)
        .collect();
    // Windows start at a word; the best holds the most hits.
    let starts: Vec<usize> = std::iter::once(0)
        .chain(words.iter().map(|r| r.start).filter(|&s| s > 0))
        .collect();
    let limit_of = |start: usize| {
        let last = (char_at(start) + width).min(offsets.len() - 1);
        offsets[last]
    };
    let (mut best_start, mut best_hits) = (0usize, 0usize);
    for &start in &starts {
        let limit = limit_of(start);
        let n = hits.iter().filter(|&&h| h >= start && h < limit).count();
        if n > best_hits {
            best_hits = n;
            best_start = start;
        }
    }
    let limit = limit_of(best_start);
    let end = if limit >= flat.len() {
        flat.len()
    } else {
        words
            .iter()
            .map(|r| r.end)
            .filter(|&e| e > best_start && e <= limit)
            .max()
            .unwrap_or(limit)
    };
    let mut out = String::new();
    if best_start > 0 {
        out.push('…');
    }
    out.push_str(flat[best_start..end].trim());
    if end < flat.len() {
        out.push('…');
    }
    out
}

/// Writes aside, syncs, then renames over the target.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vector_rank_stands_in_for_words_only_where_latin_script_words_cannot_reach() {
        // A query told to be English: every other language.
        assert!(vector_stands_in_for_words(Some("en"), "ja"));
        assert!(vector_stands_in_for_words(Some("en"), "es"));
        assert!(!vector_stands_in_for_words(Some("en"), "en"));
        assert!(vector_stands_in_for_words(Some("de"), "en"));
        // A Latin-script query of no telling language: other scripts only.
        assert!(vector_stands_in_for_words(None, "zh"));
        assert!(vector_stands_in_for_words(None, "th"));
        assert!(!vector_stands_in_for_words(None, "es"));
        assert!(!vector_stands_in_for_words(None, "en"));
        // Queries in Japanese, Chinese, Korean or Thai keep their words.
        for q in ["ja", "zh", "ko", "th"] {
            for d in ["en", "ja", "zh", "es"] {
                assert!(!vector_stands_in_for_words(Some(q), d), "{q} > {d}");
            }
        }
    }

    #[test]
    fn another_language_is_told_by_the_query_or_else_by_script() {
        // Told: any other language, Japanese and Chinese apart too.
        assert!(in_another_language(Some("ja"), "zh"));
        assert!(in_another_language(Some("ja"), "en"));
        assert!(in_another_language(Some("es"), "de"));
        assert!(!in_another_language(Some("ja"), "ja"));
        // Not told (so in Latin script): only another script is known to be.
        assert!(in_another_language(None, "ko"));
        assert!(!in_another_language(None, "de"));
    }

    #[test]
    fn snippet_centres_on_query_words() {
        let text = "Intro words that do not matter at all. ".repeat(10)
            + "Keep clear space around the logo equal to the cap height. "
            + &"Trailing filler text goes here. ".repeat(10);
        let s = snippet(&text, "logo clear space", 80);
        assert!(s.contains("logo") && s.contains("clear space"), "{s}");
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        assert!(s.chars().count() <= 84, "{s}");
    }

    #[test]
    fn snippet_of_text_without_spaces_stays_short_and_finds_the_word() {
        let text = "ロゴの周りには十分な余白を取ってください。".repeat(5)
            + "ブランドのパレットは三色です。"
            + &"写真は自然光で撮影します。".repeat(5);
        let s = snippet(&text, "パレット", 30);
        assert!(s.contains("パレット"), "{s}");
        assert!(s.chars().count() <= 32, "{s}");
    }

    #[test]
    fn snippet_of_short_text_is_the_text() {
        assert_eq!(
            snippet("Spring  launch\nhero", "nothing", 100),
            "Spring launch hero"
        );
        assert_eq!(snippet("", "x", 10), "");
    }
}
