//! `spoke generate`: workflow templates and the brand's presets that govern
//! image generation through ComfyUI.

use super::Ctx;
use super::output::{outln, print_json, print_table};
use crate::generate::template::{Provider, Template, is_ui_workflow, ui_to_api};
use crate::model::InputError;
use crate::model::generate::{BrandLora, BrandPresets, parse_lora};
use crate::service::generate::TemplateEntry;
use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

/// How long `--check` waits for ComfyUI's `/object_info`.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// `spoke generate`: a run (the flags), or templates and brand presets.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "A run grounds the prompt in the brief and the brand guidelines, applies the brand's \
                  LoRA and negative prompt, makes COUNT images through ComfyUI ([generate] url in \
                  config.toml) and records them as AI-labelled versions of one new asset with one \
                  approval request; reviewers approve one with `spoke approve ID --pick N`. Nothing \
                  is recorded unless every image is made. Ctrl-C interrupts the run on the server.\n\n\
                  Midjourney has no public API: a Midjourney template is refused.\n\n\
                  Examples:\n  \
                  spoke generate --brief b-7k2m --template social --count 2\n  \
                  spoke generate --brief b-7k2m --template social --prompt \"lighthouse at dawn\" --seed 42 --size 1216x832\n  \
                  spoke generate --brief b-7k2m --template sketch-i2i --from a-hero"
)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub command: Option<GenerateCommand>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// What one run makes.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The brief the images are for (id or unique prefix)
    #[arg(long)]
    pub brief: Option<String>,
    /// The workflow template (spoke generate template list)
    #[arg(long)]
    pub template: Option<String>,
    /// What to draw; the brief's own words when left out
    #[arg(long)]
    pub prompt: Option<String>,
    /// How many images (1-8), one seed each
    #[arg(long, default_value_t = 1)]
    pub count: u32,
    /// The first seed (the rest follow it); random when left out
    #[arg(long)]
    pub seed: Option<u64>,
    /// Image size WxH; the brand's first allowed size when left out
    #[arg(long, value_name = "WxH")]
    pub size: Option<String>,
    /// An asset whose latest version is the input image (img2img templates)
    #[arg(long, value_name = "ASSET")]
    pub from: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Carry out the generation proposals a lead approved (the agent's
    /// `propose_generation`); `spoke agent run` does this on each pass when
    /// [generate] url is set
    Approved,
    /// Workflow templates: ComfyUI graphs in API format with {{placeholders}}
    #[command(subcommand)]
    Template(TemplateCommand),
    /// The brand's presets every generated image follows: LoRAs, negative
    /// prompt, allowed sizes
    Brand(BrandCommand),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProviderArg {
    /// A ComfyUI server ([generate] url in config.toml)
    Comfyui,
    /// Kept for reference; Midjourney has no public API, so runs are refused
    Midjourney,
}

impl From<ProviderArg> for Provider {
    fn from(p: ProviderArg) -> Provider {
        match p {
            ProviderArg::Comfyui => Provider::Comfyui,
            ProviderArg::Midjourney => Provider::Midjourney,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Add (or replace) a template from a workflow exported in API format; a
    /// lead's. String inputs written "{{prompt}}", "{{seed}}"… become
    /// placeholders; the graph is checked against the ComfyUI server when
    /// it answers. A UI workflow (what Save writes) is converted with the
    /// server's node definitions when it answers, else refused
    #[command(
        after_help = "Placeholders: prompt, negative, seed, width, height, steps, lora, lora_strength, image\n\
                      In ComfyUI use Workflow → Export (API), then put {{prompt}} in the positive text, \
                      {{lora}} in a LoraLoader's lora_name, and so on.\n\n\
                      Examples:\n  \
                      spoke generate template add sdxl sdxl_api.json\n  \
                      spoke generate template add hero hero_api.json --bind steps=3.steps --check\n  \
                      spoke generate template add sketch-i2i i2i_api.json --lora-optional"
    )]
    Add {
        /// The template's name: a lowercase word, e.g. sdxl-hero
        name: String,
        /// The workflow file in ComfyUI's API format
        file: PathBuf,
        /// Bind a placeholder to a node input that holds a literal,
        /// NAME=NODE.INPUT (repeat), e.g. steps=3.steps
        #[arg(long = "bind", value_name = "NAME=NODE.INPUT")]
        binds: Vec<String>,
        /// Who runs it
        #[arg(long, value_enum, default_value = "comfyui")]
        provider: ProviderArg,
        /// This template may run without the brand's LoRA (a lead's mark)
        #[arg(long)]
        lora_optional: bool,
        /// Fail unless the ComfyUI server answers and has every node class,
        /// input, model and brand LoRA the template needs
        #[arg(long)]
        check: bool,
    },
    /// The hub's templates
    #[command(
        after_help = "Examples:\n  spoke generate template list\n  spoke generate template list --json"
    )]
    List,
    /// A template's placeholders and where they bind, its graph hash and nodes
    #[command(
        after_help = "Examples:\n  spoke generate template show sdxl\n  spoke generate template show sdxl --json   # with the whole graph"
    )]
    Show {
        /// The template's name
        name: String,
    },
    /// Remove a template; a lead's
    #[command(after_help = "Example:\n  spoke generate template remove sdxl")]
    Remove {
        /// The template's name
        name: String,
    },
    /// Mark whether a template may run without the brand's LoRA; a lead's
    #[command(
        name = "lora-optional",
        after_help = "Examples:\n  spoke generate template lora-optional sketch-i2i on\n  spoke generate template lora-optional sketch-i2i off"
    )]
    LoraOptional {
        /// The template's name
        name: String,
        /// on: may run without the LoRA; off: needs it
        #[arg(value_enum)]
        state: OnOff,
    },
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  spoke generate brand\n  spoke generate brand set --lora brand_v1.safetensors:0.8 --size 1024x1024 --size 1216x832\n  spoke generate brand set --negative \"text, watermark, off-brand colours\""
)]
pub struct BrandCommand {
    #[command(subcommand)]
    pub action: Option<BrandAction>,
}

