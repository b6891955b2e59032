//! Fan-out load generator: one publisher and N subscribers in one room (a
//! Spoke hub, a Y document, a NATS subject), each server spoken to in its own
//! protocol. Reports delivered/expected, p50/p99/max latency (publisher send
//! to subscriber receive), the server's CPU per delivery and its peak RSS.
//!
//! ```text
//! cargo bench -p spoke-relay --bench fanout -- [--target spoke] [--addr HOST:PORT --pid PID]
//!   [--subscribers 100,500,1000] [--payload-bytes 200,4096]
//!   [--deliveries-per-sec 100000 | --step-up [--start-rate 25000] [--max-rate 3200000]]
//!   [--seconds 5] [--p99-limit-ms 100] [--min-delivered 0.999] [--batch] [--no-header]
//!   [--nats-nodes 3|1] [--split-rows FILE]
//! ```
//!
//! `FANOUT_KEEP_RELAY_LOGS=DIR` copies each relay's log (RUST_LOG sets its
//! level) into DIR when the relay is stopped.
//!
//! Targets started here, pinned to core 0: `spoke` (one relay on redb),
//! `spoke-js` (one relay on a JetStream cluster of `--nats-nodes` nodes on
//! loopback, one copy per node) and `spoke-js2` (two relays on that cluster
//! serving one hub: the publisher on relay A, subscribers alternating A and
//! B); for these the CPU of each relay and of the NATS nodes is measured on
//! its own, and a row per configuration goes to `--split-rows` (relay A and
//! B µs per delivery each made, NATS µs per op published). Peers started
//! by `benches/peers.sh`: `y-sweet`, `y-websocket`, `nats`, `nats-jetstream`.
//! The generator pins itself to core 1. Every payload starts with a stamp
//! (magic, seq, send time, length) that receivers find in what the server
//! delivers, so a delivery is counted once per subscriber and timed.
//!
//! The publisher sends one payload per WebSocket message (as an interactive
//! client does), paced in 10 ms ticks; whatever batching happens is the
//! server's own (Spoke's group commit, NATS's write coalescing). `--batch`
//! instead packs all payloads due in a tick into one message (one `Submit`,
//! one Y update, one frame of `PUB`s).

mod jscluster;
mod nats;
mod spoke;
mod yclient;
mod ysweet;
mod ywebsocket;

use futures_util::{SinkExt, StreamExt};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_tungstenite::tungstenite::Message;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket with Nagle off, as every adapter's client does. The
/// read buffer is 4 KiB: tungstenite zero-fills the whole buffer before each
/// read, and with the 128 KiB default that memset was most of the
/// generator's own cost per delivery, for every server alike.
pub async fn connect_ws(url: &str) -> anyhow::Result<Ws> {
    let config =
        tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4096);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .map_err(|e| anyhow::anyhow!("connecting to {url}: {e}"))?;
    Ok(ws)
}

/// The next message from a socket, or an error after `secs` (handshakes).
pub async fn next_within(ws: &mut Ws, secs: u64, what: &str) -> anyhow::Result<Message> {
    match tokio::time::timeout(Duration::from_secs(secs), ws.next()).await {
        Ok(Some(Ok(m))) => Ok(m),
        Ok(Some(Err(e))) => anyhow::bail!("{what}: {e}"),
        Ok(None) => anyhow::bail!("{what}: the server closed the connection"),
        Err(_) => anyhow::bail!("{what}: no answer within {secs} s"),
    }
}

/// Leading bytes of every payload; never produced by the padding (0x2a).
const MAGIC: [u8; 8] = *b"\xf5SPKBNC\x01";
/// Magic, seq (u64), send time in µs (u64), payload length (u32).
pub const STAMP_BYTES: usize = 28;

/// What a receiver reads back from one delivered payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub seq: u64,
    pub sent_us: u64,
}

/// A payload of `size` bytes (at least [`STAMP_BYTES`]) stamped now.
pub fn payload(seq: u64, size: usize) -> Vec<u8> {
    let size = size.max(STAMP_BYTES);
    let mut p = vec![0x2a; size];
    p[..8].copy_from_slice(&MAGIC);
    p[8..16].copy_from_slice(&seq.to_le_bytes());
    p[16..24].copy_from_slice(&now_us().to_le_bytes());
    p[24..28].copy_from_slice(&(size as u32).to_le_bytes());
    p
}

