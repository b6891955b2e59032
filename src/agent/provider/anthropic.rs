//! The Anthropic Messages dialect: `POST {url}/messages` with `stream: true`,
//! text and `tool_use` blocks assembled from `content_block_*` events.

use super::sse::{self, Dialect, StreamFault, Transport};
use super::{
    ChatMessage, ChatRequest, Completion, Provider, ProviderError, ProviderSettings, Role,
    StreamEvent, ToolCall, ToolChoice, Usage,
};
use anyhow::Result;
use eventsource_stream::Event;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::fmt;
use tokio_util::sync::CancellationToken;

const API_VERSION: &str = "2023-06-01";

/// A chat model behind the Anthropic Messages API.
pub struct AnthropicProvider {
    transport: Transport,
    settings: ProviderSettings,
}

impl AnthropicProvider {
    /// Checks the settings, reads the API key from its environment variable
    /// (if one is named) and sets up the HTTP client. No request is made.
    pub fn new(settings: &ProviderSettings) -> Result<AnthropicProvider> {
        let mut headers = vec![(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(API_VERSION),
        )];
        if let Some(var) = &settings.api_key_env {
            headers.push((
                HeaderName::from_static("x-api-key"),
                crate::http::key_header_from_env(sse::SECTION, var, "")?,
            ));
        }
        Ok(AnthropicProvider {
            transport: Transport::new(settings, "messages", headers)?,
            settings: settings.clone(),
        })
    }

    /// The JSON body of a streamed Messages request.
    fn request_body(&self, request: &ChatRequest) -> Value {
        let mut body = json!({
            "model": self.settings.model,
            "max_tokens": request.max_tokens.unwrap_or(self.settings.max_tokens),
            "messages": messages_json(&request.messages),
            "stream": true,
        });
        let system: Vec<&str> = request
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
            .collect();
        if !system.is_empty() {
            body["system"] = json!(system.join("\n\n"));
        }
        if let Some(temperature) = request.temperature.or(self.settings.temperature) {
            body["temperature"] = json!(temperature);
        }
        let mut tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "name": tool.name,
                    "description": tool.description,
                    "input_schema": tool.parameters,
                })
            })
            .collect();
        let mut tool_choice = match &request.tool_choice {
            ToolChoice::Auto => json!({"type": "auto"}),
            ToolChoice::None => json!({"type": "none"}),
            ToolChoice::Required => json!({"type": "any"}),
            ToolChoice::Function(name) => json!({"type": "tool", "name": name}),
        };
        // The Messages API has no response format: a forced tool carries the schema.
        if let Some(schema) = &request.response_schema {
            if !request.tools.iter().any(|t| t.name == schema.name) {
                tools.push(json!({
                    "name": schema.name,
                    "description": schema.description,
                    "input_schema": schema.schema,
                }));
            }
            tool_choice = json!({"type": "tool", "name": schema.name});
        }
        // The API refuses a tool_choice without tools.
        if !tools.is_empty() {
            body["tools"] = Value::Array(tools);
            body["tool_choice"] = tool_choice;
        }
        body
    }
}

/// The conversation without its system messages, as user/assistant turns:
/// tool results are user content, and consecutive messages of one role are
/// merged (the API wants the roles to alternate).
fn messages_json(messages: &[ChatMessage]) -> Vec<Value> {
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in messages {
        let (role, blocks) = match message.role {
            Role::System => continue,
            Role::User => ("user", text_blocks(&message.content)),
            Role::Tool => (
                "user",
                vec![json!({
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id.as_deref().unwrap_or_default(),
                    "content": message.content,
                })],
            ),
            Role::Assistant => {
                let mut blocks = text_blocks(&message.content);
                blocks.extend(message.tool_calls.iter().map(|call| {
                    json!({
                        "type": "tool_use",
                        "id": call.id,
                        "name": call.name,
                        "input": tool_input(&call.arguments),
                    })
                }));
                ("assistant", blocks)
            }
        };
        match turns.last_mut() {
            Some((last_role, last_blocks)) if *last_role == role => last_blocks.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    turns
        .into_iter()
        .map(|(role, blocks)| {
            let content = match blocks.as_slice() {
                [] => json!(""),
                [only] if only["type"] == "text" => only["text"].clone(),
                _ => Value::Array(blocks),
            };
            json!({"role": role, "content": content})
        })
        .collect()
}

/// The API refuses empty text blocks.
fn text_blocks(text: &str) -> Vec<Value> {
    if text.is_empty() {
        Vec::new()
    } else {
        vec![json!({"type": "text", "text": text})]
    }
}

/// A call's arguments as the object the API wants; arguments that are not a
/// JSON object (a model's mistake, kept in the history) become `{}`.
fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(input @ Value::Object(_)) => input,
        _ => json!({}),
    }
}

