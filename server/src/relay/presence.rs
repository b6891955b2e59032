//! Presence across relays, for relays that keep hubs on NATS (`serve
//! --nats`): each open hub has a bridge task that publishes its local
//! members' presence changes on the core NATS subject
//! `spoke.hub.{hub}.presence` and hands the changes other relays publish
//! there to the hub's fan-out, so members of one hub on different relays
//! see each other.
//!
//! Every message names the relay that sent it (a random id per process), so
//! a relay ignores its own echo. Every [`HEARTBEAT`] each relay also
//! publishes the full list of its members' presence in the hub; a relay
//! receiving it sends the changes it missed (core NATS may drop a message)
//! and ends the presence of members no longer listed. A relay not heard
//! from for [`SILENCE`] is taken for dead (`kill -9`, a lost network) and
//! every member it had is sent `offline`; one that shuts down cleanly says
//! so, and its members end at once.

use super::encode;
use super::fanout::{self, FanEvent};
use crate::nats::Nats;
use crate::proto::{self, Frame, Presence, PresenceStatus};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// How often a relay lists its members' presence in each hub it has open.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// A relay silent this long has its members' presence ended (three missed
/// heartbeats). It is checked every [`HEARTBEAT`], so presence ends between
/// `SILENCE` and `SILENCE + HEARTBEAT` after the relay's last heartbeat.
pub const SILENCE: Duration = Duration::from_secs(6);

/// Local presence changes waiting for the bridge; past this they are
/// dropped (the next heartbeat carries them).
const LOCAL_QUEUE: usize = 1024;

/// The core NATS subject of a hub's presence.
pub fn subject(hub: &str) -> String {
    format!("spoke.hub.{hub}.presence")
}

/// A presence change of a member on this relay, as the fan-out saw it.
pub struct LocalPresence {
    pub conn: u64,
    /// The encoded `Presence` frame.
    pub frame: Bytes,
}

/// Where the fan-out hands local presence changes to the bridge.
pub type Outlet = mpsc::Sender<LocalPresence>;

/// A new outlet and the receiving end [`start`] takes.
pub fn channel() -> (Outlet, mpsc::Receiver<LocalPresence>) {
    mpsc::channel(LOCAL_QUEUE)
}

/// One message on a hub's presence subject.
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    /// The sending relay's id.
    relay: String,
    body: Body,
}

#[derive(Debug, Serialize, Deserialize)]
enum Body {
    /// A member's presence changed (`offline` when it left).
    Change { conn: u64, presence: Presence },
    /// Every member of the hub with presence on the sending relay.
    Heartbeat { members: Vec<(u64, Presence)> },
    /// The relay is shutting down: every member it had is gone.
    Leaving,
}

/// What this relay knows of another relay's members in the hub.
struct Remote {
    last_heard: Instant,
    members: HashMap<u64, Presence>,
}

/// Starts the hub's bridge on the NATS connection's runtime. It ends when
/// the relay shuts down (after telling the others) or the fan-out goes.
pub fn start(
    nats: &Nats,
    relay_id: String,
    hub: &str,
    local: mpsc::Receiver<LocalPresence>,
    fanout: SyncSender<FanEvent>,
    shutdown: watch::Receiver<bool>,
) {
    let bridge = Bridge {
        client: nats.client.clone(),
        relay_id,
        subject: subject(hub),
        fanout,
        remote: RemoteTable::default(),
    };
    nats.runtime().spawn(bridge.run(local, shutdown));
}

struct Bridge {
    client: async_nats::Client,
    relay_id: String,
    subject: String,
    fanout: SyncSender<FanEvent>,
    remote: RemoteTable,
}

