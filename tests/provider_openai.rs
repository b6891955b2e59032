//! The OpenAI-compatible chat provider against a local server that speaks
//! the `/v1/chat/completions` streaming wire format: text and tool-call
//! assembly from fragments, retries, cuts, stalls, cancellation, timeouts and
//! the request body. One test talks to a real llama.cpp server when
//! `SPOKE_TEST_LLAMA_URL` is set.

mod common_llm;

use common_llm::{
    FakeModelServer, Part, Reply, key_variable, started_calls, streamed_arguments, streamed_text,
};
use serde_json::{Value, json};
use spoke::agent::provider::openai::OpenAiProvider;
use spoke::agent::provider::{
    ChatMessage, ChatRequest, Completion, Provider, ProviderError, ProviderSettings, StreamEvent,
    ToolCall, ToolChoice, ToolSpec,
};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

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

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn settings(server: &FakeModelServer) -> ProviderSettings {
    let mut settings = ProviderSettings::new(server.base_url.clone(), "gpt-test");
    settings.idle_timeout_secs = 10;
    settings
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest {
        messages: vec![ChatMessage::user(text)],
        ..ChatRequest::default()
    }
}

/// Streams `request`, returning the outcome and every event in order.
fn run(
    provider: &OpenAiProvider,
    request: &ChatRequest,
) -> (Result<Completion, ProviderError>, Vec<StreamEvent>) {
    let mut events = Vec::new();
    let outcome = provider.stream(request, &CancellationToken::new(), &mut |e| events.push(e));
    (outcome, events)
}

