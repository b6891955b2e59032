//! The Anthropic Messages provider against a local server that speaks the
//! `/v1/messages` streaming wire format: text and `tool_use` assembly from
//! `content_block_*` events, retries, cuts, stalls, cancellation, timeouts,
//! error events and the request body.

mod common_llm;

use common_llm::{
    FakeModelServer, POSTER_LAST_PIECE, POSTER_PIECES, Part, Reply, ask, ask_for_an_assignment,
    assert_429_retried_after_a_second, assert_assignment_call_from_fragments,
    assert_cancelled_within, assert_cut_after_text, assert_idle_timeouts, assert_malformed,
    assert_poster_answer_in_order, assert_refused_once, assert_stream_cut, assert_tool_calls,
    assignment_fragments, assignment_tool, run, send_each_tool_choice, settings, settings_with_key,
    streamed_arguments, streamed_text,
};
use serde_json::{Value, json};
use spoke::agent::provider::anthropic::AnthropicProvider;
use spoke::agent::provider::{
    ChatMessage, Provider, ProviderError, StreamEvent, ToolCall, ToolChoice,
};
use std::time::Duration;

/// The model the settings name; the server answers as `claude-test-2025`.
const MODEL: &str = "claude-test";

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

/// Serves `POST /v1/messages`, answering as `respond` decides.
fn serve(respond: impl Fn(usize, &Value) -> Reply + Send + Sync + 'static) -> FakeModelServer {
    FakeModelServer::start("messages", respond)
}

