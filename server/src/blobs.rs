//! Content-addressed blobs over HTTP: `PUT` and `GET
//! /v1/hubs/{hub}/blobs/{sha256}` with a bearer token for that hub. Uploads
//! stream to a temporary file while hashing; only a body whose SHA-256
//! matches its name is kept.

use crate::auth::TokenRecord;
use crate::relay::Relay;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use tokio::io::AsyncWriteExt;

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
    if let Err(resp) = check_request(&relay, &headers, &hub, &sha, true) {
        return resp;
    }
    let target = blob_path(&relay, &hub, &sha);
    if tokio::fs::try_exists(&target).await.unwrap_or(false) {
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
    let tmp = tmp_dir.join(format!(
        "{sha}.{}",
        crate::auth::base32(&crate::auth::random::<6>())
    ));
    match receive(body, &tmp, limit).await {
        Ok((digest, size)) if digest == sha => {
            let stored = async {
                if let Some(dir) = target.parent() {
                    tokio::fs::create_dir_all(dir).await?;
                }
                tokio::fs::rename(&tmp, &target).await
            }
            .await;
            match stored {
                Ok(()) => {
                    relay.metrics.blobs_stored.fetch_add(1, Relaxed);
                    (
                        StatusCode::CREATED,
                        axum::Json(json!({ "sha256": sha, "size": size, "stored": true })),
                    )
                        .into_response()
                }
                Err(e) => {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
                }
            }
        }
        Ok((digest, _)) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            error(
                StatusCode::BAD_REQUEST,
                "hash_mismatch",
                format!("the body's SHA-256 is {digest}, not {sha}; nothing was stored"),
            )
        }
        Err(resp) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            resp
        }
    }
}

#[allow(clippy::result_large_err)]
/// Streams a body to `path`, hashing as it goes; refuses past `limit` bytes.
async fn receive(body: Body, path: &PathBuf, limit: u64) -> Result<(String, u64), Response> {
    let internal =
        |e: std::io::Error| error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string());
    let mut file = tokio::fs::File::create(path).await.map_err(internal)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("upload interrupted: {e}"),
            )
        })?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("blobs are limited to {limit} bytes"),
            ));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(internal)?;
    }
    file.sync_all().await.map_err(internal)?;
    let digest: [u8; 32] = hasher.finalize().into();
    Ok((hex(&digest), size))
}

/// The start of a `bytes=N-` range; `None` for any other form.
fn parse_range_start(value: &str) -> Option<u64> {
    value
        .trim()
        .strip_prefix("bytes=")?
        .strip_suffix('-')?
        .parse()
        .ok()
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
    let path = blob_path(&relay, &hub, &sha);
    let file = match tokio::fs::File::open(&path).await {
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
    let mut file = file;
    let total = match file.metadata().await {
        Ok(m) => m.len(),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    };
    // `Range: bytes=N-` resumes an interrupted download.
    let start = match headers
        .get(header::RANGE)
        .map(|v| parse_range_start(v.to_str().unwrap_or("")))
    {
        None => 0,
        Some(Some(n)) if n < total => n,
        Some(Some(n)) if n == total && total == 0 => 0,
        Some(_) => {
            let mut r = error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "bad_range",
                format!("only `bytes=N-` with N below the size ({total}) is supported"),
            );
            if let Ok(v) = header::HeaderValue::from_str(&format!("bytes */{total}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    if start > 0
        && let Err(e) =
            tokio::io::AsyncSeekExt::seek(&mut file, std::io::SeekFrom::Start(start)).await
    {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string());
    }
    let stream = tokio_util::io::ReaderStream::new(file);
    let mut response = Response::new(Body::from_stream(stream));
    if start > 0 {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
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
    h.insert(
        header::CONTENT_LENGTH,
        header::HeaderValue::from(total - start),
    );
    if start > 0
        && let Ok(v) =
            header::HeaderValue::from_str(&format!("bytes {start}-{}/{total}", total - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    response
}
