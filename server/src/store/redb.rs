//! [`RedbLog`]: a hub's op log in one local redb file: ops by seq, the
//! dedup table, epoch and head, and the policy rows, written in one
//! transaction per group commit.

use super::{Appended, EncodedOp, LogError, OpLog};
use crate::policy::{PolicyState, rules};
use crate::proto::SeqOp;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const DEDUP: TableDefinition<(u64, u64), u64> = TableDefinition::new("dedup");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const POLICY: TableDefinition<&str, &[u8]> = TableDefinition::new("policy");

/// Page cache of a log opened without a budget (tests, tools).
pub const DEFAULT_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// A hub's op log in a local redb file.
pub struct RedbLog {
    db: Database,
    path: PathBuf,
    epoch: u64,
    head: AtomicU64,
}

impl RedbLog {
    /// Opens (or creates) the log at `path` with a small page cache. A new
    /// log gets a random epoch.
    pub fn open(path: &Path) -> Result<RedbLog, LogError> {
        RedbLog::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Opens (or creates) the log at `path`, caching at most `cache_bytes`
    /// of its pages in memory. The storage engine's own default (1 GiB per
    /// file) would let a busy hub's resident memory grow with its log.
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<RedbLog, LogError> {
        let err = |detail: String| LogError {
            path: path.to_owned(),
            detail,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let db = redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(|e| err(e.to_string()))?;
        let txn = db.begin_write().map_err(|e| err(e.to_string()))?;
        let (epoch, head) = {
            let mut meta = txn.open_table(META).map_err(|e| err(e.to_string()))?;
            txn.open_table(LOG).map_err(|e| err(e.to_string()))?;
            txn.open_table(DEDUP).map_err(|e| err(e.to_string()))?;
            txn.open_table(POLICY).map_err(|e| err(e.to_string()))?;
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
        let log = RedbLog {
            db,
            path: path.to_owned(),
            epoch,
            head: AtomicU64::new(head),
        };
        log.derive_policy_if_missing()?;
        Ok(log)
    }

    /// A log written before the relay kept policy state gets it by replaying
    /// every stored op through the rules, as a replica does; ops the rules
    /// refuse stay in the log (replicas refuse them the same way).
    fn derive_policy_if_missing(&self) -> Result<(), LogError> {
        let empty = {
            let txn = self.db.begin_read().map_err(|e| self.err(e))?;
            let table = txn.open_table(POLICY).map_err(|e| self.err(e))?;
            table.is_empty().map_err(|e| self.err(e))?
        };
        if !empty || self.head() == 0 {
            return Ok(());
        }
        let mut policy = PolicyState::default();
        let mut from = 1;
        loop {
            let chunk = self.read(from, self.head(), 4096, 16 << 20)?;
            let Some(last) = chunk.last().map(|o| o.seq) else {
                break;
            };
            for stored in chunk {
                if let Some(op) = EncodedOp::from_bytes(stored.op) {
                    let _ = policy.admit(&op.op.as_ref(), op.from_relay);
                }
            }
            from = last + 1;
        }
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(POLICY).map_err(|e| self.err(e))?;
            for (k, v) in policy.take_changes() {
                table
                    .insert(k.as_str(), v.as_slice())
                    .map_err(|e| self.err(e))?;
            }
        }
        txn.commit().map_err(|e| self.err(e))
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

    fn append(
        &self,
        ops: &[EncodedOp],
        policy: &mut PolicyState,
    ) -> Result<Vec<Appended>, LogError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(ops.len());
        let mut head = self.head();
        {
            let mut log = txn.open_table(LOG).map_err(|e| self.err(e))?;
            let mut dedup = txn.open_table(DEDUP).map_err(|e| self.err(e))?;
            let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
            for op in ops {
                let view = op.op.as_ref();
                // Another member's client id never reaches the dedup table,
                // so a squatter cannot stand in for the owner's ops.
                if let Err(refusal) = rules::judge_owner(policy, &view) {
                    out.push(Appended::Refused(refusal));
                    continue;
                }
                let key = (op.id.client.0, op.id.seq);
                if let Some(seq) = dedup.get(key).map_err(|e| self.err(e))? {
                    out.push(Appended::Stored {
                        seq: seq.value(),
                        new: false,
                    });
                    continue;
                }
                if let Err(refusal) = super::admit_new(op, policy) {
                    out.push(Appended::Refused(refusal));
                    continue;
                }
                head += 1;
                log.insert(head, op.bytes.as_slice())
                    .map_err(|e| self.err(e))?;
                dedup.insert(key, head).map_err(|e| self.err(e))?;
                out.push(Appended::Stored {
                    seq: head,
                    new: true,
                });
            }
            meta.insert("head", head).map_err(|e| self.err(e))?;
            let mut rows = txn.open_table(POLICY).map_err(|e| self.err(e))?;
            for (k, v) in policy.take_changes() {
                rows.insert(k.as_str(), v.as_slice())
                    .map_err(|e| self.err(e))?;
            }
        }
        txn.commit().map_err(|e| self.err(e))?;
        self.head.store(head, Ordering::Release);
        Ok(out)
    }

    fn load_policy(&self) -> Result<PolicyState, LogError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(POLICY).map_err(|e| self.err(e))?;
        let mut rows = Vec::new();
        for row in table.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            rows.push((k.value().to_owned(), v.value().to_vec()));
        }
        PolicyState::load(rows).map_err(|e| self.err(e))
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
    use crate::policy::{Change, EntityKind, OpRef, RELAY_ACTOR, RELAY_CLIENT};
    use crate::proto::{ClientId, EntityKey, Hlc, Op, OpId, encode_op};

    /// The relay grants `handle` its token's `role`.
    fn grant(policy: &mut PolicyState, handle: &str, role: &str) {
        let change = Change::Set([(format!("roles:{role}"), serde_json::json!(true))].into());
        let op = OpRef {
            id: OpId {
                client: RELAY_CLIENT,
                seq: 1,
            },
            hlc: Hlc::default(),
            actor: RELAY_ACTOR,
            kind: EntityKind::Member,
            entity: handle,
            change: &change,
        };
        policy.admit(&op, true).expect("the relay grants roles");
    }

    /// Rules in which `ana` is a lead (granted by the relay).
    fn policy() -> PolicyState {
        let mut policy = PolicyState::default();
        grant(&mut policy, "ana", "lead");
        policy
    }

    fn stored(seq: u64, new: bool) -> Appended {
        Appended::Stored { seq, new }
    }

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
        EncodedOp::from_bytes(encode_op(&op).expect("encode")).expect("a readable op")
    }

