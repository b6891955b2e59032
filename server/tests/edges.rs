//! The protocol's edges against a real relay: the op size limit the document
//! states, an op body sent as a MessagePack string, an empty `Submit`, every
//! single-range form of a blob download, and blob uploads that stall or
//! trickle under the rate floor.

mod common;

use common::process::{RelayProcess, cli_json, field, free_port};
use common::{HttpResponse, TIMEOUT, TestRelay, http, op, sha256_hex};
use spoke_relay::blobs::MIN_UPLOAD_BYTES_PER_SEC;
use spoke_relay::proto::{
    ClientId, EntityKey, ErrorCode, Frame, Hlc, MAX_FRAME_BYTES, MAX_OP_BYTES, Op, OpId, SeqOp,
    decode_op, encode_frame, encode_op,
};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const PROTOCOL: &str = include_str!("../PROTOCOL.md");

#[test]
fn the_document_states_the_op_limit_the_code_enforces() {
    assert_eq!(MAX_OP_BYTES, 192 * 1024);
    let flat = PROTOCOL.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("an op at most 192 KiB (`MAX_OP_BYTES`"),
        "PROTOCOL.md states the op limit"
    );
    assert!(
        !flat.contains("op at most 256 KiB"),
        "PROTOCOL.md no longer says an op may be 256 KiB"
    );
    assert!(
        flat.contains("holds an op over 192 KiB"),
        "PROTOCOL.md says what an oversized op gets"
    );
}

