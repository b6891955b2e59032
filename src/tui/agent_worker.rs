//! The TUI's side of chat: the replica worker hands chat effects here. The
//! hub and the search index are shared behind mutexes so an answer can
//! stream on its own thread while the worker keeps committing and reloading;
//! the agent holds the hub only between streams.

use super::msg::{Effect, Msg};
use crate::agent::chat::{self, HubAccess, NO_MODEL};
use crate::agent::provider::Provider;
use crate::agent::slash::{self, SlashContext};
use crate::config::{AgentConfig, SearchConfig};
use crate::search::index::SearchIndex;
use crate::service::Hub;
use crate::service::threads::GENERAL_THREAD;
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use tokio_util::sync::CancellationToken;

/// Locks, recovering the data if a thread panicked while holding it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The hub and its index, shared by the replica worker and the agent.
#[derive(Clone)]
pub struct Shared {
    pub hub: Arc<Mutex<Hub>>,
    pub index: Arc<Mutex<Option<SearchIndex>>>,
    /// A build running on its own thread, while the replica takes commits.
    build: Arc<Mutex<Build>>,
}

#[derive(Default)]
struct Build {
    /// Passages the running build embeds (0: none running).
    embedding: usize,
    /// How the last background build failed, told once.
    failed: Option<String>,
}

/// Catching up on more passages than this runs on its own thread: the
/// index is out of service meanwhile, but the hub is not held.
const BACKGROUND_FROM: usize = 256;

impl HubAccess for Shared {
    fn with<R>(&self, f: impl FnOnce(&mut Hub, Option<&SearchIndex>) -> R) -> R {
        // Always the hub first, then the index.
        let mut hub = lock(&self.hub);
        let index = lock(&self.index);
        f(&mut hub, index.as_ref())
    }
}

impl Shared {
    pub fn new(hub: Hub) -> Shared {
        Shared {
            hub: Arc::new(Mutex::new(hub)),
            index: Arc::new(Mutex::new(None)),
            build: Arc::new(Mutex::new(Build::default())),
        }
    }

    /// Opens the index if needed and catches it up; errors are warnings.
    /// `hub` is the locked hub of [`Self::hub`]. A large catch-up (the first
    /// build of a big hub) moves to its own thread and this returns at
    /// once, saying so; the index answers again when it is done.
    pub fn refresh_index(&self, hub: &Hub, cfg: &SearchConfig) -> Result<Vec<String>, String> {
        let mut warnings = Vec::new();
        {
            let mut build = lock(&self.build);
            if build.embedding > 0 {
                return Ok(vec![format!(
                    "the search index is being built ({} passages); try again in a moment",
                    build.embedding
                )]);
            }
            if let Some(e) = build.failed.take() {
                warnings.push(format!("building the search index failed: {e}"));
            }
        }
        let mut slot = lock(&self.index);
        if slot.is_none() {
            *slot = Some(hub.open_search(cfg).map_err(|e| format!("{e:#}"))?);
        }
        let Some(index) = slot.as_mut() else {
            return Ok(warnings);
        };
        let plan = match index.plan_refresh(hub.replica()) {
            Ok(Ok(plan)) => plan,
            // Another process is updating the index: search it as it is.
            Ok(Err(_busy)) => return Ok(warnings),
            Err(e) => {
                warnings.push(format!("{e:#}; searching the index as it was"));
                return Ok(warnings);
            }
        };
        if plan.to_embed() < BACKGROUND_FROM {
            let applied = index
                .apply_refresh(plan, &mut |_, _| {})
                .and_then(|a| a.finish(hub.replica()));
            if let Err(e) = applied {
                warnings.push(format!("{e:#}; searching the index as it was"));
            }
            return Ok(warnings);
        }
        let Some(mut index) = slot.take() else {
            return Ok(warnings);
        };
        let embedding = plan.to_embed();
        lock(&self.build).embedding = embedding;
        let shared = self.clone();
        let spawned = std::thread::Builder::new()
            .name("search-build".into())
            .spawn(move || {
                let applied = index.apply_refresh(plan, &mut |_, _| {});
                // Hub first, then the index, as everywhere.
                let hub = lock(&shared.hub);
                let mut slot = lock(&shared.index);
                let failed = applied
                    .and_then(|a| a.finish(hub.replica()))
                    .err()
                    .map(|e| format!("{e:#}"));
                *slot = Some(index);
                let mut build = lock(&shared.build);
                build.embedding = 0;
                build.failed = failed;
            });
        if let Err(e) = spawned {
            lock(&self.build).embedding = 0;
            return Err(format!("cannot start the search index build: {e}"));
        }
        warnings.push(format!(
            "building the search index in the background ({embedding} passages); try again in a moment"
        ));
        Ok(warnings)
    }
}

