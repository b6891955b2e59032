//! One generation run: a prompt grounded in the brief and the brand, the
//! brand's LoRA applied, a batch of seeds through ComfyUI, and the images
//! recorded as AI-labelled versions of one asset with one approval request
//! in a single commit, so nothing is half-imported. Everything that needs
//! no server (the template, the brand's rules, the size, the prompt) is
//! checked before anything is sent.

use super::comfy::{Comfy, GenError, Progress};
use super::template::{Provider, Template, Values, graph_sha256};
use crate::assets::analyze::{analyze, hamming, palette_distance, shared_budget};
use crate::model::approval::{Stage, StageMode, Subject};
use crate::model::asset::AssetStatus;
use crate::model::brief::Brief;
use crate::model::ids::new_entity_id;
use crate::model::{Change, EntityKind, EntityRef, InputError, Role};
use crate::service::Hub;
use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The most images one run makes.
pub const MAX_COUNT: u32 = 8;
/// Two images this close (perceptual-hash bits of 64) look alike.
const ALIKE_BITS: u32 = 10;
/// Mean colour distance under which two palettes read as the same.
const ALIKE_PALETTE: f32 = 12.0;

/// What to make.
#[derive(Debug, Clone, Default)]
pub struct GenerateRequest {
    pub brief: String,
    pub template: String,
    /// Said by the person; the brief's own words when none.
    pub prompt: Option<String>,
    pub count: u32,
    /// The first seed; the rest follow it. Random when none.
    pub seed: Option<u64>,
    /// `WxH`; the brand's first allowed size when none.
    pub size: Option<String>,
    /// An asset whose latest version is the input image (img2img).
    pub from: Option<String>,
    /// The approved generation proposal this run carries out.
    pub from_proposal: Option<String>,
}

/// Where ComfyUI runs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub url: String,
    pub stall: Duration,
}

/// What a run made.
#[derive(Debug, Clone, Serialize)]
pub struct GenerateOutcome {
    pub asset: String,
    pub versions: Vec<u32>,
    pub approval: String,
    pub template: String,
    pub seeds: Vec<u64>,
    pub loras: Vec<String>,
    pub prompt: String,
    pub negative: String,
    pub graphs: Vec<String>,
    /// Off-palette results and images too alike, as the request says them.
    pub notes: Vec<String>,
}

/// Progress to show while a run goes.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    Checking,
    Uploading,
    /// Image `index` (from 1) of `of`.
    Image {
        index: u32,
        of: u32,
        progress: Progress,
    },
    Recording,
}

/// Everything decided before any server is asked.
#[derive(Debug, Clone)]
pub struct Plan {
    pub brief: Brief,
    pub template: Template,
    pub values: Values,
    pub seeds: Vec<u64>,
    pub loras: Vec<(String, f64)>,
    /// The input image's file name and bytes, for `--from`.
    pub from: Option<(String, Vec<u8>)>,
    pub reviewers: Vec<String>,
    pub from_proposal: Option<String>,
}

