//! Renditions: one master turned into the sizes each channel needs. `fill`
//! crops to the exact size around a focal point (given, or where the image
//! has the most detail); `fit` keeps everything and pads with a brand
//! colour. A byte budget is met by searching the JPEG quality.
//!
//! The master is decoded once per scale the presets need: a JPEG is decoded
//! at a half, a quarter or an eighth of its size (DCT scaling) for presets
//! much smaller than it, and presets render two at a time.

use super::budget::MemoryBudget;
use super::decode::{self, Want};
use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, GrayImage, ImageEncoder, ImageFormat, RgbImage};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Fill,
    Fit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Jpeg,
    Png,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Preset {
    #[serde(skip)]
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub mode: Mode,
    #[serde(default)]
    pub max_kb: Option<u64>,
    #[serde(default)]
    pub format: Format,
}

/// The presets shipped with Spoke, in name order.
pub fn shipped_presets() -> Vec<Preset> {
    parse_presets(include_str!("presets.toml")).unwrap_or_default()
}

pub fn parse_presets(text: &str) -> Result<Vec<Preset>, String> {
    let table: BTreeMap<String, Preset> = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (name, mut p) in table {
        if p.width == 0 || p.height == 0 || p.width > 20_000 || p.height > 20_000 {
            return Err(format!(
                "preset {name}: size {}x{} is out of range",
                p.width, p.height
            ));
        }
        p.name = name;
        out.push(p);
    }
    Ok(out)
}

/// Enlargement past which a preset is reported (and refused with
/// `--no-upscale`): beyond a quarter, softness shows.
pub const UPSCALE_WARN_FACTOR: f64 = 1.25;

/// How far a preset enlarges a master of `w`x`h` (upright): over 1 it
/// enlarges, under 1 it shrinks.
pub fn enlargement(preset: &Preset, (w, h): (u32, u32)) -> f64 {
    let sx = f64::from(preset.width) / f64::from(w.max(1));
    let sy = f64::from(preset.height) / f64::from(h.max(1));
    match preset.mode {
        // The crop keeps one axis whole: the larger factor applies.
        Mode::Fill => sx.max(sy),
        Mode::Fit => sx.min(sy),
    }
}

/// A preset that enlarges its master beyond [`UPSCALE_WARN_FACTOR`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Upscale {
    pub preset: String,
    pub factor: f64,
    pub master: (u32, u32),
    pub size: (u32, u32),
}

impl std::fmt::Display for Upscale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} enlarges the {}x{} master {:.1}x to make {}x{}; it will look soft",
            self.preset, self.master.0, self.master.1, self.factor, self.size.0, self.size.1
        )
    }
}

/// The presets that enlarge a master of `size` past the threshold.
pub fn upscales(presets: &[Preset], size: (u32, u32)) -> Vec<Upscale> {
    presets
        .iter()
        .filter_map(|p| {
            let factor = enlargement(p, size);
            (factor > UPSCALE_WARN_FACTOR).then(|| Upscale {
                preset: p.name.clone(),
                factor,
                master: size,
                size: (p.width, p.height),
            })
        })
        .collect()
}

/// The master of a rendition run.
#[derive(Debug, Clone, Copy)]
pub enum Master<'a> {
    Raster {
        bytes: &'a [u8],
        format: ImageFormat,
    },
    Svg {
        bytes: &'a [u8],
    },
}

/// How many times smaller than the master a preset's source may be decoded
/// (1, 2, 4 or 8): the reduced source must stay at least as large as the
/// output. The reduced decode averages each block of the master, so the
/// final resize starts from a properly filtered image.
fn load_shrink(factor: f64) -> u32 {
    [8, 4, 2]
        .into_iter()
        .find(|&s| f64::from(s) * factor <= 1.0)
        .unwrap_or(1)
}

/// One decoded source shared by the presets that use the same scale.
struct Source {
    shrink: u32,
    image: OnceLock<Result<RgbImage, String>>,
}

