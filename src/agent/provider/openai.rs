//! OpenAI-compatible chat completions (being written).
