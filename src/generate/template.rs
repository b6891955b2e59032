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

/// Largest workflow file a template may come from: templates are hub data
/// and travel in one op.
pub const MAX_TEMPLATE_BYTES: usize = 150 * 1024;

/// Node classes whose results a run collects.
pub const OUTPUT_CLASSES: [&str; 2] = ["SaveImage", "PreviewImage"];

/// The placeholder a string input names, when it is exactly `{{name}}`
/// (whitespace inside the braces tolerated).
fn placeholder_in(value: &Value) -> Option<&str> {
    let text = value.as_str()?.trim();
    let inner = text.strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let word = !inner.is_empty()
        && inner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    word.then_some(inner)
}

/// A link from another node's output: `["4", 0]`.
fn link_in(value: &Value) -> Option<String> {
    match value.as_array()?.as_slice() {
        [Value::String(node), slot] if slot.is_u64() => Some(node.clone()),
        [node, slot] if node.is_u64() && slot.is_u64() => Some(node.to_string()),
        _ => None,
    }
}

/// Node ids in a stable order: numbers numerically, then the rest.
fn sorted_ids(graph: &serde_json::Map<String, Value>) -> Vec<&String> {
    let mut ids: Vec<&String> = graph.keys().collect();
    ids.sort_by(|a, b| match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    });
    ids
}

fn class_of(node: &Value) -> &str {
    node.get("class_type").and_then(Value::as_str).unwrap_or("")
}

/// A list of names for a message, cut short when long.
fn name_list(names: &[String]) -> String {
    const SHOWN: usize = 12;
    if names.is_empty() {
        return "none".into();
    }
    let mut out = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        out.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    out
}

/// Whether a parsed file is a ComfyUI UI workflow (what Save writes)
/// rather than the API format a server runs.
fn is_ui_format(doc: &Value) -> bool {
    doc.get("nodes").is_some_and(Value::is_array) || doc.get("links").is_some_and(Value::is_array)
}

/// The choices a list-typed input offers, from an `/object_info` input
/// spec: `[["a", "b"], {...}]` or the newer `["COMBO", {"options": [...]}]`.
fn combo_options(spec: &Value) -> Option<Vec<String>> {
    let first = spec.get(0)?;
    let list = match first {
        Value::Array(items) => items,
        Value::String(kind) if kind == "COMBO" => spec.get(1)?.get("options")?.as_array()?,
        _ => return None,
    };
    Some(
        list.iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
    )
}

/// The declared inputs of a class in `/object_info`: required, optional
/// and hidden, each name with its spec.
fn declared_inputs(class: &Value) -> BTreeMap<String, (bool, Value)> {
    let mut out = BTreeMap::new();
    for (section, required) in [("required", true), ("optional", false), ("hidden", false)] {
        if let Some(map) = class
            .get("input")
            .and_then(|i| i.get(section))
            .and_then(Value::as_object)
        {
            for (name, spec) in map {
                out.insert(name.clone(), (required, spec.clone()));
            }
        }
    }
    out
}

/// Whether `json_text` is a ComfyUI UI workflow (what Save writes).
pub fn is_ui_workflow(json_text: &str) -> bool {
    serde_json::from_str::<Value>(json_text).is_ok_and(|doc| is_ui_format(&doc))
}

/// Widget types whose values sit in a UI node's `widgets_values`.
fn is_widget_spec(spec: &Value) -> bool {
    match spec.get(0) {
        Some(Value::Array(_)) => true,
        Some(Value::String(kind)) => {
            matches!(
                kind.as_str(),
                "INT" | "FLOAT" | "STRING" | "BOOLEAN" | "COMBO"
            )
        }
        _ => false,
    }
}

/// The values the frontend's `control_after_generate` widget takes.
const SEED_CONTROLS: [&str; 4] = ["fixed", "increment", "decrement", "randomize"];

