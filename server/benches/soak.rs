//! Soak: the relay's resident memory over time as one hub's log grows far
//! past the memory budget, then while 300 members follow a burst of large
//! ops and one member never reads. A real `spoke-relay serve` process with
//! `--memory-budget-mib` (256 unless `SOAK_BUDGET_MIB`), 4 KiB ops.
//!
//!   cargo bench -p spoke-relay --bench soak
//!   SOAK_OPS=320000 SOAK_FANOUT_OPS=4000 SOAK_SUBSCRIBERS=300 cargo bench -p spoke-relay --bench soak
//!
//! Samples the relay's resident memory every 100 ms; prints a row per
//! second (elapsed, phase, ops acknowledged, log size, resident memory),
//! then the peak of each phase.

use futures_util::{SinkExt, StreamExt};
use spoke_relay::proto::{ClientId, EntityKey, Frame, Hlc, Op, OpId, decode_frame, encode_frame};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_spoke-relay");
const OP_BYTES: usize = 4096;
const OPS_PER_FRAME: usize = 48;
const FRAMES_IN_FLIGHT: usize = 8;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn cli(data: &Path, args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data")
        .arg(data)
        .arg("--json")
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "spoke-relay {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn text(v: &serde_json::Value, key: &str) -> anyhow::Result<String> {
    v[key]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no `{key}` in {v}"))
}

fn resident_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn dir_mib(dir: &Path) -> f64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum::<u64>()
        })
        .unwrap_or(0) as f64
        / (1024.0 * 1024.0)
}

/// Connects and says where to start: `epoch`/`cursor` of a live member, so
/// followers receive new ops, not the whole log.
async fn connect(
    addr: &str,
    hub: &str,
    token: &str,
    epoch: u64,
    cursor: u64,
) -> anyhow::Result<(Ws, u64, u64)> {
    let url = format!("ws://{addr}/v1/hubs/{hub}/ws");
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    let hello = Frame::Hello {
        token: token.to_owned(),
        hub: hub.to_owned(),
        epoch,
        cursor,
    };
    ws.send(Message::Binary(encode_frame(&hello)?.into()))
        .await?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => match decode_frame(&b)? {
                Frame::Welcome { epoch, head, .. } => return Ok((ws, epoch, head)),
                Frame::Error { message, .. } => anyhow::bail!("refused: {message}"),
                _ => {}
            },
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => anyhow::bail!("closed before Welcome"),
        }
    }
}

/// A `set` of a brief's title 4 KiB long, as a lead would write it.
fn frame(next_seq: &mut u64, n: usize) -> anyhow::Result<Vec<u8>> {
    let title = "x".repeat(OP_BYTES);
    let body = rmp_serde::to_vec_named(&BTreeMap::from([("title", title)]))?;
    let ops = (0..n)
        .map(|_| {
            *next_seq += 1;
            Op {
                id: OpId {
                    client: ClientId(0x50a7),
                    seq: *next_seq,
                },
                hlc: Hlc {
                    wall_ms: *next_seq,
                    logical: 0,
                },
                actor: "admin".into(),
                entity: EntityKey {
                    kind: "brief".into(),
                    id: format!("b-{:04}", *next_seq % 1000),
                },
                kind: "set".into(),
                body: body.clone(),
            }
        })
        .collect();
    Ok(encode_frame(&Frame::Submit { ops })?)
}

