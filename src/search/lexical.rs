//! The lexical side of hybrid search: Okapi BM25 over an inverted index of
//! the shared terms ([`super::terms`]). Document statistics are exact at
//! query time (no fitted average length that drifts as documents change).
//!
//! The saved index is one immutable segment file, memory-mapped when loaded:
//! a term table sorted by term hash, each term's postings (slot, term count;
//! varint-coded, slots ascending), every slot's document length and key.
//! Documents added since the last save live in a small in-memory delta;
//! removed or replaced documents are tombstoned by slot and left out of every
//! statistic (N, total length, document frequency). Saving merges the segment
//! and the delta into a new segment file.

use crate::search::terms::{Script, query_terms, script, stable_hash, terms};
use anyhow::{Context, Result, anyhow};
use memmap2::Mmap;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

const K1: f32 = 1.2;
const B: f32 = 0.75;

/// Segment file: magic, slots (u64), terms (u64), postings bytes (u64),
/// total length (u64); then the term table (hash u64, postings offset u64,
/// document frequency u32, by hash), the postings, the document lengths by
/// slot (u32) and the keys by slot (u64, ascending). Little-endian.
const MAGIC: &[u8; 8] = b"SPKLEX01";
const HEADER: usize = 40;
const TERM_ENTRY: usize = 20;

/// A document's term counts: (term hash, count), sorted by term.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DocTerms {
    pub len: u32,
    pub terms: Vec<(u64, u32)>,
}

impl DocTerms {
    pub fn of(text: &str) -> DocTerms {
        DocTerms::of_terms(&terms(text))
    }

    /// From a text's terms, already split.
    pub fn of_terms(words: &[String]) -> DocTerms {
        let mut counts: HashMap<u64, u32> = HashMap::new();
        for w in words {
            *counts.entry(stable_hash(w.as_bytes())).or_default() += 1;
        }
        let mut terms: Vec<(u64, u32)> = counts.into_iter().collect();
        terms.sort_unstable();
        DocTerms {
            len: words.len().min(u32::MAX as usize) as u32,
            terms,
        }
    }
}

/// How much a query term no document holds counts against the matches: a
/// word or a Katakana pair (loanwords are written in one run) fully; a pair
/// with a Han character half, since about half the pairs of a Chinese
/// sentence straddle two words; a pair holding hiragana (Japanese grammar)
/// not at all.
fn unanswered_weight(term: &str) -> f32 {
    if !term.chars().all(|c| script(c) == Script::Cjk) {
        return 1.0;
    }
    let hiragana = |c: char| ('\u{3040}'..='\u{309F}').contains(&c);
    let katakana = |c: char| ('\u{30A0}'..='\u{30FF}').contains(&c);
    if term.chars().any(hiragana) {
        0.0
    } else if term.chars().all(katakana) {
        1.0
    } else {
        0.5
    }
}

/// See [`LexicalIndex::ceiling`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Ceiling {
    pub known: f32,
    pub all: f32,
    /// Most of the query's terms are pairs of CJK characters, which can
    /// meet a document by accident (`ール` of two unrelated loanwords).
    pub pairs: bool,
    /// How many distinct terms the query has (stop words aside).
    pub terms: usize,
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

fn put_varint(out: &mut Vec<u8>, mut x: u32) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// A varint at `*at`, or `None` past the end or when it runs too long.
fn get_varint(b: &[u8], at: &mut usize) -> Option<u32> {
    let mut x: u32 = 0;
    for shift in [0, 7, 14, 21, 28] {
        let byte = *b.get(*at)?;
        *at += 1;
        x |= u32::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(x);
        }
    }
    None
}

/// A saved segment, mapped and checked.
struct Segment {
    map: Mmap,
    slots: usize,
    terms: usize,
    postings_len: usize,
    total_len: u64,
}

