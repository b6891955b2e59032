//! Fuzz targets for what the client reads from files and the hub: keymap
//! and theme files, images being imported, and sequenced ops applied to a
//! replica. Each runs for `SPOKE_FUZZ_SECONDS` (see the engine's notes);
//! none may panic.

#[path = "../server/tests/common/fuzz.rs"]
mod fuzz;

use image::{ImageFormat, Rgb, RgbImage};
use serde_json::json;
use spoke::model::{Change, EntityKind, EntityRef, Op, Role};
use spoke::store::{Replica, ReplicaMeta};
use spoke::tui::keymap::Keymap;
use spoke::tui::theme::{ColorDepth, Theme};
use spoke_relay::proto::{ClientId, Hlc, OpId};
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

/// The shipped files of a folder (themes, keymaps) as seeds.
fn shipped(dir: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter_map(|p| std::fs::read(p).ok())
        .collect()
}

#[test]
fn fuzz_keymap_files() {
    fuzz::run("keymap", &corpus(), shipped("keymaps"), |bytes| {
        let text = String::from_utf8_lossy(bytes);
        let _ = Keymap::from_toml("fuzzed", &text);
    });
}

#[test]
fn fuzz_theme_files() {
    fuzz::run("theme", &corpus(), shipped("themes"), |bytes| {
        let text = String::from_utf8_lossy(bytes);
        for depth in [
            ColorDepth::TrueColor,
            ColorDepth::Ansi256,
            ColorDepth::Ansi16,
        ] {
            let _ = Theme::from_toml("fuzzed", &text, depth);
        }
    });
}

#[test]
fn fuzz_image_import() {
    let mut picture = RgbImage::new(24, 16);
    for (x, y, p) in picture.enumerate_pixels_mut() {
        *p = Rgb([(x * 10) as u8, (y * 15) as u8, 120]);
    }
    let seeds: Vec<Vec<u8>> = [
        ImageFormat::Png,
        ImageFormat::Jpeg,
        ImageFormat::Gif,
        ImageFormat::Bmp,
        ImageFormat::WebP,
    ]
    .into_iter()
    .filter_map(|format| {
        let mut out = std::io::Cursor::new(Vec::new());
        picture.write_to(&mut out, format).ok()?;
        Some(out.into_inner())
    })
    .collect();
    let budget = spoke::assets::budget::MemoryBudget::default();
    fuzz::run("image", &corpus(), seeds, |bytes| {
        for name in [
            "fuzzed.png",
            "fuzzed.jpg",
            "fuzzed.gif",
            "fuzzed.webp",
            "fuzzed.svg",
            "fuzzed",
        ] {
            let _ = spoke::assets::analyze::analyze(Path::new(name), bytes, &budget);
        }
    });
}

#[test]
fn fuzz_sequenced_ops_applied_to_a_replica() {
    let dir = tempfile::tempdir().expect("tmp");
    let replica = Replica::create(&dir.path().join("r.redb"), &ReplicaMeta::new(ClientId(9)))
        .expect("create");
    let op = |seq: u64, entity: EntityRef, change: Change| Op {
        id: OpId {
            client: ClientId(3),
            seq,
        },
        hlc: Hlc {
            wall_ms: 1_000 + seq,
            logical: 0,
        },
        actor: "ana".into(),
        entity,
        change,
    };
    let set = |v: serde_json::Value| {
        Change::Set(
            v.as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        )
    };
    let seeds: Vec<Vec<u8>> = [
        Op::relay_grant(1, "ana", Role::Lead, 1),
        op(
            1,
            EntityRef::new(EntityKind::Brief, "b-1"),
            set(json!({"title": "t", "tags:x": true})),
        ),
        op(
            2,
            EntityRef::new(EntityKind::Thread, "brief:b-1"),
            Change::Append(json!({"body": "hi"})),
        ),
        op(3, EntityRef::new(EntityKind::Brief, "b-1"), Change::Delete),
        op(
            4,
            EntityRef::new(EntityKind::Approval, "r-1"),
            set(
                json!({"subject": {"type": "asset_version", "asset": "a-1", "version": 1},
                "stages": [{"name": "s", "reviewers": ["ana"]}]}),
            ),
        ),
    ]
    .iter()
    .filter_map(|o| o.encode().ok())
    .collect();
    let seq = std::cell::Cell::new(0u64);
    fuzz::run("replica-apply", &corpus(), seeds, |bytes| {
        seq.set(seq.get() + 1);
        // Bad bytes in the log are recorded as refused, never a failure to
        // follow the hub.
        replica
            .apply_sequenced(&[(seq.get(), bytes.to_vec())])
            .expect("a replica takes any sequenced bytes");
    });
    assert_eq!(replica.meta().expect("meta").cursor, seq.get());
}
