//! Crash and process-level tests against the real `spoke-relay` binary: hubs
//! and tokens made with the CLI, the relay killed with SIGKILL mid-stream and
//! restarted on the same data folder.

mod common;

use common::process::{BIN, RelayProcess, cli_json, field, free_port};
use common::{Client, Event, TIMEOUT, XorShift, assert_seqs, op};
use futures_util::SinkExt;
use spoke_relay::proto::{ErrorCode, Frame, Op, OpId, encode_frame};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// A hub made with the CLI: its id, the admin token and member tokens.
struct Setup {
    data: tempfile::TempDir,
    logs: tempfile::TempDir,
    hub: String,
    admin: String,
    members: Vec<(String, String, String)>, // (handle, token, token id)
}

fn setup(handles: &[&str]) -> Setup {
    let data = tempfile::tempdir().expect("data folder");
    let logs = tempfile::tempdir().expect("log folder");
    let d = data.path().to_str().expect("utf-8 temp path").to_owned();
    let created = cli_json(&["hub", "create", "Crash Studio", "--data", &d, "--json"]);
    let hub = field(&created, "hub");
    let admin = field(&created, "token");
    assert!(admin.starts_with("spk_"), "{admin}");
    let members = handles
        .iter()
        .map(|handle| {
            let issued = cli_json(&[
                "token", "issue", "--data", &d, "--hub", &hub, "--handle", handle, "--role",
                "creative", "--json",
            ]);
            (
                (*handle).to_owned(),
                field(&issued, "token"),
                field(&issued, "token_id"),
            )
        })
        .collect();
    Setup {
        data,
        logs,
        hub,
        admin,
        members,
    }
}

/// What one loading client saw before the relay died (or it finished).
struct Load {
    handle: String,
    token: String,
    client_id: u64,
    acked: Vec<(OpId, u64)>,
    /// Sent, never acked: may or may not be stored.
    unacked: Vec<Op>,
    finished: bool,
}

/// Submits up to `max_ops` ops in Submits of 1-50, keeping up to three in
/// flight, until done or the connection dies.
async fn load(
    addr: SocketAddr,
    hub: String,
    handle: String,
    token: String,
    seed: u64,
    max_ops: u64,
    acked_total: Arc<AtomicU64>,
) -> Load {
    let mut client = Client::connect(addr, &hub).await;
    client.hello(&token, &hub, 0, 0).await;
    let client_id = client.client_id;
    let mut rng = XorShift(seed);
    let mut next = 0u64;
    let mut inflight: VecDeque<Vec<Op>> = VecDeque::new();
    let mut acked = Vec::new();
    let mut finished = false;
    'run: loop {
        while inflight.len() < 3 && next < max_ops {
            let n = rng.range(1, 50).min(max_ops - next);
            let ops: Vec<Op> = (next + 1..=next + n)
                .map(|s| op(client_id, s, &handle))
                .collect();
            next += n;
            let bytes = encode_frame(&Frame::Submit { ops: ops.clone() }).expect("encode");
            inflight.push_back(ops);
            let sent = tokio::time::timeout(TIMEOUT, client.ws.send(Message::binary(bytes))).await;
            if !matches!(sent, Ok(Ok(()))) {
                break 'run;
            }
        }
        if inflight.is_empty() {
            finished = true;
            break;
        }
        match client.next_event().await {
            Event::Frame(Frame::Ack { acks }) => {
                let ops = inflight.pop_front().expect("an Ack answers a Submit");
                let ids: Vec<OpId> = ops.iter().map(|o| o.id).collect();
                let got: Vec<OpId> = acks.iter().map(|a| a.id).collect();
                assert_eq!(got, ids, "Acks come in Submit order");
                acked.extend(acks.iter().map(|a| (a.id, a.seq)));
                acked_total.fetch_add(acks.len() as u64, Ordering::Relaxed);
            }
            Event::Frame(Frame::Ops { .. }) => {}
            Event::Frame(other) => panic!("@{handle}: unexpected {other:?}"),
            Event::Close(_) | Event::Ended(_) => break,
        }
    }
    Load {
        handle,
        token,
        client_id,
        acked,
        unacked: inflight.into_iter().flatten().collect(),
        finished,
    }
}

