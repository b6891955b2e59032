//! Anthropic Messages (being written).
