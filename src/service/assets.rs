//! Asset reads for the screens that show them (the asset library's import
//! and renditions build on this).

use super::Hub;
use crate::model::asset::Asset;
use crate::model::{EntityKind, EntityRef};
use anyhow::Result;

impl Hub {
    /// Every proposal, for the screens that show them.
    pub fn proposals(&self) -> Result<Vec<crate::model::proposal::Proposal>> {
        Ok(self
            .replica
            .records(EntityKind::Proposal)?
            .iter()
            .map(|(id, rec)| crate::model::proposal::Proposal::from_record(id, rec))
            .filter(|p| !p.deleted)
            .collect())
    }

    /// Every asset with its versions, without deleted ones, in id order.
    pub fn assets(&self) -> Result<Vec<Asset>> {
        Ok(self
            .assets_with_creation()?
            .into_iter()
            .map(|(a, _)| a)
            .collect())
    }

    /// Every asset, newest first by when it was created (its first write),
    /// as `asset list` shows them; ids break ties.
    pub fn assets_newest_first(&self) -> Result<Vec<Asset>> {
        let mut assets = self.assets_with_creation()?;
        assets.sort_by(|(a, at), (b, bt)| bt.cmp(at).then_with(|| a.id.cmp(&b.id)));
        Ok(assets.into_iter().map(|(a, _)| a).collect())
    }

    fn assets_with_creation(&self) -> Result<Vec<(Asset, Option<crate::model::Stamp>)>> {
        let mut out = Vec::new();
        for (id, rec) in self.replica.records(EntityKind::Asset)? {
            let items: Vec<_> = self
                .replica
                .items(&EntityRef::new(EntityKind::Asset, id.clone()))?
                .into_iter()
                .map(|(_, item)| item)
                .collect();
            let asset = Asset::from_record(&id, &rec, &items);
            if !asset.deleted {
                out.push((asset, rec.first_stamp()));
            }
        }
        Ok(out)
    }
}

use crate::assets::analyze::palette_distance;
use crate::assets::import::{Prepared, collect_files, prepare_all};
use crate::assets::renditions::{Master, Upscale, render_all, upscales};
use crate::model::Change;
use crate::model::asset::AssetStatus;
use crate::model::brief::normalize_tag;
use crate::model::ids::new_entity_id;
use crate::model::input::InputError;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Mean CIEDE2000 distance past which an asset is tagged `off-palette`.
pub const OFF_PALETTE_THRESHOLD: f32 = 20.0;

/// How an import should treat its files.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub brief: Option<String>,
    /// Add every file as a new version of this asset.
    pub version_of: Option<String>,
}

/// What happened to each file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub imported: Vec<String>,
    pub new_versions: Vec<String>,
    pub duplicates: Vec<(PathBuf, String)>,
    pub failed: Vec<(PathBuf, String)>,
    /// Imported files with something worth knowing (an SVG's text not drawn,
    /// an image too flat to hash).
    pub notes: Vec<(PathBuf, String)>,
}

/// Progress for a bar or a log.
#[derive(Debug, Clone)]
pub enum ImportEvent {
    Found(usize),
    Done(PathBuf),
}

