//! The relay's NATS connection: connects to a list of servers, and holds the
//! JetStream context and the runtime that blocking callers (a hub's writer
//! thread) drive it on. Helpers here create the streams and buckets the
//! relay keeps on JetStream, so every piece of the relay that moves onto
//! NATS opens them the same way.

use anyhow::{Context as _, anyhow};
use async_nats::jetstream::{self, kv, object_store, stream};
use std::time::Duration;
use tokio::runtime::Handle;

/// How long one JetStream request (a publish's ack, a stream lookup) may
/// take before it counts as failed. A replicated stream electing a new
/// leader after a node died answers within a few seconds.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to a NATS cluster with JetStream.
#[derive(Clone)]
pub struct Nats {
    pub client: async_nats::Client,
    pub jetstream: jetstream::Context,
    runtime: Handle,
    urls: String,
}

impl Nats {
    /// Connects to `urls`, a comma-separated list of `nats://host:port`
    /// servers of one cluster (the client moves to another when one goes).
    /// Must be called within the tokio runtime that will drive the
    /// connection.
    pub async fn connect(urls: &str) -> anyhow::Result<Nats> {
        let list: Vec<&str> = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        if list.is_empty() {
            return Err(anyhow!("no NATS server given (expected URL[,URL...])"));
        }
        let addrs = list
            .iter()
            .map(|u| {
                u.parse::<async_nats::ServerAddr>()
                    .with_context(|| format!("`{u}` is not a NATS server address"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let client = async_nats::ConnectOptions::new()
            .name("spoke-relay")
            .connection_timeout(Duration::from_secs(5))
            .request_timeout(Some(REQUEST_TIMEOUT))
            .max_reconnects(None)
            .connect(addrs)
            .await
            .with_context(|| format!("connecting to NATS at {urls}"))?;
        let jetstream = jetstream::ContextBuilder::new()
            .timeout(REQUEST_TIMEOUT)
            .build(client.clone());
        Ok(Nats {
            client,
            jetstream,
            runtime: Handle::current(),
            urls: urls.to_owned(),
        })
    }

    /// The runtime the connection runs on: a thread outside it runs
    /// JetStream calls with `runtime().block_on(..)`.
    pub fn runtime(&self) -> &Handle {
        &self.runtime
    }

    /// The servers this connection was made with, as given.
    pub fn urls(&self) -> &str {
        &self.urls
    }

    /// The stream named in `config`, created with it when missing. An
    /// existing stream keeps its own configuration.
    pub async fn ensure_stream(&self, config: stream::Config) -> anyhow::Result<stream::Stream> {
        let name = config.name.clone();
        match self.jetstream.get_stream(&name).await {
            Ok(stream) => Ok(stream),
            Err(e)
                if matches!(
                    e.kind(),
                    jetstream::context::GetStreamErrorKind::JetStream(_)
                ) =>
            {
                match self.jetstream.create_stream(config).await {
                    Ok(stream) => Ok(stream),
                    // Another relay created it at the same moment.
                    Err(_) => self
                        .jetstream
                        .get_stream(&name)
                        .await
                        .with_context(|| format!("opening JetStream stream {name}")),
                }
            }
            Err(e) => Err(e).with_context(|| format!("looking up JetStream stream {name}")),
        }
    }

    /// The object store bucket `bucket`, created (file storage, `replicas`
    /// copies) when missing.
    pub async fn ensure_object_store(
        &self,
        bucket: &str,
        replicas: usize,
    ) -> anyhow::Result<object_store::ObjectStore> {
        self.ensure_object_store_described(bucket, replicas, "Spoke relay snapshots")
            .await
    }

    /// The object store bucket `bucket`, created (file storage, `replicas`
    /// copies, `description`) when missing.
    pub async fn ensure_object_store_described(
        &self,
        bucket: &str,
        replicas: usize,
        description: &str,
    ) -> anyhow::Result<object_store::ObjectStore> {
        if let Ok(store) = self.jetstream.get_object_store(bucket).await {
            return Ok(store);
        }
        let config = object_store::Config {
            bucket: bucket.to_owned(),
            description: Some(description.to_owned()),
            storage: stream::StorageType::File,
            num_replicas: replicas,
            ..Default::default()
        };
        match self.jetstream.create_object_store(config).await {
            Ok(store) => Ok(store),
            Err(_) => self
                .jetstream
                .get_object_store(bucket)
                .await
                .with_context(|| format!("opening JetStream object store {bucket}")),
        }
    }
}

impl Nats {
    /// The key-value bucket `bucket`, created (file storage, `replicas`
    /// copies, latest value per key only) when missing. An existing bucket
    /// keeps its own configuration.
    pub async fn ensure_kv(
        &self,
        bucket: &str,
        description: &str,
        replicas: usize,
    ) -> anyhow::Result<kv::Store> {
        if let Ok(store) = self.jetstream.get_key_value(bucket).await {
            return Ok(store);
        }
        // The bucket's stream is made here, as the client library would make
        // it: its own helper first asks for account details that a 2.9
        // server words differently.
        self.ensure_stream(stream::Config {
            name: format!("KV_{bucket}"),
            description: Some(description.to_owned()),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            storage: stream::StorageType::File,
            num_replicas: replicas.max(1),
            allow_rollup: true,
            deny_delete: true,
            deny_purge: false,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await
        .with_context(|| format!("creating JetStream key-value bucket {bucket}"))?;
        self.jetstream
            .get_key_value(bucket)
            .await
            .with_context(|| format!("opening JetStream key-value bucket {bucket}"))
    }
}

/// Whether `name` can be one token of a NATS subject and part of a stream
/// name: letters, digits, `-` and `_` only.
pub fn is_plain_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
