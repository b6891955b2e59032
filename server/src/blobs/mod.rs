//! Content-addressed blobs over HTTP: `PUT` and `GET
//! /v1/hubs/{hub}/blobs/{sha256}` with a bearer token for that hub. Uploads
//! stream to a temporary file while hashing; only a body whose SHA-256
//! matches its name is kept. An upload that falls under a minimum rate is
//! cut, so a stalled body cannot hold a socket and a file for ever.
//! Downloads answer a single `Range` (RFC 9110).
//!
//! Blobs live under the data folder, or, when the relay keeps hubs on NATS
//! JetStream, in the object store ([`nats`]), with the same checks.

pub mod nats;

use crate::auth::TokenRecord;
use crate::relay::Relay;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The slowest a blob upload may be, averaged over the relay's stall window
/// ([`crate::relay::RelayConfig::blob_stall_window`]). 16 KiB/s is far below
/// any working link, and a body slower than that is almost always one that
/// stopped.
pub const MIN_UPLOAD_BYTES_PER_SEC: u64 = 16 * 1024;

/// The stall window is checked in this many slots, so a stall is noticed at
/// most one slot after the window that proves it.
const RATE_SLOTS: usize = 16;

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "error": code, "message": message.into() });
    (status, axum::Json(body)).into_response()
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Where a blob lives: `DATA/hubs/HUB/blobs/ab/cdef...`.
pub fn blob_path(relay: &Relay, hub: &str, sha: &str) -> PathBuf {
    relay
        .hub_dir(hub)
        .join("blobs")
        .join(&sha[..2])
        .join(&sha[2..])
}

/// Checks the bearer token against the hub in the URL. The error is the
/// response to send, as handlers return it directly.
#[allow(clippy::result_large_err)]
fn authorize(
    relay: &Relay,
    headers: &HeaderMap,
    hub: &str,
    write: bool,
) -> Result<TokenRecord, Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send Authorization: Bearer <token>",
            )
        })?;
    let record = match relay.registry.authenticate(token.trim()) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                e.to_string(),
            ));
        }
        Err(e) => {
            return Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                e.to_string(),
            ));
        }
    };
    if record.hub != hub {
        return Err(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this token belongs to another hub, not {hub}"),
        ));
    }
    if write && !record.can_submit() {
        return Err(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("@{} is read-only and cannot upload", record.handle),
        ));
    }
    Ok(record)
}

/// The NATS blob bucket when the relay keeps hubs on NATS (opened on first
/// use), `None` for blobs under the data folder.
#[allow(clippy::result_large_err)]
async fn nats_blobs(relay: &Relay) -> Result<Option<Arc<nats::NatsBlobs>>, Response> {
    let Some(conn) = relay.nats() else {
        return Ok(None);
    };
    let replicas = relay.config.nats.as_ref().map_or(3, |n| n.replicas);
    relay
        .nats_blobs
        .get_or_try_init(|| async { nats::NatsBlobs::open(conn, replicas).await.map(Arc::new) })
        .await
        .map(|b| Some(b.clone()))
        .map_err(|e| unavailable(&e))
}

/// The answer when NATS cannot be reached or refused a request.
fn unavailable(e: &anyhow::Error) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        format!("the blob store on NATS failed: {e:#}"),
    )
}

/// Checks the blob name and the token; `write` for uploads.
#[allow(clippy::result_large_err)]
fn check_request(
    relay: &Relay,
    headers: &HeaderMap,
    hub: &str,
    sha: &str,
    write: bool,
) -> Result<TokenRecord, Response> {
    if !is_sha256_hex(sha) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the blob name must be 64 lowercase hex digits (its SHA-256)",
        ));
    }
    authorize(relay, headers, hub, write)
}

