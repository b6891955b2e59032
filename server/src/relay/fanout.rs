//! A hub's fan-out: one thread takes every durable commit (and presence
//! change), frames it once as WebSocket wire bytes, and offers those same
//! bytes to each connection's [`Outbound`]. Commits that queued up while it
//! was busy go out together, one write per connection. When the relay
//! keeps hubs on NATS, local presence changes are also handed to the hub's
//! presence bridge ([`super::presence`]), which brings other relays' back
//! as presence from [`REMOTE`].

use super::encode_ops_frame;
use super::outbound::Outbound;
use super::presence::{LocalPresence, Outlet};
use crate::metrics::Metrics;
use crate::proto::{self, SeqOp};
use crate::ws;
use bytes::Bytes;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The `from_conn` of presence that came from another relay: no local
/// connection has this id (they count from 1), so every member gets it.
pub const REMOTE: u64 = 0;

/// Something every connection of a hub should see.
pub enum FanEvent {
    /// Ops from one commit, in seq order.
    Committed { ops: Vec<SeqOp>, at: Instant },
    /// A presence frame, for everyone but the connection that sent it.
    Presence { from_conn: u64, frame: Bytes },
}

/// The connections of a hub, as a list the fan-out reads without copying.
#[derive(Default)]
pub struct Members {
    list: Mutex<Arc<Vec<Member>>>,
}

#[derive(Clone)]
pub struct Member {
    pub conn: u64,
    pub out: Arc<Outbound>,
}

impl Members {
    pub fn add(&self, conn: u64, out: Arc<Outbound>) {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = Vec::with_capacity(list.len() + 1);
        next.extend(list.iter().cloned());
        next.push(Member { conn, out });
        *list = Arc::new(next);
    }

    pub fn remove(&self, conn: u64) {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        if list.iter().any(|m| m.conn == conn) {
            *list = Arc::new(list.iter().filter(|m| m.conn != conn).cloned().collect());
        }
    }

    fn snapshot(&self) -> Arc<Vec<Member>> {
        self.list.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Starts a hub's fan-out thread; events sent to the returned sender reach
/// every member. The thread ends when every sender is dropped.
pub fn start(
    hub: &str,
    members: Arc<Members>,
    metrics: Arc<Metrics>,
    presence_outlet: Option<Outlet>,
) -> std::io::Result<SyncSender<FanEvent>> {
    // Bounded: if fan-out falls far behind, commits wait rather than pile up.
    let (tx, rx) = sync_channel(4096);
    std::thread::Builder::new()
        .name(format!("fanout-{hub}"))
        .spawn(move || run(rx, &members, &metrics, presence_outlet.as_ref()))?;
    Ok(tx)
}

/// Sends presence without waiting: presence is never stored, and under a
/// flood of commits it may be dropped.
pub fn send_presence(tx: &SyncSender<FanEvent>, from_conn: u64, frame: Bytes) {
    match tx.try_send(FanEvent::Presence { from_conn, frame }) {
        Ok(()) | Err(TrySendError::Disconnected(_)) => {}
        Err(TrySendError::Full(_)) => tracing::debug!("presence dropped: fan-out is busy"),
    }
}

/// Most events taken in one round.
const ROUND_EVENTS: usize = 512;

fn run(rx: Receiver<FanEvent>, members: &Members, metrics: &Metrics, outlet: Option<&Outlet>) {
    while let Ok(first) = rx.recv() {
        let mut events = vec![first];
        while events.len() < ROUND_EVENTS {
            match rx.try_recv() {
                Ok(e) => events.push(e),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let members = members.snapshot();
        let mut commits = Vec::new();
        for event in events {
            match event {
                FanEvent::Committed { ops, at } => commits.push((ops, at)),
                FanEvent::Presence { from_conn, frame } => {
                    // Keep order: commits before this presence go out first.
                    deliver(std::mem::take(&mut commits), &members, metrics);
                    let wire = ws::binary(&frame);
                    for m in members.iter().filter(|m| m.conn != from_conn) {
                        m.out.live(None, &wire);
                    }
                    if let Some(outlet) = outlet
                        && from_conn != REMOTE
                        && outlet
                            .try_send(LocalPresence {
                                conn: from_conn,
                                frame,
                            })
                            .is_err()
                    {
                        tracing::debug!("presence not bridged: the bridge is busy or gone");
                    }
                }
            }
        }
        deliver(commits, &members, metrics);
    }
}

/// One round of commits: framed once, one write per member.
fn deliver(commits: Vec<(Vec<SeqOp>, Instant)>, members: &[Member], metrics: &Metrics) {
    let Some(first_at) = commits.first().map(|(_, at)| *at) else {
        return;
    };
    let Some(last) = commits
        .last()
        .and_then(|(ops, _)| ops.last())
        .map(|o| o.seq)
    else {
        return;
    };
    let ops: Vec<SeqOp> = commits.into_iter().flat_map(|(ops, _)| ops).collect();
    let count = ops.len() as u64;
    let frames: Vec<Bytes> = proto::frame_groups(ops, |o| o.op.len())
        .into_iter()
        .map(encode_ops_frame)
        .collect();
    let wire = ws::binaries(frames.iter().map(|f| &f[..]));
    let mut delivered = 0u64;
    for m in members {
        if m.out.live(Some(last), &wire) {
            delivered += count;
            metrics.observe_fanout_us(first_at.elapsed().as_micros() as u64);
        }
    }
    metrics.deliveries.fetch_add(delivered, Relaxed);
}
