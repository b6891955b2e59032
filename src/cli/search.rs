//! `spoke search`, `spoke kb ...` and `spoke index ...`.

use super::Ctx;
use super::output::{outln, print_json, print_table};
use crate::model::InputError;
use crate::search::docs::DocKind;
use crate::search::index::{Query, RefreshReport, SearchIndex};
use crate::service::Hub;
use crate::service::knowledge::KbAddOutcome;
use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// What to look for (words or a question)
    #[arg(required = true, num_args = 1..)]
    pub query: Vec<String>,
    /// Only these kinds: brief, comment, chat, asset, kb (repeat or comma-separate)
    #[arg(long, value_delimiter = ',')]
    pub kind: Vec<String>,
    /// Only briefs in this status
    #[arg(long)]
    pub status: Option<String>,
    /// Only documents with this tag
    #[arg(long)]
    pub tag: Option<String>,
    /// Only this brief and what belongs to it (comments, assets)
    #[arg(long)]
    pub brief: Option<String>,
    /// Most results to show
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum KbCommand {
    /// Add Markdown or plain-text documents; each is split into chunks that sync to the team
    Add {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Documents in the knowledge base
    List,
    /// One document and its chunks
    Show { id: String },
    /// Remove a document (everywhere, on the next sync)
    Remove { id: String },
}

#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// The search index: embedder, documents by kind, size, changes waiting
    Status,
    /// Throw the index away and build it again from the replica
    Rebuild,
}

