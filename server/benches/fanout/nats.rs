//! nats-server over its WebSocket listener, in the NATS text protocol:
//! `INFO` from the server, `CONNECT` + `PING` / `PONG`, `SUB` (confirmed by a
//! `PING` round trip), `PUB` out and `MSG` / `HMSG` in. A subject per step.
//! The JetStream variant creates a file-backed stream over `bench.>` first
//! and publishes with `HPUB` (a `Nats-Msg-Id` header for dedup and a reply
//! inbox), counting the stream's `PubAck`s; subscribers stay core
//! subscribers of the subject.

use crate::{Conn, PubConn, Reader, Received, Target, Writer, Ws, read_stamp};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

/// Publish commands per WebSocket message.
const COMMANDS_BUDGET: usize = 192 * 1024;

/// One protocol event parsed from the server's byte stream.
pub enum Event<'a> {
    Info,
    Msg {
        subject: &'a [u8],
        payload: &'a [u8],
    },
    Ping,
    Pong,
    Ok,
    Err(String),
}

/// Incremental parser: protocol messages may span WebSocket messages.
#[derive(Default)]
pub struct Parser {
    buf: Vec<u8>,
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

fn number(token: Option<&[u8]>) -> anyhow::Result<usize> {
    token
        .and_then(|t| std::str::from_utf8(t).ok())
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("NATS: bad byte count"))
}

