//! Shell completions and man pages from the real binary: the bash script
//! loaded in real bash offers a brief id from a sandbox replica and the
//! subcommand names; the zsh and fish scripts parse (fish also offers the
//! id); `spoke man` writes pages that `man` renders.

mod common_cli;

use common_cli::{Sandbox, assert_success, base_command, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether `program` runs; without it the test skips with a notice, unless
/// CI says every outside program must be there.
fn available(program: &str, version_flag: &str) -> bool {
    let found = Command::new(program)
        .arg(version_flag)
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("SPOKE_REQUIRE_PEERS").is_none(),
            "SPOKE_REQUIRE_PEERS is set but {program} is not installed"
        );
        eprintln!("skipped: install {program} (apt-get install {program}) to run this test");
    }
    found
}

/// `PATH` with the folder of the built `spoke` first, as a user's would have it.
fn path_with_spoke() -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_spoke"))
        .parent()
        .expect("the binary's folder")
        .to_path_buf();
    let rest = std::env::var("PATH").unwrap_or_default();
    format!("{}:{rest}", bin.display())
}

/// Writes `spoke completions SHELL` into the sandbox.
fn script(sb: &Sandbox, shell: &str) -> PathBuf {
    let out = base_command()
        .args(["completions", shell])
        .output()
        .expect("run spoke completions");
    assert_success(&out, &["completions", shell]);
    sb.file(&format!("spoke.{shell}"), &out.stdout)
}

/// A sandbox hub with one brief; returns it and the brief's id.
fn hub_with_brief() -> (Sandbox, String) {
    let sb = Sandbox::with_hub();
    let id = sb
        .ok(&["brief", "add", "--title", "Spring launch"])
        .trim()
        .to_owned();
    assert!(!id.is_empty());
    (sb, id)
}

