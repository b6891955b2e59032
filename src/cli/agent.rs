//! `spoke chat ...` and `spoke agent run`.

use super::Ctx;
use super::output::{outln, print_json};
use crate::agent::chat::{self, ChatEvent, NO_MODEL};
use crate::agent::intake::{WorkerReport, work_once};
use crate::agent::provider::Provider;
use crate::agent::slash::{self, SlashContext};
use crate::model::InputError;
use crate::model::thread::numbered;
use crate::search::index::SearchIndex;
use crate::service::Hub;
use crate::service::threads::GENERAL_THREAD;
use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::json;
use std::io::Write;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Subcommand)]
pub enum ChatCommand {
    /// Ask the agent; the question and its answer (streamed) are posted
    /// together, and nothing is posted when the model fails: the question is
    /// kept as a draft for --retry. `/find`, `/who`, `/triage`, `/assign`
    /// work without a model
    Send {
        /// The message (several words are joined)
        #[arg(required_unless_present = "retry", conflicts_with = "retry", num_args = 1..)]
        text: Vec<String>,
        /// `general` (the default) or `brief:ID`
        #[arg(long, default_value = GENERAL_THREAD)]
        thread: String,
        /// Send again the draft a failed send kept for this thread
        #[arg(long)]
        retry: bool,
    },
    /// A thread's messages, oldest first
    Show {
        #[arg(long, default_value = GENERAL_THREAD)]
        thread: String,
        /// Only the last N messages
        #[arg(long, default_value_t = 30)]
        last: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Work the queue as the agent: intake questions for new briefs, assignment
    /// proposals for ready ones; syncs before and after each pass when joined
    Run {
        /// One pass, then exit
        #[arg(long)]
        once: bool,
        /// Seconds between passes
        #[arg(long, default_value_t = 60)]
        interval: u64,
    },
    /// Score the configured model on fixed scenarios (intake, cited answers,
    /// tool calls, proposals) on a throwaway hub; your replica is not touched
    Eval,
}

/// `brief:PREFIX` resolved to the brief's full thread id; `general` as is.
fn resolve_thread(hub: &Hub, thread: &str) -> Result<String> {
    let thread = thread.trim();
    if let Some(id) = thread.strip_prefix("brief:") {
        return Ok(hub.brief(id)?.thread);
    }
    if thread.is_empty() || thread.contains(char::is_whitespace) {
        return Err(
            InputError::new(format!("bad thread `{thread}`: use general or brief:ID")).into(),
        );
    }
    Ok(thread.to_owned())
}

/// `spoke agent eval`: every scenario against the configured model, on a
/// hub in a temporary folder that is removed afterwards.
fn eval(ctx: &Ctx) -> Result<()> {
    let Some(provider) = provider(ctx)? else {
        return Err(crate::model::InputError::new(format!(
            "nothing to evaluate: {}",
            chat::NO_MODEL
        ))
        .into());
    };
    let cancel = CancellationToken::new();
    cancel_on_interrupt(cancel.clone());
    let dir = std::env::temp_dir().join(format!(
        "spoke-eval-{}-{}",
        std::process::id(),
        crate::model::hlc::wall_now_ms()
    ));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the evaluation hub in {}", dir.display()))?;
    let outcome = crate::agent::eval::run(provider.as_ref(), &dir, &cancel, |row| {
        eprintln!("{:<18} {}", row.scenario, row.outcome);
    });
    let _ = std::fs::remove_dir_all(&dir);
    let report = outcome?;
    if ctx.json {
        return print_json(&report);
    }
    outln!("{}", report.table())?;
    Ok(())
}

fn provider(ctx: &Ctx) -> Result<Option<Box<dyn Provider>>> {
    ctx.config
        .agent
        .as_ref()
        .map(chat::provider_from_config)
        .transpose()
}

/// The search index, caught up; a failure only costs grounding.
fn search_index(ctx: &Ctx, hub: &Hub) -> Option<SearchIndex> {
    match hub.open_search(&ctx.config.search) {
        Ok(mut index) => {
            if let Err(e) = hub.refresh_search(&mut index, &mut |_, _| {}) {
                eprintln!("spoke: warning: {e:#}; searching the index as it was");
            }
            Some(index)
        }
        Err(e) => {
            eprintln!("spoke: warning: {e:#}; answering without search");
            None
        }
    }
}

/// Cancels `token` on Ctrl-C (and SIGTERM) while a command runs.
fn cancel_on_interrupt(token: CancellationToken) {
    crate::interrupt::on_interrupt("interrupt", move || token.cancel());
}

pub fn chat(ctx: &Ctx, cmd: ChatCommand) -> Result<()> {
    match cmd {
        ChatCommand::Send {
            text,
            thread,
            retry: false,
        } => send(ctx, &text.join(" "), &thread),
        ChatCommand::Send {
            thread,
            retry: true,
            ..
        } => retry(ctx, &thread),
        ChatCommand::Show { thread, last } => {
            let hub = ctx.open_hub()?;
            let thread = resolve_thread(&hub, &thread)?;
            let messages = hub.thread_messages(&thread)?;
            let start = messages.len().saturating_sub(last);
            if ctx.json {
                return print_json(&messages[start..]);
            }
            if messages.is_empty() {
                outln!("No messages in {thread} yet.")?;
            }
            for m in &messages[start..] {
                let who = match m.provenance.label() {
                    Some(label) => format!("@{} · {label}", m.author),
                    None => format!("@{}", m.author),
                };
                outln!("── {who}")?;
                outln!("{}", m.body)?;
                for t in &m.tools {
                    outln!("   ▸ {}: {}", t.name, t.summary)?;
                }
                for (n, c) in numbered(&m.citations) {
                    outln!("   [{n}] {}", c.describe())?;
                }
            }
            Ok(())
        }
    }
}

fn send(ctx: &Ctx, text: &str, thread: &str) -> Result<()> {
    let mut hub = ctx.open_hub()?;
    let thread = resolve_thread(&hub, thread)?;
    if text.trim().is_empty() {
        return Err(
            InputError::new("say something: spoke chat send \"who is free tomorrow?\"").into(),
        );
    }
    if slash::is_command(text) {
        let index = search_index(ctx, &hub);
        let reply = slash::run(
            &mut hub,
            &SlashContext {
                index: index.as_ref(),
                thread: &thread,
                online: None,
                now: jiff::Timestamp::now(),
            },
            text,
        )?;
        if ctx.json {
            return print_json(&json!({"command": text.trim(), "reply": reply}));
        }
        outln!("{reply}")?;
        return Ok(());
    }
    let Some(provider) = provider(ctx)? else {
        return Err(InputError::new(NO_MODEL).into());
    };
    let index = search_index(ctx, &hub);
    let cancel = CancellationToken::new();
    cancel_on_interrupt(cancel.clone());
    let streaming = !ctx.json;
    let mut stdout = std::io::stdout();
    let mut progress = Progress::new();
    let turn = chat::answer(
        &mut hub,
        index.as_ref(),
        provider.as_ref(),
        &thread,
        text,
        &cancel,
        &mut |event| {
            if !matches!(event, ChatEvent::ToolCalling { .. }) {
                progress.end();
            }
            match event {
                ChatEvent::Text(t) if streaming => {
                    let _ = write!(stdout, "{t}");
                    let _ = stdout.flush();
                }
                ChatEvent::Text(_) => {}
                ChatEvent::ToolCalling { name, bytes } => progress.show(&name, bytes),
                ChatEvent::ToolStarted { name } => eprintln!("\n[{name}…]"),
                ChatEvent::ToolDone { name, summary } => eprintln!("[{name}: {summary}]"),
                ChatEvent::Retrying { wait_ms, error } => {
                    eprintln!("[retrying in {:.1} s: {error}]", wait_ms as f64 / 1000.0)
                }
            }
        },
    );
    progress.end();
    cancel.cancel();
    let turn = match turn {
        Ok(turn) => {
            // Sent: a draft kept for this thread is done with.
            drafts::forget(&ctx.home, &thread);
            turn
        }
        Err(e) => {
            if streaming {
                outln!()?;
            }
            let kept = match drafts::save(&ctx.home, &thread, text) {
                Ok(path) => format!(
                    "it is saved as a draft ({}); send it again with: spoke chat send --retry --thread {thread}",
                    path.display()
                ),
                Err(why) => format!("saving it as a draft failed too: {why:#}"),
            };
            return Err(e.context(format!(
                "the agent could not answer in {thread}, so your message was not posted; {kept}"
            )));
        }
    };
    if ctx.json {
        return print_json(&json!({
            "thread": thread,
            "answer": turn.answer,
            "model": turn.model,
            "provenance": turn.message.provenance,
            "citations": turn.message.citations,
            "tools": turn.message.tools,
            "proposals": turn.proposals,
        }));
    }
    outln!()?;
    for (n, c) in numbered(&turn.message.citations) {
        outln!("[{n}] {}", c.describe())?;
    }
    if !turn.proposals.is_empty() {
        outln!(
            "{} proposal(s) wait for a lead's decision: spoke approvals list",
            turn.proposals.len()
        )?;
    }
    Ok(())
}

/// `spoke chat send --retry`: the draft a failed send kept, sent again.
fn retry(ctx: &Ctx, thread: &str) -> Result<()> {
    let thread = resolve_thread(&ctx.open_hub()?, thread)?;
    let Some(text) = drafts::load(&ctx.home, &thread)? else {
        return Err(InputError::new(format!(
            "no unsent message is kept for {thread}: a draft is kept only when a send fails"
        ))
        .into());
    };
    if !ctx.json {
        eprintln!("[sending again: {}]", text.lines().next().unwrap_or(""));
    }
    send(ctx, &text, &thread)
}

/// The `calling tool… N bytes` line on stderr while a tool call streams:
/// rewritten in place on a terminal, one short line each otherwise.
struct Progress {
    terminal: bool,
    open: bool,
}

impl Progress {
    fn new() -> Progress {
        use std::io::IsTerminal;
        Progress {
            terminal: std::io::stderr().is_terminal(),
            open: false,
        }
    }

