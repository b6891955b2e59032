//! The search index with the real OpenAI-compatible embedder against a local
//! embeddings server that can be switched into failing: HTTP 500, too slow,
//! wrong vector length, garbage instead of JSON, or not there at all. Each
//! fault must leave the saved index answering (by words alone), keep the
//! change queued in the replica's search feed, and name the server and the
//! problem; once the server is healthy again the next refresh embeds just
//! what was missed.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::Response;
use axum::routing::post;
use serde_json::{Value, json};
use spoke::config::{OpenAiEmbedConfig, SearchConfig};
use spoke::model::{EntityKind, EntityRef};
use spoke::search::docs::DocKind;
use spoke::search::embed::local::{LOCAL_DIMS, LocalEmbedder};
use spoke::search::index::{Query, RefreshReport, SearchIndex, SearchResults, index_dir};
use spoke::service::{Hub, NewBrief, NewHub};
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every test's model name: the same name means the same embedder identity,
/// so an index built through one URL is reused through another.
const MODEL: &str = "fake-e5";
/// The vector length the server sends when it misbehaves.
const WRONG_DIMS: usize = 100;
/// How long the slow server takes; the embedder gives up after 1 s.
const SLOW_ANSWER: Duration = Duration::from_secs(4);

// ---------------------------------------------------------------------------
// A switchable embeddings server
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    /// Vectors from the local embedder, so results mean something.
    Ok,
    Http500,
    /// Answers correctly, but only after `SLOW_ANSWER`.
    Slow,
    /// Answers with `WRONG_DIMS`-long vectors.
    WrongDims,
    /// A 200 whose body is an HTML page, not JSON.
    Garbage,
}

impl Mode {
    fn from_u8(n: u8) -> Mode {
        [
            Mode::Ok,
            Mode::Http500,
            Mode::Slow,
            Mode::WrongDims,
            Mode::Garbage,
        ]
        .into_iter()
        .find(|m| *m as u8 == n)
        .unwrap_or(Mode::Ok)
    }
}

#[derive(Clone)]
struct ServerState {
    mode: Arc<AtomicU8>,
    /// Every input text received, in order.
    texts: Arc<Mutex<Vec<String>>>,
}

/// A port on 127.0.0.1 that is bound but not listening: connections to it
/// are refused, and no other socket can take it, so a server can be started
/// on it later without racing anyone for the port.
struct ReservedPort {
    socket: tokio::net::TcpSocket,
    port: u16,
}

impl ReservedPort {
    fn new() -> ReservedPort {
        let socket = tokio::net::TcpSocket::new_v4().expect("create a socket");
        socket
            .bind("127.0.0.1:0".parse().expect("address"))
            .expect("bind a port on 127.0.0.1");
        let port = socket.local_addr().expect("bound address").port();
        ReservedPort { socket, port }
    }

    /// The base URL, up to `/v1`, as it goes in the config.
    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Starts serving on this port from a background thread with its own
    /// runtime (the embedder blocks, so the tests are plain threads).
    fn serve(self) -> FakeServer {
        let state = ServerState {
            mode: Arc::new(AtomicU8::new(Mode::Ok as u8)),
            texts: Arc::new(Mutex::new(Vec::new())),
        };
        let base_url = self.base_url();
        let shared = state.clone();
        let socket = self.socket;
        let (listening_tx, listening) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            runtime.block_on(async move {
                let listener = socket.listen(64).expect("listen");
                let _ = listening_tx.send(());
                let app = Router::new()
                    .route("/v1/embeddings", post(answer))
                    .with_state(shared);
                axum::serve(listener, app).await.expect("serve");
            });
        });
        // Connections made before `listen` would be refused.
        listening
            .recv()
            .expect("the server thread starts listening");
        FakeServer { base_url, state }
    }
}

struct FakeServer {
    base_url: String,
    state: ServerState,
}

