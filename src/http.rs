//! HTTP plumbing shared by the clients of model servers (embeddings, chat):
//! the reqwest client, endpoints from a configured base URL, API keys from the
//! environment, retry pacing and readable transport errors.

use anyhow::{Context, Result, bail};
use reqwest::header::{HeaderValue, RETRY_AFTER};
use std::time::Duration;

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// How much of an error body is worth showing.
pub(crate) const ERROR_BODY_CHARS: usize = 300;

/// A reqwest client on Spoke's rustls setup (reqwest is built without a TLS
/// provider of its own). `what` says what the client is for, in errors.
pub(crate) fn client(connect_timeout: Duration, what: &str) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_preconfigured_tls((*crate::sync::tls::client_config(None)?).clone())
        .connect_timeout(connect_timeout)
        .build()
        .with_context(|| format!("setting up the HTTP client for {what}"))
}

/// `{base}/{path}` from the configured base URL (trailing slash tolerated),
/// plus the same without credentials for error messages. `section` names the
/// config section in errors, e.g. `[search.openai]`.
pub(crate) fn endpoint(section: &str, base: &str, path: &str) -> Result<(reqwest::Url, String)> {
    let trimmed = base.trim().trim_end_matches('/');
    let endpoint = reqwest::Url::parse(&format!("{trimmed}/{path}"))
        .with_context(|| format!("{section} url {base:?} is not a valid URL"))?;
    if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
        bail!("{section} url {base:?} must be an http:// or https:// address");
    }
    if endpoint.query().is_some() || endpoint.fragment().is_some() {
        bail!(
            "{section} url {base:?} must be the base address up to /v1, without ?query or #fragment"
        );
    }
    let mut shown = endpoint.clone();
    if shown.password().is_some() || !shown.username().is_empty() {
        // Only fails for URLs that cannot have credentials, which this one has.
        let _ = shown.set_password(None);
        let _ = shown.set_username("");
    }
    Ok((endpoint, shown.to_string()))
}

/// `{scheme}KEY` (e.g. `Bearer KEY`, or the bare key with `""`) from the named
/// environment variable, marked sensitive so it never shows in debug output.
/// Errors name the variable, never the key.
pub(crate) fn key_header_from_env(section: &str, var: &str, scheme: &str) -> Result<HeaderValue> {
    if var.trim().is_empty() {
        bail!(
            "{section} api_key_env is empty; name the environment variable holding the key, or leave it out"
        );
    }
    let key = match std::env::var(var) {
        Ok(key) => key,
        Err(std::env::VarError::NotPresent) => {
            bail!("{section} api_key_env names ${var}, but that environment variable is not set")
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            bail!("the API key in ${var} is not valid UTF-8")
        }
    };
    let key = key.trim();
    if key.is_empty() {
        bail!("{section} api_key_env names ${var}, but that environment variable is empty");
    }
    let mut value = HeaderValue::from_str(&format!("{scheme}{key}")).map_err(|_| {
        anyhow::anyhow!("the API key in ${var} has characters that cannot go in an HTTP header")
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// `Retry-After` in seconds, capped; HTTP dates are ignored (backoff applies).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// 200 ms, 400 ms, 800 ms ... capped, each plus up to half again at random so
/// that clients that failed together do not retry together.
pub(crate) fn backoff_with_jitter(retried: u32) -> Duration {
    let base = FIRST_BACKOFF
        .saturating_mul(1u32 << retried.min(10))
        .min(MAX_BACKOFF);
    let mut random = [0u8; 2];
    let fraction = match getrandom::fill(&mut random) {
        Ok(()) => u16::from_le_bytes(random),
        // Any varying number will do for jitter.
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as u16),
    };
    base + base.mul_f64(f64::from(fraction) / f64::from(u16::MAX) / 2.0)
}

/// Why a request failed, on one line, e.g. "client error (Connect): tcp
/// connect error: Connection refused". The top-level reqwest message only
/// repeats the URL, which the error names already.
pub(crate) fn error_chain(e: &reqwest::Error) -> String {
    let Some(first) = std::error::Error::source(e) else {
        return e.to_string();
    };
    let mut text = first.to_string();
    let mut source = first.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The first [`ERROR_BODY_CHARS`] characters of an error body, trimmed.
pub(crate) fn body_excerpt(body: &str) -> String {
    body.trim().chars().take(ERROR_BODY_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_tolerates_a_trailing_slash_and_hides_credentials() {
        let (url, shown) = endpoint("[x]", "http://127.0.0.1:18080/v1/", "embeddings").unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:18080/v1/embeddings");
        assert_eq!(shown, "http://127.0.0.1:18080/v1/embeddings");
        let (url, shown) = endpoint("[x]", "https://me:secret@example.com/v1", "messages").unwrap();
        assert_eq!(url.password(), Some("secret"));
        assert_eq!(shown, "https://example.com/v1/messages");
        assert!(endpoint("[x]", "not a url", "embeddings").is_err());
        assert!(endpoint("[x]", "ftp://example.com/v1", "embeddings").is_err());
    }

    #[test]
    fn backoff_starts_at_200_ms_and_grows() {
        let first = backoff_with_jitter(0);
        assert!(first >= Duration::from_millis(200) && first <= Duration::from_millis(300));
        assert!(backoff_with_jitter(2) >= Duration::from_millis(800));
        assert!(backoff_with_jitter(40) <= MAX_BACKOFF.mul_f64(1.5));
    }
}
