//! Turning a file's bytes into upright pixels: the header is read first (size,
//! EXIF orientation), the memory the decode needs is reserved from a shared
//! budget, a JPEG's structure is checked so a cut-short file is refused
//! instead of being filled with grey, large JPEGs are decoded at a reduced
//! scale (DCT scaling) when only a smaller copy is needed, and decoder
//! failures become plain sentences that name the file.

use super::budget::MemoryBudget;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits};
use std::io::Cursor;

/// Largest width or height accepted.
pub const MAX_DIMENSION: u32 = 20_000;

/// How much of the image the caller needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Every pixel.
    Full,
    /// A copy whose width and height are each at least these (upright), or
    /// the full image when it is not larger. Scaling only ever halves, so
    /// the result can be up to twice as large as asked.
    AtLeast(u32, u32),
}

/// What the header says, before pixels are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Width and height as shown, after the orientation is applied.
    pub width: u32,
    pub height: u32,
    pub orientation: Orientation,
}

/// A short name for messages: `JPEG`, `PNG`...
pub fn format_name(format: ImageFormat) -> String {
    match format {
        ImageFormat::Jpeg => "JPEG".into(),
        other => other
            .extensions_str()
            .first()
            .copied()
            .unwrap_or("image")
            .to_uppercase(),
    }
}

/// Reads the size and orientation without decoding pixels. `label` names
/// the file in messages.
pub fn read_header(bytes: &[u8], format: ImageFormat, label: &str) -> Result<Header, String> {
    if format == ImageFormat::Jpeg {
        let info = jpeg::inspect(bytes).map_err(|d| d.sentence(label))?;
        return Ok(upright(info.width, info.height, info.orientation()));
    }
    let mut decoder = open(bytes, format, label)?;
    let (w, h) = decoder.dimensions();
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    Ok(upright(w, h, orientation))
}

/// Whether showing the image upright turns it a quarter.
fn swaps_axes(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

fn upright(w: u32, h: u32, orientation: Orientation) -> Header {
    let (width, height) = if swaps_axes(orientation) {
        (h, w)
    } else {
        (w, h)
    };
    Header {
        width,
        height,
        orientation,
    }
}

/// Decodes `bytes`, upright, holding what the decode needs from `budget`
/// while it runs. A JPEG that ends before its end marker is refused: the
/// decoder would otherwise fill the missing part with grey and the damage
/// would pass unseen into previews and renditions.
pub fn decode(
    bytes: &[u8],
    format: ImageFormat,
    want: Want,
    budget: &MemoryBudget,
    label: &str,
) -> Result<DynamicImage, String> {
    let mut image = match (format, want) {
        (ImageFormat::Jpeg, _) => decode_jpeg(bytes, want, budget, label)?,
        (ImageFormat::Png, Want::AtLeast(w, h)) => match png_reduced(bytes, w, h, budget, label)? {
            Some(small) => small,
            None => decode_other(bytes, format, budget, label)?,
        },
        _ => decode_other(bytes, format, budget, label)?,
    };
    if let Want::AtLeast(w, h) = want
        && (image.width() >= w.saturating_mul(2) && image.height() >= h.saturating_mul(2))
    {
        image = shrink_to_at_least(&image, w, h);
    }
    Ok(image)
}

/// The smallest copy keeping the aspect whose sides are both at least
/// `w`x`h` (the full image when it is not larger).
fn shrink_to_at_least(image: &DynamicImage, w: u32, h: u32) -> DynamicImage {
    let scale = f64::max(
        f64::from(w) / f64::from(image.width()),
        f64::from(h) / f64::from(image.height()),
    );
    if scale >= 1.0 {
        return image.clone();
    }
    let nw = ((f64::from(image.width()) * scale).ceil() as u32).max(1);
    let nh = ((f64::from(image.height()) * scale).ceil() as u32).max(1);
    // Box averaging straight into the small copy: no full-size intermediate.
    image.thumbnail_exact(nw, nh)
}

fn open<'a>(
    bytes: &'a [u8],
    format: ImageFormat,
    label: &str,
) -> Result<impl ImageDecoder + 'a, String> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    // The budget, not the decoder's own cap, bounds the memory.
    limits.max_alloc = None;
    reader.limits(limits);
    reader
        .into_decoder()
        .map_err(|e| plain_error(&e, format, label))
}

