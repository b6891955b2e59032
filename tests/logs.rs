//! The client's log file: the real `spoke` syncing with a relay on loopback
//! writes `spoke.log` in `$XDG_STATE_HOME/spoke/`, at the level `--log-level`
//! or `RUST_LOG` asks for, and a state folder that cannot be written never
//! fails a command.

mod common_cli;

use common_cli::{assert_success, base_command, loopback_relay, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::Output;

/// A relay with one hub and a member who has joined it from `home`.
struct Joined {
    _rt: tokio::runtime::Runtime,
    _relay: spoke_relay::server::Running,
    hub: String,
    dir: tempfile::TempDir,
}

impl Joined {
    fn start() -> Joined {
        let dir = tempfile::tempdir().expect("tmp");
        let (rt, relay) = loopback_relay(&dir.path().join("relay"));
        let hub = relay.relay.registry.create_hub("Logs").expect("hub");
        let (token, _) = relay
            .relay
            .registry
            .issue(&hub.id, "ana", "lead", None)
            .expect("token");
        let url = format!("ws://{}/v1/hubs/{}", relay.addr, hub.id);
        let joined = Joined {
            _rt: rt,
            _relay: relay,
            hub: hub.id,
            dir,
        };
        let out = joined.spoke(
            &joined.state("join"),
            &["hub", "join", &url, "--token", &token],
            &[],
        );
        assert_success(&out, &["hub", "join"]);
        joined
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// A fresh state folder for one run.
    fn state(&self, name: &str) -> PathBuf {
        self.dir.path().join("state").join(name)
    }

    fn spoke(&self, state: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let config = self.dir.path().join("config.toml");
        if !config.exists() {
            std::fs::write(&config, "").expect("config");
        }
        let mut cmd = base_command();
        cmd.arg("--home")
            .arg(self.home())
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("XDG_STATE_HOME", state);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run spoke")
    }

    /// A change to push, so a sync has something to count.
    fn add_brief(&self, title: &str) {
        let out = self.spoke(
            &self.state("briefs"),
            &["brief", "add", "--title", title],
            &[],
        );
        assert_success(&out, &["brief", "add"]);
    }
}

fn log_text(state: &Path) -> String {
    let path = state.join("spoke").join("spoke.log");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("no log at {}: {e}", path.display()))
}

#[test]
fn a_sync_is_logged_with_its_hub_and_counts() {
    let j = Joined::start();
    j.add_brief("Logged launch");
    let state = j.state("sync");
    let out = j.spoke(&state, &["sync"], &[]);
    assert_success(&out, &["sync"]);
    assert!(
        stderr(&out).is_empty(),
        "nothing on stderr: {}",
        stderr(&out)
    );

    let log = log_text(&state);
    let line = log
        .lines()
        .find(|l| l.contains("sync session done"))
        .unwrap_or_else(|| panic!("no sync line in:\n{log}"));
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("spoke::sync"), "{line}");
    assert!(line.contains(&format!("hub={}", j.hub)), "{line}");
    assert!(line.contains("pushed=1"), "the brief was pushed: {line}");
    assert!(line.contains("pulled="), "{line}");
    assert!(
        log.contains("welcomed by the relay")
            && log.contains("member=ana")
            && log.contains("role=lead"),
        "{log}"
    );
    assert!(!log.contains(" DEBUG "), "info by default:\n{log}");
}

#[test]
fn the_level_comes_from_the_flag_before_rust_log() {
    let j = Joined::start();

    // --log-level warn wins over RUST_LOG=debug.
    let quiet = j.state("quiet");
    let out = j.spoke(
        &quiet,
        &["--log-level", "warn", "sync"],
        &[("RUST_LOG", "debug")],
    );
    assert_success(&out, &["--log-level", "warn", "sync"]);
    let log = std::fs::read_to_string(quiet.join("spoke/spoke.log")).unwrap_or_default();
    assert!(
        !log.contains("sync session done") && !log.contains(" INFO ") && !log.contains(" DEBUG "),
        "nothing under warn:\n{log}"
    );

    // RUST_LOG in env-filter syntax opens up one target.
    let loud = j.state("loud");
    let out = j.spoke(&loud, &["sync"], &[("RUST_LOG", "spoke::sync=debug")]);
    assert_success(&out, &["sync"]);
    let log = log_text(&loud);
    assert!(
        log.lines().any(|l| l.contains(" DEBUG ")
            && l.contains("spoke::sync")
            && l.contains("connecting to the relay")),
        "debug sync lines:\n{log}"
    );
    assert!(log.contains("sync session done"), "{log}");

    // A level that is not one is bad usage.
    let out = j.spoke(&loud, &["--log-level", "spoke::sync=loud", "status"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn an_unwritable_state_folder_does_not_fail_the_command() {
    let j = Joined::start();
    j.add_brief("Still synced");
    // A file where the state folder should be.
    let blocked = j.dir.path().join("blocked");
    std::fs::write(&blocked, "not a folder").expect("file");
    let out = j.spoke(&blocked, &["sync"], &[]);
    assert_success(&out, &["sync"]);
    assert!(
        stdout(&out).contains("1 pushed"),
        "the sync ran: {}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert_eq!(
        err.lines().count(),
        1,
        "one line says the log is off: {err}"
    );
    assert!(err.contains("no log file"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&blocked).expect("read"),
        "not a folder"
    );
}