/// Loads the bash script, completes `line` (the cursor at its end) the way
/// bash's programmable completion calls the function, and returns COMPREPLY.
fn bash_complete(script: &Path, line: &str, home: Option<&Path>) -> Vec<String> {
    let driver = r#"
source "$1" || exit 3
COMP_LINE="$2"
COMP_POINT=${#COMP_LINE}
read -ra COMP_WORDS <<< "$COMP_LINE"
[[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_TYPE=9
spec=$(complete -p spoke) || exit 4
fn=${spec#*-F }
fn=${fn%% *}
"$fn" spoke "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(driver)
        .arg("driver")
        .arg(script)
        .arg(line)
        .env("PATH", path_with_spoke())
        .env_remove("SPOKE_HOME")
        .env_remove("SPOKE_CONFIG")
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_CONFIG_HOME");
    if let Some(home) = home {
        cmd.env("SPOKE_HOME", home);
    }
    let out = cmd.output().expect("run bash");
    assert_eq!(
        out.status.code(),
        Some(0),
        "completing `{line}` in bash\nstdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_offers_brief_ids_from_the_replica() {
    if !available("bash", "--version") {
        return;
    }
    let (sb, id) = hub_with_brief();
    let script = script(&sb, "bash");

    let offered = bash_complete(&script, "spoke brief show ", Some(&sb.home));
    assert_eq!(offered, vec![id.clone()], "the one brief, from SPOKE_HOME");

    // The --home on the line wins; a prefix narrows.
    let line = format!("spoke --home {} brief show {}", sb.home.display(), &id[..3]);
    assert_eq!(bash_complete(&script, &line, None), vec![id.clone()]);
    let line = format!("spoke --home {} brief status zzz", sb.home.display());
    assert!(bash_complete(&script, &line, None).is_empty());

    // An option's value is not an id; the word after the id is not one either.
    let line = format!("spoke --home {} brief assign {id} ", sb.home.display());
    assert!(!bash_complete(&script, &line, None).contains(&id));
}

#[test]
fn bash_completes_subcommand_names() {
    if !available("bash", "--version") {
        return;
    }
    let sb = Sandbox::new();
    let script = script(&sb, "bash");
    assert_eq!(
        bash_complete(&script, "spoke bri", None),
        vec!["brief".to_owned()]
    );
    let offered = bash_complete(&script, "spoke brief s", None);
    for name in ["show", "set", "status"] {
        assert!(offered.contains(&name.to_owned()), "{name} in {offered:?}");
    }
    let offered = bash_complete(&script, "spoke doc", None);
    assert_eq!(offered, vec!["doctor".to_owned()]);
}

#[test]
fn ids_come_quietly_and_without_a_replica_there_are_none() {
    let (sb, id) = hub_with_brief();
    let out = base_command()
        .arg("--home")
        .arg(&sb.home)
        .args(["__complete", "brief"])
        .output()
        .expect("run");
    assert_success(&out, &["__complete", "brief"]);
    assert_eq!(stdout(&out), format!("{id}\tSpring launch\n"));

    let missing = sb.root.path().join("nowhere");
    let out = base_command()
        .arg("--home")
        .arg(&missing)
        .args(["__complete", "brief", "b-"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).is_empty() && stderr(&out).is_empty(),
        "{out:?}"
    );
    assert!(!missing.exists(), "completion creates nothing");
}

#[test]
fn zsh_script_parses() {
    if !available("zsh", "--version") {
        return;
    }
    let sb = Sandbox::new();
    let script = script(&sb, "zsh");
    let out = Command::new("zsh")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("zsh");
    assert_eq!(out.status.code(), Some(0), "zsh -n: {}", stderr(&out));
}

#[test]
fn fish_script_parses_and_offers_brief_ids() {
    if !available("fish", "--version") {
        return;
    }
    let (sb, id) = hub_with_brief();
    let script = script(&sb, "fish");
    let out = Command::new("fish")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("fish");
    assert_eq!(out.status.code(), Some(0), "fish -n: {}", stderr(&out));

    let out = Command::new("fish")
        .arg("--no-config")
        .arg("-c")
        .arg(format!(
            "source {}; complete -C 'spoke brief show '",
            script.display()
        ))
        .env("PATH", path_with_spoke())
        .env("SPOKE_HOME", &sb.home)
        .output()
        .expect("fish");
    assert_eq!(
        stdout(&out),
        format!("{id}\tSpring launch\n"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn man_pages_are_written_for_every_subcommand_and_render() {
    let sb = Sandbox::new();
    let dir = sb.root.path().join("man");
    let out = base_command()
        .args(["man", "--out"])
        .arg(&dir)
        .output()
        .expect("run spoke man");
    assert_success(&out, &["man", "--out"]);
    for page in [
        "spoke.1",
        "spoke-brief.1",
        "spoke-doctor.1",
        "spoke-brief-show.1",
    ] {
        assert!(dir.join(page).is_file(), "{page} in {}", dir.display());
    }
    assert!(
        !dir.join("spoke-__complete.1").exists(),
        "hidden commands get no page"
    );
    let main = std::fs::read_to_string(dir.join("spoke.1")).expect("read spoke.1");
    assert!(
        main.starts_with(".ie") || main.contains(".TH"),
        "roff: {main}"
    );
    for sub in ["brief", "doctor", "completions", "hub"] {
        assert!(main.contains(sub), "spoke.1 mentions {sub}");
    }

    let out = base_command().arg("man").output().expect("run spoke man");
    assert_success(&out, &["man"]);
    assert_eq!(stdout(&out), main, "without --out, spoke.1 goes to stdout");

    if !available("man", "--version") {
        return;
    }
    let out = Command::new("man")
        .arg("-l")
        .arg(dir.join("spoke.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
        .expect("man");
    assert_eq!(out.status.code(), Some(0), "man -l: {}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("SYNOPSIS") && text.contains("doctor"),
        "{text}"
    );
}
