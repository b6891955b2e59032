//! The redb replica: durability of local ops, the pending queue, sequenced
//! ops from a hub, and clear errors for files it cannot trust.

use redb::{Database, TableDefinition};
use serde_json::json;
use spoke::model::{Change, EntityKind, EntityRef, Op, Role};
use spoke::service::{Hub, NewBrief, NewHub, replica_path};
use spoke::store::{Replica, ReplicaMeta, SCHEMA_VERSION, StoreError};
use spoke_relay::proto::{ClientId, Hlc, OpId};
use std::collections::BTreeMap;
use std::path::Path;

fn new_hub(home: &Path) -> Hub {
    Hub::init(
        home,
        NewHub {
            name: "Test",
            handle: "ana",
            tz: "Europe/Lisbon",
            display_name: None,
        },
    )
    .expect("init")
}

fn brief(title: &str) -> NewBrief {
    NewBrief {
        title: title.to_owned(),
        ..NewBrief::default()
    }
}

#[test]
fn local_changes_survive_reopening_and_wait_in_the_pending_queue() {
    let dir = tempfile::tempdir().expect("tmp");
    let id = {
        let mut hub = new_hub(dir.path());
        hub.add_brief(brief("Spring launch")).expect("add").id
    };
    let hub = Hub::open(dir.path(), None).expect("reopen");
    assert_eq!(hub.brief(&id).expect("brief").title, "Spring launch");
    // init wrote the hub and the first member; the brief is the third op.
    let pending = hub.replica().pending().expect("pending");
    assert_eq!(pending.len(), 3);
    assert_eq!(pending[2].entity, EntityRef::new(EntityKind::Brief, id));
    let seqs: Vec<u64> = pending.iter().map(|o| o.id.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(hub.meta().next_seq, 4);
}

#[test]
fn hlc_keeps_moving_forward_across_reopen() {
    let dir = tempfile::tempdir().expect("tmp");
    let first = {
        let mut hub = new_hub(dir.path());
        hub.add_brief(brief("a")).expect("add");
        hub.meta().hlc
    };
    let mut hub = Hub::open(dir.path(), None).expect("reopen");
    hub.add_brief(brief("b")).expect("add");
    assert!(hub.meta().hlc > first);
}

#[test]
fn acknowledged_own_ops_leave_the_queue_and_move_the_cursor() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut hub = new_hub(dir.path());
    hub.add_brief(brief("x")).expect("add");
    let pending = hub.replica().pending().expect("pending");
    // The hub grants ana's token its role before her ops.
    let grant = Op::relay_grant(1, "ana", Role::Lead, 1);
    let mut batch: Vec<(u64, Vec<u8>)> = vec![(99, grant.encode().expect("encode"))];
    batch.extend(
        pending
            .iter()
            .enumerate()
            .map(|(i, op)| (100 + i as u64, op.encode().expect("encode"))),
    );
    let stats = hub.replica().apply_sequenced(&batch).expect("apply");
    // Already applied locally: nothing is applied twice (the grant is new).
    assert_eq!(stats.applied, 1);
    assert_eq!(stats.duplicates, 3);
    assert_eq!(hub.replica().pending_count().expect("count"), 0);
    assert_eq!(hub.replica().log_len().expect("len"), 4);
    assert!(hub.replica().refused().expect("refused").is_empty());
    assert_eq!(hub.replica().meta().expect("meta").cursor, 102);
}

#[test]
fn remote_ops_advance_the_local_clock_past_them() {
    let dir = tempfile::tempdir().expect("tmp");
    let hub = new_hub(dir.path());
    let far_future = Hlc {
        wall_ms: u64::MAX / 2,
        logical: 7,
    };
    let remote = Op {
        id: OpId {
            client: ClientId(42),
            seq: 1,
        },
        hlc: far_future,
        actor: "kenji".into(),
        entity: EntityRef::new(EntityKind::Brief, "b-remote01"),
        change: Change::Set(BTreeMap::from([("title".to_owned(), json!("From Tokyo"))])),
    };
    let grant = Op::relay_grant(1, "kenji", Role::Creative, 1);
    hub.replica()
        .apply_sequenced(&[
            (1, grant.encode().expect("encode")),
            (2, remote.encode().expect("encode")),
        ])
        .expect("apply");
    drop(hub);
    let mut hub = Hub::open(dir.path(), None).expect("reopen");
    assert_eq!(hub.brief("b-remote01").expect("brief").title, "From Tokyo");
    // A local edit made now must still win over the remote one.
    hub.set_brief_fields("b-remote01", &[("title".into(), "Edited".into())])
        .expect("set");
    assert_eq!(hub.brief("b-remote01").expect("brief").title, "Edited");
}

