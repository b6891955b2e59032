//! A stand-in ComfyUI server for the generation tests: HTTP routes and the
//! `/ws` progress stream on one loopback port, from a thread with its own
//! runtime. It checks prompts against an `object_info` catalogue the way
//! ComfyUI validates them (unknown classes, missing inputs, values not in a
//! list, out-of-range numbers, mismatched links), runs a valid prompt by
//! streaming ComfyUI's message sequence to the client whose `clientId`
//! queued it, and then serves `/history` and `/view` with real PNGs whose
//! colour comes from the sampler's seed and whose size is the latent's
//! width and height divided by 8. Every request is recorded; faults can be
//! scripted for the next prompt.

// Each test crate that includes this uses part of it.
#![allow(dead_code)]

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, Method, Response, Uri};
use axum::routing::any;
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// One part of a `multipart/form-data` body.
#[derive(Debug, Clone)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

/// A request as the stand-in received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// The body as JSON (`null` when empty or not JSON).
    pub body: Value,
    pub raw: Vec<u8>,
    /// The parts of a multipart body, as parsed.
    pub parts: Vec<Part>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The decoded value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<String> {
        query_param(self.query.as_deref(), name)
    }

    pub fn part(&self, name: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.name == name)
    }
}

/// A scripted misbehaviour for the next `POST /prompt`.
#[derive(Debug, Clone)]
pub enum ComfyFault {
    /// Refuse it with 400 `prompt_outputs_failed_validation` and these
    /// `node_errors`.
    NodeErrors(Value),
    /// Run it, then fail in this node with `execution_error`.
    ExecutionError { node: String },
    /// Start it, announce the first node, then say nothing until
    /// `/interrupt`, which ends it with `execution_interrupted`.
    Stall,
    /// Start it, announce the first node, then drop the client's socket
    /// without a close frame (the run itself goes on).
    DropSocket,
    /// Also send the client a whole run of another client's prompt,
    /// including its failure and its end, in the middle of this one.
    ForeignPrompt,
}

enum Out {
    Text(String),
    Binary(Vec<u8>),
    Drop,
}

/// The running prompt, which `/interrupt` stops.
struct Running {
    prompt_id: String,
    interrupted: Arc<Notify>,
    flag: bool,
}

struct Inner {
    requests: Vec<Recorded>,
    malformed: Vec<String>,
    faults: VecDeque<ComfyFault>,
    catalogue: Map<String, Value>,
    clients: HashMap<String, mpsc::UnboundedSender<Out>>,
    history: Map<String, Value>,
    /// (type, subfolder, filename) -> bytes.
    files: HashMap<(String, String, String), Vec<u8>>,
    graphs: Vec<Value>,
    interrupts: Vec<Value>,
    running: Option<Running>,
    queued: u64,
    number: u64,
    saved: u64,
    /// Nodes (class and inputs) already executed, which later prompts reuse.
    cache: BTreeSet<String>,
    /// Output nodes' UI output by signature: a cached SaveImage still lists
    /// its images in `/history`, as ComfyUI's UI cache does.
    ui_cache: HashMap<String, Value>,
    binary_frames: usize,
}

type Shared = Arc<Mutex<Inner>>;

/// Runs one prompt at a time, like ComfyUI's queue.
type Queue = Arc<tokio::sync::Mutex<()>>;

/// The stand-in; it lives until the test process ends.
pub struct FakeComfy {
    url: String,
    inner: Shared,
}

impl FakeComfy {
    pub fn start() -> FakeComfy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let inner = Arc::new(Mutex::new(Inner {
            requests: Vec::new(),
            malformed: Vec::new(),
            faults: VecDeque::new(),
            catalogue: catalogue(),
            clients: HashMap::new(),
            history: Map::new(),
            files: HashMap::new(),
            graphs: Vec::new(),
            interrupts: Vec::new(),
            running: None,
            queued: 0,
            number: 0,
            saved: 0,
            cache: BTreeSet::new(),
            ui_cache: HashMap::new(),
            binary_frames: 0,
        }));
        let state = (inner.clone(), Queue::default());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = Router::new()
                    .route("/ws", any(socket_route))
                    .fallback(http_route)
                    .with_state(state);
                axum::serve(listener, app).await.unwrap();
            });
        });
        FakeComfy { url, inner }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// Requests to `path` (without the query).
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Why requests were not what ComfyUI's own clients send.
    pub fn malformed(&self) -> Vec<String> {
        self.inner.lock().unwrap().malformed.clone()
    }

    pub fn fail_next(&self, fault: ComfyFault) {
        self.inner.lock().unwrap().faults.push_back(fault);
    }

    /// The `prompt` graphs `/prompt` received, valid or not.
    pub fn graphs(&self) -> Vec<Value> {
        self.inner.lock().unwrap().graphs.clone()
    }

    /// The bodies of the `/interrupt` calls (`null` when empty).
    pub fn interrupts(&self) -> Vec<Value> {
        self.inner.lock().unwrap().interrupts.clone()
    }

    /// Binary preview frames sent so far.
    pub fn binary_frames(&self) -> usize {
        self.inner.lock().unwrap().binary_frames
    }

    /// The client ids with a progress socket open.
    pub fn clients(&self) -> Vec<String> {
        self.inner.lock().unwrap().clients.keys().cloned().collect()
    }

    /// A stored file: `kind` is `input`, `output` or `temp`.
    pub fn file(&self, kind: &str, subfolder: &str, filename: &str) -> Option<Vec<u8>> {
        let key = (kind.to_owned(), subfolder.to_owned(), filename.to_owned());
        self.inner.lock().unwrap().files.get(&key).cloned()
    }

    /// Adds or replaces a node class in `object_info`.
    pub fn add_node_class(&self, name: &str, info: Value) {
        self.inner
            .lock()
            .unwrap()
            .catalogue
            .insert(name.to_owned(), info);
    }

    /// Adds a choice to a list input, e.g. a checkpoint or a LoRA.
    pub fn add_choice(&self, class: &str, input: &str, choice: &str) {
        let mut inner = self.inner.lock().unwrap();
        add_choice(&mut inner.catalogue, class, input, choice);
    }

    /// Sends a raw text message to a connected client, as if from the server.
    pub fn push_text(&self, client_id: &str, text: &str) {
        let inner = self.inner.lock().unwrap();
        if let Some(client) = inner.clients.get(client_id) {
            let _ = client.send(Out::Text(text.to_owned()));
        }
    }
}

