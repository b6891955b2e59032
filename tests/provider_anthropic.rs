//! The Anthropic Messages provider against a local server that speaks the
//! `/v1/messages` streaming wire format: text and `tool_use` assembly from
//! `content_block_*` events, retries, cuts, stalls, cancellation, timeouts,
//! error events and the request body.

mod common_llm;

use common_llm::{
    FakeModelServer, Part, Reply, key_variable, started_calls, streamed_arguments, streamed_text,
};
use serde_json::{Value, json};
use spoke::agent::provider::anthropic::AnthropicProvider;
use spoke::agent::provider::{
    ChatMessage, ChatRequest, Completion, Provider, ProviderError, ProviderSettings, StreamEvent,
    ToolCall, ToolChoice, ToolSpec,
};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------------------
// The wire format
// ---------------------------------------------------------------------------

/// One event as the Messages API frames it: the name twice, as `event:` and
/// as the data's `type`.
fn event(name: &str, mut data: Value) -> String {
    data["type"] = json!(name);
    format!("event: {name}\ndata: {data}\n\n")
}

fn message_start(input_tokens: u64) -> String {
    event(
        "message_start",
        json!({"message": {
            "id": "msg_test", "type": "message", "role": "assistant", "content": [],
            "model": "claude-test-2025", "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1},
        }}),
    )
}

fn ping() -> String {
    event("ping", json!({}))
}

fn text_start(index: u64) -> String {
    event(
        "content_block_start",
        json!({"index": index, "content_block": {"type": "text", "text": ""}}),
    )
}

fn text_delta(index: u64, text: &str) -> String {
    event(
        "content_block_delta",
        json!({"index": index, "delta": {"type": "text_delta", "text": text}}),
    )
}

fn tool_start(index: u64, id: &str, name: &str) -> String {
    event(
        "content_block_start",
        json!({"index": index, "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
    )
}

fn json_delta(index: u64, partial: &str) -> String {
    event(
        "content_block_delta",
        json!({"index": index, "delta": {"type": "input_json_delta", "partial_json": partial}}),
    )
}

fn block_stop(index: u64) -> String {
    event("content_block_stop", json!({"index": index}))
}

fn message_delta(stop_reason: &str, output_tokens: u64) -> String {
    event(
        "message_delta",
        json!({"delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": output_tokens}}),
    )
}

fn message_stop() -> String {
    event("message_stop", json!({}))
}

/// A whole streamed text answer.
fn text_answer(pieces: &[&str]) -> Vec<String> {
    let mut chunks = vec![message_start(10), text_start(0), ping()];
    chunks.extend(pieces.iter().map(|p| text_delta(0, p)));
    chunks.push(block_stop(0));
    chunks.push(message_delta("end_turn", 5));
    chunks.push(message_stop());
    chunks
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn settings(server: &FakeModelServer) -> ProviderSettings {
    let mut settings = ProviderSettings::new(server.base_url.clone(), "claude-test");
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
    provider: &AnthropicProvider,
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
    let split = text_delta(0, " Really.");
    let (head, tail) = split.split_at(split.len() / 2);
    let at = 3 + pieces.len();
    chunks.insert(at, tail.to_owned());
    chunks.insert(at, head.to_owned());
    let server = FakeModelServer::start("messages", move |_, _| Reply::chunks(chunks.clone()));
    let provider = AnthropicProvider::new(&settings(&server)).unwrap();
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
    assert_eq!(completion.finish_reason.as_deref(), Some("end_turn"));
    assert_eq!(completion.model, "claude-test-2025");
    let usage = completion.usage.unwrap();
    assert_eq!((usage.input_tokens, usage.output_tokens), (10, 5));
    assert!(completion.tool_calls.is_empty());
    assert_eq!(provider.name(), "anthropic");
    assert_eq!(provider.model(), "claude-test");
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
        message_start(40),
        text_start(0),
        text_delta(0, "I'll propose Mara."),
        block_stop(0),
        tool_start(1, "toolu_01", "propose_assignment"),
        json_delta(1, ""),
    ];
    for piece in &pieces {
        chunks.push(json_delta(1, piece));
    }
    chunks.push(block_stop(1));
    chunks.push(message_delta("tool_use", 60));
    chunks.push(message_stop());
    let server = FakeModelServer::start("messages", move |_, _| Reply::chunks(chunks.clone()));
    let provider = AnthropicProvider::new(&settings(&server)).unwrap();
    let request = ChatRequest {
        tools: vec![assignment_tool()],
        ..ask("Who should take B-17?")
    };
    let (outcome, events) = run(&provider, &request);
    let completion = outcome.unwrap();

    assert!(pieces.len() >= 3);
    assert_eq!(
        started_calls(&events),
        vec![(0, "toolu_01".into(), "propose_assignment".into())]
    );
    let fragments = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::ToolCallArguments { .. }))
        .count();
    assert_eq!(fragments, pieces.len(), "each fragment is its own event");
    assert_eq!(streamed_arguments(&events, 0), arguments);
    assert_eq!(completion.text, "I'll propose Mara.");
    assert_eq!(completion.tool_calls.len(), 1);
    let call = &completion.tool_calls[0];
    assert_eq!(call.id, "toolu_01");
    assert_eq!(call.name, "propose_assignment");
    let parsed: Value = serde_json::from_str(&call.arguments).unwrap();
    assert_eq!(parsed["rationale"], "She drew the \"winter\" series");
    assert_eq!(completion.finish_reason.as_deref(), Some("tool_use"));
}

