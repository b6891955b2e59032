//! The built `spoke` binary in a sandbox for the CLI tests: a temporary home
//! and an empty config, with the environment variables that could point at
//! the user's own data removed, and the checks on what a run printed.

// Each test crate that includes this uses part of it.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use tempfile::TempDir;

/// `spoke init` of the Demo hub by ana in Europe/Lisbon.
pub const INIT_DEMO: [&str; 7] = [
    "init",
    "--name",
    "Demo",
    "--handle",
    "ana",
    "--tz",
    "Europe/Lisbon",
];

/// A temporary root holding an (initially empty) data folder and a config
/// file (empty unless a test writes one); both vanish when it is dropped.
pub struct Sandbox {
    pub root: TempDir,
    pub home: PathBuf,
    pub config: PathBuf,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let root = tempfile::tempdir().expect("create a temporary folder");
        let home = root.path().join("home");
        std::fs::create_dir(&home).expect("create the home folder");
        let config = root.path().join("config.toml");
        std::fs::write(&config, "").expect("write an empty config file");
        Sandbox { root, home, config }
    }

    /// A sandbox with the Demo hub created by `ana` in Europe/Lisbon.
    pub fn with_hub() -> Sandbox {
        let sb = Sandbox::new();
        sb.ok(&INIT_DEMO);
        sb
    }

    pub fn replica(&self) -> PathBuf {
        self.home.join("replica.redb")
    }

    /// A file in the sandbox (outside the home) with these bytes.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.root.path().join(name);
        std::fs::write(&path, bytes).expect("write a test file");
        path
    }

    /// `spoke --home HOME --config CONFIG ARGS...`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_config(&self.config, args)
    }

    /// `spoke --home HOME --config CONFIG ARGS...` with another config file.
    pub fn run_with_config(&self, config: &Path, args: &[&str]) -> Output {
        base_command()
            .arg("--home")
            .arg(&self.home)
            .arg("--config")
            .arg(config)
            .args(args)
            .output()
            .expect("run the spoke binary")
    }

    /// Runs and asserts exit code 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_success(&out, args);
        stdout(&out)
    }

    /// Runs with `--json`, asserts success and parses stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        parse_json(&self.ok(&all), &all)
    }
}

/// `spoke --home HOME --config HOME.toml ARGS...`: one member's own data
/// folder beside its (empty unless written) config, for tests where several
/// members share a hub.
pub fn spoke_in(home: &Path, args: &[&str]) -> Output {
    let config = home.with_extension("toml");
    if !config.exists() {
        std::fs::write(&config, "").expect("write a member's config file");
    }
    base_command()
        .arg("--home")
        .arg(home)
        .arg("--config")
        .arg(&config)
        .args(args)
        .output()
        .expect("run the spoke binary")
}

/// [`spoke_in`] that must succeed; returns stdout.
pub fn ok_in(home: &Path, args: &[&str]) -> String {
    let out = spoke_in(home, args);
    assert_success(&out, args);
    stdout(&out)
}

/// [`spoke_in`] with `--json`, which must succeed; parses stdout.
pub fn json_in(home: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    parse_json(&ok_in(home, &all), &all)
}

/// A relay on a loopback port with a temporary data folder, and the
/// runtime serving it (dropped together).
pub fn loopback_relay(data: &Path) -> (tokio::runtime::Runtime, spoke_relay::server::Running) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime for the relay");
    let data = data.to_path_buf();
    let running = rt
        .block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            spoke_relay::server::start(listener, spoke_relay::relay::RelayConfig::new(data)).await
        })
        .expect("start a relay on loopback");
    (rt, running)
}

/// A `spoke` command with no inherited settings that could point at real data.
pub fn base_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spoke"));
    for var in [
        "SPOKE_HOME",
        "SPOKE_CONFIG",
        "SPOKE_TOKEN",
        "SPOKE_CA_FILE",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "XDG_STATE_HOME",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    // Logs go to the build's scratch folder, never the user's state folder.
    cmd.env("XDG_STATE_HOME", state_home());
    // A panic should show as one message, not a backtrace, in failure output.
    cmd.env("RUST_BACKTRACE", "0");
    cmd
}

/// Where the tests' `spoke` runs keep their logs: the build's scratch
/// folder, unless a test points `XDG_STATE_HOME` elsewhere.
pub fn state_home() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("spoke-state")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn assert_success(out: &Output, args: &[&str]) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "`spoke {}` should succeed\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        stdout(out),
        stderr(out)
    );
}

/// Asserts exit code 2 (bad input) and no panic; returns stderr.
pub fn assert_exit_code_2(out: &Output, what: &str) -> String {
    let err = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: expected exit code 2 (bad input)\nstdout:\n{}\nstderr:\n{err}",
        stdout(out)
    );
    assert!(!err.contains("panicked"), "{what}: panicked:\n{err}");
    err
}

/// Parses what `spoke ARGS` printed as JSON.
pub fn parse_json(text: &str, args: &[&str]) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| {
        panic!(
            "`spoke {}` printed invalid JSON ({e}):\n{text}",
            args.join(" ")
        )
    })
}

pub fn array(v: Value, what: &str) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        other => panic!("{what} should be a JSON array, got {other}"),
    }
}

pub fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` should be a string in {v}"))
}

/// A loopback port nothing listens on.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A relay on loopback with one hub, which members join through the real
/// `spoke hub join`; each join issues a fresh token, so a second machine of
/// the same member gets its own client id.
pub struct LoopbackHub {
    pub rt: tokio::runtime::Runtime,
    pub running: spoke_relay::server::Running,
    pub hub_id: String,
    pub url: String,
}

impl LoopbackHub {
    /// A relay keeping its data in `data`, with a hub named `name`.
    pub fn start(data: &Path, name: &str) -> LoopbackHub {
        let (rt, running) = loopback_relay(data);
        let hub = running.relay.registry.create_hub(name).expect("hub");
        let url = format!("ws://{}/v1/hubs/{}", running.addr, hub.id);
        LoopbackHub {
            rt,
            running,
            hub_id: hub.id,
            url,
        }
    }

    /// `home` joins as `handle` with `role`, in Europe/Lisbon.
    pub fn join(&self, home: &Path, handle: &str, role: &str) {
        let token = self
            .running
            .relay
            .registry
            .issue(&self.hub_id, handle, role, None)
            .expect("token")
            .0;
        ok_in(
            home,
            &[
                "hub",
                "join",
                &self.url,
                "--token",
                &token,
                "--tz",
                "Europe/Lisbon",
            ],
        );
    }
}

/// The `spoke-relay` binary beside the `spoke` one. `cargo test -p spoke`
/// does not build another package's binaries, so it is built (or found up
/// to date) here, once per test run.
pub fn relay_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let spoke = Path::new(env!("CARGO_BIN_EXE_spoke"));
        let bin = spoke.with_file_name(format!("spoke-relay{}", std::env::consts::EXE_SUFFIX));
        let profile_dir = spoke.parent().expect("the binary's folder");
        let target_dir = profile_dir.parent().expect("the target folder");
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "-p", "spoke-relay", "--bin", "spoke-relay"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cargo.arg("--release");
        }
        let status = cargo
            .arg("--target-dir")
            .arg(target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo to build spoke-relay");
        assert!(status.success(), "building spoke-relay failed");
        assert!(bin.exists(), "no spoke-relay binary at {}", bin.display());
        bin
    })
}