/// ComfyUI's default text-to-image workflow in API format (the same node
/// ids: `4` checkpoint, `5` latent, `6`/`7` prompts, `3` sampler, `8`
/// decode, `9` save) with the brand LoRA as node `10`.
pub fn txt2img(seed: u64, width: u32, height: u32, steps: u32) -> Value {
    json!({
        "3": {"class_type": "KSampler", "inputs": {
            "seed": seed, "steps": steps, "cfg": 7.0, "sampler_name": "euler",
            "scheduler": "normal", "denoise": 1.0,
            "model": ["10", 0], "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple",
              "inputs": {"ckpt_name": "sdxl.safetensors"}},
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"width": width, "height": height, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode",
              "inputs": {"text": "a lighthouse at dawn, brand colours", "clip": ["10", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["10", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage",
              "inputs": {"filename_prefix": "spoke", "images": ["8", 0]}},
        "10": {"class_type": "LoraLoader", "inputs": {
            "lora_name": "brand_v1.safetensors", "strength_model": 0.8, "strength_clip": 0.8,
            "model": ["4", 0], "clip": ["4", 1]}}
    })
}

/// The colour of every pixel the stand-in renders for `seed`.
pub fn colour_for_seed(seed: u64) -> [u8; 3] {
    // splitmix64, so neighbouring seeds look different.
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let [r, g, b, ..] = z.to_le_bytes();
    [r, g, b]
}

/// A real PNG of one colour.
pub fn png(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(width.max(1), height.max(1), image::Rgb(rgb));
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

// ---- object_info ----

fn float(default: f64, min: f64, max: f64, step: f64) -> Value {
    json!(["FLOAT", {"default": default, "min": min, "max": max, "step": step}])
}

fn node_class(
    name: &str,
    display: &str,
    category: &str,
    inputs: Vec<(&str, Value)>,
    outputs: &[&str],
    output_node: bool,
) -> Value {
    let order: Vec<&str> = inputs.iter().map(|(n, _)| *n).collect();
    let required: Map<String, Value> = inputs
        .into_iter()
        .map(|(n, spec)| (n.to_owned(), spec))
        .collect();
    json!({
        "input": {"required": required},
        "input_order": {"required": order},
        "output": outputs,
        "output_is_list": outputs.iter().map(|_| false).collect::<Vec<_>>(),
        "output_name": outputs,
        "name": name,
        "display_name": display,
        "description": "",
        "python_module": "nodes",
        "category": category,
        "output_node": output_node,
    })
}

/// The classes a stock ComfyUI has for text-to-image and image-to-image,
/// with their real input specs.
fn catalogue() -> Map<String, Value> {
    let samplers = json!([[
        "euler",
        "euler_ancestral",
        "heun",
        "dpm_2",
        "dpmpp_2m",
        "dpmpp_sde",
        "ddim",
        "uni_pc"
    ]]);
    let schedulers = json!([[
        "normal",
        "karras",
        "exponential",
        "sgm_uniform",
        "simple",
        "ddim_uniform",
        "beta"
    ]]);
    let size = json!(["INT", {"default": 512, "min": 16, "max": 16384, "step": 8}]);
    let classes = [
        node_class(
            "CheckpointLoaderSimple",
            "Load Checkpoint",
            "loaders",
            vec![(
                "ckpt_name",
                json!([["sdxl.safetensors"], {"tooltip": "The name of the checkpoint (model) to load."}]),
            )],
            &["MODEL", "CLIP", "VAE"],
            false,
        ),
        node_class(
            "LoraLoader",
            "Load LoRA",
            "loaders",
            vec![
                ("model", json!(["MODEL"])),
                ("clip", json!(["CLIP"])),
                ("lora_name", json!([["brand_v1.safetensors"]])),
                ("strength_model", float(1.0, -100.0, 100.0, 0.01)),
                ("strength_clip", float(1.0, -100.0, 100.0, 0.01)),
            ],
            &["MODEL", "CLIP"],
            false,
        ),
        node_class(
            "CLIPTextEncode",
            "CLIP Text Encode (Prompt)",
            "conditioning",
            vec![
                (
                    "text",
                    json!(["STRING", {"multiline": true, "dynamicPrompts": true}]),
                ),
                ("clip", json!(["CLIP"])),
            ],
            &["CONDITIONING"],
            false,
        ),
        node_class(
            "EmptyLatentImage",
            "Empty Latent Image",
            "latent",
            vec![
                ("width", size.clone()),
                ("height", size),
                (
                    "batch_size",
                    json!(["INT", {"default": 1, "min": 1, "max": 4096}]),
                ),
            ],
            &["LATENT"],
            false,
        ),
        node_class(
            "KSampler",
            "KSampler",
            "sampling",
            vec![
                ("model", json!(["MODEL"])),
                (
                    "seed",
                    json!(["INT", {"default": 0, "min": 0, "max": u64::MAX, "control_after_generate": true}]),
                ),
                (
                    "steps",
                    json!(["INT", {"default": 20, "min": 1, "max": 10000}]),
                ),
                (
                    "cfg",
                    json!(["FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}]),
                ),
                ("sampler_name", samplers),
                ("scheduler", schedulers),
                ("positive", json!(["CONDITIONING"])),
                ("negative", json!(["CONDITIONING"])),
                ("latent_image", json!(["LATENT"])),
                ("denoise", float(1.0, 0.0, 1.0, 0.01)),
            ],
            &["LATENT"],
            false,
        ),
        node_class(
            "VAEDecode",
            "VAE Decode",
            "latent",
            vec![("samples", json!(["LATENT"])), ("vae", json!(["VAE"]))],
            &["IMAGE"],
            false,
        ),
        node_class(
            "VAEEncode",
            "VAE Encode",
            "latent",
            vec![("pixels", json!(["IMAGE"])), ("vae", json!(["VAE"]))],
            &["LATENT"],
            false,
        ),
        node_class(
            "SaveImage",
            "Save Image",
            "image",
            vec![
                ("images", json!(["IMAGE"])),
                ("filename_prefix", json!(["STRING", {"default": "ComfyUI"}])),
            ],
            &[],
            true,
        ),
        node_class(
            "LoadImage",
            "Load Image",
            "image",
            vec![("image", json!([[], {"image_upload": true}]))],
            &["IMAGE", "MASK"],
            false,
        ),
    ];
    classes
        .into_iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c))
        .collect()
}

fn add_choice(catalogue: &mut Map<String, Value>, class: &str, input: &str, choice: &str) {
    let list = catalogue
        .get_mut(class)
        .and_then(|c| c.pointer_mut(&format!("/input/required/{input}/0")))
        .and_then(Value::as_array_mut);
    if let Some(list) = list
        && !list.iter().any(|v| v == choice)
    {
        list.push(json!(choice));
    }
}

// ---- validation, as ComfyUI's validate_prompt does it ----

fn error_body(kind: &str, message: &str, details: &str, node_errors: Value) -> Value {
    json!({
        "error": {"type": kind, "message": message, "details": details, "extra_info": {}},
        "node_errors": node_errors,
    })
}

/// Python's repr of a list of choices, as ComfyUI prints it.
fn python_list(list: &[Value]) -> String {
    let items: Vec<String> = list.iter().map(python_repr).collect();
    format!("[{}]", items.join(", "))
}

fn python_repr(value: &Value) -> String {
    match value {
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    }
}

fn is_link(value: &Value) -> bool {
    value
        .as_array()
        .is_some_and(|a| a.len() == 2 && a[0].is_string() && a[1].is_u64())
}

struct Check<'a> {
    graph: &'a Map<String, Value>,
    catalogue: &'a Map<String, Value>,
    valid: HashMap<String, bool>,
    errors: Map<String, Value>,
}

impl Check<'_> {
    fn class_of(&self, id: &str) -> &str {
        self.graph[id]["class_type"].as_str().unwrap_or("")
    }

    /// Checks a node and, through its links, what it depends on.
    fn node(&mut self, id: &str) -> bool {
        if let Some(valid) = self.valid.get(id) {
            return *valid;
        }
        // A cycle ends here as valid; the rest of the check still runs.
        self.valid.insert(id.to_owned(), true);
        let class = self.class_of(id).to_owned();
        let info = self.catalogue[&class].clone();
        let inputs = self.graph[id]
            .get("inputs")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let names: Vec<String> = match info.pointer("/input_order/required") {
            Some(Value::Array(order)) => order
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => info
                .pointer("/input/required")
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
        };
        let mut valid = true;
        let mut errors = Vec::new();
        for name in names {
            let config = info["input"]["required"][&name].clone();
            let kind = config[0].clone();
            let options = config.get(1).cloned().unwrap_or_else(|| json!({}));
            let extra = |more: Value| {
                let mut e = json!({"input_name": name, "input_config": config});
                if let (Some(e), Some(more)) = (e.as_object_mut(), more.as_object()) {
                    e.extend(more.clone());
                }
                e
            };
            let Some(value) = inputs.get(&name) else {
                errors.push(json!({"type": "required_input_missing",
                    "message": "Required input is missing", "details": name,
                    "extra_info": {"input_name": name}}));
                continue;
            };
            if is_link(value) {
                let source = value[0].as_str().unwrap_or("").to_owned();
                let slot = value[1].as_u64().unwrap_or(0) as usize;
                if !self.graph.contains_key(&source) {
                    errors.push(json!({"type": "bad_linked_input",
                        "message": "Bad linked input, the linked node does not exist",
                        "details": format!("{name}, {value}"), "extra_info": extra(json!({}))}));
                    continue;
                }
                let source_class = self.class_of(&source).to_owned();
                let received = self.catalogue[&source_class]["output"]
                    .get(slot)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                if let Some(expected) = kind.as_str()
                    && expected != "*"
                    && received != expected
                {
                    errors.push(json!({"type": "return_type_mismatch",
                        "message": "Return type mismatch between linked nodes",
                        "details": format!("{name}, received_type({received}) mismatch input_type({expected})"),
                        "extra_info": extra(json!({"received_type": received, "linked_node": value}))}));
                    continue;
                }
                if !self.node(&source) {
                    valid = false;
                }
                continue;
            }
            match &kind {
                Value::Array(choices) => {
                    if !choices.contains(value) {
                        errors.push(json!({"type": "value_not_in_list",
                            "message": "Value not in list",
                            "details": format!("{name}: {} not in {}", python_repr(value), python_list(choices)),
                            "extra_info": extra(json!({"received_value": value}))}));
                    }
                }
                Value::String(t) if t == "INT" || t == "FLOAT" => {
                    let number = match value {
                        Value::Number(n) if t == "FLOAT" || n.is_i64() || n.is_u64() => n.as_f64(),
                        Value::String(s) => s.trim().parse::<f64>().ok(),
                        _ => None,
                    };
                    let Some(number) = number else {
                        errors.push(json!({"type": "invalid_input_type",
                            "message": format!("Failed to convert an input value to a {t} value"),
                            "details": format!("{name}, {value}"),
                            "extra_info": extra(json!({"received_value": value}))}));
                        continue;
                    };
                    if let Some(min) = options.get("min").and_then(Value::as_f64)
                        && number < min
                    {
                        errors.push(json!({"type": "value_smaller_than_min",
                            "message": format!("Value {value} smaller than min of {}", options["min"]),
                            "details": name, "extra_info": extra(json!({"received_value": value}))}));
                    }
                    if let Some(max) = options.get("max").and_then(Value::as_f64)
                        && number > max
                    {
                        errors.push(json!({"type": "value_bigger_than_max",
                            "message": format!("Value {value} bigger than max of {}", options["max"]),
                            "details": name, "extra_info": extra(json!({"received_value": value}))}));
                    }
                }
                Value::String(t) if t == "STRING" || t == "BOOLEAN" => {
                    let fits = if t == "STRING" {
                        value.is_string() || value.is_number()
                    } else {
                        value.is_boolean()
                    };
                    if !fits {
                        errors.push(json!({"type": "invalid_input_type",
                            "message": format!("Failed to convert an input value to a {t} value"),
                            "details": format!("{name}, {value}"),
                            "extra_info": extra(json!({"received_value": value}))}));
                    }
                }
                // A model, latent, image... can only come through a link.
                _ => errors.push(json!({"type": "invalid_input_type",
                    "message": format!("{name} needs a link to a node's {kind} output"),
                    "details": format!("{name}, {value}"),
                    "extra_info": extra(json!({"received_value": value}))})),
            }
        }
        if !errors.is_empty() {
            valid = false;
            self.errors.insert(
                id.to_owned(),
                json!({"errors": errors, "dependent_outputs": [], "class_type": class}),
            );
        }
        self.valid.insert(id.to_owned(), valid);
        valid
    }

    /// The node and every node it links to.
    fn reach(&self, id: &str, seen: &mut BTreeSet<String>) {
        if !seen.insert(id.to_owned()) {
            return;
        }
        if let Some(inputs) = self.graph[id].get("inputs").and_then(Value::as_object) {
            for value in inputs.values() {
                if is_link(value)
                    && let Some(source) = value[0].as_str()
                    && self.graph.contains_key(source)
                {
                    self.reach(source, seen);
                }
            }
        }
    }
}

/// The output nodes that can run and the node errors, or the 400 body.
fn validate(
    graph: &Value,
    catalogue: &Map<String, Value>,
) -> Result<(Vec<String>, Map<String, Value>), Value> {
    let Some(graph) = graph.as_object() else {
        return Err(error_body(
            "invalid_prompt",
            "Cannot execute because the prompt is not an object of nodes.",
            "",
            json!([]),
        ));
    };
    let mut outputs = Vec::new();
    for (id, node) in graph {
        let Some(class) = node.get("class_type").and_then(Value::as_str) else {
            return Err(error_body(
                "invalid_prompt",
                "Cannot execute because a node is missing the class_type property.",
                &format!("Node ID '#{id}'"),
                json!([]),
            ));
        };
        let Some(info) = catalogue.get(class) else {
            return Err(error_body(
                "invalid_prompt",
                &format!("Cannot execute because node {class} does not exist."),
                &format!("Node ID '#{id}'"),
                json!([]),
            ));
        };
        if info["output_node"] == true {
            outputs.push(id.clone());
        }
    }
    if outputs.is_empty() {
        return Err(error_body(
            "prompt_no_outputs",
            "Prompt has no outputs",
            "",
            json!([]),
        ));
    }
    outputs.sort_by_key(|id| (id.parse::<u64>().unwrap_or(u64::MAX), id.clone()));
    let mut check = Check {
        graph,
        catalogue,
        valid: HashMap::new(),
        errors: Map::new(),
    };
    let mut good = Vec::new();
    for output in &outputs {
        if check.node(output) {
            good.push(output.clone());
        }
    }
    for output in &outputs {
        let mut reached = BTreeSet::new();
        check.reach(output, &mut reached);
        for node in reached {
            if let Some(list) = check
                .errors
                .get_mut(&node)
                .and_then(|e| e["dependent_outputs"].as_array_mut())
            {
                list.push(json!(output));
            }
        }
    }
    if good.is_empty() {
        return Err(error_body(
            "prompt_outputs_failed_validation",
            "Prompt outputs failed validation",
            "",
            Value::Object(check.errors),
        ));
    }
    Ok((good, check.errors))
}

/// The nodes the outputs need, dependencies first (ties by node id).
fn execution_order(graph: &Map<String, Value>, outputs: &[String]) -> Vec<String> {
    fn visit(
        graph: &Map<String, Value>,
        id: &str,
        visited: &mut BTreeSet<String>,
        order: &mut Vec<String>,
    ) {
        if !visited.insert(id.to_owned()) {
            return;
        }
        let mut sources: Vec<String> = graph[id]
            .get("inputs")
            .and_then(Value::as_object)
            .map(|inputs| {
                inputs
                    .values()
                    .filter(|v| is_link(v))
                    .filter_map(|v| v[0].as_str().map(str::to_owned))
                    .filter(|source| graph.contains_key(source))
                    .collect()
            })
            .unwrap_or_default();
        sources.sort_by_key(|id| (id.parse::<u64>().unwrap_or(u64::MAX), id.clone()));
        for source in sources {
            visit(graph, &source, visited, order);
        }
        order.push(id.to_owned());
    }
    let mut visited = BTreeSet::new();
    let mut order = Vec::new();
    for output in outputs {
        visit(graph, output, &mut visited, &mut order);
    }
    order
}

// ---- HTTP ----

async fn http_route(
    State((inner, queue)): State<(Shared, Queue)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let mut request = Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: body.to_vec(),
        parts: Vec::new(),
    };
    let content_type = request.header("content-type").unwrap_or_default();
    let multipart = if content_type.starts_with("multipart/form-data") {
        Some(parse_multipart(&content_type, &request.raw))
    } else {
        None
    };
    if let Some(Ok(parts)) = &multipart {
        request.parts = parts.clone();
    }
    let mut inner_guard = inner.lock().unwrap();
    inner_guard.requests.push(request.clone());
    let path = request.path.as_str();
    let reply = match (method.as_str(), path) {
        ("GET", "/object_info") => json_reply(200, Value::Object(inner_guard.catalogue.clone())),
        ("GET", p) if p.starts_with("/object_info/") => {
            let class = &p["/object_info/".len()..];
            match inner_guard.catalogue.get(class) {
                Some(info) => json_reply(200, json!({ class: info })),
                None => json_reply(200, json!({})),
            }
        }
        ("GET", "/prompt") => json_reply(
            200,
            json!({"exec_info": {"queue_remaining": inner_guard.queued}}),
        ),
        ("POST", "/prompt") => {
            let (reply, run) = post_prompt(&mut inner_guard, &request);
            if let Some(run) = run {
                tokio::spawn(execute(inner.clone(), queue, run));
            }
            reply
        }
        ("GET", "/history") => json_reply(200, Value::Object(inner_guard.history.clone())),
        ("GET", p) if p.starts_with("/history/") => {
            let id = &p["/history/".len()..];
            match inner_guard.history.get(id) {
                Some(entry) => json_reply(200, json!({ id: entry })),
                None => json_reply(200, json!({})),
            }
        }
        ("GET", "/view") => view(&inner_guard, &request),
        ("POST", "/upload/image") => upload(&mut inner_guard, &request, multipart),
        ("POST", "/interrupt") => {
            inner_guard.interrupts.push(request.body.clone());
            let wanted = request.body.get("prompt_id").and_then(Value::as_str);
            if let Some(running) = &mut inner_guard.running
                && wanted.is_none_or(|w| w == running.prompt_id)
            {
                running.flag = true;
                running.interrupted.notify_one();
            }
            text_reply(200, "")
        }
        (_, "/prompt" | "/object_info" | "/view" | "/upload/image" | "/interrupt") => {
            text_reply(405, "405: Method Not Allowed")
        }
        _ => text_reply(404, "404: Not Found"),
    };
    drop(inner_guard);
    reply
}

fn json_reply(status: u16, body: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn text_reply(status: u16, body: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// What a valid prompt needs to run.
struct Run {
    prompt_id: String,
    number: u64,
    client_id: String,
    graph: Value,
    outputs: Vec<String>,
    fault: Option<ComfyFault>,
}

fn post_prompt(inner: &mut Inner, request: &Recorded) -> (Response<Body>, Option<Run>) {
    let body = &request.body;
    if !body.is_object() {
        inner
            .malformed
            .push("/prompt: the body is not a JSON object".into());
        let refused = error_body("invalid_prompt", "The body is not JSON", "", json!([]));
        return (json_reply(400, refused), None);
    }
    let Some(graph) = body.get("prompt") else {
        inner.malformed.push("/prompt: no \"prompt\"".into());
        let refused = error_body(
            "no_prompt",
            "No prompt provided",
            "No prompt provided",
            json!([]),
        );
        return (json_reply(400, refused), None);
    };
    inner.graphs.push(graph.clone());
    let Some(client_id) = body.get("client_id").and_then(Value::as_str) else {
        inner
            .malformed
            .push("/prompt: no \"client_id\", so progress reaches no one".into());
        let refused = error_body("invalid_prompt", "client_id is required", "", json!([]));
        return (json_reply(400, refused), None);
    };
    let fault = inner.faults.pop_front();
    if let Some(ComfyFault::NodeErrors(node_errors)) = fault {
        let refused = error_body(
            "prompt_outputs_failed_validation",
            "Prompt outputs failed validation",
            "",
            node_errors,
        );
        return (json_reply(400, refused), None);
    }
    let (outputs, node_errors) = match validate(graph, &inner.catalogue) {
        Ok(valid) => valid,
        Err(refused) => return (json_reply(400, refused), None),
    };
    let prompt_id = body
        .get("prompt_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(uuid);
    inner.number += 1;
    inner.queued += 1;
    let number = inner.number;
    let run = Run {
        prompt_id: prompt_id.clone(),
        number,
        client_id: client_id.to_owned(),
        graph: graph.clone(),
        outputs,
        fault,
    };
    let answer = json!({"prompt_id": prompt_id, "number": number, "node_errors": node_errors});
    (json_reply(200, answer), Some(run))
}

fn view(inner: &Inner, request: &Recorded) -> Response<Body> {
    let Some(filename) = request.param("filename") else {
        return text_reply(400, "400: Bad Request");
    };
    let subfolder = request.param("subfolder").unwrap_or_default();
    let kind = request.param("type").unwrap_or_else(|| "output".into());
    let key = (kind, subfolder, filename.clone());
    match inner.files.get(&key) {
        Some(bytes) => Response::builder()
            .status(200)
            .header("content-type", "image/png")
            .header("content-disposition", format!("filename=\"{filename}\""))
            .body(Body::from(bytes.clone()))
            .unwrap(),
        None => text_reply(404, "404: Not Found"),
    }
}

fn upload(
    inner: &mut Inner,
    request: &Recorded,
    multipart: Option<Result<Vec<Part>, String>>,
) -> Response<Body> {
    let parts = match multipart {
        Some(Ok(parts)) => parts,
        Some(Err(e)) => {
            inner.malformed.push(format!("/upload/image: {e}"));
            return text_reply(400, "");
        }
        None => {
            inner.malformed.push(format!(
                "/upload/image: content type {:?} is not multipart/form-data",
                request.header("content-type")
            ));
            return text_reply(400, "");
        }
    };
    let field = |name: &str| {
        parts
            .iter()
            .find(|p| p.name == name)
            .map(|p| String::from_utf8_lossy(&p.data).into_owned())
    };
    let Some(image) = parts.iter().find(|p| p.name == "image") else {
        inner
            .malformed
            .push("/upload/image: no \"image\" part".into());
        return text_reply(400, "");
    };
    let Some(filename) = image.filename.clone().filter(|f| !f.is_empty()) else {
        inner
            .malformed
            .push("/upload/image: the image part has no filename".into());
        return text_reply(400, "");
    };
    let kind = field("type").unwrap_or_else(|| "input".into());
    if !matches!(kind.as_str(), "input" | "temp" | "output") {
        inner
            .malformed
            .push(format!("/upload/image: type {kind:?}"));
        return text_reply(400, "");
    }
    let subfolder = field("subfolder").unwrap_or_default();
    let overwrite = matches!(field("overwrite").as_deref(), Some("true" | "1"));
    let mut name = filename.clone();
    if !overwrite {
        let (stem, ext) = match filename.rsplit_once('.') {
            Some((s, e)) => (s.to_owned(), format!(".{e}")),
            None => (filename.clone(), String::new()),
        };
        let mut n = 1;
        while inner
            .files
            .contains_key(&(kind.clone(), subfolder.clone(), name.clone()))
        {
            name = format!("{stem} ({n}){ext}");
            n += 1;
        }
    }
    inner.files.insert(
        (kind.clone(), subfolder.clone(), name.clone()),
        image.data.clone(),
    );
    if kind == "input" {
        let listed = if subfolder.is_empty() {
            name.clone()
        } else {
            format!("{subfolder}/{name}")
        };
        add_choice(&mut inner.catalogue, "LoadImage", "image", &listed);
    }
    json_reply(
        200,
        json!({"name": name, "subfolder": subfolder, "type": kind}),
    )
}

/// Splits a `multipart/form-data` body, strictly: CRLFs, the boundary, a
/// `Content-Disposition: form-data; name=...` per part and the closing
/// delimiter.
fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Vec<Part>, String> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_owned())
        .ok_or("no boundary in the content type")?;
    let delimiter = format!("--{boundary}").into_bytes();
    let next_delimiter = format!("\r\n--{boundary}").into_bytes();
    if !body.starts_with(&delimiter) {
        return Err("the body does not start with the boundary".into());
    }
    let mut pos = delimiter.len();
    let mut parts = Vec::new();
    loop {
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            if !matches!(&rest[2..], b"" | b"\r\n") {
                return Err("bytes after the closing boundary".into());
            }
            return Ok(parts);
        }
        let rest = rest
            .strip_prefix(b"\r\n")
            .ok_or("no CRLF after a boundary")?;
        let head_end =
            find(rest, b"\r\n\r\n").ok_or("a part has no blank line after its headers")?;
        let head =
            std::str::from_utf8(&rest[..head_end]).map_err(|_| "part headers are not UTF-8")?;
        let data_start = head_end + 4;
        let data_len = find(&rest[data_start..], &next_delimiter)
            .ok_or("a part is not closed by the boundary")?;
        let mut part = Part {
            name: String::new(),
            filename: None,
            content_type: None,
            data: rest[data_start..data_start + data_len].to_vec(),
        };
        let mut disposition = false;
        for line in head.split("\r\n") {
            let (key, value) = line.split_once(':').ok_or("a part header has no colon")?;
            match key.trim().to_ascii_lowercase().as_str() {
                "content-disposition" => {
                    let params = header_params(value);
                    if params.first().map(|(k, _)| k.as_str()) != Some("form-data") {
                        return Err(format!("disposition {value:?} is not form-data"));
                    }
                    disposition = true;
                    for (k, v) in params {
                        match k.as_str() {
                            "name" => part.name = v,
                            "filename" => part.filename = Some(v),
                            _ => {}
                        }
                    }
                }
                "content-type" => part.content_type = Some(value.trim().to_owned()),
                _ => {}
            }
        }
        if !disposition || part.name.is_empty() {
            return Err("a part has no Content-Disposition name".into());
        }
        parts.push(part);
        pos += 2 + data_start + data_len + next_delimiter.len();
    }
}

/// `form-data; name="a"; filename="b;c"` as (key, value) pairs; the first
/// is the disposition with an empty value.
fn header_params(value: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut pieces = Vec::new();
    for c in value.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ';' if !quoted => pieces.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    pieces.push(current);
    for piece in pieces {
        let piece = piece.trim();
        match piece.split_once('=') {
            Some((k, v)) => out.push((k.trim().to_owned(), v.trim().trim_matches('"').to_owned())),
            None => out.push((piece.to_owned(), String::new())),
        }
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let url = reqwest::Url::parse(&format!("http://x/?{}", query.unwrap_or(""))).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn uuid() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).unwrap();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

// ---- the progress stream ----

async fn socket_route(
    State((inner, _)): State<(Shared, Queue)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response<Body> {
    let request = Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers,
        body: Value::Null,
        raw: Vec::new(),
        parts: Vec::new(),
    };
    let client_id = request.param("clientId").unwrap_or_else(uuid);
    inner.lock().unwrap().requests.push(request);
    upgrade.on_upgrade(move |socket| serve_socket(inner, client_id, socket))
}

async fn serve_socket(inner: Shared, client_id: String, mut socket: WebSocket) {
    let (sender, mut outgoing) = mpsc::unbounded_channel();
    let queued = {
        let mut inner = inner.lock().unwrap();
        inner.clients.insert(client_id.clone(), sender.clone());
        inner.queued
    };
    let hello = json!({"type": "status", "data": {
        "status": {"exec_info": {"queue_remaining": queued}}, "sid": client_id}});
    if socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            out = outgoing.recv() => match out {
                Some(Out::Text(text)) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Some(Out::Binary(bytes)) => {
                    if socket.send(Message::Binary(bytes.into())).await.is_err() {
                        break;
                    }
                }
                // Dropped without a close frame, like a crash.
                Some(Out::Drop) | None => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let mut inner = inner.lock().unwrap();
    if inner
        .clients
        .get(&client_id)
        .is_some_and(|s| s.same_channel(&sender))
    {
        inner.clients.remove(&client_id);
    }
}

fn send_to(inner: &Shared, client_id: &str, kind: &str, data: Value) {
    let text = json!({"type": kind, "data": data}).to_string();
    if let Some(client) = inner.lock().unwrap().clients.get(client_id) {
        let _ = client.send(Out::Text(text));
    }
}

fn broadcast_status(inner: &Shared) {
    let inner = inner.lock().unwrap();
    for (id, client) in &inner.clients {
        let status = json!({"type": "status", "data": {
            "status": {"exec_info": {"queue_remaining": inner.queued}}, "sid": id}});
        let _ = client.send(Out::Text(status.to_string()));
    }
}

/// A node's identity for the cache: its class and inputs.
fn signature(node: &Value) -> String {
    node.to_string()
}

/// Runs a prompt the way ComfyUI reports one.
async fn execute(inner: Shared, queue: Queue, run: Run) {
    let _turn = queue.lock().await;
    let Run {
        prompt_id,
        number,
        client_id,
        graph,
        outputs,
        fault,
    } = run;
    let interrupted = Arc::new(Notify::new());
    inner.lock().unwrap().running = Some(Running {
        prompt_id: prompt_id.clone(),
        interrupted: interrupted.clone(),
        flag: false,
    });
    let nodes = graph.as_object().cloned().unwrap_or_default();
    let order = execution_order(&nodes, &outputs);
    let pause = || tokio::time::sleep(Duration::from_millis(2));
    let send = |kind: &str, data: Value| send_to(&inner, &client_id, kind, data);
    let is_interrupted = || {
        inner
            .lock()
            .unwrap()
            .running
            .as_ref()
            .is_some_and(|r| r.flag)
    };
    let mut messages = Vec::new();
    let mut note = |kind: &str, data: Value| messages.push(json!([kind, data]));

    broadcast_status(&inner);
    let start = json!({"prompt_id": prompt_id, "timestamp": now_ms()});
    send("execution_start", start.clone());
    note("execution_start", start);
    pause().await;

    if matches!(fault, Some(ComfyFault::ForeignPrompt)) {
        let other = uuid();
        send(
            "execution_start",
            json!({"prompt_id": other, "timestamp": now_ms()}),
        );
        send(
            "execution_cached",
            json!({"nodes": ["4"], "prompt_id": other, "timestamp": now_ms()}),
        );
        send(
            "executing",
            json!({"node": "3", "display_node": "3", "prompt_id": other}),
        );
        send(
            "progress",
            json!({"value": 1, "max": 9, "prompt_id": other, "node": "3"}),
        );
        send(
            "executed",
            json!({"node": "9", "display_node": "9", "prompt_id": other,
            "output": {"images": [{"filename": "other_00001_.png", "subfolder": "", "type": "output"}]}}),
        );
        send(
            "execution_error",
            json!({"prompt_id": other, "node_id": "3", "node_type": "KSampler",
            "executed": [], "exception_message": "someone else's failure",
            "exception_type": "RuntimeError", "traceback": [], "current_inputs": {}, "current_outputs": {}}),
        );
        send("executing", json!({"node": null, "prompt_id": other}));
        pause().await;
    }

    // Cached: seen before, with everything it links to cached too.
    let mut cached: Vec<String> = Vec::new();
    {
        let guard = inner.lock().unwrap();
        let cache = &guard.cache;
        for id in &order {
            let sources_cached = nodes[id]
                .get("inputs")
                .and_then(Value::as_object)
                .is_none_or(|inputs| {
                    inputs
                        .values()
                        .filter(|v| is_link(v))
                        .all(|v| cached.iter().any(|c| Some(c.as_str()) == v[0].as_str()))
                });
            if sources_cached && cache.contains(&signature(&nodes[id])) {
                cached.push(id.clone());
            }
        }
    }
    let cached_data = json!({"nodes": cached, "prompt_id": prompt_id, "timestamp": now_ms()});
    send("execution_cached", cached_data.clone());
    note("execution_cached", cached_data);
    pause().await;

    let mut executed: Vec<String> = cached.clone();
    let mut history_outputs = Map::new();
    for id in &cached {
        if let Some(out) = inner.lock().unwrap().ui_cache.get(&signature(&nodes[id])) {
            history_outputs.insert(id.clone(), out.clone());
        }
    }
    let mut first = true;
    let mut failure: Option<(&str, Value)> = None;
    for id in order.iter().filter(|id| !cached.contains(id)) {
        let class = nodes[id]["class_type"].as_str().unwrap_or("").to_owned();
        if is_interrupted() {
            failure = Some((
                "execution_interrupted",
                interrupted_data(&prompt_id, id, &class, &executed),
            ));
            break;
        }
        send(
            "executing",
            json!({"node": id, "display_node": id, "prompt_id": prompt_id}),
        );
        pause().await;
        if first {
            first = false;
            match &fault {
                Some(ComfyFault::Stall) => {
                    // Quiet until interrupted, as a hung node is.
                    let _ =
                        tokio::time::timeout(Duration::from_secs(60), interrupted.notified()).await;
                    failure = Some((
                        "execution_interrupted",
                        interrupted_data(&prompt_id, id, &class, &executed),
                    ));
                    break;
                }
                Some(ComfyFault::DropSocket) => {
                    if let Some(client) = inner.lock().unwrap().clients.get(&client_id) {
                        let _ = client.send(Out::Drop);
                    }
                }
                _ => {}
            }
        }
        if let Some(ComfyFault::ExecutionError { node }) = &fault
            && node == id
        {
            failure = Some((
                "execution_error",
                json!({"prompt_id": prompt_id, "node_id": id, "node_type": class,
                    "executed": executed, "exception_message": "Allocation on device would exceed allowed memory. (out of memory)\n",
                    "exception_type": "torch.OutOfMemoryError",
                    "traceback": ["  File \"execution.py\", line 496, in execute\n"],
                    "current_inputs": {}, "current_outputs": {}}),
            ));
            break;
        }
        if class == "KSampler" {
            let steps = nodes[id]["inputs"]["steps"]
                .as_u64()
                .unwrap_or(1)
                .clamp(1, 100);
            for value in 1..=steps {
                if is_interrupted() {
                    break;
                }
                send(
                    "progress",
                    json!({"value": value, "max": steps, "prompt_id": prompt_id, "node": id}),
                );
                if value == 1 {
                    // A preview: event type 1 (image), format 2 (PNG), bytes.
                    let mut frame = Vec::new();
                    frame.extend_from_slice(&1u32.to_be_bytes());
                    frame.extend_from_slice(&2u32.to_be_bytes());
                    frame.extend_from_slice(&png(2, 2, [128, 128, 128]));
                    let mut inner = inner.lock().unwrap();
                    if let Some(client) = inner.clients.get(&client_id) {
                        let _ = client.send(Out::Binary(frame));
                        inner.binary_frames += 1;
                    }
                }
                pause().await;
            }
            if is_interrupted() {
                failure = Some((
                    "execution_interrupted",
                    interrupted_data(&prompt_id, id, &class, &executed),
                ));
                break;
            }
        }
        if class == "SaveImage" {
            let images = save_images(&inner, &nodes, id);
            let output = json!({"images": images});
            history_outputs.insert(id.clone(), output.clone());
            inner
                .lock()
                .unwrap()
                .ui_cache
                .insert(signature(&nodes[id]), output.clone());
            let data =
                json!({"node": id, "display_node": id, "output": output, "prompt_id": prompt_id});
            send("executed", data.clone());
            note("executed", data);
        }
        executed.push(id.clone());
        inner.lock().unwrap().cache.insert(signature(&nodes[id]));
    }

    let status = match failure {
        Some((kind, data)) => {
            send(kind, data.clone());
            note(kind, data);
            json!({"status_str": "error", "completed": false, "messages": messages})
        }
        None => {
            let done = json!({"prompt_id": prompt_id, "timestamp": now_ms()});
            send("execution_success", done.clone());
            note("execution_success", done);
            json!({"status_str": "success", "completed": true, "messages": messages})
        }
    };
    let meta: Map<String, Value> = history_outputs
        .keys()
        .map(|id| {
            (
                id.clone(),
                json!({"node_id": id, "display_node": id, "parent_node": null, "real_node_id": id}),
            )
        })
        .collect();
    {
        let mut inner = inner.lock().unwrap();
        inner.history.insert(
            prompt_id.clone(),
            json!({
                "prompt": [number, prompt_id, graph, {"client_id": client_id}, outputs],
                "outputs": history_outputs,
                "status": status,
                "meta": meta,
            }),
        );
        inner.running = None;
        inner.queued = inner.queued.saturating_sub(1);
    }
    // Sent once the history is written, as ComfyUI does.
    send("executing", json!({"node": null, "prompt_id": prompt_id}));
    broadcast_status(&inner);
}

fn interrupted_data(prompt_id: &str, node: &str, class: &str, executed: &[String]) -> Value {
    json!({"prompt_id": prompt_id, "node_id": node, "node_type": class, "executed": executed})
}

/// Renders a SaveImage node's batch: the first sampler's seed (plus the
/// index in the batch) picks the colour, the first empty latent the size.
fn save_images(inner: &Shared, nodes: &Map<String, Value>, id: &str) -> Vec<Value> {
    let first = |class: &str| {
        let mut ids: Vec<&String> = nodes
            .iter()
            .filter(|(_, n)| n["class_type"] == class)
            .map(|(id, _)| id)
            .collect();
        ids.sort_by_key(|id| (id.parse::<u64>().unwrap_or(u64::MAX), id.to_string()));
        ids.first().map(|id| nodes[*id]["inputs"].clone())
    };
    let seed = first("KSampler")
        .and_then(|i| i["seed"].as_u64())
        .unwrap_or(0);
    let latent = first("EmptyLatentImage");
    let dimension = |key: &str| {
        latent
            .as_ref()
            .and_then(|i| i[key].as_u64())
            .map_or(8, |v| (v / 8).max(1) as u32)
    };
    let (width, height) = (dimension("width"), dimension("height"));
    let batch = latent
        .as_ref()
        .and_then(|i| i["batch_size"].as_u64())
        .unwrap_or(1)
        .clamp(1, 16);
    let prefix = nodes[id]["inputs"]["filename_prefix"]
        .as_str()
        .unwrap_or("ComfyUI")
        .to_owned();
    let (subfolder, stem) = match prefix.rsplit_once('/') {
        Some((dir, stem)) => (dir.to_owned(), stem.to_owned()),
        None => (String::new(), prefix),
    };
    let mut inner = inner.lock().unwrap();
    let mut images = Vec::new();
    for index in 0..batch {
        inner.saved += 1;
        let filename = format!("{stem}_{:05}_.png", inner.saved);
        let bytes = png(width, height, colour_for_seed(seed.wrapping_add(index)));
        inner.files.insert(
            ("output".into(), subfolder.clone(), filename.clone()),
            bytes,
        );
        images.push(json!({"filename": filename, "subfolder": subfolder, "type": "output"}));
    }
    images
}
