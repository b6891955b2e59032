use super::*;
use crate::assets::analyze::{Analysis, analyze, hamming};
use crate::assets::budget::MemoryBudget;
use crate::assets::dupes::DEFAULT_THRESHOLD;
use crate::service::assets::{OFF_PALETTE_THRESHOLD, palette_score};
use std::path::Path;
use std::sync::OnceLock;

/// Every piece rendered once (two threads at a time) with what the
/// importer's analysis makes of the bytes.
fn rendered() -> &'static [(Piece, Vec<u8>, Analysis)] {
    static DONE: OnceLock<Vec<(Piece, Vec<u8>, Analysis)>> = OnceLock::new();
    DONE.get_or_init(|| {
        let pieces = catalogue();
        let (even, odd): (Vec<_>, Vec<_>) = pieces
            .into_iter()
            .enumerate()
            .partition(|(i, _)| i % 2 == 0);
        let work = |list: Vec<(usize, Piece)>| {
            list.into_iter()
                .map(|(i, p)| {
                    let bytes = render(&p).expect("render");
                    let a = analyze(Path::new(p.file_name), &bytes, &MemoryBudget::default())
                        .expect("analyse");
                    (i, p, bytes, a)
                })
                .collect::<Vec<_>>()
        };
        let mut all = std::thread::scope(|s| {
            let a = s.spawn(|| work(even));
            let b = work(odd);
            let mut a = a.join().expect("thread");
            a.extend(b);
            a
        });
        all.sort_by_key(|(i, ..)| *i);
        all.into_iter().map(|(_, p, b, a)| (p, b, a)).collect()
    })
}

fn brand() -> Vec<String> {
    BRAND_PALETTE.iter().map(|c| (*c).to_owned()).collect()
}

fn hex(c: u32) -> String {
    format!("#{c:06x}")
}

#[test]
fn the_palette_constants_agree() {
    let named: Vec<String> = [INK, CORAL, SAND, TEAL, SUN, WHITE]
        .iter()
        .map(|c| hex(*c))
        .collect();
    assert_eq!(named, brand());
}

#[test]
fn the_catalogue_has_one_of_each_special_piece_and_a_large_master() {
    let pieces = catalogue();
    assert!(pieces.len() >= 13);
    for role in [
        Role::Version1,
        Role::Version2,
        Role::DupeA,
        Role::DupeB,
        Role::OffPalette,
        Role::Master,
    ] {
        assert_eq!(
            pieces.iter().filter(|p| p.role == role).count(),
            1,
            "{role:?}"
        );
    }
    assert!(pieces.iter().filter(|p| p.role == Role::Plain).count() >= 8);
    let master = pieces
        .iter()
        .find(|p| p.role == Role::Master)
        .expect("master");
    assert_eq!((master.width, master.height), (6000, 4000));
    for p in pieces.iter().filter(|p| p.role != Role::Master) {
        assert!(p.width.max(p.height) <= 1920, "{}", p.file_name);
    }
    let mut names: Vec<_> = pieces.iter().map(|p| p.file_name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), pieces.len());
}

#[test]
fn every_piece_decodes_at_its_size() {
    for (p, bytes, a) in rendered() {
        let img = image::load_from_memory(bytes).expect("decode");
        assert_eq!(
            (img.width(), img.height()),
            (p.width, p.height),
            "{}",
            p.file_name
        );
        assert_eq!(
            (a.width, a.height),
            (Some(p.width), Some(p.height)),
            "{}",
            p.file_name
        );
    }
}

#[test]
fn rendering_is_deterministic() {
    for (p, bytes, _) in rendered() {
        assert!(render(p).expect("render") == *bytes, "{}", p.file_name);
    }
}

#[test]
fn only_the_off_palette_piece_is_off_palette() {
    let brand = brand();
    for (p, _, a) in rendered() {
        let score = palette_score(&a.palette, &brand).expect("score");
        if p.role == Role::OffPalette {
            assert!(
                score > OFF_PALETTE_THRESHOLD + 5.0,
                "{} {score} {:?}",
                p.file_name,
                a.palette
            );
        } else {
            assert!(
                score <= OFF_PALETTE_THRESHOLD,
                "{} {score} {:?}",
                p.file_name,
                a.palette
            );
        }
    }
}