/// The stamp at the start of `bytes`, with the payload's length.
pub fn read_stamp(bytes: &[u8]) -> Option<(Stamp, usize)> {
    if bytes.get(..8)? != MAGIC {
        return None;
    }
    let u64_at = |i: usize| -> Option<u64> {
        Some(u64::from_le_bytes(bytes.get(i..i + 8)?.try_into().ok()?))
    };
    let len = u32::from_le_bytes(bytes.get(24..28)?.try_into().ok()?) as usize;
    Some((
        Stamp {
            seq: u64_at(8)?,
            sent_us: u64_at(16)?,
        },
        len,
    ))
}

/// Finds every stamped payload inside an encoded message (a Y update), in
/// order. Each payload found is skipped whole, so only the envelope around
/// payloads is scanned byte by byte.
pub fn scan_stamps(bytes: &[u8], out: &mut Vec<Stamp>) {
    let mut i = 0;
    while i + STAMP_BYTES <= bytes.len() {
        let Some(at) = bytes[i..].iter().position(|&b| b == MAGIC[0]) else {
            return;
        };
        let start = i + at;
        match read_stamp(&bytes[start..]) {
            Some((stamp, len)) if start + len <= bytes.len() => {
                out.push(stamp);
                i = start + len.max(STAMP_BYTES);
            }
            _ => i = start + 1,
        }
    }
}

/// What one message read from a server carried.
#[derive(Default)]
pub struct Received {
    /// Stamps of the payloads delivered in it.
    pub stamps: Vec<Stamp>,
    /// Payloads the server acknowledged as stored (publisher side).
    pub acked: u64,
    /// A message the protocol requires in answer (e.g. NATS `PONG`).
    pub reply: Option<Message>,
}

/// Reads a server's messages in its protocol.
pub trait Reader: Send + 'static {
    fn read(&mut self, msg: &Message, out: &mut Received) -> anyhow::Result<()>;
    /// What a verifying reader checked, for the log.
    fn verdict(&self) -> Option<String> {
        None
    }
}

/// Turns payloads into publishable messages in a server's protocol.
pub trait Writer: Send + 'static {
    fn messages(&mut self, payloads: Vec<Vec<u8>>) -> anyhow::Result<Vec<Message>>;
}

/// A connection that has completed the server's handshake.
pub struct Conn {
    pub ws: Ws,
    pub reader: Box<dyn Reader>,
}

/// The publisher's connection: what it sends and how it reads acks/echoes.
pub struct PubConn {
    pub ws: Ws,
    pub writer: Box<dyn Writer>,
    pub reader: Box<dyn Reader>,
}

/// A process whose CPU a step accounts for on its own.
#[derive(Debug, Clone, Copy)]
pub enum Watched {
    /// Relay number `0` (A, the publisher's), `1` (B), ... and its pid.
    Relay(usize, u32),
    /// A NATS node.
    Nats(u32),
}

/// A server under test: which process to measure and how to join a room
/// (hub, document, subject) in its own protocol.
pub(crate) trait Target {
    fn name(&self) -> &str;
    /// Whether and how delivered messages are stored, for the table.
    fn persisted(&self) -> &str;
    fn pid(&self) -> u32;
    /// Processes measured one by one (relays and NATS nodes); empty when
    /// `pid` is the whole server. When set, the server's CPU is the relays'.
    fn watched(&self) -> Vec<Watched> {
        Vec::new()
    }
    /// Which relay subscriber `i` joins.
    fn home_of(&self, _i: usize) -> usize {
        0
    }
    /// Subscriber number `i` (it joins relay [`Target::home_of`]).
    async fn subscriber_at(&self, room: &str, _i: usize, verify: bool) -> anyhow::Result<Conn> {
        self.subscriber(room, verify).await
    }
    /// A fresh room for one step, so steps never see each other's state.
    async fn room(&mut self, step: u32) -> anyhow::Result<String>;
    /// `verify`: also check deliveries the slow, thorough way (one
    /// subscriber per step does).
    async fn subscriber(&self, room: &str, verify: bool) -> anyhow::Result<Conn>;
    async fn publisher(&self, room: &str) -> anyhow::Result<PubConn>;
}