/// Checks the request against the template, the brand and the brief, and
/// grounds the prompt; reads the `--from` image. No network.
pub fn plan(hub: &Hub, req: &GenerateRequest) -> Result<Plan> {
    let brief = hub.brief(&req.brief)?;
    let template = hub.template(&req.template)?;
    if template.provider == Provider::Midjourney {
        bail!(InputError::new(format!(
            "template {} names Midjourney, which has no public API: Spoke cannot run it. \
             Use a ComfyUI template (spoke generate template list)",
            template.name
        )));
    }
    if req.count == 0 || req.count > MAX_COUNT {
        bail!(InputError::new(format!(
            "--count is 1 to {MAX_COUNT}, not {}",
            req.count
        )));
    }
    let brand = hub.brand_presets()?;
    let (width, height) = match &req.size {
        Some(s) => crate::model::generate::parse_size(s)?,
        None => match brand.sizes.first() {
            Some(s) => crate::model::generate::parse_size(s)?,
            None => (1024, 1024),
        },
    };
    crate::model::generate::check_size(&brand, width, height)?;
    let binds_lora = template.bindings.contains_key("lora");
    let loras: Vec<(String, f64)> = brand
        .loras
        .iter()
        .map(|l| (l.name.clone(), l.strength))
        .collect();
    let lora = match (loras.first(), binds_lora) {
        (Some(l), true) => Some(l.clone()),
        (Some(l), false) if !template.brand_lora_optional => bail!(InputError::new(format!(
            "template {} does not apply the brand's LoRA {}: bind {{{{lora}}}} in it, or a lead \
             marks it optional (spoke generate template lora-optional {} on)",
            template.name, l.0, template.name
        ))),
        (None, true) => bail!(InputError::new(format!(
            "template {} applies a LoRA but the brand names none: a lead sets one \
             (spoke generate brand set --lora NAME:STRENGTH)",
            template.name
        ))),
        _ => None,
    };
    if template.bindings.contains_key("image") != req.from.is_some() {
        bail!(InputError::new(if req.from.is_some() {
            format!(
                "template {} takes no input image; leave out --from or use an img2img template",
                template.name
            )
        } else {
            format!(
                "template {} works from an image: give --from ASSET",
                template.name
            )
        }));
    }
    let from = match &req.from {
        Some(asset) => Some(read_asset(hub, asset)?),
        None => None,
    };
    let prompt = grounded_prompt(hub, &brief, req.prompt.as_deref())?;
    let negative = brand.negative.clone();
    let first = req.seed.unwrap_or_else(random_seed);
    let seeds: Vec<u64> = (0..u64::from(req.count))
        .map(|i| first.wrapping_add(i) % (1 << 53))
        .collect();
    let values = Values {
        prompt,
        negative,
        seed: seeds[0],
        width,
        height,
        steps: None,
        lora,
        image: None,
    };
    // Catch a placeholder with no value now, not halfway through a batch.
    template
        .bind(&Values {
            image: from.as_ref().map(|(n, _)| n.clone()),
            ..values.clone()
        })
        .map_err(|e| InputError::new(format!("template {}: {e}", template.name)))?;
    Ok(Plan {
        reviewers: reviewers_for(hub)?,
        from_proposal: req.from_proposal.clone(),
        brief,
        template,
        values,
        seeds,
        loras: lora_list(&loras, binds_lora),
        from,
    })
}

fn lora_list(loras: &[(String, f64)], applied: bool) -> Vec<(String, f64)> {
    if applied {
        loras.iter().take(1).cloned().collect()
    } else {
        Vec::new()
    }
}

fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes) % (1 << 53)
}

/// The brief's reviewers: members with the reviewer role, else the leads.
fn reviewers_for(hub: &Hub) -> Result<Vec<String>> {
    let me = hub.actor()?.to_owned();
    let members = hub.members()?;
    let has = |role: Role| {
        members
            .iter()
            .any(|m| !m.deleted && m.handle != me && m.has_role(role))
    };
    Ok(if has(Role::Reviewer) {
        vec!["role:reviewer".to_owned()]
    } else {
        vec!["role:lead".to_owned()]
    })
}

/// The prompt: the person's words, or the brief's (title, objective, key
/// message, audience), then the brand's visual guidelines from the
/// knowledge base (the first section of a document about the brand).
pub fn grounded_prompt(hub: &Hub, brief: &Brief, said: Option<&str>) -> Result<String> {
    let mut parts: Vec<String> = Vec::new();
    match said.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => parts.push(s.to_owned()),
        None => {
            parts.push(brief.title.trim().to_owned());
            for v in [&brief.objective, &brief.key_message].into_iter().flatten() {
                parts.push(v.trim().to_owned());
            }
            if let Some(a) = &brief.audience {
                parts.push(format!("for {}", a.trim()));
            }
        }
    }
    let guideline = hub
        .knowledge_docs()?
        .into_iter()
        .filter(|d| !d.deleted)
        .find(|d| {
            let t = d.title.to_lowercase();
            t.contains("brand") || t.contains("guideline")
        })
        .and_then(|d| d.chunks.into_iter().find(|c| !c.text.trim().is_empty()))
        .map(|c| clip_words(&c.text, 60));
    if let Some(g) = guideline {
        parts.push(format!("brand style: {g}"));
    }
    Ok(parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(". "))
}

fn clip_words(text: &str, n: usize) -> String {
    text.split_whitespace()
        .take(n)
        .collect::<Vec<_>>()
        .join(" ")
}

fn read_asset(hub: &Hub, asset: &str) -> Result<(String, Vec<u8>)> {
    let file = hub.asset_file(asset, None)?;
    let home = hub.home();
    let path = crate::sync::blobs::local_blob_path(&home, &file.sha256);
    if !path.exists() && hub.meta().hub_url.is_some() {
        crate::sync::blobs::fetch_blocking(&home, hub.meta(), &file.sha256)?;
    }
    let bytes = std::fs::read(&path)
        .with_context(|| format!("reading asset {}'s file {}", file.asset, path.display()))?;
    Ok((file.file_name, bytes))
}

