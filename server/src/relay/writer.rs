//! A hub's single writer: takes every submission waiting, stores them in one
//! durable commit, then acks them and hands the new ops to the fan-out.
//! Runs on its own thread since commits block on the disk.

use super::fanout::FanEvent;
use crate::metrics::Metrics;
use crate::proto::{AckEntry, SeqOp};
use crate::store::{EncodedOp, OpLog};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::SyncSender;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

pub struct SubmitRequest {
    pub ops: Vec<EncodedOp>,
    pub reply: oneshot::Sender<Result<Vec<AckEntry>, String>>,
}

/// Most ops stored in one commit.
const GROUP_LIMIT: usize = 8192;

pub fn run(
    log: Arc<dyn OpLog>,
    mut rx: mpsc::Receiver<SubmitRequest>,
    fanout: SyncSender<FanEvent>,
    metrics: Arc<Metrics>,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut requests = vec![first];
        let mut count = requests[0].ops.len();
        while count < GROUP_LIMIT {
            match rx.try_recv() {
                Ok(r) => {
                    count += r.ops.len();
                    requests.push(r);
                }
                Err(_) => break,
            }
        }
        let all: Vec<EncodedOp> = requests
            .iter()
            .flat_map(|r| r.ops.iter().cloned())
            .collect();
        let appended = match log.append(&all) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!("commit failed: {e}");
                for r in requests {
                    let _ = r.reply.send(Err(e.to_string()));
                }
                continue;
            }
        };
        let at = Instant::now();
        metrics.commits.fetch_add(1, Relaxed);
        let stored = appended.iter().filter(|a| a.new).count() as u64;
        metrics.ops_stored.fetch_add(stored, Relaxed);
        let mut fresh = Vec::new();
        let mut results = appended.iter();
        for request in requests {
            let mut acks = Vec::with_capacity(request.ops.len());
            for op in request.ops {
                let Some(a) = results.next() else { break };
                acks.push(AckEntry {
                    id: op.id,
                    seq: a.seq,
                });
                if a.new {
                    fresh.push(SeqOp {
                        seq: a.seq,
                        op: op.bytes,
                    });
                } else {
                    metrics.ops_duplicate.fetch_add(1, Relaxed);
                }
            }
            let _ = request.reply.send(Ok(acks));
        }
        if !fresh.is_empty() {
            // No members is fine: the ops are in the log.
            let _ = fanout.send(FanEvent::Committed { ops: fresh, at });
        }
    }
}
