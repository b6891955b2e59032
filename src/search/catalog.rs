//! What each key of the search index stands for, kept compact: the entries
//! in one vector, found by key through a map of positions, and by document
//! id through a map of the id's hash (so no id is stored twice). Each key's
//! language is also kept in a byte per key, so a scan over every vector can
//! tell the language of each without a lookup in the maps.

use super::index::CatalogEntry;
use super::terms::stable_hash;
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct Catalog {
    keys: Vec<u64>,
    entries: Vec<CatalogEntry>,
    /// Position in `keys` and `entries` by key.
    at: HashMap<u64, u32>,
    /// Key by the hash of the document id.
    by_doc: HashMap<u64, u64>,
    /// Keys of documents whose id hash another document already holds.
    by_doc_collided: HashMap<String, u64>,
    /// Each key's language as an index into `languages` plus one (0: none
    /// or no entry). Keys are handed out in order, so this stays dense.
    language_of: Vec<u8>,
    /// The language codes seen, at most 255.
    languages: Vec<[u8; 2]>,
}

/// Keys past this are not given a language byte (told as none): keys are
/// handed out in order from 1, so only a damaged file reaches it.
const DENSE_KEYS: usize = 1 << 26;

fn doc_hash(doc_id: &str) -> u64 {
    stable_hash(doc_id.as_bytes())
}

impl Catalog {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn clear(&mut self) {
        *self = Catalog::default();
    }

    pub fn reserve(&mut self, more: usize) {
        self.keys.reserve_exact(more);
        self.entries.reserve_exact(more);
        self.at.reserve(more);
        self.by_doc.reserve(more);
    }

    /// Gives back memory the vectors grew into.
    pub fn shrink_to_fit(&mut self) {
        self.keys.shrink_to_fit();
        self.entries.shrink_to_fit();
        self.language_of.shrink_to_fit();
    }

    /// Every key with an entry, in no particular order.
    pub fn keys(&self) -> &[u64] {
        &self.keys
    }

    pub fn get(&self, key: &u64) -> Option<&CatalogEntry> {
        self.entries.get(*self.at.get(key)? as usize)
    }

    pub fn get_mut(&mut self, key: &u64) -> Option<&mut CatalogEntry> {
        self.entries.get_mut(*self.at.get(key)? as usize)
    }

    pub fn values(&self) -> impl Iterator<Item = &CatalogEntry> {
        self.entries.iter()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u64, &CatalogEntry)> {
        self.keys.iter().copied().zip(&self.entries)
    }

    /// The key of a document id.
    pub fn key_of_doc(&self, doc_id: &str) -> Option<u64> {
        if let Some(key) = self.by_doc.get(&doc_hash(doc_id))
            && self.get(key).is_some_and(|e| e.doc_id == doc_id)
        {
            return Some(*key);
        }
        self.by_doc_collided.get(doc_id).copied()
    }

    /// Adds or replaces the entry under `key`.
    pub fn insert(&mut self, key: u64, entry: CatalogEntry) {
        self.remove(&key);
        let h = doc_hash(&entry.doc_id);
        match self.by_doc.get(&h).and_then(|k| self.get(k)) {
            Some(other) if other.doc_id != entry.doc_id => {
                self.by_doc_collided.insert(entry.doc_id.clone(), key);
            }
            _ => {
                self.by_doc.insert(h, key);
            }
        }
        let language = self.language_id(entry.lang);
        if let Ok(at) = usize::try_from(key)
            && at < DENSE_KEYS
        {
            if self.language_of.len() <= at {
                self.language_of.resize(at + 1, 0);
            }
            self.language_of[at] = language;
        }
        self.at.insert(key, self.entries.len() as u32);
        self.keys.push(key);
        self.entries.push(entry);
    }

    /// The id a language code is kept under (0 for none, or past 255 codes).
    fn language_id(&mut self, code: [u8; 2]) -> u8 {
        if code[0] == 0 {
            return 0;
        }
        let at = match self.languages.iter().position(|c| *c == code) {
            Some(at) => at,
            None => {
                self.languages.push(code);
                self.languages.len() - 1
            }
        };
        u8::try_from(at + 1).unwrap_or(0)
    }

