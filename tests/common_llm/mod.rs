//! A scripted model server for the provider, agent and embeddings tests: it
//! records each request and answers with a status, or with server-sent events
//! written in separate chunks (with pauses between them, so fragments really
//! arrive apart), and can stall or drop the connection mid-answer. Beside it,
//! what the chat dialects' tests share: settings, requests, streaming with
//! and without a cancel, and the checks on outcomes that are the same in
//! every dialect.

// Each test crate that includes this uses part of it.
#![allow(dead_code)]

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Response};
use axum::routing::post;
use serde_json::{Value, json};
use spoke::agent::provider::{
    ChatMessage, ChatRequest, Completion, Provider, ProviderError, ProviderSettings, StreamEvent,
    ToolCall, ToolChoice, ToolSpec,
};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The pause between two chunks of a streamed answer.
const BETWEEN_CHUNKS: Duration = Duration::from_millis(15);

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub body: Value,
    pub headers: HeaderMap,
    pub at: Instant,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// One step of a streamed answer.
#[derive(Debug, Clone)]
pub enum Part {
    /// Bytes written as one chunk.
    Chunk(String),
    /// A pause before the next step.
    Sleep(Duration),
    /// Drop the connection without finishing the answer.
    Abort,
}

/// What the server answers to one request.
pub struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    parts: Vec<Part>,
    /// A pause before the status line, as a server that is thinking.
    delay: Duration,
}

impl Reply {
    /// A 200 `text/event-stream` answer made of these steps.
    pub fn stream(parts: Vec<Part>) -> Reply {
        Reply {
            status: 200,
            headers: vec![("content-type", "text/event-stream".into())],
            parts,
            delay: Duration::ZERO,
        }
    }

    /// A streamed answer of these chunks, one after another.
    pub fn chunks(chunks: Vec<String>) -> Reply {
        Reply::stream(chunks.into_iter().map(Part::Chunk).collect())
    }

    /// A 200 JSON answer with this body.
    pub fn ok(body: &str) -> Reply {
        Reply::status(200, body)
    }

    /// A JSON answer with this status and body.
    pub fn status(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", "application/json".into())],
            parts: vec![Part::Chunk(body.to_owned())],
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// Decides the reply from the request's number (0 for the first) and its JSON body.
type Respond = dyn Fn(usize, &Value) -> Reply + Send + Sync;

#[derive(Clone)]
struct ServerState {
    seen: Arc<Mutex<Vec<Seen>>>,
    respond: Arc<Respond>,
}

pub struct FakeModelServer {
    /// Base URL up to `/v1`, as it goes in the settings.
    pub base_url: String,
    /// The one path it serves, after `/v1/`.
    path: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeModelServer {
    /// Serves `POST /v1/{path}` on 127.0.0.1 from a background thread with
    /// its own runtime (the providers block, so the tests are plain threads).
    pub fn start(
        path: &str,
        respond: impl Fn(usize, &Value) -> Reply + Send + Sync + 'static,
    ) -> FakeModelServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = ServerState {
            seen: seen.clone(),
            respond: Arc::new(respond),
        };
        let route = format!("/v1/{path}");
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = Router::new().route(&route, post(handle)).with_state(state);
                axum::serve(listener, app).await.unwrap();
            });
        });
        FakeModelServer {
            base_url: format!("http://127.0.0.1:{port}/v1"),
            path: path.to_owned(),
            seen,
        }
    }

    /// The full URL it serves, as errors name it.
    pub fn endpoint(&self) -> String {
        format!("{}/{}", self.base_url, self.path)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn handle(
    State(state): State<ServerState>,
    headers: HeaderMap,
    body: String,
) -> Response<Body> {
    let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let number = {
        let mut seen = state.seen.lock().unwrap();
        seen.push(Seen {
            body: json.clone(),
            headers,
            at: Instant::now(),
        });
        seen.len() - 1
    };
    let reply = (state.respond)(number, &json);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::builder().status(reply.status);
    for (name, value) in reply.headers {
        response = response.header(name, value);
    }
    let parts: VecDeque<Part> = reply.parts.into();
    let chunks = futures_util::stream::unfold((parts, true), |(mut parts, first)| async move {
        loop {
            match parts.pop_front()? {
                Part::Sleep(pause) => tokio::time::sleep(pause).await,
                Part::Chunk(text) => {
                    if !first {
                        tokio::time::sleep(BETWEEN_CHUNKS).await;
                    }
                    return Some((Ok(Bytes::from(text)), (parts, false)));
                }
                Part::Abort => {
                    // Let what came before leave the server's buffers first.
                    tokio::time::sleep(BETWEEN_CHUNKS * 4).await;
                    let error = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "abort");
                    return Some((Err(error), (VecDeque::new(), false)));
                }
            }
        }
    });
    response.body(Body::from_stream(chunks)).unwrap()
}

