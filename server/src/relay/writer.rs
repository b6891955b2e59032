//! A hub's single writer: takes every request waiting, checks each op
//! against the hub's rules, stores the accepted ones in one durable commit,
//! then answers each request and hands the new ops to the fan-out. It owns
//! the hub's policy state, so every op is judged against the state left by
//! the ops sequenced before it. Runs on its own thread since commits block
//! on the disk (or on the cluster's ack). When the log is shared by several
//! relays, the hub's fan-out follows the log instead of this writer.

use super::fanout::FanEvent;
use crate::metrics::Metrics;
use crate::policy::rules::GRANT_TOKEN_FIELD;
use crate::policy::{Change, PolicyState, RELAY_ACTOR, RELAY_CLIENT, Role};
use crate::proto::{self, EntityKey, Hlc, OpId, SeqOp};
use crate::store::{Appended, EncodedOp, OpLog};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::SyncSender;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

pub enum WriterRequest {
    /// A member's ops: each is answered with where it ended up.
    Submit {
        ops: Vec<EncodedOp>,
        reply: oneshot::Sender<Result<Vec<Appended>, String>>,
    },
    /// A token's first use: its role is granted to its member (once per
    /// token) by an op the relay writes; answered with the member's roles.
    Grant {
        token: String,
        handle: String,
        role: Role,
        reply: oneshot::Sender<Result<Vec<Role>, String>>,
    },
}

impl WriterRequest {
    fn len(&self) -> usize {
        match self {
            WriterRequest::Submit { ops, .. } => ops.len(),
            WriterRequest::Grant { .. } => 1,
        }
    }
}

/// Most ops stored in one commit.
const GROUP_LIMIT: usize = 8192;

pub fn run(
    log: Arc<dyn OpLog>,
    mut policy: PolicyState,
    mut rx: mpsc::Receiver<WriterRequest>,
    fanout: Option<SyncSender<FanEvent>>,
    metrics: Arc<Metrics>,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut requests = vec![first];
        let mut count = requests[0].len();
        while count < GROUP_LIMIT {
            match rx.try_recv() {
                Ok(r) => {
                    count += r.len();
                    requests.push(r);
                }
                Err(_) => break,
            }
        }
        // Each request's ops, in order; grants become the relay's own ops.
        let mut all: Vec<EncodedOp> = Vec::with_capacity(count);
        let mut spans = Vec::with_capacity(requests.len());
        for request in &requests {
            let start = all.len();
            match request {
                WriterRequest::Submit { ops, .. } => all.extend(ops.iter().cloned()),
                WriterRequest::Grant {
                    token,
                    handle,
                    role,
                    ..
                } => {
                    // The first use is always written, naming the token; the
                    // rules refuse a second one (a repeat in this batch, or
                    // one another relay sharing the log stored first). The
                    // role is set unless the member holds it already; the
                    // first grant also puts the hub's rules in force (a hub
                    // from before them).
                    if !policy.token_granted(token) {
                        let role = (!policy.roles_of(handle).contains(role)
                            || !policy.rules_in_force())
                        .then_some(*role);
                        if let Some(op) = grant_op(&mut policy, handle, role, token) {
                            all.push(op);
                        }
                    }
                }
            }
            spans.push(start..all.len());
        }
        let appended = match log.append(&all, &mut policy) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!("commit failed: {e}");
                // The in-memory rules saw ops that were not stored.
                match log.load_policy() {
                    Ok(p) => policy = p,
                    Err(e) => tracing::error!("reloading the hub's policy failed: {e}"),
                }
                for r in requests {
                    match r {
                        WriterRequest::Submit { reply, .. } => {
                            let _ = reply.send(Err(e.to_string()));
                        }
                        WriterRequest::Grant { reply, .. } => {
                            let _ = reply.send(Err(e.to_string()));
                        }
                    }
                }
                continue;
            }
        };
        let at = Instant::now();
        metrics.commits.fetch_add(1, Relaxed);
        let mut fresh = Vec::new();
        for (op, result) in all.into_iter().zip(&appended) {
            match result {
                Appended::Stored { seq, new: true } => {
                    metrics.ops_stored.fetch_add(1, Relaxed);
                    fresh.push(SeqOp {
                        seq: *seq,
                        op: op.bytes,
                    });
                }
                Appended::Stored { new: false, .. } => {
                    metrics.ops_duplicate.fetch_add(1, Relaxed);
                }
                Appended::Refused(_) => {
                    metrics.ops_refused.fetch_add(1, Relaxed);
                }
            }
        }
        for (request, span) in requests.into_iter().zip(spans) {
            match request {
                WriterRequest::Submit { reply, .. } => {
                    let _ = reply.send(Ok(appended[span].to_vec()));
                }
                WriterRequest::Grant { handle, reply, .. } => {
                    let _ = reply.send(Ok(policy.roles_of(&handle)));
                }
            }
        }
        // Without a fan-out here, a follower of the shared log feeds it.
        if let Some(fanout) = &fanout
            && !fresh.is_empty()
        {
            // No members is fine: the ops are in the log.
            let _ = fanout.send(FanEvent::Committed { ops: fresh, at });
        }
    }
}

/// The relay's op recording the first use of `token` by `handle`, and
/// granting it `role` when given.
fn grant_op(
    policy: &mut PolicyState,
    handle: &str,
    role: Option<Role>,
    token: &str,
) -> Option<EncodedOp> {
    let mut fields = BTreeMap::from([(
        format!("{GRANT_TOKEN_FIELD}{token}"),
        serde_json::Value::Bool(true),
    )]);
    if let Some(role) = role {
        fields.insert(format!("roles:{role}"), serde_json::Value::Bool(true));
    }
    let change = Change::Set(fields);
    let op = proto::Op {
        id: OpId {
            client: RELAY_CLIENT,
            seq: policy.next_relay_seq(),
        },
        hlc: Hlc {
            wall_ms: crate::auth::now_ms(),
            logical: 0,
        },
        actor: RELAY_ACTOR.to_owned(),
        entity: EntityKey {
            kind: "member".into(),
            id: handle.to_owned(),
        },
        kind: change.wire_kind().to_owned(),
        body: change.encode_body(),
    };
    let bytes = proto::encode_op(&op).ok()?;
    EncodedOp::from_bytes(bytes)
}
