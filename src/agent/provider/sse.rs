//! The streaming plumbing both dialects share: one POST whose answer arrives
//! as server-sent events, read with an idle timeout, retried on 429/5xx and
//! failed connections until the first event reaches the caller, and dropped
//! at once when the caller cancels.
//!
//! Like the embeddings client, a [`Transport`] owns a current-thread tokio
//! runtime and blocks the calling thread on it.

use super::{Completion, ProviderError, ProviderSettings, StreamEvent};
use crate::http::{self, backoff_with_jitter, error_chain};
use anyhow::{Context, Result, bail};
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The config section errors about provider settings name.
pub(super) const SECTION: &str = "[agent]";

/// What one dialect makes of the events of one answer. A fresh one reads
/// each attempt.
pub(super) trait Dialect {
    /// Takes one event, passing what it adds to the answer to `emit`.
    /// `Ok(true)` when the server said the answer is complete.
    fn take(
        &mut self,
        event: &Event,
        emit: &mut dyn FnMut(StreamEvent),
    ) -> Result<bool, StreamFault>;
    /// The answer text so far, kept when the stream is cut.
    fn partial_text(&self) -> &str;
    /// The whole answer, once `take` said it is complete.
    fn finish(self) -> Result<Completion, StreamFault>;
}

/// Why a dialect could not go on with a stream.
#[derive(Debug)]
pub(super) enum StreamFault {
    /// Something that does not follow the dialect, described.
    Malformed(String),
    /// The server ended the answer before it was complete, described.
    Cut(String),
    /// An error the server reported inside the stream, with the HTTP status
    /// it stands for when that is known.
    Server {
        status: Option<u16>,
        message: String,
    },
}

/// An HTTP endpoint that answers in server-sent events.
pub(super) struct Transport {
    endpoint: reqwest::Url,
    /// The endpoint as shown in errors (without any user:password part).
    shown_endpoint: String,
    /// Content type, accept, and the dialect's own (credentials marked sensitive).
    headers: HeaderMap,
    idle_timeout: Duration,
    retries: u32,
    http: reqwest::Client,
    /// Always `Some` until drop, which shuts it down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Transport {
    /// Checks the settings and sets up `{url}/{path}`, sending the dialect's
    /// `extra_headers` with every request. No request is made.
    pub(super) fn new(
        settings: &ProviderSettings,
        path: &str,
        extra_headers: Vec<(HeaderName, HeaderValue)>,
    ) -> Result<Transport> {
        let (endpoint, shown_endpoint) = http::endpoint(SECTION, &settings.url, path)?;
        if settings.model.trim().is_empty() {
            bail!("{SECTION} model is empty; set it to the model the server serves");
        }
        if settings.idle_timeout_secs == 0 {
            bail!("{SECTION} idle_timeout_secs must be at least 1");
        }
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        for (name, value) in extra_headers {
            headers.insert(name, value);
        }
        let idle_timeout = Duration::from_secs(settings.idle_timeout_secs);
        let http = http::client(idle_timeout, "the model server")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the runtime for the model client")?;
        Ok(Transport {
            endpoint,
            shown_endpoint,
            headers,
            idle_timeout,
            retries: settings.retries,
            http,
            runtime: Some(runtime),
        })
    }

    pub(super) fn shown_endpoint(&self) -> &str {
        &self.shown_endpoint
    }

