//! The knowledge base: add guideline documents (the file becomes a blob,
//! its heading-aware chunks become ops every teammate receives), list and
//! remove them.

use super::{Hub, set};
use crate::model::ids::new_entity_id;
use crate::model::input::InputError;
use crate::model::knowledge::{KnowledgeChunk, KnowledgeDoc};
use crate::model::{Change, EntityKind, EntityRef};
use crate::search::chunk::{ChunkOptions, DocFormat, chunk_document};
use crate::sync::blobs::store_bytes;
use anyhow::Result;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Larger text files are almost certainly not guidelines (or not text).
pub const MAX_KB_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// What happened to one file given to `kb add`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum KbAddOutcome {
    Added {
        path: PathBuf,
        id: String,
        chunks: usize,
    },
    /// A document with the same name was there; it is replaced.
    Replaced {
        path: PathBuf,
        id: String,
        replaced: String,
        chunks: usize,
    },
    /// The same bytes are already in the knowledge base.
    Unchanged {
        path: PathBuf,
        id: String,
    },
    Failed {
        path: PathBuf,
        reason: String,
    },
}

impl Hub {
    /// Documents in the knowledge base, by title.
    pub fn knowledge_docs(&self) -> Result<Vec<KnowledgeDoc>> {
        self.knowledge(true)
    }

    /// Documents with their chunks, or without (titles and sources only,
    /// which is all `kb add` needs to spot a file it has already).
    fn knowledge(&self, with_chunks: bool) -> Result<Vec<KnowledgeDoc>> {
        let mut out = Vec::new();
        for (id, rec) in self.replica.records(EntityKind::Knowledge)? {
            if rec.is_deleted() {
                continue;
            }
            let items: Vec<_> = if with_chunks {
                let entity = EntityRef::new(EntityKind::Knowledge, id.as_str());
                self.replica
                    .items(&entity)?
                    .into_iter()
                    .map(|(_, i)| i)
                    .collect()
            } else {
                Vec::new()
            };
            out.push(KnowledgeDoc::from_record(&id, &rec, &items));
        }
        out.sort_by(|a, b| a.title.cmp(&b.title).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    pub fn knowledge_doc(&self, typed_id: &str) -> Result<KnowledgeDoc> {
        let id = self.resolve_id(EntityKind::Knowledge, typed_id, "k")?;
        self.knowledge_docs()?
            .into_iter()
            .find(|d| d.id == id)
            .ok_or_else(|| InputError::new(format!("knowledge document {id} was removed")).into())
    }

    /// Adds files to the knowledge base. Each file is its own commit; a bad
    /// file is reported and the rest go on.
    pub fn add_knowledge(&mut self, paths: &[PathBuf]) -> Result<Vec<KbAddOutcome>> {
        let home = self.home();
        let mut out = Vec::with_capacity(paths.len());
        for path in paths {
            let outcome = match self.add_one_knowledge(&home, path) {
                Ok(o) => o,
                Err(e) => KbAddOutcome::Failed {
                    path: path.clone(),
                    reason: format!("{e:#}"),
                },
            };
            out.push(outcome);
        }
        Ok(out)
    }

    fn add_one_knowledge(&mut self, home: &Path, path: &Path) -> Result<KbAddOutcome> {
        let format = DocFormat::from_path(path).ok_or_else(|| {
            InputError::new(format!(
                "{}: only Markdown (.md) and plain text (.txt) can be added; convert PDFs and \
                 office files to text first",
                path.display()
            ))
        })?;
        let meta = std::fs::metadata(path)
            .map_err(|e| InputError::new(format!("cannot read {}: {e}", path.display())))?;
        if !meta.is_file() {
            return Err(InputError::new(format!("{} is not a file", path.display())).into());
        }
        if meta.len() > MAX_KB_FILE_BYTES {
            return Err(InputError::new(format!(
                "{} is {} bytes; knowledge documents are limited to {} MiB",
                path.display(),
                meta.len(),
                MAX_KB_FILE_BYTES / (1024 * 1024)
            ))
            .into());
        }
        let bytes = std::fs::read(path)
            .map_err(|e| InputError::new(format!("cannot read {}: {e}", path.display())))?;
        let text = String::from_utf8(bytes.clone()).map_err(|e| {
            InputError::new(format!(
                "{} is not UTF-8 text (invalid byte at offset {})",
                path.display(),
                e.utf8_error().valid_up_to()
            ))
        })?;
        let chunks = chunk_document(&text, format, ChunkOptions::default());
        if chunks.is_empty() {
            return Err(InputError::new(format!("{} has no text to add", path.display())).into());
        }
        let sha = crate::model::ids::hex(&Sha256::digest(&bytes));
        let title = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let existing = self.knowledge(false)?;
        if let Some(same) = existing.iter().find(|d| d.source_sha256 == sha) {
            return Ok(KbAddOutcome::Unchanged {
                path: path.to_owned(),
                id: same.id.clone(),
            });
        }
        let replaced = existing
            .iter()
            .find(|d| d.title == title)
            .map(|d| d.id.clone());
        store_bytes(home, &sha, &bytes)?;
        let id = new_entity_id("k");
        let entity = EntityRef::new(EntityKind::Knowledge, id.as_str());
        let actor = self.actor()?.to_owned();
        let mut changes = Vec::with_capacity(chunks.len() + 2);
        if let Some(old) = &replaced {
            changes.push((
                EntityRef::new(EntityKind::Knowledge, old.as_str()),
                Change::Delete,
            ));
        }
        changes.push((
            entity.clone(),
            set([
                ("title", json!(title)),
                (
                    "format",
                    json!(match format {
                        DocFormat::Markdown => "markdown",
                        DocFormat::PlainText => "text",
                    }),
                ),
                ("source", json!({"blob_sha256": sha, "size": bytes.len()})),
                ("added_by", json!(actor)),
            ]),
        ));
        let count = chunks.len();
        for (n, c) in chunks.into_iter().enumerate() {
            let chunk = KnowledgeChunk {
                n: n as u32,
                headings: c.headings,
                text: c.text,
                first_line: c.first_line,
                last_line: c.last_line,
            };
            changes.push((entity.clone(), Change::Append(json!(chunk))));
        }
        self.commit(changes)?;
        Ok(match replaced {
            Some(replaced) => KbAddOutcome::Replaced {
                path: path.to_owned(),
                id,
                replaced,
                chunks: count,
            },
            None => KbAddOutcome::Added {
                path: path.to_owned(),
                id,
                chunks: count,
            },
        })
    }

    /// Removes a document (a tombstone: its chunks leave search everywhere).
    pub fn remove_knowledge(&mut self, typed_id: &str) -> Result<KnowledgeDoc> {
        let doc = self.knowledge_doc(typed_id)?;
        self.commit(vec![(
            EntityRef::new(EntityKind::Knowledge, doc.id.as_str()),
            Change::Delete,
        )])?;
        Ok(doc)
    }
}