impl FakeServer {
    fn start() -> FakeServer {
        ReservedPort::new().serve()
    }

    fn set(&self, mode: Mode) {
        self.state.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// The address errors should name.
    fn endpoint(&self) -> String {
        format!("{}/embeddings", self.base_url)
    }

    /// The texts received since the last call.
    fn take_texts(&self) -> Vec<String> {
        std::mem::take(&mut *self.state.texts.lock().expect("texts"))
    }
}

async fn answer(State(state): State<ServerState>, body: String) -> Response<Body> {
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let texts: Vec<String> = request["input"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| t.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    state
        .texts
        .lock()
        .expect("texts")
        .extend(texts.iter().cloned());
    let local = LocalEmbedder::new();
    let vectors = |len: usize| -> Vec<Vec<f32>> {
        texts
            .iter()
            .map(|t| local.vector(t).into_iter().take(len).collect())
            .collect()
    };
    match Mode::from_u8(state.mode.load(Ordering::SeqCst)) {
        Mode::Ok => reply(200, openai_answer(vectors(LOCAL_DIMS))),
        Mode::Http500 => reply(
            500,
            json!({"error": {"message": "the model worker crashed"}}).to_string(),
        ),
        Mode::Slow => {
            tokio::time::sleep(SLOW_ANSWER).await;
            reply(200, openai_answer(vectors(LOCAL_DIMS)))
        }
        Mode::WrongDims => reply(200, openai_answer(vectors(WRONG_DIMS))),
        Mode::Garbage => reply(
            200,
            "<html><body><h1>502 Bad Gateway</h1></body></html>".into(),
        ),
    }
}

fn reply(status: u16, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("response")
}

/// An answer in OpenAI's format.
fn openai_answer(vectors: Vec<Vec<f32>>) -> String {
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(index, embedding)| json!({"object": "embedding", "index": index, "embedding": embedding}))
        .collect();
    json!({"object": "list", "data": data, "model": MODEL}).to_string()
}

// ---------------------------------------------------------------------------
// Hubs and indexes
// ---------------------------------------------------------------------------

/// `[search] embedder = "openai"` at `base_url`: one attempt, 1 s timeout.
fn openai_config(base_url: &str) -> SearchConfig {
    SearchConfig {
        embedder: Some("openai".into()),
        openai: Some(OpenAiEmbedConfig {
            url: base_url.to_owned(),
            model: MODEL.into(),
            api_key_env: None,
            dims: None,
            batch: None,
            timeout_secs: Some(1),
            retries: Some(0),
            query_prefix: None,
            passage_prefix: None,
            input_type: false,
        }),
    }
}

fn kb_fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/retrieval/kb")
        .join(name)
}

/// A hub with three briefs and the brand-voice guidelines.
fn hub_with_content(dir: &Path) -> Hub {
    let mut hub = Hub::init(
        dir,
        NewHub {
            name: "Fieldwork",
            handle: "ana",
            tz: "Europe/Lisbon",
            display_name: None,
        },
    )
    .expect("init");
    for (title, objective) in [
        (
            "Museum night campaign",
            "Fill the late opening with students",
        ),
        (
            "Autumn coffee subscription",
            "Win back lapsed subscribers before winter",
        ),
        (
            "Harbour festival posters",
            "Street posters for the summer harbour festival",
        ),
    ] {
        hub.add_brief(NewBrief {
            title: title.into(),
            objective: Some(objective.into()),
            ..NewBrief::default()
        })
        .expect("add brief");
    }
    let outcomes = hub
        .add_knowledge(&[kb_fixture("brand-voice.md")])
        .expect("kb add");
    assert!(
        matches!(
            outcomes.as_slice(),
            [spoke::service::knowledge::KbAddOutcome::Added { .. }]
        ),
        "{outcomes:?}"
    );
    hub
}

fn add_brief(hub: &mut Hub, title: &str) -> String {
    hub.add_brief(NewBrief {
        title: title.into(),
        ..NewBrief::default()
    })
    .expect("add brief")
    .id
}

