//! A hub's log on a real three-node NATS JetStream cluster (replicas 3), as
//! two relays would share it: concurrent writers through two logs, reopening,
//! resends past JetStream's duplicate window, a node killed and restarted,
//! and the hub's rules judged the same through either log.

mod common;

use common::nats::NatsCluster;
use spoke_relay::nats::Nats;
use spoke_relay::policy::{PolicyState, RELAY_ACTOR, RELAY_CLIENT, Rule};
use spoke_relay::proto::{ClientId, EntityKey, Hlc, Op, OpId, encode_op};
use spoke_relay::store::jetstream::{SNAPSHOT_BUCKET, stream_name};
use spoke_relay::store::{Appended, EncodedOp, JetStreamConfig, JetStreamLog, OpLog};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn config() -> JetStreamConfig {
    JetStreamConfig {
        replicas: 3,
        ..JetStreamConfig::default()
    }
}

/// An op of `actor` under `client`/`seq`: a `set` of `fields` on `kind/id`.
fn op_on(
    client: u64,
    seq: u64,
    actor: &str,
    kind: &str,
    id: &str,
    fields: serde_json::Value,
) -> EncodedOp {
    let op = Op {
        id: OpId {
            client: ClientId(client),
            seq,
        },
        hlc: Hlc {
            wall_ms: 1_700_000_000_000 + seq,
            logical: 0,
        },
        actor: actor.into(),
        entity: EntityKey {
            kind: kind.into(),
            id: id.into(),
        },
        kind: "set".into(),
        body: rmp_serde::to_vec_named(&fields).expect("body"),
    };
    EncodedOp::from_bytes(encode_op(&op).expect("encode")).expect("a readable op")
}

/// Lead `ana` creates brief `b-<client>-<seq>`.
fn brief_op(client: u64, seq: u64) -> EncodedOp {
    op_on(
        client,
        seq,
        "ana",
        "brief",
        &format!("b-{client}-{seq}"),
        serde_json::json!({"title": "t"}),
    )
}

/// The relay's op granting `handle` the `role` (as a token's first use does).
fn grant(relay_seq: u64, handle: &str, role: &str) -> EncodedOp {
    op_on(
        RELAY_CLIENT.0,
        relay_seq,
        RELAY_ACTOR,
        "member",
        handle,
        serde_json::json!({ format!("roles:{role}"): true }),
    )
}

fn open(rt: &Runtime, urls: &str, hub: &str, config: JetStreamConfig) -> JetStreamLog {
    let nats = rt.block_on(Nats::connect(urls)).expect("connect to NATS");
    JetStreamLog::open(&nats, hub, config).expect("open the hub's log")
}

fn new_seq(a: &Appended) -> u64 {
    match a {
        Appended::Stored { seq, new: true } => *seq,
        other => panic!("expected a newly stored op, got {other:?}"),
    }
}

/// Every op in `1..=head`, read in chunks as a relay sending a backlog does.
fn read_all(log: &JetStreamLog) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut from = 1;
    while from <= log.head() {
        let chunk = log.read(from, log.head(), 1000, 16 << 20).expect("read");
        assert!(!chunk.is_empty(), "nothing read from seq {from}");
        for op in chunk {
            out.push((op.seq, op.op));
        }
        from = out.last().map_or(from, |o| o.0 + 1);
    }
    out
}