impl Parser {
    /// Appends what a WebSocket message carried and hands every complete
    /// protocol message to `on_event`.
    pub fn feed(&mut self, data: &[u8], mut on_event: impl FnMut(Event<'_>)) -> anyhow::Result<()> {
        self.buf.extend_from_slice(data);
        let mut pos = 0;
        while let Some(eol) = find_crlf(&self.buf[pos..]).map(|i| pos + i) {
            let line = &self.buf[pos..eol];
            let tokens: Vec<&[u8]> = line
                .split(|&b| b == b' ' || b == b'\t')
                .filter(|t| !t.is_empty())
                .collect();
            let op = tokens.first().copied().unwrap_or(b"");
            let body = eol + 2;
            if op.eq_ignore_ascii_case(b"MSG") || op.eq_ignore_ascii_case(b"HMSG") {
                // MSG subject sid [reply] size | HMSG subject sid [reply] hdr_size total_size
                let headers = op.len() == 4;
                let fixed = if headers { 5 } else { 4 };
                let (hdr, total) = if headers {
                    (
                        number(tokens.get(tokens.len().wrapping_sub(2)).copied())?,
                        number(tokens.last().copied())?,
                    )
                } else {
                    (0, number(tokens.last().copied())?)
                };
                anyhow::ensure!(
                    tokens.len() == fixed || tokens.len() == fixed + 1,
                    "NATS: malformed {}",
                    String::from_utf8_lossy(line)
                );
                if self.buf.len() < body + total + 2 {
                    break;
                }
                anyhow::ensure!(hdr <= total, "NATS: header size over total size");
                on_event(Event::Msg {
                    subject: tokens[1],
                    payload: &self.buf[body + hdr..body + total],
                });
                pos = body + total + 2;
                continue;
            }
            let event = if op.eq_ignore_ascii_case(b"PING") {
                Event::Ping
            } else if op.eq_ignore_ascii_case(b"PONG") {
                Event::Pong
            } else if op.eq_ignore_ascii_case(b"+OK") {
                Event::Ok
            } else if op.eq_ignore_ascii_case(b"-ERR") {
                Event::Err(String::from_utf8_lossy(line).into_owned())
            } else if op.eq_ignore_ascii_case(b"INFO") {
                Event::Info
            } else {
                anyhow::bail!(
                    "NATS: unknown protocol line {:.80}",
                    String::from_utf8_lossy(line)
                );
            };
            on_event(event);
            pos = body;
        }
        self.buf.drain(..pos);
        Ok(())
    }
}

fn bytes_of(msg: &Message) -> &[u8] {
    match msg {
        Message::Binary(b) => b,
        Message::Text(t) => t.as_bytes(),
        _ => &[],
    }
}

fn binary(bytes: Vec<u8>) -> Message {
    Message::Binary(bytes.into())
}

/// Reads until a `PONG` (the answer to our `PING`), failing on `-ERR`;
/// `on_msg` sees any message delivered meanwhile.
async fn until_pong(
    ws: &mut Ws,
    parser: &mut Parser,
    what: &str,
    mut on_msg: impl FnMut(&[u8], &[u8]),
) -> anyhow::Result<()> {
    loop {
        let msg = crate::next_within(ws, 10, what).await?;
        let (mut pong, mut error, mut ping) = (false, None, false);
        parser.feed(bytes_of(&msg), |e| match e {
            Event::Pong => pong = true,
            Event::Ping => ping = true,
            Event::Err(e) => error = Some(e),
            Event::Msg { subject, payload } => on_msg(subject, payload),
            Event::Info | Event::Ok => {}
        })?;
        if let Some(e) = error {
            anyhow::bail!("{what}: {e}");
        }
        if ping {
            ws.send(binary(b"PONG\r\n".to_vec())).await?;
        }
        if pong {
            return Ok(());
        }
    }
}

/// Connects: waits for `INFO`, sends `CONNECT` and the commands in `then`,
/// and a `PING`; returns once the server's `PONG` shows all were accepted.
async fn connect(addr: &str, then: &str) -> anyhow::Result<(Ws, Parser)> {
    let mut ws = crate::connect_ws(&format!("ws://{addr}")).await?;
    let mut parser = Parser::default();
    let mut info = false;
    while !info {
        let msg = crate::next_within(&mut ws, 10, "waiting for NATS INFO").await?;
        parser.feed(bytes_of(&msg), |e| info |= matches!(e, Event::Info))?;
    }
    let connect = r#"CONNECT {"verbose":false,"pedantic":false,"tls_required":false,"name":"spoke-fanout","lang":"rust","version":"0.1.0","protocol":1,"echo":false,"headers":true,"no_responders":true}"#;
    ws.send(binary(format!("{connect}\r\n{then}PING\r\n").into_bytes()))
        .await?;
    until_pong(&mut ws, &mut parser, "NATS CONNECT", |_, _| {}).await?;
    Ok((ws, parser))
}

/// A subscriber's reader: stamps from delivered messages, `PONG` to `PING`.
struct NatsReader {
    parser: Parser,
    acks_on: Option<Vec<u8>>,
    errors: u64,
    first_error: Option<String>,
}

impl Reader for NatsReader {
    fn read(&mut self, msg: &Message, out: &mut Received) -> anyhow::Result<()> {
        let mut ping = false;
        let acks_on = self.acks_on.as_deref();
        let (mut acked, mut errors, mut first_error) = (0, 0, None);
        self.parser.feed(bytes_of(msg), |e| match e {
            Event::Msg { subject, payload } => match acks_on {
                Some(prefix) if subject.starts_with(prefix) => {
                    // A JetStream PubAck: {"stream":"BENCH","seq":N} or an error.
                    if payload.windows(7).any(|w| w == b"\"error\"") {
                        errors += 1;
                        first_error
                            .get_or_insert_with(|| String::from_utf8_lossy(payload).into_owned());
                    } else if payload.windows(5).any(|w| w == b"\"seq\"") {
                        acked += 1;
                    }
                }
                _ => {
                    if let Some((stamp, _)) = read_stamp(payload) {
                        out.stamps.push(stamp);
                    }
                }
            },
            Event::Ping => ping = true,
            Event::Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
            Event::Pong | Event::Ok | Event::Info => {}
        })?;
        out.acked += acked;
        self.errors += errors;
        if self.first_error.is_none() {
            self.first_error = first_error;
        }
        if ping {
            out.reply = Some(binary(b"PONG\r\n".to_vec()));
        }
        if let Some(e) = &self.first_error {
            anyhow::bail!("{} NATS errors, first: {e}", self.errors);
        }
        Ok(())
    }
}

/// `PUB subject n` per payload, or `HPUB` with a `Nats-Msg-Id` and a reply
/// inbox for JetStream's acks.
struct NatsWriter {
    subject: String,
    jetstream: bool,
}

impl Writer for NatsWriter {
    fn messages(&mut self, payloads: Vec<Vec<u8>>) -> anyhow::Result<Vec<Message>> {
        let mut out = Vec::new();
        let mut commands = Vec::new();
        for p in payloads {
            let seq = read_stamp(&p).map(|(s, _)| s.seq).unwrap_or(0);
            if self.jetstream {
                let headers = format!("NATS/1.0\r\nNats-Msg-Id: {}-{seq}\r\n\r\n", self.subject);
                commands.extend_from_slice(
                    format!(
                        "HPUB {} _INBOX.bench.{seq} {} {}\r\n{headers}",
                        self.subject,
                        headers.len(),
                        headers.len() + p.len()
                    )
                    .as_bytes(),
                );
            } else {
                commands
                    .extend_from_slice(format!("PUB {} {}\r\n", self.subject, p.len()).as_bytes());
            }
            commands.extend_from_slice(&p);
            commands.extend_from_slice(b"\r\n");
            if commands.len() >= COMMANDS_BUDGET {
                out.push(binary(std::mem::take(&mut commands)));
            }
        }
        if !commands.is_empty() {
            out.push(binary(commands));
        }
        Ok(out)
    }
}

pub struct Nats {
    addr: String,
    pid: u32,
    jetstream: bool,
    stream_created: bool,
}

impl Nats {
    pub fn new(addr: String, pid: u32, jetstream: bool) -> Nats {
        Nats {
            addr,
            pid,
            jetstream,
            stream_created: false,
        }
    }

