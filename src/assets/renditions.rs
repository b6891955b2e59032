//! Renditions: one master turned into the sizes each channel needs. `fill`
//! crops to the exact size around a focal point (given, or where the image
//! has the most detail); `fit` keeps everything and pads with a brand
//! colour. A byte budget is met by searching the JPEG quality.

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, GrayImage, ImageFormat, RgbImage};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Cursor;

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

/// Renders `image` for `preset`; returns the encoded bytes.
pub fn render(
    image: &DynamicImage,
    preset: &Preset,
    focal: Option<(f32, f32)>,
    pad: [u8; 3],
) -> Result<Vec<u8>, String> {
    let src = image.to_rgb8();
    let out = match preset.mode {
        Mode::Fill => {
            let focal = focal.unwrap_or_else(|| focal_point(&src));
            let (x, y, w, h) = crop_box(
                src.width(),
                src.height(),
                preset.width,
                preset.height,
                focal,
            );
            resize(&src, preset.width, preset.height, Some((x, y, w, h)))?
        }
        Mode::Fit => {
            let scale = f64::min(
                f64::from(preset.width) / f64::from(src.width()),
                f64::from(preset.height) / f64::from(src.height()),
            );
            let w = ((f64::from(src.width()) * scale).round() as u32).clamp(1, preset.width);
            let h = ((f64::from(src.height()) * scale).round() as u32).clamp(1, preset.height);
            let scaled = resize(&src, w, h, None)?;
            let mut canvas = RgbImage::from_pixel(preset.width, preset.height, image::Rgb(pad));
            image::imageops::overlay(
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
    let view = Image::from_vec_u8(
        src.width(),
        src.height(),
        src.as_raw().clone(),
        PixelType::U8x3,
    )
    .map_err(|e| e.to_string())?;
    let mut dst = Image::new(w, h, PixelType::U8x3);
    let mut options =
        ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::CatmullRom));
    if let Some((x, y, cw, ch)) = crop {
        options = options.crop(x, y, cw, ch);
    }
    Resizer::new()
        .resize(&view, &mut dst, &options)
        .map_err(|e| format!("resizing failed: {e}"))?;
    RgbImage::from_raw(w, h, dst.into_vec()).ok_or_else(|| "resizing produced no image".to_owned())
}

fn encode(img: &RgbImage, preset: &Preset) -> Result<Vec<u8>, String> {
    match preset.format {
        Format::Png => {
            let mut out = Cursor::new(Vec::new());
            img.write_to(&mut out, ImageFormat::Png)
                .map_err(|e| e.to_string())?;
            Ok(out.into_inner())
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