#[test]
fn a_replica_from_a_newer_schema_is_refused_with_the_path() {
    let dir = tempfile::tempdir().expect("tmp");
    new_hub(dir.path());
    let path = replica_path(dir.path());
    {
        let db = Database::open(&path).expect("open raw");
        let txn = db.begin_write().expect("txn");
        {
            let meta: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
            let mut t = txn.open_table(meta).expect("table");
            t.insert(
                "schema_version",
                (SCHEMA_VERSION + 1).to_be_bytes().as_slice(),
            )
            .expect("insert");
        }
        txn.commit().expect("commit");
    }
    let err = Replica::open(&path).err().expect("must refuse");
    assert!(matches!(err, StoreError::NewerSchema { .. }));
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("newer"), "{msg}");
}

#[test]
fn a_damaged_record_is_named_and_rebuild_cache_repairs_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let id = new_hub(dir.path())
        .add_brief(brief("Keep me"))
        .expect("add")
        .id;
    let path = replica_path(dir.path());
    {
        let db = Database::open(&path).expect("open raw");
        let txn = db.begin_write().expect("txn");
        {
            let table: TableDefinition<&str, &[u8]> = TableDefinition::new("entity.brief");
            let mut t = txn.open_table(table).expect("table");
            t.insert(id.as_str(), [0xc1u8, 0x00, 0xff].as_slice())
                .expect("insert");
        }
        txn.commit().expect("commit");
    }
    let hub = Hub::open(dir.path(), None).expect("open");
    let err = hub.brief(&id).expect_err("damaged");
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&id) && msg.contains("--rebuild-cache"),
        "{msg}"
    );
    hub.replica().rebuild_cache().expect("rebuild");
    assert_eq!(hub.brief(&id).expect("repaired").title, "Keep me");
}

#[test]
fn two_handles_on_one_replica_never_reuse_an_op_id() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut first = new_hub(dir.path());
    let mut second = Hub::open(dir.path(), None).expect("second handle");
    for i in 0..5 {
        first
            .add_brief(brief(&format!("from first {i}")))
            .expect("add");
        second
            .add_brief(brief(&format!("from second {i}")))
            .expect("add");
    }
    let pending = first.replica().pending().expect("pending");
    let mut seqs: Vec<u64> = pending.iter().map(|o| o.id.seq).collect();
    seqs.dedup();
    assert_eq!(
        seqs.len(),
        12,
        "2 from init and 10 briefs, each with its own seq"
    );
    assert_eq!(first.briefs(&Default::default()).expect("list").len(), 10);
    let mut hlcs: Vec<_> = pending.iter().map(|o| o.hlc).collect();
    let sorted = {
        let mut h = hlcs.clone();
        h.sort();
        h
    };
    assert_eq!(
        hlcs, sorted,
        "clock readings follow seq order across handles"
    );
    hlcs.dedup();
    assert_eq!(hlcs.len(), 12);
}

#[test]
fn creating_over_an_existing_replica_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    new_hub(dir.path());
    let err = Replica::create(&replica_path(dir.path()), &ReplicaMeta::new(ClientId(1)))
        .err()
        .expect("exists");
    assert!(matches!(err, StoreError::AlreadyExists { .. }));
}

#[test]
fn many_ops_in_one_batch_apply_in_one_transaction() {
    let dir = tempfile::tempdir().expect("tmp");
    let replica = Replica::create(&dir.path().join("r.redb"), &ReplicaMeta::new(ClientId(1)))
        .expect("create");
    let grant = Op::relay_grant(1, "kenji", Role::Creative, 1);
    let mut batch: Vec<(u64, Vec<u8>)> = vec![(1, grant.encode().expect("encode"))];
    batch.extend((1..=1000u64).map(|i| {
        let op = Op {
            id: OpId {
                client: ClientId(7),
                seq: i,
            },
            hlc: Hlc {
                wall_ms: i,
                logical: 0,
            },
            actor: "kenji".into(),
            entity: EntityRef::new(EntityKind::Brief, format!("b-{:08}", i % 50)),
            change: Change::Set(BTreeMap::from([("title".to_owned(), json!(i))])),
        };
        (i + 1, op.encode().expect("encode"))
    }));
    let stats = replica.apply_sequenced(&batch).expect("apply");
    assert_eq!(stats.applied, 1001);
    assert_eq!(
        replica.records(EntityKind::Brief).expect("records").len(),
        50
    );
    let last = replica
        .record(&EntityRef::new(EntityKind::Brief, "b-00000000"))
        .expect("read")
        .expect("exists");
    assert_eq!(last.get("title"), Some(&json!(1000)));
}

#[test]
fn a_change_too_large_for_the_hub_is_refused_and_nothing_is_queued() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut hub = new_hub(dir.path());
    let before = hub.replica().pending_count().expect("count");
    let err = hub
        .add_brief(NewBrief {
            title: "Huge".into(),
            objective: Some("x".repeat(300_000)),
            ..NewBrief::default()
        })
        .expect_err("too large");
    assert!(format!("{err:#}").contains("over the"), "{err:#}");
    assert_eq!(hub.replica().pending_count().expect("count"), before);
    assert!(hub.briefs(&Default::default()).expect("list").is_empty());
}
