//! Models: the agent's chat model (`[agent]`), asked once for its model
//! list, and the embedder behind search (`[search]`), asked to embed one
//! short text.

use super::{Check, NETWORK_TIMEOUT};
use crate::config::{AgentConfig, SearchConfig};
use crate::search::embed::Purpose;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};

const AREA: &str = "model";
const SECTION: &str = "[agent]";
/// The Messages API version the Anthropic provider speaks.
const ANTHROPIC_VERSION: &str = "2023-06-01";

/// `GET {url}/models` with the provider's credentials; ok when the
/// configured model is listed.
pub async fn agent(config: Option<&AgentConfig>, config_file: String) -> Check {
    let Some(agent) = config else {
        return Check::warn(
            AREA,
            "agent",
            "no [agent] model configured: chat answers slash commands only",
            format!(
                "add to {config_file}: [agent] provider = \"openai\" (or \"anthropic\"), \
                 url = \"http://127.0.0.1:11434/v1\", model = \"NAME\", api_key_env = \"VAR\" if it needs a key"
            ),
        );
    };
    let fix_url = format!("correct url in {SECTION} of {config_file}");
    let mut headers: Vec<(HeaderName, HeaderValue)> = Vec::new();
    let key = |scheme: &str| {
        agent
            .api_key_env
            .as_deref()
            .map(|var| crate::http::key_header_from_env(SECTION, var, scheme))
            .transpose()
    };
    let key = match agent.provider.as_str() {
        "openai" => key("Bearer ").map(|k| k.map(|k| (AUTHORIZATION, k))),
        "anthropic" => {
            headers.push((
                HeaderName::from_static("anthropic-version"),
                HeaderValue::from_static(ANTHROPIC_VERSION),
            ));
            key("").map(|k| k.map(|k| (HeaderName::from_static("x-api-key"), k)))
        }
        other => {
            return Check::fail(
                AREA,
                "agent",
                format!("unknown provider `{other}` in {SECTION}"),
                format!(
                    "set provider in {SECTION} of {config_file} to \"openai\" or \"anthropic\""
                ),
            );
        }
    };
    match key {
        Ok(Some(header)) => headers.push(header),
        Ok(None) => {}
        Err(e) => {
            return Check::fail(
                AREA,
                "agent",
                format!("{e:#}"),
                "export the key in that variable before running spoke",
            );
        }
    }
    let (mut endpoint, shown) = match crate::http::endpoint(SECTION, &agent.url, "models") {
        Ok(e) => e,
        Err(e) => return Check::fail(AREA, "agent", format!("{e:#}"), fix_url),
    };
    if agent.provider == "anthropic" {
        // The list is paged (20 by default); one page of the largest size.
        endpoint.query_pairs_mut().append_pair("limit", "1000");
    }
    let client = match crate::http::client(NETWORK_TIMEOUT, "the model server") {
        Ok(c) => c,
        Err(e) => {
            return Check::fail(
                AREA,
                "agent",
                format!("{e:#}"),
                "check the system's TLS setup",
            );
        }
    };
    let mut request = client.get(endpoint).timeout(NETWORK_TIMEOUT);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return Check::fail(
                AREA,
                "agent",
                format!(
                    "{shown} did not answer within {} s",
                    NETWORK_TIMEOUT.as_secs()
                ),
                format!("start the model server, or {fix_url}"),
            );
        }
        Err(e) => {
            return Check::fail(
                AREA,
                "agent",
                format!("cannot reach {shown}: {}", crate::http::error_chain(&e)),
                format!("start the model server, or {fix_url}"),
            );
        }
    };
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status.as_u16() == 401 || status.as_u16() == 403 {
        let fix = match &agent.api_key_env {
            Some(var) => format!("check the key in ${var}"),
            None => format!("name the variable holding the key with api_key_env in {SECTION}"),
        };
        return Check::fail(
            AREA,
            "agent",
            format!(
                "{shown} refused the credentials: HTTP {status}: {}",
                crate::http::body_excerpt(&body)
            ),
            fix,
        );
    }
    if status.as_u16() == 404 {
        return Check::warn(
            AREA,
            "agent",
            format!(
                "{shown} has no model list (HTTP 404), so model {} could not be confirmed",
                agent.model
            ),
            format!("make sure url in {SECTION} ends at the API root (usually /v1)"),
        );
    }
    if !status.is_success() {
        return Check::fail(
            AREA,
            "agent",
            format!(
                "{shown} answered HTTP {status}: {}",
                crate::http::body_excerpt(&body)
            ),
            "check the model server's own logs",
        );
    }
    let listed = match model_ids(&body) {
        Some(ids) => ids,
        None => {
            return Check::warn(
                AREA,
                "agent",
                format!(
                    "{shown} answered, but not with a model list: {}",
                    crate::http::body_excerpt(&body)
                ),
                format!(
                    "make sure url in {SECTION} points at an {} API",
                    agent.provider
                ),
            );
        }
    };
    if listed.iter().any(|id| serves(id, &agent.model)) {
        Check::ok(
            AREA,
            "agent",
            format!(
                "{} at {}: model {} is served",
                agent.provider, agent.url, agent.model
            ),
        )
    } else {
        let some: Vec<&str> = listed.iter().take(8).map(String::as_str).collect();
        Check::warn(
            AREA,
            "agent",
            format!(
                "{} at {} answers, but does not list model {} (it lists {}{})",
                agent.provider,
                agent.url,
                agent.model,
                if some.is_empty() {
                    "none".to_owned()
                } else {
                    some.join(", ")
                },
                if listed.len() > some.len() {
                    ", ..."
                } else {
                    ""
                }
            ),
            format!("set model in {SECTION} of {config_file} to one the server serves"),
        )
    }
}

