//! What a file is: its header read first (a decompression bomb hits a limit,
//! not the memory), then a reduced copy decoded under the shared memory
//! budget and measured: format, dimensions and orientation as shown (EXIF
//! orientation applied), aspect class, size class, dominant palette (k-means
//! in Lab) and a perceptual hash.
//!
//! A truncated or corrupt image is refused, not imported with a `damaged`
//! tag: the master is what every preview and rendition is made from, a
//! damaged one would reach print and channels looking half grey, and the
//! person importing still has the source to export again. The batch goes
//! on; the refusal names the file and what is wrong with it.

use super::budget::MemoryBudget;
use super::decode::{self, Want};
use image::{DynamicImage, ImageFormat};
use kmeans_colors::get_kmeans_hamerly;
use palette::{FromColor, IntoColor, Lab, Srgb};
use std::path::Path;

pub use super::decode::MAX_DIMENSION;
/// Most memory the decodes of one import may hold at once, all files together.
pub const MAX_DECODE_BYTES: u64 = super::budget::DEFAULT_BUDGET_BYTES;
/// The shorter side of the copy that palette and hash are measured on: large
/// images are decoded at a reduced scale for analysis.
pub const ANALYSIS_SIDE: u32 = 256;
/// Luma standard deviation (0-255) under which an image counts as flat.
pub const FLAT_STDDEV: f64 = 2.0;

/// What analysis found.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub format: String,
    pub mime: String,
    pub kind: &'static str,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Tags that follow from the content.
    pub tags: Vec<String>,
    /// Dominant colours as `#rrggbb`, most frequent first.
    pub palette: Vec<String>,
    /// 64-bit perceptual hash as 16 hex digits; none for images with no
    /// structure to compare (flat, or a plain vertical gradient).
    pub phash: Option<String>,
    /// What a person should know about the file that did not stop the import.
    pub notes: Vec<String>,
}

/// Why a file was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub String);

/// Document types accepted without decoding.
const DOCUMENTS: &[(&str, &str)] = &[
    ("pdf", "application/pdf"),
    ("txt", "text/plain"),
    ("md", "text/markdown"),
    ("mp4", "video/mp4"),
    ("mov", "video/quicktime"),
    ("wav", "audio/wav"),
    ("mp3", "audio/mpeg"),
];

/// The file's name for messages.
fn label(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .unwrap_or_else(|| path.display().to_string())
}

