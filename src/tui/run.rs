//! The terminal session: set up and restore the terminal (also on panic and
//! SIGTERM), read keys on their own thread, run replica work and sync off
//! the render loop, and draw when something changed.

use super::agent_worker::{ChatWorker, Shared, lock};
use super::app::App;
use super::editor::{INPUT_POLL, InputGate, TermWork};
use super::keymap::Keymap;
use super::msg::{Effect, Msg, Snapshot};
use super::panes::assets::AssetFileJob;
use super::preview::{Job, Previews};
use super::theme::{ColorDepth, Theme};
use crate::model::thread::Message;
use crate::service::{BriefFilter, Hub};
use anyhow::{Context, Result};
use crossterm::event::{self, DisableBracketedPaste, EnableBracketedPaste, Event, KeyEventKind};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use jiff::Timestamp;
use ratatui::Terminal;
use ratatui::backend::{Backend, CrosstermBackend};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// What the TUI needs to start.
pub struct TuiOptions {
    pub home: PathBuf,
    pub theme: String,
    pub keymap: String,
    pub depth: ColorDepth,
    /// `~/.config/spoke`: user themes and keymaps live under it.
    pub config_dir: Option<PathBuf>,
    pub fallback_zone: Option<String>,
    /// Keep a sync session running while the TUI is open.
    pub sync: bool,
    /// How images are drawn.
    pub graphics: Graphics,
    /// The embedder behind global search.
    pub search: crate::config::SearchConfig,
    /// The agent's model, if configured.
    pub agent: Option<crate::config::AgentConfig>,
    /// The `opener` setting: the command that opens asset files.
    pub opener: Option<String>,
    /// `[notify]`: the bell and desktop notifications.
    pub notify: crate::config::NotifyConfig,
    /// Where ComfyUI runs, for generating drafts.
    pub generate: crate::generate::run::Settings,
}

/// `--graphics`: how previews are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Graphics {
    /// From the terminal's environment; half-blocks when it says nothing better.
    Auto,
    Kitty,
    Sixel,
    Iterm2,
    Halfblocks,
    None,
}

impl Graphics {
    pub fn parse(text: &str) -> Result<Graphics, crate::model::input::InputError> {
        Ok(match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Graphics::Auto,
            "kitty" => Graphics::Kitty,
            "sixel" => Graphics::Sixel,
            "iterm2" | "iterm" => Graphics::Iterm2,
            "halfblocks" | "half-blocks" | "blocks" => Graphics::Halfblocks,
            "none" | "off" => Graphics::None,
            other => {
                return Err(crate::model::input::InputError::new(format!(
                    "unknown --graphics `{other}`: use auto, kitty, sixel, iterm2, halfblocks or none"
                )));
            }
        })
    }

    /// Asks the terminal which graphics it draws (or takes the override).
    /// Call with raw mode on, before the input thread reads the terminal.
    pub fn choose(self) -> super::graphics::Chosen {
        use ratatui_image::picker::ProtocolType;
        let forced = match self {
            Graphics::None => {
                return super::graphics::Chosen {
                    picker: None,
                    why: "previews are off (--graphics none)".into(),
                };
            }
            Graphics::Auto => None,
            Graphics::Kitty => Some(ProtocolType::Kitty),
            Graphics::Sixel => Some(ProtocolType::Sixel),
            Graphics::Iterm2 => Some(ProtocolType::Iterm2),
            Graphics::Halfblocks => Some(ProtocolType::Halfblocks),
        };
        super::graphics::choose(forced)
    }
}

/// Restores the terminal however the TUI ends.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        DisableBracketedPaste,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// Whether this process has not tried to fetch `sha` before.
fn first_try(sha: &str) -> bool {
    static TRIED: std::sync::Mutex<Option<std::collections::HashSet<String>>> =
        std::sync::Mutex::new(None);
    let mut tried = TRIED.lock().unwrap_or_else(|e| e.into_inner());
    tried
        .get_or_insert_with(Default::default)
        .insert(sha.to_owned())
}

