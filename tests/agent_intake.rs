//! The intake assistant's questions: what a model writes is checked before
//! it reaches the hub (one real question per missing field, nothing else),
//! repaired where a small model's JSON is only slightly off, and replaced by
//! the rules' own questions when rejected; the label says who wrote them.
//! Against a scripted server, through the library and the `spoke` binary,
//! and against the real llama.cpp server when one is running.

mod common_cli;
mod common_llm;

use common_cli::Sandbox;
use common_llm::{FakeModelServer, Reply, event, peer_url, text_reply};
use serde_json::{Value, json};
use spoke::agent::intake::{IntakeOutcome, intake};
use spoke::agent::provider::anthropic::AnthropicProvider;
use spoke::agent::provider::openai::OpenAiProvider;
use spoke::agent::provider::{Provider, ProviderSettings};
use spoke::model::asset::Provenance;
use spoke::model::thread::Message;
use spoke::service::{Hub, NewBrief, NewHub};
use std::path::Path;
use tokio_util::sync::CancellationToken;

const TITLE: &str = "Podcast cover art";
/// What the rules find missing in the brief below, in their order.
const MISSING: [&str; 4] = ["audience", "deliverables", "due", "key_message"];

/// A server answering every request with `text`.
fn server_answering(text: &str) -> FakeModelServer {
    let text = text.to_owned();
    FakeModelServer::start("chat/completions", move |_, _| text_reply(&text))
}

fn provider(server: &FakeModelServer) -> OpenAiProvider {
    let mut s = ProviderSettings::new(server.base_url.clone(), "scripted");
    s.retries = 0;
    s.idle_timeout_secs = 20;
    OpenAiProvider::new(&s).expect("provider")
}

/// A hub with one brief that has only a title and an objective: four
/// fields missing.
fn hub_with_brief(dir: &Path) -> (Hub, String) {
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
    let brief = hub
        .add_brief(NewBrief {
            title: TITLE.into(),
            requester: Some("ana".into()),
            objective: Some("More listeners for season two".into()),
            ..NewBrief::default()
        })
        .expect("brief")
        .id;
    (hub, brief)
}

/// Intake on the brief with the model behind `server`; returns the outcome
/// and the one message posted in the brief's thread.
fn run_intake(server: &FakeModelServer) -> (IntakeOutcome, Message, Vec<String>) {
    run_intake_with(&provider(server))
}

fn run_intake_with(p: &dyn Provider) -> (IntakeOutcome, Message, Vec<String>) {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut hub, brief) = hub_with_brief(dir.path());
    let rules: Vec<String> = hub
        .check_brief(&brief)
        .expect("check")
        .1
        .into_iter()
        .map(|q| q.question)
        .collect();
    let outcome = intake(&mut hub, None, Some(p), &brief, &CancellationToken::new())
        .expect("intake")
        .expect("questions");
    let mut thread = hub
        .thread_messages(&format!("brief:{brief}"))
        .expect("thread");
    assert_eq!(thread.len(), 1, "one message: {thread:?}");
    (outcome, thread.remove(0), rules)
}

/// The numbered questions in a posted message, in order.
fn numbered(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| {
            let (n, q) = l.split_once(". ")?;
            n.parse::<usize>().ok().map(|_| q.to_owned())
        })
        .collect()
}

/// The rules' four questions were posted and labelled as rules, and the
/// model's answer was rejected with a reason containing `why`.
fn assert_rules_posted(outcome: &IntakeOutcome, message: &Message, rules: &[String], why: &str) {
    let error = outcome.model_error.as_deref().unwrap_or_default();
    assert!(error.contains(why), "rejected because {why}: {error:?}");
    assert!(outcome.phrased_by.is_none());
    assert_eq!(outcome.fields, MISSING);
    assert_eq!(outcome.questions, rules);
    assert_eq!(numbered(&message.body), rules, "{}", message.body);
    assert_eq!(
        message.provenance,
        Provenance::Rules {
            name: "intake".into()
        }
    );
    assert_eq!(message.provenance.label().as_deref(), Some("rules: intake"));
}

/// The model's answer with one entry per `(field, question)`.
fn answer(entries: &[(&str, &str)]) -> String {
    let questions: Vec<Value> = entries
        .iter()
        .map(|(field, question)| json!({"field": field, "question": question}))
        .collect();
    json!({"questions": questions}).to_string()
}

