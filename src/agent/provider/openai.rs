//! The OpenAI-compatible chat completions dialect (OpenAI, Ollama's `/v1`,
//! llama.cpp, vLLM): `POST {url}/chat/completions` with `stream: true`, text
//! and tool-call fragments assembled from `choices[0].delta`.

use super::sse::{self, Dialect, StreamFault, Transport};
use super::{
    ChatMessage, ChatRequest, Completion, Provider, ProviderError, ProviderSettings, Role,
    StreamEvent, ToolCall, ToolChoice, Usage,
};
use anyhow::Result;
use eventsource_stream::Event;
use reqwest::header::AUTHORIZATION;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use tokio_util::sync::CancellationToken;

/// A chat model behind an OpenAI-compatible `/v1/chat/completions`.
pub struct OpenAiProvider {
    transport: Transport,
    settings: ProviderSettings,
}

impl OpenAiProvider {
    /// Checks the settings, reads the API key from its environment variable
    /// (if one is named) and sets up the HTTP client. No request is made.
    pub fn new(settings: &ProviderSettings) -> Result<OpenAiProvider> {
        let mut headers = Vec::new();
        if let Some(var) = &settings.api_key_env {
            headers.push((
                AUTHORIZATION,
                crate::http::key_header_from_env(sse::SECTION, var, "Bearer ")?,
            ));
        }
        Ok(OpenAiProvider {
            transport: Transport::new(settings, "chat/completions", headers)?,
            settings: settings.clone(),
        })
    }

    /// The JSON body of a streamed chat completions request.
    fn request_body(&self, request: &ChatRequest) -> Value {
        let messages: Vec<Value> = request.messages.iter().map(message_json).collect();
        let mut body = json!({
            "model": self.settings.model,
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": request.max_tokens.unwrap_or(self.settings.max_tokens),
        });
        if let Some(temperature) = request.temperature.or(self.settings.temperature) {
            body["temperature"] = json!(temperature);
        }
        // Servers refuse a tool_choice without tools.
        if !request.tools.is_empty() {
            let tools: Vec<Value> = request
                .tools
                .iter()
                .map(|tool| {
                    json!({
                        "type": "function",
                        "function": {
                            "name": tool.name,
                            "description": tool.description,
                            "parameters": tool.parameters,
                        },
                    })
                })
                .collect();
            body["tools"] = Value::Array(tools);
            body["tool_choice"] = match &request.tool_choice {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::None => json!("none"),
                ToolChoice::Required => json!("required"),
                ToolChoice::Function(name) => {
                    json!({"type": "function", "function": {"name": name}})
                }
            };
        }
        if let Some(schema) = &request.response_schema {
            body["response_format"] = json!({
                "type": "json_schema",
                "json_schema": {
                    "name": schema.name,
                    "description": schema.description,
                    "schema": schema.schema,
                    "strict": true,
                },
            });
        }
        body
    }
}

fn message_json(message: &ChatMessage) -> Value {
    match message.role {
        Role::System => json!({"role": "system", "content": message.content}),
        Role::User => json!({"role": "user", "content": message.content}),
        Role::Assistant if message.tool_calls.is_empty() => {
            json!({"role": "assistant", "content": message.content})
        }
        Role::Assistant => {
            let calls: Vec<Value> = message
                .tool_calls
                .iter()
                .map(|call| {
                    json!({
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    })
                })
                .collect();
            json!({"role": "assistant", "content": message.content, "tool_calls": calls})
        }
        Role::Tool => json!({
            "role": "tool",
            "tool_call_id": message.tool_call_id.as_deref().unwrap_or_default(),
            "content": message.content,
        }),
    }
}

impl Provider for OpenAiProvider {
    fn name(&self) -> &str {
        "openai"
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
            provider = "openai",
            model = %self.settings.model,
            messages = request.messages.len(),
            "streaming a chat completion"
        );
        let body = self.request_body(request).to_string().into_bytes();
        let fallback_model = self.settings.model.as_str();
        let new_dialect = || ChatCompletionsStream::new(fallback_model);
        self.transport.stream(&body, &new_dialect, cancel, on_event)
    }
}

impl fmt::Debug for OpenAiProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiProvider")
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
struct ChatCompletionsStream {
    text: String,
    /// Tool calls by the index they are reported under.
    calls: BTreeMap<usize, PartialCall>,
    /// The server's index for a call -> ours, when a server reused an index
    /// for a second call (it still gives each its own id).
    renumbered: HashMap<usize, usize>,
    /// The call the last fragment was for, for servers that leave out `index`.
    last_call: Option<usize>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    model: String,
    fallback_model: String,
}

#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
    /// Whether `ToolCallStarted` went out (it needs the name).
    started: bool,
}

impl ChatCompletionsStream {
    fn new(fallback_model: &str) -> Self {
        ChatCompletionsStream {
            text: String::new(),
            calls: BTreeMap::new(),
            renumbered: HashMap::new(),
            last_call: None,
            finish_reason: None,
            usage: None,
            model: String::new(),
            fallback_model: fallback_model.to_owned(),
        }
    }

    /// Which call a `delta.tool_calls[]` fragment belongs to.
    fn call_index(&self, fragment: &Value) -> usize {
        let id = non_empty_str(fragment.get("id"));
        let next_free = self.calls.keys().next_back().map_or(0, |last| last + 1);
        match fragment.get("index").and_then(Value::as_u64) {
            Some(reported) => {
                let reported = usize::try_from(reported).unwrap_or(usize::MAX);
                let index = self.renumbered.get(&reported).copied().unwrap_or(reported);
                match (id, self.calls.get(&index)) {
                    (Some(id), Some(call)) if !call.id.is_empty() && call.id != id => next_free,
                    _ => index,
                }
            }
            // Servers that leave out `index` send one call, or each call whole.
            None => match id {
                Some(id) => self
                    .calls
                    .iter()
                    .find(|(_, call)| call.id == id)
                    .map_or(next_free, |(index, _)| *index),
                None => self.last_call.unwrap_or(0),
            },
        }
    }

