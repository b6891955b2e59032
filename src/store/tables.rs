//! redb table layout of a replica. Changing a table's key or value type, or
//! the encoding of what it stores, requires a new schema version.

use crate::model::EntityKind;
use redb::TableDefinition;

/// Raised when the layout or encodings below change incompatibly.
pub const SCHEMA_VERSION: u32 = 1;

/// `schema_version` (u32, big-endian) and `replica` (MessagePack [`super::ReplicaMeta`]).
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Ops the hub has sequenced, by hub seq.
pub const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// Local ops not yet acknowledged by a hub, by client seq.
pub const PENDING: TableDefinition<u64, &[u8]> = TableDefinition::new("pending");
/// Every op id applied to the materialized tables: (client id, client seq).
pub const APPLIED: TableDefinition<(u64, u64), ()> = TableDefinition::new("applied");
/// The hub's policy state as the log left it (rows of
/// [`spoke_relay::policy::PolicyState`]), updated in the commit that
/// applies the ops.
pub const POLICY: TableDefinition<&str, &[u8]> = TableDefinition::new("policy");
/// Ops the hub's rules refused: (client id, client seq) -> MessagePack
/// [`super::RefusedOp`]. A refusal by the relay has no hub seq; one found
/// in the log (written by an older relay, or edited by hand) has its seq.
pub const REFUSED: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("refused");

/// Entities whose searchable text may have changed since the search index
/// last caught up: `kind/id` -> the change counter when last touched. The
/// index removes an entry only if its counter is unchanged, so a change made
/// while it was indexing is never lost.
pub const SEARCH_DIRTY: TableDefinition<&str, u64> = TableDefinition::new("search.dirty");
/// Search bookkeeping: `counter` (last change number handed out) and `resets`
/// (bumped when the materialized state is rebuilt or reset, which makes the
/// index reconcile everything).
pub const SEARCH_META: TableDefinition<&str, u64> = TableDefinition::new("search.meta");

/// Materialized entity records: id -> MessagePack [`crate::model::EntityRecord`].
pub type EntityTable = TableDefinition<'static, &'static str, &'static [u8]>;
/// Appended items: (entity id, hlc wall, hlc logical, client, seq) -> MessagePack item.
pub type ItemKey = (&'static str, u64, u32, u64, u64);
pub type ItemTable = TableDefinition<'static, ItemKey, &'static [u8]>;

pub fn entity_table(kind: EntityKind) -> EntityTable {
    match kind {
        EntityKind::Hub => TableDefinition::new("entity.hub"),
        EntityKind::Member => TableDefinition::new("entity.member"),
        EntityKind::Brief => TableDefinition::new("entity.brief"),
        EntityKind::Asset => TableDefinition::new("entity.asset"),
        EntityKind::Thread => TableDefinition::new("entity.thread"),
        EntityKind::Proposal => TableDefinition::new("entity.proposal"),
        EntityKind::Approval => TableDefinition::new("entity.approval"),
        EntityKind::Task => TableDefinition::new("entity.task"),
        EntityKind::Audit => TableDefinition::new("entity.audit"),
        EntityKind::Knowledge => TableDefinition::new("entity.knowledge"),
        EntityKind::Integration => TableDefinition::new("entity.integration"),
        EntityKind::Delivery => TableDefinition::new("entity.delivery"),
        EntityKind::Template => TableDefinition::new("entity.template"),
    }
}

pub fn item_table(kind: EntityKind) -> ItemTable {
    match kind {
        EntityKind::Hub => TableDefinition::new("items.hub"),
        EntityKind::Member => TableDefinition::new("items.member"),
        EntityKind::Brief => TableDefinition::new("items.brief"),
        EntityKind::Asset => TableDefinition::new("items.asset"),
        EntityKind::Thread => TableDefinition::new("items.thread"),
        EntityKind::Proposal => TableDefinition::new("items.proposal"),
        EntityKind::Approval => TableDefinition::new("items.approval"),
        EntityKind::Task => TableDefinition::new("items.task"),
        EntityKind::Audit => TableDefinition::new("items.audit"),
        EntityKind::Knowledge => TableDefinition::new("items.knowledge"),
        EntityKind::Integration => TableDefinition::new("items.integration"),
        EntityKind::Delivery => TableDefinition::new("items.delivery"),
        EntityKind::Template => TableDefinition::new("items.template"),
    }
}