/// `PUT /v1/hubs/{hub}/blobs/{sha256}`
pub async fn put_blob(
    State(relay): State<Arc<Relay>>,
    UrlPath((hub, sha)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // The rate floor counts from here, so a body that never starts is cut too.
    let started = Instant::now();
    if let Err(resp) = check_request(&relay, &headers, &hub, &sha, true) {
        return resp;
    }
    let on_nats = match nats_blobs(&relay).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let target = blob_path(&relay, &hub, &sha);
    let exists = match &on_nats {
        Some(blobs) => match blobs.info(&hub, &sha).await {
            Ok(info) => info.is_some(),
            Err(e) => return unavailable(&e),
        },
        None => tokio::fs::try_exists(&target).await.unwrap_or(false),
    };
    if exists {
        return (
            StatusCode::OK,
            axum::Json(json!({ "sha256": sha, "stored": false })),
        )
            .into_response();
    }
    let limit = relay.config.max_blob_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("blobs are limited to {limit} bytes"),
        );
    }
    let tmp_dir = relay.hub_dir(&hub).join("blobs").join("tmp");
    if let Err(e) = tokio::fs::create_dir_all(&tmp_dir).await {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string());
    }
    // Removed on every way out but a successful rename, including this
    // future being dropped with its connection.
    let tmp = TempUpload {
        path: tmp_dir.join(format!(
            "{sha}.{}",
            crate::auth::base32(&crate::auth::random::<6>())
        )),
        kept: false,
    };
    let floor = RateFloor::new(started, relay.config.blob_stall_window);
    match receive(body, &tmp.path, limit, floor).await {
        Ok((digest, size)) if digest == sha => {
            let stored = match &on_nats {
                // Copied from the checked file; the file is deleted after.
                Some(blobs) => {
                    let copied = async {
                        let mut file = tokio::fs::File::open(&tmp.path).await?;
                        blobs.put(&hub, &sha, &mut file).await
                    }
                    .await;
                    match copied {
                        Ok(_) => Ok(()),
                        Err(e) => return unavailable(&e),
                    }
                }
                None => async {
                    if let Some(dir) = target.parent() {
                        tokio::fs::create_dir_all(dir).await?;
                    }
                    tokio::fs::rename(&tmp.path, &target).await
                }
                .await
                .map(|()| tmp.kept()),
            };
            match stored {
                Ok(()) => {
                    relay.metrics.blobs_stored.fetch_add(1, Relaxed);
                    (
                        StatusCode::CREATED,
                        axum::Json(json!({ "sha256": sha, "size": size, "stored": true })),
                    )
                        .into_response()
                }
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
            }
        }
        Ok((digest, _)) => error(
            StatusCode::BAD_REQUEST,
            "hash_mismatch",
            format!("the body's SHA-256 is {digest}, not {sha}; nothing was stored"),
        ),
        Err(Refused::Stalled { received, window }) => {
            relay.metrics.blob_uploads_stalled.fetch_add(1, Relaxed);
            let mut resp = error(
                StatusCode::REQUEST_TIMEOUT,
                "too_slow",
                format!(
                    "upload cut: {received} bytes arrived in the last {:.1} s, under the minimum of {MIN_UPLOAD_BYTES_PER_SEC} bytes/s; nothing was stored",
                    window.as_secs_f64()
                ),
            );
            // The rest of the body is never read: the connection cannot be reused.
            resp.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            resp
        }
        Err(Refused::Response(resp)) => resp,
    }
}

/// A temporary upload file, deleted when dropped unless it was kept.
struct TempUpload {
    path: PathBuf,
    kept: bool,
}

impl TempUpload {
    /// The file was renamed into place: nothing to delete.
    fn kept(mut self) {
        self.kept = true;
    }
}

