//! `spoke asset ...` and `spoke brand ...`.

use super::Ctx;
use super::output::{outln, print_json, print_table};
use crate::model::asset::Asset;
use crate::service::assets::{ImportEvent, ImportOptions, RenditionOptions};
use anyhow::Result;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum AssetCommand {
    /// Import files and folders (recursively); prints a summary
    Import {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Link the assets to a brief
        #[arg(long)]
        brief: Option<String>,
        /// Add every file as a new version of this asset
        #[arg(long)]
        version_of: Option<String>,
    },
    /// The library, newest first (by when each asset was created)
    List,
    /// One asset with its versions, tags and palette
    Show { id: String },
    /// Add or remove tags: +hero -draft
    Tag {
        id: String,
        #[arg(required = true, allow_hyphen_values = true)]
        edits: Vec<String>,
    },
    /// Describe what the image shows (search finds assets by their caption)
    Caption {
        id: String,
        /// The caption; empty clears it
        text: String,
    },
    /// Render the latest version for channel presets and record the results
    Renditions {
        id: String,
        /// A preset name (repeat for several) or `all`
        #[arg(long, required = true)]
        preset: Vec<String>,
        /// Folder to write the files to
        #[arg(long)]
        out: PathBuf,
        /// Where the subject is, as x,y from 0 to 1 (default: found from the detail)
        #[arg(long)]
        focal: Option<String>,
        /// Refuse presets that would enlarge the master more than 1.25x
        /// (they are listed; the others are still rendered)
        #[arg(long)]
        no_upscale: bool,
    },
    /// List the rendition presets, or replace this hub's overrides from a TOML file
    Presets {
        #[arg(long, value_name = "FILE")]
        set: Option<PathBuf>,
    },
    /// Open the latest version (or a rendition) in your viewer: the
    /// `opener` setting, else xdg-open / open. The viewer gets a copy in the
    /// cache, never the store's own file.
    Open {
        id: String,
        /// A rendition preset name (see `spoke asset show ID`)
        #[arg(long, value_name = "NAME")]
        rendition: Option<String>,
    },
    /// Write the latest version's bytes (or a rendition's) to PATH
    Save {
        id: String,
        /// A file, or a folder to save into under the asset's file name
        path: PathBuf,
        /// A rendition preset name (see `spoke asset show ID`)
        #[arg(long, value_name = "NAME")]
        rendition: Option<String>,
        /// Overwrite PATH if it exists
        #[arg(long)]
        force: bool,
    },
    /// Groups of images that look alike
    Dupes {
        /// Most bits of 64 that may differ
        #[arg(long, default_value_t = crate::assets::dupes::DEFAULT_THRESHOLD)]
        threshold: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum BrandCommand {
    /// Set the brand colours; every image is scored against them
    SetPalette {
        #[arg(required = true)]
        colours: Vec<String>,
    },
    /// Show the brand colours
    Show,
}

pub fn run(ctx: &Ctx, cmd: AssetCommand) -> Result<()> {
    let mut hub = ctx.open_hub()?;
    match cmd {
        AssetCommand::Import {
            paths,
            brief,
            version_of,
        } => {
            let show_bar = !ctx.json && std::io::IsTerminal::is_terminal(&std::io::stderr());
            let bar = indicatif::ProgressBar::hidden();
            if show_bar {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                if let Ok(style) =
                    indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}")
                {
                    bar.set_style(style);
                }
            }
            let report = hub.import_assets(
                &paths,
                &ImportOptions { brief, version_of },
                |event| match event {
                    ImportEvent::Found(n) => bar.set_length(n as u64),
                    ImportEvent::Done(path) => {
                        bar.set_message(path.display().to_string());
                        bar.inc(1);
                    }
                },
            )?;
            bar.finish_and_clear();
            if ctx.json {
                print_json(&report)?;
            } else {
                outln!(
                    "imported {}, new versions {}, duplicates skipped {}, failed {}",
                    report.imported.len(),
                    report.new_versions.len(),
                    report.duplicates.len(),
                    report.failed.len()
                )?;
                for (path, why) in &report.duplicates {
                    outln!("  skipped {}: {why}", path.display())?;
                }
                for (path, why) in &report.failed {
                    outln!("  failed  {}: {why}", path.display())?;
                }
                for (path, note) in &report.notes {
                    outln!("  note    {}: {note}", path.display())?;
                }
            }
            if report.failed.is_empty() {
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "{} file(s) could not be imported",
                    report.failed.len()
                ))
            }
        }
        AssetCommand::List => {
            let assets = hub.assets_newest_first()?;
            if ctx.json {
                return print_json(&assets.iter().map(asset_json).collect::<Vec<_>>());
            }
            let rows: Vec<Vec<String>> = assets
                .iter()
                .map(|a| {
                    let v = a.latest();
                    vec![
                        a.id.clone(),
                        format!("{:?}", a.status).to_lowercase(),
                        v.map(|v| match (v.width, v.height) {
                            (Some(w), Some(h)) => format!("{w}x{h}"),
                            _ => v.mime.clone(),
                        })
                        .unwrap_or_default(),
                        a.versions.len().to_string(),
                        a.palette.join(" "),
                        a.title.clone(),
                    ]
                })
                .collect();
            print_table(&["ID", "STATUS", "SIZE", "VERS", "PALETTE", "TITLE"], &rows)?;
            if assets.is_empty() {
                outln!("(no assets; import some with `spoke asset import PATH`)")?;
            }
            Ok(())
        }
        AssetCommand::Show { id } => {
            let a = hub.asset(&id)?;
            if ctx.json {
                return print_json(&asset_json(&a));
            }
            outln!("{}  {}", a.id, a.title)?;
            outln!(
                "status     {:?}{}",
                a.status,
                if a.is_ai_draft() { "  (AI draft)" } else { "" }
            )?;
            outln!("tags       {}", a.tags.join(", "))?;
            outln!("palette    {}", a.palette.join(" "))?;
            outln!(
                "phash      {}",
                a.phash.clone().unwrap_or_else(|| "-".into())
            )?;
            for (i, v) in a.versions.iter().enumerate() {
                let dims = match (v.width, v.height) {
                    (Some(w), Some(h)) => format!(" {w}x{h}"),
                    _ => String::new(),
                };
                outln!(
                    "v{}         {} {} bytes{dims} by @{} sha256 {}",
                    i + 1,
                    v.mime,
                    v.size,
                    v.author,
                    &v.blob_sha256
                )?;
            }
            Ok(())
        }
        AssetCommand::Tag { id, edits } => {
            let a = hub.tag_asset(&id, &edits)?;
            if ctx.json {
                print_json(&asset_json(&a))
            } else {
                outln!("{} tags: {}", a.id, a.tags.join(", "))?;
                Ok(())
            }
        }
        AssetCommand::Caption { id, text } => {
            let a = hub.caption_asset(&id, &text)?;
            if ctx.json {
                print_json(&asset_json(&a))
            } else {
                outln!("{} caption: {}", a.id, text.trim())?;
                Ok(())
            }
        }
        AssetCommand::Renditions {
            id,
            preset,
            out,
            focal,
            no_upscale,
        } => {
            let focal = match focal {
                Some(f) => {
                    let parsed = f
                        .split_once(',')
                        .and_then(|(x, y)| {
                            Some((x.trim().parse::<f32>().ok()?, y.trim().parse::<f32>().ok()?))
                        })
                        .filter(|(x, y)| (0.0..=1.0).contains(x) && (0.0..=1.0).contains(y));
                    Some(parsed.ok_or_else(|| {
                        crate::model::input::InputError::new(format!(
                            "bad --focal `{f}`: use x,y between 0 and 1, e.g. 0.3,0.4"
                        ))
                    })?)
                }
                None => None,
            };
            let report =
                hub.render_renditions(&id, &preset, &out, &RenditionOptions { focal, no_upscale })?;
            if ctx.json {
                print_json(&report)?;
            } else {
                for r in &report.written {
                    outln!(
                        "{:<20} {}x{}  {:>8} bytes  {}",
                        r.preset,
                        r.width,
                        r.height,
                        r.bytes,
                        r.path.display()
                    )?;
                }
                for u in &report.upscaled {
                    outln!("warning: {u}")?;
                }
                for u in &report.refused {
                    outln!("refused: {u} (--no-upscale)")?;
                }
            }
            if report.refused.is_empty() {
                Ok(())
            } else {
                Err(crate::model::input::InputError::new(format!(
                    "{} preset(s) not rendered: they would enlarge the master",
                    report.refused.len()
                ))
                .into())
            }
        }
        AssetCommand::Presets { set } => {
            if let Some(file) = set {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
                let n = hub.set_rendition_presets(&text)?;
                outln!("{n} preset override(s) saved for this hub")?;
            }
            let presets = hub.rendition_presets()?;
            let rows: Vec<Vec<String>> = presets
                .iter()
                .map(|p| {
                    vec![
                        p.name.clone(),
                        format!("{}x{}", p.width, p.height),
                        format!("{:?}", p.mode).to_lowercase(),
                        p.format.extension().to_owned(),
                        p.max_kb.map(|k| format!("<= {k} KB")).unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(&["PRESET", "SIZE", "MODE", "FORMAT", "BUDGET"], &rows)
        }
        AssetCommand::Open { id, rendition } => {
            use crate::service::assets::{Opened, asset_blob, cache_copy, open_file, over_ssh};
            let file = hub.asset_file(&id, rendition.as_deref())?;
            let blob = asset_blob(&ctx.home, hub.meta(), &file)?;
            let copy = cache_copy(&blob, &file)?;
            let opened = open_file(&copy, ctx.config.opener.as_deref(), over_ssh())?;
            let (message, command) = match opened {
                Opened::Saved { why } => (why, None),
                Opened::Started { command, .. } => (
                    format!("opened {} with {command}: {}", file.asset, copy.display()),
                    Some(command),
                ),
            };
            if ctx.json {
                print_json(&serde_json::json!({
                    "asset": file.asset,
                    "rendition": file.rendition,
                    "path": copy,
                    "opener": command,
                }))
            } else {
                outln!("{message}")?;
                Ok(())
            }
        }
        AssetCommand::Save {
            id,
            path,
            rendition,
            force,
        } => {
            let file = hub.asset_file(&id, rendition.as_deref())?;
            let blob = crate::service::assets::asset_blob(&ctx.home, hub.meta(), &file)?;
            let written = crate::service::assets::save_copy(&blob, &path, &file.file_name, force)?;
            if ctx.json {
                print_json(&serde_json::json!({
                    "asset": file.asset,
                    "rendition": file.rendition,
                    "path": written,
                    "sha256": file.sha256,
                }))
            } else {
                outln!("saved {} to {}", file.asset, written.display())?;
                Ok(())
            }
        }
        AssetCommand::Dupes { threshold } => {
            let groups = hub.asset_dupes(threshold)?;
            if ctx.json {
                let out: Vec<Vec<serde_json::Value>> = groups
                    .iter()
                    .map(|g| g.iter().map(asset_json).collect())
                    .collect();
                return print_json(&out);
            }
            for (i, g) in groups.iter().enumerate() {
                outln!("group {}:", i + 1)?;
                for a in g {
                    outln!("  {}  {}", a.id, a.title)?;
                }
            }
            if groups.is_empty() {
                outln!("no near duplicates")?;
            }
            Ok(())
        }
    }
}

pub fn brand(ctx: &Ctx, cmd: BrandCommand) -> Result<()> {
    let mut hub = ctx.open_hub()?;
    match cmd {
        BrandCommand::SetPalette { colours } => {
            let rescored = hub.set_brand_palette(&colours)?;
            outln!("brand palette set; {rescored} image(s) re-scored")?;
            Ok(())
        }
        BrandCommand::Show => {
            let palette = hub.brand_palette()?;
            if ctx.json {
                print_json(&palette)
            } else {
                outln!(
                    "{}",
                    if palette.is_empty() {
                        "(no brand colours)".into()
                    } else {
                        palette.join(" ")
                    }
                )?;
                Ok(())
            }
        }
    }
}

fn asset_json(a: &Asset) -> serde_json::Value {
    let mut v = serde_json::to_value(a).unwrap_or_default();
    v["ai_draft"] = a.is_ai_draft().into();
    v
}

/// `spoke preview FILE|ASSET`: one image printed to the terminal.
pub fn preview(ctx: &Ctx, target: &str, width: Option<u32>) -> Result<()> {
    let path = std::path::Path::new(target);
    let (bytes, label) = if path.exists() {
        (
            std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?,
            path.display().to_string(),
        )
    } else {
        let hub = ctx.open_hub()?;
        let asset = hub.asset(target)?;
        let Some(version) = asset.latest() else {
            return Err(crate::model::input::InputError::new(format!(
                "asset {} has no versions",
                asset.id
            ))
            .into());
        };
        let local = fetch_blob(ctx, &hub, &version.blob_sha256)?;
        (
            std::fs::read(&local)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", local.display()))?,
            format!("{} ({})", asset.title, asset.id),
        )
    };
    // Enough pixels for the widest terminal picture, not the whole master.
    let image = crate::assets::analyze::preview_image(&bytes, 1024, &label)
        .map_err(|e| crate::model::input::InputError::new(e.0))?;
    let config = viuer::Config {
        width: Some(width.unwrap_or(60)),
        absolute_offset: false,
        ..Default::default()
    };
    viuer::print(&image, &config).map_err(|e| anyhow::anyhow!("cannot print {label}: {e}"))?;
    Ok(())
}

/// The local path of a blob, downloading it from the hub if needed.
pub fn fetch_blob(ctx: &Ctx, hub: &crate::service::Hub, sha: &str) -> Result<PathBuf> {
    crate::sync::blobs::fetch_blocking(&ctx.home, hub.meta(), sha)
}