#[derive(Debug, Subcommand)]
pub enum BrandAction {
    /// The brand's LoRAs, negative prompt and sizes (the default)
    Show,
    /// Set parts of the brand's presets; a lead's. Parts not given stay
    #[command(
        after_help = "Examples:\n  spoke generate brand set --lora brand_v1.safetensors:0.8\n  spoke generate brand set --size 1024x1024 --size 1216x832 --negative \"text, watermark\"\n  spoke generate brand set --no-loras"
    )]
    Set {
        /// A LoRA every run loads, FILE:STRENGTH (repeat; replaces the list),
        /// e.g. brand_v1.safetensors:0.8
        #[arg(
            long = "lora",
            value_name = "NAME:STRENGTH",
            conflicts_with = "no_loras"
        )]
        loras: Vec<String>,
        /// Clear the brand's LoRAs
        #[arg(long)]
        no_loras: bool,
        /// Text added to every run's negative prompt ("" clears it)
        #[arg(long, value_name = "TEXT")]
        negative: Option<String>,
        /// An allowed size, WxH (repeat; replaces the list), each side a
        /// multiple of 8 from 64 to 4096
        #[arg(long = "size", value_name = "WxH", conflicts_with = "no_sizes")]
        sizes: Vec<String>,
        /// Allow any size
        #[arg(long)]
        no_sizes: bool,
    },
}

pub fn run(ctx: &Ctx, args: GenerateArgs) -> Result<()> {
    match args.command {
        Some(GenerateCommand::Template(cmd)) => template(ctx, cmd),
        Some(GenerateCommand::Brand(cmd)) => brand(ctx, cmd.action.unwrap_or(BrandAction::Show)),
        Some(GenerateCommand::Approved) => approved(ctx),
        None => generate_run(ctx, args.run),
    }
}

