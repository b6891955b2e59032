//! Integration tests of the client's sync engine: two replicas converging
//! through a real relay, a client killed mid-push, a relay restarted
//! mid-catch-up, a scripted relay that forges a gap, revoked and bad tokens,
//! offline-first use, `spoke status`, pushing ops too big for count-only
//! framing, and a join refused for another member's token.
//!
//! The relay runs in-process on its own thread and runtime (see [`RelayHost`]),
//! so stopping it can cut connections mid-stream the way a crash would, and a
//! new relay can take over its data folder and port. Clients run either
//! through the library (`spoke::sync`) or as the built `spoke` binary against
//! a temporary `--home`, an empty `--config` and a scrubbed environment. Every
//! wait is bounded, so a broken engine fails a test instead of hanging it.

mod common_cli;

use common_cli::{assert_success, base_command, parse_json, stderr, stdout};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use spoke::model::brief::thread_id_for_brief;
use spoke::model::{Change, EntityKind, EntityRef, Op, Role};
use spoke::service::{BriefFilter, Hub, NewBrief, replica_path};
use spoke::store::{Replica, ReplicaMeta};
use spoke::sync::{self, HubAddress, Mode, Session, WatchEvent};
use spoke_relay::auth::Registry;
use spoke_relay::metrics::Metrics;
use spoke_relay::proto::{self, ClientId, Frame, Hlc, OpId, SeqOp};
use spoke_relay::relay::RelayConfig;
use spoke_relay::store::RedbLog;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Longest any single wait may take.
const TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// An in-process relay on its own thread and runtime.
// ---------------------------------------------------------------------------

/// A relay serving `data` on 127.0.0.1. It runs on a runtime of its own, so
/// stopping it can end it like a process exit: `Running::shutdown` for a
/// grace period, then the runtime is torn down, which cuts any connection
/// still streaming (a catch-up in progress) mid-stream.
struct RelayHost {
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    stop: Option<std::sync::mpsc::Sender<Duration>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RelayHost {
    /// Starts a relay on `port` (0 for any free port), retrying the bind for
    /// a few seconds so a restart can take over the port just released.
    fn start(data: &Path, port: u16) -> RelayHost {
        type Ready = Result<(SocketAddr, Arc<Metrics>), String>;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Ready>();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<Duration>();
        let data = data.to_owned();
        let thread = std::thread::Builder::new()
            .name("test-relay".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a runtime for the relay");
                let started = rt.block_on(async move {
                    let listener = bind_with_retry(port).await?;
                    spoke_relay::server::start(listener, RelayConfig::new(data)).await
                });
                let running = match started {
                    Ok(r) => {
                        let _ = ready_tx.send(Ok((r.addr, r.relay.metrics.clone())));
                        r
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("{e:#}")));
                        return;
                    }
                };
                // Serve until told to stop (or until the host is dropped).
                let grace = stop_rx.recv().unwrap_or(GRACEFUL);
                rt.block_on(async move {
                    let _ = tokio::time::timeout(grace, running.shutdown()).await;
                });
                // Whatever still runs (a connection mid-catch-up) dies here.
                rt.shutdown_timeout(Duration::from_secs(5));
            })
            .expect("spawn the relay thread");
        let (addr, metrics) = ready_rx
            .recv_timeout(TIMEOUT)
            .expect("the relay thread reports whether it started")
            .unwrap_or_else(|e| panic!("the relay did not start: {e}"));
        RelayHost {
            addr,
            metrics,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    fn stop_within(&mut self, grace: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(grace);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Stops the relay gracefully (`Running::shutdown`, which lets open
    /// connections finish) and waits until its thread and runtime are gone.
    fn stop(mut self) {
        self.stop_within(GRACEFUL);
    }

    /// Starts a graceful shutdown but gives it only `grace`, then tears the
    /// relay down like a supervisor killing a slow process: a catch-up still
    /// streaming is cut mid-stream.
    fn cut(mut self, grace: Duration) {
        self.stop_within(grace);
    }
}

impl Drop for RelayHost {
    fn drop(&mut self) {
        self.stop_within(GRACEFUL);
    }
}

/// Time a graceful relay shutdown gets before the relay is torn down.
const GRACEFUL: Duration = Duration::from_secs(15);

/// Binds 127.0.0.1:`port`. The relay's send buffer is kept small (accepted
/// sockets inherit it on Linux), so a long catch-up is mostly still in the
/// relay, not in kernel buffers, when the relay stops.
async fn bind_with_retry(port: u16) -> anyhow::Result<tokio::net::TcpListener> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        let attempt = (|| {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.set_reuseaddr(true)?;
            socket.set_send_buffer_size(64 * 1024)?;
            socket.bind(addr)?;
            socket.listen(1024)
        })();
        match attempt {
            Ok(l) => return Ok(l),
            Err(_) if port != 0 && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(anyhow::anyhow!("bind {addr}: {e}")),
        }
    }
}

/// A temporary world: a relay data folder with one hub, the running relay,
/// an empty config file, and room for client homes. Dropping it stops the
/// relay before the files go.
struct World {
    relay: Option<RelayHost>,
    registry: Registry,
    hub: String,
    data: PathBuf,
    config: PathBuf,
    root: TempDir,
}