impl Segment {
    fn open(path: &Path) -> Result<Segment> {
        let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        // SAFETY: index files are written once under a new name and never
        // changed in place (saves rename a new file over), so the mapping
        // stays valid; its contents are checked below before use.
        let map = unsafe { Mmap::map(&file) }
            .with_context(|| format!("cannot map {}", path.display()))?;
        let damaged = |why: &str| anyhow!("the word index {} is damaged: {why}", path.display());
        if map.len() < HEADER || &map[..8] != MAGIC {
            return Err(damaged("not a word index file"));
        }
        let field = |at: usize| usize::try_from(le_u64(&map, at)).map_err(|_| damaged("header"));
        let (slots, terms, postings_len) = (field(8)?, field(16)?, field(24)?);
        let total_len = le_u64(&map, 32);
        let expected = terms
            .checked_mul(TERM_ENTRY)
            .and_then(|t| t.checked_add(postings_len))
            .and_then(|t| slots.checked_mul(12).and_then(|s| s.checked_add(t)))
            .and_then(|t| t.checked_add(HEADER));
        if expected != Some(map.len()) {
            return Err(damaged("its length does not match its header"));
        }
        if u32::try_from(slots).is_err() {
            return Err(damaged("too many documents"));
        }
        let seg = Segment {
            map,
            slots,
            terms,
            postings_len,
            total_len,
        };
        let mut previous: Option<(u64, usize)> = None;
        for t in 0..terms {
            let (hash, offset, df) = seg.term(t);
            if offset > postings_len || df as usize > slots || df == 0 {
                return Err(damaged("a term's postings are out of range"));
            }
            if previous.is_some_and(|(h, o)| h >= hash || o > offset) {
                return Err(damaged("terms out of order"));
            }
            previous = Some((hash, offset));
        }
        let mut sum = 0u64;
        for s in 0..slots {
            sum += u64::from(seg.doc_len(s as u32));
            if s > 0 && seg.key(s as u32 - 1) >= seg.key(s as u32) {
                return Err(damaged("documents out of order"));
            }
        }
        if sum != total_len {
            return Err(damaged("document lengths do not add up"));
        }
        Ok(seg)
    }

    fn term(&self, t: usize) -> (u64, usize, u32) {
        let at = HEADER + t * TERM_ENTRY;
        let offset = usize::try_from(le_u64(&self.map, at + 8)).unwrap_or(usize::MAX);
        (le_u64(&self.map, at), offset, le_u32(&self.map, at + 16))
    }

    fn find_term(&self, hash: u64) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.terms);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.term(mid).0.cmp(&hash) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    fn postings_start(&self) -> usize {
        HEADER + self.terms * TERM_ENTRY
    }

    /// Appends term `t`'s postings to `out`; stops at anything malformed.
    fn postings(&self, t: usize, out: &mut Vec<(u32, u32)>) {
        let (_, start, df) = self.term(t);
        let end = if t + 1 < self.terms {
            self.term(t + 1).1
        } else {
            self.postings_len
        };
        let base = self.postings_start();
        let Some(bytes) = self.map.get(base + start..base + end.max(start)) else {
            return;
        };
        let mut at = 0;
        let mut slot: u32 = 0;
        for i in 0..df {
            let (Some(delta), Some(tf)) = (get_varint(bytes, &mut at), get_varint(bytes, &mut at))
            else {
                return;
            };
            slot = match if i == 0 {
                Some(delta)
            } else {
                slot.checked_add(delta)
            } {
                Some(s) if (s as usize) < self.slots => s,
                _ => return,
            };
            out.push((slot, tf));
        }
    }

    fn doc_len(&self, slot: u32) -> u32 {
        le_u32(
            &self.map,
            HEADER + self.terms * TERM_ENTRY + self.postings_len + 4 * slot as usize,
        )
    }

    fn key(&self, slot: u32) -> u64 {
        le_u64(
            &self.map,
            HEADER
                + self.terms * TERM_ENTRY
                + self.postings_len
                + 4 * self.slots
                + 8 * slot as usize,
        )
    }

    fn find_key(&self, key: u64) -> Option<u32> {
        let (mut lo, mut hi) = (0u32, self.slots as u32);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.key(mid).cmp(&key) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(mid),
            }
        }
        None
    }
}