/// Analyses one file, holding decoded pixels from `budget`.
pub fn analyze(path: &Path, bytes: &[u8], budget: &MemoryBudget) -> Result<Analysis, Rejected> {
    let label = label(path);
    if bytes.is_empty() {
        return Err(Rejected(format!("{label} is an empty file (0 bytes)")));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if super::svg::is_svg(&ext, bytes) {
        return super::svg::analyze(path, bytes, &label, budget);
    }
    let guessed = image::guess_format(bytes).ok();
    let claimed = ImageFormat::from_extension(&ext);
    let format = match (guessed, claimed) {
        (Some(f), _) => f,
        (None, Some(f)) => {
            return Err(Rejected(format!(
                "{label} is not a readable {} file: its bytes do not start like one (corrupt or mislabelled)",
                decode::format_name(f)
            )));
        }
        (None, None) => {
            return match DOCUMENTS.iter().find(|(e, _)| *e == ext) {
                Some((e, mime)) => Ok(document(e, mime, bytes.len() as u64, path)),
                None => Err(Rejected(format!(
                    "{label}: unsupported file type{}: images (PNG, JPEG, GIF, WebP, BMP, TIFF, SVG) and {} are accepted",
                    if ext.is_empty() {
                        String::new()
                    } else {
                        format!(" .{ext}")
                    },
                    DOCUMENTS
                        .iter()
                        .map(|(e, _)| *e)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
            };
        }
    };
    let header = decode::read_header(bytes, format, &label).map_err(Rejected)?;
    if header.width > MAX_DIMENSION || header.height > MAX_DIMENSION {
        return Err(Rejected(format!(
            "{label} is too large to decode safely ({}x{} pixels); the limit is {MAX_DIMENSION}x{MAX_DIMENSION}",
            header.width, header.height
        )));
    }
    // The copy only needs to be large enough for the palette and the hash.
    let side = ANALYSIS_SIDE;
    let want = Want::AtLeast(side.min(header.width), side.min(header.height));
    let small = decode::decode(bytes, format, want, budget, &label).map_err(Rejected)?;
    Ok(describe(
        &small,
        (header.width, header.height),
        format,
        bytes.len() as u64,
        path,
    ))
}

/// Decodes every pixel, upright, under a budget shared by every caller in
/// this process (previews decode one image at a time). `bytes` must be an
/// image `image` can read; SVG goes through [`preview_image`].
pub fn decode(bytes: &[u8], format: ImageFormat) -> Result<DynamicImage, Rejected> {
    decode::decode(bytes, format, Want::Full, shared_budget(), "the image").map_err(Rejected)
}

/// An upright copy at least `side` pixels on its shorter side (or the whole
/// image when smaller) for showing in a terminal, from any accepted image,
/// SVG included. `label` names the file in messages.
pub fn preview_image(bytes: &[u8], side: u32, label: &str) -> Result<DynamicImage, Rejected> {
    if super::svg::is_svg("", bytes) {
        return super::svg::rasterise(bytes, side, label).map_err(Rejected);
    }
    let format = image::guess_format(bytes)
        .map_err(|_| Rejected(format!("{label} is not an image Spoke can show")))?;
    decode::decode(
        bytes,
        format,
        Want::AtLeast(side, side),
        shared_budget(),
        label,
    )
    .map_err(Rejected)
}

/// The budget for decodes outside an import (previews, renditions).
pub fn shared_budget() -> &'static MemoryBudget {
    static BUDGET: std::sync::OnceLock<MemoryBudget> = std::sync::OnceLock::new();
    BUDGET.get_or_init(MemoryBudget::default)
}

fn document(ext: &str, mime: &str, size: u64, path: &Path) -> Analysis {
    let kind = if mime.starts_with("video/") {
        "video"
    } else if mime.starts_with("audio/") {
        "audio"
    } else {
        "document"
    };
    let mut tags = vec![ext.to_owned(), size_class(size).to_owned()];
    tags.extend(name_words(path));
    tags.sort();
    tags.dedup();
    Analysis {
        format: ext.to_owned(),
        mime: mime.to_owned(),
        kind,
        width: None,
        height: None,
        tags,
        palette: Vec::new(),
        phash: None,
        notes: Vec::new(),
    }
}

fn describe(
    image: &DynamicImage,
    (w, h): (u32, u32),
    format: ImageFormat,
    size: u64,
    path: &Path,
) -> Analysis {
    let name = format.extensions_str().first().copied().unwrap_or("image");
    let name = if name == "jpg" { "jpeg" } else { name };
    let mut notes = Vec::new();
    let phash = perceptual_hash_if_structured(image);
    if phash.is_none() {
        notes.push(format!(
            "{} has no shapes to compare (flat or nearly so), so it gets no perceptual hash and is never a near duplicate",
            label(path)
        ));
    }
    Analysis {
        format: name.to_owned(),
        mime: format.to_mime_type().to_owned(),
        kind: "image",
        width: Some(w),
        height: Some(h),
        tags: image_tags(name, (w, h), size, path),
        palette: dominant_palette(image, 5),
        phash,
        notes,
    }
}

/// Format, orientation, aspect, size class and file-name words, sorted.
pub fn image_tags(format: &str, (w, h): (u32, u32), size: u64, path: &Path) -> Vec<String> {
    let mut tags = vec![
        format.to_owned(),
        orientation(w, h).to_owned(),
        size_class(size).to_owned(),
    ];
    if let Some(aspect) = aspect_class(w, h) {
        tags.push(aspect.to_owned());
    }
    tags.extend(name_words(path));
    tags.sort();
    tags.dedup();
    tags
}

pub fn orientation(w: u32, h: u32) -> &'static str {
    let (w, h) = (u64::from(w), u64::from(h));
    if w * 100 > h * 105 {
        "landscape"
    } else if h * 100 > w * 105 {
        "portrait"
    } else {
        "square"
    }
}

/// Longer side over shorter side past which an image is a `panorama`
/// (either way round) rather than a ratio.
pub const PANORAMA_RATIO: f64 = 3.3;

/// The nearest common ratio within 4% (`16:9`, `1:1`, `4:5`...), or
/// `panorama` for strips much longer than they are wide; none for sizes
/// between common ratios, where any name would mislead.
pub fn aspect_class(w: u32, h: u32) -> Option<&'static str> {
    if w == 0 || h == 0 {
        return None;
    }
    const RATIOS: [(&str, f64); 16] = [
        ("1:1", 1.0),
        ("5:4", 1.25),
        ("4:5", 0.8),
        ("4:3", 4.0 / 3.0),
        ("3:4", 3.0 / 4.0),
        ("3:2", 1.5),
        ("2:3", 2.0 / 3.0),
        ("16:9", 16.0 / 9.0),
        ("9:16", 9.0 / 16.0),
        ("1.91:1", 1.91),
        ("2:1", 2.0),
        ("1:2", 0.5),
        ("21:9", 7.0 / 3.0),
        ("9:21", 3.0 / 7.0),
        ("3:1", 3.0),
        ("1:3", 1.0 / 3.0),
    ];
    let r = f64::from(w) / f64::from(h);
    if r.max(1.0 / r) > PANORAMA_RATIO {
        return Some("panorama");
    }
    RATIOS
        .iter()
        .map(|(name, x)| (*name, (r / x).ln().abs()))
        .filter(|(_, off)| *off < 0.04)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(name, _)| name)
}

