//! Finding and preparing files to import: folders are walked (symlink loops
//! are caught), each file is read, hashed and analysed. Preparation runs on
//! worker threads that share one memory budget for decoding; recording the
//! result is the caller's (one commit a file).

use super::analyze::{Analysis, Rejected, analyze};
use super::budget::{HeldBytes, MemoryBudget};
use crate::model::ids::hex;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// Largest file imported (blobs on the relay default to the same limit).
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Most file contents read and not yet recorded, all workers together.
/// Files larger than half of it are read one at a time.
pub const FILE_BYTES_IN_FLIGHT: u64 = MAX_FILE_BYTES;

/// A file's contents, counted against the import's budget for file bytes
/// until dropped (after the file is recorded).
#[derive(Debug)]
pub struct FileBytes {
    bytes: Vec<u8>,
    _held: Option<HeldBytes>,
}

impl std::ops::Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// A file ready to record.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
    pub analysis: Analysis,
}

/// Every file under `paths` (folders recursively, hidden files skipped),
/// and the paths that could not be walked, with reasons.
pub fn collect_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let mut files = Vec::new();
    let mut failed = Vec::new();
    let mut seen_dirs = HashSet::new();
    for p in paths {
        walk(p, &mut files, &mut failed, &mut seen_dirs);
    }
    (files, failed)
}

fn walk(
    path: &Path,
    files: &mut Vec<PathBuf>,
    failed: &mut Vec<(PathBuf, String)>,
    seen_dirs: &mut HashSet<PathBuf>,
) {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            let why = match std::fs::symlink_metadata(path) {
                Ok(l) if l.file_type().is_symlink() => {
                    format!("broken or looping symbolic link ({e})")
                }
                _ => format!("cannot read it: {e}"),
            };
            failed.push((path.to_owned(), why));
            return;
        }
    };
    if meta.is_file() {
        files.push(path.to_owned());
        return;
    }
    if !meta.is_dir() {
        failed.push((path.to_owned(), "not a regular file or folder".into()));
        return;
    }
    // A folder reached twice (through a link) is a loop: walk it once.
    let Ok(real) = std::fs::canonicalize(path) else {
        failed.push((path.to_owned(), "cannot resolve the folder".into()));
        return;
    };
    if !seen_dirs.insert(real) {
        return;
    }
    let entries = match std::fs::read_dir(path) {
        Ok(e) => e,
        Err(e) => {
            failed.push((path.to_owned(), format!("cannot list the folder: {e}")));
            return;
        }
    };
    let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    children.sort();
    for child in children {
        let hidden = child
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if !hidden {
            walk(&child, files, failed, seen_dirs);
        }
    }
}

/// Reads, hashes and analyses one file, decoding under `budget`.
pub fn prepare(path: &Path, budget: &MemoryBudget) -> Result<(Prepared, Vec<u8>), Rejected> {
    prepare_held(path, budget, None).map(|(p, b)| (p, b.bytes))
}

/// [`prepare`], holding the file's size from `file_budget` (when given)
/// from before it is read until the returned bytes are dropped.
fn prepare_held(
    path: &Path,
    budget: &MemoryBudget,
    file_budget: Option<&std::sync::Arc<MemoryBudget>>,
) -> Result<(Prepared, FileBytes), Rejected> {
    let size = std::fs::metadata(path)
        .map_err(|e| Rejected(format!("cannot read it: {e}")))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(Rejected(format!(
            "{size} bytes is over the {} MiB limit",
            MAX_FILE_BYTES / (1024 * 1024)
        )));
    }
    // Taken before the decode's reservation, never after: one order, so
    // workers cannot wait on each other.
    let held = match file_budget {
        Some(b) => Some(b.reserve_owned(size).map_err(|e| Rejected(e.to_string()))?),
        None => None,
    };
    let bytes = std::fs::read(path).map_err(|e| Rejected(format!("cannot read it: {e}")))?;
    let analysis = analyze(path, &bytes, budget)?;
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    Ok((
        Prepared {
            path: path.to_owned(),
            sha256: hex(&digest),
            size: bytes.len() as u64,
            analysis,
        },
        FileBytes { bytes, _held: held },
    ))
}

/// One file's outcome: prepared (with its bytes) or rejected.
pub type PrepareResult = (PathBuf, Result<(Prepared, FileBytes), Rejected>);

/// Prepares `files` on `threads` workers; results arrive in any order. The
/// workers share `budget` for decoding, and [`FILE_BYTES_IN_FLIGHT`] for
/// file contents waiting to be recorded: a large image waits for memory
/// another one is using instead of adding to it.
pub fn prepare_all(
    files: Vec<PathBuf>,
    threads: usize,
    budget: std::sync::Arc<MemoryBudget>,
) -> mpsc::Receiver<PrepareResult> {
    let (tx, rx) = mpsc::sync_channel(threads);
    let queue = std::sync::Arc::new(std::sync::Mutex::new(files.into_iter()));
    let file_budget = std::sync::Arc::new(MemoryBudget::new(FILE_BYTES_IN_FLIGHT));
    for _ in 0..threads.max(1) {
        let tx = tx.clone();
        let queue = queue.clone();
        let budget = budget.clone();
        let file_budget = file_budget.clone();
        std::thread::spawn(move || {
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.next());
                let Some(path) = next else { return };
                // A decoder bug on one file must not take the import down.
                let result =
                    crate::store::guard::catch(|| prepare_held(&path, &budget, Some(&file_budget)))
                        .unwrap_or_else(|panic| {
                            Err(Rejected(format!("the decoder failed: {panic}")))
                        });
                if tx.send((path, result)).is_err() {
                    return;
                }
            }
        });
    }
    rx
}
