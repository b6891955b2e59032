//! A private tmux server for the tests that drive the TUI in a real
//! terminal: keys in with `send-keys`, the screen back with `capture-pane`.

// Each test crate that includes this uses part of it.
#![allow(dead_code)]

use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A private tmux server for one test, killed on drop.
pub struct Tmux {
    pub socket: String,
}

impl Tmux {
    /// A new tmux server on a socket named after this process and `tag`,
    /// running `command` in a detached `width`x`height` session `spoke`.
    pub fn start(tag: &str, (width, height): (u16, u16), command: &str) -> Tmux {
        let tmux = Tmux {
            socket: format!("spoke-test-{}-{tag}", std::process::id()),
        };
        let (width, height) = (width.to_string(), height.to_string());
        let started = tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "spoke",
            "-x",
            &width,
            "-y",
            &height,
            command,
        ]);
        assert!(started.status.success(), "tmux new-session: {started:?}");
        tmux
    }

    /// A tag for [`Tmux::start`] from a test's temporary folder.
    pub fn tag_of(dir: &std::path::Path) -> String {
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs (install it: apt-get install tmux)")
    }

    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "spoke"]).stdout)
            .into_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "spoke"];
        args.extend_from_slice(keys);
        assert!(self.run(&args).status.success(), "send-keys {keys:?}");
    }

    pub fn type_text(&self, text: &str) {
        assert!(
            self.run(&["send-keys", "-t", "spoke", "-l", text])
                .status
                .success()
        );
    }

    /// Waits until the screen shows `needle`.
    pub fn wait_for(&self, needle: &str) -> String {
        self.wait_until(needle, Duration::from_secs(30), |s| s.contains(needle))
    }

    /// Waits until `ready` holds for the screen.
    pub fn wait_until(
        &self,
        needle: &str,
        within: Duration,
        ready: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + within;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "`{needle}` never appeared; the screen was:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Pastes `text` the way a terminal does: as one bracketed paste.
    pub fn paste(&self, text: &str) {
        let buffer = self.run(&["set-buffer", "-b", "hostile", text]);
        assert!(buffer.status.success(), "set-buffer: {buffer:?}");
        let pasted = self.run(&["paste-buffer", "-p", "-b", "hostile", "-t", "spoke"]);
        assert!(pasted.status.success(), "paste-buffer: {pasted:?}");
    }

    /// The newest paste buffer, which OSC 52 fills with `set-clipboard on`.
    pub fn wait_for_buffer(&self, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.run(&["show-buffer"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() && ready(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "the clipboard never got it; last buffer: {text:?}; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn session_alive(&self) -> bool {
        self.run(&["has-session", "-t", "spoke"]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// Whether tmux is installed; without it the test skips with a notice,
/// unless CI says every outside program must be there.
pub fn tmux_available() -> bool {
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