impl Provider for AnthropicProvider {
    fn name(&self) -> &str {
        "anthropic"
    }

    fn model(&self) -> &str {
        &self.settings.model
    }

    fn window(&self) -> (usize, usize) {
        (
            self.settings.context_tokens as usize,
            self.settings.max_tokens as usize,
        )
    }

    fn endpoint(&self) -> &str {
        self.transport.shown_endpoint()
    }

    fn stream(
        &self,
        request: &ChatRequest,
        cancel: &CancellationToken,
        on_event: &mut dyn FnMut(StreamEvent),
    ) -> Result<Completion, ProviderError> {
        tracing::debug!(
            target: "spoke::agent",
            provider = "anthropic",
            model = %self.settings.model,
            messages = request.messages.len(),
            "streaming a chat completion"
        );
        let body = self.request_body(request).to_string().into_bytes();
        let fallback_model = self.settings.model.as_str();
        let new_dialect = || MessagesStream::new(fallback_model);
        self.transport.stream(&body, &new_dialect, cancel, on_event)
    }
}

impl fmt::Debug for AnthropicProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicProvider")
            .field("endpoint", &self.transport.shown_endpoint())
            .field("model", &self.settings.model)
            .field(
                "api_key",
                &self.settings.api_key_env.as_ref().map(|_| "(set)"),
            )
            .finish_non_exhaustive()
    }
}

/// One streamed answer as it is assembled.
struct MessagesStream {
    text: String,
    tool_calls: Vec<ToolCall>,
    /// Content blocks by the index the server gave them.
    blocks: HashMap<u64, Block>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    model: String,
    fallback_model: String,
}

enum Block {
    Text,
    ToolUse {
        /// Position in `tool_calls`, which is also the event index.
        call: usize,
        /// The input the block opened with, used if no deltas follow.
        opening_input: Option<String>,
        had_deltas: bool,
    },
    /// Thinking and kinds this client does not use.
    Other,
}

impl MessagesStream {
    fn new(fallback_model: &str) -> Self {
        MessagesStream {
            text: String::new(),
            tool_calls: Vec::new(),
            blocks: HashMap::new(),
            finish_reason: None,
            usage: None,
            model: String::new(),
            fallback_model: fallback_model.to_owned(),
        }
    }

    fn push_text(&mut self, text: &str, emit: &mut dyn FnMut(StreamEvent)) {
        if !text.is_empty() {
            self.text.push_str(text);
            emit(StreamEvent::Text(text.to_owned()));
        }
    }

    fn block_start(
        &mut self,
        event: &Value,
        emit: &mut dyn FnMut(StreamEvent),
    ) -> Result<(), StreamFault> {
        let index = block_index(event)?;
        let block = &event["content_block"];
        let opened = match block["type"].as_str() {
            Some("text") => {
                self.push_text(block["text"].as_str().unwrap_or_default(), emit);
                Block::Text
            }
            Some("tool_use") => {
                let (Some(id), Some(name)) = (block["id"].as_str(), block["name"].as_str()) else {
                    return Err(StreamFault::Malformed(format!(
                        "tool_use block {index} has no id or name"
                    )));
                };
                let call = self.tool_calls.len();
                self.tool_calls.push(ToolCall {
                    id: id.to_owned(),
                    name: name.to_owned(),
                    arguments: String::new(),
                });
                emit(StreamEvent::ToolCallStarted {
                    index: call,
                    id: id.to_owned(),
                    name: name.to_owned(),
                });
                let opening_input = block
                    .get("input")
                    .and_then(Value::as_object)
                    .filter(|input| !input.is_empty())
                    .map(|input| Value::Object(input.clone()).to_string());
                Block::ToolUse {
                    call,
                    opening_input,
                    had_deltas: false,
                }
            }
            _ => Block::Other,
        };
        self.blocks.insert(index, opened);
        Ok(())
    }

    fn block_delta(
        &mut self,
        event: &Value,
        emit: &mut dyn FnMut(StreamEvent),
    ) -> Result<(), StreamFault> {
        let index = block_index(event)?;
        let delta = &event["delta"];
        let Some(block) = self.blocks.get_mut(&index) else {
            return Err(StreamFault::Malformed(format!(
                "a delta came for content block {index}, which never started"
            )));
        };
        match (block, delta["type"].as_str()) {
            (Block::Text, Some("text_delta")) => {
                let text = delta["text"].as_str().unwrap_or_default().to_owned();
                self.push_text(&text, emit);
            }
            (
                Block::ToolUse {
                    call, had_deltas, ..
                },
                Some("input_json_delta"),
            ) => {
                let fragment = delta["partial_json"].as_str().unwrap_or_default();
                *had_deltas = true;
                if !fragment.is_empty()
                    && let Some(tool_call) = self.tool_calls.get_mut(*call)
                {
                    tool_call.arguments.push_str(fragment);
                    emit(StreamEvent::ToolCallArguments {
                        index: *call,
                        fragment: fragment.to_owned(),
                    });
                }
            }
            (
                Block::Text | Block::ToolUse { .. },
                Some(kind @ ("text_delta" | "input_json_delta")),
            ) => {
                return Err(StreamFault::Malformed(format!(
                    "a {kind} came for content block {index}, which is of another kind"
                )));
            }
            // Thinking, signatures and kinds this client does not use.
            _ => {}
        }
        Ok(())
    }