/// Documents live in slots (dense numbers) so a query can add up scores in
/// a flat array instead of a hash map: the postings of a common word can
/// run to tens of thousands of documents. The segment's slots come first,
/// then the delta's.
#[derive(Default)]
pub struct LexicalIndex {
    segment: Option<Segment>,
    /// Documents added since the segment was written: key and length by
    /// slot (after the segment's), slots by key, postings by term.
    delta_keys: Vec<u64>,
    delta_lens: Vec<u32>,
    delta_slot_of: HashMap<u64, u32>,
    delta_postings: HashMap<u64, Vec<(u32, u32)>>,
    /// Tombstones by slot.
    dead: Vec<bool>,
    dead_count: usize,
    live: usize,
    total_len: u64,
}

impl std::fmt::Debug for LexicalIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LexicalIndex")
            .field("documents", &self.live)
            .field("segment_slots", &self.segment_slots())
            .field("delta_slots", &self.delta_keys.len())
            .field("tombstones", &self.dead_count)
            .finish()
    }
}

impl LexicalIndex {
    pub fn new() -> Self {
        LexicalIndex::default()
    }

    /// An index of documents' term counts.
    pub fn from_docs(docs: impl IntoIterator<Item = (u64, DocTerms)>) -> Self {
        let mut index = LexicalIndex::new();
        for (key, terms) in docs {
            index.insert(key, terms);
        }
        index
    }

    /// Maps a saved segment.
    pub fn load(path: &Path) -> Result<LexicalIndex> {
        let segment = Segment::open(path)?;
        Ok(LexicalIndex {
            dead: vec![false; segment.slots],
            live: segment.slots,
            total_len: segment.total_len,
            segment: Some(segment),
            ..LexicalIndex::default()
        })
    }

    fn segment_slots(&self) -> u32 {
        self.segment.as_ref().map_or(0, |s| s.slots as u32)
    }

    fn slot_count(&self) -> usize {
        self.segment_slots() as usize + self.delta_keys.len()
    }

    fn key_of(&self, slot: u32) -> Option<u64> {
        let seg = self.segment_slots();
        if slot < seg {
            self.segment.as_ref().map(|s| s.key(slot))
        } else {
            self.delta_keys.get((slot - seg) as usize).copied()
        }
    }

    fn len_of(&self, slot: u32) -> u32 {
        let seg = self.segment_slots();
        if slot < seg {
            self.segment.as_ref().map_or(0, |s| s.doc_len(slot))
        } else {
            self.delta_lens
                .get((slot - seg) as usize)
                .copied()
                .unwrap_or(0)
        }
    }

    fn slot_of(&self, key: u64) -> Option<u32> {
        if let Some(slot) = self.delta_slot_of.get(&key) {
            return Some(*slot);
        }
        let slot = self.segment.as_ref()?.find_key(key)?;
        (!self.dead[slot as usize]).then_some(slot)
    }