#[test]
fn two_logs_writing_one_hub_store_every_op_once_in_one_contiguous_order() {
    let rt = runtime();
    let Some(cluster) = rt.block_on(NatsCluster::start()) else {
        return;
    };
    let hub = "h-concurrent";
    // Two relays, each connected through a different node first.
    let a = Arc::new(open(&rt, &cluster.url(0), hub, config()));
    let b = Arc::new(open(&rt, &cluster.url(1), hub, config()));
    let policy_a = Arc::new(Mutex::new(a.load_policy().expect("policy")));
    let policy_b = Arc::new(Mutex::new(b.load_policy().expect("policy")));
    {
        let mut p = policy_a.lock().unwrap();
        let out = a.append(&[grant(1, "ana", "lead")], &mut p).expect("grant");
        assert_eq!(new_seq(&out[0]), 1);
    }
    const BATCHES: u64 = 15;
    const PER_BATCH: u64 = 8;
    let mut threads = Vec::new();
    for (t, (log, policy)) in [
        (a.clone(), policy_a.clone()),
        (a.clone(), policy_a.clone()),
        (b.clone(), policy_b.clone()),
        (b.clone(), policy_b.clone()),
    ]
    .into_iter()
    .enumerate()
    {
        let client = 100 + t as u64;
        threads.push(std::thread::spawn(move || {
            let mut seqs = BTreeMap::new();
            for batch in 0..BATCHES {
                let ops: Vec<EncodedOp> = (1..=PER_BATCH)
                    .map(|i| brief_op(client, batch * PER_BATCH + i))
                    .collect();
                let out = {
                    let mut p = policy.lock().unwrap();
                    log.append(&ops, &mut p).expect("append")
                };
                for (op, result) in ops.iter().zip(&out) {
                    seqs.insert(op.id.seq, new_seq(result));
                }
                // A resend of the batch (a reconnecting client) keeps its seqs.
                if batch % 5 == 4 {
                    let again = {
                        let mut p = policy.lock().unwrap();
                        log.append(&ops, &mut p).expect("resend")
                    };
                    for (op, result) in ops.iter().zip(&again) {
                        assert_eq!(
                            result,
                            &Appended::Stored {
                                seq: seqs[&op.id.seq],
                                new: false
                            },
                            "a resend gets its original seq"
                        );
                    }
                }
            }
            (client, seqs)
        }));
    }
    let mut all_seqs = HashSet::new();
    for thread in threads {
        let (_, seqs) = thread.join().expect("a writer thread");
        assert_eq!(seqs.len() as u64, BATCHES * PER_BATCH);
        for seq in seqs.values() {
            assert!(all_seqs.insert(*seq), "seq {seq} was given twice");
        }
    }
    let total = 1 + 4 * BATCHES * PER_BATCH;
    assert_eq!(all_seqs.len() as u64 + 1, total);
    // Both logs catch up to the same head and read the same order.
    let policy_a = a.load_policy().expect("policy a");
    let policy_b = b.load_policy().expect("policy b");
    assert_eq!(a.head(), total);
    assert_eq!(b.head(), total);
    let read_a = read_all(&a);
    let read_b = read_all(&b);
    assert_eq!(read_a.len() as u64, total);
    assert_eq!(
        read_a.iter().map(|o| o.0).collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>(),
        "seqs are contiguous from 1"
    );
    assert_eq!(read_a, read_b, "both relays read one order");
    let mut ids = HashSet::new();
    for (_, bytes) in &read_a {
        let op = EncodedOp::from_bytes(bytes.clone()).expect("a stored op");
        assert!(
            ids.insert((op.id.client.0, op.id.seq)),
            "{:?} stored twice",
            op.id
        );
    }
    assert_eq!(policy_a, policy_b, "both logs hold the same policy state");
    assert_eq!(a.epoch(), b.epoch());
}