/// One image made: its seed, the graph's hash and its bytes.
struct Made {
    seed: u64,
    graph_sha256: String,
    bytes: Vec<u8>,
    file_name: String,
}

/// Runs a plan against ComfyUI and records the results (see the module).
/// `home` is reopened to record: the replica is not held while ComfyUI works.
pub async fn generate(
    home: &Path,
    settings: &Settings,
    plan: Plan,
    on_event: &mut (dyn FnMut(RunEvent) + Send),
    cancel: &CancellationToken,
) -> Result<GenerateOutcome> {
    let images = make_images(settings, &plan, on_event, cancel).await?;
    let mut hub = Hub::open(home, None)?;
    record_images(&mut hub, &plan, images)
}

/// Images a run made, not recorded yet.
pub struct Images {
    values: Values,
    made: Vec<Made>,
}

/// Records images a run made, for a process that holds the replica open
/// already (the terminal UI); [`generate`] reopens it instead.
pub fn record_images(hub: &mut Hub, plan: &Plan, images: Images) -> Result<GenerateOutcome> {
    record(hub, plan, &images.values, images.made)
}

/// Runs a plan against ComfyUI without touching the replica; ends by
/// announcing [`RunEvent::Recording`].
pub async fn make_images(
    settings: &Settings,
    plan: &Plan,
    on_event: &mut (dyn FnMut(RunEvent) + Send),
    cancel: &CancellationToken,
) -> Result<Images> {
    let comfy = Comfy::new(&settings.url, settings.stall);
    on_event(RunEvent::Checking);
    let info = comfy
        .object_info()
        .await
        .map_err(|e| with_hint(e, settings))?;
    let lora_names: Vec<String> = plan.loras.iter().map(|(n, _)| n.clone()).collect();
    let problems = plan.template.check_against(&info, &lora_names);
    if !problems.is_empty() {
        bail!(
            "template {} does not fit ComfyUI at {}:\n  {}",
            plan.template.name,
            settings.url,
            problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }
    let mut values = plan.values.clone();
    if let Some((name, bytes)) = &plan.from {
        on_event(RunEvent::Uploading);
        values.image = Some(comfy.upload_image(name, bytes.clone()).await?);
    }
    let of = plan.seeds.len() as u32;
    let mut made: Vec<Made> = Vec::new();
    for (i, seed) in plan.seeds.iter().enumerate() {
        values.seed = *seed;
        let graph = plan
            .template
            .bind(&values)
            .map_err(|e| InputError::new(format!("template {}: {e}", plan.template.name)))?;
        let index = i as u32 + 1;
        let mut forward = |p: Progress| {
            on_event(RunEvent::Image {
                index,
                of,
                progress: p,
            })
        };
        let images = comfy
            .run(&graph, &mut forward, cancel)
            .await
            .map_err(|e| described(e, &plan.template))?;
        if images.is_empty() {
            bail!(
                "ComfyUI finished seed {seed} of template {} without saving an image; \
                 check the template's SaveImage node",
                plan.template.name
            );
        }
        for image in images {
            let bytes = comfy.view(&image).await?;
            made.push(Made {
                seed: *seed,
                graph_sha256: graph_sha256(&graph),
                bytes,
                file_name: image.filename.clone(),
            });
        }
    }
    on_event(RunEvent::Recording);
    Ok(Images { values, made })
}

fn with_hint(e: GenError, settings: &Settings) -> anyhow::Error {
    match e {
        GenError::Unreachable { .. } => anyhow::anyhow!(
            "{e}; start ComfyUI there or set [generate] url in config.toml (now {})",
            settings.url
        ),
        other => other.into(),
    }
}

fn described(e: GenError, template: &Template) -> anyhow::Error {
    match &e {
        GenError::NodeErrors { nodes, .. } => {
            let lines: Vec<String> = nodes
                .iter()
                .map(|n| {
                    format!(
                        "node {} ({}): {}",
                        n.node,
                        n.class_type,
                        n.errors.join("; ")
                    )
                })
                .collect();
            anyhow::anyhow!(
                "{e}\n  {}\n(template {}; nothing was imported, the run can be retried)",
                lines.join("\n  "),
                template.name
            )
        }
        _ => anyhow::anyhow!(
            "{e} (template {}; nothing was imported, the run can be retried)",
            template.name
        ),
    }
}

/// Records the images as versions of one new asset, with one approval
/// request offering them, in one commit.
fn record(hub: &mut Hub, plan: &Plan, values: &Values, made: Vec<Made>) -> Result<GenerateOutcome> {
    let home = hub.home();
    let brand_palette = hub.brand_palette()?;
    let prompt_sha = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(values.prompt.as_bytes());
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let mut analysed = Vec::new();
    for m in &made {
        let analysis =
            analyze(&PathBuf::from(&m.file_name), &m.bytes, shared_budget()).map_err(|e| {
                anyhow::anyhow!("ComfyUI's image {} could not be read: {}", m.file_name, e.0)
            })?;
        analysed.push(analysis);
    }
    let asset = new_entity_id("a");
    let entity = EntityRef::new(EntityKind::Asset, asset.clone());
    let mut notes: Vec<String> = Vec::new();
    let mut changes = Vec::new();
    let mut versions = Vec::new();
    let loras: Vec<Value> = plan
        .loras
        .iter()
        .map(|(n, s)| json!({"name": n, "strength": s}))
        .collect();
    for (i, (m, a)) in made.iter().zip(&analysed).enumerate() {
        let sha = {
            use sha2::Digest;
            let d = sha2::Sha256::digest(&m.bytes);
            d.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        crate::sync::blobs::store_bytes(&home, &sha, &m.bytes)?;
        let n = i as u32 + 1;
        versions.push(n);
        let distance = mean_palette_distance(&a.palette, &brand_palette);
        if let Some(d) = distance
            && d > crate::service::assets::OFF_PALETTE_THRESHOLD
        {
            notes.push(format!("v{n} is off-palette (distance {d:.0})"));
        }
        changes.push((
            entity.clone(),
            Change::Append(json!({
                "blob_sha256": sha,
                "size": m.bytes.len(),
                "mime": a.mime,
                "width": a.width,
                "height": a.height,
                "note": format!("seed {}", m.seed),
                "provenance": {
                    "by": "ai",
                    "provider": "comfyui",
                    "model": plan.template.name,
                    "prompt_sha256": prompt_sha,
                },
                "generation": {
                    "template": plan.template.name,
                    "seed": m.seed,
                    "loras": loras,
                    "graph_sha256": m.graph_sha256,
                    "prompt": values.prompt,
                    "negative": values.negative,
                    "width": values.width,
                    "height": values.height,
                    "palette": a.palette,
                    "phash": a.phash,
                    "palette_distance": distance,
                },
            })),
        ));
    }
    notes.extend(homogeneity(hub, &analysed)?);
    let first = &analysed[0];
    let mut fields: BTreeMap<String, Value> = BTreeMap::from([
        (
            "title".to_owned(),
            json!(format!("AI draft · {}", plan.brief.title)),
        ),
        (
            "source_name".to_owned(),
            json!(format!("generated-{asset}")),
        ),
        ("created_by".to_owned(), json!(hub.actor()?)),
        ("kind".to_owned(), json!(first.kind)),
        ("status".to_owned(), json!(AssetStatus::Wip)),
        ("palette".to_owned(), json!(first.palette)),
        ("phash".to_owned(), json!(first.phash)),
        ("brief".to_owned(), json!(plan.brief.id)),
    ]);
    if let Some(p) = &plan.from_proposal {
        fields.insert("from_proposal".into(), json!(p));
    }
    let mut tags: Vec<String> = first.tags.clone();
    tags.push("generated".into());
    if notes.iter().any(|n| n.contains("off-palette")) {
        tags.push("off-palette".into());
    }
    if let Some(d) = mean_palette_distance(&first.palette, &brand_palette) {
        fields.insert("palette_distance".into(), json!(d));
    }
    for t in tags {
        fields.insert(format!("tags:{t}"), json!(true));
    }
    changes.insert(0, (entity, Change::Set(fields)));
    let seeds: Vec<u64> = made.iter().map(|m| m.seed).collect();
    let lora_text = match plan.loras.first() {
        Some((n, s)) => format!("LoRA {n}@{s}"),
        None => "no LoRA".to_owned(),
    };
    let mut title = format!(
        "AI drafts for {}: template {}, seeds {}, {lora_text}",
        plan.brief.id,
        plan.template.name,
        seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !notes.is_empty() {
        title.push_str(&format!(" ({})", notes.join("; ")));
    }
    let (approval, request) = hub.approval_request_changes(
        &title,
        Subject::AssetVersion {
            asset: asset.clone(),
            version: 1,
        },
        vec![Stage {
            name: "review".into(),
            reviewers: plan.reviewers.clone(),
            deadline: None,
            mode: StageMode::Decide,
        }],
        if versions.len() > 1 { &versions } else { &[] },
    )?;
    changes.extend(request);
    hub.commit(changes)?;
    Ok(GenerateOutcome {
        asset,
        versions,
        approval,
        template: plan.template.name.clone(),
        seeds,
        loras: plan.loras.iter().map(|(n, s)| format!("{n}@{s}")).collect(),
        prompt: values.prompt.clone(),
        negative: values.negative.clone(),
        graphs: made.iter().map(|m| m.graph_sha256.clone()).collect(),
        notes,
    })
}

/// Mean distance of a palette's colours to the nearest brand colour.
fn mean_palette_distance(palette: &[String], brand: &[String]) -> Option<f32> {
    if brand.is_empty() || palette.is_empty() {
        return None;
    }
    let ds: Vec<f32> = palette
        .iter()
        .filter_map(|c| palette_distance(c, brand))
        .collect();
    (!ds.is_empty()).then(|| ds.iter().sum::<f32>() / ds.len() as f32)
}

/// Images of the batch too alike to each other, or to approved work:
/// perceptual hashes within a few bits, or (for images with no structure
/// to hash) the same palette.
fn homogeneity(hub: &Hub, batch: &[crate::assets::analyze::Analysis]) -> Result<Vec<String>> {
    let alike =
        |a: &crate::assets::analyze::Analysis, phash: Option<&str>, palette: &[String]| match (
            a.phash.as_deref(),
            phash,
        ) {
            (Some(x), Some(y)) => hamming(x, y).is_some_and(|d| d <= ALIKE_BITS),
            _ => {
                mean_palette_distance(&a.palette, palette).is_some_and(|d| d < ALIKE_PALETTE)
                    && mean_palette_distance(palette, &a.palette).is_some_and(|d| d < ALIKE_PALETTE)
            }
        };
    let mut notes = Vec::new();
    for i in 0..batch.len() {
        for j in i + 1..batch.len() {
            if alike(&batch[i], batch[j].phash.as_deref(), &batch[j].palette) {
                notes.push(format!("v{} and v{} look alike", i + 1, j + 1));
            }
        }
    }
    let approved: Vec<_> = hub
        .assets()?
        .into_iter()
        .filter(|a| a.status == AssetStatus::Approved)
        .collect();
    for (i, a) in batch.iter().enumerate() {
        if let Some(past) = approved
            .iter()
            .find(|p| alike(a, p.phash.as_deref(), &p.palette))
        {
            notes.push(format!(
                "v{} looks like approved asset {} ({})",
                i + 1,
                past.id,
                past.title
            ));
        }
    }
    Ok(notes)
}

/// Generation proposals a lead approved that no asset carries out yet.
pub fn approved_requests(hub: &Hub) -> Result<Vec<GenerateRequest>> {
    use crate::model::proposal::{ProposalKind, ProposalStatus};
    let done: std::collections::BTreeSet<String> = hub
        .replica()
        .records(EntityKind::Asset)?
        .iter()
        .filter_map(|(_, rec)| rec.string("from_proposal"))
        .collect();
    Ok(hub
        .proposals()?
        .into_iter()
        .filter(|p| {
            !p.deleted
                && p.kind == Some(ProposalKind::Generation)
                && p.status == ProposalStatus::Applied
                && !done.contains(&p.id)
        })
        .map(|p| GenerateRequest {
            brief: p.payload["brief"].as_str().unwrap_or_default().to_owned(),
            template: p.payload["template"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            prompt: p.payload["prompt"].as_str().map(str::to_owned),
            count: p.payload["count"]
                .as_u64()
                .and_then(|c| u32::try_from(c).ok())
                .unwrap_or(1),
            from_proposal: Some(p.id.clone()),
            ..GenerateRequest::default()
        })
        .collect())
}

/// Runs every approved generation proposal not carried out yet; one that
/// fails is reported and tried again next time.
pub async fn run_approved(
    home: &Path,
    settings: &Settings,
    on_event: &mut (dyn FnMut(RunEvent) + Send),
    cancel: &CancellationToken,
) -> Result<Vec<std::result::Result<GenerateOutcome, (String, String)>>> {
    let requests = approved_requests(&Hub::open(home, None)?)?;
    let mut out = Vec::new();
    for request in requests {
        let proposal = request.from_proposal.clone().unwrap_or_default();
        let planned = plan(&Hub::open(home, None)?, &request);
        let result = match planned {
            Ok(plan) => generate(home, settings, plan, on_event, cancel).await,
            Err(e) => Err(e),
        };
        out.push(result.map_err(|e| (proposal, format!("{e:#}"))));
        if cancel.is_cancelled() {
            break;
        }
    }
    Ok(out)
}