    pub fn contains(&self, key: u64) -> bool {
        self.slot_of(key).is_some()
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Bytes on the heap: the delta and the tombstones.
    pub fn heap_bytes(&self) -> usize {
        self.delta_keys.capacity() * 12
            + self.delta_slot_of.capacity() * 16
            + self.delta_postings.capacity() * 40
            + self
                .delta_postings
                .values()
                .map(|v| v.capacity() * 8)
                .sum::<usize>()
            + self.dead.capacity()
    }

    /// Bytes of the mapped segment (resident only as far as it is read).
    pub fn mapped_bytes(&self) -> usize {
        self.segment.as_ref().map_or(0, |s| s.map.len())
    }

    pub fn insert(&mut self, key: u64, doc: DocTerms) {
        self.remove(key);
        let slot = self.slot_count() as u32;
        for (term, tf) in &doc.terms {
            self.delta_postings
                .entry(*term)
                .or_default()
                .push((slot, *tf));
        }
        self.delta_keys.push(key);
        self.delta_lens.push(doc.len);
        self.delta_slot_of.insert(key, slot);
        self.dead.push(false);
        self.live += 1;
        self.total_len += u64::from(doc.len);
    }

    pub fn remove(&mut self, key: u64) {
        let slot = match self.delta_slot_of.remove(&key) {
            Some(slot) => slot,
            None => match self.slot_of(key) {
                Some(slot) => slot,
                None => return,
            },
        };
        if let Some(d) = self.dead.get_mut(slot as usize)
            && !*d
        {
            *d = true;
            self.dead_count += 1;
            self.live -= 1;
            self.total_len = self.total_len.saturating_sub(u64::from(self.len_of(slot)));
        }
    }

    /// A term's postings, segment and delta, tombstones included.
    fn postings(&self, term: u64, out: &mut Vec<(u32, u32)>) {
        if let Some(seg) = &self.segment
            && let Some(t) = seg.find_term(term)
        {
            seg.postings(t, out);
        }
        if let Some(list) = self.delta_postings.get(&term) {
            out.extend_from_slice(list);
        }
    }

    /// The query's distinct term hashes.
    fn query_hashes(query: &str) -> Vec<u64> {
        let mut hashes: Vec<u64> = query_terms(query)
            .iter()
            .map(|w| stable_hash(w.as_bytes()))
            .collect();
        hashes.sort_unstable();
        hashes.dedup();
        hashes
    }

    /// A term's live postings (tombstones left out) into `list`.
    fn live_postings(&self, term: u64, list: &mut Vec<(u32, u32)>) {
        list.clear();
        self.postings(term, list);
        if self.dead_count > 0 {
            list.retain(|(slot, _)| !self.dead[*slot as usize]);
        }
    }

    /// The live documents holding `term` (as [`query_terms`] gives it), or
    /// `None` when more than `most` do.
    pub fn holders(&self, term: &str, most: usize) -> Option<Vec<u64>> {
        let hash = stable_hash(term.as_bytes());
        // Counted without reading the postings: a common word is answered
        // at once.
        let stored = self
            .segment
            .as_ref()
            .and_then(|seg| seg.find_term(hash).map(|t| seg.term(t).2 as usize))
            .unwrap_or(0)
            + self.delta_postings.get(&hash).map_or(0, Vec::len);
        if stored > most + self.dead_count {
            return None;
        }
        let mut list = Vec::new();
        self.live_postings(hash, &mut list);
        if list.len() > most {
            return None;
        }
        Some(
            list.iter()
                .filter_map(|(slot, _)| self.key_of(*slot))
                .collect(),
        )
    }

    /// The score a document would get by holding every term of `query`,
    /// each many times: what [`Self::search`]'s scores are measured against
    /// to tell a full match from one incidental word. Two sums: over the
    /// terms some document holds, and over all of them (a term no document
    /// holds counts at its full rarity: the query asks for it and nothing
    /// answers).
    pub fn ceiling(&self, query: &str) -> Ceiling {
        let n = self.len() as f32;
        let mut words = query_terms(query);
        words.sort_unstable();
        words.dedup();
        let pairs = words
            .iter()
            .filter(|w| w.chars().all(|c| script(c) == Script::Cjk))
            .count();
        let mut ceiling = Ceiling {
            pairs: pairs * 2 > words.len(),
            terms: words.len(),
            ..Ceiling::default()
        };
        let mut list = Vec::new();
        for w in &words {
            self.live_postings(stable_hash(w.as_bytes()), &mut list);
            let df = list.len() as f32;
            let most = (1.0 + (n - df + 0.5) / (df + 0.5)).ln() * (K1 + 1.0);
            if df > 0.0 {
                ceiling.known += most;
                ceiling.all += most;
            } else {
                ceiling.all += most * unanswered_weight(w);
            }
        }
        ceiling
    }

    /// The best `limit` documents for `query` that `keep` accepts (all when
    /// `None`), best first.
    pub fn search(
        &self,
        query: &str,
        limit: usize,
        keep: Option<&dyn Fn(u64) -> bool>,
    ) -> Vec<(u64, f32)> {
        let n = self.len() as f32;
        if n == 0.0 || limit == 0 {
            return Vec::new();
        }
        let avgdl = (self.total_len as f32 / n).max(1.0);
        let mut scores = vec![0f32; self.slot_count()];
        let mut touched: Vec<u32> = Vec::new();
        let mut list: Vec<(u32, u32)> = Vec::new();
        for term in Self::query_hashes(query) {
            self.live_postings(term, &mut list);
            if list.is_empty() {
                continue;
            }
            let df = list.len() as f32;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for &(slot, tf) in &list {
                let tf = tf as f32;
                let dl = self.len_of(slot) as f32;
                let weight = tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * dl / avgdl));
                let s = &mut scores[slot as usize];
                if *s == 0.0 {
                    touched.push(slot);
                }
                *s += idf * weight;
            }
        }
        let mut ranked: Vec<(u64, f32)> = touched
            .into_iter()
            .filter_map(|slot| Some((self.key_of(slot)?, scores[slot as usize])))
            .collect();
        let by_score = |a: &(u64, f32), b: &(u64, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        match keep {
            Some(keep) => {
                // Best first, then filter until enough are kept.
                ranked.sort_by(by_score);
                ranked.retain(|(k, _)| keep(*k));
                ranked.truncate(limit);
            }
            None => {
                if ranked.len() > limit {
                    ranked.select_nth_unstable_by(limit - 1, by_score);
                    ranked.truncate(limit);
                }
                ranked.sort_by(by_score);
            }
        }
        ranked
    }

