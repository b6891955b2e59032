//! What the index holds: the searchable documents an entity yields. A brief
//! is one document, each comment and chat message another, an asset one
//! (title, caption, tags, notes), a knowledge document one per chunk.

use crate::model::asset::Asset;
use crate::model::brief::Brief;
use crate::model::knowledge::{KnowledgeChunk, KnowledgeDoc};
use crate::model::thread::Message;
use crate::model::{EntityKind, EntityRef};
use crate::search::terms::stable_hash;
use crate::store::{Replica, StoreError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The kinds of result search returns; `--kind` picks among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    Brief,
    Comment,
    Chat,
    Asset,
    Kb,
}

impl DocKind {
    pub const ALL: [DocKind; 5] = [
        DocKind::Brief,
        DocKind::Comment,
        DocKind::Chat,
        DocKind::Asset,
        DocKind::Kb,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Brief => "brief",
            DocKind::Comment => "comment",
            DocKind::Chat => "chat",
            DocKind::Asset => "asset",
            DocKind::Kb => "kb",
        }
    }

    pub fn parse(s: &str) -> Option<DocKind> {
        let s = s.trim().to_ascii_lowercase();
        let s = match s.as_str() {
            "briefs" => "brief",
            "comments" => "comment",
            "assets" => "asset",
            "knowledge" => "kb",
            "message" | "messages" => "chat",
            other => other,
        };
        DocKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for DocKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One searchable document, derived from replica state.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchDoc {
    /// Unique in the index: `brief/b-1`, `thread/brief:b-1#<op>`, `knowledge/k-1#3`.
    pub doc_id: String,
    pub kind: DocKind,
    /// The entity it comes from; re-indexing an entity replaces its documents.
    pub entity: EntityRef,
    /// What a result shows as its id: the brief, asset or knowledge chunk.
    pub display_id: String,
    pub title: String,
    /// Text embedded and indexed (the title is part of it).
    pub text: String,
    /// Brief status, for `--status`.
    pub status: Option<String>,
    pub tags: Vec<String>,
    /// The brief it belongs to, for `--brief`.
    pub brief: Option<String>,
}

impl SearchDoc {
    /// Changes when the embedded text changes; titles and filters alone do
    /// not call for new vectors.
    pub fn content_hash(&self) -> u64 {
        stable_hash(self.text.as_bytes())
    }
}

/// The documents an entity yields now (none once it is deleted).
pub fn docs_for_entity(
    replica: &Replica,
    entity: &EntityRef,
) -> Result<Vec<SearchDoc>, StoreError> {
    let Some(record) = replica.record(entity)? else {
        // Thread items can exist without a record (comments only append).
        if entity.kind == EntityKind::Thread {
            return thread_docs(replica, entity);
        }
        return Ok(Vec::new());
    };
    if record.is_deleted() {
        return Ok(Vec::new());
    }
    match entity.kind {
        EntityKind::Brief => {
            let brief = Brief::from_record(&entity.id, &record);
            Ok(vec![brief_doc(&brief)])
        }
        EntityKind::Asset => {
            let items: Vec<_> = replica.items(entity)?.into_iter().map(|(_, i)| i).collect();
            let asset = Asset::from_record(&entity.id, &record, &items);
            let caption = record.string("caption");
            Ok(vec![asset_doc(&asset, caption.as_deref())])
        }
        EntityKind::Knowledge => {
            let items: Vec<_> = replica.items(entity)?.into_iter().map(|(_, i)| i).collect();
            let doc = KnowledgeDoc::from_record(&entity.id, &record, &items);
            Ok(knowledge_docs(&doc))
        }
        EntityKind::Thread => thread_docs(replica, entity),
        _ => Ok(Vec::new()),
    }
}

fn brief_doc(b: &Brief) -> SearchDoc {
    let mut text = b.title.clone();
    for part in [
        &b.objective,
        &b.audience,
        &b.key_message,
        &b.mandatories,
        &b.brand,
        &b.success_metric,
    ]
    .into_iter()
    .flatten()
    {
        text.push('\n');
        text.push_str(part);
    }
    for d in &b.deliverables {
        text.push('\n');
        text.push_str(&d.to_string());
    }
    if !b.tags.is_empty() {
        text.push('\n');
        text.push_str(&b.tags.join(" "));
    }
    SearchDoc {
        doc_id: format!("brief/{}", b.id),
        kind: DocKind::Brief,
        entity: EntityRef::new(EntityKind::Brief, b.id.as_str()),
        display_id: b.id.clone(),
        title: b.title.clone(),
        text,
        status: Some(crate::model::serde_name(b.status)),
        tags: b.tags.clone(),
        brief: Some(b.id.clone()),
    }
}

fn asset_doc(a: &Asset, caption: Option<&str>) -> SearchDoc {
    let mut text = a.title.clone();
    if let Some(c) = caption {
        text.push('\n');
        text.push_str(c);
    }
    for v in &a.versions {
        if let Some(note) = &v.note {
            text.push('\n');
            text.push_str(note);
        }
    }
    if !a.tags.is_empty() {
        text.push('\n');
        text.push_str(&a.tags.join(" ").replace(['-', '_'], " "));
    }
    SearchDoc {
        doc_id: format!("asset/{}", a.id),
        kind: DocKind::Asset,
        entity: EntityRef::new(EntityKind::Asset, a.id.as_str()),
        display_id: a.id.clone(),
        title: a.title.clone(),
        text,
        status: Some(crate::model::serde_name(a.status)),
        tags: a.tags.clone(),
        brief: a.brief.clone(),
    }
}

fn knowledge_docs(doc: &KnowledgeDoc) -> Vec<SearchDoc> {
    doc.chunks
        .iter()
        .map(|c| knowledge_chunk_doc(&doc.id, &doc.title, c))
        .collect()
}

fn knowledge_chunk_doc(id: &str, doc_title: &str, c: &KnowledgeChunk) -> SearchDoc {
    let heading = c.headings.last().cloned();
    let title = match &heading {
        Some(h) => format!("{doc_title} › {h}"),
        None => doc_title.to_owned(),
    };
    // The heading path is part of what a chunk is about.
    let mut text = c.headings.join(" › ");
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(&c.text);
    SearchDoc {
        doc_id: format!("knowledge/{id}#{}", c.n),
        kind: DocKind::Kb,
        entity: EntityRef::new(EntityKind::Knowledge, id),
        display_id: format!("{id}#{}", c.n),
        title,
        text,
        status: None,
        tags: Vec::new(),
        brief: None,
    }
}

/// One chunk of a knowledge document, as [`docs_for_entity`] would give it,
/// read without decoding the document's other chunks. `None` when the
/// document is gone or has no such chunk.
pub fn knowledge_chunk(
    replica: &Replica,
    entity: &EntityRef,
    n: u32,
) -> Result<Option<SearchDoc>, StoreError> {
    #[derive(serde::Deserialize)]
    struct ChunkNumber {
        n: Option<u64>,
    }
    let Some(record) = replica.record(entity)? else {
        return Ok(None);
    };
    if record.is_deleted() {
        return Ok(None);
    }
    let item = replica.first_item_where(entity, |c: &ChunkNumber| c.n == Some(u64::from(n)))?;
    let Some(chunk) = item.and_then(|i| serde_json::from_value::<KnowledgeChunk>(i.value).ok())
    else {
        return Ok(None);
    };
    let title = record.string("title").unwrap_or_default();
    Ok(Some(knowledge_chunk_doc(&entity.id, &title, &chunk)))
}

fn thread_docs(replica: &Replica, entity: &EntityRef) -> Result<Vec<SearchDoc>, StoreError> {
    let brief_id = entity.id.strip_prefix("brief:").map(str::to_owned);
    let brief_title = match &brief_id {
        Some(id) => replica
            .record(&EntityRef::new(EntityKind::Brief, id.as_str()))?
            .and_then(|r| r.string("title")),
        None => None,
    };
    let mut out = Vec::new();
    for (stamp, item) in replica.items(entity)? {
        let Some(msg) = Message::from_item(&item, stamp.hlc.wall_ms) else {
            continue;
        };
        if msg.body.trim().is_empty() {
            continue;
        }
        let (kind, title) = match (&brief_id, &brief_title) {
            (Some(_), Some(t)) => (DocKind::Comment, format!("{} on “{t}”", msg.author)),
            (Some(id), None) => (DocKind::Comment, format!("{} on {id}", msg.author)),
            (None, _) => (DocKind::Chat, format!("{} in {}", msg.author, entity.id)),
        };
        out.push(SearchDoc {
            doc_id: format!("thread/{}#{}", entity.id, stamp.id),
            kind,
            entity: entity.clone(),
            display_id: format!("{}#{}", entity.id, stamp.id),
            title,
            text: msg.body,
            status: None,
            tags: Vec::new(),
            brief: brief_id.clone(),
        });
    }
    Ok(out)
}

/// Every entity the index covers, for a full reconcile.
pub fn all_searchable(replica: &Replica) -> Result<Vec<EntityRef>, StoreError> {
    let mut out = Vec::new();
    for kind in [
        EntityKind::Brief,
        EntityKind::Asset,
        EntityKind::Knowledge,
        EntityKind::Thread,
    ] {
        for (id, _) in replica.records(kind)? {
            out.push(EntityRef::new(kind, id));
        }
    }
    // Threads often have only items (comments, messages) and no record.
    for id in replica.item_entity_ids(EntityKind::Thread)? {
        out.push(EntityRef::new(EntityKind::Thread, id));
    }
    out.sort();
    out.dedup();
    Ok(out)
}