    fn show(&mut self, name: &str, bytes: usize) {
        let line = if bytes == 0 {
            format!("calling {name}…")
        } else {
            format!("calling {name}… {bytes} bytes")
        };
        if self.terminal {
            eprint!("\r\x1b[K[{line}]");
            self.open = true;
        } else {
            eprintln!("[{line}]");
        }
    }

    /// Ends a line left open on a terminal.
    fn end(&mut self) {
        if self.open {
            eprint!("\r\x1b[K");
            self.open = false;
        }
    }
}

/// Messages a failed send kept, one file per thread under the data folder.
mod drafts {
    use anyhow::{Context, Result};
    use std::path::{Path, PathBuf};

    fn path(home: &Path, thread: &str) -> PathBuf {
        let name: String = thread
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        home.join("drafts").join(format!("chat-{name}.txt"))
    }

    pub fn save(home: &Path, thread: &str, text: &str) -> Result<PathBuf> {
        let path = path(home, thread);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    pub fn load(home: &Path, thread: &str) -> Result<Option<String>> {
        let path = path(home, thread);
        match std::fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => Ok(Some(text)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading the draft {}", path.display())),
        }
    }

    pub fn forget(home: &Path, thread: &str) {
        let _ = std::fs::remove_file(path(home, thread));
    }
}

pub fn agent(ctx: &Ctx, cmd: AgentCommand) -> Result<()> {
    let (once, interval) = match cmd {
        AgentCommand::Run { once, interval } => (once, interval),
        AgentCommand::Eval => return eval(ctx),
    };
    let provider = provider(ctx)?;
    let cancel = CancellationToken::new();
    cancel_on_interrupt(cancel.clone());
    let joined = ctx.open_hub()?.meta().hub_url.is_some();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    {
        let hub = ctx.open_hub()?;
        if let Ok(Some(me)) = hub.me()
            && !me.has_role(crate::model::Role::Agent)
        {
            eprintln!(
                "spoke: note: @{} is not an agent member; the agent's proposals will be made as them. \
                 Give the agent its own token with `spoke-relay token issue --role agent` and its own --home.",
                me.handle
            );
        }
    }
    loop {
        if joined && let Err(e) = rt.block_on(crate::sync::sync_once(&ctx.home)) {
            eprintln!("spoke: sync failed: {e:#}; working on the local replica");
        }
        let report = {
            let mut hub = ctx.open_hub()?;
            let index = search_index(ctx, &hub);
            work_once(
                &mut hub,
                index.as_ref(),
                provider.as_deref(),
                &cancel,
                jiff::Timestamp::now(),
            )?
        };
        print_report(ctx, &report)?;
        // Approved generations run here when this machine has a ComfyUI.
        if ctx.config.generate.url.is_some() {
            match rt.block_on(super::generate::run_approved_generations(ctx, &cancel)) {
                Ok(results) => {
                    for r in results {
                        match r {
                            Ok(o) => outln!(
                                "generate  {}  {} AI draft(s) with template {}, waiting for approval {}",
                                o.asset,
                                o.versions.len(),
                                o.template,
                                o.approval
                            )?,
                            Err((p, e)) => {
                                eprintln!("spoke: approved generation {p} did not run: {e}")
                            }
                        }
                    }
                }
                Err(e) => eprintln!("spoke: approved generations: {e:#}"),
            }
        }
        if joined && let Err(e) = rt.block_on(crate::sync::sync_once(&ctx.home)) {
            eprintln!("spoke: sync failed: {e:#}; the changes stay queued");
        }
        if once || cancel.is_cancelled() {
            return Ok(());
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(interval.max(1));
        while std::time::Instant::now() < deadline {
            if cancel.is_cancelled() {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

fn print_report(ctx: &Ctx, report: &WorkerReport) -> Result<()> {
    if ctx.json {
        return print_json(report);
    }
    for o in &report.intake {
        let how = match &o.phrased_by {
            Some(m) => format!("phrased by {m}"),
            None => "from the intake rules".to_owned(),
        };
        outln!(
            "intake  {}  {} question(s) for the requester ({how})",
            o.brief,
            o.questions.len()
        )?;
        if let Some(e) = &o.model_error {
            outln!("        the model's phrasing was not used: {e}")?;
        }
    }
    for s in &report.suggestions {
        outln!(
            "assign  {}  proposed @{} (score {:.2}), waiting for approval {}",
            s.brief,
            s.handle,
            s.score,
            s.approval
        )?;
    }
    for e in &report.errors {
        outln!("error   {e}")?;
    }
    if report.intake.is_empty() && report.suggestions.is_empty() && report.errors.is_empty() {
        outln!("nothing to do")?;
    }
    Ok(())
}