    #[test]
    fn resent_ops_keep_their_seq_and_are_stored_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let log = RedbLog::open(&dir.path().join("log.redb")).expect("open");
        let mut policy = policy();
        let first = log
            .append(&[op(1, 1), op(1, 2)], &mut policy)
            .expect("append");
        assert_eq!(first, [stored(1, true), stored(2, true)]);
        let again = log
            .append(&[op(1, 2), op(2, 1), op(2, 1)], &mut policy)
            .expect("append");
        assert_eq!(again, [stored(2, false), stored(3, true), stored(3, false)]);
        assert_eq!(log.head(), 3);
        assert_eq!(log.read(1, 10, 100, 1 << 20).expect("read").len(), 3);
    }

    #[test]
    fn epoch_and_head_survive_reopening() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("log.redb");
        let epoch = {
            let log = RedbLog::open(&path).expect("open");
            log.append(&[op(1, 1), op(1, 2)], &mut policy())
                .expect("append");
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
        log.append(&ops, &mut policy()).expect("append");
        assert_eq!(log.read(3, 10, 4, 1 << 20).expect("read")[0].seq, 3);
        assert_eq!(log.read(3, 10, 4, 1 << 20).expect("read").len(), 4);
        assert_eq!(log.read(1, 10, 100, 1).expect("read").len(), 1);
        assert_eq!(log.read(9, 5, 100, 1 << 20).expect("read").len(), 0);
    }

    #[test]
    fn refused_ops_are_not_stored_and_policy_rows_survive_reopening() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("log.redb");
        {
            let log = RedbLog::open(&path).expect("open");
            let mut policy = policy();
            let mut stranger = op(3, 1);
            stranger.op.actor = "mallory".into();
            let out = log
                .append(&[op(1, 1), stranger, op(1, 2)], &mut policy)
                .expect("append");
            assert_eq!(out[0], stored(1, true));
            assert!(
                matches!(&out[1], Appended::Refused(r) if r.rule == crate::policy::Rule::NotAMember)
            );
            assert_eq!(out[2], stored(2, true));
            assert_eq!(log.head(), 2);
        }
        let log = RedbLog::open(&path).expect("reopen");
        let mut policy = log.load_policy().expect("policy rows");
        assert_eq!(policy.roles_of("ana"), [crate::policy::Role::Lead]);
        assert_eq!(policy.client_owner(1), Some("ana"));
        // Another member's client id is refused even for a resend of a stored seq.
        let mut squatter = op(1, 2);
        squatter.op.actor = "kenji".into();
        let out = log.append(&[squatter], &mut policy).expect("append");
        assert!(
            matches!(&out[0], Appended::Refused(r) if r.rule == crate::policy::Rule::ClientIdOwned)
        );
    }

    #[test]
    fn a_log_from_before_the_rules_stands_and_rules_apply_from_the_first_grant() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("log.redb");
        {
            // As an older relay left it: ops, dedup, head; no policy rows.
            let db = Database::create(&path).expect("create");
            let txn = db.begin_write().expect("write");
            {
                let mut log = txn.open_table(LOG).expect("log");
                let mut dedup = txn.open_table(DEDUP).expect("dedup");
                let mut meta = txn.open_table(META).expect("meta");
                for seq in 1..=2 {
                    let o = op(1, seq);
                    log.insert(seq, o.bytes.as_slice()).expect("insert");
                    dedup.insert((1, seq), seq).expect("dedup");
                }
                meta.insert("head", 2).expect("head");
                meta.insert("epoch", 5).expect("epoch");
            }
            txn.commit().expect("commit");
        }
        let log = RedbLog::open(&path).expect("open an older log");
        let mut policy = log.load_policy().expect("derived rows");
        assert!(!policy.rules_in_force());
        assert_eq!(policy.client_owner(1), Some("ana"), "ana's ops stand");
        // The relay's first grant puts the rules in force.
        grant(&mut policy, "kenji", "creative");
        assert!(policy.rules_in_force());
        let mut stranger = op(3, 1);
        stranger.op.actor = "mallory".into();
        let out = log.append(&[stranger], &mut policy).expect("append");
        assert!(
            matches!(&out[0], Appended::Refused(r) if r.rule == crate::policy::Rule::NotAMember)
        );
    }
}