// ---------------------------------------------------------------------------
// Settings and requests
// ---------------------------------------------------------------------------

/// Settings for `model` on the server, with a 10 s idle timeout.
pub fn settings(server: &FakeModelServer, model: &str) -> ProviderSettings {
    let mut settings = ProviderSettings::new(server.base_url.clone(), model);
    settings.idle_timeout_secs = 10;
    settings
}

/// `settings` with an API key taken from the environment; returns the key.
pub fn settings_with_key(server: &FakeModelServer, model: &str) -> (ProviderSettings, String) {
    let (key_var, key) = key_variable();
    let mut settings = settings(server, model);
    settings.api_key_env = Some(key_var.to_owned());
    (settings, key)
}

/// The value of an environment variable that every test process has, to
/// stand in for an API key (setting variables is unsafe with threads).
pub fn key_variable() -> (&'static str, String) {
    let value = std::env::var("PATH").expect("PATH is set");
    ("PATH", value.trim().to_owned())
}

/// The URL of a real server for the tests that need one, from `variable`;
/// `None` (the test skips) when it is unset or empty, unless CI says the
/// servers must be there.
pub fn peer_url(variable: &str, example: &str) -> Option<String> {
    let url = std::env::var(variable).ok().filter(|u| !u.is_empty());
    if url.is_none() {
        assert!(
            std::env::var_os("SPOKE_REQUIRE_PEERS").is_none(),
            "SPOKE_REQUIRE_PEERS is set but {variable} is not"
        );
        eprintln!("skipped: set {variable} (e.g. {example}) to run");
    }
    url
}

/// A question with no history and no tools.
pub fn ask(text: &str) -> ChatRequest {
    ChatRequest {
        messages: vec![ChatMessage::user(text)],
        ..ChatRequest::default()
    }
}

pub fn assignment_tool() -> ToolSpec {
    ToolSpec {
        name: "propose_assignment".into(),
        description: "Propose who should take a brief".into(),
        parameters: json!({
            "type": "object",
            "properties": {
                "brief_id": {"type": "string"},
                "handle": {"type": "string"},
                "rationale": {"type": "string"},
            },
            "required": ["brief_id", "handle", "rationale"],
        }),
    }
}

/// A question with the assignment tool on offer.
pub fn ask_for_an_assignment() -> ChatRequest {
    ChatRequest {
        tools: vec![assignment_tool()],
        ..ask("Who should take B-17?")
    }
}

/// The arguments of a `propose_assignment` call that the servers stream.
pub const ASSIGNMENT_ARGUMENTS: &str =
    r#"{"brief_id": "B-17", "handle": "mara", "rationale": "She drew the \"winter\" series"}"#;

/// `ASSIGNMENT_ARGUMENTS` in the fragments they arrive in: split inside the
/// strings, including inside an escape.
pub fn assignment_fragments() -> Vec<&'static str> {
    let cuts = [14, 31, 60, 75];
    let mut pieces = Vec::new();
    let mut from = 0;
    for cut in cuts {
        pieces.push(&ASSIGNMENT_ARGUMENTS[from..cut]);
        from = cut;
    }
    pieces.push(&ASSIGNMENT_ARGUMENTS[from..]);
    pieces
}