/// Renders every preset from `master`. The master is decoded once per
/// scale the presets need (a JPEG at a reduced scale for presets much
/// smaller than it), and presets render on two threads, largest first.
/// Results come back in the order of `presets`.
pub fn render_all(
    master: Master<'_>,
    presets: &[Preset],
    focal: Option<(f32, f32)>,
    pad: [u8; 3],
    budget: &MemoryBudget,
    label: &str,
) -> Result<Vec<Result<Vec<u8>, String>>, String> {
    let size = match master {
        Master::Raster { bytes, format } => {
            let h = decode::read_header(bytes, format, label)?;
            (h.width, h.height)
        }
        Master::Svg { bytes } => super::svg::declared_size(bytes, label)?,
    };
    // Which source each preset renders from: the full image, or one
    // reduced decode shared by every preset much smaller than the master
    // (each reduced decode still reads the whole file, so one is cheaper
    // than one per scale).
    let reduced = |p: &Preset| match master {
        Master::Raster {
            format: ImageFormat::Jpeg,
            ..
        } => load_shrink(enlargement(p, size)),
        // Other formats have no cheap reduced decode; an SVG is drawn once
        // at the size the largest preset needs.
        _ => 1,
    };
    let shared_shrink = presets
        .iter()
        .map(reduced)
        .filter(|&s| s > 1)
        .min()
        .unwrap_or(1);
    let shrink_of = |p: &Preset| if reduced(p) > 1 { shared_shrink } else { 1 };
    let mut shrinks: Vec<u32> = presets.iter().map(shrink_of).collect();
    shrinks.sort_unstable();
    shrinks.dedup();
    let sources: Vec<Source> = shrinks
        .iter()
        .map(|&shrink| Source {
            shrink,
            image: OnceLock::new(),
        })
        .collect();
    // The focal point comes from the smallest source, whichever thread asks
    // first, so every preset of a run (and every run) crops around the same
    // point.
    let focal_found: OnceLock<Result<(f32, f32), String>> = OnceLock::new();
    let source_of = |p: &Preset| {
        let s = shrink_of(p);
        sources.iter().find(|src| src.shrink == s)
    };
    let load = |src: &Source| -> Result<RgbImage, String> {
        match master {
            Master::Raster { bytes, format } => {
                let want = if src.shrink == 1 {
                    Want::Full
                } else {
                    Want::AtLeast(size.0 / src.shrink, size.1 / src.shrink)
                };
                let image = decode::decode(bytes, format, want, budget, label)?;
                Ok(into_rgb8(image))
            }
            Master::Svg { bytes } => {
                let most = presets
                    .iter()
                    .map(|p| enlargement(p, size))
                    .fold(1.0, f64::max);
                let cover = (
                    (f64::from(size.0) * most).ceil() as u32,
                    (f64::from(size.1) * most).ceil() as u32,
                );
                super::svg::rasterise_to_cover(bytes, cover, budget, label).map(into_rgb8)
            }
        }
    };
    // Largest outputs first, so the long one starts at once.
    let mut order: Vec<usize> = (0..presets.len()).collect();
    order.sort_by_key(|&i| {
        std::cmp::Reverse(u64::from(presets[i].width) * u64::from(presets[i].height))
    });
    let queue = Mutex::new(order.into_iter());
    let results: Vec<OnceLock<Result<Vec<u8>, String>>> =
        presets.iter().map(|_| OnceLock::new()).collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 2)
        .min(presets.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.next());
                    let Some(i) = next else { return };
                    let preset = &presets[i];
                    let result = match source_of(preset) {
                        None => Err("no source for the preset".to_owned()),
                        Some(src) => {
                            let focal = match (focal, preset.mode) {
                                (Some(f), _) => Ok(f),
                                // A fit keeps everything: no crop to place.
                                (None, Mode::Fit) => Ok((0.5, 0.5)),
                                (None, Mode::Fill) => focal_found
                                    .get_or_init(|| {
                                        let smallest = sources.last().unwrap_or(src);
                                        match smallest.image.get_or_init(|| load(smallest)) {
                                            Ok(image) => Ok(focal_point(image)),
                                            Err(e) => Err(e.clone()),
                                        }
                                    })
                                    .clone(),
                            };
                            match (src.image.get_or_init(|| load(src)), focal) {
                                (Err(e), _) => Err(e.clone()),
                                (_, Err(e)) => Err(e),
                                (Ok(image), Ok(focal)) => render_rgb(image, preset, focal, pad),
                            }
                        }
                    };
                    let _ = results[i].set(result);
                }
            });
        }
    });
    // A source that failed to decode fails the run, not one preset.
    for src in &sources {
        if let Some(Err(e)) = src.image.get() {
            return Err(e.clone());
        }
    }
    Ok(results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .unwrap_or_else(|| Err("the preset was not rendered".to_owned()))
        })
        .collect())
}

