//! Widgets every pane and popup shares: the text input, Markdown, and list
//! helpers.

pub mod chrome;
pub mod list;
pub mod markdown;
pub mod text_input;
pub mod time;
