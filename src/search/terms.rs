//! Words as search sees them: Unicode word boundaries, accents folded,
//! lowercased, English stop words dropped, Snowball-stemmed (the bm25
//! crate's tokenizer). The lexical index and the local embedder share it,
//! so a query and a document always agree on what a word is.

use bm25::{DefaultTokenizer, Language, Tokenizer};
use std::sync::OnceLock;

fn tokenizer() -> &'static DefaultTokenizer {
    static TOKENIZER: OnceLock<DefaultTokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| {
        DefaultTokenizer::builder()
            .language_mode(Language::English)
            .normalization(true)
            .stopwords(true)
            .stemming(true)
            .build()
    })
}

/// The stemmed, stop-word-free terms of a text, in order.
pub fn terms(text: &str) -> Vec<String> {
    tokenizer().tokenize(text)
}

/// A stable 64-bit hash (FNV-1a) of a term or feature: the same on every
/// machine and every build, so stored indexes stay valid.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_go_and_inflections_meet() {
        let t = terms("The Colours of the running shoes");
        assert!(!t.iter().any(|w| w == "the" || w == "of"), "{t:?}");
        assert_eq!(terms("running"), terms("runs"));
        assert_eq!(terms("Café"), terms("cafe"));
    }

    #[test]
    fn stable_hash_is_fixed() {
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(stable_hash(b"logo"), stable_hash(b"log"));
    }
}