/// The pieces of the streamed answer about the poster; the servers split one
/// more, `POSTER_LAST_PIECE`, across two writes.
pub const POSTER_PIECES: [&str; 6] = ["The ", "poster ", "is ", "due ", "Friday", "."];
pub const POSTER_LAST_PIECE: &str = " Really.";

// ---------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------

/// Streams `request`, returning the outcome and every event in order.
pub fn run(
    provider: &dyn Provider,
    request: &ChatRequest,
) -> (Result<Completion, ProviderError>, Vec<StreamEvent>) {
    let mut events = Vec::new();
    let outcome = provider.stream(request, &CancellationToken::new(), &mut |e| events.push(e));
    (outcome, events)
}

/// Streams `request` and cancels it from another thread after `after`;
/// asserts that the stream ends as cancelled within `limit`, and returns the
/// events that came before.
pub fn assert_cancelled_within(
    provider: &dyn Provider,
    request: &ChatRequest,
    after: Duration,
    limit: Duration,
) -> Vec<StreamEvent> {
    let cancel = CancellationToken::new();
    let canceller = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(after);
            cancel.cancel();
        })
    };
    let started = Instant::now();
    let mut events = Vec::new();
    let outcome = provider.stream(request, &cancel, &mut |e| events.push(e));
    let took = started.elapsed();
    canceller.join().unwrap();

    assert_cancelled(&outcome);
    assert!(took < limit, "took {took:?}");
    events
}

/// Sends `history` with the assignment tool once under each tool choice,
/// then a question with no tools; asserts each choice's wire form and that
/// the plain question names no tools and has the default `max_tokens`.
/// Returns the requests as the server saw them.
pub fn send_each_tool_choice(
    provider: &dyn Provider,
    server: &FakeModelServer,
    history: &[ChatMessage],
    choices: &[(ToolChoice, Value)],
) -> Vec<Seen> {
    for (choice, _) in choices {
        let request = ChatRequest {
            messages: history.to_vec(),
            tools: vec![assignment_tool()],
            tool_choice: choice.clone(),
            max_tokens: Some(200),
            temperature: None,
            response_schema: None,
        };
        run(provider, &request).0.unwrap();
    }
    run(provider, &ask("no tools")).0.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), choices.len() + 1);
    for (request, (_, wire)) in requests.iter().zip(choices) {
        assert_eq!(request.body["tool_choice"], *wire);
    }
    let plain = &requests[choices.len()].body;
    assert!(plain.get("tools").is_none() && plain.get("tool_choice").is_none());
    assert_eq!(plain["max_tokens"], 1024, "the configured default");
    requests
}

// ---------------------------------------------------------------------------
// What a stream brought
// ---------------------------------------------------------------------------

/// Text events joined, in order.
pub fn streamed_text(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Text(text) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// Argument fragments for call `index`, joined, in order.
pub fn streamed_arguments(events: &[StreamEvent], index: usize) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolCallArguments { index: i, fragment } if *i == index => {
                Some(fragment.as_str())
            }
            _ => None,
        })
        .collect()
}

