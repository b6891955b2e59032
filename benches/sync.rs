//! Sync benchmarks over loopback with an in-process relay:
//! catch-up of a fresh client 100k ops behind, and pushing 10k pending ops.
//! Run with `cargo bench --bench sync`; results go in docs/BENCHMARKS.md.

use serde_json::json;
use spoke::model::{Change, EntityKind, EntityRef};
use spoke::service::Hub;
use spoke_relay::relay::RelayConfig;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const BEHIND: u64 = 100_000;
const PENDING: u64 = 10_000;
const RUNS: usize = 3;

fn changes(n: u64, offset: u64) -> Vec<(EntityRef, Change)> {
    (0..n)
        .map(|i| {
            let brief = format!("b-{:08}", (i + offset) % 10_000);
            (
                EntityRef::new(EntityKind::Brief, brief),
                Change::Set(BTreeMap::from([
                    ("title".to_owned(), json!(format!("Brief {}", i + offset))),
                    ("priority".to_owned(), json!("p2")),
                ])),
            )
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let dir = tempfile::tempdir()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let mut config = RelayConfig::new(dir.path().join("relay"));
        config.max_ops_per_sec = 10_000_000;
        let running = spoke_relay::server::start(listener, config).await?;
        let registry = &running.relay.registry;
        let hub = registry.create_hub("Bench")?;
        let url = format!("ws://{}/v1/hubs/{}", running.addr, hub.id);

        // A writer fills the hub's log with 100k ops.
        let writer = dir.path().join("writer");
        let (token, _) = registry.issue(&hub.id, "writer", "lead", None)?;
        spoke::sync::join(&writer, &url, &token, None).await?;
        {
            let mut h = Hub::open(&writer, None)?;
            for chunk in 0..(BEHIND / 10_000) {
                h.commit(changes(10_000, chunk * 10_000))?;
            }
        }
        spoke::sync::sync_once(&writer).await?;

        let mut catch_up = Vec::new();
        for run in 0..RUNS {
            let home = dir.path().join(format!("reader{run}"));
            let (token, _) = registry.issue(&hub.id, &format!("reader{run}"), "read-only", None)?;
            let start = Instant::now();
            let (_, report) = spoke::sync::join(&home, &url, &token, None).await?;
            catch_up.push(start.elapsed());
            anyhow::ensure!(report.cursor == BEHIND, "caught up to {} of {BEHIND}", report.cursor);
        }

        let mut push = Vec::new();
        for run in 0..RUNS {
            let home = dir.path().join(format!("pusher{run}"));
            let (token, _) = registry.issue(&hub.id, &format!("pusher{run}"), "creative", None)?;
            spoke::sync::join(&home, &url, &token, None).await?;
            Hub::open(&home, None)?.commit(changes(PENDING, run as u64 * PENDING))?;
            let start = Instant::now();
            let report = spoke::sync::sync_once(&home).await?;
            push.push(start.elapsed());
            anyhow::ensure!(report.pushed == PENDING, "pushed {}", report.pushed);
        }
        running.shutdown().await?;

        let c = median(catch_up);
        let p = median(push);
        println!("| benchmark | median of {RUNS} | rate |");
        println!("| --- | --- | --- |");
        println!(
            "| catch-up: fresh client {BEHIND} ops behind (join, pull, apply, durable) | {:.0} ms | {:.0} ops/s |",
            c.as_secs_f64() * 1000.0,
            BEHIND as f64 / c.as_secs_f64()
        );
        println!(
            "| push: {PENDING} pending ops to acked and back in the log | {:.0} ms | {:.0} ops/s |",
            p.as_secs_f64() * 1000.0,
            PENDING as f64 / p.as_secs_f64()
        );
        anyhow::Ok(())
    })
}
