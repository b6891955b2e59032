//! Every phase of a connection has a deadline: a connection that never
//! sends a request head, or sends it a byte at a time, is cut after the same
//! time a late `Hello` gets, and the cut is counted in `/metrics`.

mod common;

use common::{TIMEOUT, TestRelay, http};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEAD_TIMEOUT: Duration = Duration::from_secs(1);

/// Reads until the relay closes the socket; returns how long that took.
async fn closed_after(stream: &mut TcpStream, started: Instant) -> Duration {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(TIMEOUT, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the relay kept a silent connection open past {TIMEOUT:?}"),
        }
    }
}

async fn head_timeouts(relay: &TestRelay) -> u64 {
    let metrics = http(relay.addr, "GET", "/metrics", &[], &[]).await.text();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("spoke_relay_http_head_timeouts_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no head-timeout counter in /metrics:\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_no_request_head_is_cut_with_the_hello_timeout() {
    let relay = TestRelay::start_with(|c| c.hello_timeout = HEAD_TIMEOUT).await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(relay.addr).await.expect("connect");
    let took = closed_after(&mut silent, started).await;
    assert!(
        took >= HEAD_TIMEOUT && took < HEAD_TIMEOUT * 4,
        "a silent connection was cut after {took:?}, not about {HEAD_TIMEOUT:?}"
    );
    assert_eq!(head_timeouts(&relay).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_request_sent_a_byte_at_a_time_is_cut_with_the_hello_timeout() {
    let relay = TestRelay::start_with(|c| c.hello_timeout = HEAD_TIMEOUT).await;
    let request = format!(
        "GET /v1/hubs/h-x/ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        relay.addr
    );
    let started = Instant::now();
    let mut slow = TcpStream::connect(relay.addr).await.expect("connect");
    let (mut read, mut write) = slow.split();
    let trickle = async {
        for byte in request.as_bytes() {
            if write.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let mut buf = [0u8; 1024];
    let cut = async {
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => continue,
            }
        }
    };
    let took = tokio::time::timeout(TIMEOUT, async {
        tokio::select! {
            _ = trickle => panic!("the whole head went through a byte every 100 ms"),
            took = cut => took,
        }
    })
    .await
    .expect("the relay cut the slow upgrade in time");
    assert!(
        took >= HEAD_TIMEOUT && took < HEAD_TIMEOUT * 4,
        "a trickled head was cut after {took:?}, not about {HEAD_TIMEOUT:?}"
    );
    assert!(head_timeouts(&relay).await >= 1);
    // The relay still serves others.
    let health = http(relay.addr, "GET", "/healthz", &[], &[]).await;
    assert_eq!(health.status, 200);
}
