//! The command-line front end: parse, call a service, print. Plain text for
//! people, `--json` for scripts. Exit codes: 0 success, 1 failure, 2 bad
//! usage or bad input.

mod agent;
mod approvals;
mod assets;
mod briefs;
mod complete;
mod demo;
mod doctor;
mod generate;
mod inbox;
mod integrations;
pub use briefs::print_queue;
pub use output::print_json;
mod members;
mod output;
mod search;
mod sync;
mod tasks;
pub(crate) use output::outln;

use crate::config::{Config, default_home};
use crate::model::brief::TransitionError;
use crate::model::input::InputError;
use crate::service::{Hub, NewHub};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "spoke",
    version,
    about = "Spoke: a terminal-native collaboration hub for distributed creative teams",
    long_about = "Spoke keeps a full local replica of your team's hub: briefs, members, assets, \
                  approvals. Every command works offline; changes queue and flow to the hub on sync.",
    after_help = "Start with `spoke --demo`, or `spoke init --name \"Studio\" --handle you --tz Europe/Lisbon`."
)]
pub struct Cli {
    /// Data folder holding the replica [default: $XDG_DATA_HOME/spoke]
    #[arg(long, global = true, env = "SPOKE_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Config file [default: $XDG_CONFIG_HOME/spoke/config.toml]
    #[arg(long, global = true, env = "SPOKE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print machine-readable JSON
    #[arg(long, global = true)]
    pub json: bool,

    /// Rebuild the materialized state from the stored ops before running
    #[arg(long, global = true)]
    pub rebuild_cache: bool,

    /// Start a relay in-process, seed a demo hub on it, join it and open the
    /// TUI (prints the queue when not on a terminal); --home keeps it
    #[arg(long)]
    pub demo: bool,

    /// With --demo: the team stays online but does nothing while you look
    #[arg(long, requires = "demo")]
    pub quiet: bool,

    /// TUI theme: default-dark, default-light, ansi16, or a user theme [default: default-dark]
    #[arg(long, global = true, value_name = "NAME")]
    pub theme: Option<String>,

    /// TUI keymap: default (vim-like), arrows, or a user keymap [default: default]
    #[arg(long, global = true, value_name = "NAME")]
    pub keymap: Option<String>,

    /// Colours the terminal can show [default: from COLORTERM/TERM; none when NO_COLOR is set]
    #[arg(long, global = true, value_name = "truecolor|256|16|mono")]
    pub color: Option<String>,

    /// How the UI draws images: auto, kitty, sixel, iterm2, halfblocks, none
    #[arg(long, global = true, value_name = "MODE", default_value = "auto")]
    pub graphics: String,