    /// Creates the file-backed stream `BENCH` over `bench.>` (a 2-minute
    /// dedup window on `Nats-Msg-Id`), or accepts one that exists.
    async fn create_stream(&self) -> anyhow::Result<()> {
        let (mut ws, mut parser) = connect(&self.addr, "SUB _INBOX.ctl.> 1\r\n").await?;
        let config = r#"{"name":"BENCH","subjects":["bench.>"],"storage":"file","retention":"limits","discard":"old","num_replicas":1,"duplicate_window":120000000000}"#;
        ws.send(binary(
            format!(
                "PUB $JS.API.STREAM.CREATE.BENCH _INBOX.ctl.1 {}\r\n{config}\r\nPING\r\n",
                config.len()
            )
            .into_bytes(),
        ))
        .await?;
        let mut answer = None;
        until_pong(
            &mut ws,
            &mut parser,
            "creating the JetStream stream",
            |_, p| {
                answer = Some(String::from_utf8_lossy(p).into_owned());
            },
        )
        .await?;
        while answer.is_none() {
            let msg =
                crate::next_within(&mut ws, 10, "waiting for the stream create answer").await?;
            parser.feed(bytes_of(&msg), |e| {
                if let Event::Msg { payload, .. } = e {
                    answer = Some(String::from_utf8_lossy(payload).into_owned());
                }
            })?;
        }
        let answer = answer.unwrap_or_default();
        anyhow::ensure!(
            !answer.contains("\"error\"") || answer.contains("already in use"),
            "JetStream stream create failed (is jetstream enabled in the server config?): {answer}"
        );
        let _ = ws.close(None).await;
        Ok(())
    }
}

impl Target for Nats {
    fn name(&self) -> &str {
        if self.jetstream {
            "nats-server 2.9 JetStream"
        } else {
            "nats-server 2.9 core"
        }
    }

    fn persisted(&self) -> &str {
        if self.jetstream {
            "yes: file stream, PubAck after write; fsync every 2 min (default)"
        } else {
            "no: core pub/sub"
        }
    }

    fn pid(&self) -> u32 {
        self.pid
    }

    async fn room(&mut self, step: u32) -> anyhow::Result<String> {
        if self.jetstream && !self.stream_created {
            self.create_stream().await?;
            self.stream_created = true;
        }
        Ok(format!("bench.s{}x{step}", crate::now_us()))
    }

    async fn subscriber(&self, room: &str, _verify: bool) -> anyhow::Result<Conn> {
        let (ws, parser) = connect(&self.addr, &format!("SUB {room} 1\r\n")).await?;
        Ok(Conn {
            ws,
            reader: Box::new(NatsReader {
                parser,
                acks_on: None,
                errors: 0,
                first_error: None,
            }),
        })
    }

    async fn publisher(&self, room: &str) -> anyhow::Result<PubConn> {
        let subscribe = if self.jetstream {
            "SUB _INBOX.bench.> 1\r\n"
        } else {
            ""
        };
        let (ws, parser) = connect(&self.addr, subscribe).await?;
        Ok(PubConn {
            ws,
            writer: Box::new(NatsWriter {
                subject: room.to_owned(),
                jetstream: self.jetstream,
            }),
            reader: Box::new(NatsReader {
                parser,
                acks_on: Some(b"_INBOX.bench.".to_vec()),
                errors: 0,
                first_error: None,
            }),
        })
    }
}
