//! The OpenAI-compatible chat provider against a local server that speaks
//! the `/v1/chat/completions` streaming wire format: text and tool-call
//! assembly from fragments, retries, cuts, stalls, cancellation, timeouts and
//! the request body. One test talks to a real llama.cpp server when
//! `SPOKE_TEST_LLAMA_URL` is set.

mod common_llm;

use common_llm::{
    FakeModelServer, POSTER_LAST_PIECE, POSTER_PIECES, Part, Reply, ask, ask_for_an_assignment,
    assert_429_retried_after_a_second, assert_assignment_call_from_fragments, assert_cancelled,
    assert_cancelled_within, assert_cut_after_text, assert_idle_timeouts, assert_malformed,
    assert_poster_answer_in_order, assert_refused_once, assert_stream_cut, assert_tool_calls,
    assignment_fragments, assignment_tool, peer_url, run, send_each_tool_choice, settings,
    settings_with_key, started_calls, streamed_arguments, streamed_text,
};
use serde_json::{Value, json};
use spoke::agent::provider::openai::OpenAiProvider;
use spoke::agent::provider::{
    ChatMessage, ChatRequest, Completion, Provider, ProviderError, ProviderSettings, StreamEvent,
    ToolCall, ToolChoice,
};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The model the settings name; the server answers as `gpt-test-2025`.
const MODEL: &str = "gpt-test";

// ---------------------------------------------------------------------------
// The wire format
// ---------------------------------------------------------------------------

/// One `data:` event of a chat completions stream, as OpenAI frames it.
fn chunk(choice: Value) -> String {
    let body = json!({
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "gpt-test-2025",
        "choices": [choice],
    });
    format!("data: {body}\n\n")
}

fn role_chunk() -> String {
    chunk(json!({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}))
}

fn text_chunk(text: &str) -> String {
    chunk(json!({"index": 0, "delta": {"content": text}, "finish_reason": null}))
}

fn tool_chunk(calls: Value) -> String {
    chunk(json!({"index": 0, "delta": {"tool_calls": calls}, "finish_reason": null}))
}

fn finish_chunk(reason: &str) -> String {
    chunk(json!({"index": 0, "delta": {}, "finish_reason": reason}))
}

