//! The `local` embedder: no model, no network, the same vectors on every
//! machine. Hashed features of the text (stemmed words, adjacent word pairs
//! and character trigrams of each word), weighted, signed, folded into 384
//! dimensions and L2-normalised. It finds shared words and their variants
//! (`colour`/`colours`, `photo`/`photography`); it does not know synonyms.

use super::{EmbedError, Embedder, EmbedderId, Purpose, normalize};
use crate::search::terms::{stable_hash, terms};

pub const LOCAL_DIMS: usize = 384;
/// Bumped whenever the features or weights change, so old indexes rebuild.
pub const LOCAL_MODEL: &str = "hashed-ngrams-v2";

/// Below this, a match shares at most a stray trigram or two.
const LOCAL_MIN_SIMILARITY: f32 = 0.1;

/// These vectors see the same words BM25 sees, blurred by hashing and
/// without word rarity: they catch misspellings and variants BM25 misses,
/// they should not outvote it (on the labelled set, equal weight cost 1 in
/// 20 queries their top-5 result).
const LOCAL_FUSION_WEIGHT: f32 = 0.25;

const WORD_WEIGHT: f32 = 1.0;
const PAIR_WEIGHT: f32 = 0.5;
/// Spread over a word's trigrams, so long words do not outweigh short ones.
const TRIGRAM_WEIGHT: f32 = 1.2;

#[derive(Debug, Clone, Default)]
pub struct LocalEmbedder;

impl LocalEmbedder {
    pub fn new() -> Self {
        LocalEmbedder
    }

    /// One text's vector.
    pub fn vector(&self, text: &str) -> Vec<f32> {
        self.vector_of(&terms(text))
    }

    /// The vector of a text's terms, already split.
    pub fn vector_of(&self, words: &[String]) -> Vec<f32> {
        let mut v = vec![0f32; LOCAL_DIMS];
        // Sublinear term frequency: a word said ten times is not ten times the topic.
        // Sorted, so floating-point sums happen in the same order every time.
        let mut counts: std::collections::BTreeMap<&str, u32> = std::collections::BTreeMap::new();
        for w in words {
            *counts.entry(w.as_str()).or_default() += 1;
        }
        for (word, n) in &counts {
            let tf = 1.0 + (*n as f32).ln();
            add_feature(&mut v, b'w', word.as_bytes(), WORD_WEIGHT * tf);
            let padded: Vec<char> = std::iter::once('<')
                .chain(word.chars())
                .chain(std::iter::once('>'))
                .collect();
            let grams = padded.len().saturating_sub(2);
            if grams > 0 {
                let each = TRIGRAM_WEIGHT * tf / (grams as f32).sqrt();
                let mut buf = String::new();
                for win in padded.windows(3) {
                    buf.clear();
                    buf.extend(win);
                    add_feature(&mut v, b'c', buf.as_bytes(), each);
                }
            }
        }
        for pair in words.windows(2) {
            let key = format!("{} {}", pair[0], pair[1]);
            add_feature(&mut v, b'p', key.as_bytes(), PAIR_WEIGHT);
        }
        normalize(&mut v);
        v
    }
}

/// Adds a feature's weight at its hashed position, with a hashed sign so
/// collisions cancel out on average instead of piling up.
fn add_feature(v: &mut [f32], family: u8, bytes: &[u8], weight: f32) {
    let mut key = Vec::with_capacity(bytes.len() + 1);
    key.push(family);
    key.extend_from_slice(bytes);
    let h = stable_hash(&key);
    let slot = (h % v.len() as u64) as usize;
    let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
    v[slot] += sign * weight;
}

impl Embedder for LocalEmbedder {
    fn id(&self) -> EmbedderId {
        EmbedderId {
            kind: "local".into(),
            model: LOCAL_MODEL.into(),
            dims: LOCAL_DIMS,
        }
    }

    fn embed(&self, texts: &[&str], _purpose: Purpose) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts.iter().map(|t| self.vector(t)).collect())
    }

    fn embed_terms(&self, terms: &[Vec<String>]) -> Option<Vec<Vec<f32>>> {
        Some(terms.iter().map(|t| self.vector_of(t)).collect())
    }

    /// Texts sharing no word or trigram land near 0 (hash collisions only).
    fn min_similarity(&self) -> f32 {
        LOCAL_MIN_SIMILARITY
    }

    fn fusion_weight(&self) -> f32 {
        LOCAL_FUSION_WEIGHT
    }

    fn crosses_languages(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cos(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn vectors_are_unit_length_and_deterministic() {
        let e = LocalEmbedder::new();
        let a = e.vector("Logo clear space: keep one cap height around the mark");
        assert_eq!(a.len(), LOCAL_DIMS);
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        assert_eq!(
            a,
            e.vector("Logo clear space: keep one cap height around the mark")
        );
    }

    #[test]
    fn related_text_is_closer_than_unrelated_text() {
        let e = LocalEmbedder::new();
        let q = e.vector("how much space around the logo");
        let near = e.vector("Clear space around the logo must equal the height of the S.");
        let far = e.vector("Invoices are payable within thirty days of receipt.");
        assert!(
            cos(&q, &near) > cos(&q, &far) + 0.2,
            "{} vs {}",
            cos(&q, &near),
            cos(&q, &far)
        );
    }

    #[test]
    fn word_variants_share_features() {
        let e = LocalEmbedder::new();
        let a = e.vector("photographs");
        let b = e.vector("photography");
        let c = e.vector("budget");
        assert!(
            cos(&a, &b) > cos(&a, &c) + 0.15,
            "{} vs {}",
            cos(&a, &b),
            cos(&a, &c)
        );
    }

    #[test]
    fn empty_text_is_a_zero_vector() {
        let v = LocalEmbedder::new().vector("   ");
        assert!(v.iter().all(|x| *x == 0.0));
    }
}
