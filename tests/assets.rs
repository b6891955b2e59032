//! The asset library with real images made in the test: import, dedupe,
//! versions, tags, palette, near duplicates and bad files.

use image::{DynamicImage, ImageBuffer, ImageFormat, Rgb, RgbImage};
use spoke::service::assets::{ImportOptions, RenditionOptions};
use spoke::service::{Hub, NewHub};
use std::path::{Path, PathBuf};

fn hub(home: &Path) -> Hub {
    Hub::init(
        home,
        NewHub {
            name: "Assets",
            handle: "ana",
            tz: "Europe/Lisbon",
            display_name: None,
        },
    )
    .expect("init")
}

fn pattern(w: u32, h: u32, seed: u32) -> RgbImage {
    ImageBuffer::from_fn(w, h, |x, y| {
        Rgb([
            ((x * 7 + seed * 31) % 256) as u8,
            ((y * 5 + seed * 17) % 256) as u8,
            (((x ^ y) + seed * 13) % 256) as u8,
        ])
    })
}

fn save(img: &RgbImage, path: &Path, format: ImageFormat) -> PathBuf {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("dir");
    }
    img.save_with_format(path, format).expect("save");
    path.to_owned()
}

/// Every tag in `wanted` is on the asset.
fn assert_tags(asset: &spoke::model::asset::Asset, wanted: &[&str]) {
    for tag in wanted {
        assert!(
            asset.tags.iter().any(|t| t == tag),
            "{tag} missing from {:?}",
            asset.tags
        );
    }
}

/// A dominant colour within a small CIEDE2000 distance of `hex`.
fn has_colour_near(asset: &spoke::model::asset::Asset, hex: &str) -> bool {
    asset.palette.iter().any(|c| {
        spoke::assets::analyze::palette_distance(c, &[hex.to_owned()]).is_some_and(|d| d < 6.0)
    })
}

fn import(
    hub: &mut Hub,
    paths: &[PathBuf],
    opts: ImportOptions,
) -> spoke::service::assets::ImportReport {
    hub.import_assets(paths, &opts, |_| {}).expect("import")
}

#[test]
fn the_same_bytes_are_stored_once_and_a_changed_file_becomes_a_new_version() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut hub = hub(&dir.path().join("home"));
    let a = save(
        &pattern(300, 200, 1),
        &dir.path().join("in/hero.png"),
        ImageFormat::Png,
    );
    let first = import(&mut hub, std::slice::from_ref(&a), ImportOptions::default());
    assert_eq!(first.imported.len(), 1);
    let again = import(&mut hub, &[a], ImportOptions::default());
    assert_eq!((again.imported.len(), again.duplicates.len()), (0, 1));

    // The same file name with new content: a second version of that asset.
    let b = save(
        &pattern(300, 200, 2),
        &dir.path().join("round2/hero.png"),
        ImageFormat::Png,
    );
    let second = import(&mut hub, &[b], ImportOptions::default());
    assert_eq!(second.new_versions, first.imported);
    let asset = hub.asset(&first.imported[0]).expect("asset");
    assert_eq!(asset.versions.len(), 2);
    // --version-of puts any file under a chosen asset.
    let c = save(
        &pattern(300, 200, 3),
        &dir.path().join("other-name.png"),
        ImageFormat::Png,
    );
    let third = import(
        &mut hub,
        &[c],
        ImportOptions {
            version_of: Some(asset.id.clone()),
            ..ImportOptions::default()
        },
    );
    assert_eq!(third.new_versions, vec![asset.id.clone()]);
    assert_eq!(hub.assets().expect("assets").len(), 1);
    // Every version's bytes are in the local blob store under their digest.
    for v in hub.asset(&asset.id).expect("asset").versions {
        let blob = spoke::sync::blobs::local_blob_path(&dir.path().join("home"), &v.blob_sha256);
        assert_eq!(
            spoke::sync::blobs::sha256_file(&blob).expect("hash"),
            v.blob_sha256
        );
    }
}

