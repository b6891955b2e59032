//! A scripted model server for the provider tests: it records each request
//! and answers with a status, or with server-sent events written in separate
//! chunks (with pauses between them, so fragments really arrive apart), and
//! can stall or drop the connection mid-answer.

// Each test crate that includes this uses part of it.
#![allow(dead_code)]

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Response};
use axum::routing::post;
use serde_json::Value;
use spoke::agent::provider::StreamEvent;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
            seen,
        }
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

/// The value of an environment variable that every test process has, to
/// stand in for an API key (setting variables is unsafe with threads).
pub fn key_variable() -> (&'static str, String) {
    let value = std::env::var("PATH").expect("PATH is set");
    ("PATH", value.trim().to_owned())
}
