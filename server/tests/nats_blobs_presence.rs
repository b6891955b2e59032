//! Blobs and presence shared by two real relay processes on a real
//! three-node NATS JetStream cluster: a blob uploaded through one relay is
//! downloaded through the other, a bad or cut upload is never visible, a
//! large blob streams through without either relay holding it in memory;
//! and members on different relays see each other's presence, which ends on
//! the surviving relay when the other is killed.

mod common;

use common::nats::NatsCluster;
use common::process::{HubSetup, RelayProcess, free_port};
use common::{Client, HttpResponse, XorShift, sha256_hex};
use spoke_relay::proto::{Frame, Presence, PresenceStatus};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest a large transfer may take (a debug build hashing 50 MiB is slow).
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(180);

/// Two relays serving the same hub on one cluster, with the cluster's
/// shared registry.
struct Pair {
    setup: HubSetup,
    _data_b: tempfile::TempDir,
    a: RelayProcess,
    b: RelayProcess,
    // Dropped last.
    _cluster: NatsCluster,
}

async fn pair(members: &[(&str, &str)], extra: &[&str]) -> Option<Pair> {
    let cluster = NatsCluster::start().await?;
    let urls = cluster.urls();
    // The hub and tokens are in the cluster's registry; both relays start
    // with empty data folders.
    let setup = HubSetup::on_nats("Shared", members, &urls);
    let data_b = tempfile::tempdir().expect("data folder");
    let mut args = vec!["--nats", urls.as_str(), "--nats-replicas", "3"];
    args.extend_from_slice(extra);
    let logs = setup.logs.path();
    let a = RelayProcess::start_with(setup.data.path(), free_port(), logs, 0, &args).await;
    let b = RelayProcess::start_with(data_b.path(), free_port(), logs, 1, &args).await;
    Some(Pair {
        setup,
        _data_b: data_b,
        a,
        b,
        _cluster: cluster,
    })
}

fn blob_url(hub: &str, sha: &str) -> String {
    format!("/v1/hubs/{hub}/blobs/{sha}")
}

/// An HTTP/1.1 exchange with a long deadline, for large bodies.
async fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    tokio::time::timeout(TRANSFER_TIMEOUT, async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.expect("send head");
        let _ = stream.write_all(body).await;
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(&raw)));
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
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
    })
    .await
    .expect("the HTTP exchange finishes in time")
}

