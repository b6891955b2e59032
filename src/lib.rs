//! Spoke: a terminal-native collaboration hub for distributed creative teams.
//!
//! `model` holds the domain and merge rules, `store` the redb replica,
//! `sync` the relay client, `search` the indexes and the knowledge base,
//! `agent` the model providers, tools and intake, `service` the operations
//! the CLI and the TUI call, `cli` and `tui` the two front ends.

pub mod agent;
pub mod assets;
pub mod cli;
pub mod config;
pub mod demo;
pub mod doctor;
pub mod generate;
pub(crate) mod http;
pub mod integrations;
pub mod interrupt;
pub mod logging;
pub mod model;
pub mod search;
pub mod service;
pub mod store;
pub mod sync;
pub mod tui;
