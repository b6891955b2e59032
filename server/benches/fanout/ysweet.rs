//! y-sweet 0.9.1 as a target: a fresh document per step (created with
//! `POST /doc/new`), joined at `/d/{doc}/ws/{doc}` with the y-protocol.
//! `benches/peers.sh` starts it with a file store, which y-sweet writes a
//! snapshot of every 10 s (`--checkpoint-freq-seconds`), not per update.

use crate::{Conn, PubConn, Target, yclient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct YSweet {
    addr: String,
    pid: u32,
}

impl YSweet {
    pub fn new(addr: String, pid: u32) -> YSweet {
        YSweet { addr, pid }
    }

    fn url(&self, doc: &str) -> String {
        format!("ws://{}/d/{doc}/ws/{doc}", self.addr)
    }
}

/// A bare HTTP/1.1 POST with a JSON body; returns the status and body.
async fn post_json(addr: &str, path: &str, body: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("POST {path}: not an HTTP response: {text:.200}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

impl Target for YSweet {
    fn name(&self) -> &str {
        "y-sweet 0.9.1"
    }

    fn persisted(&self) -> &str {
        "yes: doc snapshot to a file store every 10 s, not per update"
    }

    fn pid(&self) -> u32 {
        self.pid
    }

    async fn room(&mut self, step: u32) -> anyhow::Result<String> {
        let doc = format!("bench-{}-{step}", crate::now_us());
        let (status, body) =
            post_json(&self.addr, "/doc/new", &format!("{{\"docId\":\"{doc}\"}}")).await?;
        anyhow::ensure!(
            (200..300).contains(&status),
            "y-sweet POST /doc/new answered {status}: {body:.200}"
        );
        Ok(doc)
    }

    async fn subscriber(&self, room: &str, verify: bool) -> anyhow::Result<Conn> {
        yclient::subscriber(&self.url(room), verify).await
    }

    async fn publisher(&self, room: &str) -> anyhow::Result<PubConn> {
        yclient::publisher(&self.url(room)).await
    }
}