/// Loads the snapshot the screen shows.
pub fn snapshot(hub: &Hub) -> Result<Snapshot> {
    let status = crate::sync::status_of(hub.replica()).ok();
    let assets = hub.assets_newest_first()?;
    let home = hub
        .replica()
        .path()
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut texts = std::collections::BTreeMap::new();
    let meta = hub.meta();
    for version in assets.iter().flat_map(|a| &a.versions) {
        if version.mime.starts_with("text/") && version.size <= 16 * 1024 {
            let path = crate::sync::blobs::local_blob_path(&home, &version.blob_sha256);
            // A short text not fetched yet comes from the hub, tried once.
            if !path.exists() && meta.hub_url.is_some() && first_try(&version.blob_sha256) {
                let _ = crate::sync::blobs::fetch_blocking(&home, meta, &version.blob_sha256);
            }
            if let Ok(text) = std::fs::read_to_string(&path) {
                texts.insert(version.blob_sha256.clone(), text);
            }
        }
    }
    Ok(Snapshot {
        briefs: hub.briefs(&BriefFilter::default())?,
        approvals: hub.approvals(false)?,
        assets,
        texts,
        proposals: hub.proposals()?,
        tasks: hub.tasks()?,
        members: hub.members()?,
        me: hub.actor().ok().map(str::to_owned),
        zone: hub.zone(),
        hub_name: hub.hub_name()?,
        joined: status.as_ref().is_some_and(|s| s.url.is_some()),
        connected: status.as_ref().is_some_and(|s| s.connected),
        pending: status.as_ref().map(|s| s.pending).unwrap_or(0),
        cursor: status.as_ref().map(|s| s.cursor).unwrap_or(0),
        last_error: status.and_then(|s| s.last_error),
        inbox: hub.inbox().unwrap_or_default(),
        templates: hub
            .templates()
            .unwrap_or_default()
            .into_iter()
            .map(|t| super::msg::TemplateInfo {
                name: t.name,
                detail: match t.provider {
                    crate::generate::template::Provider::Comfyui => "ComfyUI".into(),
                    crate::generate::template::Provider::Midjourney => {
                        "Midjourney (cannot run here)".into()
                    }
                },
            })
            .collect(),
    })
}

