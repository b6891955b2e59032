//! Fan-out load generator: one publisher and N subscribers in one hub,
//! 200-byte ops, every op durably stored. Reports delivered ops/s,
//! p50/p99/max latency (publisher send to subscriber receive), server CPU
//! per 1k deliveries and the server's peak RSS.
//!
//! `cargo bench -p spoke-relay --bench fanout -- [--subscribers 100,500,1000]
//!  [--deliveries-per-sec 100000] [--seconds 10]`
//!
//! The relay runs as a subprocess pinned to core 0 (when `taskset` exists);
//! the generator pins itself to core 1. Another server can be measured by
//! implementing [`Target`] for it.

use futures_util::{SinkExt, StreamExt};
use spoke_relay::proto::{
    ClientId, EntityKey, Frame, Hlc, Op, OpId, decode_frame, decode_op, encode_frame,
};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A server under test: how to reach it, which process to measure, and how
/// payloads travel in its protocol.
trait Target {
    fn name(&self) -> &str;
    fn pid(&self) -> u32;
    async fn subscriber(&self) -> anyhow::Result<Ws>;
    async fn publisher(&self) -> anyhow::Result<Ws>;
    /// One publishable message carrying `payloads`.
    fn publish_message(&self, first_seq: u64, payloads: Vec<Vec<u8>>) -> Message;
    /// The payloads in a received message.
    fn decoder(&self) -> fn(&Message) -> Vec<Vec<u8>>;
}

struct SpokeRelay {
    child: Child,
    addr: String,
    hub: String,
    publisher_token: String,
    subscriber_token: String,
    _data: tempfile::TempDir,
}

impl Drop for SpokeRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn relay_cli(args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_spoke-relay"))
        .args(args)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "spoke-relay {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn field(v: &serde_json::Value, key: &str) -> anyhow::Result<String> {
    v[key]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no `{key}` in {v}"))
}

impl SpokeRelay {
    async fn start() -> anyhow::Result<SpokeRelay> {
        let data = tempfile::tempdir()?;
        let d = data.path().display().to_string();
        let created = relay_cli(&[
            "hub", "create", "Bench", "--data", &d, "--handle", "pub", "--json",
        ])?;
        let hub = field(&created, "hub")?;
        let publisher_token = field(&created, "token")?;
        let sub = relay_cli(&[
            "token",
            "issue",
            "--data",
            &d,
            "--hub",
            &hub,
            "--handle",
            "sub",
            "--role",
            "read-only",
            "--json",
        ])?;
        let subscriber_token = field(&sub, "token")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let bin = env!("CARGO_BIN_EXE_spoke-relay");
        let serve = [
            "serve",
            "--listen",
            &addr,
            "--data",
            &d,
            "--max-ops-per-sec",
            "10000000",
        ];
        let mut cmd = if has_taskset() {
            let mut c = Command::new("taskset");
            c.args(["-c", "0", bin]);
            c
        } else {
            Command::new(bin)
        };
        let child = cmd
            .args(serve)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let relay = SpokeRelay {
            child,
            addr,
            hub,
            publisher_token,
            subscriber_token,
            _data: data,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(&relay.addr).await.is_err() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "relay did not start on {}",
                relay.addr
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(relay)
    }

    async fn connect(&self, token: &str) -> anyhow::Result<Ws> {
        let url = format!("ws://{}/v1/hubs/{}/ws", self.addr, self.hub);
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?;
        let hello = Frame::Hello {
            token: token.to_owned(),
            hub: self.hub.clone(),
            epoch: 0,
            cursor: 0,
        };
        ws.send(Message::Binary(encode_frame(&hello)?.into()))
            .await?;
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => match decode_frame(&b)? {
                Frame::Welcome { .. } => Ok(ws),
                other => anyhow::bail!("expected Welcome, got {other:?}"),
            },
            other => anyhow::bail!("expected Welcome, got {other:?}"),
        }
    }
}

fn spoke_payloads(msg: &Message) -> Vec<Vec<u8>> {
    let Message::Binary(b) = msg else {
        return Vec::new();
    };
    match decode_frame(b) {
        Ok(Frame::Ops { ops, .. }) => ops
            .into_iter()
            .filter_map(|s| decode_op(&s.op).ok().map(|o| o.body))
            .collect(),
        _ => Vec::new(),
    }
}