fn refresh(hub: &Hub, index: &mut SearchIndex) -> RefreshReport {
    hub.refresh_search(index, &mut |_, _| {})
        .expect("refresh the index")
}

/// Refreshes expecting failure; returns the whole error chain on one line.
fn failed_refresh(hub: &Hub, index: &mut SearchIndex) -> String {
    let err = hub
        .refresh_search(index, &mut |_, _| {})
        .expect_err("the refresh should fail");
    format!("{err:#}")
}

fn search(hub: &Hub, index: &SearchIndex, text: &str) -> SearchResults {
    index
        .search(
            hub.replica(),
            &Query {
                text: text.into(),
                limit: 5,
                ..Query::default()
            },
        )
        .expect("search")
}

/// One of the search's warnings says `needle`.
fn assert_warns(results: &SearchResults, needle: &str) {
    assert!(
        results.warnings.iter().any(|w| w.contains(needle)),
        "no warning says {needle:?}: {:?}",
        results.warnings
    );
}

/// The generation the manifest on disk names (None when there is none).
fn saved_generation(dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(index_dir(dir).join("manifest.json")).ok()?;
    let manifest: Value = serde_json::from_str(&text).expect("manifest is JSON");
    manifest["generation"].as_u64()
}

fn is_queued(hub: &Hub, brief_id: &str) -> bool {
    let entity = EntityRef::new(EntityKind::Brief, brief_id);
    hub.replica()
        .search_feed()
        .expect("search feed")
        .dirty
        .iter()
        .any(|(e, _)| *e == entity)
}

/// The old documents still answer, by words alone, and say so; the brief
/// added during the fault answers by words too (its words were indexed and
/// saved; its vector is owed).
fn assert_documents_answer_by_words(hub: &Hub, index: &SearchIndex, new_title: &str) {
    let results = search(hub, index, "museum night");
    let first = results.hits.first().expect("the old brief is still found");
    assert_eq!(first.title, "Museum night campaign", "{:?}", results.hits);
    assert!(
        results.hits.iter().all(|h| h.vector_rank.is_none()),
        "no vector ranking without the embedder: {:?}",
        results.hits
    );
    assert_warns(&results, "word matches only");
    let results = search(hub, index, new_title);
    let first = results
        .hits
        .first()
        .expect("the new brief is found by words");
    assert_eq!(first.title, new_title, "{:?}", results.hits);
    assert!(first.vector_rank.is_none() && first.lexical_rank == Some(1));
}

/// A hub with content in `dir` and its index built through `server` while
/// the server is healthy, with what the build did.
fn built_through(server: &FakeServer, dir: &Path) -> (Hub, SearchIndex, RefreshReport) {
    let hub = hub_with_content(dir);
    let mut index = hub
        .open_search(&openai_config(&server.base_url))
        .expect("open the index");
    let built = refresh(&hub, &mut index);
    (hub, index, built)
}

/// After the server recovers: the brief is found first, through both rankings.
fn assert_found_with_vectors(hub: &Hub, index: &SearchIndex, title: &str, id: &str) {
    let results = search(hub, index, title);
    assert!(results.warnings.is_empty(), "{:?}", results.warnings);
    let first = results.hits.first().expect("a result");
    assert_eq!(
        (first.id.as_str(), first.kind),
        (id, DocKind::Brief),
        "{:?}",
        results.hits
    );
    assert!(
        first.vector_rank.is_some() && first.lexical_rank.is_some(),
        "{first:?}"
    );
}