fn decode_other(
    bytes: &[u8],
    format: ImageFormat,
    budget: &MemoryBudget,
    label: &str,
) -> Result<DynamicImage, String> {
    let mut decoder = open(bytes, format, label)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    // The decoded pixels and an eighth more for the decoder's own buffers.
    let total = decoder.total_bytes();
    let needed = total.saturating_add(total / 8);
    let _held = budget
        .reserve(needed)
        .map_err(|_| too_large(label, decoder.dimensions(), budget))?;
    let mut image =
        DynamicImage::from_decoder(decoder).map_err(|e| plain_error(&e, format, label))?;
    image.apply_orientation(orientation);
    Ok(image)
}

fn decode_jpeg(
    bytes: &[u8],
    want: Want,
    budget: &MemoryBudget,
    label: &str,
) -> Result<DynamicImage, String> {
    let info = jpeg::inspect(bytes).map_err(|d| d.sentence(label))?;
    if info.width > MAX_DIMENSION || info.height > MAX_DIMENSION {
        return Err(too_large(label, (info.width, info.height), budget));
    }
    let orientation = info.orientation();
    // The wanted size in the file's own axes.
    let scale = match want {
        Want::Full => 1,
        Want::AtLeast(w, h) => {
            let (sw, sh) = if swaps_axes(orientation) {
                (h, w)
            } else {
                (w, h)
            };
            jpeg::dct_scale(info.width, info.height, sw, sh)
        }
    };
    let pixels = u64::from(info.width) * u64::from(info.height);
    let mut image = if scale > 1 && info.components != 4 {
        let out = pixels / u64::from(scale * scale) * 3;
        // Progressive files keep every coefficient (two bytes each) until
        // the last scan, whatever the output size.
        let working = if info.progressive {
            pixels * u64::from(info.components) * 2
        } else {
            out
        };
        let _held = budget
            .reserve(out + working)
            .map_err(|_| too_large(label, (info.width, info.height), budget))?;
        jpeg::decode_scaled(bytes, info.width / scale, info.height / scale)
            .map_err(|e| damaged(label, "JPEG", &e))?
    } else {
        let _held = budget
            .reserve(pixels * u64::from(info.components.max(3)) * 2)
            .map_err(|_| too_large(label, (info.width, info.height), budget))?;
        let decoder = open(bytes, ImageFormat::Jpeg, label)?;
        DynamicImage::from_decoder(decoder)
            .map_err(|e| plain_error(&e, ImageFormat::Jpeg, label))?
    };
    image.apply_orientation(orientation);
    Ok(image)
}

fn too_large(label: &str, (w, h): (u32, u32), budget: &MemoryBudget) -> String {
    format!(
        "{label} is too large to decode safely ({w}x{h} pixels); the limits are \
         {MAX_DIMENSION}x{MAX_DIMENSION} pixels and {} MiB of decoded image",
        budget.total() / (1024 * 1024)
    )
}

fn damaged(label: &str, format: &str, detail: &str) -> String {
    let detail = readable(detail);
    if detail.is_empty() {
        format!("{label} is damaged: its {format} data cannot be decoded")
    } else {
        format!("{label} is damaged: its {format} data cannot be decoded ({detail})")
    }
}

/// A decoder's detail when it reads as words, nothing when it carries
/// internal names or structure dumps (`ChunkType { .. }`, `Foo::Bar`).
fn readable(detail: &str) -> String {
    let d = detail.trim().trim_end_matches('.');
    let looks_internal = d.contains(['{', '}', '`']) || d.contains("::") || d.len() > 120;
    if looks_internal {
        String::new()
    } else {
        d.to_lowercase()
    }
}

/// A decoder error as a sentence for a person: what is wrong with which file.
pub fn plain_error(error: &ImageError, format: ImageFormat, label: &str) -> String {
    let name = format_name(format);
    match error {
        ImageError::Limits(_) => format!(
            "{label} is too large to decode safely; the limit is {MAX_DIMENSION}x{MAX_DIMENSION} pixels"
        ),
        ImageError::Unsupported(u) => {
            let detail = readable(&u.to_string());
            if detail.is_empty() {
                format!("{label} uses a kind of {name} that Spoke cannot read")
            } else {
                format!("{label} uses a kind of {name} that Spoke cannot read ({detail})")
            }
        }
        ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            cut_short(label, &name)
        }
        ImageError::IoError(e) => format!("{label} could not be read: {e}"),
        ImageError::Decoding(d) => {
            let text = d.to_string();
            // Drop the "Format error decoding Png:" prefix the crate adds.
            let detail = text.split_once(':').map_or(text.as_str(), |(_, d)| d);
            decoding_sentence(detail, &name, label)
        }
        ImageError::Parameter(_) | ImageError::Encoding(_) => damaged(label, &name, ""),
    }
}

