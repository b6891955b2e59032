//! Finding and preparing files to import: folders are walked (symlink loops
//! are caught), each file is read, hashed and analysed. Preparation runs on
//! worker threads; recording the result is the caller's (one commit a file).

use super::analyze::{Analysis, Rejected, analyze};
use crate::model::ids::hex;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// Largest file imported (blobs on the relay default to the same limit).
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

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

/// Reads, hashes and analyses one file.
pub fn prepare(path: &Path) -> Result<(Prepared, Vec<u8>), Rejected> {
    let size = std::fs::metadata(path)
        .map_err(|e| Rejected(format!("cannot read it: {e}")))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(Rejected(format!(
            "{size} bytes is over the {} MiB limit",
            MAX_FILE_BYTES / (1024 * 1024)
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| Rejected(format!("cannot read it: {e}")))?;
    let analysis = analyze(path, &bytes)?;
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    Ok((
        Prepared {
            path: path.to_owned(),
            sha256: hex(&digest),
            size: bytes.len() as u64,
            analysis,
        },
        bytes,
    ))
}

/// One file's outcome: prepared (with its bytes) or rejected.
pub type PrepareResult = (PathBuf, Result<(Prepared, Vec<u8>), Rejected>);

/// Prepares `files` on `threads` workers; results arrive in any order.
pub fn prepare_all(files: Vec<PathBuf>, threads: usize) -> mpsc::Receiver<PrepareResult> {
    let (tx, rx) = mpsc::sync_channel(threads * 2);
    let queue = std::sync::Arc::new(std::sync::Mutex::new(files.into_iter()));
    for _ in 0..threads.max(1) {
        let tx = tx.clone();
        let queue = queue.clone();
        std::thread::spawn(move || {
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.next());
                let Some(path) = next else { return };
                // A decoder bug on one file must not take the import down.
                let result = crate::store::guard::catch(|| prepare(&path))
                    .unwrap_or_else(|panic| Err(Rejected(format!("the decoder failed: {panic}"))));
                if tx.send((path, result)).is_err() {
                    return;
                }
            }
        });
    }
    rx
}
