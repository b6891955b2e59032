//! Resident memory stays within the relay's budget as a hub's log grows
//! past it: a real `spoke-relay` process with `--memory-budget-mib 64`
//! takes twice that much in 4 KiB ops while its resident set is sampled.

mod common;

use common::process::{RelayProcess, cli_json, field, free_port};
use common::{Client, body_of_size};

const BUDGET_MIB: u64 = 64;
/// What a relay process holds besides its stores' caches: code, the
/// runtime, buffers of one connection and a commit in flight.
const OVERHEAD_MIB: u64 = 48;

fn resident_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_twice_the_budget_keeps_resident_memory_within_it() {
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("skipped: resident memory is read from /proc, which this system lacks");
        return;
    }
    let data = tempfile::tempdir().expect("data folder");
    let logs = tempfile::tempdir().expect("log folder");
    let d = data.path().to_str().expect("utf-8 temp path");
    let created = cli_json(&["hub", "create", "Memory", "--data", d, "--json"]);
    let hub = field(&created, "hub");
    let admin = field(&created, "token");
    let budget = BUDGET_MIB.to_string();
    let relay = RelayProcess::start_with(
        data.path(),
        free_port(),
        logs.path(),
        0,
        &[
            "--memory-budget-mib",
            &budget,
            "--max-ops-per-sec",
            "1000000",
        ],
    )
    .await;
    let mut writer = Client::connect(relay.addr, &hub).await;
    writer.hello(&admin, &hub, 0, 0).await;
    // 4 KiB ops, 48 to a frame (under the 256 KiB frame limit).
    let total_ops = (2 * BUDGET_MIB * 1024 * 1024 / 4096) as usize;
    let mut peak = 0;
    let mut sent = 0;
    while sent < total_ops {
        let mut ops = writer.make_ops(48);
        for op in &mut ops {
            op.body = body_of_size("m", 4096);
        }
        sent += ops.len();
        writer.submit_ops(ops).await;
        peak = peak.max(resident_mib(relay.pid()));
    }
    let log_mib = std::fs::read_dir(data.path().join("hubs").join(&hub))
        .expect("the hub's folder")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum::<u64>()
        / (1024 * 1024);
    assert!(
        log_mib >= 2 * BUDGET_MIB,
        "the log ({log_mib} MiB) should pass twice the budget"
    );
    assert!(
        peak <= BUDGET_MIB + OVERHEAD_MIB,
        "resident memory peaked at {peak} MiB with a {BUDGET_MIB} MiB budget and a {log_mib} MiB log"
    );
}

/// Members that stop reading share one queue budget (half the memory
/// budget): they are dropped as slow once the bytes waiting for them all
/// pass it, well before each would reach its own 64 MiB limit, while the
/// member that writes is never dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_that_stop_reading_share_one_queue_budget() {
    use common::{Event, TestRelay};
    use spoke_relay::proto::{ErrorCode, Frame};
    const BUDGET: u64 = 16 * 1024 * 1024;
    let relay = TestRelay::start_with(|c| c.memory_budget = BUDGET).await;
    let hub = relay.hub("Queues");
    let lead = relay.token(&hub, "ana", "lead");
    let (mut writer, _) = relay.join(&hub, &lead, "ana").await;
    let mut stalled = Vec::new();
    for n in 0..3 {
        let handle = format!("watcher{n}");
        let token = relay.token(&hub, &handle, "read-only");
        let (client, _) = relay.join(&hub, &token, &handle).await;
        stalled.push(client);
    }
    // 40 MiB of 4 KiB ops: under each member's own 64 MiB limit, far over
    // the 8 MiB the three share.
    for _ in 0..(40 * 1024 / 4 / 48) {
        let mut ops = writer.make_ops(48);
        for op in &mut ops {
            op.body = body_of_size("q", 4096);
        }
        writer.submit_ops(ops).await;
    }
    for (n, client) in stalled.iter_mut().enumerate() {
        // What the kernel buffered arrives first, then the reason.
        let ended = loop {
            match client.next_event().await {
                Event::Frame(Frame::Ops { .. }) | Event::Frame(Frame::Presence(_)) => continue,
                Event::Frame(Frame::Error { code, .. }) => break Some(code),
                Event::Frame(_) => continue,
                Event::Close(_) | Event::Ended(_) => break None,
            }
        };
        assert_eq!(
            ended,
            Some(ErrorCode::SlowConsumer),
            "watcher{n} was dropped as slow by the shared queue budget"
        );
    }
    let metrics = common::http(relay.addr, "GET", "/metrics", &[], &[]).await.text();
    let gauge = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
    };
    assert_eq!(gauge("spoke_relay_outbound_cap_bytes"), BUDGET / 2);
    assert!(gauge("spoke_relay_outbound_queued_bytes") <= BUDGET / 2);
    // The writer kept its connection throughout.
    writer.submit(1).await;
}