#[test]
fn two_tool_calls_in_one_turn() {
    let chunks = vec![
        message_start(40),
        tool_start(0, "toolu_a", "search"),
        json_delta(0, "{\"query\": \"pos"),
        json_delta(0, "ter\"}"),
        block_stop(0),
        // A call without arguments streams no deltas.
        tool_start(1, "toolu_b", "list_members"),
        block_stop(1),
        message_delta("tool_use", 30),
        message_stop(),
    ];
    let server = FakeModelServer::start("messages", move |_, _| Reply::chunks(chunks.clone()));
    let provider = AnthropicProvider::new(&settings(&server)).unwrap();
    let (outcome, events) = run(&provider, &ask("Find the poster and the team"));
    let completion = outcome.unwrap();

    assert_eq!(
        started_calls(&events),
        vec![
            (0, "toolu_a".into(), "search".into()),
            (1, "toolu_b".into(), "list_members".into()),
        ]
    );
    assert_eq!(
        completion.tool_calls,
        vec![
            ToolCall {
                id: "toolu_a".into(),
                name: "search".into(),
                arguments: r#"{"query": "poster"}"#.into(),
            },
            ToolCall {
                id: "toolu_b".into(),
                name: "list_members".into(),
                arguments: "{}".into(),
            },
        ]
    );
    assert_eq!(streamed_arguments(&events, 1), "{}");
    assert_eq!(completion.text, "");
}