#[test]
fn tags_describe_format_orientation_aspect_size_and_name_and_the_palette_finds_both_colours() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut hub = hub(&dir.path().join("home"));
    let two: RgbImage = ImageBuffer::from_fn(1080, 1350, |_, y| {
        if y < 675 {
            Rgb([250, 200, 0])
        } else {
            Rgb([0, 90, 60])
        }
    });
    let path = save(
        &two,
        &dir.path().join("Instagram_launch-teaser.jpg"),
        ImageFormat::Jpeg,
    );
    let report = import(&mut hub, &[path], ImportOptions::default());
    let asset = hub.asset(&report.imported[0]).expect("asset");
    assert_tags(
        &asset,
        &["jpeg", "portrait", "4:5", "instagram", "launch", "teaser"],
    );
    assert!(
        has_colour_near(&asset, "#fac800") && has_colour_near(&asset, "#005a3c"),
        "{:?}",
        asset.palette
    );
    assert!(
        asset
            .palette
            .iter()
            .all(|c| c.len() == 7 && c.starts_with('#'))
    );
    let v = asset.latest().expect("version");
    assert_eq!((v.width, v.height), (Some(1080), Some(1350)));
}

#[test]
fn a_resized_reencoded_copy_is_a_near_duplicate_and_an_unrelated_image_is_not() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut hub = hub(&dir.path().join("home"));
    let original = pattern(640, 480, 4);
    let a = save(
        &original,
        &dir.path().join("campaign.png"),
        ImageFormat::Png,
    );
    let smaller =
        DynamicImage::ImageRgb8(original).resize(320, 240, image::imageops::FilterType::Triangle);
    let b = save(
        &smaller.to_rgb8(),
        &dir.path().join("campaign-small.jpg"),
        ImageFormat::Jpeg,
    );
    let unrelated: RgbImage = ImageBuffer::from_fn(640, 480, |x, y| {
        let v = if ((x / 40) + (y / 40)) % 2 == 0 {
            230
        } else {
            20
        };
        Rgb([v, v, v])
    });
    let c = save(
        &unrelated,
        &dir.path().join("unrelated.png"),
        ImageFormat::Png,
    );
    let report = import(&mut hub, &[a, b, c], ImportOptions::default());
    assert_eq!(report.imported.len(), 3);
    let groups = hub
        .asset_dupes(spoke::assets::dupes::DEFAULT_THRESHOLD)
        .expect("dupes");
    assert_eq!(groups.len(), 1, "{groups:?}");
    let titles: Vec<&str> = groups[0].iter().map(|a| a.title.as_str()).collect();
    assert!(
        titles.contains(&"campaign") && titles.contains(&"campaign small"),
        "{titles:?}"
    );
}

#[test]
fn bad_files_are_reported_one_by_one_and_the_rest_imports() {
    let dir = tempfile::tempdir().expect("tmp");
    let home = dir.path().join("home");
    let mut hub = hub(&home);
    let folder = dir.path().join("drop");
    save(
        &pattern(64, 64, 5),
        &folder.join("good.png"),
        ImageFormat::Png,
    );
    std::fs::write(folder.join("empty.png"), b"").expect("empty");
    std::fs::write(
        folder.join("corrupt.jpg"),
        b"\xff\xd8\xff\xe0 this is not the rest of a jpeg",
    )
    .expect("corrupt");
    std::fs::write(folder.join("unknown.xyz"), b"???").expect("unknown");
    // A PNG whose header claims 50,000 x 50,000 pixels.
    let mut bomb = std::io::Cursor::new(Vec::new());
    pattern(8, 8, 6)
        .write_to(&mut bomb, ImageFormat::Png)
        .expect("png");
    let mut bytes = bomb.into_inner();
    bytes[16..20].copy_from_slice(&50_000u32.to_be_bytes());
    bytes[20..24].copy_from_slice(&50_000u32.to_be_bytes());
    std::fs::write(folder.join("bomb.png"), &bytes).expect("bomb");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&folder, folder.join("loop")).expect("symlink");

    let report = import(
        &mut hub,
        std::slice::from_ref(&folder),
        ImportOptions::default(),
    );
    assert_eq!(report.imported.len(), 1, "only good.png: {report:?}");
    let reason = |name: &str| {
        report
            .failed
            .iter()
            .find(|(p, _)| p.ends_with(name))
            .map(|(_, why)| why.clone())
            .unwrap_or_else(|| panic!("{name} not reported: {:?}", report.failed))
    };
    assert!(reason("empty.png").contains("empty"));
    // Plain sentences that name the file, no decoder internals.
    for (path, why) in &report.failed {
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        if name != "loop" {
            assert!(why.contains(name), "{why}");
        }
        assert!(!why.contains('{') && !why.contains("::"), "{why}");
    }
    assert!(
        reason("corrupt.jpg").contains("cut short"),
        "{}",
        reason("corrupt.jpg")
    );
    assert!(reason("unknown.xyz").contains("unsupported"));
    assert!(!reason("bomb.png").is_empty());
    assert_eq!(
        hub.assets().expect("assets").len(),
        1,
        "nothing half-recorded"
    );
    // No stray temporary blobs.
    let stray = walk(&home.join("blobs"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "tmp"))
        .count();
    assert_eq!(stray, 0);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn brand_colours_score_every_image_and_tag_the_off_palette_ones() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut hub = hub(&dir.path().join("home"));
    let blue: RgbImage = ImageBuffer::from_pixel(200, 200, Rgb([10, 132, 255]));
    let red: RgbImage = ImageBuffer::from_pixel(200, 200, Rgb([255, 45, 85]));
    let a = save(&blue, &dir.path().join("on-brand.png"), ImageFormat::Png);
    let b = save(&red, &dir.path().join("off-brand.png"), ImageFormat::Png);
    import(&mut hub, &[a, b], ImportOptions::default());
    assert_eq!(
        hub.set_brand_palette(&["#0a84ff".into(), "ffffff".into()])
            .expect("palette"),
        2
    );
    assert!(hub.set_brand_palette(&["blue-ish".into()]).is_err());
    for asset in hub.assets().expect("assets") {
        let off = asset.tags.iter().any(|t| t == "off-palette");
        assert_eq!(
            off,
            asset.title == "off brand",
            "{}: {:?}",
            asset.title,
            asset.tags
        );
    }
}

