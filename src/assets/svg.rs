//! SVG files: drawn with resvg (shapes, gradients, clips, filters; no
//! embedded bitmaps and no text, which would need a font stack) onto white,
//! so they get a palette, a perceptual hash, previews and renditions like
//! any other image. Text in an SVG is reported as not drawn.

use super::analyze::{
    Analysis, Rejected, dominant_palette, image_tags, perceptual_hash_if_structured,
};
use super::budget::MemoryBudget;
use image::{DynamicImage, RgbImage};
use resvg::{tiny_skia, usvg};
use std::path::Path;

/// Longest side a drawing is made at, whatever the SVG declares.
pub const MAX_RASTER_SIDE: u32 = super::decode::MAX_DIMENSION;

/// An SVG by its extension, or by its first bytes (a file without one).
pub fn is_svg(ext: &str, bytes: &[u8]) -> bool {
    if ext == "svg" {
        return true;
    }
    let head = &bytes[..bytes.len().min(4096)];
    let Ok(text) = std::str::from_utf8(head).or_else(|e| {
        // A multi-byte character cut by the 4 KiB window is fine.
        std::str::from_utf8(&head[..e.valid_up_to()])
    }) else {
        return false;
    };
    let text = text.trim_start_matches('\u{feff}').trim_start();
    (text.starts_with("<?xml") || text.starts_with("<svg") || text.starts_with("<!DOCTYPE svg"))
        && text.contains("<svg")
}

fn parse(bytes: &[u8], label: &str) -> Result<usvg::Tree, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| format!("{label} is not a readable SVG: it is not UTF-8 text"))?;
    // Entities are allowed (many editors write a DTD) but the node count is
    // bounded, so an entity bomb stops at the limit.
    let options = usvg::roxmltree::ParsingOptions {
        allow_dtd: true,
        nodes_limit: 1_000_000,
        ..Default::default()
    };
    let doc = usvg::roxmltree::Document::parse_with_options(text, options)
        .map_err(|e| format!("{label} is not a readable SVG: the XML is malformed ({e})"))?;
    usvg::Tree::from_xmltree(&doc, &usvg::Options::default()).map_err(|e| {
        format!(
            "{label} is not a readable SVG: {}",
            e.to_string().to_lowercase()
        )
    })
}

/// Whether the drawing leaves out text the file contains.
fn has_text(bytes: &[u8]) -> bool {
    bytes.windows(5).any(|w| w == b"<text")
}

/// The declared size in whole pixels, at least 1x1.
fn size(tree: &usvg::Tree) -> (u32, u32) {
    let s = tree.size();
    (
        (s.width().ceil() as u32).max(1),
        (s.height().ceil() as u32).max(1),
    )
}

/// Draws the tree scaled by `scale`, onto white.
fn draw(
    tree: &usvg::Tree,
    scale: f64,
    budget: &MemoryBudget,
    label: &str,
) -> Result<RgbImage, String> {
    let (w, h) = size(tree);
    let longest = f64::from(w.max(h)) * scale;
    let scale = if longest > f64::from(MAX_RASTER_SIDE) {
        scale * f64::from(MAX_RASTER_SIDE) / longest
    } else {
        scale
    };
    let pw = ((f64::from(w) * scale).round() as u32).max(1);
    let ph = ((f64::from(h) * scale).round() as u32).max(1);
    // The RGBA canvas and the RGB copy made from it.
    let _held = budget
        .reserve(u64::from(pw) * u64::from(ph) * 7)
        .map_err(|_| format!("{label} is too large to draw ({pw}x{ph} pixels)"))?;
    let mut pixmap = tiny_skia::Pixmap::new(pw, ph)
        .ok_or_else(|| format!("{label} cannot be drawn at {pw}x{ph} pixels"))?;
    resvg::render(
        tree,
        tiny_skia::Transform::from_scale(scale as f32, scale as f32),
        &mut pixmap.as_mut(),
    );
    // Premultiplied colour over white: c + 255 - alpha.
    let rgb: Vec<u8> = pixmap
        .data()
        .chunks_exact(4)
        .flat_map(|p| {
            let lift = 255 - p[3];
            [
                p[0].saturating_add(lift),
                p[1].saturating_add(lift),
                p[2].saturating_add(lift),
            ]
        })
        .collect();
    RgbImage::from_raw(pw, ph, rgb).ok_or_else(|| format!("{label} could not be drawn"))
}

/// Draws the SVG so that it covers at least `min_w`x`min_h` (keeping its
/// aspect; never past [`MAX_RASTER_SIDE`]).
pub fn rasterise_to_cover(
    bytes: &[u8],
    (min_w, min_h): (u32, u32),
    budget: &MemoryBudget,
    label: &str,
) -> Result<DynamicImage, String> {
    let tree = parse(bytes, label)?;
    let (w, h) = size(&tree);
    let scale = f64::max(
        f64::from(min_w) / f64::from(w),
        f64::from(min_h) / f64::from(h),
    );
    draw(&tree, scale, budget, label).map(DynamicImage::ImageRgb8)
}

/// A drawing for previews: at least `side` pixels on its shorter side.
pub fn rasterise(bytes: &[u8], side: u32, label: &str) -> Result<DynamicImage, String> {
    rasterise_to_cover(bytes, (side, side), super::analyze::shared_budget(), label)
}

/// The size the SVG declares, without drawing it.
pub fn declared_size(bytes: &[u8], label: &str) -> Result<(u32, u32), String> {
    parse(bytes, label).map(|t| size(&t))
}

/// Tags, palette and hash of an SVG, measured on a drawing of it.
pub fn analyze(
    path: &Path,
    bytes: &[u8],
    label: &str,
    budget: &MemoryBudget,
) -> Result<Analysis, Rejected> {
    let tree = parse(bytes, label).map_err(Rejected)?;
    let (w, h) = size(&tree);
    let side = f64::from(super::analyze::ANALYSIS_SIDE);
    let drawing = DynamicImage::ImageRgb8(
        draw(&tree, side / f64::from(w.min(h)), budget, label).map_err(Rejected)?,
    );
    let mut tags = image_tags("svg", (w, h), bytes.len() as u64, path);
    tags.push("vector".into());
    tags.sort();
    let mut notes = Vec::new();
    if has_text(bytes) {
        notes.push(format!(
            "{label} contains text, which previews and renditions do not draw (no fonts are bundled); convert the text to outlines to see it"
        ));
    }
    let phash = perceptual_hash_if_structured(&drawing);
    Ok(Analysis {
        format: "svg".into(),
        mime: "image/svg+xml".into(),
        kind: "image",
        width: Some(w),
        height: Some(h),
        tags,
        palette: dominant_palette(&drawing, 5),
        phash,
        notes,
    })
}
