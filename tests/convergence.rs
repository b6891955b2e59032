//! Convergence: applying the same set of ops in any order, with duplicates,
//! yields the same state in memory; and replicas applying the same hub log
//! (forbidden ops mixed in: ops before their actor's role was granted, by a
//! read-only or agent member, on entities they may not touch) through the
//! hub's rules in seq order, in any batching, reach the same state.

use proptest::prelude::*;
use serde_json::{Value, json};
use spoke::model::{Change, EntityKind, EntityRef, Op, Role, State};
use spoke::store::{Replica, ReplicaMeta};
use spoke_relay::proto::{ClientId, Hlc, OpId};
use std::collections::BTreeMap;

/// A change without identity; ids are assigned per client afterwards.
#[derive(Debug, Clone)]
struct RawOp {
    client: u64,
    wall: u64,
    logical: u32,
    entity: (EntityKind, u8),
    change: Change,
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (0i64..5).prop_map(|n| json!(n)),
        "[a-c]{0,3}".prop_map(Value::String),
        prop::collection::vec("[a-c]{1,2}", 0..3).prop_map(|v| json!(v)),
    ]
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("title".to_owned()),
        Just("status".to_owned()),
        Just("priority".to_owned()),
        Just("deleted".to_owned()),
        "tags:[xyz]".prop_map(|s| s),
        "assignees:[pq]".prop_map(|s| s),
    ]
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        4 => prop::collection::btree_map(field_name(), value(), 1..4).prop_map(Change::Set),
        2 => value().prop_map(|v| Change::Append(json!({ "body": v }))),
        1 => Just(Change::Delete),
    ]
}

fn raw_op() -> impl Strategy<Value = RawOp> {
    (
        1u64..4,
        0u64..12,
        0u32..3,
        prop_oneof![
            Just(EntityKind::Brief),
            Just(EntityKind::Member),
            Just(EntityKind::Thread)
        ],
        0u8..3,
        change(),
    )
        .prop_map(|(client, wall, logical, kind, n, change)| RawOp {
            client,
            wall,
            logical,
            entity: (kind, n),
            change,
        })
}

/// Gives each op a unique id: per-client sequence numbers in generation order.
fn identify(raw: Vec<RawOp>) -> Vec<Op> {
    let mut seqs: BTreeMap<u64, u64> = BTreeMap::new();
    raw.into_iter()
        .map(|r| {
            let seq = seqs.entry(r.client).or_insert(0);
            *seq += 1;
            Op {
                id: OpId {
                    client: ClientId(r.client),
                    seq: *seq,
                },
                hlc: Hlc {
                    wall_ms: r.wall,
                    logical: r.logical,
                },
                actor: format!("m{}", r.client),
                entity: EntityRef::new(r.entity.0, format!("e{}", r.entity.1)),
                change: r.change,
            }
        })
        .collect()
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::Lead),
        Just(Role::Creative),
        Just(Role::Requester),
        Just(Role::Agent),
        Just(Role::ReadOnly),
    ]
}

/// The relay's role grants for some of the members, in the log like any op.
fn grants() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec((1u64..4, role(), 0u64..12), 0..5).prop_map(|gs| {
        gs.into_iter()
            .enumerate()
            .map(|(i, (client, role, wall))| {
                Op::relay_grant(i as u64 + 1, &format!("m{client}"), role, wall)
            })
            .collect()
    })
}

/// The ops (with role grants), a shuffled copy with some ops repeated (the
/// hub log's order), and batch sizes.
fn scenario() -> impl Strategy<Value = (Vec<Op>, Vec<Op>, Vec<usize>)> {
    (prop::collection::vec(raw_op(), 1..40), grants())
        .prop_map(|(raw, grants)| {
            let mut ops = identify(raw);
            ops.extend(grants);
            ops
        })
        .prop_flat_map(|ops| {
            let n = ops.len();
            let dupes = prop::collection::vec(0..n, 0..n.max(1));
            (Just(ops), dupes, prop::collection::vec(1usize..8, 1..10))
        })
        .prop_flat_map(|(ops, dupes, batches)| {
            let mut shuffled = ops.clone();
            shuffled.extend(dupes.iter().map(|&i| ops[i].clone()));
            (Just(ops), Just(shuffled).prop_shuffle(), Just(batches))
        })
}

