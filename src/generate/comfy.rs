//! ComfyUI's API: `POST /prompt` with a `client_id`, the `/ws?clientId=`
//! progress stream, `GET /history/{id}`, `GET /view`, `POST /upload/image`,
//! `POST /interrupt` and `GET /object_info`.

use serde_json::Value;
use std::time::Duration;
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
    Queued { prompt_id: String, number: u64 },
    Started,
    /// Nodes whose outputs came from the cache.
    Cached { nodes: Vec<String> },
    /// A node began; `class_type` from the graph when known.
    Executing { node: String, class_type: Option<String> },
    /// Sampler steps of a node.
    Step { node: String, value: u64, max: u64 },
    Executed { node: String },
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
        Err(self.unbuilt())
    }

    /// `POST /upload/image` (multipart, type `input`): the name the server
    /// stored it under, to bind to a `LoadImage` node.
    pub async fn upload_image(&self, _name: &str, _bytes: Vec<u8>) -> Result<String, GenError> {
        Err(self.unbuilt())
    }

    /// Queues `graph` and follows it on the WebSocket until it finishes,
    /// fails, stalls or is cancelled (then `POST /interrupt`); returns the
    /// images `/history` lists for it.
    pub async fn run(
        &self,
        _graph: &Value,
        _progress: &mut (dyn FnMut(Progress) + Send),
        _cancel: &CancellationToken,
    ) -> Result<Vec<ImageRef>, GenError> {
        Err(self.unbuilt())
    }

    /// `GET /view?filename&subfolder&type`: the image's bytes.
    pub async fn view(&self, _image: &ImageRef) -> Result<Vec<u8>, GenError> {
        Err(self.unbuilt())
    }

    /// `POST /interrupt`.
    pub async fn interrupt(&self) -> Result<(), GenError> {
        Err(self.unbuilt())
    }

    fn unbuilt(&self) -> GenError {
        GenError::Unreachable {
            url: self.base_url.clone(),
            detail: "not built".into(),
        }
    }
}
