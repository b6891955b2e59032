//! A chat turn through the real `spoke chat send` and `chat show` against a
//! scripted model server: citations keep the numbers the answer used, a send
//! that fails posts nothing and keeps the question as a draft for `--retry`,
//! and tool calls report their progress while their arguments stream.

mod common_cli;
mod common_llm;

use common_cli::{Sandbox, assert_success, closed_port, stderr, stdout};
use common_llm::{FakeModelServer, Reply, event, text_reply};
use serde_json::{Value, json};
use spoke::agent::chat::{self, ChatEvent};
use spoke::agent::provider::ProviderSettings;
use spoke::agent::provider::openai::OpenAiProvider;
use spoke::service::threads::GENERAL_THREAD;
use spoke::service::{Hub, NewHub};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

/// One streamed tool call whose arguments arrive in `pieces`.
fn tool_reply(name: &str, pieces: &[&str]) -> Reply {
    let mut chunks = vec![
        event(json!({"role": "assistant"}), None),
        event(
            json!({"tool_calls": [{"index": 0, "id": "call_0", "type": "function",
                                   "function": {"name": name, "arguments": ""}}]}),
            None,
        ),
    ];
    for piece in pieces {
        chunks.push(event(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
            None,
        ));
    }
    chunks.push(event(json!({}), Some("tool_calls")));
    chunks.push("data: [DONE]\n\n".into());
    Reply::chunks(chunks)
}

/// A config file whose `[agent]` talks to `url`, without retries.
fn agent_config(sb: &Sandbox, name: &str, url: &str) -> PathBuf {
    sb.file(
        name,
        format!(
            "[agent]\nprovider = \"openai\"\nurl = \"{url}\"\nmodel = \"scripted\"\nretries = 0\ntimeout_secs = 20\n"
        )
        .as_bytes(),
    )
}

/// The general thread's messages, as `chat show --json` lists them.
fn shown(sb: &Sandbox) -> Vec<Value> {
    match sb.json(&["chat", "show", "--last", "100"]) {
        Value::Array(messages) => messages,
        other => panic!("chat show --json gave {other}"),
    }
}

/// Every source the model was given in a request, by number: the
/// documents in the system prompt and the refs in tool results.
fn sources_given(request: &Value) -> BTreeMap<u64, String> {
    let mut out = BTreeMap::new();
    for m in request["messages"].as_array().into_iter().flatten() {
        let content = m["content"].as_str().unwrap_or_default();
        if m["role"] == "system" {
            for part in content.split("<document ref=\"").skip(1) {
                let (n, rest) = part.split_once('"').expect("ref");
                let title = rest
                    .split_once("title=\"")
                    .and_then(|(_, t)| t.split_once('"'))
                    .map(|(t, _)| t.to_owned())
                    .expect("title");
                out.insert(n.parse().expect("number"), title);
            }
        }
        if m["role"] == "tool"
            && let Ok(result) = serde_json::from_str::<Value>(content)
        {
            for row in result["results"].as_array().into_iter().flatten() {
                out.insert(
                    row["ref"].as_u64().expect("ref"),
                    row["title"].as_str().unwrap_or_default().to_owned(),
                );
            }
        }
    }
    out
}

