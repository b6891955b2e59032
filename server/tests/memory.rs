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
