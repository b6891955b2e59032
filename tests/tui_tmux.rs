//! End to end in a real terminal: `spoke --demo` runs inside tmux; keys go
//! in with `send-keys`, the screen comes back with `capture-pane`, and the
//! change is then checked from the command line.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A private tmux server for this test, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs (install it: apt-get install tmux)")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "spoke"]).stdout)
            .into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "spoke"];
        args.extend_from_slice(keys);
        assert!(self.run(&args).status.success(), "send-keys {keys:?}");
    }

    fn type_text(&self, text: &str) {
        assert!(
            self.run(&["send-keys", "-t", "spoke", "-l", text])
                .status
                .success()
        );
    }

    /// Waits until the screen shows `needle`.
    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if screen.contains(needle) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "`{needle}` never appeared; the screen was:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn session_alive(&self) -> bool {
        self.run(&["has-session", "-t", "spoke"]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn spoke(config: &Path, home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spoke"))
        .arg("--config")
        .arg(config)
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("SPOKE_HOME")
        .env_remove("SPOKE_CONFIG")
        .output()
        .expect("spoke runs")
}

/// Whether tmux is installed; without it the test skips with a notice,
/// unless CI says every outside program must be there.
fn tmux_available() -> bool {
    let found = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("SPOKE_REQUIRE_PEERS").is_none(),
            "SPOKE_REQUIRE_PEERS is set but tmux is not installed"
        );
        eprintln!("skipped: install tmux (apt-get install tmux) to run the terminal test");
    }
    found
}

/// Starts `spoke --demo` in a fresh tmux session and waits for its queue.
fn start_demo(dir: &Path) -> (Tmux, std::path::PathBuf, std::path::PathBuf) {
    let home = dir.join("demo");
    let config = dir.join("config.toml");
    std::fs::write(&config, "").expect("config");
    let tmux = Tmux {
        socket: format!(
            "spoke-test-{}-{}",
            std::process::id(),
            dir.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ),
    };
    let command = format!(
        "{} --config {} --demo --home {}",
        env!("CARGO_BIN_EXE_spoke"),
        config.display(),
        home.display()
    );
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "spoke",
        "-x",
        "120",
        "-y",
        "32",
        &command,
    ]);
    assert!(started.status.success(), "tmux new-session: {started:?}");
    tmux.wait_for("Briefs 27/27");
    (tmux, home, config)
}

impl Tmux {
    /// Pastes `text` the way a terminal does: as one bracketed paste.
    fn paste(&self, text: &str) {
        let buffer = self.run(&["set-buffer", "-b", "hostile", text]);
        assert!(buffer.status.success(), "set-buffer: {buffer:?}");
        let pasted = self.run(&["paste-buffer", "-p", "-b", "hostile", "-t", "spoke"]);
        assert!(pasted.status.success(), "paste-buffer: {pasted:?}");
    }
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
