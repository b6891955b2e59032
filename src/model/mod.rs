//! The domain: entities, the ops that change them and the rules that merge
//! them. Pure data and functions; no I/O.

pub mod approval;
pub mod asset;
pub mod brief;
pub mod generate;
pub mod hlc;
pub mod ids;
pub mod input;
pub mod integration;
pub mod knowledge;
pub mod member;
pub mod op;
pub mod proposal;
pub mod record;
pub mod skills;
pub mod task;
pub mod thread;

pub use brief::{Brief, BriefStatus, Priority};
pub use input::InputError;
pub use member::{Member, Role};
pub use op::{Change, EntityKind, EntityRef, Op, Stamp};
pub use record::{EntityRecord, Item, State};

/// The name a unit enum variant has in JSON and MessagePack (`in_review`,
/// `changes_requested`), for messages and tables.
pub fn serde_name<T: serde::Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