impl Hub {
    /// Imports files and folders: each file becomes a new asset, a new
    /// version of the asset with the same file name (or `version_of`), or
    /// is skipped when its bytes are already in the library. Files are read
    /// and analysed on two threads sharing one decoding budget; each is
    /// recorded in its own commit, so a failure never leaves half an asset
    /// behind.
    pub fn import_assets(
        &mut self,
        paths: &[PathBuf],
        opts: &ImportOptions,
        mut progress: impl FnMut(ImportEvent),
    ) -> Result<ImportReport> {
        let home = self.home();
        let brief = match &opts.brief {
            Some(b) => Some(self.brief(b)?.id),
            None => None,
        };
        let version_of = match &opts.version_of {
            Some(a) => Some(self.resolve_id(EntityKind::Asset, a, "a")?),
            None => None,
        };
        let mut by_sha: HashMap<String, String> = HashMap::new();
        let mut by_name: HashMap<String, String> = HashMap::new();
        for asset in self.assets()? {
            for v in &asset.versions {
                by_sha.insert(v.blob_sha256.clone(), asset.id.clone());
            }
            if let Some(name) = self
                .replica
                .record(&EntityRef::new(EntityKind::Asset, asset.id.clone()))?
                .and_then(|r| r.string("source_name"))
            {
                by_name.insert(name, asset.id.clone());
            }
        }
        let brand = self.brand_palette()?;
        let (files, mut failed) = collect_files(paths);
        progress(ImportEvent::Found(files.len()));
        let mut report = ImportReport::default();
        let budget = std::sync::Arc::new(crate::assets::budget::MemoryBudget::default());
        for (path, result) in prepare_all(files, 2, budget) {
            match result {
                Err(why) => failed.push((path.clone(), why.0)),
                Ok((prepared, bytes)) => {
                    if let Some(existing) = by_sha.get(&prepared.sha256) {
                        report
                            .duplicates
                            .push((path.clone(), format!("same bytes as asset {existing}")));
                    } else {
                        let name = source_name(&prepared.path);
                        let target = version_of.clone().or_else(|| by_name.get(&name).cloned());
                        match self.record_import(
                            &home,
                            &prepared,
                            &bytes,
                            target.as_deref(),
                            brief.as_deref(),
                            &brand,
                        ) {
                            Ok(id) => {
                                for note in &prepared.analysis.notes {
                                    report.notes.push((path.clone(), note.clone()));
                                }
                                by_sha.insert(prepared.sha256.clone(), id.clone());
                                by_name.entry(name).or_insert_with(|| id.clone());
                                if target.is_some() {
                                    report.new_versions.push(id);
                                } else {
                                    report.imported.push(id);
                                }
                            }
                            Err(e) => failed.push((path.clone(), format!("{e:#}"))),
                        }
                    }
                }
            }
            progress(ImportEvent::Done(path));
        }
        report.failed = failed;
        Ok(report)
    }

    fn record_import(
        &mut self,
        home: &Path,
        p: &Prepared,
        bytes: &[u8],
        existing: Option<&str>,
        brief: Option<&str>,
        brand: &[String],
    ) -> Result<String> {
        crate::sync::blobs::store_bytes(home, &p.sha256, bytes)?;
        let id = existing
            .map(str::to_owned)
            .unwrap_or_else(|| new_entity_id("a"));
        let entity = EntityRef::new(EntityKind::Asset, id.clone());
        let a = &p.analysis;
        let mut fields: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        if existing.is_none() {
            fields.insert("title".into(), json!(title_from(&p.path)));
            fields.insert("source_name".into(), json!(source_name(&p.path)));
            fields.insert("created_by".into(), json!(self.actor()?));
        }
        fields.insert("kind".into(), json!(a.kind));
        fields.insert("status".into(), json!(AssetStatus::Wip));
        fields.insert("palette".into(), json!(a.palette));
        fields.insert("phash".into(), json!(a.phash));
        if let Some(b) = brief {
            fields.insert("brief".into(), json!(b));
        }
        let mut tags = a.tags.clone();
        if let Some(score) = palette_score(&a.palette, brand) {
            fields.insert("palette_distance".into(), json!(score));
            if score > OFF_PALETTE_THRESHOLD {
                tags.push("off-palette".into());
            }
        }
        for t in tags {
            fields.insert(format!("tags:{t}"), json!(true));
        }
        let version = json!({
            "blob_sha256": p.sha256,
            "size": p.size,
            "mime": a.mime,
            "width": a.width,
            "height": a.height,
            "note": p.path.file_name().and_then(|n| n.to_str()),
            "provenance": {"by": "human"},
        });
        self.commit(vec![
            (entity.clone(), Change::Set(fields)),
            (entity, Change::Append(version)),
        ])?;
        Ok(id)
    }

    /// Adds and removes manual tags: `+hero -draft`.
    pub fn tag_asset(&mut self, typed_id: &str, edits: &[String]) -> Result<Asset> {
        let id = self.resolve_id(EntityKind::Asset, typed_id, "a")?;
        let mut fields = BTreeMap::new();
        for e in edits {
            let (add, tag) = match e.strip_prefix('-') {
                Some(t) => (false, t),
                None => (true, e.trim_start_matches('+')),
            };
            fields.insert(format!("tags:{}", normalize_tag(tag)?), json!(add));
        }
        if fields.is_empty() {
            return Err(InputError::new("give tags to change: +hero -draft").into());
        }
        self.commit(vec![(
            EntityRef::new(EntityKind::Asset, id.clone()),
            Change::Set(fields),
        )])?;
        self.asset(&id)
    }