#[test]
fn reopening_keeps_policy_and_head_and_an_old_resend_keeps_its_seq() {
    let rt = runtime();
    let Some(cluster) = rt.block_on(NatsCluster::start()) else {
        return;
    };
    let hub = "h-reopen";
    // A short duplicate window, so the resend below is one JetStream no
    // longer remembers; snapshots often, so reopening starts from one.
    let short = JetStreamConfig {
        replicas: 3,
        duplicate_window: Duration::from_secs(1),
        snapshot_every: 10,
    };
    let (head, epoch, policy, seq_of_7) = {
        let log = open(&rt, &cluster.urls(), hub, short.clone());
        let mut policy = log.load_policy().expect("policy");
        log.append(&[grant(1, "ana", "lead")], &mut policy)
            .expect("grant");
        let ops: Vec<EncodedOp> = (1..=24).map(|s| brief_op(7, s)).collect();
        let out = log.append(&ops, &mut policy).expect("append");
        let seq_of_7 = new_seq(&out[6]);
        (log.head(), log.epoch(), policy, seq_of_7)
    };
    assert_eq!(head, 25);
    // The snapshot was written as of the batch's end.
    let nats = rt
        .block_on(Nats::connect(&cluster.urls()))
        .expect("connect");
    let snapshot_seen = rt.block_on(async {
        let store = nats
            .jetstream
            .get_object_store(SNAPSHOT_BUCKET)
            .await
            .expect("the snapshot bucket");
        store.info(hub).await.is_ok()
    });
    assert!(snapshot_seen, "a snapshot of {hub} is stored");
    // Past the duplicate window: JetStream would store the resend again.
    std::thread::sleep(Duration::from_millis(1500));
    let log = open(&rt, &cluster.urls(), hub, short);
    assert_eq!((log.head(), log.epoch()), (head, epoch));
    let mut reopened = log.load_policy().expect("policy after reopening");
    assert_eq!(
        reopened.roles_of("ana"),
        policy.roles_of("ana"),
        "roles survive reopening"
    );
    assert_eq!(reopened.client_owner(7), Some("ana"));
    assert_eq!(
        reopened.entry(spoke_relay::policy::EntityKind::Brief, "b-7-7"),
        policy.entry(spoke_relay::policy::EntityKind::Brief, "b-7-7")
    );
    let again = log
        .append(&[brief_op(7, 7), brief_op(7, 25)], &mut reopened)
        .expect("resend");
    assert_eq!(
        again[0],
        Appended::Stored {
            seq: seq_of_7,
            new: false
        }
    );
    assert_eq!(new_seq(&again[1]), 26);
    let info = rt
        .block_on(async {
            nats.jetstream
                .get_stream(stream_name(hub))
                .await
                .expect("stream")
                .get_info()
                .await
        })
        .expect("stream info");
    assert_eq!(info.state.last_sequence, 26, "the resend was not stored");
    assert_eq!(info.state.messages, 26);
}

