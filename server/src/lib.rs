//! spoke-relay: the hub a Spoke team runs. This crate owns the wire protocol
//! (shared with the `spoke` client) and the relay that sequences, stores and
//! fans out ops.

pub mod auth;
pub mod blobs;
pub mod metrics;
pub mod nats;
pub mod policy;
pub mod proto;
pub mod relay;
pub mod server;
pub mod store;
pub mod tls;
pub mod ws;