    /// Sets what the image shows, in words: search finds assets by it.
    pub fn caption_asset(&mut self, typed_id: &str, caption: &str) -> Result<Asset> {
        let id = self.resolve_id(EntityKind::Asset, typed_id, "a")?;
        let caption = caption.trim();
        let value = if caption.is_empty() {
            Value::Null
        } else {
            json!(caption)
        };
        self.commit(vec![(
            EntityRef::new(EntityKind::Asset, id.clone()),
            Change::Set(BTreeMap::from([("caption".to_owned(), value)])),
        )])?;
        self.asset(&id)
    }

    pub fn asset(&self, typed_id: &str) -> Result<Asset> {
        let id = self.resolve_id(EntityKind::Asset, typed_id, "a")?;
        self.assets()?
            .into_iter()
            .find(|a| a.id == id)
            .ok_or_else(|| InputError::new(format!("asset {id} was deleted")).into())
    }

    /// The hub's brand colours (`#rrggbb`).
    pub fn brand_palette(&self) -> Result<Vec<String>> {
        let hub = EntityRef::new(EntityKind::Hub, self.hub_id().to_owned());
        Ok(self
            .replica
            .record(&hub)?
            .and_then(|r| r.get_as::<Vec<String>>("brand_palette"))
            .unwrap_or_default())
    }

    /// Sets the brand colours and re-scores every image against them.
    pub fn set_brand_palette(&mut self, colours: &[String]) -> Result<usize> {
        let mut clean = Vec::new();
        for c in colours {
            let hexed = format!("#{}", c.trim().trim_start_matches('#').to_ascii_lowercase());
            if crate::assets::analyze::parse_hex(&hexed).is_none() {
                return Err(InputError::new(format!(
                    "`{c}` is not a colour: use #rrggbb, e.g. #0a84ff"
                ))
                .into());
            }
            clean.push(hexed);
        }
        let mut changes = vec![(
            EntityRef::new(EntityKind::Hub, self.hub_id().to_owned()),
            Change::Set(BTreeMap::from([("brand_palette".to_owned(), json!(clean))])),
        )];
        let mut rescored = 0;
        for asset in self.assets()? {
            let Some(score) = palette_score(&asset.palette, &clean) else {
                continue;
            };
            rescored += 1;
            changes.push((
                EntityRef::new(EntityKind::Asset, asset.id.clone()),
                Change::Set(BTreeMap::from([
                    ("palette_distance".to_owned(), json!(score)),
                    (
                        "tags:off-palette".to_owned(),
                        json!(score > OFF_PALETTE_THRESHOLD),
                    ),
                ])),
            ));
        }
        self.commit(changes)?;
        Ok(rescored)
    }

    /// Groups of images that look alike (perceptual hashes within `threshold` bits).
    pub fn asset_dupes(&self, threshold: u32) -> Result<Vec<Vec<Asset>>> {
        let assets = self.assets()?;
        let hashes: Vec<Option<String>> = assets.iter().map(|a| a.phash.clone()).collect();
        // The perceptual hash sees structure, not colour: a flat red and a
        // flat blue image hash alike. Near duplicates also share their
        // dominant colour.
        let alike =
            |i: usize, j: usize| match (assets[i].palette.first(), assets[j].palette.first()) {
                (Some(a), Some(b)) => {
                    palette_distance(a, std::slice::from_ref(b)).is_some_and(|d| d < 15.0)
                }
                _ => true,
            };
        Ok(crate::assets::dupes::group_where(&hashes, threshold, alike)
            .into_iter()
            .map(|g| g.into_iter().map(|i| assets[i].clone()).collect())
            .collect())
    }
}

/// Mean distance from each dominant colour to the nearest brand colour.
pub(crate) fn palette_score(palette: &[String], brand: &[String]) -> Option<f32> {
    if brand.is_empty() || palette.is_empty() {
        return None;
    }
    let d: Vec<f32> = palette
        .iter()
        .filter_map(|c| palette_distance(c, brand))
        .collect();
    (!d.is_empty()).then(|| d.iter().sum::<f32>() / d.len() as f32)
}

/// The name that makes a later file a new version: the file name, lowercased.
fn source_name(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
        .to_lowercase()
}