fn assignment_tool() -> ToolSpec {
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

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn streamed_text_arrives_in_order_and_assembles() {
    let pieces = ["The ", "poster ", "is ", "due ", "Friday", "."];
    let mut chunks = text_answer(&pieces);
    // One event split across two writes still reads as one.
    let split = text_chunk(" Really.");
    let (head, tail) = split.split_at(split.len() / 2);
    chunks.insert(pieces.len() + 1, tail.to_owned());
    chunks.insert(pieces.len() + 1, head.to_owned());
    chunks.insert(chunks.len() - 1, usage_chunk(12, 7));
    let server = FakeModelServer::start("chat/completions", move |_, _| {
        Reply::chunks(chunks.clone())
    });
    let provider = OpenAiProvider::new(&settings(&server)).unwrap();
    let (outcome, events) = run(&provider, &ask("When is the poster due?"));
    let completion = outcome.unwrap();

    let texts: Vec<&str> = events
        .iter()
        .map(|e| match e {
            StreamEvent::Text(text) => text.as_str(),
            other => panic!("only text was streamed, got {other:?}"),
        })
        .collect();
    assert_eq!(
        texts,
        vec!["The ", "poster ", "is ", "due ", "Friday", ".", " Really."]
    );
    assert_eq!(completion.text, "The poster is due Friday. Really.");
    assert_eq!(completion.finish_reason.as_deref(), Some("stop"));
    assert_eq!(completion.model, "gpt-test-2025");
    let usage = completion.usage.unwrap();
    assert_eq!((usage.input_tokens, usage.output_tokens), (12, 7));
    assert!(completion.tool_calls.is_empty());
    assert_eq!(provider.name(), "openai");
    assert_eq!(provider.model(), "gpt-test");
}

#[test]
fn tool_call_fragments_across_chunks_assemble_to_valid_json() {
    let arguments =
        r#"{"brief_id": "B-17", "handle": "mara", "rationale": "She drew the \"winter\" series"}"#;
    // Split inside the strings, including inside an escape.
    let cuts = [14, 31, 60, 75];
    let mut pieces = Vec::new();
    let mut from = 0;
    for cut in cuts {
        pieces.push(&arguments[from..cut]);
        from = cut;
    }
    pieces.push(&arguments[from..]);
    let mut chunks = vec![
        role_chunk(),
        tool_chunk(json!([{
            "index": 0, "id": "call_abc", "type": "function",
            "function": {"name": "propose_assignment", "arguments": ""},
        }])),
    ];
    for piece in &pieces {
        chunks.push(tool_chunk(
            json!([{"index": 0, "function": {"arguments": piece}}]),
        ));
    }
    chunks.push(finish_chunk("tool_calls"));
    chunks.push(done());
    let server = FakeModelServer::start("chat/completions", move |_, _| {
        Reply::chunks(chunks.clone())
    });
    let provider = OpenAiProvider::new(&settings(&server)).unwrap();
    let request = ChatRequest {
        tools: vec![assignment_tool()],
        ..ask("Who should take B-17?")
    };
    let (outcome, events) = run(&provider, &request);
    let completion = outcome.unwrap();

    assert!(pieces.len() >= 3);
    assert_eq!(
        started_calls(&events),
        vec![(0, "call_abc".into(), "propose_assignment".into())]
    );
    let fragments = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::ToolCallArguments { .. }))
        .count();
    assert_eq!(fragments, pieces.len(), "each fragment is its own event");
    assert_eq!(streamed_arguments(&events, 0), arguments);
    assert_eq!(completion.tool_calls.len(), 1);
    let call = &completion.tool_calls[0];
    assert_eq!(call.id, "call_abc");
    assert_eq!(call.name, "propose_assignment");
    let parsed: Value = serde_json::from_str(&call.arguments).unwrap();
    assert_eq!(parsed["rationale"], "She drew the \"winter\" series");
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
    let server = FakeModelServer::start("chat/completions", move |_, _| {
        Reply::chunks(chunks.clone())
    });
    let provider = OpenAiProvider::new(&settings(&server)).unwrap();
    let (outcome, events) = run(&provider, &ask("Find the poster and open briefs"));
    let completion = outcome.unwrap();

    assert_eq!(
        started_calls(&events),
        vec![
            (0, "call_a".into(), "search".into()),
            (1, "call_b".into(), "list_briefs".into()),
        ]
    );
    assert_eq!(
        completion.tool_calls,
        vec![
            ToolCall {
                id: "call_a".into(),
                name: "search".into(),
                arguments: r#"{"query": "poster"}"#.into(),
            },
            ToolCall {
                id: "call_b".into(),
                name: "list_briefs".into(),
                arguments: r#"{"status": "open"}"#.into(),
            },
        ]
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
    let server = FakeModelServer::start("chat/completions", move |_, _| {
        Reply::chunks(chunks.clone())
    });
    let provider = OpenAiProvider::new(&settings(&server)).unwrap();
    let (outcome, events) = run(&provider, &ask("logo?"));
    let completion = outcome.unwrap();

    assert_eq!(
        started_calls(&events),
        vec![
            (0, "call_whole".into(), "search".into()),
            (1, "call_parts".into(), "list_briefs".into()),
        ]
    );
    let arguments: Vec<&str> = completion
        .tool_calls
        .iter()
        .map(|c| c.arguments.as_str())
        .collect();
    assert_eq!(
        arguments,
        vec![r#"{"query":"logo"}"#, r#"{"status":"open"}"#]
    );
}

#[test]
fn a_429_then_success_is_retried() {
    let server = FakeModelServer::start("chat/completions", |number, _| match number {
        0 => Reply::status(429, r#"{"error":{"message":"Rate limit reached"}}"#)
            .header("retry-after", "1"),
        _ => Reply::chunks(text_answer(&["Hello", " again"])),
    });
    let provider = OpenAiProvider::new(&settings(&server)).unwrap();
    let (outcome, events) = run(&provider, &ask("hi"));

    assert_eq!(outcome.unwrap().text, "Hello again");
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
    assert_eq!(streamed_text(&events), "Hello again");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[1].at - requests[0].at >= Duration::from_millis(950));
}

#[test]
fn a_stream_cut_midway_is_stream_cut_with_the_partial_text() {
    let server = FakeModelServer::start("chat/completions", |_, _| {
        Reply::stream(vec![
            Part::Chunk(role_chunk()),
            Part::Chunk(text_chunk("Half an")),
            Part::Chunk(text_chunk(" answer")),
            Part::Abort,
        ])
    });
    let provider = OpenAiProvider::new(&settings(&server)).unwrap();
    let (outcome, events) = run(&provider, &ask("go on"));

    match outcome {
        Err(ProviderError::StreamCut { partial, .. }) => assert_eq!(partial, "Half an answer"),
        other => panic!("expected StreamCut, got {other:?}"),
    }
    assert_eq!(streamed_text(&events), "Half an answer");
    assert_eq!(
        server.requests().len(),
        1,
        "text was delivered, so no retry"
    );
}

#[test]
fn a_stream_that_ends_without_done_is_stream_cut() {
    let mut chunks = text_answer(&["All but", " the end"]);
    chunks.pop();
    let server = FakeModelServer::start("chat/completions", move |_, _| {
        Reply::chunks(chunks.clone())
    });
    let provider = OpenAiProvider::new(&settings(&server)).unwrap();
    let (outcome, _) = run(&provider, &ask("go on"));

    match outcome {
        Err(ProviderError::StreamCut { partial, .. }) => assert_eq!(partial, "All but the end"),
        other => panic!("expected StreamCut, got {other:?}"),
    }
}

#[test]
fn an_interrupted_answer_without_finish_reason_is_stream_cut() {
    // llama-cpp-python ends an answer with a bare [DONE] when another request
    // interrupts it: retried while nothing was delivered, a cut after that.
    let server = FakeModelServer::start("chat/completions", |number, _| match number {
        0 => Reply::chunks(vec![role_chunk(), done()]),
        _ => Reply::chunks(vec![role_chunk(), text_chunk("Half"), done()]),
    });
    let provider = OpenAiProvider::new(&settings(&server)).unwrap();
    let (outcome, events) = run(&provider, &ask("go on"));

    match outcome {
        Err(ProviderError::StreamCut {
            partial, detail, ..
        }) => {
            assert_eq!(partial, "Half");
            assert!(detail.contains("finish_reason"), "{detail}");
        }
        other => panic!("expected StreamCut, got {other:?}"),
    }
    assert!(matches!(
        events[0],
        StreamEvent::Retrying { attempt: 1, .. }
    ));
    assert_eq!(streamed_text(&events), "Half");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn a_stalled_stream_is_cancelled_by_the_user() {
    let server = FakeModelServer::start("chat/completions", |_, _| {
        Reply::stream(vec![
            Part::Chunk(role_chunk()),
            Part::Chunk(text_chunk("Thinking")),
            Part::Sleep(Duration::from_secs(30)),
            Part::Chunk(done()),
        ])
    });
    let mut settings = settings(&server);
    settings.idle_timeout_secs = 60;
    let provider = OpenAiProvider::new(&settings).unwrap();
    let cancel = CancellationToken::new();
    let canceller = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            cancel.cancel();
        })
    };
    let started = Instant::now();
    let mut events = Vec::new();
    let outcome = provider.stream(&ask("think hard"), &cancel, &mut |e| events.push(e));
    let took = started.elapsed();
    canceller.join().unwrap();

    assert!(
        matches!(outcome, Err(ProviderError::Cancelled)),
        "{outcome:?}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(streamed_text(&events), "Thinking");
}

