//! Image previews, kept off the draw path: blobs are decoded into
//! thumbnails on their own threads, thumbnails are encoded for the terminal
//! at the exact cell size of the area that shows them, also off the draw
//! path, and `draw` only puts an encoded image on screen.

use ratatui::layout::Size;
use ratatui_image::Resize;
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::protocol::Protocol;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The longest side of a decoded thumbnail, in pixels: enough for a wide
/// pane at the usual cell sizes.
pub const THUMB_MAX_PX: u32 = 1600;

/// How many thumbnails are kept decoded, so returning to an asset is instant.
const THUMBS_KEPT: usize = 64;

/// A decoded thumbnail, shared between the app and the encoder.
#[derive(Clone)]
pub struct Thumb(pub Arc<image::DynamicImage>);

impl std::fmt::Debug for Thumb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Thumb({}x{})", self.0.width(), self.0.height())
    }
}

impl PartialEq for Thumb {
    fn eq(&self, other: &Thumb) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Why a blob has no preview; the panes word each case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviewError {
    /// The blob has not been fetched to this machine.
    NotHere,
    /// The bytes are not an image this build decodes.
    Undecodable(String),
}

impl std::fmt::Display for PreviewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PreviewError::NotHere => {
                f.write_str("not on this machine yet (spoke sync, or spoke preview fetches it)")
            }
            PreviewError::Undecodable(why) => write!(f, "no preview: {why}"),
        }
    }
}

/// An image encoded for the terminal at one size.
#[derive(Clone)]
pub struct Encoded(pub Arc<Protocol>);

impl std::fmt::Debug for Encoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Encoded")
    }
}

/// What the app knows about previews: decoded thumbnails, encodings by
/// size, failures, and what has been asked for and not answered yet.
#[derive(Default)]
pub struct Previews {
    /// Turns images into terminal graphics; `None` when previews are off.
    pub picker: Option<Picker>,
    /// Which graphics were chosen and why, for the help screen.
    pub why: String,
    thumbs: HashMap<String, Thumb>,
    failed: HashMap<String, PreviewError>,
    encoded: HashMap<(String, Size), Encoded>,
    decoding: std::collections::HashSet<String>,
    encoding: std::collections::HashSet<(String, Size)>,
}

/// What a pane shows where an image goes.
pub enum Shown<'a> {
    Image(&'a Protocol),
    /// Still being decoded or encoded.
    Loading,
    Failed(&'a PreviewError),
    /// `--graphics none`.
    Off,
}

impl Previews {
    pub fn new(picker: Option<Picker>) -> Previews {
        Previews {
            picker,
            ..Previews::default()
        }
    }

    pub fn enabled(&self) -> bool {
        self.picker.is_some()
    }

    /// The terminal's cells changed size in pixels (a font change): images
    /// are encoded again at the new size.
    pub fn set_cell_size(&mut self, width: u16, height: u16) {
        let Some(picker) = &self.picker else {
            return;
        };
        let now = picker.font_size();
        if (now.width, now.height) == (width, height) || width == 0 || height == 0 {
            return;
        }
        self.picker = Some(super::graphics::picker_for(
            picker.protocol_type(),
            (width, height),
        ));
        self.encoded.clear();
        self.encoding.clear();
    }

    /// The images a draw would place now, to tell when the screen must be
    /// cleared of graphics the terminal keeps apart from text.
    pub fn placed(&self, wanted: &[(String, Size)]) -> Vec<(String, Size)> {
        wanted
            .iter()
            .filter(|key| self.encoded.contains_key(*key))
            .cloned()
            .collect()
    }

    /// Whether images are drawn apart from the text cells (sixel, kitty,
    /// iTerm2), so that text written over them may not remove them.
    pub fn layered(&self) -> bool {
        self.picker
            .as_ref()
            .is_some_and(|p| p.protocol_type() != ratatui_image::picker::ProtocolType::Halfblocks)
    }

    pub fn shown(&self, sha: &str, size: Size) -> Shown<'_> {
        if self.picker.is_none() {
            return Shown::Off;
        }
        if let Some(e) = self.failed.get(sha) {
            return Shown::Failed(e);
        }
        match self.encoded.get(&(sha.to_owned(), size)) {
            Some(e) => Shown::Image(&e.0),
            None => Shown::Loading,
        }
    }

    /// The work needed so that each `(blob, size)` can be shown; encodings
    /// no longer wanted are dropped.
    pub fn want(&mut self, wanted: &[(String, Size)]) -> Vec<Job> {
        if self.picker.is_none() {
            return Vec::new();
        }
        self.encoded.retain(|key, _| wanted.contains(key));
        let mut effects = Vec::new();
        for (sha, size) in wanted {
            if size.width == 0 || size.height == 0 || self.failed.contains_key(sha) {
                continue;
            }
            let key = (sha.clone(), *size);
            if self.encoded.contains_key(&key) || self.encoding.contains(&key) {
                continue;
            }
            match self.thumbs.get(sha) {
                Some(thumb) => {
                    self.encoding.insert(key);
                    let Some(picker) = &self.picker else {
                        continue;
                    };
                    let cell = picker.font_size();
                    effects.push(Job::Encode {
                        sha: sha.clone(),
                        thumb: thumb.clone(),
                        size: *size,
                        protocol: picker.protocol_type(),
                        cell: (cell.width, cell.height),
                    });
                }
                None => {
                    if self.decoding.insert(sha.clone()) {
                        effects.push(Job::Decode(sha.clone()));
                    }
                }
            }
        }
        effects
    }

    pub fn decoded(&mut self, sha: String, image: Result<Thumb, PreviewError>) {
        self.decoding.remove(&sha);
        match image {
            Ok(thumb) => {
                if self.thumbs.len() >= THUMBS_KEPT {
                    self.thumbs.clear();
                }
                self.thumbs.insert(sha, thumb);
            }
            Err(e) => {
                self.failed.insert(sha, e);
            }
        }
    }

    pub fn encoded(&mut self, sha: String, size: Size, protocol: Result<Encoded, String>) {
        let key = (sha, size);
        self.encoding.remove(&key);
        match protocol {
            Ok(p) => {
                self.encoded.insert(key, p);
            }
            Err(why) => {
                self.failed.insert(key.0, PreviewError::Undecodable(why));
            }
        }
    }
}