#[test]
fn renditions_come_out_at_each_presets_size_and_the_email_header_fits_its_budget() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut hub = hub(&dir.path().join("home"));
    // Noisy on purpose, so the email header really has to search for a quality.
    let master: RgbImage = ImageBuffer::from_fn(1200, 800, |x, y| {
        let n = (x.wrapping_mul(2654435761) ^ y.wrapping_mul(40503)) % 251;
        Rgb([
            (n as u8).wrapping_add((x / 9) as u8),
            (y / 7) as u8,
            (n * 3 % 256) as u8,
        ])
    });
    let path = save(&master, &dir.path().join("master.png"), ImageFormat::Png);
    let id = import(&mut hub, &[path], ImportOptions::default()).imported[0].clone();
    hub.set_brand_palette(&["#0a84ff".into()]).expect("palette");
    let out = dir.path().join("out");
    let written = hub
        .render_renditions(&id, &["all".into()], &out, &RenditionOptions::default())
        .expect("render")
        .written;
    assert_eq!(written.len(), 6);
    for r in &written {
        let img = image::open(&r.path).expect("a readable file");
        assert_eq!(
            (img.width(), img.height()),
            (r.width, r.height),
            "{}",
            r.preset
        );
    }
    let email = written
        .iter()
        .find(|r| r.preset == "email-header")
        .expect("email");
    assert!(email.bytes <= 150_000, "{} bytes", email.bytes);
    // Fit pads with the first brand colour: the 2:1 print file has bars.
    let ooh = image::open(
        &written
            .iter()
            .find(|r| r.preset == "ooh-48-sheet")
            .expect("ooh")
            .path,
    )
    .expect("png")
    .to_rgb8();
    assert_eq!(
        ooh.get_pixel(0, 1500),
        &Rgb([10, 132, 255]),
        "padding in the brand colour"
    );
    // Recorded on the asset, one rendition per preset.
    let asset = hub.asset(&id).expect("asset");
    assert_eq!(asset.renditions.len(), 6);
    let unknown = hub.render_renditions(
        &id,
        &["billboard-on-the-moon".into()],
        &out,
        &RenditionOptions::default(),
    );
    assert!(format!("{:#}", unknown.expect_err("unknown preset")).contains("linkedin-post"));
}

/// A JPEG of `img` with an EXIF block saying how to turn it upright
/// (1 = as stored, 6 = turn 90 degrees clockwise, 8 = 90 counter-clockwise).
fn jpeg_with_orientation(img: &RgbImage, orientation: u16) -> Vec<u8> {
    let mut plain = std::io::Cursor::new(Vec::new());
    img.write_to(&mut plain, ImageFormat::Jpeg).expect("jpeg");
    let plain = plain.into_inner();
    // TIFF header (big-endian), one IFD entry: Orientation (0x0112), SHORT, 1 value.
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&0x0112u16.to_be_bytes());
    tiff.extend_from_slice(&3u16.to_be_bytes());
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes());
    let mut app1 = vec![0xFF, 0xE1];
    app1.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
    app1.extend_from_slice(b"Exif\0\0");
    app1.extend_from_slice(&tiff);
    // Right after the start-of-image marker.
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&app1);
    out.extend_from_slice(&plain[2..]);
    out
}