#[test]
fn a_cancel_while_waiting_to_retry_returns_at_once() {
    let server = FakeModelServer::start("chat/completions", |_, _| {
        Reply::status(503, "busy").header("retry-after", "10")
    });
    let provider = OpenAiProvider::new(&settings(&server)).unwrap();
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let mut events = Vec::new();
    let outcome = provider.stream(&ask("hi"), &cancel, &mut |e| {
        if matches!(e, StreamEvent::Retrying { .. }) {
            cancel.cancel();
        }
        events.push(e);
    });

    assert!(
        matches!(outcome, Err(ProviderError::Cancelled)),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn garbage_json_in_the_stream_is_malformed() {
    let server = FakeModelServer::start("chat/completions", |_, _| {
        Reply::chunks(vec![
            role_chunk(),
            text_chunk("Fine so far"),
            "data: {\"choices\": [oops this is not json\n\n".to_owned(),
            done(),
        ])
    });
    let provider = OpenAiProvider::new(&settings(&server)).unwrap();
    let (outcome, _) = run(&provider, &ask("hi"));

    match outcome {
        Err(ProviderError::Malformed { detail, url }) => {
            assert!(detail.contains("not JSON"), "{detail}");
            assert!(detail.contains("oops"), "names what came: {detail}");
            assert!(url.ends_with("/v1/chat/completions"), "{url}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn an_error_object_in_the_stream_is_reported_with_its_message() {
    let server = FakeModelServer::start("chat/completions", |_, _| {
        Reply::chunks(vec![
            role_chunk(),
            text_chunk("Partly"),
            format!(
                "data: {}\n\n",
                json!({"error": {"message": "context window exceeded", "type": "server_error", "code": 500}})
            ),
        ])
    });
    let provider = OpenAiProvider::new(&settings(&server)).unwrap();
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
    let server = FakeModelServer::start("chat/completions", |_, _| {
        Reply::chunks(text_answer(&["ok"]))
    });
    let (key_var, key) = key_variable();
    let mut settings = settings(&server);
    settings.api_key_env = Some(key_var.to_owned());
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
    for (choice, _) in &choices {
        let request = ChatRequest {
            messages: history.clone(),
            tools: vec![assignment_tool()],
            tool_choice: choice.clone(),
            max_tokens: Some(200),
            temperature: None,
        };
        run(&provider, &request).0.unwrap();
    }
    run(&provider, &ask("no tools")).0.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 5);
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
    for (request, (_, wire)) in requests.iter().zip(&choices) {
        assert_eq!(request.body["tool_choice"], *wire);
    }
    let plain = &requests[4].body;
    assert!(plain.get("tools").is_none() && plain.get("tool_choice").is_none());
    assert_eq!(plain["max_tokens"], 1024, "the configured default");
}

#[test]
fn an_http_401_is_not_retried() {
    let server = FakeModelServer::start("chat/completions", |_, _| {
        Reply::status(
            401,
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#,
        )
    });
    let (key_var, key) = key_variable();
    let mut settings = settings(&server);
    settings.api_key_env = Some(key_var.to_owned());
    settings.retries = 3;
    let provider = OpenAiProvider::new(&settings).unwrap();
    let (outcome, events) = run(&provider, &ask("hi"));

    let error = outcome.unwrap_err();
    assert!(!error.to_string().contains(&key), "the key never shows");
    match error {
        ProviderError::Http { status, body, .. } => {
            assert_eq!(status, 401);
            assert!(body.contains("Incorrect API key"), "{body}");
        }
        other => panic!("expected Http 401, got {other:?}"),
    }
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn idle_timeout_fires_when_the_server_sends_nothing() {
    // First no status line at all, then a status line and a stalled body.
    let server = FakeModelServer::start("chat/completions", |number, _| match number {
        0 => Reply::chunks(text_answer(&["late"])).after(Duration::from_secs(30)),
        _ => Reply::stream(vec![
            Part::Chunk(role_chunk()),
            Part::Sleep(Duration::from_secs(30)),
            Part::Chunk(done()),
        ]),
    });
    let mut settings = settings(&server);
    settings.idle_timeout_secs = 1;
    let provider = OpenAiProvider::new(&settings).unwrap();

    for _ in 0..2 {
        let started = Instant::now();
        let (outcome, _) = run(&provider, &ask("hello?"));
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
    assert_eq!(server.requests().len(), 2, "timeouts are not retried");
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
    let server =
        FakeModelServer::start("chat/completions", move |_, _| Reply::stream(parts.clone()));
    let mut settings = settings(&server);
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
    let Ok(url) = std::env::var("SPOKE_TEST_LLAMA_URL") else {
        assert!(
            std::env::var_os("SPOKE_REQUIRE_PEERS").is_none(),
            "SPOKE_REQUIRE_PEERS is set but SPOKE_TEST_LLAMA_URL is not"
        );
        eprintln!("skipped: set SPOKE_TEST_LLAMA_URL (e.g. http://127.0.0.1:18082/v1) to run");
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