const GOOD: [(&str, &str); 4] = [
    (
        "key_message",
        "What should listeners feel when they see the cover?",
    ),
    ("audience", "Who listens to the podcast today?"),
    (
        "due",
        "By when do you need the artwork, and in which time zone?",
    ),
    (
        "deliverables",
        "Which sizes do the podcast platforms need from us?",
    ),
];

#[test]
fn a_model_that_echoes_the_title_is_rejected_and_the_rules_four_questions_are_posted() {
    let server = server_answering(&format!("1. {TITLE}"));
    let (outcome, message, rules) = run_intake(&server);
    assert_rules_posted(
        &outcome,
        &message,
        &rules,
        "1 question(s) for 4 missing field(s)",
    );
    assert!(
        !message.body.contains(&format!("1. {TITLE}")),
        "the echo is not posted: {}",
        message.body
    );

    // The echo as JSON, one per field, is no better.
    let entries: Vec<(&str, &str)> = MISSING.iter().map(|f| (*f, TITLE)).collect();
    let server = server_answering(&answer(&entries));
    let (outcome, message, rules) = run_intake(&server);
    assert_rules_posted(&outcome, &message, &rules, "only repeats the brief's title");
}

#[test]
fn one_valid_question_per_field_is_posted_in_the_rules_order_and_labelled_as_the_model() {
    let server = server_answering(&answer(&GOOD));
    let (outcome, message, _) = run_intake(&server);

    assert_eq!(outcome.model_error, None);
    assert_eq!(outcome.phrased_by.as_deref(), Some("scripted-1"));
    let expected: Vec<&str> = MISSING
        .iter()
        .map(|f| GOOD.iter().find(|(g, _)| g == f).expect("asked").1)
        .collect();
    assert_eq!(outcome.questions, expected);
    assert_eq!(numbered(&message.body), expected, "{}", message.body);
    match &message.provenance {
        Provenance::Ai {
            provider, model, ..
        } => assert_eq!(
            (provider.as_str(), model.as_str()),
            ("openai", "scripted-1")
        ),
        other => panic!("labelled as the model, got {other:?}"),
    }
    assert_eq!(
        message.provenance.label().as_deref(),
        Some("AI openai/scripted-1")
    );

    // The request asked for that shape: a strict JSON schema naming the
    // missing fields, one entry for each.
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let format = &requests[0].body["response_format"];
    assert_eq!(format["type"], "json_schema", "{format}");
    assert_eq!(format["json_schema"]["name"], "post_questions");
    assert_eq!(format["json_schema"]["strict"], true);
    let list = &format["json_schema"]["schema"]["properties"]["questions"];
    assert_eq!(list["minItems"], 4);
    assert_eq!(list["maxItems"], 4);
    assert_eq!(list["items"]["properties"]["field"]["enum"], json!(MISSING));
    assert_eq!(
        list["items"]["required"],
        json!(["field", "question"]),
        "{list}"
    );
}

#[test]
fn json_in_prose_and_code_fences_with_a_stray_newline_is_repaired_and_accepted() {
    // A raw line break inside a string, as small models write them.
    let raw = answer(&GOOD).replace("Who listens", "Who\nlistens");
    assert!(
        serde_json::from_str::<Value>(&raw).is_err(),
        "not JSON as is"
    );
    let server = server_answering(&format!(
        "Sure! Here are the questions:\n```json\n{raw}\n```\nLet me know if you need more."
    ));
    let (outcome, message, _) = run_intake(&server);

    assert_eq!(outcome.model_error, None);
    assert_eq!(outcome.phrased_by.as_deref(), Some("scripted-1"));
    assert_eq!(outcome.questions[0], "Who listens to the podcast today?");
    assert!(
        message
            .body
            .contains("1. Who listens to the podcast today?")
    );
    assert!(matches!(message.provenance, Provenance::Ai { .. }));
}

#[test]
fn a_question_about_a_field_that_is_not_missing_is_rejected() {
    let mut entries = GOOD;
    entries[1] = ("objective", "What is the goal of the cover?");
    let server = server_answering(&answer(&entries));
    let (outcome, message, rules) = run_intake(&server);
    assert_rules_posted(
        &outcome,
        &message,
        &rules,
        "asked about \"objective\", which is not missing",
    );
}