/// Decodes a blob under the decoder limits and shrinks it to a thumbnail.
pub fn decode(home: &Path, sha: &str) -> Result<Thumb, PreviewError> {
    let path = crate::sync::blobs::local_blob_path(home, sha);
    crate::store::guard::catch(|| -> Result<Thumb, PreviewError> {
        let bytes = std::fs::read(&path).map_err(|_| PreviewError::NotHere)?;
        // Upright, SVG drawn, and decoded no larger than the preview needs.
        let img = crate::assets::analyze::preview_image(&bytes, THUMB_MAX_PX, "the image")
            .map_err(|e| PreviewError::Undecodable(e.0))?;
        Ok(Thumb(Arc::new(img.thumbnail(THUMB_MAX_PX, THUMB_MAX_PX))))
    })
    .unwrap_or_else(|panic| {
        Err(PreviewError::Undecodable(format!(
            "the decoder failed: {panic}"
        )))
    })
}

/// Encodes a thumbnail to fit `size` cells, keeping its aspect.
pub fn encode(picker: &Picker, thumb: &Thumb, size: Size) -> Result<Encoded, String> {
    picker
        .new_protocol((*thumb.0).clone(), size, Resize::Fit(None))
        .map(|p| Encoded(Arc::new(p)))
        .map_err(|e| format!("cannot draw the image here: {e}"))
}

/// Work on previews, for the preview threads.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    /// Decode and shrink a blob.
    Decode(String),
    /// Encode a thumbnail for an area of this many cells.
    Encode {
        sha: String,
        thumb: Thumb,
        size: Size,
        protocol: ProtocolType,
        cell: (u16, u16),
    },
}

/// A finished [`Job`].
#[derive(Debug, Clone)]
pub enum Done {
    Decoded {
        sha: String,
        image: Result<Thumb, PreviewError>,
    },
    Encoded {
        sha: String,
        size: Size,
        protocol: Result<Encoded, String>,
    },
}

/// Runs a job on the calling thread (the preview threads and tests use it).
pub fn run(home: &Path, job: Job) -> Done {
    match job {
        Job::Decode(sha) => {
            let image = decode(home, &sha);
            Done::Decoded { sha, image }
        }
        Job::Encode {
            sha,
            thumb,
            size,
            protocol,
            cell,
        } => {
            let picker = super::graphics::picker_for(protocol, cell);
            let protocol = encode(&picker, &thumb, size);
            Done::Encoded {
                sha,
                size,
                protocol,
            }
        }
    }
}
