//! The terminal UI, as components. Terminal event -> keymap -> [`Action`]
//! -> the top popup, the focused pane, or the global table -> effects run
//! by workers that post messages back -> a pure `draw` from `&App`.
//!
//! - `app`: routing and the global actions; `component`: what panes speak;
//! - `panes/`: briefs, assets, chat, approvals, team, each owning its state;
//! - `popup/`: help, palette, pickers, prompts, the new-brief form, search;
//! - `widgets/`: the text input, Markdown, list helpers;
//! - `preview`: image decoding and encoding off the draw path;
//! - `osc`, `editor` and `notify`: the clipboard, `$EDITOR`, ctrl-z, the bell
//!   and desktop notifications, between frames;
//! - `run` and `workers`: the terminal session and the threads behind it.

pub mod action;
mod agent_worker;
pub mod app;
pub mod component;
pub mod draw;
pub mod editor;
pub mod edits;
pub mod graphics;
pub mod keymap;
pub mod msg;
pub mod notify;
pub mod osc;
pub mod panes;
pub mod popup;
pub mod preview;
pub mod queue;
pub mod run;
pub mod status;
pub mod theme;
pub mod widgets;

pub use action::{Action, Pane};
#[cfg(test)]
mod tests;