fn approved(ctx: &Ctx) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let cancel = tokio_util::sync::CancellationToken::new();
    {
        let cancel = cancel.clone();
        crate::interrupt::on_interrupt("generate-cancel", move || cancel.cancel());
    }
    let results = rt.block_on(run_approved_generations(ctx, &cancel))?;
    if ctx.json {
        return print_json(&json!(
            results
                .iter()
                .map(|r| match r {
                    Ok(o) => json!({"ok": o}),
                    Err((p, e)) => json!({"proposal": p, "error": e}),
                })
                .collect::<Vec<_>>()
        ));
    }
    if results.is_empty() {
        outln!("No approved generation waits to run.")?;
    }
    for r in &results {
        match r {
            Ok(o) => outln!(
                "asset {}: {} AI draft(s) with template {}; approval {} waits for review",
                o.asset,
                o.versions.len(),
                o.template,
                o.approval
            )?,
            Err((p, e)) => outln!("proposal {p}: not run: {e}")?,
        }
    }
    if results.iter().any(|r| r.is_err()) {
        return Err(anyhow::anyhow!("some approved generations did not run"));
    }
    Ok(())
}

/// The approved generations, run with this machine's [generate] settings.
pub async fn run_approved_generations(
    ctx: &Ctx,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Vec<std::result::Result<crate::generate::run::GenerateOutcome, (String, String)>>> {
    let settings = crate::generate::run::Settings {
        url: ctx.config.generate.url().to_owned(),
        stall: Duration::from_secs(ctx.config.generate.stall_secs()),
    };
    let quiet = ctx.json;
    let mut say = move |e: crate::generate::run::RunEvent| {
        if !quiet
            && let crate::generate::run::RunEvent::Image {
                index,
                of,
                progress: crate::generate::comfy::Progress::Done,
            } = e
        {
            eprintln!("image {index}/{of}: done");
        }
    };
    crate::generate::run::run_approved(&ctx.home, &settings, &mut say, cancel).await
}

fn generate_run(ctx: &Ctx, a: RunArgs) -> Result<()> {
    use crate::generate::comfy::Progress;
    use crate::generate::run::{GenerateRequest, RunEvent, Settings, generate, plan};
    let (Some(brief), Some(template)) = (a.brief, a.template) else {
        return Err(InputError::new(
            "a run needs --brief ID and --template NAME (see spoke generate --help)",
        )
        .into());
    };
    let request = GenerateRequest {
        brief,
        template,
        prompt: a.prompt,
        count: a.count,
        seed: a.seed,
        size: a.size,
        from: a.from,
        from_proposal: None,
    };
    let plan = plan(&ctx.open_hub()?, &request)?;
    let settings = Settings {
        url: ctx.config.generate.url().to_owned(),
        stall: Duration::from_secs(ctx.config.generate.stall_secs()),
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    {
        let cancel = cancel.clone();
        crate::interrupt::on_interrupt("generate-cancel", move || cancel.cancel());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let quiet = ctx.json;
    let mut say = move |e: RunEvent| {
        if quiet {
            return;
        }
        let line = match e {
            RunEvent::Checking => "checking the template against ComfyUI…".to_owned(),
            RunEvent::Uploading => "uploading the input image…".to_owned(),
            RunEvent::Recording => "recording the drafts…".to_owned(),
            RunEvent::Image {
                index,
                of,
                progress,
            } => match progress {
                Progress::Queued { number, .. } => {
                    format!("image {index}/{of}: queued (#{number})")
                }
                Progress::Executing {
                    node,
                    class_type: Some(c),
                } => format!("image {index}/{of}: node {node} ({c})"),
                Progress::Step { value, max, .. } => {
                    format!("image {index}/{of}: step {value}/{max}")
                }
                Progress::Done => format!("image {index}/{of}: done"),
                _ => return,
            },
        };
        eprintln!("{line}");
    };
    let outcome = rt.block_on(generate(&ctx.home, &settings, plan, &mut say, &cancel))?;
    if ctx.json {
        return print_json(&outcome);
    }
    outln!(
        "asset {}: {} AI draft(s) for {} with template {} (seeds {}; {})",
        outcome.asset,
        outcome.versions.len(),
        request.brief,
        outcome.template,
        outcome
            .seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        if outcome.loras.is_empty() {
            "no LoRA".to_owned()
        } else {
            format!("LoRA {}", outcome.loras.join(", "))
        }
    )?;
    outln!("prompt: {}", outcome.prompt)?;
    for note in &outcome.notes {
        outln!("note: {note}")?;
    }
    outln!(
        "approval {} waits for review (spoke approvals show {}; approve one with --pick N)",
        outcome.approval,
        outcome.approval
    )?;
    Ok(())
}

fn template(ctx: &Ctx, cmd: TemplateCommand) -> Result<()> {
    match cmd {
        TemplateCommand::Add {
            name,
            file,
            binds,
            provider,
            lora_optional,
            check,
        } => add(
            ctx,
            &name,
            &file,
            &binds,
            provider.into(),
            lora_optional,
            check,
        ),
        TemplateCommand::List => {
            let hub = ctx.open_hub()?;
            let entries = hub.template_entries()?;
            if ctx.json {
                let rows: Vec<Value> = entries.iter().map(summary_json).collect();
                return print_json(&rows);
            }
            if entries.is_empty() {
                outln!("no templates yet: spoke generate template add NAME FILE.json")?;
                return Ok(());
            }
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    vec![
                        e.template.name.clone(),
                        crate::model::serde_name(e.template.provider),
                        lora_mark(&e.template).to_owned(),
                        e.template.nodes().len().to_string(),
                        e.template.placeholders().join(" "),
                    ]
                })
                .collect();
            print_table(
                &["NAME", "PROVIDER", "LORA", "NODES", "PLACEHOLDERS"],
                &rows,
            )
        }
        TemplateCommand::Show { name } => {
            let hub = ctx.open_hub()?;
            let entry = hub.template_entry(&name)?;
            show(ctx, &entry)
        }
        TemplateCommand::Remove { name } => {
            let mut hub = ctx.open_hub()?;
            hub.remove_template(&name)?;
            if ctx.json {
                return print_json(&json!({"removed": name.trim()}));
            }
            outln!("template {} removed", name.trim())?;
            Ok(())
        }
        TemplateCommand::LoraOptional { name, state } => {
            let mut hub = ctx.open_hub()?;
            let t = hub.set_template_lora_optional(&name, matches!(state, OnOff::On))?;
            if ctx.json {
                return print_json(
                    &json!({"name": t.name, "brand_lora_optional": t.brand_lora_optional}),
                );
            }
            outln!("template {}: brand LoRA {}", t.name, lora_mark(&t))?;
            Ok(())
        }
    }
}

fn lora_mark(t: &Template) -> &'static str {
    if t.bindings.contains_key("lora") {
        "bound"
    } else if t.brand_lora_optional {
        "optional"
    } else {
        "none"
    }
}