/// Runs the TUI until the user quits.
pub fn run(opts: TuiOptions) -> Result<()> {
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return Err(crate::model::input::InputError::new(
            "the Spoke UI needs a terminal; in scripts use the subcommands (spoke --help)",
        )
        .into());
    }
    let theme_dir = opts.config_dir.as_ref().map(|d| d.join("themes"));
    let keymap_dir = opts.config_dir.as_ref().map(|d| d.join("keymaps"));
    let theme = Theme::load(&opts.theme, theme_dir.as_deref(), opts.depth)?;
    let keymap = Keymap::load(&opts.keymap, keymap_dir.as_deref())?;
    // Open once up front so a missing or damaged replica is reported before
    // the screen is taken over.
    let hub = Hub::open(&opts.home, opts.fallback_zone.as_deref())?;
    let first = snapshot(&hub)?;
    let hub_meta = Some(hub.meta().clone()).filter(|m| m.hub_url.is_some());
    // The replica is open once in this process: the workers share it.
    let shared = Shared::new(hub);

    let (tx, rx) = mpsc::channel::<Msg>();
    let worker = spawn_worker(
        shared.clone(),
        opts.search.clone(),
        opts.agent.clone(),
        opts.opener.clone(),
        opts.generate.clone(),
        tx.clone(),
    )?;
    let search = spawn_search(shared, opts.search.clone(), tx.clone())?;
    spawn_signals(tx.clone());
    let first_joined = first.joined;
    let sync_stop = if opts.sync && first.joined {
        Some(spawn_sync(
            opts.home.clone(),
            first.zone.clone(),
            tx.clone(),
        ))
    } else {
        None
    };

    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        default_hook(info);
    }));
    enable_raw_mode().context("switching the terminal to raw mode")?;
    let _guard = TerminalGuard;
    execute!(
        std::io::stdout(),
        EnterAlternateScreen,
        EnableBracketedPaste
    )
    .context("entering the alternate screen")?;
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    terminal.clear()?;
    // Asked before the input thread starts, so the terminal's replies are
    // read here and never taken for keys.
    let chosen = opts.graphics.choose();
    let gate = InputGate::default();
    let notifier = super::notify::Notifier::from_env(&opts.notify);
    spawn_input(tx.clone(), gate.clone());
    let previews = spawn_previews(opts.home.clone(), hub_meta, tx.clone())?;

    tracing::info!(target: "spoke::tui", home = %opts.home.display(), theme = %opts.theme, keymap = %opts.keymap, joined = first_joined, "TUI started");
    let mut app = App::new(keymap, Timestamp::now());
    app.panes.chat.model = opts
        .agent
        .as_ref()
        .map(|a| format!("{}/{}", a.provider, a.model));
    app.previews = Previews::new(chosen.picker);
    app.previews.why = chosen.why;
    let size = terminal.size()?;
    let mut first_msgs = vec![
        Msg::Resize {
            width: size.width,
            height: size.height,
        },
        Msg::Data(Box::new(first)),
    ];
    for msg in first_msgs.drain(..) {
        let _ = tx.send(msg);
    }
    let outcome = event_loop(
        &mut terminal,
        &mut app,
        &theme,
        &rx,
        &mut |effect| match effect {
            Effect::Search { seq, text } => {
                let _ = search.send((seq, text));
            }
            Effect::Preview(job) => {
                let _ = previews.send(job);
            }
            other => {
                let _ = worker.send(other);
            }
        },
        &mut |terminal, app, work| super::editor::run_work(terminal, app, &gate, &notifier, work),
    );
    if let Some(stop) = sync_stop {
        let _ = stop.send(true);
    }
    match &outcome {
        Ok(()) => tracing::info!(target: "spoke::tui", "TUI closed"),
        Err(e) => {
            tracing::error!(target: "spoke::tui", error = %format!("{e:#}"), "TUI stopped on an error")
        }
    }
    outcome
}

