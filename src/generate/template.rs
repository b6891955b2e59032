//! Workflow templates: ComfyUI graphs in API format with named placeholders
//! (`prompt`, `negative`, `seed`, `width`, `height`, `steps`, `lora`,
//! `lora_strength`, `image`) bound to node inputs.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The placeholders a template may bind.
pub const PLACEHOLDERS: [&str; 9] = [
    "prompt",
    "negative",
    "seed",
    "width",
    "height",
    "steps",
    "lora",
    "lora_strength",
    "image",
];

/// Where a placeholder's value goes: a node's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub node: String,
    pub input: String,
}

/// Who runs a template. Midjourney has no public API; a template naming it
/// is kept so the refusal can say so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    #[default]
    Comfyui,
    Midjourney,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    pub name: String,
    #[serde(default)]
    pub provider: Provider,
    /// The API-format graph: node id -> `{class_type, inputs}`.
    pub graph: Value,
    /// Placeholder -> the inputs it sets (one value may feed several nodes).
    pub bindings: BTreeMap<String, Vec<Binding>>,
    /// A lead's mark: this template may run without the brand's LoRA.
    #[serde(default)]
    pub brand_lora_optional: bool,
}

/// Values for one run of a template.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Values {
    pub prompt: String,
    pub negative: String,
    pub seed: u64,
    pub width: u32,
    pub height: u32,
    pub steps: Option<u32>,
    /// LoRA file name and strength (the brand's).
    pub lora: Option<(String, f64)>,
    /// An uploaded input image's name, for img2img.
    pub image: Option<String>,
}

/// What is wrong with a template, naming the node when one is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

/// SHA-256 of the graph as canonical JSON (keys sorted), hex: the same
/// graph always hashes the same, so a run can be reproduced.
pub fn graph_sha256(graph: &Value) -> String {
    use sha2::Digest;
    fn canonical(v: &Value, out: &mut String) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String((*k).clone()).to_string());
                    out.push(':');
                    canonical(&map[*k], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canonical(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut text = String::new();
    canonical(graph, &mut text);
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Template {
    /// Reads a workflow file: placeholders are string inputs written
    /// `{{name}}`, plus `explicit` bindings `name=NODE.INPUT`.
    pub fn parse(
        _name: &str,
        _json_text: &str,
        _explicit: &[(String, String)],
    ) -> Result<Template, TemplateError> {
        Err(TemplateError("not built".into()))
    }

    /// Problems against a server's `/object_info`: unknown node classes,
    /// inputs a class does not declare, LoRA files the server lacks.
    pub fn check_against(&self, _object_info: &Value, _loras: &[String]) -> Vec<TemplateError> {
        vec![TemplateError("not built".into())]
    }

    /// The graph with `values` in place of its placeholders.
    pub fn bind(&self, _values: &Values) -> Result<Value, TemplateError> {
        Err(TemplateError("not built".into()))
    }
}