fn summary_json(e: &TemplateEntry) -> Value {
    json!({
        "name": e.template.name,
        "provider": e.template.provider,
        "placeholders": e.template.placeholders(),
        "graph_sha256": e.graph_sha256,
        "brand_lora_optional": e.template.brand_lora_optional,
        "created_by": e.created_by,
        "nodes": e.template.nodes().len(),
    })
}

fn class_of(t: &Template, node: &str) -> String {
    t.graph
        .get(node)
        .and_then(|n| n.get("class_type"))
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_owned()
}

fn show(ctx: &Ctx, e: &TemplateEntry) -> Result<()> {
    let t = &e.template;
    if ctx.json {
        let bindings: serde_json::Map<String, Value> = t
            .bindings
            .iter()
            .map(|(p, targets)| {
                let list: Vec<Value> = targets
                    .iter()
                    .map(|b| json!({"node": b.node, "input": b.input, "class_type": class_of(t, &b.node)}))
                    .collect();
                (p.clone(), Value::Array(list))
            })
            .collect();
        let nodes: Vec<Value> = t
            .nodes()
            .into_iter()
            .map(|(id, class)| json!({"id": id, "class_type": class}))
            .collect();
        let mut out = summary_json(e);
        out["bindings"] = Value::Object(bindings);
        out["nodes"] = Value::Array(nodes);
        out["graph"] = t.graph.clone();
        return print_json(&out);
    }
    outln!(
        "template {} ({}), added by @{}",
        t.name,
        crate::model::serde_name(t.provider),
        e.created_by
    )?;
    outln!("graph sha256: {}", e.graph_sha256)?;
    outln!(
        "brand LoRA: {}",
        match lora_mark(t) {
            "bound" => "bound",
            "optional" => "not bound; may run without it (lead's mark)",
            _ => "not bound",
        }
    )?;
    outln!("placeholders:")?;
    for p in t.placeholders() {
        let targets: Vec<String> = t.bindings[p]
            .iter()
            .map(|b| format!("node {} ({}).{}", b.node, class_of(t, &b.node), b.input))
            .collect();
        outln!("  {p:<14} {}", targets.join(", "))?;
    }
    outln!("nodes:")?;
    for (id, class) in t.nodes() {
        outln!("  {id:<5} {class}")?;
    }
    Ok(())
}

