//! Paths: which config file is read and whether it parses, the data folder
//! and its replica, and the log file.

use super::Check;
use super::search::{self, IndexFacts};
use crate::config::{Config, SearchConfig};
use crate::store::{Replica, ReplicaMeta, StoreError};
use std::path::{Path, PathBuf};

const AREA: &str = "paths";

/// The config file as found.
#[derive(Debug, Clone)]
pub struct ConfigFound {
    pub check: Check,
    /// `None` when the file does not parse.
    pub config: Option<Config>,
    /// The file read, or where one would be read from.
    pub path: Option<PathBuf>,
}

impl ConfigFound {
    /// The file for fixes to name.
    pub fn shown(&self) -> String {
        self.path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "config.toml".into())
    }
}

/// Reads the config file the way every command does.
pub fn config(explicit: Option<&Path>) -> ConfigFound {
    let default = crate::config::config_dir().map(|d| d.join("config.toml"));
    match Config::load(explicit) {
        Ok((config, Some(path))) => ConfigFound {
            check: Check::ok(AREA, "config", format!("{} parses", path.display())),
            config: Some(config),
            path: Some(path),
        },
        Ok((config, None)) => ConfigFound {
            check: Check::ok(
                AREA,
                "config",
                match &default {
                    Some(p) => format!("no config file at {}: defaults apply", p.display()),
                    None => {
                        "no config file (neither XDG_CONFIG_HOME nor HOME is set): defaults apply"
                            .into()
                    }
                },
            ),
            config: Some(config),
            path: default,
        },
        Err(e) => {
            let path = explicit.map(Path::to_path_buf).or(default);
            let shown = path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "the config file".into());
            ConfigFound {
                check: Check::fail(
                    AREA,
                    "config",
                    one_line(&format!("{e:#}")),
                    format!(
                        "correct {shown} (see `spoke --help` for the keys), or move it away to use the defaults"
                    ),
                ),
                config: None,
                path,
            }
        }
    }
}

/// A multi-line message (a TOML error with its excerpt) as its first and
/// last lines.
fn one_line(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match lines.as_slice() {
        [] => String::new(),
        [only] => (*only).to_owned(),
        [first, .., last] => format!("{first}: {last}"),
    }
}

/// The data folder: `--home`, then the config's `home`, then the default.
pub fn home(flag: Option<&Path>, config: &Config) -> Option<PathBuf> {
    flag.map(Path::to_path_buf)
        .or_else(|| config.home.clone())
        .or_else(crate::config::default_home)
}

/// What was read from the replica while it was open.
#[derive(Debug, Clone)]
pub struct ReplicaFacts {
    pub meta: ReplicaMeta,
    pub pending: Result<u64, String>,
    pub index: IndexFacts,
}

/// The data folder and its replica.
#[derive(Debug, Clone)]
pub struct ReplicaFound {
    pub check: Check,
    /// `None` when there is no replica or it cannot be opened.
    pub facts: Option<ReplicaFacts>,
}

/// Opens the replica, reads what the other checks need, and closes it again.
pub fn replica(home: Option<&Path>, search_config: &SearchConfig) -> ReplicaFound {
    let start_here = "`spoke init --name NAME --handle ME --tz ZONE` starts a hub here; \
                      `spoke hub join URL --token TOKEN` joins one";
    let Some(home) = home else {
        return ReplicaFound {
            check: Check::fail(
                AREA,
                "data folder",
                "cannot tell where the data lives: no --home, SPOKE_HOME, `home` in the config, XDG_DATA_HOME or HOME",
                "pass --home DIR or set SPOKE_HOME",
            ),
            facts: None,
        };
    };
    let path = crate::service::replica_path(home);
    if !home.is_dir() {
        return ReplicaFound {
            check: Check::warn(
                AREA,
                "data folder",
                format!("{} does not exist: no replica yet", home.display()),
                start_here,
            ),
            facts: None,
        };
    }
    let replica = match Replica::open(&path) {
        Ok(r) => r,
        Err(e) => {
            let check = match &e {
                StoreError::Missing { .. } => Check::warn(
                    AREA,
                    "data folder",
                    format!("{}: no replica in it yet", home.display()),
                    start_here,
                ),
                StoreError::Locked { .. } => Check::warn(
                    AREA,
                    "data folder",
                    format!(
                        "{} is open in another spoke process (the TUI or `spoke sync --watch`); the checks that read it are skipped",
                        path.display()
                    ),
                    "run `spoke doctor` again with the other process closed",
                ),
                StoreError::NewerSchema { .. } => Check::fail(
                    AREA,
                    "data folder",
                    e.to_string(),
                    "update spoke to the version that wrote this replica",
                ),
                StoreError::Corrupt { .. } => Check::fail(
                    AREA,
                    "data folder",
                    e.to_string(),
                    "restore the replica from a backup, or move it aside and run `spoke hub join` again",
                ),
                _ => Check::fail(
                    AREA,
                    "data folder",
                    e.to_string(),
                    "run `spoke --rebuild-cache status` to rebuild the state from the stored ops",
                ),
            };
            return ReplicaFound { check, facts: None };
        }
    };
    let meta = match replica.meta() {
        Ok(m) => m,
        Err(e) => {
            return ReplicaFound {
                check: Check::fail(
                    AREA,
                    "data folder",
                    format!("{}: {e}", path.display()),
                    "try `spoke --rebuild-cache status`, or restore the replica from a backup",
                ),
                facts: None,
            };
        }
    };
    let pending = replica.pending_count().map_err(|e| e.to_string());
    let index = search::facts(&replica, home, search_config);
    let who = meta
        .me
        .as_deref()
        .map(|m| format!(" as @{m}"))
        .unwrap_or_default();
    ReplicaFound {
        check: Check::ok(
            AREA,
            "data folder",
            format!("{}: the replica opens{who}", path.display()),
        ),
        facts: Some(ReplicaFacts {
            meta,
            pending,
            index,
        }),
    }
}