#[test]
fn duplicates_non_questions_and_miscounted_lists_are_rejected() {
    let mut twice = GOOD;
    twice[1] = ("key_message", "What is the one message of the cover?");
    let mut statement = GOOD;
    statement[0] = ("key_message", "The cover shows a microphone");
    let mut same_words = GOOD;
    same_words[1] = (
        "audience",
        "What should listeners feel when they see the cover?",
    );
    let mut statement_with_mark = GOOD;
    statement_with_mark[1] = ("audience", "The audience is what you want to reach?");
    let mut looping = GOOD;
    looping[3] = (
        "deliverables",
        "Which sizes do you need tomorrow tomorrow tomorrow?",
    );
    let mut bare_number = GOOD;
    bare_number[2] = ("due", "3.");
    let cases = [
        (answer(&twice), "asked about \"key_message\" twice"),
        (answer(&statement), "neither a question nor a request"),
        (answer(&same_words), "repeats another question"),
        (answer(&bare_number), "is only a number"),
        (answer(&looping), "repeats itself"),
        (
            answer(&statement_with_mark),
            "neither a question nor a request",
        ),
        (answer(&GOOD[..3]), "3 question(s) for 4 missing field(s)"),
        (
            "1. Who listens?\n2. Which sizes?\n3. When is it due?".to_owned(),
            "3 question(s) for 4 missing field(s)",
        ),
    ];
    for (text, why) in cases {
        let server = server_answering(&text);
        let (outcome, message, rules) = run_intake(&server);
        assert_rules_posted(&outcome, &message, &rules, why);
    }
}

#[test]
fn a_numbered_list_with_one_question_per_missing_field_is_accepted_in_order() {
    let server = server_answering(
        "1. Who listens to the show?\n2. Which platform sizes do you need?\n\
         3. When is the cover due?\n4. What is the one thing listeners should take away?",
    );
    let (outcome, message, _) = run_intake(&server);
    assert_eq!(outcome.model_error, None);
    assert_eq!(outcome.questions[2], "When is the cover due?");
    assert!(matches!(message.provenance, Provenance::Ai { .. }));
}

#[test]
fn a_server_refusing_the_response_format_is_asked_again_with_a_forced_tool_call() {
    let server = FakeModelServer::start("chat/completions", move |_, body| {
        if body.get("response_format").is_some() {
            return Reply::status(
                400,
                r#"{"error": {"message": "response_format is not supported"}}"#,
            );
        }
        // One entry per missing field, in the rules' order.
        let entries =
            &body["tools"][0]["function"]["parameters"]["properties"]["questions"]["prefixItems"];
        let fields: Vec<&Value> = entries
            .as_array()
            .expect("one schema per entry")
            .iter()
            .map(|e| &e["properties"]["field"]["const"])
            .collect();
        assert_eq!(fields, MISSING.map(Value::from).iter().collect::<Vec<_>>());
        let arguments = answer(&GOOD);
        Reply::chunks(vec![
            event(
                json!({"tool_calls": [{"index": 0, "id": "call_0", "type": "function",
                       "function": {"name": "post_questions", "arguments": arguments}}]}),
                None,
            ),
            event(json!({}), Some("tool_calls")),
            "data: [DONE]\n\n".into(),
        ])
    });
    let (outcome, message, _) = run_intake(&server);
    assert_eq!(outcome.model_error, None);
    assert!(matches!(message.provenance, Provenance::Ai { .. }));
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1].body["tool_choice"]["function"]["name"], "post_questions",
        "the call is forced"
    );
}

