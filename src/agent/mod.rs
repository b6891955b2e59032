//! The agent: an LLM that orchestrates inside the team. It streams answers,
//! calls read-only tools at once and turns every change it wants into a
//! proposal that waits for a human decision.

pub mod provider;