/// Chat state the worker keeps between effects.
pub struct ChatWorker {
    pub shared: Shared,
    pub search: SearchConfig,
    provider: Option<Result<Arc<dyn Provider>, String>>,
    agent: Option<AgentConfig>,
    answering: Option<CancellationToken>,
}

impl ChatWorker {
    pub fn new(shared: Shared, search: SearchConfig, agent: Option<AgentConfig>) -> Self {
        ChatWorker {
            shared,
            search,
            provider: None,
            agent,
            answering: None,
        }
    }

    fn provider(&mut self) -> Option<Result<Arc<dyn Provider>, String>> {
        let cfg = self.agent.as_ref()?;
        if self.provider.is_none() {
            self.provider = Some(
                chat::provider_from_config(cfg)
                    .map(Arc::from)
                    .map_err(|e| format!("{e:#}")),
            );
        }
        self.provider.clone()
    }

    /// Handles a chat effect; returns false when the UI has gone.
    pub fn handle(&mut self, effect: Effect, tx: &mpsc::Sender<Msg>) -> bool {
        match effect {
            Effect::LoadChat(thread) => send_chat_data(&self.shared, thread.as_deref(), tx),
            Effect::CancelAnswer => {
                if let Some(token) = &self.answering {
                    token.cancel();
                }
                true
            }
            Effect::OpenSource { kind, id } => {
                let hub = lock(&self.shared.hub);
                let msg = match read_source(&hub, &kind, &id) {
                    Ok((title, text)) => Msg::Source { title, text },
                    Err(e) => Msg::Committed {
                        label: format!("cannot open {kind} {id}"),
                        error: Some(format!("{e:#}")),
                    },
                };
                tx.send(msg).is_ok()
            }
            Effect::ChatSend {
                thread,
                text,
                online,
            } => self.send(thread, text, tx, online),
            _ => true,
        }
    }

    fn send(
        &mut self,
        thread: String,
        text: String,
        tx: &mpsc::Sender<Msg>,
        online: Vec<String>,
    ) -> bool {
        if slash::is_command(&text) {
            let reply = {
                let mut hub = lock(&self.shared.hub);
                let _ = self.shared.refresh_index(&hub, &self.search);
                let index = lock(&self.shared.index);
                let online: std::collections::BTreeSet<String> = online.into_iter().collect();
                slash::run(
                    &mut hub,
                    &SlashContext {
                        index: index.as_ref(),
                        thread: &thread,
                        online: Some(&online),
                        now: jiff::Timestamp::now(),
                    },
                    &text,
                )
            };
            let notice = reply.unwrap_or_else(|e| format!("{e:#}"));
            return tx
                .send(Msg::ChatNotice {
                    thread,
                    text: notice,
                })
                .is_ok();
        }
        let provider = match self.provider() {
            None => {
                return tx
                    .send(Msg::ChatNotice {
                        thread,
                        text: NO_MODEL.to_owned(),
                    })
                    .is_ok();
            }
            Some(Err(e)) => {
                return tx
                    .send(Msg::ChatNotice {
                        thread,
                        text: format!("the agent's model is misconfigured: {e}"),
                    })
                    .is_ok();
            }
            Some(Ok(p)) => p,
        };
        // The question is posted with its answer, once the answer is
        // complete; until then the pane keeps it.
        {
            let hub = lock(&self.shared.hub);
            if let Err(e) = self.shared.refresh_index(&hub, &self.search) {
                let _ = tx.send(Msg::ChatStream(chat::ChatEvent::Retrying {
                    wait_ms: 0,
                    error: format!("answering without search: {e}"),
                }));
            }
        }
        let cancel = CancellationToken::new();
        self.answering = Some(cancel.clone());
        let shared = self.shared.clone();
        let done = tx.clone();
        let failed_thread = thread.clone();
        let spawned = std::thread::Builder::new()
            .name("agent".into())
            .spawn(move || {
                let events = done.clone();
                let outcome = chat::answer_with(
                    &shared,
                    provider.as_ref(),
                    &thread,
                    &text,
                    &cancel,
                    &mut |e| {
                        let _ = events.send(Msg::ChatStream(e));
                    },
                );
                let error = outcome.err().map(|e| format!("{e:#}"));
                if let Some(e) = &error {
                    let _ = done.send(Msg::Committed {
                        label: "your message was not posted (it is back in the input: send it again to retry)"
                            .to_owned(),
                        error: Some(e.clone()),
                    });
                }
                let _ = done.send(Msg::ChatDone { thread, error });
            });
        if let Err(e) = spawned {
            return tx
                .send(Msg::ChatNotice {
                    thread: failed_thread,
                    text: format!("could not start the agent: {e}"),
                })
                .is_ok();
        }
        true
    }
}