fn usage_chunk(prompt: u64, completion: u64) -> String {
    let body = json!({
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "gpt-test-2025",
        "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    });
    format!("data: {body}\n\n")
}

fn done() -> String {
    "data: [DONE]\n\n".to_owned()
}

/// A whole streamed text answer.
fn text_answer(pieces: &[&str]) -> Vec<String> {
    let mut chunks = vec![role_chunk()];
    chunks.extend(pieces.iter().map(|p| text_chunk(p)));
    chunks.push(finish_chunk("stop"));
    chunks.push(done());
    chunks
}

/// Serves `POST /v1/chat/completions`, answering as `respond` decides.
fn serve(respond: impl Fn(usize, &Value) -> Reply + Send + Sync + 'static) -> FakeModelServer {
    FakeModelServer::start("chat/completions", respond)
}

/// The provider for `server` with the test settings.
fn provider(server: &FakeModelServer) -> OpenAiProvider {
    OpenAiProvider::new(&settings(server, MODEL)).unwrap()
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn streamed_text_arrives_in_order_and_assembles() {
    let mut chunks = text_answer(&POSTER_PIECES);
    // One event split across two writes still reads as one.
    let split = text_chunk(POSTER_LAST_PIECE);
    let (head, tail) = split.split_at(split.len() / 2);
    chunks.insert(POSTER_PIECES.len() + 1, tail.to_owned());
    chunks.insert(POSTER_PIECES.len() + 1, head.to_owned());
    chunks.insert(chunks.len() - 1, usage_chunk(12, 7));
    let server = serve(move |_, _| Reply::chunks(chunks.clone()));
    let provider = provider(&server);
    let (outcome, events) = run(&provider, &ask("When is the poster due?"));
    let completion = outcome.unwrap();

    assert_poster_answer_in_order(&events, &completion);
    assert_eq!(completion.finish_reason.as_deref(), Some("stop"));
    assert_eq!(completion.model, "gpt-test-2025");
    let usage = completion.usage.unwrap();
    assert_eq!((usage.input_tokens, usage.output_tokens), (12, 7));
    assert_eq!(provider.name(), "openai");
    assert_eq!(provider.model(), "gpt-test");
}

#[test]
fn tool_call_fragments_across_chunks_assemble_to_valid_json() {
    let mut chunks = vec![
        role_chunk(),
        tool_chunk(json!([{
            "index": 0, "id": "call_abc", "type": "function",
            "function": {"name": "propose_assignment", "arguments": ""},
        }])),
    ];
    for piece in assignment_fragments() {
        chunks.push(tool_chunk(
            json!([{"index": 0, "function": {"arguments": piece}}]),
        ));
    }
    chunks.push(finish_chunk("tool_calls"));
    chunks.push(done());
    let server = serve(move |_, _| Reply::chunks(chunks.clone()));
    let provider = provider(&server);
    let (outcome, events) = run(&provider, &ask_for_an_assignment());
    let completion = outcome.unwrap();

    assert_assignment_call_from_fragments(&events, &completion, "call_abc");
    assert_eq!(completion.finish_reason.as_deref(), Some("tool_calls"));
}

#[test]
fn two_tool_calls_in_one_turn() {
    let chunks = vec![
        role_chunk(),
        tool_chunk(json!([{
            "index": 0, "id": "call_a", "type": "function",
            "function": {"name": "search", "arguments": ""},
        }])),
        tool_chunk(json!([{
            "index": 1, "id": "call_b", "type": "function",
            "function": {"name": "list_briefs", "arguments": ""},
        }])),
        tool_chunk(json!([{"index": 0, "function": {"arguments": "{\"query\": \"pos"}}])),
        tool_chunk(json!([{"index": 1, "function": {"arguments": "{\"status\":"}}])),
        tool_chunk(json!([
            {"index": 1, "function": {"arguments": " \"open\"}"}},
            {"index": 0, "function": {"arguments": "ter\"}"}},
        ])),
        finish_chunk("tool_calls"),
        done(),
    ];
    let server = serve(move |_, _| Reply::chunks(chunks.clone()));
    let provider = provider(&server);
    let (outcome, events) = run(&provider, &ask("Find the poster and open briefs"));
    let completion = outcome.unwrap();

    assert_tool_calls(
        &events,
        &completion,
        &[
            ("call_a", "search", r#"{"query": "poster"}"#),
            ("call_b", "list_briefs", r#"{"status": "open"}"#),
        ],
    );
}

#[test]
fn llama_cpp_style_tool_calls_without_index_or_in_one_chunk_assemble() {
    // One call whole in one chunk with no index, then one whose id comes only
    // in its first fragment, also without index.
    let chunks = vec![
        role_chunk(),
        tool_chunk(json!([{
            "id": "call_whole", "type": "function",
            "function": {"name": "search", "arguments": "{\"query\":\"logo\"}"},
        }])),
        tool_chunk(json!([{
            "id": "call_parts", "type": "function",
            "function": {"name": "list_briefs", "arguments": "{\"sta"},
        }])),
        tool_chunk(json!([{"function": {"arguments": "tus\":\"open\"}"}}])),
        finish_chunk("tool_calls"),
        done(),
    ];
    let server = serve(move |_, _| Reply::chunks(chunks.clone()));
    let provider = provider(&server);
    let (outcome, events) = run(&provider, &ask("logo?"));
    let completion = outcome.unwrap();

    assert_tool_calls(
        &events,
        &completion,
        &[
            ("call_whole", "search", r#"{"query":"logo"}"#),
            ("call_parts", "list_briefs", r#"{"status":"open"}"#),
        ],
    );
}

#[test]
fn a_429_then_success_is_retried() {
    let server = serve(|number, _| match number {
        0 => Reply::status(429, r#"{"error":{"message":"Rate limit reached"}}"#)
            .header("retry-after", "1"),
        _ => Reply::chunks(text_answer(&["Hello", " again"])),
    });
    let provider = provider(&server);
    assert_429_retried_after_a_second(&provider, &server, "Hello again");
}

#[test]
fn a_stream_cut_midway_is_stream_cut_with_the_partial_text() {
    let server = serve(|_, _| {
        Reply::stream(vec![
            Part::Chunk(role_chunk()),
            Part::Chunk(text_chunk("Half an")),
            Part::Chunk(text_chunk(" answer")),
            Part::Abort,
        ])
    });
    assert_cut_after_text(&provider(&server), &server, "Half an answer");
}

#[test]
fn a_stream_that_ends_without_done_is_stream_cut() {
    let mut chunks = text_answer(&["All but", " the end"]);
    chunks.pop();
    let server = serve(move |_, _| Reply::chunks(chunks.clone()));
    let provider = provider(&server);
    let (outcome, _) = run(&provider, &ask("go on"));

    assert_stream_cut(outcome, "All but the end");
}

#[test]
fn an_interrupted_answer_without_finish_reason_is_stream_cut() {
    // llama-cpp-python ends an answer with a bare [DONE] when another request
    // interrupts it: retried while nothing was delivered, a cut after that.
    let server = serve(|number, _| match number {
        0 => Reply::chunks(vec![role_chunk(), done()]),
        _ => Reply::chunks(vec![role_chunk(), text_chunk("Half"), done()]),
    });
    let provider = provider(&server);
    let (outcome, events) = run(&provider, &ask("go on"));

    let detail = assert_stream_cut(outcome, "Half");
    assert!(detail.contains("finish_reason"), "{detail}");
    assert!(matches!(
        events[0],
        StreamEvent::Retrying { attempt: 1, .. }
    ));
    assert_eq!(streamed_text(&events), "Half");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn a_stalled_stream_is_cancelled_by_the_user() {
    let server = serve(|_, _| {
        Reply::stream(vec![
            Part::Chunk(role_chunk()),
            Part::Chunk(text_chunk("Thinking")),
            Part::Sleep(Duration::from_secs(30)),
            Part::Chunk(done()),
        ])
    });
    let mut settings = settings(&server, MODEL);
    settings.idle_timeout_secs = 60;
    let provider = OpenAiProvider::new(&settings).unwrap();
    let events = assert_cancelled_within(
        &provider,
        &ask("think hard"),
        Duration::from_millis(300),
        Duration::from_secs(10),
    );
    assert_eq!(streamed_text(&events), "Thinking");
}

#[test]
fn a_cancel_while_waiting_to_retry_returns_at_once() {
    let server = serve(|_, _| Reply::status(503, "busy").header("retry-after", "10"));
    let provider = provider(&server);
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let mut events = Vec::new();
    let outcome = provider.stream(&ask("hi"), &cancel, &mut |e| {
        if matches!(e, StreamEvent::Retrying { .. }) {
            cancel.cancel();
        }
        events.push(e);
    });

    assert_cancelled(&outcome);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn garbage_json_in_the_stream_is_malformed() {
    let server = serve(|_, _| {
        Reply::chunks(vec![
            role_chunk(),
            text_chunk("Fine so far"),
            "data: {\"choices\": [oops this is not json\n\n".to_owned(),
            done(),
        ])
    });
    let provider = provider(&server);
    let (outcome, _) = run(&provider, &ask("hi"));

    assert_malformed(outcome, "oops", "/v1/chat/completions");
}

#[test]
fn an_error_object_in_the_stream_is_reported_with_its_message() {
    let server = serve(|_, _| {
        Reply::chunks(vec![
            role_chunk(),
            text_chunk("Partly"),
            format!(
                "data: {}\n\n",
                json!({"error": {"message": "context window exceeded", "type": "server_error", "code": 500}})
            ),
        ])
    });
    let provider = provider(&server);
    let (outcome, _) = run(&provider, &ask("hi"));

    match outcome {
        Err(ProviderError::Http { status, body, .. }) => {
            assert_eq!(status, 500);
            assert!(body.contains("context window exceeded"), "{body}");
        }
        other => panic!("expected an error naming the server's message, got {other:?}"),
    }
    assert_eq!(
        server.requests().len(),
        1,
        "text was delivered, so no retry"
    );
}

#[test]
fn request_body_has_the_dialect_shape() {
    let server = serve(|_, _| Reply::chunks(text_answer(&["ok"])));
    let (mut settings, key) = settings_with_key(&server, MODEL);
    settings.temperature = Some(0.5);
    let provider = OpenAiProvider::new(&settings).unwrap();
    let debug = format!("{provider:?}");
    assert!(!debug.contains(&key), "the key never shows in debug output");

    let history = vec![
        ChatMessage::system("You coordinate a studio."),
        ChatMessage::user("Who takes B-17?"),
        ChatMessage {
            tool_calls: vec![ToolCall {
                id: "call_1".into(),
                name: "propose_assignment".into(),
                arguments: r#"{"brief_id":"B-17","handle":"mara","rationale":"fits"}"#.into(),
            }],
            ..ChatMessage::assistant("Let me propose that.")
        },
        ChatMessage::tool_result("call_1", "proposal P-3 is waiting for a decision"),
        ChatMessage::user("Thanks"),
    ];
    let choices = [
        (
            ToolChoice::Function("propose_assignment".into()),
            json!({"type": "function", "function": {"name": "propose_assignment"}}),
        ),
        (ToolChoice::Auto, json!("auto")),
        (ToolChoice::None, json!("none")),
        (ToolChoice::Required, json!("required")),
    ];
    let requests = send_each_tool_choice(&provider, &server, &history, &choices);

    let first = &requests[0];
    assert_eq!(
        first.header("authorization").as_deref(),
        Some(format!("Bearer {key}").as_str())
    );
    assert_eq!(
        first.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        first.body,
        json!({
            "model": "gpt-test",
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": 200,
            "temperature": 0.5,
            "messages": [
                {"role": "system", "content": "You coordinate a studio."},
                {"role": "user", "content": "Who takes B-17?"},
                {
                    "role": "assistant",
                    "content": "Let me propose that.",
                    "tool_calls": [{
                        "id": "call_1",
                        "type": "function",
                        "function": {
                            "name": "propose_assignment",
                            "arguments": r#"{"brief_id":"B-17","handle":"mara","rationale":"fits"}"#,
                        },
                    }],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "proposal P-3 is waiting for a decision"},
                {"role": "user", "content": "Thanks"},
            ],
            "tools": [{
                "type": "function",
                "function": {
                    "name": "propose_assignment",
                    "description": "Propose who should take a brief",
                    "parameters": assignment_tool().parameters,
                },
            }],
            "tool_choice": {"type": "function", "function": {"name": "propose_assignment"}},
        })
    );
}

#[test]
fn an_http_401_is_not_retried() {
    let server = serve(|_, _| {
        Reply::status(
            401,
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#,
        )
    });
    let (mut settings, key) = settings_with_key(&server, MODEL);
    settings.retries = 3;
    let provider = OpenAiProvider::new(&settings).unwrap();
    assert_refused_once(&provider, &server, &key, 401, "Incorrect API key");
}

#[test]
fn idle_timeout_fires_when_the_server_sends_nothing() {
    // First no status line at all, then a status line and a stalled body.
    let server = serve(|number, _| match number {
        0 => Reply::chunks(text_answer(&["late"])).after(Duration::from_secs(30)),
        _ => Reply::stream(vec![
            Part::Chunk(role_chunk()),
            Part::Sleep(Duration::from_secs(30)),
            Part::Chunk(done()),
        ]),
    });
    let mut settings = settings(&server, MODEL);
    settings.idle_timeout_secs = 1;
    let provider = OpenAiProvider::new(&settings).unwrap();
    assert_idle_timeouts(&provider, &server, 2);
}

#[test]
fn a_slow_answer_that_keeps_sending_outlives_the_idle_timeout() {
    let mut parts = vec![Part::Chunk(role_chunk())];
    for word in ["slow ", "but ", "steady"] {
        parts.push(Part::Sleep(Duration::from_millis(700)));
        parts.push(Part::Chunk(text_chunk(word)));
    }
    parts.push(Part::Chunk(finish_chunk("stop")));
    parts.push(Part::Chunk(done()));
    let server = serve(move |_, _| Reply::stream(parts.clone()));
    let mut settings = settings(&server, MODEL);
    settings.idle_timeout_secs = 1;
    let provider = OpenAiProvider::new(&settings).unwrap();
    let (outcome, _) = run(&provider, &ask("take your time"));

    assert_eq!(outcome.unwrap().text, "slow but steady");
}

#[test]
fn an_unreachable_server_is_retried_then_reported() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut settings = ProviderSettings::new(format!("http://127.0.0.1:{port}/v1"), "m");
    settings.retries = 1;
    let provider = OpenAiProvider::new(&settings).unwrap();
    let (outcome, events) = run(&provider, &ask("anyone?"));

    assert!(
        matches!(outcome, Err(ProviderError::Unreachable { .. })),
        "{outcome:?}"
    );
    assert_eq!(events.len(), 1);
    assert!(matches!(
        events[0],
        StreamEvent::Retrying { attempt: 1, .. }
    ));
}

// ---------------------------------------------------------------------------
// A real llama.cpp server
// ---------------------------------------------------------------------------

#[test]
fn real_llama_cpp_server_streams_and_makes_a_forced_tool_call() {
    let Some(url) = peer_url("SPOKE_TEST_LLAMA_URL", "http://127.0.0.1:18082/v1") else {
        return;
    };
    let model = std::env::var("SPOKE_TEST_LLAMA_MODEL").unwrap_or_else(|_| "smollm2".into());
    let mut settings = ProviderSettings::new(url, model);
    settings.idle_timeout_secs = 120;
    settings.temperature = Some(0.0);
    let provider = OpenAiProvider::new(&settings).unwrap();

    let plain = ChatRequest {
        max_tokens: Some(24),
        ..ask("Say hello to the studio in one short sentence.")
    };
    let (completion, events) = run_uninterrupted(&provider, &plain);
    assert!(
        events.iter().any(|e| matches!(e, StreamEvent::Text(_))),
        "{events:?}"
    );
    assert!(!completion.text.trim().is_empty());
    assert_eq!(streamed_text(&events), completion.text);

    let forced = ChatRequest {
        messages: vec![
            ChatMessage::system("You assign briefs to studio members."),
            ChatMessage::user("Brief B-17 is a winter poster. Assign it to mara."),
        ],
        tools: vec![assignment_tool()],
        tool_choice: ToolChoice::Function("propose_assignment".into()),
        max_tokens: Some(160),
        temperature: Some(0.0),
        response_schema: None,
    };
    let (completion, events) = run_uninterrupted(&provider, &forced);
    assert!(!completion.tool_calls.is_empty(), "{completion:?}");
    for call in &completion.tool_calls {
        assert_eq!(call.name, "propose_assignment");
        let arguments: Value = serde_json::from_str(&call.arguments)
            .unwrap_or_else(|e| panic!("arguments are not JSON ({e}): {}", call.arguments));
        assert!(arguments.is_object(), "{arguments}");
    }
    let started = started_calls(&events);
    assert_eq!(started.len(), completion.tool_calls.len());
    assert_eq!(
        streamed_arguments(&events, started[0].0),
        completion.tool_calls[0].arguments
    );
}

/// Streams `request` on a shared llama-cpp-python server, which cuts an
/// answer short when another client's request arrives: a cut is asked again.
fn run_uninterrupted(
    provider: &OpenAiProvider,
    request: &ChatRequest,
) -> (Completion, Vec<StreamEvent>) {
    for _ in 0..4 {
        match run(provider, request) {
            (Err(ProviderError::StreamCut { .. }), _) => continue,
            (outcome, events) => return (outcome.unwrap(), events),
        }
    }
    panic!("every answer was cut short; is another client hammering the server?");
}
