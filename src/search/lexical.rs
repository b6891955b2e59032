//! The lexical side of hybrid search: Okapi BM25 over an inverted index of
//! the shared terms ([`super::terms`]). Document statistics are exact at
//! query time (no fitted average length that drifts as documents change).
//! Only the per-document term counts are persisted; postings are rebuilt
//! when the index is loaded.

use crate::search::terms::{stable_hash, terms};
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

#[derive(Debug, Default)]
pub struct LexicalIndex {
    docs: HashMap<u64, DocTerms>,
    postings: HashMap<u64, Vec<(u64, u32)>>,
    total_len: u64,
}

impl LexicalIndex {
    pub fn new() -> Self {
        LexicalIndex::default()
    }

    /// Rebuilds the postings from stored term counts.
    pub fn from_docs(docs: HashMap<u64, DocTerms>) -> Self {
        let mut index = LexicalIndex {
            docs: HashMap::with_capacity(docs.len()),
            postings: HashMap::new(),
            total_len: 0,
        };
        for (key, terms) in docs {
            index.insert(key, terms);
        }
        index
    }

    pub fn docs(&self) -> &HashMap<u64, DocTerms> {
        &self.docs
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    pub fn insert(&mut self, key: u64, doc: DocTerms) {
        self.remove(key);
        for (term, tf) in &doc.terms {
            self.postings.entry(*term).or_default().push((key, *tf));
        }
        self.total_len += u64::from(doc.len);
        self.docs.insert(key, doc);
    }

    pub fn remove(&mut self, key: u64) {
        let Some(doc) = self.docs.remove(&key) else {
            return;
        };
        self.total_len = self.total_len.saturating_sub(u64::from(doc.len));
        for (term, _) in &doc.terms {
            if let Some(list) = self.postings.get_mut(term) {
                if let Some(pos) = list.iter().position(|(k, _)| *k == key) {
                    list.swap_remove(pos);
                }
                if list.is_empty() {
                    self.postings.remove(term);
                }
            }
        }
    }

    /// The best `limit` documents for `query` that `keep` accepts, best first.
    pub fn search(&self, query: &str, limit: usize, keep: impl Fn(u64) -> bool) -> Vec<(u64, f32)> {
        let n = self.docs.len() as f32;
        if n == 0.0 || limit == 0 {
            return Vec::new();
        }
        let avgdl = (self.total_len as f32 / n).max(1.0);
        let mut query_terms: Vec<u64> = terms(query)
            .iter()
            .map(|w| stable_hash(w.as_bytes()))
            .collect();
        query_terms.sort_unstable();
        query_terms.dedup();
        let mut scores: HashMap<u64, f32> = HashMap::new();
        for term in query_terms {
            let Some(list) = self.postings.get(&term) else {
                continue;
            };
            let df = list.len() as f32;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for (key, tf) in list {
                let dl = self.docs.get(key).map_or(avgdl, |d| d.len as f32);
                let tf = *tf as f32;
                let weight = tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * dl / avgdl));
                *scores.entry(*key).or_default() += idf * weight;
            }
        }
        let mut ranked: Vec<(u64, f32)> = scores.into_iter().filter(|(k, _)| keep(*k)).collect();
        let by_score = |a: &(u64, f32), b: &(u64, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if ranked.len() > limit {
            ranked.select_nth_unstable_by(limit - 1, by_score);
            ranked.truncate(limit);
        }
        ranked.sort_by(by_score);
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
        let hits = ix.search("brand palette", 10, |_| true);
        assert_eq!(hits.first().map(|h| h.0), Some(0));
        assert_eq!(hits.len(), 3);
        assert!(ix.search("spring", 10, |_| true).iter().all(|h| h.0 == 3));
    }

    #[test]
    fn removed_and_replaced_documents_change_results() {
        let mut ix = index(&["winter menu coffee", "bring your own cup"]);
        assert_eq!(ix.search("coffee", 5, |_| true).len(), 1);
        ix.insert(0, DocTerms::of("winter menu tea"));
        assert!(ix.search("coffee", 5, |_| true).is_empty());
        assert_eq!(ix.search("tea", 5, |_| true)[0].0, 0);
        ix.remove(0);
        assert!(ix.search("tea", 5, |_| true).is_empty());
        assert_eq!(ix.len(), 1);
    }

    #[test]
    fn filter_and_limit_apply() {
        let ix = index(&["logo logo", "logo", "logo size", "logo clear space"]);
        let hits = ix.search("logo", 2, |k| k != 0);
        assert_eq!(hits.len(), 2);
        assert!(hits.iter().all(|h| h.0 != 0));
    }

    #[test]
    fn rebuilding_from_stored_terms_gives_the_same_ranking() {
        let ix = index(&["a cup of coffee", "coffee beans roasted", "tea leaves"]);
        let again = LexicalIndex::from_docs(ix.docs().clone());
        assert_eq!(
            ix.search("roasted coffee", 5, |_| true),
            again.search("roasted coffee", 5, |_| true)
        );
    }
}
