//! Search and knowledge: embedders, the usearch vector index, the BM25
//! lexical index, and hybrid retrieval over briefs, comments, chat, asset
//! captions and the hub's knowledge base.

pub mod catalog;
pub mod chunk;
pub mod docs;
pub mod embed;
pub mod index;
pub mod lexical;
pub mod terms;
pub mod vectors;