/// Builds an index while the server is healthy, breaks the server with
/// `fault`, and checks what the brief promises: a failed refresh naming the
/// server and every one of `problem`, nothing saved, old documents found by
/// words, the change queued; then recovery embeds exactly the new brief.
fn fault_leaves_the_index_usable_and_the_change_queued(fault: Mode, problem: &[&str]) {
    let server = FakeServer::start();
    let dir = tempfile::tempdir().expect("tmp");
    let (mut hub, mut index, built) = built_through(&server, dir.path());
    assert!(built.full && built.embedded == index.len(), "{built:?}");
    assert!(index.len() > 3, "three briefs and some kb chunks");
    assert_eq!(index.embedder_id().dims, LOCAL_DIMS);
    let generation = index.generation();
    let docs = index.len();
    server.take_texts();

    server.set(fault);
    let title = "Lighthouse regatta sponsorship";
    let added = add_brief(&mut hub, title);
    let msg = failed_refresh(&hub, &mut index);
    assert!(
        msg.contains(&server.endpoint()),
        "the error names the server: {msg}"
    );
    for needle in problem {
        assert!(msg.contains(needle), "the error says `{needle}`: {msg}");
    }
    assert_eq!(index.generation(), generation + 1, "the words were saved");
    assert_eq!(saved_generation(dir.path()), Some(generation + 1));
    assert_eq!(index.len(), docs + 1);
    assert_documents_answer_by_words(&hub, &index, title);
    assert!(is_queued(&hub, &added), "the new brief waits in the feed");

    server.set(Mode::Ok);
    // Before the catch-up: the vectors speak again, and the brief whose
    // vector is owed still comes first for its own title, by its words.
    let results = search(&hub, &index, title);
    assert_eq!(
        results
            .hits
            .first()
            .map(|h| (h.title.as_str(), h.vector_rank)),
        Some((title, None)),
        "{:?}",
        results.hits
    );
    assert_warns(&results, "1 documents wait for their vectors");
    server.take_texts();
    let report = refresh(&hub, &mut index);
    assert!(
        !report.full && report.embedded == 1 && report.removed == 0,
        "{report:?}"
    );
    let sent = server.take_texts();
    assert!(
        sent.len() == 1 && sent[0].contains(title),
        "only the new brief is embedded: {sent:?}"
    );
    assert_eq!(index.len(), docs + 1);
    assert_eq!(index.generation(), generation + 2);
    assert_found_with_vectors(&hub, &index, title, &added);
    assert!(!is_queued(&hub, &added), "the feed is cleared");
}

// ---------------------------------------------------------------------------
// Faults on a running server
// ---------------------------------------------------------------------------
#[test]
fn server_500_leaves_the_index_usable_and_the_change_queued() {
    fault_leaves_the_index_usable_and_the_change_queued(
        Mode::Http500,
        &["HTTP 500", "the model worker crashed"],
    );
}

#[test]
fn slow_server_times_out_and_leaves_the_index_usable_and_the_change_queued() {
    fault_leaves_the_index_usable_and_the_change_queued(Mode::Slow, &["did not answer within 1 s"]);
}

#[test]
fn wrong_dimensions_are_refused_and_leave_the_index_usable_and_the_change_queued() {
    fault_leaves_the_index_usable_and_the_change_queued(
        Mode::WrongDims,
        &[
            &format!("have {WRONG_DIMS} dimensions"),
            &format!("{LOCAL_DIMS} were expected"),
        ],
    );
}

#[test]
fn garbage_answer_is_malformed_and_leaves_the_index_usable_and_the_change_queued() {
    fault_leaves_the_index_usable_and_the_change_queued(
        Mode::Garbage,
        &["malformed", "not JSON", "502 Bad Gateway"],
    );
}

#[test]
fn wrong_dimensions_error_suggests_a_command_that_exists() {
    let server = FakeServer::start();
    let dir = tempfile::tempdir().expect("tmp");
    let (mut hub, mut index, _) = built_through(&server, dir.path());
    server.set(Mode::WrongDims);
    add_brief(&mut hub, "Lighthouse regatta sponsorship");
    let msg = failed_refresh(&hub, &mut index);
    assert!(msg.contains("dimensions"), "{msg}");
    assert!(msg.contains("spoke index rebuild"), "{msg}");
}

