//! The HTTP plumbing the tracker and webhook connectors share: addresses
//! built from a configured base URL, one request with an overall deadline,
//! and the sorting of an answer into a [`PushError`] the outbox can act on.
//! A `Rejected` with status 0 is decided on this side, not by an HTTP
//! status: a setting that cannot work, or a board that lacks a transition.

use super::PushError;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde_json::Value;
use std::time::Duration;

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take from start to last byte, so a stalled
/// server cannot hold a delivery forever.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest wait a `Retry-After` can ask for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// How much of a service's error text is worth showing.
const MESSAGE_CHARS: usize = 300;
/// Answers larger than this are cut off; no answer these services give is
/// anywhere near it.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// A request's address, and the same without credentials for messages.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub url: Url,
    pub shown: String,
}

/// `{base}/{segments…}?{query}` from a configured base URL (a trailing
/// slash tolerated). Each segment is percent-encoded on its own, so a key
/// with a `/` or `?` stays one segment. `setting` names the setting in errors.
pub(super) fn target(
    connector: &str,
    setting: &str,
    base: &str,
    segments: &[&str],
    query: &[(&str, &str)],
) -> Result<Target, PushError> {
    let bad = |why: String| PushError::Rejected {
        connector: connector.to_owned(),
        status: 0,
        message: why,
    };
    let mut url = Url::parse(base.trim())
        .map_err(|e| bad(format!("{setting} {base:?} is not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad(format!(
            "{setting} {base:?} must be an http:// or https:// address"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(format!(
            "{setting} {base:?} must be a base address, without ?query or #fragment"
        )));
    }
    {
        let mut path = url
            .path_segments_mut()
            .map_err(|()| bad(format!("{setting} {base:?} cannot be a base address")))?;
        path.pop_if_empty();
        path.extend(segments);
    }
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    let shown = shown_url(&url);
    Ok(Target { url, shown })
}

/// The URL without a user name or password, for messages.
pub(super) fn shown_url(url: &Url) -> String {
    let mut shown = url.clone();
    if !shown.username().is_empty() || shown.password().is_some() {
        // Only fails for URLs that cannot carry credentials, which this one does.
        let _ = shown.set_password(None);
        let _ = shown.set_username("");
    }
    shown.to_string()
}

/// An `Authorization` value that never shows in debug output; an error names
/// `setting`, never the secret.
pub(super) fn secret_header(
    connector: &str,
    setting: &str,
    value: &str,
) -> Result<HeaderValue, PushError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| PushError::Rejected {
        connector: connector.to_owned(),
        status: 0,
        message: format!("{setting} has characters that cannot go in an HTTP header"),
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// The HTTP client for one delivery.
pub(super) fn client(connector: &str) -> Result<reqwest::Client, PushError> {
    crate::http::client(CONNECT_TIMEOUT, connector).map_err(|e| PushError::Transient {
        connector: connector.to_owned(),
        message: format!("{e:#}"),
    })
}

/// A service's answer, whatever its status.
#[derive(Debug)]
pub(super) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// The body as JSON; a success that is not JSON is a service fault the
    /// next attempt may not repeat.
    pub fn json(&self, connector: &str, what: &str, target: &Target) -> Result<Value, PushError> {
        serde_json::from_slice(&self.body).map_err(|e| PushError::Transient {
            connector: connector.to_owned(),
            message: format!(
                "{what}: {} from {} was not JSON ({e}): {}",
                self.status,
                target.shown,
                clip(&String::from_utf8_lossy(&self.body))
            ),
        })
    }
}

/// Sends `request` with the overall deadline and reads the whole answer.
/// Network failures and timeouts are [`PushError::Transient`] naming
/// `method` and the shown URL; any HTTP status comes back as an [`Answer`].
pub(super) async fn send(
    connector: &str,
    request: reqwest::RequestBuilder,
    method: &str,
    shown: &str,
    timeout: Duration,
) -> Result<Answer, PushError> {
    let failed = |e: reqwest::Error| {
        let why = if e.is_timeout() {
            format!("no complete answer within {} s", timeout.as_secs_f32())
        } else {
            crate::http::error_chain(&e)
        };
        PushError::Transient {
            connector: connector.to_owned(),
            message: format!("{method} {shown}: {why}"),
        }
    };
    let mut response = request.timeout(timeout).send().await.map_err(failed)?;
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        let room = MAX_BODY_BYTES.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// One delivery's client, credentials and reading of refusals.
pub(super) struct Session<'a> {
    pub client: reqwest::Client,
    /// The `Authorization` header.
    pub auth: HeaderValue,
    pub refusals: Refusals<'a>,
}

impl Session<'_> {
    /// `method target` with the credentials, `Accept: application/json` and
    /// a JSON body when there is one.
    pub async fn send(
        &self,
        method: reqwest::Method,
        target: &Target,
        body: Option<&Value>,
    ) -> Result<Answer, PushError> {
        let mut request = self
            .client
            .request(method.clone(), target.url.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .header(ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        send(
            self.refusals.connector,
            request,
            method.as_str(),
            &target.shown,
            REQUEST_TIMEOUT,
        )
        .await
    }

    /// The answer's JSON (`null` for an empty body such as a 204), or the
    /// refusal sorted.
    pub fn success(
        &self,
        what: &str,
        target: &Target,
        answer: &Answer,
    ) -> Result<Value, PushError> {
        if !answer.is_success() {
            return Err(self.refusals.classify(what, target, answer));
        }
        if answer.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        answer.json(self.refusals.connector, what, target)
    }
}

/// How a connector reads a refusal.
pub(super) struct Refusals<'a> {
    pub connector: &'a str,
    /// The setting to fix on 401/403 (an [`PushError::Auth`]); `None` makes
    /// them plain refusals.
    pub auth_setting: Option<String>,
    /// The service's own messages in an error body.
    pub messages: fn(&Value) -> Vec<String>,
}

impl Refusals<'_> {
    /// Sorts a non-success answer: 401/403 → `Auth` (when the connector has
    /// credentials), 429/503 with `Retry-After` → `RetryAfter`, 408, 429 and
    /// 5xx → `Transient`, other statuses → `Rejected` with the service's
    /// messages. `what` says what was being done.
    pub fn classify(&self, what: &str, target: &Target, answer: &Answer) -> PushError {
        let status = answer.status;
        let connector = self.connector.to_owned();
        let said = self.said(&answer.body);
        if matches!(status.as_u16(), 429 | 503)
            && let Some(after) = retry_after(&answer.headers, jiff::Timestamp::now())
        {
            return PushError::RetryAfter {
                connector,
                status: status.as_u16(),
                after,
            };
        }
        if matches!(status.as_u16(), 401 | 403)
            && let Some(setting) = &self.auth_setting
        {
            return PushError::Auth {
                connector,
                status: status.as_u16(),
                reason: said.unwrap_or_else(|| reason(status)),
                setting: setting.clone(),
            };
        }
        if status.is_server_error() || matches!(status.as_u16(), 408 | 429) {
            let mut message = format!("{what}: {} from {}", reason_line(status), target.shown);
            if let Some(said) = said {
                message.push_str(": ");
                message.push_str(&said);
            }
            return PushError::Transient { connector, message };
        }
        let said = said.unwrap_or_else(|| reason(status));
        PushError::Rejected {
            connector,
            status: status.as_u16(),
            message: format!("{what}: {said}"),
        }
    }

    /// The service's messages, or the start of a body that is not in its
    /// error shape; `None` for an empty body.
    pub fn said(&self, body: &[u8]) -> Option<String> {
        let text = String::from_utf8_lossy(body);
        if let Ok(json) = serde_json::from_str::<Value>(&text) {
            let messages = (self.messages)(&json);
            if !messages.is_empty() {
                return Some(clip(&messages.join("; ")));
            }
        }
        let text = text.trim();
        (!text.is_empty()).then(|| clip(text))
    }
}

