//! The Spoke relay as a target: started here as a subprocess pinned to core
//! 0, one fresh hub per step, `Submit` frames in, `Ops` frames out, every op
//! durably committed before it is fanned out: to redb, or to a JetStream
//! cluster started here (one relay, or two relays serving the same hub).

use crate::{
    Conn, PubConn, Reader, Received, Stamp, Target, Watched, Writer, Ws, has_taskset, read_stamp,
};
use futures_util::SinkExt;
use spoke_relay::proto::{
    self, ClientId, EntityKey, Frame, Hlc, Op, OpId, decode_frame, decode_op, encode_frame,
};
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

struct HubTokens {
    publisher: String,
    subscriber: String,
}

/// Where the relays keep hub logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// `DATA/hubs/{hub}/log.redb`, fsync'd per group commit.
    Redb,
    /// A JetStream cluster of this many nodes started here, one copy of
    /// every op per node (`--nats-replicas` = nodes).
    JetStream { nodes: usize },
}

/// One `spoke-relay serve` process and its data folder.
struct RelayProcess {
    child: Child,
    addr: String,
    data: tempfile::TempDir,
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The relay's log goes with its data folder unless asked for.
        if let Some(dir) = std::env::var_os("FANOUT_KEEP_RELAY_LOGS") {
            let to = std::path::Path::new(&dir).join(format!(
                "relay-{}-{}.log",
                crate::now_us(),
                self.addr.replace(':', "-")
            ));
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::copy(self.data.path().join("serve.log"), to);
        }
    }
}

/// One relay, or two relays on one JetStream cluster serving the same hub
/// (the publisher on relay A, subscribers alternating A, B, A, ...). Every
/// relay and NATS node runs on core 0, the generator on core 1.
pub struct SpokeRelay {
    // Dropped first: relays before the NATS nodes they talk to.
    relays: Vec<RelayProcess>,
    cluster: Option<crate::jscluster::JsCluster>,
    storage: Storage,
    hubs: HashMap<String, HubTokens>,
    /// Hubs created before the relays started, in the order steps take
    /// them (two relays: the streams are opened on both outside a step).
    pool: Vec<String>,
    /// `--data DIR` or `--nats URLS`, for the admin commands.
    registry: [String; 2],
    label: String,
    persisted: String,
    // Dropped last: the NATS stores live here.
    _nats_dir: Option<tempfile::TempDir>,
}

/// Hubs made ahead for two relays: more than a step-up run takes.
const HUB_POOL: u32 = 24;

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

/// Where the admin commands keep hubs and tokens: the first relay's data
/// folder (`--data`), or the NATS cluster's shared registry (`--nats`).
fn registry_args(data: &std::path::Path, nats: Option<&str>) -> [String; 2] {
    match nats {
        Some(urls) => ["--nats".to_owned(), urls.to_owned()],
        None => ["--data".to_owned(), data.display().to_string()],
    }
}

/// Creates hub `name` in `registry`, with a publisher and a read-only
/// subscriber token.
fn create_hub(registry: &[String; 2], name: &str) -> anyhow::Result<(String, HubTokens)> {
    let (flag, place) = (registry[0].as_str(), registry[1].as_str());
    let created = relay_cli(&[
        "hub", "create", name, flag, place, "--handle", "pub", "--json",
    ])?;
    let hub = field(&created, "hub")?;
    let publisher = field(&created, "token")?;
    let issued = relay_cli(&[
        "token",
        "issue",
        flag,
        place,
        "--hub",
        &hub,
        "--handle",
        "sub",
        "--role",
        "read-only",
        "--json",
    ])?;
    let subscriber = field(&issued, "token")?;
    Ok((
        hub,
        HubTokens {
            publisher,
            subscriber,
        },
    ))
}

