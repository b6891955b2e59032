//! Brand-governed image generation through ComfyUI.
//!
//! - [`comfy`] speaks ComfyUI's HTTP and WebSocket API as its own clients do.
//! - [`template`] holds workflow templates: API-format graphs with named
//!   placeholders bound to node inputs, validated against a server.
//! - `run` grounds a prompt in the brief and the brand, runs a batch and
//!   turns the images into AI drafts that wait for approval.

pub mod comfy;
pub mod run;
pub mod template;
