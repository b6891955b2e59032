//! The hub's knowledge base: guideline documents and case studies, split
//! into chunks that travel as ops so every teammate can search them. The
//! source file itself is a blob.

use super::record::{EntityRecord, Item};
use serde::{Deserialize, Serialize};

/// One chunk as appended to its document; never edited. A document that
/// changes is added again and the old one removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnowledgeChunk {
    /// Position in the document, from 0.
    pub n: u32,
    /// Headings above the chunk, outermost first.
    #[serde(default)]
    pub headings: Vec<String>,
    pub text: String,
    /// 1-based source lines the chunk covers.
    #[serde(default)]
    pub first_line: usize,
    #[serde(default)]
    pub last_line: usize,
}

impl KnowledgeChunk {
    /// `file.md › Section › Subsection, lines 12-30`: where a citation points.
    pub fn location(&self, title: &str) -> String {
        let mut s = title.to_owned();
        for h in &self.headings {
            s.push_str(" › ");
            s.push_str(h);
        }
        if self.first_line > 0 {
            s.push_str(&format!(", lines {}-{}", self.first_line, self.last_line));
        }
        s
    }
}

/// The `source` field: the file's blob (sync uploads it before the op).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnowledgeSource {
    pub blob_sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KnowledgeDoc {
    pub id: String,
    /// The file name it was added from.
    pub title: String,
    /// `markdown` or `text`.
    pub format: String,
    pub source_sha256: String,
    pub size: u64,
    pub added_by: Option<String>,
    pub chunks: Vec<KnowledgeChunk>,
    pub deleted: bool,
}

impl KnowledgeDoc {
    /// `items` are the document's appended chunks.
    pub fn from_record(id: &str, rec: &EntityRecord, items: &[Item]) -> KnowledgeDoc {
        let source: KnowledgeSource = rec.get_as("source").unwrap_or_default();
        let mut chunks: Vec<KnowledgeChunk> = items
            .iter()
            .filter_map(|item| serde_json::from_value(item.value.clone()).ok())
            .collect();
        chunks.sort_by_key(|c| c.n);
        chunks.dedup_by_key(|c| c.n);
        KnowledgeDoc {
            id: id.to_owned(),
            title: rec.string("title").unwrap_or_default(),
            format: rec.string("format").unwrap_or_default(),
            source_sha256: source.blob_sha256,
            size: source.size,
            added_by: rec.string("added_by"),
            chunks,
            deleted: rec.is_deleted(),
        }
    }
}