// ---------------------------------------------------------------------------
// A server that is not there
// ---------------------------------------------------------------------------
#[test]
fn unreachable_server_with_the_same_model_reuses_the_index_and_queues_the_change() {
    let server = FakeServer::start();
    let dir = tempfile::tempdir().expect("tmp");
    let (mut hub, index, _) = built_through(&server, dir.path());
    let generation = index.generation();
    let docs = index.len();
    drop(index);

    // Same model through a dead address: the same index, not a rebuild.
    let down = ReservedPort::new();
    let mut index = hub
        .open_search(&openai_config(&down.base_url()))
        .expect("opening needs no server");
    assert_eq!(
        (index.generation(), index.len()),
        (generation, docs),
        "the saved index is reused"
    );
    let title = "Lighthouse regatta sponsorship";
    let added = add_brief(&mut hub, title);
    let msg = failed_refresh(&hub, &mut index);
    assert!(
        msg.contains(&format!("{}/embeddings", down.base_url())) && msg.contains("unreachable"),
        "{msg}"
    );
    assert!(
        !msg.contains("rebuil"),
        "a reused index is not rebuilt: {msg}"
    );
    assert_eq!(index.generation(), generation + 1, "the words were saved");
    assert_eq!(saved_generation(dir.path()), Some(generation + 1));
    assert_documents_answer_by_words(&hub, &index, title);
    assert!(is_queued(&hub, &added));
    drop(index);

    // The live server again: the same index catches up with the one change.
    server.take_texts();
    let mut index = hub
        .open_search(&openai_config(&server.base_url))
        .expect("open the index");
    let report = refresh(&hub, &mut index);
    assert!(
        !report.full && report.rebuilt_because.is_none() && report.embedded == 1,
        "{report:?}"
    );
    assert_eq!(server.take_texts().len(), 1, "only the new brief is sent");
    assert_eq!(index.len(), docs + 1);
    assert_found_with_vectors(&hub, &index, title, &added);
    assert!(!is_queued(&hub, &added));
}

#[test]
fn first_build_against_a_down_server_answers_by_words_and_a_later_build_embeds_all() {
    let dir = tempfile::tempdir().expect("tmp");
    let hub = hub_with_content(dir.path());
    let port = ReservedPort::new();
    let base_url = port.base_url();
    let mut index = hub
        .open_search(&openai_config(&base_url))
        .expect("opening needs no server");

    let msg = failed_refresh(&hub, &mut index);
    assert!(
        msg.contains(&format!("{base_url}/embeddings")) && msg.contains("unreachable"),
        "{msg}"
    );
    assert!(
        msg.contains("search index"),
        "says what was being done: {msg}"
    );
    // The words are indexed and saved: search answers by words, saying so.
    assert!(index.len() > 3);
    assert_eq!(saved_generation(dir.path()), Some(index.generation()));
    let results = search(&hub, &index, "tone of voice");
    let first = results.hits.first().expect("found by words");
    assert!(
        first.title.starts_with("brand-voice.md") && first.vector_rank.is_none(),
        "{:?}",
        results.hits
    );
    assert_warns(&results, "word matches only");
    let waiting = hub.replica().search_feed().expect("feed").dirty.len();
    assert!(waiting >= 4, "every entity still waits: {waiting}");
    // A new process sees the same words, and still owes the vectors.
    let reopened = hub.open_search(&openai_config(&base_url)).expect("reopen");
    assert_eq!(reopened.len(), index.len());
    drop(reopened);

    // The server comes up on the same address; the same index object builds.
    let server = port.serve();
    let report = refresh(&hub, &mut index);
    assert!(
        report.full && report.embedded == index.len() && index.len() > 3,
        "{report:?}"
    );
    assert_eq!(index.embedder_id().dims, LOCAL_DIMS);
    assert_eq!(saved_generation(dir.path()), Some(index.generation()));
    assert!(hub.replica().search_feed().expect("feed").dirty.is_empty());
    let results = search(&hub, &index, "tone of voice");
    assert!(results.warnings.is_empty(), "{:?}", results.warnings);
    let first = results.hits.first().expect("a result");
    assert!(
        first.kind == DocKind::Kb && first.title.starts_with("brand-voice.md"),
        "{:?}",
        results.hits
    );
    drop(server);
}