/// Connects with cursor 0 and reads the whole log, checking its shape:
/// seqs 1..=head, each op id once. Returns the log by seq.
async fn read_full_log(addr: SocketAddr, hub: &str, token: &str) -> Vec<(u64, Op)> {
    let mut client = Client::connect(addr, hub).await;
    let welcome = client.hello(token, hub, 0, 0).await;
    let log = if welcome.head == 0 {
        Vec::new()
    } else {
        client.collect_ops_until(welcome.head).await
    };
    assert_seqs(&log, 1, welcome.head);
    let ids: HashSet<OpId> = log.iter().map(|(_, o)| o.id).collect();
    assert_eq!(ids.len(), log.len(), "an op id appears twice in the log");
    client.expect_nothing_but_pong(1).await;
    client.close().await;
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acked_ops_survive_kill_9_with_their_seqs_and_resends_are_stored_once() {
    const PER_CLIENT: u64 = 2_000;
    const KILL_AFTER: u64 = 1_000;
    let s = setup(&["ana", "ben", "cy"]);
    let port = free_port();
    let mut relay = RelayProcess::start(s.data.path(), port, s.logs.path(), 1).await;
    let addr = relay.addr;

    let acked_total = Arc::new(AtomicU64::new(0));
    let loaders: Vec<_> = s
        .members
        .iter()
        .enumerate()
        .map(|(i, (handle, token, _))| {
            tokio::spawn(load(
                addr,
                s.hub.clone(),
                handle.clone(),
                token.clone(),
                0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1),
                PER_CLIENT,
                acked_total.clone(),
            ))
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(60);
    while acked_total.load(Ordering::Relaxed) < KILL_AFTER {
        assert!(
            Instant::now() < deadline,
            "only {} acks in 60 s: {}",
            acked_total.load(Ordering::Relaxed),
            relay.log_text()
        );
        if loaders.iter().all(|l| l.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    relay.kill_9();

    let mut loads = Vec::new();
    for loader in loaders {
        let l = tokio::time::timeout(TIMEOUT * 3, loader)
            .await
            .expect("loaders notice the crash")
            .expect("loader task");
        loads.push(l);
    }
    let acked: Vec<(OpId, u64)> = loads.iter().flat_map(|l| l.acked.clone()).collect();
    assert!(acked.len() as u64 >= KILL_AFTER.min(3 * PER_CLIENT));
    assert!(
        loads.iter().any(|l| !l.finished),
        "every client finished before the kill: the crash was not mid-stream"
    );
    let acked_seqs: HashSet<u64> = acked.iter().map(|(_, s)| *s).collect();
    assert_eq!(acked_seqs.len(), acked.len(), "two acks with the same seq");

    // Restart on the same data folder and port.
    let relay = RelayProcess::start(s.data.path(), port, s.logs.path(), 2).await;
    let log = read_full_log(relay.addr, &s.hub, &s.admin).await;
    let head = log.len() as u64;
    assert!(
        head >= acked.len() as u64,
        "head {head} < {} acked",
        acked.len()
    );
    let actor_of: HashMap<u64, &str> = loads
        .iter()
        .map(|l| (l.client_id, l.handle.as_str()))
        .collect();
    for (id, seq) in &acked {
        let (_, stored) = log
            .get((*seq - 1) as usize)
            .unwrap_or_else(|| panic!("acked op {id} at seq {seq} is missing (head {head})"));
        assert_eq!(stored.id, *id, "acked op {id} moved from seq {seq}");
    }
    for (seq, stored) in &log {
        if stored.id.client == spoke_relay::policy::RELAY_CLIENT {
            continue; // the relay's role grant for a member's first connection
        }
        let actor = actor_of[&stored.id.client.0];
        assert_eq!(
            stored,
            &op(stored.id.client.0, stored.id.seq, actor),
            "seq {seq}"
        );
    }
    let stored_ids: HashMap<OpId, u64> = log.iter().map(|(s, o)| (o.id, *s)).collect();
    let unacked: Vec<OpId> = loads
        .iter()
        .flat_map(|l| l.unacked.iter().map(|o| o.id))
        .collect();
    eprintln!(
        "killed after {} acked ops; head after restart {head}; {} ops in flight, {} of them stored",
        acked.len(),
        unacked.len(),
        unacked
            .iter()
            .filter(|id| stored_ids.contains_key(id))
            .count()
    );

    // Resend what was in flight at the crash, plus a few acked ops, from the
    // same client ids over new connections.
    let mut expect_new = 0u64;
    let mut resent_ids = Vec::new();
    for l in &loads {
        let mut client = Client::connect(relay.addr, &s.hub).await;
        client.hello(&l.token, &s.hub, 0, head).await;
        client.client_id = l.client_id;
        let mut batch: Vec<Op> = l.unacked.clone();
        batch.extend(
            l.acked
                .iter()
                .take(5)
                .map(|(id, _)| op(id.client.0, id.seq, &l.handle)),
        );
        for chunk in batch.chunks(50) {
            let acks = client.submit_ops(chunk.to_vec()).await;
            for ack in acks {
                match stored_ids.get(&ack.id) {
                    Some(seq) => assert_eq!(ack.seq, *seq, "resent {} got a new seq", ack.id),
                    None => {
                        assert!(
                            ack.seq > head,
                            "new op {} under old seq {}",
                            ack.id,
                            ack.seq
                        );
                        expect_new += 1;
                    }
                }
                resent_ids.push(ack.id);
            }
        }
        client.close().await;
    }
    let log = read_full_log(relay.addr, &s.hub, &s.admin).await;
    assert_eq!(log.len() as u64, head + expect_new, "resends stored once");
    let counts = log.iter().fold(HashMap::new(), |mut m, (_, o)| {
        *m.entry(o.id).or_insert(0) += 1;
        m
    });
    for id in resent_ids {
        assert_eq!(counts.get(&id), Some(&1), "op {id} stored once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_issues_and_revokes_tokens_while_the_relay_serves() {
    let s = setup(&["ana"]);
    let relay = RelayProcess::start(s.data.path(), free_port(), s.logs.path(), 1).await;
    let d = s.data.path().to_str().expect("utf-8 temp path");
    let (_, token, token_id) = &s.members[0];

    let mut a = Client::connect(relay.addr, &s.hub).await;
    a.hello(token, &s.hub, 0, 0).await;
    a.submit(2).await;

    // A token issued while serving works at once.
    let issued = cli_json(&[
        "token",
        "issue",
        "--data",
        d,
        "--hub",
        &s.hub,
        "--handle",
        "ben",
        "--role",
        "read-only",
        "--json",
    ]);
    let mut b = Client::connect(relay.addr, &s.hub).await;
    let welcome = b.hello(&field(&issued, "token"), &s.hub, 0, 0).await;
    // ana's two ops and the relay's role grants for ana's and ben's tokens.
    assert_eq!((welcome.member.as_str(), welcome.head), ("ben", 4));

    // A token revoked while serving is refused on the next connection.
    let out = Command::new(BIN)
        .args(["token", "revoke", "--data", d, "--hub", &s.hub, token_id])
        .output()
        .expect("run spoke-relay token revoke");
    assert!(
        out.status.success(),
        "revoke failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut c = Client::connect(relay.addr, &s.hub).await;
    c.send(&Frame::Hello {
        token: token.clone(),
        hub: s.hub.clone(),
        epoch: 0,
        cursor: 0,
    })
    .await;
    c.expect_error_and_close(ErrorCode::Unauthorized).await;

    // The connection opened before the revocation writes nothing more.
    let ops = a.make_ops(1);
    a.send(&Frame::Submit { ops }).await;
    // Live ops (the relay's grant for ben) may arrive first.
    loop {
        match a.recv().await {
            Frame::Ops { .. } => continue,
            Frame::Error { code, message, .. } => {
                assert_eq!(code, ErrorCode::Unauthorized, "{message}");
                break;
            }
            other => panic!("expected the revocation to end the session, got {other:?}"),
        }
    }
    a.expect_close().await;
    let mut d2 = Client::connect(relay.addr, &s.hub).await;
    let welcome = d2.hello(&field(&issued, "token"), &s.hub, 0, 0).await;
    assert_eq!(welcome.head, 4, "nothing was stored after the revocation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_tells_every_client_going_away_and_exits_cleanly() {
    let s = setup(&["ana"]);
    // One op per second, bursts of two: a client can be made to wait in the
    // rate limiter, as a busy connection would be at shutdown time.
    let mut relay = RelayProcess::start_with(
        s.data.path(),
        free_port(),
        s.logs.path(),
        1,
        &["--max-ops-per-sec", "1"],
    )
    .await;
    let (_, token, _) = &s.members[0];
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect(relay.addr, &s.hub).await;
        c.hello(token, &s.hub, 0, 0).await;
        clients.push(c);
    }
    clients[2].submit(2).await;
    for c in &mut clients {
        c.collect_ops_until(2).await;
        c.expect_nothing_but_pong(1).await;
    }
    // The last client's second Submit waits about two seconds for its turn.
    let ops = clients[2].make_ops(2);
    clients[2].send(&Frame::Submit { ops }).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let status = Command::new("kill")
        .args(["-TERM", &relay.pid().to_string()])
        .status()
        .expect("run kill -TERM");
    assert!(status.success());
    let mut endings = Vec::new();
    for c in &mut clients {
        endings.push(ending(c).await);
    }
    let exit = relay.wait_exit().await;
    assert!(exit.success(), "exit status {exit}: {}", relay.log_text());
    let want = "going_away, close Some(1001)";
    assert!(
        endings.iter().all(|e| e == want),
        "on SIGTERM every client should get Error {{ going_away }} and close 1001; got {endings:?}"
    );
}

/// How a connection ended after shutdown began, skipping acks and ops that
/// were already on their way.
async fn ending(c: &mut Client) -> String {
    loop {
        match c.next_event().await {
            Event::Frame(Frame::Ack { .. } | Frame::Ops { .. }) => continue,
            Event::Frame(Frame::Error {
                code: ErrorCode::GoingAway,
                ..
            }) => {
                return match c.next_event().await {
                    Event::Close(code) => format!("going_away, close {code:?}"),
                    other => format!("going_away, then {other:?}"),
                };
            }
            other => return format!("{other:?}"),
        }
    }
}