fn header<'a>(r: &'a HttpResponse, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = XorShift(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A `/proc/PID/status` field in KiB.
fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_uploaded_through_one_relay_is_served_by_the_other_and_a_bad_one_never() {
    let Some(pair) = pair(&[("w1", "creative")], &["--blob-stall-secs", "2"]).await else {
        return;
    };
    let hub = &pair.setup.hub;
    let auth = format!("Bearer {}", pair.setup.tokens["w1"]);
    let auth = [("Authorization", auth.as_str())];
    let (a, b) = (pair.a.addr, pair.b.addr);

    // Several object chunks, not a multiple of their size.
    let blob = random_bytes(7, 700 * 1024 + 13);
    let sha = sha256_hex(&blob);
    let missing = exchange(b, "GET", &blob_url(hub, &sha), &auth, &[]).await;
    assert_eq!(missing.status, 404, "{}", missing.text());
    let put = exchange(a, "PUT", &blob_url(hub, &sha), &auth, &blob).await;
    assert_eq!(put.status, 201, "{}", put.text());
    let got = exchange(b, "GET", &blob_url(hub, &sha), &auth, &[]).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(header(&got, "content-length"), Some("716813"));
    assert!(got.body == blob, "relay b serves the bytes uploaded to a");
    // A range across a chunk boundary, through b.
    let part = exchange(
        b,
        "GET",
        &blob_url(hub, &sha),
        &[auth[0], ("Range", "bytes=131000-262200")],
        &[],
    )
    .await;
    assert_eq!(part.status, 206, "{}", part.text());
    assert_eq!(
        header(&part, "content-range"),
        Some("bytes 131000-262200/716813")
    );
    assert!(part.body == blob[131000..=262200]);
    let tail = exchange(
        b,
        "GET",
        &blob_url(hub, &sha),
        &[auth[0], ("Range", "bytes=-10")],
        &[],
    )
    .await;
    assert_eq!(tail.status, 206);
    assert!(tail.body == blob[blob.len() - 10..]);
    // Stored once: the second relay knows it has it.
    let again = exchange(b, "PUT", &blob_url(hub, &sha), &auth, &blob).await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&again.body).expect("json")["stored"],
        false
    );

    // A body that is not what its name says is refused and never visible.
    let other = random_bytes(8, 300 * 1024);
    let other_sha = sha256_hex(&other);
    let mut corrupt = other.clone();
    corrupt[1000] ^= 1;
    let refused = exchange(a, "PUT", &blob_url(hub, &other_sha), &auth, &corrupt).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(
        refused.text().contains("hash_mismatch"),
        "{}",
        refused.text()
    );
    for relay in [a, b] {
        let r = exchange(relay, "GET", &blob_url(hub, &other_sha), &auth, &[]).await;
        assert_eq!(r.status, 404, "{}", r.text());
    }

    // A body that stops half-way is cut for stalling; nothing is visible.
    let mut stalled = TcpStream::connect(a).await.expect("connect");
    stalled
        .write_all(
            format!(
                "PUT {} HTTP/1.1\r\nHost: {a}\r\nAuthorization: {}\r\nContent-Length: {}\r\n\r\n",
                blob_url(hub, &other_sha),
                auth[0].1,
                other.len()
            )
            .as_bytes(),
        )
        .await
        .expect("send head");
    stalled
        .write_all(&other[..other.len() / 2])
        .await
        .expect("send half");
    let mut answer = Vec::new();
    tokio::time::timeout(TRANSFER_TIMEOUT, stalled.read_to_end(&mut answer))
        .await
        .expect("the stalled upload is answered")
        .expect("read the answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("too_slow"), "{answer}");
    let r = exchange(b, "GET", &blob_url(hub, &other_sha), &auth, &[]).await;
    assert_eq!(r.status, 404, "{}", r.text());

    // A client that goes away half-way leaves nothing: the whole body,
    // uploaded afterwards, is newly stored, and b serves it intact.
    let mut cut = TcpStream::connect(a).await.expect("connect");
    cut.write_all(
        format!(
            "PUT {} HTTP/1.1\r\nHost: {a}\r\nAuthorization: {}\r\nContent-Length: {}\r\n\r\n",
            blob_url(hub, &other_sha),
            auth[0].1,
            other.len()
        )
        .as_bytes(),
    )
    .await
    .expect("send head");
    cut.write_all(&other[..other.len() / 3])
        .await
        .expect("send a third");
    drop(cut);
    let r = exchange(b, "GET", &blob_url(hub, &other_sha), &auth, &[]).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let whole = exchange(a, "PUT", &blob_url(hub, &other_sha), &auth, &other).await;
    assert_eq!(whole.status, 201, "{}", whole.text());
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&whole.body).expect("json")["stored"],
        true
    );
    let r = exchange(b, "GET", &blob_url(hub, &other_sha), &auth, &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.body == other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_blob_streams_through_both_relays_without_being_held_in_memory() {
    let Some(pair) = pair(&[("w1", "creative")], &[]).await else {
        return;
    };
    let hub = &pair.setup.hub;
    let auth = format!("Bearer {}", pair.setup.tokens["w1"]);
    let auth = [("Authorization", auth.as_str())];
    const SIZE: usize = 50 * 1024 * 1024;
    let blob = random_bytes(42, SIZE);
    let sha = sha256_hex(&blob);
    // Warm both relays up (the bucket opened, the hub's token read) first.
    let small = b"warm-up".to_vec();
    let warm = exchange(
        pair.a.addr,
        "PUT",
        &blob_url(hub, &sha256_hex(&small)),
        &auth,
        &small,
    )
    .await;
    assert_eq!(warm.status, 201, "{}", warm.text());
    let warm = exchange(
        pair.b.addr,
        "GET",
        &blob_url(hub, &sha256_hex(&small)),
        &auth,
        &[],
    )
    .await;
    assert_eq!(warm.status, 200, "{}", warm.text());
    let before_a = proc_kib(pair.a.pid(), "VmRSS:");
    let before_b = proc_kib(pair.b.pid(), "VmRSS:");

    let put = exchange(pair.a.addr, "PUT", &blob_url(hub, &sha), &auth, &blob).await;
    assert_eq!(put.status, 201, "{}", put.text());
    let got = exchange(pair.b.addr, "GET", &blob_url(hub, &sha), &auth, &[]).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.body.len(), SIZE);
    assert_eq!(sha256_hex(&got.body), sha, "byte-identical through b");

    // The peak resident size of each relay grew by well under the blob.
    let limit_kib = (SIZE as u64 / 1024) * 6 / 10;
    for (name, pid, before) in [("a", pair.a.pid(), before_a), ("b", pair.b.pid(), before_b)] {
        let peak = proc_kib(pid, "VmHWM:");
        eprintln!("relay {name}: {before} KiB resident before, peak {peak} KiB");
        assert!(
            peak.saturating_sub(before) < limit_kib,
            "relay {name} peaked at {peak} KiB resident from {before} KiB: it held the blob"
        );
    }
}