// ---------------------------------------------------------------------------
// Wrong dimensions met by an embedder that has not seen a good answer yet
// ---------------------------------------------------------------------------

/// A saved index reopened (a new process, or the TUI restarted) while the
/// server sends vectors of the wrong length: the embedder has not learned the
/// length yet, so the index's own check catches it.
fn reopened_while_server_sends_wrong_dimensions() -> (
    FakeServer,
    tempfile::TempDir,
    Hub,
    SearchIndex,
    String,
    String,
) {
    let server = FakeServer::start();
    let dir = tempfile::tempdir().expect("tmp");
    let mut hub = hub_with_content(dir.path());
    let config = openai_config(&server.base_url);
    let mut index = hub.open_search(&config).expect("open the index");
    refresh(&hub, &mut index);
    drop(index);

    server.set(Mode::WrongDims);
    let mut index = hub.open_search(&config).expect("reopen the index");
    let added = add_brief(&mut hub, "Lighthouse regatta sponsorship");
    let msg = failed_refresh(&hub, &mut index);
    (server, dir, hub, index, added, msg)
}

#[test]
fn wrong_dimensions_from_a_reopened_index_name_the_server() {
    let (server, _dir, _hub, _index, _added, msg) = reopened_while_server_sends_wrong_dimensions();
    assert!(
        msg.contains(&format!("have {WRONG_DIMS} dimensions"))
            && msg.contains(&format!("{LOCAL_DIMS} were expected")),
        "{msg}"
    );
    assert!(
        msg.contains(&server.endpoint()),
        "the error names the server: {msg}"
    );
}

#[test]
fn wrong_dimensions_from_a_reopened_index_do_not_stick_once_the_server_recovers() {
    let (server, _dir, hub, mut index, added, msg) = reopened_while_server_sends_wrong_dimensions();
    assert!(msg.contains("dimensions"), "{msg}");
    server.set(Mode::Ok);
    let report = hub
        .refresh_search(&mut index, &mut |_, _| {})
        .unwrap_or_else(|e| panic!("the healthy server's answers are refused: {e:#}"));
    assert_eq!(report.embedded, 1, "{report:?}");
    assert_found_with_vectors(&hub, &index, "Lighthouse regatta sponsorship", &added);
}

// ---------------------------------------------------------------------------
// Another process rebuilding the index
// ---------------------------------------------------------------------------

/// `spoke index rebuild` in a terminal while the TUI has the index open: the
/// rebuild takes the queued changes with it, so the open index must notice
/// the new generation on its next refresh and load it.
#[test]
fn a_rebuild_by_another_process_is_noticed_by_an_index_already_open() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut hub = hub_with_content(dir.path());
    let local = SearchConfig::default();
    let mut open = hub.open_search(&local).expect("open the index");
    refresh(&hub, &mut open);
    let mut other = hub.open_search(&local).expect("open it again");
    let title = "Lighthouse regatta sponsorship";
    let added = add_brief(&mut hub, title);

    other.clear("asked for with `spoke index rebuild`");
    refresh(&hub, &mut other);
    assert!(
        other.generation() > open.generation(),
        "the rebuild is a newer generation: {} vs {}",
        other.generation(),
        open.generation()
    );
    refresh(&hub, &mut open);
    let results = search(&hub, &open, title);
    assert_eq!(
        results.hits.first().map(|h| h.id.as_str()),
        Some(added.as_str()),
        "{:?}",
        results.hits
    );
}