/// `(index, id, name)` of each ToolCallStarted, in order.
pub fn started_calls(events: &[StreamEvent]) -> Vec<(usize, String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolCallStarted { index, id, name } => {
                Some((*index, id.clone(), name.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Every event was a piece of the poster answer, in the order sent, and the
/// completion joins them with no tool calls.
pub fn assert_poster_answer_in_order(events: &[StreamEvent], completion: &Completion) {
    let texts: Vec<&str> = events
        .iter()
        .map(|e| match e {
            StreamEvent::Text(text) => text.as_str(),
            other => panic!("only text was streamed, got {other:?}"),
        })
        .collect();
    let mut expected = POSTER_PIECES.to_vec();
    expected.push(POSTER_LAST_PIECE);
    assert_eq!(texts, expected);
    assert_eq!(completion.text, "The poster is due Friday. Really.");
    assert!(completion.tool_calls.is_empty());
}

/// One `propose_assignment` call with id `id` started at index 0, its
/// arguments streamed one event per fragment of `assignment_fragments`, and
/// the completion holds it as valid JSON.
pub fn assert_assignment_call_from_fragments(
    events: &[StreamEvent],
    completion: &Completion,
    id: &str,
) {
    let pieces = assignment_fragments();
    assert!(pieces.len() >= 3);
    assert_eq!(
        started_calls(events),
        vec![(0, id.into(), "propose_assignment".into())]
    );
    let fragments = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::ToolCallArguments { .. }))
        .count();
    assert_eq!(fragments, pieces.len(), "each fragment is its own event");
    assert_eq!(streamed_arguments(events, 0), ASSIGNMENT_ARGUMENTS);
    assert_eq!(completion.tool_calls.len(), 1);
    let call = &completion.tool_calls[0];
    assert_eq!(call.id, id);
    assert_eq!(call.name, "propose_assignment");
    let parsed: Value = serde_json::from_str(&call.arguments).unwrap();
    assert_eq!(parsed["rationale"], "She drew the \"winter\" series");
}

/// The calls, as `(id, name, arguments)`, started in order at indexes 0, 1,
/// ... and assembled in the completion.
pub fn assert_tool_calls(
    events: &[StreamEvent],
    completion: &Completion,
    calls: &[(&str, &str, &str)],
) {
    let started: Vec<(usize, String, String)> = calls
        .iter()
        .enumerate()
        .map(|(index, (id, name, _))| (index, (*id).to_owned(), (*name).to_owned()))
        .collect();
    assert_eq!(started_calls(events), started);
    let assembled: Vec<ToolCall> = calls
        .iter()
        .map(|(id, name, arguments)| ToolCall {
            id: (*id).into(),
            name: (*name).into(),
            arguments: (*arguments).into(),
        })
        .collect();
    assert_eq!(completion.tool_calls, assembled);
}

// ---------------------------------------------------------------------------
// Outcomes every dialect shares
// ---------------------------------------------------------------------------

pub fn assert_cancelled(outcome: &Result<Completion, ProviderError>) {
    assert!(
        matches!(outcome, Err(ProviderError::Cancelled)),
        "{outcome:?}"
    );
}

/// The stream was cut after `partial`; returns the cut's detail.
pub fn assert_stream_cut(outcome: Result<Completion, ProviderError>, partial: &str) -> String {
    match outcome {
        Err(ProviderError::StreamCut {
            partial: got,
            detail,
            ..
        }) => {
            assert_eq!(got, partial);
            detail
        }
        other => panic!("expected StreamCut, got {other:?}"),
    }
}

/// A question whose answer is cut after `partial`: a StreamCut holding the
/// partial text, that text streamed, and no retry since text was delivered.
pub fn assert_cut_after_text(provider: &dyn Provider, server: &FakeModelServer, partial: &str) {
    let (outcome, events) = run(provider, &ask("go on"));

    assert_stream_cut(outcome, partial);
    assert_eq!(streamed_text(&events), partial);
    assert_eq!(
        server.requests().len(),
        1,
        "text was delivered, so no retry"
    );
}

/// The stream held something that is not JSON (`garbage` is part of it),
/// and the error names what came and the endpoint, which ends in `path`.
pub fn assert_malformed(outcome: Result<Completion, ProviderError>, garbage: &str, path: &str) {
    match outcome {
        Err(ProviderError::Malformed { detail, url }) => {
            assert!(detail.contains("not JSON"), "{detail}");
            assert!(detail.contains(garbage), "names what came: {detail}");
            assert!(url.ends_with(path), "{url}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

/// A question to a server that answers 429 with `Retry-After: 1`, then
/// `answer`: one Retrying event first naming the 429, a second between the
/// two requests, and the answer streamed and returned.
pub fn assert_429_retried_after_a_second(
    provider: &dyn Provider,
    server: &FakeModelServer,
    answer: &str,
) {
    let (outcome, events) = run(provider, &ask("hi"));

    assert_eq!(outcome.unwrap().text, answer);
    match &events[0] {
        StreamEvent::Retrying {
            attempt,
            wait_ms,
            error,
        } => {
            assert_eq!(*attempt, 1);
            assert_eq!(*wait_ms, 1000, "Retry-After: 1 is honoured");
            assert!(error.contains("429"), "{error}");
        }
        other => panic!("expected a Retrying event first, got {other:?}"),
    }
    assert_eq!(streamed_text(&events), answer);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[1].at - requests[0].at >= Duration::from_millis(950));
}

/// A question to a server that refuses with `status` and a body mentioning
/// `reason`: the error says so without showing `key`, nothing was streamed
/// and the request was not retried.
pub fn assert_refused_once(
    provider: &dyn Provider,
    server: &FakeModelServer,
    key: &str,
    status: u16,
    reason: &str,
) {
    let (outcome, events) = run(provider, &ask("hi"));

    let error = outcome.unwrap_err();
    assert!(!error.to_string().contains(key), "the key never shows");
    match error {
        ProviderError::Http {
            status: got, body, ..
        } => {
            assert_eq!(got, status);
            assert!(body.contains(reason), "{body}");
        }
        other => panic!("expected Http {status}, got {other:?}"),
    }
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(server.requests().len(), 1);
}

/// Each of `asks` questions times out after the configured second of
/// silence, and none is retried.
pub fn assert_idle_timeouts(provider: &dyn Provider, server: &FakeModelServer, asks: usize) {
    for _ in 0..asks {
        let started = Instant::now();
        let (outcome, _) = run(provider, &ask("hello?"));
        let took = started.elapsed();
        assert!(
            matches!(outcome, Err(ProviderError::Timeout { secs: 1, .. })),
            "{outcome:?}"
        );
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(10),
            "took {took:?}"
        );
    }
    assert_eq!(server.requests().len(), asks, "timeouts are not retried");
}

/// One `data:` event of a chat completions stream.
pub fn event(delta: Value, finish: Option<&str>) -> String {
    let chunk = json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "scripted-1",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
    });
    format!("data: {chunk}\n\n")
}

/// A streamed text answer, a few words per chunk.
pub fn text_reply(text: &str) -> Reply {
    let mut chunks = vec![event(json!({"role": "assistant"}), None)];
    for word in text.split_inclusive(' ') {
        chunks.push(event(json!({"content": word}), None));
    }
    chunks.push(event(json!({}), Some("stop")));
    chunks.push("data: [DONE]\n\n".into());
    Reply::chunks(chunks)
}

// ---------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------

/// Runs one of the agent's tools on `hub` as a model's call would, made by
/// an OpenAI-compatible model named `model`.
pub fn run_tool(
    hub: &mut spoke::service::Hub,
    model: &str,
    call: &ToolCall,
) -> spoke::agent::tools::ToolOutcome {
    use spoke::agent::tools::{self, Sources, ToolContext};
    let mut sources = Sources::default();
    let mut ctx = ToolContext {
        hub,
        index: None,
        sources: &mut sources,
        now: jiff::Timestamp::now(),
        made_by: spoke::model::asset::Provenance::Ai {
            provider: "openai".into(),
            model: model.into(),
            prompt_sha256: String::new(),
        },
    };
    tools::run(&mut ctx, call)
}

/// A tool call named `name` with these JSON arguments.
pub fn tool_call(name: &str, arguments: Value) -> ToolCall {
    ToolCall {
        id: "c1".into(),
        name: name.into(),
        arguments: arguments.to_string(),
    }
}