impl Drop for TempUpload {
    fn drop(&mut self) {
        // One unlink; also runs when the upload's future is dropped, where
        // nothing async can be awaited.
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Why an upload was not received.
enum Refused {
    /// The body fell under [`MIN_UPLOAD_BYTES_PER_SEC`] over the window.
    Stalled { received: u64, window: Duration },
    /// Any other refusal, as the response to send.
    Response(Response),
}

impl From<Response> for Refused {
    fn from(resp: Response) -> Self {
        Refused::Response(resp)
    }
}

/// The upload rate floor: bytes counted in [`RATE_SLOTS`] slots over the
/// window, so the rate is averaged over the last whole window (the first one
/// starting when the request came in).
struct RateFloor {
    start: Instant,
    window: Duration,
    slot: Duration,
    /// Bytes per slot, oldest first; the last is the slot in progress.
    counts: VecDeque<u64>,
    /// Which slot (counted from `start`) the last entry of `counts` is.
    current: u64,
    /// Bytes one whole window must bring.
    need: u64,
}

impl RateFloor {
    fn new(start: Instant, window: Duration) -> Self {
        let window = window.max(Duration::from_millis(RATE_SLOTS as u64));
        let slot = window / RATE_SLOTS as u32;
        let need = u64::try_from(u128::from(MIN_UPLOAD_BYTES_PER_SEC) * window.as_millis() / 1000)
            .unwrap_or(u64::MAX);
        RateFloor {
            start,
            window: slot * RATE_SLOTS as u32,
            slot,
            counts: VecDeque::from([0]),
            current: 0,
            need,
        }
    }

    /// Moves the slot in progress up to `now`.
    fn advance(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        let index = u64::try_from(elapsed / self.slot.as_nanos().max(1)).unwrap_or(u64::MAX);
        let gap = index.saturating_sub(self.current);
        if gap > RATE_SLOTS as u64 {
            // Every slot in the window is past: all of them are empty.
            self.counts.clear();
            self.counts.resize(RATE_SLOTS + 1, 0);
        } else {
            for _ in 0..gap {
                self.counts.push_back(0);
            }
        }
        while self.counts.len() > RATE_SLOTS + 1 {
            self.counts.pop_front();
        }
        self.current = self.current.max(index);
    }

    fn record(&mut self, now: Instant, bytes: u64) {
        self.advance(now);
        if let Some(last) = self.counts.back_mut() {
            *last += bytes;
        }
    }

    /// The bytes of the last whole window, when a whole window has passed
    /// and they are under the floor.
    fn under(&mut self, now: Instant) -> Option<u64> {
        self.advance(now);
        if self.current < RATE_SLOTS as u64 {
            return None;
        }
        // The slot in progress is left out: the window is the whole slots before it.
        let received: u64 = self.counts.iter().rev().skip(1).sum();
        (received < self.need).then_some(received)
    }
}

/// Streams a body to `path`, hashing as it goes; refuses past `limit` bytes
/// and cuts a body that falls under the rate floor.
async fn receive(
    body: Body,
    path: &Path,
    limit: u64,
    mut floor: RateFloor,
) -> Result<(String, u64), Refused> {
    let internal =
        |e: std::io::Error| error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string());
    let mut file = tokio::fs::File::create(path).await.map_err(internal)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut stream = body.into_data_stream();
    let mut check = tokio::time::interval_at(
        tokio::time::Instant::from_std(floor.start + floor.slot),
        floor.slot,
    );
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let chunk = tokio::select! {
            chunk = stream.next() => match chunk {
                Some(chunk) => chunk,
                None => break,
            },
            _ = check.tick() => {
                if let Some(received) = floor.under(Instant::now()) {
                    return Err(Refused::Stalled { received, window: floor.window });
                }
                continue;
            }
        };
        let chunk = chunk.map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("upload interrupted: {e}"),
            )
        })?;
        floor.record(Instant::now(), chunk.len() as u64);
        size += chunk.len() as u64;
        if size > limit {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("blobs are limited to {limit} bytes"),
            )
            .into());
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(internal)?;
    }
    file.sync_all().await.map_err(internal)?;
    let digest: [u8; 32] = hasher.finalize().into();
    Ok((hex(&digest), size))
}

/// What a `Range` header asks of a blob of a given size (RFC 9110 §14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeAsk {
    /// The whole blob, 200: no `Range`, one the relay ignores (another unit,
    /// invalid syntax), or several ranges (the spec lets a server answer
    /// those with the whole representation).
    Whole,
    /// Bytes `first..=last` of the blob, 206; `last` is below the size.
    Part { first: u64, last: u64 },
    /// No byte of the blob is in the range: 416.
    Unsatisfiable,
}