/// What the hub's rules keep of a log, judged in seq order, and the ids of
/// the ops they refuse (at any of their places in the log).
fn judged(log: &[Op]) -> (Vec<Op>, std::collections::BTreeSet<String>) {
    let mut rules = spoke_relay::policy::PolicyState::default();
    let mut kept = Vec::new();
    let mut refused = std::collections::BTreeSet::new();
    for op in log {
        let view = op.policy_ref();
        match rules.admit(&view, spoke_relay::policy::rules::is_relay_grant(&view)) {
            Ok(()) => kept.push(op.clone()),
            Err(_) => {
                refused.insert(op.id.to_string());
            }
        }
    }
    (kept, refused)
}

/// Whether, once the relay's first grant put the rules in force, an op of
/// a member never granted a role was applied anyway.
fn applied_without_a_role(log: &[Op], refused: &std::collections::BTreeSet<String>) -> bool {
    let mut granted = std::collections::BTreeSet::new();
    let mut in_force = false;
    for op in log {
        if op.id.client.0 == 0 {
            granted.insert(op.entity.id.clone());
            in_force = true;
        } else if in_force && !refused.contains(&op.id.to_string()) && !granted.contains(&op.actor)
        {
            return true;
        }
    }
    false
}

/// Feeds `log` to a new replica in batches of the given sizes.
fn replica_fed(dir: &std::path::Path, name: &str, log: &[Op], sizes: &[usize]) -> Replica {
    let replica =
        Replica::create(&dir.join(name), &ReplicaMeta::new(ClientId(99))).expect("create");
    let mut rest = log;
    let mut sizes = sizes.iter().cycle();
    let mut seq = 0u64;
    while !rest.is_empty() {
        let n = (*sizes.next().expect("cycle")).min(rest.len());
        let (batch, tail) = rest.split_at(n);
        let encoded: Vec<(u64, Vec<u8>)> = batch
            .iter()
            .map(|op| {
                seq += 1;
                (seq, op.encode().expect("encode"))
            })
            .collect();
        replica.apply_sequenced(&encoded).expect("apply");
        rest = tail;
    }
    replica
}

fn state_of(ops: &[Op]) -> State {
    let mut s = State::default();
    for op in ops {
        s.apply(op);
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_order_with_duplicates_gives_the_same_state((ops, shuffled, _) in scenario()) {
        let a = state_of(&ops);
        let b = state_of(&shuffled);
        prop_assert_eq!(a.hash(), b.hash());
        prop_assert_eq!(a, b);
    }

    #[test]
    fn applying_twice_changes_nothing((ops, _, _) in scenario()) {
        let once = state_of(&ops);
        let mut twice = once.clone();
        for op in &ops {
            twice.apply(op);
        }
        prop_assert_eq!(once.hash(), twice.hash());
    }
}

proptest! {
    // Each case creates a redb file, so fewer cases.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn replicas_of_one_log_converge_and_apply_only_what_the_rules_allow(
        (_ops, log, batches) in scenario()
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (kept, refused_ids) = judged(&log);
        let expected = state_of(&kept).hash();
        // Two replicas, the log in different batchings, as sync would feed them.
        let one = replica_fed(dir.path(), "one.redb", &log, &batches);
        let reversed: Vec<usize> = batches.iter().rev().copied().collect();
        let two = replica_fed(dir.path(), "two.redb", &log, &reversed);
        prop_assert_eq!(one.state_hash().expect("hash"), expected);
        prop_assert_eq!(two.state_hash().expect("hash"), expected);
        // Every op the rules refused is recorded, and none left a trace.
        let refused = one.refused().expect("refused");
        let recorded: std::collections::BTreeSet<String> =
            refused.iter().map(|r| r.op.clone()).collect();
        prop_assert_eq!(&recorded, &refused_ids);
        // Under the rules, an actor without a granted role changes nothing
        // (a log from before them, with no grant yet, stands as written).
        prop_assert!(!applied_without_a_role(&log, &refused_ids));
        // Rebuilding from the stored log lands on the same state.
        one.rebuild_cache().expect("rebuild");
        prop_assert_eq!(one.state_hash().expect("hash"), expected);
    }
}