/// An upright portrait: red on top, blue below, with some texture.
fn portrait() -> RgbImage {
    ImageBuffer::from_fn(300, 600, |x, y| {
        let t = ((x / 20 + y / 20) % 2 * 30) as u8;
        if y < 300 {
            Rgb([220, 30 + t, 30])
        } else {
            Rgb([30, 40 + t, 220])
        }
    })
}

#[test]
fn an_exif_rotated_jpeg_imports_as_portrait_with_the_same_hash_as_the_upright_picture() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut hub = hub(&dir.path().join("home"));
    let upright = portrait();
    // Stored sideways, as a phone writes it, with orientation 6 to undo it.
    let stored = image::imageops::rotate270(&upright);
    assert_eq!(stored.dimensions(), (600, 300));
    let phone = dir.path().join("phone-shot.jpg");
    std::fs::write(&phone, jpeg_with_orientation(&stored, 6)).expect("write");
    let plain = save(&upright, &dir.path().join("upright.jpg"), ImageFormat::Jpeg);
    let report = import(&mut hub, &[phone.clone(), plain], ImportOptions::default());
    assert_eq!(report.imported.len(), 2, "{report:?}");
    let assets = hub.assets().expect("assets");
    let shot = assets
        .iter()
        .find(|a| a.title == "phone shot")
        .expect("phone shot");
    let v = shot.latest().expect("version");
    assert_eq!((v.width, v.height), (Some(300), Some(600)));
    assert!(shot.tags.iter().any(|t| t == "portrait"), "{:?}", shot.tags);
    assert!(shot.tags.iter().any(|t| t == "1:2"), "{:?}", shot.tags);
    // The hash sees the upright picture: the two are near duplicates.
    let groups = hub
        .asset_dupes(spoke::assets::dupes::DEFAULT_THRESHOLD)
        .expect("dupes");
    assert_eq!(groups.len(), 1, "{groups:?}");
    // Previews and renditions are upright too: red on top.
    let bytes = std::fs::read(&phone).expect("read");
    let preview = spoke::assets::analyze::preview_image(&bytes, 64, "phone-shot.jpg")
        .expect("preview")
        .to_rgb8();
    assert!(preview.height() > preview.width());
    let top = preview.get_pixel(preview.width() / 2, 5);
    let bottom = preview.get_pixel(preview.width() / 2, preview.height() - 5);
    assert!(top[0] > 150 && top[2] < 100, "top {top:?}");
    assert!(bottom[2] > 150 && bottom[0] < 100, "bottom {bottom:?}");
    let out = dir.path().join("out");
    let report = hub
        .render_renditions(
            &shot.id,
            &["story".into()],
            &out,
            &RenditionOptions::default(),
        )
        .expect("render");
    let story = image::open(&report.written[0].path)
        .expect("story")
        .to_rgb8();
    let top = story.get_pixel(540, 20);
    let bottom = story.get_pixel(540, 1900);
    assert!(top[0] > 150 && top[2] < 100, "top {top:?}");
    assert!(bottom[2] > 150 && bottom[0] < 100, "bottom {bottom:?}");
}

fn noisy(w: u32, h: u32) -> RgbImage {
    ImageBuffer::from_fn(w, h, |x, y| {
        let n = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) % 97;
        Rgb([(x % 256) as u8, (n * 2) as u8, (y % 256) as u8])
    })
}

