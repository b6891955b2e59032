//! End to end in a real terminal: `spoke --demo` runs inside tmux; keys go
//! in with `send-keys`, the screen comes back with `capture-pane`, and the
//! change is then checked from the command line.

mod common_cli;
mod common_tmux;

use common_tmux::{Tmux, tmux_available};

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn spoke(config: &Path, home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spoke"))
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
        .expect("spoke runs")
}

/// Starts `spoke --demo --quiet` (the team does nothing, so the queue stays
/// as seeded) in a fresh tmux session and waits for its queue.
fn start_demo(dir: &Path) -> (Tmux, std::path::PathBuf, std::path::PathBuf) {
    start_demo_with(dir, (120, 32), "--quiet")
}

/// Starts `spoke --demo` with `extra` arguments in a `size` terminal.
fn start_demo_with(
    dir: &Path,
    size: (u16, u16),
    extra: &str,
) -> (Tmux, std::path::PathBuf, std::path::PathBuf) {
    let home = dir.join("demo");
    let config = dir.join("config.toml");
    std::fs::write(&config, "").expect("config");
    // A teammate acts every 2-3 s instead of every 20-40 s.
    let command = format!(
        "SPOKE_DEMO_PACE=2-3 XDG_STATE_HOME={} {} --config {} --demo --home {} {extra}",
        dir.join("state").display(),
        env!("CARGO_BIN_EXE_spoke"),
        config.display(),
        home.display()
    );
    let tmux = Tmux::start(&Tmux::tag_of(dir), size, &command);
    // Seeding draws and analyses the demo's images first (slow in debug).
    // The queue opens folded: "Briefs 24/27" counts what shows of all.
    tmux.wait_until("Briefs n/27", Duration::from_secs(240), |s| {
        s.contains("Briefs ") && (s.contains("/27 ") || s.contains("/28 "))
    });
    (tmux, home, config)
}

#[test]
fn a_paste_full_of_keys_is_text_or_nothing_in_tmux() {
    if !tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let (tmux, _home, _config) = start_demo(dir.path());
    tmux.keys(&["4"]);
    let before = tmux.wait_for("waiting on you");
    let waiting = |screen: &str| -> String {
        screen
            .lines()
            .find_map(|l| l.split("Approvals · ").nth(1))
            .map(|rest| rest.split(" waiting").next().unwrap_or("").to_owned())
            .unwrap_or_default()
    };
    let count = waiting(&before);
    assert!(!count.is_empty(), "{before}");
    // In a list pane a paste is dropped: no approval, no quit.
    tmux.paste("nice work\na\nA\nr\nq\n");
    let screen = tmux.wait_for("paste ignored");
    assert_eq!(waiting(&screen), count, "{screen}");
    assert!(tmux.session_alive(), "a pasted q does not quit");
    // In the chat input the same paste is text, and nothing is sent.
    tmux.keys(&["3"]);
    tmux.wait_for("Threads");
    tmux.keys(&["i"]);
    tmux.paste("nice work\nq");
    let screen = tmux.wait_for("nice work");
    assert!(
        screen.contains("│q"),
        "the second line is in the input: {screen}"
    );
    assert!(!screen.contains("answering"), "nothing was sent: {screen}");
    assert!(tmux.session_alive());
}

