//! Blobs: content-addressed files kept under `HOME/blobs/ab/cdef...`, moved to
//! and from the relay over HTTP. Uploads skip blobs the relay has; downloads
//! resume from a partial file and are verified by hash before they are kept.

use super::HubAddress;
use crate::model::ids::hex;
use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Where a blob lives in a client's home.
pub fn local_blob_path(home: &Path, sha256: &str) -> PathBuf {
    let (head, tail) = sha256.split_at(2.min(sha256.len()));
    home.join("blobs").join(head).join(tail)
}

pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// SHA-256 of a file, read in chunks.
pub fn sha256_file(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let digest: [u8; 32] = hasher.finalize().into();
    Ok(hex(&digest))
}

/// Copies a file into the home's blob store; returns its digest.
pub fn store_local(home: &Path, source: &Path) -> Result<String> {
    let sha = sha256_file(source)?;
    let target = local_blob_path(home, &sha);
    if !target.exists() {
        let dir = target.parent().unwrap_or(home);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = target.with_extension("tmp");
        std::fs::copy(source, &tmp)
            .with_context(|| format!("copying {} into the blob store", source.display()))?;
        std::fs::rename(&tmp, &target)
            .with_context(|| format!("storing blob {sha} at {}", target.display()))?;
    }
    Ok(sha)
}

/// Stores bytes already hashed as `sha256` into the home's blob store.
pub fn store_bytes(home: &Path, sha256: &str, bytes: &[u8]) -> Result<PathBuf> {
    let target = local_blob_path(home, sha256);
    if !target.exists() {
        let dir = target.parent().unwrap_or(home);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        // Write aside, then rename: a crash never leaves a half blob under its name.
        let tmp = target.with_extension("tmp");
        std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &target)
            .with_context(|| format!("storing blob {sha256} at {}", target.display()))?;
    }
    Ok(target)
}

pub struct BlobClient {
    http: reqwest::Client,
    addr: HubAddress,
    token: String,
}

/// What an upload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uploaded {
    Stored,
    AlreadyThere,
}

impl BlobClient {
    pub fn new(addr: HubAddress, token: String, ca_file: Option<&Path>) -> Result<BlobClient> {
        let tls = super::tls::client_config(ca_file)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .connect_timeout(Duration::from_secs(15))
            .build()
            .context("setting up the HTTP client")?;
        Ok(BlobClient { http, addr, token })
    }