pub fn size_class(bytes: u64) -> &'static str {
    match bytes {
        0..100_000 => "size-tiny",
        100_000..1_000_000 => "size-small",
        1_000_000..10_000_000 => "size-medium",
        _ => "size-large",
    }
}

/// Words of three letters or more from the file name, lowercased. Numbers
/// and sizes (`2024`, `1080x1350`) are left out: they are not subjects, and
/// a size in a name can contradict the real one.
pub fn name_words(path: &Path) -> Vec<String> {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let is_size = |w: &str| {
        w.to_ascii_lowercase()
            .split_once('x')
            .is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && a.chars().all(|c| c.is_ascii_digit())
                    && b.chars().all(|c| c.is_ascii_digit())
            })
    };
    stem.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3 && !w.chars().all(|c| c.is_ascii_digit()))
        .filter(|w| !is_size(w))
        .map(str::to_lowercase)
        .collect()
}

/// The `k` dominant colours by k-means in Lab on a thumbnail, most common first.
pub fn dominant_palette(image: &DynamicImage, k: usize) -> Vec<String> {
    let thumb = image.thumbnail(96, 96).to_rgb8();
    let lab: Vec<Lab> = thumb
        .pixels()
        .map(|p| {
            let rgb = Srgb::new(p[0], p[1], p[2]).into_format::<f32>();
            Lab::from_color(rgb)
        })
        .collect();
    if lab.is_empty() {
        return Vec::new();
    }
    let k = k.min(lab.len());
    // Fixed seed: the same image always gets the same palette.
    let result = get_kmeans_hamerly(k, 20, 1.0, false, &lab, 7);
    let mut counts = vec![0usize; result.centroids.len()];
    for &i in &result.indices {
        if let Some(c) = counts.get_mut(i as usize) {
            *c += 1;
        }
    }
    let mut order: Vec<usize> = (0..result.centroids.len())
        .filter(|&i| counts[i] > 0)
        .collect();
    order.sort_by(|&a, &b| counts[b].cmp(&counts[a]));
    let mut out: Vec<String> = order
        .into_iter()
        .map(|i| {
            let rgb: Srgb = result.centroids[i].into_color();
            let c = rgb.into_format::<u8>();
            format!("#{:02x}{:02x}{:02x}", c.red, c.green, c.blue)
        })
        .collect();
    out.dedup();
    out
}

/// The perceptual hash, unless the image has no structure for it to
/// describe: a flat image (luma standard deviation under [`FLAT_STDDEV`])
/// hashes to all zeros like every other flat image, whatever its colour,
/// and would be paired with all of them.
pub fn perceptual_hash_if_structured(image: &DynamicImage) -> Option<String> {
    if luma_stddev(image) < FLAT_STDDEV {
        return None;
    }
    Some(perceptual_hash(image))
}

/// Standard deviation of luma (0-255) on a small copy.
pub fn luma_stddev(image: &DynamicImage) -> f64 {
    let small = image.thumbnail(64, 64).to_luma8();
    let n = small.as_raw().len().max(1) as f64;
    let mean = small.as_raw().iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = small
        .as_raw()
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    var.sqrt()
}

/// A 64-bit gradient hash: near-identical images (resized, re-encoded) land
/// within a few bits of each other.
pub fn perceptual_hash(image: &DynamicImage) -> String {
    let hasher = image_hasher::HasherConfig::new()
        .hash_size(8, 8)
        .hash_alg(image_hasher::HashAlg::Gradient)
        .to_hasher();
    crate::model::ids::hex(hasher.hash_image(image).as_bytes())
}

/// Bits that differ between two hashes written as hex; `None` if malformed.
pub fn hamming(a: &str, b: &str) -> Option<u32> {
    let (a, b) = (
        u64::from_str_radix(a, 16).ok()?,
        u64::from_str_radix(b, 16).ok()?,
    );
    Some((a ^ b).count_ones())
}

