//! Asset benchmarks: renditions of a 24-megapixel JPEG to every preset,
//! side by side with `vipsthumbnail` making the same sizes (when it is
//! installed: apt-get install libvips-tools), the quality of those
//! renditions against a render from every pixel of the master, and import
//! throughput for a folder of 1,000 images. Run with
//! `cargo bench --bench assets`.
//!
//! `cargo bench --bench assets -- --write-large-pngs DIR` only writes three
//! 11000x11000 PNGs into DIR, for measuring the import's memory peak.

use image::{ImageBuffer, Rgb, RgbImage};
use spoke::assets::budget::MemoryBudget;
use spoke::assets::renditions::{
    Master, Mode, focal_point, psnr, render, render_all, shipped_presets,
};
use spoke::service::assets::ImportOptions;
use spoke::service::{Hub, NewHub};
use std::process::Command;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn photo(w: u32, h: u32, seed: u32) -> RgbImage {
    ImageBuffer::from_fn(w, h, |x, y| {
        let n = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503) ^ seed) % 37;
        Rgb([
            ((x * 255 / w) as u8).wrapping_add(n as u8),
            ((y * 255 / h) as u8).wrapping_add(n as u8),
            (((x + y) * 127 / (w + h)) as u8).wrapping_add(seed as u8),
        ])
    })
}