/// Draws, then updates on each message (taking everything already waiting
/// before drawing once more), until the app quits. Any backend will do:
/// the loop knows nothing of the process's own terminal, and work on the
/// terminal itself (the clipboard, `$EDITOR`, ctrl-z) goes to `terminal_work`
/// between frames.
pub fn event_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    theme: &Theme,
    rx: &mpsc::Receiver<Msg>,
    run: &mut dyn FnMut(Effect),
    terminal_work: &mut dyn FnMut(&mut Terminal<B>, &mut App, TermWork),
) -> Result<()>
where
    B::Error: Send + Sync + 'static,
{
    terminal.draw(|f| super::draw::draw(app, theme, f))?;
    let mut placed = app.placed_images();
    while !app.quit {
        let msg = match rx.recv_timeout(Duration::from_millis(1000)) {
            Ok(m) => m,
            Err(mpsc::RecvTimeoutError::Timeout) => Msg::Tick(Timestamp::now()),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut effects = app.update(msg);
        while let Ok(m) = rx.try_recv() {
            effects.extend(app.update(m));
        }
        for effect in effects {
            match effect {
                Effect::Quit => {}
                Effect::Terminal(work) => terminal_work(terminal, app, work),
                other => run(other),
            }
        }
        // Sixel and kitty images live apart from the text cells: text drawn
        // over them may leave pieces behind, so the screen is cleared
        // whenever the images on it change.
        let now = app.placed_images();
        if now != placed && app.previews.layered() && !placed.0.is_empty() {
            // Not `Terminal::clear`: it asks the terminal where the cursor
            // is, and the input thread would take the answer for a key.
            terminal
                .backend_mut()
                .clear_region(ratatui::backend::ClearType::All)?;
            // Forget the last frame so the next draw writes every cell.
            terminal.swap_buffers();
        }
        placed = now;
        terminal.draw(|f| super::draw::draw(app, theme, f))?;
    }
    Ok(())
}

/// Decodes and encodes previews on two threads of their own, so a large
/// decode never holds up an encode for the screen.
fn spawn_previews(
    home: PathBuf,
    hub: Option<crate::store::ReplicaMeta>,
    tx: mpsc::Sender<Msg>,
) -> Result<mpsc::Sender<Job>> {
    let (jtx, jrx) = mpsc::channel::<Job>();
    let (dtx, drx) = mpsc::channel::<Job>();
    let decode_tx = tx.clone();
    std::thread::Builder::new()
        .name("preview-decode".into())
        .spawn(move || {
            while let Ok(job) = drx.recv() {
                // A blob not fetched yet comes from the hub first.
                if let (Job::Decode(sha), Some(meta)) = (&job, &hub) {
                    let _ = crate::sync::blobs::fetch_blocking(&home, meta, sha);
                }
                let done = super::preview::run(&home, job);
                if decode_tx.send(Msg::Preview(done)).is_err() {
                    return;
                }
            }
        })?;
    std::thread::Builder::new()
        .name("preview-encode".into())
        .spawn(move || {
            while let Ok(job) = jrx.recv() {
                if matches!(job, Job::Decode(_)) {
                    if dtx.send(job).is_err() {
                        return;
                    }
                    continue;
                }
                let done = super::preview::run(Path::new("."), job);
                if tx.send(Msg::Preview(done)).is_err() {
                    return;
                }
            }
        })?;
    Ok(jtx)
}

/// How long typing must pause before a query runs.
const SEARCH_DEBOUNCE: Duration = Duration::from_millis(120);

/// The next request once the sender pauses: a newer one replaces one still
/// waiting. `None` when the sender is gone.
pub fn after_pause<T>(rx: &mpsc::Receiver<T>, pause: Duration) -> Option<T> {
    let mut latest = rx.recv().ok()?;
    loop {
        match rx.recv_timeout(pause) {
            Ok(newer) => latest = newer,
            Err(mpsc::RecvTimeoutError::Timeout) => return Some(latest),
            Err(mpsc::RecvTimeoutError::Disconnected) => return Some(latest),
        }
    }
}

/// Searches on a thread of its own, debounced, so typing a query never
/// queues behind (or in front of) a commit on the replica worker.
fn spawn_search(
    shared: Shared,
    cfg: crate::config::SearchConfig,
    tx: mpsc::Sender<Msg>,
) -> Result<mpsc::Sender<(u64, String)>> {
    let (qtx, qrx) = mpsc::channel::<(u64, String)>();
    std::thread::Builder::new()
        .name("search".into())
        .spawn(move || {
            while let Some((seq, text)) = after_pause(&qrx, SEARCH_DEBOUNCE) {
                let outcome = {
                    let hub = lock(&shared.hub);
                    run_search(&hub, &shared, &cfg, &text)
                };
                if tx.send(Msg::SearchResults { seq, text, outcome }).is_err() {
                    return;
                }
            }
        })?;
    Ok(qtx)
}

/// The replica worker: brief edits, reloads and thread loads happen here; a
/// reload also follows any change made by sync or another process.
fn spawn_worker(
    shared: Shared,
    search: crate::config::SearchConfig,
    agent: Option<crate::config::AgentConfig>,
    opener: Option<String>,
    generate: crate::generate::run::Settings,
    tx: mpsc::Sender<Msg>,
) -> Result<mpsc::Sender<Effect>> {
    let (etx, erx) = mpsc::channel::<Effect>();
    std::thread::Builder::new()
        .name("replica".into())
        .spawn(move || {
            let (mut seen, mut refusals_seen) = {
                let hub = lock(&shared.hub);
                // Refusals already known when the UI opened are not news.
                (fingerprint(&hub), refused_ids(&hub))
            };
            let mut chat = ChatWorker::new(shared.clone(), search, agent);
            // The generation running, if any: its cancel token.
            let mut generating: Option<tokio_util::sync::CancellationToken> = None;
            // Briefs and threads with news that looking at them clears.
            let mut news = {
                let hub = lock(&shared.hub);
                hub.inbox().map(|i| seen_news(&i)).unwrap_or_default()
            };
            loop {
                let effect = match erx.recv_timeout(Duration::from_millis(300)) {
                    Ok(e) => Some(e),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                };
                // Looking at a brief's comments or a thread is seeing its news.
                let looked = match &effect {
                    Some(Effect::LoadThread(brief)) if news.contains(&format!("brief:{brief}")) => {
                        Some(lock(&shared.hub).mark_brief_seen(brief))
                    }
                    Some(Effect::LoadChat(Some(thread)))
                        if news.contains(&format!("thread:{thread}")) =>
                    {
                        Some(lock(&shared.hub).mark_thread_seen(thread))
                    }
                    _ => None,
                };
                match looked {
                    Some(Err(e)) => {
                        let _ = tx.send(Msg::Committed {
                            label: "marking the inbox seen".into(),
                            error: Some(format!("{e:#}")),
                        });
                    }
                    // The badges follow at once.
                    Some(Ok(())) => {
                        if let Ok(s) = snapshot(&lock(&shared.hub)) {
                            news = seen_news(&s.inbox);
                            let _ = tx.send(Msg::Data(Box::new(s)));
                        }
                    }
                    None => {}
                }
                if let Some(
                    e @ (Effect::LoadChat(_)
                    | Effect::ChatSend { .. }
                    | Effect::CancelAnswer
                    | Effect::OpenSource { .. }),
                ) = effect
                {
                    if !chat.handle(e, &tx) {
                        return;
                    }
                    continue;
                }
                let mut guard = lock(&shared.hub);
                let hub: &mut Hub = &mut guard;
                let mut reload = false;
                match effect {
                    Some(Effect::Briefs(edit)) => {
                        let edited = super::edits::apply(hub, &edit);
                        reload = true;
                        if tx.send(Msg::Edited(edited)).is_err() {
                            return;
                        }
                    }
                    Some(Effect::LoadThread(brief)) => {
                        let messages = load_thread(hub, &brief);
                        if tx.send(Msg::Thread { brief, messages }).is_err() {
                            return;
                        }
                    }
                    Some(Effect::Decide {
                        ids,
                        decision,
                        comment,
                    }) => {
                        let mut errors = Vec::new();
                        for id in &ids {
                            let outcome = match decision {
                                Some(d) => hub.decide(id, d, comment.as_deref()),
                                None => hub.revoke_decision(id),
                            };
                            if let Err(e) = outcome {
                                errors.push(format!("{e:#}"));
                            }
                        }
                        reload = true;
                        let what = match decision {
                            Some(d) => crate::service::approvals::decision_label(d),
                            None => "revoked".into(),
                        };
                        let label = format!("{what}: {} request(s)", ids.len() - errors.len());
                        let error = (!errors.is_empty()).then(|| errors.join("; "));
                        if tx.send(Msg::Committed { label, error }).is_err() {
                            return;
                        }
                    }
                    Some(Effect::Generate {
                        brief,
                        template,
                        prompt,
                        count,
                    }) => {
                        if generating.as_ref().is_some_and(|c| !c.is_cancelled()) {
                            let _ = tx.send(Msg::Committed {
                                label: "not started".into(),
                                error: Some(
                                    "a generation is already running; esc on the queue cancels it"
                                        .into(),
                                ),
                            });
                        } else {
                            let req = crate::generate::run::GenerateRequest {
                                brief,
                                template,
                                prompt,
                                count,
                                ..Default::default()
                            };
                            generating = start_generation(hub, &shared, req, &generate, &tx);
                        }
                    }
                    Some(Effect::CancelGenerate) => {
                        if let Some(cancel) = generating.take() {
                            cancel.cancel();
                        }
                    }
                    Some(Effect::Reload) => reload = true,
                    Some(Effect::AssetFile(job)) => asset_job(hub, job, opener.clone(), &tx),
                    // Searches and previews run on their own threads, and the
                    // terminal's work (the clipboard, the editor, notifications)
                    // on the render loop, never here.
                    Some(Effect::Search { .. } | Effect::Preview(_) | Effect::Terminal(_)) => {}
                    // Handled above.
                    Some(
                        Effect::LoadChat(_)
                        | Effect::ChatSend { .. }
                        | Effect::CancelAnswer
                        | Effect::OpenSource { .. },
                    ) => {}
                    Some(Effect::Quit) => return,
                    None => {}
                }
                let mut now = fingerprint(hub);
                if reload || now != seen {
                    // A change the hub refused (the background sync took it
                    // back): say so, with the rule.
                    let refused = hub.replica().refused().unwrap_or_default();
                    let fresh: Vec<_> = refused
                        .iter()
                        .filter(|r| !refusals_seen.contains(&r.op))
                        .collect();
                    if !fresh.is_empty() {
                        let why: Vec<String> = fresh.iter().map(|r| r.message.clone()).collect();
                        let _ = tx.send(Msg::Committed {
                            label: format!(
                                "the hub refused {} change(s) and they were taken back",
                                fresh.len()
                            ),
                            error: Some(why.join("; ")),
                        });
                        refusals_seen = refused.into_iter().map(|r| r.op).collect();
                    }
                    // New decisions may have closed requests whose effects are due.
                    if let Err(e) = hub.reconcile_approvals() {
                        let _ = tx.send(Msg::Committed {
                            label: "applying approved changes".into(),
                            error: Some(format!("{e:#}")),
                        });
                    }
                    now = fingerprint(hub);
                    seen = now;
                    match snapshot(hub) {
                        Ok(s) => {
                            news = seen_news(&s.inbox);
                            if tx.send(Msg::Data(Box::new(s))).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Msg::Committed {
                                label: "reading the replica".into(),
                                error: Some(format!("{e:#}")),
                            });
                        }
                    }
                }
            }
        })?;
    Ok(etx)
}