/// A decoder's complaint about the data, as a sentence.
fn decoding_sentence(detail: &str, name: &str, label: &str) -> String {
    let lower = detail.to_lowercase();
    if lower.contains("crc") || lower.contains("checksum") {
        format!("{label} is damaged: a checksum inside the {name} does not match its data")
    } else if lower.contains("eof")
        || lower.contains("end of file")
        || lower.contains("no more data")
        || lower.contains("unexpected end")
        || lower.contains("truncated")
    {
        cut_short(label, name)
    } else {
        damaged(label, name, detail)
    }
}

fn png_sentence(error: &png::DecodingError, label: &str) -> String {
    match error {
        png::DecodingError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            cut_short(label, "PNG")
        }
        png::DecodingError::LimitsExceeded => format!("{label} is too large to decode safely"),
        other => decoding_sentence(&other.to_string(), "PNG", label),
    }
}

/// Decodes a large PNG row by row straight into a copy shrunk by a whole
/// factor (each output pixel the mean of a square of input pixels), so
/// analysing an 11000x11000 image holds a few rows, not 363 MB. `None` when
/// the image is not large enough to be worth it, or is interlaced (its rows
/// arrive in seven passes).
fn png_reduced(
    bytes: &[u8],
    want_w: u32,
    want_h: u32,
    budget: &MemoryBudget,
    label: &str,
) -> Result<Option<DynamicImage>, String> {
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(|e| png_sentence(&e, label))?;
    let info = reader.info();
    let (w, h) = (info.width, info.height);
    if w > MAX_DIMENSION || h > MAX_DIMENSION {
        return Err(too_large(label, (w, h), budget));
    }
    let orientation = info
        .exif_metadata
        .as_deref()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let (want_w, want_h) = if swaps_axes(orientation) {
        (want_h, want_w)
    } else {
        (want_w, want_h)
    };
    let factor = (w / want_w.max(1)).min(h / want_h.max(1));
    if factor < 2 || info.interlaced {
        return Ok(None);
    }
    let channels = match reader.output_color_type().0 {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        // Palettes are expanded by the transformation above.
        png::ColorType::Indexed => return Ok(None),
    };
    let (ow, oh) = (w / factor, h / factor);
    let out_len = ow as usize * oh as usize * 4;
    // Output, sums for one output row, and the decoder's two rows.
    let _held = budget
        .reserve(out_len as u64 + u64::from(ow) * 16 + u64::from(w) * 8 * 2)
        .map_err(|_| too_large(label, (w, h), budget))?;
    let mut out = Vec::with_capacity(out_len);
    let mut sums = vec![0u32; ow as usize * 4];
    let area = factor * factor;
    for y in 0..oh * factor {
        let row = reader
            .next_row()
            .map_err(|e| png_sentence(&e, label))?
            .ok_or_else(|| cut_short(label, "PNG"))?;
        let data = row.data();
        for (x, sum) in sums.chunks_exact_mut(4).enumerate() {
            let start = x * factor as usize * channels;
            let Some(block) = data.get(start..start + factor as usize * channels) else {
                break;
            };
            for px in block.chunks_exact(channels) {
                let rgba = match channels {
                    1 => [px[0], px[0], px[0], 255],
                    2 => [px[0], px[0], px[0], px[1]],
                    3 => [px[0], px[1], px[2], 255],
                    _ => [px[0], px[1], px[2], px[3]],
                };
                for (s, v) in sum.iter_mut().zip(rgba) {
                    *s += u32::from(v);
                }
            }
        }
        if (y + 1) % factor == 0 {
            out.extend(sums.iter().map(|&s| (s / area) as u8));
            sums.iter_mut().for_each(|s| *s = 0);
        }
    }
    // Read the rest, so a file cut short or damaged further on is caught.
    while reader
        .next_row()
        .map_err(|e| png_sentence(&e, label))?
        .is_some()
    {}
    let image = image::RgbaImage::from_raw(ow, oh, out)
        .ok_or_else(|| damaged(label, "PNG", "the rows do not add up to the image"))?;
    let mut image = if channels == 2 || channels == 4 {
        DynamicImage::ImageRgba8(image)
    } else {
        DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(image).to_rgb8())
    };
    image.apply_orientation(orientation);
    Ok(Some(image))
}

fn cut_short(label: &str, format: &str) -> String {
    format!(
        "{label} is cut short: its {format} data ends before the image is complete \
         (an interrupted copy or download?)"
    )
}