#[test]
fn a_lead_filters_the_demo_queue_and_moves_a_brief_forward_in_tmux() {
    if !tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let (tmux, home, config) = start_demo(dir.path());
    tmux.wait_for("connected");

    tmux.keys(&["/"]);
    tmux.type_text("holiday email");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("Briefs 1/27");
    assert!(screen.contains("Holiday email header"), "{screen}");
    assert!(screen.contains("ready"), "{screen}");

    // S moves the brief to the next status in the lifecycle.
    tmux.keys(&["S"]);
    tmux.wait_for("1 brief → in_progress");
    tmux.wait_for("in_progress");
    // The TUI's sync session pushes the change to the demo relay; another
    // process can watch that happen in the shared replica.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = spoke(&config, &home, &["status", "--json"]);
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
        if status["pending"] == 0 && status["connected"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the change was never pushed: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    tmux.wait_for("synced");

    tmux.keys(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while tmux.session_alive() {
        assert!(Instant::now() < deadline, "spoke did not quit on q");
        std::thread::sleep(Duration::from_millis(100));
    }

    let out = spoke(&config, &home, &["brief", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let briefs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let holiday = briefs
        .as_array()
        .expect("array")
        .iter()
        .find(|b| b["title"] == "Holiday email header")
        .expect("the holiday brief");
    assert_eq!(holiday["status"], "in_progress");
}

impl Tmux {
    /// The screen with its colours, as escape sequences.
    fn screen_with_colours(&self) -> String {
        String::from_utf8_lossy(
            &self
                .run(&["capture-pane", "-p", "-e", "-t", "spoke"])
                .stdout,
        )
        .into_owned()
    }

    /// Waits until the screen shows at least `rows` rows of coloured
    /// half-block cells (an image drawn with half-blocks).
    fn wait_for_image_rows(&self, rows: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let screen = self.screen_with_colours();
            if image_rows(&screen) >= rows {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no image appeared; the screen was:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Rows holding several half-block cells drawn in colour.
fn image_rows(screen: &str) -> usize {
    screen
        .lines()
        .filter(|l| {
            let blocks = l.matches(['▀', '▄']).count();
            let colours = l.matches("\u{1b}[").count();
            blocks >= 8 && colours >= 8
        })
        .count()
}

/// Rows of `image_rows` within columns `from..to` of the plain screen.
fn half_blocks_in_columns(plain: &str, from: usize, to: usize) -> usize {
    plain
        .lines()
        .filter(|l| {
            l.chars()
                .skip(from)
                .take(to.saturating_sub(from))
                .filter(|c| matches!(c, '▀' | '▄'))
                .count()
                >= 4
        })
        .count()
}

#[test]
fn the_demo_shows_images_a_team_at_work_and_live_changes_in_tmux() {
    if !tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let (tmux, _home, _config) = start_demo_with(dir.path(), (160, 48), "");

    // Assets: the first row is an image, previewed in colour.
    tmux.keys(&["2"]);
    tmux.wait_for("Assets");
    tmux.keys(&["g", "g"]);
    let screen = tmux.wait_for_image_rows(6);
    assert!(image_rows(&screen) >= 6, "{screen}");

    // Approvals: the billboard's second version beside its first.
    tmux.keys(&["4"]);
    tmux.wait_for("waiting on you");
    tmux.keys(&["/"]);
    tmux.type_text("billboard v2");
    tmux.keys(&["Enter"]);
    let plain = tmux.wait_until("both versions", Duration::from_secs(60), |s| {
        s.contains("(this)") && s.contains("(previous)")
    });
    assert!(
        plain.contains("v2 (this)") && plain.contains("v1 (previous)"),
        "{plain}"
    );
    tmux.wait_for_image_rows(6);
    let plain = tmux.screen();
    let this = plain
        .lines()
        .find_map(|l| l.find("v2 (this)"))
        .expect("this label");
    let previous = plain
        .lines()
        .find_map(|l| l.find("v1 (previous)"))
        .expect("previous label");
    let (left, right) = (this.min(previous), this.max(previous));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let plain = tmux.screen();
        let (a, b) = (
            half_blocks_in_columns(&plain, left, right),
            half_blocks_in_columns(&plain, right, 160),
        );
        if a >= 3 && b >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "both versions are not drawn ({a} and {b} rows):\n{plain}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Team: whatever the day and hour, a teammate is at work and online.
    tmux.keys(&["5"]);
    let team = tmux.wait_until("a teammate online", Duration::from_secs(60), |s| {
        s.lines()
            .any(|l| l.contains("● working") && !l.contains("@ana"))
    });
    assert!(team.contains("LOOKING AT"), "{team}");

    // A teammate files a brief through the relay; it shows up unasked.
    tmux.keys(&["1"]);
    tmux.wait_until("a new brief", Duration::from_secs(90), |s| {
        s.contains("Pop-up store window")
    });

    tmux.keys(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while tmux.session_alive() {
        assert!(
            Instant::now() < deadline,
            "spoke did not quit on q with the team at work"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The number on a tab (`4 Approvals (2)`), if it has one.
fn badge(screen: &str, tab: &str) -> Option<u32> {
    let line = screen.lines().find(|l| l.contains(" spoke "))?;
    let rest = line.split(tab).nth(1)?.strip_prefix(" (")?;
    rest.split(')').next()?.parse().ok()
}

#[test]
fn a_request_for_me_shows_a_badge_and_a_toast_without_a_keypress_in_tmux() {
    if !tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path();
    let (rt, running) = common_cli::loopback_relay(&root.join("relay"));
    let registry = &running.relay.registry;
    let hub = registry.create_hub("Badges").expect("hub");
    let url = format!("ws://{}/v1/hubs/{}", running.addr, hub.id);
    let config = root.join("config.toml");
    std::fs::write(&config, "").expect("config");
    let join = |handle: &str, role: &str| {
        let home = root.join(handle);
        let token = registry
            .issue(&hub.id, handle, role, None)
            .expect("token")
            .0;
        let out = spoke(
            &config,
            &home,
            &["hub", "join", &url, "--token", &token, "--tz", "UTC"],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        home
    };
    let ana = join("ana", "lead");
    let kenji = join("kenji", "creative");

    let command = format!(
        "XDG_STATE_HOME={} {} --config {} --home {}",
        root.join("state").display(),
        env!("CARGO_BIN_EXE_spoke"),
        config.display(),
        ana.display()
    );
    let tmux = Tmux::start("badge", (140, 30), &command);
    let screen = tmux.wait_for("connected");
    assert_eq!(
        badge(&screen, "Approvals"),
        None,
        "nothing waits yet: {screen}"
    );

    // Kenji asks ana to approve his cover, from another machine.
    let img: image::RgbImage = image::ImageBuffer::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, 90])
    });
    let file = root.join("cover.png");
    img.save(&file).expect("png");
    let run = |args: &[&str]| {
        let out = spoke(&config, &kenji, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["asset", "import", file.to_str().expect("utf8")]);
    let assets: serde_json::Value =
        serde_json::from_str(&run(&["asset", "list", "--json"])).expect("json");
    let asset = assets[0]["id"].as_str().expect("asset id").to_owned();
    run(&[
        "approvals",
        "request",
        "--asset",
        &asset,
        "--reviewers",
        "ana",
    ]);
    run(&["sync"]);
    let pushed = Instant::now();

    // No key is pressed: the badge and the toast arrive by themselves.
    let screen = tmux.wait_until("4 Approvals (1)", Duration::from_secs(30), |s| {
        badge(s, "Approvals") == Some(1)
    });
    eprintln!(
        "badge shown {} ms after the push",
        pushed.elapsed().as_millis()
    );
    assert!(
        screen.contains("Waiting on you"),
        "a toast says what arrived: {screen}"
    );
    assert_eq!(badge(&screen, "Briefs"), None, "{screen}");

    // Deciding clears it.
    tmux.keys(&["4"]);
    tmux.wait_for("waiting on you");
    tmux.keys(&["a"]);
    tmux.wait_until("no badge", Duration::from_secs(30), |s| {
        badge(s, "Approvals").is_none()
    });
    tmux.keys(&["q"]);
    drop(tmux);
    rt.block_on(running.shutdown()).expect("shutdown");
}