impl Bridge {
    async fn run(
        mut self,
        mut local_rx: mpsc::Receiver<LocalPresence>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut sub = match self.client.subscribe(self.subject.clone()).await {
            Ok(sub) => sub,
            Err(e) => {
                tracing::warn!(
                    "presence of other relays is not shown: subscribing to {} failed: {e}",
                    self.subject
                );
                return;
            }
        };
        let mut local: HashMap<u64, Presence> = HashMap::new();
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                change = local_rx.recv() => {
                    let Some(change) = change else { break };
                    let Ok(Frame::Presence(presence)) = proto::decode_frame(&change.frame) else {
                        continue;
                    };
                    if presence.status == PresenceStatus::Offline {
                        local.remove(&change.conn);
                    } else {
                        local.insert(change.conn, presence.clone());
                    }
                    self.publish(Body::Change { conn: change.conn, presence }).await;
                }
                message = sub.next() => {
                    let Some(message) = message else { break };
                    match rmp_serde::from_slice::<Message>(&message.payload) {
                        Ok(m) if m.relay == self.relay_id => {}
                        Ok(m) => self.receive(m),
                        Err(e) => tracing::debug!("unreadable message on {}: {e}", self.subject),
                    }
                }
                _ = tick.tick() => {
                    let members = local.iter().map(|(c, p)| (*c, p.clone())).collect();
                    self.publish(Body::Heartbeat { members }).await;
                    self.expire(Instant::now());
                }
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        self.publish(Body::Leaving).await;
                        let _ = tokio::time::timeout(Duration::from_secs(2), self.client.flush()).await;
                        break;
                    }
                }
            }
        }
    }

    async fn publish(&self, body: Body) {
        let message = Message {
            relay: self.relay_id.clone(),
            body,
        };
        match rmp_serde::to_vec_named(&message) {
            Ok(bytes) => {
                if let Err(e) = self
                    .client
                    .publish(self.subject.clone(), bytes.into())
                    .await
                {
                    tracing::debug!("presence not published on {}: {e}", self.subject);
                }
            }
            Err(e) => tracing::warn!("presence not encoded: {e}"),
        }
    }

    /// A message from another relay: its changes go to local members.
    fn receive(&mut self, message: Message) {
        for presence in self.remote.receive(message, Instant::now()) {
            self.deliver(presence);
        }
    }

    /// Ends the presence of every member of relays silent for [`SILENCE`].
    fn expire(&mut self, now: Instant) {
        for presence in self.remote.expire(now, &self.subject) {
            self.deliver(presence);
        }
    }

    /// Hands a remote member's presence to this relay's members of the hub.
    fn deliver(&self, presence: Presence) {
        fanout::send_presence(
            &self.fanout,
            fanout::REMOTE,
            encode(&Frame::Presence(presence)),
        );
    }
}

/// What this relay knows of other relays' members in one hub. Each call
/// returns the presence to hand to local members.
#[derive(Default)]
struct RemoteTable {
    relays: HashMap<String, Remote>,
}

impl RemoteTable {
    fn receive(&mut self, message: Message, now: Instant) -> Vec<Presence> {
        if let Body::Leaving = message.body {
            return self
                .relays
                .remove(&message.relay)
                .map(|gone| gone.members.values().map(offline).collect())
                .unwrap_or_default();
        }
        let remote = self.relays.entry(message.relay).or_insert_with(|| Remote {
            last_heard: now,
            members: HashMap::new(),
        });
        remote.last_heard = now;
        let mut deliver = Vec::new();
        match message.body {
            Body::Change { conn, presence } => {
                if presence.status == PresenceStatus::Offline {
                    remote.members.remove(&conn);
                } else {
                    remote.members.insert(conn, presence.clone());
                }
                deliver.push(presence);
            }
            Body::Heartbeat { members } => {
                let listed: HashMap<u64, Presence> = members.into_iter().collect();
                for (conn, presence) in &listed {
                    if remote.members.get(conn) != Some(presence) {
                        deliver.push(presence.clone());
                    }
                }
                for (conn, presence) in &remote.members {
                    if !listed.contains_key(conn) {
                        deliver.push(offline(presence));
                    }
                }
                remote.members = listed;
            }
            Body::Leaving => {}
        }
        deliver
    }

