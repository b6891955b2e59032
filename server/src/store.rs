//! The relay's per-hub op log: ops by hub seq, a dedup table so a resent op
//! gets its original seq, and the hub's epoch and head. A batch is sequenced
//! and stored in one durable commit. The log sits behind [`OpLog`] so it can
//! move onto another store without touching the relay.

use crate::proto::{OpId, SeqOp};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const DEDUP: TableDefinition<(u64, u64), u64> = TableDefinition::new("dedup");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// An op ready to store: its id (for dedup) and its wire encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedOp {
    pub id: OpId,
    pub bytes: Vec<u8>,
}

/// Where one submitted op ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    /// False when the op was already in the log (a resend).
    pub new: bool,
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
    /// Sequences and durably stores `ops` in one commit. Ops already stored
    /// (same client id and client seq) keep their original seq.
    fn append(&self, ops: &[EncodedOp]) -> Result<Vec<Appended>, LogError>;
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

pub struct RedbLog {
    db: Database,
    path: PathBuf,
    epoch: u64,
    head: AtomicU64,
}

impl RedbLog {
    /// Opens (or creates) the log at `path`. A new log gets a random epoch.
    pub fn open(path: &Path) -> Result<RedbLog, LogError> {
        let err = |detail: String| LogError {
            path: path.to_owned(),
            detail,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let db = Database::create(path).map_err(|e| err(e.to_string()))?;
        let txn = db.begin_write().map_err(|e| err(e.to_string()))?;
        let (epoch, head) = {
            let mut meta = txn.open_table(META).map_err(|e| err(e.to_string()))?;
            txn.open_table(LOG).map_err(|e| err(e.to_string()))?;
            txn.open_table(DEDUP).map_err(|e| err(e.to_string()))?;
            let stored = meta
                .get("epoch")
                .map_err(|e| err(e.to_string()))?
                .map(|v| v.value());
            let epoch = match stored {
                Some(epoch) => epoch,
                None => {
                    let epoch = u64::from_le_bytes(crate::auth::random::<8>()).max(1);
                    meta.insert("epoch", epoch)
                        .map_err(|e| err(e.to_string()))?;
                    epoch
                }
            };
            let head = meta
                .get("head")
                .map_err(|e| err(e.to_string()))?
                .map(|v| v.value())
                .unwrap_or(0);
            (epoch, head)
        };
        txn.commit().map_err(|e| err(e.to_string()))?;
        Ok(RedbLog {
            db,
            path: path.to_owned(),
            epoch,
            head: AtomicU64::new(head),
        })
    }

    fn err(&self, e: impl ToString) -> LogError {
        LogError {
            path: self.path.clone(),
            detail: e.to_string(),
        }
    }
}

impl OpLog for RedbLog {
    fn epoch(&self) -> u64 {
        self.epoch
    }

    fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    fn append(&self, ops: &[EncodedOp]) -> Result<Vec<Appended>, LogError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(ops.len());
        let mut head = self.head();
        {
            let mut log = txn.open_table(LOG).map_err(|e| self.err(e))?;
            let mut dedup = txn.open_table(DEDUP).map_err(|e| self.err(e))?;
            let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
            for op in ops {
                let key = (op.id.client.0, op.id.seq);
                if let Some(seq) = dedup.get(key).map_err(|e| self.err(e))? {
                    out.push(Appended {
                        seq: seq.value(),
                        new: false,
                    });
                    continue;
                }
                head += 1;
                log.insert(head, op.bytes.as_slice())
                    .map_err(|e| self.err(e))?;
                dedup.insert(key, head).map_err(|e| self.err(e))?;
                out.push(Appended {
                    seq: head,
                    new: true,
                });
            }
            meta.insert("head", head).map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))?;
        self.head.store(head, Ordering::Release);
        Ok(out)
    }

    fn read(
        &self,
        from: u64,
        upto: u64,
        max_ops: usize,
        max_bytes: usize,
    ) -> Result<Vec<SeqOp>, LogError> {
        if from > upto {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let log = txn.open_table(LOG).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        let mut bytes = 0;
        for row in log.range(from..=upto).map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            let op = v.value();
            if !out.is_empty() && (out.len() >= max_ops || bytes + op.len() > max_bytes) {
                break;
            }
            bytes += op.len() + 16;
            out.push(SeqOp {
                seq: k.value(),
                op: op.to_vec(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{ClientId, EntityKey, Hlc, Op, encode_op};

    fn op(client: u64, seq: u64) -> EncodedOp {
        let op = Op {
            id: OpId {
                client: ClientId(client),
                seq,
            },
            hlc: Hlc {
                wall_ms: seq,
                logical: 0,
            },
            actor: "ana".into(),
            entity: EntityKey {
                kind: "brief".into(),
                id: "b-1".into(),
            },
            kind: "set".into(),
            body: vec![0x80],
        };
        EncodedOp {
            id: op.id,
            bytes: encode_op(&op).expect("encode"),
        }
    }

    #[test]
    fn resent_ops_keep_their_seq_and_are_stored_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let log = RedbLog::open(&dir.path().join("log.redb")).expect("open");
        let first = log.append(&[op(1, 1), op(1, 2)]).expect("append");
        assert_eq!(first.iter().map(|a| a.seq).collect::<Vec<_>>(), [1, 2]);
        let again = log.append(&[op(1, 2), op(2, 1), op(2, 1)]).expect("append");
        assert_eq!(
            again,
            [
                Appended { seq: 2, new: false },
                Appended { seq: 3, new: true },
                Appended { seq: 3, new: false },
            ]
        );
        assert_eq!(log.head(), 3);
        assert_eq!(log.read(1, 10, 100, 1 << 20).expect("read").len(), 3);
    }

    #[test]
    fn epoch_and_head_survive_reopening() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("log.redb");
        let epoch = {
            let log = RedbLog::open(&path).expect("open");
            log.append(&[op(1, 1), op(1, 2)]).expect("append");
            log.epoch()
        };
        let log = RedbLog::open(&path).expect("reopen");
        assert_eq!((log.epoch(), log.head()), (epoch, 2));
        assert_ne!(epoch, 0);
    }

    #[test]
    fn reads_respect_op_and_byte_limits() {
        let dir = tempfile::tempdir().expect("tmp");
        let log = RedbLog::open(&dir.path().join("log.redb")).expect("open");
        let ops: Vec<EncodedOp> = (1..=10).map(|s| op(1, s)).collect();
        log.append(&ops).expect("append");
        assert_eq!(log.read(3, 10, 4, 1 << 20).expect("read")[0].seq, 3);
        assert_eq!(log.read(3, 10, 4, 1 << 20).expect("read").len(), 4);
        assert_eq!(log.read(1, 10, 100, 1).expect("read").len(), 1);
        assert_eq!(log.read(9, 5, 100, 1 << 20).expect("read").len(), 0);
    }
}