    /// Uploads the local blob `sha256` from `home`, retrying transient failures.
    pub async fn upload(&self, home: &Path, sha256: &str) -> Result<Uploaded> {
        let path = local_blob_path(home, sha256);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.upload_once(&path, sha256).await {
                Ok(u) => return Ok(u),
                Err(e) if attempt < 3 && is_transient(&e) => {
                    tokio::time::sleep(super::backoff(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn upload_once(&self, path: &Path, sha256: &str) -> Result<Uploaded> {
        let file = tokio::fs::File::open(path).await.with_context(|| {
            format!(
                "blob {sha256} is not in the local store ({})",
                path.display()
            )
        })?;
        let len = file.metadata().await?.len();
        let body = reqwest::Body::wrap_stream(tokio_util_stream(file));
        let response = self
            .http
            .put(self.addr.blob_url(sha256))
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(body)
            .send()
            .await
            .with_context(|| format!("uploading blob {sha256}"))?;
        match response.status().as_u16() {
            201 => Ok(Uploaded::Stored),
            200 => Ok(Uploaded::AlreadyThere),
            code => {
                let text = response.text().await.unwrap_or_default();
                bail!(HttpError {
                    code,
                    what: format!("uploading blob {sha256}"),
                    body: text
                })
            }
        }
    }

    /// Downloads blob `sha256` into `home`'s store unless it is there; resumes
    /// a partial download and verifies the digest. Returns the local path.
    pub async fn fetch(&self, home: &Path, sha256: &str) -> Result<PathBuf> {
        if !is_sha256_hex(sha256) {
            bail!("`{sha256}` is not a blob digest");
        }
        let target = local_blob_path(home, sha256);
        if target.exists() {
            return Ok(target);
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.fetch_once(&target, sha256).await {
                Ok(()) => return Ok(target),
                Err(e) if attempt < 3 && is_transient(&e) => {
                    tokio::time::sleep(super::backoff(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn fetch_once(&self, target: &Path, sha256: &str) -> Result<()> {
        let dir = target.parent().context("blob path has no folder")?;
        tokio::fs::create_dir_all(dir).await?;
        let part = target.with_extension("part");
        let have = tokio::fs::metadata(&part)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        let mut request = self
            .http
            .get(self.addr.blob_url(sha256))
            .bearer_auth(&self.token);
        if have > 0 {
            request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("downloading blob {sha256}"))?;
        let status = response.status().as_u16();
        let mut file = match status {
            206 => {
                tokio::fs::OpenOptions::new()
                    .append(true)
                    .open(&part)
                    .await?
            }
            200 => tokio::fs::File::create(&part).await?,
            416 => {
                // The partial file is no use (as long as the blob or longer): start over.
                let _ = tokio::fs::remove_file(&part).await;
                bail!(HttpError {
                    code: 416,
                    what: format!("resuming blob {sha256}"),
                    body: String::new()
                });
            }
            code => {
                let text = response.text().await.unwrap_or_default();
                bail!(HttpError {
                    code,
                    what: format!("downloading blob {sha256}"),
                    body: text
                });
            }
        };
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.with_context(|| format!("downloading blob {sha256}"))?;
            file.write_all(&chunk).await?;
        }
        file.sync_all().await?;
        drop(file);
        let digest = {
            let part = part.clone();
            tokio::task::spawn_blocking(move || sha256_file(&part)).await??
        };
        if digest != sha256 {
            let _ = tokio::fs::remove_file(&part).await;
            bail!(
                "blob {sha256} arrived damaged (its SHA-256 is {digest}); the partial file was discarded"
            );
        }
        tokio::fs::rename(&part, target).await?;
        Ok(())
    }
}

/// An HTTP status the relay answered with.
#[derive(Debug, thiserror::Error)]
#[error("{what}: the relay answered {code}: {body}")]
pub struct HttpError {
    pub code: u16,
    pub what: String,
    pub body: String,
}

/// Network failures, 5xx and a refused resume are worth another try.
fn is_transient(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        if let Some(h) = c.downcast_ref::<HttpError>() {
            return h.code >= 500 || h.code == 416 || h.code == 429;
        }
        c.downcast_ref::<reqwest::Error>()
            .is_some_and(|r| r.is_connect() || r.is_timeout() || r.is_body() || r.is_request())
    })
}

/// A file as a stream of byte chunks.
fn tokio_util_stream(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    futures_util::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 256 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    })
}

/// The local path of a blob, downloading it from the replica's hub first
/// when it is not on this machine (blocking; for threads outside a runtime).
pub fn fetch_blocking(
    home: &Path,
    meta: &crate::store::ReplicaMeta,
    sha: &str,
) -> anyhow::Result<std::path::PathBuf> {
    let local = local_blob_path(home, sha);
    if local.exists() {
        return Ok(local);
    }
    // The relay that last let us in is the likeliest to answer.
    let relay = meta
        .relay_in_use
        .clone()
        .filter(|u| super::relay_urls(meta).contains(u))
        .or_else(|| meta.hub_url.clone());
    let (Some(url), Some(token)) = (relay, meta.hub_token.clone()) else {
        return Err(anyhow::anyhow!(
            "blob {sha} is not on this machine and this replica has not joined a hub"
        ));
    };
    let addr = super::HubAddress::parse(&url)?;
    let ca = meta.hub_ca_file.as_ref().map(std::path::PathBuf::from);
    let client = BlobClient::new(addr, token, ca.as_deref())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(client.fetch(home, sha))
}
