//! ComfyUI's API: `POST /prompt` with a `client_id`, the `/ws?clientId=`
//! progress stream, `GET /history/{id}`, `GET /view`, `POST /upload/image`,
//! `POST /interrupt` and `GET /object_info`.

use futures_util::StreamExt as _;
use serde_json::Value;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// A ComfyUI server and this client's id on it.
#[derive(Debug, Clone)]
pub struct Comfy {
    /// `http://127.0.0.1:8188`
    pub base_url: String,
    /// Sent with every prompt and on the WebSocket, so progress is ours.
    pub client_id: String,
    /// No message from the server for this long while a prompt runs: stalled.
    pub stall: Duration,
}

/// An image a run produced, as `/history` and `/view` name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub filename: String,
    pub subfolder: String,
    /// `output` or `temp`.
    pub kind: String,
    /// The node that saved it.
    pub node: String,
}

/// What the progress stream says about our prompt.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Accepted by `/prompt`.
    Queued {
        prompt_id: String,
        number: u64,
    },
    Started,
    /// Nodes whose outputs came from the cache.
    Cached {
        nodes: Vec<String>,
    },
    /// A node began; `class_type` from the graph when known.
    Executing {
        node: String,
        class_type: Option<String>,
    },
    /// Sampler steps of a node.
    Step {
        node: String,
        value: u64,
        max: u64,
    },
    Executed {
        node: String,
    },
    Done,
}

/// One node's validation errors from `/prompt`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeError {
    pub node: String,
    pub class_type: String,
    /// Each error's message and details, e.g. `Value not in list: ckpt_name: 'x' not in [...]`.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GenError {
    #[error("ComfyUI at {url} cannot be reached: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("ComfyUI refused the workflow: {message}")]
    NodeErrors {
        message: String,
        nodes: Vec<NodeError>,
    },
    #[error("ComfyUI failed in node {node} ({class_type}): {message}")]
    Execution {
        node: String,
        class_type: String,
        message: String,
    },
    #[error("ComfyUI said nothing for {secs} s while running; the run was interrupted")]
    Stalled { secs: u64 },
    #[error("the run was cancelled")]
    Cancelled,
    #[error("ComfyUI answered {status} to {what}: {message}")]
    Http {
        what: String,
        status: u16,
        message: String,
    },
    #[error("ComfyUI's answer to {what} could not be read: {detail}")]
    Protocol { what: String, detail: String },
}

impl Comfy {
    pub fn new(base_url: &str, stall: Duration) -> Comfy {
        Comfy {
            base_url: base_url.trim().trim_end_matches('/').to_owned(),
            client_id: crate::model::ids::new_entity_id("spoke"),
            stall,
        }
    }

    /// `GET /object_info`: every node class the server has, with its inputs.
    pub async fn object_info(&self) -> Result<Value, GenError> {
        let http = self.http()?;
        let url = self.endpoint("object_info")?;
        let info: Value = self
            .read_json(
                "/object_info",
                http.get(url.clone()).timeout(REQUEST_TIMEOUT),
                &url,
            )
            .await?;
        if !info.is_object() {
            return Err(protocol(
                "/object_info",
                "expected an object of node classes",
            ));
        }
        Ok(info)
    }

    /// `POST /upload/image` (multipart, type `input`): the name the server
    /// stored it under, to bind to a `LoadImage` node.
    pub async fn upload_image(&self, name: &str, bytes: Vec<u8>) -> Result<String, GenError> {
        let http = self.http()?;
        let url = self.endpoint("upload/image")?;
        let (content_type, body) = multipart_image(name, &bytes);
        let request = http
            .post(url.clone())
            .timeout(UPLOAD_TIMEOUT)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        let stored: Value = self.read_json("/upload/image", request, &url).await?;
        let Some(stored_name) = stored.get("name").and_then(Value::as_str) else {
            return Err(protocol("/upload/image", "the answer has no \"name\""));
        };
        match stored.get("subfolder").and_then(Value::as_str) {
            Some(sub) if !sub.is_empty() => Ok(format!("{sub}/{stored_name}")),
            _ => Ok(stored_name.to_owned()),
        }
    }

