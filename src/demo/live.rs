//! The demo's team at work while you watch: teammates come online and go
//! offline by their working hours, and one of them acts every so often
//! (comments, moves a brief, uploads a new version for your approval, files
//! a brief the agent asks about) through the relay with its own token. The
//! agent works the queue as its own member. Everything is an ordinary op.

use super::art::{self, Role as ArtRole};
use super::cast::home_of;
use super::team::{AGENT, TEAM, Teammate};
use crate::agent::provider::Provider;
use crate::config::AgentConfig;
use crate::model::brief::BriefStatus;
use crate::model::{Member, Role};
use crate::service::assets::ImportOptions;
use crate::service::{BriefFilter, Hub, NewBrief};
use anyhow::{Context, Result};
use spoke_relay::proto::{Presence, PresenceStatus};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

/// How the live team behaves.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Seconds between a teammate's acts, drawn from this range.
    pub pace: (u64, u64),
    /// No acts at all (presence still follows the hours).
    pub quiet: bool,
    /// The model the agent uses, if one is configured.
    pub agent: Option<AgentConfig>,
}

impl LiveOptions {
    /// 20 to 40 s between acts, or `SPOKE_DEMO_PACE=MIN-MAX` seconds.
    pub fn from_env(quiet: bool, agent: Option<AgentConfig>) -> LiveOptions {
        let pace = std::env::var("SPOKE_DEMO_PACE")
            .ok()
            .and_then(|v| parse_pace(&v))
            .unwrap_or((20, 40));
        LiveOptions { pace, quiet, agent }
    }
}

/// `MIN-MAX` in seconds, MIN at least 1 and not above MAX.
pub fn parse_pace(text: &str) -> Option<(u64, u64)> {
    let (a, b) = text.trim().split_once('-')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (1..=b).contains(&a).then_some((a, b))
}