#[test]
fn the_dupe_pair_is_near_and_nothing_else_is() {
    let all = rendered();
    let hash = |role: Role| {
        all.iter()
            .find(|(p, ..)| p.role == role)
            .and_then(|(_, _, a)| a.phash.clone())
            .expect("structured hash")
    };
    let pair = hamming(&hash(Role::DupeA), &hash(Role::DupeB)).expect("hex");
    assert!(pair <= DEFAULT_THRESHOLD, "dupes {pair} bits apart");
    for (i, (p, _, a)) in all.iter().enumerate() {
        for (q, _, b) in &all[i + 1..] {
            let roles = [p.role, q.role];
            if roles.contains(&Role::DupeA) && roles.contains(&Role::DupeB)
                || roles.contains(&Role::Version1) && roles.contains(&Role::Version2)
            {
                continue;
            }
            if let (Some(x), Some(y)) = (&a.phash, &b.phash) {
                let d = hamming(x, y).expect("hex");
                assert!(
                    d > DEFAULT_THRESHOLD,
                    "{} and {} are {d} bits apart",
                    p.file_name,
                    q.file_name
                );
            }
        }
    }
}

/// Render and encode times in release, palette scores and hash distances;
/// writes the catalogue to /tmp/demo-art. Run with
/// `cargo test --release --lib demo::art -- --ignored --nocapture`.
#[test]
#[ignore]
fn measure_and_write_the_catalogue() {
    use std::time::Instant;
    let dir = Path::new("/tmp/demo-art");
    std::fs::create_dir_all(dir).expect("dir");
    let brand = brand();
    let mut rest = (0u128, 0u128);
    let mut hashes = Vec::new();
    for p in catalogue() {
        let t0 = Instant::now();
        let pix = draw(&p).expect("draw");
        let t1 = Instant::now();
        let bytes = encode(&p, pix).expect("encode");
        let t2 = Instant::now();
        let (d, e) = ((t1 - t0).as_millis(), (t2 - t1).as_millis());
        if p.role != Role::Master {
            rest.0 += d;
            rest.1 += e;
        }
        let a = analyze(Path::new(p.file_name), &bytes, &MemoryBudget::default()).expect("analyse");
        let score = palette_score(&a.palette, &brand).unwrap_or(f32::NAN);
        println!(
            "{:<42} {:>5}x{:<5} {:?}: draw {d} ms, encode {e} ms, {} KB, palette {score:.1} {:?}",
            p.file_name,
            p.width,
            p.height,
            p.role,
            bytes.len() / 1024,
            a.palette
        );
        std::fs::write(dir.join(p.file_name), &bytes).expect("write");
        if p.role == Role::Master {
            let pix = draw(&p).expect("draw");
            let t = Instant::now();
            let png = encode(
                &Piece {
                    file_name: "master.png",
                    ..p.clone()
                },
                pix,
            )
            .expect("png");
            println!(
                "  master as fast PNG: encode {} ms, {} KB",
                t.elapsed().as_millis(),
                png.len() / 1024
            );
            let img = image::load_from_memory(&bytes).expect("decode");
            img.thumbnail(1200, 800)
                .save(dir.join("master-small.png"))
                .expect("small");
        }
        hashes.push((p.file_name, p.role, a.phash));
    }
    println!(
        "all but the master: draw {} ms, encode {} ms",
        rest.0, rest.1
    );
    let mut pairs = Vec::new();
    for (i, (a, ra, x)) in hashes.iter().enumerate() {
        for (b, rb, y) in &hashes[i + 1..] {
            if let (Some(x), Some(y)) = (x, y) {
                pairs.push((hamming(x, y).unwrap_or(64), *a, *b, *ra, *rb));
            }
        }
    }
    pairs.sort_by_key(|p| (p.0, p.1, p.2));
    for p in pairs.iter().take(6) {
        println!(
            "hamming {:>2}: {} / {} ({:?}/{:?})",
            p.0, p.1, p.2, p.3, p.4
        );
    }
}
