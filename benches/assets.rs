//! Asset benchmarks: renditions of a 24-megapixel JPEG to every preset,
//! side by side with `vipsthumbnail` making the same sizes (when it is
//! installed: apt-get install libvips-tools), and import throughput for a
//! folder of 1,000 images. Run with `cargo bench --bench assets`.

use image::{ImageBuffer, Rgb, RgbImage};
use spoke::assets::renditions::{Mode, render, shipped_presets};
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

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let master = dir.path().join("master-24mp.jpg");
    photo(6000, 4000, 1).save(&master)?;
    let presets = shipped_presets();

    // Spoke: decode once, render every preset (what `asset renditions --preset all` does).
    let mut ours = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let bytes = std::fs::read(&master)?;
        let img = image::load_from_memory(&bytes)?;
        for p in &presets {
            render(&img, p, None, [255, 255, 255]).map_err(anyhow::Error::msg)?;
        }
        ours.push(start.elapsed());
    }
    let ours = median(ours);

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

    // Import: 1,000 images of 640x480 in one folder.
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
        "| import 1,000 640x480 JPEGs (hash, decode, tags, palette, phash, commit) | {:.1} s, {:.0} files/s | - | - |",
        import.as_secs_f64(),
        1000.0 / import.as_secs_f64()
    );
    Ok(())
}