/// Waits (bounded by `deadline`) for a `Presence` frame `want` accepts,
/// skipping every other frame.
async fn await_presence(
    client: &mut Client,
    deadline: Instant,
    what: &str,
    want: impl Fn(&Presence) -> bool,
) -> Presence {
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no presence {what}; saw {seen:?}");
        match tokio::time::timeout(left.min(Duration::from_secs(1)), client.recv()).await {
            Ok(Frame::Presence(p)) if want(&p) => return p,
            Ok(Frame::Presence(p)) => seen.push(p),
            Ok(Frame::Ping { nonce }) => client.send(&Frame::Pong { nonce }).await,
            Ok(_) | Err(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_on_two_relays_see_each_others_presence_until_one_relay_dies() {
    let Some(mut pair) = pair(&[("ana", "creative"), ("ben", "creative")], &[]).await else {
        return;
    };
    let hub = pair.setup.hub.clone();
    let mut ana = Client::connect(pair.a.addr, &hub).await;
    ana.hello(&pair.setup.tokens["ana"], &hub, 0, 0).await;
    let mut ben = Client::connect(pair.b.addr, &hub).await;
    ben.hello(&pair.setup.tokens["ben"], &hub, 0, 0).await;
    let soon = || Instant::now() + Duration::from_secs(20);

    ben.send(&Frame::Presence(Presence {
        member: "someone-else".into(),
        status: PresenceStatus::Online,
        tz: Some("Europe/Paris".into()),
        viewing: Some("brief/b-1".into()),
    }))
    .await;
    let seen = await_presence(&mut ana, soon(), "of ben online", |p| {
        p.member == "ben" && p.status == PresenceStatus::Online
    })
    .await;
    assert_eq!(seen.viewing.as_deref(), Some("brief/b-1"));
    assert_eq!(seen.tz.as_deref(), Some("Europe/Paris"));

    // A change crosses too, and the other way round.
    ben.send(&Frame::Presence(Presence {
        member: String::new(),
        status: PresenceStatus::Away,
        tz: Some("Europe/Paris".into()),
        viewing: Some("brief/b-2".into()),
    }))
    .await;
    let seen = await_presence(&mut ana, soon(), "of ben away", |p| {
        p.member == "ben" && p.status == PresenceStatus::Away
    })
    .await;
    assert_eq!(seen.viewing.as_deref(), Some("brief/b-2"));
    ana.send(&Frame::Presence(Presence {
        member: String::new(),
        status: PresenceStatus::Online,
        tz: None,
        viewing: Some("brief/b-3".into()),
    }))
    .await;
    await_presence(&mut ben, soon(), "of ana online", |p| {
        p.member == "ana" && p.viewing.as_deref() == Some("brief/b-3")
    })
    .await;

    // Relay b dies without a word: ana sees ben's presence end.
    pair.b.kill_9();
    let gone = await_presence(&mut ana, soon(), "of ben offline", |p| {
        p.member == "ben" && p.status == PresenceStatus::Offline
    })
    .await;
    assert_eq!(gone.viewing, None);
}