/// Converts a UI workflow to API format the way the frontend's Export (API)
/// does, with the server's `/object_info` for each class's widget order:
/// links become `["NODE", slot]`, `widgets_values` fill the class's widget
/// inputs in order (the seed's `control_after_generate` entry skipped),
/// notes are dropped, reroutes followed and primitive nodes inlined.
pub fn ui_to_api(name: &str, json_text: &str, object_info: &Value) -> Result<Value, TemplateError> {
    let fail = |msg: String| TemplateError(format!("{name}: {msg}"));
    let doc: Value = serde_json::from_str(json_text).map_err(|e| {
        fail(format!(
            "not valid JSON (line {}, column {}): {e}",
            e.line(),
            e.column()
        ))
    })?;
    let hint = "export it in API format (Workflow → Export (API)) and add that file";
    if doc
        .pointer("/definitions/subgraphs")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty())
    {
        return Err(fail(format!(
            "it uses subgraphs, which Spoke does not convert; {hint}"
        )));
    }
    let nodes: &[Value] = doc
        .get("nodes")
        .and_then(Value::as_array)
        .map_or(&[], |n| n);
    let by_id: BTreeMap<String, &Value> = nodes
        .iter()
        .filter_map(|n| Some((id_text(n.get("id")?), n)))
        .collect();
    // link id -> (from node, from slot)
    let mut links: BTreeMap<String, (String, u64)> = BTreeMap::new();
    for link in doc
        .get("links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match link {
            Value::Array(l) if l.len() >= 5 => {
                let slot = l[2].as_u64().unwrap_or(0);
                links.insert(id_text(&l[0]), (id_text(&l[1]), slot));
            }
            Value::Object(l) => {
                if let (Some(id), Some(from)) = (l.get("id"), l.get("origin_id")) {
                    let slot = l.get("origin_slot").and_then(Value::as_u64).unwrap_or(0);
                    links.insert(id_text(id), (id_text(from), slot));
                }
            }
            _ => {}
        }
    }
    const UI_ONLY: [&str; 3] = ["Note", "MarkdownNote", "PrimitiveNode"];
    // A linked input's source: a node output, or a primitive's value.
    let resolve = |link: &Value| -> Result<Value, TemplateError> {
        let mut key = id_text(link);
        for _ in 0..64 {
            let (from, slot) = links
                .get(&key)
                .ok_or_else(|| fail(format!("link {key} is not in the links list")))?;
            let source = by_id.get(from).ok_or_else(|| {
                fail(format!(
                    "link {key} comes from node {from}, which is missing"
                ))
            })?;
            match source.get("type").and_then(Value::as_str).unwrap_or("") {
                "Reroute" => {
                    key = source
                        .pointer("/inputs/0/link")
                        .filter(|l| !l.is_null())
                        .map(id_text)
                        .ok_or_else(|| fail(format!("reroute {from} has no input")))?;
                }
                "PrimitiveNode" => {
                    return source
                        .pointer("/widgets_values/0")
                        .cloned()
                        .ok_or_else(|| fail(format!("primitive node {from} has no value")));
                }
                _ => {
                    return Ok(Value::Array(vec![
                        Value::from(from.clone()),
                        Value::from(*slot),
                    ]));
                }
            }
        }
        Err(fail(format!("link {key} runs through too many reroutes")))
    };
    let mut api = serde_json::Map::new();
    for node in nodes {
        let id = node.get("id").map(id_text).unwrap_or_default();
        let class_name = node.get("type").and_then(Value::as_str).unwrap_or("");
        if UI_ONLY.contains(&class_name) || class_name == "Reroute" {
            continue;
        }
        match node.get("mode").and_then(Value::as_u64) {
            Some(2) => continue,
            Some(4) => {
                return Err(fail(format!(
                    "node {id} ({class_name}) is bypassed, which Spoke does not convert; {hint}"
                )));
            }
            _ => {}
        }
        let class = object_info.get(class_name).ok_or_else(|| {
            fail(format!(
                "node {id} ({class_name}): the server has no such node class"
            ))
        })?;
        let declared = declared_inputs(class);
        let order: Vec<String> = ["required", "optional"]
            .iter()
            .flat_map(|section| {
                class
                    .pointer(&format!("/input_order/{section}"))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        if order.is_empty() && !declared.is_empty() {
            return Err(fail(format!(
                "the server's object_info gives no input order for {class_name}; {hint}"
            )));
        }
        let mut inputs = serde_json::Map::new();
        let widgets = node.get("widgets_values");
        let mut next = 0usize;
        for input in &order {
            let Some((_, spec)) = declared.get(input) else {
                continue;
            };
            if !is_widget_spec(spec) {
                continue;
            }
            let value = match widgets {
                Some(Value::Object(map)) => map.get(input).cloned(),
                Some(Value::Array(list)) => {
                    let v = list.get(next).cloned();
                    next += 1;
                    let control = spec
                        .get(1)
                        .and_then(|o| o.get("control_after_generate"))
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                        || matches!(input.as_str(), "seed" | "noise_seed");
                    if control
                        && list
                            .get(next)
                            .and_then(Value::as_str)
                            .is_some_and(|s| SEED_CONTROLS.contains(&s))
                    {
                        next += 1;
                    }
                    v
                }
                _ => None,
            };
            if let Some(value) = value {
                inputs.insert(input.clone(), value);
            }
        }
        for slot in node
            .get("inputs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(input), Some(link)) = (
                slot.get("name").and_then(Value::as_str),
                slot.get("link").filter(|l| !l.is_null()),
            ) else {
                continue;
            };
            inputs.insert(input.to_owned(), resolve(link)?);
        }
        let title = node
            .get("title")
            .and_then(Value::as_str)
            .or_else(|| class.get("display_name").and_then(Value::as_str))
            .unwrap_or(class_name);
        api.insert(
            id,
            serde_json::json!({
                "inputs": inputs,
                "class_type": class_name,
                "_meta": {"title": title},
            }),
        );
    }
    Ok(Value::Object(api))
}