#[test]
fn a_truncated_jpeg_is_refused_with_a_sentence_naming_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut hub = hub(&dir.path().join("home"));
    let mut whole = std::io::Cursor::new(Vec::new());
    noisy(640, 480)
        .write_to(&mut whole, ImageFormat::Jpeg)
        .expect("jpeg");
    let whole = whole.into_inner();
    let mut paths = Vec::new();
    for percent in [10, 50, 99] {
        let path = dir.path().join(format!("cut-{percent}.jpg"));
        std::fs::write(&path, &whole[..whole.len() * percent / 100]).expect("write");
        paths.push(path);
    }
    // A complete file followed by a trailer after its end marker is fine.
    let mut trailer = whole.clone();
    trailer.extend_from_slice(b"camera trailer");
    let complete = dir.path().join("complete.jpg");
    std::fs::write(&complete, &trailer).expect("write");
    paths.push(complete);
    let report = import(&mut hub, &paths, ImportOptions::default());
    assert_eq!(report.imported.len(), 1, "{report:?}");
    assert_eq!(report.failed.len(), 3, "{report:?}");
    for (path, why) in &report.failed {
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(
            why.contains(name) && why.contains("cut short"),
            "{name}: {why}"
        );
    }
}

#[test]
fn a_png_with_a_bad_checksum_is_refused_in_plain_words() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut hub = hub(&dir.path().join("home"));
    let mut png = std::io::Cursor::new(Vec::new());
    pattern(64, 64, 9)
        .write_to(&mut png, ImageFormat::Png)
        .expect("png");
    let good = png.into_inner();
    // The header chunk's checksum, and separately one byte of pixel data.
    let mut bad_header = good.clone();
    bad_header[29] ^= 0xFF;
    let mut bad_data = good.clone();
    let idat = good
        .windows(4)
        .position(|w| w == b"IDAT")
        .expect("an IDAT chunk");
    bad_data[idat + 10] ^= 0x55;
    let a = dir.path().join("bad-header.png");
    let b = dir.path().join("bad-data.png");
    std::fs::write(&a, &bad_header).expect("write");
    std::fs::write(&b, &bad_data).expect("write");
    let report = import(&mut hub, &[a, b], ImportOptions::default());
    assert_eq!(report.imported.len(), 0, "{report:?}");
    assert_eq!(report.failed.len(), 2, "{report:?}");
    for (path, why) in &report.failed {
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(why.starts_with(name), "{why}");
        assert!(why.contains("damaged"), "{why}");
        if name == "bad-header.png" {
            assert!(why.contains("checksum"), "{why}");
        }
        assert!(
            !why.contains("ChunkType") && !why.contains('{'),
            "debug output leaked: {why}"
        );
    }
}

const SVG: &str = r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="400" height="200" viewBox="0 0 400 200">
  <rect x="0" y="0" width="200" height="200" fill="#dc1414"/>
  <rect x="200" y="0" width="200" height="200" fill="#1428dc"/>
  <circle cx="100" cy="100" r="40" fill="#ffffff"/>
  <text x="250" y="100">Launch</text>
</svg>
"##;

#[test]
fn an_svg_is_drawn_for_its_palette_hash_preview_and_renditions() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut hub = hub(&dir.path().join("home"));
    let path = dir.path().join("logo.svg");
    std::fs::write(&path, SVG).expect("write");
    let report = import(
        &mut hub,
        std::slice::from_ref(&path),
        ImportOptions::default(),
    );
    assert_eq!(report.imported.len(), 1, "{report:?}");
    // Its text is not drawn, and the import says so.
    assert!(
        report
            .notes
            .iter()
            .any(|(_, n)| n.contains("logo.svg") && n.contains("text")),
        "{report:?}"
    );
    let asset = hub.asset(&report.imported[0]).expect("asset");
    assert_tags(&asset, &["svg", "vector", "landscape", "2:1", "logo"]);
    assert!(
        has_colour_near(&asset, "#dc1414") && has_colour_near(&asset, "#1428dc"),
        "{:?}",
        asset.palette
    );
    assert!(asset.phash.is_some());
    let v = asset.latest().expect("version");
    assert_eq!(
        (v.mime.as_str(), v.width, v.height),
        ("image/svg+xml", Some(400), Some(200))
    );
    let preview = spoke::assets::analyze::preview_image(SVG.as_bytes(), 100, "logo.svg")
        .expect("a preview")
        .to_rgb8();
    assert_eq!(preview.dimensions(), (200, 100));
    assert_eq!(preview.get_pixel(5, 50)[0], 0xdc);
    // Drawn at the size each preset needs: never reported as enlarged.
    let out = dir.path().join("out");
    let report = hub
        .render_renditions(
            &asset.id,
            &["all".into()],
            &out,
            &RenditionOptions::default(),
        )
        .expect("render");
    assert_eq!(report.written.len(), 6);
    assert!(report.upscaled.is_empty(), "{:?}", report.upscaled);
    let ooh = image::open(
        &report
            .written
            .iter()
            .find(|r| r.preset == "ooh-48-sheet")
            .expect("ooh")
            .path,
    )
    .expect("png")
    .to_rgb8();
    assert_eq!(ooh.dimensions(), (6000, 3000));
    let left = ooh.get_pixel(100, 1500);
    assert!(left[0] > 200 && left[2] < 40, "{left:?}");

    // A file that only says it is SVG is refused with a reason.
    let broken = dir.path().join("broken.svg");
    std::fs::write(&broken, "<svg xmlns=\"http://www.w3.org/2000/svg\"><rect").expect("write");
    let report = import(&mut hub, &[broken], ImportOptions::default());
    assert!(
        report.failed[0].1.contains("broken.svg")
            && report.failed[0].1.contains("not a readable SVG"),
        "{report:?}"
    );
}