    /// The id of a language code in [`Catalog::language_of`] (`None` when no
    /// entry has been written in it).
    pub fn language_code_id(&self, code: &str) -> Option<u8> {
        let at = self.languages.iter().position(|c| c == code.as_bytes())?;
        u8::try_from(at + 1).ok()
    }

    /// A key's language id without a lookup in the maps (0: none).
    #[inline]
    pub fn language_of(&self, key: u64) -> u8 {
        usize::try_from(key)
            .ok()
            .and_then(|at| self.language_of.get(at))
            .copied()
            .unwrap_or(0)
    }

    pub fn remove(&mut self, key: &u64) -> Option<CatalogEntry> {
        let i = self.at.remove(key)? as usize;
        self.keys.swap_remove(i);
        let entry = self.entries.swap_remove(i);
        if let Some(moved) = self.keys.get(i) {
            self.at.insert(*moved, i as u32);
        }
        if let Some(l) = usize::try_from(*key)
            .ok()
            .and_then(|at| self.language_of.get_mut(at))
        {
            *l = 0;
        }
        let h = doc_hash(&entry.doc_id);
        if self.by_doc.get(&h) == Some(key) {
            self.by_doc.remove(&h);
        }
        if self.by_doc_collided.get(&entry.doc_id) == Some(key) {
            self.by_doc_collided.remove(&entry.doc_id);
        }
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EntityKind, EntityRef};
    use crate::search::docs::DocKind;

    fn entry(doc_id: &str) -> CatalogEntry {
        CatalogEntry {
            doc_id: doc_id.to_owned(),
            kind: DocKind::ALL[0],
            entity: EntityRef::new(EntityKind::Knowledge, "kb1".to_owned()),
            display_id: doc_id.to_owned(),
            title: "t".to_owned(),
            status: None,
            tags: Vec::new(),
            brief: None,
            content_hash: 1,
            lang: [0, 0],
        }
    }

    #[test]
    fn finds_by_key_and_by_document_through_removals() {
        let mut c = Catalog::default();
        for k in 0..100u64 {
            c.insert(k, entry(&format!("doc#{k}")));
        }
        c.remove(&10);
        c.remove(&0);
        c.insert(5, entry("doc#5-renamed"));
        assert_eq!(c.len(), 98);
        assert!(c.get(&10).is_none() && c.key_of_doc("doc#10").is_none());
        assert_eq!(c.key_of_doc("doc#99"), Some(99));
        assert_eq!(c.get(&99).map(|e| e.doc_id.as_str()), Some("doc#99"));
        assert_eq!(c.key_of_doc("doc#5-renamed"), Some(5));
        assert!(c.key_of_doc("doc#5").is_none());
        assert_eq!(c.iter().count(), 98);
        assert!(c.iter().all(|(k, e)| c.get(&k) == Some(e)));
    }

    #[test]
    fn each_keys_language_is_told_without_the_maps() {
        let mut c = Catalog::default();
        let written = |lang: &[u8; 2], doc: &str| CatalogEntry {
            lang: *lang,
            ..entry(doc)
        };
        c.insert(3, written(b"ja", "a"));
        c.insert(7, written(b"en", "b"));
        c.insert(8, entry("c"));
        let ja = c.language_code_id("ja").expect("ja");
        let en = c.language_code_id("en").expect("en");
        assert_ne!(ja, en);
        assert_eq!(c.language_of(3), ja);
        assert_eq!(c.language_of(7), en);
        assert_eq!(c.language_of(8), 0);
        assert_eq!(c.language_of(1_000), 0);
        assert_eq!(c.language_code_id("de"), None);
        c.insert(3, written(b"en", "a"));
        assert_eq!(c.language_of(3), en);
        c.remove(&7);
        assert_eq!(c.language_of(7), 0);
    }

    #[test]
    fn colliding_document_hashes_keep_both_documents() {
        let mut c = Catalog::default();
        c.insert(1, entry("a"));
        // Forge a collision: another id filed under a's hash.
        let mut b = entry("b");
        c.by_doc.insert(doc_hash("b"), 1);
        b.doc_id = "b".into();
        c.insert(2, b);
        assert_eq!(c.key_of_doc("a"), Some(1));
        assert_eq!(c.key_of_doc("b"), Some(2));
        c.remove(&2);
        assert_eq!(c.key_of_doc("b"), None);
        assert_eq!(c.key_of_doc("a"), Some(1));
    }
}