impl World {
    fn start(hub_name: &str) -> World {
        let root = tempfile::tempdir().expect("a temporary folder");
        let data = root.path().join("relay");
        let registry = Registry::open(&data).expect("open the relay registry");
        let hub = registry.create_hub(hub_name).expect("create a hub").id;
        let config = root.path().join("config.toml");
        std::fs::write(&config, "").expect("write an empty config file");
        let relay = RelayHost::start(&data, 0);
        World {
            relay: Some(relay),
            registry,
            hub,
            data,
            config,
            root,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.relay.as_ref().expect("the relay is running").addr
    }

    fn metrics(&self) -> &Metrics {
        &self.relay.as_ref().expect("the relay is running").metrics
    }

    /// The URL members are given: `ws://127.0.0.1:PORT/v1/hubs/HUB`.
    fn url(&self) -> String {
        format!("ws://{}/v1/hubs/{}", self.addr(), self.hub)
    }

    /// Issues a token; returns the token and its id (for revoking).
    fn token(&self, handle: &str, role: &str) -> (String, String) {
        let (token, record) = self
            .registry
            .issue(&self.hub, handle, role, None)
            .expect("issue a token");
        (token, record.id)
    }

    /// A fresh, empty folder for a client's `--home`.
    fn home(&self, name: &str) -> PathBuf {
        let home = self.root.path().join(name);
        std::fs::create_dir_all(&home).expect("create a home folder");
        home
    }

    fn log_path(&self) -> PathBuf {
        self.data.join("hubs").join(&self.hub).join("log.redb")
    }

    /// Runs the `spoke` binary with `--home HOME --config CONFIG ARGS...`.
    fn spoke(&self, home: &Path, args: &[&str]) -> Output {
        self.command(home, args)
            .output()
            .expect("run the spoke binary")
    }

    /// Runs and asserts exit code 0; returns stdout.
    fn ok(&self, home: &Path, args: &[&str]) -> String {
        let out = self.spoke(home, args);
        assert_success(&out, args);
        stdout(&out)
    }

    /// Runs with `--json`, asserts success and parses stdout.
    fn json(&self, home: &Path, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        parse_json(&self.ok(home, &all), &all)
    }

    fn command(&self, home: &Path, args: &[&str]) -> Command {
        let mut cmd = base_command();
        cmd.arg("--home")
            .arg(home)
            .arg("--config")
            .arg(&self.config)
            .args(args);
        cmd
    }

    /// `spoke hub join URL --token TOKEN --tz UTC` on `home`.
    fn join(&self, home: &Path, token: &str) -> String {
        let url = self.url();
        self.ok(
            home,
            &["hub", "join", &url, "--token", token, "--tz", "UTC"],
        )
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // The relay's files live in `root`: stop it first.
        if let Some(relay) = self.relay.take() {
            relay.stop();
        }
    }
}

/// Runs a future to completion on a small runtime of its own (for plain
/// `#[test]`s that drive the `spoke` binary and need a little async).
fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(f)
}

/// Bounds a wait.
async fn within<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {TIMEOUT:?} waiting for {what}"))
}

/// Polls `check` every 25 ms until it returns `Some`, for at most `limit`.
fn poll_until<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

// ---------------------------------------------------------------------------
// A raw protocol client, to look at the relay's log and to load it quickly.
// ---------------------------------------------------------------------------

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Wire {
    ws: Ws,
    head: u64,
}

impl Wire {
    /// Connects with `Hello` at `cursor` (epoch 0) and reads the `Welcome`.
    async fn connect(url: &str, token: &str, cursor: u64) -> Wire {
        let addr = HubAddress::parse(url).expect("a hub URL");
        let (ws, _) = within(
            "a WebSocket connection",
            tokio_tungstenite::connect_async(addr.ws_url()),
        )
        .await
        .expect("connect to the relay");
        let mut wire = Wire { ws, head: 0 };
        wire.send(&Frame::Hello {
            token: token.to_owned(),
            hub: addr.hub,
            epoch: 0,
            cursor,
        })
        .await;
        match wire.recv().await {
            Frame::Welcome { head, .. } => wire.head = head,
            other => panic!("expected Welcome, got {other:?}"),
        }
        wire
    }

    async fn send(&mut self, frame: &Frame) {
        let bytes = proto::encode_frame(frame).expect("encode a frame");
        within(
            "sending a frame",
            self.ws.send(Message::Binary(bytes.into())),
        )
        .await
        .expect("send a frame");
    }