/// Catches the index up, with a progress bar on a terminal when there is
/// real work. A failure is a warning: the index as it was still answers.
fn refresh(ctx: &Ctx, hub: &Hub, index: &mut SearchIndex) -> Option<RefreshReport> {
    let on_terminal = !ctx.json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let bar = indicatif::ProgressBar::hidden();
    let mut progress = |done: usize, total: usize| {
        if on_terminal && total >= 200 && bar.is_hidden() {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_length(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "indexing {bar:30} {pos}/{len} {per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
        }
        bar.set_position(done as u64);
    };
    let outcome = hub.refresh_search(index, &mut progress);
    bar.finish_and_clear();
    match outcome {
        Ok(report) => {
            if let Some(why) = &report.rebuilt_because {
                eprintln!(
                    "spoke: rebuilt the search index ({why}): {} documents",
                    index.len()
                );
            }
            if report.busy {
                eprintln!(
                    "spoke: another spoke process is updating the search index; results may miss the latest changes"
                );
            }
            Some(report)
        }
        Err(e) => {
            eprintln!("spoke: warning: {e:#}; searching the index as it was");
            None
        }
    }
}

pub fn search(ctx: &Ctx, args: SearchArgs) -> Result<()> {
    let hub = ctx.open_hub()?;
    let mut kinds = Vec::new();
    for k in &args.kind {
        kinds.push(DocKind::parse(k).ok_or_else(|| {
            InputError::new(format!(
                "unknown kind `{k}`: use brief, comment, chat, asset or kb"
            ))
        })?);
    }
    let status = match &args.status {
        Some(s) => Some(crate::model::serde_name(crate::model::BriefStatus::parse(
            s,
        )?)),
        None => None,
    };
    let brief = match &args.brief {
        Some(b) => Some(hub.brief(b)?.id),
        None => None,
    };
    let text = args.query.join(" ");
    if text.trim().is_empty() {
        return Err(
            InputError::new("search needs some words: spoke search \"logo clear space\"").into(),
        );
    }
    if args.limit == 0 {
        return Err(InputError::new("--limit must be at least 1").into());
    }
    let mut index = hub.open_search(&ctx.config.search)?;
    refresh(ctx, &hub, &mut index);
    let q = Query {
        text,
        kinds,
        status,
        tag: args.tag.clone(),
        brief,
        limit: args.limit,
        only: None,
    };
    let results = index.search(hub.replica(), &q)?;
    for w in &results.warnings {
        eprintln!("spoke: warning: {w}");
    }
    if ctx.json {
        return print_json(&results.hits);
    }
    if results.hits.is_empty() {
        outln!(
            "No results for \"{}\" ({} documents searched).",
            q.text,
            index.len()
        )?;
        return Ok(());
    }
    for (i, h) in results.hits.iter().enumerate() {
        outln!(
            "{:>2}. [{}] {}  {}  ({:.3})",
            i + 1,
            h.kind,
            h.title,
            h.id,
            h.score
        )?;
        outln!("    {}", h.snippet)?;
    }
    Ok(())
}

pub fn kb(ctx: &Ctx, cmd: KbCommand) -> Result<()> {
    let mut hub = ctx.open_hub()?;
    match cmd {
        KbCommand::Add { files } => {
            let outcomes = hub.add_knowledge(&files)?;
            let failed = outcomes
                .iter()
                .filter(|o| matches!(o, KbAddOutcome::Failed { .. }))
                .count();
            // Index now so the documents are searchable at once; a failing
            // embedder only delays that, the documents are saved.
            let mut indexed = None;
            if failed < outcomes.len() {
                match hub.open_search(&ctx.config.search) {
                    Ok(mut index) => {
                        indexed = refresh(ctx, &hub, &mut index).map(|_| index.counts())
                    }
                    Err(e) => eprintln!("spoke: warning: {e:#}"),
                }
            }
            if ctx.json {
                let searchable = indexed.map(|counts| {
                    counts
                        .iter()
                        .map(|(k, n)| (k.to_string(), json!(n)))
                        .collect::<serde_json::Map<_, _>>()
                });
                print_json(&json!({"files": outcomes, "searchable": searchable}))?;
            } else {
                for o in &outcomes {
                    match o {
                        KbAddOutcome::Added { path, id, chunks } => {
                            outln!("added     {}  {id}  {chunks} chunks", path.display())?
                        }
                        KbAddOutcome::Replaced {
                            path,
                            id,
                            replaced,
                            chunks,
                        } => outln!(
                            "replaced  {}  {id}  {chunks} chunks (was {replaced})",
                            path.display()
                        )?,
                        KbAddOutcome::Unchanged { path, id } => outln!(
                            "unchanged {}  already in the knowledge base as {id}",
                            path.display()
                        )?,
                        KbAddOutcome::Failed { reason, .. } => eprintln!("spoke: {reason}"),
                    }
                }
                if let Some(counts) = &indexed {
                    let kb = counts
                        .iter()
                        .find(|(k, _)| *k == crate::search::docs::DocKind::Kb)
                        .map_or(0, |(_, n)| *n);
                    outln!("{kb} knowledge chunks searchable")?;
                }
            }
            if failed > 0 {
                return Err(InputError::new(format!(
                    "{failed} of {} files could not be added",
                    outcomes.len()
                ))
                .into());
            }
            Ok(())
        }
        KbCommand::List => {
            let docs = hub.knowledge_docs()?;
            if ctx.json {
                let rows: Vec<_> = docs
                    .iter()
                    .map(|d| {
                        json!({"id": d.id, "title": d.title, "format": d.format, "chunks": d.chunks.len(),
                               "size": d.size, "source_sha256": d.source_sha256, "added_by": d.added_by})
                    })
                    .collect();
                return print_json(&rows);
            }
            if docs.is_empty() {
                outln!("The knowledge base is empty. Add guidelines with `spoke kb add FILE...`.")?;
                return Ok(());
            }
            let rows: Vec<Vec<String>> = docs
                .iter()
                .map(|d| {
                    vec![
                        d.id.clone(),
                        d.title.clone(),
                        d.chunks.len().to_string(),
                        d.size.to_string(),
                        d.added_by.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(&["ID", "TITLE", "CHUNKS", "BYTES", "ADDED BY"], &rows)
        }
        KbCommand::Show { id } => {
            let doc = hub.knowledge_doc(&id)?;
            if ctx.json {
                return print_json(&doc);
            }
            outln!(
                "{}  {}  ({} chunks, {} bytes)",
                doc.id,
                doc.title,
                doc.chunks.len(),
                doc.size
            )?;
            for c in &doc.chunks {
                outln!("\n#{} {}", c.n, c.location(&doc.title))?;
                outln!("{}", c.text)?;
            }
            Ok(())
        }
        KbCommand::Remove { id } => {
            let doc = hub.remove_knowledge(&id)?;
            if ctx.json {
                return print_json(&json!({"removed": doc.id, "title": doc.title}));
            }
            outln!("removed {} ({})", doc.id, doc.title)?;
            Ok(())
        }
    }
}

pub fn index(ctx: &Ctx, cmd: IndexCommand) -> Result<()> {
    let hub = ctx.open_hub()?;
    let mut index = hub.open_search(&ctx.config.search)?;
    if let IndexCommand::Rebuild = cmd {
        index.clear("asked for with `spoke index rebuild`");
    }
    let pending = hub.replica().search_feed()?.dirty.len();
    let report = match cmd {
        IndexCommand::Rebuild => Some(
            hub.refresh_search(&mut index, &mut |_, _| {})
                .map_err(|e| anyhow::anyhow!("{e:#}; the previous index files are kept"))?,
        ),
        IndexCommand::Status => None,
    };
    let counts = index.counts();
    if ctx.json {
        let by_kind: serde_json::Map<String, serde_json::Value> = counts
            .iter()
            .map(|(k, n)| (k.to_string(), json!(n)))
            .collect();
        return print_json(&json!({
            "dir": index.dir(),
            "embedder": index.embedder_id(),
            "documents": index.len(),
            "by_kind": by_kind,
            "bytes_on_disk": index.disk_size(),
            "generation": index.generation(),
            "changes_waiting": if report.is_some() { 0 } else { pending },
            "rebuilt": report,
        }));
    }
    if let Some(r) = &report {
        outln!("rebuilt: {} documents embedded", r.embedded)?;
    }
    outln!("index      {}", index.dir().display())?;
    outln!("embedder   {}", index.embedder_id())?;
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    outln!("documents  {} ({})", index.len(), parts.join(", "))?;
    outln!("on disk    {} KiB", index.disk_size().div_ceil(1024))?;
    if report.is_none() {
        outln!("waiting    {pending} changed entities (indexed on the next search)")?;
        if let Some(why) = index.pending_rebuild() {
            outln!(
                "rebuild    pending: {why} (runs on the next search, or `spoke index rebuild`)"
            )?;
        }
    }
    Ok(())
}
