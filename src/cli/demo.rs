//! `spoke --demo`: a relay inside this process, the demo hub on it, and the
//! TUI (or, without a terminal, the queue as text).

use super::Ctx;
use super::outln;
use crate::demo::start_and_sync;
use crate::service::{BriefFilter, Hub};
use anyhow::{Context, Result};
use std::path::Path;

/// Runs `spoke --demo`: starts a relay on a free loopback port inside this
/// process, creates the demo hub on it (or reopens a kept one), joins it,
/// seeds it and syncs, then shows the TUI with the team at work (or, off a
/// terminal, the queue as text).
pub fn run_demo(ctx: &Ctx, explicit_home: bool, quiet: bool) -> Result<()> {
    let temp;
    let home = if explicit_home {
        ctx.home.clone()
    } else {
        temp = tempdir_in(&ctx.home)?;
        temp.path().to_owned()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (url, running) = rt.block_on(start_and_sync(&home))?;
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdout()) && !ctx.json;
    let shown = if interactive {
        // The relay keeps serving while the TUI runs, so sync is live, and
        // the team works until the TUI closes.
        let live = crate::demo::live::Live::start(
            &home,
            crate::demo::live::LiveOptions::from_env(quiet, ctx.config.agent.clone()),
        )?;
        let mut opts = ctx.tui_options(true)?;
        opts.home = home.clone();
        let shown = crate::tui::run::run(opts);
        live.stop();
        shown
    } else {
        print_demo(ctx, &home, &url, explicit_home)
    };
    rt.block_on(running.shutdown())
        .context("stopping the demo relay")?;
    shown
}

/// The non-interactive demo: the queue as text.
fn print_demo(ctx: &Ctx, home: &Path, url: &str, explicit_home: bool) -> Result<()> {
    let home = home.to_path_buf();
    let hub = Hub::open(&home, None)?;
    let briefs = hub.briefs(&BriefFilter::default())?;
    if ctx.json {
        return super::print_json(&briefs);
    }
    let members = hub.members()?;
    let zones: std::collections::BTreeSet<&str> = members.iter().map(|m| m.tz.as_str()).collect();
    outln!(
        "Demo hub \"{}\" on a relay at {url}: {} members across {} time zones, {} briefs, {} ops synced.\n",
        hub.hub_name()?,
        members.len(),
        zones.len(),
        briefs.len(),
        hub.replica().meta()?.cursor,
    )?;
    super::print_queue(&hub, &briefs)?;
    if explicit_home {
        outln!(
            "\nThe demo hub and its relay data live in {}; `spoke --demo --home {}` brings it back.",
            home.display(),
            home.display()
        )?;
    } else {
        outln!(
            "\nThis demo lives in a temporary folder and its relay stops with this command. \
             Keep one with `spoke --demo --home DIR`."
        )?;
    }
    Ok(())
}

fn tempdir_in(base: &Path) -> Result<TempDir> {
    let path = base.join(format!(
        "spoke-demo-{}-{}",
        std::process::id(),
        crate::model::ids::new_entity_id("d")
    ));
    std::fs::create_dir_all(&path)
        .with_context(|| format!("creating demo folder {}", path.display()))?;
    Ok(TempDir(path))
}

/// A folder removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