    async fn recv(&mut self) -> Frame {
        loop {
            match within("a frame from the relay", self.ws.next()).await {
                Some(Ok(Message::Binary(b))) => {
                    return proto::decode_frame(&b).expect("a readable frame");
                }
                Some(Ok(Message::Close(c))) => panic!("the relay closed the connection: {c:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("the connection failed: {e}"),
                None => panic!("the relay closed the connection"),
            }
        }
    }

    /// Submits `ops` in protocol-sized frames (`proto::frame_groups`) and
    /// waits for every ack. At most a few frames are in flight, and whatever the relay sends
    /// meanwhile (acks, our ops fanned back out) is read, so neither side
    /// blocks the other.
    async fn submit_all(&mut self, ops: &[Op]) {
        let sized: Vec<(proto::Op, usize)> = ops
            .iter()
            .map(|op| {
                let wire = op.to_wire();
                let size = proto::encode_op(&wire).expect("encode an op").len();
                (wire, size)
            })
            .collect();
        let (mut sent, mut acked) = (0, 0);
        for group in proto::frame_groups(sized, |(_, size)| *size) {
            sent += group.len();
            let ops = group.into_iter().map(|(op, _)| op).collect();
            self.send(&Frame::Submit { ops }).await;
            while sent - acked > 1_024 {
                acked += self.recv_acks().await;
            }
        }
        while acked < ops.len() {
            acked += self.recv_acks().await;
        }
    }

    /// The number of ops the next frame acknowledges (0 for other frames).
    async fn recv_acks(&mut self) -> usize {
        match self.recv().await {
            Frame::Ack { acks } => acks.len(),
            Frame::Error { code, message, .. } => panic!("the relay refused: {code:?} {message}"),
            _ => 0, // our own ops fanned back out, presence, ...
        }
    }

    /// Reads the hub's whole log (seq 1 to the head announced in `Welcome`).
    async fn read_log(url: &str, token: &str) -> Vec<SeqOp> {
        let mut wire = Wire::connect(url, token, 0).await;
        let mut log: Vec<SeqOp> = Vec::new();
        while log.last().map_or(0, |o| o.seq) < wire.head {
            if let Frame::Ops { ops, .. } = wire.recv().await {
                log.extend(ops);
            }
        }
        let _ = wire.ws.close(None).await;
        log
    }
}

/// Checks a log read from the relay: seqs 1..=len in order, every op id
/// (client, client seq) once. Returns the op ids by client.
fn check_log(log: &[SeqOp]) -> BTreeMap<u64, BTreeSet<u64>> {
    let mut by_client: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    for (i, entry) in log.iter().enumerate() {
        assert_eq!(entry.seq, i as u64 + 1, "the relay's log is not contiguous");
        let op = Op::decode(&entry.op).expect("a readable op in the relay's log");
        assert!(
            by_client
                .entry(op.id.client.0)
                .or_default()
                .insert(op.id.seq),
            "op {} is in the relay's log twice (again at seq {})",
            op.id,
            entry.seq
        );
    }
    by_client
}

fn set_fields(pairs: &[(&str, Value)]) -> Change {
    Change::Set(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

/// An op of a foreign client, with a clock reading that grows with `seq`.
fn foreign_op(client: u64, seq: u64, actor: &str, entity: EntityRef, change: Change) -> Op {
    Op {
        id: OpId {
            client: ClientId(client),
            seq,
        },
        hlc: Hlc {
            wall_ms: 1_764_000_000_000 + seq,
            logical: 0,
        },
        actor: actor.to_owned(),
        entity,
        change,
    }
}

fn brief_count(home: &Path) -> usize {
    Hub::open(home, None)
        .expect("open the hub")
        .briefs(&BriefFilter::default())
        .expect("list briefs")
        .len()
}

fn u64_field(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("`{key}` should be a number in {v}"))
}

// ---------------------------------------------------------------------------
// 1. Convergence of conflicting offline edits.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Home {
    A,
    B,
}

/// Two members edit the same brief offline, then sync in `order`. Both must
/// end with the same state: B's later title, A's audience, B's objective and
/// both comments.
async fn conflicting_offline_edits_converge(order: [Home; 3]) {
    let world = World::start("Convergence");
    let (ana, _) = world.token("ana", "lead");
    let (kenji, _) = world.token("kenji", "creative");
    let (a, b) = (world.home("a"), world.home("b"));
    let url = world.url();
    let (welcome_a, _) = within("ana joining", sync::join(&a, &url, &ana, None))
        .await
        .expect("ana joins");
    assert_eq!(welcome_a.member, "ana");
    let (welcome_b, _) = within("kenji joining", sync::join(&b, &url, &kenji, None))
        .await
        .expect("kenji joins");
    assert_eq!(welcome_b.member, "kenji");

    let brief_id = {
        let mut hub = Hub::open(&a, None).expect("open A");
        hub.add_brief(NewBrief {
            title: "Original title".into(),
            ..NewBrief::default()
        })
        .expect("add a brief on A")
        .id
    };
    within("A pushing", sync::sync_once(&a))
        .await
        .expect("sync A");
    // kenji, a creative, may edit the brief once it is assigned to him (A
    // knows him now: his role reached the hub's log when he joined).
    Hub::open(&a, None)
        .expect("open A")
        .assign_brief(&brief_id, "kenji", false)
        .expect("assign kenji");
    within("A pushing the assignment", sync::sync_once(&a))
        .await
        .expect("sync A");
    within("B pulling", sync::sync_once(&b))
        .await
        .expect("sync B");
    assert_eq!(
        Hub::open(&b, None)
            .expect("open B")
            .brief(&brief_id)
            .expect("B has the brief")
            .title,
        "Original title"
    );

    // Offline: A first, then (a few ms later, so a later clock) B.
    let thread = EntityRef::new(EntityKind::Thread, thread_id_for_brief(&brief_id));
    {
        let mut hub = Hub::open(&a, None).expect("open A");
        hub.set_brief_fields(
            &brief_id,
            &[
                ("title".into(), "A's title".into()),
                ("audience".into(), "A's audience".into()),
            ],
        )
        .expect("A edits");
        hub.commit(vec![(
            thread.clone(),
            Change::Append(json!({"body": "comment from ana"})),
        )])
        .expect("A comments");
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    {
        let mut hub = Hub::open(&b, None).expect("open B");
        hub.set_brief_fields(
            &brief_id,
            &[
                ("title".into(), "B's title".into()),
                ("objective".into(), "B's objective".into()),
            ],
        )
        .expect("B edits");
        hub.commit(vec![(
            thread.clone(),
            Change::Append(json!({"body": "comment from kenji"})),
        )])
        .expect("B comments");
    }

    for home in order {
        let path = match home {
            Home::A => &a,
            Home::B => &b,
        };
        within("a sync", sync::sync_once(path))
            .await
            .unwrap_or_else(|e| panic!("sync {home:?}: {e:#}"));
    }

    let (hub_a, hub_b) = (
        Hub::open(&a, None).expect("open A"),
        Hub::open(&b, None).expect("open B"),
    );
    for (name, hub) in [("A", &hub_a), ("B", &hub_b)] {
        let brief = hub.brief(&brief_id).expect("the brief");
        assert_eq!(brief.title, "B's title", "{name}: the later title wins");
        assert_eq!(
            brief.audience.as_deref(),
            Some("A's audience"),
            "{name}: A's audience survives"
        );
        assert_eq!(
            brief.objective.as_deref(),
            Some("B's objective"),
            "{name}: B's objective survives"
        );
        let comments: BTreeSet<(String, String)> = hub
            .replica()
            .items(&thread)
            .expect("read the comments")
            .into_iter()
            .map(|(_, item)| {
                (
                    item.actor.clone(),
                    item.value["body"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            comments,
            BTreeSet::from([
                ("ana".to_owned(), "comment from ana".to_owned()),
                ("kenji".to_owned(), "comment from kenji".to_owned()),
            ]),
            "{name}: both comments, each once"
        );
        assert_eq!(hub.replica().pending_count().expect("pending"), 0, "{name}");
    }
    assert_eq!(
        hub_a.replica().state_hash().expect("hash A"),
        hub_b.replica().state_hash().expect("hash B"),
        "the replicas must converge to the same state"
    );
    assert_eq!(
        hub_a.replica().log_len().expect("log A"),
        hub_b.replica().log_len().expect("log B")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_converge_after_conflicting_offline_edits() {
    conflicting_offline_edits_converge([Home::A, Home::B, Home::A]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_converge_after_conflicting_offline_edits_synced_in_the_other_order() {
    conflicting_offline_edits_converge([Home::B, Home::A, Home::B]).await;
}

// ---------------------------------------------------------------------------
// 2. A client killed mid-sync loses nothing and duplicates nothing.
// ---------------------------------------------------------------------------

fn kill_9(child: &mut Child) {
    // `Child::kill` is SIGKILL on Unix.
    child.kill().expect("kill the sync process");
    child.wait().expect("reap the sync process");
}

#[test]
fn pending_ops_survive_a_killed_client_and_arrive_exactly_once() {
    let world = World::start("Crash");
    let (ana, _) = world.token("ana", "lead");
    let (cara, _) = world.token("cara", "creative");
    let a = world.home("a");
    world.join(&a, &ana);

    const BRIEFS: usize = 1_000;
    let client_a = {
        let mut hub = Hub::open(&a, None).expect("open A");
        for i in 0..BRIEFS {
            hub.add_brief(NewBrief {
                title: format!("Brief {i:04}"),
                ..NewBrief::default()
            })
            .expect("add a brief");
        }
        hub.meta().client_id.0
    };
    let status = world.json(&a, &["status"]);
    assert_eq!(u64_field(&status, "pending"), BRIEFS as u64);

    // Kill `sync --watch` at a few points of its life; each run may have
    // pushed some, all or none of the queue when it dies.
    let mut trace = Vec::new();
    let start_watch = || {
        world
            .command(&a, &["sync", "--watch"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start spoke sync --watch")
    };
    let pending_now = || u64_field(&world.json(&a, &["status"]), "pending");
    // First the moment the relay has stored part of the queue, before the
    // client can have taken the acks in ...
    let stored = world.metrics().ops_stored.load(Relaxed);
    let mut child = start_watch();
    let deadline = Instant::now() + TIMEOUT;
    while world.metrics().ops_stored.load(Relaxed) == stored {
        assert!(Instant::now() < deadline, "the watch never pushed anything");
        std::thread::sleep(Duration::from_millis(1));
    }
    kill_9(&mut child);
    trace.push(format!(
        "killed once the relay stored ops: {} pending",
        pending_now()
    ));
    // ... then at a few points of its life.
    for delay_ms in [40u64, 150, 250] {
        let mut child = start_watch();
        std::thread::sleep(Duration::from_millis(delay_ms));
        kill_9(&mut child);
        trace.push(format!(
            "killed after {delay_ms} ms: {} pending",
            pending_now()
        ));
    }
    eprintln!("{}", trace.join("; "));
    let out = world.spoke(&a, &["sync", "--once"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "sync --once after the kills ({}): {}",
        trace.join("; "),
        stderr(&out)
    );
    let status = world.json(&a, &["status"]);
    assert_eq!(u64_field(&status, "pending"), 0, "{status}");
    assert_eq!(
        u64_field(&status, "cursor"),
        u64_field(&status, "head"),
        "{status}"
    );

    let c = world.home("c");
    world.join(&c, &cara);
    let log = block_on(Wire::read_log(&world.url(), &cara));
    let by_client = check_log(&log);
    let head = log.len() as u64;
    // ana's member record (added by `hub join`) and the briefs, each once.
    let expected: BTreeSet<u64> = (1..=BRIEFS as u64 + 1).collect();
    assert_eq!(
        by_client.get(&client_a),
        Some(&expected),
        "every op of A's queue is in the relay's log exactly once ({})",
        trace.join("; ")
    );
    let replica_c = Replica::open(&replica_path(&c)).expect("open C");
    assert_eq!(replica_c.log_len().expect("C's log"), head);
    assert_eq!(replica_c.meta().expect("C's meta").cursor, head);
    drop(replica_c);
    assert_eq!(brief_count(&c), BRIEFS);
    let status_a = world.json(&a, &["sync", "--once"]);
    assert_eq!(u64_field(&status_a, "pushed"), 0);
    assert_eq!(brief_count(&a), BRIEFS);
    eprintln!(
        "the relay saw {} resent ops (stored once each)",
        world.metrics().ops_duplicate.load(Relaxed)
    );
}

// ---------------------------------------------------------------------------
// 3. A gap in what the relay sends is refetched, never applied past.
// ---------------------------------------------------------------------------

async fn next_client_frame(ws: &mut WebSocketStream<TcpStream>) -> Option<Frame> {
    loop {
        match within("a frame from the client", ws.next()).await {
            Some(Ok(Message::Binary(b))) => {
                return Some(proto::decode_frame(&b).expect("a readable frame from the client"));
            }
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(_)) => continue,
        }
    }
}

async fn send_to_client(ws: &mut WebSocketStream<TcpStream>, frame: &Frame) {
    let bytes = proto::encode_frame(frame).expect("encode a frame");
    within(
        "sending to the client",
        ws.send(Message::Binary(bytes.into())),
    )
    .await
    .expect("send to the client");
}

/// What the replica held when the client asked for the missing range.
#[derive(Debug, PartialEq)]
struct AtFetch {
    from: u64,
    cursor: u64,
    log_len: u64,
    title: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_gap_is_refetched_and_never_applied_out_of_order() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let brief = EntityRef::new(EntityKind::Brief, "b-forged01");
    // Seq 1 is the relay's grant of kenji's role; his titles follow.
    let seq_ops: Vec<SeqOp> = (1..=5u64)
        .map(|seq| {
            let op = if seq == 1 {
                Op::relay_grant(1, "kenji", Role::Creative, 1)
            } else {
                foreign_op(
                    0xf0_0d,
                    seq,
                    "kenji",
                    brief.clone(),
                    set_fields(&[("title", json!(format!("title {seq}")))]),
                )
            };
            SeqOp {
                seq,
                op: op.encode().expect("encode an op"),
            }
        })
        .collect();
    let pick = |seqs: &[u64]| -> Vec<SeqOp> {
        seqs.iter()
            .map(|s| seq_ops[*s as usize - 1].clone())
            .collect()
    };

    let meta = ReplicaMeta {
        me: Some("ana".into()),
        hub_id: Some("h-fake".into()),
        ..ReplicaMeta::new(ClientId(0xa11ce))
    };
    let replica = Arc::new(
        Replica::create(&dir.path().join("replica.redb"), &meta).expect("create a replica"),
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("the fake relay's address");
    let observer = replica.clone();
    let (first, gapped, refill) = (pick(&[1, 2]), pick(&[4, 5]), pick(&[3, 4, 5]));
    let fake = tokio::spawn(async move {
        let (stream, _) = within("the client connecting", listener.accept())
            .await
            .expect("accept");
        let mut ws = within(
            "the WebSocket handshake",
            tokio_tungstenite::accept_async(stream),
        )
        .await
        .expect("WebSocket handshake");
        match next_client_frame(&mut ws).await {
            Some(Frame::Hello { hub, cursor, .. }) => {
                assert_eq!((hub.as_str(), cursor), ("h-fake", 0));
            }
            other => panic!("expected Hello, got {other:?}"),
        }
        let welcome = Frame::Welcome {
            member: "ana".into(),
            role: "lead".into(),
            hub_name: "Fake".into(),
            epoch: 7,
            head: 5,
        };
        send_to_client(&mut ws, &welcome).await;
        send_to_client(
            &mut ws,
            &Frame::Ops {
                from: 1,
                ops: first,
            },
        )
        .await;
        send_to_client(
            &mut ws,
            &Frame::Ops {
                from: 4,
                ops: gapped,
            },
        )
        .await;
        let mut before_fetch = Vec::new();
        let at_fetch = loop {
            match next_client_frame(&mut ws).await {
                Some(Frame::Fetch { from }) => {
                    let m = observer.meta().expect("the replica's meta");
                    let title = observer
                        .record(&EntityRef::new(EntityKind::Brief, "b-forged01"))
                        .expect("read the brief")
                        .and_then(|r| r.string("title"));
                    break AtFetch {
                        from,
                        cursor: m.cursor,
                        log_len: observer.log_len().expect("log length"),
                        title,
                    };
                }
                Some(other) => before_fetch.push(other),
                None => panic!("the client left without asking for the gap: {before_fetch:?}"),
            }
        };
        send_to_client(
            &mut ws,
            &Frame::Ops {
                from: 3,
                ops: refill,
            },
        )
        .await;
        let mut after_fetch = Vec::new();
        while let Some(frame) = next_client_frame(&mut ws).await {
            after_fetch.push(frame);
        }
        (at_fetch, before_fetch, after_fetch)
    });

    let url = format!("ws://{addr}/v1/hubs/h-fake");
    let hub_addr = HubAddress::parse(&url).expect("a hub URL");
    let session = within(
        "the session",
        Session::connect(&hub_addr, "spk_fake_secret", 0, 0, None),
    )
    .await
    .expect("connect to the fake relay");
    assert_eq!(session.welcome.epoch, 7);
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let report = within(
        "the session",
        session.run(replica.clone(), Mode::Once, stop, None),
    )
    .await
    .expect("the session ends cleanly");
    let (at_fetch, before_fetch, after_fetch) = within("the fake relay", fake)
        .await
        .expect("the fake relay");

    assert_eq!(
        at_fetch,
        AtFetch {
            from: 3,
            cursor: 2,
            log_len: 2,
            title: Some("title 2".into()),
        },
        "when asking for the gap, the replica must hold exactly seqs 1-2"
    );
    let stray: Vec<&Frame> = before_fetch
        .iter()
        .chain(&after_fetch)
        .filter(|f| {
            !matches!(
                f,
                Frame::Ping { .. } | Frame::Pong { .. } | Frame::Presence(_)
            )
        })
        .collect();
    assert!(
        stray.is_empty(),
        "unexpected frames from the client: {stray:?}"
    );
    assert_eq!(report.gaps_refetched, 1, "{report:?}");
    assert_eq!(
        (report.cursor, report.head, report.pulled),
        (5, 5, 5),
        "{report:?}"
    );
    let meta = replica.meta().expect("meta");
    assert_eq!((meta.cursor, meta.epoch), (5, 7));
    assert_eq!(replica.log_len().expect("log length"), 5);
    let title = replica
        .record(&brief)
        .expect("read the brief")
        .and_then(|r| r.string("title"));
    assert_eq!(title.as_deref(), Some("title 5"));
}

// ---------------------------------------------------------------------------
// 4. A catch-up cut by a relay restart resumes where it stopped.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_resumes_a_catch_up_after_the_relay_restarts() {
    const OPS: u64 = 20_000;
    // The relay's grants of ana's and kenji's roles come with the load.
    const HEAD: u64 = OPS + 2;
    let mut world = World::start("Big");
    let (ana, _) = world.token("ana", "lead");
    let (kenji, _) = world.token("kenji", "creative");
    let (maya, _) = world.token("maya", "reviewer");
    let url = world.url();
    let port = world.addr().port();

    // Load the hub: 2,000 briefs edited ten times each, with some bulk so
    // the catch-up is tens of megabytes and cannot sit whole in socket buffers.
    let filler = "lorem ipsum dolor sit amet ".repeat(50);
    let ops: Vec<Op> = (1..=OPS)
        .map(|seq| {
            foreign_op(
                0x5eed,
                seq,
                "ana",
                EntityRef::new(EntityKind::Brief, format!("b-{:08}", seq % 2_000)),
                set_fields(&[
                    (
                        "title",
                        json!(format!("Brief {} v{}", seq % 2_000, seq / 2_000)),
                    ),
                    ("objective", json!(format!("{filler}{seq}"))),
                ]),
            )
        })
        .collect();
    let mut loader = Wire::connect(&url, &ana, 0).await;
    loader.submit_all(&ops).await;
    let _ = loader.ws.close(None).await;

    // kenji's replica, exactly as `spoke hub join` leaves it before its first
    // sync; then a watch catches up from zero.
    let home = world.home("kenji");
    let meta = ReplicaMeta {
        me: Some("kenji".into()),
        hub_id: Some(world.hub.clone()),
        hub_url: Some(url.clone()),
        hub_token: Some(kenji.clone()),
        ..ReplicaMeta::new(spoke::model::ids::new_client_id())
    };
    drop(Replica::create(&replica_path(&home), &meta).expect("create kenji's replica"));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel::<WatchEvent>();
    let watch_home = home.clone();
    let watcher = tokio::spawn(async move {
        sync::watch(&watch_home, stop, None, None, move |e| {
            let _ = events_tx.send(e);
        })
        .await
    });

    match within("the first connection", events.recv()).await {
        Some(WatchEvent::Connected(w)) => assert_eq!(w.head, HEAD),
        other => panic!("expected a connection, got {other:?}"),
    }
    // Cut the catch-up once part of it is applied: the relay is told to shut
    // down and, 100 ms later, is gone.
    {
        let home = home.clone();
        within(
            "the first ops of the catch-up",
            tokio::task::spawn_blocking(move || {
                let deadline = Instant::now() + TIMEOUT;
                while sync::status(&home).map_or(0, |s| s.cursor) == 0 {
                    assert!(Instant::now() < deadline, "the catch-up never started");
                    std::thread::sleep(Duration::from_millis(2));
                }
            }),
        )
        .await
        .expect("poll the cursor");
    }
    let relay = world.relay.take().expect("the relay");
    within(
        "stopping the relay",
        tokio::task::spawn_blocking(move || relay.cut(Duration::from_millis(100))),
    )
    .await
    .expect("stop the relay");
    let error = match within("the watch noticing", events.recv()).await {
        Some(WatchEvent::Retrying { error, .. }) => error,
        other => panic!("expected a retry after the relay stopped, got {other:?}"),
    };
    let cut_at = sync::status(&home).expect("status").cursor;
    eprintln!("catch-up cut at cursor {cut_at} of {OPS}: {error}");
    assert!(
        cut_at < HEAD,
        "the relay stopped only after the catch-up was complete (cursor {cut_at}); \
         this test needs a bigger log to cut it midway"
    );
    // The old relay's files are released once its last task is gone.
    let log_path = world.log_path();
    poll_until("the old relay to release the hub log", TIMEOUT, || {
        RedbLog::open(&log_path).ok().map(drop)
    });
    world.relay = Some(RelayHost::start(&world.data, port));
    assert_eq!(world.addr().port(), port);
    let metrics = world.relay.as_ref().expect("the new relay").metrics.clone();

    let caught_up = {
        let home = home.clone();
        tokio::task::spawn_blocking(move || {
            poll_until(
                "the watch to catch up after the restart",
                Duration::from_secs(60),
                || {
                    // Opening the replica takes a while; do not crowd the watch.
                    std::thread::sleep(Duration::from_millis(200));
                    let s = sync::status(&home).ok()?;
                    (s.cursor >= HEAD).then_some(s)
                },
            )
        })
        .await
        .expect("poll the status")
    };
    assert_eq!(caught_up.cursor, HEAD);
    assert_eq!(caught_up.pending, 0);
    stop_tx.send(true).expect("stop the watch");
    within("the watch to stop", watcher)
        .await
        .expect("the watch task")
        .expect("the watch ends without error");
    let mut later_events = Vec::new();
    while let Ok(e) = events.try_recv() {
        later_events.push(e);
    }
    assert!(
        later_events
            .iter()
            .any(|e| matches!(e, WatchEvent::Connected(w) if w.head == HEAD)),
        "the watch reconnected to the restarted relay: {later_events:?}"
    );

    assert_eq!(
        metrics.deliveries.load(Relaxed),
        HEAD - cut_at,
        "the watch resumed from its cursor ({cut_at}) instead of starting over"
    );
    let kenji_replica = Replica::open(&replica_path(&home)).expect("open kenji's replica");
    assert_eq!(
        kenji_replica.log_len().expect("log length"),
        HEAD,
        "the log is contiguous: seqs 1..={HEAD}, each once (cut at {cut_at}: {error})"
    );
    let reference = world.home("maya");
    let (_, report) = within("a one-go join", sync::join(&reference, &url, &maya, None))
        .await
        .expect("maya joins");
    assert_eq!(report.cursor, HEAD + 1, "and maya's own grant");
    drop(kenji_replica);
    within("kenji catching maya's grant", sync::sync_once(&home))
        .await
        .expect("kenji syncs");
    let kenji_replica = Replica::open(&replica_path(&home)).expect("open kenji's replica");
    let maya_replica = Replica::open(&replica_path(&reference)).expect("open maya's replica");
    assert_eq!(
        kenji_replica.state_hash().expect("hash"),
        maya_replica.state_hash().expect("hash"),
        "a catch-up resumed after a restart gives the same state as one in one go"
    );
    assert_eq!(brief_count(&home), 2_000);
}

// ---------------------------------------------------------------------------
// 5. Bad and revoked tokens.
// ---------------------------------------------------------------------------

#[test]
fn a_wrong_token_gives_a_clear_error_in_status_and_the_sync_exit_code() {
    let world = World::start("Tokens");
    let (ana, ana_id) = world.token("ana", "lead");
    let a = world.home("a");
    world.join(&a, &ana);
    world.ok(
        &a,
        &["brief", "add", "--title", "Written before the revocation"],
    );
    world
        .registry
        .revoke(&world.hub, &ana_id)
        .expect("revoke ana's token");

    let out = world.spoke(&a, &["sync", "--once"]);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "sync with a revoked token: {err}"
    );
    assert!(
        err.contains("revoked") && err.contains("unauthorized"),
        "the error should say the token was revoked: {err}"
    );
    let status = world.json(&a, &["status"]);
    let last_error = status["last_error"].as_str().unwrap_or_default();
    assert!(last_error.contains("revoked"), "{status}");
    assert_eq!(
        u64_field(&status, "pending"),
        1,
        "nothing is lost: {status}"
    );

    // A watch gives up at once: retrying cannot fix a revoked token.
    let mut child = world
        .command(&a, &["sync", "--watch"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start spoke sync --watch");
    let exit = poll_until("sync --watch to give up", TIMEOUT, || {
        child.try_wait().expect("poll the watch")
    });
    let out = child.wait_with_output().expect("the watch's output");
    assert_eq!(exit.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("revoked"), "{}", stderr(&out));

    // Joining with a bad token leaves nothing behind.
    let url = world.url();
    for (i, bad) in [
        "spk_aaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".to_owned(),
        ana.clone(),
        "not-a-token".to_owned(),
    ]
    .into_iter()
    .enumerate()
    {
        let fresh = world.home(&format!("fresh-{i}"));
        let out = world.spoke(&fresh, &["hub", "join", &url, "--token", &bad]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "join with {bad}: {err}");
        assert!(err.contains("unauthorized"), "join with {bad}: {err}");
        assert!(
            !replica_path(&fresh).exists(),
            "a failed join must not leave a replica behind ({bad})"
        );
    }
}

// ---------------------------------------------------------------------------
// 6. Offline first: a local hub joins a relay later.
// ---------------------------------------------------------------------------

#[test]
fn local_commands_work_offline_and_flow_on_the_next_sync() {
    let world = World::start("Studio");
    let (ana, _) = world.token("ana", "lead");
    let (kenji, _) = world.token("kenji", "creative");
    let a = world.home("a");
    world.ok(
        &a,
        &[
            "init",
            "--name",
            "Local",
            "--handle",
            "ana",
            "--tz",
            "Europe/Lisbon",
        ],
    );
    for title in ["Offline one", "Offline two"] {
        world.ok(&a, &["brief", "add", "--title", title]);
    }
    let before = world.json(&a, &["status"]);
    assert!(before["url"].is_null(), "{before}");
    let queued = u64_field(&before, "pending");
    assert!(queued >= 3, "init and two briefs are queued: {before}");

    world.join(&a, &ana);
    let after = world.json(&a, &["status"]);
    assert_eq!(u64_field(&after, "pending"), 0, "{after}");
    assert_eq!(
        u64_field(&after, "cursor"),
        u64_field(&after, "head"),
        "{after}"
    );
    assert_eq!(after["url"], json!(world.url()));
    assert_eq!(after["hub"], json!(world.hub));

    let log = block_on(Wire::read_log(&world.url(), &kenji));
    let by_client = check_log(&log);
    let client_a = Replica::open(&replica_path(&a))
        .expect("open A")
        .meta()
        .expect("A's meta")
        .client_id
        .0;
    assert_eq!(
        by_client.get(&client_a).map(BTreeSet::len),
        Some(queued as usize),
        "every queued op reached the relay once"
    );

    let k = world.home("k");
    world.join(&k, &kenji);
    let listed = world.json(&k, &["brief", "list"]);
    let titles: BTreeSet<&str> = listed
        .as_array()
        .expect("a list of briefs")
        .iter()
        .filter_map(|b| b["title"].as_str())
        .collect();
    assert_eq!(titles, BTreeSet::from(["Offline one", "Offline two"]));
}

// ---------------------------------------------------------------------------
// 7. `spoke status`.
// ---------------------------------------------------------------------------

fn sigterm(child: &Child) {
    let done = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(done.success(), "kill -TERM failed");
}

#[test]
fn status_reports_pending_cursor_and_connection() {
    let world = World::start("Status");
    let (ana, _) = world.token("ana", "lead");
    let (kenji, _) = world.token("kenji", "creative");
    let (a, k) = (world.home("a"), world.home("k"));
    world.join(&a, &ana);
    let joined = world.json(&a, &["status"]);
    assert_eq!(joined["url"], json!(world.url()), "{joined}");
    assert_eq!(joined["hub"], json!(world.hub), "{joined}");
    assert_eq!(joined["hub_name"], json!("Status"), "{joined}");
    assert_eq!(joined["member"], json!("ana"), "{joined}");
    assert_eq!(joined["connected"], json!(false), "{joined}");
    assert!(joined["last_error"].is_null(), "{joined}");
    assert!(joined["last_contact"].is_string(), "{joined}");
    assert_eq!(u64_field(&joined, "pending"), 0, "{joined}");
    let first_head = u64_field(&joined, "head");
    assert_eq!(u64_field(&joined, "cursor"), first_head, "{joined}");

    // kenji writes; ana writes offline.
    world.join(&k, &kenji);
    for title in ["K1", "K2", "K3"] {
        world.ok(&k, &["brief", "add", "--title", title]);
    }
    world.ok(&k, &["sync", "--once"]);
    for title in ["A1", "A2"] {
        world.ok(&a, &["brief", "add", "--title", title]);
    }
    let offline = world.json(&a, &["status"]);
    assert_eq!(u64_field(&offline, "pending"), 2, "{offline}");
    assert_eq!(u64_field(&offline, "cursor"), first_head, "{offline}");
    assert_eq!(u64_field(&offline, "head"), first_head, "{offline}");

    let report = world.json(&a, &["sync", "--once"]);
    assert_eq!(u64_field(&report, "pushed"), 2, "{report}");
    let relay_head = block_on(Wire::read_log(&world.url(), &kenji)).len() as u64;
    assert_eq!(u64_field(&report, "cursor"), relay_head, "{report}");
    let synced = world.json(&a, &["status"]);
    assert_eq!(u64_field(&synced, "pending"), 0, "{synced}");
    assert_eq!(u64_field(&synced, "cursor"), relay_head, "{synced}");
    assert_eq!(u64_field(&synced, "head"), relay_head, "{synced}");
    assert_eq!(synced["connected"], json!(false), "{synced}");
    assert_eq!(brief_count(&a), 5);

    // Connected while a watch runs; not connected once it stops.
    let mut child = world
        .command(&a, &["sync", "--watch"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start spoke sync --watch");
    let live = poll_until("status to show the watch connected", TIMEOUT, || {
        let s = world.json(&a, &["status"]);
        (s["connected"] == json!(true)).then_some(s)
    });
    assert!(live["last_error"].is_null(), "{live}");
    sigterm(&child);
    let exit = poll_until("sync --watch to stop on SIGTERM", TIMEOUT, || {
        child.try_wait().expect("poll the watch")
    });
    assert_eq!(exit.code(), Some(0), "sync --watch ends cleanly on SIGTERM");
    let stopped = world.json(&a, &["status"]);
    assert_eq!(stopped["connected"], json!(false), "{stopped}");
}

// ---------------------------------------------------------------------------
// 8. Big pending ops still fit the relay's frame limit.
// ---------------------------------------------------------------------------

/// 256 pending ops of ~2 KiB each: one `Submit` of 256 ops would be ~550 KiB,
/// over the relay's 256 KiB WebSocket frame limit, so the client has to cut
/// its frames by size, not only by count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_pending_ops_are_pushed_in_frames_the_relay_accepts() {
    let world = World::start("Large");
    let (ana, _) = world.token("ana", "lead");
    let (kenji, _) = world.token("kenji", "creative");
    let a = world.home("a");
    within("ana joining", sync::join(&a, &world.url(), &ana, None))
        .await
        .expect("ana joins");
    {
        let mut hub = Hub::open(&a, None).expect("open A");
        for i in 0..proto::MAX_OPS_PER_FRAME {
            hub.add_brief(NewBrief {
                title: format!("Long brief {i}"),
                objective: Some(format!("{i} {}", "a long objective, ".repeat(120))),
                ..NewBrief::default()
            })
            .expect("add a brief");
        }
    }
    let result = within("pushing big ops", sync::sync_once(&a)).await;
    let report = result.unwrap_or_else(|e| panic!("sync of 256 ops of ~2 KiB failed: {e:#}"));
    assert_eq!(report.pushed, proto::MAX_OPS_PER_FRAME as u64, "{report:?}");
    assert_eq!(sync::status(&a).expect("status").pending, 0);

    let k = world.home("k");
    within("kenji joining", sync::join(&k, &world.url(), &kenji, None))
        .await
        .expect("kenji joins");
    assert_eq!(brief_count(&k), proto::MAX_OPS_PER_FRAME);
}

// ---------------------------------------------------------------------------
// 9. A refused join leaves the replica as it was.
// ---------------------------------------------------------------------------

/// Joining with a token issued for another member is refused, and the refusal
/// must not change the replica: it keeps its own token, URL and cursor, and
/// keeps syncing; a local-only replica stays local.
#[test]
fn joining_with_another_members_token_is_refused_and_changes_nothing() {
    let world = World::start("Identity");
    let (ana, _) = world.token("ana", "lead");
    let (kenji, _) = world.token("kenji", "creative");
    let url = world.url();

    // A joined replica.
    let a = world.home("a");
    world.join(&a, &ana);
    world.ok(&a, &["brief", "add", "--title", "Before the wrong join"]);
    world.ok(&a, &["sync", "--once"]);
    let before = world.json(&a, &["status"]);
    let out = world.spoke(&a, &["hub", "join", &url, "--token", &kenji]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "join with kenji's token: {err}");
    assert!(err.contains("@kenji") && err.contains("@ana"), "{err}");
    let after = world.json(&a, &["status"]);
    assert_eq!(
        (&after["url"], &after["cursor"], &after["member"]),
        (&before["url"], &before["cursor"], &before["member"]),
        "a refused join changed the replica: before {before}, after {after}"
    );
    let out = world.spoke(&a, &["sync", "--once"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "ana's replica must still sync with ana's token after a refused join: {}",
        stderr(&out)
    );

    // A local-only replica.
    let l = world.home("l");
    world.ok(
        &l,
        &["init", "--name", "Local", "--handle", "ana", "--tz", "UTC"],
    );
    let out = world.spoke(&l, &["hub", "join", &url, "--token", &kenji]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let local = world.json(&l, &["status"]);
    assert!(
        local["url"].is_null(),
        "a refused join must leave a local replica unjoined: {local}"
    );
}

/// Serves one session as a fake relay: answers Hello with `welcome`, sends
/// `ops` from seq 1, then acks every Submit until the client leaves. Returns
/// the Hello's (epoch, cursor).
async fn fake_relay_session(
    listener: &tokio::net::TcpListener,
    welcome: Frame,
    ops: Vec<SeqOp>,
) -> (u64, u64) {
    let (stream, _) = within("the client connecting", listener.accept())
        .await
        .expect("accept");
    let mut ws = within("the handshake", tokio_tungstenite::accept_async(stream))
        .await
        .expect("handshake");
    let hello = match next_client_frame(&mut ws).await {
        Some(Frame::Hello { epoch, cursor, .. }) => (epoch, cursor),
        other => panic!("expected Hello, got {other:?}"),
    };
    send_to_client(&mut ws, &welcome).await;
    let mut head = ops.len() as u64;
    if !ops.is_empty() {
        send_to_client(&mut ws, &Frame::Ops { from: 1, ops }).await;
    }
    // Like the relay: sequence each submission, ack it, and send it back.
    while let Some(frame) = next_client_frame(&mut ws).await {
        if let Frame::Submit { ops } = frame {
            let from = head + 1;
            let mut acks = Vec::new();
            let mut echoed = Vec::new();
            for op in ops {
                head += 1;
                acks.push(spoke_relay::proto::AckEntry {
                    id: op.id,
                    seq: head,
                });
                echoed.push(SeqOp {
                    seq: head,
                    op: spoke_relay::proto::encode_op(&op).expect("encode"),
                });
            }
            send_to_client(&mut ws, &Frame::Ack { acks }).await;
            send_to_client(&mut ws, &Frame::Ops { from, ops: echoed }).await;
        }
    }
    hello
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_hub_epoch_replaces_the_old_log_and_keeps_local_pending_ops() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let meta = ReplicaMeta {
        me: Some("ana".into()),
        hub_id: Some("h-fake".into()),
        ..ReplicaMeta::new(ClientId(0xa11ce))
    };
    let replica = Arc::new(
        Replica::create(&dir.path().join("replica.redb"), &meta).expect("create a replica"),
    );
    let old = EntityRef::new(EntityKind::Brief, "b-oldepoch");
    let new = EntityRef::new(EntityKind::Brief, "b-newepoch");
    let seq_op = |seq: u64, entity: &EntityRef, title: &str| SeqOp {
        seq,
        op: foreign_op(
            0xbeef,
            seq,
            "kenji",
            entity.clone(),
            set_fields(&[("title", json!(title))]),
        )
        .encode()
        .expect("encode"),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "ws://{}/v1/hubs/h-fake",
        listener.local_addr().expect("addr")
    );
    let hub_addr = HubAddress::parse(&url).expect("url");
    let welcome = |epoch, head| Frame::Welcome {
        member: "ana".into(),
        role: "lead".into(),
        hub_name: "Fake".into(),
        epoch,
        head,
    };

    let grant = |seq: u64, handle: &str, role: Role| SeqOp {
        seq,
        op: Op::relay_grant(seq, handle, role, 1)
            .encode()
            .expect("encode"),
    };
    // Epoch 7: kenji's role, then two ops about the old brief.
    let first = tokio::spawn({
        let ops = vec![
            grant(1, "kenji", Role::Creative),
            seq_op(2, &old, "b"),
            seq_op(3, &old, "c"),
        ];
        async move {
            let l = listener;
            let hello = fake_relay_session(&l, welcome(7, 3), ops).await;
            (l, hello)
        }
    });
    let session = Session::connect(&hub_addr, "spk_x_y", 0, 0, None)
        .await
        .expect("connect");
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    session
        .run(replica.clone(), Mode::Once, stop.clone(), None)
        .await
        .expect("first session");
    let (listener, _) = within("the first fake session", first).await.expect("fake");
    assert_eq!(replica.meta().expect("meta").cursor, 3);

    // A local change made while the hub was reset.
    replica
        .commit_local(
            "ana",
            vec![(
                EntityRef::new(EntityKind::Brief, "b-mine0001"),
                set_fields(&[("title", json!("mine"))]),
            )],
            1,
        )
        .expect("local change");

    // Epoch 9: a different log. The client's cursor 3 must not be trusted.
    let fresh_ops = vec![
        grant(1, "kenji", Role::Creative),
        grant(2, "ana", Role::Lead),
        seq_op(3, &new, "fresh"),
    ];
    let second =
        tokio::spawn(async move { fake_relay_session(&listener, welcome(9, 3), fresh_ops).await });
    let m = replica.meta().expect("meta");
    let session = Session::connect(&hub_addr, "spk_x_y", m.epoch, m.cursor, None)
        .await
        .expect("connect again");
    let report = session
        .run(replica.clone(), Mode::Once, stop, None)
        .await
        .expect("second session");
    let hello = within("the second fake session", second)
        .await
        .expect("fake");
    assert_eq!(hello, (7, 3), "the client said where it was");

    let meta = replica.meta().expect("meta");
    assert_eq!(
        (meta.epoch, meta.cursor),
        (9, 4),
        "new log plus our echoed op"
    );
    assert_eq!(
        report.pushed, 1,
        "the local change was pushed to the new log"
    );
    assert!(
        replica.record(&old).expect("read").is_none(),
        "the old epoch's state is gone"
    );
    assert_eq!(
        replica
            .record(&new)
            .expect("read")
            .and_then(|r| r.string("title"))
            .as_deref(),
        Some("fresh")
    );
    assert_eq!(
        replica
            .record(&EntityRef::new(EntityKind::Brief, "b-mine0001"))
            .expect("read")
            .and_then(|r| r.string("title"))
            .as_deref(),
        Some("mine"),
        "local changes survive the reset"
    );
}
