//! The five panes, each a [`Component`](super::component::Component) that
//! owns its state: the brief queue, the asset browser, the agent chat, the
//! approvals and the team across time zones.

pub mod approvals;
pub mod assets;
pub mod briefs;
pub mod chat;
pub mod image;
pub mod team;