/// Peak signal-to-noise ratio in dB between two images of one size (higher
/// is closer; identical images give infinity), for checking that a faster
/// path keeps the quality of the full-resolution one.
pub fn psnr(a: &RgbImage, b: &RgbImage) -> Option<f64> {
    if a.dimensions() != b.dimensions() || a.as_raw().is_empty() {
        return None;
    }
    let sum: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    let mse = sum / a.as_raw().len() as f64;
    Some(if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0 * 255.0 / mse).log10()
    })
}

fn into_rgb8(image: DynamicImage) -> RgbImage {
    match image {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    }
}

/// Renders `image` for `preset` from every one of its pixels; returns the
/// encoded bytes. (`render_all` is the fast path from a file.)
pub fn render(
    image: &DynamicImage,
    preset: &Preset,
    focal: Option<(f32, f32)>,
    pad: [u8; 3],
) -> Result<Vec<u8>, String> {
    let converted;
    let src = match image {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => {
            converted = other.to_rgb8();
            &converted
        }
    };
    let focal = focal.unwrap_or_else(|| focal_point(src));
    render_rgb(src, preset, focal, pad)
}

fn render_rgb(
    src: &RgbImage,
    preset: &Preset,
    focal: (f32, f32),
    pad: [u8; 3],
) -> Result<Vec<u8>, String> {
    let out = match preset.mode {
        Mode::Fill => {
            let (x, y, w, h) = crop_box(
                src.width(),
                src.height(),
                preset.width,
                preset.height,
                focal,
            );
            resize(src, preset.width, preset.height, Some((x, y, w, h)))?
        }
        Mode::Fit => {
            let scale = f64::min(
                f64::from(preset.width) / f64::from(src.width()),
                f64::from(preset.height) / f64::from(src.height()),
            );
            let w = ((f64::from(src.width()) * scale).round() as u32).clamp(1, preset.width);
            let h = ((f64::from(src.height()) * scale).round() as u32).clamp(1, preset.height);
            let scaled = resize(src, w, h, None)?;
            let mut canvas = RgbImage::from_pixel(preset.width, preset.height, image::Rgb(pad));
            image::imageops::replace(
                &mut canvas,
                &scaled,
                i64::from((preset.width - w) / 2),
                i64::from((preset.height - h) / 2),
            );
            canvas
        }
    };
    encode(&out, preset)
}

/// The largest box of the target's aspect inside the source, centred on
/// the focal point (0..1 in each axis) as far as the edges allow.
pub fn crop_box(sw: u32, sh: u32, tw: u32, th: u32, focal: (f32, f32)) -> (f64, f64, f64, f64) {
    let (sw, sh) = (f64::from(sw), f64::from(sh));
    let target = f64::from(tw) / f64::from(th);
    let (w, h) = if sw / sh > target {
        (sh * target, sh)
    } else {
        (sw, sw / target)
    };
    let cx = f64::from(focal.0.clamp(0.0, 1.0)) * sw;
    let cy = f64::from(focal.1.clamp(0.0, 1.0)) * sh;
    let x = (cx - w / 2.0).clamp(0.0, sw - w);
    let y = (cy - h / 2.0).clamp(0.0, sh - h);
    (x, y, w, h)
}

/// Where the detail is: the centre of edge energy on a small grey copy, so a
/// crop keeps the subject rather than the empty sky.
pub fn focal_point(src: &RgbImage) -> (f32, f32) {
    let small: GrayImage = image::imageops::grayscale(&image::imageops::thumbnail(src, 128, 128));
    let (w, h) = small.dimensions();
    if w < 3 || h < 3 {
        return (0.5, 0.5);
    }
    let (mut sum, mut sx, mut sy) = (0f64, 0f64, 0f64);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let p = |dx: i32, dy: i32| {
                f64::from(small.get_pixel((x as i32 + dx) as u32, (y as i32 + dy) as u32)[0])
            };
            let e = (p(1, 0) - p(-1, 0)).abs() + (p(0, 1) - p(0, -1)).abs();
            sum += e;
            sx += e * f64::from(x);
            sy += e * f64::from(y);
        }
    }
    if sum < 1.0 {
        return (0.5, 0.5);
    }
    (
        (sx / sum / f64::from(w)) as f32,
        (sy / sum / f64::from(h)) as f32,
    )
}