/// The running team; stops when told, or when dropped.
pub struct Live {
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Live {
    /// Starts the team on a thread of its own.
    pub fn start(home: &Path, opts: LiveOptions) -> Result<Live> {
        let (stop, stopped) = watch::channel(false);
        let home = home.to_path_buf();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the demo team's runtime")?;
        let thread = std::thread::Builder::new()
            .name("demo-team".into())
            .spawn(move || rt.block_on(run(home, opts, stopped)))
            .context("starting the demo team")?;
        Ok(Live {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops every teammate and waits for them to leave.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Whether `stop` said so within `wait`.
async fn stopped_within(stop: &mut watch::Receiver<bool>, wait: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(wait) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// The team lets the TUI draw its first frame before anyone arrives.
const SETTLE: Duration = Duration::from_millis(1500);

async fn run(home: PathBuf, opts: LiveOptions, mut stop: watch::Receiver<bool>) {
    if stopped_within(&mut stop, SETTLE).await {
        return;
    }
    let mut presence = Shifts::default();
    let provider: Option<Box<dyn Provider>> = opts
        .agent
        .as_ref()
        .and_then(|cfg| crate::agent::chat::provider_from_config(cfg).ok());
    let mut script = Script::new(&home);
    let mut next_act = tokio::time::Instant::now() + script.pause(opts.pace);
    let mut next_agent = tokio::time::Instant::now();
    loop {
        presence.follow_hours(&home, jiff::Timestamp::now());
        let now = tokio::time::Instant::now();
        if !opts.quiet && now >= next_act {
            if let Err(e) = script.act(&home).await {
                script.errors.push(format!("{e:#}"));
            }
            next_act = now + script.pause(opts.pace);
            next_agent = now;
        }
        if !opts.quiet && now >= next_agent {
            let _ = agent_pass(&home, provider.as_deref()).await;
            next_agent = now + Duration::from_secs(15);
        }
        if stopped_within(&mut stop, Duration::from_millis(500)).await {
            break;
        }
    }
    presence.leave_all().await;
}

/// The presence sessions of teammates now at work.
#[derive(Default)]
struct Shifts {
    online: BTreeMap<&'static str, (watch::Sender<bool>, tokio::task::JoinHandle<()>)>,
    checked: Option<std::time::Instant>,
}

impl Shifts {
    /// Connects whoever's working hours have begun and lets go of whoever's
    /// have ended; checked every 30 s.
    fn follow_hours(&mut self, home: &Path, now: jiff::Timestamp) {
        if self
            .checked
            .is_some_and(|t| t.elapsed() < Duration::from_secs(30))
        {
            return;
        }
        self.checked = Some(std::time::Instant::now());
        let Ok(hub) = Hub::open(home, None) else {
            return;
        };
        // The agent is there whenever its worker runs.
        for t in TEAM.iter().chain(std::iter::once(&AGENT)) {
            let working = hub
                .member(t.handle)
                .ok()
                .flatten()
                .is_some_and(|m| m.is_working_at(now));
            match (working, self.online.contains_key(t.handle)) {
                (true, false) => {
                    let viewing = looking_at(&hub, t);
                    let (tx, rx) = watch::channel(false);
                    let member_home = home_of(home, t.handle);
                    let presence = Presence {
                        member: t.handle.to_owned(),
                        status: PresenceStatus::Online,
                        tz: Some(t.tz.to_owned()),
                        viewing,
                    };
                    let task = tokio::spawn(async move {
                        let _ = crate::sync::watch(&member_home, rx, Some(presence), None, |_| {})
                            .await;
                    });
                    self.online.insert(t.handle, (tx, task));
                }
                (false, true) => {
                    if let Some((tx, _)) = self.online.remove(t.handle) {
                        let _ = tx.send(true);
                    }
                }
                _ => {}
            }
        }
    }

    async fn leave_all(self) {
        for (_, (tx, task)) in self.online {
            let _ = tx.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
    }
}

/// What a teammate has open: the brief they work on or asked for.
fn looking_at(hub: &Hub, t: &Teammate) -> Option<String> {
    let briefs = hub.briefs(&BriefFilter::default()).ok()?;
    briefs
        .iter()
        .filter(|b| b.status.is_open())
        .find(|b| {
            b.assignees.iter().any(|a| a == t.handle) || b.requester.as_deref() == Some(t.handle)
        })
        .map(|b| format!("brief/{}", b.id))
}

/// One pass of the agent as its own member: sync, ask and propose, sync.
async fn agent_pass(home: &Path, provider: Option<&dyn Provider>) -> Result<()> {
    let agent_home = home_of(home, AGENT.handle);
    crate::sync::sync_once(&agent_home).await?;
    let worked = {
        let mut hub = Hub::open(&agent_home, None)?;
        let cancel = tokio_util::sync::CancellationToken::new();
        let report = crate::agent::intake::work_once(
            &mut hub,
            None,
            provider,
            &cancel,
            jiff::Timestamp::now(),
        )?;
        !report.intake.is_empty() || !report.suggestions.is_empty()
    };
    if worked {
        crate::sync::sync_once(&agent_home).await?;
    }
    Ok(())
}

/// The acts, in turn: file a brief, comment, move one, upload a version.
struct Script {
    turn: usize,
    rng: u64,
    /// How acts failed (kept for tests; the demo goes on).
    errors: Vec<String>,
}

/// Briefs the team files while you watch, missing what intake asks for.
const NEW_BRIEFS: &[(&str, &str)] = &[
    ("lucia", "Pop-up store window, Rua Augusta"),
    ("noor", "Partner webinar: Bluefin x Northwind"),
    ("lucia", "Customer awards night invitations"),
    ("noor", "Dubai design week booth teaser"),
];

/// Lines teammates say, by handle.
const LINES: &[(&str, &str)] = &[
    (
        "kenji",
        "Pushed a new render; the reflections on the cap read much cleaner now.",
    ),
    (
        "priya",
        "Alt text is in for every tile. Shout if the tone is off.",
    ),
    (
        "tom",
        "Quick one: can we get the final legal line before Sydney's morning?",
    ),
    (
        "jordan",
        "Checked the header in Outlook dark mode; the logo needs the light variant.",
    ),
    (
        "maya",
        "Reminder: anything with the coral above 20% of the frame comes back to me.",
    ),
    (
        "lucia",
        "Client loved the direction in today's call. Keep going!",
    ),
    (
        "noor",
        "Partner approved the co-branding lockup. Files are in the drive.",
    ),
];

impl Script {
    fn new(home: &Path) -> Script {
        // Different demos, different rhythms; one demo, a fixed story.
        let seed = home
            .to_string_lossy()
            .bytes()
            .fold(0x9e37_79b9_7f4a_7c15_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        Script {
            turn: 0,
            rng: seed | 1,
            errors: Vec::new(),
        }
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn pause(&mut self, (min, max): (u64, u64)) -> Duration {
        let span = max.saturating_sub(min) + 1;
        Duration::from_secs(min + self.next_random() % span)
    }

    /// The next act, by whoever of the right role is at work (or, if
    /// nobody is, by whoever may).
    async fn act(&mut self, home: &Path) -> Result<()> {
        let turn = self.turn;
        self.turn += 1;
        let now = jiff::Timestamp::now();
        let members: Vec<Member> = Hub::open(home, None)?.members()?;
        let working = |t: &&Teammate| {
            members
                .iter()
                .any(|m| m.handle == t.handle && m.is_working_at(now))
        };
        let pick = |role: Role, rng: u64| -> Option<&'static Teammate> {
            let able: Vec<&'static Teammate> = TEAM.iter().filter(|t| t.has_role(role)).collect();
            let at_work: Vec<&'static Teammate> = able.iter().copied().filter(working).collect();
            let pool = if at_work.is_empty() { able } else { at_work };
            pool.get(rng as usize % pool.len().max(1)).copied()
        };
        let rng = self.next_random();
        let who = match turn % 4 {
            0 => {
                let (by, title) = NEW_BRIEFS[(turn / 4) % NEW_BRIEFS.len()];
                let mut hub = Hub::open(&home_of(home, by), None)?;
                file_brief(&mut hub, title)?;
                by
            }
            1 => {
                let t = pick(Role::Creative, rng).context("no creative in the demo team")?;
                let mut hub = Hub::open(&home_of(home, t.handle), None)?;
                crate::sync::sync_once(&home_of(home, t.handle)).await?;
                comment(&mut hub, t, turn)?;
                t.handle
            }
            2 => {
                let t = pick(Role::Creative, rng).context("no creative in the demo team")?;
                crate::sync::sync_once(&home_of(home, t.handle)).await?;
                let mut hub = Hub::open(&home_of(home, t.handle), None)?;
                move_one(&mut hub, t)?;
                t.handle
            }
            _ => {
                let t = pick(Role::Creative, rng).context("no creative in the demo team")?;
                crate::sync::sync_once(&home_of(home, t.handle)).await?;
                let mut hub = Hub::open(&home_of(home, t.handle), None)?;
                new_version(&mut hub, home, t, turn)?;
                t.handle
            }
        };
        crate::sync::sync_once(&home_of(home, who)).await?;
        Ok(())
    }
}

/// A brief filed in a hurry: title, priority and due only, so the agent
/// asks for the rest.
fn file_brief(hub: &mut Hub, title: &str) -> Result<()> {
    let due = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 12))
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date()
        .to_string();
    let brief = hub.add_brief(NewBrief {
        title: title.to_owned(),
        priority: Some("p2".to_owned()),
        due: Some(due),
        ..NewBrief::default()
    })?;
    hub.move_brief(&brief.id, BriefStatus::Intake.as_str(), true)?;
    Ok(())
}

/// A teammate says something on a brief they work on.
fn comment(hub: &mut Hub, t: &Teammate, turn: usize) -> Result<()> {
    let lines: Vec<&str> = LINES
        .iter()
        .filter(|(h, _)| *h == t.handle)
        .map(|(_, l)| *l)
        .collect();
    let line = lines
        .get(turn % lines.len().max(1))
        .copied()
        .unwrap_or("On it.");
    let briefs = hub.briefs(&BriefFilter::default())?;
    let brief = briefs
        .iter()
        .filter(|b| b.status.is_open())
        .find(|b| b.assignees.iter().any(|a| a == t.handle))
        .or_else(|| briefs.iter().find(|b| b.status.is_open()))
        .context("no open brief to comment on")?;
    hub.comment_on_brief(&brief.id.clone(), line)
}

/// A creative moves one of their briefs a step on: ready to in progress,
/// or in progress to review.
fn move_one(hub: &mut Hub, t: &Teammate) -> Result<()> {
    let briefs = hub.briefs(&BriefFilter::default())?;
    let next = |s: BriefStatus| match s {
        BriefStatus::Ready => Some(BriefStatus::InProgress),
        BriefStatus::InProgress => Some(BriefStatus::InReview),
        _ => None,
    };
    let Some((brief, to)) = briefs
        .iter()
        .filter(|b| b.assignees.iter().any(|a| a == t.handle))
        .find_map(|b| next(b.status).map(|to| (b, to)))
    else {
        // Nothing of theirs can move: they say so instead.
        return comment(hub, t, 0);
    };
    hub.move_brief(&brief.id.clone(), to.as_str(), false)?;
    Ok(())
}

/// A creative uploads a new grade of one of their images and asks you.
fn new_version(hub: &mut Hub, home: &Path, t: &Teammate, turn: usize) -> Result<()> {
    let assets = hub.assets()?;
    let pieces = art::catalogue();
    let mine: Vec<_> = pieces
        .iter()
        .filter(|p| p.by == t.handle && p.role != ArtRole::Master && p.role != ArtRole::Version2)
        .filter_map(|p| {
            assets
                .iter()
                .find(|a| a.title.eq_ignore_ascii_case(&title_of(p.file_name)))
                .map(|a| (p, a.clone()))
        })
        .collect();
    let Some((piece, asset)) = mine.get(turn % mine.len().max(1)) else {
        return comment(hub, t, turn);
    };
    let bytes =
        art::render(piece).map_err(|e| anyhow::anyhow!("drawing {}: {e}", piece.file_name))?;
    let image = image::load_from_memory(&bytes).context("decoding a demo image")?;
    // A warmer grade each time, so each version is new bytes and visibly different.
    let steps = i32::try_from(asset.versions.len()).unwrap_or(1);
    let graded = image.huerotate(6 * steps).brighten(4 * steps);
    let dir = home_of(home, t.handle).join("work");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(piece.file_name);
    graded
        .save_with_format(&path, image::ImageFormat::Png)
        .with_context(|| format!("writing {}", path.display()))?;
    let report = hub.import_assets(
        std::slice::from_ref(&path),
        &ImportOptions {
            brief: None,
            version_of: Some(asset.id.clone()),
        },
        |_| {},
    )?;
    let _ = std::fs::remove_file(&path);
    if let Some((_, why)) = report.failed.first() {
        anyhow::bail!("uploading a new version of {}: {why}", asset.id);
    }
    let version = u32::try_from(hub.asset(&asset.id)?.versions.len()).unwrap_or(1);
    hub.request_approval(
        &format!("{} v{version}", asset.title),
        crate::model::approval::Subject::AssetVersion {
            asset: asset.id.clone(),
            version,
        },
        vec![crate::model::approval::Stage {
            name: "art direction".to_owned(),
            reviewers: vec![super::team::YOU.handle.to_owned()],
            deadline: None,
            mode: crate::model::approval::StageMode::Decide,
        }],
    )?;
    Ok(())
}

/// The title an import gives a file.
fn title_of(file_name: &str) -> String {
    crate::service::assets::title_from(Path::new(file_name))
}