/// The first line of an error, for the status line.
fn first_line(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    text.lines().next().unwrap_or_default().to_owned()
}

/// Plans a generation here (under the replica's lock, no network), then
/// runs it on a thread of its own: progress and the end come back as
/// messages. Returns the token that cancels it, or `None` when the plan
/// failed (said already).
pub(super) fn start_generation(
    hub: &Hub,
    shared: &Shared,
    req: crate::generate::run::GenerateRequest,
    settings: &crate::generate::run::Settings,
    tx: &mpsc::Sender<Msg>,
) -> Option<tokio_util::sync::CancellationToken> {
    use crate::generate::run::{RunEvent, make_images, plan, record_images};
    let plan = match plan(hub, &req) {
        Ok(p) => p,
        Err(e) => {
            let _ = tx.send(Msg::Generated(Err(first_line(&e))));
            return None;
        }
    };
    let _ = tx.send(Msg::Generating(format!(
        "generating for {}: starting…",
        req.brief
    )));
    let cancel = tokio_util::sync::CancellationToken::new();
    let token = cancel.clone();
    let shared = shared.clone();
    let settings = settings.clone();
    let out = tx.clone();
    let spawned = std::thread::Builder::new()
        .name("generate".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = out.send(Msg::Generated(Err(format!(
                        "could not start the async runtime for generating: {e}"
                    ))));
                    return;
                }
            };
            let progress = out.clone();
            let brief = req.brief.clone();
            let mut on_event = move |e: RunEvent| {
                if let Some(line) = super::popup::generate::progress_line(&brief, &e) {
                    let _ = progress.send(Msg::Generating(line));
                }
            };
            // The replica stays free for edits while ComfyUI works; it is
            // locked only to record the drafts.
            let result = rt
                .block_on(make_images(&settings, &plan, &mut on_event, &cancel))
                .and_then(|images| record_images(&mut lock(&shared.hub), &plan, images));
            let msg = match result {
                Ok(out) => Ok(format!(
                    "{} AI draft{} for {} — approval {} waits for review",
                    out.versions.len(),
                    if out.versions.len() == 1 { "" } else { "s" },
                    req.brief,
                    out.approval
                )),
                Err(e) => Err(format!("generating for {}: {}", req.brief, first_line(&e))),
            };
            // Marks the run over, so the next one may start.
            cancel.cancel();
            // The drafts show once the worker sees the replica changed.
            let _ = out.send(Msg::Generated(msg));
        });
    match spawned {
        Ok(_) => Some(token),
        Err(e) => {
            let _ = tx.send(Msg::Generated(Err(format!(
                "could not start the generate thread: {e}"
            ))));
            None
        }
    }
}

