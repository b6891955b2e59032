//! [`JetStreamLog`]: a hub's op log on a NATS JetStream stream, so several
//! relays can serve one hub. One stream per hub, one message per op, and
//! the stream sequence is the hub seq: nothing is ever deleted, so it is
//! contiguous from 1. Every publish names the sequence it expects to follow
//! (`Nats-Expected-Last-Sequence`) and, within a batch, the op before it
//! (`Nats-Expected-Last-Msg-Id`), so two relays writing one hub cannot
//! interleave unnoticed: the loser catches up on what the other stored,
//! judges the rest of its batch again and publishes again. JetStream's own
//! dedup lasts only its duplicate window, so the log keeps `(client, client
//! seq) -> seq` itself, rebuilt from a snapshot plus the stream on open.
//! See "Running on NATS JetStream" in PROTOCOL.md.

use super::{Appended, EncodedOp, LogError, OpLog, admit_new};
use crate::nats::{Nats, is_plain_token};
use crate::policy::{PolicyState, rules};
use crate::proto::SeqOp;
use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{object_store::ObjectStore, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// The object store bucket that holds every hub's snapshot.
pub const SNAPSHOT_BUCKET: &str = "spoke_policy";

/// Publishes waiting for their ack at once, within one batch.
const PUBLISH_WINDOW: usize = 256;

/// Ops read per request when catching up or replaying.
const READ_CHUNK: usize = 4096;

/// Ranges this short are read by sequence, without a consumer.
const SMALL_READ: u64 = 4;

/// How long an append keeps retrying while the cluster cannot take it (a
/// node died and the stream elects a new leader) before it fails.
const RETRY_FOR: Duration = Duration::from_secs(30);

/// How long to wait for the cluster to make a consumer. It places one on
/// a node of the stream, and one that just died may still be picked (the
/// request then waits in vain): better to ask again.
const CONSUMER_WAIT: Duration = Duration::from_secs(2);

/// How long a follower waits for a message before it checks that the
/// stream is as quiet as its consumer.
const FOLLOW_QUIET_CHECK: Duration = Duration::from_secs(1);

/// How a hub's stream is made, and how often its snapshot is written.
#[derive(Debug, Clone)]
pub struct JetStreamConfig {
    /// Copies of every op the cluster keeps (a publish is acknowledged once
    /// a majority has it).
    pub replicas: usize,
    /// JetStream's own duplicate window; the log's dedup does not depend on it.
    pub duplicate_window: Duration,
    /// A snapshot is written after this many new ops.
    pub snapshot_every: u64,
}

impl Default for JetStreamConfig {
    fn default() -> Self {
        JetStreamConfig {
            replicas: 3,
            duplicate_window: Duration::from_secs(120),
            snapshot_every: 4096,
        }
    }
}

/// The stream that holds `hub`'s log.
pub fn stream_name(hub: &str) -> String {
    format!("SPOKE_HUB_{hub}")
}

/// The subject `hub`'s ops are published on.
pub fn subject(hub: &str) -> String {
    format!("spoke.hub.{hub}.ops")
}

/// What a snapshot holds: the log's knowledge up to `seq`.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    epoch: u64,
    seq: u64,
    rows: Vec<(String, serde_bytes::ByteBuf)>,
    /// `(client, client seq, seq)`.
    dedup: Vec<(u64, u64, u64)>,
}

/// What the log knows, as of `applied`.
#[derive(Default)]
struct Known {
    /// The last seq applied to `rows` and `dedup`.
    applied: u64,
    dedup: HashMap<(u64, u64), u64>,
    /// The policy state as rows, as of `applied`.
    rows: BTreeMap<String, Vec<u8>>,
    snapshot_seq: u64,
}

/// A hub's op log on NATS JetStream.
pub struct JetStreamLog {
    nats: Nats,
    hub: String,
    stream: stream::Stream,
    subject: String,
    snapshots: ObjectStore,
    config: JetStreamConfig,
    epoch: u64,
    /// The highest seq known to be in the stream.
    head: AtomicU64,
    /// Held across JetStream calls: one append or catch-up at a time.
    known: tokio::sync::Mutex<Known>,
}