/// Submits `total` ops, keeping a few frames in flight; returns when all are acked.
async fn write(
    ws: &mut Ws,
    total: u64,
    next_seq: &mut u64,
    acked: &AtomicU64,
) -> anyhow::Result<()> {
    let mut sent = 0u64;
    let mut in_flight = 0usize;
    while acked.load(Relaxed) < total {
        while in_flight < FRAMES_IN_FLIGHT && sent < total {
            let n = OPS_PER_FRAME.min((total - sent) as usize);
            ws.send(Message::Binary(frame(next_seq, n)?.into())).await?;
            sent += n as u64;
            in_flight += 1;
        }
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => match decode_frame(&b)? {
                Frame::Ack { acks } => {
                    acked.fetch_add(acks.len() as u64, Relaxed);
                    in_flight = in_flight.saturating_sub(1);
                }
                Frame::Error { message, .. } => anyhow::bail!("relay error: {message}"),
                _ => {}
            },
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => anyhow::bail!("the relay closed the writer"),
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let ops = env_num("SOAK_OPS", 320_000);
    let fanout_ops = env_num("SOAK_FANOUT_OPS", 4_000);
    let subscribers = env_num("SOAK_SUBSCRIBERS", 300);
    let budget = env_num("SOAK_BUDGET_MIB", 256);
    let data = tempfile::tempdir()?;
    let created = cli(data.path(), &["hub", "create", "Soak"])?;
    let hub = text(&created, "hub")?;
    let admin = text(&created, "token")?;
    let reader = text(
        &cli(
            data.path(),
            &[
                "token",
                "issue",
                "--hub",
                &hub,
                "--handle",
                "reader",
                "--role",
                "read-only",
            ],
        )?,
        "token",
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &addr,
            "--memory-budget-mib",
            &budget.to_string(),
        ])
        .args(["--max-ops-per-sec", "10000000", "--data"])
        .arg(data.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let outcome = rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(10);
        let (mut writer, epoch) = loop {
            match connect(&addr, &hub, &admin, 0, 0).await {
                Ok((ws, epoch, _)) => break (ws, epoch),
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => return Err(e),
            }
        };
        let log_dir = data.path().join("hubs").join(&hub);
        let acked = Arc::new(AtomicU64::new(0));
        let phase = Arc::new(std::sync::Mutex::new("log"));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (acked, phase, done) = (acked.clone(), phase.clone(), done.clone());
            let log_dir = log_dir.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                let mut last_row = start;
                let mut peaks: BTreeMap<&'static str, f64> = BTreeMap::new();
                println!("| s | phase | ops acked | log MiB | relay RSS MiB |\n| --- | --- | --- | --- | --- |");
                while !done.load(Relaxed) {
                    let rss = resident_mib(pid);
                    let p = *phase.lock().map_err(|_| anyhow::anyhow!("lock"))?;
                    let peak = peaks.entry(p).or_insert(0.0);
                    *peak = peak.max(rss);
                    if last_row.elapsed() >= Duration::from_secs(1) {
                        last_row = Instant::now();
                        println!(
                            "| {:.0} | {p} | {} | {:.0} | {rss:.1} |",
                            start.elapsed().as_secs_f64(),
                            acked.load(Relaxed),
                            dir_mib(&log_dir)
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                anyhow::Ok(peaks)
            })
        };
        let mut next_seq = 0;
        write(&mut writer, ops, &mut next_seq, &acked).await?;
        // Phase two: members following a burst, one of them never reading.
        *phase.lock().map_err(|_| anyhow::anyhow!("lock"))? = "fan-out";
        let head = acked.load(Relaxed) + 2;
        let _stalled = connect(&addr, &hub, &reader, epoch, head).await?;
        let received = Arc::new(AtomicU64::new(0));
        let mut readers = Vec::new();
        for _ in 0..subscribers {
            let (mut ws, _, _) = connect(&addr, &hub, &reader, epoch, head).await?;
            let received = received.clone();
            readers.push(tokio::spawn(async move {
                while let Some(Ok(m)) = ws.next().await {
                    if let Message::Binary(b) = m
                        && let Ok(Frame::Ops { ops, .. }) = decode_frame(&b)
                    {
                        received.fetch_add(ops.len() as u64, Relaxed);
                    }
                }
            }));
        }
        acked.store(0, Relaxed);
        write(&mut writer, fanout_ops, &mut next_seq, &acked).await?;
        let want = fanout_ops * subscribers;
        let until = Instant::now() + Duration::from_secs(120);
        while received.load(Relaxed) < want && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        done.store(true, Relaxed);
        let peaks = sampler.await??;
        for r in readers {
            r.abort();
        }
        println!(
            "\n{ops} ops of 4 KiB into one hub (log {:.0} MiB), then {fanout_ops} more to {subscribers} members ({} of {want} delivered) with one member that never reads; --memory-budget-mib {budget}",
            dir_mib(&log_dir),
            received.load(Relaxed)
        );
        for (phase, peak) in peaks {
            println!("peak relay RSS during {phase}: {peak:.1} MiB");
        }
        anyhow::Ok(())
    });
    let _ = child.kill();
    let _ = child.wait();
    outcome
}