    fn take_tool_call(&mut self, fragment: &Value, emit: &mut dyn FnMut(StreamEvent)) {
        let index = self.call_index(fragment);
        if let Some(reported) = fragment.get("index").and_then(Value::as_u64)
            && let Ok(reported) = usize::try_from(reported)
            && reported != index
        {
            self.renumbered.insert(reported, index);
        }
        self.last_call = Some(index);
        let call = self.calls.entry(index).or_default();
        if call.id.is_empty()
            && let Some(id) = non_empty_str(fragment.get("id"))
        {
            call.id = id.to_owned();
        }
        let function = fragment.get("function");
        if call.name.is_empty()
            && let Some(name) = non_empty_str(function.and_then(|f| f.get("name")))
        {
            call.name = name.to_owned();
        }
        // Arguments are a JSON string; a server that sends the object itself is taken at its word.
        let fragment_text = match function.and_then(|f| f.get("arguments")) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
        };
        call.arguments.push_str(&fragment_text);
        if call.started {
            if !fragment_text.is_empty() {
                emit(StreamEvent::ToolCallArguments {
                    index,
                    fragment: fragment_text,
                });
            }
        } else if !call.name.is_empty() {
            call.started = true;
            if call.id.is_empty() {
                call.id = format!("call_{index}");
            }
            emit(StreamEvent::ToolCallStarted {
                index,
                id: call.id.clone(),
                name: call.name.clone(),
            });
            if !call.arguments.is_empty() {
                emit(StreamEvent::ToolCallArguments {
                    index,
                    fragment: call.arguments.clone(),
                });
            }
        }
    }
}

impl Dialect for ChatCompletionsStream {
    fn take(
        &mut self,
        event: &Event,
        emit: &mut dyn FnMut(StreamEvent),
    ) -> Result<bool, StreamFault> {
        let data = event.data.trim();
        if data == "[DONE]" {
            // Every complete answer says why it stopped. llama-cpp-python
            // ends an answer early with a bare [DONE] when another request
            // interrupts it.
            if self.finish_reason.is_none() {
                return Err(StreamFault::Cut(
                    "the server ended the answer without a finish_reason".to_owned(),
                ));
            }
            return Ok(true);
        }
        if data.is_empty() {
            return Ok(false);
        }
        let chunk = sse::event_json(event)?;
        if let Some(error) = chunk.get("error") {
            return Err(server_error(error));
        }
        if !chunk.is_object() {
            return Err(StreamFault::Malformed(format!(
                "a chunk is not a JSON object: {}",
                crate::http::body_excerpt(data)
            )));
        }
        if self.model.is_empty()
            && let Some(model) = non_empty_str(chunk.get("model"))
        {
            self.model = model.to_owned();
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(Usage {
                input_tokens: usage["prompt_tokens"].as_u64().unwrap_or(0),
                output_tokens: usage["completion_tokens"].as_u64().unwrap_or(0),
            });
        }
        // One answer was asked for; with `include_usage` the last chunk has no choices.
        let Some(choice) = chunk
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|choices| choices.first())
        else {
            return Ok(false);
        };
        let delta = &choice["delta"];
        if let Some(text) = non_empty_str(delta.get("content")) {
            self.text.push_str(text);
            emit(StreamEvent::Text(text.to_owned()));
        }
        if let Some(fragments) = delta.get("tool_calls").and_then(Value::as_array) {
            for fragment in fragments {
                self.take_tool_call(fragment, emit);
            }
        }
        if let Some(reason) = non_empty_str(choice.get("finish_reason")) {
            self.finish_reason = Some(reason.to_owned());
        }
        Ok(false)
    }

    fn partial_text(&self) -> &str {
        &self.text
    }

    fn finish(self) -> Result<Completion, StreamFault> {
        let mut tool_calls = Vec::with_capacity(self.calls.len());
        for (index, call) in self.calls {
            if call.name.is_empty() {
                return Err(StreamFault::Malformed(format!(
                    "tool call {index} never said which tool it calls"
                )));
            }
            tool_calls.push(ToolCall {
                id: call.id,
                name: call.name,
                arguments: if call.arguments.trim().is_empty() {
                    "{}".to_owned()
                } else {
                    call.arguments
                },
            });
        }
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

/// An `{"error": ...}` chunk: OpenAI and llama.cpp send an object with a
/// message, a type and sometimes an HTTP status as `code`; others a string.
fn server_error(error: &Value) -> StreamFault {
    let message = match error {
        Value::String(text) => text.clone(),
        Value::Object(fields) => describe_error(fields),
        other => other.to_string(),
    };
    let status = error
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|code| u16::try_from(code).ok())
        .filter(|code| (400..600).contains(code));
    StreamFault::Server { status, message }
}

fn describe_error(fields: &Map<String, Value>) -> String {
    let message = fields
        .get("message")
        .and_then(Value::as_str)
        .map_or_else(|| Value::Object(fields.clone()).to_string(), str::to_owned);
    match fields.get("type").and_then(Value::as_str) {
        Some(kind) if !kind.is_empty() => format!("{kind}: {message}"),
        _ => message,
    }
}

fn non_empty_str(value: Option<&Value>) -> Option<&str> {
    value
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
}