/// How one round of publishes ended.
enum Published {
    All,
    /// Only the first `stored` planned ops are in the stream as planned:
    /// another writer got in first, or JetStream did not answer.
    Cut {
        stored: usize,
        error: String,
    },
}

impl JetStreamLog {
    /// Opens `hub`'s log on `nats`, creating its stream when missing, then
    /// loads its snapshot and reads the stream past it. Blocks: call it
    /// outside the runtime's worker threads.
    pub fn open(nats: &Nats, hub: &str, config: JetStreamConfig) -> Result<JetStreamLog, LogError> {
        let where_ = PathBuf::from(format!("nats:{}", stream_name(hub)));
        let err = |detail: String| LogError {
            path: where_.clone(),
            detail,
        };
        if !is_plain_token(hub) {
            return Err(err(format!(
                "hub id `{hub}` cannot name a stream (letters, digits, - and _ only)"
            )));
        }
        let stream_config = stream::Config {
            name: stream_name(hub),
            description: Some(format!(
                "Spoke hub {hub}: one op per message, seq = hub seq"
            )),
            subjects: vec![subject(hub)],
            storage: stream::StorageType::File,
            num_replicas: config.replicas,
            duplicate_window: config.duplicate_window,
            retention: stream::RetentionPolicy::Limits,
            max_messages: -1,
            max_bytes: -1,
            max_age: Duration::ZERO,
            deny_delete: true,
            deny_purge: true,
            allow_direct: true,
            ..Default::default()
        };
        let runtime = nats.runtime().clone();
        let (stream, snapshots) = runtime
            .block_on(async {
                let stream = nats.ensure_stream(stream_config).await?;
                let snapshots = nats
                    .ensure_object_store(SNAPSHOT_BUCKET, config.replicas)
                    .await?;
                anyhow::Ok((stream, snapshots))
            })
            .map_err(|e| err(format!("{e:#}")))?;
        // A stream made again is a new log: its creation time is the epoch.
        let epoch = (stream.cached_info().created.unix_timestamp_nanos() as u64).max(1);
        let log = JetStreamLog {
            nats: nats.clone(),
            hub: hub.to_owned(),
            stream,
            subject: subject(hub),
            snapshots,
            config,
            epoch,
            head: AtomicU64::new(0),
            known: tokio::sync::Mutex::new(Known::default()),
        };
        runtime.block_on(log.load())?;
        Ok(log)
    }

    /// The hub this log belongs to.
    pub fn hub(&self) -> &str {
        &self.hub
    }

    /// The stream this log lives in.
    pub fn stream_name(&self) -> String {
        stream_name(&self.hub)
    }

    /// Records that the stream holds ops up to `seq` (seen by a follower of
    /// the stream), so `head` moves before this relay writes again.
    pub fn note_head(&self, seq: u64) {
        self.head.fetch_max(seq, Ordering::AcqRel);
    }

    /// Writes the snapshot now (it is also written every
    /// [`JetStreamConfig::snapshot_every`] ops).
    pub fn snapshot(&self) -> Result<(), LogError> {
        self.nats.runtime().block_on(async {
            let mut known = self.known.lock().await;
            self.write_snapshot(&mut known).await
        })
    }

    /// Follows the stream from seq `from` on, handing each run of new ops
    /// to `deliver` in seq order with no gaps, until `deliver` returns
    /// false. Blocks: run it on a thread of its own. When the cluster drops
    /// the consumer (a node died), it follows again from the next seq.
    pub fn follow(&self, from: u64, mut deliver: impl FnMut(Vec<SeqOp>) -> bool) {
        let mut next = from.max(1);
        self.nats.runtime().block_on(async {
            loop {
                match self.follow_once(&mut next, &mut deliver).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!("hub {}: following the stream from {next}: {e}", self.hub);
                        // Until a consumer can be had again, members still
                        // get what the stream holds, read op by op.
                        match self.follow_directly(&mut next, &mut deliver).await {
                            Ok(false) => return,
                            Ok(true) => {}
                            Err(e) => tracing::warn!(
                                "hub {}: reading the stream from {next}: {e}",
                                self.hub
                            ),
                        }
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
            }
        });
    }

