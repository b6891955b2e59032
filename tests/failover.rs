//! Failing over between relays of one hub, with real processes: the real
//! `spoke` binary syncs through a list of relays where the first is dead,
//! and a long-running `spoke sync --watch` whose relay is killed with
//! SIGKILL moves on to the next relay of its list, resuming from its cursor:
//! ops queued while no relay answered arrive once, nothing is applied twice.
//!
//! In the first tests the "second relay" is a relay started on another
//! port from the data folder of the one that was killed; the last has two
//! relays sharing the hub through a three-node NATS JetStream cluster, with
//! members on each and one relay killed along the way.

mod common_cli;

use common_cli::{
    assert_success, base_command, closed_port, parse_json, relay_binary, stderr, stdout,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use spoke::model::Op;
use spoke::sync::HubAddress;
use spoke_relay::proto::{self, Frame, SeqOp};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio_tungstenite::tungstenite::Message;

/// How long anything here may take before the test gives up.
const TIMEOUT: Duration = Duration::from_secs(90);

/// `spoke-relay ARGS... --json`, which must succeed; parsed.
fn relay_json(args: &[&str]) -> Value {
    let out = Command::new(relay_binary())
        .args(args)
        .arg("--json")
        .env_remove("SPOKE_RELAY_DATA")
        .env_remove("SPOKE_RELAY_PUBLIC_URL")
        .output()
        .expect("run spoke-relay");
    assert_eq!(
        out.status.code(),
        Some(0),
        "`spoke-relay {}` should succeed\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        stdout(&out),
        stderr(&out)
    );
    parse_json(&stdout(&out), args)
}

/// A `spoke-relay serve` process; SIGKILLed when dropped.
struct RelayProcess {
    child: Child,
    /// `ws://127.0.0.1:PORT`
    base: String,
}

impl RelayProcess {
    /// Serves `data` on `listen` and waits until it accepts connections.
    fn start(data: &Path, listen: &str) -> RelayProcess {
        RelayProcess::start_with(data, listen, &[])
    }

    /// As [`RelayProcess::start`], with more `serve` arguments.
    fn start_with(data: &Path, listen: &str, more: &[&str]) -> RelayProcess {
        // The relay records its address once bound; a record left by an
        // earlier relay on this folder must not be taken for it.
        let record = data.join("public-url.json");
        let _ = std::fs::remove_file(&record);
        let mut child = Command::new(relay_binary())
            .args(["serve", "--listen", listen, "--data"])
            .arg(data)
            .args(more)
            .env_remove("SPOKE_RELAY_PUBLIC_URL")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(data.with_extension("log"))
                    .expect("a file for the relay's log"),
            )
            .spawn()
            .expect("start spoke-relay serve");
        let deadline = Instant::now() + TIMEOUT;
        while !record.exists() {
            if let Some(status) = child.try_wait().expect("poll the relay") {
                panic!("spoke-relay serve exited early: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "spoke-relay serve recorded no address"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        let recorded: Value =
            serde_json::from_slice(&std::fs::read(&record).expect("read the relay's address"))
                .expect("a JSON address record");
        let base = recorded["url"]
            .as_str()
            .expect("a url in the address record")
            .to_owned();
        RelayProcess { child, base }
    }

    /// SIGKILL, as a crash or an OOM killer would.
    fn kill_9(&mut self) {
        self.child.kill().expect("kill the relay");
        self.child.wait().expect("reap the relay");
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A relay data folder with one hub and tokens for its members, plus
/// member homes sharing one log folder.
struct World {
    root: TempDir,
    data: PathBuf,
    hub: String,
    /// Where the admin commands find hubs and tokens: `--data DIR`, or
    /// `--nats URLS` for relays sharing them.
    registry: [String; 2],
}

impl World {
    fn new(name: &str) -> World {
        World::with_registry(name, None)
    }

    /// A hub whose record and tokens live in the NATS cluster at `urls`.
    fn on_nats(name: &str, urls: &str) -> World {
        World::with_registry(name, Some(urls))
    }

    fn with_registry(name: &str, nats: Option<&str>) -> World {
        let root = tempfile::tempdir().expect("a temporary folder");
        let data = root.path().join("relay");
        std::fs::create_dir(&data).expect("create the relay's data folder");
        let registry = match nats {
            Some(urls) => ["--nats".to_owned(), urls.to_owned()],
            None => [
                "--data".to_owned(),
                data.to_str().expect("a UTF-8 path").to_owned(),
            ],
        };
        let created = relay_json(&["hub", "create", name, &registry[0], &registry[1]]);
        let hub = created["hub"].as_str().expect("a hub id").to_owned();
        World {
            root,
            data,
            hub,
            registry,
        }
    }

    fn token(&self, handle: &str, role: &str) -> String {
        let issued = relay_json(&[
            "token",
            "issue",
            &self.registry[0],
            &self.registry[1],
            "--hub",
            &self.hub,
            "--handle",
            handle,
            "--role",
            role,
        ]);
        issued["token"].as_str().expect("a token").to_owned()
    }

    fn home(&self, name: &str) -> PathBuf {
        let home = self.root.path().join(name);
        std::fs::create_dir(&home).expect("create a member's home");
        std::fs::write(home.with_extension("toml"), "").expect("write a member's config");
        home
    }

    /// Where the members' `spoke.log` goes.
    fn state(&self) -> PathBuf {
        self.root.path().join("state")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.state().join("spoke").join("spoke.log")).unwrap_or_default()
    }

    fn hub_url(&self, base: &str) -> String {
        format!("{base}/v1/hubs/{}", self.hub)
    }

    fn command(&self, home: &Path, args: &[&str]) -> Command {
        let mut cmd = base_command();
        cmd.env("XDG_STATE_HOME", self.state())
            .arg("--home")
            .arg(home)
            .arg("--config")
            .arg(home.with_extension("toml"))
            .args(args);
        cmd
    }

    fn spoke(&self, home: &Path, args: &[&str]) -> Output {
        self.command(home, args).output().expect("run spoke")
    }

    fn ok(&self, home: &Path, args: &[&str]) -> String {
        let out = self.spoke(home, args);
        assert_success(&out, args);
        stdout(&out)
    }

    fn json(&self, home: &Path, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        parse_json(&self.ok(home, &all), &all)
    }

    fn status(&self, home: &Path) -> Value {
        self.json(home, &["status"])
    }

    fn add_brief(&self, home: &Path, title: &str) {
        self.ok(home, &["brief", "add", "--title", title]);
    }

    /// Brief titles in `home`'s replica, with how often each appears.
    fn titles(&self, home: &Path) -> Vec<String> {
        let briefs = self.json(home, &["brief", "list"]);
        let mut titles: Vec<String> = briefs
            .as_array()
            .expect("brief list is an array")
            .iter()
            .map(|b| b["title"].as_str().expect("a title").to_owned())
            .collect();
        titles.sort();
        titles
    }
}

fn u64_field(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("`{key}` should be a number in {v}"))
}

/// Waits until `done` holds for `home`'s status, and returns that status.
fn wait_for_status(world: &World, home: &Path, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let status = world.status(home);
        if done(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last status: {status}\nlog:\n{}",
            world.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads the hub's whole log from a relay with a raw protocol client and
/// checks it: seqs 1..=head in order and every op id (client, client seq)
/// once.
fn check_relay_log(url: &str, token: &str) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let log: Vec<SeqOp> = rt.block_on(async {
        let addr = HubAddress::parse(url).expect("a hub URL");
        let (mut ws, _) =
            tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(addr.ws_url()))
                .await
                .expect("connect within the timeout")
                .expect("connect to the relay");
        let hello = Frame::Hello {
            token: token.to_owned(),
            hub: addr.hub,
            epoch: 0,
            cursor: 0,
        };
        ws.send(Message::Binary(
            proto::encode_frame(&hello).expect("encode").into(),
        ))
        .await
        .expect("send Hello");
        let mut head = None;
        let mut log = Vec::new();
        while head.is_none_or(|h| log.last().map_or(0, |o: &SeqOp| o.seq) < h) {
            let message = tokio::time::timeout(TIMEOUT, ws.next())
                .await
                .expect("a frame within the timeout");
            let Some(Ok(Message::Binary(bytes))) = message else {
                match message {
                    Some(Ok(_)) => continue,
                    other => panic!("the relay's connection ended: {other:?}"),
                }
            };
            match proto::decode_frame(&bytes).expect("a readable frame") {
                Frame::Welcome { head: h, .. } => head = Some(h),
                Frame::Ops { ops, .. } => log.extend(ops),
                _ => {}
            }
        }
        let _ = ws.close(None).await;
        log
    });
    let mut seen = BTreeSet::new();
    for (i, entry) in log.iter().enumerate() {
        assert_eq!(entry.seq, i as u64 + 1, "the relay's log is not contiguous");
        let op = Op::decode(&entry.op).expect("a readable op in the relay's log");
        assert!(
            seen.insert((op.id.client.0, op.id.seq)),
            "op {} is in the relay's log twice (again at seq {})",
            op.id,
            entry.seq
        );
    }
    log.len() as u64
}

#[test]
fn a_dead_relay_first_in_the_list_is_passed_over_for_the_next() {
    let world = World::new("Failover once");
    let ana_token = world.token("ana", "lead");
    let bob_token = world.token("bob", "lead");
    let relay = RelayProcess::start(&world.data, "127.0.0.1:0");
    let live = world.hub_url(&relay.base);
    let dead_base = format!("ws://127.0.0.1:{}", closed_port());
    let dead = world.hub_url(&dead_base);

    // Joining with the dead relay listed first goes through the live one.
    let ana = world.home("ana");
    world.ok(
        &ana,
        &[
            "hub", "join", &dead, "--relay", &live, "--token", &ana_token,
        ],
    );
    let status = world.status(&ana);
    assert_eq!(
        status["relays"],
        serde_json::json!([dead, live]),
        "{status}"
    );
    assert_eq!(status["relay"], live.as_str(), "{status}");
    let listed = world.ok(&ana, &["hub", "relays"]);
    assert!(
        listed.contains(&format!("{live}  (in use)")) && listed.contains(&dead),
        "{listed}"
    );

    // Make the dead relay the one a sync tries first: removing the relay
    // in use and adding it back puts it last.
    world.ok(&ana, &["hub", "relays", "remove", &relay.base]);
    let status = world.status(&ana);
    assert_eq!(status["relays"], serde_json::json!([dead]), "{status}");
    assert_eq!(status["relay"], Value::Null, "{status}");
    world.ok(&ana, &["hub", "relays", "add", &live]);
    assert_eq!(
        world.status(&ana)["relays"],
        serde_json::json!([dead, live])
    );

    for title in ["Spring film", "Summer print", "Autumn radio"] {
        world.add_brief(&ana, title);
    }
    assert_eq!(u64_field(&world.status(&ana), "pending"), 3);
    let out = world.spoke(&ana, &["sync"]);
    assert_success(&out, &["sync"]);
    let status = world.status(&ana);
    assert_eq!(u64_field(&status, "pending"), 0, "{status}");
    assert_eq!(status["relay"], live.as_str(), "{status}");
    assert_eq!(
        u64_field(&status, "cursor"),
        u64_field(&status, "head"),
        "{status}"
    );
    let log = world.log();
    assert!(
        log.lines()
            .any(|l| l.contains("switching to the next relay")
                && l.contains(&dead)
                && l.contains(&live)),
        "the switch from {dead} to {live} should be logged:\n{log}"
    );

    // A second member lists relay addresses alone, comma-separated with a
    // duplicate: a live relay names the token's hub.
    let bob = world.home("bob");
    let list = format!("{dead_base},{},{dead_base}/", relay.base);
    world.ok(&bob, &["hub", "join", &list, "--token", &bob_token]);
    assert_eq!(
        world.status(&bob)["relays"],
        serde_json::json!([dead, live])
    );
    assert_eq!(
        world.titles(&bob),
        ["Autumn radio", "Spring film", "Summer print"]
    );
    let head = check_relay_log(&live, &bob_token);
    assert_eq!(head, u64_field(&world.status(&bob), "cursor"));
}

#[test]
fn an_invite_naming_several_relays_joins_through_the_live_one() {
    let world = World::new("Invite list");
    let relay = RelayProcess::start(&world.data, "127.0.0.1:0");
    let dead_base = format!("ws://127.0.0.1:{}", closed_port());
    let public = format!("{dead_base},{}", relay.base);
    let issued = relay_json(&[
        "token",
        "issue",
        "--data",
        world.data.to_str().expect("a UTF-8 path"),
        "--hub",
        &world.hub,
        "--handle",
        "ana",
        "--role",
        "lead",
        "--public-url",
        &public,
    ]);
    let line = issued["join"].as_str().expect("a join line").to_owned();
    assert!(
        line.contains(&format!("--relay {}", relay.base)),
        "the invite lists the second relay: {line}"
    );
    let words = spoke::service::assets::split_command(&line).expect("a line a shell can split");
    assert_eq!(words.first().map(String::as_str), Some("spoke"), "{line}");
    let home = world.home("ana");
    let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    world.ok(&home, &args);
    let status = world.status(&home);
    assert_eq!(
        status["relays"],
        serde_json::json!([world.hub_url(&dead_base), world.hub_url(&relay.base)]),
        "{status}"
    );
    assert_eq!(status["relay"], world.hub_url(&relay.base).as_str());
}

#[test]
fn a_bad_relay_url_is_refused_by_name() {
    let world = World::new("Bad URLs");
    let token = world.token("ana", "lead");
    let home = world.home("ana");
    let good = format!("ws://127.0.0.1:{}", closed_port());
    for (args, named) in [
        (
            vec![
                "hub",
                "join",
                &good,
                "--relay",
                "ftp://nope:1",
                "--token",
                &token,
            ],
            "ftp://nope:1",
        ),
        (
            vec!["hub", "join", "ws://a:1,localhost:2", "--token", &token],
            "localhost:2",
        ),
    ] {
        let out = world.spoke(&home, &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(named), "{args:?} should name {named}: {err}");
    }
    assert!(
        !home.join("replica.redb").exists(),
        "a refused join leaves no replica"
    );
}

#[test]
fn a_watch_moves_to_the_next_relay_when_its_relay_is_killed() {
    let world = World::new("Failover watch");
    let ana_token = world.token("ana", "lead");
    let bob_token = world.token("bob", "lead");
    let mut relay_a = RelayProcess::start(&world.data, "127.0.0.1:0");
    let url_a = world.hub_url(&relay_a.base);
    let port_b = closed_port();
    let url_b = world.hub_url(&format!("ws://127.0.0.1:{port_b}"));

    let ana = world.home("ana");
    let both = format!("{url_a},{url_b}");
    world.ok(&ana, &["hub", "join", &both, "--token", &ana_token]);

    let watch_err = world.root.path().join("watch.err");
    let mut watch = world
        .command(&ana, &["sync", "--watch"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&watch_err).expect("a file for the watch's output"))
        .spawn()
        .expect("start spoke sync --watch");
    wait_for_status(&world, &ana, "the watch to connect to A", |s| {
        s["connected"] == true && s["relay"] == url_a.as_str()
    });

    // Ops made while the watch runs go through A.
    for i in 1..=3 {
        world.add_brief(&ana, &format!("Online {i}"));
    }
    wait_for_status(&world, &ana, "the online briefs to be acknowledged", |s| {
        s["pending"] == 0
    });
    // Acknowledged ops are durable in A's log: its length is the head.
    let head_before = check_relay_log(&url_a, &bob_token);

    relay_a.kill_9();
    // Queued while no relay answers.
    for i in 1..=3 {
        world.add_brief(&ana, &format!("Offline {i}"));
    }
    let queued = u64_field(&world.status(&ana), "pending");
    assert!(queued >= 3, "three briefs queued: {queued} ops pending");
    let expected = head_before + queued;

    // "B" serves the same hub's data on the port the watch already knows.
    let relay_b = RelayProcess::start(&world.data, &format!("127.0.0.1:{port_b}"));
    assert_eq!(world.hub_url(&relay_b.base), url_b);
    let after = wait_for_status(&world, &ana, "the queue to drain through B", |s| {
        s["pending"] == 0 && s["relay"] == url_b.as_str() && s["cursor"].as_u64() >= Some(expected)
    });
    assert_eq!(
        u64_field(&after, "cursor"),
        expected,
        "each queued op is applied once: {after}\nlog:\n{}",
        world.log()
    );
    // Nothing lost, nothing doubled: the hub's log holds every op once,
    // the queued ones included.
    assert_eq!(check_relay_log(&url_b, &bob_token), expected);
    let _ = watch.kill();
    let _ = watch.wait();

    let log = world.log();
    assert!(
        log.lines()
            .any(|l| l.contains("switching to the next relay")
                && l.contains(&url_a)
                && l.contains(&url_b)),
        "the switch from A to B should be logged:\n{log}"
    );
    let printed = std::fs::read_to_string(&watch_err).unwrap_or_default();
    assert!(
        printed.contains(&format!("switching from {url_a} to {url_b}")),
        "the watch should say it switched:\n{printed}"
    );

    // A fresh member, and the member itself, see each brief once.
    let bob = world.home("bob");
    world.ok(
        &bob,
        &[
            "hub", "join", &url_a, "--relay", &url_b, "--token", &bob_token,
        ],
    );
    assert_eq!(
        world.titles(&bob),
        [
            "Offline 1",
            "Offline 2",
            "Offline 3",
            "Online 1",
            "Online 2",
            "Online 3"
        ]
    );
    assert_eq!(
        world.titles(&ana),
        [
            "Offline 1",
            "Offline 2",
            "Offline 3",
            "Online 1",
            "Online 2",
            "Online 3"
        ]
    );
}

/// The relay tests' three-node NATS cluster (`server/tests/common/nats.rs`),
/// and the two helpers it takes from their common module.
#[allow(dead_code)]
#[path = "../server/tests/common/nats.rs"]
mod nats;

mod process {
    pub fn free_port() -> u16 {
        super::common_cli::closed_port()
    }
}

struct HttpResponse {
    status: u16,
    body: Vec<u8>,
}

/// A bodyless HTTP/1.1 request (to a NATS node's monitor port).
async fn try_http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
) -> std::io::Result<HttpResponse> {
    use std::io::{Read, Write};
    let timeout = Duration::from_secs(5);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of the response head"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    Ok(HttpResponse {
        status,
        body: raw[split + 4..].to_vec(),
    })
}