/// The thread list and one thread's messages (the hub-wide one by default).
fn send_chat_data(shared: &Shared, thread: Option<&str>, tx: &mpsc::Sender<Msg>) -> bool {
    let hub = lock(&shared.hub);
    let thread = thread.unwrap_or(GENERAL_THREAD).to_owned();
    let msg = match (hub.threads(), hub.thread_messages(&thread)) {
        (Ok(threads), Ok(messages)) => Msg::ChatData {
            threads,
            thread,
            messages,
        },
        (Err(e), _) | (_, Err(e)) => Msg::ChatNotice {
            thread,
            text: format!("reading the chat: {e:#}"),
        },
    };
    tx.send(msg).is_ok()
}

/// A cited source's title and full text.
fn read_source(hub: &Hub, kind: &str, id: &str) -> anyhow::Result<(String, String)> {
    match kind {
        "kb" => {
            let (doc, n) = id.split_once('#').unwrap_or((id, "0"));
            let doc = hub.knowledge_doc(doc)?;
            let n: u32 = n.parse().unwrap_or(0);
            let chunk = doc
                .chunks
                .iter()
                .find(|c| c.n == n)
                .ok_or_else(|| anyhow::anyhow!("{} has no chunk {n}", doc.id))?;
            Ok((chunk.location(&doc.title), chunk.text.clone()))
        }
        _ => Err(anyhow::anyhow!("no reader for {kind} sources")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::index::Query;
    use crate::service::{NewBrief, NewHub};
    use std::time::{Duration, Instant};

    fn briefs(hub: &mut Hub, from: usize, n: usize) {
        for i in from..from + n {
            hub.add_brief(NewBrief {
                title: format!("Campaign {i} for the harbour festival"),
                ..NewBrief::default()
            })
            .expect("brief");
        }
    }

    #[test]
    fn a_large_first_build_runs_beside_the_hub_and_the_index_then_catches_up() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut hub = Hub::init(
            dir.path(),
            NewHub {
                name: "Harbour",
                handle: "ana",
                tz: "Europe/Lisbon",
                display_name: None,
            },
        )
        .expect("init");
        briefs(&mut hub, 0, BACKGROUND_FROM + 40);
        let shared = Shared::new(hub);
        let cfg = SearchConfig::default();

        let warnings = {
            let hub = lock(&shared.hub);
            shared.refresh_index(&hub, &cfg).expect("refresh")
        };
        assert!(
            warnings.iter().any(|w| w.contains("in the background")),
            "{warnings:?}"
        );
        // The hub is free while the index builds: a commit goes through.
        let extra = lock(&shared.hub)
            .add_brief(NewBrief {
                title: "Lighthouse night tour poster".into(),
                ..NewBrief::default()
            })
            .expect("a commit during the build");

        let started = Instant::now();
        while lock(&shared.index).is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the build did not finish"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(lock(&shared.build).embedding, 0);

        // The next refresh is small and inline, and sees the commit made
        // during the build.
        let hub = lock(&shared.hub);
        let warnings = shared.refresh_index(&hub, &cfg).expect("refresh");
        assert!(warnings.is_empty(), "{warnings:?}");
        let index = lock(&shared.index);
        let ix = index.as_ref().expect("index back in place");
        let q = |text: &str| Query {
            text: text.into(),
            limit: 5,
            ..Query::default()
        };
        let hits = ix
            .search(hub.replica(), &q("lighthouse tour"))
            .expect("search");
        assert_eq!(
            hits.hits.first().map(|h| h.id.as_str()),
            Some(extra.id.as_str())
        );
        let hits = ix
            .search(hub.replica(), &q("campaign 17 harbour"))
            .expect("search");
        assert!(
            !hits.hits.is_empty(),
            "briefs from the background build are found"
        );
    }
}