/// `Retry-After` as seconds or an HTTP date, as a wait from `now`; no more
/// than an hour, nothing for a date already past. `None` when absent or
/// unreadable.
pub(super) fn retry_after(headers: &HeaderMap, now: jiff::Timestamp) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        static DATES: jiff::fmt::rfc2822::DateTimeParser =
            jiff::fmt::rfc2822::DateTimeParser::new().relaxed_weekday(true);
        let at = DATES.parse_timestamp(value).ok()?;
        let ahead = at.as_millisecond().saturating_sub(now.as_millisecond());
        Duration::from_millis(u64::try_from(ahead).unwrap_or(0))
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// At most [`MESSAGE_CHARS`] characters, trimmed, with `…` when cut.
pub(super) fn clip(text: &str) -> String {
    let text = text.trim();
    let mut chars = text.chars();
    let mut clipped: String = chars.by_ref().take(MESSAGE_CHARS).collect();
    if chars.next().is_some() {
        clipped.push('…');
    }
    clipped
}

/// `Not Found`, or the number when the status has no name.
fn reason(status: StatusCode) -> String {
    status
        .canonical_reason()
        .map_or_else(|| status.as_u16().to_string(), str::to_owned)
}

/// `404 Not Found`.
fn reason_line(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// Strings from a JSON array, skipping anything else.
pub(super) fn strings(value: &Value) -> impl Iterator<Item = &str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_retry_after(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn now() -> jiff::Timestamp {
        "2026-06-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates_and_clamps_to_an_hour() {
        let at = |v: &str| retry_after(&with_retry_after(v), now());
        assert_eq!(at("2"), Some(Duration::from_secs(2)));
        assert_eq!(at(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(at("86400"), Some(Duration::from_secs(3600)));
        assert_eq!(
            at("Mon, 01 Jun 2026 12:00:30 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(at("Mon, 01 Jun 2026 11:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(
            at("Tue, 02 Jun 2026 12:00:00 GMT"),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(at("soon"), None);
        assert_eq!(at("-5"), None);
        assert_eq!(retry_after(&HeaderMap::new(), now()), None);
    }

    #[test]
    fn targets_encode_each_segment_and_hide_credentials() {
        let t = target(
            "jira",
            "url",
            "https://me:pw@example.atlassian.net/",
            &["rest", "api", "3", "issue", "NW-1/../x?y"],
            &[("jql", "labels = \"spoke-t 1\"")],
        )
        .unwrap();
        assert_eq!(
            t.url.path(),
            "/rest/api/3/issue/NW-1%2F..%2Fx%3Fy",
            "{}",
            t.url
        );
        assert_eq!(t.url.password(), Some("pw"));
        assert!(
            !t.shown.contains("pw") && !t.shown.contains("me@"),
            "{}",
            t.shown
        );
        let pairs: Vec<_> = t.url.query_pairs().collect();
        assert_eq!(pairs[0].1, "labels = \"spoke-t 1\"");
        let bad = target("jira", "the url of connector jira", "ftp://x", &[], &[]).unwrap_err();
        assert!(
            bad.to_string().contains("the url of connector jira"),
            "{bad}"
        );
        assert!(!bad.retryable());
    }

    #[test]
    fn clip_cuts_long_messages() {
        let long = "x".repeat(1000);
        assert_eq!(clip(&long).chars().count(), MESSAGE_CHARS + 1);
        assert_eq!(clip("  short "), "short");
    }

    fn refusals() -> Refusals<'static> {
        Refusals {
            connector: "c",
            auth_setting: Some("the token".into()),
            messages: |v| strings(&v["errorMessages"]).map(str::to_owned).collect(),
        }
    }

    fn answer(status: u16, headers: HeaderMap, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn statuses_sort_into_what_the_outbox_does_next() {
        let t = target("c", "url", "http://127.0.0.1:9", &["x"], &[]).unwrap();
        let r = refusals();
        let e = r.classify(
            "doing",
            &t,
            &answer(400, HeaderMap::new(), r#"{"errorMessages":["nope"]}"#),
        );
        assert_eq!(
            e,
            PushError::Rejected {
                connector: "c".into(),
                status: 400,
                message: "doing: nope".into()
            }
        );
        let e = r.classify("doing", &t, &answer(401, HeaderMap::new(), ""));
        assert!(
            matches!(&e, PushError::Auth { reason, setting, .. } if reason == "Unauthorized" && setting == "the token"),
            "{e:?}"
        );
        let e = r.classify("doing", &t, &answer(503, with_retry_after("7"), ""));
        assert!(
            matches!(e, PushError::RetryAfter { after, status: 503, .. } if after == Duration::from_secs(7))
        );
        let e = r.classify("doing", &t, &answer(503, HeaderMap::new(), "down"));
        assert!(
            matches!(&e, PushError::Transient { message, .. } if message.contains("503 Service Unavailable from http://127.0.0.1:9/x: down")),
            "{e:?}"
        );
        let e = r.classify("doing", &t, &answer(429, HeaderMap::new(), ""));
        assert!(e.retryable(), "{e:?}");
        let plain = Refusals {
            auth_setting: None,
            ..refusals()
        };
        let e = plain.classify("doing", &t, &answer(403, HeaderMap::new(), "no"));
        assert!(
            matches!(e, PushError::Rejected { status: 403, .. }),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out_as_transient() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(socket);
        });
        let t = target("c", "url", &format!("http://127.0.0.1:{port}"), &["x"], &[]).unwrap();
        let request = client("c").unwrap().get(t.url.clone());
        let e = send("c", request, "GET", &t.shown, Duration::from_millis(300))
            .await
            .unwrap_err();
        held.abort();
        assert!(
            matches!(&e, PushError::Transient { message, .. } if message.contains("no complete answer within")
                && message.contains(&format!("GET http://127.0.0.1:{port}/x"))),
            "{e:?}"
        );
    }
}
