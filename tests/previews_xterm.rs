//! Previews in a real terminal: xterm speaking sixel (`-ti vt340`) under a
//! virtual X display runs `spoke` on a hub holding one striped image. The
//! window is photographed: the image's own pixels must be inside the
//! preview area, drawn at pixel resolution (sixel, not half-blocks), and
//! gone once another pane is shown.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The terminal's size in cells; the layout below follows from it.
const COLS: u32 = 120;
const ROWS: u32 = 36;

/// Where the Assets pane puts the image at 120x36, in cells: the preview
/// panel takes 55% of the width (columns 54..120) under the tab row, and
/// its image area ends above the 8 rows of facts (row 25). One cell of
/// slack on each side.
const IMAGE_COLS: (u32, u32) = (54, 120);
const IMAGE_ROWS: (u32, u32) = (1, 26);

fn tool(name: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether every program the test drives is installed; without them it
/// skips with a notice, unless CI says they must be there.
fn tools_available() -> bool {
    let missing: Vec<&str> = ["Xvfb", "xterm", "xdotool", "import"]
        .into_iter()
        .filter(|t| !tool(t))
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("SPOKE_REQUIRE_PEERS").is_none(),
        "SPOKE_REQUIRE_PEERS is set but {missing:?} are not installed \
         (apt-get install xvfb xterm xdotool imagemagick)"
    );
    eprintln!(
        "skipped: install xvfb, xterm, xdotool and imagemagick to run the real-terminal preview test"
    );
    false
}