/// Reads a `Range` value for a blob of `size` bytes. Accepts the single
/// ranges `bytes=first-last`, `bytes=first-` and `bytes=-suffix`.
fn parse_range(value: &str, size: u64) -> RangeAsk {
    let Some((unit, set)) = value.trim().split_once('=') else {
        return RangeAsk::Whole;
    };
    if !unit.eq_ignore_ascii_case("bytes") {
        return RangeAsk::Whole;
    }
    // A list may hold empty elements and whitespace around its commas.
    let specs: Vec<&str> = set
        .split(',')
        .map(|s| s.trim_matches([' ', '\t']))
        .filter(|s| !s.is_empty())
        .collect();
    let [spec] = specs[..] else {
        return RangeAsk::Whole;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return RangeAsk::Whole;
    };
    if first.is_empty() {
        // `-N`: the last N bytes (all of them when N is past the size).
        let Some(suffix) = digits(last) else {
            return RangeAsk::Whole;
        };
        if suffix == 0 {
            return RangeAsk::Unsatisfiable;
        }
        if size == 0 {
            // Satisfiable in the spec's terms, yet no range can describe
            // zero bytes: answer with the whole (empty) blob.
            return RangeAsk::Whole;
        }
        return RangeAsk::Part {
            first: size.saturating_sub(suffix),
            last: size - 1,
        };
    }
    let Some(first) = digits(first) else {
        return RangeAsk::Whole;
    };
    let last = if last.is_empty() {
        None
    } else {
        match digits(last) {
            Some(n) => Some(n),
            None => return RangeAsk::Whole,
        }
    };
    if last.is_some_and(|last| last < first) {
        // An invalid range-spec: the header is ignored.
        return RangeAsk::Whole;
    }
    if first >= size {
        return RangeAsk::Unsatisfiable;
    }
    RangeAsk::Part {
        first,
        last: last.map_or(size - 1, |l| l.min(size - 1)),
    }
}

/// A run of ASCII digits as a number; one past `u64` saturates, as it is
/// past any blob's size anyway.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `GET /v1/hubs/{hub}/blobs/{sha256}`
pub async fn get_blob(
    State(relay): State<Arc<Relay>>,
    UrlPath((hub, sha)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(resp) = check_request(&relay, &headers, &hub, &sha, false) {
        return resp;
    }
    match nats_blobs(&relay).await {
        Ok(Some(blobs)) => nats_get(&blobs, &hub, &sha, &headers).await,
        Ok(None) => local_get(&relay, &hub, &sha, &headers).await,
        Err(resp) => resp,
    }
}

/// What a `GET` answers for a blob of `total` bytes: the part to send, or
/// the `416` to send instead.
#[allow(clippy::result_large_err)]
fn asked_range(headers: &HeaderMap, total: u64) -> Result<(RangeAsk, u64, u64), Response> {
    // A value that is not text cannot be a range: ignored, as an invalid one is.
    let ask = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map_or(RangeAsk::Whole, |v| parse_range(v, total));
    match ask {
        RangeAsk::Whole => Ok((ask, 0, total)),
        RangeAsk::Part { first, last } => Ok((ask, first, last - first + 1)),
        RangeAsk::Unsatisfiable => {
            let mut r = error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "bad_range",
                format!("the range asks for no byte of this blob ({total} bytes)"),
            );
            if let Ok(v) = header::HeaderValue::from_str(&format!("bytes */{total}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r.headers_mut().insert(
                header::ACCEPT_RANGES,
                header::HeaderValue::from_static("bytes"),
            );
            Err(r)
        }
    }
}

/// A blob from the NATS object store.
async fn nats_get(blobs: &nats::NatsBlobs, hub: &str, sha: &str, headers: &HeaderMap) -> Response {
    let info = match blobs.info(hub, sha).await {
        Ok(Some(info)) => info,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no blob {sha} in hub {hub}"),
            );
        }
        Err(e) => return unavailable(&e),
    };
    let total = info.size as u64;
    let (ask, first, length) = match asked_range(headers, total) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let body = Body::from_stream(blobs.read(&info, sha, first, length));
    blob_response(body, ask, total, length)
}

