//! `spoke chat ...` and `spoke agent run`.

use super::Ctx;
use super::output::{outln, print_json};
use crate::agent::chat::{self, ChatEvent, NO_MODEL};
use crate::agent::intake::{WorkerReport, work_once};
use crate::agent::provider::Provider;
use crate::agent::slash::{self, SlashContext};
use crate::model::InputError;
use crate::search::index::SearchIndex;
use crate::service::Hub;
use crate::service::threads::{GENERAL_THREAD, human_message};
use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::json;
use std::io::Write;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Subcommand)]
pub enum ChatCommand {
    /// Post a message; the agent answers (streamed). `/find`, `/who`, `/triage`,
    /// `/assign` work without a model
    Send {
        /// The message (several words are joined)
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
        /// `general` (the default) or `brief:ID`
        #[arg(long, default_value = GENERAL_THREAD)]
        thread: String,
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
        ChatCommand::Send { text, thread } => send(ctx, &text.join(" "), &thread),
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
                for (i, c) in m.citations.iter().enumerate() {
                    outln!(
                        "   [{}] {} {} {}",
                        i + 1,
                        c.kind,
                        c.id,
                        c.quote.as_deref().unwrap_or("")
                    )?;
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
    hub.post_message(&thread, human_message(text))?;
    let index = search_index(ctx, &hub);
    let cancel = CancellationToken::new();
    cancel_on_interrupt(cancel.clone());
    let streaming = !ctx.json;
    let mut stdout = std::io::stdout();
    let turn = chat::answer(
        &mut hub,
        index.as_ref(),
        provider.as_ref(),
        &thread,
        &cancel,
        &mut |event| match event {
            ChatEvent::Text(t) if streaming => {
                let _ = write!(stdout, "{t}");
                let _ = stdout.flush();
            }
            ChatEvent::Text(_) => {}
            ChatEvent::ToolStarted { name } => eprintln!("\n[{name}…]"),
            ChatEvent::ToolDone { name, summary } => eprintln!("[{name}: {summary}]"),
            ChatEvent::Retrying { wait_ms, error } => {
                eprintln!("[retrying in {:.1} s: {error}]", wait_ms as f64 / 1000.0)
            }
        },
    );
    cancel.cancel();
    let turn = turn.with_context(|| format!("the agent could not answer in {thread}"))?;
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
    for (i, c) in turn.message.citations.iter().enumerate() {
        outln!(
            "[{}] {} {} {}",
            i + 1,
            c.kind,
            c.id,
            c.quote.as_deref().unwrap_or("")
        )?;
    }
    if !turn.proposals.is_empty() {
        outln!(
            "{} proposal(s) wait for a lead's decision: spoke approvals list",
            turn.proposals.len()
        )?;
    }
    Ok(())
}

pub fn agent(ctx: &Ctx, cmd: AgentCommand) -> Result<()> {
    let AgentCommand::Run { once, interval } = cmd;
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