/// The JPEG marker walk (structure, size, EXIF, completeness) and decoding
/// at a reduced scale.
pub mod jpeg {
    use image::metadata::Orientation;

    /// What the markers say.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Info<'a> {
        pub width: u32,
        pub height: u32,
        pub components: u8,
        pub progressive: bool,
        /// The EXIF block from its TIFF header on.
        pub exif: Option<&'a [u8]>,
    }

    impl Info<'_> {
        pub fn orientation(&self) -> Orientation {
            self.exif
                .and_then(Orientation::from_exif_chunk)
                .unwrap_or(Orientation::NoTransforms)
        }
    }

    /// Why the walk stopped.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Damage {
        NotJpeg,
        /// The data ends before the end-of-image marker.
        CutShort {
            at: usize,
            of_segment: bool,
        },
        NoFrame,
    }

    impl Damage {
        pub fn sentence(&self, label: &str) -> String {
            match self {
                Damage::NotJpeg => {
                    format!("{label} is not a JPEG: it does not start with a JPEG marker")
                }
                Damage::CutShort { .. } => super::cut_short(label, "JPEG"),
                Damage::NoFrame => format!("{label} is damaged: its JPEG data has no image frame"),
            }
        }
    }

    fn be16(bytes: &[u8], at: usize) -> Option<u16> {
        Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
    }

    /// Walks the markers from start-of-image to end-of-image. Segments are
    /// skipped by their lengths (so a thumbnail inside the EXIF block, with
    /// its own end marker, is never mistaken for the end), and entropy-coded
    /// data is scanned for the next marker. Bytes after the end marker
    /// (camera trailers) are ignored.
    pub fn inspect(bytes: &[u8]) -> Result<Info<'_>, Damage> {
        if bytes.get(..2) != Some(&[0xFF, 0xD8]) {
            return Err(Damage::NotJpeg);
        }
        let mut info = Info {
            width: 0,
            height: 0,
            components: 0,
            progressive: false,
            exif: None,
        };
        let mut frame = false;
        let mut i = 2;
        loop {
            // Find the next marker, skipping stray bytes and 0xFF fill.
            while i < bytes.len() && bytes[i] != 0xFF {
                i += 1;
            }
            while i < bytes.len() && bytes[i] == 0xFF {
                i += 1;
            }
            let Some(&marker) = bytes.get(i) else {
                return Err(Damage::CutShort {
                    at: i,
                    of_segment: false,
                });
            };
            i += 1;
            match marker {
                0xD9 => {
                    return if frame {
                        Ok(info)
                    } else {
                        Err(Damage::NoFrame)
                    };
                }
                0xD0..=0xD7 | 0x01 | 0x00 => continue,
                _ => {}
            }
            let len = usize::from(be16(bytes, i).ok_or(Damage::CutShort {
                at: i,
                of_segment: true,
            })?);
            let end = i + len;
            if len < 2 || end > bytes.len() {
                return Err(Damage::CutShort {
                    at: i,
                    of_segment: true,
                });
            }
            let segment = &bytes[i + 2..end];
            match marker {
                // Start of frame (not DHT, JPG or DAC, which share the range).
                0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) && segment.len() >= 6 => {
                    info.height = u32::from(be16(segment, 1).unwrap_or(0));
                    info.width = u32::from(be16(segment, 3).unwrap_or(0));
                    info.components = segment[5];
                    info.progressive = matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE);
                    frame = info.width > 0 && info.height > 0;
                }
                0xE1 if info.exif.is_none() && segment.starts_with(b"Exif\0\0") => {
                    info.exif = Some(&segment[6..]);
                }
                _ => {}
            }
            i = end;
            if marker == 0xDA {
                // Entropy-coded data: 0xFF is followed by 0x00 (a stuffed
                // byte) or a restart marker; anything else is a marker.
                loop {
                    match (bytes.get(i), bytes.get(i + 1)) {
                        (Some(0xFF), Some(0x00 | 0xD0..=0xD7 | 0xFF)) => i += 1,
                        (Some(0xFF), Some(_)) => break,
                        (Some(_), _) => i += 1,
                        (None, _) => {
                            return Err(Damage::CutShort {
                                at: i,
                                of_segment: false,
                            });
                        }
                    }
                }
            }
        }
    }

    /// The largest DCT scale factor (1, 2, 4 or 8) that keeps both sides at
    /// least `want_w`x`want_h`.
    pub fn dct_scale(width: u32, height: u32, want_w: u32, want_h: u32) -> u32 {
        [8, 4, 2]
            .into_iter()
            .find(|&s| width / s >= want_w && height / s >= want_h)
            .unwrap_or(1)
    }

    /// Decodes with the inverse DCT at a reduced size (one eighth, a
    /// quarter or a half), which costs a fraction of a full decode and
    /// averages each block as a good downscale would.
    pub fn decode_scaled(
        bytes: &[u8],
        width: u32,
        height: u32,
    ) -> Result<image::DynamicImage, String> {
        let mut decoder = jpeg_decoder::Decoder::new(std::io::Cursor::new(bytes));
        decoder.read_info().map_err(|e| e.to_string())?;
        let (w, h) = decoder
            .scale(
                u16::try_from(width).unwrap_or(u16::MAX),
                u16::try_from(height).unwrap_or(u16::MAX),
            )
            .map_err(|e| e.to_string())?;
        let pixels = decoder.decode().map_err(|e| e.to_string())?;
        let format = decoder
            .info()
            .map(|i| i.pixel_format)
            .ok_or("no image information")?;
        let (w, h) = (u32::from(w), u32::from(h));
        let image = match format {
            jpeg_decoder::PixelFormat::RGB24 => {
                image::RgbImage::from_raw(w, h, pixels).map(image::DynamicImage::ImageRgb8)
            }
            jpeg_decoder::PixelFormat::L8 => {
                image::GrayImage::from_raw(w, h, pixels).map(image::DynamicImage::ImageLuma8)
            }
            jpeg_decoder::PixelFormat::L16 => {
                let wide: Vec<u16> = pixels
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                image::ImageBuffer::from_raw(w, h, wide).map(image::DynamicImage::ImageLuma16)
            }
            jpeg_decoder::PixelFormat::CMYK32 => None,
        };
        image.ok_or_else(|| "the decoded size does not match the header".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::jpeg::{Damage, dct_scale, inspect};
    use super::*;
    use image::{Rgb, RgbImage};

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Jpeg).expect("jpeg");
        out.into_inner()
    }

    /// Inserts an APP1 segment holding a whole small JPEG (as an EXIF
    /// thumbnail would be), end marker included.
    fn with_embedded_thumbnail(main: &[u8]) -> Vec<u8> {
        let thumb = jpeg(16, 16);
        let mut out = main[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((2 + 6 + thumb.len()) as u16).to_be_bytes());
        out.extend_from_slice(b"Thumb\0");
        out.extend_from_slice(&thumb);
        out.extend_from_slice(&main[2..]);
        out
    }

    #[test]
    fn the_marker_walk_finds_the_size_and_the_real_end() {
        let whole = with_embedded_thumbnail(&jpeg(320, 200));
        let info = inspect(&whole).expect("complete");
        assert_eq!((info.width, info.height, info.components), (320, 200, 3));
        assert!(!info.progressive);
        // Cut anywhere after the thumbnail's own end marker: still cut short.
        for keep in [whole.len() / 2, whole.len() - 2, 700] {
            assert!(
                matches!(inspect(&whole[..keep]), Err(Damage::CutShort { .. })),
                "kept {keep} of {}",
                whole.len()
            );
        }
        assert_eq!(inspect(b"GIF89a"), Err(Damage::NotJpeg));
    }

    #[test]
    fn a_reduced_jpeg_decode_keeps_the_aspect_and_the_minimum_size() {
        assert_eq!(dct_scale(6000, 4000, 600, 200), 8);
        assert_eq!(dct_scale(6000, 4000, 1200, 1200), 2);
        assert_eq!(dct_scale(6000, 4000, 4500, 3000), 1);
        let bytes = jpeg(1600, 1200);
        let budget = MemoryBudget::default();
        let small = decode(
            &bytes,
            ImageFormat::Jpeg,
            Want::AtLeast(300, 200),
            &budget,
            "x",
        )
        .expect("decode");
        // An eighth would be 200x150, under 200 high: a quarter it is.
        assert_eq!((small.width(), small.height()), (400, 300));
        let full = decode(&bytes, ImageFormat::Jpeg, Want::Full, &budget, "x").expect("decode");
        assert_eq!((full.width(), full.height()), (1600, 1200));
        assert_eq!(budget.available(), budget.total());
    }

    #[test]
    fn decoder_errors_read_as_sentences() {
        let err = ImageError::IoError(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "eof",
        ));
        let text = plain_error(&err, ImageFormat::Png, "a.png");
        assert!(text.starts_with("a.png is cut short"), "{text}");
        assert_eq!(readable("ChunkType { type: IHDR, critical: true }"), "");
        assert_eq!(readable("Invalid signature."), "invalid signature");
    }
}