#[test]
fn a_strip_of_20000x10_is_a_panorama_and_a_size_in_the_name_is_not_a_tag() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut hub = hub(&dir.path().join("home"));
    let strip = pattern(20_000, 10, 3);
    let path = save(
        &strip,
        &dir.path().join("pano-20000x10.png"),
        ImageFormat::Png,
    );
    let wide = save(
        &pattern(1918, 1080, 4),
        &dir.path().join("almost-hd.png"),
        ImageFormat::Png,
    );
    let report = import(&mut hub, &[path, wide], ImportOptions::default());
    assert_eq!(report.imported.len(), 2, "{report:?}");
    for asset in hub.assets().expect("assets") {
        if asset.title == "pano 20000x10" {
            assert!(
                asset.tags.iter().any(|t| t == "panorama"),
                "{:?}",
                asset.tags
            );
            assert!(
                !asset.tags.iter().any(|t| t.contains("20000")),
                "{:?}",
                asset.tags
            );
        } else {
            // 1918x1080 rounds to the nearest common ratio.
            assert!(asset.tags.iter().any(|t| t == "16:9"), "{:?}", asset.tags);
        }
    }
}

#[test]
fn flat_images_get_no_perceptual_hash_and_are_never_near_duplicates() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut hub = hub(&dir.path().join("home"));
    let grey: RgbImage = ImageBuffer::from_pixel(300, 200, Rgb([128, 128, 128]));
    // Nearly flat: a colour with one level of noise.
    let beige: RgbImage = ImageBuffer::from_fn(300, 200, |x, y| {
        let n = ((x * 7 + y * 13) % 2) as u8;
        Rgb([200 + n, 190, 160])
    });
    let also_grey: RgbImage = ImageBuffer::from_pixel(500, 500, Rgb([130, 128, 128]));
    let paths = vec![
        save(&grey, &dir.path().join("grey.png"), ImageFormat::Png),
        save(&beige, &dir.path().join("beige.png"), ImageFormat::Png),
        save(
            &also_grey,
            &dir.path().join("also-grey.png"),
            ImageFormat::Png,
        ),
    ];
    let report = import(&mut hub, &paths, ImportOptions::default());
    assert_eq!(report.imported.len(), 3, "{report:?}");
    for asset in hub.assets().expect("assets") {
        assert_eq!(asset.phash, None, "{}", asset.title);
        assert!(
            !asset.palette.is_empty(),
            "{} keeps its palette",
            asset.title
        );
    }
    assert!(
        hub.asset_dupes(spoke::assets::dupes::DEFAULT_THRESHOLD)
            .expect("dupes")
            .is_empty()
    );
    assert_eq!(report.notes.len(), 3, "{report:?}");
}

