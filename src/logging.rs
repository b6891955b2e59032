//! The client's log: `spoke.log` in the state folder
//! (`$XDG_STATE_HOME/spoke/`), rotated by size, never on the screen. Its
//! detail comes from `--log-level` or `RUST_LOG` (env-filter syntax), `info`
//! by default. A log that cannot be written never stops the program.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use tracing_subscriber::EnvFilter;

/// The log file's name in the state folder.
pub const LOG_FILE_NAME: &str = "spoke.log";

/// A log file is rotated when the next line would take it past this size.
pub const MAX_LOG_BYTES: u64 = 5 * 1024 * 1024;

/// Rotated files kept beside the current one (`spoke.log.1` newest).
pub const KEPT_OLD_LOGS: usize = 3;

/// The file this process logs to, once logging is set up.
static ACTIVE: OnceLock<PathBuf> = OnceLock::new();

/// The log file this process writes, if it writes one.
pub fn log_file() -> Option<PathBuf> {
    ACTIVE.get().cloned()
}

/// Checks a `--log-level` value: a level (`warn`) or env-filter directives
/// (`spoke::sync=debug,info`).
pub fn parse_level(text: &str) -> Result<String, String> {
    EnvFilter::builder()
        .parse(text)
        .map(|_| text.to_owned())
        .map_err(|e| {
            format!(
                "{e}: use error, warn, info, debug or trace, or directives like spoke::sync=debug"
            )
        })
}

/// The filter: `level` (the flag) wins over `RUST_LOG`, which wins over `info`.
fn filter(level: Option<&str>) -> EnvFilter {
    let directives = level
        .map(str::to_owned)
        .or_else(|| {
            std::env::var("RUST_LOG")
                .ok()
                .filter(|v| !v.trim().is_empty())
        })
        .unwrap_or_else(|| "info".to_owned());
    EnvFilter::builder()
        .with_default_directive(tracing::level_filters::LevelFilter::INFO.into())
        .parse_lossy(directives)
}

/// Starts logging to [`LOG_FILE_NAME`] in the state folder. On failure the
/// program goes on without a file log; the error says why, for the caller
/// to mention (or not, inside the TUI).
pub fn init(level: Option<&str>) -> Result<PathBuf, String> {
    let dir = crate::config::state_dir()
        .ok_or_else(|| "no state folder: set XDG_STATE_HOME or HOME".to_owned())?;
    let path = dir.join(LOG_FILE_NAME);
    let file = RotatingFile::open(&path, MAX_LOG_BYTES, KEPT_OLD_LOGS)
        .map_err(|e| format!("cannot write the log {}: {e}", path.display()))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter(level))
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .with_target(true)
        .try_init()
        .map_err(|e| format!("cannot start logging: {e}"))?;
    let _ = ACTIVE.set(path.clone());
    tracing::info!(
        target: "spoke",
        pid = std::process::id(),
        version = env!("CARGO_PKG_VERSION"),
        "started"
    );
    Ok(path)
}

/// A log file that moves itself aside when it grows past a size: `NAME` ->
/// `NAME.1` -> ... -> `NAME.KEEP`, the oldest dropped.
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    file: Option<File>,
    size: u64,
}

impl RotatingFile {
    /// Opens (creating the folder and the file) for appending.
    pub fn open(path: &Path, max_bytes: u64, keep: usize) -> io::Result<RotatingFile> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_path_buf(),
            max_bytes,
            keep,
            file: Some(file),
            size,
        })
    }

    /// `NAME.n`.
    fn old(&self, n: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        if self.keep == 0 {
            std::fs::remove_file(&self.path).or_else(not_found_is_fine)?;
        } else {
            std::fs::remove_file(self.old(self.keep)).or_else(not_found_is_fine)?;
            for n in (1..self.keep).rev() {
                std::fs::rename(self.old(n), self.old(n + 1)).or_else(not_found_is_fine)?;
            }
            std::fs::rename(&self.path, self.old(1)).or_else(not_found_is_fine)?;
        }
        self.file = Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?,
        );
        self.size = 0;
        Ok(())
    }
}

fn not_found_is_fine(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.size > 0 && self.size.saturating_add(buf.len() as u64) > self.max_bytes {
            // A failed rotation is not worth losing the line: keep appending.
            if self.rotate().is_err() && self.file.is_none() {
                self.file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
                    .ok();
            }
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(buf.len());
        };
        let n = file.write(buf)?;
        self.size = self.size.saturating_add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_log_is_rotated_and_old_files_are_capped() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("logs").join("spoke.log");
        let mut log = RotatingFile::open(&path, 100, 2).expect("open");
        let line = [b'x'; 39];
        for i in 0..20u8 {
            let mut l = line.to_vec();
            l[0] = b'a' + i;
            l.push(b'\n');
            log.write_all(&l).expect("write");
        }
        log.flush().expect("flush");
        // 40-byte lines, 100-byte files: two lines each.
        let current = std::fs::read(&path).expect("current");
        assert_eq!(current.len(), 80);
        assert_eq!(
            current[40],
            b'a' + 19,
            "the newest line is in the current file"
        );
        let first = std::fs::read(dir.path().join("logs/spoke.log.1")).expect(".1");
        assert_eq!((first.len(), first[40]), (80, b'a' + 17));
        let second = std::fs::read(dir.path().join("logs/spoke.log.2")).expect(".2");
        assert_eq!((second.len(), second[40]), (80, b'a' + 15));
        assert!(
            !dir.path().join("logs/spoke.log.3").exists(),
            "no more than two old files are kept"
        );
    }

    #[test]
    fn reopening_counts_what_is_already_there() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("spoke.log");
        std::fs::write(&path, [b'o'; 90]).expect("seed");
        let mut log = RotatingFile::open(&path, 100, 1).expect("open");
        log.write_all(&[b'n'; 20]).expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), vec![b'n'; 20]);
        assert_eq!(
            std::fs::read(dir.path().join("spoke.log.1")).expect("old"),
            vec![b'o'; 90]
        );
    }

    #[test]
    fn levels_and_directives_are_checked() {
        assert!(parse_level("warn").is_ok());
        assert!(parse_level("spoke::sync=debug,info").is_ok());
        assert!(parse_level("spoke::sync=loud").is_err());
    }
}