    /// Detail of the log file: error, warn, info, debug, trace, or directives like
    /// spoke::sync=debug [default: $RUST_LOG, else info]
    #[arg(long, global = true, value_name = "LEVEL", value_parser = crate::logging::parse_level)]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new hub in the data folder, with you as its first lead
    Init {
        /// The hub's name, e.g. "Studio North"
        #[arg(long)]
        name: String,
        /// Your handle: lowercase letters, digits, `.`, `_`, `-`
        #[arg(long)]
        handle: String,
        /// Your IANA time zone, e.g. Europe/Lisbon
        #[arg(long)]
        tz: String,
        /// Your display name [default: the handle]
        #[arg(long = "display-name")]
        display_name: Option<String>,
    },
    /// Members of the hub: people and agents
    #[command(subcommand)]
    Member(members::MemberCommand),
    /// Briefs: intake, triage, completeness checks
    #[command(subcommand)]
    Brief(briefs::BriefCommand),
    /// Join a hub on a relay; the hub's channel-to-skill table
    #[command(subcommand)]
    Hub(sync::HubCommand),
    /// Exchange ops with the hub: push pending, pull to the head
    Sync {
        /// Push and pull once, then exit (the default)
        #[arg(long, conflicts_with = "watch")]
        once: bool,
        /// Stay connected, reconnecting as needed, until interrupted
        #[arg(long)]
        watch: bool,
    },
    /// Hub, connection, cursor and pending ops of this replica
    Status,
    /// Keymaps for the terminal UI
    #[command(subcommand)]
    Keymap(KeymapCommand),
    /// Approval requests: every AI output and asset version waits for a human decision
    #[command(subcommand)]
    Approvals(approvals::ApprovalsCommand),
    /// The asset library: import, tags, near duplicates
    #[command(subcommand)]
    Asset(assets::AssetCommand),
    /// The hub's brand colours
    #[command(subcommand)]
    Brand(assets::BrandCommand),
    /// Chat with the team and the agent: threads, streamed answers, slash commands
    #[command(subcommand)]
    Chat(agent::ChatCommand),
    /// The agent as a worker: intake questions and assignment proposals while the team sleeps
    #[command(subcommand)]
    Agent(agent::AgentCommand),
    /// What waits on you: requests at your stage, changes to your briefs,
    /// mentions, questions for you
    Inbox(inbox::InboxArgs),
    /// Connectors to Jira, Asana and webhooks; the outbox and the pusher
    #[command(subcommand)]
    Integrations(integrations::IntegrationsCommand),
    /// Images for a brief through ComfyUI, governed by the brand: a run, or
    /// the workflow templates and the brand's presets
    Generate(generate::GenerateArgs),
    /// A brief's tasks: status, assignee, due date and tracker keys
    #[command(subcommand)]
    Task(tasks::TaskCommand),
    /// Search briefs, comments, chat, assets and the knowledge base
    Search(search::SearchArgs),
    /// The knowledge base: guidelines and case studies the team and the agent search
    #[command(subcommand)]
    Kb(search::KbCommand),
    /// The search index beside the replica
    #[command(subcommand)]
    Index(search::IndexCommand),
    /// Print an image (a file or an asset's latest version) to the terminal
    Preview {
        /// A file path or an asset id
        target: String,
        /// Width in terminal columns
        #[arg(long)]
        width: Option<u32>,
    },
    /// The hub's hash-chained audit log
    #[command(subcommand)]
    Audit(approvals::AuditCommand),
    /// Approve a request (the current stage, as you)
    Approve {
        id: String,
        /// Approve, asking for the changes in the comment
        #[arg(long)]
        with_changes: bool,
        #[arg(long)]
        comment: Option<String>,
        /// Of the versions a request offers (a generated batch), the one you
        /// approve; see `spoke approvals show ID`
        #[arg(long, value_name = "VERSION")]
        pick: Option<u32>,
    },
    /// Reject a request (a comment is required)
    Reject {
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Send the subject back with the changes you need (a comment is required)
    RequestChanges {
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Check paths, relay, token, model, embedder, search index and terminal: ok/warn/fail with fixes
    #[command(after_help = doctor::AFTER_HELP)]
    Doctor,
    /// Print a completion script: `source <(spoke completions bash)`, or save it where the shell looks
    #[command(
        after_help = "Ids of briefs, assets, approval requests and knowledge documents are completed \
                      from the replica (the --home on the line, SPOKE_HOME, or the default)."
    )]
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: complete::Shell,
    },
    /// Write man pages: spoke.1 to stdout, or spoke.1 and one per subcommand into --out
    Man {
        /// Folder for spoke.1, spoke-brief.1, ... (made if missing)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Ids for shell completion, one `ID<TAB>TITLE` a line (used by the completion scripts)
    #[command(name = "__complete", hide = true)]
    Complete {
        /// brief, asset, approval or kb
        kind: String,
        /// Only ids starting with this
        #[arg(default_value = "", allow_hyphen_values = true)]
        prefix: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeymapCommand {
    /// Report unknown actions, bad keys and conflicting bindings, with line numbers
    Check {
        /// A keymap file [default: the configured keymap]
        file: Option<PathBuf>,
    },
}

/// Runs the CLI and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    // Without a file log the program goes on; the TUI's screen never hears of it.
    if let Err(why) = crate::logging::init(cli.log_level.as_deref())
        && cli.command.is_some()
    {
        eprintln!("spoke: no log file: {why}");
    }
    let home = cli.home.clone();
    let outcome = crate::store::guard::catch(|| run(cli)).unwrap_or_else(|panic| {
        let place = home
            .map(|h| format!(" in {}", h.display()))
            .unwrap_or_default();
        Err(anyhow::anyhow!(
            "internal error: {panic}. If this repeats, the replica{place} may be damaged: \
             try --rebuild-cache, or restore it from a backup"
        ))
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if is_broken_pipe(&err) {
                // The reader went away (`spoke brief list | head`): not a failure.
                return ExitCode::SUCCESS;
            }
            eprintln!("spoke: {err:#}");
            ExitCode::from(exit_code_for(&err))
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// 2 for input the user can fix by typing something else, 1 otherwise.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    let bad_input = err.chain().any(|e| {
        e.is::<InputError>()
            || e.is::<TransitionError>()
            || matches!(
                e.downcast_ref::<crate::store::StoreError>(),
                Some(crate::store::StoreError::TooLarge { .. })
            )
    });
    if bad_input { 2 } else { 1 }
}

/// Resolved global settings shared by every command.
pub struct Ctx {
    pub home: PathBuf,
    pub config: Config,
    pub json: bool,
    pub rebuild_cache: bool,
    pub theme: Option<String>,
    pub keymap: Option<String>,
    pub color: Option<String>,
    pub graphics: String,
}

impl Ctx {
    /// TUI settings: flags win over config.toml, which wins over defaults.
    pub fn tui_options(&self, sync: bool) -> Result<crate::tui::run::TuiOptions> {
        let depth = match &self.color {
            Some(c) => crate::tui::theme::ColorDepth::parse(c)
                .map_err(|e| InputError::new(e.to_string()))?,
            None => crate::tui::theme::ColorDepth::detect(),
        };
        Ok(crate::tui::run::TuiOptions {
            home: self.home.clone(),
            theme: self
                .theme
                .clone()
                .or_else(|| self.config.theme.clone())
                .unwrap_or_else(|| "default-dark".into()),
            keymap: self
                .keymap
                .clone()
                .or_else(|| self.config.keymap.clone())
                .unwrap_or_else(|| "default".into()),
            depth,
            config_dir: crate::config::config_dir(),
            fallback_zone: self.config.timezone.clone(),
            sync,
            graphics: crate::tui::run::Graphics::parse(&self.graphics)?,
            search: self.config.search.clone(),
            agent: self.config.agent.clone(),
            opener: self.config.opener.clone(),
            notify: self.config.notify.clone(),
            generate: crate::generate::run::Settings {
                url: self.config.generate.url().to_owned(),
                stall: std::time::Duration::from_secs(self.config.generate.stall_secs()),
            },
        })
    }

    pub fn open_hub(&self) -> Result<Hub> {
        let hub = Hub::open(&self.home, self.config.timezone.as_deref())?;
        if self.rebuild_cache {
            let stats = hub
                .replica()
                .rebuild_cache()
                .context("rebuilding the materialized state")?;
            eprintln!(
                "rebuilt state from {} stored ops in {}",
                stats.applied,
                hub.replica().path().display()
            );
        }
        Ok(hub)
    }
}

fn run(cli: Cli) -> Result<()> {
    // These read the config themselves (a broken one is what doctor reports)
    // or do not need it at all.
    match &cli.command {
        Some(Command::Doctor) => return doctor::run(&cli),
        Some(Command::Completions { shell }) => return complete::completions(*shell),
        Some(Command::Man { out }) => return complete::man(out.as_deref(), cli.json),
        Some(Command::Complete { kind, prefix }) => {
            return complete::ids(cli.home.as_deref(), cli.config.as_deref(), kind, prefix);
        }
        _ => {}
    }
    let (config, _config_path) = Config::load(cli.config.as_deref())?;
    let home = match cli.home.clone().or_else(|| config.home.clone()) {
        Some(h) => h,
        None if cli.demo => std::env::temp_dir(),
        None => default_home().ok_or_else(|| {
            InputError::new("cannot tell where to keep data: set --home DIR or SPOKE_HOME")
        })?,
    };
    let ctx = Ctx {
        home,
        config,
        json: cli.json,
        rebuild_cache: cli.rebuild_cache,
        theme: cli.theme.clone(),
        keymap: cli.keymap.clone(),
        color: cli.color.clone(),
        graphics: cli.graphics.clone(),
    };
    if cli.demo {
        let explicit_home = cli.home.is_some();
        return demo::run_demo(&ctx, explicit_home, cli.quiet);
    }
    let Some(command) = cli.command else {
        let hub = ctx.open_hub()?;
        drop(hub);
        return crate::tui::run::run(ctx.tui_options(true)?);
    };
    match command {
        Command::Init {
            name,
            handle,
            tz,
            display_name,
        } => init(&ctx, &name, &handle, &tz, display_name.as_deref()),
        Command::Member(cmd) => members::run(&ctx, cmd),
        Command::Brief(cmd) => briefs::run(&ctx, cmd),
        Command::Hub(cmd) => sync::hub(&ctx, cmd),
        Command::Sync { once: _, watch } => sync::sync(&ctx, watch),
        Command::Status => sync::status(&ctx),
        Command::Keymap(KeymapCommand::Check { file }) => keymap_check(&ctx, file.as_deref()),
        Command::Approvals(cmd) => approvals::run(&ctx, cmd),
        Command::Audit(cmd) => approvals::audit(&ctx, cmd),
        Command::Asset(cmd) => assets::run(&ctx, cmd),
        Command::Brand(cmd) => assets::brand(&ctx, cmd),
        Command::Chat(cmd) => agent::chat(&ctx, cmd),
        Command::Agent(cmd) => agent::agent(&ctx, cmd),
        Command::Inbox(args) => inbox::inbox(&ctx, args),
        Command::Integrations(cmd) => integrations::integrations(&ctx, cmd),
        Command::Generate(cmd) => generate::run(&ctx, cmd),
        Command::Task(cmd) => tasks::task(&ctx, cmd),
        Command::Search(args) => search::search(&ctx, args),
        Command::Kb(cmd) => search::kb(&ctx, cmd),
        Command::Index(cmd) => search::index(&ctx, cmd),
        Command::Preview { target, width } => assets::preview(&ctx, &target, width),
        Command::Approve {
            id,
            with_changes,
            comment,
            pick,
        } => {
            let d = if with_changes {
                crate::model::approval::Decision::ApprovedWithChanges
            } else {
                crate::model::approval::Decision::Approved
            };
            approvals::decide_picking(&ctx, &id, d, comment.as_deref(), pick)
        }
        Command::Reject { id, comment } => approvals::decide(
            &ctx,
            &id,
            crate::model::approval::Decision::Rejected,
            comment.as_deref(),
        ),
        // Run above, before the config is read.
        Command::Doctor
        | Command::Completions { .. }
        | Command::Man { .. }
        | Command::Complete { .. } => Ok(()),
        Command::RequestChanges { id, comment } => approvals::decide(
            &ctx,
            &id,
            crate::model::approval::Decision::ChangesRequested,
            comment.as_deref(),
        ),
    }
}

fn init(ctx: &Ctx, name: &str, handle: &str, tz: &str, display: Option<&str>) -> Result<()> {
    let hub = Hub::init(
        &ctx.home,
        NewHub {
            name,
            handle,
            tz,
            display_name: display,
        },
    )?;
    if ctx.json {
        output::print_json(&serde_json::json!({
            "hub": hub.hub_id(),
            "name": hub.hub_name()?,
            "handle": handle,
            "replica": hub.replica().path(),
            "client_id": hub.meta().client_id.to_string(),
        }))
    } else {
        outln!(
            "Created hub \"{}\" ({}) in {}\nYou are @{handle} (lead, {tz}). Next: `spoke member add` or `spoke brief add --title ...`",
            hub.hub_name()?,
            hub.hub_id(),
            display_path(hub.replica().path())
        )?;
        Ok(())
    }
}

/// `spoke keymap check [FILE]`: problems as `FILE:LINE: message`, exit 1 if any.
fn keymap_check(ctx: &Ctx, file: Option<&Path>) -> Result<()> {
    let (label, text) = match file {
        Some(f) => (
            f.display().to_string(),
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?,
        ),
        None => {
            let name = ctx
                .keymap
                .clone()
                .or_else(|| ctx.config.keymap.clone())
                .unwrap_or_else(|| "default".into());
            let user =
                crate::config::config_dir().map(|d| d.join("keymaps").join(format!("{name}.toml")));
            match user.filter(|p| p.exists()) {
                Some(p) => (p.display().to_string(), std::fs::read_to_string(&p)?),
                None => {
                    let keymap = crate::tui::keymap::Keymap::load(&name, None)?;
                    outln!(
                        "keymap {} (shipped): {} bindings, no problems",
                        keymap.name(),
                        keymap.all_bindings().len()
                    )?;
                    return Ok(());
                }
            }
        }
    };
    let problems = crate::tui::keymap::check(&text);
    if ctx.json {
        let rows: Vec<_> = problems
            .iter()
            .map(|p| serde_json::json!({"file": label, "line": p.line, "message": p.message}))
            .collect();
        output::print_json(&rows)?;
    } else if problems.is_empty() {
        outln!("{label}: no problems")?;
    } else {
        for p in &problems {
            outln!("{label}:{}: {}", p.line, p.message)?;
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!("{} problem(s) in {label}", problems.len()))
    }
}

fn display_path(p: &Path) -> String {
    p.display().to_string()
}
