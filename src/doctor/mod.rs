//! `spoke doctor`: what is set up and what is not. Each check answers ok,
//! warn or fail with a one-line detail and, when it is not ok, the fix. The
//! checks read files, ask the relay and the model servers once each with a
//! short timeout, and never change the replica.
//!
//! Areas: `paths` (config file, data folder and replica, log file), `hub`
//! (the relay, the token, sync), `model` (the agent's model, the embedder),
//! `search` (the index beside the replica), `integrations` (connector
//! secrets on the pusher's machine, the pusher, outbox failures; no network),
//! `terminal` (colours, images, tmux, clipboard, SSH).

mod hub;
mod integrations;
mod model;
mod paths;
mod search;
mod terminal;

use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// How long a network check waits for a connection or an answer.
pub const NETWORK_TIMEOUT: Duration = Duration::from_secs(4);

/// A check's outcome. Ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `paths`, `hub`, `model`, `search`, `integrations` or `terminal`.
    pub area: &'static str,
    /// What was checked, e.g. `relay`.
    pub check: &'static str,
    pub status: Status,
    /// What was found, in a sentence.
    pub detail: String,
    /// What to do about it; `None` when the check is ok.
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(area: &'static str, check: &'static str, detail: impl Into<String>) -> Check {
        Check {
            area,
            check,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn warn(
        area: &'static str,
        check: &'static str,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check::with_fix(Status::Warn, area, check, detail.into(), fix.into())
    }

    pub fn fail(
        area: &'static str,
        check: &'static str,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check::with_fix(Status::Fail, area, check, detail.into(), fix.into())
    }

    fn with_fix(
        status: Status,
        area: &'static str,
        check: &'static str,
        detail: String,
        fix: String,
    ) -> Check {
        Check {
            area,
            check,
            status,
            detail,
            fix: Some(fix),
        }
    }
}

/// What the checks start from: the global flags as given.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `--home` / `$SPOKE_HOME`.
    pub home: Option<PathBuf>,
    /// `--config` / `$SPOKE_CONFIG`.
    pub config: Option<PathBuf>,
    /// `--color`.
    pub color: Option<String>,
    /// `--graphics`.
    pub graphics: String,
    /// Ask the terminal which graphics it draws (only when stdin and stdout
    /// are a terminal; otherwise the environment is read instead).
    pub probe_terminal: bool,
}

/// Counts by status and the worst of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub ok: usize,
    pub warn: usize,
    pub fail: usize,
    /// The worst status found.
    pub status: Status,
}

/// Every check, in the order they are shown.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub summary: Summary,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn new(checks: Vec<Check>) -> Report {
        let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
        let summary = Summary {
            ok: count(Status::Ok),
            warn: count(Status::Warn),
            fail: count(Status::Fail),
            status: checks.iter().map(|c| c.status).max().unwrap_or(Status::Ok),
        };
        Report { summary, checks }
    }

    /// Anything failed: the command exits 1 (warnings alone do not).
    pub fn failed(&self) -> bool {
        self.summary.fail > 0
    }
}

/// Runs every check.
pub fn run(settings: &Settings) -> Report {
    let mut checks = Vec::new();
    let found = paths::config(settings.config.as_deref());
    checks.push(found.check.clone());
    let config = found.config.clone().unwrap_or_default();
    let home = paths::home(settings.home.as_deref(), &config);
    let replica = paths::replica(home.as_deref(), &config.search);
    checks.push(replica.check.clone());
    checks.push(paths::log_file());

    // The relay and the model server are asked at the same time.
    let (hub_checks, agent_check, comfy_check) = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(async {
            tokio::join!(
                hub::checks(&replica),
                model::agent(config.agent.as_ref(), found.shown()),
                model::comfyui(&config.generate, found.shown())
            )
        }),
        Err(e) => (
            vec![Check::fail(
                "hub",
                "relay",
                format!("cannot start the async runtime: {e}"),
                "check the system's limits on threads and open files",
            )],
            Check::fail(
                "model",
                "agent",
                format!("cannot start the async runtime: {e}"),
                "check the system's limits on threads and open files",
            ),
            None,
        ),
    };
    checks.extend(hub_checks);
    checks.push(agent_check);
    checks.extend(comfy_check);
    let embedded = model::embedder(&config.search, found.shown());
    checks.push(embedded.check.clone());
    checks.push(search::index(&replica, embedded.dims));
    checks.extend(integrations::checks(home.as_deref(), &replica));
    checks.extend(terminal::checks(settings));
    Report::new(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_and_takes_the_worst() {
        let report = Report::new(vec![
            Check::ok("paths", "config", "fine"),
            Check::warn("terminal", "tmux", "off", "turn it on"),
        ]);
        assert_eq!(report.summary.status, Status::Warn);
        assert!(!report.failed());
        let report = Report::new(vec![
            Check::fail("hub", "relay", "down", "start it"),
            Check::warn("terminal", "tmux", "off", "turn it on"),
        ]);
        assert_eq!((report.summary.fail, report.summary.warn), (1, 1));
        assert!(report.failed());
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(json["checks"][0]["status"], "fail");
        assert_eq!(json["summary"]["status"], "fail");
    }
}