    fn block_stop(&mut self, event: &Value, emit: &mut dyn FnMut(StreamEvent)) {
        let Ok(index) = block_index(event) else {
            return;
        };
        if let Some(Block::ToolUse {
            call,
            opening_input,
            had_deltas,
        }) = self.blocks.get_mut(&index)
            && let Some(tool_call) = self.tool_calls.get_mut(*call)
            && tool_call.arguments.is_empty()
        {
            // A call without arguments streams no deltas at all.
            let arguments = match (opening_input.take(), *had_deltas) {
                (Some(input), false) => input,
                _ => "{}".to_owned(),
            };
            tool_call.arguments = arguments.clone();
            emit(StreamEvent::ToolCallArguments {
                index: *call,
                fragment: arguments,
            });
        }
    }

    fn message_delta(&mut self, event: &Value) {
        if let Some(reason) = event["delta"]["stop_reason"].as_str() {
            self.finish_reason = Some(reason.to_owned());
        }
        if let Some(output) = event["usage"]["output_tokens"].as_u64() {
            self.usage.get_or_insert_with(Usage::default).output_tokens = output;
        }
    }

    fn message_start(&mut self, event: &Value) {
        let message = &event["message"];
        if let Some(model) = message["model"].as_str() {
            self.model = model.to_owned();
        }
        let usage = &message["usage"];
        if usage.is_object() {
            self.usage = Some(Usage {
                input_tokens: usage["input_tokens"].as_u64().unwrap_or(0),
                output_tokens: usage["output_tokens"].as_u64().unwrap_or(0),
            });
        }
    }
}

impl Dialect for MessagesStream {
    fn take(
        &mut self,
        event: &Event,
        emit: &mut dyn FnMut(StreamEvent),
    ) -> Result<bool, StreamFault> {
        let json = sse::event_json(event)?;
        // The data repeats the event name as `type`; trust the data.
        let kind = json["type"].as_str().unwrap_or(event.event.as_str());
        match kind {
            "message_start" => self.message_start(&json),
            "content_block_start" => self.block_start(&json, emit)?,
            "content_block_delta" => self.block_delta(&json, emit)?,
            "content_block_stop" => self.block_stop(&json, emit),
            "message_delta" => self.message_delta(&json),
            "message_stop" => return Ok(true),
            "error" => return Err(server_error(&json["error"])),
            // `ping`, and event kinds added after this was written.
            _ => {}
        }
        Ok(false)
    }

    fn partial_text(&self) -> &str {
        &self.text
    }

    fn finish(self) -> Result<Completion, StreamFault> {
        let tool_calls = self
            .tool_calls
            .into_iter()
            .map(|mut call| {
                if call.arguments.trim().is_empty() {
                    call.arguments = "{}".to_owned();
                }
                call
            })
            .collect();
        Ok(Completion {
            text: self.text,
            tool_calls,
            finish_reason: self.finish_reason,
            usage: self.usage,
            model: if self.model.is_empty() {
                self.fallback_model
            } else {
                self.model
            },
        })
    }
}

fn block_index(event: &Value) -> Result<u64, StreamFault> {
    event["index"].as_u64().ok_or_else(|| {
        StreamFault::Malformed(format!(
            "a {} event has no block index",
            event["type"].as_str().unwrap_or("content block")
        ))
    })
}

/// An `error` event, `{"type": "overloaded_error", "message": "Overloaded"}`,
/// with the HTTP status the API documents for its type.
fn server_error(error: &Value) -> StreamFault {
    let kind = error["type"].as_str().unwrap_or("error");
    let message = error["message"]
        .as_str()
        .map_or_else(|| error.to_string(), str::to_owned);
    let status = match kind {
        "invalid_request_error" => Some(400),
        "authentication_error" => Some(401),
        "permission_error" => Some(403),
        "not_found_error" => Some(404),
        "request_too_large" => Some(413),
        "rate_limit_error" => Some(429),
        "api_error" => Some(500),
        "overloaded_error" => Some(529),
        _ => None,
    };
    StreamFault::Server {
        status,
        message: format!("{kind}: {message}"),
    }
}
