//! Invites end to end: the real `spoke-relay` serves a data folder on
//! loopback, its admin commands (other processes on that folder) print a
//! `spoke hub join` line, and the real `spoke` runs that line as printed on
//! a fresh home. The relay's base URL joins too, the relay naming the
//! token's hub; a token it does not accept gets an error saying what to pass.

mod common_cli;

use common_cli::{assert_success, json_in, parse_json, relay_binary, spoke_in, stderr, stdout};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn relay(args: &[&str]) -> Output {
    Command::new(relay_binary())
        .args(args)
        .env_remove("SPOKE_RELAY_DATA")
        .env_remove("SPOKE_RELAY_PUBLIC_URL")
        .output()
        .expect("run spoke-relay")
}

fn relay_ok(args: &[&str]) -> String {
    let out = relay(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "`spoke-relay {}` should succeed\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// `spoke-relay serve` on a loopback port; killed when dropped.
struct ServedRelay {
    child: Child,
    data: tempfile::TempDir,
}

impl ServedRelay {
    fn start() -> ServedRelay {
        let data = tempfile::tempdir().expect("a data folder");
        let child = Command::new(relay_binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data.path())
            .env_remove("SPOKE_RELAY_PUBLIC_URL")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start spoke-relay serve");
        let mut served = ServedRelay { child, data };
        // The relay records its address once it is bound (and accepting).
        let record = served.data.path().join("public-url.json");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !record.exists() {
            if let Some(status) = served.child.try_wait().expect("poll the relay") {
                panic!("spoke-relay serve exited early: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "spoke-relay serve recorded no address"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        served
    }

    fn data(&self) -> &str {
        self.data.path().to_str().expect("a UTF-8 temp path")
    }
}

impl Drop for ServedRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Splits a printed line as a shell would.
fn shell_words(line: &str) -> Vec<String> {
    spoke::service::assets::split_command(line).expect("a line a shell can split")
}

/// `spoke-relay token issue ... [EXTRA...] --json` for `handle`, parsed.
fn issue(data: &str, hub: &str, handle: &str, role: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "token", "issue", "--data", data, "--hub", hub, "--handle", handle, "--role", role,
    ];
    args.extend_from_slice(extra);
    args.push("--json");
    parse_json(&relay_ok(&args), &["token", "issue", "--json"])
}

/// The one `spoke hub join ...` line in what an admin command printed.
fn join_line(printed: &str) -> String {
    let lines: Vec<&str> = printed
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("spoke hub join "))
        .collect();
    assert_eq!(lines.len(), 1, "one join line expected in:\n{printed}");
    lines[0].to_owned()
}

/// Runs a printed `spoke ...` line on `home`, as a shell would.
fn run_line(home: &Path, line: &str) -> Output {
    let words = shell_words(line);
    assert_eq!(words.first().map(String::as_str), Some("spoke"), "{line}");
    let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    spoke_in(home, &args)
}

fn hub_of(home: &Path) -> String {
    let status = json_in(home, &["status"]);
    status["hub"].as_str().unwrap_or_default().to_owned()
}

fn field(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` should be a string in {v}"))
        .to_owned()
}

#[test]
fn printed_join_lines_join_as_printed() {
    let served = ServedRelay::start();
    let homes = tempfile::tempdir().expect("homes");

    let created = relay_ok(&["hub", "create", "Studio North", "--data", served.data()]);
    let hub = created
        .lines()
        .find_map(|l| l.strip_prefix("hub "))
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|| panic!("no hub id in:\n{created}"));
    let line = join_line(&created);
    assert!(
        line.contains(&format!("/v1/hubs/{hub}")),
        "the line names the hub: {line}"
    );

    let ana = homes.path().join("ana");
    let out = run_line(&ana, &line);
    assert_success(&out, &["hub", "join", "(the printed line)"]);
    assert!(
        stdout(&out).contains("Joined \"Studio North\" as @admin (lead)"),
        "{}",
        stdout(&out)
    );
    assert_eq!(hub_of(&ana), hub);

    // A second member's invite from `token issue` joins too.
    let issued = relay_ok(&[
        "token",
        "issue",
        "--data",
        served.data(),
        "--hub",
        &hub,
        "--handle",
        "kenji",
        "--role",
        "creative",
    ]);
    let kenji = homes.path().join("kenji");
    let out = run_line(&kenji, &join_line(&issued));
    assert_success(&out, &["hub", "join", "(kenji's line)"]);
    assert!(
        stdout(&out).contains("as @kenji (creative)"),
        "{}",
        stdout(&out)
    );
    assert_eq!(hub_of(&kenji), hub);

    // The JSON carries the same line and the relay's URL.
    let issued = issue(served.data(), &hub, "maya", "reviewer", &[]);
    let url = field(&issued, "url");
    let token = field(&issued, "token");
    assert!(url.starts_with("ws://127.0.0.1:"), "{issued}");
    assert_eq!(
        field(&issued, "join"),
        format!("spoke hub join {url}/v1/hubs/{hub} --token {token}")
    );

    // The relay's base URL joins: the relay names the token's hub.
    for (who, base) in [("maya", url.clone()), ("leo", format!("{url}/v1/"))] {
        let token = if who == "maya" {
            token.clone()
        } else {
            let issued = issue(served.data(), &hub, who, "creative", &[]);
            field(&issued, "token")
        };
        let home = homes.path().join(who);
        let out = spoke_in(&home, &["hub", "join", &base, "--token", &token, "--json"]);
        assert_success(&out, &["hub", "join", &base]);
        let joined = parse_json(&stdout(&out), &["hub", "join", &base]);
        assert_eq!(field(&joined, "hub"), hub, "{joined}");
        assert_eq!(field(&joined, "member"), who, "{joined}");
        assert_eq!(hub_of(&home), hub);
    }
}

#[test]
fn a_token_the_relay_refuses_on_its_base_url_says_what_to_pass() {
    let served = ServedRelay::start();
    let homes = tempfile::tempdir().expect("homes");
    let created = parse_json(
        &relay_ok(&["hub", "create", "Tokens", "--data", served.data(), "--json"]),
        &["hub", "create", "--json"],
    );
    let url = field(&created, "url");
    let hub = field(&created, "hub");
    let issued = issue(served.data(), &hub, "gone", "creative", &[]);
    relay_ok(&[
        "token",
        "revoke",
        "--data",
        served.data(),
        "--hub",
        &hub,
        &field(&issued, "token_id"),
    ]);

    for (i, (bad, reason)) in [
        (
            "spk_aaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".to_owned(),
            "unknown token",
        ),
        (field(&issued, "token"), "was revoked"),
        ("not-a-token".to_owned(), "malformed token"),
    ]
    .into_iter()
    .enumerate()
    {
        let home = homes.path().join(format!("stranger-{i}"));
        let out = spoke_in(&home, &["hub", "join", &url, "--token", &bad]);
        let err = stderr(&out);
        assert_ne!(out.status.code(), Some(0), "join with {bad}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            err.contains("does not accept this token") && err.contains(reason),
            "the error says why ({reason}): {err}"
        );
        assert!(
            err.contains("spoke-relay token issue") && err.contains("spoke hub join"),
            "the error says what to pass instead: {err}"
        );
        assert!(
            !home.join("replica.redb").exists(),
            "a refused join leaves no replica behind"
        );
    }
}

#[test]
fn without_a_known_url_the_admin_commands_say_how_to_set_one() {
    let data = tempfile::tempdir().expect("a data folder");
    let d = data.path().to_str().expect("utf-8");

    let out = relay(&["hub", "create", "Offline", "--data", d]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("no URL is known") && err.contains("--public-url"),
        "{err}"
    );
    assert!(
        stdout(&out).contains("spoke hub join URL/v1/hubs/"),
        "{}",
        stdout(&out)
    );
    let created = parse_json(
        &relay_ok(&["hub", "create", "Offline", "--data", d, "--json"]),
        &["hub", "create", "--json"],
    );
    assert!(
        created["join"].is_null() && created["url"].is_null(),
        "{created}"
    );

    // --public-url gives the line, normalised.
    let issued = issue(
        d,
        &field(&created, "hub"),
        "kenji",
        "creative",
        &["--public-url", "https://hub.example.com/"],
    );
    assert_eq!(field(&issued, "url"), "wss://hub.example.com");
    assert_eq!(
        field(&issued, "join"),
        format!(
            "spoke hub join wss://hub.example.com/v1/hubs/{} --token {}",
            field(&created, "hub"),
            field(&issued, "token")
        )
    );
}

#[test]
fn printed_lines_split_like_a_shell() {
    assert_eq!(
        shell_words("spoke hub join 'wss://x/a b' --token spk_1_2"),
        ["spoke", "hub", "join", "wss://x/a b", "--token", "spk_1_2"]
    );
    assert_eq!(shell_words(r"a 'it'\''s' b"), ["a", "it's", "b"]);
}