/// Two relays share one hub through a three-node JetStream cluster: hub and
/// tokens made by the admin commands on the cluster, ana on relay A (then
/// B), bob on relay B (then A). Each sees the other's briefs through the
/// other relay; relay A is killed with SIGKILL and ana's watch moves to B
/// with her queued briefs; in the end every brief is in both replicas once
/// and the hub's log holds every op once, with contiguous seqs.
#[test]
fn members_on_two_relays_sharing_a_hub_through_nats_lose_nothing_when_one_dies() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let Some(mut cluster) = rt.block_on(nats::NatsCluster::start()) else {
        return;
    };
    let urls = cluster.urls();
    let world = World::on_nats("Shared through NATS", &urls);
    let ana_token = world.token("ana", "lead");
    let bob_token = world.token("bob", "lead");
    let relay = |name: &str| {
        let data = world.root.path().join(name);
        std::fs::create_dir(&data).expect("create a relay's data folder");
        RelayProcess::start_with(&data, "127.0.0.1:0", &["--nats", &urls])
    };
    let mut relay_a = relay("relay-a");
    let relay_b = relay("relay-b");
    let url_a = world.hub_url(&relay_a.base);
    let url_b = world.hub_url(&relay_b.base);

    let ana = world.home("ana");
    let bob = world.home("bob");
    world.ok(
        &ana,
        &[
            "hub",
            "join",
            &format!("{url_a},{url_b}"),
            "--token",
            &ana_token,
        ],
    );
    world.ok(
        &bob,
        &[
            "hub",
            "join",
            &format!("{url_b},{url_a}"),
            "--token",
            &bob_token,
        ],
    );
    let watch = |home: &Path, name: &str| {
        world
            .command(home, &["sync", "--watch"])
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(world.root.path().join(name))
                    .expect("a file for the watch's output"),
            )
            .spawn()
            .expect("start spoke sync --watch")
    };
    let mut watches = [watch(&ana, "ana.err"), watch(&bob, "bob.err")];
    wait_for_status(&world, &ana, "ana's watch on relay A", |s| {
        s["connected"] == true && s["relay"] == url_a.as_str()
    });
    wait_for_status(&world, &bob, "bob's watch on relay B", |s| {
        s["connected"] == true && s["relay"] == url_b.as_str()
    });

    let mut all: Vec<String> = Vec::new();
    let add = |all: &mut Vec<String>, home: &Path, title: String| {
        world.add_brief(home, &title);
        all.push(title);
    };
    for i in 1..=3 {
        add(&mut all, &ana, format!("Ana on A {i}"));
        add(&mut all, &bob, format!("Bob on B {i}"));
    }
    let both_see = |all: &[String], what: &str| {
        let mut want = all.to_vec();
        want.sort();
        let started = Instant::now();
        for home in [&ana, &bob] {
            let deadline = started + TIMEOUT;
            loop {
                let titles = world.titles(home);
                if titles == want {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{what}: {} has {titles:?}, wants {want:?}\nlog:\n{}\nrelay B's log:\n{}",
                    home.display(),
                    world.log(),
                    std::fs::read_to_string(world.root.path().join("relay-b.log"))
                        .unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        eprintln!(
            "{what}: both members have all {} briefs after {:?}",
            want.len(),
            started.elapsed()
        );
    };
    both_see(&all, "briefs made on either relay reach both members");

    // Relay A dies: ana's watch moves to B with what she queued meanwhile.
    relay_a.kill_9();
    for i in 1..=3 {
        add(&mut all, &ana, format!("Ana after A died {i}"));
    }
    wait_for_status(&world, &ana, "ana's queue to drain through B", |s| {
        s["pending"] == 0 && s["relay"] == url_b.as_str()
    });
    both_see(&all, "after relay A died");

    // A NATS node dies (the first in every relay's list, so B's connection
    // moves): writes go on through B and reach both members.
    cluster.kill_node(0);
    for i in 1..=3 {
        add(&mut all, &bob, format!("Bob with a NATS node down {i}"));
    }
    add(&mut all, &ana, "Ana with a NATS node down".to_owned());
    both_see(&all, "with a NATS node down");

    // The node comes back and the hub goes on.
    rt.block_on(cluster.restart_node(0));
    for i in 1..=2 {
        add(&mut all, &bob, format!("Bob after the node came back {i}"));
    }
    add(&mut all, &ana, "Ana once more".to_owned());
    both_see(&all, "after the NATS node came back");

    for w in &mut watches {
        let _ = w.kill();
        let _ = w.wait();
    }
    // The hub's log, read back through B: every op once, seqs contiguous.
    let head = check_relay_log(&url_b, &bob_token);
    assert!(
        head >= all.len() as u64,
        "{head} ops for {} briefs",
        all.len()
    );
}