/// Anthropic has no response format: the same schema goes as a forced tool.
#[test]
fn an_anthropic_model_is_asked_through_a_forced_tool_carrying_the_schema() {
    let frame = |name: &str, mut data: Value| {
        data["type"] = json!(name);
        format!("event: {name}\ndata: {data}\n\n")
    };
    let arguments = answer(&GOOD);
    let chunks = vec![
        frame(
            "message_start",
            json!({"message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [],
                   "model": "claude-test", "usage": {"input_tokens": 9, "output_tokens": 1}}}),
        ),
        frame(
            "content_block_start",
            json!({"index": 0, "content_block": {"type": "tool_use", "id": "toolu_1",
                   "name": "post_questions", "input": {}}}),
        ),
        frame(
            "content_block_delta",
            json!({"index": 0, "delta": {"type": "input_json_delta", "partial_json": arguments}}),
        ),
        frame("content_block_stop", json!({"index": 0})),
        frame(
            "message_delta",
            json!({"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 40}}),
        ),
        frame("message_stop", json!({})),
    ];
    let server = FakeModelServer::start("messages", move |_, _| Reply::chunks(chunks.clone()));
    let mut settings = ProviderSettings::new(server.base_url.clone(), "claude-test");
    settings.retries = 0;
    let p = AnthropicProvider::new(&settings).expect("provider");
    let (outcome, message, _) = run_intake_with(&p);

    assert_eq!(outcome.model_error, None);
    assert_eq!(outcome.questions[0], "Who listens to the podcast today?");
    match &message.provenance {
        Provenance::Ai {
            provider, model, ..
        } => assert_eq!(
            (provider.as_str(), model.as_str()),
            ("anthropic", "claude-test")
        ),
        other => panic!("labelled as the model, got {other:?}"),
    }
    let body = &server.requests()[0].body;
    assert!(body.get("response_format").is_none(), "{body}");
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": "post_questions"})
    );
    assert_eq!(body["tools"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        body["tools"][0]["input_schema"]["properties"]["questions"]["items"]["properties"]["field"]
            ["enum"],
        json!(MISSING)
    );
}

/// An answer cut off at the token limit is rejected as such.
#[test]
fn an_answer_cut_off_at_the_token_limit_is_rejected() {
    let server = FakeModelServer::start("chat/completions", |_, _| {
        Reply::chunks(vec![
            event(
                json!({"content": "{\"questions\": [{\"field\": \"audience\""}),
                None,
            ),
            event(json!({}), Some("length")),
            "data: [DONE]\n\n".into(),
        ])
    });
    let (outcome, message, rules) = run_intake(&server);
    assert_rules_posted(&outcome, &message, &rules, "cut off at the token limit");
}

/// `spoke agent run --once` with a model that echoes the title, then
/// `spoke chat show`: the rules' questions, labelled as rules.
#[test]
fn the_cli_shows_rule_made_questions_as_rules() {
    let server = server_answering(&format!("1. {TITLE}"));
    let sb = Sandbox::with_hub();
    std::fs::write(
        &sb.config,
        format!(
            "[agent]\nprovider = \"openai\"\nurl = \"{}\"\nmodel = \"scripted\"\nretries = 0\n",
            server.base_url
        ),
    )
    .expect("config");
    let brief = sb
        .ok(&[
            "brief",
            "add",
            "--title",
            TITLE,
            "--objective",
            "More listeners",
        ])
        .trim()
        .to_owned();
    let report = sb.ok(&["agent", "run", "--once"]);
    assert!(
        report.contains("4 question(s)") && report.contains("from the intake rules"),
        "{report}"
    );
    assert!(
        report.contains("1 question(s) for 4 missing field(s)"),
        "{report}"
    );
    let shown = sb.ok(&["chat", "show", "--thread", &format!("brief:{brief}")]);
    assert!(shown.contains("· rules: intake"), "{shown}");
    assert!(!shown.contains("AI "), "{shown}");
    assert!(shown.contains("4. What is the one thing"), "{shown}");
}

/// Intake against the real llama.cpp server (SmolLM2): exactly one
/// question per missing field is posted, and the label says who wrote them.
#[test]
fn real_llama_intake_posts_one_question_per_missing_field_with_an_honest_label() {
    let Some(url) = peer_url("SPOKE_TEST_LLAMA_URL", "http://127.0.0.1:18082/v1") else {
        return;
    };
    let mut settings = ProviderSettings::new(url, "smollm2");
    settings.idle_timeout_secs = 120;
    let p = OpenAiProvider::new(&settings).expect("provider");
    let dir = tempfile::tempdir().expect("tmp");
    let (mut hub, brief) = hub_with_brief(dir.path());
    let outcome = intake(&mut hub, None, Some(&p), &brief, &CancellationToken::new())
        .expect("intake")
        .expect("questions");
    eprintln!(
        "the model's questions were {}: {:?}",
        match &outcome.model_error {
            Some(e) => format!("rejected ({e})"),
            None => "accepted".to_owned(),
        },
        outcome.questions
    );
    assert_eq!(outcome.fields, MISSING);
    assert_eq!(outcome.questions.len(), MISSING.len());
    let thread = hub
        .thread_messages(&format!("brief:{brief}"))
        .expect("thread");
    assert_eq!(thread.len(), 1);
    assert_eq!(numbered(&thread[0].body), outcome.questions);
    match (&outcome.phrased_by, &thread[0].provenance) {
        (Some(model), Provenance::Ai { model: label, .. }) => {
            assert_eq!(model, label);
            assert!(outcome.model_error.is_none());
        }
        (None, Provenance::Rules { name }) => {
            assert_eq!(name, "intake");
            assert!(outcome.model_error.is_some(), "a rejection says why");
        }
        other => panic!("the label does not match who wrote them: {other:?}"),
    }
}