/// `brief:ID` and `thread:ID` of the inbox items that seeing clears.
fn seen_news(inbox: &crate::service::inbox::Inbox) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for item in inbox.items.iter().filter(|i| i.kind.clears_when_seen()) {
        if let Some(brief) = &item.brief {
            out.insert(format!("brief:{brief}"));
        }
        if let Some(thread) = &item.thread {
            out.insert(format!("thread:{thread}"));
        }
    }
    out
}

/// Catches the index up with the replica, then searches it. A failing
/// embedder is a warning: the index as it was still answers.
fn run_search(
    hub: &Hub,
    shared: &Shared,
    cfg: &crate::config::SearchConfig,
    text: &str,
) -> Result<(Vec<crate::search::index::Hit>, Vec<String>), String> {
    let mut warnings = shared.refresh_index(hub, cfg)?;
    let index = lock(&shared.index);
    let Some(ix) = index.as_ref() else {
        // Being built on its own thread: say so instead of results.
        return Ok((Vec::new(), warnings));
    };
    let q = crate::search::index::Query {
        text: text.to_owned(),
        limit: 20,
        ..Default::default()
    };
    let results = ix.search(hub.replica(), &q).map_err(|e| format!("{e:#}"))?;
    warnings.extend(results.warnings);
    Ok((results.hits, warnings))
}