/// `spring_hero-v2.png` -> `spring hero v2`.
pub(crate) fn title_from(path: &Path) -> String {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("untitled");
    stem.replace(['_', '-'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// How to render.
#[derive(Debug, Clone, Default)]
pub struct RenditionOptions {
    /// Where the subject is, 0..1 in each axis; found from the detail if none.
    pub focal: Option<(f32, f32)>,
    /// Leave out presets that would enlarge the master past the threshold.
    pub no_upscale: bool,
}

/// What a rendition run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RenditionsReport {
    pub written: Vec<RenditionOut>,
    /// Presets rendered although they enlarge the master.
    pub upscaled: Vec<Upscale>,
    /// Presets left out because they would enlarge it (`no_upscale`).
    pub refused: Vec<Upscale>,
}

/// One rendition written.
#[derive(Debug, Clone, Serialize)]
pub struct RenditionOut {
    pub preset: String,
    pub path: PathBuf,
    pub sha256: String,
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
}

impl Hub {
    /// The shipped presets with this hub's overrides and additions.
    pub fn rendition_presets(&self) -> Result<Vec<crate::assets::renditions::Preset>> {
        let mut presets = crate::assets::renditions::shipped_presets();
        let hub = EntityRef::new(EntityKind::Hub, self.hub_id().to_owned());
        if let Some(text) = self
            .replica
            .record(&hub)?
            .and_then(|r| r.string("rendition_presets"))
        {
            for p in crate::assets::renditions::parse_presets(&text).map_err(InputError::new)? {
                presets.retain(|q| q.name != p.name);
                presets.push(p);
            }
        }
        presets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(presets)
    }

    /// Stores this hub's preset overrides (TOML, same form as the shipped file).
    pub fn set_rendition_presets(&mut self, toml_text: &str) -> Result<usize> {
        let parsed = crate::assets::renditions::parse_presets(toml_text)
            .map_err(|e| InputError::new(format!("bad presets: {e}")))?;
        self.commit(vec![(
            EntityRef::new(EntityKind::Hub, self.hub_id().to_owned()),
            Change::Set(BTreeMap::from([(
                "rendition_presets".to_owned(),
                json!(toml_text),
            )])),
        )])?;
        Ok(parsed.len())
    }

    /// Renders the latest version of an asset for `presets` (names, or `all`)
    /// into `out`, stores each file as a blob and records it as a rendition.
    /// A preset that enlarges the master past the threshold is reported, or
    /// left out when `opts.no_upscale` is set.
    pub fn render_renditions(
        &mut self,
        typed_id: &str,
        presets: &[String],
        out: &Path,
        opts: &RenditionOptions,
    ) -> Result<RenditionsReport> {
        let asset = self.asset(typed_id)?;
        let version = asset
            .latest()
            .ok_or_else(|| InputError::new(format!("asset {} has no versions", asset.id)))?;
        if !version.mime.starts_with("image/") {
            return Err(InputError::new(format!(
                "asset {} is {}, not an image",
                asset.id, version.mime
            ))
            .into());
        }
        let home = self.home();
        let blob = crate::sync::blobs::local_blob_path(&home, &version.blob_sha256);
        let bytes = std::fs::read(&blob).map_err(|_| {
            anyhow::anyhow!("the bytes of asset {} are not on this machine yet: run `spoke sync` or `spoke preview {}`", asset.id, asset.id)
        })?;
        let label = format!("asset {} ({})", asset.id, asset.title);
        let master = if version.mime == "image/svg+xml" {
            Master::Svg { bytes: &bytes }
        } else {
            let format = image::guess_format(&bytes)
                .map_err(|_| InputError::new(format!("{label} is not an image Spoke can read")))?;
            Master::Raster {
                bytes: &bytes,
                format,
            }
        };
        let all = self.rendition_presets()?;
        let chosen: Vec<_> = if presets.iter().any(|p| p == "all") {
            all.clone()
        } else {
            presets
                .iter()
                .map(|name| {
                    all.iter()
                        .find(|p| p.name == *name)
                        .cloned()
                        .ok_or_else(|| {
                            InputError::new(format!(
                                "no preset `{name}`: use one of {} or all",
                                all.iter()
                                    .map(|p| p.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ))
                        })
                })
                .collect::<Result<_, _>>()?
        };
        let mut report = RenditionsReport::default();
        // A vector master is drawn at whatever size a preset needs.
        if let Master::Raster { bytes, format } = master {
            let header = crate::assets::decode::read_header(bytes, format, &label)
                .map_err(InputError::new)?;
            report.upscaled = upscales(&chosen, (header.width, header.height));
        }
        let chosen: Vec<_> = if opts.no_upscale {
            let refused: Vec<&str> = report.upscaled.iter().map(|u| u.preset.as_str()).collect();
            chosen
                .into_iter()
                .filter(|p| !refused.contains(&p.name.as_str()))
                .collect()
        } else {
            chosen
        };
        let pad = self
            .brand_palette()?
            .first()
            .and_then(|c| u32::from_str_radix(c.trim_start_matches('#'), 16).ok())
            .map(|v| [(v >> 16) as u8, (v >> 8) as u8, v as u8])
            .unwrap_or([255, 255, 255]);
        std::fs::create_dir_all(out)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
        let slug: String = asset
            .title
            .chars()
            .map(|c| {
                if c.is_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let mut fields = BTreeMap::new();
        let rendered = render_all(
            master,
            &chosen,
            opts.focal,
            pad,
            crate::assets::analyze::shared_budget(),
            &label,
        )
        .map_err(InputError::new)?;
        for (preset, encoded) in chosen.iter().zip(rendered) {
            let encoded = encoded.map_err(|e| anyhow::anyhow!("preset {}: {e}", preset.name))?;
            let sha = crate::model::ids::hex(&<sha2::Sha256 as sha2::Digest>::digest(&encoded));
            let path = out.join(format!(
                "{slug}-{}.{}",
                preset.name,
                preset.format.extension()
            ));
            std::fs::write(&path, &encoded)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            crate::sync::blobs::store_bytes(&home, &sha, &encoded)?;
            fields.insert(format!("renditions:{}", preset.name), json!(sha));
            report.written.push(RenditionOut {
                preset: preset.name.clone(),
                path,
                sha256: sha,
                bytes: encoded.len() as u64,
                width: preset.width,
                height: preset.height,
            });
        }
        if !fields.is_empty() {
            self.commit(vec![(
                EntityRef::new(EntityKind::Asset, asset.id.clone()),
                Change::Set(fields),
            )])?;
        }
        if opts.no_upscale {
            report.refused = std::mem::take(&mut report.upscaled);
        }
        Ok(report)
    }
}

// Files out of the store: an asset's bytes opened in a viewer or saved
// under a path. The store's own blob file is never handed to anyone: a
// viewer gets a copy in the cache, with the extension it needs.

/// One file of an asset (its latest version, or a rendition), as it would
/// be named outside the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetFile {
    pub asset: String,
    pub rendition: Option<String>,
    pub sha256: String,
    /// A file name with the right extension, e.g. `spring_hero.png`.
    pub file_name: String,
}

/// What became of a request to open a file.
#[derive(Debug)]
pub enum Opened {
    /// The viewer was started, detached; the caller may wait on it.
    Started {
        command: String,
        child: std::process::Child,
    },
    /// No viewer was started (over SSH with no `opener` set): why.
    Saved { why: String },
}

impl Hub {
    /// Which blob an asset's latest version (or its rendition `rendition`)
    /// is, with a file name that has the right extension.
    pub fn asset_file(&self, typed_id: &str, rendition: Option<&str>) -> Result<AssetFile> {
        let asset = self.asset(typed_id)?;
        let version = asset
            .latest()
            .ok_or_else(|| InputError::new(format!("asset {} has no versions", asset.id)))?;
        let original = version
            .note
            .as_deref()
            .map(Path::new)
            .filter(|p| p.extension().is_some())
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .map(safe_file_name)
            .unwrap_or_else(|| {
                format!(
                    "{}.{}",
                    safe_file_name(&asset.title),
                    extension_for_mime(&version.mime)
                )
            });
        let Some(name) = rendition else {
            return Ok(AssetFile {
                asset: asset.id.clone(),
                rendition: None,
                sha256: version.blob_sha256.clone(),
                file_name: original,
            });
        };
        let Some((_, sha)) = asset.renditions.iter().find(|(n, _)| n == name) else {
            let have: Vec<&str> = asset.renditions.iter().map(|(n, _)| n.as_str()).collect();
            let listed = if have.is_empty() {
                format!(
                    "it has none yet: make them with `spoke asset renditions {} --preset NAME --out DIR`",
                    asset.id
                )
            } else {
                format!("it has {}", have.join(", "))
            };
            return Err(InputError::new(format!(
                "asset {} has no rendition `{name}`: {listed}",
                asset.id
            ))
            .into());
        };
        let extension = self
            .rendition_presets()?
            .into_iter()
            .find(|p| p.name == name)
            .map(|p| p.format.extension().to_owned())
            .unwrap_or_else(|| "bin".to_owned());
        let stem = Path::new(&original)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("asset")
            .to_owned();
        Ok(AssetFile {
            asset: asset.id.clone(),
            rendition: Some(name.to_owned()),
            sha256: sha.clone(),
            file_name: safe_file_name(&format!("{stem}-{name}.{extension}")),
        })
    }
}

/// The local path of an asset file's blob, fetched from the hub first when
/// it is not on this machine yet (as previews do).
pub fn asset_blob(
    home: &Path,
    meta: &crate::store::ReplicaMeta,
    file: &AssetFile,
) -> Result<PathBuf> {
    let local = crate::sync::blobs::local_blob_path(home, &file.sha256);
    if local.exists() {
        return Ok(local);
    }
    if meta.hub_url.is_none() {
        return Err(InputError::new(format!(
            "the bytes of asset {} are not on this machine and this replica has not joined a hub",
            file.asset
        ))
        .into());
    }
    crate::sync::blobs::fetch_blocking(home, meta, &file.sha256).map_err(|e| {
        anyhow::anyhow!(
            "the bytes of asset {} are not on this machine yet, and fetching them from the hub failed (offline?): {e:#}",
            file.asset
        )
    })
}

/// Copies `blob` into the cache (`CACHE/opened/SHA/NAME`) for a viewer:
/// the copy has the extension viewers go by, and whatever the viewer does
/// to it never touches the store.
pub fn cache_copy(blob: &Path, file: &AssetFile) -> Result<PathBuf> {
    let cache = crate::config::cache_dir().ok_or_else(|| {
        anyhow::anyhow!("no cache folder to put the file in: set $XDG_CACHE_HOME or $HOME")
    })?;
    let dir = cache
        .join("opened")
        .join(&file.sha256[..16.min(file.sha256.len())]);
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let target = dir.join(&file.file_name);
    let tmp = dir.join(format!(".{}.part", file.file_name));
    std::fs::copy(blob, &tmp)
        .map_err(|e| anyhow::anyhow!("cannot copy {} to {}: {e}", blob.display(), tmp.display()))?;
    std::fs::rename(&tmp, &target)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", target.display()))?;
    Ok(target)
}

/// Writes the bytes of `blob` to `dest` (into it, under `file_name`, when
/// `dest` is a folder). An existing file is kept unless `force`.
pub fn save_copy(blob: &Path, dest: &Path, file_name: &str, force: bool) -> Result<PathBuf> {
    let dest = if dest.is_dir() {
        dest.join(file_name)
    } else {
        dest.to_owned()
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut out = match options.open(&dest) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(InputError::new(format!(
                "{} already exists; add --force to overwrite it",
                dest.display()
            ))
            .into());
        }
        Err(e) => return Err(anyhow::anyhow!("cannot write {}: {e}", dest.display())),
    };
    let mut input = std::fs::File::open(blob)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", blob.display()))?;
    std::io::copy(&mut input, &mut out)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", dest.display()))?;
    Ok(dest)
}

/// Opens `path` with the `opener` setting (a command line; the path
/// replaces `{}` or goes last), else `xdg-open` (Linux) or `open` (macOS).
/// The viewer is detached, with stdin, stdout and stderr on /dev/null so
/// it never writes over a screen. Over SSH with no `opener`, nothing is
/// started: a viewer would open on the remote machine.
pub fn open_file(path: &Path, opener: Option<&str>, over_ssh: bool) -> Result<Opened> {
    let words = match opener.filter(|o| !o.trim().is_empty()) {
        Some(line) => split_command(line)
            .map_err(|e| InputError::new(format!("the `opener` setting in config.toml: {e}")))?,
        None if over_ssh => {
            return Ok(Opened::Saved {
                why: format!(
                    "saved to {}: over SSH a viewer would open on the remote machine (set `opener` in config.toml to open files anyway)",
                    path.display()
                ),
            });
        }
        None => vec![default_opener()?.to_owned()],
    };
    let Some((program, args)) = words.split_first() else {
        return Err(InputError::new("the `opener` setting in config.toml is empty").into());
    };
    let file = path.display().to_string();
    let mut args: Vec<String> = args.to_vec();
    if args.iter().any(|a| a.contains("{}")) {
        for a in &mut args {
            *a = a.replace("{}", &file);
        }
    } else {
        args.push(file);
    }
    let mut command = std::process::Command::new(program);
    command
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    #[cfg(unix)]
    {
        // Its own process group: ctrl-c in the terminal does not reach it.
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    let setting = if opener.is_some() {
        "check the `opener` setting in config.toml"
    } else {
        "set `opener` in config.toml, e.g. opener = \"feh --scale-down\""
    };
    let child = command.spawn().map_err(|e| {
        anyhow::anyhow!(
            "cannot run `{program}` to open {}: {e}; {setting}",
            path.display()
        )
    })?;
    Ok(Opened::Started {
        command: program.clone(),
        child,
    })
}

/// The desktop's own opener on this system.
fn default_opener() -> Result<&'static str> {
    if cfg!(target_os = "macos") {
        Ok("open")
    } else if cfg!(unix) {
        Ok("xdg-open")
    } else {
        Err(InputError::new("no default opener on this system: set `opener` in config.toml").into())
    }
}

/// Whether this session runs over SSH.
pub fn over_ssh() -> bool {
    std::env::var_os("SSH_CONNECTION").is_some_and(|v| !v.is_empty())
}

/// A file name safe on any system: letters, digits, `.`, `-` and `_`
/// kept, anything else a `-`; never empty, never hidden.
fn safe_file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        "asset".to_owned()
    } else {
        cleaned
    }
}

/// The usual extension for a MIME type.
fn extension_for_mime(mime: &str) -> &'static str {
    match mime {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/bmp" => "bmp",
        "image/tiff" => "tiff",
        "image/svg+xml" => "svg",
        "application/pdf" => "pdf",
        "text/markdown" => "md",
        "text/plain" => "txt",
        "video/mp4" => "mp4",
        "video/quicktime" => "mov",
        "audio/wav" => "wav",
        "audio/mpeg" => "mp3",
        _ => "bin",
    }
}