/// A child killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spoke(home: &Path, config: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_spoke"))
        .arg("--config")
        .arg(config)
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("SPOKE_HOME")
        .env_remove("SPOKE_CONFIG")
        // Logs stay beside the test's config, out of the user's state folder.
        .env("XDG_STATE_HOME", config.with_file_name("state"))
        .output()
        .expect("spoke runs");
    assert!(
        out.status.success(),
        "spoke {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Red and blue stripes 8 pixels wide: colours nothing else on screen has,
/// with edges that fall inside cells once the image is scaled.
fn striped_png(path: &Path) {
    let image = image::RgbImage::from_fn(640, 400, |x, _| {
        if (x / 8) % 2 == 0 {
            image::Rgb([255, 0, 0])
        } else {
            image::Rgb([0, 0, 255])
        }
    });
    image.save(path).expect("write the image");
}

struct Display {
    number: String,
    _server: Killed,
}

fn start_display() -> Display {
    let mut server = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1600x1000x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb starts");
    let stdout = server.stdout.take().expect("Xvfb's stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("Xvfb names its display");
    Display {
        number: format!(":{}", line.trim()),
        _server: Killed(server),
    }
}

impl Display {
    fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        Command::new(program)
            .args(args)
            .env("DISPLAY", &self.number)
            .output()
            .unwrap_or_else(|e| panic!("{program} runs: {e}"))
    }

    fn key(&self, key: &str) {
        let out = self.run("xdotool", &["key", key]);
        assert!(out.status.success(), "xdotool key {key}: {out:?}");
    }

    /// The xterm window's id and size in pixels, once it is mapped.
    fn window(&self) -> (String, u32, u32) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = self.run("xdotool", &["search", "--class", "xterm"]);
            let id = String::from_utf8_lossy(&found.stdout)
                .lines()
                .next()
                .map(str::to_owned);
            if let Some(id) = id {
                let geometry = self.run("xdotool", &["getwindowgeometry", "--shell", &id]);
                let text = String::from_utf8_lossy(&geometry.stdout).into_owned();
                let value = |key: &str| -> Option<u32> {
                    text.lines()
                        .find_map(|l| l.strip_prefix(key))
                        .and_then(|v| v.trim().parse().ok())
                };
                if let (Some(w), Some(h)) = (value("WIDTH="), value("HEIGHT=")) {
                    return (id, w, h);
                }
            }
            assert!(Instant::now() < deadline, "xterm never mapped a window");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn screenshot(&self, width: u32, height: u32) -> image::RgbImage {
        let out = self.run("import", &["-window", "root", "png:-"]);
        assert!(out.status.success(), "import: {out:?}");
        let shot = image::load_from_memory(&out.stdout)
            .expect("a PNG screenshot")
            .to_rgb8();
        image::imageops::crop_imm(&shot, 0, 0, width, height).to_image()
    }
}

/// Pixels of the striped image: red or blue with the other colour a few
/// pixels away on the same row (the palette swatches under the preview are
/// solid blocks of one colour, so they do not count).
fn stripes(shot: &image::RgbImage) -> Vec<(u32, u32, bool)> {
    let colour = |x: u32, y: u32| -> Option<bool> {
        let [r, g, b] = shot.get_pixel(x, y).0;
        if r > 200 && g < 40 && b < 40 {
            Some(true)
        } else if b > 200 && r < 40 && g < 40 {
            Some(false)
        } else {
            None
        }
    };
    let mut found = Vec::new();
    for y in 0..shot.height() {
        for x in 0..shot.width() {
            let Some(red) = colour(x, y) else { continue };
            let near = x.saturating_sub(8)..(x + 9).min(shot.width());
            if near.into_iter().any(|nx| colour(nx, y) == Some(!red)) {
                found.push((x, y, red));
            }
        }
    }
    found
}

#[test]
fn an_image_fills_its_preview_in_sixel_and_leaves_nothing_behind_in_xterm() {
    if !tools_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let home = dir.path().join("home");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "").expect("config");
    spoke(
        &home,
        &config,
        &["init", "--name", "Studio", "--handle", "ana", "--tz", "UTC"],
    );
    let png = dir.path().join("stripes.png");
    striped_png(&png);
    spoke(
        &home,
        &config,
        &["asset", "import", &png.display().to_string()],
    );

    let display = start_display();
    let geometry = format!("{COLS}x{ROWS}+0+0");
    let home_arg = home.display().to_string();
    let config_arg = config.display().to_string();
    let _xterm = Killed(
        Command::new("xterm")
            .args([
                "-ti",
                "vt340",
                "-xrm",
                "XTerm*decTerminalID: vt340",
                "-xrm",
                "XTerm*numColorRegisters: 256",
                "-geometry",
                &geometry,
                "-e",
                env!("CARGO_BIN_EXE_spoke"),
                "--config",
                &config_arg,
                "--home",
                &home_arg,
            ])
            .env("DISPLAY", &display.number)
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .env_remove("SPOKE_HOME")
            .env_remove("SPOKE_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("xterm starts"),
    );
    let (_id, width, height) = display.window();
    // xterm's 2-pixel inner border on each side, then whole cells.
    let (cell_w, cell_h) = ((width - 4) / COLS, (height - 4) / ROWS);
    assert!(cell_w > 0 && cell_h > 0, "{width}x{height}");
    let cell_x = |x: u32| (x.saturating_sub(2)) / cell_w;
    let cell_y = |y: u32| (y.saturating_sub(2)) / cell_h;
    display.run("xdotool", &["mousemove", "10", "10"]);

    let shows_image = |display: &Display| -> Vec<(u32, u32, bool)> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = stripes(&display.screenshot(width, height));
            if found.len() > 1000 {
                // One more frame, so the image is complete.
                std::thread::sleep(Duration::from_millis(500));
                return stripes(&display.screenshot(width, height));
            }
            assert!(Instant::now() < deadline, "the image never appeared");
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    for round in 0..2 {
        display.key("2");
        let pixels = shows_image(&display);
        let outside: Vec<_> = pixels
            .iter()
            .filter(|(x, y, _)| {
                let (cx, cy) = (cell_x(*x), cell_y(*y));
                !(IMAGE_COLS.0..IMAGE_COLS.1).contains(&cx)
                    || !(IMAGE_ROWS.0..IMAGE_ROWS.1).contains(&cy)
            })
            .collect();
        assert!(
            outside.is_empty(),
            "round {round}: {} image pixels outside the preview, e.g. {:?} (cells {cell_w}x{cell_h})",
            outside.len(),
            outside.first()
        );
        // The image fills the preview's width: at least 60 of its 64 columns.
        let columns: std::collections::BTreeSet<u32> =
            pixels.iter().map(|(x, _, _)| cell_x(*x)).collect();
        assert!(
            columns.len() >= 60,
            "round {round}: {} columns",
            columns.len()
        );
        // Real pixels: colour changes inside cells, which half-blocks
        // (one colour per half cell) cannot draw.
        let y = pixels[pixels.len() / 2].1;
        let mut row: Vec<&(u32, u32, bool)> = pixels.iter().filter(|p| p.1 == y).collect();
        row.sort_by_key(|p| p.0);
        let inside_cells = row
            .windows(2)
            .filter(|w| w[0].2 != w[1].2 && (w[1].0 - 2) % cell_w != 0)
            .count();
        assert!(
            inside_cells > 5,
            "round {round}: stripes change colour only at cell edges; sixel was not used"
        );
        // Another pane: nothing of the image may stay.
        display.key(if round == 0 { "5" } else { "1" });
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = stripes(&display.screenshot(width, height));
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: {} image pixels stayed after leaving the pane, e.g. {:?}",
                left.len(),
                left.first()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}
