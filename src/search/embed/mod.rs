//! Embedders turn text into vectors. `local` needs no model and runs
//! anywhere; `openai` talks to any OpenAI-compatible `/v1/embeddings`
//! server. The index records which one built it and never mixes vectors.

pub mod local;
pub mod openai;

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a text is for: models such as e5 embed questions and passages
/// differently (`query: ` / `passage: ` prefixes or an `input_type` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Query,
    Passage,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Query => "query",
            Purpose::Passage => "passage",
        }
    }
}

/// Which embedder built an index. Changing the kind, the model or the
/// dimensions makes the index rebuild.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedderId {
    /// `local` or `openai`.
    pub kind: String,
    /// The model name (for `local`, the feature scheme's version).
    pub model: String,
    /// Vector length; 0 when not known until the server answers.
    pub dims: usize,
}

impl fmt::Display for EmbedderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dims == 0 {
            write!(f, "{} ({})", self.kind, self.model)
        } else {
            write!(f, "{} ({}, {} dims)", self.kind, self.model, self.dims)
        }
    }
}

/// Why texts could not be embedded. Each names the server and what went wrong.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EmbedError {
    #[error("embeddings server {url} is unreachable: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("embeddings server {url} did not answer within {secs} s")]
    Timeout { url: String, secs: u64 },
    #[error("embeddings server {url} answered HTTP {status}: {body}")]
    Http {
        url: String,
        status: u16,
        body: String,
    },
    #[error("embeddings server {url} sent a malformed answer: {detail}")]
    Malformed { url: String, detail: String },
    #[error(
        "embeddings from {source_name} have {got} dimensions, but {expected} were expected; \
         set `dims` in [search.openai] to match the model, or rebuild with `spoke index rebuild`"
    )]
    WrongDims {
        source_name: String,
        got: usize,
        expected: usize,
    },
    #[error("embedding was cancelled")]
    Cancelled,
}

/// Turns texts into vectors, in input order, one per text.
///
/// Implementations block the calling thread (they are called from worker
/// threads and CLI commands, never from inside an async runtime).
pub trait Embedder: Send + Sync {
    fn id(&self) -> EmbedderId;

    /// Where vectors come from, for messages: the server's URL and model.
    fn describe(&self) -> String {
        self.id().to_string()
    }

    fn embed(&self, texts: &[&str], purpose: Purpose) -> Result<Vec<Vec<f32>>, EmbedError>;

    /// Cosine similarity below which a vector match is noise, not a result.
    /// Models that squeeze every pair into a narrow band (e5 scores unrelated
    /// texts around 0.7) leave it at 0 and rely on the fused ranking.
    fn min_similarity(&self) -> f32 {
        0.0
    }

    /// Passage vectors from texts already split into search terms, for an
    /// embedder built on them (so a refresh splits each text once); `None`
    /// when the embedder needs the text itself.
    fn embed_terms(&self, _terms: &[Vec<String>]) -> Option<Vec<Vec<f32>>> {
        None
    }

    /// Something about the configuration the user should hear about with
    /// every search (shown as a warning), e.g. a key variable that is unset.
    fn notice(&self) -> Option<String> {
        None
    }

    /// How much the vector ranking counts against BM25 in the fusion (1 = as
    /// much). An embedder that only approximates shared words adds little
    /// BM25 does not already know, and its noise should count for less.
    fn fusion_weight(&self) -> f32 {
        1.0
    }

    /// Whether the vectors place a text near its translation. Vectors built
    /// on the text's own words and letters (the local embedder) cannot:
    /// what they find between a query and a document in another language,
    /// beyond a word the two share, is hash collisions and stray letter
    /// triples, so search does not take such a match from them alone.
    fn crosses_languages(&self) -> bool {
        true
    }

    /// The vector length, asking the model when it is not configured.
    fn probe_dims(&self) -> Result<usize, EmbedError> {
        let id = self.id();
        if id.dims > 0 {
            return Ok(id.dims);
        }
        let v = self.embed(&["dimension probe"], Purpose::Passage)?;
        v.first()
            .map(Vec::len)
            .ok_or_else(|| EmbedError::Malformed {
                url: id.to_string(),
                detail: "no vector came back for one input".into(),
            })
    }
}

/// Scales a vector to unit length (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
}

/// The embedder `[search]` in config.toml asks for (`local` by default).
pub fn from_config(cfg: &crate::config::SearchConfig) -> anyhow::Result<Box<dyn Embedder>> {
    match cfg.embedder.as_deref().unwrap_or("local") {
        "local" => Ok(Box::new(local::LocalEmbedder::new())),
        "openai" => {
            let oc = cfg.openai.as_ref().ok_or_else(|| {
                crate::model::InputError::new(
                    "search.embedder = \"openai\" needs a [search.openai] table with url and model",
                )
            })?;
            Ok(Box::new(openai::OpenAiEmbedder::new(oc)?))
        }
        other => Err(crate::model::InputError::new(format!(
            "unknown search.embedder `{other}`: use \"local\" or \"openai\""
        ))
        .into()),
    }
}
