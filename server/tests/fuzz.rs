//! Fuzz targets for what the relay reads from the network: WebSocket
//! framing, protocol frames, and ops through the hub's rules. Each runs for
//! `SPOKE_FUZZ_SECONDS` (see `common/fuzz.rs`); none may panic.

mod common;

use bytes::Bytes;
use common::fuzz;
use serde_json::json;
use spoke_relay::policy::{
    Change, DecodedOp, EntityKind, OpRef, PolicyState, RELAY_ACTOR, RELAY_CLIENT,
};
use spoke_relay::proto::{
    self, ClientId, EntityKey, Frame, Hlc, Op, OpId, Presence, SeqOp, decode_frame, encode_frame,
    encode_op,
};
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

/// A masked client frame, as a browser or the client library sends it.
fn client_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    common::masked_frame(
        (u8::from(fin) << 7) | opcode,
        [0x12, 0x34, 0x56, 0x78],
        payload,
    )
}

fn op(kind: &str, entity: &str, id: &str, change: Change) -> Op {
    Op {
        id: OpId {
            client: ClientId(7),
            seq: 1,
        },
        hlc: Hlc {
            wall_ms: 1_764_000_000_000,
            logical: 0,
        },
        actor: "ana".into(),
        entity: EntityKey {
            kind: entity.into(),
            id: id.into(),
        },
        kind: kind.into(),
        body: change.encode_body(),
    }
}

/// Ops of every shape the rules look into.
fn sample_ops() -> Vec<Op> {
    let set = |v: serde_json::Value| {
        Change::Set(
            v.as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        )
    };
    vec![
        op(
            "set",
            "brief",
            "b-1",
            set(json!({"title": "x", "assignees:kenji": true})),
        ),
        op("set", "member", "kenji", set(json!({"roles:lead": true}))),
        op(
            "set",
            "approval",
            "r-1",
            set(json!({"subject": {"type": "proposal", "id": "p-1"},
                "stages": [{"name": "review", "reviewers": ["role:lead", "kenji"]}]})),
        ),
        op(
            "append",
            "approval",
            "r-1",
            Change::Append(json!({"stage": 0, "reviewer": "ana", "decision": "approved"})),
        ),
        op(
            "set",
            "brief",
            "b-1",
            set(json!({"status": "ready", "from_proposal": "p-1"})),
        ),
        op(
            "set",
            "asset",
            "a-1",
            set(json!({"status": "approved", "approval": "r-1"})),
        ),
        op("delete", "audit", "h-1", Change::Delete),
    ]
}

fn frame_seeds() -> Vec<Vec<u8>> {
    let ops = sample_ops();
    let frames = [
        Frame::Hello {
            token: "spk_a_b".into(),
            hub: "h-1".into(),
            epoch: 1,
            cursor: 9,
        },
        Frame::Submit { ops: ops.clone() },
        Frame::Ops {
            from: 1,
            ops: ops
                .iter()
                .enumerate()
                .map(|(i, o)| SeqOp {
                    seq: i as u64 + 1,
                    op: encode_op(o).unwrap_or_default(),
                })
                .collect(),
        },
        Frame::Presence(Presence {
            member: "ana".into(),
            status: spoke_relay::proto::PresenceStatus::Online,
            tz: Some("Europe/Lisbon".into()),
            viewing: None,
        }),
        Frame::Fetch { from: 3 },
        Frame::Ping { nonce: 5 },
    ];
    frames.iter().filter_map(|f| encode_frame(f).ok()).collect()
}

/// A hub where ana leads and kenji creates: the rules have state to judge by.
fn policy() -> PolicyState {
    let mut state = PolicyState::default();
    for (seq, handle, role) in [(1, "ana", "lead"), (2, "kenji", "creative")] {
        let grant = Change::Set([(format!("roles:{role}"), json!(true))].into());
        let view = OpRef {
            id: OpId {
                client: RELAY_CLIENT,
                seq,
            },
            hlc: Hlc::default(),
            actor: RELAY_ACTOR,
            kind: EntityKind::Member,
            entity: handle,
            change: &grant,
        };
        let _ = state.admit(&view, true);
    }
    state
}

#[test]
fn fuzz_the_websocket_reader() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let hello = encode_frame(&Frame::Ping { nonce: 1 }).unwrap_or_default();
    let mut seeds = vec![
        client_frame(0x2, true, &hello),
        [
            client_frame(0x2, false, b"part"),
            client_frame(0x0, true, b"rest"),
        ]
        .concat(),
        client_frame(0x8, true, &[0x03, 0xe8, b'o', b'k']),
        client_frame(0x9, true, b"ping"),
        client_frame(0x1, true, "text ✓".as_bytes()),
        client_frame(0x2, true, &vec![0x2a; 70_000]),
    ];
    seeds.extend(frame_seeds().iter().map(|f| client_frame(0x2, true, f)));
    fuzz::run("ws-reader", &corpus(), seeds, |bytes| {
        rt.block_on(async {
            let mut reader = spoke_relay::ws::Reader::new(
                bytes,
                Bytes::new(),
                proto::MAX_FRAME_BYTES,
                proto::MAX_MESSAGE_BYTES,
                4096,
            );
            // Every message until the bytes end or the reader refuses them.
            for _ in 0..64 {
                match reader.next().await {
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        });
    });
}

#[test]
fn fuzz_frame_decoding_and_the_rules_on_submitted_ops() {
    fuzz::run("frame", &corpus(), frame_seeds(), |bytes| {
        let Ok(frame) = decode_frame(bytes) else {
            return;
        };
        // A frame that decodes encodes again.
        let again = encode_frame(&frame).expect("a decoded frame encodes");
        assert!(decode_frame(&again).is_ok());
        if let Frame::Submit { ops } = frame {
            let mut state = policy();
            for op in ops {
                if let Ok(decoded) = DecodedOp::from_wire(&op) {
                    let _ = state.admit(&decoded.as_ref(), false);
                }
            }
            let _ = state.take_changes();
        }
    });
}

#[test]
fn fuzz_stored_ops_through_the_rules_and_policy_rows() {
    let seeds: Vec<Vec<u8>> = sample_ops()
        .iter()
        .filter_map(|o| encode_op(o).ok())
        .collect();
    fuzz::run("op", &corpus(), seeds, |bytes| {
        let Ok(op) = DecodedOp::decode(bytes) else {
            return;
        };
        let mut state = policy();
        let _ = state.admit(&op.as_ref(), op.id.client == RELAY_CLIENT);
        // Whatever the rules recorded reads back.
        let rows = state.take_changes();
        let mut reloaded = policy();
        reloaded
            .extend(rows)
            .expect("rows the state wrote read back");
    });
}