    /// Writes the live documents as one segment to `path` and maps it in
    /// place of the old segment and the delta.
    pub fn save(&mut self, path: &Path) -> Result<()> {
        // Written aside and renamed: `path` may be the mapped file.
        let tmp = path.with_extension("writing");
        self.write(&tmp)
            .with_context(|| format!("saving the word index to {}", path.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
        *self = LexicalIndex::load(path)?;
        Ok(())
    }

    fn write(&self, path: &Path) -> Result<()> {
        // Live documents by key: their new slots.
        let mut docs: Vec<(u64, u32)> = (0..self.slot_count() as u32)
            .filter(|s| !self.dead[*s as usize])
            .filter_map(|s| Some((self.key_of(s)?, s)))
            .collect();
        docs.sort_unstable();
        let mut new_slot = vec![u32::MAX; self.slot_count()];
        for (i, (_, old)) in docs.iter().enumerate() {
            new_slot[*old as usize] = i as u32;
        }
        // Every term, segment and delta, by hash.
        let mut all_terms: Vec<u64> = self.delta_postings.keys().copied().collect();
        if let Some(seg) = &self.segment {
            all_terms.extend((0..seg.terms).map(|t| seg.term(t).0));
        }
        all_terms.sort_unstable();
        all_terms.dedup();
        let mut table: Vec<(u64, u64, u32)> = Vec::with_capacity(all_terms.len());
        let mut postings: Vec<u8> = Vec::new();
        let mut list: Vec<(u32, u32)> = Vec::new();
        for term in all_terms {
            list.clear();
            self.postings(term, &mut list);
            list.retain_mut(|(slot, _)| {
                *slot = new_slot.get(*slot as usize).copied().unwrap_or(u32::MAX);
                *slot != u32::MAX
            });
            if list.is_empty() {
                continue;
            }
            list.sort_unstable();
            table.push((term, postings.len() as u64, list.len() as u32));
            let mut previous = 0;
            for (i, (slot, tf)) in list.iter().enumerate() {
                put_varint(&mut postings, if i == 0 { *slot } else { slot - previous });
                put_varint(&mut postings, *tf);
                previous = *slot;
            }
        }
        let total_len: u64 = docs
            .iter()
            .map(|(_, old)| u64::from(self.len_of(*old)))
            .sum();
        let file = File::create(path).with_context(|| format!("writing {}", path.display()))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        w.write_all(MAGIC)?;
        for x in [
            docs.len() as u64,
            table.len() as u64,
            postings.len() as u64,
            total_len,
        ] {
            w.write_all(&x.to_le_bytes())?;
        }
        for (hash, offset, df) in &table {
            w.write_all(&hash.to_le_bytes())?;
            w.write_all(&offset.to_le_bytes())?;
            w.write_all(&df.to_le_bytes())?;
        }
        w.write_all(&postings)?;
        for (_, old) in &docs {
            w.write_all(&self.len_of(*old).to_le_bytes())?;
        }
        for (key, _) in &docs {
            w.write_all(&key.to_le_bytes())?;
        }
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(texts: &[&str]) -> LexicalIndex {
        let mut ix = LexicalIndex::new();
        for (i, t) in texts.iter().enumerate() {
            ix.insert(i as u64, DocTerms::of(t));
        }
        ix
    }

    /// The index saved and mapped again.
    fn saved(ix: &mut LexicalIndex, dir: &Path, name: &str) {
        ix.save(&dir.join(name)).expect("save");
    }

    #[test]
    fn rare_terms_outrank_common_ones() {
        let ix = index(&[
            "brand brand colour palette",
            "brand guidelines for social",
            "brand voice and tone",
            "spring launch hero",
        ]);
        let hits = ix.search("brand palette", 10, None);
        assert_eq!(hits.first().map(|h| h.0), Some(0));
        assert_eq!(hits.len(), 3);
        assert!(ix.search("spring", 10, None).iter().all(|h| h.0 == 3));
    }

    #[test]
    fn removed_and_replaced_documents_change_results() {
        let mut ix = index(&["winter menu coffee", "bring your own cup"]);
        assert_eq!(ix.search("coffee", 5, None).len(), 1);
        ix.insert(0, DocTerms::of("winter menu tea"));
        assert!(ix.search("coffee", 5, None).is_empty());
        assert_eq!(ix.search("tea", 5, None)[0].0, 0);
        ix.remove(0);
        assert!(ix.search("tea", 5, None).is_empty());
        assert_eq!(ix.len(), 1);
    }

    #[test]
    fn filter_and_limit_apply() {
        let ix = index(&["logo logo", "logo", "logo size", "logo clear space"]);
        let hits = ix.search("logo", 2, Some(&|k| k != 0));
        assert_eq!(hits.len(), 2);
        assert!(hits.iter().all(|h| h.0 != 0));
    }

    #[test]
    fn a_saved_and_mapped_index_gives_the_same_ranking() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut ix = index(&["a cup of coffee", "coffee beans roasted", "tea leaves"]);
        let before = ix.search("roasted coffee", 5, None);
        saved(&mut ix, dir.path(), "a.lex");
        assert_eq!(ix.search("roasted coffee", 5, None), before);
        let again = LexicalIndex::load(&dir.path().join("a.lex")).expect("load");
        assert_eq!(again.search("roasted coffee", 5, None), before);
        assert_eq!(again.len(), 3);
    }

    /// Removing and replacing documents of the saved segment (tombstones)
    /// and of the delta gives exactly the scores of an index built afresh
    /// from the documents that remain, before and after another save.
    #[test]
    fn tombstones_keep_statistics_exact() {
        let dir = tempfile::tempdir().expect("tmp");
        let texts = [
            "winter menu coffee and cake",
            "bring your own cup for coffee",
            "coffee beans roasted in house",
            "tea leaves and herbal tea",
            "the spring menu has iced coffee",
            "cake of the day",
        ];
        let mut ix = index(&texts);
        saved(&mut ix, dir.path(), "1.lex");
        // Segment documents: one removed, one replaced; a delta document
        // added, then replaced, and one added and removed.
        ix.remove(1);
        ix.insert(2, DocTerms::of("green tea and matcha"));
        ix.insert(10, DocTerms::of("coffee coffee coffee"));
        ix.insert(10, DocTerms::of("decaf coffee on request"));
        ix.insert(11, DocTerms::of("coffee cake"));
        ix.remove(11);
        let fresh = LexicalIndex::from_docs([
            (0, DocTerms::of(texts[0])),
            (2, DocTerms::of("green tea and matcha")),
            (3, DocTerms::of(texts[3])),
            (4, DocTerms::of(texts[4])),
            (5, DocTerms::of(texts[5])),
            (10, DocTerms::of("decaf coffee on request")),
        ]);
        assert_eq!(ix.len(), 6);
        for q in [
            "coffee",
            "tea",
            "cake menu",
            "roasted beans",
            "cup",
            "decaf",
        ] {
            assert_eq!(ix.search(q, 10, None), fresh.search(q, 10, None), "{q}");
        }
        assert!(ix.search("roasted", 10, None).is_empty());
        for q in ["coffee", "tea cake", "roasted", "nothing"] {
            assert_eq!(ix.ceiling(q), fresh.ceiling(q), "{q}");
        }
        assert_eq!(
            ix.ceiling("roasted").known,
            0.0,
            "no live document holds it"
        );
        saved(&mut ix, dir.path(), "2.lex");
        for q in ["coffee", "tea", "cake menu", "decaf"] {
            assert_eq!(ix.search(q, 10, None), fresh.search(q, 10, None), "{q}");
        }
        assert!(ix.contains(10) && !ix.contains(1) && !ix.contains(11));
    }

    #[test]
    fn hostile_segment_files_are_errors() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut ix = index(&["a cup of coffee", "coffee beans roasted", "tea leaves"]);
        saved(&mut ix, dir.path(), "good.lex");
        let good = std::fs::read(dir.path().join("good.lex")).expect("read");
        let bad = dir.path().join("bad.lex");
        let check = |bytes: &[u8], what: &str| {
            std::fs::write(&bad, bytes).expect("write");
            match LexicalIndex::load(&bad) {
                Ok(_) => panic!("{what} was accepted"),
                Err(e) => assert!(e.to_string().contains("bad.lex"), "{e}"),
            }
        };
        check(&good[..good.len() - 1], "a truncated file");
        check(&good[..HEADER - 1], "half a header");
        check(b"", "an empty file");
        check(b"SPKVFLT1 not a word index at all, at all.", "another file");
        let mut longer = good.clone();
        longer.push(0);
        check(&longer, "a longer file");
        let mut slots = good.clone();
        slots[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        check(&slots, "a huge slot count");
        let mut total = good.clone();
        total[32] ^= 1;
        check(&total, "a wrong total length");
        let mut order = good.clone();
        order[HEADER..HEADER + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        check(&order, "terms out of order");
        // Garbage postings load (their shape is right) but never panic.
        let mut postings = good.clone();
        let terms = le_u64(&good, 16) as usize;
        let start = HEADER + terms * TERM_ENTRY;
        let len = le_u64(&good, 24) as usize;
        postings[start..start + len].fill(0xff);
        std::fs::write(&bad, &postings).expect("write");
        let ix = LexicalIndex::load(&bad).expect("shape is fine");
        let _ = ix.search("coffee cup tea roasted", 10, None);
    }

    #[test]
    fn varints_round_trip_and_reject_overlong_input() {
        let mut out = Vec::new();
        for x in [0, 1, 127, 128, 300, u32::MAX] {
            out.clear();
            put_varint(&mut out, x);
            let mut at = 0;
            assert_eq!(get_varint(&out, &mut at), Some(x));
            assert_eq!(at, out.len());
        }
        let mut at = 0;
        assert_eq!(get_varint(&[0xff; 6], &mut at), None);
        let mut at = 0;
        assert_eq!(get_varint(&[0x80], &mut at), None);
    }
}