/// What the server check found: nothing to say, or why it did not run.
enum Checked {
    Yes,
    Not(String),
}

fn add(
    ctx: &Ctx,
    name: &str,
    file: &std::path::Path,
    binds: &[String],
    provider: Provider,
    lora_optional: bool,
    check: bool,
) -> Result<()> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| InputError::new(format!("cannot read {}: {e}", file.display())))?;
    let mut pairs = Vec::new();
    for b in binds {
        let (p, target) = b.split_once('=').ok_or_else(|| {
            InputError::new(format!(
                "--bind `{b}` is not NAME=NODE.INPUT, e.g. steps=3.steps"
            ))
        })?;
        pairs.push((p.trim().to_owned(), target.trim().to_owned()));
    }
    let label = file
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| name.to_owned());
    let url = ctx.config.generate.url().trim_end_matches('/').to_owned();
    let server = format!("ComfyUI at {url}");
    // Read the file first: a bad export is named before any server is asked.
    let mut info: Option<Value> = None;
    let (parsed, api_text) = match Template::parse(&label, &text, &pairs) {
        Ok(t) => (t, text.clone()),
        Err(refused) if provider == Provider::Comfyui && is_ui_workflow(&text) => {
            // A UI workflow converts with the server's node definitions.
            let fetched = fetch_object_info(&url).map_err(|why| {
                InputError::new(format!(
                    "{} (Spoke converts it itself when {server} answers: {why:#})",
                    refused.0
                ))
            })?;
            let api = ui_to_api(&label, &text, &fetched).map_err(|e| InputError::new(e.0))?;
            let api_text = serde_json::to_string_pretty(&api)?;
            let t = Template::parse(&label, &api_text, &pairs).map_err(|e| InputError::new(e.0))?;
            info = Some(fetched);
            (t, api_text)
        }
        Err(refused) => return Err(InputError::new(refused.0).into()),
    };
    let converted = info.is_some();
    let mut hub = ctx.open_hub()?;
    let checked = if provider == Provider::Comfyui {
        let fetched = match info.take() {
            Some(info) => Ok(info),
            None => fetch_object_info(&url),
        };
        match fetched {
            Ok(info) => {
                let loras = if parsed.bindings.contains_key("lora") {
                    hub.brand_presets()?.lora_names()
                } else {
                    Vec::new()
                };
                let problems = parsed.check_against_server(&server, &info, &loras);
                if !problems.is_empty() {
                    let list: Vec<String> = problems.iter().map(|p| format!("  {}", p.0)).collect();
                    return Err(InputError::new(format!(
                        "template {} does not fit {server}; nothing was saved:\n{}",
                        name.trim(),
                        list.join("\n")
                    ))
                    .into());
                }
                Checked::Yes
            }
            Err(why) if check => {
                return Err(why.context(
                    "--check needs the ComfyUI server to answer (start it, or set [generate] url in config.toml)",
                ));
            }
            Err(why) => Checked::Not(format!("{why:#}")),
        }
    } else {
        Checked::Not("Midjourney has no API to check against".into())
    };
    let t = hub.add_template(name, &api_text, &pairs, provider, lora_optional)?;
    let note = match &checked {
        Checked::Yes => None,
        Checked::Not(why) => Some(why.clone()),
    };
    if ctx.json {
        let mut out = summary_json(&hub.template_entry(&t.name)?);
        out["checked"] = json!(note.is_none());
        out["converted_from_ui"] = json!(converted);
        out["not_checked_because"] = json!(note);
        return print_json(&out);
    }
    outln!(
        "template {} saved: {} placeholders ({}), {} nodes",
        t.name,
        t.placeholders().len(),
        t.placeholders().join(", "),
        t.nodes().len()
    )?;
    if converted {
        outln!("converted from a UI workflow with the node definitions of {server}")?;
    }
    match note {
        None => outln!("checked against {server}")?,
        Some(why) => outln!("not checked: {why}")?,
    }
    Ok(())
}