    /// Queues `graph` and follows it on the WebSocket until it finishes,
    /// fails, stalls or is cancelled (then `POST /interrupt`); returns the
    /// images `/history` lists for it.
    pub async fn run(
        &self,
        graph: &Value,
        progress: &mut (dyn FnMut(Progress) + Send),
        cancel: &CancellationToken,
    ) -> Result<Vec<ImageRef>, GenError> {
        let http = self.http()?;
        // Connected before queueing, so no message about the prompt is missed.
        let (mut socket, ws_url) = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(GenError::Cancelled),
            connected = self.connect_socket() => connected?,
        };
        // Not raced with the cancel: a prompt queued unseen could not be interrupted.
        let (prompt_id, number) = self.queue_prompt(&http, graph).await?;
        progress(Progress::Queued {
            prompt_id: prompt_id.clone(),
            number,
        });
        let followed = self
            .follow(&mut socket, &ws_url, &prompt_id, graph, progress, cancel)
            .await;
        // Best effort: the server forgets a client whose socket closes.
        let _ = socket.close(None).await;
        match followed {
            Ok(()) => {}
            Err(Stop::Failed(e)) => return Err(e),
            Err(Stop::Cancelled) => {
                self.interrupt_after_stop(&http, &prompt_id).await;
                return Err(GenError::Cancelled);
            }
            Err(Stop::Stalled) => {
                self.interrupt_after_stop(&http, &prompt_id).await;
                return Err(GenError::Stalled {
                    secs: self.stall.as_secs().max(1),
                });
            }
        }
        let images = self.history_images(&http, &prompt_id).await?;
        progress(Progress::Done);
        Ok(images)
    }

    /// `GET /view?filename&subfolder&type`: the image's bytes.
    pub async fn view(&self, image: &ImageRef) -> Result<Vec<u8>, GenError> {
        let http = self.http()?;
        let mut url = self.endpoint("view")?;
        url.query_pairs_mut()
            .append_pair("filename", &image.filename)
            .append_pair("subfolder", &image.subfolder)
            .append_pair("type", &image.kind);
        let what = format!("/view of {}", image.filename);
        let response = self
            .send(&what, http.get(url.clone()).timeout(UPLOAD_TIMEOUT), &url)
            .await?;
        let bytes = response.bytes().await.map_err(|e| unreachable(&url, &e))?;
        if bytes.is_empty() {
            return Err(protocol(&what, "the image is empty"));
        }
        Ok(bytes.to_vec())
    }

    /// `POST /interrupt`.
    pub async fn interrupt(&self) -> Result<(), GenError> {
        let http = self.http()?;
        self.post_interrupt(&http, &serde_json::json!({})).await
    }

    fn http(&self) -> Result<reqwest::Client, GenError> {
        crate::http::client(CONNECT_TIMEOUT, "ComfyUI").map_err(|e| GenError::Unreachable {
            url: self.base_url.clone(),
            detail: format!("{e:#}"),
        })
    }

    fn endpoint(&self, path: &str) -> Result<reqwest::Url, GenError> {
        let invalid = |detail: &str| GenError::Unreachable {
            url: self.base_url.clone(),
            detail: detail.to_owned(),
        };
        let url = reqwest::Url::parse(&format!("{}/{path}", self.base_url))
            .map_err(|e| invalid(&format!("not a valid URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid("the address must start with http:// or https://"));
        }
        Ok(url)
    }

    /// `ws[s]://HOST/ws?clientId=ID` from the base URL.
    fn socket_url(&self) -> Result<reqwest::Url, GenError> {
        let mut url = self.endpoint("ws")?;
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(scheme).map_err(|()| GenError::Unreachable {
            url: self.base_url.clone(),
            detail: "no WebSocket address for it".into(),
        })?;
        url.query_pairs_mut()
            .append_pair("clientId", &self.client_id);
        Ok(url)
    }

    async fn connect_socket(&self) -> Result<(Socket, String), GenError> {
        let url = self.socket_url()?;
        let shown = url.to_string();
        let connector = if url.scheme() == "wss" {
            let config =
                crate::sync::tls::client_config(None).map_err(|e| GenError::Unreachable {
                    url: shown.clone(),
                    detail: format!("{e:#}"),
                })?;
            Some(tokio_tungstenite::Connector::Rustls(config))
        } else {
            None
        };
        let connecting =
            tokio_tungstenite::connect_async_tls_with_config(url.as_str(), None, true, connector);
        let (socket, _) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| GenError::Unreachable {
                url: shown.clone(),
                detail: format!("no WebSocket answer within {} s", CONNECT_TIMEOUT.as_secs()),
            })?
            .map_err(|e| GenError::Unreachable {
                url: shown.clone(),
                detail: e.to_string(),
            })?;
        Ok((socket, shown))
    }

    /// `POST /prompt`: the prompt's id and its number in the queue.
    async fn queue_prompt(
        &self,
        http: &reqwest::Client,
        graph: &Value,
    ) -> Result<(String, u64), GenError> {
        let url = self.endpoint("prompt")?;
        let body = serde_json::json!({ "prompt": graph, "client_id": self.client_id });
        let response = http
            .post(url.clone())
            .timeout(REQUEST_TIMEOUT)
            .json(&body)
            .send()
            .await
            .map_err(|e| unreachable(&url, &e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| unreachable(&url, &e))?;
        let answer: Option<Value> = serde_json::from_str(&text).ok();
        if !status.is_success() {
            return Err(match answer.as_ref().and_then(refusal) {
                Some(refused) => refused,
                None => GenError::Http {
                    what: "/prompt".into(),
                    status: status.as_u16(),
                    message: error_message(&text),
                },
            });
        }
        let Some(answer) = answer else {
            return Err(protocol("/prompt", "the answer is not JSON"));
        };
        let Some(prompt_id) = answer.get("prompt_id").and_then(Value::as_str) else {
            return Err(protocol("/prompt", "the answer has no \"prompt_id\""));
        };
        let number = answer.get("number").and_then(Value::as_u64).unwrap_or(0);
        Ok((prompt_id.to_owned(), number))
    }

    /// Reads the progress stream until our prompt finishes (`executing` with
    /// `node: null`, sent once its history is written) or stops.
    async fn follow(
        &self,
        socket: &mut Socket,
        ws_url: &str,
        prompt_id: &str,
        graph: &Value,
        progress: &mut (dyn FnMut(Progress) + Send),
        cancel: &CancellationToken,
    ) -> Result<(), Stop> {
        loop {
            let message = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(Stop::Cancelled),
                next = tokio::time::timeout(self.stall, socket.next()) => match next {
                    Err(_) => return Err(Stop::Stalled),
                    Ok(message) => message,
                },
            };
            let text = match message {
                Some(Ok(Message::Text(text))) => text,
                // Previews (event type, image format, bytes) and keep-alives.
                Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_)))
                | Some(Ok(Message::Frame(_))) => continue,
                Some(Ok(Message::Close(frame))) => {
                    let why = frame
                        .map(|f| format!(" ({} {})", u16::from(f.code), f.reason))
                        .unwrap_or_default();
                    return Err(Stop::Failed(GenError::Unreachable {
                        url: ws_url.to_owned(),
                        detail: format!(
                            "the server closed the WebSocket{why} while prompt {prompt_id} was running"
                        ),
                    }));
                }
                Some(Err(e)) => {
                    return Err(Stop::Failed(GenError::Unreachable {
                        url: ws_url.to_owned(),
                        detail: format!(
                            "the WebSocket broke while prompt {prompt_id} was running: {e}"
                        ),
                    }));
                }
                None => {
                    return Err(Stop::Failed(GenError::Unreachable {
                        url: ws_url.to_owned(),
                        detail: format!("the WebSocket ended while prompt {prompt_id} was running"),
                    }));
                }
            };
            let Ok(event) = serde_json::from_str::<Value>(text.as_str()) else {
                return Err(Stop::Failed(protocol(
                    "the progress stream",
                    &format!("a message is not JSON: {}", clip(text.as_str())),
                )));
            };
            let data = event.get("data").unwrap_or(&Value::Null);
            // `status` and other clients' prompts are not ours to follow.
            if data.get("prompt_id").and_then(Value::as_str) != Some(prompt_id) {
                continue;
            }
            let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
            match on_event(kind, data, graph) {
                Event::Progress(p) => progress(p),
                Event::Finished => return Ok(()),
                Event::Failed(e) => return Err(Stop::Failed(e)),
                Event::Other => {}
            }
        }
    }

    async fn interrupt_after_stop(&self, http: &reqwest::Client, prompt_id: &str) {
        let body = serde_json::json!({ "prompt_id": prompt_id });
        if let Err(e) = self.post_interrupt(http, &body).await {
            tracing::warn!("interrupting ComfyUI prompt {prompt_id}: {e}");
        }
    }

    async fn post_interrupt(&self, http: &reqwest::Client, body: &Value) -> Result<(), GenError> {
        let url = self.endpoint("interrupt")?;
        self.send(
            "/interrupt",
            http.post(url.clone()).timeout(REQUEST_TIMEOUT).json(body),
            &url,
        )
        .await
        .map(drop)
    }

    /// `GET /history/{id}`: the saved images, node by node in id order.
    async fn history_images(
        &self,
        http: &reqwest::Client,
        prompt_id: &str,
    ) -> Result<Vec<ImageRef>, GenError> {
        let url = self.endpoint(&format!("history/{prompt_id}"))?;
        let what = format!("/history/{prompt_id}");
        let history: Value = self
            .read_json(&what, http.get(url.clone()).timeout(REQUEST_TIMEOUT), &url)
            .await?;
        let Some(entry) = history.get(prompt_id) else {
            return Err(protocol(&what, "the history has no entry for the prompt"));
        };
        images_of(entry).map_err(|detail| protocol(&what, &detail))
    }

    async fn send(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
        url: &reqwest::Url,
    ) -> Result<reqwest::Response, GenError> {
        let response = request.send().await.map_err(|e| unreachable(url, &e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        Err(GenError::Http {
            what: what.to_owned(),
            status: status.as_u16(),
            message: error_message(&text),
        })
    }

    async fn read_json(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
        url: &reqwest::Url,
    ) -> Result<Value, GenError> {
        let response = self.send(what, request, url).await?;
        let text = response.text().await.map_err(|e| unreachable(url, &e))?;
        serde_json::from_str(&text)
            .map_err(|e| protocol(what, &format!("not JSON ({e}): {}", clip(&text))))
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Images go up and come down whole.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// Why following a prompt stopped early.
enum Stop {
    Failed(GenError),
    Cancelled,
    Stalled,
}

/// One of our prompt's messages, read.
enum Event {
    Progress(Progress),
    Finished,
    Failed(GenError),
    Other,
}

fn on_event(kind: &str, data: &Value, graph: &Value) -> Event {
    let text = |key: &str| {
        data.get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    match kind {
        "execution_start" => Event::Progress(Progress::Started),
        "execution_cached" => Event::Progress(Progress::Cached {
            nodes: data
                .get("nodes")
                .and_then(Value::as_array)
                .map(|nodes| nodes.iter().filter_map(node_id).collect())
                .unwrap_or_default(),
        }),
        "executing" => match data.get("node").and_then(node_id) {
            None => Event::Finished,
            Some(node) => Event::Progress(Progress::Executing {
                class_type: graph
                    .get(&node)
                    .and_then(|n| n.get("class_type"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                node,
            }),
        },
        "progress" => Event::Progress(Progress::Step {
            node: data.get("node").and_then(node_id).unwrap_or_default(),
            value: data.get("value").and_then(Value::as_u64).unwrap_or(0),
            max: data.get("max").and_then(Value::as_u64).unwrap_or(0),
        }),
        "executed" => Event::Progress(Progress::Executed {
            node: data.get("node").and_then(node_id).unwrap_or_default(),
        }),
        "execution_error" => {
            let exception = text("exception_type");
            let message = text("exception_message");
            let message = match (exception.is_empty(), message.trim().is_empty()) {
                (false, false) => format!("{exception}: {}", message.trim()),
                (false, true) => exception,
                (true, _) => message.trim().to_owned(),
            };
            Event::Failed(GenError::Execution {
                node: data.get("node_id").and_then(node_id).unwrap_or_default(),
                class_type: text("node_type"),
                message,
            })
        }
        "execution_interrupted" => Event::Failed(GenError::Execution {
            node: data.get("node_id").and_then(node_id).unwrap_or_default(),
            class_type: text("node_type"),
            message: "interrupted on the server".into(),
        }),
        _ => Event::Other,
    }
}

/// Node ids are strings in API-format graphs; accept numbers too.
fn node_id(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The `output` images of a history entry, in node-id then list order.
fn images_of(entry: &Value) -> Result<Vec<ImageRef>, String> {
    let Some(outputs) = entry.get("outputs").and_then(Value::as_object) else {
        return Err("the entry has no \"outputs\"".into());
    };
    let mut nodes: Vec<(&String, &Value)> = outputs.iter().collect();
    nodes.sort_by(|(a, _), (b, _)| node_order(a, b));
    let mut images = Vec::new();
    for (node, output) in nodes {
        let Some(list) = output.get("images").and_then(Value::as_array) else {
            continue;
        };
        for image in list {
            let field = |key: &str| image.get(key).and_then(Value::as_str);
            if field("type") != Some("output") {
                continue;
            }
            let Some(filename) = field("filename") else {
                return Err(format!("an image of node {node} has no filename"));
            };
            images.push(ImageRef {
                filename: filename.to_owned(),
                subfolder: field("subfolder").unwrap_or("").to_owned(),
                kind: "output".into(),
                node: node.clone(),
            });
        }
    }
    Ok(images)
}

/// Numeric ids in number order (`9` before `10`), others after, by text.
fn node_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// `/prompt`'s refusal: `{"error": {type, message, details}, "node_errors": {...}}`.
fn refusal(answer: &Value) -> Option<GenError> {
    let error = answer.get("error")?;
    let field = |key: &str| error.get(key).and_then(Value::as_str).unwrap_or("").trim();
    let mut message = match error {
        Value::String(s) => s.trim().to_owned(),
        _ => field("message").to_owned(),
    };
    if !field("details").is_empty() {
        message = format!("{message}: {}", field("details"));
    }
    let mut nodes: Vec<NodeError> = answer
        .get("node_errors")
        .and_then(Value::as_object)
        .map(|errors| {
            errors
                .iter()
                .map(|(node, e)| NodeError {
                    node: node.clone(),
                    class_type: e
                        .get("class_type")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    errors: e
                        .get("errors")
                        .and_then(Value::as_array)
                        .map(|list| list.iter().map(describe_node_error).collect())
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    nodes.sort_by(|a, b| node_order(&a.node, &b.node));
    for node in &nodes {
        message.push_str(&format!(
            "; node {} ({}): {}",
            node.node,
            node.class_type,
            node.errors.join("; ")
        ));
    }
    Some(GenError::NodeErrors { message, nodes })
}

fn describe_node_error(error: &Value) -> String {
    let field = |key: &str| error.get(key).and_then(Value::as_str).unwrap_or("").trim();
    match (field("message"), field("details")) {
        (message, "") => message.to_owned(),
        ("", details) => details.to_owned(),
        (message, details) => format!("{message}: {details}"),
    }
}

/// A readable message from an error body: ComfyUI's `error.message`, a
/// plain `error` or `message`, or the start of the text.
fn error_message(body: &str) -> String {
    if let Ok(json) = serde_json::from_str::<Value>(body) {
        let error = json.get("error");
        let found = error
            .and_then(|e| e.get("message"))
            .or(error)
            .or(json.get("message"))
            .and_then(Value::as_str);
        if let Some(message) = found {
            return message.trim().to_owned();
        }
    }
    let body = clip(body.trim());
    if body.is_empty() {
        "(no message)".into()
    } else {
        body
    }
}

fn clip(text: &str) -> String {
    text.chars().take(crate::http::ERROR_BODY_CHARS).collect()
}

fn protocol(what: &str, detail: &str) -> GenError {
    GenError::Protocol {
        what: what.to_owned(),
        detail: detail.to_owned(),
    }
}

/// Transport failures (refused, reset, timed out) with the address tried.
fn unreachable(url: &reqwest::Url, error: &reqwest::Error) -> GenError {
    let mut detail = if error.is_timeout() {
        "no answer in time".to_owned()
    } else if error.is_connect() {
        "the connection failed".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        detail.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    GenError::Unreachable {
        url: url.to_string(),
        detail,
    }
}

/// A `multipart/form-data` body as ComfyUI's upload form sends it: the file
/// as `image`, then `type=input` and `overwrite=true`.
fn multipart_image(name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let mut boundary = format!("spoke-{}", crate::model::ids::new_entity_id("form"));
    while contains(bytes, boundary.as_bytes()) {
        boundary.push_str(&crate::model::ids::new_entity_id("x"));
    }
    // Quotes and line breaks escaped as browsers do in form-data names.
    let filename = name
        .replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    let mut body = Vec::with_capacity(bytes.len() + 512);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{filename}\"\r\nContent-Type: {}\r\n\r\n",
            image_mime(name)
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    for (field, value) in [("type", "input"), ("overwrite", "true")] {
        body.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"\r\n\r\n{value}"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn image_mime(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("bmp") => "image/bmp",
        Some("tif" | "tiff") => "image/tiff",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn history_images_are_outputs_in_node_then_list_order() {
        let entry = json!({"outputs": {
            "10": {"images": [{"filename": "c.png", "subfolder": "", "type": "output"}]},
            "9": {"images": [
                {"filename": "a.png", "subfolder": "s", "type": "output"},
                {"filename": "p.png", "subfolder": "", "type": "temp"},
                {"filename": "b.png", "subfolder": "", "type": "output"}
            ]},
            "12": {"text": ["not an image"]}
        }});
        let names: Vec<(String, String)> = images_of(&entry)
            .unwrap()
            .into_iter()
            .map(|i| (i.node, i.filename))
            .collect();
        assert_eq!(
            names,
            [("9", "a.png"), ("9", "b.png"), ("10", "c.png")]
                .map(|(n, f)| (n.to_owned(), f.to_owned()))
        );
    }

    #[test]
    fn a_refusal_without_node_errors_keeps_its_message() {
        let answer = json!({"error": {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "", "extra_info": {}}, "node_errors": []});
        let Some(GenError::NodeErrors { message, nodes }) = refusal(&answer) else {
            panic!("not a refusal");
        };
        assert_eq!(message, "Prompt has no outputs");
        assert!(nodes.is_empty());
    }

    #[test]
    fn multipart_names_are_escaped_and_the_boundary_closes_the_body() {
        let (content_type, body) = multipart_image("a\"b\r\n.png", b"PNGDATA");
        let boundary = content_type.split_once("boundary=").unwrap().1;
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("filename=\"a%22b%0D%0A.png\""));
        assert!(text.contains("Content-Type: image/png\r\n\r\nPNGDATA\r\n"));
        assert!(text.ends_with(&format!("\r\n--{boundary}--\r\n")));
    }
}