#[test]
fn a_cited_number_is_kept_from_the_answer_to_every_listing_and_unknown_ones_are_marked() {
    let sb = Sandbox::with_hub();
    let topics = [
        ("voice", "Harbour tone of voice: warm, plain and specific."),
        ("colour", "Harbour colour: the blue leads every layout."),
        (
            "type",
            "Harbour type: one family, two weights, never condensed.",
        ),
        (
            "photo",
            "Harbour photography: people at work, daylight, no stock.",
        ),
        (
            "motion",
            "Harbour motion: slow cuts, no spinning logos, captions always.",
        ),
    ];
    let mut paths = Vec::new();
    for (name, text) in topics {
        let path = sb.file(
            &format!("{name}.md"),
            format!("# {name}\n\n{text}\n").as_bytes(),
        );
        paths.push(path.display().to_string());
    }
    let mut args = vec!["kb", "add"];
    args.extend(paths.iter().map(String::as_str));
    sb.ok(&args);

    let server = FakeModelServer::start("chat/completions", |n, _| match n {
        0 => tool_reply(
            "search_knowledge",
            &[r#"{"query": "harbour guide", "#, r#""limit": 10}"#],
        ),
        _ => text_reply("Keep the cuts slow [4]. Spinning logos are out [9]. See `xs[2]`."),
    });
    let config = agent_config(&sb, "agent.toml", &server.base_url);
    let args = [
        "chat", "send", "how", "should", "the", "harbour", "film", "move?",
    ];
    let out = sb.run_with_config(&config, &args);
    assert_success(&out, &args);

    let given = sources_given(&server.requests()[1].body);
    assert!(
        given.len() >= 4 && given.len() < 9,
        "the model was given {given:?}"
    );
    let fourth = &given[&4];

    // The streamed answer's footer.
    let printed = stdout(&out);
    assert!(printed.contains("[4]."), "{printed}");
    let footer: Vec<&str> = printed.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(footer.len(), 2, "{printed}");
    assert!(
        footer[0].starts_with("[4] kb ") && footer[0].ends_with(fourth.as_str()),
        "{footer:?} should cite {fourth}"
    );
    assert_eq!(footer[1], "[9] (no such source)");
    // The progress of the streamed tool call went to stderr.
    let progress = stderr(&out);
    assert!(
        progress.contains("[calling search_knowledge…]")
            && progress.contains("[calling search_knowledge… 27 bytes]")
            && progress.contains("[calling search_knowledge… 39 bytes]"),
        "{progress}"
    );

    // Stored: the number the model used, pointing at the 4th source.
    let messages = shown(&sb);
    let answer = messages.last().expect("answer");
    let citations = answer["citations"].as_array().expect("citations");
    assert_eq!(citations.len(), 2, "{answer}");
    assert_eq!(citations[0]["n"], 4);
    assert_eq!(citations[0]["kind"], "kb");
    assert_eq!(citations[0]["quote"], fourth.as_str());
    assert!(citations[0].get("unknown").is_none(), "{answer}");
    assert_eq!(citations[1]["n"], 9);
    assert_eq!(citations[1]["unknown"], true);

    // And in the thread as text.
    let text = sb.ok(&["chat", "show"]);
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("[4] kb ") && l.ends_with(fourth.as_str())),
        "{text}"
    );
    assert!(text.contains("   [9] (no such source)"), "{text}");
    assert!(!text.contains("[1] "), "nothing is renumbered: {text}");
}

/// A server that reads each request and closes the connection without a byte.
fn hanging_up_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            drop(stream);
        }
    });
    format!("http://127.0.0.1:{port}/v1")
}

