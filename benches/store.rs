//! Replica benchmarks: applying ops, opening a replica and listing briefs.
//! Run with `cargo bench --bench store`; results go in docs/BENCHMARKS.md.

use serde_json::json;
use spoke::model::{Change, EntityKind, EntityRef, Op};
use spoke::service::{BriefFilter, Hub, NewHub, replica_path};
use spoke::store::{Replica, ReplicaMeta};
use spoke_relay::proto::{ClientId, Hlc, OpId};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn main() {
    divan::main();
}

/// `n` ops from 4 clients over 10k briefs: mostly field sets, some comments.
fn ops(n: u64) -> Vec<(u64, Vec<u8>)> {
    (1..=n)
        .map(|i| {
            let client = i % 4 + 1;
            let brief = format!("b-{:08}", (i * 7919) % 10_000);
            let change = if i % 10 == 0 {
                Change::Append(json!({ "body": format!("comment {i}") }))
            } else {
                Change::Set(BTreeMap::from([
                    ("title".to_owned(), json!(format!("Brief number {i}"))),
                    (
                        "priority".to_owned(),
                        json!(["p0", "p1", "p2", "p3"][(i % 4) as usize]),
                    ),
                ]))
            };
            let op = Op {
                id: OpId {
                    client: ClientId(client),
                    seq: i,
                },
                hlc: Hlc {
                    wall_ms: 1_764_000_000_000 + i,
                    logical: 0,
                },
                actor: format!("member{client}"),
                entity: EntityRef::new(
                    if i % 10 == 0 {
                        EntityKind::Thread
                    } else {
                        EntityKind::Brief
                    },
                    brief,
                ),
                change,
            };
            (i, op.encode().expect("encode"))
        })
        .collect()
}

fn fresh_replica(dir: &Path) -> Replica {
    Replica::create(&dir.join("r.redb"), &ReplicaMeta::new(ClientId(0))).expect("create")
}

/// 100k ops from the hub applied in one transaction.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn apply_100k_ops_one_batch(bencher: divan::Bencher) {
    let batch = ops(100_000);
    bencher
        .with_inputs(|| tempfile::tempdir().expect("tmp"))
        .bench_local_values(|dir| {
            let replica = fresh_replica(dir.path());
            replica.apply_sequenced(&batch).expect("apply");
            dir
        });
}

/// 100k ops arriving as wire-sized batches of 256, one commit each.
#[divan::bench(sample_count = 3, sample_size = 1)]
fn apply_100k_ops_batches_of_256(bencher: divan::Bencher) {
    let batch = ops(100_000);
    bencher
        .with_inputs(|| tempfile::tempdir().expect("tmp"))
        .bench_local_values(|dir| {
            let replica = fresh_replica(dir.path());
            for chunk in batch.chunks(256) {
                replica.apply_sequenced(chunk).expect("apply");
            }
            dir
        });
}

/// A replica with 10k briefs, built once.
fn ten_k_briefs() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tmp");
        let home = dir.path().join("home");
        let hub = Hub::init(
            &home,
            NewHub {
                name: "Bench",
                handle: "ana",
                tz: "Europe/Lisbon",
                display_name: None,
            },
        )
        .expect("init");
        // Every brief gets a title and priority from the same op generator.
        let batch: Vec<(u64, Vec<u8>)> = ops(100_000)
            .into_iter()
            .filter(|(i, _)| i % 10 != 0)
            .chain((0..10_000u64).map(|n| {
                let op = Op {
                    id: OpId {
                        client: ClientId(9),
                        seq: n + 1,
                    },
                    hlc: Hlc {
                        wall_ms: 1_700_000_000_000 + n,
                        logical: 0,
                    },
                    actor: "ana".into(),
                    entity: EntityRef::new(EntityKind::Brief, format!("b-{n:08}")),
                    change: Change::Set(BTreeMap::from([("status".to_owned(), json!("ready"))])),
                };
                (200_000 + n, op.encode().expect("encode"))
            }))
            .collect();
        hub.replica().apply_sequenced(&batch).expect("apply");
        (dir, home)
    })
    .1
}

#[divan::bench(sample_count = 20)]
fn open_replica_with_10k_briefs() -> usize {
    let home = ten_k_briefs();
    let hub = Hub::open(home, None).expect("open");
    assert!(replica_path(home).exists());
    hub.meta().next_seq as usize
}

#[divan::bench(sample_count = 20)]
fn list_10k_briefs(bencher: divan::Bencher) {
    let hub = Hub::open(ten_k_briefs(), None).expect("open");
    bencher.bench_local(|| {
        let briefs = hub.briefs(&BriefFilter::default()).expect("list");
        assert_eq!(briefs.len(), 10_000);
        briefs.len()
    });
}
