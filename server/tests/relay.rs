//! Integration tests of the relay over real sockets: an in-process relay on
//! 127.0.0.1, protocol clients over WebSocket and a tiny HTTP client.

mod common;

use common::{Client, Event, TIMEOUT, TestRelay, assert_seqs, body_of_size, http, op, sha256_hex};
use spoke_relay::proto::{
    ClientId, ErrorCode, Frame, MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, MAX_OP_BYTES,
    MAX_OPS_PER_FRAME, Op, OpId, Presence, WIRE_VERSION, encode_frame,
};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// The op a test built for `id` and `actor` (ops are deterministic).
fn expected(id: OpId, actor: &str) -> Op {
    op(id.client.0, id.seq, actor)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ops_from_three_clients_reach_everyone_in_seq_order_and_late_joiners_catch_up() {
    let relay = TestRelay::start().await;
    let hub = relay.hub("Studio");
    let handles = ["ana", "ben", "cy"];
    let plans: [&[usize]; 3] = [&[3, 1, 7, 2, 9], &[5, 5, 1], &[1, 1, 1, 10, 4, 2]];
    let submitted: u64 = plans.iter().flat_map(|p| p.iter()).sum::<usize>() as u64;
    // The log also holds the relay's role grant for each member's first Hello.
    let total = submitted + handles.len() as u64;

    // Everyone is connected before anyone submits, so everyone sees it all
    // live (the grants of those who join later included).
    let mut clients = Vec::new();
    for (i, handle) in handles.into_iter().enumerate() {
        let token = relay.token(&hub, handle, "creative");
        let (client, welcome) = relay.join(&hub, &token, handle).await;
        assert_eq!(
            (
                welcome.head,
                welcome.hub_name.as_str(),
                welcome.role.as_str()
            ),
            (i as u64 + 1, "Studio", "creative"),
            "@{handle}'s Welcome counts the grants so far, its own included"
        );
        clients.push(client);
    }
    let tasks: Vec<_> = clients
        .into_iter()
        .zip(plans)
        .map(|(mut client, plan)| {
            tokio::spawn(async move {
                let mut acks = Vec::new();
                for &n in plan {
                    acks.extend(client.submit(n).await);
                }
                let received = client.collect_ops_until(total).await;
                // Nothing after the last op: no duplicates, no stray frames.
                client.expect_nothing_but_pong(1).await;
                (client.handle.clone(), client.client_id, acks, received)
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("client task"));
    }

    let reference = results[0].3.clone();
    let actor_of: HashMap<ClientId, String> = results
        .iter()
        .map(|(handle, id, _, _)| (ClientId(*id), handle.clone()))
        .collect();
    for (handle, client_id, acks, received) in &results {
        assert_seqs(received, 1, total);
        assert_eq!(received, &reference, "@{handle} saw the same log as @ana");
        // Each ack names the seq its op was delivered under.
        assert_eq!(acks.len(), plans_len(&plans, handle, &handles));
        for ack in acks {
            let (seq, delivered) = &received[(ack.seq - 1) as usize];
            assert_eq!((*seq, delivered.id), (ack.seq, ack.id));
            assert_eq!(delivered.id.client, ClientId(*client_id));
        }
        // A client's ops appear in the order it submitted them.
        let mine: Vec<u64> = received
            .iter()
            .filter(|(_, o)| o.id.client == ClientId(*client_id))
            .map(|(_, o)| o.id.seq)
            .collect();
        assert_eq!(mine, (1..=mine.len() as u64).collect::<Vec<_>>());
    }
    let ids: HashSet<OpId> = reference.iter().map(|(_, o)| o.id).collect();
    assert_eq!(ids.len() as u64, total, "no op id twice");
    // The grants came first, one per Hello, in the order the members joined.
    for (i, handle) in handles.iter().enumerate() {
        common::assert_grant(&reference[i].1, handle, "creative");
    }
    for (_, o) in &reference[handles.len()..] {
        let actor = &actor_of[&o.id.client];
        assert_eq!(o, &expected(o.id, actor), "ops are relayed unchanged");
    }

    // A late joiner with cursor 0 gets the whole log (its own grant last),
    // then nothing more.
    let token = relay.token(&hub, "dee", "reviewer");
    let (mut late, welcome) = relay.join(&hub, &token, "dee").await;
    assert_eq!(
        (welcome.head, welcome.role.as_str()),
        (total + 1, "reviewer")
    );
    let mut reference = reference;
    let full = late.collect_ops_until(total + 1).await;
    common::assert_grant(&full[total as usize].1, "dee", "reviewer");
    reference.push(full[total as usize].clone());
    assert_eq!(full, reference);
    late.expect_nothing_but_pong(2).await;
    // Dee's token is granted once: from here on the head stays put.
    let total = total + 1;

    // With cursor k in the hub's epoch: exactly k+1..=head.
    for k in [1, 7, total - 1] {
        let mut c = relay.connect(&hub).await;
        let w = c.hello(&token, &hub, welcome.epoch, k).await;
        assert_eq!((w.epoch, w.head), (welcome.epoch, total));
        let got = c.collect_ops_until(total).await;
        assert_seqs(&got, k + 1, total);
        assert_eq!(got[..], reference[k as usize..]);
        c.expect_nothing_but_pong(3).await;
    }
    // At the head: nothing to catch up.
    for cursor in [total, total + 50] {
        let mut c = relay.connect(&hub).await;
        c.hello(&token, &hub, welcome.epoch, cursor).await;
        c.expect_nothing_but_pong(4).await;
    }
    // A cursor from another epoch (or none) is void: the whole log again.
    let other_epoch = welcome.epoch.wrapping_add(1).max(1);
    for epoch in [0, other_epoch] {
        let mut c = relay.connect(&hub).await;
        let w = c.hello(&token, &hub, epoch, 5).await;
        assert_eq!(w.epoch, welcome.epoch, "Welcome carries the hub's epoch");
        assert_eq!(c.collect_ops_until(total).await, reference);
        c.expect_nothing_but_pong(5).await;
    }
}

fn plans_len(plans: &[&[usize]; 3], handle: &str, handles: &[&str; 3]) -> usize {
    let i = handles
        .iter()
        .position(|h| *h == handle)
        .expect("known handle");
    plans[i].iter().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resent_op_keeps_its_original_seq_and_is_stored_once() {
    let relay = TestRelay::start().await;
    let hub = relay.hub("Studio");
    // The members' role grants are seqs 1..=g; the ops below follow them.
    let ([ana, ben], g) = relay
        .members(&hub, [("ana", "lead"), ("ben", "creative")])
        .await;
    let seq = |n: u64| g + n;
    let (mut a, _) = relay.join(&hub, &ana, "ana").await;
    let (mut b, _) = relay.join(&hub, &ben, "ben").await;

    let ops = a.make_ops(3);
    let acks = a.submit_ops(ops.clone()).await;
    let first_three = [seq(1), seq(2), seq(3)];
    assert_eq!(acks.iter().map(|x| x.seq).collect::<Vec<_>>(), first_three);
    assert_seqs(&b.collect_ops_until(seq(3)).await, 1, seq(3));

    // One op again, then the whole batch again: original seqs.
    let again = a.submit_ops(vec![ops[1].clone()]).await;
    assert_eq!(again[0].seq, seq(2));
    let again = a.submit_ops(ops.clone()).await;
    assert_eq!(again.iter().map(|x| x.seq).collect::<Vec<_>>(), first_three);
    // A resend next to a fresh op, and the same fresh op twice in one Submit.
    let fresh = a.make_ops(1).remove(0);
    let mixed = a
        .submit_ops(vec![ops[0].clone(), fresh.clone(), fresh.clone()])
        .await;
    assert_eq!(
        mixed.iter().map(|x| x.seq).collect::<Vec<_>>(),
        [seq(1), seq(4), seq(4)]
    );

    // A reconnecting replica (same client id, new connection) resends too.
    let mut again_conn = relay.connect(&hub).await;
    again_conn.hello(&ana, &hub, 0, seq(4)).await;
    let resent = again_conn.submit_ops(vec![ops[2].clone()]).await;
    assert_eq!(resent[0].seq, seq(3));

    // Other members get only the fresh op, once: no live delivery of resends.
    let next = b.collect_ops_until(seq(4)).await;
    assert_seqs(&next, seq(4), seq(4));
    assert_eq!(next[0].1, fresh);
    b.expect_nothing_but_pong(1).await;
    // The submitter's own stream has each op once as well.
    assert_seqs(&a.collect_ops_until(seq(4)).await, 1, seq(4));
    a.expect_nothing_but_pong(2).await;

    // The head did not move and the log holds each op once (after the two
    // grants, which reconnecting did not repeat).
    let (mut late, welcome) = relay.join(&hub, &ben, "ben").await;
    assert_eq!(welcome.head, seq(4));
    let log = late.collect_ops_until(seq(4)).await;
    common::assert_grant(&log[0].1, "ana", "lead");
    common::assert_grant(&log[1].1, "ben", "creative");
    let ids: HashSet<OpId> = log[2..].iter().map(|(_, o)| o.id).collect();
    assert_eq!(ids.len(), 4);
    assert!(ids.iter().all(|id| id.client == ClientId(a.client_id)));
    late.expect_nothing_but_pong(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_refused_for_other_hubs_garbled_or_revoked() {
    let relay = TestRelay::start().await;
    let hub_a = relay.hub("A");
    let hub_b = relay.hub("B");
    let token_a = relay.token(&hub_a, "ana", "lead");
    let token_b = relay.token(&hub_b, "ben", "lead");

    // Hub A's token on hub B's socket, Hello naming hub B.
    let mut c = relay.connect(&hub_b).await;
    c.send(&hello(&token_a, &hub_b)).await;
    assert_eq!(
        c.expect_error_and_close(ErrorCode::Forbidden).await,
        Some(1008)
    );

    // A Hello naming another hub than the socket's URL, whichever token.
    for (url_hub, hello_hub, token) in [
        (&hub_a, &hub_b, &token_a),
        (&hub_a, &hub_b, &token_b),
        (&hub_b, &hub_a, &token_a),
    ] {
        let mut c = relay.connect(url_hub).await;
        c.send(&hello(token, hello_hub)).await;
        c.expect_error_and_close(ErrorCode::Forbidden).await;
    }

    // An unknown hub with a real token of another hub.
    let mut c = relay.connect("h-nope").await;
    c.send(&hello(&token_a, "h-nope")).await;
    let err = c.recv().await;
    assert!(
        matches!(
            err,
            Frame::Error {
                code: ErrorCode::Forbidden | ErrorCode::UnknownHub,
                ..
            }
        ),
        "{err:?}"
    );
    c.expect_close().await;

    // Wrong or garbled tokens.
    let mut forged = token_a.clone();
    let last = forged.pop().expect("non-empty token");
    forged.push(if last == 'x' { 'y' } else { 'x' });
    for bad in [forged.as_str(), "spk_nope_nope", "not-a-token", "", "spk_"] {
        let mut c = relay.connect(&hub_a).await;
        c.send(&hello(bad, &hub_a)).await;
        let code = c.expect_error_and_close(ErrorCode::Unauthorized).await;
        assert_eq!(code, Some(1008), "token {bad:?}");
    }

    // A revoked token: works before, refused after.
    let (revoked, record) = relay
        .registry()
        .issue(&hub_a, "cy", "creative", None)
        .expect("issue");
    let mut c = relay.connect(&hub_a).await;
    let welcome = c.hello(&revoked, &hub_a, 0, 0).await;
    // No refused Hello wrote anything: the log is just cy's role grant.
    assert_eq!(welcome.head, 1);
    let log = c.collect_ops_until(1).await;
    common::assert_grant(&log[0].1, "cy", "creative");
    c.expect_nothing_but_pong(1).await;
    relay.registry().revoke(&hub_a, &record.id).expect("revoke");
    let mut c = relay.connect(&hub_a).await;
    c.send(&hello(&revoked, &hub_a)).await;
    c.expect_error_and_close(ErrorCode::Unauthorized).await;

    // An expired token.
    let (expired, _) = relay
        .registry()
        .issue(&hub_a, "old", "creative", Some(1))
        .expect("issue");
    let mut c = relay.connect(&hub_a).await;
    c.send(&hello(&expired, &hub_a)).await;
    c.expect_error_and_close(ErrorCode::Unauthorized).await;

    // The good tokens still work on their own hubs.
    relay.join(&hub_a, &token_a, "ana").await;
    relay.join(&hub_b, &token_b, "ben").await;
}

fn hello(token: &str, hub: &str) -> Frame {
    Frame::Hello {
        token: token.to_owned(),
        hub: hub.to_owned(),
        epoch: 0,
        cursor: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_member_cannot_submit_but_stays_connected() {
    let relay = TestRelay::start().await;
    let hub = relay.hub("Studio");
    let ([viewer, ana], g) = relay
        .members(&hub, [("viewer", "read-only"), ("ana", "lead")])
        .await;
    let (mut v, welcome) = relay.join(&hub, &viewer, "viewer").await;
    assert_eq!((welcome.role.as_str(), welcome.head), ("read-only", g));
    let grants = v.collect_ops_until(g).await;
    common::assert_grant(&grants[0].1, "viewer", "read-only");
    common::assert_grant(&grants[1].1, "ana", "lead");

    let ops = v.make_ops(2);
    v.send(&Frame::Submit { ops }).await;
    v.expect_error(ErrorCode::Forbidden).await;
    v.expect_nothing_but_pong(1).await;

    // Nothing was stored.
    let (mut a, welcome) = relay.join(&hub, &ana, "ana").await;
    assert_eq!(welcome.head, g);
    assert_eq!(a.collect_ops_until(g).await, grants);
    a.expect_nothing_but_pong(2).await;

    // The read-only connection still receives the hub's ops.
    a.submit(2).await;
    assert_seqs(&v.collect_ops_until(g + 2).await, g + 1, g + 2);
    v.expect_nothing_but_pong(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_frames_get_the_right_error_and_do_not_disturb_others() {
    let relay = TestRelay::start().await;
    let hub = relay.hub("Studio");
    let ([ana, ben], g) = relay
        .members(&hub, [("ana", "lead"), ("ben", "creative")])
        .await;
    let (mut x, _) = relay.join(&hub, &ana, "ana").await;
    let (mut y, _) = relay.join(&hub, &ben, "ben").await;

    // Ben keeps working while Ana's connection misbehaves.
    const ROUNDS: u64 = 30;
    let good = tokio::spawn(async move {
        let mut seqs = Vec::new();
        for i in 0..ROUNDS {
            let acks = y.submit(1 + (i % 3) as usize).await;
            seqs.extend(acks.iter().map(|a| a.seq));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        (seqs, y)
    });

    x.send_message(Message::binary(vec![WIRE_VERSION, 0xc1, 0xff]))
        .await;
    x.expect_error(ErrorCode::BadFrame).await;
    x.ping(1).await;

    x.send_message(Message::binary(Vec::new())).await;
    x.expect_error(ErrorCode::BadFrame).await;
    x.ping(2).await;

    let mut wrong_version = encode_frame(&Frame::Ping { nonce: 7 }).expect("encode");
    wrong_version[0] = WIRE_VERSION + 1;
    x.send_message(Message::binary(wrong_version)).await;
    x.expect_error(ErrorCode::Version).await;
    x.ping(3).await;

    x.send_message(Message::text("{\"hello\":1}")).await;
    x.expect_error(ErrorCode::BadFrame).await;
    x.ping(4).await;

    // An op claiming another member as its actor is refused, by id and
    // rule; the other op of the Submit is handled on its own merits.
    let mut ops = x.make_ops(2);
    ops[1].actor = "ben".to_owned();
    let (own, forged) = (ops[0].clone(), ops[1].id);
    x.send(&Frame::Submit { ops }).await;
    let (message, refused, rule) = x.expect_refusal(ErrorCode::BadOp).await;
    assert_eq!(refused, Some(forged), "{message}");
    assert_eq!(rule.as_deref(), Some("actor-is-the-token"), "{message}");
    let acks = x.wait_ack().await;
    assert_eq!(acks.iter().map(|a| a.id).collect::<Vec<_>>(), [own.id]);
    let own_seq = acks[0].seq;
    x.ping(5).await;

    // Frames only the relay sends, and a second Hello.
    x.send(&Frame::Ops {
        from: 1,
        ops: Vec::new(),
    })
    .await;
    x.expect_error(ErrorCode::Protocol).await;
    x.send(&hello(&ana, &hub)).await;
    x.expect_error(ErrorCode::Protocol).await;
    x.ping(6).await;

    let (seqs, mut y) = good.await.expect("the well-behaved client");
    assert!(!seqs.contains(&own_seq), "each seq is acked to one op only");
    let head = (*seqs.last().expect("acks")).max(own_seq);
    assert_eq!(
        head,
        g + seqs.len() as u64 + 1,
        "acked ops and grants fill the log"
    );
    let log = y.collect_ops_until(head).await;
    y.expect_nothing_but_pong(99).await;
    assert_seqs(&log, 1, head);
    for (seq, o) in &log {
        match (o.actor.as_str(), *seq) {
            // The members' role grants.
            (":relay", s) => assert!(s <= g, "a grant at seq {s}"),
            ("ben", s) => assert!(seqs.contains(&s), "an op ben did not submit at seq {s}"),
            // The one accepted op of Ana's Submits.
            ("ana", s) => assert_eq!((s, o), (own_seq, &own)),
            (actor, s) => panic!("op from @{actor} at seq {s}"),
        }
    }
    assert!(
        log.iter().all(|(_, o)| o.id != forged),
        "the forged op was not stored"
    );
    // Ana's connection saw the same log, and is still fine.
    let seen = x.collect_ops_until(head).await;
    assert_eq!(seen, log);
    x.expect_nothing_but_pong(100).await;

    // Before Hello: a Submit, a text message, or garbage end the connection.
    let mut c = relay.connect(&hub).await;
    c.send(&Frame::Submit {
        ops: vec![op(1, 1, "ana")],
    })
    .await;
    assert_eq!(
        c.expect_error_and_close(ErrorCode::Protocol).await,
        Some(1002)
    );

    let mut c = relay.connect(&hub).await;
    c.send_message(Message::text("hello")).await;
    c.expect_error_and_close(ErrorCode::BadFrame).await;

    let mut c = relay.connect(&hub).await;
    c.send_message(Message::binary(vec![WIRE_VERSION, 0xc1]))
        .await;
    c.expect_error_and_close(ErrorCode::BadFrame).await;

    let (_, welcome) = relay.join(&hub, &ben, "ben").await;
    assert_eq!(welcome.head, head, "no refused op was stored");
}

/// Reads until the relay ends the connection; an `Error` before the end must
/// be `too_large`. Returns how it ended.
async fn expect_dropped_for_size(c: &mut Client) -> String {
    for _ in 0..1000 {
        match c.next_event().await {
            Event::Frame(Frame::Error { code, message, .. }) => {
                assert_eq!(code, ErrorCode::TooLarge, "{message}")
            }
            // Live ops that were already on their way are fine.
            Event::Frame(Frame::Ops { .. }) => {}
            Event::Frame(other) => panic!("unexpected frame {other:?}"),
            Event::Close(code) => {
                if let Some(code) = code {
                    assert_eq!(code, 1009, "close code for a too-large message");
                }
                return format!("closed with {code:?}");
            }
            Event::Ended(why) => return why,
        }
    }
    panic!("the connection was not closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oversized_message_closes_only_that_connection() {
    let relay = TestRelay::start().await;
    let hub = relay.hub("Studio");
    let ([ana, ben], g) = relay
        .members(&hub, [("ana", "lead"), ("ben", "creative")])
        .await;
    let (mut y, _) = relay.join(&hub, &ben, "ben").await;
    y.submit(1).await;

    // One 1.1 MiB message in one WebSocket frame.
    let (mut x, _) = relay.join(&hub, &ana, "ana").await;
    let mut big = vec![0u8; 1024 * 1024 + 100 * 1024];
    big[0] = WIRE_VERSION;
    // The relay may stop reading mid-message, so the send itself may fail.
    let _ = tokio::time::timeout(
        TIMEOUT,
        futures_util::SinkExt::send(&mut x.ws, Message::binary(big)),
    )
    .await;
    expect_dropped_for_size(&mut x).await;

    // Over 1 MiB in fragments that are each within the frame limit.
    let (mut z, _) = relay.join(&hub, &ana, "ana").await;
    let piece = vec![7u8; 250 * 1024];
    for i in 0..5 {
        let opcode = if i == 0 {
            OpCode::Data(Data::Binary)
        } else {
            OpCode::Data(Data::Continue)
        };
        let mut data = piece.clone();
        if i == 0 {
            data[0] = WIRE_VERSION;
        }
        let frame = WsFrame::message(data, opcode, i == 4);
        let sent = tokio::time::timeout(
            TIMEOUT,
            futures_util::SinkExt::send(&mut z.ws, Message::Frame(frame)),
        )
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            break;
        }
    }
    expect_dropped_for_size(&mut z).await;

    // Ben's connection and new ones work as before (after the grants, seqs
    // 1..=g, and Ben's first op).
    let acks = y.submit(2).await;
    assert_eq!(
        acks.iter().map(|a| a.seq).collect::<Vec<_>>(),
        [g + 2, g + 3]
    );
    assert_seqs(&y.collect_ops_until(g + 3).await, 1, g + 3);
    y.expect_nothing_but_pong(1).await;
    let (mut w, welcome) = relay.join(&hub, &ana, "ana").await;
    assert_eq!(welcome.head, g + 3);
    assert_seqs(&w.collect_ops_until(g + 3).await, 1, g + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_hello_in_time_gets_a_timeout_error_and_a_close() {
    let relay = TestRelay::start_with(|c| c.hello_timeout = Duration::from_millis(300)).await;
    let hub = relay.hub("Studio");
    let started = Instant::now();
    let mut c = relay.connect(&hub).await;
    let code = c.expect_error_and_close(ErrorCode::Timeout).await;
    let elapsed = started.elapsed();
    assert_eq!(code, Some(1008));
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(5),
        "closed after {elapsed:?}"
    );

    // A Hello in time is fine.
    let token = relay.token(&hub, "ana", "lead");
    let (mut ok, welcome) = relay.join(&hub, &token, "ana").await;
    // The log holds only Ana's role grant.
    assert_eq!(welcome.head, 1);
    common::assert_grant(&ok.collect_ops_until(1).await[0].1, "ana", "lead");
    tokio::time::sleep(Duration::from_millis(500)).await;
    ok.expect_nothing_but_pong(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn presence_reaches_the_others_under_the_token_handle_and_not_the_sender() {
    let relay = TestRelay::start().await;
    let hub = relay.hub("Studio");
    let handles = ["ana", "ben", "cy"];
    let (tokens, g) = relay.members(&hub, handles.map(|h| (h, "creative"))).await;
    let mut clients = Vec::new();
    for (handle, token) in handles.into_iter().zip(&tokens) {
        let (mut c, _) = relay.join(&hub, token, handle).await;
        // The role grants, before anything this test sends.
        assert_seqs(&c.collect_ops_until(g).await, 1, g);
        clients.push(c);
    }
    // A member of another hub on the same relay.
    let elsewhere = relay.hub("Elsewhere");
    let token = relay.token(&elsewhere, "ana", "lead");
    let (mut outsider, welcome) = relay.join(&elsewhere, &token, "ana").await;
    // Its hub's log: its own role grant, and none of this hub's.
    assert_eq!(welcome.head, 1);
    common::assert_grant(&outsider.collect_ops_until(1).await[0].1, "ana", "lead");
    let presence = Presence {
        member: "mallory".to_owned(),
        status: spoke_relay::proto::PresenceStatus::Online,
        tz: Some("Europe/Lisbon".to_owned()),
        viewing: Some("brief/b-7k2m9q3x".to_owned()),
    };
    clients[0].send(&Frame::Presence(presence.clone())).await;
    let want = Presence {
        member: "ana".to_owned(),
        ..presence
    };
    for c in &mut clients[1..] {
        assert_eq!(c.recv().await, Frame::Presence(want.clone()));
    }
    // Ben submits after the presence went out: Ana's next frame is his op,
    // not her own presence echoed back.
    clients[1].submit(1).await;
    for c in &mut clients {
        let ops = c.collect_ops_until(g + 1).await;
        assert_seqs(&ops, g + 1, g + 1);
        c.expect_nothing_but_pong(1).await;
    }
    // Presence stays inside its hub.
    outsider.expect_nothing_but_pong(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_resends_the_log_from_the_asked_seq() {
    let relay = TestRelay::start().await;
    let hub = relay.hub("Studio");
    let token = relay.token(&hub, "ana", "lead");
    let (mut a, welcome) = relay.join(&hub, &token, "ana").await;
    // Seq 1 is Ana's role grant; her ops follow.
    assert_eq!(welcome.head, 1);
    let head = welcome.head + 10;
    a.submit(6).await;
    a.submit(4).await;
    let log = a.collect_ops_until(head).await;
    assert_seqs(&log, 1, head);
    common::assert_grant(&log[0].1, "ana", "lead");

    a.send(&Frame::Fetch { from: 4 }).await;
    let again = a.collect_ops_until(head).await;
    assert_eq!(again[..], log[3..]);
    a.expect_nothing_but_pong(1).await;

    a.send(&Frame::Fetch { from: 0 }).await;
    assert_eq!(a.collect_ops_until(head).await, log);
    a.expect_nothing_but_pong(2).await;

    a.send(&Frame::Fetch { from: head + 1 }).await;
    a.expect_nothing_but_pong(3).await;

    // Live delivery carries on after a Fetch, without repeats.
    a.submit(1).await;
    assert_seqs(&a.collect_ops_until(head + 1).await, head + 1, head + 1);
    a.expect_nothing_but_pong(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_are_stored_by_hash_and_guarded_by_hub_tokens() {
    const LIMIT: u64 = 64 * 1024;
    let relay = TestRelay::start_with(|c| c.max_blob_bytes = LIMIT).await;
    let hub = relay.hub("Studio");
    let other = relay.hub("Other");
    let lead = relay.token(&hub, "ana", "lead");
    let viewer = relay.token(&hub, "viewer", "read-only");
    let outsider = relay.token(&other, "oz", "lead");
    let auth = |t: &str| format!("Bearer {t}");
    let url = |h: &str, sha: &str| format!("/v1/hubs/{h}/blobs/{sha}");
    let addr = relay.addr;

    let body: Vec<u8> = (0..40_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let sha = sha256_hex(&body);
    let put = async |token: Option<&str>, hub: &str, sha: &str, body: &[u8]| {
        let header = token.map(auth);
        let headers: Vec<(&str, &str)> = header
            .as_deref()
            .map(|h| vec![("Authorization", h)])
            .unwrap_or_default();
        http(addr, "PUT", &url(hub, sha), &headers, body).await
    };
    let get = async |token: Option<&str>, hub: &str, sha: &str| {
        let header = token.map(auth);
        let headers: Vec<(&str, &str)> = header
            .as_deref()
            .map(|h| vec![("Authorization", h)])
            .unwrap_or_default();
        http(addr, "GET", &url(hub, sha), &headers, &[]).await
    };

    // Wrong hash: refused, nothing stored, no temporary file left behind.
    let wrong = sha256_hex(b"something else");
    let r = put(Some(&lead), &hub, &wrong, &body).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(get(Some(&lead), &hub, &wrong).await.status, 404);
    let tmp = relay
        .dir
        .path()
        .join("hubs")
        .join(&hub)
        .join("blobs")
        .join("tmp");
    let leftovers = std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0, "temporary upload files left in {tmp:?}");

    // Matching hash: created, then a no-op.
    let r = put(Some(&lead), &hub, &sha, &body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = put(Some(&lead), &hub, &sha, &body).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Reading it back, with any token of the hub.
    for token in [&lead, &viewer] {
        let r = get(Some(token), &hub, &sha).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, body, "the same bytes come back");
    }

    // Other hub's token: forbidden both ways, on this hub's URL.
    assert_eq!(get(Some(&outsider), &hub, &sha).await.status, 403);
    let small = b"outsider".to_vec();
    let r = put(Some(&outsider), &hub, &sha256_hex(&small), &small).await;
    assert_eq!(r.status, 403);
    // ... and the blob is not visible through the other hub.
    assert_eq!(get(Some(&outsider), &other, &sha).await.status, 404);

    // No token, or a bad one.
    assert_eq!(get(None, &hub, &sha).await.status, 401);
    assert_eq!(
        put(None, &hub, &sha256_hex(&small), &small).await.status,
        401
    );
    assert_eq!(get(Some("spk_no_pe"), &hub, &sha).await.status, 401);

    // Read-only may not upload.
    let r = put(Some(&viewer), &hub, &sha256_hex(&small), &small).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        get(Some(&lead), &hub, &sha256_hex(&small)).await.status,
        404
    );

    // Over the size limit.
    let huge = vec![1u8; LIMIT as usize + 1];
    let r = put(Some(&lead), &hub, &sha256_hex(&huge), &huge).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(get(Some(&lead), &hub, &sha256_hex(&huge)).await.status, 404);
    // Exactly at the limit is fine.
    let at_limit = vec![2u8; LIMIT as usize];
    let r = put(Some(&lead), &hub, &sha256_hex(&at_limit), &at_limit).await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_ok_and_metrics_count_stored_ops() {
    let relay = TestRelay::start().await;
    let r = http(relay.addr, "GET", "/healthz", &[], &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text().trim(), "ok");

    let hub = relay.hub("Studio");
    let token = relay.token(&hub, "ana", "lead");
    let (mut a, welcome) = relay.join(&hub, &token, "ana").await;
    // Ana's role grant is an op the relay stored (seq 1).
    let grants = welcome.head;
    assert_eq!(grants, 1);
    let ops = a.make_ops(5);
    a.submit_ops(ops.clone()).await;
    a.submit(7).await;
    a.submit_ops(ops[..2].to_vec()).await; // resends: not stored again
    // Once the ops came back live, the writer has counted them.
    a.collect_ops_until(grants + 12).await;

    let r = http(relay.addr, "GET", "/metrics", &[], &[]).await;
    assert_eq!(r.status, 200);
    let text = r.text();
    assert_eq!(
        metric(&text, "spoke_relay_ops_stored_total"),
        Some(grants + 12),
        "{text}"
    );
    assert_eq!(
        metric(&text, "spoke_relay_ops_duplicate_total"),
        Some(2),
        "{text}"
    );
    assert_eq!(metric(&text, "spoke_relay_connections"), Some(1), "{text}");
}

fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_tells_connected_clients_going_away_with_close_1001() {
    let relay = TestRelay::start().await;
    let hub = relay.hub("Studio");
    let token = relay.token(&hub, "ana", "lead");
    let (mut a, _) = relay.join(&hub, &token, "ana").await;
    let (mut b, _) = relay.join(&hub, &token, "ana").await;
    a.submit(3).await;
    let addr = relay.addr;

    let TestRelay { running, dir, .. } = relay;
    let stopping = tokio::spawn(async move {
        tokio::time::timeout(TIMEOUT, running.shutdown())
            .await
            .expect("shutdown finishes in time")
            .expect("shutdown succeeds");
    });
    for c in [&mut a, &mut b] {
        assert_eq!(read_until_going_away(c).await, Some(1001));
    }
    stopping.await.expect("shutdown task");
    // No longer listening.
    assert!(common::try_http(addr, "GET", "/healthz").await.is_err());
    drop(dir);
}

/// Reads past ops and acks already on their way until `Error{going_away}`,
/// then expects the close; returns its code.
async fn read_until_going_away(c: &mut Client) -> Option<u16> {
    for _ in 0..10_000 {
        match c.next_event().await {
            Event::Frame(Frame::Ops { .. } | Frame::Ack { .. }) => continue,
            Event::Frame(Frame::Error { code, message, .. }) => {
                assert_eq!(code, ErrorCode::GoingAway, "{message}");
                return c.expect_close().await;
            }
            other => panic!("expected Error {{ going_away }}, got {other:?}"),
        }
    }
    panic!("no going_away");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_returns_only_after_every_connection_has_closed() {
    // One op per second, bursts of two: the second Submit of two ops keeps
    // its connection busy in the rate limiter for about two seconds.
    let relay = TestRelay::start_with(|c| c.max_ops_per_sec = 1).await;
    let hub = relay.hub("Studio");
    let token = relay.token(&hub, "ana", "lead");
    let (mut idle, _) = relay.join(&hub, &token, "ana").await;
    let (mut busy, _) = relay.join(&hub, &token, "ana").await;
    busy.submit(2).await;
    let ops = busy.make_ops(2);
    busy.send(&Frame::Submit { ops }).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let shared = relay.running.relay.clone();
    assert_eq!(shared.metrics.connections.load(Relaxed), 2);
    let TestRelay { running, dir, .. } = relay;
    let started = Instant::now();
    tokio::time::timeout(TIMEOUT, running.shutdown())
        .await
        .expect("shutdown finishes in time")
        .expect("shutdown succeeds");
    let took = started.elapsed();
    // `Running::shutdown` promises to wait for the connections to close.
    let open = shared.metrics.connections.load(Relaxed);

    // Both clients are told, whenever that happens.
    assert_eq!(read_until_going_away(&mut idle).await, Some(1001));
    assert_eq!(read_until_going_away(&mut busy).await, Some(1001));
    assert_eq!(
        open, 0,
        "shutdown() returned after {took:?} with {open} WebSocket connection(s) still open"
    );
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_joining_during_a_stream_of_submits_see_a_gapless_log() {
    let relay = TestRelay::start().await;
    let hub = relay.hub("Studio");
    let ana = relay.token(&hub, "ana", "lead");
    let ben = relay.token(&hub, "ben", "reviewer");
    let mut rng = common::XorShift(0x00c0_ffee);
    let plan: Vec<usize> = (0..150).map(|_| rng.range(1, 12) as usize).collect();
    let submitted: u64 = plan.iter().sum::<usize>() as u64;
    // The log: Ana's role grant (seq 1), her ops, and Ben's grant wherever
    // the first joiner's Hello lands in the stream.
    let total = submitted + 2;

    let (mut writer, welcome) = relay.join(&hub, &ana, "ana").await;
    assert_eq!(welcome.head, 1);
    let writing = tokio::spawn(async move {
        for n in plan {
            writer.submit(n).await;
        }
        let log = writer.collect_ops_until(total).await;
        writer.expect_nothing_but_pong(1).await;
        (writer.client_id, log)
    });
    let mut joiners = Vec::new();
    for i in 0..8u64 {
        let addr = relay.addr;
        let hub = hub.clone();
        let ben = ben.clone();
        joiners.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(12 * i)).await;
            let mut c = Client::connect(addr, &hub).await;
            let welcome = c.hello(&ben, &hub, 0, 0).await;
            let log = c.collect_ops_until(total).await;
            assert_seqs(&log, 1, total);
            c.expect_nothing_but_pong(2).await;
            // Reconnect from a cursor in the middle.
            let k = (welcome.head / 2).max(1).min(total - 1);
            let mut again = Client::connect(addr, &hub).await;
            again.hello(&ben, &hub, welcome.epoch, k).await;
            let rest = again.collect_ops_until(total).await;
            assert_eq!(rest[..], log[k as usize..]);
            again.expect_nothing_but_pong(3).await;
            (welcome.head, log)
        }));
    }
    let (writer_id, log) = writing.await.expect("writer");
    assert_seqs(&log, 1, total);
    common::assert_grant(&log[0].1, "ana", "lead");
    let grants: Vec<_> = log[1..]
        .iter()
        .filter(|(_, o)| common::is_relay_op(o))
        .collect();
    assert_eq!(grants.len(), 1, "one grant for Ben's token: {grants:?}");
    common::assert_grant(&grants[0].1, "ben", "reviewer");
    let mine: Vec<u64> = log
        .iter()
        .filter(|(_, o)| !common::is_relay_op(o))
        .map(|(_, o)| {
            assert_eq!(o.id.client, ClientId(writer_id));
            o.id.seq
        })
        .collect();
    assert_eq!(mine, (1..=submitted).collect::<Vec<_>>());
    let mut heads = Vec::new();
    for j in joiners {
        let (head, seen) = j.await.expect("joiner");
        assert_eq!(seen, log);
        heads.push(head);
    }
    eprintln!(
        "joiners saw heads {heads:?} of {total}; Ben's grant is seq {}",
        grants[0].0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_ops_or_an_oversized_op_are_refused_and_the_connection_stays() {
    let relay = TestRelay::start().await;
    let hub = relay.hub("Studio");
    let token = relay.token(&hub, "ana", "lead");
    let (mut a, welcome) = relay.join(&hub, &token, "ana").await;
    // Seq 1 is Ana's role grant.
    let g = welcome.head;
    assert_eq!(g, 1);
    assert_seqs(&a.collect_ops_until(g).await, 1, g);

    // More ops than one Submit may carry.
    let ops = a.make_ops(MAX_OPS_PER_FRAME + 1);
    a.send(&Frame::Submit { ops }).await;
    a.expect_error(ErrorCode::TooLarge).await;
    a.expect_nothing_but_pong(1).await;

    // One op over MAX_OP_BYTES, in a message under the message limit sent
    // as protocol-sized fragments.
    let mut ops = a.make_ops(1);
    ops[0].body = vec![b'x'; MAX_OP_BYTES + 10];
    let bytes = encode_frame(&Frame::Submit { ops }).expect("encode");
    send_fragmented(&mut a, bytes, 128 * 1024).await;
    a.expect_error(ErrorCode::TooLarge).await;
    a.expect_nothing_but_pong(2).await;

    // A Submit over the frame size but within the message limit, fragmented
    // as the protocol asks, is fine: 256 ops of about 1.2 KiB.
    let mut ops = a.make_ops(MAX_OPS_PER_FRAME);
    for o in &mut ops {
        o.body = body_of_size("y", 1200);
    }
    let ids: Vec<OpId> = ops.iter().map(|o| o.id).collect();
    let bytes = encode_frame(&Frame::Submit { ops }).expect("encode");
    assert!(bytes.len() > MAX_FRAME_BYTES && bytes.len() < MAX_MESSAGE_BYTES);
    send_fragmented(&mut a, bytes, 128 * 1024).await;
    let acks = a.wait_ack().await;
    assert_eq!(acks.iter().map(|x| x.id).collect::<Vec<_>>(), ids);
    let head = g + MAX_OPS_PER_FRAME as u64;
    assert_eq!(acks.last().map(|x| x.seq), Some(head));
    let log = a.collect_ops_until(head).await;
    assert_seqs(&log, g + 1, head);
    a.expect_nothing_but_pong(3).await;
}

/// Sends `bytes` as one binary message split into WebSocket frames of at most
/// `piece` bytes.
async fn send_fragmented(c: &mut Client, bytes: Vec<u8>, piece: usize) {
    let chunks: Vec<&[u8]> = bytes.chunks(piece).collect();
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        let opcode = if i == 0 {
            OpCode::Data(Data::Binary)
        } else {
            OpCode::Data(Data::Continue)
        };
        let frame = WsFrame::message(chunk.to_vec(), opcode, i == last);
        c.send_message(Message::Frame(frame)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_who_disconnects_is_announced_offline_to_the_hub() {
    let relay = TestRelay::start().await;
    let hub = relay.hub("Studio");
    let token_a = relay.token(&hub, "ana", "creative");
    let token_b = relay.token(&hub, "ben", "creative");
    let (mut a, _) = relay.join(&hub, &token_a, "ana").await;
    common::assert_grant(&a.collect_ops_until(1).await[0].1, "ana", "creative");
    let (mut b, _) = relay.join(&hub, &token_b, "ben").await;
    // Ben's first Hello reaches Ana as the relay's grant of his role.
    let grant = a.collect_ops_until(2).await;
    assert_seqs(&grant, 2, 2);
    common::assert_grant(&grant[0].1, "ben", "creative");
    b.send(&online(Some("Asia/Tokyo"))).await;
    match a.recv().await {
        Frame::Presence(p) => assert_eq!(
            (p.member.as_str(), p.status),
            ("ben", spoke_relay::proto::PresenceStatus::Online)
        ),
        other => panic!("expected ben's presence, got {other:?}"),
    }
    drop(b);
    match a.recv().await {
        Frame::Presence(p) => {
            assert_eq!(p.member, "ben");
            assert_eq!(p.status, spoke_relay::proto::PresenceStatus::Offline);
        }
        other => panic!("expected ben's offline presence, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_that_stops_reading_is_dropped_as_slow_and_resumes_without_a_gap() {
    // A short outbound queue, so the slow member is found once its socket
    // buffers are full.
    let relay = TestRelay::start_with(|c| c.outbound_batches = 4).await;
    let addr = relay.addr;
    let goodbye = stall_and_resume(&relay, |hub| Box::pin(Client::connect(addr, hub))).await;
    assert_eq!(
        goodbye,
        Some(1013),
        "a slow consumer is told why (close 1013)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_tls_a_stalled_member_is_dropped_and_resumes_without_a_gap() {
    let dir = tempfile::tempdir().expect("tmp");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let (cert_pem, key_pem) = (dir.path().join("relay.pem"), dir.path().join("relay.key"));
    std::fs::write(&cert_pem, cert.pem()).expect("write cert");
    std::fs::write(&key_pem, key.serialize_pem()).expect("write key");
    let server_tls = spoke_relay::tls::server_config(&cert_pem, &key_pem).expect("tls config");
    let relay = TestRelay::start_with(|c| {
        c.outbound_batches = 4;
        c.tls = Some(server_tls);
    })
    .await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).expect("trust the relay");
    let client_tls = std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("tls versions")
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let addr = relay.addr;
    // Over TLS a stalled member may be cut mid-frame, without a goodbye;
    // what matters is that it resumes without a gap.
    stall_and_resume(&relay, move |hub| {
        Box::pin(Client::connect_tls(addr, hub, client_tls.clone()))
    })
    .await;
}

type Connecting<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Client> + Send + 'a>>;

/// One member stops reading while another writes 100 KiB ops until the relay
/// counts the idle one as slow; a third member reads along and gets every op.
/// The idle member then reads what reached it, reconnects from its cursor
/// and gets the rest once each. Returns the close code it was sent, if any.
async fn stall_and_resume<F>(relay: &TestRelay, connect: F) -> Option<u16>
where
    F: for<'a> Fn(&'a str) -> Connecting<'a>,
{
    let hub = relay.hub("Studio");
    let ana = relay.token(&hub, "ana", "lead");
    let ben = relay.token(&hub, "ben", "creative");
    let cy = relay.token(&hub, "cy", "creative");
    let mut slow = connect(&hub).await;
    let welcome = slow.hello(&ben, &hub, 0, 0).await;
    let mut steady = connect(&hub).await;
    steady.hello(&cy, &hub, 0, 0).await;
    let mut writer = connect(&hub).await;
    writer.hello(&ana, &hub, 0, 0).await;
    // Ops of 100 KiB, one Submit each, while the slow member reads nothing,
    // until the relay counts it as slow (loopback socket buffers hold a few
    // MiB). The steady member reads along until the last seq it is told.
    const MAX_OPS: u64 = 400;
    let target = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
    let until = target.clone();
    let reader = tokio::spawn(async move {
        let mut seqs = Vec::new();
        while seqs.last().copied().unwrap_or(0) < until.load(Relaxed) {
            match steady.recv().await {
                Frame::Ops { ops, .. } => seqs.extend(ops.iter().map(|o| o.seq)),
                other => panic!("the steady member got {other:?}"),
            }
        }
        seqs
    });
    let big_op = |c: &mut Client| {
        let mut ops = c.make_ops(1);
        ops[0].body = body_of_size("z", 100 * 1024);
        ops
    };
    let mut last = 0;
    let mut detected = false;
    while last < MAX_OPS && !detected {
        let ops = big_op(&mut writer);
        last = writer.submit_ops(ops).await[0].seq;
        detected = slow_consumers(relay) == 1;
    }
    if !detected {
        let r = http(relay.addr, "GET", "/metrics", &[], &[]).await;
        panic!(
            "{last} ops of 100 KiB did not make the idle member slow:\n{}",
            r.text()
        );
    }
    // One more op, so the steady reader is not already waiting past the target.
    target.store(last + 1, Relaxed);
    let ops = big_op(&mut writer);
    let last = writer.submit_ops(ops).await[0].seq;
    let seqs = reader.await.expect("the steady member's reader");
    assert_eq!(
        seqs,
        (1..=last).collect::<Vec<_>>(),
        "the steady member got every op once"
    );

    // The slow member gets what was already on its way, then the reason
    // (or, cut mid-frame, just the end of the stream).
    let mut cursor = 0;
    let close = loop {
        match slow.next_event().await {
            Event::Frame(Frame::Ops { ops, .. }) => {
                for o in ops {
                    assert_eq!(o.seq, cursor + 1, "live ops arrive in order without a gap");
                    cursor = o.seq;
                }
            }
            Event::Frame(Frame::Error { code, message, .. }) => {
                assert_eq!(code, ErrorCode::SlowConsumer, "{message}");
                assert!(message.contains("cursor"), "{message}");
                break slow.expect_close().await;
            }
            Event::Ended(_) => break None,
            other => panic!("expected Ops or a slow-consumer Error, got {other:?}"),
        }
    };
    assert!(
        cursor < last,
        "the slow member was dropped before the end ({cursor})"
    );

    // It resumes from its cursor and gets the rest, once each.
    let mut again = connect(&hub).await;
    let w = again.hello(&ben, &hub, welcome.epoch, cursor).await;
    assert_eq!(w.head, last);
    assert_seqs(&again.collect_ops_until(last).await, cursor + 1, last);

    assert_eq!(slow_consumers(relay), 1);
    close
}

fn slow_consumers(relay: &TestRelay) -> u64 {
    relay.running.relay.metrics.slow_consumers.load(Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_pings_are_answered_and_plain_http_on_the_socket_route_is_refused() {
    let relay = TestRelay::start().await;
    let hub = relay.hub("Studio");
    let token = relay.token(&hub, "ana", "lead");
    let (mut a, _) = relay.join(&hub, &token, "ana").await;
    a.send_message(Message::Ping(b"are you there".to_vec().into()))
        .await;
    let pong = tokio::time::timeout(TIMEOUT, async {
        loop {
            match futures_util::StreamExt::next(&mut a.ws).await {
                Some(Ok(Message::Pong(p))) => return p,
                Some(Ok(_)) => continue,
                other => panic!("expected a pong, got {other:?}"),
            }
        }
    })
    .await
    .expect("a pong within the timeout");
    assert_eq!(&pong[..], b"are you there");
    a.submit(1).await;

    // The WebSocket route without an upgrade says what is missing.
    let r = http(relay.addr, "GET", &format!("/v1/hubs/{hub}/ws"), &[], &[]).await;
    assert_eq!(r.status, 426, "{}", r.text());
    assert!(r.text().contains("Upgrade: websocket"), "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_member_is_pinged_then_closed_and_announced_offline_while_one_that_answers_stays()
{
    let relay = TestRelay::start_with(|c| c.idle_timeout = Duration::from_millis(600)).await;
    let hub = relay.hub("Studio");
    let ([ana, ben], g) = relay
        .members(&hub, [("ana", "creative"), ("ben", "creative")])
        .await;
    let (mut a, _) = relay.join(&hub, &ana, "ana").await;
    let (mut b, _) = relay.join(&hub, &ben, "ben").await;
    // The role grants are all either has to read; reading sends nothing.
    assert_seqs(&a.collect_ops_until(g).await, 1, g);
    assert_seqs(&b.collect_ops_until(g).await, 1, g);
    b.send(&online(None)).await;

    // Ana answers every ping; Ben says nothing more.
    let started = Instant::now();
    let mut pings_answered = 0;
    let mut ben_offline = false;
    while started.elapsed() < Duration::from_millis(1500) {
        match a.recv().await {
            Frame::Ping { nonce } => {
                a.send(&Frame::Pong { nonce }).await;
                pings_answered += 1;
            }
            Frame::Presence(p)
                if p.member == "ben" && p.status == spoke_relay::proto::PresenceStatus::Offline =>
            {
                ben_offline = true;
            }
            Frame::Presence(_) => {}
            other => panic!("unexpected {other:?}"),
        }
        if ben_offline && pings_answered >= 2 {
            break;
        }
    }
    assert!(ben_offline, "the silent member's end is announced");
    assert!(pings_answered >= 1, "a quiet member is pinged");

    // Ben was pinged, then told why it was closed.
    let mut saw_ping = false;
    loop {
        match b.next_event().await {
            Event::Frame(Frame::Ping { .. }) => saw_ping = true,
            Event::Frame(Frame::Presence(_)) => {}
            Event::Frame(Frame::Error { code, message, .. }) => {
                assert_eq!(code, ErrorCode::Timeout, "{message}");
                assert!(message.contains("nothing heard"), "{message}");
                break;
            }
            other => panic!("expected a ping then a timeout, got {other:?}"),
        }
    }
    assert!(saw_ping, "pinged before being closed");
    assert_eq!(b.expect_close().await, Some(1008));

    // Ana, who answered, is still served.
    let acks = a.submit(1).await;
    assert_eq!(acks.len(), 1);
}

/// A presence frame saying the sender is online.
fn online(tz: Option<&str>) -> Frame {
    Frame::Presence(Presence {
        member: String::new(),
        status: spoke_relay::proto::PresenceStatus::Online,
        tz: tz.map(str::to_owned),
        viewing: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_sent_together_with_the_upgrade_request_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let relay = TestRelay::start().await;
    let hub = relay.hub("Studio");
    let token = relay.token(&hub, "ana", "lead");
    let hello = encode_frame(&Frame::Hello {
        token,
        hub: hub.clone(),
        epoch: 0,
        cursor: 0,
    })
    .expect("encode");
    assert!(hello.len() < 65_536);
    // One write: the HTTP upgrade and, right behind it, a masked Hello.
    let mut bytes = format!(
        "GET /v1/hubs/{hub}/ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        relay.addr
    )
    .into_bytes();
    let mask = [9u8, 8, 7, 6];
    bytes.push(0x82);
    bytes.push(0x80 | 126);
    bytes.extend_from_slice(&(hello.len() as u16).to_be_bytes());
    bytes.extend_from_slice(&mask);
    bytes.extend(hello.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    let mut tcp = tokio::net::TcpStream::connect(relay.addr)
        .await
        .expect("connect");
    tcp.write_all(&bytes).await.expect("write");

    // The 101, then a Welcome in an unmasked binary frame.
    let mut got = Vec::new();
    let welcome = tokio::time::timeout(TIMEOUT, async {
        loop {
            let mut buf = [0u8; 4096];
            let n = tcp.read(&mut buf).await.expect("read");
            assert!(n > 0, "the relay closed: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
            let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&got[..end]).to_string();
            assert!(head.starts_with("HTTP/1.1 101"), "{head}");
            assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
            let frame = &got[end + 4..];
            if frame.len() < 4 {
                continue;
            }
            assert_eq!(frame[0], 0x82, "a final binary frame");
            let (len, at) = match frame[1] {
                126 => (u16::from_be_bytes([frame[2], frame[3]]) as usize, 4),
                n if n < 126 => (n as usize, 2),
                n => panic!("unexpected length byte {n}"),
            };
            if frame.len() < at + len {
                continue;
            }
            return spoke_relay::proto::decode_frame(&frame[at..at + len]).expect("decode");
        }
    })
    .await
    .expect("a Welcome within the timeout");
    match welcome {
        Frame::Welcome { member, .. } => assert_eq!(member, "ana"),
        other => panic!("expected Welcome, got {other:?}"),
    }
}