/// CIEDE2000 distance from a colour to the nearest brand colour.
pub fn palette_distance(colour: &str, brand: &[String]) -> Option<f32> {
    use palette::color_difference::Ciede2000;
    let lab = parse_hex(colour)?;
    brand
        .iter()
        .filter_map(|b| parse_hex(b))
        .map(|b| lab.difference(b))
        .min_by(f32::total_cmp)
}

pub fn parse_hex(text: &str) -> Option<Lab> {
    let t = text.trim().trim_start_matches('#');
    if t.len() != 6 {
        return None;
    }
    let v = u32::from_str_radix(t, 16).ok()?;
    let rgb = Srgb::new((v >> 16) as u8, (v >> 8) as u8, v as u8).into_format::<f32>();
    Some(Lab::from_color(rgb))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Rgb, RgbImage};
    use std::io::Cursor;

    fn png(img: &RgbImage) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).expect("encode");
        out.into_inner()
    }

    /// Left half red, right half blue.
    fn two_colours(w: u32, h: u32) -> RgbImage {
        ImageBuffer::from_fn(w, h, |x, _| {
            if x < w / 2 {
                Rgb([220, 20, 20])
            } else {
                Rgb([20, 40, 220])
            }
        })
    }

    #[test]
    fn a_two_colour_landscape_gets_its_tags_and_both_colours() {
        let a = analyze(
            Path::new("spring-hero_v2.png"),
            &png(&two_colours(320, 180)),
            &MemoryBudget::default(),
        )
        .expect("ok");
        assert_eq!((a.width, a.height), (Some(320), Some(180)));
        for tag in ["png", "landscape", "16:9", "size-tiny", "spring", "hero"] {
            assert!(a.tags.contains(&tag.to_owned()), "{tag} in {:?}", a.tags);
        }
        let reds = a
            .palette
            .iter()
            .filter(|c| c.starts_with("#d") || c.starts_with("#e") || c.starts_with("#c"))
            .count();
        assert!(reds >= 1, "{:?}", a.palette);
        let near = |target: &str| {
            a.palette
                .iter()
                .any(|c| palette_distance(c, &[target.to_owned()]).is_some_and(|d| d < 5.0))
        };
        assert!(near("#dc1414") && near("#1428dc"), "{:?}", a.palette);
    }

    #[test]
    fn orientation_and_aspect_classes() {
        assert_eq!(orientation(1080, 1350), "portrait");
        assert_eq!(orientation(1000, 1020), "square");
        assert_eq!(aspect_class(1080, 1350), Some("4:5"));
        assert_eq!(aspect_class(1200, 627), Some("1.91:1"));
        // Between common ratios: no name rather than a wrong one.
        assert_eq!(aspect_class(1000, 377), None);
        // Rounded to the nearest common ratio within a few percent.
        assert_eq!(aspect_class(1918, 1080), Some("16:9"));
        assert_eq!(aspect_class(4032, 3024), Some("4:3"));
        assert_eq!(aspect_class(3024, 4032), Some("3:4"));
        assert_eq!(aspect_class(6000, 4000), Some("3:2"));
        assert_eq!(aspect_class(1000, 2000), Some("1:2"));
        // Long strips either way round.
        assert_eq!(aspect_class(20_000, 10), Some("panorama"));
        assert_eq!(aspect_class(10, 20_000), Some("panorama"));
        assert_eq!(aspect_class(3000, 800), Some("panorama"));
        assert_eq!(aspect_class(3000, 1000), Some("3:1"));
    }

    #[test]
    fn sizes_and_numbers_in_a_file_name_are_not_tags() {
        assert_eq!(
            name_words(Path::new("pano-20000x10_final-2024-v3.png")),
            vec!["pano", "final"]
        );
        assert_eq!(name_words(Path::new("HERO_1080X1350.jpg")), vec!["hero"]);
    }

    #[test]
    fn flat_images_get_no_hash_and_textured_ones_do() {
        let flat = DynamicImage::ImageRgb8(ImageBuffer::from_pixel(200, 100, Rgb([40, 90, 200])));
        assert_eq!(perceptual_hash_if_structured(&flat), None);
        // A level of noise is still flat.
        let near = DynamicImage::ImageRgb8(ImageBuffer::from_fn(200, 100, |x, y| {
            Rgb([100 + ((x + y) % 2) as u8, 100, 100])
        }));
        assert_eq!(perceptual_hash_if_structured(&near), None);
        let textured = DynamicImage::ImageRgb8(two_colours(200, 100));
        let varied: RgbImage = ImageBuffer::from_fn(200, 100, |x, y| {
            Rgb([((x * 7) ^ (y * 3)) as u8, (x % 256) as u8, 9])
        });
        assert!(perceptual_hash_if_structured(&textured).is_some());
        assert!(perceptual_hash_if_structured(&DynamicImage::ImageRgb8(varied)).is_some());
    }

    #[test]
    fn a_resized_reencoded_copy_is_near_and_an_unrelated_image_is_not() {
        let original: RgbImage = ImageBuffer::from_fn(400, 300, |x, y| {
            Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 251) as u8])
        });
        let a = perceptual_hash(&DynamicImage::ImageRgb8(original.clone()));
        let small = DynamicImage::ImageRgb8(original).resize(
            200,
            150,
            image::imageops::FilterType::Triangle,
        );
        let mut jpeg = Cursor::new(Vec::new());
        small
            .to_rgb8()
            .write_to(&mut jpeg, ImageFormat::Jpeg)
            .expect("jpeg");
        let copy = image::load_from_memory(&jpeg.into_inner()).expect("decode");
        let b = perceptual_hash(&copy);
        let other = perceptual_hash(&DynamicImage::ImageRgb8(two_colours(400, 300)));
        assert!(hamming(&a, &b).expect("hex") <= 8, "{a} vs {b}");
        assert!(hamming(&a, &other).expect("hex") > 12, "{a} vs {other}");
    }

    #[test]
    fn bad_files_are_rejected_with_a_reason() {
        let budget = MemoryBudget::default();
        assert!(
            analyze(Path::new("x.png"), b"", &budget)
                .expect_err("empty")
                .0
                .contains("empty")
        );
        let err = analyze(Path::new("x.png"), b"definitely not a png", &budget).expect_err("bad");
        assert!(err.0.contains("PNG") && err.0.contains("corrupt"), "{err}");
        let truncated = &png(&two_colours(64, 64))[..60];
        let err = analyze(Path::new("t.png"), truncated, &budget).expect_err("cut");
        assert!(err.0.starts_with("t.png "), "{err}");
        let err = analyze(Path::new("notes.xyz"), b"hello", &budget).expect_err("unsupported");
        assert!(err.0.contains(".xyz"), "{err}");
        let doc = analyze(Path::new("brief.pdf"), b"%PDF-1.7", &budget).expect("pdf accepted");
        assert_eq!(doc.kind, "document");
    }

    #[test]
    fn a_png_cut_in_half_is_refused_as_cut_short() {
        let whole = png(&ImageBuffer::from_fn(300, 200, |x, y| {
            Rgb([
                (x * 13 % 256) as u8,
                (y * 7 % 256) as u8,
                ((x ^ y) % 256) as u8,
            ])
        }));
        let err = analyze(
            Path::new("half.png"),
            &whole[..whole.len() / 2],
            &MemoryBudget::default(),
        )
        .expect_err("cut");
        assert!(
            err.0.contains("half.png") && err.0.contains("cut short"),
            "{err}"
        );
    }

    #[test]
    fn a_decompression_bomb_hits_the_limit() {
        // A valid PNG header claiming 100000 x 100000 pixels.
        let mut bytes = png(&two_colours(8, 8));
        bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        // Fix the IHDR CRC so the decoder gets as far as the dimensions.
        let crc = crc32(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        let err =
            analyze(Path::new("bomb.png"), &bytes, &MemoryBudget::default()).expect_err("bomb");
        assert!(err.0.contains("too large"), "{err}");
    }

    #[test]
    fn an_image_larger_than_the_whole_budget_is_refused_not_waited_on() {
        // BMP has no reduced decode: every pixel is held (3 MB here).
        let mut bmp = Cursor::new(Vec::new());
        two_colours(1000, 1000)
            .write_to(&mut bmp, ImageFormat::Bmp)
            .expect("bmp");
        let bytes = bmp.into_inner();
        let err = analyze(
            Path::new("big.bmp"),
            &bytes,
            &MemoryBudget::new(1024 * 1024),
        )
        .expect_err("over budget");
        assert!(
            err.0.contains("big.bmp") && err.0.contains("too large"),
            "{err}"
        );
        assert!(analyze(Path::new("big.bmp"), &bytes, &MemoryBudget::new(8 << 20)).is_ok());
        // A large PNG is analysed row by row and fits a small budget.
        let png = png(&two_colours(1000, 1000));
        assert!(analyze(Path::new("big.png"), &png, &MemoryBudget::new(1024 * 1024)).is_ok());
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn brand_palette_distance_is_small_for_brand_colours() {
        let brand = vec!["#0a84ff".to_owned(), "#ffffff".to_owned()];
        assert!(palette_distance("#0a84ff", &brand).expect("d") < 0.5);
        assert!(palette_distance("#ff2d55", &brand).expect("d") > 30.0);
    }
}
