//! `spoke asset open` and `spoke asset save` with the real binary: the
//! viewer (a script standing in for one) gets a copy in the cache with the
//! right extension and the same bytes, never the store's own file; `save`
//! writes the same bytes and keeps an existing file unless told otherwise.

mod common_cli;

use common_cli::{Sandbox, assert_exit_code_2, assert_success, base_command, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

/// A small PNG made here, imported; returns its id and its bytes.
fn imported_png(sb: &Sandbox) -> (String, Vec<u8>) {
    let img = image::RgbImage::from_fn(96, 64, |x, y| {
        image::Rgb([(x * 3) as u8, (y * 4) as u8, ((x ^ y) * 5) as u8])
    });
    let path = sb.root.path().join("spring_hero.png");
    img.save_with_format(&path, image::ImageFormat::Png)
        .expect("write png");
    sb.ok(&["asset", "import", path.to_str().expect("utf-8 path")]);
    let list = sb.json(&["asset", "list"]);
    let id = list[0]["id"].as_str().expect("asset id").to_owned();
    (id, std::fs::read(&path).expect("read png"))
}

/// Runs `spoke` in the sandbox with this config text, the cache in the
/// sandbox, and `ssh` saying whether the session looks remote.
fn run(sb: &Sandbox, config: &str, ssh: bool, args: &[&str]) -> Output {
    let config_path = sb.root.path().join("open.toml");
    std::fs::write(&config_path, config).expect("write config");
    let mut cmd = base_command();
    cmd.arg("--home")
        .arg(&sb.home)
        .arg("--config")
        .arg(&config_path)
        .args(args)
        .env("XDG_CACHE_HOME", sb.root.path().join("cache"))
        .env_remove("SSH_CONNECTION");
    if ssh {
        cmd.env("SSH_CONNECTION", "10.0.0.1 50000 10.0.0.2 22");
    }
    cmd.output().expect("run spoke")
}

/// A stand-in viewer: writes its first argument to `record`.
fn recording_opener(sb: &Sandbox, record: &Path) -> PathBuf {
    let script = sb.root.path().join("viewer.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s' \"$1\" > '{}.part'\nmv '{0}.part' '{0}'\n",
            record.display()
        ),
    )
    .expect("write script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    script
}

/// What the viewer was handed, once it has run.
fn wait_for_record(record: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(record) {
            return text;
        }
        assert!(Instant::now() < deadline, "the viewer never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn open_hands_the_viewer_a_cached_copy_with_the_extension_and_the_same_bytes() {
    let sb = Sandbox::with_hub();
    let (id, bytes) = imported_png(&sb);
    let record = sb.root.path().join("opened.txt");
    let viewer = recording_opener(&sb, &record);
    let config = format!("opener = \"'{}'\"\n", viewer.display());
    let out = run(&sb, &config, false, &["asset", "open", &id]);
    assert_success(&out, &["asset", "open", &id]);
    let opened = PathBuf::from(wait_for_record(&record));
    assert_eq!(
        opened.extension().and_then(|e| e.to_str()),
        Some("png"),
        "{opened:?}"
    );
    assert!(
        opened.starts_with(sb.root.path().join("cache")),
        "{opened:?}"
    );
    assert!(
        !opened.starts_with(&sb.home),
        "the store's own file: {opened:?}"
    );
    assert_eq!(std::fs::read(&opened).expect("read the copy"), bytes);
    assert!(
        stdout(&out).contains(&opened.display().to_string()),
        "{}",
        stdout(&out)
    );

    // `{}` takes the path where the opener wants it.
    std::fs::remove_file(&record).expect("rm");
    let config = format!("opener = \"sh '{}' {{}} --fit\"\n", viewer.display());
    let out = run(&sb, &config, false, &["asset", "open", &id]);
    assert_success(&out, &["asset", "open", &id]);
    assert_eq!(PathBuf::from(wait_for_record(&record)), opened);
}

#[test]
fn a_rendition_opens_with_its_own_format_and_an_unknown_one_is_named() {
    let sb = Sandbox::with_hub();
    let (id, _) = imported_png(&sb);
    let out_dir = sb.root.path().join("renditions");
    sb.ok(&[
        "asset",
        "renditions",
        &id,
        "--preset",
        "email-header",
        "--out",
        out_dir.to_str().expect("utf-8"),
    ]);
    let rendered = std::fs::read_dir(&out_dir)
        .expect("renditions written")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .next()
        .expect("one rendition");
    let record = sb.root.path().join("opened.txt");
    let viewer = recording_opener(&sb, &record);
    let config = format!("opener = \"{}\"\n", viewer.display());
    let args = ["asset", "open", &id, "--rendition", "email-header"];
    let out = run(&sb, &config, false, &args);
    assert_success(&out, &args);
    let opened = PathBuf::from(wait_for_record(&record));
    assert_eq!(
        opened.extension(),
        rendered.extension(),
        "{opened:?} vs {rendered:?}"
    );
    assert_eq!(
        std::fs::read(&opened).expect("copy"),
        std::fs::read(&rendered).expect("rendition")
    );

    let args = ["asset", "open", &id, "--rendition", "billboard"];
    let err = assert_exit_code_2(&run(&sb, &config, false, &args), "unknown rendition");
    assert!(
        err.contains("billboard") && err.contains("email-header"),
        "{err}"
    );
}

#[test]
fn save_writes_the_same_bytes_and_keeps_an_existing_file_unless_forced() {
    let sb = Sandbox::with_hub();
    let (id, bytes) = imported_png(&sb);
    let dest = sb.root.path().join("out.png");
    let dest_s = dest.to_str().expect("utf-8");
    sb.ok(&["asset", "save", &id, dest_s]);
    assert_eq!(std::fs::read(&dest).expect("saved"), bytes);

    std::fs::write(&dest, b"mine").expect("overwrite by hand");
    let err = assert_exit_code_2(&sb.run(&["asset", "save", &id, dest_s]), "existing file");
    assert!(err.contains("--force") && err.contains("out.png"), "{err}");
    assert_eq!(std::fs::read(&dest).expect("kept"), b"mine");

    sb.ok(&["asset", "save", &id, dest_s, "--force"]);
    assert_eq!(std::fs::read(&dest).expect("forced"), bytes);

    // Into a folder: under the asset's own file name.
    let folder = sb.root.path().join("exports");
    std::fs::create_dir(&folder).expect("mkdir");
    sb.ok(&["asset", "save", &id, folder.to_str().expect("utf-8")]);
    assert_eq!(
        std::fs::read(folder.join("spring_hero.png")).expect("in folder"),
        bytes
    );
}

#[test]
fn over_ssh_without_an_opener_the_file_is_saved_and_the_user_told_where() {
    let sb = Sandbox::with_hub();
    let (id, bytes) = imported_png(&sb);
    let out = run(&sb, "", true, &["asset", "open", &id]);
    assert_success(&out, &["asset", "open", &id]);
    let said = stdout(&out);
    assert!(said.contains("SSH") && said.contains("opener"), "{said}");
    let path = said
        .split("saved to ")
        .nth(1)
        .and_then(|rest| rest.split(": over SSH").next())
        .expect("the path");
    assert_eq!(std::fs::read(path).expect("the copy"), bytes);
}

#[test]
fn a_missing_viewer_or_blob_is_a_clear_error() {
    let sb = Sandbox::with_hub();
    let (id, _) = imported_png(&sb);
    let out = run(
        &sb,
        "opener = \"/nonexistent/viewer --flag\"\n",
        false,
        &["asset", "open", &id],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("/nonexistent/viewer") && err.contains("opener"),
        "{err}"
    );

    // The bytes are gone from this machine and there is no hub to ask.
    let shown = sb.json(&["asset", "show", &id]);
    let sha = shown["versions"][0]["blob_sha256"].as_str().expect("sha");
    std::fs::remove_file(sb.home.join("blobs").join(&sha[..2]).join(&sha[2..])).expect("rm blob");
    let dest = sb.root.path().join("never.png");
    let err = assert_exit_code_2(
        &sb.run(&["asset", "save", &id, dest.to_str().expect("utf-8")]),
        "missing blob",
    );
    assert!(
        err.contains(&id) && err.contains("not on this machine"),
        "{err}"
    );
    assert!(!dest.exists());
}