/// A node or link id as the API format writes it: `"4"`.
fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Template {
    /// Reads a workflow file: placeholders are string inputs written
    /// `{{name}}`, plus `explicit` bindings `name=NODE.INPUT`.
    pub fn parse(
        name: &str,
        json_text: &str,
        explicit: &[(String, String)],
    ) -> Result<Template, TemplateError> {
        let err = |msg: String| Err(TemplateError(msg));
        if json_text.len() > MAX_TEMPLATE_BYTES {
            return err(format!(
                "{name} is {} KiB; a template is hub data and may be at most {} KiB",
                json_text.len().div_ceil(1024),
                MAX_TEMPLATE_BYTES / 1024
            ));
        }
        let doc: Value = match serde_json::from_str(json_text) {
            Ok(doc) => doc,
            Err(e) => {
                return err(format!(
                    "{name} is not valid JSON (line {}, column {}): {e}",
                    e.line(),
                    e.column()
                ));
            }
        };
        if is_ui_format(&doc) {
            return err(format!(
                "{name} is a ComfyUI UI workflow; export it in API format \
                 (Workflow → Export (API)) and add that file"
            ));
        }
        let Some(graph) = doc.as_object() else {
            return err(format!(
                "{name} is not a ComfyUI API workflow: expected an object of node id → \
                 {{\"class_type\", \"inputs\"}}"
            ));
        };
        if graph.is_empty() {
            return err(format!("{name} has no nodes"));
        }
        let mut bindings: BTreeMap<String, Vec<Binding>> = BTreeMap::new();
        for id in sorted_ids(graph) {
            let node = &graph[id];
            let class = match node.get("class_type") {
                Some(Value::String(c)) if !c.trim().is_empty() => c.as_str(),
                _ => return err(format!("{name}: node {id} has no class_type")),
            };
            let inputs = match node.get("inputs") {
                None => continue,
                Some(Value::Object(inputs)) => inputs,
                Some(_) => {
                    return err(format!(
                        "{name}: node {id} ({class}) has inputs that are not an object"
                    ));
                }
            };
            for (input, value) in inputs {
                if let Some(target) = link_in(value)
                    && !graph.contains_key(&target)
                {
                    return err(format!(
                        "{name}: node {id} ({class}) input {input} links to node {target}, \
                         which is not in the graph"
                    ));
                }
                if let Some(placeholder) = placeholder_in(value) {
                    if !PLACEHOLDERS.contains(&placeholder) {
                        return err(format!(
                            "{name}: node {id} ({class}) input {input} has an unknown \
                             placeholder {{{{{placeholder}}}}} (placeholders: {})",
                            PLACEHOLDERS.join(", ")
                        ));
                    }
                    bindings
                        .entry(placeholder.to_owned())
                        .or_default()
                        .push(Binding {
                            node: id.clone(),
                            input: input.clone(),
                        });
                }
            }
        }
        for (placeholder, target) in explicit {
            let placeholder = placeholder.trim();
            let target = target.trim();
            let shown = format!("--bind {placeholder}={target}");
            if !PLACEHOLDERS.contains(&placeholder) {
                return err(format!(
                    "{shown}: unknown placeholder `{placeholder}` (placeholders: {})",
                    PLACEHOLDERS.join(", ")
                ));
            }
            let Some((node_id, input)) = target.split_once('.') else {
                return err(format!(
                    "{shown}: write the target as NODE.INPUT, e.g. 3.seed"
                ));
            };
            let Some(node) = graph.get(node_id) else {
                return err(format!("{shown}: {name} has no node {node_id}"));
            };
            let class = class_of(node);
            let inputs = node.get("inputs").and_then(Value::as_object);
            let Some(value) = inputs.and_then(|i| i.get(input)) else {
                let known: Vec<String> = inputs
                    .map(|i| i.keys().cloned().collect())
                    .unwrap_or_default();
                return err(format!(
                    "{shown}: node {node_id} ({class}) has no input `{input}` (it has: {})",
                    name_list(&known)
                ));
            };
            if link_in(value).is_some() {
                return err(format!(
                    "{shown}: node {node_id} ({class}) input {input} is a link from another \
                     node, not a value"
                ));
            }
            let binding = Binding {
                node: node_id.to_owned(),
                input: input.to_owned(),
            };
            let list = bindings.entry(placeholder.to_owned()).or_default();
            if !list.contains(&binding) {
                list.push(binding);
            }
        }
        if !bindings.contains_key("prompt") {
            return err(format!(
                "{name} binds no prompt: write \"{{{{prompt}}}}\" as the positive prompt's \
                 text, or add --bind prompt=NODE.INPUT"
            ));
        }
        if !graph
            .values()
            .any(|n| OUTPUT_CLASSES.contains(&class_of(n)))
        {
            return err(format!(
                "{name} has no output node ({}): a run would produce no images",
                OUTPUT_CLASSES.join(" or ")
            ));
        }
        Ok(Template {
            name: name.to_owned(),
            provider: Provider::default(),
            graph: doc,
            bindings,
            brand_lora_optional: false,
        })
    }

    /// [`Template::parse`] of a UI workflow converted with [`ui_to_api`].
    pub fn from_ui(
        name: &str,
        json_text: &str,
        explicit: &[(String, String)],
        object_info: &Value,
    ) -> Result<Template, TemplateError> {
        let api = ui_to_api(name, json_text, object_info)?;
        let text = serde_json::to_string(&api).map_err(|e| TemplateError(e.to_string()))?;
        Template::parse(name, &text, explicit)
    }

    /// Problems against a server's `/object_info`: unknown node classes,
    /// inputs a class does not declare, LoRA files the server lacks.
    pub fn check_against(&self, object_info: &Value, loras: &[String]) -> Vec<TemplateError> {
        self.check_against_server("the server", object_info, loras)
    }

    /// [`Template::check_against`], naming the server (`ComfyUI at URL`)
    /// in its messages.
    pub fn check_against_server(
        &self,
        server: &str,
        object_info: &Value,
        loras: &[String],
    ) -> Vec<TemplateError> {
        let mut problems = Vec::new();
        let mut say = |msg: String| problems.push(TemplateError(msg));
        let Some(graph) = self.graph.as_object() else {
            say(format!("{}: the graph is not an object", self.name));
            return problems;
        };
        for id in sorted_ids(graph) {
            let node = &graph[id];
            let class_name = class_of(node);
            let Some(class) = object_info.get(class_name) else {
                say(format!(
                    "node {id} ({class_name}): {server} has no such node class"
                ));
                continue;
            };
            let declared = declared_inputs(class);
            let inputs = node.get("inputs").and_then(Value::as_object);
            for (input, value) in inputs.into_iter().flatten() {
                let Some((_, spec)) = declared.get(input) else {
                    say(format!(
                        "node {id} ({class_name}): {class_name} on {server} has no input `{input}`"
                    ));
                    continue;
                };
                if link_in(value).is_some() || placeholder_in(value).is_some() {
                    continue;
                }
                if let Some(options) = combo_options(spec) {
                    let literal = match value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    if !options.contains(&literal) {
                        say(format!(
                            "node {id} ({class_name}): {input} `{literal}` is not on {server} \
                             (it has: {})",
                            name_list(&options)
                        ));
                    }
                }
            }
            for (input, (required, _)) in &declared {
                if *required && !inputs.is_some_and(|i| i.contains_key(input)) {
                    say(format!(
                        "node {id} ({class_name}): required input `{input}` is missing"
                    ));
                }
            }
        }
        if !loras.is_empty() {
            let available = object_info
                .get("LoraLoader")
                .and_then(|c| c.get("input"))
                .and_then(|i| i.get("required"))
                .and_then(|r| r.get("lora_name"))
                .and_then(combo_options);
            match available {
                None => say(format!(
                    "{server} has no LoraLoader node, so the brand's LoRA cannot be loaded"
                )),
                Some(available) => {
                    for lora in loras {
                        if !available.contains(lora) {
                            say(format!(
                                "LoRA {lora} is not on {server} (it has: {})",
                                name_list(&available)
                            ));
                        }
                    }
                }
            }
        }
        problems
    }

    /// The graph with `values` in place of its placeholders.
    pub fn bind(&self, values: &Values) -> Result<Value, TemplateError> {
        let mut graph = self.graph.clone();
        for (placeholder, targets) in &self.bindings {
            let missing = || {
                TemplateError(format!(
                    "template {} binds {{{{{placeholder}}}}} but the run has no value for it",
                    self.name
                ))
            };
            let value: Option<Value> = match placeholder.as_str() {
                "prompt" if values.prompt.trim().is_empty() => return Err(missing()),
                "prompt" => Some(Value::from(values.prompt.clone())),
                "negative" => Some(Value::from(values.negative.clone())),
                "seed" => Some(Value::from(values.seed)),
                "width" => Some(Value::from(values.width)),
                "height" => Some(Value::from(values.height)),
                "steps" => values.steps.map(Value::from),
                "lora" => Some(Value::from(
                    values.lora.as_ref().ok_or_else(missing)?.0.clone(),
                )),
                "lora_strength" => {
                    let strength = values.lora.as_ref().ok_or_else(missing)?.1;
                    Some(Value::from(
                        serde_json::Number::from_f64(strength).ok_or_else(|| {
                            TemplateError(format!(
                                "template {}: the LoRA strength {strength} is not a number",
                                self.name
                            ))
                        })?,
                    ))
                }
                "image" => Some(Value::from(values.image.clone().ok_or_else(missing)?)),
                other => {
                    return Err(TemplateError(format!(
                        "template {} binds an unknown placeholder `{other}` (placeholders: {})",
                        self.name,
                        PLACEHOLDERS.join(", ")
                    )));
                }
            };
            for target in targets {
                let slot = graph
                    .get_mut(&target.node)
                    .and_then(|n| n.get_mut("inputs"))
                    .and_then(|i| i.get_mut(&target.input))
                    .ok_or_else(|| {
                        TemplateError(format!(
                            "template {}: {{{{{placeholder}}}}} binds node {} input {}, \
                             which is not in the graph",
                            self.name, target.node, target.input
                        ))
                    })?;
                match &value {
                    Some(v) => *slot = v.clone(),
                    // No steps given: a literal the template holds stays.
                    None if placeholder_in(slot).is_none() => {}
                    None => return Err(missing()),
                }
            }
        }
        Ok(graph)
    }

    /// The placeholders this template binds, in [`PLACEHOLDERS`] order.
    pub fn placeholders(&self) -> Vec<&'static str> {
        PLACEHOLDERS
            .into_iter()
            .filter(|p| self.bindings.contains_key(*p))
            .collect()
    }

    /// Each node's id and class, in id order.
    pub fn nodes(&self) -> Vec<(String, String)> {
        self.graph
            .as_object()
            .map(|g| {
                sorted_ids(g)
                    .into_iter()
                    .map(|id| (id.clone(), class_of(&g[id]).to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn graph_sha256(&self) -> String {
        graph_sha256(&self.graph)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TXT2IMG: &str = include_str!("../../tests/fixtures/comfy/sdxl_lora_txt2img_api.json");
    const IMG2IMG: &str = include_str!("../../tests/fixtures/comfy/sdxl_img2img_api.json");
    const OBJECT_INFO: &str = include_str!("../../tests/fixtures/comfy/object_info.json");
    const UI_FILES: [(&str, &str); 2] = [
        (
            "image_sdxl_simple.json",
            include_str!("../../tests/fixtures/comfy/image_sdxl_simple.json"),
        ),
        (
            "sdxlturbo_example.json",
            include_str!("../../tests/fixtures/comfy/sdxlturbo_example.json"),
        ),
    ];

    fn object_info() -> Value {
        serde_json::from_str(OBJECT_INFO).unwrap()
    }

    fn values() -> Values {
        Values {
            prompt: "a lighthouse at dawn".into(),
            negative: "blurry".into(),
            seed: 42,
            width: 1216,
            height: 832,
            steps: None,
            lora: Some(("brand_v1.safetensors".into(), 0.8)),
            image: None,
        }
    }

    fn refusal(name: &str, text: &str, explicit: &[(String, String)]) -> String {
        Template::parse(name, text, explicit).unwrap_err().0
    }

    fn bind_pair(name: &str, target: &str) -> (String, String) {
        (name.to_owned(), target.to_owned())
    }

    #[test]
    fn placeholders_in_the_txt2img_fixture_bind_their_inputs() {
        let t = Template::parse("sdxl", TXT2IMG, &[]).unwrap();
        assert_eq!(
            t.placeholders(),
            vec![
                "prompt",
                "negative",
                "seed",
                "width",
                "height",
                "lora",
                "lora_strength"
            ]
        );
        let b = |n: &str, i: &str| Binding {
            node: n.into(),
            input: i.into(),
        };
        assert_eq!(t.bindings["prompt"], vec![b("6", "text")]);
        // `{{ negative }}`: whitespace inside the braces is tolerated.
        assert_eq!(t.bindings["negative"], vec![b("7", "text")]);
        assert_eq!(
            t.bindings["lora_strength"],
            vec![b("10", "strength_clip"), b("10", "strength_model")]
        );
        assert_eq!(t.nodes()[0], ("3".to_owned(), "KSampler".to_owned()));
        assert_eq!(t.nodes().last().unwrap().0, "10");
        assert_eq!(t.graph_sha256().len(), 64);
        assert_eq!(t.provider, Provider::Comfyui);
    }

    #[test]
    fn published_ui_workflows_are_refused_with_the_export_hint() {
        for (name, text) in UI_FILES {
            let err = refusal(name, text, &[]);
            assert!(
                err.contains(&format!("{name} is a ComfyUI UI workflow"))
                    && err.contains("Workflow → Export (API)"),
                "{err}"
            );
        }
    }

    #[test]
    fn malformed_graphs_are_refused_naming_the_fault() {
        let err = refusal("bad", "{\n  \"3\": {\"class_type\": \"KSampler\",\n}", &[]);
        assert!(
            err.contains("bad is not valid JSON (line 3, column 1)"),
            "{err}"
        );
        assert!(refusal("e", "{}", &[]).contains("e has no nodes"));
        assert!(refusal("arr", "[1, 2]", &[]).contains("not a ComfyUI API workflow"));
        let err = refusal("n", r#"{"1": {"inputs": {"text": "{{prompt}}"}}}"#, &[]);
        assert!(err.contains("node 1 has no class_type"), "{err}");
        let err = refusal(
            "l",
            r#"{"1": {"class_type": "VAEDecode", "inputs": {"samples": ["9", 0]}}}"#,
            &[],
        );
        assert!(
            err.contains("node 1 (VAEDecode) input samples links to node 9"),
            "{err}"
        );
        let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(MAX_TEMPLATE_BYTES));
        let err = refusal("big", &big, &[]);
        assert!(err.contains("at most 150 KiB"), "{err}");
    }

    #[test]
    fn unknown_placeholders_missing_prompt_and_no_output_are_refused() {
        let unknown = TXT2IMG.replace("{{seed}}", "{{sede}}");
        let err = refusal("t", &unknown, &[]);
        assert!(
            err.contains("unknown placeholder {{sede}}") && err.contains(&PLACEHOLDERS.join(", ")),
            "{err}"
        );
        let no_prompt = TXT2IMG.replace("{{prompt}}", "a cat");
        assert!(refusal("t", &no_prompt, &[]).contains("t binds no prompt"));
        // The same text bound by hand is enough.
        let t = Template::parse("t", &no_prompt, &[bind_pair("prompt", "6.text")]).unwrap();
        assert_eq!(t.bindings["prompt"][0].node, "6");
        let no_output = TXT2IMG.replace("\"SaveImage\"", "\"ImageInvert\"");
        let err = refusal("t", &no_output, &[]);
        assert!(
            err.contains("no output node (SaveImage or PreviewImage)"),
            "{err}"
        );
    }

    #[test]
    fn explicit_bindings_must_name_an_existing_node_and_input() {
        let t = Template::parse("t", TXT2IMG, &[bind_pair("steps", "3.steps")]).unwrap();
        assert_eq!(t.bindings["steps"][0].input, "steps");
        let err = refusal("t", TXT2IMG, &[bind_pair("steps", "99.steps")]);
        assert!(err.contains("t has no node 99"), "{err}");
        let err = refusal("t", TXT2IMG, &[bind_pair("steps", "3.stepz")]);
        assert!(
            err.contains("node 3 (KSampler) has no input `stepz`") && err.contains("cfg"),
            "{err}"
        );
        let err = refusal("t", TXT2IMG, &[bind_pair("steps", "3.model")]);
        assert!(err.contains("is a link"), "{err}");
        let err = refusal("t", TXT2IMG, &[bind_pair("colour", "3.cfg")]);
        assert!(err.contains("unknown placeholder `colour`"), "{err}");
        let err = refusal("t", TXT2IMG, &[bind_pair("steps", "3")]);
        assert!(err.contains("NODE.INPUT"), "{err}");
    }

    #[test]
    fn a_template_that_matches_the_server_has_no_problems() {
        let t = Template::parse("sdxl", TXT2IMG, &[]).unwrap();
        let loras = vec!["brand_v1.safetensors".to_owned()];
        assert_eq!(t.check_against(&object_info(), &loras), vec![]);
        let t = Template::parse("i2i", IMG2IMG, &[]).unwrap();
        assert_eq!(t.check_against(&object_info(), &[]), vec![]);
    }

    #[test]
    fn every_problem_against_the_server_is_reported() {
        let mut info = object_info();
        info.as_object_mut().unwrap().remove("VAEEncode");
        let text = IMG2IMG
            .replace("sd_xl_base_1.0.safetensors", "sd3_medium.safetensors")
            .replace("\"denoise\": 0.6", "\"denoise\": 0.6, \"noise_boost\": 2");
        let t = Template::parse("i2i", &text, &[]).unwrap();
        let loras = vec!["brand_v2.safetensors".to_owned()];
        let problems: Vec<String> = t
            .check_against_server("ComfyUI at http://gpu:8188", &info, &loras)
            .into_iter()
            .map(|p| p.0)
            .collect();
        let expect = [
            "node 1 (CheckpointLoaderSimple): ckpt_name `sd3_medium.safetensors` is not on ComfyUI at http://gpu:8188 (it has: sd_xl_base_1.0.safetensors, sd_xl_refiner_1.0.safetensors)",
            "node 3 (VAEEncode): ComfyUI at http://gpu:8188 has no such node class",
            "node 6 (KSampler): KSampler on ComfyUI at http://gpu:8188 has no input `noise_boost`",
            "LoRA brand_v2.safetensors is not on ComfyUI at http://gpu:8188 (it has: brand_v1.safetensors, film_grain.safetensors)",
        ];
        assert_eq!(problems, expect);
    }

    #[test]
    fn a_missing_required_input_and_the_newer_combo_spec_are_checked() {
        let mut info = object_info();
        info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"] =
            json!(["COMBO", {"options": ["other.safetensors"]}]);
        let text = TXT2IMG.replace("\"cfg\": 7,", "");
        let t = Template::parse("t", &text, &[]).unwrap();
        let problems: Vec<String> = t
            .check_against(&info, &[])
            .into_iter()
            .map(|p| p.0)
            .collect();
        assert!(
            problems.contains(&"node 3 (KSampler): required input `cfg` is missing".to_owned()),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("ckpt_name `sd_xl_base_1.0.safetensors` is not on the server")),
            "{problems:?}"
        );
    }

    #[test]
    fn binding_puts_typed_values_in_place() {
        let t = Template::parse("sdxl", TXT2IMG, &[]).unwrap();
        let g = t.bind(&values()).unwrap();
        assert_eq!(g["6"]["inputs"]["text"], json!("a lighthouse at dawn"));
        assert_eq!(g["7"]["inputs"]["text"], json!("blurry"));
        assert_eq!(g["3"]["inputs"]["seed"], json!(42));
        assert_eq!(g["5"]["inputs"]["width"], json!(1216));
        assert_eq!(g["5"]["inputs"]["height"], json!(832));
        assert_eq!(
            g["10"]["inputs"]["lora_name"],
            json!("brand_v1.safetensors")
        );
        assert_eq!(g["10"]["inputs"]["strength_clip"], json!(0.8));
        assert_eq!(g["3"]["inputs"]["steps"], json!(30));
        // Links and literals are untouched, and nothing placeholder-like is left.
        assert_eq!(g["3"]["inputs"]["model"], json!(["10", 0]));
        assert!(!g.to_string().contains("{{"));
        // The template itself keeps its placeholders.
        assert_eq!(t.graph["6"]["inputs"]["text"], json!("{{prompt}}"));
    }

    #[test]
    fn a_bound_placeholder_without_a_value_is_an_error_naming_it() {
        let t = Template::parse("sdxl", TXT2IMG, &[]).unwrap();
        let err = t
            .bind(&Values {
                lora: None,
                ..values()
            })
            .unwrap_err();
        assert!(err.0.contains("binds {{lora"), "{err}");
        let i2i = Template::parse("i2i", IMG2IMG, &[]).unwrap();
        let err = i2i.bind(&values()).unwrap_err();
        assert!(err.0.contains("binds {{image}}"), "{err}");
        let g = i2i
            .bind(&Values {
                image: Some("upload_7.png".into()),
                ..values()
            })
            .unwrap();
        assert_eq!(g["2"]["inputs"]["image"], json!("upload_7.png"));
        let err = t
            .bind(&Values {
                prompt: " ".into(),
                ..values()
            })
            .unwrap_err();
        assert!(err.0.contains("{{prompt}}"), "{err}");
    }

    #[test]
    fn steps_keep_the_templates_literal_only_when_bound_by_hand() {
        let by_hand = Template::parse("t", TXT2IMG, &[bind_pair("steps", "3.steps")]).unwrap();
        let g = by_hand.bind(&values()).unwrap();
        assert_eq!(g["3"]["inputs"]["steps"], json!(30));
        let g = by_hand
            .bind(&Values {
                steps: Some(12),
                ..values()
            })
            .unwrap();
        assert_eq!(g["3"]["inputs"]["steps"], json!(12));
        let placeholder = TXT2IMG.replace("\"steps\": 30", "\"steps\": \"{{steps}}\"");
        let t = Template::parse("t", &placeholder, &[]).unwrap();
        let err = t.bind(&values()).unwrap_err();
        assert!(err.0.contains("binds {{steps}}"), "{err}");
    }

    #[test]
    fn a_published_ui_workflow_converts_to_the_api_graph_with_the_servers_widget_order() {
        let (name, text) = UI_FILES[0];
        let api = ui_to_api(name, text, &object_info()).unwrap();
        let ids: Vec<&String> = api.as_object().unwrap().keys().collect();
        // The markdown note is the UI's alone.
        assert_eq!(ids, vec!["10", "11", "12", "13", "14", "15", "7"]);
        assert_eq!(
            api["12"],
            json!({
                "inputs": {
                    "seed": 812045847300606u64, "steps": 25, "cfg": 7,
                    "sampler_name": "dpmpp_2m", "scheduler": "karras", "denoise": 1,
                    "model": ["15", 0], "positive": ["10", 0], "negative": ["11", 0],
                    "latent_image": ["13", 0]
                },
                "class_type": "KSampler",
                "_meta": {"title": "KSampler"}
            })
        );
        assert_eq!(
            api["14"]["inputs"],
            json!({"samples": ["12", 0], "vae": ["15", 2]})
        );
        assert_eq!(
            api["13"]["inputs"],
            json!({"width": 1024, "height": 1024, "batch_size": 1})
        );
        // Bound by hand, the converted graph is a template that fits the server.
        let t = Template::from_ui(
            "statue",
            text,
            &[bind_pair("prompt", "10.text"), bind_pair("seed", "12.seed")],
            &object_info(),
        )
        .unwrap();
        assert_eq!(t.check_against(&object_info(), &[]), vec![]);
        assert_eq!(t.bindings["seed"][0].node, "12");
        let g = t.bind(&values()).unwrap();
        assert_eq!(g["10"]["inputs"]["text"], json!("a lighthouse at dawn"));
    }

    #[test]
    fn converting_needs_every_class_on_the_server() {
        let (name, text) = UI_FILES[1];
        let err = ui_to_api(name, text, &object_info()).unwrap_err();
        assert_eq!(
            err.0,
            "sdxlturbo_example.json: node 14 (KSamplerSelect): the server has no such node class"
        );
    }

    #[test]
    fn a_template_round_trips_through_json_with_the_same_hash() {
        let t = Template::parse("sdxl", TXT2IMG, &[bind_pair("steps", "3.steps")]).unwrap();
        let back: Template = serde_json::from_value(serde_json::to_value(&t).unwrap()).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.graph_sha256(), t.graph_sha256());
    }
}