#[test]
fn a_failed_send_posts_nothing_keeps_a_draft_and_retry_posts_question_and_answer_together() {
    let sb = Sandbox::with_hub();
    let server =
        FakeModelServer::start("chat/completions", |_, _| text_reply("Yes, Friday works."));
    let working = agent_config(&sb, "working.toml", &server.base_url);
    let first = ["chat", "send", "warm-up question"];
    assert_success(&sb.run_with_config(&working, &first), &first);
    let before = shown(&sb).len();
    assert_eq!(before, 2, "a question and its answer");
    let draft = sb.home.join("drafts").join("chat-general.txt");

    for (what, url) in [
        (
            "a closed port",
            format!("http://127.0.0.1:{}/v1", closed_port()),
        ),
        ("a server that hangs up", hanging_up_server()),
    ] {
        let config = agent_config(&sb, "dead.toml", &url);
        let args = ["chat", "send", "can", "we", "ship", "Friday?"];
        let out = sb.run_with_config(&config, &args);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("not posted") && err.contains("spoke chat send --retry"),
            "{what}: {err}"
        );
        assert_eq!(shown(&sb).len(), before, "{what}: the thread is unchanged");
        assert_eq!(
            std::fs::read_to_string(&draft).expect("the draft is kept"),
            "can we ship Friday?"
        );
    }

    let args = ["chat", "send", "--retry", "--thread", "general"];
    let out = sb.run_with_config(&working, &args);
    assert_success(&out, &args);
    assert!(stdout(&out).contains("Friday works"), "{}", stdout(&out));
    let messages = shown(&sb);
    assert_eq!(messages.len(), before + 2);
    assert_eq!(messages[before]["body"], "can we ship Friday?");
    assert_eq!(messages[before]["provenance"]["by"], "human");
    assert_eq!(messages[before + 1]["body"], "Yes, Friday works.");
    assert_eq!(messages[before + 1]["provenance"]["by"], "ai");
    assert!(!draft.exists(), "a sent draft is gone");
    // The model saw the retried question once, last.
    let last = server.requests().last().expect("request").body.clone();
    let asked: Vec<&Value> = last["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| {
            m["content"]
                .as_str()
                .is_some_and(|c| c.contains("ship Friday"))
        })
        .collect();
    assert_eq!(asked.len(), 1, "{last}");

    // Nothing to retry now.
    let out = sb.run_with_config(&working, &args);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no unsent message"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_streamed_tool_call_reports_its_name_and_growing_argument_bytes() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut hub = Hub::init(
        dir.path(),
        NewHub {
            name: "Fieldwork",
            handle: "ana",
            tz: "Europe/Lisbon",
            display_name: None,
        },
    )
    .expect("init");
    let pieces = [r#"{"status""#, r#": "new", "#, r#""limit": 5}"#];
    let total: usize = pieces.iter().map(|p| p.len()).sum();
    let server = FakeModelServer::start("chat/completions", move |n, _| match n {
        0 => tool_reply("list_briefs", &pieces),
        _ => text_reply("Nothing new."),
    });
    let mut settings = ProviderSettings::new(server.base_url.clone(), "scripted");
    settings.retries = 0;
    let provider = OpenAiProvider::new(&settings).expect("provider");
    let mut events = Vec::new();
    chat::answer(
        &mut hub,
        None,
        &provider,
        GENERAL_THREAD,
        "anything new?",
        &CancellationToken::new(),
        &mut |e| events.push(e),
    )
    .expect("turn");
    let progress: Vec<(String, usize)> = events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::ToolCalling { name, bytes } => Some((name.clone(), *bytes)),
            _ => None,
        })
        .collect();
    assert!(progress.len() >= 3, "{progress:?}");
    assert!(progress.iter().all(|(name, _)| name == "list_briefs"));
    assert_eq!(progress[0].1, 0, "the call is told as it starts");
    assert_eq!(progress[1].1, pieces[0].len(), "the first fragment at once");
    assert_eq!(
        progress.last().map(|p| p.1),
        Some(total),
        "and once complete"
    );
    assert!(
        progress.windows(2).all(|w| w[0].1 < w[1].1),
        "growing: {progress:?}"
    );
    // Progress comes before the tool runs.
    let calling = events
        .iter()
        .position(|e| matches!(e, ChatEvent::ToolCalling { .. }));
    let started = events
        .iter()
        .position(|e| matches!(e, ChatEvent::ToolStarted { .. }));
    assert!(calling < started, "{events:?}");
    assert_eq!(
        hub.thread_messages(GENERAL_THREAD).expect("thread").len(),
        2
    );
}

#[test]
fn a_question_too_long_for_the_window_is_refused_before_anything_is_sent() {
    let sb = Sandbox::with_hub();
    let server = FakeModelServer::start("chat/completions", |_, _| text_reply("never asked"));
    let config = sb.file(
        "small.toml",
        format!(
            "[agent]\nprovider = \"openai\"\nurl = \"{}\"\nmodel = \"scripted\"\nretries = 0\n\
             context_tokens = 600\nmax_tokens = 100\n",
            server.base_url
        )
        .as_bytes(),
    );
    let long = "word ".repeat(3000);
    let out = sb.run_with_config(&config, &["chat", "send", &long]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("context_tokens") && err.contains("500"),
        "the refusal names the window left for the prompt: {err}"
    );
    assert!(server.requests().is_empty(), "nothing was sent");
    assert!(shown(&sb).is_empty(), "nothing was posted");
}

#[test]
fn a_stream_cut_mid_answer_names_the_prompt_size_and_the_window() {
    let sb = Sandbox::with_hub();
    let server = FakeModelServer::start("chat/completions", |_, _| {
        Reply::stream(vec![
            common_llm::Part::Chunk(event(json!({"role": "assistant"}), None)),
            common_llm::Part::Chunk(event(json!({"content": "Half an"}), None)),
            common_llm::Part::Abort,
        ])
    });
    let config = agent_config(&sb, "cut.toml", &server.base_url);
    let out = sb.run_with_config(&config, &["chat", "send", "a long question"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("tokens against a window of 8192") && err.contains("n_ctx"),
        "{err}"
    );
    assert!(shown(&sb).is_empty(), "nothing was posted");
}
