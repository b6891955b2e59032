//! The asset library with real images made in the test: import, dedupe,
//! versions, tags, palette, near duplicates and bad files.

use image::{DynamicImage, ImageBuffer, ImageFormat, Rgb, RgbImage};
use spoke::service::assets::ImportOptions;
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
    for tag in ["jpeg", "portrait", "4:5", "instagram", "launch", "teaser"] {
        assert!(
            asset.tags.iter().any(|t| t == tag),
            "{tag} missing from {:?}",
            asset.tags
        );
    }
    let near = |hex: &str| {
        asset.palette.iter().any(|c| {
            spoke::assets::analyze::palette_distance(c, &[hex.to_owned()]).is_some_and(|d| d < 6.0)
        })
    };
    assert!(near("#fac800") && near("#005a3c"), "{:?}", asset.palette);
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
    assert!(reason("corrupt.jpg").contains("cannot decode"));
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
        .render_renditions(&id, &["all".into()], &out, None)
        .expect("render");
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
    let unknown = hub.render_renditions(&id, &["billboard-on-the-moon".into()], &out, None);
    assert!(format!("{:#}", unknown.expect_err("unknown preset")).contains("linkedin-post"));
}
