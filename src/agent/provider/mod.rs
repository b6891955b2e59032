//! LLM providers, hand-written on reqwest and server-sent events: the
//! OpenAI-compatible chat completions dialect (OpenAI, Ollama's `/v1`,
//! llama.cpp, vLLM) and the Anthropic Messages dialect. Both stream text and
//! assemble tool calls from streamed fragments behind one blocking trait,
//! with retries on 429/5xx and cancellation that closes the stream at once.

pub mod anthropic;
pub mod openai;
mod sse;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Who said a message in a conversation sent to a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
    /// The result of a tool call, answering `tool_call_id`.
    Tool,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    /// Tool calls the assistant made in this message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For `Role::Tool`: the call this answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    pub fn system(text: impl Into<String>) -> Self {
        ChatMessage::plain(Role::System, text)
    }
    pub fn user(text: impl Into<String>) -> Self {
        ChatMessage::plain(Role::User, text)
    }
    pub fn assistant(text: impl Into<String>) -> Self {
        ChatMessage::plain(Role::Assistant, text)
    }
    pub fn tool_result(call_id: impl Into<String>, text: impl Into<String>) -> Self {
        ChatMessage {
            role: Role::Tool,
            content: text.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(call_id.into()),
        }
    }
    fn plain(role: Role, text: impl Into<String>) -> Self {
        ChatMessage {
            role,
            content: text.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

/// A tool the model may call: a name, what it does, and a JSON Schema for
/// its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ToolChoice {
    #[default]
    Auto,
    None,
    /// Some tool, the model picks which.
    Required,
    /// This tool.
    Function(String),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolSpec>,
    pub tool_choice: ToolChoice,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    /// The answer must be one JSON object under this schema. OpenAI-compatible
    /// servers get `response_format: json_schema` (strict) and answer in text;
    /// Anthropic gets a forced tool call named after the schema, whose
    /// arguments are the answer. Servers may ignore it: check what comes back.
    pub response_schema: Option<ResponseSchema>,
}

/// A JSON Schema the whole answer must follow (see [`ChatRequest::response_schema`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseSchema {
    /// Names the schema (and the forced tool, where a tool carries it).
    pub name: String,
    pub description: String,
    /// Written for strict mode: every object lists all its properties as
    /// required and sets `additionalProperties: false`.
    pub schema: serde_json::Value,
}

/// A call the model made, with its arguments as the raw JSON text it sent
/// (validated by whoever runs the tool, never trusted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// What a streamed answer came to.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Completion {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    /// `stop`, `tool_calls`, `length`, `end_turn`, `tool_use`... as the server said.
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
    /// The model the server says answered (may differ from the one asked for).
    pub model: String,
}

/// Things that happen while an answer streams in.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// More answer text.
    Text(String),
    /// The model started a tool call (`index` orders calls within the turn).
    ToolCallStarted {
        index: usize,
        id: String,
        name: String,
    },
    /// More of a tool call's argument JSON.
    ToolCallArguments { index: usize, fragment: String },
    /// The request is being retried after `error` (e.g. 429), after `wait_ms`.
    Retrying {
        attempt: u32,
        wait_ms: u64,
        error: String,
    },
}

/// Why an answer failed. Each names the server and what went wrong.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("model server {url} is unreachable: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("model server {url} sent nothing for {secs} s")]
    Timeout { url: String, secs: u64 },
    #[error("model server {url} answered HTTP {status}: {body}")]
    Http {
        url: String,
        status: u16,
        body: String,
    },
    #[error("model server {url} sent a malformed answer: {detail}")]
    Malformed { url: String, detail: String },
    /// The stream ended before the server said it was done; `partial` is
    /// the text received so far.
    #[error("model server {url} closed the stream mid-answer: {detail}")]
    StreamCut {
        url: String,
        detail: String,
        partial: String,
    },
    #[error("the answer was cancelled")]
    Cancelled,
}

/// A chat model behind one of the dialects.
///
/// `stream` blocks the calling thread (worker threads and CLI commands call
/// it, never async code), calls `on_event` as the answer arrives, and
/// returns the whole answer. Cancelling `cancel` from any thread closes the
/// connection at once and returns [`ProviderError::Cancelled`].
pub trait Provider: Send + Sync {
    /// `openai` or `anthropic`: the dialect, recorded as provenance.
    fn name(&self) -> &str;
    /// The configured model.
    fn model(&self) -> &str;
    /// The model's context window and the part of it kept for the answer,
    /// in tokens: prompts are fitted into the difference.
    fn window(&self) -> (usize, usize) {
        (DEFAULT_CONTEXT_TOKENS as usize, 1024)
    }

    /// The URL requests go to, as errors show it (no credentials), when
    /// there is one: tells apart two servers offering the same model.
    fn endpoint(&self) -> &str {
        ""
    }
    fn stream(
        &self,
        request: &ChatRequest,
        cancel: &CancellationToken,
        on_event: &mut dyn FnMut(StreamEvent),
    ) -> Result<Completion, ProviderError>;
}

/// The context window assumed when `[agent] context_tokens` is not set.
pub const DEFAULT_CONTEXT_TOKENS: u32 = 8192;

/// A provider's settings, resolved from `[agent]` in config.toml.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderSettings {
    /// Base URL: up to and including `/v1` (`http://127.0.0.1:18082/v1`,
    /// `https://api.anthropic.com/v1`).
    pub url: String,
    pub model: String,
    /// Name of the environment variable holding the API key, if any.
    pub api_key_env: Option<String>,
    /// Seconds without a byte from the server before giving up. Default 60.
    pub idle_timeout_secs: u64,
    /// Retries after 429, 5xx or a failed connection, with backoff. Default 2.
    pub retries: u32,
    /// Default 1024 (Anthropic requires a value).
    pub max_tokens: u32,
    /// The model's context window. Default 8192.
    pub context_tokens: u32,
    pub temperature: Option<f32>,
}

impl ProviderSettings {
    pub fn new(url: impl Into<String>, model: impl Into<String>) -> Self {
        ProviderSettings {
            url: url.into(),
            model: model.into(),
            api_key_env: None,
            idle_timeout_secs: 60,
            retries: 2,
            max_tokens: 1024,
            context_tokens: DEFAULT_CONTEXT_TOKENS,
            temperature: None,
        }
    }
}