/// The log file the client writes: its folder, and whether it can be written.
pub fn log_file() -> Check {
    let Some(dir) = crate::config::state_dir() else {
        return Check::warn(
            AREA,
            "log file",
            "cannot tell where logs go: neither XDG_STATE_HOME nor HOME is set",
            "set XDG_STATE_HOME (or HOME)",
        );
    };
    let file =
        crate::logging::log_file().unwrap_or_else(|| dir.join(crate::logging::LOG_FILE_NAME));
    if file.exists() {
        return match std::fs::OpenOptions::new().append(true).open(&file) {
            Ok(_) => {
                let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
                Check::ok(
                    AREA,
                    "log file",
                    format!(
                        "{} ({} KiB) is writable",
                        file.display(),
                        size.div_ceil(1024)
                    ),
                )
            }
            Err(e) => Check::warn(
                AREA,
                "log file",
                format!("{} cannot be written: {e}", file.display()),
                format!("make it writable: chmod u+w {}", file.display()),
            ),
        };
    }
    // The folder is made on first use: the nearest existing folder must take it.
    let existing = dir.ancestors().find(|a| a.is_dir());
    match existing {
        Some(folder) => match writable(folder) {
            Ok(()) if folder == dir => Check::ok(
                AREA,
                "log file",
                format!("{} is writable (no log yet)", dir.display()),
            ),
            Ok(()) => Check::ok(
                AREA,
                "log file",
                format!(
                    "{} will be made on first use ({} is writable)",
                    dir.display(),
                    folder.display()
                ),
            ),
            Err(e) => Check::warn(
                AREA,
                "log file",
                format!(
                    "logs cannot go to {}: {} is not writable ({e})",
                    file.display(),
                    folder.display()
                ),
                format!(
                    "make {} writable, or point XDG_STATE_HOME elsewhere",
                    folder.display()
                ),
            ),
        },
        None => Check::warn(
            AREA,
            "log file",
            format!("no folder on the way to {} exists", file.display()),
            "point XDG_STATE_HOME at a writable folder",
        ),
    }
}

/// Whether a file can be made in `folder` (one is made and removed at once).
fn writable(folder: &Path) -> std::io::Result<()> {
    let probe = folder.join(format!(".spoke-doctor-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_toml_error_is_shown_on_one_line() {
        let text = "config file /x/c.toml: TOML parse error at line 1, column 5\n  |\n1 | hom = 1\n  |     ^\nunknown field `hom`\n";
        assert_eq!(
            one_line(text),
            "config file /x/c.toml: TOML parse error at line 1, column 5: unknown field `hom`"
        );
        assert_eq!(one_line("just one"), "just one");
    }

    #[test]
    fn a_broken_config_fails_and_names_its_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let bad = dir.path().join("broken.toml");
        std::fs::write(&bad, "theme = [\n").expect("write");
        let found = config(Some(&bad));
        assert_eq!(found.check.status, super::super::Status::Fail);
        assert!(
            found.check.detail.contains("broken.toml"),
            "{:?}",
            found.check
        );
        assert!(found.config.is_none());
    }
}