/// Splits a command line into words as a shell splits a simple command:
/// blanks separate words, `'…'` and `"…"` quote, a backslash escapes the
/// next character (inside double quotes only before `"`, `\`, `$`, `` ` ``).
/// No variables, globs or pipes.
pub fn split_command(line: &str) -> Result<Vec<String>, InputError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(q) => word.push(q),
                        None => return Err(InputError::new(format!("unclosed ' in `{line}`"))),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => word.push(e),
                            Some(other) => {
                                word.push('\\');
                                word.push(other);
                            }
                            None => {
                                return Err(InputError::new(format!("unclosed \" in `{line}`")));
                            }
                        },
                        Some(q) => word.push(q),
                        None => return Err(InputError::new(format!("unclosed \" in `{line}`"))),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(e) => word.push(e),
                    None => {
                        return Err(InputError::new(format!("`{line}` ends with a lone \\")));
                    }
                }
            }
            other => {
                in_word = true;
                word.push(other);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        return Err(InputError::new("the command is empty"));
    }
    Ok(words)
}

#[cfg(test)]
mod file_tests {
    use super::*;

    #[test]
    fn command_lines_split_like_a_shell() {
        let split = |s: &str| split_command(s).unwrap();
        assert_eq!(split("feh --scale-down"), ["feh", "--scale-down"]);
        assert_eq!(split("  vi  "), ["vi"]);
        assert_eq!(
            split(r#"'/Applications/My App' -a "x y" a\ b "q\"t" ''"#),
            ["/Applications/My App", "-a", "x y", "a b", "q\"t", ""]
        );
        assert_eq!(split(r#"open -a "{}""#), ["open", "-a", "{}"]);
        for bad in ["", "   ", "vi 'x", "vi \"x", "vi \\"] {
            assert!(split_command(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn file_names_are_safe_and_keep_their_extension() {
        assert_eq!(safe_file_name("spring hero/v2.png"), "spring-hero-v2.png");
        assert_eq!(safe_file_name("..hidden"), "hidden");
        assert_eq!(safe_file_name(""), "asset");
        assert_eq!(extension_for_mime("image/jpeg"), "jpg");
        assert_eq!(extension_for_mime("application/x-unknown"), "bin");
    }
}