fn photo_jpeg(w: u32, h: u32) -> Vec<u8> {
    // Smooth, like a photograph: gradients and soft shapes.
    let img: RgbImage = ImageBuffer::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let ring = ((fx - 0.4).hypot(fy - 0.5) * 18.0).sin() * 60.0;
        Rgb([
            (fx * 200.0 + ring + 20.0).clamp(0.0, 255.0) as u8,
            (fy * 180.0 + 30.0).clamp(0.0, 255.0) as u8,
            (120.0 - ring).clamp(0.0, 255.0) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Jpeg).expect("jpeg");
    out.into_inner()
}

#[test]
fn renditions_warn_when_a_preset_enlarges_the_master_and_no_upscale_leaves_it_out() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut hub = hub(&dir.path().join("home"));
    let path = dir.path().join("small-master.jpg");
    std::fs::write(&path, photo_jpeg(1600, 1067)).expect("write");
    let id = import(&mut hub, &[path], ImportOptions::default()).imported[0].clone();
    let out = dir.path().join("out");
    let presets = vec!["linkedin-post".to_owned(), "ooh-48-sheet".to_owned()];
    let report = hub
        .render_renditions(&id, &presets, &out, &RenditionOptions::default())
        .expect("render");
    assert_eq!(report.written.len(), 2);
    assert_eq!(report.upscaled.len(), 1, "{:?}", report.upscaled);
    let warning = report.upscaled[0].to_string();
    for part in ["ooh-48-sheet", "1600x1067", "2.8x", "6000x3000"] {
        assert!(warning.contains(part), "{part} in {warning}");
    }
    let refused = hub
        .render_renditions(
            &id,
            &presets,
            &dir.path().join("out2"),
            &RenditionOptions {
                no_upscale: true,
                ..RenditionOptions::default()
            },
        )
        .expect("render");
    let written: Vec<&str> = refused.written.iter().map(|r| r.preset.as_str()).collect();
    assert_eq!(written, vec!["linkedin-post"]);
    assert_eq!(refused.refused.len(), 1);
    assert_eq!(refused.refused[0].preset, "ooh-48-sheet");
    assert!(
        !dir.path()
            .join("out2/small-master-ooh-48-sheet.png")
            .exists()
    );
}

#[test]
fn renditions_decoded_at_a_reduced_scale_match_a_render_from_every_pixel() {
    use spoke::assets::renditions::{Master, psnr, render, render_all, shipped_presets};
    let bytes = photo_jpeg(4000, 2667);
    let presets: Vec<_> = shipped_presets()
        .into_iter()
        .filter(|p| p.name != "ooh-48-sheet")
        .collect();
    let budget = spoke::assets::budget::MemoryBudget::default();
    let fast = render_all(
        Master::Raster {
            bytes: &bytes,
            format: ImageFormat::Jpeg,
        },
        &presets,
        Some((0.5, 0.5)),
        [255, 255, 255],
        &budget,
        "master",
    )
    .expect("render");
    let full = image::load_from_memory(&bytes).expect("decode");
    for (p, fast) in presets.iter().zip(fast) {
        let fast = image::load_from_memory(&fast.expect("preset"))
            .expect("decode")
            .to_rgb8();
        let reference = render(&full, p, Some((0.5, 0.5)), [255, 255, 255]).expect("render");
        let reference = image::load_from_memory(&reference)
            .expect("decode")
            .to_rgb8();
        let db = psnr(&fast, &reference).expect("same size");
        assert!(db > 32.0, "{}: {db:.1} dB", p.name);
    }
    assert_eq!(
        budget.available(),
        budget.total(),
        "every reservation came back"
    );
}

#[test]
fn asset_list_is_newest_first_by_creation_not_by_id() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut hub = hub(&dir.path().join("home"));
    let mut titles = Vec::new();
    for i in 0..6u32 {
        let path = save(
            &pattern(40, 30, 20 + i),
            &dir.path().join(format!(
                "shot-{}.png",
                ["one", "two", "three", "four", "five", "six"][i as usize]
            )),
            ImageFormat::Png,
        );
        import(&mut hub, &[path], ImportOptions::default());
        titles.push(hub.assets_newest_first().expect("list")[0].title.clone());
    }
    // Each import is at the top right after it.
    assert_eq!(
        titles,
        vec![
            "shot one",
            "shot two",
            "shot three",
            "shot four",
            "shot five",
            "shot six"
        ]
    );
    let listed: Vec<String> = hub
        .assets_newest_first()
        .expect("list")
        .into_iter()
        .map(|a| a.title)
        .collect();
    assert_eq!(
        listed,
        vec![
            "shot six",
            "shot five",
            "shot four",
            "shot three",
            "shot two",
            "shot one"
        ]
    );
    // A new version does not move an asset up: creation time, not change time.
    let again = save(
        &pattern(40, 30, 99),
        &dir.path().join("v2/shot-one.png"),
        ImageFormat::Png,
    );
    import(&mut hub, &[again], ImportOptions::default());
    assert_eq!(
        hub.assets_newest_first().expect("list")[5].title,
        "shot one"
    );
}