/// `GET {url}/object_info`, waiting at most [`CHECK_TIMEOUT`].
fn fetch_object_info(url: &str) -> Result<Value> {
    let (endpoint, _) = crate::http::endpoint("[generate]", url, "object_info")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime for the ComfyUI check")?;
    rt.block_on(async {
        let client = crate::http::client(CHECK_TIMEOUT, "ComfyUI")?;
        let response = client
            .get(endpoint)
            .timeout(CHECK_TIMEOUT)
            .send()
            .await
            .map_err(|e| {
                let why = if e.is_timeout() {
                    format!("no answer within {} s", CHECK_TIMEOUT.as_secs())
                } else {
                    crate::http::error_chain(&e)
                };
                anyhow::anyhow!("ComfyUI at {url} cannot be reached: {why}")
            })?;
        let status = response.status();
        if !status.is_success() {
            anyhow::bail!("ComfyUI at {url} answered {status} to GET /object_info");
        }
        let info: Value = response.json().await.with_context(|| {
            format!("ComfyUI at {url}: the answer to GET /object_info is not JSON")
        })?;
        if !info.is_object() {
            anyhow::bail!(
                "ComfyUI at {url}: the answer to GET /object_info is not an object of node classes"
            );
        }
        Ok(info)
    })
}

fn brand(ctx: &Ctx, action: BrandAction) -> Result<()> {
    match action {
        BrandAction::Show => {
            let hub = ctx.open_hub()?;
            print_brand(ctx, &hub.brand_presets()?)
        }
        BrandAction::Set {
            loras,
            no_loras,
            negative,
            sizes,
            no_sizes,
        } => {
            let loras: Option<Vec<BrandLora>> = if no_loras {
                Some(Vec::new())
            } else if loras.is_empty() {
                None
            } else {
                Some(
                    loras
                        .iter()
                        .map(|l| parse_lora(l))
                        .collect::<Result<_, _>>()?,
                )
            };
            let sizes = if no_sizes {
                Some(Vec::new())
            } else if sizes.is_empty() {
                None
            } else {
                Some(sizes)
            };
            if loras.is_none() && negative.is_none() && sizes.is_none() {
                return Err(InputError::new(
                    "nothing to set: give --lora, --negative, --size, --no-loras or --no-sizes",
                )
                .into());
            }
            let mut hub = ctx.open_hub()?;
            let presets = hub.set_brand_presets(loras, negative, sizes)?;
            print_brand(ctx, &presets)
        }
    }
}

fn print_brand(ctx: &Ctx, p: &BrandPresets) -> Result<()> {
    if ctx.json {
        return print_json(p);
    }
    let loras: Vec<String> = p
        .loras
        .iter()
        .map(|l| format!("{} ({})", l.name, l.strength))
        .collect();
    let or_none = |s: String| if s.is_empty() { "none".to_owned() } else { s };
    outln!("LoRAs:    {}", or_none(loras.join(", ")))?;
    outln!("negative: {}", or_none(p.negative.clone()))?;
    outln!(
        "sizes:    {}",
        if p.sizes.is_empty() {
            "any".to_owned()
        } else {
            p.sizes.join(", ")
        }
    )?;
    Ok(())
}