    /// Hands `deliver` what the stream holds from `next` on, read op by op
    /// from its leader without a consumer. False when `deliver` asked to
    /// stop.
    async fn follow_directly(
        &self,
        next: &mut u64,
        deliver: &mut impl FnMut(Vec<SeqOp>) -> bool,
    ) -> Result<bool, LogError> {
        let last = self.last_seq().await?;
        while *next <= last {
            let count = (last + 1 - *next).min(PUBLISH_WINDOW as u64);
            let ops = self.fetch_direct(*next, count).await?;
            let Some(end) = ops.last().map(|o| o.seq) else {
                break;
            };
            *next = end + 1;
            self.note_head(end);
            if !deliver(ops) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Ok when `deliver` asked to stop; an error when the follow broke.
    /// A consumer that brings nothing for two quiet checks in a row while
    /// the stream holds more (its node died and it did not come back) is
    /// an error too, so the caller makes a new one.
    async fn follow_once(
        &self,
        next: &mut u64,
        deliver: &mut impl FnMut(Vec<SeqOp>) -> bool,
    ) -> anyhow::Result<()> {
        let consumer = tokio::time::timeout(
            CONSUMER_WAIT,
            self.stream.create_consumer(pull::OrderedConfig {
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: *next,
                },
                ..Default::default()
            }),
        )
        .await
        .map_err(|_| anyhow::anyhow!("no consumer within {CONSUMER_WAIT:?}"))??;
        let mut messages = consumer.messages().await?;
        let mut stuck_at = None;
        loop {
            let first = match tokio::time::timeout(FOLLOW_QUIET_CHECK, messages.next()).await {
                Ok(Some(message)) => message?,
                Ok(None) => anyhow::bail!("the stream's consumer ended"),
                Err(_) => {
                    let last = self.last_seq().await?;
                    if last < *next {
                        stuck_at = None;
                    } else if stuck_at == Some(*next) {
                        anyhow::bail!(
                            "the stream holds seq {last} but its consumer brought nothing from seq {next}"
                        );
                    } else {
                        stuck_at = Some(*next);
                    }
                    continue;
                }
            };
            let mut ops = Vec::new();
            take_next(&first, next, &mut ops)?;
            // Take what has already arrived too, so a burst goes out together.
            let mut broken = None;
            while broken.is_none() && ops.len() < READ_CHUNK {
                match futures_util::FutureExt::now_or_never(messages.next()) {
                    Some(Some(Ok(m))) => broken = take_next(&m, next, &mut ops).err(),
                    Some(Some(Err(e))) => broken = Some(anyhow::anyhow!("{e}")),
                    Some(None) | None => break,
                }
            }
            if !ops.is_empty() {
                stuck_at = None;
                self.note_head(*next - 1);
                if !deliver(ops) {
                    return Ok(());
                }
            }
            if let Some(e) = broken {
                return Err(e);
            }
        }
    }

    fn err(&self, detail: impl std::fmt::Display) -> LogError {
        LogError {
            path: PathBuf::from(format!("nats:{}", stream_name(&self.hub))),
            detail: detail.to_string(),
        }
    }

    /// Snapshot, then the stream past it.
    async fn load(&self) -> Result<(), LogError> {
        let mut known = self.known.lock().await;
        match self.read_snapshot().await {
            Ok(Some(snapshot)) if snapshot.epoch == self.epoch => {
                known.applied = snapshot.seq;
                known.snapshot_seq = snapshot.seq;
                known.rows = snapshot
                    .rows
                    .into_iter()
                    .map(|(k, v)| (k, v.into_vec()))
                    .collect();
                known.dedup = snapshot
                    .dedup
                    .into_iter()
                    .map(|(client, cseq, seq)| ((client, cseq), seq))
                    .collect();
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(
                "hub {}: snapshot unreadable, reading the whole stream: {e}",
                self.hub
            ),
        }
        let mut policy = PolicyState::load(known.rows.iter()).map_err(|e| self.err(e))?;
        self.catch_up(&mut known, &mut policy).await
    }

    async fn read_snapshot(&self) -> anyhow::Result<Option<Snapshot>> {
        let mut object = match self.snapshots.get(&self.hub).await {
            Ok(o) => o,
            Err(e) if e.kind() == async_nats::jetstream::object_store::GetErrorKind::NotFound => {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let mut bytes = Vec::new();
        object.read_to_end(&mut bytes).await?;
        Ok(Some(rmp_serde::from_slice(&bytes)?))
    }

    async fn write_snapshot(&self, known: &mut Known) -> Result<(), LogError> {
        let snapshot = Snapshot {
            epoch: self.epoch,
            seq: known.applied,
            rows: known
                .rows
                .iter()
                .map(|(k, v)| (k.clone(), serde_bytes::ByteBuf::from(v.clone())))
                .collect(),
            dedup: known
                .dedup
                .iter()
                .map(|(&(client, cseq), &seq)| (client, cseq, seq))
                .collect(),
        };
        let bytes = rmp_serde::to_vec(&snapshot).map_err(|e| self.err(e))?;
        self.snapshots
            .put(self.hub.as_str(), &mut bytes.as_slice())
            .await
            .map_err(|e| self.err(format!("writing the snapshot: {e}")))?;
        known.snapshot_seq = snapshot.seq;
        Ok(())
    }

    async fn last_seq(&self) -> Result<u64, LogError> {
        let info = self
            .stream
            .get_info()
            .await
            .map_err(|e| self.err(format!("reading the stream's state: {e}")))?;
        Ok(info.state.last_sequence)
    }

    /// Applies what the stream holds past `known.applied` to `known` and
    /// `policy` (which must be the state as of `known.applied`), as every
    /// replica does: in seq order, refused ops left out of the state.
    async fn catch_up(&self, known: &mut Known, policy: &mut PolicyState) -> Result<(), LogError> {
        loop {
            let last = self.last_seq().await?;
            if last <= known.applied {
                break;
            }
            let chunk = self.fetch(known.applied + 1, last, READ_CHUNK).await?;
            if chunk.is_empty() {
                return Err(self.err(format!(
                    "seq {} is missing from the stream (its last is {last})",
                    known.applied + 1
                )));
            }
            for stored in chunk {
                if stored.seq != known.applied + 1 {
                    return Err(self.err(format!(
                        "the stream skips from seq {} to {}",
                        known.applied, stored.seq
                    )));
                }
                if let Some(op) = EncodedOp::from_bytes(stored.op) {
                    let _ = policy.admit(&op.op.as_ref(), op.from_relay);
                    if !op.from_relay {
                        known
                            .dedup
                            .entry((op.id.client.0, op.id.seq))
                            .or_insert(stored.seq);
                    }
                }
                known.applied = stored.seq;
            }
        }
        known.rows.extend(policy.take_changes());
        self.note_head(known.applied);
        Ok(())
    }

    /// Stored ops `from..=upto`, at most `max` of them, in seq order.
    async fn fetch(&self, from: u64, upto: u64, max: usize) -> Result<Vec<SeqOp>, LogError> {
        if from > upto || max == 0 {
            return Ok(Vec::new());
        }
        let want = (upto - from + 1).min(max as u64);
        if want <= SMALL_READ {
            return self.fetch_direct(from, want).await;
        }
        let mut out = Vec::with_capacity(want as usize);
        let created = tokio::time::timeout(
            CONSUMER_WAIT,
            self.stream.create_consumer(pull::Config {
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: from,
                },
                ack_policy: AckPolicy::None,
                inactive_threshold: Duration::from_secs(30),
                memory_storage: true,
                num_replicas: 1,
                ..Default::default()
            }),
        )
        .await;
        let consumer = match created {
            Ok(consumer) => {
                consumer.map_err(|e| self.err(format!("reading from seq {from}: {e}")))?
            }
            // No consumer to be had now (the cluster placed it on a node
            // that died): read the first ops one by one instead.
            Err(_) => return self.fetch_direct(from, want.min(SMALL_READ)).await,
        };
        let result = async {
            while (out.len() as u64) < want {
                let mut batch = consumer
                    .fetch()
                    .max_messages((want as usize - out.len()).min(READ_CHUNK))
                    .messages()
                    .await
                    .map_err(|e| self.err(format!("reading from seq {from}: {e}")))?;
                let before = out.len();
                while let Some(message) = batch.next().await {
                    let message =
                        message.map_err(|e| self.err(format!("reading from seq {from}: {e}")))?;
                    let seq = message
                        .info()
                        .map_err(|e| self.err(format!("reading from seq {from}: {e}")))?
                        .stream_sequence;
                    if seq > upto || (out.len() as u64) >= want {
                        break;
                    }
                    out.push(SeqOp {
                        seq,
                        op: message.payload.to_vec(),
                    });
                }
                if out.len() == before || out.last().is_some_and(|o| o.seq >= upto) {
                    break;
                }
            }
            Ok(())
        }
        .await;
        let name = consumer.cached_info().name.clone();
        let stream = self.stream.clone();
        // Nobody waits for the clean-up; the consumer also expires when idle.
        tokio::spawn(async move {
            let _ = stream.delete_consumer(&name).await;
        });
        result?;
        if out.is_empty() {
            // The consumer brought nothing in its wait (a stream that just
            // changed leader can be slow to serve one): read the first ops
            // one by one, so a read in range never comes back empty.
            return self.fetch_direct(from, want.min(SMALL_READ)).await;
        }
        Ok(out)
    }

    /// Ops `from..from + count`, each asked of the stream's leader.
    async fn fetch_direct(&self, from: u64, count: u64) -> Result<Vec<SeqOp>, LogError> {
        let mut out = Vec::with_capacity(count as usize);
        for seq in from..from + count {
            // The stream's leader answers, so an acknowledged op is there.
            let message = self
                .stream
                .get_raw_message(seq)
                .await
                .map_err(|e| self.err(format!("reading seq {seq}: {e}")))?;
            out.push(SeqOp {
                seq: message.sequence,
                op: message.payload.to_vec(),
            });
        }
        Ok(out)
    }

    /// Publishes `planned` (index into `ops`, the seq it must get) in order,
    /// each expecting the one before it.
    async fn publish(
        &self,
        ops: &[EncodedOp],
        renumbered: &HashMap<usize, EncodedOp>,
        planned: &[(usize, u64)],
    ) -> Published {
        let mut inflight: VecDeque<(u64, async_nats::jetstream::context::PublishAckFuture)> =
            VecDeque::new();
        let mut stored = 0;
        let mut cut: Option<String> = None;
        let mut previous_id: Option<String> = None;
        let settle = |seq: u64,
                      result: Result<
            async_nats::jetstream::publish::PublishAck,
            async_nats::jetstream::context::PublishError,
        >|
         -> Result<(), String> {
            match result {
                Ok(ack) if ack.sequence == seq && !ack.duplicate => Ok(()),
                Ok(ack) if ack.duplicate => Err(format!(
                    "seq {seq}: the op is already in the stream at seq {}",
                    ack.sequence
                )),
                Ok(ack) => Err(format!("seq {seq}: stored at seq {} instead", ack.sequence)),
                Err(e) => Err(match e.kind() {
                    PublishErrorKind::WrongLastSequence | PublishErrorKind::WrongLastMessageId => {
                        format!("seq {seq}: another relay wrote first")
                    }
                    _ => format!("seq {seq}: {e}"),
                }),
            }
        };
        for &(index, seq) in planned {
            if cut.is_some() {
                break;
            }
            let op = renumbered.get(&index).unwrap_or(&ops[index]);
            let id = message_id(op);
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", id.as_str());
            headers.insert(
                "Nats-Expected-Last-Sequence",
                (seq - 1).to_string().as_str(),
            );
            if let Some(previous) = &previous_id {
                headers.insert("Nats-Expected-Last-Msg-Id", previous.as_str());
            }
            let message = PublishMessage::build()
                .payload(Bytes::copy_from_slice(&op.bytes))
                .headers(headers);
            match self
                .nats
                .jetstream
                .send_publish(self.subject.clone(), message)
                .await
            {
                Ok(ack) => inflight.push_back((seq, ack)),
                Err(e) => {
                    cut = Some(format!("seq {seq}: {e}"));
                    break;
                }
            }
            previous_id = Some(id);
            while inflight.len() >= PUBLISH_WINDOW {
                if let Some((seq, ack)) = inflight.pop_front() {
                    match settle(seq, ack.await) {
                        Ok(()) if cut.is_none() => stored += 1,
                        Ok(()) => {}
                        Err(e) => {
                            cut.get_or_insert(e);
                        }
                    }
                }
            }
        }
        while let Some((seq, ack)) = inflight.pop_front() {
            match settle(seq, ack.await) {
                Ok(()) if cut.is_none() => stored += 1,
                Ok(()) => {}
                Err(e) => {
                    cut.get_or_insert(e);
                }
            }
        }
        match cut {
            None => Published::All,
            Some(error) => Published::Cut { stored, error },
        }
    }

    async fn append_async(
        &self,
        ops: &[EncodedOp],
        policy: &mut PolicyState,
    ) -> Result<Vec<Appended>, LogError> {
        let mut known = self.known.lock().await;
        let mut out: Vec<Appended> = Vec::with_capacity(ops.len());
        let started = Instant::now();
        let mut behind = false;
        while out.len() < ops.len() {
            if behind {
                if let Err(e) = self.catch_up(&mut known, policy).await {
                    if started.elapsed() > RETRY_FOR {
                        return Err(e);
                    }
                    tracing::warn!("hub {}: catching up failed, retrying: {e}", self.hub);
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
                behind = false;
            }
            // Judge what is left against a copy, so a round that does not
            // land leaves `policy` as the stream has it.
            let mut trial = policy.clone();
            let mut tentative = Vec::with_capacity(ops.len() - out.len());
            let mut planned = Vec::new();
            let mut batch_dedup = HashMap::new();
            let mut renumbered: HashMap<usize, EncodedOp> = HashMap::new();
            let mut next = known.applied;
            for (index, op) in ops.iter().enumerate().skip(out.len()) {
                // The relay's own ops take the hub seq they are stored at
                // as their client seq: relays sharing a hub would number
                // them alike otherwise, and two ops with one id are one op
                // to a replica.
                let own;
                let op = match op.from_relay.then(|| with_relay_seq(op, next + 1)) {
                    Some(Some(o)) => {
                        own = o;
                        &own
                    }
                    _ => op,
                };
                let view = op.op.as_ref();
                if let Err(refusal) = rules::judge_owner(&trial, &view) {
                    tentative.push(Appended::Refused(refusal));
                    continue;
                }
                let key = (op.id.client.0, op.id.seq);
                // The relay's own ops are never resends: two relays may
                // number theirs alike, so they are not deduplicated.
                if !op.from_relay
                    && let Some(&seq) = known.dedup.get(&key).or(batch_dedup.get(&key))
                {
                    tentative.push(Appended::Stored { seq, new: false });
                    continue;
                }
                if let Err(refusal) = admit_new(op, &mut trial) {
                    tentative.push(Appended::Refused(refusal));
                    continue;
                }
                next += 1;
                if !op.from_relay {
                    batch_dedup.insert(key, next);
                } else {
                    renumbered.insert(index, op.clone());
                }
                tentative.push(Appended::Stored {
                    seq: next,
                    new: true,
                });
                planned.push((index, next));
            }
            // A refusal after the last published op was judged on what
            // this log knew; no publish proved that current, so ask.
            let published_upto = planned.last().map_or(out.len(), |p| p.0 + 1);
            let unproven = tentative[published_upto - out.len()..]
                .iter()
                .position(|a| matches!(a, Appended::Refused(_)))
                .map(|at| published_upto + at);
            match self.publish(ops, &renumbered, &planned).await {
                Published::All => {
                    let base = out.len();
                    let keep = unproven.unwrap_or(ops.len()) - base;
                    *policy = trial;
                    known.applied = next;
                    known.dedup.extend(batch_dedup);
                    known.rows.extend(policy.take_changes());
                    self.note_head(next);
                    let current = match unproven {
                        None => true,
                        Some(_) => match self.last_seq().await {
                            Ok(last) => last == next,
                            Err(e) => {
                                tracing::warn!("hub {}: {e}", self.hub);
                                false
                            }
                        },
                    };
                    if current {
                        out.extend(tentative);
                    } else {
                        out.extend(tentative.into_iter().take(keep));
                        behind = true;
                        if started.elapsed() > RETRY_FOR {
                            return Err(self.err("could not confirm a refusal against the stream"));
                        }
                    }
                }
                Published::Cut { stored, error } => {
                    // Results up to the first op that did not land stand;
                    // the rest is judged again once the log has caught up.
                    let first_missing = planned[stored].0;
                    let keep = first_missing - out.len();
                    out.extend(tentative.into_iter().take(keep));
                    behind = true;
                    if started.elapsed() > RETRY_FOR {
                        return Err(self.err(format!("publishing failed: {error}")));
                    }
                    tracing::debug!("hub {}: publishing again: {error}", self.hub);
                    if !error.contains("another relay") && !error.contains("already in") {
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
            }
        }
        if known.applied >= known.snapshot_seq + self.config.snapshot_every
            && let Err(e) = self.write_snapshot(&mut known).await
        {
            // The stream holds the truth; a missing snapshot only makes
            // opening slower.
            tracing::warn!("hub {}: {e}", self.hub);
        }
        Ok(out)
    }
}

/// The relay's op `op` with `seq` as its client seq; `None` if it cannot
/// be encoded again (it is then stored as it came).
/// Adds a followed message to `ops` when it holds seq `next` (and moves
/// `next` on); skips one already seen; an error when seqs were skipped.
fn take_next(
    message: &async_nats::jetstream::Message,
    next: &mut u64,
    ops: &mut Vec<SeqOp>,
) -> anyhow::Result<()> {
    let seq = message
        .info()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .stream_sequence;
    if seq < *next {
        return Ok(());
    }
    anyhow::ensure!(seq == *next, "the stream skipped from seq {next} to {seq}");
    ops.push(SeqOp {
        seq,
        op: message.payload.to_vec(),
    });
    *next = seq + 1;
    Ok(())
}

fn with_relay_seq(op: &EncodedOp, seq: u64) -> Option<EncodedOp> {
    let mut decoded = crate::proto::decode_op(&op.bytes).ok()?;
    decoded.id.seq = seq;
    EncodedOp::from_bytes(crate::proto::encode_op(&decoded).ok()?)
}

/// JetStream's dedup id for an op. The relay's own ops get a unique one (two
/// relays may give theirs the same client seq).
fn message_id(op: &EncodedOp) -> String {
    if op.from_relay {
        let nonce = u64::from_le_bytes(crate::auth::random::<8>());
        format!("relay:{nonce:016x}")
    } else {
        format!("{}:{}", op.id.client.0, op.id.seq)
    }
}

impl OpLog for JetStreamLog {
    fn epoch(&self) -> u64 {
        self.epoch
    }

    fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    fn append(
        &self,
        ops: &[EncodedOp],
        policy: &mut PolicyState,
    ) -> Result<Vec<Appended>, LogError> {
        self.nats.runtime().block_on(self.append_async(ops, policy))
    }

    fn load_policy(&self) -> Result<PolicyState, LogError> {
        self.nats.runtime().block_on(async {
            let mut known = self.known.lock().await;
            let mut policy = PolicyState::load(known.rows.iter()).map_err(|e| self.err(e))?;
            self.catch_up(&mut known, &mut policy).await?;
            Ok(policy)
        })
    }

    fn read(
        &self,
        from: u64,
        upto: u64,
        max_ops: usize,
        max_bytes: usize,
    ) -> Result<Vec<SeqOp>, LogError> {
        // Past the head nothing is known to be stored yet.
        let upto = upto.min(self.head());
        let mut ops = self
            .nats
            .runtime()
            .block_on(self.fetch(from, upto, max_ops))?;
        let mut bytes = 0;
        let mut keep = 0;
        for op in &ops {
            if keep > 0 && bytes + op.op.len() > max_bytes {
                break;
            }
            bytes += op.op.len() + 16;
            keep += 1;
        }
        ops.truncate(keep);
        Ok(ops)
    }
}
