//! The Spoke relay as a target: started here as a subprocess pinned to core
//! 0, one fresh hub per step, `Submit` frames in, `Ops` frames out, every op
//! durably committed before it is fanned out.

use crate::{Conn, PubConn, Reader, Received, Stamp, Target, Writer, Ws, has_taskset, read_stamp};
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

pub struct SpokeRelay {
    child: Child,
    addr: String,
    data: tempfile::TempDir,
    hubs: HashMap<String, HubTokens>,
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
    pub async fn start() -> anyhow::Result<SpokeRelay> {
        let data = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let bin = env!("CARGO_BIN_EXE_spoke-relay");
        let d = data.path().display().to_string();
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
            data,
            hubs: HashMap::new(),
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

    async fn connect(&self, hub: &str, token: &str) -> anyhow::Result<Ws> {
        let url = format!("ws://{}/v1/hubs/{hub}/ws", self.addr);
        let mut ws = crate::connect_ws(&url).await?;
        let hello = Frame::Hello {
            token: token.to_owned(),
            hub: hub.to_owned(),
            epoch: 0,
            cursor: 0,
        };
        ws.send(Message::Binary(encode_frame(&hello)?.into()))
            .await?;
        match crate::next_within(&mut ws, 10, "waiting for Welcome").await? {
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
        "spoke-relay"
    }

    fn persisted(&self) -> &str {
        "yes: fsync'd redb commit before fan-out"
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn room(&mut self, step: u32) -> anyhow::Result<String> {
        let d = self.data.path().display().to_string();
        let name = format!("Bench{step}");
        let created = relay_cli(&[
            "hub", "create", &name, "--data", &d, "--handle", "pub", "--json",
        ])?;
        let hub = field(&created, "hub")?;
        let publisher = field(&created, "token")?;
        let issued = relay_cli(&[
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
        let subscriber = field(&issued, "token")?;
        self.hubs.insert(
            hub.clone(),
            HubTokens {
                publisher,
                subscriber,
            },
        );
        Ok(hub)
    }

    async fn subscriber(&self, room: &str, verify: bool) -> anyhow::Result<Conn> {
        let ws = self.connect(room, &self.tokens(room)?.subscriber).await?;
        Ok(Conn {
            ws,
            reader: Box::new(SpokeReader {
                verify,
                ..SpokeReader::default()
            }),
        })
    }

    async fn publisher(&self, room: &str) -> anyhow::Result<PubConn> {
        let ws = self.connect(room, &self.tokens(room)?.publisher).await?;
        Ok(PubConn {
            ws,
            writer: Box::new(SpokeWriter),
            reader: Box::new(SpokeReader::default()),
        })
    }
}
