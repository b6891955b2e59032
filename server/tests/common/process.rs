//! A real `spoke-relay` process for the tests that need one: started on a
//! data folder, answering `/healthz`, killed when dropped; and the relay's
//! CLI, for hubs and tokens made the way an admin makes them.

use super::{TIMEOUT, try_http};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_spoke-relay");

/// Runs a CLI command that prints JSON and returns it.
pub fn cli_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run spoke-relay");
    assert!(
        out.status.success(),
        "spoke-relay {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the CLI prints JSON with --json")
}

pub fn field(value: &serde_json::Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("no string `{name}` in {value}"))
        .to_owned()
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A `spoke-relay serve` child process, killed when dropped so a failing test
/// never leaves it behind.
pub struct RelayProcess {
    child: Option<Child>,
    pub addr: SocketAddr,
    log: PathBuf,
}

impl RelayProcess {
    pub async fn start(data: &Path, port: u16, log_dir: &Path, run: usize) -> RelayProcess {
        RelayProcess::start_with(data, port, log_dir, run, &[]).await
    }

    /// Starts `spoke-relay serve` with extra options.
    pub async fn start_with(
        data: &Path,
        port: u16,
        log_dir: &Path,
        run: usize,
        extra: &[&str],
    ) -> RelayProcess {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = log_dir.join(format!("relay-{run}.log"));
        let stderr = std::fs::File::create(&log).expect("relay log file");
        let child = Command::new(BIN)
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data")
            .arg(data)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn spoke-relay serve");
        let mut relay = RelayProcess {
            child: Some(child),
            addr,
            log,
        };
        relay.wait_healthy().await;
        relay
    }

    pub async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Ok(r) = try_http(self.addr, "GET", "/healthz").await
                && r.status == 200
            {
                return;
            }
            if let Some(status) = self.child_mut().try_wait().expect("poll child") {
                panic!("spoke-relay exited with {status}: {}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "spoke-relay did not answer /healthz in time: {}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("the relay process")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the relay process").id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, then reap.
    pub fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9 the relay");
            child.wait().expect("reap the relay");
        }
    }

    /// Waits (bounded) for the process to exit by itself.
    pub async fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child_mut().try_wait().expect("poll child") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the relay did not exit: {}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A hub made with the relay's own admin commands in a temporary data
/// folder, with a token per member; `admin` is the lead it was created with.
pub struct HubSetup {
    pub data: tempfile::TempDir,
    pub logs: tempfile::TempDir,
    pub hub: String,
    /// handle -> token.
    pub tokens: std::collections::HashMap<String, String>,
}

impl HubSetup {
    /// `spoke-relay hub create NAME` and `token issue` for each `(handle, role)`.
    pub fn new(name: &str, members: &[(&str, &str)]) -> HubSetup {
        HubSetup::in_registry(name, members, None)
    }

    /// As [`HubSetup::new`], in the shared registry of the NATS cluster at
    /// `urls` (`--nats`); the data folder stays empty.
    pub fn on_nats(name: &str, members: &[(&str, &str)], urls: &str) -> HubSetup {
        HubSetup::in_registry(name, members, Some(urls))
    }

    fn in_registry(name: &str, members: &[(&str, &str)], nats: Option<&str>) -> HubSetup {
        let data = tempfile::tempdir().expect("data folder");
        let logs = tempfile::tempdir().expect("log folder");
        let d = data.path().to_str().expect("utf-8 temp path").to_owned();
        let registry = match nats {
            Some(urls) => ["--nats", urls],
            None => ["--data", d.as_str()],
        };
        let created = cli_json(&["hub", "create", name, registry[0], registry[1], "--json"]);
        let hub = field(&created, "hub");
        let mut tokens =
            std::collections::HashMap::from([("admin".to_owned(), field(&created, "token"))]);
        for (handle, role) in members {
            let issued = cli_json(&[
                "token",
                "issue",
                registry[0],
                registry[1],
                "--hub",
                &hub,
                "--handle",
                handle,
                "--role",
                role,
                "--json",
            ]);
            assert_eq!(field(&issued, "role"), *role);
            tokens.insert((*handle).to_owned(), field(&issued, "token"));
        }
        HubSetup {
            data,
            logs,
            hub,
            tokens,
        }
    }

    /// The relay as a process on a free port, serving this data folder.
    pub async fn start(&self) -> RelayProcess {
        RelayProcess::start(self.data.path(), free_port(), self.logs.path(), 0).await
    }
}