pub fn has_taskset() -> bool {
    Command::new("taskset")
        .arg("-V")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// User + system CPU seconds of a process (clock ticks of 1/100 s).
fn proc_cpu(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_comm = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // After the command name: state is field 0, utime 11, stime 12.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// Peak RSS (VmHWM) of a process in KiB.
fn proc_peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Resets a process's peak RSS to its current RSS, so each step reports its own peak.
fn reset_peak_rss(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

#[derive(Debug, Clone)]
struct StepConfig {
    subscribers: usize,
    payload_bytes: usize,
    deliveries_per_sec: u64,
    seconds: f64,
    /// All payloads due in a 10 ms tick in one message (else one per message).
    batch: bool,
}

/// How long the NATS nodes' idle CPU is measured before each step.
const NATS_IDLE: Duration = Duration::from_secs(2);

/// One relay's share of a step: its CPU and the deliveries it made.
#[derive(Debug, Clone, Default)]
struct RelayShare {
    cpu_s: f64,
    delivered: u64,
}

impl RelayShare {
    fn us_per_delivery(&self) -> f64 {
        self.cpu_s / self.delivered.max(1) as f64 * 1e6
    }
}

#[derive(Debug, Clone, Default)]
struct StepReport {
    target_rate: u64,
    sent: u64,
    expected: u64,
    delivered: u64,
    duplicates: u64,
    publish_seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    server_cpu_s: f64,
    rss_mib: f64,
    generator_cpu_pct: f64,
    acked: u64,
    closed_early: usize,
    notes: Vec<String>,
    /// Per relay, when the target has [`Target::watched`] processes.
    relays: Vec<RelayShare>,
    /// CPU seconds of every NATS node together, and how many nodes.
    nats_cpu_s: f64,
    nats_nodes: usize,
    /// The NATS nodes' CPU while nothing was published (share of a core),
    /// measured over [`NATS_IDLE`] before the step: heartbeats and the like.
    nats_idle_share: f64,
    /// Seconds from the first send to the drained tail.
    window_s: f64,
}

impl StepReport {
    fn rate(&self) -> f64 {
        self.delivered as f64 / self.publish_seconds.max(1e-9)
    }

    fn cpu_us_per_delivery(&self) -> f64 {
        if self.delivered == 0 {
            0.0
        } else {
            self.server_cpu_s / self.delivered as f64 * 1e6
        }
    }

    fn nats_us_per_op(&self) -> f64 {
        self.nats_cpu_s / self.sent.max(1) as f64 * 1e6
    }

    /// NATS CPU per op once what the nodes spend idle is taken out.
    fn nats_net_us_per_op(&self) -> f64 {
        (self.nats_cpu_s - self.nats_idle_share * self.window_s).max(0.0) / self.sent.max(1) as f64
            * 1e6
    }

    fn delivered_share(&self) -> f64 {
        self.delivered as f64 / self.expected.max(1) as f64
    }

    /// Whether the generator, not the server, may have set this step's limit.
    fn generator_bound(&self, cfg_seconds: f64) -> bool {
        self.generator_cpu_pct > 95.0 || self.publish_seconds > cfg_seconds * 1.05
    }
}

struct SubscriberResult {
    home: usize,
    latencies_us: Vec<u32>,
    duplicates: u64,
    closed_early: bool,
    verdict: Option<String>,
    error: Option<String>,
}

/// One step: fresh room, N subscribers, publish at the rate for the
/// configured time, wait for the tail, then measure.
async fn run_step<T: Target>(
    target: &mut T,
    step: u32,
    cfg: &StepConfig,
) -> anyhow::Result<StepReport> {
    let room = target.room(step).await?;
    let n = cfg.subscribers.max(1);
    let connected: Vec<anyhow::Result<Conn>> = {
        let target = &*target;
        let room = room.as_str();
        futures_util::stream::iter(0..n)
            .map(|i| target.subscriber_at(room, i, i == 0))
            .buffered(32)
            .collect()
            .await
    };
    let mut conns = Vec::with_capacity(n);
    for c in connected {
        conns.push(c?);
    }
    let delivered = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::with_capacity(n);
    for (i, conn) in conns.into_iter().enumerate() {
        let delivered = delivered.clone();
        let mut stop = stop_rx.clone();
        let home = target.home_of(i);
        tasks.push(tokio::spawn(async move {
            let Conn { mut ws, mut reader } = conn;
            let mut result = SubscriberResult {
                home,
                latencies_us: Vec::new(),
                duplicates: 0,
                closed_early: false,
                verdict: None,
                error: None,
            };
            let mut last_seq = 0;
            let mut got = Received::default();
            loop {
                tokio::select! {
                    biased;
                    _ = stop.changed() => break,
                    msg = ws.next() => {
                        let msg = match msg {
                            Some(Ok(m)) => m,
                            Some(Err(e)) => {
                                result.closed_early = true;
                                result.error = Some(e.to_string());
                                break;
                            }
                            None => {
                                result.closed_early = true;
                                break;
                            }
                        };
                        let now = now_us();
                        got.stamps.clear();
                        if let Err(e) = reader.read(&msg, &mut got) {
                            result.error = Some(format!("{e:#}"));
                            break;
                        }
                        let mut fresh = 0;
                        for s in &got.stamps {
                            if s.seq > last_seq {
                                last_seq = s.seq;
                                let us = now.saturating_sub(s.sent_us);
                                result.latencies_us.push(us.min(u64::from(u32::MAX)) as u32);
                                fresh += 1;
                            } else {
                                result.duplicates += 1;
                            }
                        }
                        delivered.fetch_add(fresh, Relaxed);
                        if let Some(reply) = got.reply.take() {
                            let _ = ws.send(reply).await;
                        }
                    }
                }
            }
            result.verdict = reader.verdict();
            let _ = ws.close(None).await;
            result
        }));
    }

    let PubConn {
        ws,
        mut writer,
        mut reader,
    } = target.publisher(&room).await?;
    let (mut sink, mut stream) = ws.split();
    let acked = Arc::new(AtomicU64::new(0));
    let publisher_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let ack_task = {
        let acked = acked.clone();
        let publisher_error = publisher_error.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut got = Received::default();
            loop {
                tokio::select! {
                    biased;
                    _ = stop.changed() => break,
                    msg = stream.next() => {
                        let Some(Ok(msg)) = msg else { break };
                        got.stamps.clear();
                        got.acked = 0;
                        if let Err(e) = reader.read(&msg, &mut got)
                            && let Ok(mut slot) = publisher_error.lock()
                        {
                            slot.get_or_insert(format!("{e:#}"));
                        }
                        acked.fetch_add(got.acked, Relaxed);
                    }
                }
            }
            stream
        })
    };

    let pid = target.pid();
    let watched = target.watched();
    let watched_cpu = || -> Vec<f64> {
        watched
            .iter()
            .map(|w| match w {
                Watched::Relay(_, p) | Watched::Nats(p) => proc_cpu(&p.to_string()),
            })
            .collect()
    };
    let me = std::process::id().to_string();
    let nats_cpu = |cpu: &[f64]| -> f64 {
        watched
            .iter()
            .zip(cpu)
            .filter(|(w, _)| matches!(w, Watched::Nats(_)))
            .map(|(_, c)| c)
            .sum()
    };
    let mut nats_idle_share = 0.0;
    if watched.iter().any(|w| matches!(w, Watched::Nats(_))) {
        let idle0 = nats_cpu(&watched_cpu());
        tokio::time::sleep(NATS_IDLE).await;
        nats_idle_share = (nats_cpu(&watched_cpu()) - idle0) / NATS_IDLE.as_secs_f64();
    }
    reset_peak_rss(pid);
    let watched0 = watched_cpu();
    let server_cpu0 = proc_cpu(&pid.to_string());
    let gen_cpu0 = proc_cpu(&me);
    let ops_per_sec = cfg.deliveries_per_sec as f64 / n as f64;
    let total_ops = ((ops_per_sec * cfg.seconds).round() as u64).max(1);
    let mut interval = tokio::time::interval(Duration::from_millis(10));
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total_ops {
        interval.tick().await;
        let due = ((start.elapsed().as_secs_f64() * ops_per_sec) as u64 + 1).min(total_ops);
        if due <= sent {
            continue;
        }
        if cfg.batch {
            let payloads = (sent + 1..=due)
                .map(|seq| payload(seq, cfg.payload_bytes))
                .collect();
            for m in writer.messages(payloads)? {
                sink.feed(m).await?;
            }
        } else {
            for seq in sent + 1..=due {
                for m in writer.messages(vec![payload(seq, cfg.payload_bytes)])? {
                    sink.feed(m).await?;
                }
            }
        }
        sink.flush().await?;
        sent = due;
    }
    let publish_seconds = start.elapsed().as_secs_f64().max(cfg.seconds.min(1.0));
    let expected = sent * n as u64;
    // The tail: wait for every delivery, or give up 2 s after the last send.
    let grace = Instant::now() + Duration::from_secs(2);
    while delivered.load(Relaxed) < expected && Instant::now() < grace {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drained = Instant::now();
    let server_cpu1 = proc_cpu(&pid.to_string());
    let gen_cpu1 = proc_cpu(&me);
    let watched1 = watched_cpu();
    let rss_kib = proc_peak_rss_kib(pid);
    let _ = stop_tx.send(true);

    let mut report = StepReport {
        target_rate: cfg.deliveries_per_sec,
        sent,
        expected,
        publish_seconds,
        server_cpu_s: server_cpu1 - server_cpu0,
        rss_mib: rss_kib as f64 / 1024.0,
        generator_cpu_pct: (gen_cpu1 - gen_cpu0) / (drained - start).as_secs_f64() * 100.0,
        window_s: (drained - start).as_secs_f64(),
        nats_idle_share,
        ..StepReport::default()
    };
    for (w, (c0, c1)) in watched.iter().zip(watched0.iter().zip(&watched1)) {
        match *w {
            Watched::Relay(i, _) => {
                if report.relays.len() <= i {
                    report.relays.resize(i + 1, RelayShare::default());
                }
                report.relays[i].cpu_s += c1 - c0;
            }
            Watched::Nats(_) => {
                report.nats_cpu_s += c1 - c0;
                report.nats_nodes += 1;
            }
        }
    }
    if !report.relays.is_empty() {
        report.server_cpu_s = report.relays.iter().map(|r| r.cpu_s).sum();
    }
    let mut latencies = Vec::with_capacity(expected as usize);
    for task in tasks {
        let Ok(r) = task.await else { continue };
        if let Some(share) = report.relays.get_mut(r.home) {
            share.delivered += r.latencies_us.len() as u64;
        }
        latencies.extend(r.latencies_us);
        report.duplicates += r.duplicates;
        report.closed_early += usize::from(r.closed_early);
        if let Some(v) = r.verdict {
            report.notes.push(v);
        }
        if let Some(e) = r.error
            && report
                .notes
                .iter()
                .all(|n| !n.starts_with("subscriber error"))
        {
            report.notes.push(format!("subscriber error: {e}"));
        }
    }
    if let Ok(stream) = ack_task.await
        && let Ok(mut ws) = sink.reunite(stream)
    {
        let _ = ws.close(None).await;
    }
    report.acked = acked.load(Relaxed);
    if let Ok(Some(e)) = publisher_error.lock().map(|e| e.clone()) {
        report.notes.push(format!("publisher: {e}"));
    }
    latencies.sort_unstable();
    let at = |p: f64| {
        let i = ((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(i).copied().unwrap_or(0) as f64 / 1000.0
    };
    report.delivered = latencies.len() as u64;
    report.p50_ms = at(0.50);
    report.p99_ms = at(0.99);
    report.max_ms = latencies.last().copied().unwrap_or(0) as f64 / 1000.0;
    // Let the server finish closing this step's connections before the next.
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(report)
}

#[derive(Debug, Clone)]
struct Options {
    subscribers: Vec<usize>,
    payload_bytes: Vec<usize>,
    fixed_rate: Option<u64>,
    start_rate: u64,
    max_rate: u64,
    seconds: f64,
    p99_limit_ms: f64,
    min_delivered: f64,
    batch: bool,
    /// Where per-relay and NATS rows go (appended); stderr when unset.
    split_rows: Option<String>,
}

impl Options {
    fn passes(&self, r: &StepReport) -> Result<(), String> {
        if r.delivered_share() < self.min_delivered {
            return Err(format!(
                "delivered {:.2}% at {}/s",
                r.delivered_share() * 100.0,
                r.target_rate
            ));
        }
        if r.p99_ms > self.p99_limit_ms {
            return Err(format!("p99 {:.0} ms at {}/s", r.p99_ms, r.target_rate));
        }
        Ok(())
    }
}

fn log_step(name: &str, cfg: &StepConfig, r: &StepReport) {
    eprintln!(
        "  {name} N={} {} B target {}/s: delivered {}/{} ({:.0}/s) dup {} p50 {:.2} p99 {:.2} max {:.2} ms, server {:.2} µs/delivery, RSS {:.1} MiB, generator CPU {:.0}%, acked {}/{}{}{}",
        cfg.subscribers,
        cfg.payload_bytes,
        cfg.deliveries_per_sec,
        r.delivered,
        r.expected,
        r.rate(),
        r.duplicates,
        r.p50_ms,
        r.p99_ms,
        r.max_ms,
        r.cpu_us_per_delivery(),
        r.rss_mib,
        r.generator_cpu_pct,
        r.acked,
        r.sent,
        if r.closed_early > 0 {
            format!(", {} subscribers closed early", r.closed_early)
        } else {
            String::new()
        },
        if r.notes.is_empty() {
            String::new()
        } else {
            format!(" [{}]", r.notes.join("; "))
        }
    );
    if !r.relays.is_empty() {
        let relays: Vec<String> = r
            .relays
            .iter()
            .enumerate()
            .map(|(i, s)| {
                format!(
                    "relay {} {:.2} µs/delivery ({} deliveries, {:.0}% of a core)",
                    relay_letter(i),
                    s.us_per_delivery(),
                    s.delivered,
                    s.cpu_s / r.window_s.max(1e-9) * 100.0
                )
            })
            .collect();
        eprintln!(
            "    {}; NATS ({} nodes) {:.1} µs/op over {} ops ({:.0}% of a core; idle {:.1}%, {:.1} µs/op net of idle)",
            relays.join(", "),
            r.nats_nodes,
            r.nats_us_per_op(),
            r.sent,
            r.nats_cpu_s / r.window_s.max(1e-9) * 100.0,
            r.nats_idle_share * 100.0,
            r.nats_net_us_per_op(),
        );
    }
}

fn relay_letter(i: usize) -> char {
    (b'A' + (i as u8).min(25)) as char
}

const SPLIT_HEADER: &str = "| setup | subscribers | payload B | load | deliveries/s | delivered/expected | p99 ms | relay A µs per delivery | relay A deliveries/s | relay A CPU % | relay B µs per delivery | relay B deliveries/s | relay B CPU % | NATS CPU µs per op | NATS CPU % | ops/s | NATS idle CPU % | NATS µs per op net of idle |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |";

/// The per-relay and NATS accounting of one step, as a table row.
fn split_row(name: &str, n: usize, size: usize, load: &str, r: &StepReport) -> String {
    let pct = |cpu: f64| cpu / r.window_s.max(1e-9) * 100.0;
    let relay = |i: usize| match r.relays.get(i) {
        Some(s) => format!(
            "{:.2} | {:.0} | {:.0}",
            s.us_per_delivery(),
            s.delivered as f64 / r.publish_seconds.max(1e-9),
            pct(s.cpu_s)
        ),
        None => "– | – | –".to_owned(),
    };
    let (nats, idle) = if r.nats_nodes == 0 {
        ("– | –".to_owned(), "– | –".to_owned())
    } else {
        (
            format!("{:.1} | {:.0}", r.nats_us_per_op(), pct(r.nats_cpu_s)),
            format!(
                "{:.1} | {:.1}",
                r.nats_idle_share * 100.0,
                r.nats_net_us_per_op()
            ),
        )
    };
    format!(
        "| {name} | {n} | {size} | {load} | {:.0} | {}/{} | {:.2} | {} | {} | {nats} | {:.0} | {idle} |",
        r.rate(),
        r.delivered,
        r.expected,
        r.p99_ms,
        relay(0),
        relay(1),
        r.sent as f64 / r.publish_seconds.max(1e-9),
    )
}

/// Writes a split row where `--split-rows` says (else to stderr).
fn emit_split(opts: &Options, row: String) {
    use std::io::Write;
    let written = opts.split_rows.as_ref().map(|path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| writeln!(f, "{row}"))
            .map_err(|e| eprintln!("fanout: writing {path}: {e}"))
    });
    if !matches!(written, Some(Ok(()))) {
        eprintln!("{row}");
    }
}

/// The best step at which the target kept up, and why it stopped there.
struct Peak {
    best: Option<StepReport>,
    stopped_by: String,
}

/// Steps the rate up (doubling, then one step between the last pass and
/// the first failure) until p99 or delivery falls past the limits.
async fn step_up<T: Target>(
    target: &mut T,
    opts: &Options,
    subscribers: usize,
    payload_bytes: usize,
) -> Peak {
    let mut step = 0;
    let mut best: Option<StepReport> = None;
    let mut failed: Option<(u64, String)> = None;
    let mut rate = opts.start_rate;
    let mut run = async |rate: u64, step: &mut u32| -> Result<StepReport, String> {
        let cfg = StepConfig {
            subscribers,
            payload_bytes,
            deliveries_per_sec: rate,
            seconds: opts.seconds,
            batch: opts.batch,
        };
        *step += 1;
        match run_step(target, *step, &cfg).await {
            Ok(r) => {
                log_step(target.name(), &cfg, &r);
                match opts.passes(&r) {
                    Ok(()) => Ok(r),
                    Err(why) => Err(why),
                }
            }
            Err(e) => {
                eprintln!(
                    "  {} N={subscribers} target {rate}/s: failed: {e:#}",
                    target.name()
                );
                Err(format!("error at {rate}/s: {e:#}"))
            }
        }
    };
    let mut halvings = 0;
    loop {
        match run(rate, &mut step).await {
            Ok(r) => {
                best = Some(r);
                if rate >= opts.max_rate || failed.is_some() {
                    break;
                }
                rate = (rate * 2).min(opts.max_rate);
            }
            Err(why) => {
                failed = Some((rate, why));
                // Below the start rate: step down until one passes.
                if best.is_some() || halvings == 3 {
                    break;
                }
                halvings += 1;
                rate /= 2;
            }
        }
    }
    if let (Some(b), Some((fail_rate, _))) = (&best, &failed) {
        let between =
            ((b.target_rate as f64 * *fail_rate as f64).sqrt() / 1000.0).round() as u64 * 1000;
        if between > b.target_rate && between < *fail_rate {
            match run(between, &mut step).await {
                Ok(r) => best = Some(r),
                Err(why) => failed = Some((between, why)),
            }
        }
    }
    let generator_bound = best
        .as_ref()
        .is_some_and(|b| b.generator_bound(opts.seconds));
    let mut stopped_by = match failed {
        Some((_, why)) => why,
        None => format!("reached --max-rate {}/s", opts.max_rate),
    };
    if generator_bound {
        stopped_by.push_str("; generator saturated at the peak (a lower bound)");
    }
    Peak { best, stopped_by }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

fn list(name: &str, default: &str) -> Vec<usize> {
    arg(name)
        .unwrap_or_else(|| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn parsed<T: std::str::FromStr>(name: &str, default: T) -> T {
    arg(name).and_then(|s| s.parse().ok()).unwrap_or(default)
}

const HEADER: &str = "| server | persisted | subscribers | payload B | peak deliveries/s | delivered/expected | p50 ms | p99 ms | max ms | server CPU µs per delivery | server peak RSS MiB | generator CPU % | stopped by |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |";

fn row(
    name: &str,
    persisted: &str,
    n: usize,
    size: usize,
    r: &StepReport,
    stopped_by: &str,
) -> String {
    format!(
        "| {name} | {persisted} | {n} | {size} | {:.0} | {}/{} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {:.0} | {stopped_by} |",
        r.rate(),
        r.delivered,
        r.expected,
        r.p50_ms,
        r.p99_ms,
        r.max_ms,
        r.cpu_us_per_delivery(),
        r.rss_mib,
        r.generator_cpu_pct,
    )
}

/// Measures one target over the matrix; prints one row per configuration.
async fn measure<T: Target>(target: &mut T, opts: &Options, n: usize, size: usize) {
    let name = target.name().to_owned();
    let persisted = target.persisted().to_owned();
    match opts.fixed_rate {
        Some(rate) => {
            let cfg = StepConfig {
                subscribers: n,
                payload_bytes: size,
                deliveries_per_sec: rate,
                seconds: opts.seconds,
                batch: opts.batch,
            };
            match run_step(target, 1, &cfg).await {
                Ok(r) => {
                    log_step(&name, &cfg, &r);
                    let verdict = match opts.passes(&r) {
                        Ok(()) => "kept up".to_owned(),
                        Err(why) => why,
                    };
                    println!("{}", row(&name, &persisted, n, size, &r, &verdict));
                    if !r.relays.is_empty() {
                        emit_split(opts, split_row(&name, n, size, &format!("{rate}/s"), &r));
                    }
                }
                Err(e) => println!(
                    "| {name} | {persisted} | {n} | {size} | failed: {e:#} | | | | | | | | |"
                ),
            }
        }
        None => {
            let peak = step_up(target, opts, n, size).await;
            match peak.best {
                Some(r) => {
                    println!("{}", row(&name, &persisted, n, size, &r, &peak.stopped_by));
                    if !r.relays.is_empty() {
                        emit_split(opts, split_row(&name, n, size, "peak", &r));
                    }
                }
                None => println!(
                    "| {name} | {persisted} | {n} | {size} | below {}/s | | | | | | | | {} |",
                    opts.start_rate, peak.stopped_by
                ),
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    let opts = Options {
        subscribers: list("--subscribers", "100,500,1000"),
        payload_bytes: list("--payload-bytes", "200"),
        fixed_rate: if flag("--step-up") {
            None
        } else {
            Some(parsed("--deliveries-per-sec", 100_000))
        },
        start_rate: parsed("--start-rate", 25_000),
        max_rate: parsed("--max-rate", 3_200_000),
        seconds: parsed("--seconds", 5.0),
        p99_limit_ms: parsed("--p99-limit-ms", 100.0),
        min_delivered: parsed("--min-delivered", 0.999),
        batch: flag("--batch"),
        split_rows: arg("--split-rows"),
    };
    if flag("--header-only") {
        println!("{HEADER}");
        return Ok(());
    }
    if flag("--split-header-only") {
        println!("{SPLIT_HEADER}");
        return Ok(());
    }
    let nats_nodes: usize = parsed("--nats-nodes", 3);
    let target = arg("--target").unwrap_or_else(|| "spoke".into());
    let addr = arg("--addr");
    let pid: Option<u32> = arg("--pid").and_then(|p| p.parse().ok());
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
    if !flag("--no-header") {
        println!("{HEADER}");
    }
    let peer = |default_port: u16| -> anyhow::Result<(String, u32)> {
        let addr = addr
            .clone()
            .unwrap_or_else(|| format!("127.0.0.1:{default_port}"));
        let pid = pid.ok_or_else(|| {
            anyhow::anyhow!(
                "--target {target} needs --pid of the running server (see benches/peers.sh)"
            )
        })?;
        Ok((addr, pid))
    };
    for &n in &opts.subscribers {
        for &size in &opts.payload_bytes {
            let outcome = rt.block_on(async {
                match target.as_str() {
                    "spoke" | "spoke-js" | "spoke-js2" => {
                        let (storage, relays) = match target.as_str() {
                            "spoke" => (spoke::Storage::Redb, 1),
                            "spoke-js" => (spoke::Storage::JetStream { nodes: nats_nodes }, 1),
                            _ => (spoke::Storage::JetStream { nodes: nats_nodes }, 2),
                        };
                        let mut t = spoke::SpokeRelay::start_with(storage, relays).await?;
                        measure(&mut t, &opts, n, size).await;
                    }
                    "y-sweet" => {
                        let (addr, pid) = peer(8080)?;
                        measure(&mut ysweet::YSweet::new(addr, pid), &opts, n, size).await;
                    }
                    "y-websocket" => {
                        let (addr, pid) = peer(1234)?;
                        measure(&mut ywebsocket::YWebsocket::new(addr, pid), &opts, n, size).await;
                    }
                    "nats" | "nats-jetstream" => {
                        let (addr, pid) = peer(8222)?;
                        let mut t = nats::Nats::new(addr, pid, target == "nats-jetstream");
                        measure(&mut t, &opts, n, size).await;
                    }
                    other => anyhow::bail!(
                        "unknown --target {other}; one of spoke, spoke-js, spoke-js2, y-sweet, y-websocket, nats, nats-jetstream"
                    ),
                }
                anyhow::Ok(())
            });
            if let Err(e) = outcome {
                println!("| {target} | | {n} | {size} | failed: {e:#} | | | | | | | | |");
            }
        }
    }
    Ok(())
}