    /// Posts `body` and reads the answer with dialects from `new_dialect`,
    /// blocking the calling thread; see [`super::Provider::stream`].
    pub(super) fn stream<D: Dialect>(
        &self,
        body: &[u8],
        new_dialect: &(dyn Fn() -> D + Sync),
        cancel: &CancellationToken,
        on_event: &mut dyn FnMut(StreamEvent),
    ) -> Result<Completion, ProviderError> {
        let Some(runtime) = &self.runtime else {
            return Err(ProviderError::Cancelled);
        };
        if cancel.is_cancelled() {
            return Err(ProviderError::Cancelled);
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return runtime.block_on(self.run(body, new_dialect, cancel, on_event));
        }
        // Nesting `block_on` inside a runtime panics; a helper thread does
        // not. `on_event` stays on this thread, so events cross a channel.
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            let worker = scope.spawn(move || {
                let mut forward = |event| {
                    let _ = sender.send(event);
                };
                runtime.block_on(self.run(body, new_dialect, cancel, &mut forward))
            });
            for event in receiver {
                on_event(event);
            }
            worker.join().unwrap_or(Err(ProviderError::Cancelled))
        })
    }

    async fn run<D: Dialect>(
        &self,
        body: &[u8],
        new_dialect: &(dyn Fn() -> D + Sync),
        cancel: &CancellationToken,
        on_event: &mut dyn FnMut(StreamEvent),
    ) -> Result<Completion, ProviderError> {
        let mut retried = 0;
        tracing::info!(
            target: "spoke::agent",
            endpoint = %self.shown_endpoint,
            request_bytes = body.len(),
            "model request"
        );
        loop {
            let mut delivered = false;
            let outcome = {
                let mut emit = |event| {
                    delivered = true;
                    on_event(event);
                };
                // Dropping the attempt drops the response, which closes the connection.
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => return Err(ProviderError::Cancelled),
                    outcome = self.attempt(body, new_dialect(), &mut emit) => outcome,
                }
            };
            let failure = match outcome {
                Ok(completion) => {
                    tracing::info!(target: "spoke::agent", endpoint = %self.shown_endpoint, retried, "model answered");
                    return Ok(completion);
                }
                Err(failure) => failure,
            };
            // Once the caller has seen part of an answer, a retry would repeat it.
            if !failure.retryable || delivered || retried >= self.retries {
                tracing::warn!(
                    target: "spoke::agent",
                    endpoint = %self.shown_endpoint,
                    retried,
                    error = %failure.error,
                    "model request failed"
                );
                return Err(failure.error);
            }
            let wait = failure
                .retry_after
                .unwrap_or_else(|| backoff_with_jitter(retried));
            retried += 1;
            tracing::info!(
                target: "spoke::agent",
                endpoint = %self.shown_endpoint,
                attempt = retried,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                error = %failure.error,
                "retrying the model request"
            );
            on_event(StreamEvent::Retrying {
                attempt: retried,
                wait_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                error: failure.error.to_string(),
            });
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(ProviderError::Cancelled),
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One request and its answer.
    async fn attempt<D: Dialect>(
        &self,
        body: &[u8],
        mut dialect: D,
        emit: &mut dyn FnMut(StreamEvent),
    ) -> Result<Completion, Failure> {
        let request = self
            .http
            .post(self.endpoint.clone())
            .headers(self.headers.clone())
            .body(body.to_vec());
        let response = match tokio::time::timeout(self.idle_timeout, request.send()).await {
            Err(_) => return Err(self.timed_out()),
            Ok(Err(e)) => return Err(self.transport_failure(&e)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if !status.is_success() {
            let retry_after = http::retry_after(response.headers());
            let text = match tokio::time::timeout(self.idle_timeout, response.text()).await {
                Ok(Ok(text)) => text,
                Ok(Err(_)) | Err(_) => String::new(),
            };
            return Err(Failure {
                retryable: is_retryable_status(status.as_u16()),
                retry_after,
                error: ProviderError::Http {
                    url: self.shown_endpoint.clone(),
                    status: status.as_u16(),
                    body: http::body_excerpt(&text),
                },
            });
        }

        // The idle clock restarts with every chunk of bytes, not every event,
        // so keep-alive comments and slow long events still count as life.
        let last_bytes = Rc::new(Cell::new(Instant::now()));
        let seen = last_bytes.clone();
        let mut events = response
            .bytes_stream()
            .inspect(move |_| seen.set(Instant::now()))
            .eventsource();
        loop {
            let idle_until = last_bytes.get() + self.idle_timeout;
            let next = tokio::select! {
                next = events.next() => next,
                () = tokio::time::sleep_until(idle_until.into()) => {
                    if last_bytes.get() + self.idle_timeout <= Instant::now() {
                        return Err(self.timed_out());
                    }
                    continue;
                }
            };
            let event = match next {
                None => {
                    return Err(self.cut(
                        "the stream ended before the server said the answer was complete"
                            .to_owned(),
                        &dialect,
                    ));
                }
                Some(Err(EventStreamError::Transport(e))) => {
                    return Err(self.cut(error_chain(&e), &dialect));
                }
                Some(Err(EventStreamError::Utf8(e))) => {
                    return Err(self.fault(
                        StreamFault::Malformed(format!("the stream is not UTF-8 ({e})")),
                        "",
                    ));
                }
                Some(Err(EventStreamError::Parser(e))) => {
                    return Err(self.fault(
                        StreamFault::Malformed(format!(
                            "the stream is not server-sent events ({e})"
                        )),
                        "",
                    ));
                }
                Some(Ok(event)) => event,
            };
            match dialect.take(&event, emit) {
                Ok(false) => {}
                Ok(true) => return dialect.finish().map_err(|fault| self.fault(fault, "")),
                Err(fault) => return Err(self.fault(fault, dialect.partial_text())),
            }
        }
    }

    fn timed_out(&self) -> Failure {
        // Not retried: a server too slow once is likely too slow again, and the
        // caller should hear about it after the timeout, not several times that.
        Failure {
            retryable: false,
            retry_after: None,
            error: ProviderError::Timeout {
                url: self.shown_endpoint.clone(),
                secs: self.idle_timeout.as_secs(),
            },
        }
    }

    /// A request that got no answer at all.
    fn transport_failure(&self, e: &reqwest::Error) -> Failure {
        if e.is_timeout() {
            return self.timed_out();
        }
        Failure {
            retryable: e.is_connect() || e.is_request() || e.is_body(),
            retry_after: None,
            error: ProviderError::Unreachable {
                url: self.shown_endpoint.clone(),
                detail: error_chain(e),
            },
        }
    }

    /// The answer stopped early. Retried only if the caller saw none of it.
    fn cut(&self, detail: String, dialect: &impl Dialect) -> Failure {
        Failure {
            retryable: true,
            retry_after: None,
            error: ProviderError::StreamCut {
                url: self.shown_endpoint.clone(),
                detail,
                partial: dialect.partial_text().to_owned(),
            },
        }
    }

    /// What a dialect objected to; `partial` is the answer text so far.
    fn fault(&self, fault: StreamFault, partial: &str) -> Failure {
        let url = self.shown_endpoint.clone();
        match fault {
            // Retried only if the caller saw none of it, like any cut.
            StreamFault::Cut(detail) => Failure {
                retryable: true,
                retry_after: None,
                error: ProviderError::StreamCut {
                    url,
                    detail,
                    partial: partial.to_owned(),
                },
            },
            StreamFault::Malformed(detail) => Failure {
                retryable: false,
                retry_after: None,
                error: ProviderError::Malformed { url, detail },
            },
            StreamFault::Server {
                status: Some(status),
                message,
            } => Failure {
                retryable: is_retryable_status(status),
                retry_after: None,
                error: ProviderError::Http {
                    url,
                    status,
                    body: http::body_excerpt(&message),
                },
            },
            StreamFault::Server {
                status: None,
                message,
            } => Failure {
                retryable: false,
                retry_after: None,
                error: ProviderError::Malformed {
                    url,
                    detail: format!(
                        "the server reported an error: {}",
                        http::body_excerpt(&message)
                    ),
                },
            },
        }
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        // A plain drop blocks, which panics if the provider is dropped inside async code.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// One failed attempt and whether another is worth making.
struct Failure {
    error: ProviderError,
    retryable: bool,
    retry_after: Option<Duration>,
}

fn is_retryable_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// The JSON in an event's data, or what is wrong with it.
pub(super) fn event_json(event: &Event) -> Result<serde_json::Value, StreamFault> {
    serde_json::from_str(&event.data).map_err(|e| {
        StreamFault::Malformed(format!(
            "an event's data is not JSON ({e}); it began: {:?}",
            event.data.chars().take(80).collect::<String>()
        ))
    })
}
