//! The TUI's everyday terminal I/O in a real terminal (tmux): `$EDITOR`
//! for a comment, the clipboard over OSC 52, and ctrl-z to the shell and
//! back. Keys go in with `send-keys`, the screen comes back with
//! `capture-pane`, and what was saved is read back with the CLI.

mod common_tmux;

use common_tmux::{Tmux, tmux_available};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A replica with one brief; returns the config, the home and its id.
struct Replica {
    config: PathBuf,
    home: PathBuf,
    brief: String,
}

fn spoke(r: &Replica, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spoke"))
        .arg("--config")
        .arg(&r.config)
        .arg("--home")
        .arg(&r.home)
        .args(args)
        .env_remove("SPOKE_HOME")
        .env_remove("SPOKE_CONFIG")
        // Logs stay beside the test's config, out of the user's state folder.
        .env("XDG_STATE_HOME", r.config.with_file_name("state"))
        .output()
        .expect("spoke runs")
}

fn replica(dir: &Path) -> Replica {
    let config = dir.join("config.toml");
    std::fs::write(&config, "").expect("config");
    let mut r = Replica {
        config,
        home: dir.join("home"),
        brief: String::new(),
    };
    let init = spoke(
        &r,
        &[
            "init",
            "--name",
            "Studio",
            "--handle",
            "ana",
            "--tz",
            "Europe/Lisbon",
        ],
    );
    assert!(init.status.success(), "{init:?}");
    let added = spoke(
        &r,
        &[
            "brief",
            "add",
            "--title",
            "Spring launch",
            "--priority",
            "p1",
        ],
    );
    assert!(added.status.success(), "{added:?}");
    r.brief = String::from_utf8_lossy(&added.stdout).trim().to_owned();
    assert!(r.brief.starts_with("b-"), "{}", r.brief);
    r
}

/// tmux on a private socket, running `command` in an 120x32 window.
fn tmux_with(dir: &Path, command: &str) -> Tmux {
    Tmux::start(&format!("io-{}", Tmux::tag_of(dir)), (120, 32), command)
}

fn tui_command(r: &Replica, env: &str) -> String {
    format!(
        "env -u VISUAL XDG_STATE_HOME={} {env} {} --config {} --home {}",
        r.config.with_file_name("state").display(),
        env!("CARGO_BIN_EXE_spoke"),
        r.config.display(),
        r.home.display()
    )
}

#[test]
fn a_comment_written_in_the_editor_lands_on_the_brief_in_tmux() {
    if !tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let r = replica(dir.path());
    // The editor checks it was handed the input's text in a .md file, then
    // writes two lines of its own.
    let editor = dir.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\ncase \"$1\" in *.md) ;; *) exit 7;; esac\n\
         grep -q 'typed first' \"$1\" || exit 8\n\
         printf 'Written in the editor\\nwith a second line\\n' > \"$1\"\n",
    )
    .expect("editor");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let tmux = tmux_with(
        dir.path(),
        &tui_command(&r, &format!("EDITOR='{}'", editor.display())),
    );
    tmux.wait_for("Briefs 1/1");

    tmux.keys(&["c"]);
    let prompt = tmux.wait_for("comment");
    assert!(
        prompt.contains("C-o editor"),
        "the prompt names the key: {prompt}"
    );
    tmux.type_text("typed first");
    tmux.wait_for("typed first");
    tmux.keys(&["C-o"]);
    let screen = tmux.wait_for("Written in the editor");
    assert!(screen.contains("with a second line"), "{screen}");
    assert!(
        !screen.contains("typed first"),
        "the text was replaced: {screen}"
    );
    assert!(
        screen.contains("Briefs 1/1"),
        "the TUI is back in full: {screen}"
    );
    tmux.keys(&["Enter"]);
    tmux.wait_for("@ana");

    // An editor that fails leaves the text as it was and says so.
    std::fs::write(&editor, "#!/bin/sh\nexit 3\n").expect("editor");
    tmux.keys(&["c"]);
    tmux.wait_for("comment");
    tmux.type_text("kept as typed");
    // Shown before C-o, so the key does not arrive in the typing's burst
    // (which the input takes as a paste).
    tmux.wait_for("kept as typed");
    tmux.keys(&["C-o"]);
    let screen = tmux.wait_for("exited with");
    assert!(screen.contains("kept as typed"), "{screen}");
    tmux.keys(&["Escape"]);

    tmux.keys(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while tmux.session_alive() {
        assert!(Instant::now() < deadline, "spoke did not quit on q");
        std::thread::sleep(Duration::from_millis(100));
    }
    let thread = format!("brief:{}", r.brief);
    let out = spoke(&r, &["chat", "show", "--thread", &thread, "--json"]);
    assert!(out.status.success(), "{out:?}");
    let messages: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let bodies: Vec<&str> = messages
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert_eq!(bodies, ["Written in the editor\nwith a second line"]);
}

#[test]
fn y_puts_the_brief_id_on_the_clipboard_through_osc52_in_tmux() {
    if !tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let r = replica(dir.path());
    let tmux = tmux_with(dir.path(), &tui_command(&r, ""));
    // tmux takes OSC 52 from the program into a paste buffer.
    let set = tmux.run(&["set-option", "-g", "set-clipboard", "on"]);
    assert!(set.status.success(), "{set:?}");
    tmux.wait_for("Briefs 1/1");

    tmux.keys(&["y"]);
    tmux.wait_for(&format!("Copied {} to the clipboard", r.brief));
    let id = tmux.wait_for_buffer(|b| b.starts_with("b-"));
    assert_eq!(id, r.brief);

    tmux.keys(&["Y"]);
    tmux.wait_for("as Markdown");
    let markdown = tmux.wait_for_buffer(|b| b.starts_with('#'));
    assert!(markdown.starts_with("# Spring launch\n"), "{markdown}");
    assert!(
        markdown.contains(&format!("- **id**: {}", r.brief)),
        "{markdown}"
    );
    assert!(markdown.contains("- **priority**: p1"), "{markdown}");
}

#[test]
fn ctrl_z_stops_the_tui_and_fg_brings_it_back_in_tmux() {
    if !tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let r = replica(dir.path());
    // A shell with job control, as a user has.
    let tmux = tmux_with(dir.path(), "env PS1='shell$ ' bash --norc --noprofile -i");
    tmux.wait_for("shell$");
    tmux.type_text(&tui_command(&r, ""));
    tmux.keys(&["Enter"]);
    tmux.wait_for("Briefs 1/1");

    tmux.keys(&["C-z"]);
    let screen = tmux.wait_until(
        "the shell's stopped-job note",
        Duration::from_secs(60),
        |s| s.contains("Stopped") && !s.contains("Briefs 1/1"),
    );
    assert!(screen.contains("shell$"), "{screen}");
    // The shell reads its own keys: the TUI is not stealing them.
    tmux.type_text("echo still-here");
    tmux.keys(&["Enter"]);
    tmux.wait_until("the shell's echo", Duration::from_secs(60), |s| {
        s.matches("still-here").count() >= 2
    });

    tmux.type_text("fg");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("Briefs 1/1");
    assert!(screen.contains("Spring launch"), "{screen}");
    // Keys work again after the resume.
    tmux.keys(&["y"]);
    tmux.wait_for("to the clipboard");
    tmux.keys(&["q"]);
    tmux.wait_until("the shell after quitting", Duration::from_secs(60), |s| {
        !s.contains("Briefs 1/1") && s.trim_end().ends_with("shell$")
    });
}
