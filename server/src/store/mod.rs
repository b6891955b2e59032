//! The relay's per-hub op log: ops by hub seq, a dedup table so a resent op
//! gets its original seq, the hub's epoch and head, and the policy state the
//! rules need. A batch is checked, sequenced and stored, with the policy
//! rows it changed, durably before anyone is answered. The log sits behind
//! [`OpLog`]; [`RedbLog`] keeps it in a local file, [`JetStreamLog`] on a NATS
//! JetStream stream that several relays share.

pub mod jetstream;
pub mod redb;

pub use self::jetstream::{JetStreamConfig, JetStreamLog};
pub use self::redb::{DEFAULT_CACHE_BYTES, RedbLog};

use crate::policy::{DecodedOp, PolicyState, Refusal};
use crate::proto::{OpId, SeqOp};
use std::path::PathBuf;

/// An op ready to store: its id (for dedup), its wire encoding and its
/// decoded form (for the rules).
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedOp {
    pub id: OpId,
    pub bytes: Vec<u8>,
    pub op: DecodedOp,
    /// Written by the relay itself (a role grant), not by a member.
    pub from_relay: bool,
}

impl EncodedOp {
    /// Decodes stored bytes; `None` when they are not a readable op.
    pub fn from_bytes(bytes: Vec<u8>) -> Option<EncodedOp> {
        let op = DecodedOp::decode(&bytes).ok()?;
        Some(EncodedOp {
            id: op.id,
            from_relay: op.id.client == crate::policy::RELAY_CLIENT,
            bytes,
            op,
        })
    }
}

/// Where one submitted op ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored under `seq`; `new` is false when it was already in the log
    /// (a resend by its owner).
    Stored { seq: u64, new: bool },
    /// Refused by the rules: never stored, never fanned out.
    Refused(Refusal),
}

impl Appended {
    pub fn seq(&self) -> Option<u64> {
        match self {
            Appended::Stored { seq, .. } => Some(*seq),
            Appended::Refused(_) => None,
        }
    }

    pub fn is_new(&self) -> bool {
        matches!(self, Appended::Stored { new: true, .. })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("hub log {}: {detail}", path.display())]
pub struct LogError {
    pub path: PathBuf,
    pub detail: String,
}

/// A hub's durable, sequenced op log.
pub trait OpLog: Send + Sync + 'static {
    fn epoch(&self) -> u64;
    /// The seq of the last stored op (0 when empty).
    fn head(&self) -> u64;
    /// Checks each op against `policy` (which it updates), then sequences
    /// and durably stores the accepted ones, with the policy rows they
    /// changed, in one commit. An op whose client id belongs to another
    /// member is refused before anything else; an op already stored (same
    /// client id and client seq, same owner) keeps its original seq. If the
    /// commit fails, `policy` is stale: reload it with [`OpLog::load_policy`].
    fn append(
        &self,
        ops: &[EncodedOp],
        policy: &mut PolicyState,
    ) -> Result<Vec<Appended>, LogError>;
    /// The policy state as last committed.
    fn load_policy(&self) -> Result<PolicyState, LogError>;
    /// Stored ops with `from <= seq <= upto`, at most `max_ops` of them and
    /// about `max_bytes` (always at least one op if any is in range).
    fn read(
        &self,
        from: u64,
        upto: u64,
        max_ops: usize,
        max_bytes: usize,
    ) -> Result<Vec<SeqOp>, LogError>;
}

/// The intake checks an op passes after its owner and the dedup table: a
/// lease claim's clock, then the rules (which record it in `policy`).
pub(crate) fn admit_new(op: &EncodedOp, policy: &mut PolicyState) -> Result<(), Refusal> {
    let view = op.op.as_ref();
    crate::policy::push::check_claim_clock(&view, now_ms())
        .and_then(|()| policy.admit(&view, op.from_relay))
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