/// Cheap signs that the replica changed: cursor, pending count, next seq,
/// connection state.
fn fingerprint(hub: &Hub) -> (u64, u64, u64, bool, Option<String>) {
    let meta = hub.replica().meta().ok();
    let pending = hub.replica().pending_count().unwrap_or(0);
    match meta {
        Some(m) => (m.cursor, pending, m.next_seq, m.connected, m.last_error),
        None => (0, pending, 0, false, None),
    }
}

/// Ops the replica has recorded as refused by the hub.
fn refused_ids(hub: &Hub) -> std::collections::HashSet<String> {
    hub.replica()
        .refused()
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.op)
        .collect()
}

fn load_thread(hub: &Hub, brief: &str) -> Vec<Message> {
    hub.thread_messages(&crate::model::brief::thread_id_for_brief(brief))
        .unwrap_or_default()
}

/// Reads keys, pastes and resizes; waits at `gate` while another program
/// (the editor, the shell after ctrl-z) owns the terminal.
fn spawn_input(tx: mpsc::Sender<Msg>, gate: InputGate) {
    let _ = std::thread::Builder::new()
        .name("input".into())
        .spawn(move || {
            loop {
                gate.wait_open();
                match event::poll(INPUT_POLL) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(_) => return,
                }
                let msg = match event::read() {
                    Ok(Event::Key(k)) if k.kind != KeyEventKind::Release => Msg::Key(k),
                    Ok(Event::Paste(text)) => Msg::Paste(text),
                    Ok(Event::Resize(width, height)) => {
                        if let Some((w, h)) = super::graphics::cell_size_from_window() {
                            let _ = tx.send(Msg::CellSize {
                                width: w,
                                height: h,
                            });
                        }
                        Msg::Resize { width, height }
                    }
                    Ok(_) => continue,
                    Err(_) => return,
                };
                if tx.send(msg).is_err() {
                    return;
                }
            }
        });
}

/// SIGTERM and SIGINT quit cleanly (the guard restores the terminal).
fn spawn_signals(tx: mpsc::Sender<Msg>) {
    crate::interrupt::on_interrupt("signals", move || {
        let _ = tx.send(Msg::Action(super::Action::Quit));
    });
}

