//! The lexical side of hybrid search: Okapi BM25 over an inverted index of
//! the shared terms ([`super::terms`]). Document statistics are exact at
//! query time (no fitted average length that drifts as documents change).
//! Only the per-document term counts are persisted; postings are rebuilt
//! when the index is loaded.

use crate::search::terms::{Script, query_terms, script, stable_hash, terms};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

const K1: f32 = 1.2;
const B: f32 = 0.75;

/// A document's term counts: (term hash, count), sorted by term.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DocTerms {
    pub len: u32,
    pub terms: Vec<(u64, u32)>,
}

impl DocTerms {
    pub fn of(text: &str) -> DocTerms {
        let words = terms(text);
        let mut counts: HashMap<u64, u32> = HashMap::new();
        for w in &words {
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
}

/// Documents live in slots (dense numbers) so a query can add up scores in
/// a flat array instead of a hash map: the postings of a common word can
/// run to tens of thousands of documents.
#[derive(Debug, Default)]
pub struct LexicalIndex {
    slot_of: HashMap<u64, u32>,
    /// Per slot: the document key and its terms (`None`: a free slot).
    slots: Vec<Option<(u64, DocTerms)>>,
    free: Vec<u32>,
    postings: HashMap<u64, Vec<(u32, u32)>>,
    total_len: u64,
}

impl LexicalIndex {
    pub fn new() -> Self {
        LexicalIndex::default()
    }

    /// Rebuilds the postings from stored term counts.
    pub fn from_docs(docs: impl IntoIterator<Item = (u64, DocTerms)>) -> Self {
        let mut index = LexicalIndex::new();
        for (key, terms) in docs {
            index.insert(key, terms);
        }
        index
    }

    /// Every document's terms, by key.
    pub fn docs(&self) -> impl Iterator<Item = (u64, &DocTerms)> {
        self.slots.iter().flatten().map(|(k, t)| (*k, t))
    }

    pub fn terms_of(&self, key: u64) -> Option<&DocTerms> {
        let slot = *self.slot_of.get(&key)?;
        self.slots.get(slot as usize)?.as_ref().map(|(_, t)| t)
    }

    pub fn len(&self) -> usize {
        self.slot_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slot_of.is_empty()
    }

    pub fn insert(&mut self, key: u64, doc: DocTerms) {
        self.remove(key);
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        for (term, tf) in &doc.terms {
            self.postings.entry(*term).or_default().push((slot, *tf));
        }
        self.total_len += u64::from(doc.len);
        self.slot_of.insert(key, slot);
        self.slots[slot as usize] = Some((key, doc));
    }

    pub fn remove(&mut self, key: u64) {
        let Some(slot) = self.slot_of.remove(&key) else {
            return;
        };
        let Some((_, doc)) = self.slots.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        self.total_len = self.total_len.saturating_sub(u64::from(doc.len));
        for (term, _) in &doc.terms {
            if let Some(list) = self.postings.get_mut(term) {
                if let Some(pos) = list.iter().position(|(s, _)| *s == slot) {
                    list.swap_remove(pos);
                }
                if list.is_empty() {
                    self.postings.remove(term);
                }
            }
        }
        self.free.push(slot);
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
            ..Ceiling::default()
        };
        for w in &words {
            let df = self
                .postings
                .get(&stable_hash(w.as_bytes()))
                .map_or(0.0, |list| list.len() as f32);
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
        let mut query_terms: Vec<u64> = query_terms(query)
            .iter()
            .map(|w| stable_hash(w.as_bytes()))
            .collect();
        query_terms.sort_unstable();
        query_terms.dedup();
        let mut scores = vec![0f32; self.slots.len()];
        let mut touched: Vec<u32> = Vec::new();
        for term in query_terms {
            let Some(list) = self.postings.get(&term) else {
                continue;
            };
            let df = list.len() as f32;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for (slot, tf) in list {
                let Some(Some((_, doc))) = self.slots.get(*slot as usize) else {
                    continue;
                };
                let tf = *tf as f32;
                let dl = doc.len as f32;
                let weight = tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * dl / avgdl));
                let s = &mut scores[*slot as usize];
                if *s == 0.0 {
                    touched.push(*slot);
                }
                *s += idf * weight;
            }
        }
        let mut ranked: Vec<(u64, f32)> = touched
            .into_iter()
            .filter_map(|slot| {
                let (key, _) = self.slots.get(slot as usize)?.as_ref()?;
                Some((*key, scores[slot as usize]))
            })
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
    fn rebuilding_from_stored_terms_gives_the_same_ranking() {
        let ix = index(&["a cup of coffee", "coffee beans roasted", "tea leaves"]);
        let again = LexicalIndex::from_docs(ix.docs().map(|(k, t)| (k, t.clone())));
        assert_eq!(
            ix.search("roasted coffee", 5, None),
            again.search("roasted coffee", 5, None)
        );
    }
}