impl Target for SpokeRelay {
    fn name(&self) -> &str {
        "spoke-relay"
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn subscriber(&self) -> anyhow::Result<Ws> {
        self.connect(&self.subscriber_token).await
    }

    async fn publisher(&self) -> anyhow::Result<Ws> {
        self.connect(&self.publisher_token).await
    }

    fn publish_message(&self, first_seq: u64, payloads: Vec<Vec<u8>>) -> Message {
        let ops = payloads
            .into_iter()
            .zip(first_seq..)
            .map(|(body, seq)| Op {
                id: OpId {
                    client: ClientId(1),
                    seq,
                },
                hlc: Hlc {
                    wall_ms: seq,
                    logical: 0,
                },
                actor: "pub".into(),
                entity: EntityKey {
                    kind: "brief".into(),
                    id: "b-bench000".into(),
                },
                kind: "set".into(),
                body,
            })
            .collect();
        let bytes = encode_frame(&Frame::Submit { ops }).unwrap_or_default();
        Message::Binary(bytes.into())
    }

    fn decoder(&self) -> fn(&Message) -> Vec<Vec<u8>> {
        spoke_payloads
    }
}

fn has_taskset() -> bool {
    Command::new("taskset")
        .arg("-V")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A 200-byte payload carrying its send time in the first 8 bytes.
fn payload() -> Vec<u8> {
    let mut p = vec![0x2a; 200];
    p[..8].copy_from_slice(&now_us().to_le_bytes());
    p
}

/// (user + system CPU seconds, peak RSS in KiB) of a process.
fn proc_usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_comm = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // After the command name: state is field 0, utime 11, stime 12 (in 1/100 s).
    let cpu = (ticks(11) + ticks(12)) as f64 / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (cpu, hwm)
}

struct Report {
    expected: u64,
    delivered: u64,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    cpu_s_per_1k: f64,
    rss_mib: f64,
}

async fn run<T: Target>(
    target: &T,
    subscribers: usize,
    deliveries_per_sec: u64,
    seconds: u64,
) -> anyhow::Result<Report> {
    let decode = target.decoder();
    let mut tasks = Vec::new();
    for _ in 0..subscribers {
        let mut ws = target.subscriber().await?;
        tasks.push(tokio::spawn(async move {
            let mut latencies: Vec<u32> = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds + 3);
            while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, ws.next()).await {
                let now = now_us();
                for p in decode(&msg) {
                    if let Some(sent) = p.get(..8).and_then(|b| b.try_into().ok()) {
                        let us = now.saturating_sub(u64::from_le_bytes(sent));
                        latencies.push(us.min(u64::from(u32::MAX)) as u32);
                    }
                }
            }
            latencies
        }));
    }
    let mut publisher = target.publisher().await?;
    let (cpu0, _) = proc_usage(target.pid());
    let ops_per_sec = (deliveries_per_sec / subscribers.max(1) as u64).max(1);
    let per_tick = (ops_per_sec / 100).max(1);
    let mut interval = tokio::time::interval(Duration::from_millis(10));
    let start = Instant::now();
    let mut seq = 1;
    let mut sent = 0;
    while start.elapsed() < Duration::from_secs(seconds) {
        interval.tick().await;
        let batch: Vec<Vec<u8>> = (0..per_tick).map(|_| payload()).collect();
        publisher.send(target.publish_message(seq, batch)).await?;
        seq += per_tick;
        sent += per_tick;
        // Read acks as they come so the publisher's socket never backs up.
        while let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_micros(10), publisher.next()).await
        {}
    }
    let seconds = start.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap_or_default());
    }
    let (cpu1, rss) = proc_usage(target.pid());
    latencies.sort_unstable();
    let at = |p: f64| {
        let i = ((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(i).copied().unwrap_or(0) as f64 / 1000.0
    };
    let delivered = latencies.len() as u64;
    Ok(Report {
        expected: sent * subscribers as u64,
        delivered,
        seconds,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: latencies.last().copied().unwrap_or(0) as f64 / 1000.0,
        cpu_s_per_1k: if delivered > 0 {
            (cpu1 - cpu0) / delivered as f64 * 1000.0
        } else {
            0.0
        },
        rss_mib: rss as f64 / 1024.0,
    })
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> anyhow::Result<()> {
    let subscribers: Vec<usize> = arg("--subscribers")
        .unwrap_or_else(|| "100,500,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let rate: u64 = arg("--deliveries-per-sec")
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let seconds: u64 = arg("--seconds").and_then(|s| s.parse().ok()).unwrap_or(10);
    if has_taskset() {
        let _ = Command::new("taskset")
            .args(["-cp", "1", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    println!(
        "| server | subscribers | target deliveries/s | delivered/expected | deliveries/s | p50 ms | p99 ms | max ms | server CPU µs per delivery | server peak RSS MiB |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for n in subscribers {
        let outcome = rt.block_on(async {
            let relay = SpokeRelay::start().await?;
            let report = run(&relay, n, rate, seconds).await?;
            anyhow::Ok((relay.name().to_owned(), report))
        });
        match outcome {
            Ok((name, r)) => println!(
                "| {name} | {n} | {rate} | {}/{} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} |",
                r.delivered,
                r.expected,
                r.delivered as f64 / r.seconds,
                r.p50_ms,
                r.p99_ms,
                r.max_ms,
                r.cpu_s_per_1k * 1000.0,
                r.rss_mib
            ),
            Err(e) => println!("| spoke-relay | {n} | {rate} | failed: {e:#} | | | | | | |"),
        }
    }
    Ok(())
}