/// A background `sync --watch` for the replica; stops when told. Other
/// members' presence is forwarded to the app.
fn spawn_sync(
    home: PathBuf,
    zone: String,
    tx: mpsc::Sender<Msg>,
) -> tokio::sync::watch::Sender<bool> {
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let _ = std::thread::Builder::new()
        .name("sync".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
            else {
                return;
            };
            let presence = spoke_relay::proto::Presence {
                member: String::new(),
                status: spoke_relay::proto::PresenceStatus::Online,
                tz: Some(zone),
                viewing: None,
            };
            let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel();
            rt.spawn(async move {
                while let Some(p) = prx.recv().await {
                    if tx.send(Msg::Presence(p)).is_err() {
                        return;
                    }
                }
            });
            // Errors land in the replica's last_error, which the status bar shows.
            let _ = rt.block_on(crate::sync::watch(
                &home,
                stop,
                Some(presence),
                Some(ptx),
                |_| {},
            ));
        });
    stop_tx
}

/// Opens or saves an asset's file: the blob is found here (under the
/// replica's lock), then fetched, copied and opened on a thread of its own
/// so a slow download never holds up edits. The outcome goes to the
/// status line.
fn asset_job(hub: &Hub, job: AssetFileJob, opener: Option<String>, tx: &mpsc::Sender<Msg>) {
    let (AssetFileJob::Open { asset } | AssetFileJob::Save { asset, .. }) = &job;
    let failed = format!("could not get the file of asset {asset}");
    let file = match hub.asset_file(asset, None) {
        Ok(f) => f,
        Err(e) => {
            let _ = tx.send(Msg::Committed {
                label: failed,
                error: Some(format!("{e:#}")),
            });
            return;
        }
    };
    let home = hub.home();
    let meta = hub.meta().clone();
    let tx = tx.clone();
    let _ = std::thread::Builder::new()
        .name("asset-file".into())
        .spawn(move || {
            let msg = match run_asset_job(&home, &meta, &file, &job, opener.as_deref(), &tx) {
                Ok(label) => Msg::Committed { label, error: None },
                Err(e) => Msg::Committed {
                    label: failed,
                    error: Some(format!("{e:#}")),
                },
            };
            let _ = tx.send(msg);
        });
}

fn run_asset_job(
    home: &Path,
    meta: &crate::store::ReplicaMeta,
    file: &crate::service::assets::AssetFile,
    job: &AssetFileJob,
    opener: Option<&str>,
    tx: &mpsc::Sender<Msg>,
) -> Result<String> {
    use crate::service::assets::{Opened, asset_blob, cache_copy, open_file, over_ssh, save_copy};
    let blob = asset_blob(home, meta, file)?;
    match job {
        AssetFileJob::Open { .. } => {
            let copy = cache_copy(&blob, file)?;
            match open_file(&copy, opener, over_ssh())? {
                Opened::Saved { why } => Ok(why),
                Opened::Started { command, mut child } => {
                    // Reaped here; a viewer that fails says so.
                    let tx = tx.clone();
                    let shown = copy.display().to_string();
                    let who = command.clone();
                    let _ = std::thread::Builder::new()
                        .name("opener".into())
                        .spawn(move || {
                            if let Ok(status) = child.wait()
                                && !status.success()
                            {
                                let _ = tx.send(Msg::Committed {
                                    label: format!("`{who}` could not open {shown}"),
                                    error: Some(format!(
                                        "it exited with {status}; set `opener` in config.toml to use another viewer"
                                    )),
                                });
                            }
                        });
                    Ok(format!(
                        "opened {} with {command} ({})",
                        file.asset,
                        copy.display()
                    ))
                }
            }
        }
        AssetFileJob::Save { path, .. } => {
            let dest = expand_home(path);
            let written = save_copy(&blob, &dest, &file.file_name, false)?;
            Ok(format!("saved {} to {}", file.asset, written.display()))
        }
    }
}

/// `~/x` as `$HOME/x`; anything else as typed.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ if path == "~" => {
            std::env::var_os("HOME").map_or_else(|| PathBuf::from(path), PathBuf::from)
        }
        _ => PathBuf::from(path),
    }
}