/// An op with a `set` body padded so its own encoding is exactly `size` bytes.
fn op_of_encoded_size(client: u64, seq: u64, actor: &str, size: usize) -> Op {
    let mut o = op(client, seq, actor);
    // Past 64 KiB the string and binary headers have fixed widths, so the
    // encoding grows byte for byte with the title.
    let probe = 100 * 1024;
    o.body = common::body_of_size("t", probe);
    let base = encode_op(&o).expect("encode").len();
    o.body = common::body_of_size("t", probe + size - base);
    assert_eq!(encode_op(&o).expect("encode").len(), size);
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_op_of_192_kib_is_stored_and_one_byte_more_is_too_large() {
    let relay = TestRelay::start().await;
    let hub = relay.hub("Studio");
    let token = relay.token(&hub, "ana", "lead");
    let (mut a, welcome) = relay.join(&hub, &token, "ana").await;
    let g = welcome.head;
    a.collect_ops_until(g).await;

    // Exactly at the limit: stored, and its Submit fits one WebSocket frame.
    a.next_seq += 1;
    let at_limit = op_of_encoded_size(a.client_id, a.next_seq, "ana", MAX_OP_BYTES);
    let frame = encode_frame(&Frame::Submit {
        ops: vec![at_limit.clone()],
    })
    .expect("encode");
    assert!(frame.len() <= MAX_FRAME_BYTES, "{} bytes", frame.len());
    let acks = a.submit_ops(vec![at_limit.clone()]).await;
    assert_eq!(acks[0].seq, g + 1);
    let stored = a.collect_ops_until(g + 1).await;
    assert_eq!(stored[0].1, at_limit, "the op comes back whole");

    // One byte over: refused whole, nothing stored, the connection stays.
    a.next_seq += 1;
    let over = op_of_encoded_size(a.client_id, a.next_seq, "ana", MAX_OP_BYTES + 1);
    a.send(&Frame::Submit { ops: vec![over] }).await;
    let message = a.expect_error(ErrorCode::TooLarge).await;
    assert!(message.contains(&MAX_OP_BYTES.to_string()), "{message}");
    a.expect_nothing_but_pong(1).await;
    let (b, welcome) = relay.join(&hub, &token, "ana").await;
    assert_eq!(welcome.head, g + 1, "the oversized op was not stored");
    b.close().await;
    a.close().await;
}

/// Rewrites, in an encoded frame, each of `bodies` from MessagePack binary
/// to a string holding the same bytes (fixstr under 32 bytes, else str 8),
/// as a client that writes the body as a string would send it.
fn stringify_bodies(frame: &mut Vec<u8>, bodies: &[&[u8]]) {
    for body in bodies {
        let len = u8::try_from(body.len()).expect("a body under 256 bytes");
        // bin 8 is 0xc4 and a length byte.
        let mut needle = vec![0xc4, len];
        needle.extend_from_slice(body);
        let hits: Vec<usize> = frame
            .windows(needle.len())
            .enumerate()
            .filter(|(_, w)| *w == needle.as_slice())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(hits.len(), 1, "the body {body:?} is in the frame once");
        let marker = if len < 32 {
            vec![0xa0 | len]
        } else {
            vec![0xd9, len]
        };
        frame.splice(hits[0]..hits[0] + 2, marker);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_string_body_is_read_as_its_bytes_and_stored_as_binary() {
    let relay = TestRelay::start().await;
    let hub = relay.hub("Studio");
    let token = relay.token(&hub, "ana", "lead");
    let (mut a, welcome) = relay.join(&hub, &token, "ana").await;
    let g = welcome.head;
    a.collect_ops_until(g).await;

    // A `set` whose map body is sent as a string (not valid UTF-8), an
    // `append` whose one value is (valid UTF-8: `*` is the integer 42), and
    // a string that is not the MessagePack a `set` needs.
    let mut ops = a.make_ops(1);
    ops.push(Op {
        id: OpId {
            client: ClientId(a.client_id),
            seq: 2,
        },
        hlc: Hlc {
            wall_ms: 1_764_000_000_100,
            logical: 0,
        },
        actor: "ana".into(),
        entity: EntityKey {
            kind: "thread".into(),
            id: "t-chat".into(),
        },
        kind: "append".into(),
        body: b"*".to_vec(),
    });
    let mut bad = op(a.client_id, 3, "ana");
    bad.body = b"hello".to_vec();
    ops.push(bad);
    a.next_seq = 3;
    let mut frame = encode_frame(&Frame::Submit { ops: ops.clone() }).expect("encode");
    let bodies: Vec<&[u8]> = ops.iter().map(|o| o.body.as_slice()).collect();
    stringify_bodies(&mut frame, &bodies);
    a.send_message(Message::binary(frame)).await;

    let (message, refused, rule) = a.expect_refusal(ErrorCode::BadOp).await;
    assert_eq!(refused, Some(ops[2].id), "{message}");
    assert_eq!(rule.as_deref(), Some("malformed"), "{message}");
    let acks = a.wait_ack().await;
    assert_eq!(
        acks.iter().map(|x| (x.id, x.seq)).collect::<Vec<_>>(),
        [(ops[0].id, g + 1), (ops[1].id, g + 2)]
    );
    // The stored encoding is the relay's, with the bodies as binary: the
    // very bytes the same ops sent as binary encode to.
    let mut stored: Vec<SeqOp> = Vec::new();
    while stored.len() < 2 {
        match a.recv().await {
            Frame::Ops { ops, .. } => stored.extend(ops),
            other => panic!("expected Ops, got {other:?}"),
        }
    }
    for (got, sent) in stored.iter().zip(&ops) {
        assert_eq!(got.op, encode_op(sent).expect("encode"));
        assert_eq!(decode_op(&got.op).expect("decode").body, sent.body);
    }
    a.expect_nothing_but_pong(1).await;
    a.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_submit_gets_an_empty_ack_after_the_earlier_ones() {
    let relay = TestRelay::start().await;
    let hub = relay.hub("Studio");
    let token = relay.token(&hub, "ana", "lead");
    let (mut a, welcome) = relay.join(&hub, &token, "ana").await;
    let g = welcome.head;
    a.collect_ops_until(g).await;

    // On its own.
    a.send(&Frame::Submit { ops: vec![] }).await;
    assert_eq!(a.wait_ack().await, []);
    a.expect_nothing_but_pong(1).await;

    // Behind a submission still committing: its Ack comes first.
    let ops = a.make_ops(3);
    let ids: Vec<OpId> = ops.iter().map(|o| o.id).collect();
    a.send(&Frame::Submit { ops }).await;
    a.send(&Frame::Submit { ops: vec![] }).await;
    let first = a.wait_ack().await;
    assert_eq!(first.iter().map(|x| x.id).collect::<Vec<_>>(), ids);
    assert_eq!(a.wait_ack().await, []);
    common::assert_seqs(&a.collect_ops_until(g + 3).await, g + 1, g + 3);
    a.expect_nothing_but_pong(2).await;

    // Nothing was stored for the empty ones.
    let (b, welcome) = relay.join(&hub, &token, "ana").await;
    assert_eq!(welcome.head, g + 3);
    b.close().await;
    a.close().await;
}

fn header<'a>(r: &'a HttpResponse, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A `Range` (or none), the status, the `Content-Range` (or none) and the bytes.
type RangeCase<'a> = (Option<&'a str>, u16, Option<&'a str>, &'a [u8]);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_single_range_form_returns_the_exact_bytes() {
    let relay = TestRelay::start().await;
    let hub = relay.hub("Studio");
    let token = relay.token(&hub, "ana", "lead");
    let auth = format!("Bearer {token}");
    let blob: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 256) as u8).collect();
    let sha = sha256_hex(&blob);
    let url = format!("/v1/hubs/{hub}/blobs/{sha}");
    let r = http(relay.addr, "PUT", &url, &[("Authorization", &auth)], &blob).await;
    assert_eq!(r.status, 201, "{}", r.text());

    let cases: [RangeCase; 16] = [
        (None, 200, None, &blob),
        (
            Some("bytes=0-99"),
            206,
            Some("bytes 0-99/1000"),
            &blob[..100],
        ),
        (
            Some("bytes=100-199"),
            206,
            Some("bytes 100-199/1000"),
            &blob[100..200],
        ),
        (
            Some("bytes=999-999"),
            206,
            Some("bytes 999-999/1000"),
            &blob[999..],
        ),
        (
            Some("bytes=990-5000"),
            206,
            Some("bytes 990-999/1000"),
            &blob[990..],
        ),
        (
            Some("bytes=900-"),
            206,
            Some("bytes 900-999/1000"),
            &blob[900..],
        ),
        (Some("bytes=0-"), 206, Some("bytes 0-999/1000"), &blob),
        (
            Some("bytes=-100"),
            206,
            Some("bytes 900-999/1000"),
            &blob[900..],
        ),
        (Some("bytes=-5000"), 206, Some("bytes 0-999/1000"), &blob),
        (Some("bytes=1000-"), 416, Some("bytes */1000"), b""),
        (Some("bytes=1000-1200"), 416, Some("bytes */1000"), b""),
        (Some("bytes=-0"), 416, Some("bytes */1000"), b""),
        // Several ranges: the whole blob, as the spec allows.
        (Some("bytes=0-1, 5-6"), 200, None, &blob),
        (Some("bytes=0-1,-1"), 200, None, &blob),
        // Invalid (last before first) or another unit: ignored.
        (Some("bytes=5-1"), 200, None, &blob),
        (Some("items=0-1"), 200, None, &blob),
    ];
    for (range, status, content_range, bytes) in cases {
        let mut headers = vec![("Authorization", auth.as_str())];
        headers.extend(range.map(|r| ("Range", r)));
        let r = http(relay.addr, "GET", &url, &headers, &[]).await;
        let what = format!("Range {range:?}: {}", r.text());
        assert_eq!(r.status, status, "{what}");
        assert_eq!(header(&r, "content-range"), content_range, "{what}");
        assert_eq!(header(&r, "accept-ranges"), Some("bytes"), "{what}");
        if status == 416 {
            assert!(r.text().contains("bad_range"), "{what}");
            continue;
        }
        assert_eq!(
            header(&r, "content-length"),
            Some(bytes.len().to_string().as_str()),
            "{what}"
        );
        assert!(r.body == bytes, "{what}: the exact bytes");
    }

    // An empty blob has no byte to range over.
    let empty_url = format!("/v1/hubs/{hub}/blobs/{}", sha256_hex(b""));
    let r = http(
        relay.addr,
        "PUT",
        &empty_url,
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = http(
        relay.addr,
        "GET",
        &empty_url,
        &[("Authorization", &auth), ("Range", "bytes=0-")],
        &[],
    )
    .await;
    assert_eq!(r.status, 416);
    assert_eq!(header(&r, "content-range"), Some("bytes */0"));
    let r = http(
        relay.addr,
        "GET",
        &empty_url,
        &[("Authorization", &auth)],
        &[],
    )
    .await;
    assert_eq!((r.status, r.body.len()), (200, 0));
}

/// A blob `PUT` over a raw socket that sends the request head, then `body`
/// in pieces with `pause` between them, and reads what the relay answers
/// until it closes the connection. Without `close` the request asks to keep
/// the connection alive, so an end proves the relay hung up by itself.
/// Returns the response and when it came, from the head's sending.
async fn slow_put(
    addr: SocketAddr,
    url: &str,
    token: &str,
    declared: usize,
    pieces: Vec<Vec<u8>>,
    pause: Duration,
    close: bool,
) -> (HttpResponse, Duration) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    let connection = if close { "close" } else { "keep-alive" };
    let head = format!(
        "PUT {url} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Length: {declared}\r\nConnection: {connection}\r\n\r\n"
    );
    write.write_all(head.as_bytes()).await.expect("send head");
    let sent = Instant::now();
    let writer = tokio::spawn(async move {
        for piece in pieces {
            // Once the relay cut the upload the socket may refuse more.
            if write.write_all(&piece).await.is_err() {
                return;
            }
            tokio::time::sleep(pause).await;
        }
        // Hold the socket open without sending: a stalled client.
        tokio::time::sleep(TIMEOUT).await;
    });
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let mut answered = None;
    loop {
        let n = tokio::time::timeout(TIMEOUT, read.read(&mut buf))
            .await
            .expect("the relay answers and closes within the timeout");
        match n {
            Ok(0) => break,
            Ok(n) => {
                answered.get_or_insert_with(|| sent.elapsed());
                raw.extend_from_slice(&buf[..n]);
            }
            // A reset after the answer still leaves the answer.
            Err(e) => {
                assert!(!raw.is_empty(), "no answer before the error: {e}");
                break;
            }
        }
    }
    writer.abort();
    let response = parse(&raw);
    (response, answered.expect("an answer"))
}

fn parse(raw: &[u8]) -> HttpResponse {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = std::str::from_utf8(&raw[..end]).expect("a text head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    HttpResponse {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    }
}

fn tmp_files(data: &Path, hub: &str) -> usize {
    let tmp = data.join("hubs").join(hub).join("blobs").join("tmp");
    std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0)
}

async fn stalled_count(addr: SocketAddr) -> u64 {
    let text = http(addr, "GET", "/metrics", &[], &[]).await.text();
    text.lines()
        .find_map(|l| l.strip_prefix("spoke_relay_blob_uploads_stalled_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the stalled-uploads counter")
}

/// Asserts `r` is the cut of a stalled upload.
fn assert_cut(r: &HttpResponse, after: Duration, window: Duration) {
    assert_eq!(r.status, 408, "{}", r.text());
    let body: serde_json::Value = serde_json::from_slice(&r.body).expect("a JSON error");
    assert_eq!(body["error"], "too_slow", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("nothing was stored")
            && message.contains(&MIN_UPLOAD_BYTES_PER_SEC.to_string()),
        "{message}"
    );
    assert_eq!(header(r, "connection"), Some("close"));
    // Not before a whole window, and soon after it.
    assert!(
        after + Duration::from_millis(50) >= window,
        "cut after {after:?}, before the {window:?} window"
    );
    assert!(
        after <= window + Duration::from_secs(2),
        "cut only after {after:?} with a {window:?} window"
    );
}

const WINDOW: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_uploads_are_cut_within_the_window_and_leave_nothing() {
    let relay = TestRelay::start_with(|c| c.blob_stall_window = WINDOW).await;
    let hub = relay.hub("Studio");
    let token = relay.token(&hub, "ana", "lead");
    let blob = vec![7u8; 1024 * 1024];
    let sha = sha256_hex(&blob);
    let url = format!("/v1/hubs/{hub}/blobs/{sha}");
    assert_eq!(stalled_count(relay.addr).await, 0);

    // A few bytes, then nothing.
    let (r, after) = slow_put(
        relay.addr,
        &url,
        &token,
        blob.len(),
        vec![blob[..100].to_vec()],
        Duration::ZERO,
        false,
    )
    .await;
    assert_cut(&r, after, WINDOW);
    assert_eq!(tmp_files(relay.dir.path(), &hub), 0, "no temporary file");
    assert_eq!(stalled_count(relay.addr).await, 1);

    // Eight at once, with no body byte at all: each is cut on its own clock.
    let puts = (0..8).map(|_| {
        let (url, token) = (url.clone(), token.clone());
        let addr = relay.addr;
        tokio::spawn(async move {
            slow_put(
                addr,
                &url,
                &token,
                1024 * 1024,
                vec![],
                Duration::ZERO,
                false,
            )
            .await
        })
    });
    for put in futures_util::future::join_all(puts).await {
        let (r, after) = put.expect("the upload task");
        assert_cut(&r, after, WINDOW);
    }
    assert_eq!(tmp_files(relay.dir.path(), &hub), 0, "no temporary file");
    assert_eq!(stalled_count(relay.addr).await, 9);

    // A trickle under the floor (8 KiB/s against 16 KiB/s) is cut as well.
    let pieces = blob[..64 * 1024].chunks(2048).map(<[u8]>::to_vec).collect();
    let (r, after) = slow_put(
        relay.addr,
        &url,
        &token,
        blob.len(),
        pieces,
        Duration::from_millis(250),
        false,
    )
    .await;
    assert_cut(&r, after, WINDOW);
    assert_eq!(tmp_files(relay.dir.path(), &hub), 0, "no temporary file");
    assert_eq!(stalled_count(relay.addr).await, 10);

    // Nothing of it was stored.
    let auth = format!("Bearer {token}");
    let r = http(relay.addr, "GET", &url, &[("Authorization", &auth)], &[]).await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_above_the_floor_is_stored_however_long_it_takes() {
    let relay = TestRelay::start_with(|c| c.blob_stall_window = WINDOW).await;
    let hub = relay.hub("Studio");
    let token = relay.token(&hub, "ana", "lead");
    // 128 KiB at about 64 KiB/s: two windows long, four times the floor.
    let blob: Vec<u8> = (0..128 * 1024u32).map(|i| (i % 251) as u8).collect();
    let sha = sha256_hex(&blob);
    let url = format!("/v1/hubs/{hub}/blobs/{sha}");
    let pieces = blob.chunks(8 * 1024).map(<[u8]>::to_vec).collect();
    let (r, after) = slow_put(
        relay.addr,
        &url,
        &token,
        blob.len(),
        pieces,
        Duration::from_millis(125),
        true,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(after >= Duration::from_millis(1800), "took {after:?}");
    assert_eq!(stalled_count(relay.addr).await, 0);
    let auth = format!("Bearer {token}");
    let r = http(relay.addr, "GET", &url, &[("Authorization", &auth)], &[]).await;
    assert!(
        r.status == 200 && r.body == blob,
        "the blob is stored whole"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_process_takes_its_stall_window_from_the_command_line() {
    let data = tempfile::tempdir().expect("data folder");
    let logs = tempfile::tempdir().expect("log folder");
    let d = data.path().to_str().expect("a UTF-8 path");
    let created = cli_json(&["hub", "create", "Edges", "--data", d, "--json"]);
    let (hub, token) = (field(&created, "hub"), field(&created, "token"));
    let relay = RelayProcess::start_with(
        data.path(),
        free_port(),
        logs.path(),
        1,
        &["--blob-stall-secs", "1"],
    )
    .await;
    let blob = vec![1u8; 256 * 1024];
    let url = format!("/v1/hubs/{hub}/blobs/{}", sha256_hex(&blob));
    let (r, after) = slow_put(
        relay.addr,
        &url,
        &token,
        blob.len(),
        vec![blob[..10].to_vec()],
        Duration::ZERO,
        false,
    )
    .await;
    assert_cut(&r, after, Duration::from_secs(1));
    assert_eq!(tmp_files(data.path(), &hub), 0, "no temporary file");
    assert_eq!(stalled_count(relay.addr).await, 1);
}