/// The ids in an OpenAI or Anthropic model list (`{"data": [{"id": ..}]}`).
fn model_ids(body: &str) -> Option<Vec<String>> {
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    let data = json.get("data")?.as_array()?;
    Some(
        data.iter()
            .filter_map(|m| m.get("id").and_then(|v| v.as_str()).map(str::to_owned))
            .collect(),
    )
}

/// A listed id serves the configured model: the same, a dated version of an
/// alias (`claude-x` -> `claude-x-20250101`), or Ollama's `:latest` tag.
fn serves(listed: &str, configured: &str) -> bool {
    listed == configured
        || listed
            .strip_prefix(configured)
            .is_some_and(|rest| rest == ":latest" || rest.starts_with('-'))
}

/// The embedder check and the vector length it answered with.
pub struct Embedded {
    pub check: Check,
    pub dims: Option<usize>,
}

/// Embeds one short text with the configured embedder (no retries, a short
/// timeout).
pub fn embedder(config: &SearchConfig, config_file: String) -> Embedded {
    let mut config = config.clone();
    if let Some(openai) = &mut config.openai {
        openai.timeout_secs = Some(NETWORK_TIMEOUT.as_secs());
        openai.retries = Some(0);
    }
    let embedder = match crate::search::embed::from_config(&config) {
        Ok(e) => e,
        Err(e) => {
            return Embedded {
                check: Check::fail(
                    AREA,
                    "embedder",
                    format!("{e:#}"),
                    format!("correct [search] in {config_file}"),
                ),
                dims: None,
            };
        }
    };
    let local = embedder.id().kind == "local";
    match embedder.embed(&["spoke doctor checks the embedder"], Purpose::Passage) {
        Ok(vectors) => {
            let dims = vectors.first().map(Vec::len).unwrap_or(0);
            let detail = if local {
                format!(
                    "local ({}): {dims} dimensions, computed here (no model needed)",
                    embedder.id().model
                )
            } else {
                format!("{}: {dims} dimensions", embedder.describe())
            };
            let check = match embedder.notice() {
                Some(notice) => Check::warn(
                    AREA,
                    "embedder",
                    format!("{detail}; {notice}"),
                    "export the key, or drop api_key_env from [search.openai] for a server that needs none",
                ),
                None => Check::ok(AREA, "embedder", detail),
            };
            Embedded {
                check,
                dims: Some(dims),
            }
        }
        Err(e) => Embedded {
            check: Check::fail(
                AREA,
                "embedder",
                e.to_string(),
                format!(
                    "start the embeddings server, or correct [search.openai] in {config_file}; \
                     meanwhile searches match words only"
                ),
            ),
            dims: None,
        },
    }
}

/// `GET {url}/object_info` of the ComfyUI server in `[generate]`, when one
/// is set: ok with its node classes and LoRAs, fail when it does not answer.
pub async fn comfyui(config: &crate::config::GenerateConfig, config_file: String) -> Option<Check> {
    let url = config.url.as_deref()?;
    let comfy = crate::generate::comfy::Comfy::new(url, std::time::Duration::from_secs(5));
    let fix = format!("start ComfyUI there, or correct url in [generate] of {config_file}");
    match tokio::time::timeout(NETWORK_TIMEOUT, comfy.object_info()).await {
        Ok(Ok(info)) => {
            let classes = info.as_object().map(|o| o.len()).unwrap_or(0);
            let loras: Vec<String> = info["LoraLoader"]["input"]["required"]["lora_name"][0]
                .as_array()
                .map(|l| {
                    l.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            Some(Check::ok(
                AREA,
                "comfyui",
                format!(
                    "ComfyUI at {url}: {classes} node classes; LoRAs: {}",
                    if loras.is_empty() {
                        "none".to_owned()
                    } else {
                        loras.join(", ")
                    }
                ),
            ))
        }
        Ok(Err(e)) => Some(Check::fail(AREA, "comfyui", e.to_string(), fix)),
        Err(_) => Some(Check::fail(
            AREA,
            "comfyui",
            format!(
                "ComfyUI at {url} did not answer within {} s",
                NETWORK_TIMEOUT.as_secs()
            ),
            fix,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_models_serve_aliases_and_tags() {
        assert!(serves("gpt-4o", "gpt-4o"));
        assert!(serves("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"));
        assert!(serves("llama3:latest", "llama3"));
        assert!(!serves("llama3.1:8b", "llama3"));
        assert!(!serves("gpt-4o", "gpt-4"));
        assert_eq!(
            model_ids(r#"{"data":[{"id":"a"},{"id":"b"}]}"#),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(model_ids("not json"), None);
    }
}
