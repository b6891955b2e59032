//! The audit chain: every audit entry the hub sequences is chained to the
//! one before it in seq order, `hash = sha256(prev || op bytes)`, and the
//! link is kept beside the log. Anyone holding a replica can recompute the
//! chain from the stored ops; an altered entry breaks it at that entry.

use super::tables::LOG;
use super::{AtPath, Replica, StoreError};
use crate::model::{EntityKind, Op};
use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use sha2::{Digest, Sha256};

/// Hub seq -> `prev (32 bytes) || hash (32 bytes)` for each audit entry.
pub(super) const AUDIT_CHAIN: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_chain");

/// One link of the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditLink {
    pub seq: u64,
    pub prev: [u8; 32],
    pub hash: [u8; 32],
    pub op: Op,
}

/// The outcome of recomputing the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheck {
    pub entries: usize,
    pub head: Option<[u8; 32]>,
    /// The first broken link: its seq and what is wrong.
    pub broken: Option<(u64, String)>,
}

pub fn link_hash(prev: &[u8; 32], op_bytes: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(op_bytes);
    h.finalize().into()
}

impl Replica {
    /// Extends the chain with the audit ops of a sequenced batch (in seq order).
    pub(super) fn extend_audit_chain(
        &self,
        txn: &WriteTransaction,
        batch: &[(u64, &[u8], &Op)],
    ) -> Result<(), StoreError> {
        let mut chain = txn.open_table(AUDIT_CHAIN).at(&self.path)?;
        for (seq, bytes, op) in batch {
            if op.entity.kind != EntityKind::Audit || chain.get(*seq).at(&self.path)?.is_some() {
                continue;
            }
            let prev = match chain.range(..*seq).at(&self.path)?.next_back() {
                Some(row) => {
                    let (_, v) = row.at(&self.path)?;
                    split(v.value()).map(|(_, h)| h).unwrap_or([0; 32])
                }
                None => [0; 32],
            };
            let hash = link_hash(&prev, bytes);
            let mut value = Vec::with_capacity(64);
            value.extend_from_slice(&prev);
            value.extend_from_slice(&hash);
            chain.insert(*seq, value.as_slice()).at(&self.path)?;
        }
        Ok(())
    }

    /// The chain's links with their ops, in seq order.
    pub fn audit_chain(&self) -> Result<Vec<AuditLink>, StoreError> {
        let txn = self.db.begin_read().at(&self.path)?;
        let chain = match txn.open_table(AUDIT_CHAIN) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::db(&self.path, e)),
        };
        let log = txn.open_table(LOG).at(&self.path)?;
        let mut out = Vec::new();
        for row in chain.iter().at(&self.path)? {
            let (k, v) = row.at(&self.path)?;
            let seq = k.value();
            let Some((prev, hash)) = split(v.value()) else {
                continue;
            };
            let Some(bytes) = log.get(seq).at(&self.path)? else {
                continue;
            };
            if let Ok(op) = Op::decode(bytes.value()) {
                out.push(AuditLink {
                    seq,
                    prev,
                    hash,
                    op,
                });
            }
        }
        Ok(out)
    }

    /// Recomputes the chain from the stored ops and reports the first link
    /// that does not hold.
    pub fn verify_audit(&self) -> Result<AuditCheck, StoreError> {
        let txn = self.db.begin_read().at(&self.path)?;
        let chain = match txn.open_table(AUDIT_CHAIN) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => {
                return Ok(AuditCheck {
                    entries: 0,
                    head: None,
                    broken: None,
                });
            }
            Err(e) => return Err(StoreError::db(&self.path, e)),
        };
        let log = txn.open_table(LOG).at(&self.path)?;
        let mut expected_prev = [0u8; 32];
        let mut entries = 0;
        for row in chain.iter().at(&self.path)? {
            let (k, v) = row.at(&self.path)?;
            let seq = k.value();
            entries += 1;
            let Some((prev, hash)) = split(v.value()) else {
                return Ok(broken(entries, seq, "its chain record is damaged"));
            };
            if prev != expected_prev {
                return Ok(broken(
                    entries,
                    seq,
                    "it does not follow the entry before it",
                ));
            }
            let Some(bytes) = log.get(seq).at(&self.path)? else {
                return Ok(broken(entries, seq, "its op is missing from the log"));
            };
            if link_hash(&prev, bytes.value()) != hash {
                let who = Op::decode(bytes.value())
                    .map(|op| format!(" (op {} by @{})", op.id, op.actor))
                    .unwrap_or_default();
                return Ok(broken(
                    entries,
                    seq,
                    &format!("its content was altered after it was chained{who}"),
                ));
            }
            expected_prev = hash;
        }
        Ok(AuditCheck {
            entries,
            head: (entries > 0).then_some(expected_prev),
            broken: None,
        })
    }
}

fn broken(entries: usize, seq: u64, why: &str) -> AuditCheck {
    AuditCheck {
        entries,
        head: None,
        broken: Some((
            seq,
            format!("audit entry at hub seq {seq} breaks the chain: {why}"),
        )),
    }
}

fn split(v: &[u8]) -> Option<([u8; 32], [u8; 32])> {
    if v.len() != 64 {
        return None;
    }
    let mut prev = [0u8; 32];
    let mut hash = [0u8; 32];
    prev.copy_from_slice(&v[..32]);
    hash.copy_from_slice(&v[32..]);
    Some((prev, hash))
}
