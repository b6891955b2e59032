//! `spoke doctor`: prints the checks one a line, grouped by area, with the
//! fix under anything that is not ok; `--json` prints the report.

use super::Cli;
use super::output::{outln, print_json};
use crate::doctor::{self, Report, Status};
use anyhow::Result;
use std::io::IsTerminal;

/// Help for `spoke doctor`, with the JSON keys scripts may rely on.
pub const AFTER_HELP: &str = "\
Each line is ok, warn or fail; warn and fail lines carry the fix. Exit code 1 if any check \
fails (warnings alone exit 0).

With --json: {\"summary\": {\"ok\": N, \"warn\": N, \"fail\": N, \"status\": \"ok|warn|fail\"}, \
\"checks\": [{\"area\", \"check\", \"status\", \"detail\", \"fix\"}]}. `area` is paths, hub, model, \
search, integrations or terminal; `check` names the check within it (config, data folder, log \
file; hub, relay, token, last sync, pending; agent, embedder, comfyui; index; connectors, connector, \
pusher, outbox; colours, NO_COLOR, graphics, tmux, clipboard, ssh); `fix` is null when the check \
is ok.";

pub fn run(cli: &Cli) -> Result<()> {
    let settings = doctor::Settings {
        home: cli.home.clone(),
        config: cli.config.clone(),
        color: cli.color.clone(),
        graphics: cli.graphics.clone(),
        probe_terminal: true,
    };
    let report = doctor::run(&settings);
    if cli.json {
        print_json(&report)?;
    } else {
        print_text(&report)?;
    }
    if report.failed() {
        anyhow::bail!(
            "{} of {} checks failed",
            report.summary.fail,
            report.checks.len()
        );
    }
    Ok(())
}

fn print_text(report: &Report) -> Result<()> {
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let paint = |status: Status| {
        let word = format!("{:<4}", status.as_str());
        if !colour {
            return word;
        }
        let code = match status {
            Status::Ok => "32",
            Status::Warn => "33",
            Status::Fail => "31",
        };
        format!("\x1b[{code}m{word}\x1b[0m")
    };
    let width = report
        .checks
        .iter()
        .map(|c| c.check.chars().count())
        .max()
        .unwrap_or(0);
    let mut area = "";
    for check in &report.checks {
        if check.area != area {
            area = check.area;
            outln!("{area}")?;
        }
        outln!(
            "  {}  {:<width$}  {}",
            paint(check.status),
            check.check,
            check.detail
        )?;
        if let Some(fix) = &check.fix {
            outln!("        {:<width$}  fix: {fix}", "")?;
        }
    }
    let s = &report.summary;
    outln!("\n{} ok, {} warnings, {} failed", s.ok, s.warn, s.fail)?;
    Ok(())
}
