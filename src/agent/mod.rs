//! The agent: an LLM that orchestrates inside the team. It streams answers,
//! calls read-only tools at once and turns every change it wants into a
//! proposal that waits for a human decision. `slash` and `intake` work with
//! no model at all; `scorer` is the deterministic assignment ranking.

pub mod budget;
pub mod chat;
pub mod eval;
pub mod intake;
pub mod provider;
pub mod scorer;
pub mod slash;
pub mod tools;