/// A blob under the data folder.
async fn local_get(relay: &Relay, hub: &str, sha: &str, headers: &HeaderMap) -> Response {
    let path = blob_path(relay, hub, sha);
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no blob {sha} in hub {hub}"),
            );
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    };
    let total = match file.metadata().await {
        Ok(m) => m.len(),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    };
    let (ask, first, length) = match asked_range(headers, total) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if first > 0
        && let Err(e) =
            tokio::io::AsyncSeekExt::seek(&mut file, std::io::SeekFrom::Start(first)).await
    {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string());
    }
    let stream = tokio_util::io::ReaderStream::new(file.take(length));
    blob_response(Body::from_stream(stream), ask, total, length)
}

/// A `200` or `206` carrying `body`, `length` bytes of a blob of `total`.
fn blob_response(body: Body, ask: RangeAsk, total: u64, length: u64) -> Response {
    let mut response = Response::new(body);
    if let RangeAsk::Part { first, last } = ask {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) = header::HeaderValue::from_str(&format!("bytes {first}-{last}/{total}")) {
            response.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(
        header::ACCEPT_RANGES,
        header::HeaderValue::from_static("bytes"),
    );
    h.insert(header::CONTENT_LENGTH, header::HeaderValue::from(length));
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_ranges_follow_rfc_9110() {
        let part = |first, last| RangeAsk::Part { first, last };
        for (value, want) in [
            ("bytes=0-99", part(0, 99)),
            ("bytes=10-10", part(10, 10)),
            ("bytes=900-", part(900, 999)),
            ("bytes=900-5000", part(900, 999)),
            ("bytes=-100", part(900, 999)),
            ("bytes=-5000", part(0, 999)),
            ("BYTES=1-2", part(1, 2)),
            ("bytes= 1-2 ,", part(1, 2)),
            ("bytes=0-99999999999999999999999", part(0, 999)),
            ("bytes=1000-", RangeAsk::Unsatisfiable),
            ("bytes=1000-2000", RangeAsk::Unsatisfiable),
            ("bytes=99999999999999999999999-", RangeAsk::Unsatisfiable),
            ("bytes=-0", RangeAsk::Unsatisfiable),
            ("bytes=0-1,5-6", RangeAsk::Whole),
            ("bytes=5-1", RangeAsk::Whole),
            ("bytes=a-b", RangeAsk::Whole),
            ("bytes=1", RangeAsk::Whole),
            ("bytes=-", RangeAsk::Whole),
            ("bytes=", RangeAsk::Whole),
            ("bytes=+1-2", RangeAsk::Whole),
            ("items=0-1", RangeAsk::Whole),
            ("0-1", RangeAsk::Whole),
        ] {
            assert_eq!(parse_range(value, 1000), want, "{value}");
        }
        assert_eq!(parse_range("bytes=0-", 0), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range("bytes=-1", 0), RangeAsk::Whole);
    }

    #[test]
    fn the_rate_floor_averages_over_the_last_whole_window() {
        let start = Instant::now();
        let window = Duration::from_secs(16);
        let at = |s: u64| start + Duration::from_secs(s);
        let need = MIN_UPLOAD_BYTES_PER_SEC * 16;
        let mut floor = RateFloor::new(start, window);
        // Nothing is judged before a whole window has passed.
        assert_eq!(floor.under(at(15)), None);
        assert_eq!(floor.under(at(16)), Some(0));

        let mut floor = RateFloor::new(start, window);
        floor.record(at(0), need);
        assert_eq!(floor.under(at(16)), None);
        // The early burst leaves the window one slot at a time.
        assert_eq!(floor.under(at(17)), Some(0));

        let mut floor = RateFloor::new(start, window);
        for s in 0..40 {
            floor.record(at(s), MIN_UPLOAD_BYTES_PER_SEC);
            assert_eq!(floor.under(at(s) + Duration::from_millis(500)), None);
        }
        // A long silence empties the whole window.
        assert_eq!(floor.under(at(1000)), Some(0));
    }
}
