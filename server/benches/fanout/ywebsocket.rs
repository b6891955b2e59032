//! The y-websocket server (`@y/websocket-server` 0.1.1, Node) as a target:
//! the room is the URL path, a fresh one per step; documents live in memory
//! (no `YPERSISTENCE`).

use crate::{Conn, PubConn, Target, yclient};

pub struct YWebsocket {
    addr: String,
    pid: u32,
}

impl YWebsocket {
    pub fn new(addr: String, pid: u32) -> YWebsocket {
        YWebsocket { addr, pid }
    }

    fn url(&self, room: &str) -> String {
        format!("ws://{}/{room}", self.addr)
    }
}

impl Target for YWebsocket {
    fn name(&self) -> &str {
        "y-websocket server 0.1.1"
    }

    fn persisted(&self) -> &str {
        "no: in memory"
    }

    fn pid(&self) -> u32 {
        self.pid
    }

    async fn room(&mut self, step: u32) -> anyhow::Result<String> {
        Ok(format!("bench-{}-{step}", crate::now_us()))
    }

    async fn subscriber(&self, room: &str, verify: bool) -> anyhow::Result<Conn> {
        yclient::subscriber(&self.url(room), verify).await
    }

    async fn publisher(&self, room: &str) -> anyhow::Result<PubConn> {
        yclient::publisher(&self.url(room)).await
    }
}
