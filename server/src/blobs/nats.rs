//! Blobs on the JetStream object store, for relays that keep hubs on NATS
//! (`serve --nats`): one bucket, [`BUCKET`], holds every hub's blobs as
//! objects named `{hub}/{sha256}`, so a blob uploaded through one relay is
//! downloaded through any other.
//!
//! An upload is first received, checked and hashed into a local temporary
//! file exactly as without NATS; only a body whose SHA-256 matches its name
//! is then copied into the bucket, streaming from that file. An object
//! becomes visible when its metadata message is stored, after its last
//! chunk, so no reader ever sees part of a blob. Downloads read the object's
//! chunks one at a time from the stream leader (never the whole blob in
//! memory) and check the SHA-256 before the last chunk goes out.

use crate::nats::Nats;
use anyhow::{Context as _, anyhow};
use async_nats::jetstream::object_store::{ObjectInfo, ObjectMetadata, ObjectStore};
use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use bytes::Bytes;
use sha2::{Digest, Sha256};

/// The object store bucket holding every hub's blobs.
pub const BUCKET: &str = "spoke_blobs";

/// Bytes per object chunk (one JetStream message each).
const CHUNK_BYTES: usize = 128 * 1024;

/// The blob bucket, opened once per relay.
pub struct NatsBlobs {
    store: ObjectStore,
    /// The bucket's stream, read chunk by chunk on downloads.
    stream: Stream,
}

/// A blob's object name in [`BUCKET`].
pub fn object_name(hub: &str, sha: &str) -> String {
    format!("{hub}/{sha}")
}

impl NatsBlobs {
    /// Opens [`BUCKET`], creating it with `replicas` copies when missing.
    pub async fn open(nats: &Nats, replicas: usize) -> anyhow::Result<NatsBlobs> {
        let store = nats
            .ensure_object_store_described(BUCKET, replicas, "Spoke hubs' blobs")
            .await?;
        let stream = nats
            .jetstream
            .get_stream(format!("OBJ_{BUCKET}"))
            .await
            .with_context(|| format!("opening the stream of object store {BUCKET}"))?;
        Ok(NatsBlobs { store, stream })
    }

    /// The blob's object, `None` when it is not stored (or was deleted).
    /// Read from the stream's leader, not a replica that may lag, so a blob
    /// stored through another relay is found as soon as its upload was
    /// answered.
    pub async fn info(&self, hub: &str, sha: &str) -> anyhow::Result<Option<ObjectInfo>> {
        let name = object_name(hub, sha);
        let subject = format!("$O.{BUCKET}.M.{}", URL_SAFE.encode(&name));
        let message = match self.stream.get_last_raw_message_by_subject(&subject).await {
            Ok(m) => m,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(None),
            Err(e) => {
                return Err(anyhow!(e)).with_context(|| format!("looking up blob {name} on NATS"));
            }
        };
        let info: ObjectInfo = serde_json::from_slice(&message.payload)
            .with_context(|| format!("reading the metadata of blob {name} on NATS"))?;
        Ok((!info.deleted).then_some(info))
    }

    /// Stores a checked blob from `data`. Visible to every relay once this
    /// returns `Ok`; on an error nothing is visible.
    pub async fn put(
        &self,
        hub: &str,
        sha: &str,
        data: &mut (impl tokio::io::AsyncRead + Unpin),
    ) -> anyhow::Result<u64> {
        let name = object_name(hub, sha);
        let meta = ObjectMetadata {
            name: name.clone(),
            chunk_size: Some(CHUNK_BYTES),
            ..Default::default()
        };
        let info = self
            .store
            .put(meta, data)
            .await
            .map_err(|e| anyhow!(e))
            .with_context(|| format!("storing blob {name} on NATS"))?;
        Ok(info.size as u64)
    }

    /// Reads `length` bytes of the object from `first` on, one chunk per
    /// request. When the whole blob is read, its SHA-256 must be `sha`, or
    /// the last chunk is replaced by an error (so a client never gets a
    /// complete wrong body).
    pub fn read(
        &self,
        info: &ObjectInfo,
        sha: &str,
        first: u64,
        length: u64,
    ) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
        let state = ReadState {
            stream: self.stream.clone(),
            subject: format!("$O.{BUCKET}.C.{}", info.nuid),
            next_seq: 1,
            chunks_left: info.chunks,
            offset: 0,
            first,
            end: first.saturating_add(length),
            whole: first == 0 && length == info.size as u64,
            size: info.size as u64,
            hasher: Sha256::new(),
            sha: sha.to_owned(),
            done: length == 0,
        };
        futures_util::stream::unfold(state, |mut state| async move {
            if state.done {
                return None;
            }
            match state.next().await {
                Ok(Some(bytes)) => Some((Ok(bytes), state)),
                Ok(None) => None,
                Err(e) => {
                    state.done = true;
                    Some((Err(e), state))
                }
            }
        })
    }
}

struct ReadState {
    stream: Stream,
    subject: String,
    /// The stream sequence to look for the next chunk from.
    next_seq: u64,
    chunks_left: usize,
    /// Bytes of the object before the next chunk.
    offset: u64,
    first: u64,
    end: u64,
    /// Whether the whole object is read (then its hash is checked).
    whole: bool,
    size: u64,
    hasher: Sha256,
    sha: String,
    done: bool,
}

impl ReadState {
    /// The next piece of the asked range; `None` past its end.
    async fn next(&mut self) -> std::io::Result<Option<Bytes>> {
        loop {
            if self.offset >= self.end {
                return Ok(None);
            }
            if self.chunks_left == 0 {
                return Err(std::io::Error::other(format!(
                    "blob object ends at {} bytes, {} expected",
                    self.offset, self.size
                )));
            }
            let message = self
                .stream
                .raw_message_builder()
                .sequence(self.next_seq)
                .next_by_subject(self.subject.clone())
                .send()
                .await
                .map_err(|e| std::io::Error::other(format!("reading a blob chunk: {e}")))?;
            self.next_seq = message.sequence + 1;
            self.chunks_left -= 1;
            let chunk = message.payload;
            let start = self.offset;
            self.offset += chunk.len() as u64;
            if self.whole {
                self.hasher.update(&chunk);
                if self.chunks_left == 0 || self.offset >= self.size {
                    let digest: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
                    let got = super::hex(&digest);
                    if self.offset != self.size || got != self.sha {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!(
                                "blob object holds {} bytes hashing to {got}, not {} bytes of {}",
                                self.offset, self.size, self.sha
                            ),
                        ));
                    }
                }
            }
            if self.offset <= self.first {
                continue;
            }
            let from = self.first.saturating_sub(start) as usize;
            let to = (self.end.min(self.offset) - start) as usize;
            return Ok(Some(chunk.slice(from..to)));
        }
    }
}