fn write_large_pngs(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for seed in 1..=3u32 {
        let path = dir.join(format!("large-{seed}.png"));
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        image::ImageEncoder::write_image(
            image::codecs::png::PngEncoder::new_with_quality(
                &mut out,
                image::codecs::png::CompressionType::Fast,
                image::codecs::png::FilterType::Sub,
            ),
            photo(11_000, 11_000, seed).as_raw(),
            11_000,
            11_000,
            image::ExtendedColorType::Rgb8,
        )?;
        println!("{}", path.display());
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--write-large-pngs") {
        let dir = args
            .get(i + 1)
            .ok_or_else(|| anyhow::anyhow!("--write-large-pngs DIR"))?;
        return write_large_pngs(std::path::Path::new(dir));
    }
    let dir = tempfile::tempdir()?;
    let master = dir.path().join("master-24mp.jpg");
    photo(6000, 4000, 1).save(&master)?;
    let presets = shipped_presets();
    let pad = [255, 255, 255];

    // Spoke: what `asset renditions --preset all` does (read, decode at the
    // scales the presets need, render two at a time).
    let mut ours = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let bytes = std::fs::read(&master)?;
        let master = Master::Raster {
            bytes: &bytes,
            format: image::ImageFormat::Jpeg,
        };
        for out in render_all(
            master,
            &presets,
            None,
            pad,
            &MemoryBudget::default(),
            "master",
        )
        .map_err(anyhow::Error::msg)?
        {
            out.map_err(anyhow::Error::msg)?;
        }
        ours.push(start.elapsed());
    }
    let ours = median(ours);

    // The reference: every preset rendered from every pixel of the master,
    // one after another, each output decoded and compared with the fast one.
    // Both crop around the focal point found on the full image, so the
    // comparison measures the reduced decode and resampling only.
    let start = Instant::now();
    let full = image::load_from_memory(&std::fs::read(&master)?)?;
    let focal = focal_point(&full.to_rgb8());
    let mut references = Vec::new();
    for p in &presets {
        references.push(render(&full, p, Some(focal), pad).map_err(anyhow::Error::msg)?);
    }
    let reference_time = start.elapsed();
    let bytes = std::fs::read(&master)?;
    let fast = render_all(
        Master::Raster {
            bytes: &bytes,
            format: image::ImageFormat::Jpeg,
        },
        &presets,
        Some(focal),
        pad,
        &MemoryBudget::default(),
        "master",
    )
    .map_err(anyhow::Error::msg)?
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .map_err(anyhow::Error::msg)?;
    let mut quality = Vec::new();
    for ((p, fast), reference) in presets.iter().zip(&fast).zip(&references) {
        let a = image::load_from_memory(reference)?.to_rgb8();
        let b = image::load_from_memory(fast)?.to_rgb8();
        let mean_abs = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(&x, &y)| f64::from(x.abs_diff(y)))
            .sum::<f64>()
            / a.as_raw().len().max(1) as f64;
        quality.push((p.name.clone(), psnr(&a, &b), mean_abs));
    }

    // vipsthumbnail: one run per preset, as a user would script it.
    let vips = Command::new("vipsthumbnail")
        .arg("--vips-version")
        .output()
        .is_ok();
    let theirs = if vips {
        let mut runs = Vec::new();
        for _ in 0..3 {
            let start = Instant::now();
            for p in &presets {
                let mut cmd = Command::new("vipsthumbnail");
                cmd.arg(&master)
                    .arg("--size")
                    .arg(format!("{}x{}", p.width, p.height))
                    .arg("-o")
                    .arg(dir.path().join(format!("vips-{}.jpg[Q=88]", p.name)));
                if p.mode == Mode::Fill {
                    cmd.arg("--smartcrop").arg("attention");
                }
                let status = cmd.status()?;
                anyhow::ensure!(status.success(), "vipsthumbnail failed for {}", p.name);
            }
            runs.push(start.elapsed());
        }
        Some(median(runs))
    } else {
        None
    };

    // Import: 1,000 images of 640x480 in one folder (`--renditions-only` skips it).
    let import = if args.iter().any(|a| a == "--renditions-only") {
        None
    } else {
        let folder = dir.path().join("folder");
        std::fs::create_dir_all(&folder)?;
        for i in 0..1000u32 {
            let path = folder.join(format!("shot-{i:04}.jpg"));
            photo(640, 480, i).save(&path)?;
        }
        let home = dir.path().join("home");
        let mut hub = Hub::init(
            &home,
            NewHub {
                name: "Bench",
                handle: "ana",
                tz: "UTC",
                display_name: None,
            },
        )?;
        let start = Instant::now();
        let report = hub.import_assets(&[folder], &ImportOptions::default(), |_| {})?;
        let import = start.elapsed();
        anyhow::ensure!(
            report.imported.len() == 1000,
            "imported {}",
            report.imported.len()
        );
        Some(import)
    };

    println!("| benchmark | spoke | vipsthumbnail | ratio (vips / spoke) |");
    println!("| --- | --- | --- | --- |");
    match theirs {
        Some(t) => println!(
            "| all {} presets from a 24 MP JPEG (median of 3) | {:.0} ms | {:.0} ms | {:.2} |",
            presets.len(),
            ours.as_secs_f64() * 1000.0,
            t.as_secs_f64() * 1000.0,
            t.as_secs_f64() / ours.as_secs_f64()
        ),
        None => println!(
            "| all {} presets from a 24 MP JPEG (median of 3) | {:.0} ms | not installed | - |",
            presets.len(),
            ours.as_secs_f64() * 1000.0
        ),
    }
    println!(
        "| all {} presets from every pixel, one at a time (the quality reference, one run) | {:.0} ms | - | - |",
        presets.len(),
        reference_time.as_secs_f64() * 1000.0
    );
    if let Some(import) = import {
        println!(
            "| import 1,000 640x480 JPEGs (hash, decode, tags, palette, phash, commit) | {:.1} s, {:.0} files/s | - | - |",
            import.as_secs_f64(),
            1000.0 / import.as_secs_f64()
        );
    }
    println!();
    println!("| preset | PSNR against the full-resolution render | mean abs difference (0-255) |");
    println!("| --- | --- | --- |");
    for (name, psnr, mean_abs) in quality {
        let psnr = psnr.map_or("size differs".to_owned(), |v| {
            if v.is_infinite() {
                "identical".to_owned()
            } else {
                format!("{v:.1} dB")
            }
        });
        println!("| {name} | {psnr} | {mean_abs:.2} |");
    }
    Ok(())
}