/// The provider for `server` with the test settings.
fn provider(server: &FakeModelServer) -> AnthropicProvider {
    AnthropicProvider::new(&settings(server, MODEL)).unwrap()
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn streamed_text_arrives_in_order_and_assembles() {
    let mut chunks = text_answer(&POSTER_PIECES);
    // One event split across two writes still reads as one.
    let split = text_delta(0, POSTER_LAST_PIECE);
    let (head, tail) = split.split_at(split.len() / 2);
    let at = 3 + POSTER_PIECES.len();
    chunks.insert(at, tail.to_owned());
    chunks.insert(at, head.to_owned());
    let server = serve(move |_, _| Reply::chunks(chunks.clone()));
    let provider = provider(&server);
    let (outcome, events) = run(&provider, &ask("When is the poster due?"));
    let completion = outcome.unwrap();

    assert_poster_answer_in_order(&events, &completion);
    assert_eq!(completion.finish_reason.as_deref(), Some("end_turn"));
    assert_eq!(completion.model, "claude-test-2025");
    let usage = completion.usage.unwrap();
    assert_eq!((usage.input_tokens, usage.output_tokens), (10, 5));
    assert_eq!(provider.name(), "anthropic");
    assert_eq!(provider.model(), "claude-test");
}

#[test]
fn tool_call_fragments_across_chunks_assemble_to_valid_json() {
    let mut chunks = vec![
        message_start(40),
        text_start(0),
        text_delta(0, "I'll propose Mara."),
        block_stop(0),
        tool_start(1, "toolu_01", "propose_assignment"),
        json_delta(1, ""),
    ];
    for piece in assignment_fragments() {
        chunks.push(json_delta(1, piece));
    }
    chunks.push(block_stop(1));
    chunks.push(message_delta("tool_use", 60));
    chunks.push(message_stop());
    let server = serve(move |_, _| Reply::chunks(chunks.clone()));
    let provider = provider(&server);
    let (outcome, events) = run(&provider, &ask_for_an_assignment());
    let completion = outcome.unwrap();

    assert_assignment_call_from_fragments(&events, &completion, "toolu_01");
    assert_eq!(completion.text, "I'll propose Mara.");
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
    let server = serve(move |_, _| Reply::chunks(chunks.clone()));
    let provider = provider(&server);
    let (outcome, events) = run(&provider, &ask("Find the poster and the team"));
    let completion = outcome.unwrap();

    assert_tool_calls(
        &events,
        &completion,
        &[
            ("toolu_a", "search", r#"{"query": "poster"}"#),
            ("toolu_b", "list_members", "{}"),
        ],
    );
    assert_eq!(streamed_arguments(&events, 1), "{}");
    assert_eq!(completion.text, "");
}

#[test]
fn a_429_then_success_is_retried() {
    let server = serve(|number, _| {
        match number {
        0 => Reply::status(
            429,
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests has exceeded your rate limit"}}"#,
        )
        .header("retry-after", "1"),
        _ => Reply::chunks(text_answer(&["Hello", " again"])),
    }
    });
    let provider = provider(&server);
    assert_429_retried_after_a_second(&provider, &server, "Hello again");
}

#[test]
fn an_overloaded_error_before_any_text_is_retried_and_after_text_is_not() {
    let overloaded = event(
        "error",
        json!({"error": {"type": "overloaded_error", "message": "Overloaded"}}),
    );
    let server = serve(move |number, _| match number {
        0 => Reply::chunks(vec![message_start(5), overloaded.clone()]),
        1 => Reply::chunks(text_answer(&["Back"])),
        _ => Reply::chunks(vec![
            message_start(5),
            text_start(0),
            text_delta(0, "Half"),
            overloaded.clone(),
        ]),
    });
    let provider = provider(&server);

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
    let server = serve(|_, _| {
        Reply::stream(vec![
            Part::Chunk(message_start(5)),
            Part::Chunk(text_start(0)),
            Part::Chunk(text_delta(0, "Half an")),
            Part::Chunk(text_delta(0, " answer")),
            Part::Abort,
        ])
    });
    assert_cut_after_text(&provider(&server), &server, "Half an answer");
}

#[test]
fn a_stream_that_ends_without_message_stop_is_stream_cut() {
    let mut chunks = text_answer(&["All but", " the end"]);
    chunks.pop();
    let server = serve(move |_, _| Reply::chunks(chunks.clone()));
    let provider = provider(&server);
    let (outcome, _) = run(&provider, &ask("go on"));

    assert_stream_cut(outcome, "All but the end");
}

#[test]
fn a_stalled_stream_is_cancelled_by_the_user() {
    let server = serve(|_, _| {
        Reply::stream(vec![
            Part::Chunk(message_start(5)),
            Part::Chunk(text_start(0)),
            Part::Chunk(text_delta(0, "Thinking")),
            Part::Sleep(Duration::from_secs(30)),
            Part::Chunk(message_stop()),
        ])
    });
    let mut settings = settings(&server, MODEL);
    settings.idle_timeout_secs = 60;
    let provider = AnthropicProvider::new(&settings).unwrap();
    let events = assert_cancelled_within(
        &provider,
        &ask("think hard"),
        Duration::from_millis(300),
        Duration::from_secs(10),
    );
    assert_eq!(streamed_text(&events), "Thinking");
}

#[test]
fn a_cancel_while_connecting_returns_at_once() {
    let server = serve(|_, _| Reply::chunks(text_answer(&["late"])).after(Duration::from_secs(30)));
    let provider = provider(&server);
    assert_cancelled_within(
        &provider,
        &ask("hi"),
        Duration::from_millis(300),
        Duration::from_secs(5),
    );
}

#[test]
fn garbage_json_in_the_stream_is_malformed() {
    let server = serve(|_, _| {
        Reply::chunks(vec![
            message_start(5),
            text_start(0),
            text_delta(0, "Fine so far"),
            "event: content_block_delta\ndata: {\"index\": 0, oops not json\n\n".to_owned(),
            message_stop(),
        ])
    });
    let provider = provider(&server);
    let (outcome, _) = run(&provider, &ask("hi"));

    assert_malformed(outcome, "oops", "/v1/messages");
}

#[test]
fn request_body_has_the_dialect_shape() {
    let server = serve(|_, _| Reply::chunks(text_answer(&["ok"])));
    let (mut settings, key) = settings_with_key(&server, MODEL);
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
    let requests = send_each_tool_choice(&provider, &server, &history, &choices);

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
    assert!(requests[4].body.get("system").is_none());
}

#[test]
fn an_http_401_is_not_retried() {
    let server = serve(|_, _| {
        Reply::status(
            401,
            r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
        )
    });
    let (mut settings, key) = settings_with_key(&server, MODEL);
    settings.retries = 3;
    let provider = AnthropicProvider::new(&settings).unwrap();
    assert_refused_once(&provider, &server, &key, 401, "authentication_error");
}

#[test]
fn idle_timeout_fires_when_the_server_sends_nothing() {
    // First no status line at all, then a status line and a stalled body.
    let server = serve(|number, _| match number {
        0 => Reply::chunks(text_answer(&["late"])).after(Duration::from_secs(30)),
        _ => Reply::stream(vec![
            Part::Chunk(message_start(5)),
            Part::Sleep(Duration::from_secs(30)),
            Part::Chunk(message_stop()),
        ]),
    });
    let mut settings = settings(&server, MODEL);
    settings.idle_timeout_secs = 1;
    let provider = AnthropicProvider::new(&settings).unwrap();
    assert_idle_timeouts(&provider, &server, 2);
}

#[test]
fn a_stream_called_from_async_code_still_works() {
    let server = serve(|_, _| Reply::chunks(text_answer(&["from ", "a task"])));
    let provider = provider(&server);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (outcome, events) = runtime.block_on(async { run(&provider, &ask("hi")) });

    assert_eq!(outcome.unwrap().text, "from a task");
    assert_eq!(streamed_text(&events), "from a task");
}