#[test]
fn appends_go_on_with_a_node_killed_and_the_node_catches_up_when_back() {
    let rt = runtime();
    let Some(mut cluster) = rt.block_on(NatsCluster::start()) else {
        return;
    };
    let hub = "h-failover";
    let log = open(&rt, &cluster.urls(), hub, config());
    let mut policy = log.load_policy().expect("policy");
    log.append(&[grant(1, "ana", "lead")], &mut policy)
        .expect("grant");
    let before: Vec<EncodedOp> = (1..=50).map(|s| brief_op(9, s)).collect();
    log.append(&before, &mut policy).expect("append");
    let nats = rt
        .block_on(Nats::connect(&cluster.urls()))
        .expect("connect");
    let stream_info = || {
        rt.block_on(async {
            nats.jetstream
                .get_stream(stream_name(hub))
                .await?
                .get_info()
                .await
                .map_err(async_nats::Error::from)
        })
    };
    // Kill the stream's leader: the worst node to lose.
    let leader = stream_info()
        .expect("stream info")
        .cluster
        .and_then(|c| c.leader)
        .expect("the stream has a leader");
    let victim = (0..3)
        .find(|&i| cluster.node_name(i) == leader)
        .expect("the leader is one of the nodes");
    cluster.kill_node(victim);
    let during: Vec<EncodedOp> = (51..=100).map(|s| brief_op(9, s)).collect();
    for chunk in during.chunks(10) {
        let out = log
            .append(chunk, &mut policy)
            .expect("append with a node down");
        assert!(out.iter().all(Appended::is_new));
    }
    assert_eq!(log.head(), 101);
    rt.block_on(cluster.restart_node(victim));
    // The restarted node reports itself current with the stream.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(info) = stream_info()
            && let Some(c) = info.cluster
        {
            let peers: Vec<_> = c
                .replicas
                .iter()
                .map(|p| (p.name.clone(), p.current))
                .collect();
            let all = c.leader.is_some() && peers.len() == 2 && peers.iter().all(|p| p.1);
            if all && info.state.last_sequence == 101 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "node {victim} did not catch up: {:?}",
            stream_info().map(|i| i.cluster)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let read = read_all(&log);
    assert_eq!(
        read.iter().map(|o| o.0).collect::<Vec<_>>(),
        (1..=101).collect::<Vec<_>>()
    );
}

#[test]
fn an_op_the_rules_refuse_is_refused_alike_through_either_log() {
    let rt = runtime();
    let Some(cluster) = rt.block_on(NatsCluster::start()) else {
        return;
    };
    let hub = "h-rules";
    let a = open(&rt, &cluster.url(0), hub, config());
    // B opens before A writes anything: what it knows is stale.
    let b = open(&rt, &cluster.url(2), hub, config());
    let mut policy_a = a.load_policy().expect("policy");
    let mut policy_b = b.load_policy().expect("policy");
    let out = a
        .append(
            &[
                grant(1, "ana", "lead"),
                grant(2, "kenji", "creative"),
                op_on(
                    1,
                    1,
                    "ana",
                    "brief",
                    "b-1",
                    serde_json::json!({"title": "ana's"}),
                ),
            ],
            &mut policy_a,
        )
        .expect("append through a");
    assert!(out.iter().all(Appended::is_new));
    // Kenji edits ana's brief through B: B must know the brief (created
    // through A), or it would judge the set a creation a creative may make.
    let edit = op_on(
        2,
        1,
        "kenji",
        "brief",
        "b-1",
        serde_json::json!({"title": "mine now"}),
    );
    let through_b = b
        .append(std::slice::from_ref(&edit), &mut policy_b)
        .expect("append through b");
    let through_a = a
        .append(std::slice::from_ref(&edit), &mut policy_a)
        .expect("append through a");
    for out in [&through_a, &through_b] {
        assert!(
            matches!(&out[0], Appended::Refused(r) if r.rule == Rule::RoleTable),
            "refused by the role table: {out:?}"
        );
    }
    // Kenji's own brief, created through B, is his to edit through A.
    let own = b
        .append(
            &[op_on(
                2,
                2,
                "kenji",
                "brief",
                "b-2",
                serde_json::json!({"title": "kenji's"}),
            )],
            &mut policy_b,
        )
        .expect("create through b");
    assert_eq!(new_seq(&own[0]), 4);
    let edit_own = a
        .append(
            &[op_on(
                2,
                3,
                "kenji",
                "brief",
                "b-2",
                serde_json::json!({"title": "kenji's, edited"}),
            )],
            &mut policy_a,
        )
        .expect("edit through a");
    assert_eq!(new_seq(&edit_own[0]), 5);
    // A stranger's client id is refused the same way on both sides.
    let squat = op_on(
        2,
        9,
        "ana",
        "brief",
        "b-3",
        serde_json::json!({"title": "x"}),
    );
    for (log, policy) in [(&a, &mut policy_a), (&b, &mut policy_b)] {
        let out = log
            .append(std::slice::from_ref(&squat), policy)
            .expect("append");
        assert!(
            matches!(&out[0], Appended::Refused(r) if r.rule == Rule::ClientIdOwned),
            "{out:?}"
        );
    }
    let _ = b.load_policy().expect("catch up");
    assert_eq!(a.head(), 5);
    assert_eq!(b.head(), 5);
    let state: PolicyState = a.load_policy().expect("policy");
    assert_eq!(state, b.load_policy().expect("policy"));
}

/// Reads `Ops` frames until seq `upto`, keeping each seq once (a frame may
/// repeat ops the client has, which it ignores) and failing on a gap.
async fn follow_until(client: &mut common::Client, mut cursor: u64, upto: u64) -> Vec<(u64, OpId)> {
    use spoke_relay::proto::{Frame, decode_op};
    let mut out = Vec::new();
    while cursor < upto {
        match client.recv().await {
            Frame::Ops { ops, .. } => {
                for stored in ops {
                    if stored.seq <= cursor {
                        continue;
                    }
                    assert_eq!(stored.seq, cursor + 1, "no gap in the live log");
                    let op = decode_op(&stored.op).expect("stored ops decode");
                    out.push((stored.seq, op.id));
                    cursor = stored.seq;
                }
            }
            Frame::Presence { .. } => {}
            other => panic!("expected Ops up to seq {upto}, got {other:?}"),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_on_one_cluster_give_every_member_every_op_once_in_one_order() {
    use common::Client;
    use common::process::{RelayProcess, cli_json, field, free_port};
    let Some(cluster) = NatsCluster::start().await else {
        return;
    };
    let urls = cluster.urls();
    // Both relays serve from the cluster alone: the hub and its tokens are
    // made by the admin commands in the shared registry, and each relay's
    // data folder starts empty.
    let created = cli_json(&["hub", "create", "Shared", "--nats", &urls, "--json"]);
    let hub = field(&created, "hub");
    let mut tokens = std::collections::HashMap::new();
    for (handle, role) in [
        ("w1", "creative"),
        ("w2", "creative"),
        ("w3", "creative"),
        ("m1", "reviewer"),
        ("m2", "reviewer"),
    ] {
        let issued = cli_json(&[
            "token", "issue", "--nats", &urls, "--hub", &hub, "--handle", handle, "--role", role,
            "--json",
        ]);
        tokens.insert(handle, field(&issued, "token"));
    }
    let data_a = tempfile::tempdir().expect("data folder");
    let data_b = tempfile::tempdir().expect("data folder");
    let log_dir = tempfile::tempdir().expect("log folder");
    let logs = log_dir.path();
    let args = ["--nats", urls.as_str(), "--nats-replicas", "3"];
    let mut relay_a = RelayProcess::start_with(data_a.path(), free_port(), logs, 0, &args).await;
    let relay_b = RelayProcess::start_with(data_b.path(), free_port(), logs, 1, &args).await;
    let join = |addr, handle: &str| {
        let token = tokens[handle].clone();
        let hub = hub.clone();
        async move {
            let mut client = Client::connect(addr, &hub).await;
            let welcome = client.hello(&token, &hub, 0, 0).await;
            (client, welcome)
        }
    };
    // A member on each relay, reading from the start.
    let (mut m1, _) = join(relay_a.addr, "m1").await;
    let (mut m2, _) = join(relay_b.addr, "m2").await;
    // Writers on both relays at once: 10,050 ops.
    const BATCHES: usize = 67;
    const PER_BATCH: usize = 50;
    let mut writers = Vec::new();
    for (addr, handle) in [
        (relay_a.addr, "w1"),
        (relay_b.addr, "w2"),
        (relay_b.addr, "w3"),
    ] {
        let (mut client, _) = join(addr, handle).await;
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for _ in 0..BATCHES {
                for ack in client.submit(PER_BATCH).await {
                    acked.push((ack.seq, ack.id));
                }
            }
            acked
        }));
    }
    let mut acked = BTreeMap::new();
    for writer in writers {
        for (seq, id) in writer.await.expect("a writer") {
            assert!(acked.insert(seq, id).is_none(), "seq {seq} acked twice");
        }
    }
    assert_eq!(acked.len(), 3 * BATCHES * PER_BATCH);
    let head = *acked.keys().last().expect("acks");
    let seen_a = follow_until(&mut m1, 0, head).await;
    let seen_b = follow_until(&mut m2, 0, head).await;
    assert_eq!(
        seen_a.iter().map(|o| o.0).collect::<Vec<_>>(),
        (1..=head).collect::<Vec<_>>()
    );
    assert_eq!(seen_a, seen_b, "members on both relays see one order");
    // Every op once: no id twice, the relays' own grant ops included (both
    // relays grant roles to the members they see first).
    let mut ids = std::collections::HashSet::new();
    for (seq, id) in &seen_a {
        assert!(
            ids.insert(*id),
            "op {id:?} is in the log twice (again at seq {seq})"
        );
    }
    for (seq, id) in &acked {
        assert_eq!(
            seen_a[*seq as usize - 1].1,
            *id,
            "seq {seq} is the acked op"
        );
    }
    // A relay dies: everything acknowledged is read back through the other.
    relay_a.kill_9();
    let (mut late, welcome) = join(relay_b.addr, "m2").await;
    assert!(welcome.head >= head);
    let read_back = follow_until(&mut late, 0, head).await;
    assert_eq!(read_back, seen_a[..head as usize]);
}
