//! Spoke: a terminal-native collaboration hub for distributed creative teams.
//!
//! `model` holds the domain and merge rules, `store` the redb replica,
//! `service` the operations the CLI (and later the TUI) call, `cli` the
//! command-line front end.

pub mod agent;
pub mod assets;
pub mod cli;
pub mod config;
pub mod demo;
pub(crate) mod http;
pub mod model;
pub mod search;
pub mod service;
pub mod store;
pub mod sync;
pub mod tui;