impl RelayProcess {
    /// Starts `spoke-relay serve` on a free port over `data`, pinned to core 0.
    async fn start(data: tempfile::TempDir, nats: Option<(&str, usize)>) -> anyhow::Result<Self> {
        let addr = format!("127.0.0.1:{}", crate::jscluster::free_port()?);
        let bin = env!("CARGO_BIN_EXE_spoke-relay");
        let d = data.path().display().to_string();
        let mut serve = vec![
            "serve".to_owned(),
            "--listen".into(),
            addr.clone(),
            "--data".into(),
            d,
            "--max-ops-per-sec".into(),
            "10000000".into(),
        ];
        if let Some((urls, replicas)) = nats {
            serve.extend([
                "--nats".into(),
                urls.to_owned(),
                "--nats-replicas".into(),
                replicas.to_string(),
            ]);
        }
        let mut cmd = if has_taskset() {
            let mut c = Command::new("taskset");
            c.args(["-c", "0", bin]);
            c
        } else {
            Command::new(bin)
        };
        let log = std::fs::File::create(data.path().join("serve.log"))?;
        let child = cmd.args(&serve).stdout(Stdio::null()).stderr(log).spawn()?;
        let mut relay = RelayProcess { child, addr, data };
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(&relay.addr).await.is_err() {
            if let Ok(Some(status)) = relay.child.try_wait() {
                anyhow::bail!(
                    "relay on {} exited with {status}: {}",
                    relay.addr,
                    std::fs::read_to_string(relay.data.path().join("serve.log"))
                        .unwrap_or_default()
                );
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "relay did not start on {}",
                relay.addr
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(relay)
    }
}

impl SpokeRelay {
    /// `relays` relays (1 or 2; two need JetStream) keeping logs in `storage`.
    pub async fn start_with(storage: Storage, relays: usize) -> anyhow::Result<SpokeRelay> {
        anyhow::ensure!(
            relays == 1 || (relays == 2 && storage != Storage::Redb),
            "two relays can only share a hub on JetStream"
        );
        let (cluster, nats_dir) = match storage {
            Storage::Redb => (None, None),
            Storage::JetStream { nodes } => {
                let dir = tempfile::tempdir()?;
                let cluster = crate::jscluster::JsCluster::start(nodes, dir.path()).await?;
                (Some(cluster), Some(dir))
            }
        };
        let urls = cluster.as_ref().map(|c| c.urls());
        let nats = match storage {
            Storage::Redb => None,
            Storage::JetStream { nodes } => urls.as_deref().map(|u| (u, nodes)),
        };
        let mut hubs = HashMap::new();
        let mut pool = Vec::new();
        let mut folders = vec![tempfile::tempdir()?];
        let registry = registry_args(folders[0].path(), urls.as_deref());
        if relays == 2 {
            for step in 1..=HUB_POOL {
                let (hub, tokens) = create_hub(&registry, &format!("Bench{step}"))?;
                pool.push(hub.clone());
                hubs.insert(hub, tokens);
            }
            folders.push(tempfile::tempdir()?);
        }
        let mut started = Vec::new();
        for data in folders {
            started.push(RelayProcess::start(data, nats).await?);
        }
        let (label, persisted) = match storage {
            Storage::Redb => (
                "spoke-relay".to_owned(),
                "yes: fsync'd redb commit before fan-out".to_owned(),
            ),
            Storage::JetStream { nodes } => (
                format!(
                    "spoke-relay x{relays} on JetStream R{nodes}{}",
                    if nodes == 1 { " (1 node)" } else { "" }
                ),
                format!(
                    "yes: JetStream file stream, {nodes} cop{} acked before fan-out; fsync every 2 min (default)",
                    if nodes == 1 { "y" } else { "ies" }
                ),
            ),
        };
        Ok(SpokeRelay {
            relays: started,
            cluster,
            storage,
            hubs,
            pool,
            registry,
            label,
            persisted,
            _nats_dir: nats_dir,
        })
    }

    async fn connect(&self, relay: usize, hub: &str, token: &str) -> anyhow::Result<Ws> {
        let addr = &self.relays[relay % self.relays.len()].addr;
        let url = format!("ws://{addr}/v1/hubs/{hub}/ws");
        let mut ws = crate::connect_ws(&url).await?;
        let hello = Frame::Hello {
            token: token.to_owned(),
            hub: hub.to_owned(),
            epoch: 0,
            cursor: 0,
        };
        ws.send(Message::Binary(encode_frame(&hello)?.into()))
            .await?;
        match crate::next_within(&mut ws, 20, "waiting for Welcome").await? {
            Message::Binary(b) => match decode_frame(&b)? {
                Frame::Welcome { .. } => Ok(ws),
                other => anyhow::bail!("expected Welcome, got {other:?}"),
            },
            other => anyhow::bail!("expected Welcome, got {other:?}"),
        }
    }

    fn tokens(&self, hub: &str) -> anyhow::Result<&HubTokens> {
        self.hubs
            .get(hub)
            .ok_or_else(|| anyhow::anyhow!("no hub {hub} created by this bench"))
    }
}

/// Leading text of a stamp inside an op's title. Ops are what a client
/// writes (a `set` of a text field), so the hub's rules read them as any
/// other op; the stamp travels as text: seq, send time in µs and the
/// payload's length in fixed-width hex, padded to the payload's size.
const TEXT_MAGIC: &[u8] = b"SPKBNC|";
const TEXT_STAMP_BYTES: usize = 7 + 16 + 16 + 8;

/// A `set` body whose title carries the payload's stamp, as long as the payload.
fn body_of(payload: &[u8]) -> Vec<u8> {
    let (stamp, len) = read_stamp(payload).unwrap_or((Stamp { seq: 0, sent_us: 0 }, payload.len()));
    let mut title = format!(
        "SPKBNC|{:016x}{:016x}{:08x}",
        stamp.seq, stamp.sent_us, len as u32
    );
    while title.len() < payload.len() {
        title.push('*');
    }
    rmp_serde::to_vec_named(&std::collections::BTreeMap::from([("title", title)]))
        .unwrap_or_default()
}

/// Every text stamp in `bytes`, in order.
fn scan_text_stamps(bytes: &[u8], out: &mut Vec<Stamp>) {
    let hex =
        |b: &[u8]| -> Option<u64> { u64::from_str_radix(std::str::from_utf8(b).ok()?, 16).ok() };
    let mut i = 0;
    while i + TEXT_STAMP_BYTES <= bytes.len() {
        let Some(at) = bytes[i..]
            .windows(TEXT_MAGIC.len())
            .position(|w| w == TEXT_MAGIC)
        else {
            return;
        };
        let s = i + at + TEXT_MAGIC.len();
        match (
            bytes.get(s..s + 16).and_then(hex),
            bytes.get(s + 16..s + 32).and_then(hex),
        ) {
            (Some(seq), Some(sent_us)) => {
                out.push(Stamp { seq, sent_us });
                i = s + 40;
            }
            _ => i = s,
        }
    }
}

/// Reads `Ops` frames (stamps from each op's body) and `Ack` frames; the
/// verifying subscriber decodes every frame and op and checks that hub seqs
/// arrive with no gap, the others find the stamps in the bytes, as the Y
/// subscribers do, so the generator's own cost per delivery stays low.
#[derive(Default)]
struct SpokeReader {
    verify: bool,
    next_seq: u64,
    ops: u64,
    gaps: u64,
}

impl Reader for SpokeReader {
    fn read(&mut self, msg: &Message, out: &mut Received) -> anyhow::Result<()> {
        let Message::Binary(b) = msg else {
            return Ok(());
        };
        if !self.verify {
            let before = out.stamps.len();
            scan_text_stamps(b, &mut out.stamps);
            if out.stamps.len() > before {
                return Ok(());
            }
        }
        match decode_frame(b)? {
            Frame::Ops { ops, .. } => {
                for s in ops {
                    if self.verify {
                        if self.next_seq != 0 && s.seq != self.next_seq {
                            self.gaps += 1;
                        }
                        self.next_seq = s.seq + 1;
                        self.ops += 1;
                    }
                    let op = decode_op(&s.op)?;
                    scan_text_stamps(&op.body, &mut out.stamps);
                }
            }
            Frame::Ack { acks } => out.acked += acks.len() as u64,
            Frame::Error { code, message, .. } => anyhow::bail!("relay error {code:?}: {message}"),
            _ => {}
        }
        Ok(())
    }

    fn verdict(&self) -> Option<String> {
        self.verify
            .then(|| format!("hub seqs: {} ops, {} gaps", self.ops, self.gaps))
    }
}

/// Packs payloads as op bodies into protocol-sized `Submit` frames.
struct SpokeWriter;

impl Writer for SpokeWriter {
    fn messages(&mut self, payloads: Vec<Vec<u8>>) -> anyhow::Result<Vec<Message>> {
        let ops: Vec<Op> = payloads
            .into_iter()
            .map(|body| {
                let seq = read_stamp(&body).map(|(s, _)| s.seq).unwrap_or(0);
                Op {
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
                    body: body_of(&body),
                }
            })
            .collect();
        proto::frame_groups(ops, |o| o.body.len() + 64)
            .into_iter()
            .map(|ops| {
                Ok(Message::Binary(
                    encode_frame(&Frame::Submit { ops })?.into(),
                ))
            })
            .collect()
    }
}

impl Target for SpokeRelay {
    fn name(&self) -> &str {
        &self.label
    }

    fn persisted(&self) -> &str {
        &self.persisted
    }

    fn pid(&self) -> u32 {
        self.relays[0].child.id()
    }

    fn watched(&self) -> Vec<Watched> {
        let mut out: Vec<Watched> = self
            .relays
            .iter()
            .enumerate()
            .map(|(i, r)| Watched::Relay(i, r.child.id()))
            .collect();
        if let Some(c) = &self.cluster {
            out.extend(c.pids().into_iter().map(Watched::Nats));
        }
        out
    }

    fn home_of(&self, i: usize) -> usize {
        i % self.relays.len()
    }

    async fn room(&mut self, step: u32) -> anyhow::Result<String> {
        if self.relays.len() > 1 {
            let hub =
                self.pool.get(step as usize - 1).cloned().ok_or_else(|| {
                    anyhow::anyhow!("step {step}: only {HUB_POOL} hubs made ahead")
                })?;
            // Open the hub on relay A first (it creates the stream), then
            // on B, so the subscribers' joins do not race to create it.
            let token = self.tokens(&hub)?.subscriber.clone();
            for relay in 0..self.relays.len() {
                let mut ws = self.connect(relay, &hub, &token).await?;
                let _ = ws.close(None).await;
            }
            return Ok(hub);
        }
        let (hub, tokens) = create_hub(&self.registry, &format!("Bench{step}"))?;
        self.hubs.insert(hub.clone(), tokens);
        if matches!(self.storage, Storage::JetStream { .. }) {
            // Creating the replicated stream is part of opening, not of the load.
            let token = self.tokens(&hub)?.subscriber.clone();
            let mut ws = self.connect(0, &hub, &token).await?;
            let _ = ws.close(None).await;
        }
        Ok(hub)
    }

    async fn subscriber(&self, room: &str, verify: bool) -> anyhow::Result<Conn> {
        self.subscriber_at(room, 0, verify).await
    }

    async fn subscriber_at(&self, room: &str, i: usize, verify: bool) -> anyhow::Result<Conn> {
        let ws = self
            .connect(self.home_of(i), room, &self.tokens(room)?.subscriber)
            .await?;
        Ok(Conn {
            ws,
            reader: Box::new(SpokeReader {
                verify,
                ..SpokeReader::default()
            }),
        })
    }

    async fn publisher(&self, room: &str) -> anyhow::Result<PubConn> {
        let ws = self.connect(0, room, &self.tokens(room)?.publisher).await?;
        Ok(PubConn {
            ws,
            writer: Box::new(SpokeWriter),
            reader: Box::new(SpokeReader::default()),
        })
    }
}
