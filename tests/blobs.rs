//! Blobs between client homes and a relay: upload, verified and resumable
//! download, and blobs that travel ahead of the ops that refer to them.

use serde_json::json;
use spoke::model::{Change, EntityKind, EntityRef};
use spoke::service::Hub;
use spoke::sync::blobs::{BlobClient, local_blob_path, store_local};
use spoke::sync::{HubAddress, join, sync_once};
use spoke_relay::relay::RelayConfig;
use spoke_relay::server::Running;
use std::path::Path;

struct TestHub {
    running: Running,
    url: String,
    hub: String,
}

async fn relay(dir: &Path) -> TestHub {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let running = spoke_relay::server::start(listener, RelayConfig::new(dir.join("relay")))
        .await
        .expect("start");
    let hub = running.relay.registry.create_hub("Assets").expect("hub").id;
    let url = format!("ws://{}/v1/hubs/{hub}", running.addr);
    TestHub { running, url, hub }
}

impl TestHub {
    fn token(&self, handle: &str) -> String {
        self.running
            .relay
            .registry
            .issue(&self.hub, handle, "creative", None)
            .expect("token")
            .0
    }

    fn client(&self, handle: &str) -> BlobClient {
        BlobClient::new(
            HubAddress::parse(&self.url).expect("url"),
            self.token(handle),
            None,
        )
        .expect("client")
    }
}

/// Deterministic bytes that are not all alike.
fn sample(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7919 % 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_uploaded_from_one_home_downloads_intact_into_another() {
    let dir = tempfile::tempdir().expect("tmp");
    let hub = relay(dir.path()).await;
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let source = dir.path().join("poster.bin");
    std::fs::write(&source, sample(700_000)).expect("write");
    let sha = store_local(&a, &source).expect("store");
    let client = hub.client("ana");
    assert_eq!(
        client.upload(&a, &sha).await.expect("upload"),
        spoke::sync::blobs::Uploaded::Stored
    );
    assert_eq!(
        client.upload(&a, &sha).await.expect("again"),
        spoke::sync::blobs::Uploaded::AlreadyThere
    );
    let path = hub.client("kenji").fetch(&b, &sha).await.expect("fetch");
    assert_eq!(std::fs::read(path).expect("read"), sample(700_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_download_resumes_and_a_damaged_one_is_discarded() {
    let dir = tempfile::tempdir().expect("tmp");
    let hub = relay(dir.path()).await;
    let a = dir.path().join("a");
    let source = dir.path().join("film.bin");
    let bytes = sample(500_000);
    std::fs::write(&source, &bytes).expect("write");
    let sha = store_local(&a, &source).expect("store");
    hub.client("ana").upload(&a, &sha).await.expect("upload");

    // A download cut off halfway resumes from where it stopped.
    let b = dir.path().join("b");
    let target = local_blob_path(&b, &sha);
    std::fs::create_dir_all(target.parent().expect("dir")).expect("mkdir");
    std::fs::write(target.with_extension("part"), &bytes[..200_000]).expect("part");
    let got = hub.client("kenji").fetch(&b, &sha).await.expect("resume");
    assert_eq!(std::fs::read(got).expect("read"), bytes);

    // A partial file with the wrong bytes is caught by the digest, removed,
    // and the next fetch starts clean.
    let c = dir.path().join("c");
    let target = local_blob_path(&c, &sha);
    std::fs::create_dir_all(target.parent().expect("dir")).expect("mkdir");
    std::fs::write(target.with_extension("part"), vec![0u8; 100_000]).expect("part");
    let client = hub.client("maya");
    let err = client.fetch(&c, &sha).await.expect_err("damaged");
    assert!(format!("{err:#}").contains("arrived damaged"), "{err:#}");
    assert!(!target.with_extension("part").exists());
    assert!(!target.exists());
    let got = client.fetch(&c, &sha).await.expect("clean retry");
    assert_eq!(std::fs::read(got).expect("read"), bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_referenced_by_pending_ops_reach_the_relay_before_the_ops() {
    let dir = tempfile::tempdir().expect("tmp");
    let hub = relay(dir.path()).await;
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    join(&a, &hub.url, &hub.token("ana"), None)
        .await
        .expect("join a");
    let source = dir.path().join("hero.png");
    std::fs::write(&source, sample(50_000)).expect("write");
    let sha = store_local(&a, &source).expect("store");
    {
        let mut h = Hub::open(&a, None).expect("open");
        h.commit(vec![(
            EntityRef::new(EntityKind::Asset, "a-hero0001"),
            Change::Append(json!({
                "blob_sha256": sha, "size": 50_000, "mime": "image/png",
                "provenance": {"by": "human"}
            })),
        )])
        .expect("commit");
    }
    sync_once(&a).await.expect("sync pushes blob then op");
    join(&b, &hub.url, &hub.token("kenji"), None)
        .await
        .expect("join b");
    let reader = Hub::open(&b, None).expect("open b");
    let items = reader
        .replica()
        .items(&EntityRef::new(EntityKind::Asset, "a-hero0001"))
        .expect("items");
    assert_eq!(items.len(), 1, "the op arrived");
    let fetched = hub
        .client("kenji")
        .fetch(&b, &sha)
        .await
        .expect("the blob is on the relay");
    assert_eq!(std::fs::read(fetched).expect("read"), sample(50_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_op_whose_blob_is_missing_locally_stays_pending_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let hub = relay(dir.path()).await;
    let a = dir.path().join("a");
    join(&a, &hub.url, &hub.token("ana"), None)
        .await
        .expect("join");
    let missing = "ab".repeat(32);
    {
        let mut h = Hub::open(&a, None).expect("open");
        h.commit(vec![(
            EntityRef::new(EntityKind::Asset, "a-ghost001"),
            Change::Append(json!({ "blob_sha256": missing })),
        )])
        .expect("commit");
    }
    let err = sync_once(&a).await.expect_err("cannot upload");
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&missing) && msg.contains("not in the local store"),
        "{msg}"
    );
    let status = spoke::sync::status(&a).expect("status");
    assert_eq!(status.pending, 1, "the op waits for its blob");
    assert!(status.last_error.is_some());
}