#[test]
fn a_429_then_success_is_retried() {
    let server = FakeModelServer::start("messages", |number, _| {
        match number {
        0 => Reply::status(
            429,
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests has exceeded your rate limit"}}"#,
        )
        .header("retry-after", "1"),
        _ => Reply::chunks(text_answer(&["Hello", " again"])),
    }
    });
    let provider = AnthropicProvider::new(&settings(&server)).unwrap();
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
fn an_overloaded_error_before_any_text_is_retried_and_after_text_is_not() {
    let overloaded = event(
        "error",
        json!({"error": {"type": "overloaded_error", "message": "Overloaded"}}),
    );
    let server = FakeModelServer::start("messages", move |number, _| match number {
        0 => Reply::chunks(vec![message_start(5), overloaded.clone()]),
        1 => Reply::chunks(text_answer(&["Back"])),
        _ => Reply::chunks(vec![
            message_start(5),
            text_start(0),
            text_delta(0, "Half"),
            overloaded.clone(),
        ]),
    });
    let provider = AnthropicProvider::new(&settings(&server)).unwrap();

    let (outcome, events) = run(&provider, &ask("hi"));
    assert_eq!(outcome.unwrap().text, "Back");
    match &events[0] {
        StreamEvent::Retrying { error, .. } => {
            assert!(
                error.contains("overloaded_error") && error.contains("Overloaded"),
                "{error}"
            );
        }
        other => panic!("expected a Retrying event first, got {other:?}"),
    }

    let (outcome, _) = run(&provider, &ask("again"));
    match outcome {
        Err(error @ ProviderError::Http { status: 529, .. }) => {
            let shown = error.to_string();
            assert!(
                shown.contains("overloaded_error") && shown.contains("Overloaded"),
                "{shown}"
            );
        }
        other => panic!("expected the overloaded error, got {other:?}"),
    }
    assert_eq!(
        server.requests().len(),
        3,
        "no retry after text was delivered"
    );
}

#[test]
fn a_stream_cut_midway_is_stream_cut_with_the_partial_text() {
    let server = FakeModelServer::start("messages", |_, _| {
        Reply::stream(vec![
            Part::Chunk(message_start(5)),
            Part::Chunk(text_start(0)),
            Part::Chunk(text_delta(0, "Half an")),
            Part::Chunk(text_delta(0, " answer")),
            Part::Abort,
        ])
    });
    let provider = AnthropicProvider::new(&settings(&server)).unwrap();
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
fn a_stream_that_ends_without_message_stop_is_stream_cut() {
    let mut chunks = text_answer(&["All but", " the end"]);
    chunks.pop();
    let server = FakeModelServer::start("messages", move |_, _| Reply::chunks(chunks.clone()));
    let provider = AnthropicProvider::new(&settings(&server)).unwrap();
    let (outcome, _) = run(&provider, &ask("go on"));

    match outcome {
        Err(ProviderError::StreamCut { partial, .. }) => assert_eq!(partial, "All but the end"),
        other => panic!("expected StreamCut, got {other:?}"),
    }
}

#[test]
fn a_stalled_stream_is_cancelled_by_the_user() {
    let server = FakeModelServer::start("messages", |_, _| {
        Reply::stream(vec![
            Part::Chunk(message_start(5)),
            Part::Chunk(text_start(0)),
            Part::Chunk(text_delta(0, "Thinking")),
            Part::Sleep(Duration::from_secs(30)),
            Part::Chunk(message_stop()),
        ])
    });
    let mut settings = settings(&server);
    settings.idle_timeout_secs = 60;
    let provider = AnthropicProvider::new(&settings).unwrap();
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
fn a_cancel_while_connecting_returns_at_once() {
    let server = FakeModelServer::start("messages", |_, _| {
        Reply::chunks(text_answer(&["late"])).after(Duration::from_secs(30))
    });
    let provider = AnthropicProvider::new(&settings(&server)).unwrap();
    let cancel = CancellationToken::new();
    let canceller = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            cancel.cancel();
        })
    };
    let started = Instant::now();
    let outcome = provider.stream(&ask("hi"), &cancel, &mut |_| {});
    canceller.join().unwrap();

    assert!(
        matches!(outcome, Err(ProviderError::Cancelled)),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn garbage_json_in_the_stream_is_malformed() {
    let server = FakeModelServer::start("messages", |_, _| {
        Reply::chunks(vec![
            message_start(5),
            text_start(0),
            text_delta(0, "Fine so far"),
            "event: content_block_delta\ndata: {\"index\": 0, oops not json\n\n".to_owned(),
            message_stop(),
        ])
    });
    let provider = AnthropicProvider::new(&settings(&server)).unwrap();
    let (outcome, _) = run(&provider, &ask("hi"));

    match outcome {
        Err(ProviderError::Malformed { detail, url }) => {
            assert!(detail.contains("not JSON"), "{detail}");
            assert!(detail.contains("oops"), "names what came: {detail}");
            assert!(url.ends_with("/v1/messages"), "{url}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn request_body_has_the_dialect_shape() {
    let server = FakeModelServer::start("messages", |_, _| Reply::chunks(text_answer(&["ok"])));
    let (key_var, key) = key_variable();
    let mut settings = settings(&server);
    settings.api_key_env = Some(key_var.to_owned());
    settings.temperature = Some(0.5);
    let provider = AnthropicProvider::new(&settings).unwrap();
    let debug = format!("{provider:?}");
    assert!(!debug.contains(&key), "the key never shows in debug output");

    let history = vec![
        ChatMessage::system("You coordinate a studio."),
        ChatMessage::system("Never assign work without a proposal."),
        ChatMessage::user("Who takes B-17?"),
        ChatMessage {
            tool_calls: vec![
                ToolCall {
                    id: "toolu_1".into(),
                    name: "propose_assignment".into(),
                    arguments: r#"{"brief_id":"B-17","handle":"mara","rationale":"fits"}"#.into(),
                },
                ToolCall {
                    id: "toolu_2".into(),
                    name: "list_members".into(),
                    arguments: String::new(),
                },
            ],
            ..ChatMessage::assistant("Let me propose that.")
        },
        ChatMessage::tool_result("toolu_1", "proposal P-3 is waiting for a decision"),
        ChatMessage::tool_result("toolu_2", "mara, jon"),
        ChatMessage::user("Thanks"),
    ];
    let choices = [
        (
            ToolChoice::Function("propose_assignment".into()),
            json!({"type": "tool", "name": "propose_assignment"}),
        ),
        (ToolChoice::Auto, json!({"type": "auto"})),
        (ToolChoice::None, json!({"type": "none"})),
        (ToolChoice::Required, json!({"type": "any"})),
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
    assert_eq!(first.header("x-api-key").as_deref(), Some(key.as_str()));
    assert_eq!(
        first.header("anthropic-version").as_deref(),
        Some("2023-06-01")
    );
    assert_eq!(
        first.header("content-type").as_deref(),
        Some("application/json")
    );
    assert!(first.header("authorization").is_none());
    assert_eq!(
        first.body,
        json!({
            "model": "claude-test",
            "max_tokens": 200,
            "temperature": 0.5,
            "stream": true,
            "system": "You coordinate a studio.\n\nNever assign work without a proposal.",
            "messages": [
                {"role": "user", "content": "Who takes B-17?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me propose that."},
                    {"type": "tool_use", "id": "toolu_1", "name": "propose_assignment",
                     "input": {"brief_id": "B-17", "handle": "mara", "rationale": "fits"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "list_members", "input": {}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "proposal P-3 is waiting for a decision"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "mara, jon"},
                    {"type": "text", "text": "Thanks"},
                ]},
            ],
            "tools": [{
                "name": "propose_assignment",
                "description": "Propose who should take a brief",
                "input_schema": assignment_tool().parameters,
            }],
            "tool_choice": {"type": "tool", "name": "propose_assignment"},
        })
    );
    for (request, (_, wire)) in requests.iter().zip(&choices) {
        assert_eq!(request.body["tool_choice"], *wire);
    }
    let plain = &requests[4].body;
    assert!(plain.get("tools").is_none() && plain.get("tool_choice").is_none());
    assert!(plain.get("system").is_none());
    assert_eq!(plain["max_tokens"], 1024, "the configured default");
}

#[test]
fn an_http_401_is_not_retried() {
    let server = FakeModelServer::start("messages", |_, _| {
        Reply::status(
            401,
            r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
        )
    });
    let (key_var, key) = key_variable();
    let mut settings = settings(&server);
    settings.api_key_env = Some(key_var.to_owned());
    settings.retries = 3;
    let provider = AnthropicProvider::new(&settings).unwrap();
    let (outcome, events) = run(&provider, &ask("hi"));

    let error = outcome.unwrap_err();
    assert!(!error.to_string().contains(&key), "the key never shows");
    match error {
        ProviderError::Http { status, body, .. } => {
            assert_eq!(status, 401);
            assert!(body.contains("authentication_error"), "{body}");
        }
        other => panic!("expected Http 401, got {other:?}"),
    }
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn idle_timeout_fires_when_the_server_sends_nothing() {
    // First no status line at all, then a status line and a stalled body.
    let server = FakeModelServer::start("messages", |number, _| match number {
        0 => Reply::chunks(text_answer(&["late"])).after(Duration::from_secs(30)),
        _ => Reply::stream(vec![
            Part::Chunk(message_start(5)),
            Part::Sleep(Duration::from_secs(30)),
            Part::Chunk(message_stop()),
        ]),
    });
    let mut settings = settings(&server);
    settings.idle_timeout_secs = 1;
    let provider = AnthropicProvider::new(&settings).unwrap();

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
fn a_stream_called_from_async_code_still_works() {
    let server = FakeModelServer::start("messages", |_, _| {
        Reply::chunks(text_answer(&["from ", "a task"]))
    });
    let provider = AnthropicProvider::new(&settings(&server)).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (outcome, events) = runtime.block_on(async { run(&provider, &ask("hi")) });

    assert_eq!(outcome.unwrap().text, "from a task");
    assert_eq!(streamed_text(&events), "from a task");
}