fn resize(
    src: &RgbImage,
    w: u32,
    h: u32,
    crop: Option<(f64, f64, f64, f64)>,
) -> Result<RgbImage, String> {
    let mut dst = RgbImage::new(w, h);
    let mut options =
        ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::CatmullRom));
    if let Some((x, y, cw, ch)) = crop {
        options = options.crop(x, y, cw, ch);
    }
    Resizer::new()
        .resize(src, &mut dst, &options)
        .map_err(|e| format!("resizing failed: {e}"))?;
    Ok(dst)
}

fn encode(img: &RgbImage, preset: &Preset) -> Result<Vec<u8>, String> {
    match preset.format {
        Format::Png => {
            // Fast deflate with one cheap filter: the print file is the
            // largest output and lossless either way, so only its size
            // grows, not its quality.
            let mut out = Vec::new();
            image::codecs::png::PngEncoder::new_with_quality(
                &mut out,
                image::codecs::png::CompressionType::Fast,
                image::codecs::png::FilterType::Sub,
            )
            .write_image(
                img.as_raw(),
                img.width(),
                img.height(),
                image::ExtendedColorType::Rgb8,
            )
            .map_err(|e| e.to_string())?;
            Ok(out)
        }
        Format::Jpeg => {
            let at = |q: u8| -> Result<Vec<u8>, String> {
                let mut out = Vec::new();
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, q)
                    .encode_image(img)
                    .map_err(|e| e.to_string())?;
                Ok(out)
            };
            let Some(budget) = preset.max_kb.map(|kb| kb * 1000) else {
                return at(88);
            };
            // The best quality that fits the budget.
            let (mut lo, mut hi) = (10u8, 95u8);
            let mut best = None;
            while lo <= hi {
                let mid = lo + (hi - lo) / 2;
                let bytes = at(mid)?;
                if bytes.len() as u64 <= budget {
                    best = Some(bytes);
                    lo = mid + 1;
                } else if mid == 0 {
                    break;
                } else {
                    hi = mid - 1;
                }
            }
            best.ok_or_else(|| {
                format!(
                    "cannot fit {} under {} KB even at the lowest quality",
                    preset.name,
                    budget / 1000
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_preset_parses_with_its_size() {
        let presets = shipped_presets();
        let names: Vec<&str> = presets.iter().map(|p| p.name.as_str()).collect();
        for n in [
            "linkedin-post",
            "linkedin-square",
            "instagram-portrait",
            "story",
            "email-header",
            "ooh-48-sheet",
        ] {
            assert!(names.contains(&n), "{n}");
        }
        let email = presets
            .iter()
            .find(|p| p.name == "email-header")
            .expect("email");
        assert_eq!(
            (email.width, email.height, email.max_kb),
            (600, 200, Some(150))
        );
        assert!(parse_presets("[x]\nwidth = 0\nheight = 10\nmode = \"fill\"\n").is_err());
    }

    #[test]
    fn the_crop_follows_the_focal_point_within_the_edges() {
        let (x, y, w, h) = crop_box(2000, 1000, 100, 100, (0.9, 0.5));
        assert_eq!((w, h), (1000.0, 1000.0));
        assert_eq!((x, y), (1000.0, 0.0), "clamped to the right edge");
        let (x, _, _, _) = crop_box(2000, 1000, 100, 100, (0.5, 0.5));
        assert_eq!(x, 500.0);
    }

    #[test]
    fn the_focal_point_finds_the_detail() {
        // Flat grey except a busy patch in the top-right.
        let img = RgbImage::from_fn(400, 400, |x, y| {
            if x > 300 && y < 100 && (x + y) % 3 == 0 {
                image::Rgb([255, 255, 255])
            } else {
                image::Rgb([90, 90, 90])
            }
        });
        let (fx, fy) = focal_point(&img);
        assert!(fx > 0.7 && fy < 0.3, "({fx}, {fy})");
    }
}
