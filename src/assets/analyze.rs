//! What a file is: decoded under limits (a decompression bomb hits a limit,
//! not the memory), then measured: format, dimensions, orientation, aspect
//! class, size class, dominant palette (k-means in Lab) and a perceptual hash.

use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use kmeans_colors::get_kmeans_hamerly;
use palette::{FromColor, IntoColor, Lab, Srgb};
use std::io::Cursor;
use std::path::Path;

/// Largest width or height accepted.
pub const MAX_DIMENSION: u32 = 20_000;
/// Most memory a decode may allocate.
pub const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;

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
    /// 64-bit perceptual hash as 16 hex digits.
    pub phash: Option<String>,
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
    ("svg", "image/svg+xml"),
    ("mp4", "video/mp4"),
    ("mov", "video/quicktime"),
    ("wav", "audio/wav"),
    ("mp3", "audio/mpeg"),
];

pub fn analyze(path: &Path, bytes: &[u8]) -> Result<Analysis, Rejected> {
    if bytes.is_empty() {
        return Err(Rejected("empty file (0 bytes)".into()));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let guessed = image::guess_format(bytes).ok();
    let claimed = ImageFormat::from_extension(&ext);
    let format = match (guessed, claimed) {
        (Some(f), _) => f,
        (None, Some(f)) => {
            return Err(Rejected(format!(
                "not a readable {} file: its bytes do not start like one (corrupt or mislabelled)",
                f.extensions_str()
                    .first()
                    .copied()
                    .unwrap_or("image")
                    .to_uppercase()
            )));
        }
        (None, None) => {
            return match DOCUMENTS.iter().find(|(e, _)| *e == ext) {
                Some((e, mime)) => Ok(document(e, mime, bytes.len() as u64, path)),
                None => Err(Rejected(format!(
                    "unsupported file type{}: images (PNG, JPEG, GIF, WebP, BMP, TIFF) and {} are accepted",
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
    let image = decode(bytes, format)?;
    Ok(describe(&image, format, bytes.len() as u64, path))
}

/// Decodes with dimension and allocation limits.
pub fn decode(bytes: &[u8], format: ImageFormat) -> Result<DynamicImage, Rejected> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(l) => Rejected(format!(
            "too large to decode safely ({l}); the limits are {MAX_DIMENSION}x{MAX_DIMENSION} pixels and {} MiB",
            MAX_DECODE_BYTES / (1024 * 1024)
        )),
        other => Rejected(format!("cannot decode the image: {other}")),
    })
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
    }
}

fn describe(image: &DynamicImage, format: ImageFormat, size: u64, path: &Path) -> Analysis {
    let (w, h) = (image.width(), image.height());
    let name = format.extensions_str().first().copied().unwrap_or("image");
    let name = if name == "jpg" { "jpeg" } else { name };
    let mut tags = vec![
        name.to_owned(),
        orientation(w, h).to_owned(),
        size_class(size).to_owned(),
    ];
    if let Some(aspect) = aspect_class(w, h) {
        tags.push(aspect.to_owned());
    }
    tags.extend(name_words(path));
    tags.sort();
    tags.dedup();
    Analysis {
        format: name.to_owned(),
        mime: format.to_mime_type().to_owned(),
        kind: "image",
        width: Some(w),
        height: Some(h),
        tags,
        palette: dominant_palette(image, 5),
        phash: Some(perceptual_hash(image)),
    }
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

/// The common ratio within 3%, written `16:9`, `1:1`, `4:5`...
pub fn aspect_class(w: u32, h: u32) -> Option<&'static str> {
    if w == 0 || h == 0 {
        return None;
    }
    const RATIOS: [(&str, f64); 12] = [
        ("1:1", 1.0),
        ("16:9", 16.0 / 9.0),
        ("9:16", 9.0 / 16.0),
        ("4:3", 4.0 / 3.0),
        ("3:4", 3.0 / 4.0),
        ("3:2", 1.5),
        ("2:3", 2.0 / 3.0),
        ("4:5", 0.8),
        ("5:4", 1.25),
        ("2:1", 2.0),
        ("1.91:1", 1.91),
        ("3:1", 3.0),
    ];
    let r = f64::from(w) / f64::from(h);
    RATIOS
        .iter()
        .filter(|(_, x)| (r / x - 1.0).abs() < 0.03)
        .min_by(|a, b| (r / a.1 - 1.0).abs().total_cmp(&(r / b.1 - 1.0).abs()))
        .map(|(name, _)| *name)
}

pub fn size_class(bytes: u64) -> &'static str {
    match bytes {
        0..100_000 => "size-tiny",
        100_000..1_000_000 => "size-small",
        1_000_000..10_000_000 => "size-medium",
        _ => "size-large",
    }
}

/// Words of three letters or more from the file name, lowercased.
pub fn name_words(path: &Path) -> Vec<String> {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    stem.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3 && !w.chars().all(|c| c.is_ascii_digit()))
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
        assert_eq!(aspect_class(1000, 377), None);
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
        assert!(
            analyze(Path::new("x.png"), b"")
                .expect_err("empty")
                .0
                .contains("empty")
        );
        let err = analyze(Path::new("x.png"), b"definitely not a png").expect_err("bad");
        assert!(err.0.contains("PNG") && err.0.contains("corrupt"), "{err}");
        let truncated = &png(&two_colours(64, 64))[..60];
        assert!(analyze(Path::new("t.png"), truncated).is_err());
        let err = analyze(Path::new("notes.xyz"), b"hello").expect_err("unsupported");
        assert!(err.0.contains(".xyz"), "{err}");
        let doc = analyze(Path::new("brief.pdf"), b"%PDF-1.7").expect("pdf accepted");
        assert_eq!(doc.kind, "document");
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
        let err = analyze(Path::new("bomb.png"), &bytes).expect_err("bomb");
        assert!(err.0.contains("too large"), "{err}");
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
