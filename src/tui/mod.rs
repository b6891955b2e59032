//! The terminal UI. Terminal event -> keymap -> [`Action`] -> pure
//! `App::update` -> effects run as tasks posting messages back -> pure `draw`.

pub mod action;
mod agent_worker;
pub mod app;
pub mod chat;
pub mod edits;
pub mod keymap;
pub mod queue;
pub mod run;
pub mod search;
pub mod theme;
pub mod ui;

pub use action::{Action, Pane};