    /// Forgets relays silent for [`SILENCE`] at `now`, ending their members.
    fn expire(&mut self, now: Instant, subject: &str) -> Vec<Presence> {
        let silent: Vec<String> = self
            .relays
            .iter()
            .filter(|(_, r)| now.saturating_duration_since(r.last_heard) >= SILENCE)
            .map(|(id, _)| id.clone())
            .collect();
        let mut ended = Vec::new();
        for id in silent {
            if let Some(gone) = self.relays.remove(&id) {
                tracing::info!(
                    "relay {id} was silent for {} s: ending the presence of its {} member(s) on {subject}",
                    SILENCE.as_secs(),
                    gone.members.len(),
                );
                ended.extend(gone.members.values().map(offline));
            }
        }
        ended
    }
}

/// The `offline` presence ending `presence`'s member.
fn offline(presence: &Presence) -> Presence {
    Presence {
        member: presence.member.clone(),
        status: PresenceStatus::Offline,
        tz: None,
        viewing: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(member: &str, status: PresenceStatus, viewing: &str) -> Presence {
        Presence {
            member: member.into(),
            status,
            tz: None,
            viewing: Some(viewing.into()).filter(|v: &String| !v.is_empty()),
        }
    }

    fn from(relay: &str, body: Body) -> Message {
        Message {
            relay: relay.into(),
            body,
        }
    }

    #[test]
    fn heartbeats_bring_missed_changes_and_end_members_no_longer_listed() {
        let mut table = RemoteTable::default();
        let t0 = Instant::now();
        let ben = seen("ben", PresenceStatus::Online, "brief/1");
        let cy = seen("cy", PresenceStatus::Away, "");
        let out = table.receive(
            from(
                "r2",
                Body::Change {
                    conn: 1,
                    presence: ben.clone(),
                },
            ),
            t0,
        );
        assert_eq!(out, vec![ben.clone()]);
        // The change for cy was lost; the heartbeat carries it, and only it.
        let out = table.receive(
            from(
                "r2",
                Body::Heartbeat {
                    members: vec![(1, ben.clone()), (2, cy.clone())],
                },
            ),
            t0,
        );
        assert_eq!(out, vec![cy.clone()]);
        // Ben's offline was lost too: the next heartbeat no longer lists him.
        let out = table.receive(
            from(
                "r2",
                Body::Heartbeat {
                    members: vec![(2, cy.clone())],
                },
            ),
            t0,
        );
        assert_eq!(out, vec![seen("ben", PresenceStatus::Offline, "")]);
    }

    #[test]
    fn a_silent_relay_has_its_members_ended_and_a_leaving_one_at_once() {
        let mut table = RemoteTable::default();
        let t0 = Instant::now();
        let ben = seen("ben", PresenceStatus::Online, "brief/1");
        let dee = seen("dee", PresenceStatus::Online, "");
        table.receive(
            from(
                "r2",
                Body::Heartbeat {
                    members: vec![(1, ben.clone())],
                },
            ),
            t0,
        );
        table.receive(
            from(
                "r3",
                Body::Heartbeat {
                    members: vec![(7, dee.clone())],
                },
            ),
            t0 + SILENCE / 2,
        );
        assert!(
            table
                .expire(t0 + SILENCE - Duration::from_millis(1), "s")
                .is_empty()
        );
        // r2 went silent; r3 was heard later and stays.
        assert_eq!(
            table.expire(t0 + SILENCE, "s"),
            vec![seen("ben", PresenceStatus::Offline, "")]
        );
        assert!(table.expire(t0 + SILENCE, "s").is_empty());
        assert_eq!(
            table.receive(from("r3", Body::Leaving), t0 + SILENCE),
            vec![seen("dee", PresenceStatus::Offline, "")]
        );
        assert!(table.expire(t0 + SILENCE * 10, "s").is_empty());
    }
}
